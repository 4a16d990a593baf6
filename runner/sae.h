/* sae.h - sparse autoencoders on hidden states (Task 6): the arithmetic of
 * the sae analyses (analyses/sae*.c), on a (n, d) float matrix of
 * activations, on the CPU (OpenBLAS sgemm).
 *
 *   x~    = x - mu                 (mu: the data mean when centre, else 0)
 *   relu: c = ReLU(W_e (x~ - b_d) + b_e)
 *   topk: c = the k largest of ReLU(W_e (x~ - b_d) + b_e), the rest 0
 *   x^    = W_d c + b_d + mu
 *   loss  = mean over the batch of ( ||x - x^||^2 + l1 * sum_j w_j |c_j| ),
 *           w_j = ||W_d[:, j]|| when l1_decoder_norm, else 1 (topk: l1 may be 0)
 *
 * W_e is (m, d), W_d is (d, m) with unit-norm columns: after every Adam step
 * each column is renormalised, and before it the gradient's component along
 * the column is removed. b_d starts at the mean of x~ (0 when centred) or its
 * geometric median (Weiszfeld); W_d's columns start random unit vectors and
 * W_e = W_d^T. A feature is dead when it has not fired on any of the last
 * dead_window training samples; resampling (every resample_every steps)
 * re-initialises each dead feature from an input with a high loss (W_d column:
 * the normalised residual; W_e row: the same times 0.2 times the mean norm of
 * the alive rows; b_e 0) and zeroes its Adam moments.
 */
#ifndef RN_SAE_H
#define RN_SAE_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

enum rn_sae_act { RN_SAE_RELU, RN_SAE_TOPK };
enum rn_sae_bias_init { RN_SAE_BIAS_MEAN, RN_SAE_BIAS_MEDIAN };

struct rn_sae_config {
    int m;                 /* features */
    enum rn_sae_act act;
    int k;                 /* topk: active features per sample */
    float l1;              /* L1 coefficient */
    int l1_decoder_norm;   /* weight |c_j| by ||W_d[:, j]|| */
    float lr, beta1, beta2, adam_eps; /* Adam (PyTorch's defaults 0.9, 0.999, 1e-8) */
    int batch, epochs;
    uint64_t seed;         /* init, shuffling and resampling */
    enum rn_sae_bias_init bias_init;
    int centre;            /* subtract the data mean first (mu above) */
    long dead_window;      /* samples; 0: one epoch */
    long resample_every;   /* steps; 0: never */
    float dense_threshold; /* a feature firing on more than this fraction is dense (0.1) */
};

/* PyTorch-like defaults: the study's recipe (512 features, relu, l1 1e-3, Adam
 * 1e-3, batch 256, 50 epochs, seed 0, mean init, no centring, no resampling). */
struct rn_sae_config rn_sae_config_default(void);

struct rn_sae {
    int d, m;
    enum rn_sae_act act;
    int k;
    float *w_enc; /* (m, d) */
    float *b_enc; /* (m) */
    float *w_dec; /* (d, m), unit-norm columns */
    float *b_dec; /* (d) */
    float *mu;    /* (d): the centring mean, zeros when not centred */
};

/* What one pass over the data measured (rn_sae_train per epoch, rn_sae_eval). */
struct rn_sae_metrics {
    double loss;       /* the training objective above (mean per sample) */
    double mse;        /* mean over samples and dimensions of (x - x^)^2 */
    double fve;        /* 1 - sum ||x - x^||^2 / sum ||x - mean(x)||^2 */
    double l0;         /* mean number of nonzero features per sample */
    double dead_frac;  /* features that fired on no sample of the pass (train: of the window) */
    double dense_frac; /* features firing on more than dense_threshold of the samples */
    long resampled;    /* features resampled during the epoch (train) */
};

/* Trains a new SAE on x (n, d), row-major. per_epoch (epochs entries, may be
 * NULL) gets each epoch's metrics, measured during that epoch's steps (fve
 * and l0 included); density (m, may be NULL) each feature's firing fraction
 * over the last epoch. Deterministic for a seed and thread count. */
int rn_sae_train(struct rn_sae *s, const struct rn_sae_config *cfg, const float *x, size_t n,
                 int d, struct rn_sae_metrics *per_epoch, float *density, struct rn_error *err);

/* Allocates s for (d, m) with zeroed weights (a hand-built or loaded SAE). */
int rn_sae_alloc(struct rn_sae *s, int d, int m, enum rn_sae_act act, int k,
                 struct rn_error *err);
void rn_sae_free(struct rn_sae *s);

/* codes (n, m) of x (n, d). */
void rn_sae_encode(const struct rn_sae *s, const float *x, size_t n, float *codes);
/* xhat (n, d) from codes (n, m). */
void rn_sae_decode(const struct rn_sae *s, const float *codes, size_t n, float *xhat);

/* Metrics of s on x (loss with l1 and the decoder-norm weighting of cfg);
 * density (m, may be NULL) the firing fraction per feature. */
int rn_sae_eval(const struct rn_sae *s, const struct rn_sae_config *cfg, const float *x, size_t n,
                struct rn_sae_metrics *out, float *density, struct rn_error *err);

/* Fraction of variance explained of xhat for x (n, d), around the data mean
 * of x: 0 for the mean itself, 1 for x. */
double rn_fve(const float *x, const float *xhat, size_t n, int d);

#endif
