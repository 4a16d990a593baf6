/* sweep_cli.c - the commands of many runs: `runner sweep`, `runner cell` and
 * `runner table` (their arguments; the work is sweep*.c and table.c). */
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sweep.h"
#include "table.h"

static int usage_error(const char *cmd, const char *fmt, const char *arg)
{
    fprintf(stderr, "runner %s: ", cmd);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nrun 'runner --help' for usage\n");
    return 2;
}

/* A positive integer option value, or -1. */
static int positive(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);
    return *s && !*end && v > 0 && v < 1000000 ? (int)v : -1;
}

static int check_format(const char *cmd, const char *v)
{
    if (strcmp(v, "png") && strcmp(v, "pdf") && strcmp(v, "svg"))
        return usage_error(cmd, "--format expects png, pdf or svg, got '%s'", v);
    return 0;
}

int rn_cli_is_sweep_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[512];
    int yes = 0;
    while (!yes && fgets(line, sizeof line, f))
        yes = !strncmp(line, "experiments:", 12) || !strncmp(line, "experiment:", 11);
    fclose(f);
    return yes;
}

int rn_cli_validate_sweep(const char *path)
{
    struct rn_sweep_file sw;
    struct rn_error err;
    int n_errors = 0;
    if (rn_sweep_file_load(&sw, path, stderr, &n_errors, &err)) {
        if (n_errors > 1)
            fprintf(stderr, "%d errors\n", n_errors);
        rn_sweep_file_free(&sw);
        return 1;
    }
    struct rn_sweep_plan plan;
    int rc = rn_sweep_plan(&plan, &sw, stderr, 0, &err);
    if (rc)
        fprintf(stderr, "runner: %s\n", err.msg);
    else
        printf("%s: ok: %d cells, every one checked (spec, model, train program, analyses)\n", path,
               plan.n_cells);
    rn_sweep_plan_free(&plan);
    rn_sweep_file_free(&sw);
    return rc ? 1 : 0;
}

/* runner sweep SWEEP.yaml [--launcher local|slurm] [-j N] [--threads T] [--dry-run]
 *              [--retry-failed] [--fail-fast] [--slurm-opt OPT]... [--wait] [--format F] */
int rn_cli_sweep(int argc, char **argv)
{
    const char *file = NULL, *launcher = "local";
    struct rn_sweep_run_options o = {0};
    const char **slurm = calloc((size_t)argc + 1, sizeof *slurm);
    int rc = 0;
    if (!slurm)
        return 1;
    for (int i = 2; i < argc && !rc; i++) {
        const char *a = argv[i];
        int has_value = !strcmp(a, "--launcher") || !strcmp(a, "-j") || !strcmp(a, "--threads") ||
                        !strcmp(a, "--slurm-opt") || !strcmp(a, "--format") ||
                        !strcmp(a, "--poll-ms");
        if (has_value && i + 1 >= argc) {
            rc = usage_error("sweep", "%s needs a value", a);
        } else if (!strcmp(a, "--launcher")) {
            launcher = argv[++i];
            if (strcmp(launcher, "local") && strcmp(launcher, "slurm"))
                rc = usage_error("sweep", "--launcher expects local or slurm, got '%s'", launcher);
        } else if (!strcmp(a, "-j") || !strcmp(a, "--threads") || !strcmp(a, "--poll-ms")) {
            int v = positive(argv[++i]);
            if (v < 0)
                rc = usage_error("sweep",
                                 "expected a positive integer after the option, got "
                                 "'%s'",
                                 argv[i]);
            *(!strcmp(a, "-j") ? &o.jobs : !strcmp(a, "--threads") ? &o.threads : &o.poll_ms) = v;
        } else if (!strcmp(a, "--slurm-opt")) {
            slurm[o.n_slurm_opts++] = argv[++i];
        } else if (!strncmp(a, "--slurm-opt=", 12)) {
            slurm[o.n_slurm_opts++] = a + 12;
        } else if (!strcmp(a, "--format")) {
            o.format = argv[++i];
            rc = check_format("sweep", o.format);
        } else if (!strcmp(a, "--dry-run")) {
            o.dry_run = 1;
        } else if (!strcmp(a, "--retry-failed")) {
            o.retry_failed = 1;
        } else if (!strcmp(a, "--fail-fast")) {
            o.fail_fast = 1;
        } else if (!strcmp(a, "--wait")) {
            o.wait = 1;
        } else if (a[0] == '-') {
            rc = usage_error("sweep", "unknown option '%s'", a);
        } else if (!file) {
            file = a;
        } else {
            rc = usage_error("sweep", "unexpected argument '%s' (one SWEEP.yaml)", a);
        }
    }
    if (!rc && !file)
        rc = usage_error("sweep", "%s", "needs a SWEEP.yaml");
    int is_slurm = !rc && !strcmp(launcher, "slurm");
    if (!rc && !is_slurm && (o.wait || o.n_slurm_opts))
        rc = usage_error("sweep", "%s goes with --launcher slurm",
                         o.wait ? "--wait" : "--slurm-opt");
    if (rc) {
        free(slurm);
        return rc;
    }
    o.slurm_opts = slurm;
    static char self[RN_PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) {
        free(slurm);
        fprintf(stderr, "runner: cannot find the runner's own executable (/proc/self/exe)\n");
        return 1;
    }
    self[len] = '\0';
    o.runner = self;
    /* local: N cells at once and T threads each, N T = the cores unless both are given */
    int cores = (int)sysconf(_SC_NPROCESSORS_ONLN);
    cores = cores > 0 ? cores : 1;
    if (!is_slurm) {
        if (!o.threads)
            o.threads = o.jobs ? (cores / o.jobs > 0 ? cores / o.jobs : 1) : 1;
        if (!o.jobs)
            o.jobs = cores / o.threads > 0 ? cores / o.threads : 1;
        if (o.jobs * o.threads > cores)
            fprintf(stderr,
                    "runner sweep: -j %d x --threads %d is more than the %d cores here "
                    "(oversubscribed)\n",
                    o.jobs, o.threads, cores);
    } else if (!o.threads) {
        o.threads = 1;
    }

    struct rn_sweep_file sw;
    struct rn_error err;
    int n_errors = 0;
    if (rn_sweep_file_load(&sw, file, stderr, &n_errors, &err)) {
        if (n_errors > 1)
            fprintf(stderr, "%d errors\n", n_errors);
        rn_sweep_file_free(&sw);
        free(slurm);
        return 1;
    }
    struct rn_sweep_plan plan;
    if (rn_sweep_plan(&plan, &sw, stderr, !o.dry_run, &err)) {
        fprintf(stderr, "runner: %s\n", err.msg);
        rn_sweep_file_free(&sw);
        free(slurm);
        return 1;
    }
    rn_sweep_plan_states(&plan);
    if (o.dry_run) {
        rn_sweep_print(stdout, &plan, &o);
        rc = 0;
    } else if (is_slurm) {
        rc = rn_sweep_run_slurm(&plan, &o, stdout, &err);
        if (rc < 0) {
            fprintf(stderr, "runner: %s\n", err.msg);
            rc = 1;
        }
    } else {
        rc = rn_sweep_run_local(&plan, &o, stdout);
    }
    rn_sweep_plan_free(&plan);
    rn_sweep_file_free(&sw);
    free(slurm);
    return rc;
}

/* runner cell SWEEP_DIR INDEX [--threads T] [--format F] */
int rn_cli_cell(int argc, char **argv)
{
    const char *dir = NULL, *index = NULL, *format = NULL;
    int threads = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if ((!strcmp(a, "--threads") || !strcmp(a, "--format")) && i + 1 >= argc)
            return usage_error("cell", "%s needs a value", a);
        if (!strcmp(a, "--threads")) {
            if ((threads = positive(argv[++i])) < 0)
                return usage_error("cell", "--threads expects a positive integer, got '%s'",
                                   argv[i]);
        } else if (!strcmp(a, "--format")) {
            format = argv[++i];
            if (check_format("cell", format))
                return 2;
        } else if (a[0] == '-' && a[1] == '-') {
            return usage_error("cell", "unknown option '%s'", a);
        } else if (!dir) {
            dir = a;
        } else if (!index) {
            index = a;
        } else {
            return usage_error("cell", "unexpected argument '%s'", a);
        }
    }
    if (!dir || !index)
        return usage_error("cell", "%s", "needs SWEEP_DIR INDEX");
    char *end;
    long k = strtol(index, &end, 10);
    if (!*index || *end || k < 0 || k > 1000000)
        return usage_error("cell", "INDEX expects a cell index (0, 1, ...), got '%s'", index);
    return rn_sweep_run_cell(dir, (int)k, threads, format);
}

/* runner table DIR [--metric M]... [--csv] [--md] [--plot] [--out DIR] [--format F] */
int rn_cli_table(int argc, char **argv)
{
    const char *dir = NULL, *metrics[RN_TABLE_MAX_METRICS];
    struct rn_table_options o = {.metrics = metrics};
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        int has_value = !strcmp(a, "--metric") || !strcmp(a, "--out") || !strcmp(a, "--format");
        if (has_value && i + 1 >= argc)
            return usage_error("table", "%s needs a value", a);
        if (!strcmp(a, "--metric")) {
            if (o.n_metrics == RN_TABLE_MAX_METRICS)
                return usage_error("table", "at most %s --metric options", "8");
            metrics[o.n_metrics++] = argv[++i];
        } else if (!strcmp(a, "--out")) {
            o.out_dir = argv[++i];
        } else if (!strcmp(a, "--format")) {
            o.format = argv[++i];
            if (check_format("table", o.format))
                return 2;
        } else if (!strcmp(a, "--csv")) {
            o.csv = 1;
        } else if (!strcmp(a, "--md")) {
            o.markdown = 1;
        } else if (!strcmp(a, "--plot")) {
            o.plot = 1;
        } else if (a[0] == '-') {
            return usage_error("table", "unknown option '%s'", a);
        } else if (!dir) {
            dir = a;
        } else {
            return usage_error("table", "unexpected argument '%s' (one folder)", a);
        }
    }
    if (!dir)
        return usage_error("table", "%s", "needs a sweep folder or a folder of runs");
    struct rn_error err;
    if (rn_table(dir, &o, stdout, &err)) {
        fprintf(stderr, "runner: %s\n", err.msg);
        return 1;
    }
    return 0;
}
