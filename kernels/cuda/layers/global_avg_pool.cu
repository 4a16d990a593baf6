// kernels/cuda/layers/global_avg_pool.cu - global_avg_pool's kernels (layers/global_avg_pool.c):
// the plane means in double and their transpose.
// Launcher contracts: kernels.h; conventions: launch.cuh.

#include "kernels/cuda/layers/kernels.h"
#include "kernels/cuda/layers/launch.cuh"

namespace {

// One warp per plane.
__global__ void gap_forward_k(const float *__restrict__ x, float *__restrict__ y, size_t planes,
                              int hw)
{
    const size_t warps = (size_t)gridDim.x * (blockDim.x >> 5);
    const int lane = threadIdx.x & 31;
    const double inv = 1.0 / hw;
    for (size_t pl = (size_t)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5); pl < planes;
         pl += warps) {
        const float *p = x + pl * hw;
        double s = 0.0;
        for (int j = lane; j < hw; j += 32)
            s += p[j];
        s = warp_sum(s);
        if (lane == 0)
            y[pl] = (float)(s * inv);
    }
}

__global__ void gap_backward_k(const float *__restrict__ dy, float *__restrict__ dx, size_t planes,
                               int hw)
{
    const float inv = 1.0f / (float)hw;
    const size_t total = planes * hw;
    RN_GRID_STRIDE(i, total)
    dx[i] += __fmul_rn(dy[i / (size_t)hw], inv);
}

} // namespace

// ---- launchers ---------------------------------------------------------------

extern "C" {

cudaError_t rn_cuda_gap_forward(const float *x, float *y, size_t planes, int hw,
                                cudaStream_t stream)
{
    if (!planes || hw <= 0)
        return cudaSuccess;
    // blocks_for(planes * 32): one warp of 32 threads per plane.
    gap_forward_k<<<blocks_for(planes * 32), kBlock, 0, stream>>>(x, y, planes, hw);
    return cudaGetLastError();
}

cudaError_t rn_cuda_gap_backward_acc(const float *dy, float *dx, size_t planes, int hw,
                                     cudaStream_t stream)
{
    size_t total = planes * (size_t)(hw > 0 ? hw : 0);
    if (!total)
        return cudaSuccess;
    gap_backward_k<<<blocks_for(total), kBlock, 0, stream>>>(dy, dx, planes, hw);
    return cudaGetLastError();
}

} // extern "C"
