/* kernels/cuda/layers/grl.c - the device kernels of grl (layers/grl.c): identity
 * forward, -alpha * dy backward. alpha is key 0, read at every call: the
 * training loop rewrites it per step.
 *
 * Conventions: common.h. */
#include "kernels/cuda/layers/common.h"

enum { GRL_K_ALPHA };

static int grl_forward(struct rn_layer *l, const struct rn_tensor *const *x, struct rn_tensor *y,
                       const struct rn_ctx *ctx, struct rn_error *err)
{
    struct rn_cuda *cu = rn_cuda_enter_forward(l, x, 1, y, "input", err);
    if (!cu)
        return -1;
    y->n = x[0]->n;
    return rn_cuda_copy_floats(cu, y->data, x[0]->data, rn_tensor_numel(x[0]), err);
}

static int grl_backward(struct rn_layer *l, const struct rn_tensor *const *x,
                        const struct rn_tensor *y, const struct rn_tensor *dy,
                        struct rn_tensor *const *dx, const struct rn_ctx *ctx, struct rn_error *err)
{
    struct rn_cuda *cu = rn_cuda_enter_backward(l, x, NULL, 1, dy, NULL, dx, err);
    if (!cu)
        return -1;
    const double alpha = l->v.num[GRL_K_ALPHA];
    /* alpha == 0 leaves dx untouched (not even -0 * inf). */
    if (dx && dx[0] && alpha != 0.0)
        RN_CUDA_CHECK(err, rn_cuda_axpy_acc((float)-alpha, dy->data, dx[0]->data,
                                            rn_tensor_numel(x[0]), cu->stream));
    return 0;
}

static int grl_tangent_forward(struct rn_layer *l, const struct rn_tensor *const *x,
                               const struct rn_tensor *const *tx, struct rn_tensor *ty,
                               const struct rn_ctx *ctx, struct rn_error *err)
{
    return grl_forward(l, tx, ty, ctx, err);
}

static int grl_tangent_backward(struct rn_layer *l, const struct rn_tensor *const *x,
                                const struct rn_tensor *const *tx, const struct rn_tensor *dy,
                                const struct rn_tensor *tdy, struct rn_tensor *const *tdx,
                                const struct rn_ctx *ctx, struct rn_error *err)
{
    return grl_backward(l, x, NULL, tdy, tdx, ctx, err);
}

const struct rn_layer_kernels rn_cuda_layer_grl = {
    .type = "grl",
    .prepare = rn_cuda_plain_prepare,
    .release = rn_cuda_plain_release,
    .forward = grl_forward,
    .backward = grl_backward,
    .tangent_forward = grl_tangent_forward,
    .tangent_backward = grl_tangent_backward,
};
