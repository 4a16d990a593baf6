/* spec.h - experiment specs: YAML (libyaml) -> typed, validated structs.
 *
 * rn_spec_load parses a file (rn_spec_load_text: a string), follows
 * `extends:` (deep merge: the extending file's keys win; lists are replaced,
 * not merged) and `model: {include:}`,
 * applies dotted overrides ("train.epochs=2", "data.bias=0.99",
 * "model.layers.3.filters=8"), checks every key against its schema and
 * fills struct rn_spec with defaults applied.
 *
 * Every error is one line in compiler format, 1-based:
 *   experiments/x.yaml:14:7: error: layer 'conv1' (conv2d): unknown key 'filtres' (did you mean
 * 'filters'?) All errors of a file are collected; err gets the first one and rn_spec_load's
 * *n_errors (if given) the count; the full list is printed to the stream given (may be NULL).
 */
#ifndef RN_SPEC_H
#define RN_SPEC_H

#include <stdint.h>
#include <stdio.h>

#include "data.h"
#include "error.h"
#include "layer.h"
#include "loss.h"
#include "optim.h"
#include "paths.h"
#include "schedule.h"
#include "schema.h"

#define RN_MAX_LAYERS 128
#define RN_MAX_LOSSES 8
#define RN_MAX_EVAL 4
#define RN_MAX_ANALYSES 32

struct rn_spec_layer {
    const struct rn_layer_type *type;      /* borrowed from the registry */
    char name[RN_NAME_MAX];                /* as written, or "" (the graph names it) */
    char from[RN_MAX_INPUTS][RN_NAME_MAX]; /* inputs by node name; "" = previous node */
    int n_from;                            /* 0 = previous node */
    struct rn_values v;                    /* type->keys resolved */
    char file[RN_PATH_MAX];                /* file it was written in (a model file, maybe) */
    int line, col;                         /* 1-based position of the layer's mapping */
};

struct rn_spec_model {
    char name[RN_NAME_MAX]; /* "simple_gap_cnn" */
    struct rn_spec_layer layers[RN_MAX_LAYERS];
    int n_layers;
};

#define RN_MAX_GROUPS 8
#define RN_MAX_GROUP_NODES 16
#define RN_MAX_OPTIMIZERS 4
#define RN_MAX_SCHEDULES 8
#define RN_MAX_BINDS 8
#define RN_MAX_PROGRAM 8
#define RN_MAX_SETS 4
#define RN_MAX_AUGMENTS 4

struct rn_spec_loss {
    char type[32];                     /* "cross_entropy" | "neg_cross_entropy" | "saliency" */
    enum rn_loss_kind kind;            /* type, resolved (loss.h) */
    char name[RN_NAME_MAX];            /* unique; default: the target (cross_entropy),
                                          "neg_<target>", "saliency" */
    char on[RN_NAME_MAX];              /* node whose output are logits; "" = last node */
    char target[16];                   /* "digit" | "colour" */
    enum rn_target target_kind;        /* target, resolved */
    double weight;                     /* default 1; used when weight_schedule is "" */
    char weight_schedule[RN_NAME_MAX]; /* schedule giving the weight each step, or "" */
    /* saliency only (runner/saliency.h) */
    char norm[8];       /* "l1" (default) | "l2" */
    char reduce[24];    /* "mean_background" (default) | "background_share" */
    double threshold;   /* background: min(R,G,B) < threshold; default 0.95 */
    struct rn_values v; /* its schema keys as resolved: what the resolved spec writes */
    char file[RN_PATH_MAX];
    int line, col;
};

/* Named parameter group: the parameters of the nodes listed; an entry
 * "colour_*" matches every node whose name starts with "colour_", and an
 * exact name also matches the nodes a basic_block expands into
 * ("layer1" -> "layer1.conv1", ...). Names are checked against the graph
 * when the run is built. */
struct rn_spec_group {
    char name[RN_NAME_MAX];
    char nodes[RN_MAX_GROUP_NODES][RN_NAME_MAX];
    int node_line[RN_MAX_GROUP_NODES], node_col[RN_MAX_GROUP_NODES];
    int n_nodes;
    char file[RN_PATH_MAX];
    int line, col;
};

struct rn_spec_optimizer {
    char name[RN_NAME_MAX];
    char type[16];           /* "adam" | "adamw" | "sgd" */
    enum rn_optim_kind kind; /* type, resolved (optim.h) */
    double lr;               /* used when lr_schedule is "" */
    char lr_schedule[RN_NAME_MAX];
    double beta1, beta2, eps, weight_decay, momentum;
    double clip_norm; /* > 0: clip the optimizer's global gradient norm; 0 = off */
    char groups[RN_MAX_GROUPS][RN_NAME_MAX]; /* group names; none = every parameter */
    int n_groups;
    struct rn_values v; /* its schema keys as resolved: what the resolved spec writes */
    char file[RN_PATH_MAX];
    int line, col;
};

/* A scalar function of training progress p = step / total_steps in [0, 1]. */
struct rn_spec_schedule {
    char name[RN_NAME_MAX];
    char type[16];                  /* "constant" | "linear" | "dann_sigmoid" | "step" */
    enum rn_schedule_kind kind;     /* type, resolved (schedule.h) */
    double value;                   /* constant */
    double start, end, from, until; /* linear: start before `from`, end from `until` on */
    double scale, gamma;            /* dann_sigmoid: scale * (2 / (1 + exp(-gamma p)) - 1) */
    double at, before, after;       /* step: before while p < at, after from then on */
    struct rn_values v;             /* its type's keys as resolved: what the resolved spec writes */
    char file[RN_PATH_MAX];
    int line, col;
};

/* A layer key driven by a schedule: set before every step. */
struct rn_spec_bind {
    char node[RN_NAME_MAX];
    char key[32];
    char schedule[RN_NAME_MAX];
    struct rn_values v; /* its schema keys as resolved: what the resolved spec writes */
    char file[RN_PATH_MAX];
    int line, col;
};

/* node.key = value for the duration of one program step. */
struct rn_spec_set {
    char node[RN_NAME_MAX];
    char key[32];
    double value;
    char file[RN_PATH_MAX];
    int line, col;
};

/* One entry of the step program: `repeat` sub-steps, each a forward of
 * what changed, the backward of `losses` and an update by `optimizers`. */
struct rn_spec_step {
    int repeat;                                      /* default 1 */
    char optimizers[RN_MAX_OPTIMIZERS][RN_NAME_MAX]; /* none = every optimizer */
    int n_optimizers;
    char losses[RN_MAX_LOSSES][RN_NAME_MAX]; /* none = every loss term */
    int n_losses;
    struct rn_spec_set sets[RN_MAX_SETS];
    int n_sets;
    struct rn_values v; /* its schema keys as resolved: what the resolved spec writes */
    char file[RN_PATH_MAX];
    int line, col;
};

struct rn_spec_augment {
    char type[24];                                /* "channel_permute" | "colour_jitter" */
    double brightness, contrast, saturation, hue; /* colour_jitter */
    struct rn_values v; /* its type's keys as resolved: what the resolved spec writes */
    char file[RN_PATH_MAX];
    int line, col;
};

struct rn_spec_train {
    int epochs;                        /* default 1 */
    int batch;                         /* default 64 */
    int eval_batch;                    /* default 256 */
    char optimizer[16];                /* "adam" (default) | "adamw" | "sgd" */
    enum rn_optim_kind optimizer_kind; /* optimizer, resolved */
    double lr;                         /* default 1e-3 */
    double beta1, beta2, eps;          /* 0.9, 0.999, 1e-8 */
    double weight_decay;               /* 0 (adamw default 1e-2) */
    double momentum;                   /* sgd, default 0 */
    int shuffle;                       /* default true */
    int log_every;                     /* steps between step-metric records, default 10 */
    int checkpoint_epochs; /* checkpoint.h5 every this many epochs (and after the last); 0: no */
    int checkpoint_steps;  /* and every this many steps; 0: off */
    int on_nonfinite_skip; /* 1: skip a step with a NaN/Inf loss or gradient; 0: stop */
    double clip_norm;      /* default optimizer's gradient clipping; 0 = off */
    struct rn_spec_loss losses[RN_MAX_LOSSES];
    int n_losses; /* default: one cross_entropy on digit */
    struct rn_spec_group groups[RN_MAX_GROUPS];
    int n_groups;
    struct rn_spec_optimizer optimizers[RN_MAX_OPTIMIZERS];
    int n_optimizers; /* 0: one optimizer from the keys above, every parameter */
    struct rn_spec_schedule schedules[RN_MAX_SCHEDULES];
    int n_schedules;
    struct rn_spec_bind binds[RN_MAX_BINDS];
    int n_binds;
    struct rn_spec_step program[RN_MAX_PROGRAM];
    int n_program; /* 0: one step, every loss, every optimizer */
    struct rn_spec_augment augment[RN_MAX_AUGMENTS];
    int n_augment; /* train split only */
    char eval[RN_MAX_EVAL]
             [16]; /* splits evaluated after each epoch; default train? no: val, test */
    int n_eval;
    struct rn_values v; /* the keys of train's schema as resolved: what the resolved
                           spec writes (the fields above are read from it) */
};

struct rn_spec_load {
    char run[RN_PATH_MAX];   /* run.h5 or its run directory; "" = train instead */
    char model[RN_NAME_MAX]; /* model name inside /models; default "main" */
    int train_if_missing;    /* if_missing: train — train instead when `run` does not exist */
    struct rn_values v;      /* its schema keys as resolved: what the resolved spec writes */
};

struct rn_spec_analysis {
    const struct rn_analysis_type *type; /* borrowed from the registry */
    char name[RN_NAME_MAX];              /* unique; default the type name, then type_2 ... */
    struct rn_values v;                  /* type->keys resolved */
    char file[RN_PATH_MAX];
    int line, col;
};

struct rn_spec {
    char file[RN_PATH_MAX]; /* the experiment file as given */
    char name[RN_NAME_MAX]; /* `name:`, default the file's basename without .yaml */
    char description[1024];
    uint64_t seed;         /* default 0 */
    char device[16];       /* "auto" (default) | "cpu" | "cuda" */
    int threads;           /* default 0 = all cores */
    int deterministic;     /* default false */
    char out[RN_PATH_MAX]; /* results root, default "results" */
    int has_model;         /* 0 for data-only experiments (task0_dataset) */
    struct rn_data_config data;
    struct rn_spec_model model;
    struct rn_spec_train train;
    int has_train; /* 0: no train section (load, or data only) */
    struct rn_spec_load load;
    struct rn_spec_analysis analyses[RN_MAX_ANALYSES];
    int n_analyses;
    struct rn_values v;      /* the top-level schema keys as resolved (the resolved spec) */
    struct rn_values data_v; /* data's schema keys as resolved (the resolved spec) */
    char *resolved;          /* the resolved spec as YAML text, defaults included; owned */
};

/* Parses path with overrides (NULL-terminated array of "a.b=c", may be NULL).
 * errors: where to print every error line (NULL: only the first, into err).
 * On failure *spec is left freeable. */
int rn_spec_load(struct rn_spec *spec, const char *path, const char *const *overrides, FILE *errors,
                 int *n_errors, struct rn_error *err);
/* The same for a spec given as text (a recorded /config yaml, say): name
 * stands for the file in error messages and spec->file, and gives the
 * default `name:`; `extends` and `model.include` paths are relative to dir,
 * or refused with an error when dir is NULL (absolute paths are followed). */
int rn_spec_load_text(struct rn_spec *spec, const char *text, const char *name, const char *dir,
                      const char *const *overrides, FILE *errors, int *n_errors,
                      struct rn_error *err);
void rn_spec_free(struct rn_spec *spec);

/* Compares two resolved specs (their YAML text) key by key and writes the
 * differing key paths into out, as "train.epochs (3 -> 5), data.bias (0.95 ->
 * 0.9)" (lists by index: train.losses.0.weight; description and out are not
 * compared). Returns how many differ, or -1 with err set when a text does not
 * parse. */
int rn_spec_diff(const char *old_yaml, const char *new_yaml, char *out, size_t cap,
                 struct rn_error *err);

/* Writes the reference of every section's keys (markdown) to f: used to
 * generate docs/spec.md and by `runner --help-spec`. */
void rn_spec_write_reference(FILE *f);

#endif
