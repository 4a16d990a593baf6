/* augment.c - channel permutation and ColorJitter (see augment.h).
 *
 * Each adjustment mirrors torchvision 0.14's float-tensor code
 * (transforms/functional_tensor.py) operation by operation in float32, so the
 * outputs agree with it to rounding (tests/fixtures/augment_ref.h5). */
#include "augment.h"

#include <math.h>

#include "rng.h"

/* torchvision's rgb_to_grayscale weights (0.2989, not Rec. 601's 0.299). */
#define GRAY_R 0.2989f
#define GRAY_G 0.587f
#define GRAY_B 0.114f

enum { OP_BRIGHTNESS, OP_CONTRAST, OP_SATURATION, OP_HUE, OP_COUNT };

static inline float clamp01(float v)
{
    return v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);
}

static inline float gray(float r, float g, float b)
{
    return GRAY_R * r + GRAY_G * g + GRAY_B * b;
}

/* torchvision _blend: ratio * img1 + (1 - ratio) * img2, clamped. */
static inline float blend(float x, float other, float ratio, float rest)
{
    return clamp01(ratio * x + rest * other);
}

void rn_adjust_brightness(float *img, int hw, float factor)
{
    for (int i = 0; i < 3 * hw; i++)
        img[i] = blend(img[i], 0.0f, factor, 1.0f - factor);
}

void rn_adjust_contrast(float *img, int hw, float factor)
{
    const float *r = img, *g = img + hw, *b = img + 2 * hw;
    /* The mean is accumulated in double: torch's float32 mean uses a
     * cascade sum, whose error is of the same order. */
    double sum = 0.0;
    for (int i = 0; i < hw; i++)
        sum += gray(r[i], g[i], b[i]);
    float mean = hw > 0 ? (float)(sum / hw) : 0.0f;
    float rest = 1.0f - factor;
    for (int i = 0; i < 3 * hw; i++)
        img[i] = blend(img[i], mean, factor, rest);
}

void rn_adjust_saturation(float *img, int hw, float factor)
{
    float *r = img, *g = img + hw, *b = img + 2 * hw;
    float rest = 1.0f - factor;
    for (int i = 0; i < hw; i++) {
        float l = gray(r[i], g[i], b[i]);
        r[i] = blend(r[i], l, factor, rest);
        g[i] = blend(g[i], l, factor, rest);
        b[i] = blend(b[i], l, factor, rest);
    }
}

/* One pixel through torchvision's _rgb2hsv, H + hue_factor mod 1, _hsv2rgb.
 * The equality tests on maxc pick the same branch as torchvision when two
 * channels tie (red wins, then green). */
static void hue_pixel(float *pr, float *pg, float *pb, float hue_factor)
{
    float r = *pr, g = *pg, b = *pb;
    float maxc = fmaxf(r, fmaxf(g, b));
    float minc = fminf(r, fminf(g, b));
    int eqc = maxc == minc;
    float cr = maxc - minc;
    float s = cr / (eqc ? 1.0f : maxc);
    float crd = eqc ? 1.0f : cr;
    float rc = (maxc - r) / crd, gc = (maxc - g) / crd, bc = (maxc - b) / crd;
    float h;
    if (maxc == r)
        h = bc - gc;
    else if (maxc == g)
        h = 2.0f + rc - bc;
    else
        h = 4.0f + gc - rc;
    h = fmodf(h / 6.0f + 1.0f, 1.0f);
    /* Python's % on a tensor is torch.remainder: a - floor(a), in [0, 1]
     * (a tiny negative sum rounds up to exactly 1, which the i % 6 below
     * maps back to sector 0, as in torchvision). */
    h = h + hue_factor;
    h = h - floorf(h);

    float v = maxc;
    float h6 = h * 6.0f;
    float fi = floorf(h6);
    float f = h6 - fi;
    int i = (int)fi;
    float p = clamp01(v * (1.0f - s));
    float q = clamp01(v * (1.0f - s * f));
    float t = clamp01(v * (1.0f - s * (1.0f - f)));
    i = ((i % 6) + 6) % 6;
    switch (i) {
    case 0: *pr = v; *pg = t; *pb = p; break;
    case 1: *pr = q; *pg = v; *pb = p; break;
    case 2: *pr = p; *pg = v; *pb = t; break;
    case 3: *pr = p; *pg = q; *pb = v; break;
    case 4: *pr = t; *pg = p; *pb = v; break;
    default: *pr = v; *pg = p; *pb = q; break;
    }
}

void rn_adjust_hue(float *img, int hw, float hue_factor)
{
    float *r = img, *g = img + hw, *b = img + 2 * hw;
    for (int i = 0; i < hw; i++)
        hue_pixel(&r[i], &g[i], &b[i], hue_factor);
}

/* Out channel k takes in channel perm[k], pixel by pixel, so no scratch
 * image is needed. */
static void permute_channels(float *img, int hw, const int perm[3])
{
    float *r = img, *g = img + hw, *b = img + 2 * hw;
    for (int i = 0; i < hw; i++) {
        float in[3] = {r[i], g[i], b[i]};
        r[i] = in[perm[0]];
        g[i] = in[perm[1]];
        b[i] = in[perm[2]];
    }
}

/* U(lo, hi) as torch's uniform_(lo, hi): lo + u * (hi - lo). */
static float draw_factor(struct rn_rng *r, float lo, float hi)
{
    return lo + rn_rng_uniform(r) * (hi - lo);
}

/* The identity draw: what an augmentation that is off gets. */
static void draw_identity(struct rn_augment_draw *d)
{
    *d = (struct rn_augment_draw){.perm = {0, 1, 2},
                                  .order = {OP_BRIGHTNESS, OP_CONTRAST, OP_SATURATION, OP_HUE},
                                  .factor = {1.0f, 1.0f, 1.0f, 0.0f}};
}

static void draw_one(const struct rn_augment *a, uint64_t seed, uint64_t item,
                     struct rn_augment_draw *d)
{
    struct rn_rng r;
    rn_rng_init(&r, seed, RN_STREAM_AUGMENT, item);
    draw_identity(d);
    if (a->channel_permute) {
        int perm[3] = {0, 1, 2};
        rn_rng_shuffle(&r, perm, 3);
        for (int k = 0; k < 3; k++)
            d->perm[k] = perm[k];
    }
    if (!a->colour_jitter)
        return;
    int order[OP_COUNT] = {OP_BRIGHTNESS, OP_CONTRAST, OP_SATURATION, OP_HUE};
    rn_rng_shuffle(&r, order, OP_COUNT);
    for (int k = 0; k < OP_COUNT; k++)
        d->order[k] = order[k];
    /* All four factors are drawn even when an op is off, so switching one op
     * on or off does not change the others' factors. */
    float fb = draw_factor(&r, fmaxf(0.0f, 1.0f - a->brightness), 1.0f + a->brightness);
    float fc = draw_factor(&r, fmaxf(0.0f, 1.0f - a->contrast), 1.0f + a->contrast);
    float fs = draw_factor(&r, fmaxf(0.0f, 1.0f - a->saturation), 1.0f + a->saturation);
    float fh = draw_factor(&r, -a->hue, a->hue);
    /* A strength of 0 draws exactly the identity already (U(1, 1) = 1,
     * U(-0, 0) = +0); stating it keeps the contract independent of that. */
    d->factor[OP_BRIGHTNESS] = a->brightness > 0.0f ? fb : 1.0f;
    d->factor[OP_CONTRAST] = a->contrast > 0.0f ? fc : 1.0f;
    d->factor[OP_SATURATION] = a->saturation > 0.0f ? fs : 1.0f;
    d->factor[OP_HUE] = a->hue > 0.0f ? fh : 0.0f;
}

static void apply_one(const struct rn_augment *a, const struct rn_augment_draw *d, float *img,
                      int hw)
{
    if (a->channel_permute) {
        const int perm[3] = {d->perm[0], d->perm[1], d->perm[2]};
        permute_channels(img, hw, perm);
    }
    if (!a->colour_jitter)
        return;
    for (int k = 0; k < OP_COUNT; k++) {
        /* A strength of 0 means the op is absent (torchvision stores None),
         * so it is skipped rather than applied with its identity factor (for
         * hue the HSV round trip is the identity only up to rounding). */
        switch (d->order[k]) {
        case OP_BRIGHTNESS:
            if (a->brightness > 0.0f)
                rn_adjust_brightness(img, hw, d->factor[OP_BRIGHTNESS]);
            break;
        case OP_CONTRAST:
            if (a->contrast > 0.0f)
                rn_adjust_contrast(img, hw, d->factor[OP_CONTRAST]);
            break;
        case OP_SATURATION:
            if (a->saturation > 0.0f)
                rn_adjust_saturation(img, hw, d->factor[OP_SATURATION]);
            break;
        case OP_HUE:
            if (a->hue > 0.0f)
                rn_adjust_hue(img, hw, d->factor[OP_HUE]);
            break;
        default:
            break;
        }
    }
}

/* The checks every entry point shares, each returning -1 with err filled.
 * Their order is rn_augment_batch's, so its first error is unchanged. */
static int check_shape(int n, int c, int h, int w, struct rn_error *err)
{
    if (n < 0 || h <= 0 || w <= 0)
        return rn_errorf(err, "augment: bad batch shape (%d, %d, %d, %d)", n, c, h, w);
    if (c != 3)
        return rn_errorf(err, "augment: channel_permute and colour_jitter need RGB input, "
                              "got %d channel(s)", c);
    return 0;
}

static int check_batch_size(int n, struct rn_error *err)
{
    if (n > 65536)
        return rn_errorf(err, "augment: batch of %d exceeds 65536 samples (the per-sample "
                              "random stream is step * 65536 + sample)", n);
    return 0;
}

static int check_strengths(const struct rn_augment *a, struct rn_error *err)
{
    if (a->colour_jitter) {
        if (!(a->brightness >= 0.0f) || !(a->contrast >= 0.0f) || !(a->saturation >= 0.0f))
            return rn_errorf(err, "augment: brightness, contrast and saturation must be >= 0 "
                                  "(got %g, %g, %g)", a->brightness, a->contrast, a->saturation);
        if (!(a->hue >= 0.0f && a->hue <= 0.5f))
            return rn_errorf(err, "augment: hue must be in [0, 0.5], got %g", a->hue);
    }
    return 0;
}

static int check_image_size(int h, int w, struct rn_error *err)
{
    if ((int64_t)h * w > ((int64_t)1 << 26))
        return rn_errorf(err, "augment: image of %d x %d is too large", h, w);
    return 0;
}

int rn_augment_draws(const struct rn_augment *a, int n, uint64_t seed, uint64_t step,
                     struct rn_augment_draw *out, struct rn_error *err)
{
    if (!a)
        return rn_errorf(err, "augment: no configuration");
    if (n < 0)
        return rn_errorf(err, "augment: bad batch size %d", n);
    if (n > 0 && !out)
        return rn_errorf(err, "augment: no output for the draws");
    if (!a->channel_permute && !a->colour_jitter) {
        for (int i = 0; i < n; i++)
            draw_identity(&out[i]);
        return 0;
    }
    if (check_batch_size(n, err) || check_strengths(a, err))
        return -1;
    for (int i = 0; i < n; i++)
        draw_one(a, seed, step * 65536u + (uint64_t)i, &out[i]);
    return 0;
}

int rn_augment_apply(const struct rn_augment *a, const struct rn_augment_draw *d, float *x, int n,
                     int c, int h, int w, struct rn_error *err)
{
    if (!a)
        return rn_errorf(err, "augment: no configuration");
    if (!a->channel_permute && !a->colour_jitter)
        return 0;
    if (check_shape(n, c, h, w, err) || check_strengths(a, err))
        return -1;
    if (n == 0)
        return 0;
    if (!x || !d)
        return rn_errorf(err, "augment: no %s", !x ? "input" : "draws");
    if (check_image_size(h, w, err))
        return -1;
    for (int i = 0; i < n; i++) {
        int used = 0, ops = 0;
        for (int k = 0; k < 3; k++)
            used |= d[i].perm[k] >= 0 && d[i].perm[k] < 3 ? 1 << d[i].perm[k] : 8;
        for (int k = 0; k < OP_COUNT; k++)
            ops |= d[i].order[k] >= 0 && d[i].order[k] < OP_COUNT ? 1 << d[i].order[k] : 16;
        if (used != 7 || ops != 15)
            return rn_errorf(err, "augment: draw %d is not a permutation (perm %d %d %d, order "
                                  "%d %d %d %d)", i, d[i].perm[0], d[i].perm[1], d[i].perm[2],
                             d[i].order[0], d[i].order[1], d[i].order[2], d[i].order[3]);
    }
    int hw = h * w;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++)
        apply_one(a, &d[i], x + (size_t)i * 3 * hw, hw);
    return 0;
}

int rn_augment_batch(const struct rn_augment *a, float *x, int n, int c, int h, int w,
                     uint64_t seed, uint64_t step, struct rn_error *err)
{
    if (!a)
        return rn_errorf(err, "augment: no configuration");
    if (!a->channel_permute && !a->colour_jitter)
        return 0;
    if (check_shape(n, c, h, w, err) || check_batch_size(n, err) || check_strengths(a, err))
        return -1;
    if (n == 0)
        return 0;
    if (!x)
        return rn_errorf(err, "augment: no input");
    if (check_image_size(h, w, err))
        return -1;
    int hw = h * w;
    /* rn_augment_draws then rn_augment_apply, fused per sample so that no
     * array of draws is needed. Each sample owns its generator and its
     * pixels, so the result does not depend on the number of threads or the
     * schedule. */
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        struct rn_augment_draw d;
        draw_one(a, seed, step * 65536u + (uint64_t)i, &d);
        apply_one(a, &d, x + (size_t)i * 3 * hw, hw);
    }
    return 0;
}
