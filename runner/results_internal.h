/* results_internal.h - what results.c and results_data.c share; not for
 * other modules (they use results.h).
 *
 * The names below are global only within the runner library (nothing else
 * declares them). No results.h here: results.c includes this header, and
 * results.c and results.h are one node for scripts/check-includes.sh, so
 * that include would be an include cycle; nothing below needs it.
 */
#ifndef RN_RESULTS_INTERNAL_H
#define RN_RESULTS_INTERNAL_H

#include <stddef.h>

#include <hdf5.h>

#include "error.h"
#include "paths.h"

struct rn_results {
    hid_t file;
    int writable;
    char path[RN_PATH_MAX];
};

/* ---- errors ------------------------------------------------------------ */

/* Called right after a failed HDF5 call (before any other HDF5 call clears
 * the error stack). call is the stringified expression; we keep the name of
 * the H5 function in it. file:line (file's directory dropped) ends the
 * message. Returns -1. */
int h5_fail(const struct rn_results *r, struct rn_error *err, const char *call, const char *obj,
            const char *file, int line);

/* Runs an HDF5 call returning hid_t or herr_t; negative means failure. Needs
 * r and err in scope and a fail: label. */
#define H5TRY(expr, obj)                                                                           \
    do {                                                                                           \
        if ((expr) < 0) {                                                                          \
            h5_fail(r, err, #expr, (obj), __FILE__, __LINE__);                                     \
            goto fail;                                                                             \
        }                                                                                          \
    } while (0)

/* A write that RN_FAULT_INJECT=h5write:N makes fail (error.h): as H5TRY
 * with the message a full disk gives. */
#define H5FAULT(obj)                                                                               \
    do {                                                                                           \
        if (rn_fault("h5write")) {                                                                 \
            rn_errorf(err, "%s: writing %s: No space left on device (RN_FAULT_INJECT)", r->path,   \
                      (obj));                                                                      \
            goto fail;                                                                             \
        }                                                                                          \
    } while (0)

/* Closes any HDF5 id by its type; a negative id is ignored. */
void close_obj(hid_t id);

/* ---- paths and types --------------------------------------------------- */

/* Each returns 0, or -1 with err naming the file and path: path must be
 * absolute and fit RN_PATH_MAX; the file must be open for writing; path must
 * exist; every existing parent of path must be a group. */
int check_path(const struct rn_results *r, const char *path, struct rn_error *err);
int need_writable(const struct rn_results *r, const char *path, struct rn_error *err);
int need_exists(struct rn_results *r, const char *path, struct rn_error *err);
int need_group_parents(struct rn_results *r, const char *path, struct rn_error *err);

/* Describes a stored type ("int32", "float64", "string", ...) for errors. */
void describe_type(hid_t t, char *buf, size_t n);

/* Link-creation property list that creates missing parent groups. */
hid_t make_lcpl(void);

#endif
