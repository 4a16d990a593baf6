/* kernels/cuda/layers/conv2d.c - the device kernels of conv2d (layers/conv2d.c): cuDNN
 * convolutions in plain FP32 (CUDNN_FMA_MATH, no TF32), algorithms chosen
 * once per batch size (benchmarked by cuDNN, or its heuristic ranking
 * filtered to deterministic ones) in the context's shared workspace; the
 * bias and its gradient by the per-channel kernels of elementwise.cu.
 *
 * Conventions: common.h. */
#include <stdlib.h>

#include "kernels/cuda/layers/common.h"

static const float k_one = 1.0f, k_zero = 0.0f;

/* cuDNN 9 marks the whole legacy convolution API (convolution and filter
 * descriptors, Find/Get, cudnnConvolution*) deprecated in favour of the graph
 * API; the attribute only fires with CUDNN_WARN_DEPRECATED. It is supported
 * throughout cuDNN 9 and is what PyTorch's cuDNN convolutions use, so this
 * file opts out of that warning. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

enum { CONV_K_FILTERS, CONV_K_KERNEL, CONV_K_STRIDE, CONV_K_PADDING, CONV_K_BIAS };

#define RN_CONV_MAX_ALGOS 16

/* Algorithms of one batch size, chosen on first use. */
struct conv_algo {
    int have_fwd, have_data, have_filter;
    cudnnConvolutionFwdAlgo_t fwd;
    cudnnConvolutionBwdDataAlgo_t data;
    cudnnConvolutionBwdFilterAlgo_t filter;
    size_t fwd_ws, data_ws, filter_ws; /* workspace bytes */
};

struct conv_dp {
    struct rn_cuda_dp_base base;
    int cin, h, w, cout, k, stride, pad, hout, wout;
    int deterministic;              /* rn_cuda's flag when prepared */
    int desc_n;                     /* batch the tensor descriptors are set for; -1 none */
    cudnnTensorDescriptor_t xd, yd; /* (n, Cin, H, W), (n, Cout, Hout, Wout) */
    cudnnFilterDescriptor_t wd;     /* (Cout, Cin, k, k) */
    cudnnConvolutionDescriptor_t cd;
    struct conv_algo *algo;         /* [max_n + 1] */
    struct rn_param *weight, *bias; /* bias NULL without one */
};

static void conv_release(struct rn_layer *l)
{
    struct conv_dp *d = l->dpriv;
    if (!d)
        return;
    if (d->xd)
        cudnnDestroyTensorDescriptor(d->xd);
    if (d->yd)
        cudnnDestroyTensorDescriptor(d->yd);
    if (d->wd)
        cudnnDestroyFilterDescriptor(d->wd);
    if (d->cd)
        cudnnDestroyConvolutionDescriptor(d->cd);
    free(d->algo);
    free(d);
    l->dpriv = NULL;
}

static int conv_prepare_into(struct rn_layer *l, struct conv_dp *d, int max_n, struct rn_error *err)
{
    struct rn_cuda *cu = rn_cuda_get(err);
    if (!cu)
        return -1;
    d->base.max_n = max_n;
    d->desc_n = -1;
    d->deterministic = cu->deterministic;
    d->cin = l->in[0].c;
    d->h = l->in[0].h;
    d->w = l->in[0].w;
    d->cout = l->out.c;
    d->hout = l->out.h;
    d->wout = l->out.w;
    d->k = (int)l->v.num[CONV_K_KERNEL];
    d->stride = (int)l->v.num[CONV_K_STRIDE];
    d->pad = (int)l->v.num[CONV_K_PADDING];
    d->weight = rn_layer_param(l, "weight");
    d->bias = rn_layer_param(l, "bias");
    if (rn_cuda_need_param(l, d->weight, "weight", (size_t)d->cout * d->cin * d->k * d->k, err) ||
        (d->bias && rn_cuda_need_param(l, d->bias, "bias", (size_t)d->cout, err)))
        return -1;
    d->algo = rn_calloc((size_t)max_n + 1, sizeof *d->algo, err);
    if (!d->algo)
        return -1;
    RN_CUDNN_CHECK(err, cudnnCreateTensorDescriptor(&d->xd));
    RN_CUDNN_CHECK(err, cudnnCreateTensorDescriptor(&d->yd));
    RN_CUDNN_CHECK(err, cudnnCreateFilterDescriptor(&d->wd));
    RN_CUDNN_CHECK(err, cudnnCreateConvolutionDescriptor(&d->cd));
    RN_CUDNN_CHECK(err, cudnnSetFilter4dDescriptor(d->wd, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW,
                                                   d->cout, d->cin, d->k, d->k));
    /* PyTorch's conv is a cross-correlation; no dilation, one group. */
    RN_CUDNN_CHECK(err,
                   cudnnSetConvolution2dDescriptor(d->cd, d->pad, d->pad, d->stride, d->stride, 1,
                                                   1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    RN_CUDNN_CHECK(err, cudnnSetConvolutionMathType(d->cd, CUDNN_FMA_MATH));
    /* The layer's output shape must be cuDNN's. */
    int on, oc, oh, ow;
    RN_CUDNN_CHECK(err, cudnnSetTensor4dDescriptor(d->xd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1,
                                                   d->cin, d->h, d->w));
    RN_CUDNN_CHECK(err,
                   cudnnGetConvolution2dForwardOutputDim(d->cd, d->xd, d->wd, &on, &oc, &oh, &ow));
    if (oc != d->cout || oh != d->hout || ow != d->wout)
        return rn_errorf(err,
                         "layer '%s' (conv2d): cuDNN computes a (%d,%d,%d) output, the layer "
                         "(%d,%d,%d)",
                         l->name, oc, oh, ow, d->cout, d->hout, d->wout);
    return 0;
}

static int conv_prepare(struct rn_layer *l, int max_n, struct rn_error *err)
{
    struct conv_dp *d = rn_calloc(1, sizeof *d, err);
    if (!d)
        return -1;
    l->dpriv = d;
    if (conv_prepare_into(l, d, max_n, err)) {
        conv_release(l);
        return -1;
    }
    return 0;
}

static int conv_set_batch(struct conv_dp *d, int n, struct rn_error *err)
{
    if (d->desc_n == n)
        return 0;
    d->desc_n = -1;
    RN_CUDNN_CHECK(err, cudnnSetTensor4dDescriptor(d->xd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n,
                                                   d->cin, d->h, d->w));
    RN_CUDNN_CHECK(err, cudnnSetTensor4dDescriptor(d->yd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n,
                                                   d->cout, d->hout, d->wout));
    d->desc_n = n;
    return 0;
}

/* Whether a candidate of Find/Get may be used: it ran, it is FP32 without
 * tensor-op (TF32) math, and deterministic when the context asks for it. */
static int conv_usable(const struct conv_dp *d, cudnnStatus_t status, cudnnDeterminism_t det,
                       cudnnMathType_t math)
{
    if (status != CUDNN_STATUS_SUCCESS)
        return 0;
    if (math == CUDNN_TENSOR_OP_MATH || math == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION)
        return 0;
    return !d->deterministic || det == CUDNN_DETERMINISTIC;
}

/* The shared workspace can hold bytes (grows it; a failed growth only
 * rules the candidate out). */
static int conv_workspace_fits(struct rn_cuda *cu, size_t bytes)
{
    struct rn_error ignored;
    return rn_cuda_workspace(cu, bytes, &ignored) == 0;
}

static int conv_no_algo(const struct rn_layer *l, const struct conv_dp *d, const char *pass, int n,
                        int got, struct rn_error *err)
{
    return rn_errorf(err,
                     "layer '%s' (conv2d): cuDNN offers no usable %sFP32 %s algorithm for batch "
                     "%d (%d candidates: none ran, fit the memory or was allowed)",
                     l->name, d->deterministic ? "deterministic " : "", pass, n, got);
}

/* Algorithm choice: with deterministic set, cuDNN's heuristic ranking
 * (Get_v7, the same choice every run) filtered to deterministic algorithms;
 * otherwise cuDNN benchmarks them (Find, fastest first). The first usable
 * candidate whose workspace can be had wins. */
static int conv_pick_fwd(const struct rn_layer *l, struct rn_cuda *cu, struct conv_dp *d, int n,
                         struct rn_error *err)
{
    struct conv_algo *a = &d->algo[n];
    if (a->have_fwd)
        return 0;
    cudnnConvolutionFwdAlgoPerf_t perf[RN_CONV_MAX_ALGOS];
    int got = 0;
    if (d->deterministic)
        RN_CUDNN_CHECK(err,
                       cudnnGetConvolutionForwardAlgorithm_v7(cu->cudnn, d->xd, d->wd, d->cd, d->yd,
                                                              RN_CONV_MAX_ALGOS, &got, perf));
    else
        RN_CUDNN_CHECK(err,
                       cudnnFindConvolutionForwardAlgorithm(cu->cudnn, d->xd, d->wd, d->cd, d->yd,
                                                            RN_CONV_MAX_ALGOS, &got, perf));
    for (int i = 0; i < got; i++) {
        size_t ws = 0;
        if (!conv_usable(d, perf[i].status, perf[i].determinism, perf[i].mathType) ||
            cudnnGetConvolutionForwardWorkspaceSize(cu->cudnn, d->xd, d->wd, d->cd, d->yd,
                                                    perf[i].algo, &ws) != CUDNN_STATUS_SUCCESS ||
            !conv_workspace_fits(cu, ws))
            continue;
        a->fwd = perf[i].algo;
        a->fwd_ws = ws;
        a->have_fwd = 1;
        return 0;
    }
    return conv_no_algo(l, d, "forward", n, got, err);
}

static int conv_pick_data(const struct rn_layer *l, struct rn_cuda *cu, struct conv_dp *d, int n,
                          struct rn_error *err)
{
    struct conv_algo *a = &d->algo[n];
    if (a->have_data)
        return 0;
    cudnnConvolutionBwdDataAlgoPerf_t perf[RN_CONV_MAX_ALGOS];
    int got = 0;
    if (d->deterministic)
        RN_CUDNN_CHECK(
            err, cudnnGetConvolutionBackwardDataAlgorithm_v7(cu->cudnn, d->wd, d->yd, d->cd, d->xd,
                                                             RN_CONV_MAX_ALGOS, &got, perf));
    else
        RN_CUDNN_CHECK(
            err, cudnnFindConvolutionBackwardDataAlgorithm(cu->cudnn, d->wd, d->yd, d->cd, d->xd,
                                                           RN_CONV_MAX_ALGOS, &got, perf));
    for (int i = 0; i < got; i++) {
        size_t ws = 0;
        if (!conv_usable(d, perf[i].status, perf[i].determinism, perf[i].mathType) ||
            cudnnGetConvolutionBackwardDataWorkspaceSize(
                cu->cudnn, d->wd, d->yd, d->cd, d->xd, perf[i].algo, &ws) != CUDNN_STATUS_SUCCESS ||
            !conv_workspace_fits(cu, ws))
            continue;
        a->data = perf[i].algo;
        a->data_ws = ws;
        a->have_data = 1;
        return 0;
    }
    return conv_no_algo(l, d, "backward-data", n, got, err);
}

static int conv_pick_filter(const struct rn_layer *l, struct rn_cuda *cu, struct conv_dp *d, int n,
                            struct rn_error *err)
{
    struct conv_algo *a = &d->algo[n];
    if (a->have_filter)
        return 0;
    cudnnConvolutionBwdFilterAlgoPerf_t perf[RN_CONV_MAX_ALGOS];
    int got = 0;
    if (d->deterministic)
        RN_CUDNN_CHECK(err,
                       cudnnGetConvolutionBackwardFilterAlgorithm_v7(
                           cu->cudnn, d->xd, d->yd, d->cd, d->wd, RN_CONV_MAX_ALGOS, &got, perf));
    else
        RN_CUDNN_CHECK(
            err, cudnnFindConvolutionBackwardFilterAlgorithm(cu->cudnn, d->xd, d->yd, d->cd, d->wd,
                                                             RN_CONV_MAX_ALGOS, &got, perf));
    for (int i = 0; i < got; i++) {
        size_t ws = 0;
        if (!conv_usable(d, perf[i].status, perf[i].determinism, perf[i].mathType) ||
            cudnnGetConvolutionBackwardFilterWorkspaceSize(
                cu->cudnn, d->xd, d->yd, d->cd, d->wd, perf[i].algo, &ws) != CUDNN_STATUS_SUCCESS ||
            !conv_workspace_fits(cu, ws))
            continue;
        a->filter = perf[i].algo;
        a->filter_ws = ws;
        a->have_filter = 1;
        return 0;
    }
    return conv_no_algo(l, d, "backward-filter", n, got, err);
}

/* y = conv(x, W) (+ bias when with_bias), overwriting y. */
static int conv_apply(const struct rn_layer *l, struct rn_cuda *cu, struct conv_dp *d, int n,
                      const float *x, float *y, int with_bias, struct rn_error *err)
{
    if (conv_set_batch(d, n, err) || conv_pick_fwd(l, cu, d, n, err))
        return -1;
    const struct conv_algo *a = &d->algo[n];
    if (rn_cuda_workspace(cu, a->fwd_ws, err))
        return -1;
    RN_CUDNN_CHECK(err, cudnnConvolutionForward(cu->cudnn, &k_one, d->xd, x, d->wd,
                                                d->weight->value.data, d->cd, a->fwd, cu->workspace,
                                                a->fwd_ws, &k_zero, d->yd, y));
    if (with_bias && d->bias)
        RN_CUDA_CHECK(err, rn_cuda_channel_bias_add(y, d->bias->value.data, n, d->cout,
                                                    d->hout * d->wout, cu->stream));
    return 0;
}

/* Given dy, ACCUMULATES dx += conv^T(dy, W), dw += filter(x, dy),
 * db += sum(dy) per channel, each skipped when NULL (rn_conv2d_backward_cpu). */
static int conv_grads(const struct rn_layer *l, struct rn_cuda *cu, struct conv_dp *d, int n,
                      const float *x, const float *dy, float *dx, float *dw, float *db,
                      struct rn_error *err)
{
    if (conv_set_batch(d, n, err))
        return -1;
    const struct conv_algo *a = &d->algo[n];
    if (dx) {
        if (conv_pick_data(l, cu, d, n, err) || rn_cuda_workspace(cu, a->data_ws, err))
            return -1;
        RN_CUDNN_CHECK(err, cudnnConvolutionBackwardData(
                                cu->cudnn, &k_one, d->wd, d->weight->value.data, d->yd, dy, d->cd,
                                a->data, cu->workspace, a->data_ws, &k_one, d->xd, dx));
    }
    if (dw) {
        if (conv_pick_filter(l, cu, d, n, err) || rn_cuda_workspace(cu, a->filter_ws, err))
            return -1;
        RN_CUDNN_CHECK(err, cudnnConvolutionBackwardFilter(cu->cudnn, &k_one, d->xd, x, d->yd, dy,
                                                           d->cd, a->filter, cu->workspace,
                                                           a->filter_ws, &k_one, d->wd, dw));
    }
    if (db)
        RN_CUDA_CHECK(err,
                      rn_cuda_channel_sum_acc(dy, n, d->cout, d->hout * d->wout, db, cu->stream));
    return 0;
}

static int conv_forward(struct rn_layer *l, const struct rn_tensor *const *x, struct rn_tensor *y,
                        const struct rn_ctx *ctx, struct rn_error *err)
{
    struct rn_cuda *cu = rn_cuda_enter_forward(l, x, 1, y, "input", err);
    if (!cu)
        return -1;
    y->n = x[0]->n;
    if (y->n == 0)
        return 0;
    return conv_apply(l, cu, l->dpriv, y->n, x[0]->data, y->data, 1, err);
}

static int conv_backward(struct rn_layer *l, const struct rn_tensor *const *x,
                         const struct rn_tensor *y, const struct rn_tensor *dy,
                         struct rn_tensor *const *dx, const struct rn_ctx *ctx,
                         struct rn_error *err)
{
    struct rn_cuda *cu = rn_cuda_enter_backward(l, x, NULL, 1, dy, NULL, dx, err);
    if (!cu)
        return -1;
    struct conv_dp *d = l->dpriv;
    if (x[0]->n == 0)
        return 0;
    return conv_grads(l, cu, d, x[0]->n, x[0]->data, dy->data, dx && dx[0] ? dx[0]->data : NULL,
                      rn_cuda_param_grad(d->weight), rn_cuda_param_grad(d->bias), err);
}

static int conv_tangent_forward(struct rn_layer *l, const struct rn_tensor *const *x,
                                const struct rn_tensor *const *tx, struct rn_tensor *ty,
                                const struct rn_ctx *ctx, struct rn_error *err)
{
    struct rn_cuda *cu = rn_cuda_enter_forward(l, tx, 1, ty, "tangent input", err);
    if (!cu)
        return -1;
    /* Linear in x: the bias does not move with the direction. */
    ty->n = tx[0]->n;
    if (ty->n == 0)
        return 0;
    return conv_apply(l, cu, l->dpriv, ty->n, tx[0]->data, ty->data, 0, err);
}

static int conv_tangent_backward(struct rn_layer *l, const struct rn_tensor *const *x,
                                 const struct rn_tensor *const *tx, const struct rn_tensor *dy,
                                 const struct rn_tensor *tdy, struct rn_tensor *const *tdx,
                                 const struct rn_ctx *ctx, struct rn_error *err)
{
    struct rn_cuda *cu = rn_cuda_enter_backward(l, x, tx, 1, dy, tdy, tdx, err);
    if (!cu)
        return -1;
    struct conv_dp *d = l->dpriv;
    const int n = x[0]->n;
    if (n == 0)
        return 0;
    /* d/de of backward(x + e tx, dy + e tdy):
     *   tdx   += J_x^T tdy                 (J_x does not depend on x)
     *   dW    += filter(x, tdy) + filter(tx, dy)
     *   dbias += sum(tdy). */
    if (conv_grads(l, cu, d, n, x[0]->data, tdy->data, tdx && tdx[0] ? tdx[0]->data : NULL,
                   rn_cuda_param_grad(d->weight), rn_cuda_param_grad(d->bias), err))
        return -1;
    return conv_grads(l, cu, d, n, tx[0]->data, dy->data, NULL, rn_cuda_param_grad(d->weight), NULL,
                      err);
}

#pragma GCC diagnostic pop

const struct rn_layer_kernels rn_cuda_layer_conv2d = {
    .type = "conv2d",
    .prepare = conv_prepare,
    .release = conv_release,
    .forward = conv_forward,
    .backward = conv_backward,
    .tangent_forward = conv_tangent_forward,
    .tangent_backward = conv_tangent_backward,
};
