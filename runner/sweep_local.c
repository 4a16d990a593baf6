/* sweep_local.c - the local launcher (sweep.h): the cells to run as child
 * processes `runner cell DIR INDEX`, a fixed number at once. */
#include "sweep.h"

#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static volatile sig_atomic_t stop_signal;

static void on_stop(int sig)
{
    stop_signal = sig;
}

static pid_t spawn_cell(const struct rn_sweep_plan *plan, const struct rn_sweep_cell *c,
                        const struct rn_sweep_run_options *o)
{
    char index[32], threads[32];
    snprintf(index, sizeof index, "%d", c->index);
    snprintf(threads, sizeof threads, "%d", o->threads);
    char *argv[12] = {(char *)o->runner, "cell", (char *)plan->dir, index};
    int n = 4;
    if (o->threads > 0) {
        argv[n++] = "--threads";
        argv[n++] = threads;
    }
    if (o->format) {
        argv[n++] = "--format";
        argv[n++] = (char *)o->format;
    }
    argv[n] = NULL;
    pid_t pid;
    fflush(NULL);
    if (posix_spawn(&pid, o->runner, NULL, NULL, argv, environ) != 0)
        return -1;
    return pid;
}

/* The end of a sweep: every cell that is not done, with its overrides and
 * log; the exit status. */
static int report(FILE *out, struct rn_sweep_plan *plan, int ran, int interrupted)
{
    rn_sweep_plan_states(plan);
    int count[RN_CELL_INTERRUPTED + 1] = {0}, n = 0;
    for (int i = 0; i < plan->n_cells; i++)
        if (plan->cells[i].active) {
            count[plan->cells[i].state]++;
            n++;
        }
    fprintf(out,
            "sweep %s: %d cells: %d done, %d failed, %d interrupted, %d pending, "
            "%d running (%d run now)\n",
            plan->name, n, count[RN_CELL_DONE], count[RN_CELL_FAILED], count[RN_CELL_INTERRUPTED],
            count[RN_CELL_PENDING], count[RN_CELL_RUNNING], ran);
    for (int i = 0; i < plan->n_cells; i++) {
        const struct rn_sweep_cell *c = &plan->cells[i];
        if (!c->active || c->state == RN_CELL_DONE)
            continue;
        char dir[RN_PATH_MAX];
        rn_sweep_cell_dir(plan, c, dir, sizeof dir);
        fprintf(out, "  cell %d %s", c->index, rn_cell_state_name(c->state));
        if (c->exit_code >= 0)
            fprintf(out, " (exit %d)", c->exit_code);
        fprintf(out, ": %s; overrides:", c->exp_path);
        for (int k = 0; k < c->n_overrides; k++)
            fprintf(out, " %s", c->overrides[k]);
        if (c->state != RN_CELL_PENDING)
            fprintf(out, "; log: %s/log.txt", dir);
        fputc('\n', out);
    }
    if (interrupted)
        return 130;
    return count[RN_CELL_DONE] == n ? 0 : 1;
}

int rn_sweep_run_local(struct rn_sweep_plan *plan, const struct rn_sweep_run_options *o, FILE *out)
{
    int *todo = calloc((size_t)plan->n_cells + 1, sizeof *todo);
    pid_t *pids = calloc((size_t)(o->jobs > 0 ? o->jobs : 1), sizeof *pids);
    if (!todo || !pids) {
        free(todo);
        free(pids);
        fprintf(stderr, "runner: out of memory\n");
        return 1;
    }
    int n_todo = 0;
    for (int i = 0; i < plan->n_cells; i++)
        if (rn_sweep_cell_wanted(&plan->cells[i], o))
            todo[n_todo++] = i;
    int jobs = o->jobs > 0 ? o->jobs : 1;
    fprintf(out, "sweep %s: %d cell%s to run, %d at once, %d thread%s each\n", plan->name, n_todo,
            n_todo == 1 ? "" : "s", jobs, o->threads, o->threads == 1 ? "" : "s");
    fflush(out);

    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop; /* no SA_RESTART: waitpid returns to look at the flag */
    stop_signal = 0;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);

    int next = 0, running = 0, ran = 0, failed = 0, stopping = 0;
    while (next < n_todo || running > 0) {
        while (!stopping && !stop_signal && running < jobs && next < n_todo) {
            pid_t pid = spawn_cell(plan, &plan->cells[todo[next]], o);
            if (pid < 0) {
                fprintf(stderr, "runner: cannot start %s: %s\n", o->runner, strerror(errno));
                stopping = 1;
                failed = 1;
                break;
            }
            for (int k = 0; k < jobs; k++)
                if (!pids[k]) {
                    pids[k] = pid;
                    break;
                }
            running++;
            ran++;
            next++;
        }
        if (running == 0)
            break;
        int status = 0;
        pid_t done = waitpid(-1, &status, 0);
        if (stop_signal && !stopping) {
            stopping = 1; /* pass it on: each cell records "interrupted" */
            for (int k = 0; k < jobs; k++)
                if (pids[k])
                    kill(pids[k], SIGTERM);
        }
        if (done < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        for (int k = 0; k < jobs; k++)
            if (pids[k] == done) {
                pids[k] = 0;
                running--;
            }
        int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        if (code != 0) {
            failed = 1;
            if (o->fail_fast && !stopping) {
                stopping = 1;
                fprintf(out, "sweep %s: a cell failed; --fail-fast: stopping the others\n",
                        plan->name);
                for (int k = 0; k < jobs; k++)
                    if (pids[k])
                        kill(pids[k], SIGTERM);
            }
        }
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    free(todo);
    free(pids);
    int rc = report(out, plan, ran, stop_signal != 0);
    return rc == 0 && failed ? 1 : rc;
}
