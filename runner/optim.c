#include "optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int parse_kind(const char *kind, enum rn_optim_kind *out, struct rn_error *err)
{
    if (strcmp(kind, "adam") == 0)
        *out = RN_OPTIM_ADAM;
    else if (strcmp(kind, "adamw") == 0)
        *out = RN_OPTIM_ADAMW;
    else if (strcmp(kind, "sgd") == 0)
        *out = RN_OPTIM_SGD;
    else
        return rn_errorf(err, "unknown optimizer '%s'; expected adam, adamw or sgd", kind);
    return 0;
}

int rn_optim_init_params(struct rn_optim *o, const char *kind, struct rn_param *const *params,
                         int n, struct rn_error *err)
{
    memset(o, 0, sizeof *o);
    if (parse_kind(kind, &o->kind, err))
        return -1;
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
        if (rn_tensor_init(&o->m[o->n], t->n, t->c, t->h, t->w, err))
            goto fail;
        o->n++;
        if (o->kind != RN_OPTIM_SGD &&
            rn_tensor_init(&o->v[o->n - 1], t->n, t->c, t->h, t->w, err))
            goto fail;
    }
    return 0;
fail:
    rn_optim_free(o);
    return -1;
}

int rn_optim_init(struct rn_optim *o, const char *kind, struct rn_graph *g, struct rn_error *err)
{
    memset(o, 0, sizeof *o);
    int cap = 0;
    for (int i = 0; i < g->n_nodes; i++)
        cap += g->nodes[i].layer.n_params;
    struct rn_param **all = rn_calloc((size_t)cap + 1, sizeof *all, err);
    if (!all)
        return -1;
    int n = 0;
    for (int i = 0; i < g->n_nodes; i++)
        for (int j = 0; j < g->nodes[i].layer.n_params; j++)
            if (g->nodes[i].layer.params[j].trainable)
                all[n++] = &g->nodes[i].layer.params[j];
    int rc = rn_optim_init_params(o, kind, all, n, err);
    free(all);
    return rc;
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
    free(o->params);
    free(o->m);
    free(o->v);
    memset(o, 0, sizeof *o);
}

static double grad_norm(const struct rn_optim *o)
{
    double s = 0;
    for (int i = 0; i < o->n; i++) {
        const struct rn_tensor *gt = &o->params[i]->grad;
        size_t n = rn_tensor_numel(gt);
        for (size_t k = 0; k < n; k++)
            s += (double)gt->data[k] * gt->data[k];
    }
    return sqrt(s);
}

void rn_optim_step(struct rn_optim *o)
{
    o->step++;
    float clip = 1.0f;
    if (o->clip_norm > 0) {
        double norm = grad_norm(o);
        if (norm > o->clip_norm)
            clip = (float)(o->clip_norm / (norm + 1e-6));
    }
    const float lr = (float)o->lr, b1 = (float)o->beta1, b2 = (float)o->beta2;
    const float eps = (float)o->eps, wd = (float)o->weight_decay, mom = (float)o->momentum;
    /* torch computes the bias corrections in double precision scalars */
    const double bc1 = 1.0 - pow(o->beta1, (double)o->step);
    const double bc2 = 1.0 - pow(o->beta2, (double)o->step);
    const float step_size = (float)(o->lr / bc1);
    const float bc2_sqrt = (float)sqrt(bc2);
    for (int i = 0; i < o->n; i++) {
        float *p = o->params[i]->value.data;
        const float *gr = o->params[i]->grad.data;
        float *m = o->m[i].data, *v = o->v[i].data;
        long n = (long)rn_tensor_numel(&o->params[i]->value);
        switch (o->kind) {
        case RN_OPTIM_ADAM:
        case RN_OPTIM_ADAMW:
#pragma omp parallel for if (n > 65536) schedule(static)
            for (long k = 0; k < n; k++) {
                float gk = gr[k] * clip;
                if (o->kind == RN_OPTIM_ADAMW)
                    p[k] *= 1.0f - lr * wd;
                else if (wd != 0.0f)
                    gk += wd * p[k];
                m[k] = b1 * m[k] + (1.0f - b1) * gk;
                v[k] = b2 * v[k] + (1.0f - b2) * gk * gk;
                p[k] -= step_size * m[k] / (sqrtf(v[k]) / bc2_sqrt + eps);
            }
            break;
        case RN_OPTIM_SGD:
            for (long k = 0; k < n; k++) {
                float gk = gr[k] * clip + wd * p[k];
                if (mom != 0.0f) {
                    m[k] = o->step == 1 ? gk : mom * m[k] + gk;
                    gk = m[k];
                }
                p[k] -= lr * gk;
            }
            break;
        }
    }
}
