/* augment_kernels.h - training augmentation on the device: the CUDA twin of
 * rn_augment_apply (runner/augment.c), tested against it in tests/test_cuda.c
 * (Test(cuda, augment)).
 *
 * The random draws are made on the host (rn_augment_draws) and uploaded; the
 * kernel only applies them, so a device run augments exactly the samples a
 * host run would, with the same permutations, op orders and factors. The
 * results equal the host's to rounding (see augment_kernels.cu for where
 * float results may differ).
 *
 * C-includable (kernels/cuda/augment_kernels.cu defines it extern "C").
 */
#ifndef RN_CUDA_AUGMENT_KERNELS_H
#define RN_CUDA_AUGMENT_KERNELS_H

#include <cuda_runtime.h>

#include "runner/augment.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Augments x (n, 3, hw) floats in [0, 1] in place (device memory) with the n
 * draws (device memory, rn_augment_draws' output uploaded), as
 * rn_augment_apply does on the host: per sample the channel permutation when
 * a->channel_permute, then, when a->colour_jitter, the four jitter ops in the
 * sample's order, an op whose strength in a is 0 skipped. a is host memory,
 * passed by value. One block per sample. The draws are trusted (no check):
 * a perm entry outside {0, 1} reads channel 2, an order entry outside 0..3
 * does nothing. Enqueues on stream s and returns at once with cudaSuccess
 * (0) or the launch error (a cudaError_t as int); errors of the running
 * kernel surface at the next synchronisation. n == 0, hw <= 0 or both
 * augmentations off launch nothing and return 0. */
int rn_cuda_augment(const struct rn_augment *a, const struct rn_augment_draw *draws, float *x,
                    int n, int hw, cudaStream_t s);

#ifdef __cplusplus
}
#endif

#endif
