/* probe.c - a real digit re-coloured with a chosen background, and the
 * model's prediction and class probabilities for it. */
#include "common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { PROBE_DIGIT, PROBE_COLOUR, PROBE_SPLIT, PROBE_INDEX, PROBE_N_KEYS };
static const struct rn_key probe_keys[] = {
    [PROBE_DIGIT] = {"digit", RN_KIND_INT, 0, 1, NULL, 0, 9, NULL, "digit to take from the split"},
    [PROBE_COLOUR] = {"colour", RN_KIND_STRING, 0, 0, "red", 1, 0, NULL,
                      "palette colour name or index for the background"},
    [PROBE_SPLIT] = {"split", RN_KIND_STRING, 0, 0, "test", 1, 0, NULL,
                     "split the digit comes from (its grey MNIST source)"},
    [PROBE_INDEX] = {"index", RN_KIND_INT, 0, -1, NULL, -1, 1e9, NULL,
                     "index in the split; -1 = first image of that digit"},
};
_Static_assert(RN_N_KEYS(probe_keys) == PROBE_N_KEYS, "one schema row per PROBE_ key");

static int check_probe(const struct rn_spec *, const struct rn_spec_analysis *,
                       const struct rn_graph *, int, struct rn_error *);
static int run_probe(struct rn_run *, const struct rn_spec_analysis *, struct rn_error *);
static int plot_probe(struct rn_plotter *, const char *, const char *, char *const *, int,
                      struct rn_error *);
const struct rn_analysis_type rn_analysis_probe = {
    .name = "probe",
    .doc = "a real digit re-coloured with a chosen background; the prediction and the 10 "
           "probabilities",
    .keys = probe_keys,
    .n_keys = PROBE_N_KEYS,
    .check = check_probe,
    .run = run_probe,
    .plot = plot_probe,
};

/* ---- check --------------------------------------------------------------- */

/* A model, coloured data and a colour of the palette; *colour gets its index. */
static int probe_needs(const struct rn_spec *spec, const struct rn_spec_analysis *a, int has_graph,
                       int *colour, struct rn_error *err)
{
    const struct rn_data_config *dc = &spec->data;
    if (!has_graph)
        return rn_errorf(err, "%s:%d:%d: error: analysis '%s' (probe) needs a model", a->file,
                         a->line, a->col, a->name);
    if (dc->colouring == RN_COLOURING_NONE)
        return rn_errorf(err,
                         "%s:%d:%d: error: analysis '%s' (probe) needs coloured data "
                         "(data.colouring: background or stroke)",
                         a->file, a->line, a->col, a->name);
    *colour = rn_palette_index(&dc->palette, a->v.str[PROBE_COLOUR]);
    if (*colour < 0)
        return rn_errorf(err,
                         "%s:%d:%d: error: analysis '%s' (probe): unknown colour '%s'; expected a "
                         "palette name (red, green, ...) or 0-9",
                         a->file, a->line, a->col, a->name, a->v.str[PROBE_COLOUR]);
    return 0;
}

static int check_probe(const struct rn_spec *spec, const struct rn_spec_analysis *a,
                       const struct rn_graph *g, int logits, struct rn_error *err)
{
    int colour;
    return probe_needs(spec, a, g != NULL, &colour, err);
}

/* ---- run ----------------------------------------------------------------- */

static int run_probe(struct rn_run *run, const struct rn_spec_analysis *a, struct rn_error *err)
{
    const struct rn_data_config *dc = &run->spec->data;
    int colour = 0;
    if (probe_needs(run->spec, a, run->has_graph, &colour, err))
        return -1;
    struct rn_split *s = rn_data_split(&run->data, a->v.str[PROBE_SPLIT]);
    if (!s || s->n == 0)
        return rn_errorf(err, "%s:%d:%d: error: analysis '%s' (probe): no split '%s' with images",
                         a->file, a->line, a->col, a->name, a->v.str[PROBE_SPLIT]);
    int digit = (int)a->v.num[PROBE_DIGIT], index = (int)a->v.num[PROBE_INDEX];
    if (index < 0)
        for (int i = 0; i < s->n && index < 0; i++)
            if (s->labels[i] == digit)
                index = i;
    if (index < 0 || index >= s->n)
        return rn_errorf(err,
                         "%s:%d:%d: error: analysis '%s' (probe): no image %d of digit %d in split "
                         "'%s' (%d images)",
                         a->file, a->line, a->col, a->name, index, digit, s->name, s->n);
    /* Recover the stroke mask from the coloured image, then recolour it: the
     * colouriser paints exactly the pixels above the threshold as stroke. */
    const int h = s->h, w = s->w, hw = h * w;
    const uint8_t *img = s->images + (size_t)index * 3 * hw;
    uint8_t grey[hw], out[3 * hw];
    for (int p = 0; p < hw; p++) {
        int white = img[p] == 255 && img[hw + p] == 255 && img[2 * hw + p] == 255;
        int lit = img[p] || img[hw + p] || img[2 * hw + p];
        grey[p] = (dc->colouring == RN_COLOURING_BACKGROUND ? white : lit) ? 255 : 0;
    }
    struct rn_rng r;
    rn_rng_init(&r, run->spec->seed, RN_STREAM_ANALYSIS, (uint64_t)index);
    rn_colourise(grey, h, w, dc->palette.rgb[colour], dc->colouring, dc->noise_lo, dc->noise_hi,
                 dc->threshold, &r, out);
    struct rn_tensor *x = rn_graph_input_host(&run->graph, 1, err);
    if (!x)
        return -1;
    for (int k = 0; k < 3 * hw; k++)
        x->data[k] = out[k] / 255.0f;
    const int k = run->data.n_classes;
    float probs[k];
    if (rn_graph_input_commit(&run->graph, err) || rn_run_predict(run, 1, run->probs, err))
        return -1;
    memcpy(probs, run->probs, sizeof(float) * k);
    int pred = rn_argmax(probs, k);
    char group[256], path[320], title[128];
    snprintf(group, sizeof group, "/analyses/%s", a->name);
    snprintf(title, sizeof title, "digit %d on %s", s->labels[index], dc->palette.names[colour]);
    int dims[3] = {3, h, w};
    snprintf(path, sizeof path, "%s/image", group);
    if (rn_results_write(run->results, path, RN_DTYPE_U8, out, 3, dims, err))
        return -1;
    snprintf(path, sizeof path, "%s/probs", group);
    if (rn_results_write(run->results, path, RN_DTYPE_F32, probs, 1, &k, err) ||
        rn_results_set_attr_str(run->results, group, "kind", "probe", err) ||
        rn_results_set_attr_str(run->results, group, "title", title, err) ||
        rn_results_set_attr_u64(run->results, group, "label", s->labels[index], err) ||
        rn_results_set_attr_u64(run->results, group, "pred", (uint64_t)pred, err) ||
        rn_results_set_attr_u64(run->results, group, "source_index", (uint64_t)index, err))
        return -1;
    if (!run->opt.quiet)
        fprintf(run->opt.log, "probe %s: %s image %d (digit %d) on %s -> predicted %d (p = %.3f)\n",
                a->name, s->name, index, s->labels[index], dc->palette.names[colour], pred,
                probs[pred]);
    return 0;
}

/* ---- figure: the image beside its class probabilities --------------------- */

static int plot_probe(struct rn_plotter *p, const char *group, const char *name,
                      char *const *datasets, int n_datasets, struct rn_error *err)
{
    char path[RN_PLOT_PATH_MAX], ipath[RN_PLOT_PATH_MAX], bpath[RN_PLOT_PATH_MAX],
        file[RN_PLOT_PATH_MAX];
    char figure[128];
    uint8_t *img = NULL;
    float *probs = NULL;
    int n, c, h, w, ndim, dims[4], rc = -1;
    struct rn_sbuf defs = {0};
    char *title = NULL;
    FILE *f;

    snprintf(path, sizeof path, "%s/probs", group);
    if (!rn_results_exists(p->r, path))
        return 0;
    snprintf(path, sizeof path, "%s/image", group);
    if (rn_plot_read_images(p, path, &img, &n, &c, &h, &w, err))
        return -1;
    snprintf(path, sizeof path, "%s/probs", group);
    if (rn_results_read(p->r, path, RN_DTYPE_F32, (void **)&probs, &ndim, dims, err))
        goto done;
    if (ndim != 1 || dims[0] < 1) {
        rn_errorf(err, "%s: %s: expected float32 (classes)", p->run_dir, path);
        goto done;
    }
    int k = dims[0];
    uint64_t label = UINT64_MAX, pred = UINT64_MAX;
    rn_results_get_attr_u64(p->r, group, "label", &label, NULL);
    if (rn_results_get_attr_u64(p->r, group, "pred", &pred, NULL) != 0) {
        pred = 0;
        for (int i = 1; i < k; i++)
            if (probs[i] > probs[pred])
                pred = (uint64_t)i;
    }

    char sname[64];
    rn_plot_safe_name(sname, sizeof sname, name);
    snprintf(figure, sizeof figure, "%s", sname);
    snprintf(file, sizeof file, "%s_image.dat", figure);
    if (!(f = rn_plot_data_open(p, file, ipath, err)))
        goto done;
    rn_plot_write_image(f, img, c, h, w, 0, 0);
    if (rn_plot_data_close(f, ipath, err))
        goto done;
    snprintf(file, sizeof file, "%s_probs.dat", figure);
    if (!(f = rn_plot_data_open(p, file, bpath, err)))
        goto done;
    fprintf(f, "# class probability predicted(0/1)\n");
    for (int i = 0; i < k; i++)
        fprintf(f, "%d %.6f %d\n", i, probs[i], (uint64_t)i == pred);
    if (rn_plot_data_close(f, bpath, err))
        goto done;

    char sub[160];
    double pp = pred < (uint64_t)k ? probs[pred] : NAN;
    if (label != UINT64_MAX)
        snprintf(sub, sizeof sub, "true %llu · predicted %llu (p = %.2f)",
                 (unsigned long long)label, (unsigned long long)pred, pp);
    else
        snprintf(sub, sizeof sub, "predicted %llu (p = %.2f)", (unsigned long long)pred, pp);
    if (rn_results_get_attr_str(p->r, group, "title", &title, NULL) != 0)
        title = NULL;
    rn_sbuf_def_str(&defs, "image", ipath);
    rn_sbuf_def_str(&defs, "probs", bpath);
    rn_sbuf_def_str(&defs, "title", title ? title : name);
    rn_sbuf_def_str(&defs, "subtitle", sub);
    rn_sbuf_printf(&defs, "iw=%d; ih=%d; classes=%d; wrong=%d; ", w, h, k,
                   label != UINT64_MAX && label != pred);
    rc = rn_plot_draw(p, "probe.gp", figure, 1000, 440, &defs, err);
done:
    free(title);
    free(defs.s);
    free(img);
    free(probs);
    return rc;
}
