// backend_kernels.cu - the backend's own CUDA kernels (backend_kernels.h): optimizer updates,
// sum of squares, softmax cross-entropy and the batch gathers. Each mirrors a CPU function
// whose formulas it copies; the intrinsics __fadd_rn etc. keep nvcc from fusing a multiply and
// an add, so every float operation rounds where the C source says it does.
#include "backend_kernels.h"

#include "block_sum.cuh"

#include <math.h>

namespace
{

constexpr int kThreads = 256;
constexpr int kMaxBlocks = 4096; // grid-stride beyond this

int blocks_for(size_t n)
{
    size_t b = (n + kThreads - 1) / kThreads;
    return b > (size_t)kMaxBlocks ? kMaxBlocks : (int)b;
}

// ---- optimizer ---------------------------------------------------------------------------

// The clipping multiplier, as cpu_optim_update: from the squared norm when given.
__device__ float grad_scale_of(const rn_cuda_optim_args &a)
{
    if (!a.clip_sq)
        return a.grad_scale;
    const double norm = sqrt(*a.clip_sq);
    return norm > a.clip_norm ? (float)(a.clip_norm / (norm + 1e-6)) : 1.0f;
}

// cpu_optim_update, case RN_OPTIM_ADAM / RN_OPTIM_ADAMW.
__global__ void adam_kernel(rn_cuda_optim_args a, float *__restrict__ p,
                            const float *__restrict__ g, float *__restrict__ m,
                            float *__restrict__ v, size_t n)
{
    const float one_b1 = __fsub_rn(1.0f, a.beta1), one_b2 = __fsub_rn(1.0f, a.beta2);
    const float decay = __fsub_rn(1.0f, __fmul_rn(a.lr, a.weight_decay));
    const float scale = grad_scale_of(a);
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        float pi = p[i];
        float gi = __fmul_rn(g[i], scale);
        if (a.kind == RN_CUDA_OPTIM_ADAMW)
            pi = __fmul_rn(pi, decay);
        else
            gi = __fadd_rn(gi, __fmul_rn(a.weight_decay, pi));
        const float mi = __fadd_rn(__fmul_rn(a.beta1, m[i]), __fmul_rn(one_b1, gi));
        const float vi = __fadd_rn(__fmul_rn(a.beta2, v[i]), __fmul_rn(__fmul_rn(one_b2, gi), gi));
        const float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(vi), a.bc2_sqrt), a.eps);
        pi = __fsub_rn(pi, __fdiv_rn(__fmul_rn(a.step_size, mi), denom));
        m[i] = mi;
        v[i] = vi;
        p[i] = pi;
    }
}

// cpu_optim_update, case RN_OPTIM_SGD.
__global__ void sgd_kernel(rn_cuda_optim_args a, float *__restrict__ p, const float *__restrict__ g,
                           float *__restrict__ m, size_t n)
{
    const float scale = grad_scale_of(a);
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        const float pi = p[i];
        float gi = __fadd_rn(__fmul_rn(g[i], scale), __fmul_rn(a.weight_decay, pi));
        if (a.momentum != 0.0f) {
            const float mi = a.first ? gi : __fadd_rn(__fmul_rn(a.momentum, m[i]), gi);
            m[i] = mi;
            gi = mi;
        }
        p[i] = __fsub_rn(pi, __fmul_rn(a.lr, gi));
    }
}

// ---- reductions --------------------------------------------------------------------------


// partials[b] = sum over the elements block b visits (grid-stride order fixed by n).
__global__ void sumsq_partial_kernel(const float *__restrict__ x, size_t n,
                                     double *__restrict__ partials)
{
    __shared__ double sh[kThreads];
    double s = 0.0;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        const double xi = x[i];
        s += xi * xi;
    }
    s = block_sum(s, sh);
    if (threadIdx.x == 0)
        partials[blockIdx.x] = s;
}

__global__ void sumsq_final_kernel(const double *__restrict__ partials, int nb, double *result,
                                   int accumulate)
{
    __shared__ double sh[kThreads];
    double s = 0.0;
    for (int i = threadIdx.x; i < nb; i += blockDim.x)
        s += partials[i];
    s = block_sum(s, sh);
    if (threadIdx.x == 0)
        *result = accumulate ? *result + s : s;
}


// ---- cross-entropy -----------------------------------------------------------------------

// rn_cross_entropy (runner/loss.c), one thread per sample, one block for the whole batch so
// the loss sum and the correct count are reduced in the same order on every run.
__global__ void cross_entropy_kernel(const float *__restrict__ logits,
                                     const uint8_t *__restrict__ targets, int n, int k,
                                     float weight, float *dlogits, double *loss_sum, int *correct,
                                     float *probs)
{
    __shared__ double sh_loss[kThreads];
    __shared__ int sh_right[kThreads];
    double total = 0.0;
    int right = 0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        const float *z = logits + (size_t)i * k;
        const int t = targets[i];
        int arg = 0;
        for (int j = 1; j < k; j++)
            if (z[j] > z[arg])
                arg = j;
        double sum = 0.0;
        for (int j = 0; j < k; j++)
            sum += exp((double)z[j] - (double)z[arg]);
        const double lse = (double)z[arg] + log(sum);
        total += lse - (t < k ? (double)z[t] : (double)NAN);
        right += arg == t;
        if (!dlogits && !probs)
            continue;
        for (int j = 0; j < k; j++) {
            const double p = exp((double)z[j] - lse);
            const size_t e = (size_t)i * k + j;
            if (probs)
                probs[e] = (float)p;
            if (dlogits)
                dlogits[e] = __fadd_rn(
                    dlogits[e], (float)((double)weight * (p - (double)(j == t)) / (double)n));
        }
    }
    total = block_sum(total, sh_loss);
    right = block_sum(right, sh_right);
    if (threadIdx.x == 0) {
        if (loss_sum)
            *loss_sum += total;
        if (correct)
            *correct += right;
    }
}

// Confusion counts: one thread per sample, argmax with the first-maximum rule; integer atomics
// give the same counts in any order.
__global__ void confusion_kernel(const float *__restrict__ logits,
                                 const uint8_t *__restrict__ targets, int n, int k, int *confusion)
{
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        const float *z = logits + (size_t)i * k;
        int arg = 0;
        for (int j = 1; j < k; j++)
            if (z[j] > z[arg])
                arg = j;
        const int t = targets[i];
        if (t < k)
            atomicAdd(&confusion[t * k + arg], 1);
    }
}

// ---- gathers -----------------------------------------------------------------------------

// rn_run_load_batch: dst[k] = src[k] * (1.0f / 255.0f) with the uint8 converted to float.
__global__ void gather_images_kernel(const uint8_t *__restrict__ images,
                                     const int *__restrict__ idx, int n, int per, float scale,
                                     float *__restrict__ out)
{
    const size_t total = (size_t)n * per;
    for (size_t e = blockIdx.x * (size_t)blockDim.x + threadIdx.x; e < total;
         e += (size_t)gridDim.x * blockDim.x) {
        const size_t i = e / per, j = e % per;
        const size_t src = (size_t)(idx ? idx[i] : (int)i) * per + j;
        out[e] = __fmul_rn((float)images[src], scale);
    }
}

__global__ void gather_u8_kernel(const uint8_t *__restrict__ src, const int *__restrict__ idx,
                                 int n, uint8_t *__restrict__ dst)
{
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
        dst[i] = src[idx ? idx[i] : i];
}

} // namespace

extern "C" int rn_cuda_optim_update(const struct rn_cuda_optim_args *a, float *p, const float *g,
                                    float *m, float *v, size_t n, cudaStream_t s)
{
    if (n == 0)
        return cudaSuccess;
    if (a->kind == RN_CUDA_OPTIM_SGD)
        sgd_kernel<<<blocks_for(n), kThreads, 0, s>>>(*a, p, g, m, n);
    else
        adam_kernel<<<blocks_for(n), kThreads, 0, s>>>(*a, p, g, m, v, n);
    return cudaGetLastError();
}

// rn_cuda_sum_squares and rn_cuda_sum_squares_acc: the partial sums, then one block that
// writes the total into *result or adds it there.
static int sum_squares(const float *x, size_t n, double *scratch, double *result, int accumulate,
                       cudaStream_t s)
{
    int nb = n ? blocks_for(n) : 0;
    if (nb > RN_CUDA_SUMSQ_BLOCKS)
        nb = RN_CUDA_SUMSQ_BLOCKS;
    if (nb > 0) {
        sumsq_partial_kernel<<<nb, kThreads, 0, s>>>(x, n, scratch);
        cudaError_t e = cudaGetLastError();
        if (e != cudaSuccess)
            return e;
    }
    sumsq_final_kernel<<<1, kThreads, 0, s>>>(scratch, nb, result, accumulate);
    return cudaGetLastError();
}

extern "C" int rn_cuda_sum_squares(const float *x, size_t n, double *scratch, double *result,
                                   cudaStream_t s)
{
    return sum_squares(x, n, scratch, result, 0, s);
}

extern "C" int rn_cuda_sum_squares_acc(const float *x, size_t n, double *scratch, double *acc,
                                       cudaStream_t s)
{
    return sum_squares(x, n, scratch, acc, 1, s);
}

extern "C" int rn_cuda_cross_entropy(const float *logits, const uint8_t *targets, int n, int k,
                                     float weight, float *dlogits, double *loss_sum_dev,
                                     int *correct_dev, float *probs, cudaStream_t s)
{
    if (n <= 0 || k <= 0)
        return cudaSuccess;
    cross_entropy_kernel<<<1, kThreads, 0, s>>>(logits, targets, n, k, weight, dlogits,
                                                loss_sum_dev, correct_dev, probs);
    return cudaGetLastError();
}

extern "C" int rn_cuda_confusion(const float *logits, const uint8_t *targets, int n, int k,
                                 int *confusion, cudaStream_t s)
{
    if (n <= 0 || k <= 0)
        return cudaSuccess;
    confusion_kernel<<<blocks_for((size_t)n), kThreads, 0, s>>>(logits, targets, n, k, confusion);
    return cudaGetLastError();
}

extern "C" int rn_cuda_gather_images(const uint8_t *images_dev, const int *idx_dev, int n,
                                     int sample_bytes, float scale, float *out, cudaStream_t s)
{
    if (n <= 0 || sample_bytes <= 0)
        return cudaSuccess;
    gather_images_kernel<<<blocks_for((size_t)n * sample_bytes), kThreads, 0, s>>>(
        images_dev, idx_dev, n, sample_bytes, scale, out);
    return cudaGetLastError();
}

extern "C" int rn_cuda_gather_u8(const uint8_t *src, const int *idx, int n, uint8_t *dst,
                                 cudaStream_t s)
{
    if (n <= 0)
        return cudaSuccess;
    gather_u8_kernel<<<blocks_for((size_t)n), kThreads, 0, s>>>(src, idx, n, dst);
    return cudaGetLastError();
}

extern "C" int rn_cuda_kernels_check(void)
{
    cudaFuncAttributes attr;
    return cudaFuncGetAttributes(&attr, gather_u8_kernel);
}
