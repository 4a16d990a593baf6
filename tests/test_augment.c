/* test_augment.c - channel permutation and ColorJitter: hand-computed pixels,
 * torchvision 0.14 reference outputs (tests/fixtures/augment_ref.h5, made by
 * tests/reference/make_augment_fixture.py), permutation frequencies, factor
 * ranges, the documented draw order, determinism across steps and threads. */
#include <criterion/criterion.h>

#include <hdf5.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner/augment.h"
#include "runner/rng.h"

/* Grayscale with torchvision's weights. */
static double gray(double r, double g, double b)
{
    return 0.2989 * r + 0.587 * g + 0.114 * b;
}

/* Textbook HSV hue in [0, 1) of a fully saturated colour (min 0, max 1). */
static double hue_of(double r, double g, double b)
{
    double mx = fmax(r, fmax(g, b)), mn = fmin(r, fmin(g, b)), d = mx - mn, h;
    cr_assert(d > 0.5, "(%g, %g, %g) is not saturated", r, g, b);
    if (mx == r)
        h = (g - b) / d;
    else if (mx == g)
        h = 2.0 + (b - r) / d;
    else
        h = 4.0 + (r - g) / d;
    h /= 6.0;
    return h < 0.0 ? h + 1.0 : h;
}

/* img (3, hw) from hw RGB triples. */
static void planar(float *img, const float (*px)[3], int hw)
{
    for (int i = 0; i < hw; i++)
        for (int c = 0; c < 3; c++)
            img[c * hw + i] = px[i][c];
}

static void expect_pixel(const float *img, int hw, int i, double r, double g, double b,
                         double tol, const char *what)
{
    double want[3] = {r, g, b};
    for (int c = 0; c < 3; c++)
        cr_expect(fabs(img[c * hw + i] - want[c]) <= tol,
                  "%s: pixel %d channel %d = %.7f, expected %.7f", what, i, c,
                  img[c * hw + i], want[c]);
}

/* ---- hand-computed single adjustments ---- */

Test(adjust, brightness)
{
    const float px[2][3] = {{0.2f, 0.5f, 0.9f}, {0.0f, 1.0f, 0.6f}};
    float img[6];
    planar(img, px, 2);
    rn_adjust_brightness(img, 2, 0.7f);
    /* 0.7 * x + 0.3 * 0 */
    expect_pixel(img, 2, 0, 0.14, 0.35, 0.63, 1e-6, "brightness 0.7");
    expect_pixel(img, 2, 1, 0.0, 0.7, 0.42, 1e-6, "brightness 0.7");
    planar(img, px, 2);
    rn_adjust_brightness(img, 2, 1.5f);
    /* 1.5 * 0.9 = 1.35 and 1.5 * 1.0 clamp to 1 */
    expect_pixel(img, 2, 0, 0.3, 0.75, 1.0, 1e-6, "brightness 1.5");
    expect_pixel(img, 2, 1, 0.0, 1.0, 0.9, 1e-6, "brightness 1.5");
}

Test(adjust, contrast)
{
    const float px[2][3] = {{0.2f, 0.5f, 0.9f}, {1.0f, 1.0f, 1.0f}};
    /* gray p0 = 0.2989*0.2 + 0.587*0.5 + 0.114*0.9 = 0.05978 + 0.2935 + 0.1026
     * = 0.45588; gray p1 = 0.9999; mean = 0.72789 */
    double mean = (0.45588 + 0.9999) / 2.0;
    cr_assert(fabs(mean - 0.5 * (gray(0.2, 0.5, 0.9) + gray(1, 1, 1))) < 1e-12);
    float img[6];
    planar(img, px, 2);
    rn_adjust_contrast(img, 2, 0.5f);
    /* 0.5 * x + 0.5 * 0.72789 */
    expect_pixel(img, 2, 0, 0.463945, 0.613945, 0.813945, 1e-6, "contrast 0.5");
    expect_pixel(img, 2, 1, 0.863945, 0.863945, 0.863945, 1e-6, "contrast 0.5");
    planar(img, px, 2);
    rn_adjust_contrast(img, 2, 2.0f);
    /* 2x - 0.72789: -0.32789 -> 0, 0.27211, 1.07211 -> 1; 1.27211 -> 1 */
    expect_pixel(img, 2, 0, 0.0, 0.27211, 1.0, 1e-6, "contrast 2");
    expect_pixel(img, 2, 1, 1.0, 1.0, 1.0, 1e-6, "contrast 2");
    planar(img, px, 2);
    rn_adjust_contrast(img, 2, 0.0f);
    /* factor 0: every value becomes the mean */
    expect_pixel(img, 2, 0, mean, mean, mean, 1e-6, "contrast 0");
    expect_pixel(img, 2, 1, mean, mean, mean, 1e-6, "contrast 0");
}

Test(adjust, saturation)
{
    const float px[2][3] = {{0.2f, 0.5f, 0.9f}, {0.3f, 0.3f, 0.3f}};
    /* l(p0) = 0.45588, l(p1) = 0.3 * 0.9999 = 0.29997 */
    float img[6];
    planar(img, px, 2);
    rn_adjust_saturation(img, 2, 0.0f);
    expect_pixel(img, 2, 0, 0.45588, 0.45588, 0.45588, 1e-6, "saturation 0");
    expect_pixel(img, 2, 1, 0.29997, 0.29997, 0.29997, 1e-6, "saturation 0");
    planar(img, px, 2);
    rn_adjust_saturation(img, 2, 0.5f);
    /* 0.5 x + 0.5 * 0.45588 */
    expect_pixel(img, 2, 0, 0.32794, 0.47794, 0.67794, 1e-6, "saturation 0.5");
    planar(img, px, 2);
    rn_adjust_saturation(img, 2, 2.0f);
    /* 2x - 0.45588: -0.05588 -> 0, 0.54412, 1.34412 -> 1; grey: 0.6 - 0.29997 */
    expect_pixel(img, 2, 0, 0.0, 0.54412, 1.0, 1e-6, "saturation 2");
    expect_pixel(img, 2, 1, 0.30003, 0.30003, 0.30003, 1e-6, "saturation 2");
}

Test(adjust, hue)
{
    const float px[4][3] = {
        {1.0f, 0.0f, 0.0f}, {0.2f, 0.5f, 0.9f}, {0.4f, 0.4f, 0.4f}, {0.0f, 1.0f, 0.0f}};
    float img[12];
    planar(img, px, 4);
    rn_adjust_hue(img, 4, 1.0f / 3.0f);
    /* red: H 0 -> 1/3 = green; (0.2,0.5,0.9): H = (4 + 0.4/0.7 - 1)/6 =
     * 0.595238 -> 0.928571, sector 5 (v, p, q) with v = 0.9, s = 0.7/0.9,
     * p = 0.2, f = 0.571429, q = 0.9 * (1 - s f) = 0.5: (0.9, 0.2, 0.5);
     * grey stays grey; green -> blue */
    expect_pixel(img, 4, 0, 0.0, 1.0, 0.0, 1e-5, "red +1/3");
    expect_pixel(img, 4, 1, 0.9, 0.2, 0.5, 1e-5, "(0.2,0.5,0.9) +1/3");
    expect_pixel(img, 4, 2, px[2][0], px[2][1], px[2][2], 0.0, "grey +1/3");
    expect_pixel(img, 4, 3, 0.0, 0.0, 1.0, 1e-5, "green +1/3");

    planar(img, px, 4);
    rn_adjust_hue(img, 4, -1.0f / 6.0f);
    /* red: H = -1/6 mod 1 = 5/6 = magenta; green: 1/3 - 1/6 = 1/6 = yellow */
    expect_pixel(img, 4, 0, 1.0, 0.0, 1.0, 1e-5, "red -1/6");
    expect_pixel(img, 4, 3, 1.0, 1.0, 0.0, 1e-5, "green -1/6");

    planar(img, px, 4);
    rn_adjust_hue(img, 4, 0.5f);
    /* half a turn maps x to max + min - x: (0.9, 0.6, 0.2); red -> cyan */
    expect_pixel(img, 4, 0, 0.0, 1.0, 1.0, 1e-5, "red +1/2");
    expect_pixel(img, 4, 1, 0.9, 0.6, 0.2, 1e-5, "(0.2,0.5,0.9) +1/2");

    planar(img, px, 4);
    rn_adjust_hue(img, 4, 0.0f);
    for (int i = 0; i < 4; i++)
        expect_pixel(img, 4, i, px[i][0], px[i][1], px[i][2], 1e-6, "hue 0");
}

/* ---- torchvision reference ---- */

static float *read_dataset(hid_t f, const char *name, size_t *count)
{
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    cr_assert(d >= 0, "fixture has no %s", name);
    hid_t s = H5Dget_space(d);
    hssize_t n = H5Sget_simple_extent_npoints(s);
    cr_assert(n > 0);
    float *buf = malloc((size_t)n * sizeof *buf);
    cr_assert(buf);
    cr_assert(H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0);
    H5Sclose(s);
    H5Dclose(d);
    *count = (size_t)n;
    return buf;
}

static void check_against_torchvision(const char *op, void (*fn)(float *, int, float),
                                      double tol)
{
    hid_t f = H5Fopen(RN_FIXTURES "/augment_ref.h5", H5F_ACC_RDONLY, H5P_DEFAULT);
    cr_assert(f >= 0, "cannot open " RN_FIXTURES "/augment_ref.h5");
    size_t nin, nf, nout;
    float *in = read_dataset(f, "input", &nin);
    char path[64];
    snprintf(path, sizeof path, "%s/factors", op);
    float *factors = read_dataset(f, path, &nf);
    snprintf(path, sizeof path, "%s/output", op);
    float *out = read_dataset(f, path, &nout);
    const int hw = 28 * 28;
    size_t per = (size_t)3 * hw, nimg = nin / per;
    cr_assert_eq(nin, nimg * per);
    cr_assert_eq(nout, nf * nin);
    cr_assert(nimg >= 3 && nf >= 2);

    float *img = malloc(per * sizeof *img);
    cr_assert(img);
    double worst = 0.0;
    int shown = 0;
    for (size_t k = 0; k < nf; k++)
        for (size_t i = 0; i < nimg; i++) {
            memcpy(img, in + i * per, per * sizeof *img);
            fn(img, hw, factors[k]);
            const float *want = out + (k * nimg + i) * per;
            for (size_t j = 0; j < per; j++) {
                double e = fabs((double)img[j] - want[j]);
                if (e > worst)
                    worst = e;
                if (e > tol && shown++ < 5)
                    cr_log_error("%s factor %g image %zu element %zu: %.8f vs torchvision %.8f",
                                 op, factors[k], i, j, img[j], want[j]);
            }
        }
    cr_expect(worst <= tol, "%s: max |diff| to torchvision %.3g > %.1g", op, worst, tol);
    free(img);
    free(in);
    free(factors);
    free(out);
    H5Fclose(f);
}

Test(torchvision, brightness) { check_against_torchvision("brightness", rn_adjust_brightness, 1e-6); }
Test(torchvision, contrast) { check_against_torchvision("contrast", rn_adjust_contrast, 1e-6); }
Test(torchvision, saturation) { check_against_torchvision("saturation", rn_adjust_saturation, 1e-6); }
Test(torchvision, hue) { check_against_torchvision("hue", rn_adjust_hue, 1e-5); }

/* ---- batch: channel permutation ---- */

static void fill_random(float *x, size_t n, uint64_t seed)
{
    struct rn_rng r;
    rn_rng_init(&r, seed, 99, 0);
    for (size_t i = 0; i < n; i++)
        x[i] = rn_rng_uniform(&r);
}

Test(channel_permute, uniform_over_six)
{
    /* 1x1 images with distinct channel values identify the permutation. */
    enum { N = 6000 };
    float *x = malloc(N * 3 * sizeof *x);
    cr_assert(x);
    for (int i = 0; i < N; i++) {
        x[3 * i + 0] = 0.1f;
        x[3 * i + 1] = 0.2f;
        x[3 * i + 2] = 0.3f;
    }
    struct rn_augment a = {.channel_permute = 1};
    struct rn_error err;
    cr_assert_eq(rn_augment_batch(&a, x, N, 3, 1, 1, 7, 3, &err), 0, "%s", err.msg);
    int count[3][3][3] = {{{0}}};
    for (int i = 0; i < N; i++) {
        int p[3];
        for (int c = 0; c < 3; c++) {
            float v = x[3 * i + c];
            p[c] = v == 0.1f ? 0 : v == 0.2f ? 1 : v == 0.3f ? 2 : -1;
            cr_assert(p[c] >= 0, "sample %d channel %d holds %g, not an input value", i, c, v);
        }
        cr_assert(p[0] != p[1] && p[1] != p[2] && p[0] != p[2], "sample %d not a permutation", i);
        count[p[0]][p[1]][p[2]]++;
    }
    /* Expected 1000 each; binomial sd = sqrt(6000 * 1/6 * 5/6) = 28.9, so
     * +-150 is more than 5 sd. */
    int seen = 0;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 3; k++)
                if (i != j && j != k && i != k) {
                    seen++;
                    cr_expect(abs(count[i][j][k] - 1000) <= 150,
                              "permutation (%d,%d,%d) drawn %d times of %d", i, j, k,
                              count[i][j][k], N);
                }
    cr_assert_eq(seen, 6);
    free(x);
}

Test(channel_permute, pixels_exactly_permuted)
{
    enum { N = 64, HW = 28 * 28 };
    size_t per = 3 * HW;
    float *x = malloc(N * per * sizeof *x), *orig = malloc(N * per * sizeof *x);
    cr_assert(x && orig);
    fill_random(orig, N * per, 1);
    memcpy(x, orig, N * per * sizeof *x);
    struct rn_augment a = {.channel_permute = 1};
    struct rn_error err;
    cr_assert_eq(rn_augment_batch(&a, x, N, 3, 28, 28, 11, 0, &err), 0, "%s", err.msg);
    int changed = 0;
    for (int i = 0; i < N; i++) {
        int used[3] = {0, 0, 0};
        for (int c = 0; c < 3; c++) {
            int src = -1;
            for (int s = 0; s < 3; s++)
                if (memcmp(x + i * per + c * HW, orig + i * per + s * HW, HW * sizeof *x) == 0)
                    src = s;
            cr_assert(src >= 0, "sample %d channel %d is not an input channel", i, c);
            used[src]++;
            changed += src != c;
        }
        cr_assert(used[0] == 1 && used[1] == 1 && used[2] == 1, "sample %d not a permutation", i);
    }
    cr_expect(changed > 0, "no sample of 64 was permuted");
    free(x);
    free(orig);
}

/* ---- batch: colour jitter ---- */

Test(colour_jitter, brightness_factor_in_range)
{
    /* Brightness only, constant 0.5 images: out / 0.5 is the factor
     * (never clamped, since 0.5 * 1.3 < 1). */
    enum { N = 2000 };
    float *x = malloc(N * 3 * 4 * sizeof *x);
    cr_assert(x);
    for (int i = 0; i < N * 12; i++)
        x[i] = 0.5f;
    struct rn_augment a = {.colour_jitter = 1, .brightness = 0.3f};
    struct rn_error err;
    cr_assert_eq(rn_augment_batch(&a, x, N, 3, 2, 2, 5, 1, &err), 0, "%s", err.msg);
    double lo = 10, hi = -10, sum = 0;
    for (int i = 0; i < N; i++) {
        double f = x[i * 12] / 0.5;
        for (int j = 1; j < 12; j++)
            cr_assert_float_eq(x[i * 12 + j], x[i * 12], 1e-7, "one factor per image");
        lo = fmin(lo, f);
        hi = fmax(hi, f);
        sum += f;
    }
    cr_expect(lo >= 0.7 - 1e-6 && hi <= 1.3 + 1e-6, "factors in [%g, %g], expected [0.7, 1.3]",
              lo, hi);
    cr_expect(lo < 0.71 && hi > 1.29, "factors [%g, %g] do not cover [0.7, 1.3]", lo, hi);
    /* mean of U(0.7, 1.3) is 1, sd of the mean 0.173 / sqrt(2000) = 0.004 */
    cr_expect(fabs(sum / N - 1.0) < 0.02, "mean factor %g", sum / N);
    free(x);
}

Test(colour_jitter, saturation_and_hue_ranges)
{
    /* Saturation only: out = f x + (1 - f) l, so f = (out - l) / (x - l). */
    enum { N = 1000 };
    float *x = malloc(N * 3 * sizeof *x);
    cr_assert(x);
    for (int i = 0; i < N; i++) {
        x[3 * i + 0] = 0.4f;
        x[3 * i + 1] = 0.5f;
        x[3 * i + 2] = 0.6f;
    }
    struct rn_augment a = {.colour_jitter = 1, .saturation = 0.5f};
    struct rn_error err;
    cr_assert_eq(rn_augment_batch(&a, x, N, 3, 1, 1, 5, 2, &err), 0, "%s", err.msg);
    double l = gray(0.4, 0.5, 0.6), lo = 10, hi = -10;
    for (int i = 0; i < N; i++) {
        double f = (x[3 * i + 2] - l) / (0.6 - l);
        lo = fmin(lo, f);
        hi = fmax(hi, f);
    }
    cr_expect(lo >= 0.5 - 1e-4 && hi <= 1.5 + 1e-4 && lo < 0.55 && hi > 1.45,
              "saturation factors [%g, %g], expected to span [0.5, 1.5]", lo, hi);

    /* Hue only on pure red: the output's hue is the factor mod 1. */
    for (int i = 0; i < N; i++) {
        x[3 * i + 0] = 1.0f;
        x[3 * i + 1] = 0.0f;
        x[3 * i + 2] = 0.0f;
    }
    struct rn_augment b = {.colour_jitter = 1, .hue = 0.2f};
    cr_assert_eq(rn_augment_batch(&b, x, N, 3, 1, 1, 5, 2, &err), 0, "%s", err.msg);
    lo = 10, hi = -10;
    for (int i = 0; i < N; i++) {
        double hue = hue_of(x[3 * i], x[3 * i + 1], x[3 * i + 2]);
        if (hue > 0.5)
            hue -= 1.0;
        lo = fmin(lo, hue);
        hi = fmax(hi, hue);
    }
    cr_expect(lo >= -0.2 - 1e-5 && hi <= 0.2 + 1e-5 && lo < -0.19 && hi > 0.19,
              "hue factors [%g, %g], expected to span [-0.2, 0.2]", lo, hi);
    free(x);
}

Test(colour_jitter, zero_config_is_identity)
{
    enum { N = 16, PER = 3 * 28 * 28 };
    float *x = malloc(N * PER * sizeof *x), *orig = malloc(N * PER * sizeof *x);
    cr_assert(x && orig);
    fill_random(orig, N * PER, 2);
    memcpy(x, orig, N * PER * sizeof *x);
    struct rn_augment a = {.colour_jitter = 1};
    struct rn_error err;
    cr_assert_eq(rn_augment_batch(&a, x, N, 3, 28, 28, 1, 4, &err), 0, "%s", err.msg);
    cr_assert(memcmp(x, orig, N * PER * sizeof *x) == 0);
    struct rn_augment off = {.brightness = 0.5f, .hue = 0.5f}; /* both flags off */
    cr_assert_eq(rn_augment_batch(&off, x, N, 3, 28, 28, 1, 4, &err), 0, "%s", err.msg);
    cr_assert(memcmp(x, orig, N * PER * sizeof *x) == 0);
    free(x);
    free(orig);
}

/* The study's M1 recipe. */
static const struct rn_augment m1 = {.channel_permute = 1, .colour_jitter = 1,
                                     .brightness = 0.3f, .contrast = 0.3f,
                                     .saturation = 0.5f, .hue = 0.5f};

Test(colour_jitter, follows_documented_draw_order)
{
    /* Re-derive every sample from augment.h's description of the draws,
     * using the single-image functions, and compare. */
    enum { N = 32, HW = 28 * 28, PER = 3 * HW };
    const uint64_t seed = 42, step = 17;
    float *x = malloc(N * PER * sizeof *x), *want = malloc(N * PER * sizeof *x);
    cr_assert(x && want);
    fill_random(x, N * PER, 3);
    for (int i = 0; i < N; i++) {
        const float *in = x + i * PER;
        float *img = want + i * PER;
        struct rn_rng r;
        rn_rng_init(&r, seed, RN_STREAM_AUGMENT, step * 65536 + i);
        int perm[3] = {0, 1, 2};
        rn_rng_shuffle(&r, perm, 3);
        for (int c = 0; c < 3; c++)
            memcpy(img + c * HW, in + perm[c] * HW, HW * sizeof *img);
        int order[4] = {0, 1, 2, 3};
        rn_rng_shuffle(&r, order, 4);
        float u[4];
        for (int k = 0; k < 4; k++)
            u[k] = rn_rng_uniform(&r);
        float fb = 0.7f + u[0] * (1.3f - 0.7f);
        float fc = 0.7f + u[1] * (1.3f - 0.7f);
        float fs = 0.5f + u[2] * (1.5f - 0.5f);
        float fh = -0.5f + u[3] * (0.5f - -0.5f);
        for (int k = 0; k < 4; k++) {
            if (order[k] == 0)
                rn_adjust_brightness(img, HW, fb);
            else if (order[k] == 1)
                rn_adjust_contrast(img, HW, fc);
            else if (order[k] == 2)
                rn_adjust_saturation(img, HW, fs);
            else
                rn_adjust_hue(img, HW, fh);
        }
    }
    struct rn_error err;
    cr_assert_eq(rn_augment_batch(&m1, x, N, 3, 28, 28, seed, step, &err), 0, "%s", err.msg);
    double worst = 0;
    for (int j = 0; j < N * PER; j++)
        worst = fmax(worst, fabs(x[j] - want[j]));
    /* Same functions on the same inputs; the tolerance only absorbs a
     * possible difference in how the factor's multiply-add is contracted. */
    cr_expect(worst <= 1e-5, "max |diff| to the documented draws %g", worst);
    free(x);
    free(want);
}

static float *augmented_copy(const float *orig, int n, uint64_t seed, uint64_t step)
{
    size_t bytes = (size_t)n * 3 * 28 * 28 * sizeof(float);
    float *x = malloc(bytes);
    cr_assert(x);
    memcpy(x, orig, bytes);
    struct rn_error err;
    cr_assert_eq(rn_augment_batch(&m1, x, n, 3, 28, 28, seed, step, &err), 0, "%s", err.msg);
    return x;
}

Test(colour_jitter, deterministic_per_seed_and_step)
{
    enum { N = 64, PER = 3 * 28 * 28 };
    float *orig = malloc(N * PER * sizeof *orig);
    cr_assert(orig);
    fill_random(orig, N * PER, 4);
    float *a = augmented_copy(orig, N, 1, 10), *b = augmented_copy(orig, N, 1, 10);
    float *c = augmented_copy(orig, N, 1, 11), *d = augmented_copy(orig, N, 2, 10);
    size_t bytes = N * PER * sizeof *orig;
    cr_assert(memcmp(a, b, bytes) == 0, "same seed and step differ");
    cr_assert(memcmp(a, orig, bytes) != 0, "augmentation changed nothing");
    /* every sample differs for another step or seed, not just one */
    for (int i = 0; i < N; i++) {
        cr_expect(memcmp(a + i * PER, c + i * PER, PER * sizeof *a) != 0,
                  "sample %d identical at steps 10 and 11", i);
        cr_expect(memcmp(a + i * PER, d + i * PER, PER * sizeof *a) != 0,
                  "sample %d identical for seeds 1 and 2", i);
    }
    for (int i = 0; i < N * PER; i++)
        cr_assert(a[i] >= 0.0f && a[i] <= 1.0f, "element %d = %g outside [0, 1]", i, a[i]);
    free(orig);
    free(a);
    free(b);
    free(c);
    free(d);
}

Test(colour_jitter, same_with_one_and_two_threads)
{
    enum { N = 64, PER = 3 * 28 * 28 };
    float *orig = malloc(N * PER * sizeof *orig);
    cr_assert(orig);
    fill_random(orig, N * PER, 5);
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    float *one = augmented_copy(orig, N, 3, 100);
    omp_set_num_threads(2);
    float *two = augmented_copy(orig, N, 3, 100);
    omp_set_num_threads(saved);
    cr_assert(memcmp(one, two, N * PER * sizeof *one) == 0, "1 and 2 threads differ");
    free(orig);
    free(one);
    free(two);
}

Test(augment, errors)
{
    float x[12] = {0};
    struct rn_error err = {{0}};
    struct rn_augment perm = {.channel_permute = 1};
    cr_assert_eq(rn_augment_batch(&perm, x, 2, 1, 2, 3, 0, 0, &err), -1);
    cr_assert(strstr(err.msg, "RGB") && strstr(err.msg, "1 channel"), "message: %s", err.msg);
    struct rn_augment hue = {.colour_jitter = 1, .hue = 0.6f};
    cr_assert_eq(rn_augment_batch(&hue, x, 1, 3, 2, 2, 0, 0, &err), -1);
    cr_assert(strstr(err.msg, "hue must be in [0, 0.5], got 0.6"), "message: %s", err.msg);
    struct rn_augment neg = {.colour_jitter = 1, .contrast = -0.1f};
    cr_assert_eq(rn_augment_batch(&neg, x, 1, 3, 2, 2, 0, 0, &err), -1);
    cr_assert(strstr(err.msg, ">= 0"), "message: %s", err.msg);
    cr_assert_eq(rn_augment_batch(&perm, x, 70000, 3, 1, 1, 0, 0, &err), -1);
    cr_assert(strstr(err.msg, "65536"), "message: %s", err.msg);
    /* nothing on: any channel count is fine and nothing changes */
    struct rn_augment none = {0};
    x[0] = 0.25f;
    cr_assert_eq(rn_augment_batch(&none, x, 1, 1, 3, 4, 0, 0, &err), 0);
    cr_assert_eq(x[0], 0.25f);
}

/* ---- draws and apply: the split rn_augment_batch is made of ---- */

/* Each configuration's batch through rn_augment_batch and through
 * rn_augment_draws + rn_augment_apply: the same bits. */
Test(augment, draws_then_apply_is_batch)
{
    enum { N = 37, PER = 3 * 28 * 28 };
    static const struct rn_augment cases[] = {
        {.channel_permute = 1, .colour_jitter = 1, .brightness = 0.3f, .contrast = 0.3f,
         .saturation = 0.5f, .hue = 0.5f},
        {.channel_permute = 1},
        {.colour_jitter = 1, .brightness = 0.4f, .contrast = 0.4f, .saturation = 0.4f, .hue = 0.1f},
        {.channel_permute = 1, .colour_jitter = 1, .brightness = 0.4f, .saturation = 0.4f,
         .hue = 0.5f},
        {.colour_jitter = 1, .contrast = 0.8f},
        {0},
    };
    float *orig = malloc(N * PER * sizeof *orig), *x = malloc(N * PER * sizeof *x),
          *y = malloc(N * PER * sizeof *y);
    struct rn_augment_draw d[N];
    cr_assert(orig && x && y);
    fill_random(orig, N * PER, 6);
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const struct rn_augment *a = &cases[k];
        struct rn_error err;
        memcpy(x, orig, N * PER * sizeof *x);
        memcpy(y, orig, N * PER * sizeof *y);
        cr_assert_eq(rn_augment_batch(a, x, N, 3, 28, 28, 9, 40 + k, &err), 0, "%s", err.msg);
        cr_assert_eq(rn_augment_draws(a, N, 9, 40 + k, d, &err), 0, "%s", err.msg);
        cr_assert_eq(rn_augment_apply(a, d, y, N, 3, 28, 28, &err), 0, "%s", err.msg);
        cr_expect(memcmp(x, y, N * PER * sizeof *x) == 0,
                  "case %zu: draws + apply differ from rn_augment_batch", k);
        if (a->channel_permute || a->colour_jitter)
            cr_expect(memcmp(x, orig, N * PER * sizeof *x) != 0, "case %zu changed nothing", k);
    }
    free(orig);
    free(x);
    free(y);
}

static void expect_identity_factors(const struct rn_augment_draw *d, int b, int c, int s,
                                    int h, const char *what)
{
    if (b)
        cr_expect_eq(d->factor[0], 1.0f, "%s: brightness factor %g", what, d->factor[0]);
    if (c)
        cr_expect_eq(d->factor[1], 1.0f, "%s: contrast factor %g", what, d->factor[1]);
    if (s)
        cr_expect_eq(d->factor[2], 1.0f, "%s: saturation factor %g", what, d->factor[2]);
    if (h)
        cr_expect(d->factor[3] == 0.0f && !signbit(d->factor[3]), "%s: hue factor %g", what,
                  d->factor[3]);
}

/* What is off draws the identity (augment.h): perm {0,1,2}, factors 1 and +0
 * for hue. Applied even with the ops on, such draws leave a [0, 1] image
 * exactly alone, except hue, whose HSV round trip rounds. */
Test(augment, off_ops_draw_the_identity)
{
    enum { N = 37, HW = 28 * 28, PER = 3 * HW };
    float *orig = malloc(N * PER * sizeof *orig), *x = malloc(N * PER * sizeof *x);
    struct rn_augment_draw d[N], e[N];
    struct rn_error err;
    cr_assert(orig && x);
    fill_random(orig, N * PER, 7);

    /* jitter on with every strength 0, no permutation */
    struct rn_augment zero = {.colour_jitter = 1};
    cr_assert_eq(rn_augment_draws(&zero, N, 3, 5, d, &err), 0, "%s", err.msg);
    for (int i = 0; i < N; i++) {
        cr_expect(d[i].perm[0] == 0 && d[i].perm[1] == 1 && d[i].perm[2] == 2,
                  "sample %d: perm %d %d %d", i, d[i].perm[0], d[i].perm[1], d[i].perm[2]);
        expect_identity_factors(&d[i], 1, 1, 1, 1, "all strengths 0");
    }
    memcpy(x, orig, N * PER * sizeof *x);
    cr_assert_eq(rn_augment_apply(&zero, d, x, N, 3, 28, 28, &err), 0, "%s", err.msg);
    cr_expect(memcmp(x, orig, N * PER * sizeof *x) == 0, "identity draws changed the image");
    struct rn_augment on = {.channel_permute = 1, .colour_jitter = 1, .brightness = 0.4f,
                            .contrast = 0.4f, .saturation = 0.4f};
    cr_assert_eq(rn_augment_apply(&on, d, x, N, 3, 28, 28, &err), 0, "%s", err.msg);
    cr_expect(memcmp(x, orig, N * PER * sizeof *x) == 0,
              "identity draws applied with permutation, brightness, contrast and saturation on "
              "changed the image");
    struct rn_augment hue = {.colour_jitter = 1, .hue = 0.1f};
    cr_assert_eq(rn_augment_apply(&hue, d, x, N, 3, 28, 28, &err), 0, "%s", err.msg);
    double worst = 0;
    for (int j = 0; j < N * PER; j++)
        worst = fmax(worst, fabs(x[j] - orig[j]));
    cr_expect(worst <= 1e-6, "hue factor 0 moved a value by %g", worst);

    /* both off: no draw, n identities, nothing checked */
    memset(d, 0x7f, sizeof d);
    struct rn_augment none = {.brightness = 0.5f, .hue = 0.9f};
    cr_assert_eq(rn_augment_draws(&none, N, 3, 5, d, &err), 0, "%s", err.msg);
    for (int i = 0; i < N; i++) {
        cr_expect(d[i].perm[0] == 0 && d[i].perm[1] == 1 && d[i].perm[2] == 2);
        for (int k = 0; k < 4; k++)
            cr_expect_eq(d[i].order[k], k, "sample %d: order[%d] = %d", i, k, d[i].order[k]);
        expect_identity_factors(&d[i], 1, 1, 1, 1, "both off");
    }
    /* permutation only: no jitter draws */
    struct rn_augment perm = {.channel_permute = 1};
    cr_assert_eq(rn_augment_draws(&perm, N, 3, 5, d, &err), 0, "%s", err.msg);
    for (int i = 0; i < N; i++) {
        for (int k = 0; k < 4; k++)
            cr_expect_eq(d[i].order[k], k, "sample %d: order[%d] = %d", i, k, d[i].order[k]);
        expect_identity_factors(&d[i], 1, 1, 1, 1, "permutation only");
    }

    /* one op off among others: its factor is the identity, everything else
     * is drawn as with it on */
    struct rn_augment all = {.channel_permute = 1, .colour_jitter = 1, .brightness = 0.4f,
                             .contrast = 0.4f, .saturation = 0.4f, .hue = 0.1f};
    struct rn_augment no_contrast = all;
    no_contrast.contrast = 0.0f;
    cr_assert_eq(rn_augment_draws(&all, N, 3, 5, d, &err), 0, "%s", err.msg);
    cr_assert_eq(rn_augment_draws(&no_contrast, N, 3, 5, e, &err), 0, "%s", err.msg);
    int drawn = 0;
    for (int i = 0; i < N; i++) {
        cr_expect(memcmp(d[i].perm, e[i].perm, sizeof d[i].perm) == 0, "sample %d perm", i);
        cr_expect(memcmp(d[i].order, e[i].order, sizeof d[i].order) == 0, "sample %d order", i);
        cr_expect(d[i].factor[0] == e[i].factor[0] && d[i].factor[2] == e[i].factor[2] &&
                      d[i].factor[3] == e[i].factor[3],
                  "sample %d: the other factors moved", i);
        expect_identity_factors(&e[i], 0, 1, 0, 0, "contrast off");
        drawn += d[i].factor[1] != 1.0f;
    }
    cr_expect(drawn > 0, "no contrast factor of %d was drawn", N);
    free(orig);
    free(x);
}

Test(augment, draws_and_apply_errors)
{
    struct rn_augment_draw d[2];
    float x[12] = {0};
    struct rn_error err = {{0}};
    struct rn_augment hue = {.colour_jitter = 1, .hue = 0.6f};
    cr_assert_eq(rn_augment_draws(&hue, 2, 0, 0, d, &err), -1);
    cr_assert(strstr(err.msg, "hue must be in [0, 0.5], got 0.6"), "message: %s", err.msg);
    struct rn_augment neg = {.colour_jitter = 1, .saturation = -0.1f};
    cr_assert_eq(rn_augment_draws(&neg, 2, 0, 0, d, &err), -1);
    cr_assert(strstr(err.msg, ">= 0"), "message: %s", err.msg);
    struct rn_augment perm = {.channel_permute = 1};
    /* rejected before anything is written */
    cr_assert_eq(rn_augment_draws(&perm, 70000, 0, 0, d, &err), -1);
    cr_assert(strstr(err.msg, "65536"), "message: %s", err.msg);
    cr_assert_eq(rn_augment_draws(&perm, -1, 0, 0, d, &err), -1);
    cr_assert_eq(rn_augment_draws(&perm, 2, 0, 0, d, &err), 0, "%s", err.msg);
    cr_assert_eq(rn_augment_apply(&perm, d, x, 2, 1, 2, 3, &err), -1);
    cr_assert(strstr(err.msg, "RGB") && strstr(err.msg, "1 channel"), "message: %s", err.msg);
    cr_assert_eq(rn_augment_apply(&perm, NULL, x, 1, 3, 2, 2, &err), -1);
    cr_assert(strstr(err.msg, "no draws"), "message: %s", err.msg);
    d[1].perm[2] = d[1].perm[1];
    cr_assert_eq(rn_augment_apply(&perm, d, x, 1, 3, 2, 2, &err), 0, "%s", err.msg);
    cr_assert_eq(rn_augment_apply(&perm, d, x, 2, 3, 1, 2, &err), -1);
    cr_assert(strstr(err.msg, "draw 1 is not a permutation"), "message: %s", err.msg);
}
