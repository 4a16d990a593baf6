/* kernels/cuda/layers/add.c - the device kernels of add (layers/add.c): y = x0 + x1;
 * the backward adds dy into both input gradients.
 *
 * Conventions: common.h. */
#include "kernels/cuda/layers/common.h"

static int add_forward(struct rn_layer *l, const struct rn_tensor *const *x, struct rn_tensor *y,
                       const struct rn_ctx *ctx, struct rn_error *err)
{
    struct rn_cuda *cu = rn_cuda_enter_forward(l, x, 2, y, "input", err);
    if (!cu)
        return -1;
    y->n = x[0]->n;
    RN_CUDA_CHECK(err,
                  rn_cuda_add(x[0]->data, x[1]->data, y->data, rn_tensor_numel(x[0]), cu->stream));
    return 0;
}

static int add_backward(struct rn_layer *l, const struct rn_tensor *const *x,
                        const struct rn_tensor *y, const struct rn_tensor *dy,
                        struct rn_tensor *const *dx, const struct rn_ctx *ctx, struct rn_error *err)
{
    struct rn_cuda *cu = rn_cuda_enter_backward(l, x, NULL, 2, dy, NULL, dx, err);
    if (!cu)
        return -1;
    const size_t n = rn_tensor_numel(x[0]);
    for (int i = 0; i < 2; i++)
        if (dx && rn_cuda_acc_into(cu, dy, dx[i], n, err))
            return -1;
    return 0;
}

static int add_tangent_forward(struct rn_layer *l, const struct rn_tensor *const *x,
                               const struct rn_tensor *const *tx, struct rn_tensor *ty,
                               const struct rn_ctx *ctx, struct rn_error *err)
{
    return add_forward(l, tx, ty, ctx, err);
}

static int add_tangent_backward(struct rn_layer *l, const struct rn_tensor *const *x,
                                const struct rn_tensor *const *tx, const struct rn_tensor *dy,
                                const struct rn_tensor *tdy, struct rn_tensor *const *tdx,
                                const struct rn_ctx *ctx, struct rn_error *err)
{
    return add_backward(l, x, NULL, tdy, tdx, ctx, err);
}

const struct rn_layer_kernels rn_cuda_layer_add = {
    .type = "add",
    .prepare = rn_cuda_plain_prepare,
    .release = rn_cuda_plain_release,
    .forward = add_forward,
    .backward = add_backward,
    .tangent_forward = add_tangent_forward,
    .tangent_backward = add_tangent_backward,
};
