/* kernels/cuda/layers/registry.c - the CUDA backend's layer table: the
 * kernels of every layer type that runs as a node, one line per type (the
 * device side of runner/layer.c's registry). tests/test_layers.c checks that
 * every registered type has an entry here, or a reason why not. */
#include <string.h>

#include "kernels/cuda/layers/common.h"

extern const struct rn_layer_kernels rn_cuda_layer_conv2d, rn_cuda_layer_linear, rn_cuda_layer_relu,
    rn_cuda_layer_maxpool2d, rn_cuda_layer_avgpool2d, rn_cuda_layer_global_avg_pool,
    rn_cuda_layer_flatten, rn_cuda_layer_dropout, rn_cuda_layer_batchnorm, rn_cuda_layer_add,
    rn_cuda_layer_grl;

/* clang-format off */
static const struct rn_layer_kernels *const cuda_layers[] = {
    &rn_cuda_layer_conv2d,
    &rn_cuda_layer_linear,
    &rn_cuda_layer_relu,
    &rn_cuda_layer_maxpool2d,
    &rn_cuda_layer_avgpool2d,
    &rn_cuda_layer_global_avg_pool,
    &rn_cuda_layer_flatten,
    &rn_cuda_layer_dropout,
    &rn_cuda_layer_batchnorm,
    &rn_cuda_layer_add,
    &rn_cuda_layer_grl,
};
/* clang-format on */
/* runner/layer.c registers 12 types; basic_block has no kernels anywhere: the
 * graph expands it into conv2d, batchnorm, relu and add nodes. */
_Static_assert(sizeof cuda_layers / sizeof cuda_layers[0] == 11,
               "one entry per layer type of runner/layer.c but basic_block; "
               "tests/test_layers.c checks the names");

const struct rn_layer_kernels *rn_cuda_layer_kernels(const char *type)
{
    if (!type)
        return NULL;
    for (size_t i = 0; i < sizeof cuda_layers / sizeof cuda_layers[0]; i++)
        if (strcmp(cuda_layers[i]->type, type) == 0)
            return cuda_layers[i];
    return NULL;
}
