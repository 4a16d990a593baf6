/* tensor.h - float32 tensors, always four dims (N, C, H, W), contiguous.
 *
 * Vectors are (N, C, 1, 1); a conv weight is (O, I, kH, kW); a linear weight
 * is (out, in, 1, 1) in memory and saved as [out, in]. A tensor either owns its
 * data (rn_tensor_init*) or is a view on someone else's (owned == 0).
 * The batch dim n may be lowered below the allocated capacity for a smaller
 * last batch: numel() follows n, cap stays.
 *
 * A tensor lives on a device (backend.h): its memory is allocated, copied,
 * zeroed and freed through that device's backend, the host's included.
 */
#ifndef RN_TENSOR_H
#define RN_TENSOR_H

#include <stddef.h>

#include "backend.h"
#include "error.h"

struct rn_tensor {
    float *data;
    int n, c, h, w;
    size_t cap; /* allocated floats */
    int owned;  /* 1: rn_tensor_free frees data */
    int device; /* enum rn_device: 0 host memory, else device memory */
};

/* The memory a run may use, in bytes: the machine's physical memory
 * (sysconf), or RN_MEM_LIMIT_MB when that is set (tests, the fuzzer). A host
 * tensor larger than this is refused before it is allocated, and the graph
 * refuses a model whose parameters and activations add up to more (graph.h). */
double rn_mem_limit(void);
/* "512.0 MiB", "1.50 GiB": bytes for a message (buf of 32). */
const char *rn_mem_str(double bytes, char *buf);

/* Allocates n*c*h*w zeroed floats on the host (64-byte aligned). On failure
 * t is left empty. */
int rn_tensor_init(struct rn_tensor *t, int n, int c, int h, int w, struct rn_error *err);
/* The same on device d. */
int rn_tensor_init_on(struct rn_tensor *t, enum rn_device d, int n, int c, int h, int w,
                      struct rn_error *err);
/* Frees owned data and zeroes the struct; NULL and empty tensors are fine. */
void rn_tensor_free(struct rn_tensor *t);
/* A non-owning view of host data with the given shape. */
struct rn_tensor rn_tensor_view(float *data, int n, int c, int h, int w);

static inline size_t rn_tensor_numel(const struct rn_tensor *t)
{
    return (size_t)t->n * t->c * t->h * t->w;
}
/* Floats per sample (c*h*w). */
static inline size_t rn_tensor_sample(const struct rn_tensor *t)
{
    return (size_t)t->c * t->h * t->w;
}
/* Zeroes the first numel() floats, on any device; -1 (err may be NULL) only
 * when the device fails. */
int rn_tensor_zero(struct rn_tensor *t, struct rn_error *err);
/* Copies numel(src) floats between tensors of any devices (dst must hold
 * as many floats). */
int rn_tensor_copy(struct rn_tensor *dst, const struct rn_tensor *src, struct rn_error *err);
/* A host tensor's first numel() floats: 0 when all are finite, else 'N' (some
 * NaN) or 'I' (an Inf and no NaN). */
int rn_tensor_nonfinite(const struct rn_tensor *t);

#endif
