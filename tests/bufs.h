/* tests/bufs.h - random and copied float buffers for kernel tests
 * (header-only: every function is static; include it from a Criterion test). */
#ifndef RN_TESTS_BUFS_H
#define RN_TESTS_BUFS_H

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "runner/rng.h"

/* n floats uniform in [-1, 1) from r; never NULL (one element for n = 0). */
static float *rand_buf(size_t n, struct rn_rng *r)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    cr_assert(p);
    for (size_t i = 0; i < n; i++)
        p[i] = 2.0f * rn_rng_uniform(r) - 1.0f;
    return p;
}

/* A fresh copy of a[0..n). */
static float *copy_buf(const float *a, size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    cr_assert(p);
    memcpy(p, a, n * sizeof *p);
    return p;
}

#endif
