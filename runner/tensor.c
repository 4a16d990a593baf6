/* tensor.c - tensors on top of the backends' memory interface (backend.h):
 * every allocation, copy, zeroing and free goes through the backend of the
 * tensor's device, the host's (kernels/cpu/backend_cpu.c) included. */
#include "tensor.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

double rn_mem_limit(void)
{
    const char *env = getenv("RN_MEM_LIMIT_MB");
    if (env && atof(env) > 0)
        return atof(env) * 1048576.0;
    static double phys; /* the machine's memory does not change while we run */
    if (phys == 0) {
        long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
        phys = pages > 0 && page > 0 ? (double)pages * (double)page : 1e300;
    }
    return phys;
}

const char *rn_mem_str(double bytes, char *buf)
{
    if (bytes >= 1073741824.0)
        snprintf(buf, 32, "%.2f GiB", bytes / 1073741824.0);
    else
        snprintf(buf, 32, "%.1f MiB", bytes / 1048576.0);
    return buf;
}

int rn_tensor_init(struct rn_tensor *t, int n, int c, int h, int w, struct rn_error *err)
{
    return rn_tensor_init_on(t, RN_DEVICE_CPU, n, c, h, w, err);
}

int rn_tensor_init_on(struct rn_tensor *t, enum rn_device d, int n, int c, int h, int w,
                      struct rn_error *err)
{
    memset(t, 0, sizeof *t);
    const struct rn_backend *be = rn_backend_of(d);
    if (!be)
        return rn_errorf(err, "no backend for device %d", (int)d);
    if (n < 0 || c < 0 || h < 0 || w < 0)
        return rn_errorf(err, "tensor shape (%d, %d, %d, %d) has a negative dim", n, c, h, w);
    double bytes = (double)n * c * h * w * sizeof(float), limit = rn_mem_limit();
    if (d == RN_DEVICE_CPU && bytes > limit) {
        char b1[32], b2[32];
        return rn_errorf(err,
                         "a (%d, %d, %d, %d) tensor needs %s, more than the %s of memory "
                         "this machine has",
                         n, c, h, w, rn_mem_str(bytes, b1), rn_mem_str(limit, b2));
    }
    size_t numel = (size_t)n * c * h * w;
    void *p = NULL;
    if (be->alloc(&p, (numel ? numel : 1) * sizeof(float), err))
        return rn_error_prefix(err, "a (%d, %d, %d, %d) tensor on %s", n, c, h, w, be->name);
    t->data = p;
    t->n = n;
    t->c = c;
    t->h = h;
    t->w = w;
    t->cap = numel;
    t->owned = 1;
    t->device = d;
    return 0;
}

void rn_tensor_free(struct rn_tensor *t)
{
    if (!t)
        return;
    if (t->owned) {
        const struct rn_backend *be = rn_backend_of((enum rn_device)t->device);
        if (be)
            be->release(t->data);
    }
    memset(t, 0, sizeof *t);
}

struct rn_tensor rn_tensor_view(float *data, int n, int c, int h, int w)
{
    struct rn_tensor t = {data, n, c, h, w, (size_t)n * c * h * w, 0, RN_DEVICE_CPU};
    return t;
}

int rn_tensor_zero(struct rn_tensor *t, struct rn_error *err)
{
    if (!t->data)
        return 0;
    const struct rn_backend *be = rn_backend_of((enum rn_device)t->device);
    if (!be)
        return rn_errorf(err, "no backend for device %d", t->device);
    return be->zero(t->data, rn_tensor_numel(t) * sizeof(float), err);
}

int rn_tensor_copy(struct rn_tensor *dst, const struct rn_tensor *src, struct rn_error *err)
{
    size_t bytes = rn_tensor_numel(src) * sizeof(float);
    if (rn_tensor_numel(src) > dst->cap)
        return rn_errorf(err, "copy of %zu floats into a tensor holding %zu", rn_tensor_numel(src),
                         dst->cap);
    if (!bytes)
        return 0;
    const int up = src->device == RN_DEVICE_CPU, down = dst->device == RN_DEVICE_CPU;
    /* host <-> device goes through the device's backend */
    const struct rn_backend *be = rn_backend_of((enum rn_device)(up ? dst->device : src->device));
    if (!be)
        return rn_errorf(err, "no backend for device %d", up ? dst->device : src->device);
    if (up && !down)
        return be->upload(dst->data, src->data, bytes, err);
    if (down && !up)
        return be->download(dst->data, src->data, bytes, err);
    return be->copy(dst->data, src->data, bytes, err);
}

int rn_tensor_nonfinite(const struct rn_tensor *t)
{
    /* the largest magnitude bit pattern: one integer max per value, which
     * vectorises (a float compare with NaNs would not) */
    const float *x = t->data;
    const size_t n = rn_tensor_numel(t);
    uint32_t hi = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t b;
        memcpy(&b, x + i, sizeof b);
        b &= 0x7fffffffu;
        hi = b > hi ? b : hi;
    }
    return hi < 0x7f800000u ? 0 : hi > 0x7f800000u ? 'N' : 'I';
}
