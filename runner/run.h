/* run.h - a run: its data, graph, step program and results file, opened and
 * closed in one place (run.c).
 *
 * rn_run_open prepares everything (loads and colours the data, builds the
 * graph, initialises or loads its parameters, uploads the data to the
 * device, creates <run_dir>/run.h5 with /config); rn_run_close records the
 * final status and frees what the run holds, also on a half-opened run.
 * Training is train.h, evaluation eval.h; models are saved and loaded
 * through checkpoint.h.
 */
#ifndef RN_RUN_H
#define RN_RUN_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include "augment.h"
#include "data.h"
#include "graph.h"
#include "program.h"
#include "results.h"
#include "spec.h"

/* The most classes a run evaluates (the confusion matrix is counted in a
 * fixed array); rn_run_open refuses data with more. */
#define RN_MAX_CLASSES 64

struct rn_run_options {
    const char *out_dir;   /* exact run directory, or NULL: <spec.out>/<name>/<time>-s<seed> */
    int quiet;             /* no progress output */
    FILE *log;             /* progress and summary lines (stderr by default) */
    int device;            /* enum rn_device (backend.h) to train and evaluate on; 0: CPU */
    char device_desc[160]; /* what the device is, for /config (e.g. "NVIDIA H200 ...") */
    /* Called by rn_run_open once the graph is built, before the run's folder
     * and file exist (NULL: none): what later stages need of the model, such
     * as the nodes the analyses name (main passes rn_analyses_check), fails
     * here rather than after training. */
    int (*check)(const struct rn_spec *spec, const struct rn_graph *g, int logits,
                 struct rn_error *err);
    /* 1: out_dir is a run started before: continue it from its checkpoint.h5
     * (from the start when it has none), its run.h5 restored from there. */
    int resume;
    /* Test hooks: stop as an interrupt would once the global step reaches
     * stop_after_step (0: never); with stop_hard, without the checkpoint an
     * interrupt writes, and rn_run_train returns -1 (a crash). */
    uint64_t stop_after_step;
    int stop_hard;
};

/* Where training stands, as a checkpoint records it besides the tensors
 * (train.c fills it, resume.c writes and reads it). */
#define RN_TRAIN_LOG_N (3 + 5 * RN_MAX_LOSSES)
struct rn_train_pos {
    int epoch;                  /* the epoch in progress, 1-based */
    int step_in_epoch;          /* its steps done; all of them: its end (metrics, eval) is due */
    double log[RN_TRAIN_LOG_N]; /* the per-step log's partial sums (train.c) */
    double epoch_loss, loss_n, seen, epoch_seconds; /* the epoch's sums so far */
};

struct rn_split_result {
    char split[16];
    double loss, accuracy; /* mean CE, fraction correct: the main (first digit) head */
    int n;
    int n_classes;                                  /* k, the data's classes */
    int confusion[RN_MAX_CLASSES * RN_MAX_CLASSES]; /* (k, k) [true * k + pred], packed */
    /* every head of the run (program.h), the main one included; a colour head
     * on a split without colour labels is not evaluated (head_n 0) */
    double head_loss[RN_MAX_LOSSES], head_accuracy[RN_MAX_LOSSES];
    int head_n[RN_MAX_LOSSES];
    int n_heads;
};

struct rn_run {
    const struct rn_spec *spec; /* borrowed */
    struct rn_run_options opt;
    char dir[RN_PATH_MAX]; /* run directory */
    struct rn_data data;
    struct rn_graph graph; /* empty when the spec has no model */
    int has_graph;
    int logits_node;                 /* node the main (first digit) cross-entropy reads */
    struct rn_program program;       /* optimizers, losses, schedules, step program */
    int has_program;                 /* built when the spec trains */
    uint8_t *colours[RN_MAX_SPLITS]; /* colour target per image of data.splits[k], owned;
                                        NULL when no head predicts colours */
    struct rn_augment augment;       /* train.augment */
    int augment_on;
    struct rn_results *results;
    uint64_t step; /* global training step */
    int epochs_done;
    struct rn_split_result last[RN_MAX_EVAL]; /* last evaluation of each eval split */
    int n_last;
    float *probs; /* scratch (max_n, n_classes) softmax output */
    /* On a device: every split's images, uploaded once (uint8, as on the
     * host), and the indices of one batch; batches are gathered there. */
    int data_device; /* enum rn_device of dev_images; 0: none */
    void *dev_images[RN_MAX_SPLITS];
    void *dev_labels[RN_MAX_SPLITS];  /* digit labels of each split */
    void *dev_colours[RN_MAX_SPLITS]; /* colour targets (NULL without a colour head) */
    void *dev_idx;                    /* (max_n) int32 */
    void *dev_iota;          /* (max_n) int32 0, 1, 2, ...: contiguous batches (evaluation) */
    void *dev_order;         /* (train n) int32: the epoch's order, uploaded once per epoch */
    void *dev_order_targets; /* (2 x train n) bytes: digit, then colour targets in that order */
    void *dev_eval;          /* evaluation sums: loss (double) and counts per head, confusion */
    void *dev_draws;         /* (train n) augmentation draws of an epoch, when the device
                                augments (run->draws: their host side) */
    struct rn_augment_draw *draws; /* (train n) host side of them */
    /* resume.c: the run's lock (run.lock, flock'ed while it runs), the
     * position a resumed run continues from, the last checkpoint */
    int lock_fd; /* +1: 0 when none */
    int resumed; /* 1: pos holds the checkpoint's position */
    struct rn_train_pos pos;
    uint64_t checkpoint_step; /* global step of the last checkpoint (with has_checkpoint) */
    int has_checkpoint;
    uint64_t nonfinite_skipped; /* steps skipped for a NaN/Inf (train.on_nonfinite: skip) */
};

/* Set from a signal handler to the signal's number (SIGINT, SIGTERM);
 * training stops after the current step, writes a checkpoint and the run
 * ends with status "interrupted" (exit status 128 + the signal). */
extern volatile sig_atomic_t rn_interrupted;

int rn_run_open(struct rn_run *run, const struct rn_spec *spec, const struct rn_run_options *opt,
                struct rn_error *err);
/* status: "completed" | "interrupted" | "failed". Safe on a half-opened run. */
void rn_run_close(struct rn_run *run, const char *status);

/* Colour targets of a split (the generator's colour, else the pixel
 * detector's), or NULL when the run has none. */
const uint8_t *rn_run_split_colours(const struct rn_run *run, const struct rn_split *split);

/* ---- checkpoints, resume and the run's lock (resume.c) ----------------- */

/* Writes the full training state at pos into <dir>/checkpoint.h5: a copy of
 * run.h5 as it stands (flushed first) plus /resume: every parameter and
 * buffer, every optimizer's moments and step count, the global step, the
 * position in the epoch, the step log's sums and the skipped-step count.
 * The random streams are functions of (seed, epoch) and (seed, step), so the
 * step restores them. Atomic: written to checkpoint.h5.tmp, fsync'ed, then
 * renamed over the previous one (and the folder fsync'ed). */
int rn_run_checkpoint(struct rn_run *run, const struct rn_train_pos *pos, struct rn_error *err);

/* rn_run_open's part of a resume (opt.resume, a checkpoint.h5 there): the
 * training state into the built graph and program, pos and step set, then
 * run.h5 replaced by the checkpoint's copy (without /resume) and opened. */
int rn_run_resume(struct rn_run *run, struct rn_error *err);

/* The run's lock: <dir>/run.lock, flock'ed for the life of the process and
 * holding "pid host start-time". -1 with "DIR is being written by pid N on
 * HOST since T" when another live process holds it. */
int rn_run_lock(struct rn_run *run, struct rn_error *err);
/* 1 when a live process holds dir's run.lock (who: its pid, host and start
 * time, may be NULL), 0 when none does: a run.h5 with status "running" and
 * no holder is stale (its process was killed). */
int rn_run_lock_held(const char *dir, char *who, size_t who_size);

/* The spec a run recorded (/config yaml, malloc'd) and its status, read from
 * <dir>/checkpoint.h5 when it has one, else from run.h5. */
int rn_run_recorded(const char *dir, char **yaml, char *status, size_t status_size,
                    struct rn_error *err);

/* mkdir -p: creates path and its missing parents. */
int rn_make_dirs(const char *path, struct rn_error *err);

/* Writes run->graph as /models/<model> into run->results (checkpoint.h),
 * with the attributes architecture and epochs. */
int rn_run_save_model(struct rn_run *run, const char *model, struct rn_error *err);

/* Loads /models/<model>/ of a run file into run->graph, on the host, every
 * shape checked exactly (rn_checkpoint_load). */
int rn_run_load_model(struct rn_run *run, const char *path, const char *model,
                      struct rn_error *err);

/* Opens model `model` recorded in another run's file for inference: builds
 * the architecture its /config yaml records (parsed into *spec) for inputs
 * of shape `in` in batches of up to max_n, takes the node its first loss
 * reads as logits (else its last node), checks they are n_classes, loads
 * /models/<model> on the host and moves the graph to `device`.
 *
 * run (overwritten) gets spec, opt (a copy of *opt), graph, logits_node and
 * probs ((max_n, n_classes) scratch) and no data, program or results file:
 * enough for rn_run_predict and the analyses' passes. rn_run_close_model
 * frees it and *spec. On error nothing is left to free and the message
 * names the file. */
int rn_run_open_model(struct rn_run *run, struct rn_spec *spec, const char *file, const char *model,
                      const struct rn_run_options *opt, struct rn_shape in, int max_n,
                      int n_classes, int device, struct rn_error *err);
void rn_run_close_model(struct rn_run *run, struct rn_spec *spec);

#endif
