/* main.c - the runner's command line. The only place that exits. */
#include <cblas.h>
#include <omp.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "analysis.h"
#include "backend.h"
#include "compare.h"
#include "graph.h"
#include "plot.h"
#include "report.h"
#include "rn_git.h"
#include "spec.h"
#include "summary.h"
#include "train.h"

#define MAX_OVERRIDES 64

extern char **environ;

static const char usage[] =
    "usage: runner EXPERIMENT.yaml [key.path=value ...] [--device auto|cpu|cuda] [--seed N]\n"
    "                              [--out DIR] [--threads N] [--format png|pdf|svg] [--quiet]\n"
    "                              [--deterministic]\n"
    "       runner validate [--summary] EXPERIMENT.yaml [key.path=value ...]\n"
    "       runner summary EXPERIMENT.yaml [key.path=value ...]\n"
    "       runner plot RUN_DIR [--format png|pdf|svg]\n"
    "       runner compare RUN_DIR... --out DIR [--epoch N] [--format png|pdf|svg]\n"
    "                      [--metric NAME[=CAPTION]]... [--bar NAME[=CAPTION]]... [--control RUN]\n"
    "       runner report REPORT.yaml [--out DIR] [--run-missing] [--no-vector] [--threads N]\n"
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
    "  --help-spec      print the reference of every spec key\n"
    "  --metric M       (compare) a per-epoch metric to draw, one panel each (default:\n"
    "                   test/accuracy, and test/colour_accuracy where a run has it)\n"
    "  --bar M          (compare) a metric for the bars at equal epochs (default: val/accuracy,\n"
    "                   test/accuracy); =CAPTION after M titles its panel or bar\n"
    "  --control RUN    (compare) the run drawn dark grey and dashed (a RUN_DIR or its label)\n"
    "  --run-missing    (report) run the experiments of the runs that do not exist first\n"
    "  --no-vector      (report) link only the PNGs (default: PDF and SVG too, drawn if missing)\n"
    "  --summary        (validate) also print the model as a table: node, type, output shape,\n"
    "                   parameters, forward MFLOP per image; `runner summary` is the same\n"
    "\n"
    "Exit status: 0 success, 1 error (one line on stderr), 2 bad command line, 130 interrupted.\n";

static void on_signal(int sig)
{
    (void)sig;
    rn_interrupted = 1;
}

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
        const char *flags_with_value[] = {"--device", "--seed", "--out", "--threads", "--format"};
        int is_flag = 0;
        for (int f = 0; f < 5; f++)
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
                is_flag = 1;
            }
        if (is_flag)
            continue;
        if (strcmp(a, "--quiet") == 0) {
            c->quiet = 1;
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

static int set_threads(const struct rn_spec *s)
{
    int n = s->threads > 0 ? s->threads : omp_get_num_procs();
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
    return n;
}

/* Resolves spec `device`: cuda must work or it is an error; auto takes the
 * GPU when this build has the CUDA backend and a device answers, and says
 * so when it falls back to the CPU. */
static int check_device(const struct rn_spec *s, int quiet, struct rn_run_options *opt)
{
    opt->device = RN_DEVICE_CPU;
    opt->device_desc[0] = '\0';
    if (strcmp(s->device, "cpu") == 0)
        return 0;
    struct rn_error err = {{0}};
    char desc[sizeof opt->device_desc];
    if (rn_cuda_probe(desc, sizeof desc, &err) == 0) {
        opt->device = RN_DEVICE_CUDA;
        snprintf(opt->device_desc, sizeof opt->device_desc, "%s", desc);
        rn_cuda_set_deterministic(s->deterministic);
        return 0;
    }
    if (strcmp(s->device, "cuda") == 0) {
        fprintf(stderr, "runner: --device cuda: %s; use --device cpu or auto\n", err.msg);
        return 1;
    }
    if (!quiet && rn_backend_cuda())
        fprintf(stderr, "runner: no usable GPU (%s); running on the CPU\n", err.msg);
    return 0;
}

/* load.if_missing: train — load the named run when it exists, otherwise
 * train with the spec's train section. Decided here, once, and said. */
static void resolve_load(struct rn_spec *sp, int quiet)
{
    if (!sp->load.run[0] || !sp->has_train || !sp->load.train_if_missing)
        return;
    char file[RN_PATH_MAX + 16];
    struct stat st;
    if (stat(sp->load.run, &st) == 0 && S_ISDIR(st.st_mode))
        snprintf(file, sizeof file, "%s/run.h5", sp->load.run);
    else
        snprintf(file, sizeof file, "%s", sp->load.run);
    if (access(file, R_OK) == 0) {
        sp->has_train = 0;
        if (!quiet)
            fprintf(stderr, "%s: loading the model of %s\n", sp->name, file);
    } else {
        if (!quiet)
            fprintf(stderr, "%s: %s does not exist: training instead (load.if_missing: train)\n",
                    sp->name, file);
        sp->load.run[0] = 0;
    }
}

/* Runs `runner exp --device device [--threads n] [--quiet]` as a child (this
 * executable) and waits; *status gets its wait status. 1 when it cannot run. */
static int spawn_runner(const char *exp, const char *device, int threads, int quiet, int *status)
{
    char self[RN_PATH_MAX], nthreads[32];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0)
        return fail("cannot find the runner's own executable (/proc/self/exe)");
    self[len] = '\0';
    snprintf(nthreads, sizeof nthreads, "%d", threads);
    char *args[10] = {self, (char *)exp, "--device", (char *)device};
    int na = 4;
    if (threads > 0) {
        args[na++] = "--threads";
        args[na++] = nthreads;
    }
    if (quiet)
        args[na++] = "--quiet";
    args[na] = NULL;
    pid_t pid;
    fflush(stderr);
    if (posix_spawn(&pid, self, NULL, NULL, args, environ) != 0 ||
        waitpid(pid, status, 0) != pid) {
        fprintf(stderr, "runner: cannot run %s %s\n", self, exp);
        return 1;
    }
    return 0;
}

/* models[].if_missing: EXPERIMENT.yaml — runs the experiment that makes a
 * model another run's analysis compares, before this run, when its run does
 * not exist yet: the runner itself, as a child, with this run's threads,
 * device and quietness. */
static int make_missing_models(const struct rn_spec *sp, int quiet)
{
    for (int i = 0; i < sp->n_analyses; i++) {
        const struct rn_spec_analysis *a = &sp->analyses[i];
        int key = -1;
        for (int k = 0; k < a->type->n_keys; k++)
            key = strcmp(a->type->keys[k].key, "models") == 0 ? k : key;
        for (const char *p = key >= 0 ? a->v.str[key] : ""; *p;) {
            char name[RN_NAME_MAX], path[RN_PATH_MAX], model[RN_NAME_MAX], exp[RN_PATH_MAX];
            char item[RN_STR_MAX], file[RN_PATH_MAX + 16];
            size_t span = strcspn(p, ";");
            snprintf(item, sizeof item, "%.*s", (int)span, p);
            p += span + (p[span] == ';');
            if (sscanf(item, "%95s %511s %95s %511s", name, path, model, exp) != 4 ||
                strcmp(exp, "skip") == 0 || strcmp(path, "self") == 0)
                continue;
            struct stat st;
            if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
                snprintf(file, sizeof file, "%s/run.h5", path);
            else
                snprintf(file, sizeof file, "%s", path);
            if (access(file, R_OK) == 0)
                continue;
            if (access(exp, R_OK) != 0) {
                fprintf(stderr,
                        "%s:%d:%d: error: analysis '%s': model '%s': %s does not exist "
                        "and its if_missing experiment %s cannot be read\n",
                        a->file, a->line, a->col, a->name, name, path, exp);
                return 1;
            }
            if (!quiet)
                fprintf(stderr,
                        "%s: model '%s' of analysis '%s': %s does not exist: running %s "
                        "first (if_missing)\n",
                        sp->name, name, a->name, path, exp);
            int status = 0;
            if (spawn_runner(exp, sp->device, sp->threads, quiet, &status))
                return 1;
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                fprintf(stderr, "runner: %s (making model '%s' of analysis '%s') failed\n", exp,
                        name, a->name);
                return WIFEXITED(status) && WEXITSTATUS(status) == 130 ? 130 : 1;
            }
            if (access(file, R_OK) != 0) {
                fprintf(stderr,
                        "%s:%d:%d: error: analysis '%s': model '%s': %s ran but %s still "
                        "does not exist; name its run (results/<name>/latest) in run:\n",
                        a->file, a->line, a->col, a->name, name, exp, path);
                return 1;
            }
        }
    }
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
    if (sp->has_model) {
        struct rn_graph g;
        struct rn_shape in = {sp->data.colouring == RN_COLOURING_NONE ? 1 : 3, 28, 28};
        if (rn_graph_build(&g, &sp->model, in, 1, &err)) {
            fprintf(stderr, "%s\n", err.msg);
            rn_spec_free(sp);
            free(sp);
            return 1;
        }
        /* the train section's node names (groups, losses, bind, set) need the graph */
        struct rn_program prog;
        if (sp->has_train && rn_program_init(&prog, &sp->train, &g, RN_N_COLOURS, 1, &err) != 0) {
            fprintf(stderr, "%s\n", err.msg);
            rn_graph_free(&g);
            rn_spec_free(sp);
            free(sp);
            return 1;
        }
        int logits = sp->has_train ? prog.heads[prog.primary].node : g.n_nodes - 1;
        if (sp->has_train)
            rn_program_free(&prog);
        if (rn_analyses_check(sp, &g, logits, &err)) { /* the nodes analyses name */
            fprintf(stderr, "%s\n", err.msg);
            rn_graph_free(&g);
            rn_spec_free(sp);
            free(sp);
            return 1;
        }
        printf("%s: ok: model '%s', %d nodes, %zu trainable parameters, output (%d,%d,%d)\n",
               c.spec, sp->model.name, g.n_nodes, rn_graph_n_trainable(&g),
               g.nodes[g.n_nodes - 1].layer.out.c, g.nodes[g.n_nodes - 1].layer.out.h,
               g.nodes[g.n_nodes - 1].layer.out.w);
        if (c.summary)
            rn_summary_print(stdout, &g, sp->model.name);
        rn_graph_free(&g);
    } else if (rn_analyses_check(sp, NULL, -1, &err)) { /* analyses that need a model */
        fprintf(stderr, "%s\n", err.msg);
        rn_spec_free(sp);
        free(sp);
        return 1;
    } else {
        printf("%s: ok: data only, %d analyses\n", c.spec, sp->n_analyses);
        if (c.summary)
            rc = fail("--summary: the spec has no model to summarise");
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
    struct rn_run_options opt = {
        .out_dir = c.out, .quiet = c.quiet, .log = stderr, .check = rn_analyses_check};
    if (check_device(sp, c.quiet, &opt)) {
        rn_spec_free(sp);
        free(sp);
        return 1;
    }
    resolve_load(sp, c.quiet);
    if ((rc = make_missing_models(sp, c.quiet)) != 0) {
        rn_spec_free(sp);
        free(sp);
        return rc;
    }
    int threads = set_threads(sp);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    struct rn_run run;
    if (!c.quiet)
        fprintf(stderr, "%s: %s%s, seed %llu, %s, %d threads\n", sp->name,
                sp->has_model ? sp->model.name : "data only",
                sp->has_model && sp->has_train ? ""
                : sp->has_model                ? " (loaded)"
                                               : "",
                (unsigned long long)sp->seed, opt.device ? opt.device_desc : "cpu", threads);
    if (rn_run_open(&run, sp, &opt, &err)) {
        fprintf(stderr, "runner: %s\n", err.msg);
        rn_run_close(&run, "failed");
        rn_spec_free(sp);
        free(sp);
        return 1;
    }
    const char *status = "completed";
    rc = 0;
    if (rn_run_train(&run, &err)) {
        status = "failed";
        rc = 1;
    } else if (rn_interrupted) {
        status = "interrupted";
        rc = 130;
    } else if (sp->has_model && !sp->has_train) {
        /* a loaded model: evaluate it once on the held-out splits (the 54k
         * train images would dominate an analysis run's time) */
        const char *names[] = {"val", "test"};
        for (int i = 0; i < 2 && !rc; i++) {
            struct rn_split *s = rn_data_split(&run.data, names[i]);
            if (!s || !s->n)
                continue;
            struct rn_split_result *res = &run.last[run.n_last++];
            if (rn_run_evaluate(&run, s, res, &err)) {
                status = "failed";
                rc = 1;
            }
        }
    }
    if (!rc && rn_run_analyses(&run, &err)) {
        status = "failed";
        rc = 1;
    }
    if (rc == 1)
        fprintf(stderr, "runner: %s\n", err.msg);
    char dir[RN_PATH_MAX];
    snprintf(dir, sizeof dir, "%s", run.dir);
    if (!c.quiet && run.n_last > 0) {
        fprintf(stderr, "%s:", sp->name);
        for (int i = 0; i < run.n_last; i++) {
            const char *kind = strcmp(run.last[i].split, "test") == 0
                                   ? (sp->data.colouring != RN_COLOURING_NONE &&
                                              sp->data.test_rule == RN_RULE_CONFLICTING
                                          ? " (hard)"
                                          : "")
                                   : (sp->data.colouring != RN_COLOURING_NONE ? " (easy)" : "");
            fprintf(stderr, "  %s%s %.2f%%", run.last[i].split, kind, 100 * run.last[i].accuracy);
        }
        fputc('\n', stderr);
    }
    rn_run_close(&run, status);
    if (rc != 1 && dir[0]) {
        int n = 0;
        if (rn_plot_run(dir, c.format ? c.format : "png", &n, &err)) {
            fprintf(stderr, "runner: figures: %s\n", err.msg);
            rc = rc ? rc : 1;
        } else if (!c.quiet) {
            fprintf(stderr, "results: %s/run.h5\nfigures: %s/plots/ (%d)\n", dir, dir, n);
        }
    }
    rn_spec_free(sp);
    free(sp);
    return rc;
}

/* runner report REPORT.yaml [--out DIR] [--run-missing] [--no-vector]
 * [--threads N] [--device D] [--quiet] */
static int cmd_report(int argc, char **argv)
{
    const char *file = NULL, *out = "results/report", *device = "auto";
    int run_missing = 0, vector = 1, threads = 0, quiet = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        int takes = !strcmp(a, "--out") || !strcmp(a, "--threads") || !strcmp(a, "--device");
        if (takes && i + 1 >= argc)
            return usage_error("report: %s needs a value", a);
        if (!strcmp(a, "--out"))
            out = argv[++i];
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
    if (rn_report_load(&rep, file, stderr, &n_errors, &err)) {
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
        if (spawn_runner(exp, device, threads, quiet, &status))
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

int main(int argc, char **argv)
{
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
    if (strcmp(argv[1], "validate") == 0 || strcmp(argv[1], "summary") == 0)
        return cmd_validate(argc, argv);
    if (strcmp(argv[1], "plot") == 0)
        return cmd_plot(argc, argv);
    if (strcmp(argv[1], "compare") == 0)
        return cmd_compare(argc, argv);
    if (strcmp(argv[1], "report") == 0)
        return cmd_report(argc, argv);
    return cmd_run(argc, argv);
}
