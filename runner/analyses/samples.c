/* samples.c - a grid of the first n images of each split with label, colour
 * and prediction; optionally the training images as the run's augmentations
 * (train.augment) change them (the study's Figure 29). */
#include "common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "augment.h"

enum { SAMPLES_SPLIT, SAMPLES_N, SAMPLES_AUGMENTED, SAMPLES_N_KEYS };
static const struct rn_key samples_keys[] = {
    [SAMPLES_SPLIT] = {"split", RN_KIND_STRING, 0, 0, "all", 1, 0, NULL,
                       "split to draw from, or 'all'"},
    [SAMPLES_N] = {"n", RN_KIND_INT, 0, 20, NULL, 1, 100, NULL, "images per split"},
    [SAMPLES_AUGMENTED] = {"augmented", RN_KIND_BOOL, 0, 0, NULL, 0, 1, NULL,
                           "also the first n training images after the run's train.augment "
                           "(image i with the draws of sample i of training step 0, the run's "
                           "seed), as split train_augmented"},
};
_Static_assert(RN_N_KEYS(samples_keys) == SAMPLES_N_KEYS, "one schema row per SAMPLES_ key");

static int check_samples(const struct rn_spec *, const struct rn_spec_analysis *,
                         const struct rn_graph *, int, struct rn_error *);
static int run_samples(struct rn_run *, const struct rn_spec_analysis *, struct rn_error *);
static int plot_samples(struct rn_plotter *, const char *, const char *, char *const *, int,
                        struct rn_error *);
const struct rn_analysis_type rn_analysis_samples = {
    .name = "samples",
    .doc = "a grid of the first n images of each split with label, colour and prediction",
    .keys = samples_keys,
    .n_keys = SAMPLES_N_KEYS,
    .check = check_samples,
    .run = run_samples,
    .plot = plot_samples,
};

/* ---- check ------------------------------------------------------------- */

static int check_samples(const struct rn_spec *spec, const struct rn_spec_analysis *a,
                         const struct rn_graph *g, int logits, struct rn_error *err)
{
    (void)g;
    (void)logits;
    if (a->v.num[SAMPLES_AUGMENTED] != 0 && (!spec->has_train || spec->train.n_augment == 0))
        return rn_analysis_errorf(err, a, SAMPLES_AUGMENTED,
                                  "augmented: true needs the run's train.augment (channel_permute, "
                                  "colour_jitter), and this run has none");
    return 0;
}

/* ---- run ----------------------------------------------------------------- */

/* "channel_permute, colour_jitter (brightness 0.3, ...)": what the run's
 * augmentation does, for the figure's title. */
static void describe_augment(const struct rn_augment *au, char *out, size_t size)
{
    size_t k = 0;
    out[0] = '\0';
    if (au->channel_permute)
        k += (size_t)snprintf(out, size, "channel permutation");
    if (au->colour_jitter && k < size)
        snprintf(out + k, size - k,
                 "%sColorJitter (brightness %g, contrast %g, saturation %g, hue %g)",
                 k ? " + " : "", au->brightness, au->contrast, au->saturation, au->hue);
}

/* The first n training images as pixels in [0, 1], augmented as sample i of
 * training step 0 is (augment.h), under group/train_augmented: the exact
 * floats (pixels), the images rounded to bytes for the figure, labels,
 * colours and the model's predictions on the augmented images. */
static int write_augmented(struct rn_run *run, const char *group, int n_max, struct rn_error *err)
{
    struct rn_split *splits[RN_MAX_SPLITS];
    if (rn_analysis_splits(run, "train", splits, err) < 0)
        return -1;
    const struct rn_split *s = splits[0];
    const int n = n_max < s->n ? n_max : s->n, per = s->c * s->h * s->w;
    float *x = rn_malloc(sizeof(float) * (size_t)n * per, err);
    uint8_t *img = rn_malloc((size_t)n * per, err);
    int labels[100], colours[100], preds[100], rc = -1;
    char path[384], what[256];
    if (!x || !img)
        goto done;
    for (size_t k = 0; k < (size_t)n * per; k++)
        x[k] = s->images[k] * (1.0f / 255.0f); /* as the trainer loads a batch (eval.c) */
    if (rn_augment_batch(&run->augment, x, n, s->c, s->h, s->w, run->spec->seed, 0, err))
        goto done;
    for (size_t k = 0; k < (size_t)n * per; k++)
        img[k] = (uint8_t)lrintf(255 * (x[k] < 0 ? 0 : x[k] > 1 ? 1 : x[k]));
    for (int i = 0; i < n; i++) {
        labels[i] = s->labels[i];
        colours[i] = s->colours[i];
    }
    int dims[4] = {n, s->c, s->h, s->w};
    snprintf(path, sizeof path, "%s/train_augmented/pixels", group);
    if (rn_results_write(run->results, path, RN_DTYPE_F32, x, 4, dims, err))
        goto done;
    snprintf(path, sizeof path, "%s/train_augmented/images", group);
    if (rn_results_write(run->results, path, RN_DTYPE_U8, img, 4, dims, err))
        goto done;
    snprintf(path, sizeof path, "%s/train_augmented", group);
    describe_augment(&run->augment, what, sizeof what);
    if (rn_results_set_attr_str(run->results, path, "augment", what, err) ||
        rn_analysis_put(run, path, "labels", RN_DTYPE_I32, labels, 1, n, 0, err) ||
        rn_analysis_put(run, path, "colours", RN_DTYPE_I32, colours, 1, n, 0, err))
        goto done;
    if (run->has_graph) {
        const int bs = n < run->graph.max_n ? n : run->graph.max_n;
        for (int start = 0; start < n; start += bs) {
            int m = n - start < bs ? n - start : bs;
            struct rn_tensor *in = rn_graph_input_host(&run->graph, m, err);
            if (!in)
                goto done;
            memcpy(in->data, x + (size_t)start * per, sizeof(float) * (size_t)m * per);
            if (rn_graph_input_commit(&run->graph, err) || rn_run_predict(run, m, run->probs, err))
                goto done;
            for (int i = 0; i < m; i++)
                preds[start + i] =
                    rn_argmax(run->probs + (size_t)i * run->data.n_classes, run->data.n_classes);
        }
        if (rn_analysis_put(run, path, "preds", RN_DTYPE_I32, preds, 1, n, 0, err))
            goto done;
    }
    rc = 0;
done:
    free(x);
    free(img);
    return rc;
}

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
    if (a->v.num[SAMPLES_AUGMENTED] != 0 &&
        write_augmented(run, group, (int)a->v.num[SAMPLES_N], err))
        return -1;
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
    char title[600], what[400], gpath[RN_PLOT_PATH_MAX];
    snprintf(gpath, sizeof gpath, "%s/%s", group, split);
    char *augment = rn_plot_attr_or(p, gpath, "augment", "");
    if (augment[0])
        snprintf(what, sizeof what, "train after %s", augment);
    else
        snprintf(what, sizeof what, "%s", split);
    free(augment);
    if (preds)
        snprintf(title, sizeof title, "%s · %d images · %d misclassified (in red)", what, n, wrong);
    else
        snprintf(title, sizeof title, "%s · %d images", what, n);
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
