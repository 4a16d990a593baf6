/* bench/bench_conv.c - times the CPU conv kernels on the three convs of
 * simple_gap_cnn: training (batch 64, forward + backward) and evaluation
 * (batch 256, forward). Prints the median over repeats in ms and GFLOP/s
 * and the projected conv time of one epoch (843 steps of 64).
 *
 * FLOPs per pass: 2 * N * Cout * Hout * Wout * Cin * k * k. Backward is two
 * passes (data + filter) except for conv1, which needs no data gradient in
 * training. Each layer's forward is first checked against a direct
 * convolution at sampled output positions.
 *
 * "best" is GFLOP/s of the fastest repeat: on a shared machine the gap to the
 * median shows how much other load disturbed the run.
 *
 * Usage: bench_conv [repeats]   (OMP_NUM_THREADS sets the threads)
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/cpu/conv2d.h"
#include "runner/rng.h"

#define TRAIN_N 64
#define EVAL_N 256
#define STEPS_PER_EPOCH 843 /* ceil(54000 / 64) */
/* PyTorch 1.13 (oneDNN) on this machine, from the task brief: 21 s per
 * training epoch of simple_gap_cnn (~118 GFLOP/s over the whole step) and
 * ~65 GFLOP/s for batch-256 evaluation. */
#define TORCH_STEP_GFLOPS 118.0
#define TORCH_EVAL_GFLOPS 65.0

struct conv_case {
    const char *name;
    int cin, hw, cout, need_dx;
};

static const struct conv_case cases[] = {
    {"conv1 3->32 28x28", 3, 28, 32, 0},
    {"conv2 32->64 14x14", 32, 14, 64, 1},
    {"conv3 64->128 7x7", 64, 7, 128, 1},
};
#define N_CASES (int)(sizeof cases / sizeof cases[0])

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Sorts v; the caller then reads the best as v[0]. */
static double median(double *v, int n)
{
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void print_row(const char *layer, const char *pass, double med_s, double best_s,
                      double gflop)
{
    printf("%-20s %-14s %9.3f %9.1f %9.1f\n", layer, pass, med_s * 1e3, gflop / med_s,
           gflop / best_s);
}

static float *rand_floats(size_t n, struct rn_rng *r)
{
    float *p = aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64);
    if (!p) {
        fprintf(stderr, "bench_conv: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++)
        p[i] = 2.0f * rn_rng_uniform(r) - 1.0f;
    return p;
}

/* Largest relative error of y at sampled positions against a direct conv. */
static double check_forward(const struct rn_conv2d_cpu_geom *g, const float *x, const float *w,
                            const float *b, const float *y, struct rn_rng *r)
{
    double worst = 0.0;
    for (int s = 0; s < 300; s++) {
        int n = rn_rng_below(r, g->n), co = rn_rng_below(r, g->cout);
        int oh = rn_rng_below(r, g->hout), ow = rn_rng_below(r, g->wout);
        double acc = b[co], mag = fabs(b[co]);
        for (int ci = 0; ci < g->cin; ci++)
            for (int kh = 0; kh < g->k; kh++)
                for (int kw = 0; kw < g->k; kw++) {
                    int ih = oh * g->stride - g->pad + kh, iw = ow * g->stride - g->pad + kw;
                    if (ih < 0 || ih >= g->h || iw < 0 || iw >= g->w)
                        continue;
                    double t = (double)w[((co * g->cin + ci) * g->k + kh) * g->k + kw] *
                               x[(((size_t)n * g->cin + ci) * g->h + ih) * g->w + iw];
                    acc += t;
                    mag += fabs(t);
                }
        double got = y[(((size_t)n * g->cout + co) * g->hout + oh) * g->wout + ow];
        worst = fmax(worst, fabs(got - acc) / fmax(mag, 1e-30));
    }
    return worst;
}

int main(int argc, char **argv)
{
    int reps = argc > 1 ? atoi(argv[1]) : 15;
    if (reps < 1)
        reps = 1;
    struct rn_error err = {{0}};
    struct rn_rng r;
    rn_rng_init(&r, 1, 1, 0);
    printf("bench_conv: %d OpenMP threads, median of %d repeats\n", omp_get_max_threads(), reps);
    printf("%-20s %-14s %9s %9s %9s\n", "layer", "pass", "ms", "GFLOP/s", "best");
    double step_ms = 0.0, step_gflop = 0.0, eval_ms = 0.0, eval_gflop = 0.0;
    int ok = 1;
    double *t = malloc(reps * sizeof *t);
    for (int c = 0; c < N_CASES; c++) {
        const struct conv_case *cc = &cases[c];
        struct rn_conv2d_cpu_geom g;
        struct rn_conv2d_cpu_ws ws;
        if (rn_conv2d_cpu_geom_init(&g, cc->cin, cc->hw, cc->hw, cc->cout, 3, 1, 1, &err) ||
            rn_conv2d_cpu_ws_init(&ws, &g, 0, &err)) {
            fprintf(stderr, "bench_conv: %s\n", err.msg);
            return 1;
        }
        const size_t x_img = (size_t)g.cin * g.h * g.w, y_img = (size_t)g.cout * g.hout * g.wout;
        const size_t nw = (size_t)g.cout * g.cin * 9;
        float *x = rand_floats(EVAL_N * x_img, &r), *y = rand_floats(EVAL_N * y_img, &r);
        float *dy = rand_floats(TRAIN_N * y_img, &r), *dx = rand_floats(TRAIN_N * x_img, &r);
        float *w = rand_floats(nw, &r), *b = rand_floats(g.cout, &r);
        float *dw = rand_floats(nw, &r), *db = rand_floats(g.cout, &r);
        const double pass_gflop = 2.0 * g.cout * g.hout * g.wout * g.cin * 9 * 1e-9;

        g.n = TRAIN_N;
        ws.keep_input = 1; /* as the layer in training: the backward follows */
        (void)rn_conv2d_forward_cpu(&g, x, w, b, y, &ws, &err);
        double e = check_forward(&g, x, w, b, y, &r);
        if (e > 1e-5) {
            fprintf(stderr, "bench_conv: %s forward differs from a direct conv (%g)\n", cc->name,
                    e);
            ok = 0;
        }
        for (int i = 0; i < reps; i++) {
            double t0 = now();
            (void)rn_conv2d_forward_cpu(&g, x, w, b, y, &ws, &err);
            t[i] = now() - t0;
        }
        if (c == 0)
            printf("kernel: %s (RN_CPU_CONV=ref|onednn, RN_ONEDNN_FORMAT=plain|any)\n",
                   rn_conv2d_cpu_impl_name(&ws));
        double fwd = median(t, reps), gf = pass_gflop * TRAIN_N;
        print_row(cc->name, "fwd N=64", fwd, t[0], gf);
        step_ms += fwd * 1e3;
        step_gflop += gf;

        for (int i = 0; i < reps; i++) {
            double t0 = now();
            (void)rn_conv2d_backward_cpu(&g, x, w, dy, cc->need_dx ? dx : NULL, dw, db, &ws, &err);
            t[i] = now() - t0;
        }
        double bwd = median(t, reps);
        gf = pass_gflop * TRAIN_N * (cc->need_dx ? 2 : 1);
        print_row(cc->name, cc->need_dx ? "bwd data+filt" : "bwd filter", bwd, t[0], gf);
        step_ms += bwd * 1e3;
        step_gflop += gf;

        g.n = EVAL_N;
        ws.keep_input = 0;
        int ereps = reps > 3 ? reps / 2 + 1 : reps;
        for (int i = 0; i < ereps; i++) {
            double t0 = now();
            (void)rn_conv2d_forward_cpu(&g, x, w, b, y, &ws, &err);
            t[i] = now() - t0;
        }
        double ev = median(t, ereps);
        gf = pass_gflop * EVAL_N;
        print_row(cc->name, "fwd N=256", ev, t[0], gf);
        eval_ms += ev * 1e3;
        eval_gflop += gf;

        free(x), free(y), free(dy), free(dx), free(w), free(b), free(dw), free(db);
        rn_conv2d_cpu_ws_free(&ws);
    }
    free(t);
    printf("train step (3 convs fwd+bwd, N=64): %.3f ms, %.2f GFLOP, %.1f GFLOP/s "
           "(PyTorch whole step ~%.0f)\n",
           step_ms, step_gflop, step_gflop / step_ms * 1e3, TORCH_STEP_GFLOPS);
    printf("projected conv time per epoch (%d steps): %.2f s (PyTorch whole epoch ~21 s)\n",
           STEPS_PER_EPOCH, step_ms * STEPS_PER_EPOCH * 1e-3);
    printf("eval forward (3 convs, N=256): %.3f ms, %.1f GFLOP/s (PyTorch ~%.0f)\n", eval_ms,
           eval_gflop / eval_ms * 1e3, TORCH_EVAL_GFLOPS);
    return ok ? 0 : 1;
}
