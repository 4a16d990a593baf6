/* sae_plot.c - the figures of the sae analysis (sae.c) and of sae_intervene
 * (sae_intervene.c), drawn from their groups of a run file, the models side
 * by side:
 *   <name>_training   loss, MSE, fraction of variance explained, L0, dead
 *                     and dense fractions against the epoch
 *   <name>_density    histogram of log10 firing density per feature
 *   <name>_heatmaps   feature x digit and feature x colour mean activations,
 *                     each feature's row divided by its largest entry, the
 *                     features in the order of features/order (dead ones
 *                     left out)
 *   <name>_classes    the count of features per class
 *   <name>_top_<m>    the images that most activate the shown colour
 *                     features of model m, one row per feature
 * and for sae_intervene
 *   <name>_probs      mean class probabilities on the inputs of the ablated
 *                     feature's colour: SAE only, ablated, swapped
 *   <name>_bulk       accuracy: clean, SAE, colour features ablated, as many
 *                     random others (mean and standard deviation)
 *   <name>_sweep      mean class probabilities against the feature's scale
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "sae_ops.h"

/* ---- reading ------------------------------------------------------------------ */

struct names {
    char buf[RN_ANALYSIS_MAX_MODELS * (RN_NAME_MAX + 1)];
    char *v[RN_ANALYSIS_MAX_MODELS];
    int n;
};

static void read_names(struct rn_plotter *p, const char *group, struct names *N)
{
    char *s = rn_plot_attr_or(p, group, "models", "");
    snprintf(N->buf, sizeof N->buf, "%s", s);
    free(s);
    N->n = rn_models_split_names(N->buf, N->v, RN_ANALYSIS_MAX_MODELS);
}

/* <group>/<model>/<what> as float32 of ndim dims; *out NULL when absent. */
static int read_model_f32(struct rn_plotter *p, const char *group, const char *model,
                          const char *what, int ndim, float **out, int dims[4],
                          struct rn_error *err)
{
    char path[RN_PLOT_PATH_MAX];
    snprintf(path, sizeof path, "%s/%s/%s", group, model, what);
    *out = NULL;
    if (!rn_results_exists(p->r, path))
        return 0;
    if (ndim == 0) {
        int nd, d[4];
        if (rn_results_read(p->r, path, RN_DTYPE_F32, (void **)out, &nd, d, err))
            return -1;
        return 0;
    }
    return rn_plot_read_f32(p, path, ndim, out, dims, err);
}

static int read_model_i32(struct rn_plotter *p, const char *group, const char *model,
                          const char *what, int n, int32_t **out, struct rn_error *err)
{
    char path[RN_PLOT_PATH_MAX];
    snprintf(path, sizeof path, "%s/%s/%s", group, model, what);
    return rn_plot_read_vector(p, path, n, 1, out, err);
}

static double scalar(struct rn_plotter *p, const char *group, const char *model, const char *what)
{
    float *v = NULL;
    int dims[4];
    if (read_model_f32(p, group, model, what, 0, &v, dims, NULL) || !v)
        return NAN;
    double x = *v;
    free(v);
    return x;
}

static FILE *open_dat(struct rn_plotter *p, const char *fig, const char *what, char *path,
                      struct rn_error *err)
{
    char file[RN_PLOT_PATH_MAX];
    snprintf(file, sizeof file, "%s_%s.dat", fig, what);
    return rn_plot_data_open(p, file, path, err);
}

static void def_models(struct rn_sbuf *defs, const struct names *N)
{
    for (int m = 0; m < N->n; m++) {
        char key[16];
        snprintf(key, sizeof key, "model%d", m);
        rn_sbuf_def_str(defs, key, N->v[m]);
    }
    rn_sbuf_printf(defs, "m=%d; ", N->n);
}

/* ---- sae: training curves ----------------------------------------------------- */

static const char *const train_metrics[] = {"loss", "mse", "fve", "l0", "dead", "dense"};
#define N_TRAIN_METRICS 6

static int plot_training(struct rn_plotter *p, const char *group, const char *fig,
                         const char *title, const struct names *N, struct rn_error *err)
{
    float *v[RN_ANALYSIS_MAX_MODELS][N_TRAIN_METRICS] = {{0}};
    int epochs = -1, rc = -1, dims[4];
    char dpath[RN_PLOT_PATH_MAX], what[64];
    struct rn_sbuf defs = {0};
    FILE *f = NULL;
    for (int m = 0; m < N->n; m++)
        for (int q = 0; q < N_TRAIN_METRICS; q++) {
            snprintf(what, sizeof what, "train/%s", train_metrics[q]);
            if (read_model_f32(p, group, N->v[m], what, 1, &v[m][q], dims, err))
                goto done;
            if (!v[m][q] || (epochs >= 0 && dims[0] != epochs)) {
                rn_errorf(err, "%s: %s/%s/%s: missing or of another length", p->run_dir, group,
                          N->v[m], what);
                goto done;
            }
            epochs = dims[0];
        }
    if (!(f = open_dat(p, fig, "curves", dpath, err)))
        goto done;
    fprintf(f, "# epoch, then per model: loss mse fve l0 dead dense\n");
    for (int e = 0; e < epochs; e++) {
        fprintf(f, "%d", e + 1);
        for (int m = 0; m < N->n; m++)
            for (int q = 0; q < N_TRAIN_METRICS; q++)
                fprintf(f, " %.8g", v[m][q][e]);
        fputc('\n', f);
    }
    if (rn_plot_data_close(f, dpath, err))
        goto done;
    rn_sbuf_def_str(&defs, "file", dpath);
    rn_sbuf_def_str(&defs, "title", title);
    def_models(&defs, N);
    rc = rn_plot_draw(p, "sae_training.gp", fig, 1100, 760, &defs, err);
done:
    for (int m = 0; m < N->n; m++)
        for (int q = 0; q < N_TRAIN_METRICS; q++)
            free(v[m][q]);
    free(defs.s);
    return rc;
}

/* ---- sae: density histogram ---------------------------------------------------- */

#define DENSITY_BINS 30
#define DENSITY_LO -6.0

static int plot_density(struct rn_plotter *p, const char *group, const char *fig, const char *title,
                        const struct names *N, struct rn_error *err)
{
    int count[RN_ANALYSIS_MAX_MODELS][DENSITY_BINS] = {{0}}, dead[RN_ANALYSIS_MAX_MODELS] = {0};
    int rc = -1, dims[4], m_feat[RN_ANALYSIS_MAX_MODELS] = {0};
    char dpath[RN_PLOT_PATH_MAX], key[32], cap[160];
    struct rn_sbuf defs = {0};
    const double w = -DENSITY_LO / DENSITY_BINS;
    for (int m = 0; m < N->n; m++) {
        float *d = NULL;
        if (read_model_f32(p, group, N->v[m], "density", 1, &d, dims, err))
            goto done;
        if (!d)
            return 0;
        m_feat[m] = dims[0];
        for (int j = 0; j < dims[0]; j++) {
            if (!(d[j] > 0)) {
                dead[m]++;
                continue;
            }
            int b = (int)floor((log10(d[j]) - DENSITY_LO) / w);
            b = b < 0 ? 0 : b >= DENSITY_BINS ? DENSITY_BINS - 1 : b;
            count[m][b]++;
        }
        free(d);
    }
    FILE *f = open_dat(p, fig, "hist", dpath, err);
    if (!f)
        goto done;
    fprintf(f, "# log10(density) bin centre, then per model the features in the bin (dead "
               "features left out)\n");
    for (int b = 0; b < DENSITY_BINS; b++) {
        fprintf(f, "%.4f", DENSITY_LO + (b + 0.5) * w);
        for (int m = 0; m < N->n; m++)
            fprintf(f, " %d", count[m][b]);
        fputc('\n', f);
    }
    if (rn_plot_data_close(f, dpath, err))
        goto done;
    for (int m = 0; m < N->n; m++) {
        snprintf(key, sizeof key, "cap%d", m);
        snprintf(cap, sizeof cap, "%s: %d of %d alive (L0 %.1f)", N->v[m], m_feat[m] - dead[m],
                 m_feat[m], scalar(p, group, N->v[m], "final/l0"));
        rn_sbuf_def_str(&defs, key, cap);
    }
    rn_sbuf_def_str(&defs, "file", dpath);
    rn_sbuf_def_str(&defs, "title", title);
    rn_sbuf_printf(&defs, "binw=%.6f; ", w);
    def_models(&defs, N);
    rc = rn_plot_draw(p, "sae_density.gp", fig, 900, 520, &defs, err);
done:
    free(defs.s);
    return rc;
}

/* ---- sae: heatmaps and class counts --------------------------------------------- */

/* One table (m, k) of model m's features as a (k rows, alive columns)
 * matrix, each feature divided by its largest entry, in `order`. */
static int write_table(FILE *f, const float *t, int k, const int32_t *order, const int32_t *cls,
                       int mf)
{
    int cols = 0;
    for (int q = 0; q < k; q++) {
        cols = 0;
        for (int r = 0; r < mf; r++) {
            int j = order[r];
            if (cls[j] == RN_SAE_DEAD)
                continue;
            float mx = 0;
            for (int c = 0; c < k; c++)
                mx = t[(size_t)j * k + c] > mx ? t[(size_t)j * k + c] : mx;
            fprintf(f, "%s%.4f", cols++ ? " " : "", mx > 0 ? t[(size_t)j * k + q] / mx : 0);
        }
        fputc('\n', f);
    }
    return cols;
}

static int plot_heatmaps(struct rn_plotter *p, const char *group, const char *fig,
                         const char *title, const struct names *N, struct rn_error *err)
{
    int rc = -1, dims[4], maxcols = 1;
    char dpath[RN_PLOT_PATH_MAX], key[32], cap[300];
    struct rn_sbuf defs = {0};
    int counts[RN_ANALYSIS_MAX_MODELS][RN_SAE_N_CLASSES] = {{0}};
    for (int m = 0; m < N->n; m++) {
        float *dt = NULL, *ct = NULL;
        int32_t *order = NULL, *cls = NULL, *cnt = NULL;
        int ok = -1;
        if (read_model_f32(p, group, N->v[m], "features/digit_means", 2, &dt, dims, err) || !dt ||
            read_model_f32(p, group, N->v[m], "features/colour_means", 2, &ct, dims, err) || !ct)
            goto model_done;
        int mf = dims[0], k = dims[1];
        if (read_model_i32(p, group, N->v[m], "features/order", mf, &order, err) ||
            read_model_i32(p, group, N->v[m], "features/class", mf, &cls, err) ||
            read_model_i32(p, group, N->v[m], "features/counts", RN_SAE_N_CLASSES, &cnt, err))
            goto model_done;
        memcpy(counts[m], cnt, sizeof counts[m]);
        for (int t = 0; t < 2; t++) {
            char what[32];
            snprintf(what, sizeof what, "%s%d", t ? "colour" : "digit", m);
            FILE *f = open_dat(p, fig, what, dpath, err);
            if (!f)
                goto model_done;
            int cols = write_table(f, t ? ct : dt, k, order, cls, mf);
            maxcols = cols > maxcols ? cols : maxcols;
            if (rn_plot_data_close(f, dpath, err))
                goto model_done;
            snprintf(key, sizeof key, "file_%s", what);
            rn_sbuf_def_str(&defs, key, dpath);
            snprintf(key, sizeof key, "cols%d", m);
            rn_sbuf_printf(&defs, "%s=%d; ", key, cols);
        }
        snprintf(key, sizeof key, "cap%d", m);
        snprintf(cap, sizeof cap,
                 "%s: %d alive (colour %d, both %d, digit %d, mixed %d) · fvu %.2g · L0 %.1f",
                 N->v[m], mf - cnt[RN_SAE_DEAD], cnt[RN_SAE_COLOUR], cnt[RN_SAE_BOTH],
                 cnt[RN_SAE_DIGIT], cnt[RN_SAE_MIXED], 1 - scalar(p, group, N->v[m], "final/fve"),
                 scalar(p, group, N->v[m], "final/l0"));
        rn_sbuf_def_str(&defs, key, cap);
        ok = 0;
    model_done:
        free(dt);
        free(ct);
        free(order);
        free(cls);
        free(cnt);
        if (ok)
            goto done;
    }
    rn_sbuf_def_str(&defs, "title", title);
    def_models(&defs, N);
    if (rn_plot_draw(p, "sae_heatmap.gp", fig, 1300, 300 + 360 * N->n, &defs, err))
        goto done;
    /* the class counts, models side by side */
    char cfig[200];
    snprintf(cfig, sizeof cfig, "%.*s_classes", (int)(strlen(fig) - strlen("_heatmaps")), fig);
    FILE *f = open_dat(p, cfig, "counts", dpath, err);
    if (!f)
        goto done;
    fprintf(f, "# class, then per model the features of that class\n");
    static const int shown[] = {RN_SAE_COLOUR, RN_SAE_DIGIT, RN_SAE_BOTH, RN_SAE_MIXED,
                                RN_SAE_DEAD};
    for (int c = 0; c < RN_SAE_N_CLASSES; c++) {
        fprintf(f, "%s", rn_sae_class_names[shown[c]]);
        for (int m = 0; m < N->n; m++)
            fprintf(f, " %d", counts[m][shown[c]]);
        fputc('\n', f);
    }
    if (rn_plot_data_close(f, dpath, err))
        goto done;
    free(defs.s);
    defs = (struct rn_sbuf){0};
    char *thr = rn_plot_attr_or(p, group, "threshold", "2");
    snprintf(cap, sizeof cap, "%s\nfeatures per class (selective: max class mean / mean > %s)",
             title, thr);
    free(thr);
    rn_sbuf_def_str(&defs, "file", dpath);
    rn_sbuf_def_str(&defs, "title", cap);
    def_models(&defs, N);
    rc = rn_plot_draw(p, "sae_classes.gp", cfig, 900, 520, &defs, err);
done:
    free(defs.s);
    return rc;
}

/* ---- sae: top images of the colour features ------------------------------------ */

static int plot_top(struct rn_plotter *p, const char *group, const char *name, const char *model,
                    struct rn_error *err)
{
    char path[RN_PLOT_PATH_MAX], ipath[RN_PLOT_PATH_MAX], lpath[RN_PLOT_PATH_MAX];
    char fig[300], sname[64], smodel[64], title[300];
    uint8_t *img = NULL;
    int32_t *feat = NULL;
    float *val = NULL, *colour = NULL;
    int n, c, h, w, dims[4], cdims[4], rc = -1;
    struct rn_sbuf defs = {0};
    snprintf(path, sizeof path, "%s/%s/top/images", group, model);
    if (!rn_results_exists(p->r, path))
        return 0;
    if (rn_plot_read_images(p, path, &img, &n, &c, &h, &w, err) ||
        read_model_f32(p, group, model, "top/value", 2, &val, dims, err) || !val ||
        read_model_f32(p, group, model, "features/colour_means", 2, &colour, cdims, err) ||
        !colour || read_model_i32(p, group, model, "top/features", dims[0], &feat, err))
        goto done;
    const int rows = dims[0], top = dims[1], k = cdims[1];
    if (rows * top != n) {
        rn_errorf(err, "%s: %s/%s/top: %d images for %d x %d", p->run_dir, group, model, n, rows,
                  top);
        goto done;
    }
    rn_plot_safe_name(sname, sizeof sname, name);
    rn_plot_safe_name(smodel, sizeof smodel, model);
    snprintf(fig, sizeof fig, "%s_top_%s", sname, smodel);
    const int gap = 6, text = 8, label = 44, cellw = w + gap, cellh = h + text;
    FILE *f = open_dat(p, fig, "images", ipath, err);
    if (!f)
        goto done;
    fprintf(f, "# %s/%s/top/images: one index per image; x y r g b\n", group, model);
    for (int i = 0; i < n; i++)
        rn_plot_write_image(f, img + (size_t)i * c * h * w, c, h, w, (i % top) * cellw,
                            -(i / top) * cellh);
    if (rn_plot_data_close(f, ipath, err))
        goto done;
    if (!(f = open_dat(p, fig, "labels", lpath, err)))
        goto done;
    fprintf(f, "# x y text wrong(0/1)\n");
    for (int i = 0; i < n; i++) {
        double xc = (i % top) * cellw + (w - 1) / 2.0, yb = -(i / top) * cellh - (h - 1) - 0.5;
        fprintf(f, "%g %g \"%.3g\" 0\n", xc, yb - 3.2, val[i]);
    }
    for (int r = 0; r < rows; r++) {
        int j = feat[r], q = rn_argmax(colour + (size_t)j * k, k);
        const char *cn = rn_plot_colour_name(q);
        fprintf(f, "%g %g \"f%d · %s\" 0\n", -label / 2.0 - gap / 2.0,
                -(double)r * cellh - (h - 1) / 2.0, j, cn ? cn : "?");
    }
    if (rn_plot_data_close(f, lpath, err))
        goto done;
    snprintf(title, sizeof title,
             "%s · %s: top %d images of %d colour features (activation under each)", name, model,
             top, rows);
    rn_sbuf_def_str(&defs, "images", ipath);
    rn_sbuf_def_str(&defs, "labels", lpath);
    rn_sbuf_def_str(&defs, "title", title);
    rn_sbuf_printf(&defs, "n=%d; xlo=%g; xhi=%g; ylo=%g; yhi=%g; ", n, -(double)label - gap,
                   top * cellw - gap / 2.0, -(double)rows * cellh + 0.5, 2.5);
    int px = 3, W = (top * cellw + label + gap) * px + 40, H = (rows * cellh + 2) * px + 60;
    rc = rn_plot_draw(p, "samples.gp", fig, W < 500 ? 500 : W, H, &defs, err);
done:
    free(defs.s);
    free(img);
    free(feat);
    free(val);
    free(colour);
    return rc;
}

int rn_sae_plot(struct rn_plotter *p, const char *group, const char *name, char *const *datasets,
                int n_datasets, struct rn_error *err)
{
    struct names N;
    read_names(p, group, &N);
    if (N.n == 0)
        return 0;
    char sname[64], fig[200], title[400];
    char *node = rn_plot_attr_or(p, group, "node", "?"),
         *split = rn_plot_attr_or(p, group, "split", "?"),
         *act = rn_plot_attr_or(p, group, "activation", "relu"),
         *l1 = rn_plot_attr_or(p, group, "l1", "?"), *k = rn_plot_attr_or(p, group, "k", "?"),
         *feat = rn_plot_attr_or(p, group, "features", "?"),
         *tables = rn_plot_attr_or(p, group, "tables_split", "");
    if (strcmp(act, "topk") == 0)
        snprintf(title, sizeof title, "%s · SAE on %s (%s), %s features, TopK k=%s", name, node,
                 split, feat, k);
    else
        snprintf(title, sizeof title, "%s · SAE on %s (%s), %s features, ReLU, L1 %s", name, node,
                 split, feat, l1);
    if (tables[0] && strcmp(tables, split) != 0) {
        size_t len = strlen(title);
        snprintf(title + len, sizeof title - len, " · tables on %s", tables);
    }
    free(tables);
    free(node);
    free(split);
    free(act);
    free(l1);
    free(k);
    free(feat);
    rn_plot_safe_name(sname, sizeof sname, name);
    snprintf(fig, sizeof fig, "%s_training", sname);
    if (plot_training(p, group, fig, title, &N, err))
        return -1;
    snprintf(fig, sizeof fig, "%s_density", sname);
    if (plot_density(p, group, fig, title, &N, err))
        return -1;
    snprintf(fig, sizeof fig, "%s_heatmaps", sname);
    if (plot_heatmaps(p, group, fig, title, &N, err))
        return -1;
    for (int m = 0; m < N.n; m++)
        if (plot_top(p, group, name, N.v[m], err))
            return -1;
    return 0;
}

/* ---- sae_intervene ------------------------------------------------------------------ */

static int iv_probs(struct rn_plotter *p, const char *group, const char *fig, const char *title,
                    const struct names *N, struct rn_error *err)
{
    char dpath[RN_PLOT_PATH_MAX], key[32], cap[300];
    struct rn_sbuf defs = {0};
    int rc = -1, dims[4];
    for (int m = 0; m < N->n; m++) {
        float *pr = NULL, *share = NULL;
        int32_t *feat = NULL, *cnt = NULL;
        int sd[4], ok = -1;
        if (read_model_f32(p, group, N->v[m], "subset_probs", 2, &pr, dims, err) || !pr ||
            read_model_f32(p, group, N->v[m], "subset_share", 2, &share, sd, err) || !share ||
            read_model_i32(p, group, N->v[m], "features", 2, &feat, err) ||
            read_model_i32(p, group, N->v[m], "counts", 3, &cnt, err))
            goto model_done;
        char what[16];
        snprintf(what, sizeof what, "probs%d", m);
        FILE *f = open_dat(p, fig, what, dpath, err);
        if (!f)
            goto model_done;
        fprintf(f, "# class, mean probability: SAE only, feature ablated, swapped\n");
        for (int q = 0; q < dims[1]; q++)
            fprintf(f, "%d %.6f %.6f %.6f\n", q, pr[q], pr[dims[1] + q], pr[2 * dims[1] + q]);
        if (rn_plot_data_close(f, dpath, err))
            goto model_done;
        snprintf(key, sizeof key, "file%d", m);
        rn_sbuf_def_str(&defs, key, dpath);
        snprintf(key, sizeof key, "cap%d", m);
        snprintf(cap, sizeof cap,
                 "%s: feature %d ablated, %d injected · %d inputs · predicted colour's class: "
                 "%.2f -> %.2f (ablated), %.2f (swapped)",
                 N->v[m], feat[0], feat[1], cnt[0], share[0], share[2], share[4]);
        rn_sbuf_def_str(&defs, key, cap);
        ok = 0;
    model_done:
        free(pr);
        free(share);
        free(feat);
        free(cnt);
        if (ok)
            goto done;
    }
    rn_sbuf_def_str(&defs, "title", title);
    def_models(&defs, N);
    rc = rn_plot_draw(p, "sae_iv_probs.gp", fig, 1000, 200 + 330 * N->n, &defs, err);
done:
    free(defs.s);
    return rc;
}

static int iv_bulk(struct rn_plotter *p, const char *group, const char *fig, const char *title,
                   const struct names *N, struct rn_error *err)
{
    char dpath[RN_PLOT_PATH_MAX];
    struct rn_sbuf defs = {0};
    int rc = -1, dims[4];
    FILE *f = open_dat(p, fig, "bars", dpath, err);
    if (!f)
        return -1;
    fprintf(f, "# model, accuracy: clean, SAE, colour features ablated, random others (mean, "
               "sd), features ablated\n");
    for (int m = 0; m < N->n; m++) {
        float *acc = NULL, *bulk = NULL, *rnd = NULL;
        int32_t *cnt = NULL;
        int bd[4], rd[4], ok = -1;
        if (read_model_f32(p, group, N->v[m], "accuracy", 1, &acc, dims, err) || !acc ||
            read_model_f32(p, group, N->v[m], "bulk/accuracy", 1, &bulk, bd, err) || !bulk ||
            read_model_f32(p, group, N->v[m], "bulk/random_accuracy", 1, &rnd, rd, err) || !rnd ||
            read_model_i32(p, group, N->v[m], "counts", 3, &cnt, err))
            goto model_done;
        double mean = 0, ss = 0;
        for (int t = 0; t < rd[0]; t++)
            mean += rnd[t] / rd[0];
        for (int t = 0; t < rd[0]; t++)
            ss += (rnd[t] - mean) * (rnd[t] - mean);
        fprintf(f, "\"%s: %d colour, %d random\" %.6f %.6f %.6f %.6f %.6f %d\n", N->v[m], cnt[1],
                cnt[1] < cnt[2] ? cnt[1] : cnt[2], acc[0], acc[1], bulk[0], mean,
                rd[0] > 1 ? sqrt(ss / (rd[0] - 1)) : 0, cnt[1]);
        ok = 0;
    model_done:
        free(acc);
        free(bulk);
        free(rnd);
        free(cnt);
        if (ok) {
            fclose(f);
            goto done;
        }
    }
    if (rn_plot_data_close(f, dpath, err))
        goto done;
    rn_sbuf_def_str(&defs, "file", dpath);
    rn_sbuf_def_str(&defs, "title", title);
    def_models(&defs, N);
    rc = rn_plot_draw(p, "sae_iv_bulk.gp", fig, 900, 520, &defs, err);
done:
    free(defs.s);
    return rc;
}

static int iv_sweep(struct rn_plotter *p, const char *group, const char *fig, const char *title,
                    const struct names *N, struct rn_error *err)
{
    char dpath[RN_PLOT_PATH_MAX], key[32], cap[200];
    struct rn_sbuf defs = {0};
    int rc = -1, dims[4], sd[4], k = 0;
    for (int m = 0; m < N->n; m++) {
        float *sc = NULL, *pr = NULL;
        int32_t *feat = NULL;
        int ok = -1;
        if (read_model_f32(p, group, N->v[m], "sweep/scales", 1, &sc, sd, err) || !sc ||
            read_model_f32(p, group, N->v[m], "sweep/probs", 2, &pr, dims, err) || !pr ||
            read_model_i32(p, group, N->v[m], "features", 2, &feat, err))
            goto model_done;
        k = dims[1];
        char what[16];
        snprintf(what, sizeof what, "sweep%d", m);
        FILE *f = open_dat(p, fig, what, dpath, err);
        if (!f)
            goto model_done;
        fprintf(f, "# scale, then the mean probability of each class\n");
        for (int t = 0; t < sd[0]; t++) {
            fprintf(f, "%.4f", sc[t]);
            for (int q = 0; q < k; q++)
                fprintf(f, " %.6f", pr[(size_t)t * k + q]);
            fputc('\n', f);
        }
        if (rn_plot_data_close(f, dpath, err))
            goto model_done;
        snprintf(key, sizeof key, "file%d", m);
        rn_sbuf_def_str(&defs, key, dpath);
        snprintf(key, sizeof key, "cap%d", m);
        snprintf(cap, sizeof cap, "%s: feature %d scaled", N->v[m], feat[0]);
        rn_sbuf_def_str(&defs, key, cap);
        ok = 0;
    model_done:
        free(sc);
        free(pr);
        free(feat);
        if (ok)
            goto done;
    }
    rn_sbuf_def_str(&defs, "title", title);
    rn_sbuf_printf(&defs, "k=%d; ", k);
    def_models(&defs, N);
    rc = rn_plot_draw(p, "sae_iv_sweep.gp", fig, 500 * N->n + 200, 520, &defs, err);
done:
    free(defs.s);
    return rc;
}

int rn_sae_intervene_plot(struct rn_plotter *p, const char *group, const char *name,
                          char *const *datasets, int n_datasets, struct rn_error *err)
{
    struct names N;
    read_names(p, group, &N);
    if (N.n == 0)
        return 0;
    char sname[64], fig[200], title[400];
    char *sae = rn_plot_attr_or(p, group, "sae", "?"),
         *split = rn_plot_attr_or(p, group, "split", "?"),
         *colour = rn_plot_attr_or(p, group, "colour", "?"),
         *to = rn_plot_attr_or(p, group, "swap_to", "?");
    rn_plot_safe_name(sname, sizeof sname, name);
    snprintf(title, sizeof title,
             "%s · SAE of %s\n%s inputs on %s: %s feature ablated, swapped for the %s one", name,
             sae, split, colour, colour, to);
    snprintf(fig, sizeof fig, "%s_probs", sname);
    int rc = iv_probs(p, group, fig, title, &N, err);
    snprintf(title, sizeof title,
             "%s · SAE of %s\naccuracy on %s: colour features ablated vs as many random others",
             name, sae, split);
    snprintf(fig, sizeof fig, "%s_bulk", sname);
    rc = rc ? rc : iv_bulk(p, group, fig, title, &N, err);
    snprintf(title, sizeof title, "%s · SAE of %s\n%s inputs on %s: the %s feature scaled", name,
             sae, split, colour, colour);
    snprintf(fig, sizeof fig, "%s_sweep", sname);
    rc = rc ? rc : iv_sweep(p, group, fig, title, &N, err);
    free(sae);
    free(split);
    free(colour);
    free(to);
    return rc;
}
