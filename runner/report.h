/* report.h - the study as one static page (`runner report REPORT.yaml --out DIR`).
 *
 * A report file (experiments/report.yaml) declares sections; each holds
 * figures (a run's figure, by the file name runner plot gives it, with a
 * caption) and tables (metrics of runs side by side, optionally each run's
 * gain over a control at equal epochs; with a sweep folder, its groups'
 * means and 95% intervals over their completed cells). A run is named by its
 * experiment (`task4_m1`: <results>/task4_m1/latest, made by
 * <experiments>/task4_m1.yaml) or by a run folder (anything with a '/').
 *
 * rn_report_build reads each run's run.h5 (status, /config, /metrics) and
 * plots/, copies the figures into DIR/figures/<run>/ (PNG, and the PDF and
 * SVG versions, drawn with runner plot's code when the run lacks them) and
 * writes DIR/index.html: no server, no network, no framework; a few lines of
 * inline script count the images that failed to load and say so on the page
 * (and in <body data-images-broken>, which scripts/report-test.sh reads).
 * A run that does not exist is listed as missing with the command that makes
 * it; a run that failed, was interrupted or is still running, or whose
 * recorded spec differs from its experiment file as that reads now in what
 * can change its numbers (both resolved by this code; threads, out and
 * description aside), is drawn with a warning that says which.
 */
#ifndef RN_REPORT_H
#define RN_REPORT_H

#include <stdio.h>

#include "error.h"
#include "spec.h"

#define RN_REPORT_TEXT_MAX 2048
#define RN_REPORT_MAX_COLS 8

struct rn_report_figure {
    char run[RN_PATH_MAX];    /* experiment name or run folder */
    char figure[RN_NAME_MAX]; /* file name in the run's plots/, without extension */
    char caption[RN_REPORT_TEXT_MAX];
    int line, col;
};

struct rn_report_table {
    char title[256];
    char caption[RN_REPORT_TEXT_MAX];
    char (*runs)[RN_PATH_MAX]; /* rows */
    int n_runs;
    char metrics[RN_REPORT_MAX_COLS][RN_NAME_MAX]; /* /metrics/<name>, last row or epoch */
    int n_metrics;
    char control[RN_PATH_MAX]; /* one of runs, or "" */
    char sweep[RN_PATH_MAX];   /* a sweep folder: runs are its groups (mean +- CI), or "" */
    int epoch;                 /* the metrics' epoch; 0: each run's last */
    int line, col;
};

struct rn_report_section {
    char title[256];
    char text[RN_REPORT_TEXT_MAX];
    struct rn_report_figure *figures;
    int n_figures;
    struct rn_report_table *tables;
    int n_tables;
};

struct rn_report {
    char file[RN_PATH_MAX];
    char title[256];
    char text[RN_REPORT_TEXT_MAX];
    char results[RN_PATH_MAX];     /* where experiment runs live, default "results" */
    char experiments[RN_PATH_MAX]; /* where experiment files live, default the report's folder */
    struct rn_report_section *sections;
    int n_sections;
};

/* Parses and checks path; every error is one "file:line:col: error: ..." line
 * on errors (NULL: only the first, into err). results (NULL: the file's
 * `results` key) is where experiment runs live. On failure *rep is
 * freeable. */
int rn_report_load(struct rn_report *rep, const char *path, const char *results, FILE *errors,
                   int *n_errors, struct rn_error *err);
void rn_report_free(struct rn_report *rep);

/* The runs of rep in order of first use, each once (borrowed pointers into
 * rep); *n gets the count. Free the array. */
int rn_report_runs(const struct rn_report *rep, const char ***runs, int *n, struct rn_error *err);
/* For an experiment name: its run folder (<results>/<name>/latest) and its
 * experiment file; for a run folder: the folder and "" (no file known). */
void rn_report_locate(const struct rn_report *rep, const char *run, char *dir, size_t dir_size,
                      char *experiment, size_t exp_size);

struct rn_report_options {
    int vector; /* 1: copy (drawing when missing) the PDF and SVG versions too */
    FILE *log;  /* progress and warnings, or NULL */
};

struct rn_report_summary {
    int figures, figures_missing, tables, runs, runs_missing, runs_flagged;
    double run_seconds; /* the included runs' own durations (started..finished), summed */
};

/* Writes out_dir/index.html and out_dir/figures/. */
int rn_report_build(const struct rn_report *rep, const char *out_dir,
                    const struct rn_report_options *opt, struct rn_report_summary *sum,
                    struct rn_error *err);

#endif
