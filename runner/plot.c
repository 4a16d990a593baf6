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
 *   <name>.<fmt>                kind "filters": weights (O, I, kh, kw)
 *   <name>[_<i>].<fmt>          kind "activations": images, maps (n, C, h, w), one figure per input
 *   <name>.<fmt>                kind "gradcam": images, maps (n, H, W), probs, preds, classes
 *   <name>.<fmt>                kind "saliency": images, maps (models, n, H, W), preds
 *   <name>.<fmt>                kind "attention_mass": summary (models, 4)
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

/* ---- interpretability: filters, activations, Grad-CAM, saliency, mass -- */

/* Reads a float32 dataset of exactly `ndim` dims. */
static int read_f32(struct plotter *p, const char *path, int ndim, float **out, int dims[4],
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

/* A string attribute, or def when absent (never NULL; free with free()). */
static char *attr_or(struct plotter *p, const char *obj, const char *name, const char *def)
{
    char *s = NULL;
    if (rn_results_get_attr_str(p->r, obj, name, &s, NULL) != 0)
        s = strdup(def);
    return s;
}

/* "digit 1 on red" for a case, "test #17 · digit 1 on red" for a split image. */
static void input_caption(char *buf, size_t n, int cases, const char *split, int source,
                          int label, int colour)
{
    const char *cn = colour_name(colour);
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

/* matplotlib's jet, v in [0, 1] -> 0..255 per channel. */
static int jet(double v, int ch)
{
    double c = 1.5 - fabs(4 * v - (3 - ch));
    c = c < 0 ? 0 : c > 1 ? 1 : c;
    return (int)lround(255 * c);
}

/* Writes one (h, w) map as a gnuplot `with image` block: x y value, row 0 at
 * the top, at offset (x0, y0). */
static void write_map(FILE *f, const float *m, int h, int w, double scale, int x0, int y0)
{
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++)
            fprintf(f, "%d %d %.6g\n", x0 + x, y0 - y, m[(size_t)y * w + x] * scale);
        fprintf(f, "\n");
    }
    fprintf(f, "\n\n");
}

/* The inputs of an interpretability group: images, labels, colours, sources
 * and how they were made. */
struct plot_inputs {
    uint8_t *img;
    int32_t *labels, *colours, *sources;
    int n, c, h, w, cases;
    char *split, *colouring;
};

static void plot_inputs_free(struct plot_inputs *in)
{
    free(in->img);
    free(in->labels);
    free(in->colours);
    free(in->sources);
    free(in->split);
    free(in->colouring);
    memset(in, 0, sizeof *in);
}

static int read_inputs(struct plotter *p, const char *group, struct plot_inputs *in,
                       struct rn_error *err)
{
    char path[PLOT_PATH_MAX];
    memset(in, 0, sizeof *in);
    snprintf(path, sizeof path, "%s/images", group);
    if (read_image_array(p, path, &in->img, &in->n, &in->c, &in->h, &in->w, err))
        return -1;
    snprintf(path, sizeof path, "%s/labels", group);
    if (read_vector(p, path, in->n, 1, &in->labels, err))
        return -1;
    snprintf(path, sizeof path, "%s/colours", group);
    if (read_vector(p, path, in->n, 0, &in->colours, err))
        return -1;
    snprintf(path, sizeof path, "%s/sources", group);
    if (read_vector(p, path, in->n, 0, &in->sources, err))
        return -1;
    char *kind = attr_or(p, group, "inputs", "split");
    in->cases = kind && strcmp(kind, "cases") == 0;
    free(kind);
    in->split = attr_or(p, group, "split", "");
    in->colouring = attr_or(p, group, "colouring", "background");
    return 0;
}

static void caption_of(const struct plot_inputs *in, int i, char *buf, size_t n)
{
    input_caption(buf, n, in->cases, in->split, in->sources ? in->sources[i] : i, in->labels[i],
                  in->colours ? in->colours[i] : -1);
}

/* 1 where pixel k of image i is stroke (foreground), as the colouriser drew it. */
static int is_stroke(const struct plot_inputs *in, int i, size_t k)
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

static int plot_filters(struct plotter *p, const char *group, const char *name,
                        struct rn_error *err)
{
    char path[PLOT_PATH_MAX], dpath[PLOT_PATH_MAX], file[PLOT_PATH_MAX], figure[128], sname[64];
    float *wt = NULL;
    int dims[4], rc = -1;
    struct sbuf defs = {0};
    FILE *f = NULL;
    char *node = attr_or(p, group, "node", "conv");
    snprintf(path, sizeof path, "%s/weights", group);
    if (read_f32(p, path, 4, &wt, dims, err))
        goto done;
    const int O = dims[0], I = dims[1], kh = dims[2], kw = dims[3];
    uint64_t maxf = 64, maxc = 8;
    rn_results_get_attr_u64(p->r, group, "max_filters", &maxf, NULL);
    rn_results_get_attr_u64(p->r, group, "max_channels", &maxc, NULL);
    const int rgb = I == 3;
    int F = O < (int)maxf ? O : (int)maxf;
    int C = rgb ? 1 : (I < (int)maxc ? I : (int)maxc);
    if (!rgb && F > 32)
        F = 32; /* one row per filter: more would not be readable */
    safe_name(sname, sizeof sname, name);
    snprintf(figure, sizeof figure, "%s", sname);
    snprintf(file, sizeof file, "%s.dat", figure);
    if (!(f = data_open(p, file, dpath, err)))
        goto done;
    const size_t per = (size_t)I * kh * kw, kk = (size_t)kh * kw;
    int ncols, nrows, gap = 1;
    double vmax = 0;
    if (rgb) {
        /* A grid of RGB images, each filter min-max normalised over its
         * 3 x kh x kw weights (the study's Figure 9). */
        ncols = F <= 16 ? F : F <= 64 ? 8 : 16;
        nrows = (F + ncols - 1) / ncols;
        fprintf(f, "# %s: one index per filter; x y r g b (each filter min-max normalised)\n",
                path);
        for (int o = 0; o < F; o++) {
            const float *w = wt + (size_t)o * per;
            float lo = w[0], hi = w[0];
            for (size_t q = 1; q < per; q++) {
                lo = w[q] < lo ? w[q] : lo;
                hi = w[q] > hi ? w[q] : hi;
            }
            float sc = hi > lo ? 255.0f / (hi - lo) : 0;
            uint8_t img[3 * 64];
            if (kk > 64) {
                rn_errorf(err, "%s: %s: %dx%d kernels are too large to draw", p->run_dir, path,
                          kh, kw);
                goto done;
            }
            for (size_t q = 0; q < per; q++)
                img[q] = (uint8_t)lroundf((w[q] - lo) * sc);
            write_image(f, img, 3, kh, kw, (o % ncols) * (kw + gap),
                        -(o / ncols) * (kh + gap + 1));
        }
    } else {
        /* One row per filter, one heatmap per input channel; one symmetric
         * colour scale for all. */
        ncols = C;
        nrows = F;
        for (int o = 0; o < F; o++)
            for (int c = 0; c < C; c++)
                for (size_t q = 0; q < kk; q++) {
                    double v = fabs(wt[(size_t)o * per + (size_t)c * kk + q]);
                    vmax = v > vmax ? v : vmax;
                }
        fprintf(f, "# %s: one index per (filter, channel); x y weight\n", path);
        for (int o = 0; o < F; o++)
            for (int c = 0; c < C; c++)
                write_map(f, wt + (size_t)o * per + (size_t)c * kk, kh, kw, 1.0,
                          c * (kw + gap), -o * (kh + gap));
    }
    if (data_close(f, dpath, err)) {
        f = NULL;
        goto done;
    }
    f = NULL;
    char title[400], xl[200], yl[200];
    if (rgb) {
        snprintf(title, sizeof title, "%s filters (%d of %d, %dx%d, RGB) · each min-max normalised",
                 node, F, O, kh, kw);
        snprintf(xl, sizeof xl, "filters, %d per row, left to right", ncols);
        snprintf(yl, sizeof yl, "%s", "");
    } else {
        snprintf(title, sizeof title, "%s weights · %d of %d filters x %d of %d input channels",
                 node, F, O, C, I);
        snprintf(xl, sizeof xl, "input channel");
        snprintf(yl, sizeof yl, "filter");
    }
    int cellw = kw + gap, cellh = rgb ? kh + gap + 1 : kh + gap;
    sb_def_str(&defs, "file", dpath);
    sb_def_str(&defs, "title", title);
    sb_def_str(&defs, "xlabel", xl);
    sb_def_str(&defs, "ylabel", yl);
    sb_printf(&defs, "rgb=%d; n=%d; ncols=%d; nrows=%d; kw=%d; kh=%d; cellw=%d; cellh=%d; "
              "vmax=%.6g; ", rgb, rgb ? F : F * C, ncols, nrows, kw, kh, cellw, cellh,
              vmax > 0 ? vmax : 1);
    /* Big pixels: 14 screen pixels per weight for RGB filters, 8 for heatmaps. */
    int px = rgb ? 14 : 8;
    int W = ncols * cellw * px + (rgb ? 80 : 220), H = nrows * cellh * px + 110;
    if (W < 620)
        W = 620;
    rc = run_gnuplot(p, "filters.gp", figure, W, H, &defs, err);
done:
    if (f)
        fclose(f);
    free(defs.s);
    free(wt);
    free(node);
    return rc;
}

static int plot_activations(struct plotter *p, const char *group, const char *name,
                            struct rn_error *err)
{
    char path[PLOT_PATH_MAX], ipath[PLOT_PATH_MAX], mpath[PLOT_PATH_MAX], file[PLOT_PATH_MAX];
    char figure[160], sname[64];
    struct plot_inputs in;
    float *maps = NULL;
    int32_t *preds = NULL;
    int dims[4], rc = -1;
    struct sbuf defs = {0};
    char *node = attr_or(p, group, "node", "node");
    if (read_inputs(p, group, &in, err))
        goto done;
    snprintf(path, sizeof path, "%s/maps", group);
    if (read_f32(p, path, 4, &maps, dims, err))
        goto done;
    snprintf(path, sizeof path, "%s/preds", group);
    if (read_vector(p, path, in.n, 0, &preds, err))
        goto done;
    const int M = dims[1], h = dims[2], w = dims[3];
    if (dims[0] != in.n) {
        rn_errorf(err, "%s: %s/maps: %d inputs, images has %d", p->run_dir, group, dims[0], in.n);
        goto done;
    }
    uint64_t channels = (uint64_t)M;
    rn_results_get_attr_u64(p->r, group, "channels", &channels, NULL);
    safe_name(sname, sizeof sname, name);
    const int ncols = M < 8 ? M : 8, nrows = (M + ncols - 1) / ncols, gap = w / 7 + 1;
    for (int i = 0; i < in.n; i++) {
        FILE *f;
        free(defs.s);
        defs = (struct sbuf){0};
        if (in.n == 1)
            snprintf(figure, sizeof figure, "%s", sname);
        else
            snprintf(figure, sizeof figure, "%s_%d", sname, i);
        snprintf(file, sizeof file, "%s_image.dat", figure);
        if (!(f = data_open(p, file, ipath, err)))
            goto done;
        write_image(f, in.img + (size_t)i * in.c * in.h * in.w, in.c, in.h, in.w, 0, 0);
        if (data_close(f, ipath, err))
            goto done;
        snprintf(file, sizeof file, "%s_maps.dat", figure);
        if (!(f = data_open(p, file, mpath, err)))
            goto done;
        fprintf(f, "# %s/maps[%d]: one index per channel; x y activation\n", group, i);
        float lo = 0, hi = 0;
        const float *mi = maps + (size_t)i * M * h * w;
        for (size_t q = 0; q < (size_t)M * h * w; q++) {
            lo = mi[q] < lo ? mi[q] : lo;
            hi = mi[q] > hi ? mi[q] : hi;
        }
        for (int c = 0; c < M; c++)
            write_map(f, mi + (size_t)c * h * w, h, w, 1.0, (c % ncols) * (w + gap),
                      -(c / ncols) * (h + gap));
        if (data_close(f, mpath, err))
            goto done;
        char cap[160], title[400];
        caption_of(&in, i, cap, sizeof cap);
        if (preds)
            snprintf(title, sizeof title, "%s activations (%d of %llu maps, %dx%d) · %s · "
                     "predicted %d", node, M, (unsigned long long)channels, h, w, cap, preds[i]);
        else
            snprintf(title, sizeof title, "%s activations (%d of %llu maps, %dx%d) · %s", node,
                     M, (unsigned long long)channels, h, w, cap);
        sb_def_str(&defs, "image", ipath);
        sb_def_str(&defs, "maps", mpath);
        sb_def_str(&defs, "title", title);
        sb_def_str(&defs, "caption", cap);
        sb_printf(&defs, "iw=%d; ih=%d; n=%d; ncols=%d; nrows=%d; mw=%d; mh=%d; gap=%d; "
                  "lo=%.6g; hi=%.6g; ", in.w, in.h, M, ncols, nrows, w, h, gap, lo,
                  hi > lo ? hi : lo + 1);
        int px = h >= 20 ? 4 : 10;
        int W = 360 + ncols * (w + gap) * px + 260, H = nrows * (h + gap) * px + 120;
        if (H < 420)
            H = 420;
        if (run_gnuplot(p, "activations.gp", figure, W, H, &defs, err))
            goto done;
    }
    rc = 0;
done:
    free(defs.s);
    plot_inputs_free(&in);
    free(maps);
    free(preds);
    free(node);
    return rc;
}

static int plot_gradcam(struct plotter *p, const char *group, const char *name,
                        struct rn_error *err)
{
    char path[PLOT_PATH_MAX], dpath[PLOT_PATH_MAX], file[PLOT_PATH_MAX], figure[128], sname[64];
    char stem[PLOT_PATH_MAX];
    struct plot_inputs in;
    float *maps = NULL, *probs = NULL;
    int32_t *preds = NULL, *classes = NULL;
    int dims[4], pdims[4], rc = -1;
    struct sbuf defs = {0};
    char *node = attr_or(p, group, "node", "conv");
    char *method = attr_or(p, group, "method", "gradcam");
    char *cls = attr_or(p, group, "class", "pred");
    if (read_inputs(p, group, &in, err))
        goto done;
    snprintf(path, sizeof path, "%s/maps", group);
    if (read_f32(p, path, 3, &maps, dims, err))
        goto done;
    snprintf(path, sizeof path, "%s/probs", group);
    if (read_f32(p, path, 2, &probs, pdims, err))
        goto done;
    snprintf(path, sizeof path, "%s/preds", group);
    if (read_vector(p, path, in.n, 1, &preds, err))
        goto done;
    snprintf(path, sizeof path, "%s/classes", group);
    if (read_vector(p, path, in.n, 1, &classes, err))
        goto done;
    if (dims[0] != in.n || dims[1] != in.h || dims[2] != in.w || pdims[0] != in.n) {
        rn_errorf(err, "%s: %s: maps (%d,%d,%d) or probs do not match the %d (%dx%d) images",
                  p->run_dir, group, dims[0], dims[1], dims[2], in.n, in.h, in.w);
        goto done;
    }
    const int k = pdims[1], hw = in.h * in.w;
    safe_name(sname, sizeof sname, name);
    snprintf(figure, sizeof figure, "%s", sname);
    snprintf(stem, sizeof stem, "%s/%s", p->data_dir, figure);
    for (int i = 0; i < in.n; i++) {
        FILE *f;
        const uint8_t *img = in.img + (size_t)i * in.c * hw;
        const float *m = maps + (size_t)i * hw;
        snprintf(file, sizeof file, "%s_%d_image.dat", figure, i);
        if (!(f = data_open(p, file, dpath, err)))
            goto done;
        write_image(f, img, in.c, in.h, in.w, 0, 0);
        if (data_close(f, dpath, err))
            goto done;
        snprintf(file, sizeof file, "%s_%d_probs.dat", figure, i);
        if (!(f = data_open(p, file, dpath, err)))
            goto done;
        fprintf(f, "# class probability predicted(0/1) explained(0/1)\n");
        for (int j = 0; j < k; j++)
            fprintf(f, "%d %.6f %d %d\n", j, probs[(size_t)i * k + j], j == preds[i],
                    j == classes[i]);
        if (data_close(f, dpath, err))
            goto done;
        /* The overlay: half the image, half the jet colour of the map. */
        snprintf(file, sizeof file, "%s_%d_overlay.dat", figure, i);
        if (!(f = data_open(p, file, dpath, err)))
            goto done;
        fprintf(f, "# x y r g b: 0.4 luminance of the image + 0.6 jet(map), map max 1\n");
        double bg = 0, tot = 0;
        for (int y = 0; y < in.h; y++) {
            for (int x = 0; x < in.w; x++) {
                size_t q = (size_t)y * in.w + x;
                double v = m[q] < 0 ? 0 : m[q] > 1 ? 1 : m[q];
                int r = img[q], g = in.c >= 3 ? img[hw + q] : r;
                int b = in.c >= 3 ? img[2 * hw + q] : r;
                /* On the image's luminance: a coloured background would
                 * otherwise shift the jet colours (red on red). */
                double lum = 0.299 * r + 0.587 * g + 0.114 * b;
                fprintf(f, "%d %d %d %d %d\n", x, -y, (int)lround(0.4 * lum + 0.6 * jet(v, 0)),
                        (int)lround(0.4 * lum + 0.6 * jet(v, 1)),
                        (int)lround(0.4 * lum + 0.6 * jet(v, 2)));
                tot += m[q];
                if (!is_stroke(&in, i, q))
                    bg += m[q];
            }
            fprintf(f, "\n");
        }
        if (data_close(f, dpath, err))
            goto done;
        char cap[160], sub[160], ov[160], key[32];
        caption_of(&in, i, cap, sizeof cap);
        snprintf(sub, sizeof sub, "true %d · predicted %d (p = %.2f)", in.labels[i], preds[i],
                 probs[(size_t)i * k + preds[i]]);
        if (tot > 0)
            snprintf(ov, sizeof ov, "map of class %d · %.0f%% on the background", classes[i],
                     100 * bg / tot);
        else
            snprintf(ov, sizeof ov, "map of class %d · all zero", classes[i]);
        snprintf(key, sizeof key, "cap%d", i);
        sb_def_str(&defs, key, cap);
        snprintf(key, sizeof key, "sub%d", i);
        sb_def_str(&defs, key, sub);
        snprintf(key, sizeof key, "ov%d", i);
        sb_def_str(&defs, key, ov);
        sb_printf(&defs, "wrong%d=%d; ", i, preds[i] != in.labels[i]);
    }
    char title[400];
    const char *what = strcmp(cls, "pred") == 0   ? "the predicted class"
                       : strcmp(cls, "true") == 0 ? "the true class"
                                                  : NULL;
    char wbuf[64];
    if (!what) {
        snprintf(wbuf, sizeof wbuf, "class %s", cls);
        what = wbuf;
    }
    snprintf(title, sizeof title, "%s · %s at %s (%s) for %s", name,
             strcmp(method, "gradcam++") == 0 ? "Grad-CAM++" : "Grad-CAM", node,
             "upsampled bilinearly", what);
    sb_def_str(&defs, "stem", stem);
    sb_def_str(&defs, "title", title);
    sb_printf(&defs, "n=%d; iw=%d; ih=%d; classes=%d; ", in.n, in.w, in.h, k);
    rc = run_gnuplot(p, "gradcam.gp", figure, 1180, 70 + 250 * in.n, &defs, err);
done:
    plot_inputs_free(&in);
    free(defs.s);
    free(maps);
    free(probs);
    free(preds);
    free(classes);
    free(node);
    free(method);
    free(cls);
    return rc;
}

/* Model names of an analysis: the ';'-separated "models" attribute. */
static int split_names(char *s, char **out, int max)
{
    int n = 0;
    for (char *save = NULL, *t = strtok_r(s, ";", &save); t && n < max;
         t = strtok_r(NULL, ";", &save))
        out[n++] = t;
    return n;
}

static int plot_saliency(struct plotter *p, const char *group, const char *name,
                         struct rn_error *err)
{
    char path[PLOT_PATH_MAX], dpath[PLOT_PATH_MAX], file[PLOT_PATH_MAX], figure[128], sname[64];
    char stem[PLOT_PATH_MAX];
    struct plot_inputs in;
    float *maps = NULL;
    int32_t *preds = NULL;
    int dims[4], rc = -1;
    struct sbuf defs = {0};
    char *names_attr = attr_or(p, group, "models", "model");
    char *names[16];
    int nm_names = split_names(names_attr, names, 16);
    if (read_inputs(p, group, &in, err))
        goto done;
    snprintf(path, sizeof path, "%s/maps", group);
    if (read_f32(p, path, 4, &maps, dims, err))
        goto done;
    const int nm = dims[0], hw = in.h * in.w;
    if (dims[1] != in.n || dims[2] != in.h || dims[3] != in.w) {
        rn_errorf(err, "%s: %s/maps (%d,%d,%d,%d) does not match the %d (%dx%d) images",
                  p->run_dir, group, dims[0], dims[1], dims[2], dims[3], in.n, in.h, in.w);
        goto done;
    }
    snprintf(path, sizeof path, "%s/preds", group);
    if (rn_results_exists(p->r, path)) {
        int nd, pd[4];
        if (rn_results_read(p->r, path, RN_DTYPE_I32, (void **)&preds, &nd, pd, err))
            goto done;
        if (nd != 2 || pd[0] != nm || pd[1] != in.n) {
            rn_errorf(err, "%s: %s: expected int32 (%d, %d)", p->run_dir, path, nm, in.n);
            goto done;
        }
    }
    safe_name(sname, sizeof sname, name);
    snprintf(figure, sizeof figure, "%s", sname);
    snprintf(stem, sizeof stem, "%s/%s", p->data_dir, figure);
    for (int i = 0; i < in.n; i++) {
        FILE *f;
        snprintf(file, sizeof file, "%s_%d_image.dat", figure, i);
        if (!(f = data_open(p, file, dpath, err)))
            goto done;
        write_image(f, in.img + (size_t)i * in.c * hw, in.c, in.h, in.w, 0, 0);
        if (data_close(f, dpath, err))
            goto done;
        char cap[160], key[32];
        caption_of(&in, i, cap, sizeof cap);
        snprintf(key, sizeof key, "cap%d", i);
        sb_def_str(&defs, key, cap);
        for (int j = 0; j < nm; j++) {
            const float *m = maps + ((size_t)j * in.n + i) * hw;
            float mx = 0;
            double bg = 0, tot = 0;
            for (int q = 0; q < hw; q++) {
                mx = m[q] > mx ? m[q] : mx;
                tot += m[q];
                bg += is_stroke(&in, i, (size_t)q) ? 0 : m[q];
            }
            snprintf(file, sizeof file, "%s_%d_%d.dat", figure, i, j);
            if (!(f = data_open(p, file, dpath, err)))
                goto done;
            fprintf(f, "# |d CE / d x| summed over channels / its max (%.6g); x y value\n", mx);
            write_map(f, m, in.h, in.w, mx > 0 ? 1.0 / mx : 0.0, 0, 0);
            if (data_close(f, dpath, err))
                goto done;
            char t[200];
            const char *mn = j < nm_names ? names[j] : "model";
            if (preds)
                snprintf(t, sizeof t, "%s: predicted %d · %.0f%% bg", mn, preds[j * in.n + i],
                         tot > 0 ? 100 * bg / tot : 0.0);
            else
                snprintf(t, sizeof t, "%s · %.0f%% bg", mn, tot > 0 ? 100 * bg / tot : 0.0);
            snprintf(key, sizeof key, "t%d_%d", i, j);
            sb_def_str(&defs, key, t);
            sb_printf(&defs, "wrong%d_%d=%d; ", i, j, preds && preds[j * in.n + i] != in.labels[i]);
        }
    }
    char title[400];
    snprintf(title, sizeof title, "%s · saliency |d CE(true label) / d input|\nsummed over "
             "channels, each map scaled to its maximum; %% = share on the background", name);
    sb_def_str(&defs, "stem", stem);
    sb_def_str(&defs, "title", title);
    sb_printf(&defs, "n=%d; m=%d; iw=%d; ih=%d; ", in.n, nm, in.w, in.h);
    int W = 230 * (nm + 1) + 120, H = 100 + 230 * in.n;
    if (W < 700)
        W = 700;
    rc = run_gnuplot(p, "saliency.gp", figure, W, H, &defs, err);
done:
    plot_inputs_free(&in);
    free(defs.s);
    free(maps);
    free(preds);
    free(names_attr);
    return rc;
}

static int plot_attention_mass(struct plotter *p, const char *group, const char *name,
                               struct rn_error *err)
{
    char path[PLOT_PATH_MAX], dpath[PLOT_PATH_MAX], file[PLOT_PATH_MAX], figure[128], sname[64];
    double *s = NULL;
    int nd, dims[4], rc = -1;
    struct sbuf defs = {0};
    char *names_attr = attr_or(p, group, "models", "model");
    char *split = attr_or(p, group, "split", "");
    char *method = attr_or(p, group, "method", "gradcam");
    char *names[16];
    int nm_names = split_names(names_attr, names, 16);
    uint64_t n_images = 0;
    snprintf(path, sizeof path, "%s/summary", group);
    if (rn_results_read(p->r, path, RN_DTYPE_F64, (void **)&s, &nd, dims, err))
        goto done;
    if (nd != 2 || dims[1] < 3) {
        rn_errorf(err, "%s: %s: expected float64 (models, 4)", p->run_dir, path);
        goto done;
    }
    snprintf(path, sizeof path, "%s/pixel_bg", group);
    if (rn_results_exists(p->r, path)) {
        float *px = NULL;
        int pd[4];
        if (read_f32(p, path, 1, &px, pd, NULL) == 0)
            n_images = (uint64_t)pd[0];
        free(px);
    }
    const int nm = dims[0], cols = dims[1];
    safe_name(sname, sizeof sname, name);
    snprintf(figure, sizeof figure, "%s", sname);
    snprintf(file, sizeof file, "%s.dat", figure);
    FILE *f = data_open(p, file, dpath, err);
    if (!f)
        goto done;
    fprintf(f, "# model gradcam_bg(%%) saliency_bg(%%) pixel_bg(%%) accuracy(%%)\n");
    double px = 0;
    for (int j = 0; j < nm; j++) {
        const double *r = s + (size_t)j * cols;
        char label[128];
        if (cols >= 4)
            snprintf(label, sizeof label, "%s (acc %.0f%%)", j < nm_names ? names[j] : "model",
                     100 * r[3]);
        else
            snprintf(label, sizeof label, "%s", j < nm_names ? names[j] : "model");
        fprintf(f, "\"%s\" %.4f %.4f %.4f %.4f\n", label, 100 * r[0], 100 * r[1], 100 * r[2],
                cols >= 4 ? 100 * r[3] : NAN);
        px = r[2];
    }
    if (data_close(f, dpath, err))
        goto done;
    char title[400];
    snprintf(title, sizeof title, "%s\nattribution on background pixels · %llu %s images", name,
             (unsigned long long)n_images, split);
    sb_def_str(&defs, "file", dpath);
    sb_def_str(&defs, "title", title);
    sb_def_str(&defs, "camname", strcmp(method, "gradcam++") == 0 ? "Grad-CAM++" : "Grad-CAM");
    sb_printf(&defs, "m=%d; pixel=%.4f; ", nm, 100 * px);
    rc = run_gnuplot(p, "attention_mass.gp", figure, nm < 3 ? 620 : 260 + 180 * nm, 540, &defs,
                     err);
done:
    free(defs.s);
    free(s);
    free(names_attr);
    free(split);
    free(method);
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

        /* Interpretability figures: drawn when their main dataset is there. */
        static const struct {
            const char *kind, *dataset;
            int (*plot)(struct plotter *, const char *, const char *, struct rn_error *);
        } interp[] = {
            {"filters", "weights", plot_filters},
            {"activations", "maps", plot_activations},
            {"gradcam", "maps", plot_gradcam},
            {"saliency", "maps", plot_saliency},
            {"attention_mass", "summary", plot_attention_mass},
        };
        int q = 0, nq = (int)(sizeof interp / sizeof interp[0]);
        while (q < nq && strcmp(kd, interp[q].kind) != 0)
            q++;
        if (q < nq) {
            char ip[PLOT_PATH_MAX];
            snprintf(ip, sizeof ip, "%s/%s", group, interp[q].dataset);
            if (rn_results_exists(p->r, ip))
                rc = interp[q].plot(p, group, gname, err);
        } else if (strcmp(kd, "probe") == 0) {
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
