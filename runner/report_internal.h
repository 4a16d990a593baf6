/* report_internal.h - what report_data.c (gathering) and report_html.c (the
 * page) share; not for other modules. */
#ifndef RN_REPORT_INTERNAL_H
#define RN_REPORT_INTERNAL_H

#include <limits.h>
#include <stdio.h>

#include "report.h"

struct rn_results;

/* One run the report uses. */
struct report_run {
    const char *name;             /* as the report names it (borrowed) */
    char dir[RN_PATH_MAX];        /* the folder as located */
    char real[PATH_MAX];          /* its real path ("" when missing) */
    char experiment[RN_PATH_MAX]; /* the experiment file that makes it, or "" */
    char key[RN_NAME_MAX];        /* its folder under figures/ */
    int exists;
    struct rn_results *res; /* open run.h5, or NULL */
    char status[32], started[64], finished[64], git[64], exp_name[RN_NAME_MAX];
    char device[128];
    char *yaml;      /* /config yaml, or NULL */
    char stale[768]; /* why the run may not be what the file says now, or "" */
    double seconds;  /* finished - started, or -1 */
    int drew_pdf, drew_svg;
};

/* Locates and reads name's run (a missing run is not an error: exists 0). */
int report_run_open(const struct rn_report *rep, const char *name, struct report_run *r);
void report_run_close(struct report_run *r);
/* 1: failed, interrupted, running, unreadable or stale. */
int report_run_flagged(const struct report_run *r);
/* /metrics/<metric> at epoch (<= 0: the last row): *value and the row's epoch. -1: none. */
int report_metric_at(struct report_run *r, const char *metric, int epoch, double *value,
                     int *at_epoch);
/* Copies plots/<figure>.png (vector: and .pdf, .svg, drawn when missing) into
 * out_dir/figures/<key>/; have[png, pdf, svg] says which exist. */
int report_copy_figure(struct report_run *r, const char *figure, const char *out_dir, int vector,
                       int have[3], FILE *log, struct rn_error *err);
/* The run's PNG figure names, comma-separated, into out; returns the count. */
int report_list_figures(const struct report_run *r, char *out, size_t size);
int report_cmp_str(const void *a, const void *b);
/* s with &, <, >, " and ' escaped for HTML. */
void report_esc(FILE *f, const char *s);
/* 1 for a metric shown in percent (its name ends in "accuracy"). */
int report_is_fraction(const char *metric);
/* <table> and its header row: lead (the first <th>s), a column per metric
 * (its name and suffix), and the gain over the control when there is one. */
void report_table_head(FILE *f, const struct rn_report_table *t, const char *lead,
                       const char *suffix);
/* The rows of a table with a sweep (report_sweep.c): <table> .. </table>. */
int report_sweep_table(FILE *f, const struct rn_report *rep, const struct rn_report_table *t);

#endif
