/* data.h - datasets: IDX reader, the colouriser of SPEC.md, splits, and the
 * pixel-based colour detector.
 *
 * Images stay uint8 (n, c, h, w) in memory; the model sees x / 255 as float.
 * Everything random comes from rng.h streams keyed by the data seed and the
 * image index, so the same seed gives the same bytes whatever the thread
 * count.
 */
#ifndef RN_DATA_H
#define RN_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "rng.h"

#define RN_N_COLOURS 10
#define RN_MAX_SPLITS 4
#define RN_NO_COLOUR 255

struct rn_palette {
    uint8_t rgb[RN_N_COLOURS][3]; /* colour k is digit k's colour */
    char names[RN_N_COLOURS][16]; /* "red", "green", ... */
};
/* SPEC.md's palette: 0 red, 1 green, 2 blue, 3 yellow, 4 cyan, 5 magenta,
 * 6 orange, 7 black, 8 purple, 9 brown. */
extern const struct rn_palette rn_palette_study;

enum rn_colouring {
    RN_COLOURING_NONE,       /* 1-channel grey MNIST as is */
    RN_COLOURING_BACKGROUND, /* stroke white, background uint8(noise * colour) */
    RN_COLOURING_STROKE,     /* stroke uint8(noise * colour), background black */
};

enum rn_test_rule {
    RN_RULE_CONFLICTING, /* uniform over the 9 colours that are not the label's */
    RN_RULE_RANDOM,      /* uniform over all 10 */
    RN_RULE_ALIGNED,     /* the label's colour */
};

struct rn_data_config {
    char source[32]; /* "mnist" | "fashion_mnist" */
    char dir[512];   /* folder holding the four IDX files, raw or .gz */
    enum rn_colouring colouring;
    float noise_lo, noise_hi; /* texture range; 1,1 = flat */
    int threshold;            /* foreground: intensity > threshold */
    struct rn_palette palette;
    double bias; /* P(label's colour) in the easy set */
    enum rn_test_rule test_rule;
    double val_fraction; /* share of the easy set held out as val */
    int train_limit;     /* use the first k MNIST train images (0 = all) */
    int test_limit;      /* use the first k MNIST test images (0 = all) */
    uint64_t seed;
};

struct rn_split {
    char name[16]; /* "train", "val", "test" */
    int n, c, h, w;
    uint8_t *images;  /* (n, c, h, w), owned */
    uint8_t *labels;  /* (n) digit / class, owned */
    uint8_t *colours; /* (n) palette index the generator drew; RN_NO_COLOUR if uncoloured */
};

struct rn_data {
    struct rn_split splits[RN_MAX_SPLITS];
    int n_splits;
    int n_classes; /* 10 */
};

/* One IDX file (magic 0x00000801 labels or 0x00000803 images), raw or gzip
 * (detected from the first two bytes, not the name). */
struct rn_idx {
    int ndim;      /* 1 labels, 3 images */
    int dims[3];   /* (n) or (n, rows, cols) */
    uint8_t *data; /* owned */
};
/* Errors: missing file, wrong magic, truncated data ("file ends after N of M
 * bytes"), each naming the path. */
/* Limits: an image side (rows, cols) at most RN_IDX_MAX_SIDE, the count at
 * most INT_MAX, and a raw file's size exactly 4 + 4 ndim + the product of the
 * dimensions (checked before anything is allocated: "truncated: N of M data
 * bytes present", or "N bytes follow the M data bytes its header announces");
 * a gzip file is read as it comes and refused when it ends early. */
#define RN_IDX_MAX_SIDE 4096
int rn_idx_read(const char *path, struct rn_idx *out, struct rn_error *err);
/* The same from len bytes in memory (raw IDX only), name standing for the path. */
int rn_idx_read_mem(const void *buf, size_t len, const char *name, struct rn_idx *out,
                    struct rn_error *err);
void rn_idx_free(struct rn_idx *idx);

/* Loads the source named by cfg (finding "<dir>/train-images-idx3-ubyte" or
 * the same name + ".gz", etc.), checks image/label counts agree, colours it
 * and splits it into train/val (easy) and test (hard, by test_rule).
 * Uncoloured: splits train/val/test of 1-channel images. */
int rn_data_load(const struct rn_data_config *cfg, struct rn_data *out, struct rn_error *err);
void rn_data_free(struct rn_data *d);
/* One line "PATH size BYTES mtime SECONDS" for each IDX file cfg names that
 * exists: run.h5 records it (/config data_files) and a resume compares it,
 * so a data file changed or truncated between runs is noticed. Lines that
 * do not fit cap are left out. */
void rn_data_fingerprint(const struct rn_data_config *cfg, char *out, size_t cap);
/* NULL if there is no such split. */
struct rn_split *rn_data_split(struct rn_data *d, const char *name);

/* As rn_data_load, with the colouring done by the backend of device (its
 * data table's colourise) when it is not the CPU and the data is coloured:
 * the grey sources go up once, the coloured splits are made there and kept
 * (dev_images[k]: (n, 3, h, w) uint8 in the device's memory, the caller's
 * to release; NULL for an empty split) and copied down into out, which
 * holds the same bytes as rn_data_load's. Uncoloured data, or a device
 * without the entry: rn_data_load, dev_images all NULL. */
int rn_data_load_on(const struct rn_data_config *cfg, struct rn_data *out, int device,
                    void *dev_images[RN_MAX_SPLITS], struct rn_error *err);

/* Image j of a split as rn_data_load makes it: the generator (cfg->seed,
 * stream, src) draws the colour (the easy rule with cfg->bias for
 * RN_STREAM_DATA_TRAIN, cfg->test_rule otherwise), then rn_colourise paints
 * grey (h, w) with it into out (3, h, w); *colour gets the palette index. */
void rn_colour_image(const struct rn_data_config *cfg, int stream, const uint8_t *grey, int h,
                     int w, int label, int src, uint8_t *out, uint8_t *colour);

/* Colours one grey image (h, w) into out (3, h, w) with palette colour rgb.
 * Draws one noise value per pixel from r (background pixels only for
 * BACKGROUND, stroke pixels only for STROKE), in row-major order: noise =
 * (float)(noise_lo + (double)(noise_hi - noise_lo) * u), the channel
 * uint8(noise * c) in float (the double sum is exact whether or not a
 * compiler fuses it, so every build and the CUDA kernel agree bit for bit). */
void rn_colourise(const uint8_t *grey, int h, int w, const uint8_t rgb[3],
                  enum rn_colouring colouring, float noise_lo, float noise_hi, int threshold,
                  struct rn_rng *r, uint8_t *out);

/* Palette index from a colour name ("red") or a number ("0"); -1 if neither. */
int rn_palette_index(const struct rn_palette *p, const char *s);

/* The colour detector of SPEC.md for images of unknown origin: mean colour
 * of the non-white pixels (any channel < 250), nearest (L2) palette colour
 * scaled by texture_mean (0.7 for U(0.4, 1.0)). Returns the palette index. */
int rn_colour_detect(const uint8_t *img, int h, int w, const struct rn_palette *p,
                     float texture_mean);

/* A backend's data kernels (backend.h: its `data` table; NULL there: the
 * dataset stays on the host, is coloured there and goes up batch by batch). */
struct rn_data_kernels {
    /* A batch from a dataset that lives on the device: out[i] =
     * images[idx[i]] as float / 255, sample = bytes (= floats) per image;
     * images, idx and out are the backend's memory. */
    int (*gather_images)(const uint8_t *images, const int32_t *idx, int n, size_t sample,
                         float *out, struct rn_error *err);
    /* The coloured dataset made on the device (rn_colour_image): out image
     * j (3, h, w) and colours[j] from grey source src[j] (of grey, (., h,
     * w)) whose digit is labels[src[j]], with generator (cfg->seed, stream,
     * src[j]). grey, labels, src, out and colours are the backend's memory;
     * cfg is host memory. */
    int (*colourise)(const struct rn_data_config *cfg, int stream, const uint8_t *grey,
                     const uint8_t *labels, const int32_t *src, int n, int h, int w, uint8_t *out,
                     uint8_t *colours, struct rn_error *err);
};

#endif
