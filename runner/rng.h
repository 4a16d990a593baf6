/* rng.h - the runner's one random number generator.
 *
 * PCG32 (O'Neill, pcg-random.org: 64-bit LCG state, XSH-RR output) with a
 * stream selector. Every random decision of a run derives from the run seed
 * and a fixed stream id, so results do not depend on thread count or on the
 * order in which independent parts run:
 *   - per-item streams: rn_rng_init(&r, seed, RN_STREAM_x, item_index)
 *     gives item i its own generator (e.g. one per image in the colouriser);
 *   - floats in [0,1) use the top 24 bits: (u32 >> 8) * 2^-24.
 */
#ifndef RN_RNG_H
#define RN_RNG_H

#include <stdint.h>

struct rn_rng {
    uint64_t state;
    uint64_t inc; /* odd */
};

enum rn_stream {
    RN_STREAM_DATA_TRAIN = 1, /* colouring of the MNIST train images, per image */
    RN_STREAM_DATA_TEST = 2,  /* colouring of the MNIST test images, per image */
    RN_STREAM_SPLIT = 3,      /* the train/val permutation */
    RN_STREAM_INIT = 4,       /* parameter initialisation */
    RN_STREAM_SHUFFLE = 5,    /* per-epoch shuffle (item = epoch) */
    RN_STREAM_DROPOUT = 6,    /* dropout masks (item = step) */
    RN_STREAM_AUGMENT = 7,    /* augmentations (item = step) */
    RN_STREAM_ANALYSIS = 8,   /* analyses */
    RN_STREAM_SAE = 9,        /* sparse autoencoders (sae.h: init, resampling, shuffles) */
};

/* Seeds a generator for (seed, stream, item). Distinct triples give
 * independent sequences. */
void rn_rng_init(struct rn_rng *r, uint64_t seed, uint64_t stream, uint64_t item);
uint32_t rn_rng_u32(struct rn_rng *r);
/* Uniform integer in [0, n), unbiased (Lemire's method). n > 0. */
uint32_t rn_rng_below(struct rn_rng *r, uint32_t n);
/* Uniform float in [0, 1). */
float rn_rng_uniform(struct rn_rng *r);
/* Standard normal (Box-Muller, both values used alternately is NOT done:
 * one call consumes two u32 and returns one value, for reproducibility). */
float rn_rng_normal(struct rn_rng *r);
/* Fisher-Yates shuffle of idx[0..n). */
void rn_rng_shuffle(struct rn_rng *r, int *idx, int n);

#endif
