/* results.c - the run's HDF5 file (results.h).
 *
 * Every HDF5 call goes through H5TRY, which on failure records the call, the
 * object path and the source line, plus HDF5's own innermost reason, as one
 * line in struct rn_error. HDF5's automatic printing of its error stack is
 * switched off: library code must not write to stderr.
 *
 * File locking: HDF5 >= 1.10 locks a file while it is open, so by default
 * nobody (h5py, `runner plot`) could open run.h5 while a run writes it. We
 * open with file locking off, writer and reader alike: h5py (which locks by
 * default) then opens a live run.h5 too, since no one holds a lock. After
 * rn_results_flush the file on disk is complete and consistent, so a reader
 * that opens it then sees every completed epoch; a reader racing a write may
 * see a half-written state, which cannot harm the writer (readers are
 * read-only). No SWMR: it would need H5F_LIBVER_LATEST, which old h5py
 * versions cannot read.
 *
 * Files are written with the default (oldest compatible) format so that any
 * h5py/HDF5 version reads them.
 *
 * This file holds the errors, the paths, the files and the attributes;
 * results_data.c the metrics, the listing and the dense arrays;
 * results_internal.h what the two share.
 */
#include "results.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <hdf5.h>

#include "results_internal.h"

/* ---- errors ------------------------------------------------------------ */

struct h5_reason {
    char top[160];   /* the API call's own message ("unable to open dataset") */
    char inner[160]; /* the innermost cause ("object 'x' doesn't exist") */
    int n;
};

static herr_t walk_cb(unsigned n, const H5E_error2_t *e, void *data)
{
    struct h5_reason *why = data;
    if (!e->desc)
        return 0;
    if (why->n == 0)
        snprintf(why->top, sizeof why->top, "%s", e->desc);
    snprintf(why->inner, sizeof why->inner, "%s", e->desc);
    why->n++;
    return 0;
}

int h5_fail(const struct rn_results *r, struct rn_error *err, const char *call, const char *obj,
            const char *file, int line)
{
    struct h5_reason why = {{0}, {0}, 0};
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, walk_cb, &why);

    char fn[64] = "HDF5 call";
    const char *p = strstr(call, "H5");
    if (p) {
        size_t k = strcspn(p, "( ");
        if (k >= sizeof fn)
            k = sizeof fn - 1;
        memcpy(fn, p, k);
        fn[k] = '\0';
    }
    char reason[340] = "";
    if (why.n > 1 && strcmp(why.top, why.inner) != 0)
        snprintf(reason, sizeof reason, ": %s (%s)", why.top, why.inner);
    else if (why.n > 0)
        snprintf(reason, sizeof reason, ": %s", why.top);
    const char *base = strrchr(file, '/');
    return rn_errorf(err, "%s: %s: %s failed%s [%s:%d]", r ? r->path : "?", obj ? obj : "/", fn,
                     reason, base ? base + 1 : file, line);
}

static void quiet_hdf5(void)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

void close_obj(hid_t id)
{
    if (id < 0)
        return;
    switch (H5Iget_type(id)) {
    case H5I_FILE:
        H5Fclose(id);
        break;
    case H5I_GROUP:
        H5Gclose(id);
        break;
    case H5I_DATASET:
        H5Dclose(id);
        break;
    case H5I_DATASPACE:
        H5Sclose(id);
        break;
    case H5I_DATATYPE:
        H5Tclose(id);
        break;
    case H5I_ATTR:
        H5Aclose(id);
        break;
    case H5I_GENPROP_LST:
        H5Pclose(id);
        break;
    default:
        H5Oclose(id);
        break;
    }
}

/* ---- paths and types --------------------------------------------------- */

int rn_results_exists(struct rn_results *r, const char *path)
{
    if (!r || !path || path[0] != '/')
        return 0;
    if (strcmp(path, "/") == 0)
        return 1;
    /* H5Lexists needs every intermediate link to exist, so walk the prefixes. */
    char buf[RN_PATH_MAX];
    size_t len = strlen(path);
    if (len >= sizeof buf)
        return 0;
    memcpy(buf, path, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        char saved = buf[i];
        buf[i] = '\0';
        htri_t e = H5Lexists(r->file, buf, H5P_DEFAULT);
        buf[i] = saved;
        if (e <= 0)
            return 0;
        if (saved == '\0')
            break;
    }
    return 1;
}

int check_path(const struct rn_results *r, const char *path, struct rn_error *err)
{
    if (!path || path[0] != '/')
        return rn_errorf(err, "%s: '%s': HDF5 paths must be absolute (start with '/')", r->path,
                         path ? path : "(null)");
    if (strlen(path) >= RN_PATH_MAX)
        return rn_errorf(err, "%s: path too long: %.64s...", r->path, path);
    return 0;
}

int need_writable(const struct rn_results *r, const char *path, struct rn_error *err)
{
    if (!r->writable)
        return rn_errorf(err, "%s: %s: file was opened read-only", r->path, path);
    return 0;
}

int need_exists(struct rn_results *r, const char *path, struct rn_error *err)
{
    if (!rn_results_exists(r, path))
        return rn_errorf(err, "%s: %s: no such group or dataset", r->path, path);
    return 0;
}

/* Before creating path: a parent that exists must be a group, else HDF5's
 * own message ("message type not found") does not say what is wrong. */
int need_group_parents(struct rn_results *r, const char *path, struct rn_error *err)
{
    char buf[RN_PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *s = strchr(buf + 1, '/'); s; s = strchr(s + 1, '/')) {
        *s = '\0';
        if (!rn_results_exists(r, buf))
            return 0;
        hid_t o = H5Oopen(r->file, buf, H5P_DEFAULT);
        int group = o >= 0 && H5Iget_type(o) == H5I_GROUP;
        if (o >= 0)
            H5Oclose(o);
        if (!group)
            return rn_errorf(err, "%s: %s: cannot create it: %s is a dataset, not a group", r->path,
                             path, buf);
        *s = '/';
    }
    return 0;
}

/* Describes a stored type ("int32", "float64", "string", ...) for errors. */
void describe_type(hid_t t, char *buf, size_t n)
{
    H5T_class_t c = H5Tget_class(t);
    size_t size = H5Tget_size(t);
    if (c == H5T_INTEGER)
        snprintf(buf, n, "%sint%zu", H5Tget_sign(t) == H5T_SGN_NONE ? "u" : "", size * 8);
    else if (c == H5T_FLOAT)
        snprintf(buf, n, "float%zu", size * 8);
    else if (c == H5T_STRING)
        snprintf(buf, n, "string");
    else
        snprintf(buf, n, "HDF5 type class %d", (int)c);
}

/* Link-creation property list that creates missing parent groups. */
hid_t make_lcpl(void)
{
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    if (lcpl >= 0 && H5Pset_create_intermediate_group(lcpl, 1) < 0) {
        H5Pclose(lcpl);
        return -1;
    }
    return lcpl;
}

/* Opens obj (group or dataset); a missing obj is created as a group when
 * create is set. */
static hid_t open_object(struct rn_results *r, const char *obj, int create, struct rn_error *err)
{
    hid_t id = -1, lcpl = -1;
    if (rn_results_exists(r, obj)) {
        H5TRY(id = H5Oopen(r->file, obj, H5P_DEFAULT), obj);
        return id;
    }
    if (!create) {
        need_exists(r, obj, err);
        return -1;
    }
    if (need_group_parents(r, obj, err))
        return -1;
    H5TRY(lcpl = make_lcpl(), obj);
    H5TRY(id = H5Gcreate2(r->file, obj, lcpl, H5P_DEFAULT, H5P_DEFAULT), obj);
    H5Pclose(lcpl);
    return id;
fail:
    close_obj(lcpl);
    return -1;
}

/* ---- files ------------------------------------------------------------- */

static hid_t make_fapl(void)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0)
        return -1;
        /* See the top of the file: readers may look at a run in progress. Older
         * HDF5 has no such call; HDF5_USE_FILE_LOCKING=FALSE does the same. */
#if H5_VERSION_GE(1, 10, 7)
    if (H5Pset_file_locking(fapl, 0, 1) < 0) {
        H5Pclose(fapl);
        return -1;
    }
#endif
    return fapl;
}

static int results_new(struct rn_results **out, const char *path, struct rn_error *err)
{
    *out = NULL;
    if (!path || !*path)
        return rn_errorf(err, "results: empty file name");
    if (strlen(path) >= RN_PATH_MAX)
        return rn_errorf(err, "results: file name too long: %.64s...", path);
    struct rn_results *r = rn_calloc(1, sizeof *r, err);
    if (!r)
        return -1;
    r->file = -1;
    snprintf(r->path, sizeof r->path, "%s", path);
    *out = r;
    quiet_hdf5();
    return 0;
}

int rn_results_create(struct rn_results **out, const char *path, struct rn_error *err)
{
    struct rn_results *r;
    hid_t fapl = -1;
    if (results_new(&r, path, err))
        return -1;
    r->writable = 1;
    H5TRY(fapl = make_fapl(), "/");
    H5TRY(r->file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl), "/");
    H5Pclose(fapl);
    fapl = -1;
    if (rn_results_set_attr_str(r, "/", "status", "running", err) ||
        rn_results_set_attr_u64(r, "/", "format_version", 1, err))
        goto fail;
    *out = r;
    return 0;
fail:
    close_obj(fapl);
    rn_results_close(r);
    return -1;
}

static int results_open(struct rn_results **out, const char *path, int writable,
                        struct rn_error *err)
{
    struct rn_results *r;
    hid_t fapl = -1;
    *out = NULL;
    struct stat st;
    if (stat(path, &st) != 0)
        return rn_errorf(err, "%s: cannot open: %s", path, strerror(errno));
    if (results_new(&r, path, err))
        return -1;
    H5TRY(fapl = make_fapl(), "/");
    r->writable = writable;
    r->file = H5Fopen(path, writable ? H5F_ACC_RDWR : H5F_ACC_RDONLY, fapl);
    if (r->file < 0) {
        struct h5_reason why = {{0}, {0}, 0};
        H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, walk_cb, &why);
        rn_errorf(err, "%s: cannot open: %s", path, why.n ? why.inner : "not an HDF5 file");
        goto fail;
    }
    H5Pclose(fapl);
    *out = r;
    return 0;
fail:
    close_obj(fapl);
    rn_results_close(r);
    return -1;
}

int rn_results_open(struct rn_results **out, const char *path, struct rn_error *err)
{
    return results_open(out, path, 0, err);
}

int rn_results_open_rw(struct rn_results **out, const char *path, struct rn_error *err)
{
    return results_open(out, path, 1, err);
}

void rn_results_close(struct rn_results *r)
{
    if (!r)
        return;
    if (r->file >= 0) {
        if (r->writable)
            H5Fflush(r->file, H5F_SCOPE_GLOBAL);
        H5Fclose(r->file);
    }
    free(r);
}

int rn_results_delete(struct rn_results *r, const char *path, struct rn_error *err)
{
    if (check_path(r, path, err) || need_writable(r, path, err))
        return -1;
    if (!rn_results_exists(r, path))
        return 0;
    H5TRY(H5Ldelete(r->file, path, H5P_DEFAULT), path);
    return 0;
fail:
    return -1;
}

int rn_results_flush(struct rn_results *r, struct rn_error *err)
{
    if (!r->writable)
        return 0;
    H5TRY(H5Fflush(r->file, H5F_SCOPE_GLOBAL), "/");
    return 0;
fail:
    return -1;
}

/* ---- attributes -------------------------------------------------------- */

/* Opens obj (creating it as a group if missing) and removes attribute name
 * if it is there, so that the caller can create it afresh with any type. */
static hid_t attr_target(struct rn_results *r, const char *obj, const char *name,
                         struct rn_error *err)
{
    hid_t o = -1;
    htri_t e;
    if (check_path(r, obj, err) || need_writable(r, obj, err))
        return -1;
    if ((o = open_object(r, obj, 1, err)) < 0)
        return -1;
    H5TRY(e = H5Aexists(o, name), obj);
    if (e > 0)
        H5TRY(H5Adelete(o, name), obj);
    return o;
fail:
    close_obj(o);
    return -1;
}

int rn_results_set_attr_str(struct rn_results *r, const char *obj, const char *name,
                            const char *value, struct rn_error *err)
{
    hid_t o = -1, t = -1, s = -1, a = -1;
    if ((o = attr_target(r, obj, name, err)) < 0)
        return -1;
    /* Variable-length UTF-8: h5py reads it back as str, not bytes. */
    H5TRY(t = H5Tcopy(H5T_C_S1), obj);
    H5TRY(H5Tset_size(t, H5T_VARIABLE), obj);
    H5TRY(H5Tset_cset(t, H5T_CSET_UTF8), obj);
    H5TRY(s = H5Screate(H5S_SCALAR), obj);
    H5TRY(a = H5Acreate2(o, name, t, s, H5P_DEFAULT, H5P_DEFAULT), obj);
    H5TRY(H5Awrite(a, t, &value), obj);
    H5Aclose(a);
    H5Sclose(s);
    H5Tclose(t);
    close_obj(o);
    return 0;
fail:
    close_obj(a);
    close_obj(s);
    close_obj(t);
    close_obj(o);
    return -1;
}

int rn_results_set_attr_u64(struct rn_results *r, const char *obj, const char *name, uint64_t value,
                            struct rn_error *err)
{
    hid_t o = -1, s = -1, a = -1;
    if ((o = attr_target(r, obj, name, err)) < 0)
        return -1;
    H5TRY(s = H5Screate(H5S_SCALAR), obj);
    H5TRY(a = H5Acreate2(o, name, H5T_STD_U64LE, s, H5P_DEFAULT, H5P_DEFAULT), obj);
    H5TRY(H5Awrite(a, H5T_NATIVE_UINT64, &value), obj);
    H5Aclose(a);
    H5Sclose(s);
    close_obj(o);
    return 0;
fail:
    close_obj(a);
    close_obj(s);
    close_obj(o);
    return -1;
}

/* Opens attribute name of obj, with a clear error when either is missing. */
static hid_t attr_open(struct rn_results *r, const char *obj, const char *name, hid_t *o,
                       struct rn_error *err)
{
    htri_t e;
    hid_t a = -1;
    *o = -1;
    if (check_path(r, obj, err) || (*o = open_object(r, obj, 0, err)) < 0)
        return -1;
    H5TRY(e = H5Aexists(*o, name), obj);
    if (!e) {
        rn_errorf(err, "%s: %s: no attribute '%s'", r->path, obj, name);
        goto fail;
    }
    H5TRY(a = H5Aopen(*o, name, H5P_DEFAULT), obj);
    return a;
fail:
    close_obj(*o);
    *o = -1;
    return -1;
}

int rn_results_get_attr_str(struct rn_results *r, const char *obj, const char *name, char **out,
                            struct rn_error *err)
{
    hid_t o = -1, a = -1, t = -1, mt = -1, s = -1;
    char *vl = NULL;
    *out = NULL;
    if ((a = attr_open(r, obj, name, &o, err)) < 0)
        return -1;
    H5TRY(t = H5Aget_type(a), obj);
    if (H5Tget_class(t) != H5T_STRING) {
        char what[48];
        describe_type(t, what, sizeof what);
        rn_errorf(err, "%s: %s: attribute '%s' is %s, not a string", r->path, obj, name, what);
        goto fail;
    }
    H5TRY(s = H5Aget_space(a), obj);
    if (H5Sget_simple_extent_npoints(s) != 1) {
        rn_errorf(err, "%s: %s: attribute '%s' is not a single string", r->path, obj, name);
        goto fail;
    }
    htri_t vlen;
    H5TRY(vlen = H5Tis_variable_str(t), obj);
    H5TRY(mt = H5Tcopy(H5T_C_S1), obj);
    if (vlen) {
        H5TRY(H5Tset_size(mt, H5T_VARIABLE), obj);
        H5TRY(H5Tset_cset(mt, H5Tget_cset(t)), obj);
        H5TRY(H5Aread(a, mt, &vl), obj);
        *out = rn_strdup(vl ? vl : "", err);
        H5free_memory(vl);
        vl = NULL;
    } else {
        size_t n = H5Tget_size(t);
        H5TRY(H5Tset_size(mt, n + 1), obj); /* room for the terminator */
        H5TRY(H5Tset_cset(mt, H5Tget_cset(t)), obj);
        *out = rn_calloc(n + 2, 1, err);
        if (*out)
            H5TRY(H5Aread(a, mt, *out), obj);
    }
    if (!*out)
        goto fail;
    H5Tclose(mt);
    H5Sclose(s);
    H5Tclose(t);
    H5Aclose(a);
    close_obj(o);
    return 0;
fail:
    free(*out);
    *out = NULL;
    close_obj(mt);
    close_obj(s);
    close_obj(t);
    close_obj(a);
    close_obj(o);
    return -1;
}

int rn_results_get_attr_u64(struct rn_results *r, const char *obj, const char *name, uint64_t *out,
                            struct rn_error *err)
{
    hid_t o = -1, a = -1, t = -1, s = -1;
    if ((a = attr_open(r, obj, name, &o, err)) < 0)
        return -1;
    H5TRY(t = H5Aget_type(a), obj);
    H5TRY(s = H5Aget_space(a), obj);
    if (H5Tget_class(t) != H5T_INTEGER || H5Sget_simple_extent_npoints(s) != 1) {
        char what[48];
        describe_type(t, what, sizeof what);
        rn_errorf(err, "%s: %s: attribute '%s' is %s, not a single integer", r->path, obj, name,
                  what);
        goto fail;
    }
    H5TRY(H5Aread(a, H5T_NATIVE_UINT64, out), obj);
    H5Sclose(s);
    H5Tclose(t);
    H5Aclose(a);
    close_obj(o);
    return 0;
fail:
    close_obj(s);
    close_obj(t);
    close_obj(a);
    close_obj(o);
    return -1;
}
