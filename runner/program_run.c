/* program_run.c - running a step program (program.h): its device buffers and
 * loss records, its sub-steps, the optimizers, and the NaN/Inf checks of
 * train.on_nonfinite. Building a program is program.c. */
#include "program.h"

#include "backend.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "loss.h"

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
        if (wants_dz && !any_dy && rn_graph_zero_dy_nodes(g, n, p->pooled ? p->src : p->run, err))
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

/* Whether the sub-step's backward can share gradient buffers: src marks the
 * nodes of run that no node of run reads (where the losses write), and
 * every loss node the backward starts from must be one of them. */
static void pool_plan(struct rn_program *p, int last_sal)
{
    const struct rn_graph *g = p->g;
    const int N = g->n_nodes;
    for (int i = 0; i < N; i++)
        p->src[i] = p->run[i];
    for (int j = 0; j < N; j++)
        for (int k = 0; p->run[j] && k < g->nodes[j].n_in; k++)
            if (g->nodes[j].in[k] >= 0)
                p->src[g->nodes[j].in[k]] = 0;
    const char *e = getenv("RN_BACKWARD_POOL"); /* 0: off, to measure what it brings */
    p->pooled = !p->device && last_sal < 0 && !(e && strcmp(e, "0") == 0);
    for (int i = 0; i < N; i++)
        if (p->loss[i] && p->run[i] && !p->src[i])
            p->pooled = 0;
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
    pool_plan(p, last_sal);

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
        if (p->pooled ? rn_graph_backward_pooled(g, n, p->run, p->src, ctx, err)
                      : rn_graph_backward_nodes(g, n, p->run, 0, ctx, err))
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
