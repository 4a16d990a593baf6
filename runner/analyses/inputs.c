/* inputs.c - the inputs of an analysis (common.h): constructed cases or the
 * first n images of a split, made for a run and written beside its maps,
 * then read back for its figure.
 *
 * A case is a digit of a split re-coloured with a chosen palette colour
 * exactly as the probe analysis does (stroke mask recovered from the image,
 * then rn_colourise with the data config), so "red 1" is six characters of
 * YAML. Split inputs are the split's own images, filtered by digit, stored
 * colour and a condition on the model's prediction, so "a hard-test 7 on
 * yellow" is one line too. Predictions come from the run's model in eval
 * mode, a batch of candidates at a time, and only when a condition asks.
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

/* ---- the condition on the model's prediction ------------------------------ */

enum { PRED_ANY = -1, PRED_CORRECT = -2, PRED_WRONG = -3, PRED_FOLLOWS_COLOUR = -4 };

/* The most images predicted in one pass. */
#define PREDICT_BATCH 64

static int predict_batch(const struct rn_run *run)
{
    int bs = run->has_graph ? rn_inputs_batch(&run->graph) : 1;
    return bs < PREDICT_BATCH ? bs : PREDICT_BATCH;
}

/* `predicted` as the loader checked it: a class >= 0 or a PRED_ value. */
static int pred_parse(const char *s)
{
    if (!*s || strcmp(s, "any") == 0)
        return PRED_ANY;
    if (strcmp(s, "correct") == 0)
        return PRED_CORRECT;
    if (strcmp(s, "wrong") == 0)
        return PRED_WRONG;
    if (strcmp(s, "follows_colour") == 0)
        return PRED_FOLLOWS_COLOUR;
    return atoi(s);
}

/* follows_colour: the class whose training colour the image has; colour k
 * is digit k's colour in the easy set (data.h). */
static int pred_holds(int cond, int pred, int label, int colour)
{
    switch (cond) {
    case PRED_ANY:
        return 1;
    case PRED_CORRECT:
        return pred == label;
    case PRED_WRONG:
        return pred != label;
    case PRED_FOLLOWS_COLOUR:
        return colour >= 0 && pred == colour;
    default:
        return pred == cond;
    }
}

/* "predicted 3", "predicted correctly", ... ("" for any). */
static void pred_words(int cond, int plural, char *buf, size_t n)
{
    switch (cond) {
    case PRED_ANY:
        snprintf(buf, n, "%s", "");
        break;
    case PRED_CORRECT:
        snprintf(buf, n, "%s", "predicted correctly");
        break;
    case PRED_WRONG:
        snprintf(buf, n, "%s", "predicted wrongly");
        break;
    case PRED_FOLLOWS_COLOUR:
        snprintf(buf, n, "predicted as %s colour's digit", plural ? "their" : "its");
        break;
    default:
        snprintf(buf, n, "predicted %d", cond);
    }
}

/* The run's model's predictions (eval mode) for images [start, start + m)
 * of a (n, c, h, w) uint8 array; m <= rn_inputs_batch. */
static int predict(struct rn_run *run, const struct rn_spec_analysis *a, int key,
                   const uint8_t *images, int start, int m, int *preds, struct rn_error *err)
{
    if (!run->has_graph)
        return rn_analysis_errorf(err, a, key,
                                  "predicted: needs this run's model to predict with; add a "
                                  "model with train or load");
    const int k = run->data.n_classes;
    float probs[PREDICT_BATCH * k];
    if (rn_inputs_load(&run->graph, images, start, m, err) || rn_run_predict(run, m, probs, err))
        return -1;
    for (int i = 0; i < m; i++)
        preds[i] = rn_argmax(probs + (size_t)i * k, k);
    return 0;
}

/* ---- cases ------------------------------------------------------------------ */

/* Image `index` of split s with its stroke re-coloured with palette colour
 * `colour` like the probe analysis: (3, h, w) into img, the stroke into
 * mask. The texture's generator is seeded by the index, so an image is the
 * same whichever case makes it. */
static void recolour(const struct rn_run *run, const struct rn_split *s, int index, int colour,
                     uint8_t *img, uint8_t *mask)
{
    const struct rn_data_config *dc = &run->spec->data;
    const int h = s->h, w = s->w, hw = h * w;
    uint8_t grey[hw];
    rn_stroke_mask(s->images + (size_t)index * s->c * hw, s->c, hw, dc, mask);
    for (int p = 0; p < hw; p++)
        grey[p] = mask[p] ? 255 : 0;
    struct rn_rng r;
    rn_rng_init(&r, run->spec->seed, RN_STREAM_ANALYSIS, (uint64_t)index);
    rn_colourise(grey, h, w, dc->palette.rgb[colour], dc->colouring, dc->noise_lo, dc->noise_hi,
                 dc->threshold, &r, img);
}

/* The first image of digit in s, from index 0, whose re-coloured version
 * the model predicts as cond asks (a batch at a time). Returns its index,
 * s->n when none, -1 on error. */
static int find_case(struct rn_run *run, const struct rn_spec_analysis *a, int key,
                     const struct rn_split *s, int digit, int colour, int cond,
                     struct rn_error *err)
{
    const int hw = s->h * s->w, bs = predict_batch(run);
    int cand[PREDICT_BATCH], preds[PREDICT_BATCH], m = 0, found = s->n;
    uint8_t mask[hw], *imgs = rn_malloc((size_t)bs * 3 * hw, err);
    if (!imgs)
        return -1;
    for (int i = 0; i <= s->n && found == s->n; i++) {
        if (i < s->n && s->labels[i] == digit) {
            recolour(run, s, i, colour, imgs + (size_t)m * 3 * hw, mask);
            cand[m++] = i;
        }
        if (m == 0 || (m < bs && i < s->n))
            continue;
        if (predict(run, a, key, imgs, 0, m, preds, err)) {
            found = -1;
            break;
        }
        for (int j = 0; j < m && found == s->n; j++)
            if (pred_holds(cond, preds[j], digit, colour))
                found = cand[j];
        m = 0;
    }
    free(imgs);
    return found;
}

/* One case, "digit colour split index [predicted]" (item, for messages):
 * image `index` of split (or its first image of digit whose re-coloured
 * version is predicted as asked), its stroke re-coloured. */
static int make_case(struct rn_run *run, const struct rn_spec_analysis *a, int key, int no,
                     const char *item, int digit, const char *colour_name, const char *split,
                     int index, const char *predicted, struct rn_inputs *in, int slot,
                     struct rn_error *err)
{
    const struct rn_data_config *dc = &run->spec->data;
    if (dc->colouring == RN_COLOURING_NONE)
        return rn_analysis_errorf(
            err, a, key, "cases need coloured data (data.colouring: background or stroke)");
    int colour = rn_palette_index(&dc->palette, colour_name), cond = pred_parse(predicted);
    if (colour < 0)
        return rn_analysis_errorf(err, a, key, "unknown colour '%s'", colour_name);
    struct rn_split *s = rn_data_split(&run->data, split);
    if (!s || s->n == 0)
        return rn_analysis_errorf(err, a, key, "no split '%s' with images", split);
    char words[64];
    pred_words(cond, 0, words, sizeof words);
    const int explicit_index = index >= 0;
    if (index < 0 && cond != PRED_ANY) {
        if ((index = find_case(run, a, key, s, digit, colour, cond, err)) < 0)
            return -1;
        if (index == s->n) {
            int count = 0;
            for (int i = 0; i < s->n; i++)
                count += s->labels[i] == digit;
            return rn_analysis_errorf(err, a, key,
                                      "case %d ('%s'): none of the %d %s images of digit %d, "
                                      "re-coloured %s, is %s",
                                      no, item, count, s->name, digit, dc->palette.names[colour],
                                      words);
        }
    }
    if (index < 0)
        for (int i = 0; i < s->n && index < 0; i++)
            if (s->labels[i] == digit)
                index = i;
    if (index < 0 || index >= s->n)
        return rn_analysis_errorf(err, a, key, "no image %d of digit %d in split '%s' (%d images)",
                                  index, digit, s->name, s->n);
    const size_t hw = (size_t)s->h * s->w;
    recolour(run, s, index, colour, in->images + (size_t)slot * 3 * hw,
             in->masks + (size_t)slot * hw);
    in->labels[slot] = s->labels[index];
    in->colours[slot] = colour;
    in->sources[slot] = index;
    int pred = -1;
    if (cond != PRED_ANY && explicit_index) {
        if (predict(run, a, key, in->images, slot, 1, &pred, err))
            return -1;
        if (!pred_holds(cond, pred, s->labels[index], colour))
            return rn_analysis_errorf(err, a, key,
                                      "case %d ('%s'): %s image %d, a %d on %s, is predicted %d: "
                                      "the condition 'predicted: %s' does not hold",
                                      no, item, s->name, index, s->labels[index],
                                      dc->palette.names[colour], pred, predicted);
    }
    if (slot == 0)
        snprintf(in->split, sizeof in->split, "%s", s->name);
    else if (strcmp(in->split, s->name) != 0)
        in->split[0] = '\0';
    return 0;
}

static int build_cases(struct rn_run *run, const struct rn_spec_analysis *a, struct rn_input_keys k,
                       struct rn_inputs *in, struct rn_error *err)
{
    /* Canonical text from the spec: "digit colour split index [predicted]; ..." */
    const char *cases = a->v.str[k.cases];
    const size_t hw = (size_t)in->h * in->w;
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
        char colour[32], split[32], predicted[32] = "any", item[RN_STR_MAX];
        p += strspn(p, " ");
        size_t span = strcspn(p, ";");
        snprintf(item, sizeof item, "%.*s", (int)span, p);
        p += span + (p[span] == ';');
        if (sscanf(item, "%d %31s %31s %d %31s", &digit, colour, split, &index, predicted) < 4)
            return rn_analysis_errorf(err, a, k.cases, "cannot read case %d of '%s'", i + 1, cases);
        if (make_case(run, a, k.cases, i + 1, item, digit, colour, split, index, predicted, in, i,
                      err))
            return -1;
        in->n++;
    }
    return 0;
}

/* ---- split inputs ---------------------------------------------------------- */

/* The filters of split inputs, as the loader checked them. */
struct filters {
    int digit, colour, cond, first; /* -1 / PRED_ANY: any */
};

static const char *key_str(const struct rn_spec_analysis *a, int key, const char *def)
{
    return key >= 0 ? a->v.str[key] : def;
}

/* "test images with digit 7 on yellow predicted 3 from index 40" */
static void describe(const struct rn_split *s, const struct rn_palette *pal,
                     const struct filters *f, char *buf, size_t n)
{
    char words[64];
    size_t len = (size_t)snprintf(buf, n, "%s images", s->name);
    if (f->digit >= 0 && len < n)
        len += (size_t)snprintf(buf + len, n - len, " with digit %d", f->digit);
    if (f->colour >= 0 && len < n)
        len += (size_t)snprintf(buf + len, n - len, " on %s", pal->names[f->colour]);
    pred_words(f->cond, 1, words, sizeof words);
    if (*words && len < n)
        len += (size_t)snprintf(buf + len, n - len, " %s", words);
    if (f->first > 0 && len < n)
        snprintf(buf + len, n - len, " from index %d", f->first);
}

/* Takes the candidates cand[0..m) that pass the condition, in order, into
 * in until it holds want images. */
static int take(struct rn_run *run, const struct rn_spec_analysis *a, int key,
                const struct rn_split *s, const struct filters *f, const int *cand, int m,
                uint8_t *scratch, int want, struct rn_inputs *in, struct rn_error *err)
{
    const size_t per = (size_t)s->c * s->h * s->w, hw = (size_t)s->h * s->w;
    int preds[PREDICT_BATCH];
    if (f->cond != PRED_ANY) {
        for (int j = 0; j < m; j++)
            memcpy(scratch + j * per, s->images + (size_t)cand[j] * per, per);
        if (predict(run, a, key, scratch, 0, m, preds, err))
            return -1;
    }
    for (int j = 0; j < m && in->n < want; j++) {
        const int i = cand[j], colour = s->colours[i] == RN_NO_COLOUR ? -1 : s->colours[i];
        if (f->cond != PRED_ANY && !pred_holds(f->cond, preds[j], s->labels[i], colour))
            continue;
        memcpy(in->images + (size_t)in->n * per, s->images + (size_t)i * per, per);
        rn_stroke_mask(in->images + (size_t)in->n * per, s->c, (int)hw, &run->spec->data,
                       in->masks + (size_t)in->n * hw);
        in->labels[in->n] = s->labels[i];
        in->colours[in->n] = colour;
        in->sources[in->n] = i;
        in->n++;
    }
    return 0;
}

static int build_split(struct rn_run *run, const struct rn_spec_analysis *a, struct rn_input_keys k,
                       struct rn_inputs *in, struct rn_error *err)
{
    struct rn_split *s = rn_data_split(&run->data, a->v.str[k.split]);
    if (!s || s->n == 0)
        return rn_analysis_errorf(err, a, k.split,
                                  "no split '%s' with images; expected train, val or test",
                                  a->v.str[k.split]);
    const struct rn_palette *pal = &run->spec->data.palette;
    const char *digit = key_str(a, k.digit, "any"), *colour = key_str(a, k.colour, "any");
    struct filters f = {
        .digit = strcmp(digit, "any") ? atoi(digit) : -1,
        .colour = strcmp(colour, "any") ? rn_palette_index(pal, colour) : -1,
        .cond = pred_parse(key_str(a, k.predicted, "any")),
        .first = k.index >= 0 ? (int)a->v.num[k.index] : 0,
    };
    if (strcmp(colour, "any") && f.colour < 0)
        return rn_analysis_errorf(err, a, k.colour, "unknown colour '%s'", colour);
    if (f.first >= s->n)
        return rn_analysis_errorf(err, a, k.index, "index %d: split '%s' has %d images", f.first,
                                  s->name, s->n);
    const int want = (int)a->v.num[k.n];
    const size_t per = (size_t)s->c * s->h * s->w;
    const int bs = f.cond == PRED_ANY ? 1 : predict_batch(run);
    in->c = s->c;
    snprintf(in->split, sizeof in->split, "%s", s->name);
    uint8_t *scratch = NULL;
    if (!(in->images = rn_malloc((size_t)want * per, err)) ||
        !(in->masks = rn_calloc((size_t)want * in->h * in->w, 1, err)) ||
        (f.cond != PRED_ANY && !(scratch = rn_malloc((size_t)bs * per, err))))
        return -1;
    int cand[PREDICT_BATCH], m = 0, rc = 0;
    for (int i = f.first; i < s->n && in->n < want && rc == 0; i++) {
        if ((f.digit >= 0 && s->labels[i] != f.digit) ||
            (f.colour >= 0 && s->colours[i] != f.colour))
            continue;
        cand[m++] = i;
        if (m == bs) {
            rc = take(run, a, k.predicted, s, &f, cand, m, scratch, want, in, err);
            m = 0;
        }
    }
    if (rc == 0 && m > 0)
        rc = take(run, a, k.predicted, s, &f, cand, m, scratch, want, in, err);
    free(scratch);
    if (rc == 0 && in->n < want) {
        char what[256];
        describe(s, pal, &f, what, sizeof what);
        rc = rn_analysis_errorf(err, a, k.n, "only %d of %d %s", in->n, want, what);
    }
    return rc;
}

/* The keys of k are those of a's schema (a table out of step with its
 * enum would read another key's value). */
static int check_keys(const struct rn_spec_analysis *a, struct rn_input_keys k,
                      struct rn_error *err)
{
    const int idx[7] = {k.cases, k.split, k.n, k.digit, k.colour, k.predicted, k.index};
    static const char *const names[7] = {"cases",  "split",     "n",    "digit",
                                         "colour", "predicted", "index"};
    for (int j = 0; j < 7; j++)
        if ((j < 3 || idx[j] >= 0) && (idx[j] < 0 || idx[j] >= a->type->n_keys ||
                                       strcmp(a->type->keys[idx[j]].key, names[j])))
            return rn_analysis_errorf(err, a, -1,
                                      "internal error: the input keys of type '%s' do not match "
                                      "its schema (key '%s' at %d)",
                                      a->type->name, names[j], idx[j]);
    return 0;
}

int rn_inputs_build(struct rn_run *run, const struct rn_spec_analysis *a, struct rn_input_keys k,
                    struct rn_inputs *in, struct rn_error *err)
{
    memset(in, 0, sizeof *in);
    if (check_keys(a, k, err))
        return -1;
    const struct rn_split *first = &run->data.splits[0];
    in->h = first->h;
    in->w = first->w;
    return a->v.str[k.cases][0] ? build_cases(run, a, k, in, err) : build_split(run, a, k, in, err);
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
