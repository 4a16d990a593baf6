/* layers/add.c - element-wise sum of two inputs of the same shape (residual branches); from: [a,
 * b]. Linear with a constant Jacobian: both inputs receive dy, and the tangent of the backward is
 * the backward of tdy. */
#include "runner/layer.h"

static int add_build(struct rn_layer *l, int max_n, struct rn_error *err)
{
    if (l->n_in != 2)
        return rn_errorf(err, "add needs two inputs (from: [a, b]), got %d", l->n_in);
    struct rn_shape a = l->in[0], b = l->in[1];
    if (a.c != b.c || a.h != b.h || a.w != b.w)
        return rn_errorf(err,
                         "add needs two inputs of the same shape, got (%d,%d,%d) and (%d,%d,%d)",
                         a.c, a.h, a.w, b.c, b.h, b.w);
    l->out = a;
    return 0;
}

static void add_sum(const float *a, const float *b, float *out, long n)
{
#pragma omp parallel for simd if (n > 65536) schedule(static)
    for (long i = 0; i < n; i++)
        out[i] = a[i] + b[i];
}

static void add_acc(const float *g, float *out, long n)
{
#pragma omp parallel for simd if (n > 65536) schedule(static)
    for (long i = 0; i < n; i++)
        out[i] += g[i];
}

static void copy_parallel(const float *g, float *out, long n)
{
#pragma omp parallel for simd if (n > 65536) schedule(static)
    for (long i = 0; i < n; i++)
        out[i] = g[i];
}

static int add_forward(struct rn_layer *l, const struct rn_tensor *const *x, struct rn_tensor *y,
                       const struct rn_ctx *ctx, struct rn_error *err)
{
    y->n = x[0]->n;
    add_sum(x[0]->data, x[1]->data, y->data, (long)rn_tensor_numel(x[0]));
    return 0;
}

static int add_backward(struct rn_layer *l, const struct rn_tensor *const *x,
                        const struct rn_tensor *y, const struct rn_tensor *dy,
                        struct rn_tensor *const *dx, const struct rn_ctx *ctx, struct rn_error *err)
{
    long n = (long)rn_tensor_numel(x[0]);
    for (int i = 0; i < 2; i++)
        if (dx[i] && ctx && (ctx->dx_assign >> i & 1))
            copy_parallel(dy->data, dx[i]->data, n);
        else if (dx[i])
            add_acc(dy->data, dx[i]->data, n);
    return 0;
}

static int add_tangent_forward(struct rn_layer *l, const struct rn_tensor *const *x,
                               const struct rn_tensor *const *tx, struct rn_tensor *ty,
                               const struct rn_ctx *ctx, struct rn_error *err)
{
    ty->n = x[0]->n;
    add_sum(tx[0]->data, tx[1]->data, ty->data, (long)rn_tensor_numel(x[0]));
    return 0;
}

static int add_tangent_backward(struct rn_layer *l, const struct rn_tensor *const *x,
                                const struct rn_tensor *const *tx, const struct rn_tensor *dy,
                                const struct rn_tensor *tdy, struct rn_tensor *const *tdx,
                                const struct rn_ctx *ctx, struct rn_error *err)
{
    long n = (long)rn_tensor_numel(x[0]);
    for (int i = 0; i < 2; i++)
        if (tdx[i])
            add_acc(tdy->data, tdx[i]->data, n);
    return 0;
}

/* One addition per element. */
static int64_t add_flops(const struct rn_layer *l)
{
    return (int64_t)l->out.c * l->out.h * l->out.w;
}

const struct rn_layer_type rn_layer_add = {
    .name = "add",
    .doc = "element-wise sum of two inputs of the same shape (residual branches); from: [a, b]",
    .n_inputs = 2,
    .build = add_build,
    .forward = add_forward,
    .backward = add_backward,
    .backward_assigns = 1,
    .tangent_forward = add_tangent_forward,
    .tangent_backward = add_tangent_backward,
    .flops = add_flops,
};
