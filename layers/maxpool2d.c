/* layers/maxpool2d.c - max pooling (PyTorch MaxPool2d, ceil_mode=False).
 *
 * Hout = floor((H + 2p - k) / s) + 1 with s = kernel when stride is 0;
 * padding acts as -inf. The forward saves, per output, the index (h*W + w in
 * its input plane) of the FIRST maximum in row-major window order, the
 * element PyTorch routes the gradient to: ties are common on saturated
 * strokes, and a different rule would change every saliency map. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "runner/layer.h"

enum { KEY_KERNEL, KEY_STRIDE, KEY_PADDING };

static const struct rn_key keys[] = {
    {"kernel", RN_KIND_INT, 0, 2.0, NULL, 1.0, 15.0, NULL, "window size"},
    {"stride", RN_KIND_INT, 0, 0.0, NULL, 0.0, 15.0, NULL, "stride (0 = kernel)"},
    {"padding", RN_KIND_INT, 0, 0.0, NULL, 0.0, 7.0, NULL, "implicit -inf padding"},
};

struct maxpool {
    int k, s, p;
    int32_t *arg; /* (max_n, C, Hout, Wout): argmax within the input plane */
};

static int maxpool_build(struct rn_layer *l, int max_n, struct rn_error *err)
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
    struct maxpool *mp = rn_calloc(1, sizeof *mp, err);
    if (!mp)
        return -1;
    mp->k = k;
    mp->s = s;
    mp->p = p;
    mp->arg = rn_calloc((size_t)max_n * l->out.c * l->out.h * l->out.w, sizeof *mp->arg, err);
    if (!mp->arg) {
        free(mp);
        return -1;
    }
    l->priv = mp;
    return 0;
}

static void maxpool_free(struct rn_layer *l)
{
    struct maxpool *mp = l->priv;
    if (mp)
        free(mp->arg);
    free(mp);
}

/* The common 2x2, stride 2 window without branches (the general loop spends
 * its time in mispredicted compares): the same first-maximum rule, with the
 * candidates visited in row-major order and NaN winning. */
static void pool2x2(const float *x, float *y, int32_t *arg, long planes, int H, int W, int Ho,
                    int Wo)
{
#pragma omp parallel for if (planes * Ho * Wo > 16384) schedule(static)
    for (long pl = 0; pl < planes; pl++) {
        const float *xp = x + pl * H * W;
        float *yp = y + pl * Ho * Wo;
        int32_t *ap = arg + pl * Ho * Wo;
        for (int oh = 0; oh < Ho; oh++) {
            const float *r0 = xp + 2 * oh * W, *r1 = r0 + W;
            const int32_t base = 2 * oh * W;
            for (int ow = 0; ow < Wo; ow++) {
                float a = r0[2 * ow], b = r0[2 * ow + 1], c = r1[2 * ow], d = r1[2 * ow + 1];
                float m = a;
                int32_t i = base + 2 * ow;
                int t = (b > m) | (b != b);
                m = t ? b : m;
                i = t ? base + 2 * ow + 1 : i;
                t = (c > m) | (c != c);
                m = t ? c : m;
                i = t ? base + W + 2 * ow : i;
                t = (d > m) | (d != d);
                m = t ? d : m;
                i = t ? base + W + 2 * ow + 1 : i;
                yp[oh * Wo + ow] = m;
                ap[oh * Wo + ow] = i;
            }
        }
    }
}

static int maxpool_forward(struct rn_layer *l, const struct rn_tensor *const *x,
                           struct rn_tensor *y, const struct rn_ctx *ctx, struct rn_error *err)
{
    const struct maxpool *mp = l->priv;
    int H = l->in[0].h, W = l->in[0].w, Ho = l->out.h, Wo = l->out.w;
    int k = mp->k, s = mp->s, p = mp->p;
    long planes = (long)x[0]->n * l->in[0].c;
    y->n = x[0]->n;
    if (k == 2 && s == 2 && p == 0) {
        pool2x2(x[0]->data, y->data, mp->arg, planes, H, W, Ho, Wo);
        return 0;
    }
#pragma omp parallel for if (planes * Ho * Wo * k * k > 65536) schedule(static)
    for (long pl = 0; pl < planes; pl++) {
        const float *xp = x[0]->data + pl * H * W;
        float *yp = y->data + pl * Ho * Wo;
        int32_t *ap = mp->arg + pl * Ho * Wo;
        for (int oh = 0; oh < Ho; oh++) {
            int h0 = oh * s - p;
            for (int ow = 0; ow < Wo; ow++) {
                int w0 = ow * s - p;
                float best = -INFINITY;
                int32_t bi = -1;
                for (int ih = h0 < 0 ? 0 : h0; ih < h0 + k && ih < H; ih++)
                    for (int iw = w0 < 0 ? 0 : w0; iw < w0 + k && iw < W; iw++) {
                        float v = xp[ih * W + iw];
                        /* Strict > keeps the first maximum; NaN wins, as in PyTorch. */
                        if (v > best || isnan(v) || bi < 0) {
                            best = v;
                            bi = ih * W + iw;
                        }
                    }
                yp[oh * Wo + ow] = best;
                ap[oh * Wo + ow] = bi;
            }
        }
    }
    return 0;
}

/* out[arg] += g, plane by plane: windows of one plane overlap when s < k, so
 * the planes, not the outputs, are the unit of parallel work. */
static void maxpool_route(const struct rn_layer *l, int n, const float *g, float *out)
{
    const struct maxpool *mp = l->priv;
    int HW = l->in[0].h * l->in[0].w, O = l->out.h * l->out.w;
    long planes = (long)n * l->in[0].c;
#pragma omp parallel for if (planes * O > 65536) schedule(static)
    for (long pl = 0; pl < planes; pl++) {
        const int32_t *ap = mp->arg + pl * O;
        const float *gp = g + pl * O;
        float *op = out + pl * HW;
        for (int o = 0; o < O; o++)
            op[ap[o]] += gp[o];
    }
}

static int maxpool_backward(struct rn_layer *l, const struct rn_tensor *const *x,
                            const struct rn_tensor *y, const struct rn_tensor *dy,
                            struct rn_tensor *const *dx, const struct rn_ctx *ctx,
                            struct rn_error *err)
{
    if (dx[0])
        maxpool_route(l, x[0]->n, dy->data, dx[0]->data);
    return 0;
}

static int maxpool_tangent_forward(struct rn_layer *l, const struct rn_tensor *const *x,
                                   const struct rn_tensor *const *tx, struct rn_tensor *ty,
                                   const struct rn_ctx *ctx, struct rn_error *err)
{
    const struct maxpool *mp = l->priv;
    int HW = l->in[0].h * l->in[0].w, O = l->out.h * l->out.w;
    long planes = (long)x[0]->n * l->in[0].c;
    ty->n = x[0]->n;
#pragma omp parallel for if (planes * O > 65536) schedule(static)
    for (long pl = 0; pl < planes; pl++) {
        const int32_t *ap = mp->arg + pl * O;
        const float *tp = tx[0]->data + pl * HW;
        float *op = ty->data + pl * O;
        for (int o = 0; o < O; o++)
            op[o] = tp[ap[o]];
    }
    return 0;
}

static int maxpool_tangent_backward(struct rn_layer *l, const struct rn_tensor *const *x,
                                    const struct rn_tensor *const *tx, const struct rn_tensor *dy,
                                    const struct rn_tensor *tdy, struct rn_tensor *const *tdx,
                                    const struct rn_ctx *ctx, struct rn_error *err)
{
    if (tdx[0])
        maxpool_route(l, x[0]->n, tdy->data, tdx[0]->data);
    return 0;
}

/* k*k - 1 comparisons per output. */
static int64_t maxpool_flops(const struct rn_layer *l)
{
    const int64_t k = (int64_t)l->v.num[KEY_KERNEL];
    return (k * k - 1) * l->out.c * l->out.h * l->out.w;
}

const struct rn_layer_type rn_layer_maxpool2d = {
    .name = "maxpool2d",
    .doc = "max pooling; gradient to the first maximum in row-major order (PyTorch)",
    .keys = keys,
    .n_keys = (int)(sizeof keys / sizeof keys[0]),
    .n_inputs = 1,
    .build = maxpool_build,
    .forward = maxpool_forward,
    .backward = maxpool_backward,
    .tangent_forward = maxpool_tangent_forward,
    .tangent_backward = maxpool_tangent_backward,
    .free = maxpool_free,
    .flops = maxpool_flops,
};
