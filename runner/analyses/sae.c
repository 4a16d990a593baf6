/* sae.c - a sparse autoencoder on a model's hidden state (SPEC.md "Sparse
 * autoencoder (Task 6)"), for one model or several side by side: the
 * activations of a node over a split (stored once under /activations and
 * reused by later analyses), the SAE declared by keys and trained (sae.h),
 * its metrics per epoch, the model with the hidden state spliced (SAE
 * reconstruction, zero and mean ablation, loss recovered), per-feature
 * firing density, feature x digit and feature x colour mean tables,
 * selectivity and the classes colour, digit, both and mixed, and the images
 * that most activate the colour features. sae_intervene.c edits the codes of
 * the SAE trained here. The arithmetic: sae_ops.c; figures: sae_plot.c.
 */
#include "sae_ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

enum {
    SAE_MODELS,
    SAE_NODE,
    SAE_SPLIT,
    SAE_N,
    SAE_FEATURES,
    SAE_EXPANSION,
    SAE_ACTIVATION,
    SAE_K,
    SAE_L1,
    SAE_L1_DECODER_NORM,
    SAE_LR,
    SAE_BATCH,
    SAE_EPOCHS,
    SAE_SEED,
    SAE_BIAS_INIT,
    SAE_CENTRE,
    SAE_DEAD_WINDOW,
    SAE_RESAMPLE_EVERY,
    SAE_EVAL_SPLIT,
    SAE_TABLES_SPLIT,
    SAE_THRESHOLD,
    SAE_TOP,
    SAE_SHOW,
    SAE_N_KEYS
};
static const struct rn_key sae_keys[] = {
    [SAE_MODELS] = {"models", RN_KIND_STRING, 0, 0, "", 1, 0, NULL, RN_MODELS_DOC},
    [SAE_NODE] = {"node", RN_KIND_STRING, 0, 0, "", 1, 0, NULL,
                  "node whose output the SAE encodes; empty = the last global_avg_pool node"},
    [SAE_SPLIT] = {"split", RN_KIND_STRING, 0, 0, "train", 1, 0, NULL,
                   "split whose activations the SAE is trained on and the features are "
                   "described with"},
    [SAE_N] = {"n", RN_KIND_INT, 0, 0, NULL, 0, 1e9, NULL, "images of split, the first n; 0 = all"},
    [SAE_FEATURES] = {"features", RN_KIND_INT, 0, 0, NULL, 0, 1 << 16, NULL,
                      "SAE features; 0 = expansion x the node's width"},
    [SAE_EXPANSION] = {"expansion", RN_KIND_INT, 0, 4, NULL, 1, 256, NULL,
                       "features per input dimension when features is 0"},
    [SAE_ACTIVATION] = {"activation", RN_KIND_CHOICE, 0, 0, "relu", 1, 0, "relu|topk",
                        "relu (sparsity from the L1 term) or topk (the k largest codes)"},
    [SAE_K] = {"k", RN_KIND_INT, 0, 32, NULL, 1, 1 << 16, NULL, "topk: active features per sample"},
    [SAE_L1] = {"l1", RN_KIND_FLOAT, 0, 1e-3, NULL, 0, 1e6, NULL, "L1 coefficient of the codes"},
    [SAE_L1_DECODER_NORM] = {"l1_decoder_norm", RN_KIND_BOOL, 0, 0, NULL, 1, 0, NULL,
                             "weight each |c_j| by the norm of its decoder column"},
    [SAE_LR] = {"lr", RN_KIND_FLOAT, 0, 1e-3, NULL, 0, 10, NULL, "Adam learning rate"},
    [SAE_BATCH] = {"batch", RN_KIND_INT, 0, 256, NULL, 1, 1 << 20, NULL, "samples per step"},
    [SAE_EPOCHS] = {"epochs", RN_KIND_INT, 0, 50, NULL, 1, 100000, NULL,
                    "passes over the activations"},
    [SAE_SEED] = {"seed", RN_KIND_INT, 0, 0, NULL, 0, 2147483647, NULL,
                  "initialisation, shuffling and resampling"},
    [SAE_BIAS_INIT] = {"bias_init", RN_KIND_CHOICE, 0, 0, "mean", 1, 0, "mean|median",
                       "pre-decoder bias: the data mean or its geometric median"},
    [SAE_CENTRE] = {"centre", RN_KIND_BOOL, 0, 0, NULL, 1, 0, NULL,
                    "subtract the data mean before encoding (added back after decoding)"},
    [SAE_DEAD_WINDOW] = {"dead_window", RN_KIND_INT, 0, 0, NULL, 0, 1e12, NULL,
                         "a feature is dead after this many training samples without firing; "
                         "0 = one epoch"},
    [SAE_RESAMPLE_EVERY] = {"resample_every", RN_KIND_INT, 0, 0, NULL, 0, 1e12, NULL,
                            "steps between resamplings of dead features; 0 = never"},
    [SAE_EVAL_SPLIT] = {"eval_split", RN_KIND_STRING, 0, 0, "val", 1, 0, NULL,
                        "split the spliced-in accuracy and cross-entropy are measured on"},
    [SAE_TABLES_SPLIT] = {"tables_split", RN_KIND_STRING, 0, 0, "", 1, 0, NULL,
                          "split (all of it) the feature tables, classes and top images are "
                          "computed on; empty = split. On the training split colour and digit "
                          "agree as often as data.bias says; the hard test split separates them"},
    [SAE_THRESHOLD] = {"threshold", RN_KIND_FLOAT, 0, 2.0, NULL, 1, 1e6, NULL,
                       "selective: max class mean / mean over classes above this"},
    [SAE_TOP] = {"top", RN_KIND_INT, 0, 8, NULL, 1, 64, NULL,
                 "most-activating images kept per colour feature"},
    [SAE_SHOW] = {"show", RN_KIND_INT, 0, 20, NULL, 0, 256, NULL,
                  "colour features whose top images are stored and drawn (round robin over "
                  "the colours, strongest first)"},
};
_Static_assert(RN_N_KEYS(sae_keys) == SAE_N_KEYS, "one schema row per SAE_ key");
_Static_assert(SAE_N_KEYS <= RN_MAX_KEYS, "the sae schema fits struct rn_values");

static int check_sae(const struct rn_spec *, const struct rn_spec_analysis *,
                     const struct rn_graph *, int, struct rn_error *);
static int run_sae(struct rn_run *, const struct rn_spec_analysis *, struct rn_error *);
const struct rn_analysis_type rn_analysis_sae = {
    .name = "sae",
    .doc = "a sparse autoencoder on a node's activations over a split, for one model or several: "
           "training metrics, loss recovered, firing density, feature x digit and feature x "
           "colour tables, selectivity classes and the top images of the colour features",
    .keys = sae_keys,
    .n_keys = SAE_N_KEYS,
    .check = check_sae,
    .run = run_sae,
    .plot = rn_sae_plot,
};

/* ---- check ------------------------------------------------------------------ */

int rn_sae_node(const struct rn_graph *g, const struct rn_spec_analysis *a, int key,
                struct rn_error *err)
{
    if (a->v.str[key][0])
        return rn_analysis_node(g, a, key, err);
    for (int i = g->n_nodes - 1; i >= 0; i--)
        if (strcmp(g->nodes[i].layer.type->name, "global_avg_pool") == 0)
            return i;
    return rn_analysis_errorf(err, a, key,
                              "node: the model has no global_avg_pool node; name the node");
}

int rn_sae_node_check(const struct rn_graph *g, const struct rn_spec_analysis *a, int key,
                      int logits, struct rn_error *err)
{
    int node = rn_sae_node(g, a, key, err);
    if (node < 0)
        return -1;
    if (rn_sae_check_cut(g, node, logits, err)) {
        char why[RN_ERROR_MAX];
        snprintf(why, sizeof why, "%s", err ? err->msg : "");
        return rn_analysis_errorf(err, a, key, "node '%s': %s", g->nodes[node].layer.name, why);
    }
    return node;
}

static int check_sae(const struct rn_spec *spec, const struct rn_spec_analysis *a,
                     const struct rn_graph *g, int logits, struct rn_error *err)
{
    const struct rn_values *v = &a->v;
    if (spec->data.colouring == RN_COLOURING_NONE)
        return rn_analysis_errorf(err, a, -1,
                                  "needs coloured data (data.colouring: background or stroke): "
                                  "its features are described by digit and by colour");
    if (v->given[SAE_FEATURES] && v->given[SAE_EXPANSION])
        return rn_analysis_errorf(err, a, SAE_EXPANSION,
                                  "expansion: give features or expansion, not both");
    int topk = strcmp(v->str[SAE_ACTIVATION], "topk") == 0;
    if (!topk && v->given[SAE_K])
        return rn_analysis_errorf(err, a, SAE_K, "k: only for activation topk");
    if (topk && v->num[SAE_FEATURES] > 0 && v->num[SAE_K] >= v->num[SAE_FEATURES])
        return rn_analysis_errorf(err, a, SAE_K, "k %g: expected fewer than the %g features",
                                  v->num[SAE_K], v->num[SAE_FEATURES]);
    if (!topk && !(v->num[SAE_L1] > 0))
        return rn_analysis_errorf(err, a, SAE_L1,
                                  "l1 0 with activation relu: nothing makes the codes sparse "
                                  "(use activation topk)");
    if (!rn_models_use_own(v->str[SAE_MODELS]))
        return 0;
    if (rn_analysis_need_graph(a, g != NULL, err))
        return -1;
    int node = rn_sae_node_check(g, a, SAE_NODE, logits, err);
    if (node < 0)
        return -1;
    const struct rn_shape o = g->nodes[node].layer.out;
    int d = o.c * o.h * o.w,
        m = v->num[SAE_FEATURES] > 0 ? (int)v->num[SAE_FEATURES] : (int)v->num[SAE_EXPANSION] * d;
    if (topk && v->num[SAE_K] >= m)
        return rn_analysis_errorf(err, a, SAE_K, "k %g: expected fewer than the %d features",
                                  v->num[SAE_K], m);
    return 0;
}

/* ---- activations, stored once per (model, node, split) ---------------------- */

/* "self" or the run a model comes from, as the models list gives it. */
static void model_source(const struct rn_spec_analysis *a, int key, int mi, char *out, size_t n)
{
    const char *p = a->v.str[key];
    snprintf(out, n, "self");
    for (int i = 0; *p; i++) {
        char name[RN_NAME_MAX], path[RN_PATH_MAX], item[RN_STR_MAX];
        size_t span = strcspn(p, ";");
        snprintf(item, sizeof item, "%.*s", (int)span, p);
        p += span + (p[span] == ';');
        if (i == mi && sscanf(item, "%95s %511s", name, path) == 2)
            snprintf(out, n, "%s", path);
    }
}

int rn_sae_activations(struct rn_run *run, const struct rn_spec_analysis *a, int models_key,
                       const struct rn_model *mo, int mi, int node, const struct rn_split *s,
                       size_t n, float **h, struct rn_error *err)
{
    struct rn_graph *g = &mo->run->graph;
    const struct rn_shape o = g->nodes[node].layer.out;
    const int d = o.c * o.h * o.w;
    char group[512], path[640], source[RN_PATH_MAX];
    snprintf(group, sizeof group, "/activations/%s/%s/%s", mo->name, g->nodes[node].layer.name,
             s->name);
    model_source(a, models_key, mi, source, sizeof source);
    snprintf(path, sizeof path, "%s/x", group);
    *h = NULL;
    if (rn_results_exists(run->results, path)) {
        char *had = NULL, had_copy[RN_PATH_MAX];
        int nd, dims[4];
        if (rn_results_get_attr_str(run->results, group, "source", &had, err))
            return -1;
        snprintf(had_copy, sizeof had_copy, "%s", had);
        free(had);
        if (strcmp(had_copy, source) != 0)
            return rn_analysis_errorf(err, a, models_key,
                                      "model '%s': %s holds the activations of the model of "
                                      "'%s', this one comes from '%s'; give it another name",
                                      mo->name, group, had_copy, source);
        if (rn_results_read(run->results, path, RN_DTYPE_F32, (void **)h, &nd, dims, err))
            return -1;
        if (nd != 2 || dims[1] != d) {
            free(*h);
            *h = NULL;
            return rn_errorf(err, "%s: expected (n, %d), got another shape", path, d);
        }
        if ((size_t)dims[0] >= n) /* the first n are these n */
            return 0;
        /* fewer than asked for: computed again for n, and replaced */
        free(*h);
        *h = NULL;
    }
    if (!(*h = rn_malloc(sizeof(float) * n * (size_t)d, err)) ||
        rn_sae_extract(g, node, s->images, n, *h, err))
        goto fail;
    int dims[2] = {(int)n, d}, nn = (int)n;
    if (rn_results_write(run->results, path, RN_DTYPE_F32, *h, 2, dims, err))
        goto fail;
    snprintf(path, sizeof path, "%s/digits", group);
    if (rn_results_write(run->results, path, RN_DTYPE_U8, s->labels, 1, &nn, err))
        goto fail;
    snprintf(path, sizeof path, "%s/colours", group);
    if (rn_results_write(run->results, path, RN_DTYPE_U8, s->colours, 1, &nn, err) ||
        rn_results_set_attr_str(run->results, group, "source", source, err) ||
        rn_results_set_attr_str(run->results, group, "mode", "evaluation", err))
        goto fail;
    return 0;
fail:
    free(*h);
    *h = NULL;
    return -1;
}

/* ---- one model -------------------------------------------------------------- */

static struct rn_sae_config sae_config(const struct rn_spec_analysis *a, int d)
{
    const struct rn_values *v = &a->v;
    struct rn_sae_config c = rn_sae_config_default();
    c.m = v->num[SAE_FEATURES] > 0 ? (int)v->num[SAE_FEATURES] : (int)v->num[SAE_EXPANSION] * d;
    c.act = strcmp(v->str[SAE_ACTIVATION], "topk") == 0 ? RN_SAE_TOPK : RN_SAE_RELU;
    c.k = (int)v->num[SAE_K];
    c.l1 = (float)v->num[SAE_L1];
    c.l1_decoder_norm = v->num[SAE_L1_DECODER_NORM] != 0;
    c.lr = (float)v->num[SAE_LR];
    c.batch = (int)v->num[SAE_BATCH];
    c.epochs = (int)v->num[SAE_EPOCHS];
    c.seed = (uint64_t)v->num[SAE_SEED];
    c.bias_init =
        strcmp(v->str[SAE_BIAS_INIT], "median") == 0 ? RN_SAE_BIAS_MEDIAN : RN_SAE_BIAS_MEAN;
    c.centre = v->num[SAE_CENTRE] != 0;
    c.dead_window = (long)v->num[SAE_DEAD_WINDOW];
    c.resample_every = (long)v->num[SAE_RESAMPLE_EVERY];
    return c;
}

/* What one model's SAE gave. */
struct outcome {
    struct rn_sae sae;
    struct rn_sae_metrics *epochs, final;
    struct rn_sae_splice splice;
    float *density, *digit, *colour, *firing, *sel_digit, *sel_colour; /* (m) and (m, 10) */
    int32_t *cls, *order;
    int counts[RN_SAE_N_CLASSES], n_top;
    int32_t *top_features, *top_index; /* (n_top), (n_top, top) */
    float *top_value;                  /* (n_top, top) */
    uint8_t *top_images;               /* (n_top * top, c, h, w) */
};

static void outcome_free(struct outcome *o)
{
    rn_sae_free(&o->sae);
    void *p[] = {o->epochs,    o->density,    o->digit,     o->colour, o->firing,
                 o->sel_digit, o->sel_colour, o->cls,       o->order,  o->top_features,
                 o->top_index, o->top_value,  o->top_images};
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++)
        free(p[i]);
}

/* The colour features shown: round robin over the colours, each colour's
 * strongest first (by its mean on that colour). */
static int pick_shown(const struct outcome *o, int m, int k, int show, int32_t *out)
{
    int n = 0;
    for (int r = 0; n < show; r++) {
        int added = 0;
        for (int q = 0; q < k && n < show; q++) {
            /* the r-th strongest colour feature of colour q */
            int rank = 0;
            for (int t = 0; t < m; t++) {
                int j = o->order[t];
                if ((o->cls[j] != RN_SAE_COLOUR && o->cls[j] != RN_SAE_BOTH) ||
                    rn_argmax(o->colour + (size_t)j * k, k) != q)
                    continue;
                if (rank++ == r) {
                    out[n++] = j;
                    added = 1;
                    break;
                }
            }
        }
        if (!added)
            break;
    }
    return n;
}

/* The top images of the shown colour features over the split. */
static int top_images(struct outcome *o, const float *codes, size_t n, int m, int k, int top,
                      int show, const struct rn_split *s, struct rn_error *err)
{
    const size_t per = (size_t)s->c * s->h * s->w;
    top = (size_t)top < n ? top : (int)n;
    if (!(o->top_features = rn_malloc(sizeof(int32_t) * (size_t)(show > 0 ? show : 1), err)))
        return -1;
    o->n_top = pick_shown(o, m, k, show, o->top_features);
    size_t cells = (size_t)(o->n_top ? o->n_top : 1) * top;
    if (!(o->top_index = rn_malloc(sizeof(int32_t) * cells, err)) ||
        !(o->top_value = rn_malloc(sizeof(float) * cells, err)) ||
        !(o->top_images = rn_malloc(cells * per, err)))
        return -1;
    for (int f = 0; f < o->n_top; f++) {
        int j = o->top_features[f];
        int32_t *idx = o->top_index + (size_t)f * top;
        float *val = o->top_value + (size_t)f * top;
        int have = 0;
        /* insertion into a sorted list of `top`: n * top is small here */
        for (size_t i = 0; i < n; i++) {
            float c = codes[i * m + j];
            if (have == top && !(c > val[top - 1]))
                continue;
            int p = have < top ? have++ : top - 1;
            while (p > 0 && val[p - 1] < c) {
                val[p] = val[p - 1];
                idx[p] = idx[p - 1];
                p--;
            }
            val[p] = c;
            idx[p] = (int32_t)i;
        }
        for (int t = 0; t < top; t++)
            memcpy(o->top_images + ((size_t)f * top + t) * per, s->images + (size_t)idx[t] * per,
                   per);
    }
    return 0;
}

/* The feature tables of the codes of h over the split. */
static int describe(struct outcome *o, const float *h, size_t n, const struct rn_split *s, int k,
                    double threshold, int top, int show, struct rn_error *err)
{
    const int m = o->sae.m;
    float *codes = rn_malloc(sizeof(float) * n * (size_t)m, err);
    int *alive = rn_malloc(sizeof(int) * (size_t)m, err), rc = -1;
    if (!codes || !alive || !(o->digit = rn_malloc(sizeof(float) * (size_t)m * k, err)) ||
        !(o->colour = rn_malloc(sizeof(float) * (size_t)m * k, err)) ||
        !(o->firing = rn_malloc(sizeof(float) * (size_t)m * k, err)) ||
        !(o->sel_digit = rn_malloc(sizeof(float) * (size_t)m, err)) ||
        !(o->sel_colour = rn_malloc(sizeof(float) * (size_t)m, err)) ||
        !(o->cls = rn_malloc(sizeof(int32_t) * (size_t)m, err)) ||
        !(o->order = rn_malloc(sizeof(int32_t) * (size_t)m, err)))
        goto done;
    rn_sae_encode(&o->sae, h, n, codes);
    for (int j = 0; j < m; j++)
        alive[j] = o->density[j] > 0;
    if (rn_sae_class_means(codes, n, m, s->labels, k, o->digit, NULL, err) ||
        rn_sae_class_means(codes, n, m, s->colours, k, o->colour, o->firing, err))
        goto done;
    rn_sae_classify(o->digit, k, o->colour, k, alive, m, threshold, o->sel_digit, o->sel_colour,
                    o->cls, o->counts);
    rn_sae_feature_order(o->digit, k, o->colour, k, o->cls, m, o->order);
    rc = top_images(o, codes, n, m, k, top, show, s, err);
done:
    free(codes);
    free(alive);
    return rc;
}

struct problem {
    const struct rn_spec_analysis *a;
    struct rn_split *split, *eval, *tables;
    size_t n;
    int k, top;
};

static int sae_model(struct rn_run *run, const struct problem *P, const struct rn_model *mo, int mi,
                     struct outcome *o, struct rn_error *err)
{
    const struct rn_spec_analysis *a = P->a;
    struct rn_run *mr = mo->run;
    struct rn_graph *g = &mr->graph;
    float *h = NULL, *he = NULL, *ht = NULL, *mean = NULL;
    int rc = -1;
    int node = rn_sae_node_check(g, a, SAE_NODE, mr->logits_node, err);
    if (node < 0)
        return -1;
    if (g->nodes[mr->logits_node].layer.out.c != P->k)
        return rn_analysis_errorf(err, a, SAE_MODELS, "model '%s' has %d classes, the data %d",
                                  mo->name, g->nodes[mr->logits_node].layer.out.c, P->k);
    const struct rn_shape sh = g->nodes[node].layer.out;
    const int d = sh.c * sh.h * sh.w;
    struct rn_sae_config cfg = sae_config(a, d);
    if (cfg.act == RN_SAE_TOPK && cfg.k >= cfg.m)
        return rn_analysis_errorf(err, a, SAE_K, "k %d: expected fewer than the %d features", cfg.k,
                                  cfg.m);
    if (rn_sae_activations(run, a, SAE_MODELS, mo, mi, node, P->split, P->n, &h, err) ||
        rn_sae_activations(run, a, SAE_MODELS, mo, mi, node, P->eval, (size_t)P->eval->n, &he,
                           err) ||
        (P->tables != P->split && rn_sae_activations(run, a, SAE_MODELS, mo, mi, node, P->tables,
                                                     (size_t)P->tables->n, &ht, err)))
        goto done;
    if (!(o->epochs = rn_calloc((size_t)cfg.epochs, sizeof *o->epochs, err)) ||
        !(o->density = rn_malloc(sizeof(float) * (size_t)cfg.m, err)) ||
        !(mean = rn_calloc((size_t)d, sizeof *mean, err)))
        goto done;
    if (rn_sae_train(&o->sae, &cfg, h, P->n, d, o->epochs, NULL, err) ||
        rn_sae_eval(&o->sae, &cfg, h, P->n, &o->final, o->density, err))
        goto done;
    for (size_t i = 0; i < P->n; i++)
        for (int q = 0; q < d; q++)
            mean[q] += h[i * d + q] / (float)P->n;
    if (rn_sae_splice(g, node, mr->logits_node, &o->sae, he, (size_t)P->eval->n, P->eval->labels,
                      mean, &o->splice, err) ||
        describe(o, ht ? ht : h, ht ? (size_t)P->tables->n : P->n, P->tables, P->k,
                 a->v.num[SAE_THRESHOLD], P->top, (int)a->v.num[SAE_SHOW], err))
        goto done;
    rc = 0;
done:
    free(h);
    free(he);
    free(ht);
    free(mean);
    return rc;
}

/* ---- writing ------------------------------------------------------------------ */

static int put_scalar(struct rn_run *run, const char *group, const char *name, double v,
                      struct rn_error *err)
{
    float f = (float)v;
    return rn_analysis_put(run, group, name, RN_DTYPE_F32, &f, 0, 0, 0, err);
}

static int write_model(struct rn_run *run, const char *group, const char *name,
                       const struct outcome *o, int epochs, int k, const struct rn_split *s,
                       int n_top_each, struct rn_error *err)
{
    char g[512], sub[600];
    const int m = o->sae.m, d = o->sae.d;
    snprintf(g, sizeof g, "%s/%s", group, name);
    float *col = rn_malloc(sizeof(float) * (size_t)epochs, err);
    if (!col)
        return -1;
    static const char *const metric[] = {"loss", "mse", "fve", "l0", "dead", "dense", "resampled"};
    snprintf(sub, sizeof sub, "%s/train", g);
    for (int q = 0; q < 7; q++) {
        for (int e = 0; e < epochs; e++) {
            const struct rn_sae_metrics *x = &o->epochs[e];
            double v[7] = {
                x->loss, x->mse, x->fve, x->l0, x->dead_frac, x->dense_frac, (double)x->resampled};
            col[e] = (float)v[q];
        }
        if (rn_analysis_put(run, sub, metric[q], RN_DTYPE_F32, col, 1, epochs, 0, err)) {
            free(col);
            return -1;
        }
    }
    free(col);
    const struct rn_sae_metrics *f = &o->final;
    const struct rn_sae_splice *sp = &o->splice;
    const struct {
        const char *name;
        double v;
    } fin[] = {{"final/loss", f->loss},
               {"final/mse", f->mse},
               {"final/fve", f->fve},
               {"final/l0", f->l0},
               {"final/dead", f->dead_frac},
               {"final/dense", f->dense_frac},
               {"splice/ce_clean", sp->ce_clean},
               {"splice/ce_sae", sp->ce_sae},
               {"splice/ce_zero", sp->ce_zero},
               {"splice/ce_mean", sp->ce_mean},
               {"splice/acc_clean", sp->acc_clean},
               {"splice/acc_sae", sp->acc_sae},
               {"splice/acc_zero", sp->acc_zero},
               {"splice/acc_mean", sp->acc_mean},
               {"splice/recovered_zero", sp->recovered_zero},
               {"splice/recovered_mean", sp->recovered_mean}};
    for (size_t i = 0; i < sizeof fin / sizeof fin[0]; i++)
        if (put_scalar(run, g, fin[i].name, fin[i].v, err))
            return -1;
    int nt = o->n_top, top = n_top_each;
    int idims[4] = {nt * top, s->c, s->h, s->w};
    char path[640];
    snprintf(path, sizeof path, "%s/top/images", g);
    if (rn_analysis_put(run, g, "weights/w_enc", RN_DTYPE_F32, o->sae.w_enc, 2, m, d, err) ||
        rn_analysis_put(run, g, "weights/b_enc", RN_DTYPE_F32, o->sae.b_enc, 1, m, 0, err) ||
        rn_analysis_put(run, g, "weights/w_dec", RN_DTYPE_F32, o->sae.w_dec, 2, d, m, err) ||
        rn_analysis_put(run, g, "weights/b_dec", RN_DTYPE_F32, o->sae.b_dec, 1, d, 0, err) ||
        rn_analysis_put(run, g, "weights/mu", RN_DTYPE_F32, o->sae.mu, 1, d, 0, err) ||
        rn_analysis_put(run, g, "density", RN_DTYPE_F32, o->density, 1, m, 0, err) ||
        rn_analysis_put(run, g, "features/digit_means", RN_DTYPE_F32, o->digit, 2, m, k, err) ||
        rn_analysis_put(run, g, "features/colour_means", RN_DTYPE_F32, o->colour, 2, m, k, err) ||
        rn_analysis_put(run, g, "features/colour_firing_means", RN_DTYPE_F32, o->firing, 2, m, k,
                        err) ||
        rn_analysis_put(run, g, "features/selectivity_digit", RN_DTYPE_F32, o->sel_digit, 1, m, 0,
                        err) ||
        rn_analysis_put(run, g, "features/selectivity_colour", RN_DTYPE_F32, o->sel_colour, 1, m, 0,
                        err) ||
        rn_analysis_put(run, g, "features/class", RN_DTYPE_I32, o->cls, 1, m, 0, err) ||
        rn_analysis_put(run, g, "features/order", RN_DTYPE_I32, o->order, 1, m, 0, err) ||
        rn_analysis_put(run, g, "features/counts", RN_DTYPE_I32, o->counts, 1, RN_SAE_N_CLASSES, 0,
                        err) ||
        (nt > 0 &&
         (rn_analysis_put(run, g, "top/features", RN_DTYPE_I32, o->top_features, 1, nt, 0, err) ||
          rn_analysis_put(run, g, "top/index", RN_DTYPE_I32, o->top_index, 2, nt, top, err) ||
          rn_analysis_put(run, g, "top/value", RN_DTYPE_F32, o->top_value, 2, nt, top, err) ||
          rn_results_write(run->results, path, RN_DTYPE_U8, o->top_images, 4, idims, err))))
        return -1;
    char cls[128];
    snprintf(cls, sizeof cls, "%s;%s;%s;%s;%s", rn_sae_class_names[0], rn_sae_class_names[1],
             rn_sae_class_names[2], rn_sae_class_names[3], rn_sae_class_names[4]);
    snprintf(sub, sizeof sub, "%s/features", g);
    return rn_results_set_attr_str(run->results, sub, "classes", cls, err);
}

static int write_attrs(struct rn_run *run, const char *group, const struct problem *P,
                       const char *node, int m, int d, struct rn_error *err)
{
    const struct rn_spec_analysis *a = P->a;
    struct rn_results *r = run->results;
    const char *str[][2] = {
        {"kind", "sae"},
        {"node", node},
        {"split", P->split->name},
        {"eval_split", P->eval->name},
        {"tables_split", P->tables->name},
        {"activation", a->v.str[SAE_ACTIVATION]},
        {"bias_init", a->v.str[SAE_BIAS_INIT]},
        {"mode", "evaluation: dropout off, batchnorm running statistics"},
        {"loss_recovered", "(CE_ablated - CE_sae) / (CE_ablated - CE_clean)"},
        {"selectivity", "max class mean / mean over classes"},
    };
    for (size_t i = 0; i < sizeof str / sizeof str[0]; i++)
        if (rn_results_set_attr_str(r, group, str[i][0], str[i][1], err))
            return -1;
    const struct {
        const char *name;
        double v;
    } num[] = {
        {"features", m},
        {"inputs", d},
        {"k", a->v.num[SAE_K]},
        {"l1", a->v.num[SAE_L1]},
        {"l1_decoder_norm", a->v.num[SAE_L1_DECODER_NORM]},
        {"lr", a->v.num[SAE_LR]},
        {"batch", a->v.num[SAE_BATCH]},
        {"epochs", a->v.num[SAE_EPOCHS]},
        {"seed", a->v.num[SAE_SEED]},
        {"centre", a->v.num[SAE_CENTRE]},
        {"dead_window", a->v.num[SAE_DEAD_WINDOW]},
        {"resample_every", a->v.num[SAE_RESAMPLE_EVERY]},
        {"threshold", a->v.num[SAE_THRESHOLD]},
        {"n", (double)P->n},
    };
    for (size_t i = 0; i < sizeof num / sizeof num[0]; i++) {
        char buf[64];
        snprintf(buf, sizeof buf, "%.9g", num[i].v);
        if (rn_results_set_attr_str(r, group, num[i].name, buf, err))
            return -1;
    }
    return 0;
}

static void log_model(struct rn_run *run, const struct problem *P, const char *name,
                      const struct outcome *o)
{
    FILE *f = run->opt.log;
    const struct rn_sae_metrics *x = &o->final;
    const struct rn_sae_splice *s = &o->splice;
    fprintf(f,
            "sae %s: %s: %d -> %d features on %s (%zu): loss %.4g, mse %.4g, fve %.5f "
            "(fvu %.3g), L0 %.1f, dead %.3f, dense %.3f; alive %d\n",
            P->a->name, name, o->sae.d, o->sae.m, P->split->name, P->n, x->loss, x->mse, x->fve,
            1 - x->fve, x->l0, x->dead_frac, x->dense_frac, o->sae.m - o->counts[RN_SAE_DEAD]);
    fprintf(f, "sae %s: %s: classes (on %s) colour %d, digit %d, both %d, mixed %d, dead %d\n",
            P->a->name, name, P->tables->name, o->counts[RN_SAE_COLOUR], o->counts[RN_SAE_DIGIT],
            o->counts[RN_SAE_BOTH], o->counts[RN_SAE_MIXED], o->counts[RN_SAE_DEAD]);
    fprintf(f,
            "sae %s: %s: on %s: accuracy clean %.4f, SAE %.4f, zero %.4f, mean %.4f; CE clean "
            "%.4f, SAE %.4f, zero %.4f, mean %.4f; loss recovered %.4f (zero), %.4f (mean)\n",
            P->a->name, name, P->eval->name, s->acc_clean, s->acc_sae, s->acc_zero, s->acc_mean,
            s->ce_clean, s->ce_sae, s->ce_zero, s->ce_mean, s->recovered_zero, s->recovered_mean);
}

/* ---- run -------------------------------------------------------------------- */

static int run_sae(struct rn_run *run, const struct rn_spec_analysis *a, struct rn_error *err)
{
    struct rn_model *models = NULL;
    struct outcome *out = NULL;
    struct problem P = {.a = a, .k = run->data.n_classes, .top = (int)a->v.num[SAE_TOP]};
    int nm = 0, rc = -1;
    const char *sn = a->v.str[SAE_SPLIT], *en = a->v.str[SAE_EVAL_SPLIT];
    if (!(P.split = rn_data_split(&run->data, sn)) || P.split->n == 0)
        return rn_analysis_errorf(err, a, SAE_SPLIT, "split: no split '%s' with images", sn);
    if (!(P.eval = rn_data_split(&run->data, en)) || P.eval->n == 0)
        return rn_analysis_errorf(err, a, SAE_EVAL_SPLIT, "eval_split: no split '%s' with images",
                                  en);
    const char *tn = a->v.str[SAE_TABLES_SPLIT][0] ? a->v.str[SAE_TABLES_SPLIT] : sn;
    if (!(P.tables = rn_data_split(&run->data, tn)) || P.tables->n == 0)
        return rn_analysis_errorf(err, a, SAE_TABLES_SPLIT,
                                  "tables_split: no split '%s' with images", tn);
    if (P.tables->c != 3 || !P.tables->colours || P.tables->colours[0] == RN_NO_COLOUR)
        return rn_analysis_errorf(err, a, SAE_TABLES_SPLIT, "split '%s' has no colour labels", tn);
    P.n = a->v.num[SAE_N] > 0 ? (size_t)a->v.num[SAE_N] : (size_t)P.split->n;
    if (P.n > (size_t)P.split->n)
        return rn_analysis_errorf(err, a, SAE_N, "n %zu: split '%s' has %d images", P.n, sn,
                                  P.split->n);
    if (rn_models_open(run, a, SAE_MODELS, &models, &nm, err) ||
        !(out = rn_calloc((size_t)nm, sizeof *out, err)))
        goto done;
    char group[256], node[RN_NAME_MAX] = "";
    snprintf(group, sizeof group, "/analyses/%s", a->name);
    for (int m = 0; m < nm; m++) {
        if (sae_model(run, &P, &models[m], m, &out[m], err))
            goto done;
        int nd = rn_sae_node(&models[m].run->graph, a, SAE_NODE, err);
        snprintf(node, sizeof node, "%s", models[m].run->graph.nodes[nd].layer.name);
        if (!run->opt.quiet)
            log_model(run, &P, models[m].name, &out[m]);
        int top = P.top < P.tables->n ? P.top : P.tables->n;
        if (write_model(run, group, models[m].name, &out[m], (int)a->v.num[SAE_EPOCHS], P.k,
                        P.tables, top, err) ||
            rn_results_flush(run->results, err))
            goto done;
    }
    if (rn_models_write_names(run, group, models, nm, err) ||
        write_attrs(run, group, &P, node, out[0].sae.m, out[0].sae.d, err))
        goto done;
    rc = 0;
done:
    for (int m = 0; out && m < nm; m++)
        outcome_free(&out[m]);
    free(out);
    rn_models_free(models, nm);
    return rc;
}
