/* optim.h - optimizers with PyTorch semantics (torch.optim 1.13+).
 *
 * An optimizer owns a list of parameters (a group) and their state. Adam:
 * L2 weight decay added to the gradient; AdamW: decoupled decay
 * p *= 1 - lr*wd before the update; SGD: weight decay added to the gradient,
 * momentum buffer initialised to the first gradient (dampening 0).
 * clip_norm > 0 clips the group's global gradient norm first
 * (torch.nn.utils.clip_grad_norm_, factor clip / (norm + 1e-6)).
 */
#ifndef RN_OPTIM_H
#define RN_OPTIM_H

#include "layer.h"

struct rn_graph;

enum rn_optim_kind { RN_OPTIM_ADAM, RN_OPTIM_ADAMW, RN_OPTIM_SGD };

/* ---- the optimizer registry: the only list of optimizer types ---- */

struct rn_optim_type {
    const char *name; /* as written in a spec: "adam" */
    enum rn_optim_kind kind;
    const char *doc;
};
extern const struct rn_optim_type rn_optim_types[];
extern const int rn_n_optim_types;
/* The registry's names in its order, as a schema's choices; a test checks
 * that they agree. */
#define RN_OPTIM_CHOICES "adam|adamw|sgd"

/* NULL when name is not a registered optimizer. */
const struct rn_optim_type *rn_optim_type_find(const char *name);
/* The same, or an error listing the valid names (and the nearest). */
int rn_optim_kind_of(const char *name, enum rn_optim_kind *out, struct rn_error *err);

struct rn_optim {
    enum rn_optim_kind kind;
    double lr, beta1, beta2, eps, weight_decay, momentum, clip_norm;
    long step;                 /* updates done */
    struct rn_param **params;  /* borrowed, n */
    struct rn_tensor *m, *v;   /* state per param (Adam: moments; SGD: m = momentum buffer) */
    void *clip_acc;            /* the squared gradient norm, where the parameters live */
    int clip_device;           /* enum rn_device of clip_acc */
    int n;
};

/* kind: a registered name ("adam" | "adamw" | "sgd"). Takes every trainable
 * parameter of g. */
int rn_optim_init(struct rn_optim *o, const char *kind, struct rn_graph *g, struct rn_error *err);
/* The same over the n parameters given (borrowed; trainable ones only):
 * one optimizer per parameter group, each with its own lr and clipping. */
int rn_optim_init_params(struct rn_optim *o, enum rn_optim_kind kind,
                         struct rn_param *const *params, int n, struct rn_error *err);
void rn_optim_free(struct rn_optim *o);
/* One update from the accumulated gradients (not zeroed here), on the
 * parameters' device; -1 only on a device error. */
int rn_optim_step(struct rn_optim *o, struct rn_error *err);

#endif
