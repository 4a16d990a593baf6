#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int rn_errorf(struct rn_error *err, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int rn_error_prefix(struct rn_error *err, const char *fmt, ...)
{
    if (!err)
        return -1;
    char prefix[RN_ERROR_MAX], old[RN_ERROR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    snprintf(err->msg, sizeof err->msg, "%s: %s", prefix, old);
    return -1;
}

void *rn_malloc(size_t size, struct rn_error *err)
{
    void *p = malloc(size ? size : 1);
    if (!p)
        rn_errorf(err, "out of memory allocating %zu bytes", size);
    return p;
}

void *rn_calloc(size_t n, size_t size, struct rn_error *err)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        rn_errorf(err, "out of memory allocating %zu x %zu bytes", n, size);
    return p;
}

char *rn_strdup(const char *s, struct rn_error *err)
{
    size_t n = strlen(s) + 1;
    char *p = rn_malloc(n, err);
    if (p)
        memcpy(p, s, n);
    return p;
}
