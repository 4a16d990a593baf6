/* kernels/cuda/layers_cuda.c - the CUDA backend's kernels of every layer
 * type (struct rn_layer_kernels, runner/backend.h): cuDNN for convolution,
 * cuBLAS for linear layers, the kernels of layer_kernels.cu for the rest.
 *
 * The CPU layers (layers/<type>.c) are the reference: each function here
 * does what its CPU namesake does, reads the layer's keys the same way
 * (l->v, same key order) and keeps the same contract (runner/layer.h):
 * forward sets y->n = x[0]->n and overwrites y; backward and
 * tangent_backward ACCUMULATE into dx and the parameter gradients (beta = 1
 * in cuDNN and cuBLAS) and skip a NULL dx[i]; batchnorm and dropout refuse
 * a backward in another mode than their last forward; batchnorm has tangent
 * passes only in eval mode. All tensors are device tensors (checked); all
 * work is queued on the context's one stream (cuda_common.h).
 *
 * Per-layer state lives in l->dpriv (prepare creates it for batches up to
 * max_n, release frees it): cuDNN descriptors and the convolution algorithms
 * chosen per batch size, the maxpool argmax, the dropout mask, the batch
 * statistics batchnorm normalised with.
 *
 * Numerics: convolutions run in plain FP32 (CUDNN_FMA_MATH, no TF32) so they
 * agree with the CPU to float rounding; cuBLAS is in its default FP32 mode
 * (backend_cuda.c). Where the CPU's order of operations fixes the rounding
 * (pooling, routing, dropout masks) the results are bitwise the CPU's.
 */
#include <stdlib.h>
#include <string.h>

#include "cuda_common.h"
#include "layer_kernels.h"
#include "runner/layer.h"
#include "runner/rng.h"

static const float k_one = 1.0f, k_zero = 0.0f;

/* ---- shared helpers ------------------------------------------------------ */

/* The first member of every layer's dpriv. */
struct dp_base {
    int max_n; /* largest batch prepare sized the state for */
};

static const char *type_name(const struct rn_layer *l)
{
    return l->type && l->type->name ? l->type->name : "?";
}

static size_t shape_numel(struct rn_shape s)
{
    return (size_t)s.c * s.h * s.w;
}

/* The layer's dpriv, or NULL with an error when prepare was not called. */
static void *dp_get(const struct rn_layer *l, struct rn_error *err)
{
    if (!l->dpriv)
        rn_errorf(err, "layer '%s' (%s): CUDA kernels used before prepare", l->name,
                  type_name(l));
    return l->dpriv;
}

static int need_device(const struct rn_layer *l, const struct rn_tensor *t, const char *what,
                       struct rn_error *err)
{
    if (!t || !t->data)
        return rn_errorf(err, "layer '%s' (%s): %s has no data", l->name, type_name(l), what);
    if (t->device != RN_DEVICE_CUDA)
        return rn_errorf(err, "layer '%s' (%s): %s is in host memory; the CUDA kernels need "
                              "device tensors (rn_graph_to_device)",
                         l->name, type_name(l), what);
    return 0;
}

/* Input i of a pass: on the device, a (n, in[i]) tensor with n <= max_n
 * (and n == n0 when n0 >= 0, for the second input and tangents). */
static int check_in(const struct rn_layer *l, const struct rn_tensor *t, int i, int n0,
                    const char *what, struct rn_error *err)
{
    const struct dp_base *b = l->dpriv;
    if (need_device(l, t, what, err))
        return -1;
    if (rn_tensor_sample(t) != shape_numel(l->in[i]) || t->n < 0 || t->n > b->max_n ||
        (n0 >= 0 && t->n != n0))
        return rn_errorf(err, "layer '%s' (%s): %s is (%d,%d,%d,%d), built for (%s%d,%d,%d,%d)",
                         l->name, type_name(l), what, t->n, t->c, t->h, t->w, n0 >= 0 ? "" : "<=",
                         n0 >= 0 ? n0 : b->max_n, l->in[i].c, l->in[i].h, l->in[i].w);
    return 0;
}

/* A tensor the pass reads or writes n samples of shape s in (y, dy, dx). */
static int check_room(const struct rn_layer *l, const struct rn_tensor *t, int n,
                      struct rn_shape s, const char *what, struct rn_error *err)
{
    if (need_device(l, t, what, err))
        return -1;
    if ((size_t)n * shape_numel(s) > t->cap)
        return rn_errorf(err, "layer '%s' (%s): %s holds %zu floats, the pass needs %d x %zu",
                         l->name, type_name(l), what, t->cap, n, shape_numel(s));
    return 0;
}

/* Entry checks of a forward-like pass (forward, tangent_forward): the
 * context, the n_in inputs and the output. */
static struct rn_cuda *enter_forward(const struct rn_layer *l, const struct rn_tensor *const *x,
                                     int n_in, const struct rn_tensor *y, const char *what,
                                     struct rn_error *err)
{
    if (!dp_get(l, err))
        return NULL;
    for (int i = 0; i < n_in; i++)
        if (check_in(l, x[i], i, i ? x[0]->n : -1, what, err))
            return NULL;
    if (check_room(l, y, x[0]->n, l->out, "output", err))
        return NULL;
    return rn_cuda_get(err);
}

/* Entry checks of a backward-like pass: inputs x (and tangents tx when not
 * NULL), dy (and tdy), and the non-NULL dx[i]. */
static struct rn_cuda *enter_backward(const struct rn_layer *l, const struct rn_tensor *const *x,
                                      const struct rn_tensor *const *tx, int n_in,
                                      const struct rn_tensor *dy, const struct rn_tensor *tdy,
                                      struct rn_tensor *const *dx, struct rn_error *err)
{
    if (!dp_get(l, err))
        return NULL;
    for (int i = 0; i < n_in; i++) {
        if (check_in(l, x[i], i, i ? x[0]->n : -1, "input", err))
            return NULL;
        if (tx && check_in(l, tx[i], i, x[0]->n, "tangent input", err))
            return NULL;
    }
    const int n = x[0]->n;
    if (check_room(l, dy, n, l->out, "output gradient", err))
        return NULL;
    if (tdy && check_room(l, tdy, n, l->out, "output gradient tangent", err))
        return NULL;
    for (int i = 0; i < n_in; i++)
        if (dx && dx[i] && check_room(l, dx[i], n, l->in[i], "input gradient", err))
            return NULL;
    return rn_cuda_get(err);
}

static int copy_d2d(struct rn_cuda *cu, float *dst, const float *src, size_t n,
                    struct rn_error *err)
{
    if (n && dst != src)
        RN_CUDA_CHECK(err, cudaMemcpyAsync(dst, src, n * sizeof(float), cudaMemcpyDeviceToDevice,
                                           cu->stream));
    return 0;
}

/* Zeroed, like the CPU layers' calloc'd state: a pass that reads the state
 * before any forward (the maxpool argmax gather) then stays in bounds
 * instead of faulting the context. Queued on the stream the kernels use. */
static int dev_alloc(void **p, size_t bytes, struct rn_error *err)
{
    *p = NULL;
    struct rn_cuda *cu = rn_cuda_get(err);
    if (!cu)
        return -1;
    RN_CUDA_CHECK(err, cudaMalloc(p, bytes ? bytes : 1));
    RN_CUDA_CHECK(err, cudaMemsetAsync(*p, 0, bytes ? bytes : 1, cu->stream));
    return 0;
}

static float *param_grad(struct rn_param *p)
{
    return p && p->grad.data ? p->grad.data : NULL;
}

/* A trainable parameter or buffer the kernels read: present and on the device. */
static int need_param(const struct rn_layer *l, const struct rn_param *p, const char *name,
                      size_t numel, struct rn_error *err)
{
    if (!p)
        return rn_errorf(err, "layer '%s' (%s): no parameter '%s'", l->name, type_name(l), name);
    if (need_device(l, &p->value, name, err))
        return -1;
    if (rn_tensor_numel(&p->value) != numel)
        return rn_errorf(err, "layer '%s' (%s): parameter '%s' has %zu floats, expected %zu",
                         l->name, type_name(l), name, rn_tensor_numel(&p->value), numel);
    if (p->grad.data && p->grad.device != RN_DEVICE_CUDA)
        return rn_errorf(err, "layer '%s' (%s): the gradient of '%s' is in host memory", l->name,
                         type_name(l), name);
    return 0;
}

/* prepare/release of the types whose only state is max_n. */
static int plain_prepare(struct rn_layer *l, int max_n, struct rn_error *err)
{
    struct dp_base *b = rn_calloc(1, sizeof *b, err);
    if (!b)
        return -1;
    b->max_n = max_n;
    l->dpriv = b;
    return 0;
}

static void plain_release(struct rn_layer *l)
{
    free(l->dpriv);
    l->dpriv = NULL;
}

/* ---- conv2d (layers/conv2d.c) ----------------------------------------------
 *
 * cuDNN 9 marks the whole legacy convolution API (convolution and filter
 * descriptors, Find/Get, cudnnConvolution*) deprecated in favour of the graph
 * API; the attribute only fires with CUDNN_WARN_DEPRECATED. It is supported
 * throughout cuDNN 9 and is what PyTorch's cuDNN convolutions use, so this
 * section opts out of that warning. */
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
    struct dp_base base;
    int cin, h, w, cout, k, stride, pad, hout, wout;
    int deterministic; /* rn_cuda's flag when prepared */
    int desc_n;        /* batch the tensor descriptors are set for; -1 none */
    cudnnTensorDescriptor_t xd, yd; /* (n, Cin, H, W), (n, Cout, Hout, Wout) */
    cudnnFilterDescriptor_t wd;     /* (Cout, Cin, k, k) */
    cudnnConvolutionDescriptor_t cd;
    struct conv_algo *algo; /* [max_n + 1] */
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

static int conv_prepare_into(struct rn_layer *l, struct conv_dp *d, int max_n,
                             struct rn_error *err)
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
    if (need_param(l, d->weight, "weight", (size_t)d->cout * d->cin * d->k * d->k, err) ||
        (d->bias && need_param(l, d->bias, "bias", (size_t)d->cout, err)))
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
    RN_CUDNN_CHECK(err, cudnnSetConvolution2dDescriptor(d->cd, d->pad, d->pad, d->stride,
                                                        d->stride, 1, 1, CUDNN_CROSS_CORRELATION,
                                                        CUDNN_DATA_FLOAT));
    RN_CUDNN_CHECK(err, cudnnSetConvolutionMathType(d->cd, CUDNN_FMA_MATH));
    /* The layer's output shape must be cuDNN's. */
    int on, oc, oh, ow;
    RN_CUDNN_CHECK(err, cudnnSetTensor4dDescriptor(d->xd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1,
                                                   d->cin, d->h, d->w));
    RN_CUDNN_CHECK(err, cudnnGetConvolution2dForwardOutputDim(d->cd, d->xd, d->wd, &on, &oc, &oh,
                                                              &ow));
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
        RN_CUDNN_CHECK(err, cudnnGetConvolutionForwardAlgorithm_v7(
                                cu->cudnn, d->xd, d->wd, d->cd, d->yd, RN_CONV_MAX_ALGOS, &got, perf));
    else
        RN_CUDNN_CHECK(err, cudnnFindConvolutionForwardAlgorithm(
                                cu->cudnn, d->xd, d->wd, d->cd, d->yd, RN_CONV_MAX_ALGOS, &got, perf));
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
        RN_CUDNN_CHECK(err, cudnnGetConvolutionBackwardDataAlgorithm_v7(
                                cu->cudnn, d->wd, d->yd, d->cd, d->xd, RN_CONV_MAX_ALGOS, &got, perf));
    else
        RN_CUDNN_CHECK(err, cudnnFindConvolutionBackwardDataAlgorithm(
                                cu->cudnn, d->wd, d->yd, d->cd, d->xd, RN_CONV_MAX_ALGOS, &got, perf));
    for (int i = 0; i < got; i++) {
        size_t ws = 0;
        if (!conv_usable(d, perf[i].status, perf[i].determinism, perf[i].mathType) ||
            cudnnGetConvolutionBackwardDataWorkspaceSize(cu->cudnn, d->wd, d->yd, d->cd, d->xd,
                                                         perf[i].algo,
                                                         &ws) != CUDNN_STATUS_SUCCESS ||
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
        RN_CUDNN_CHECK(err, cudnnGetConvolutionBackwardFilterAlgorithm_v7(
                                cu->cudnn, d->xd, d->yd, d->cd, d->wd, RN_CONV_MAX_ALGOS, &got, perf));
    else
        RN_CUDNN_CHECK(err, cudnnFindConvolutionBackwardFilterAlgorithm(
                                cu->cudnn, d->xd, d->yd, d->cd, d->wd, RN_CONV_MAX_ALGOS, &got, perf));
    for (int i = 0; i < got; i++) {
        size_t ws = 0;
        if (!conv_usable(d, perf[i].status, perf[i].determinism, perf[i].mathType) ||
            cudnnGetConvolutionBackwardFilterWorkspaceSize(cu->cudnn, d->xd, d->yd, d->cd, d->wd,
                                                           perf[i].algo,
                                                           &ws) != CUDNN_STATUS_SUCCESS ||
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
                                                d->weight->value.data, d->cd, a->fwd,
                                                cu->workspace, a->fwd_ws, &k_zero, d->yd, y));
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
        RN_CUDA_CHECK(err, rn_cuda_channel_sum_acc(dy, n, d->cout, d->hout * d->wout, db,
                                                   cu->stream));
    return 0;
}

static int conv_forward(struct rn_layer *l, const struct rn_tensor *const *x, struct rn_tensor *y,
                        const struct rn_ctx *ctx, struct rn_error *err)
{
    struct rn_cuda *cu = enter_forward(l, x, 1, y, "input", err);
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
    struct rn_cuda *cu = enter_backward(l, x, NULL, 1, dy, NULL, dx, err);
    if (!cu)
        return -1;
    struct conv_dp *d = l->dpriv;
    if (x[0]->n == 0)
        return 0;
    return conv_grads(l, cu, d, x[0]->n, x[0]->data, dy->data, dx && dx[0] ? dx[0]->data : NULL,
                      param_grad(d->weight), param_grad(d->bias), err);
}

static int conv_tangent_forward(struct rn_layer *l, const struct rn_tensor *const *x,
                                const struct rn_tensor *const *tx, struct rn_tensor *ty,
                                const struct rn_ctx *ctx, struct rn_error *err)
{
    struct rn_cuda *cu = enter_forward(l, tx, 1, ty, "tangent input", err);
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
    struct rn_cuda *cu = enter_backward(l, x, tx, 1, dy, tdy, tdx, err);
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
                   param_grad(d->weight), param_grad(d->bias), err))
        return -1;
    return conv_grads(l, cu, d, n, tx[0]->data, dy->data, NULL, param_grad(d->weight), NULL, err);
}

#pragma GCC diagnostic pop

/* ---- linear (layers/linear.c) ------------------------------------------------
 *
 * Row-major y (n, units) = x (n, C) W^T with W (units, C) is, in cuBLAS's
 * column-major terms, y^T (units, n) = W^T(col) ^T x^T(col): the buffers are
 * used as they are, only the transposes move. */

/* params[0] is the weight, params[1] the bias when there is one. */
static struct rn_param *linear_bias(struct rn_layer *l)
{
    return l->n_params > 1 ? &l->params[1] : NULL;
}

static int linear_prepare(struct rn_layer *l, int max_n, struct rn_error *err)
{
    const size_t units = (size_t)l->out.c, c = (size_t)l->in[0].c;
    if (l->n_params < 1)
        return rn_errorf(err, "layer '%s' (linear): no weight", l->name);
    if (need_param(l, &l->params[0], "weight", units * c, err) ||
        (linear_bias(l) && need_param(l, linear_bias(l), "bias", units, err)))
        return -1;
    return plain_prepare(l, max_n, err);
}

/* y = x W^T (+ bias), overwriting y. */
static int linear_apply(struct rn_layer *l, struct rn_cuda *cu, int n, const float *x, float *y,
                        int with_bias, struct rn_error *err)
{
    const int c = l->in[0].c, units = l->out.c;
    if (n == 0)
        return 0;
    RN_CUBLAS_CHECK(err, cublasSgemm(cu->cublas, CUBLAS_OP_T, CUBLAS_OP_N, units, n, c, &k_one,
                                     l->params[0].value.data, c, x, c, &k_zero, y, units));
    const struct rn_param *b = with_bias ? linear_bias(l) : NULL;
    if (b)
        RN_CUDA_CHECK(err, rn_cuda_channel_bias_add(y, b->value.data, n, units, 1, cu->stream));
    return 0;
}

/* dW (units, C) += dy^T x; dbias += column sums of dy; dx (n, C) += dy W.
 * Each part is skipped when its output is NULL. */
static int linear_grads(struct rn_layer *l, struct rn_cuda *cu, int n, const float *x,
                        const float *dy, float *dx, float *dw, float *db, struct rn_error *err)
{
    const int c = l->in[0].c, units = l->out.c;
    if (n == 0)
        return 0;
    if (dw)
        RN_CUBLAS_CHECK(err, cublasSgemm(cu->cublas, CUBLAS_OP_N, CUBLAS_OP_T, c, units, n, &k_one,
                                         x, c, dy, units, &k_one, dw, c));
    if (db)
        RN_CUDA_CHECK(err, rn_cuda_channel_sum_acc(dy, n, units, 1, db, cu->stream));
    if (dx)
        RN_CUBLAS_CHECK(err, cublasSgemm(cu->cublas, CUBLAS_OP_N, CUBLAS_OP_N, c, n, units, &k_one,
                                         l->params[0].value.data, c, dy, units, &k_one, dx, c));
    return 0;
}

static int linear_forward(struct rn_layer *l, const struct rn_tensor *const *x,
                          struct rn_tensor *y, const struct rn_ctx *ctx, struct rn_error *err)
{
    struct rn_cuda *cu = enter_forward(l, x, 1, y, "input", err);
    if (!cu)
        return -1;
    y->n = x[0]->n;
    return linear_apply(l, cu, y->n, x[0]->data, y->data, 1, err);
}

static int linear_backward(struct rn_layer *l, const struct rn_tensor *const *x,
                           const struct rn_tensor *y, const struct rn_tensor *dy,
                           struct rn_tensor *const *dx, const struct rn_ctx *ctx,
                           struct rn_error *err)
{
    struct rn_cuda *cu = enter_backward(l, x, NULL, 1, dy, NULL, dx, err);
    if (!cu)
        return -1;
    return linear_grads(l, cu, x[0]->n, x[0]->data, dy->data, dx && dx[0] ? dx[0]->data : NULL,
                        param_grad(&l->params[0]), param_grad(linear_bias(l)), err);
}

static int linear_tangent_forward(struct rn_layer *l, const struct rn_tensor *const *x,
                                  const struct rn_tensor *const *tx, struct rn_tensor *ty,
                                  const struct rn_ctx *ctx, struct rn_error *err)
{
    struct rn_cuda *cu = enter_forward(l, tx, 1, ty, "tangent input", err);
    if (!cu)
        return -1;
    ty->n = tx[0]->n;
    return linear_apply(l, cu, ty->n, tx[0]->data, ty->data, 0, err);
}

static int linear_tangent_backward(struct rn_layer *l, const struct rn_tensor *const *x,
                                   const struct rn_tensor *const *tx, const struct rn_tensor *dy,
                                   const struct rn_tensor *tdy, struct rn_tensor *const *tdx,
                                   const struct rn_ctx *ctx, struct rn_error *err)
{
    struct rn_cuda *cu = enter_backward(l, x, tx, 1, dy, tdy, tdx, err);
    if (!cu)
        return -1;
    /* tdx += tdy W; dW += tdy^T x + dy^T tx; dbias += sum(tdy). */
    const int n = x[0]->n;
    float *dw = param_grad(&l->params[0]);
    if (linear_grads(l, cu, n, x[0]->data, tdy->data, tdx && tdx[0] ? tdx[0]->data : NULL, dw,
                     param_grad(linear_bias(l)), err))
        return -1;
    return linear_grads(l, cu, n, tx[0]->data, dy->data, NULL, dw, NULL, err);
}

/* ---- relu (layers/relu.c) ---------------------------------------------------- */

static int relu_forward(struct rn_layer *l, const struct rn_tensor *const *x, struct rn_tensor *y,
                        const struct rn_ctx *ctx, struct rn_error *err)
{
    struct rn_cuda *cu = enter_forward(l, x, 1, y, "input", err);
    if (!cu)
        return -1;
    y->n = x[0]->n;
    RN_CUDA_CHECK(err,
                  rn_cuda_relu_forward(x[0]->data, y->data, rn_tensor_numel(x[0]), cu->stream));
    return 0;
}

static int relu_backward(struct rn_layer *l, const struct rn_tensor *const *x,
                         const struct rn_tensor *y, const struct rn_tensor *dy,
                         struct rn_tensor *const *dx, const struct rn_ctx *ctx,
                         struct rn_error *err)
{
    struct rn_cuda *cu = enter_backward(l, x, NULL, 1, dy, NULL, dx, err);
    if (!cu)
        return -1;
    if (dx && dx[0])
        RN_CUDA_CHECK(err, rn_cuda_relu_mask_acc(x[0]->data, dy->data, dx[0]->data,
                                                 rn_tensor_numel(x[0]), cu->stream));
    return 0;
}

static int relu_tangent_forward(struct rn_layer *l, const struct rn_tensor *const *x,
                                const struct rn_tensor *const *tx, struct rn_tensor *ty,
                                const struct rn_ctx *ctx, struct rn_error *err)
{
    struct rn_cuda *cu = enter_forward(l, x, 1, ty, "input", err);
    if (!cu || check_in(l, tx[0], 0, x[0]->n, "tangent input", err))
        return -1;
    ty->n = x[0]->n;
    RN_CUDA_CHECK(err, rn_cuda_relu_mask(x[0]->data, tx[0]->data, ty->data, rn_tensor_numel(x[0]),
                                         cu->stream));
    return 0;
}

/* The Jacobian is constant between kinks: the tangent of the backward is
 * the backward applied to tdy. */
static int relu_tangent_backward(struct rn_layer *l, const struct rn_tensor *const *x,
                                 const struct rn_tensor *const *tx, const struct rn_tensor *dy,
                                 const struct rn_tensor *tdy, struct rn_tensor *const *tdx,
                                 const struct rn_ctx *ctx, struct rn_error *err)
{
    struct rn_cuda *cu = enter_backward(l, x, NULL, 1, tdy, NULL, tdx, err);
    if (!cu)
        return -1;
    if (tdx && tdx[0])
        RN_CUDA_CHECK(err, rn_cuda_relu_mask_acc(x[0]->data, tdy->data, tdx[0]->data,
                                                 rn_tensor_numel(x[0]), cu->stream));
    return 0;
}

/* ---- pooling geometry (layers/maxpool2d.c, avgpool2d.c) ------------------------ */

enum { POOL_K_KERNEL, POOL_K_STRIDE, POOL_K_PADDING };

/* The window from the keys (stride 0 = kernel), the shapes from the layer. */
static struct rn_cuda_pool_geom pool_geom(const struct rn_layer *l, int n)
{
    struct rn_cuda_pool_geom g;
    g.n = n;
    g.c = l->in[0].c;
    g.h = l->in[0].h;
    g.w = l->in[0].w;
    g.ho = l->out.h;
    g.wo = l->out.w;
    g.k = (int)l->v.num[POOL_K_KERNEL];
    g.s = (int)l->v.num[POOL_K_STRIDE];
    g.p = (int)l->v.num[POOL_K_PADDING];
    if (g.s == 0)
        g.s = g.k;
    return g;
}

/* ---- maxpool2d (layers/maxpool2d.c) -------------------------------------------- */

struct maxpool_dp {
    struct dp_base base;
    int32_t *arg; /* (max_n, C, Hout, Wout): first argmax within the input plane */
};

static void maxpool_release(struct rn_layer *l)
{
    struct maxpool_dp *d = l->dpriv;
    if (!d)
        return;
    if (d->arg)
        cudaFree(d->arg);
    free(d);
    l->dpriv = NULL;
}

static int maxpool_prepare(struct rn_layer *l, int max_n, struct rn_error *err)
{
    struct maxpool_dp *d = rn_calloc(1, sizeof *d, err);
    if (!d)
        return -1;
    d->base.max_n = max_n;
    l->dpriv = d;
    if (dev_alloc((void **)&d->arg, (size_t)max_n * shape_numel(l->out) * sizeof *d->arg, err)) {
        maxpool_release(l);
        return -1;
    }
    return 0;
}

static int maxpool_forward(struct rn_layer *l, const struct rn_tensor *const *x,
                           struct rn_tensor *y, const struct rn_ctx *ctx, struct rn_error *err)
{
    struct rn_cuda *cu = enter_forward(l, x, 1, y, "input", err);
    if (!cu)
        return -1;
    const struct maxpool_dp *d = l->dpriv;
    const struct rn_cuda_pool_geom g = pool_geom(l, x[0]->n);
    y->n = x[0]->n;
    RN_CUDA_CHECK(err, rn_cuda_maxpool_forward(&g, x[0]->data, y->data, d->arg, cu->stream));
    return 0;
}

static int maxpool_backward(struct rn_layer *l, const struct rn_tensor *const *x,
                            const struct rn_tensor *y, const struct rn_tensor *dy,
                            struct rn_tensor *const *dx, const struct rn_ctx *ctx,
                            struct rn_error *err)
{
    struct rn_cuda *cu = enter_backward(l, x, NULL, 1, dy, NULL, dx, err);
    if (!cu)
        return -1;
    const struct maxpool_dp *d = l->dpriv;
    const struct rn_cuda_pool_geom g = pool_geom(l, x[0]->n);
    if (dx && dx[0])
        RN_CUDA_CHECK(err,
                      rn_cuda_maxpool_backward_acc(&g, d->arg, dy->data, dx[0]->data, cu->stream));
    return 0;
}

static int maxpool_tangent_forward(struct rn_layer *l, const struct rn_tensor *const *x,
                                   const struct rn_tensor *const *tx, struct rn_tensor *ty,
                                   const struct rn_ctx *ctx, struct rn_error *err)
{
    struct rn_cuda *cu = enter_forward(l, x, 1, ty, "input", err);
    if (!cu || check_in(l, tx[0], 0, x[0]->n, "tangent input", err))
        return -1;
    const struct maxpool_dp *d = l->dpriv;
    const struct rn_cuda_pool_geom g = pool_geom(l, x[0]->n);
    ty->n = x[0]->n;
    RN_CUDA_CHECK(err, rn_cuda_maxpool_gather(&g, d->arg, tx[0]->data, ty->data, cu->stream));
    return 0;
}

static int maxpool_tangent_backward(struct rn_layer *l, const struct rn_tensor *const *x,
                                    const struct rn_tensor *const *tx, const struct rn_tensor *dy,
                                    const struct rn_tensor *tdy, struct rn_tensor *const *tdx,
                                    const struct rn_ctx *ctx, struct rn_error *err)
{
    struct rn_cuda *cu = enter_backward(l, x, NULL, 1, tdy, NULL, tdx, err);
    if (!cu)
        return -1;
    const struct maxpool_dp *d = l->dpriv;
    const struct rn_cuda_pool_geom g = pool_geom(l, x[0]->n);
    if (tdx && tdx[0])
        RN_CUDA_CHECK(err, rn_cuda_maxpool_backward_acc(&g, d->arg, tdy->data, tdx[0]->data,
                                                        cu->stream));
    return 0;
}

/* ---- avgpool2d (layers/avgpool2d.c): linear, tangents are the same maps ------- */

static int avgpool_forward(struct rn_layer *l, const struct rn_tensor *const *x,
                           struct rn_tensor *y, const struct rn_ctx *ctx, struct rn_error *err)
{
    struct rn_cuda *cu = enter_forward(l, x, 1, y, "input", err);
    if (!cu)
        return -1;
    const struct rn_cuda_pool_geom g = pool_geom(l, x[0]->n);
    y->n = x[0]->n;
    RN_CUDA_CHECK(err, rn_cuda_avgpool_forward(&g, x[0]->data, y->data, cu->stream));
    return 0;
}

static int avgpool_backward(struct rn_layer *l, const struct rn_tensor *const *x,
                            const struct rn_tensor *y, const struct rn_tensor *dy,
                            struct rn_tensor *const *dx, const struct rn_ctx *ctx,
                            struct rn_error *err)
{
    struct rn_cuda *cu = enter_backward(l, x, NULL, 1, dy, NULL, dx, err);
    if (!cu)
        return -1;
    const struct rn_cuda_pool_geom g = pool_geom(l, x[0]->n);
    if (dx && dx[0])
        RN_CUDA_CHECK(err, rn_cuda_avgpool_backward_acc(&g, dy->data, dx[0]->data, cu->stream));
    return 0;
}

static int avgpool_tangent_forward(struct rn_layer *l, const struct rn_tensor *const *x,
                                   const struct rn_tensor *const *tx, struct rn_tensor *ty,
                                   const struct rn_ctx *ctx, struct rn_error *err)
{
    return avgpool_forward(l, tx, ty, ctx, err);
}

static int avgpool_tangent_backward(struct rn_layer *l, const struct rn_tensor *const *x,
                                    const struct rn_tensor *const *tx, const struct rn_tensor *dy,
                                    const struct rn_tensor *tdy, struct rn_tensor *const *tdx,
                                    const struct rn_ctx *ctx, struct rn_error *err)
{
    return avgpool_backward(l, x, NULL, tdy, tdx, ctx, err);
}

/* ---- global_avg_pool (layers/global_avg_pool.c) --------------------------------- */

static int gap_forward(struct rn_layer *l, const struct rn_tensor *const *x, struct rn_tensor *y,
                       const struct rn_ctx *ctx, struct rn_error *err)
{
    struct rn_cuda *cu = enter_forward(l, x, 1, y, "input", err);
    if (!cu)
        return -1;
    y->n = x[0]->n;
    RN_CUDA_CHECK(err, rn_cuda_gap_forward(x[0]->data, y->data, (size_t)x[0]->n * l->in[0].c,
                                           l->in[0].h * l->in[0].w, cu->stream));
    return 0;
}

static int gap_backward(struct rn_layer *l, const struct rn_tensor *const *x,
                        const struct rn_tensor *y, const struct rn_tensor *dy,
                        struct rn_tensor *const *dx, const struct rn_ctx *ctx, struct rn_error *err)
{
    struct rn_cuda *cu = enter_backward(l, x, NULL, 1, dy, NULL, dx, err);
    if (!cu)
        return -1;
    if (dx && dx[0])
        RN_CUDA_CHECK(err, rn_cuda_gap_backward_acc(dy->data, dx[0]->data,
                                                    (size_t)x[0]->n * l->in[0].c,
                                                    l->in[0].h * l->in[0].w, cu->stream));
    return 0;
}

static int gap_tangent_forward(struct rn_layer *l, const struct rn_tensor *const *x,
                               const struct rn_tensor *const *tx, struct rn_tensor *ty,
                               const struct rn_ctx *ctx, struct rn_error *err)
{
    return gap_forward(l, tx, ty, ctx, err);
}

static int gap_tangent_backward(struct rn_layer *l, const struct rn_tensor *const *x,
                                const struct rn_tensor *const *tx, const struct rn_tensor *dy,
                                const struct rn_tensor *tdy, struct rn_tensor *const *tdx,
                                const struct rn_ctx *ctx, struct rn_error *err)
{
    return gap_backward(l, x, NULL, tdy, tdx, ctx, err);
}

/* ---- flatten (layers/flatten.c): NCHW already is the flattened order ----------- */

static int flatten_forward(struct rn_layer *l, const struct rn_tensor *const *x,
                           struct rn_tensor *y, const struct rn_ctx *ctx, struct rn_error *err)
{
    struct rn_cuda *cu = enter_forward(l, x, 1, y, "input", err);
    if (!cu)
        return -1;
    y->n = x[0]->n;
    return copy_d2d(cu, y->data, x[0]->data, rn_tensor_numel(x[0]), err);
}

/* dx += dy: also the backward of add (per input) and of eval-mode dropout. */
static int acc_into(struct rn_cuda *cu, const struct rn_tensor *g, struct rn_tensor *out,
                    size_t n, struct rn_error *err)
{
    if (out)
        RN_CUDA_CHECK(err, rn_cuda_axpy_acc(1.0f, g->data, out->data, n, cu->stream));
    return 0;
}

static int flatten_backward(struct rn_layer *l, const struct rn_tensor *const *x,
                            const struct rn_tensor *y, const struct rn_tensor *dy,
                            struct rn_tensor *const *dx, const struct rn_ctx *ctx,
                            struct rn_error *err)
{
    struct rn_cuda *cu = enter_backward(l, x, NULL, 1, dy, NULL, dx, err);
    if (!cu)
        return -1;
    return acc_into(cu, dy, dx ? dx[0] : NULL, rn_tensor_numel(x[0]), err);
}

static int flatten_tangent_forward(struct rn_layer *l, const struct rn_tensor *const *x,
                                   const struct rn_tensor *const *tx, struct rn_tensor *ty,
                                   const struct rn_ctx *ctx, struct rn_error *err)
{
    return flatten_forward(l, tx, ty, ctx, err);
}

static int flatten_tangent_backward(struct rn_layer *l, const struct rn_tensor *const *x,
                                    const struct rn_tensor *const *tx, const struct rn_tensor *dy,
                                    const struct rn_tensor *tdy, struct rn_tensor *const *tdx,
                                    const struct rn_ctx *ctx, struct rn_error *err)
{
    return flatten_backward(l, x, NULL, tdy, tdx, ctx, err);
}

/* ---- dropout (layers/dropout.c) --------------------------------------------------
 *
 * The mask is the CPU's, bit for bit: the same stream (seed, RN_STREAM_DROPOUT,
 * step*1024 + node), one uniform per element in memory order, kept when
 * u >= p; the kernel reaches element i by PCG skip-ahead. */

enum { DROPOUT_K_P };

struct dropout_dp {
    struct dp_base base;
    float *mask; /* (max_n, C, H, W): 0 or 1/(1-p), from the last training forward */
    int train;   /* mode of the last forward: backward and tangents follow it */
};

static void dropout_release(struct rn_layer *l)
{
    struct dropout_dp *d = l->dpriv;
    if (!d)
        return;
    if (d->mask)
        cudaFree(d->mask);
    free(d);
    l->dpriv = NULL;
}

static int dropout_prepare(struct rn_layer *l, int max_n, struct rn_error *err)
{
    struct dropout_dp *d = rn_calloc(1, sizeof *d, err);
    if (!d)
        return -1;
    d->base.max_n = max_n;
    l->dpriv = d;
    if (dev_alloc((void **)&d->mask, (size_t)max_n * shape_numel(l->in[0]) * sizeof *d->mask,
                  err)) {
        dropout_release(l);
        return -1;
    }
    return 0;
}

/* out = m * g (set) or out += m * g (acc); the identity in eval mode. */
static int dropout_apply(struct rn_cuda *cu, const struct dropout_dp *d, const float *g,
                         float *out, size_t n, int acc, struct rn_error *err)
{
    if (!d->train) {
        if (acc)
            RN_CUDA_CHECK(err, rn_cuda_axpy_acc(1.0f, g, out, n, cu->stream));
        else
            return copy_d2d(cu, out, g, n, err);
        return 0;
    }
    if (acc)
        RN_CUDA_CHECK(err, rn_cuda_mul_acc(d->mask, g, out, n, cu->stream));
    else
        RN_CUDA_CHECK(err, rn_cuda_mul(d->mask, g, out, n, cu->stream));
    return 0;
}

static int dropout_forward(struct rn_layer *l, const struct rn_tensor *const *x,
                           struct rn_tensor *y, const struct rn_ctx *ctx, struct rn_error *err)
{
    struct rn_cuda *cu = enter_forward(l, x, 1, y, "input", err);
    if (!cu)
        return -1;
    struct dropout_dp *d = l->dpriv;
    const double p = l->v.num[DROPOUT_K_P];
    const size_t n = rn_tensor_numel(x[0]);
    y->n = x[0]->n;
    d->train = ctx->train != 0;
    if (d->train) {
        struct rn_rng r;
        rn_rng_init(&r, ctx->seed, RN_STREAM_DROPOUT, ctx->step * 1024 + (uint64_t)ctx->node);
        const float scale = (float)(1.0 / (1.0 - p));
        RN_CUDA_CHECK(err, rn_cuda_dropout_mask(d->mask, n, r.state, r.inc, p, scale, cu->stream));
    }
    return dropout_apply(cu, d, x[0]->data, y->data, n, 0, err);
}

static int dropout_backward(struct rn_layer *l, const struct rn_tensor *const *x,
                            const struct rn_tensor *y, const struct rn_tensor *dy,
                            struct rn_tensor *const *dx, const struct rn_ctx *ctx,
                            struct rn_error *err)
{
    struct rn_cuda *cu = enter_backward(l, x, NULL, 1, dy, NULL, dx, err);
    if (!cu ||
        rn_layer_check_mode(l, ctx, ((const struct dropout_dp *)l->dpriv)->train, "backward", err))
        return -1;
    if (dx && dx[0])
        return dropout_apply(cu, l->dpriv, dy->data, dx[0]->data, rn_tensor_numel(x[0]), 1, err);
    return 0;
}

static int dropout_tangent_forward(struct rn_layer *l, const struct rn_tensor *const *x,
                                   const struct rn_tensor *const *tx, struct rn_tensor *ty,
                                   const struct rn_ctx *ctx, struct rn_error *err)
{
    struct rn_cuda *cu = enter_forward(l, x, 1, ty, "input", err);
    if (!cu || check_in(l, tx[0], 0, x[0]->n, "tangent input", err) ||
        rn_layer_check_mode(l, ctx, ((const struct dropout_dp *)l->dpriv)->train, "tangent forward",
                            err))
        return -1;
    ty->n = x[0]->n;
    return dropout_apply(cu, l->dpriv, tx[0]->data, ty->data, rn_tensor_numel(x[0]), 0, err);
}

static int dropout_tangent_backward(struct rn_layer *l, const struct rn_tensor *const *x,
                                    const struct rn_tensor *const *tx, const struct rn_tensor *dy,
                                    const struct rn_tensor *tdy, struct rn_tensor *const *tdx,
                                    const struct rn_ctx *ctx, struct rn_error *err)
{
    struct rn_cuda *cu = enter_backward(l, x, NULL, 1, tdy, NULL, tdx, err);
    if (!cu || rn_layer_check_mode(l, ctx, ((const struct dropout_dp *)l->dpriv)->train,
                                   "tangent backward", err))
        return -1;
    if (tdx && tdx[0])
        return dropout_apply(cu, l->dpriv, tdy->data, tdx[0]->data, rn_tensor_numel(x[0]), 1,
                             err);
    return 0;
}

/* ---- batchnorm (layers/batchnorm.c) -----------------------------------------------
 *
 * Own kernels rather than cudnnBatchNormalization*, which cuDNN 9 deprecates:
 * statistics in double with the CPU's two passes, running statistics with
 * PyTorch's momentum and the unbiased variance, num_batches_tracked counted
 * on whichever side it lives. */

enum { BN_K_EPS, BN_K_MOMENTUM };
enum { BN_P_WEIGHT, BN_P_BIAS, BN_P_RUNNING_MEAN, BN_P_RUNNING_VAR, BN_P_NUM_BATCHES };

struct bn_dp {
    struct dp_base base;
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
    if (need_param(l, &l->params[BN_P_WEIGHT], "weight", C, err) ||
        need_param(l, &l->params[BN_P_BIAS], "bias", C, err) ||
        need_param(l, &l->params[BN_P_RUNNING_MEAN], "running_mean", C, err) ||
        need_param(l, &l->params[BN_P_RUNNING_VAR], "running_var", C, err))
        return -1;
    if (!l->params[BN_P_NUM_BATCHES].value.data)
        return rn_errorf(err, "layer '%s' (batchnorm): no num_batches_tracked", l->name);
    struct bn_dp *d = rn_calloc(1, sizeof *d, err);
    if (!d)
        return -1;
    d->base.max_n = max_n;
    l->dpriv = d;
    if (dev_alloc((void **)&d->mean, C * sizeof(float), err) ||
        dev_alloc((void **)&d->invstd, C * sizeof(float), err)) {
        bn_release(l);
        return -1;
    }
    return 0;
}

static int bn_forward(struct rn_layer *l, const struct rn_tensor *const *x, struct rn_tensor *y,
                      const struct rn_ctx *ctx, struct rn_error *err)
{
    struct rn_cuda *cu = enter_forward(l, x, 1, y, "input", err);
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
    RN_CUDA_CHECK(err, rn_cuda_bn_apply(x[0]->data, p[BN_P_WEIGHT].value.data,
                                        p[BN_P_BIAS].value.data, d->mean, d->invstd, N, C, HW,
                                        y->data, cu->stream));
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
    struct rn_cuda *cu = enter_backward(l, x, NULL, 1, dy, NULL, dx, err);
    if (!cu ||
        rn_layer_check_mode(l, ctx, ((const struct bn_dp *)l->dpriv)->train, "backward", err))
        return -1;
    const struct bn_dp *d = l->dpriv;
    struct rn_param *p = l->params;
    RN_CUDA_CHECK(err, rn_cuda_bn_backward(x[0]->data, dy->data, p[BN_P_WEIGHT].value.data,
                                           d->mean, d->invstd, x[0]->n, l->in[0].c,
                                           l->in[0].h * l->in[0].w, d->train,
                                           param_grad(&p[BN_P_WEIGHT]), param_grad(&p[BN_P_BIAS]),
                                           dx && dx[0] ? dx[0]->data : NULL, cu->stream));
    return 0;
}

static int bn_tangent_forward(struct rn_layer *l, const struct rn_tensor *const *x,
                              const struct rn_tensor *const *tx, struct rn_tensor *ty,
                              const struct rn_ctx *ctx, struct rn_error *err)
{
    struct rn_cuda *cu = enter_forward(l, x, 1, ty, "input", err);
    if (!cu || check_in(l, tx[0], 0, x[0]->n, "tangent input", err) ||
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
    struct rn_cuda *cu = enter_backward(l, x, tx, 1, dy, tdy, tdx, err);
    if (!cu || rn_layer_check_eval_tangent(l, ctx, ((const struct bn_dp *)l->dpriv)->train,
                                           "tangent backward", err))
        return -1;
    const struct bn_dp *d = l->dpriv;
    struct rn_param *p = l->params;
    RN_CUDA_CHECK(err, rn_cuda_bn_tangent_backward(
                           x[0]->data, tx[0]->data, dy->data, tdy->data, p[BN_P_WEIGHT].value.data,
                           d->mean, d->invstd, x[0]->n, l->in[0].c, l->in[0].h * l->in[0].w,
                           param_grad(&p[BN_P_WEIGHT]), param_grad(&p[BN_P_BIAS]),
                           tdx && tdx[0] ? tdx[0]->data : NULL, cu->stream));
    return 0;
}

/* ---- add (layers/add.c) ------------------------------------------------------------ */

static int add_forward(struct rn_layer *l, const struct rn_tensor *const *x, struct rn_tensor *y,
                       const struct rn_ctx *ctx, struct rn_error *err)
{
    struct rn_cuda *cu = enter_forward(l, x, 2, y, "input", err);
    if (!cu)
        return -1;
    y->n = x[0]->n;
    RN_CUDA_CHECK(err, rn_cuda_add(x[0]->data, x[1]->data, y->data, rn_tensor_numel(x[0]),
                                   cu->stream));
    return 0;
}

static int add_backward(struct rn_layer *l, const struct rn_tensor *const *x,
                        const struct rn_tensor *y, const struct rn_tensor *dy,
                        struct rn_tensor *const *dx, const struct rn_ctx *ctx, struct rn_error *err)
{
    struct rn_cuda *cu = enter_backward(l, x, NULL, 2, dy, NULL, dx, err);
    if (!cu)
        return -1;
    const size_t n = rn_tensor_numel(x[0]);
    for (int i = 0; i < 2; i++)
        if (dx && acc_into(cu, dy, dx[i], n, err))
            return -1;
    return 0;
}

static int add_tangent_forward(struct rn_layer *l, const struct rn_tensor *const *x,
                               const struct rn_tensor *const *tx, struct rn_tensor *ty,
                               const struct rn_ctx *ctx, struct rn_error *err)
{
    return add_forward(l, tx, ty, ctx, err);
}

static int add_tangent_backward(struct rn_layer *l, const struct rn_tensor *const *x,
                                const struct rn_tensor *const *tx, const struct rn_tensor *dy,
                                const struct rn_tensor *tdy, struct rn_tensor *const *tdx,
                                const struct rn_ctx *ctx, struct rn_error *err)
{
    return add_backward(l, x, NULL, tdy, tdx, ctx, err);
}

/* ---- grl (layers/grl.c): identity forward, -alpha * dy backward ----------------------
 *
 * alpha is key 0, read at every call: the training loop rewrites it per step. */

enum { GRL_K_ALPHA };

static int grl_forward(struct rn_layer *l, const struct rn_tensor *const *x, struct rn_tensor *y,
                       const struct rn_ctx *ctx, struct rn_error *err)
{
    struct rn_cuda *cu = enter_forward(l, x, 1, y, "input", err);
    if (!cu)
        return -1;
    y->n = x[0]->n;
    return copy_d2d(cu, y->data, x[0]->data, rn_tensor_numel(x[0]), err);
}

static int grl_backward(struct rn_layer *l, const struct rn_tensor *const *x,
                        const struct rn_tensor *y, const struct rn_tensor *dy,
                        struct rn_tensor *const *dx, const struct rn_ctx *ctx, struct rn_error *err)
{
    struct rn_cuda *cu = enter_backward(l, x, NULL, 1, dy, NULL, dx, err);
    if (!cu)
        return -1;
    const double alpha = l->v.num[GRL_K_ALPHA];
    /* alpha == 0 leaves dx untouched (not even -0 * inf). */
    if (dx && dx[0] && alpha != 0.0)
        RN_CUDA_CHECK(err, rn_cuda_axpy_acc((float)-alpha, dy->data, dx[0]->data,
                                            rn_tensor_numel(x[0]), cu->stream));
    return 0;
}

static int grl_tangent_forward(struct rn_layer *l, const struct rn_tensor *const *x,
                               const struct rn_tensor *const *tx, struct rn_tensor *ty,
                               const struct rn_ctx *ctx, struct rn_error *err)
{
    return grl_forward(l, tx, ty, ctx, err);
}

static int grl_tangent_backward(struct rn_layer *l, const struct rn_tensor *const *x,
                                const struct rn_tensor *const *tx, const struct rn_tensor *dy,
                                const struct rn_tensor *tdy, struct rn_tensor *const *tdx,
                                const struct rn_ctx *ctx, struct rn_error *err)
{
    return grl_backward(l, x, NULL, tdy, tdx, ctx, err);
}

/* ---- the table ------------------------------------------------------------------------ */

static const struct rn_layer_kernels cuda_kernels[] = {
    {.type = "conv2d",
     .prepare = conv_prepare,
     .release = conv_release,
     .forward = conv_forward,
     .backward = conv_backward,
     .tangent_forward = conv_tangent_forward,
     .tangent_backward = conv_tangent_backward},
    {.type = "linear",
     .prepare = linear_prepare,
     .release = plain_release,
     .forward = linear_forward,
     .backward = linear_backward,
     .tangent_forward = linear_tangent_forward,
     .tangent_backward = linear_tangent_backward},
    {.type = "relu",
     .prepare = plain_prepare,
     .release = plain_release,
     .forward = relu_forward,
     .backward = relu_backward,
     .tangent_forward = relu_tangent_forward,
     .tangent_backward = relu_tangent_backward},
    {.type = "maxpool2d",
     .prepare = maxpool_prepare,
     .release = maxpool_release,
     .forward = maxpool_forward,
     .backward = maxpool_backward,
     .tangent_forward = maxpool_tangent_forward,
     .tangent_backward = maxpool_tangent_backward},
    {.type = "avgpool2d",
     .prepare = plain_prepare,
     .release = plain_release,
     .forward = avgpool_forward,
     .backward = avgpool_backward,
     .tangent_forward = avgpool_tangent_forward,
     .tangent_backward = avgpool_tangent_backward},
    {.type = "global_avg_pool",
     .prepare = plain_prepare,
     .release = plain_release,
     .forward = gap_forward,
     .backward = gap_backward,
     .tangent_forward = gap_tangent_forward,
     .tangent_backward = gap_tangent_backward},
    {.type = "flatten",
     .prepare = plain_prepare,
     .release = plain_release,
     .forward = flatten_forward,
     .backward = flatten_backward,
     .tangent_forward = flatten_tangent_forward,
     .tangent_backward = flatten_tangent_backward},
    {.type = "dropout",
     .prepare = dropout_prepare,
     .release = dropout_release,
     .forward = dropout_forward,
     .backward = dropout_backward,
     .tangent_forward = dropout_tangent_forward,
     .tangent_backward = dropout_tangent_backward},
    {.type = "batchnorm",
     .prepare = bn_prepare,
     .release = bn_release,
     .forward = bn_forward,
     .backward = bn_backward,
     .tangent_forward = bn_tangent_forward,
     .tangent_backward = bn_tangent_backward},
    {.type = "add",
     .prepare = plain_prepare,
     .release = plain_release,
     .forward = add_forward,
     .backward = add_backward,
     .tangent_forward = add_tangent_forward,
     .tangent_backward = add_tangent_backward},
    {.type = "grl",
     .prepare = plain_prepare,
     .release = plain_release,
     .forward = grl_forward,
     .backward = grl_backward,
     .tangent_forward = grl_tangent_forward,
     .tangent_backward = grl_tangent_backward},
};

const struct rn_layer_kernels *rn_cuda_layer_kernels(const char *type)
{
    if (!type)
        return NULL;
    for (size_t i = 0; i < sizeof cuda_kernels / sizeof cuda_kernels[0]; i++)
        if (strcmp(cuda_kernels[i].type, type) == 0)
            return &cuda_kernels[i];
    return NULL;
}
