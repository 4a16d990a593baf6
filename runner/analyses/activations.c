/* activations.c - the feature maps of a node for chosen inputs, beside the
 * input. */
#include "common.h"

#include <stdlib.h>
#include <string.h>

enum {
    ACTIVATIONS_NODE,
    ACTIVATIONS_CASES,
    ACTIVATIONS_SPLIT,
    ACTIVATIONS_N,
    ACTIVATIONS_MAX_MAPS,
    ACTIVATIONS_N_KEYS
};
static const struct rn_key activations_keys[] = {
    [ACTIVATIONS_NODE] = {"node", RN_KIND_STRING, 0, 0, "conv1", 1, 0, NULL,
                          "node whose output maps are drawn"},
    [ACTIVATIONS_CASES] = {"cases", RN_KIND_STRING, 0, 0, "", 1, 0, NULL, RN_CASES_DOC},
    [ACTIVATIONS_SPLIT] = {"split", RN_KIND_STRING, 0, 0, "test", 1, 0, NULL,
                           "split of the inputs when there are no cases"},
    [ACTIVATIONS_N] = {"n", RN_KIND_INT, 0, 1, NULL, 1, RN_ANALYSIS_MAX_SHOWN, NULL,
                       "inputs taken from split when there are no cases"},
    [ACTIVATIONS_MAX_MAPS] = {"max_maps", RN_KIND_INT, 0, 32, NULL, 1, 256, NULL,
                              "channels drawn (the first ones)"},
};
_Static_assert(RN_N_KEYS(activations_keys) == ACTIVATIONS_N_KEYS,
               "one schema row per ACTIVATIONS_ key");
static const struct rn_input_keys input_keys = {
    ACTIVATIONS_CASES, ACTIVATIONS_SPLIT, ACTIVATIONS_N, -1, -1, -1, -1};

static int check_activations(const struct rn_spec *, const struct rn_spec_analysis *,
                             const struct rn_graph *, int, struct rn_error *);
static int run_activations(struct rn_run *, const struct rn_spec_analysis *, struct rn_error *);
static int plot_activations(struct rn_plotter *, const char *, const char *, char *const *, int,
                            struct rn_error *);
const struct rn_analysis_type rn_analysis_activations = {
    .name = "activations",
    .doc = "the feature maps of a node for chosen inputs, beside the input (the study's Figure 10)",
    .keys = activations_keys,
    .n_keys = ACTIVATIONS_N_KEYS,
    .check = check_activations,
    .run = run_activations,
    .plot = plot_activations,
};

/* ---- check --------------------------------------------------------------- */

static int check_activations(const struct rn_spec *spec, const struct rn_spec_analysis *a,
                             const struct rn_graph *g, int logits, struct rn_error *err)
{
    if (rn_analysis_need_graph(a, g != NULL, err) ||
        rn_analysis_node(g, a, ACTIVATIONS_NODE, err) < 0)
        return -1;
    return 0;
}

/* ---- run ----------------------------------------------------------------- */

static int run_activations(struct rn_run *run, const struct rn_spec_analysis *a,
                           struct rn_error *err)
{
    if (rn_analysis_need_graph(a, run->has_graph, err))
        return -1;
    struct rn_graph *g = &run->graph;
    int node = rn_analysis_node(g, a, ACTIVATIONS_NODE, err);
    if (node < 0)
        return -1;
    struct rn_inputs in;
    float *maps = NULL, *probs = NULL;
    int rc = -1;
    if (rn_inputs_build(run, a, input_keys, &in, err))
        goto done;
    const struct rn_shape o = g->nodes[node].layer.out;
    const int M =
        (int)a->v.num[ACTIVATIONS_MAX_MAPS] < o.c ? (int)a->v.num[ACTIVATIONS_MAX_MAPS] : o.c;
    const int k = run->data.n_classes, per = o.h * o.w;
    int preds[RN_ANALYSIS_MAX_INPUTS];
    if (!(maps = rn_malloc(sizeof(float) * (size_t)in.n * M * per, err)) ||
        !(probs = rn_malloc(sizeof(float) * (size_t)in.n * k, err)))
        goto done;
    for (int s = 0, bs = rn_inputs_batch(g); s < in.n; s += bs) {
        int m = in.n - s < bs ? in.n - s : bs;
        if (rn_inputs_load(g, in.images, s, m, err) ||
            rn_run_predict(run, m, probs + (size_t)s * k, err))
            goto done;
        const struct rn_tensor *y = rn_graph_output_host(g, node, err);
        if (!y)
            goto done;
        for (int i = 0; i < m; i++) {
            preds[s + i] = rn_argmax(probs + (size_t)(s + i) * k, k);
            memcpy(maps + (size_t)(s + i) * M * per, y->data + (size_t)i * o.c * per,
                   sizeof(float) * (size_t)M * per);
        }
    }
    char group[256], path[320];
    snprintf(group, sizeof group, "/analyses/%s", a->name);
    int dims[4] = {in.n, M, o.h, o.w}, pd[2] = {in.n, k};
    snprintf(path, sizeof path, "%s/maps", group);
    if (rn_inputs_write(run, group, &in, err) ||
        rn_results_write(run->results, path, RN_DTYPE_F32, maps, 4, dims, err))
        goto done;
    snprintf(path, sizeof path, "%s/preds", group);
    if (rn_results_write(run->results, path, RN_DTYPE_I32, preds, 1, &in.n, err))
        goto done;
    snprintf(path, sizeof path, "%s/probs", group);
    if (rn_results_write(run->results, path, RN_DTYPE_F32, probs, 2, pd, err) ||
        rn_results_set_attr_str(run->results, group, "kind", "activations", err) ||
        rn_results_set_attr_str(run->results, group, "node", g->nodes[node].layer.name, err) ||
        rn_results_set_attr_u64(run->results, group, "channels", (uint64_t)o.c, err))
        goto done;
    if (!run->opt.quiet)
        fprintf(run->opt.log, "activations %s: %d of %d maps of %s (%dx%d) for %d input%s\n",
                a->name, M, o.c, g->nodes[node].layer.name, o.h, o.w, in.n, in.n == 1 ? "" : "s");
    rc = 0;
done:
    rn_inputs_free(&in);
    free(maps);
    free(probs);
    return rc;
}

/* ---- figure: one per input, the image beside its maps ------------------------ */

static int plot_activations(struct rn_plotter *p, const char *group, const char *name,
                            char *const *datasets, int n_datasets, struct rn_error *err)
{
    char path[RN_PLOT_PATH_MAX];
    snprintf(path, sizeof path, "%s/maps", group);
    if (!rn_results_exists(p->r, path))
        return 0;
    char ipath[RN_PLOT_PATH_MAX], mpath[RN_PLOT_PATH_MAX], file[RN_PLOT_PATH_MAX];
    char figure[160], sname[64];
    struct rn_plot_inputs in;
    float *maps = NULL;
    int32_t *preds = NULL;
    int dims[4], rc = -1;
    struct rn_sbuf defs = {0};
    char *node = rn_plot_attr_or(p, group, "node", "node");
    if (rn_plot_inputs_read(p, group, &in, err))
        goto done;
    snprintf(path, sizeof path, "%s/maps", group);
    if (rn_plot_read_f32(p, path, 4, &maps, dims, err))
        goto done;
    snprintf(path, sizeof path, "%s/preds", group);
    if (rn_plot_read_vector(p, path, in.n, 0, &preds, err))
        goto done;
    const int M = dims[1], h = dims[2], w = dims[3];
    if (dims[0] != in.n) {
        rn_errorf(err, "%s: %s/maps: %d inputs, images has %d", p->run_dir, group, dims[0], in.n);
        goto done;
    }
    uint64_t channels = (uint64_t)M;
    rn_results_get_attr_u64(p->r, group, "channels", &channels, NULL);
    rn_plot_safe_name(sname, sizeof sname, name);
    const int ncols = M < 8 ? M : 8, nrows = (M + ncols - 1) / ncols, gap = w / 7 + 1;
    for (int i = 0; i < in.n; i++) {
        FILE *f;
        free(defs.s);
        defs = (struct rn_sbuf){0};
        if (in.n == 1)
            snprintf(figure, sizeof figure, "%s", sname);
        else
            snprintf(figure, sizeof figure, "%s_%d", sname, i);
        snprintf(file, sizeof file, "%s_image.dat", figure);
        if (!(f = rn_plot_data_open(p, file, ipath, err)))
            goto done;
        rn_plot_write_image(f, in.img + (size_t)i * in.c * in.h * in.w, in.c, in.h, in.w, 0, 0);
        if (rn_plot_data_close(f, ipath, err))
            goto done;
        snprintf(file, sizeof file, "%s_maps.dat", figure);
        if (!(f = rn_plot_data_open(p, file, mpath, err)))
            goto done;
        fprintf(f, "# %s/maps[%d]: one index per channel; x y activation\n", group, i);
        float lo = 0, hi = 0;
        const float *mi = maps + (size_t)i * M * h * w;
        for (size_t q = 0; q < (size_t)M * h * w; q++) {
            lo = mi[q] < lo ? mi[q] : lo;
            hi = mi[q] > hi ? mi[q] : hi;
        }
        for (int c = 0; c < M; c++)
            rn_plot_write_map(f, mi + (size_t)c * h * w, h, w, 1.0, (c % ncols) * (w + gap),
                              -(c / ncols) * (h + gap));
        if (rn_plot_data_close(f, mpath, err))
            goto done;
        char cap[160], title[400];
        rn_plot_inputs_caption(&in, i, cap, sizeof cap);
        if (preds)
            snprintf(title, sizeof title,
                     "%s activations (%d of %llu maps, %dx%d) · %s · "
                     "predicted %d",
                     node, M, (unsigned long long)channels, h, w, cap, preds[i]);
        else
            snprintf(title, sizeof title, "%s activations (%d of %llu maps, %dx%d) · %s", node, M,
                     (unsigned long long)channels, h, w, cap);
        rn_sbuf_def_str(&defs, "image", ipath);
        rn_sbuf_def_str(&defs, "maps", mpath);
        rn_sbuf_def_str(&defs, "title", title);
        rn_sbuf_def_str(&defs, "caption", cap);
        rn_sbuf_printf(&defs,
                       "iw=%d; ih=%d; n=%d; ncols=%d; nrows=%d; mw=%d; mh=%d; gap=%d; "
                       "lo=%.6g; hi=%.6g; ",
                       in.w, in.h, M, ncols, nrows, w, h, gap, lo, hi > lo ? hi : lo + 1);
        int px = h >= 20 ? 4 : 10;
        int W = 360 + ncols * (w + gap) * px + 260, H = nrows * (h + gap) * px + 120;
        if (H < 420)
            H = 420;
        if (rn_plot_draw(p, "activations.gp", figure, W, H, &defs, err))
            goto done;
    }
    rc = 0;
done:
    free(defs.s);
    rn_plot_inputs_free(&in);
    free(maps);
    free(preds);
    free(node);
    return rc;
}
