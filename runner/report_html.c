/* report_html.c - the report's page (report.h): one static index.html with
 * the figures copied beside it, the tables, and every run's settings. */
#include "report_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rn_git.h"
#include "run.h"

#ifndef RN_VERSION
#define RN_VERSION "dev"
#endif

/* ---- writing text ------------------------------------------------------------------- */

void report_esc(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&':
            fputs("&amp;", f);
            break;
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        case '\'':
            fputs("&#39;", f);
            break;
        default:
            fputc(*s, f);
        }
    }
}

/* Text with blank lines between paragraphs, as <p> elements. */
static void paragraphs(FILE *f, const char *s)
{
    while (*s) {
        const char *end = strstr(s, "\n\n");
        size_t len = end ? (size_t)(end - s) : strlen(s);
        char *p = strndup(s, len);
        if (p && p[strspn(p, " \n")]) {
            fputs("<p>", f);
            report_esc(f, p);
            fputs("</p>\n", f);
        }
        free(p);
        s += len;
        while (*s == '\n')
            s++;
    }
}

static const char style[] =
    "body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0 auto;"
    "max-width:1180px;padding:0 24px 48px;color:#1d1d1f}\n"
    "h1{margin:28px 0 4px}h2{margin-top:40px;border-bottom:1px solid #ddd;padding-bottom:4px}\n"
    ".meta{color:#666;font-size:13px}nav ol{columns:2}\n"
    "figure{display:inline-block;vertical-align:top;width:540px;margin:12px 14px 12px 0}\n"
    "figure img{max-width:100%;border:1px solid #eee}\n"
    "figcaption{font-size:13px;color:#333}figcaption code,td code{font-size:12px}\n"
    ".links a{margin-right:6px}.warn{background:#fff4e5;border-left:4px solid #f0a020;"
    "padding:6px 10px;font-size:13px;margin:6px 0}\n"
    ".missing{background:#fdecea;border-left:4px solid #d93025;padding:10px;font-size:13px;"
    "width:500px;min-height:60px}\n"
    "table{border-collapse:collapse;margin:10px 0;font-size:14px}"
    "th,td{border:1px solid #ccc;padding:4px 10px;text-align:right}"
    "th:first-child,td:first-child{text-align:left}th{background:#f3f3f3}\n"
    "td.none{color:#999;text-align:left}pre{background:#f7f7f7;padding:8px;overflow:auto;font-size:"
    "12px}\n"
    "#broken{background:#d93025;color:#fff;padding:8px 12px;margin-top:12px}\n";

/* Counts the images that did not load and says so on the page and in
 * <body data-images-broken> (what scripts/report-test.sh reads). */
static const char check_script[] =
    "<script>\n"
    "window.addEventListener('load', function () {\n"
    "  var imgs = document.images, bad = 0;\n"
    "  for (var i = 0; i < imgs.length; i++)\n"
    "    if (!imgs[i].complete || imgs[i].naturalWidth === 0) bad++;\n"
    "  document.body.setAttribute('data-images-broken', String(bad));\n"
    "  document.body.setAttribute('data-images-loaded', String(imgs.length - bad));\n"
    "  if (bad) {\n"
    "    var b = document.getElementById('broken');\n"
    "    b.textContent = bad + ' of ' + imgs.length + ' figures did not load';\n"
    "    b.hidden = false;\n"
    "  }\n"
    "});\n"
    "</script>\n";

/* ---- pieces of the page ------------------------------------------------------------- */

struct page {
    const struct rn_report *rep;
    struct report_run *runs;
    int n_runs;
    const char *out_dir;
    const struct rn_report_options *opt;
    struct rn_report_summary *sum;
    FILE *f;
};

static struct report_run *find_run(struct page *pg, const char *name)
{
    for (int i = 0; i < pg->n_runs; i++)
        if (strcmp(pg->runs[i].name, name) == 0)
            return &pg->runs[i];
    return NULL;
}

static void make_command(const struct report_run *r, FILE *f)
{
    if (r->experiment[0]) {
        fputs("<code>runner ", f);
        report_esc(f, r->experiment);
        fputs("</code>", f);
    } else {
        fputs("(a run folder: no experiment file known)", f);
    }
}

static void run_warning(FILE *f, const struct report_run *r)
{
    if (!report_run_flagged(r))
        return;
    fputs("<div class=\"warn\">", f);
    if (strcmp(r->status, "completed") != 0) {
        fputs("This run's status is <b>", f);
        report_esc(f, r->status[0] ? r->status : "unknown");
        fputs("</b>: its numbers and figures may be partial. ", f);
    }
    if (r->stale[0]) {
        fputs("Stale: ", f);
        report_esc(f, r->stale);
        fputs(". ", f);
    }
    fputs("Rerun: ", f);
    make_command(r, f);
    fputs("</div>\n", f);
}

static void missing_run(FILE *f, const struct report_run *r)
{
    fputs("Missing: ", f);
    report_esc(f, r->dir);
    fputs(" does not exist; make it with ", f);
    make_command(r, f);
    fputs(" (or <code>runner report ... --run-missing</code>)", f);
}

int report_is_fraction(const char *metric)
{
    size_t n = strlen(metric);
    return n >= 8 && strcmp(metric + n - 8, "accuracy") == 0;
}

static void value_cell(FILE *f, const char *metric, double v)
{
    if (report_is_fraction(metric))
        fprintf(f, "<td>%.2f%%</td>", 100 * v);
    else
        fprintf(f, "<td>%.4g</td>", v);
}

void report_table_head(FILE *f, const struct rn_report_table *t, const char *lead,
                       const char *suffix)
{
    fprintf(f, "<table>\n<tr>%s", lead);
    for (int m = 0; m < t->n_metrics; m++) {
        fputs("<th>", f);
        report_esc(f, t->metrics[m]);
        fprintf(f, "%s</th>", suffix);
    }
    if (t->control[0]) {
        fputs("<th>", f);
        report_esc(f, t->metrics[t->n_metrics - 1]);
        fputs(" gain over ", f);
        report_esc(f, t->control);
        fputs(" at that epoch</th>", f);
    }
    fputs("</tr>\n", f);
}

static void write_caption(FILE *f, const struct rn_report_table *t)
{
    if (t->caption[0]) {
        fputs("<p class=\"meta\">", f);
        report_esc(f, t->caption);
        fputs("</p>\n", f);
    }
}

static void write_table(struct page *pg, const struct rn_report_table *t, int si, int ti)
{
    FILE *f = pg->f;
    fprintf(f, "<h3 id=\"t%d-%d\">", si + 1, ti + 1);
    report_esc(f, t->title);
    fputs("</h3>\n", f);
    if (t->sweep[0]) {
        fputs("<p class=\"meta\">From the sweep <code>", f);
        report_esc(f, t->sweep);
        fputs("</code>: each group's completed cells (its seeds).</p>\n", f);
        report_sweep_table(f, pg->rep, t);
        write_caption(f, t);
        pg->sum->tables++;
        return;
    }
    report_table_head(f, t, "<th>run</th><th>epoch</th>", "");
    const char *last = t->metrics[t->n_metrics - 1];
    struct report_run *control = t->control[0] ? find_run(pg, t->control) : NULL;
    for (int i = 0; i < t->n_runs; i++) {
        struct report_run *r = find_run(pg, t->runs[i]);
        fprintf(f, "<tr><td><a href=\"#run-%s\">", r->key);
        report_esc(f, t->runs[i]);
        fputs("</a>", f);
        if (report_run_flagged(r)) {
            fputs(" <span title=\"", f);
            report_esc(f, r->stale[0] ? r->stale : r->status);
            fputs("\">&#9888;</span>", f);
        }
        fputs("</td>", f);
        if (!r->exists) {
            fprintf(f, "<td class=\"none\" colspan=\"%d\">", t->n_metrics + 1 + (control != NULL));
            missing_run(f, r);
            fputs("</td></tr>\n", f);
            continue;
        }
        double v;
        int at = 0, epoch = 0;
        for (int m = 0; m < t->n_metrics && !epoch; m++)
            if (report_metric_at(r, t->metrics[m], t->epoch, &v, &at) == 0)
                epoch = at;
        if (epoch > 0)
            fprintf(f, "<td>%d</td>", epoch);
        else
            fputs("<td class=\"none\">&ndash;</td>", f);
        double lv = 0;
        int have_last = 0;
        for (int m = 0; m < t->n_metrics; m++) {
            if (report_metric_at(r, t->metrics[m], t->epoch, &v, &at) == 0) {
                value_cell(f, t->metrics[m], v);
                if (m == t->n_metrics - 1)
                    lv = v, have_last = 1, epoch = at;
            } else {
                fputs("<td class=\"none\" title=\"no such metric in this run\">&ndash;</td>", f);
            }
        }
        if (control) {
            double cv;
            int cat;
            if (r == control)
                fputs("<td>control</td>", f);
            else if (have_last && report_metric_at(control, last, epoch, &cv, &cat) == 0)
                fprintf(f, report_is_fraction(last) ? "<td>%+.2f pts</td>" : "<td>%+.4g</td>",
                        (lv - cv) * (report_is_fraction(last) ? 100 : 1));
            else
                fprintf(f, "<td class=\"none\">the control has no epoch %d</td>", epoch);
        }
        fputs("</tr>\n", f);
    }
    fputs("</table>\n", f);
    write_caption(f, t);
    pg->sum->tables++;
}

static int write_figure(struct page *pg, const struct rn_report_figure *fig, struct rn_error *err)
{
    FILE *f = pg->f;
    struct report_run *r = find_run(pg, fig->run);
    int have[3];
    if (report_copy_figure(r, fig->figure, pg->out_dir, pg->opt->vector, have, pg->opt->log, err))
        return -1;
    fputs("<figure>\n", f);
    if (!r->exists) {
        fputs("<div class=\"missing\">", f);
        missing_run(f, r);
        fputs("</div>\n", f);
        pg->sum->figures_missing++;
    } else if (!have[0]) {
        char list[2048];
        report_list_figures(r, list, sizeof list);
        fputs("<div class=\"missing\">Missing: figure <b>", f);
        report_esc(f, fig->figure);
        fputs("</b> is not in ", f);
        report_esc(f, r->dir);
        fputs("/plots (it has: ", f);
        report_esc(f, list[0] ? list : "no figures");
        fputs("); draw them with <code>runner plot ", f);
        report_esc(f, r->dir);
        fputs("</code></div>\n", f);
        pg->sum->figures_missing++;
    } else {
        char src[RN_NAME_MAX * 2 + 16];
        snprintf(src, sizeof src, "figures/%s/%s", r->key, fig->figure);
        fputs("<a href=\"", f);
        report_esc(f, src);
        fputs(".png\"><img src=\"", f);
        report_esc(f, src);
        fputs(".png\" alt=\"", f);
        report_esc(f, fig->figure);
        fputs("\"></a>\n", f);
        pg->sum->figures++;
        run_warning(f, r);
        (void)src;
    }
    fputs("<figcaption>", f);
    report_esc(f, fig->caption);
    fprintf(f, " <span class=\"meta\">(<a href=\"#run-%s\">", r->key);
    report_esc(f, fig->run);
    fputs("</a>)</span>", f);
    if (have[0]) {
        static const char *const fmts[3] = {"PNG", "PDF", "SVG"};
        static const char *const ext[3] = {"png", "pdf", "svg"};
        fputs("<br><span class=\"links\">", f);
        for (int k = 0; k < 3; k++) {
            if (!have[k])
                continue;
            fprintf(f, "<a href=\"figures/%s/", r->key);
            report_esc(f, fig->figure);
            fprintf(f, ".%s\">%s</a>", ext[k], fmts[k]);
        }
        fputs("</span> redraw: <code>runner plot ", f);
        report_esc(f, r->dir);
        fputs("</code>", f);
    }
    fputs("</figcaption>\n</figure>\n", f);
    return 0;
}

static void format_seconds(double s, char *out, size_t size)
{
    if (s < 0)
        snprintf(out, size, "&ndash;");
    else if (s < 120)
        snprintf(out, size, "%.0f s", s);
    else if (s < 7200)
        snprintf(out, size, "%.1f min", s / 60);
    else
        snprintf(out, size, "%.2f h", s / 3600);
}

static void write_runs(struct page *pg)
{
    FILE *f = pg->f;
    fputs("<h2 id=\"runs\">Runs</h2>\n<table>\n<tr><th>run</th><th>status</th><th>started</th>"
          "<th>took</th><th>code version</th><th>device</th><th>make it</th></tr>\n",
          f);
    for (int i = 0; i < pg->n_runs; i++) {
        struct report_run *r = &pg->runs[i];
        fprintf(f, "<tr id=\"run-%s\"><td>", r->key);
        report_esc(f, r->name);
        fputs("</td>", f);
        if (!r->exists) {
            fputs("<td>missing</td><td colspan=\"4\" class=\"none\">&ndash;</td><td>", f);
            make_command(r, f);
            fputs("</td></tr>\n", f);
            continue;
        }
        char took[32];
        format_seconds(r->seconds, took, sizeof took);
        fputs("<td>", f);
        report_esc(f, r->status);
        if (r->stale[0])
            fputs(", stale", f);
        fputs("</td><td>", f);
        report_esc(f, r->started);
        fprintf(f, "</td><td>%s</td><td>", took);
        report_esc(f, r->git);
        if (r->git[0] && strcmp(r->git, RN_GIT_COMMIT) != 0)
            fputs(" (not this code's)", f);
        fputs("</td><td>", f);
        report_esc(f, r->device[0] ? r->device : "cpu");
        fputs("</td><td>", f);
        make_command(r, f);
        fputs("</td></tr>\n", f);
    }
    fputs("</table>\n", f);
    for (int i = 0; i < pg->n_runs; i++) {
        struct report_run *r = &pg->runs[i];
        if (!r->exists)
            continue;
        fputs("<details><summary>", f);
        report_esc(f, r->name);
        fputs(": ", f);
        report_esc(f, r->real);
        fputs("</summary>\n", f);
        run_warning(f, r);
        fputs("<p>Redraw its figures: <code>runner plot ", f);
        report_esc(f, r->dir);
        fputs("</code></p>\n<pre>", f);
        report_esc(f, r->yaml ? r->yaml : "(no /config yaml)");
        fputs("</pre></details>\n", f);
    }
}

static int write_page(struct page *pg, struct rn_error *err)
{
    FILE *f = pg->f;
    const struct rn_report *rep = pg->rep;
    char when[64];
    time_t now = time(NULL);
    strftime(when, sizeof when, "%Y-%m-%d %H:%M %Z", localtime(&now));
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>", f);
    report_esc(f, rep->title);
    fprintf(f, "</title>\n<style>\n%s</style>\n</head>\n<body>\n", style);
    fputs("<div id=\"broken\" hidden></div>\n<h1>", f);
    report_esc(f, rep->title);
    fputs("</h1>\n<p class=\"meta\">Generated ", f);
    report_esc(f, when);
    fputs(" by runner " RN_VERSION " (code version " RN_GIT_COMMIT ") from <code>", f);
    report_esc(f, rep->file);
    fputs("</code>; every figure was drawn by its run from its run.h5 alone.</p>\n", f);
    paragraphs(f, rep->text);
    fputs("<nav><ol>\n", f);
    for (int i = 0; i < rep->n_sections; i++) {
        fprintf(f, "<li><a href=\"#s%d\">", i + 1);
        report_esc(f, rep->sections[i].title);
        fputs("</a></li>\n", f);
    }
    fputs("<li><a href=\"#runs\">Runs</a></li>\n</ol></nav>\n", f);
    for (int i = 0; i < rep->n_sections; i++) {
        const struct rn_report_section *s = &rep->sections[i];
        fprintf(f, "<section>\n<h2 id=\"s%d\">", i + 1);
        report_esc(f, s->title);
        fputs("</h2>\n", f);
        paragraphs(f, s->text);
        for (int t = 0; t < s->n_tables; t++)
            write_table(pg, &s->tables[t], i, t);
        for (int k = 0; k < s->n_figures; k++)
            if (write_figure(pg, &s->figures[k], err))
                return -1;
        fputs("</section>\n", f);
    }
    write_runs(pg);
    fputs(check_script, f);
    fputs("</body>\n</html>\n", f);
    return 0;
}

/* ---- the entry point ---------------------------------------------------------------- */

int rn_report_build(const struct rn_report *rep, const char *out_dir,
                    const struct rn_report_options *opt, struct rn_report_summary *sum,
                    struct rn_error *err)
{
    struct rn_report_options none = {0};
    struct rn_report_summary dummy;
    opt = opt ? opt : &none;
    sum = sum ? sum : &dummy;
    memset(sum, 0, sizeof *sum);
    const char **names = NULL;
    int n = 0, rc = -1;
    struct page pg = {.rep = rep, .out_dir = out_dir, .opt = opt, .sum = sum};
    char tmp[RN_PATH_MAX + 32], final[RN_PATH_MAX + 32];
    snprintf(tmp, sizeof tmp, "%s/index.html.part", out_dir);
    snprintf(final, sizeof final, "%s/index.html", out_dir);
    if (rn_make_dirs(out_dir, err) || rn_report_runs(rep, &names, &n, err))
        goto done;
    pg.runs = rn_calloc((size_t)(n ? n : 1), sizeof *pg.runs, err);
    if (!pg.runs)
        goto done;
    for (int i = 0; i < n; i++, pg.n_runs++) {
        report_run_open(rep, names[i], &pg.runs[i]);
        sum->runs++;
        sum->runs_missing += !pg.runs[i].exists;
        sum->runs_flagged += report_run_flagged(&pg.runs[i]);
        if (pg.runs[i].seconds > 0)
            sum->run_seconds += pg.runs[i].seconds;
    }
    if (!(pg.f = fopen(tmp, "w"))) {
        rn_errorf(err, "cannot write %s: %s", tmp, strerror(errno));
        goto done;
    }
    rc = write_page(&pg, err);
    if (fclose(pg.f) != 0 && rc == 0)
        rc = rn_errorf(err, "cannot write %s: %s", tmp, strerror(errno));
    if (rc == 0 && rename(tmp, final) != 0)
        rc = rn_errorf(err, "cannot rename %s to %s: %s", tmp, final, strerror(errno));
    if (rc)
        remove(tmp);
done:
    for (int i = 0; i < pg.n_runs; i++)
        report_run_close(&pg.runs[i]);
    free(pg.runs);
    free(names);
    return rc;
}
