// kernels/cuda/layers/avgpool2d.cu - avgpool2d's kernels (layers/avgpool2d.c): the window
// mean, padded zeros counted, and its transpose.
// Launcher contracts: kernels.h; conventions: launch.cuh.

#include "kernels/cuda/layers/kernels.h"
#include "kernels/cuda/layers/launch.cuh"

namespace {

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

} // namespace

// ---- launchers ---------------------------------------------------------------

extern "C" {

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

} // extern "C"
