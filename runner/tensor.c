#include "tensor.h"

#include "backend.h"

#include <stdlib.h>
#include <string.h>

int rn_tensor_init(struct rn_tensor *t, int n, int c, int h, int w, struct rn_error *err)
{
    memset(t, 0, sizeof *t);
    if (n < 0 || c < 0 || h < 0 || w < 0)
        return rn_errorf(err, "tensor shape (%d, %d, %d, %d) has a negative dim", n, c, h, w);
    size_t numel = (size_t)n * c * h * w;
    /* 64-byte alignment for SIMD; the size rounds up to a multiple of it. */
    size_t bytes = (numel * sizeof(float) + 63) & ~(size_t)63;
    float *p = aligned_alloc(64, bytes ? bytes : 64);
    if (!p)
        return rn_errorf(err, "out of memory allocating a (%d, %d, %d, %d) tensor", n, c, h, w);
    memset(p, 0, bytes ? bytes : 64);
    t->data = p;
    t->n = n;
    t->c = c;
    t->h = h;
    t->w = w;
    t->cap = numel;
    t->owned = 1;
    return 0;
}

void rn_tensor_free(struct rn_tensor *t)
{
    if (!t)
        return;
    if (t->owned && t->device != RN_DEVICE_CPU) {
        const struct rn_backend *be = rn_backend_of(t->device);
        if (be)
            be->release(t->data);
    } else if (t->owned) {
        free(t->data);
    }
    memset(t, 0, sizeof *t);
}

struct rn_tensor rn_tensor_view(float *data, int n, int c, int h, int w)
{
    struct rn_tensor t = {data, n, c, h, w, (size_t)n * c * h * w, 0, 0};
    return t;
}

void rn_tensor_zero(struct rn_tensor *t)
{
    if (!t->data)
        return;
    if (t->device != RN_DEVICE_CPU) {
        const struct rn_backend *be = rn_backend_of(t->device);
        if (be)
            be->zero(t->data, rn_tensor_numel(t) * sizeof(float), NULL);
        return;
    }
    memset(t->data, 0, rn_tensor_numel(t) * sizeof(float));
}
