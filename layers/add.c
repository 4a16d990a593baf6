/* layers/add.c - element-wise sum of two inputs of the same shape (residual branches); from: [a, b].
 * Schema only so far: the kernels are being written. */
#include "runner/layer.h"

const struct rn_layer_type rn_layer_add = {
    .name = "add",
    .doc = "element-wise sum of two inputs of the same shape (residual branches); from: [a, b]",
    .n_inputs = 2,
};
