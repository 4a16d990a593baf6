/* kernels/cuda/layers/global_avg_pool.c - the device kernels of global_avg_pool
 * (layers/global_avg_pool.c): plane means in double (global_avg_pool.cu).
 *
 * Conventions: common.h. */
#include "kernels/cuda/layers/common.h"

static int gap_forward(struct rn_layer *l, const struct rn_tensor *const *x, struct rn_tensor *y,
                       const struct rn_ctx *ctx, struct rn_error *err)
{
    struct rn_cuda *cu = rn_cuda_enter_forward(l, x, 1, y, "input", err);
    if (!cu)
        return -1;
    y->n = x[0]->n;
    RN_CUDA_CHECK(err, rn_cuda_gap_forward(x[0]->data, y->data, (size_t)x[0]->n * l->in[0].c,
                                           l->in[0].h * l->in[0].w, cu->stream));
    return 0;
}

static int gap_backward(struct rn_layer *l, const struct rn_tensor *const *x,
                        const struct rn_tensor *y, const struct rn_tensor *dy,
                        struct rn_tensor *const *dx, const struct rn_ctx *ctx, struct rn_error *err)
{
    struct rn_cuda *cu = rn_cuda_enter_backward(l, x, NULL, 1, dy, NULL, dx, err);
    if (!cu)
        return -1;
    if (dx && dx[0])
        RN_CUDA_CHECK(err,
                      rn_cuda_gap_backward_acc(dy->data, dx[0]->data, (size_t)x[0]->n * l->in[0].c,
                                               l->in[0].h * l->in[0].w, cu->stream));
    return 0;
}

static int gap_tangent_forward(struct rn_layer *l, const struct rn_tensor *const *x,
                               const struct rn_tensor *const *tx, struct rn_tensor *ty,
                               const struct rn_ctx *ctx, struct rn_error *err)
{
    return gap_forward(l, tx, ty, ctx, err);
}

static int gap_tangent_backward(struct rn_layer *l, const struct rn_tensor *const *x,
                                const struct rn_tensor *const *tx, const struct rn_tensor *dy,
                                const struct rn_tensor *tdy, struct rn_tensor *const *tdx,
                                const struct rn_ctx *ctx, struct rn_error *err)
{
    return gap_backward(l, x, NULL, tdy, tdx, ctx, err);
}

const struct rn_layer_kernels rn_cuda_layer_global_avg_pool = {
    .type = "global_avg_pool",
    .prepare = rn_cuda_plain_prepare,
    .release = rn_cuda_plain_release,
    .forward = gap_forward,
    .backward = gap_backward,
    .tangent_forward = gap_tangent_forward,
    .tangent_backward = gap_tangent_backward,
};
