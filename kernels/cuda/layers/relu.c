/* kernels/cuda/layers/relu.c - the device kernels of relu (layers/relu.c): max(x, 0)
 * and the x > 0 mask, in relu.cu.
 *
 * Conventions: common.h. */
#include "kernels/cuda/layers/common.h"

static int relu_forward(struct rn_layer *l, const struct rn_tensor *const *x, struct rn_tensor *y,
                        const struct rn_ctx *ctx, struct rn_error *err)
{
    struct rn_cuda *cu = rn_cuda_enter_forward(l, x, 1, y, "input", err);
    if (!cu)
        return -1;
    y->n = x[0]->n;
    RN_CUDA_CHECK(err,
                  rn_cuda_relu_forward(x[0]->data, y->data, rn_tensor_numel(x[0]), cu->stream));
    return 0;
}

static int relu_backward(struct rn_layer *l, const struct rn_tensor *const *x,
                         const struct rn_tensor *y, const struct rn_tensor *dy,
                         struct rn_tensor *const *dx, const struct rn_ctx *ctx,
                         struct rn_error *err)
{
    struct rn_cuda *cu = rn_cuda_enter_backward(l, x, NULL, 1, dy, NULL, dx, err);
    if (!cu)
        return -1;
    if (dx && dx[0])
        RN_CUDA_CHECK(err, rn_cuda_relu_mask_acc(x[0]->data, dy->data, dx[0]->data,
                                                 rn_tensor_numel(x[0]), cu->stream));
    return 0;
}

static int relu_tangent_forward(struct rn_layer *l, const struct rn_tensor *const *x,
                                const struct rn_tensor *const *tx, struct rn_tensor *ty,
                                const struct rn_ctx *ctx, struct rn_error *err)
{
    struct rn_cuda *cu = rn_cuda_enter_forward(l, x, 1, ty, "input", err);
    if (!cu || rn_cuda_check_input(l, tx[0], 0, x[0]->n, "tangent input", err))
        return -1;
    ty->n = x[0]->n;
    RN_CUDA_CHECK(err, rn_cuda_relu_mask(x[0]->data, tx[0]->data, ty->data, rn_tensor_numel(x[0]),
                                         cu->stream));
    return 0;
}

/* The Jacobian is constant between kinks: the tangent of the backward is
 * the backward applied to tdy. */
static int relu_tangent_backward(struct rn_layer *l, const struct rn_tensor *const *x,
                                 const struct rn_tensor *const *tx, const struct rn_tensor *dy,
                                 const struct rn_tensor *tdy, struct rn_tensor *const *tdx,
                                 const struct rn_ctx *ctx, struct rn_error *err)
{
    struct rn_cuda *cu = rn_cuda_enter_backward(l, x, NULL, 1, tdy, NULL, tdx, err);
    if (!cu)
        return -1;
    if (tdx && tdx[0])
        RN_CUDA_CHECK(err, rn_cuda_relu_mask_acc(x[0]->data, tdy->data, tdx[0]->data,
                                                 rn_tensor_numel(x[0]), cu->stream));
    return 0;
}

const struct rn_layer_kernels rn_cuda_layer_relu = {
    .type = "relu",
    .prepare = rn_cuda_plain_prepare,
    .release = rn_cuda_plain_release,
    .forward = relu_forward,
    .backward = relu_backward,
    .tangent_forward = relu_tangent_forward,
    .tangent_backward = relu_tangent_backward,
};
