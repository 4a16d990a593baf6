/* data.c - IDX reader, colouriser, splits and colour detector (SPEC.md,
 * "Data (Task 0)").
 *
 * Every random number used to colour image i comes from its own generator
 * rn_rng_init(seed, stream, i), so images can be coloured in any order and on
 * any number of threads with identical bytes as the result.
 */
#include "data.h"

#include "backend.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

const struct rn_palette rn_palette_study = {
    .rgb =
        {
            {255, 0, 0},   /* 0 red */
            {0, 255, 0},   /* 1 green */
            {0, 0, 255},   /* 2 blue */
            {255, 255, 0}, /* 3 yellow */
            {0, 255, 255}, /* 4 cyan */
            {255, 0, 255}, /* 5 magenta */
            {255, 128, 0}, /* 6 orange */
            {0, 0, 0},     /* 7 black */
            {128, 0, 255}, /* 8 purple */
            {139, 69, 19}, /* 9 brown */
        },
    .names = {"red", "green", "blue", "yellow", "cyan", "magenta", "orange", "black", "purple",
              "brown"},
};

#define IDX_MAGIC_LABELS 0x00000801u
#define IDX_MAGIC_IMAGES 0x00000803u

/* ---- IDX reader ---------------------------------------------------------- */

/* A file read either directly or through zlib, or a buffer in memory; the
 * choice between raw and gzip is made from the first two bytes, since a name
 * ending in .gz proves nothing. size: the raw bytes there are (file or
 * buffer), or -1 for gzip (not known before it is read). */
struct idx_source {
    FILE *f;
    gzFile gz;
    const uint8_t *mem;
    size_t mem_len, mem_pos;
    long long size;
};

static size_t source_read(struct idx_source *s, uint8_t *buf, size_t n)
{
    if (s->mem) {
        size_t k = s->mem_len - s->mem_pos < n ? s->mem_len - s->mem_pos : n;
        memcpy(buf, s->mem + s->mem_pos, k);
        s->mem_pos += k;
        return k;
    }
    if (s->f)
        return fread(buf, 1, n, s->f);
    size_t got = 0;
    while (got < n) {
        /* gzread takes an unsigned count; keep chunks well inside it. */
        size_t want = n - got;
        if (want > (1u << 30))
            want = 1u << 30;
        int r = gzread(s->gz, buf + got, (unsigned)want);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    return got;
}

static void source_close(struct idx_source *s)
{
    if (s->f)
        fclose(s->f);
    if (s->gz)
        gzclose(s->gz);
}

static int source_open(struct idx_source *s, const char *path, struct rn_error *err)
{
    memset(s, 0, sizeof *s);
    FILE *f = fopen(path, "rb");
    if (!f)
        return rn_errorf(err, "%s: cannot open: %s", path, strerror(errno));
    uint8_t head[2] = {0, 0};
    size_t got = fread(head, 1, 2, f);
    if (got == 2 && head[0] == 0x1f && head[1] == 0x8b) {
        fclose(f);
        s->gz = gzopen(path, "rb");
        s->size = -1;
        if (!s->gz)
            return rn_errorf(err, "%s: cannot open: %s", path,
                             errno ? strerror(errno) : "zlib could not open it");
        return 0;
    }
    struct stat st;
    s->size = fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) ? (long long)st.st_size : -1;
    rewind(f);
    s->f = f;
    return 0;
}

static uint32_t be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

void rn_idx_free(struct rn_idx *idx)
{
    if (!idx)
        return;
    free(idx->data);
    idx->data = NULL;
}

/* Reads the header; checks the dimensions against RN_IDX_MAX_DIM and, when the
 * size is known, the data they announce against it. *total: data bytes. */
static int idx_header(struct idx_source *s, const char *path, struct rn_idx *out, size_t *total,
                      struct rn_error *err)
{
    uint8_t header[16];
    size_t got = source_read(s, header, 4);
    uint32_t magic = 0;
    for (size_t i = 0; i < got; i++)
        magic |= (uint32_t)header[i] << (24 - 8 * i);
    if (got < 4 || (magic != IDX_MAGIC_LABELS && magic != IDX_MAGIC_IMAGES))
        return rn_errorf(err,
                         "%s: not an IDX file (magic 0x%08x; expected 0x00000803 for images or "
                         "0x00000801 for labels)",
                         path, magic);
    int ndim = (int)(magic & 0xff);
    size_t dims_bytes = 4 * (size_t)ndim;
    got = source_read(s, header + 4, dims_bytes);
    if (got < dims_bytes)
        return rn_errorf(err, "%s: truncated: IDX header ends after %zu of %zu bytes", path,
                         4 + got, 4 + dims_bytes);
    *total = 1;
    for (int d = 0; d < ndim; d++) {
        uint32_t v = be32(header + 4 + 4 * d);
        /* the item count may be anything the file holds; an image side is small */
        uint32_t max = d == 0 ? INT_MAX : RN_IDX_MAX_SIDE;
        if (v > max)
            return rn_errorf(err, "%s: dimension %d is %u; this reader allows at most %u", path, d,
                             v, max);
        out->dims[d] = (int)v;
        if (v && *total > SIZE_MAX / v)
            return rn_errorf(err, "%s: dimensions overflow the address space", path);
        *total *= v;
    }
    out->ndim = ndim;
    if (s->size >= 0) {
        size_t have = (size_t)s->size - 4 - dims_bytes;
        if (have < *total)
            return rn_errorf(err, "%s: truncated: %zu of %zu data bytes present", path, have,
                             *total);
        if (have > *total)
            return rn_errorf(err,
                             "%s: %zu bytes follow the %zu data bytes its header announces "
                             "(a wrong or damaged file)",
                             path, have - *total, *total);
    }
    return 0;
}

static int idx_read(struct idx_source *s, const char *path, struct rn_idx *out,
                    struct rn_error *err)
{
    size_t total;
    if (idx_header(s, path, out, &total, err)) {
        source_close(s);
        return -1;
    }
    /* Grow the buffer as data arrives instead of trusting the header's size:
     * a corrupt gzip header should give "truncated", not a giant allocation. */
    size_t cap = total < ((size_t)1 << 20) ? total : ((size_t)1 << 20);
    uint8_t *data = rn_malloc(cap ? cap : 1, err);
    if (!data) {
        source_close(s);
        return -1;
    }
    size_t have = 0;
    for (;;) {
        size_t r = source_read(s, data + have, cap - have);
        have += r;
        if (have < cap || cap == total)
            break;
        size_t ncap = cap * 2 < total ? cap * 2 : total;
        uint8_t *nd = realloc(data, ncap);
        if (!nd) {
            free(data);
            source_close(s);
            return rn_errorf(err, "%s: out of memory growing the buffer to %zu bytes", path, ncap);
        }
        data = nd;
        cap = ncap;
    }
    source_close(s);
    if (have < total) {
        free(data);
        return rn_errorf(err, "%s: truncated: %zu of %zu data bytes present", path, have, total);
    }
    out->data = data;
    return 0;
}

int rn_idx_read(const char *path, struct rn_idx *out, struct rn_error *err)
{
    memset(out, 0, sizeof *out);
    struct idx_source s;
    if (source_open(&s, path, err))
        return -1;
    return idx_read(&s, path, out, err);
}

int rn_idx_read_mem(const void *buf, size_t len, const char *name, struct rn_idx *out,
                    struct rn_error *err)
{
    memset(out, 0, sizeof *out);
    static const uint8_t empty[1];
    struct idx_source s = {.mem = len ? buf : empty, .mem_len = len, .size = (long long)len};
    return idx_read(&s, name, out, err);
}

/* ---- colouriser ---------------------------------------------------------- */

void rn_colourise(const uint8_t *grey, int h, int w, const uint8_t rgb[3],
                  enum rn_colouring colouring, float noise_lo, float noise_hi, int threshold,
                  struct rn_rng *r, uint8_t *out)
{
    int hw = h * w;
    uint8_t *o0 = out, *o1 = out + hw, *o2 = out + 2 * hw;
    const double lo = noise_lo, span = noise_hi - noise_lo;
    float c0 = rgb[0], c1 = rgb[1], c2 = rgb[2];
    if (colouring == RN_COLOURING_STROKE) {
        for (int p = 0; p < hw; p++) {
            if (grey[p] > threshold) {
                float noise = (float)(lo + span * rn_rng_uniform(r));
                o0[p] = (uint8_t)(noise * c0);
                o1[p] = (uint8_t)(noise * c1);
                o2[p] = (uint8_t)(noise * c2);
            } else {
                o0[p] = o1[p] = o2[p] = 0;
            }
        }
        return;
    }
    for (int p = 0; p < hw; p++) {
        if (grey[p] > threshold) {
            o0[p] = o1[p] = o2[p] = 255;
        } else {
            float noise = (float)(lo + span * rn_rng_uniform(r));
            o0[p] = (uint8_t)(noise * c0);
            o1[p] = (uint8_t)(noise * c1);
            o2[p] = (uint8_t)(noise * c2);
        }
    }
}

int rn_colour_detect(const uint8_t *img, int h, int w, const struct rn_palette *p,
                     float texture_mean)
{
    int hw = h * w;
    const uint8_t *c0 = img, *c1 = img + hw, *c2 = img + 2 * hw;
    double s0 = 0, s1 = 0, s2 = 0;
    long count = 0;
    for (int i = 0; i < hw; i++) {
        if (c0[i] < 250 || c1[i] < 250 || c2[i] < 250) {
            s0 += c0[i];
            s1 += c1[i];
            s2 += c2[i];
            count++;
        }
    }
    if (count == 0)
        return 7; /* all white: nothing but stroke, so treat it as black */
    double m0 = s0 / count, m1 = s1 / count, m2 = s2 / count;
    int best = 0;
    double best_d = INFINITY;
    for (int k = 0; k < RN_N_COLOURS; k++) {
        double d0 = m0 - texture_mean * p->rgb[k][0];
        double d1 = m1 - texture_mean * p->rgb[k][1];
        double d2 = m2 - texture_mean * p->rgb[k][2];
        double d = d0 * d0 + d1 * d1 + d2 * d2;
        if (d < best_d) {
            best_d = d;
            best = k;
        }
    }
    return best;
}

/* ---- loading ------------------------------------------------------------- */

void rn_data_free(struct rn_data *d)
{
    if (!d)
        return;
    for (int i = 0; i < d->n_splits; i++) {
        free(d->splits[i].images);
        free(d->splits[i].labels);
        free(d->splits[i].colours);
    }
    memset(d, 0, sizeof *d);
}

struct rn_split *rn_data_split(struct rn_data *d, const char *name)
{
    for (int i = 0; i < d->n_splits; i++)
        if (strcmp(d->splits[i].name, name) == 0)
            return &d->splits[i];
    return NULL;
}

/* Finds "<dir>/<name>" or "<dir>/<name>.gz" and writes the one found to path. */
static int find_idx(const char *dir, const char *name, char *path, size_t size,
                    struct rn_error *err)
{
    struct stat st;
    snprintf(path, size, "%s/%s", dir, name);
    if (stat(path, &st) == 0)
        return 0;
    snprintf(path, size, "%s/%s.gz", dir, name);
    if (stat(path, &st) == 0)
        return 0;
    return rn_errorf(err,
                     "%s/%s: not found (nor .gz); run scripts/fetch-mnist.sh or set data.dir to "
                     "the folder holding the MNIST IDX files",
                     dir, name);
}

void rn_data_fingerprint(const struct rn_data_config *cfg, char *out, size_t cap)
{
    static const char *const names[] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                        "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};
    size_t len = 0;
    out[0] = 0;
    for (int i = 0; i < 4; i++) {
        char path[600];
        struct stat st;
        if (find_idx(cfg->dir, names[i], path, sizeof path, NULL) || stat(path, &st) != 0)
            continue;
        int k = snprintf(out + len, cap - len, "%s size %lld mtime %lld\n", path,
                         (long long)st.st_size, (long long)st.st_mtime);
        if (k < 0 || (size_t)k >= cap - len) { /* cut at a whole line */
            out[len] = 0;
            return;
        }
        len += (size_t)k;
    }
}

/* Reads one images/labels pair and checks it is self-consistent. */
static int load_pair(const char *dir, const char *images_name, const char *labels_name,
                     struct rn_idx *images, struct rn_idx *labels, struct rn_error *err)
{
    char ipath[600], lpath[600];
    memset(images, 0, sizeof *images);
    memset(labels, 0, sizeof *labels);
    if (find_idx(dir, images_name, ipath, sizeof ipath, err) ||
        find_idx(dir, labels_name, lpath, sizeof lpath, err))
        return -1;
    if (rn_idx_read(ipath, images, err))
        return -1;
    if (images->ndim != 3) {
        rn_idx_free(images);
        return rn_errorf(err, "%s: holds labels (magic 0x00000801), expected images (0x00000803)",
                         ipath);
    }
    if (rn_idx_read(lpath, labels, err)) {
        rn_idx_free(images);
        return -1;
    }
    if (labels->ndim != 1) {
        rn_idx_free(images);
        rn_idx_free(labels);
        return rn_errorf(err, "%s: holds images (magic 0x00000803), expected labels (0x00000801)",
                         lpath);
    }
    if (images->dims[0] != labels->dims[0]) {
        rn_errorf(err, "%s: %d images but %s has %d labels", ipath, images->dims[0], lpath,
                  labels->dims[0]);
        rn_idx_free(images);
        rn_idx_free(labels);
        return -1;
    }
    for (int i = 0; i < labels->dims[0]; i++) {
        if (labels->data[i] >= RN_N_COLOURS) {
            rn_errorf(err, "%s: label %d of item %d is outside 0..9", lpath, labels->data[i], i);
            rn_idx_free(images);
            rn_idx_free(labels);
            return -1;
        }
    }
    return 0;
}

static int split_alloc(struct rn_split *s, const char *name, int n, int c, int h, int w,
                       struct rn_error *err)
{
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name);
    s->n = n;
    s->c = c;
    s->h = h;
    s->w = w;
    s->images = rn_malloc((size_t)n * c * h * w, err);
    s->labels = rn_malloc((size_t)n, err);
    s->colours = rn_malloc((size_t)n, err);
    if (!s->images || !s->labels || !s->colours)
        return -1;
    return 0;
}

/* Colour draw of one image; the generator continues into rn_colourise. */
static int draw_easy(struct rn_rng *r, double bias, int label)
{
    float u = rn_rng_uniform(r);
    return (u < bias) ? label : (int)rn_rng_below(r, RN_N_COLOURS);
}

static int draw_hard(struct rn_rng *r, enum rn_test_rule rule, int label)
{
    switch (rule) {
    case RN_RULE_CONFLICTING: {
        int k = (int)rn_rng_below(r, RN_N_COLOURS - 1);
        return k + (k >= label);
    }
    case RN_RULE_RANDOM:
        return (int)rn_rng_below(r, RN_N_COLOURS);
    case RN_RULE_ALIGNED:
    default:
        return label;
    }
}

void rn_colour_image(const struct rn_data_config *cfg, int stream, const uint8_t *grey, int h,
                     int w, int label, int src, uint8_t *out, uint8_t *colour)
{
    struct rn_rng r;
    rn_rng_init(&r, cfg->seed, (uint64_t)stream, (uint64_t)src);
    int c = stream == RN_STREAM_DATA_TRAIN ? draw_easy(&r, cfg->bias, label)
                                           : draw_hard(&r, cfg->test_rule, label);
    *colour = (uint8_t)c;
    rn_colourise(grey, h, w, cfg->palette.rgb[c], cfg->colouring, cfg->noise_lo, cfg->noise_hi,
                 cfg->threshold, &r, out);
}

/* Fills dst item j from source item src_idx[j] (identity when src_idx is
 * NULL). Uncoloured data is copied; otherwise image src_idx[j] is coloured
 * with generator (seed, stream, src_idx[j]) whatever j is. */
static void fill_split(const struct rn_data_config *cfg, struct rn_split *dst,
                       const struct rn_idx *images, const struct rn_idx *labels, const int *src_idx,
                       int stream)
{
    int h = dst->h, w = dst->w, hw = h * w;
    int n = dst->n;
#pragma omp parallel for schedule(static)
    for (int j = 0; j < n; j++) {
        int i = src_idx ? src_idx[j] : j;
        const uint8_t *grey = images->data + (size_t)i * hw;
        int label = labels->data[i];
        dst->labels[j] = (uint8_t)label;
        if (cfg->colouring == RN_COLOURING_NONE) {
            memcpy(dst->images + (size_t)j * hw, grey, (size_t)hw);
            dst->colours[j] = RN_NO_COLOUR;
            continue;
        }
        rn_colour_image(cfg, stream, grey, h, w, label, i, dst->images + (size_t)j * 3 * hw,
                        &dst->colours[j]);
    }
}

/* The grey sources of one split on the device (first n images and labels). */
struct dev_source {
    void *grey, *labels;
};

static int source_up(const struct rn_backend *be, const struct rn_idx *images,
                     const struct rn_idx *labels, int n, struct dev_source *d, struct rn_error *err)
{
    size_t bytes = (size_t)n * images->dims[1] * images->dims[2];
    return be->alloc(&d->grey, bytes, err) || be->upload(d->grey, images->data, bytes, err) ||
                   be->alloc(&d->labels, (size_t)n, err) ||
                   be->upload(d->labels, labels->data, (size_t)n, err)
               ? -1
               : 0;
}

/* fill_split on the device: the split's images are made in *dev_out (kept)
 * and copied down into dst with their colours. */
static int fill_split_on(const struct rn_backend *be, const struct rn_data_config *cfg,
                         struct rn_split *dst, const struct rn_idx *labels,
                         const struct dev_source *src, const int *src_idx, int stream,
                         void **dev_out, struct rn_error *err)
{
    const int n = dst->n, h = dst->h, w = dst->w;
    for (int j = 0; j < n; j++)
        dst->labels[j] = labels->data[src_idx ? src_idx[j] : j];
    if (n == 0)
        return 0;
    int32_t *ix = rn_malloc(sizeof(int32_t) * (size_t)n, err);
    if (!ix)
        return -1;
    for (int j = 0; j < n; j++)
        ix[j] = src_idx ? src_idx[j] : j;
    void *d_ix = NULL, *d_colours = NULL;
    const size_t bytes = (size_t)n * 3 * h * w;
    int rc = be->alloc(&d_ix, sizeof(int32_t) * (size_t)n, err) ||
             be->upload(d_ix, ix, sizeof(int32_t) * (size_t)n, err) ||
             be->alloc(dev_out, bytes, err) || be->alloc(&d_colours, (size_t)n, err) ||
             be->data->colourise(cfg, stream, src->grey, src->labels, d_ix, n, h, w, *dev_out,
                                 d_colours, err) ||
             be->download(dst->images, *dev_out, bytes, err) ||
             be->download(dst->colours, d_colours, (size_t)n, err);
    be->release(d_ix);
    be->release(d_colours);
    free(ix);
    return rc ? rn_error_prefix(err, "colouring the %s split on %s", dst->name, be->name) : 0;
}

static int check_config(const struct rn_data_config *cfg, struct rn_error *err)
{
    if (strcmp(cfg->source, "mnist") != 0 && strcmp(cfg->source, "fashion_mnist") != 0)
        return rn_errorf(err, "data.source '%s' is unknown (valid: mnist, fashion_mnist)",
                         cfg->source);
    if (cfg->colouring != RN_COLOURING_NONE && cfg->colouring != RN_COLOURING_BACKGROUND &&
        cfg->colouring != RN_COLOURING_STROKE)
        return rn_errorf(err, "data.colouring %d is not a known colouring", (int)cfg->colouring);
    if (!(cfg->bias >= 0.0 && cfg->bias <= 1.0))
        return rn_errorf(err, "data.bias %g is outside [0, 1]", cfg->bias);
    if (!(cfg->val_fraction >= 0.0 && cfg->val_fraction < 1.0))
        return rn_errorf(err, "data.val_fraction %g is outside [0, 1)", cfg->val_fraction);
    if (!(cfg->noise_lo >= 0.0f && cfg->noise_lo <= cfg->noise_hi && cfg->noise_hi <= 1.0f))
        return rn_errorf(err, "data noise range [%g, %g] must satisfy 0 <= lo <= hi <= 1",
                         cfg->noise_lo, cfg->noise_hi);
    if (cfg->train_limit < 0 || cfg->test_limit < 0)
        return rn_errorf(err, "data.train_limit and data.test_limit must be >= 0 (0 = all)");
    return 0;
}

int rn_data_load(const struct rn_data_config *cfg, struct rn_data *out, struct rn_error *err)
{
    return rn_data_load_on(cfg, out, RN_DEVICE_CPU, NULL, err);
}

int rn_data_load_on(const struct rn_data_config *cfg, struct rn_data *out, int device,
                    void *dev_images[RN_MAX_SPLITS], struct rn_error *err)
{
    memset(out, 0, sizeof *out);
    const struct rn_backend *be = device == RN_DEVICE_CPU ? NULL : rn_backend_of(device);
    if (dev_images)
        memset(dev_images, 0, sizeof(void *) * RN_MAX_SPLITS);
    if (!be || !be->data || !dev_images || cfg->colouring == RN_COLOURING_NONE)
        be = NULL;
    struct dev_source d_train = {0}, d_test = {0};
    if (check_config(cfg, err))
        return -1;

    struct rn_idx tr_img, tr_lab, te_img, te_lab;
    if (load_pair(cfg->dir, "train-images-idx3-ubyte", "train-labels-idx1-ubyte", &tr_img, &tr_lab,
                  err))
        return -1;
    if (load_pair(cfg->dir, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", &te_img, &te_lab,
                  err)) {
        rn_idx_free(&tr_img);
        rn_idx_free(&tr_lab);
        return -1;
    }

    int rc = -1;
    int *perm = NULL;
    int h = tr_img.dims[1], w = tr_img.dims[2];
    int c = cfg->colouring == RN_COLOURING_NONE ? 1 : 3;
    if (te_img.dims[1] != h || te_img.dims[2] != w) {
        rn_errorf(err, "%s: test images are %dx%d but train images are %dx%d", cfg->dir,
                  te_img.dims[1], te_img.dims[2], h, w);
        goto done;
    }
    int n_easy = tr_img.dims[0], n_hard = te_img.dims[0];
    if (cfg->train_limit > 0 && cfg->train_limit < n_easy)
        n_easy = cfg->train_limit;
    if (cfg->test_limit > 0 && cfg->test_limit < n_hard)
        n_hard = cfg->test_limit;

    perm = rn_malloc((size_t)n_easy * sizeof *perm, err);
    if (!perm)
        goto done;
    for (int i = 0; i < n_easy; i++)
        perm[i] = i;
    struct rn_rng r;
    rn_rng_init(&r, cfg->seed, RN_STREAM_SPLIT, 0);
    rn_rng_shuffle(&r, perm, n_easy);
    int n_val = (int)lround(n_easy * cfg->val_fraction);
    int n_train = n_easy - n_val;

    out->n_classes = RN_N_COLOURS;
    out->n_splits = 3;
    if (split_alloc(&out->splits[0], "train", n_train, c, h, w, err) ||
        split_alloc(&out->splits[1], "val", n_val, c, h, w, err) ||
        split_alloc(&out->splits[2], "test", n_hard, c, h, w, err))
        goto done;

    /* val takes the first n_val permuted indices, train the rest. */
    if (!be) {
        fill_split(cfg, &out->splits[0], &tr_img, &tr_lab, perm + n_val, RN_STREAM_DATA_TRAIN);
        fill_split(cfg, &out->splits[1], &tr_img, &tr_lab, perm, RN_STREAM_DATA_TRAIN);
        fill_split(cfg, &out->splits[2], &te_img, &te_lab, NULL, RN_STREAM_DATA_TEST);
        rc = 0;
        goto done;
    }
    if (source_up(be, &tr_img, &tr_lab, n_easy, &d_train, err) ||
        source_up(be, &te_img, &te_lab, n_hard, &d_test, err)) {
        rn_error_prefix(err, "the grey images to %s", be->name);
        goto done;
    }
    if (fill_split_on(be, cfg, &out->splits[0], &tr_lab, &d_train, perm + n_val,
                      RN_STREAM_DATA_TRAIN, &dev_images[0], err) ||
        fill_split_on(be, cfg, &out->splits[1], &tr_lab, &d_train, perm, RN_STREAM_DATA_TRAIN,
                      &dev_images[1], err) ||
        fill_split_on(be, cfg, &out->splits[2], &te_lab, &d_test, NULL, RN_STREAM_DATA_TEST,
                      &dev_images[2], err))
        goto done;
    rc = 0;

done:
    if (be) {
        be->release(d_train.grey);
        be->release(d_train.labels);
        be->release(d_test.grey);
        be->release(d_test.labels);
        if (rc)
            for (int k = 0; k < RN_MAX_SPLITS; k++) {
                be->release(dev_images[k]);
                dev_images[k] = NULL;
            }
    }
    free(perm);
    rn_idx_free(&tr_img);
    rn_idx_free(&tr_lab);
    rn_idx_free(&te_img);
    rn_idx_free(&te_lab);
    if (rc)
        rn_data_free(out);
    return rc;
}

int rn_palette_index(const struct rn_palette *p, const char *s)
{
    char *end;
    long k = strtol(s, &end, 10);
    if (*s && !*end)
        return k >= 0 && k < RN_N_COLOURS ? (int)k : -1;
    for (int i = 0; i < RN_N_COLOURS; i++)
        if (strcmp(p->names[i], s) == 0)
            return i;
    return -1;
}
