/* layers/linear.c - fully connected layer (PyTorch Linear) on a (C,1,1) input.
 *
 * y (N, units) = x (N, C) W^T + b with W (units, C), all through the sgemm
 * wrappers of kernels/cpu/gemm.h. Linear is bilinear in (x, W), so the
 * tangent passes reuse the same products on tx / tdy.
 */
#include <math.h>
#include <stddef.h>

#include "kernels/cpu/gemm.h"
#include "runner/layer.h"

enum { K_UNITS, K_BIAS };

static const struct rn_key keys[] = {
    {"units", RN_KIND_INT, 1, 0.0, NULL, 1.0, 1048576.0, NULL, "output features"},
    {"bias", RN_KIND_BOOL, 0, 1.0, NULL, 0.0, 1.0, NULL, "learn a bias"},
};

/* params[0] is the weight, params[1] the bias when there is one. */
static struct rn_param *bias_of(struct rn_layer *l)
{
    return l->n_params > 1 ? &l->params[1] : NULL;
}

static int linear_build(struct rn_layer *l, int max_n, struct rn_error *err)
{
    const int units = (int)l->v.num[K_UNITS];
    const int has_bias = l->v.num[K_BIAS] != 0.0;
    const struct rn_shape in = l->in[0];
    if (in.h != 1 || in.w != 1)
        return rn_errorf(err,
                         "linear expects a vector input (C,1,1), got (%d,%d,%d); add flatten or "
                         "global_avg_pool before it",
                         in.c, in.h, in.w);
    rn_gemm_cpu_setup();
    l->max_n = max_n;
    l->out = (struct rn_shape){units, 1, 1};
    if (rn_layer_add_param(l, "weight", 2, units, in.c, 1, 1, 1, err) ||
        (has_bias && rn_layer_add_param(l, "bias", 1, units, 1, 1, 1, 1, err))) {
        for (int i = 0; i < l->n_params; i++) {
            rn_tensor_free(&l->params[i].value);
            rn_tensor_free(&l->params[i].grad);
        }
        l->n_params = 0;
        return -1;
    }
    return 0;
}

static void linear_init(struct rn_layer *l, struct rn_rng *rng)
{
    /* kaiming_uniform(a = sqrt(5)) gives bound 1 / sqrt(fan_in), as for the bias. */
    struct rn_tensor *w = &l->params[0].value;
    const float bound = 1.0f / sqrtf((float)w->c);
    for (size_t i = 0; i < rn_tensor_numel(w); i++)
        w->data[i] = (2.0f * rn_rng_uniform(rng) - 1.0f) * bound;
    struct rn_param *b = bias_of(l);
    if (b)
        for (size_t i = 0; i < rn_tensor_numel(&b->value); i++)
            b->value.data[i] = (2.0f * rn_rng_uniform(rng) - 1.0f) * bound;
}

static int linear_check(struct rn_layer *l, const struct rn_tensor *x, const char *what,
                        struct rn_error *err)
{
    if (x->c != l->in[0].c || x->h != 1 || x->w != 1 || x->n < 0 || x->n > l->max_n)
        return rn_errorf(err, "layer '%s' (linear): %s is (%d,%d,%d,%d), built for (<=%d,%d,1,1)",
                         l->name, what, x->n, x->c, x->h, x->w, l->max_n, l->in[0].c);
    return 0;
}

/* y (n, units) = x (n, C) W^T (+ bias). */
static void linear_apply(struct rn_layer *l, const struct rn_tensor *x, struct rn_tensor *y,
                         int with_bias)
{
    const int n = x->n, c = x->c, units = l->out.c;
    const struct rn_param *b = with_bias ? bias_of(l) : NULL;
    y->n = n;
    float beta = 0.0f;
    if (b) {
        for (int i = 0; i < n; i++)
            for (int u = 0; u < units; u++)
                y->data[(size_t)i * units + u] = b->value.data[u];
        beta = 1.0f;
    }
    rn_gemm_cpu_par(0, 1, n, units, c, 1.0f, x->data, c, l->params[0].value.data, c, beta, y->data,
                    units);
}

/* dW (units, C) += dy^T (units, n) x (n, C); dbias += column sums of dy;
 * dx (n, C) += dy (n, units) W (units, C). Each part is skipped when its
 * output is NULL. */
static void linear_grad(struct rn_layer *l, const struct rn_tensor *x, const float *dy, float *dx,
                        float *dw, float *db)
{
    const int n = x->n, c = x->c, units = l->out.c;
    if (dw)
        rn_gemm_cpu_par(1, 0, units, c, n, 1.0f, dy, units, x->data, c, 1.0f, dw, c);
    if (db)
        for (int i = 0; i < n; i++)
            for (int u = 0; u < units; u++)
                db[u] += dy[(size_t)i * units + u];
    if (dx)
        rn_gemm_cpu_par(0, 0, n, c, units, 1.0f, dy, units, l->params[0].value.data, c, 1.0f, dx,
                        c);
}

static int linear_forward(struct rn_layer *l, const struct rn_tensor *const *x, struct rn_tensor *y,
                          const struct rn_ctx *ctx, struct rn_error *err)
{
    if (linear_check(l, x[0], "input", err))
        return -1;
    linear_apply(l, x[0], y, 1);
    return 0;
}

static int linear_backward(struct rn_layer *l, const struct rn_tensor *const *x,
                           const struct rn_tensor *y, const struct rn_tensor *dy,
                           struct rn_tensor *const *dx, const struct rn_ctx *ctx,
                           struct rn_error *err)
{
    if (linear_check(l, x[0], "input", err))
        return -1;
    struct rn_param *b = bias_of(l);
    int params = !ctx || !ctx->input_grad_only;
    linear_grad(l, x[0], dy->data, dx && dx[0] ? dx[0]->data : NULL,
                params ? l->params[0].grad.data : NULL, params && b ? b->grad.data : NULL);
    return 0;
}

static int linear_tangent_forward(struct rn_layer *l, const struct rn_tensor *const *x,
                                  const struct rn_tensor *const *tx, struct rn_tensor *ty,
                                  const struct rn_ctx *ctx, struct rn_error *err)
{
    if (linear_check(l, tx[0], "tangent input", err))
        return -1;
    linear_apply(l, tx[0], ty, 0);
    return 0;
}

static int linear_tangent_backward(struct rn_layer *l, const struct rn_tensor *const *x,
                                   const struct rn_tensor *const *tx, const struct rn_tensor *dy,
                                   const struct rn_tensor *tdy, struct rn_tensor *const *tdx,
                                   const struct rn_ctx *ctx, struct rn_error *err)
{
    if (linear_check(l, x[0], "input", err) || linear_check(l, tx[0], "tangent input", err))
        return -1;
    /* tdx += tdy W; dW += tdy^T x + dy^T tx; dbias += sum(tdy). */
    struct rn_param *b = bias_of(l);
    linear_grad(l, x[0], tdy->data, tdx && tdx[0] ? tdx[0]->data : NULL, l->params[0].grad.data,
                b ? b->grad.data : NULL);
    linear_grad(l, tx[0], dy->data, NULL, l->params[0].grad.data, NULL);
    return 0;
}

/* A multiply-add per weight; the bias adds one per output. */
static int64_t linear_flops(const struct rn_layer *l)
{
    const int64_t units = l->out.c;
    return 2 * units * l->in[0].c + (l->v.num[K_BIAS] != 0.0 ? units : 0);
}

const struct rn_layer_type rn_layer_linear = {
    .name = "linear",
    .doc = "fully connected layer (PyTorch Linear) on a (C,1,1) input",
    .keys = keys,
    .n_keys = (int)(sizeof keys / sizeof keys[0]),
    .n_inputs = 1,
    .build = linear_build,
    .init = linear_init,
    .forward = linear_forward,
    .backward = linear_backward,
    .tangent_forward = linear_tangent_forward,
    .tangent_backward = linear_tangent_backward,
    .flops = linear_flops,
};
