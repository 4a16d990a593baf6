/* compare.c - runs side by side, from their run.h5 files alone (compare.h). */
#include "compare.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "paths.h"
#include "plot.h"
#include "results.h"
#include "train.h"

/* ---- the default figures ------------------------------------------------- */

/* The data's test split follows test_rule (conflicting by default: every
 * digit on another digit's colour), val the training distribution; a colour
 * head's accuracy is chance at 1 in 10. */
const struct rn_compare_metric rn_compare_default_lines[] = {
    {"test/accuracy", "digit accuracy on the hard test set", 0, 0},
    {"test/colour_accuracy", "colour-head accuracy on the hard test set (chance 10%)", 10, 1},
};
const int rn_compare_n_default_lines =
    (int)(sizeof rn_compare_default_lines / sizeof rn_compare_default_lines[0]);
const char *const rn_compare_default_lines_title =
    "hard test set (every digit on another digit's colour)";
const struct rn_compare_metric rn_compare_default_bars[] = {
    {"val/accuracy", "easy val", 0, 1},
    {"test/accuracy", "hard test", 0, 0},
};
const int rn_compare_n_default_bars =
    (int)(sizeof rn_compare_default_bars / sizeof rn_compare_default_bars[0]);

/* ---- reading the runs ----------------------------------------------------- */

struct series {
    double *x, *v;
    int n;
};

struct run_data {
    char label[128];
    struct series line[RN_COMPARE_MAX_METRICS], bar[RN_COMPARE_MAX_METRICS];
    int last_epoch;
};

static void run_data_free(struct run_data *d)
{
    for (int i = 0; i < RN_COMPARE_MAX_METRICS; i++) {
        free(d->line[i].x);
        free(d->line[i].v);
        free(d->bar[i].x);
        free(d->bar[i].v);
    }
}

/* Accuracies are stored as fractions and drawn in percent. */
static int is_percent(const char *metric)
{
    size_t n = strlen(metric), k = strlen("accuracy");
    return n >= k && strcmp(metric + n - k, "accuracy") == 0;
}

static const char *caption_of(const struct rn_compare_metric *m)
{
    return m->caption ? m->caption : m->name;
}

/* Value at epoch e, or NAN. */
static double at_epoch(const struct series *s, int e)
{
    for (int i = 0; i < s->n; i++)
        if ((int)lround(s->x[i]) == e)
            return s->v[i];
    return NAN;
}

/* 1 when /metrics/<name> exists and is per epoch (x_label "epoch"). */
static int per_epoch(struct rn_results *r, const char *name)
{
    char path[RN_PATH_MAX], *xl = NULL;
    snprintf(path, sizeof path, "/metrics/%s", name);
    if (!rn_results_exists(r, path) || rn_results_get_attr_str(r, path, "x_label", &xl, NULL))
        return 0;
    int yes = strcmp(xl, "epoch") == 0;
    free(xl);
    return yes;
}

/* "compare: FILE has no per-epoch M (its per-epoch metrics: a, b)"; a
 * metric that is there per step says so. */
static int missing_metric(struct rn_results *r, const char *file, const char *metric,
                          struct rn_error *err)
{
    char have[512] = "", path[RN_PATH_MAX];
    size_t len = 0;
    char **names = NULL;
    int n = 0;
    if (rn_results_exists(r, "/metrics") && rn_results_list(r, "/metrics", &names, &n, NULL) == 0)
        for (int i = 0; i < n && len < sizeof have; i++)
            if (per_epoch(r, names[i]))
                len += (size_t)snprintf(have + len, sizeof have - len, "%s%s", len ? ", " : "",
                                        names[i]);
    rn_results_free_list(names, n);
    snprintf(path, sizeof path, "/metrics/%s", metric);
    const char *note = rn_results_exists(r, path) ? "it is there per step; " : "";
    if (!have[0])
        return rn_errorf(err, "compare: %s has no per-epoch %s (%sit has no per-epoch metrics: "
                              "was train.eval empty?)", file, metric, note);
    return rn_errorf(err, "compare: %s has no per-epoch %s (%sits per-epoch metrics: %s)", file,
                     metric, note, have);
}

static int read_metric(struct rn_results *r, const char *file, const struct rn_compare_metric *m,
                       struct series *s, struct rn_error *err)
{
    memset(s, 0, sizeof *s);
    if (!per_epoch(r, m->name))
        return m->optional ? 0 : missing_metric(r, file, m->name, err);
    return rn_results_read_metric(r, m->name, &s->x, &s->v, &s->n, err);
}

static int load_run(const char *dir, const struct rn_compare_options *o, struct run_data *d,
                    struct rn_error *err)
{
    char file[RN_PATH_MAX + 16];
    struct stat st;
    if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
        snprintf(file, sizeof file, "%s/run.h5", dir);
    else
        snprintf(file, sizeof file, "%s", dir);
    struct rn_results *r = NULL;
    if (rn_results_open(&r, file, err))
        return rn_error_prefix(err, "compare");
    char *name = NULL;
    if (rn_results_get_attr_str(r, "/config", "experiment", &name, NULL) != 0)
        name = NULL;
    snprintf(d->label, sizeof d->label, "%s", name ? name : "run");
    free(name);
    for (char *p = d->label; *p; p++) /* gnuplot reads labels as words */
        if (*p == ' ' || *p == '"' || *p == '\'')
            *p = '_';
    int rc = 0;
    for (int i = 0; i < o->n_lines && !rc; i++)
        rc = read_metric(r, file, &o->lines[i], &d->line[i], err);
    for (int i = 0; i < o->n_bars && !rc; i++)
        rc = read_metric(r, file, &o->bars[i], &d->bar[i], err);
    /* the first line metric gives the run's epochs */
    if (!rc && d->line[0].n == 0)
        rc = missing_metric(r, file, o->lines[0].name, err);
    rn_results_close(r);
    if (rc)
        return -1;
    for (int i = 0; i < d->line[0].n; i++)
        if ((int)lround(d->line[0].x[i]) > d->last_epoch)
            d->last_epoch = (int)lround(d->line[0].x[i]);
    return 0;
}

/* Labels are experiment names; runs of one experiment (sweeps by override)
 * are told apart by their folder: task4_m2:m2_w50 (which loses its spaces
 * and quotes too). */
static int label_runs(const char *const *run_dirs, struct run_data *runs, int n_runs,
                      struct rn_error *err)
{
    unsigned char *dup = rn_calloc((size_t)n_runs, 1, err);
    if (!dup)
        return -1;
    for (int k = 0; k < n_runs; k++)
        for (int j = 0; j < n_runs; j++)
            dup[k] |= j != k && strcmp(runs[j].label, runs[k].label) == 0;
    for (int k = 0; k < n_runs; k++) {
        if (!dup[k])
            continue;
        char *real = realpath(run_dirs[k], NULL);
        const char *dir = real ? real : run_dirs[k];
        const char *base = strrchr(dir, '/');
        base = base ? base + 1 : dir;
        if (strcmp(base, "run.h5") == 0 && base > dir + 1) { /* a file: its folder */
            const char *b = base - 2;
            while (b > dir && *b != '/')
                b--;
            base = *b == '/' ? b + 1 : b;
        }
        size_t len = strlen(runs[k].label);
        snprintf(runs[k].label + len, sizeof runs[k].label - len, ":%.*s",
                 (int)strcspn(base, "/"), base);
        free(real);
    }
    free(dup);
    for (int k = 0; k < n_runs; k++)
        for (char *p = runs[k].label; *p; p++)
            if (*p == ' ' || *p == '"' || *p == '\'')
                *p = '_';
    return 0;
}

/* The control's 1-based index (0: none): a run as given or its label. */
static int find_control(const char *control, const char *const *run_dirs,
                        const struct run_data *runs, int n_runs, struct rn_error *err)
{
    if (!control)
        return 0;
    for (int k = 0; k < n_runs; k++)
        if (strcmp(control, run_dirs[k]) == 0 || strcmp(control, runs[k].label) == 0)
            return k + 1;
    char labels[1024] = "";
    size_t len = 0;
    for (int k = 0; k < n_runs && len < sizeof labels; k++)
        len += (size_t)snprintf(labels + len, sizeof labels - len, "%s%s", k ? ", " : "",
                                runs[k].label);
    return rn_errorf(err, "compare: --control %s is none of the runs (give a RUN_DIR as "
                          "written or a label: %s)", control, labels);
}

/* ---- the data files ------------------------------------------------------- */

static void put_value(FILE *f, const char *metric, double v)
{
    if (isnan(v))
        fputs(" NaN", f);
    else if (is_percent(metric))
        fprintf(f, " %.4f", 100 * v);
    else
        fprintf(f, " %.6g", v);
}

static int write_epochs(const char *data_dir, const char *const *run_dirs,
                        const struct run_data *runs, int n_runs,
                        const struct rn_compare_options *o, struct rn_error *err)
{
    for (int k = 0; k < n_runs; k++) {
        const struct run_data *d = &runs[k];
        char path[RN_PATH_MAX + 64];
        snprintf(path, sizeof path, "%s/compare_epochs_%d.dat", data_dir, k + 1);
        FILE *f = fopen(path, "w");
        if (!f)
            return rn_errorf(err, "%s: cannot write: %s", path, strerror(errno));
        fprintf(f, "# %s (%s): epoch", d->label, run_dirs[k]);
        for (int m = 0; m < o->n_lines; m++)
            fprintf(f, ", %s%s", o->lines[m].name, is_percent(o->lines[m].name) ? " %" : "");
        fputc('\n', f);
        for (int i = 0; i < d->line[0].n; i++) {
            int e = (int)lround(d->line[0].x[i]);
            fprintf(f, "%d", e);
            for (int m = 0; m < o->n_lines; m++)
                put_value(f, o->lines[m].name, m == 0 ? d->line[0].v[i] : at_epoch(&d->line[m], e));
            fputc('\n', f);
        }
        fclose(f);
    }
    return 0;
}

/* compare_summary.dat (the bars) and compare.txt (the same as a table, the
 * control marked). */
static int write_summary(const char *out_dir, const char *data_dir, const struct run_data *runs,
                         int n_runs, int epoch, int control, const struct rn_compare_options *o,
                         struct rn_error *err)
{
    char path[RN_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/compare_summary.dat", data_dir);
    FILE *f = fopen(path, "w");
    snprintf(path, sizeof path, "%s/compare.txt", out_dir);
    FILE *txt = fopen(path, "w");
    if (!f || !txt) {
        if (f)
            fclose(f);
        if (txt)
            fclose(txt);
        return rn_errorf(err, "%s: cannot write: %s", out_dir, strerror(errno));
    }
    fprintf(f, "# label");
    fprintf(txt, "%-32s %6s", "run", "epoch");
    for (int b = 0; b < o->n_bars; b++) {
        fprintf(f, ", %s%s", o->bars[b].name, is_percent(o->bars[b].name) ? " %" : "");
        fprintf(txt, " %10s", caption_of(&o->bars[b]));
    }
    fprintf(f, ", epoch used\n");
    fputc('\n', txt);
    for (int k = 0; k < n_runs; k++) {
        const struct run_data *d = &runs[k];
        int e = d->last_epoch < epoch ? d->last_epoch : epoch;
        fprintf(f, "\"%s (%d ep)\"", d->label, e);
        char name[160];
        snprintf(name, sizeof name, "%s%s", d->label, k + 1 == control ? " (control)" : "");
        fprintf(txt, "%-32s %6d", name, e);
        for (int b = 0; b < o->n_bars; b++) {
            double v = at_epoch(&d->bar[b], e);
            put_value(f, o->bars[b].name, v);
            if (is_percent(o->bars[b].name))
                fprintf(txt, " %9.2f%%", 100 * v);
            else
                fprintf(txt, " %10.4g", v);
        }
        fprintf(f, " %d\n", e);
        fputc('\n', txt);
    }
    fclose(f);
    fclose(txt);
    return 0;
}

/* ---- drawing -------------------------------------------------------------- */

/* Appends name='text' to defs, text quoted for gnuplot (' doubled). */
static void def_str(char *defs, size_t cap, const char *name, const char *text)
{
    size_t len = strlen(defs);
    len += (size_t)snprintf(defs + len, cap > len ? cap - len : 0, "%s='", name);
    for (const char *p = text; *p && len + 3 < cap; p++) {
        if (*p == '\'')
            defs[len++] = '\'';
        defs[len++] = *p;
    }
    if (len + 3 < cap)
        snprintf(defs + len, cap - len, "'; ");
}

static int draw(const char *out_dir, const char *data_dir, const struct run_data *runs,
                int n_runs, int epoch, int control, const struct rn_compare_options *o,
                struct rn_error *err)
{
    const char *fmt = o->format ? o->format : "png";
    char script[RN_PATH_MAX + 16];
    snprintf(script, sizeof script, "%s/compare.gp", rn_plot_scripts_dir());
    if (access(script, R_OK) != 0)
        return rn_errorf(err, "%s: cannot read gnuplot script: %s (set RUNNER_PLOTS to the "
                              "plots/ folder of the source tree)", script, strerror(errno));
    /* a panel for each line metric some run has */
    int max_epoch = 1, n_panels = 0;
    char labels[4096] = "", panels[64] = "", defs[16384] = "";
    size_t len = 0;
    for (int k = 0; k < n_runs; k++) {
        if (runs[k].last_epoch > max_epoch)
            max_epoch = runs[k].last_epoch;
        if (len < sizeof labels)
            len += (size_t)snprintf(labels + len, sizeof labels - len, "%s%s", k ? " " : "",
                                    runs[k].label);
    }
    for (int m = 0; m < o->n_lines; m++) {
        int has = 0;
        for (int k = 0; k < n_runs; k++)
            has |= runs[k].line[m].n > 0;
        if (!has)
            continue;
        n_panels++;
        char name[32];
        snprintf(panels + strlen(panels), sizeof panels - strlen(panels), "%s%d",
                 n_panels > 1 ? " " : "", m + 2);
        snprintf(name, sizeof name, "panel_title_%d", n_panels);
        def_str(defs, sizeof defs, name, caption_of(&o->lines[m]));
        len = strlen(defs);
        snprintf(defs + len, sizeof defs - len, "panel_chance_%d=%.17g; panel_percent_%d=%d; ",
                 n_panels, o->lines[m].chance, n_panels, is_percent(o->lines[m].name));
    }
    int bars_percent = 1;
    char summary_title[1024] = "";
    for (int b = 0; b < o->n_bars; b++) {
        char name[32];
        bars_percent &= is_percent(o->bars[b].name);
        snprintf(name, sizeof name, "bar_title_%d", b + 1);
        def_str(defs, sizeof defs, name, caption_of(&o->bars[b]));
        len = strlen(summary_title);
        snprintf(summary_title + len, sizeof summary_title - len, "%s%s", b ? " vs " : "",
                 caption_of(&o->bars[b]));
    }
    def_str(defs, sizeof defs, "bars_title", summary_title);
    def_str(defs, sizeof defs, "lines_title", o->lines_title ? o->lines_title : "");
    def_str(defs, sizeof defs, "labels", labels);
    len = strlen(defs);
    snprintf(defs + len, sizeof defs - len,
             "panels='%s'; n_bars=%d; bars_percent=%d; epoch=%d; max_epoch=%d; "
             "control=%d; ",
             panels, o->n_bars, bars_percent, epoch, max_epoch, control);
    const char *which[] = {"epochs", "summary"};
    for (int w = 0; w < 2; w++) {
        char out[RN_PATH_MAX + 64], all[sizeof defs + 4 * RN_PATH_MAX];
        snprintf(out, sizeof out, "%s/compare_%s.%s", out_dir, which[w], fmt);
        snprintf(all, sizeof all, "fmt='%s'; W=%d; H=%d; out='%s'; datadir='%s'; plotsdir='%s'; "
                                  "which='%s'; %s",
                 fmt, w == 0 && n_panels > 1 ? 700 * n_panels : 900, 560, out, data_dir,
                 rn_plot_scripts_dir(), which[w], defs);
        if (rn_plot_gnuplot(script, all, out, "compare", err))
            return -1;
    }
    return 0;
}

/* ---- the comparison ------------------------------------------------------- */

int rn_compare(const char *const *run_dirs, int n_runs, const char *out_dir,
               const struct rn_compare_options *opt, struct rn_error *err)
{
    if (n_runs < 1)
        return rn_errorf(err, "compare: no runs given");
    struct rn_compare_options o = *opt;
    if (!o.lines) {
        o.lines = rn_compare_default_lines;
        o.n_lines = rn_compare_n_default_lines;
        o.lines_title = rn_compare_default_lines_title;
    }
    if (!o.bars) {
        o.bars = rn_compare_default_bars;
        o.n_bars = rn_compare_n_default_bars;
    }
    if (o.n_lines < 1 || o.n_lines > RN_COMPARE_MAX_METRICS || o.n_bars < 1 ||
        o.n_bars > RN_COMPARE_MAX_METRICS)
        return rn_errorf(err, "compare: 1 to %d line metrics and bar metrics each, got %d and %d",
                         RN_COMPARE_MAX_METRICS, o.n_lines, o.n_bars);
    struct run_data *runs = rn_calloc((size_t)n_runs, sizeof *runs, err);
    if (!runs)
        return -1;
    int rc = -1, control = 0;
    char data_dir[RN_PATH_MAX + 8];
    for (int k = 0; k < n_runs; k++)
        if (load_run(run_dirs[k], &o, &runs[k], err))
            goto done;
    if (label_runs(run_dirs, runs, n_runs, err))
        goto done;
    if ((control = find_control(o.control, run_dirs, runs, n_runs, err)) < 0)
        goto done;
    snprintf(data_dir, sizeof data_dir, "%s/data", out_dir);
    if (rn_make_dirs(data_dir, err))
        goto done;
    /* equal epochs: the last epoch every multi-epoch run reached */
    int epoch = o.epoch;
    if (epoch <= 0) {
        epoch = 0;
        for (int k = 0; k < n_runs; k++)
            if (runs[k].last_epoch > 1 && (epoch == 0 || runs[k].last_epoch < epoch))
                epoch = runs[k].last_epoch;
        if (epoch == 0)
            epoch = 1;
    }
    if (write_epochs(data_dir, run_dirs, runs, n_runs, &o, err) ||
        write_summary(out_dir, data_dir, runs, n_runs, epoch, control, &o, err) ||
        draw(out_dir, data_dir, runs, n_runs, epoch, control, &o, err))
        goto done;
    rc = 0;
done:
    for (int k = 0; k < n_runs; k++)
        run_data_free(&runs[k]);
    free(runs);
    return rc;
}
