/* plot.c - figures of a run, drawn by gnuplot from run.h5 alone (plot.h):
 * the gnuplot driver, the helpers every figure shares, and the figures that
 * are not analyses (training curves, confusion matrices from evaluation).
 *
 * For every figure we write the numbers it needs as plain text under
 * <run_dir>/plots/data/ (so a figure can be redrawn or restyled by hand with
 * gnuplot alone) and run one script of plots/ with its parameters given as
 * `-e` definitions: fmt, W, H (pixels), out, datadir, plotsdir, plus the
 * figure's own. plots/style.gp picks the terminal from fmt.
 *
 * What is drawn here (see the scripts in plots/):
 *   curves.<fmt>                /metrics/<split>/{loss,accuracy}
 *   confusion_<split>.<fmt>     /analyses/<kind "confusion">/<split>
 * and every other group of /analyses by the `plot` of its analysis type
 * (runner/analyses/<kind>.c), found by the group's kind attribute; a group
 * without one is recognised by its name.
 */
#include "plot.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "analysis.h"
#include "data.h"
#include "results.h"

extern char **environ;

/* ---- a growable string for gnuplot's -e definitions -------------------- */

void rn_sbuf_printf(struct rn_sbuf *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (k < 0) {
            b->oom = 1;
            return;
        }
        if (b->s && b->len + (size_t)k < b->cap) {
            b->len += (size_t)k;
            return;
        }
        size_t cap = b->cap ? b->cap : 256;
        while (cap <= b->len + (size_t)k)
            cap *= 2;
        char *p = realloc(b->s, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->s = p;
        b->cap = cap;
    }
}

/* key='value'; as a gnuplot single-quoted string, where only ' needs
 * escaping (doubled). */
void rn_sbuf_def_str(struct rn_sbuf *b, const char *key, const char *value)
{
    rn_sbuf_printf(b, "%s='", key);
    for (const char *c = value; *c; c++)
        rn_sbuf_printf(b, *c == '\'' ? "''" : "%c", *c);
    rn_sbuf_printf(b, "'; ");
}

/* ---- data files ---------------------------------------------------------- */

void rn_plot_safe_name(char *dst, size_t n, const char *src)
{
    size_t i = 0;
    for (; src[i] && i + 1 < n; i++) {
        char c = src[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '_' || c == '-' || c == '.';
        dst[i] = ok ? c : '_';
    }
    dst[i] = '\0';
}

static int make_dir(const char *path, struct rn_error *err)
{
    if (mkdir(path, 0777) != 0 && errno != EEXIST)
        return rn_errorf(err, "%s: cannot create directory: %s", path, strerror(errno));
    return 0;
}

FILE *rn_plot_data_open(struct rn_plotter *p, const char *name, char *path, struct rn_error *err)
{
    snprintf(path, RN_PLOT_PATH_MAX, "%s/%s", p->data_dir, name);
    FILE *f = fopen(path, "w");
    if (!f)
        rn_errorf(err, "%s: cannot write: %s", path, strerror(errno));
    return f;
}

int rn_plot_data_close(FILE *f, const char *path, struct rn_error *err)
{
    int bad = ferror(f);
    if (fclose(f) != 0 || bad)
        return rn_errorf(err, "%s: write failed: %s", path, strerror(errno));
    return 0;
}

/* The line of gnuplot's output that says what went wrong: the first
 * `"script" line N: ...` message, else the first line that is not a warning. */
static void gnuplot_reason(const char *out, char *buf, size_t n)
{
    const char *best = NULL, *first = NULL;
    for (const char *line = out; *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        const char *s = line;
        while (s < line + len && (*s == ' ' || *s == '\t'))
            s++;
        if (s < line + len) {
            if (!first)
                first = s;
            const char *m = strstr(s, " line ");
            if (!best && m && m < line + len && strncmp(s, "warning", 7) != 0)
                best = s;
        }
        if (!end)
            break;
        line = end + 1;
    }
    const char *pick = best ? best : first;
    if (!pick) {
        snprintf(buf, n, "no message");
        return;
    }
    size_t len = strcspn(pick, "\n");
    if (len >= n)
        len = n - 1;
    memcpy(buf, pick, len);
    buf[len] = '\0';
}

const char *rn_plot_scripts_dir(void)
{
    const char *scripts = getenv("RUNNER_PLOTS");
#ifdef RN_PLOTS_DIR
    if (!scripts || !*scripts)
        scripts = RN_PLOTS_DIR;
#endif
    return scripts;
}

/* Runs `gnuplot -e defs script`, keeps the start of what it says for the
 * error, and checks that it wrote a non-empty out. label names the figure in
 * messages. */
int rn_plot_gnuplot(const char *script_path, const char *defs, const char *out,
                    const char *label, struct rn_error *err)
{
    const char *figure = label;
    int pipefd[2];
    if (pipe(pipefd) != 0)
        return rn_errorf(err, "%s: pipe: %s", figure, strerror(errno));
    remove(out); /* so a stale figure cannot pass for a new one */

    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
    posix_spawn_file_actions_addclose(&fa, pipefd[0]);
    posix_spawn_file_actions_addclose(&fa, pipefd[1]);
    char *argv[] = {"gnuplot", "-e", (char *)defs, (char *)script_path, NULL};
    pid_t pid;
    int rc = posix_spawnp(&pid, "gnuplot", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(pipefd[1]);
    if (rc != 0) {
        close(pipefd[0]);
        return rn_errorf(err, "cannot run gnuplot: %s (install gnuplot, e.g. gnuplot-nox)",
                         strerror(rc));
    }

    /* Keep the start of what gnuplot says; the rest is drained and dropped. */
    char msg[8192];
    size_t got = 0;
    for (;;) {
        char chunk[4096];
        ssize_t k = read(pipefd[0], chunk, sizeof chunk);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        size_t take = (size_t)k < sizeof msg - 1 - got ? (size_t)k : sizeof msg - 1 - got;
        memcpy(msg + got, chunk, take);
        got += take;
    }
    msg[got] = '\0';
    close(pipefd[0]);

    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR)
            return rn_errorf(err, "%s: waitpid: %s", figure, strerror(errno));
    }
    char reason[400];
    gnuplot_reason(msg, reason, sizeof reason);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        if (WIFSIGNALED(status))
            return rn_errorf(err, "%s: gnuplot killed by signal %d running %s", figure,
                             WTERMSIG(status), script_path);
        return rn_errorf(err, "%s: gnuplot failed (exit %d): %s", figure, WEXITSTATUS(status),
                         reason);
    }
    struct stat st;
    if (stat(out, &st) != 0 || st.st_size == 0)
        return rn_errorf(err, "%s: gnuplot wrote no figure (%s); it said: %s", figure, out,
                         reason);
    return 0;
}

/* Runs `gnuplot -e "<common defs><defs>" <script>` and checks that it exited
 * 0 and wrote out. */
int rn_plot_draw(struct rn_plotter *p, const char *script, const char *figure, int w, int h,
                 struct rn_sbuf *defs, struct rn_error *err)
{
    char script_path[RN_PLOT_PATH_MAX], out[RN_PLOT_PATH_MAX];
    snprintf(script_path, sizeof script_path, "%s/%s", p->scripts, script);
    snprintf(out, sizeof out, "%s/%s.%s", p->out_dir, figure, p->fmt);
    if (access(script_path, R_OK) != 0)
        return rn_errorf(err, "%s: cannot read gnuplot script: %s (set RUNNER_PLOTS to the "
                              "plots/ folder of the source tree)",
                         script_path, strerror(errno));

    struct rn_sbuf all = {0};
    rn_sbuf_def_str(&all, "fmt", p->fmt);
    rn_sbuf_printf(&all, "W=%d; H=%d; ", w, h);
    rn_sbuf_def_str(&all, "out", out);
    rn_sbuf_def_str(&all, "datadir", p->data_dir);
    rn_sbuf_def_str(&all, "plotsdir", p->scripts);
    rn_sbuf_printf(&all, "%s", defs->s ? defs->s : "");
    if (all.oom || defs->oom) {
        free(all.s);
        return rn_errorf(err, "%s: out of memory building gnuplot arguments", figure);
    }

    int rc = rn_plot_gnuplot(script_path, all.s, out, figure, err);
    free(all.s);
    if (rc)
        return -1;
    p->n_figures++;
    return 0;
}

/* ---- training curves --------------------------------------------------- */

/* One curve: <split>/<loss|accuracy>, per step or per epoch. */
struct curve {
    const char *name; /* metric name, borrowed from the list */
    char split[64];
    int accuracy;
    int per_step;
};

static int is_step_metric(struct rn_plotter *p, const char *name)
{
    char obj[RN_PLOT_PATH_MAX], *xl = NULL;
    snprintf(obj, sizeof obj, "/metrics/%s", name);
    if (rn_results_get_attr_str(p->r, obj, "x_label", &xl, NULL) == 0) {
        int step = strstr(xl, "step") != NULL;
        free(xl);
        return step;
    }
    /* No label: the trainer's convention, "train/..." is logged per step. */
    return strncmp(name, "train/", 6) == 0;
}

/* Fills c from a metric name; 0 if it is not a loss or accuracy curve. */
static int curve_of(struct rn_plotter *p, const char *name, struct curve *c)
{
    const char *slash = strrchr(name, '/');
    if (!slash || slash == name)
        return 0;
    const char *metric = slash + 1;
    int acc = strcmp(metric, "accuracy") == 0 || strcmp(metric, "acc") == 0;
    if (!acc && strcmp(metric, "loss") != 0)
        return 0;
    char split[64];
    size_t k = (size_t)(slash - name);
    if (k >= sizeof split)
        k = sizeof split - 1;
    memcpy(split, name, k);
    split[k] = '\0';
    c->name = name;
    rn_plot_safe_name(c->split, sizeof c->split, split);
    c->accuracy = acc;
    c->per_step = is_step_metric(p, name);
    return 1;
}

/* Legends list train, val, test, then any other split, whatever the
 * alphabetical order of the metric names. */
static int split_rank(const char *s)
{
    if (strncmp(s, "train", 5) == 0)
        return 0; /* train (per step), then train_eval (per epoch) */
    return strcmp(s, "val") == 0 ? 1 : strcmp(s, "test") == 0 ? 2 : 3;
}

static int cmp_curve(const void *a, const void *b)
{
    const struct curve *x = a, *y = b;
    int d = split_rank(x->split) - split_rank(y->split);
    return d ? d : strcmp(x->split, y->split);
}

static int plot_curves(struct rn_plotter *p, struct rn_error *err)
{
    char **names = NULL;
    int n_names = 0, rc = -1;
    struct curve *curves = NULL;
    int n_curves = 0;
    struct rn_sbuf defs = {0}, lists[4] = {{0}}; /* loss step, loss epoch, acc step, acc epoch */
    double *x = NULL, *v = NULL;
    int n;

    if (!rn_results_exists(p->r, "/metrics"))
        return 0;
    if (rn_results_list(p->r, "/metrics", &names, &n_names, err))
        return -1;
    if (!(curves = rn_calloc((size_t)n_names + 1, sizeof *curves, err)))
        goto done;
    for (int i = 0; i < n_names; i++)
        n_curves += curve_of(p, names[i], &curves[n_curves]);
    if (n_curves == 0) {
        rc = 0;
        goto done;
    }
    qsort(curves, (size_t)n_curves, sizeof *curves, cmp_curve);

    uint64_t spe = 0;
    if (rn_results_get_attr_u64(p->r, "/metrics", "steps_per_epoch", &spe, NULL) != 0)
        spe = 0;
    /* Without steps_per_epoch, x is the step and epoch e sits at
     * e * (last step / last epoch), which is right for a finished run. */
    double max_step = 0, max_epoch = 0;
    for (int i = 0; i < n_curves; i++) {
        if (rn_results_read_metric(p->r, curves[i].name, &x, &v, &n, err))
            goto done;
        for (int j = 0; j < n; j++) {
            double *m = curves[i].per_step ? &max_step : &max_epoch;
            if (x[j] > *m)
                *m = x[j];
        }
        free(x);
        free(v);
        x = v = NULL;
    }
    int in_epochs = spe > 0 || max_step == 0;
    double epoch_scale = 1, step_scale = 1;
    if (spe > 0)
        step_scale = 1.0 / (double)spe;
    else if (max_step > 0 && max_epoch > 0)
        epoch_scale = max_step / max_epoch;

    double xmax = 0;
    for (int i = 0; i < n_curves; i++) {
        struct curve *c = &curves[i];
        if (rn_results_read_metric(p->r, c->name, &x, &v, &n, err))
            goto done;
        /* Accuracy is drawn in %; it may be stored as a fraction or in %. */
        double scale = 1;
        if (c->accuracy) {
            scale = 100;
            for (int j = 0; j < n; j++)
                if (v[j] > 1.0 + 1e-9)
                    scale = 1;
        }
        char file[RN_PLOT_PATH_MAX], path[RN_PLOT_PATH_MAX];
        snprintf(file, sizeof file, "curve_%s_%s_%s.dat", c->per_step ? "step" : "epoch",
                 c->split, c->accuracy ? "accuracy" : "loss");
        FILE *f = rn_plot_data_open(p, file, path, err);
        if (!f)
            goto done;
        fprintf(f, "# /metrics/%s: x (%s) value%s\n", c->name, in_epochs ? "epochs" : "steps",
                c->accuracy ? " (%)" : "");
        for (int j = 0; j < n; j++) {
            double xx = x[j] * (c->per_step ? step_scale : epoch_scale);
            if (xx > xmax)
                xmax = xx;
            fprintf(f, "%.10g %.10g\n", xx, v[j] * scale);
        }
        free(x);
        free(v);
        x = v = NULL;
        if (rn_plot_data_close(f, path, err))
            goto done;
        struct rn_sbuf *l = &lists[2 * c->accuracy + (c->per_step ? 0 : 1)];
        rn_sbuf_printf(l, "%s%s", l->len ? " " : "", c->split);
    }

    char *title = NULL;
    if (rn_results_get_attr_str(p->r, "/config", "experiment", &title, NULL) != 0) {
        const char *base = strrchr(p->run_dir, '/');
        title = strdup(base && base[1] ? base + 1 : p->run_dir);
    }
    rn_sbuf_def_str(&defs, "title", title ? title : "");
    free(title);
    static const char *keys[4] = {"loss_step", "loss_epoch", "acc_step", "acc_epoch"};
    for (int k = 0; k < 4; k++)
        rn_sbuf_def_str(&defs, keys[k], lists[k].s ? lists[k].s : "");
    rn_sbuf_def_str(&defs, "xlabel", in_epochs ? "epoch" : "step");
    rn_sbuf_printf(&defs, "xmax=%.10g; ", xmax > 0 ? xmax : 1);
    rc = rn_plot_draw(p, "curves.gp", "curves", 1400, 520, &defs, err);
done:
    free(x);
    free(v);
    for (int k = 0; k < 4; k++)
        free(lists[k].s);
    free(defs.s);
    free(curves);
    rn_results_free_list(names, n_names);
    return rc;
}

/* ---- heatmaps: confusion matrices and colour statistics ------------------- */

int rn_plot_heatmap(struct rn_plotter *p, const char *dataset, const char *split, int colours,
                    struct rn_error *err)
{
    int32_t *m = NULL;
    int ndim, dims[4], rc = -1;
    struct rn_sbuf defs = {0};
    if (rn_results_read(p->r, dataset, RN_DTYPE_I32, (void **)&m, &ndim, dims, err))
        return -1;
    if (ndim != 2 || dims[0] < 1 || dims[1] < 1) {
        rn_errorf(err, "%s: %s: expected an int32 (rows, cols) matrix", p->run_dir, dataset);
        goto done;
    }
    int rows = dims[0], cols = dims[1];
    char sname[64], file[RN_PLOT_PATH_MAX], path[RN_PLOT_PATH_MAX], figure[128];
    rn_plot_safe_name(sname, sizeof sname, split);
    snprintf(figure, sizeof figure, "%s_%s", colours ? "colour_stats" : "confusion", sname);
    snprintf(file, sizeof file, "%s.dat", figure);
    FILE *f = rn_plot_data_open(p, file, path, err);
    if (!f)
        goto done;
    /* gnuplot's `matrix`: row r of the file is y = r, column c is x = c. */
    fprintf(f, "# %s: rows %s, columns %s\n", dataset, colours ? "label" : "true class",
            colours ? "colour index" : "predicted class");
    long long total = 0, diag = 0, vmax = 0;
    for (int r = 0; r < rows; r++) {
        for (int c = 0; c < cols; c++) {
            int32_t v = m[r * cols + c];
            fprintf(f, "%s%d", c ? " " : "", (int)v);
            total += v;
            if (r == c)
                diag += v;
            if (v > vmax)
                vmax = v;
        }
        fprintf(f, "\n");
    }
    if (rn_plot_data_close(f, path, err))
        goto done;

    struct rn_sbuf xn = {0}, yn = {0};
    for (int c = 0; c < cols; c++) {
        if (colours && c < RN_N_COLOURS)
            rn_sbuf_printf(&xn, "%s%s", c ? " " : "", rn_palette_study.names[c]);
        else
            rn_sbuf_printf(&xn, "%s%d", c ? " " : "", c);
    }
    for (int r = 0; r < rows; r++)
        rn_sbuf_printf(&yn, "%s%d", r ? " " : "", r);
    rn_sbuf_def_str(&defs, "file", path);
    rn_sbuf_def_str(&defs, "xnames", xn.s ? xn.s : "");
    rn_sbuf_def_str(&defs, "ynames", yn.s ? yn.s : "");
    free(xn.s);
    free(yn.s);
    double share = total > 0 ? 100.0 * (double)diag / (double)total : 0;
    char title[256];
    if (colours) {
        snprintf(title, sizeof title,
                 "colour statistics · %s · %.1f %% of %lld images in their digit's colour", split,
                 share, total);
        rn_sbuf_def_str(&defs, "xlabel", "colour");
        rn_sbuf_def_str(&defs, "ylabel", "label");
        rn_sbuf_printf(&defs, "xrotate=1; ");
    } else {
        snprintf(title, sizeof title, "confusion · %s · accuracy %.2f %% (%lld / %lld)", split,
                 share, diag, total);
        rn_sbuf_def_str(&defs, "xlabel", "predicted");
        rn_sbuf_def_str(&defs, "ylabel", "true");
        rn_sbuf_printf(&defs, "xrotate=0; ");
    }
    rn_sbuf_def_str(&defs, "title", title);
    rn_sbuf_def_str(&defs, "cblabel", "images");
    rn_sbuf_printf(&defs, "rows=%d; cols=%d; vmax=%lld; ", rows, cols, vmax > 0 ? vmax : 1);
    int w = 120 + cols * 60 + 160, h = 150 + rows * 56;
    rc = rn_plot_draw(p, "heatmap.gp", figure, w, h, &defs, err);
done:
    free(defs.s);
    free(m);
    return rc;
}

/* ---- images, maps and the datasets they are read from ------------------- */

void rn_plot_write_image(FILE *f, const uint8_t *img, int c, int h, int w, int x0, int y0)
{
    size_t hw = (size_t)h * (size_t)w;
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            size_t k = (size_t)y * (size_t)w + (size_t)x;
            int r = img[k], g = c >= 3 ? img[hw + k] : r, b = c >= 3 ? img[2 * hw + k] : r;
            fprintf(f, "%d %d %d %d %d\n", x0 + x, y0 - y, r, g, b);
        }
        fprintf(f, "\n");
    }
    fprintf(f, "\n\n"); /* next gnuplot `index` */
}

int rn_plot_read_images(struct rn_plotter *p, const char *path, uint8_t **img, int *n, int *c,
                        int *h, int *w, struct rn_error *err)
{
    int ndim, dims[4];
    if (rn_results_read(p->r, path, RN_DTYPE_U8, (void **)img, &ndim, dims, err))
        return -1;
    if (ndim == 4) {
        *n = dims[0], *c = dims[1], *h = dims[2], *w = dims[3];
    } else if (ndim == 3) { /* a single (c, h, w) image */
        *n = 1, *c = dims[0], *h = dims[1], *w = dims[2];
    } else {
        free(*img);
        *img = NULL;
        return rn_errorf(err, "%s: %s: expected uint8 (n, c, h, w) or (c, h, w) images",
                         p->run_dir, path);
    }
    if (*c != 1 && *c != 3) {
        free(*img);
        *img = NULL;
        return rn_errorf(err, "%s: %s: %d channels; images must have 1 or 3", p->run_dir, path,
                         *c);
    }
    return 0;
}

int rn_plot_read_vector(struct rn_plotter *p, const char *path, int n, int required, int32_t **out,
                        struct rn_error *err)
{
    int ndim, dims[4];
    *out = NULL;
    if (!rn_results_exists(p->r, path)) {
        if (required)
            return rn_errorf(err, "%s: %s: missing", p->run_dir, path);
        return 0;
    }
    if (rn_results_read(p->r, path, RN_DTYPE_I32, (void **)out, &ndim, dims, err))
        return -1;
    if (ndim != 1 || dims[0] < n) {
        free(*out);
        *out = NULL;
        return rn_errorf(err, "%s: %s: expected int32 (%d)", p->run_dir, path, n);
    }
    return 0;
}

const char *rn_plot_colour_name(int k)
{
    return k >= 0 && k < RN_N_COLOURS ? rn_palette_study.names[k] : NULL;
}

int rn_plot_read_f32(struct rn_plotter *p, const char *path, int ndim, float **out, int dims[4],
                     struct rn_error *err)
{
    int nd;
    *out = NULL;
    if (rn_results_read(p->r, path, RN_DTYPE_F32, (void **)out, &nd, dims, err))
        return -1;
    if (nd != ndim) {
        free(*out);
        *out = NULL;
        return rn_errorf(err, "%s: %s: expected float32 with %d dims, got %d", p->run_dir, path,
                         ndim, nd);
    }
    return 0;
}

char *rn_plot_attr_or(struct rn_plotter *p, const char *obj, const char *name, const char *def)
{
    char *s = NULL;
    if (rn_results_get_attr_str(p->r, obj, name, &s, NULL) != 0)
        s = strdup(def);
    return s;
}

void rn_plot_write_map(FILE *f, const float *m, int h, int w, double scale, int x0, int y0)
{
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++)
            fprintf(f, "%d %d %.6g\n", x0 + x, y0 - y, m[(size_t)y * w + x] * scale);
        fprintf(f, "\n");
    }
    fprintf(f, "\n\n");
}

/* ---- confusion matrices, and the analyses ------------------------------- */

/* One heatmap per split of the evaluation's confusion matrices. */
static int plot_confusion(struct rn_plotter *p, const char *group, char *const *datasets, int n,
                          struct rn_error *err)
{
    for (int q = 0; q < n; q++) {
        const char *rest = datasets[q];
        if (!*rest || strchr(rest, '/'))
            continue;
        char dataset[RN_PLOT_PATH_MAX];
        snprintf(dataset, sizeof dataset, "%s/%s", group, rest);
        if (rn_plot_heatmap(p, dataset, rest, 0, err))
            return -1;
    }
    return 0;
}

static int plot_analyses(struct rn_plotter *p, struct rn_error *err)
{
    char **names = NULL;
    int n = 0, rc = 0;
    if (!rn_results_exists(p->r, "/analyses"))
        return 0;
    if (rn_results_list(p->r, "/analyses", &names, &n, err))
        return -1;
    /* names are sorted, so the datasets of one top-level group are adjacent. */
    for (int i = 0; i < n && rc == 0;) {
        size_t glen = strcspn(names[i], "/");
        char gname[256], group[300], *kind = NULL;
        snprintf(gname, sizeof gname, "%.*s", (int)glen, names[i]);
        snprintf(group, sizeof group, "/analyses/%s", gname);
        int j = i;
        while (j < n && strncmp(names[j], names[i], glen) == 0 &&
               (names[j][glen] == '/' || names[j][glen] == '\0'))
            j++;
        /* The group's datasets relative to it ("test/images"), in place. */
        for (int q = i; q < j; q++)
            memmove(names[q], names[q] + glen + (names[q][glen] == '/'),
                    strlen(names[q] + glen + (names[q][glen] == '/')) + 1);
        if (rn_results_get_attr_str(p->r, group, "kind", &kind, NULL) != 0)
            kind = strdup(gname);
        const char *kd = kind ? kind : gname;
        const struct rn_analysis_type *t = rn_analysis_type_find(kd);
        if (strcmp(kd, "confusion") == 0)
            rc = plot_confusion(p, group, names + i, j - i, err);
        else if (t && t->plot)
            rc = t->plot(p, group, gname, names + i, j - i, err);
        free(kind);
        i = j;
    }
    rn_results_free_list(names, n);
    return rc;
}

int rn_plot_run(const char *run_dir, const char *format, int *n_figures, struct rn_error *err)
{
    struct rn_plotter p = {0};
    char h5[RN_PLOT_PATH_MAX];
    if (n_figures)
        *n_figures = 0;
    if (!format || !*format)
        format = "png";
    if (strcmp(format, "png") != 0 && strcmp(format, "pdf") != 0 && strcmp(format, "svg") != 0)
        return rn_errorf(err, "plot: unknown format '%s' (png, pdf or svg)", format);
    p.run_dir = run_dir;
    p.fmt = format;
    const char *scripts = rn_plot_scripts_dir();
    if (!scripts || !*scripts)
        return rn_errorf(err, "plot: no gnuplot scripts: set RUNNER_PLOTS to the plots/ folder");
    if (snprintf(h5, sizeof h5, "%s/run.h5", run_dir) >= (int)sizeof h5 ||
        snprintf(p.scripts, sizeof p.scripts, "%s", scripts) >= (int)sizeof p.scripts ||
        snprintf(p.out_dir, sizeof p.out_dir, "%s/plots", run_dir) >= (int)sizeof p.out_dir ||
        snprintf(p.data_dir, sizeof p.data_dir, "%s/plots/data", run_dir) >=
            (int)sizeof p.data_dir)
        return rn_errorf(err, "%s: path too long", run_dir);

    if (rn_results_open(&p.r, h5, err)) {
        /* rn_results_open says "<path>: cannot open: <why>". */
        char why[RN_ERROR_MAX];
        snprintf(why, sizeof why, "%s", err ? err->msg : "");
        return rn_errorf(err, "%.900s; is this a run directory?", why);
    }
    int rc = -1;
    if (make_dir(p.out_dir, err) || make_dir(p.data_dir, err))
        goto done;
    if (plot_curves(&p, err) || plot_analyses(&p, err))
        goto done;
    rc = 0;
done:
    rn_results_close(p.r);
    if (n_figures)
        *n_figures = p.n_figures;
    return rc;
}
