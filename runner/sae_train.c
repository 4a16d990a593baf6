/* sae_train.c - training the sparse autoencoder (sae.h): shuffled batches,
 * the gradient with its decoder projection, Adam, the decoder's
 * renormalisation, dead-feature tracking and resampling, and the metrics of
 * each epoch measured on the batches as they are trained on.
 */
#include "sae.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"
#include "sae_internal.h"

#define SAE_POOL 8192 /* rows scored when resampling */

struct trainer {
    const struct rn_sae_config *cfg;
    struct rn_sae *s;
    const float *x;
    size_t n;
    int d, m;
    struct rn_sae_ws w;
    float *adam_m, *adam_v; /* (2 d m + m + d): w_enc, b_enc, w_dec, b_dec */
    int *perm;              /* (n) */
    long *last_fired;       /* (m): samples seen when each feature last fired */
    long *count_epoch;      /* (m): rows of this epoch where it fired */
    long *count_batch;      /* (m) */
    long samples, steps, window;
    double var; /* sum_b ||x_b - mean(x)||^2 */
    struct rn_rng rng_resample;
    /* resampling (when on) */
    int *pool;      /* (SAE_POOL) rows scored */
    double *cum;    /* (SAE_POOL) cumulative squared losses */
    int *dead;      /* (m) dead features */
    int *chosen;    /* (m) the row picked for each */
    float *resid;   /* (m, d) its residual x - x^ */
    long resampled; /* this epoch */
};

static void trainer_free(struct trainer *t)
{
    rn_sae_ws_free(&t->w);
    free(t->adam_m);
    free(t->adam_v);
    free(t->perm);
    free(t->last_fired);
    free(t->count_epoch);
    free(t->count_batch);
    free(t->pool);
    free(t->cum);
    free(t->dead);
    free(t->chosen);
    free(t->resid);
}

static int trainer_init(struct trainer *t, struct rn_sae *s, const struct rn_sae_config *cfg,
                        const float *x, size_t n, struct rn_error *err)
{
    memset(t, 0, sizeof *t);
    t->cfg = cfg;
    t->s = s;
    t->x = x;
    t->n = n;
    t->d = s->d;
    t->m = s->m;
    t->window = cfg->dead_window > 0 ? cfg->dead_window : (long)n;
    size_t dm = (size_t)t->d * t->m, np = 2 * dm + t->m + t->d;
    int B = (size_t)cfg->batch < n ? cfg->batch : (int)n;
    int ok = !rn_sae_ws_init(&t->w, B, t->d, t->m, 1, err) &&
             (t->adam_m = rn_calloc(np, sizeof(float), err)) &&
             (t->adam_v = rn_calloc(np, sizeof(float), err)) &&
             (t->perm = rn_malloc(n * sizeof(int), err)) &&
             (t->last_fired = rn_calloc((size_t)t->m, sizeof(long), err)) &&
             (t->count_epoch = rn_calloc((size_t)t->m, sizeof(long), err)) &&
             (t->count_batch = rn_calloc((size_t)t->m, sizeof(long), err));
    if (ok && cfg->resample_every > 0)
        ok = (t->pool = rn_malloc(SAE_POOL * sizeof(int), err)) &&
             (t->cum = rn_malloc(SAE_POOL * sizeof(double), err)) &&
             (t->dead = rn_malloc((size_t)t->m * sizeof(int), err)) &&
             (t->chosen = rn_malloc((size_t)t->m * sizeof(int), err)) &&
             (t->resid = rn_malloc(dm * sizeof(float), err));
    if (!ok) {
        trainer_free(t);
        return rn_error_prefix(err, "sae train");
    }
    rn_rng_init(&t->rng_resample, cfg->seed, RN_STREAM_SAE, RN_SAE_ITEM_RESAMPLE);
    t->var = rn_sae_total_var(x, n, t->d);
    return 0;
}

/* The Adam moments of W_e, b_e, W_d, b_d, in that order. */
static float *moment(const struct trainer *t, float *base, int which)
{
    size_t dm = (size_t)t->d * t->m;
    size_t off[4] = {0, dm, dm + t->m, 2 * dm + t->m};
    return base + off[which];
}

/* ---- resampling ------------------------------------------------------------------ */

static int is_dead(const struct trainer *t, int j)
{
    return t->samples - t->last_fired[j] >= t->window;
}

/* The rows of the pool chosen for the nd dead features, by squared loss. */
static int choose_rows(struct trainer *t, int nd)
{
    struct rn_sae_ws *w = &t->w;
    int P = t->n < SAE_POOL ? (int)t->n : SAE_POOL;
    for (int q = 0; q < P; q++)
        t->pool[q] = (int)rn_rng_below(&t->rng_resample, (uint32_t)t->n);
    double total = 0;
    for (int r0 = 0; r0 < P; r0 += w->B) {
        int rows = P - r0 < w->B ? P - r0 : w->B;
        rn_sae_ws_forward(t->s, w, t->x, t->pool + r0, rows);
        rn_sae_ws_row_stats(t->s, w, rows, 0);
        for (int b = 0; b < rows; b++) {
            total += w->row_err[b] * w->row_err[b];
            t->cum[r0 + b] = total;
        }
    }
    if (!(total > 0))
        return -1; /* every row reconstructed exactly: nothing to learn from */
    for (int q = 0; q < nd; q++) {
        double u = rn_rng_u32(&t->rng_resample) * (1.0 / 4294967296.0) * total;
        int lo = 0, hi = P - 1;
        while (lo < hi) { /* the first row whose cumulative loss exceeds u */
            int mid = (lo + hi) / 2;
            if (t->cum[mid] > u)
                hi = mid;
            else
                lo = mid + 1;
        }
        t->chosen[q] = t->pool[lo];
    }
    return 0;
}

/* Re-initialises the dead features (sae.h); their count into t->resampled. */
static void resample(struct trainer *t)
{
    struct rn_sae *s = t->s;
    int d = t->d, m = t->m, nd = 0;
    for (int j = 0; j < m; j++)
        if (is_dead(t, j))
            t->dead[nd++] = j;
    if (nd == 0 || choose_rows(t, nd))
        return;
    /* every residual first, from the SAE before any change */
    struct rn_sae_ws *w = &t->w;
    for (int r0 = 0; r0 < nd; r0 += w->B) {
        int rows = nd - r0 < w->B ? nd - r0 : w->B;
        rn_sae_ws_forward(s, w, t->x, t->chosen + r0, rows);
        for (size_t q = 0; q < (size_t)rows * d; q++)
            t->resid[(size_t)r0 * d + q] = -w->r[q];
    }
    double alive_norm = 0;
    int alive = 0;
    for (int j = 0; j < m; j++) {
        if (is_dead(t, j))
            continue;
        double nn = 0;
        for (int i = 0; i < d; i++)
            nn += (double)s->w_enc[(size_t)j * d + i] * s->w_enc[(size_t)j * d + i];
        alive_norm += sqrt(nn);
        alive++;
    }
    float scale = alive ? (float)(0.2 * alive_norm / alive) : 0.2f;
    for (int q = 0; q < nd; q++) {
        int j = t->dead[q];
        const float *res = t->resid + (size_t)q * d;
        double nn = 0;
        for (int i = 0; i < d; i++)
            nn += (double)res[i] * res[i];
        if (!(nn > 0))
            continue;
        float inv = (float)(1.0 / sqrt(nn));
        for (int i = 0; i < d; i++) {
            float u = res[i] * inv;
            s->w_dec[(size_t)i * m + j] = u;
            s->w_enc[(size_t)j * d + i] = u * scale;
        }
        s->b_enc[j] = 0;
        float *mv[2] = {t->adam_m, t->adam_v};
        for (int k = 0; k < 2; k++) {
            memset(moment(t, mv[k], 0) + (size_t)j * d, 0, sizeof(float) * d);
            moment(t, mv[k], 1)[j] = 0;
            float *wd = moment(t, mv[k], 2);
            for (int i = 0; i < d; i++)
                wd[(size_t)i * m + j] = 0;
        }
        t->last_fired[j] = t->samples;
        t->resampled++;
    }
}

/* ---- one step and one epoch ------------------------------------------------------- */

struct epoch_sums {
    double err, l1, nnz;
};

static void train_step(struct trainer *t, const int *idx, int rows, struct epoch_sums *sum)
{
    struct rn_sae *s = t->s;
    struct rn_sae_ws *w = &t->w;
    const struct rn_sae_config *cfg = t->cfg;
    int d = t->d, m = t->m;
    rn_sae_ws_forward(s, w, t->x, idx, rows);
    rn_sae_ws_row_stats(s, w, rows, cfg->l1_decoder_norm);
    for (int b = 0; b < rows; b++) {
        sum->err += w->row_err[b];
        sum->l1 += w->row_l1[b];
        sum->nnz += w->row_nnz[b];
    }
    memset(t->count_batch, 0, sizeof(long) * m);
    rn_sae_ws_count_fired(w, rows, t->count_batch);
    t->samples += rows;
    for (int j = 0; j < m; j++) {
        t->count_epoch[j] += t->count_batch[j];
        if (t->count_batch[j])
            t->last_fired[j] = t->samples;
    }
    rn_sae_ws_backward(s, w, rows, cfg->l1, cfg->l1_decoder_norm);
    rn_sae_project_grad(s, &w->grad);
    t->steps++;
    size_t dm = (size_t)d * m;
    float *p[4] = {s->w_enc, s->b_enc, s->w_dec, s->b_dec};
    const float *g[4] = {w->grad.w_enc, w->grad.b_enc, w->grad.w_dec, w->grad.b_dec};
    size_t len[4] = {dm, (size_t)m, dm, (size_t)d};
    for (int k = 0; k < 4; k++)
        rn_sae_adam_update(p[k], g[k], moment(t, t->adam_m, k), moment(t, t->adam_v, k), len[k],
                           t->steps, cfg);
    rn_sae_normalise_decoder(s);
    if (cfg->resample_every > 0 && t->steps % cfg->resample_every == 0)
        resample(t);
}

static void train_epoch(struct trainer *t, int epoch, struct rn_sae_metrics *out, float *density)
{
    const struct rn_sae_config *cfg = t->cfg;
    size_t n = t->n;
    for (size_t q = 0; q < n; q++)
        t->perm[q] = (int)q;
    struct rn_rng rng;
    rn_rng_init(&rng, cfg->seed, RN_STREAM_SAE, RN_SAE_ITEM_SHUFFLE + (uint64_t)epoch);
    rn_rng_shuffle(&rng, t->perm, (int)n);
    memset(t->count_epoch, 0, sizeof(long) * t->m);
    t->resampled = 0;
    struct epoch_sums sum = {0};
    for (size_t b0 = 0; b0 < n; b0 += (size_t)t->w.B) {
        int rows = n - b0 < (size_t)t->w.B ? (int)(n - b0) : t->w.B;
        train_step(t, t->perm + b0, rows, &sum);
    }
    double var = t->var, unused;
    memset(out, 0, sizeof *out);
    out->loss = (sum.err + cfg->l1 * sum.l1) / (double)n;
    out->mse = sum.err / ((double)n * t->d);
    out->fve = var > 0 ? 1.0 - sum.err / var : NAN;
    out->l0 = sum.nnz / (double)n;
    rn_sae_density_stats(t->count_epoch, t->m, (double)n, cfg->dense_threshold, &unused,
                         &out->dense_frac, density);
    int dead = 0;
    for (int j = 0; j < t->m; j++)
        dead += is_dead(t, j);
    out->dead_frac = (double)dead / t->m;
    out->resampled = t->resampled;
}

int rn_sae_train_from(struct rn_sae *s, const struct rn_sae_config *cfg, const float *x, size_t n,
                      int d, struct rn_sae_metrics *per_epoch, float *density, struct rn_error *err)
{
    if (rn_sae_check_config(cfg, n, d, err))
        return -1;
    if (s->d != d || s->m != cfg->m || s->act != cfg->act ||
        (s->act == RN_SAE_TOPK && s->k != cfg->k))
        return rn_errorf(err,
                         "sae train: the SAE has d %d, m %d, %s, k %d; the data d %d and the "
                         "config m %d, %s, k %d",
                         s->d, s->m, s->act == RN_SAE_TOPK ? "topk" : "relu", s->k, d, cfg->m,
                         cfg->act == RN_SAE_TOPK ? "topk" : "relu", cfg->k);
    struct trainer t;
    if (trainer_init(&t, s, cfg, x, n, err))
        return -1;
    if (density && cfg->epochs == 0)
        memset(density, 0, sizeof(float) * s->m);
    for (int e = 0; e < cfg->epochs; e++) {
        struct rn_sae_metrics mt;
        train_epoch(&t, e, &mt, e == cfg->epochs - 1 ? density : NULL);
        if (per_epoch)
            per_epoch[e] = mt;
    }
    trainer_free(&t);
    return 0;
}

int rn_sae_train(struct rn_sae *s, const struct rn_sae_config *cfg, const float *x, size_t n, int d,
                 struct rn_sae_metrics *per_epoch, float *density, struct rn_error *err)
{
    memset(s, 0, sizeof *s);
    if (rn_sae_check_config(cfg, n, d, err) || rn_sae_alloc(s, d, cfg->m, cfg->act, cfg->k, err))
        return -1;
    if (rn_sae_init(s, cfg, x, n, err) ||
        rn_sae_train_from(s, cfg, x, n, d, per_epoch, density, err)) {
        rn_sae_free(s);
        return -1;
    }
    return 0;
}
