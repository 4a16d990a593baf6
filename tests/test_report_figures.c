/* The two figures of the study's report that had no counterpart (issue 17):
 *  - `samples` with `augmented: true` draws the training images after the
 *    run's own augmentations (Figure 29): the stored tensors equal what
 *    rn_augment_batch makes of those images with the run's settings, seed
 *    and step 0, bit for bit;
 *  - `gradcam` with `methods: [gradcam, gradcam++]` computes each method's
 *    maps for the same inputs, equal to those of one analysis per method,
 *    and draws them side by side in one figure;
 * and the exact messages for what they refuse. Each run trains the committed
 * MNIST fixture for one epoch (a few seconds). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "runner/augment.h"
#include "runner/results.h"
#include "sh.h"

#define SRC RN_SOURCE_DIR

static char tmp[64];

static void make_tmp(void)
{
    snprintf(tmp, sizeof tmp, "/tmp/rn_figs_XXXXXX");
    cr_assert_not_null(mkdtemp(tmp));
}

static void remove_tmp(void)
{
    sh(NULL, 0, "rm -rf '%s'", tmp);
}

TestSuite(figures, .init = make_tmp, .fini = remove_tmp, .timeout = 240);

/* tmp/x.yaml: the fixture experiment with train and analyses sections
 * appended (its own are replaced). */
static void write_spec(const char *train, const char *analyses)
{
    char path[128];
    snprintf(path, sizeof path, "%s/x.yaml", tmp);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f,
            "name: x\nextends: %s/e2e_lazy.yaml\ndata: {dir: %s/mnist}\ntrain:\n%s"
            "analyses:\n%s",
            RN_FIXTURES, RN_FIXTURES, train, analyses);
    cr_assert_eq(fclose(f), 0);
}

/* Runs tmp/x.yaml into tmp/run; returns the exit status, output into out. */
static int run_spec(char *out, size_t cap)
{
    return sh(out, cap, "cd %s && OMP_NUM_THREADS=1 %s %s/x.yaml --out %s/run --quiet 2>&1", SRC,
              RN_RUNNER_BIN, tmp, tmp);
}

static void *read_ds(struct rn_results *r, const char *path, enum rn_dtype t, int *nd, int dims[4])
{
    void *data = NULL;
    struct rn_error err;
    cr_assert_eq(rn_results_read(r, path, t, &data, nd, dims, &err), 0, "%s", err.msg);
    return data;
}

static int file_exists(const char *dir, const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    struct stat st;
    return stat(path, &st) == 0 && st.st_size > 0;
}

#define M1_AUGMENT                                                                                 \
    "  augment:\n    - {type: channel_permute}\n"                                                  \
    "    - {type: colour_jitter, brightness: 0.3, contrast: 0.3, saturation: 0.5, hue: 0.5}\n"

Test(figures, samples_augmented_are_what_augment_makes)
{
    write_spec("  epochs: 1\n" M1_AUGMENT,
               "  - {type: samples, split: train, n: 12, augmented: true}\n");
    char out[8192];
    cr_assert_eq(run_spec(out, sizeof out), 0, "%s", out);
    char path[256];
    snprintf(path, sizeof path, "%s/run/run.h5", tmp);
    struct rn_results *r;
    struct rn_error err;
    cr_assert_eq(rn_results_open(&r, path, &err), 0, "%s", err.msg);
    int nd, d[4], nd2, d2[4];
    /* the split's own first 12 images, as the analysis stored them */
    uint8_t *img = read_ds(r, "/analyses/samples/train/images", RN_DTYPE_U8, &nd, d);
    cr_assert_eq(nd, 4);
    cr_assert(d[0] == 12 && d[1] == 3 && d[2] == 28 && d[3] == 28);
    float *pix = read_ds(r, "/analyses/samples/train_augmented/pixels", RN_DTYPE_F32, &nd2, d2);
    uint8_t *aug = read_ds(r, "/analyses/samples/train_augmented/images", RN_DTYPE_U8, &nd2, d2);
    cr_assert(nd2 == 4 && !memcmp(d, d2, sizeof d));
    const size_t n = 12 * 3 * 28 * 28;
    /* independently: the run's augmentation (task4_m1's), its seed (the
     * fixture's 3), optimizer step 0, sample i = image i */
    float *want = malloc(sizeof(float) * n);
    for (size_t k = 0; k < n; k++)
        want[k] = img[k] * (1.0f / 255.0f);
    const struct rn_augment a = {1, 1, 0.3f, 0.3f, 0.5f, 0.5f};
    cr_assert_eq(rn_augment_batch(&a, want, 12, 3, 28, 28, 3, 0, &err), 0, "%s", err.msg);
    size_t changed = 0;
    for (size_t k = 0; k < n; k++) {
        cr_assert(memcmp(&pix[k], &want[k], sizeof(float)) == 0,
                  "pixel %zu: stored %.9g, augment makes %.9g", k, pix[k], want[k]);
        cr_assert_eq(aug[k], (uint8_t)lrintf(255 * want[k]), "byte %zu", k);
        changed += aug[k] != img[k];
    }
    cr_assert_gt(changed, n / 2, "the augmentation changes most pixels (%zu of %zu)", changed, n);
    /* labels are the split's; predictions are made on the augmented images */
    int32_t *labels = read_ds(r, "/analyses/samples/train_augmented/labels", RN_DTYPE_I32, &nd, d);
    int32_t *own = read_ds(r, "/analyses/samples/train/labels", RN_DTYPE_I32, &nd2, d2);
    cr_assert(d[0] == 12 && !memcmp(labels, own, 12 * sizeof *labels));
    cr_assert(rn_results_exists(r, "/analyses/samples/train_augmented/preds"));
    char *what = NULL;
    cr_assert_eq(
        rn_results_get_attr_str(r, "/analyses/samples/train_augmented", "augment", &what, &err), 0);
    cr_assert_str_eq(what, "channel permutation + ColorJitter (brightness 0.3, contrast 0.3, "
                           "saturation 0.5, hue 0.5)");
    free(what);
    rn_results_close(r);
    snprintf(path, sizeof path, "%s/run/plots", tmp);
    cr_assert(file_exists(path, "samples_train.png"));
    cr_assert(file_exists(path, "samples_train_augmented.png"));
    free(img);
    free(pix);
    free(aug);
    free(want);
    free(labels);
    free(own);
}

Test(figures, samples_augmented_needs_an_augmentation)
{
    write_spec("  epochs: 1\n", "  - {type: samples, n: 4, augmented: true}\n");
    char out[4096], want[512];
    cr_assert_eq(run_spec(out, sizeof out), 1, "%s", out);
    snprintf(want, sizeof want,
             "runner: %s/x.yaml:7:38: error: analysis 'samples' (samples): augmented: true needs "
             "the "
             "run's train.augment (channel_permute, colour_jitter), and this run has none\n",
             tmp);
    cr_assert_str_eq(out, want);
}

#define CASES "cases: \"0 red; 1 red; 2 yellow\""

Test(figures, gradcam_methods_side_by_side)
{
    write_spec("  epochs: 1\n",
               "  - {type: gradcam, name: both, node: conv2, methods: [gradcam, gradcam++], " CASES
               "}\n"
               "  - {type: gradcam, name: plain, node: conv2, " CASES "}\n"
               "  - {type: gradcam, name: pp, node: conv2, method: gradcam++, " CASES "}\n");
    char out[8192];
    cr_assert_eq(run_spec(out, sizeof out), 0, "%s", out);
    char path[256];
    snprintf(path, sizeof path, "%s/run/run.h5", tmp);
    struct rn_results *r;
    struct rn_error err;
    cr_assert_eq(rn_results_open(&r, path, &err), 0, "%s", err.msg);
    int nd, d[4], nd1, d1[4];
    float *both = read_ds(r, "/analyses/both/maps", RN_DTYPE_F32, &nd, d);
    cr_assert_eq(nd, 4);
    cr_assert(d[0] == 2 && d[1] == 3 && d[2] == 28 && d[3] == 28, "(%d,%d,%d,%d)", d[0], d[1], d[2],
              d[3]);
    float *plain = read_ds(r, "/analyses/plain/maps", RN_DTYPE_F32, &nd1, d1);
    float *pp = read_ds(r, "/analyses/pp/maps", RN_DTYPE_F32, &nd1, d1);
    cr_assert(nd1 == 3 && d1[0] == 3);
    const size_t per = 3 * 28 * 28;
    cr_assert(memcmp(both, plain, per * sizeof(float)) == 0, "column 1 is Grad-CAM's maps");
    cr_assert(memcmp(both + per, pp, per * sizeof(float)) == 0, "column 2 is Grad-CAM++'s maps");
    cr_assert(memcmp(plain, pp, per * sizeof(float)) != 0, "the two methods differ");
    char *methods = NULL;
    cr_assert_eq(rn_results_get_attr_str(r, "/analyses/both", "methods", &methods, &err), 0);
    cr_assert_str_eq(methods, "gradcam;gradcam++");
    free(methods);
    rn_results_close(r);
    snprintf(path, sizeof path, "%s/run/plots", tmp);
    cr_assert(file_exists(path, "both.png") && file_exists(path, "plain.png"));
    /* one overlay file per input and method in the figure's data */
    snprintf(path, sizeof path, "%s/run/plots/data", tmp);
    cr_assert(file_exists(path, "both_2_overlay_1.dat"));
    free(both);
    free(plain);
    free(pp);
}

Test(figures, gradcam_method_or_methods)
{
    write_spec("  epochs: 1\n", "  - {type: gradcam, node: conv2, method: gradcam++, methods: "
                                "[gradcam, gradcam++], " CASES "}\n");
    char out[4096], want[512];
    cr_assert_eq(
        sh(out, sizeof out, "cd %s && %s validate %s/x.yaml 2>&1", SRC, RN_RUNNER_BIN, tmp), 1,
        "%s", out);
    snprintf(want, sizeof want,
             "%s/x.yaml:7:62: error: analysis 'gradcam' (gradcam): give method or "
             "methods, not both (methods: [gradcam++, ...] draws them side by side)\n",
             tmp);
    cr_assert_str_eq(out, want);
    write_spec("  epochs: 1\n",
               "  - {type: gradcam, node: conv2, methods: [gradcam, gradcam+], " CASES "}\n");
    cr_assert_eq(
        sh(out, sizeof out, "cd %s && %s validate %s/x.yaml 2>&1", SRC, RN_RUNNER_BIN, tmp), 1,
        "%s", out);
    snprintf(want, sizeof want,
             "%s/x.yaml:7:53: error: analysis #1 (gradcam): methods #2: method: expected "
             "one of gradcam|gradcam++, got 'gradcam+' (did you mean 'gradcam'?)\n",
             tmp);
    cr_assert_str_eq(out, want);
}
