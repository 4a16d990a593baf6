/* sae_internal.h - what sae.c and sae_train.c share (private to them): the
 * workspace of one batch and the passes over it. The arithmetic is
 * documented once, in sae.h.
 */
#ifndef RN_SAE_INTERNAL_H
#define RN_SAE_INTERNAL_H

#include "sae.h"

/* Buffers for up to B rows of a (d, m) SAE. */
struct rn_sae_ws {
    int B, d, m;
    float *xin;         /* (B, d): x - mu - b_d, the encoder's input */
    float *codes;       /* (B, m): c */
    float *r;           /* (B, d): x^ - x */
    float *dc;          /* (B, m): dL/dp (with grads) */
    float *wnorm;       /* (m): ||W_d[:, j]|| */
    double *row_err;    /* (B): ||x - x^||^2 */
    double *row_l1;     /* (B): sum_j w_j |c_j| (w_j = 1 without decoder-norm weighting) */
    int *row_nnz;       /* (B): nonzero features */
    float *ones;        /* (B): 1 (column sums by sgemv) */
    struct rn_sae grad; /* gradients (with grads), mu unused */
};

int rn_sae_ws_init(struct rn_sae_ws *w, int B, int d, int m, int with_grads, struct rn_error *err);
void rn_sae_ws_free(struct rn_sae_ws *w);

/* Rows idx[0..rows) of x (all of x[0..rows) when idx is NULL): w->xin,
 * w->codes, w->r. */
void rn_sae_ws_forward(const struct rn_sae *s, struct rn_sae_ws *w, const float *x, const int *idx,
                       int rows);
/* After a forward: w->wnorm (the decoder norms when decoder_norm, else 1),
 * w->row_err, w->row_l1, w->row_nnz. */
void rn_sae_ws_row_stats(const struct rn_sae *s, struct rn_sae_ws *w, int rows, int decoder_norm);
/* After rn_sae_ws_row_stats: w->grad, the gradients of the batch's loss
 * (sae.h) for l1 and decoder_norm. */
void rn_sae_ws_backward(const struct rn_sae *s, struct rn_sae_ws *w, int rows, float l1,
                        int decoder_norm);
/* Adds to count[j] the rows of the last forward where feature j fired. */
void rn_sae_ws_count_fired(const struct rn_sae_ws *w, int rows, long *count);

/* The norms of the m columns of w (d, m), row-major, into out (m). */
void rn_sae_col_norms(const float *w, int d, int m, float *out);
/* The mean of the n rows of x (n, d) into out (d), summed in double in a
 * fixed order. */
int rn_sae_data_mean(const float *x, size_t n, int d, double *out, struct rn_error *err);
/* sum_b ||x_b - mean(x)||^2 over the n rows of x (n, d), in double. */
double rn_sae_total_var(const float *x, size_t n, int d);
/* From count[j], the samples (of `samples`) where feature j fired: the
 * fractions with none and with more than dense_threshold, and density (m,
 * may be NULL) count / samples. */
void rn_sae_density_stats(const long *count, int m, double samples, float dense_threshold,
                          double *dead_frac, double *dense_frac, float *density);
/* Validates cfg for d features in and n rows: one line in err. */
int rn_sae_check_config(const struct rn_sae_config *cfg, size_t n, int d, struct rn_error *err);

/* The range [lo, hi) of len this OpenMP thread owns, in multiples of 16. */
void rn_sae_thread_range(int len, int *lo, int *hi);

#endif
