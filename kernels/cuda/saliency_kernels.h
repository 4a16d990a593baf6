/* saliency_kernels.h - the saliency loss's per-sample arithmetic on the
 * device: the CUDA twins of the CPU saliency table's logits, direction and
 * tangent_logits (kernels/cpu/backend_cpu.c; the contract is
 * struct rn_saliency_kernels' in saliency.h), tested against them in
 * tests/test_cuda.c (Test(cuda, saliency_table)).
 *
 * Every float operation rounds where the C source says it does (intrinsics,
 * no fused multiply-add); sums run in double, in a fixed order, so two runs
 * give the same bits. What may differ from the CPU: exp and log (CUDA's are
 * within 1-2 double ulps, glibc's nearly correctly rounded), the order of
 * the sums over the batch (the CE mean) and over a sample's pixels (the
 * direction step's reductions), and the host build's contractions of
 * `acc += a * b` into an FMA (-march=native): a few double ulps before the
 * results are rounded to float.
 *
 * C-includable (kernels/cuda/saliency_kernels.cu defines them extern "C").
 * Every pointer is device memory. Every launcher enqueues on stream s and
 * returns at once with cudaSuccess (0) or the launch error (a cudaError_t
 * as int); errors of the running kernel surface at the next
 * synchronisation. n <= 0 (or k <= 0) launches nothing and returns 0.
 */
#ifndef RN_CUDA_SALIENCY_KERNELS_H
#define RN_CUDA_SALIENCY_KERNELS_H

#include <stdint.h>

#include <cuda_runtime.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Logits step: probs (n, k) = softmax(z) (rn_cross_entropy's formulas, in
 * double); *ce += the batch's mean CE (one block: a fixed tree over the
 * samples). ce_weight != 0: dz += (float)(ce_weight * (p - onehot) / n);
 * else dz = probs - onehot. targets: n bytes < k (trusted). */
int rn_cuda_saliency_logits(const float *z, const uint8_t *targets, int n, int k, float ce_weight,
                            float *probs, float *dz, double *ce, cudaStream_t s);

/* Direction step on x, dx (n, C, HW), one block per sample: rescale != 1
 * first sets dx = (float)(dx / rescale); then the sample's pixel norms s(p)
 * (l2: sqrt of the sum of squares over channels, else the sum of absolute
 * values), the background mask (min over channels of x < threshold), the
 * sums of mask, mask * s and s over HW (double, per-thread strided sums then
 * a fixed tree), r[i] and tx = vscale * dr_i/d dx (reduction mean_background
 * when share == 0, background_share else). Then one thread adds r[0] + r[1]
 * + ... (in index order, as the CPU) to *r_sum. */
int rn_cuda_saliency_direction(int l2, int share, float threshold, const float *x, float *dx,
                               int n, int C, int HW, double rescale, double vscale, float *tx,
                               double *r, double *r_sum, cudaStream_t s);

/* Tangent-logits step: tdz = (float)(c * p * (tz - p.tz)) per sample (one
 * thread per sample, the dot product in double in index order). */
int rn_cuda_saliency_tangent_logits(const float *probs, const float *tz, int n, int k, double c,
                                    float *tdz, cudaStream_t s);

#ifdef __cplusplus
}
#endif

#endif
