/* kernels/cpu/conv2d.h - 2D convolution on the CPU (PyTorch Conv2d semantics:
 * square kernel, same stride and zero padding on both axes, no dilation or
 * groups), forward and backward.
 *
 * Method: per image, im2col into a (Cin*k*k, Hout*Wout) buffer and one
 * single-threaded sgemm with the (Cout, Cin*k*k) weight, so the product lands
 * directly in the NCHW output with no scatter; the images of a batch are
 * spread over the OpenMP threads. On the target 2-core machine this beat one
 * whole-batch im2col + a 2-thread OpenBLAS sgemm + scatter (OpenBLAS splits
 * the 32..128 output channels and stays near one core's speed), and per-image
 * products of these shapes run at ~90-100% of a large sgemm's speed.
 * Backward recomputes im2col instead of keeping a whole-batch buffer from the
 * forward: the copy costs ~7% of the product, stays in L2 right before the
 * sgemm that reads it, and the layer keeps O(threads * Cin*k*k * Hout*Wout)
 * memory whatever the batch (so tangent mode needs no extra buffer either).
 * Results are bitwise the same for any number of threads.
 * A 1x1, stride-1, unpadded conv skips im2col (the input is its own col).
 * Measured numbers: bench/bench_conv.c.
 *
 * Kernel choice: when the build has oneDNN (RN_HAVE_ONEDNN, cmake
 * RUNNER_ONEDNN) the same functions run oneDNN's convolutions instead
 * (conv2d_onednn.c: blocked layouts, bias fused, primitives cached per
 * batch size), unless the workspace was made for the reference path:
 * RN_CONV2D_CPU_REF, or environment RN_CPU_CONV=ref with
 * RN_CONV2D_CPU_AUTO. The im2col + sgemm path above stays the reference
 * the tests compare oneDNN against, and the fallback without oneDNN.
 * oneDNN's results depend on its blocking (not on where a patch sits: equal
 * patches give equal outputs), and its weight gradient may change in the
 * last bits with the thread count.
 */
#ifndef RN_KERNELS_CPU_CONV2D_H
#define RN_KERNELS_CPU_CONV2D_H

#include "kernels/cpu/conv2d_geom.h"
#include "runner/error.h"

/* Backward sums the weight gradient over this many fixed image chunks, then
 * adds the chunks in order: the result does not depend on the thread count. */
#define RN_CONV2D_CPU_CHUNKS 8

/* Which implementation a workspace runs. */
enum rn_conv2d_cpu_impl {
    RN_CONV2D_CPU_AUTO,   /* RN_CPU_CONV=ref|onednn, else oneDNN when built with it */
    RN_CONV2D_CPU_REF,    /* im2col + OpenBLAS sgemm */
    RN_CONV2D_CPU_ONEDNN, /* oneDNN; an error when built without it */
};

struct rn_conv2d_onednn; /* conv2d_onednn.c's state */

/* Per-thread scratch, sized once for a geometry (any batch size). */
struct rn_conv2d_cpu_ws {
    struct rn_conv2d_onednn *onednn; /* owned; non-NULL: oneDNN runs, the buffers below are NULL */
    int n_threads;
    /* Set by the caller before a forward whose backward may follow
     * (training): the oneDNN path then keeps x in its own layout for the
     * weight gradient instead of reordering it again. Ignored by the
     * reference path. */
    int keep_input;
    /* Set by the caller before a forward whose output only a relu reads
     * (inference passes): y = max(conv, 0) in the same pass (oneDNN: a relu
     * post-op; the reference: after each image's sgemm). Values as conv then
     * the relu layer (a negative output may come back as -0.0f). */
    int fuse_relu;
    /* Set by the caller before a backward whose dx holds no value yet (the
     * layer's ctx->dx_assign): dx = conv_transpose(dy, w) is written, not
     * added (oneDNN: straight into dx or through a plain reorder; the
     * reference zeroes each image's dx first). */
    int assign_dx;
    size_t col_len; /* (Cin*k*k + 1) * Hout*Wout floats per thread, rounded up */
    float *col; /* (n_threads, Cin*k*k + 1, Hout*Wout), last row ones; NULL for the 1x1 fast path */
    float *dcol;    /* (n_threads, Cin*k*k, Hout*Wout); NULL for the 1x1 fast path */
    float *wb;      /* (Cout, Cin*k*k + 1): weight with the bias as last column; NULL for 1x1 */
    size_t pad_len; /* Cin * (H + 2*pad) * (W + 2*pad) floats per thread */
    float *
        pad; /* (n_threads, Cin, H + 2*pad, W + 2*pad) zero-bordered input copy; NULL if pad == 0 */
    float *dpad; /* same shape, the input gradient before cropping; NULL if pad == 0 */
    float *dw;   /* (RN_CONV2D_CPU_CHUNKS, Cout, Cin*k*k) partial weight gradients */
    float *db;   /* (RN_CONV2D_CPU_CHUNKS, Cout) partial bias gradients */
};

/* Fills hout/wout; returns -1 with a message if the output would be empty. */
int rn_conv2d_cpu_geom_init(struct rn_conv2d_cpu_geom *g, int cin, int h, int w, int cout, int k,
                            int stride, int pad, struct rn_error *err);

/* Allocates scratch for geometry g and n_threads threads (<= 0: OpenMP's
 * max), for the implementation RN_CONV2D_CPU_AUTO picks. Also makes
 * OpenBLAS single-threaded (see gemm.h). */
int rn_conv2d_cpu_ws_init(struct rn_conv2d_cpu_ws *ws, const struct rn_conv2d_cpu_geom *g,
                          int n_threads, struct rn_error *err);
/* The same for a given implementation. Errors: RN_CONV2D_CPU_ONEDNN (or
 * RN_CPU_CONV=onednn) in a build without oneDNN, an unknown RN_CPU_CONV
 * value, oneDNN failing to start. RN_ONEDNN_FORMAT=plain makes oneDNN keep
 * NCHW/OIHW layouts instead of choosing blocked ones. */
int rn_conv2d_cpu_ws_init_impl(struct rn_conv2d_cpu_ws *ws, const struct rn_conv2d_cpu_geom *g,
                               int n_threads, enum rn_conv2d_cpu_impl impl, struct rn_error *err);
/* 1 when this build has oneDNN. */
int rn_conv2d_cpu_have_onednn(void);
/* "ref", or "onednn:" and oneDNN's implementation name once it ran. */
const char *rn_conv2d_cpu_impl_name(const struct rn_conv2d_cpu_ws *ws);
/* Frees the scratch; NULL and zeroed structs are fine. */
void rn_conv2d_cpu_ws_free(struct rn_conv2d_cpu_ws *ws);

/* y (N, Cout, Hout, Wout) = conv(x (N, Cin, H, W), w (Cout, Cin, k, k)) + bias (Cout),
 * bias may be NULL. Overwrites y. g->n is the batch. Fails (-1, err) only
 * on the oneDNN path (out of memory, a primitive oneDNN cannot make). */
int rn_conv2d_forward_cpu(const struct rn_conv2d_cpu_geom *g, const float *x, const float *w,
                          const float *bias, float *y, struct rn_conv2d_cpu_ws *ws,
                          struct rn_error *err);

/* Given dy (N, Cout, Hout, Wout), ACCUMULATES
 *   dx (N, Cin, H, W)     += conv_transpose(dy, w)   (skipped if dx is NULL;
 *                                                     = when ws->assign_dx)
 *   dw (Cout, Cin, k, k)  += dy (*) x                (skipped if dw is NULL)
 *   db (Cout)             += sum of dy per channel   (skipped if db is NULL).
 * x is only read when dw is non-NULL; w only when dx is non-NULL. Fails
 * as the forward does. */
int rn_conv2d_backward_cpu(const struct rn_conv2d_cpu_geom *g, const float *x, const float *w,
                           const float *dy, float *dx, float *dw, float *db,
                           struct rn_conv2d_cpu_ws *ws, struct rn_error *err);

#endif
