/* kernels/cuda/layers/common.h - what the CUDA kernels of the layer types
 * (kernels/cuda/layers/<type>.c, one file per type like layers/) share.
 * Private to kernels/cuda/layers/; the backend reaches the kernels through
 * rn_cuda_layer_kernels (cuda_common.h, the table in registry.c).
 *
 * Each <type>.c defines one struct rn_layer_kernels (runner/backend.h),
 * rn_cuda_layer_<type>: cuDNN for convolution, cuBLAS for linear layers, the
 * kernels of the <type>.cu files (launchers in kernels.h) for the rest.
 *
 * The CPU layers (layers/<type>.c) are the reference: each function does
 * what its CPU namesake does, reads the layer's keys the same way (l->v,
 * same key order) and keeps the same contract (runner/layer.h): forward sets
 * y->n = x[0]->n and overwrites y; backward and tangent_backward ACCUMULATE
 * into dx and the parameter gradients (beta = 1 in cuDNN and cuBLAS) and
 * skip a NULL dx[i]; batchnorm and dropout refuse a backward in another mode
 * than their last forward; batchnorm has tangent passes only in eval mode.
 * All tensors are device tensors (checked on entry to every pass); all work
 * is queued on the context's one stream (cuda_common.h).
 *
 * Per-layer state lives in l->dpriv (prepare creates it for batches up to
 * max_n, release frees it), starting with struct rn_cuda_dp_base: cuDNN
 * descriptors and the convolution algorithms chosen per batch size, the
 * maxpool argmax, the dropout mask, the batch statistics batchnorm
 * normalised with.
 *
 * Numerics: convolutions run in plain FP32 (CUDNN_FMA_MATH, no TF32) so they
 * agree with the CPU to float rounding; cuBLAS is in its default FP32 mode
 * (backend_cuda.c). Where the CPU's order of operations fixes the rounding
 * (pooling, routing, dropout masks) the results are bitwise the CPU's.
 */
#ifndef RN_KERNELS_CUDA_LAYERS_COMMON_H
#define RN_KERNELS_CUDA_LAYERS_COMMON_H

#include <stddef.h>

#include "kernels/cuda/cuda_common.h"
#include "kernels/cuda/layers/kernels.h"
#include "runner/layer.h"

/* The first member of every layer's dpriv. */
struct rn_cuda_dp_base {
    int max_n; /* largest batch prepare sized the state for */
};

/* ---- entry checks: 0 / a context, or -1 / NULL with err naming the layer -- */

/* Entry checks of a forward-like pass (forward, tangent_forward): prepare
 * was called, the n_in inputs x[i] pass rn_cuda_check_input (`what` names
 * them), y is a device tensor with room for x[0]->n outputs. Returns the
 * context. */
struct rn_cuda *rn_cuda_enter_forward(const struct rn_layer *l, const struct rn_tensor *const *x,
                                      int n_in, const struct rn_tensor *y, const char *what,
                                      struct rn_error *err);
/* Entry checks of a backward-like pass: inputs x (and tangents tx when not
 * NULL), dy (and tdy when not NULL), and the non-NULL dx[i] (dx may be
 * NULL). Returns the context. */
struct rn_cuda *rn_cuda_enter_backward(const struct rn_layer *l, const struct rn_tensor *const *x,
                                       const struct rn_tensor *const *tx, int n_in,
                                       const struct rn_tensor *dy, const struct rn_tensor *tdy,
                                       struct rn_tensor *const *dx, struct rn_error *err);
/* Input i of a pass: on the device, a (n, in[i]) tensor with n <= max_n
 * (and n == n0 when n0 >= 0, for the second input and tangents). */
int rn_cuda_check_input(const struct rn_layer *l, const struct rn_tensor *t, int i, int n0,
                        const char *what, struct rn_error *err);
/* A parameter or buffer the kernels read: present, numel floats, on the
 * device, and its gradient (when it has one) on the device too. */
int rn_cuda_need_param(const struct rn_layer *l, const struct rn_param *p, const char *name,
                       size_t numel, struct rn_error *err);

/* ---- small helpers ------------------------------------------------------- */

/* c * h * w. */
size_t rn_cuda_shape_numel(struct rn_shape s);
/* p's gradient, or NULL when p is NULL or a buffer (no gradient). */
float *rn_cuda_param_grad(struct rn_param *p);
/* *p = bytes of zeroed device memory (at least 1 byte), zeroed on the
 * context's stream; *p is NULL on failure. Freed with cudaFree. */
int rn_cuda_state_alloc(void **p, size_t bytes, struct rn_error *err);
/* dst = src, n floats on the device (nothing when dst == src). */
int rn_cuda_copy_floats(struct rn_cuda *cu, float *dst, const float *src, size_t n,
                        struct rn_error *err);
/* out += g over n floats; nothing when out is NULL (flatten's and add's
 * backward). */
int rn_cuda_acc_into(struct rn_cuda *cu, const struct rn_tensor *g, struct rn_tensor *out, size_t n,
                     struct rn_error *err);
/* prepare/release of the types whose only state is max_n. */
int rn_cuda_plain_prepare(struct rn_layer *l, int max_n, struct rn_error *err);
void rn_cuda_plain_release(struct rn_layer *l);

/* The geometry of a maxpool2d or avgpool2d layer for a batch of n: the
 * window from its keys (kernel, stride, padding; stride 0 = kernel), the
 * shapes from the layer. */
struct rn_cuda_pool_geom rn_cuda_pool_geom_of(const struct rn_layer *l, int n);

#endif
