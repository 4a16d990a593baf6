/* gradcam.c - Grad-CAM (or Grad-CAM++) maps at a node, upsampled to the
 * input, per input: image, class probabilities, jet overlay; with `methods`,
 * several variants for the same inputs side by side (a column each). Also
 * the helpers for the Grad-CAM keys that attention_mass shares (common.h). */
#include "common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum {
    GRADCAM_NODE,
    GRADCAM_METHOD,
    GRADCAM_METHODS,
    GRADCAM_CLASS,
    GRADCAM_CASES,
    GRADCAM_SPLIT,
    GRADCAM_N,
    GRADCAM_DIGIT,
    GRADCAM_COLOUR,
    GRADCAM_PREDICTED,
    GRADCAM_INDEX,
    GRADCAM_N_KEYS
};
static const struct rn_key gradcam_keys[] = {
    [GRADCAM_NODE] =
        {"node", RN_KIND_STRING, 0, 0, "conv3", 1, 0, NULL,
         "node whose output A is explained (the study: conv3, before its relu and pool)"},
    [GRADCAM_METHOD] = {"method", RN_KIND_CHOICE, 0, 0, "gradcam", 1, 0, "gradcam|gradcam++",
                        "gradcam: weights = spatial mean of dy_c/dA; gradcam++: Chattopadhyay et "
                        "al.'s closed form"},
    [GRADCAM_METHODS] = {"methods", RN_KIND_STRING, 0, 0, "", 1, 0, NULL,
                         "several methods side by side for the same inputs, a column each: a "
                         "list such as [gradcam, gradcam++] (see 'List-valued analysis keys'); "
                         "empty = method alone"},
    [GRADCAM_CLASS] = {"class", RN_KIND_STRING, 0, 0, "pred", 1, 0, NULL,
                       "class explained: pred, true or a class index 0-9"},
    [GRADCAM_CASES] = {"cases", RN_KIND_STRING, 0, 0, "", 1, 0, NULL, RN_CASES_DOC},
    [GRADCAM_SPLIT] = {"split", RN_KIND_STRING, 0, 0, "test", 1, 0, NULL,
                       "split of the inputs when there are no cases"},
    [GRADCAM_N] = {"n", RN_KIND_INT, 0, 6, NULL, 1, RN_ANALYSIS_MAX_SHOWN, NULL,
                   "inputs taken from split when there are no cases"},
    [GRADCAM_DIGIT] = RN_INPUT_DIGIT_KEY,
    [GRADCAM_COLOUR] = RN_INPUT_COLOUR_KEY,
    [GRADCAM_PREDICTED] = RN_INPUT_PREDICTED_KEY,
    [GRADCAM_INDEX] = RN_INPUT_INDEX_KEY,
};
_Static_assert(RN_N_KEYS(gradcam_keys) == GRADCAM_N_KEYS, "one schema row per GRADCAM_ key");
static const struct rn_input_keys input_keys = {GRADCAM_CASES, GRADCAM_SPLIT,  GRADCAM_N,
                                                GRADCAM_DIGIT, GRADCAM_COLOUR, GRADCAM_PREDICTED,
                                                GRADCAM_INDEX};

static int check_gradcam(const struct rn_spec *, const struct rn_spec_analysis *,
                         const struct rn_graph *, int, struct rn_error *);
static int run_gradcam(struct rn_run *, const struct rn_spec_analysis *, struct rn_error *);
static int plot_gradcam(struct rn_plotter *, const char *, const char *, char *const *, int,
                        struct rn_error *);
const struct rn_analysis_type rn_analysis_gradcam = {
    .name = "gradcam",
    .doc = "Grad-CAM (or Grad-CAM++) maps upsampled to the input, per input: image, class "
           "probabilities, jet overlay",
    .keys = gradcam_keys,
    .n_keys = GRADCAM_N_KEYS,
    .check = check_gradcam,
    .run = run_gradcam,
    .plot = plot_gradcam,
};

/* ---- the Grad-CAM keys (common.h) ---------------------------------------- */

int rn_gradcam_class(const struct rn_spec_analysis *a, int key, int k, int *out,
                     struct rn_error *err)
{
    const char *s = a->v.str[key];
    char *end;
    long c = strtol(s, &end, 10);
    if (strcmp(s, "pred") == 0)
        *out = -1;
    else if (strcmp(s, "true") == 0)
        *out = -2;
    else if (*s && !*end && c >= 0 && c < k)
        *out = (int)c;
    else
        return rn_analysis_errorf(err, a, key,
                                  "expected pred, true or a class index 0-%d, got '%s'", k - 1, s);
    return 0;
}

enum rn_cam_method rn_gradcam_method(const char *method)
{
    return strcmp(method, "gradcam++") == 0 ? RN_CAM_GRADCAM_PP : RN_CAM_GRADCAM;
}

int rn_gradcam_check_tap(const struct rn_graph *g, const struct rn_spec_analysis *a, int key,
                         int tap, int logits, struct rn_error *err)
{
    const struct rn_shape o = g->nodes[tap].layer.out;
    if (tap >= logits || o.h * o.w < 2)
        return rn_analysis_errorf(err, a, key,
                                  "node '%s' gives (%d,%d,%d): Grad-CAM needs a spatial map "
                                  "before the logits (e.g. the last conv)",
                                  g->nodes[tap].layer.name, o.c, o.h, o.w);
    return 0;
}

/* ---- check --------------------------------------------------------------- */

static int check_gradcam(const struct rn_spec *spec, const struct rn_spec_analysis *a,
                         const struct rn_graph *g, int logits, struct rn_error *err)
{
    if (rn_analysis_need_graph(a, g != NULL, err))
        return -1;
    int tap = rn_analysis_node(g, a, GRADCAM_NODE, err), want;
    if (tap < 0 || rn_gradcam_check_tap(g, a, GRADCAM_NODE, tap, logits, err) ||
        rn_gradcam_class(a, GRADCAM_CLASS, g->nodes[logits].layer.out.c, &want, err))
        return -1;
    if (a->v.given[GRADCAM_METHOD] && a->v.str[GRADCAM_METHODS][0])
        return rn_analysis_errorf(err, a, GRADCAM_METHODS,
                                  "give method or methods, not both (methods: [%s, ...] draws "
                                  "them side by side)",
                                  a->v.str[GRADCAM_METHOD]);
    return 0;
}

/* The methods of a: its `methods` list ("gradcam; gradcam++" as the spec
 * stores it), else its `method`. Returns their count (at most max). */
static int gradcam_methods(const struct rn_spec_analysis *a, char names[][16], int max)
{
    const char *p = a->v.str[GRADCAM_METHODS];
    int n = 0;
    while (*p && n < max) {
        p += strspn(p, "; ");
        size_t len = strcspn(p, "; ");
        if (len)
            snprintf(names[n++], 16, "%.*s", (int)len, p);
        p += len;
    }
    if (n == 0)
        snprintf(names[n++], 16, "%s", a->v.str[GRADCAM_METHOD]);
    return n;
}

/* ---- run ----------------------------------------------------------------- */

static int run_gradcam(struct rn_run *run, const struct rn_spec_analysis *a, struct rn_error *err)
{
    if (rn_analysis_need_graph(a, run->has_graph, err))
        return -1;
    struct rn_graph *g = &run->graph;
    int tap = rn_analysis_node(g, a, GRADCAM_NODE, err), want;
    if (tap < 0 || rn_gradcam_check_tap(g, a, GRADCAM_NODE, tap, run->logits_node, err) ||
        rn_gradcam_class(a, GRADCAM_CLASS, run->data.n_classes, &want, err))
        return -1;
    struct rn_inputs in;
    float *raw = NULL, *maps = NULL, *probs = NULL;
    char methods[4][16];
    const int nm = gradcam_methods(a, methods, 4);
    int rc = -1;
    if (rn_inputs_build(run, a, input_keys, &in, err))
        goto done;
    const struct rn_shape o = g->nodes[tap].layer.out;
    const int k = run->data.n_classes, H = in.h, W = in.w;
    const size_t raw_n = (size_t)in.n * o.h * o.w, maps_n = (size_t)in.n * H * W;
    int classes[RN_ANALYSIS_MAX_INPUTS], preds[RN_ANALYSIS_MAX_INPUTS];
    if (!(raw = rn_malloc(sizeof(float) * raw_n * nm, err)) ||
        !(maps = rn_malloc(sizeof(float) * maps_n * nm, err)) ||
        !(probs = rn_malloc(sizeof(float) * (size_t)in.n * k, err)))
        goto done;
    for (int i = 0; i < in.n; i++)
        classes[i] = want == -2 ? in.labels[i] : want;
    /* method q's maps at q * maps_n; the probabilities are the same for each */
    for (int q = 0; q < nm; q++) {
        for (int s = 0, bs = rn_inputs_batch(g); s < in.n; s += bs) {
            int m = in.n - s < bs ? in.n - s : bs;
            if (rn_inputs_load(g, in.images, s, m, err) ||
                rn_gradcam(g, m, run->logits_node, tap, rn_gradcam_method(methods[q]), classes + s,
                           raw + q * raw_n + (size_t)s * o.h * o.w,
                           maps + q * maps_n + (size_t)s * H * W, probs + (size_t)s * k, err))
                goto done;
        }
    }
    for (int i = 0; i < in.n; i++)
        preds[i] = rn_argmax(probs + (size_t)i * k, k);
    char group[256], path[320], joined[64] = "";
    for (int q = 0; q < nm; q++)
        snprintf(joined + strlen(joined), sizeof joined - strlen(joined), "%s%s", q ? ";" : "",
                 methods[q]);
    snprintf(group, sizeof group, "/analyses/%s", a->name);
    /* one method: maps (n, H, W) as always; several: (methods, n, H, W) */
    int md[4] = {nm, in.n, H, W}, rd[4] = {nm, in.n, o.h, o.w}, pd[2] = {in.n, k};
    const int nd = nm > 1 ? 4 : 3, off = nm > 1 ? 0 : 1;
    if (rn_inputs_write(run, group, &in, err))
        goto done;
    snprintf(path, sizeof path, "%s/maps", group);
    if (rn_results_write(run->results, path, RN_DTYPE_F32, maps, nd, md + off, err))
        goto done;
    snprintf(path, sizeof path, "%s/raw", group);
    if (rn_results_write(run->results, path, RN_DTYPE_F32, raw, nd, rd + off, err))
        goto done;
    snprintf(path, sizeof path, "%s/probs", group);
    if (rn_results_write(run->results, path, RN_DTYPE_F32, probs, 2, pd, err))
        goto done;
    snprintf(path, sizeof path, "%s/preds", group);
    if (rn_results_write(run->results, path, RN_DTYPE_I32, preds, 1, &in.n, err))
        goto done;
    snprintf(path, sizeof path, "%s/classes", group);
    if (rn_results_write(run->results, path, RN_DTYPE_I32, classes, 1, &in.n, err) ||
        rn_results_set_attr_str(run->results, group, "kind", "gradcam", err) ||
        rn_results_set_attr_str(run->results, group, "method", methods[0], err) ||
        (nm > 1 && rn_results_set_attr_str(run->results, group, "methods", joined, err)) ||
        rn_results_set_attr_str(run->results, group, "node", g->nodes[tap].layer.name, err) ||
        rn_results_set_attr_str(run->results, group, "class", a->v.str[GRADCAM_CLASS], err))
        goto done;
    if (!run->opt.quiet) {
        const struct rn_palette *pal = &run->spec->data.palette;
        for (int q = 0; q < nm; q++) {
            for (int i = 0; i < in.n; i++) {
                /* Where the map's mass sits: the share on background pixels. */
                const float *mp = maps + q * maps_n + (size_t)i * H * W;
                double bg = 0, tot = 0;
                for (int p = 0; p < H * W; p++) {
                    tot += mp[p];
                    if (!in.masks[(size_t)i * H * W + p])
                        bg += mp[p];
                }
                fprintf(run->opt.log,
                        "%s %s: digit %d on %-7s -> predicted %d (p = %.3f); map of class %d, "
                        "%.0f%% of its mass on the background\n",
                        methods[q], a->name, in.labels[i],
                        in.colours[i] >= 0 ? pal->names[in.colours[i]] : "-", preds[i],
                        probs[(size_t)i * k + preds[i]], classes[i],
                        tot > 0 ? 100 * bg / tot : 0.0);
            }
        }
    }
    rc = 0;
done:
    rn_inputs_free(&in);
    free(raw);
    free(maps);
    free(probs);
    return rc;
}

/* ---- figure: per input the image, its class probabilities, the overlay ------- */

/* matplotlib's jet, v in [0, 1] -> 0..255 per channel. */
static int jet(double v, int ch)
{
    double c = 1.5 - fabs(4 * v - (3 - ch));
    c = c < 0 ? 0 : c > 1 ? 1 : c;
    return (int)lround(255 * c);
}

/* The overlay of map m on input i: the data file <figure>_<i>_overlay<suffix>.dat
 * and its caption as the definition ov<i><suffix>. */
static int write_overlay(struct rn_plotter *p, const char *figure, const struct rn_plot_inputs *in,
                         int i, const float *m, int cls, const char *suffix, struct rn_sbuf *defs,
                         struct rn_error *err)
{
    char dpath[RN_PLOT_PATH_MAX], file[RN_PLOT_PATH_MAX];
    const int hw = in->h * in->w;
    const uint8_t *img = in->img + (size_t)i * in->c * hw;
    /* The overlay: half the image, half the jet colour of the map. */
    snprintf(file, sizeof file, "%s_%d_overlay%s.dat", figure, i, suffix);
    FILE *f = rn_plot_data_open(p, file, dpath, err);
    if (!f)
        return -1;
    fprintf(f, "# x y r g b: 0.4 luminance of the image + 0.6 jet(map), map max 1\n");
    double bg = 0, tot = 0;
    for (int y = 0; y < in->h; y++) {
        for (int x = 0; x < in->w; x++) {
            size_t q = (size_t)y * in->w + x;
            double v = m[q] < 0 ? 0 : m[q] > 1 ? 1 : m[q];
            int r = img[q], g = in->c >= 3 ? img[hw + q] : r;
            int b = in->c >= 3 ? img[2 * hw + q] : r;
            /* On the image's luminance: a coloured background would
             * otherwise shift the jet colours (red on red). */
            double lum = 0.299 * r + 0.587 * g + 0.114 * b;
            fprintf(f, "%d %d %d %d %d\n", x, -y, (int)lround(0.4 * lum + 0.6 * jet(v, 0)),
                    (int)lround(0.4 * lum + 0.6 * jet(v, 1)),
                    (int)lround(0.4 * lum + 0.6 * jet(v, 2)));
            tot += m[q];
            if (!rn_plot_inputs_is_stroke(in, i, q))
                bg += m[q];
        }
        fprintf(f, "\n");
    }
    if (rn_plot_data_close(f, dpath, err))
        return -1;
    char ov[160], key[48];
    if (tot > 0)
        snprintf(ov, sizeof ov, "map of class %d · %.0f%% on the background", cls, 100 * bg / tot);
    else
        snprintf(ov, sizeof ov, "map of class %d · all zero", cls);
    snprintf(key, sizeof key, "ov%d%s", i, suffix);
    rn_sbuf_def_str(defs, key, ov);
    return 0;
}

/* The data files of input i (image, class probabilities) and its captions
 * as definitions cap<i>, sub<i>, wrong<i>. */
static int write_input(struct rn_plotter *p, const char *figure, const struct rn_plot_inputs *in,
                       int i, const float *probs, int k, int pred, int cls, struct rn_sbuf *defs,
                       struct rn_error *err)
{
    char dpath[RN_PLOT_PATH_MAX], file[RN_PLOT_PATH_MAX];
    const int hw = in->h * in->w;
    FILE *f;
    snprintf(file, sizeof file, "%s_%d_image.dat", figure, i);
    if (!(f = rn_plot_data_open(p, file, dpath, err)))
        return -1;
    rn_plot_write_image(f, in->img + (size_t)i * in->c * hw, in->c, in->h, in->w, 0, 0);
    if (rn_plot_data_close(f, dpath, err))
        return -1;
    snprintf(file, sizeof file, "%s_%d_probs.dat", figure, i);
    if (!(f = rn_plot_data_open(p, file, dpath, err)))
        return -1;
    fprintf(f, "# class probability predicted(0/1) explained(0/1)\n");
    for (int j = 0; j < k; j++)
        fprintf(f, "%d %.6f %d %d\n", j, probs[j], j == pred, j == cls);
    if (rn_plot_data_close(f, dpath, err))
        return -1;
    char cap[160], sub[160], key[32];
    rn_plot_inputs_caption(in, i, cap, sizeof cap);
    snprintf(sub, sizeof sub, "true %d · predicted %d (p = %.2f)", in->labels[i], pred,
             probs[pred]);
    snprintf(key, sizeof key, "cap%d", i);
    rn_sbuf_def_str(defs, key, cap);
    snprintf(key, sizeof key, "sub%d", i);
    rn_sbuf_def_str(defs, key, sub);
    rn_sbuf_printf(defs, "wrong%d=%d; ", i, pred != in->labels[i]);
    return 0;
}

static const char *method_title(const char *method)
{
    return strcmp(method, "gradcam++") == 0 ? "Grad-CAM++" : "Grad-CAM";
}

static int plot_gradcam(struct rn_plotter *p, const char *group, const char *name,
                        char *const *datasets, int n_datasets, struct rn_error *err)
{
    char path[RN_PLOT_PATH_MAX];
    snprintf(path, sizeof path, "%s/maps", group);
    if (!rn_results_exists(p->r, path))
        return 0;
    char figure[128], sname[64], stem[RN_PLOT_PATH_MAX];
    struct rn_plot_inputs in;
    float *maps = NULL, *probs = NULL;
    int32_t *preds = NULL, *classes = NULL;
    int dims[4], pdims[4], rc = -1;
    struct rn_sbuf defs = {0};
    char *node = rn_plot_attr_or(p, group, "node", "conv");
    char *method = rn_plot_attr_or(p, group, "method", "gradcam");
    char *cls = rn_plot_attr_or(p, group, "class", "pred");
    /* several methods: maps (methods, n, H, W), named by "a;b" */
    char *methods = rn_plot_attr_or(p, group, "methods", "");
    char *mnames[4] = {method};
    int nm = methods[0] ? rn_models_split_names(methods, mnames, 4) : 1;
    const int nd = methods[0] ? 4 : 3;
    if (rn_plot_inputs_read(p, group, &in, err))
        goto done;
    snprintf(path, sizeof path, "%s/maps", group);
    if (rn_plot_read_f32(p, path, nd, &maps, dims, err))
        goto done;
    snprintf(path, sizeof path, "%s/probs", group);
    if (rn_plot_read_f32(p, path, 2, &probs, pdims, err))
        goto done;
    snprintf(path, sizeof path, "%s/preds", group);
    if (rn_plot_read_vector(p, path, in.n, 1, &preds, err))
        goto done;
    snprintf(path, sizeof path, "%s/classes", group);
    if (rn_plot_read_vector(p, path, in.n, 1, &classes, err))
        goto done;
    const int *md = dims + (nd - 3);
    if ((nd == 4 && dims[0] != nm) || md[0] != in.n || md[1] != in.h || md[2] != in.w ||
        pdims[0] != in.n) {
        rn_errorf(
            err,
            "%s: %s: maps (%d,%d,%d) of %d methods or probs do not match the %d (%dx%d) images",
            p->run_dir, group, md[0], md[1], md[2], nm, in.n, in.h, in.w);
        goto done;
    }
    const int k = pdims[1], hw = in.h * in.w;
    rn_plot_safe_name(sname, sizeof sname, name);
    snprintf(figure, sizeof figure, "%s", sname);
    snprintf(stem, sizeof stem, "%s/%s", p->data_dir, figure);
    for (int i = 0; i < in.n; i++) {
        if (write_input(p, figure, &in, i, probs + (size_t)i * k, k, preds[i], classes[i], &defs,
                        err))
            goto done;
        for (int q = 0; q < nm; q++) {
            char suffix[16] = "";
            if (nd == 4)
                snprintf(suffix, sizeof suffix, "_%d", q);
            if (write_overlay(p, figure, &in, i, maps + ((size_t)q * in.n + i) * hw, classes[i],
                              suffix, &defs, err))
                goto done;
        }
    }
    char title[400];
    const char *what = strcmp(cls, "pred") == 0   ? "the predicted class"
                       : strcmp(cls, "true") == 0 ? "the true class"
                                                  : NULL;
    char wbuf[64], mtitle[128] = "";
    if (!what) {
        snprintf(wbuf, sizeof wbuf, "class %s", cls);
        what = wbuf;
    }
    for (int q = 0; q < nm; q++) {
        snprintf(mtitle + strlen(mtitle), sizeof mtitle - strlen(mtitle), "%s%s",
                 q ? (q == nm - 1 ? " and " : ", ") : "", method_title(mnames[q]));
        char key[16];
        snprintf(key, sizeof key, "mname%d", q);
        rn_sbuf_def_str(&defs, key, method_title(mnames[q]));
    }
    snprintf(title, sizeof title, "%s · %s at %s (%s) for %s", name, mtitle, node,
             "upsampled bilinearly", what);
    rn_sbuf_def_str(&defs, "stem", stem);
    rn_sbuf_def_str(&defs, "title", title);
    rn_sbuf_printf(&defs, "n=%d; m=%d; iw=%d; ih=%d; classes=%d; ", in.n, nm, in.w, in.h, k);
    if (nd == 3)
        rc = rn_plot_draw(p, "gradcam.gp", figure, 1180, 70 + 250 * in.n, &defs, err);
    else
        rc = rn_plot_draw(p, "gradcam_methods.gp", figure, 80 + 300 * (nm + 1), 70 + 250 * in.n,
                          &defs, err);
done:
    rn_plot_inputs_free(&in);
    free(defs.s);
    free(maps);
    free(probs);
    free(preds);
    free(classes);
    free(node);
    free(method);
    free(methods);
    free(cls);
    return rc;
}
