#include "layer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const struct rn_layer_type rn_layer_conv2d, rn_layer_linear, rn_layer_relu,
    rn_layer_maxpool2d, rn_layer_avgpool2d, rn_layer_global_avg_pool, rn_layer_flatten,
    rn_layer_dropout, rn_layer_batchnorm, rn_layer_add, rn_layer_basic_block, rn_layer_grl;

const struct rn_layer_type *const rn_layer_types[] = {
    &rn_layer_conv2d,     &rn_layer_linear,          &rn_layer_relu,
    &rn_layer_maxpool2d,  &rn_layer_avgpool2d,       &rn_layer_global_avg_pool,
    &rn_layer_flatten,    &rn_layer_dropout,         &rn_layer_batchnorm,
    &rn_layer_add,        &rn_layer_basic_block,     &rn_layer_grl,
};
const int rn_n_layer_types = (int)(sizeof rn_layer_types / sizeof rn_layer_types[0]);
_Static_assert(sizeof rn_layer_types / sizeof rn_layer_types[0] == 12,
               "update the README's layer list when adding a layer type");

const struct rn_layer_type *rn_layer_type_find(const char *name)
{
    for (int i = 0; i < rn_n_layer_types; i++)
        if (strcmp(rn_layer_types[i]->name, name) == 0)
            return rn_layer_types[i];
    return NULL;
}

int rn_layer_add_param(struct rn_layer *l, const char *name, int ndim, int n, int c, int h, int w,
                       int trainable, struct rn_error *err)
{
    if (l->n_params >= RN_MAX_PARAMS)
        return rn_errorf(err, "layer '%s': too many parameters", l->name);
    struct rn_param *p = &l->params[l->n_params];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->ndim = ndim;
    p->trainable = trainable;
    if (rn_tensor_init(&p->value, n, c, h, w, err))
        return -1;
    if (trainable && rn_tensor_init(&p->grad, n, c, h, w, err)) {
        rn_tensor_free(&p->value);
        return -1;
    }
    l->n_params++;
    return 0;
}

struct rn_param *rn_layer_param(struct rn_layer *l, const char *name)
{
    for (int i = 0; i < l->n_params; i++)
        if (strcmp(l->params[i].name, name) == 0)
            return &l->params[i];
    return NULL;
}

void rn_layer_free(struct rn_layer *l)
{
    if (!l)
        return;
    if (l->type && l->type->free)
        l->type->free(l);
    l->priv = NULL;
    for (int i = 0; i < l->n_params; i++) {
        rn_tensor_free(&l->params[i].value);
        rn_tensor_free(&l->params[i].grad);
    }
    l->n_params = 0;
}

int rn_layer_check_mode(const struct rn_layer *l, const struct rn_ctx *ctx, int last_train,
                        const char *pass, struct rn_error *err)
{
    if ((ctx->train != 0) != (last_train != 0))
        return rn_errorf(err,
                         "%s '%s': %s in %s mode after a forward in %s mode; run the forward in "
                         "the same mode first",
                         l->type->name, l->name, pass, ctx->train ? "training" : "eval",
                         last_train ? "training" : "eval");
    return 0;
}

int rn_layer_check_eval_tangent(const struct rn_layer *l, const struct rn_ctx *ctx, int last_train,
                                const char *pass, struct rn_error *err)
{
    if (ctx->train)
        return rn_errorf(err,
                         "%s '%s': tangent mode in training mode is not supported (use eval mode "
                         "or remove %s for saliency losses)",
                         l->type->name, l->name, l->type->name);
    return rn_layer_check_mode(l, ctx, last_train, pass, err);
}
