/* results_data.c - the run's HDF5 file (results.h): metrics, listing and
 * dense arrays. The errors, the paths, the files and the attributes are in
 * results.c; H5TRY and the helpers both share are results_internal.h's.
 */
#include "results.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hdf5.h>

#include "results_internal.h"

#define METRIC_CHUNK_ROWS 512

/* ---- types ------------------------------------------------------------- */

static hid_t file_type(enum rn_dtype t)
{
    switch (t) {
    case RN_DTYPE_F32:
        return H5T_IEEE_F32LE;
    case RN_DTYPE_F64:
        return H5T_IEEE_F64LE;
    case RN_DTYPE_I32:
        return H5T_STD_I32LE;
    case RN_DTYPE_I64:
        return H5T_STD_I64LE;
    case RN_DTYPE_U8:
        return H5T_STD_U8LE;
    }
    return -1;
}

static hid_t mem_type(enum rn_dtype t)
{
    switch (t) {
    case RN_DTYPE_F32:
        return H5T_NATIVE_FLOAT;
    case RN_DTYPE_F64:
        return H5T_NATIVE_DOUBLE;
    case RN_DTYPE_I32:
        return H5T_NATIVE_INT32;
    case RN_DTYPE_I64:
        return H5T_NATIVE_INT64;
    case RN_DTYPE_U8:
        return H5T_NATIVE_UINT8;
    }
    return -1;
}

static size_t dtype_size(enum rn_dtype t)
{
    switch (t) {
    case RN_DTYPE_F32:
        return 4;
    case RN_DTYPE_F64:
        return 8;
    case RN_DTYPE_I32:
        return 4;
    case RN_DTYPE_I64:
        return 8;
    case RN_DTYPE_U8:
        return 1;
    }
    return 0;
}

static const char *dtype_name(enum rn_dtype t)
{
    switch (t) {
    case RN_DTYPE_F32:
        return "float32";
    case RN_DTYPE_F64:
        return "float64";
    case RN_DTYPE_I32:
        return "int32";
    case RN_DTYPE_I64:
        return "int64";
    case RN_DTYPE_U8:
        return "uint8";
    }
    return "?";
}

static int type_matches(hid_t t, enum rn_dtype want)
{
    H5T_class_t c = H5Tget_class(t);
    size_t size = H5Tget_size(t);
    switch (want) {
    case RN_DTYPE_F32:
        return c == H5T_FLOAT && size == 4;
    case RN_DTYPE_F64:
        return c == H5T_FLOAT && size == 8;
    case RN_DTYPE_I32:
        return c == H5T_INTEGER && size == 4 && H5Tget_sign(t) != H5T_SGN_NONE;
    case RN_DTYPE_I64:
        return c == H5T_INTEGER && size == 8 && H5Tget_sign(t) != H5T_SGN_NONE;
    case RN_DTYPE_U8:
        return c == H5T_INTEGER && size == 1 && H5Tget_sign(t) == H5T_SGN_NONE;
    }
    return 0;
}

/* ---- metrics ----------------------------------------------------------- */

static int metric_path(const struct rn_results *r, const char *name, char *buf,
                       struct rn_error *err)
{
    if (!name || !*name || name[0] == '/' || name[strlen(name) - 1] == '/')
        return rn_errorf(err, "%s: bad metric name '%s' (want e.g. \"train/loss\")", r->path,
                         name ? name : "(null)");
    if (snprintf(buf, RN_PATH_MAX, "/metrics/%s", name) >= RN_PATH_MAX)
        return rn_errorf(err, "%s: metric name too long", r->path);
    return 0;
}

int rn_results_append_metric(struct rn_results *r, const char *name, const double *x,
                             const double *value, int n, struct rn_error *err)
{
    char path[RN_PATH_MAX];
    hid_t d = -1, fs = -1, ms = -1, dcpl = -1, lcpl = -1;
    double *rows = NULL;
    if (metric_path(r, name, path, err) || need_writable(r, path, err))
        return -1;
    if (n < 0)
        return rn_errorf(err, "%s: %s: negative row count %d", r->path, path, n);

    if (rn_results_exists(r, path)) {
        H5TRY(d = H5Dopen2(r->file, path, H5P_DEFAULT), path);
    } else {
        if (need_group_parents(r, path, err))
            return -1;
        hsize_t dims[2] = {0, 2}, maxdims[2] = {H5S_UNLIMITED, 2};
        hsize_t chunk[2] = {METRIC_CHUNK_ROWS, 2};
        H5TRY(fs = H5Screate_simple(2, dims, maxdims), path);
        H5TRY(dcpl = H5Pcreate(H5P_DATASET_CREATE), path);
        H5TRY(H5Pset_chunk(dcpl, 2, chunk), path);
        H5TRY(lcpl = make_lcpl(), path);
        H5TRY(d = H5Dcreate2(r->file, path, H5T_IEEE_F64LE, fs, lcpl, dcpl, H5P_DEFAULT), path);
        H5Sclose(fs);
        H5Pclose(dcpl);
        H5Pclose(lcpl);
        fs = dcpl = lcpl = -1;
    }
    if (n == 0)
        goto done;

    hsize_t cur[2], maxd[2];
    H5TRY(fs = H5Dget_space(d), path);
    if (H5Sget_simple_extent_ndims(fs) != 2) {
        rn_errorf(err, "%s: %s: not a (k, 2) metric dataset", r->path, path);
        goto fail;
    }
    H5TRY(H5Sget_simple_extent_dims(fs, cur, maxd), path);
    if (cur[1] != 2 || maxd[0] != H5S_UNLIMITED) {
        rn_errorf(err, "%s: %s: not an extendible (k, 2) metric dataset", r->path, path);
        goto fail;
    }
    H5Sclose(fs);
    fs = -1;

    hsize_t newdims[2] = {cur[0] + (hsize_t)n, 2};
    H5TRY(H5Dset_extent(d, newdims), path);
    H5TRY(fs = H5Dget_space(d), path);
    hsize_t start[2] = {cur[0], 0}, count[2] = {(hsize_t)n, 2};
    H5TRY(H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL), path);
    H5TRY(ms = H5Screate_simple(2, count, NULL), path);
    if (!(rows = rn_malloc(sizeof *rows * 2 * (size_t)n, err)))
        goto fail;
    for (int i = 0; i < n; i++) {
        rows[2 * i] = x[i];
        rows[2 * i + 1] = value[i];
    }
    H5FAULT(path);
    H5TRY(H5Dwrite(d, H5T_NATIVE_DOUBLE, ms, fs, H5P_DEFAULT, rows), path);
done:
    free(rows);
    close_obj(ms);
    close_obj(fs);
    H5Dclose(d);
    return 0;
fail:
    free(rows);
    close_obj(ms);
    close_obj(fs);
    close_obj(dcpl);
    close_obj(lcpl);
    close_obj(d);
    return -1;
}

int rn_results_read_metric(struct rn_results *r, const char *name, double **x, double **value,
                           int *n, struct rn_error *err)
{
    char path[RN_PATH_MAX];
    double *rows = NULL;
    int ndim, dims[4];
    *x = *value = NULL;
    *n = 0;
    if (metric_path(r, name, path, err))
        return -1;
    if (rn_results_read(r, path, RN_DTYPE_F64, (void **)&rows, &ndim, dims, err))
        return -1;
    if (ndim != 2 || dims[1] != 2) {
        free(rows);
        return rn_errorf(err, "%s: %s: not a (k, 2) metric dataset", r->path, path);
    }
    int k = dims[0];
    double *xs = rn_malloc(sizeof *xs * (size_t)k, err);
    double *vs = xs ? rn_malloc(sizeof *vs * (size_t)k, err) : NULL;
    if (!vs) {
        free(xs);
        free(rows);
        return -1;
    }
    for (int i = 0; i < k; i++) {
        xs[i] = rows[2 * i];
        vs[i] = rows[2 * i + 1];
    }
    free(rows);
    *x = xs;
    *value = vs;
    *n = k;
    return 0;
}

/* ---- listing ----------------------------------------------------------- */

struct list_acc {
    hid_t group;
    char **names;
    int n, cap;
    int failed;
};

static herr_t list_cb(hid_t g, const char *name, const H5L_info_t *info, void *data)
{
    struct list_acc *acc = data;
    if (info->type != H5L_TYPE_HARD)
        return 0;
    hid_t o = H5Oopen(g, name, H5P_DEFAULT);
    if (o < 0)
        return -1;
    int is_dataset = H5Iget_type(o) == H5I_DATASET;
    H5Oclose(o);
    if (!is_dataset)
        return 0;
    if (acc->n == acc->cap) {
        int cap = acc->cap ? 2 * acc->cap : 16;
        char **p = realloc(acc->names, sizeof *p * (size_t)cap);
        if (!p) {
            acc->failed = 1;
            return -1;
        }
        acc->names = p;
        acc->cap = cap;
    }
    if (!(acc->names[acc->n] = strdup(name))) {
        acc->failed = 1;
        return -1;
    }
    acc->n++;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int rn_results_list(struct rn_results *r, const char *group, char ***names, int *n,
                    struct rn_error *err)
{
    struct list_acc acc = {-1, NULL, 0, 0, 0};
    hid_t g = -1;
    *names = NULL;
    *n = 0;
    if (check_path(r, group, err) || need_exists(r, group, err))
        return -1;
    H5TRY(g = H5Gopen2(r->file, group, H5P_DEFAULT), group);
    if (H5Lvisit(g, H5_INDEX_NAME, H5_ITER_INC, list_cb, &acc) < 0) {
        if (acc.failed)
            rn_errorf(err, "%s: %s: out of memory listing datasets", r->path, group);
        else
            h5_fail(r, err, "H5Lvisit", group, __FILE__, __LINE__);
        goto fail;
    }
    H5Gclose(g);
    if (acc.n > 1)
        qsort(acc.names, (size_t)acc.n, sizeof *acc.names, cmp_str);
    *names = acc.names;
    *n = acc.n;
    return 0;
fail:
    rn_results_free_list(acc.names, acc.n);
    close_obj(g);
    return -1;
}

void rn_results_free_list(char **names, int n)
{
    if (!names)
        return;
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* ---- dense arrays ------------------------------------------------------ */

/* 1 if the dataset at path has exactly this type and shape, so a write can
 * reuse it in place (the file does not grow each time a checkpoint is
 * rewritten; HDF5 never reclaims the space of a deleted dataset). */
static int same_layout(struct rn_results *r, const char *path, enum rn_dtype dtype, int ndim,
                       const hsize_t *dims)
{
    int same = 0;
    hid_t d = H5Dopen2(r->file, path, H5P_DEFAULT);
    if (d < 0)
        return 0;
    hid_t t = H5Dget_type(d), s = H5Dget_space(d);
    if (t >= 0 && s >= 0 && type_matches(t, dtype) && H5Sget_simple_extent_ndims(s) == ndim) {
        hsize_t cur[4], maxd[4];
        H5Sget_simple_extent_dims(s, cur, maxd);
        same = 1;
        for (int i = 0; i < ndim; i++)
            if (cur[i] != dims[i] || maxd[i] != dims[i])
                same = 0;
    }
    close_obj(s);
    close_obj(t);
    H5Dclose(d);
    return same;
}

int rn_results_write(struct rn_results *r, const char *path, enum rn_dtype dtype, const void *data,
                     int ndim, const int *dims, struct rn_error *err)
{
    hid_t d = -1, s = -1, lcpl = -1;
    hsize_t hd[4];
    if (check_path(r, path, err) || need_writable(r, path, err))
        return -1;
    if (ndim < 0 || ndim > 4)
        return rn_errorf(err, "%s: %s: rank %d not supported (0..4)", r->path, path, ndim);
    if (file_type(dtype) < 0)
        return rn_errorf(err, "%s: %s: unknown dtype %d", r->path, path, (int)dtype);
    for (int i = 0; i < ndim; i++) {
        if (!dims || dims[i] < 0)
            return rn_errorf(err, "%s: %s: bad dimension %d", r->path, path, i);
        hd[i] = (hsize_t)dims[i];
    }

    if (rn_results_exists(r, path)) {
        if (same_layout(r, path, dtype, ndim, hd)) {
            H5TRY(d = H5Dopen2(r->file, path, H5P_DEFAULT), path);
            goto write;
        }
        H5TRY(H5Ldelete(r->file, path, H5P_DEFAULT), path);
    } else if (need_group_parents(r, path, err)) {
        return -1;
    }
    if (ndim == 0)
        H5TRY(s = H5Screate(H5S_SCALAR), path);
    else
        H5TRY(s = H5Screate_simple(ndim, hd, NULL), path);
    H5TRY(lcpl = make_lcpl(), path);
    H5TRY(d = H5Dcreate2(r->file, path, file_type(dtype), s, lcpl, H5P_DEFAULT, H5P_DEFAULT), path);
    H5Sclose(s);
    H5Pclose(lcpl);
    s = lcpl = -1;
write:;
    size_t count = 1;
    for (int i = 0; i < ndim; i++)
        count *= hd[i];
    H5FAULT(path);
    if (count > 0)
        H5TRY(H5Dwrite(d, mem_type(dtype), H5S_ALL, H5S_ALL, H5P_DEFAULT, data), path);
    H5Dclose(d);
    return 0;
fail:
    close_obj(s);
    close_obj(lcpl);
    close_obj(d);
    return -1;
}

int rn_results_read(struct rn_results *r, const char *path, enum rn_dtype dtype, void **data,
                    int *ndim, int dims[4], struct rn_error *err)
{
    hid_t d = -1, t = -1, s = -1;
    void *buf = NULL;
    *data = NULL;
    *ndim = 0;
    if (check_path(r, path, err) || need_exists(r, path, err))
        return -1;
    if (file_type(dtype) < 0)
        return rn_errorf(err, "%s: %s: unknown dtype %d", r->path, path, (int)dtype);
    H5TRY(d = H5Dopen2(r->file, path, H5P_DEFAULT), path);
    H5TRY(t = H5Dget_type(d), path);
    if (!type_matches(t, dtype)) {
        char what[48];
        describe_type(t, what, sizeof what);
        rn_errorf(err, "%s: %s: dataset is %s, expected %s", r->path, path, what,
                  dtype_name(dtype));
        goto fail;
    }
    H5TRY(s = H5Dget_space(d), path);
    int nd;
    H5TRY(nd = H5Sget_simple_extent_ndims(s), path);
    if (nd > 4) {
        rn_errorf(err, "%s: %s: rank %d, at most 4 supported", r->path, path, nd);
        goto fail;
    }
    hsize_t hd[4] = {0};
    H5TRY(H5Sget_simple_extent_dims(s, hd, NULL), path);
    size_t count = 1;
    for (int i = 0; i < nd; i++) {
        if (hd[i] > (hsize_t)0x7fffffff) {
            rn_errorf(err, "%s: %s: dimension %d too large", r->path, path, i);
            goto fail;
        }
        count *= hd[i];
        dims[i] = (int)hd[i];
    }
    for (int i = nd; i < 4; i++)
        dims[i] = 0;
    if (!(buf = rn_malloc(count * dtype_size(dtype), err)))
        goto fail;
    if (count > 0)
        H5TRY(H5Dread(d, mem_type(dtype), H5S_ALL, H5S_ALL, H5P_DEFAULT, buf), path);
    H5Sclose(s);
    H5Tclose(t);
    H5Dclose(d);
    *data = buf;
    *ndim = nd;
    return 0;
fail:
    free(buf);
    close_obj(s);
    close_obj(t);
    close_obj(d);
    return -1;
}
