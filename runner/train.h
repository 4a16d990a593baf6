/* train.h - a run: data + graph + optimizer + results file, and the loop
 * that trains and evaluates it.
 *
 * rn_run_open prepares everything (loads and colours data, builds the graph,
 * initialises or loads parameters, creates <run_dir>/run.h5 with /config);
 * rn_run_train trains for train.epochs, evaluating the spec's eval splits
 * after every epoch and checkpointing /models/main; rn_run_analyses runs the
 * declared analyses; rn_run_close records the final status and closes the
 * file. An interrupt (rn_run_interrupt, from a signal handler) stops training
 * after the current step and leaves a readable file with status
 * "interrupted".
 */
#ifndef RN_TRAIN_H
#define RN_TRAIN_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include "data.h"
#include "graph.h"
#include "augment.h"
#include "optim.h"
#include "program.h"
#include "results.h"
#include "spec.h"

struct rn_run_options {
    const char *out_dir;   /* exact run directory, or NULL: <spec.out>/<name>/<time>-s<seed> */
    int quiet;             /* no progress output */
    FILE *log;             /* progress and summary lines (stderr by default) */
    int device;            /* enum rn_device (backend.h) to train and evaluate on; 0: CPU */
    char device_desc[160]; /* what the device is, for /config (e.g. "NVIDIA H200 ...") */
};

struct rn_split_result {
    char split[16];
    double loss, accuracy; /* mean CE, fraction correct: the main (first digit) head */
    int n;
    int confusion[10][10]; /* [true][pred] */
    /* every head of the run (program.h), the main one included; a colour head
     * on a split without colour labels is not evaluated (head_n 0) */
    double head_loss[RN_MAX_LOSSES], head_accuracy[RN_MAX_LOSSES];
    int head_n[RN_MAX_LOSSES];
    int n_heads;
};

struct rn_run {
    const struct rn_spec *spec; /* borrowed */
    struct rn_run_options opt;
    char dir[RN_PATH_MAX];      /* run directory */
    struct rn_data data;
    struct rn_graph graph;      /* empty when the spec has no model */
    int has_graph;
    int logits_node;            /* node the main (first digit) cross-entropy reads */
    struct rn_program program;  /* optimizers, losses, schedules, step program */
    int has_program;            /* built when the spec trains */
    uint8_t *colours[RN_MAX_SPLITS]; /* colour target per image of data.splits[k], owned;
                                        NULL when no head predicts colours */
    struct rn_augment augment;  /* train.augment */
    int augment_on;
    struct rn_results *results;
    uint64_t step;              /* global training step */
    int epochs_done;
    struct rn_split_result last[RN_MAX_EVAL]; /* last evaluation of each eval split */
    int n_last;
    float *probs;               /* scratch (max_n, 10) softmax output */
    /* On a device: every split's images, uploaded once (uint8, as on the
     * host), and the indices of one batch; batches are gathered there. */
    int data_device;            /* enum rn_device of dev_images; 0: none */
    void *dev_images[RN_MAX_SPLITS];
    void *dev_labels[RN_MAX_SPLITS];  /* digit labels of each split */
    void *dev_colours[RN_MAX_SPLITS]; /* colour targets (NULL without a colour head) */
    void *dev_idx;              /* (max_n) int32 */
    void *dev_iota;             /* (max_n) int32 0, 1, 2, ...: contiguous batches (evaluation) */
    void *dev_order;            /* (train n) int32: the epoch's order, uploaded once per epoch */
    void *dev_order_targets;    /* (2 x train n) bytes: digit, then colour targets in that order */
    void *dev_eval;             /* evaluation sums: loss (double) and counts per head, confusion */
    void *dev_draws;            /* (train n) augmentation draws of an epoch, when the device
                                   augments (run->draws: their host side) */
    struct rn_augment_draw *draws; /* (max_n) host side of them */
};

/* Set from a signal handler; training stops after the current step. */
extern volatile sig_atomic_t rn_interrupted;

int rn_run_open(struct rn_run *run, const struct rn_spec *spec, const struct rn_run_options *opt,
                struct rn_error *err);
int rn_run_train(struct rn_run *run, struct rn_error *err);
int rn_run_analyses(struct rn_run *run, struct rn_error *err);
/* status: "completed" | "interrupted" | "failed". Safe on a half-opened run. */
void rn_run_close(struct rn_run *run, const char *status);

/* mkdir -p: creates path and its missing parents. */
int rn_make_dirs(const char *path, struct rn_error *err);

/* Copies samples idx[0..n) of split into graph->x as float in [0,1] (on the
 * graph's device); -1 only on a device error. */
int rn_run_load_batch(struct rn_run *run, const struct rn_split *split, const int *idx, int n,
                      struct rn_error *err);
/* Forward in eval mode on g->x's first n samples; writes softmax
 * probabilities (n, classes) into probs. */
int rn_run_predict(struct rn_run *run, int n, float *probs, struct rn_error *err);
/* Evaluates a whole split in eval mode, every head. */
int rn_run_evaluate(struct rn_run *run, const struct rn_split *split, struct rn_split_result *res,
                    struct rn_error *err);
/* Writes every parameter and buffer as /models/<model>/<node>.<param>. */
int rn_run_save_model(struct rn_run *run, const char *model, struct rn_error *err);
/* Colour targets of a split (the generator's colour, else the pixel
 * detector's), or NULL when the run has none. */
const uint8_t *rn_run_split_colours(const struct rn_run *run, const struct rn_split *split);
/* Loads /models/<model>/ of another run file into the graph, shapes checked. */
int rn_run_load_model(struct rn_run *run, const char *path, const char *model,
                      struct rn_error *err);

#endif
