/* kernels/cpu/conv2d.c - im2col + per-image sgemm convolution (see conv2d.h). */
#include "kernels/cpu/conv2d.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __AVX512F__
#include <immintrin.h>
#endif

#include "kernels/cpu/conv2d_onednn.h"
#include "kernels/cpu/gemm.h"

int rn_conv2d_cpu_geom_init(struct rn_conv2d_cpu_geom *g, int cin, int h, int w, int cout, int k,
                            int stride, int pad, struct rn_error *err)
{
    memset(g, 0, sizeof *g);
    if (cin < 1 || cout < 1 || k < 1 || stride < 1 || pad < 0)
        return rn_errorf(err, "conv2d: bad geometry cin=%d cout=%d kernel=%d stride=%d padding=%d",
                         cin, cout, k, stride, pad);
    if (h + 2 * pad < k || w + 2 * pad < k)
        return rn_errorf(err,
                         "conv2d needs an input of at least %dx%d after padding, got (%d,%d,%d) "
                         "with padding %d; lower kernel/stride or remove a pooling layer before it",
                         k, k, cin, h, w, pad);
    g->cin = cin;
    g->h = h;
    g->w = w;
    g->cout = cout;
    g->k = k;
    g->stride = stride;
    g->pad = pad;
    g->hout = (h + 2 * pad - k) / stride + 1;
    g->wout = (w + 2 * pad - k) / stride + 1;
    return 0;
}

/* The input is its own col matrix: (Cin, H*W) == (Cin*1*1, Hout*Wout). */
static int is_pointwise(const struct rn_conv2d_cpu_geom *g)
{
    return g->k == 1 && g->stride == 1 && g->pad == 0;
}

/* Floats of slack before and after ws->dcol for col2im_add_s1's masked loads
 * (their lanes reach k - 1 + 16 floats past a row). */
#define DCOL_SLACK 48

static size_t round16(size_t n)
{
    return (n + 15) / 16 * 16;
}

static float *alloc_floats(size_t n, struct rn_error *err)
{
    size_t bytes = round16(n ? n : 1) * sizeof(float);
    float *p = aligned_alloc(64, bytes);
    if (!p)
        rn_errorf(err, "out of memory allocating %zu bytes of conv2d scratch", bytes);
    return p;
}

int rn_conv2d_cpu_have_onednn(void)
{
#ifdef RN_HAVE_ONEDNN
    return 1;
#else
    return 0;
#endif
}

const char *rn_conv2d_cpu_impl_name(const struct rn_conv2d_cpu_ws *ws)
{
#ifdef RN_HAVE_ONEDNN
    if (ws->onednn) {
        static _Thread_local char name[80];
        snprintf(name, sizeof name, "onednn:%s", rn_conv2d_onednn_impl(ws->onednn));
        return name;
    }
#endif
    return "ref";
}

/* RN_CONV2D_CPU_AUTO resolved through RN_CPU_CONV; -1 on a bad value. */
static int resolve_impl(enum rn_conv2d_cpu_impl impl, struct rn_error *err)
{
    if (impl != RN_CONV2D_CPU_AUTO)
        return impl;
    const char *env = getenv("RN_CPU_CONV");
    if (!env || !env[0])
        return rn_conv2d_cpu_have_onednn() ? RN_CONV2D_CPU_ONEDNN : RN_CONV2D_CPU_REF;
    if (strcmp(env, "ref") == 0)
        return RN_CONV2D_CPU_REF;
    if (strcmp(env, "onednn") == 0)
        return RN_CONV2D_CPU_ONEDNN;
    return rn_errorf(err, "RN_CPU_CONV is '%s'; expected 'ref' (im2col + OpenBLAS) or 'onednn'",
                     env);
}

int rn_conv2d_cpu_ws_init(struct rn_conv2d_cpu_ws *ws, const struct rn_conv2d_cpu_geom *g,
                          int n_threads, struct rn_error *err)
{
    return rn_conv2d_cpu_ws_init_impl(ws, g, n_threads, RN_CONV2D_CPU_AUTO, err);
}

int rn_conv2d_cpu_ws_init_impl(struct rn_conv2d_cpu_ws *ws, const struct rn_conv2d_cpu_geom *g,
                               int n_threads, enum rn_conv2d_cpu_impl impl, struct rn_error *err)
{
    memset(ws, 0, sizeof *ws);
    rn_gemm_cpu_setup(); /* OpenBLAS in the calling thread; oneDNN uses the OpenMP pool */
    int which = resolve_impl(impl, err);
    if (which < 0)
        return -1;
    if (which == RN_CONV2D_CPU_ONEDNN) {
#ifdef RN_HAVE_ONEDNN
        const char *fmt = getenv("RN_ONEDNN_FORMAT");
        int plain = fmt && strcmp(fmt, "plain") == 0;
        ws->n_threads = n_threads > 0 ? n_threads : omp_get_max_threads();
        return rn_conv2d_onednn_create(&ws->onednn, g, plain, err);
#else
        return rn_errorf(err, "this runner was built without oneDNN (cmake found no libdnnl; "
                              "-DRUNNER_ONEDNN=ON to require it); use RN_CPU_CONV=ref");
#endif
    }
    ws->n_threads = n_threads > 0 ? n_threads : omp_get_max_threads();
    if (ws->n_threads < 1)
        ws->n_threads = 1;
    size_t kk = (size_t)g->cin * g->k * g->k;
    const size_t P = (size_t)g->hout * g->wout;
    /* Each thread's slice starts on a 64-byte line so threads never share
     * one. col has one extra row of ones for the bias (see forward). */
    ws->col_len = round16((kk + 1) * P);
    size_t T = (size_t)ws->n_threads;
    if (!is_pointwise(g)) {
        ws->col = alloc_floats(T * ws->col_len, err);
        ws->dcol = ws->col ? alloc_floats(T * ws->col_len + 2 * DCOL_SLACK, err) : NULL;
        if (ws->dcol)
            ws->dcol += DCOL_SLACK;
        ws->wb = ws->dcol ? alloc_floats((size_t)g->cout * (kk + 1), err) : NULL;
        if (ws->wb)
            for (size_t t = 0; t < T; t++)
                for (size_t q = 0; q < P; q++)
                    ws->col[t * ws->col_len + kk * P + q] = 1.0f;
    }
    int fail = !is_pointwise(g) && (!ws->col || !ws->dcol || !ws->wb);
    if (g->pad > 0 && !fail) {
        ws->pad_len = round16((size_t)g->cin * (g->h + 2 * g->pad) * (g->w + 2 * g->pad));
        ws->pad = alloc_floats(T * ws->pad_len, err);
        ws->dpad = ws->pad ? alloc_floats(T * ws->pad_len, err) : NULL;
        fail = !ws->pad || !ws->dpad;
        if (!fail) /* the border of pad stays zero from here on */
            memset(ws->pad, 0, T * ws->pad_len * sizeof(float));
    }
    const size_t C = RN_CONV2D_CPU_CHUNKS;
    ws->dw = fail ? NULL : alloc_floats(C * round16((size_t)g->cout * kk), err);
    ws->db = ws->dw ? alloc_floats(C * round16((size_t)g->cout), err) : NULL;
    if (!fail && ws->dw && ws->db) {
        memset(ws->dw, 0, C * round16((size_t)g->cout * kk) * sizeof(float));
        memset(ws->db, 0, C * round16((size_t)g->cout) * sizeof(float));
    }
    if (fail || !ws->dw || !ws->db) {
        rn_conv2d_cpu_ws_free(ws);
        return -1;
    }
    return 0;
}

void rn_conv2d_cpu_ws_free(struct rn_conv2d_cpu_ws *ws)
{
    if (!ws)
        return;
#ifdef RN_HAVE_ONEDNN
    rn_conv2d_onednn_free(ws->onednn);
#endif
    free(ws->col);
    free(ws->dcol ? ws->dcol - DCOL_SLACK : NULL);
    free(ws->wb);
    free(ws->pad);
    free(ws->dpad);
    free(ws->dw);
    free(ws->db);
    memset(ws, 0, sizeof *ws);
}

/* Copies n floats; n is small (an output row: 7..28 here), so one masked
 * AVX-512 move beats a memcpy call. */
static inline void copy_row(float *restrict dst, const float *restrict src, int n)
{
#ifdef __AVX512F__
    int i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(dst + i, _mm512_loadu_ps(src + i));
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(dst + i, m, _mm512_maskz_loadu_ps(m, src + i));
    }
#else
    for (int i = 0; i < n; i++)
        dst[i] = src[i];
#endif
}

/* dst[0..n) += src[0..n). */
static inline void add_row(float *restrict dst, const float *restrict src, int n)
{
#ifdef __AVX512F__
    int i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(dst + i,
                         _mm512_add_ps(_mm512_loadu_ps(dst + i), _mm512_loadu_ps(src + i)));
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        __m512 a = _mm512_maskz_loadu_ps(m, dst + i), b = _mm512_maskz_loadu_ps(m, src + i);
        _mm512_mask_storeu_ps(dst + i, m, _mm512_add_ps(a, b));
    }
#else
    for (int i = 0; i < n; i++)
        dst[i] += src[i];
#endif
}

/* Sum of x[0..n), four vector accumulators to hide the add latency. */
static inline float row_sum(const float *x, int n)
{
#ifdef __AVX512F__
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int i = 0;
    for (; i + 64 <= n; i += 64) {
        a0 = _mm512_add_ps(a0, _mm512_loadu_ps(x + i));
        a1 = _mm512_add_ps(a1, _mm512_loadu_ps(x + i + 16));
        a2 = _mm512_add_ps(a2, _mm512_loadu_ps(x + i + 32));
        a3 = _mm512_add_ps(a3, _mm512_loadu_ps(x + i + 48));
    }
    for (; i + 16 <= n; i += 16)
        a0 = _mm512_add_ps(a0, _mm512_loadu_ps(x + i));
    if (i < n)
        a1 = _mm512_add_ps(a1, _mm512_maskz_loadu_ps((__mmask16)((1u << (n - i)) - 1), x + i));
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
#else
    float a[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++)
            a[j] += x[i + j];
    for (; i < n; i++)
        a[0] += x[i];
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
#endif
}

/* Padded extents: with a zero border of pad on each side, im2col and col2im
 * need no bounds tests. */
static int padded_h(const struct rn_conv2d_cpu_geom *g)
{
    return g->h + 2 * g->pad;
}
static int padded_w(const struct rn_conv2d_cpu_geom *g)
{
    return g->w + 2 * g->pad;
}

/* Returns one image x (Cin, H, W) as a padded (Cin, Hp, Wp) array: x itself
 * when pad is 0, else its copy into the interior of xp, whose border is zero
 * since ws_init and never written. */
static const float *pad_image(const struct rn_conv2d_cpu_geom *g, const float *x, float *xp)
{
    const int p = g->pad, H = g->h, W = g->w, Hp = padded_h(g), Wp = padded_w(g);
    if (p == 0)
        return x;
    for (int ci = 0; ci < g->cin; ci++)
        for (int ih = 0; ih < H; ih++)
            copy_row(xp + ((size_t)ci * Hp + ih + p) * Wp + p, x + ((size_t)ci * H + ih) * W, W);
    return xp;
}

/* col (Cin*k*k, Hout*Wout) from one padded image xp (Cin, Hp, Wp). */
static void im2col(const struct rn_conv2d_cpu_geom *g, const float *xp, float *col)
{
    const int k = g->k, s = g->stride, Hp = padded_h(g), Wp = padded_w(g);
    const int ho = g->hout, wo = g->wout;
    for (int ci = 0; ci < g->cin; ci++)
        for (int kh = 0; kh < k; kh++)
            for (int kw = 0; kw < k; kw++) {
                float *dst = col + ((size_t)(ci * k + kh) * k + kw) * ho * wo;
                const float *src = xp + ((size_t)ci * Hp + kh) * Wp + kw;
                if (s == 1) {
                    for (int oh = 0; oh < ho; oh++)
                        copy_row(dst + (size_t)oh * wo, src + (size_t)oh * Wp, wo);
                } else {
                    for (int oh = 0; oh < ho; oh++)
                        for (int ow = 0; ow < wo; ow++)
                            dst[(size_t)oh * wo + ow] = src[(size_t)oh * s * Wp + (size_t)ow * s];
                }
            }
}

#ifdef __AVX512F__
/* col2im for stride 1 as a gather: each 16-wide piece of a dx row sums its
 * k*k contributions from dcol in a register, then dx is updated once. (The
 * scatter form below adds k*k overlapping, shifted rows into memory, and on
 * 7-wide rows its store-to-load forwarding stalls made it cost half as much
 * as the sgemm.) Lanes whose output column falls outside [0, Wout) are
 * masked off; the pointer of a masked load may then start a few floats
 * before a dcol row or end past it, which the slack around ws->dcol keeps
 * inside the allocation. */
static void col2im_add_s1(const struct rn_conv2d_cpu_geom *g, const float *dcol, float *dx)
{
    const int k = g->k, p = g->pad, H = g->h, W = g->w, ho = g->hout, wo = g->wout;
    const size_t P = (size_t)ho * wo;
    for (int ci = 0; ci < g->cin; ci++) {
        const float *dc = dcol + (size_t)ci * k * k * P;
        for (int ih = 0; ih < H; ih++) {
            float *dst = dx + ((size_t)ci * H + ih) * W;
            for (int iw0 = 0; iw0 < W; iw0 += 16) {
                const int nl = W - iw0 < 16 ? W - iw0 : 16;
                __m512 acc = _mm512_setzero_ps();
                for (int kh = 0; kh < k; kh++) {
                    const int oh = ih + p - kh;
                    if (oh < 0 || oh >= ho)
                        continue;
                    for (int kw = 0; kw < k; kw++) {
                        const int ow0 = iw0 + p - kw; /* output column of lane 0 */
                        const int jlo = ow0 < 0 ? -ow0 : 0;
                        const int jhi = wo - ow0 < nl ? wo - ow0 : nl;
                        if (jlo >= jhi)
                            continue;
                        const __mmask16 m = (__mmask16)(((1u << jhi) - 1) & ~((1u << jlo) - 1));
                        const float *src = dc + (size_t)(kh * k + kw) * P + (size_t)oh * wo + ow0;
                        acc = _mm512_add_ps(acc, _mm512_maskz_loadu_ps(m, src));
                    }
                }
                const __mmask16 mo = (__mmask16)((1u << nl) - 1);
                __m512 old = _mm512_maskz_loadu_ps(mo, dst + iw0);
                _mm512_mask_storeu_ps(dst + iw0, mo, _mm512_add_ps(old, acc));
            }
        }
    }
}
#endif

/* dx (Cin, H, W) += col2im(dcol (Cin*k*k, Hout*Wout)) for one image, summed
 * in the padded scratch dxp (Cin, Hp, Wp) when pad > 0. */
static void col2im_add(const struct rn_conv2d_cpu_geom *g, const float *dcol, float *dx, float *dxp)
{
    const int k = g->k, s = g->stride, p = g->pad, H = g->h, W = g->w;
    const int Hp = padded_h(g), Wp = padded_w(g), ho = g->hout, wo = g->wout;
#ifdef __AVX512F__
    if (s == 1) {
        col2im_add_s1(g, dcol, dx);
        return;
    }
#endif
    float *acc = dx;
    if (p > 0) {
        memset(dxp, 0, (size_t)g->cin * Hp * Wp * sizeof(float));
        acc = dxp;
    }
    for (int ci = 0; ci < g->cin; ci++)
        for (int kh = 0; kh < k; kh++)
            for (int kw = 0; kw < k; kw++) {
                const float *src = dcol + ((size_t)(ci * k + kh) * k + kw) * ho * wo;
                float *dst = acc + ((size_t)ci * Hp + kh) * Wp + kw;
                if (s == 1) {
                    for (int oh = 0; oh < ho; oh++)
                        add_row(dst + (size_t)oh * Wp, src + (size_t)oh * wo, wo);
                } else {
                    for (int oh = 0; oh < ho; oh++)
                        for (int ow = 0; ow < wo; ow++)
                            dst[(size_t)oh * s * Wp + (size_t)ow * s] += src[(size_t)oh * wo + ow];
                }
            }
    if (p > 0)
        for (int ci = 0; ci < g->cin; ci++)
            for (int ih = 0; ih < H; ih++)
                add_row(dx + ((size_t)ci * H + ih) * W, dxp + ((size_t)ci * Hp + ih + p) * Wp + p,
                        W);
}

int rn_conv2d_forward_cpu(const struct rn_conv2d_cpu_geom *g, const float *x, const float *w,
                          const float *bias, float *y, struct rn_conv2d_cpu_ws *ws,
                          struct rn_error *err)
{
#ifdef RN_HAVE_ONEDNN
    if (ws->onednn)
        return rn_conv2d_onednn_forward(ws->onednn, g, x, w, bias, y, ws->keep_input, ws->fuse_relu,
                                        err);
#endif
    const int n = g->n, cout = g->cout;
    const int kk = g->cin * g->k * g->k, P = g->hout * g->wout;
    const size_t x_img = (size_t)g->cin * g->h * g->w, y_img = (size_t)cout * P;
    const int direct = is_pointwise(g);
    /* With im2col the bias rides in the sgemm: wb = [w | bias] (Cout, K+1)
     * against col's constant last row of ones. That saves filling y with the
     * bias and reading it back, 12% of conv1's forward. */
    const float *a = w;
    int ka = kk;
    if (bias && !direct) {
        for (int co = 0; co < cout; co++) {
            memcpy(ws->wb + (size_t)co * (kk + 1), w + (size_t)co * kk, (size_t)kk * sizeof(float));
            ws->wb[(size_t)co * (kk + 1) + kk] = bias[co];
        }
        a = ws->wb;
        ka = kk + 1;
    }
    /* Images are independent, so dynamic scheduling costs no determinism and
     * keeps both cores busy when another process takes one for a while. */
#pragma omp parallel for schedule(dynamic, 1) num_threads(ws->n_threads)
    for (int i = 0; i < n; i++) {
        const float *xi = x + i * x_img;
        float *yi = y + i * y_img;
        if (direct) {
            float beta = 0.0f;
            if (bias) {
                for (int co = 0; co < cout; co++) {
                    float b = bias[co], *row = yi + (size_t)co * P;
                    for (int q = 0; q < P; q++)
                        row[q] = b;
                }
                beta = 1.0f;
            }
            rn_gemm_cpu(0, 0, cout, P, kk, 1.0f, w, kk, xi, P, beta, yi, P);
        } else {
            const size_t t = (size_t)omp_get_thread_num();
            float *col = ws->col + t * ws->col_len;
            im2col(g, pad_image(g, xi, g->pad ? ws->pad + t * ws->pad_len : NULL), col);
            rn_gemm_cpu(0, 0, cout, P, ka, 1.0f, a, ka, col, P, 0.0f, yi, P);
        }
        if (ws->fuse_relu)
            for (size_t q = 0; q < y_img; q++)
                yi[q] = yi[q] < 0.0f ? 0.0f : yi[q];
    }
    return 0;
}

int rn_conv2d_backward_cpu(const struct rn_conv2d_cpu_geom *g, const float *x, const float *w,
                           const float *dy, float *dx, float *dw, float *db,
                           struct rn_conv2d_cpu_ws *ws, struct rn_error *err)
{
#ifdef RN_HAVE_ONEDNN
    if (ws->onednn)
        return rn_conv2d_onednn_backward(ws->onednn, g, x, w, dy, dx, ws->assign_dx, dw, db, err);
#endif
    const int n = g->n, cout = g->cout;
    const int kk = g->cin * g->k * g->k, P = g->hout * g->wout;
    const size_t x_img = (size_t)g->cin * g->h * g->w, y_img = (size_t)cout * P;
    const size_t dw_len = round16((size_t)cout * kk), db_len = round16((size_t)cout);
    const int direct = is_pointwise(g);
    if ((!dx && !dw && !db) || n <= 0)
        return 0;
    /* The batch is cut into a fixed number of image chunks, each summing its
     * dw/db into its own partial; the partials are added in chunk order. So
     * the result is the same bits for any thread count or scheduling, and a
     * thread that gets descheduled on a shared machine just takes fewer
     * chunks. */
    const int n_chunks = n < RN_CONV2D_CPU_CHUNKS ? n : RN_CONV2D_CPU_CHUNKS;
#pragma omp parallel num_threads(ws->n_threads)
    {
        const int t = omp_get_thread_num(), T = omp_get_num_threads();
        float *col = direct ? NULL : ws->col + t * ws->col_len;
        float *dcol = direct ? NULL : ws->dcol + t * ws->col_len;
        float *pad = g->pad ? ws->pad + (size_t)t * ws->pad_len : NULL;
        float *dpad = g->pad ? ws->dpad + (size_t)t * ws->pad_len : NULL;
#pragma omp for schedule(dynamic, 1)
        for (int c = 0; c < n_chunks; c++) {
            float *dwc = ws->dw + c * dw_len, *dbc = ws->db + c * db_len;
            const int lo = (int)((long)n * c / n_chunks), hi = (int)((long)n * (c + 1) / n_chunks);
            for (int i = lo; i < hi; i++) {
                const float *dyi = dy + i * y_img;
                if (dw) {
                    const float *xc = x + i * x_img;
                    if (!direct) {
                        im2col(g, pad_image(g, xc, pad), col);
                        xc = col;
                    }
                    rn_gemm_cpu(0, 1, cout, kk, P, 1.0f, dyi, P, xc, P, i == lo ? 0.0f : 1.0f, dwc,
                                kk);
                }
                if (db) {
                    for (int co = 0; co < cout; co++) {
                        const float s = row_sum(dyi + (size_t)co * P, P);
                        dbc[co] = (i == lo ? 0.0f : dbc[co]) + s;
                    }
                }
                if (dx) {
                    float *dxi = dx + i * x_img;
                    if (ws->assign_dx)
                        memset(dxi, 0, sizeof(float) * x_img);
                    if (direct) {
                        rn_gemm_cpu(1, 0, kk, P, cout, 1.0f, w, kk, dyi, P, 1.0f, dxi, P);
                    } else {
                        rn_gemm_cpu(1, 0, kk, P, cout, 1.0f, w, kk, dyi, P, 0.0f, dcol, P);
                        col2im_add(g, dcol, dxi, dpad);
                    }
                }
            }
        }
        /* After the for's implicit barrier, each thread sums a slice of the
         * partials into chunk 0's (vectorisable loops, fixed order). */
        if (dw) {
            const size_t len = (size_t)cout * kk;
            const size_t a = len * t / T, b = len * (t + 1) / T;
            float *acc = ws->dw;
            for (int c = 1; c < n_chunks; c++) {
                const float *part = ws->dw + c * dw_len;
                for (size_t e = a; e < b; e++)
                    acc[e] += part[e];
            }
            for (size_t e = a; e < b; e++)
                dw[e] += acc[e];
        }
        if (db && t == T - 1) {
            for (int co = 0; co < cout; co++) {
                float s = 0.0f;
                for (int c = 0; c < n_chunks; c++)
                    s += ws->db[c * db_len + co];
                db[co] += s;
            }
        }
    }
    return 0;
}
