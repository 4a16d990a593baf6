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

/* ---- the ball ---------------------------------------------------------------- */

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

/* ---- objectives ------------------------------------------------------------ */

/* The largest z_j over j != skip (lowest index on ties). */
static int argmax_except(const float *z, int k, int skip)
{
    int best = -1;
    for (int j = 0; j < k; j++)
        if (j != skip && (best < 0 || z[j] > z[best]))
            best = j;
    return best;
}

/* The classes of the first `m` places of z sorted largest first (ties: the
 * lowest index first). */
static void top_classes(const float *z, int k, int m, int *pi)
{
    for (int r = 0; r < m; r++) {
        int best = -1;
        for (int j = 0; j < k; j++) {
            int used = 0;
            for (int q = 0; q < r; q++)
                used |= pi[q] == j;
            if (!used && (best < 0 || z[j] > z[best]))
                best = j;
        }
        pi[r] = best;
    }
}

float rn_pgd_objective(enum rn_pgd_loss loss, const float *z, int k, int label, int target,
                       float *dz)
{
    for (int j = 0; j < k; j++)
        dz[j] = 0;
    if (loss == RN_PGD_CE) {
        double m = z[0], sum = 0;
        for (int j = 1; j < k; j++)
            m = z[j] > m ? z[j] : m;
        for (int j = 0; j < k; j++)
            sum += exp(z[j] - m);
        double lse = m + log(sum);
        int c = target >= 0 ? target : label;
        double sgn = target >= 0 ? -1 : 1;
        for (int j = 0; j < k; j++)
            dz[j] = (float)(sgn * (exp(z[j] - lse) - (j == c)));
        return (float)(sgn * (lse - z[c]));
    }
    if (loss == RN_PGD_MARGIN) {
        int c = target >= 0 ? target : label, o = argmax_except(z, k, c);
        float sgn = target >= 0 ? 1.0f : -1.0f; /* targeted: z_t - z_o; else z_o - z_y */
        dz[c] = sgn;
        dz[o] = -sgn;
        return sgn * (z[c] - z[o]);
    }
    /* DLR: N / D, dN / D - N / D^2 dD */
    int pi[4];
    top_classes(z, k, k < 4 ? k : 4, pi);
    double num, den;
    if (target < 0) {
        int o = argmax_except(z, k, label);
        num = (double)z[o] - z[label];
        den = (double)z[pi[0]] - z[pi[2]] + 1e-12;
        double q = num / (den * den);
        dz[o] += (float)(1 / den);
        dz[label] -= (float)(1 / den);
        dz[pi[0]] -= (float)q;
        dz[pi[2]] += (float)q;
    } else {
        num = (double)z[target] - z[label];
        den = (double)z[pi[0]] - 0.5 * ((double)z[pi[2]] + z[pi[3]]) + 1e-12;
        double q = num / (den * den);
        dz[target] += (float)(1 / den);
        dz[label] -= (float)(1 / den);
        dz[pi[0]] -= (float)q;
        dz[pi[2]] += (float)(0.5 * q);
        dz[pi[3]] += (float)(0.5 * q);
    }
    return (float)(num / den);
}

/* ---- the attack ------------------------------------------------------------ */

/* B attacks ("jobs"), job j on source src_of[j] at radius eps_of[j]. */
struct jobs {
    int B, k;
    size_t per, hw;
    const float *eps_of;
    const int *src_of;
    const float *src;
    const int *labels, *targets; /* per source */
    uint8_t *cls;                /* per job: the class CE is taken on */
};

/* One forward (and, with dir, backward) pass over jobs [j0, j0 + m) of x:
 * the probabilities into probs, and each job's ascent direction (the
 * gradient of the objective) into dir. */
static int pass(struct rn_graph *g, int logits_node, const struct rn_attack_cfg *cfg,
                const struct jobs *J, const float *x, int j0, int m, float *probs, float *dir,
                struct rn_error *err)
{
    const size_t per = J->per;
    /* evaluation mode; the attack needs the input's gradient, not the weights' */
    struct rn_ctx ctx = {.train = 0, .input_grad_only = 1};
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
        rn_cross_entropy(z, J->cls + j0, 0.0f, NULL, NULL, probs + (size_t)j0 * k);
        return 0;
    }
    if (rn_graph_zero_dy(g, m, err))
        return rn_error_prefix(err, "attack");
    struct rn_tensor *dz = rn_graph_grad_host(g, logits_node, err);
    if (!dz)
        return -1;
    /* CE: the library's own (weight m: each sample gets the gradient of its
     * own loss), ascended with the sign below; the others from their
     * formulas, ascended as they are */
    rn_cross_entropy(z, J->cls + j0, cfg->loss == RN_PGD_CE ? (float)m : 0.0f,
                     cfg->loss == RN_PGD_CE ? dz : NULL, NULL, probs + (size_t)j0 * k);
    if (cfg->loss != RN_PGD_CE)
        for (int j = 0; j < m; j++) {
            int i = J->src_of[j0 + j];
            rn_pgd_objective(cfg->loss, z->data + (size_t)j * k, k, J->labels[i], J->targets[i],
                             dz->data + (size_t)j * k);
        }
    if (rn_graph_backward(g, m, logits_node, 1, &ctx, err))
        return -1;
    struct rn_tensor stage = {0};
    const struct rn_tensor *dx = rn_host_view(&g->dx, &stage, 1, err);
    if (!dx)
        return -1;
    for (int j = 0; j < m; j++) {
        int i = J->src_of[j0 + j];
        float sgn = cfg->loss == RN_PGD_CE && J->targets[i] >= 0 ? -1.0f : 1.0f;
        const float *d = dx->data + (size_t)j * per;
        float *o = dir + (size_t)(j0 + j) * per;
        const uint8_t *mask = cfg->mask ? cfg->mask + (size_t)i * J->hw : NULL;
        for (size_t q = 0; q < per; q++)
            o[q] = mask && !mask[q % J->hw] ? 0.0f : sgn * d[q];
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

/* The start of every job for restart r: the source, or a random point of
 * the ball (masked pixels kept at the source). */
static void start_jobs(const struct rn_attack_cfg *cfg, const struct jobs *J, int r, float *x)
{
    for (int j = 0; j < J->B; j++) {
        int i = J->src_of[j];
        const float *s = J->src + (size_t)i * J->per;
        float *xj = x + (size_t)j * J->per;
        if (!cfg->random_start) {
            memcpy(xj, s, sizeof(float) * J->per);
            continue;
        }
        struct rn_rng rng;
        rn_rng_init(&rng, cfg->seed, RN_STREAM_ANALYSIS, (uint64_t)r * J->B + (uint64_t)j);
        random_start(cfg->l2, J->eps_of[j], s, xj, J->per, &rng);
        if (cfg->mask) {
            const uint8_t *mk = cfg->mask + (size_t)i * J->hw;
            for (size_t q = 0; q < J->per; q++)
                if (!mk[q % J->hw])
                    xj[q] = s[q];
        }
    }
}

/* Every pass over the B jobs in chunks of the graph's batch. */
static int pass_all(struct rn_graph *g, int logits_node, const struct rn_attack_cfg *cfg,
                    const struct jobs *J, const float *x, float *probs, float *dir,
                    struct rn_error *err)
{
    const int bs = g->max_n;
    for (int j0 = 0; j0 < J->B; j0 += bs)
        if (pass(g, logits_node, cfg, J, x, j0, J->B - j0 < bs ? J->B - j0 : bs, probs, dir, err))
            return -1;
    return 0;
}

/* The attack on every job; adv (B, per), probs (B, k) and, with
 * cfg->trace_stride, trace (steps / stride + 1, B, k) get the kept
 * restart's result. */
static int run_jobs(struct rn_graph *g, int logits_node, const struct rn_attack_cfg *cfg,
                    struct jobs *J, float *adv, float *probs, float *trace, struct rn_error *err)
{
    const size_t per = J->per;
    const int B = J->B, k = J->k, restarts = cfg->restarts < 1 ? 1 : cfg->restarts;
    const int stride = trace ? cfg->trace_stride : 0, rows = stride ? cfg->steps / stride + 1 : 0;
    int rc = -1;
    float *x = rn_malloc(sizeof(float) * (size_t)B * per, err);
    float *dir = x ? rn_malloc(sizeof(float) * (size_t)B * per, err) : NULL;
    float *p = dir ? rn_malloc(sizeof(float) * (size_t)B * k, err) : NULL;
    float *tr = p && stride ? rn_malloc(sizeof(float) * (size_t)rows * B * k, err) : NULL;
    if (!p || (stride && !tr))
        goto done;
    for (int r = 0; r < restarts; r++) {
        start_jobs(cfg, J, r, x);
        for (int t = 0; t < cfg->steps; t++) {
            if (pass_all(g, logits_node, cfg, J, x, p, dir, err))
                goto done;
            if (stride && t % stride == 0)
                memcpy(tr + (size_t)(t / stride) * B * k, p, sizeof(float) * (size_t)B * k);
            for (int j = 0; j < B; j++) {
                float e = J->eps_of[j], step = cfg->step > 0 ? cfg->step : cfg->step_rel * e;
                float *xj = x + (size_t)j * per;
                step_job(cfg->l2, step, dir + (size_t)j * per, xj, per);
                project(cfg->l2, e, J->src + (size_t)J->src_of[j] * per, xj, per);
            }
        }
        if (pass_all(g, logits_node, cfg, J, x, p, NULL, err))
            goto done;
        if (stride && cfg->steps % stride == 0)
            memcpy(tr + (size_t)(rows - 1) * B * k, p, sizeof(float) * (size_t)B * k);
        /* keep the best: targeted the highest target probability, untargeted
         * the lowest true-class probability */
        for (int j = 0; j < B; j++) {
            const float *pj = p + (size_t)j * k, *bj = probs + (size_t)j * k;
            int c = J->cls[j], targeted = J->targets[J->src_of[j]] >= 0;
            if (r > 0 && (targeted ? pj[c] <= bj[c] : pj[c] >= bj[c]))
                continue;
            memcpy(adv + (size_t)j * per, x + (size_t)j * per, sizeof(float) * per);
            memcpy(probs + (size_t)j * k, pj, sizeof(float) * (size_t)k);
            for (int row = 0; row < rows; row++)
                memcpy(trace + ((size_t)row * B + j) * k, tr + ((size_t)row * B + j) * k,
                       sizeof(float) * (size_t)k);
        }
    }
    rc = 0;
done:
    free(x);
    free(dir);
    free(p);
    free(tr);
    return rc;
}

/* J's per-source fields, and its per-job class array (freed by the caller). */
static int jobs_init(struct jobs *J, const struct rn_graph *g, int logits_node, int B,
                     const float *eps_of, const int *src_of, const float *src, const int *labels,
                     const int *targets, struct rn_error *err)
{
    *J = (struct jobs){
        .B = B,
        .k = g->nodes[logits_node].layer.out.c,
        .per = (size_t)g->in_shape.c * g->in_shape.h * g->in_shape.w,
        .hw = (size_t)g->in_shape.h * g->in_shape.w,
        .eps_of = eps_of,
        .src_of = src_of,
        .src = src,
        .labels = labels,
        .targets = targets,
    };
    if (!(J->cls = rn_malloc((size_t)B + 1, err)))
        return -1;
    for (int j = 0; j < B; j++) {
        int i = src_of[j];
        J->cls[j] = (uint8_t)(targets[i] >= 0 ? targets[i] : labels[i]);
    }
    return 0;
}

int rn_attack_pgd(struct rn_graph *g, int logits_node, const struct rn_attack_cfg *cfg,
                  const float *eps, int n_eps, const float *src, int n, const int *labels,
                  const int *targets, float *adv, float *probs, struct rn_error *err)
{
    const int B = n_eps * n;
    int rc = -1, *src_of = rn_malloc(sizeof(int) * (size_t)B + 1, err);
    float *eps_of = src_of ? rn_malloc(sizeof(float) * (size_t)B + 1, err) : NULL;
    struct jobs J = {0};
    if (!eps_of)
        goto done;
    for (int j = 0; j < B; j++) {
        src_of[j] = j % n;
        eps_of[j] = eps[j / n];
    }
    if (jobs_init(&J, g, logits_node, B, eps_of, src_of, src, labels, targets, err) == 0)
        rc = run_jobs(g, logits_node, cfg, &J, adv, probs,
                      cfg->trace_stride > 0 ? cfg->trace : NULL, err);
done:
    free(src_of);
    free(eps_of);
    free(J.cls);
    return rc;
}

int rn_attack_reached(const float *p, int k, int label, int target, float threshold)
{
    if (target >= 0)
        return p[target] >= threshold;
    int top = 0;
    for (int j = 1; j < k; j++)
        top = p[j] > p[top] ? j : top;
    return top != label;
}

int rn_attack_min_eps(struct rn_graph *g, int logits_node, const struct rn_attack_cfg *cfg,
                      const float *src, int n, const int *labels, const int *targets,
                      float threshold, const float *lo, const float *hi, int rounds, float *min_eps,
                      struct rn_error *err)
{
    const size_t per = (size_t)g->in_shape.c * g->in_shape.h * g->in_shape.w;
    const int k = g->nodes[logits_node].layer.out.c;
    struct rn_attack_cfg c = *cfg;
    c.trace_stride = 0;
    c.trace = NULL;
    int rc = -1, *src_of = rn_malloc(sizeof(int) * (size_t)n + 1, err);
    float *eps_of = src_of ? rn_malloc(sizeof(float) * (size_t)n + 1, err) : NULL;
    float *low = eps_of ? rn_malloc(sizeof(float) * (size_t)n + 1, err) : NULL;
    float *adv = low ? rn_malloc(sizeof(float) * (size_t)n * per + 1, err) : NULL;
    float *probs = adv ? rn_malloc(sizeof(float) * (size_t)n * k + 1, err) : NULL;
    struct jobs J = {0};
    if (!probs)
        goto done;
    for (int i = 0; i < n; i++) {
        min_eps[i] = hi[i];
        low[i] = lo[i];
    }
    for (int round = 0; round < rounds; round++) {
        int B = 0;
        for (int i = 0; i < n; i++)
            if (isfinite(min_eps[i]) && min_eps[i] > low[i]) {
                src_of[B] = i;
                eps_of[B++] = 0.5f * (low[i] + min_eps[i]);
            }
        if (B == 0)
            break;
        if (jobs_init(&J, g, logits_node, B, eps_of, src_of, src, labels, targets, err) ||
            run_jobs(g, logits_node, &c, &J, adv, probs, NULL, err))
            goto done;
        for (int j = 0; j < B; j++) {
            int i = src_of[j];
            if (rn_attack_reached(probs + (size_t)j * k, k, labels[i], targets[i], threshold))
                min_eps[i] = eps_of[j];
            else
                low[i] = eps_of[j];
        }
        free(J.cls);
        J.cls = NULL;
    }
    rc = 0;
done:
    free(J.cls);
    free(src_of);
    free(eps_of);
    free(low);
    free(adv);
    free(probs);
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
