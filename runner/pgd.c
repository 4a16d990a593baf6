/* pgd.c - projected gradient descent on a model's input (pgd.h): L-inf or
 * L2 balls, targeted or not, batched over (epsilon, image) pairs. The
 * arithmetic of the attack analysis (analyses/attack.c).
 *
 * Each step: gradient step, projection onto the epsilon-ball around the
 * source, clamp to [0, 1], in that order. FGSM is steps: 1, step_rel: 1.
 */
#include "pgd.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "loss.h"
#include "rng.h"
#include "tensor.h"

/* ---- the attack ------------------------------------------------------------- */

static float clamp01(float v)
{
    return v < 0 ? 0 : v > 1 ? 1 : v;
}

/* Projection of x onto the ball of radius eps around s, then [0, 1]. */
static void project(int l2, float eps, const float *s, float *x, size_t per)
{
    if (l2) {
        double nn = 0;
        for (size_t k = 0; k < per; k++)
            nn += (double)(x[k] - s[k]) * (x[k] - s[k]);
        double norm = sqrt(nn);
        if (norm > eps) {
            float f = norm > 0 ? (float)(eps / norm) : 0.0f;
            for (size_t k = 0; k < per; k++)
                x[k] = s[k] + (x[k] - s[k]) * f;
        }
    } else {
        for (size_t k = 0; k < per; k++) {
            float lo = s[k] - eps, hi = s[k] + eps;
            x[k] = x[k] < lo ? lo : x[k] > hi ? hi : x[k];
        }
    }
    for (size_t k = 0; k < per; k++)
        x[k] = clamp01(x[k]);
}

/* Random start: L-inf uniform in the box; L2 uniform in the ball (a normal
 * direction, radius eps * u^(1/d)); then [0, 1]. */
static void random_start(int l2, float eps, const float *s, float *x, size_t per, struct rn_rng *r)
{
    if (!l2) {
        for (size_t k = 0; k < per; k++)
            x[k] = clamp01(s[k] + eps * (2 * rn_rng_uniform(r) - 1));
        return;
    }
    double nn = 0;
    for (size_t k = 0; k < per; k++) {
        x[k] = rn_rng_normal(r);
        nn += (double)x[k] * x[k];
    }
    double rad = eps * pow((double)rn_rng_uniform(r), 1.0 / (double)per);
    float f = nn > 0 ? (float)(rad / sqrt(nn)) : 0.0f;
    for (size_t k = 0; k < per; k++)
        x[k] = clamp01(s[k] + x[k] * f);
}

/* One forward (and, with grad, backward) pass over jobs [j0, j0 + m) of x:
 * the probabilities into probs, and each job's ascent direction (the
 * gradient of the loss the attack increases) into dir. */
static int pass(struct rn_graph *g, int logits_node, const float *x, int j0, int m, size_t per,
                const uint8_t *loss_class, const int *targeted, float *probs, float *dir,
                struct rn_error *err)
{
    struct rn_ctx ctx = {.train = 0};
    struct rn_tensor *xt = rn_graph_input_host(g, m, err);
    if (!xt)
        return -1;
    memcpy(xt->data, x + (size_t)j0 * per, sizeof(float) * (size_t)m * per);
    if (rn_graph_input_commit(g, err) || rn_graph_forward(g, m, logits_node, &ctx, err))
        return -1;
    const struct rn_tensor *z = rn_graph_output_host(g, logits_node, err);
    if (!z)
        return -1;
    const int k = (int)rn_tensor_sample(z);
    if (!dir) {
        rn_cross_entropy(z, loss_class + j0, 0.0f, NULL, NULL, probs + (size_t)j0 * k);
        return 0;
    }
    if (rn_graph_zero_dy(g, m, err))
        return rn_error_prefix(err, "attack");
    struct rn_tensor *dz = rn_graph_grad_host(g, logits_node, err);
    if (!dz)
        return -1;
    /* weight m: each sample gets the gradient of its own loss */
    rn_cross_entropy(z, loss_class + j0, (float)m, dz, NULL, probs + (size_t)j0 * k);
    if (rn_graph_backward(g, m, logits_node, 1, &ctx, err))
        return -1;
    struct rn_tensor stage = {0};
    const struct rn_tensor *dx = rn_host_view(&g->dx, &stage, 1, err);
    if (!dx)
        return -1;
    for (int j = 0; j < m; j++) {
        float sgn = targeted[j0 + j] ? -1.0f : 1.0f;
        const float *d = dx->data + (size_t)j * per;
        float *o = dir + (size_t)(j0 + j) * per;
        for (size_t q = 0; q < per; q++)
            o[q] = sgn * d[q];
    }
    rn_tensor_free(&stage);
    return 0;
}

/* The step along dir for job j: L-inf sign, L2 normalised. */
static void step_job(int l2, float step, const float *d, float *x, size_t per)
{
    if (l2) {
        double nn = 0;
        for (size_t q = 0; q < per; q++)
            nn += (double)d[q] * d[q];
        if (nn <= 0)
            return;
        float f = (float)(step / sqrt(nn));
        for (size_t q = 0; q < per; q++)
            x[q] += f * d[q];
    } else {
        for (size_t q = 0; q < per; q++)
            x[q] += d[q] > 0 ? step : d[q] < 0 ? -step : 0.0f;
    }
}

int rn_attack_pgd(struct rn_graph *g, int logits_node, const struct rn_attack_cfg *cfg,
                  const float *eps, int n_eps, const float *src, int n, const int *labels,
                  const int *targets, float *adv, float *probs, struct rn_error *err)
{
    const size_t per = (size_t)g->in_shape.c * g->in_shape.h * g->in_shape.w;
    const int B = n_eps * n, k = g->nodes[logits_node].layer.out.c;
    const int bs = g->max_n, restarts = cfg->restarts < 1 ? 1 : cfg->restarts;
    int rc = -1;
    float *x = rn_malloc(sizeof(float) * (size_t)B * per, err);
    float *dir = x ? rn_malloc(sizeof(float) * (size_t)B * per, err) : NULL;
    float *p = dir ? rn_malloc(sizeof(float) * (size_t)B * k, err) : NULL;
    uint8_t *cls = p ? rn_malloc((size_t)B, err) : NULL;
    int *tgt = cls ? rn_malloc(sizeof(int) * (size_t)B, err) : NULL;
    if (!tgt)
        goto done;
    for (int j = 0; j < B; j++) {
        int i = j % n;
        tgt[j] = targets[i] >= 0;
        cls[j] = (uint8_t)(tgt[j] ? targets[i] : labels[i]);
    }
    for (int r = 0; r < restarts; r++) {
        for (int j = 0; j < B; j++) {
            const float *s = src + (size_t)(j % n) * per;
            float *xj = x + (size_t)j * per;
            if (cfg->random_start) {
                struct rn_rng rng;
                rn_rng_init(&rng, cfg->seed, RN_STREAM_ANALYSIS, (uint64_t)r * B + (uint64_t)j);
                random_start(cfg->l2, eps[j / n], s, xj, per, &rng);
            } else {
                memcpy(xj, s, sizeof(float) * per);
            }
        }
        for (int t = 0; t < cfg->steps; t++) {
            for (int j0 = 0; j0 < B; j0 += bs)
                if (pass(g, logits_node, x, j0, B - j0 < bs ? B - j0 : bs, per, cls, tgt, p, dir,
                         err))
                    goto done;
            for (int j = 0; j < B; j++) {
                float e = eps[j / n], step = cfg->step > 0 ? cfg->step : cfg->step_rel * e;
                float *xj = x + (size_t)j * per;
                step_job(cfg->l2, step, dir + (size_t)j * per, xj, per);
                project(cfg->l2, e, src + (size_t)(j % n) * per, xj, per);
            }
        }
        for (int j0 = 0; j0 < B; j0 += bs)
            if (pass(g, logits_node, x, j0, B - j0 < bs ? B - j0 : bs, per, cls, tgt, p, NULL, err))
                goto done;
        /* keep the best: targeted the highest target probability, untargeted
         * the lowest true-class probability */
        for (int j = 0; j < B; j++) {
            const float *pj = p + (size_t)j * k, *bj = probs + (size_t)j * k;
            if (r > 0 && (tgt[j] ? pj[cls[j]] <= bj[cls[j]] : pj[cls[j]] >= bj[cls[j]]))
                continue;
            memcpy(adv + (size_t)j * per, x + (size_t)j * per, sizeof(float) * per);
            memcpy(probs + (size_t)j * k, pj, sizeof(float) * (size_t)k);
        }
    }
    rc = 0;
done:
    free(x);
    free(dir);
    free(p);
    free(cls);
    free(tgt);
    return rc;
}

double rn_attack_max_violation(int l2, const float *eps, int n_eps, const float *src,
                               const float *adv, int n, size_t per)
{
    double worst = 0;
    for (int e = 0; e < n_eps; e++)
        for (int i = 0; i < n; i++) {
            const float *s = src + (size_t)i * per, *a = adv + ((size_t)e * n + i) * per;
            double nn = 0;
            for (size_t q = 0; q < per; q++) {
                double out = a[q] < 0 ? -a[q] : a[q] > 1 ? a[q] - 1 : 0;
                double d = fabs((double)a[q] - s[q]);
                worst = out > worst ? out : worst;
                if (!l2 && d - eps[e] - 1e-6 > worst)
                    worst = d - eps[e] - 1e-6;
                nn += d * d;
            }
            double over = sqrt(nn) - eps[e] * (1 + 1e-5);
            if (l2 && over > worst)
                worst = over;
        }
    return worst;
}
