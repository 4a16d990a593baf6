/* kernels/cuda/layers/dropout.c - the device kernels of dropout
 * (layers/dropout.c), in dropout.cu.
 *
 * The mask is the CPU's, bit for bit: the same stream (seed, RN_STREAM_DROPOUT,
 * step*1024 + node), one uniform per element in memory order, kept when
 * u >= p; the kernel reaches element i by PCG skip-ahead.
 *
 * Conventions: common.h. */
#include <stdint.h>
#include <stdlib.h>

#include "kernels/cuda/layers/common.h"
#include "runner/rng.h"

enum { DROPOUT_K_P };

struct dropout_dp {
    struct rn_cuda_dp_base base;
    float *mask; /* (max_n, C, H, W): 0 or 1/(1-p), from the last training forward */
    int train;   /* mode of the last forward: backward and tangents follow it */
};

static void dropout_release(struct rn_layer *l)
{
    struct dropout_dp *d = l->dpriv;
    if (!d)
        return;
    if (d->mask)
        cudaFree(d->mask);
    free(d);
    l->dpriv = NULL;
}

static int dropout_prepare(struct rn_layer *l, int max_n, struct rn_error *err)
{
    struct dropout_dp *d = rn_calloc(1, sizeof *d, err);
    if (!d)
        return -1;
    d->base.max_n = max_n;
    l->dpriv = d;
    if (rn_cuda_state_alloc((void **)&d->mask,
                            (size_t)max_n * rn_cuda_shape_numel(l->in[0]) * sizeof *d->mask, err)) {
        dropout_release(l);
        return -1;
    }
    return 0;
}

/* out = m * g (set) or out += m * g (acc); the identity in eval mode. */
static int dropout_apply(struct rn_cuda *cu, const struct dropout_dp *d, const float *g, float *out,
                         size_t n, int acc, struct rn_error *err)
{
    if (!d->train) {
        if (acc)
            RN_CUDA_CHECK(err, rn_cuda_axpy_acc(1.0f, g, out, n, cu->stream));
        else
            return rn_cuda_copy_floats(cu, out, g, n, err);
        return 0;
    }
    if (acc)
        RN_CUDA_CHECK(err, rn_cuda_mul_acc(d->mask, g, out, n, cu->stream));
    else
        RN_CUDA_CHECK(err, rn_cuda_mul(d->mask, g, out, n, cu->stream));
    return 0;
}

static int dropout_forward(struct rn_layer *l, const struct rn_tensor *const *x,
                           struct rn_tensor *y, const struct rn_ctx *ctx, struct rn_error *err)
{
    struct rn_cuda *cu = rn_cuda_enter_forward(l, x, 1, y, "input", err);
    if (!cu)
        return -1;
    struct dropout_dp *d = l->dpriv;
    const double p = l->v.num[DROPOUT_K_P];
    const size_t n = rn_tensor_numel(x[0]);
    y->n = x[0]->n;
    d->train = ctx->train != 0;
    if (d->train) {
        struct rn_rng r;
        rn_rng_init(&r, ctx->seed, RN_STREAM_DROPOUT, ctx->step * 1024 + (uint64_t)ctx->node);
        const float scale = (float)(1.0 / (1.0 - p));
        RN_CUDA_CHECK(err, rn_cuda_dropout_mask(d->mask, n, r.state, r.inc, p, scale, cu->stream));
    }
    return dropout_apply(cu, d, x[0]->data, y->data, n, 0, err);
}

static int dropout_backward(struct rn_layer *l, const struct rn_tensor *const *x,
                            const struct rn_tensor *y, const struct rn_tensor *dy,
                            struct rn_tensor *const *dx, const struct rn_ctx *ctx,
                            struct rn_error *err)
{
    struct rn_cuda *cu = rn_cuda_enter_backward(l, x, NULL, 1, dy, NULL, dx, err);
    if (!cu ||
        rn_layer_check_mode(l, ctx, ((const struct dropout_dp *)l->dpriv)->train, "backward", err))
        return -1;
    if (dx && dx[0])
        return dropout_apply(cu, l->dpriv, dy->data, dx[0]->data, rn_tensor_numel(x[0]), 1, err);
    return 0;
}

static int dropout_tangent_forward(struct rn_layer *l, const struct rn_tensor *const *x,
                                   const struct rn_tensor *const *tx, struct rn_tensor *ty,
                                   const struct rn_ctx *ctx, struct rn_error *err)
{
    struct rn_cuda *cu = rn_cuda_enter_forward(l, x, 1, ty, "input", err);
    if (!cu || rn_cuda_check_input(l, tx[0], 0, x[0]->n, "tangent input", err) ||
        rn_layer_check_mode(l, ctx, ((const struct dropout_dp *)l->dpriv)->train, "tangent forward",
                            err))
        return -1;
    ty->n = x[0]->n;
    return dropout_apply(cu, l->dpriv, tx[0]->data, ty->data, rn_tensor_numel(x[0]), 0, err);
}

static int dropout_tangent_backward(struct rn_layer *l, const struct rn_tensor *const *x,
                                    const struct rn_tensor *const *tx, const struct rn_tensor *dy,
                                    const struct rn_tensor *tdy, struct rn_tensor *const *tdx,
                                    const struct rn_ctx *ctx, struct rn_error *err)
{
    struct rn_cuda *cu = rn_cuda_enter_backward(l, x, NULL, 1, tdy, NULL, tdx, err);
    if (!cu || rn_layer_check_mode(l, ctx, ((const struct dropout_dp *)l->dpriv)->train,
                                   "tangent backward", err))
        return -1;
    if (tdx && tdx[0])
        return dropout_apply(cu, l->dpriv, tdy->data, tdx[0]->data, rn_tensor_numel(x[0]), 1, err);
    return 0;
}

const struct rn_layer_kernels rn_cuda_layer_dropout = {
    .type = "dropout",
    .prepare = dropout_prepare,
    .release = dropout_release,
    .forward = dropout_forward,
    .backward = dropout_backward,
    .tangent_forward = dropout_tangent_forward,
    .tangent_backward = dropout_tangent_backward,
};
