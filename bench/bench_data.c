/* bench_data.c - time of loading and colouring all of MNIST (60,000 + 10,000
 * images) with the study's data config, and the detector's agreement with
 * the generator's colours on the easy set.
 *
 * usage: bench_data [MNIST_DIR]   (default data/mnist; exits 0 if absent)
 */
#include <omp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "runner/data.h"

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "data/mnist";
    char probe[600], probe_gz[600];
    struct stat st;
    snprintf(probe, sizeof probe, "%s/train-images-idx3-ubyte", dir);
    snprintf(probe_gz, sizeof probe_gz, "%s.gz", probe);
    if (stat(probe, &st) != 0 && stat(probe_gz, &st) != 0) {
        printf("bench_data: no MNIST in %s (run scripts/fetch-mnist.sh); skipped\n", dir);
        return 0;
    }

    struct rn_data_config cfg;
    memset(&cfg, 0, sizeof cfg);
    snprintf(cfg.source, sizeof cfg.source, "mnist");
    snprintf(cfg.dir, sizeof cfg.dir, "%s", dir);
    cfg.colouring = RN_COLOURING_BACKGROUND;
    cfg.noise_lo = 0.4f;
    cfg.noise_hi = 1.0f;
    cfg.threshold = 50;
    cfg.palette = rn_palette_study;
    cfg.bias = 0.95;
    cfg.test_rule = RN_RULE_CONFLICTING;
    cfg.val_fraction = 0.1;
    cfg.seed = 0;

    /* Reading alone, to separate I/O from colouring. */
    struct rn_error err;
    struct rn_data d;
    cfg.colouring = RN_COLOURING_NONE;
    double t0, t_read = 1e30;
    for (int rep = 0; rep < 2; rep++) {
        t0 = now_ms();
        if (rn_data_load(&cfg, &d, &err)) {
            fprintf(stderr, "bench_data: %s\n", err.msg);
            return 1;
        }
        double t = now_ms() - t0;
        if (t < t_read)
            t_read = t;
        rn_data_free(&d);
    }

    cfg.colouring = RN_COLOURING_BACKGROUND;
    double best = 1e30;
    const int reps = 3;
    for (int rep = 0; rep < reps; rep++) {
        t0 = now_ms();
        if (rn_data_load(&cfg, &d, &err)) {
            fprintf(stderr, "bench_data: %s\n", err.msg);
            return 1;
        }
        double t = now_ms() - t0;
        if (t < best)
            best = t;
        if (rep < reps - 1)
            rn_data_free(&d);
    }
    int n = 0;
    for (int s = 0; s < d.n_splits; s++)
        n += d.splits[s].n;
    printf("bench_data: %d threads, %d images: load+colour %.1f ms (best of %d), read only %.1f "
           "ms, colouring ~%.1f ms, %.0f images/s\n",
           omp_get_max_threads(), n, best, reps, t_read, best - t_read, n / (best * 1e-3));

    long agree = 0, total = 0;
    for (int s = 0; s < 2; s++) {
        struct rn_split *sp = &d.splits[s];
        size_t sz = (size_t)sp->c * sp->h * sp->w;
        for (int i = 0; i < sp->n; i++) {
            agree += rn_colour_detect(sp->images + i * sz, sp->h, sp->w, &cfg.palette, 0.7f) ==
                     sp->colours[i];
            total++;
        }
    }
    int same = 0;
    for (int s = 0; s < 2; s++)
        for (int i = 0; i < d.splits[s].n; i++)
            same += d.splits[s].colours[i] == d.splits[s].labels[i];
    printf("bench_data: detector agrees with the generator on %ld of %ld easy images (%.3f%%); "
           "label colour share %.4f\n",
           agree, total, 100.0 * agree / total, same / (double)total);
    rn_data_free(&d);
    return 0;
}
