/* saliency.c - saliency maps, |d CE / d input| summed over channels (CE on
 * the true label), of several models side by side. */
#include "common.h"

#include <stdlib.h>
#include <string.h>

enum {
    SALIENCY_MODELS,
    SALIENCY_CASES,
    SALIENCY_SPLIT,
    SALIENCY_N,
    SALIENCY_DIGIT,
    SALIENCY_COLOUR,
    SALIENCY_PREDICTED,
    SALIENCY_INDEX,
    SALIENCY_N_KEYS
};
static const struct rn_key saliency_keys[] = {
    [SALIENCY_MODELS] = {"models", RN_KIND_STRING, 0, 0, "", 1, 0, NULL, RN_MODELS_DOC},
    [SALIENCY_CASES] = {"cases", RN_KIND_STRING, 0, 0, "", 1, 0, NULL, RN_CASES_DOC},
    [SALIENCY_SPLIT] = {"split", RN_KIND_STRING, 0, 0, "test", 1, 0, NULL,
                        "split of the inputs when there are no cases"},
    [SALIENCY_N] = {"n", RN_KIND_INT, 0, 6, NULL, 1, RN_ANALYSIS_MAX_SHOWN, NULL,
                    "inputs taken from split when there are no cases"},
    [SALIENCY_DIGIT] = RN_INPUT_DIGIT_KEY,
    [SALIENCY_COLOUR] = RN_INPUT_COLOUR_KEY,
    [SALIENCY_PREDICTED] = RN_INPUT_PREDICTED_KEY,
    [SALIENCY_INDEX] = RN_INPUT_INDEX_KEY,
};
_Static_assert(RN_N_KEYS(saliency_keys) == SALIENCY_N_KEYS, "one schema row per SALIENCY_ key");
static const struct rn_input_keys input_keys = {SALIENCY_CASES, SALIENCY_SPLIT,  SALIENCY_N,
                                                SALIENCY_DIGIT, SALIENCY_COLOUR, SALIENCY_PREDICTED,
                                                SALIENCY_INDEX};

static int check_saliency(const struct rn_spec *, const struct rn_spec_analysis *,
                          const struct rn_graph *, int, struct rn_error *);
static int run_saliency(struct rn_run *, const struct rn_spec_analysis *, struct rn_error *);
static int plot_saliency(struct rn_plotter *, const char *, const char *, char *const *, int,
                         struct rn_error *);
const struct rn_analysis_type rn_analysis_saliency = {
    .name = "saliency",
    .doc = "saliency maps: |d CE / d input| summed over channels (CE on the true label), "
           "several models side by side",
    .keys = saliency_keys,
    .n_keys = SALIENCY_N_KEYS,
    .check = check_saliency,
    .run = run_saliency,
    .plot = plot_saliency,
};

/* ---- check: the models of other runs are checked when they are loaded ------- */

static int check_saliency(const struct rn_spec *spec, const struct rn_spec_analysis *a,
                          const struct rn_graph *g, int logits, struct rn_error *err)
{
    if (rn_models_use_own(a->v.str[SALIENCY_MODELS]))
        return rn_analysis_need_graph(a, g != NULL, err);
    return 0;
}

/* ---- run ----------------------------------------------------------------- */

static int run_saliency(struct rn_run *run, const struct rn_spec_analysis *a, struct rn_error *err)
{
    struct rn_model *models = NULL;
    int nm = 0, rc = -1;
    struct rn_inputs in;
    memset(&in, 0, sizeof in);
    float *maps = NULL, *probs = NULL;
    int32_t *preds = NULL;
    if (rn_models_open(run, a, SALIENCY_MODELS, &models, &nm, err) ||
        rn_inputs_build(run, a, input_keys, &in, err))
        goto done;
    const int k = run->data.n_classes, HW = in.h * in.w;
    if (!(maps = rn_malloc(sizeof(float) * (size_t)nm * in.n * HW, err)) ||
        !(probs = rn_malloc(sizeof(float) * (size_t)in.n * k, err)) ||
        !(preds = rn_malloc(sizeof(int32_t) * (size_t)nm * in.n, err)))
        goto done;
    uint8_t labels[RN_ANALYSIS_MAX_INPUTS];
    for (int i = 0; i < in.n; i++)
        labels[i] = (uint8_t)in.labels[i];
    for (int j = 0; j < nm; j++) {
        struct rn_run *r = models[j].run;
        struct rn_graph *g = &r->graph;
        for (int s = 0, bs = rn_inputs_batch(g); s < in.n; s += bs) {
            int m = in.n - s < bs ? in.n - s : bs;
            if (rn_inputs_load(g, in.images, s, m, err) ||
                rn_saliency_map(g, m, r->logits_node, labels + s,
                                maps + ((size_t)j * in.n + s) * HW, probs + (size_t)s * k, err))
                goto done;
        }
        for (int i = 0; i < in.n; i++)
            preds[j * in.n + i] = rn_argmax(probs + (size_t)i * k, k);
    }
    char group[256], path[320];
    snprintf(group, sizeof group, "/analyses/%s", a->name);
    int md[4] = {nm, in.n, in.h, in.w}, pd[2] = {nm, in.n};
    if (rn_inputs_write(run, group, &in, err))
        goto done;
    snprintf(path, sizeof path, "%s/maps", group);
    if (rn_results_write(run->results, path, RN_DTYPE_F32, maps, 4, md, err))
        goto done;
    snprintf(path, sizeof path, "%s/preds", group);
    if (rn_results_write(run->results, path, RN_DTYPE_I32, preds, 2, pd, err) ||
        rn_models_write_names(run, group, models, nm, err) ||
        rn_results_set_attr_str(run->results, group, "kind", "saliency", err))
        goto done;
    if (!run->opt.quiet)
        for (int j = 0; j < nm; j++) {
            double bg = 0, tot = 0;
            for (size_t p = 0; p < (size_t)in.n * HW; p++) {
                float v = maps[(size_t)j * in.n * HW + p];
                tot += v;
                bg += in.masks[p] ? 0 : v;
            }
            fprintf(run->opt.log, "saliency %s: %-8s %.0f%% of the |gradient| on the background\n",
                    a->name, models[j].name, tot > 0 ? 100 * bg / tot : 0.0);
        }
    rc = 0;
done:
    rn_models_free(models, nm);
    rn_inputs_free(&in);
    free(maps);
    free(probs);
    free(preds);
    return rc;
}

/* ---- figure: per input the image, then each model's map ---------------------- */

static int plot_saliency(struct rn_plotter *p, const char *group, const char *name,
                         char *const *datasets, int n_datasets, struct rn_error *err)
{
    char path[RN_PLOT_PATH_MAX];
    snprintf(path, sizeof path, "%s/maps", group);
    if (!rn_results_exists(p->r, path))
        return 0;
    char dpath[RN_PLOT_PATH_MAX], file[RN_PLOT_PATH_MAX], figure[128], sname[64];
    char stem[RN_PLOT_PATH_MAX];
    struct rn_plot_inputs in;
    float *maps = NULL;
    int32_t *preds = NULL;
    int dims[4], rc = -1;
    struct rn_sbuf defs = {0};
    char *names_attr = rn_plot_attr_or(p, group, "models", "model");
    char *names[16];
    int nm_names = rn_models_split_names(names_attr, names, 16);
    if (rn_plot_inputs_read(p, group, &in, err))
        goto done;
    snprintf(path, sizeof path, "%s/maps", group);
    if (rn_plot_read_f32(p, path, 4, &maps, dims, err))
        goto done;
    const int nm = dims[0], hw = in.h * in.w;
    if (dims[1] != in.n || dims[2] != in.h || dims[3] != in.w) {
        rn_errorf(err, "%s: %s/maps (%d,%d,%d,%d) does not match the %d (%dx%d) images", p->run_dir,
                  group, dims[0], dims[1], dims[2], dims[3], in.n, in.h, in.w);
        goto done;
    }
    snprintf(path, sizeof path, "%s/preds", group);
    if (rn_results_exists(p->r, path)) {
        int nd, pd[4];
        if (rn_results_read(p->r, path, RN_DTYPE_I32, (void **)&preds, &nd, pd, err))
            goto done;
        if (nd != 2 || pd[0] != nm || pd[1] != in.n) {
            rn_errorf(err, "%s: %s: expected int32 (%d, %d)", p->run_dir, path, nm, in.n);
            goto done;
        }
    }
    rn_plot_safe_name(sname, sizeof sname, name);
    snprintf(figure, sizeof figure, "%s", sname);
    snprintf(stem, sizeof stem, "%s/%s", p->data_dir, figure);
    for (int i = 0; i < in.n; i++) {
        FILE *f;
        snprintf(file, sizeof file, "%s_%d_image.dat", figure, i);
        if (!(f = rn_plot_data_open(p, file, dpath, err)))
            goto done;
        rn_plot_write_image(f, in.img + (size_t)i * in.c * hw, in.c, in.h, in.w, 0, 0);
        if (rn_plot_data_close(f, dpath, err))
            goto done;
        char cap[160], key[32];
        rn_plot_inputs_caption(&in, i, cap, sizeof cap);
        snprintf(key, sizeof key, "cap%d", i);
        rn_sbuf_def_str(&defs, key, cap);
        for (int j = 0; j < nm; j++) {
            const float *m = maps + ((size_t)j * in.n + i) * hw;
            float mx = 0;
            double bg = 0, tot = 0;
            for (int q = 0; q < hw; q++) {
                mx = m[q] > mx ? m[q] : mx;
                tot += m[q];
                bg += rn_plot_inputs_is_stroke(&in, i, (size_t)q) ? 0 : m[q];
            }
            snprintf(file, sizeof file, "%s_%d_%d.dat", figure, i, j);
            if (!(f = rn_plot_data_open(p, file, dpath, err)))
                goto done;
            fprintf(f, "# |d CE / d x| summed over channels / its max (%.6g); x y value\n", mx);
            rn_plot_write_map(f, m, in.h, in.w, mx > 0 ? 1.0 / mx : 0.0, 0, 0);
            if (rn_plot_data_close(f, dpath, err))
                goto done;
            char t[200];
            const char *mn = j < nm_names ? names[j] : "model";
            if (preds)
                snprintf(t, sizeof t, "%s: predicted %d · %.0f%% bg", mn, preds[j * in.n + i],
                         tot > 0 ? 100 * bg / tot : 0.0);
            else
                snprintf(t, sizeof t, "%s · %.0f%% bg", mn, tot > 0 ? 100 * bg / tot : 0.0);
            snprintf(key, sizeof key, "t%d_%d", i, j);
            rn_sbuf_def_str(&defs, key, t);
            rn_sbuf_printf(&defs, "wrong%d_%d=%d; ", i, j,
                           preds && preds[j * in.n + i] != in.labels[i]);
        }
    }
    char title[400];
    snprintf(title, sizeof title,
             "%s · saliency |d CE(true label) / d input|\nsummed over "
             "channels, each map scaled to its maximum; %% = share on the background",
             name);
    rn_sbuf_def_str(&defs, "stem", stem);
    rn_sbuf_def_str(&defs, "title", title);
    rn_sbuf_printf(&defs, "n=%d; m=%d; iw=%d; ih=%d; ", in.n, nm, in.w, in.h);
    int W = 230 * (nm + 1) + 120, H = 100 + 230 * in.n;
    if (W < 700)
        W = 700;
    rc = rn_plot_draw(p, "saliency.gp", figure, W, H, &defs, err);
done:
    rn_plot_inputs_free(&in);
    free(defs.s);
    free(maps);
    free(preds);
    free(names_attr);
    return rc;
}
