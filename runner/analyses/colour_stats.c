/* colour_stats.c - label x colour counts per split, and how often the pixel
 * colour detector agrees with the generator. */
#include "common.h"

#include <stdlib.h>
#include <string.h>

enum { COLOUR_STATS_SPLIT, COLOUR_STATS_N_KEYS };
static const struct rn_key colour_stats_keys[] = {
    [COLOUR_STATS_SPLIT] = {"split", RN_KIND_STRING, 0, 0, "all", 1, 0, NULL, "split, or 'all'"},
};
_Static_assert(RN_N_KEYS(colour_stats_keys) == COLOUR_STATS_N_KEYS,
               "one schema row per COLOUR_STATS_ key");

static int run_colour_stats(struct rn_run *, const struct rn_spec_analysis *, struct rn_error *);
static int plot_colour_stats(struct rn_plotter *, const char *, const char *, char *const *, int,
                             struct rn_error *);
const struct rn_analysis_type rn_analysis_colour_stats = {
    .name = "colour_stats",
    .doc = "label x colour counts per split, and the detector's agreement with the generator",
    .keys = colour_stats_keys,
    .n_keys = COLOUR_STATS_N_KEYS,
    .run = run_colour_stats,
    .plot = plot_colour_stats,
};

/* ---- run ----------------------------------------------------------------- */

static int run_colour_stats(struct rn_run *run, const struct rn_spec_analysis *a,
                            struct rn_error *err)
{
    struct rn_split *splits[RN_MAX_SPLITS];
    int ns = rn_analysis_splits(run, a->v.str[COLOUR_STATS_SPLIT], splits, err);
    if (ns < 0)
        return -1;
    char group[256];
    snprintf(group, sizeof group, "/analyses/%s", a->name);
    const struct rn_data_config *dc = &run->spec->data;
    for (int si = 0; si < ns; si++) {
        struct rn_split *s = splits[si];
        if (s->c != 3)
            return rn_errorf(err, "analysis '%s' (colour_stats) needs coloured data", a->name);
        /* (classes, colours): label x the colour the generator drew */
        const int k = run->data.n_classes;
        int32_t counts[k][RN_N_COLOURS];
        memset(counts, 0, sizeof counts);
        long agree = 0, same = 0;
        const float texture_mean = 0.5f * (dc->noise_lo + dc->noise_hi);
        for (int i = 0; i < s->n; i++) {
            counts[s->labels[i]][s->colours[i]]++;
            same += s->labels[i] == s->colours[i];
            const uint8_t *img = s->images + (size_t)i * 3 * s->h * s->w;
            agree += rn_colour_detect(img, s->h, s->w, &dc->palette, texture_mean) == s->colours[i];
        }
        char path[320];
        int dims[2] = {k, RN_N_COLOURS};
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
                    "%-5s %6d images: colour == label %6.2f%%, pixel detector agrees with the "
                    "generator %6.2f%%\n",
                    s->name, s->n, 100 * rates[0], 100 * rates[1]);
    }
    return rn_results_set_attr_str(run->results, group, "kind", "colour_stats", err);
}

/* ---- figure: one heatmap per split ----------------------------------------- */

static int plot_colour_stats(struct rn_plotter *p, const char *group, const char *name,
                             char *const *datasets, int n_datasets, struct rn_error *err)
{
    for (int q = 0; q < n_datasets; q++) {
        const char *rest = datasets[q];
        if (!*rest || strchr(rest, '/'))
            continue;
        /* The group stores more than the matrices (the detector's
         * agreement): draw only int32 matrices. */
        char dataset[RN_PLOT_PATH_MAX];
        snprintf(dataset, sizeof dataset, "%s/%s", group, rest);
        int32_t *m = NULL;
        int nd, dims[4], rc = 0;
        if (rn_results_read(p->r, dataset, RN_DTYPE_I32, (void **)&m, &nd, dims, NULL) == 0 &&
            nd == 2)
            rc = rn_plot_heatmap(p, dataset, rest, 1, err);
        free(m);
        if (rc)
            return -1;
    }
    return 0;
}
