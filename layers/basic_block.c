/* layers/basic_block.c - ResNet BasicBlock: conv3x3-bn-relu-conv3x3-bn + shortcut (1x1 conv + bn when the shape changes), then relu; expanded by the graph into named nodes.
 *
 * A schema only, by design: the graph expands each basic_block into conv2d,
 * batchnorm, relu and add nodes with PyTorch's names (expand_basic_block in
 * runner/graph.c), whose own passes run on the CPU and the GPU. The type has
 * no passes, gradient check or CUDA kernels of its own (tests/test_layers.c
 * says so in its no_passes list). */
#include "runner/layer.h"

static const struct rn_key keys[] = {
    {"filters", RN_KIND_INT, 1, 0.0, NULL, 1.0, 65536.0, NULL, "output channels"},
    {"stride", RN_KIND_INT, 0, 1.0, NULL, 1.0, 8.0, NULL, "stride of the first conv and the shortcut"},
    {"kernel", RN_KIND_INT, 0, 3.0, NULL, 1.0, 7.0, NULL, "kernel size of both convs (1 for the colour-only variant)"},
};

const struct rn_layer_type rn_layer_basic_block = {
    .name = "basic_block",
    .doc = "ResNet BasicBlock: conv3x3-bn-relu-conv3x3-bn + shortcut (1x1 conv + bn when the shape changes), then relu; expanded by the graph into named nodes",
    .keys = keys,
    .n_keys = (int)(sizeof keys / sizeof keys[0]),
    .n_inputs = 1,
};
