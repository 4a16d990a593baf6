/* table.h - the results of many runs as a table of means and confidence
 * intervals (`runner table DIR`).
 *
 * DIR is a sweep folder (its cells.tsv: every cell of the sweep, done or
 * not) or any folder of runs (every run.h5 below it, three levels at most,
 * `latest` links skipped). Runs are grouped by everything but the seed: a
 * sweep's cells by their label without `seed=`, other runs by their resolved
 * spec without the seed (and the data seed when it follows the seed).
 *
 * Per group and metric: n (the runs that completed and have the metric),
 * the mean, the sample standard deviation (n - 1 in the denominator) and the
 * 95% Student-t interval mean +- t(0.975, n - 1) sd / sqrt(n); n = 1 has no
 * interval. A cell that failed, is pending, running or interrupted, or a run
 * without the metric, is listed in the group's row, never averaged.
 *
 * A metric is /metrics/NAME at the last epoch, NAME@E at epoch E, or
 * /analyses/...[i,j] an element of an analysis dataset (float32 or float64;
 * the index may be left out for a single value). Metrics whose name ends in
 * "accuracy" are shown in percent.
 */
#ifndef RN_TABLE_H
#define RN_TABLE_H

#include <stdio.h>

#include "error.h"

struct rn_stats {
    int n;
    double mean;
    double sd;   /* sample standard deviation; NAN when n < 2 */
    double t;    /* t(0.975, n - 1); NAN when n < 2 */
    double half; /* t sd / sqrt(n): the interval is mean +- half; NAN when n < 2 */
};

/* The p-quantile of Student's t distribution with dof degrees of freedom
 * (dof >= 1, 0 < p < 1), from the regularised incomplete beta function by
 * bisection: accurate to ~1e-12 relative. */
double rn_t_quantile(double p, int dof);
/* Mean, sample sd and 95% interval of x[0..n-1]. */
void rn_stats_compute(const double *x, int n, struct rn_stats *s);

#define RN_TABLE_MAX_METRICS 8

struct rn_table_options {
    const char *const *metrics; /* NULL: val/accuracy and test/accuracy */
    int n_metrics;
    int markdown, csv;   /* what to print to out (neither: markdown) */
    int plot;            /* draw <out_dir>/table.<format> with error bars */
    const char *out_dir; /* figure and its data; NULL: DIR/table */
    const char *format;  /* png (NULL), pdf, svg */
};

int rn_table(const char *dir, const struct rn_table_options *o, FILE *out, struct rn_error *err);

#endif
