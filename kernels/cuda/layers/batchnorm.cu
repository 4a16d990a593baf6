// kernels/cuda/layers/batchnorm.cu - batchnorm's kernels (layers/batchnorm.c): statistics in
// double, the affine map, the backward and its eval-mode tangent.
// Launcher contracts: kernels.h; conventions: launch.cuh.

#include "kernels/cuda/layers/kernels.h"
#include "kernels/cuda/layers/launch.cuh"

namespace {

// num_batches_tracked += v.
__global__ void add_scalar_k(float *p, float v)
{
    p[0] += v;
}

// Element t of channel ch in an (n, c, hw) tensor, t in [0, n*hw).
__device__ inline size_t bn_off(size_t t, int ch, int c, int hw)
{
    size_t i = t / (size_t)hw, j = t - i * hw;
    return (i * c + ch) * hw + j;
}

// One block per channel: two passes in double like the CPU (mean first, then
// the squared deviations), then the running statistics.
__global__ void bn_stats_train_k(const float *__restrict__ x, int n, int c, int hw, double eps,
                                 double mom, float *__restrict__ mean, float *__restrict__ invstd,
                                 float *__restrict__ rmean, float *__restrict__ rvar)
{
    __shared__ double sh[32];
    const int ch = blockIdx.x;
    const long long M = (long long)n * hw;
    double s = 0.0;
    for (size_t t = threadIdx.x; t < (size_t)M; t += blockDim.x)
        s += x[bn_off(t, ch, c, hw)];
    const double mu = block_sum(s, sh) / M;
    double sq = 0.0;
    for (size_t t = threadIdx.x; t < (size_t)M; t += blockDim.x) {
        double d = x[bn_off(t, ch, c, hw)] - mu;
        sq += d * d;
    }
    const double var = block_sum(sq, sh) / M;
    if (threadIdx.x == 0) {
        mean[ch] = (float)mu;
        invstd[ch] = (float)(1.0 / sqrt(var + eps));
        rmean[ch] = (float)((1.0 - mom) * rmean[ch] + mom * mu);
        rvar[ch] = (float)((1.0 - mom) * rvar[ch] + mom * var * (double)M / (double)(M - 1));
    }
}

__global__ void bn_stats_eval_k(const float *__restrict__ rmean, const float *__restrict__ rvar,
                                double eps, int c, float *__restrict__ mean,
                                float *__restrict__ invstd)
{
    RN_GRID_STRIDE(ch, (size_t)c)
    {
        mean[ch] = rmean[ch];
        invstd[ch] = (float)(1.0 / sqrt((double)rvar[ch] + eps));
    }
}

__global__ void bn_apply_k(const float *__restrict__ x, const float *__restrict__ gamma,
                           const float *__restrict__ beta, const float *__restrict__ mean,
                           const float *__restrict__ invstd, size_t total, int c, int hw,
                           float *__restrict__ y)
{
    RN_GRID_STRIDE(i, total)
    {
        size_t ch = (i / (size_t)hw) % (size_t)c;
        float a = gamma[ch] * invstd[ch], b = beta[ch] - mean[ch] * a;
        y[i] = x[i] * a + b;
    }
}

__global__ void bn_scale_k(const float *__restrict__ tx, const float *__restrict__ gamma,
                           const float *__restrict__ invstd, size_t total, int c, int hw,
                           float *__restrict__ ty)
{
    RN_GRID_STRIDE(i, total)
    {
        size_t ch = (i / (size_t)hw) % (size_t)c;
        ty[i] = gamma[ch] * invstd[ch] * tx[i];
    }
}

// One block per channel: the two sums, the parameter gradients, then dx.
__global__ void bn_backward_k(const float *__restrict__ x, const float *__restrict__ dy,
                              const float *__restrict__ gamma, const float *__restrict__ mean,
                              const float *__restrict__ invstd, int n, int c, int hw, int train,
                              float *__restrict__ gw, float *__restrict__ gb,
                              float *__restrict__ dx)
{
    __shared__ double sh[32];
    const int ch = blockIdx.x;
    const long long M = (long long)n * hw;
    const float mu = mean[ch], inv = invstd[ch];
    double sdy = 0.0, sdyx = 0.0; // sum(dy), sum(dy * xhat)
    for (size_t t = threadIdx.x; t < (size_t)M; t += blockDim.x) {
        size_t off = bn_off(t, ch, c, hw);
        float g = dy[off];
        sdy += g;
        sdyx += (double)g * ((x[off] - mu) * inv);
    }
    sdy = block_sum(sdy, sh);
    sdyx = block_sum(sdyx, sh);
    if (threadIdx.x == 0) {
        if (gw)
            gw[ch] += (float)sdyx;
        if (gb)
            gb[ch] += (float)sdy;
    }
    if (!dx)
        return;
    // Training: dx = a * (dy - mean(dy) - xhat * mean(dy * xhat)); eval: a * dy.
    const float a = gamma[ch] * inv;
    const float k0 = train ? (float)(sdy / M) : 0.0f, k1 = train ? (float)(sdyx / M) : 0.0f;
    for (size_t t = threadIdx.x; t < (size_t)M; t += blockDim.x) {
        size_t off = bn_off(t, ch, c, hw);
        dx[off] += a * (dy[off] - k0 - (x[off] - mu) * inv * k1);
    }
}

// Eval mode only; one block per channel.
__global__ void bn_tangent_backward_k(const float *__restrict__ x, const float *__restrict__ tx,
                                      const float *__restrict__ dy, const float *__restrict__ tdy,
                                      const float *__restrict__ gamma,
                                      const float *__restrict__ mean,
                                      const float *__restrict__ invstd, int n, int c, int hw,
                                      float *__restrict__ gw, float *__restrict__ gb,
                                      float *__restrict__ tdx)
{
    __shared__ double sh[32];
    const int ch = blockIdx.x;
    const size_t M = (size_t)n * hw;
    const float mu = mean[ch], inv = invstd[ch], a = gamma[ch] * inv;
    double sw = 0.0, sb = 0.0;
    for (size_t t = threadIdx.x; t < M; t += blockDim.x) {
        size_t off = bn_off(t, ch, c, hw);
        float tg = tdy[off];
        sw += (double)tg * ((x[off] - mu) * inv) + (double)dy[off] * tx[off] * inv;
        sb += tg;
        if (tdx)
            tdx[off] += a * tg;
    }
    sw = block_sum(sw, sh);
    sb = block_sum(sb, sh);
    if (threadIdx.x == 0) {
        if (gw)
            gw[ch] += (float)sw;
        if (gb)
            gb[ch] += (float)sb;
    }
}

} // namespace

// ---- launchers ---------------------------------------------------------------

extern "C" {

cudaError_t rn_cuda_add_scalar(float *p, float v, cudaStream_t stream)
{
    add_scalar_k<<<1, 1, 0, stream>>>(p, v);
    return cudaGetLastError();
}
cudaError_t rn_cuda_bn_stats_train(const float *x, int n, int c, int hw, double eps,
                                   double momentum, float *mean, float *invstd, float *running_mean,
                                   float *running_var, cudaStream_t stream)
{
    if ((size_t)n * c * hw == 0)
        return cudaSuccess;
    bn_stats_train_k<<<c, kBlock, 0, stream>>>(x, n, c, hw, eps, momentum, mean, invstd,
                                               running_mean, running_var);
    return cudaGetLastError();
}

cudaError_t rn_cuda_bn_stats_eval(const float *running_mean, const float *running_var, double eps,
                                  int c, float *mean, float *invstd, cudaStream_t stream)
{
    if (c <= 0)
        return cudaSuccess;
    bn_stats_eval_k<<<blocks_for((size_t)c), kBlock, 0, stream>>>(running_mean, running_var, eps, c,
                                                                  mean, invstd);
    return cudaGetLastError();
}

cudaError_t rn_cuda_bn_apply(const float *x, const float *gamma, const float *beta,
                             const float *mean, const float *invstd, int n, int c, int hw, float *y,
                             cudaStream_t stream)
{
    size_t total = (size_t)n * c * hw;
    if (!total)
        return cudaSuccess;
    bn_apply_k<<<blocks_for(total), kBlock, 0, stream>>>(x, gamma, beta, mean, invstd, total, c, hw,
                                                         y);
    return cudaGetLastError();
}

cudaError_t rn_cuda_bn_scale(const float *tx, const float *gamma, const float *invstd, int n, int c,
                             int hw, float *ty, cudaStream_t stream)
{
    size_t total = (size_t)n * c * hw;
    if (!total)
        return cudaSuccess;
    bn_scale_k<<<blocks_for(total), kBlock, 0, stream>>>(tx, gamma, invstd, total, c, hw, ty);
    return cudaGetLastError();
}

cudaError_t rn_cuda_bn_backward(const float *x, const float *dy, const float *gamma,
                                const float *mean, const float *invstd, int n, int c, int hw,
                                int train, float *gw, float *gb, float *dx, cudaStream_t stream)
{
    if ((size_t)n * c * hw == 0)
        return cudaSuccess;
    bn_backward_k<<<c, kBlock, 0, stream>>>(x, dy, gamma, mean, invstd, n, c, hw, train, gw, gb,
                                            dx);
    return cudaGetLastError();
}

cudaError_t rn_cuda_bn_tangent_backward(const float *x, const float *tx, const float *dy,
                                        const float *tdy, const float *gamma, const float *mean,
                                        const float *invstd, int n, int c, int hw, float *gw,
                                        float *gb, float *tdx, cudaStream_t stream)
{
    if ((size_t)n * c * hw == 0)
        return cudaSuccess;
    bn_tangent_backward_k<<<c, kBlock, 0, stream>>>(x, tx, dy, tdy, gamma, mean, invstd, n, c, hw,
                                                    gw, gb, tdx);
    return cudaGetLastError();
}

} // extern "C"
