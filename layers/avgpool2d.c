/* layers/avgpool2d.c - average pooling (count_include_pad, PyTorch default).
 * Schema only so far: the kernels are being written. */
#include "runner/layer.h"

static const struct rn_key keys[] = {
    {"kernel", RN_KIND_INT, 0, 2.0, NULL, 1.0, 15.0, NULL, "window size"},
    {"stride", RN_KIND_INT, 0, 0.0, NULL, 0.0, 15.0, NULL, "stride (0 = kernel)"},
    {"padding", RN_KIND_INT, 0, 0.0, NULL, 0.0, 7.0, NULL, "zero padding"},
};

const struct rn_layer_type rn_layer_avgpool2d = {
    .name = "avgpool2d",
    .doc = "average pooling (count_include_pad, PyTorch default)",
    .keys = keys,
    .n_keys = (int)(sizeof keys / sizeof keys[0]),
    .n_inputs = 1,
};
