// kernels/cuda/layer_kernels.cu - the element-wise, pooling, reduction and
// batchnorm kernels of the CUDA backend, behind the C launchers of
// layer_kernels.h (their contracts are there).
//
// Conventions: NCHW float on the device; element-wise kernels use grid-stride
// loops with size_t indices; per-channel reductions use one block per channel
// and per-plane ones one warp per plane, accumulating in double like the CPU
// layers; a launcher returns cudaGetLastError() and launches nothing for an
// empty tensor (a zero grid is a launch error). Each kernel names the CPU
// layer it mirrors and writes its float expressions the way the CPU source
// does, in the same order where the order decides the rounding; where the
// CPU build (-march=native, GCC's default contraction) keeps a product
// separate or fuses it, __fmul_rn / __fmaf_rn pin nvcc to the same choice.

#include "layer_kernels.h"
#include "rng.cuh"

namespace {

constexpr int kBlock = 256;        // threads per block everywhere
constexpr size_t kMaxBlocks = 1u << 18;

inline unsigned blocks_for(size_t n)
{
    size_t b = (n + kBlock - 1) / kBlock;
    return (unsigned)(b < kMaxBlocks ? b : kMaxBlocks);
}

#define RN_GRID_STRIDE(i, n)                                                                      \
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);                       \
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
__device__ double block_sum(double v, double *sh)
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

// ---- element-wise -------------------------------------------------------------

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

__global__ void axpy_acc_k(float a, const float *__restrict__ g, float *__restrict__ out,
                           size_t n)
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

__global__ void mul_k(const float *__restrict__ m, const float *__restrict__ g,
                      float *__restrict__ out, size_t n, int acc)
{
    RN_GRID_STRIDE(i, n)
    {
        // The CPU's out += m * g compiles to one FMA (-march=native).
        out[i] = acc ? __fmaf_rn(m[i], g[i], out[i]) : m[i] * g[i];
    }
}

__global__ void add_scalar_k(float *p, float v)
{
    p[0] += v;
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

// ---- dropout (layers/dropout.c, runner/rng.c) -----------------------------------

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

// ---- pooling (layers/maxpool2d.c, avgpool2d.c, global_avg_pool.c) ------------------

// The outputs whose window covers input row ih: oh in [lo, hi] (empty when
// lo > hi). Window oh covers [oh*s - p, oh*s - p + k).
__device__ inline void covering(int ih, int k, int s, int p, int ho, int *lo, int *hi)
{
    int t = ih + p - k + 1;
    *lo = t <= 0 ? 0 : (t + s - 1) / s;
    int h = (ih + p) / s;
    *hi = h < ho - 1 ? h : ho - 1;
}

__global__ void maxpool_forward_k(rn_cuda_pool_geom g, const float *__restrict__ x,
                                  float *__restrict__ y, int32_t *__restrict__ arg)
{
    const size_t total = (size_t)g.n * g.c * g.ho * g.wo, O = (size_t)g.ho * g.wo;
    RN_GRID_STRIDE(o, total)
    {
        size_t pl = o / O;
        int r = (int)(o - pl * O), oh = r / g.wo, ow = r - oh * g.wo;
        const float *xp = x + pl * g.h * g.w;
        int h0 = oh * g.s - g.p, w0 = ow * g.s - g.p;
        float best = -INFINITY;
        int32_t bi = -1;
        for (int ih = h0 < 0 ? 0 : h0; ih < h0 + g.k && ih < g.h; ih++)
            for (int iw = w0 < 0 ? 0 : w0; iw < w0 + g.k && iw < g.w; iw++) {
                float v = xp[ih * g.w + iw];
                // Strict > keeps the first maximum; NaN wins (the CPU's rule).
                if (v > best || is_nan(v) || bi < 0) {
                    best = v;
                    bi = ih * g.w + iw;
                }
            }
        y[o] = best;
        arg[o] = bi;
    }
}

// One thread per input element; it adds the outputs that routed to it in
// ascending output order, the order of the CPU's scatter.
__global__ void maxpool_backward_k(rn_cuda_pool_geom g, const int32_t *__restrict__ arg,
                                   const float *__restrict__ dy, float *__restrict__ dx)
{
    const size_t total = (size_t)g.n * g.c * g.h * g.w, HW = (size_t)g.h * g.w;
    const size_t O = (size_t)g.ho * g.wo;
    RN_GRID_STRIDE(i, total)
    {
        size_t pl = i / HW;
        int r = (int)(i - pl * HW), ih = r / g.w, iw = r - ih * g.w;
        int oh0, oh1, ow0, ow1;
        covering(ih, g.k, g.s, g.p, g.ho, &oh0, &oh1);
        covering(iw, g.k, g.s, g.p, g.wo, &ow0, &ow1);
        const int32_t *ap = arg + pl * O;
        const float *gp = dy + pl * O;
        float acc = dx[i];
        bool hit = false;
        for (int oh = oh0; oh <= oh1; oh++)
            for (int ow = ow0; ow <= ow1; ow++) {
                int o = oh * g.wo + ow;
                if (ap[o] == r) {
                    acc += gp[o];
                    hit = true;
                }
            }
        if (hit)
            dx[i] = acc;
    }
}

__global__ void maxpool_gather_k(rn_cuda_pool_geom g, const int32_t *__restrict__ arg,
                                 const float *__restrict__ tx, float *__restrict__ ty)
{
    const size_t total = (size_t)g.n * g.c * g.ho * g.wo, O = (size_t)g.ho * g.wo;
    const size_t HW = (size_t)g.h * g.w;
    RN_GRID_STRIDE(o, total)
    ty[o] = tx[(o / O) * HW + arg[o]];
}

__global__ void avgpool_forward_k(rn_cuda_pool_geom g, const float *__restrict__ x,
                                  float *__restrict__ y)
{
    const size_t total = (size_t)g.n * g.c * g.ho * g.wo, O = (size_t)g.ho * g.wo;
    const float inv = 1.0f / (float)(g.k * g.k);
    RN_GRID_STRIDE(o, total)
    {
        size_t pl = o / O;
        int r = (int)(o - pl * O), oh = r / g.wo, ow = r - oh * g.wo;
        const float *xp = x + pl * g.h * g.w;
        int h0 = oh * g.s - g.p, w0 = ow * g.s - g.p;
        float sum = 0.0f;
        for (int ih = h0 < 0 ? 0 : h0; ih < h0 + g.k && ih < g.h; ih++)
            for (int iw = w0 < 0 ? 0 : w0; iw < w0 + g.k && iw < g.w; iw++)
                sum += xp[ih * g.w + iw];
        y[o] = __fmul_rn(sum, inv);
    }
}

__global__ void avgpool_backward_k(rn_cuda_pool_geom g, const float *__restrict__ dy,
                                   float *__restrict__ dx)
{
    const size_t total = (size_t)g.n * g.c * g.h * g.w, HW = (size_t)g.h * g.w;
    const size_t O = (size_t)g.ho * g.wo;
    const float inv = 1.0f / (float)(g.k * g.k);
    RN_GRID_STRIDE(i, total)
    {
        size_t pl = i / HW;
        int r = (int)(i - pl * HW), ih = r / g.w, iw = r - ih * g.w;
        int oh0, oh1, ow0, ow1;
        covering(ih, g.k, g.s, g.p, g.ho, &oh0, &oh1);
        covering(iw, g.k, g.s, g.p, g.wo, &ow0, &ow1);
        const float *gp = dy + pl * O;
        float acc = dx[i];
        for (int oh = oh0; oh <= oh1; oh++)
            for (int ow = ow0; ow <= ow1; ow++)
                acc += __fmul_rn(gp[oh * g.wo + ow], inv);
        dx[i] = acc;
    }
}

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

__global__ void gap_backward_k(const float *__restrict__ dy, float *__restrict__ dx,
                               size_t planes, int hw)
{
    const float inv = 1.0f / (float)hw;
    const size_t total = planes * hw;
    RN_GRID_STRIDE(i, total)
    dx[i] += __fmul_rn(dy[i / (size_t)hw], inv);
}

// ---- batchnorm (layers/batchnorm.c) ---------------------------------------------

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

// ---- launchers ----------------------------------------------------------------------

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

cudaError_t rn_cuda_add_scalar(float *p, float v, cudaStream_t stream)
{
    add_scalar_k<<<1, 1, 0, stream>>>(p, v);
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

cudaError_t rn_cuda_dropout_mask(float *mask, size_t n, uint64_t state, uint64_t inc, double p,
                                 float scale, cudaStream_t stream)
{
    if (!n)
        return cudaSuccess;
    size_t chunks = (n + kDropoutPerThread - 1) / kDropoutPerThread;
    dropout_mask_k<<<blocks_for(chunks), kBlock, 0, stream>>>(mask, n, state, inc, p, scale);
    return cudaGetLastError();
}

cudaError_t rn_cuda_maxpool_forward(const struct rn_cuda_pool_geom *g, const float *x, float *y,
                                    int32_t *arg, cudaStream_t stream)
{
    size_t total = (size_t)g->n * g->c * g->ho * g->wo;
    if (!total)
        return cudaSuccess;
    maxpool_forward_k<<<blocks_for(total), kBlock, 0, stream>>>(*g, x, y, arg);
    return cudaGetLastError();
}

cudaError_t rn_cuda_maxpool_backward_acc(const struct rn_cuda_pool_geom *g, const int32_t *arg,
                                         const float *dy, float *dx, cudaStream_t stream)
{
    size_t total = (size_t)g->n * g->c * g->h * g->w;
    if (!total)
        return cudaSuccess;
    maxpool_backward_k<<<blocks_for(total), kBlock, 0, stream>>>(*g, arg, dy, dx);
    return cudaGetLastError();
}

cudaError_t rn_cuda_maxpool_gather(const struct rn_cuda_pool_geom *g, const int32_t *arg,
                                   const float *tx, float *ty, cudaStream_t stream)
{
    size_t total = (size_t)g->n * g->c * g->ho * g->wo;
    if (!total)
        return cudaSuccess;
    maxpool_gather_k<<<blocks_for(total), kBlock, 0, stream>>>(*g, arg, tx, ty);
    return cudaGetLastError();
}

cudaError_t rn_cuda_avgpool_forward(const struct rn_cuda_pool_geom *g, const float *x, float *y,
                                    cudaStream_t stream)
{
    size_t total = (size_t)g->n * g->c * g->ho * g->wo;
    if (!total)
        return cudaSuccess;
    avgpool_forward_k<<<blocks_for(total), kBlock, 0, stream>>>(*g, x, y);
    return cudaGetLastError();
}

cudaError_t rn_cuda_avgpool_backward_acc(const struct rn_cuda_pool_geom *g, const float *dy,
                                         float *dx, cudaStream_t stream)
{
    size_t total = (size_t)g->n * g->c * g->h * g->w;
    if (!total)
        return cudaSuccess;
    avgpool_backward_k<<<blocks_for(total), kBlock, 0, stream>>>(*g, dy, dx);
    return cudaGetLastError();
}

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
    bn_stats_eval_k<<<blocks_for((size_t)c), kBlock, 0, stream>>>(running_mean, running_var, eps,
                                                                  c, mean, invstd);
    return cudaGetLastError();
}

cudaError_t rn_cuda_bn_apply(const float *x, const float *gamma, const float *beta,
                             const float *mean, const float *invstd, int n, int c, int hw, float *y,
                             cudaStream_t stream)
{
    size_t total = (size_t)n * c * hw;
    if (!total)
        return cudaSuccess;
    bn_apply_k<<<blocks_for(total), kBlock, 0, stream>>>(x, gamma, beta, mean, invstd, total, c,
                                                         hw, y);
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
