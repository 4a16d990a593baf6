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
 */
#include "saliency.h"

#include "backend.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "train.h"

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

/* Step 2 for one sample: x and g are (C, HW), s is HW scratch. Returns the
 * sample's unweighted term r_i and writes v = scale * dr_i/dg into v. */
static double sample_direction(const struct rn_saliency *cfg, const float *x, const float *g, int C,
                               int HW, double scale, double *s, float *v)
{
    double mask_sum = 0, back = 0, total = 0;
    for (int p = 0; p < HW; p++) {
        double acc = 0;
        float mn = x[p];
        for (int c = 0; c < C; c++) {
            double gc = g[(size_t)c * HW + p];
            acc += cfg->norm == RN_SALIENCY_L1 ? fabs(gc) : gc * gc;
            if (x[(size_t)c * HW + p] < mn)
                mn = x[(size_t)c * HW + p];
        }
        s[p] = cfg->norm == RN_SALIENCY_L1 ? acc : sqrt(acc);
        int bg = mn < cfg->threshold;
        mask_sum += bg;
        back += bg ? s[p] : 0.0;
        total += s[p];
    }
    /* dr/ds(p) = a0 * mask(p) + a1 */
    double r = 0, a0 = 0, a1 = 0;
    if (cfg->reduce == RN_SALIENCY_MEAN_BACKGROUND) {
        if (mask_sum > 0) {
            r = back / mask_sum;
            a0 = 1.0 / mask_sum;
        }
    } else if (total > 0) {
        r = back / total;
        a0 = 1.0 / total;
        a1 = -r / total;
    }
    for (int p = 0; p < HW; p++) {
        float mn = x[p];
        for (int c = 1; c < C; c++)
            if (x[(size_t)c * HW + p] < mn)
                mn = x[(size_t)c * HW + p];
        double ds = scale * ((mn < cfg->threshold ? a0 : 0.0) + a1);
        for (int c = 0; c < C; c++) {
            float gc = g[(size_t)c * HW + p];
            double d;
            if (cfg->norm == RN_SALIENCY_L1) /* sign(0) = 0: the subgradient PyTorch uses */
                d = (gc > 0) - (gc < 0);
            else
                d = s[p] > 0 ? gc / s[p] : 0.0;
            v[(size_t)c * HW + p] = (float)(ds * d);
        }
    }
    return r;
}

int rn_saliency_loss_ce(struct rn_graph *g, int n, int logits_node, const uint8_t *targets,
                        const struct rn_saliency *cfg, float weight, float ce_weight,
                        struct rn_ctx *ctx, double *value, double *ce_value, struct rn_error *err)
{
    *value = 0;
    if (ce_value)
        *ce_value = 0;
    if (logits_node < 0 || logits_node >= g->n_nodes)
        return rn_errorf(err, "saliency loss: logits node %d is not in the graph (%d nodes)",
                         logits_node, g->n_nodes);
    struct rn_node *zn = &g->nodes[logits_node];
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

    const int C = g->in_shape.c, HW = g->in_shape.h * g->in_shape.w;
    const size_t nx = (size_t)n * C * HW, np = rn_graph_n_trainable(g);
    const struct rn_backend *be = rn_backend_of(g->device);
    /* On a device the per-sample arithmetic below runs on host copies of
     * the few tensors it reads and writes (the views; on the CPU they are
     * the graph's own tensors); the passes run on the device. */
    struct rn_tensor st_z = {0}, st_dz = {0}, st_x = {0}, st_dx = {0}, st_tx = {0}, st_tz = {0},
                     st_tdz = {0};
    void *saved_mem = NULL;
    float *probs = rn_malloc((size_t)n * k * sizeof(float), err);
    double *s = rn_malloc((size_t)HW * sizeof(double), err);
    int rc = -1, have_saved = 0;
    if (!probs || !s || be->alloc(&saved_mem, (np ? np : 1) * sizeof(float), err))
        goto out;
    float *saved = saved_mem;
    /* Kept until the end so that a failure anywhere leaves the gradients as
     * they were; a few hundred KB, small next to one pass. */
    if (grads_copy(g, saved, 1, err))
        goto out;
    have_saved = 1;

    /* 1. per-sample losses backward, with the input gradient */
    const int fused = ce_weight != 0;
    const double c = fused ? (double)ce_weight / n : 1.0;
    rn_graph_zero_dy(g, n);
    double ce;
    struct rn_tensor *z = rn_host_view(&zn->y, &st_z, 1, err);
    struct rn_tensor *dz = z ? rn_host_view(&zn->dy, &st_dz, 1, err) : NULL;
    if (!dz)
        goto fail;
    if (fused) {
        ce = rn_cross_entropy(z, targets, ce_weight, dz, NULL, probs);
    } else {
        ce = rn_cross_entropy(z, targets, 0, NULL, NULL, probs);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < k; j++)
                dz->data[(size_t)i * k + j] = probs[(size_t)i * k + j] - (j == targets[i]);
    }
    if (rn_host_commit(&zn->dy, dz, err))
        goto fail;
    if (rn_graph_backward(g, n, logits_node, 1, ctx, err)) {
        rn_error_prefix(err, "saliency loss");
        goto fail;
    }
    if (!fused && grads_copy(g, saved, 0, err)) /* the per-sample losses' own parameter
                                                     gradient is not wanted */
        goto fail;

    /* 2. R and the direction tx = weight * dR/dg / c */
    if (rn_graph_tangent_input(g, n, err))
        goto fail;
    struct rn_tensor *x = rn_host_view(&g->x, &st_x, 1, err);
    struct rn_tensor *dx = x ? rn_host_view(&g->dx, &st_dx, 1, err) : NULL;
    struct rn_tensor *tx = dx ? rn_host_view(&g->tx, &st_tx, 0, err) : NULL;
    if (!tx)
        goto fail;
    const double vscale = (double)weight / ((double)n * c);
    double sum = 0;
    if (fused) { /* g->dx becomes the per-sample input gradient, as in the plain case */
        for (size_t j = 0; j < nx; j++)
            dx->data[j] = (float)(dx->data[j] / c);
        if (rn_host_commit(&g->dx, dx, err))
            goto fail;
    }
    for (int i = 0; i < n; i++) {
        const size_t off = (size_t)i * C * HW;
        sum += sample_direction(cfg, x->data + off, dx->data + off, C, HW, vscale, s,
                                tx->data + off);
    }
    if (rn_host_commit(&g->tx, tx, err))
        goto fail;
    *value = (double)weight * sum / n;
    if (ce_value)
        *ce_value = ce;

    /* 3. tangent passes */
    if (rn_graph_tangent_forward(g, n, logits_node, ctx, err)) {
        rn_error_prefix(err, "saliency loss");
        goto fail;
    }
    struct rn_tensor *tz_t = rn_host_view(&zn->ty, &st_tz, 1, err);
    struct rn_tensor *tdz_t = tz_t ? rn_host_view(&zn->tdy, &st_tdz, 0, err) : NULL;
    if (!tdz_t)
        goto fail;
    const float *tz = tz_t->data;
    float *tdz = tdz_t->data;
    for (int i = 0; i < n; i++) {
        const float *p = probs + (size_t)i * k, *t = tz + (size_t)i * k;
        double dot = 0;
        for (int j = 0; j < k; j++)
            dot += (double)p[j] * t[j];
        for (int j = 0; j < k; j++)
            tdz[(size_t)i * k + j] = (float)(c * p[j] * (t[j] - dot));
    }
    if (rn_host_commit(&zn->tdy, tdz_t, err))
        goto fail;
    if (rn_graph_tangent_backward(g, n, logits_node, ctx, err)) {
        rn_error_prefix(err, "saliency loss");
        goto fail;
    }
    rc = 0;
    goto out;
fail:
    if (have_saved) {
        struct rn_error ignored;
        grads_copy(g, saved, 0, &ignored);
    }
    *value = 0;
out:
    if (saved_mem)
        be->release(saved_mem);
    free(probs);
    free(s);
    rn_tensor_free(&st_z);
    rn_tensor_free(&st_dz);
    rn_tensor_free(&st_x);
    rn_tensor_free(&st_dx);
    rn_tensor_free(&st_tx);
    rn_tensor_free(&st_tz);
    rn_tensor_free(&st_tdz);
    return rc;
}

int rn_saliency_loss(struct rn_graph *g, int n, int logits_node, const uint8_t *targets,
                     const struct rn_saliency *cfg, float weight, struct rn_ctx *ctx, double *value,
                     struct rn_error *err)
{
    return rn_saliency_loss_ce(g, n, logits_node, targets, cfg, weight, 0.0f, ctx, value, NULL,
                               err);
}
