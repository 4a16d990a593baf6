// kernels/cuda/layers/maxpool2d.cu - maxpool2d's kernels (layers/maxpool2d.c): the forward
// with its first-maximum argmax, the gathering backward, the tangent gather.
// Launcher contracts: kernels.h; conventions: launch.cuh.

#include "kernels/cuda/layers/kernels.h"
#include "kernels/cuda/layers/launch.cuh"

namespace {

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

} // namespace

// ---- launchers ---------------------------------------------------------------

extern "C" {

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

} // extern "C"
