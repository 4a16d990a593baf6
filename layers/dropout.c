/* layers/dropout.c - inverted dropout (PyTorch): zero with probability p and scale by 1/(1-p) in training.
 * Schema only so far: the kernels are being written. */
#include "runner/layer.h"

static const struct rn_key keys[] = {
    {"p", RN_KIND_FLOAT, 0, 0.5, NULL, 0.0, 0.999, NULL, "drop probability"},
};

const struct rn_layer_type rn_layer_dropout = {
    .name = "dropout",
    .doc = "inverted dropout (PyTorch): zero with probability p and scale by 1/(1-p) in training",
    .keys = keys,
    .n_keys = (int)(sizeof keys / sizeof keys[0]),
    .n_inputs = 1,
};
