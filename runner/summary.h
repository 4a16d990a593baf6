/* summary.h - the model as a table (`runner summary`, `runner validate --summary`).
 *
 * One row per graph node: its name, layer type, output shape (C,H,W), its
 * trainable parameters and its forward MFLOP for one image, then the totals
 * and the counting convention, as Darknet and torchsummary print a model.
 * Parameters are the trainable scalars (weights and biases; running
 * statistics are buffers, as in PyTorch's parameters()). FLOPs come from
 * each layer type's `flops` (layer.h): a multiply-add counts as 2.
 */
#ifndef RN_SUMMARY_H
#define RN_SUMMARY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "graph.h"

/* Trainable scalars of node i. */
size_t rn_summary_node_params(const struct rn_graph *g, int i);
/* Forward FLOPs of node i for one image (0 when its type counts none). */
int64_t rn_summary_node_flops(const struct rn_graph *g, int i);
/* Sum of rn_summary_node_flops over every node. */
int64_t rn_summary_flops(const struct rn_graph *g);
/* Writes the table for a built graph to f; model names it in the heading. */
void rn_summary_print(FILE *f, const struct rn_graph *g, const char *model);

#endif
