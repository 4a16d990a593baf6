/* backend_kernels.h - the small CUDA kernels of the backend itself (not of a
 * layer type): optimizer updates, the sum of squares for gradient clipping,
 * softmax cross-entropy on the logits and the batch gathers of the training
 * loop. Each one is the device twin of a CPU function and is tested against
 * it in tests/test_cuda.c:
 *
 *   rn_cuda_optim_update     cpu_optim_update   (kernels/cpu/backend_cpu.c)
 *   rn_cuda_sum_squares      cpu_sum_squares    (kernels/cpu/backend_cpu.c)
 *   rn_cuda_cross_entropy    rn_cross_entropy   (runner/loss.c)
 *   rn_cuda_gather_images    rn_run_load_batch  (runner/eval.c)
 *   rn_cuda_gather_u8        labels[idx[i]]
 *
 * C-includable (kernels/cuda/backend_kernels.cu defines them extern "C").
 * Every pointer is device memory unless said otherwise. Every launcher
 * enqueues on stream s and returns at once with cudaSuccess (0) or the
 * launch error (a cudaError_t as int); errors of the running kernel surface
 * at the next synchronisation. n == 0 launches nothing and returns 0.
 */
#ifndef RN_CUDA_BACKEND_KERNELS_H
#define RN_CUDA_BACKEND_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include <cuda_runtime.h>

#ifdef __cplusplus
extern "C" {
#endif

enum rn_cuda_optim_kind { RN_CUDA_OPTIM_ADAM, RN_CUDA_OPTIM_ADAMW, RN_CUDA_OPTIM_SGD };

/* One optimizer update's scalars, the host-side part of cpu_optim_update
 * already done: step_size = (float)(lr / (1 - beta1^step)) and
 * bc2_sqrt = (float)sqrt(1 - beta2^step), both computed in double. */
struct rn_cuda_optim_args {
    int kind; /* enum rn_cuda_optim_kind */
    float lr, beta1, beta2, eps, weight_decay, momentum;
    float grad_scale; /* clipping factor, 1 when none */
    float step_size;  /* Adam/AdamW */
    float bc2_sqrt;   /* Adam/AdamW */
    int first;        /* SGD: 1 on the first update (momentum buffer = gradient) */
    const double *clip_sq; /* device: squared gradient norm; when set, grad_scale comes from it */
    double clip_norm;
};

/* p, g, m, v: n floats each (v unused by SGD and may be NULL then). The
 * per-element arithmetic is cpu_optim_update's float formulas, evaluated in
 * the written order with IEEE round-to-nearest and no fused multiply-add
 * (the CPU build may fuse some: the two agree to about an ulp). */
int rn_cuda_optim_update(const struct rn_cuda_optim_args *a, float *p, const float *g, float *m,
                         float *v, size_t n, cudaStream_t s);

/* Doubles of scratch rn_cuda_sum_squares needs. */
#define RN_CUDA_SUMSQ_BLOCKS 256
#define RN_CUDA_SUMSQ_SCRATCH (RN_CUDA_SUMSQ_BLOCKS + 1)

/* As rn_cuda_sum_squares, but *acc += the sum (acc: device memory, not in
 * scratch), so an optimizer's squared norm adds up without a round trip. */
int rn_cuda_sum_squares_acc(const float *x, size_t n, double *scratch, double *acc,
                            cudaStream_t s);

/* *result = sum of (double)x[i]^2, reduced in double in a fixed order (the
 * same n gives the same bits). scratch: RN_CUDA_SUMSQ_SCRATCH doubles;
 * result may point into it. n == 0 writes 0. */
int rn_cuda_sum_squares(const float *x, size_t n, double *scratch, double *result, cudaStream_t s);

/* Softmax cross-entropy of logits (n, k) against targets (n) (< k), as
 * rn_cross_entropy: per sample lse = z[argmax] + log(sum exp(z - z[argmax]))
 * in double, loss = lse - z[target]; argmax takes the first maximum.
 * Adds the batch's loss sum (not the mean) to *loss_sum_dev and its number
 * of correct argmax predictions to *correct_dev (either may be NULL); when
 * dlogits is non-NULL, adds (float)(weight * (p - onehot) / n) to it, i.e.
 * weight * d(mean CE)/d logits; when probs is non-NULL, writes the softmax.
 * One block reduces the batch, so the sums are the same bits on every run. */
int rn_cuda_cross_entropy(const float *logits, const uint8_t *targets, int n, int k, float weight,
                          float *dlogits, double *loss_sum_dev, int *correct_dev, float *probs,
                          cudaStream_t s);

/* confusion[targets[i] * k + argmax(logits[i])] += 1 for i < n (first maximum). */
int rn_cuda_confusion(const float *logits, const uint8_t *targets, int n, int k, int *confusion,
                      cudaStream_t s);

/* out (n, sample_bytes) floats: out[i][j] = images[idx[i]][j] * scale, with
 * scale = 1.0f / 255.0f for rn_run_load_batch's [0, 1] (same bits); images
 * are stored (N, C, H, W) uint8, so a sample is its C*H*W bytes in order.
 * idx (n ints) may be NULL: sample i. */
int rn_cuda_gather_images(const uint8_t *images_dev, const int *idx_dev, int n, int sample_bytes,
                          float scale, float *out, cudaStream_t s);

/* dst[i] = src[idx[i]] for i < n (idx NULL: src[i]). */
int rn_cuda_gather_u8(const uint8_t *src, const int *idx, int n, uint8_t *dst, cudaStream_t s);

/* cudaSuccess when this binary holds code the current device can run (the
 * backend kernels' image or PTX fits its compute capability). */
int rn_cuda_kernels_check(void);

#ifdef __cplusplus
}
#endif

#endif
