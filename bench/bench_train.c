/* bench_train.c - training and evaluation speed of the runner on the study's
 * main job (SimpleGAPCNN on Colored MNIST), to set beside PyTorch
 * (bench/torch_simple_gap_cnn.py; bench/run.sh runs both).
 *
 * Measures (a) one training epoch through rn_run_train (its wall time is the
 * train/epoch_seconds metric, which excludes the evaluation and checkpoint
 * that follow the epoch) and (b) evaluation throughput: forward-only batches
 * of 256 over the test split, repeated, median. FLOP counts are derived from
 * the built graph's layer shapes, not assumed, and printed per layer so the
 * reader can check them.
 *
 * usage: bench_train [--threads N] [--repeats K] [--profile STEPS] [--spec FILE] [key=value ...]
 *   key=value are spec overrides (train.epochs=1, data.train_limit=5000, ...).
 *   --profile STEPS (default 30; 0 = off): afterwards, time every layer's
 *   forward and backward over STEPS training steps and STEPS/3 eval batches.
 * Prints an aligned table and one line
 *   RESULT train_ips=... eval_ips=... peak_rss_mib=...
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "runner/backend.h"
#include "runner/loss.h"
#include "runner/train.h"

#define MAX_OVERRIDES 32
#define MAX_REPEATS 64

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Multiply-adds of one sample through a node's conv2d or linear (0 for the
 * other types: their elementwise and pooling work is < 1% here and is not
 * what the comparison is about). Weight numel covers groups and bias-free
 * layers alike; each weight is used once per output position. */
static double node_macs(const struct rn_node *nd)
{
    const struct rn_layer *l = &nd->layer;
    const char *t = l->type->name;
    if (strcmp(t, "conv2d") != 0 && strcmp(t, "linear") != 0)
        return 0;
    const struct rn_param *w = NULL;
    for (int j = 0; j < l->n_params; j++)
        if (strcmp(l->params[j].name, "weight") == 0)
            w = &l->params[j];
    if (!w)
        return 0;
    double positions = strcmp(t, "conv2d") == 0 ? (double)l->out.h * l->out.w : 1.0;
    return (double)rn_tensor_numel(&w->value) * positions;
}

/* A node whose every input is the graph input gets no dx in training
 * (rn_run_train backpropagates with want_dx = 0), so its backward is dW only. */
static int reads_only_input(const struct rn_node *nd)
{
    for (int i = 0; i < nd->n_in; i++)
        if (nd->in[i] >= 0)
            return 0;
    return 1;
}

/* FLOP per image: forward, and one training step (forward + dW + dx). */
static void count_flops(const struct rn_graph *g, int last, int print, double *fwd, double *train)
{
    *fwd = *train = 0;
    if (print)
        printf("%-10s %-8s %12s %12s %14s\n", "node", "type", "fwd MFLOP", "dW MFLOP", "dx MFLOP");
    for (int i = 0; i <= last; i++) {
        const struct rn_node *nd = &g->nodes[i];
        double f = 2 * node_macs(nd);
        if (f == 0)
            continue;
        double dx = reads_only_input(nd) ? 0 : f;
        *fwd += f;
        *train += f + f + dx;
        if (print)
            printf("%-10s %-8s %12.3f %12.3f %14.3f%s\n", nd->layer.name, nd->layer.type->name,
                   f / 1e6, f / 1e6, dx / 1e6, dx == 0 ? "  (reads the image: no dx)" : "");
    }
}

/* ---- per-layer breakdown ------------------------------------------------
 * The graph's own loops (rn_graph_forward/backward), node by node, with a
 * clock around each layer call, so a slow run says which layer to look at.
 * Steps of the optimizer and the loss are timed as whole phases. */

#define PHASES 6
enum { PH_LOAD, PH_LOSS, PH_ZERO, PH_OPTIM, PH_FWD_EVAL, PH_LOAD_EVAL };

struct layer_times {
    double fwd[RN_MAX_LAYERS * 4], bwd[RN_MAX_LAYERS * 4], fwd_eval[RN_MAX_LAYERS * 4];
    double phase[PHASES];
};

static const struct rn_tensor *node_in(struct rn_graph *g, int src)
{
    return src < 0 ? &g->x : &g->nodes[src].y;
}

static int timed_forward(struct rn_graph *g, int n, int last, struct rn_ctx *ctx, double *t,
                         struct rn_error *err)
{
    g->x.n = n;
    for (int i = 0; i <= last; i++) {
        struct rn_node *nd = &g->nodes[i];
        const struct rn_tensor *xs[RN_MAX_INPUTS];
        for (int j = 0; j < nd->n_in; j++)
            xs[j] = node_in(g, nd->in[j]);
        nd->y.n = n;
        ctx->node = i;
        double t0 = now_s();
        if (nd->layer.type->forward(&nd->layer, xs, &nd->y, ctx, err))
            return -1;
        t[i] += now_s() - t0;
    }
    return 0;
}

/* Training steps and eval batches, as rn_run_train and rn_run_evaluate do
 * them; the model keeps training (the bench is done with it). */
static int layer_profile(struct rn_run *run, int steps, int eval_batches, struct layer_times *lt,
                         struct rn_error *err)
{
    struct rn_graph *g = &run->graph;
    const struct rn_spec *spec = run->spec;
    struct rn_split *train = rn_data_split(&run->data, "train");
    struct rn_split *test = rn_data_split(&run->data, "test");
    const int last = run->logits_node, bs = spec->train.batch;
    int eb = spec->train.eval_batch > 0 ? spec->train.eval_batch : 256;
    if (eb > g->max_n)
        eb = g->max_n;
    if (last >= RN_MAX_LAYERS * 4)
        return rn_errorf(err, "%d nodes is more than the profile's table holds", last + 1);
    memset(lt, 0, sizeof *lt);
    int idx[g->max_n];
    uint8_t labels[g->max_n];
    for (int s = 0; s < steps; s++) {
        int n = bs < train->n ? bs : train->n;
        for (int i = 0; i < n; i++)
            idx[i] = (s * bs + i) % train->n;
        double t0 = now_s();
        rn_run_load_batch(run, train, idx, n, NULL);
        for (int i = 0; i < n; i++)
            labels[i] = train->labels[idx[i]];
        lt->phase[PH_LOAD] += now_s() - t0;
        struct rn_ctx ctx = {.train = 1, .seed = spec->seed, .step = run->step};
        if (timed_forward(g, n, last, &ctx, lt->fwd, err))
            return -1;
        t0 = now_s();
        rn_graph_zero_dy(g, n, NULL);
        rn_graph_zero_grad(g, NULL);
        lt->phase[PH_ZERO] += now_s() - t0;
        t0 = now_s();
        rn_cross_entropy(&g->nodes[last].y, labels, 1.0f, &g->nodes[last].dy, NULL, NULL);
        lt->phase[PH_LOSS] += now_s() - t0;
        for (int i = last; i >= 0; i--) {
            struct rn_node *nd = &g->nodes[i];
            const struct rn_tensor *xs[RN_MAX_INPUTS];
            struct rn_tensor *dxs[RN_MAX_INPUTS];
            for (int j = 0; j < nd->n_in; j++) {
                xs[j] = node_in(g, nd->in[j]);
                dxs[j] = nd->in[j] >= 0 ? &g->nodes[nd->in[j]].dy : NULL;
            }
            ctx.node = i;
            t0 = now_s();
            if (nd->layer.type->backward(&nd->layer, xs, &nd->y, &nd->dy, dxs, &ctx, err))
                return -1;
            lt->bwd[i] += now_s() - t0;
        }
        t0 = now_s();
        rn_optim_step(&run->program.opts[0].optim, NULL); /* the default program: one optimizer */
        lt->phase[PH_OPTIM] += now_s() - t0;
        run->step++;
    }
    for (int b = 0; b < eval_batches; b++) {
        int start = (b * eb) % test->n, n = test->n - start < eb ? test->n - start : eb;
        for (int i = 0; i < n; i++)
            idx[i] = start + i;
        double t0 = now_s();
        rn_run_load_batch(run, test, idx, n, NULL);
        lt->phase[PH_LOAD_EVAL] += now_s() - t0;
        struct rn_ctx ctx = {.train = 0, .seed = spec->seed, .step = run->step};
        t0 = now_s();
        if (timed_forward(g, n, last, &ctx, lt->fwd_eval, err))
            return -1;
        lt->phase[PH_FWD_EVAL] += now_s() - t0;
    }
    return 0;
}

static void print_profile(const struct rn_graph *g, int last, int steps, int eval_batches, int bs,
                          int eb, const struct layer_times *lt)
{
    double total = 0, total_eval = 0;
    for (int i = 0; i <= last; i++) {
        total += lt->fwd[i] + lt->bwd[i];
        total_eval += lt->fwd_eval[i];
    }
    for (int p = PH_LOAD; p <= PH_OPTIM; p++)
        total += lt->phase[p];
    total_eval += lt->phase[PH_LOAD_EVAL];
    printf("\nper-layer time, ms per batch (training: %d steps of %d; eval: %d batches of %d)\n",
           steps, bs, eval_batches, eb);
    printf("%-12s %-16s %9s %9s %7s %10s %7s %9s\n", "node", "type", "train fwd", "train bwd",
           "share", "eval fwd", "share", "GFLOP/s");
    for (int i = 0; i <= last; i++) {
        const struct rn_node *nd = &g->nodes[i];
        double f = lt->fwd[i] / steps * 1e3, b = lt->bwd[i] / steps * 1e3;
        double e = eval_batches ? lt->fwd_eval[i] / eval_batches * 1e3 : 0;
        double flop = 2 * node_macs(nd);
        double step_flop = (2 * flop + (reads_only_input(nd) ? 0 : flop)) * bs;
        char gf[32] = "";
        if (flop > 0)
            snprintf(gf, sizeof gf, "%.1f", step_flop / ((f + b) * 1e-3) / 1e9);
        printf("%-12s %-16s %9.2f %9.2f %6.1f%% %10.2f %6.1f%% %9s\n", nd->layer.name,
               nd->layer.type->name, f, b, 100 * (lt->fwd[i] + lt->bwd[i]) / total, e,
               total_eval > 0 ? 100 * lt->fwd_eval[i] / total_eval : 0, gf);
    }
    static const char *names[] = {"(load batch)", "(cross-entropy)", "(zero dy/grad)",
                                  "(adam step)"};
    for (int p = PH_LOAD; p <= PH_OPTIM; p++)
        printf("%-29s %9.2f %9s %6.1f%%\n", names[p], lt->phase[p] / steps * 1e3, "",
               100 * lt->phase[p] / total);
    printf("%-29s %9.2f ms/step = %.0f images/s    eval %.2f ms/batch = %.0f images/s\n", "total",
           total / steps * 1e3, steps * bs / total, total_eval / eval_batches * 1e3,
           eval_batches * eb / total_eval);
}

/* User + system CPU seconds of this process so far. */
static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec * 1e-6;
}

static double peak_rss_mib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0; /* Linux: KiB */
}

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_train [--threads N] [--repeats K] [--profile STEPS] [--spec FILE] "
            "[--device cpu|cuda] [key=value ...]\n");
}

int main(int argc, char **argv)
{
    const char *spec_path = "experiments/task1_lazy.yaml";
    const char *device_name = "cpu";
    int threads = 2, repeats = 5, profile_steps = 30;
    const char *overrides[MAX_OVERRIDES + 1];
    int n_over = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            threads = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--repeats") == 0 && i + 1 < argc) {
            repeats = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--profile") == 0 && i + 1 < argc) {
            profile_steps = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--spec") == 0 && i + 1 < argc) {
            spec_path = argv[++i];
        } else if (strcmp(argv[i], "--device") == 0 && i + 1 < argc) {
            device_name = argv[++i];
        } else if (strchr(argv[i], '=') && argv[i][0] != '-' && n_over < MAX_OVERRIDES) {
            overrides[n_over++] = argv[i];
        } else {
            usage();
            return 2;
        }
    }
    overrides[n_over] = NULL;
    if (threads < 1 || repeats < 1 || repeats > MAX_REPEATS) {
        usage();
        return 2;
    }
    /* The kernels thread with OpenMP and keep OpenBLAS single-threaded
     * (kernels/cpu/gemm.h), so the OpenMP count is the thread count. */
    omp_set_num_threads(threads);

    struct rn_error err = {{0}};
    struct rn_spec spec;
    memset(&spec, 0, sizeof spec);
    int n_errors = 0;
    if (rn_spec_load(&spec, spec_path, overrides, stderr, &n_errors, &err)) {
        if (n_errors == 0) /* otherwise the loader has printed them all */
            fprintf(stderr, "bench_train: %s\n", err.msg);
        rn_spec_free(&spec);
        return 1;
    }
    if (!spec.has_model || !spec.has_train) {
        fprintf(stderr, "bench_train: %s has no model or no train section\n", spec_path);
        rn_spec_free(&spec);
        return 1;
    }

    /* The run file goes to a private temp dir that is removed at the end:
     * the bench measures, it does not keep results. */
    char dir[] = "/tmp/bench_train.XXXXXX";
    if (!mkdtemp(dir)) {
        perror("bench_train: mkdtemp");
        rn_spec_free(&spec);
        return 1;
    }
    struct rn_run_options opt = {.out_dir = dir, .quiet = 1, .log = stderr};
    if (strcmp(device_name, "cuda") == 0) {
        if (rn_cuda_probe(opt.device_desc, sizeof opt.device_desc, &err)) {
            printf("bench_train: skipped: no CUDA device (%s)\n", err.msg);
            rn_spec_free(&spec);
            rmdir(dir);
            return 0;
        }
        opt.device = RN_DEVICE_CUDA;
        profile_steps = 0; /* the profile times the CPU layer functions */
    } else if (strcmp(device_name, "cpu") != 0) {
        usage();
        rn_spec_free(&spec);
        rmdir(dir);
        return 2;
    }
    struct rn_run run;
    double t_open = now_s();
    int rc = 1;
    if (rn_run_open(&run, &spec, &opt, &err)) {
        fprintf(stderr, "bench_train: %s\n", err.msg);
        rn_run_close(&run, "failed");
        goto out;
    }
    t_open = now_s() - t_open;

    struct rn_graph *g = &run.graph;
    struct rn_split *train = rn_data_split(&run.data, "train");
    struct rn_split *test = rn_data_split(&run.data, "test");
    if (!train || !test || test->n == 0) {
        fprintf(stderr, "bench_train: the spec gives no train or test split\n");
        rn_run_close(&run, "failed");
        goto out;
    }
    printf("bench_train: %s (model %s), %s, %d thread%s, %d train / %d test images, setup %.2f s\n",
           spec.name, spec.model.name, opt.device ? opt.device_desc : "cpu", threads,
           threads == 1 ? "" : "s", train->n, test->n, t_open);
    printf("FLOP = 2 x multiply-adds of conv2d and linear, per image:\n");
    double fwd_flop, train_flop;
    count_flops(g, run.logits_node, 1, &fwd_flop, &train_flop);
    const int epochs = spec.train.epochs;
    const double n_train_images = (double)train->n * epochs;
    printf("forward %.2f MFLOP/image; training step %.2f MFLOP/image; %d epoch%s x %d images = "
           "%.3f TFLOP\n\n",
           fwd_flop / 1e6, train_flop / 1e6, epochs, epochs == 1 ? "" : "s", train->n,
           train_flop * n_train_images / 1e12);

    /* (a) training */
    double t0 = now_s(), c0 = cpu_seconds();
    if (rn_run_train(&run, &err)) {
        fprintf(stderr, "bench_train: %s\n", err.msg);
        rn_run_close(&run, "failed");
        goto out;
    }
    double t_train_total = now_s() - t0;
    /* Below `threads` means the cores were shared with other processes
     * (OpenMP threads spin while they wait, so an unshared run sits at the
     * thread count). */
    double cores_used = (cpu_seconds() - c0) / t_train_total;
    double *xs = NULL, *secs = NULL;
    int n_rows = 0;
    double t_epochs = 0;
    double n_timed = n_train_images;
    if (rn_results_read_metric(run.results, "train/epoch_seconds", &xs, &secs, &n_rows, &err) ==
            0 &&
        n_rows > 0) {
        for (int i = 0; i < n_rows; i++)
            t_epochs += secs[i];
        if (opt.device && n_rows > 1) {
            /* on a GPU the first epoch pays cuDNN's algorithm search: the
             * fastest later epoch is the steady state */
            t_epochs = secs[1];
            for (int i = 2; i < n_rows; i++)
                t_epochs = secs[i] < t_epochs ? secs[i] : t_epochs;
            n_timed = train->n;
            printf("epoch seconds:");
            for (int i = 0; i < n_rows; i++)
                printf(" %.3f", secs[i]);
            printf(" (steady state: the fastest after the first)\n");
        }
    } else {
        /* Without the metric, the whole call (epochs + evaluation) is an
         * upper bound; say so rather than silently mixing the two. */
        fprintf(stderr, "bench_train: no train/epoch_seconds metric (%s); timing the whole call\n",
                err.msg);
        t_epochs = t_train_total;
    }
    free(xs);
    free(secs);
    double train_ips = n_timed / t_epochs;

    /* (b) evaluation: forward only, eval mode, including the uint8 -> float
     * batch load that every runner evaluation pays. */
    int bs = spec.train.eval_batch > 0 ? spec.train.eval_batch : 256;
    if (bs > g->max_n)
        bs = g->max_n;
    struct rn_ctx ctx = {.train = 0, .seed = spec.seed, .step = run.step};
    double eval_s[MAX_REPEATS];
    for (int rep = -1; rep < repeats; rep++) { /* rep -1 warms caches and pages */
        double e0 = now_s();
        for (int start = 0; start < test->n; start += bs) {
            int n = test->n - start < bs ? test->n - start : bs;
            int idx[n];
            for (int i = 0; i < n; i++)
                idx[i] = start + i;
            rn_run_load_batch(&run, test, idx, n, NULL);
            if (rn_graph_infer(g, n, &run.logits_node, 1, &ctx, &err)) {
                fprintf(stderr, "bench_train: %s\n", err.msg);
                rn_run_close(&run, "failed");
                goto out;
            }
        }
        if (rn_backend_of(g->device)->sync(&err)) { /* a device runs asynchronously */
            fprintf(stderr, "bench_train: %s\n", err.msg);
            rn_run_close(&run, "failed");
            goto out;
        }
        if (rep >= 0)
            eval_s[rep] = now_s() - e0;
    }
    qsort(eval_s, (size_t)repeats, sizeof eval_s[0], cmp_double);
    double eval_med =
        repeats % 2 ? eval_s[repeats / 2] : 0.5 * (eval_s[repeats / 2 - 1] + eval_s[repeats / 2]);
    double eval_ips = test->n / eval_med;

    printf("%-34s %8s %9s %10s %9s\n", "work", "images", "seconds", "images/s", "GFLOP/s");
    printf("%-34s %8.0f %9.2f %10.0f %9.1f\n", "train epoch (batch 64)", n_timed, t_epochs,
           train_ips, train_ips * train_flop / 1e9);
    printf("%-34s %8d %9.3f %10.0f %9.1f   (median of %d, min %.3f s, max %.3f s)\n",
           "eval forward (batch 256)", test->n, eval_med, eval_ips, eval_ips * fwd_flop / 1e9,
           repeats, eval_s[0], eval_s[repeats - 1]);
    printf("rn_run_train total %.2f s (epochs + per-epoch evaluation of %d split%s + checkpoint), "
           "%.2f cores busy\n",
           t_train_total, spec.train.n_eval, spec.train.n_eval == 1 ? "" : "s", cores_used);
    for (int i = 0; i < run.n_last; i++)
        printf("  after training: %-5s accuracy %6.2f%%  loss %.4f  (%d images)\n",
               run.last[i].split, 100 * run.last[i].accuracy, run.last[i].loss, run.last[i].n);
    /* the work's peak, before the profile (which keeps every node's output at
     * the evaluation batch to time the layers one by one) */
    double rss = peak_rss_mib();
    if (profile_steps > 0) {
        /* static: the table is large for the stack and one is enough */
        static struct layer_times lt;
        int eval_batches = profile_steps / 3 > 0 ? profile_steps / 3 : 1;
        if (layer_profile(&run, profile_steps, eval_batches, &lt, &err)) {
            fprintf(stderr, "bench_train: profile: %s\n", err.msg);
            rn_run_close(&run, "failed");
            goto out;
        }
        print_profile(g, run.logits_node, profile_steps, eval_batches, spec.train.batch, bs, &lt);
    }
    printf("peak RSS %.1f MiB (training and evaluation)\n", rss);
    printf("RESULT train_ips=%.1f eval_ips=%.1f peak_rss_mib=%.1f train_mflop_per_image=%.2f "
           "eval_mflop_per_image=%.2f\n",
           train_ips, eval_ips, rss, train_flop / 1e6, fwd_flop / 1e6);
    rn_run_close(&run, "completed");
    rc = 0;
out:;
    char path[sizeof dir + 16];
    snprintf(path, sizeof path, "%s/run.h5", dir);
    unlink(path);
    rmdir(dir);
    rn_spec_free(&spec);
    return rc;
}
