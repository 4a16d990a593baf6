/* graph.h - the layer graph built from a spec's layer list.
 *
 * Nodes run in declaration order; each node reads the previous node's output
 * or the nodes named by `from:` (always earlier ones), so declaration order
 * is a topological order. basic_block entries expand into named nodes
 * (<block>.conv1, <block>.bn1, ..., <block>.shortcut.0/1) whose parameter
 * names match PyTorch's CIFAR ResNet state_dict; the block's last node (the
 * final relu) carries the block's own name so `from: <block>` works.
 *
 * Every node owns its output y and the gradient arriving at it, dy; y is
 * allocated for max_n samples at build time, dy for grad_n samples (max_n
 * unless rn_graph_reserve_grad lowers it: evaluation batches are often larger
 * than training ones and need no gradients). Any node's y and dy are
 * readable after a pass ("taps"), except after the two passes that share
 * buffers by liveness to save memory: rn_graph_infer (evaluation: only the
 * kept outputs) and rn_graph_backward_pooled (training steps: only the dy
 * the caller filled). The input gradient dx is computed only when asked for
 * (saliency, PGD).
 */
#ifndef RN_GRAPH_H
#define RN_GRAPH_H

#include "backend.h"
#include "layer.h"
#include "spec.h"

struct rn_node {
    struct rn_layer layer;
    int in[RN_MAX_INPUTS]; /* producing node indices; -1 = the graph input */
    int n_in;
    struct rn_tensor y;               /* (n, out.c, out.h, out.w) */
    struct rn_tensor dy;              /* same shape: d loss / d y, accumulated by consumers */
    struct rn_tensor ty;              /* tangent of y (allocated on first tangent pass) */
    struct rn_tensor tdy;             /* tangent of dy */
    int on_path;                      /* scratch: node lies on a path to the loss node */
    struct rn_tensor yh;              /* device graphs: host copy of y (rn_graph_output_host) */
    struct rn_tensor dyh;             /* device graphs: host part of dy (rn_graph_grad_host) */
    int dyh_dirty;                    /* dyh holds gradient not yet copied to dy */
    const struct rn_layer_kernels *k; /* device graphs: the backend's kernels of this node */
};

#define RN_GRAPH_SCRATCH 2

struct rn_pool {
    struct rn_tensor *buf;
    int n;
};

struct rn_graph {
    struct rn_node *nodes; /* owned, n_nodes */
    int n_nodes;
    struct rn_shape in_shape;
    int max_n;
    int grad_n;           /* samples the dy buffers hold */
    struct rn_tensor x;   /* (n, in_shape): the caller fills it before forward */
    struct rn_tensor dx;  /* d loss / d x, allocated on first need */
    struct rn_tensor tx;  /* input tangent direction (caller fills), lazily */
    struct rn_tensor tdx; /* tangent of dx, lazily */
    int device;           /* enum rn_device: where every tensor above lives */
    double param_bytes;   /* parameters and their gradients, as built */
    double act_bytes;     /* x and every node's y and dy for max_n samples */
    struct rn_tensor xh;  /* device graphs: host staging of x (rn_graph_input_host) */
    /* grow-only working memory of the passes built on the graph
     * (rn_graph_scratch), each on the device it was asked for */
    void *scratch[RN_GRAPH_SCRATCH];
    size_t scratch_bytes[RN_GRAPH_SCRATCH];
    int scratch_device[RN_GRAPH_SCRATCH];
    /* grow-only buffers on g->device that nodes share by turns: outputs in
     * inference passes (rn_graph_infer), gradients in pooled backward
     * passes (rn_graph_backward_pooled) */
    struct rn_pool ypool, dypool;
    int n_fused; /* node pairs the last forward ran as one (conv + relu; inference passes only) */
    int n_assigned; /* gradient buffers the last pooled backward let a layer write, unzeroed */
};

/* Working memory that lives as long as the graph (slot < RN_GRAPH_SCRATCH;
 * the saliency loss uses 0 and 1): at least bytes on device d, reused from
 * the last call when it is large enough and there (content kept), else
 * made anew (zeroed). Freed with the graph, and when it moves. NULL on
 * error. */
void *rn_graph_scratch(struct rn_graph *g, int slot, int d, size_t bytes, struct rn_error *err);

/* Builds every node, infers shapes, allocates. Errors carry the layer's
 * file:line:col ("x.yaml:12:7: error: layer 'fc' (linear): ..."). A model
 * whose parameters, gradients and activations for max_n samples need more
 * than rn_mem_limit() (tensor.h) is refused at the layer that crosses it,
 * before its activations are allocated, with the numbers. */
int rn_graph_build(struct rn_graph *g, const struct rn_spec_model *m, struct rn_shape in, int max_n,
                   struct rn_error *err);
void rn_graph_free(struct rn_graph *g);

/* PyTorch default initialisation of every parameter from stream
 * (seed, RN_STREAM_INIT, node index). */
void rn_graph_init_params(struct rn_graph *g, uint64_t seed);

/* Node index by name, -1 if none. */
int rn_graph_find(const struct rn_graph *g, const char *name);
/* Number of trainable scalars. */
size_t rn_graph_n_trainable(const struct rn_graph *g);

/* Forward over nodes [0, last] (last = -1: all) for the first n samples of
 * g->x. ctx->train selects training behaviour. */
int rn_graph_forward(struct rn_graph *g, int n, int last, struct rn_ctx *ctx, struct rn_error *err);

/* Forward in eval mode for the n samples of g->x when only the outputs of
 * the nodes keep[0..n_keep) are wanted (evaluation: the heads' logits).
 * Those nodes write their own y as rn_graph_forward does; every other node
 * up to the last kept one writes into a buffer of g->pool that it shares
 * with nodes whose outputs are no longer needed, so a pass costs memory for
 * the few activations alive at once, not for every node at the batch. After
 * it only the kept nodes' y are defined (no taps, no backward). */
int rn_graph_infer(struct rn_graph *g, int n, const int *keep, int n_keep, struct rn_ctx *ctx,
                   struct rn_error *err);

/* Backward over the nodes marked in run (rn_graph_backward_nodes) where only
 * the nodes marked in src had their dy filled by the caller (zeroed with
 * rn_graph_zero_dy_nodes(src), then the loss gradients): every other node's
 * gradient lives in a buffer of g->dypool from the backward of its last
 * consumer to its own, so a training step holds a few activation gradients
 * at once, not one per node. Parameter gradients are bit for bit those of
 * rn_graph_backward_nodes; afterwards only the src nodes' dy are defined. */
int rn_graph_backward_pooled(struct rn_graph *g, int n, const unsigned char *run,
                             const unsigned char *src, struct rn_ctx *ctx, struct rn_error *err);

/* Backward from node `loss_node`, whose dy the caller has filled (the
 * executor zeroes every other dy first: call rn_graph_zero_dy before filling).
 * Only nodes upstream of loss_node run. Parameter gradients accumulate.
 * want_dx: also compute g->dx. */
/* Sizes every dy buffer for n samples (reallocating them). */
int rn_graph_reserve_grad(struct rn_graph *g, int n, struct rn_error *err);
/* Zeroes dy for a pass of n samples, growing the buffers if n > grad_n;
 * -1 when that allocation or the device fails (err says which). */
int rn_graph_zero_dy(struct rn_graph *g, int n, struct rn_error *err);
int rn_graph_backward(struct rn_graph *g, int n, int loss_node, int want_dx, struct rn_ctx *ctx,
                      struct rn_error *err);

/* Allocates g->tx on first use and sets its batch to n, so the caller can
 * fill the input direction before rn_graph_tangent_forward (which would
 * otherwise allocate it itself, zeroed). */
int rn_graph_tangent_input(struct rn_graph *g, int n, struct rn_error *err);

/* Tangent passes along g->tx (forward) and the tangent of loss_node's dy
 * (tdy, filled by the caller after rn_graph_tangent_forward): parameter
 * gradients accumulate R{dW}; g->tdx gets R{dx}. */
int rn_graph_tangent_forward(struct rn_graph *g, int n, int last, struct rn_ctx *ctx,
                             struct rn_error *err);
int rn_graph_tangent_backward(struct rn_graph *g, int n, int loss_node, struct rn_ctx *ctx,
                              struct rn_error *err);

/* Moves every parameter, buffer and activation to device d (enum rn_device,
 * backend.h) and prepares each node's kernels there; moving back to the CPU
 * brings the parameters home (analyses, checkpoints). A layer type without
 * kernels on d is an error naming it; the graph is then unchanged. */
int rn_graph_to_device(struct rn_graph *g, int d, struct rn_error *err);

/* Host access for code that works on host memory whatever the device (loss
 * terms, metrics). On a CPU graph these are the tensors themselves.
 * rn_graph_input_host: where to write the next batch (n samples); then
 * rn_graph_input_commit copies it to the device. rn_graph_output_host:
 * node i's output after a forward (downloaded). rn_graph_grad_host: a host
 * buffer zeroed with dy by rn_graph_zero_dy*, for the loss to add into; the
 * next backward copies it to node i's dy first (so nothing but the loss may
 * write that dy in between). NULL with err set on a device error. */
struct rn_tensor *rn_graph_input_host(struct rn_graph *g, int n, struct rn_error *err);
int rn_graph_input_commit(struct rn_graph *g, struct rn_error *err);
const struct rn_tensor *rn_graph_output_host(struct rn_graph *g, int i, struct rn_error *err);
struct rn_tensor *rn_graph_grad_host(struct rn_graph *g, int i, struct rn_error *err);

/* A host view of any graph tensor t: t itself when it lives on the host,
 * else stage (host scratch the caller owns and frees, grown as needed) with
 * t's shape, holding t's content when fetch is set. rn_host_commit copies a
 * view that is not t back into t. */
struct rn_tensor *rn_host_view(struct rn_tensor *t, struct rn_tensor *stage, int fetch,
                               struct rn_error *err);
int rn_host_commit(struct rn_tensor *t, struct rn_tensor *view, struct rn_error *err);

/* Zeroes every trainable parameter gradient; -1 only when the device fails. */
int rn_graph_zero_grad(struct rn_graph *g, struct rn_error *err);

/* Partial passes, for step programs (DESIGN.md "Training as data"): work
 * that cannot change between sub-steps is not redone. A node set is an
 * array of g->n_nodes bytes, nonzero = in the set. */

/* out = `from` and every node that reads one of them, directly or not. */
void rn_graph_mark_downstream(const struct rn_graph *g, const unsigned char *from,
                              unsigned char *out);
/* out = `to` and every node they read, directly or not. */
void rn_graph_mark_upstream(const struct rn_graph *g, const unsigned char *to, unsigned char *out);

/* Forward of only the nodes in `run`, in order, for the first n samples of
 * g->x. A node outside `run` keeps its output from an earlier pass, so the
 * result equals a full forward when `run` holds every node whose parameters,
 * keys or inputs changed since then. */
int rn_graph_forward_nodes(struct rn_graph *g, int n, const unsigned char *run, struct rn_ctx *ctx,
                           struct rn_error *err);

/* Zeroes (and sets the batch of) the dy of the nodes in the set, growing the
 * buffers as rn_graph_zero_dy does; -1 (err set) when that fails. */
int rn_graph_zero_dy_nodes(struct rn_graph *g, int n, const unsigned char *nodes,
                           struct rn_error *err);

/* Backward over only the nodes in `run`, from the dy the caller filled (after
 * rn_graph_zero_dy_nodes on the same set). A node passes gradients only to
 * inputs in `run` (and to g->dx when want_dx), so nodes outside get nothing:
 * run = upstream(loss nodes) & downstream(nodes whose parameters learn) is
 * the least work that gives those parameters their full gradient.
 * Parameter gradients of the nodes run accumulate. */
int rn_graph_backward_nodes(struct rn_graph *g, int n, const unsigned char *run, int want_dx,
                            struct rn_ctx *ctx, struct rn_error *err);

#endif
