/* attack.c - adversarial attacks (SPEC.md "Adversarial (Task 5)"): targeted
 * or untargeted PGD, L-inf or L2, on the analysis' inputs at a list of
 * epsilons, batched over epsilons and images (the arithmetic: runner/pgd.c).
 * Figures: the attacked class' probability against epsilon
 * (plots/attack.gp), and source | perturbation | adversarial at the largest
 * epsilon (plots/attack_images.gp).
 */
#include "pgd.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "loss.h"

/* ---- the analysis ----------------------------------------------------------- */

#define ATTACK_MAX_EPS 32

enum {
    ATTACK_NORM,
    ATTACK_EPS,
    ATTACK_STEPS,
    ATTACK_STEP,
    ATTACK_STEP_REL,
    ATTACK_TARGET,
    ATTACK_RANDOM_START,
    ATTACK_RESTARTS,
    ATTACK_SEED,
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
                    "radii of the ball, comma-separated (at most 32; L-inf at most 1), e.g. \"0, "
                    "0.01, 0.05\""},
    [ATTACK_STEPS] = {"steps", RN_KIND_INT, 0, 200, NULL, 1, 100000, NULL,
                      "iterations (FGSM: 1 with step_rel 1)"},
    [ATTACK_STEP] = {"step", RN_KIND_FLOAT, 0, 0, NULL, 0, 1, NULL,
                     "absolute step size; 0 = step_rel * eps"},
    [ATTACK_STEP_REL] = {"step_rel", RN_KIND_FLOAT, 0, 0.1, NULL, 0, 10, NULL,
                         "step size relative to eps when step is 0"},
    [ATTACK_TARGET] = {"target", RN_KIND_STRING, 0, 0, "none", 1, 0, NULL,
                       "a class index, least_likely, random, or none (untargeted)"},
    [ATTACK_RANDOM_START] = {"random_start", RN_KIND_BOOL, 0, 0, NULL, 1, 0, NULL,
                             "start uniformly in the ball (L-inf: the box; L2: the ball)"},
    [ATTACK_RESTARTS] = {"restarts", RN_KIND_INT, 0, 1, NULL, 1, 100, NULL,
                         "attacks per image; the best is kept"},
    [ATTACK_SEED] = {"seed", RN_KIND_INT, 0, 0, NULL, 0, 2147483647, NULL,
                     "seed of the random starts and random targets"},
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
static int plot_attack(struct rn_plotter *, const char *, const char *, char *const *, int,
                       struct rn_error *);
const struct rn_analysis_type rn_analysis_attack = {
    .name = "attack",
    .doc = "adversarial examples by PGD (L-inf or L2, targeted or not) at a list of epsilons; "
           "each step: gradient step, projection onto the ball, clamp to [0, 1]",
    .keys = attack_keys,
    .n_keys = ATTACK_N_KEYS,
    .check = check_attack,
    .run = run_attack,
    .plot = plot_attack,
};

/* ---- check ------------------------------------------------------------------ */

/* The eps list: comma- or space-separated numbers >= 0. Returns the count. */
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

static int check_attack(const struct rn_spec *spec, const struct rn_spec_analysis *a,
                        const struct rn_graph *g, int logits, struct rn_error *err)
{
    (void)spec;
    float eps[ATTACK_MAX_EPS];
    int target;
    if (rn_analysis_need_graph(a, g != NULL, err) || parse_eps(a, eps, err) < 0 ||
        parse_target(a, g ? g->nodes[logits].layer.out.c : 0, &target, err))
        return -1;
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

/* ---- run -------------------------------------------------------------------- */

static int write_f32(struct rn_run *run, const char *group, const char *name, const float *v,
                     int nd, const int *dims, struct rn_error *err)
{
    char path[320];
    snprintf(path, sizeof path, "%s/%s", group, name);
    return rn_results_write(run->results, path, RN_DTYPE_F32, v, nd, dims, err);
}

static int write_attrs(struct rn_run *run, const char *group, const struct rn_spec_analysis *a,
                       const struct rn_attack_cfg *cfg, struct rn_error *err)
{
    char buf[64];
    struct rn_results *r = run->results;
    if (rn_results_set_attr_str(r, group, "kind", "attack", err) ||
        rn_results_set_attr_str(r, group, "norm", a->v.str[ATTACK_NORM], err) ||
        rn_results_set_attr_str(r, group, "eps_list", a->v.str[ATTACK_EPS], err) ||
        rn_results_set_attr_str(r, group, "target", a->v.str[ATTACK_TARGET], err) ||
        rn_results_set_attr_str(r, group, "loss", "cross-entropy", err) ||
        rn_results_set_attr_str(r, group, "adversarial_layout",
                                "(n_eps * n, c, h, w): epsilon-major, image e * n + i", err) ||
        rn_results_set_attr_str(r, group, "order",
                                "gradient step, projection onto the ball, clamp to [0, 1]", err))
        return -1;
    snprintf(buf, sizeof buf, "%d", cfg->steps);
    if (rn_results_set_attr_str(r, group, "steps", buf, err))
        return -1;
    snprintf(buf, sizeof buf, "%.9g", cfg->step);
    if (rn_results_set_attr_str(r, group, "step", buf, err))
        return -1;
    snprintf(buf, sizeof buf, "%.9g", cfg->step_rel);
    if (rn_results_set_attr_str(r, group, "step_rel", buf, err))
        return -1;
    snprintf(buf, sizeof buf, "%d", cfg->random_start);
    if (rn_results_set_attr_str(r, group, "random_start", buf, err))
        return -1;
    snprintf(buf, sizeof buf, "%d", cfg->restarts);
    if (rn_results_set_attr_str(r, group, "restarts", buf, err))
        return -1;
    return rn_results_set_attr_u64(r, group, "seed", cfg->seed, err);
}

/* Per input the attacked class: the declared one, the least likely of the
 * clean probabilities, a random other class, or -1 (untargeted). */
static void choose_targets(int target, const float *clean, const struct rn_inputs *in, int k,
                           uint64_t seed, int *targets)
{
    for (int i = 0; i < in->n; i++) {
        const float *p = clean + (size_t)i * k;
        targets[i] = target;
        if (target == TARGET_NONE) {
            targets[i] = -1;
        } else if (target == TARGET_LEAST_LIKELY) {
            targets[i] = 0;
            for (int j = 1; j < k; j++)
                if (p[j] < p[targets[i]])
                    targets[i] = j;
        } else if (target == TARGET_RANDOM) {
            struct rn_rng r;
            rn_rng_init(&r, seed, RN_STREAM_ANALYSIS, 1000000 + (uint64_t)i);
            int c = (int)(rn_rng_uniform(&r) * (float)(k - 1));
            c = c >= k - 1 ? k - 2 : c;
            targets[i] = c >= in->labels[i] ? c + 1 : c;
        }
    }
}

static int run_attack(struct rn_run *run, const struct rn_spec_analysis *a, struct rn_error *err)
{
    struct rn_graph *g = &run->graph;
    struct rn_inputs in;
    memset(&in, 0, sizeof in);
    float eps[ATTACK_MAX_EPS], *src = NULL, *adv = NULL, *probs = NULL, *clean = NULL,
                               *dmean = NULL;
    int32_t *success = NULL;
    int n_eps, target, rc = -1;
    const int k = g->nodes[run->logits_node].layer.out.c;
    struct rn_attack_cfg cfg = {
        .l2 = strcmp(a->v.str[ATTACK_NORM], "l2") == 0,
        .steps = (int)a->v.num[ATTACK_STEPS],
        .step = (float)a->v.num[ATTACK_STEP],
        .step_rel = (float)a->v.num[ATTACK_STEP_REL],
        .random_start = a->v.num[ATTACK_RANDOM_START] != 0,
        .restarts = (int)a->v.num[ATTACK_RESTARTS],
        .seed = (uint64_t)a->v.num[ATTACK_SEED],
    };
    if ((n_eps = parse_eps(a, eps, err)) < 0 || parse_target(a, k, &target, err) ||
        rn_inputs_build(run, a, input_keys, &in, err))
        goto done;
    const int n = in.n;
    const size_t per = (size_t)in.c * in.h * in.w;
    if (!(src = rn_malloc(sizeof(float) * (size_t)n * per, err)) ||
        !(adv = rn_malloc(sizeof(float) * (size_t)n_eps * n * per, err)) ||
        !(probs = rn_malloc(sizeof(float) * (size_t)n_eps * n * k, err)) ||
        !(clean = rn_malloc(sizeof(float) * (size_t)n * k, err)) ||
        !(dmean = rn_malloc(sizeof(float) * (size_t)n_eps * n * in.c, err)) ||
        !(success = rn_malloc(sizeof(int32_t) * (size_t)n_eps * n, err)))
        goto done;
    for (size_t q = 0; q < (size_t)n * per; q++)
        src[q] = in.images[q] * (1.0f / 255.0f);
    int labels[RN_ANALYSIS_MAX_INPUTS], targets[RN_ANALYSIS_MAX_INPUTS];
    for (int i = 0; i < n; i++)
        labels[i] = in.labels[i];
    /* the clean probabilities: no step at epsilon 0 */
    const float zero = 0;
    struct rn_attack_cfg none = {.steps = 0, .restarts = 1};
    memset(targets, 0xff, sizeof targets);
    float *scratch = adv; /* n * per fits in n_eps * n * per */
    if (rn_attack_pgd(g, run->logits_node, &none, &zero, 1, src, n, labels, targets, scratch, clean,
                      err))
        goto done;
    choose_targets(target, clean, &in, k, cfg.seed, targets);
    for (int i = 0; i < n; i++)
        if (targets[i] == labels[i]) {
            rn_analysis_errorf(err, a, ATTACK_TARGET,
                               "target %d is the true label of input %d: a targeted attack "
                               "needs another class",
                               targets[i], i + 1);
            goto done;
        }
    if (rn_attack_pgd(g, run->logits_node, &cfg, eps, n_eps, src, n, labels, targets, adv, probs,
                      err))
        goto done;
    const size_t hw = (size_t)in.h * in.w;
    for (int j = 0; j < n_eps * n; j++) {
        const float *pj = probs + (size_t)j * k;
        int i = j % n, top = rn_argmax(pj, k);
        success[j] = targets[i] >= 0 ? top == targets[i] : top != labels[i];
        for (int c = 0; c < in.c; c++) {
            double s = 0;
            for (size_t q = 0; q < hw; q++)
                s += fabsf(adv[(size_t)j * per + c * hw + q] - src[(size_t)i * per + c * hw + q]);
            dmean[(size_t)j * in.c + c] = (float)(s / (double)hw);
        }
    }
    float viol = (float)rn_attack_max_violation(cfg.l2, eps, n_eps, src, adv, n, per);
    char group[256];
    snprintf(group, sizeof group, "/analyses/%s", a->name);
    int d1[1] = {n_eps}, dadv[4] = {n_eps * n, in.c, in.h, in.w}, dp[3] = {n_eps, n, k},
        dc[2] = {n, k}, dd[3] = {n_eps, n, in.c}, dt[1] = {n}, ds[2] = {n_eps, n};
    char path[320];
    snprintf(path, sizeof path, "%s/targets", group);
    int32_t t32[RN_ANALYSIS_MAX_INPUTS];
    for (int i = 0; i < n; i++)
        t32[i] = targets[i];
    if (rn_inputs_write(run, group, &in, err) || write_f32(run, group, "eps", eps, 1, d1, err) ||
        write_f32(run, group, "adversarial", adv, 4, dadv, err) ||
        write_f32(run, group, "probs", probs, 3, dp, err) ||
        write_f32(run, group, "clean_probs", clean, 2, dc, err) ||
        write_f32(run, group, "delta_abs_mean", dmean, 3, dd, err) ||
        write_f32(run, group, "max_violation", &viol, 0, NULL, err) ||
        rn_results_write(run->results, path, RN_DTYPE_I32, t32, 1, dt, err))
        goto done;
    snprintf(path, sizeof path, "%s/success", group);
    if (rn_results_write(run->results, path, RN_DTYPE_I32, success, 2, ds, err) ||
        write_attrs(run, group, a, &cfg, err))
        goto done;
    if (!run->opt.quiet)
        for (int i = 0; i < n; i++) {
            int c = targets[i] >= 0 ? targets[i] : labels[i];
            fprintf(run->opt.log, "attack %s: input %d (label %d) P(%d) clean %.4f;", a->name,
                    i + 1, labels[i], c, clean[(size_t)i * k + c]);
            for (int e = 0; e < n_eps; e++)
                fprintf(run->opt.log, " eps %g: %.4f", eps[e], probs[((size_t)e * n + i) * k + c]);
            fprintf(run->opt.log, "; largest violation %g\n", viol);
        }
    rc = 0;
done:
    rn_inputs_free(&in);
    free(src);
    free(adv);
    free(probs);
    free(clean);
    free(dmean);
    free(success);
    return rc;
}

/* ---- figures ------------------------------------------------------------------ */

static float clamp01(float v)
{
    return v < 0 ? 0 : v > 1 ? 1 : v;
}

/* A float (c, hw) image in [0, 1] as uint8, for rn_plot_write_image. */
static void to_u8(const float *x, size_t per, float offset, float scale, uint8_t *out)
{
    for (size_t q = 0; q < per; q++) {
        float v = clamp01(offset + scale * x[q]);
        out[q] = (uint8_t)lrintf(v * 255.0f);
    }
}

/* Per input one row: the source | the perturbation at the largest epsilon
 * (0.5 grey + delta scaled to its largest |delta|, per channel) | the
 * adversarial image. */
static int plot_images(struct rn_plotter *p, const char *group, const char *figure,
                       const struct rn_plot_inputs *in, const float *eps, int n_eps,
                       const float *probs, int k, struct rn_error *err)
{
    char path[RN_PLOT_PATH_MAX], dpath[RN_PLOT_PATH_MAX], file[RN_PLOT_PATH_MAX];
    char stem[RN_PLOT_PATH_MAX], key[32], fig[160];
    snprintf(path, sizeof path, "%s/adversarial", group);
    if (!rn_results_exists(p->r, path))
        return 0;
    float *adv = NULL;
    int d[4], rc = -1;
    struct rn_sbuf defs = {0};
    const int n = in->n, e = n_eps - 1;
    const size_t per = (size_t)in->c * in->h * in->w;
    uint8_t *u8 = malloc(per);
    float *delta = malloc(sizeof(float) * per);
    if (!u8 || !delta) {
        rn_errorf(err, "attack figure: out of memory");
        goto done;
    }
    if (rn_plot_read_f32(p, path, 4, &adv, d, err))
        goto done;
    if (d[0] != n_eps * n || (size_t)d[1] * d[2] * d[3] != per) {
        rn_errorf(err, "%s: %s (%d,%d,%d,%d) does not match %d epsilons x %d inputs", p->run_dir,
                  path, d[0], d[1], d[2], d[3], n_eps, n);
        goto done;
    }
    snprintf(fig, sizeof fig, "%s_images", figure);
    snprintf(stem, sizeof stem, "%s/%s", p->data_dir, fig);
    for (int i = 0; i < n; i++) {
        const float *a = adv + ((size_t)e * n + i) * per;
        const uint8_t *s = in->img + (size_t)i * per;
        float mx = 0;
        for (size_t q = 0; q < per; q++) {
            delta[q] = a[q] - s[q] * (1.0f / 255.0f);
            mx = fabsf(delta[q]) > mx ? fabsf(delta[q]) : mx;
        }
        const char *what[3] = {"source", "delta", "adv"};
        for (int col = 0; col < 3; col++) {
            FILE *f;
            snprintf(file, sizeof file, "%s_%d_%s.dat", fig, i, what[col]);
            if (!(f = rn_plot_data_open(p, file, dpath, err)))
                goto done;
            if (col == 0)
                memcpy(u8, s, per);
            else if (col == 1)
                to_u8(delta, per, 0.5f, mx > 0 ? 0.5f / mx : 0.0f, u8);
            else
                to_u8(a, per, 0.0f, 1.0f, u8);
            rn_plot_write_image(f, u8, in->c, in->h, in->w, 0, 0);
            if (rn_plot_data_close(f, dpath, err))
                goto done;
        }
        char cap[160], t[200];
        rn_plot_inputs_caption(in, i, cap, sizeof cap);
        snprintf(key, sizeof key, "cap%d", i);
        rn_sbuf_def_str(&defs, key, cap);
        snprintf(t, sizeof t, "delta x %.3g (max |delta| %.3g)", mx > 0 ? 0.5 / mx : 0.0, mx);
        snprintf(key, sizeof key, "dcap%d", i);
        rn_sbuf_def_str(&defs, key, t);
        const float *pi = probs + ((size_t)e * n + i) * k;
        int top = rn_argmax(pi, k);
        snprintf(t, sizeof t, "adversarial: predicted %d (p %.3f)", top, pi[top]);
        snprintf(key, sizeof key, "acap%d", i);
        rn_sbuf_def_str(&defs, key, t);
    }
    char title[200];
    snprintf(title, sizeof title,
             "source | perturbation (0.5 grey + delta, amplified) | adversarial at epsilon %g",
             eps[e]);
    rn_sbuf_def_str(&defs, "stem", stem);
    rn_sbuf_def_str(&defs, "title", title);
    rn_sbuf_printf(&defs, "n=%d; iw=%d; ih=%d; ", n, in->w, in->h);
    rc = rn_plot_draw(p, "attack_images.gp", fig, 780, 90 + 250 * n, &defs, err);
done:
    free(adv);
    free(u8);
    free(delta);
    free(defs.s);
    return rc;
}

/* ---- figure: the attacked class' probability against epsilon ------------------- */

static int plot_attack(struct rn_plotter *p, const char *group, const char *name,
                       char *const *datasets, int n_datasets, struct rn_error *err)
{
    (void)datasets;
    (void)n_datasets;
    char path[RN_PLOT_PATH_MAX], dpath[RN_PLOT_PATH_MAX], file[RN_PLOT_PATH_MAX];
    char figure[128], sname[64], key[32];
    snprintf(path, sizeof path, "%s/probs", group);
    if (!rn_results_exists(p->r, path))
        return 0;
    struct rn_plot_inputs in;
    float *eps = NULL, *probs = NULL, *clean = NULL;
    int32_t *targets = NULL;
    int de[4], dp[4], dc[4], rc = -1;
    struct rn_sbuf defs = {0};
    char *norm = rn_plot_attr_or(p, group, "norm", "linf");
    char *steps = rn_plot_attr_or(p, group, "steps", "?");
    FILE *f = NULL;
    if (rn_plot_inputs_read(p, group, &in, err))
        goto done;
    snprintf(path, sizeof path, "%s/eps", group);
    if (rn_plot_read_f32(p, path, 1, &eps, de, err))
        goto done;
    snprintf(path, sizeof path, "%s/probs", group);
    if (rn_plot_read_f32(p, path, 3, &probs, dp, err))
        goto done;
    snprintf(path, sizeof path, "%s/clean_probs", group);
    if (rn_plot_read_f32(p, path, 2, &clean, dc, err))
        goto done;
    snprintf(path, sizeof path, "%s/targets", group);
    if (rn_plot_read_vector(p, path, in.n, 1, &targets, err))
        goto done;
    const int n_eps = de[0], n = in.n, k = dp[2];
    if (dp[0] != n_eps || dp[1] != n || dc[0] != n || dc[1] != k) {
        rn_errorf(err, "%s: %s/probs (%d,%d,%d) does not match %d epsilons x %d inputs", p->run_dir,
                  group, dp[0], dp[1], dp[2], n_eps, n);
        goto done;
    }
    rn_plot_safe_name(sname, sizeof sname, name);
    snprintf(figure, sizeof figure, "%s", sname);
    snprintf(file, sizeof file, "%s_probs.dat", figure);
    if (!(f = rn_plot_data_open(p, file, dpath, err)))
        goto done;
    fprintf(f, "# epsilon, then per input the probability of its attacked class "
               "(the target, or the true label when untargeted)\n");
    for (int e = 0; e < n_eps; e++) {
        fprintf(f, "%.6g", eps[e]);
        for (int i = 0; i < n; i++) {
            int c = targets[i] >= 0 ? targets[i] : in.labels[i];
            fprintf(f, " %.6g", probs[((size_t)e * n + i) * k + c]);
        }
        fputc('\n', f);
    }
    rc = rn_plot_data_close(f, dpath, err);
    f = NULL;
    if (rc)
        goto done;
    rc = -1;
    for (int i = 0; i < n; i++) {
        char cap[160], t[220];
        rn_plot_inputs_caption(&in, i, cap, sizeof cap);
        int c = targets[i] >= 0 ? targets[i] : in.labels[i];
        snprintf(t, sizeof t, "%s: P(%d), clean %.3f", cap, c, clean[(size_t)i * k + c]);
        snprintf(key, sizeof key, "cap%d", i);
        rn_sbuf_def_str(&defs, key, t);
    }
    char title[400], stem[RN_PLOT_PATH_MAX];
    int untargeted = targets[0] < 0;
    snprintf(title, sizeof title,
             "%s · %s PGD, %s steps, %s\neach step: gradient step, "
             "projection onto the ball, clamp to [0, 1]; dashed: 0.9",
             name, strcmp(norm, "l2") == 0 ? "L2" : "L-inf", steps,
             untargeted ? "untargeted (true-class probability)" : "targeted (target probability)");
    snprintf(stem, sizeof stem, "%s/%s", p->data_dir, figure);
    rn_sbuf_def_str(&defs, "stem", stem);
    rn_sbuf_def_str(&defs, "title", title);
    rn_sbuf_printf(&defs, "n=%d; ", n);
    if ((rc = rn_plot_draw(p, "attack.gp", figure, 900, 560, &defs, err)) == 0)
        rc = plot_images(p, group, figure, &in, eps, n_eps, probs, k, err);
done:
    if (f)
        fclose(f);
    rn_plot_inputs_free(&in);
    free(defs.s);
    free(eps);
    free(probs);
    free(clean);
    free(targets);
    free(norm);
    free(steps);
    return rc;
}
