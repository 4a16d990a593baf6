/* layers/relu.c - max(x, 0), element-wise; any input shape.
 *
 * The derivative at exactly 0 is taken as 0 (x > 0), as in PyTorch. NaN
 * inputs propagate (x < 0 is false for NaN) so divergence stays visible. */
#include <stddef.h>

#include "runner/layer.h"

/* Below this many elements a thread team costs more than it saves. */
#define RN_RELU_OMP_MIN 32768

static int relu_build(struct rn_layer *l, int max_n, struct rn_error *err)
{
    l->out = l->in[0];
    return 0;
}

static int relu_forward(struct rn_layer *l, const struct rn_tensor *const *x, struct rn_tensor *y,
                        const struct rn_ctx *ctx, struct rn_error *err)
{
    const float *xp = x[0]->data;
    float *yp = y->data;
    long n = (long)rn_tensor_numel(x[0]);
    y->n = x[0]->n;
#pragma omp parallel for simd if (n > RN_RELU_OMP_MIN) schedule(static)
    for (long i = 0; i < n; i++)
        yp[i] = xp[i] < 0.0f ? 0.0f : xp[i];
    return 0;
}

/* out += g * (x > 0): the backward and both tangent passes are this one map. */
static void relu_mask_acc(const float *xp, const float *g, float *out, long n)
{
#pragma omp parallel for simd if (n > RN_RELU_OMP_MIN) schedule(static)
    for (long i = 0; i < n; i++)
        out[i] += xp[i] > 0.0f ? g[i] : 0.0f;
}

static int relu_backward(struct rn_layer *l, const struct rn_tensor *const *x,
                         const struct rn_tensor *y, const struct rn_tensor *dy,
                         struct rn_tensor *const *dx, const struct rn_ctx *ctx,
                         struct rn_error *err)
{
    if (dx[0] && ctx && (ctx->dx_assign & 1)) {
        const float *xp = x[0]->data, *g = dy->data;
        float *out = dx[0]->data;
        long n = (long)rn_tensor_numel(x[0]);
#pragma omp parallel for simd if (n > RN_RELU_OMP_MIN) schedule(static)
        for (long i = 0; i < n; i++)
            out[i] = xp[i] > 0.0f ? g[i] : 0.0f;
    } else if (dx[0]) {
        relu_mask_acc(x[0]->data, dy->data, dx[0]->data, (long)rn_tensor_numel(x[0]));
    }
    return 0;
}

static int relu_tangent_forward(struct rn_layer *l, const struct rn_tensor *const *x,
                                const struct rn_tensor *const *tx, struct rn_tensor *ty,
                                const struct rn_ctx *ctx, struct rn_error *err)
{
    const float *xp = x[0]->data, *tp = tx[0]->data;
    float *o = ty->data;
    long n = (long)rn_tensor_numel(x[0]);
    ty->n = x[0]->n;
#pragma omp parallel for simd if (n > RN_RELU_OMP_MIN) schedule(static)
    for (long i = 0; i < n; i++)
        o[i] = xp[i] > 0.0f ? tp[i] : 0.0f;
    return 0;
}

/* The Jacobian is constant between kinks, so the tangent of the backward is
 * the backward applied to tdy. */
static int relu_tangent_backward(struct rn_layer *l, const struct rn_tensor *const *x,
                                 const struct rn_tensor *const *tx, const struct rn_tensor *dy,
                                 const struct rn_tensor *tdy, struct rn_tensor *const *tdx,
                                 const struct rn_ctx *ctx, struct rn_error *err)
{
    if (tdx[0])
        relu_mask_acc(x[0]->data, tdy->data, tdx[0]->data, (long)rn_tensor_numel(x[0]));
    return 0;
}

/* One comparison per element. */
static int64_t relu_flops(const struct rn_layer *l)
{
    return (int64_t)l->out.c * l->out.h * l->out.w;
}

const struct rn_layer_type rn_layer_relu = {
    .name = "relu",
    .doc = "max(x, 0)",
    .n_inputs = 1,
    .build = relu_build,
    .forward = relu_forward,
    .backward = relu_backward,
    .backward_assigns = 1,
    .tangent_forward = relu_tangent_forward,
    .tangent_backward = relu_tangent_backward,
    .flops = relu_flops,
};
