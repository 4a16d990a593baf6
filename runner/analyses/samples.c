/* samples.c - a grid of the first n images of each split with label, colour
 * and prediction. */
#include "common.h"

#include <stdlib.h>
#include <string.h>

enum { SAMPLES_SPLIT, SAMPLES_N, SAMPLES_N_KEYS };
static const struct rn_key samples_keys[] = {
    [SAMPLES_SPLIT] = {"split", RN_KIND_STRING, 0, 0, "all", 1, 0, NULL,
                       "split to draw from, or 'all'"},
    [SAMPLES_N] = {"n", RN_KIND_INT, 0, 20, NULL, 1, 100, NULL, "images per split"},
};
_Static_assert(RN_N_KEYS(samples_keys) == SAMPLES_N_KEYS, "one schema row per SAMPLES_ key");

static int run_samples(struct rn_run *, const struct rn_spec_analysis *, struct rn_error *);
static int plot_samples(struct rn_plotter *, const char *, const char *, char *const *, int,
                        struct rn_error *);
const struct rn_analysis_type rn_analysis_samples = {
    .name = "samples",
    .doc = "a grid of the first n images of each split with label, colour and prediction",
    .keys = samples_keys,
    .n_keys = SAMPLES_N_KEYS,
    .run = run_samples,
    .plot = plot_samples,
};

/* ---- run ----------------------------------------------------------------- */

static int run_samples(struct rn_run *run, const struct rn_spec_analysis *a, struct rn_error *err)
{
    struct rn_split *splits[RN_MAX_SPLITS];
    int ns = rn_analysis_splits(run, a->v.str[SAMPLES_SPLIT], splits, err);
    if (ns < 0)
        return -1;
    char group[256];
    snprintf(group, sizeof group, "/analyses/%s", a->name);
    for (int si = 0; si < ns; si++) {
        struct rn_split *s = splits[si];
        int n = (int)a->v.num[SAMPLES_N] < s->n ? (int)a->v.num[SAMPLES_N] : s->n;
        int labels[100], colours[100], preds[100];
        for (int i = 0; i < n; i++) {
            labels[i] = s->labels[i];
            colours[i] = s->colours[i];
        }
        char path[384];
        int dims[4] = {n, s->c, s->h, s->w};
        snprintf(path, sizeof path, "%s/%s/images", group, s->name);
        if (rn_results_write(run->results, path, RN_DTYPE_U8, s->images, 4, dims, err))
            return -1;
        snprintf(path, sizeof path, "%s/%s/labels", group, s->name);
        if (rn_results_write(run->results, path, RN_DTYPE_I32, labels, 1, &n, err))
            return -1;
        snprintf(path, sizeof path, "%s/%s/colours", group, s->name);
        if (rn_results_write(run->results, path, RN_DTYPE_I32, colours, 1, &n, err))
            return -1;
        if (run->has_graph) {
            int bs = n < run->graph.max_n ? n : run->graph.max_n;
            for (int start = 0; start < n; start += bs) {
                int m = n - start < bs ? n - start : bs;
                int idx[100];
                for (int i = 0; i < m; i++)
                    idx[i] = start + i;
                if (rn_run_load_batch(run, s, idx, m, err) ||
                    rn_run_predict(run, m, run->probs, err))
                    return -1;
                for (int i = 0; i < m; i++)
                    preds[start + i] = rn_argmax(run->probs + (size_t)i * run->data.n_classes,
                                                 run->data.n_classes);
            }
            snprintf(path, sizeof path, "%s/%s/preds", group, s->name);
            if (rn_results_write(run->results, path, RN_DTYPE_I32, preds, 1, &n, err))
                return -1;
        }
    }
    return rn_results_set_attr_str(run->results, group, "kind", "samples", err);
}

/* ---- figure: one grid per split ------------------------------------------ */

static int plot_split(struct rn_plotter *p, const char *group, const char *split,
                      struct rn_error *err)
{
    char path[RN_PLOT_PATH_MAX], file[RN_PLOT_PATH_MAX], lpath[RN_PLOT_PATH_MAX], figure[128];
    char sname[64];
    uint8_t *img = NULL;
    int32_t *labels = NULL, *colours = NULL, *preds = NULL;
    int n, c, h, w, rc = -1;
    struct rn_sbuf defs = {0};
    FILE *f = NULL;

    snprintf(path, sizeof path, "%s/%s/images", group, split);
    if (rn_plot_read_images(p, path, &img, &n, &c, &h, &w, err))
        return -1;
    snprintf(path, sizeof path, "%s/%s/labels", group, split);
    if (rn_plot_read_vector(p, path, n, 1, &labels, err))
        goto done;
    snprintf(path, sizeof path, "%s/%s/colours", group, split);
    if (rn_plot_read_vector(p, path, n, 0, &colours, err))
        goto done;
    snprintf(path, sizeof path, "%s/%s/preds", group, split);
    if (rn_plot_read_vector(p, path, n, 0, &preds, err))
        goto done;
    if (n == 0) {
        rc = 0;
        goto done;
    }

    rn_plot_safe_name(sname, sizeof sname, split);
    snprintf(figure, sizeof figure, "samples_%s", sname);

    /* Grid: 10 per row; a cell is the image plus two text lines under it,
     * in data units of one pixel. */
    int ncols = n < 10 ? n : 10, nrows = (n + ncols - 1) / ncols;
    int gap = 8, text = preds ? 13 : 8;
    int cellw = w + gap, cellh = h + text;

    snprintf(file, sizeof file, "%s_images.dat", figure);
    if (!(f = rn_plot_data_open(p, file, path, err)))
        goto done;
    fprintf(f, "# %s/%s/images: one index per image; x y r g b\n", group, split);
    for (int i = 0; i < n; i++)
        rn_plot_write_image(f, img + (size_t)i * (size_t)(c * h * w), c, h, w, (i % ncols) * cellw,
                            -(i / ncols) * cellh);
    if (rn_plot_data_close(f, path, err)) {
        f = NULL;
        goto done;
    }
    snprintf(file, sizeof file, "%s_labels.dat", figure);
    if (!(f = rn_plot_data_open(p, file, lpath, err)))
        goto done;
    fprintf(f, "# x y text wrong(0/1)\n");
    for (int i = 0; i < n; i++) {
        double xc = (i % ncols) * cellw + (w - 1) / 2.0;
        double ytop = -(i / ncols) * cellh - (h - 1) - 0.5; /* bottom edge of the image */
        const char *cn = colours ? rn_plot_colour_name(colours[i]) : NULL;
        if (cn)
            fprintf(f, "%g %g \"label %d · %s\" 0\n", xc, ytop - 3.2, labels[i], cn);
        else
            fprintf(f, "%g %g \"label %d\" 0\n", xc, ytop - 3.2, labels[i]);
        if (preds)
            fprintf(f, "%g %g \"pred %d\" %d\n", xc, ytop - 8.6, preds[i], preds[i] != labels[i]);
    }
    if (rn_plot_data_close(f, lpath, err)) {
        f = NULL;
        goto done;
    }
    f = NULL;

    int wrong = 0;
    for (int i = 0; preds && i < n; i++)
        wrong += preds[i] != labels[i];
    char title[400];
    if (preds)
        snprintf(title, sizeof title, "%s · %d images · %d misclassified (in red)", split, n,
                 wrong);
    else
        snprintf(title, sizeof title, "%s · %d images", split, n);
    rn_sbuf_def_str(&defs, "images", path);
    rn_sbuf_def_str(&defs, "labels", lpath);
    rn_sbuf_def_str(&defs, "title", title);
    rn_sbuf_printf(&defs, "n=%d; xlo=%g; xhi=%g; ylo=%g; yhi=%g; ", n, -gap / 2.0,
                   ncols * cellw - gap / 2.0, -(double)nrows * cellh + 0.5, 0.5 + 2);
    /* 4 screen pixels per image pixel, plus room for the title. */
    int px = 4;
    int W = ncols * cellw * px + 40, H = (nrows * cellh + 2) * px + 60;
    rc = rn_plot_draw(p, "samples.gp", figure, W, H, &defs, err);
done:
    if (f)
        fclose(f);
    free(defs.s);
    free(img);
    free(labels);
    free(colours);
    free(preds);
    return rc;
}

static int plot_samples(struct rn_plotter *p, const char *group, const char *name,
                        char *const *datasets, int n_datasets, struct rn_error *err)
{
    /* One figure per <split>/images. */
    for (int q = 0; q < n_datasets; q++) {
        const char *s = strstr(datasets[q], "/images");
        if (s && strcmp(s, "/images") == 0) {
            char split[256];
            snprintf(split, sizeof split, "%.*s", (int)(s - datasets[q]), datasets[q]);
            if (plot_split(p, group, split, err))
                return -1;
        }
    }
    return 0;
}
