/* analyses_basic.c - sample grids, the colour probe and colour statistics.
 */
#include "analysis.h"

#include <stddef.h>

#include "spec.h"

struct rn_run;
static int run_samples(struct rn_run *, const struct rn_spec_analysis *, struct rn_error *);
static int run_probe(struct rn_run *, const struct rn_spec_analysis *, struct rn_error *);
static int run_colour_stats(struct rn_run *, const struct rn_spec_analysis *, struct rn_error *);

static const struct rn_key samples_keys[] = {
    {"split", RN_KIND_STRING, 0, 0, "all", 1, 0, NULL, "split to draw from, or 'all'"},
    {"n", RN_KIND_INT, 0, 20, NULL, 1, 100, NULL, "images per split"},
};
const struct rn_analysis_type rn_analysis_samples = {
    .name = "samples",
    .doc = "a grid of the first n images of each split with label, colour and prediction",
    .keys = samples_keys,
    .n_keys = 2,
    .run = run_samples,
};

static const struct rn_key probe_keys[] = {
    {"digit", RN_KIND_INT, 0, 1, NULL, 0, 9, NULL, "digit to take from the split"},
    {"colour", RN_KIND_STRING, 0, 0, "red", 1, 0, NULL, "palette colour name or index for the background"},
    {"split", RN_KIND_STRING, 0, 0, "test", 1, 0, NULL, "split the digit comes from (its grey MNIST source)"},
    {"index", RN_KIND_INT, 0, -1, NULL, -1, 1e9, NULL, "index in the split; -1 = first image of that digit"},
};
const struct rn_analysis_type rn_analysis_probe = {
    .name = "probe",
    .doc = "a real digit re-coloured with a chosen background; the prediction and the 10 probabilities",
    .keys = probe_keys,
    .n_keys = 4,
    .run = run_probe,
};

static const struct rn_key colour_stats_keys[] = {
    {"split", RN_KIND_STRING, 0, 0, "all", 1, 0, NULL, "split, or 'all'"},
};
const struct rn_analysis_type rn_analysis_colour_stats = {
    .name = "colour_stats",
    .doc = "label x colour counts per split, and the detector's agreement with the generator",
    .keys = colour_stats_keys,
    .n_keys = 1,
    .run = run_colour_stats,
};

/* ---- run functions ---------------------------------------------------- */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spec.h"
#include "train.h"

#define NUM(a, key) ((a)->v.num[rn_analysis_key((a)->type, key)])
#define STR(a, key) ((a)->v.str[rn_analysis_key((a)->type, key)])

/* Splits selected by a 'split' key: one name, or every non-empty split for "all". */
static int select_splits(struct rn_run *run, const char *which, struct rn_split **out,
                         struct rn_error *err)
{
    int n = 0;
    for (int i = 0; i < run->data.n_splits; i++) {
        struct rn_split *s = &run->data.splits[i];
        if (s->n > 0 && (strcmp(which, "all") == 0 || strcmp(which, s->name) == 0))
            out[n++] = s;
    }
    if (n == 0)
        return rn_errorf(err, "no split named '%s' with images; expected train, val, test or all",
                         which);
    return n;
}

static int run_samples(struct rn_run *run, const struct rn_spec_analysis *a, struct rn_error *err)
{
    struct rn_split *splits[RN_MAX_SPLITS];
    int ns = select_splits(run, STR(a, "split"), splits, err);
    if (ns < 0)
        return -1;
    char group[256];
    snprintf(group, sizeof group, "/analyses/%s", a->name);
    for (int si = 0; si < ns; si++) {
        struct rn_split *s = splits[si];
        int n = (int)NUM(a, "n") < s->n ? (int)NUM(a, "n") : s->n;
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
    return rn_results_set_attr_str(run->results, group, "kind", "samples", err);
}

static int run_probe(struct rn_run *run, const struct rn_spec_analysis *a, struct rn_error *err)
{
    const struct rn_data_config *dc = &run->spec->data;
    if (!run->has_graph)
        return rn_errorf(err, "%s:%d:%d: error: analysis '%s' (probe) needs a model", a->file,
                         a->line, a->col, a->name);
    if (dc->colouring == RN_COLOURING_NONE)
        return rn_errorf(err, "%s:%d:%d: error: analysis '%s' (probe) needs coloured data (data.colouring: background or stroke)",
                         a->file, a->line, a->col, a->name);
    int colour = rn_palette_index(&dc->palette, STR(a, "colour"));
    if (colour < 0)
        return rn_errorf(err, "%s:%d:%d: error: analysis '%s' (probe): unknown colour '%s'; expected a palette name (red, green, ...) or 0-9",
                         a->file, a->line, a->col, a->name, STR(a, "colour"));
    struct rn_split *s = rn_data_split(&run->data, STR(a, "split"));
    if (!s || s->n == 0)
        return rn_errorf(err, "%s:%d:%d: error: analysis '%s' (probe): no split '%s' with images",
                         a->file, a->line, a->col, a->name, STR(a, "split"));
    int digit = (int)NUM(a, "digit"), index = (int)NUM(a, "index");
    if (index < 0)
        for (int i = 0; i < s->n && index < 0; i++)
            if (s->labels[i] == digit)
                index = i;
    if (index < 0 || index >= s->n)
        return rn_errorf(err, "%s:%d:%d: error: analysis '%s' (probe): no image %d of digit %d in split '%s' (%d images)",
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
    float probs[16];
    if (rn_graph_input_commit(&run->graph, err) || rn_run_predict(run, 1, run->probs, err))
        return -1;
    memcpy(probs, run->probs, sizeof(float) * run->data.n_classes);
    int pred = rn_argmax(probs, run->data.n_classes);
    char group[256], path[320], title[128];
    snprintf(group, sizeof group, "/analyses/%s", a->name);
    snprintf(title, sizeof title, "digit %d on %s", s->labels[index], dc->palette.names[colour]);
    int dims[3] = {3, h, w}, k = run->data.n_classes;
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

static int run_colour_stats(struct rn_run *run, const struct rn_spec_analysis *a,
                            struct rn_error *err)
{
    struct rn_split *splits[RN_MAX_SPLITS];
    int ns = select_splits(run, STR(a, "split"), splits, err);
    if (ns < 0)
        return -1;
    char group[256];
    snprintf(group, sizeof group, "/analyses/%s", a->name);
    const struct rn_data_config *dc = &run->spec->data;
    for (int si = 0; si < ns; si++) {
        struct rn_split *s = splits[si];
        if (s->c != 3)
            return rn_errorf(err, "analysis '%s' (colour_stats) needs coloured data", a->name);
        int counts[10][10] = {{0}};
        long agree = 0, same = 0;
        const float texture_mean = 0.5f * (dc->noise_lo + dc->noise_hi);
        for (int i = 0; i < s->n; i++) {
            counts[s->labels[i]][s->colours[i]]++;
            same += s->labels[i] == s->colours[i];
            const uint8_t *img = s->images + (size_t)i * 3 * s->h * s->w;
            agree += rn_colour_detect(img, s->h, s->w, &dc->palette, texture_mean) == s->colours[i];
        }
        char path[320];
        int dims[2] = {10, 10};
        snprintf(path, sizeof path, "%s/%s", group, s->name);
        if (rn_results_write(run->results, path, RN_DTYPE_I32, counts, 2, dims, err))
            return -1;
        double rates[2] = {s->n ? (double)same / s->n : 0, s->n ? (double)agree / s->n : 0};
        int two = 2;
        snprintf(path, sizeof path, "%s/%s_rates", group, s->name);
        if (rn_results_write(run->results, path, RN_DTYPE_F64, rates, 1, &two, err))
            return -1;
        if (!run->opt.quiet)
            fprintf(run->opt.log,
                    "%-5s %6d images: colour == label %6.2f%%, pixel detector agrees with the generator %6.2f%%\n",
                    s->name, s->n, 100 * rates[0], 100 * rates[1]);
    }
    return rn_results_set_attr_str(run->results, group, "kind", "colour_stats", err);
}

int rn_run_analyses(struct rn_run *run, struct rn_error *err)
{
    const struct rn_spec *spec = run->spec;
    /* The analyses run where the model is: on a device graph they read
     * back only the logits, maps and gradients they write out. */
    for (int i = 0; i < spec->n_analyses; i++) {
        const struct rn_spec_analysis *a = &spec->analyses[i];
        if (a->type->run(run, a, err))
            return -1;
        if (rn_results_flush(run->results, err))
            return -1;
    }
    return 0;
}
