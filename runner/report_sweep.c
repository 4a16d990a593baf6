/* report_sweep.c - a report table whose rows come from a sweep (report.h:
 * the table's `sweep`): a row is a group of the sweep's cells (the cells'
 * label without the seed: an experiment's name, with the overrides that
 * vary besides the seed), a value the mean and 95% Student-t interval over
 * the group's completed cells (table.h's statistics), read at the table's
 * epoch or each cell's last, and the gain over the control group at the
 * row's epoch the difference of the means with Welch's interval. Cells that
 * are not done (pending, running, failed, interrupted) are counted and
 * named, never averaged. */
#include "report_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "results.h"
#include "sweep.h"
#include "table.h"

/* A metric of a group of cells. */
struct group_stats {
    struct rn_stats st;
    int epoch;          /* the epoch read (the first cell's), 0 when none */
    int done, not_done; /* cells completed, and the others of the group */
    int without;        /* completed cells without the metric at that epoch */
};

/* The values of metric over the done cells of group, at epoch (<= 0: each
 * cell's last) into *g. */
static void group_values(const struct rn_sweep_plan *plan, const char *group, const char *metric,
                         int epoch, struct group_stats *g)
{
    memset(g, 0, sizeof *g);
    double *v = calloc((size_t)(plan->n_cells ? plan->n_cells : 1), sizeof *v);
    int n = 0;
    for (int i = 0; v && i < plan->n_cells; i++) {
        const struct rn_sweep_cell *c = &plan->cells[i];
        if (!c->active || strcmp(c->group, group) != 0)
            continue; /* inactive: no longer in the sweep file (runner table's rule) */
        if (c->state != RN_CELL_DONE) {
            g->not_done++;
            continue;
        }
        g->done++;
        char dir[RN_PATH_MAX * 2], file[RN_PATH_MAX * 2 + 16];
        rn_sweep_cell_dir(plan, c, dir, sizeof dir);
        snprintf(file, sizeof file, "%s/run.h5", dir);
        struct report_run r;
        memset(&r, 0, sizeof r);
        struct rn_error e;
        double x;
        int at = 0;
        if (rn_results_open(&r.res, file, &e) == 0 &&
            report_metric_at(&r, metric, epoch, &x, &at) == 0) {
            v[n++] = x;
            if (!g->epoch)
                g->epoch = at;
        } else {
            g->without++;
        }
        rn_results_close(r.res);
    }
    rn_stats_compute(v, n, &g->st);
    free(v);
}

/* "96.26% ± 0.41" (an accuracy, in percent) or "0.1234 ± 0.01". */
static void mean_cell(FILE *f, const char *metric, const struct group_stats *g)
{
    const double k = report_is_fraction(metric) ? 100 : 1;
    const char *unit = report_is_fraction(metric) ? "%" : "";
    if (g->st.n == 0) {
        fputs("<td class=\"none\">no value</td>", f);
        return;
    }
    fprintf(f, "<td>%.2f%s", k * g->st.mean, unit);
    if (g->st.n > 1)
        fprintf(f, " &plusmn; %.2f", k * g->st.half);
    fputs("</td>", f);
}

/* The gain of g over control: difference of the means, Welch's 95% interval. */
static void gain_cell(FILE *f, const char *metric, const struct group_stats *g,
                      const struct group_stats *c)
{
    const double k = report_is_fraction(metric) ? 100 : 1;
    const char *unit = report_is_fraction(metric) ? " pts" : "";
    if (g->st.n == 0 || c->st.n == 0) {
        fprintf(f, "<td class=\"none\">the control has no value at epoch %d</td>", g->epoch);
        return;
    }
    fprintf(f, "<td>%+.2f", k * (g->st.mean - c->st.mean));
    if (g->st.n > 1 && c->st.n > 1) {
        double a = g->st.sd * g->st.sd / g->st.n, b = c->st.sd * c->st.sd / c->st.n;
        double se = sqrt(a + b);
        /* Welch-Satterthwaite degrees of freedom */
        double dof = (a + b) * (a + b) / (a * a / (g->st.n - 1) + b * b / (c->st.n - 1) + 1e-300);
        int d = dof < 1 ? 1 : (int)floor(dof);
        if (se > 0)
            fprintf(f, " &plusmn; %.2f", k * rn_t_quantile(0.975, d) * se);
        else
            fputs(" &plusmn; 0.00", f);
    }
    fprintf(f, "%s</td>", unit);
}

/* What makes the sweep: its file beside the report's experiments, when there. */
static void sweep_command(FILE *f, const struct rn_report *rep, const char *name)
{
    char file[RN_PATH_MAX * 2];
    snprintf(file, sizeof file, "%s/sweeps/%s.yaml", rep->experiments, name);
    fputs("<code>runner sweep ", f);
    report_esc(f, access(file, R_OK) == 0 ? file : "SWEEP.yaml");
    fputs("</code>", f);
}

int report_sweep_table(FILE *f, const struct rn_report *rep, const struct rn_report_table *t)
{
    struct rn_sweep_plan plan;
    struct rn_error e; /* a folder without a manifest is shown as missing */
    const char *base = strrchr(t->sweep, '/');
    base = base && base[1] ? base + 1 : t->sweep;
    int cols = 3 + t->n_metrics + (t->control[0] != 0);
    report_table_head(f, t, "<th>group</th><th>epoch</th><th>cells</th>",
                      " (mean &plusmn; 95% CI)");
    const char *last = t->metrics[t->n_metrics - 1];
    if (rn_sweep_plan_read(&plan, t->sweep, &e)) {
        fprintf(f, "<tr><td class=\"none\" colspan=\"%d\">Missing: ", cols);
        report_esc(f, t->sweep);
        fputs(" is not a sweep yet (no cells.tsv); make it with ", f);
        sweep_command(f, rep, base);
        fputs("</td></tr>\n</table>\n", f);
        return 0;
    }
    rn_sweep_plan_states(&plan);
    for (int i = 0; i < t->n_runs; i++) {
        const char *row = t->runs[i];
        struct group_stats g[RN_REPORT_MAX_COLS], c;
        for (int m = 0; m < t->n_metrics; m++)
            group_values(&plan, row, t->metrics[m], t->epoch, &g[m]);
        const struct group_stats *gl = &g[t->n_metrics - 1];
        fputs("<tr><td>", f);
        report_esc(f, row);
        fputs("</td>", f);
        if (gl->done == 0) {
            fprintf(f, "<td class=\"none\" colspan=\"%d\">", cols - 1);
            if (gl->not_done)
                fprintf(f, "no completed cell yet (%d not done); run ", gl->not_done);
            else
                fputs("Missing: no such group in this sweep; make it with ", f);
            sweep_command(f, rep, plan.name);
            fputs("</td></tr>\n", f);
            continue;
        }
        if (gl->epoch)
            fprintf(f, "<td>%d</td>", gl->epoch);
        else
            fputs("<td class=\"none\">&ndash;</td>", f);
        fprintf(f, "<td>%d", gl->st.n);
        if (gl->not_done || gl->without)
            fprintf(f, " <span class=\"meta\">(of %d; %d not done, %d without the metric)</span>",
                    gl->done + gl->not_done, gl->not_done, gl->without);
        fputs("</td>", f);
        for (int m = 0; m < t->n_metrics; m++)
            mean_cell(f, t->metrics[m], &g[m]);
        if (t->control[0]) {
            if (strcmp(row, t->control) == 0) {
                fputs("<td>control</td>", f);
            } else {
                group_values(&plan, t->control, last, gl->epoch, &c);
                gain_cell(f, last, gl, &c);
            }
        }
        fputs("</tr>\n", f);
    }
    fputs("</table>\n", f);
    rn_sweep_plan_free(&plan);
    return 0;
}
