/* layers/batchnorm.c - batch normalisation over C, for (C,H,W) (BatchNorm2d) and (C,1,1)
 * (BatchNorm1d) inputs.
 *
 * PyTorch semantics. Training: each channel is normalised with the mean and
 * the biased variance of its N*H*W values; the running statistics move by
 * running = (1-momentum)*running + momentum*batch, with the UNBIASED
 * variance (times M/(M-1), M = N*H*W), and num_batches_tracked counts the
 * steps. Eval: the running statistics are used and the layer is an affine
 * map per channel. Both shapes go through the same code: a (C,1,1) input
 * simply has H*W = 1.
 *
 * Statistics and reductions run in double: M reaches 64*28*28 = 50176 and
 * float sums of that length lose digits the gradient check can see.
 *
 * Tangent mode exists only in eval mode: in training the batch statistics
 * make every sample depend on every other one, which the saliency loss does
 * not need and the first version does not support. */
#include <math.h>
#include <stdlib.h>

#include "runner/layer.h"

enum { KEY_EPS, KEY_MOMENTUM };

static const struct rn_key keys[] = {
    {"eps", RN_KIND_FLOAT, 0, 1e-05, NULL, 0.0, 1.0, NULL, "added to the variance"},
    {"momentum", RN_KIND_FLOAT, 0, 0.1, NULL, 0.0, 1.0, NULL, "running statistics update rate"},
};

/* Parameter slots, in the order build adds them (state_dict order). */
enum { P_WEIGHT, P_BIAS, P_RUNNING_MEAN, P_RUNNING_VAR, P_NUM_BATCHES };

struct batchnorm {
    float *mean;   /* (C): statistics the last forward normalised with */
    float *invstd; /* (C): 1/sqrt(var + eps), same */
    int train;     /* mode of the last forward */
};

static void bn_reset(struct rn_layer *l)
{
    int C = l->in[0].c;
    for (int c = 0; c < C; c++) {
        l->params[P_WEIGHT].value.data[c] = 1.0f;
        l->params[P_BIAS].value.data[c] = 0.0f;
        l->params[P_RUNNING_MEAN].value.data[c] = 0.0f;
        l->params[P_RUNNING_VAR].value.data[c] = 1.0f;
    }
    l->params[P_NUM_BATCHES].value.data[0] = 0.0f;
}

static void bn_init(struct rn_layer *l, struct rn_rng *rng)
{
    bn_reset(l);
}

static int bn_build(struct rn_layer *l, int max_n, struct rn_error *err)
{
    int C = l->in[0].c;
    l->out = l->in[0];
    if (rn_layer_add_param(l, "weight", 1, C, 1, 1, 1, 1, err) ||
        rn_layer_add_param(l, "bias", 1, C, 1, 1, 1, 1, err) ||
        rn_layer_add_param(l, "running_mean", 1, C, 1, 1, 1, 0, err) ||
        rn_layer_add_param(l, "running_var", 1, C, 1, 1, 1, 0, err) ||
        rn_layer_add_param(l, "num_batches_tracked", 0, 1, 1, 1, 1, 0, err))
        return -1;
    l->params[P_NUM_BATCHES].is_int64 = 1;
    /* Valid statistics even if init is never called (e.g. before a load). */
    bn_reset(l);
    struct batchnorm *bn = rn_calloc(1, sizeof *bn, err);
    if (!bn)
        return -1;
    l->priv = bn;
    bn->mean = rn_calloc((size_t)C, sizeof *bn->mean, err);
    bn->invstd = rn_calloc((size_t)C, sizeof *bn->invstd, err);
    if (!bn->mean || !bn->invstd)
        return -1; /* rn_layer_free releases what was allocated */
    return 0;
}

static void bn_free(struct rn_layer *l)
{
    struct batchnorm *bn = l->priv;
    if (bn) {
        free(bn->mean);
        free(bn->invstd);
    }
    free(bn);
}

static int bn_forward(struct rn_layer *l, const struct rn_tensor *const *x, struct rn_tensor *y,
                      const struct rn_ctx *ctx, struct rn_error *err)
{
    struct batchnorm *bn = l->priv;
    int N = x[0]->n, C = l->in[0].c, HW = l->in[0].h * l->in[0].w;
    long M = (long)N * HW;
    double eps = l->v.num[KEY_EPS], mom = l->v.num[KEY_MOMENTUM];
    const float *gamma = l->params[P_WEIGHT].value.data, *beta = l->params[P_BIAS].value.data;
    float *rmean = l->params[P_RUNNING_MEAN].value.data,
          *rvar = l->params[P_RUNNING_VAR].value.data;
    y->n = N;
    bn->train = ctx->train != 0;
    if (bn->train && M < 2)
        return rn_errorf(err,
                         "batchnorm '%s' in training mode needs more than one value per channel "
                         "(batch of 1)",
                         l->name);
#pragma omp parallel for if ((long)C * M > 65536) schedule(static)
    for (int c = 0; c < C; c++) {
        if (bn->train) {
            /* Double sums in vector lanes (simd reduction): a single
             * chain of dependent double adds ran at a few cycles per
             * element, slower than memory. */
            double sum = 0.0, sq = 0.0;
            for (int i = 0; i < N; i++) {
                const float *p = x[0]->data + ((long)i * C + c) * HW;
#pragma omp simd reduction(+ : sum)
                for (int j = 0; j < HW; j++)
                    sum += p[j];
            }
            double mean = sum / M;
            for (int i = 0; i < N; i++) {
                const float *p = x[0]->data + ((long)i * C + c) * HW;
#pragma omp simd reduction(+ : sq)
                for (int j = 0; j < HW; j++) {
                    double d = p[j] - mean;
                    sq += d * d;
                }
            }
            double var = sq / M;
            bn->mean[c] = (float)mean;
            bn->invstd[c] = (float)(1.0 / sqrt(var + eps));
            rmean[c] = (float)((1.0 - mom) * rmean[c] + mom * mean);
            rvar[c] = (float)((1.0 - mom) * rvar[c] + mom * var * M / (M - 1));
        } else {
            bn->mean[c] = rmean[c];
            bn->invstd[c] = (float)(1.0 / sqrt((double)rvar[c] + eps));
        }
        /* y = x * a + b folds the normalisation and the affine map. */
        float a = gamma[c] * bn->invstd[c], b = beta[c] - bn->mean[c] * a;
        for (int i = 0; i < N; i++) {
            const float *p = x[0]->data + ((long)i * C + c) * HW;
            float *q = y->data + ((long)i * C + c) * HW;
            for (int j = 0; j < HW; j++)
                q[j] = p[j] * a + b;
        }
    }
    if (bn->train)
        l->params[P_NUM_BATCHES].value.data[0] += 1.0f;
    return 0;
}

static int bn_backward(struct rn_layer *l, const struct rn_tensor *const *x,
                       const struct rn_tensor *y, const struct rn_tensor *dy,
                       struct rn_tensor *const *dx, const struct rn_ctx *ctx, struct rn_error *err)
{
    const struct batchnorm *bn = l->priv;
    if (rn_layer_check_mode(l, ctx, bn->train, "backward", err))
        return -1;
    int N = x[0]->n, C = l->in[0].c, HW = l->in[0].h * l->in[0].w;
    long M = (long)N * HW;
    const float *gamma = l->params[P_WEIGHT].value.data;
    float *gw = l->params[P_WEIGHT].grad.data, *gb = l->params[P_BIAS].grad.data;
    const int assign = ctx && (ctx->dx_assign & 1);
#pragma omp parallel for if ((long)C * M > 65536) schedule(static)
    for (int c = 0; c < C; c++) {
        float mean = bn->mean[c], inv = bn->invstd[c];
        double sdy = 0.0, sdyx = 0.0; /* sum(dy), sum(dy * xhat), in vector lanes */
        for (int i = 0; i < N; i++) {
            const float *p = x[0]->data + ((long)i * C + c) * HW;
            const float *g = dy->data + ((long)i * C + c) * HW;
#pragma omp simd reduction(+ : sdy, sdyx)
            for (int j = 0; j < HW; j++) {
                sdy += g[j];
                sdyx += (double)g[j] * ((p[j] - mean) * inv);
            }
        }
        if (gw)
            gw[c] += (float)sdyx;
        if (gb)
            gb[c] += (float)sdy;
        if (!dx[0])
            continue;
        float a = gamma[c] * inv;
        /* Training: dx = a * (dy - mean(dy) - xhat * mean(dy * xhat)), the
         * gradient through the batch mean and variance. Eval: dx = a * dy. */
        float k0 = bn->train ? (float)(sdy / M) : 0.0f;
        float k1 = bn->train ? (float)(sdyx / M) : 0.0f;
        for (int i = 0; i < N; i++) {
            const float *p = x[0]->data + ((long)i * C + c) * HW;
            const float *g = dy->data + ((long)i * C + c) * HW;
            float *o = dx[0]->data + ((long)i * C + c) * HW;
            if (assign)
                for (int j = 0; j < HW; j++)
                    o[j] = a * (g[j] - k0 - (p[j] - mean) * inv * k1);
            else
                for (int j = 0; j < HW; j++)
                    o[j] += a * (g[j] - k0 - (p[j] - mean) * inv * k1);
        }
    }
    return 0;
}

static int bn_tangent_forward(struct rn_layer *l, const struct rn_tensor *const *x,
                              const struct rn_tensor *const *tx, struct rn_tensor *ty,
                              const struct rn_ctx *ctx, struct rn_error *err)
{
    const struct batchnorm *bn = l->priv;
    if (rn_layer_check_eval_tangent(l, ctx, bn->train, "tangent forward", err))
        return -1;
    int N = x[0]->n, C = l->in[0].c, HW = l->in[0].h * l->in[0].w;
    const float *gamma = l->params[P_WEIGHT].value.data;
    ty->n = N;
#pragma omp parallel for if ((long)C * N * HW > 65536) schedule(static)
    for (int c = 0; c < C; c++) {
        float a = gamma[c] * bn->invstd[c];
        for (int i = 0; i < N; i++) {
            const float *t = tx[0]->data + ((long)i * C + c) * HW;
            float *o = ty->data + ((long)i * C + c) * HW;
            for (int j = 0; j < HW; j++)
                o[j] = a * t[j];
        }
    }
    return 0;
}

/* Eval mode, y = gamma * (x - mean) * inv + beta with fixed statistics:
 * tdx += gamma * inv * tdy, d(gw) = sum(tdy * xhat + dy * tx * inv),
 * d(gb) = sum(tdy). */
static int bn_tangent_backward(struct rn_layer *l, const struct rn_tensor *const *x,
                               const struct rn_tensor *const *tx, const struct rn_tensor *dy,
                               const struct rn_tensor *tdy, struct rn_tensor *const *tdx,
                               const struct rn_ctx *ctx, struct rn_error *err)
{
    const struct batchnorm *bn = l->priv;
    if (rn_layer_check_eval_tangent(l, ctx, bn->train, "tangent backward", err))
        return -1;
    int N = x[0]->n, C = l->in[0].c, HW = l->in[0].h * l->in[0].w;
    const float *gamma = l->params[P_WEIGHT].value.data;
    float *gw = l->params[P_WEIGHT].grad.data, *gb = l->params[P_BIAS].grad.data;
#pragma omp parallel for if ((long)C * N * HW > 65536) schedule(static)
    for (int c = 0; c < C; c++) {
        float mean = bn->mean[c], inv = bn->invstd[c], a = gamma[c] * inv;
        double sw = 0.0, sb = 0.0;
        for (int i = 0; i < N; i++) {
            long off = ((long)i * C + c) * HW;
            const float *p = x[0]->data + off, *t = tx[0]->data + off;
            const float *g = dy->data + off, *tg = tdy->data + off;
            for (int j = 0; j < HW; j++) {
                sw += (double)tg[j] * ((p[j] - mean) * inv) + (double)g[j] * t[j] * inv;
                sb += tg[j];
            }
            if (tdx[0]) {
                float *o = tdx[0]->data + off;
                for (int j = 0; j < HW; j++)
                    o[j] += a * tg[j];
            }
        }
        if (gw)
            gw[c] += (float)sw;
        if (gb)
            gb[c] += (float)sb;
    }
    return 0;
}

/* At inference the statistics and the affine fold into one scale and one
 * shift: 2 per element. */
static int64_t bn_flops(const struct rn_layer *l)
{
    return 2 * (int64_t)l->out.c * l->out.h * l->out.w;
}

const struct rn_layer_type rn_layer_batchnorm = {
    .name = "batchnorm",
    .doc = "batch normalisation over C, for (C,H,W) (BatchNorm2d) and (C,1,1) (BatchNorm1d) inputs",
    .keys = keys,
    .n_keys = (int)(sizeof keys / sizeof keys[0]),
    .n_inputs = 1,
    .build = bn_build,
    .init = bn_init,
    .forward = bn_forward,
    .backward = bn_backward,
    .backward_assigns = 1,
    .tangent_forward = bn_tangent_forward,
    .tangent_backward = bn_tangent_backward,
    .free = bn_free,
    .flops = bn_flops,
};
