/* sweep_cell.c - a sweep's cells one at a time (sweep.h): their states read
 * from their folders, the dry run's listing, and `runner cell`: one cell run
 * into its folder under its lock, its output in its log, its exit code and
 * done marker written after run.h5 is closed. */
#include "sweep.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "rn_git.h"
#include "run.h"
#include "spec.h"

/* ---- states ------------------------------------------------------------------------ */

static int exists_in(const char *dir, const char *name)
{
    char p[RN_PATH_MAX + 32];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return access(p, F_OK) == 0;
}

/* 1 when another process holds dir/lock. */
static int locked(const char *dir)
{
    char p[RN_PATH_MAX + 32];
    snprintf(p, sizeof p, "%s/lock", dir);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    int held = flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    close(fd);
    return held;
}

static int read_exit_code(const char *dir)
{
    char p[RN_PATH_MAX + 32];
    snprintf(p, sizeof p, "%s/exit_code", dir);
    FILE *f = fopen(p, "r");
    int code = -1;
    if (f) {
        if (fscanf(f, "%d", &code) != 1)
            code = -1;
        fclose(f);
    }
    return code;
}

void rn_sweep_plan_states(struct rn_sweep_plan *plan)
{
    for (int i = 0; i < plan->n_cells; i++) {
        struct rn_sweep_cell *c = &plan->cells[i];
        char dir[RN_PATH_MAX];
        rn_sweep_cell_dir(plan, c, dir, sizeof dir);
        c->exit_code = read_exit_code(dir);
        if (exists_in(dir, "done"))
            c->state = RN_CELL_DONE;
        else if (locked(dir))
            c->state = RN_CELL_RUNNING;
        else if (c->exit_code > 0 && c->exit_code != 130 && c->exit_code != 143)
            c->state = RN_CELL_FAILED;
        else if (c->exit_code >= 0 || exists_in(dir, "log.txt"))
            c->state = RN_CELL_INTERRUPTED;
        else
            c->state = RN_CELL_PENDING;
    }
}

int rn_sweep_cell_wanted(const struct rn_sweep_cell *c, const struct rn_sweep_run_options *o)
{
    if (!c->active)
        return 0;
    if (c->state == RN_CELL_FAILED || c->state == RN_CELL_INTERRUPTED)
        return 1;
    return c->state == RN_CELL_PENDING && !o->retry_failed;
}

void rn_sweep_print(FILE *f, const struct rn_sweep_plan *plan, const struct rn_sweep_run_options *o)
{
    int count[RN_CELL_INTERRUPTED + 1] = {0}, n = 0, todo = 0;
    for (int i = 0; i < plan->n_cells; i++)
        if (plan->cells[i].active) {
            count[plan->cells[i].state]++;
            n++;
            todo += rn_sweep_cell_wanted(&plan->cells[i], o);
        }
    fprintf(f,
            "sweep %s: %d cells in %s (code %s): %d done, %d pending, %d failed, "
            "%d interrupted, %d running; %d to run\n",
            plan->name, n, plan->dir, RN_GIT_COMMIT, count[RN_CELL_DONE], count[RN_CELL_PENDING],
            count[RN_CELL_FAILED], count[RN_CELL_INTERRUPTED], count[RN_CELL_RUNNING], todo);
    fprintf(f, "%5s  %-11s  %-4s  %-36s  %s\n", "cell", "state", "run", "folder (cells/)",
            "experiment and overrides");
    for (int i = 0; i < plan->n_cells; i++) {
        const struct rn_sweep_cell *c = &plan->cells[i];
        if (!c->active)
            continue;
        char state[32];
        if (c->state == RN_CELL_FAILED)
            snprintf(state, sizeof state, "failed (%d)", c->exit_code);
        else
            snprintf(state, sizeof state, "%s", rn_cell_state_name(c->state));
        fprintf(f, "%5d  %-11s  %-4s  %-36s  %s\n", c->index, state,
                rn_sweep_cell_wanted(c, o) ? "yes" : "no", c->folder, c->label);
    }
}

/* ---- one cell ---------------------------------------------------------------------- */

static struct rn_sweep_cell *find_cell(struct rn_sweep_plan *plan, int index)
{
    for (int i = 0; i < plan->n_cells; i++)
        if (plan->cells[i].index == index)
            return &plan->cells[i];
    return NULL;
}

/* The last line of text that reports an error ("runner: ...", "...: error: ..."). */
static void last_error(const char *text, char *out, size_t size)
{
    out[0] = '\0';
    for (const char *p = text; p && *p;) {
        size_t len = strcspn(p, "\n");
        char line[RN_ERROR_MAX * 2];
        snprintf(line, sizeof line, "%.*s", (int)len, p);
        if (!strncmp(line, "runner: ", 8) || strstr(line, "error: "))
            snprintf(out, size, "%s", line);
        p += len + (p[len] == '\n');
    }
}

/* Loads the cell's spec and checks it is the one the manifest planned, with
 * this code version. */
static int load_cell_spec(struct rn_spec *sp, const struct rn_sweep_cell *c, int threads,
                          struct rn_error *err)
{
    char **ov = calloc((size_t)c->n_overrides + 2, sizeof *ov);
    char thr[32];
    if (!ov)
        return rn_errorf(err, "out of memory");
    for (int i = 0; i < c->n_overrides; i++)
        ov[i] = c->overrides[i];
    if (threads > 0) {
        snprintf(thr, sizeof thr, "threads=%d", threads);
        ov[c->n_overrides] = thr;
    }
    int rc = rn_spec_load(sp, c->exp_path, (const char *const *)ov, NULL, NULL, err);
    free(ov);
    if (rc)
        return rn_error_prefix(err, "cell %d (%s)", c->index, c->label);
    char id[17], h[17], folder[sizeof c->folder];
    rn_sweep_spec_hash(sp->resolved, NULL, id);
    rn_sweep_spec_hash(sp->resolved, RN_GIT_COMMIT, h);
    snprintf(folder, sizeof folder, "%s-%s", sp->name, h);
    if (strcmp(id, c->id))
        return rn_errorf(err,
                         "cell %d (%s): %s no longer resolves to the spec the sweep "
                         "planned (hash %s, planned %s); run `runner sweep` again to re-plan",
                         c->index, c->label, c->exp_path, id, c->id);
    if (strcmp(folder, c->folder))
        return rn_errorf(err,
                         "cell %d (%s): this runner (code %s) is not the code version "
                         "the sweep planned (folder %s); run `runner sweep` again to re-plan",
                         c->index, c->label, RN_GIT_COMMIT, c->folder);
    return 0;
}

static int write_small(const char *dir, const char *name, const char *text)
{
    char p[RN_PATH_MAX + 32];
    struct rn_error e;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return rn_sweep_write_file(p, text, &e);
}

/* cell.txt: what this folder is, for a person looking at it. */
static void write_cell_info(const char *cell_dir, const char *dir, const struct rn_sweep_cell *c)
{
    char *info = NULL;
    size_t info_len = 0;
    FILE *f = open_memstream(&info, &info_len);
    if (!f)
        return;
    fprintf(f, "cell: %d\nsweep: %s\nexperiment: %s\nlabel: %s\ncode: %s\noverrides:\n", c->index,
            dir, c->exp_path, c->label, RN_GIT_COMMIT);
    for (int i = 0; i < c->n_overrides; i++)
        fprintf(f, "  - %s\n", c->overrides[i]);
    if (fclose(f) == 0)
        write_small(cell_dir, "cell.txt", info);
    free(info);
}

/* The attempt's one line on stderr; a failure with its last error line,
 * read back from the log from start on. */
static void say_attempt(const struct rn_sweep_cell *c, const char *cell_dir, int rc, double secs,
                        FILE *log, long start)
{
    if (rc == 0) {
        fprintf(stderr, "cell %d (%s): completed in %.1f s: %s\n", c->index, c->label, secs,
                cell_dir);
        return;
    }
    char line[RN_ERROR_MAX] = "";
    fseek(log, start, SEEK_SET);
    char *buf = calloc(1, 1 << 20);
    if (buf) {
        size_t n = fread(buf, 1, (1 << 20) - 1, log);
        buf[n] = '\0';
        last_error(buf, line, sizeof line);
        free(buf);
    }
    fprintf(stderr, "cell %d (%s): %s (exit %d)%s%s; log: %s/log.txt\n", c->index, c->label,
            rc == 130 || rc == 143 ? "interrupted" : "failed", rc, line[0] ? ": " : "", line,
            cell_dir);
}

/* Runs c into cell_dir with stderr going to its log; returns the exit status. */
static int run_logged(struct rn_spec *sp, const char *cell_dir, const char *format, FILE *log,
                      long *log_start)
{
    fflush(stderr);
    int saved = dup(2);
    fseek(log, 0, SEEK_END);
    *log_start = ftell(log);
    fflush(log);
    if (saved < 0 || dup2(fileno(log), 2) < 0) {
        if (saved >= 0)
            close(saved);
        return 1;
    }
    /* an interrupted or failed attempt that left a checkpoint goes on from it */
    char ck[RN_PATH_MAX + 32];
    snprintf(ck, sizeof ck, "%s/checkpoint.h5", cell_dir);
    struct rn_cli_run_options o = {cell_dir, format, 0, NULL, 0};
    if (access(ck, F_OK) == 0) {
        o.resume = cell_dir;
        o.force = 1; /* the cell's hash vouches for the spec; --threads may differ */
    }
    int rc = rn_cli_run_spec(sp, &o, NULL, 0);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    return rc;
}

int rn_sweep_run_cell(const char *dir, int index, int threads, const char *format)
{
    struct rn_sweep_plan plan;
    struct rn_error err;
    if (rn_sweep_plan_read(&plan, dir, &err)) {
        fprintf(stderr, "runner: %s\n", err.msg);
        return 1;
    }
    struct rn_sweep_cell *c = find_cell(&plan, index);
    if (!c) {
        fprintf(stderr, "runner: %s: no cell %d (the manifest has %d cells)\n", dir, index,
                plan.n_cells);
        rn_sweep_plan_free(&plan);
        return 1;
    }
    char cell_dir[RN_PATH_MAX], p[RN_PATH_MAX + 32];
    rn_sweep_cell_dir(&plan, c, cell_dir, sizeof cell_dir);
    int rc = 1, lock = -1;
    struct rn_spec *sp = NULL;
    FILE *log = NULL;
    if (rn_make_dirs(cell_dir, &err))
        goto fail;
    snprintf(p, sizeof p, "%s/lock", cell_dir);
    lock = open(p, O_CREAT | O_RDWR | O_CLOEXEC, 0666);
    if (lock < 0 || flock(lock, LOCK_EX | LOCK_NB) != 0) {
        rn_errorf(&err, "cell %d (%s): another process is running it (%s is locked)", index,
                  c->label, p);
        goto fail;
    }
    if (exists_in(cell_dir, "done")) {
        fprintf(stderr, "cell %d (%s): done already (%s)\n", index, c->label, cell_dir);
        rc = 0;
        goto out;
    }
    if (!(sp = calloc(1, sizeof *sp))) {
        rn_errorf(&err, "out of memory");
        goto fail;
    }
    if (load_cell_spec(sp, c, threads, &err))
        goto fail;
    snprintf(p, sizeof p, "%s/exit_code", cell_dir);
    remove(p);
    write_cell_info(cell_dir, dir, c);
    snprintf(p, sizeof p, "%s/log.txt", cell_dir);
    if (!(log = fopen(p, "a+"))) {
        rn_errorf(&err, "%s: cannot write: %s", p, strerror(errno));
        goto fail;
    }
    char host[128] = "?", stamp[64];
    gethostname(host, sizeof host);
    time_t t0 = time(NULL);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S%z", localtime(&t0));
    fprintf(log, "== cell %d attempt %s on %s (pid %d, code %s)\n", index, stamp, host,
            (int)getpid(), RN_GIT_COMMIT);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    long start = 0;
    rc = run_logged(sp, cell_dir, format, log, &start);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double secs = (double)(b.tv_sec - a.tv_sec) + 1e-9 * (double)(b.tv_nsec - a.tv_nsec);
    fprintf(log, "== exit %d after %.1f s\n", rc, secs);
    fflush(log);
    char text[64];
    if (rc == 0) { /* run.h5 is closed and the figures drawn: the cell is done */
        snprintf(text, sizeof text, "completed %s %.1f s\n", stamp, secs);
        write_small(cell_dir, "done", text);
    }
    snprintf(text, sizeof text, "%d\n", rc);
    write_small(cell_dir, "exit_code", text);
    say_attempt(c, cell_dir, rc, secs, log, start);
    goto out;
fail:
    fprintf(stderr, "runner: %s\n", err.msg);
    rc = 1;
    if (lock >= 0 && sp) { /* a cell that could not start still records why */
        char text[16];
        snprintf(text, sizeof text, "%d\n", rc);
        write_small(cell_dir, "exit_code", text);
        snprintf(p, sizeof p, "%s/log.txt", cell_dir);
        FILE *lf = fopen(p, "a");
        if (lf) {
            fprintf(lf, "runner: %s\n", err.msg);
            fclose(lf);
        }
    }
out:
    if (log)
        fclose(log);
    if (sp) {
        rn_spec_free(sp);
        free(sp);
    }
    if (lock >= 0)
        close(lock);
    rn_sweep_plan_free(&plan);
    return rc;
}
