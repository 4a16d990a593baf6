/* `runner report` (runner/report.h): the page written from synthetic runs
 * (run.h5 files made through the rn_results API, with a plots/ folder):
 * every file the page references exists; the tables hold the numbers
 * computed here by hand (values at the last or a given epoch, each run's
 * gain over the control at the run's own epoch); a missing run is listed
 * with the command that makes it; a running, failed or stale run is flagged
 * beside every figure and row of it; a table over a sweep holds each
 * group's mean and 95% interval and the gain with Welch's interval, computed
 * here by hand; bad report files give exact one-line errors with
 * file:line:col. */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runner/report.h"
#include "runner/results.h"
#include "runner/spec.h"
#include "sh.h"

static char tmp[64];

/* A valid 1x1 PNG (the page's figures are only copied, never decoded here). */
static const unsigned char png1x1[] = {
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48,
    0x44, 0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00,
    0x00, 0x1f, 0x15, 0xc4, 0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78,
    0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xf0, 0x1f, 0x00, 0x05, 0x00, 0x01, 0xff, 0x89, 0x99,
    0x3d, 0x1d, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82};

static void make_tmp(void)
{
    snprintf(tmp, sizeof tmp, "/tmp/rn_report_XXXXXX");
    cr_assert_not_null(mkdtemp(tmp));
}

/* Writes path (printf-style name under tmp) with contents text. */
static void write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "%s", path);
    cr_assert_eq(fwrite(data, 1, n, f), n);
    cr_assert_eq(fclose(f), 0);
}

/* The experiment file tmp/experiments/<name>.yaml (a small valid spec; seed
 * tells runs of different experiments apart). */
static void write_experiment(const char *name, int seed)
{
    char path[256], text[1024];
    snprintf(path, sizeof path, "%s/experiments/%s.yaml", tmp, name);
    int n = snprintf(text, sizeof text,
                     "name: %s\nseed: %d\nmodel:\n  name: m\n  layers:\n"
                     "    - {type: conv2d, name: conv1, filters: 4, kernel: 3}\n"
                     "    - {type: global_avg_pool}\n    - {type: linear, units: 10}\n"
                     "train: {epochs: 3}\n",
                     name, seed);
    write_file(path, text, (size_t)n);
}

/* The resolved spec of experiment name as it reads now (malloc'd). */
static char *resolved_of(const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "%s/experiments/%s.yaml", tmp, name);
    struct rn_spec *sp = calloc(1, sizeof *sp);
    struct rn_error err;
    cr_assert_eq(rn_spec_load(sp, path, NULL, NULL, NULL, &err), 0, "%s", err.msg);
    char *s = strdup(sp->resolved);
    rn_spec_free(sp);
    free(sp);
    return s;
}

/* The resolved spec of experiment name as a run records it when made with
 * --threads 2 --out elsewhere by a code that did not know train.batch's
 * default yet (the line left out). */
static char *recorded_elsewhere(const char *name)
{
    char *s = resolved_of(name), *out = calloc(1, strlen(s) + 64);
    size_t k = 0;
    for (const char *p = s; *p;) {
        size_t len = strcspn(p, "\n");
        if (!strncmp(p, "threads: ", 9))
            k += (size_t)sprintf(out + k, "threads: 2\n");
        else if (!strncmp(p, "out: ", 5))
            k += (size_t)sprintf(out + k, "out: /elsewhere\n");
        else if (strncmp(p, "  batch: ", 9) != 0)
            k += (size_t)sprintf(out + k, "%.*s\n", (int)len, p);
        p += len + (p[len] == '\n');
    }
    cr_assert(strstr(s, "\nthreads: ") && strstr(s, "\nout: ") && strstr(s, "\n  batch: "), "%s",
              s);
    free(s);
    return out;
}

struct fake {
    const char *name;   /* experiment: results/<name>/latest -> results/<name>/r1 */
    const char *status; /* completed, running, failed */
    int epochs;
    const double *val, *test; /* per epoch */
    const char *yaml;         /* /config yaml; NULL: the experiment's resolved spec */
};

/* A run folder with run.h5 (status, /config, val and test accuracy per
 * epoch) and plots/curves.{png,pdf,svg}, plots/samples_train.png. */
static void fake_run(const struct fake *fk)
{
    char dir[256], p[320];
    snprintf(dir, sizeof dir, "%s/results/%s/r1", tmp, fk->name);
    cr_assert_eq(
        sh(NULL, 0, "mkdir -p %s/plots && ln -s r1 %s/results/%s/latest", dir, tmp, fk->name), 0);
    snprintf(p, sizeof p, "%s/run.h5", dir);
    struct rn_results *r;
    struct rn_error err;
    cr_assert_eq(rn_results_create(&r, p, &err), 0, "%s", err.msg);
    char *yaml = fk->yaml ? strdup(fk->yaml) : resolved_of(fk->name);
    cr_assert_eq(rn_results_set_attr_str(r, "/config", "yaml", yaml, &err), 0, "%s", err.msg);
    free(yaml);
    cr_assert_eq(rn_results_set_attr_str(r, "/config", "experiment", fk->name, &err), 0);
    cr_assert_eq(rn_results_set_attr_str(r, "/config", "git_commit", "abc1234", &err), 0);
    cr_assert_eq(rn_results_set_attr_str(r, "/config", "started", "2026-12-04T10:00:00+0000", &err),
                 0);
    cr_assert_eq(
        rn_results_set_attr_str(r, "/config", "finished", "2026-12-04T10:01:30+0000", &err), 0);
    for (int e = 0; e < fk->epochs; e++) {
        double x = e + 1;
        cr_assert_eq(rn_results_append_metric(r, "val/accuracy", &x, &fk->val[e], 1, &err), 0);
        cr_assert_eq(rn_results_append_metric(r, "test/accuracy", &x, &fk->test[e], 1, &err), 0);
    }
    cr_assert_eq(rn_results_set_attr_str(r, "/", "status", fk->status, &err), 0);
    rn_results_close(r);
    static const char *const files[] = {"curves.png", "curves.pdf", "curves.svg",
                                        "samples_train.png"};
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s/plots/%s", dir, files[i]);
        if (strstr(files[i], ".png"))
            write_file(p, png1x1, sizeof png1x1);
        else
            write_file(p, "vector", 6);
    }
}

/* The report file tmp/report.yaml with results and experiments under tmp. */
__attribute__((format(printf, 1, 2))) static void write_report(const char *fmt, ...)
{
    char path[256], body[8192], text[9000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    snprintf(path, sizeof path, "%s/report.yaml", tmp);
    int n = snprintf(text, sizeof text, "title: Test report\nresults: %s/results\n%s", tmp, body);
    write_file(path, text, (size_t)n);
}

/* Loads tmp/report.yaml and builds tmp/out/index.html; the page into *html. */
static void build(struct rn_report_summary *sum, char **html)
{
    char path[256];
    snprintf(path, sizeof path, "%s/report.yaml", tmp);
    struct rn_report rep;
    struct rn_error err;
    cr_assert_eq(rn_report_load(&rep, path, NULL, NULL, NULL, &err), 0, "%s", err.msg);
    char out[128];
    snprintf(out, sizeof out, "%s/out", tmp);
    struct rn_report_options opt = {.vector = 1, .log = NULL};
    cr_assert_eq(rn_report_build(&rep, out, &opt, sum, &err), 0, "%s", err.msg);
    rn_report_free(&rep);
    snprintf(path, sizeof path, "%s/out/index.html", tmp);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    *html = calloc(1, (size_t)n + 1);
    cr_assert_eq(fread(*html, 1, (size_t)n, f), (size_t)n);
    fclose(f);
}

/* The experiments of the tests: a control and two methods (completed), one
 * that was never run, one running, one failed, one stale. */
static const double ctrl_val[] = {0.875, 0.9375, 0.953125};
static const double ctrl_test[] = {0.25, 0.5, 0.8125};
static const double m1_val[] = {0.96875, 0.984375};
static const double m1_test[] = {0.75, 0.9375};
static const double m2_val[] = {0.9, 0.95, 0.99};
static const double m2_test[] = {0.3, 0.6, 0.765625};

static void make_study(void)
{
    make_tmp();
    cr_assert_eq(sh(NULL, 0, "mkdir -p %s/experiments %s/results", tmp, tmp), 0);
    const char *names[] = {"ctrl", "m1",     "m2",     "never_run",
                           "busy", "broken", "edited", "rethreaded"};
    for (int i = 0; i < 8; i++)
        write_experiment(names[i], i);
    char *re = recorded_elsewhere("rethreaded");
    const struct fake runs[] = {
        {"ctrl", "completed", 3, ctrl_val, ctrl_test, NULL},
        {"m1", "completed", 2, m1_val, m1_test, NULL},
        {"m2", "completed", 3, m2_val, m2_test, NULL},
        {"busy", "running", 1, m1_val, m1_test, NULL},
        {"broken", "failed", 1, m1_val, m1_test, NULL},
        /* made from the file before an edit: its recorded spec differs */
        {"edited", "completed", 1, m1_val, m1_test, "name: edited\nseed: 99\n"},
        {"rethreaded", "completed", 1, m1_val, m1_test, re},
    };
    for (int i = 0; i < 7; i++)
        fake_run(&runs[i]);
    free(re);
    write_report("experiments: %s/experiments\n"
                 "sections:\n"
                 "  - title: Methods\n"
                 "    tables:\n"
                 "      - {title: At each run's last epoch, runs: [ctrl, m1, m2], control: ctrl}\n"
                 "      - {title: At epoch 1, runs: [ctrl, m1, never_run], epoch: 1,\n"
                 "         metrics: [test/accuracy], control: ctrl}\n"
                 "      - {title: Flagged, runs: [busy, broken, edited]}\n"
                 "    figures:\n"
                 "      - {run: ctrl, figure: curves, caption: 'Figure 16. Control curves.'}\n"
                 "      - {run: m1, figure: samples_train, caption: 'Figure 29. Samples.'}\n"
                 "      - {run: never_run, figure: curves, caption: 'Figure 19. Never run.'}\n"
                 "      - {run: ctrl, figure: gradcam, caption: 'Figure 11. Not drawn.'}\n"
                 "  - title: Flagged runs\n"
                 "    figures:\n"
                 "      - {run: busy, figure: curves, caption: 'Busy curves.'}\n"
                 "      - {run: broken, figure: curves, caption: 'Broken curves.'}\n"
                 "      - {run: edited, figure: curves, caption: 'Edited curves.'}\n"
                 "      - {run: rethreaded, figure: curves, caption: 'Other threads.'}\n",
                 tmp);
}

/* ---- every file the page references exists ------------------------------------------- */

Test(report, every_referenced_file_exists)
{
    make_study();
    struct rn_report_summary sum;
    char *html;
    build(&sum, &html);
    int checked = 0, images = 0;
    static const char *const attrs[] = {"src=\"", "href=\""};
    for (int a = 0; a < 2; a++) {
        for (const char *p = strstr(html, attrs[a]); p; p = strstr(p + 1, attrs[a])) {
            const char *v = p + strlen(attrs[a]), *end = strchr(v, '"');
            cr_assert_not_null(end);
            char ref[512];
            snprintf(ref, sizeof ref, "%.*s", (int)(end - v), v);
            if (ref[0] == '#')
                continue; /* an anchor of the page itself */
            cr_assert_null(strstr(ref, "://"), "the page must not reach the network: %s", ref);
            cr_assert_neq(ref[0], '/', "a reference must be relative to the page: %s", ref);
            char path[700];
            snprintf(path, sizeof path, "%s/out/%s", tmp, ref);
            struct stat st;
            cr_assert_eq(stat(path, &st), 0, "the page references %s, which does not exist", ref);
            cr_assert(S_ISREG(st.st_mode) && st.st_size > 0, "%s is not a non-empty file", ref);
            checked++;
            images += a == 0;
        }
    }
    /* curves of ctrl, samples_train of m1, and the curves of busy, broken,
     * edited and rethreaded: six <img>, each linked as PNG twice (image and
     * caption), PDF and SVG where the run has them (all but samples_train) */
    cr_assert_eq(images, 6);
    cr_assert_eq(sum.figures, 6);
    cr_assert_eq(sum.figures_missing, 2, "never_run's curves and ctrl's gradcam");
    cr_assert_eq(checked, 6 + 6 * 2 + 5 * 2, "got %d references", checked);
    /* every anchor the page links to is on the page */
    for (const char *p = strstr(html, "href=\"#"); p; p = strstr(p + 1, "href=\"#")) {
        char id[200], want[220];
        const char *v = p + 7, *end = strchr(v, '"');
        snprintf(id, sizeof id, "%.*s", (int)(end - v), v);
        snprintf(want, sizeof want, "id=\"%s\"", id);
        cr_assert_not_null(strstr(html, want), "#%s links nowhere", id);
    }
    free(html);
}

/* ---- tables against hand-computed values ------------------------------------------------ */

Test(report, tables_hold_hand_computed_values)
{
    make_study();
    struct rn_report_summary sum;
    char *html;
    build(&sum, &html);
    cr_assert_eq(sum.tables, 3);
    /* last epochs: ctrl 3 (val 95.3125 -> 95.31%, test 81.25%); m1 2 (98.4375 ->
     * 98.44%, 93.75%; gain over ctrl at ITS epoch 2: 93.75 - 50 = +43.75 pts,
     * not over ctrl's last); m2 3 (99.00%, 76.5625 -> 76.56%; 76.5625 - 81.25 =
     * -4.6875 -> -4.69 pts) */
    const char *rows[] = {
        "<tr><td><a href=\"#run-ctrl\">ctrl</a></td><td>3</td><td>95.31%</td><td>81.25%</td>"
        "<td>control</td></tr>",
        "<tr><td><a href=\"#run-m1\">m1</a></td><td>2</td><td>98.44%</td><td>93.75%</td>"
        "<td>+43.75 pts</td></tr>",
        "<tr><td><a href=\"#run-m2\">m2</a></td><td>3</td><td>99.00%</td><td>76.56%</td>"
        "<td>-4.69 pts</td></tr>",
        /* epoch 1: ctrl 25%, m1 75% (+50.00 pts) */
        "<tr><td><a href=\"#run-ctrl\">ctrl</a></td><td>1</td><td>25.00%</td><td>control</td>"
        "</tr>",
        "<tr><td><a href=\"#run-m1\">m1</a></td><td>1</td><td>75.00%</td><td>+50.00 pts</td>"
        "</tr>",
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        cr_assert_not_null(strstr(html, rows[i]), "row %zu not on the page: %s", i, rows[i]);
    cr_assert_not_null(strstr(html, "<th>test/accuracy gain over ctrl at that epoch</th>"));
    free(html);
}

/* ---- missing, running, failed and stale runs ---------------------------------------------- */

Test(report, missing_run_listed_with_its_command)
{
    make_study();
    struct rn_report_summary sum;
    char *html;
    build(&sum, &html);
    cr_assert_eq(sum.runs, 8);
    cr_assert_eq(sum.runs_missing, 1);
    char want[600];
    snprintf(want, sizeof want,
             "Missing: %s/results/never_run/latest does not exist; make it with <code>runner "
             "%s/experiments/never_run.yaml</code>",
             tmp, tmp);
    /* in its table row, in place of its figure */
    const char *row =
        strstr(html, "<a href=\"#run-never_run\">never_run</a></td><td class=\"none\"");
    cr_assert_not_null(row);
    cr_assert_not_null(strstr(row, want));
    cr_assert(strstr(row, want) < strstr(row, "</tr>"), "the command is in the row");
    const char *fig = strstr(html, "<figure>\n<div class=\"missing\">");
    cr_assert_not_null(fig);
    cr_assert(strstr(fig, want) && strstr(fig, want) < strstr(fig, "</figure>"));
    /* and in the runs' list */
    snprintf(want, sizeof want,
             "<tr id=\"run-never_run\"><td>never_run</td><td>missing</td><td colspan=\"4\" "
             "class=\"none\">&ndash;</td><td><code>runner %s/experiments/never_run.yaml</code>"
             "</td></tr>",
             tmp);
    cr_assert_not_null(strstr(html, want), "runs list: %s", want);
    /* the figure a run lacks names what it has */
    cr_assert_not_null(strstr(html, "Missing: figure <b>gradcam</b> is not in"));
    free(html);
}

/* The text of figure img src (its <figure> element) in html. */
static void figure_of(const char *html, const char *src, char *out, size_t size)
{
    char want[256];
    snprintf(want, sizeof want, "<img src=\"%s\"", src);
    const char *img = strstr(html, want);
    cr_assert_not_null(img, "no %s on the page", want);
    const char *end = strstr(img, "</figure>");
    cr_assert_not_null(end);
    snprintf(out, size, "%.*s", (int)(end - img), img);
}

Test(report, stale_and_failed_runs_are_flagged)
{
    make_study();
    struct rn_report_summary sum;
    char *html;
    build(&sum, &html);
    cr_assert_eq(sum.runs_flagged, 3, "busy, broken and edited");
    char fig[4096];
    figure_of(html, "figures/busy/curves.png", fig, sizeof fig);
    cr_assert_not_null(strstr(fig, "<div class=\"warn\">This run's status is <b>running</b>"), "%s",
                       fig);
    figure_of(html, "figures/broken/curves.png", fig, sizeof fig);
    cr_assert_not_null(strstr(fig, "<div class=\"warn\">This run's status is <b>failed</b>"), "%s",
                       fig);
    figure_of(html, "figures/edited/curves.png", fig, sizeof fig);
    cr_assert_not_null(strstr(fig, "<div class=\"warn\">Stale: made from another spec than"), "%s",
                       fig);
    cr_assert_not_null(strstr(fig, "line 4 of the resolved spec: the run has &#39;seed: 99&#39;, "
                                   "the file now gives &#39;seed: 6&#39;"),
                       "%s", fig);
    /* recorded with other threads and out, and without a key this code
     * writes with its default: the same run */
    figure_of(html, "figures/rethreaded/curves.png", fig, sizeof fig);
    cr_assert_null(strstr(fig, "class=\"warn\""), "%s", fig);
    /* a completed, current run draws no warning */
    figure_of(html, "figures/ctrl/curves.png", fig, sizeof fig);
    cr_assert_null(strstr(fig, "class=\"warn\""), "%s", fig);
    /* table rows of flagged runs carry the sign, with the reason */
    cr_assert_not_null(strstr(html, "busy</a> <span title=\"running\">&#9888;</span>"));
    cr_assert_not_null(strstr(html, "broken</a> <span title=\"failed\">&#9888;</span>"));
    cr_assert_not_null(strstr(html, "edited</a> <span title=\"made from another spec"));
    cr_assert_not_null(strstr(html, "<td>running</td>"));
    cr_assert_not_null(strstr(html, "<td>completed, stale</td>"));
    free(html);
}

/* ---- bad report files ------------------------------------------------------------------- */

/* The error lines of report text (written to tmp/bad.yaml) into out. */
static int errors_of(const char *text, char *out, size_t size)
{
    char path[256];
    snprintf(path, sizeof path, "%s/bad.yaml", tmp);
    write_file(path, text, strlen(text));
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    struct rn_report rep;
    struct rn_error err;
    int n = 0;
    int rc = rn_report_load(&rep, path, NULL, f, &n, &err);
    fclose(f);
    rn_report_free(&rep);
    snprintf(out, size, "%s", buf ? buf : "");
    free(buf);
    cr_assert_eq(rc, -1);
    return n;
}

Test(report, bad_report_files_give_located_errors)
{
    make_study();
    char out[4096], want[4096];
    /* experiments are looked for beside the report file by default */
    cr_assert_eq(sh(NULL, 0, "cp %s/experiments/*.yaml %s/", tmp, tmp), 0);
    /* unknown keys, at the level they are written */
    cr_assert_eq(errors_of("title: t\nsection: []\n", out, sizeof out), 2);
    snprintf(want, sizeof want,
             "%s/bad.yaml:2:1: error: unknown key 'section' (did you mean 'sections'?)\n"
             "%s/bad.yaml:1:1: error: missing required key 'sections'\n",
             tmp, tmp);
    /* errors print sorted by position */
    char alt[4096];
    snprintf(alt, sizeof alt,
             "%s/bad.yaml:1:1: error: missing required key 'sections'\n"
             "%s/bad.yaml:2:1: error: unknown key 'section' (did you mean 'sections'?)\n",
             tmp, tmp);
    cr_assert(strcmp(out, want) == 0 || strcmp(out, alt) == 0, "got:\n%s", out);
    cr_assert_eq(errors_of("title: t\nsections:\n  - title: s\n    figures:\n"
                           "      - {run: ctrl, figure: curves, caption: c, colour: red}\n",
                           out, sizeof out),
                 1);
    snprintf(want, sizeof want,
             "%s/bad.yaml:5:49: error: section 's': figure #1: unknown key 'colour'\n", tmp);
    cr_assert_str_eq(out, want);
    /* a figure without its figure or caption */
    cr_assert_eq(errors_of("title: t\nsections:\n  - title: s\n    figures:\n"
                           "      - {run: ctrl, caption: c}\n      - {run: ctrl, figure: x}\n",
                           out, sizeof out),
                 2);
    snprintf(want, sizeof want,
             "%s/bad.yaml:5:9: error: section 's': figure #1: missing required key 'figure'\n"
             "%s/bad.yaml:6:9: error: section 's': figure #2: missing required key 'caption'\n",
             tmp, tmp);
    cr_assert_str_eq(out, want);
    /* an experiment that does not exist (a typo), in a figure and in a table */
    cr_assert_eq(errors_of("title: t\nsections:\n  - title: s\n    figures:\n"
                           "      - {run: ctlr, figure: curves, caption: c}\n"
                           "    tables:\n      - {title: x, runs: [ctrl, m3]}\n",
                           out, sizeof out),
                 2);
    snprintf(want, sizeof want,
             "%s/bad.yaml:5:15: error: section 's': figure #1: unknown run 'ctlr': no experiment "
             "file %s/ctlr.yaml and no run results/ctlr/latest (a run folder needs a '/') (did "
             "you mean 'ctrl'?)\n"
             "%s/bad.yaml:7:33: error: section 's': table #1: runs: unknown run 'm3': no "
             "experiment file %s/m3.yaml and no run results/m3/latest (a run folder needs a "
             "'/') (did you mean 'm1'?)\n",
             tmp, tmp, tmp, tmp);
    cr_assert_str_eq(out, want);
    /* bad table metrics and control */
    cr_assert_eq(errors_of("title: t\nsections:\n  - title: s\n    tables:\n"
                           "      - {title: x, runs: [ctrl, m1], metrics: [accuracy, test/acc "
                           "uracy], control: m2}\n",
                           out, sizeof out),
                 3);
    snprintf(want, sizeof want,
             "%s/bad.yaml:5:48: error: section 's': table #1: metrics: expected a metric "
             "<group>/<name> as a run's /metrics holds it (test/accuracy, val/colour_accuracy, "
             "...), got 'accuracy'\n"
             "%s/bad.yaml:5:58: error: section 's': table #1: metrics: expected a metric "
             "<group>/<name> as a run's /metrics holds it (test/accuracy, val/colour_accuracy, "
             "...), got 'test/acc uracy' (did you mean 'test/accuracy'?)\n"
             "%s/bad.yaml:5:75: error: section 's': table #1: control 'm2' is not one of the "
             "table's runs (did you mean 'm1'?)\n",
             tmp, tmp, tmp);
    cr_assert_str_eq(out, want);
}

/* ---- a table over a sweep: mean +- CI per group, the gain with Welch's interval ---------- */

/* Cell <folder> of sweep tmp/sw: run.h5 with test/accuracy at epochs 1 and 2
 * (acc at epoch 2) and its done marker, or only a failed exit code. */
static void fake_cell(const char *folder, double acc, int done)
{
    char dir[256], p[320];
    snprintf(dir, sizeof dir, "%s/sw/cells/%s", tmp, folder);
    cr_assert_eq(sh(NULL, 0, "mkdir -p %s", dir), 0);
    if (!done) {
        snprintf(p, sizeof p, "%s/exit_code", dir);
        write_file(p, "1\n", 2);
        return;
    }
    snprintf(p, sizeof p, "%s/run.h5", dir);
    struct rn_results *r;
    struct rn_error err;
    cr_assert_eq(rn_results_create(&r, p, &err), 0, "%s", err.msg);
    const double x[2] = {1, 2}, v[2] = {0.125, acc};
    cr_assert_eq(rn_results_append_metric(r, "test/accuracy", x, v, 2, &err), 0, "%s", err.msg);
    cr_assert_eq(rn_results_set_attr_str(r, "/", "status", "completed", &err), 0);
    rn_results_close(r);
    snprintf(p, sizeof p, "%s/done", dir);
    write_file(p, "", 0);
}

Test(report, sweep_table_holds_means_and_intervals)
{
    make_study();
    cr_assert_eq(sh(NULL, 0, "mkdir -p %s/sw", tmp), 0);
    char path[256], manifest[2048];
    int n = snprintf(manifest, sizeof manifest, "# manifest\n");
    const char *cells[][3] = {{"ctrl", "0", "ctrl-a0"}, {"ctrl", "1", "ctrl-a1"},
                              {"ctrl", "2", "ctrl-a2"}, {"m1", "0", "m1-b0"},
                              {"m1", "1", "m1-b1"},     {"m1", "2", "m1-b2"},
                              {"m1", "3", "m1-b3"}};
    for (int i = 0; i < 7; i++)
        n += snprintf(manifest + n, sizeof manifest - (size_t)n,
                      "%d\tid%d\t%s\t1\t%s\t/x/%s.yaml\t%s seed=%s\t%s\tseed=%s\n", i, i,
                      cells[i][2], cells[i][0], cells[i][0], cells[i][0], cells[i][1], cells[i][0],
                      cells[i][1]);
    /* a cell no longer in the sweep file is not counted */
    n += snprintf(manifest + n, sizeof manifest - (size_t)n,
                  "7\tid7\tm1-old\t0\tm1\t/x/m1.yaml\tm1 seed=9\tm1\tseed=9\n");
    snprintf(path, sizeof path, "%s/sw/cells.tsv", tmp);
    write_file(path, manifest, (size_t)n);
    const double ctrl[3] = {0.5, 0.625, 0.75}, m1[3] = {0.875, 0.9375, 1.0};
    for (int i = 0; i < 3; i++) {
        fake_cell(cells[i][2], ctrl[i], 1);
        fake_cell(cells[3 + i][2], m1[i], 1);
    }
    fake_cell("m1-b3", 0, 0);  /* failed */
    fake_cell("m1-old", 0, 1); /* inactive: 0% would pull the mean down */
    write_report("experiments: %s/experiments\nsections:\n  - title: Sweep\n    tables:\n"
                 "      - {title: Seeds, sweep: %s/sw, runs: [ctrl, m1, m9], control: ctrl,\n"
                 "         metrics: [test/accuracy]}\n",
                 tmp, tmp);
    struct rn_report_summary sum;
    char *html;
    build(&sum, &html);
    cr_assert_eq(sum.runs, 0, "a sweep's groups are not runs of the report");
    /* ctrl: mean 62.5, sd 0.125, half t(0.975, 2) = 4.302652729911275 x 12.5 /
     * sqrt(3) = 31.05; m1: 93.75, sd 0.0625, half 15.53; gain 31.25 with
     * Welch: se^2 = 0.0625^2/3 + 0.125^2/3, dof 2.94 -> 2, half 4.3027 x
     * 8.0687 = 34.72 */
    const char *rows[] = {
        "<tr><td>ctrl</td><td>2</td><td>3</td><td>62.50% &plusmn; 31.05</td><td>control</td>"
        "</tr>",
        "<tr><td>m1</td><td>2</td><td>3 <span class=\"meta\">(of 4; 1 not done, 0 without the "
        "metric)</span></td><td>93.75% &plusmn; 15.53</td><td>+31.25 &plusmn; 34.72 pts</td>"
        "</tr>",
        "<tr><td>m9</td><td class=\"none\" colspan=\"4\">Missing: no such group in this sweep",
    };
    for (int i = 0; i < 3; i++)
        cr_assert_not_null(strstr(html, rows[i]), "row %d not on the page: %s", i, rows[i]);
    free(html);
}

/* ---- --run-missing: the missing run made into the results root, then not stale ---------- */

Test(report, run_missing_makes_the_run_and_it_is_current, .timeout = 600)
{
    make_tmp();
    write_report("experiments: %s/tests/fixtures/report\nsections:\n  - title: s\n    tables:\n"
                 "      - {title: t, runs: [tiny_lazy]}\n    figures:\n"
                 "      - {run: tiny_lazy, figure: cams, caption: c}\n",
                 RN_SOURCE_DIR);
    char out[8192];
    /* the fixture's data.dir is relative to the repository root */
    int rc = sh(out, sizeof out,
                "cd %s && OMP_NUM_THREADS=1 %s report %s/report.yaml --results %s/elsewhere "
                "--out %s/out --run-missing --threads 1 --no-vector --quiet 2>&1",
                RN_SOURCE_DIR, RN_RUNNER_BIN, tmp, tmp, tmp);
    cr_assert_eq(rc, 0, "%s", out);
    char want[512];
    snprintf(want, sizeof want,
             "%s/out/index.html: 1 figures (0 missing), 1 tables, 1 runs (0 missing, 0 flagged)",
             tmp);
    cr_assert_not_null(strstr(out, want), "%s", out);
    /* made with --threads 1 into --results: its spec records both, and it is current */
    char path[256];
    snprintf(path, sizeof path, "%s/elsewhere/tiny_lazy/latest/run.h5", tmp);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0, "%s", out);
    snprintf(path, sizeof path, "%s/out/figures/tiny_lazy/cams.png", tmp);
    cr_assert_eq(stat(path, &st), 0);
    /* a second build finds it and runs nothing */
    rc = sh(out, sizeof out,
            "cd %s && %s report %s/report.yaml --results %s/elsewhere --out %s/out "
            "--run-missing --no-vector 2>&1",
            RN_SOURCE_DIR, RN_RUNNER_BIN, tmp, tmp, tmp);
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert_null(strstr(out, "does not exist: running"), "%s", out);
}

/* ---- the study's report file ------------------------------------------------------------ */

Test(report, study_report_file_loads_and_numbers_its_figures)
{
    struct rn_report rep;
    struct rn_error err;
    int n_errors = 0;
    cr_assert_eq(rn_report_load(&rep, RN_SOURCE_DIR "/experiments/report.yaml", NULL, stderr,
                                &n_errors, &err),
                 0, "%s", err.msg);
    cr_assert_eq(rep.n_sections, 7, "Tasks 0-6");
    int figures = 0, numbered[45] = {0};
    for (int i = 0; i < rep.n_sections; i++) {
        for (int j = 0; j < rep.sections[i].n_figures; j++, figures++) {
            const char *c = rep.sections[i].figures[j].caption;
            /* every caption carries the write-up's figure numbers, or says it has none */
            cr_assert(strncmp(c, "Figure", 6) == 0 || strstr(c, "not in the write-up") ||
                          strstr(c, "Figure 29's originals"),
                      "caption without a figure number: %s", c);
            for (const char *p = c; (p = strpbrk(p, "0123456789"));) {
                char *end;
                long k = strtol(p, &end, 10);
                if (p > c + 6 && k >= 1 && k <= 44 && strncmp(c, "Figure", 6) == 0 &&
                    (end[0] == '.' || end[0] == ',' || end[0] == ' '))
                    numbered[k] = 1;
                p = end;
            }
        }
    }
    cr_assert_eq(figures, 48);
    /* the write-up's figures that have a counterpart here: all but 12 (colour clusters) */
    for (int k = 1; k <= 44; k++)
        cr_expect(numbered[k] || k == 12, "Figure %d has no counterpart in the report", k);
    rn_report_free(&rep);
}
