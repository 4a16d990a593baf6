/* augment.h - training-time augmentations (Task 4, Method 1).
 *
 * Applied to a float batch (n, 3, h, w) in [0, 1] in place, training split
 * only. Sample i of the batch at optimizer step `step` draws from its own
 * generator rn_rng_init(&r, seed, RN_STREAM_AUGMENT, step * 65536 + i), so
 * results do not depend on threads (n <= 65536).
 *
 * channel_permute: a uniformly random permutation of the RGB channels per
 *   sample (all 6 equally likely); output channel k is input channel perm[k].
 * color_jitter: torchvision.transforms.ColorJitter semantics (v0.14): factors
 *   brightness_factor ~ U(max(0, 1-b), 1+b), contrast ~ U(max(0,1-c), 1+c),
 *   saturation ~ U(max(0,1-s), 1+s), hue_factor ~ U(-h, h) (h <= 0.5); the
 *   four applied in a random order (a random permutation per sample, as
 *   torchvision's fn_idx = torch.randperm(4)); brightness = blend with black,
 *   contrast = blend with the mean of the grayscale image (torchvision's
 *   weights 0.2989 R + 0.587 G + 0.114 B), saturation = blend with the
 *   per-pixel grayscale image, each clamped to [0, 1]; hue = rotate H in HSV
 *   by hue_factor (mod 1), through torchvision's _rgb2hsv/_hsv2rgb. A
 *   strength of 0 leaves that op out (torchvision stores None), so the all-
 *   zero jitter is the exact identity.
 *   Channel permutation, when on, is applied before the jitter.
 *
 * Draws from each sample's generator, in this order (a draw that is off is
 * not made; none is made when both augmentations are off):
 *   1. channel_permute: perm = {0,1,2}, rn_rng_shuffle(&r, perm, 3)
 *      (Fisher-Yates, rn_rng_below(3) then rn_rng_below(2));
 *   2. color_jitter: order = {0 brightness, 1 contrast, 2 saturation, 3 hue},
 *      rn_rng_shuffle(&r, order, 4); then four rn_rng_uniform values u_b,
 *      u_c, u_s, u_h, always all four (even for ops whose strength is 0, so
 *      turning one op off does not move the others' factors), each factor
 *      lo + u * (hi - lo) over the ranges above; the ops then run as
 *      order[0], order[1], order[2], order[3].
 *
 * Arithmetic is float32 in torchvision's operation order; outputs agree with
 * torchvision 0.14 to ~1e-7 (tests/fixtures/augment_ref.h5, made by
 * tests/reference/make_augment_fixture.py).
 */
#ifndef RN_AUGMENT_H
#define RN_AUGMENT_H

#include <stdint.h>

#include "error.h"

struct rn_augment {
    int channel_permute;         /* 1: random RGB permutation per sample */
    int color_jitter;            /* 1: apply ColorJitter */
    float brightness, contrast, saturation, hue;
};

/* One sample's random draws (the order above): its channel permutation and
 * the jitter's op order and four factors (brightness, contrast, saturation,
 * hue). A backend applies them (backend.h `augment`); the draws themselves
 * are always made on the host, so every device augments alike. */
struct rn_augment_draw {
    int32_t perm[3];  /* output channel k = input channel perm[k] ({0,1,2}: off) */
    int32_t order[4]; /* the jitter's ops in application order */
    float factor[4];  /* brightness, contrast, saturation, hue (1,1,1,0: identity) */
    int32_t pad;      /* 48 bytes */
};

/* x: (n, c, h, w) floats in [0,1], modified in place; c must be 3 when any
 * augmentation is on (with both off the call does nothing, for any c).
 * Returns -1 with err filled for a bad shape, n > 65536, a negative jitter
 * strength or hue outside [0, 0.5]. */
int rn_augment_batch(const struct rn_augment *a, float *x, int n, int c, int h, int w,
                     uint64_t seed, uint64_t step, struct rn_error *err);

/* Single-image building blocks, exposed for tests: img (3, h, w) in place,
 * hw = h * w; torchvision's adjust_* on a float tensor. factor >= 0 for
 * brightness/contrast/saturation (output clamped to [0, 1]); hue_factor in
 * [-0.5, 0.5]. */
void rn_adjust_brightness(float *img, int hw, float factor);
void rn_adjust_contrast(float *img, int hw, float factor);
void rn_adjust_saturation(float *img, int hw, float factor);
void rn_adjust_hue(float *img, int hw, float hue_factor);

#endif
