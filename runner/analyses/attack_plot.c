/* attack_plot.c - the figures of the attack analysis (attack.c), drawn from
 * its group of a run file:
 *   <name>           the attacked class' probability against epsilon, per
 *                    model and input (the mean over inputs beyond 6)
 *   <name>_images    per model and input (at most 4): source | perturbation
 *                    (amplified) | adversarial | class probabilities, at
 *                    show_eps
 *   <name>_robust    robust accuracy and success rate against epsilon
 *   <name>_channels  the mean |delta| per colour channel at show_eps
 *   <name>_min_eps   the share of inputs whose minimum epsilon is <= x
 *   <name>_trace     the attacked class' probability against the iteration
 *                    (with trace_stride), input 1, one line per epsilon
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

#define SHOWN_INPUTS 4

/* ---- reading the group ------------------------------------------------------- */

struct attack_data {
    struct rn_plot_inputs in;
    int nm, ne, n, k, show; /* show: the epsilon of the images and bars */
    char names_buf[RN_ANALYSIS_MAX_MODELS * (RN_NAME_MAX + 1)];
    char *names[RN_ANALYSIS_MAX_MODELS];
    float *eps, *probs, *clean, *dmean, *min_eps, *robust, *rate, *adv, *trace;
    int32_t *targets;
    int dd[4], dtr[4], da[4];
    char *norm, *steps, *loss, *threshold, *stride;
};

static void data_free(struct attack_data *D)
{
    rn_plot_inputs_free(&D->in);
    float *f[] = {D->eps,    D->probs, D->clean, D->dmean, D->min_eps,
                  D->robust, D->rate,  D->adv,   D->trace};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        free(f[i]);
    free(D->targets);
    free(D->norm);
    free(D->steps);
    free(D->loss);
    free(D->threshold);
    free(D->stride);
}

/* Reads group's float dataset `name` of ndim dims when it exists (else *out
 * stays NULL). */
static int read_opt(struct rn_plotter *p, const char *group, const char *name, int ndim,
                    float **out, int dims[4], struct rn_error *err)
{
    char path[RN_PLOT_PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", group, name);
    *out = NULL;
    return rn_results_exists(p->r, path) ? rn_plot_read_f32(p, path, ndim, out, dims, err) : 0;
}

static int data_read(struct rn_plotter *p, const char *group, struct attack_data *D,
                     struct rn_error *err)
{
    int de[4], dp[4], dc[4], dm[4], dr[4], ds[4], dt[4], nd;
    char path[RN_PLOT_PATH_MAX];
    if (rn_plot_inputs_read(p, group, &D->in, err) ||
        read_opt(p, group, "eps", 1, &D->eps, de, err) ||
        read_opt(p, group, "probs", 4, &D->probs, dp, err) ||
        read_opt(p, group, "clean_probs", 3, &D->clean, dc, err) ||
        read_opt(p, group, "delta_abs_mean", 4, &D->dmean, D->dd, err) ||
        read_opt(p, group, "min_eps", 2, &D->min_eps, dm, err) ||
        read_opt(p, group, "robust_accuracy", 2, &D->robust, dr, err) ||
        read_opt(p, group, "success_rate", 2, &D->rate, ds, err) ||
        read_opt(p, group, "adversarial", 4, &D->adv, D->da, err) ||
        read_opt(p, group, "trace", 4, &D->trace, D->dtr, err))
        return -1;
    if (!D->eps || !D->probs || !D->clean || !D->dmean || !D->min_eps || !D->robust || !D->rate)
        return rn_errorf(err,
                         "%s: %s: an attack group needs eps, probs, clean_probs, "
                         "delta_abs_mean, min_eps, robust_accuracy and success_rate",
                         p->run_dir, group);
    snprintf(path, sizeof path, "%s/targets", group);
    if (rn_results_read(p->r, path, RN_DTYPE_I32, (void **)&D->targets, &nd, dt, err))
        return -1;
    D->nm = dp[0];
    D->ne = de[0];
    D->n = D->in.n;
    D->k = dp[3];
    if (dp[1] != D->ne || dp[2] != D->n || dc[0] != D->nm || dc[1] != D->n || D->dd[0] != D->nm ||
        D->dd[1] != D->ne || D->dd[2] != D->n || dm[0] != D->nm || dm[1] != D->n ||
        dr[0] != D->nm || dr[1] != D->ne || ds[1] != D->ne || nd != 2 || dt[0] != D->nm ||
        dt[1] != D->n || (D->adv && D->da[0] != D->nm * D->ne * D->n))
        return rn_errorf(err, "%s: %s: datasets disagree on %d models x %d epsilons x %d inputs",
                         p->run_dir, group, D->nm, D->ne, D->n);
    char *names = rn_plot_attr_or(p, group, "models", "model");
    snprintf(D->names_buf, sizeof D->names_buf, "%s", names);
    free(names);
    if (rn_models_split_names(D->names_buf, D->names, RN_ANALYSIS_MAX_MODELS) != D->nm)
        return rn_errorf(err, "%s: %s: its 'models' attribute does not name %d models", p->run_dir,
                         group, D->nm);
    D->norm = rn_plot_attr_or(p, group, "norm", "linf");
    D->steps = rn_plot_attr_or(p, group, "steps", "?");
    D->loss = rn_plot_attr_or(p, group, "loss", "ce");
    D->threshold = rn_plot_attr_or(p, group, "threshold", "0.9");
    D->stride = rn_plot_attr_or(p, group, "trace_stride", "0");
    char *show = rn_plot_attr_or(p, group, "show_eps", "-1");
    double want = atof(show);
    free(show);
    D->show = D->ne - 1;
    for (int e = 0; want >= 0 && e < D->ne; e++)
        if (fabs(D->eps[e] - want) < fabs(D->eps[D->show] - want))
            D->show = e;
    return 0;
}

/* The class attack m aims at on input i: its target, or the true label. */
static int attacked(const struct attack_data *D, int m, int i)
{
    int t = D->targets[(size_t)m * D->n + i];
    return t >= 0 ? t : D->in.labels[i];
}

static const char *norm_name(const struct attack_data *D)
{
    return strcmp(D->norm, "l2") == 0 ? "L2" : "L-inf";
}

/* Opens figure data file <stem>_<what>.dat. */
static FILE *open_dat(struct rn_plotter *p, const char *stem, const char *what, char *dpath,
                      struct rn_error *err)
{
    char file[RN_PLOT_PATH_MAX];
    snprintf(file, sizeof file, "%s_%s.dat", stem, what);
    return rn_plot_data_open(p, file, dpath, err);
}

static void def_stem(struct rn_plotter *p, struct rn_sbuf *defs, const char *fig)
{
    char stem[RN_PLOT_PATH_MAX];
    snprintf(stem, sizeof stem, "%s/%s", p->data_dir, fig);
    rn_sbuf_def_str(defs, "stem", stem);
}

/* ---- the attacked class' probability against epsilon ------------------------ */

static int plot_probs(struct rn_plotter *p, const char *fig, const char *name,
                      const struct attack_data *D, struct rn_error *err)
{
    char dpath[RN_PLOT_PATH_MAX], key[32], t[300];
    const int per_input = D->n <= 6, lines = per_input ? D->nm * D->n : D->nm;
    struct rn_sbuf defs = {0};
    FILE *f = open_dat(p, fig, "probs", dpath, err);
    if (!f)
        return -1;
    fprintf(f,
            "# epsilon, then per %s the probability of the attacked class (the target, or "
            "the true label when untargeted)\n",
            per_input ? "(model, input)" : "model, the mean over inputs,");
    for (int e = 0; e < D->ne; e++) {
        fprintf(f, "%.6g", D->eps[e]);
        for (int m = 0; m < D->nm; m++) {
            double mean = 0;
            for (int i = 0; i < D->n; i++) {
                float v = D->probs[(((size_t)m * D->ne + e) * D->n + i) * D->k + attacked(D, m, i)];
                if (per_input)
                    fprintf(f, " %.6g", v);
                mean += v / D->n;
            }
            if (!per_input)
                fprintf(f, " %.6g", mean);
        }
        fputc('\n', f);
    }
    if (rn_plot_data_close(f, dpath, err))
        return -1;
    for (int m = 0, l = 0; m < D->nm; m++)
        for (int i = 0; i < (per_input ? D->n : 1); i++, l++) {
            char cap[160];
            rn_plot_inputs_caption(&D->in, i, cap, sizeof cap);
            int c = attacked(D, m, i);
            if (per_input)
                snprintf(t, sizeof t, "%s · %s: P(%d), clean %.3f", D->names[m], cap, c,
                         D->clean[((size_t)m * D->n + i) * D->k + c]);
            else
                snprintf(t, sizeof t, "%s (mean of %d inputs)", D->names[m], D->n);
            snprintf(key, sizeof key, "cap%d", l);
            rn_sbuf_def_str(&defs, key, t);
        }
    int untargeted = D->targets[0] < 0;
    snprintf(t, sizeof t,
             "%s · %s PGD (%s), %s steps, %s\neach step: gradient step, projection onto the "
             "ball, clamp to [0, 1]; dashed: threshold %s",
             name, norm_name(D), D->loss, D->steps,
             untargeted ? "untargeted (true-class probability)" : "targeted (target probability)",
             D->threshold);
    def_stem(p, &defs, fig);
    rn_sbuf_def_str(&defs, "title", t);
    rn_sbuf_printf(&defs, "n=%d; thr=%s; ", lines, D->threshold);
    int rc = rn_plot_draw(p, "attack.gp", fig, 900, 560, &defs, err);
    free(defs.s);
    return rc;
}

/* ---- source | perturbation | adversarial | probabilities ---------------------- */

static void to_u8(const float *x, size_t per, float offset, float scale, uint8_t *out)
{
    for (size_t q = 0; q < per; q++) {
        float v = offset + scale * x[q];
        v = v < 0 ? 0 : v > 1 ? 1 : v;
        out[q] = (uint8_t)lrintf(v * 255.0f);
    }
}

/* One row's data: the three images and the class probabilities. */
static int image_row(struct rn_plotter *p, const char *fig, const struct attack_data *D, int m,
                     int i, int row, float *delta, uint8_t *u8, float *amp, struct rn_error *err)
{
    char dpath[RN_PLOT_PATH_MAX], what[64];
    const struct rn_plot_inputs *in = &D->in;
    const size_t per = (size_t)in->c * in->h * in->w;
    const float *a = D->adv + (((size_t)m * D->ne + D->show) * D->n + i) * per;
    const uint8_t *s = in->img + (size_t)i * per;
    float mx = 0;
    for (size_t q = 0; q < per; q++) {
        delta[q] = a[q] - s[q] * (1.0f / 255.0f);
        mx = fabsf(delta[q]) > mx ? fabsf(delta[q]) : mx;
    }
    *amp = mx > 0 ? 0.5f / mx : 0.0f;
    for (int col = 0; col < 3; col++) {
        snprintf(what, sizeof what, "%d_%s", row, col == 0 ? "source" : col == 1 ? "delta" : "adv");
        FILE *f = open_dat(p, fig, what, dpath, err);
        if (!f)
            return -1;
        if (col == 0)
            memcpy(u8, s, per);
        else if (col == 1)
            to_u8(delta, per, 0.5f, *amp, u8);
        else
            to_u8(a, per, 0.0f, 1.0f, u8);
        rn_plot_write_image(f, u8, in->c, in->h, in->w, 0, 0);
        if (rn_plot_data_close(f, dpath, err))
            return -1;
    }
    snprintf(what, sizeof what, "%d_probs", row);
    FILE *f = open_dat(p, fig, what, dpath, err);
    if (!f)
        return -1;
    const float *pr = D->probs + (((size_t)m * D->ne + D->show) * D->n + i) * D->k;
    fprintf(f, "# class, adversarial probability, 1 for the attacked class, clean probability\n");
    for (int c = 0; c < D->k; c++)
        fprintf(f, "%d %.6g %d %.6g\n", c, pr[c], c == attacked(D, m, i),
                D->clean[((size_t)m * D->n + i) * D->k + c]);
    return rn_plot_data_close(f, dpath, err);
}

static int plot_images(struct rn_plotter *p, const char *fig, const struct attack_data *D,
                       struct rn_error *err)
{
    const struct rn_plot_inputs *in = &D->in;
    const size_t per = (size_t)in->c * in->h * in->w;
    const int shown = D->n < SHOWN_INPUTS ? D->n : SHOWN_INPUTS, rows = D->nm * shown;
    struct rn_sbuf defs = {0};
    uint8_t *u8 = malloc(per);
    float *delta = malloc(sizeof(float) * per);
    int rc = -1;
    if (!u8 || !delta) {
        rn_errorf(err, "attack figure: out of memory");
        goto done;
    }
    for (int m = 0, row = 0; m < D->nm; m++)
        for (int i = 0; i < shown; i++, row++) {
            char cap[160], t[240], key[32];
            float amp;
            if (image_row(p, fig, D, m, i, row, delta, u8, &amp, err))
                goto done;
            rn_plot_inputs_caption(in, i, cap, sizeof cap);
            snprintf(t, sizeof t, "%s · %s", D->names[m], cap);
            snprintf(key, sizeof key, "cap%d", row);
            rn_sbuf_def_str(&defs, key, t);
            snprintf(t, sizeof t, "0.5 + delta x %.3g", amp);
            snprintf(key, sizeof key, "dcap%d", row);
            rn_sbuf_def_str(&defs, key, t);
            const float *pr = D->probs + (((size_t)m * D->ne + D->show) * D->n + i) * D->k;
            int top = rn_argmax(pr, D->k), c = attacked(D, m, i);
            snprintf(t, sizeof t, "adversarial: predicted %d (p %.3f)", top, pr[top]);
            snprintf(key, sizeof key, "acap%d", row);
            rn_sbuf_def_str(&defs, key, t);
            snprintf(t, sizeof t, "P(%d): clean %.3f -> %.3f", c,
                     D->clean[((size_t)m * D->n + i) * D->k + c], pr[c]);
            snprintf(key, sizeof key, "pcap%d", row);
            rn_sbuf_def_str(&defs, key, t);
        }
    char title[240];
    snprintf(title, sizeof title,
             "%s PGD at epsilon %g: source | perturbation (amplified) | adversarial | class "
             "probabilities (attacked class dark; grey dots: clean)",
             norm_name(D), D->eps[D->show]);
    def_stem(p, &defs, fig);
    rn_sbuf_def_str(&defs, "title", title);
    rn_sbuf_printf(&defs, "n=%d; iw=%d; ih=%d; classes=%d; ", rows, in->w, in->h, D->k);
    rc = rn_plot_draw(p, "attack_images.gp", fig, 1100, 90 + 250 * rows, &defs, err);
done:
    free(u8);
    free(delta);
    free(defs.s);
    return rc;
}

/* ---- robust accuracy, success rate, channels, minimum epsilons, trace -------- */

static int plot_robust(struct rn_plotter *p, const char *fig, const char *name,
                       const struct attack_data *D, struct rn_error *err)
{
    char dpath[RN_PLOT_PATH_MAX], key[32], t[300];
    struct rn_sbuf defs = {0};
    FILE *f = open_dat(p, fig, "curves", dpath, err);
    if (!f)
        return -1;
    fprintf(f, "# epsilon, then per model: robust accuracy, success rate\n");
    for (int e = 0; e < D->ne; e++) {
        fprintf(f, "%.6g", D->eps[e]);
        for (int m = 0; m < D->nm; m++)
            fprintf(f, " %.6g %.6g", D->robust[m * D->ne + e], D->rate[m * D->ne + e]);
        fputc('\n', f);
    }
    if (rn_plot_data_close(f, dpath, err))
        return -1;
    for (int m = 0; m < D->nm; m++) {
        snprintf(key, sizeof key, "model%d", m);
        rn_sbuf_def_str(&defs, key, D->names[m]);
    }
    int untargeted = D->targets[0] < 0;
    snprintf(t, sizeof t,
             "%s · %s PGD (%s), %s steps, %d inputs\nrobust accuracy (solid) and %s success "
             "rate (dashed)",
             name, norm_name(D), D->loss, D->steps, D->n,
             untargeted ? "untargeted (top class wrong)" : "targeted (top class = target)");
    def_stem(p, &defs, fig);
    rn_sbuf_def_str(&defs, "title", t);
    rn_sbuf_printf(&defs, "m=%d; ", D->nm);
    int rc = rn_plot_draw(p, "attack_robust.gp", fig, 900, 560, &defs, err);
    free(defs.s);
    return rc;
}

static int plot_channels(struct rn_plotter *p, const char *fig, const char *name,
                         const struct attack_data *D, struct rn_error *err)
{
    char dpath[RN_PLOT_PATH_MAX], t[300];
    const int c = D->dd[3];
    if (c != 3)
        return 0; /* grey inputs have one channel: nothing to compare */
    struct rn_sbuf defs = {0};
    FILE *f = open_dat(p, fig, "channels", dpath, err);
    if (!f)
        return -1;
    fprintf(f, "# model, mean |delta| of R, G, B over the inputs at epsilon %g\n", D->eps[D->show]);
    for (int m = 0; m < D->nm; m++) {
        double s[3] = {0, 0, 0};
        for (int i = 0; i < D->n; i++)
            for (int ch = 0; ch < 3; ch++)
                s[ch] += D->dmean[(((size_t)m * D->ne + D->show) * D->n + i) * 3 + ch] / D->n;
        fprintf(f, "\"%s\" %.6g %.6g %.6g\n", D->names[m], s[0], s[1], s[2]);
    }
    if (rn_plot_data_close(f, dpath, err))
        return -1;
    snprintf(t, sizeof t,
             "%s · mean |perturbation| per channel at epsilon %g (%s, mean of %d "
             "inputs)",
             name, D->eps[D->show], norm_name(D), D->n);
    def_stem(p, &defs, fig);
    rn_sbuf_def_str(&defs, "title", t);
    rn_sbuf_printf(&defs, "m=%d; ", D->nm);
    int rc = rn_plot_draw(p, "attack_channels.gp", fig, 760, 480, &defs, err);
    free(defs.s);
    return rc;
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* The empirical distribution of the minimum epsilons, per model: sorted,
 * one step per input; inputs never reached stay below 1. */
static int plot_min_eps(struct rn_plotter *p, const char *fig, const char *name,
                        const struct attack_data *D, struct rn_error *err)
{
    char dpath[RN_PLOT_PATH_MAX], key[32], t[300], what[32];
    struct rn_sbuf defs = {0};
    float v[RN_ANALYSIS_MAX_INPUTS];
    for (int m = 0; m < D->nm; m++) {
        snprintf(what, sizeof what, "min_eps_%d", m);
        FILE *f = open_dat(p, fig, what, dpath, err);
        if (!f)
            return -1;
        memcpy(v, D->min_eps + (size_t)m * D->n, sizeof(float) * (size_t)D->n);
        qsort(v, (size_t)D->n, sizeof v[0], cmp_float);
        fprintf(f, "# minimum epsilon, share of inputs at or below it\n0 0\n");
        int reached = 0;
        for (int i = 0; i < D->n && isfinite(v[i]); i++, reached++)
            fprintf(f, "%.6g %.6g\n", v[i], (double)(i + 1) / D->n);
        fprintf(f, "%.6g %.6g\n", D->eps[D->ne - 1], (double)reached / D->n);
        if (rn_plot_data_close(f, dpath, err))
            return -1;
        snprintf(key, sizeof key, "model%d", m);
        snprintf(t, sizeof t, "%s (%d of %d reached)", D->names[m], reached, D->n);
        rn_sbuf_def_str(&defs, key, t);
    }
    snprintf(t, sizeof t,
             "%s · smallest epsilon reaching %s per input\n(%s PGD; the sweep refined by bisection)",
             name, D->targets[0] < 0 ? "a wrong top class" : "the threshold on the target",
             norm_name(D));
    def_stem(p, &defs, fig);
    rn_sbuf_def_str(&defs, "title", t);
    rn_sbuf_printf(&defs, "m=%d; emax=%g; ", D->nm, D->eps[D->ne - 1]);
    int rc = rn_plot_draw(p, "attack_min_eps.gp", fig, 900, 520, &defs, err);
    free(defs.s);
    return rc;
}

static int plot_trace(struct rn_plotter *p, const char *fig, const char *name,
                      const struct attack_data *D, struct rn_error *err)
{
    char dpath[RN_PLOT_PATH_MAX], key[32], t[300], what[32];
    const int rows = D->dtr[1], B = D->dtr[2], stride = atoi(D->stride);
    if (D->dtr[0] != D->nm || B != D->ne * D->n || D->dtr[3] != D->k || stride <= 0)
        return rn_errorf(err, "%s: the trace of %s does not match its epsilons and inputs",
                         p->run_dir, name);
    struct rn_sbuf defs = {0};
    for (int m = 0; m < D->nm; m++) {
        snprintf(what, sizeof what, "trace_%d", m);
        FILE *f = open_dat(p, fig, what, dpath, err);
        if (!f)
            return -1;
        int c = attacked(D, m, 0);
        fprintf(f, "# iteration, then per epsilon the probability of class %d (input 1)\n", c);
        for (int r = 0; r < rows; r++) {
            fprintf(f, "%d", r * stride);
            for (int e = 0; e < D->ne; e++)
                fprintf(f, " %.6g",
                        D->trace[(((size_t)m * rows + r) * B + (size_t)e * D->n) * D->k + c]);
            fputc('\n', f);
        }
        if (rn_plot_data_close(f, dpath, err))
            return -1;
        snprintf(key, sizeof key, "model%d", m);
        snprintf(t, sizeof t, "%s: P(%d)", D->names[m], c);
        rn_sbuf_def_str(&defs, key, t);
    }
    for (int e = 0; e < D->ne; e++)
        rn_sbuf_printf(&defs, "eps%d=%.6g; ", e, D->eps[e]);
    char cap[160];
    rn_plot_inputs_caption(&D->in, 0, cap, sizeof cap);
    snprintf(t, sizeof t, "%s · %s · attacked-class probability by iteration, one line per epsilon",
             name, cap);
    def_stem(p, &defs, fig);
    rn_sbuf_def_str(&defs, "title", t);
    rn_sbuf_printf(&defs, "m=%d; ne=%d; ", D->nm, D->ne);
    int rc = rn_plot_draw(p, "attack_trace.gp", fig, 560 * D->nm + 200, 480, &defs, err);
    free(defs.s);
    return rc;
}

int rn_attack_plot(struct rn_plotter *p, const char *group, const char *name, char *const *datasets,
                   int n_datasets, struct rn_error *err)
{
    (void)datasets;
    (void)n_datasets;
    char path[RN_PLOT_PATH_MAX], base[128], fig[160];
    snprintf(path, sizeof path, "%s/probs", group);
    if (!rn_results_exists(p->r, path))
        return 0;
    struct attack_data D;
    memset(&D, 0, sizeof D);
    rn_plot_safe_name(base, sizeof base, name);
    int rc = data_read(p, group, &D, err) || plot_probs(p, base, name, &D, err);
    if (!rc && D.adv) {
        snprintf(fig, sizeof fig, "%s_images", base);
        rc = plot_images(p, fig, &D, err);
    }
    snprintf(fig, sizeof fig, "%s_robust", base);
    rc = rc || plot_robust(p, fig, name, &D, err);
    snprintf(fig, sizeof fig, "%s_channels", base);
    rc = rc || plot_channels(p, fig, name, &D, err);
    snprintf(fig, sizeof fig, "%s_min_eps", base);
    rc = rc || plot_min_eps(p, fig, name, &D, err);
    if (!rc && D.trace) {
        snprintf(fig, sizeof fig, "%s_trace", base);
        rc = plot_trace(p, fig, name, &D, err);
    }
    data_free(&D);
    return rc ? -1 : 0;
}
