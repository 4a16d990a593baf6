/* compare.h - several runs side by side (`runner compare RUN_DIR... --out DIR`).
 *
 * Reads only each run's run.h5 (/config experiment name, per-epoch
 * /metrics/<name>) and draws with plots/compare.gp:
 *   compare_epochs.<fmt>   one panel per line metric (opt->lines) that some
 *                          run has: its value per epoch, one line per run;
 *   compare_summary.<fmt>  the bar metrics (opt->bars) of every run as grouped
 *                          bars at one epoch: opt->epoch, or (<= 0) the last
 *                          epoch every run with more than one epoch reached;
 *                          a run that stopped earlier shows its last epoch,
 *                          and each bar's label says which.
 * The first line metric gives each run's epochs, so every run needs it. A
 * metric whose name ends in "accuracy" is a fraction and is drawn in percent.
 * The control run (opt->control), if any, is drawn dark grey and dashed.
 * The numbers drawn are written to DIR/data/ as text, and DIR/compare.txt
 * holds the bar metrics as a table.
 *
 * Errors: a run without a required metric is named with the metric and the
 * per-epoch metrics it does have; a control that is none of the runs lists
 * their labels.
 */
#ifndef RN_COMPARE_H
#define RN_COMPARE_H

#include "error.h"

#define RN_COMPARE_MAX_METRICS 8

/* A metric to draw: /metrics/<name>, one row per epoch. */
struct rn_compare_metric {
    const char *name;    /* "test/accuracy" */
    const char *caption; /* panel title (lines) or legend entry (bars); NULL: the name */
    double chance;       /* lines: a dotted line at this drawn value; 0: none */
    int optional;        /* 1: a run without it is drawn without it; 0: an error */
};

struct rn_compare_options {
    int epoch;          /* the bars' epoch; <= 0: see above */
    const char *format; /* png (NULL), pdf or svg */
    /* NULL: rn_compare_default_lines / _bars (and lines_title) */
    const struct rn_compare_metric *lines, *bars;
    int n_lines, n_bars; /* 1..RN_COMPARE_MAX_METRICS each */
    const char *lines_title; /* heading over several line panels; NULL: none */
    const char *control; /* a run (as given, or its label); NULL: none */
};

/* Today's figures, when no metric is given: the test accuracy per epoch (and
 * the colour head's, drawn when a run has it); val and test accuracy bars. */
extern const struct rn_compare_metric rn_compare_default_lines[];
extern const int rn_compare_n_default_lines;
extern const char *const rn_compare_default_lines_title;
extern const struct rn_compare_metric rn_compare_default_bars[];
extern const int rn_compare_n_default_bars;

int rn_compare(const char *const *run_dirs, int n_runs, const char *out_dir,
               const struct rn_compare_options *opt, struct rn_error *err);

#endif
