/* program.h - training as data: what one batch does (DESIGN.md "Training as
 * data").
 *
 * rn_program_init turns a spec's train section and a built graph into:
 *  - optimizers, each over the parameters of its named groups (train.groups:
 *    node names, `colour_*` prefixes), with its own lr (a number or a
 *    schedule) and gradient clipping;
 *  - schedules (scalar functions of progress p = step / total_steps) and
 *    bindings that write a schedule into a layer key (a grl's alpha) before
 *    every batch;
 *  - loss terms (cross_entropy, neg_cross_entropy, saliency) on heads, a head
 *    being a (logits node, target) pair; weights are numbers or schedules;
 *  - the program: sub-steps, each {optimizers, losses, layer keys set for it}.
 * Every name is checked against the graph here, with the spec's
 * file:line:col, since node names are only known once the graph is built.
 *
 * rn_program_batch runs the sub-steps on the batch in g->x. Node outputs
 * stay valid across sub-steps until something they depend on changes (an
 * optimizer updating a node's parameters, a key set or restored), so while
 * only a colour head learns the backbone is computed once per batch, not
 * once per sub-step. A sub-step backpropagates only through the nodes that
 * lie between its optimizers' parameters and its losses. Batchnorm and
 * dropout run in training mode in every sub-step that recomputes them, as
 * PyTorch would; sub-step k > 0 of a batch draws its dropout masks from
 * step + k * 2^40, so a recomputed head gets a fresh mask.
 */
#ifndef RN_PROGRAM_H
#define RN_PROGRAM_H

#include <stdint.h>

#include "graph.h"
#include "loss.h"
#include "optim.h"
#include "saliency.h"
#include "schedule.h"
#include "spec.h"

#define RN_MAX_SUBSTEPS 64

/* A (logits node, target) pair that some loss term reads; evaluated on every
 * eval split after each epoch. */
struct rn_head {
    int node;
    enum rn_target target;
    char metric[RN_NAME_MAX + 16]; /* metric stem: "" (first digit head: loss, accuracy),
                                      "colour_" (first colour head), else "<node>_<target>_" */
    double loss;                   /* mean CE on the last training batch that computed it */
    int correct, n;                /* argmax hits on that batch */
    int fresh;                     /* computed during the last rn_program_batch */
};

struct rn_term {
    const struct rn_spec_loss *spec; /* borrowed */
    enum rn_loss_kind kind;
    int node, head;
    int schedule;                /* weight schedule index, -1: spec->weight */
    struct rn_saliency saliency; /* RN_LOSS_SALIENCY */
    double weight;               /* this batch's weight */
    double value;                /* last value before its weight: CE, -CE or R */
    int fresh;                   /* computed during the last rn_program_batch */
};

struct rn_program_opt {
    char name[RN_NAME_MAX];
    struct rn_optim optim;
    unsigned char *owns; /* (n_nodes) node has a parameter this optimizer updates */
    int lr_schedule;     /* -1: fixed lr */
};

struct rn_program_set {
    int node, key;
    double value;
};

struct rn_program_sub {
    unsigned opts;  /* bit k: optimizer k updates */
    unsigned terms; /* bit k: term k contributes */
    struct rn_program_set sets[RN_MAX_SETS];
    int n_sets;
    int has_saliency;
};

struct rn_program {
    struct rn_graph *g;               /* borrowed */
    const struct rn_spec_train *spec; /* borrowed */
    struct rn_program_opt opts[RN_MAX_OPTIMIZERS];
    int n_opts;
    struct rn_term terms[RN_MAX_LOSSES];
    int n_terms;
    struct rn_head heads[RN_MAX_LOSSES];
    int n_heads;
    int primary; /* head of train/accuracy: the first digit head */
    struct rn_program_set binds[RN_MAX_BINDS];
    int bind_schedule[RN_MAX_BINDS];
    int n_binds;
    struct rn_program_sub subs[RN_MAX_SUBSTEPS];
    int n_subs;
    double sched[RN_MAX_SCHEDULES]; /* values at the last batch */
    uint64_t total_steps;
    int recompute; /* 1: forget every output before each sub-step (the bench's baseline) */
    double total;  /* sum of weight * value over the last sub-step's terms */
    double head_w[RN_MAX_LOSSES]; /* each head's signed CE weight in the last sub-step
                                     (0: none), so total = total_host + sum of head_w *
                                     head loss */
    double total_host;            /* the last sub-step's terms computed on the host (saliency) */
    /* On a device (rn_program_device): the heads' losses and hits stay there,
     * in one slot per batch, until rn_program_fetch reads a run of slots;
     * meanwhile heads[].loss, terms[].value and total are NaN. */
    int n_classes;
    int device;
    void *dev_targets; /* 2 x max_n bytes: the batch's digit and colour targets */
    /* The batch's targets when the caller has them on the device already
     * (set before rn_program_batch; batch_colour NULL when there are no
     * colour targets); batch_digit NULL: digit and colour are uploaded. */
    const uint8_t *batch_digit, *batch_colour;
    const uint8_t *t_digit, *t_colour; /* the targets the device losses read */
    void *dev_stats; /* cap x RN_MAX_LOSSES records {double loss sum; int32 hits} */
    int cap, slot;   /* slots, and the one the next batch writes (the caller sets it) */
    /* NaN and Inf (train.on_nonfinite), checked on the host after each
     * sub-step's losses, its gradients and its update: what was not finite
     * ("loss term 'digit' is NaN", "gradient of conv2.weight has Inf"), set
     * when rn_program_batch fails for it or, skipping, sets skipped (the
     * batch's remaining sub-steps are not run and no update was made). */
    int skip_nonfinite;
    char nonfinite[192];
    int skipped;
    long node_forwards, node_backwards;                    /* counters: nodes run, for the bench */
    unsigned char *valid, *need, *run, *own, *down, *loss; /* (n_nodes) scratch */
    /* (n_nodes) the nodes of run whose gradient the losses write (nothing in
     * run reads them); pooled: the sub-step's backward shares the other
     * nodes' gradient buffers (rn_graph_backward_pooled: on the CPU, without
     * a saliency term, every loss node among src) */
    unsigned char *src;
    int pooled;
};

/* An optimizer (kind: a registered name, "adam" | "adamw" | "sgd") over every
 * trainable parameter of g. */
int rn_optim_init(struct rn_optim *o, const char *kind, struct rn_graph *g, struct rn_error *err);

/* A schedule's value at progress p (clamped to [0, 1]). */
double rn_schedule_value(const struct rn_spec_schedule *s, double p);

/* n_classes: the logits every head must give ((n_classes, 1, 1)).
 * total_steps: steps of the whole training, for the schedules' progress. */
int rn_program_init(struct rn_program *p, const struct rn_spec_train *t, struct rn_graph *g,
                    int n_classes, uint64_t total_steps, struct rn_error *err);
void rn_program_free(struct rn_program *p);

/* Keeps the cross-entropy losses on the graph's device (its backend's
 * cross_entropy kernel adds the logits' gradient there) with room for cap
 * batches between reads. */
int rn_program_device(struct rn_program *p, int cap, struct rn_error *err);
/* The loss sums and hits of every head for slots [0, count): loss[s *
 * RN_MAX_LOSSES + h], hits likewise (one device read). */
int rn_program_fetch(struct rn_program *p, int count, double *loss, int *hits,
                     struct rn_error *err);

/* Runs one batch: g->x holds n samples, digit and colour their targets
 * (colour may be NULL when no term needs it). step: global step before this
 * batch (progress = step / total_steps; dropout streams). Parameters
 * change; terms[].value, heads[] and total tell what was computed. */
int rn_program_batch(struct rn_program *p, int n, const uint8_t *digit, const uint8_t *colour,
                     uint64_t step, uint64_t seed, struct rn_error *err);

#endif
