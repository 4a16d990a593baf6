/* kernels/cuda/layers/batchnorm.c - the device kernels of batchnorm
 * (layers/batchnorm.c), in batchnorm.cu.
 *
 * Own kernels rather than cudnnBatchNormalization*, which cuDNN 9 deprecates:
 * statistics in double with the CPU's two passes, running statistics with
 * PyTorch's momentum and the unbiased variance, num_batches_tracked counted
 * on whichever side it lives.
 *
 * Conventions: common.h. */
#include <stdlib.h>

#include "kernels/cuda/layers/common.h"

enum { BN_K_EPS, BN_K_MOMENTUM };
enum { BN_P_WEIGHT, BN_P_BIAS, BN_P_RUNNING_MEAN, BN_P_RUNNING_VAR, BN_P_NUM_BATCHES };

struct bn_dp {
    struct rn_cuda_dp_base base;
    float *mean;   /* (C): statistics the last forward normalised with */
    float *invstd; /* (C): 1/sqrt(var + eps), same */
    int train;     /* mode of the last forward */
};

static void bn_release(struct rn_layer *l)
{
    struct bn_dp *d = l->dpriv;
    if (!d)
        return;
    if (d->mean)
        cudaFree(d->mean);
    if (d->invstd)
        cudaFree(d->invstd);
    free(d);
    l->dpriv = NULL;
}

static int bn_prepare(struct rn_layer *l, int max_n, struct rn_error *err)
{
    const size_t C = (size_t)l->in[0].c;
    if (l->n_params < 5)
        return rn_errorf(err, "layer '%s' (batchnorm): %d parameters, expected 5", l->name,
                         l->n_params);
    if (rn_cuda_need_param(l, &l->params[BN_P_WEIGHT], "weight", C, err) ||
        rn_cuda_need_param(l, &l->params[BN_P_BIAS], "bias", C, err) ||
        rn_cuda_need_param(l, &l->params[BN_P_RUNNING_MEAN], "running_mean", C, err) ||
        rn_cuda_need_param(l, &l->params[BN_P_RUNNING_VAR], "running_var", C, err))
        return -1;
    if (!l->params[BN_P_NUM_BATCHES].value.data)
        return rn_errorf(err, "layer '%s' (batchnorm): no num_batches_tracked", l->name);
    struct bn_dp *d = rn_calloc(1, sizeof *d, err);
    if (!d)
        return -1;
    d->base.max_n = max_n;
    l->dpriv = d;
    if (rn_cuda_state_alloc((void **)&d->mean, C * sizeof(float), err) ||
        rn_cuda_state_alloc((void **)&d->invstd, C * sizeof(float), err)) {
        bn_release(l);
        return -1;
    }
    return 0;
}

static int bn_forward(struct rn_layer *l, const struct rn_tensor *const *x, struct rn_tensor *y,
                      const struct rn_ctx *ctx, struct rn_error *err)
{
    struct rn_cuda *cu = rn_cuda_enter_forward(l, x, 1, y, "input", err);
    if (!cu)
        return -1;
    struct bn_dp *d = l->dpriv;
    const int N = x[0]->n, C = l->in[0].c, HW = l->in[0].h * l->in[0].w;
    const long M = (long)N * HW;
    const double eps = l->v.num[BN_K_EPS], mom = l->v.num[BN_K_MOMENTUM];
    struct rn_param *p = l->params;
    y->n = N;
    d->train = ctx->train != 0;
    if (d->train && M < 2)
        return rn_errorf(err,
                         "batchnorm '%s' in training mode needs more than one value per channel "
                         "(batch of 1)",
                         l->name);
    if (d->train)
        RN_CUDA_CHECK(err, rn_cuda_bn_stats_train(x[0]->data, N, C, HW, eps, mom, d->mean,
                                                  d->invstd, p[BN_P_RUNNING_MEAN].value.data,
                                                  p[BN_P_RUNNING_VAR].value.data, cu->stream));
    else
        RN_CUDA_CHECK(err, rn_cuda_bn_stats_eval(p[BN_P_RUNNING_MEAN].value.data,
                                                 p[BN_P_RUNNING_VAR].value.data, eps, C, d->mean,
                                                 d->invstd, cu->stream));
    RN_CUDA_CHECK(err,
                  rn_cuda_bn_apply(x[0]->data, p[BN_P_WEIGHT].value.data, p[BN_P_BIAS].value.data,
                                   d->mean, d->invstd, N, C, HW, y->data, cu->stream));
    if (d->train) {
        struct rn_tensor *nb = &p[BN_P_NUM_BATCHES].value;
        if (nb->device == RN_DEVICE_CUDA)
            RN_CUDA_CHECK(err, rn_cuda_add_scalar(nb->data, 1.0f, cu->stream));
        else
            nb->data[0] += 1.0f;
    }
    return 0;
}

static int bn_backward(struct rn_layer *l, const struct rn_tensor *const *x,
                       const struct rn_tensor *y, const struct rn_tensor *dy,
                       struct rn_tensor *const *dx, const struct rn_ctx *ctx, struct rn_error *err)
{
    struct rn_cuda *cu = rn_cuda_enter_backward(l, x, NULL, 1, dy, NULL, dx, err);
    if (!cu ||
        rn_layer_check_mode(l, ctx, ((const struct bn_dp *)l->dpriv)->train, "backward", err))
        return -1;
    const struct bn_dp *d = l->dpriv;
    struct rn_param *p = l->params;
    RN_CUDA_CHECK(err, rn_cuda_bn_backward(x[0]->data, dy->data, p[BN_P_WEIGHT].value.data, d->mean,
                                           d->invstd, x[0]->n, l->in[0].c, l->in[0].h * l->in[0].w,
                                           d->train, rn_cuda_param_grad(&p[BN_P_WEIGHT]),
                                           rn_cuda_param_grad(&p[BN_P_BIAS]),
                                           dx && dx[0] ? dx[0]->data : NULL, cu->stream));
    return 0;
}

static int bn_tangent_forward(struct rn_layer *l, const struct rn_tensor *const *x,
                              const struct rn_tensor *const *tx, struct rn_tensor *ty,
                              const struct rn_ctx *ctx, struct rn_error *err)
{
    struct rn_cuda *cu = rn_cuda_enter_forward(l, x, 1, ty, "input", err);
    if (!cu || rn_cuda_check_input(l, tx[0], 0, x[0]->n, "tangent input", err) ||
        rn_layer_check_eval_tangent(l, ctx, ((const struct bn_dp *)l->dpriv)->train,
                                    "tangent forward", err))
        return -1;
    const struct bn_dp *d = l->dpriv;
    ty->n = x[0]->n;
    RN_CUDA_CHECK(err, rn_cuda_bn_scale(tx[0]->data, l->params[BN_P_WEIGHT].value.data, d->invstd,
                                        x[0]->n, l->in[0].c, l->in[0].h * l->in[0].w, ty->data,
                                        cu->stream));
    return 0;
}

/* Eval mode, fixed statistics: tdx += gamma * inv * tdy,
 * d(gw) = sum(tdy * xhat + dy * tx * inv), d(gb) = sum(tdy). */
static int bn_tangent_backward(struct rn_layer *l, const struct rn_tensor *const *x,
                               const struct rn_tensor *const *tx, const struct rn_tensor *dy,
                               const struct rn_tensor *tdy, struct rn_tensor *const *tdx,
                               const struct rn_ctx *ctx, struct rn_error *err)
{
    struct rn_cuda *cu = rn_cuda_enter_backward(l, x, tx, 1, dy, tdy, tdx, err);
    if (!cu || rn_layer_check_eval_tangent(l, ctx, ((const struct bn_dp *)l->dpriv)->train,
                                           "tangent backward", err))
        return -1;
    const struct bn_dp *d = l->dpriv;
    struct rn_param *p = l->params;
    RN_CUDA_CHECK(err, rn_cuda_bn_tangent_backward(
                           x[0]->data, tx[0]->data, dy->data, tdy->data, p[BN_P_WEIGHT].value.data,
                           d->mean, d->invstd, x[0]->n, l->in[0].c, l->in[0].h * l->in[0].w,
                           rn_cuda_param_grad(&p[BN_P_WEIGHT]), rn_cuda_param_grad(&p[BN_P_BIAS]),
                           tdx && tdx[0] ? tdx[0]->data : NULL, cu->stream));
    return 0;
}

const struct rn_layer_kernels rn_cuda_layer_batchnorm = {
    .type = "batchnorm",
    .prepare = bn_prepare,
    .release = bn_release,
    .forward = bn_forward,
    .backward = bn_backward,
    .tangent_forward = bn_tangent_forward,
    .tangent_backward = bn_tangent_backward,
};
