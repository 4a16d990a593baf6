#include "optim.h"

#include "backend.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* ---- the registry ---------------------------------------------------------------- */

/* In enum order. */
const struct rn_optim_type rn_optim_types[] = {
    {"adam", RN_OPTIM_ADAM, "Adam; weight decay is L2, added to the gradient (torch.optim.Adam)"},
    {"adamw", RN_OPTIM_ADAMW, "AdamW; decoupled weight decay p *= 1 - lr*wd (torch.optim.AdamW)"},
    {"sgd", RN_OPTIM_SGD, "SGD with momentum, dampening 0 (torch.optim.SGD)"},
};
const int rn_n_optim_types = (int)(sizeof rn_optim_types / sizeof rn_optim_types[0]);
_Static_assert(sizeof rn_optim_types / sizeof rn_optim_types[0] == RN_OPTIM_SGD + 1,
               "one registry entry per enum rn_optim_kind, in order");

const struct rn_optim_type *rn_optim_type_find(const char *name)
{
    for (int i = 0; i < rn_n_optim_types; i++)
        if (strcmp(rn_optim_types[i].name, name) == 0)
            return &rn_optim_types[i];
    return NULL;
}

int rn_optim_kind_of(const char *name, enum rn_optim_kind *out, struct rn_error *err)
{
    const struct rn_optim_type *t = rn_optim_type_find(name);
    if (t) {
        *out = t->kind;
        return 0;
    }
    const char *names[8];
    char valid[256] = "", sug[64] = "";
    size_t len = 0;
    for (int i = 0; i < rn_n_optim_types && i < 8; i++) {
        names[i] = rn_optim_types[i].name;
        len += (size_t)snprintf(valid + len, len < sizeof valid ? sizeof valid - len : 0, "%s%s",
                                i ? ", " : "", names[i]);
    }
    const char *near = rn_nearest(name, names, rn_n_optim_types < 8 ? rn_n_optim_types : 8);
    if (near)
        snprintf(sug, sizeof sug, " (did you mean '%s'?)", near);
    return rn_errorf(err, "unknown optimizer '%s'%s; valid optimizers: %s", name, sug, valid);
}

/* ---- optimizers --------------------------------------------------------------------- */

int rn_optim_init_params(struct rn_optim *o, enum rn_optim_kind kind,
                         struct rn_param *const *params, int n, struct rn_error *err)
{
    memset(o, 0, sizeof *o);
    o->kind = kind;
    o->lr = 1e-3;
    o->beta1 = 0.9;
    o->beta2 = 0.999;
    o->eps = 1e-8;
    o->params = rn_calloc((size_t)n + 1, sizeof *o->params, err);
    o->m = rn_calloc((size_t)n + 1, sizeof *o->m, err);
    o->v = rn_calloc((size_t)n + 1, sizeof *o->v, err);
    if (!o->params || !o->m || !o->v)
        goto fail;
    for (int i = 0; i < n; i++) {
        struct rn_param *p = params[i];
        if (!p->trainable)
            continue;
        const struct rn_tensor *t = &p->value;
        o->params[o->n] = p;
        if (rn_tensor_init_on(&o->m[o->n], t->device, t->n, t->c, t->h, t->w, err))
            goto fail;
        o->n++;
        if (o->kind != RN_OPTIM_SGD &&
            rn_tensor_init_on(&o->v[o->n - 1], t->device, t->n, t->c, t->h, t->w, err))
            goto fail;
    }
    return 0;
fail:
    rn_optim_free(o);
    return -1;
}

void rn_optim_free(struct rn_optim *o)
{
    if (!o)
        return;
    for (int i = 0; i < o->n; i++) {
        if (o->m)
            rn_tensor_free(&o->m[i]);
        if (o->v)
            rn_tensor_free(&o->v[i]);
    }
    if (o->clip_acc)
        rn_backend_of(o->clip_device)->release(o->clip_acc);
    free(o->params);
    free(o->m);
    free(o->v);
    memset(o, 0, sizeof *o);
}

struct rn_optim_update rn_optim_update_args(int kind, double lr, double beta1, double beta2,
                                            double eps, double weight_decay, double momentum,
                                            long step, float grad_scale)
{
    /* torch computes the bias corrections in double precision scalars */
    const double bc1 = 1.0 - pow(beta1, (double)step);
    const double bc2 = 1.0 - pow(beta2, (double)step);
    struct rn_optim_update u = {
        .kind = kind, .lr = (float)lr, .beta1 = (float)beta1, .beta2 = (float)beta2,
        .eps = (float)eps, .weight_decay = (float)weight_decay, .momentum = (float)momentum,
        .step = step, .grad_scale = grad_scale,
        .step_size = (float)(lr / bc1), .bc2_sqrt = (float)sqrt(bc2),
    };
    return u;
}

/* Clipping and the update, through the parameters' backend (one
 * implementation per device: kernels/cpu/backend_cpu.c for the CPU). */
static int step_device(struct rn_optim *o, const struct rn_backend *be, struct rn_error *err)
{
    struct rn_optim_update u =
        rn_optim_update_args((int)o->kind, o->lr, o->beta1, o->beta2, o->eps, o->weight_decay,
                             o->momentum, o->step, 1.0f);
    if (o->clip_norm > 0) {
        /* the squared norm is summed where the gradients are; the update
         * reads it there */
        if (o->clip_acc && o->clip_device != (int)be->device) { /* the parameters moved */
            rn_backend_of(o->clip_device)->release(o->clip_acc);
            o->clip_acc = NULL;
        }
        if (!o->clip_acc && be->alloc(&o->clip_acc, sizeof(double), err))
            return -1;
        o->clip_device = be->device;
        if (be->zero(o->clip_acc, sizeof(double), err))
            return -1;
        for (int i = 0; i < o->n; i++)
            if (be->optim->sum_squares(o->params[i]->grad.data,
                                       rn_tensor_numel(&o->params[i]->grad), o->clip_acc, err))
                return -1;
        u.clip_sq = o->clip_acc;
        u.clip_norm = o->clip_norm;
    }
    for (int i = 0; i < o->n; i++)
        if (be->optim->update(&u, o->params[i]->value.data, o->params[i]->grad.data, o->m[i].data,
                              o->v[i].data, rn_tensor_numel(&o->params[i]->value), err))
            return rn_error_prefix(err, "optimizer update on %s", be->name);
    return 0;
}

int rn_optim_step(struct rn_optim *o, struct rn_error *err)
{
    o->step++;
    if (o->n == 0)
        return 0;
    const struct rn_backend *be = rn_backend_of(o->params[0]->value.device);
    if (!be)
        return rn_errorf(err, "optimizer: no backend for device %d", o->params[0]->value.device);
    return step_device(o, be, err);
}
