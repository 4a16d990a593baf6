/* layers/conv2d.c - 2D convolution (PyTorch Conv2d), input channels inferred.
 *
 * The work is in kernels/cpu/conv2d.c; this file checks shapes, owns the
 * parameters and per-thread scratch, and maps the layer contract (forward,
 * backward, tangent) onto the two kernels. Conv is bilinear in (x, W), so
 * the tangent passes are the same kernels on tx / tdy.
 */
#include <math.h>
#include <stdlib.h>

#include "kernels/cpu/conv2d.h"
#include "runner/layer.h"

enum { K_FILTERS, K_KERNEL, K_STRIDE, K_PADDING, K_BIAS };

static const struct rn_key keys[] = {
    {"filters", RN_KIND_INT, 1, 0.0, NULL, 1.0, 65536.0, NULL, "output channels"},
    {"kernel", RN_KIND_INT, 0, 3.0, NULL, 1.0, 15.0, NULL, "square kernel size"},
    {"stride", RN_KIND_INT, 0, 1.0, NULL, 1.0, 8.0, NULL, "stride"},
    {"padding", RN_KIND_INT, 0, 0.0, NULL, 0.0, 7.0, NULL, "zero padding on each side"},
    {"bias", RN_KIND_BOOL, 0, 1.0, NULL, 0.0, 1.0, NULL, "learn a bias per output channel"},
};

struct conv_priv {
    struct rn_conv2d_cpu_geom g; /* g.n is set per call */
    struct rn_conv2d_cpu_ws ws;
    struct rn_param *weight; /* (Cout, Cin, k, k) */
    struct rn_param *bias;   /* (Cout, 1, 1, 1) or NULL */
};

static void conv_free(struct rn_layer *l)
{
    struct conv_priv *p = l->priv;
    if (!p)
        return;
    rn_conv2d_cpu_ws_free(&p->ws);
    free(p);
    l->priv = NULL;
}

/* Undoes a half-done build so the layer can be freed (or dropped) safely. */
static int conv_build_fail(struct rn_layer *l)
{
    conv_free(l);
    for (int i = 0; i < l->n_params; i++) {
        rn_tensor_free(&l->params[i].value);
        rn_tensor_free(&l->params[i].grad);
    }
    l->n_params = 0;
    return -1;
}

static int conv_build(struct rn_layer *l, int max_n, struct rn_error *err)
{
    const int cout = (int)l->v.num[K_FILTERS], k = (int)l->v.num[K_KERNEL];
    const int stride = (int)l->v.num[K_STRIDE], pad = (int)l->v.num[K_PADDING];
    const int has_bias = l->v.num[K_BIAS] != 0.0;
    const struct rn_shape in = l->in[0];
    struct rn_conv2d_cpu_geom g;
    if (rn_conv2d_cpu_geom_init(&g, in.c, in.h, in.w, cout, k, stride, pad, err))
        return -1;
    struct conv_priv *p = rn_calloc(1, sizeof *p, err);
    if (!p)
        return -1;
    p->g = g;
    l->priv = p;
    if (rn_conv2d_cpu_ws_init(&p->ws, &g, 0, err))
        return conv_build_fail(l);
    l->max_n = max_n;
    l->out = (struct rn_shape){cout, g.hout, g.wout};
    if (rn_layer_add_param(l, "weight", 4, cout, in.c, k, k, 1, err) ||
        (has_bias && rn_layer_add_param(l, "bias", 1, cout, 1, 1, 1, 1, err)))
        return conv_build_fail(l);
    /* params[] does not move, so pointers into it stay valid. */
    p->weight = rn_layer_param(l, "weight");
    p->bias = has_bias ? rn_layer_param(l, "bias") : NULL;
    return 0;
}

static void conv_init(struct rn_layer *l, struct rn_rng *rng)
{
    struct conv_priv *p = l->priv;
    /* kaiming_uniform(a = sqrt(5)): gain sqrt(2 / (1 + 5)) * sqrt(3 / fan_in)
     * = 1 / sqrt(fan_in), the same bound PyTorch uses for the bias. */
    const float bound = 1.0f / sqrtf((float)(p->g.cin * p->g.k * p->g.k));
    struct rn_tensor *w = &p->weight->value;
    for (size_t i = 0; i < rn_tensor_numel(w); i++)
        w->data[i] = (2.0f * rn_rng_uniform(rng) - 1.0f) * bound;
    if (p->bias) {
        struct rn_tensor *b = &p->bias->value;
        for (size_t i = 0; i < rn_tensor_numel(b); i++)
            b->data[i] = (2.0f * rn_rng_uniform(rng) - 1.0f) * bound;
    }
}

/* Checks a (N, Cin, H, W) input against the build shape and sets g.n. */
static int conv_check(struct rn_layer *l, const struct rn_tensor *x, const char *what,
                      struct rn_error *err)
{
    struct conv_priv *p = l->priv;
    if (x->c != p->g.cin || x->h != p->g.h || x->w != p->g.w || x->n < 0 || x->n > l->max_n)
        return rn_errorf(err, "layer '%s' (conv2d): %s is (%d,%d,%d,%d), built for (<=%d,%d,%d,%d)",
                         l->name, what, x->n, x->c, x->h, x->w, l->max_n, p->g.cin, p->g.h, p->g.w);
    p->g.n = x->n;
    return 0;
}

static int conv_forward(struct rn_layer *l, const struct rn_tensor *const *x, struct rn_tensor *y,
                        const struct rn_ctx *ctx, struct rn_error *err)
{
    struct conv_priv *p = l->priv;
    if (conv_check(l, x[0], "input", err))
        return -1;
    y->n = x[0]->n;
    p->ws.keep_input = ctx && ctx->train; /* a backward may follow */
    return rn_conv2d_forward_cpu(&p->g, x[0]->data, p->weight->value.data,
                                 p->bias ? p->bias->value.data : NULL, y->data, &p->ws, err);
}

static int conv_forward_relu(struct rn_layer *l, const struct rn_tensor *const *x,
                             struct rn_tensor *y, const struct rn_ctx *ctx, struct rn_error *err)
{
    struct conv_priv *p = l->priv;
    p->ws.fuse_relu = 1;
    int rc = conv_forward(l, x, y, ctx, err);
    p->ws.fuse_relu = 0;
    return rc;
}

static int conv_backward(struct rn_layer *l, const struct rn_tensor *const *x,
                         const struct rn_tensor *y, const struct rn_tensor *dy,
                         struct rn_tensor *const *dx, const struct rn_ctx *ctx,
                         struct rn_error *err)
{
    struct conv_priv *p = l->priv;
    if (conv_check(l, x[0], "input", err))
        return -1;
    int params = !ctx || !ctx->input_grad_only;
    p->ws.assign_dx = ctx && (ctx->dx_assign & 1);
    int rc = rn_conv2d_backward_cpu(&p->g, x[0]->data, p->weight->value.data, dy->data,
                                    dx && dx[0] ? dx[0]->data : NULL,
                                    params ? p->weight->grad.data : NULL,
                                    params && p->bias ? p->bias->grad.data : NULL, &p->ws, err);
    p->ws.assign_dx = 0;
    return rc;
}

static int conv_tangent_forward(struct rn_layer *l, const struct rn_tensor *const *x,
                                const struct rn_tensor *const *tx, struct rn_tensor *ty,
                                const struct rn_ctx *ctx, struct rn_error *err)
{
    struct conv_priv *p = l->priv;
    if (conv_check(l, tx[0], "tangent input", err))
        return -1;
    /* Linear in x: the bias does not move with the direction. */
    ty->n = tx[0]->n;
    p->ws.keep_input = ctx && ctx->train;
    return rn_conv2d_forward_cpu(&p->g, tx[0]->data, p->weight->value.data, NULL, ty->data, &p->ws,
                                 err);
}

static int conv_tangent_backward(struct rn_layer *l, const struct rn_tensor *const *x,
                                 const struct rn_tensor *const *tx, const struct rn_tensor *dy,
                                 const struct rn_tensor *tdy, struct rn_tensor *const *tdx,
                                 const struct rn_ctx *ctx, struct rn_error *err)
{
    struct conv_priv *p = l->priv;
    if (conv_check(l, x[0], "input", err) || conv_check(l, tx[0], "tangent input", err))
        return -1;
    /* d/de of backward(x + e tx, dy + e tdy):
     *   tdx   += J_x^T tdy                 (J_x does not depend on x)
     *   dW    += filter(tdy, x) + filter(dy, tx)
     *   dbias += sum(tdy). */
    if (rn_conv2d_backward_cpu(&p->g, x[0]->data, p->weight->value.data, tdy->data,
                               tdx && tdx[0] ? tdx[0]->data : NULL, p->weight->grad.data,
                               p->bias ? p->bias->grad.data : NULL, &p->ws, err))
        return -1;
    return rn_conv2d_backward_cpu(&p->g, tx[0]->data, NULL, dy->data, NULL, p->weight->grad.data,
                                  NULL, &p->ws, err);
}

/* A multiply-add per weight per output position; the bias adds one per output. */
static int64_t conv_flops(const struct rn_layer *l)
{
    const int64_t k = (int64_t)l->v.num[K_KERNEL];
    const int64_t outs = (int64_t)l->out.c * l->out.h * l->out.w;
    return 2 * l->in[0].c * k * k * outs + (l->v.num[K_BIAS] != 0.0 ? outs : 0);
}

const struct rn_layer_type rn_layer_conv2d = {
    .name = "conv2d",
    .doc = "2D convolution (PyTorch Conv2d), input channels inferred",
    .keys = keys,
    .n_keys = (int)(sizeof keys / sizeof keys[0]),
    .n_inputs = 1,
    .build = conv_build,
    .init = conv_init,
    .forward = conv_forward,
    .backward = conv_backward,
    .backward_assigns = 1,
    .tangent_forward = conv_tangent_forward,
    .tangent_backward = conv_tangent_backward,
    .forward_relu = conv_forward_relu,
    .free = conv_free,
    .flops = conv_flops,
};
