/* The attack analysis (runner/analyses/attack.c, attack_plot.c) through the
 * runner, with the interpretability fixture's model (the arithmetic:
 * test_pgd.c):
 *  - validate refuses a target that is the true label of a case, at the
 *    key, and epsilons that do not increase;
 *  - end to end: the datasets and their shapes, the sanity checks (robust
 *    accuracy at epsilon 0 = clean accuracy, no violation, perturbation =
 *    adversarial - source, minimum epsilons inside the sweep's bracket) and
 *    the figures;
 *  - a model loaded from another run gives, side by side, what that run's
 *    own attack gave;
 *  - models[].if_missing runs the experiment that makes a missing model.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runner/analysis.h"
#include "runner/graph.h"
#include "runner/results.h"
#include "runner/spec.h"
#include "sh.h"

static char dir[64];

static void make_dir(void)
{
    snprintf(dir, sizeof dir, "/tmp/rn_attack_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void remove_dir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_expect_eq(system(cmd), 0);
}

TestSuite(attack, .init = make_dir, .fini = remove_dir, .timeout = 180);

static void put(const char *name, const char *text, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    fputs(text, f);
    fclose(f);
}

#define HEAD                                                                                       \
    "name: x\n"                                                                                    \
    "data: {dir: " RN_FIXTURES "/mnist, colouring: background}\n"                                  \
    "model: {include: " RN_FIXTURES "/interp_model.yaml}\n"                                        \
    "load: {run: " RN_FIXTURES "/interp_ref.h5}\n"                                                 \
    "analyses:\n"

/* On the 2-class linear model with every source pixel at 0.5, a targeted
 * attack at class 1 (z1 - z0 = -w . x) ends, once the steps add up to eps,
 * at x = 0.5 - eps sign(w): P(1) = sigmoid(eps |w|_1 - 0.5 sum(w)) reaches
 * 0.9 at eps* = (ln 9 + 0.5 sum(w)) / |w|_1. Untargeted away from label 0,
 * the top class turns at eps* = 0.5 sum(w) / |w|_1. */
Test(attack, a_target_equal_to_a_case_label_is_refused_at_validate)
{
    char path[256], out[4096], want[1024];
    put("x.yaml", HEAD "  - {type: attack, cases: \"1 red; 3 yellow test\", target: 3}\n", path,
        sizeof path);
    snprintf(want, sizeof want,
             "%s:6:59: error: analysis 'attack' (attack): target 3 is the true label of case 2 "
             "('3 yellow test -1'): a targeted attack needs another class\n",
             path);
    int rc = sh(out, sizeof out, "%s validate %s 2>&1", RN_RUNNER_BIN, path);
    cr_expect_eq(rc, 1, "%s", out);
    cr_expect_str_eq(out, want);
    put("y.yaml", HEAD "  - {type: attack, eps: \"0, 0.1, x\"}\n", path, sizeof path);
    snprintf(want, sizeof want,
             "%s:6:25: error: analysis 'attack' (attack): eps: expected numbers >= 0 "
             "separated by commas, got '0, 0.1, x'\n",
             path);
    rc = sh(out, sizeof out, "%s validate %s 2>&1", RN_RUNNER_BIN, path);
    cr_expect_eq(rc, 1, "%s", out);
    cr_expect_str_eq(out, want);
    put("z.yaml", HEAD "  - {type: attack, target: 10}\n", path, sizeof path);
    snprintf(want, sizeof want,
             "%s:6:28: error: analysis 'attack' (attack): target: expected a class 0-9, "
             "least_likely, random or none, got '10'\n",
             path);
    rc = sh(out, sizeof out, "%s validate %s 2>&1", RN_RUNNER_BIN, path);
    cr_expect_eq(rc, 1, "%s", out);
    cr_expect_str_eq(out, want);
}

static float *read_f32(struct rn_results *r, const char *path, int *nd, int dims[4])
{
    struct rn_error err = {0};
    float *v = NULL;
    cr_assert_eq(rn_results_read(r, path, RN_DTYPE_F32, (void **)&v, nd, dims, &err), 0, "%s",
                 err.msg);
    return v;
}

Test(attack, end_to_end_with_the_fixture_model)
{
    char path[256], out[8192], run_dir[320], h5[400];
    put("run.yaml",
        HEAD "  - {type: attack, name: untargeted, n: 3, eps: \"0, 0.02, 0.1\", steps: 5}\n"
             "  - {type: attack, name: to3, cases: \"7 yellow test\", target: 3, norm: l2,\n"
             "     eps: \"0, 0.5, 2\", steps: 4, random_start: true, restarts: 2}\n",
        path, sizeof path);
    snprintf(run_dir, sizeof run_dir, "%s/run", dir);
    int rc = sh(out, sizeof out, "%s %s --out %s --quiet --threads 2 2>&1", RN_RUNNER_BIN, path,
                run_dir);
    cr_assert_eq(rc, 0, "%s", out);
    snprintf(h5, sizeof h5, "%s/run.h5", run_dir);
    struct rn_results *r = NULL;
    struct rn_error err = {0};
    cr_assert_eq(rn_results_open(&r, h5, &err), 0, "%s", err.msg);
    const char *groups[2] = {"/analyses/untargeted", "/analyses/to3"};
    const int n_in[2] = {3, 1};
    for (int gi = 0; gi < 2; gi++) {
        char p[320];
        int nd, d[4];
        const int n = n_in[gi];
        snprintf(p, sizeof p, "%s/eps", groups[gi]);
        float *eps = read_f32(r, p, &nd, d);
        cr_expect(nd == 1 && d[0] == 3);
        /* one model (this run's): a leading axis of 1 */
        snprintf(p, sizeof p, "%s/adversarial", groups[gi]);
        float *adv = read_f32(r, p, &nd, d);
        cr_expect(nd == 4 && d[0] == 3 * n && d[1] == 3 && d[2] == 28 && d[3] == 28);
        snprintf(p, sizeof p, "%s/perturbation", groups[gi]);
        float *pert = read_f32(r, p, &nd, d);
        cr_expect(nd == 4 && d[0] == 3 * n && d[1] == 3 && d[2] == 28 && d[3] == 28);
        snprintf(p, sizeof p, "%s/probs", groups[gi]);
        float *probs = read_f32(r, p, &nd, d);
        cr_expect(nd == 4 && d[0] == 1 && d[1] == 3 && d[2] == n && d[3] == 10);
        snprintf(p, sizeof p, "%s/clean_probs", groups[gi]);
        float *clean = read_f32(r, p, &nd, d);
        cr_expect(nd == 3 && d[0] == 1 && d[1] == n && d[2] == 10);
        snprintf(p, sizeof p, "%s/delta_abs_mean", groups[gi]);
        float *dm = read_f32(r, p, &nd, d);
        cr_expect(nd == 4 && d[0] == 1 && d[1] == 3 && d[2] == n && d[3] == 3);
        snprintf(p, sizeof p, "%s/max_violation", groups[gi]);
        float *viol = read_f32(r, p, &nd, d);
        cr_expect(nd == 1 && d[0] == 1 && viol[0] == 0.0f, "largest violation %g", viol[0]);
        snprintf(p, sizeof p, "%s/robust_accuracy", groups[gi]);
        float *robust = read_f32(r, p, &nd, d);
        cr_expect(nd == 2 && d[0] == 1 && d[1] == 3);
        snprintf(p, sizeof p, "%s/clean_accuracy", groups[gi]);
        float *clean_acc = read_f32(r, p, &nd, d);
        /* the sanity check the issue asks for: at epsilon 0 the robust
         * accuracy is the clean accuracy */
        cr_expect_eq(robust[0], clean_acc[0]);
        snprintf(p, sizeof p, "%s/min_eps", groups[gi]);
        float *min_eps = read_f32(r, p, &nd, d);
        cr_expect(nd == 2 && d[0] == 1 && d[1] == n);
        uint8_t *img = NULL;
        snprintf(p, sizeof p, "%s/images", groups[gi]);
        cr_assert_eq(rn_results_read(r, p, RN_DTYPE_U8, (void **)&img, &nd, d, &err), 0, "%s",
                     err.msg);
        int32_t *succ = NULL;
        snprintf(p, sizeof p, "%s/success", groups[gi]);
        cr_assert_eq(rn_results_read(r, p, RN_DTYPE_I32, (void **)&succ, &nd, d, &err), 0, "%s",
                     err.msg);
        cr_expect(nd == 3 && d[0] == 1 && d[1] == 3 && d[2] == n);
        int32_t *reached = NULL;
        snprintf(p, sizeof p, "%s/reached", groups[gi]);
        cr_assert_eq(rn_results_read(r, p, RN_DTYPE_I32, (void **)&reached, &nd, d, &err), 0, "%s",
                     err.msg);
        /* each minimum epsilon lies in the sweep's bracket: after the last
         * epsilon that failed, at most the first that succeeded */
        for (int i = 0; i < n; i++) {
            int first = -1;
            for (int e = 0; e < 3 && first < 0; e++)
                first = reached[e * n + i] ? e : -1;
            if (first < 0)
                cr_expect(isinf(min_eps[i]), "input %d never reached, min eps %g", i, min_eps[i]);
            else if (first == 0)
                cr_expect_eq(min_eps[i], 0.0f);
            else
                cr_expect(min_eps[i] > eps[first - 1] && min_eps[i] <= eps[first],
                          "input %d: min eps %g outside (%g, %g]", i, min_eps[i], eps[first - 1],
                          eps[first]);
        }
        free(reached);
        for (int q = 0; q < 3 * n * 3 * 784; q++)
            cr_expect(fabsf(pert[q] - (adv[q] - img[q % (n * 3 * 784)] / 255.0f)) < 1e-6f,
                      "perturbation %d is not adversarial - source", q);
        /* epsilon 0: the sources themselves, the clean probabilities, no delta */
        for (int q = 0; q < n * 3 * 784; q++)
            cr_expect(adv[q] == img[q] * (1.0f / 255.0f), "eps 0 moved pixel %d", q);
        /* the same images in batches of another size: equal to float rounding */
        for (int q = 0; q < n * 10; q++)
            cr_expect(fabsf(probs[q] - clean[q]) < 1e-6f, "eps 0: p %g, clean %g", probs[q],
                      clean[q]);
        for (int q = 0; q < n * 3; q++)
            cr_expect_eq(dm[q], 0.0f);
        cr_expect_gt(dm[2 * n * 3], 0.0f, "the largest epsilon moved nothing");
        free(eps);
        free(adv);
        free(probs);
        free(clean);
        free(dm);
        free(viol);
        free(img);
        free(succ);
        free(pert);
        free(robust);
        free(clean_acc);
        free(min_eps);
    }
    rn_results_close(r);
    snprintf(path, sizeof path, "%s/plots/untargeted.png", run_dir);
    struct stat st;
    cr_expect_eq(stat(path, &st), 0, "no figure %s", path);
    snprintf(path, sizeof path, "%s/plots/to3.png", run_dir);
    cr_expect_eq(stat(path, &st), 0, "no figure %s", path);
    const char *figs[] = {"to3_images",  "to3_robust",        "to3_channels",
                          "to3_min_eps", "untargeted_images", "untargeted_robust"};
    for (size_t i = 0; i < sizeof figs / sizeof figs[0]; i++) {
        snprintf(path, sizeof path, "%s/plots/%s.png", run_dir, figs[i]);
        cr_expect_eq(stat(path, &st), 0, "no figure %s", path);
    }
}

/* A model loaded from another run gives, in its slot of a side-by-side
 * attack, exactly what that run's own attack gave. */
Test(attack, models_side_by_side_match_their_own_runs)
{
    char path[256], out[8192], ra[320], rb[320], h5[400];
#define ATTACK_ONE "eps: \"0, 0.05, 0.2\", steps: 4, n: 3, target: least_likely, bisect: 3"
    put("a.yaml",
        "name: a\n"
        "data: {dir: " RN_FIXTURES "/mnist, colouring: background}\n"
        "model: {include: " RN_FIXTURES "/interp_model.yaml}\n"
        "train: {epochs: 1}\n"
        "analyses:\n"
        "  - {type: attack, name: one, " ATTACK_ONE "}\n",
        path, sizeof path);
    snprintf(ra, sizeof ra, "%s/ra", dir);
    int rc = sh(out, sizeof out, "%s %s --out %s --quiet 2>&1", RN_RUNNER_BIN, path, ra);
    cr_assert_eq(rc, 0, "%s", out);
    char text[1024];
    snprintf(text, sizeof text,
             HEAD "  - {type: attack, name: two, " ATTACK_ONE ",\n"
                  "     models: [{name: own, run: self}, {name: other, run: %s}]}\n",
             ra);
    put("b.yaml", text, path, sizeof path);
    snprintf(rb, sizeof rb, "%s/rb", dir);
    rc = sh(out, sizeof out, "%s %s --out %s --quiet 2>&1", RN_RUNNER_BIN, path, rb);
    cr_assert_eq(rc, 0, "%s", out);
    struct rn_results *r = NULL, *q = NULL;
    struct rn_error err = {0};
    snprintf(h5, sizeof h5, "%s/run.h5", ra);
    cr_assert_eq(rn_results_open(&r, h5, &err), 0, "%s", err.msg);
    snprintf(h5, sizeof h5, "%s/run.h5", rb);
    cr_assert_eq(rn_results_open(&q, h5, &err), 0, "%s", err.msg);
    const char *names[] = {"probs", "clean_probs", "min_eps", "robust_accuracy", "adversarial"};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        char p1[128], p2[128];
        int nd1, nd2, d1[4], d2[4];
        snprintf(p1, sizeof p1, "/analyses/one/%s", names[k]);
        snprintf(p2, sizeof p2, "/analyses/two/%s", names[k]);
        float *one = read_f32(r, p1, &nd1, d1), *two = read_f32(q, p2, &nd2, d2);
        size_t size = 1;
        for (int j = 0; j < nd1; j++)
            size *= (size_t)d1[j];
        cr_expect(nd1 == nd2 && d2[0] == 2 * d1[0], "%s: not two models' worth", names[k]);
        if (strcmp(names[k], "adversarial") != 0)
            cr_expect(d1[0] == 1 && d2[0] == 2);
        cr_expect(memcmp(two + size, one, size * sizeof(float)) == 0,
                  "%s: the other run's slot differs from its own attack", names[k]);
        free(one);
        free(two);
    }
    char *models = NULL;
    cr_assert_eq(rn_results_get_attr_str(q, "/analyses/two", "models", &models, &err), 0, "%s",
                 err.msg);
    cr_expect_str_eq(models, "own;other");
    free(models);
    rn_results_close(r);
    rn_results_close(q);
#undef ATTACK_ONE
}

Test(attack, epsilons_must_increase_and_a_target_is_not_the_filtered_digit)
{
    char path[256], out[4096], want[1024];
    put("d.yaml", HEAD "  - {type: attack, split: test, digit: 3, target: 3}\n", path, sizeof path);
    snprintf(want, sizeof want,
             "%s:6:51: error: analysis 'attack' (attack): target 3 is the digit its inputs are "
             "filtered on (digit: 3): a targeted attack needs another class\n",
             path);
    int rc0 = sh(out, sizeof out, "%s validate %s 2>&1", RN_RUNNER_BIN, path);
    cr_expect_eq(rc0, 1, "%s", out);
    cr_expect_str_eq(out, want);
    put("e.yaml", HEAD "  - {type: attack, eps: \"0, 0.1, 0.05\"}\n", path, sizeof path);
    snprintf(want, sizeof want,
             "%s:6:25: error: analysis 'attack' (attack): eps: expected increasing values, got "
             "0.05 after 0.1\n",
             path);
    int rc = sh(out, sizeof out, "%s validate %s 2>&1", RN_RUNNER_BIN, path);
    cr_expect_eq(rc, 1, "%s", out);
    cr_expect_str_eq(out, want);
}

/* models[].if_missing: an experiment that makes the missing run, run first. */
Test(attack, a_missing_model_run_is_made_by_its_if_missing_experiment)
{
    char path[256], out[16384];
    put("maker.yaml",
        "name: maker\n"
        "data: {dir: " RN_FIXTURES "/mnist, colouring: background}\n"
        "model: {include: " RN_FIXTURES "/interp_model.yaml}\n"
        "train: {epochs: 1}\n",
        path, sizeof path);
    put("user.yaml",
        HEAD "  - {type: attack, name: two, eps: \"0, 0.05\", steps: 2, n: 2,\n"
             "     models: [{name: own, run: self},\n"
             "              {name: made, run: results/maker/latest, if_missing: maker.yaml}]}\n",
        path, sizeof path);
    int rc = sh(out, sizeof out, "cd %s && %s user.yaml --out u1 2>&1", dir, RN_RUNNER_BIN);
    cr_assert_eq(rc, 0, "%s", out);
    cr_expect(strstr(out, "model 'made' of analysis 'two': results/maker/latest does not exist: "
                          "running maker.yaml first (if_missing)") != NULL,
              "%s", out);
    char h5[400];
    snprintf(h5, sizeof h5, "%s/results/maker/latest/run.h5", dir);
    cr_expect_eq(access(h5, R_OK), 0, "the maker's run was not made");
    /* a second run finds it and makes nothing */
    rc = sh(out, sizeof out, "cd %s && %s user.yaml --out u2 --quiet 2>&1", dir, RN_RUNNER_BIN);
    cr_assert_eq(rc, 0, "%s", out);
    cr_expect_str_eq(out, "");
    /* an experiment that cannot be read is an error at the analysis */
    put("bad.yaml",
        HEAD "  - {type: attack, name: two, eps: \"0, 0.05\", steps: 2, n: 2,\n"
             "     models: [{name: made, run: results/none/latest, if_missing: nope.yaml}]}\n",
        path, sizeof path);
    rc = sh(out, sizeof out, "cd %s && %s bad.yaml --out u3 --quiet 2>&1", dir, RN_RUNNER_BIN);
    cr_expect_eq(rc, 1, "%s", out);
    cr_expect_str_eq(out, "bad.yaml:6:5: error: analysis 'two': model 'made': results/none/latest "
                          "does not exist and its if_missing experiment nope.yaml cannot be "
                          "read\n");
}
