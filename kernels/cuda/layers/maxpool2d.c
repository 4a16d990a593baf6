/* kernels/cuda/layers/maxpool2d.c - the device kernels of maxpool2d
 * (layers/maxpool2d.c), in maxpool2d.cu: the forward keeps each output's
 * first argmax (the CPU's tie rule) on the device for the backward and the
 * tangents.
 *
 * Conventions: common.h. */
#include <stdint.h>
#include <stdlib.h>

#include "kernels/cuda/layers/common.h"

struct maxpool_dp {
    struct rn_cuda_dp_base base;
    int32_t *arg; /* (max_n, C, Hout, Wout): first argmax within the input plane */
};

static void maxpool_release(struct rn_layer *l)
{
    struct maxpool_dp *d = l->dpriv;
    if (!d)
        return;
    if (d->arg)
        cudaFree(d->arg);
    free(d);
    l->dpriv = NULL;
}

static int maxpool_prepare(struct rn_layer *l, int max_n, struct rn_error *err)
{
    struct maxpool_dp *d = rn_calloc(1, sizeof *d, err);
    if (!d)
        return -1;
    d->base.max_n = max_n;
    l->dpriv = d;
    if (rn_cuda_state_alloc((void **)&d->arg,
                            (size_t)max_n * rn_cuda_shape_numel(l->out) * sizeof *d->arg, err)) {
        maxpool_release(l);
        return -1;
    }
    return 0;
}

static int maxpool_forward(struct rn_layer *l, const struct rn_tensor *const *x,
                           struct rn_tensor *y, const struct rn_ctx *ctx, struct rn_error *err)
{
    struct rn_cuda *cu = rn_cuda_enter_forward(l, x, 1, y, "input", err);
    if (!cu)
        return -1;
    const struct maxpool_dp *d = l->dpriv;
    const struct rn_cuda_pool_geom g = rn_cuda_pool_geom_of(l, x[0]->n);
    y->n = x[0]->n;
    RN_CUDA_CHECK(err, rn_cuda_maxpool_forward(&g, x[0]->data, y->data, d->arg, cu->stream));
    return 0;
}

static int maxpool_backward(struct rn_layer *l, const struct rn_tensor *const *x,
                            const struct rn_tensor *y, const struct rn_tensor *dy,
                            struct rn_tensor *const *dx, const struct rn_ctx *ctx,
                            struct rn_error *err)
{
    struct rn_cuda *cu = rn_cuda_enter_backward(l, x, NULL, 1, dy, NULL, dx, err);
    if (!cu)
        return -1;
    const struct maxpool_dp *d = l->dpriv;
    const struct rn_cuda_pool_geom g = rn_cuda_pool_geom_of(l, x[0]->n);
    if (dx && dx[0])
        RN_CUDA_CHECK(err,
                      rn_cuda_maxpool_backward_acc(&g, d->arg, dy->data, dx[0]->data, cu->stream));
    return 0;
}

static int maxpool_tangent_forward(struct rn_layer *l, const struct rn_tensor *const *x,
                                   const struct rn_tensor *const *tx, struct rn_tensor *ty,
                                   const struct rn_ctx *ctx, struct rn_error *err)
{
    struct rn_cuda *cu = rn_cuda_enter_forward(l, x, 1, ty, "input", err);
    if (!cu || rn_cuda_check_input(l, tx[0], 0, x[0]->n, "tangent input", err))
        return -1;
    const struct maxpool_dp *d = l->dpriv;
    const struct rn_cuda_pool_geom g = rn_cuda_pool_geom_of(l, x[0]->n);
    ty->n = x[0]->n;
    RN_CUDA_CHECK(err, rn_cuda_maxpool_gather(&g, d->arg, tx[0]->data, ty->data, cu->stream));
    return 0;
}

static int maxpool_tangent_backward(struct rn_layer *l, const struct rn_tensor *const *x,
                                    const struct rn_tensor *const *tx, const struct rn_tensor *dy,
                                    const struct rn_tensor *tdy, struct rn_tensor *const *tdx,
                                    const struct rn_ctx *ctx, struct rn_error *err)
{
    struct rn_cuda *cu = rn_cuda_enter_backward(l, x, NULL, 1, tdy, NULL, tdx, err);
    if (!cu)
        return -1;
    const struct maxpool_dp *d = l->dpriv;
    const struct rn_cuda_pool_geom g = rn_cuda_pool_geom_of(l, x[0]->n);
    if (tdx && tdx[0])
        RN_CUDA_CHECK(
            err, rn_cuda_maxpool_backward_acc(&g, d->arg, tdy->data, tdx[0]->data, cu->stream));
    return 0;
}

const struct rn_layer_kernels rn_cuda_layer_maxpool2d = {
    .type = "maxpool2d",
    .prepare = maxpool_prepare,
    .release = maxpool_release,
    .forward = maxpool_forward,
    .backward = maxpool_backward,
    .tangent_forward = maxpool_tangent_forward,
    .tangent_backward = maxpool_tangent_backward,
};
