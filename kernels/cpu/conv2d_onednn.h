/* kernels/cpu/conv2d_onednn.h - the oneDNN implementation of the CPU
 * convolution (conv2d.h), used by conv2d.c when the build has oneDNN
 * (RN_HAVE_ONEDNN) and the kernel choice asks for it; only conv2d.c
 * includes this header.
 *
 * Same contract as rn_conv2d_forward_cpu / rn_conv2d_backward_cpu: NCHW
 * activations, OIHW weights, forward overwrites y, backward accumulates
 * into dx, dw, db. Inside, oneDNN's primitives (forward with the bias
 * fused, backward data, backward weights + bias) are created once per batch
 * size and kept (a few batch sizes at a time). The layouts are either
 * oneDNN's own choice (format_tag_any: blocked nChw16c / OIhw16i16o on
 * AVX-512, with reorders of the plain tensors per call) or the plain NCHW
 * ones (RN_ONEDNN_FORMAT=plain). The accumulation into dx and dw rides in
 * the reorder out of the primitive's layout (a sum post-op), so no extra
 * pass over the gradient.
 *
 * Scratch for the reordered tensors is one process-wide set of buffers
 * (grown to the largest layer, freed with the last convolution), guarded by
 * a mutex: one convolution runs at a time in a process, each using every
 * OpenMP thread (oneDNN runs on the same libgomp pool as the runner, so
 * omp_set_num_threads governs both).
 */
#ifndef RN_KERNELS_CPU_CONV2D_ONEDNN_H
#define RN_KERNELS_CPU_CONV2D_ONEDNN_H

#include "kernels/cpu/conv2d_geom.h"
#include "runner/error.h"

struct rn_conv2d_onednn;

/* State for geometry g (g->n is ignored: primitives are made per batch
 * size on first use). plain != 0 keeps NCHW/OIHW layouts inside oneDNN. */
int rn_conv2d_onednn_create(struct rn_conv2d_onednn **out, const struct rn_conv2d_cpu_geom *g,
                            int plain, struct rn_error *err);
/* NULL is fine. */
void rn_conv2d_onednn_free(struct rn_conv2d_onednn *o);

/* keep != 0: x in the primitive's layout is kept (per layer, not in the
 * shared scratch) for a backward on the same x pointer and batch size; any
 * later forward replaces or drops it. relu != 0: y = max(conv, 0), the relu
 * a post-op of an inference primitive (made on first use). */
int rn_conv2d_onednn_forward(struct rn_conv2d_onednn *o, const struct rn_conv2d_cpu_geom *g,
                             const float *x, const float *w, const float *bias, float *y, int keep,
                             int relu, struct rn_error *err);
int rn_conv2d_onednn_backward(struct rn_conv2d_onednn *o, const struct rn_conv2d_cpu_geom *g,
                              const float *x, const float *w, const float *dy, float *dx,
                              int assign_dx, float *dw, float *db, struct rn_error *err);

/* oneDNN's name for the forward implementation it chose at the last batch
 * size used (e.g. "brg:avx512_core"), "" before the first call. */
const char *rn_conv2d_onednn_impl(const struct rn_conv2d_onednn *o);

#endif
