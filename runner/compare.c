/* compare.c - runs side by side, from their run.h5 files alone (compare.h). */
#include "compare.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <spawn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "plot.h"
#include "results.h"
#include "train.h"

extern char **environ;

#define CMP_PATH 1024

struct series {
    double *x, *v;
    int n;
};

struct run_data {
    char label[128];
    struct series val, test, colour;
    int last_epoch;
};

static void series_free(struct series *s)
{
    free(s->x);
    free(s->v);
    memset(s, 0, sizeof *s);
}

static int read_series(struct rn_results *r, const char *name, struct series *s,
                       struct rn_error *err)
{
    char path[256];
    snprintf(path, sizeof path, "/metrics/%s", name);
    memset(s, 0, sizeof *s);
    if (!rn_results_exists(r, path))
        return 0;
    return rn_results_read_metric(r, name, &s->x, &s->v, &s->n, err);
}

/* Value at epoch e, or NAN. Accuracies are stored as fractions. */
static double at_epoch(const struct series *s, int e)
{
    for (int i = 0; i < s->n; i++)
        if ((int)lround(s->x[i]) == e)
            return s->v[i];
    return NAN;
}

static int load_run(const char *dir, struct run_data *d, struct rn_error *err)
{
    char file[CMP_PATH];
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
    /* gnuplot reads labels as words */
    for (char *p = d->label; *p; p++)
        if (*p == ' ' || *p == '"' || *p == '\'')
            *p = '_';
    int rc = read_series(r, "val/accuracy", &d->val, err) ||
             read_series(r, "test/accuracy", &d->test, err) ||
             read_series(r, "test/color_accuracy", &d->colour, err);
    rn_results_close(r);
    if (rc)
        return -1;
    if (d->test.n == 0)
        return rn_errorf(err, "compare: %s has no per-epoch test/accuracy (was test in "
                              "train.eval?)", file);
    for (int i = 0; i < d->test.n; i++)
        if ((int)lround(d->test.x[i]) > d->last_epoch)
            d->last_epoch = (int)lround(d->test.x[i]);
    return 0;
}

/* gnuplot -e "<defs>" plots/compare.gp */
static int gnuplot(const char *defs, const char *out, struct rn_error *err)
{
    char script[CMP_PATH];
    snprintf(script, sizeof script, "%s/compare.gp", rn_plot_scripts_dir());
    if (access(script, R_OK) != 0)
        return rn_errorf(err, "%s: cannot read gnuplot script: %s (set RUNNER_PLOTS to the "
                              "plots/ folder of the source tree)", script, strerror(errno));
    return rn_plot_gnuplot(script, defs, out, "compare", err);
}

int rn_compare(const char *const *run_dirs, int n_runs, const char *out_dir, int epoch,
               const char *format, struct rn_error *err)
{
    if (n_runs < 1)
        return rn_errorf(err, "compare: no runs given");
    const char *fmt = format ? format : "png";
    struct run_data *runs = rn_calloc((size_t)n_runs, sizeof *runs, err);
    if (!runs)
        return -1;
    int rc = -1;
    char data_dir[CMP_PATH], path[CMP_PATH + 64];
    for (int k = 0; k < n_runs; k++)
        if (load_run(run_dirs[k], &runs[k], err))
            goto done;
    /* runs of one experiment (sweeps by override) are told apart by their
     * folder: task4_m2:m2_w50 */
    unsigned char *dup = rn_calloc((size_t)n_runs, 1, err);
    if (!dup)
        goto done;
    for (int k = 0; k < n_runs; k++)
        for (int j = 0; j < n_runs; j++)
            dup[k] |= j != k && strcmp(runs[j].label, runs[k].label) == 0;
    for (int k = 0; k < n_runs; k++) {
        if (!dup[k])
            continue;
        char real[CMP_PATH];
        const char *dir = realpath(run_dirs[k], real) ? real : run_dirs[k];
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
    }
    free(dup);
    for (int k = 0; k < n_runs; k++)
        for (char *p = runs[k].label; *p; p++)
            if (*p == ' ' || *p == '"' || *p == '\'')
                *p = '_';
    snprintf(data_dir, sizeof data_dir, "%s/data", out_dir);
    if (rn_make_dirs(data_dir, err))
        goto done;

    /* equal epochs: the last epoch every multi-epoch run reached */
    if (epoch <= 0) {
        epoch = 0;
        for (int k = 0; k < n_runs; k++)
            if (runs[k].last_epoch > 1 && (epoch == 0 || runs[k].last_epoch < epoch))
                epoch = runs[k].last_epoch;
        if (epoch == 0)
            epoch = 1;
    }
    int has_colour = 0, max_epoch = 1;
    char labels[4096] = "";
    size_t len = 0;
    for (int k = 0; k < n_runs; k++) {
        struct run_data *d = &runs[k];
        has_colour |= d->colour.n > 0;
        if (d->last_epoch > max_epoch)
            max_epoch = d->last_epoch;
        if (len < sizeof labels)
            len += (size_t)snprintf(labels + len, sizeof labels - len, "%s%s", k ? " " : "",
                                    d->label);
        snprintf(path, sizeof path, "%s/compare_epochs_%d.dat", data_dir, k + 1);
        FILE *f = fopen(path, "w");
        if (!f) {
            rn_errorf(err, "%s: cannot write: %s", path, strerror(errno));
            goto done;
        }
        fprintf(f, "# %s (%s): epoch, hard-test accuracy %%, hard-test colour-head accuracy %%\n",
                d->label, run_dirs[k]);
        for (int i = 0; i < d->test.n; i++) {
            int e = (int)lround(d->test.x[i]);
            double c = at_epoch(&d->colour, e);
            if (isnan(c))
                fprintf(f, "%d %.4f NaN\n", e, 100 * d->test.v[i]);
            else
                fprintf(f, "%d %.4f %.4f\n", e, 100 * d->test.v[i], 100 * c);
        }
        fclose(f);
    }
    snprintf(path, sizeof path, "%s/compare_summary.dat", data_dir);
    FILE *f = fopen(path, "w");
    snprintf(path, sizeof path, "%s/compare.txt", out_dir);
    FILE *txt = fopen(path, "w");
    if (!f || !txt) {
        if (f)
            fclose(f);
        if (txt)
            fclose(txt);
        rn_errorf(err, "%s: cannot write: %s", out_dir, strerror(errno));
        goto done;
    }
    fprintf(f, "# label, easy-val accuracy %%, hard-test accuracy %%, epoch used\n");
    fprintf(txt, "%-32s %6s %10s %10s\n", "run", "epoch", "easy val", "hard test");
    for (int k = 0; k < n_runs; k++) {
        struct run_data *d = &runs[k];
        int e = d->last_epoch < epoch ? d->last_epoch : epoch;
        double v = at_epoch(&d->val, e), t = at_epoch(&d->test, e);
        fprintf(f, "\"%s (%d ep)\" %.4f %.4f %d\n", d->label, e, 100 * v, 100 * t, e);
        fprintf(txt, "%-32s %6d %9.2f%% %9.2f%%\n", d->label, e, 100 * v, 100 * t);
    }
    fclose(f);
    fclose(txt);

    char defs[8192];
    const char *which[] = {"epochs", "summary"};
    for (int w = 0; w < 2; w++) {
        char out[CMP_PATH + 64];
        snprintf(out, sizeof out, "%s/compare_%s.%s", out_dir, which[w], fmt);
        snprintf(defs, sizeof defs,
                 "fmt='%s'; W=%d; H=%d; out='%s'; datadir='%s'; plotsdir='%s'; which='%s'; "
                 "labels='%s'; epoch=%d; max_epoch=%d; has_colour=%d; ",
                 fmt, w == 0 && has_colour ? 1400 : 900, 560, out, data_dir, rn_plot_scripts_dir(),
                 which[w], labels, epoch, max_epoch, has_colour);
        if (gnuplot(defs, out, err))
            goto done;
    }
    rc = 0;
done:
    for (int k = 0; k < n_runs; k++) {
        series_free(&runs[k].val);
        series_free(&runs[k].test);
        series_free(&runs[k].colour);
    }
    free(runs);
    return rc;
}
