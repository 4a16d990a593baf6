/* spec.h - experiment specs: YAML (libyaml) -> typed, validated structs.
 *
 * rn_spec_load parses a file, follows `extends:` (deep merge: the extending
 * file's keys win; lists are replaced, not merged) and `model: {include:}`,
 * applies dotted overrides ("train.epochs=2", "data.bias=0.99",
 * "model.layers.3.filters=8"), checks every key against its schema and
 * fills struct rn_spec with defaults applied.
 *
 * Every error is one line in compiler format, 1-based:
 *   experiments/x.yaml:14:7: error: layer 'conv1' (conv2d): unknown key 'filtres' (did you mean 'filters'?)
 * All errors of a file are collected; err gets the first one and
 * rn_spec_load's *n_errors (if given) the count; the full list is printed to
 * the stream given (may be NULL).
 */
#ifndef RN_SPEC_H
#define RN_SPEC_H

#include <stdint.h>
#include <stdio.h>

#include "data.h"
#include "error.h"
#include "layer.h"
#include "schema.h"

#define RN_PATH_MAX 512
#define RN_MAX_LAYERS 128
#define RN_MAX_LOSSES 8
#define RN_MAX_EVAL 4
#define RN_MAX_ANALYSES 32

struct rn_spec_layer {
    const struct rn_layer_type *type; /* borrowed from the registry */
    char name[RN_NAME_MAX];           /* as written, or "" (the graph names it) */
    char from[RN_MAX_INPUTS][RN_NAME_MAX]; /* inputs by node name; "" = previous node */
    int n_from;                       /* 0 = previous node */
    struct rn_values v;               /* type->keys resolved */
    char file[RN_PATH_MAX];           /* file it was written in (a model file, maybe) */
    int line, col;                    /* 1-based position of the layer's mapping */
};

struct rn_spec_model {
    char name[RN_NAME_MAX];           /* "simple_gap_cnn" */
    struct rn_spec_layer layers[RN_MAX_LAYERS];
    int n_layers;
};

struct rn_spec_loss {
    char type[32];           /* "cross_entropy" */
    char on[RN_NAME_MAX];    /* node whose output are logits; "" = last node */
    char target[16];         /* "digit" | "color" */
    double weight;           /* default 1 */
    char file[RN_PATH_MAX];
    int line, col;
};

struct rn_spec_train {
    int epochs;              /* default 1 */
    int batch;               /* default 64 */
    int eval_batch;          /* default 256 */
    char optimizer[16];      /* "adam" (default) | "adamw" | "sgd" */
    double lr;               /* default 1e-3 */
    double beta1, beta2, eps;/* 0.9, 0.999, 1e-8 */
    double weight_decay;     /* 0 (adamw default 1e-2) */
    double momentum;         /* sgd, default 0 */
    int shuffle;             /* default true */
    int log_every;           /* steps between step-metric records, default 10 */
    struct rn_spec_loss losses[RN_MAX_LOSSES];
    int n_losses;            /* default: one cross_entropy on digit */
    char eval[RN_MAX_EVAL][16]; /* splits evaluated after each epoch; default train? no: val, test */
    int n_eval;
};

struct rn_spec_load {
    char run[RN_PATH_MAX];   /* run.h5 or its run directory; "" = train instead */
    char model[RN_NAME_MAX]; /* model name inside /models; default "main" */
};

struct rn_spec_analysis {
    const struct rn_analysis_type *type; /* borrowed from the registry */
    char name[RN_NAME_MAX];   /* unique; default the type name, then type_2 ... */
    struct rn_values v;       /* type->keys resolved */
    char file[RN_PATH_MAX];
    int line, col;
};

struct rn_spec {
    char file[RN_PATH_MAX];   /* the experiment file as given */
    char name[RN_NAME_MAX];   /* `name:`, default the file's basename without .yaml */
    char description[1024];
    uint64_t seed;            /* default 0 */
    char device[16];          /* "auto" (default) | "cpu" | "cuda" */
    int threads;              /* default 0 = all cores */
    int deterministic;        /* default false */
    char out[RN_PATH_MAX];    /* results root, default "results" */
    int has_model;            /* 0 for data-only experiments (task0_dataset) */
    struct rn_data_config data;
    struct rn_spec_model model;
    struct rn_spec_train train;
    int has_train;            /* 0: no train section (load, or data only) */
    struct rn_spec_load load;
    struct rn_spec_analysis analyses[RN_MAX_ANALYSES];
    int n_analyses;
    char *resolved;           /* the resolved spec as YAML text, defaults included; owned */
};

/* Parses path with overrides (NULL-terminated array of "a.b=c", may be NULL).
 * errors: where to print every error line (NULL: only the first, into err).
 * On failure *spec is left freeable. */
int rn_spec_load(struct rn_spec *spec, const char *path, const char *const *overrides,
                 FILE *errors, int *n_errors, struct rn_error *err);
void rn_spec_free(struct rn_spec *spec);

/* Writes the reference of every section's keys (markdown) to f: used to
 * generate docs/spec.md and by `runner --help-spec`. */
void rn_spec_write_reference(FILE *f);

/* Edit distance helper for did-you-mean: returns the candidate closest to
 * word (distance <= max(2, strlen/3)) or NULL. */
const char *rn_nearest(const char *word, const char *const *candidates, int n);

#endif
