/* sae.h - sparse autoencoders on hidden states (Task 6): the arithmetic of
 * the sae analyses (analyses/sae*.c), on a (n, d) float matrix of
 * activations, on the CPU (OpenBLAS sgemm; sae.c, sae_train.c).
 *
 *   x~    = x - mu                 (mu: the data mean when centre, else 0)
 *   relu: c = ReLU(W_e (x~ - b_d) + b_e)
 *   topk: c = the k largest of ReLU(W_e (x~ - b_d) + b_e), the rest 0
 *         (ties at the k-th value go to the lowest feature index)
 *   x^    = W_d c + b_d + mu
 *   loss  = mean over the batch of ( ||x - x^||^2 + l1 * sum_j w_j |c_j| ),
 *           w_j = ||W_d[:, j]|| when l1_decoder_norm, else 1 (topk: l1 may be 0)
 *
 * The gradients of the loss (rn_sae_gradient; B rows, e = x^ - x, p the
 * pre-activation W_e (x~ - b_d) + b_e, gated where c_j > 0):
 *   dL/dc_bj  = (2/B) (W_d^T e_b)_j + (l1/B) w_j
 *   dL/dp_bj  = dL/dc_bj when c_bj > 0, else 0
 *   dL/dW_e   = sum_b dL/dp_b (x~_b - b_d)^T        dL/db_e = sum_b dL/dp_b
 *   dL/dW_d   = (2/B) sum_b e_b c_b^T  (+ (l1/B) sum_b |c_bj| W_d[:, j] / w_j
 *               on column j when l1_decoder_norm)
 *   dL/db_d   = (2/B) sum_b e_b - W_e^T dL/db_e
 *
 * One training step on a batch (rn_sae_train): the gradients above; each
 * column g_j of dL/dW_d loses its component along W_d[:, j]
 * (g_j -= (g_j . w) / (w . w) w, rn_sae_project_grad); an Adam step on
 * W_e, b_e, W_d, b_d (PyTorch's, bias-corrected: rn_sae_adam_update); each
 * column of W_d divided by its norm (rn_sae_normalise_decoder). Each epoch
 * visits the n rows in the order of a shuffle drawn from (seed,
 * RN_STREAM_SAE, RN_SAE_ITEM_SHUFFLE + epoch) by rn_rng_shuffle, in batches
 * of `batch` rows, the last one smaller when batch does not divide n.
 *
 * W_e is (m, d), W_d is (d, m) with unit-norm columns. rn_sae_init: b_d
 * starts at the mean of x~ (0 when centred) or its geometric median
 * (Weiszfeld, rn_geometric_median); W_d's columns start as normalised
 * standard normal vectors drawn from (seed, RN_STREAM_SAE, RN_SAE_ITEM_INIT)
 * column by column, W_e = W_d^T, b_e = 0.
 *
 * A feature is dead when it has not fired (c_j > 0) on any of the last
 * dead_window training samples (counted at batch granularity: a feature
 * that fires in a batch is alive until dead_window samples after the end of
 * that batch; at the start every feature has a fresh window). Resampling
 * (after every resample_every-th Adam step) re-initialises each dead feature
 * from an input with a high loss: a pool of min(n, 8192) rows drawn
 * uniformly with replacement, each dead feature picks one with probability
 * proportional to ||x - x^||^4 (the squared loss), from (seed,
 * RN_STREAM_SAE, RN_SAE_ITEM_RESAMPLE), one generator for the whole
 * training; its W_d column becomes the normalised residual x - x^, its W_e
 * row the same times 0.2 times the mean norm of the alive W_e rows (1 when
 * none is alive), b_e 0; its Adam moments are zeroed and its window starts
 * afresh.
 *
 * Threads: the products run as single-threaded OpenBLAS sgemm calls split
 * over the OpenMP threads (kernels/cpu/gemm.h: measured faster here than
 * OpenBLAS's own threading), every reduction in a fixed order: the results
 * are bit-identical for a seed and thread count. Call the functions outside
 * an OpenMP parallel region.
 */
#ifndef RN_SAE_H
#define RN_SAE_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* The items of (seed, RN_STREAM_SAE, item) (rng.h). */
enum { RN_SAE_ITEM_INIT = 0, RN_SAE_ITEM_RESAMPLE = 1, RN_SAE_ITEM_SHUFFLE = 2 };

enum rn_sae_act { RN_SAE_RELU, RN_SAE_TOPK };
enum rn_sae_bias_init { RN_SAE_BIAS_MEAN, RN_SAE_BIAS_MEDIAN };

struct rn_sae_config {
    int m; /* features */
    enum rn_sae_act act;
    int k;                            /* topk: active features per sample */
    float l1;                         /* L1 coefficient */
    int l1_decoder_norm;              /* weight |c_j| by ||W_d[:, j]|| */
    float lr, beta1, beta2, adam_eps; /* Adam (PyTorch's defaults 0.9, 0.999, 1e-8) */
    int batch, epochs;
    uint64_t seed; /* init, shuffling and resampling */
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
int rn_sae_train(struct rn_sae *s, const struct rn_sae_config *cfg, const float *x, size_t n, int d,
                 struct rn_sae_metrics *per_epoch, float *density, struct rn_error *err);

/* Allocates s for (d, m) with zeroed weights (a hand-built or loaded SAE). */
int rn_sae_alloc(struct rn_sae *s, int d, int m, enum rn_sae_act act, int k, struct rn_error *err);
/* Frees what rn_sae_alloc allocated and zeroes s; harmless on a zeroed s. */
void rn_sae_free(struct rn_sae *s);

/* The initialisation above, of an s allocated for (d, cfg->m) with cfg's
 * activation, from x (n, d): mu (the mean when cfg->centre), b_d, W_d,
 * W_e, b_e. */
int rn_sae_init(struct rn_sae *s, const struct rn_sae_config *cfg, const float *x, size_t n,
                struct rn_error *err);

/* rn_sae_train on an s already initialised (rn_sae_init, loaded or
 * hand-built; its mu is kept whatever cfg->centre says), with fresh Adam
 * moments: the fixture and continued training. cfg->m, act and k must
 * match s. */
int rn_sae_train_from(struct rn_sae *s, const struct rn_sae_config *cfg, const float *x, size_t n,
                      int d, struct rn_sae_metrics *per_epoch, float *density,
                      struct rn_error *err);

/* codes (n, m) of x (n, d), computed as x W_e^T + (b_e - W_e (mu + b_d))
 * (no scratch memory): the training forward's codes up to float rounding. */
void rn_sae_encode(const struct rn_sae *s, const float *x, size_t n, float *codes);
/* xhat (n, d) from codes (n, m). */
void rn_sae_decode(const struct rn_sae *s, const float *codes, size_t n, float *xhat);
/* xhat (n, d) of x (n, d): encode then decode (the spliced-in hidden state). */
int rn_sae_reconstruct(const struct rn_sae *s, const float *x, size_t n, float *xhat,
                       struct rn_error *err);

/* Metrics of s on x (loss with l1 and the decoder-norm weighting of cfg);
 * density (m, may be NULL) the firing fraction per feature. */
int rn_sae_eval(const struct rn_sae *s, const struct rn_sae_config *cfg, const float *x, size_t n,
                struct rn_sae_metrics *out, float *density, struct rn_error *err);

/* The loss above over the n rows of x as one batch, into *loss, and its
 * gradients into grad (allocated for s's d and m; b_enc, w_enc, b_dec,
 * w_dec get dL/d of the same field of s; grad->mu is left alone). No
 * projection: that is rn_sae_project_grad. */
int rn_sae_gradient(const struct rn_sae *s, const struct rn_sae_config *cfg, const float *x,
                    size_t n, struct rn_sae *grad, double *loss, struct rn_error *err);
/* Removes from each column of grad->w_dec its component along the same
 * column of s->w_dec. */
void rn_sae_project_grad(const struct rn_sae *s, struct rn_sae *grad);
/* Divides each column of s->w_dec by its norm (a zero column stays zero). */
void rn_sae_normalise_decoder(struct rn_sae *s);

/* PyTorch's Adam (torch.optim.Adam, no weight decay, not amsgrad) on count
 * parameters p with gradient g and moments m, v at step t (1 for the first):
 *   m = beta1 m + (1 - beta1) g          v = beta2 v + (1 - beta2) g^2
 *   p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
 * (the bias corrections in double, rounded to float). */
void rn_sae_adam_update(float *p, const float *g, float *m, float *v, size_t count, long t,
                        const struct rn_sae_config *cfg);

/* The geometric median of the n rows of x (n, d) into out (d), by
 * Weiszfeld's iteration from the mean in double (rows at the current
 * estimate are left out of a step) until a step moves it by less than
 * 1e-7 * (1 + its norm), at most 500 steps. */
int rn_geometric_median(const float *x, size_t n, int d, float *out, struct rn_error *err);

/* Fraction of variance explained of xhat for x (n, d), around the data mean
 * of x: 0 for the mean itself, 1 for x. */
double rn_fve(const float *x, const float *xhat, size_t n, int d);

#endif
