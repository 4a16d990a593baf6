/* layer.h - the layer contract.
 *
 * A layer type is one constant descriptor (struct rn_layer_type): its YAML
 * name, its key schema, and functions to build, initialise, run forward,
 * backward and in tangent mode, and free. A layer instance (struct rn_layer)
 * is one node of the graph.
 *
 * Conventions every layer follows:
 *  - Activations are (N, C, H, W) float tensors; vectors are (N, C, 1, 1).
 *    x[i] are the inputs (one, or two for `add`), y the output. The batch
 *    size n of a call is x[0]->n and is <= the max_n given to build; the
 *    layer sets y->n (y was allocated for max_n by the graph).
 *  - backward ACCUMULATES: dx[i] += J_x^T dy and param grad += J_w^T dy.
 *    The executor zeroes activation gradients before a backward pass and
 *    parameter gradients when the optimizer asks. dx[i] may be NULL when the
 *    input gradient is not needed (e.g. the first layer without saliency);
 *    then the layer skips that work. Exception: a type with
 *    backward_assigns set writes dx[i] = J_x^T dy when bit i of
 *    ctx->dx_assign says dx[i] holds no value yet (the pooled backward then
 *    skips zeroing that buffer: one pass less over each activation gradient).
 *  - backward may rely on state its last forward saved in priv (argmax
 *    indices, dropout masks, im2col buffers) and on x and y being unchanged.
 *  - Tangent mode (DESIGN.md "Differentiation"): tangent_forward pushes an
 *    input direction tx through the forward: ty = J_x(x) tx. tangent_backward
 *    differentiates the backward pass along the same direction, given the
 *    cotangent dy and its tangent tdy: tdx[i] += d/de [J_x(x + e tx)^T (dy + e tdy)]
 *    and param grad += d/de [J_w(x + e tx)^T (dy + e tdy)]. Both are NULL for
 *    ops that cannot provide them (batchnorm in training mode checks ctx->train
 *    and returns an error).
 *  - Parameters use PyTorch state_dict names ("weight", "bias",
 *    "running_mean", ...) and layouts (conv OIHW, linear [out, in]).
 */
#ifndef RN_LAYER_H
#define RN_LAYER_H

#include <stdint.h>

#include "error.h"
#include "rng.h"
#include "schema.h"
#include "tensor.h"

#define RN_MAX_INPUTS 2
#define RN_MAX_PARAMS 6
#define RN_NAME_MAX 96

struct rn_shape {
    int c, h, w;
};

struct rn_param {
    char name[32];          /* state_dict suffix: "weight", "bias", ... */
    struct rn_tensor value; /* (O,I,kH,kW) conv; (out,in,1,1) linear; (C,1,1,1) vectors */
    struct rn_tensor grad;  /* same shape as value; empty (data NULL) for buffers */
    int ndim;               /* dims of the PyTorch tensor: 4 conv, 2 linear, 1 vector, 0 scalar */
    int trainable;          /* 0 for buffers such as running statistics */
    int is_int64;           /* saved as int64 (num_batches_tracked) */
};

/* Per-pass context. */
struct rn_ctx {
    int train;     /* 1: training mode (batchnorm batch stats, dropout active) */
    uint64_t seed; /* run seed */
    uint64_t step; /* global step: dropout masks use stream (seed, DROPOUT, step*1024 + node) */
    int node;      /* index of the node being run */
    int input_grad_only; /* 1: backward needs only input gradients; a layer may skip its
                            parameter gradients (which are then left as they were) */
    unsigned dx_assign;  /* bit i: dx[i] holds no value yet, write it (types with
                            backward_assigns only; 0 everywhere else) */
};

struct rn_layer;

/* The passes of a layer (rn_layer_type: the CPU's; rn_layer_kernels: a
 * device's). */
typedef int rn_layer_forward_fn(struct rn_layer *l, const struct rn_tensor *const *x,
                                struct rn_tensor *y, const struct rn_ctx *ctx,
                                struct rn_error *err);
typedef int rn_layer_backward_fn(struct rn_layer *l, const struct rn_tensor *const *x,
                                 const struct rn_tensor *y, const struct rn_tensor *dy,
                                 struct rn_tensor *const *dx, const struct rn_ctx *ctx,
                                 struct rn_error *err);
typedef int rn_layer_tangent_forward_fn(struct rn_layer *l, const struct rn_tensor *const *x,
                                        const struct rn_tensor *const *tx, struct rn_tensor *ty,
                                        const struct rn_ctx *ctx, struct rn_error *err);
typedef int rn_layer_tangent_backward_fn(struct rn_layer *l, const struct rn_tensor *const *x,
                                         const struct rn_tensor *const *tx,
                                         const struct rn_tensor *dy, const struct rn_tensor *tdy,
                                         struct rn_tensor *const *tdx, const struct rn_ctx *ctx,
                                         struct rn_error *err);

struct rn_layer_type {
    const char *name; /* YAML `type:` */
    const char *doc;  /* one line */
    const struct rn_key *keys;
    int n_keys;
    int n_inputs; /* 1, or 2 for add */
    /* Checks l->in[] against l->v, sets l->out, allocates params (value and
     * grad) and priv for batches up to max_n. Errors say what does not fit
     * ("expects a (C,1,1) vector input, got (64,7,7); add flatten or
     * global_avg_pool before it"); the caller prefixes file:line:col. */
    int (*build)(struct rn_layer *l, int max_n, struct rn_error *err);
    /* PyTorch's default initialisation (kaiming_uniform(a=sqrt(5)) for conv
     * and linear weights, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for biases,
     * ones/zeros for batchnorm). NULL: nothing to initialise. */
    void (*init)(struct rn_layer *l, struct rn_rng *rng);
    rn_layer_forward_fn *forward;
    rn_layer_backward_fn *backward;
    rn_layer_tangent_forward_fn *tangent_forward;
    rn_layer_tangent_backward_fn *tangent_backward;
    /* Eval-mode forward followed by a relu, in one pass: y = max(forward, 0).
     * Inference passes (rn_graph_infer) call it on a CPU graph when the
     * node's only reader is a relu node, which it then replaces. NULL: none. */
    rn_layer_forward_fn *forward_relu;
    /* 1: backward honours ctx->dx_assign (writes every element of dx[i] for
     * the batch instead of adding when bit i is set). 0: the executor zeroes
     * dx[i] before calling it. */
    int backward_assigns;
    /* Frees priv (params are freed by rn_layer_free). NULL: nothing. */
    void (*free)(struct rn_layer *l);
    /* Forward floating-point operations for one image at inference, from
     * l->in, l->out and l->v after build (runner summary). A multiply-add
     * counts as 2 (conv: 2*Cin*k*k*Cout*Hout*Wout, plus Cout*Hout*Wout for
     * the bias); a comparison, addition or scaling as 1 per element;
     * identities at inference (dropout, grl, flatten) as 0. Every type that
     * builds has one (test_summary checks). */
    int64_t (*flops)(const struct rn_layer *l);
};

/* One backend's implementation of one layer type (backend.h: the layer
 * entry of a device's table). forward .. tangent_backward have the
 * signatures and the contract of struct rn_layer_type, on tensors of that
 * backend's device; NULL: not available there (the executor reports it by
 * name). */
struct rn_layer_kernels {
    const char *type; /* layer type name, as in the registry */
    /* Called once after the layer's parameters were moved to the device:
     * creates descriptors and workspaces in l->dpriv for batches <= max_n. */
    int (*prepare)(struct rn_layer *l, int max_n, struct rn_error *err);
    /* Frees l->dpriv (NULL-safe). */
    void (*release)(struct rn_layer *l);
    rn_layer_forward_fn *forward;
    rn_layer_backward_fn *backward;
    rn_layer_tangent_forward_fn *tangent_forward;
    rn_layer_tangent_backward_fn *tangent_backward;
};

struct rn_layer {
    const struct rn_layer_type *type; /* borrowed, static */
    char name[RN_NAME_MAX];           /* unique node name, e.g. "conv1", "layer1.0.bn1" */
    const char *file;                 /* spec file it was declared in (borrowed) */
    int line, col;                    /* 1-based position of its declaration */
    struct rn_values v;               /* resolved keys, schema order */
    struct rn_shape in[RN_MAX_INPUTS];
    int n_in;
    struct rn_shape out;
    struct rn_param params[RN_MAX_PARAMS];
    int n_params;
    int max_n;
    void *priv;  /* type-specific state, owned */
    void *dpriv; /* the device backend's state (backend.h), owned by its kernels */
};

/* The registry: every layer type, in one table (runner/layer.c). */
extern const struct rn_layer_type *const rn_layer_types[];
extern const int rn_n_layer_types;
/* NULL if unknown. */
const struct rn_layer_type *rn_layer_type_find(const char *name);

/* Helpers for build functions: adds a parameter with a (n,c,h,w) tensor and,
 * when trainable, a gradient of the same shape. */
int rn_layer_add_param(struct rn_layer *l, const char *name, int ndim, int n, int c, int h, int w,
                       int trainable, struct rn_error *err);
struct rn_param *rn_layer_param(struct rn_layer *l, const char *name);
/* Frees params and priv (via type->free); the struct itself is the caller's. */
void rn_layer_free(struct rn_layer *l);

/* For layers whose passes follow the mode of their last forward (batchnorm,
 * dropout), last_train being that mode: -1 and one line naming both modes
 * when the pass (e.g. "backward") runs in the other one. */
int rn_layer_check_mode(const struct rn_layer *l, const struct rn_ctx *ctx, int last_train,
                        const char *pass, struct rn_error *err);
/* rn_layer_check_mode for a tangent pass of a layer that has tangents only
 * in eval mode (batchnorm): training mode is refused first. */
int rn_layer_check_eval_tangent(const struct rn_layer *l, const struct rn_ctx *ctx, int last_train,
                                const char *pass, struct rn_error *err);

#endif
