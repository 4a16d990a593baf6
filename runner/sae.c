/* sae.c - a plain stand-in for the SAE arithmetic of sae.h, so that the sae
 * analyses (branch i12-analysis) build and run before the real
 * implementation (branch i12-core: gradient-projected unit-norm decoder,
 * geometric median, dead-feature resampling, fast kernels, tests) lands; a
 * merge of i12-core replaces this file whole. Not tuned and not tested on
 * its own: only Adam on the loss of sae.h with the decoder's columns
 * renormalised after each step, centring (no median: the mean; no
 * resampling). */
#include "sae.h"
#include "rng.h"
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct rn_sae_config rn_sae_config_default(void)
{
    return (struct rn_sae_config){.m = 512,
                                  .act = RN_SAE_RELU,
                                  .k = 32,
                                  .l1 = 1e-3f,
                                  .lr = 1e-3f,
                                  .beta1 = 0.9f,
                                  .beta2 = 0.999f,
                                  .adam_eps = 1e-8f,
                                  .batch = 256,
                                  .epochs = 50,
                                  .dense_threshold = 0.1f};
}
int rn_sae_alloc(struct rn_sae *s, int d, int m, enum rn_sae_act act, int k, struct rn_error *err)
{
    memset(s, 0, sizeof *s);
    s->d = d;
    s->m = m;
    s->act = act;
    s->k = k;
    s->w_enc = calloc((size_t)m * d, 4);
    s->b_enc = calloc(m, 4);
    s->w_dec = calloc((size_t)m * d, 4);
    s->b_dec = calloc(d, 4);
    s->mu = calloc(d, 4);
    if (!s->w_enc || !s->b_enc || !s->w_dec || !s->b_dec || !s->mu) {
        rn_sae_free(s);
        return rn_errorf(err, "oom");
    }
    return 0;
}
void rn_sae_free(struct rn_sae *s)
{
    if (!s)
        return;
    free(s->w_enc);
    free(s->b_enc);
    free(s->w_dec);
    free(s->b_dec);
    free(s->mu);
    memset(s, 0, sizeof *s);
}
static void pre(const struct rn_sae *s, const float *x, size_t n, float *a)
{
    int d = s->d, m = s->m;
    float *xc = malloc(sizeof(float) * n * d);
    for (size_t i = 0; i < n; i++)
        for (int q = 0; q < d; q++)
            xc[i * d + q] = x[i * d + q] - s->mu[q] - s->b_dec[q];
    for (size_t i = 0; i < n; i++)
        memcpy(a + i * m, s->b_enc, sizeof(float) * m);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, m, d, 1, xc, d, s->w_enc, d, 1, a,
                m);
    free(xc);
}
static void act(const struct rn_sae *s, float *a, size_t n)
{
    int m = s->m;
    for (size_t i = 0; i < n; i++) {
        float *r = a + i * m;
        for (int j = 0; j < m; j++)
            r[j] = r[j] > 0 ? r[j] : 0;
        if (s->act == RN_SAE_TOPK && s->k < m) {
            float *t = malloc(sizeof(float) * m);
            memcpy(t, r, sizeof(float) * m);
            for (int a2 = 0; a2 < s->k; a2++) {
                int b = 0;
                for (int j = 1; j < m; j++)
                    if (t[j] > t[b])
                        b = j;
                t[b] = -1;
            }
            for (int j = 0; j < m; j++)
                if (t[j] >= 0)
                    r[j] = 0;
            free(t);
        }
    }
}
void rn_sae_encode(const struct rn_sae *s, const float *x, size_t n, float *c)
{
    pre(s, x, n, c);
    act(s, c, n);
}
void rn_sae_decode(const struct rn_sae *s, const float *c, size_t n, float *xh)
{
    int d = s->d, m = s->m;
    for (size_t i = 0; i < n; i++)
        for (int q = 0; q < d; q++)
            xh[i * d + q] = s->b_dec[q] + s->mu[q];
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, d, m, 1, c, m, s->w_dec, m, 1, xh,
                d);
}
double rn_fve(const float *x, const float *xh, size_t n, int d)
{
    double *mean = calloc(d, sizeof(double)), num = 0, den = 0;
    for (size_t i = 0; i < n; i++)
        for (int q = 0; q < d; q++)
            mean[q] += x[i * d + q] / n;
    for (size_t i = 0; i < n; i++)
        for (int q = 0; q < d; q++) {
            double e = x[i * d + q] - xh[i * d + q], v = x[i * d + q] - mean[q];
            num += e * e;
            den += v * v;
        }
    free(mean);
    return den > 0 ? 1 - num / den : 0;
}
int rn_sae_eval(const struct rn_sae *s, const struct rn_sae_config *cfg, const float *x, size_t n,
                struct rn_sae_metrics *o, float *density, struct rn_error *err)
{
    int d = s->d, m = s->m;
    float *c = malloc(sizeof(float) * n * m), *xh = malloc(sizeof(float) * n * d);
    long *fire = calloc(m, sizeof(long));
    rn_sae_encode(s, x, n, c);
    rn_sae_decode(s, c, n, xh);
    double se = 0, l1 = 0, l0 = 0;
    for (size_t i = 0; i < n * d; i++)
        se += (x[i] - xh[i]) * (double)(x[i] - xh[i]);
    for (size_t i = 0; i < n; i++)
        for (int j = 0; j < m; j++)
            if (c[i * m + j] > 0) {
                l0++;
                fire[j]++;
                l1 += c[i * m + j];
            }
    memset(o, 0, sizeof *o);
    o->mse = se / (n * d);
    o->loss = (se + cfg->l1 * l1) / n;
    o->l0 = l0 / n;
    o->fve = rn_fve(x, xh, n, d);
    int dead = 0, dense = 0;
    for (int j = 0; j < m; j++) {
        dead += fire[j] == 0;
        dense += fire[j] > cfg->dense_threshold * n;
        if (density)
            density[j] = (float)fire[j] / n;
    }
    o->dead_frac = (double)dead / m;
    o->dense_frac = (double)dense / m;
    free(c);
    free(xh);
    free(fire);
    return 0;
}
int rn_sae_train(struct rn_sae *s, const struct rn_sae_config *cfg, const float *x, size_t n, int d,
                 struct rn_sae_metrics *per_epoch, float *density, struct rn_error *err)
{
    int m = cfg->m;
    if (rn_sae_alloc(s, d, m, cfg->act, cfg->k, err))
        return -1;
    struct rn_rng r;
    rn_rng_init(&r, cfg->seed, RN_STREAM_ANALYSIS, 77);
    for (int j = 0; j < m; j++) {
        double nn = 0;
        for (int q = 0; q < d; q++) {
            float v = rn_rng_uniform(&r) - 0.5f;
            s->w_dec[q * m + j] = v;
            nn += v * v;
        }
        for (int q = 0; q < d; q++) {
            s->w_dec[q * m + j] /= sqrt(nn);
            s->w_enc[j * d + q] = s->w_dec[q * m + j];
        }
    }
    for (size_t i = 0; i < n; i++)
        for (int q = 0; q < d; q++)
            (cfg->centre ? s->mu : s->b_dec)[q] += x[i * d + q] / n;
    size_t P = (size_t)m * d * 2 + m + d;
    float *g = calloc(P, 4), *M1 = calloc(P, 4), *M2 = calloc(P, 4);
    int B = cfg->batch;
    float *c = malloc(4 * (size_t)B * m), *xh = malloc(4 * (size_t)B * d),
          *e = malloc(4 * (size_t)B * d), *dc = malloc(4 * (size_t)B * m);
    float *xb = malloc(4 * (size_t)B * d);
    size_t *perm = malloc(sizeof(size_t) * n);
    for (size_t i = 0; i < n; i++)
        perm[i] = i;
    long t = 0;
    for (int ep = 0; ep < cfg->epochs; ep++) {
        for (size_t i = n - 1; i > 0; i--) {
            size_t j = (size_t)(rn_rng_uniform(&r) * (i + 1));
            if (j > i)
                j = i;
            size_t tt = perm[i];
            perm[i] = perm[j];
            perm[j] = tt;
        }
        for (size_t s0 = 0; s0 < n; s0 += B) {
            int b = n - s0 < (size_t)B ? (int)(n - s0) : B;
            for (int i = 0; i < b; i++)
                memcpy(xb + (size_t)i * d, x + perm[s0 + i] * d, 4 * d);
            rn_sae_encode(s, xb, b, c);
            rn_sae_decode(s, c, b, xh);
            for (size_t i = 0; i < (size_t)b * d; i++)
                e[i] = 2 * (xh[i] - xb[i]) / b;
            float *gwe = g, *gwd = g + (size_t)m * d, *gbe = gwd + (size_t)m * d, *gbd = gbe + m;
            memset(g, 0, 4 * P);
            /* dW_d = e^T c (d x m); db_d from decoder = sum e */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, d, m, b, 1, e, d, c, m, 0, gwd, m);
            /* dc = e W_d + l1 sign */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, b, m, d, 1, e, d, s->w_dec, m, 0,
                        dc, m);
            for (size_t i = 0; i < (size_t)b * m; i++)
                dc[i] = c[i] > 0 ? dc[i] + cfg->l1 / b : 0;
            for (int i = 0; i < b; i++)
                for (int j = 0; j < m; j++)
                    gbe[j] += dc[i * m + j];
            float *xc = xh; /* reuse: x - mu - b_d */
            for (int i = 0; i < b; i++)
                for (int q = 0; q < d; q++)
                    xc[i * d + q] = xb[i * d + q] - s->mu[q] - s->b_dec[q];
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m, d, b, 1, dc, m, xc, d, 0, gwe,
                        d);
            /* db_d: sum e - W_e^T dc summed */
            for (int i = 0; i < b; i++)
                for (int q = 0; q < d; q++)
                    gbd[q] += e[i * d + q];
            /* sum_i W_e^T dc_i = W_e^T (the column sums of dc, which are gbe) */
            cblas_sgemv(CblasRowMajor, CblasTrans, m, d, -1, s->w_enc, d, gbe, 1, 1, gbd, 1);
            for (int j = 0; j < m; j++) {
                double dot = 0;
                for (int q = 0; q < d; q++)
                    dot += gwd[q * m + j] * s->w_dec[q * m + j];
                for (int q = 0; q < d; q++)
                    gwd[q * m + j] -= dot * s->w_dec[q * m + j];
            }
            t++;
            float *pp[4] = {s->w_enc, s->w_dec, s->b_enc, s->b_dec};
            size_t cnt[4] = {(size_t)m * d, (size_t)m * d, m, d}, off = 0;
            double bc1 = 1 - pow(cfg->beta1, t), bc2 = 1 - pow(cfg->beta2, t);
            for (int a = 0; a < 4; a++) {
                for (size_t i = 0; i < cnt[a]; i++) {
                    size_t o = off + i;
                    M1[o] = cfg->beta1 * M1[o] + (1 - cfg->beta1) * g[o];
                    M2[o] = cfg->beta2 * M2[o] + (1 - cfg->beta2) * g[o] * g[o];
                    pp[a][i] -= cfg->lr * (M1[o] / bc1) / (sqrt(M2[o] / bc2) + cfg->adam_eps);
                }
                off += cnt[a];
            }
            for (int j = 0; j < m; j++) {
                double nn = 0;
                for (int q = 0; q < d; q++)
                    nn += s->w_dec[q * m + j] * s->w_dec[q * m + j];
                nn = sqrt(nn) + 1e-12;
                for (int q = 0; q < d; q++)
                    s->w_dec[q * m + j] /= nn;
            }
        }
        if (per_epoch)
            rn_sae_eval(s, cfg, x, n, &per_epoch[ep], ep == cfg->epochs - 1 ? density : NULL, err);
    }
    free(g);
    free(M1);
    free(M2);
    free(c);
    free(xh);
    free(e);
    free(dc);
    free(xb);
    free(perm);
    return 0;
}
