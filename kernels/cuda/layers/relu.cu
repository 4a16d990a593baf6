// kernels/cuda/layers/relu.cu - relu's kernels (layers/relu.c): the forward and the
// x > 0 mask its backward and tangents apply.
// Launcher contracts: kernels.h; conventions: launch.cuh.

#include "kernels/cuda/layers/kernels.h"
#include "kernels/cuda/layers/launch.cuh"

namespace {

__global__ void relu_forward_k(const float *__restrict__ x, float *__restrict__ y, size_t n)
{
    RN_GRID_STRIDE(i, n)
    y[i] = x[i] < 0.0f ? 0.0f : x[i];
}

__global__ void relu_mask_k(const float *__restrict__ x, const float *__restrict__ g,
                            float *__restrict__ out, size_t n, int acc)
{
    RN_GRID_STRIDE(i, n)
    {
        float v = x[i] > 0.0f ? g[i] : 0.0f;
        out[i] = acc ? out[i] + v : v;
    }
}

} // namespace

// ---- launchers ---------------------------------------------------------------

extern "C" {

cudaError_t rn_cuda_relu_forward(const float *x, float *y, size_t n, cudaStream_t stream)
{
    if (!n)
        return cudaSuccess;
    relu_forward_k<<<blocks_for(n), kBlock, 0, stream>>>(x, y, n);
    return cudaGetLastError();
}

cudaError_t rn_cuda_relu_mask(const float *x, const float *g, float *out, size_t n,
                              cudaStream_t stream)
{
    if (!n)
        return cudaSuccess;
    relu_mask_k<<<blocks_for(n), kBlock, 0, stream>>>(x, g, out, n, 0);
    return cudaGetLastError();
}

cudaError_t rn_cuda_relu_mask_acc(const float *x, const float *g, float *out, size_t n,
                                  cudaStream_t stream)
{
    if (!n)
        return cudaSuccess;
    relu_mask_k<<<blocks_for(n), kBlock, 0, stream>>>(x, g, out, n, 1);
    return cudaGetLastError();
}

} // extern "C"
