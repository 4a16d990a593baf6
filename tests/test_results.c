/* test_results.c - the run's HDF5 file (results.h) and its figures (plot.h). */
#define _GNU_SOURCE /* nftw */
#include <criterion/criterion.h>

#include <ftw.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "plot.h"
#include "results.h"

/* ---- helpers ----------------------------------------------------------- */

static char tmpdir[256];

static void make_tmpdir(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/rn_test_results_XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
}

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void remove_tmpdir(void)
{
    if (tmpdir[0] && !getenv("RN_KEEP_TMP"))
        nftw(tmpdir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static const char *tmp_path(const char *name)
{
    static char buf[512];
    snprintf(buf, sizeof buf, "%s/%s", tmpdir, name);
    return buf;
}

static struct rn_results *create_or_die(const char *path)
{
    struct rn_results *r = NULL;
    struct rn_error err = {{0}};
    cr_assert_eq(rn_results_create(&r, path, &err), 0, "%s", err.msg);
    return r;
}

static struct rn_results *open_or_die(const char *path)
{
    struct rn_results *r = NULL;
    struct rn_error err = {{0}};
    cr_assert_eq(rn_results_open(&r, path, &err), 0, "%s", err.msg);
    return r;
}

static size_t dsize(enum rn_dtype t)
{
    return t == RN_DTYPE_U8 ? 1 : (t == RN_DTYPE_F32 || t == RN_DTYPE_I32) ? 4 : 8;
}

/* Fills n elements of type t with distinct, exactly representable values. */
static void fill(void *buf, enum rn_dtype t, int n, int salt)
{
    for (int i = 0; i < n; i++) {
        int v = (i * 37 + salt * 11) % 251 - 100;
        switch (t) {
        case RN_DTYPE_F32: ((float *)buf)[i] = (float)v * 0.25f; break;
        case RN_DTYPE_F64: ((double *)buf)[i] = (double)v * 0.125 + 1e-9 * i; break;
        case RN_DTYPE_I32: ((int32_t *)buf)[i] = v * 100000; break;
        case RN_DTYPE_I64: ((int64_t *)buf)[i] = (int64_t)v * 10000000000LL; break;
        case RN_DTYPE_U8: ((uint8_t *)buf)[i] = (uint8_t)(v + 100); break;
        }
    }
}

/* ---- arrays ------------------------------------------------------------ */

TestSuite(results, .init = make_tmpdir, .fini = remove_tmpdir);

static const enum rn_dtype all_dtypes[] = {RN_DTYPE_F32, RN_DTYPE_F64, RN_DTYPE_I32,
                                           RN_DTYPE_I64, RN_DTYPE_U8};
static const int shapes[5][4] = {{0}, {5}, {2, 3}, {2, 3, 4}, {2, 1, 3, 2}};

Test(results, round_trip_every_dtype_and_rank)
{
    char path[64];
    struct rn_error err = {{0}};
    const char *file = tmp_path("rt.h5");
    struct rn_results *r = create_or_die(file);
    for (int t = 0; t < 5; t++) {
        for (int rank = 0; rank <= 4; rank++) {
            int n = 1;
            for (int i = 0; i < rank; i++)
                n *= shapes[rank][i];
            void *buf = malloc((size_t)n * dsize(all_dtypes[t]));
            fill(buf, all_dtypes[t], n, t * 5 + rank);
            snprintf(path, sizeof path, "/arrays/t%d/rank%d", t, rank);
            cr_assert_eq(rn_results_write(r, path, all_dtypes[t], buf, rank,
                                          rank ? shapes[rank] : NULL, &err),
                         0, "%s", err.msg);
            free(buf);
        }
    }
    rn_results_close(r);

    r = open_or_die(file);
    for (int t = 0; t < 5; t++) {
        for (int rank = 0; rank <= 4; rank++) {
            int n = 1;
            for (int i = 0; i < rank; i++)
                n *= shapes[rank][i];
            void *want = malloc((size_t)n * dsize(all_dtypes[t]));
            fill(want, all_dtypes[t], n, t * 5 + rank);
            void *got = NULL;
            int ndim = -1, dims[4] = {-1, -1, -1, -1};
            snprintf(path, sizeof path, "/arrays/t%d/rank%d", t, rank);
            cr_assert_eq(rn_results_read(r, path, all_dtypes[t], &got, &ndim, dims, &err), 0,
                         "%s", err.msg);
            cr_assert_eq(ndim, rank, "%s", path);
            for (int i = 0; i < rank; i++)
                cr_assert_eq(dims[i], shapes[rank][i], "%s dim %d", path, i);
            cr_assert_eq(memcmp(got, want, (size_t)n * dsize(all_dtypes[t])), 0, "%s", path);
            free(got);
            free(want);
        }
    }
    rn_results_close(r);
}

Test(results, model_keys_with_dots_and_empty_arrays)
{
    struct rn_error err = {{0}};
    const char *file = tmp_path("dots.h5");
    struct rn_results *r = create_or_die(file);
    float w[6] = {1, 2, 3, 4, 5, 6};
    int dims[2] = {2, 3}, zero[2] = {0, 3};
    int64_t nbt = 938;
    cr_assert_eq(rn_results_write(r, "/models/net/conv1.weight", RN_DTYPE_F32, w, 2, dims, &err),
                 0, "%s", err.msg);
    cr_assert_eq(rn_results_write(r, "/models/net/bn1.num_batches_tracked", RN_DTYPE_I64, &nbt,
                                  0, NULL, &err),
                 0, "%s", err.msg);
    cr_assert_eq(rn_results_write(r, "/models/net/empty", RN_DTYPE_F32, w, 2, zero, &err), 0,
                 "%s", err.msg);
    rn_results_close(r);

    r = open_or_die(file);
    char **names;
    int n;
    cr_assert_eq(rn_results_list(r, "/models/net", &names, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 3);
    cr_assert_str_eq(names[0], "bn1.num_batches_tracked");
    cr_assert_str_eq(names[1], "conv1.weight");
    cr_assert_str_eq(names[2], "empty");
    rn_results_free_list(names, n);
    int64_t *got;
    int ndim, d[4];
    cr_assert_eq(rn_results_read(r, "/models/net/bn1.num_batches_tracked", RN_DTYPE_I64,
                                 (void **)&got, &ndim, d, &err),
                 0, "%s", err.msg);
    cr_assert_eq(ndim, 0);
    cr_assert_eq(*got, 938);
    free(got);
    float *e;
    cr_assert_eq(rn_results_read(r, "/models/net/empty", RN_DTYPE_F32, (void **)&e, &ndim, d,
                                 &err),
                 0, "%s", err.msg);
    cr_assert_eq(ndim, 2);
    cr_assert_eq(d[0], 0);
    cr_assert_eq(d[1], 3);
    free(e);
    rn_results_close(r);
}

Test(results, write_replaces_existing_dataset)
{
    struct rn_error err = {{0}};
    const char *file = tmp_path("replace.h5");
    struct rn_results *r = create_or_die(file);
    float a[3] = {1, 2, 3}, b[3] = {7, 8, 9};
    int32_t c[4] = {10, 20, 30, 40};
    int d3[1] = {3}, d22[2] = {2, 2};
    /* Same layout: rewritten in place. */
    cr_assert_eq(rn_results_write(r, "/x/a", RN_DTYPE_F32, a, 1, d3, &err), 0, "%s", err.msg);
    cr_assert_eq(rn_results_write(r, "/x/a", RN_DTYPE_F32, b, 1, d3, &err), 0, "%s", err.msg);
    /* Different type and shape: deleted and created again. */
    cr_assert_eq(rn_results_write(r, "/x/c", RN_DTYPE_F32, a, 1, d3, &err), 0, "%s", err.msg);
    cr_assert_eq(rn_results_write(r, "/x/c", RN_DTYPE_I32, c, 2, d22, &err), 0, "%s", err.msg);
    /* A dataset cannot hold children. */
    cr_assert_eq(rn_results_write(r, "/x/a/deeper", RN_DTYPE_F32, a, 1, d3, &err), -1);
    cr_assert_not_null(strstr(err.msg, "/x/a is a dataset, not a group"), "%s", err.msg);
    cr_assert_eq(rn_results_set_attr_str(r, "/x/a/deeper", "k", "v", &err), -1);
    cr_assert_not_null(strstr(err.msg, "/x/a is a dataset"), "%s", err.msg);
    rn_results_close(r);

    r = open_or_die(file);
    float *fa;
    int32_t *ic;
    int ndim, dims[4];
    cr_assert_eq(rn_results_read(r, "/x/a", RN_DTYPE_F32, (void **)&fa, &ndim, dims, &err), 0,
                 "%s", err.msg);
    cr_assert_eq(memcmp(fa, b, sizeof b), 0);
    free(fa);
    cr_assert_eq(rn_results_read(r, "/x/c", RN_DTYPE_I32, (void **)&ic, &ndim, dims, &err), 0,
                 "%s", err.msg);
    cr_assert_eq(ndim, 2);
    cr_assert_eq(dims[0], 2);
    cr_assert_eq(dims[1], 2);
    cr_assert_eq(memcmp(ic, c, sizeof c), 0);
    free(ic);
    rn_results_close(r);
}

Test(results, missing_path_is_one_line_naming_it)
{
    struct rn_error err = {{0}};
    const char *file = tmp_path("missing.h5");
    struct rn_results *r = create_or_die(file);
    void *data = (void *)1;
    int ndim, dims[4];
    cr_assert_eq(rn_results_read(r, "/analyses/nope/x", RN_DTYPE_F32, &data, &ndim, dims, &err),
                 -1);
    cr_assert_null(data);
    cr_assert_not_null(strstr(err.msg, "/analyses/nope/x"), "%s", err.msg);
    cr_assert_not_null(strstr(err.msg, file), "%s", err.msg);
    cr_assert_null(strchr(err.msg, '\n'), "%s", err.msg);
    cr_assert_eq(rn_results_exists(r, "/analyses/nope/x"), 0);
    cr_assert_eq(rn_results_exists(r, "/"), 1);

    double *x, *v;
    int n;
    cr_assert_eq(rn_results_read_metric(r, "val/loss", &x, &v, &n, &err), -1);
    cr_assert_not_null(strstr(err.msg, "/metrics/val/loss"), "%s", err.msg);
    char **names;
    cr_assert_eq(rn_results_list(r, "/nothing", &names, &n, &err), -1);
    cr_assert_not_null(strstr(err.msg, "/nothing"), "%s", err.msg);
    rn_results_close(r);
}

Test(results, wrong_dtype_read_is_an_error)
{
    struct rn_error err = {{0}};
    struct rn_results *r = create_or_die(tmp_path("dtype.h5"));
    int32_t m[4] = {1, 2, 3, 4};
    int dims[2] = {2, 2};
    cr_assert_eq(rn_results_write(r, "/analyses/confusion/test", RN_DTYPE_I32, m, 2, dims, &err),
                 0, "%s", err.msg);
    void *data;
    int ndim, d[4];
    cr_assert_eq(
        rn_results_read(r, "/analyses/confusion/test", RN_DTYPE_F32, &data, &ndim, d, &err), -1);
    cr_assert_not_null(strstr(err.msg, "int32"), "%s", err.msg);
    cr_assert_not_null(strstr(err.msg, "float32"), "%s", err.msg);
    cr_assert_not_null(strstr(err.msg, "/analyses/confusion/test"), "%s", err.msg);
    /* Same size, other signedness, is still the wrong type. */
    cr_assert_eq(
        rn_results_read(r, "/analyses/confusion/test", RN_DTYPE_I64, &data, &ndim, d, &err), -1);
    /* A group is not a dataset. */
    cr_assert_eq(rn_results_read(r, "/analyses/confusion", RN_DTYPE_I32, &data, &ndim, d, &err),
                 -1);
    cr_assert_not_null(strstr(err.msg, "/analyses/confusion"), "%s", err.msg);
    cr_assert_null(strchr(err.msg, '\n'), "%s", err.msg);
    rn_results_close(r);
}

/* ---- attributes -------------------------------------------------------- */

Test(results, attributes)
{
    struct rn_error err = {{0}};
    const char *file = tmp_path("attrs.h5");
    struct rn_results *r = create_or_die(file);
    const char *yaml = "model:\n  - conv2d: {filters: 6}\n# ünïcode ok\n";
    cr_assert_eq(rn_results_set_attr_str(r, "/config", "yaml", yaml, &err), 0, "%s", err.msg);
    cr_assert_eq(rn_results_set_attr_u64(r, "/config", "seed", UINT64_MAX - 1, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(rn_results_set_attr_str(r, "/", "status", "completed", &err), 0, "%s", err.msg);
    cr_assert_eq(rn_results_set_attr_str(r, "/config", "empty", "", &err), 0, "%s", err.msg);
    /* Attributes on a dataset, and on a nested group created on the way. */
    double x = 1, v = 2;
    cr_assert_eq(rn_results_append_metric(r, "train/loss", &x, &v, 1, &err), 0, "%s", err.msg);
    cr_assert_eq(rn_results_set_attr_str(r, "/metrics/train/loss", "x_label", "step", &err), 0,
                 "%s", err.msg);
    cr_assert_eq(rn_results_set_attr_str(r, "/analyses/probe_red", "kind", "probe", &err), 0,
                 "%s", err.msg);
    /* Replacing an attribute with one of another type. */
    cr_assert_eq(rn_results_set_attr_str(r, "/config", "x", "text", &err), 0, "%s", err.msg);
    cr_assert_eq(rn_results_set_attr_u64(r, "/config", "x", 5, &err), 0, "%s", err.msg);
    rn_results_close(r);

    r = open_or_die(file);
    char *s;
    uint64_t u;
    cr_assert_eq(rn_results_get_attr_str(r, "/config", "yaml", &s, &err), 0, "%s", err.msg);
    cr_assert_str_eq(s, yaml);
    free(s);
    cr_assert_eq(rn_results_get_attr_str(r, "/", "status", &s, &err), 0, "%s", err.msg);
    cr_assert_str_eq(s, "completed");
    free(s);
    cr_assert_eq(rn_results_get_attr_str(r, "/config", "empty", &s, &err), 0, "%s", err.msg);
    cr_assert_str_eq(s, "");
    free(s);
    cr_assert_eq(rn_results_get_attr_u64(r, "/", "format_version", &u, &err), 0, "%s", err.msg);
    cr_assert_eq(u, 1);
    cr_assert_eq(rn_results_get_attr_u64(r, "/config", "seed", &u, &err), 0, "%s", err.msg);
    cr_assert_eq(u, UINT64_MAX - 1);
    cr_assert_eq(rn_results_get_attr_u64(r, "/config", "x", &u, &err), 0, "%s", err.msg);
    cr_assert_eq(u, 5);
    cr_assert_eq(rn_results_get_attr_str(r, "/metrics/train/loss", "x_label", &s, &err), 0, "%s",
                 err.msg);
    cr_assert_str_eq(s, "step");
    free(s);
    cr_assert_eq(rn_results_get_attr_str(r, "/analyses/probe_red", "kind", &s, &err), 0, "%s",
                 err.msg);
    cr_assert_str_eq(s, "probe");
    free(s);

    /* Errors: wrong type, missing attribute, missing object. */
    cr_assert_eq(rn_results_get_attr_str(r, "/config", "seed", &s, &err), -1);
    cr_assert_null(s);
    cr_assert_not_null(strstr(err.msg, "not a string"), "%s", err.msg);
    cr_assert_eq(rn_results_get_attr_u64(r, "/config", "yaml", &u, &err), -1);
    cr_assert_not_null(strstr(err.msg, "yaml"), "%s", err.msg);
    cr_assert_eq(rn_results_get_attr_str(r, "/config", "nope", &s, &err), -1);
    cr_assert_not_null(strstr(err.msg, "no attribute 'nope'"), "%s", err.msg);
    cr_assert_eq(rn_results_get_attr_str(r, "/nogroup", "x", &s, &err), -1);
    cr_assert_not_null(strstr(err.msg, "/nogroup"), "%s", err.msg);
    /* Read-only handles refuse writes with a clear message. */
    cr_assert_eq(rn_results_set_attr_str(r, "/", "status", "failed", &err), -1);
    cr_assert_not_null(strstr(err.msg, "read-only"), "%s", err.msg);
    rn_results_close(r);
}

/* ---- metrics and listing ----------------------------------------------- */

Test(results, metrics_appended_in_several_calls)
{
    struct rn_error err = {{0}};
    const char *file = tmp_path("metrics.h5");
    struct rn_results *r = create_or_die(file);
    /* 1300 rows crosses the 512-row chunks a few times. */
    enum { N = 1300 };
    static double x[N], v[N];
    for (int i = 0; i < N; i++) {
        x[i] = 10.0 * (i + 1);
        v[i] = 2.3 / (1.0 + i) + 1e-12 * i;
    }
    int at = 0;
    const int calls[] = {1, 0, 7, 500, 600, 192};
    for (size_t c = 0; c < sizeof calls / sizeof *calls; c++) {
        cr_assert_eq(rn_results_append_metric(r, "train/loss", x + at, v + at, calls[c], &err), 0,
                     "%s", err.msg);
        at += calls[c];
    }
    cr_assert_eq(at, N);
    double e[2] = {1, 2}, acc[2] = {0.5, 0.75};
    cr_assert_eq(rn_results_append_metric(r, "val/accuracy", e, acc, 1, &err), 0, "%s", err.msg);
    cr_assert_eq(rn_results_append_metric(r, "val/accuracy", e + 1, acc + 1, 1, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(rn_results_append_metric(r, "lr", e, acc, 2, &err), 0, "%s", err.msg);
    cr_assert_eq(rn_results_append_metric(r, "/bad", e, acc, 2, &err), -1);
    rn_results_close(r);

    r = open_or_die(file);
    double *gx, *gv;
    int n;
    cr_assert_eq(rn_results_read_metric(r, "train/loss", &gx, &gv, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, N);
    cr_assert_eq(memcmp(gx, x, sizeof x), 0);
    cr_assert_eq(memcmp(gv, v, sizeof v), 0);
    free(gx);
    free(gv);
    cr_assert_eq(rn_results_read_metric(r, "val/accuracy", &gx, &gv, &n, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(n, 2);
    cr_assert_eq(gx[1], 2.0);
    cr_assert_eq(gv[1], 0.75);
    free(gx);
    free(gv);

    char **names;
    cr_assert_eq(rn_results_list(r, "/metrics", &names, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 3);
    cr_assert_str_eq(names[0], "lr");
    cr_assert_str_eq(names[1], "train/loss");
    cr_assert_str_eq(names[2], "val/accuracy");
    rn_results_free_list(names, n);
    rn_results_close(r);
}

Test(results, list_nested_groups)
{
    struct rn_error err = {{0}};
    struct rn_results *r = create_or_die(tmp_path("list.h5"));
    int32_t m[4] = {0};
    uint8_t img[4] = {0};
    int d2[2] = {2, 2}, d4[4] = {1, 1, 2, 2};
    const char *paths[] = {"/analyses/confusion/test", "/analyses/confusion/val",
                           "/analyses/samples/train/labels"};
    for (int i = 0; i < 3; i++)
        cr_assert_eq(rn_results_write(r, paths[i], RN_DTYPE_I32, m, 2, d2, &err), 0, "%s",
                     err.msg);
    cr_assert_eq(
        rn_results_write(r, "/analyses/samples/train/images", RN_DTYPE_U8, img, 4, d4, &err), 0,
        "%s", err.msg);
    cr_assert_eq(rn_results_set_attr_str(r, "/analyses/empty", "kind", "probe", &err), 0, "%s",
                 err.msg);
    char **names;
    int n;
    cr_assert_eq(rn_results_list(r, "/analyses", &names, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 4); /* datasets only; the empty group has none */
    cr_assert_str_eq(names[0], "confusion/test");
    cr_assert_str_eq(names[1], "confusion/val");
    cr_assert_str_eq(names[2], "samples/train/images");
    cr_assert_str_eq(names[3], "samples/train/labels");
    rn_results_free_list(names, n);
    cr_assert_eq(rn_results_list(r, "/analyses/confusion", &names, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(names[0], "test");
    rn_results_free_list(names, n);
    cr_assert_eq(rn_results_list(r, "/analyses/empty", &names, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 0);
    rn_results_free_list(names, n);
    cr_assert_eq(rn_results_exists(r, "/analyses/samples/train"), 1);
    cr_assert_eq(rn_results_exists(r, "/analyses/samples/train/images/deeper"), 0);
    rn_results_close(r);
}

/* ---- files ------------------------------------------------------------- */

Test(results, open_errors)
{
    struct rn_error err = {{0}};
    struct rn_results *r = (struct rn_results *)1;
    cr_assert_eq(rn_results_open(&r, tmp_path("none.h5"), &err), -1);
    cr_assert_null(r);
    cr_assert_not_null(strstr(err.msg, "none.h5: cannot open: No such file"), "%s", err.msg);
    FILE *f = fopen(tmp_path("text.h5"), "w");
    fputs("not hdf5\n", f);
    fclose(f);
    cr_assert_eq(rn_results_open(&r, tmp_path("text.h5"), &err), -1);
    cr_assert_not_null(strstr(err.msg, "text.h5: cannot open:"), "%s", err.msg);
    cr_assert_null(strchr(err.msg, '\n'), "%s", err.msg);
    cr_assert_eq(rn_results_create(&r, "/nonexistent-dir/x/run.h5", &err), -1);
    cr_assert_not_null(strstr(err.msg, "H5Fcreate"), "%s", err.msg);
    rn_results_close(NULL);
}

/* While the trainer holds the file open for writing, a reader (runner plot,
 * h5py) opens it read-only and sees everything written up to the last flush:
 * in this process and in another one. */
Test(results, live_file_readable_after_flush)
{
    struct rn_error err = {{0}};
    const char *file = tmp_path("live.h5");
    char path[512];
    snprintf(path, sizeof path, "%s", file);
    struct rn_results *w = create_or_die(path);
    double x[3] = {1, 2, 3}, v[3] = {0.9, 0.5, 0.25};
    cr_assert_eq(rn_results_append_metric(w, "val/loss", x, v, 3, &err), 0, "%s", err.msg);
    cr_assert_eq(rn_results_flush(w, &err), 0, "%s", err.msg);

    struct rn_results *rd = open_or_die(path);
    double *gx, *gv;
    int n;
    cr_assert_eq(rn_results_read_metric(rd, "val/loss", &gx, &gv, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 3);
    cr_assert_eq(gv[2], 0.25);
    free(gx);
    free(gv);
    rn_results_close(rd);

    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        struct rn_results *c = NULL;
        struct rn_error e2 = {{0}};
        double *cx = NULL, *cv = NULL;
        int cn = 0;
        int ok = rn_results_open(&c, path, &e2) == 0 &&
                 rn_results_read_metric(c, "val/loss", &cx, &cv, &cn, &e2) == 0 && cn == 3 &&
                 cv[1] == 0.5;
        if (!ok)
            fprintf(stderr, "child: %s\n", e2.msg);
        free(cx);
        free(cv);
        rn_results_close(c);
        _exit(ok ? 0 : 1);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "another process could not read the live file");

    /* The writer carries on after the readers. */
    cr_assert_eq(rn_results_append_metric(w, "val/loss", x, v, 1, &err), 0, "%s", err.msg);
    cr_assert_eq(rn_results_set_attr_str(w, "/", "status", "completed", &err), 0, "%s",
                 err.msg);
    rn_results_close(w);
    rd = open_or_die(path);
    cr_assert_eq(rn_results_read_metric(rd, "val/loss", &gx, &gv, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 4);
    free(gx);
    free(gv);
    rn_results_close(rd);
}

/* ---- figures ----------------------------------------------------------- */

/* A plausible run: 3 epochs of 50 steps, two evaluated splits, samples for
 * an RGB and a grey split, a probe and colour statistics. */
static void write_synthetic_run(const char *dir)
{
    struct rn_error err = {{0}};
    char file[512];
    snprintf(file, sizeof file, "%s/run.h5", dir);
    struct rn_results *r = create_or_die(file);
    cr_assert_eq(rn_results_set_attr_str(r, "/config", "experiment", "synthetic_test", &err), 0);
    cr_assert_eq(rn_results_set_attr_u64(r, "/metrics", "steps_per_epoch", 50, &err), 0, "%s",
                 err.msg);
    srand(7);
    for (int s = 10; s <= 150; s += 10) {
        double x = s, loss = 2.3 * exp(-s / 40.0) + 0.05 * rand() / RAND_MAX;
        double acc = 1 - 0.9 * exp(-s / 30.0);
        cr_assert_eq(rn_results_append_metric(r, "train/loss", &x, &loss, 1, &err), 0);
        cr_assert_eq(rn_results_append_metric(r, "train/accuracy", &x, &acc, 1, &err), 0);
    }
    const char *splits[] = {"val", "test"};
    for (int i = 0; i < 2; i++) {
        for (int e = 1; e <= 3; e++) {
            double x = e, loss = (i ? 2.0 : 0.5) / e, acc = i ? 0.1 + 0.02 * e : 0.9 + 0.02 * e;
            char name[64];
            snprintf(name, sizeof name, "%s/loss", splits[i]);
            cr_assert_eq(rn_results_append_metric(r, name, &x, &loss, 1, &err), 0);
            snprintf(name, sizeof name, "%s/accuracy", splits[i]);
            cr_assert_eq(rn_results_append_metric(r, name, &x, &acc, 1, &err), 0);
        }
        cr_assert_eq(rn_results_set_attr_str(r, "/metrics/val/loss", "x_label", "epoch", &err),
                     0);
    }

    /* Confusion matrices, and colour statistics (label x colour). */
    int32_t m[100];
    int d2[2] = {10, 10};
    cr_assert_eq(rn_results_set_attr_str(r, "/analyses/confusion", "kind", "confusion", &err), 0);
    for (int i = 0; i < 2; i++) {
        for (int t = 0; t < 10; t++)
            for (int p = 0; p < 10; p++)
                m[t * 10 + p] = t == p ? (i ? 120 + 30 * t : 900 + 10 * t) : rand() % (i ? 90 : 8);
        char path[64];
        snprintf(path, sizeof path, "/analyses/confusion/%s", splits[i]);
        cr_assert_eq(rn_results_write(r, path, RN_DTYPE_I32, m, 2, d2, &err), 0, "%s", err.msg);
    }
    cr_assert_eq(rn_results_set_attr_str(r, "/analyses/colour_stats", "kind", "colour_stats",
                                         &err),
                 0);
    for (int t = 0; t < 10; t++)
        for (int c = 0; c < 10; c++)
            m[t * 10 + c] = t == c ? 5400 : 6 + rand() % 5;
    cr_assert_eq(rn_results_write(r, "/analyses/colour_stats/train", RN_DTYPE_I32, m, 2, d2, &err),
                 0);
    /* Not a matrix: must be skipped, not drawn. */
    float agree = 0.99f;
    cr_assert_eq(rn_results_write(r, "/analyses/colour_stats/detector_agreement", RN_DTYPE_F32,
                                  &agree, 0, NULL, &err),
                 0);

    /* Samples: RGB "train" without predictions, grey "test" with. An
     * asymmetric glyph (a 7) shows any flip or transposition. */
    enum { N = 20 };
    static uint8_t img[N * 3 * 28 * 28];
    int32_t labels[N], colours[N], preds[N];
    for (int i = 0; i < N; i++) {
        labels[i] = i % 10;
        colours[i] = i % 7 == 3 ? 255 : (i * 3) % 10;
        preds[i] = i % 6 == 0 ? (i + 1) % 10 : i % 10;
        for (int y = 0; y < 28; y++)
            for (int x = 0; x < 28; x++) {
                int on = (y >= 5 && y <= 8 && x >= 6 && x <= 22) ||
                         (x >= 22 - (y - 5) / 2 - 2 && x <= 22 - (y - 5) / 2 + 1 && y > 8 && y < 24);
                for (int c = 0; c < 3; c++)
                    img[((i * 3 + c) * 28 + y) * 28 + x] =
                        on ? 255 : (uint8_t)(c == 0 ? 40 * (i % 6) : c == 1 ? 200 - 9 * i : 90);
            }
    }
    int d4[4] = {N, 3, 28, 28}, d1[1] = {N};
    cr_assert_eq(rn_results_set_attr_str(r, "/analyses/samples", "kind", "samples", &err), 0);
    cr_assert_eq(rn_results_write(r, "/analyses/samples/train/images", RN_DTYPE_U8, img, 4, d4,
                                  &err),
                 0, "%s", err.msg);
    cr_assert_eq(rn_results_write(r, "/analyses/samples/train/labels", RN_DTYPE_I32, labels, 1,
                                  d1, &err),
                 0);
    cr_assert_eq(rn_results_write(r, "/analyses/samples/train/colours", RN_DTYPE_I32, colours, 1,
                                  d1, &err),
                 0);
    int d4g[4] = {12, 1, 28, 28}, d1g[1] = {12};
    cr_assert_eq(rn_results_write(r, "/analyses/samples/test/images", RN_DTYPE_U8, img, 4, d4g,
                                  &err),
                 0);
    cr_assert_eq(rn_results_write(r, "/analyses/samples/test/labels", RN_DTYPE_I32, labels, 1,
                                  d1g, &err),
                 0);
    for (int i = 0; i < 12; i++)
        colours[i] = 255; /* grey MNIST: no colour */
    cr_assert_eq(rn_results_write(r, "/analyses/samples/test/colours", RN_DTYPE_I32, colours, 1,
                                  d1g, &err),
                 0);
    cr_assert_eq(rn_results_write(r, "/analyses/samples/test/preds", RN_DTYPE_I32, preds, 1, d1g,
                                  &err),
                 0);

    /* A probe, under a name of its own. */
    int d3[3] = {3, 28, 28}, d10[1] = {10};
    float probs[10] = {0.87f, 0.06f, 0.01f, 0.005f, 0.02f, 0.015f, 0.01f, 0.004f, 0.003f, 0.003f};
    cr_assert_eq(rn_results_write(r, "/analyses/probe_1_red/image", RN_DTYPE_U8, img, 3, d3, &err),
                 0);
    cr_assert_eq(
        rn_results_write(r, "/analyses/probe_1_red/probs", RN_DTYPE_F32, probs, 1, d10, &err), 0);
    cr_assert_eq(rn_results_set_attr_str(r, "/analyses/probe_1_red", "kind", "probe", &err), 0);
    cr_assert_eq(
        rn_results_set_attr_str(r, "/analyses/probe_1_red", "title", "digit 1 on red", &err), 0);
    cr_assert_eq(rn_results_set_attr_u64(r, "/analyses/probe_1_red", "label", 1, &err), 0);
    cr_assert_eq(rn_results_set_attr_u64(r, "/analyses/probe_1_red", "pred", 0, &err), 0);
    rn_results_close(r);
}

static const char *expected_figures[] = {
    "curves",        "confusion_test", "confusion_val", "samples_train", "samples_test",
    "probe_1_red", "colour_stats_train",
};
#define N_EXPECTED ((int)(sizeof expected_figures / sizeof *expected_figures))

TestSuite(plot, .init = make_tmpdir, .fini = remove_tmpdir, .timeout = 60);

Test(plot, png_for_every_kind_of_figure)
{
    struct rn_error err = {{0}};
    write_synthetic_run(tmpdir);
    int n = -1;
    cr_assert_eq(rn_plot_run(tmpdir, "png", &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, N_EXPECTED);
    for (int i = 0; i < N_EXPECTED; i++) {
        char path[600];
        snprintf(path, sizeof path, "%s/plots/%s.png", tmpdir, expected_figures[i]);
        FILE *f = fopen(path, "rb");
        cr_assert_not_null(f, "missing %s", path);
        unsigned char sig[8];
        cr_assert_eq(fread(sig, 1, 8, f), 8);
        cr_assert_eq(memcmp(sig, "\x89PNG\r\n\x1a\n", 8), 0, "%s is not a PNG", path);
        fseek(f, 0, SEEK_END);
        long size = ftell(f);
        fclose(f);
        cr_assert_gt(size, 2048, "%s is only %ld bytes", path, size);
    }
    struct stat st;
    cr_assert_eq(stat(tmp_path("plots/data/confusion_test.dat"), &st), 0);
    cr_assert_neq(stat(tmp_path("plots/colour_stats_detector_agreement.png"), &st), 0);
}

Test(plot, svg_format)
{
    struct rn_error err = {{0}};
    write_synthetic_run(tmpdir);
    int n = -1;
    cr_assert_eq(rn_plot_run(tmpdir, "svg", &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, N_EXPECTED);
    for (int i = 0; i < N_EXPECTED; i++) {
        char path[600], head[256] = {0};
        snprintf(path, sizeof path, "%s/plots/%s.svg", tmpdir, expected_figures[i]);
        FILE *f = fopen(path, "r");
        cr_assert_not_null(f, "missing %s", path);
        cr_assert_gt(fread(head, 1, sizeof head - 1, f), 0);
        fclose(f);
        cr_assert_not_null(strstr(head, "<svg"), "%s: %s", path, head);
    }
}

Test(plot, one_epoch_and_no_steps_per_epoch)
{
    struct rn_error err = {{0}};
    char file[512];
    snprintf(file, sizeof file, "%s/run.h5", tmpdir);
    struct rn_results *r = create_or_die(file);
    double xs[3] = {10, 20, 30}, vs[3] = {2.0, 1.0, 0.7}, e = 1, ve = 0.6, acc = 0.81;
    cr_assert_eq(rn_results_append_metric(r, "train/loss", xs, vs, 3, &err), 0);
    cr_assert_eq(rn_results_append_metric(r, "val/loss", &e, &ve, 1, &err), 0);
    cr_assert_eq(rn_results_append_metric(r, "val/accuracy", &e, &acc, 1, &err), 0);
    rn_results_close(r);
    int n = -1;
    cr_assert_eq(rn_plot_run(tmpdir, NULL, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 1);
    /* Without steps_per_epoch the x axis is in steps; epoch 1 sits at step 30. */
    FILE *f = fopen(tmp_path("plots/data/curve_epoch_val_accuracy.dat"), "r");
    cr_assert_not_null(f);
    char line[256];
    double x = 0, v = 0;
    cr_assert_not_null(fgets(line, sizeof line, f)); /* header */
    cr_assert_eq(fscanf(f, "%lf %lf", &x, &v), 2);
    fclose(f);
    cr_assert_float_eq(x, 30.0, 1e-9);
    cr_assert_float_eq(v, 81.0, 1e-9);
}

Test(plot, not_a_run_directory)
{
    struct rn_error err = {{0}};
    int n = -1;
    cr_assert_eq(rn_plot_run(tmpdir, "png", &n, &err), -1);
    cr_assert_eq(n, 0);
    char want[600];
    snprintf(want, sizeof want, "%s/run.h5: cannot open: ", tmpdir);
    cr_assert_not_null(strstr(err.msg, want), "%s", err.msg);
    cr_assert_not_null(strstr(err.msg, "; is this a run directory?"), "%s", err.msg);
    cr_assert_eq(rn_plot_run(tmpdir, "jpeg", &n, &err), -1);
    cr_assert_not_null(strstr(err.msg, "jpeg"), "%s", err.msg);
}

Test(plot, gnuplot_missing)
{
    struct rn_error err = {{0}};
    char file[512];
    snprintf(file, sizeof file, "%s/run.h5", tmpdir);
    struct rn_results *r = create_or_die(file);
    double e = 1, v = 0.5;
    cr_assert_eq(rn_results_append_metric(r, "val/loss", &e, &v, 1, &err), 0);
    rn_results_close(r);
    setenv("PATH", "/nonexistent", 1);
    int n = -1;
    cr_assert_eq(rn_plot_run(tmpdir, "png", &n, &err), -1);
    cr_assert_not_null(strstr(err.msg, "cannot run gnuplot"), "%s", err.msg);
}

Test(plot, gnuplot_error_is_reported)
{
    struct rn_error err = {{0}};
    char scripts[512], path[600];
    snprintf(scripts, sizeof scripts, "%s/scripts", tmpdir);
    cr_assert_eq(mkdir(scripts, 0777), 0);
    snprintf(path, sizeof path, "%s/curves.gp", scripts);
    FILE *f = fopen(path, "w");
    fputs("set terminal dumb\nset output out\nplot no_such_function(x)\n", f);
    fclose(f);
    setenv("RUNNER_PLOTS", scripts, 1);

    char file[512];
    snprintf(file, sizeof file, "%s/run.h5", tmpdir);
    struct rn_results *r = create_or_die(file);
    double e = 1, v = 0.5;
    cr_assert_eq(rn_results_append_metric(r, "val/loss", &e, &v, 1, &err), 0);
    rn_results_close(r);
    int n = -1;
    cr_assert_eq(rn_plot_run(tmpdir, "png", &n, &err), -1);
    cr_assert_eq(n, 0);
    cr_assert_not_null(strstr(err.msg, "curves: gnuplot failed"), "%s", err.msg);
    cr_assert_not_null(strstr(err.msg, "line 3: undefined function: no_such_function"), "%s",
                       err.msg);
    cr_assert_null(strchr(err.msg, '\n'), "%s", err.msg);
}
