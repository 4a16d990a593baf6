/* common.h - what the analyses of runner/analyses/ share; internal to the
 * folder.
 *
 *   common.c  located errors and the nodes an analysis names
 *   inputs.c  the inputs of an analysis (constructed `cases` or the first n
 *             images of a split): made, written beside the maps, read back
 *             for the figures
 *   models.c  the models of a `models` key: this run's and others'
 *   interp.c  the arithmetic: Grad-CAM, saliency maps (interp.h)
 *   gradcam.c also the Grad-CAM keys attention_mass shares (method, class)
 *   attack_plot.c  the figures of the attack analysis (attack.c)
 *   sae_ops.c the arithmetic of the sae analyses (sae_ops.h); sae_plot.c
 *             their figures
 *
 * Keys are read through the constants of each type's schema: an analysis
 * helper that reads a key takes its index (e.g. GRADCAM_NODE).
 */
#ifndef RN_ANALYSES_COMMON_H
#define RN_ANALYSES_COMMON_H

#include <stdint.h>
#include <stdio.h>

#include "analysis.h"
#include "graph.h"
#include "interp.h"
#include "plot.h"
#include "spec.h"
#include "train.h"

/* Inputs of one analysis; those that draw one figure row per input take at
 * most RN_ANALYSIS_MAX_SHOWN. */
#define RN_ANALYSIS_MAX_INPUTS 1024
#define RN_ANALYSIS_MAX_SHOWN 64
#define RN_ANALYSIS_MAX_MODELS 8

/* The number of entries of a key schema, for its static assertion. */
#define RN_N_KEYS(keys) ((int)(sizeof(keys) / sizeof((keys)[0])))

#define RN_CASES_DOC                                                                               \
    "constructed inputs: a list of {digit, colour, split, index, predicted} (see 'List-valued "    \
    "analysis keys'); empty = the first n images of split that pass its filters"
/* The filters of split inputs (no cases), one schema row each; an analysis
 * takes them by adding the rows and their indices in its rn_input_keys.
 * The spec loader checks their values (check_analyses.c). */
#define RN_INPUT_DIGIT_KEY                                                                         \
    {                                                                                              \
        "digit", RN_KIND_STRING, 0, 0, "any", 1, 0, NULL,                                          \
            "split inputs: only images of this digit (0-9), or any"                                \
    }
#define RN_INPUT_COLOUR_KEY                                                                        \
    {                                                                                              \
        "colour", RN_KIND_STRING, 0, 0, "any", 1, 0, NULL,                                         \
            "split inputs: only images of this colour as the split stores it (a palette name or "  \
            "0-9), "                                                                               \
            "or any"                                                                               \
    }
#define RN_INPUT_PREDICTED_KEY                                                                     \
    {                                                                                              \
        "predicted", RN_KIND_STRING, 0, 0, "any", 1, 0, NULL,                                      \
            "split inputs: only images this run's model (eval mode) predicts so: any, correct, "   \
            "wrong, "                                                                              \
            "a class 0-9, or follows_colour (the class whose training colour the image has)"       \
    }
#define RN_INPUT_INDEX_KEY                                                                         \
    {                                                                                              \
        "index", RN_KIND_INT, 0, 0, NULL, 0, 1e9, NULL,                                            \
            "split inputs: the first index of split looked at"                                     \
    }
#define RN_MODELS_DOC                                                                              \
    "models to compare: a list of {name, run, model} (see 'List-valued analysis keys'); a run "    \
    "not found is skipped with a warning; empty = this run's model"

/* ---- errors and nodes (common.c) ------------------------------------------ */

/* "file:line:col: error: analysis 'x' (type): msg", at key (a schema index)
 * when it was written, else (or for key -1) at the analysis. Returns -1. */
__attribute__((format(printf, 4, 5))) int rn_analysis_errorf(struct rn_error *err,
                                                             const struct rn_spec_analysis *a,
                                                             int key, const char *fmt, ...);

/* -1 with "needs a model" when has_graph is 0. */
int rn_analysis_need_graph(const struct rn_spec_analysis *a, int has_graph, struct rn_error *err);

/* The node of g named by key `key` of a; -1 and "unknown node 'x' (did you
 * mean 'y'?)" (or the model's node names when none is near) otherwise. */
int rn_analysis_node(const struct rn_graph *g, const struct rn_spec_analysis *a, int key,
                     struct rn_error *err);

/* Writes v as <group>/<name> in the run's file: a scalar (nd 0), (d0) or
 * (d0, d1). */
int rn_analysis_put(struct rn_run *run, const char *group, const char *name, enum rn_dtype t,
                    const void *v, int nd, int d0, int d1, struct rn_error *err);

/* The splits with images a `split` key selects: one name, or every one for
 * "all". Returns their count (>= 1) or -1. */
int rn_analysis_splits(struct rn_run *run, const char *which, struct rn_split **out,
                       struct rn_error *err);

/* ---- inputs (inputs.c) ------------------------------------------------------ */

struct rn_inputs {
    int n, c, h, w;
    uint8_t *images; /* (n, c, h, w) */
    uint8_t *masks;  /* (n, h, w): 1 on stroke (foreground) pixels */
    int32_t labels[RN_ANALYSIS_MAX_INPUTS], colours[RN_ANALYSIS_MAX_INPUTS],
        sources[RN_ANALYSIS_MAX_INPUTS];
    char split[16];  /* "" when cases come from several splits */
    int constructed; /* 1: cases */
};

/* Schema indices of the keys that choose an analysis' inputs; -1 for a
 * filter the analysis does not take (then: any, from index 0). */
struct rn_input_keys {
    int cases, split, n;
    int digit, colour, predicted, index; /* filters of split inputs */
};

/* The inputs of a: its cases, else the first n images of split, from
 * index, that pass the filters digit, colour (the colour the split stores)
 * and predicted; fewer than n is an error naming the filters and counts. A
 * `predicted` condition (of the filter or of a case) is decided by the
 * run's own model, run->graph in eval mode. On failure *in is still
 * freeable. */
int rn_inputs_build(struct rn_run *run, const struct rn_spec_analysis *a, struct rn_input_keys k,
                    struct rn_inputs *in, struct rn_error *err);
void rn_inputs_free(struct rn_inputs *in);
/* Writes images, labels, colours, sources and how they were made under
 * group: what every figure shows beside its maps. */
int rn_inputs_write(struct rn_run *run, const char *group, const struct rn_inputs *in,
                    struct rn_error *err);
/* Stroke pixels of an (c, hw) image as the colouriser drew them. */
void rn_stroke_mask(const uint8_t *img, int c, int hw, const struct rn_data_config *dc,
                    uint8_t *mask);
/* Copies images [start, start + m) of a (n, c, h, w) uint8 array into the
 * graph's input (on its device). */
int rn_inputs_load(struct rn_graph *g, const uint8_t *images, int start, int m,
                   struct rn_error *err);
/* Samples per pass for the analyses on g. */
int rn_inputs_batch(const struct rn_graph *g);

/* The inputs of an analysis group as read back for a figure. */
struct rn_plot_inputs {
    uint8_t *img;
    int32_t *labels, *colours, *sources;
    int n, c, h, w, cases;
    char *split, *colouring;
};

int rn_plot_inputs_read(struct rn_plotter *p, const char *group, struct rn_plot_inputs *in,
                        struct rn_error *err);
void rn_plot_inputs_free(struct rn_plot_inputs *in);
/* "digit 1 on red" for a case, "test #17 · digit 1 on red" for a split image. */
void rn_plot_inputs_caption(const struct rn_plot_inputs *in, int i, char *buf, size_t n);
/* 1 where pixel k of image i is stroke (foreground), as the colouriser drew it. */
int rn_plot_inputs_is_stroke(const struct rn_plot_inputs *in, int i, size_t k);

/* ---- models (models.c) ----------------------------------------------------- */

struct rn_model {
    char name[RN_NAME_MAX];
    struct rn_run *run; /* the analysed run, or &own */
    struct rn_run own;  /* a model loaded from another run: spec, graph, probs only */
    struct rn_spec spec;
    int loaded;
};

/* The models of the `models` key `key` of a ("name run model; ..."), or
 * this run's when it is empty. */
int rn_models_open(struct rn_run *run, const struct rn_spec_analysis *a, int key,
                   struct rn_model **out, int *n_out, struct rn_error *err);
void rn_models_free(struct rn_model *m, int n);
/* The names as the group's ';'-separated "models" attribute. */
int rn_models_write_names(struct rn_run *run, const char *group, const struct rn_model *m, int n,
                          struct rn_error *err);
/* 1 when a `models` list uses the analysed run's model: empty, or an item
 * with run 'self'. */
int rn_models_use_own(const char *list);
/* Splits a "models" attribute in place into at most max names. */
int rn_models_split_names(char *s, char **out, int max);

/* ---- the attack's figures (attack_plot.c) ------------------------------------ */

/* The figures of an attack group (rn_analysis_type.plot of attack.c). */
int rn_attack_plot(struct rn_plotter *p, const char *group, const char *name, char *const *datasets,
                   int n_datasets, struct rn_error *err);

/* ---- the sae analyses (sae.c, sae_plot.c, sae_intervene.c) ------------------- */

/* The node an sae analysis' key `key` names in g, or the last
 * global_avg_pool node when it is empty; -1 reported. */
int rn_sae_node(const struct rn_graph *g, const struct rn_spec_analysis *a, int key,
                struct rn_error *err);
/* rn_sae_node, and the node is a cut before logits (sae_ops.h). */
int rn_sae_node_check(const struct rn_graph *g, const struct rn_spec_analysis *a, int key,
                      int logits, struct rn_error *err);
/* h (n, d, malloc'd): the activations of node of model mo (item mi of a's
 * models key) over the first n images of split s, read from
 * /activations/<model>/<node>/<split> of the run file when an analysis
 * stored at least n there (the first n of them), else computed (eval mode)
 * and stored, replacing fewer, with the split's digit and colour labels. A
 * model of another source stored under the same name is an error. */
int rn_sae_activations(struct rn_run *run, const struct rn_spec_analysis *a, int models_key,
                       const struct rn_model *mo, int mi, int node, const struct rn_split *s,
                       size_t n, float **h, struct rn_error *err);
/* The figures of an sae group, and of an sae_intervene group. */
int rn_sae_plot(struct rn_plotter *p, const char *group, const char *name, char *const *datasets,
                int n_datasets, struct rn_error *err);
int rn_sae_intervene_plot(struct rn_plotter *p, const char *group, const char *name,
                          char *const *datasets, int n_datasets, struct rn_error *err);

/* ---- Grad-CAM keys (gradcam.c) --------------------------------------------- */

/* `class` (key `key`): pred (-1), true (-2) or a class index below k. */
int rn_gradcam_class(const struct rn_spec_analysis *a, int key, int k, int *out,
                     struct rn_error *err);
enum rn_cam_method rn_gradcam_method(const char *method);
/* Grad-CAM at node tap must explain a spatial map before the logits. */
int rn_gradcam_check_tap(const struct rn_graph *g, const struct rn_spec_analysis *a, int key,
                         int tap, int logits, struct rn_error *err);

#endif
