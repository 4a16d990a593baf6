#include "error.h"

#include <limits.h>
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

/* ---- did you mean --------------------------------------------------------- */

static int edit_distance(const char *a, const char *b)
{
    int la = (int)strlen(a), lb = (int)strlen(b);
    if (la > 63 || lb > 63)
        return INT_MAX;
    int prev[64], cur[64];
    for (int j = 0; j <= lb; j++)
        prev[j] = j;
    for (int i = 1; i <= la; i++) {
        cur[0] = i;
        for (int j = 1; j <= lb; j++) {
            int sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            int del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, sizeof(int) * (size_t)(lb + 1));
    }
    return prev[lb];
}

const char *rn_nearest(const char *word, const char *const *candidates, int n)
{
    int len = (int)strlen(word);
    int limit = len / 3 > 2 ? len / 3 : 2;
    const char *best = NULL;
    int best_d = INT_MAX;
    for (int i = 0; i < n; i++) {
        int d = edit_distance(word, candidates[i]);
        if (d <= limit && d < best_d) {
            best = candidates[i];
            best_d = d;
        }
    }
    return best;
}

int rn_fault(const char *site)
{
    static long calls;
    const char *spec = getenv("RN_FAULT_INJECT");
    size_t len = strlen(site);
    if (!spec || strncmp(spec, site, len) != 0 || spec[len] != ':')
        return 0;
    return ++calls >= atol(spec + len + 1);
}
