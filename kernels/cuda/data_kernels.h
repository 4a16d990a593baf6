/* data_kernels.h - the colouriser on the device: the CUDA twin of
 * rn_colour_image (runner/data.c), tested bit for bit against it in
 * tests/test_cuda.c (Test(cuda, colourise)).
 *
 * C-includable (kernels/cuda/data_kernels.cu defines it extern "C").
 */
#ifndef RN_CUDA_DATA_KERNELS_H
#define RN_CUDA_DATA_KERNELS_H

#include <cuda_runtime.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What rn_colour_image reads of struct rn_data_config, by value. */
struct rn_cuda_colour_args {
    uint64_t seed;
    int stream;      /* the rng stream: RN_STREAM_DATA_TRAIN draws the easy rule */
    int easy;        /* 1: colour = label with probability bias, else uniform */
    double bias;
    int test_rule;   /* enum rn_test_rule, when not easy */
    int stroke;      /* 1: RN_COLOURING_STROKE, 0: RN_COLOURING_BACKGROUND */
    float noise_lo, noise_hi;
    int threshold;
    uint8_t rgb[10][3];
};

/* Image j of n: out (3, h, w) and colours[j] from grey image src[j] of grey
 * ((., h, w) bytes) with digit labels[src[j]], drawn from generator
 * (seed, stream, src[j]) exactly as rn_colour_image does. One thread per
 * image. All pointers are device memory. Enqueues on stream s; returns
 * cudaSuccess (0) or the launch error (a cudaError_t as int). */
int rn_cuda_colourise(const struct rn_cuda_colour_args *a, const uint8_t *grey,
                      const uint8_t *labels, const int32_t *src, int n, int h, int w,
                      uint8_t *out, uint8_t *colours, cudaStream_t s);

#ifdef __cplusplus
}
#endif

#endif
