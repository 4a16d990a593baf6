// kernels/cuda/layers/launch.cuh - what the layer kernels' .cu files share:
// the launch shape, grid-stride loops, warp and block sums in double, the
// pooling windows' inverse.
//
// Conventions of every layer kernel: NCHW float on the device; element-wise
// kernels use grid-stride loops with size_t indices; per-channel reductions
// use one block per channel and per-plane ones one warp per plane,
// accumulating in double like the CPU layers; a launcher returns
// cudaGetLastError() and launches nothing for an empty tensor (a zero grid is
// a launch error). Each kernel names the CPU layer it mirrors and writes its
// float expressions the way the CPU source does, in the same order where the
// order decides the rounding; where the CPU build (-march=native, GCC's
// default contraction) keeps a product separate or fuses it, __fmul_rn /
// __fmaf_rn pin nvcc to the same choice.
//
// Everything here is inline and file-local (an anonymous namespace), so each
// .cu file takes only what it uses.
#ifndef RN_KERNELS_CUDA_LAYERS_LAUNCH_CUH
#define RN_KERNELS_CUDA_LAYERS_LAUNCH_CUH

#include <stddef.h>

namespace {

constexpr int kBlock = 256; // threads per block everywhere
constexpr size_t kMaxBlocks = 1u << 18;

inline unsigned blocks_for(size_t n)
{
    size_t b = (n + kBlock - 1) / kBlock;
    return (unsigned)(b < kMaxBlocks ? b : kMaxBlocks);
}

#define RN_GRID_STRIDE(i, n)                                                                       \
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);                        \
         i += (size_t)gridDim.x * blockDim.x)

__device__ inline bool is_nan(float v)
{
    return v != v;
}

__device__ inline double warp_sum(double v)
{
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_down_sync(0xffffffffu, v, o);
    return v;
}

// Sum of v over the block (blockDim.x a multiple of 32, <= 1024), returned to
// every thread; sh holds 32 doubles and may be reused right after the call.
__device__ inline double block_sum(double v, double *sh)
{
    const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = warp_sum(v);
    if (lane == 0)
        sh[wid] = v;
    __syncthreads();
    if (wid == 0) {
        v = lane < nw ? sh[lane] : 0.0;
        v = warp_sum(v);
        if (lane == 0)
            sh[0] = v;
    }
    __syncthreads();
    v = sh[0];
    __syncthreads();
    return v;
}

// The outputs whose window covers input row ih: oh in [lo, hi] (empty when
// lo > hi). Window oh covers [oh*s - p, oh*s - p + k).
__device__ inline void covering(int ih, int k, int s, int p, int ho, int *lo, int *hi)
{
    int t = ih + p - k + 1;
    *lo = t <= 0 ? 0 : (t + s - 1) / s;
    int h = (ih + p) / s;
    *hi = h < ho - 1 ? h : ho - 1;
}

} // namespace

#endif
