/* attention_mass.c - the share of Grad-CAM and of saliency mass on
 * background vs stroke pixels over n images, per model, with the
 * background's share of the pixels: the maps turned into numbers. */
#include "common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum {
    ATTENTION_MASS_MODELS,
    ATTENTION_MASS_SPLIT,
    ATTENTION_MASS_N,
    ATTENTION_MASS_NODE,
    ATTENTION_MASS_METHOD,
    ATTENTION_MASS_CLASS,
    ATTENTION_MASS_N_KEYS
};
static const struct rn_key attention_mass_keys[] = {
    [ATTENTION_MASS_MODELS] = {"models", RN_KIND_STRING, 0, 0, "", 1, 0, NULL, RN_MODELS_DOC},
    [ATTENTION_MASS_SPLIT] = {"split", RN_KIND_STRING, 0, 0, "test", 1, 0, NULL,
                              "split of the images"},
    [ATTENTION_MASS_N] = {"n", RN_KIND_INT, 0, 500, NULL, 1, 100000, NULL,
                          "images (the first n of the split)"},
    [ATTENTION_MASS_NODE] = {"node", RN_KIND_STRING, 0, 0, "conv3", 1, 0, NULL, "Grad-CAM node"},
    [ATTENTION_MASS_METHOD] = {"method", RN_KIND_CHOICE, 0, 0, "gradcam", 1, 0, "gradcam|gradcam++",
                               "Grad-CAM variant"},
    [ATTENTION_MASS_CLASS] = {"class", RN_KIND_STRING, 0, 0, "pred", 1, 0, NULL,
                              "Grad-CAM class: pred, true or a class index 0-9"},
};
_Static_assert(RN_N_KEYS(attention_mass_keys) == ATTENTION_MASS_N_KEYS,
               "one schema row per ATTENTION_MASS_ key");

static int check_attention_mass(const struct rn_spec *, const struct rn_spec_analysis *,
                                const struct rn_graph *, int, struct rn_error *);
static int run_attention_mass(struct rn_run *, const struct rn_spec_analysis *, struct rn_error *);
static int plot_attention_mass(struct rn_plotter *, const char *, const char *, char *const *, int,
                               struct rn_error *);
const struct rn_analysis_type rn_analysis_attention_mass = {
    .name = "attention_mass",
    .doc = "share of Grad-CAM and of saliency mass on background vs stroke pixels over n images, "
           "per model, with the background's share of the pixels",
    .keys = attention_mass_keys,
    .n_keys = ATTENTION_MASS_N_KEYS,
    .check = check_attention_mass,
    .run = run_attention_mass,
    .plot = plot_attention_mass,
};

/* ---- check: this run's model; others' are checked when they are loaded ------- */

static int check_attention_mass(const struct rn_spec *spec, const struct rn_spec_analysis *a,
                                const struct rn_graph *g, int logits, struct rn_error *err)
{
    if (!rn_models_use_own(a->v.str[ATTENTION_MASS_MODELS]))
        return 0;
    if (rn_analysis_need_graph(a, g != NULL, err))
        return -1;
    int tap = rn_analysis_node(g, a, ATTENTION_MASS_NODE, err), want;
    if (tap < 0 || rn_gradcam_check_tap(g, a, ATTENTION_MASS_NODE, tap, logits, err) ||
        rn_gradcam_class(a, ATTENTION_MASS_CLASS, g->nodes[logits].layer.out.c, &want, err))
        return -1;
    return 0;
}

/* ---- run ----------------------------------------------------------------- */

/* Share of a map's mass on background pixels; NAN for an all-zero map. */
static float bg_share(const float *map, const uint8_t *mask, int hw)
{
    double bg = 0, tot = 0;
    for (int p = 0; p < hw; p++) {
        tot += map[p];
        if (!mask[p])
            bg += map[p];
    }
    return tot > 0 ? (float)(bg / tot) : NAN;
}

static double mean_finite(const float *v, int n, int *count)
{
    double s = 0;
    int c = 0;
    for (int i = 0; i < n; i++)
        if (isfinite(v[i])) {
            s += v[i];
            c++;
        }
    if (count)
        *count = c;
    return c ? s / c : NAN;
}

static int run_attention_mass(struct rn_run *run, const struct rn_spec_analysis *a,
                              struct rn_error *err)
{
    struct rn_model *models = NULL;
    int nm = 0, rc = -1, want;
    float *cam = NULL, *raw = NULL, *sal = NULL, *gc_bg = NULL, *sal_bg = NULL, *px_bg = NULL;
    uint8_t *masks = NULL;
    double *summary = NULL;
    if (rn_gradcam_class(a, ATTENTION_MASS_CLASS, run->data.n_classes, &want, err) ||
        rn_models_open(run, a, ATTENTION_MASS_MODELS, &models, &nm, err))
        goto done;
    struct rn_split *s = rn_data_split(&run->data, a->v.str[ATTENTION_MASS_SPLIT]);
    if (!s || s->n == 0) {
        rn_analysis_errorf(err, a, ATTENTION_MASS_SPLIT, "no split '%s' with images",
                           a->v.str[ATTENTION_MASS_SPLIT]);
        goto done;
    }
    const int n = (int)a->v.num[ATTENTION_MASS_N] < s->n ? (int)a->v.num[ATTENTION_MASS_N] : s->n;
    const int HW = s->h * s->w, k = run->data.n_classes, bs = 64;
    if (!(cam = rn_malloc(sizeof(float) * (size_t)bs * HW, err)) ||
        !(raw = rn_malloc(sizeof(float) * (size_t)bs * HW, err)) ||
        !(sal = rn_malloc(sizeof(float) * (size_t)bs * HW, err)) ||
        !(gc_bg = rn_malloc(sizeof(float) * (size_t)nm * n, err)) ||
        !(sal_bg = rn_malloc(sizeof(float) * (size_t)nm * n, err)) ||
        !(px_bg = rn_malloc(sizeof(float) * (size_t)n, err)) ||
        !(masks = rn_malloc((size_t)n * HW, err)) ||
        !(summary = rn_calloc((size_t)nm * 4, sizeof(double), err)))
        goto done;
    for (int i = 0; i < n; i++) {
        uint8_t *mk = masks + (size_t)i * HW;
        rn_stroke_mask(s->images + (size_t)i * s->c * HW, s->c, HW, &run->spec->data, mk);
        int bgpx = 0;
        for (int p = 0; p < HW; p++)
            bgpx += !mk[p];
        px_bg[i] = (float)bgpx / HW;
    }
    for (int j = 0; j < nm; j++) {
        struct rn_run *r = models[j].run;
        struct rn_graph *g = &r->graph;
        int tap = rn_analysis_node(g, a, ATTENTION_MASS_NODE, err);
        if (tap < 0 || rn_gradcam_check_tap(g, a, ATTENTION_MASS_NODE, tap, r->logits_node, err))
            goto done;
        const struct rn_shape o = g->nodes[tap].layer.out;
        if (o.h * o.w > HW) {
            rn_analysis_errorf(err, a, ATTENTION_MASS_NODE, "node '%s' is larger than the input",
                               a->v.str[ATTENTION_MASS_NODE]);
            goto done;
        }
        int correct = 0, b = bs < g->max_n ? bs : g->max_n;
        for (int st = 0; st < n; st += b) {
            int m = n - st < b ? n - st : b, classes[64];
            uint8_t labels[64];
            for (int i = 0; i < m; i++) {
                labels[i] = s->labels[st + i];
                classes[i] = want == -2 ? labels[i] : want;
            }
            if (rn_inputs_load(g, s->images, st, m, err) ||
                rn_gradcam(g, m, r->logits_node, tap,
                           rn_gradcam_method(a->v.str[ATTENTION_MASS_METHOD]), classes, raw, cam,
                           r->probs, err))
                goto done;
            for (int i = 0; i < m; i++)
                correct += rn_argmax(r->probs + (size_t)i * k, k) == labels[i];
            if (rn_saliency_map(g, m, r->logits_node, labels, sal, NULL, err))
                goto done;
            for (int i = 0; i < m; i++) {
                const uint8_t *mk = masks + (size_t)(st + i) * HW;
                gc_bg[j * n + st + i] = bg_share(cam + (size_t)i * HW, mk, HW);
                sal_bg[j * n + st + i] = bg_share(sal + (size_t)i * HW, mk, HW);
            }
        }
        int valid;
        summary[j * 4 + 0] = mean_finite(gc_bg + (size_t)j * n, n, &valid);
        summary[j * 4 + 1] = mean_finite(sal_bg + (size_t)j * n, n, NULL);
        summary[j * 4 + 2] = mean_finite(px_bg, n, NULL);
        summary[j * 4 + 3] = (double)correct / n;
        if (!run->opt.quiet)
            fprintf(run->opt.log,
                    "attention_mass %s: %-8s on %d %s images: background holds %.1f%% of the "
                    "Grad-CAM mass (%d non-zero maps), %.1f%% of the saliency mass, %.1f%% of the "
                    "pixels; accuracy %.1f%%\n",
                    a->name, models[j].name, n, s->name, 100 * summary[j * 4], valid,
                    100 * summary[j * 4 + 1], 100 * summary[j * 4 + 2], 100 * summary[j * 4 + 3]);
    }
    char group[256], path[320];
    snprintf(group, sizeof group, "/analyses/%s", a->name);
    int sd[2] = {nm, 4}, vd[2] = {nm, n};
    snprintf(path, sizeof path, "%s/summary", group);
    if (rn_results_write(run->results, path, RN_DTYPE_F64, summary, 2, sd, err))
        goto done;
    snprintf(path, sizeof path, "%s/gradcam_bg", group);
    if (rn_results_write(run->results, path, RN_DTYPE_F32, gc_bg, 2, vd, err))
        goto done;
    snprintf(path, sizeof path, "%s/saliency_bg", group);
    if (rn_results_write(run->results, path, RN_DTYPE_F32, sal_bg, 2, vd, err))
        goto done;
    snprintf(path, sizeof path, "%s/pixel_bg", group);
    if (rn_results_write(run->results, path, RN_DTYPE_F32, px_bg, 1, &vd[1], err) ||
        rn_models_write_names(run, group, models, nm, err) ||
        rn_results_set_attr_str(run->results, group, "kind", "attention_mass", err) ||
        rn_results_set_attr_str(run->results, group, "split", s->name, err) ||
        rn_results_set_attr_str(run->results, group, "method", a->v.str[ATTENTION_MASS_METHOD],
                                err) ||
        rn_results_set_attr_str(run->results, group, "node", a->v.str[ATTENTION_MASS_NODE], err) ||
        rn_results_set_attr_str(run->results, group, "columns",
                                "gradcam_bg saliency_bg pixel_bg accuracy", err))
        goto done;
    rc = 0;
done:
    rn_models_free(models, nm);
    free(cam);
    free(raw);
    free(sal);
    free(gc_bg);
    free(sal_bg);
    free(px_bg);
    free(masks);
    free(summary);
    return rc;
}

/* ---- figure: per model the background's share of each attribution ------------ */

static int plot_attention_mass(struct rn_plotter *p, const char *group, const char *name,
                               char *const *datasets, int n_datasets, struct rn_error *err)
{
    char path[RN_PLOT_PATH_MAX];
    snprintf(path, sizeof path, "%s/summary", group);
    if (!rn_results_exists(p->r, path))
        return 0;
    char dpath[RN_PLOT_PATH_MAX], file[RN_PLOT_PATH_MAX], figure[128], sname[64];
    double *s = NULL;
    int nd, dims[4], rc = -1;
    struct rn_sbuf defs = {0};
    char *names_attr = rn_plot_attr_or(p, group, "models", "model");
    char *split = rn_plot_attr_or(p, group, "split", "");
    char *method = rn_plot_attr_or(p, group, "method", "gradcam");
    char *names[16];
    int nm_names = rn_models_split_names(names_attr, names, 16);
    uint64_t n_images = 0;
    snprintf(path, sizeof path, "%s/summary", group);
    if (rn_results_read(p->r, path, RN_DTYPE_F64, (void **)&s, &nd, dims, err))
        goto done;
    if (nd != 2 || dims[1] < 3) {
        rn_errorf(err, "%s: %s: expected float64 (models, 4)", p->run_dir, path);
        goto done;
    }
    snprintf(path, sizeof path, "%s/pixel_bg", group);
    if (rn_results_exists(p->r, path)) {
        float *px = NULL;
        int pd[4];
        if (rn_plot_read_f32(p, path, 1, &px, pd, NULL) == 0)
            n_images = (uint64_t)pd[0];
        free(px);
    }
    const int nm = dims[0], cols = dims[1];
    rn_plot_safe_name(sname, sizeof sname, name);
    snprintf(figure, sizeof figure, "%s", sname);
    snprintf(file, sizeof file, "%s.dat", figure);
    FILE *f = rn_plot_data_open(p, file, dpath, err);
    if (!f)
        goto done;
    fprintf(f, "# model gradcam_bg(%%) saliency_bg(%%) pixel_bg(%%) accuracy(%%)\n");
    double px = 0;
    for (int j = 0; j < nm; j++) {
        const double *r = s + (size_t)j * cols;
        char label[128];
        if (cols >= 4)
            snprintf(label, sizeof label, "%s (acc %.0f%%)", j < nm_names ? names[j] : "model",
                     100 * r[3]);
        else
            snprintf(label, sizeof label, "%s", j < nm_names ? names[j] : "model");
        fprintf(f, "\"%s\" %.4f %.4f %.4f %.4f\n", label, 100 * r[0], 100 * r[1], 100 * r[2],
                cols >= 4 ? 100 * r[3] : NAN);
        px = r[2];
    }
    if (rn_plot_data_close(f, dpath, err))
        goto done;
    char title[400];
    snprintf(title, sizeof title, "%s\nattribution on background pixels · %llu %s images", name,
             (unsigned long long)n_images, split);
    rn_sbuf_def_str(&defs, "file", dpath);
    rn_sbuf_def_str(&defs, "title", title);
    rn_sbuf_def_str(&defs, "camname", strcmp(method, "gradcam++") == 0 ? "Grad-CAM++" : "Grad-CAM");
    rn_sbuf_printf(&defs, "m=%d; pixel=%.4f; ", nm, 100 * px);
    rc = rn_plot_draw(p, "attention_mass.gp", figure, nm < 3 ? 620 : 260 + 180 * nm, 540, &defs,
                      err);
done:
    free(defs.s);
    free(s);
    free(names_attr);
    free(split);
    free(method);
    return rc;
}
