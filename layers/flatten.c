/* layers/flatten.c - (C,H,W) -> (C*H*W,1,1), no copy of meaning, same memory order as torch.flatten.
 * Schema only so far: the kernels are being written. */
#include "runner/layer.h"

const struct rn_layer_type rn_layer_flatten = {
    .name = "flatten",
    .doc = "(C,H,W) -> (C*H*W,1,1), no copy of meaning, same memory order as torch.flatten",
    .n_inputs = 1,
};
