/* table.c - means and Student-t intervals over the seeds of many runs
 * (table.h): the statistics, reading the runs, Markdown, CSV and a figure. */
#include "table.h"

#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plot.h"
#include "results.h"
#include "run.h"
#include "sweep.h"

/* ---- statistics ---------------------------------------------------------------------- */

/* The continued fraction of the incomplete beta function (modified Lentz). */
static double beta_cf(double a, double b, double x)
{
    const double tiny = 1e-300;
    double c = 1, d = 1 - (a + b) * x / (a + 1);
    d = fabs(d) < tiny ? tiny : d;
    d = 1 / d;
    double h = d;
    for (int m = 1; m <= 1000; m++) {
        double m2 = 2.0 * m;
        double num = m * (b - m) * x / ((a + m2 - 1) * (a + m2));
        d = 1 + num * d;
        d = fabs(d) < tiny ? tiny : d;
        c = 1 + num / c;
        c = fabs(c) < tiny ? tiny : c;
        d = 1 / d;
        h *= d * c;
        num = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1));
        d = 1 + num * d;
        d = fabs(d) < tiny ? tiny : d;
        c = 1 + num / c;
        c = fabs(c) < tiny ? tiny : c;
        d = 1 / d;
        double del = d * c;
        h *= del;
        if (fabs(del - 1) < 1e-15)
            break;
    }
    return h;
}

/* The regularised incomplete beta function I_x(a, b). */
static double beta_inc(double a, double b, double x)
{
    if (x <= 0)
        return 0;
    if (x >= 1)
        return 1;
    double lbt = lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log1p(-x);
    if (x < (a + 1) / (a + b + 2))
        return exp(lbt) * beta_cf(a, b, x) / a;
    return 1 - exp(lbt) * beta_cf(b, a, 1 - x) / b;
}

/* P(T <= t) for Student's t with nu degrees of freedom. */
static double t_cdf(double t, double nu)
{
    double tail = 0.5 * beta_inc(nu / 2, 0.5, nu / (nu + t * t));
    return t >= 0 ? 1 - tail : tail;
}

double rn_t_quantile(double p, int dof)
{
    if (dof < 1 || !(p > 0 && p < 1))
        return NAN;
    if (p == 0.5)
        return 0;
    if (p < 0.5)
        return -rn_t_quantile(1 - p, dof);
    double lo = 0, hi = 1;
    while (t_cdf(hi, dof) < p && hi < 1e300)
        hi *= 2;
    for (int i = 0; i < 400 && hi - lo > 1e-14 * hi; i++) {
        double mid = 0.5 * (lo + hi);
        if (t_cdf(mid, dof) < p)
            lo = mid;
        else
            hi = mid;
    }
    return 0.5 * (lo + hi);
}

void rn_stats_compute(const double *x, int n, struct rn_stats *s)
{
    s->n = n;
    s->mean = s->sd = s->t = s->half = NAN;
    if (n < 1)
        return;
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += x[i];
    s->mean = sum / n;
    if (n < 2)
        return;
    double ss = 0;
    for (int i = 0; i < n; i++)
        ss += (x[i] - s->mean) * (x[i] - s->mean);
    s->sd = sqrt(ss / (n - 1));
    s->t = rn_t_quantile(0.975, n - 1);
    s->half = s->t * s->sd / sqrt((double)n);
}

/* ---- the runs ------------------------------------------------------------------------- */

struct row {
    char group[512]; /* what the row is averaged with */
    char label[512];
    int index; /* the sweep's cell index, -1 for a plain run */
    enum rn_cell_state state;
    int exit_code;
    char path[RN_PATH_MAX]; /* run.h5 */
};

struct rows {
    struct row *r;
    int n, cap;
};

static struct row *push_row(struct rows *rs)
{
    if (rs->n == rs->cap) {
        int cap = rs->cap ? 2 * rs->cap : 32;
        struct row *r = realloc(rs->r, sizeof *r * (size_t)cap);
        if (!r)
            return NULL;
        rs->r = r;
        rs->cap = cap;
    }
    memset(&rs->r[rs->n], 0, sizeof rs->r[0]);
    return &rs->r[rs->n++];
}

static int sweep_rows(const char *dir, struct rows *rs, struct rn_error *err)
{
    struct rn_sweep_plan plan;
    if (rn_sweep_plan_read(&plan, dir, err))
        return -1;
    rn_sweep_plan_states(&plan);
    for (int i = 0; i < plan.n_cells; i++) {
        const struct rn_sweep_cell *c = &plan.cells[i];
        if (!c->active)
            continue;
        struct row *r = push_row(rs);
        if (!r) {
            rn_sweep_plan_free(&plan);
            return rn_errorf(err, "out of memory");
        }
        snprintf(r->group, sizeof r->group, "%s", c->group);
        snprintf(r->label, sizeof r->label, "%s", c->label);
        r->index = c->index;
        r->state = c->state;
        r->exit_code = c->exit_code;
        char cd[RN_PATH_MAX];
        rn_sweep_cell_dir(&plan, c, cd, sizeof cd);
        snprintf(r->path, sizeof r->path, "%s/run.h5", cd);
    }
    rn_sweep_plan_free(&plan);
    return 0;
}

/* The resolved yaml without its seeds: the top-level `seed:` and the data
 * seed when it equals it. Malloc'd. */
static char *without_seed(const char *yaml, unsigned long long seed)
{
    char *out = malloc(strlen(yaml) + 1), *o = out;
    if (!out)
        return NULL;
    char data_seed[64];
    snprintf(data_seed, sizeof data_seed, "  seed: %llu", seed);
    for (const char *p = yaml; *p;) {
        size_t len = strcspn(p, "\n");
        int drop = (len > 6 && !strncmp(p, "seed: ", 6)) ||
                   (len == strlen(data_seed) && !strncmp(p, data_seed, len));
        if (!drop) {
            memcpy(o, p, len);
            o += len;
            *o++ = '\n';
        }
        p += len + (p[len] == '\n');
    }
    *o = '\0';
    return out;
}

static void run_row(const char *run_dir, struct rows *rs)
{
    char path[RN_PATH_MAX];
    snprintf(path, sizeof path, "%s/run.h5", run_dir);
    struct rn_results *res;
    struct rn_error e;
    if (rn_results_open(&res, path, &e))
        return;
    char *yaml = NULL, *status = NULL, *name = NULL;
    uint64_t seed = 0;
    struct row *r = NULL;
    if (!rn_results_get_attr_str(res, "/config", "yaml", &yaml, &e) &&
        !rn_results_get_attr_str(res, "/config", "experiment", &name, &e) &&
        !rn_results_get_attr_u64(res, "/config", "seed", &seed, &e) && (r = push_row(rs))) {
        char *key = without_seed(yaml, (unsigned long long)seed);
        char h[17] = "";
        if (key)
            rn_sweep_spec_hash(key, NULL, h);
        free(key);
        snprintf(r->group, sizeof r->group, "%s [%s]", name, h);
        snprintf(r->label, sizeof r->label, "%s seed=%llu (%s)", name, (unsigned long long)seed,
                 run_dir);
        r->index = -1;
        r->exit_code = -1;
        snprintf(r->path, sizeof r->path, "%s", path);
        if (rn_results_get_attr_str(res, "/", "status", &status, &e))
            status = NULL;
        r->state = !status                        ? RN_CELL_INTERRUPTED
                   : !strcmp(status, "completed") ? RN_CELL_DONE
                   : !strcmp(status, "failed")    ? RN_CELL_FAILED
                   : !strcmp(status, "running") && rn_run_lock_held(run_dir, NULL, 0)
                       ? RN_CELL_RUNNING /* else stale: killed while running */
                       : RN_CELL_INTERRUPTED;
    }
    free(yaml);
    free(status);
    free(name);
    rn_results_close(res);
}

static void walk(const char *dir, int depth, struct rows *rs)
{
    char p[RN_PATH_MAX];
    snprintf(p, sizeof p, "%s/run.h5", dir);
    if (access(p, R_OK) == 0) {
        run_row(dir, rs);
        return;
    }
    if (depth == 0)
        return;
    DIR *d = opendir(dir);
    if (!d)
        return;
    char **names = NULL;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || !strcmp(e->d_name, "latest"))
            continue;
        char **nn = realloc(names, sizeof *nn * (size_t)(n + 1));
        if (!nn)
            break;
        names = nn;
        if ((names[n] = strdup(e->d_name)))
            n++;
    }
    closedir(d);
    for (int i = 0; i < n; i++) /* in name order: dated run folders sort by time */
        for (int j = i + 1; j < n; j++)
            if (strcmp(names[j], names[i]) < 0) {
                char *t = names[i];
                names[i] = names[j];
                names[j] = t;
            }
    for (int i = 0; i < n; i++) {
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            walk(p, depth - 1, rs);
        free(names[i]);
    }
    free(names);
}

/* Plain runs' groups are named by their experiment; the spec's hash is kept
 * only where two groups share a name. */
static void shorten_groups(struct rows *rs)
{
    for (int i = 0; i < rs->n; i++) {
        char *g = rs->r[i].group, *br = strstr(g, " [");
        if (!br)
            continue;
        size_t base = (size_t)(br - g);
        int clash = 0;
        for (int j = 0; j < rs->n && !clash; j++) {
            const char *h = rs->r[j].group;
            clash = !strncmp(h, g, base) && h[base] == ' ' && strcmp(h, g);
        }
        if (!clash)
            *br = '\0';
    }
}

/* ---- metrics ------------------------------------------------------------------------- */

static int is_percent(const char *metric)
{
    size_t n = strcspn(metric, "@[");
    return n >= 8 && !strncmp(metric + n - 8, "accuracy", 8);
}

/* The value of metric in an open run file; -1 with why in err. */
static int read_value(struct rn_results *r, const char *metric, double *value, struct rn_error *err)
{
    char name[RN_PATH_MAX];
    snprintf(name, sizeof name, "%s", metric);
    if (name[0] == '/') {
        int idx[4] = {0}, ni = 0;
        char *br = strchr(name, '[');
        if (br) {
            *br = '\0';
            for (char *p = br + 1; *p && ni < 4; ni++) {
                idx[ni] = (int)strtol(p, &p, 10);
                p += strspn(p, ", ]");
            }
        }
        void *data = NULL;
        int nd = 0, dims[4] = {0};
        int f32 = 0;
        if (rn_results_read(r, name, RN_DTYPE_F64, &data, &nd, dims, err)) {
            if (rn_results_read(r, name, RN_DTYPE_F32, &data, &nd, dims, err))
                return rn_errorf(err, "no float dataset %s", name);
            f32 = 1;
        }
        size_t at = 0, size = 1;
        for (int d = 0; d < nd; d++)
            size *= (size_t)dims[d];
        if (ni && ni != nd) {
            free(data);
            return rn_errorf(err, "%s has %d dimensions, the metric gives %d indices", name, nd,
                             ni);
        }
        if (!ni && size != 1) {
            free(data);
            return rn_errorf(err, "%s has %zu values: give an index, %s[i%s]", name, size, name,
                             nd > 1 ? ",j" : "");
        }
        for (int d = 0; d < ni; d++) {
            if (idx[d] < 0 || idx[d] >= dims[d]) {
                free(data);
                return rn_errorf(err, "%s: index %d out of 0..%d", name, idx[d], dims[d] - 1);
            }
            at = at * (size_t)dims[d] + (size_t)idx[d];
        }
        *value = f32 ? ((float *)data)[at] : ((double *)data)[at];
        free(data);
        return 0;
    }
    char *atp = strchr(name, '@');
    int epoch = -1;
    if (atp) {
        *atp = '\0';
        epoch = atoi(atp + 1);
    }
    double *x = NULL, *v = NULL;
    int n = 0;
    char path[RN_PATH_MAX + 16];
    snprintf(path, sizeof path, "/metrics/%s", name);
    if (!rn_results_exists(r, path))
        return rn_errorf(err, "no metric %s", name);
    if (rn_results_read_metric(r, name, &x, &v, &n, err))
        return -1;
    int found = -1;
    for (int i = 0; i < n; i++)
        if (epoch < 0 || x[i] == epoch)
            found = i;
    if (found >= 0)
        *value = v[found];
    free(x);
    free(v);
    if (found < 0)
        return epoch >= 0 ? rn_errorf(err, "no %s at epoch %d", name, epoch)
                          : rn_errorf(err, "%s is empty", name);
    return 0;
}

/* ---- the table ----------------------------------------------------------------------- */

struct group {
    char name[512];
    int *rows; /* into rows, owned */
    int n_rows;
    double *values; /* (n_metrics, n_rows) of the counted runs */
    int *n_values;  /* per metric */
    struct rn_stats *stats;
    char *skipped; /* what was not counted, one "; "-separated text; owned */
};

static void add_skip(struct group *g, const char *fmt, const char *a, const char *b)
{
    char item[1024];
    snprintf(item, sizeof item, fmt, a, b);
    size_t old = g->skipped ? strlen(g->skipped) : 0;
    char *s = realloc(g->skipped, old + strlen(item) + 3);
    if (!s)
        return;
    if (old)
        memcpy(s + old, "; ", 3);
    else
        s[0] = '\0';
    strcat(s, item);
    g->skipped = s;
}

static void fmt_number(char *buf, size_t size, double x, int percent)
{
    if (isnan(x))
        snprintf(buf, size, "–");
    else if (percent)
        snprintf(buf, size, "%.2f", 100 * x);
    else
        snprintf(buf, size, "%.4g", x);
}

static void print_markdown(FILE *out, const char *dir, struct group *gs, int n_groups,
                           const char *const *metrics, int n_metrics)
{
    fprintf(out,
            "Runs in %s, grouped by everything but the seed: mean ± half-width of the "
            "95%% Student-t interval (t(0.975, n-1) sd/sqrt(n)), sd the sample standard "
            "deviation (n-1); accuracies in %%; n = 1: no interval.\n\n",
            dir);
    fprintf(out, "| group | n |");
    for (int m = 0; m < n_metrics; m++)
        fprintf(out, " %s%s |", metrics[m], is_percent(metrics[m]) ? " (%)" : "");
    fprintf(out, " not counted |\n|---|---|");
    for (int m = 0; m < n_metrics; m++)
        fprintf(out, "---|");
    fprintf(out, "---|\n");
    for (int i = 0; i < n_groups; i++) {
        const struct group *g = &gs[i];
        int n_max = 0;
        for (int m = 0; m < n_metrics; m++)
            n_max = g->n_values[m] > n_max ? g->n_values[m] : n_max;
        fprintf(out, "| %s | %d of %d |", g->name, n_max, g->n_rows);
        for (int m = 0; m < n_metrics; m++) {
            const struct rn_stats *s = &g->stats[m];
            int pc = is_percent(metrics[m]);
            char mean[32], half[32], sd[32];
            fmt_number(mean, sizeof mean, s->mean, pc);
            fmt_number(half, sizeof half, s->half, pc);
            fmt_number(sd, sizeof sd, s->sd, pc);
            if (s->n == 0)
                fprintf(out, " – |");
            else if (s->n == 1)
                fprintf(out, " %s (n = 1, no interval) |", mean);
            else
                fprintf(out, " %s ± %s (sd %s%s%.0d) |", mean, half, sd,
                        s->n != n_max ? ", n " : "", s->n != n_max ? s->n : 0);
        }
        fprintf(out, " %s |\n", g->skipped ? g->skipped : "–");
    }
}

static void csv_field(FILE *out, const char *s)
{
    if (!strpbrk(s, ",\"\n")) {
        fputs(s, out);
        return;
    }
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', out);
        fputc(*s, out);
    }
    fputc('"', out);
}

static void print_csv(FILE *out, struct group *gs, int n_groups, const char *const *metrics,
                      int n_metrics)
{
    fprintf(out, "group,metric,n,runs,mean,sd,t,ci_low,ci_high,values,not_counted\n");
    for (int i = 0; i < n_groups; i++) {
        const struct group *g = &gs[i];
        for (int m = 0; m < n_metrics; m++) {
            const struct rn_stats *s = &g->stats[m];
            csv_field(out, g->name);
            fputc(',', out);
            csv_field(out, metrics[m]);
            fprintf(out, ",%d,%d,%.17g,%.17g,%.17g,%.17g,%.17g,", s->n, g->n_rows, s->mean, s->sd,
                    s->t, s->mean - s->half, s->mean + s->half);
            for (int k = 0; k < g->n_values[m]; k++)
                fprintf(out, "%s%.17g", k ? " " : "", g->values[m * g->n_rows + k]);
            fputc(',', out);
            csv_field(out, g->skipped ? g->skipped : "");
            fputc('\n', out);
        }
    }
}

static int draw(const char *dir, const struct rn_table_options *o, struct group *gs, int n_groups,
                const char *const *metrics, int n_metrics, FILE *out, struct rn_error *err)
{
    char out_dir[RN_PLOT_DIR_MAX], data_dir[RN_PLOT_DIR_MAX];
    snprintf(out_dir, sizeof out_dir, "%s", o->out_dir ? o->out_dir : "");
    if (!o->out_dir)
        snprintf(out_dir, sizeof out_dir, "%s/table", dir);
    snprintf(data_dir, sizeof data_dir, "%s/data", out_dir);
    if (rn_make_dirs(data_dir, err))
        return -1;
    struct rn_sbuf defs = {0};
    rn_sbuf_printf(&defs, "n_groups=%d; n_metrics=%d; ", n_groups, n_metrics);
    for (int m = 0; m < n_metrics; m++) {
        char path[RN_PLOT_PATH_MAX], key[32];
        snprintf(path, sizeof path, "%s/table_%d.dat", data_dir, m);
        FILE *f = fopen(path, "w");
        if (!f) {
            free(defs.s);
            return rn_errorf(err, "%s: cannot write", path);
        }
        double scale = is_percent(metrics[m]) ? 100 : 1;
        /* block 0: per group k, mean, low, high, n; block 1: every value */
        for (int i = 0; i < n_groups; i++) {
            const struct rn_stats *s = &gs[i].stats[m];
            if (s->n == 0)
                continue;
            double half = s->n > 1 ? s->half : 0;
            fprintf(f, "%d %.10g %.10g %.10g %d\n", i, scale * s->mean, scale * (s->mean - half),
                    scale * (s->mean + half), s->n);
        }
        fprintf(f, "\n\n");
        for (int i = 0; i < n_groups; i++)
            for (int k = 0; k < gs[i].n_values[m]; k++)
                fprintf(f, "%d %.10g\n", i, scale * gs[i].values[m * gs[i].n_rows + k]);
        fclose(f);
        snprintf(key, sizeof key, "metric_%d", m + 1);
        char title[300];
        snprintf(title, sizeof title, "%s%s", metrics[m], is_percent(metrics[m]) ? " (%)" : "");
        rn_sbuf_def_str(&defs, key, title);
    }
    for (int i = 0; i < n_groups; i++) {
        char key[32];
        snprintf(key, sizeof key, "group_%d", i);
        rn_sbuf_def_str(&defs, key, gs[i].name);
    }
    char script[RN_PLOT_PATH_MAX], fig[RN_PLOT_PATH_MAX];
    snprintf(script, sizeof script, "%s/table.gp", rn_plot_scripts_dir());
    const char *fmt = o->format ? o->format : "png";
    snprintf(fig, sizeof fig, "%s/table.%s", out_dir, fmt);
    struct rn_sbuf all = {0};
    rn_sbuf_def_str(&all, "fmt", fmt);
    int w = 260 + 90 * n_groups, h = 330 * n_metrics + 120;
    rn_sbuf_printf(&all, "W=%d; H=%d; ", w < 700 ? 700 : w > 2400 ? 2400 : w, h);
    rn_sbuf_def_str(&all, "out", fig);
    rn_sbuf_def_str(&all, "datadir", data_dir);
    rn_sbuf_def_str(&all, "plotsdir", rn_plot_scripts_dir());
    rn_sbuf_printf(&all, "%s", defs.s ? defs.s : "");
    free(defs.s);
    if (all.oom) {
        free(all.s);
        return rn_errorf(err, "out of memory");
    }
    int rc = rn_plot_gnuplot(script, all.s, fig, "table", err);
    free(all.s);
    if (!rc)
        fprintf(out, "\nfigure: %s\n", fig);
    return rc;
}

static const char *const default_metrics[] = {"val/accuracy", "test/accuracy"};

int rn_table(const char *dir, const struct rn_table_options *o, FILE *out, struct rn_error *err)
{
    const char *const *metrics = o->n_metrics ? o->metrics : default_metrics;
    int n_metrics = o->n_metrics ? o->n_metrics : 2;
    struct rows rs = {0};
    char manifest[RN_PATH_MAX + 16];
    snprintf(manifest, sizeof manifest, "%s/cells.tsv", dir);
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return rn_errorf(err, "%s: not a folder (a sweep folder or a folder of runs)", dir);
    if (access(manifest, F_OK) == 0) {
        if (sweep_rows(dir, &rs, err))
            return -1;
    } else {
        walk(dir, 3, &rs);
        shorten_groups(&rs);
    }
    if (rs.n == 0)
        return rn_errorf(err,
                         "%s: no runs (no cells.tsv, and no run.h5 up to three folders "
                         "down)",
                         dir);
    struct group *gs = calloc((size_t)rs.n, sizeof *gs);
    int n_groups = 0, rc = 0;
    if (!gs) {
        free(rs.r);
        return rn_errorf(err, "out of memory");
    }
    for (int i = 0; i < rs.n; i++) {
        int g = 0;
        while (g < n_groups && strcmp(gs[g].name, rs.r[i].group))
            g++;
        if (g == n_groups) {
            snprintf(gs[g].name, sizeof gs[g].name, "%s", rs.r[i].group);
            gs[g].rows = calloc((size_t)rs.n, sizeof(int));
            n_groups++;
        }
        if (gs[g].rows)
            gs[g].rows[gs[g].n_rows++] = i;
    }
    for (int g = 0; g < n_groups && !rc; g++) {
        struct group *G = &gs[g];
        G->values = calloc((size_t)(n_metrics * G->n_rows) + 1, sizeof *G->values);
        G->n_values = calloc((size_t)n_metrics, sizeof *G->n_values);
        G->stats = calloc((size_t)n_metrics, sizeof *G->stats);
        if (!G->rows || !G->values || !G->n_values || !G->stats) {
            rc = rn_errorf(err, "out of memory");
            break;
        }
        for (int k = 0; k < G->n_rows; k++) {
            const struct row *r = &rs.r[G->rows[k]];
            char who[600];
            if (r->index >= 0)
                snprintf(who, sizeof who, "cell %d", r->index);
            else
                snprintf(who, sizeof who, "%s", r->path);
            if (r->state != RN_CELL_DONE) {
                char what[64];
                if (r->exit_code > 0)
                    snprintf(what, sizeof what, "%s (exit %d)", rn_cell_state_name(r->state),
                             r->exit_code);
                else
                    snprintf(what, sizeof what, "%s", rn_cell_state_name(r->state));
                add_skip(G, "%s %s", who, what);
                continue;
            }
            struct rn_results *res;
            struct rn_error e;
            if (rn_results_open(&res, r->path, &e)) {
                add_skip(G, "%s: %s", who, e.msg);
                continue;
            }
            for (int m = 0; m < n_metrics; m++) {
                double v = 0;
                if (read_value(res, metrics[m], &v, &e))
                    add_skip(G, "%s: %s", who, e.msg);
                else
                    G->values[m * G->n_rows + G->n_values[m]++] = v;
            }
            rn_results_close(res);
        }
        for (int m = 0; m < n_metrics; m++)
            rn_stats_compute(G->values + m * G->n_rows, G->n_values[m], &G->stats[m]);
    }
    if (!rc) {
        if (o->markdown || !o->csv)
            print_markdown(out, dir, gs, n_groups, metrics, n_metrics);
        if (o->csv) {
            if (o->markdown)
                fputc('\n', out);
            print_csv(out, gs, n_groups, metrics, n_metrics);
        }
        if (o->plot)
            rc = draw(dir, o, gs, n_groups, metrics, n_metrics, out, err);
    }
    for (int g = 0; g < n_groups; g++) {
        free(gs[g].rows);
        free(gs[g].values);
        free(gs[g].n_values);
        free(gs[g].stats);
        free(gs[g].skipped);
    }
    free(gs);
    free(rs.r);
    return rc;
}
