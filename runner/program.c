/* program.c - the step program of a training batch (program.h). */
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
    unsigned char **scratch[] = {&p->valid, &p->need, &p->run, &p->own, &p->down, &p->loss};
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
    if (p->device) {
        const struct rn_backend *be = rn_backend_of(p->device);
        be->release(p->dev_targets);
        be->release(p->dev_stats);
    }
    memset(p, 0, sizeof *p);
}

/* One slot's record of a head's loss: 16 bytes, zeroed before each use. */
struct stat_rec {
    double loss;
    int32_t hits, pad;
};

int rn_program_device(struct rn_program *p, int cap, struct rn_error *err)
{
    const struct rn_backend *be = rn_backend_of(p->g->device);
    if (!be || !be->loss)
        return rn_errorf(err, "the graph's device keeps no losses");
    p->device = p->g->device;
    p->cap = cap > 0 ? cap : 1;
    if (be->alloc(&p->dev_targets, 2 * (size_t)p->g->max_n, err) ||
        be->alloc(&p->dev_stats, (size_t)p->cap * RN_MAX_LOSSES * sizeof(struct stat_rec), err))
        return -1;
    return 0;
}

int rn_program_fetch(struct rn_program *p, int count, double *loss, int *hits, struct rn_error *err)
{
    if (count <= 0)
        return 0;
    if (count > p->cap)
        return rn_errorf(err, "fetch of %d batches: the program keeps %d", count, p->cap);
    struct stat_rec *recs = rn_malloc(sizeof *recs * (size_t)count * RN_MAX_LOSSES, err);
    if (!recs)
        return -1;
    int rc = rn_backend_of(p->device)->download(recs, p->dev_stats,
                                                sizeof *recs * (size_t)count * RN_MAX_LOSSES, err);
    for (int i = 0; !rc && i < count * RN_MAX_LOSSES; i++) {
        loss[i] = recs[i].loss;
        hits[i] = recs[i].hits;
    }
    free(recs);
    return rc ? rn_error_prefix(err, "the training losses from the device") : 0;
}

/* ---- running ------------------------------------------------------------------ */

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
    enum rn_optim_kind k = RN_OPTIM_ADAM;
    int rc = rn_optim_kind_of(kind, &k, err) ? -1 : rn_optim_init_params(o, k, all, n, err);
    free(all);
    return rc;
}

/* A schedule's value at progress p (clamped to [0, 1]). */
double rn_schedule_value(const struct rn_spec_schedule *s, double p)
{
    if (!(p > 0))
        p = 0;
    if (p > 1)
        p = 1;
    switch (s->kind) {
    case RN_SCHEDULE_CONSTANT:
        return s->value;
    case RN_SCHEDULE_LINEAR:
        if (p <= s->from)
            return s->start;
        if (p >= s->until)
            return s->end;
        return s->start + (s->end - s->start) * (p - s->from) / (s->until - s->from);
    case RN_SCHEDULE_DANN_SIGMOID:
        return s->scale * (2.0 / (1.0 + exp(-s->gamma * p)) - 1.0);
    case RN_SCHEDULE_STEP:
        break;
    }
    return p < s->at ? s->before : s->after;
}

/* Forgets the outputs of `from` and of everything downstream of them. */
static void invalidate(struct rn_program *p, const unsigned char *from)
{
    rn_graph_mark_downstream(p->g, from, p->down);
    for (int i = 0; i < p->g->n_nodes; i++)
        if (p->down[i])
            p->valid[i] = 0;
}

static void invalidate_node(struct rn_program *p, int node)
{
    memset(p->loss, 0, (size_t)p->g->n_nodes);
    p->loss[node] = 1;
    invalidate(p, p->loss);
}

static void set_key(struct rn_program *p, const struct rn_program_set *s, double value)
{
    double *slot = &p->g->nodes[s->node].layer.v.num[s->key];
    if (*slot != value) {
        *slot = value;
        invalidate_node(p, s->node);
    }
}

static int zero_opt_grads(struct rn_optim *o, struct rn_error *err)
{
    for (int i = 0; i < o->n; i++)
        if (rn_tensor_zero(&o->params[i]->grad, err))
            return -1;
    return 0;
}

/* The step's saliency terms, each with the CE terms of its head riding on
 * its backward (those heads' bits are set in *fused). */
static int saliency_terms(struct rn_program *p, const struct rn_program_sub *sub, int n,
                          const uint8_t *digit, const uint8_t *colour, struct rn_ctx *ctx,
                          unsigned *fused_out, struct rn_error *err)
{
    struct rn_graph *g = p->g;
    unsigned fused = 0;
    for (int k = 0; k < p->n_terms; k++) {
        struct rn_term *tm = &p->terms[k];
        if (!(sub->terms >> k & 1) || tm->kind != RN_LOSS_SALIENCY || tm->weight == 0)
            continue;
        const uint8_t *y = tm->spec->target_kind == RN_TARGET_COLOUR ? colour : digit;
        /* The saliency needs a backward of the per-sample CE anyway; the CE
         * terms on the same head ride on it (rn_saliency_loss_ce) instead of
         * costing a backward of their own. */
        double w = 0;
        int has_ce = 0;
        if (!(fused >> tm->head & 1) && p->run[tm->node])
            for (int j = 0; j < p->n_terms; j++) {
                const struct rn_term *o = &p->terms[j];
                if (sub->terms >> j & 1 && o->head == tm->head && o->kind != RN_LOSS_SALIENCY) {
                    w += o->kind == RN_LOSS_NEG_CE ? -o->weight : o->weight;
                    has_ce = 1;
                }
            }
        double value, ce;
        /* parameters outside the step's optimizers get this gradient too,
         * harmlessly: each optimizer zeroes its own before its step */
        if (rn_saliency_loss_ce(g, n, tm->node, y, &tm->saliency, (float)tm->weight,
                                has_ce ? (float)w : 0.0f, ctx, &value, &ce, err))
            return rn_error_prefix(err, "loss '%s' (saliency)", tm->spec->name);
        if (has_ce && w != 0)
            fused |= 1u << tm->head;
        tm->value = value / tm->weight;
        tm->fresh = 1;
        p->total += value;
        p->total_host += value;
    }
    *fused_out = fused;
    return 0;
}

/* The step's cross-entropy terms, one softmax per head; *any_dy: some head's
 * gradient was added (a backward is due). */
static int head_losses(struct rn_program *p, const struct rn_program_sub *sub, int n,
                       const uint8_t *digit, const uint8_t *colour, unsigned fused, int *any_dy_out,
                       struct rn_error *err)
{
    struct rn_graph *g = p->g;
    int any_dy = 0;
    for (int h = 0; h < p->n_heads; h++) {
        struct rn_head *hd = &p->heads[h];
        if (!p->loss[hd->node])
            continue;
        const uint8_t *y = hd->target == RN_TARGET_COLOUR ? colour : digit;
        const struct rn_tensor *z = p->device ? NULL : rn_graph_output_host(g, hd->node, err);
        if (!p->device && !z)
            return -1;
        /* one softmax per head: every CE term on it adds its share of the
         * gradient through the summed weight */
        double w = 0;
        int has_ce = 0;
        for (int k = 0; k < p->n_terms; k++) {
            struct rn_term *tm = &p->terms[k];
            if (!(sub->terms >> k & 1) || tm->head != h || tm->kind == RN_LOSS_SALIENCY)
                continue;
            w += tm->kind == RN_LOSS_NEG_CE ? -tm->weight : tm->weight;
            has_ce = 1;
        }
        int wants_dz = has_ce && w != 0 && p->run[hd->node] && !(fused >> h & 1);
        if (wants_dz && !any_dy && rn_graph_zero_dy_nodes(g, n, p->run, err))
            return -1;
        any_dy |= wants_dz;
        p->head_w[h] = has_ce ? w : 0;
        if (p->device) {
            /* on the device, read later (rn_program_fetch): the slot keeps
             * this sub-step's value, the last one that computes the head */
            const struct rn_backend *be = rn_backend_of(p->device);
            struct stat_rec *rec =
                (struct stat_rec *)p->dev_stats + (size_t)p->slot * RN_MAX_LOSSES + h;
            const uint8_t *t = hd->target == RN_TARGET_COLOUR ? p->t_colour : p->t_digit;
            if (be->zero(rec, sizeof *rec, err) ||
                be->loss->cross_entropy(g->nodes[hd->node].y.data, t, n, p->n_classes, (float)w,
                                        wants_dz ? g->nodes[hd->node].dy.data : NULL, &rec->loss,
                                        &rec->hits, NULL, err))
                return rn_error_prefix(err, "loss of head '%s'", g->nodes[hd->node].layer.name);
            hd->loss = NAN;
            hd->correct = 0;
        } else {
            struct rn_tensor *dz = NULL;
            if (wants_dz && !(dz = rn_graph_grad_host(g, hd->node, err)))
                return -1;
            hd->loss = rn_cross_entropy(z, y, (float)w, dz, &hd->correct, NULL);
        }
        hd->n = n;
        hd->fresh = 1;
        for (int k = 0; k < p->n_terms; k++) {
            struct rn_term *tm = &p->terms[k];
            if (!(sub->terms >> k & 1) || tm->head != h || tm->kind == RN_LOSS_SALIENCY)
                continue;
            tm->value = tm->kind == RN_LOSS_NEG_CE ? -hd->loss : hd->loss;
            tm->fresh = 1;
            p->total += tm->weight * tm->value;
        }
    }
    *any_dy_out = any_dy;
    return 0;
}

/* ---- NaN and Inf (train.on_nonfinite) ---------------------------------------------- */

/* The sub-step's total loss is not finite: which term. */
static void nonfinite_loss(struct rn_program *p, const struct rn_program_sub *sub)
{
    for (int k = 0; k < p->n_terms; k++) {
        const struct rn_term *tm = &p->terms[k];
        if (sub->terms >> k & 1 && tm->fresh && !isfinite(tm->value)) {
            snprintf(p->nonfinite, sizeof p->nonfinite, "loss term '%s' is %s", tm->spec->name,
                     isnan(tm->value) ? "NaN" : "Inf");
            return;
        }
    }
    snprintf(p->nonfinite, sizeof p->nonfinite, "the total loss is %s",
             isnan(p->total) ? "NaN" : "Inf");
}

/* The first parameter (value, or gradient) of the nodes marked in p->own
 * holding a NaN or Inf, named in p->nonfinite; 0 when there is none. Host
 * tensors only: a device keeps its values until the log reads the losses. */
static int nonfinite_params(struct rn_program *p, int grads, const char *after)
{
    const struct rn_graph *g = p->g;
    for (int i = 0; i < g->n_nodes; i++) {
        if (!p->own[i])
            continue;
        const struct rn_layer *l = &g->nodes[i].layer;
        for (int j = 0; j < l->n_params; j++) {
            const struct rn_param *pa = &l->params[j];
            const struct rn_tensor *t = grads ? &pa->grad : &pa->value;
            int kind;
            if (!pa->trainable || !t->data || t->device != RN_DEVICE_CPU ||
                !(kind = rn_tensor_nonfinite(t)))
                continue;
            snprintf(p->nonfinite, sizeof p->nonfinite, "%s%s.%s has %s%s",
                     grads ? "gradient of " : "", l->name, pa->name, kind == 'N' ? "NaN" : "Inf",
                     after);
            return 1;
        }
    }
    return 0;
}

static int run_sub(struct rn_program *p, const struct rn_program_sub *sub, int n,
                   const uint8_t *digit, const uint8_t *colour, struct rn_ctx *ctx,
                   struct rn_error *err)
{
    struct rn_graph *g = p->g;
    const int N = g->n_nodes;
    double saved[RN_MAX_SETS];
    for (int k = 0; k < sub->n_sets; k++) {
        saved[k] = g->nodes[sub->sets[k].node].layer.v.num[sub->sets[k].key];
        set_key(p, &sub->sets[k], sub->sets[k].value);
    }
    if (p->recompute)
        memset(p->valid, 0, (size_t)N);

    /* forward: what the step's losses read and is not valid any more */
    memset(p->loss, 0, (size_t)N);
    int last_sal = -1;
    for (int k = 0; k < p->n_terms; k++)
        if (sub->terms >> k & 1) {
            p->loss[p->terms[k].node] = 1;
            if (p->terms[k].kind == RN_LOSS_SALIENCY && p->terms[k].node > last_sal)
                last_sal = p->terms[k].node;
        }
    rn_graph_mark_upstream(g, p->loss, p->need);
    for (int i = 0; i < N; i++) {
        /* the saliency's tangent pass runs every node up to its logits */
        int needed = p->need[i] || i <= last_sal;
        p->run[i] = needed && !p->valid[i];
        p->valid[i] |= (unsigned char)needed;
        p->node_forwards += p->run[i];
    }
    if (rn_graph_forward_nodes(g, n, p->run, ctx, err))
        return -1;

    /* backward: between the losses and the parameters that learn */
    memset(p->own, 0, (size_t)N);
    for (int q = 0; q < p->n_opts; q++)
        if (sub->opts >> q & 1) {
            for (int i = 0; i < N; i++)
                p->own[i] |= p->opts[q].owns[i];
            if (zero_opt_grads(&p->opts[q].optim, err))
                return -1;
        }
    rn_graph_mark_downstream(g, p->own, p->down);
    for (int i = 0; i < N; i++)
        p->run[i] = p->need[i] && p->down[i];

    p->total = 0;
    p->total_host = 0;
    memset(p->head_w, 0, sizeof p->head_w);
    unsigned fused = 0; /* heads whose CE gradient the saliency's backward already added */
    if (saliency_terms(p, sub, n, digit, colour, ctx, &fused, err))
        return -1;
    int any_dy = 0;
    if (head_losses(p, sub, n, digit, colour, fused, &any_dy, err))
        return -1;
    int rc = 0;
    if (!p->device && !isfinite(p->total)) {
        nonfinite_loss(p, sub);
        goto nonfinite;
    }
    if (any_dy) {
        if (rn_graph_backward_nodes(g, n, p->run, 0, ctx, err))
            return -1;
        for (int i = 0; i < N; i++)
            p->node_backwards += p->run[i];
    }
    /* p->own: the nodes of the parameters this sub-step updates */
    if (!p->device && nonfinite_params(p, 1, ""))
        goto nonfinite;

    for (int q = 0; q < p->n_opts; q++)
        if (sub->opts >> q & 1 && rn_optim_step(&p->opts[q].optim, err))
            return -1;
    /* finite gradients can still overflow a parameter (a huge lr); the
     * update cannot be taken back, so this stops even when skipping */
    if (!p->device && nonfinite_params(p, 0,
                                       p->skip_nonfinite ? " after its update (which cannot be "
                                                           "skipped)"
                                                         : " after its update"))
        rc = rn_errorf(err, "%s", p->nonfinite);
    invalidate(p, p->own);
    goto restore;
nonfinite:
    if (p->skip_nonfinite)
        p->skipped = 1;
    else
        rc = rn_errorf(err, "%s", p->nonfinite);
restore:
    for (int k = sub->n_sets - 1; k >= 0; k--)
        set_key(p, &sub->sets[k], saved[k]);
    return rc;
}

int rn_program_batch(struct rn_program *p, int n, const uint8_t *digit, const uint8_t *colour,
                     uint64_t step, uint64_t seed, struct rn_error *err)
{
    struct rn_graph *g = p->g;
    const struct rn_spec_train *t = p->spec;
    double progress = (double)step / (double)p->total_steps;
    for (int s = 0; s < t->n_schedules; s++)
        p->sched[s] = rn_schedule_value(&t->schedules[s], progress);
    memset(p->valid, 0, (size_t)g->n_nodes); /* a new batch */
    for (int b = 0; b < p->n_binds; b++)
        set_key(p, &p->binds[b], p->sched[p->bind_schedule[b]]);
    for (int q = 0; q < p->n_opts; q++)
        if (p->opts[q].lr_schedule >= 0)
            p->opts[q].optim.lr = p->sched[p->opts[q].lr_schedule];
    for (int k = 0; k < p->n_terms; k++) {
        struct rn_term *tm = &p->terms[k];
        tm->weight = tm->schedule >= 0 ? p->sched[tm->schedule] : tm->spec->weight;
        tm->fresh = 0;
    }
    for (int h = 0; h < p->n_heads; h++)
        p->heads[h].fresh = 0;
    for (int k = 0; k < p->n_terms; k++)
        if (p->terms[k].spec->target_kind == RN_TARGET_COLOUR && !colour)
            return rn_errorf(err, "loss '%s' needs colour labels, and this split has none",
                             p->terms[k].spec->name);
    if (p->device) {
        const struct rn_backend *be = rn_backend_of(p->device);
        if (p->slot < 0 || p->slot >= p->cap)
            return rn_errorf(err, "slot %d of %d", p->slot, p->cap);
        if (p->batch_digit) { /* on the device already: no copy per batch */
            p->t_digit = p->batch_digit;
            p->t_colour = p->batch_colour;
        } else {
            p->t_digit = p->dev_targets;
            p->t_colour = (const uint8_t *)p->dev_targets + p->g->max_n;
            if (be->upload(p->dev_targets, digit, (size_t)n, err) ||
                (colour &&
                 be->upload((uint8_t *)p->dev_targets + p->g->max_n, colour, (size_t)n, err)))
                return rn_error_prefix(err, "the batch's targets to the device");
        }
        p->batch_digit = p->batch_colour = NULL; /* for this batch only */
        if (colour && !p->t_colour)
            return rn_errorf(err, "the batch's colour targets are not on the device");
    }
    p->nonfinite[0] = '\0';
    p->skipped = 0;
    for (int s = 0; s < p->n_subs && !p->skipped; s++) {
        struct rn_ctx ctx = {.train = 1, .seed = seed, .step = step + ((uint64_t)s << 40)};
        if (run_sub(p, &p->subs[s], n, digit, colour, &ctx, err))
            return -1;
    }
    return 0;
}
