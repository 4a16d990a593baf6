// augment_kernels.cu - channel permutation and ColorJitter on the device (augment_kernels.h), the
// twin of rn_augment_apply in runner/augment.c, whose torchvision 0.14 formulas it copies
// operation by operation.
//
// One block per sample. Thread t owns pixels t, t + blockDim, ... of its image in every pass, so
// the passes need no barrier between them: the only value shared across threads is the contrast
// op's mean, reduced through shared memory.
//
// Where the float results may differ from the host's (hence the test's tolerance):
// - Every multiply, add, subtract and divide here is an intrinsic (__fmul_rn, __fadd_rn, ...) that
//   rounds once, as the C source is written; nvcc never fuses them. The host build (gcc -O3
//   -march=native, gnu11, so -ffp-contract=fast) may fuse a multiply and an add into one FMA
//   (blend's ratio * x + rest * other, the grayscale sum, hue's 1 - s * f), which rounds once
//   instead of twice: one ulp per such op. The hue op magnifies an input difference: it rounds
//   H at magnitude 1 (h / 6 + 1, h + hue_factor) and multiplies by 6, so one ulp in, up to 7e-7
//   out per rounding; later ops scale that by up to 1.4 (brightness, contrast) or 1.8
//   (saturation). At most ~6.5e-6 for strengths <= 0.4; measured (a host simulation of this
//   kernel) 3e-6 at worst, and no difference at all against augment.c built without FMA
//   contraction.
// - The contrast mean sums the float grays in double in another order (per-thread strided sums,
//   then a fixed tree) than the host's sequential double sum. The grays are exact in double and
//   every partial sum stays exact (so the order does not matter) unless a nonzero gray is below
//   about 2^-29 of the image's gray total; the mean then has the host's bits, else it may differ
//   by one float ulp.
// Brightness (blend with black) and the permutation give the host's bits.
#include "augment_kernels.h"

#include "block_sum.cuh"

#include <math.h>

namespace
{

constexpr int kThreads = 256; // a power of two (block_sum's tree)

enum { OP_BRIGHTNESS, OP_CONTRAST, OP_SATURATION, OP_HUE };

// torchvision's rgb_to_grayscale weights, as GRAY_R/G/B in augment.c.
constexpr float kGrayR = 0.2989f;
constexpr float kGrayG = 0.587f;
constexpr float kGrayB = 0.114f;

__device__ __forceinline__ float clamp01(float v)
{
    return v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);
}

__device__ __forceinline__ float gray(float r, float g, float b)
{
    return __fadd_rn(__fadd_rn(__fmul_rn(kGrayR, r), __fmul_rn(kGrayG, g)), __fmul_rn(kGrayB, b));
}

// torchvision _blend: ratio * x + (1 - ratio) * other, clamped (rest = 1 - ratio).
__device__ __forceinline__ float blend(float x, float other, float ratio, float rest)
{
    return clamp01(__fadd_rn(__fmul_rn(ratio, x), __fmul_rn(rest, other)));
}

// Input channel k of a pixel; selects rather than an indexed array keep it in registers, and
// a bad k cannot read outside the pixel.
__device__ __forceinline__ float pick(float v0, float v1, float v2, int k)
{
    return k == 0 ? v0 : (k == 1 ? v1 : v2);
}

// hue_pixel of augment.c: torchvision's _rgb2hsv, H + hue_factor mod 1, _hsv2rgb. fmaxf, fminf,
// fmodf and floorf are exact on the device as on the host.
__device__ void hue_pixel(float &pr, float &pg, float &pb, float hue_factor)
{
    const float r = pr, g = pg, b = pb;
    const float maxc = fmaxf(r, fmaxf(g, b));
    const float minc = fminf(r, fminf(g, b));
    const bool eqc = maxc == minc;
    const float cr = __fsub_rn(maxc, minc);
    const float s = __fdiv_rn(cr, eqc ? 1.0f : maxc);
    const float crd = eqc ? 1.0f : cr;
    const float rc = __fdiv_rn(__fsub_rn(maxc, r), crd);
    const float gc = __fdiv_rn(__fsub_rn(maxc, g), crd);
    const float bc = __fdiv_rn(__fsub_rn(maxc, b), crd);
    float h;
    if (maxc == r)
        h = __fsub_rn(bc, gc);
    else if (maxc == g)
        h = __fsub_rn(__fadd_rn(2.0f, rc), bc);
    else
        h = __fsub_rn(__fadd_rn(4.0f, gc), rc);
    h = fmodf(__fadd_rn(__fdiv_rn(h, 6.0f), 1.0f), 1.0f);
    // torch.remainder: a - floor(a), in [0, 1]; 1 maps to sector 0 below.
    h = __fadd_rn(h, hue_factor);
    h = __fsub_rn(h, floorf(h));

    const float v = maxc;
    const float h6 = __fmul_rn(h, 6.0f);
    const float fi = floorf(h6);
    const float f = __fsub_rn(h6, fi);
    int i = (int)fi;
    const float p = clamp01(__fmul_rn(v, __fsub_rn(1.0f, s)));
    const float q = clamp01(__fmul_rn(v, __fsub_rn(1.0f, __fmul_rn(s, f))));
    const float t = clamp01(__fmul_rn(v, __fsub_rn(1.0f, __fmul_rn(s, __fsub_rn(1.0f, f)))));
    i = ((i % 6) + 6) % 6;
    switch (i) {
    case 0: pr = v; pg = t; pb = p; break;
    case 1: pr = q; pg = v; pb = p; break;
    case 2: pr = p; pg = v; pb = t; break;
    case 3: pr = p; pg = q; pb = v; break;
    case 4: pr = t; pg = p; pb = v; break;
    default: pr = v; pg = p; pb = q; break;
    }
}


// Block i augments sample i of x (n, 3, hw) with draws[i]. Every branch depends only on a and
// the block's draw, so all threads of a block take it together (block_sum's barriers).
__global__ void __launch_bounds__(kThreads)
    augment_kernel(rn_augment a, const rn_augment_draw *__restrict__ draws, float *__restrict__ x,
                   int hw)
{
    __shared__ double partial[kThreads];
    const rn_augment_draw d = draws[blockIdx.x];
    float *const r = x + (size_t)blockIdx.x * 3 * (size_t)hw;
    float *const g = r + hw;
    float *const b = g + hw;
    const int t0 = threadIdx.x, stride = blockDim.x;

    // Output channel k = input channel perm[k]; a pixel is read whole before it is written.
    if (a.channel_permute)
        for (int i = t0; i < hw; i += stride) {
            const float v0 = r[i], v1 = g[i], v2 = b[i];
            r[i] = pick(v0, v1, v2, d.perm[0]);
            g[i] = pick(v0, v1, v2, d.perm[1]);
            b[i] = pick(v0, v1, v2, d.perm[2]);
        }
    if (!a.colour_jitter)
        return;

    for (int k = 0; k < 4; k++) {
        // A strength of 0 means the op is absent (torchvision's None): skipped, not applied
        // with its identity factor, as on the host.
        const int op = d.order[k];
        if (op == OP_BRIGHTNESS && a.brightness > 0.0f) {
            const float f = d.factor[OP_BRIGHTNESS], rest = __fsub_rn(1.0f, f);
            for (int i = t0; i < hw; i += stride) {
                r[i] = blend(r[i], 0.0f, f, rest);
                g[i] = blend(g[i], 0.0f, f, rest);
                b[i] = blend(b[i], 0.0f, f, rest);
            }
        } else if (op == OP_CONTRAST && a.contrast > 0.0f) {
            double s = 0.0;
            for (int i = t0; i < hw; i += stride)
                s = __dadd_rn(s, (double)gray(r[i], g[i], b[i]));
            const double sum = block_sum(s, partial);
            const float mean = __double2float_rn(__ddiv_rn(sum, (double)hw));
            const float f = d.factor[OP_CONTRAST], rest = __fsub_rn(1.0f, f);
            for (int i = t0; i < hw; i += stride) {
                r[i] = blend(r[i], mean, f, rest);
                g[i] = blend(g[i], mean, f, rest);
                b[i] = blend(b[i], mean, f, rest);
            }
        } else if (op == OP_SATURATION && a.saturation > 0.0f) {
            const float f = d.factor[OP_SATURATION], rest = __fsub_rn(1.0f, f);
            for (int i = t0; i < hw; i += stride) {
                const float l = gray(r[i], g[i], b[i]);
                r[i] = blend(r[i], l, f, rest);
                g[i] = blend(g[i], l, f, rest);
                b[i] = blend(b[i], l, f, rest);
            }
        } else if (op == OP_HUE && a.hue > 0.0f) {
            const float f = d.factor[OP_HUE];
            for (int i = t0; i < hw; i += stride) {
                float pr = r[i], pg = g[i], pb = b[i];
                hue_pixel(pr, pg, pb, f);
                r[i] = pr;
                g[i] = pg;
                b[i] = pb;
            }
        }
    }
}

} // namespace

extern "C" int rn_cuda_augment(const struct rn_augment *a, const struct rn_augment_draw *draws,
                               float *x, int n, int hw, cudaStream_t s)
{
    if (n <= 0 || hw <= 0 || (!a->channel_permute && !a->colour_jitter))
        return cudaSuccess;
    augment_kernel<<<n, kThreads, 0, s>>>(*a, draws, x, hw);
    return cudaGetLastError();
}
