/* sae_stats.c - statistics of the data the sparse autoencoder needs
 * (sae.h): the mean, the geometric median (Weiszfeld), the total variance
 * and the fraction of variance explained, in double, in a fixed order.
 */
#include "sae.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sae_internal.h"

#define SAE_COLS 64 /* columns per block of a column reduction */

/* ---- the mean and the geometric median ----------------------------------------------------------
 */

#define SAE_STAT_ROWS 4096 /* rows per block of the data's statistics */

int rn_sae_data_mean(const float *x, size_t n, int d, double *out, struct rn_error *err)
{
    size_t nb = (n + SAE_STAT_ROWS - 1) / SAE_STAT_ROWS;
    double *part = rn_calloc(nb * (size_t)d, sizeof(double), err);
    if (!part)
        return rn_error_prefix(err, "data mean");
#pragma omp parallel for schedule(static)
    for (size_t k = 0; k < nb; k++) {
        double *acc = part + k * d;
        size_t hi = (k + 1) * SAE_STAT_ROWS < n ? (k + 1) * SAE_STAT_ROWS : n;
        for (size_t b = k * SAE_STAT_ROWS; b < hi; b++)
            for (int i = 0; i < d; i++)
                acc[i] += x[b * d + i];
    }
    for (int i = 0; i < d; i++)
        out[i] = 0;
    for (size_t k = 0; k < nb; k++)
        for (int i = 0; i < d; i++)
            out[i] += part[k * d + i];
    for (int i = 0; i < d; i++)
        out[i] /= (double)n;
    free(part);
    return 0;
}

int rn_geometric_median(const float *x, size_t n, int d, float *out, struct rn_error *err)
{
    if (n == 0 || d <= 0)
        return rn_errorf(err, "geometric median: %zu x %d data, expected at least one row", n, d);
    size_t nb = (n + SAE_STAT_ROWS - 1) / SAE_STAT_ROWS;
    double *y = rn_malloc(sizeof(double) * 2 * d, err);
    double *part = y ? rn_malloc(nb * (size_t)(d + 1) * sizeof(double), err) : NULL;
    if (!part || rn_sae_data_mean(x, n, d, y, err)) {
        free(y);
        free(part);
        return rn_error_prefix(err, "geometric median");
    }
    double *ynew = y + d;
    for (int it = 0; it < 500; it++) {
#pragma omp parallel for schedule(static)
        for (size_t k = 0; k < nb; k++) {
            double *acc = part + k * (d + 1);
            memset(acc, 0, sizeof(double) * (d + 1));
            size_t hi = (k + 1) * SAE_STAT_ROWS < n ? (k + 1) * SAE_STAT_ROWS : n;
            for (size_t b = k * SAE_STAT_ROWS; b < hi; b++) {
                const float *row = x + b * d;
                double dist = 0;
                for (int i = 0; i < d; i++)
                    dist += (row[i] - y[i]) * (row[i] - y[i]);
                dist = sqrt(dist);
                if (dist < 1e-12)
                    continue;
                for (int i = 0; i < d; i++)
                    acc[i] += row[i] / dist;
                acc[d] += 1.0 / dist;
            }
        }
        double den = 0, step = 0, norm = 0;
        for (int i = 0; i < d; i++)
            ynew[i] = 0;
        for (size_t k = 0; k < nb; k++) {
            for (int i = 0; i < d; i++)
                ynew[i] += part[k * (d + 1) + i];
            den += part[k * (d + 1) + d];
        }
        if (den == 0) /* every row is at y */
            break;
        for (int i = 0; i < d; i++) {
            ynew[i] /= den;
            step += (ynew[i] - y[i]) * (ynew[i] - y[i]);
            norm += ynew[i] * ynew[i];
            y[i] = ynew[i];
        }
        if (sqrt(step) < 1e-7 * (1 + sqrt(norm)))
            break;
    }
    for (int i = 0; i < d; i++)
        out[i] = (float)y[i];
    free(y);
    free(part);
    return 0;
}

/* sum ||x_b - mean(x)||^2 and, with xhat, sum ||x_b - xhat_b||^2 (into *sq_err), in
 * column blocks with no heap memory, in double. */
static double variance_and_error(const float *x, const float *xhat, size_t n, int d, double *sq_err)
{
    double var = 0, e = 0;
    for (int j0 = 0; j0 < d; j0 += SAE_COLS) {
        int nj = d - j0 < SAE_COLS ? d - j0 : SAE_COLS;
        double mean[SAE_COLS] = {0}, v[SAE_COLS] = {0}, ee[SAE_COLS] = {0};
        for (size_t b = 0; b < n; b++)
            for (int q = 0; q < nj; q++)
                mean[q] += x[b * d + j0 + q];
        for (int q = 0; q < nj; q++)
            mean[q] /= (double)n;
        for (size_t b = 0; b < n; b++)
            for (int q = 0; q < nj; q++) {
                double c = x[b * d + j0 + q] - mean[q];
                v[q] += c * c;
                if (xhat) {
                    double r = (double)x[b * d + j0 + q] - xhat[b * d + j0 + q];
                    ee[q] += r * r;
                }
            }
        for (int q = 0; q < nj; q++) {
            var += v[q];
            e += ee[q];
        }
    }
    if (sq_err)
        *sq_err = e;
    return var;
}

double rn_sae_total_var(const float *x, size_t n, int d)
{
    return n ? variance_and_error(x, NULL, n, d, NULL) : 0;
}

double rn_fve(const float *x, const float *xhat, size_t n, int d)
{
    if (n == 0 || d <= 0)
        return NAN;
    double e, var = variance_and_error(x, xhat, n, d, &e);
    return var > 0 ? 1.0 - e / var : NAN;
}
