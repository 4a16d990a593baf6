/* program.c - building the step program of a training batch (program.h);
 * running it is program_run.c. */
#include "program.h"

#include "backend.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "loss.h"

/* ---- building ---------------------------------------------------------------- */

static int schedule_index(const struct rn_spec_train *t, const char *name)
{
    for (int i = 0; i < t->n_schedules; i++)
        if (!strcmp(t->schedules[i].name, name))
            return i;
    return -1;
}

/* Node names for did-you-mean (borrowed pointers into g). */
static const char **node_names(const struct rn_graph *g, struct rn_error *err)
{
    const char **names = rn_calloc((size_t)g->n_nodes + 1, sizeof *names, err);
    if (names)
        for (int i = 0; i < g->n_nodes; i++)
            names[i] = g->nodes[i].layer.name;
    return names;
}

static int unknown_node(const struct rn_graph *g, const char *file, int line, int col,
                        const char *where, const char *name, struct rn_error *err)
{
    const char **names = node_names(g, err);
    if (!names)
        return -1;
    const char *near = rn_nearest(name, names, g->n_nodes);
    char sug[RN_NAME_MAX + 32] = "";
    if (near)
        snprintf(sug, sizeof sug, " (did you mean '%s'?)", near);
    free(names);
    return rn_errorf(err, "%s:%d:%d: error: %s: the model has no node '%s'%s", file, line, col,
                     where, name, sug);
}

/* Does node name match a group entry? "x*" a prefix; "x" the node x and the
 * nodes a basic_block x expands into ("x.conv1"). */
static int group_match(const char *pattern, const char *name)
{
    size_t k = strlen(pattern);
    if (k && pattern[k - 1] == '*')
        return strncmp(pattern, name, k - 1) == 0;
    return strcmp(pattern, name) == 0 || (strncmp(pattern, name, k) == 0 && name[k] == '.');
}

/* Marks the nodes of group gi in mark; every entry must match a node. */
static int mark_group(const struct rn_graph *g, const struct rn_spec_group *grp,
                      unsigned char *mark, struct rn_error *err)
{
    for (int j = 0; j < grp->n_nodes; j++) {
        int hits = 0;
        for (int i = 0; i < g->n_nodes; i++)
            if (group_match(grp->nodes[j], g->nodes[i].layer.name))
                mark[i] = 1, hits++;
        if (hits)
            continue;
        char where[RN_NAME_MAX + 32], stem[RN_NAME_MAX];
        snprintf(where, sizeof where, "train.groups.%s", grp->name);
        snprintf(stem, sizeof stem, "%s", grp->nodes[j]);
        size_t k = strlen(stem);
        if (k && stem[k - 1] == '*') {
            stem[k - 1] = '\0';
            return rn_errorf(err, "%s:%d:%d: error: %s: no node name starts with '%s'", grp->file,
                             grp->node_line[j], grp->node_col[j], where, stem);
        }
        return unknown_node(g, grp->file, grp->node_line[j], grp->node_col[j], where, stem, err);
    }
    return 0;
}

static int build_optimizers(struct rn_program *p, struct rn_error *err)
{
    const struct rn_spec_train *t = p->spec;
    struct rn_graph *g = p->g;
    int n_opts = t->n_optimizers ? t->n_optimizers : 1;
    int cap = 0;
    for (int i = 0; i < g->n_nodes; i++)
        cap += g->nodes[i].layer.n_params;
    struct rn_param **params = rn_calloc((size_t)cap + 1, sizeof *params, err);
    if (!params)
        return -1;
    int rc = -1;
    /* every group must name nodes of the model, used by an optimizer or not */
    for (int gi = 0; gi < t->n_groups; gi++) {
        memset(p->own, 0, (size_t)g->n_nodes);
        if (mark_group(g, &t->groups[gi], p->own, err))
            goto done;
    }
    for (int k = 0; k < n_opts; k++) {
        struct rn_program_opt *o = &p->opts[k];
        const struct rn_spec_optimizer *so = t->n_optimizers ? &t->optimizers[k] : NULL;
        o->lr_schedule = -1;
        o->owns = rn_calloc((size_t)g->n_nodes + 1, 1, err);
        if (!o->owns)
            goto done;
        p->n_opts = k + 1;
        snprintf(o->name, sizeof o->name, "%s", so ? so->name : "main");
        if (!so || so->n_groups == 0) {
            memset(o->owns, 1, (size_t)g->n_nodes);
        } else {
            for (int q = 0; q < so->n_groups; q++)
                for (int gi = 0; gi < t->n_groups; gi++)
                    if (!strcmp(t->groups[gi].name, so->groups[q]) &&
                        mark_group(g, &t->groups[gi], o->owns, err))
                        goto done;
        }
        int n = 0;
        for (int i = 0; i < g->n_nodes; i++) {
            int mine = 0;
            for (int j = 0; o->owns[i] && j < g->nodes[i].layer.n_params; j++)
                if (g->nodes[i].layer.params[j].trainable) {
                    params[n++] = &g->nodes[i].layer.params[j];
                    mine = 1;
                }
            o->owns[i] = (unsigned char)mine;
            for (int q = 0; mine && q < k; q++)
                if (p->opts[q].owns[i]) {
                    rn_errorf(err,
                              "%s:%d:%d: error: optimizer '%s': node '%s' is already "
                              "updated by optimizer '%s'; a parameter belongs to one optimizer",
                              so->file, so->line, so->col, o->name, g->nodes[i].layer.name,
                              p->opts[q].name);
                    goto done;
                }
        }
        if (n == 0) {
            if (so)
                rn_errorf(err,
                          "%s:%d:%d: error: optimizer '%s': its groups hold no trainable "
                          "parameters",
                          so->file, so->line, so->col, o->name);
            else
                rn_errorf(err, "the model has no trainable parameters to optimize");
            goto done;
        }
        if (rn_optim_init_params(&o->optim, so ? so->kind : t->optimizer_kind, params, n, err))
            goto done;
        struct rn_optim *op = &o->optim;
        op->lr = so ? so->lr : t->lr;
        op->beta1 = so ? so->beta1 : t->beta1;
        op->beta2 = so ? so->beta2 : t->beta2;
        op->eps = so ? so->eps : t->eps;
        op->weight_decay = so ? so->weight_decay : t->weight_decay;
        op->momentum = so ? so->momentum : t->momentum;
        op->clip_norm = so ? so->clip_norm : t->clip_norm;
        if (so && so->lr_schedule[0])
            o->lr_schedule = schedule_index(t, so->lr_schedule);
    }
    rc = 0;
done:
    free(params);
    return rc;
}

static int find_head(struct rn_program *p, int node, enum rn_target target)
{
    for (int h = 0; h < p->n_heads; h++)
        if (p->heads[h].node == node && p->heads[h].target == target)
            return h;
    struct rn_head *hd = &p->heads[p->n_heads];
    memset(hd, 0, sizeof *hd);
    hd->node = node;
    hd->target = target;
    int first = 1;
    for (int h = 0; h < p->n_heads; h++)
        first &= p->heads[h].target != target;
    if (first)
        snprintf(hd->metric, sizeof hd->metric, "%s", target == RN_TARGET_DIGIT ? "" : "colour_");
    else
        snprintf(hd->metric, sizeof hd->metric, "%s_%s_", p->g->nodes[node].layer.name,
                 target == RN_TARGET_DIGIT ? "digit" : "colour");
    return p->n_heads++;
}

/* The saliency gradient needs tangent mode through every node up to its
 * logits; batchnorm in training mode has none. */
static int check_tangent_path(struct rn_program *p, const struct rn_spec_loss *l, int node,
                              struct rn_error *err)
{
    struct rn_graph *g = p->g;
    memset(p->loss, 0, (size_t)g->n_nodes);
    p->loss[node] = 1;
    rn_graph_mark_upstream(g, p->loss, p->need);
    for (int i = 0; i <= node; i++) {
        const struct rn_layer_type *ty = g->nodes[i].layer.type;
        int bn = strcmp(ty->name, "batchnorm") == 0;
        if (!p->need[i] || (!bn && ty->tangent_forward && ty->tangent_backward))
            continue;
        return rn_errorf(err,
                         "%s:%d:%d: error: loss '%s' (saliency): node '%s' (%s) lies on the "
                         "path to '%s' and %s; the saliency gradient needs tangent mode "
                         "through every layer (use a model without batchnorm for this loss)",
                         l->file, l->line, l->col, l->name, g->nodes[i].layer.name, ty->name,
                         g->nodes[node].layer.name,
                         bn ? "runs in training mode, which has no tangent mode"
                            : "has no tangent mode");
    }
    return 0;
}

static int build_terms(struct rn_program *p, int n_classes, struct rn_error *err)
{
    const struct rn_spec_train *t = p->spec;
    struct rn_graph *g = p->g;
    p->primary = -1;
    for (int k = 0; k < t->n_losses; k++) {
        const struct rn_spec_loss *l = &t->losses[k];
        struct rn_term *tm = &p->terms[k];
        memset(tm, 0, sizeof *tm);
        tm->spec = l;
        tm->kind = l->kind;
        tm->node = l->on[0] ? rn_graph_find(g, l->on) : g->n_nodes - 1;
        if (tm->node < 0)
            return rn_errorf(err,
                             "%s:%d:%d: error: loss reads node '%s', which the model does "
                             "not have",
                             l->file, l->line, l->col, l->on);
        struct rn_shape o = g->nodes[tm->node].layer.out;
        if (o.c != n_classes || o.h != 1 || o.w != 1)
            return rn_errorf(err,
                             "%s:%d:%d: error: loss '%s': node '%s' gives (%d,%d,%d) but "
                             "the loss needs (%d,1,1) logits; end the head with a linear layer "
                             "of %d units",
                             l->file, l->line, l->col, l->name, g->nodes[tm->node].layer.name, o.c,
                             o.h, o.w, n_classes, n_classes);
        tm->schedule = l->weight_schedule[0] ? schedule_index(t, l->weight_schedule) : -1;
        tm->weight = l->weight;
        enum rn_target target = l->target_kind;
        tm->head = find_head(p, tm->node, target);
        if (p->primary < 0 && target == RN_TARGET_DIGIT)
            p->primary = tm->head;
        if (tm->kind == RN_LOSS_SALIENCY) {
            tm->saliency.norm = !strcmp(l->norm, "l2") ? RN_SALIENCY_L2 : RN_SALIENCY_L1;
            tm->saliency.reduce = !strcmp(l->reduce, "background_share")
                                      ? RN_SALIENCY_BACKGROUND_SHARE
                                      : RN_SALIENCY_MEAN_BACKGROUND;
            tm->saliency.threshold = (float)l->threshold;
            if (check_tangent_path(p, l, tm->node, err))
                return -1;
        }
        p->n_terms = k + 1;
    }
    if (p->primary < 0)
        p->primary = 0;
    return 0;
}

/* node and key index of a layer key that takes a number. */
static int find_key(struct rn_program *p, const char *node, const char *key, const char *file,
                    int line, int col, const char *where, struct rn_program_set *out,
                    struct rn_error *err)
{
    struct rn_graph *g = p->g;
    out->node = rn_graph_find(g, node);
    if (out->node < 0)
        return unknown_node(g, file, line, col, where, node, err);
    const struct rn_layer_type *ty = g->nodes[out->node].layer.type;
    const char *keys[RN_MAX_KEYS];
    int nk = 0;
    for (int i = 0; i < ty->n_keys; i++) {
        if (ty->keys[i].kind != RN_KIND_FLOAT && ty->keys[i].kind != RN_KIND_INT)
            continue;
        keys[nk++] = ty->keys[i].key;
        if (!strcmp(ty->keys[i].key, key)) {
            out->key = i;
            return 0;
        }
    }
    const char *near = rn_nearest(key, keys, nk);
    char sug[80] = "";
    if (near)
        snprintf(sug, sizeof sug, " (did you mean '%s'?)", near);
    return rn_errorf(err, "%s:%d:%d: error: %s: node '%s' (%s) has no number key '%s'%s", file,
                     line, col, where, node, ty->name, key, sug);
}

static int index_of(const char (*names)[RN_NAME_MAX], int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(names[i], name))
            return i;
    return -1;
}

static int build_program(struct rn_program *p, struct rn_error *err)
{
    const struct rn_spec_train *t = p->spec;
    struct rn_graph *g = p->g;
    for (int b = 0; b < t->n_binds; b++) {
        const struct rn_spec_bind *sb = &t->binds[b];
        char where[32];
        snprintf(where, sizeof where, "bind #%d", b + 1);
        if (find_key(p, sb->node, sb->key, sb->file, sb->line, sb->col, where, &p->binds[b], err))
            return -1;
        p->bind_schedule[b] = schedule_index(t, sb->schedule);
        p->n_binds = b + 1;
    }
    const unsigned all_opts = (1u << p->n_opts) - 1, all_terms = (1u << p->n_terms) - 1;
    if (t->n_program == 0) {
        p->subs[0].opts = all_opts;
        p->subs[0].terms = all_terms;
        p->n_subs = 1;
    }
    for (int e = 0; e < t->n_program; e++) {
        const struct rn_spec_step *st = &t->program[e];
        struct rn_program_sub sub = {0};
        char where[48];
        snprintf(where, sizeof where, "program step #%d", e + 1);
        sub.opts = st->n_optimizers ? 0 : all_opts;
        for (int k = 0; k < st->n_optimizers; k++)
            for (int q = 0; q < p->n_opts; q++)
                if (!strcmp(p->opts[q].name, st->optimizers[k]))
                    sub.opts |= 1u << q;
        sub.terms = st->n_losses ? 0 : all_terms;
        for (int k = 0; k < p->n_terms; k++)
            if (index_of(st->losses, st->n_losses, p->terms[k].spec->name) >= 0)
                sub.terms |= 1u << k;
        for (int k = 0; k < st->n_sets; k++) {
            const struct rn_spec_set *ss = &st->sets[k];
            char w2[80];
            snprintf(w2, sizeof w2, "%s: set", where);
            if (find_key(p, ss->node, ss->key, ss->file, ss->line, ss->col, w2, &sub.sets[k], err))
                return -1;
            sub.sets[k].value = ss->value;
            sub.n_sets = k + 1;
        }
        /* a step whose losses cannot reach its optimizers' parameters would
         * only move them by optimizer momentum: surely a mistake */
        memset(p->own, 0, (size_t)g->n_nodes);
        memset(p->loss, 0, (size_t)g->n_nodes);
        for (int q = 0; q < p->n_opts; q++)
            for (int i = 0; sub.opts >> q & 1 && i < g->n_nodes; i++)
                p->own[i] |= p->opts[q].owns[i];
        for (int k = 0; k < p->n_terms; k++)
            if (sub.terms >> k & 1) {
                p->loss[p->terms[k].node] = 1;
                sub.has_saliency |= p->terms[k].kind == RN_LOSS_SALIENCY;
            }
        rn_graph_mark_downstream(g, p->own, p->down);
        int reaches = 0;
        for (int i = 0; i < g->n_nodes; i++)
            reaches |= p->loss[i] && p->down[i];
        if (!reaches)
            return rn_errorf(err,
                             "%s:%d:%d: error: %s: none of its losses depends on a "
                             "parameter of its optimizers",
                             st->file, st->line, st->col, where);
        for (int r = 0; r < st->repeat; r++) {
            if (p->n_subs >= RN_MAX_SUBSTEPS)
                return rn_errorf(err,
                                 "%s:%d:%d: error: train.program: more than %d sub-steps "
                                 "per batch",
                                 st->file, st->line, st->col, RN_MAX_SUBSTEPS);
            p->subs[p->n_subs++] = sub;
        }
    }
    return 0;
}

int rn_program_init(struct rn_program *p, const struct rn_spec_train *t, struct rn_graph *g,
                    int n_classes, uint64_t total_steps, struct rn_error *err)
{
    memset(p, 0, sizeof *p);
    p->g = g;
    p->spec = t;
    p->n_classes = n_classes;
    p->total_steps = total_steps ? total_steps : 1;
    p->skip_nonfinite = t->on_nonfinite_skip;
    unsigned char **scratch[] = {&p->valid, &p->need, &p->run, &p->own,
                                 &p->down,  &p->loss, &p->src};
    for (size_t i = 0; i < sizeof scratch / sizeof scratch[0]; i++)
        if (!(*scratch[i] = rn_calloc((size_t)g->n_nodes + 1, 1, err)))
            goto fail;
    if (build_optimizers(p, err) || build_terms(p, n_classes, err) || build_program(p, err))
        goto fail;
    return 0;
fail:
    rn_program_free(p);
    return -1;
}

void rn_program_free(struct rn_program *p)
{
    if (!p)
        return;
    for (int k = 0; k < p->n_opts; k++) {
        rn_optim_free(&p->opts[k].optim);
        free(p->opts[k].owns);
    }
    free(p->valid);
    free(p->need);
    free(p->run);
    free(p->own);
    free(p->down);
    free(p->loss);
    free(p->src);
    if (p->device) {
        const struct rn_backend *be = rn_backend_of(p->device);
        be->release(p->dev_targets);
        be->release(p->dev_stats);
    }
    memset(p, 0, sizeof *p);
}
