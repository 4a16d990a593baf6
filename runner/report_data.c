/* report_data.c - what a report shows, gathered from the runs (report.h): each
 * run's state, the tables' numbers and the figures' files. report_html.c
 * writes the page from it. */
#define _GNU_SOURCE /* strptime, tm_gmtoff */
#include "report_internal.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "plot.h"
#include "results.h"
#include "run.h"
#include "sweep.h"

/* ---- locating runs ------------------------------------------------------------------ */

void rn_report_locate(const struct rn_report *rep, const char *run, char *dir, size_t dir_size,
                      char *experiment, size_t exp_size)
{
    if (strchr(run, '/')) {
        snprintf(dir, dir_size, "%s", run);
        experiment[0] = '\0';
        return;
    }
    snprintf(dir, dir_size, "%s/%s/latest", rep->results, run);
    snprintf(experiment, exp_size, "%s/%s.yaml", rep->experiments, run);
}

int rn_report_runs(const struct rn_report *rep, const char ***runs, int *n, struct rn_error *err)
{
    int cap = 0;
    for (int i = 0; i < rep->n_sections; i++) {
        cap += rep->sections[i].n_figures;
        for (int j = 0; j < rep->sections[i].n_tables; j++)
            cap += rep->sections[i].tables[j].n_runs;
    }
    *n = 0;
    *runs = rn_calloc((size_t)(cap ? cap : 1), sizeof **runs, err);
    if (!*runs)
        return -1;
    const char **out = *runs;
#define ADD(name)                                                                                  \
    do {                                                                                           \
        int seen_ = 0;                                                                             \
        for (int k_ = 0; k_ < *n && !seen_; k_++)                                                  \
            seen_ = strcmp(out[k_], (name)) == 0;                                                  \
        if (!seen_)                                                                                \
            out[(*n)++] = (name);                                                                  \
    } while (0)
    for (int i = 0; i < rep->n_sections; i++) {
        const struct rn_report_section *s = &rep->sections[i];
        for (int j = 0; j < s->n_tables; j++)
            for (int k = 0; !s->tables[j].sweep[0] && k < s->tables[j].n_runs; k++)
                ADD(s->tables[j].runs[k]); /* a sweep's rows are its groups, not runs */
        for (int j = 0; j < s->n_figures; j++)
            ADD(s->figures[j].run);
    }
#undef ADD
    return 0;
}

/* ---- a run's state ------------------------------------------------------------------ */

/* Seconds since the epoch of "2026-12-04T10:10:46+0000", or -1. */
static double parse_time(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(s, "%Y-%m-%dT%H:%M:%S%z", &tm);
    if (!end || *end)
        return -1;
    long off = tm.tm_gmtoff;
    return (double)timegm(&tm) - (double)off;
}

/* The next line of *s that the spec hash does not leave out (its length into
 * *len; *line counts the lines passed), or NULL at the end. */
static const char *next_line(const char **s, size_t *len, int *line)
{
    while (**s) {
        const char *p = *s;
        *len = strcspn(p, "\n");
        *s = p + *len + (p[*len] == '\n');
        (*line)++;
        if (!rn_sweep_spec_line_ignored(p, *len))
            return p;
    }
    return NULL;
}

/* The first line where a and b differ, as "line N: 'x' here, 'y' now", in
 * out (lines that cannot change a run's numbers skipped). */
static void first_difference(const char *a, const char *b, char *out, size_t size)
{
    int la_no = 0, lb_no = 0;
    for (;;) {
        size_t la = 0, lb = 0;
        const char *x = next_line(&a, &la, &la_no), *y = next_line(&b, &lb, &lb_no);
        if (!x && !y)
            break;
        if (!x || !y || la != lb || strncmp(x, y, la) != 0) {
            snprintf(out, size,
                     "line %d of the resolved spec: the run has '%.*s', the file now "
                     "gives '%.*s'",
                     la_no, x ? (int)(la > 120 ? 120 : la) : 0, x ? x : "",
                     y ? (int)(lb > 120 ? 120 : lb) : 0, y ? y : "");
            return;
        }
    }
    out[0] = '\0';
}

/* Compares the run's recorded spec with its experiment file as it reads now:
 * both resolved by this code (so a key added since with its default does not
 * count), and only what can change the run's numbers (the sweep's spec hash:
 * not threads, out or description). */
static void check_stale(struct report_run *r)
{
    if (!r->experiment[0] || !r->yaml)
        return;
    struct rn_spec *sp = calloc(1, sizeof *sp), *rec = calloc(1, sizeof *rec);
    struct rn_error e;
    char h_now[17], h_run[17];
    if (!sp || !rec)
        goto done;
    if (access(r->experiment, R_OK) != 0) {
        snprintf(r->stale, sizeof r->stale, "its experiment file %s no longer exists",
                 r->experiment);
    } else if (rn_spec_load(sp, r->experiment, NULL, NULL, NULL, &e) != 0) {
        snprintf(r->stale, sizeof r->stale, "its experiment file no longer loads: %s", e.msg);
    } else if (rn_spec_load_text(rec, r->yaml, "the run's /config yaml", NULL, NULL, NULL, NULL,
                                 &e) != 0) {
        snprintf(r->stale, sizeof r->stale, "its recorded spec does not load with this code: %s",
                 e.msg);
    } else {
        rn_sweep_spec_hash(sp->resolved, NULL, h_now);
        rn_sweep_spec_hash(rec->resolved, NULL, h_run);
        if (strcmp(h_now, h_run) != 0) {
            char diff[400];
            first_difference(rec->resolved, sp->resolved, diff, sizeof diff);
            snprintf(r->stale, sizeof r->stale,
                     "made from another spec than %s gives now (an edit since, or command-line "
                     "overrides): %s",
                     r->experiment, diff);
        }
    }
done:
    rn_spec_free(sp);
    rn_spec_free(rec);
    free(sp);
    free(rec);
}

static void read_attr(struct rn_results *res, const char *obj, const char *name, char *dst,
                      size_t size)
{
    char *s = NULL;
    struct rn_error e;
    dst[0] = '\0';
    if (rn_results_get_attr_str(res, obj, name, &s, &e) == 0)
        snprintf(dst, size, "%s", s);
    free(s);
}

static void key_of(const char *name, char *key, size_t size)
{
    size_t j = 0;
    for (const char *p = name; *p && j + 1 < size; p++)
        key[j++] = (char)((*p == '/' || *p == '.' || *p == ' ') ? '_' : *p);
    key[j] = '\0';
}

int report_run_open(const struct rn_report *rep, const char *name, struct report_run *r)
{
    memset(r, 0, sizeof *r);
    r->name = name;
    r->seconds = -1;
    rn_report_locate(rep, name, r->dir, sizeof r->dir, r->experiment, sizeof r->experiment);
    key_of(name, r->key, sizeof r->key);
    char file[RN_PATH_MAX + 16];
    snprintf(file, sizeof file, "%s/run.h5", r->dir);
    if (!realpath(r->dir, r->real) || access(file, R_OK) != 0)
        return 0;
    snprintf(file, sizeof file, "%s/run.h5", r->real);
    struct rn_error e;
    if (rn_results_open(&r->res, file, &e)) {
        snprintf(r->stale, sizeof r->stale, "run.h5 does not open: %s", e.msg);
        snprintf(r->status, sizeof r->status, "unreadable");
        r->exists = 1;
        return 0;
    }
    r->exists = 1;
    read_attr(r->res, "/", "status", r->status, sizeof r->status);
    read_attr(r->res, "/config", "started", r->started, sizeof r->started);
    read_attr(r->res, "/config", "finished", r->finished, sizeof r->finished);
    read_attr(r->res, "/config", "git_commit", r->git, sizeof r->git);
    read_attr(r->res, "/config", "experiment", r->exp_name, sizeof r->exp_name);
    read_attr(r->res, "/config", "device_name", r->device, sizeof r->device);
    if (rn_results_get_attr_str(r->res, "/config", "yaml", &r->yaml, &e))
        r->yaml = NULL;
    double t0 = parse_time(r->started), t1 = parse_time(r->finished);
    if (t0 >= 0 && t1 >= t0)
        r->seconds = t1 - t0;
    check_stale(r);
    return 0;
}

void report_run_close(struct report_run *r)
{
    rn_results_close(r->res);
    free(r->yaml);
    r->res = NULL;
    r->yaml = NULL;
}

int report_run_flagged(const struct report_run *r)
{
    return r->exists && (strcmp(r->status, "completed") != 0 || r->stale[0]);
}

/* ---- table values ------------------------------------------------------------------- */

int report_metric_at(struct report_run *r, const char *metric, int epoch, double *value,
                     int *at_epoch)
{
    if (!r->res)
        return -1;
    double *x = NULL, *v = NULL;
    int n = 0;
    struct rn_error e;
    char path[RN_NAME_MAX + 16];
    snprintf(path, sizeof path, "/metrics/%s", metric);
    if (!rn_results_exists(r->res, path) || rn_results_read_metric(r->res, metric, &x, &v, &n, &e))
        return -1;
    int found = -1;
    for (int i = 0; i < n; i++)
        if (epoch <= 0 || (int)x[i] == epoch)
            found = i;
    if (found >= 0) {
        *value = v[found];
        *at_epoch = (int)x[found];
    }
    free(x);
    free(v);
    return found >= 0 ? 0 : -1;
}

/* ---- figures ------------------------------------------------------------------------ */

static int copy_file(const char *src, const char *dst, struct rn_error *err)
{
    FILE *in = fopen(src, "rb");
    if (!in)
        return rn_errorf(err, "%s: %s", src, strerror(errno));
    FILE *out = fopen(dst, "wb");
    if (!out) {
        fclose(in);
        return rn_errorf(err, "cannot write %s: %s", dst, strerror(errno));
    }
    char buf[1 << 16];
    size_t k;
    int bad = 0;
    while ((k = fread(buf, 1, sizeof buf, in)) > 0)
        bad |= fwrite(buf, 1, k, out) != k;
    bad |= ferror(in);
    fclose(in);
    if (fclose(out) != 0 || bad)
        return rn_errorf(err, "cannot write %s: %s", dst, strerror(errno ? errno : EIO));
    return 0;
}

/* Draws the run's figures in fmt once, when plots/<figure>.<fmt> is missing. */
static void ensure_format(struct report_run *r, const char *figure, const char *fmt, int *drawn,
                          FILE *log)
{
    char path[RN_PATH_MAX + RN_NAME_MAX + 32];
    snprintf(path, sizeof path, "%s/plots/%s.%s", r->real, figure, fmt);
    if (*drawn || access(path, R_OK) == 0)
        return;
    *drawn = 1;
    int n = 0;
    struct rn_error e;
    if (log)
        fprintf(log, "report: drawing the %s figures of %s\n", fmt, r->dir);
    if (rn_plot_run(r->real, fmt, &n, &e) && log)
        fprintf(log, "report: %s figures of %s: %s\n", fmt, r->dir, e.msg);
}

int report_copy_figure(struct report_run *r, const char *figure, const char *out_dir, int vector,
                       int have[3], FILE *log, struct rn_error *err)
{
    static const char *const fmts[3] = {"png", "pdf", "svg"};
    have[0] = have[1] = have[2] = 0;
    if (!r->exists || !r->real[0])
        return 0;
    char dir[RN_PATH_MAX * 2 + 32];
    snprintf(dir, sizeof dir, "%s/figures/%s", out_dir, r->key);
    if (rn_make_dirs(dir, err))
        return -1;
    for (int f = 0; f < (vector ? 3 : 1); f++) {
        if (f == 1)
            ensure_format(r, figure, "pdf", &r->drew_pdf, log);
        if (f == 2)
            ensure_format(r, figure, "svg", &r->drew_svg, log);
        char src[RN_PATH_MAX + RN_NAME_MAX + 32], dst[sizeof dir + RN_NAME_MAX + 8];
        snprintf(src, sizeof src, "%s/plots/%s.%s", r->real, figure, fmts[f]);
        snprintf(dst, sizeof dst, "%s/%s.%s", dir, figure, fmts[f]);
        if (access(src, R_OK) != 0)
            continue;
        if (copy_file(src, dst, err))
            return -1;
        have[f] = 1;
    }
    return 0;
}

int report_list_figures(const struct report_run *r, char *out, size_t size)
{
    out[0] = '\0';
    char dir[RN_PATH_MAX + 8];
    snprintf(dir, sizeof dir, "%s/plots", r->real);
    char **names = NULL;
    int n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (len < 5 || strcmp(de->d_name + len - 4, ".png") != 0)
            continue;
        char **grown = realloc(names, (size_t)(n + 1) * sizeof *names);
        if (!grown)
            break;
        names = grown;
        if (!(names[n] = strndup(de->d_name, len - 4)))
            break;
        n++;
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, report_cmp_str);
    size_t used = 0;
    for (int i = 0; i < n; i++) {
        if (used < size)
            used += (size_t)snprintf(out + used, size - used, "%s%s", i ? ", " : "", names[i]);
        free(names[i]);
    }
    free(names);
    return n;
}

int report_cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}
