/* attack.c - adversarial attacks (SPEC.md "Adversarial (Task 5)"): targeted
 * or untargeted PGD, L-inf or L2, on the analysis' inputs at a list of
 * epsilons, batched over epsilons and images (the arithmetic: runner/pgd.c),
 * for one model or several side by side; per model the robust accuracy and
 * success rate per epsilon and, by bisection, each image's smallest epsilon
 * reaching a confidence threshold. Figures: attack_plot.c.
 */
#include "pgd.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "loss.h"

/* ---- the analysis ----------------------------------------------------------- */

enum {
    ATTACK_NORM,
    ATTACK_EPS,
    ATTACK_STEPS,
    ATTACK_STEP,
    ATTACK_STEP_REL,
    ATTACK_TARGET,
    ATTACK_LOSS,
    ATTACK_RANDOM_START,
    ATTACK_RESTARTS,
    ATTACK_SEED,
    ATTACK_MASK,
    ATTACK_THRESHOLD,
    ATTACK_BISECT,
    ATTACK_TRACE_STRIDE,
    ATTACK_IMAGES,
    ATTACK_SHOW_EPS,
    ATTACK_MODELS,
    ATTACK_CASES,
    ATTACK_SPLIT,
    ATTACK_N,
    ATTACK_DIGIT,
    ATTACK_COLOUR,
    ATTACK_PREDICTED,
    ATTACK_INDEX,
    ATTACK_N_KEYS
};
static const struct rn_key attack_keys[] = {
    [ATTACK_NORM] = {"norm", RN_KIND_CHOICE, 0, 0, "linf", 1, 0, "linf|l2",
                     "the ball: linf (sign steps) or l2 (normalised gradient steps)"},
    [ATTACK_EPS] = {"eps", RN_KIND_STRING, 0, 0, "0, 0.01, 0.03, 0.05, 0.1", 1, 0, NULL,
                    "radii of the ball, increasing, comma-separated (at most 32; L-inf at most "
                    "1), e.g. \"0, 0.01, 0.05\""},
    [ATTACK_STEPS] = {"steps", RN_KIND_INT, 0, 200, NULL, 1, 100000, NULL,
                      "iterations (FGSM: 1 with step_rel 1)"},
    [ATTACK_STEP] = {"step", RN_KIND_FLOAT, 0, 0, NULL, 0, 1, NULL,
                     "absolute step size; 0 = step_rel * eps"},
    [ATTACK_STEP_REL] = {"step_rel", RN_KIND_FLOAT, 0, 0.1, NULL, 0, 10, NULL,
                         "step size relative to eps when step is 0"},
    [ATTACK_TARGET] =
        {"target", RN_KIND_STRING, 0, 0, "none", 1, 0, NULL,
         "a class index, least_likely (of the other classes), random (another class), or none "
         "(untargeted)"},
    [ATTACK_LOSS] = {"loss", RN_KIND_CHOICE, 0, 0, "ce", 1, 0, "ce|margin|dlr",
                     "the objective: ce (cross-entropy), margin (logit margin), dlr (Croce & "
                     "Hein's difference of logits ratio; targeted needs 4 classes)"},
    [ATTACK_RANDOM_START] = {"random_start", RN_KIND_BOOL, 0, 0, NULL, 1, 0, NULL,
                             "start uniformly in the ball (L-inf: the box; L2: the ball)"},
    [ATTACK_RESTARTS] = {"restarts", RN_KIND_INT, 0, 1, NULL, 1, 100, NULL,
                         "attacks per image; the best is kept"},
    [ATTACK_SEED] = {"seed", RN_KIND_INT, 0, 0, NULL, 0, 2147483647, NULL,
                     "seed of the random starts and random targets"},
    [ATTACK_MASK] = {"mask", RN_KIND_CHOICE, 0, 0, "none", 1, 0, "none|background|stroke",
                     "where the perturbation may go: everywhere, background or stroke pixels "
                     "(every channel)"},
    [ATTACK_THRESHOLD] = {"threshold", RN_KIND_FLOAT, 0, 0.9, NULL, 0, 1, NULL,
                          "success for the minimum epsilon: targeted P(target) >= threshold; "
                          "untargeted a wrong top class"},
    [ATTACK_BISECT] = {"bisect", RN_KIND_INT, 0, 8, NULL, 0, 30, NULL,
                       "bisection rounds refining each image's minimum epsilon between the "
                       "sweep's epsilons (0: the sweep's)"},
    [ATTACK_TRACE_STRIDE] = {"trace_stride", RN_KIND_INT, 0, 0, NULL, 0, 100000, NULL,
                             "> 0: the class probabilities every trace_stride iterations "
                             "(/trace)"},
    [ATTACK_IMAGES] = {"images", RN_KIND_BOOL, 0, 1, NULL, 1, 0, NULL,
                       "write the adversarial images and perturbations"},
    [ATTACK_SHOW_EPS] = {"show_eps", RN_KIND_FLOAT, 0, -1, NULL, -1, 1e9, NULL,
                         "the epsilon of the image figure and the per-channel bars (the nearest "
                         "in eps); -1: the largest"},
    [ATTACK_MODELS] = {"models", RN_KIND_STRING, 0, 0, "", 1, 0, NULL, RN_MODELS_DOC},
    [ATTACK_CASES] = {"cases", RN_KIND_STRING, 0, 0, "", 1, 0, NULL, RN_CASES_DOC},
    [ATTACK_SPLIT] = {"split", RN_KIND_STRING, 0, 0, "test", 1, 0, NULL,
                      "split of the inputs when there are no cases"},
    [ATTACK_N] = {"n", RN_KIND_INT, 0, 4, NULL, 1, RN_ANALYSIS_MAX_INPUTS, NULL,
                  "inputs taken from split when there are no cases"},
    [ATTACK_DIGIT] = RN_INPUT_DIGIT_KEY,
    [ATTACK_COLOUR] = RN_INPUT_COLOUR_KEY,
    [ATTACK_PREDICTED] = RN_INPUT_PREDICTED_KEY,
    [ATTACK_INDEX] = RN_INPUT_INDEX_KEY,
};
_Static_assert(RN_N_KEYS(attack_keys) == ATTACK_N_KEYS, "one schema row per ATTACK_ key");
static const struct rn_input_keys input_keys = {ATTACK_CASES, ATTACK_SPLIT,  ATTACK_N,
                                                ATTACK_DIGIT, ATTACK_COLOUR, ATTACK_PREDICTED,
                                                ATTACK_INDEX};

static int check_attack(const struct rn_spec *, const struct rn_spec_analysis *,
                        const struct rn_graph *, int, struct rn_error *);
static int run_attack(struct rn_run *, const struct rn_spec_analysis *, struct rn_error *);
const struct rn_analysis_type rn_analysis_attack = {
    .name = "attack",
    .doc = "adversarial examples by PGD (L-inf or L2, targeted or not) at a list of epsilons, "
           "for one model or several; each step: gradient step, projection onto the ball, "
           "clamp to [0, 1]; robust accuracy, success rate and minimum epsilons",
    .keys = attack_keys,
    .n_keys = ATTACK_N_KEYS,
    .check = check_attack,
    .run = run_attack,
    .plot = rn_attack_plot,
};

/* ---- check ------------------------------------------------------------------ */

#define ATTACK_MAX_EPS 32

/* The eps list: increasing numbers >= 0, comma- or space-separated.
 * Returns the count. */
static int parse_eps(const struct rn_spec_analysis *a, float *eps, struct rn_error *err)
{
    const char *s = a->v.str[ATTACK_EPS];
    int n = 0;
    while (*s) {
        while (*s == ' ' || *s == ',')
            s++;
        if (!*s)
            break;
        char *end;
        double v = strtod(s, &end);
        if (end == s || !(v >= 0) || (*end && *end != ',' && *end != ' '))
            return rn_analysis_errorf(err, a, ATTACK_EPS,
                                      "eps: expected numbers >= 0 separated by commas, got '%s'",
                                      a->v.str[ATTACK_EPS]);
        if (v > 1 && strcmp(a->v.str[ATTACK_NORM], "linf") == 0)
            return rn_analysis_errorf(err, a, ATTACK_EPS,
                                      "eps %g: an L-inf ball wider than 1 is the whole [0, 1] box",
                                      v);
        if (n == ATTACK_MAX_EPS)
            return rn_analysis_errorf(err, a, ATTACK_EPS, "eps: at most %d values", ATTACK_MAX_EPS);
        if (n > 0 && !(v > eps[n - 1]))
            return rn_analysis_errorf(err, a, ATTACK_EPS,
                                      "eps: expected increasing values, got %g after %g", v,
                                      eps[n - 1]);
        eps[n++] = (float)v;
        s = end;
    }
    if (n == 0)
        return rn_analysis_errorf(err, a, ATTACK_EPS, "eps: no value");
    return n;
}

enum { TARGET_NONE = -1, TARGET_LEAST_LIKELY = -2, TARGET_RANDOM = -3 };

/* target: a class below k (k <= 0: any class >= 0), least_likely, random or none. */
static int parse_target(const struct rn_spec_analysis *a, int k, int *out, struct rn_error *err)
{
    const char *s = a->v.str[ATTACK_TARGET];
    char *end;
    long c = strtol(s, &end, 10);
    if (strcmp(s, "none") == 0)
        *out = TARGET_NONE;
    else if (strcmp(s, "least_likely") == 0)
        *out = TARGET_LEAST_LIKELY;
    else if (strcmp(s, "random") == 0)
        *out = TARGET_RANDOM;
    else if (*s && !*end && c >= 0 && (k <= 0 || c < k))
        *out = (int)c;
    else if (k > 0)
        return rn_analysis_errorf(
            err, a, ATTACK_TARGET,
            "target: expected a class 0-%d, least_likely, random or none, got '%s'", k - 1, s);
    else
        return rn_analysis_errorf(
            err, a, ATTACK_TARGET,
            "target: expected a class index, least_likely, random or none, got '%s'", s);
    return 0;
}

static enum rn_pgd_loss parse_loss(const struct rn_spec_analysis *a)
{
    const char *s = a->v.str[ATTACK_LOSS];
    return strcmp(s, "margin") == 0 ? RN_PGD_MARGIN
           : strcmp(s, "dlr") == 0  ? RN_PGD_DLR
                                    : RN_PGD_CE;
}

static int check_attack(const struct rn_spec *spec, const struct rn_spec_analysis *a,
                        const struct rn_graph *g, int logits, struct rn_error *err)
{
    (void)spec;
    float eps[ATTACK_MAX_EPS];
    int target, k = g ? g->nodes[logits].layer.out.c : 0;
    if (rn_models_use_own(a->v.str[ATTACK_MODELS]) && rn_analysis_need_graph(a, g != NULL, err))
        return -1;
    if (parse_eps(a, eps, err) < 0 || parse_target(a, k, &target, err))
        return -1;
    if (k > 0 && parse_loss(a) == RN_PGD_DLR && k < (target == TARGET_NONE ? 3 : 4))
        return rn_analysis_errorf(err, a, ATTACK_LOSS,
                                  "loss dlr: needs at least %d classes, the model has %d",
                                  target == TARGET_NONE ? 3 : 4, k);
    const char *digit = a->v.str[ATTACK_DIGIT];
    if (target >= 0 && !a->v.str[ATTACK_CASES][0] && strcmp(digit, "any") != 0 &&
        atoi(digit) == target)
        return rn_analysis_errorf(err, a, ATTACK_TARGET,
                                  "target %d is the digit its inputs are filtered on (digit: %s): "
                                  "a targeted attack needs another class",
                                  target, digit);
    /* cases (canonical "digit colour split index; ..."): their labels are known now */
    const char *p = a->v.str[ATTACK_CASES];
    for (int i = 1; target >= 0 && *p; i++) {
        size_t span = strcspn(p, ";");
        int digit;
        if (sscanf(p, "%d", &digit) == 1 && digit == target)
            return rn_analysis_errorf(err, a, ATTACK_TARGET,
                                      "target %d is the true label of case %d ('%.*s'): a "
                                      "targeted attack needs another class",
                                      target, i, (int)span, p);
        p += span + (p[span] == ';');
        while (*p == ' ')
            p++;
    }
    return 0;
}

/* ---- one model --------------------------------------------------------------- */

/* What the attack finds for one model; every array has the model's slot of
 * the analysis' (models, ...) datasets. */
struct outcome {
    float *adv;                 /* (n_eps * n, per) */
    float *probs;               /* (n_eps, n, k) */
    float *clean;               /* (n, k) */
    float *trace;               /* (rows, n_eps * n, k) or NULL */
    float *dmean;               /* (n_eps, n, c) */
    int32_t *success, *reached; /* (n_eps, n) */
    float *min_eps;             /* (n); inf: never reached */
    int32_t *targets;           /* (n) */
    float *robust, *rate;       /* (n_eps) */
    float *clean_acc, *viol;    /* (1) */
};

/* The problem every model shares. */
struct problem {
    const struct rn_spec_analysis *a;
    struct rn_attack_cfg cfg;
    float eps[ATTACK_MAX_EPS];
    int n_eps, target, k, n, c, rows, bisect;
    size_t per, hw;
    float threshold;
    const float *src;
    const int *labels;
    const struct rn_inputs *in;
};

/* Per input the attacked class: the declared one, the least likely other
 * class by the clean probabilities, a random other class, or -1
 * (untargeted). */
static void choose_targets(const struct problem *P, const float *clean, int *targets)
{
    const int k = P->k;
    for (int i = 0; i < P->n; i++) {
        const float *p = clean + (size_t)i * k;
        targets[i] = P->target;
        if (P->target == TARGET_NONE) {
            targets[i] = -1;
        } else if (P->target == TARGET_LEAST_LIKELY) {
            /* of the classes other than the true one */
            targets[i] = P->labels[i] == 0 ? 1 : 0;
            for (int j = 0; j < k; j++)
                if (j != P->labels[i] && p[j] < p[targets[i]])
                    targets[i] = j;
        } else if (P->target == TARGET_RANDOM) {
            struct rn_rng r;
            rn_rng_init(&r, P->cfg.seed, RN_STREAM_ANALYSIS, 1000000 + (uint64_t)i);
            int c = (int)(rn_rng_uniform(&r) * (float)(k - 1));
            c = c >= k - 1 ? k - 2 : c;
            targets[i] = c >= P->labels[i] ? c + 1 : c;
        }
    }
}

/* Per image the sweep's bracket of the smallest epsilon reaching the
 * threshold, refined by bisection: 0 when the clean image already reaches
 * it, inf when no epsilon of the sweep does. */
static int min_epsilons(const struct problem *P, struct rn_graph *g, int logits, const int *targets,
                        struct outcome *o, struct rn_error *err)
{
    float lo[RN_ANALYSIS_MAX_INPUTS], hi[RN_ANALYSIS_MAX_INPUTS];
    for (int i = 0; i < P->n; i++) {
        lo[i] = 0;
        hi[i] = INFINITY;
        if (rn_attack_reached(o->clean + (size_t)i * P->k, P->k, P->labels[i], targets[i],
                              P->threshold)) {
            hi[i] = 0;
            continue;
        }
        for (int e = 0; e < P->n_eps; e++)
            if (o->reached[e * P->n + i]) {
                hi[i] = P->eps[e];
                break;
            } else {
                lo[i] = P->eps[e];
            }
    }
    return rn_attack_min_eps(g, logits, &P->cfg, P->src, P->n, P->labels, targets, P->threshold, lo,
                             hi, P->bisect, o->min_eps, err);
}

static int attack_model(const struct problem *P, struct rn_run *r, struct outcome *o,
                        struct rn_error *err)
{
    struct rn_graph *g = &r->graph;
    const int n = P->n, k = P->k;
    if (g->nodes[r->logits_node].layer.out.c != k)
        return rn_analysis_errorf(err, P->a, ATTACK_MODELS,
                                  "a model with %d classes next to one with %d",
                                  g->nodes[r->logits_node].layer.out.c, k);
    /* the clean probabilities: no step at epsilon 0 */
    int targets[RN_ANALYSIS_MAX_INPUTS];
    const float zero = 0;
    struct rn_attack_cfg none = {.steps = 0, .restarts = 1};
    memset(targets, 0xff, sizeof targets);
    if (rn_attack_pgd(g, r->logits_node, &none, &zero, 1, P->src, n, P->labels, targets, o->adv,
                      o->clean, err))
        return -1;
    choose_targets(P, o->clean, targets);
    for (int i = 0; i < n; i++)
        if (targets[i] == P->labels[i])
            return rn_analysis_errorf(err, P->a, ATTACK_TARGET,
                                      "target %d is the true label of input %d: a targeted "
                                      "attack needs another class",
                                      targets[i], i + 1);
    struct rn_attack_cfg cfg = P->cfg;
    cfg.trace = o->trace;
    if (rn_attack_pgd(g, r->logits_node, &cfg, P->eps, P->n_eps, P->src, n, P->labels, targets,
                      o->adv, o->probs, err))
        return -1;
    int correct = 0;
    for (int i = 0; i < n; i++) {
        o->targets[i] = targets[i];
        correct += rn_argmax(o->clean + (size_t)i * k, k) == P->labels[i];
    }
    *o->clean_acc = (float)correct / (float)n;
    for (int e = 0; e < P->n_eps; e++) {
        int robust = 0, won = 0;
        for (int i = 0; i < n; i++) {
            int j = e * n + i, top = rn_argmax(o->probs + (size_t)j * k, k);
            o->success[j] = targets[i] >= 0 ? top == targets[i] : top != P->labels[i];
            o->reached[j] = rn_attack_reached(o->probs + (size_t)j * k, k, P->labels[i], targets[i],
                                              P->threshold);
            robust += top == P->labels[i];
            won += o->success[j];
            for (int c = 0; c < P->c; c++) {
                const float *x = o->adv + (size_t)j * P->per + c * P->hw,
                            *s = P->src + (size_t)i * P->per + c * P->hw;
                double sum = 0;
                for (size_t q = 0; q < P->hw; q++)
                    sum += fabsf(x[q] - s[q]);
                o->dmean[(size_t)j * P->c + c] = (float)(sum / (double)P->hw);
            }
        }
        o->robust[e] = (float)robust / (float)n;
        o->rate[e] = (float)won / (float)n;
    }
    *o->viol =
        (float)rn_attack_max_violation(P->cfg.l2, P->eps, P->n_eps, P->src, o->adv, n, P->per);
    return min_epsilons(P, g, r->logits_node, targets, o, err);
}

/* ---- run -------------------------------------------------------------------- */

/* The (models, ...) arrays of the analysis; model m's slot by outcome_of. */
struct arrays {
    float *adv, *probs, *clean, *trace, *dmean, *min_eps, *robust, *rate, *clean_acc, *viol;
    int32_t *success, *reached, *targets;
};

static void arrays_free(struct arrays *A)
{
    float *f[] = {A->adv,     A->probs,  A->clean, A->trace,     A->dmean,
                  A->min_eps, A->robust, A->rate,  A->clean_acc, A->viol};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        free(f[i]);
    free(A->success);
    free(A->reached);
    free(A->targets);
}

static int arrays_alloc(struct arrays *A, const struct problem *P, int nm, struct rn_error *err)
{
    const size_t B = (size_t)P->n_eps * P->n, M = (size_t)nm;
    memset(A, 0, sizeof *A);
    return !(A->adv = rn_malloc(sizeof(float) * M * B * P->per, err)) ||
                   !(A->probs = rn_malloc(sizeof(float) * M * B * P->k, err)) ||
                   !(A->clean = rn_malloc(sizeof(float) * M * P->n * P->k, err)) ||
                   (P->rows &&
                    !(A->trace = rn_malloc(sizeof(float) * M * P->rows * B * P->k, err))) ||
                   !(A->dmean = rn_malloc(sizeof(float) * M * B * P->c, err)) ||
                   !(A->min_eps = rn_malloc(sizeof(float) * M * P->n, err)) ||
                   !(A->robust = rn_malloc(sizeof(float) * M * P->n_eps, err)) ||
                   !(A->rate = rn_malloc(sizeof(float) * M * P->n_eps, err)) ||
                   !(A->clean_acc = rn_malloc(sizeof(float) * M, err)) ||
                   !(A->viol = rn_malloc(sizeof(float) * M, err)) ||
                   !(A->success = rn_malloc(sizeof(int32_t) * M * B, err)) ||
                   !(A->reached = rn_malloc(sizeof(int32_t) * M * B, err)) ||
                   !(A->targets = rn_malloc(sizeof(int32_t) * M * P->n, err))
               ? -1
               : 0;
}

static struct outcome outcome_of(const struct arrays *A, const struct problem *P, int m)
{
    const size_t B = (size_t)P->n_eps * P->n;
    return (struct outcome){
        .adv = A->adv + m * B * P->per,
        .probs = A->probs + m * B * P->k,
        .clean = A->clean + (size_t)m * P->n * P->k,
        .trace = A->trace ? A->trace + (size_t)m * P->rows * B * P->k : NULL,
        .dmean = A->dmean + m * B * P->c,
        .success = A->success + m * B,
        .reached = A->reached + m * B,
        .min_eps = A->min_eps + (size_t)m * P->n,
        .targets = A->targets + (size_t)m * P->n,
        .robust = A->robust + (size_t)m * P->n_eps,
        .rate = A->rate + (size_t)m * P->n_eps,
        .clean_acc = A->clean_acc + m,
        .viol = A->viol + m,
    };
}

static int write_f32(struct rn_run *run, const char *group, const char *name, const float *v,
                     int nd, const int *dims, struct rn_error *err)
{
    char path[320];
    snprintf(path, sizeof path, "%s/%s", group, name);
    return rn_results_write(run->results, path, RN_DTYPE_F32, v, nd, dims, err);
}

static int write_i32(struct rn_run *run, const char *group, const char *name, const int32_t *v,
                     int nd, const int *dims, struct rn_error *err)
{
    char path[320];
    snprintf(path, sizeof path, "%s/%s", group, name);
    return rn_results_write(run->results, path, RN_DTYPE_I32, v, nd, dims, err);
}

static int write_attrs(struct rn_run *run, const char *group, const struct problem *P,
                       struct rn_error *err)
{
    const struct rn_spec_analysis *a = P->a;
    struct rn_results *r = run->results;
    const char *str[][2] = {
        {"kind", "attack"},
        {"norm", a->v.str[ATTACK_NORM]},
        {"eps_list", a->v.str[ATTACK_EPS]},
        {"target", a->v.str[ATTACK_TARGET]},
        {"loss", a->v.str[ATTACK_LOSS]},
        {"mask", a->v.str[ATTACK_MASK]},
        {"adversarial_layout", "(models * n_eps * n, c, h, w): model-major, then epsilon; "
                               "image (m * n_eps + e) * n + i"},
        {"order", "gradient step, projection onto the ball, clamp to [0, 1]"},
        {"mode", "evaluation: dropout off, batchnorm running statistics"},
    };
    for (size_t i = 0; i < sizeof str / sizeof str[0]; i++)
        if (rn_results_set_attr_str(r, group, str[i][0], str[i][1], err))
            return -1;
    const struct {
        const char *name;
        double v;
    } num[] = {
        {"steps", P->cfg.steps},
        {"step", P->cfg.step},
        {"step_rel", P->cfg.step_rel},
        {"random_start", P->cfg.random_start},
        {"restarts", P->cfg.restarts},
        {"threshold", P->a->v.num[ATTACK_THRESHOLD]},
        {"bisect", P->bisect},
        {"trace_stride", P->cfg.trace_stride},
        {"show_eps", a->v.num[ATTACK_SHOW_EPS]},
    };
    for (size_t i = 0; i < sizeof num / sizeof num[0]; i++) {
        char buf[64];
        snprintf(buf, sizeof buf, "%.9g", num[i].v);
        if (rn_results_set_attr_str(r, group, num[i].name, buf, err))
            return -1;
    }
    return rn_results_set_attr_u64(r, group, "seed", P->cfg.seed, err);
}

static int write_outcomes(struct rn_run *run, const char *group, const struct problem *P,
                          const struct arrays *A, int nm, struct rn_error *err)
{
    const int n = P->n, ne = P->n_eps, B = ne * n;
    int d1[1] = {ne}, dm[1] = {nm}, dadv[4] = {nm * B, P->c, (int)(P->hw / P->in->w), P->in->w},
        dp[4] = {nm, ne, n, P->k}, dc[3] = {nm, n, P->k}, dd[4] = {nm, ne, n, P->c},
        dt[2] = {nm, n}, ds[3] = {nm, ne, n}, de[2] = {nm, ne}, dtr[4] = {nm, P->rows, B, P->k};
    if (write_f32(run, group, "eps", P->eps, 1, d1, err) ||
        write_f32(run, group, "probs", A->probs, 4, dp, err) ||
        write_f32(run, group, "clean_probs", A->clean, 3, dc, err) ||
        write_f32(run, group, "delta_abs_mean", A->dmean, 4, dd, err) ||
        write_f32(run, group, "max_violation", A->viol, 1, dm, err) ||
        write_f32(run, group, "min_eps", A->min_eps, 2, dt, err) ||
        write_f32(run, group, "robust_accuracy", A->robust, 2, de, err) ||
        write_f32(run, group, "success_rate", A->rate, 2, de, err) ||
        write_f32(run, group, "clean_accuracy", A->clean_acc, 1, dm, err) ||
        write_i32(run, group, "targets", A->targets, 2, dt, err) ||
        write_i32(run, group, "success", A->success, 3, ds, err) ||
        write_i32(run, group, "reached", A->reached, 3, ds, err) ||
        (A->trace && write_f32(run, group, "trace", A->trace, 4, dtr, err)))
        return -1;
    if (!P->a->v.num[ATTACK_IMAGES])
        return 0;
    if (write_f32(run, group, "adversarial", A->adv, 4, dadv, err))
        return -1;
    /* the perturbation, adversarial - source, in place of the images */
    for (size_t j = 0; j < (size_t)nm * B; j++)
        for (size_t q = 0; q < P->per; q++)
            A->adv[j * P->per + q] -= P->src[(j % (size_t)n) * P->per + q];
    return write_f32(run, group, "perturbation", A->adv, 4, dadv, err);
}

static void log_outcomes(struct rn_run *run, const struct problem *P, const struct arrays *A,
                         const struct rn_model *models, int nm)
{
    FILE *f = run->opt.log;
    const int n = P->n, k = P->k, shown = n < 4 ? n : 4;
    for (int m = 0; m < nm; m++) {
        struct outcome o = outcome_of(A, P, m);
        for (int i = 0; i < shown; i++) {
            int c = o.targets[i] >= 0 ? o.targets[i] : P->labels[i];
            fprintf(f, "attack %s: %s input %d (label %d) P(%d) clean %.4f;", P->a->name,
                    models[m].name, i + 1, P->labels[i], c, o.clean[(size_t)i * k + c]);
            for (int e = 0; e < P->n_eps; e++)
                fprintf(f, " eps %g: %.4f", P->eps[e], o.probs[((size_t)e * n + i) * k + c]);
            fprintf(f, "; min eps %.4g\n", o.min_eps[i]);
        }
        if (shown < n)
            fprintf(f, "attack %s: %s (first %d of %d inputs shown)\n", P->a->name, models[m].name,
                    shown, n);
        fprintf(f, "attack %s: %s clean accuracy %.4f; robust accuracy", P->a->name, models[m].name,
                *o.clean_acc);
        for (int e = 0; e < P->n_eps; e++)
            fprintf(f, " %g: %.4f", P->eps[e], o.robust[e]);
        fprintf(f, "; success rate");
        for (int e = 0; e < P->n_eps; e++)
            fprintf(f, " %g: %.4f", P->eps[e], o.rate[e]);
        fprintf(f, "; largest violation %g\n", *o.viol);
        /* the sanity checks, said rather than hidden */
        if (P->eps[0] == 0 && !P->cfg.random_start && o.robust[0] != *o.clean_acc)
            fprintf(f,
                    "warning: attack %s: %s robust accuracy at epsilon 0 (%.4f) differs "
                    "from the clean accuracy (%.4f)\n",
                    P->a->name, models[m].name, o.robust[0], *o.clean_acc);
        if (*o.viol > 0)
            fprintf(f,
                    "warning: attack %s: %s an adversarial image lies %g outside [0, 1] or "
                    "its ball\n",
                    P->a->name, models[m].name, *o.viol);
    }
}

static int run_attack(struct rn_run *run, const struct rn_spec_analysis *a, struct rn_error *err)
{
    struct rn_model *models = NULL;
    struct rn_inputs in;
    struct arrays A = {0};
    struct problem P = {.a = a};
    memset(&in, 0, sizeof in);
    float *src = NULL;
    uint8_t *mask = NULL;
    int nm = 0, rc = -1;
    P.k = run->data.n_classes;
    P.cfg = (struct rn_attack_cfg){
        .l2 = strcmp(a->v.str[ATTACK_NORM], "l2") == 0,
        .steps = (int)a->v.num[ATTACK_STEPS],
        .step = (float)a->v.num[ATTACK_STEP],
        .step_rel = (float)a->v.num[ATTACK_STEP_REL],
        .random_start = a->v.num[ATTACK_RANDOM_START] != 0,
        .restarts = (int)a->v.num[ATTACK_RESTARTS],
        .seed = (uint64_t)a->v.num[ATTACK_SEED],
        .loss = parse_loss(a),
        .trace_stride = (int)a->v.num[ATTACK_TRACE_STRIDE],
    };
    P.threshold = (float)a->v.num[ATTACK_THRESHOLD];
    P.bisect = (int)a->v.num[ATTACK_BISECT];
    P.rows = P.cfg.trace_stride > 0 ? P.cfg.steps / P.cfg.trace_stride + 1 : 0;
    if ((P.n_eps = parse_eps(a, P.eps, err)) < 0 || parse_target(a, P.k, &P.target, err) ||
        rn_models_open(run, a, ATTACK_MODELS, &models, &nm, err) ||
        rn_inputs_build(run, a, input_keys, &in, err))
        goto done;
    P.n = in.n;
    P.c = in.c;
    P.hw = (size_t)in.h * in.w;
    P.per = (size_t)in.c * P.hw;
    P.in = &in;
    int labels[RN_ANALYSIS_MAX_INPUTS];
    for (int i = 0; i < in.n; i++)
        labels[i] = in.labels[i];
    P.labels = labels;
    if (!(src = rn_malloc(sizeof(float) * (size_t)in.n * P.per, err)) ||
        arrays_alloc(&A, &P, nm, err))
        goto done;
    for (size_t q = 0; q < (size_t)in.n * P.per; q++)
        src[q] = in.images[q] * (1.0f / 255.0f);
    P.src = src;
    if (strcmp(a->v.str[ATTACK_MASK], "none") != 0) {
        int stroke = strcmp(a->v.str[ATTACK_MASK], "stroke") == 0;
        if (!(mask = rn_malloc((size_t)in.n * P.hw, err)))
            goto done;
        for (size_t q = 0; q < (size_t)in.n * P.hw; q++)
            mask[q] = stroke ? in.masks[q] != 0 : in.masks[q] == 0;
        P.cfg.mask = mask;
    }
    for (int m = 0; m < nm; m++) {
        struct outcome o = outcome_of(&A, &P, m);
        if (attack_model(&P, models[m].run, &o, err))
            goto done;
    }
    char group[256];
    snprintf(group, sizeof group, "/analyses/%s", a->name);
    if (!run->opt.quiet)
        log_outcomes(run, &P, &A, models, nm);
    if (rn_inputs_write(run, group, &in, err) || write_outcomes(run, group, &P, &A, nm, err) ||
        rn_models_write_names(run, group, models, nm, err) || write_attrs(run, group, &P, err))
        goto done;
    rc = 0;
done:
    rn_models_free(models, nm);
    rn_inputs_free(&in);
    arrays_free(&A);
    free(src);
    free(mask);
    return rc;
}
