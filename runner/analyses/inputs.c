/* inputs.c - the inputs of an analysis (common.h): constructed cases or the
 * first n images of a split, made for a run and written beside its maps,
 * then read back for its figure.
 *
 * A case is a digit of a split re-coloured with a chosen palette colour
 * exactly as the probe analysis does (stroke mask recovered from the image,
 * then rn_colourise with the data config), so "red 1" is six characters of
 * YAML.
 */
#include "common.h"

#include <stdlib.h>
#include <string.h>

/* ---- made for a run ------------------------------------------------------ */

void rn_inputs_free(struct rn_inputs *in)
{
    free(in->images);
    free(in->masks);
    in->images = in->masks = NULL;
}

/* Stroke pixels of an image as the colouriser drew them: white on a
 * coloured background, lit on black for stroke colouring, above the
 * threshold for grey images. */
void rn_stroke_mask(const uint8_t *img, int c, int hw, const struct rn_data_config *dc,
                    uint8_t *mask)
{
    for (int p = 0; p < hw; p++) {
        if (c < 3) {
            mask[p] = img[p] > dc->threshold;
            continue;
        }
        uint8_t r = img[p], g = img[hw + p], b = img[2 * hw + p];
        if (dc->colouring == RN_COLOURING_STROKE)
            mask[p] = r || g || b;
        else
            mask[p] = r == 255 && g == 255 && b == 255;
    }
}

/* One case: image `index` of split (or its first image of digit), its
 * stroke re-coloured with palette colour `colour` like the probe analysis. */
static int make_case(struct rn_run *run, const struct rn_spec_analysis *a, int key, int digit,
                     const char *colour_name, const char *split, int index, struct rn_inputs *in,
                     int slot, struct rn_error *err)
{
    const struct rn_data_config *dc = &run->spec->data;
    if (dc->colouring == RN_COLOURING_NONE)
        return rn_analysis_errorf(
            err, a, key, "cases need coloured data (data.colouring: background or stroke)");
    int colour = rn_palette_index(&dc->palette, colour_name);
    if (colour < 0)
        return rn_analysis_errorf(err, a, key, "unknown colour '%s'", colour_name);
    struct rn_split *s = rn_data_split(&run->data, split);
    if (!s || s->n == 0)
        return rn_analysis_errorf(err, a, key, "no split '%s' with images", split);
    if (index < 0)
        for (int i = 0; i < s->n && index < 0; i++)
            if (s->labels[i] == digit)
                index = i;
    if (index < 0 || index >= s->n)
        return rn_analysis_errorf(err, a, key, "no image %d of digit %d in split '%s' (%d images)",
                                  index, digit, s->name, s->n);
    const int h = s->h, w = s->w, hw = h * w;
    uint8_t *mask = in->masks + (size_t)slot * hw, grey[hw];
    rn_stroke_mask(s->images + (size_t)index * s->c * hw, s->c, hw, dc, mask);
    for (int p = 0; p < hw; p++)
        grey[p] = mask[p] ? 255 : 0;
    struct rn_rng r;
    rn_rng_init(&r, run->spec->seed, RN_STREAM_ANALYSIS, (uint64_t)index);
    rn_colourise(grey, h, w, dc->palette.rgb[colour], dc->colouring, dc->noise_lo, dc->noise_hi,
                 dc->threshold, &r, in->images + (size_t)slot * 3 * hw);
    in->labels[slot] = s->labels[index];
    in->colours[slot] = colour;
    in->sources[slot] = index;
    if (slot == 0)
        snprintf(in->split, sizeof in->split, "%s", s->name);
    else if (strcmp(in->split, s->name) != 0)
        in->split[0] = '\0';
    return 0;
}

int rn_inputs_build(struct rn_run *run, const struct rn_spec_analysis *a, struct rn_input_keys k,
                    struct rn_inputs *in, struct rn_error *err)
{
    memset(in, 0, sizeof *in);
    const char *cases = a->v.str[k.cases];
    const struct rn_split *first = &run->data.splits[0];
    in->h = first->h;
    in->w = first->w;
    size_t hw = (size_t)in->h * in->w;
    if (cases[0]) {
        /* Canonical text from the spec: "digit colour split index; ..." */
        int n = 1;
        for (const char *p = cases; *p; p++)
            n += *p == ';';
        if (n > RN_ANALYSIS_MAX_INPUTS)
            return rn_analysis_errorf(err, a, k.cases, "%d cases; at most %d", n,
                                      RN_ANALYSIS_MAX_INPUTS);
        in->c = 3;
        in->constructed = 1;
        if (!(in->images = rn_calloc((size_t)n * 3 * hw, 1, err)) ||
            !(in->masks = rn_calloc((size_t)n * hw, 1, err)))
            return -1;
        const char *p = cases;
        for (int i = 0; i < n; i++) {
            int digit, index;
            char colour[32], split[32], item[RN_STR_MAX];
            size_t span = strcspn(p, ";");
            snprintf(item, sizeof item, "%.*s", (int)span, p);
            p += span + (p[span] == ';');
            if (sscanf(item, "%d %31s %31s %d", &digit, colour, split, &index) != 4)
                return rn_analysis_errorf(err, a, k.cases, "cannot read case %d of '%s'", i + 1,
                                          cases);
            if (make_case(run, a, k.cases, digit, colour, split, index, in, i, err))
                return -1;
            in->n++;
        }
        return 0;
    }
    struct rn_split *s = rn_data_split(&run->data, a->v.str[k.split]);
    if (!s || s->n == 0)
        return rn_analysis_errorf(err, a, k.split,
                                  "no split '%s' with images; expected train, val or test",
                                  a->v.str[k.split]);
    int n = (int)a->v.num[k.n] < s->n ? (int)a->v.num[k.n] : s->n;
    in->c = s->c;
    snprintf(in->split, sizeof in->split, "%s", s->name);
    if (!(in->images = rn_malloc((size_t)n * s->c * hw, err)) ||
        !(in->masks = rn_calloc((size_t)n * hw, 1, err)))
        return -1;
    memcpy(in->images, s->images, (size_t)n * s->c * hw);
    for (int i = 0; i < n; i++) {
        rn_stroke_mask(in->images + (size_t)i * s->c * hw, s->c, (int)hw, &run->spec->data,
                       in->masks + (size_t)i * hw);
        in->labels[i] = s->labels[i];
        in->colours[i] = s->colours[i] == RN_NO_COLOUR ? -1 : s->colours[i];
        in->sources[i] = i;
    }
    in->n = n;
    return 0;
}

int rn_inputs_load(struct rn_graph *g, const uint8_t *images, int start, int m,
                   struct rn_error *err)
{
    struct rn_tensor *x = rn_graph_input_host(g, m, err);
    if (!x)
        return -1;
    const size_t per = rn_tensor_sample(x);
    for (size_t k = 0; k < (size_t)m * per; k++)
        x->data[k] = images[(size_t)start * per + k] * (1.0f / 255.0f);
    return rn_graph_input_commit(g, err);
}

int rn_inputs_batch(const struct rn_graph *g)
{
    return g->max_n < 64 ? g->max_n : 64;
}

int rn_inputs_write(struct rn_run *run, const char *group, const struct rn_inputs *in,
                    struct rn_error *err)
{
    char path[400];
    int dims[4] = {in->n, in->c, in->h, in->w}, n = in->n;
    snprintf(path, sizeof path, "%s/images", group);
    if (rn_results_write(run->results, path, RN_DTYPE_U8, in->images, 4, dims, err))
        return -1;
    snprintf(path, sizeof path, "%s/labels", group);
    if (rn_results_write(run->results, path, RN_DTYPE_I32, in->labels, 1, &n, err))
        return -1;
    snprintf(path, sizeof path, "%s/colours", group);
    if (rn_results_write(run->results, path, RN_DTYPE_I32, in->colours, 1, &n, err))
        return -1;
    snprintf(path, sizeof path, "%s/sources", group);
    if (rn_results_write(run->results, path, RN_DTYPE_I32, in->sources, 1, &n, err))
        return -1;
    return rn_results_set_attr_str(run->results, group, "inputs",
                                   in->constructed ? "cases" : "split", err) ||
           rn_results_set_attr_str(run->results, group, "split", in->split, err) ||
           rn_results_set_attr_str(
               run->results, group, "colouring",
               run->spec->data.colouring == RN_COLOURING_STROKE ? "stroke" : "background", err);
}

/* ---- read back for a figure ------------------------------------------------ */

static void input_caption(char *buf, size_t n, int cases, const char *split, int source, int label,
                          int colour)
{
    const char *cn = rn_plot_colour_name(colour);
    char what[64];
    if (cn)
        snprintf(what, sizeof what, "digit %d on %s", label, cn);
    else
        snprintf(what, sizeof what, "digit %d", label);
    if (cases || !split || !*split)
        snprintf(buf, n, "%s", what);
    else
        snprintf(buf, n, "%s #%d · %s", split, source, what);
}

void rn_plot_inputs_free(struct rn_plot_inputs *in)
{
    free(in->img);
    free(in->labels);
    free(in->colours);
    free(in->sources);
    free(in->split);
    free(in->colouring);
    memset(in, 0, sizeof *in);
}

int rn_plot_inputs_read(struct rn_plotter *p, const char *group, struct rn_plot_inputs *in,
                        struct rn_error *err)
{
    char path[RN_PLOT_PATH_MAX];
    memset(in, 0, sizeof *in);
    snprintf(path, sizeof path, "%s/images", group);
    if (rn_plot_read_images(p, path, &in->img, &in->n, &in->c, &in->h, &in->w, err))
        return -1;
    snprintf(path, sizeof path, "%s/labels", group);
    if (rn_plot_read_vector(p, path, in->n, 1, &in->labels, err))
        return -1;
    snprintf(path, sizeof path, "%s/colours", group);
    if (rn_plot_read_vector(p, path, in->n, 0, &in->colours, err))
        return -1;
    snprintf(path, sizeof path, "%s/sources", group);
    if (rn_plot_read_vector(p, path, in->n, 0, &in->sources, err))
        return -1;
    char *kind = rn_plot_attr_or(p, group, "inputs", "split");
    in->cases = kind && strcmp(kind, "cases") == 0;
    free(kind);
    in->split = rn_plot_attr_or(p, group, "split", "");
    in->colouring = rn_plot_attr_or(p, group, "colouring", "background");
    return 0;
}

void rn_plot_inputs_caption(const struct rn_plot_inputs *in, int i, char *buf, size_t n)
{
    input_caption(buf, n, in->cases, in->split, in->sources ? in->sources[i] : i, in->labels[i],
                  in->colours ? in->colours[i] : -1);
}

int rn_plot_inputs_is_stroke(const struct rn_plot_inputs *in, int i, size_t k)
{
    size_t hw = (size_t)in->h * in->w;
    const uint8_t *img = in->img + (size_t)i * in->c * hw;
    if (in->c < 3)
        return img[k] > 50;
    uint8_t r = img[k], g = img[hw + k], b = img[2 * hw + k];
    if (in->colouring && strcmp(in->colouring, "stroke") == 0)
        return r || g || b;
    return r == 255 && g == 255 && b == 255;
}
