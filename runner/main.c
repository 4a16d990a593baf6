/* main.c - the runner's command line. The only place that exits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "compare.h"
#include "plot.h"
#include "report.h"
#include "results.h"
#include "rn_git.h"
#include "spec.h"

#define MAX_OVERRIDES 64

static const char usage[] =
    "usage: runner EXPERIMENT.yaml [key.path=value ...] [--device auto|cpu|cuda] [--seed N]\n"
    "                              [--out DIR] [--threads N] [--format png|pdf|svg] [--quiet]\n"
    "                              [--deterministic] [--resume RUN_DIR [--force]]\n"
    "       runner resume RUN_DIR [--force] [--quiet] [--format png|pdf|svg]\n"
    "       runner validate [--summary] EXPERIMENT.yaml [key.path=value ...]\n"
    "       runner summary EXPERIMENT.yaml [key.path=value ...]\n"
    "       runner plot RUN_DIR [--format png|pdf|svg]\n"
    "       runner compare RUN_DIR... --out DIR [--epoch N] [--format png|pdf|svg]\n"
    "                      [--metric NAME[=CAPTION]]... [--bar NAME[=CAPTION]]... [--control RUN]\n"
    "       runner sweep SWEEP.yaml [--launcher local|slurm] [-j N] [--threads T] [--dry-run]\n"
    "                    [--retry-failed] [--fail-fast] [--slurm-opt OPT]... [--wait]\n"
    "       runner cell SWEEP_DIR INDEX [--threads T]\n"
    "       runner table SWEEP_OR_RESULTS_DIR [--metric M]... [--md] [--csv] [--plot] [--out DIR]\n"
    "       runner report REPORT.yaml [--out DIR] [--results DIR] [--run-missing] [--no-vector]\n"
    "                     [--threads N] [--device D] [--quiet]\n"
    "       runner --help | --version | --help-spec\n"
    "\n"
    "Runs a declarative experiment: trains (or loads) the model of the spec, evaluates it,\n"
    "runs its analyses, writes everything to RUN_DIR/run.h5 and draws RUN_DIR/plots/*.png.\n"
    "Without --out, RUN_DIR is <out>/<name>/<date>-<time>-s<seed> (out: results by default)\n"
    "and <out>/<name>/latest points at the newest run.\n"
    "\n"
    "  key.path=value   override any key of the spec (train.epochs=2 data.bias=0.99)\n"
    "  --device D       auto (default: cuda when built with it and a GPU is present), cpu, cuda\n"
    "  --seed N         the run seed (data colouring, init, shuffling, dropout)\n"
    "  --out DIR        write the run into DIR exactly\n"
    "  --threads N      CPU threads (default: all cores)\n"
    "  --format F       figure format: png (default), pdf or svg\n"
    "  --quiet          no progress output\n"
    "  --deterministic  deterministic GPU algorithms (spec key deterministic: true)\n"
    "  --resume RUN_DIR continue RUN_DIR from its last checkpoint (checkpoint.h5); refused\n"
    "                   when the spec differs from the one the run recorded, unless --force\n"
    "  --help-spec      print the reference of every spec key\n"
    "  --metric M       (compare) a per-epoch metric to draw, one panel each (default:\n"
    "                   test/accuracy, and test/colour_accuracy where a run has it)\n"
    "  --bar M          (compare) a metric for the bars at equal epochs (default: val/accuracy,\n"
    "                   test/accuracy); =CAPTION after M titles its panel or bar\n"
    "  --control RUN    (compare) the run drawn dark grey and dashed (a RUN_DIR or its label)\n"
    "  --results DIR    (report) where experiment runs live (default: the report file's\n"
    "                   results key, else results): <DIR>/<experiment>/latest\n"
    "  --run-missing    (report) run the experiments of the runs that do not exist first\n"
    "                   (into the results root, with --threads and --device)\n"
    "  --no-vector      (report) link only the PNGs (default: PDF and SVG too, drawn if missing)\n"
    "  --summary        (validate) also print the model as a table: node, type, output shape,\n"
    "                   parameters, forward MFLOP per image; `runner summary` is the same\n"
    "\n"
    "sweep: every cell of SWEEP.yaml (experiments x list x grid of overrides) checked, then\n"
    "run, each into <out>/<name>/cells/<hash>/; done cells are skipped, failed and\n"
    "interrupted ones rerun. local: -j cells at once (default cores / threads), --threads\n"
    "each (default 1); slurm: one job array (-j: its %% throttle), --slurm-opt passed to\n"
    "sbatch, --wait follows it. --dry-run prints the cells and their state; --retry-failed\n"
    "runs only failed and interrupted cells; --fail-fast stops at the first failure.\n"
    "cell: runs one cell of a planned sweep (what a Slurm array task runs).\n"
    "table: per group of runs (everything but the seed) n, mean, sd and 95%% Student-t\n"
    "interval of each metric (NAME, NAME@EPOCH or /analyses/...[i,j]; default val/accuracy\n"
    "and test/accuracy); --plot draws them with error bars.\n"
    "\n"
    "resume: continues RUN_DIR with the spec it recorded (run from the same folder).\n"
    "\n"
    "Exit status: 0 success, 1 error (one line on stderr), 2 bad command line, 130 interrupted\n"
    "(SIGINT), 143 terminated (SIGTERM); an interrupted run keeps a checkpoint to resume from.\n";

static int fail(const char *msg)
{
    fprintf(stderr, "runner: %s\n", msg);
    return 1;
}

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "runner: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nrun 'runner --help' for usage\n");
    return 2;
}

struct cli {
    const char *spec;
    const char *overrides[MAX_OVERRIDES + 8];
    int n_overrides;
    const char *out, *format;
    const char *resume; /* --resume RUN_DIR */
    int force;          /* --force */
    int quiet;
    int summary;       /* --summary: validate prints the model table */
    char owned[4][64]; /* storage for overrides made from flags */
    int n_owned;
};

static int add_flag_override(struct cli *c, const char *key, const char *value)
{
    if (c->n_owned >= 4 || c->n_overrides >= MAX_OVERRIDES)
        return usage_error("%s", "too many overrides");
    snprintf(c->owned[c->n_owned], sizeof c->owned[0], "%s=%s", key, value);
    c->overrides[c->n_overrides++] = c->owned[c->n_owned++];
    return 0;
}

static int parse_args(struct cli *c, int argc, char **argv, int first)
{
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        const char *flags_with_value[] = {"--device",  "--seed",   "--out",
                                          "--threads", "--format", "--resume"};
        int is_flag = 0;
        for (int f = 0; f < 6; f++)
            if (strcmp(a, flags_with_value[f]) == 0) {
                if (i + 1 >= argc)
                    return usage_error("%s needs a value", a);
                const char *v = argv[++i];
                if (f == 0 && strcmp(v, "auto") && strcmp(v, "cpu") && strcmp(v, "cuda"))
                    return usage_error("--device expects auto, cpu or cuda, got '%s'", v);
                if (f == 4 && strcmp(v, "png") && strcmp(v, "pdf") && strcmp(v, "svg"))
                    return usage_error("--format expects png, pdf or svg, got '%s'", v);
                if (f == 0 && add_flag_override(c, "device", v))
                    return 2;
                if (f == 1 && add_flag_override(c, "seed", v))
                    return 2;
                if (f == 2)
                    c->out = v;
                if (f == 3 && add_flag_override(c, "threads", v))
                    return 2;
                if (f == 4)
                    c->format = v;
                if (f == 5)
                    c->resume = v;
                is_flag = 1;
            }
        if (is_flag)
            continue;
        if (strcmp(a, "--quiet") == 0) {
            c->quiet = 1;
        } else if (strcmp(a, "--force") == 0) {
            c->force = 1;
        } else if (strcmp(a, "--summary") == 0) {
            if (strcmp(argv[1], "validate") != 0 && strcmp(argv[1], "summary") != 0)
                return usage_error("%s goes with validate: runner validate --summary "
                                   "EXPERIMENT.yaml",
                                   a);
            c->summary = 1;
        } else if (strcmp(a, "--deterministic") == 0) {
            if (add_flag_override(c, "deterministic", "true"))
                return 2;
        } else if (a[0] == '-' && a[1] == '-') {
            return usage_error("unknown option '%s'", a);
        } else if (strchr(a, '=')) {
            if (c->n_overrides >= MAX_OVERRIDES)
                return usage_error("%s", "too many overrides");
            c->overrides[c->n_overrides++] = a;
        } else if (!c->spec) {
            c->spec = a;
        } else {
            return usage_error("unexpected argument '%s' (overrides look like key.path=value)", a);
        }
    }
    c->overrides[c->n_overrides] = NULL;
    return 0;
}

static int cmd_validate(int argc, char **argv)
{
    struct cli c = {0};
    int rc = parse_args(&c, argc, argv, 2);
    if (rc)
        return rc;
    if (strcmp(argv[1], "summary") == 0)
        c.summary = 1;
    if (!c.spec)
        return usage_error("%s needs an EXPERIMENT.yaml", argv[1]);
    struct rn_spec *sp = calloc(1, sizeof *sp); /* about 1 MB: not on the stack */
    if (!sp)
        return fail("out of memory");
    struct rn_error err;
    int n_errors = 0;
    if (rn_spec_load(sp, c.spec, c.overrides, stderr, &n_errors, &err)) {
        if (n_errors > 1)
            fprintf(stderr, "%d errors\n", n_errors);
        rn_spec_free(sp);
        free(sp);
        return 1;
    }
    struct rn_cli_model_info info;
    char *table = NULL; /* the summary table, printed after the ok line */
    size_t table_len = 0;
    FILE *tf = c.summary ? open_memstream(&table, &table_len) : NULL;
    if (rn_cli_check_model(sp, tf, &info, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        rc = 1;
    } else if (info.has_model) {
        printf("%s: ok: model '%s', %d nodes, %zu trainable parameters, output (%d,%d,%d)\n",
               c.spec, sp->model.name, info.n_nodes, info.n_trainable, info.out_c, info.out_h,
               info.out_w);
    } else {
        printf("%s: ok: data only, %d analyses\n", c.spec, sp->n_analyses);
        if (c.summary)
            rc = fail("--summary: the spec has no model to summarise");
    }
    if (tf) {
        fclose(tf);
        if (!rc && table)
            fputs(table, stdout);
        free(table);
    }
    rn_spec_free(sp);
    free(sp);
    return rc;
}

static int cmd_plot(int argc, char **argv)
{
    struct cli c = {0};
    int rc = parse_args(&c, argc, argv, 2);
    if (rc)
        return rc;
    if (!c.spec)
        return usage_error("%s", "plot needs a RUN_DIR");
    struct rn_error err;
    int n = 0;
    if (rn_plot_run(c.spec, c.format ? c.format : "png", &n, &err))
        return fail(err.msg);
    printf("%s/plots: %d figures\n", c.spec, n);
    return 0;
}

/* The metrics of --metric (or --bar) options, their text kept here. */
struct metric_args {
    struct rn_compare_metric m[RN_COMPARE_MAX_METRICS];
    char text[RN_COMPARE_MAX_METRICS][256];
    int n;
};

/* Adds opt's value NAME[=CAPTION] to a. */
static int compare_metric(struct metric_args *a, const char *opt, const char *arg)
{
    if (a->n >= RN_COMPARE_MAX_METRICS) {
        char msg[64];
        snprintf(msg, sizeof msg, "compare: at most %d %s options", RN_COMPARE_MAX_METRICS, opt);
        return usage_error("%s", msg);
    }
    char *t = a->text[a->n];
    snprintf(t, sizeof a->text[0], "%s", arg);
    char *eq = strchr(t, '=');
    if (eq)
        *eq = 0;
    if (!t[0])
        return usage_error("compare: %s needs a metric name (test/accuracy, val/loss, ...)", opt);
    a->m[a->n++] = (struct rn_compare_metric){t, eq ? eq + 1 : NULL, 0, 0};
    return 0;
}

/* runner compare RUN_DIR... --out DIR [--epoch N] [--format F] [--metric M[=CAPTION]]...
 *                [--bar M[=CAPTION]]... [--control RUN] */
static int cmd_compare(int argc, char **argv)
{
    const char *out = NULL;
    struct rn_compare_options opt = {.format = "png"};
    struct metric_args lines = {0}, bars = {0};
    int n = 0, rc = 0;
    const char **runs = calloc((size_t)argc, sizeof *runs);
    if (!runs)
        return fail("out of memory");
    for (int i = 2; i < argc && !rc; i++) {
        const char *a = argv[i];
        int has_value = !strcmp(a, "--out") || !strcmp(a, "--epoch") || !strcmp(a, "--format") ||
                        !strcmp(a, "--metric") || !strcmp(a, "--bar") || !strcmp(a, "--control");
        if (has_value && i + 1 >= argc) {
            rc = usage_error("compare: %s needs a value", a);
        } else if (!strcmp(a, "--out")) {
            out = argv[++i];
        } else if (!strcmp(a, "--epoch")) {
            opt.epoch = atoi(argv[++i]);
        } else if (!strcmp(a, "--format")) {
            opt.format = argv[++i];
        } else if (!strcmp(a, "--metric")) {
            rc = compare_metric(&lines, a, argv[++i]);
        } else if (!strcmp(a, "--bar")) {
            rc = compare_metric(&bars, a, argv[++i]);
        } else if (!strcmp(a, "--control")) {
            opt.control = argv[++i];
        } else if (a[0] == '-') {
            rc = usage_error("compare: unknown option '%s'", a);
        } else {
            runs[n++] = a;
        }
    }
    if (!rc && (!out || n == 0))
        rc = usage_error("%s", "compare needs RUN_DIR... and --out DIR");
    if (rc) {
        free(runs);
        return rc;
    }
    opt.lines = lines.n ? lines.m : NULL;
    opt.n_lines = lines.n;
    opt.bars = bars.n ? bars.m : NULL;
    opt.n_bars = bars.n;
    struct rn_error err;
    rc = rn_compare(runs, n, out, &opt, &err);
    free(runs);
    if (rc)
        return fail(err.msg);
    printf("%s: compare_epochs.%s, compare_summary.%s, compare.txt\n", out, opt.format, opt.format);
    return 0;
}

static int cmd_run(int argc, char **argv)
{
    struct cli c = {0};
    int rc = parse_args(&c, argc, argv, 1);
    if (rc)
        return rc;
    if (!c.spec)
        return usage_error("%s", "no EXPERIMENT.yaml given");
    struct rn_spec *sp = calloc(1, sizeof *sp); /* about 1 MB: not on the stack */
    if (!sp)
        return fail("out of memory");
    struct rn_error err;
    int n_errors = 0;
    if (rn_spec_load(sp, c.spec, c.overrides, stderr, &n_errors, &err)) {
        if (n_errors > 1)
            fprintf(stderr, "%d errors\n", n_errors);
        rn_spec_free(sp);
        free(sp);
        return 1;
    }
    if (c.force && !c.resume)
        return usage_error("%s", "--force goes with --resume RUN_DIR");
    struct rn_cli_run_options o = {c.out, c.format, c.quiet, c.resume, c.force};
    rc = rn_cli_run_spec(sp, &o, NULL, 0);
    rn_spec_free(sp);
    free(sp);
    return rc;
}

/* runner resume RUN_DIR [--force] [--quiet] [--format F] */
static int cmd_resume(int argc, char **argv)
{
    struct cli c = {0};
    int rc = parse_args(&c, argc, argv, 2);
    if (rc)
        return rc;
    if (!c.spec)
        return usage_error("%s", "resume needs a RUN_DIR");
    if (c.n_overrides || c.out || c.resume)
        return usage_error("%s", "resume takes RUN_DIR and --force, --quiet, --format only "
                                 "(the spec is the one the run recorded)");
    struct rn_cli_run_options o = {NULL, c.format, c.quiet, c.spec, c.force};
    return rn_cli_resume(c.spec, &o);
}

/* runner report REPORT.yaml [--out DIR] [--results DIR] [--run-missing]
 * [--no-vector] [--threads N] [--device D] [--quiet] */
static int cmd_report(int argc, char **argv)
{
    const char *file = NULL, *out = "results/report", *device = "auto", *results = NULL;
    int run_missing = 0, vector = 1, threads = 0, quiet = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        int takes = !strcmp(a, "--out") || !strcmp(a, "--threads") || !strcmp(a, "--device") ||
                    !strcmp(a, "--results");
        if (takes && i + 1 >= argc)
            return usage_error("report: %s needs a value", a);
        if (!strcmp(a, "--out"))
            out = argv[++i];
        else if (!strcmp(a, "--results"))
            results = argv[++i];
        else if (!strcmp(a, "--threads"))
            threads = atoi(argv[++i]);
        else if (!strcmp(a, "--device"))
            device = argv[++i];
        else if (!strcmp(a, "--run-missing"))
            run_missing = 1;
        else if (!strcmp(a, "--no-vector"))
            vector = 0;
        else if (!strcmp(a, "--quiet"))
            quiet = 1;
        else if (a[0] == '-' || file)
            return usage_error("report: unexpected argument '%s'", a);
        else
            file = a;
    }
    if (!file)
        return usage_error("%s", "report needs a REPORT.yaml");
    struct rn_report rep;
    struct rn_error err;
    int n_errors = 0;
    if (rn_report_load(&rep, file, results, stderr, &n_errors, &err)) {
        if (n_errors > 1)
            fprintf(stderr, "%d errors\n", n_errors);
        rn_report_free(&rep);
        return 1;
    }
    const char **runs = NULL;
    int n = 0, rc = 0;
    if (rn_report_runs(&rep, &runs, &n, &err)) {
        rn_report_free(&rep);
        return fail(err.msg);
    }
    for (int i = 0; run_missing && i < n && !rc; i++) {
        char dir[RN_PATH_MAX], exp[RN_PATH_MAX], h5[RN_PATH_MAX + 16];
        rn_report_locate(&rep, runs[i], dir, sizeof dir, exp, sizeof exp);
        snprintf(h5, sizeof h5, "%s/run.h5", dir);
        if (access(h5, R_OK) == 0 || !exp[0])
            continue;
        if (!quiet)
            fprintf(stderr, "report: %s does not exist: running %s\n", dir, exp);
        int status = 0;
        if (rn_cli_spawn_runner(exp, device, threads, rep.results, quiet, &status))
            rc = 1;
        else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            fprintf(stderr, "report: %s failed; the report lists its run as it stands\n", exp);
    }
    free(runs);
    struct rn_report_options opt = {.vector = vector, .log = quiet ? NULL : stderr};
    struct rn_report_summary sum;
    if (!rc && rn_report_build(&rep, out, &opt, &sum, &err))
        rc = fail(err.msg);
    if (!rc)
        printf("%s/index.html: %d figures (%d missing), %d tables, %d runs (%d missing, "
               "%d flagged); the runs took %.1f min in all\n",
               out, sum.figures, sum.figures_missing, sum.tables, sum.runs, sum.runs_missing,
               sum.runs_flagged, sum.run_seconds / 60);
    rn_report_free(&rep);
    return rc;
}

/* OpenMP threads: the runner's kernels, oneDNN's primitives and the
 * OpenBLAS calls all run on libgomp's one pool, sized by --threads
 * (cli_run.c). A libgomp thread that waits spins ~300,000 iterations before
 * it sleeps; beside another process on the same cores that spinning takes
 * the time the neighbour needs (two runners side by side each slowed ~2-10x,
 * see README "Threads"). libgomp reads OMP_WAIT_POLICY when it is loaded,
 * before main, so the runner sets it to passive and executes itself again,
 * once. An OMP_WAIT_POLICY or GOMP_SPINCOUNT already set is kept
 * (OMP_WAIT_POLICY=active gives the spinning back). */
static void passive_openmp_threads(char **argv)
{
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT"))
        return;
    char self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0 || setenv("OMP_WAIT_POLICY", "passive", 1) != 0)
        return;
    self[len] = '\0';
    execv(self, argv);
    /* exec failed: run on, with spinning threads */
}

int main(int argc, char **argv)
{
    passive_openmp_threads(argv);
    rn_results_init();
    if (argc < 2) {
        fputs(usage, stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(usage, stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("runner %s (%s)\n", RN_VERSION, RN_GIT_COMMIT);
        return 0;
    }
    if (strcmp(argv[1], "--help-spec") == 0) {
        rn_spec_write_reference(stdout);
        return 0;
    }
    if (strcmp(argv[1], "validate") == 0 && argc == 3 && rn_cli_is_sweep_file(argv[2]))
        return rn_cli_validate_sweep(argv[2]);
    if (strcmp(argv[1], "validate") == 0 || strcmp(argv[1], "summary") == 0)
        return cmd_validate(argc, argv);
    if (strcmp(argv[1], "sweep") == 0)
        return rn_cli_sweep(argc, argv);
    if (strcmp(argv[1], "cell") == 0)
        return rn_cli_cell(argc, argv);
    if (strcmp(argv[1], "table") == 0)
        return rn_cli_table(argc, argv);
    if (strcmp(argv[1], "plot") == 0)
        return cmd_plot(argc, argv);
    if (strcmp(argv[1], "compare") == 0)
        return cmd_compare(argc, argv);
    if (strcmp(argv[1], "report") == 0)
        return cmd_report(argc, argv);
    if (strcmp(argv[1], "resume") == 0)
        return cmd_resume(argc, argv);
    return cmd_run(argc, argv);
}
