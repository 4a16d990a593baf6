/* layers/global_avg_pool.c - mean over H and W: (C,H,W) -> (C,1,1).
 * Linear, so the tangent passes are the forward and backward on tx and tdy. */
#include "runner/layer.h"

static int gap_build(struct rn_layer *l, int max_n, struct rn_error *err)
{
    l->out.c = l->in[0].c;
    l->out.h = 1;
    l->out.w = 1;
    return 0;
}

/* out[plane] = mean of in's plane; the sum runs in double so large maps
 * (e.g. 28x28) lose nothing to float accumulation. */
static void gap_fwd(const struct rn_layer *l, int n, const float *in, float *out)
{
    long planes = (long)n * l->in[0].c;
    int HW = l->in[0].h * l->in[0].w;
    double inv = 1.0 / HW;
#pragma omp parallel for if (planes * HW > 65536) schedule(static)
    for (long pl = 0; pl < planes; pl++) {
        const float *p = in + pl * HW;
        double sum = 0.0;
        for (int i = 0; i < HW; i++)
            sum += p[i];
        out[pl] = (float)(sum * inv);
    }
}

static void gap_bwd(const struct rn_layer *l, int n, const float *g, float *out)
{
    long planes = (long)n * l->in[0].c;
    int HW = l->in[0].h * l->in[0].w;
    float inv = 1.0f / (float)HW;
#pragma omp parallel for if (planes * HW > 65536) schedule(static)
    for (long pl = 0; pl < planes; pl++) {
        float v = g[pl] * inv;
        float *p = out + pl * HW;
        for (int i = 0; i < HW; i++)
            p[i] += v;
    }
}

static int gap_forward(struct rn_layer *l, const struct rn_tensor *const *x, struct rn_tensor *y,
                       const struct rn_ctx *ctx, struct rn_error *err)
{
    y->n = x[0]->n;
    gap_fwd(l, x[0]->n, x[0]->data, y->data);
    return 0;
}

static int gap_backward(struct rn_layer *l, const struct rn_tensor *const *x,
                        const struct rn_tensor *y, const struct rn_tensor *dy,
                        struct rn_tensor *const *dx, const struct rn_ctx *ctx, struct rn_error *err)
{
    if (dx[0])
        gap_bwd(l, x[0]->n, dy->data, dx[0]->data);
    return 0;
}

static int gap_tangent_forward(struct rn_layer *l, const struct rn_tensor *const *x,
                               const struct rn_tensor *const *tx, struct rn_tensor *ty,
                               const struct rn_ctx *ctx, struct rn_error *err)
{
    ty->n = x[0]->n;
    gap_fwd(l, x[0]->n, tx[0]->data, ty->data);
    return 0;
}

static int gap_tangent_backward(struct rn_layer *l, const struct rn_tensor *const *x,
                                const struct rn_tensor *const *tx, const struct rn_tensor *dy,
                                const struct rn_tensor *tdy, struct rn_tensor *const *tdx,
                                const struct rn_ctx *ctx, struct rn_error *err)
{
    if (tdx[0])
        gap_bwd(l, x[0]->n, tdy->data, tdx[0]->data);
    return 0;
}

/* H*W - 1 additions and one scaling per channel. */
static int64_t gap_flops(const struct rn_layer *l)
{
    return (int64_t)l->in[0].c * l->in[0].h * l->in[0].w;
}

const struct rn_layer_type rn_layer_global_avg_pool = {
    .name = "global_avg_pool",
    .doc = "mean over H and W: (C,H,W) -> (C,1,1)",
    .n_inputs = 1,
    .build = gap_build,
    .forward = gap_forward,
    .backward = gap_backward,
    .tangent_forward = gap_tangent_forward,
    .tangent_backward = gap_tangent_backward,
    .flops = gap_flops,
};
