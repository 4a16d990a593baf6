/* layers/avgpool2d.c - average pooling (PyTorch AvgPool2d: count_include_pad=True,
 * ceil_mode=False).
 *
 * Every window sum is divided by k*k, padded zeros included. With
 * ceil_mode=False and padding <= k/2 no window reaches past the padding, so
 * this is exactly PyTorch's divisor. The op is linear: the tangent passes are
 * the forward and backward applied to tx and tdy. */
#include <stdlib.h>

#include "runner/layer.h"

enum { KEY_KERNEL, KEY_STRIDE, KEY_PADDING };

static const struct rn_key keys[] = {
    {"kernel", RN_KIND_INT, 0, 2.0, NULL, 1.0, 15.0, NULL, "window size"},
    {"stride", RN_KIND_INT, 0, 0.0, NULL, 0.0, 15.0, NULL, "stride (0 = kernel)"},
    {"padding", RN_KIND_INT, 0, 0.0, NULL, 0.0, 7.0, NULL, "zero padding"},
};

struct avgpool {
    int k, s, p;
};

static int avgpool_build(struct rn_layer *l, int max_n, struct rn_error *err)
{
    int k = (int)l->v.num[KEY_KERNEL], s = (int)l->v.num[KEY_STRIDE],
        p = (int)l->v.num[KEY_PADDING];
    struct rn_shape in = l->in[0];
    if (s == 0)
        s = k;
    if (2 * p > k)
        return rn_errorf(err,
                         "padding %d is more than half the kernel %d; PyTorch requires "
                         "padding <= kernel/2, lower padding",
                         p, k);
    if (in.h + 2 * p < k || in.w + 2 * p < k)
        return rn_errorf(err,
                         "kernel %d (padding %d) does not fit the (%d,%d,%d) input; use a "
                         "smaller kernel or remove a pooling layer before it",
                         k, p, in.c, in.h, in.w);
    l->out.c = in.c;
    l->out.h = (in.h + 2 * p - k) / s + 1;
    l->out.w = (in.w + 2 * p - k) / s + 1;
    struct avgpool *ap = rn_calloc(1, sizeof *ap, err);
    if (!ap)
        return -1;
    ap->k = k;
    ap->s = s;
    ap->p = p;
    l->priv = ap;
    return 0;
}

static void avgpool_free(struct rn_layer *l)
{
    free(l->priv);
}

/* out = avgpool(in) for n samples. */
static void avgpool_fwd(const struct rn_layer *l, int n, const float *in, float *out)
{
    const struct avgpool *ap = l->priv;
    int H = l->in[0].h, W = l->in[0].w, Ho = l->out.h, Wo = l->out.w;
    int k = ap->k, s = ap->s, p = ap->p;
    float inv = 1.0f / (float)(k * k);
    long planes = (long)n * l->in[0].c;
#pragma omp parallel for if (planes * Ho * Wo * k * k > 65536) schedule(static)
    for (long pl = 0; pl < planes; pl++) {
        const float *xp = in + pl * H * W;
        float *yp = out + pl * Ho * Wo;
        for (int oh = 0; oh < Ho; oh++) {
            int h0 = oh * s - p;
            for (int ow = 0; ow < Wo; ow++) {
                int w0 = ow * s - p;
                float sum = 0.0f;
                for (int ih = h0 < 0 ? 0 : h0; ih < h0 + k && ih < H; ih++)
                    for (int iw = w0 < 0 ? 0 : w0; iw < w0 + k && iw < W; iw++)
                        sum += xp[ih * W + iw];
                yp[oh * Wo + ow] = sum * inv;
            }
        }
    }
}

/* out += avgpool^T(g); windows overlap within a plane, so planes are the
 * parallel unit. */
static void avgpool_bwd(const struct rn_layer *l, int n, const float *g, float *out)
{
    const struct avgpool *ap = l->priv;
    int H = l->in[0].h, W = l->in[0].w, Ho = l->out.h, Wo = l->out.w;
    int k = ap->k, s = ap->s, p = ap->p;
    float inv = 1.0f / (float)(k * k);
    long planes = (long)n * l->in[0].c;
#pragma omp parallel for if (planes * Ho * Wo * k * k > 65536) schedule(static)
    for (long pl = 0; pl < planes; pl++) {
        const float *gp = g + pl * Ho * Wo;
        float *op = out + pl * H * W;
        for (int oh = 0; oh < Ho; oh++) {
            int h0 = oh * s - p;
            for (int ow = 0; ow < Wo; ow++) {
                int w0 = ow * s - p;
                float v = gp[oh * Wo + ow] * inv;
                for (int ih = h0 < 0 ? 0 : h0; ih < h0 + k && ih < H; ih++)
                    for (int iw = w0 < 0 ? 0 : w0; iw < w0 + k && iw < W; iw++)
                        op[ih * W + iw] += v;
            }
        }
    }
}

static int avgpool_forward(struct rn_layer *l, const struct rn_tensor *const *x,
                           struct rn_tensor *y, const struct rn_ctx *ctx, struct rn_error *err)
{
    y->n = x[0]->n;
    avgpool_fwd(l, x[0]->n, x[0]->data, y->data);
    return 0;
}

static int avgpool_backward(struct rn_layer *l, const struct rn_tensor *const *x,
                            const struct rn_tensor *y, const struct rn_tensor *dy,
                            struct rn_tensor *const *dx, const struct rn_ctx *ctx,
                            struct rn_error *err)
{
    if (dx[0])
        avgpool_bwd(l, x[0]->n, dy->data, dx[0]->data);
    return 0;
}

static int avgpool_tangent_forward(struct rn_layer *l, const struct rn_tensor *const *x,
                                   const struct rn_tensor *const *tx, struct rn_tensor *ty,
                                   const struct rn_ctx *ctx, struct rn_error *err)
{
    ty->n = x[0]->n;
    avgpool_fwd(l, x[0]->n, tx[0]->data, ty->data);
    return 0;
}

static int avgpool_tangent_backward(struct rn_layer *l, const struct rn_tensor *const *x,
                                    const struct rn_tensor *const *tx, const struct rn_tensor *dy,
                                    const struct rn_tensor *tdy, struct rn_tensor *const *tdx,
                                    const struct rn_ctx *ctx, struct rn_error *err)
{
    if (tdx[0])
        avgpool_bwd(l, x[0]->n, tdy->data, tdx[0]->data);
    return 0;
}

/* k*k - 1 additions and one scaling per output. */
static int64_t avgpool_flops(const struct rn_layer *l)
{
    const int64_t k = (int64_t)l->v.num[KEY_KERNEL];
    return k * k * l->out.c * l->out.h * l->out.w;
}

const struct rn_layer_type rn_layer_avgpool2d = {
    .name = "avgpool2d",
    .doc = "average pooling (count_include_pad, PyTorch default)",
    .keys = keys,
    .n_keys = (int)(sizeof keys / sizeof keys[0]),
    .n_inputs = 1,
    .build = avgpool_build,
    .forward = avgpool_forward,
    .backward = avgpool_backward,
    .tangent_forward = avgpool_tangent_forward,
    .tangent_backward = avgpool_tangent_backward,
    .free = avgpool_free,
    .flops = avgpool_flops,
};
