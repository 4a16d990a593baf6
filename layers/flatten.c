/* layers/flatten.c - (C,H,W) -> (C*H*W,1,1), no copy of meaning, same memory order as
 * torch.flatten.
 *
 * A (N,C,H,W) tensor in NCHW order already is torch.flatten(x, 1) in memory,
 * so every pass is a copy (forward) or an accumulate (backward). */
#include <string.h>

#include "runner/layer.h"

static int flatten_build(struct rn_layer *l, int max_n, struct rn_error *err)
{
    struct rn_shape in = l->in[0];
    l->out.c = in.c * in.h * in.w;
    l->out.h = 1;
    l->out.w = 1;
    return 0;
}

static void flatten_acc(const float *g, float *out, long n)
{
#pragma omp parallel for simd if (n > 65536) schedule(static)
    for (long i = 0; i < n; i++)
        out[i] += g[i];
}

static int flatten_forward(struct rn_layer *l, const struct rn_tensor *const *x,
                           struct rn_tensor *y, const struct rn_ctx *ctx, struct rn_error *err)
{
    y->n = x[0]->n;
    if (y->data != x[0]->data)
        memcpy(y->data, x[0]->data, rn_tensor_numel(x[0]) * sizeof(float));
    return 0;
}

static int flatten_backward(struct rn_layer *l, const struct rn_tensor *const *x,
                            const struct rn_tensor *y, const struct rn_tensor *dy,
                            struct rn_tensor *const *dx, const struct rn_ctx *ctx,
                            struct rn_error *err)
{
    if (dx[0])
        flatten_acc(dy->data, dx[0]->data, (long)rn_tensor_numel(x[0]));
    return 0;
}

static int flatten_tangent_forward(struct rn_layer *l, const struct rn_tensor *const *x,
                                   const struct rn_tensor *const *tx, struct rn_tensor *ty,
                                   const struct rn_ctx *ctx, struct rn_error *err)
{
    ty->n = x[0]->n;
    if (ty->data != tx[0]->data)
        memcpy(ty->data, tx[0]->data, rn_tensor_numel(x[0]) * sizeof(float));
    return 0;
}

static int flatten_tangent_backward(struct rn_layer *l, const struct rn_tensor *const *x,
                                    const struct rn_tensor *const *tx, const struct rn_tensor *dy,
                                    const struct rn_tensor *tdy, struct rn_tensor *const *tdx,
                                    const struct rn_ctx *ctx, struct rn_error *err)
{
    if (tdx[0])
        flatten_acc(tdy->data, tdx[0]->data, (long)rn_tensor_numel(x[0]));
    return 0;
}

/* A reshape: no arithmetic. */
static int64_t flatten_flops(const struct rn_layer *l)
{
    (void)l;
    return 0;
}

const struct rn_layer_type rn_layer_flatten = {
    .name = "flatten",
    .doc = "(C,H,W) -> (C*H*W,1,1), no copy of meaning, same memory order as torch.flatten",
    .n_inputs = 1,
    .build = flatten_build,
    .forward = flatten_forward,
    .backward = flatten_backward,
    .tangent_forward = flatten_tangent_forward,
    .tangent_backward = flatten_tangent_backward,
    .flops = flatten_flops,
};
