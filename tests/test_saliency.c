/* The saliency loss (runner/saliency.h) and the gradient reversal layer.
 *
 * - dR/dtheta against central finite differences of the whole loss R(theta),
 *   for l1/l2 x mean_background/background_share, and with a training-mode
 *   dropout (its mask depends only on seed, step and node, so every
 *   perturbed forward sees the same one);
 * - R, the per-sample input gradient and every parameter gradient against
 *   PyTorch's double backprop (tests/reference/make_saliency_fixture.py ->
 *   tests/fixtures/saliency_ref.h5);
 * - the fused cross-entropy variant, accumulation into existing gradients,
 *   the training-mode batchnorm refusal;
 * - grl: gradient and tangent checks (tests/gradcheck.h), alpha 0 blocks the
 *   gradient, alpha written at run time (as a schedule does) takes effect. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "runner/graph.h"
#include "runner/loss.h"
#include "runner/results.h"
#include "runner/saliency.h"
#include "runner/train.h"

/* A spec layer from "type" and "key=value,key=value" (numbers only). */
static void spec_layer(struct rn_spec_layer *s, const char *type, const char *name, const char *kv)
{
    memset(s, 0, sizeof *s);
    s->type = rn_layer_type_find(type);
    cr_assert_not_null(s->type, "no layer type %s", type);
    snprintf(s->name, sizeof s->name, "%s", name);
    snprintf(s->file, sizeof s->file, "test.yaml");
    s->line = 1;
    s->col = 1;
    for (int i = 0; i < s->type->n_keys; i++)
        s->v.num[i] = s->type->keys[i].def;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", kv);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        cr_assert_not_null(eq);
        *eq = 0;
        int found = 0;
        for (int i = 0; i < s->type->n_keys; i++)
            if (strcmp(s->type->keys[i].key, tok) == 0) {
                s->v.num[i] = atof(eq + 1);
                s->v.given[i] = 1;
                found = 1;
            }
        cr_assert(found, "unknown key %s", tok);
    }
}

/* conv1 relu1 pool1 conv2 relu2 features [dropout] fc: the fixture's model. */
static void small_graph(struct rn_graph *g, int dropout, int max_n)
{
    struct rn_spec_model m;
    memset(&m, 0, sizeof m);
    snprintf(m.name, sizeof m.name, "small");
    spec_layer(&m.layers[m.n_layers++], "conv2d", "conv1", "filters=4,kernel=3,padding=1");
    spec_layer(&m.layers[m.n_layers++], "relu", "relu1", "");
    spec_layer(&m.layers[m.n_layers++], "maxpool2d", "pool1", "kernel=2");
    spec_layer(&m.layers[m.n_layers++], "conv2d", "conv2", "filters=6,kernel=3,padding=1");
    spec_layer(&m.layers[m.n_layers++], "relu", "relu2", "");
    spec_layer(&m.layers[m.n_layers++], "global_avg_pool", "features", "");
    if (dropout)
        spec_layer(&m.layers[m.n_layers++], "dropout", "dropout", "p=0.5");
    spec_layer(&m.layers[m.n_layers++], "linear", "fc", "units=10");
    struct rn_error err;
    struct rn_shape in = {3, 8, 8};
    cr_assert_eq(rn_graph_build(g, &m, in, max_n, &err), 0, "%s", err.msg);
}

/* White strokes (every channel >= 0.96) on a textured coloured background
 * (every channel <= 0.9), every pixel random so no max-pool window ties. */
static void stroke_images(struct rn_graph *g, int n, uint64_t seed)
{
    struct rn_rng r;
    rn_rng_init(&r, seed, 77, 0);
    g->x.n = n;
    for (int i = 0; i < n; i++) {
        float col[3];
        for (int c = 0; c < 3; c++)
            col[c] = 0.15f + 0.75f * rn_rng_uniform(&r);
        int row = 1 + (int)(6 * rn_rng_uniform(&r)), column = 1 + (int)(6 * rn_rng_uniform(&r));
        for (int p = 0; p < 64; p++) {
            int y = p / 8, x = p % 8;
            int stroke = (y == row && x >= 1 && x < 7) || (x == column && y >= 1 && y < 7);
            float noise = 0.5f + 0.5f * rn_rng_uniform(&r);
            for (int c = 0; c < 3; c++)
                g->x.data[(i * 3 + c) * 64 + p] =
                    stroke ? 0.96f + 0.04f * rn_rng_uniform(&r) : col[c] * noise;
        }
    }
}

static float *grads_save(struct rn_graph *g)
{
    float *buf = malloc(rn_graph_n_trainable(g) * sizeof(float) + 1), *p = buf;
    for (int i = 0; i < g->n_nodes; i++)
        for (int j = 0; j < g->nodes[i].layer.n_params; j++) {
            struct rn_param *q = &g->nodes[i].layer.params[j];
            if (q->trainable) {
                memcpy(p, q->grad.data, rn_tensor_numel(&q->grad) * sizeof(float));
                p += rn_tensor_numel(&q->grad);
            }
        }
    return buf;
}

/* R at the current parameters: forward, then the loss (its gradient output
 * is ignored). */
static double loss_at(struct rn_graph *g, int n, const uint8_t *y, const struct rn_saliency *cfg,
                      struct rn_ctx *ctx)
{
    struct rn_error err;
    double v;
    cr_assert_eq(rn_graph_forward(g, n, -1, ctx, &err), 0, "%s", err.msg);
    cr_assert_eq(rn_saliency_loss(g, n, g->n_nodes - 1, y, cfg, 1.0f, ctx, &v, &err), 0, "%s",
                 err.msg);
    return v;
}

static void fd_case(enum rn_saliency_norm norm, enum rn_saliency_reduce reduce, int dropout_train)
{
    struct rn_graph g;
    struct rn_error err;
    small_graph(&g, dropout_train, 4);
    rn_graph_init_params(&g, 21 + norm * 2 + reduce);
    const int n = 4;
    const uint8_t y[4] = {2, 5, 0, 9};
    stroke_images(&g, n, 3);
    struct rn_saliency cfg = {norm, reduce, 0.95f};
    struct rn_ctx ctx = {.train = dropout_train, .seed = 5, .step = 17};

    cr_assert_eq(rn_graph_zero_grad(&g, NULL), 0);
    double r0;
    cr_assert_eq(rn_graph_forward(&g, n, -1, &ctx, &err), 0, "%s", err.msg);
    cr_assert_eq(rn_saliency_loss(&g, n, g.n_nodes - 1, y, &cfg, 1.0f, &ctx, &r0, &err), 0, "%s",
                 err.msg);
    cr_assert(r0 > 0 && isfinite(r0), "R = %g", r0);
    float *exact = grads_save(&g);
    double scale = 0;
    for (size_t k = 0; k < rn_graph_n_trainable(&g); k++)
        scale = fmax(scale, fabs(exact[k]));
    cr_assert_gt(scale, 0, "the saliency gradient is zero: nothing to check");

    struct rn_rng r;
    rn_rng_init(&r, 9, 1, 0);
    int checked = 0, skipped = 0, bad = 0;
    const float eps = 1e-3f;
    size_t off = 0;
    for (int node = 0; node < g.n_nodes; node++)
        for (int j = 0; j < g.nodes[node].layer.n_params; j++) {
            struct rn_param *p = &g.nodes[node].layer.params[j];
            size_t numel = rn_tensor_numel(&p->value);
            int points = numel < 10 ? (int)numel : 10;
            for (int t = 0; t < points; t++) {
                size_t k = numel < 10 ? (size_t)t : (size_t)(rn_rng_uniform(&r) * numel) % numel;
                float keep = p->value.data[k];
                /* f at +e, -e, +e/2, -e/2, 0 */
                double f[5];
                const float steps[5] = {eps, -eps, eps / 2, -eps / 2, 0};
                for (int s = 0; s < 5; s++) {
                    p->value.data[k] = keep + steps[s];
                    f[s] = loss_at(&g, n, y, &cfg, &ctx);
                }
                p->value.data[k] = keep;
                double fd = (f[0] - f[1]) / (2 * eps), fd2 = (f[2] - f[3]) / eps;
                double right = (f[2] - f[4]) / (eps / 2), left = (f[4] - f[3]) / (eps / 2);
                /* A relu, max-pool or |g| kink inside the step: the two
                 * scales disagree, or (a kink right at the point, where the
                 * central differences average the two sides alike) the
                 * one-sided slopes do. */
                if (fabs(fd - fd2) > 2e-2 * fmax(fabs(fd), fabs(fd2)) + 1e-3 * scale ||
                    fabs(right - left) > 5e-2 * fmax(fabs(right), fabs(left)) + 2e-3 * scale) {
                    skipped++;
                    continue;
                }
                checked++;
                double a = exact[off + k];
                if (fabs(a - fd) > 2e-2 * fmax(fabs(a), fabs(fd)) + 2e-3 * scale) {
                    if (bad++ < 8)
                        fprintf(stderr,
                                "saliency %d/%d: %s.%s[%zu]: exact %.6g, finite diff %.6g\n", norm,
                                reduce, g.nodes[node].layer.name, p->name, k, a, fd);
                }
            }
            off += numel;
        }
    if (getenv("GC_VERBOSE"))
        fprintf(stderr, "saliency norm %d reduce %d dropout %d: %d points checked, %d skipped\n",
                norm, reduce, dropout_train, checked, skipped);
    cr_assert_gt(checked, 40, "only %d points checked (%d skipped)", checked, skipped);
    cr_assert_lt(skipped, checked / 4 + 1, "%d points skipped of %d", skipped, checked + skipped);
    cr_assert_eq(bad, 0, "%d of %d gradient entries disagree with finite differences", bad,
                 checked);
    free(exact);
    rn_graph_free(&g);
}

Test(saliency, l1_mean_background_matches_finite_differences)
{
    fd_case(RN_SALIENCY_L1, RN_SALIENCY_MEAN_BACKGROUND, 0);
}
Test(saliency, l2_mean_background_matches_finite_differences)
{
    fd_case(RN_SALIENCY_L2, RN_SALIENCY_MEAN_BACKGROUND, 0);
}
Test(saliency, l1_background_share_matches_finite_differences)
{
    fd_case(RN_SALIENCY_L1, RN_SALIENCY_BACKGROUND_SHARE, 0);
}
Test(saliency, l2_background_share_matches_finite_differences)
{
    fd_case(RN_SALIENCY_L2, RN_SALIENCY_BACKGROUND_SHARE, 0);
}
Test(saliency, training_mode_dropout_matches_finite_differences)
{
    fd_case(RN_SALIENCY_L1, RN_SALIENCY_MEAN_BACKGROUND, 1);
}

/* ---- against PyTorch ---------------------------------------------------- */

static void *read_ds(struct rn_results *f, const char *path, enum rn_dtype t, size_t want)
{
    struct rn_error err;
    void *data;
    int nd, dims[4];
    cr_assert_eq(rn_results_read(f, path, t, &data, &nd, dims, &err), 0, "%s", err.msg);
    size_t numel = 1;
    for (int i = 0; i < nd; i++)
        numel *= (size_t)dims[i];
    cr_assert_eq(numel, want, "%s: %zu values, expected %zu", path, numel, want);
    return data;
}

/* |a - b| <= tol * (|b| + 1e-2 * max|b|): relative, with a floor at 1% of
 * the tensor's scale for entries that are nearly zero. Prints the first
 * mismatches. */
static int compare(const char *what, const float *a, const double *b, size_t m, double tol)
{
    double big = 0;
    for (size_t k = 0; k < m; k++)
        big = fmax(big, fabs(b[k]));
    int bad = 0;
    for (size_t k = 0; k < m; k++)
        if (!(fabs(a[k] - b[k]) <= tol * (fabs(b[k]) + 1e-2 * big)))
            if (bad++ < 5)
                fprintf(stderr, "%s[%zu]: runner %.8g, PyTorch %.8g\n", what, k, a[k], b[k]);
    return bad;
}

static void fixture_case(const char *name, int dropout, enum rn_saliency_norm norm,
                         enum rn_saliency_reduce reduce)
{
    struct rn_results *f;
    struct rn_error err;
    cr_assert_eq(rn_results_open(&f, RN_FIXTURES "/saliency_ref.h5", &err), 0, "%s", err.msg);
    struct rn_graph g;
    small_graph(&g, dropout, 4);
    const int n = 4;
    float *x = read_ds(f, "/x", RN_DTYPE_F32, rn_tensor_sample(&g.x) * n);
    uint8_t *y = read_ds(f, "/labels", RN_DTYPE_U8, n);
    double *w = read_ds(f, "/weight", RN_DTYPE_F64, 1);
    memcpy(g.x.data, x, rn_tensor_sample(&g.x) * n * sizeof(float));
    char path[256];
    for (int i = 0; i < g.n_nodes; i++)
        for (int j = 0; j < g.nodes[i].layer.n_params; j++) {
            struct rn_param *p = &g.nodes[i].layer.params[j];
            snprintf(path, sizeof path, "/weights/%s.%s", g.nodes[i].layer.name, p->name);
            float *v = read_ds(f, path, RN_DTYPE_F32, rn_tensor_numel(&p->value));
            memcpy(p->value.data, v, rn_tensor_numel(&p->value) * sizeof(float));
            free(v);
        }
    struct rn_ctx ctx = {.train = 0, .seed = 1};
    struct rn_saliency cfg = {norm, reduce, 0.95f};
    cr_assert_eq(rn_graph_forward(&g, n, -1, &ctx, &err), 0, "%s", err.msg);
    cr_assert_eq(rn_graph_zero_grad(&g, NULL), 0);
    double value;
    cr_assert_eq(rn_saliency_loss(&g, n, g.n_nodes - 1, y, &cfg, (float)w[0], &ctx, &value, &err),
                 0, "%s", err.msg);

    snprintf(path, sizeof path, "/cases/%s/R", name);
    double *ref = read_ds(f, path, RN_DTYPE_F64, 1);
    cr_expect(fabs(value - ref[0]) <= 1e-4 * fabs(ref[0]), "%s: R %.9g, PyTorch %.9g", name, value,
              ref[0]);
    free(ref);
    int bad = 0, total = 0;
    double *gref = read_ds(f, "/g", RN_DTYPE_F64, rn_tensor_numel(&g.dx));
    bad += compare("g (dCE_i/dx_i)", g.dx.data, gref, rn_tensor_numel(&g.dx), 1e-4);
    free(gref);
    for (int i = 0; i < g.n_nodes; i++)
        for (int j = 0; j < g.nodes[i].layer.n_params; j++) {
            struct rn_param *p = &g.nodes[i].layer.params[j];
            size_t m = rn_tensor_numel(&p->grad);
            snprintf(path, sizeof path, "/cases/%s/%s.%s", name, g.nodes[i].layer.name, p->name);
            double *gr = read_ds(f, path, RN_DTYPE_F64, m);
            bad += compare(path, p->grad.data, gr, m, 1e-3);
            total += (int)m;
            free(gr);
        }
    cr_expect_eq(total, 404, "parameters compared: %d", total);
    cr_expect_eq(bad, 0, "%s: %d entries differ from PyTorch", name, bad);
    free(x);
    free(y);
    free(w);
    rn_graph_free(&g);
    rn_results_close(f);
}

Test(saliency_reference, l1_mean_background)
{
    fixture_case("l1_mean_background", 0, RN_SALIENCY_L1, RN_SALIENCY_MEAN_BACKGROUND);
}
Test(saliency_reference, l2_mean_background)
{
    fixture_case("l2_mean_background", 0, RN_SALIENCY_L2, RN_SALIENCY_MEAN_BACKGROUND);
}
Test(saliency_reference, l1_background_share)
{
    fixture_case("l1_background_share", 0, RN_SALIENCY_L1, RN_SALIENCY_BACKGROUND_SHARE);
}
Test(saliency_reference, l2_background_share)
{
    fixture_case("l2_background_share", 0, RN_SALIENCY_L2, RN_SALIENCY_BACKGROUND_SHARE);
}
Test(saliency_reference, eval_mode_dropout)
{
    fixture_case("dropout_l1_mean_background", 1, RN_SALIENCY_L1, RN_SALIENCY_MEAN_BACKGROUND);
}

/* ---- contract ------------------------------------------------------------ */

/* Existing gradients are kept and the term is added scaled by weight;
 * weight 0 adds exactly nothing. */
Test(saliency, adds_weighted_term_to_existing_gradients)
{
    struct rn_graph g;
    struct rn_error err;
    small_graph(&g, 0, 4);
    rn_graph_init_params(&g, 3);
    const int n = 3;
    const uint8_t y[3] = {1, 2, 3};
    stroke_images(&g, n, 8);
    struct rn_saliency cfg = {RN_SALIENCY_L2, RN_SALIENCY_MEAN_BACKGROUND, 0.95f};
    struct rn_ctx ctx = {.train = 0, .seed = 1};
    double v1, v2, v0;
    cr_assert_eq(rn_graph_forward(&g, n, -1, &ctx, &err), 0);
    cr_assert_eq(rn_graph_zero_grad(&g, NULL), 0);
    cr_assert_eq(rn_saliency_loss(&g, n, g.n_nodes - 1, y, &cfg, 1.0f, &ctx, &v1, &err), 0);
    float *unit = grads_save(&g);
    size_t np = rn_graph_n_trainable(&g);

    /* arbitrary starting gradients */
    for (int i = 0; i < g.n_nodes; i++)
        for (int j = 0; j < g.nodes[i].layer.n_params; j++)
            for (size_t k = 0; k < rn_tensor_numel(&g.nodes[i].layer.params[j].grad); k++)
                g.nodes[i].layer.params[j].grad.data[k] = 0.01f * (float)((k % 7) - 3);
    float *start = grads_save(&g);
    cr_assert_eq(rn_saliency_loss(&g, n, g.n_nodes - 1, y, &cfg, 3.0f, &ctx, &v2, &err), 0, "%s",
                 err.msg);
    cr_expect(fabs(v2 - 3 * v1) <= 1e-6 * fabs(v2), "R scales with weight: %g vs 3 * %g", v2, v1);
    float *after = grads_save(&g);
    int bad = 0;
    for (size_t k = 0; k < np; k++)
        if (fabs(after[k] - (start[k] + 3 * unit[k])) >
            1e-5 * (fabs(start[k]) + 3 * fabs(unit[k])) + 1e-9)
            bad++;
    cr_expect_eq(bad, 0, "%d gradients are not start + 3 * dR/dtheta", bad);

    cr_assert_eq(rn_saliency_loss(&g, n, g.n_nodes - 1, y, &cfg, 0.0f, &ctx, &v0, &err), 0);
    float *again = grads_save(&g);
    cr_expect_eq(v0, 0.0);
    cr_expect(memcmp(again, after, np * sizeof(float)) == 0, "weight 0 changed the gradients");
    free(unit);
    free(start);
    free(after);
    free(again);
    rn_graph_free(&g);
}

/* The fused variant adds exactly the cross-entropy term's own gradient
 * (rn_cross_entropy + rn_graph_backward) on top of the saliency term. */
Test(saliency, fused_cross_entropy_equals_separate_passes)
{
    struct rn_graph g;
    struct rn_error err;
    small_graph(&g, 1, 4);
    rn_graph_init_params(&g, 13);
    const int n = 4, last = 7;
    const uint8_t y[4] = {9, 8, 7, 6};
    stroke_images(&g, n, 4);
    struct rn_saliency cfg = {RN_SALIENCY_L1, RN_SALIENCY_BACKGROUND_SHARE, 0.95f};
    struct rn_ctx ctx = {.train = 1, .seed = 2, .step = 5};
    const float w = 0.5f, wce = 0.7f;
    double vs, vf, ce;

    cr_assert_eq(rn_graph_forward(&g, n, -1, &ctx, &err), 0);
    cr_assert_eq(rn_graph_zero_grad(&g, NULL), 0);
    cr_assert_eq(rn_saliency_loss(&g, n, last, y, &cfg, w, &ctx, &vs, &err), 0, "%s", err.msg);
    cr_assert_eq(rn_graph_zero_dy(&g, n, NULL), 0);
    double ce_ref = rn_cross_entropy(&g.nodes[last].y, y, wce, &g.nodes[last].dy, NULL, NULL);
    cr_assert_eq(rn_graph_backward(&g, n, last, 0, &ctx, &err), 0);
    float *sep = grads_save(&g);

    cr_assert_eq(rn_graph_zero_grad(&g, NULL), 0);
    cr_assert_eq(rn_saliency_loss_ce(&g, n, last, y, &cfg, w, wce, &ctx, &vf, &ce, &err), 0, "%s",
                 err.msg);
    float *fused = grads_save(&g);
    cr_expect(fabs(vf - vs) <= 1e-5 * fabs(vs), "R %g (fused) vs %g", vf, vs);
    cr_expect(fabs(ce - ce_ref) <= 1e-12, "CE %g vs %g", ce, ce_ref);
    size_t np = rn_graph_n_trainable(&g);
    double big = 0;
    for (size_t k = 0; k < np; k++)
        big = fmax(big, fabs(sep[k]));
    int bad = 0;
    for (size_t k = 0; k < np; k++)
        if (fabs(fused[k] - sep[k]) > 1e-4 * fabs(sep[k]) + 1e-6 * big)
            if (bad++ < 5)
                fprintf(stderr, "fused grad[%zu] %g vs separate %g\n", k, fused[k], sep[k]);
    cr_expect_eq(bad, 0, "%d fused gradients differ", bad);
    free(sep);
    free(fused);
    rn_graph_free(&g);
}

Test(saliency, training_mode_batchnorm_is_refused_and_gradients_kept)
{
    struct rn_spec_model m;
    memset(&m, 0, sizeof m);
    spec_layer(&m.layers[m.n_layers++], "conv2d", "conv1", "filters=4,kernel=3,padding=1");
    spec_layer(&m.layers[m.n_layers++], "batchnorm", "bn1", "");
    spec_layer(&m.layers[m.n_layers++], "relu", "relu1", "");
    spec_layer(&m.layers[m.n_layers++], "global_avg_pool", "features", "");
    spec_layer(&m.layers[m.n_layers++], "linear", "fc", "units=10");
    struct rn_graph g;
    struct rn_error err;
    struct rn_shape in = {3, 8, 8};
    cr_assert_eq(rn_graph_build(&g, &m, in, 4, &err), 0, "%s", err.msg);
    rn_graph_init_params(&g, 5);
    const uint8_t y[2] = {1, 2};
    stroke_images(&g, 2, 6);
    struct rn_saliency cfg = {RN_SALIENCY_L1, RN_SALIENCY_MEAN_BACKGROUND, 0.95f};
    struct rn_ctx ctx = {.train = 1, .seed = 1};
    cr_assert_eq(rn_graph_forward(&g, 2, -1, &ctx, &err), 0, "%s", err.msg);
    for (int i = 0; i < g.n_nodes; i++)
        for (int j = 0; j < g.nodes[i].layer.n_params; j++)
            if (g.nodes[i].layer.params[j].trainable)
                for (size_t k = 0; k < rn_tensor_numel(&g.nodes[i].layer.params[j].grad); k++)
                    g.nodes[i].layer.params[j].grad.data[k] = 0.125f;
    float *before = grads_save(&g);
    double v = -1;
    cr_assert_eq(rn_saliency_loss(&g, 2, 4, y, &cfg, 1.0f, &ctx, &v, &err), -1);
    cr_expect_str_eq(err.msg,
                     "saliency loss: layer 'bn1' (batchnorm) tangent forward: batchnorm 'bn1': "
                     "tangent mode in training mode is not supported (use eval mode or remove "
                     "batchnorm for saliency losses)");
    float *after = grads_save(&g);
    cr_expect(memcmp(before, after, rn_graph_n_trainable(&g) * sizeof(float)) == 0,
              "a refused saliency loss changed the gradients");
    cr_expect_eq(v, 0.0);
    /* eval mode is fine */
    ctx.train = 0;
    cr_assert_eq(rn_graph_forward(&g, 2, -1, &ctx, &err), 0, "%s", err.msg);
    cr_expect_eq(rn_saliency_loss(&g, 2, 4, y, &cfg, 1.0f, &ctx, &v, &err), 0, "%s", err.msg);
    cr_expect_gt(v, 0.0);
    free(before);
    free(after);
    rn_graph_free(&g);
}

Test(saliency, bad_calls_are_errors)
{
    struct rn_graph g;
    struct rn_error err;
    small_graph(&g, 0, 4);
    rn_graph_init_params(&g, 1);
    stroke_images(&g, 2, 1);
    struct rn_ctx ctx = {.train = 0};
    struct rn_saliency cfg = {RN_SALIENCY_L1, RN_SALIENCY_MEAN_BACKGROUND, 0.95f};
    cr_assert_eq(rn_graph_forward(&g, 2, -1, &ctx, &err), 0);
    double v;
    const uint8_t bad_y[2] = {1, 10};
    cr_expect_eq(rn_saliency_loss(&g, 2, 6, bad_y, &cfg, 1, &ctx, &v, &err), -1);
    cr_expect(strstr(err.msg, "target 10 of sample 1 is not one of the 10 classes of 'fc'"), "%s",
              err.msg);
    const uint8_t y[3] = {1, 2, 3};
    cr_expect_eq(rn_saliency_loss(&g, 3, 6, y, &cfg, 1, &ctx, &v, &err), -1);
    cr_expect(strstr(err.msg, "the last forward ran on 2"), "%s", err.msg);
    cr_expect_eq(rn_saliency_loss(&g, 2, 9, y, &cfg, 1, &ctx, &v, &err), -1);
    rn_graph_free(&g);
}

/* ---- grl ----------------------------------------------------------------- */

Test(grl, gradient_and_tangent_checks)
{
    struct rn_layer l;
    struct rn_error err;
    struct rn_shape in = {3, 4, 5};
    const struct rn_layer_type *t = rn_layer_type_find("grl");
    cr_assert_not_null(t, "grl is not registered");
    /* alpha = -1 makes the backward the true gradient of the identity, so
     * the finite-difference check of the machinery (accumulation, dx = NULL,
     * batch bounds) applies; the range check is the spec's, not the layer's. */
    cr_assert_eq(gc_build(&l, t, "alpha=-1", &in, 1, 3, &err), 0, "%s", err.msg);
    cr_expect_eq(gc_check_backward(&l, 2, 1, 11), 0);
    rn_layer_free(&l);
    cr_assert_eq(gc_build(&l, t, "alpha=0.7", &in, 1, 3, &err), 0, "%s", err.msg);
    cr_expect_eq(gc_check_tangent(&l, 2, 1, 12), 0);
    cr_expect_eq(gc_check_tangent(&l, 3, 0, 13), 0);

    /* the reversal itself: dx += -alpha dy, forward the identity */
    struct rn_tensor x, y, dy, dx;
    cr_assert_eq(rn_tensor_init(&x, 3, 3, 4, 5, &err), 0);
    cr_assert_eq(rn_tensor_init(&y, 3, 3, 4, 5, &err), 0);
    cr_assert_eq(rn_tensor_init(&dy, 3, 3, 4, 5, &err), 0);
    cr_assert_eq(rn_tensor_init(&dx, 3, 3, 4, 5, &err), 0);
    x.n = y.n = dy.n = dx.n = 2;
    for (size_t k = 0; k < rn_tensor_numel(&x); k++) {
        x.data[k] = (float)k * 0.25f - 3.0f;
        dy.data[k] = 1.0f - (float)k * 0.125f;
        dx.data[k] = 0.5f;
    }
    const struct rn_tensor *xs[1] = {&x};
    struct rn_tensor *dxs[1] = {&dx};
    struct rn_ctx ctx = {0};
    cr_assert_eq(t->forward(&l, xs, &y, &ctx, &err), 0);
    cr_expect_eq(y.n, 2);
    cr_expect(memcmp(x.data, y.data, rn_tensor_numel(&x) * sizeof(float)) == 0);
    cr_assert_eq(t->backward(&l, xs, &y, &dy, dxs, &ctx, &err), 0);
    for (size_t k = 0; k < rn_tensor_numel(&x); k++)
        cr_expect_float_eq(dx.data[k], 0.5f - 0.7f * dy.data[k], 1e-6, "dx[%zu]", k);
    /* alpha written at run time (the schedule's way) takes effect; 0 blocks */
    l.v.num[0] = 0.0;
    for (size_t k = 0; k < rn_tensor_numel(&x); k++)
        dx.data[k] = 0.5f;
    cr_assert_eq(t->backward(&l, xs, &y, &dy, dxs, &ctx, &err), 0);
    for (size_t k = 0; k < rn_tensor_numel(&x); k++)
        cr_expect_eq(dx.data[k], 0.5f, "alpha 0 changed dx[%zu]", k);
    rn_tensor_free(&x);
    rn_tensor_free(&y);
    rn_tensor_free(&dy);
    rn_tensor_free(&dx);
    rn_layer_free(&l);
}

/* conv1 -> grl -> gap -> fc: with alpha 0 conv1 learns nothing from the
 * head; with alpha a its gradient is -a times the unreversed one. */
Test(grl, alpha_blocks_and_scales_the_gradient_in_a_graph)
{
    struct rn_spec_model m;
    memset(&m, 0, sizeof m);
    spec_layer(&m.layers[m.n_layers++], "conv2d", "conv1", "filters=4,kernel=3,padding=1");
    spec_layer(&m.layers[m.n_layers++], "relu", "relu1", "");
    spec_layer(&m.layers[m.n_layers++], "grl", "grl", "alpha=0");
    spec_layer(&m.layers[m.n_layers++], "global_avg_pool", "features", "");
    spec_layer(&m.layers[m.n_layers++], "linear", "colour_head", "units=10");
    struct rn_graph g;
    struct rn_error err;
    struct rn_shape in = {3, 8, 8};
    cr_assert_eq(rn_graph_build(&g, &m, in, 4, &err), 0, "%s", err.msg);
    rn_graph_init_params(&g, 2);
    stroke_images(&g, 3, 2);
    const uint8_t y[3] = {4, 5, 6};
    struct rn_ctx ctx = {.train = 1, .seed = 1};
    struct rn_param *w1 = rn_layer_param(&g.nodes[0].layer, "weight");
    struct rn_param *wh = rn_layer_param(&g.nodes[4].layer, "weight");
    size_t n1 = rn_tensor_numel(&w1->grad), nh = rn_tensor_numel(&wh->grad);
    float *ref = malloc(n1 * sizeof(float));
    const double alphas[3] = {-1.0, 0.0, 0.35}; /* -1: the plain gradient */
    for (int a = 0; a < 3; a++) {
        g.nodes[2].layer.v.num[0] = alphas[a];
        cr_assert_eq(rn_graph_forward(&g, 3, -1, &ctx, &err), 0, "%s", err.msg);
        cr_assert_eq(rn_graph_zero_dy(&g, 3, NULL), 0);
        rn_cross_entropy(&g.nodes[4].y, y, 1, &g.nodes[4].dy, NULL, NULL);
        cr_assert_eq(rn_graph_zero_grad(&g, NULL), 0);
        cr_assert_eq(rn_graph_backward(&g, 3, 4, 0, &ctx, &err), 0, "%s", err.msg);
        double head = 0, body = 0;
        for (size_t k = 0; k < nh; k++)
            head += fabs(wh->grad.data[k]);
        for (size_t k = 0; k < n1; k++)
            body += fabs(w1->grad.data[k]);
        cr_expect_gt(head, 0, "the head must learn whatever alpha is");
        if (a == 0) {
            cr_assert_gt(body, 0);
            memcpy(ref, w1->grad.data, n1 * sizeof(float));
        } else if (a == 1) {
            cr_expect_eq(body, 0.0, "alpha 0 let a gradient through to conv1");
        } else {
            for (size_t k = 0; k < n1; k++)
                cr_expect_float_eq(w1->grad.data[k], -0.35f * ref[k], 1e-6 + 1e-5 * fabs(ref[k]),
                                   "conv1 grad[%zu]", k);
        }
    }
    free(ref);
    rn_graph_free(&g);
}
