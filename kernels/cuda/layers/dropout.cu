// kernels/cuda/layers/dropout.cu - dropout's kernels (layers/dropout.c, runner/rng.c): the
// CPU's mask by PCG skip-ahead and the masked products.
// Launcher contracts: kernels.h; conventions: launch.cuh.

#include "kernels/cuda/layers/kernels.h"
#include "kernels/cuda/layers/launch.cuh"
#include "kernels/cuda/rng.cuh"

namespace {

__global__ void mul_k(const float *__restrict__ m, const float *__restrict__ g,
                      float *__restrict__ out, size_t n, int acc)
{
    RN_GRID_STRIDE(i, n)
    {
        // The CPU's out += m * g compiles to one FMA (-march=native).
        out[i] = acc ? __fmaf_rn(m[i], g[i], out[i]) : m[i] * g[i];
    }
}

constexpr size_t kDropoutPerThread = 16;

// The state after delta advances of s' = s * kPcgMult + inc (O'Neill's
// pcg_advance_lcg_64: square-and-multiply on the affine map).
__device__ inline uint64_t pcg_advance(uint64_t state, uint64_t delta, uint64_t inc)
{
    uint64_t cur_mult = kPcgMult, cur_plus = inc, acc_mult = 1u, acc_plus = 0u;
    while (delta > 0) {
        if (delta & 1u) {
            acc_mult *= cur_mult;
            acc_plus = acc_plus * cur_mult + cur_plus;
        }
        cur_plus = (cur_mult + 1u) * cur_plus;
        cur_mult *= cur_mult;
        delta >>= 1;
    }
    return acc_mult * state + acc_plus;
}

// Thread t draws elements [t*16, t*16 + 16): one skip-ahead, then steps.
__global__ void dropout_mask_k(float *__restrict__ mask, size_t n, uint64_t state, uint64_t inc,
                               double p, float scale)
{
    const size_t chunks = (n + kDropoutPerThread - 1) / kDropoutPerThread;
    RN_GRID_STRIDE(t, chunks)
    {
        size_t i0 = t * kDropoutPerThread;
        size_t i1 = i0 + kDropoutPerThread < n ? i0 + kDropoutPerThread : n;
        uint64_t s = pcg_advance(state, (uint64_t)i0, inc);
        for (size_t i = i0; i < i1; i++) {
            uint64_t old = s;
            s = old * kPcgMult + inc;
            float u = (float)(pcg_output(old) >> 8) * (1.0f / 16777216.0f);
            mask[i] = (double)u >= p ? scale : 0.0f;
        }
    }
}

} // namespace

// ---- launchers ---------------------------------------------------------------

extern "C" {

cudaError_t rn_cuda_mul(const float *m, const float *g, float *out, size_t n, cudaStream_t stream)
{
    if (!n)
        return cudaSuccess;
    mul_k<<<blocks_for(n), kBlock, 0, stream>>>(m, g, out, n, 0);
    return cudaGetLastError();
}

cudaError_t rn_cuda_mul_acc(const float *m, const float *g, float *out, size_t n,
                            cudaStream_t stream)
{
    if (!n)
        return cudaSuccess;
    mul_k<<<blocks_for(n), kBlock, 0, stream>>>(m, g, out, n, 1);
    return cudaGetLastError();
}
cudaError_t rn_cuda_dropout_mask(float *mask, size_t n, uint64_t state, uint64_t inc, double p,
                                 float scale, cudaStream_t stream)
{
    if (!n)
        return cudaSuccess;
    size_t chunks = (n + kDropoutPerThread - 1) / kDropoutPerThread;
    dropout_mask_k<<<blocks_for(chunks), kBlock, 0, stream>>>(mask, n, state, inc, p, scale);
    return cudaGetLastError();
}

} // extern "C"
