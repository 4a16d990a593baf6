/* layers/global_avg_pool.c - mean over H and W: (C,H,W) -> (C,1,1).
 * Schema only so far: the kernels are being written. */
#include "runner/layer.h"

const struct rn_layer_type rn_layer_global_avg_pool = {
    .name = "global_avg_pool",
    .doc = "mean over H and W: (C,H,W) -> (C,1,1)",
    .n_inputs = 1,
};
