/* compare.h - several runs side by side (`runner compare RUN_DIR... --out DIR`).
 *
 * Reads only each run's run.h5 (/config experiment name, /metrics/val/accuracy,
 * /metrics/test/accuracy and, when present, /metrics/test/color_accuracy, per
 * epoch) and draws with plots/compare.gp:
 *   compare_epochs.<fmt>   hard-test digit accuracy per epoch of every run
 *                          (and the colour head's hard-test accuracy when a
 *                          run has one), one line per run;
 *   compare_summary.<fmt>  easy val vs hard test of every run at one epoch:
 *                          `epoch`, or (epoch <= 0) the last epoch every run
 *                          with more than one epoch reached; a run that
 *                          stopped earlier (the 1-epoch lazy model) shows its
 *                          last epoch, and each bar's label says which.
 * The numbers drawn are written to DIR/data/ as text, and DIR/compare.txt
 * holds the summary table.
 */
#ifndef RN_COMPARE_H
#define RN_COMPARE_H

#include "error.h"

int rn_compare(const char *const *run_dirs, int n_runs, const char *out_dir, int epoch,
               const char *format, struct rn_error *err);

#endif
