/* augment.h - training-time augmentations (Task 4, Method 1).
 *
 * Applied to a float batch (n, 3, h, w) in [0, 1] in place, training split
 * only. Sample i of the batch at optimizer step `step` draws from its own
 * generator rn_rng_init(&r, seed, RN_STREAM_AUGMENT, step * 65536 + i), so
 * results do not depend on threads (n <= 65536).
 *
 * channel_permute: a uniformly random permutation of the RGB channels per
 *   sample (all 6 equally likely); output channel k is input channel perm[k].
 * colour_jitter: torchvision.transforms.ColorJitter semantics (v0.14): factors
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
 *   2. colour_jitter: order = {0 brightness, 1 contrast, 2 saturation, 3 hue},
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
    int colour_jitter;            /* 1: apply ColorJitter */
    float brightness, contrast, saturation, hue;
};

/* One sample's random draws (the order above): its channel permutation and
 * the jitter's op order and four factors (brightness, contrast, saturation,
 * hue). A backend applies them (struct rn_augment_kernels); the draws themselves
 * are always made on the host, so every device augments alike.
 *
 * What is off gets the identity: perm {0,1,2} without channel_permute;
 * order {0,1,2,3} and factors (1, 1, 1, 0) without colour_jitter; with it, an
 * op of strength 0 keeps its place in the drawn order but its factor is the
 * identity (1, or +0 for hue). */
struct rn_augment_draw {
    int32_t perm[3];  /* output channel k = input channel perm[k] ({0,1,2}: off) */
    int32_t order[4]; /* the jitter's ops in application order (0 brightness,
                       * 1 contrast, 2 saturation, 3 hue) */
    float factor[4];  /* brightness, contrast, saturation, hue (1,1,1,0: identity) */
    int32_t pad;      /* 48 bytes */
};

/* x: (n, c, h, w) floats in [0,1], modified in place; c must be 3 when any
 * augmentation is on (with both off the call does nothing, for any c).
 * Returns -1 with err filled for a bad shape, n > 65536, a negative jitter
 * strength or hue outside [0, 0.5]. */
int rn_augment_batch(const struct rn_augment *a, float *x, int n, int c, int h, int w,
                     uint64_t seed, uint64_t step, struct rn_error *err);

/* The draws of samples 0 .. n-1 of the batch at optimizer step `step` into
 * out (n entries, host memory): exactly those rn_augment_batch makes, from
 * the same streams in the same order. With both augmentations off no draw is
 * made and out gets n identity draws (the strengths and n <= 65536 are then
 * not checked, as rn_augment_batch does not). Returns -1 with
 * err filled for n < 0, n > 65536, a negative jitter strength or hue outside
 * [0, 0.5] (rn_augment_batch's messages), or out NULL with n > 0. */
int rn_augment_draws(const struct rn_augment *a, int n, uint64_t seed, uint64_t step,
                     struct rn_augment_draw *out, struct rn_error *err);

/* Applies the n draws d (host memory) to x (n, c, h, w) in place on the
 * host: sample i's channels permuted by d[i].perm when channel_permute is on,
 * then, when colour_jitter is on, the ops d[i].order[0..3] with d[i].factor.
 * An op whose strength in a is 0 is skipped, whatever its factor (as
 * torchvision's None, and because hue's HSV round trip is the identity only
 * up to rounding), so a's strengths, not the draws, decide which ops run
 * (the identity factors 1 of brightness, contrast and saturation would leave
 * [0, 1] images exactly unchanged too). rn_augment_draws then rn_augment_apply gives
 * rn_augment_batch's result bit for bit. Returns -1 with err filled for what
 * rn_augment_batch rejects (except n > 65536, which only the draws limit),
 * d NULL with n > 0, or a draw whose perm or order is not a permutation. */
int rn_augment_apply(const struct rn_augment *a, const struct rn_augment_draw *d, float *x, int n,
                     int c, int h, int w, struct rn_error *err);

/* Single-image building blocks, exposed for tests: img (3, h, w) in place,
 * hw = h * w; torchvision's adjust_* on a float tensor. factor >= 0 for
 * brightness/contrast/saturation (output clamped to [0, 1]); hue_factor in
 * [-0.5, 0.5]. */
void rn_adjust_brightness(float *img, int hw, float factor);
void rn_adjust_contrast(float *img, int hw, float factor);
void rn_adjust_saturation(float *img, int hw, float factor);
void rn_adjust_hue(float *img, int hw, float hue_factor);

/* A backend's augmentation (backend.h: its `augment` table; NULL there:
 * the batch is augmented on the host). */
struct rn_augment_kernels {
    /* rn_augment_apply on the device: x (n, c, h, w) floats in place, with
     * the n per-sample draws rn_augment_draws made on the host (draws: the
     * backend's memory; a: host memory). The CPU's is rn_augment_apply. */
    int (*apply)(const struct rn_augment *a, const struct rn_augment_draw *draws, float *x, int n,
                 int c, int h, int w, struct rn_error *err);
};

#endif
