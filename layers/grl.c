/* layers/grl.c - gradient reversal (Ganin & Lempitsky, DANN): identity forward, -alpha * dy
 * backward.
 *
 * The layer between the backbone's features and an adversary head (Task 4,
 * M3): the head learns to predict the colour while the backbone, receiving
 * the reversed gradient, learns to hide it. Its backward is deliberately not
 * the gradient of its forward. Both passes are linear, so the tangent passes
 * are the same maps on tx and tdy.
 *
 * alpha is key 0 (l->v.num[0]): the training loop writes it before each step
 * from the run's schedule (constant, linear ramp with cap, DANN sigmoid);
 * the YAML value is the start. alpha = 0 blocks the gradient entirely. */
#include <string.h>

#include "runner/layer.h"

enum { KEY_ALPHA }; /* index 0: the training loop writes l->v.num[KEY_ALPHA] */

static const struct rn_key keys[] = {
    {"alpha", RN_KIND_FLOAT, 0, 1.0, NULL, 0.0, 1000.0, NULL,
     "gradient scale: backward passes -alpha * dy (0 blocks); a schedule may set it per step"},
};

static int grl_build(struct rn_layer *l, int max_n, struct rn_error *err)
{
    l->out = l->in[0];
    return 0;
}

static void copy_to(const struct rn_tensor *x, struct rn_tensor *y)
{
    y->n = x->n;
    if (y->data != x->data)
        memcpy(y->data, x->data, rn_tensor_numel(x) * sizeof(float));
}

/* out += -alpha * g; alpha == 0 leaves out untouched (not even -0 * inf). */
static void reverse_acc(double alpha, const float *g, float *out, long n)
{
    if (alpha == 0.0)
        return;
    const float a = (float)-alpha;
#pragma omp parallel for simd if (n > 65536) schedule(static)
    for (long i = 0; i < n; i++)
        out[i] += a * g[i];
}

static int grl_forward(struct rn_layer *l, const struct rn_tensor *const *x, struct rn_tensor *y,
                       const struct rn_ctx *ctx, struct rn_error *err)
{
    copy_to(x[0], y);
    return 0;
}

static int grl_backward(struct rn_layer *l, const struct rn_tensor *const *x,
                        const struct rn_tensor *y, const struct rn_tensor *dy,
                        struct rn_tensor *const *dx, const struct rn_ctx *ctx, struct rn_error *err)
{
    if (dx[0])
        reverse_acc(l->v.num[KEY_ALPHA], dy->data, dx[0]->data, (long)rn_tensor_numel(x[0]));
    return 0;
}

static int grl_tangent_forward(struct rn_layer *l, const struct rn_tensor *const *x,
                               const struct rn_tensor *const *tx, struct rn_tensor *ty,
                               const struct rn_ctx *ctx, struct rn_error *err)
{
    copy_to(tx[0], ty);
    return 0;
}

static int grl_tangent_backward(struct rn_layer *l, const struct rn_tensor *const *x,
                                const struct rn_tensor *const *tx, const struct rn_tensor *dy,
                                const struct rn_tensor *tdy, struct rn_tensor *const *tdx,
                                const struct rn_ctx *ctx, struct rn_error *err)
{
    if (tdx[0])
        reverse_acc(l->v.num[KEY_ALPHA], tdy->data, tdx[0]->data, (long)rn_tensor_numel(x[0]));
    return 0;
}

/* The identity forward. */
static int64_t grl_flops(const struct rn_layer *l)
{
    (void)l;
    return 0;
}

const struct rn_layer_type rn_layer_grl = {
    .name = "grl",
    .doc = "gradient reversal (DANN): identity forward, -alpha * dy backward",
    .keys = keys,
    .n_keys = (int)(sizeof keys / sizeof keys[0]),
    .n_inputs = 1,
    .build = grl_build,
    .forward = grl_forward,
    .backward = grl_backward,
    .tangent_forward = grl_tangent_forward,
    .tangent_backward = grl_tangent_backward,
    .flops = grl_flops,
};
