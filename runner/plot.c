/* plot.c - figures of a run, drawn by gnuplot from run.h5 alone (plot.h).
 *
 * For every figure we write the numbers it needs as plain text under
 * <run_dir>/plots/data/ (so a figure can be redrawn or restyled by hand with
 * gnuplot alone) and run one script of plots/ with its parameters given as
 * `-e` definitions: fmt, W, H (pixels), out, datadir, plotsdir, plus the
 * figure's own. plots/style.gp picks the terminal from fmt.
 *
 * What is drawn (see the scripts in plots/):
 *   curves.<fmt>                /metrics/<split>/{loss,accuracy}
 *   confusion_<split>.<fmt>     /analyses/<kind "confusion">/<split>
 *   samples_<split>.<fmt>       /analyses/<kind "samples">/<split>/{images,labels,colours,preds}
 *   <name>.<fmt>                /analyses/<name> of kind "probe": image, probs
 *   colour_stats_<split>.<fmt>  /analyses/<kind "colour_stats">/<split>
 * An analysis group without a kind attribute is recognised by its name.
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

#include "data.h"
#include "results.h"

extern char **environ;

#define PLOT_PATH_MAX 1024
#define PLOT_DIR_MAX 768

/* ---- a growable string for gnuplot's -e definitions -------------------- */

struct sbuf {
    char *s;
    size_t len, cap;
    int oom;
};

static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sbuf *b, const char *fmt, ...)
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
static void sb_def_str(struct sbuf *b, const char *key, const char *value)
{
    sb_printf(b, "%s='", key);
    for (const char *c = value; *c; c++)
        sb_printf(b, *c == '\'' ? "''" : "%c", *c);
    sb_printf(b, "'; ");
}

/* ---- the run being plotted --------------------------------------------- */

struct plotter {
    const char *run_dir;
    const char *fmt;
    /* Shorter than PLOT_PATH_MAX, leaving room for the file names. */
    char scripts[PLOT_DIR_MAX];
    char out_dir[PLOT_DIR_MAX];
    char data_dir[PLOT_DIR_MAX];
    struct rn_results *r;
    int n_figures;
};

/* File-name-safe copy of a split or analysis name. */
static void safe_name(char *dst, size_t n, const char *src)
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

static FILE *data_open(struct plotter *p, const char *name, char *path, struct rn_error *err)
{
    snprintf(path, PLOT_PATH_MAX, "%s/%s", p->data_dir, name);
    FILE *f = fopen(path, "w");
    if (!f)
        rn_errorf(err, "%s: cannot write: %s", path, strerror(errno));
    return f;
}

static int data_close(FILE *f, const char *path, struct rn_error *err)
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

/* Runs `gnuplot -e "<common defs><defs>" <script>` and checks that it exited
 * 0 and wrote out. */
static int run_gnuplot(struct plotter *p, const char *script, const char *figure, int w, int h,
                       struct sbuf *defs, struct rn_error *err)
{
    char script_path[PLOT_PATH_MAX], out[PLOT_PATH_MAX];
    snprintf(script_path, sizeof script_path, "%s/%s", p->scripts, script);
    snprintf(out, sizeof out, "%s/%s.%s", p->out_dir, figure, p->fmt);
    if (access(script_path, R_OK) != 0)
        return rn_errorf(err, "%s: cannot read gnuplot script: %s (set RUNNER_PLOTS to the "
                              "plots/ folder of the source tree)",
                         script_path, strerror(errno));

    struct sbuf all = {0};
    sb_def_str(&all, "fmt", p->fmt);
    sb_printf(&all, "W=%d; H=%d; ", w, h);
    sb_def_str(&all, "out", out);
    sb_def_str(&all, "datadir", p->data_dir);
    sb_def_str(&all, "plotsdir", p->scripts);
    sb_printf(&all, "%s", defs->s ? defs->s : "");
    if (all.oom || defs->oom) {
        free(all.s);
        return rn_errorf(err, "%s: out of memory building gnuplot arguments", figure);
    }

    int pipefd[2];
    if (pipe(pipefd) != 0) {
        free(all.s);
        return rn_errorf(err, "%s: pipe: %s", figure, strerror(errno));
    }
    remove(out); /* so a stale figure cannot pass for a new one */

    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
    posix_spawn_file_actions_addclose(&fa, pipefd[0]);
    posix_spawn_file_actions_addclose(&fa, pipefd[1]);
    char *argv[] = {"gnuplot", "-e", all.s, script_path, NULL};
    pid_t pid;
    int rc = posix_spawnp(&pid, "gnuplot", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(pipefd[1]);
    free(all.s);
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

static int is_step_metric(struct plotter *p, const char *name)
{
    char obj[PLOT_PATH_MAX], *xl = NULL;
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
static int curve_of(struct plotter *p, const char *name, struct curve *c)
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
    safe_name(c->split, sizeof c->split, split);
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

static int plot_curves(struct plotter *p, struct rn_error *err)
{
    char **names = NULL;
    int n_names = 0, rc = -1;
    struct curve *curves = NULL;
    int n_curves = 0;
    struct sbuf defs = {0}, lists[4] = {{0}}; /* loss step, loss epoch, acc step, acc epoch */
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
        char file[PLOT_PATH_MAX], path[PLOT_PATH_MAX];
        snprintf(file, sizeof file, "curve_%s_%s_%s.dat", c->per_step ? "step" : "epoch",
                 c->split, c->accuracy ? "accuracy" : "loss");
        FILE *f = data_open(p, file, path, err);
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
        if (data_close(f, path, err))
            goto done;
        struct sbuf *l = &lists[2 * c->accuracy + (c->per_step ? 0 : 1)];
        sb_printf(l, "%s%s", l->len ? " " : "", c->split);
    }

    char *title = NULL;
    if (rn_results_get_attr_str(p->r, "/config", "experiment", &title, NULL) != 0) {
        const char *base = strrchr(p->run_dir, '/');
        title = strdup(base && base[1] ? base + 1 : p->run_dir);
    }
    sb_def_str(&defs, "title", title ? title : "");
    free(title);
    static const char *keys[4] = {"loss_step", "loss_epoch", "acc_step", "acc_epoch"};
    for (int k = 0; k < 4; k++)
        sb_def_str(&defs, keys[k], lists[k].s ? lists[k].s : "");
    sb_def_str(&defs, "xlabel", in_epochs ? "epoch" : "step");
    sb_printf(&defs, "xmax=%.10g; ", xmax > 0 ? xmax : 1);
    rc = run_gnuplot(p, "curves.gp", "curves", 1400, 520, &defs, err);
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

/* ---- heatmaps: confusion matrices and colour statistics ---------------- */

static int plot_heatmap(struct plotter *p, const char *dataset, const char *split, int colours,
                        struct rn_error *err)
{
    int32_t *m = NULL;
    int ndim, dims[4], rc = -1;
    struct sbuf defs = {0};
    if (rn_results_read(p->r, dataset, RN_DTYPE_I32, (void **)&m, &ndim, dims, err))
        return -1;
    if (ndim != 2 || dims[0] < 1 || dims[1] < 1) {
        rn_errorf(err, "%s: %s: expected an int32 (rows, cols) matrix", p->run_dir, dataset);
        goto done;
    }
    int rows = dims[0], cols = dims[1];
    char sname[64], file[PLOT_PATH_MAX], path[PLOT_PATH_MAX], figure[128];
    safe_name(sname, sizeof sname, split);
    snprintf(figure, sizeof figure, "%s_%s", colours ? "colour_stats" : "confusion", sname);
    snprintf(file, sizeof file, "%s.dat", figure);
    FILE *f = data_open(p, file, path, err);
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
    if (data_close(f, path, err))
        goto done;

    struct sbuf xn = {0}, yn = {0};
    for (int c = 0; c < cols; c++) {
        if (colours && c < RN_N_COLOURS)
            sb_printf(&xn, "%s%s", c ? " " : "", rn_palette_study.names[c]);
        else
            sb_printf(&xn, "%s%d", c ? " " : "", c);
    }
    for (int r = 0; r < rows; r++)
        sb_printf(&yn, "%s%d", r ? " " : "", r);
    sb_def_str(&defs, "file", path);
    sb_def_str(&defs, "xnames", xn.s ? xn.s : "");
    sb_def_str(&defs, "ynames", yn.s ? yn.s : "");
    free(xn.s);
    free(yn.s);
    double share = total > 0 ? 100.0 * (double)diag / (double)total : 0;
    char title[256];
    if (colours) {
        snprintf(title, sizeof title,
                 "colour statistics · %s · %.1f %% of %lld images in their digit's colour", split,
                 share, total);
        sb_def_str(&defs, "xlabel", "colour");
        sb_def_str(&defs, "ylabel", "label");
        sb_printf(&defs, "xrotate=1; ");
    } else {
        snprintf(title, sizeof title, "confusion · %s · accuracy %.2f %% (%lld / %lld)", split,
                 share, diag, total);
        sb_def_str(&defs, "xlabel", "predicted");
        sb_def_str(&defs, "ylabel", "true");
        sb_printf(&defs, "xrotate=0; ");
    }
    sb_def_str(&defs, "title", title);
    sb_def_str(&defs, "cblabel", "images");
    sb_printf(&defs, "rows=%d; cols=%d; vmax=%lld; ", rows, cols, vmax > 0 ? vmax : 1);
    int w = 120 + cols * 60 + 160, h = 150 + rows * 56;
    rc = run_gnuplot(p, "heatmap.gp", figure, w, h, &defs, err);
done:
    free(defs.s);
    free(m);
    return rc;
}

/* ---- image grids and probes -------------------------------------------- */

/* Writes image i of a (n, c, h, w) uint8 array as one gnuplot data block of
 * "x y r g b" rows, pixel (row y, column x) at (x0 + x, y0 - y) so that row 0
 * is at the top. Grey images are replicated to RGB. */
static void write_image(FILE *f, const uint8_t *img, int c, int h, int w, int x0, int y0)
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

static int read_image_array(struct plotter *p, const char *path, uint8_t **img, int *n, int *c,
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

/* Reads an optional int32 vector of length n; *out stays NULL when absent. */
static int read_vector(struct plotter *p, const char *path, int n, int required, int32_t **out,
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

static const char *colour_name(int k)
{
    return k >= 0 && k < RN_N_COLOURS ? rn_palette_study.names[k] : NULL;
}

static int plot_samples(struct plotter *p, const char *group, const char *split,
                        struct rn_error *err)
{
    char path[PLOT_PATH_MAX], file[PLOT_PATH_MAX], lpath[PLOT_PATH_MAX], figure[128];
    char sname[64];
    uint8_t *img = NULL;
    int32_t *labels = NULL, *colours = NULL, *preds = NULL;
    int n, c, h, w, rc = -1;
    struct sbuf defs = {0};
    FILE *f = NULL;

    snprintf(path, sizeof path, "%s/%s/images", group, split);
    if (read_image_array(p, path, &img, &n, &c, &h, &w, err))
        return -1;
    snprintf(path, sizeof path, "%s/%s/labels", group, split);
    if (read_vector(p, path, n, 1, &labels, err))
        goto done;
    snprintf(path, sizeof path, "%s/%s/colours", group, split);
    if (read_vector(p, path, n, 0, &colours, err))
        goto done;
    snprintf(path, sizeof path, "%s/%s/preds", group, split);
    if (read_vector(p, path, n, 0, &preds, err))
        goto done;
    if (n == 0) {
        rc = 0;
        goto done;
    }

    safe_name(sname, sizeof sname, split);
    snprintf(figure, sizeof figure, "samples_%s", sname);

    /* Grid: 10 per row; a cell is the image plus two text lines under it,
     * in data units of one pixel. */
    int ncols = n < 10 ? n : 10, nrows = (n + ncols - 1) / ncols;
    int gap = 8, text = preds ? 13 : 8;
    int cellw = w + gap, cellh = h + text;

    snprintf(file, sizeof file, "%s_images.dat", figure);
    if (!(f = data_open(p, file, path, err)))
        goto done;
    fprintf(f, "# %s/%s/images: one index per image; x y r g b\n", group, split);
    for (int i = 0; i < n; i++)
        write_image(f, img + (size_t)i * (size_t)(c * h * w), c, h, w, (i % ncols) * cellw,
                    -(i / ncols) * cellh);
    if (data_close(f, path, err)) {
        f = NULL;
        goto done;
    }
    snprintf(file, sizeof file, "%s_labels.dat", figure);
    if (!(f = data_open(p, file, lpath, err)))
        goto done;
    fprintf(f, "# x y text wrong(0/1)\n");
    for (int i = 0; i < n; i++) {
        double xc = (i % ncols) * cellw + (w - 1) / 2.0;
        double ytop = -(i / ncols) * cellh - (h - 1) - 0.5; /* bottom edge of the image */
        const char *cn = colours ? colour_name(colours[i]) : NULL;
        if (cn)
            fprintf(f, "%g %g \"label %d · %s\" 0\n", xc, ytop - 3.2, labels[i], cn);
        else
            fprintf(f, "%g %g \"label %d\" 0\n", xc, ytop - 3.2, labels[i]);
        if (preds)
            fprintf(f, "%g %g \"pred %d\" %d\n", xc, ytop - 8.6, preds[i],
                    preds[i] != labels[i]);
    }
    if (data_close(f, lpath, err)) {
        f = NULL;
        goto done;
    }
    f = NULL;

    int wrong = 0;
    for (int i = 0; preds && i < n; i++)
        wrong += preds[i] != labels[i];
    char title[400];
    if (preds)
        snprintf(title, sizeof title, "%s · %d images · %d misclassified (in red)", split, n,
                 wrong);
    else
        snprintf(title, sizeof title, "%s · %d images", split, n);
    sb_def_str(&defs, "images", path);
    sb_def_str(&defs, "labels", lpath);
    sb_def_str(&defs, "title", title);
    sb_printf(&defs, "n=%d; xlo=%g; xhi=%g; ylo=%g; yhi=%g; ", n, -gap / 2.0,
              ncols * cellw - gap / 2.0, -(double)nrows * cellh + 0.5, 0.5 + 2);
    /* 4 screen pixels per image pixel, plus room for the title. */
    int px = 4;
    int W = ncols * cellw * px + 40, H = (nrows * cellh + 2) * px + 60;
    rc = run_gnuplot(p, "samples.gp", figure, W, H, &defs, err);
done:
    if (f)
        fclose(f);
    free(defs.s);
    free(img);
    free(labels);
    free(colours);
    free(preds);
    return rc;
}

static int plot_probe(struct plotter *p, const char *group, const char *name,
                      struct rn_error *err)
{
    char path[PLOT_PATH_MAX], ipath[PLOT_PATH_MAX], bpath[PLOT_PATH_MAX], file[PLOT_PATH_MAX];
    char figure[128];
    uint8_t *img = NULL;
    float *probs = NULL;
    int n, c, h, w, ndim, dims[4], rc = -1;
    struct sbuf defs = {0};
    char *title = NULL;
    FILE *f;

    snprintf(path, sizeof path, "%s/image", group);
    if (read_image_array(p, path, &img, &n, &c, &h, &w, err))
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
    safe_name(sname, sizeof sname, name);
    snprintf(figure, sizeof figure, "%s", sname);
    snprintf(file, sizeof file, "%s_image.dat", figure);
    if (!(f = data_open(p, file, ipath, err)))
        goto done;
    write_image(f, img, c, h, w, 0, 0);
    if (data_close(f, ipath, err))
        goto done;
    snprintf(file, sizeof file, "%s_probs.dat", figure);
    if (!(f = data_open(p, file, bpath, err)))
        goto done;
    fprintf(f, "# class probability predicted(0/1)\n");
    for (int i = 0; i < k; i++)
        fprintf(f, "%d %.6f %d\n", i, probs[i], (uint64_t)i == pred);
    if (data_close(f, bpath, err))
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
    sb_def_str(&defs, "image", ipath);
    sb_def_str(&defs, "probs", bpath);
    sb_def_str(&defs, "title", title ? title : name);
    sb_def_str(&defs, "subtitle", sub);
    sb_printf(&defs, "iw=%d; ih=%d; classes=%d; wrong=%d; ", w, h, k,
              label != UINT64_MAX && label != pred);
    rc = run_gnuplot(p, "probe.gp", figure, 1000, 440, &defs, err);
done:
    free(title);
    free(defs.s);
    free(img);
    free(probs);
    return rc;
}

/* ---- analyses ---------------------------------------------------------- */

static int plot_analyses(struct plotter *p, struct rn_error *err)
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
        if (rn_results_get_attr_str(p->r, group, "kind", &kind, NULL) != 0)
            kind = strdup(gname);
        const char *kd = kind ? kind : gname;

        if (strcmp(kd, "probe") == 0) {
            char ip[PLOT_PATH_MAX];
            snprintf(ip, sizeof ip, "%s/probs", group);
            if (rn_results_exists(p->r, ip))
                rc = plot_probe(p, group, gname, err);
        } else {
            for (int q = i; q < j && rc == 0; q++) {
                const char *rest = names[q][glen] == '/' ? names[q] + glen + 1 : "";
                char dataset[PLOT_PATH_MAX];
                snprintf(dataset, sizeof dataset, "%s/%s", group, rest);
                if (strcmp(kd, "confusion") == 0 && *rest && !strchr(rest, '/')) {
                    rc = plot_heatmap(p, dataset, rest, 0, err);
                } else if (strcmp(kd, "colour_stats") == 0 && *rest && !strchr(rest, '/')) {
                    /* colour_stats may store more than the matrices (e.g.
                     * the detector's agreement): draw only int32 matrices. */
                    int32_t *m = NULL;
                    int nd, dims[4];
                    if (rn_results_read(p->r, dataset, RN_DTYPE_I32, (void **)&m, &nd, dims,
                                        NULL) == 0 &&
                        nd == 2)
                        rc = plot_heatmap(p, dataset, rest, 1, err);
                    free(m);
                } else if (strcmp(kd, "samples") == 0) {
                    const char *s = strstr(rest, "/images");
                    if (s && strcmp(s, "/images") == 0) {
                        char split[256];
                        snprintf(split, sizeof split, "%.*s", (int)(s - rest), rest);
                        rc = plot_samples(p, group, split, err);
                    }
                }
            }
        }
        free(kind);
        i = j;
    }
    rn_results_free_list(names, n);
    return rc;
}

int rn_plot_run(const char *run_dir, const char *format, int *n_figures, struct rn_error *err)
{
    struct plotter p = {0};
    char h5[PLOT_PATH_MAX];
    if (n_figures)
        *n_figures = 0;
    if (!format || !*format)
        format = "png";
    if (strcmp(format, "png") != 0 && strcmp(format, "pdf") != 0 && strcmp(format, "svg") != 0)
        return rn_errorf(err, "plot: unknown format '%s' (png, pdf or svg)", format);
    p.run_dir = run_dir;
    p.fmt = format;
    const char *scripts = getenv("RUNNER_PLOTS");
#ifdef RN_PLOTS_DIR
    if (!scripts || !*scripts)
        scripts = RN_PLOTS_DIR;
#endif
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
