/* sweep_slurm.c - the Slurm launcher (sweep.h): the cells to run as job
 * arrays of `runner cell DIR INDEX`, each array task reading its cell's
 * index from a file, so that any set of cells maps onto 0..n-1; followed to
 * the end with squeue and scontrol when asked. */
#include "sweep.h"

#include <errno.h>
#include <limits.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "run.h"

extern char **environ;

#define MAX_ARRAYS 64

/* Runs argv, its stdout into out (size bytes, NUL-terminated); returns the
 * exit status (127: could not start). */
static int capture(char *const argv[], char *out, size_t size)
{
    int fd[2];
    if (pipe(fd) != 0)
        return 127;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fd[1], 1);
    posix_spawn_file_actions_addclose(&fa, fd[0]);
    posix_spawn_file_actions_addclose(&fa, fd[1]);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fd[1]);
    size_t n = 0;
    ssize_t k;
    char drop[4096];
    while ((k = read(fd[0], n + 1 < size ? out + n : drop,
                     n + 1 < size ? size - 1 - n : sizeof drop)) > 0)
        if (n + 1 < size)
            n += (size_t)k;
    close(fd[0]);
    if (size)
        out[n] = '\0';
    if (rc != 0)
        return 127;
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* The cluster's MaxArraySize (array indices are below it); 1001 when
 * scontrol does not say. */
static int max_array_size(void)
{
    static char buf[1 << 16];
    char *argv[] = {"scontrol", "show", "config", NULL};
    if (capture(argv, buf, sizeof buf) != 0)
        return 1001;
    const char *p = strstr(buf, "MaxArraySize");
    int v = 0;
    if (p && sscanf(p, "MaxArraySize = %d", &v) == 1 && v > 0)
        return v;
    return 1001;
}

/* Shell single quotes around s. */
static void put_sq(FILE *f, const char *s)
{
    fputc('\'', f);
    for (; *s; s++)
        if (*s == '\'')
            fputs("'\\''", f);
        else
            fputc(*s, f);
    fputc('\'', f);
}

struct array_job {
    char id[64]; /* Slurm's job id */
    int n;       /* tasks 0..n-1 */
    int *cells;  /* task -> index into plan->cells, owned */
};

static int write_array(const struct rn_sweep_plan *plan, const struct rn_sweep_run_options *o,
                       const char *slurm_dir, int k, const int *cells, int n, char *script,
                       size_t script_size, struct rn_error *err)
{
    char idx[RN_PATH_MAX + 64], cwd[RN_PATH_MAX], abs_dir[RN_PATH_MAX];
    time_t t = time(NULL);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", localtime(&t));
    snprintf(idx, sizeof idx, "%s/array-%s-%d.cells", slurm_dir, stamp, k);
    snprintf(script, script_size, "%s/array-%s-%d.sh", slurm_dir, stamp, k);
    if (!getcwd(cwd, sizeof cwd) || !realpath(plan->dir, abs_dir))
        return rn_errorf(err, "%s: cannot resolve the sweep folder: %s", plan->dir,
                         strerror(errno));
    FILE *f = fopen(idx, "w");
    if (!f)
        return rn_errorf(err, "%s: cannot write: %s", idx, strerror(errno));
    for (int i = 0; i < n; i++)
        fprintf(f, "%d\n", plan->cells[cells[i]].index);
    if (fclose(f) != 0)
        return rn_errorf(err, "%s: cannot write", idx);
    if (!(f = fopen(script, "w")))
        return rn_errorf(err, "%s: cannot write: %s", script, strerror(errno));
    fprintf(f,
            "#!/bin/sh\n# runner sweep %s: %d cells as a job array; task i runs the cell on "
            "line i+1 of\n# %s\n",
            plan->name, n, idx);
    fprintf(f, "#SBATCH --job-name=%s\n", plan->name);
    fprintf(f, "#SBATCH --array=0-%d", n - 1);
    if (o->jobs > 0)
        fprintf(f, "%%%d", o->jobs);
    fprintf(f, "\n#SBATCH --output=%s/slurm/%%A_%%a.out\n", abs_dir);
    if (o->threads > 0)
        fprintf(f, "#SBATCH --cpus-per-task=%d\n", o->threads);
    fputs("cd ", f);
    put_sq(f, cwd);
    fputs(" || exit 1\ncell=$(sed -n \"$((SLURM_ARRAY_TASK_ID + 1))p\" ", f);
    put_sq(f, idx);
    fputs(")\nexec ", f);
    put_sq(f, o->runner);
    fputs(" cell ", f);
    put_sq(f, abs_dir);
    fputs(" \"$cell\"", f);
    if (o->threads > 0)
        fprintf(f, " --threads %d", o->threads);
    if (o->format)
        fprintf(f, " --format %s", o->format);
    fputc('\n', f);
    if (fclose(f) != 0)
        return rn_errorf(err, "%s: cannot write", script);
    return 0;
}

static int submit(const struct rn_sweep_run_options *o, const char *script, char *id,
                  size_t id_size, struct rn_error *err)
{
    char **argv = calloc((size_t)o->n_slurm_opts + 4, sizeof *argv);
    if (!argv)
        return rn_errorf(err, "out of memory");
    int n = 0;
    argv[n++] = "sbatch";
    argv[n++] = "--parsable";
    for (int i = 0; i < o->n_slurm_opts; i++)
        argv[n++] = (char *)o->slurm_opts[i];
    argv[n++] = (char *)script;
    char out[4096];
    int rc = capture(argv, out, sizeof out);
    free(argv);
    if (rc == 127)
        return rn_errorf(err, "cannot run sbatch (is Slurm's client installed and on PATH?)");
    if (rc != 0)
        return rn_errorf(err, "sbatch %s failed (exit %d)", script, rc);
    /* "1234" or "1234;cluster" */
    snprintf(id, id_size, "%.*s", (int)strcspn(out, ";\n"), out);
    if (!id[0])
        return rn_errorf(err, "sbatch %s printed no job id", script);
    return 0;
}

/* Slurm's record of task `task` of array job `id`: JobState and ExitCode
 * from `scontrol -o show job` output, if it still has it. */
static void slurm_task_state(const char *show, const char *id, int task, char *state, size_t ssize,
                             char *code, size_t csize)
{
    snprintf(state, ssize, "?");
    snprintf(code, csize, "?");
    char want_job[96], want_task[48];
    snprintf(want_job, sizeof want_job, "ArrayJobId=%s ", id);
    snprintf(want_task, sizeof want_task, "ArrayTaskId=%d ", task);
    for (const char *p = show; p && *p;) {
        size_t len = strcspn(p, "\n");
        char line[8192];
        snprintf(line, sizeof line, "%.*s", (int)len, p);
        p += len + (p[len] == '\n');
        if (!strstr(line, want_job) || !strstr(line, want_task))
            continue;
        const char *s = strstr(line, "JobState="), *c = strstr(line, "ExitCode=");
        if (s)
            snprintf(state, ssize, "%.*s", (int)strcspn(s + 9, " "), s + 9);
        if (c)
            snprintf(code, csize, "%.*s", (int)strcspn(c + 9, " "), c + 9);
    }
}

/* How many tasks of the jobs squeue still lists (pending or running); -1
 * when squeue fails. */
static int queued(struct array_job *jobs, int n_jobs)
{
    char ids[MAX_ARRAYS * 66] = "";
    for (int j = 0; j < n_jobs; j++)
        snprintf(ids + strlen(ids), sizeof ids - strlen(ids), "%s%s", j ? "," : "", jobs[j].id);
    char *argv[] = {"squeue", "-h", "-r", "-j", ids, "-o", "%i %T", NULL};
    static char out[1 << 16];
    if (capture(argv, out, sizeof out) != 0)
        return -1;
    int n = 0;
    for (const char *p = out; *p; p++)
        n += *p == '\n';
    return n;
}

static int wait_jobs(struct rn_sweep_plan *plan, const struct rn_sweep_run_options *o,
                     struct array_job *jobs, int n_jobs, FILE *out)
{
    int last = -2, fails = 0;
    for (;;) {
        int q = queued(jobs, n_jobs);
        if (q < 0) {
            fprintf(out, "sweep %s: squeue failed; following the cells' folders instead\n",
                    plan->name);
            q = 0;
            rn_sweep_plan_states(plan);
            for (int j = 0; j < n_jobs; j++)
                for (int t = 0; t < jobs[j].n; t++) {
                    enum rn_cell_state s = plan->cells[jobs[j].cells[t]].state;
                    q += s == RN_CELL_PENDING || s == RN_CELL_RUNNING;
                }
        }
        if (q != last) {
            fprintf(out, "sweep %s: %d task%s queued or running\n", plan->name, q,
                    q == 1 ? "" : "s");
            fflush(out);
            last = q;
        }
        if (q == 0)
            break;
        if (o->fail_fast) {
            rn_sweep_plan_states(plan);
            for (int j = 0; j < n_jobs && !fails; j++)
                for (int t = 0; t < jobs[j].n; t++)
                    fails += plan->cells[jobs[j].cells[t]].state == RN_CELL_FAILED;
            if (fails) {
                fprintf(out, "sweep %s: a cell failed; --fail-fast: cancelling the arrays\n",
                        plan->name);
                for (int j = 0; j < n_jobs; j++) {
                    char *argv[] = {"scancel", jobs[j].id, NULL};
                    char drop[256];
                    capture(argv, drop, sizeof drop);
                }
            }
        }
        struct timespec ts = {(o->poll_ms > 0 ? o->poll_ms : 2000) / 1000,
                              (long)((o->poll_ms > 0 ? o->poll_ms : 2000) % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    /* every task's end, as Slurm recorded it and as the cell's folder says */
    rn_sweep_plan_states(plan);
    int bad = 0, total = 0;
    for (int j = 0; j < n_jobs; j++) {
        static char show[1 << 20];
        char *argv[] = {"scontrol", "-o", "show", "job", jobs[j].id, NULL};
        if (capture(argv, show, sizeof show) != 0)
            show[0] = '\0';
        for (int t = 0; t < jobs[j].n; t++) {
            const struct rn_sweep_cell *c = &plan->cells[jobs[j].cells[t]];
            char state[64], code[32], dir[RN_PATH_MAX];
            slurm_task_state(show, jobs[j].id, t, state, sizeof state, code, sizeof code);
            rn_sweep_cell_dir(plan, c, dir, sizeof dir);
            bad += c->state != RN_CELL_DONE;
            total++;
            fprintf(out, "  cell %d (job %s_%d): slurm %s, exit code %s; cell %s", c->index,
                    jobs[j].id, t, state, code, rn_cell_state_name(c->state));
            if (c->exit_code >= 0)
                fprintf(out, " (exit %d)", c->exit_code);
            fprintf(out, ": %s", c->label);
            if (c->state != RN_CELL_DONE)
                fprintf(out, "; log: %s/log.txt", dir);
            fputc('\n', out);
        }
    }
    fprintf(out, "sweep %s: %d of %d submitted cells done\n", plan->name, total - bad, total);
    return bad ? 1 : 0;
}

/* slurm/jobs.tsv: a line per array submitted, "job id TAB its .cells file". */
static void record_job(const char *slurm_dir, const char *id, const char *script)
{
    char p[RN_PATH_MAX + 32];
    snprintf(p, sizeof p, "%s/jobs.tsv", slurm_dir);
    FILE *f = fopen(p, "a");
    if (!f)
        return;
    size_t n = strlen(script);
    fprintf(f, "%s\t%.*s.cells\n", id, (int)(n > 3 ? n - 3 : n), script);
    fclose(f);
}

/* Marks queued[i] for the cells an array submitted earlier still has
 * pending or running in Slurm (squeue), so they are not submitted twice. */
static int mark_queued(const struct rn_sweep_plan *plan, const char *slurm_dir, char *queued)
{
    char p[RN_PATH_MAX + 32], line[RN_PATH_MAX + 96];
    snprintf(p, sizeof p, "%s/jobs.tsv", slurm_dir);
    FILE *f = fopen(p, "r");
    if (!f)
        return 0;
    static char ids[1 << 14];
    ids[0] = '\0';
    while (fgets(line, sizeof line, f))
        if (strlen(ids) + 66 < sizeof ids)
            snprintf(ids + strlen(ids), sizeof ids - strlen(ids), "%s%.*s", ids[0] ? "," : "",
                     (int)strcspn(line, "\t"), line);
    static char tasks[1 << 16];
    char *argv[] = {"squeue", "-h", "-r", "-j", ids, "-o", "%i", NULL};
    if (!ids[0] || capture(argv, tasks, sizeof tasks) != 0) {
        fclose(f);
        return 0;
    }
    int n = 0;
    rewind(f);
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        char *tab = strchr(line, '\t');
        if (!tab)
            continue;
        *tab = '\0';
        FILE *cf = fopen(tab + 1, "r");
        if (!cf)
            continue;
        int cells[4096], nc = 0;
        while (nc < 4096 && fscanf(cf, "%d", &cells[nc]) == 1)
            nc++;
        fclose(cf);
        /* squeue -r prints one task a line: "<job>_<task>" */
        for (const char *t = tasks; *t;) {
            size_t len = strcspn(t, "\n"), jl = strlen(line);
            if (len > jl + 1 && !strncmp(t, line, jl) && t[jl] == '_') {
                int task = atoi(t + jl + 1);
                for (int i = 0; task >= 0 && task < nc && i < plan->n_cells; i++)
                    if (plan->cells[i].index == cells[task] && !queued[i]) {
                        queued[i] = 1;
                        n++;
                    }
            }
            t += len + (t[len] == '\n');
        }
    }
    fclose(f);
    return n;
}

int rn_sweep_run_slurm(struct rn_sweep_plan *plan, const struct rn_sweep_run_options *o, FILE *out,
                       struct rn_error *err)
{
    int *todo = calloc((size_t)plan->n_cells + 1, sizeof *todo);
    if (!todo)
        return rn_errorf(err, "out of memory");
    char slurm_dir[RN_PATH_MAX + 16];
    snprintf(slurm_dir, sizeof slurm_dir, "%s/slurm", plan->dir);
    char *queued = calloc((size_t)plan->n_cells + 1, 1);
    if (!queued) {
        free(todo);
        return rn_errorf(err, "out of memory");
    }
    int n_queued = mark_queued(plan, slurm_dir, queued), n_todo = 0;
    for (int i = 0; i < plan->n_cells; i++)
        if (rn_sweep_cell_wanted(&plan->cells[i], o) && !queued[i])
            todo[n_todo++] = i;
    free(queued);
    if (n_queued)
        fprintf(out,
                "sweep %s: %d cell%s still queued or running from an earlier submission: "
                "not submitted again\n",
                plan->name, n_queued, n_queued == 1 ? "" : "s");
    if (n_todo == 0) {
        fprintf(out, "sweep %s: nothing to submit (every cell is done or queued)\n", plan->name);
        free(todo);
        return 0;
    }
    if (rn_make_dirs(slurm_dir, err)) {
        free(todo);
        return -1;
    }
    int per = max_array_size();
    struct array_job jobs[MAX_ARRAYS];
    int n_jobs = 0, rc = 0;
    for (int first = 0; first < n_todo && !rc; first += per) {
        int n = n_todo - first < per ? n_todo - first : per;
        if (n_jobs == MAX_ARRAYS) {
            rc = rn_errorf(err,
                           "more than %d job arrays of %d; run the sweep again after "
                           "these",
                           MAX_ARRAYS, per);
            break;
        }
        char script[RN_PATH_MAX + 64];
        struct array_job *j = &jobs[n_jobs];
        if (write_array(plan, o, slurm_dir, n_jobs, todo + first, n, script, sizeof script, err) ||
            submit(o, script, j->id, sizeof j->id, err)) {
            rc = -1;
            break;
        }
        if (!(j->cells = malloc(sizeof *j->cells * (size_t)n))) {
            rc = rn_errorf(err, "out of memory");
            break;
        }
        memcpy(j->cells, todo + first, sizeof *j->cells * (size_t)n);
        j->n = n;
        n_jobs++;
        fprintf(out, "sweep %s: submitted job array %s: %d cell%s (%s)\n", plan->name, j->id, n,
                n == 1 ? "" : "s", script);
        record_job(slurm_dir, j->id, script);
    }
    free(todo);
    if (!rc && o->wait)
        rc = wait_jobs(plan, o, jobs, n_jobs, out);
    for (int j = 0; j < n_jobs; j++)
        free(jobs[j].cells);
    return rc;
}
