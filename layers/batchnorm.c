/* layers/batchnorm.c - batch normalisation over C, for (C,H,W) (BatchNorm2d) and (C,1,1) (BatchNorm1d) inputs.
 * Schema only so far: the kernels are being written. */
#include "runner/layer.h"

static const struct rn_key keys[] = {
    {"eps", RN_KIND_FLOAT, 0, 1e-05, NULL, 0.0, 1.0, NULL, "added to the variance"},
    {"momentum", RN_KIND_FLOAT, 0, 0.1, NULL, 0.0, 1.0, NULL, "running statistics update rate"},
};

const struct rn_layer_type rn_layer_batchnorm = {
    .name = "batchnorm",
    .doc = "batch normalisation over C, for (C,H,W) (BatchNorm2d) and (C,1,1) (BatchNorm1d) inputs",
    .keys = keys,
    .n_keys = (int)(sizeof keys / sizeof keys[0]),
    .n_inputs = 1,
};
