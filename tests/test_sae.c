/* The sparse autoencoder's arithmetic (runner/sae.h, sae.c, sae_train.c):
 *  - the loss gradient w.r.t. W_e, b_e, W_d, b_d against central finite
 *    differences (relu, relu with decoder-norm weighting, topk), with kinks
 *    skipped;
 *  - the decoder projection removes each column's component and nothing
 *    else; decoder columns are unit-norm after training;
 *  - one training step is the gradient, the projection, Adam and the
 *    renormalisation; Adam against a hand computation;
 *  - rn_fve's identities (the mean: 0, x itself: 1, a hand case, one far
 *    from the origin); the geometric median's optimality;
 *  - encode and decode against a direct computation in double; topk keeps
 *    exactly k, the largest, ties to the lowest index;
 *  - a synthetic dataset of sparse non-negative combinations of known
 *    directions: the SAE recovers them;
 *  - dead features are counted, and resampled as sae.h says;
 *  - two runs are bit-identical;
 *  - against PyTorch (tests/reference/make_sae_fixture.py ->
 *    tests/fixtures/sae_ref.h5): the same initial weights, data and shuffles,
 *    a few epochs of the recipe; weights and metrics to ~1e-5;
 *  - bad configurations: exact messages.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner/results.h"
#include "runner/rng.h"
#include "runner/sae.h"

#define TEST_STREAM 0x7e57 /* not one of the runner's streams */

static void fill_uniform(float *v, size_t n, float lo, float hi, uint64_t seed)
{
    struct rn_rng r;
    rn_rng_init(&r, seed, TEST_STREAM, 0);
    for (size_t i = 0; i < n; i++)
        v[i] = lo + (hi - lo) * rn_rng_uniform(&r);
}

static float *uniform(size_t n, float lo, float hi, uint64_t seed)
{
    float *v = malloc(sizeof(float) * n);
    cr_assert(v);
    fill_uniform(v, n, lo, hi, seed);
    return v;
}

/* A random SAE: weights in [-0.5, 0.5], decoder columns of norms 0.5..1.5
 * (so the decoder-norm weighting matters), mu nonzero. */
static void random_sae(struct rn_sae *s, int d, int m, enum rn_sae_act act, int k, uint64_t seed)
{
    struct rn_error err = {{0}};
    cr_assert_eq(rn_sae_alloc(s, d, m, act, k, &err), 0, "%s", err.msg);
    fill_uniform(s->w_enc, (size_t)d * m, -0.5f, 0.5f, seed);
    fill_uniform(s->b_enc, (size_t)m, -0.2f, 0.3f, seed + 1);
    fill_uniform(s->w_dec, (size_t)d * m, -0.5f, 0.5f, seed + 2);
    fill_uniform(s->b_dec, (size_t)d, -0.3f, 0.3f, seed + 3);
    fill_uniform(s->mu, (size_t)d, 0.0f, 0.5f, seed + 4);
}

/* ---- gradients by finite differences ------------------------------------------- */

static double loss_at(const struct rn_sae *s, const struct rn_sae_config *cfg, const float *x,
                      int n, struct rn_sae *scratch)
{
    struct rn_error err = {{0}};
    double loss;
    cr_assert_eq(rn_sae_gradient(s, cfg, x, (size_t)n, scratch, &loss, &err), 0, "%s", err.msg);
    return loss;
}

/* Every element of the four tensors: the analytic gradient against the
 * central difference at h/2, skipped when those at h and h/2 disagree (a
 * kink: a ReLU or the top-k set changes inside the interval). */
static void gradcheck(enum rn_sae_act act, int decoder_norm, float l1)
{
    enum { D = 6, M = 10, N = 7 };
    struct rn_sae s, grad, scratch;
    struct rn_error err = {{0}};
    random_sae(&s, D, M, act, 3, 11);
    cr_assert_eq(rn_sae_alloc(&grad, D, M, RN_SAE_RELU, 0, &err), 0);
    cr_assert_eq(rn_sae_alloc(&scratch, D, M, RN_SAE_RELU, 0, &err), 0);
    float *x = uniform((size_t)N * D, 0.0f, 1.5f, 12);
    struct rn_sae_config cfg = rn_sae_config_default();
    cfg.m = M;
    cfg.act = act;
    cfg.k = 3;
    cfg.l1 = l1;
    cfg.l1_decoder_norm = decoder_norm;
    double loss;
    cr_assert_eq(rn_sae_gradient(&s, &cfg, x, N, &grad, &loss, &err), 0, "%s", err.msg);
    float *p[4] = {s.w_enc, s.b_enc, s.w_dec, s.b_dec};
    const float *g[4] = {grad.w_enc, grad.b_enc, grad.w_dec, grad.b_dec};
    const char *name[4] = {"w_enc", "b_enc", "w_dec", "b_dec"};
    int len[4] = {D * M, M, D * M, D};
    int checked = 0, skipped = 0, failed = 0;
    const double h = 1e-2;
    for (int t = 0; t < 4; t++)
        for (int q = 0; q < len[t]; q++) {
            float keep = p[t][q];
            double fd[2];
            for (int k = 0; k < 2; k++) {
                double hk = h / (1 << k);
                p[t][q] = (float)(keep + hk);
                double hp = (double)p[t][q] - keep;
                double lp = loss_at(&s, &cfg, x, N, &scratch);
                p[t][q] = (float)(keep - hk);
                double hm = keep - (double)p[t][q];
                double lm = loss_at(&s, &cfg, x, N, &scratch);
                fd[k] = (lp - lm) / (hp + hm);
            }
            p[t][q] = keep;
            if (fabs(fd[0] - fd[1]) > 1e-3 * fmax(1, fabs(fd[1]))) {
                skipped++;
                continue;
            }
            checked++;
            double a = g[t][q];
            if (fabs(a - fd[1]) > 2e-3 * fmax(1, fmax(fabs(a), fabs(fd[1])))) {
                if (failed++ < 8)
                    fprintf(stderr, "%s[%d]: analytic %.7g, finite difference %.7g\n", name[t], q,
                            a, fd[1]);
            }
        }
    fprintf(stderr, "gradcheck %s%s: %d elements checked, %d skipped next to kinks\n",
            act == RN_SAE_TOPK ? "topk" : "relu", decoder_norm ? " decoder-norm" : "", checked,
            skipped);
    cr_expect_eq(failed, 0, "%d of %d gradient elements disagree", failed, checked);
    cr_expect(skipped * 4 < checked, "%d skipped next to kinks, %d checked", skipped, checked);
    rn_sae_free(&s);
    rn_sae_free(&grad);
    rn_sae_free(&scratch);
    free(x);
}

Test(sae, gradient_relu_matches_finite_differences)
{
    gradcheck(RN_SAE_RELU, 0, 0.3f);
}

Test(sae, gradient_relu_decoder_norm_weighted_matches_finite_differences)
{
    gradcheck(RN_SAE_RELU, 1, 0.3f);
}

Test(sae, gradient_topk_matches_finite_differences)
{
    gradcheck(RN_SAE_TOPK, 0, 0.1f);
}

/* ---- the decoder -------------------------------------------------------------------- */

Test(sae, projection_removes_the_component_along_each_column_and_nothing_else)
{
    enum { D = 9, M = 70 }; /* more than one 64-column block */
    struct rn_sae s, g;
    random_sae(&s, D, M, RN_SAE_RELU, 0, 21);
    random_sae(&g, D, M, RN_SAE_RELU, 0, 22);
    float *g0 = malloc(sizeof(float) * D * M);
    memcpy(g0, g.w_dec, sizeof(float) * D * M);
    rn_sae_project_grad(&s, &g);
    for (int j = 0; j < M; j++) {
        double gw = 0, ww = 0, gg = 0, pw = 0;
        for (int i = 0; i < D; i++) {
            double w = s.w_dec[i * M + j];
            gw += g0[i * M + j] * w;
            ww += w * w;
        }
        for (int i = 0; i < D; i++) {
            double want = g0[i * M + j] - gw / ww * s.w_dec[i * M + j];
            cr_expect(fabs(g.w_dec[i * M + j] - want) < 1e-6, "column %d row %d: %g, want %g", j, i,
                      g.w_dec[i * M + j], want);
            pw += (double)g.w_dec[i * M + j] * s.w_dec[i * M + j];
            gg += (double)g.w_dec[i * M + j] * g.w_dec[i * M + j];
        }
        cr_expect(fabs(pw) < 1e-6 * sqrt(gg * ww) + 1e-7, "column %d: g . w = %g after", j, pw);
    }
    /* the other tensors are left alone */
    struct rn_sae g2;
    random_sae(&g2, D, M, RN_SAE_RELU, 0, 22);
    cr_expect_eq(memcmp(g.w_enc, g2.w_enc, sizeof(float) * D * M), 0);
    cr_expect_eq(memcmp(g.b_dec, g2.b_dec, sizeof(float) * D), 0);
    free(g0);
    rn_sae_free(&s);
    rn_sae_free(&g);
    rn_sae_free(&g2);
}

static void expect_unit_columns(const struct rn_sae *s, const char *what)
{
    for (int j = 0; j < s->m; j++) {
        double nn = 0;
        for (int i = 0; i < s->d; i++)
            nn += (double)s->w_dec[i * s->m + j] * s->w_dec[i * s->m + j];
        cr_expect(fabs(sqrt(nn) - 1) < 1e-5, "%s: column %d has norm %.8f", what, j, sqrt(nn));
    }
}

Test(sae, decoder_columns_are_unit_norm_after_training)
{
    enum { D = 16, N = 300 };
    float *x = uniform((size_t)N * D, 0.0f, 2.0f, 31);
    struct rn_sae_config cfg = rn_sae_config_default();
    cfg.m = 40;
    cfg.batch = 64;
    cfg.epochs = 3;
    cfg.lr = 1e-2f;
    cfg.l1 = 0.05f;
    struct rn_sae s;
    struct rn_error err = {{0}};
    cr_assert_eq(rn_sae_train(&s, &cfg, x, N, D, NULL, NULL, &err), 0, "%s", err.msg);
    expect_unit_columns(&s, "relu");
    rn_sae_free(&s);
    cfg.act = RN_SAE_TOPK;
    cfg.k = 4;
    cfg.l1_decoder_norm = 1;
    cfg.resample_every = 5;
    cfg.dead_window = 64;
    cr_assert_eq(rn_sae_train(&s, &cfg, x, N, D, NULL, NULL, &err), 0, "%s", err.msg);
    expect_unit_columns(&s, "topk, resampling");
    rn_sae_free(&s);
    free(x);
}

Test(sae, init_draws_unit_columns_tied_encoder_and_the_mean_bias)
{
    enum { D = 5, N = 50 };
    float *x = uniform((size_t)N * D, 1.0f, 3.0f, 41);
    struct rn_sae_config cfg = rn_sae_config_default();
    cfg.m = 12;
    struct rn_sae s;
    struct rn_error err = {{0}};
    cr_assert_eq(rn_sae_alloc(&s, D, cfg.m, cfg.act, cfg.k, &err), 0);
    for (int centre = 0; centre < 2; centre++) {
        cfg.centre = centre;
        cr_assert_eq(rn_sae_init(&s, &cfg, x, N, &err), 0, "%s", err.msg);
        expect_unit_columns(&s, "init");
        for (int i = 0; i < D; i++) {
            double mean = 0;
            for (int b = 0; b < N; b++)
                mean += x[b * D + i];
            mean /= N;
            cr_expect(fabs(s.mu[i] - (centre ? mean : 0)) < 1e-6);
            cr_expect(fabs(s.b_dec[i] - (centre ? 0 : mean)) < 1e-6);
            for (int j = 0; j < cfg.m; j++)
                cr_expect_eq(s.w_enc[j * D + i], s.w_dec[i * cfg.m + j]);
        }
        for (int j = 0; j < cfg.m; j++)
            cr_expect_eq(s.b_enc[j], 0.0f);
    }
    rn_sae_free(&s);
    free(x);
}

/* ---- one step, Adam ------------------------------------------------------------------ */

Test(sae, adam_matches_a_hand_computation)
{
    struct rn_sae_config cfg = rn_sae_config_default();
    cfg.lr = 0.01f;
    float p[3] = {1.0f, -2.0f, 0.5f}, m[3] = {0}, v[3] = {0};
    const float g[3][3] = {{0.5f, -1.0f, 1e-3f}, {0.2f, 3.0f, -2e-3f}, {-0.4f, 0.0f, 5e-3f}};
    double pd[3] = {1, -2, 0.5}, md[3] = {0}, vd[3] = {0};
    double b1 = cfg.beta1, b2 = cfg.beta2, eps = cfg.adam_eps, lr = cfg.lr;
    for (int t = 1; t <= 3; t++) {
        rn_sae_adam_update(p, g[t - 1], m, v, 3, t, &cfg);
        for (int q = 0; q < 3; q++) {
            md[q] = b1 * md[q] + (1 - b1) * g[t - 1][q];
            vd[q] = b2 * vd[q] + (1 - b2) * g[t - 1][q] * g[t - 1][q];
            double mh = md[q] / (1 - pow(b1, t)), vh = vd[q] / (1 - pow(b2, t));
            pd[q] -= lr * mh / (sqrt(vh) + eps);
            cr_expect(fabs(p[q] - pd[q]) < 1e-6, "step %d, p[%d] = %.8f, by hand %.8f", t, q, p[q],
                      pd[q]);
        }
    }
}

/* rn_sae_train_from on one full batch is one step: the gradient, its
 * projection, Adam at t = 1, the renormalisation. */
Test(sae, one_training_step_is_gradient_projection_adam_renormalisation)
{
    enum { D = 8, M = 20, N = 32 };
    float *x = uniform((size_t)N * D, 0.0f, 2.0f, 51);
    struct rn_sae_config cfg = rn_sae_config_default();
    cfg.m = M;
    cfg.batch = N;
    cfg.epochs = 1;
    cfg.l1 = 0.05f;
    cfg.l1_decoder_norm = 1;
    struct rn_sae s, want, g;
    struct rn_error err = {{0}};
    random_sae(&s, D, M, RN_SAE_RELU, 0, 52);
    rn_sae_normalise_decoder(&s);
    random_sae(&want, D, M, RN_SAE_RELU, 0, 52);
    rn_sae_normalise_decoder(&want);
    cr_assert_eq(rn_sae_alloc(&g, D, M, RN_SAE_RELU, 0, &err), 0);
    double loss;
    cr_assert_eq(rn_sae_gradient(&want, &cfg, x, N, &g, &loss, &err), 0, "%s", err.msg);
    rn_sae_project_grad(&want, &g);
    float *p[4] = {want.w_enc, want.b_enc, want.w_dec, want.b_dec};
    const float *gp[4] = {g.w_enc, g.b_enc, g.w_dec, g.b_dec};
    size_t len[4] = {D * M, M, D * M, D};
    for (int t = 0; t < 4; t++) {
        float *mv = calloc(2 * len[t], sizeof(float));
        rn_sae_adam_update(p[t], gp[t], mv, mv + len[t], len[t], 1, &cfg);
        free(mv);
    }
    rn_sae_normalise_decoder(&want);
    struct rn_sae_metrics mt;
    cr_assert_eq(rn_sae_train_from(&s, &cfg, x, N, D, &mt, NULL, &err), 0, "%s", err.msg);
    cr_expect(fabs(mt.loss - loss) < 1e-5 * loss, "epoch loss %.8g, the gradient's %.8g", mt.loss,
              loss);
    const float *got[4] = {s.w_enc, s.b_enc, s.w_dec, s.b_dec};
    const char *name[4] = {"w_enc", "b_enc", "w_dec", "b_dec"};
    for (int t = 0; t < 4; t++) {
        double worst = 0;
        for (size_t q = 0; q < len[t]; q++)
            worst = fmax(worst, fabs(got[t][q] - p[t][q]));
        cr_expect(worst < 1e-6, "%s: %g from the step by hand", name[t], worst);
    }
    rn_sae_free(&s);
    rn_sae_free(&want);
    rn_sae_free(&g);
    free(x);
}

/* ---- variance explained, geometric median ---------------------------------------- */

Test(sae, fve_is_zero_for_the_mean_one_for_x_and_three_quarters_by_hand)
{
    enum { D = 3, N = 40 };
    float *x = uniform((size_t)N * D, -1.0f, 4.0f, 61);
    float *mean = calloc((size_t)N * D, sizeof(float));
    for (int i = 0; i < D; i++) {
        double s = 0;
        for (int b = 0; b < N; b++)
            s += x[b * D + i];
        for (int b = 0; b < N; b++)
            mean[b * D + i] = (float)(s / N);
    }
    cr_expect(fabs(rn_fve(x, mean, N, D)) < 1e-6, "mean: %g", rn_fve(x, mean, N, D));
    cr_expect_eq(rn_fve(x, x, N, D), 1.0);
    /* rows (0,5), (2,5), (4,5) around (2,5): variance 8; (1,5), (2,5), (3,5)
     * miss by 1, 0, 1: fve 1 - 2/8; the same a thousand away */
    for (int far = 0; far < 2; far++) {
        float o = far ? 1000.0f : 0.0f;
        float h[6] = {o + 0, 5, o + 2, 5, o + 4, 5}, hh[6] = {o + 1, 5, o + 2, 5, o + 3, 5};
        cr_expect(fabs(rn_fve(h, hh, 3, 2) - 0.75) < 1e-12, "far %d: %.15g", far,
                  rn_fve(h, hh, 3, 2));
    }
    free(x);
    free(mean);
}

Test(sae, geometric_median_zeroes_the_sum_of_unit_vectors)
{
    enum { D = 4, N = 500 };
    float *x = uniform((size_t)N * D, 0.0f, 1.0f, 71);
    for (int b = 0; b < 25; b++) /* outliers pull the mean, barely the median */
        for (int i = 0; i < D; i++)
            x[b * D + i] += 50.0f;
    float med[D];
    struct rn_error err = {{0}};
    cr_assert_eq(rn_geometric_median(x, N, D, med, &err), 0, "%s", err.msg);
    double sum[D] = {0};
    for (int b = 0; b < N; b++) {
        double nn = 0;
        for (int i = 0; i < D; i++)
            nn += (x[b * D + i] - (double)med[i]) * (x[b * D + i] - (double)med[i]);
        for (int i = 0; i < D; i++)
            sum[i] += (x[b * D + i] - (double)med[i]) / sqrt(nn);
    }
    for (int i = 0; i < D; i++) {
        cr_expect(fabs(sum[i]) / N < 1e-4, "dimension %d: mean unit vector %g", i, sum[i] / N);
        cr_expect(med[i] > 0.3 && med[i] < 0.8, "dimension %d: median %g", i, med[i]);
    }
    free(x);
}

/* ---- encode, decode, topk -------------------------------------------------------------- */

/* codes and x^ by the formulas of sae.h, in double */
static void reference_forward(const struct rn_sae *s, const float *x, double *codes, double *xhat)
{
    int d = s->d, m = s->m;
    for (int j = 0; j < m; j++) {
        double p = s->b_enc[j];
        for (int i = 0; i < d; i++)
            p += (double)s->w_enc[j * d + i] * ((double)x[i] - s->mu[i] - s->b_dec[i]);
        codes[j] = p;
    }
    if (s->act == RN_SAE_TOPK) {
        for (int j = 0; j < m; j++) {
            int above = 0; /* larger, or equal with a lower index */
            for (int q = 0; q < m; q++)
                above += codes[q] > codes[j] || (codes[q] == codes[j] && q < j);
            if (above >= s->k)
                codes[j] = -1;
        }
    }
    for (int j = 0; j < m; j++)
        codes[j] = codes[j] > 0 ? codes[j] : 0;
    for (int i = 0; i < d; i++) {
        double v = (double)s->b_dec[i] + s->mu[i];
        for (int j = 0; j < m; j++)
            v += (double)s->w_dec[i * m + j] * codes[j];
        xhat[i] = v;
    }
}

static void forward_case(enum rn_sae_act act)
{
    enum { D = 7, M = 150, N = 33, K = 9 };
    struct rn_sae s;
    struct rn_error err = {{0}};
    random_sae(&s, D, M, act, K, 81);
    float *x = uniform((size_t)N * D, 0.0f, 2.0f, 82);
    float *codes = malloc(sizeof(float) * N * M), *xhat = malloc(sizeof(float) * N * D);
    float *xhat2 = malloc(sizeof(float) * N * D);
    rn_sae_encode(&s, x, N, codes);
    rn_sae_decode(&s, codes, N, xhat);
    cr_assert_eq(rn_sae_reconstruct(&s, x, N, xhat2, &err), 0, "%s", err.msg);
    double rc[M], rx[D];
    for (int b = 0; b < N; b++) {
        reference_forward(&s, x + b * D, rc, rx);
        int nnz = 0;
        for (int j = 0; j < M; j++) {
            nnz += codes[b * M + j] > 0;
            cr_expect(fabs(codes[b * M + j] - rc[j]) < 1e-5, "row %d feature %d: %g, want %g", b, j,
                      codes[b * M + j], rc[j]);
        }
        if (act == RN_SAE_TOPK)
            cr_expect(nnz <= K, "row %d: %d nonzero", b, nnz);
        for (int i = 0; i < D; i++) {
            cr_expect(fabs(xhat[b * D + i] - rx[i]) < 1e-5, "row %d: x^ %g, want %g", b,
                      xhat[b * D + i], rx[i]);
            cr_expect(fabs(xhat2[b * D + i] - rx[i]) < 1e-5, "row %d: reconstruct %g, want %g", b,
                      xhat2[b * D + i], rx[i]);
        }
    }
    rn_sae_free(&s);
    free(x);
    free(codes);
    free(xhat);
    free(xhat2);
}

Test(sae, relu_encode_decode_match_the_formulas)
{
    forward_case(RN_SAE_RELU);
}

Test(sae, topk_encode_decode_match_the_formulas)
{
    forward_case(RN_SAE_TOPK);
}

Test(sae, topk_keeps_exactly_k_the_largest_ties_to_the_lowest_index)
{
    enum { D = 4, M = 100, K = 7, N = 20 };
    struct rn_sae s;
    struct rn_error err = {{0}};
    random_sae(&s, D, M, RN_SAE_TOPK, K, 91);
    for (int j = 0; j < M; j++)
        s.b_enc[j] = 10.0f; /* every pre-activation positive */
    float *x = uniform((size_t)N * D, 0.0f, 1.0f, 92);
    float *codes = malloc(sizeof(float) * N * M);
    rn_sae_encode(&s, x, N, codes);
    for (int b = 0; b < N; b++) {
        int nnz = 0;
        float smallest_kept = INFINITY;
        for (int j = 0; j < M; j++)
            if (codes[b * M + j] > 0) {
                nnz++;
                smallest_kept = fminf(smallest_kept, codes[b * M + j]);
            }
        cr_expect_eq(nnz, K, "row %d: %d nonzero", b, nnz);
        /* every dropped pre-activation is below every kept one */
        double rc[M], rx[D];
        s.act = RN_SAE_RELU;
        reference_forward(&s, x + b * D, rc, rx);
        s.act = RN_SAE_TOPK;
        for (int j = 0; j < M; j++)
            if (codes[b * M + j] == 0)
                cr_expect(rc[j] <= smallest_kept + 1e-5, "row %d: dropped %g > kept %g", b, rc[j],
                          smallest_kept);
    }
    /* all equal: the first k */
    memset(s.w_enc, 0, sizeof(float) * D * M);
    rn_sae_encode(&s, x, N, codes);
    for (int b = 0; b < N; b++)
        for (int j = 0; j < M; j++)
            cr_expect_eq(codes[b * M + j], j < K ? 10.0f : 0.0f, "row %d feature %d", b, j);
    struct rn_sae_config cfg = rn_sae_config_default();
    cfg.m = M;
    cfg.act = RN_SAE_TOPK;
    cfg.k = K;
    struct rn_sae_metrics mt;
    cr_assert_eq(rn_sae_eval(&s, &cfg, x, N, &mt, NULL, &err), 0, "%s", err.msg);
    cr_expect_eq(mt.l0, (double)K);
    rn_sae_free(&s);
    free(x);
    free(codes);
}

Test(sae, eval_metrics_match_a_direct_computation)
{
    enum { D = 6, M = 40, N = 1500 }; /* more than one block of eval's rows */
    struct rn_sae s;
    struct rn_error err = {{0}};
    random_sae(&s, D, M, RN_SAE_RELU, 0, 131);
    for (int j = 30; j < M; j++)
        s.b_enc[j] = -100.0f; /* ten dead */
    float *x = uniform((size_t)N * D, 0.0f, 2.0f, 132);
    struct rn_sae_config cfg = rn_sae_config_default();
    cfg.m = M;
    cfg.l1 = 0.2f;
    cfg.l1_decoder_norm = 1;
    cfg.dense_threshold = 0.3f;
    double wn[M], mean[D] = {0}, sum_err = 0, sum_l1 = 0, sum_nnz = 0, var = 0;
    long fired[M] = {0};
    for (int j = 0; j < M; j++) {
        wn[j] = 0;
        for (int i = 0; i < D; i++)
            wn[j] += (double)s.w_dec[i * M + j] * s.w_dec[i * M + j];
        wn[j] = sqrt(wn[j]);
    }
    for (int b = 0; b < N; b++)
        for (int i = 0; i < D; i++)
            mean[i] += x[b * D + i] / (double)N;
    for (int b = 0; b < N; b++) {
        double rc[M], rx[D];
        reference_forward(&s, x + b * D, rc, rx);
        for (int i = 0; i < D; i++) {
            sum_err += (x[b * D + i] - rx[i]) * (x[b * D + i] - rx[i]);
            var += (x[b * D + i] - mean[i]) * (x[b * D + i] - mean[i]);
        }
        for (int j = 0; j < M; j++) {
            sum_l1 += wn[j] * rc[j];
            sum_nnz += rc[j] > 0;
            fired[j] += rc[j] > 0;
        }
    }
    int dead = 0, dense = 0;
    for (int j = 0; j < M; j++) {
        dead += fired[j] == 0;
        dense += fired[j] > 0.3 * N;
    }
    struct rn_sae_metrics mt;
    float density[M];
    cr_assert_eq(rn_sae_eval(&s, &cfg, x, N, &mt, density, &err), 0, "%s", err.msg);
    double want_loss = (sum_err + 0.2 * sum_l1) / N;
    cr_expect(fabs(mt.loss - want_loss) < 1e-5 * want_loss, "loss %.8g, want %.8g", mt.loss,
              want_loss);
    cr_expect(fabs(mt.mse - sum_err / (N * D)) < 1e-5 * mt.mse, "mse %.8g", mt.mse);
    cr_expect(fabs(mt.fve - (1 - sum_err / var)) < 1e-5, "fve %.8g, want %.8g", mt.fve,
              1 - sum_err / var);
    cr_expect(fabs(mt.l0 - sum_nnz / N) < 1e-9, "l0 %g, want %g", mt.l0, sum_nnz / N);
    cr_expect_eq(mt.dead_frac, (double)dead / M);
    cr_expect(dead >= 10);
    cr_expect_eq(mt.dense_frac, (double)dense / M);
    cr_expect(dense > 0 && dense < M - 10, "the threshold should split the alive ones (%d)", dense);
    for (int j = 0; j < M; j++)
        cr_expect(fabs(density[j] - (double)fired[j] / N) < 1e-7, "density[%d]", j);
    rn_sae_free(&s);
    free(x);
}

/* ---- learning known directions ---------------------------------------------------------- */

Test(sae, recovers_known_sparse_directions)
{
    enum { D = 64, DIRS = 32, N = 8192 };
    struct rn_rng r;
    rn_rng_init(&r, 5, TEST_STREAM, 1);
    float *dirs = malloc(sizeof(float) * DIRS * D), *x = calloc((size_t)N * D, sizeof(float));
    for (int q = 0; q < DIRS; q++) {
        double nn = 0;
        for (int i = 0; i < D; i++) {
            dirs[q * D + i] = rn_rng_normal(&r);
            nn += (double)dirs[q * D + i] * dirs[q * D + i];
        }
        for (int i = 0; i < D; i++)
            dirs[q * D + i] /= (float)sqrt(nn);
    }
    for (int b = 0; b < N; b++) {
        int active = 1 + (int)rn_rng_below(&r, 3);
        for (int a = 0; a < active; a++) {
            int q = (int)rn_rng_below(&r, DIRS);
            float coef = 0.5f + rn_rng_uniform(&r);
            for (int i = 0; i < D; i++)
                x[b * D + i] += coef * dirs[q * D + i];
        }
    }
    struct rn_sae_config cfg = rn_sae_config_default();
    cfg.m = 64;
    cfg.batch = 128;
    cfg.epochs = 20;
    cfg.lr = 3e-3f;
    cfg.l1 = 0.1f;
    struct rn_sae s;
    struct rn_sae_metrics per[20];
    struct rn_error err = {{0}};
    cr_assert_eq(rn_sae_train(&s, &cfg, x, N, D, per, NULL, &err), 0, "%s", err.msg);
    int found = 0;
    double worst = 1;
    for (int q = 0; q < DIRS; q++) {
        double best = -1;
        for (int j = 0; j < cfg.m; j++) {
            double c = 0;
            for (int i = 0; i < D; i++)
                c += (double)dirs[q * D + i] * s.w_dec[i * cfg.m + j];
            best = fmax(best, c);
        }
        found += best > 0.9;
        worst = fmin(worst, best);
    }
    fprintf(stderr,
            "recovery: %d of %d directions at cosine > 0.9 (worst %.3f); fve %.4f, l0 %.2f\n",
            found, DIRS, worst, per[19].fve, per[19].l0);
    cr_expect(found >= 29, "%d of %d directions found (worst cosine %.3f)", found, DIRS, worst);
    cr_expect(per[19].fve > 0.9, "fve %g", per[19].fve);
    rn_sae_free(&s);
    free(dirs);
    free(x);
}

/* ---- dead features and resampling ------------------------------------------------------ */

enum { DZ_D = 8, DZ_M = 16, DZ_N = 256 };
static const int killed[4] = {1, 4, 7, 10};

/* An initialised SAE with four features that cannot fire (b_e = -100). */
static void dead_case(struct rn_sae *s, struct rn_sae_config *cfg, const float *x)
{
    struct rn_error err = {{0}};
    *cfg = rn_sae_config_default();
    cfg->m = DZ_M;
    cfg->batch = 64; /* 4 steps an epoch */
    cfg->l1 = 0.01f;
    cfg->lr = 1e-2f;
    cr_assert_eq(rn_sae_alloc(s, DZ_D, DZ_M, RN_SAE_RELU, 0, &err), 0);
    cr_assert_eq(rn_sae_init(s, cfg, x, DZ_N, &err), 0, "%s", err.msg);
    for (int q = 0; q < 4; q++)
        s->b_enc[killed[q]] = -100.0f;
}

Test(sae, dead_features_are_counted_over_the_window)
{
    float *x = uniform((size_t)DZ_N * DZ_D, 0.0f, 2.0f, 101);
    struct rn_sae s;
    struct rn_sae_config cfg;
    struct rn_sae_metrics per[2];
    float density[DZ_M];
    struct rn_error err = {{0}};
    dead_case(&s, &cfg, x);
    cfg.epochs = 2;
    cr_assert_eq(rn_sae_train_from(&s, &cfg, x, DZ_N, DZ_D, per, density, &err), 0, "%s", err.msg);
    int silent = 0;
    for (int j = 0; j < DZ_M; j++)
        silent += density[j] == 0;
    for (int q = 0; q < 4; q++)
        cr_expect_eq(density[killed[q]], 0.0f, "feature %d fired", killed[q]);
    /* the window is one epoch: dead at its end = silent during it */
    cr_expect_eq(per[1].dead_frac, (double)silent / DZ_M, "dead %g, silent %d", per[1].dead_frac,
                 silent);
    cr_expect(per[0].dead_frac >= 4.0 / DZ_M);
    cr_expect_eq(per[1].resampled, 0);
    rn_sae_free(&s);
    free(x);
}

Test(sae, dead_features_are_resampled_from_high_loss_inputs)
{
    float *x = uniform((size_t)DZ_N * DZ_D, 0.0f, 2.0f, 101);
    struct rn_sae before, s;
    struct rn_sae_config cfg;
    struct rn_sae_metrics per[3];
    float density[DZ_M];
    struct rn_error err = {{0}};
    /* the state just before the resampling at the end of epoch 1 */
    dead_case(&before, &cfg, x);
    cfg.epochs = 1;
    cr_assert_eq(rn_sae_train_from(&before, &cfg, x, DZ_N, DZ_D, per, density, &err), 0, "%s",
                 err.msg);
    int dead[DZ_M], nd = 0;
    for (int j = 0; j < DZ_M; j++)
        if (density[j] == 0)
            dead[nd++] = j;
    cr_assert(nd >= 4);
    dead_case(&s, &cfg, x);
    cfg.epochs = 1;
    cfg.resample_every = 4;
    cr_assert_eq(rn_sae_train_from(&s, &cfg, x, DZ_N, DZ_D, per, NULL, &err), 0, "%s", err.msg);
    cr_expect_eq(per[0].resampled, nd, "%ld resampled, %d dead", per[0].resampled, nd);
    cr_expect_eq(per[0].dead_frac, 0.0, "resampled features start a fresh window");
    /* alive features untouched by the resampling: their mean encoder norm */
    double alive_norm = 0;
    int is_dead[DZ_M] = {0};
    for (int q = 0; q < nd; q++)
        is_dead[dead[q]] = 1;
    for (int j = 0; j < DZ_M; j++) {
        if (is_dead[j])
            continue;
        double nn = 0;
        for (int i = 0; i < DZ_D; i++) {
            nn += (double)s.w_enc[j * DZ_D + i] * s.w_enc[j * DZ_D + i];
            cr_expect_eq(s.w_enc[j * DZ_D + i], before.w_enc[j * DZ_D + i]);
        }
        alive_norm += sqrt(nn);
    }
    double scale = 0.2 * alive_norm / (DZ_M - nd);
    float *xhat = malloc(sizeof(float) * DZ_N * DZ_D);
    cr_assert_eq(rn_sae_reconstruct(&before, x, DZ_N, xhat, &err), 0);
    for (int q = 0; q < nd; q++) {
        int j = dead[q];
        cr_expect_eq(s.b_enc[j], 0.0f);
        double nn = 0, best = -1;
        for (int i = 0; i < DZ_D; i++) {
            nn += (double)s.w_dec[i * DZ_M + j] * s.w_dec[i * DZ_M + j];
            cr_expect(fabs(s.w_enc[j * DZ_D + i] - scale * s.w_dec[i * DZ_M + j]) < 1e-6,
                      "feature %d: W_e row is not 0.2 x the alive norm x its W_d column", j);
        }
        cr_expect(fabs(nn - 1) < 1e-6);
        /* its column is the normalised residual of some input */
        for (int b = 0; b < DZ_N; b++) {
            double dot = 0, rr = 0;
            for (int i = 0; i < DZ_D; i++) {
                double res = (double)x[b * DZ_D + i] - xhat[b * DZ_D + i];
                dot += res * s.w_dec[i * DZ_M + j];
                rr += res * res;
            }
            best = fmax(best, dot / sqrt(rr));
        }
        cr_expect(best > 1 - 1e-5, "feature %d: best cosine with a residual %.8f", j, best);
    }
    /* trained on, most of them come alive */
    rn_sae_free(&s);
    dead_case(&s, &cfg, x);
    cfg.epochs = 3;
    cfg.resample_every = 4;
    cr_assert_eq(rn_sae_train_from(&s, &cfg, x, DZ_N, DZ_D, per, density, &err), 0, "%s", err.msg);
    int alive_again = 0;
    for (int q = 0; q < 4; q++)
        alive_again += density[killed[q]] > 0;
    cr_expect(alive_again >= 2, "%d of the 4 killed features fire after resampling", alive_again);
    rn_sae_free(&s);
    rn_sae_free(&before);
    free(xhat);
    free(x);
}

/* ---- determinism, errors ---------------------------------------------------------------- */

Test(sae, two_runs_are_bit_identical)
{
    enum { D = 12, N = 500, E = 3 };
    float *x = uniform((size_t)N * D, 0.0f, 2.0f, 111);
    struct rn_sae_config cfg = rn_sae_config_default();
    cfg.m = 48;
    cfg.batch = 96;
    cfg.epochs = E;
    cfg.act = RN_SAE_TOPK;
    cfg.k = 1; /* one feature a sample: most are dead over 20 samples */
    cfg.l1 = 0.01f;
    cfg.l1_decoder_norm = 1;
    cfg.centre = 1;
    cfg.bias_init = RN_SAE_BIAS_MEDIAN;
    cfg.resample_every = 3;
    cfg.dead_window = 20;
    cfg.seed = 7;
    struct rn_sae a, b;
    struct rn_sae_metrics pa[E], pb[E];
    float da[48], db[48];
    struct rn_error err = {{0}};
    cr_assert_eq(rn_sae_train(&a, &cfg, x, N, D, pa, da, &err), 0, "%s", err.msg);
    cr_assert_eq(rn_sae_train(&b, &cfg, x, N, D, pb, db, &err), 0, "%s", err.msg);
    cr_expect_eq(memcmp(a.w_enc, b.w_enc, sizeof(float) * D * 48), 0);
    cr_expect_eq(memcmp(a.w_dec, b.w_dec, sizeof(float) * D * 48), 0);
    cr_expect_eq(memcmp(a.b_enc, b.b_enc, sizeof(float) * 48), 0);
    cr_expect_eq(memcmp(a.b_dec, b.b_dec, sizeof(float) * D), 0);
    cr_expect_eq(memcmp(pa, pb, sizeof pa), 0);
    cr_expect_eq(memcmp(da, db, sizeof da), 0);
    long resampled = 0;
    for (int e = 0; e < E; e++)
        resampled += pa[e].resampled;
    cr_expect(resampled > 0, "the case should resample something (dead %g %g %g)", pa[0].dead_frac,
              pa[1].dead_frac, pa[2].dead_frac);
    rn_sae_free(&b);
    /* another seed, another SAE */
    cfg.seed = 8;
    cr_assert_eq(rn_sae_train(&b, &cfg, x, N, D, NULL, NULL, &err), 0, "%s", err.msg);
    cr_expect_neq(memcmp(a.w_dec, b.w_dec, sizeof(float) * D * 48), 0);
    rn_sae_free(&a);
    rn_sae_free(&b);
    free(x);
}

static void expect_error(const struct rn_sae_config *cfg, size_t n, int d, const char *want)
{
    float x[64] = {0};
    struct rn_sae s;
    struct rn_error err = {{0}};
    cr_expect_eq(rn_sae_train(&s, cfg, x, n, d, NULL, NULL, &err), -1);
    cr_expect_str_eq(err.msg, want);
    cr_expect_null(s.w_enc, "nothing left allocated");
}

Test(sae, bad_configurations_are_refused_with_one_line)
{
    struct rn_sae_config c = rn_sae_config_default();
    c.m = 8;
    c.act = RN_SAE_TOPK;
    c.k = 9;
    expect_error(&c, 4, 4, "sae: k is 9, expected 1 to m (8)");
    c.act = RN_SAE_RELU;
    c.batch = 0;
    expect_error(&c, 4, 4, "sae: batch 0, epochs 50, expected batch > 0 and epochs >= 0");
    c.batch = 2;
    c.l1 = -1;
    expect_error(&c, 4, 4, "sae: l1 is -1, expected a finite number >= 0");
    c.l1 = 0;
    c.beta2 = 1;
    expect_error(&c, 4, 4, "sae: Adam betas are 0.9, 1, expected each in [0, 1)");
    c.beta2 = 0.999f;
    expect_error(&c, 0, 4,
                 "sae: the data is 0 x 4, expected at least one row (at most 2^30) and one column");
    struct rn_sae s;
    struct rn_error err = {{0}};
    float x[16] = {0};
    cr_assert_eq(rn_sae_alloc(&s, 4, 8, RN_SAE_RELU, 0, &err), 0);
    c.m = 6;
    cr_expect_eq(rn_sae_train_from(&s, &c, x, 4, 4, NULL, NULL, &err), -1);
    cr_expect_str_eq(err.msg, "sae train: the SAE has d 4, m 8, relu, k 0; the data d 4 and the "
                              "config m 6, relu, k 9");
    rn_sae_free(&s);
}

/* ---- against PyTorch (tests/reference/make_sae_fixture.py) ----------------------------- */

static void *read_ds(struct rn_results *f, const char *path, enum rn_dtype t, size_t want)
{
    struct rn_error err = {{0}};
    void *data = NULL;
    int nd, dims[4];
    cr_assert_eq(rn_results_read(f, path, t, &data, &nd, dims, &err), 0, "%s", err.msg);
    size_t numel = 1;
    for (int i = 0; i < nd; i++)
        numel *= (size_t)dims[i];
    cr_assert_eq(numel, want, "%s: %zu values, expected %zu", path, numel, want);
    return data;
}

static int case_int(struct rn_results *f, const char *name, const char *key)
{
    char path[128];
    snprintf(path, sizeof path, "/cases/%s/%s", name, key);
    int32_t *v = read_ds(f, path, RN_DTYPE_I32, 1);
    int r = v[0];
    free(v);
    return r;
}

static float case_float(struct rn_results *f, const char *name, const char *key)
{
    char path[128];
    snprintf(path, sizeof path, "/cases/%s/%s", name, key);
    float *v = read_ds(f, path, RN_DTYPE_F32, 1);
    float r = v[0];
    free(v);
    return r;
}

/* The largest |a - b| over n values, reported with where and a tolerance. */
static void expect_close(const char *what, const float *a, const double *b, size_t n, double tol)
{
    double worst = 0;
    size_t at = 0;
    for (size_t q = 0; q < n; q++)
        if (fabs(a[q] - b[q]) > worst) {
            worst = fabs(a[q] - b[q]);
            at = q;
        }
    if (getenv("SAE_VERBOSE"))
        fprintf(stderr, "%s: largest |runner - reference| %.3g\n", what, worst);
    cr_expect(worst <= tol, "%s: |runner - PyTorch| = %.3g at %zu (%.8g vs %.8g), tolerance %g",
              what, worst, at, a[at], b[at], tol);
}

enum { FX_N = 100, FX_D = 8 };

static void fixture_case(const char *name)
{
    struct rn_results *f;
    struct rn_error err = {{0}};
    cr_assert_eq(rn_results_open(&f, RN_FIXTURES "/sae_ref.h5", &err), 0, "%s", err.msg);
    float *x = read_ds(f, "/x", RN_DTYPE_F32, FX_N * FX_D);
    struct rn_sae_config cfg = rn_sae_config_default();
    cfg.m = case_int(f, name, "m");
    cfg.act = case_int(f, name, "topk") ? RN_SAE_TOPK : RN_SAE_RELU;
    cfg.k = cfg.act == RN_SAE_TOPK ? case_int(f, name, "k") : 32;
    cfg.l1 = case_float(f, name, "l1");
    cfg.lr = case_float(f, name, "lr");
    cfg.l1_decoder_norm = case_int(f, name, "decoder_norm");
    cfg.centre = case_int(f, name, "centre");
    cfg.batch = case_int(f, name, "batch");
    cfg.epochs = case_int(f, name, "epochs");
    cfg.seed = (uint64_t)case_int(f, name, "seed");
    cfg.dead_window = case_int(f, name, "dead_window");
    int m = cfg.m, E = cfg.epochs;
    struct rn_sae s;
    cr_assert_eq(rn_sae_alloc(&s, FX_D, m, cfg.act, cfg.k, &err), 0, "%s", err.msg);
    const char *tensor[5] = {"w_enc", "b_enc", "w_dec", "b_dec", "mu"};
    float *field[5] = {s.w_enc, s.b_enc, s.w_dec, s.b_dec, s.mu};
    size_t len[5] = {FX_D * m, m, FX_D * m, FX_D, FX_D};
    char path[128];
    for (int t = 0; t < 5; t++) {
        snprintf(path, sizeof path, "/cases/%s/init/%s", name, tensor[t]);
        float *v = read_ds(f, path, RN_DTYPE_F32, len[t]);
        memcpy(field[t], v, sizeof(float) * len[t]);
        free(v);
    }
    struct rn_sae_metrics *per = calloc((size_t)E, sizeof *per);
    float *density = malloc(sizeof(float) * m);
    cr_assert_eq(rn_sae_train_from(&s, &cfg, x, FX_N, FX_D, per, density, &err), 0, "%s", err.msg);
    for (int t = 0; t < 4; t++) {
        snprintf(path, sizeof path, "/cases/%s/final/%s", name, tensor[t]);
        double *want = read_ds(f, path, RN_DTYPE_F64, len[t]);
        char what[96];
        snprintf(what, sizeof what, "%s: %s after %d epochs", name, tensor[t], E);
        expect_close(what, field[t], want, len[t], 1e-5);
        free(want);
    }
    const char *metric[6] = {"loss", "mse", "fve", "l0", "dead", "dense"};
    for (int k = 0; k < 6; k++) {
        snprintf(path, sizeof path, "/cases/%s/metrics/%s", name, metric[k]);
        double *want = read_ds(f, path, RN_DTYPE_F64, (size_t)E);
        for (int e = 0; e < E; e++) {
            double got[6] = {per[e].loss, per[e].mse,       per[e].fve,
                             per[e].l0,   per[e].dead_frac, per[e].dense_frac};
            cr_expect(fabs(got[k] - want[e]) <= 1e-5 * fmax(1, fabs(want[e])),
                      "%s: epoch %d %s %.8g, PyTorch %.8g", name, e + 1, metric[k], got[k],
                      want[e]);
        }
        free(want);
    }
    snprintf(path, sizeof path, "/cases/%s/density", name);
    double *want = read_ds(f, path, RN_DTYPE_F64, (size_t)m);
    expect_close("density", density, want, (size_t)m, 1e-7);
    free(want);
    free(per);
    free(density);
    free(x);
    rn_sae_free(&s);
    rn_results_close(f);
}

Test(sae, relu_training_matches_pytorch)
{
    fixture_case("relu");
}

Test(sae, relu_decoder_norm_centred_training_matches_pytorch)
{
    fixture_case("relu_dn_centre");
}

Test(sae, topk_training_matches_pytorch)
{
    fixture_case("topk");
}

Test(sae, geometric_median_matches_the_reference)
{
    struct rn_results *f;
    struct rn_error err = {{0}};
    cr_assert_eq(rn_results_open(&f, RN_FIXTURES "/sae_ref.h5", &err), 0, "%s", err.msg);
    float *x = read_ds(f, "/x", RN_DTYPE_F32, FX_N * FX_D);
    double *want = read_ds(f, "/geomedian", RN_DTYPE_F64, FX_D);
    float med[FX_D];
    cr_assert_eq(rn_geometric_median(x, FX_N, FX_D, med, &err), 0, "%s", err.msg);
    expect_close("geometric median", med, want, FX_D, 1e-5);
    free(x);
    free(want);
    rn_results_close(f);
}
