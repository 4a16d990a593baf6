/* test_data.c - IDX reader, colouriser, splits and colour detector on the
 * committed fixture (first 1000 MNIST train and first 300 test images). */
#include <criterion/criterion.h>

#include <dirent.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "runner/data.h"

#define FIX RN_FIXTURES "/mnist"
#define HW 784

static const char *idx_names[4] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                   "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};

static struct rn_data_config study_config(const char *dir)
{
    struct rn_data_config cfg;
    memset(&cfg, 0, sizeof cfg);
    snprintf(cfg.source, sizeof cfg.source, "mnist");
    snprintf(cfg.dir, sizeof cfg.dir, "%s", dir);
    cfg.colouring = RN_COLOURING_BACKGROUND;
    cfg.noise_lo = 0.4f;
    cfg.noise_hi = 1.0f;
    cfg.threshold = 50;
    cfg.palette = rn_palette_study;
    cfg.bias = 0.95;
    cfg.test_rule = RN_RULE_CONFLICTING;
    cfg.val_fraction = 0.1;
    cfg.seed = 0;
    return cfg;
}

/* ---- helpers: temp dirs and raw copies of the fixture ---- */

static char *make_tmpdir(void)
{
    static char dir[64];
    snprintf(dir, sizeof dir, "/tmp/rn_test_data_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    return dir;
}

static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char path[1024];
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

/* Decompresses fixture file `name`.gz into memory; caller frees. */
static uint8_t *read_fixture_raw(const char *name, size_t *n)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.gz", FIX, name);
    gzFile g = gzopen(path, "rb");
    cr_assert_not_null(g, "cannot open %s", path);
    size_t cap = 1 << 20, len = 0;
    uint8_t *buf = malloc(cap);
    int r;
    while ((r = gzread(g, buf + len, (unsigned)(cap - len))) > 0) {
        len += (size_t)r;
        if (len == cap)
            buf = realloc(buf, cap *= 2);
    }
    gzclose(g);
    *n = len;
    return buf;
}

static void write_file(const char *dir, const char *name, const uint8_t *buf, size_t n)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(buf, 1, n, f), n);
    fclose(f);
}

static void write_gz(const char *dir, const char *name, const uint8_t *buf, size_t n)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    gzFile g = gzopen(path, "wb");
    cr_assert_not_null(g);
    cr_assert_eq(gzwrite(g, buf, (unsigned)n), (int)n);
    gzclose(g);
}

/* Writes raw (uncompressed) copies of all four fixture files into dir. */
static void copy_fixture_raw(const char *dir)
{
    for (int i = 0; i < 4; i++) {
        size_t n;
        uint8_t *b = read_fixture_raw(idx_names[i], &n);
        write_file(dir, idx_names[i], b, n);
        free(b);
    }
}

static void assert_same_data(struct rn_data *a, struct rn_data *b)
{
    cr_assert_eq(a->n_splits, b->n_splits);
    for (int s = 0; s < a->n_splits; s++) {
        struct rn_split *x = &a->splits[s], *y = &b->splits[s];
        cr_assert_str_eq(x->name, y->name);
        cr_assert_eq(x->n, y->n);
        cr_assert_eq(x->c, y->c);
        size_t sz = (size_t)x->n * x->c * x->h * x->w;
        cr_assert_eq(memcmp(x->images, y->images, sz), 0, "split %s images differ", x->name);
        cr_assert_eq(memcmp(x->labels, y->labels, (size_t)x->n), 0);
        cr_assert_eq(memcmp(x->colours, y->colours, (size_t)x->n), 0);
    }
}

static int data_differs(struct rn_data *a, struct rn_data *b)
{
    for (int s = 0; s < a->n_splits; s++) {
        struct rn_split *x = &a->splits[s], *y = &b->splits[s];
        size_t sz = (size_t)x->n * x->c * x->h * x->w;
        if (x->n != y->n || memcmp(x->images, y->images, sz) != 0)
            return 1;
    }
    return 0;
}

/* The train/val permutation the contract prescribes. */
static int *split_perm(uint64_t seed, int n)
{
    int *perm = malloc(sizeof *perm * (size_t)n);
    for (int i = 0; i < n; i++)
        perm[i] = i;
    struct rn_rng r;
    rn_rng_init(&r, seed, RN_STREAM_SPLIT, 0);
    rn_rng_shuffle(&r, perm, n);
    return perm;
}

/* ---- IDX reader ---- */

Test(idx, reads_fixture)
{
    struct rn_error err;
    struct rn_idx a;
    int rc = rn_idx_read(FIX "/train-images-idx3-ubyte.gz", &a, &err);
    cr_assert_eq(rc, 0, "%s", err.msg);
    cr_assert_eq(a.ndim, 3);
    cr_assert_eq(a.dims[0], 1000);
    cr_assert_eq(a.dims[1], 28);
    cr_assert_eq(a.dims[2], 28);
    rn_idx_free(&a);

    cr_assert_eq(rn_idx_read(FIX "/train-labels-idx1-ubyte.gz", &a, &err), 0, "%s", err.msg);
    cr_assert_eq(a.ndim, 1);
    cr_assert_eq(a.dims[0], 1000);
    cr_assert_eq(a.data[0], 5); /* MNIST's first training digit */
    rn_idx_free(&a);

    cr_assert_eq(rn_idx_read(FIX "/t10k-images-idx3-ubyte.gz", &a, &err), 0, "%s", err.msg);
    cr_assert_eq(a.dims[0], 300);
    cr_assert_eq(a.dims[1], 28);
    rn_idx_free(&a);

    cr_assert_eq(rn_idx_read(FIX "/t10k-labels-idx1-ubyte.gz", &a, &err), 0, "%s", err.msg);
    cr_assert_eq(a.dims[0], 300);
    cr_assert_eq(a.data[0], 7); /* MNIST's first test digit */
    rn_idx_free(&a);
    rn_idx_free(&a); /* second free is harmless */
}

Test(idx, raw_and_gz_read_identically)
{
    char *dir = make_tmpdir();
    copy_fixture_raw(dir);
    struct rn_error err;
    for (int i = 0; i < 4; i++) {
        char raw[1024], gz[1024];
        snprintf(raw, sizeof raw, "%s/%s", dir, idx_names[i]);
        snprintf(gz, sizeof gz, "%s/%s.gz", FIX, idx_names[i]);
        struct rn_idx a, b;
        cr_assert_eq(rn_idx_read(raw, &a, &err), 0, "%s", err.msg);
        cr_assert_eq(rn_idx_read(gz, &b, &err), 0, "%s", err.msg);
        cr_assert_eq(a.ndim, b.ndim);
        size_t n = 1;
        for (int d = 0; d < a.ndim; d++) {
            cr_assert_eq(a.dims[d], b.dims[d]);
            n *= (size_t)a.dims[d];
        }
        cr_assert_eq(memcmp(a.data, b.data, n), 0);
        rn_idx_free(&a);
        rn_idx_free(&b);
    }
    /* The whole pipeline gives the same bytes from raw files as from .gz. */
    struct rn_data_config cr = study_config(dir), cg = study_config(FIX);
    struct rn_data dr, dg;
    cr_assert_eq(rn_data_load(&cr, &dr, &err), 0, "%s", err.msg);
    cr_assert_eq(rn_data_load(&cg, &dg, &err), 0, "%s", err.msg);
    assert_same_data(&dr, &dg);
    rn_data_free(&dr);
    rn_data_free(&dg);
    remove_dir(dir);
}

Test(idx, gzip_detected_by_content_not_name)
{
    /* A gzip file without .gz and a raw file named .gz both read. */
    char *dir = make_tmpdir();
    size_t n;
    uint8_t *b = read_fixture_raw("t10k-labels-idx1-ubyte", &n);
    write_gz(dir, "labels_plain_name", b, n);
    write_file(dir, "labels_raw.gz", b, n);
    struct rn_error err;
    struct rn_idx a;
    char path[1024];
    snprintf(path, sizeof path, "%s/labels_plain_name", dir);
    cr_assert_eq(rn_idx_read(path, &a, &err), 0, "%s", err.msg);
    cr_assert_eq(a.dims[0], 300);
    cr_assert_eq(a.data[0], 7);
    rn_idx_free(&a);
    snprintf(path, sizeof path, "%s/labels_raw.gz", dir);
    cr_assert_eq(rn_idx_read(path, &a, &err), 0, "%s", err.msg);
    cr_assert_eq(a.dims[0], 300);
    rn_idx_free(&a);
    free(b);
    remove_dir(dir);
}

Test(idx, missing_file)
{
    struct rn_error err;
    struct rn_idx a;
    cr_assert_eq(rn_idx_read("/nonexistent/dir/x-idx1-ubyte", &a, &err), -1);
    cr_assert_str_eq(err.msg, "/nonexistent/dir/x-idx1-ubyte: cannot open: No such file or directory");
    cr_assert_null(a.data);
}

Test(idx, wrong_magic)
{
    char *dir = make_tmpdir();
    size_t n;
    uint8_t *b = read_fixture_raw("train-labels-idx1-ubyte", &n);
    b[3] = 0x02; /* 0x00000802 */
    write_file(dir, "bad", b, n);
    write_gz(dir, "bad.gz", b, n);
    free(b);
    struct rn_error err;
    struct rn_idx a;
    char path[1024], want[2048];
    snprintf(path, sizeof path, "%s/bad", dir);
    cr_assert_eq(rn_idx_read(path, &a, &err), -1);
    snprintf(want, sizeof want,
             "%s: not an IDX file (magic 0x00000802; expected 0x00000803 for images or "
             "0x00000801 for labels)",
             path);
    cr_assert_str_eq(err.msg, want);

    snprintf(path, sizeof path, "%s/bad.gz", dir);
    cr_assert_eq(rn_idx_read(path, &a, &err), -1);
    snprintf(want, sizeof want,
             "%s: not an IDX file (magic 0x00000802; expected 0x00000803 for images or "
             "0x00000801 for labels)",
             path);
    cr_assert_str_eq(err.msg, want);

    /* A text file is not IDX either. */
    write_file(dir, "text", (const uint8_t *)"hello world\n", 12);
    snprintf(path, sizeof path, "%s/text", dir);
    cr_assert_eq(rn_idx_read(path, &a, &err), -1);
    snprintf(want, sizeof want,
             "%s: not an IDX file (magic 0x68656c6c; expected 0x00000803 for images or "
             "0x00000801 for labels)",
             path);
    cr_assert_str_eq(err.msg, want);
    remove_dir(dir);
}

Test(idx, truncated)
{
    char *dir = make_tmpdir();
    size_t n;
    uint8_t *b = read_fixture_raw("t10k-images-idx3-ubyte", &n);
    cr_assert_eq(n, 16 + 300 * HW);
    write_file(dir, "short", b, 16 + 1000);
    write_gz(dir, "short.gz", b, 16 + 12345);
    free(b);
    struct rn_error err;
    struct rn_idx a;
    char path[1024], want[2048];
    snprintf(path, sizeof path, "%s/short", dir);
    cr_assert_eq(rn_idx_read(path, &a, &err), -1);
    snprintf(want, sizeof want, "%s: truncated: 1000 of 235200 data bytes present", path);
    cr_assert_str_eq(err.msg, want);
    cr_assert_null(a.data);

    snprintf(path, sizeof path, "%s/short.gz", dir);
    cr_assert_eq(rn_idx_read(path, &a, &err), -1);
    snprintf(want, sizeof want, "%s: truncated: 12345 of 235200 data bytes present", path);
    cr_assert_str_eq(err.msg, want);
    remove_dir(dir);
}

/* ---- rn_data_load errors ---- */

Test(load, count_mismatch)
{
    char *dir = make_tmpdir();
    copy_fixture_raw(dir);
    /* 300 test labels next to 1000 train images. */
    size_t n;
    uint8_t *b = read_fixture_raw("t10k-labels-idx1-ubyte", &n);
    write_file(dir, "train-labels-idx1-ubyte", b, n);
    free(b);
    struct rn_data_config cfg = study_config(dir);
    struct rn_data d;
    struct rn_error err;
    cr_assert_eq(rn_data_load(&cfg, &d, &err), -1);
    char want[2048];
    snprintf(want, sizeof want,
             "%s/train-images-idx3-ubyte: 1000 images but %s/train-labels-idx1-ubyte has 300 "
             "labels",
             dir, dir);
    cr_assert_str_eq(err.msg, want);
    cr_assert_eq(d.n_splits, 0);
    remove_dir(dir);
}

Test(load, missing_file)
{
    char *dir = make_tmpdir();
    struct rn_data_config cfg = study_config(dir);
    struct rn_data d;
    struct rn_error err;
    char want[2048];
    cr_assert_eq(rn_data_load(&cfg, &d, &err), -1);
    snprintf(want, sizeof want,
             "%s/train-images-idx3-ubyte: not found (nor .gz); run scripts/fetch-mnist.sh or set "
             "data.dir to the folder holding the MNIST IDX files",
             dir);
    cr_assert_str_eq(err.msg, want);

    /* Everything but the test labels. */
    copy_fixture_raw(dir);
    char path[1024];
    snprintf(path, sizeof path, "%s/t10k-labels-idx1-ubyte", dir);
    unlink(path);
    cr_assert_eq(rn_data_load(&cfg, &d, &err), -1);
    snprintf(want, sizeof want,
             "%s/t10k-labels-idx1-ubyte: not found (nor .gz); run scripts/fetch-mnist.sh or set "
             "data.dir to the folder holding the MNIST IDX files",
             dir);
    cr_assert_str_eq(err.msg, want);
    remove_dir(dir);
}

Test(load, corrupt_file_message_passes_through)
{
    char *dir = make_tmpdir();
    copy_fixture_raw(dir);
    size_t n;
    uint8_t *b = read_fixture_raw("t10k-images-idx3-ubyte", &n);
    write_file(dir, "t10k-images-idx3-ubyte", b, 16 + 500);
    free(b);
    struct rn_data_config cfg = study_config(dir);
    struct rn_data d;
    struct rn_error err;
    cr_assert_eq(rn_data_load(&cfg, &d, &err), -1);
    char want[2048];
    snprintf(want, sizeof want,
             "%s/t10k-images-idx3-ubyte: truncated: 500 of 235200 data bytes present", dir);
    cr_assert_str_eq(err.msg, want);
    remove_dir(dir);
}

Test(load, unknown_source)
{
    struct rn_data_config cfg = study_config(FIX);
    snprintf(cfg.source, sizeof cfg.source, "cifar");
    struct rn_data d;
    struct rn_error err;
    cr_assert_eq(rn_data_load(&cfg, &d, &err), -1);
    cr_assert(strstr(err.msg, "cifar") != NULL, "%s", err.msg);
}

/* ---- colouriser ---- */

Test(colour, splits_and_bias)
{
    struct rn_data_config cfg = study_config(FIX);
    struct rn_data d;
    struct rn_error err;
    cr_assert_eq(rn_data_load(&cfg, &d, &err), 0, "%s", err.msg);
    cr_assert_eq(d.n_splits, 3);
    cr_assert_eq(d.n_classes, 10);
    cr_assert_str_eq(d.splits[0].name, "train");
    cr_assert_str_eq(d.splits[1].name, "val");
    cr_assert_str_eq(d.splits[2].name, "test");
    struct rn_split *tr = rn_data_split(&d, "train"), *va = rn_data_split(&d, "val"),
                    *te = rn_data_split(&d, "test");
    cr_assert_null(rn_data_split(&d, "nope"));
    cr_assert_eq(tr->n, 900);
    cr_assert_eq(va->n, 100);
    cr_assert_eq(te->n, 300);
    cr_assert_eq(tr->c, 3);
    cr_assert_eq(tr->h, 28);
    cr_assert_eq(tr->w, 28);

    int same = 0;
    for (int i = 0; i < tr->n; i++)
        same += tr->colours[i] == tr->labels[i];
    for (int i = 0; i < va->n; i++)
        same += va->colours[i] == va->labels[i];
    double share = same / 1000.0;
    cr_assert(share >= 0.93 && share <= 0.97, "easy share with label colour %.3f", share);

    int counts[10] = {0};
    for (int i = 0; i < te->n; i++) {
        cr_assert_neq(te->colours[i], te->labels[i], "hard image %d has its label's colour", i);
        cr_assert_lt(te->colours[i], 10);
        counts[te->colours[i]]++;
    }
    for (int k = 0; k < 10; k++)
        cr_assert_gt(counts[k], 10, "colour %d drawn only %d times in the hard set", k, counts[k]);
    rn_data_free(&d);
    rn_data_free(&d);
}

/* Train/val hold the permuted easy images (val first in the permutation),
 * and every byte equals what the documented generator sequence gives. */
Test(colour, matches_documented_generator)
{
    struct rn_data_config cfg = study_config(FIX);
    struct rn_data d;
    struct rn_error err;
    cr_assert_eq(rn_data_load(&cfg, &d, &err), 0, "%s", err.msg);
    struct rn_idx gi, gl, ti, tl;
    cr_assert_eq(rn_idx_read(FIX "/train-images-idx3-ubyte.gz", &gi, &err), 0);
    cr_assert_eq(rn_idx_read(FIX "/train-labels-idx1-ubyte.gz", &gl, &err), 0);
    cr_assert_eq(rn_idx_read(FIX "/t10k-images-idx3-ubyte.gz", &ti, &err), 0);
    cr_assert_eq(rn_idx_read(FIX "/t10k-labels-idx1-ubyte.gz", &tl, &err), 0);
    int *perm = split_perm(0, 1000);
    uint8_t img[3 * HW];
    for (int j = 0; j < 1000; j++) {
        struct rn_split *s = j < 100 ? &d.splits[1] : &d.splits[0];
        int k = j < 100 ? j : j - 100;
        int i = perm[j];
        cr_assert_eq(s->labels[k], gl.data[i]);
        struct rn_rng r;
        rn_rng_init(&r, 0, RN_STREAM_DATA_TRAIN, (uint64_t)i);
        float u = rn_rng_uniform(&r);
        int colour = u < 0.95 ? gl.data[i] : (int)rn_rng_below(&r, 10);
        cr_assert_eq(s->colours[k], colour, "easy image %d", i);
        rn_colourise(gi.data + (size_t)i * HW, 28, 28, rn_palette_study.rgb[colour],
                     RN_COLOURING_BACKGROUND, 0.4f, 1.0f, 50, &r, img);
        cr_assert_eq(memcmp(img, s->images + (size_t)k * 3 * HW, sizeof img), 0);
    }
    for (int i = 0; i < 300; i++) {
        struct rn_rng r;
        rn_rng_init(&r, 0, RN_STREAM_DATA_TEST, (uint64_t)i);
        int kk = (int)rn_rng_below(&r, 9);
        int colour = kk + (kk >= tl.data[i]);
        cr_assert_eq(d.splits[2].labels[i], tl.data[i]);
        cr_assert_eq(d.splits[2].colours[i], colour);
        rn_colourise(ti.data + (size_t)i * HW, 28, 28, rn_palette_study.rgb[colour],
                     RN_COLOURING_BACKGROUND, 0.4f, 1.0f, 50, &r, img);
        cr_assert_eq(memcmp(img, d.splits[2].images + (size_t)i * 3 * HW, sizeof img), 0);
    }
    free(perm);
    rn_idx_free(&gi);
    rn_idx_free(&gl);
    rn_idx_free(&ti);
    rn_idx_free(&tl);
    rn_data_free(&d);
}

Test(colour, pixel_values)
{
    struct rn_data_config cfg = study_config(FIX);
    struct rn_data d;
    struct rn_error err;
    cr_assert_eq(rn_data_load(&cfg, &d, &err), 0, "%s", err.msg);
    struct rn_idx ti;
    cr_assert_eq(rn_idx_read(FIX "/t10k-images-idx3-ubyte.gz", &ti, &err), 0);
    struct rn_split *te = &d.splits[2];
    const int lo = (uint8_t)(0.4f * 255.0f);
    int n_red = 0, min_r = 255, max_r = 0;
    for (int i = 0; i < te->n; i++) {
        const uint8_t *g = ti.data + (size_t)i * HW, *x = te->images + (size_t)i * 3 * HW;
        for (int p = 0; p < HW; p++) {
            if (g[p] > 50) {
                cr_assert(x[p] == 255 && x[HW + p] == 255 && x[2 * HW + p] == 255,
                          "foreground pixel %d of test image %d not white", p, i);
            } else if (te->colours[i] == 0) {
                cr_assert(x[p] >= lo && x[p] <= 255, "red background %d below %d", x[p], lo);
                cr_assert_eq(x[HW + p], 0);
                cr_assert_eq(x[2 * HW + p], 0);
                if (x[p] < min_r)
                    min_r = x[p];
                if (x[p] > max_r)
                    max_r = x[p];
            }
        }
        n_red += te->colours[i] == 0;
    }
    cr_assert_gt(n_red, 0);
    /* Textured, not flat: the noise spans most of [0.4, 1.0]. */
    cr_assert_lt(min_r, 110);
    cr_assert_gt(max_r, 245);

    /* Easy set (permuted): every pixel is white or the image's colour times noise. */
    struct rn_split *tr = &d.splits[0];
    for (int i = 0; i < tr->n; i++) {
        const uint8_t *x = tr->images + (size_t)i * 3 * HW;
        const uint8_t *c = rn_palette_study.rgb[tr->colours[i]];
        for (int p = 0; p < HW; p++) {
            if (x[p] == 255 && x[HW + p] == 255 && x[2 * HW + p] == 255)
                continue;
            for (int ch = 0; ch < 3; ch++) {
                int v = x[ch * HW + p];
                cr_assert(v >= (int)(0.4f * c[ch]) && v <= c[ch], "train %d pixel %d ch %d = %d",
                          i, p, ch, v);
            }
        }
    }
    rn_idx_free(&ti);
    rn_data_free(&d);
}

Test(colour, seed_determinism)
{
    struct rn_data_config cfg = study_config(FIX);
    struct rn_data a, b, c;
    struct rn_error err;
    cr_assert_eq(rn_data_load(&cfg, &a, &err), 0, "%s", err.msg);
    cr_assert_eq(rn_data_load(&cfg, &b, &err), 0, "%s", err.msg);
    assert_same_data(&a, &b);
    cfg.seed = 1;
    cr_assert_eq(rn_data_load(&cfg, &c, &err), 0, "%s", err.msg);
    cr_assert(data_differs(&a, &c), "seed 1 gave the same bytes as seed 0");
    /* Every split differs, including the train/val permutation. */
    for (int s = 0; s < 3; s++)
        cr_assert_neq(memcmp(a.splits[s].images, c.splits[s].images,
                             (size_t)a.splits[s].n * 3 * HW),
                      0, "split %s unchanged by the seed", a.splits[s].name);
    rn_data_free(&a);
    rn_data_free(&b);
    rn_data_free(&c);
}

Test(colour, thread_count_independent)
{
    struct rn_data_config cfg = study_config(FIX);
    struct rn_data a, b;
    struct rn_error err;
    omp_set_num_threads(1);
    cr_assert_eq(rn_data_load(&cfg, &a, &err), 0, "%s", err.msg);
    omp_set_num_threads(2);
    cr_assert_eq(rn_data_load(&cfg, &b, &err), 0, "%s", err.msg);
    assert_same_data(&a, &b);
    rn_data_free(&a);
    rn_data_free(&b);
}

Test(colour, flat_texture_is_palette_colour)
{
    struct rn_data_config cfg = study_config(FIX);
    cfg.noise_lo = cfg.noise_hi = 1.0f;
    struct rn_data d;
    struct rn_error err;
    cr_assert_eq(rn_data_load(&cfg, &d, &err), 0, "%s", err.msg);
    struct rn_idx ti;
    cr_assert_eq(rn_idx_read(FIX "/t10k-images-idx3-ubyte.gz", &ti, &err), 0);
    struct rn_split *te = &d.splits[2];
    for (int i = 0; i < te->n; i++) {
        const uint8_t *g = ti.data + (size_t)i * HW, *x = te->images + (size_t)i * 3 * HW;
        const uint8_t *c = rn_palette_study.rgb[te->colours[i]];
        for (int p = 0; p < HW; p++) {
            for (int ch = 0; ch < 3; ch++)
                cr_assert_eq(x[ch * HW + p], g[p] > 50 ? 255 : c[ch]);
        }
    }
    rn_idx_free(&ti);
    rn_data_free(&d);
}

Test(colour, stroke_colouring)
{
    struct rn_data_config cfg = study_config(FIX);
    cfg.colouring = RN_COLOURING_STROKE;
    struct rn_data d;
    struct rn_error err;
    cr_assert_eq(rn_data_load(&cfg, &d, &err), 0, "%s", err.msg);
    struct rn_idx ti;
    cr_assert_eq(rn_idx_read(FIX "/t10k-images-idx3-ubyte.gz", &ti, &err), 0);
    struct rn_split *te = &d.splits[2];
    for (int i = 0; i < te->n; i++) {
        const uint8_t *g = ti.data + (size_t)i * HW, *x = te->images + (size_t)i * 3 * HW;
        const uint8_t *c = rn_palette_study.rgb[te->colours[i]];
        for (int p = 0; p < HW; p++) {
            for (int ch = 0; ch < 3; ch++) {
                int v = x[ch * HW + p];
                if (g[p] > 50)
                    cr_assert(v >= (int)(0.4f * c[ch]) && v <= c[ch]);
                else
                    cr_assert_eq(v, 0);
            }
        }
    }
    rn_idx_free(&ti);
    rn_data_free(&d);
}

Test(colour, draws_noise_only_where_used)
{
    /* Background colouring of a 2x2 image with 2 background pixels draws
     * exactly 2 numbers; stroke colouring draws for the other 2. */
    const uint8_t grey[4] = {0, 200, 50, 51};
    const uint8_t rgb[3] = {255, 128, 0};
    uint8_t out[12];
    struct rn_rng r, ref;
    rn_rng_init(&r, 7, RN_STREAM_DATA_TRAIN, 3);
    rn_rng_init(&ref, 7, RN_STREAM_DATA_TRAIN, 3);
    rn_colourise(grey, 2, 2, rgb, RN_COLOURING_BACKGROUND, 0.4f, 1.0f, 50, &r, out);
    float n0 = 0.4f + 0.6f * rn_rng_uniform(&ref);
    float n2 = 0.4f + 0.6f * rn_rng_uniform(&ref);
    cr_assert_eq(rn_rng_u32(&r), rn_rng_u32(&ref));
    /* CHW with the same noise for the three channels of a pixel. */
    cr_assert_eq(out[0], (uint8_t)(n0 * 255.0f));
    cr_assert_eq(out[4], (uint8_t)(n0 * 128.0f));
    cr_assert_eq(out[8], 0);
    cr_assert_eq(out[2], (uint8_t)(n2 * 255.0f));
    cr_assert_eq(out[6], (uint8_t)(n2 * 128.0f));
    for (int ch = 0; ch < 3; ch++) {
        cr_assert_eq(out[ch * 4 + 1], 255);
        cr_assert_eq(out[ch * 4 + 3], 255);
    }

    rn_rng_init(&r, 7, RN_STREAM_DATA_TRAIN, 3);
    rn_rng_init(&ref, 7, RN_STREAM_DATA_TRAIN, 3);
    rn_colourise(grey, 2, 2, rgb, RN_COLOURING_STROKE, 0.4f, 1.0f, 50, &r, out);
    float n1 = 0.4f + 0.6f * rn_rng_uniform(&ref);
    float n3 = 0.4f + 0.6f * rn_rng_uniform(&ref);
    cr_assert_eq(rn_rng_u32(&r), rn_rng_u32(&ref));
    cr_assert_eq(out[1], (uint8_t)(n1 * 255.0f));
    cr_assert_eq(out[3], (uint8_t)(n3 * 255.0f));
    cr_assert_eq(out[0], 0);
    cr_assert_eq(out[2], 0);
}

Test(colour, none_is_grey_copy)
{
    struct rn_data_config cfg = study_config(FIX);
    cfg.colouring = RN_COLOURING_NONE;
    struct rn_data d;
    struct rn_error err;
    cr_assert_eq(rn_data_load(&cfg, &d, &err), 0, "%s", err.msg);
    struct rn_idx gi, ti;
    cr_assert_eq(rn_idx_read(FIX "/train-images-idx3-ubyte.gz", &gi, &err), 0);
    cr_assert_eq(rn_idx_read(FIX "/t10k-images-idx3-ubyte.gz", &ti, &err), 0);
    cr_assert_eq(d.n_splits, 3);
    for (int s = 0; s < 3; s++) {
        cr_assert_eq(d.splits[s].c, 1);
        for (int i = 0; i < d.splits[s].n; i++)
            cr_assert_eq(d.splits[s].colours[i], RN_NO_COLOUR);
    }
    cr_assert_eq(memcmp(d.splits[2].images, ti.data, (size_t)300 * HW), 0);
    int *perm = split_perm(0, 1000);
    for (int j = 0; j < 1000; j++) {
        const uint8_t *x = j < 100 ? d.splits[1].images + (size_t)j * HW
                                   : d.splits[0].images + (size_t)(j - 100) * HW;
        cr_assert_eq(memcmp(x, gi.data + (size_t)perm[j] * HW, HW), 0);
    }
    free(perm);
    rn_idx_free(&gi);
    rn_idx_free(&ti);
    rn_data_free(&d);
}

Test(colour, limits_and_empty_val)
{
    struct rn_data_config cfg = study_config(FIX);
    cfg.val_fraction = 0.0;
    cfg.train_limit = 200;
    cfg.test_limit = 50;
    struct rn_data d;
    struct rn_error err;
    cr_assert_eq(rn_data_load(&cfg, &d, &err), 0, "%s", err.msg);
    cr_assert_eq(d.n_splits, 3);
    cr_assert_eq(rn_data_split(&d, "train")->n, 200);
    struct rn_split *va = rn_data_split(&d, "val");
    cr_assert_not_null(va);
    cr_assert_eq(va->n, 0);
    cr_assert_eq(rn_data_split(&d, "test")->n, 50);
    /* The limit takes the first k images: test images are unpermuted. */
    struct rn_data full;
    cfg.train_limit = cfg.test_limit = 0;
    cr_assert_eq(rn_data_load(&cfg, &full, &err), 0, "%s", err.msg);
    cr_assert_eq(memcmp(full.splits[2].images, d.splits[2].images, (size_t)50 * 3 * HW), 0);
    rn_data_free(&d);
    rn_data_free(&full);

    /* Limits larger than the data are harmless. */
    cfg.train_limit = 5000;
    cfg.val_fraction = 0.25;
    cr_assert_eq(rn_data_load(&cfg, &d, &err), 0, "%s", err.msg);
    cr_assert_eq(d.splits[0].n, 750);
    cr_assert_eq(d.splits[1].n, 250);
    rn_data_free(&d);
}

Test(colour, rules)
{
    struct rn_data_config cfg = study_config(FIX);
    cfg.test_rule = RN_RULE_ALIGNED;
    struct rn_data d;
    struct rn_error err;
    cr_assert_eq(rn_data_load(&cfg, &d, &err), 0, "%s", err.msg);
    for (int i = 0; i < d.splits[2].n; i++)
        cr_assert_eq(d.splits[2].colours[i], d.splits[2].labels[i]);
    rn_data_free(&d);

    cfg.test_rule = RN_RULE_RANDOM;
    cr_assert_eq(rn_data_load(&cfg, &d, &err), 0, "%s", err.msg);
    int same = 0;
    for (int i = 0; i < d.splits[2].n; i++)
        same += d.splits[2].colours[i] == d.splits[2].labels[i];
    /* ~30 of 300 expected; binomial sd ~5. */
    cr_assert(same >= 10 && same <= 55, "random rule kept the label colour %d times", same);
    rn_data_free(&d);

    cfg.bias = 1.0;
    cr_assert_eq(rn_data_load(&cfg, &d, &err), 0, "%s", err.msg);
    for (int i = 0; i < d.splits[0].n; i++)
        cr_assert_eq(d.splits[0].colours[i], d.splits[0].labels[i]);
    rn_data_free(&d);
}

/* ---- detector ---- */

Test(detect, agrees_with_generator)
{
    struct rn_data_config cfg = study_config(FIX);
    struct rn_data d;
    struct rn_error err;
    cr_assert_eq(rn_data_load(&cfg, &d, &err), 0, "%s", err.msg);
    int agree = 0, total = 0;
    for (int s = 0; s < 2; s++) {
        struct rn_split *sp = &d.splits[s];
        for (int i = 0; i < sp->n; i++) {
            int k = rn_colour_detect(sp->images + (size_t)i * 3 * HW, 28, 28, &rn_palette_study,
                                     0.7f);
            agree += k == sp->colours[i];
            total++;
        }
    }
    cr_assert_eq(total, 1000);
    cr_assert_geq(agree, 990, "detector agrees on %d of 1000", agree);
    rn_data_free(&d);
}

Test(detect, edge_cases)
{
    uint8_t img[3 * 4];
    memset(img, 255, sizeof img);
    cr_assert_eq(rn_colour_detect(img, 2, 2, &rn_palette_study, 0.7f), 7);
    /* Orange and brown apart once the palette is scaled by the texture mean. */
    for (int k = 0; k < 10; k++) {
        for (int p = 0; p < 4; p++)
            for (int ch = 0; ch < 3; ch++)
                img[ch * 4 + p] = (uint8_t)(0.7f * rn_palette_study.rgb[k][ch]);
        cr_assert_eq(rn_colour_detect(img, 2, 2, &rn_palette_study, 0.7f), k);
    }
    /* Equidistant from red and green: the lower index wins. */
    struct rn_palette p = rn_palette_study;
    for (int p_ = 0; p_ < 4; p_++) {
        img[p_] = 100;
        img[4 + p_] = 100;
        img[8 + p_] = 0;
    }
    memset(p.rgb, 0, sizeof p.rgb);
    p.rgb[3][0] = 200;
    p.rgb[5][1] = 200;
    for (int k = 0; k < 10; k++)
        if (k != 3 && k != 5)
            p.rgb[k][2] = 250;
    cr_assert_eq(rn_colour_detect(img, 2, 2, &p, 1.0f), 3);
}

Test(palette, study_values)
{
    const uint8_t want[10][3] = {{255, 0, 0},   {0, 255, 0},   {0, 0, 255}, {255, 255, 0},
                                 {0, 255, 255}, {255, 0, 255}, {255, 128, 0}, {0, 0, 0},
                                 {128, 0, 255}, {139, 69, 19}};
    const char *names[10] = {"red",    "green",  "blue",  "yellow", "cyan",
                             "magenta", "orange", "black", "purple", "brown"};
    for (int k = 0; k < 10; k++) {
        cr_assert_eq(memcmp(rn_palette_study.rgb[k], want[k], 3), 0, "colour %d", k);
        cr_assert_str_eq(rn_palette_study.names[k], names[k]);
    }
}
