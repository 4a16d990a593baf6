/* The sae and sae_intervene analyses (runner/analyses/sae.c, sae_intervene.c,
 * the arithmetic sae_ops.c; the SAE itself: sae.h):
 *  - their keys: an unknown or misspelt key, a wrong choice, k without topk,
 *    an sae_intervene naming no sae analysis, each one exact line;
 *  - a hand-built SAE and a hand-built head (global_avg_pool -> linear):
 *    encode -> edit -> decode -> head give the logits computed by hand, for
 *    ablation, swap, scaling and with the reconstruction error kept;
 *  - a node that is not a cut is refused, naming the node that reads past it;
 *  - selectivity and the classes on a hand table, at the threshold's edge;
 *    class means and firing means on hand codes; the heatmap order;
 *  - loss recovered: an SAE that is the identity recovers 1, one that
 *    outputs zeros (or the mean) 0;
 *  - end to end on the fixture model: what the analyses write, read back
 *    (shapes, counts, the top images' activations recomputed from the
 *    stored weights, the sweep at scale 1 and 0 equal to the SAE alone and
 *    to the ablation), activations stored once and refused for another
 *    count, and the figures.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runner/analyses/sae_ops.h"
#include "runner/graph.h"
#include "runner/results.h"
#include "runner/spec.h"
#include "sh.h"

static char dir[64];

static void make_dir(void)
{
    snprintf(dir, sizeof dir, "/tmp/rn_sae_an_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void remove_dir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_expect_eq(system(cmd), 0);
}

TestSuite(sae_analysis, .init = make_dir, .fini = remove_dir, .timeout = 240);

static void put(const char *name, const char *text, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    fputs(text, f);
    fclose(f);
}

#define HEAD                                                                                       \
    "name: x\n"                                                                                    \
    "data: {dir: " RN_FIXTURES "/mnist, colouring: background}\n"                                  \
    "model: {include: " RN_FIXTURES "/interp_model.yaml}\n"                                        \
    "load: {run: " RN_FIXTURES "/interp_ref.h5}\n"                                                 \
    "analyses:\n"

static void expect_validate(const char *text, const char *want_fmt)
{
    char path[256], out[4096], want[1024];
    put("v.yaml", text, path, sizeof path);
    snprintf(want, sizeof want, want_fmt, path);
    int rc = sh(out, sizeof out, "%s validate %s 2>&1", RN_RUNNER_BIN, path);
    cr_expect_eq(rc, 1, "%s", out);
    cr_expect_str_eq(out, want);
}

Test(sae_analysis, keys_are_checked_with_one_line_each)
{
    expect_validate(HEAD "  - {type: sae, l1_decoder_nrom: true}\n",
                    "%s:6:17: error: analysis #1 (sae): unknown key 'l1_decoder_nrom' (did you "
                    "mean 'l1_decoder_norm'?)\n");
    expect_validate(HEAD "  - {type: sae, activation: tokp}\n",
                    "%s:6:29: error: analysis #1 (sae): activation: expected one of relu|topk, "
                    "got 'tokp' (did you mean 'topk'?)\n");
    expect_validate(HEAD "  - {type: sae, k: 8}\n",
                    "%s:6:20: error: analysis 'sae' (sae): k: only for activation topk\n");
    expect_validate(HEAD "  - {type: sae, features: 16, expansion: 2}\n",
                    "%s:6:42: error: analysis 'sae' (sae): expansion: give features or "
                    "expansion, not both\n");
    expect_validate(HEAD "  - {type: sae, activation: topk, k: 40}\n",
                    "%s:6:38: error: analysis 'sae' (sae): k 40: expected fewer than the 32 "
                    "features\n");
    expect_validate(HEAD "  - {type: sae, node: fetures}\n",
                    "%s:6:23: error: analysis 'sae' (sae): unknown node 'fetures' (did you mean "
                    "'features'?)\n");
    expect_validate(HEAD "  - {type: sae, node: fc}\n",
                    "%s:6:23: error: analysis 'sae' (sae): node 'fc': the logits ('fc') do not "
                    "come after node 'fc'\n");
    expect_validate(HEAD "  - {type: sae}\n  - {type: sae_intervene, sae: sea}\n",
                    "%s:7:32: error: analysis 'sae_intervene' (sae_intervene): sae: no sae "
                    "analysis named 'sea' before this one (did you mean 'sae'?)\n");
    expect_validate(HEAD "  - {type: sae_intervene}\n  - {type: sae}\n",
                    "%s:6:5: error: analysis 'sae_intervene' (sae_intervene): sae: no sae "
                    "analysis named 'sae' before this one; declare it first\n");
}

/* ---- a hand-built SAE and head ------------------------------------------------ */

/* global_avg_pool over a (2, 1, 1) input, then fc: 3 logits = W h + b with
 * W = [[1, 0], [0, 1], [1, -1]], b = [0, 0, 0.5]. */
static void hand_head(struct rn_spec *spec, struct rn_graph *g)
{
    struct rn_error err = {0};
    const char *text = "name: h\n"
                       "data: {dir: " RN_FIXTURES "/mnist}\n"
                       "train: {epochs: 1}\n"
                       "model:\n"
                       "  layers:\n"
                       "    - {type: global_avg_pool, name: features}\n"
                       "    - {type: linear, name: fc, units: 3}\n";
    cr_assert_eq(rn_spec_load_text(spec, text, "h.yaml", NULL, NULL, NULL, NULL, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(rn_graph_build(g, &spec->model, (struct rn_shape){2, 1, 1}, 8, &err), 0, "%s",
                 err.msg);
    struct rn_param *w = rn_layer_param(&g->nodes[1].layer, "weight"),
                    *b = rn_layer_param(&g->nodes[1].layer, "bias");
    const float W[6] = {1, 0, 0, 1, 1, -1}, B[3] = {0, 0, 0.5f};
    memcpy(w->value.data, W, sizeof W);
    memcpy(b->value.data, B, sizeof B);
}

/* d 2, m 3: W_e rows [1 0], [0 1], [1 1], b_e [0 0 -1]; W_d columns [1 0],
 * [0 1], [0.6 0.8]; b_d 0. h = [2 1]: codes [2 1 2], x^ = [3.2 2.6]. */
static void hand_sae(struct rn_sae *s)
{
    struct rn_error err = {0};
    cr_assert_eq(rn_sae_alloc(s, 2, 3, RN_SAE_RELU, 0, &err), 0, "%s", err.msg);
    const float we[6] = {1, 0, 0, 1, 1, 1}, be[3] = {0, 0, -1}, wd[6] = {1, 0, 0.6f, 0, 1, 0.8f};
    memcpy(s->w_enc, we, sizeof we);
    memcpy(s->b_enc, be, sizeof be);
    memcpy(s->w_dec, wd, sizeof wd);
}

static void expect_logits(const float *z, float a, float b, float c)
{
    cr_expect_float_eq(z[0], a, 1e-5, "logit 0: %g, expected %g", z[0], a);
    cr_expect_float_eq(z[1], b, 1e-5, "logit 1: %g, expected %g", z[1], b);
    cr_expect_float_eq(z[2], c, 1e-5, "logit 2: %g, expected %g", z[2], c);
}

Test(sae_analysis, edits_through_a_hand_built_sae_and_head)
{
    struct rn_spec spec;
    struct rn_graph g;
    struct rn_sae s;
    struct rn_error err = {0};
    hand_head(&spec, &g);
    hand_sae(&s);
    const float h[2] = {2, 1};
    float x[2], z[3], codes[3];
    /* no edit: codes [2 1 2], x^ = [3.2 2.6], logits [3.2 2.6 1.1] */
    cr_assert_eq(rn_sae_edit_hidden(&s, h, 1, NULL, 0, 0, x, codes, &err), 0, "%s", err.msg);
    cr_expect_float_eq(codes[0], 2, 1e-6);
    cr_expect_float_eq(codes[1], 1, 1e-6);
    cr_expect_float_eq(codes[2], 2, 1e-6);
    cr_assert_eq(rn_sae_head(&g, 0, 1, x, 1, z, &err), 0, "%s", err.msg);
    expect_logits(z, 3.2f, 2.6f, 1.1f);
    /* ablate feature 2: x = [2 1], logits [2 1 1.5] */
    struct rn_sae_edit ab = {2, RN_SAE_EDIT_SET, 0};
    cr_assert_eq(rn_sae_edit_hidden(&s, h, 1, &ab, 1, 0, x, NULL, &err), 0);
    cr_assert_eq(rn_sae_head(&g, 0, 1, x, 1, z, &err), 0, "%s", err.msg);
    expect_logits(z, 2, 1, 1.5f);
    /* swap: feature 0 to 0, feature 1 to 3: codes [0 3 2], x = [1.2 4.6] */
    struct rn_sae_edit sw[2] = {{0, RN_SAE_EDIT_SET, 0}, {1, RN_SAE_EDIT_SET, 3}};
    cr_assert_eq(rn_sae_edit_hidden(&s, h, 1, sw, 2, 0, x, NULL, &err), 0);
    cr_assert_eq(rn_sae_head(&g, 0, 1, x, 1, z, &err), 0, "%s", err.msg);
    expect_logits(z, 1.2f, 4.6f, -2.9f);
    /* scale feature 2 by 0.5: codes [2 1 1], x = [2.6 1.8] */
    struct rn_sae_edit sc = {2, RN_SAE_EDIT_SCALE, 0.5f};
    cr_assert_eq(rn_sae_edit_hidden(&s, h, 1, &sc, 1, 0, x, NULL, &err), 0);
    cr_assert_eq(rn_sae_head(&g, 0, 1, x, 1, z, &err), 0, "%s", err.msg);
    expect_logits(z, 2.6f, 1.8f, 1.3f);
    /* ablation with the error kept: h + [2 1] - [3.2 2.6] = [0.8 -0.6] */
    cr_assert_eq(rn_sae_edit_hidden(&s, h, 1, &ab, 1, 1, x, NULL, &err), 0);
    cr_assert_eq(rn_sae_head(&g, 0, 1, x, 1, z, &err), 0, "%s", err.msg);
    expect_logits(z, 0.8f, -0.6f, 1.9f);
    /* two samples at once, batches of the graph's max (8) crossed: 11 */
    float hh[22], xx[22], zz[33];
    for (int i = 0; i < 11; i++) {
        hh[2 * i] = 2;
        hh[2 * i + 1] = 1;
    }
    cr_assert_eq(rn_sae_edit_hidden(&s, hh, 11, sw, 2, 0, xx, NULL, &err), 0);
    cr_assert_eq(rn_sae_head(&g, 0, 1, xx, 11, zz, &err), 0, "%s", err.msg);
    expect_logits(zz + 30, 1.2f, 4.6f, -2.9f);
    rn_sae_free(&s);
    rn_graph_free(&g);
    rn_spec_free(&spec);
}

Test(sae_analysis, a_node_that_is_not_a_cut_is_refused)
{
    struct rn_spec spec;
    struct rn_graph g;
    struct rn_error err = {0};
    const char *text = "name: c\n"
                       "data: {dir: " RN_FIXTURES "/mnist}\n"
                       "train: {epochs: 1}\n"
                       "model:\n"
                       "  layers:\n"
                       "    - {type: global_avg_pool, name: gap}\n"
                       "    - {type: linear, name: a, units: 2}\n"
                       "    - {type: linear, name: b, units: 2, from: gap}\n"
                       "    - {type: add, name: sum, from: [a, b]}\n";
    cr_assert_eq(rn_spec_load_text(&spec, text, "c.yaml", NULL, NULL, NULL, NULL, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(rn_graph_build(&g, &spec.model, (struct rn_shape){2, 1, 1}, 4, &err), 0, "%s",
                 err.msg);
    cr_expect_eq(rn_sae_check_cut(&g, 0, 3, &err), 0, "%s", err.msg);
    cr_expect_eq(rn_sae_check_cut(&g, 1, 3, &err), -1);
    cr_expect_str_eq(err.msg, "node 'sum' reads 'b', which is not computed from 'a': an SAE there "
                              "would not replace everything the logits see");
    rn_graph_free(&g);
    rn_spec_free(&spec);
}

/* ---- feature tables ----------------------------------------------------------- */

Test(sae_analysis, selectivity_classes_on_a_hand_table)
{
    /* 6 features, 4 classes */
    const float digit[24] = {1, 1, 1, 1, /* 1: not selective */
                             0, 0, 3, 0, /* 4 */
                             5, 0, 0, 0, /* 4 */
                             1, 2, 1, 1, /* 1.6 */
                             0, 0, 0, 0, /* dead */
                             2, 1, 0, 1 /* exactly 2: not selective */};
    const float colour[24] = {4, 0, 0, 0, 1, 1, 1, 1, 0, 5, 0, 0,
                              2, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1};
    const int alive[6] = {1, 1, 1, 1, 0, 1};
    float sd[6], sc[6];
    int32_t cls[6], order[6];
    int counts[RN_SAE_N_CLASSES];
    rn_sae_classify(digit, 4, colour, 4, alive, 6, 2.0, sd, sc, cls, counts);
    const int32_t want[6] = {RN_SAE_COLOUR, RN_SAE_DIGIT, RN_SAE_BOTH,
                             RN_SAE_MIXED,  RN_SAE_DEAD,  RN_SAE_MIXED};
    for (int j = 0; j < 6; j++)
        cr_expect_eq(cls[j], want[j], "feature %d: class %s, expected %s", j,
                     rn_sae_class_names[cls[j]], rn_sae_class_names[want[j]]);
    cr_expect_float_eq(sd[1], 4, 1e-6);
    cr_expect_float_eq(sd[3], 1.6, 1e-6);
    cr_expect_float_eq(sd[5], 2, 1e-6);
    cr_expect_float_eq(sc[0], 4, 1e-6);
    cr_expect_eq(sd[4], 0);
    const int want_counts[RN_SAE_N_CLASSES] = {1, 1, 1, 1, 2};
    for (int c = 0; c < RN_SAE_N_CLASSES; c++)
        cr_expect_eq(counts[c], want_counts[c], "%s: %d", rn_sae_class_names[c], counts[c]);
    /* colour (0), both (2), digit (1), mixed by argmax digit: 5 (digit 0), 3 (digit 1); dead */
    rn_sae_feature_order(digit, 4, colour, 4, cls, 6, order);
    const int32_t want_order[6] = {0, 2, 1, 5, 3, 4};
    for (int j = 0; j < 6; j++)
        cr_expect_eq(order[j], want_order[j], "order[%d] = %d, expected %d", j, order[j],
                     want_order[j]);
    int sel;
    cr_expect_eq(rn_sae_colour_feature(colour, 4, cls, 6, 0, &sel), 0);
    cr_expect_eq(sel, 1);
    cr_expect_eq(rn_sae_colour_feature(colour, 4, cls, 6, 1, &sel), 2); /* both counts */
    cr_expect_eq(sel, 1);
    /* colour 2: no colour feature prefers it; the largest mean on it, not selective */
    cr_expect_eq(rn_sae_colour_feature(colour, 4, cls, 6, 2, &sel), 1);
    cr_expect_eq(sel, 0);
}

Test(sae_analysis, class_means_and_firing_means)
{
    /* 4 samples, 2 features, classes 0 1 0 and one label out of range */
    const float codes[8] = {1, 0, 3, 2, 3, 4, 9, 9};
    const uint8_t labels[4] = {0, 1, 0, 7};
    float t[6], f[6];
    struct rn_error err = {0};
    cr_assert_eq(rn_sae_class_means(codes, 4, 2, labels, 3, t, f, &err), 0);
    const float want[6] = {2, 3, 0, 2, 2, 0}, want_f[6] = {2, 3, 0, 4, 2, 0};
    for (int i = 0; i < 6; i++) {
        cr_expect_float_eq(t[i], want[i], 1e-6, "table[%d] = %g", i, t[i]);
        cr_expect_float_eq(f[i], want_f[i], 1e-6, "firing[%d] = %g", i, f[i]);
    }
}

/* ---- loss recovered --------------------------------------------------------------- */

Test(sae_analysis, loss_recovered_identities)
{
    cr_expect_float_eq(rn_sae_loss_recovered(0.5, 0.5, 2.0), 1, 1e-12);
    cr_expect_float_eq(rn_sae_loss_recovered(0.5, 2.0, 2.0), 0, 1e-12);
    cr_expect_float_eq(rn_sae_loss_recovered(0.5, 1.25, 2.0), 0.5, 1e-12);
    cr_expect(isnan(rn_sae_loss_recovered(1, 1, 1)));

    struct rn_spec spec;
    struct rn_graph g;
    struct rn_sae s;
    struct rn_error err = {0};
    struct rn_sae_splice sp;
    hand_head(&spec, &g);
    const float h[8] = {2, 1, -1, 3, 0.5f, -2, 4, 4};
    const uint8_t labels[4] = {0, 1, 2, 1};
    const float mean[2] = {1.375f, 1.5f};
    /* the identity: relu(h) - relu(-h) per dimension */
    cr_assert_eq(rn_sae_alloc(&s, 2, 4, RN_SAE_RELU, 0, &err), 0);
    const float we[8] = {1, 0, -1, 0, 0, 1, 0, -1}, wd[8] = {1, -1, 0, 0, 0, 0, 1, -1};
    memcpy(s.w_enc, we, sizeof we);
    memcpy(s.w_dec, wd, sizeof wd);
    cr_assert_eq(rn_sae_splice(&g, 0, 1, &s, h, 4, labels, mean, &sp, &err), 0, "%s", err.msg);
    cr_expect_float_eq(sp.ce_sae, sp.ce_clean, 1e-6);
    cr_expect_float_eq(sp.acc_sae, sp.acc_clean, 1e-12);
    cr_expect_float_eq(sp.recovered_zero, 1, 1e-5, "%g", sp.recovered_zero);
    cr_expect_float_eq(sp.recovered_mean, 1, 1e-5, "%g", sp.recovered_mean);
    /* zeros: the same as zero-ablation */
    memset(s.w_dec, 0, sizeof wd);
    cr_assert_eq(rn_sae_splice(&g, 0, 1, &s, h, 4, labels, mean, &sp, &err), 0, "%s", err.msg);
    cr_expect_float_eq(sp.ce_sae, sp.ce_zero, 1e-6);
    cr_expect_float_eq(sp.recovered_zero, 0, 1e-6, "%g", sp.recovered_zero);
    /* the mean (b_d): the same as mean-ablation */
    memcpy(s.b_dec, mean, sizeof mean);
    cr_assert_eq(rn_sae_splice(&g, 0, 1, &s, h, 4, labels, mean, &sp, &err), 0, "%s", err.msg);
    cr_expect_float_eq(sp.recovered_mean, 0, 1e-6, "%g", sp.recovered_mean);
    /* the clean CE by hand: logits of sample 0 [2 1 1.5], label 0 */
    double lse = log(exp(2.0) + exp(1.0) + exp(1.5));
    float z[12];
    double acc;
    cr_assert_eq(rn_sae_head(&g, 0, 1, h, 4, z, &err), 0);
    cr_expect_float_eq(rn_sae_ce(z, 1, 3, labels, &acc, NULL), lse - 2, 1e-6);
    rn_sae_free(&s);
    rn_graph_free(&g);
    rn_spec_free(&spec);
}

/* ---- end to end ------------------------------------------------------------------ */

static void *read_any(struct rn_results *r, const char *path, enum rn_dtype t, int *nd, int dims[4])
{
    struct rn_error err = {0};
    void *v = NULL;
    cr_assert_eq(rn_results_read(r, path, t, &v, nd, dims, &err), 0, "%s", err.msg);
    return v;
}

Test(sae_analysis, end_to_end_with_the_fixture_model)
{
    char path[256], out[16384], run_dir[320], h5[400];
    put("run.yaml",
        HEAD "  - {type: sae, features: 32, epochs: 3, batch: 64, n: 600, top: 4, show: 5}\n"
             "  - {type: sae, name: again, features: 16, epochs: 2, n: 600, show: 0}\n"
             "  - {type: sae_intervene, n: 200, draws: 3, steps: 7}\n",
        path, sizeof path);
    snprintf(run_dir, sizeof run_dir, "%s/run", dir);
    int rc = sh(out, sizeof out, "%s %s --out %s --threads 2 2>&1", RN_RUNNER_BIN, path, run_dir);
    cr_assert_eq(rc, 0, "%s", out);
    cr_expect(strstr(out, "sae sae: x: 8 -> 32 features on train (600)") != NULL, "%s", out);
    cr_expect(strstr(out, "sae_intervene sae_intervene: x: bulk: accuracy clean") != NULL, "%s",
              out);
    snprintf(h5, sizeof h5, "%s/run.h5", run_dir);
    struct rn_results *r = NULL;
    struct rn_error err = {0};
    cr_assert_eq(rn_results_open(&r, h5, &err), 0, "%s", err.msg);
    int nd, dims[4];
    /* the activations, once */
    float *x = read_any(r, "/activations/x/features/train/x", RN_DTYPE_F32, &nd, dims);
    cr_expect(nd == 2 && dims[0] == 600 && dims[1] == 8);
    uint8_t *digits = read_any(r, "/activations/x/features/train/digits", RN_DTYPE_U8, &nd, dims);
    cr_expect_eq(dims[0], 600);
    /* metrics per epoch, the weights */
    float *loss = read_any(r, "/analyses/sae/x/train/loss", RN_DTYPE_F32, &nd, dims);
    cr_expect(nd == 1 && dims[0] == 3);
    float *fve = read_any(r, "/analyses/sae/x/final/fve", RN_DTYPE_F32, &nd, dims);
    cr_expect(nd == 0 && *fve <= 1);
    struct rn_sae s;
    cr_assert_eq(rn_sae_alloc(&s, 8, 32, RN_SAE_RELU, 0, &err), 0);
    const char *wn[5] = {"w_enc", "b_enc", "w_dec", "b_dec", "mu"};
    float *wd[5] = {s.w_enc, s.b_enc, s.w_dec, s.b_dec, s.mu};
    const int wcount[5] = {256, 32, 256, 8, 8};
    for (int i = 0; i < 5; i++) {
        char p[128];
        snprintf(p, sizeof p, "/analyses/sae/x/weights/%s", wn[i]);
        float *v = read_any(r, p, RN_DTYPE_F32, &nd, dims);
        memcpy(wd[i], v, sizeof(float) * wcount[i]);
        free(v);
    }
    /* classes: counts agree with the class of each feature, dead = never fired */
    int32_t *cls = read_any(r, "/analyses/sae/x/features/class", RN_DTYPE_I32, &nd, dims);
    int32_t *counts = read_any(r, "/analyses/sae/x/features/counts", RN_DTYPE_I32, &nd, dims);
    int32_t *order = read_any(r, "/analyses/sae/x/features/order", RN_DTYPE_I32, &nd, dims);
    float *density = read_any(r, "/analyses/sae/x/density", RN_DTYPE_F32, &nd, dims);
    int have[RN_SAE_N_CLASSES] = {0}, seen[32] = {0}, total = 0;
    for (int j = 0; j < 32; j++) {
        have[cls[j]]++;
        cr_expect_eq(cls[j] == RN_SAE_DEAD, !(density[j] > 0), "feature %d", j);
        cr_assert(order[j] >= 0 && order[j] < 32);
        seen[order[j]]++;
    }
    for (int c = 0; c < RN_SAE_N_CLASSES; c++) {
        cr_expect_eq(have[c], counts[c]);
        total += counts[c];
    }
    cr_expect_eq(total, 32);
    for (int j = 0; j < 32; j++)
        cr_expect_eq(seen[j], 1, "order is a permutation");
    /* the top images: their activations, recomputed from the stored weights */
    if (counts[RN_SAE_COLOUR] + counts[RN_SAE_BOTH] > 0) {
        int32_t *tf = read_any(r, "/analyses/sae/x/top/features", RN_DTYPE_I32, &nd, dims);
        int rows = dims[0];
        int32_t *ti = read_any(r, "/analyses/sae/x/top/index", RN_DTYPE_I32, &nd, dims);
        cr_expect(nd == 2 && dims[0] == rows && dims[1] == 4);
        float *tv = read_any(r, "/analyses/sae/x/top/value", RN_DTYPE_F32, &nd, dims);
        float codes[32];
        for (int f = 0; f < rows; f++) {
            cr_expect(cls[tf[f]] == RN_SAE_COLOUR || cls[tf[f]] == RN_SAE_BOTH);
            for (int t = 0; t < 4; t++) {
                rn_sae_encode(&s, x + (size_t)ti[f * 4 + t] * 8, 1, codes);
                cr_expect_float_eq(codes[tf[f]], tv[f * 4 + t], 1e-5);
                if (t)
                    cr_expect(tv[f * 4 + t] <= tv[f * 4 + t - 1]);
            }
        }
        free(tf);
        free(ti);
        free(tv);
    }
    /* the interventions: rows of probabilities, the sweep at 1 and at 0 */
    float *sp = read_any(r, "/analyses/sae_intervene/x/subset_probs", RN_DTYPE_F32, &nd, dims);
    cr_expect(nd == 2 && dims[0] == 3 && dims[1] == 10);
    for (int t = 0; t < 3; t++) {
        double sum = 0;
        for (int q = 0; q < 10; q++)
            sum += sp[t * 10 + q];
        cr_expect_float_eq(sum, 1, 1e-4);
    }
    float *sc = read_any(r, "/analyses/sae_intervene/x/sweep/scales", RN_DTYPE_F32, &nd, dims);
    cr_expect(dims[0] == 7 && sc[0] == 0 && sc[2] == 1 && sc[6] == 3);
    float *sw = read_any(r, "/analyses/sae_intervene/x/sweep/probs", RN_DTYPE_F32, &nd, dims);
    for (int q = 0; q < 10; q++) {
        cr_expect_float_eq(sw[20 + q], sp[q], 1e-5, "scale 1, class %d", q);
        cr_expect_float_eq(sw[q], sp[10 + q], 1e-5, "scale 0 = ablated, class %d", q);
    }
    float *ra =
        read_any(r, "/analyses/sae_intervene/x/bulk/random_accuracy", RN_DTYPE_F32, &nd, dims);
    cr_expect(nd == 1 && dims[0] == 3);
    /* the test split's activations were stored by the interventions */
    cr_expect(rn_results_exists(r, "/activations/x/features/test/x"));
    cr_expect(rn_results_exists(r, "/analyses/again/x/weights/w_enc"));
    rn_results_close(r);
    /* the figures */
    const char *figs[] = {"sae_training",       "sae_density",        "sae_heatmaps",
                          "sae_classes",        "again_heatmaps",     "sae_intervene_probs",
                          "sae_intervene_bulk", "sae_intervene_sweep"};
    for (size_t i = 0; i < sizeof figs / sizeof figs[0]; i++) {
        char png[512];
        struct stat st;
        snprintf(png, sizeof png, "%s/plots/%s.png", run_dir, figs[i]);
        cr_expect(stat(png, &st) == 0 && st.st_size > 0, "%s", png);
    }
    rn_sae_free(&s);
    free(x);
    free(digits);
    free(loss);
    free(fve);
    free(cls);
    free(counts);
    free(order);
    free(density);
    free(sp);
    free(sc);
    free(sw);
    free(ra);
}

Test(sae_analysis, activations_are_stored_once_and_another_model_under_a_name_refused)
{
    char path[256], out[8192], run_dir[320], want[600];
    /* 300, then 400 (computed again, replacing), then 200 (the first 200 of those) */
    put("run.yaml",
        HEAD "  - {type: sae, features: 16, epochs: 1, n: 300, tables_split: val}\n"
             "  - {type: sae, name: more, features: 16, epochs: 1, n: 400}\n"
             "  - {type: sae, name: fewer, features: 16, epochs: 1, n: 200}\n",
        path, sizeof path);
    snprintf(run_dir, sizeof run_dir, "%s/run", dir);
    int rc = sh(out, sizeof out, "%s %s --out %s --quiet --threads 2 2>&1", RN_RUNNER_BIN, path,
                run_dir);
    cr_assert_eq(rc, 0, "%s", out);
    char h5[400];
    snprintf(h5, sizeof h5, "%s/run.h5", run_dir);
    struct rn_results *r = NULL;
    struct rn_error err = {0};
    cr_assert_eq(rn_results_open(&r, h5, &err), 0, "%s", err.msg);
    int nd, dims[4];
    float *x = read_any(r, "/activations/x/features/train/x", RN_DTYPE_F32, &nd, dims);
    cr_expect(nd == 2 && dims[0] == 400 && dims[1] == 8, "(%d, %d)", dims[0], dims[1]);
    free(x);
    x = read_any(r, "/activations/x/features/val/x", RN_DTYPE_F32, &nd, dims);
    cr_expect(nd == 2 && dims[1] == 8);
    free(x);
    char *tables = NULL;
    cr_assert_eq(rn_results_get_attr_str(r, "/analyses/sae", "tables_split", &tables, &err), 0);
    cr_expect_str_eq(tables, "val");
    free(tables);
    rn_results_close(r);
    /* the same name for the model of another run */
    put("two.yaml",
        HEAD "  - {type: sae, features: 16, epochs: 1, n: 100}\n"
             "  - {type: sae, name: other, features: 16, epochs: 1, n: 100,\n"
             "     models: \"x " RN_FIXTURES "/interp_ref.h5\"}\n",
        path, sizeof path);
    snprintf(run_dir, sizeof run_dir, "%s/two", dir);
    rc = sh(out, sizeof out, "%s %s --out %s --quiet --threads 2 2>&1", RN_RUNNER_BIN, path,
            run_dir);
    cr_expect_eq(rc, 1, "%s", out);
    snprintf(want, sizeof want,
             "%s:8:14: error: analysis 'other' (sae): model 'x': /activations/x/features/train "
             "holds the activations of the model of 'self', this one comes from '" RN_FIXTURES
             "/interp_ref.h5'; give it another name",
             path);
    cr_expect(strstr(out, want) != NULL, "%s", out);
}
