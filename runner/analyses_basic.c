/* analyses_basic.c - sample grids, the colour probe and colour statistics.
 * Schemas only so far. */
#include "analysis.h"

#include <stddef.h>

static const struct rn_key samples_keys[] = {
    {"split", RN_KIND_STRING, 0, 0, "all", 1, 0, NULL, "split to draw from, or 'all'"},
    {"n", RN_KIND_INT, 0, 20, NULL, 1, 100, NULL, "images per split"},
};
const struct rn_analysis_type rn_analysis_samples = {
    .name = "samples",
    .doc = "a grid of the first n images of each split with label, colour and prediction",
    .keys = samples_keys,
    .n_keys = 2,
};

static const struct rn_key probe_keys[] = {
    {"digit", RN_KIND_INT, 0, 1, NULL, 0, 9, NULL, "digit to take from the split"},
    {"colour", RN_KIND_STRING, 0, 0, "red", 1, 0, NULL, "palette colour name or index for the background"},
    {"split", RN_KIND_STRING, 0, 0, "test", 1, 0, NULL, "split the digit comes from (its grey MNIST source)"},
    {"index", RN_KIND_INT, 0, -1, NULL, -1, 1e9, NULL, "index in the split; -1 = first image of that digit"},
};
const struct rn_analysis_type rn_analysis_probe = {
    .name = "probe",
    .doc = "a real digit re-coloured with a chosen background; the prediction and the 10 probabilities",
    .keys = probe_keys,
    .n_keys = 4,
};

static const struct rn_key colour_stats_keys[] = {
    {"split", RN_KIND_STRING, 0, 0, "all", 1, 0, NULL, "split, or 'all'"},
};
const struct rn_analysis_type rn_analysis_colour_stats = {
    .name = "colour_stats",
    .doc = "label x colour counts per split, and the detector's agreement with the generator",
    .keys = colour_stats_keys,
    .n_keys = 1,
};
