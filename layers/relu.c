/* layers/relu.c - max(x, 0).
 * Schema only so far: the kernels are being written. */
#include "runner/layer.h"

const struct rn_layer_type rn_layer_relu = {
    .name = "relu",
    .doc = "max(x, 0)",
    .n_inputs = 1,
};
