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

static void augment_one(const struct rn_augment *a, float *img, int hw, uint64_t seed,
                        uint64_t item)
{
    struct rn_rng r;
    rn_rng_init(&r, seed, RN_STREAM_AUGMENT, item);
    if (a->channel_permute) {
        int perm[3] = {0, 1, 2};
        rn_rng_shuffle(&r, perm, 3);
        permute_channels(img, hw, perm);
    }
    if (!a->color_jitter)
        return;
    int order[OP_COUNT] = {OP_BRIGHTNESS, OP_CONTRAST, OP_SATURATION, OP_HUE};
    rn_rng_shuffle(&r, order, OP_COUNT);
    /* All four factors are drawn even when an op is off, so switching one op
     * on or off does not change the others' factors. */
    float fb = draw_factor(&r, fmaxf(0.0f, 1.0f - a->brightness), 1.0f + a->brightness);
    float fc = draw_factor(&r, fmaxf(0.0f, 1.0f - a->contrast), 1.0f + a->contrast);
    float fs = draw_factor(&r, fmaxf(0.0f, 1.0f - a->saturation), 1.0f + a->saturation);
    float fh = draw_factor(&r, -a->hue, a->hue);
    for (int k = 0; k < OP_COUNT; k++) {
        /* A strength of 0 means the op is absent (torchvision stores None),
         * so it is skipped rather than applied with factor 1. */
        switch (order[k]) {
        case OP_BRIGHTNESS:
            if (a->brightness > 0.0f)
                rn_adjust_brightness(img, hw, fb);
            break;
        case OP_CONTRAST:
            if (a->contrast > 0.0f)
                rn_adjust_contrast(img, hw, fc);
            break;
        case OP_SATURATION:
            if (a->saturation > 0.0f)
                rn_adjust_saturation(img, hw, fs);
            break;
        default:
            if (a->hue > 0.0f)
                rn_adjust_hue(img, hw, fh);
            break;
        }
    }
}

int rn_augment_batch(const struct rn_augment *a, float *x, int n, int c, int h, int w,
                     uint64_t seed, uint64_t step, struct rn_error *err)
{
    if (!a)
        return rn_errorf(err, "augment: no configuration");
    if (!a->channel_permute && !a->color_jitter)
        return 0;
    if (n < 0 || h <= 0 || w <= 0)
        return rn_errorf(err, "augment: bad batch shape (%d, %d, %d, %d)", n, c, h, w);
    if (c != 3)
        return rn_errorf(err, "augment: channel_permute and color_jitter need RGB input, "
                              "got %d channel(s)", c);
    if (n > 65536)
        return rn_errorf(err, "augment: batch of %d exceeds 65536 samples (the per-sample "
                              "random stream is step * 65536 + sample)", n);
    if (a->color_jitter) {
        if (!(a->brightness >= 0.0f) || !(a->contrast >= 0.0f) || !(a->saturation >= 0.0f))
            return rn_errorf(err, "augment: brightness, contrast and saturation must be >= 0 "
                                  "(got %g, %g, %g)", a->brightness, a->contrast, a->saturation);
        if (!(a->hue >= 0.0f && a->hue <= 0.5f))
            return rn_errorf(err, "augment: hue must be in [0, 0.5], got %g", a->hue);
    }
    if (n == 0)
        return 0;
    if (!x)
        return rn_errorf(err, "augment: no input");
    if ((int64_t)h * w > ((int64_t)1 << 26))
        return rn_errorf(err, "augment: image of %d x %d is too large", h, w);
    int hw = h * w;
    /* Each sample owns its generator and its pixels, so the result does not
     * depend on the number of threads or the schedule. */
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++)
        augment_one(a, x + (size_t)i * 3 * hw, hw, seed, step * 65536u + (uint64_t)i);
    return 0;
}
