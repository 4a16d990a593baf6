/* results.h - one HDF5 file per run (DESIGN.md "Results").
 *
 * Layout:
 *   /                      attrs: status ("running" | "completed" |
 *                                 "interrupted" | "failed"), format_version (1)
 *   /config                attrs: yaml (resolved spec text), seed (uint64),
 *                                 git_commit, device, versions, experiment, started, finished
 *   /metrics/<name>        float64 (k, 2) extendible: rows of [x, value]; x is the
 *                          global step for step metrics ("train/loss") and the
 *                          epoch for epoch metrics ("val/accuracy"); attr x_label
 *   /models/<model>/<key>  a state_dict: key "conv1.weight" is stored as dataset
 *                          "conv1.weight" (dots kept), float32 in PyTorch's
 *                          layout and rank; num_batches_tracked as int64 scalar
 *   /analyses/<name>/...   every tensor a figure is drawn from (float32, int32, uint8)
 *   /data/<split>/...      small descriptive tensors (sample images, colour statistics)
 *
 * Crash safety: rn_results_flush after every epoch; a SIGINT/SIGTERM sets a
 * flag the trainer checks, so the file is closed with status "interrupted".
 * All HDF5 calls are checked; errors name the call and the dataset path.
 */
#ifndef RN_RESULTS_H
#define RN_RESULTS_H

#include <stdint.h>

#include "error.h"

struct rn_results; /* opaque */

enum rn_dtype { RN_DTYPE_F32, RN_DTYPE_F64, RN_DTYPE_I32, RN_DTYPE_I64, RN_DTYPE_U8 };

/* Creates (truncates) path for writing; status "running". */
int rn_results_create(struct rn_results **r, const char *path, struct rn_error *err);
/* Opens an existing file read-only (for `runner plot`, `load:`). */
int rn_results_open(struct rn_results **r, const char *path, struct rn_error *err);
/* Opens an existing file for writing (a resumed run's run.h5). */
int rn_results_open_rw(struct rn_results **r, const char *path, struct rn_error *err);
/* Removes the link at path (a group with everything under it); a missing
 * path is fine. The space is not reclaimed. */
int rn_results_delete(struct rn_results *r, const char *path, struct rn_error *err);
/* Flushes and closes; NULL is fine. */
void rn_results_close(struct rn_results *r);
int rn_results_flush(struct rn_results *r, struct rn_error *err);

/* String attribute on a group or dataset ("/" or "/config"); groups are
 * created as needed. */
int rn_results_set_attr_str(struct rn_results *r, const char *obj, const char *name,
                            const char *value, struct rn_error *err);
int rn_results_set_attr_u64(struct rn_results *r, const char *obj, const char *name, uint64_t value,
                            struct rn_error *err);
/* Reads a string attribute into a malloc'd string (*out). */
int rn_results_get_attr_str(struct rn_results *r, const char *obj, const char *name, char **out,
                            struct rn_error *err);
int rn_results_get_attr_u64(struct rn_results *r, const char *obj, const char *name, uint64_t *out,
                            struct rn_error *err);

/* Appends rows [x, value] to /metrics/<name> (created on first use,
 * chunked, extendible). */
int rn_results_append_metric(struct rn_results *r, const char *name, const double *x,
                             const double *value, int n, struct rn_error *err);
/* Reads a whole metric: *n rows into malloc'd arrays x and value. */
int rn_results_read_metric(struct rn_results *r, const char *name, double **x, double **value,
                           int *n, struct rn_error *err);
/* Names of all metrics ("train/loss", ...), malloc'd array of malloc'd strings. */
int rn_results_list(struct rn_results *r, const char *group, char ***names, int *n,
                    struct rn_error *err);
void rn_results_free_list(char **names, int n);

/* Writes a dense array at path (groups created as needed, an existing dataset
 * replaced). ndim 0..4; dims may be NULL for a scalar. */
int rn_results_write(struct rn_results *r, const char *path, enum rn_dtype dtype, const void *data,
                     int ndim, const int *dims, struct rn_error *err);
/* Reads a dataset: its dtype must match; *data malloc'd, dims filled. */
int rn_results_read(struct rn_results *r, const char *path, enum rn_dtype dtype, void **data,
                    int *ndim, int dims[4], struct rn_error *err);
/* 1 if path exists (group or dataset), 0 if not. */
int rn_results_exists(struct rn_results *r, const char *path);

#endif
