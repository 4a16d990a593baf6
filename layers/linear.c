/* layers/linear.c - fully connected layer (PyTorch Linear) on a (C,1,1) input.
 * Schema only so far: the kernels are being written. */
#include "runner/layer.h"

static const struct rn_key keys[] = {
    {"units", RN_KIND_INT, 1, 0.0, NULL, 1.0, 1048576.0, NULL, "output features"},
    {"bias", RN_KIND_BOOL, 0, 1.0, NULL, 0.0, 1.0, NULL, "learn a bias"},
};

const struct rn_layer_type rn_layer_linear = {
    .name = "linear",
    .doc = "fully connected layer (PyTorch Linear) on a (C,1,1) input",
    .keys = keys,
    .n_keys = (int)(sizeof keys / sizeof keys[0]),
    .n_inputs = 1,
};
