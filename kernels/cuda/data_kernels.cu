// data_kernels.cu - the colouriser on the device (data_kernels.h): rn_colour_image of
// runner/data.c, draw for draw.
//
// One thread per image: an image's noise draws follow each other in one PCG32 stream (one
// draw per background pixel, or per stroke pixel), so a thread walks its image in row-major
// order as the host loop does. The float arithmetic is the host's: the noise is
// (float)(lo + span * u) with span * u exact in double (a 24-bit float times a 24-bit
// uniform), so a fused multiply-add and a separate one give the same double, and each channel
// is uint8(noise * c) from one float multiply. The bytes equal the host's.
#include "data_kernels.h"

#include "rng.cuh"

namespace
{

constexpr int kThreads = 128;
constexpr int kColours = 10;

__device__ int draw_colour(DevRng *r, const rn_cuda_colour_args &a, int label)
{
    if (a.easy) {
        float u = rng_uniform(r);
        return (double)u < a.bias ? label : (int)rng_below(r, kColours);
    }
    switch (a.test_rule) {
    case 0: { // RN_RULE_CONFLICTING
        int k = (int)rng_below(r, kColours - 1);
        return k + (k >= label);
    }
    case 1: // RN_RULE_RANDOM
        return (int)rng_below(r, kColours);
    default: // RN_RULE_ALIGNED
        return label;
    }
}

__global__ void colourise_kernel(const rn_cuda_colour_args a, const uint8_t *__restrict__ grey,
                                 const uint8_t *__restrict__ labels,
                                 const int32_t *__restrict__ src, int n, int hw,
                                 uint8_t *__restrict__ out, uint8_t *__restrict__ colours)
{
    const int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= n)
        return;
    const int i = src[j];
    DevRng r;
    rng_init(&r, a.seed, (uint64_t)a.stream, (uint64_t)i);
    const int colour = draw_colour(&r, a, labels[i]);
    colours[j] = (uint8_t)colour;
    const uint8_t *g = grey + (size_t)i * hw;
    uint8_t *o0 = out + (size_t)j * 3 * hw, *o1 = o0 + hw, *o2 = o1 + hw;
    const float c0 = a.rgb[colour][0], c1 = a.rgb[colour][1], c2 = a.rgb[colour][2];
    const double lo = a.noise_lo, span = (double)__fsub_rn(a.noise_hi, a.noise_lo);
    for (int p = 0; p < hw; p++) {
        const bool stroke = g[p] > a.threshold;
        if (stroke != (bool)a.stroke) { // the unpainted part: white stroke or black background
            const uint8_t v = a.stroke ? 0 : 255;
            o0[p] = o1[p] = o2[p] = v;
            continue;
        }
        const float noise = __double2float_rn(__dadd_rn(lo, __dmul_rn(span, (double)rng_uniform(&r))));
        o0[p] = (uint8_t)__fmul_rn(noise, c0);
        o1[p] = (uint8_t)__fmul_rn(noise, c1);
        o2[p] = (uint8_t)__fmul_rn(noise, c2);
    }
}

} // namespace

extern "C" int rn_cuda_colourise(const struct rn_cuda_colour_args *a, const uint8_t *grey,
                                 const uint8_t *labels, const int32_t *src, int n, int h, int w,
                                 uint8_t *out, uint8_t *colours, cudaStream_t s)
{
    if (n <= 0 || h <= 0 || w <= 0)
        return cudaSuccess;
    colourise_kernel<<<(n + kThreads - 1) / kThreads, kThreads, 0, s>>>(*a, grey, labels, src, n,
                                                                       h * w, out, colours);
    return cudaGetLastError();
}
