/* kernels/cuda/layers/flatten.c - the device kernels of flatten (layers/flatten.c): a
 * copy, since NCHW already is the flattened order.
 *
 * Conventions: common.h. */
#include "kernels/cuda/layers/common.h"

static int flatten_forward(struct rn_layer *l, const struct rn_tensor *const *x,
                           struct rn_tensor *y, const struct rn_ctx *ctx, struct rn_error *err)
{
    struct rn_cuda *cu = rn_cuda_enter_forward(l, x, 1, y, "input", err);
    if (!cu)
        return -1;
    y->n = x[0]->n;
    return rn_cuda_copy_floats(cu, y->data, x[0]->data, rn_tensor_numel(x[0]), err);
}

static int flatten_backward(struct rn_layer *l, const struct rn_tensor *const *x,
                            const struct rn_tensor *y, const struct rn_tensor *dy,
                            struct rn_tensor *const *dx, const struct rn_ctx *ctx,
                            struct rn_error *err)
{
    struct rn_cuda *cu = rn_cuda_enter_backward(l, x, NULL, 1, dy, NULL, dx, err);
    if (!cu)
        return -1;
    return rn_cuda_acc_into(cu, dy, dx ? dx[0] : NULL, rn_tensor_numel(x[0]), err);
}

static int flatten_tangent_forward(struct rn_layer *l, const struct rn_tensor *const *x,
                                   const struct rn_tensor *const *tx, struct rn_tensor *ty,
                                   const struct rn_ctx *ctx, struct rn_error *err)
{
    return flatten_forward(l, tx, ty, ctx, err);
}

static int flatten_tangent_backward(struct rn_layer *l, const struct rn_tensor *const *x,
                                    const struct rn_tensor *const *tx, const struct rn_tensor *dy,
                                    const struct rn_tensor *tdy, struct rn_tensor *const *tdx,
                                    const struct rn_ctx *ctx, struct rn_error *err)
{
    return flatten_backward(l, x, NULL, tdy, tdx, ctx, err);
}

const struct rn_layer_kernels rn_cuda_layer_flatten = {
    .type = "flatten",
    .prepare = rn_cuda_plain_prepare,
    .release = rn_cuda_plain_release,
    .forward = flatten_forward,
    .backward = flatten_backward,
    .tangent_forward = flatten_tangent_forward,
    .tangent_backward = flatten_tangent_backward,
};
