// saliency_kernels.cu - the saliency loss's per-sample arithmetic (saliency_kernels.h), the twin
// of cpu_saliency_logits, cpu_saliency_direction and cpu_saliency_tangent_logits in
// kernels/cpu/backend_cpu.c, whose formulas it copies. The intrinsics (__dadd_rn, __dmul_rn,
// ...) keep nvcc from fusing a multiply and an add: every operation rounds where the C source
// says.
#include "saliency_kernels.h"

#include "block_sum.cuh"

#include <math.h>

namespace
{

constexpr int kThreads = 256; // a power of two (block_sum's tree)


// ---- step 1: softmax, CE mean, dz ---------------------------------------------------------

// rn_cross_entropy (runner/loss.c) for the softmax and the loss, one thread per sample, one
// block for the batch so the CE mean is reduced in the same order on every run.
__global__ void logits_kernel(const float *__restrict__ z, const uint8_t *__restrict__ targets,
                              int n, int k, float ce_weight, float *__restrict__ probs,
                              float *__restrict__ dz, double *ce)
{
    __shared__ double sh[kThreads];
    double total = 0.0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        const float *zi = z + (size_t)i * k;
        const int t = targets[i];
        int arg = 0;
        for (int j = 1; j < k; j++)
            if (zi[j] > zi[arg])
                arg = j;
        double sum = 0.0;
        for (int j = 0; j < k; j++)
            sum = __dadd_rn(sum, exp(__dsub_rn((double)zi[j], (double)zi[arg])));
        const double lse = __dadd_rn((double)zi[arg], log(sum));
        total = __dadd_rn(total, __dsub_rn(lse, (double)zi[t]));
        for (int j = 0; j < k; j++) {
            const double p = exp(__dsub_rn((double)zi[j], lse));
            const size_t e = (size_t)i * k + j;
            const float pf = (float)p;
            probs[e] = pf;
            if (ce_weight != 0.0f) {
                const double onehot = j == t ? 1.0 : 0.0;
                const double d = __ddiv_rn(__dmul_rn((double)ce_weight, __dsub_rn(p, onehot)),
                                           (double)n);
                dz[e] = __fadd_rn(dz[e], (float)d);
            } else
                dz[e] = __fsub_rn(pf, j == t ? 1.0f : 0.0f);
        }
    }
    total = block_sum(total, sh);
    if (threadIdx.x == 0)
        *ce = __dadd_rn(*ce, __ddiv_rn(total, (double)n));
}

// ---- step 2: r_i and the direction --------------------------------------------------------

// The pixel's norm over channels (double, channels in order, as the CPU) and whether it is
// background (min over channels < threshold; x[p] starts the minimum as on the CPU).
__device__ __forceinline__ double pixel_norm(const float *__restrict__ g, int C, int HW, int p,
                                             int l2)
{
    double acc = 0.0;
    for (int c = 0; c < C; c++) {
        const double gc = g[(size_t)c * HW + p];
        acc = __dadd_rn(acc, l2 ? __dmul_rn(gc, gc) : fabs(gc));
    }
    return l2 ? __dsqrt_rn(acc) : acc;
}

__device__ __forceinline__ bool pixel_background(const float *__restrict__ x, int C, int HW, int p,
                                                 float threshold)
{
    float mn = x[p];
    for (int c = 1; c < C; c++)
        if (x[(size_t)c * HW + p] < mn)
            mn = x[(size_t)c * HW + p];
    return mn < threshold;
}

// saliency_sample_direction (kernels/cpu/backend_cpu.c) for sample blockIdx.x. Thread t owns
// pixels t, t + blockDim, ... in both passes, so its own rescaled dx is what it reads back: the
// only barriers are the reductions'. The pixel norms are recomputed in the second pass (the
// same operations: the same bits) instead of kept in HW doubles of scratch.
__global__ void direction_kernel(int l2, int share, float threshold, const float *__restrict__ x,
                                 float *__restrict__ dx, int C, int HW, double rescale,
                                 double vscale, float *__restrict__ tx, double *__restrict__ r)
{
    __shared__ double sh_mask[kThreads], sh_back[kThreads], sh_total[kThreads];
    const size_t off = (size_t)blockIdx.x * C * HW;
    x += off;
    dx += off;
    tx += off;
    double mask_sum = 0.0, back = 0.0, total = 0.0;
    for (int p = threadIdx.x; p < HW; p += blockDim.x) {
        if (rescale != 1.0)
            for (int c = 0; c < C; c++) {
                float *gp = dx + (size_t)c * HW + p;
                *gp = (float)__ddiv_rn((double)*gp, rescale);
            }
        const double s = pixel_norm(dx, C, HW, p, l2);
        const bool bg = pixel_background(x, C, HW, p, threshold);
        mask_sum = __dadd_rn(mask_sum, bg ? 1.0 : 0.0);
        back = __dadd_rn(back, bg ? s : 0.0);
        total = __dadd_rn(total, s);
    }
    mask_sum = block_sum(mask_sum, sh_mask);
    back = block_sum(back, sh_back);
    total = block_sum(total, sh_total);
    // dr/ds(p) = a0 * mask(p) + a1
    double ri = 0.0, a0 = 0.0, a1 = 0.0;
    if (!share) {
        if (mask_sum > 0.0) {
            ri = __ddiv_rn(back, mask_sum);
            a0 = __ddiv_rn(1.0, mask_sum);
        }
    } else if (total > 0.0) {
        ri = __ddiv_rn(back, total);
        a0 = __ddiv_rn(1.0, total);
        a1 = __ddiv_rn(-ri, total);
    }
    if (threadIdx.x == 0)
        r[blockIdx.x] = ri;
    for (int p = threadIdx.x; p < HW; p += blockDim.x) {
        const double s = pixel_norm(dx, C, HW, p, l2);
        const double ds =
            __dmul_rn(vscale, __dadd_rn(pixel_background(x, C, HW, p, threshold) ? a0 : 0.0, a1));
        for (int c = 0; c < C; c++) {
            const float gc = dx[(size_t)c * HW + p];
            double d;
            if (!l2) // sign(0) = 0: the subgradient PyTorch uses
                d = (double)((gc > 0.0f) - (gc < 0.0f));
            else
                d = s > 0.0 ? __ddiv_rn((double)gc, s) : 0.0;
            tx[(size_t)c * HW + p] = (float)__dmul_rn(ds, d);
        }
    }
}

// *r_sum += r[0] + r[1] + ... in index order (the CPU's order: the same bits for the same r).
__global__ void sum_in_order_kernel(const double *__restrict__ r, int n, double *r_sum)
{
    if (blockIdx.x != 0 || threadIdx.x != 0)
        return;
    double s = 0.0;
    for (int i = 0; i < n; i++)
        s = __dadd_rn(s, r[i]);
    *r_sum = __dadd_rn(*r_sum, s);
}

// ---- step 3: the logits' tangent cotangent ------------------------------------------------

__global__ void tangent_logits_kernel(const float *__restrict__ probs, const float *__restrict__ tz,
                                      int n, int k, double c, float *__restrict__ tdz)
{
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        const float *p = probs + (size_t)i * k, *t = tz + (size_t)i * k;
        double dot = 0.0;
        for (int j = 0; j < k; j++)
            dot = __dadd_rn(dot, __dmul_rn((double)p[j], (double)t[j]));
        for (int j = 0; j < k; j++)
            tdz[(size_t)i * k + j] =
                (float)__dmul_rn(__dmul_rn(c, (double)p[j]), __dsub_rn((double)t[j], dot));
    }
}

} // namespace

extern "C" int rn_cuda_saliency_logits(const float *z, const uint8_t *targets, int n, int k,
                                       float ce_weight, float *probs, float *dz, double *ce,
                                       cudaStream_t s)
{
    if (n <= 0 || k <= 0)
        return cudaSuccess;
    logits_kernel<<<1, kThreads, 0, s>>>(z, targets, n, k, ce_weight, probs, dz, ce);
    return cudaGetLastError();
}

extern "C" int rn_cuda_saliency_direction(int l2, int share, float threshold, const float *x,
                                          float *dx, int n, int C, int HW, double rescale,
                                          double vscale, float *tx, double *r, double *r_sum,
                                          cudaStream_t s)
{
    if (n <= 0)
        return cudaSuccess;
    direction_kernel<<<n, kThreads, 0, s>>>(l2, share, threshold, x, dx, C, HW, rescale, vscale,
                                            tx, r);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess)
        return e;
    sum_in_order_kernel<<<1, 1, 0, s>>>(r, n, r_sum);
    return cudaGetLastError();
}

extern "C" int rn_cuda_saliency_tangent_logits(const float *probs, const float *tz, int n, int k,
                                               double c, float *tdz, cudaStream_t s)
{
    if (n <= 0 || k <= 0)
        return cudaSuccess;
    const int blocks = (n + kThreads - 1) / kThreads;
    tangent_logits_kernel<<<blocks, kThreads, 0, s>>>(probs, tz, n, k, c, tdz);
    return cudaGetLastError();
}
