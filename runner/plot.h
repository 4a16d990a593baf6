/* plot.h - figures drawn by gnuplot from a run's HDF5 file alone.
 *
 * rn_plot_run reads <run_dir>/run.h5, writes the numbers each figure needs
 * as text data files into <run_dir>/plots/data/, and runs the gnuplot
 * scripts of plots/ (found via RN_PLOTS_DIR set at build time, or the
 * RUNNER_PLOTS environment variable) to draw <run_dir>/plots/<figure>.<fmt>.
 * It never touches a model. format: "png" (default), "pdf" or "svg".
 *
 * plot.c draws the training curves and the confusion matrices; every
 * analysis type draws its own figures (its `plot` in analysis.h) with the
 * helpers below, which every figure shares.
 */
#ifndef RN_PLOT_H
#define RN_PLOT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "error.h"

#define RN_PLOT_PATH_MAX 1024
#define RN_PLOT_DIR_MAX 768

/* Draws every figure the file has data for. *n_figures gets the count. */
int rn_plot_run(const char *run_dir, const char *format, int *n_figures, struct rn_error *err);

/* Runs `gnuplot -e defs script_path` and checks that it wrote a non-empty
 * out; gnuplot's first error line goes into err, prefixed by label. */
int rn_plot_gnuplot(const char *script_path, const char *defs, const char *out,
                    const char *label, struct rn_error *err);
/* The folder of the gnuplot scripts: $RUNNER_PLOTS, else the source tree's plots/. */
const char *rn_plot_scripts_dir(void);

/* ---- for the figure writers ---------------------------------------------- */

/* The run being plotted. */
struct rn_plotter {
    const char *run_dir;
    const char *fmt;
    /* Shorter than RN_PLOT_PATH_MAX, leaving room for the file names. */
    char scripts[RN_PLOT_DIR_MAX];
    char out_dir[RN_PLOT_DIR_MAX];
    char data_dir[RN_PLOT_DIR_MAX];
    struct rn_results *r; /* run.h5, open for reading */
    int n_figures;
};

/* A growable string for gnuplot's -e definitions; {0} is empty. On running
 * out of memory it sets oom and ignores further writes. Free s. */
struct rn_sbuf {
    char *s;
    size_t len, cap;
    int oom;
};
__attribute__((format(printf, 2, 3))) void rn_sbuf_printf(struct rn_sbuf *b, const char *fmt,
                                                          ...);
/* key='value'; as a gnuplot single-quoted string. */
void rn_sbuf_def_str(struct rn_sbuf *b, const char *key, const char *value);

/* Runs plots/<script> with the common definitions (fmt, W, H in pixels,
 * out, datadir, plotsdir) and then defs, to draw
 * <run_dir>/plots/<figure>.<fmt>; counts the figure. */
int rn_plot_draw(struct rn_plotter *p, const char *script, const char *figure, int w, int h,
                 struct rn_sbuf *defs, struct rn_error *err);

/* File-name-safe copy of a split or analysis name. */
void rn_plot_safe_name(char *dst, size_t n, const char *src);
/* Opens <data_dir>/<name> for writing; its path goes into path
 * (RN_PLOT_PATH_MAX). NULL with err set on failure. */
FILE *rn_plot_data_open(struct rn_plotter *p, const char *name, char *path,
                        struct rn_error *err);
/* Closes f, failing when any write to it failed. */
int rn_plot_data_close(FILE *f, const char *path, struct rn_error *err);

/* Writes image i of a (n, c, h, w) uint8 array as one gnuplot data block of
 * "x y r g b" rows, pixel (row y, column x) at (x0 + x, y0 - y) so that row 0
 * is at the top. Grey images are replicated to RGB. */
void rn_plot_write_image(FILE *f, const uint8_t *img, int c, int h, int w, int x0, int y0);
/* Writes one (h, w) map as a gnuplot `with image` block: x y value*scale,
 * row 0 at the top, at offset (x0, y0). */
void rn_plot_write_map(FILE *f, const float *m, int h, int w, double scale, int x0, int y0);
/* The study palette's name of colour k, or NULL. */
const char *rn_plot_colour_name(int k);

/* uint8 (n, c, h, w) images, or one (c, h, w) image as n = 1; c is 1 or 3. */
int rn_plot_read_images(struct rn_plotter *p, const char *path, uint8_t **img, int *n, int *c,
                        int *h, int *w, struct rn_error *err);
/* An int32 vector of length >= n; when it is absent *out stays NULL, which
 * is an error only if required. */
int rn_plot_read_vector(struct rn_plotter *p, const char *path, int n, int required,
                        int32_t **out, struct rn_error *err);
/* A float32 dataset of exactly ndim dims. */
int rn_plot_read_f32(struct rn_plotter *p, const char *path, int ndim, float **out, int dims[4],
                     struct rn_error *err);
/* A string attribute, or def when absent (never NULL; free with free()). */
char *rn_plot_attr_or(struct rn_plotter *p, const char *obj, const char *name, const char *def);

/* An int32 (rows, cols) matrix as a heatmap figure: a confusion matrix
 * (true x predicted), or with colours a label x colour count table. */
int rn_plot_heatmap(struct rn_plotter *p, const char *dataset, const char *split, int colours,
                    struct rn_error *err);

#endif
