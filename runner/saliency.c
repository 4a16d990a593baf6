/* saliency.c - the saliency loss and its exact parameter gradient
 * (saliency.h; DESIGN.md "Differentiation").
 *
 * One call, after the caller's forward:
 *   1. backward of the per-sample losses with the input gradient: the logits
 *      get c (p_i - onehot_i), c = 1 (plain) or ce_weight / n (fused: then
 *      this backward is also the cross-entropy term's own), so g_i = dx_i / c;
 *   2. R and v = dR/dg from g and the background mask of x;
 *   3. tangent forward along tx = v / c, the logits' tangent cotangent
 *      R{dz_i} = c (diag(p_i) - p_i p_i^T) R{z_i}, tangent backward: the
 *      parameter gradients get d/de grad_theta(x + e v) = dR/dtheta.
 *      Each layer's tangent backward is J^T tdy + (dJ[tx])^T dy: linear in
 *      tdy, bilinear in (tx, dy). With dy carrying the factor c, tx = v / c
 *      and R{dz} scaled by c, both terms come out as for c = 1: dR/dtheta.
 * The weight of the term is folded into v (everything is linear in v).
 *
 * The passes run on the graph's device; the per-sample arithmetic of steps
 * 1-3 is the backend's saliency table (struct rn_saliency_kernels), so on a
 * GPU it runs where the tensors are and only R and the CE mean come back
 * (two doubles, one read per call). A backend without that table gets the
 * CPU's, on host copies of the tensors it touches.
 */
#include "saliency.h"

#include "backend.h"

/* Copies every trainable parameter gradient into buf (to_buf) or back;
 * buf lives where the parameters do. */
static int grads_copy(struct rn_graph *g, float *buf, int to_buf, struct rn_error *err)
{
    const struct rn_backend *be = rn_backend_of(g->device);
    size_t off = 0;
    for (int i = 0; i < g->n_nodes; i++)
        for (int j = 0; j < g->nodes[i].layer.n_params; j++) {
            struct rn_param *p = &g->nodes[i].layer.params[j];
            if (!p->trainable)
                continue;
            size_t m = rn_tensor_numel(&p->grad);
            if (to_buf ? be->copy(buf + off, p->grad.data, m * sizeof(float), err)
                       : be->copy(p->grad.data, buf + off, m * sizeof(float), err))
                return -1;
            off += m;
        }
    return 0;
}

/* A tensor the per-sample arithmetic can use: t itself when that runs on
 * the graph's backend (direct), else a host copy (rn_host_view). */
static struct rn_tensor *operand(int direct, struct rn_tensor *t, struct rn_tensor *stage,
                                 int fetch, struct rn_error *err)
{
    return direct ? t : rn_host_view(t, stage, fetch, err);
}

/* The checks made before anything is touched. */
static int check_call(const struct rn_graph *g, int n, int logits_node, const uint8_t *targets,
                      const struct rn_saliency *cfg, struct rn_error *err)
{
    if (logits_node < 0 || logits_node >= g->n_nodes)
        return rn_errorf(err, "saliency loss: logits node %d is not in the graph (%d nodes)",
                         logits_node, g->n_nodes);
    const struct rn_node *zn = &g->nodes[logits_node];
    const int k = (int)rn_tensor_sample(&zn->y);
    if (n < 1 || n > g->max_n || zn->y.n != n || g->x.n != n)
        return rn_errorf(err,
                         "saliency loss: batch of %d samples, but the last forward ran on %d; "
                         "run rn_graph_forward on the same batch first",
                         n, zn->y.n);
    if (cfg->norm != RN_SALIENCY_L1 && cfg->norm != RN_SALIENCY_L2)
        return rn_errorf(err, "saliency loss: unknown norm %d", (int)cfg->norm);
    if (cfg->reduce != RN_SALIENCY_MEAN_BACKGROUND && cfg->reduce != RN_SALIENCY_BACKGROUND_SHARE)
        return rn_errorf(err, "saliency loss: unknown reduction %d", (int)cfg->reduce);
    for (int i = 0; i < n; i++)
        if (targets[i] >= k)
            return rn_errorf(err,
                             "saliency loss: target %d of sample %d is not one of the %d "
                             "classes of '%s'",
                             targets[i], i, k, zn->layer.name);
    return 0;
}

/* One call's state, shared by its three steps. */
struct call {
    struct rn_graph *g;
    struct rn_node *zn; /* the logits node */
    int n, k, logits_node;
    int direct;                  /* kb is the graph's own backend (see operand) */
    const struct rn_backend *kb; /* runs the per-sample arithmetic */
    double *scal;                /* kb's memory: the CE mean and sum r_i */
    double *r;                   /* kb's memory: r_i per sample */
    float *probs;                /* kb's memory: the softmax, (n, k) */
    const uint8_t *targets;      /* where kb reads them */
    /* host stages of the operands when kb is not the graph's backend */
    struct rn_tensor st_z, st_dz, st_x, st_dx, st_tx, st_tz, st_tdz;
};

/* 1. per-sample losses backward, with the input gradient */
static int losses_backward(struct call *s, float ce_weight, struct rn_ctx *ctx,
                           struct rn_error *err)
{
    struct rn_node *zn = s->zn;
    if (rn_graph_zero_dy(s->g, s->n, err))
        return rn_error_prefix(err, "saliency loss");
    struct rn_tensor *z = operand(s->direct, &zn->y, &s->st_z, 1, err);
    struct rn_tensor *dz = z ? operand(s->direct, &zn->dy, &s->st_dz, 1, err) : NULL;
    if (!dz)
        return -1;
    if (s->kb->saliency->logits(z->data, s->targets, s->n, s->k, ce_weight, s->probs, dz->data,
                                &s->scal[0], err))
        return rn_error_prefix(err, "saliency loss");
    if (rn_host_commit(&zn->dy, dz, err))
        return -1;
    if (rn_graph_backward(s->g, s->n, s->logits_node, 1, ctx, err))
        return rn_error_prefix(err, "saliency loss");
    return 0;
}

/* 2. R and the direction tx = weight * dR/dg / c; in the fused case
 * g->dx becomes the per-sample input gradient, as in the plain case */
static int direction(struct call *s, const struct rn_saliency *cfg, float weight, double c,
                     int fused, struct rn_error *err)
{
    struct rn_graph *g = s->g;
    const int n = s->n, C = g->in_shape.c, HW = g->in_shape.h * g->in_shape.w;
    if (rn_graph_tangent_input(g, n, err))
        return -1;
    struct rn_tensor *x = operand(s->direct, &g->x, &s->st_x, 1, err);
    struct rn_tensor *dx = x ? operand(s->direct, &g->dx, &s->st_dx, 1, err) : NULL;
    struct rn_tensor *tx = dx ? operand(s->direct, &g->tx, &s->st_tx, 0, err) : NULL;
    if (!tx)
        return -1;
    const double vscale = (double)weight / ((double)n * c);
    if (s->kb->saliency->direction(cfg, x->data, dx->data, n, C, HW, fused ? c : 1.0, vscale,
                                   tx->data, s->r, &s->scal[1], err))
        return rn_error_prefix(err, "saliency loss");
    if ((fused && rn_host_commit(&g->dx, dx, err)) || rn_host_commit(&g->tx, tx, err))
        return -1;
    return 0;
}

/* 3. tangent passes */
static int tangent_passes(struct call *s, double c, struct rn_ctx *ctx, struct rn_error *err)
{
    struct rn_node *zn = s->zn;
    if (rn_graph_tangent_forward(s->g, s->n, s->logits_node, ctx, err))
        return rn_error_prefix(err, "saliency loss");
    struct rn_tensor *tz = operand(s->direct, &zn->ty, &s->st_tz, 1, err);
    struct rn_tensor *tdz = tz ? operand(s->direct, &zn->tdy, &s->st_tdz, 0, err) : NULL;
    if (!tdz)
        return -1;
    if (s->kb->saliency->tangent_logits(s->probs, tz->data, s->n, s->k, c, tdz->data, err))
        return rn_error_prefix(err, "saliency loss");
    if (rn_host_commit(&zn->tdy, tdz, err))
        return -1;
    if (rn_graph_tangent_backward(s->g, s->n, s->logits_node, ctx, err))
        return rn_error_prefix(err, "saliency loss");
    return 0;
}

int rn_saliency_loss_ce(struct rn_graph *g, int n, int logits_node, const uint8_t *targets,
                        const struct rn_saliency *cfg, float weight, float ce_weight,
                        struct rn_ctx *ctx, double *value, double *ce_value, struct rn_error *err)
{
    *value = 0;
    if (ce_value)
        *ce_value = 0;
    if (check_call(g, n, logits_node, targets, cfg, err))
        return -1;

    struct rn_node *zn = &g->nodes[logits_node];
    const int k = (int)rn_tensor_sample(&zn->y);
    const size_t np = rn_graph_n_trainable(g);
    const struct rn_backend *be = rn_backend_of(g->device);
    /* The per-sample arithmetic runs through a backend's saliency table:
     * the graph's own when it has one, on the graph's tensors where they
     * live; else the CPU's on host copies of the few tensors it reads and
     * writes (the views). On the CPU both are the graph's own tensors. The
     * passes always run on the graph's device. */
    const int direct = be->saliency != NULL;
    struct call s = {.g = g,
                     .zn = zn,
                     .n = n,
                     .k = k,
                     .logits_node = logits_node,
                     .direct = direct,
                     .kb = direct ? be : rn_backend_of(RN_DEVICE_CPU),
                     .targets = targets};
    const struct rn_backend *kb = s.kb;
    /* kb's working memory: the CE mean and sum r_i (zeroed here), r_i per
     * sample, the softmax and, off the host, the targets; it and the saved
     * gradients are the graph's scratch, kept from step to step */
    const size_t off_r = 2 * sizeof(double), off_p = off_r + (size_t)n * sizeof(double),
                 off_t = off_p + (size_t)n * k * sizeof(float);
    int rc = -1, have_saved = 0;
    void *saved_mem = rn_graph_scratch(g, 0, g->device, (np ? np : 1) * sizeof(float), err);
    void *work = saved_mem ? rn_graph_scratch(g, 1, kb->device, off_t + (size_t)n, err) : NULL;
    if (!work || kb->zero(work, off_r, err))
        goto out;
    s.scal = work;
    s.r = (double *)((char *)work + off_r);
    s.probs = (float *)((char *)work + off_p);
    if (kb->device != RN_DEVICE_CPU) {
        uint8_t *td = (uint8_t *)work + off_t;
        if (kb->upload(td, targets, (size_t)n, err))
            goto out;
        s.targets = td;
    }
    float *saved = saved_mem;
    /* Kept until the end so that a failure anywhere leaves the gradients as
     * they were; a few hundred KB, small next to one pass. */
    if (grads_copy(g, saved, 1, err))
        goto out;
    have_saved = 1;

    const int fused = ce_weight != 0;
    const double c = fused ? (double)ce_weight / n : 1.0;
    if (losses_backward(&s, ce_weight, ctx, err))
        goto fail;
    if (!fused && grads_copy(g, saved, 0, err)) /* the per-sample losses' own parameter
                                                     gradient is not wanted */
        goto fail;
    if (direction(&s, cfg, weight, c, fused, err) || tangent_passes(&s, c, ctx, err))
        goto fail;

    /* The one read-back of the step on a device (two doubles): the caller
     * (runner/program.c) adds *value to the step's loss at once. Made after
     * every pass is queued, so the device has the whole step to work on
     * while the host waits. */
    double host[2];
    if (kb->download(host, s.scal, sizeof host, err))
        goto fail;
    *value = (double)weight * host[1] / n;
    if (ce_value)
        *ce_value = host[0];
    rc = 0;
    goto out;
fail:
    if (have_saved) {
        struct rn_error ignored;
        grads_copy(g, saved, 0, &ignored);
    }
    *value = 0;
out:
    rn_tensor_free(&s.st_z);
    rn_tensor_free(&s.st_dz);
    rn_tensor_free(&s.st_x);
    rn_tensor_free(&s.st_dx);
    rn_tensor_free(&s.st_tx);
    rn_tensor_free(&s.st_tz);
    rn_tensor_free(&s.st_tdz);
    return rc;
}

int rn_saliency_loss(struct rn_graph *g, int n, int logits_node, const uint8_t *targets,
                     const struct rn_saliency *cfg, float weight, struct rn_ctx *ctx, double *value,
                     struct rn_error *err)
{
    return rn_saliency_loss_ce(g, n, logits_node, targets, cfg, weight, 0.0f, ctx, value, NULL,
                               err);
}
