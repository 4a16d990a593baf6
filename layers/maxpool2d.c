/* layers/maxpool2d.c - max pooling; gradient to the first maximum in row-major order (PyTorch).
 * Schema only so far: the kernels are being written. */
#include "runner/layer.h"

static const struct rn_key keys[] = {
    {"kernel", RN_KIND_INT, 0, 2.0, NULL, 1.0, 15.0, NULL, "window size"},
    {"stride", RN_KIND_INT, 0, 0.0, NULL, 0.0, 15.0, NULL, "stride (0 = kernel)"},
    {"padding", RN_KIND_INT, 0, 0.0, NULL, 0.0, 7.0, NULL, "implicit -inf padding"},
};

const struct rn_layer_type rn_layer_maxpool2d = {
    .name = "maxpool2d",
    .doc = "max pooling; gradient to the first maximum in row-major order (PyTorch)",
    .keys = keys,
    .n_keys = (int)(sizeof keys / sizeof keys[0]),
    .n_inputs = 1,
};
