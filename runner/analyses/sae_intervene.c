/* sae_intervene.c - causal interventions through the SAE an `sae` analysis
 * of the same run trained (SPEC.md "Sparse autoencoder (Task 6)"): the
 * hidden state of each image is encoded, its codes edited, decoded and run
 * through the rest of the model (sae_ops.h), for every model of that
 * analysis:
 *   ablate  feature a (default: the strongest colour feature of `colour`)
 *           set to 0
 *   swap    a set to 0 and feature b (default: the strongest colour
 *           feature of `swap_to`) set to its typical strength, its mean
 *           when it fires on images of its colour
 *   bulk    every colour-selective feature (classes colour and both) set to
 *           0, against as many features drawn at random from the other
 *           alive ones, `draws` times (mean and spread)
 *   sweep   feature a scaled from scale_min to scale_max in `steps`
 * Ablate, swap and sweep are measured on the inputs of a's colour (mean
 * class probabilities), bulk on all of them (accuracy, cross-entropy).
 * Figures: sae_plot.c.
 */
#include "sae_ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

enum {
    IV_SAE,
    IV_SPLIT,
    IV_N,
    IV_COLOUR,
    IV_FEATURE,
    IV_SWAP_TO,
    IV_SWAP_FEATURE,
    IV_DRAWS,
    IV_SEED,
    IV_SCALE_MIN,
    IV_SCALE_MAX,
    IV_STEPS,
    IV_KEEP_ERROR,
    IV_N_KEYS
};
static const struct rn_key iv_keys[] = {
    [IV_SAE] = {"sae", RN_KIND_STRING, 0, 0, "sae", 1, 0, NULL,
                "name of the sae analysis (declared before this one) whose SAE and models are "
                "used"},
    [IV_SPLIT] = {"split", RN_KIND_STRING, 0, 0, "test", 1, 0, NULL,
                  "split of the images intervened on"},
    [IV_N] = {"n", RN_KIND_INT, 0, 1000, NULL, 1, 1e9, NULL, "images: the first n of split"},
    [IV_COLOUR] = {"colour", RN_KIND_STRING, 0, 0, "red", 1, 0, NULL,
                   "the colour whose strongest colour feature is ablated and swept (palette "
                   "name or 0-9)"},
    [IV_FEATURE] = {"feature", RN_KIND_INT, 0, -1, NULL, -1, 1 << 16, NULL,
                    "the feature ablated and swept; -1 = the strongest colour feature of colour"},
    [IV_SWAP_TO] = {"swap_to", RN_KIND_STRING, 0, 0, "green", 1, 0, NULL,
                    "the colour whose strongest colour feature is injected by the swap"},
    [IV_SWAP_FEATURE] = {"swap_feature", RN_KIND_INT, 0, -1, NULL, -1, 1 << 16, NULL,
                         "the feature injected; -1 = the strongest colour feature of swap_to"},
    [IV_DRAWS] = {"draws", RN_KIND_INT, 0, 20, NULL, 1, 10000, NULL,
                  "random draws of non-colour features for the bulk ablation"},
    [IV_SEED] = {"seed", RN_KIND_INT, 0, 0, NULL, 0, 2147483647, NULL, "seed of those draws"},
    [IV_SCALE_MIN] = {"scale_min", RN_KIND_FLOAT, 0, 0, NULL, -1e3, 1e3, NULL,
                      "sweep: the first factor"},
    [IV_SCALE_MAX] = {"scale_max", RN_KIND_FLOAT, 0, 3, NULL, -1e3, 1e3, NULL,
                      "sweep: the last factor"},
    [IV_STEPS] = {"steps", RN_KIND_INT, 0, 31, NULL, 2, 10000, NULL, "sweep: factors"},
    [IV_KEEP_ERROR] = {"keep_error", RN_KIND_BOOL, 0, 0, NULL, 1, 0, NULL,
                       "add the SAE's reconstruction error back, so that only the edit "
                       "changes the hidden state"},
};
_Static_assert(RN_N_KEYS(iv_keys) == IV_N_KEYS, "one schema row per IV_ key");

static int check_iv(const struct rn_spec *, const struct rn_spec_analysis *,
                    const struct rn_graph *, int, struct rn_error *);
static int run_iv(struct rn_run *, const struct rn_spec_analysis *, struct rn_error *);
const struct rn_analysis_type rn_analysis_sae_intervene = {
    .name = "sae_intervene",
    .doc = "interventions through the SAE of an sae analysis (encode, edit, decode, the rest of "
           "the model): single-feature ablation, colour swap, bulk ablation of the colour "
           "features against random ones, a scale sweep with every class probability",
    .keys = iv_keys,
    .n_keys = IV_N_KEYS,
    .check = check_iv,
    .run = run_iv,
    .plot = rn_sae_intervene_plot,
};

/* ---- check ------------------------------------------------------------------ */

/* The sae analysis a names, declared before it; NULL reported. */
static const struct rn_spec_analysis *sae_of(const struct rn_spec *spec,
                                             const struct rn_spec_analysis *a, struct rn_error *err)
{
    const char *want = a->v.str[IV_SAE], *names[RN_MAX_ANALYSES];
    int n = 0;
    for (int i = 0; i < spec->n_analyses && &spec->analyses[i] != a; i++) {
        const struct rn_spec_analysis *b = &spec->analyses[i];
        if (strcmp(b->type->name, "sae") != 0)
            continue;
        if (strcmp(b->name, want) == 0)
            return b;
        names[n++] = b->name;
    }
    const char *near = rn_nearest(want, names, n);
    if (near)
        rn_analysis_errorf(err, a, IV_SAE,
                           "sae: no sae analysis named '%s' before this one (did you mean "
                           "'%s'?)",
                           want, near);
    else
        rn_analysis_errorf(err, a, IV_SAE,
                           "sae: no sae analysis named '%s' before this one; declare it first",
                           want);
    return NULL;
}

static int key_of(const struct rn_spec_analysis *a, const char *key)
{
    for (int k = 0; k < a->type->n_keys; k++)
        if (strcmp(a->type->keys[k].key, key) == 0)
            return k;
    return -1;
}

static int check_iv(const struct rn_spec *spec, const struct rn_spec_analysis *a,
                    const struct rn_graph *g, int logits, struct rn_error *err)
{
    if (!sae_of(spec, a, err))
        return -1;
    const int keys[] = {IV_COLOUR, IV_SWAP_TO};
    for (int i = 0; i < 2; i++)
        if (rn_palette_index(&spec->data.palette, a->v.str[keys[i]]) < 0)
            return rn_analysis_errorf(err, a, keys[i],
                                      "%s: unknown colour '%s'; expected a palette name (red, "
                                      "green, ...) or 0-9",
                                      a->type->keys[keys[i]].key, a->v.str[keys[i]]);
    if (!(a->v.num[IV_SCALE_MAX] > a->v.num[IV_SCALE_MIN]))
        return rn_analysis_errorf(err, a, IV_SCALE_MAX,
                                  "scale_max %g: expected more than scale_min %g",
                                  a->v.num[IV_SCALE_MAX], a->v.num[IV_SCALE_MIN]);
    return 0;
}

/* ---- one model --------------------------------------------------------------- */

struct problem {
    const struct rn_spec_analysis *a, *sa;
    const struct rn_split *split;
    size_t n;
    int k, colour, swap_to, steps, draws;
    int models_key, node_key;
};

/* What the interventions on one model give. */
struct outcome {
    int32_t chosen[2], selective[2]; /* features a and b, and whether each is a colour one */
    float strength;                  /* b's typical strength */
    int n_sub, n_bulk, n_pool;       /* images of a's colour; features bulk-ablated; pool */
    float probs[3][RN_MAX_CLASSES];  /* mean on the subset: SAE only, a ablated, swapped */
    float share[3][2];               /* ... predicted as class colour, swap_to */
    float acc[4], ce[4];             /* all inputs: clean, SAE, a ablated, swapped */
    float bulk_acc[2], bulk_ce[2];   /* colour features ablated; random: mean */
    float *rand_acc, *rand_ce;       /* (draws) */
    float *sweep, *sweep_first;      /* (steps, k) */
    float *scales;                   /* (steps) */
};

static void outcome_free(struct outcome *o)
{
    free(o->rand_acc);
    free(o->rand_ce);
    free(o->sweep);
    free(o->sweep_first);
    free(o->scales);
}

/* Reads /analyses/<sae>/<model>/<path> as float32 of n values. */
static int read_f32(struct rn_run *run, const char *g, const char *path, size_t n, float **out,
                    struct rn_error *err)
{
    char full[700];
    int nd, dims[4];
    snprintf(full, sizeof full, "%s/%s", g, path);
    if (rn_results_read(run->results, full, RN_DTYPE_F32, (void **)out, &nd, dims, err))
        return -1;
    size_t have = 1;
    for (int i = 0; i < nd; i++)
        have *= (size_t)dims[i];
    if (have != n)
        return rn_errorf(err, "%s: expected %zu values, got %zu", full, n, have);
    return 0;
}

/* The SAE and the feature tables the sae analysis wrote for model name. */
static int load_sae(struct rn_run *run, const struct problem *P, const char *name, int d,
                    struct rn_sae *s, float **colour, float **firing, int32_t **cls,
                    struct rn_error *err)
{
    char g[512], path[700];
    int nd, dims[4];
    snprintf(g, sizeof g, "/analyses/%s/%s", P->sa->name, name);
    snprintf(path, sizeof path, "%s/weights/w_enc", g);
    float *w = NULL;
    if (!rn_results_exists(run->results, path))
        return rn_analysis_errorf(err, P->a, IV_SAE, "sae: %s has no SAE of model '%s'",
                                  P->sa->name, name);
    if (rn_results_read(run->results, path, RN_DTYPE_F32, (void **)&w, &nd, dims, err))
        return -1;
    int m = dims[0];
    free(w);
    if (nd != 2 || dims[1] != d)
        return rn_errorf(err, "%s: expected (features, %d)", path, d);
    int topk = strcmp(P->sa->v.str[key_of(P->sa, "activation")], "topk") == 0;
    if (rn_sae_alloc(s, d, m, topk ? RN_SAE_TOPK : RN_SAE_RELU,
                     (int)P->sa->v.num[key_of(P->sa, "k")], err))
        return -1;
    float *we, *be, *wd, *bd, *mu;
    if (read_f32(run, g, "weights/w_enc", (size_t)m * d, &we, err))
        return -1;
    memcpy(s->w_enc, we, sizeof(float) * (size_t)m * d);
    free(we);
    if (read_f32(run, g, "weights/b_enc", (size_t)m, &be, err))
        return -1;
    memcpy(s->b_enc, be, sizeof(float) * (size_t)m);
    free(be);
    if (read_f32(run, g, "weights/w_dec", (size_t)m * d, &wd, err))
        return -1;
    memcpy(s->w_dec, wd, sizeof(float) * (size_t)m * d);
    free(wd);
    if (read_f32(run, g, "weights/b_dec", (size_t)d, &bd, err))
        return -1;
    memcpy(s->b_dec, bd, sizeof(float) * (size_t)d);
    free(bd);
    if (read_f32(run, g, "weights/mu", (size_t)d, &mu, err))
        return -1;
    memcpy(s->mu, mu, sizeof(float) * (size_t)d);
    free(mu);
    snprintf(path, sizeof path, "%s/features/class", g);
    if (read_f32(run, g, "features/colour_means", (size_t)m * P->k, colour, err) ||
        read_f32(run, g, "features/colour_firing_means", (size_t)m * P->k, firing, err) ||
        rn_results_read(run->results, path, RN_DTYPE_I32, (void **)cls, &nd, dims, err))
        return -1;
    if (nd != 1 || dims[0] != m)
        return rn_errorf(err, "%s: expected (%d)", path, m);
    return 0;
}

/* Mean probabilities over the inputs in sub (n_sub of them) and the share
 * predicted as classes c0 and c1. */
static void subset_means(const float *probs, const int *sub, int n_sub, int k, int c0, int c1,
                         float *mean, float *share)
{
    memset(mean, 0, sizeof(float) * (size_t)k);
    share[0] = share[1] = 0;
    for (int t = 0; t < n_sub; t++) {
        const float *p = probs + (size_t)sub[t] * k;
        for (int q = 0; q < k; q++)
            mean[q] += p[q] / (float)n_sub;
        int top = rn_argmax(p, k);
        share[0] += (top == c0) / (float)n_sub;
        share[1] += (top == c1) / (float)n_sub;
    }
}

/* The model on h edited by edits: logits -> probs (n, k), accuracy and CE. */
static int edited(struct rn_graph *g, int node, int logits, const struct rn_sae *s, const float *h,
                  size_t n, const struct rn_sae_edit *e, int ne, int keep, const uint8_t *labels,
                  float *x, float *z, float *probs, float *acc, float *ce, struct rn_error *err)
{
    const int k = g->nodes[logits].layer.out.c;
    if (rn_sae_edit_hidden(s, h, n, e, ne, keep, x, NULL, err) ||
        rn_sae_head(g, node, logits, x, n, z, err))
        return -1;
    double a;
    double c = rn_sae_ce(z, n, k, labels, &a, probs);
    if (acc)
        *acc = (float)a;
    if (ce)
        *ce = (float)c;
    return 0;
}

static int intervene(struct rn_run *run, const struct problem *P, const struct rn_model *mo, int mi,
                     struct outcome *o, struct rn_error *err)
{
    const struct rn_spec_analysis *a = P->a;
    struct rn_graph *g = &mo->run->graph;
    const int logits = mo->run->logits_node, k = P->k, keep = a->v.num[IV_KEEP_ERROR] != 0;
    const size_t n = P->n;
    struct rn_sae s = {0};
    float *h = NULL, *x = NULL, *z = NULL, *pr = NULL, *colour = NULL, *firing = NULL;
    int32_t *cls = NULL;
    int *sub = NULL, *pool = NULL, rc = -1;
    struct rn_sae_edit *e = NULL;
    int node = rn_sae_node_check(g, P->sa, P->node_key, logits, err);
    if (node < 0)
        return -1;
    const struct rn_shape sh = g->nodes[node].layer.out;
    const int d = sh.c * sh.h * sh.w;
    if (load_sae(run, P, mo->name, d, &s, &colour, &firing, &cls, err) ||
        rn_sae_activations(run, P->sa, P->models_key, mo, mi, node, P->split, n, &h, err))
        goto done;
    const int m = s.m;
    if (!(x = rn_malloc(sizeof(float) * n * d, err)) ||
        !(z = rn_malloc(sizeof(float) * n * k, err)) ||
        !(pr = rn_malloc(sizeof(float) * n * k, err)) || !(sub = rn_malloc(sizeof(int) * n, err)) ||
        !(pool = rn_malloc(sizeof(int) * (size_t)m, err)) ||
        !(e = rn_malloc(sizeof *e * (size_t)(m + 2), err)) ||
        !(o->rand_acc = rn_malloc(sizeof(float) * (size_t)P->draws, err)) ||
        !(o->rand_ce = rn_malloc(sizeof(float) * (size_t)P->draws, err)) ||
        !(o->sweep = rn_calloc((size_t)P->steps * k, sizeof(float), err)) ||
        !(o->sweep_first = rn_calloc((size_t)P->steps * k, sizeof(float), err)) ||
        !(o->scales = rn_malloc(sizeof(float) * (size_t)P->steps, err)))
        goto done;
    /* the features */
    int fa = (int)a->v.num[IV_FEATURE], fb = (int)a->v.num[IV_SWAP_FEATURE], sel;
    o->selective[0] = o->selective[1] = 1;
    if (fa < 0) {
        fa = rn_sae_colour_feature(colour, k, cls, m, P->colour, &sel);
        o->selective[0] = sel;
    }
    if (fb < 0) {
        fb = rn_sae_colour_feature(colour, k, cls, m, P->swap_to, &sel);
        o->selective[1] = sel;
    }
    if (fa < 0 || fb < 0 || fa >= m || fb >= m) {
        rn_analysis_errorf(err, a, fa < 0 || fa >= m ? IV_FEATURE : IV_SWAP_FEATURE,
                           "model '%s': no feature %s (the SAE has %d features%s)", mo->name,
                           fa < 0 || fb < 0 ? "fires on that colour" : "of that index", m,
                           fa < 0 || fb < 0 ? ", none firing on it" : "");
        goto done;
    }
    o->chosen[0] = fa;
    o->chosen[1] = fb;
    o->strength = firing[(size_t)fb * k + P->swap_to];
    /* the inputs of a's colour */
    o->n_sub = 0;
    for (size_t i = 0; i < n; i++)
        if (P->split->colours[i] == P->colour)
            sub[o->n_sub++] = (int)i;
    if (o->n_sub == 0) {
        rn_analysis_errorf(err, a, IV_COLOUR, "none of the %zu inputs of split '%s' has colour %s",
                           n, P->split->name, a->v.str[IV_COLOUR]);
        goto done;
    }
    const uint8_t *lab = P->split->labels;
    if (rn_sae_head(g, node, logits, h, n, z, err))
        goto done;
    double acc;
    o->ce[0] = (float)rn_sae_ce(z, n, k, lab, &acc, NULL);
    o->acc[0] = (float)acc;
    /* the SAE alone, a ablated, a swapped for b */
    e[0] = (struct rn_sae_edit){fa, RN_SAE_EDIT_SET, 0};
    e[1] = (struct rn_sae_edit){fb, RN_SAE_EDIT_SET, o->strength};
    for (int t = 0; t < 3; t++) {
        if (edited(g, node, logits, &s, h, n, e, t, keep, lab, x, z, pr, &o->acc[t + 1],
                   &o->ce[t + 1], err))
            goto done;
        subset_means(pr, sub, o->n_sub, k, P->colour, P->swap_to, o->probs[t], o->share[t]);
    }
    /* bulk: the colour features, then as many random others */
    int nc = 0, np = 0;
    for (int j = 0; j < m; j++)
        if (cls[j] == RN_SAE_COLOUR || cls[j] == RN_SAE_BOTH)
            e[nc++] = (struct rn_sae_edit){j, RN_SAE_EDIT_SET, 0};
        else if (cls[j] != RN_SAE_DEAD)
            pool[np++] = j;
    o->n_bulk = nc;
    o->n_pool = np;
    if (edited(g, node, logits, &s, h, n, e, nc, keep, lab, x, z, pr, &o->bulk_acc[0],
               &o->bulk_ce[0], err))
        goto done;
    const int take = nc < np ? nc : np;
    struct rn_rng r;
    rn_rng_init(&r, (uint64_t)a->v.num[IV_SEED], RN_STREAM_ANALYSIS, 2000000 + (uint64_t)mi);
    double sa = 0, sc = 0;
    for (int t = 0; t < P->draws; t++) {
        /* a partial Fisher-Yates shuffle of the pool */
        for (int q = 0; q < take; q++) {
            int j = q + (int)(rn_rng_uniform(&r) * (float)(np - q));
            j = j >= np ? np - 1 : j;
            int tmp = pool[q];
            pool[q] = pool[j];
            pool[j] = tmp;
            e[q] = (struct rn_sae_edit){pool[q], RN_SAE_EDIT_SET, 0};
        }
        if (edited(g, node, logits, &s, h, n, e, take, keep, lab, x, z, pr, &o->rand_acc[t],
                   &o->rand_ce[t], err))
            goto done;
        sa += o->rand_acc[t] / P->draws;
        sc += o->rand_ce[t] / P->draws;
    }
    o->bulk_acc[1] = (float)sa;
    o->bulk_ce[1] = (float)sc;
    /* the sweep, on the inputs of a's colour */
    float *hs = rn_malloc(sizeof(float) * (size_t)o->n_sub * d, err);
    if (!hs)
        goto done;
    for (int t = 0; t < o->n_sub; t++)
        memcpy(hs + (size_t)t * d, h + (size_t)sub[t] * d, sizeof(float) * d);
    const double lo = a->v.num[IV_SCALE_MIN], hi = a->v.num[IV_SCALE_MAX];
    for (int t = 0; t < P->steps; t++) {
        o->scales[t] = (float)(lo + (hi - lo) * t / (P->steps - 1));
        e[0] = (struct rn_sae_edit){fa, RN_SAE_EDIT_SCALE, o->scales[t]};
        if (rn_sae_edit_hidden(&s, hs, (size_t)o->n_sub, e, 1, keep, x, NULL, err) ||
            rn_sae_head(g, node, logits, x, (size_t)o->n_sub, z, err)) {
            free(hs);
            goto done;
        }
        for (int i = 0; i < o->n_sub; i++) {
            float p[RN_MAX_CLASSES], mx = z[(size_t)i * k];
            double sum = 0;
            for (int q = 0; q < k; q++)
                mx = z[(size_t)i * k + q] > mx ? z[(size_t)i * k + q] : mx;
            for (int q = 0; q < k; q++)
                sum += p[q] = expf(z[(size_t)i * k + q] - mx);
            for (int q = 0; q < k; q++) {
                o->sweep[(size_t)t * k + q] += (float)(p[q] / sum) / (float)o->n_sub;
                if (i == 0)
                    o->sweep_first[(size_t)t * k + q] = (float)(p[q] / sum);
            }
        }
    }
    free(hs);
    rc = 0;
done:
    rn_sae_free(&s);
    free(h);
    free(x);
    free(z);
    free(pr);
    free(colour);
    free(firing);
    free(cls);
    free(sub);
    free(pool);
    free(e);
    return rc;
}

/* ---- writing ------------------------------------------------------------------ */

static int write_model(struct rn_run *run, const char *top, const char *name,
                       const struct problem *P, const struct outcome *o, struct rn_error *err)
{
    char g[512];
    const int k = P->k;
    snprintf(g, sizeof g, "%s/%s", top, name);
    int32_t counts[3] = {o->n_sub, o->n_bulk, o->n_pool};
    float probs[3 * RN_MAX_CLASSES], share[6];
    for (int t = 0; t < 3; t++) {
        memcpy(probs + (size_t)t * k, o->probs[t], sizeof(float) * k);
        share[2 * t] = o->share[t][0];
        share[2 * t + 1] = o->share[t][1];
    }
    return rn_analysis_put(run, g, "features", RN_DTYPE_I32, o->chosen, 1, 2, 0, err) ||
           rn_analysis_put(run, g, "selective", RN_DTYPE_I32, o->selective, 1, 2, 0, err) ||
           rn_analysis_put(run, g, "strength", RN_DTYPE_F32, &o->strength, 0, 0, 0, err) ||
           rn_analysis_put(run, g, "counts", RN_DTYPE_I32, counts, 1, 3, 0, err) ||
           rn_analysis_put(run, g, "subset_probs", RN_DTYPE_F32, probs, 2, 3, k, err) ||
           rn_analysis_put(run, g, "subset_share", RN_DTYPE_F32, share, 2, 3, 2, err) ||
           rn_analysis_put(run, g, "accuracy", RN_DTYPE_F32, o->acc, 1, 4, 0, err) ||
           rn_analysis_put(run, g, "cross_entropy", RN_DTYPE_F32, o->ce, 1, 4, 0, err) ||
           rn_analysis_put(run, g, "bulk/accuracy", RN_DTYPE_F32, o->bulk_acc, 1, 2, 0, err) ||
           rn_analysis_put(run, g, "bulk/cross_entropy", RN_DTYPE_F32, o->bulk_ce, 1, 2, 0, err) ||
           rn_analysis_put(run, g, "bulk/random_accuracy", RN_DTYPE_F32, o->rand_acc, 1, P->draws,
                           0, err) ||
           rn_analysis_put(run, g, "bulk/random_cross_entropy", RN_DTYPE_F32, o->rand_ce, 1,
                           P->draws, 0, err) ||
           rn_analysis_put(run, g, "sweep/scales", RN_DTYPE_F32, o->scales, 1, P->steps, 0, err) ||
           rn_analysis_put(run, g, "sweep/probs", RN_DTYPE_F32, o->sweep, 2, P->steps, k, err) ||
           rn_analysis_put(run, g, "sweep/probs_first", RN_DTYPE_F32, o->sweep_first, 2, P->steps,
                           k, err);
}

static double spread(const float *v, int n)
{
    double mean = 0, ss = 0;
    for (int i = 0; i < n; i++)
        mean += v[i] / n;
    for (int i = 0; i < n; i++)
        ss += (v[i] - mean) * (v[i] - mean);
    return n > 1 ? sqrt(ss / (n - 1)) : 0;
}

static void log_model(struct rn_run *run, const struct problem *P, const char *name,
                      const struct outcome *o)
{
    FILE *f = run->opt.log;
    const char *an = P->a->name, *cn = P->a->v.str[IV_COLOUR], *sn = P->a->v.str[IV_SWAP_TO];
    fprintf(f,
            "sae_intervene %s: %s: feature %d (%s%s), swap to %d (%s%s, strength %.4g); %d "
            "inputs on %s\n",
            an, name, o->chosen[0], cn, o->selective[0] ? "" : ", not colour-selective",
            o->chosen[1], sn, o->selective[1] ? "" : ", not colour-selective", o->strength,
            o->n_sub, cn);
    static const char *const what[3] = {"SAE", "ablated", "swapped"};
    for (int t = 0; t < 3; t++)
        fprintf(f,
                "sae_intervene %s: %s: %s: on %s inputs P(%d) %.4f, P(%d) %.4f; predicted "
                "%d %.3f, %d %.3f; accuracy (all %zu) %.4f\n",
                an, name, what[t], cn, P->colour, o->probs[t][P->colour], P->swap_to,
                o->probs[t][P->swap_to], P->colour, o->share[t][0], P->swap_to, o->share[t][1],
                P->n, o->acc[t + 1]);
    fprintf(f,
            "sae_intervene %s: %s: bulk: accuracy clean %.4f, SAE %.4f, %d colour features "
            "ablated %.4f, %d random others %.4f +- %.4f (%d draws of %d)\n",
            an, name, o->acc[0], o->acc[1], o->n_bulk, o->bulk_acc[0],
            o->n_bulk < o->n_pool ? o->n_bulk : o->n_pool, o->bulk_acc[1],
            spread(o->rand_acc, P->draws), P->draws, o->n_pool);
}

/* ---- run -------------------------------------------------------------------- */

static int run_iv(struct rn_run *run, const struct rn_spec_analysis *a, struct rn_error *err)
{
    struct rn_model *models = NULL;
    struct outcome *out = NULL;
    struct problem P = {.a = a, .k = run->data.n_classes};
    int nm = 0, rc = -1;
    if (!(P.sa = sae_of(run->spec, a, err)))
        return -1;
    P.models_key = key_of(P.sa, "models");
    P.node_key = key_of(P.sa, "node");
    P.colour = rn_palette_index(&run->spec->data.palette, a->v.str[IV_COLOUR]);
    P.swap_to = rn_palette_index(&run->spec->data.palette, a->v.str[IV_SWAP_TO]);
    P.steps = (int)a->v.num[IV_STEPS];
    P.draws = (int)a->v.num[IV_DRAWS];
    if (P.k > RN_MAX_CLASSES)
        return rn_analysis_errorf(err, a, -1, "at most %d classes", RN_MAX_CLASSES);
    struct rn_split *s = rn_data_split(&run->data, a->v.str[IV_SPLIT]);
    if (!s || s->n == 0)
        return rn_analysis_errorf(err, a, IV_SPLIT, "split: no split '%s' with images",
                                  a->v.str[IV_SPLIT]);
    P.split = s;
    P.n = (size_t)a->v.num[IV_N];
    if (P.n > (size_t)s->n)
        return rn_analysis_errorf(err, a, IV_N, "n %zu: split '%s' has %d images", P.n, s->name,
                                  s->n);
    if (rn_models_open(run, P.sa, P.models_key, &models, &nm, err) ||
        !(out = rn_calloc((size_t)nm, sizeof *out, err)))
        goto done;
    char group[256];
    snprintf(group, sizeof group, "/analyses/%s", a->name);
    for (int m = 0; m < nm; m++) {
        if (intervene(run, &P, &models[m], m, &out[m], err))
            goto done;
        if (!run->opt.quiet)
            log_model(run, &P, models[m].name, &out[m]);
        if (write_model(run, group, models[m].name, &P, &out[m], err))
            goto done;
    }
    struct rn_results *r = run->results;
    char buf[64];
    snprintf(buf, sizeof buf, "%d", P.draws);
    if (rn_models_write_names(run, group, models, nm, err) ||
        rn_results_set_attr_str(r, group, "kind", "sae_intervene", err) ||
        rn_results_set_attr_str(r, group, "sae", P.sa->name, err) ||
        rn_results_set_attr_str(r, group, "split", s->name, err) ||
        rn_results_set_attr_str(r, group, "colour", a->v.str[IV_COLOUR], err) ||
        rn_results_set_attr_str(r, group, "swap_to", a->v.str[IV_SWAP_TO], err) ||
        rn_results_set_attr_str(r, group, "draws", buf, err) ||
        rn_results_set_attr_str(r, group, "keep_error", a->v.num[IV_KEEP_ERROR] ? "1" : "0", err) ||
        rn_results_set_attr_str(r, group, "layout",
                                "accuracy, cross_entropy: clean, SAE, a ablated, swapped; "
                                "subset_probs, subset_share rows: SAE, a ablated, swapped "
                                "(share columns: predicted colour's class, swap_to's class)",
                                err))
        goto done;
    rc = 0;
done:
    for (int m = 0; out && m < nm; m++)
        outcome_free(&out[m]);
    free(out);
    rn_models_free(models, nm);
    return rc;
}
