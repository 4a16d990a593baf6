/* kernels/cuda/layers/kernels.h - the CUDA kernels of the layer types that
 * cuDNN and cuBLAS do not cover, as C-callable launchers for the layer
 * files (kernels/cuda/layers/<type>.c). Each section names the .cu file
 * that holds its kernels: <type>.cu for one type's, elementwise.cu for the
 * element-wise and per-channel ones several types use.
 *
 * Conventions:
 *  - Pointers are device memory; activations are NCHW float, contiguous.
 *  - Every launcher enqueues its work on `stream` and returns the launch
 *    status (cudaGetLastError); a launcher with nothing to do (a count of 0)
 *    launches nothing and returns cudaSuccess.
 *  - "acc" launchers ACCUMULATE (out += ...), as backward passes do
 *    (runner/layer.h); the others overwrite their output.
 *  - Each kernel does what the CPU layer of the same name does
 *    (layers/<type>.c), in the same order of operations wherever that
 *    order decides the rounding (pooling sums, the maxpool tie rule,
 *    gradient routing, the dropout stream): relu, maxpool, avgpool, flatten,
 *    add, grl and dropout give the CPU's results bit for bit (against the
 *    default -march=native CPU build, whose FMAs they copy). Reductions over
 *    a channel or a plane (batchnorm, bias gradients, global_avg_pool) run
 *    in double like the CPU but in another order: equal after rounding to
 *    float almost always, not always.
 */
#ifndef RN_KERNELS_CUDA_LAYERS_KERNELS_H
#define RN_KERNELS_CUDA_LAYERS_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include <cuda_runtime.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Geometry of a pooling layer: input (n, c, h, w), output (n, c, ho, wo),
 * square window k, stride s, padding p (PyTorch floor mode). */
struct rn_cuda_pool_geom {
    int n, c, h, w;
    int ho, wo;
    int k, s, p;
};

/* --- elementwise.cu: element-wise over n floats, per channel of (n, c, hw) - */

/* out += a * g. */
cudaError_t rn_cuda_axpy_acc(float a, const float *g, float *out, size_t n, cudaStream_t stream);
/* out = a + b. */
cudaError_t rn_cuda_add(const float *a, const float *b, float *out, size_t n, cudaStream_t stream);
/* y[i, ch, j] += bias[ch] (conv and linear biases; linear: hw = 1). */
cudaError_t rn_cuda_channel_bias_add(float *y, const float *bias, int n, int c, int hw,
                                     cudaStream_t stream);
/* out[ch] += sum over i, j of g[i, ch, j], summed in double (bias gradients). */
cudaError_t rn_cuda_channel_sum_acc(const float *g, int n, int c, int hw, float *out,
                                    cudaStream_t stream);

/* --- relu.cu, n floats ------------------------------------------------------ */

/* y = x < 0 ? 0 : x (NaN propagates). */
cudaError_t rn_cuda_relu_forward(const float *x, float *y, size_t n, cudaStream_t stream);
/* out = x > 0 ? g : 0. */
cudaError_t rn_cuda_relu_mask(const float *x, const float *g, float *out, size_t n,
                              cudaStream_t stream);
/* out += x > 0 ? g : 0. */
cudaError_t rn_cuda_relu_mask_acc(const float *x, const float *g, float *out, size_t n,
                                  cudaStream_t stream);

/* --- dropout.cu, n floats -------------------------------------------------- */

/* out = m * g. */
cudaError_t rn_cuda_mul(const float *m, const float *g, float *out, size_t n, cudaStream_t stream);
/* out += m * g. */
cudaError_t rn_cuda_mul_acc(const float *m, const float *g, float *out, size_t n,
                            cudaStream_t stream);

/* mask[i] = u_i >= p ? scale : 0 for i < n, where u_i is the i-th uniform
 * float ((u32 >> 8) * 2^-24) of the PCG32 generator whose state before the
 * first draw is (state, inc) (runner/rng.c): the mask the CPU draws one
 * element after the other, each thread jumping to its elements with PCG's
 * O(log n) skip-ahead. */
cudaError_t rn_cuda_dropout_mask(float *mask, size_t n, uint64_t state, uint64_t inc, double p,
                                 float scale, cudaStream_t stream);

/* --- maxpool2d.cu ------------------------------------------------------------ */

/* y = max over each window; arg = index (h*W + w in the input plane) of the
 * FIRST maximum in row-major window order, NaN winning (layers/maxpool2d.c). */
cudaError_t rn_cuda_maxpool_forward(const struct rn_cuda_pool_geom *g, const float *x, float *y,
                                    int32_t *arg, cudaStream_t stream);
/* dx[arg[o]] += dy[o], each input summing its outputs in ascending order
 * like the CPU's scatter loop (a gather: no atomics, bitwise reproducible). */
cudaError_t rn_cuda_maxpool_backward_acc(const struct rn_cuda_pool_geom *g, const int32_t *arg,
                                         const float *dy, float *dx, cudaStream_t stream);
/* ty[o] = tx[arg[o]] (the tangent through the saved argmax). */
cudaError_t rn_cuda_maxpool_gather(const struct rn_cuda_pool_geom *g, const int32_t *arg,
                                   const float *tx, float *ty, cudaStream_t stream);
/* --- avgpool2d.cu ------------------------------------------------------------ */

/* y = window sum / (k*k), padded zeros counted (count_include_pad). */
cudaError_t rn_cuda_avgpool_forward(const struct rn_cuda_pool_geom *g, const float *x, float *y,
                                    cudaStream_t stream);
/* dx += avgpool^T(dy). */
cudaError_t rn_cuda_avgpool_backward_acc(const struct rn_cuda_pool_geom *g, const float *dy,
                                         float *dx, cudaStream_t stream);
/* --- global_avg_pool.cu ------------------------------------------------------ */

/* y[pl] = mean of plane pl of x (planes of hw floats), summed in double. */
cudaError_t rn_cuda_gap_forward(const float *x, float *y, size_t planes, int hw,
                                cudaStream_t stream);
/* dx[pl, j] += dy[pl] / hw. */
cudaError_t rn_cuda_gap_backward_acc(const float *dy, float *dx, size_t planes, int hw,
                                     cudaStream_t stream);

/* --- batchnorm.cu, x (n, c, hw) ---------------------------------------------- */

/* p[0] += v (one float: num_batches_tracked). */
cudaError_t rn_cuda_add_scalar(float *p, float v, cudaStream_t stream);

/* Training statistics, per channel in double: mean and biased variance of
 * the n*hw values; writes mean, invstd = 1/sqrt(var + eps) and moves the
 * running statistics: r = (1-momentum)*r + momentum*batch, with the
 * unbiased variance for running_var. n*hw must be >= 2. */
cudaError_t rn_cuda_bn_stats_train(const float *x, int n, int c, int hw, double eps,
                                   double momentum, float *mean, float *invstd, float *running_mean,
                                   float *running_var, cudaStream_t stream);
/* Eval statistics: mean = running_mean, invstd = 1/sqrt(running_var + eps). */
cudaError_t rn_cuda_bn_stats_eval(const float *running_mean, const float *running_var, double eps,
                                  int c, float *mean, float *invstd, cudaStream_t stream);
/* y = x * a + b with a = gamma * invstd, b = beta - mean * a. */
cudaError_t rn_cuda_bn_apply(const float *x, const float *gamma, const float *beta,
                             const float *mean, const float *invstd, int n, int c, int hw, float *y,
                             cudaStream_t stream);
/* ty = gamma * invstd * tx. */
cudaError_t rn_cuda_bn_scale(const float *tx, const float *gamma, const float *invstd, int n, int c,
                             int hw, float *ty, cudaStream_t stream);
/* gw += sum(dy * xhat), gb += sum(dy) (each skipped when NULL), and when dx
 * is not NULL: dx += a * (dy - k0 - xhat * k1) with k0 = mean(dy),
 * k1 = mean(dy * xhat) in training (train != 0), k0 = k1 = 0 in eval. */
cudaError_t rn_cuda_bn_backward(const float *x, const float *dy, const float *gamma,
                                const float *mean, const float *invstd, int n, int c, int hw,
                                int train, float *gw, float *gb, float *dx, cudaStream_t stream);
/* Eval-mode tangent of the backward: tdx += a * tdy (skipped when NULL),
 * gw += sum(tdy * xhat + dy * tx * invstd), gb += sum(tdy). */
cudaError_t rn_cuda_bn_tangent_backward(const float *x, const float *tx, const float *dy,
                                        const float *tdy, const float *gamma, const float *mean,
                                        const float *invstd, int n, int c, int hw, float *gw,
                                        float *gb, float *tdx, cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif
