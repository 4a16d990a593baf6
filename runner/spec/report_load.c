/* spec/report_load.c - the report file (report.h): the spec loader's tree,
 * schemas and one-line errors, so a report file is checked like a spec. */
#include "internal.h"

#include <ctype.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "report.h"

#define MAX_SECTIONS 64
#define MAX_FIGURES 64
#define MAX_TABLES 16
#define MAX_ROWS 32

static const struct rn_key report_keys[] = {
    {"title", RN_KIND_STRING, 1, 0, NULL, 1, 0, NULL, "the page's title"},
    {"results", RN_KIND_STRING, 0, 0, "results", 1, 0, NULL,
     "the results root where experiment runs live (<results>/<experiment>/latest)"},
    {"experiments", RN_KIND_STRING, 0, 0, "", 1, 0, NULL,
     "the folder of the experiment files; default: the report file's folder"},
};
static const struct extra_key report_extra[] = {
    {"text", "string", "", "a paragraph under the title"},
    {"sections", "list", "", "the sections, in order"},
};
static const struct rn_key section_keys[] = {
    {"title", RN_KIND_STRING, 1, 0, NULL, 1, 0, NULL, "the section's heading"},
};
static const struct extra_key section_extra[] = {
    {"text", "string", "", "a paragraph under the heading"},
    {"figures", "list", "", "{run, figure, caption} mappings"},
    {"tables", "list", "", "{title, runs, metrics, control, epoch, caption} mappings"},
};
static const struct rn_key figure_keys[] = {
    {"run", RN_KIND_STRING, 1, 0, NULL, 1, 0, NULL,
     "an experiment name (its latest run) or a run folder (a path with a '/')"},
    {"figure", RN_KIND_STRING, 1, 0, NULL, 1, 0, NULL,
     "the figure's file name in the run's plots/, without extension (curves, gradcam, ...)"},
};
static const struct extra_key figure_extra[] = {
    {"caption", "string", "", "the caption (required): keep the study's figure number in it"},
};
static const struct rn_key table_keys[] = {
    {"title", RN_KIND_STRING, 1, 0, NULL, 1, 0, NULL, "the table's heading"},
    {"control", RN_KIND_STRING, 0, 0, "", 1, 0, NULL,
     "one of runs: adds each run's gain over it at equal epochs (last metric)"},
    {"epoch", RN_KIND_INT, 0, 0, NULL, 0, UNBOUNDED, NULL,
     "the epoch the metrics are read at; 0: each run's last"},
    {"sweep", RN_KIND_STRING, 0, 0, "", 1, 0, NULL,
     "a sweep folder (results/sweeps/task4): runs are then its groups (an experiment's name, "
     "with the overrides that vary besides the seed), each value the mean +- 95% CI over the "
     "group's completed cells, the gain over control Welch's interval"},
};
static const struct extra_key table_extra[] = {
    {"runs", "list", "", "the rows: experiment names or run folders (with sweep: its groups)"},
    {"metrics", "list", "[val/accuracy, test/accuracy]",
     "the columns: /metrics/<name> (an accuracy is shown in percent)"},
    {"caption", "string", "", "a line under the table"},
};

/* A string-valued extra key (absent: dst unchanged). */
static void extra_string(struct loader *L, const struct node *map, const char *key,
                         const char *where, char *dst, size_t size)
{
    const struct node *n = map_get(map, key, NULL);
    if (n)
        get_string(L, n, where, dst, size);
}

static void copy_str(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src);
}

static int report_cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The experiment names of rep's experiments folder (malloc'd), sorted, for
 * did you mean; returns the count (at most max). */
static int experiment_names(const struct rn_report *rep, char **out, int max)
{
    DIR *d = opendir(rep->experiments);
    int n = 0;
    struct dirent *de;
    while (d && n < max && (de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (len > 5 && strcmp(de->d_name + len - 5, ".yaml") == 0 &&
            (out[n] = strndup(de->d_name, len - 5)))
            n++;
    }
    if (d)
        closedir(d);
    qsort(out, (size_t)n, sizeof *out, report_cmp_names); /* readdir's order is arbitrary */
    return n;
}

/* A run named by its experiment needs its experiment file or its results;
 * a run folder (with a '/') may be missing: the page says so. */
static void check_run(struct loader *L, const struct rn_report *rep, const struct node *at,
                      const char *where, const char *run)
{
    if (!run[0] || strchr(run, '/'))
        return;
    char dir[RN_PATH_MAX], exp[RN_PATH_MAX];
    rn_report_locate(rep, run, dir, sizeof dir, exp, sizeof exp);
    if (access(exp, R_OK) == 0 || access(dir, F_OK) == 0)
        return;
    char *names[256], buf[300];
    int n = experiment_names(rep, names, 256);
    report(L, at, where,
           "unknown run '%s': no experiment file %s and no run %s (a run folder needs a "
           "'/')%s",
           run, exp, dir, suggest(buf, sizeof buf, run, (const char *const *)names, n));
    for (int i = 0; i < n; i++)
        free(names[i]);
}

/* A table column: /metrics/<group>/<name> of a run (test/accuracy,
 * train_eval/loss, sched/alpha). */
static void check_metric(struct loader *L, const struct node *at, const char *where, const char *m)
{
    static const char *const common[] = {
        "val/accuracy", "test/accuracy", "train/accuracy",      "val/loss",
        "test/loss",    "train/loss",    "val/colour_accuracy", "test/colour_accuracy"};
    const char *slash = strchr(m, '/');
    int ok = slash && slash > m && slash[1];
    for (const char *p = m; ok && *p; p++)
        ok = isalnum((unsigned char)*p) || *p == '_' || *p == '-' || *p == '.' || p == slash;
    if (ok)
        return;
    char buf[300];
    report(L, at, where,
           "expected a metric <group>/<name> as a run's /metrics holds it (test/accuracy, "
           "val/colour_accuracy, ...), got '%s'%s",
           m, suggest(buf, sizeof buf, m, common, COUNT(common)));
}

static void load_figure(struct loader *L, const struct rn_report *rep, const struct node *n,
                        const char *where, struct rn_report_figure *f)
{
    struct rn_values v;
    check_map(L, n, where, 0, figure_keys, COUNT(figure_keys), figure_extra, COUNT(figure_extra),
              &v);
    copy_str(f->run, sizeof f->run, v.str[0]);
    copy_str(f->figure, sizeof f->figure, v.str[1]);
    f->line = n->line;
    f->col = n->col;
    if (n->kind != NODE_MAP)
        return;
    const struct node *rn = map_get(n, "run", NULL);
    if (rn)
        check_run(L, rep, rn, where, f->run);
    const struct node *c = map_get(n, "caption", NULL);
    if (!c)
        report(L, n, where, "missing required key 'caption'");
    else
        get_string(L, c, where, f->caption, sizeof f->caption);
    if (strchr(f->figure, '/') || strchr(f->figure, '.'))
        report(L, key_node(n, "figure"), where,
               "expected a figure name without folder or extension (curves, gradcam_test), "
               "got '%s'",
               f->figure);
}

/* A list of strings into out (max items of size bytes); returns the count. */
static int string_list(struct loader *L, const struct node *n, const char *label, char *out,
                       size_t size, int max)
{
    if (check_list(L, n, label, max, "names"))
        return 0;
    for (int i = 0; i < n->n; i++)
        get_string(L, n->items[i], label, out + (size_t)i * size, size);
    return n->n;
}

static void load_table(struct loader *L, const struct rn_report *rep, const struct node *n,
                       const char *where, struct rn_report_table *t)
{
    struct rn_values v;
    check_map(L, n, where, 0, table_keys, COUNT(table_keys), table_extra, COUNT(table_extra), &v);
    copy_str(t->title, sizeof t->title, v.str[0]);
    copy_str(t->control, sizeof t->control, v.str[1]);
    t->epoch = (int)v.num[2];
    copy_str(t->sweep, sizeof t->sweep, v.str[3]);
    t->line = n->line;
    t->col = n->col;
    t->n_metrics = 2;
    copy_str(t->metrics[0], sizeof t->metrics[0], "val/accuracy");
    copy_str(t->metrics[1], sizeof t->metrics[1], "test/accuracy");
    if (n->kind != NODE_MAP)
        return;
    char label[320];
    snprintf(label, sizeof label, "%s: caption", where);
    extra_string(L, n, "caption", label, t->caption, sizeof t->caption);
    const struct node *m = map_get(n, "metrics", NULL);
    snprintf(label, sizeof label, "%s: metrics", where);
    if (m)
        t->n_metrics =
            string_list(L, m, label, &t->metrics[0][0], sizeof t->metrics[0], RN_REPORT_MAX_COLS);
    for (int i = 0; m && i < t->n_metrics; i++)
        if (m->items[i]->kind == NODE_SCALAR)
            check_metric(L, m->items[i], label, t->metrics[i]);
    const struct node *r = map_get(n, "runs", NULL);
    snprintf(label, sizeof label, "%s: runs", where);
    if (!r) {
        report(L, n, where, "missing required key 'runs'");
        return;
    }
    if (check_list(L, r, label, MAX_ROWS, "runs"))
        return;
    t->runs = calloc((size_t)r->n, sizeof *t->runs);
    if (!t->runs) {
        report_oom(L);
        return;
    }
    t->n_runs = string_list(L, r, label, &t->runs[0][0], sizeof t->runs[0], MAX_ROWS);
    for (int i = 0; !t->sweep[0] && i < t->n_runs; i++)
        if (r->items[i]->kind == NODE_SCALAR)
            check_run(L, rep, r->items[i], label, t->runs[i]);
    if (!t->control[0])
        return;
    for (int i = 0; i < t->n_runs; i++)
        if (strcmp(t->runs[i], t->control) == 0)
            return;
    char buf[200];
    const char *names[MAX_ROWS];
    for (int i = 0; i < t->n_runs; i++)
        names[i] = t->runs[i];
    report(L, key_node(n, "control"), where, "control '%s' is not one of the table's runs%s",
           t->control, suggest(buf, sizeof buf, t->control, names, t->n_runs));
}

/* items of the list key (figures or tables) of section map n; returns the count. */
static const struct node *section_list(struct loader *L, const struct node *n, const char *key,
                                       const char *where, int max)
{
    const struct node *l = map_get(n, key, NULL);
    char label[320];
    snprintf(label, sizeof label, "%s: %s", where, key);
    if (!l || check_list(L, l, label, max, key))
        return NULL;
    return l;
}

static void load_section(struct loader *L, const struct rn_report *rep, const struct node *n,
                         int index, struct rn_report_section *s)
{
    char where[300];
    const struct node *t = n->kind == NODE_MAP ? map_get(n, "title", NULL) : NULL;
    if (t && t->kind == NODE_SCALAR && !t->is_null)
        snprintf(where, sizeof where, "section '%.200s'", t->text);
    else
        snprintf(where, sizeof where, "section #%d", index + 1);
    struct rn_values v;
    check_map(L, n, where, 0, section_keys, COUNT(section_keys), section_extra,
              COUNT(section_extra), &v);
    copy_str(s->title, sizeof s->title, v.str[0]);
    if (n->kind != NODE_MAP)
        return;
    char label[320];
    snprintf(label, sizeof label, "%s: text", where);
    extra_string(L, n, "text", label, s->text, sizeof s->text);
    const struct node *figs = section_list(L, n, "figures", where, MAX_FIGURES);
    const struct node *tabs = section_list(L, n, "tables", where, MAX_TABLES);
    if (!map_get(n, "figures", NULL) && !map_get(n, "tables", NULL))
        report(L, n, where, "expected figures or tables (or both), got neither");
    if (figs && !(s->figures = calloc((size_t)figs->n, sizeof *s->figures)))
        figs = NULL, report_oom(L);
    if (tabs && !(s->tables = calloc((size_t)tabs->n, sizeof *s->tables)))
        tabs = NULL, report_oom(L);
    for (int i = 0; figs && i < figs->n; i++) {
        snprintf(label, sizeof label, "%s: figure #%d", where, i + 1);
        load_figure(L, rep, figs->items[i], label, &s->figures[s->n_figures++]);
    }
    for (int i = 0; tabs && i < tabs->n; i++) {
        snprintf(label, sizeof label, "%s: table #%d", where, i + 1);
        load_table(L, rep, tabs->items[i], label, &s->tables[s->n_tables++]);
    }
}

static void check_report(struct loader *L, const struct node *root, const char *results,
                         struct rn_report *rep)
{
    struct rn_values v;
    check_map(L, root, "", 0, report_keys, COUNT(report_keys), report_extra, COUNT(report_extra),
              &v);
    copy_str(rep->title, sizeof rep->title, v.str[0]);
    copy_str(rep->results, sizeof rep->results, results ? results : v.str[1]);
    if (v.str[2][0]) {
        copy_str(rep->experiments, sizeof rep->experiments, v.str[2]);
    } else {
        const char *slash = strrchr(rep->file, '/');
        snprintf(rep->experiments, sizeof rep->experiments, "%.*s",
                 slash ? (int)(slash - rep->file) : 1, slash ? rep->file : ".");
    }
    extra_string(L, root, "text", "text", rep->text, sizeof rep->text);
    const struct node *secs = map_get(root, "sections", NULL);
    if (!secs) {
        report(L, root, "", "missing required key 'sections'");
        return;
    }
    if (check_list(L, secs, "sections", MAX_SECTIONS, "sections"))
        return;
    rep->sections = calloc((size_t)secs->n, sizeof *rep->sections);
    if (!rep->sections) {
        report_oom(L);
        return;
    }
    for (int i = 0; i < secs->n; i++)
        load_section(L, rep, secs->items[i], i, &rep->sections[rep->n_sections++]);
}

int rn_report_load(struct rn_report *rep, const char *path, const char *results, FILE *errors,
                   int *n_errors, struct rn_error *err)
{
    memset(rep, 0, sizeof *rep);
    struct loader L = {.errors = errors, .err = err};
    struct node *root = NULL;
    if (n_errors)
        *n_errors = 0;
    if (strlen(path) >= sizeof rep->file)
        report_pos(&L, path, 0, 0, "path longer than %d characters", RN_PATH_MAX - 1);
    else if ((root = load_tree(&L, path, NULL, path)) && !L.n_errors) {
        snprintf(rep->file, sizeof rep->file, "%s", path);
        check_report(&L, root, results, rep);
    }
    node_free(root);
    flush_diags(&L);
    for (int i = 0; i < L.n_files; i++)
        free(L.files[i]);
    free(L.files);
    while (L.depth > 0)
        pop_frame(&L);
    if (n_errors)
        *n_errors = L.n_errors;
    return L.n_errors ? -1 : 0;
}

void rn_report_free(struct rn_report *rep)
{
    if (!rep)
        return;
    for (int i = 0; i < rep->n_sections; i++) {
        struct rn_report_section *s = &rep->sections[i];
        for (int j = 0; j < s->n_tables; j++)
            free(s->tables[j].runs);
        free(s->figures);
        free(s->tables);
    }
    free(rep->sections);
    memset(rep, 0, sizeof *rep);
}
