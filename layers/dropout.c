/* layers/dropout.c - inverted dropout (PyTorch): zero with probability p and scale by 1/(1-p) in
 * training.
 *
 * In training the mask is drawn from the stream (seed, RN_STREAM_DROPOUT,
 * step*1024 + node), one uniform per element in memory order, element kept
 * when u >= p. A mask thus depends only on the run seed, the step and the
 * node, not on threads or on how often the pass is repeated (the gradient
 * checks and a recomputed forward see the same mask). In eval mode the layer
 * is the identity. The forward saves the scaled mask (0 or 1/(1-p)) for the
 * backward and the tangent passes. */
#include <stdlib.h>
#include <string.h>

#include "runner/layer.h"

enum { KEY_P };

static const struct rn_key keys[] = {
    {"p", RN_KIND_FLOAT, 0, 0.5, NULL, 0.0, 0.999, NULL, "drop probability"},
};

struct dropout {
    float *mask; /* (max_n, C, H, W): 0 or 1/(1-p), from the last training forward */
    int train;   /* mode of the last forward: backward and tangents follow it */
};

static int dropout_build(struct rn_layer *l, int max_n, struct rn_error *err)
{
    struct rn_shape in = l->in[0];
    l->out = in;
    struct dropout *d = rn_calloc(1, sizeof *d, err);
    if (!d)
        return -1;
    d->mask = rn_calloc((size_t)max_n * in.c * in.h * in.w, sizeof *d->mask, err);
    if (!d->mask) {
        free(d);
        return -1;
    }
    l->priv = d;
    return 0;
}

static void dropout_free(struct rn_layer *l)
{
    struct dropout *d = l->priv;
    if (d)
        free(d->mask);
    free(d);
}

/* out = m * g (set) or out += m * g (acc); the identity in eval mode. */
static void dropout_apply(const struct dropout *d, const float *g, float *out, long n, int acc)
{
    const float *m = d->mask;
    if (!d->train) {
        if (acc) {
#pragma omp parallel for simd if (n > 65536) schedule(static)
            for (long i = 0; i < n; i++)
                out[i] += g[i];
        } else if (out != g) {
            memcpy(out, g, (size_t)n * sizeof *out);
        }
        return;
    }
    if (acc) {
#pragma omp parallel for simd if (n > 65536) schedule(static)
        for (long i = 0; i < n; i++)
            out[i] += m[i] * g[i];
    } else {
#pragma omp parallel for simd if (n > 65536) schedule(static)
        for (long i = 0; i < n; i++)
            out[i] = m[i] * g[i];
    }
}

static int dropout_forward(struct rn_layer *l, const struct rn_tensor *const *x,
                           struct rn_tensor *y, const struct rn_ctx *ctx, struct rn_error *err)
{
    struct dropout *d = l->priv;
    double p = l->v.num[KEY_P];
    long n = (long)rn_tensor_numel(x[0]);
    y->n = x[0]->n;
    d->train = ctx->train != 0;
    if (d->train) {
        /* Sequential on purpose: the mask is one stream in element order. */
        struct rn_rng r;
        rn_rng_init(&r, ctx->seed, RN_STREAM_DROPOUT, ctx->step * 1024 + (uint64_t)ctx->node);
        float scale = (float)(1.0 / (1.0 - p));
        for (long i = 0; i < n; i++)
            d->mask[i] = rn_rng_uniform(&r) >= p ? scale : 0.0f;
    }
    dropout_apply(d, x[0]->data, y->data, n, 0);
    return 0;
}

static int dropout_backward(struct rn_layer *l, const struct rn_tensor *const *x,
                            const struct rn_tensor *y, const struct rn_tensor *dy,
                            struct rn_tensor *const *dx, const struct rn_ctx *ctx,
                            struct rn_error *err)
{
    if (rn_layer_check_mode(l, ctx, ((const struct dropout *)l->priv)->train, "backward", err))
        return -1;
    if (dx[0])
        dropout_apply(l->priv, dy->data, dx[0]->data, (long)rn_tensor_numel(x[0]), 1);
    return 0;
}

static int dropout_tangent_forward(struct rn_layer *l, const struct rn_tensor *const *x,
                                   const struct rn_tensor *const *tx, struct rn_tensor *ty,
                                   const struct rn_ctx *ctx, struct rn_error *err)
{
    if (rn_layer_check_mode(l, ctx, ((const struct dropout *)l->priv)->train, "tangent forward",
                            err))
        return -1;
    ty->n = x[0]->n;
    dropout_apply(l->priv, tx[0]->data, ty->data, (long)rn_tensor_numel(x[0]), 0);
    return 0;
}

static int dropout_tangent_backward(struct rn_layer *l, const struct rn_tensor *const *x,
                                    const struct rn_tensor *const *tx, const struct rn_tensor *dy,
                                    const struct rn_tensor *tdy, struct rn_tensor *const *tdx,
                                    const struct rn_ctx *ctx, struct rn_error *err)
{
    if (rn_layer_check_mode(l, ctx, ((const struct dropout *)l->priv)->train, "tangent backward",
                            err))
        return -1;
    if (tdx[0])
        dropout_apply(l->priv, tdy->data, tdx[0]->data, (long)rn_tensor_numel(x[0]), 1);
    return 0;
}

/* The identity at inference. */
static int64_t dropout_flops(const struct rn_layer *l)
{
    (void)l;
    return 0;
}

const struct rn_layer_type rn_layer_dropout = {
    .name = "dropout",
    .doc = "inverted dropout (PyTorch): zero with probability p and scale by 1/(1-p) in training",
    .keys = keys,
    .n_keys = (int)(sizeof keys / sizeof keys[0]),
    .n_inputs = 1,
    .build = dropout_build,
    .forward = dropout_forward,
    .backward = dropout_backward,
    .tangent_forward = dropout_tangent_forward,
    .tangent_backward = dropout_tangent_backward,
    .free = dropout_free,
    .flops = dropout_flops,
};
