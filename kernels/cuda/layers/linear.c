/* kernels/cuda/layers/linear.c - the device kernels of linear (layers/linear.c): cuBLAS
 * SGEMMs in the default FP32 mode; the bias and its gradient by the
 * per-channel kernels of elementwise.cu.
 *
 * Row-major y (n, units) = x (n, C) W^T with W (units, C) is, in cuBLAS's
 * column-major terms, y^T (units, n) = W^T(col) ^T x^T(col): the buffers are
 * used as they are, only the transposes move.
 *
 * Conventions: common.h. */
#include "kernels/cuda/layers/common.h"

static const float k_one = 1.0f, k_zero = 0.0f;

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
    if (rn_cuda_need_param(l, &l->params[0], "weight", units * c, err) ||
        (linear_bias(l) && rn_cuda_need_param(l, linear_bias(l), "bias", units, err)))
        return -1;
    return rn_cuda_plain_prepare(l, max_n, err);
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

static int linear_forward(struct rn_layer *l, const struct rn_tensor *const *x, struct rn_tensor *y,
                          const struct rn_ctx *ctx, struct rn_error *err)
{
    struct rn_cuda *cu = rn_cuda_enter_forward(l, x, 1, y, "input", err);
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
    struct rn_cuda *cu = rn_cuda_enter_backward(l, x, NULL, 1, dy, NULL, dx, err);
    if (!cu)
        return -1;
    return linear_grads(l, cu, x[0]->n, x[0]->data, dy->data, dx && dx[0] ? dx[0]->data : NULL,
                        rn_cuda_param_grad(&l->params[0]), rn_cuda_param_grad(linear_bias(l)), err);
}

static int linear_tangent_forward(struct rn_layer *l, const struct rn_tensor *const *x,
                                  const struct rn_tensor *const *tx, struct rn_tensor *ty,
                                  const struct rn_ctx *ctx, struct rn_error *err)
{
    struct rn_cuda *cu = rn_cuda_enter_forward(l, tx, 1, ty, "tangent input", err);
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
    struct rn_cuda *cu = rn_cuda_enter_backward(l, x, tx, 1, dy, tdy, tdx, err);
    if (!cu)
        return -1;
    /* tdx += tdy W; dW += tdy^T x + dy^T tx; dbias += sum(tdy). */
    const int n = x[0]->n;
    float *dw = rn_cuda_param_grad(&l->params[0]);
    if (linear_grads(l, cu, n, x[0]->data, tdy->data, tdx && tdx[0] ? tdx[0]->data : NULL, dw,
                     rn_cuda_param_grad(linear_bias(l)), err))
        return -1;
    return linear_grads(l, cu, n, tx[0]->data, dy->data, NULL, dw, NULL, err);
}

const struct rn_layer_kernels rn_cuda_layer_linear = {
    .type = "linear",
    .prepare = linear_prepare,
    .release = rn_cuda_plain_release,
    .forward = linear_forward,
    .backward = linear_backward,
    .tangent_forward = linear_tangent_forward,
    .tangent_backward = linear_tangent_backward,
};
