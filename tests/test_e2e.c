/* End-to-end: the runner binary on the committed fixture. Trains a small
 * model, checks it beats chance by a wide margin, that the same seed gives
 * identical metrics, that a saved model loads back to identical outputs,
 * that an interrupted run leaves a readable file, that every committed
 * experiment validates, and that bad input gives one clear line. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runner/results.h"
#include "sh.h"

#define SRC RN_SOURCE_DIR
#define FIXTURE_DATA "data.dir=" RN_FIXTURES "/mnist"

static char tmp[256];

static void make_tmp(void)
{
    snprintf(tmp, sizeof tmp, "/tmp/rn_e2e_XXXXXX");
    cr_assert_not_null(mkdtemp(tmp));
}

static int train_fixture(const char *dir, const char *extra)
{
    char out[8192];
    int rc = sh(out, sizeof out, "cd %s && %s tests/fixtures/e2e_lazy.yaml %s --out %s --quiet %s 2>&1",
                SRC, RN_RUNNER_BIN, FIXTURE_DATA, dir, extra ? extra : "");
    if (rc)
        fprintf(stderr, "%s", out);
    return rc;
}

static double last_metric(struct rn_results *r, const char *name)
{
    double *x, *v;
    int n;
    struct rn_error err;
    cr_assert_eq(rn_results_read_metric(r, name, &x, &v, &n, &err), 0, "%s", err.msg);
    cr_assert_gt(n, 0);
    double last = v[n - 1];
    free(x);
    free(v);
    return last;
}

Test(e2e, trains_beats_chance_and_writes_everything, .timeout = 300)
{
    make_tmp();
    char dir[300];
    snprintf(dir, sizeof dir, "%s/a", tmp);
    cr_assert_eq(train_fixture(dir, NULL), 0);
    char path[400];
    snprintf(path, sizeof path, "%s/run.h5", dir);
    struct rn_results *r;
    struct rn_error err;
    cr_assert_eq(rn_results_open(&r, path, &err), 0, "%s", err.msg);
    char *status = NULL;
    cr_assert_eq(rn_results_get_attr_str(r, "/", "status", &status, &err), 0, "%s", err.msg);
    cr_assert_str_eq(status, "completed");
    free(status);
    /* the easy val set: colour predicts the digit 95% of the time; chance is 10% */
    double val = last_metric(r, "val/accuracy");
    cr_assert_gt(val, 0.6, "val accuracy %.3f does not beat chance (0.1) by a wide margin", val);
    cr_assert(rn_results_exists(r, "/models/main/conv1.weight"));
    cr_assert(rn_results_exists(r, "/models/main/fc.bias"));
    cr_assert(rn_results_exists(r, "/analyses/confusion/test"));
    cr_assert(rn_results_exists(r, "/analyses/samples/val/images"));
    cr_assert(rn_results_exists(r, "/analyses/red1/probs"));
    char *yaml = NULL;
    cr_assert_eq(rn_results_get_attr_str(r, "/config", "yaml", &yaml, &err), 0);
    cr_assert(strstr(yaml, "epochs: 4"), "resolved config lacks the epochs: %s", yaml);
    free(yaml);
    /* a confusion matrix counts every test image once */
    void *data;
    int ndim, dims[4];
    cr_assert_eq(rn_results_read(r, "/analyses/confusion/test", RN_DTYPE_I32, &data, &ndim, dims,
                                 &err), 0, "%s", err.msg);
    int total = 0;
    for (int i = 0; i < 100; i++)
        total += ((int *)data)[i];
    cr_assert_eq(total, 300);
    free(data);
    rn_results_close(r);
    /* figures */
    struct stat st;
    snprintf(path, sizeof path, "%s/plots/curves.png", dir);
    cr_assert_eq(stat(path, &st), 0, "%s missing", path);
    snprintf(path, sizeof path, "%s/plots/confusion_test.png", dir);
    cr_assert_eq(stat(path, &st), 0, "%s missing", path);
    snprintf(path, sizeof path, "%s/plots/red1.png", dir);
    cr_assert_eq(stat(path, &st), 0, "%s missing", path);
    /* runner plot redraws from the file alone */
    cr_assert_eq(sh(NULL, 0, "rm -rf %s/plots && %s plot %s >/dev/null 2>&1", dir, RN_RUNNER_BIN,
                    dir), 0);
    snprintf(path, sizeof path, "%s/plots/curves.png", dir);
    cr_assert_eq(stat(path, &st), 0, "runner plot did not redraw %s", path);
}

Test(e2e, same_seed_gives_identical_metrics, .timeout = 300)
{
    make_tmp();
    char a[300], b[300], pa[400], pb[400];
    snprintf(a, sizeof a, "%s/a", tmp);
    snprintf(b, sizeof b, "%s/b", tmp);
    cr_assert_eq(train_fixture(a, "train.epochs=2"), 0);
    cr_assert_eq(train_fixture(b, "train.epochs=2"), 0);
    snprintf(pa, sizeof pa, "%s/run.h5", a);
    snprintf(pb, sizeof pb, "%s/run.h5", b);
    struct rn_results *ra, *rb;
    struct rn_error err;
    cr_assert_eq(rn_results_open(&ra, pa, &err), 0);
    cr_assert_eq(rn_results_open(&rb, pb, &err), 0);
    const char *names[] = {"train/loss", "val/accuracy", "test/loss"};
    for (int k = 0; k < 3; k++) {
        double *xa, *va, *xb, *vb;
        int na, nb;
        cr_assert_eq(rn_results_read_metric(ra, names[k], &xa, &va, &na, &err), 0);
        cr_assert_eq(rn_results_read_metric(rb, names[k], &xb, &vb, &nb, &err), 0);
        cr_assert_eq(na, nb);
        for (int i = 0; i < na; i++)
            cr_assert_eq(va[i], vb[i], "%s[%d]: %.17g vs %.17g", names[k], i, va[i], vb[i]);
        free(xa), free(va), free(xb), free(vb);
    }
    rn_results_close(ra);
    rn_results_close(rb);
}

static float *read_probs(const char *dir)
{
    char path[400];
    snprintf(path, sizeof path, "%s/run.h5", dir);
    struct rn_results *r;
    struct rn_error err;
    cr_assert_eq(rn_results_open(&r, path, &err), 0, "%s", err.msg);
    void *data;
    int ndim, dims[4];
    cr_assert_eq(rn_results_read(r, "/analyses/red1/probs", RN_DTYPE_F32, &data, &ndim, dims, &err),
                 0, "%s", err.msg);
    rn_results_close(r);
    return data;
}

Test(e2e, saved_model_loads_back_to_identical_outputs, .timeout = 300)
{
    make_tmp();
    char a[300], b[300];
    snprintf(a, sizeof a, "%s/a", tmp);
    snprintf(b, sizeof b, "%s/b", tmp);
    cr_assert_eq(train_fixture(a, "train.epochs=1"), 0);
    char out[8192];
    /* the same spec, the training replaced by loading the first run's checkpoint */
    int rc = sh(out, sizeof out,
                "cd %s && sed -e '/^train:/,/^analyses:/{/^analyses:/!d}' tests/fixtures/e2e_lazy.yaml "
                "> %s/load.yaml && printf 'load:\\n  run: %s\\n' >> %s/load.yaml && "
                "%s %s/load.yaml %s --out %s --quiet 2>&1",
                SRC, tmp, a, tmp, RN_RUNNER_BIN, tmp, FIXTURE_DATA, b);
    cr_assert_eq(rc, 0, "%s", out);
    float *pa = read_probs(a), *pb = read_probs(b);
    for (int i = 0; i < 10; i++)
        cr_assert_eq(pa[i], pb[i], "probability %d: %.9g trained vs %.9g loaded", i, pa[i], pb[i]);
    free(pa);
    free(pb);
}

Test(e2e, sigterm_leaves_a_readable_interrupted_file, .timeout = 300)
{
    make_tmp();
    char dir[300], cmd[2048];
    snprintf(dir, sizeof dir, "%s/a", tmp);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        snprintf(cmd, sizeof cmd, "%s/tests/fixtures/e2e_lazy.yaml", SRC);
        char out[400];
        snprintf(out, sizeof out, "%s", dir);
        if (chdir(SRC) != 0)
            _exit(99);
        char logp[400];
        snprintf(logp, sizeof logp, "%s/log", tmp);
        if (!freopen(logp, "w", stderr))
            _exit(97);
        execl(RN_RUNNER_BIN, RN_RUNNER_BIN, cmd, FIXTURE_DATA, "train.epochs=1000", "--out", out,
              (char *)NULL);
        _exit(98);
    }
    /* wait until the runner reports its second epoch (the first is on disk), then stop it */
    char path[400];
    snprintf(path, sizeof path, "%s/run.h5", dir);
    for (int i = 0; i < 1200; i++) {
        usleep(100000);
        if (sh(NULL, 0, "grep -q 'epoch 2/' %s/log", tmp) == 0)
            break;
    }
    kill(pid, SIGTERM);
    int st;
    waitpid(pid, &st, 0);
    cr_assert(WIFEXITED(st), "the runner died from a signal instead of stopping cleanly");
    cr_assert_eq(WEXITSTATUS(st), 130);
    struct rn_results *r;
    struct rn_error err;
    cr_assert_eq(rn_results_open(&r, path, &err), 0, "%s", err.msg);
    char *status = NULL;
    cr_assert_eq(rn_results_get_attr_str(r, "/", "status", &status, &err), 0, "%s", err.msg);
    cr_assert_str_eq(status, "interrupted");
    free(status);
    uint64_t epochs = 0;
    cr_assert_eq(rn_results_get_attr_u64(r, "/", "epochs_done", &epochs, &err), 0);
    cr_assert_geq(epochs, 1);
    cr_assert(rn_results_exists(r, "/models/main/conv1.weight"), "the last checkpoint is missing");
    rn_results_close(r);
}

Test(e2e, every_committed_experiment_validates, .timeout = 120)
{
    char out[16384];
    int rc = sh(out, sizeof out,
                "cd %s && for f in experiments/*.yaml; do [ $f = experiments/report.yaml ] || "
                "%s validate $f || echo FAILED $f; done 2>&1", /* report.yaml: test_report */
                SRC, RN_RUNNER_BIN);
    cr_assert_eq(rc, 0);
    cr_assert_null(strstr(out, "FAILED"), "%s", out);
    cr_assert(strstr(out, "task1_lazy.yaml: ok: model 'simple_gap_cnn', 12 nodes"), "%s", out);
}

Test(e2e, bad_input_gives_one_clear_line)
{
    char out[4096];
    int rc = sh(out, sizeof out, "cd %s && %s tests/fixtures/e2e_lazy.yaml data.dir=/nonexistent --quiet 2>&1",
                SRC, RN_RUNNER_BIN);
    cr_assert_eq(rc, 1);
    cr_assert_str_eq(out, "runner: /nonexistent/train-images-idx3-ubyte: not found (nor .gz); run "
                          "scripts/fetch-mnist.sh or set data.dir to the folder holding the MNIST "
                          "IDX files\n");
    rc = sh(out, sizeof out, "%s /no/such.yaml 2>&1", RN_RUNNER_BIN);
    cr_assert_eq(rc, 1);
    cr_assert_str_eq(out, "/no/such.yaml: error: cannot open: No such file or directory\n");
    rc = sh(out, sizeof out, "%s --device gpu x.yaml 2>&1", RN_RUNNER_BIN);
    cr_assert_eq(rc, 2);
    cr_assert(strstr(out, "--device expects auto, cpu or cuda, got 'gpu'"), "%s", out);
}

Test(e2e, load_if_missing_trains_then_loads, .timeout = 300)
{
    make_tmp();
    char out[8192];
    /* no such run: the train section runs */
    int rc = sh(out, sizeof out,
                "cd %s && %s tests/fixtures/e2e_lazy.yaml %s train.epochs=1 load.run=%s/a "
                "load.if_missing=train --out %s/a 2>&1",
                SRC, RN_RUNNER_BIN, FIXTURE_DATA, tmp, tmp);
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, "does not exist: training instead (load.if_missing: train)"), "%s", out);
    cr_assert(strstr(out, "epoch 1/1"), "%s", out);
    /* now it exists: loaded, not trained, and the probe gives the same probabilities */
    rc = sh(out, sizeof out,
            "cd %s && %s tests/fixtures/e2e_lazy.yaml %s train.epochs=1 load.run=%s/a "
            "load.if_missing=train --out %s/b 2>&1",
            SRC, RN_RUNNER_BIN, FIXTURE_DATA, tmp, tmp);
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, "loading the model of"), "%s", out);
    cr_assert_null(strstr(out, "epoch 1/1"), "a loaded model was trained again: %s", out);
    char a[300], b[300];
    snprintf(a, sizeof a, "%s/a", tmp);
    snprintf(b, sizeof b, "%s/b", tmp);
    float *pa = read_probs(a), *pb = read_probs(b);
    for (int i = 0; i < 10; i++)
        cr_assert_eq(pa[i], pb[i]);
    free(pa);
    free(pb);
}

Test(e2e, compare_draws_runs_side_by_side, .timeout = 300)
{
    make_tmp();
    char a[300], b[300], out[8192];
    snprintf(a, sizeof a, "%s/a", tmp);
    snprintf(b, sizeof b, "%s/b", tmp);
    cr_assert_eq(train_fixture(a, "train.epochs=2"), 0);
    cr_assert_eq(train_fixture(b, "train.epochs=1 --seed 4"), 0);
    int rc = sh(out, sizeof out, "%s compare %s %s --out %s/cmp 2>&1", RN_RUNNER_BIN, a, b, tmp);
    cr_assert_eq(rc, 0, "%s", out);
    struct stat st;
    char path[400];
    snprintf(path, sizeof path, "%s/cmp/compare_epochs.png", tmp);
    cr_assert(stat(path, &st) == 0 && st.st_size > 2000, "%s missing or empty", path);
    snprintf(path, sizeof path, "%s/cmp/compare_summary.png", tmp);
    cr_assert(stat(path, &st) == 0 && st.st_size > 2000, "%s missing or empty", path);
    /* the table names both runs */
    rc = sh(out, sizeof out, "cat %s/cmp/compare.txt", tmp);
    cr_assert_eq(rc, 0);
    cr_assert(strstr(out, "e2e_lazy"), "%s", out);
    /* two runs of one experiment are told apart by their folders */
    cr_assert(strstr(out, "e2e_lazy:a "), "%s", out);
    cr_assert(strstr(out, "e2e_lazy:b "), "%s", out);
    rc = sh(out, sizeof out, "%s compare /no/such/run --out %s/cmp2 2>&1", RN_RUNNER_BIN, tmp);
    cr_assert_eq(rc, 1, "%s", out);
    cr_assert(strstr(out, "/no/such/run"), "%s", out);
}
