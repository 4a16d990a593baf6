/* plot.h - figures drawn by gnuplot from a run's HDF5 file alone.
 *
 * rn_plot_run reads <run_dir>/run.h5, writes the numbers each figure needs
 * as text data files into <run_dir>/plots/data/, and runs the gnuplot
 * scripts of plots/ (found via RN_PLOTS_DIR set at build time, or the
 * RUNNER_PLOTS environment variable) to draw <run_dir>/plots/<figure>.<fmt>.
 * It never touches a model. format: "png" (default), "pdf" or "svg".
 */
#ifndef RN_PLOT_H
#define RN_PLOT_H

#include "error.h"

/* Draws every figure the file has data for. *n_figures gets the count. */
int rn_plot_run(const char *run_dir, const char *format, int *n_figures, struct rn_error *err);

/* Runs `gnuplot -e defs script_path` and checks that it wrote a non-empty
 * out; gnuplot's first error line goes into err, prefixed by label. */
int rn_plot_gnuplot(const char *script_path, const char *defs, const char *out,
                    const char *label, struct rn_error *err);
/* The folder of the gnuplot scripts: $RUNNER_PLOTS, else the source tree's plots/. */
const char *rn_plot_scripts_dir(void);

#endif
