/* filters.c - the weights of a conv node: RGB images for 3-channel inputs
 * (each filter min-max normalised), per-channel heatmaps otherwise. */
#include "common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { FILTERS_NODE, FILTERS_MAX_FILTERS, FILTERS_MAX_CHANNELS, FILTERS_N_KEYS };
static const struct rn_key filters_keys[] = {
    [FILTERS_NODE] = {"node", RN_KIND_STRING, 0, 0, "conv1", 1, 0, NULL,
                      "conv2d node whose weights are drawn"},
    [FILTERS_MAX_FILTERS] = {"max_filters", RN_KIND_INT, 0, 64, NULL, 1, 1024, NULL,
                             "filters drawn (the first ones)"},
    [FILTERS_MAX_CHANNELS] = {"max_channels", RN_KIND_INT, 0, 8, NULL, 1, 64, NULL,
                              "input channels drawn per filter when the input is not RGB"},
};
_Static_assert(RN_N_KEYS(filters_keys) == FILTERS_N_KEYS, "one schema row per FILTERS_ key");

static int check_filters(const struct rn_spec *, const struct rn_spec_analysis *,
                         const struct rn_graph *, int, struct rn_error *);
static int run_filters(struct rn_run *, const struct rn_spec_analysis *, struct rn_error *);
static int plot_filters(struct rn_plotter *, const char *, const char *, char *const *, int,
                        struct rn_error *);
const struct rn_analysis_type rn_analysis_filters = {
    .name = "filters",
    .doc = "the weights of a conv node: RGB images for 3-channel inputs (each filter min-max "
           "normalised), per-channel heatmaps otherwise (the study's Figure 9)",
    .keys = filters_keys,
    .n_keys = FILTERS_N_KEYS,
    .check = check_filters,
    .run = run_filters,
    .plot = plot_filters,
};

/* ---- check --------------------------------------------------------------- */

/* The conv2d node whose weights a draws, or -1. */
static int filters_node(const struct rn_graph *g, const struct rn_spec_analysis *a, int has_graph,
                        struct rn_error *err)
{
    if (rn_analysis_need_graph(a, has_graph, err))
        return -1;
    int node = rn_analysis_node(g, a, FILTERS_NODE, err);
    if (node < 0)
        return -1;
    const struct rn_layer *l = &g->nodes[node].layer;
    int has_weight = 0;
    for (int i = 0; i < l->n_params; i++)
        has_weight |= strcmp(l->params[i].name, "weight") == 0;
    if (strcmp(l->type->name, "conv2d") != 0 || !has_weight)
        return rn_analysis_errorf(err, a, FILTERS_NODE,
                                  "node '%s' is a %s; filters draws conv2d weights", l->name,
                                  l->type->name);
    return node;
}

static int check_filters(const struct rn_spec *spec, const struct rn_spec_analysis *a,
                         const struct rn_graph *g, int logits, struct rn_error *err)
{
    return filters_node(g, a, g != NULL, err) < 0 ? -1 : 0;
}

/* ---- run ----------------------------------------------------------------- */

static int run_filters(struct rn_run *run, const struct rn_spec_analysis *a, struct rn_error *err)
{
    int node = filters_node(&run->graph, a, run->has_graph, err);
    if (node < 0)
        return -1;
    struct rn_layer *l = &run->graph.nodes[node].layer;
    struct rn_param *wp = rn_layer_param(l, "weight");
    struct rn_tensor stage = {0};
    const struct rn_tensor *t = rn_host_view(&wp->value, &stage, 1, err);
    if (!t)
        return -1;
    char group[256], path[320];
    snprintf(group, sizeof group, "/analyses/%s", a->name);
    snprintf(path, sizeof path, "%s/weights", group);
    int dims[4] = {t->n, t->c, t->h, t->w};
    int rc = rn_results_write(run->results, path, RN_DTYPE_F32, t->data, 4, dims, err);
    rn_tensor_free(&stage);
    if (rc || rn_results_set_attr_str(run->results, group, "kind", "filters", err) ||
        rn_results_set_attr_str(run->results, group, "node", l->name, err) ||
        rn_results_set_attr_u64(run->results, group, "max_filters",
                                (uint64_t)a->v.num[FILTERS_MAX_FILTERS], err) ||
        rn_results_set_attr_u64(run->results, group, "max_channels",
                                (uint64_t)a->v.num[FILTERS_MAX_CHANNELS], err))
        return -1;
    if (!run->opt.quiet)
        fprintf(run->opt.log, "filters %s: %s weights (%d, %d, %d, %d)\n", a->name, l->name, t->n,
                t->c, t->h, t->w);
    return 0;
}

/* ---- figure: a grid of RGB filters, or a heatmap per (filter, channel) ------- */

static int plot_filters(struct rn_plotter *p, const char *group, const char *name,
                        char *const *datasets, int n_datasets, struct rn_error *err)
{
    char path[RN_PLOT_PATH_MAX], dpath[RN_PLOT_PATH_MAX], file[RN_PLOT_PATH_MAX], figure[128],
        sname[64];
    float *wt = NULL;
    int dims[4], rc = -1;
    struct rn_sbuf defs = {0};
    FILE *f = NULL;
    snprintf(path, sizeof path, "%s/weights", group);
    if (!rn_results_exists(p->r, path))
        return 0;
    char *node = rn_plot_attr_or(p, group, "node", "conv");
    snprintf(path, sizeof path, "%s/weights", group);
    if (rn_plot_read_f32(p, path, 4, &wt, dims, err))
        goto done;
    const int O = dims[0], I = dims[1], kh = dims[2], kw = dims[3];
    uint64_t maxf = 64, maxc = 8;
    rn_results_get_attr_u64(p->r, group, "max_filters", &maxf, NULL);
    rn_results_get_attr_u64(p->r, group, "max_channels", &maxc, NULL);
    const int rgb = I == 3;
    int F = O < (int)maxf ? O : (int)maxf;
    int C = rgb ? 1 : (I < (int)maxc ? I : (int)maxc);
    if (!rgb && F > 32)
        F = 32; /* one row per filter: more would not be readable */
    rn_plot_safe_name(sname, sizeof sname, name);
    snprintf(figure, sizeof figure, "%s", sname);
    snprintf(file, sizeof file, "%s.dat", figure);
    if (!(f = rn_plot_data_open(p, file, dpath, err)))
        goto done;
    const size_t per = (size_t)I * kh * kw, kk = (size_t)kh * kw;
    int ncols, nrows, gap = 1;
    double vmax = 0;
    if (rgb) {
        /* A grid of RGB images, each filter min-max normalised over its
         * 3 x kh x kw weights (the study's Figure 9). */
        ncols = F <= 16 ? F : F <= 64 ? 8 : 16;
        nrows = (F + ncols - 1) / ncols;
        fprintf(f, "# %s: one index per filter; x y r g b (each filter min-max normalised)\n",
                path);
        for (int o = 0; o < F; o++) {
            const float *w = wt + (size_t)o * per;
            float lo = w[0], hi = w[0];
            for (size_t q = 1; q < per; q++) {
                lo = w[q] < lo ? w[q] : lo;
                hi = w[q] > hi ? w[q] : hi;
            }
            float sc = hi > lo ? 255.0f / (hi - lo) : 0;
            uint8_t img[3 * 64];
            if (kk > 64) {
                rn_errorf(err, "%s: %s: %dx%d kernels are too large to draw", p->run_dir, path, kh,
                          kw);
                goto done;
            }
            for (size_t q = 0; q < per; q++)
                img[q] = (uint8_t)lroundf((w[q] - lo) * sc);
            rn_plot_write_image(f, img, 3, kh, kw, (o % ncols) * (kw + gap),
                                -(o / ncols) * (kh + gap + 1));
        }
    } else {
        /* One row per filter, one heatmap per input channel; one symmetric
         * colour scale for all. */
        ncols = C;
        nrows = F;
        for (int o = 0; o < F; o++)
            for (int c = 0; c < C; c++)
                for (size_t q = 0; q < kk; q++) {
                    double v = fabs(wt[(size_t)o * per + (size_t)c * kk + q]);
                    vmax = v > vmax ? v : vmax;
                }
        fprintf(f, "# %s: one index per (filter, channel); x y weight\n", path);
        for (int o = 0; o < F; o++)
            for (int c = 0; c < C; c++)
                rn_plot_write_map(f, wt + (size_t)o * per + (size_t)c * kk, kh, kw, 1.0,
                                  c * (kw + gap), -o * (kh + gap));
    }
    if (rn_plot_data_close(f, dpath, err)) {
        f = NULL;
        goto done;
    }
    f = NULL;
    char title[400], xl[200], yl[200];
    if (rgb) {
        snprintf(title, sizeof title, "%s filters (%d of %d, %dx%d, RGB) · each min-max normalised",
                 node, F, O, kh, kw);
        snprintf(xl, sizeof xl, "filters, %d per row, left to right", ncols);
        snprintf(yl, sizeof yl, "%s", "");
    } else {
        snprintf(title, sizeof title, "%s weights · %d of %d filters x %d of %d input channels",
                 node, F, O, C, I);
        snprintf(xl, sizeof xl, "input channel");
        snprintf(yl, sizeof yl, "filter");
    }
    int cellw = kw + gap, cellh = rgb ? kh + gap + 1 : kh + gap;
    rn_sbuf_def_str(&defs, "file", dpath);
    rn_sbuf_def_str(&defs, "title", title);
    rn_sbuf_def_str(&defs, "xlabel", xl);
    rn_sbuf_def_str(&defs, "ylabel", yl);
    rn_sbuf_printf(&defs,
                   "rgb=%d; n=%d; ncols=%d; nrows=%d; kw=%d; kh=%d; cellw=%d; cellh=%d; "
                   "vmax=%.6g; ",
                   rgb, rgb ? F : F * C, ncols, nrows, kw, kh, cellw, cellh, vmax > 0 ? vmax : 1);
    /* Big pixels: 14 screen pixels per weight for RGB filters, 8 for heatmaps. */
    int px = rgb ? 14 : 8;
    int W = ncols * cellw * px + (rgb ? 80 : 220), H = nrows * cellh * px + 110;
    if (W < 620)
        W = 620;
    rc = rn_plot_draw(p, "filters.gp", figure, W, H, &defs, err);
done:
    if (f)
        fclose(f);
    free(defs.s);
    free(wt);
    free(node);
    return rc;
}
