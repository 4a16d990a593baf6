/* bench_attack.c - the study's epsilon sweep (SPEC.md "Adversarial
 * (Task 5)"): targeted L-inf PGD, target 3, 15 epsilons, 200 iterations,
 * step eps/10, on one image, for the lazy model and the M4 model (its digit
 * logits `fc`), timed on the runner's side; bench/torch_attack.py times the
 * PyTorch twin on the very same image and weights (bench/run_attack.sh runs
 * both).
 *
 * The image is task5_pgd.yaml's case "7 yellow test": the first 7 of the
 * MNIST test set, its strokes (> data.threshold) white on a yellow textured
 * background drawn from (seed, RN_STREAM_ANALYSIS, index), as
 * analyses/inputs.c makes it. The models come from the run files' /models/main
 * (results/task1_lazy/latest, results/task4_m4/latest); a missing run file
 * gives a seeded random init instead, said in the output (the timing does not
 * depend on the weights).
 *
 * Timed per model, in this order (each after a short warm-up):
 *   batched   rn_attack_pgd with all 15 epsilons in one call: one forward
 *             and backward of a batch of 15 per iteration
 *   per_eps   the same sweep one epsilon per call (batch 1), as the study ran
 *             it, for reference
 * --out FILE gets what the PyTorch side needs and checks against (an HDF5
 * file): /image (3, 28, 28) float32 as attacked, /eps, /models/<model>/ (the
 * weights used, in PyTorch's layout), /<model>/probs_batched and
 * /<model>/probs_per_eps (15, 10) after the last step, /<model>/clean_probs,
 * with attributes steps, step_rel, target, source_index, and per model
 * logits, weights ("run FILE" or "random init seed S"), batched_s, per_eps_s.
 *
 * usage: bench_attack [--threads N] [--steps K] [--out FILE]
 *                     [--lazy-run PATH] [--m4-run PATH]
 * Prints per model P(target) at each epsilon and one line
 *   RESULT model=NAME batched_s=... per_eps_s=... weights=run|random
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "runner/checkpoint.h"
#include "runner/data.h"
#include "runner/pgd.h"
#include "runner/results.h"
#include "runner/spec.h"

/* ---- the study's sweep ------------------------------------------------------ */

#define N_EPS 15
#define TARGET 3
#define SOURCE_DIGIT 7
#define STEP_REL 0.1f
#define CLASSES 10

/* experiments/task5_pgd.yaml's eps list */
static const float study_eps[N_EPS] = {0,     0.005f, 0.01f, 0.015f, 0.02f, 0.025f, 0.03f, 0.04f,
                                       0.05f, 0.075f, 0.1f,  0.15f,  0.2f,  0.3f,   0.5f};

struct bench_model {
    const char *name;   /* "lazy", "m4": the group in --out */
    const char *spec;   /* experiment whose model: it is */
    const char *run;    /* run.h5 or run directory with /models/main */
    const char *logits; /* the node attacked */
};

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

static int load_spec(struct rn_spec *spec, const char *path, struct rn_error *err)
{
    int n_errors = 0;
    memset(spec, 0, sizeof *spec);
    if (rn_spec_load(spec, path, NULL, stderr, &n_errors, err))
        return n_errors ? rn_errorf(err, "%s: %d errors (above)", path, n_errors) : -1;
    if (!spec->has_model)
        return rn_errorf(err, "%s has no model", path);
    return 0;
}

/* ---- the image -------------------------------------------------------------- */

/* An IDX file of data.dir (relative to the working directory, else to the
 * source tree), raw or .gz. */
static int read_idx(const char *dir, const char *name, struct rn_idx *out, struct rn_error *err)
{
    char path[RN_PATH_MAX + 64];
    const char *roots[2] = {"", RN_SOURCE_DIR "/"};
    for (int r = 0; r < 2; r++)
        for (int gz = 0; gz < 2; gz++) {
            snprintf(path, sizeof path, "%s%s/%s%s", dir[0] == '/' ? "" : roots[r], dir, name,
                     gz ? ".gz" : "");
            if (access(path, R_OK) == 0)
                return rn_idx_read(path, out, err);
        }
    return rn_errorf(err, "no %s(.gz) in %s (nor under %s)", name, dir, RN_SOURCE_DIR);
}

/* Case "7 yellow test" as analyses/inputs.c makes it: the first test 7,
 * strokes white, the background yellow with its texture from the stream
 * (spec seed, RN_STREAM_ANALYSIS, index). */
static int make_image(const struct rn_spec *spec, uint8_t *img, int *index, struct rn_error *err)
{
    const struct rn_data_config *dc = &spec->data;
    struct rn_idx im, lab;
    if (read_idx(dc->dir, "t10k-images-idx3-ubyte", &im, err))
        return -1;
    if (read_idx(dc->dir, "t10k-labels-idx1-ubyte", &lab, err)) {
        rn_idx_free(&im);
        return -1;
    }
    int rc = -1, yellow = rn_palette_index(&dc->palette, "yellow");
    *index = -1;
    for (int i = 0; i < lab.dims[0] && *index < 0; i++)
        if (lab.data[i] == SOURCE_DIGIT)
            *index = i;
    if (im.ndim != 3 || im.dims[1] != 28 || im.dims[2] != 28 || *index < 0 || yellow < 0) {
        rn_errorf(err, "%s: no 28x28 test %d, or no yellow in the palette", dc->dir, SOURCE_DIGIT);
        goto done;
    }
    uint8_t grey[28 * 28];
    for (int p = 0; p < 28 * 28; p++)
        grey[p] = im.data[(size_t)*index * 28 * 28 + p] > dc->threshold ? 255 : 0;
    struct rn_rng r;
    rn_rng_init(&r, spec->seed, RN_STREAM_ANALYSIS, (uint64_t)*index);
    rn_colourise(grey, 28, 28, dc->palette.rgb[yellow], RN_COLOURING_BACKGROUND, dc->noise_lo,
                 dc->noise_hi, dc->threshold, &r, img);
    rc = 0;
done:
    rn_idx_free(&im);
    rn_idx_free(&lab);
    return rc;
}

/* ---- one model -------------------------------------------------------------- */

static int write_f32(struct rn_results *out, const char *model, const char *name, const float *v,
                     int nd, const int *dims, struct rn_error *err)
{
    char path[128];
    snprintf(path, sizeof path, "/%s/%s", model, name);
    return rn_results_write(out, path, RN_DTYPE_F32, v, nd, dims, err);
}

static int set_attr(struct rn_results *out, const char *model, const char *name, const char *value,
                    struct rn_error *err)
{
    char path[128];
    snprintf(path, sizeof path, "/%s", model);
    return rn_results_set_attr_str(out, path, name, value, err);
}

/* The model's graph (batch N_EPS) with the run's weights, or a seeded
 * random init when the run file is missing; *weights says which. */
static int build_model(const struct bench_model *m, struct rn_spec *spec, struct rn_graph *g,
                       char *weights, size_t wn, struct rn_error *err)
{
    if (load_spec(spec, m->spec, err))
        return -1;
    struct rn_shape in = {3, 28, 28};
    if (rn_graph_build(g, &spec->model, in, N_EPS, err))
        return -1;
    char h5[RN_PATH_MAX + 16];
    snprintf(h5, sizeof h5, "%s", m->run);
    if (access(h5, R_OK) == 0 && strstr(h5, ".h5") == NULL)
        snprintf(h5, sizeof h5, "%s/run.h5", m->run);
    if (access(h5, R_OK) != 0) {
        rn_graph_init_params(g, spec->seed);
        snprintf(weights, wn, "random init seed %llu (no %s)", (unsigned long long)spec->seed, h5);
        return 0;
    }
    snprintf(weights, wn, "run %s", h5);
    return rn_checkpoint_load(g, h5, "main", err);
}

static int bench_model(const struct bench_model *m, const float *src, int steps,
                       struct rn_results *out, struct rn_error *err)
{
    struct rn_spec spec;
    struct rn_graph g;
    memset(&g, 0, sizeof g);
    char weights[RN_PATH_MAX + 64];
    int rc = -1;
    if (build_model(m, &spec, &g, weights, sizeof weights, err))
        goto done;
    const int logits = rn_graph_find(&g, m->logits);
    if (logits < 0 || g.nodes[logits].layer.out.c != CLASSES) {
        rn_errorf(err, "%s: no node '%s' with %d outputs", m->spec, m->logits, CLASSES);
        goto done;
    }
    const int label = SOURCE_DIGIT, target = TARGET;
    const size_t per = 3 * 28 * 28;
    static float adv[N_EPS * 3 * 28 * 28];
    float clean[CLASSES], pb[N_EPS * CLASSES], pe[N_EPS * CLASSES];
    struct rn_attack_cfg cfg = {.steps = steps, .step_rel = STEP_REL, .restarts = 1};
    struct rn_attack_cfg none = {.steps = 0, .restarts = 1}, warm = cfg;
    warm.steps = steps < 3 ? steps : 3;
    const float zero = 0;
    /* the clean pass, and a warm-up of both shapes (buffers, thread team) */
    if (rn_attack_pgd(&g, logits, &none, &zero, 1, src, 1, &label, &target, adv, clean, err) ||
        rn_attack_pgd(&g, logits, &warm, study_eps, N_EPS, src, 1, &label, &target, adv, pb, err) ||
        rn_attack_pgd(&g, logits, &warm, study_eps + N_EPS - 1, 1, src, 1, &label, &target, adv, pe,
                      err))
        goto done;

    double t0 = now_s();
    if (rn_attack_pgd(&g, logits, &cfg, study_eps, N_EPS, src, 1, &label, &target, adv, pb, err))
        goto done;
    double t_batched = now_s() - t0;
    static float adv1[3 * 28 * 28];
    t0 = now_s();
    for (int e = 0; e < N_EPS; e++)
        if (rn_attack_pgd(&g, logits, &cfg, study_eps + e, 1, src, 1, &label, &target, adv1,
                          pe + (size_t)e * CLASSES, err))
            goto done;
    double t_per_eps = now_s() - t0;

    double viol = rn_attack_max_violation(0, study_eps, N_EPS, src, adv, 1, per), dmax = 0;
    printf("== %s: %s, %d iterations, %d threads\n", m->name, weights, steps,
           omp_get_max_threads());
    printf("   %s, logits '%s'; P(%d) clean %.4f; largest violation of the ball or [0, 1] %g\n",
           spec.model.name, m->logits, target, clean[target], viol);
    printf("   %-8s %14s %14s\n", "eps", "P(3) batched", "P(3) per eps");
    for (int e = 0; e < N_EPS; e++) {
        float a = pb[e * CLASSES + target], b = pe[e * CLASSES + target];
        double d = a > b ? a - b : b - a;
        dmax = d > dmax ? d : dmax;
        printf("   %-8g %14.6f %14.6f\n", study_eps[e], a, b);
    }
    printf("   batched %.3f s, per epsilon %.3f s (%.2fx); largest |P(3) batched - per eps| "
           "%.2e\n",
           t_batched, t_per_eps, t_per_eps / t_batched, dmax);
    printf("RESULT model=%s batched_s=%.4f per_eps_s=%.4f weights=%s\n", m->name, t_batched,
           t_per_eps, strncmp(weights, "run", 3) ? "random" : "run");

    if (out) {
        char buf[64];
        int dp[2] = {N_EPS, CLASSES}, dc[1] = {CLASSES}, da[4] = {N_EPS, 3, 28, 28};
        if (rn_checkpoint_save(&g, out, m->name, spec.model.name, 0, err) ||
            write_f32(out, m->name, "clean_probs", clean, 1, dc, err) ||
            write_f32(out, m->name, "probs_batched", pb, 2, dp, err) ||
            write_f32(out, m->name, "probs_per_eps", pe, 2, dp, err) ||
            write_f32(out, m->name, "adv_batched", adv, 4, da, err) ||
            set_attr(out, m->name, "logits", m->logits, err) ||
            set_attr(out, m->name, "weights", weights, err))
            goto done;
        snprintf(buf, sizeof buf, "%.6f", t_batched);
        if (set_attr(out, m->name, "batched_s", buf, err))
            goto done;
        snprintf(buf, sizeof buf, "%.6f", t_per_eps);
        if (set_attr(out, m->name, "per_eps_s", buf, err))
            goto done;
    }
    rc = 0;
done:
    rn_graph_free(&g);
    rn_spec_free(&spec);
    return rc;
}

/* ---- main ------------------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr, "usage: bench_attack [--threads N] [--steps K] [--out FILE] "
                    "[--lazy-run PATH] [--m4-run PATH]\n");
}

int main(int argc, char **argv)
{
    int threads = 2, steps = 200;
    const char *out_path = NULL;
    struct bench_model models[2] = {
        {"lazy", RN_SOURCE_DIR "/experiments/task5_pgd.yaml",
         RN_SOURCE_DIR "/results/task1_lazy/latest", "fc"},
        {"m4", RN_SOURCE_DIR "/experiments/task4_m4.yaml", RN_SOURCE_DIR "/results/task4_m4/latest",
         "fc"},
    };
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc)
            steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--out") && i + 1 < argc)
            out_path = argv[++i];
        else if (!strcmp(argv[i], "--lazy-run") && i + 1 < argc)
            models[0].run = argv[++i];
        else if (!strcmp(argv[i], "--m4-run") && i + 1 < argc)
            models[1].run = argv[++i];
        else {
            usage();
            return 2;
        }
    }
    if (threads < 1 || steps < 1) {
        usage();
        return 2;
    }
    omp_set_num_threads(threads);

    struct rn_error err = {{0}};
    struct rn_spec spec;
    struct rn_results *out = NULL;
    uint8_t img[3 * 28 * 28];
    static float src[3 * 28 * 28];
    int index, rc = 1;
    /* the image of task5_pgd.yaml's case, from its data config and seed */
    if (load_spec(&spec, models[0].spec, &err) || make_image(&spec, img, &index, &err))
        goto fail;
    for (int q = 0; q < 3 * 28 * 28; q++)
        src[q] = img[q] * (1.0f / 255.0f);
    printf("image: MNIST test %d (a %d), background yellow (seed %llu), as task5_pgd.yaml's "
           "case \"7 yellow test\"; target %d; %d epsilons, step eps * %g\n",
           index, SOURCE_DIGIT, (unsigned long long)spec.seed, TARGET, N_EPS, (double)STEP_REL);
    if (out_path) {
        char buf[32];
        int d3[3] = {3, 28, 28}, d1[1] = {N_EPS};
        if (rn_results_create(&out, out_path, &err) ||
            rn_results_write(out, "/image", RN_DTYPE_F32, src, 3, d3, &err) ||
            rn_results_write(out, "/image_u8", RN_DTYPE_U8, img, 3, d3, &err) ||
            rn_results_write(out, "/eps", RN_DTYPE_F32, study_eps, 1, d1, &err))
            goto fail;
        snprintf(buf, sizeof buf, "%d", steps);
        if (rn_results_set_attr_str(out, "/", "steps", buf, &err))
            goto fail;
        snprintf(buf, sizeof buf, "%.9g", (double)STEP_REL);
        if (rn_results_set_attr_str(out, "/", "step_rel", buf, &err))
            goto fail;
        snprintf(buf, sizeof buf, "%d", TARGET);
        if (rn_results_set_attr_str(out, "/", "target", buf, &err))
            goto fail;
        snprintf(buf, sizeof buf, "%d", index);
        if (rn_results_set_attr_str(out, "/", "source_index", buf, &err))
            goto fail;
    }
    for (int m = 0; m < 2; m++) {
        fflush(stdout);
        if (bench_model(&models[m], src, steps, out, &err))
            goto fail;
    }
    rc = 0;
    goto end;
fail:
    fprintf(stderr, "bench_attack: %s\n", err.msg);
end:
    rn_results_close(out);
    rn_spec_free(&spec);
    return rc;
}
