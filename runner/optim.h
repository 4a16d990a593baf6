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

/* An optimizer over the n parameters given (borrowed; trainable ones only):
 * one optimizer per parameter group, each with its own lr and clipping.
 * (rn_optim_init in program.h: every trainable parameter of a graph.) */
int rn_optim_init_params(struct rn_optim *o, enum rn_optim_kind kind,
                         struct rn_param *const *params, int n, struct rn_error *err);
void rn_optim_free(struct rn_optim *o);
/* One update from the accumulated gradients (not zeroed here), on the
 * parameters' device; -1 only on a device error. */
int rn_optim_step(struct rn_optim *o, struct rn_error *err);

/* ---- the update as a backend runs it ---------------------------------- */

/* One optimizer update of a parameter of n floats (the semantics above). */
struct rn_optim_update {
    int kind;           /* enum rn_optim_kind */
    float lr, beta1, beta2, eps, weight_decay, momentum;
    long step;          /* 1-based update count (SGD: 1 = the first) */
    float grad_scale;   /* gradient multiplier (1 when none), unless clip_sq is set */
    /* Clipping by global norm without a round trip: clip_sq (the backend's
     * memory) holds the squared norm of every gradient of the optimizer;
     * when set, the multiplier is clip_norm / (norm + 1e-6) if norm >
     * clip_norm, else 1 (computed in double, torch's clip_grad_norm_). */
    const double *clip_sq;
    double clip_norm;
    /* Adam's bias corrections, computed by rn_optim_update_args in double
     * from the double hyperparameters as torch does: lr / (1 - beta1^step)
     * and sqrt(1 - beta2^step). */
    float step_size, bc2_sqrt;
};

/* The update's arguments from double hyperparameters. */
struct rn_optim_update rn_optim_update_args(int kind, double lr, double beta1, double beta2,
                                            double eps, double weight_decay, double momentum,
                                            long step, float grad_scale);

/* A backend's optimizer kernels (backend.h: its `optim` table, set on every
 * backend: rn_optim_step runs through it on every device). */
struct rn_optim_kernels {
    /* p, g, m, v: n floats each on the device (m, v zero before the first
     * update; v unused by SGD). */
    int (*update)(const struct rn_optim_update *u, float *p, const float *g, float *m, float *v,
                  size_t n, struct rn_error *err);
    /* *acc += sum of x[i]^2 (for clipping by global norm); acc is in the
     * backend's memory (a device double on a device: nothing is read back). */
    int (*sum_squares)(const float *x, size_t n, double *acc, struct rn_error *err);
};

#endif
