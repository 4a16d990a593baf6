/* bench_saliency.c - cost of the saliency loss (Task 4, M2) against a plain
 * training step, on the study's model (SimpleGAPCNN, batch 64), side by side
 * with PyTorch's double backprop (bench/torch_saliency_step.py).
 *
 * Steps timed (no optimizer update on either side: it is the same in both):
 *   plain     forward (training mode) + mean CE backward
 *   saliency  forward + rn_saliency_loss (backward with dx, tangent forward,
 *             tangent backward) + mean CE backward
 *   fused     forward + rn_saliency_loss_ce (the CE term's gradient comes
 *             out of the saliency's own backward: one backward fewer)
 * Median of --repeats steps after warm-up. Inputs are synthetic Colored
 * MNIST-like images (white strokes on a textured coloured background; the
 * timing does not depend on the pixels beyond relu sparsity), labels random.
 *
 * usage: bench_saliency [--threads N] [--repeats K] [--spec FILE] [--no-torch]
 * Prints a table and one line
 *   RESULT plain_ms=... saliency_ms=... fused_ms=... ratio=... fused_ratio=... torch_ratio=...
 * Unless --no-torch, runs /usr/bin/python3 bench/torch_saliency_step.py with
 * the same thread count afterwards and prints both ratios side by side.
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runner/loss.h"
#include "runner/saliency.h"
#include "runner/train.h"

#define BATCH 64
#define MAX_REPEATS 200

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void images(struct rn_graph *g, uint8_t *labels, int n)
{
    struct rn_rng r;
    rn_rng_init(&r, 1, 77, 0);
    const int H = g->in_shape.h, W = g->in_shape.w, HW = H * W;
    g->x.n = n;
    for (int i = 0; i < n; i++) {
        labels[i] = (uint8_t)(rn_rng_uniform(&r) * 10) % 10;
        float col[3];
        for (int c = 0; c < 3; c++)
            col[c] = rn_rng_uniform(&r);
        int row = H / 4 + (int)(rn_rng_uniform(&r) * H / 2),
            column = W / 4 + (int)(rn_rng_uniform(&r) * W / 2);
        for (int p = 0; p < HW; p++) {
            int y = p / W, x = p % W;
            int stroke = (abs(y - row) < 2 && x > 4 && x < W - 4) ||
                         (abs(x - column) < 2 && y > 4 && y < H - 4);
            float noise = 0.4f + 0.6f * rn_rng_uniform(&r);
            for (int c = 0; c < 3; c++)
                g->x.data[((size_t)i * 3 + c) * HW + p] = stroke ? 1.0f : col[c] * noise * 0.9f;
        }
    }
}

enum { PLAIN, SALIENCY, FUSED, N_KINDS };
static const char *kind_name[N_KINDS] = {"plain", "saliency", "fused"};

static int step(struct rn_graph *g, int kind, const uint8_t *y, struct rn_ctx *ctx,
                struct rn_error *err)
{
    const int n = BATCH, last = g->n_nodes - 1;
    const struct rn_saliency cfg = {RN_SALIENCY_L1, RN_SALIENCY_MEAN_BACKGROUND, 0.95f};
    double v, ce;
    ctx->step++; /* a fresh dropout mask each step, as in training */
    rn_graph_zero_grad(g, NULL);
    if (rn_graph_forward(g, n, -1, ctx, err))
        return -1;
    if (kind == FUSED)
        return rn_saliency_loss_ce(g, n, last, y, &cfg, 0.5f, 1.0f, ctx, &v, &ce, err);
    if (kind == SALIENCY && rn_saliency_loss(g, n, last, y, &cfg, 0.5f, ctx, &v, err))
        return -1;
    rn_graph_zero_dy(g, n, NULL);
    rn_cross_entropy(&g->nodes[last].y, y, 1.0f, &g->nodes[last].dy, NULL, NULL);
    return rn_graph_backward(g, n, last, 0, ctx, err);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_saliency [--threads N] [--repeats K] [--spec FILE] [--no-torch]\n");
}

int main(int argc, char **argv)
{
    int threads = 2, repeats = 30, torch = 1;
    const char *spec_path = RN_SOURCE_DIR "/experiments/task1_lazy.yaml";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--repeats") && i + 1 < argc)
            repeats = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--spec") && i + 1 < argc)
            spec_path = argv[++i];
        else if (!strcmp(argv[i], "--no-torch"))
            torch = 0;
        else {
            usage();
            return 2;
        }
    }
    if (threads < 1 || repeats < 1 || repeats > MAX_REPEATS) {
        usage();
        return 2;
    }
    omp_set_num_threads(threads);

    struct rn_error err = {{0}};
    struct rn_spec spec;
    memset(&spec, 0, sizeof spec);
    int n_errors = 0;
    if (rn_spec_load(&spec, spec_path, NULL, stderr, &n_errors, &err)) {
        if (n_errors == 0)
            fprintf(stderr, "bench_saliency: %s\n", err.msg);
        rn_spec_free(&spec);
        return 1;
    }
    if (!spec.has_model) {
        fprintf(stderr, "bench_saliency: %s has no model\n", spec_path);
        rn_spec_free(&spec);
        return 1;
    }
    struct rn_graph g;
    struct rn_shape in = {3, 28, 28};
    if (rn_graph_build(&g, &spec.model, in, BATCH, &err)) {
        fprintf(stderr, "bench_saliency: %s\n", err.msg);
        rn_spec_free(&spec);
        return 1;
    }
    rn_graph_init_params(&g, 1);
    uint8_t labels[BATCH];
    images(&g, labels, BATCH);
    struct rn_ctx ctx = {.train = 1, .seed = 1};

    double med[N_KINDS];
    static double t[N_KINDS][MAX_REPEATS];
    int rc = 1;
    for (int w = 0; w < 3; w++) /* warm-up: allocations, page faults, thread team */
        for (int k = 0; k < N_KINDS; k++)
            if (step(&g, k, labels, &ctx, &err))
                goto fail;
    /* interleaved, so a change in machine load hits every kind alike */
    for (int r = 0; r < repeats; r++)
        for (int k = 0; k < N_KINDS; k++) {
            double t0 = now_ms();
            if (step(&g, k, labels, &ctx, &err))
                goto fail;
            t[k][r] = now_ms() - t0;
        }
    printf("SimpleGAPCNN (%s), batch %d, %d threads, median of %d steps\n", spec.model.name, BATCH,
           threads, repeats);
    printf("%-10s %10s %10s\n", "step", "ms", "x plain");
    for (int k = 0; k < N_KINDS; k++) {
        qsort(t[k], (size_t)repeats, sizeof(double), cmp_double);
        med[k] = t[k][repeats / 2];
        printf("%-10s %10.2f %9.2fx\n", kind_name[k], med[k], med[k] / med[PLAIN]);
    }

    double torch_ratio = 0;
    if (torch) {
        char cmd[1024];
        snprintf(cmd, sizeof cmd,
                 "/usr/bin/python3 %s/bench/torch_saliency_step.py --threads %d --repeats %d",
                 RN_SOURCE_DIR, threads, repeats);
        fflush(stdout);
        FILE *p = popen(cmd, "r");
        char line[512];
        while (p && fgets(line, sizeof line, p)) {
            fputs(line, stdout);
            const char *r = strstr(line, "ratio=");
            if (!strncmp(line, "RESULT", 6) && r)
                torch_ratio = atof(r + 6);
        }
        if (!p || pclose(p) != 0 || torch_ratio == 0)
            fprintf(stderr, "bench_saliency: the PyTorch side did not report (%s)\n", cmd);
        /* PyTorch's double backprop backpropagates CE and the penalty in one
         * pass, so its counterpart is the fused step. */
        printf("\n%-40s %10s %10s\n", "saliency step / plain step", "runner", "PyTorch");
        printf("%-40s %9.2fx %9.2fx\n", "CE in the saliency's backward (fused)",
               med[FUSED] / med[PLAIN], torch_ratio);
        printf("%-40s %9.2fx\n", "CE backward separately", med[SALIENCY] / med[PLAIN]);
    }
    printf("RESULT plain_ms=%.3f saliency_ms=%.3f fused_ms=%.3f ratio=%.3f fused_ratio=%.3f "
           "torch_ratio=%.3f\n",
           med[PLAIN], med[SALIENCY], med[FUSED], med[SALIENCY] / med[PLAIN],
           med[FUSED] / med[PLAIN], torch_ratio);
    rc = 0;
    goto out;
fail:
    fprintf(stderr, "bench_saliency: %s\n", err.msg);
out:
    rn_graph_free(&g);
    rn_spec_free(&spec);
    return rc;
}
