/* bench_sae.c - the study's sparse autoencoder recipe (SPEC.md "Sparse
 * autoencoder (Task 6)"): 512 features, ReLU, L1 1e-3, Adam 1e-3, batch 256,
 * unit-norm decoder columns after every step, on 54,000 x 128 inputs, timed
 * on the runner's side (rn_sae_train_from); bench/torch_sae.py times the
 * PyTorch twin of the same recipe on the very same data and initial weights
 * (bench/run_sae.sh runs both).
 *
 * The data: --features FILE:DATASET, an (n, d) float32 dataset of an HDF5
 * file (e.g. the GAP features a run stored), or else synthetic rows with
 * the rough statistics of post-ReLU GAP features: non-negative, a mean of
 * about 1.6 per dimension, correlated through 16 non-negative latent
 * factors, ~7% exact zeros:
 *   x_ij = max(0, base_j + sum_k L_jk z_k + 0.2 e_ij - 0.3),
 *   base_j ~ U(0, 1), L_jk ~ U(0, 0.5), z_k = max(0, N(0, 1)), e_ij ~ N(0, 1),
 * drawn from (seed 1, stream 0x5ae, item row) (rng.h).
 *
 * --out FILE gets what the PyTorch side needs: /x (n, d), /init/{w_enc,
 * b_enc, w_dec, b_dec} (rn_sae_init with seed 0), attributes epochs, batch,
 * l1, lr, and /runner/{fve, l0, loss} per epoch.
 *
 * --openblas-threads: the alternative threading, for comparison: one OpenMP
 * thread (the element-wise passes serial) and OpenBLAS's own N threads in
 * each product, instead of single-threaded sgemm calls split over N OpenMP
 * threads (sae.h).
 *
 * usage: bench_sae [--threads N] [--epochs E] [--features FILE:DATASET] [--out FILE]
 *                  [--openblas-threads]
 * Prints each epoch's metrics and seconds, and one line
 *   RESULT side=runner seconds=... per_epoch_s=... fve=... l0=... dead=...
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/cpu/gemm.h"
#include "runner/results.h"
#include "runner/rng.h"
#include "runner/sae.h"

#define N_ROWS 54000
#define D_IN 128
#define LATENT 16

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

static float *synthetic(size_t n, int d)
{
    float *x = malloc(sizeof(float) * n * d);
    float base[D_IN], load[D_IN][LATENT];
    struct rn_rng r;
    rn_rng_init(&r, 1, 0x5ae, (uint64_t)-1);
    for (int j = 0; j < d; j++) {
        base[j] = rn_rng_uniform(&r);
        for (int k = 0; k < LATENT; k++)
            load[j][k] = 0.5f * rn_rng_uniform(&r);
    }
#pragma omp parallel for schedule(static)
    for (size_t b = 0; b < n; b++) {
        struct rn_rng rb;
        rn_rng_init(&rb, 1, 0x5ae, b);
        float z[LATENT];
        for (int k = 0; k < LATENT; k++) {
            float v = rn_rng_normal(&rb);
            z[k] = v > 0 ? v : 0;
        }
        for (int j = 0; j < d; j++) {
            float v = base[j] - 0.3f + 0.2f * rn_rng_normal(&rb);
            for (int k = 0; k < LATENT; k++)
                v += load[j][k] * z[k];
            x[b * d + j] = v > 0 ? v : 0;
        }
    }
    return x;
}

static float *read_features(const char *spec, size_t *n, int *d, struct rn_error *err)
{
    char path[1024];
    snprintf(path, sizeof path, "%s", spec);
    char *colon = strrchr(path, ':');
    if (!colon) {
        rn_errorf(err, "--features %s: expected FILE:DATASET", spec);
        return NULL;
    }
    *colon = '\0';
    struct rn_results *f;
    if (rn_results_open(&f, path, err))
        return NULL;
    void *data = NULL;
    int nd, dims[4];
    int rc = rn_results_read(f, colon + 1, RN_DTYPE_F32, &data, &nd, dims, err);
    rn_results_close(f);
    if (rc)
        return NULL;
    if (nd != 2) {
        free(data);
        rn_errorf(err, "%s: %d dimensions, expected (n, d)", spec, nd);
        return NULL;
    }
    *n = (size_t)dims[0];
    *d = dims[1];
    return data;
}

static int write_out(const char *path, const float *x, size_t n, int d, const struct rn_sae *s,
                     const struct rn_sae_config *cfg, const struct rn_sae_metrics *per_epoch,
                     struct rn_error *err)
{
    struct rn_results *f;
    if (rn_results_create(&f, path, err))
        return -1;
    int dx[2] = {(int)n, d}, dw[2] = {s->m, d}, dd[2] = {d, s->m}, dm[1] = {s->m}, d1[1] = {d};
    int de[1] = {cfg->epochs};
    double *v = malloc(sizeof(double) * 3 * (cfg->epochs > 0 ? cfg->epochs : 1));
    for (int e = 0; e < cfg->epochs; e++) {
        v[e] = per_epoch[e].fve;
        v[cfg->epochs + e] = per_epoch[e].l0;
        v[2 * cfg->epochs + e] = per_epoch[e].loss;
    }
    char buf[64];
    int rc = rn_results_write(f, "/x", RN_DTYPE_F32, x, 2, dx, err) ||
             rn_results_write(f, "/init/w_enc", RN_DTYPE_F32, s->w_enc, 2, dw, err) ||
             rn_results_write(f, "/init/b_enc", RN_DTYPE_F32, s->b_enc, 1, dm, err) ||
             rn_results_write(f, "/init/w_dec", RN_DTYPE_F32, s->w_dec, 2, dd, err) ||
             rn_results_write(f, "/init/b_dec", RN_DTYPE_F32, s->b_dec, 1, d1, err) ||
             rn_results_write(f, "/runner/fve", RN_DTYPE_F64, v, 1, de, err) ||
             rn_results_write(f, "/runner/l0", RN_DTYPE_F64, v + cfg->epochs, 1, de, err) ||
             rn_results_write(f, "/runner/loss", RN_DTYPE_F64, v + 2 * cfg->epochs, 1, de, err);
    const char *names[] = {"epochs", "batch", "l1", "lr"};
    double vals[] = {cfg->epochs, cfg->batch, cfg->l1, cfg->lr};
    for (int q = 0; q < 4 && !rc; q++) {
        snprintf(buf, sizeof buf, "%.9g", vals[q]);
        rc = rn_results_set_attr_str(f, "/", names[q], buf, err);
    }
    free(v);
    rn_results_close(f);
    return rc ? -1 : 0;
}

int main(int argc, char **argv)
{
    int threads = 2, epochs = 50, blas_threads = 0;
    const char *features = NULL, *out = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            threads = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--epochs") && i + 1 < argc) {
            epochs = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--features") && i + 1 < argc) {
            features = argv[++i];
        } else if (!strcmp(argv[i], "--openblas-threads")) {
            blas_threads = 1;
        } else if (!strcmp(argv[i], "--out") && i + 1 < argc) {
            out = argv[++i];
        } else {
            fprintf(stderr, "usage: bench_sae [--threads N] [--epochs E] "
                            "[--features FILE:DATASET] [--out FILE] [--openblas-threads]\n");
            return 2;
        }
    }
    omp_set_num_threads(threads);
    rn_gemm_cpu_setup();
    struct rn_error err = {{0}};
    size_t n = N_ROWS;
    int d = D_IN;
    float *x = features ? read_features(features, &n, &d, &err) : synthetic(n, d);
    if (!x) {
        fprintf(stderr, "bench_sae: %s\n", err.msg);
        return 1;
    }
    if (blas_threads) { /* the training alone, the data made */
        omp_set_num_threads(1);
        openblas_set_num_threads(threads);
    }
    struct rn_sae_config cfg = rn_sae_config_default();
    cfg.epochs = epochs;
    struct rn_sae s;
    struct rn_sae_metrics *per = calloc((size_t)(epochs > 0 ? epochs : 1), sizeof *per);
    if (rn_sae_alloc(&s, d, cfg.m, cfg.act, cfg.k, &err) || rn_sae_init(&s, &cfg, x, n, &err)) {
        fprintf(stderr, "bench_sae: %s\n", err.msg);
        return 1;
    }
    struct rn_sae init;
    rn_sae_alloc(&init, d, cfg.m, cfg.act, cfg.k, &err);
    memcpy(init.w_enc, s.w_enc, sizeof(float) * d * cfg.m);
    memcpy(init.w_dec, s.w_dec, sizeof(float) * d * cfg.m);
    memcpy(init.b_enc, s.b_enc, sizeof(float) * cfg.m);
    memcpy(init.b_dec, s.b_dec, sizeof(float) * d);
    printf("bench_sae: %zu x %d (%s) -> %d features, relu, l1 %g, Adam %g, batch %d, %d epochs, "
           "%d threads (%s)\n",
           n, d, features ? features : "synthetic", cfg.m, cfg.l1, cfg.lr, cfg.batch, epochs,
           threads, blas_threads ? "OpenBLAS's" : "OpenMP, single-threaded sgemm");
    double t0 = now_s();
    if (rn_sae_train_from(&s, &cfg, x, n, d, per, NULL, &err)) {
        fprintf(stderr, "bench_sae: %s\n", err.msg);
        return 1;
    }
    double secs = now_s() - t0;
    for (int e = 0; e < epochs; e++)
        if (e < 3 || e == epochs - 1)
            printf("  epoch %2d: loss %.6f mse %.3e fve %.6f l0 %.1f dead %.3f dense %.3f\n", e + 1,
                   per[e].loss, per[e].mse, per[e].fve, per[e].l0, per[e].dead_frac,
                   per[e].dense_frac);
    const struct rn_sae_metrics *last = &per[epochs > 0 ? epochs - 1 : 0];
    printf("RESULT side=runner seconds=%.3f per_epoch_s=%.4f fve=%.6f l0=%.2f dead=%.4f\n", secs,
           epochs > 0 ? secs / epochs : 0, last->fve, last->l0, last->dead_frac);
    int rc = 0;
    if (out && write_out(out, x, n, d, &init, &cfg, per, &err)) {
        fprintf(stderr, "bench_sae: %s\n", err.msg);
        rc = 1;
    }
    rn_sae_free(&s);
    rn_sae_free(&init);
    free(per);
    free(x);
    return rc;
}
