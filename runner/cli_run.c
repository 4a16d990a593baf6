/* cli_run.c - running one experiment and checking a spec against its model,
 * as the command line does (cli.h): `runner EXPERIMENT.yaml` and `runner
 * validate` (main.c), and every cell of a sweep (`runner cell`, sweep_cli.c). */
#include "cli.h"

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
#include "graph.h"
#include "plot.h"
#include "program.h"
#include "summary.h"
#include "train.h"

extern char **environ;

static void on_signal(int sig)
{
    (void)sig;
    rn_interrupted = 1;
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
int rn_cli_spawn_runner(const char *exp, const char *device, int threads, const char *out,
                        int quiet, int *status)
{
    char self[RN_PATH_MAX], nthreads[32];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) {
        fprintf(stderr, "runner: cannot find the runner's own executable (/proc/self/exe)\n");
        return 1;
    }
    self[len] = '\0';
    snprintf(nthreads, sizeof nthreads, "%d", threads);
    char *args[12] = {self, (char *)exp, "--device", (char *)device};
    int na = 4;
    if (threads > 0) {
        args[na++] = "--threads";
        args[na++] = nthreads;
    }
    char out_key[RN_PATH_MAX + 8];
    if (out) {
        snprintf(out_key, sizeof out_key, "out=%s", out);
        args[na++] = out_key;
    }
    if (quiet)
        args[na++] = "--quiet";
    args[na] = NULL;
    pid_t pid;
    fflush(stderr);
    if (posix_spawn(&pid, self, NULL, NULL, args, environ) != 0 || waitpid(pid, status, 0) != pid) {
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
            if (rn_cli_spawn_runner(exp, sp->device, sp->threads, NULL, quiet, &status))
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

int rn_cli_run_spec(struct rn_spec *sp, const struct rn_cli_run_options *o, char *dir_out,
                    size_t dir_size)
{
    struct rn_cli_run_options c = *o;
    int rc = 0;
    struct rn_error err;
    if (dir_out && dir_size)
        dir_out[0] = '\0';
    struct rn_run_options opt = {
        .out_dir = c.out, .quiet = c.quiet, .log = stderr, .check = rn_analyses_check};
    if (check_device(sp, c.quiet, &opt)) {
        return 1;
    }
    resolve_load(sp, c.quiet);
    if ((rc = make_missing_models(sp, c.quiet)) != 0)
        return rc;
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
        if (dir_out && dir_size && run.dir[0] && access(run.dir, F_OK) == 0)
            snprintf(dir_out, dir_size, "%s", run.dir);
        rn_run_close(&run, "failed");
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
    if (dir_out && dir_size)
        snprintf(dir_out, dir_size, "%s", dir);
    return rc;
}

int rn_cli_check_model(const struct rn_spec *sp, FILE *summary, struct rn_cli_model_info *info,
                       struct rn_error *err)
{
    memset(info, 0, sizeof *info);
    if (!sp->has_model) /* the analyses that need a model say so */
        return rn_analyses_check(sp, NULL, -1, err);
    struct rn_graph g;
    struct rn_shape in = {sp->data.colouring == RN_COLOURING_NONE ? 1 : 3, 28, 28};
    if (rn_graph_build(&g, &sp->model, in, 1, err))
        return -1;
    /* the train section's node names (groups, losses, bind, set) need the graph */
    struct rn_program prog;
    if (sp->has_train && rn_program_init(&prog, &sp->train, &g, RN_N_COLOURS, 1, err) != 0) {
        rn_graph_free(&g);
        return -1;
    }
    int logits = sp->has_train ? prog.heads[prog.primary].node : g.n_nodes - 1;
    if (sp->has_train)
        rn_program_free(&prog);
    if (rn_analyses_check(sp, &g, logits, err)) { /* the nodes analyses name */
        rn_graph_free(&g);
        return -1;
    }
    const struct rn_layer *last = &g.nodes[g.n_nodes - 1].layer;
    *info = (struct rn_cli_model_info){1,           g.n_nodes,   rn_graph_n_trainable(&g),
                                       last->out.c, last->out.h, last->out.w};
    if (summary)
        rn_summary_print(summary, &g, sp->model.name);
    rn_graph_free(&g);
    return 0;
}
