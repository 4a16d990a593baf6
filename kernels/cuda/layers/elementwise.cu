// kernels/cuda/layers/elementwise.cu - the element-wise and per-channel kernels several
// layer types use: axpy (flatten, add, dropout and grl backward), the sum of
// two tensors (add), the per-channel bias and its gradient (conv2d, linear).
// Launcher contracts: kernels.h; conventions: launch.cuh.

#include "kernels/cuda/layers/kernels.h"
#include "kernels/cuda/layers/launch.cuh"

namespace {

__global__ void axpy_acc_k(float a, const float *__restrict__ g, float *__restrict__ out, size_t n)
{
    RN_GRID_STRIDE(i, n)
    out[i] += a * g[i];
}

__global__ void add_k(const float *__restrict__ a, const float *__restrict__ b,
                      float *__restrict__ out, size_t n)
{
    RN_GRID_STRIDE(i, n)
    out[i] = a[i] + b[i];
}

// ---- per channel ----------------------------------------------------------------

__global__ void channel_bias_add_k(float *__restrict__ y, const float *__restrict__ bias, size_t n,
                                   int c, int hw)
{
    RN_GRID_STRIDE(i, n)
    y[i] += bias[(i / (size_t)hw) % (size_t)c];
}

// One block per channel.
__global__ void channel_sum_acc_k(const float *__restrict__ g, int n, int c, int hw,
                                  float *__restrict__ out)
{
    __shared__ double sh[32];
    const int ch = blockIdx.x;
    const size_t m = (size_t)n * hw;
    double s = 0.0;
    for (size_t t = threadIdx.x; t < m; t += blockDim.x) {
        size_t i = t / (size_t)hw, j = t - i * hw;
        s += g[(i * c + ch) * hw + j];
    }
    s = block_sum(s, sh);
    if (threadIdx.x == 0)
        out[ch] += (float)s;
}

} // namespace

// ---- launchers ---------------------------------------------------------------

extern "C" {

cudaError_t rn_cuda_axpy_acc(float a, const float *g, float *out, size_t n, cudaStream_t stream)
{
    if (!n)
        return cudaSuccess;
    axpy_acc_k<<<blocks_for(n), kBlock, 0, stream>>>(a, g, out, n);
    return cudaGetLastError();
}

cudaError_t rn_cuda_add(const float *a, const float *b, float *out, size_t n, cudaStream_t stream)
{
    if (!n)
        return cudaSuccess;
    add_k<<<blocks_for(n), kBlock, 0, stream>>>(a, b, out, n);
    return cudaGetLastError();
}
cudaError_t rn_cuda_channel_bias_add(float *y, const float *bias, int n, int c, int hw,
                                     cudaStream_t stream)
{
    size_t total = (size_t)n * c * hw;
    if (!total)
        return cudaSuccess;
    channel_bias_add_k<<<blocks_for(total), kBlock, 0, stream>>>(y, bias, total, c, hw);
    return cudaGetLastError();
}

cudaError_t rn_cuda_channel_sum_acc(const float *g, int n, int c, int hw, float *out,
                                    cudaStream_t stream)
{
    if ((size_t)n * c * hw == 0)
        return cudaSuccess;
    channel_sum_acc_k<<<c, kBlock, 0, stream>>>(g, n, c, hw, out);
    return cudaGetLastError();
}

} // extern "C"
