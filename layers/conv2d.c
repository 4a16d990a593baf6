/* layers/conv2d.c - 2D convolution (PyTorch Conv2d), input channels inferred.
 * Schema only so far: the kernels are being written. */
#include "runner/layer.h"

static const struct rn_key keys[] = {
    {"filters", RN_KIND_INT, 1, 0.0, NULL, 1.0, 65536.0, NULL, "output channels"},
    {"kernel", RN_KIND_INT, 0, 3.0, NULL, 1.0, 15.0, NULL, "square kernel size"},
    {"stride", RN_KIND_INT, 0, 1.0, NULL, 1.0, 8.0, NULL, "stride"},
    {"padding", RN_KIND_INT, 0, 0.0, NULL, 0.0, 7.0, NULL, "zero padding on each side"},
    {"bias", RN_KIND_BOOL, 0, 1.0, NULL, 0.0, 1.0, NULL, "learn a bias per output channel"},
};

const struct rn_layer_type rn_layer_conv2d = {
    .name = "conv2d",
    .doc = "2D convolution (PyTorch Conv2d), input channels inferred",
    .keys = keys,
    .n_keys = (int)(sizeof keys / sizeof keys[0]),
    .n_inputs = 1,
};
