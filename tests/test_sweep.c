/* Sweeps, cells and tables (runner/sweep.h, runner/table.h): a cell's hash
 * does not depend on key order or override spelling; a sweep file expands
 * in its documented order; a killed local sweep resumes without redoing
 * finished cells; failures are reported per cell with its overrides; the
 * table's statistics equal hand-computed ones (Student-t quantiles from
 * closed forms and numerical integration); bad sweep files give exact
 * one-line errors. Cells train the committed MNIST fixture for an epoch or
 * a few (about a second each). */
#include <criterion/criterion.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runner/results.h"
#include "runner/spec.h"
#include "runner/sweep.h"
#include "runner/table.h"
#include "sh.h"

#define SRC RN_SOURCE_DIR
#define FIXTURE RN_FIXTURES "/e2e_lazy.yaml"

static char tmp[256];

static void make_tmp(void)
{
    snprintf(tmp, sizeof tmp, "/tmp/rn_sweep_XXXXXX");
    cr_assert_not_null(mkdtemp(tmp));
}

/* Writes tmp/name with printf-style contents; its path into path. */
__attribute__((format(printf, 3, 4))) static void write_tmp(char *path, const char *name,
                                                            const char *fmt, ...)
{
    snprintf(path, 512, "%s/%s", tmp, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    cr_assert_eq(fclose(f), 0);
}

/* The resolved spec's hash of a spec given as text, with overrides. */
static void hash_of(const char *text, const char *const *overrides, char out[17])
{
    struct rn_spec *sp = calloc(1, sizeof *sp);
    struct rn_error err;
    cr_assert_eq(rn_spec_load_text(sp, text, "x.yaml", NULL, overrides, NULL, NULL, &err), 0, "%s",
                 err.msg);
    rn_sweep_spec_hash(sp->resolved, NULL, out);
    rn_spec_free(sp);
    free(sp);
}

#define MODEL                                                                                      \
    "model:\n  name: m\n  layers:\n    - {type: conv2d, name: conv1, filters: 4, kernel: 3}\n"     \
    "    - {type: global_avg_pool}\n    - {type: linear, units: 10}\n"

Test(sweep, hash_is_stable_across_key_order_and_override_spelling)
{
    char a[17], b[17], c[17], d[17], e[17], f[17];
    hash_of("seed: 1\ndata: {bias: 0.9, colouring: background}\n" MODEL
            "train: {epochs: 2, lr: 0.01}\n",
            NULL, a);
    /* the same spec, keys in another order and written in other styles */
    hash_of("train:\n  lr: 1e-2\n  epochs: 2\n" MODEL
            "data:\n  colouring: background\n  bias: 0.90\nseed: 1\n",
            NULL, b);
    cr_assert_str_eq(a, b);
    /* the same values given as overrides, spelt differently */
    const char *ov1[] = {"train.epochs=2", "train.lr=0.01", "data.bias=0.9", NULL};
    const char *ov2[] = {"data.bias=9e-1", "train.lr=.01", "train.epochs=02", NULL};
    hash_of("seed: 1\ndata: {colouring: background}\n" MODEL, ov1, c);
    hash_of("seed: 1\ndata: {colouring: background}\n" MODEL, ov2, d);
    cr_assert_str_eq(c, d);
    cr_assert_str_eq(a, c);
    /* keys that cannot change the numbers are not hashed; a value that can is */
    const char *ov3[] = {"threads=2", "description=a note", "out=elsewhere", NULL};
    hash_of("seed: 1\ndata: {bias: 0.9, colouring: background}\n" MODEL
            "train: {epochs: 2, lr: 0.01}\n",
            ov3, e);
    cr_assert_str_eq(a, e);
    const char *ov4[] = {"train.lr=0.02", NULL};
    hash_of("seed: 1\ndata: {bias: 0.9, colouring: background}\n" MODEL
            "train: {epochs: 2, lr: 0.01}\n",
            ov4, f);
    cr_assert_str_neq(a, f);
    /* the code version is part of the folder's hash */
    char h1[17], h2[17];
    rn_sweep_spec_hash("seed: 1\n", "abc", h1);
    rn_sweep_spec_hash("seed: 1\n", "abd", h2);
    cr_assert_str_neq(h1, h2);
    rn_sweep_spec_hash("seed: 1\n", NULL, h1);
    cr_assert_eq(strlen(h1), 16);
}

/* Plans a sweep file (nothing written); -1 on errors, which go to msgs. */
static int plan_file(const char *path, struct rn_sweep_plan *plan, char *msgs, size_t size)
{
    struct rn_sweep_file sw;
    struct rn_error err;
    FILE *f = fmemopen(msgs, size, "w");
    int rc = rn_sweep_file_load(&sw, path, f, NULL, &err);
    if (!rc)
        rc = rn_sweep_plan(plan, &sw, f, 0, &err);
    fclose(f);
    rn_sweep_file_free(&sw);
    return rc;
}

Test(sweep, expands_experiments_list_and_grid_in_order)
{
    make_tmp();
    char path[512], msgs[8192] = "";
    /* the same experiment twice, the second with its own set; key order in the
     * grid is the order of the loops (last fastest) */
    write_tmp(path, "s.yaml",
              "name: order\nout: %s/out\nexperiments:\n  - %s\n"
              "  - {file: %s, set: {train.epochs: 3}}\n"
              "set: {train.batch: 16}\n"
              "list:\n  - {train.lr: 0.01}\n  - {train.lr: 0.02, train.shuffle: false}\n"
              "grid:\n  data.bias: [0.9, 0.95]\n  seed: [0, 1, 2]\n",
              tmp, FIXTURE, FIXTURE);
    struct rn_sweep_plan plan;
    cr_assert_eq(plan_file(path, &plan, msgs, sizeof msgs), 0, "%s", msgs);
    cr_assert_eq(plan.n_cells, 2 * 2 * 2 * 3);
    const struct rn_sweep_cell *c = &plan.cells[0];
    cr_assert_eq(c->n_overrides, 4);
    cr_assert_str_eq(c->overrides[0], "train.batch=16");
    cr_assert_str_eq(c->overrides[1], "train.lr=0.01");
    cr_assert_str_eq(c->overrides[2], "data.bias=0.9");
    cr_assert_str_eq(c->overrides[3], "seed=0");
    cr_assert_str_eq(c->label, "e2e_lazy train.lr=0.01 data.bias=0.9 seed=0");
    cr_assert_str_eq(c->group, "e2e_lazy train.lr=0.01 data.bias=0.9");
    cr_assert_str_eq(plan.cells[1].overrides[3], "seed=1");
    cr_assert_str_eq(plan.cells[3].overrides[2], "data.bias=0.95");
    cr_assert_str_eq(plan.cells[3].overrides[3], "seed=0");
    /* cell 6: the second list item, first grid combination */
    c = &plan.cells[6];
    cr_assert_eq(c->n_overrides, 5);
    cr_assert_str_eq(c->label, "e2e_lazy train.lr=0.02 train.shuffle=false data.bias=0.9 seed=0");
    /* cell 12: the second experiment: its own set after the sweep's */
    c = &plan.cells[12];
    cr_assert_str_eq(c->overrides[0], "train.batch=16");
    cr_assert_str_eq(c->overrides[1], "train.epochs=3");
    cr_assert_str_eq(c->group, "e2e_lazy train.epochs=3 train.lr=0.01 data.bias=0.9");
    for (int i = 0; i < plan.n_cells; i++) {
        cr_assert_eq(plan.cells[i].index, i);
        cr_assert(!strncmp(plan.cells[i].folder, "e2e_lazy-", 9), "%s", plan.cells[i].folder);
        for (int j = 0; j < i; j++)
            cr_assert_str_neq(plan.cells[i].id, plan.cells[j].id);
    }
    rn_sweep_plan_free(&plan);

    /* the same cells written in another key order and style have the same ids */
    char path2[512];
    write_tmp(path2, "t.yaml",
              "experiments: [%s, {set: {train.epochs: 03}, file: %s}]\n"
              "name: order\nout: %s/out\n"
              "grid: {data.bias: [0.90, 9.5e-1], seed: [0, 1, 2]}\n"
              "list: [{train.lr: 1e-2}, {train.shuffle: false, train.lr: 2e-2}]\n"
              "set: {train.batch: 16}\n",
              FIXTURE, FIXTURE, tmp);
    struct rn_sweep_plan p1, p2;
    cr_assert_eq(plan_file(path, &p1, msgs, sizeof msgs), 0, "%s", msgs);
    cr_assert_eq(plan_file(path2, &p2, msgs, sizeof msgs), 0, "%s", msgs);
    cr_assert_eq(p1.n_cells, p2.n_cells);
    for (int i = 0; i < p1.n_cells; i++) {
        cr_assert_str_eq(p1.cells[i].id, p2.cells[i].id, "cell %d", i);
        cr_assert_str_eq(p1.cells[i].folder, p2.cells[i].folder, "cell %d", i);
    }
    rn_sweep_plan_free(&p1);
    rn_sweep_plan_free(&p2);
}

static int exists(const char *fmt, const char *a)
{
    char p[1024];
    snprintf(p, sizeof p, fmt, a);
    return access(p, F_OK) == 0;
}

/* The folders of a planned sweep's cells, by index. */
static void cell_dirs(const char *dir, char dirs[][1024], int n)
{
    struct rn_sweep_plan plan;
    struct rn_error err;
    cr_assert_eq(rn_sweep_plan_read(&plan, dir, &err), 0, "%s", err.msg);
    cr_assert_eq(plan.n_cells, n);
    for (int i = 0; i < n; i++)
        rn_sweep_cell_dir(&plan, &plan.cells[i], dirs[i], 1024);
    rn_sweep_plan_free(&plan);
}

Test(sweep, killed_local_sweep_resumes_without_redoing_done_cells, .timeout = 300)
{
    make_tmp();
    char path[512], dir[512], log[600];
    write_tmp(path, "s.yaml",
              "name: resume\nout: %s/out\nexperiment: %s\n"
              "set: {data.dir: %s/mnist, train.epochs: 4, analyses: []}\n"
              "grid:\n  seed: [0, 1, 2]\n",
              tmp, FIXTURE, RN_FIXTURES);
    snprintf(dir, sizeof dir, "%s/out/resume", tmp);
    snprintf(log, sizeof log, "%s/log1", tmp);
    /* the sweep in its own process group, killed (-9, launcher and cell alike)
     * once its first cell is done */
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        setpgid(0, 0);
        if (!freopen(log, "w", stdout) || dup2(fileno(stdout), 2) < 0)
            _exit(97);
        execl(RN_RUNNER_BIN, RN_RUNNER_BIN, "sweep", path, "-j", "1", "--threads", "1",
              (char *)NULL);
        _exit(98);
    }
    setpgid(pid, pid);
    char dirs[3][1024];
    int planned = 0;
    for (int i = 0; i < 3000 && !planned; i++) {
        usleep(20000);
        planned = exists("%s/cells.tsv", dir);
    }
    cr_assert(planned, "the sweep wrote no manifest");
    cell_dirs(dir, dirs, 3);
    int done = 0;
    for (int i = 0; i < 3000 && !done; i++) {
        usleep(20000);
        done = exists("%s/done", dirs[0]);
    }
    cr_assert(done, "cell 0 never finished");
    kill(-pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
    cr_assert(WIFSIGNALED(st));
    struct stat before;
    char h5[1100];
    snprintf(h5, sizeof h5, "%s/run.h5", dirs[0]);
    cr_assert_eq(stat(h5, &before), 0);
    cr_assert(!exists("%s/done", dirs[2]), "the last cell finished before the kill");

    /* again: the done cell is skipped, the others run, the indices stay */
    char out[16384];
    int rc =
        sh(out, sizeof out, "cd %s && %s sweep %s -j 1 --threads 1 2>&1", SRC, RN_RUNNER_BIN, path);
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, "sweep resume: 2 cells to run"), "%s", out);
    cr_assert_null(strstr(out, "cell 0 ("), "cell 0 ran again:\n%s", out);
    cr_assert(strstr(out, "3 done, 0 failed"), "%s", out);
    struct stat after;
    cr_assert_eq(stat(h5, &after), 0);
    cr_assert_eq(before.st_mtim.tv_sec, after.st_mtim.tv_sec);
    cr_assert_eq(before.st_mtim.tv_nsec, after.st_mtim.tv_nsec);
    char dirs2[3][1024];
    cell_dirs(dir, dirs2, 3);
    for (int i = 0; i < 3; i++) {
        cr_assert_str_eq(dirs[i], dirs2[i]);
        cr_assert(exists("%s/done", dirs[i]), "cell %d not done", i);
    }
    /* a third time: nothing to do; --dry-run says so */
    rc = sh(out, sizeof out, "cd %s && %s sweep %s --dry-run 2>&1", SRC, RN_RUNNER_BIN, path);
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, "3 done, 0 pending, 0 failed, 0 interrupted, 0 running; 0 to run"), "%s",
              out);
}

Test(sweep, failures_are_reported_per_cell_with_overrides, .timeout = 300)
{
    make_tmp();
    char path[512], out[16384];
    /* the second item passes every check but cannot find its data when it runs */
    write_tmp(path, "s.yaml",
              "name: fails\nout: %s/out\nexperiment: %s\n"
              "set: {train.epochs: 1, analyses: []}\n"
              "list:\n  - {data.dir: %s/mnist}\n  - {data.dir: %s/no_such_data}\n",
              tmp, FIXTURE, RN_FIXTURES, tmp);
    int rc =
        sh(out, sizeof out, "cd %s && %s sweep %s -j 2 --threads 1 2>&1", SRC, RN_RUNNER_BIN, path);
    cr_assert_eq(rc, 1, "%s", out);
    char want[1024];
    snprintf(want, sizeof want,
             "cell 1 failed (exit 1): %s; overrides: train.epochs=1 analyses=[] "
             "data.dir=%s/no_such_data; log: %s/out/fails/cells/",
             FIXTURE, tmp, tmp);
    cr_assert(strstr(out, want), "wanted\n%s\nin\n%s", want, out);
    cr_assert(strstr(out, "1 done, 1 failed"), "%s", out);
    /* the full error is in the cell's log */
    char dirs[2][1024];
    char dir[512];
    snprintf(dir, sizeof dir, "%s/out/fails", tmp);
    cell_dirs(dir, dirs, 2);
    rc = sh(out, sizeof out, "grep -c 'no_such_data' %s/log.txt", dirs[1]);
    cr_assert_eq(rc, 0, "the log does not name the missing data");
    rc = sh(out, sizeof out, "cat %s/exit_code", dirs[1]);
    cr_assert_str_eq(out, "1\n");
    cr_assert(exists("%s/done", dirs[0]));
    cr_assert(!exists("%s/done", dirs[1]));
    /* the table shows the failure, never averages it */
    rc = sh(out, sizeof out, "%s table %s --metric val/accuracy 2>&1", RN_RUNNER_BIN, dir);
    cr_assert_eq(rc, 0, "%s", out);
    snprintf(want, sizeof want,
             "| e2e_lazy data.dir=%s/no_such_data | 0 of 1 | – | cell 1 failed "
             "(exit 1) |",
             tmp);
    cr_assert(strstr(out, want), "wanted\n%s\nin\n%s", want, out);
    /* rerun: the failed cell is tried again, the done one is not; --retry-failed the same */
    rc = sh(out, sizeof out, "cd %s && %s sweep %s 2>&1", SRC, RN_RUNNER_BIN, path);
    cr_assert_eq(rc, 1, "%s", out);
    cr_assert(strstr(out, "sweep fails: 1 cell to run"), "%s", out);
    cr_assert(strstr(out, "cell 1 ("), "%s", out);
    cr_assert_null(strstr(out, "cell 0 ("), "%s", out);
    rc = sh(out, sizeof out, "cd %s && %s sweep %s --dry-run --retry-failed 2>&1", SRC,
            RN_RUNNER_BIN, path);
    cr_assert(strstr(out, "1 done, 0 pending, 1 failed, 0 interrupted, 0 running; 1 to run"), "%s",
              out);
    /* runner cell exits non-zero for the failing cell, 0 for a done one */
    rc = sh(out, sizeof out, "cd %s && %s cell %s 1 2>&1", SRC, RN_RUNNER_BIN, dir);
    cr_assert_eq(rc, 1, "%s", out);
    rc = sh(out, sizeof out, "cd %s && %s cell %s 0 2>&1", SRC, RN_RUNNER_BIN, dir);
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, "cell 0 (e2e_lazy data.dir="), "%s", out);
    cr_assert(strstr(out, "done already"), "%s", out);
    rc = sh(out, sizeof out, "%s cell %s 7 2>&1", RN_RUNNER_BIN, dir);
    cr_assert_eq(rc, 1);
    snprintf(want, sizeof want, "runner: %s: no cell 7 (the manifest has 2 cells)\n", dir);
    cr_assert_str_eq(out, want);
}

/* ---- statistics --------------------------------------------------------------------- */

/* Student's t density. */
static double t_pdf(double t, double nu)
{
    return exp(lgamma((nu + 1) / 2) - lgamma(nu / 2) - 0.5 * log(nu * M_PI) -
               (nu + 1) / 2 * log1p(t * t / nu));
}

/* P(0 <= T <= t) by composite Simpson's rule: independent of the code's
 * incomplete beta function. */
static double t_mass(double t, double nu)
{
    const int n = 20000;
    double h = t / n, s = t_pdf(0, nu) + t_pdf(t, nu);
    for (int i = 1; i < n; i++)
        s += (i % 2 ? 4 : 2) * t_pdf(i * h, nu);
    return s * h / 3;
}

Test(table, t_quantiles)
{
    /* closed forms: nu = 1 (Cauchy), nu = 2, nu = 4 */
    double p = 0.975;
    cr_assert_float_eq(rn_t_quantile(p, 1), tan(M_PI * (p - 0.5)), 1e-9);
    cr_assert_float_eq(rn_t_quantile(p, 2), (2 * p - 1) / sqrt(2 * p * (1 - p)), 1e-10);
    double a = 4 * p * (1 - p), q = cos(acos(sqrt(a)) / 3) / sqrt(a);
    cr_assert_float_eq(rn_t_quantile(p, 4), 2 * sqrt(q - 1), 1e-10);
    cr_assert_float_eq(rn_t_quantile(0.9, 1), tan(M_PI * 0.4), 1e-10);
    cr_assert_float_eq(rn_t_quantile(0.025, 2), -(2 * p - 1) / sqrt(2 * p * (1 - p)), 1e-10);
    /* other degrees of freedom: the density integrates to p - 1/2 up to the quantile,
     * and the quantile is the tables' */
    const int dofs[] = {3, 4, 9, 29, 100};
    const double table[] = {3.182446305284263, 2.776445105197793, 2.262157162854099,
                            2.045229642132703, 1.983971518523552};
    for (int i = 0; i < 5; i++) {
        double t = rn_t_quantile(p, dofs[i]);
        cr_assert_float_eq(t_mass(t, dofs[i]), p - 0.5, 1e-10, "nu %d: t %.15g", dofs[i], t);
        cr_assert_float_eq(t, table[i], 1e-9, "nu %d: %.15g", dofs[i], t);
    }
    cr_assert_float_eq(rn_t_quantile(0.995, 5), 4.032142983557536, 1e-9);
    cr_assert_eq(rn_t_quantile(0.5, 7), 0);
    cr_assert(isnan(rn_t_quantile(0.975, 0)));
    cr_assert(isnan(rn_t_quantile(1.0, 3)));
}

Test(table, statistics_are_the_hand_computed_ones)
{
    struct rn_stats s;
    const double x[] = {0.90, 0.92, 0.94};
    rn_stats_compute(x, 3, &s);
    cr_assert_eq(s.n, 3);
    cr_assert_float_eq(s.mean, 0.92, 1e-15);
    cr_assert_float_eq(s.sd, 0.02, 1e-15); /* sqrt((0.02^2 + 0 + 0.02^2) / 2) */
    cr_assert_float_eq(s.t, 4.302652729749464, 1e-9);
    cr_assert_float_eq(s.half, 4.302652729749464 * 0.02 / sqrt(3), 1e-12);
    const double y[] = {1, 2, 3, 4, 10};
    rn_stats_compute(y, 5, &s);
    cr_assert_float_eq(s.mean, 4, 1e-15);
    cr_assert_float_eq(s.sd, sqrt(50.0 / 4), 1e-14); /* deviations -3 -2 -1 0 6: 50 */
    cr_assert_float_eq(s.half, 2.776445105197793 * sqrt(12.5) / sqrt(5), 1e-9);
    const double one[] = {0.5};
    rn_stats_compute(one, 1, &s);
    cr_assert_eq(s.n, 1);
    cr_assert_float_eq(s.mean, 0.5, 0);
    cr_assert(isnan(s.sd) && isnan(s.half), "n = 1 has no interval");
    rn_stats_compute(NULL, 0, &s);
    cr_assert(isnan(s.mean));
}

/* A run file with test/accuracy per epoch and status completed. */
static void fake_run(const char *cell_dir, const double *acc, int epochs)
{
    char p[1100];
    cr_assert_eq(sh(NULL, 0, "mkdir -p %s", cell_dir), 0);
    snprintf(p, sizeof p, "%s/run.h5", cell_dir);
    struct rn_results *r;
    struct rn_error err;
    cr_assert_eq(rn_results_create(&r, p, &err), 0, "%s", err.msg);
    for (int e = 0; e < epochs; e++) {
        double x = e + 1;
        cr_assert_eq(rn_results_append_metric(r, "test/accuracy", &x, &acc[e], 1, &err), 0);
    }
    double v = 0.25;
    cr_assert_eq(rn_results_write(r, "/analyses/mass/summary", RN_DTYPE_F64, &v, 0, NULL, &err), 0,
                 "%s", err.msg);
    cr_assert_eq(rn_results_set_attr_str(r, "/", "status", "completed", &err), 0);
    rn_results_close(r);
    snprintf(p, sizeof p, "%s/done", cell_dir);
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f);
    fclose(f);
}

Test(table, groups_by_all_but_the_seed_and_shows_what_is_missing, .timeout = 60)
{
    make_tmp();
    char path[512], msgs[8192] = "";
    write_tmp(path, "s.yaml",
              "name: tab\nout: %s/out\nexperiment: %s\n"
              "list:\n  - {train.lr: 0.01}\n  - {train.lr: 0.02}\n"
              "grid:\n  seed: [0, 1, 2]\n",
              tmp, FIXTURE);
    struct rn_sweep_file sw;
    struct rn_sweep_plan plan;
    struct rn_error err;
    FILE *mf = fmemopen(msgs, sizeof msgs, "w");
    cr_assert_eq(rn_sweep_file_load(&sw, path, mf, NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(rn_sweep_plan(&plan, &sw, mf, 1, &err), 0, "%s", err.msg);
    fclose(mf);
    char d[6][1024];
    for (int i = 0; i < 6; i++)
        rn_sweep_cell_dir(&plan, &plan.cells[i], d[i], 1024);
    /* lr 0.01: three seeds done; lr 0.02: seed 0 done, seed 1 failed, seed 2 pending */
    const double a0[] = {0.5, 0.90}, a1[] = {0.6, 0.92}, a2[] = {0.7, 0.94}, b0[] = {0.4, 0.8};
    fake_run(d[0], a0, 2);
    fake_run(d[1], a1, 2);
    fake_run(d[2], a2, 2);
    fake_run(d[3], b0, 2);
    cr_assert_eq(sh(NULL, 0, "mkdir -p %s && echo 1 > %s/exit_code", d[4], d[4]), 0);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    const char *metrics[] = {"test/accuracy", "test/accuracy@1", "/analyses/mass/summary"};
    struct rn_table_options o = {.metrics = metrics, .n_metrics = 3, .markdown = 1, .csv = 1};
    cr_assert_eq(rn_table(plan.dir, &o, f, &err), 0, "%s", err.msg);
    fclose(f);
    /* lr 0.01, last epoch: mean 92, sd 2, half 4.3026527 * 2 / sqrt(3) = 4.968 */
    cr_assert(strstr(text, "| e2e_lazy train.lr=0.01 | 3 of 3 | 92.00 ± 4.97 (sd 2.00) | "
                           "60.00 ± 24.84 (sd 10.00) | 0.25 ± 0 (sd 0) | – |"),
              "%s", text);
    cr_assert(strstr(text, "| e2e_lazy train.lr=0.02 | 1 of 3 | 80.00 (n = 1, no interval) | "
                           "40.00 (n = 1, no interval) | 0.25 (n = 1, no interval) | cell 4 "
                           "failed (exit 1); cell 5 pending |"),
              "%s", text);
    char row[512];
    snprintf(row, sizeof row, "e2e_lazy train.lr=0.01,test/accuracy,3,3,%.17g,",
             (0.90 + 0.92 + 0.94) / 3);
    cr_assert(strstr(text, row), "%s\nin\n%s", row, text);
    cr_assert(strstr(text, ",0.90000000000000002 0.92000000000000004 0.93999999999999995,"), "%s",
              text);
    cr_assert(strstr(text, "e2e_lazy train.lr=0.02,test/accuracy,1,3,0.80000000000000004,nan,nan,"
                           "nan,nan,0.80000000000000004,cell 4 failed (exit 1); cell 5 pending"),
              "%s", text);
    free(text);
    /* a metric a run does not have is named, not averaged */
    f = open_memstream(&text, &len);
    const char *m2[] = {"test/accuracy@7"};
    o = (struct rn_table_options){.metrics = m2, .n_metrics = 1};
    cr_assert_eq(rn_table(plan.dir, &o, f, &err), 0, "%s", err.msg);
    fclose(f);
    cr_assert(strstr(text, "| e2e_lazy train.lr=0.01 | 0 of 3 | – | cell 0: no test/accuracy at "
                           "epoch 7; cell 1: no test/accuracy at epoch 7; cell 2: no "
                           "test/accuracy at epoch 7 |"),
              "%s", text);
    free(text);
    rn_sweep_plan_free(&plan);
    rn_sweep_file_free(&sw);
}

/* ---- bad sweep files ----------------------------------------------------------------- */

/* runner sweep FILE --dry-run in tmp: its exit status and output. */
static int dry_run(const char *name, char *out, size_t size)
{
    return sh(out, size, "cd %s && %s sweep %s --dry-run 2>&1", tmp, RN_RUNNER_BIN, name);
}

Test(sweep_file, bad_files_give_one_line_errors_with_positions, .timeout = 60)
{
    make_tmp();
    char path[512], out[4096], want[2048];
    struct {
        const char *name, *text, *error;
    } cases[] = {
        {"a.yaml", "experiment: " FIXTURE "\ngird:\n  seed: [0, 1]\n",
         "a.yaml:2:1: error: unknown key 'gird' (did you mean 'grid'?); a sweep file has name, "
         "description, out, experiment(s), set, grid, list\n"},
        {"b.yaml", "experiment: " FIXTURE "\ngrid:\n  seed: 3\n",
         "b.yaml:3:9: error: grid.seed: expected a list of values, got '3' (one value goes under "
         "set:, or write [3])\n"},
        {"c.yaml", "experiments:\n  - nope.yaml\n",
         "c.yaml:2:5: error: experiments #1: cannot read 'nope.yaml' (resolved to nope.yaml; "
         "paths are relative to the sweep file's folder)\n"},
        {"d.yaml", "experiment: " FIXTURE "\nset: {train..epochs: 2}\n",
         "d.yaml:2:7: error: set: 'train..epochs' is not a key path (expected one like "
         "train.epochs or train.losses.1.weight)\n"},
        {"e.yaml", "experiment: " FIXTURE "\ngrid:\n  train.epochs: [1, two]\n",
         "e.yaml:3:21: error: cell 1 (e2e_lazy train.epochs=two): expected an integer >= 1, got "
         "'two'\nrunner: e.yaml: 1 error in the sweep's cells; nothing was run\n"},
        {"f.yaml", "experiment: " FIXTURE "\nset: {seed: 1}\ngrid:\n  seed: [0, 1]\n",
         "f.yaml:2:13: error: set: 'seed' is also a grid key (line 4), which would replace this "
         "value in every cell\n"},
        {"g.yaml", "experiment: " FIXTURE "\nlist:\n  - {train.lr: 0.01}\n  - {train.lr: 1e-2}\n",
         "g.yaml:4:16: error: cell 1 (e2e_lazy train.lr=1e-2) is the same run as cell 0 "
         "(e2e_lazy train.lr=0.01): their resolved specs are equal\nrunner: g.yaml: 1 error in "
         "the sweep's cells; nothing was run\n"},
        {"h.yaml", "experiment: " FIXTURE "\ngrid:\n  model.layers.0.filtres: [4]\n",
         "h.yaml:3:28: error: cell 0 (e2e_lazy model.layers.0.filtres=4): unknown key 'filtres' "
         "in layer 'conv1' (conv2d) (did you mean 'filters'?)\nrunner: h.yaml: 1 error in the "
         "sweep's cells; nothing was run\n"},
        {"i.yaml", "experiment: " FIXTURE "\nlist: []\n",
         "i.yaml:2:7: error: list: expected a list of mappings of key paths to values "
         "([{train.epochs: 5}, {train.epochs: 10}]), got an empty list\n"},
        {"j.yaml", "name: a/b\ngrid: {seed: [1]}\n",
         "j.yaml:1:1: error: missing key 'experiments' (the experiment files to sweep, relative "
         "to this file: experiments: [../task1_lazy.yaml])\nj.yaml:1:7: error: name: 'a/b' is "
         "not a folder name (letters, digits, _ . -)\n2 errors\n"},
        {"k.yaml", "experiments:\n  - {sets: {seed: 1}, file: " FIXTURE "}\n",
         "k.yaml:2:6: error: experiments #1: unknown key 'sets' (did you mean 'set'?); expected "
         "file, set\n"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_tmp(path, cases[i].name, "%s", cases[i].text);
        int rc = dry_run(cases[i].name, out, sizeof out);
        cr_assert_eq(rc, 1, "%s: exit %d: %s", cases[i].name, rc, out);
        snprintf(want, sizeof want, "%s", cases[i].error);
        cr_assert_str_eq(out, want, "%s", cases[i].name);
        cr_assert(!exists("%s/results", tmp), "%s: a bad sweep wrote results", cases[i].name);
    }
    /* validate knows a sweep file */
    write_tmp(path, "ok.yaml", "experiment: " FIXTURE "\ngrid: {seed: [0, 1]}\n");
    int rc = sh(out, sizeof out, "cd %s && %s validate ok.yaml 2>&1", tmp, RN_RUNNER_BIN);
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert_str_eq(out, "ok.yaml: ok: 2 cells, every one checked (spec, model, train program, "
                          "analyses)\n");
    rc = sh(out, sizeof out, "cd %s && %s validate e.yaml 2>&1", tmp, RN_RUNNER_BIN);
    cr_assert_eq(rc, 1, "%s", out);
}

Test(sweep_file, every_committed_sweep_validates, .timeout = 120)
{
    char out[16384];
    int rc = sh(out, sizeof out,
                "cd %s && for f in experiments/sweeps/*.yaml; do %s validate $f || echo FAILED "
                "$f; done 2>&1",
                SRC, RN_RUNNER_BIN);
    cr_assert_eq(rc, 0);
    cr_assert_null(strstr(out, "FAILED"), "%s", out);
    cr_assert(strstr(out, "experiments/sweeps/task1_lazy.yaml: ok: 5 cells"), "%s", out);
    cr_assert(strstr(out, "experiments/sweeps/task4.yaml: ok: 25 cells"), "%s", out);
}

Test(sweep, sigterm_stops_the_cells_as_interrupted, .timeout = 300)
{
    make_tmp();
    char path[512], dir[512], log[600];
    write_tmp(path, "s.yaml",
              "name: stop\nout: %s/out\nexperiment: %s\n"
              "set: {data.dir: %s/mnist, train.epochs: 1000, analyses: []}\n",
              tmp, FIXTURE, RN_FIXTURES);
    snprintf(dir, sizeof dir, "%s/out/stop", tmp);
    snprintf(log, sizeof log, "%s/log1", tmp);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        if (!freopen(log, "w", stdout) || dup2(fileno(stdout), 2) < 0)
            _exit(97);
        execl(RN_RUNNER_BIN, RN_RUNNER_BIN, "sweep", path, "--threads", "1", (char *)NULL);
        _exit(98);
    }
    int planned = 0;
    for (int i = 0; i < 3000 && !planned; i++) {
        usleep(20000);
        planned = exists("%s/cells.tsv", dir);
    }
    cr_assert(planned, "the sweep wrote no manifest");
    char dirs[1][1024];
    cell_dirs(dir, dirs, 1);
    int training = 0;
    for (int i = 0; i < 3000 && !training; i++) {
        usleep(20000);
        training = sh(NULL, 0, "grep -q 'epoch 2/' %s/log.txt 2>/dev/null", dirs[0]) == 0;
    }
    cr_assert(training, "the cell never reached its second epoch");
    kill(pid, SIGTERM); /* the launcher only: it stops its cells */
    int st;
    waitpid(pid, &st, 0);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 130, "exit %d", WEXITSTATUS(st));
    char out[8192];
    cr_assert_eq(sh(out, sizeof out, "cat %s/exit_code", dirs[0]), 0);
    cr_assert_str_eq(out, "143\n"); /* the cell got the SIGTERM: 128 + 15 */
    cr_assert(!exists("%s/done", dirs[0]));
    cr_assert_eq(sh(out, sizeof out, "cat %s", log), 0);
    cr_assert(strstr(out, "cell 0 (e2e_lazy): interrupted (exit 143)"), "%s", out);
    cr_assert(strstr(out, "0 done, 0 failed, 1 interrupted"), "%s", out);
    /* the file keeps its finished epochs and says it was interrupted */
    char h5[1100];
    snprintf(h5, sizeof h5, "%s/run.h5", dirs[0]);
    struct rn_results *r;
    struct rn_error err;
    cr_assert_eq(rn_results_open(&r, h5, &err), 0, "%s", err.msg);
    char *status = NULL;
    cr_assert_eq(rn_results_get_attr_str(r, "/", "status", &status, &err), 0, "%s", err.msg);
    cr_assert_str_eq(status, "interrupted");
    free(status);
    rn_results_close(r);
    cr_assert_eq(
        sh(out, sizeof out, "cd %s && %s sweep %s --dry-run 2>&1", SRC, RN_RUNNER_BIN, path), 0);
    cr_assert(strstr(out, "0 done, 0 pending, 0 failed, 1 interrupted, 0 running; 1 to run"), "%s",
              out);
}

/* Plans path and writes the manifest; the plan stays for the caller to free. */
static void plan_write(const char *path, struct rn_sweep_plan *plan)
{
    struct rn_sweep_file sw;
    struct rn_error err;
    char msgs[4096] = "";
    FILE *f = fmemopen(msgs, sizeof msgs, "w");
    cr_assert_eq(rn_sweep_file_load(&sw, path, f, NULL, &err), 0, "%s", err.msg);
    int rc = rn_sweep_plan(plan, &sw, f, 1, &err);
    fclose(f);
    cr_assert_eq(rc, 0, "%s: %s", err.msg, msgs);
    rn_sweep_file_free(&sw);
}

/* The index of the active or inactive cell whose label is label, or -1. */
static int index_of(const struct rn_sweep_plan *plan, const char *label, int *active)
{
    for (int i = 0; i < plan->n_cells; i++)
        if (!strcmp(plan->cells[i].label, label)) {
            *active = plan->cells[i].active;
            return plan->cells[i].index;
        }
    return -1;
}

Test(sweep, cells_are_never_renumbered)
{
    make_tmp();
    char path[512];
    struct rn_sweep_plan plan;
    int active;
    write_tmp(path, "s.yaml", "name: keep\nout: %s/out\nexperiment: %s\ngrid: {seed: [0, 1]}\n",
              tmp, FIXTURE);
    plan_write(path, &plan);
    cr_assert_eq(index_of(&plan, "e2e_lazy seed=1", &active), 1);
    rn_sweep_plan_free(&plan);
    /* a seed added in front, one dropped: known cells keep their index, the new one
     * is appended, the dropped one stays in the manifest as inactive */
    write_tmp(path, "s.yaml", "name: keep\nout: %s/out\nexperiment: %s\ngrid: {seed: [5, 0]}\n",
              tmp, FIXTURE);
    plan_write(path, &plan);
    cr_assert_eq(plan.n_cells, 3);
    cr_assert_eq(index_of(&plan, "e2e_lazy seed=0", &active), 0);
    cr_assert(active);
    cr_assert_eq(index_of(&plan, "e2e_lazy seed=1", &active), 1);
    cr_assert(!active);
    cr_assert_eq(index_of(&plan, "e2e_lazy seed=5", &active), 2);
    cr_assert(active);
    rn_sweep_plan_free(&plan);
    /* read back from the folder the same way */
    char dir[600];
    struct rn_error err;
    snprintf(dir, sizeof dir, "%s/out/keep", tmp);
    cr_assert_eq(rn_sweep_plan_read(&plan, dir, &err), 0, "%s", err.msg);
    cr_assert_eq(index_of(&plan, "e2e_lazy seed=5", &active), 2);
    cr_assert_eq(index_of(&plan, "e2e_lazy seed=1", &active), 1);
    cr_assert(!active);
    rn_sweep_plan_free(&plan);
    /* the seed back: the same index again */
    write_tmp(path, "s.yaml", "name: keep\nout: %s/out\nexperiment: %s\ngrid: {seed: [1, 5, 0]}\n",
              tmp, FIXTURE);
    plan_write(path, &plan);
    cr_assert_eq(plan.n_cells, 3);
    cr_assert_eq(index_of(&plan, "e2e_lazy seed=1", &active), 1);
    cr_assert(active);
    rn_sweep_plan_free(&plan);
}
