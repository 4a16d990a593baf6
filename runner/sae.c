/* sae.c - the sparse autoencoder's forward arithmetic (sae.h): allocation,
 * initialisation, encode/decode, evaluation, the loss gradient, the
 * decoder's projection and normalisation, Adam, the geometric median and the
 * variance explained. Training is sae_train.c.
 *
 * Every pass works on blocks of rows: one sgemm per product, split over the
 * OpenMP threads along its larger output dimension (rn_gemm_cpu_par), and
 * per-column reductions owned by one thread each and summed over the rows in
 * order, so the results do not depend on how the rows were scheduled.
 */
#include "sae.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/gemm.h"
#include "rng.h"
#include "sae_internal.h"

#define SAE_COLS 64        /* columns per block of a column reduction */
#define SAE_EVAL_ROWS 1024 /* rows per block of eval and reconstruct */

struct rn_sae_config rn_sae_config_default(void)
{
    struct rn_sae_config c = {0};
    c.m = 512;
    c.act = RN_SAE_RELU;
    c.k = 32;
    c.l1 = 1e-3f;
    c.l1_decoder_norm = 0;
    c.lr = 1e-3f;
    c.beta1 = 0.9f;
    c.beta2 = 0.999f;
    c.adam_eps = 1e-8f;
    c.batch = 256;
    c.epochs = 50;
    c.seed = 0;
    c.bias_init = RN_SAE_BIAS_MEAN;
    c.centre = 0;
    c.dead_window = 0;
    c.resample_every = 0;
    c.dense_threshold = 0.1f;
    return c;
}

int rn_sae_check_config(const struct rn_sae_config *c, size_t n, int d, struct rn_error *err)
{
    if (n == 0 || n > (size_t)1 << 30 || d <= 0)
        return rn_errorf(err,
                         "sae: the data is %zu x %d, expected at least one row (at most 2^30) "
                         "and one column",
                         n, d);
    if (c->m <= 0)
        return rn_errorf(err, "sae: m is %d, expected a positive number of features", c->m);
    if (c->act == RN_SAE_TOPK && (c->k < 1 || c->k > c->m))
        return rn_errorf(err, "sae: k is %d, expected 1 to m (%d)", c->k, c->m);
    if (!(c->l1 >= 0) || !isfinite(c->l1))
        return rn_errorf(err, "sae: l1 is %g, expected a finite number >= 0", c->l1);
    if (!(c->lr > 0) || !isfinite(c->lr))
        return rn_errorf(err, "sae: lr is %g, expected a finite number > 0", c->lr);
    if (!(c->beta1 >= 0 && c->beta1 < 1) || !(c->beta2 >= 0 && c->beta2 < 1))
        return rn_errorf(err, "sae: Adam betas are %g, %g, expected each in [0, 1)", c->beta1,
                         c->beta2);
    if (!(c->adam_eps >= 0))
        return rn_errorf(err, "sae: adam_eps is %g, expected >= 0", c->adam_eps);
    if (c->batch <= 0 || c->epochs < 0)
        return rn_errorf(err, "sae: batch %d, epochs %d, expected batch > 0 and epochs >= 0",
                         c->batch, c->epochs);
    if (c->dead_window < 0 || c->resample_every < 0)
        return rn_errorf(err, "sae: dead_window %ld, resample_every %ld, expected both >= 0",
                         c->dead_window, c->resample_every);
    if (!(c->dense_threshold >= 0 && c->dense_threshold <= 1))
        return rn_errorf(err, "sae: dense_threshold is %g, expected a fraction in [0, 1]",
                         c->dense_threshold);
    return 0;
}

/* ---- allocation -------------------------------------------------------------- */

int rn_sae_alloc(struct rn_sae *s, int d, int m, enum rn_sae_act act, int k, struct rn_error *err)
{
    memset(s, 0, sizeof *s);
    if (d <= 0 || m <= 0 || (act == RN_SAE_TOPK && (k < 1 || k > m)))
        return rn_errorf(err,
                         "sae: cannot allocate d %d, m %d, k %d (expected d, m > 0 and, "
                         "for topk, 1 <= k <= m)",
                         d, m, k);
    s->d = d;
    s->m = m;
    s->act = act;
    s->k = k;
    size_t dm = (size_t)d * m;
    s->w_enc = rn_calloc(dm, sizeof(float), err);
    s->b_enc = s->w_enc ? rn_calloc((size_t)m, sizeof(float), err) : NULL;
    s->w_dec = s->b_enc ? rn_calloc(dm, sizeof(float), err) : NULL;
    s->b_dec = s->w_dec ? rn_calloc((size_t)d, sizeof(float), err) : NULL;
    s->mu = s->b_dec ? rn_calloc((size_t)d, sizeof(float), err) : NULL;
    if (!s->mu) {
        rn_sae_free(s);
        return rn_error_prefix(err, "sae (d %d, m %d)", d, m);
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

int rn_sae_ws_init(struct rn_sae_ws *w, int B, int d, int m, int with_grads, struct rn_error *err)
{
    memset(w, 0, sizeof *w);
    w->B = B;
    w->d = d;
    w->m = m;
    size_t bd = (size_t)B * d, bm = (size_t)B * m;
    int ok = (w->xin = rn_malloc(bd * sizeof(float), err)) &&
             (w->codes = rn_malloc(bm * sizeof(float), err)) &&
             (w->r = rn_malloc(bd * sizeof(float), err)) &&
             (w->wnorm = rn_malloc((size_t)m * sizeof(float), err)) &&
             (w->row_err = rn_malloc((size_t)B * sizeof(double), err)) &&
             (w->row_l1 = rn_malloc((size_t)B * sizeof(double), err)) &&
             (w->row_nnz = rn_malloc((size_t)B * sizeof(int), err)) &&
             (w->ones = rn_malloc((size_t)B * sizeof(float), err));
    if (ok && with_grads)
        ok = (w->dc = rn_malloc(bm * sizeof(float), err)) &&
             !rn_sae_alloc(&w->grad, d, m, RN_SAE_RELU, 0, err);
    if (!ok) {
        rn_sae_ws_free(w);
        return rn_error_prefix(err, "sae workspace (%d rows)", B);
    }
    for (int b = 0; b < B; b++)
        w->ones[b] = 1.0f;
    return 0;
}

void rn_sae_ws_free(struct rn_sae_ws *w)
{
    free(w->xin);
    free(w->codes);
    free(w->r);
    free(w->dc);
    free(w->wnorm);
    free(w->row_err);
    free(w->row_l1);
    free(w->row_nnz);
    free(w->ones);
    rn_sae_free(&w->grad);
    memset(w, 0, sizeof *w);
}

/* ---- column reductions --------------------------------------------------------- */

void rn_sae_thread_range(int len, int *lo, int *hi)
{
    int t = omp_get_thread_num(), T = omp_get_num_threads();
    int chunk = ((len + T - 1) / T + 15) / 16 * 16;
    long a = (long)t * chunk, b = a + chunk;
    *lo = a < len ? (int)a : len;
    *hi = b < len ? (int)b : len;
}

void rn_sae_col_norms(const float *w, int d, int m, float *out)
{
#pragma omp parallel
    {
        int lo, hi;
        rn_sae_thread_range(m, &lo, &hi);
        for (int j0 = lo; j0 < hi; j0 += SAE_COLS) {
            int nj = hi - j0 < SAE_COLS ? hi - j0 : SAE_COLS;
            double acc[SAE_COLS] = {0};
            for (int i = 0; i < d; i++) {
                const float *row = w + (size_t)i * m + j0;
                for (int q = 0; q < nj; q++)
                    acc[q] += (double)row[q] * row[q];
            }
            for (int q = 0; q < nj; q++)
                out[j0 + q] = (float)sqrt(acc[q]);
        }
    }
}

void rn_sae_project_grad(const struct rn_sae *s, struct rn_sae *grad)
{
    int d = s->d, m = s->m;
    const float *w = s->w_dec;
    float *g = grad->w_dec;
#pragma omp parallel
    {
        int lo, hi;
        rn_sae_thread_range(m, &lo, &hi);
        for (int j0 = lo; j0 < hi; j0 += SAE_COLS) {
            int nj = hi - j0 < SAE_COLS ? hi - j0 : SAE_COLS;
            double gw[SAE_COLS] = {0}, ww[SAE_COLS] = {0};
            float f[SAE_COLS];
            for (int i = 0; i < d; i++) {
                const float *wr = w + (size_t)i * m + j0, *gr = g + (size_t)i * m + j0;
                for (int q = 0; q < nj; q++) {
                    gw[q] += (double)gr[q] * wr[q];
                    ww[q] += (double)wr[q] * wr[q];
                }
            }
            for (int q = 0; q < nj; q++)
                f[q] = ww[q] > 0 ? (float)(gw[q] / ww[q]) : 0.0f;
            for (int i = 0; i < d; i++) {
                const float *wr = w + (size_t)i * m + j0;
                float *gr = g + (size_t)i * m + j0;
                for (int q = 0; q < nj; q++)
                    gr[q] -= f[q] * wr[q];
            }
        }
    }
}

void rn_sae_normalise_decoder(struct rn_sae *s)
{
    int d = s->d, m = s->m;
    float *w = s->w_dec;
#pragma omp parallel
    {
        int lo, hi;
        rn_sae_thread_range(m, &lo, &hi);
        for (int j0 = lo; j0 < hi; j0 += SAE_COLS) {
            int nj = hi - j0 < SAE_COLS ? hi - j0 : SAE_COLS;
            double acc[SAE_COLS] = {0};
            float norm[SAE_COLS];
            for (int i = 0; i < d; i++) {
                const float *row = w + (size_t)i * m + j0;
                for (int q = 0; q < nj; q++)
                    acc[q] += (double)row[q] * row[q];
            }
            for (int q = 0; q < nj; q++)
                norm[q] = acc[q] > 0 ? (float)sqrt(acc[q]) : 1.0f;
            for (int i = 0; i < d; i++) {
                float *row = w + (size_t)i * m + j0;
                for (int q = 0; q < nj; q++)
                    row[q] /= norm[q];
            }
        }
    }
}

/* out (cols) = the column sums of a (rows, cols), a single-threaded sgemv
 * with a ones vector (rows entries). */
static void col_sums(const float *a, int rows, int cols, const float *ones, float *out)
{
    cblas_sgemv(CblasRowMajor, CblasTrans, rows, cols, 1.0f, a, cols, ones, 1, 0.0f, out, 1);
}

void rn_sae_ws_count_fired(const struct rn_sae_ws *w, int rows, long *count)
{
    int m = w->m;
    const float *c = w->codes;
#pragma omp parallel
    {
        int lo, hi;
        rn_sae_thread_range(m, &lo, &hi);
        for (int j0 = lo; j0 < hi; j0 += SAE_COLS) {
            int nj = hi - j0 < SAE_COLS ? hi - j0 : SAE_COLS;
            int acc[SAE_COLS] = {0};
            for (int b = 0; b < rows; b++) {
                const float *row = c + (size_t)b * m + j0;
                for (int q = 0; q < nj; q++)
                    acc[q] += row[q] > 0;
            }
            for (int q = 0; q < nj; q++)
                count[j0 + q] += acc[q];
        }
    }
}

/* ---- the forward pass ------------------------------------------------------------ */

/* A float's bits as an unsigned key with the same order. */
static inline uint32_t order_key(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

/* Keeps the k largest of c (m), ReLU'd, and zeroes the rest; ties at the
 * k-th value go to the lowest index. Radix selection of the k-th largest
 * key, a byte at a time, so no scratch beyond the histogram. */
static void topk_row(float *c, int m, int k)
{
    uint32_t prefix = 0, mask = 0;
    int want = k;
    for (int shift = 24; shift >= 0; shift -= 8) {
        int hist[256] = {0};
        for (int j = 0; j < m; j++) {
            uint32_t u = order_key(c[j]);
            if ((u & mask) == prefix)
                hist[(u >> shift) & 255u]++;
        }
        int b = 255;
        for (; b > 0 && hist[b] < want; b--)
            want -= hist[b];
        prefix |= (uint32_t)b << shift;
        mask |= 255u << shift;
    }
    /* prefix: the k-th largest key; want: how many equal to it to keep */
    for (int j = 0; j < m; j++) {
        uint32_t u = order_key(c[j]);
        int keep = u > prefix || (u == prefix && want-- > 0);
        c[j] = keep && c[j] > 0 ? c[j] : 0.0f;
    }
}

/* codes (rows, m) of xin (rows, d) = x - mu - b_d. */
static void encode_rows(const struct rn_sae *s, const float *xin, int rows, float *codes, int par)
{
    int d = s->d, m = s->m;
    if (par)
        rn_gemm_cpu_par(0, 1, rows, m, d, 1.0f, xin, d, s->w_enc, d, 0.0f, codes, m);
    else
        rn_gemm_cpu(0, 1, rows, m, d, 1.0f, xin, d, s->w_enc, d, 0.0f, codes, m);
#pragma omp parallel for schedule(static) if (par)
    for (int b = 0; b < rows; b++) {
        float *row = codes + (size_t)b * m;
        for (int j = 0; j < m; j++)
            row[j] += s->b_enc[j];
        if (s->act == RN_SAE_TOPK && s->k < m) {
            topk_row(row, m, s->k);
        } else {
            for (int j = 0; j < m; j++)
                row[j] = row[j] > 0 ? row[j] : 0.0f;
        }
    }
}

void rn_sae_ws_forward(const struct rn_sae *s, struct rn_sae_ws *w, const float *x, const int *idx,
                       int rows)
{
    int d = s->d, m = s->m;
#pragma omp parallel for schedule(static)
    for (int b = 0; b < rows; b++) {
        const float *src = x + (size_t)(idx ? idx[b] : b) * d;
        float *xin = w->xin + (size_t)b * d, *r = w->r + (size_t)b * d;
        for (int i = 0; i < d; i++) {
            xin[i] = src[i] - s->mu[i] - s->b_dec[i];
            r[i] = -xin[i];
        }
    }
    encode_rows(s, w->xin, rows, w->codes, 1);
    /* r = W_d c - xin = x^ - x */
    rn_gemm_cpu_par(0, 1, rows, d, m, 1.0f, w->codes, m, s->w_dec, m, 1.0f, w->r, d);
}

void rn_sae_ws_row_stats(const struct rn_sae *s, struct rn_sae_ws *w, int rows, int decoder_norm)
{
    int d = s->d, m = s->m;
    if (decoder_norm) {
        rn_sae_col_norms(s->w_dec, d, m, w->wnorm);
    } else {
        for (int j = 0; j < m; j++)
            w->wnorm[j] = 1.0f;
    }
#pragma omp parallel for schedule(static)
    for (int b = 0; b < rows; b++) {
        const float *r = w->r + (size_t)b * d, *c = w->codes + (size_t)b * m;
        double e = 0, l1 = 0;
        int nnz = 0;
        for (int i = 0; i < d; i++)
            e += (double)r[i] * r[i];
        for (int j = 0; j < m; j++) {
            l1 += (double)w->wnorm[j] * c[j]; /* c >= 0 */
            nnz += c[j] > 0;
        }
        w->row_err[b] = e;
        w->row_l1[b] = l1;
        w->row_nnz[b] = nnz;
    }
}

void rn_sae_ws_backward(const struct rn_sae *s, struct rn_sae_ws *w, int rows, float l1,
                        int decoder_norm)
{
    int d = s->d, m = s->m;
    float s2 = 2.0f / (float)rows, sl = l1 / (float)rows;
    struct rn_sae *g = &w->grad;
    /* dW_d = (2/B) e^T c, dL/dc = (2/B) e W_d */
    rn_gemm_cpu_par(1, 0, d, m, rows, s2, w->r, d, w->codes, m, 0.0f, g->w_dec, m);
    rn_gemm_cpu_par(0, 0, rows, m, d, s2, w->r, d, s->w_dec, m, 0.0f, w->dc, m);
    if (decoder_norm && l1 > 0) {
        /* d(w_j)/dW_d[:, j] = W_d[:, j] / w_j, times (l1/B) sum_b |c_bj| */
        col_sums(w->codes, rows, m, w->ones, g->b_enc);
        for (int j = 0; j < m; j++)
            g->b_enc[j] = w->wnorm[j] > 0 ? sl * g->b_enc[j] / w->wnorm[j] : 0.0f;
#pragma omp parallel for schedule(static)
        for (int i = 0; i < d; i++) {
            float *gr = g->w_dec + (size_t)i * m;
            const float *wr = s->w_dec + (size_t)i * m;
            for (int j = 0; j < m; j++)
                gr[j] += g->b_enc[j] * wr[j];
        }
    }
    /* dL/dp: through the ReLU (and the selection) where c > 0 */
#pragma omp parallel for schedule(static)
    for (int b = 0; b < rows; b++) {
        float *dc = w->dc + (size_t)b * m;
        const float *c = w->codes + (size_t)b * m;
        for (int j = 0; j < m; j++)
            dc[j] = c[j] > 0 ? dc[j] + sl * w->wnorm[j] : 0.0f;
    }
    rn_gemm_cpu_par(1, 0, m, d, rows, 1.0f, w->dc, m, w->xin, d, 0.0f, g->w_enc, d);
    col_sums(w->dc, rows, m, w->ones, g->b_enc);
    /* db_d = (2/B) sum_b e_b - W_e^T db_e */
    cblas_sgemv(CblasRowMajor, CblasTrans, rows, d, s2, w->r, d, w->ones, 1, 0.0f, g->b_dec, 1);
    cblas_sgemv(CblasRowMajor, CblasTrans, m, d, -1.0f, s->w_enc, d, g->b_enc, 1, 1.0f, g->b_dec,
                1);
}

/* ---- encode, decode, evaluate ------------------------------------------------------ */

/* This thread's share [lo, hi) of n rows. */
static void row_range(size_t n, size_t *lo, size_t *hi)
{
    size_t t = (size_t)omp_get_thread_num(), T = (size_t)omp_get_num_threads();
    size_t chunk = (n + T - 1) / T;
    *lo = t * chunk < n ? t * chunk : n;
    *hi = *lo + chunk < n ? *lo + chunk : n;
}

/* rows x cols products in pieces of at most 2^20 rows (sgemm's int sizes). */
#define SAE_GEMM_ROWS ((size_t)1 << 20)

void rn_sae_encode(const struct rn_sae *s, const float *x, size_t n, float *codes)
{
    int d = s->d, m = s->m;
    for (size_t r0 = 0; r0 < n; r0 += SAE_GEMM_ROWS) {
        int rows = (int)(n - r0 < SAE_GEMM_ROWS ? n - r0 : SAE_GEMM_ROWS);
        rn_gemm_cpu_par(0, 1, rows, m, d, 1.0f, x + r0 * d, d, s->w_enc, d, 0.0f, codes + r0 * m,
                        m);
    }
#pragma omp parallel
    {
        size_t lo, hi;
        row_range(n, &lo, &hi);
        for (int j0 = 0; j0 < m; j0 += SAE_COLS) {
            int nj = m - j0 < SAE_COLS ? m - j0 : SAE_COLS;
            float off[SAE_COLS];
            for (int q = 0; q < nj; q++) {
                const float *we = s->w_enc + (size_t)(j0 + q) * d;
                double v = 0;
                for (int i = 0; i < d; i++)
                    v += (double)we[i] * ((double)s->mu[i] + s->b_dec[i]);
                off[q] = (float)(s->b_enc[j0 + q] - v);
            }
            for (size_t b = lo; b < hi; b++) {
                float *row = codes + b * m + j0;
                for (int q = 0; q < nj; q++)
                    row[q] += off[q];
            }
        }
        for (size_t b = lo; b < hi; b++) {
            float *row = codes + b * m;
            if (s->act == RN_SAE_TOPK && s->k < m) {
                topk_row(row, m, s->k);
            } else {
                for (int j = 0; j < m; j++)
                    row[j] = row[j] > 0 ? row[j] : 0.0f;
            }
        }
    }
}

void rn_sae_decode(const struct rn_sae *s, const float *codes, size_t n, float *xhat)
{
    int d = s->d, m = s->m;
    for (size_t r0 = 0; r0 < n; r0 += SAE_GEMM_ROWS) {
        int rows = (int)(n - r0 < SAE_GEMM_ROWS ? n - r0 : SAE_GEMM_ROWS);
        rn_gemm_cpu_par(0, 1, rows, d, m, 1.0f, codes + r0 * m, m, s->w_dec, m, 0.0f, xhat + r0 * d,
                        d);
    }
#pragma omp parallel
    {
        size_t lo, hi;
        row_range(n, &lo, &hi);
        for (size_t b = lo; b < hi; b++) {
            float *row = xhat + b * d;
            for (int i = 0; i < d; i++)
                row[i] += s->b_dec[i] + s->mu[i];
        }
    }
}

int rn_sae_reconstruct(const struct rn_sae *s, const float *x, size_t n, float *xhat,
                       struct rn_error *err)
{
    int B = n < SAE_EVAL_ROWS ? (int)n : SAE_EVAL_ROWS;
    if (n == 0)
        return 0;
    struct rn_sae_ws w;
    if (rn_sae_ws_init(&w, B, s->d, s->m, 0, err))
        return -1;
    for (size_t r0 = 0; r0 < n; r0 += (size_t)B) {
        int rows = n - r0 < (size_t)B ? (int)(n - r0) : B;
        rn_sae_ws_forward(s, &w, x + r0 * s->d, NULL, rows);
        rn_sae_decode(s, w.codes, (size_t)rows, xhat + r0 * s->d);
    }
    rn_sae_ws_free(&w);
    return 0;
}

int rn_sae_eval(const struct rn_sae *s, const struct rn_sae_config *cfg, const float *x, size_t n,
                struct rn_sae_metrics *out, float *density, struct rn_error *err)
{
    memset(out, 0, sizeof *out);
    if (n == 0)
        return rn_errorf(err, "sae eval: no rows");
    int B = n < SAE_EVAL_ROWS ? (int)n : SAE_EVAL_ROWS, m = s->m;
    struct rn_sae_ws w;
    long *count = rn_calloc((size_t)m, sizeof(long), err);
    if (!count || rn_sae_ws_init(&w, B, s->d, m, 0, err)) {
        free(count);
        return rn_error_prefix(err, "sae eval");
    }
    double sum_err = 0, sum_l1 = 0, sum_nnz = 0;
    for (size_t r0 = 0; r0 < n; r0 += (size_t)B) {
        int rows = n - r0 < (size_t)B ? (int)(n - r0) : B;
        rn_sae_ws_forward(s, &w, x + r0 * s->d, NULL, rows);
        rn_sae_ws_row_stats(s, &w, rows, cfg->l1_decoder_norm);
        rn_sae_ws_count_fired(&w, rows, count);
        for (int b = 0; b < rows; b++) {
            sum_err += w.row_err[b];
            sum_l1 += w.row_l1[b];
            sum_nnz += w.row_nnz[b];
        }
    }
    double var = rn_sae_total_var(x, n, s->d);
    out->loss = (sum_err + cfg->l1 * sum_l1) / (double)n;
    out->mse = sum_err / ((double)n * s->d);
    out->fve = var > 0 ? 1.0 - sum_err / var : NAN;
    out->l0 = sum_nnz / (double)n;
    rn_sae_density_stats(count, m, (double)n, cfg->dense_threshold, &out->dead_frac,
                         &out->dense_frac, density);
    rn_sae_ws_free(&w);
    free(count);
    return 0;
}

void rn_sae_density_stats(const long *count, int m, double samples, float dense_threshold,
                          double *dead_frac, double *dense_frac, float *density)
{
    int dead = 0, dense = 0;
    for (int j = 0; j < m; j++) {
        double f = samples > 0 ? count[j] / samples : 0;
        dead += count[j] == 0;
        dense += f > dense_threshold;
        if (density)
            density[j] = (float)f;
    }
    *dead_frac = (double)dead / m;
    *dense_frac = (double)dense / m;
}

int rn_sae_gradient(const struct rn_sae *s, const struct rn_sae_config *cfg, const float *x,
                    size_t n, struct rn_sae *grad, double *loss, struct rn_error *err)
{
    if (n == 0 || n > (size_t)1 << 30)
        return rn_errorf(err, "sae gradient: %zu rows, expected 1 to 2^30", n);
    if (grad->d != s->d || grad->m != s->m)
        return rn_errorf(err, "sae gradient: grad is (d %d, m %d), expected (d %d, m %d)", grad->d,
                         grad->m, s->d, s->m);
    struct rn_sae_ws w;
    int rows = (int)n, d = s->d, m = s->m;
    if (rn_sae_ws_init(&w, rows, d, m, 1, err))
        return -1;
    rn_sae_ws_forward(s, &w, x, NULL, rows);
    rn_sae_ws_row_stats(s, &w, rows, cfg->l1_decoder_norm);
    rn_sae_ws_backward(s, &w, rows, cfg->l1, cfg->l1_decoder_norm);
    double sum = 0;
    for (int b = 0; b < rows; b++)
        sum += w.row_err[b] + cfg->l1 * w.row_l1[b];
    *loss = sum / rows;
    memcpy(grad->w_enc, w.grad.w_enc, sizeof(float) * d * m);
    memcpy(grad->b_enc, w.grad.b_enc, sizeof(float) * m);
    memcpy(grad->w_dec, w.grad.w_dec, sizeof(float) * d * m);
    memcpy(grad->b_dec, w.grad.b_dec, sizeof(float) * d);
    rn_sae_ws_free(&w);
    return 0;
}

/* ---- Adam ---------------------------------------------------------------------------- */

void rn_sae_adam_update(float *p, const float *g, float *m, float *v, size_t count, long t,
                        const struct rn_sae_config *cfg)
{
    float b1 = cfg->beta1, b2 = cfg->beta2, eps = cfg->adam_eps;
    float a1 = (float)(1.0 - (double)b1), a2 = (float)(1.0 - (double)b2);
    double bc1 = 1.0 - pow((double)b1, (double)t), bc2 = 1.0 - pow((double)b2, (double)t);
    float step = (float)(-(double)cfg->lr / bc1), bc2_sqrt = (float)sqrt(bc2);
    long nn = (long)count;
#pragma omp parallel for schedule(static) if (nn > 4096)
    for (long q = 0; q < nn; q++) {
        float mq = m[q] * b1 + g[q] * a1;
        float vq = v[q] * b2 + a2 * g[q] * g[q];
        m[q] = mq;
        v[q] = vq;
        p[q] += step * (mq / (sqrtf(vq) / bc2_sqrt + eps));
    }
}

/* ---- statistics of the data ---------------------------------------------------------- */

#define SAE_STAT_ROWS 4096 /* rows per block of the data's statistics */

int rn_sae_data_mean(const float *x, size_t n, int d, double *out, struct rn_error *err)
{
    size_t nb = (n + SAE_STAT_ROWS - 1) / SAE_STAT_ROWS;
    double *part = rn_calloc(nb * (size_t)d, sizeof(double), err);
    if (!part)
        return rn_error_prefix(err, "data mean");
#pragma omp parallel for schedule(static)
    for (size_t k = 0; k < nb; k++) {
        double *acc = part + k * d;
        size_t hi = (k + 1) * SAE_STAT_ROWS < n ? (k + 1) * SAE_STAT_ROWS : n;
        for (size_t b = k * SAE_STAT_ROWS; b < hi; b++)
            for (int i = 0; i < d; i++)
                acc[i] += x[b * d + i];
    }
    for (int i = 0; i < d; i++)
        out[i] = 0;
    for (size_t k = 0; k < nb; k++)
        for (int i = 0; i < d; i++)
            out[i] += part[k * d + i];
    for (int i = 0; i < d; i++)
        out[i] /= (double)n;
    free(part);
    return 0;
}

int rn_geometric_median(const float *x, size_t n, int d, float *out, struct rn_error *err)
{
    if (n == 0 || d <= 0)
        return rn_errorf(err, "geometric median: %zu x %d data, expected at least one row", n, d);
    size_t nb = (n + SAE_STAT_ROWS - 1) / SAE_STAT_ROWS;
    double *y = rn_malloc(sizeof(double) * 2 * d, err);
    double *part = y ? rn_malloc(nb * (size_t)(d + 1) * sizeof(double), err) : NULL;
    if (!part || rn_sae_data_mean(x, n, d, y, err)) {
        free(y);
        free(part);
        return rn_error_prefix(err, "geometric median");
    }
    double *ynew = y + d;
    for (int it = 0; it < 500; it++) {
#pragma omp parallel for schedule(static)
        for (size_t k = 0; k < nb; k++) {
            double *acc = part + k * (d + 1);
            memset(acc, 0, sizeof(double) * (d + 1));
            size_t hi = (k + 1) * SAE_STAT_ROWS < n ? (k + 1) * SAE_STAT_ROWS : n;
            for (size_t b = k * SAE_STAT_ROWS; b < hi; b++) {
                const float *row = x + b * d;
                double dist = 0;
                for (int i = 0; i < d; i++)
                    dist += (row[i] - y[i]) * (row[i] - y[i]);
                dist = sqrt(dist);
                if (dist < 1e-12)
                    continue;
                for (int i = 0; i < d; i++)
                    acc[i] += row[i] / dist;
                acc[d] += 1.0 / dist;
            }
        }
        double den = 0, step = 0, norm = 0;
        for (int i = 0; i < d; i++)
            ynew[i] = 0;
        for (size_t k = 0; k < nb; k++) {
            for (int i = 0; i < d; i++)
                ynew[i] += part[k * (d + 1) + i];
            den += part[k * (d + 1) + d];
        }
        if (den == 0) /* every row is at y */
            break;
        for (int i = 0; i < d; i++) {
            ynew[i] /= den;
            step += (ynew[i] - y[i]) * (ynew[i] - y[i]);
            norm += ynew[i] * ynew[i];
            y[i] = ynew[i];
        }
        if (sqrt(step) < 1e-7 * (1 + sqrt(norm)))
            break;
    }
    for (int i = 0; i < d; i++)
        out[i] = (float)y[i];
    free(y);
    free(part);
    return 0;
}

/* sum ||x_b - mean(x)||^2 and, with xhat, sum ||x_b - xhat_b||^2 (into *sq_err), in
 * column blocks with no heap memory, in double. */
static double variance_and_error(const float *x, const float *xhat, size_t n, int d, double *sq_err)
{
    double var = 0, e = 0;
    for (int j0 = 0; j0 < d; j0 += SAE_COLS) {
        int nj = d - j0 < SAE_COLS ? d - j0 : SAE_COLS;
        double mean[SAE_COLS] = {0}, v[SAE_COLS] = {0}, ee[SAE_COLS] = {0};
        for (size_t b = 0; b < n; b++)
            for (int q = 0; q < nj; q++)
                mean[q] += x[b * d + j0 + q];
        for (int q = 0; q < nj; q++)
            mean[q] /= (double)n;
        for (size_t b = 0; b < n; b++)
            for (int q = 0; q < nj; q++) {
                double c = x[b * d + j0 + q] - mean[q];
                v[q] += c * c;
                if (xhat) {
                    double r = (double)x[b * d + j0 + q] - xhat[b * d + j0 + q];
                    ee[q] += r * r;
                }
            }
        for (int q = 0; q < nj; q++) {
            var += v[q];
            e += ee[q];
        }
    }
    if (sq_err)
        *sq_err = e;
    return var;
}

double rn_sae_total_var(const float *x, size_t n, int d)
{
    return n ? variance_and_error(x, NULL, n, d, NULL) : 0;
}

double rn_fve(const float *x, const float *xhat, size_t n, int d)
{
    if (n == 0 || d <= 0)
        return NAN;
    double e, var = variance_and_error(x, xhat, n, d, &e);
    return var > 0 ? 1.0 - e / var : NAN;
}

/* ---- initialisation ------------------------------------------------------------------ */

int rn_sae_init(struct rn_sae *s, const struct rn_sae_config *cfg, const float *x, size_t n,
                struct rn_error *err)
{
    int d = s->d, m = s->m;
    if (rn_sae_check_config(cfg, n, d, err))
        return -1;
    if (cfg->m != m || cfg->act != s->act || (s->act == RN_SAE_TOPK && cfg->k != s->k))
        return rn_errorf(err, "sae init: the SAE has m %d, %s, k %d; the config m %d, %s, k %d", m,
                         s->act == RN_SAE_TOPK ? "topk" : "relu", s->k, cfg->m,
                         cfg->act == RN_SAE_TOPK ? "topk" : "relu", cfg->k);
    double *mean = rn_malloc(sizeof(double) * d, err);
    if (!mean || rn_sae_data_mean(x, n, d, mean, err)) {
        free(mean);
        return rn_error_prefix(err, "sae init");
    }
    for (int i = 0; i < d; i++) {
        s->mu[i] = cfg->centre ? (float)mean[i] : 0.0f;
        s->b_dec[i] = cfg->centre ? 0.0f : (float)mean[i];
    }
    free(mean);
    if (cfg->bias_init == RN_SAE_BIAS_MEDIAN) {
        if (rn_geometric_median(x, n, d, s->b_dec, err))
            return rn_error_prefix(err, "sae init");
        for (int i = 0; i < d; i++)
            s->b_dec[i] -= s->mu[i];
    }
    struct rn_rng rng;
    rn_rng_init(&rng, cfg->seed, RN_STREAM_SAE, RN_SAE_ITEM_INIT);
    for (int j = 0; j < m; j++)
        for (int i = 0; i < d; i++)
            s->w_dec[(size_t)i * m + j] = rn_rng_normal(&rng);
    rn_sae_normalise_decoder(s);
    for (int j = 0; j < m; j++) {
        for (int i = 0; i < d; i++)
            s->w_enc[(size_t)j * d + i] = s->w_dec[(size_t)i * m + j];
        s->b_enc[j] = 0;
    }
    return 0;
}
