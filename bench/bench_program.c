/* bench_program.c - what a step program costs: one training step of plain
 * SimpleGAPCNN (experiments/task1_lazy.yaml's model and default program)
 * against one step of Task 4's Method 3 (experiments/task4_m3.yaml: 5
 * adversary sub-steps on the colour head, then the main step), with the
 * backbone features computed once per batch (the runner's program) and
 * recomputed for every sub-step (program.recompute = 1, what a plain
 * re-run of the whole model per sub-step costs, as the study's PyTorch did).
 *
 * Random images (timing does not depend on pixel values), batch 64, best of
 * several interleaved rounds so that a busy machine hurts every
 * configuration alike. The epoch estimate is 844 steps (54,000 images).
 * bench/run_program.sh runs this and bench/torch_m3_step.py side by side.
 *
 * usage: bench_program [--threads N] [--steps S] [--rounds R]
 * Prints a table and: RESULT plain_ms=... m3_ms=... m3_recompute_ms=...
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runner/graph.h"
#include "runner/program.h"
#include "runner/rng.h"
#include "runner/spec.h"

#define BATCH 64
#define EPOCH_STEPS 844

struct config {
    const char *name;
    const char *file;
    int recompute;
    struct rn_spec *spec;
    struct rn_graph g;
    struct rn_program p;
    double best_ms;
    double fwd_per_step, bwd_per_step;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int setup(struct config *c, struct rn_error *err)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/experiments/%s", RN_SOURCE_DIR, c->file);
    const char *ov[] = {"train.batch=64", NULL};
    if (!(c->spec = calloc(1, sizeof *c->spec)))
        return rn_errorf(err, "out of memory");
    if (rn_spec_load(c->spec, path, ov, stderr, NULL, err))
        return -1;
    struct rn_shape in = {3, 28, 28};
    if (rn_graph_build(&c->g, &c->spec->model, in, BATCH, err))
        return -1;
    rn_graph_init_params(&c->g, 0);
    if (rn_program_init(&c->p, &c->spec->train, &c->g, 10,
                        (uint64_t)EPOCH_STEPS * (uint64_t)c->spec->train.epochs, err))
        return -1;
    c->p.recompute = c->recompute;
    c->best_ms = 1e30;
    return 0;
}

static void teardown(struct config *c)
{
    rn_program_free(&c->p);
    rn_graph_free(&c->g);
    if (c->spec)
        rn_spec_free(c->spec);
    free(c->spec);
}

/* steps training steps on fresh random batches; returns seconds. */
static double run(struct config *c, int steps, uint64_t *step, struct rn_error *err)
{
    uint8_t digit[BATCH], colour[BATCH];
    struct rn_rng r;
    double t = 0;
    long f0 = c->p.node_forwards, b0 = c->p.node_backwards;
    for (int s = 0; s < steps; s++) {
        rn_rng_init(&r, 1, 99, *step);
        c->g.x.n = BATCH;
        for (size_t i = 0; i < rn_tensor_numel(&c->g.x); i++)
            c->g.x.data[i] = rn_rng_uniform(&r);
        for (int i = 0; i < BATCH; i++) {
            digit[i] = (uint8_t)rn_rng_below(&r, 10);
            colour[i] = (uint8_t)rn_rng_below(&r, 10);
        }
        double t0 = now_s();
        if (rn_program_batch(&c->p, BATCH, digit, colour, *step, 0, err))
            return -1;
        t += now_s() - t0;
        ++*step;
    }
    c->fwd_per_step = (double)(c->p.node_forwards - f0) / steps;
    c->bwd_per_step = (double)(c->p.node_backwards - b0) / steps;
    return t;
}

int main(int argc, char **argv)
{
    int threads = 2, steps = 30, rounds = 3;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc)
            steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
            rounds = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_program [--threads N] [--steps S] [--rounds R]\n");
            return 2;
        }
    }
    if (threads < 1 || steps < 1 || rounds < 1) {
        fprintf(stderr, "bench_program: --threads, --steps and --rounds must be >= 1\n");
        return 2;
    }
    omp_set_num_threads(threads);
    struct config cfg[] = {
        {.name = "plain", .file = "task1_lazy.yaml"},
        {.name = "m3", .file = "task4_m3.yaml"},
        {.name = "m3_recompute", .file = "task4_m3.yaml", .recompute = 1},
    };
    const int n_cfg = (int)(sizeof cfg / sizeof cfg[0]);
    struct rn_error err;
    int rc = 1;
    uint64_t step[3] = {0};
    for (int k = 0; k < n_cfg; k++)
        if (setup(&cfg[k], &err)) {
            fprintf(stderr, "bench_program: %s: %s\n", cfg[k].name, err.msg);
            goto done;
        }
    for (int k = 0; k < n_cfg; k++) /* warm-up: page in buffers, settle OpenMP */
        if (run(&cfg[k], 3, &step[k], &err) < 0)
            goto fail;
    for (int r = 0; r < rounds; r++)
        for (int k = 0; k < n_cfg; k++) {
            double t = run(&cfg[k], steps, &step[k], &err);
            if (t < 0)
                goto fail;
            if (t / steps * 1e3 < cfg[k].best_ms)
                cfg[k].best_ms = t / steps * 1e3;
        }
    printf("runner, %d thread%s, batch %d, best of %d rounds of %d steps (load average at the "
           "end: ",
           threads, threads == 1 ? "" : "s", BATCH, rounds, steps);
    FILE *la = fopen("/proc/loadavg", "r");
    double load = 0;
    if (la && fscanf(la, "%lf", &load) == 1)
        printf("%.2f)\n", load);
    else
        printf("unknown)\n");
    if (la)
        fclose(la);
    printf("  %-13s %9s %8s %12s %14s %14s\n", "", "ms/step", "x plain", "epoch s", "node fwd/step",
           "node bwd/step");
    for (int k = 0; k < n_cfg; k++)
        printf("  %-13s %9.2f %7.2fx %12.1f %14.1f %14.1f\n", cfg[k].name, cfg[k].best_ms,
               cfg[k].best_ms / cfg[0].best_ms, cfg[k].best_ms * EPOCH_STEPS / 1e3,
               cfg[k].fwd_per_step, cfg[k].bwd_per_step);
    printf("  features computed once save %.0f%% of an M3 step (%.2fx faster)\n",
           100 * (1 - cfg[1].best_ms / cfg[2].best_ms), cfg[2].best_ms / cfg[1].best_ms);
    printf("RESULT plain_ms=%.3f m3_ms=%.3f m3_recompute_ms=%.3f\n", cfg[0].best_ms,
           cfg[1].best_ms, cfg[2].best_ms);
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "bench_program: %s\n", err.msg);
done:
    for (int k = 0; k < n_cfg; k++)
        teardown(&cfg[k]);
    return rc;
}
