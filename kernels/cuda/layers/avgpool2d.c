/* kernels/cuda/layers/avgpool2d.c - the device kernels of avgpool2d (layers/avgpool2d.c):
 * window means, padded zeros counted (avgpool2d.cu). Linear: the tangents are
 * the same maps.
 *
 * Conventions: common.h. */
#include "kernels/cuda/layers/common.h"

static int avgpool_forward(struct rn_layer *l, const struct rn_tensor *const *x,
                           struct rn_tensor *y, const struct rn_ctx *ctx, struct rn_error *err)
{
    struct rn_cuda *cu = rn_cuda_enter_forward(l, x, 1, y, "input", err);
    if (!cu)
        return -1;
    const struct rn_cuda_pool_geom g = rn_cuda_pool_geom_of(l, x[0]->n);
    y->n = x[0]->n;
    RN_CUDA_CHECK(err, rn_cuda_avgpool_forward(&g, x[0]->data, y->data, cu->stream));
    return 0;
}

static int avgpool_backward(struct rn_layer *l, const struct rn_tensor *const *x,
                            const struct rn_tensor *y, const struct rn_tensor *dy,
                            struct rn_tensor *const *dx, const struct rn_ctx *ctx,
                            struct rn_error *err)
{
    struct rn_cuda *cu = rn_cuda_enter_backward(l, x, NULL, 1, dy, NULL, dx, err);
    if (!cu)
        return -1;
    const struct rn_cuda_pool_geom g = rn_cuda_pool_geom_of(l, x[0]->n);
    if (dx && dx[0])
        RN_CUDA_CHECK(err, rn_cuda_avgpool_backward_acc(&g, dy->data, dx[0]->data, cu->stream));
    return 0;
}

static int avgpool_tangent_forward(struct rn_layer *l, const struct rn_tensor *const *x,
                                   const struct rn_tensor *const *tx, struct rn_tensor *ty,
                                   const struct rn_ctx *ctx, struct rn_error *err)
{
    return avgpool_forward(l, tx, ty, ctx, err);
}

static int avgpool_tangent_backward(struct rn_layer *l, const struct rn_tensor *const *x,
                                    const struct rn_tensor *const *tx, const struct rn_tensor *dy,
                                    const struct rn_tensor *tdy, struct rn_tensor *const *tdx,
                                    const struct rn_ctx *ctx, struct rn_error *err)
{
    return avgpool_backward(l, x, NULL, tdy, tdx, ctx, err);
}

const struct rn_layer_kernels rn_cuda_layer_avgpool2d = {
    .type = "avgpool2d",
    .prepare = rn_cuda_plain_prepare,
    .release = rn_cuda_plain_release,
    .forward = avgpool_forward,
    .backward = avgpool_backward,
    .tangent_forward = avgpool_tangent_forward,
    .tangent_backward = avgpool_tangent_backward,
};
