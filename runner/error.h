/* error.h - how library code reports failure.
 *
 * Library functions never exit or abort. A function that can fail returns
 * int: 0 on success, -1 on failure, and fills a caller-provided
 * struct rn_error with one line (no trailing newline) saying what went wrong,
 * where (file:line:col when known) and what to do. Only main() turns an error
 * into an exit status.
 */
#ifndef RN_ERROR_H
#define RN_ERROR_H

#include <stddef.h>

#define RN_ERROR_MAX 1024

struct rn_error {
    char msg[RN_ERROR_MAX];
};

/* Formats msg into err (err may be NULL) and returns -1, so callers can write
 * `return rn_errorf(err, "...", ...);`. */
int rn_errorf(struct rn_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prepends "prefix: " to the message already in err; returns -1. */
int rn_error_prefix(struct rn_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Allocation helpers that report failure through err instead of aborting. */
void *rn_malloc(size_t size, struct rn_error *err);
void *rn_calloc(size_t n, size_t size, struct rn_error *err);
char *rn_strdup(const char *s, struct rn_error *err);

/* Fault injection, for tests: with RN_FAULT_INJECT="site:N" in the
 * environment, the Nth call of rn_fault(site) in this process (1-based) and
 * every later one return 1 (a full disk stays full); otherwise 0. Cheap when
 * the variable is unset. Sites: "h5write" (every HDF5 dataset or attribute
 * write and flush of results.h, so run.h5 and checkpoint.h5). */
int rn_fault(const char *site);

/* Edit distance helper for did-you-mean: returns the candidate closest to
 * word (distance <= max(2, strlen/3)) or NULL. */
const char *rn_nearest(const char *word, const char *const *candidates, int n);

#endif
