/* `runner compare`: which metrics it draws and which run is the control come
 * from its arguments (--metric, --bar, --control), the defaults being the
 * test accuracy per epoch and val/test accuracy bars. Two short runs of the
 * committed fixture; the data files' numbers are checked against the runs'
 * own metrics, and every refusal against its exact message. */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "runner/results.h"
#include "sh.h"

#define SRC RN_SOURCE_DIR
#define FIXTURE_DATA "data.dir=" RN_FIXTURES "/mnist"

/* The per-epoch metrics of a fixture run with eval [train, val, test]. */
#define EPOCH_METRICS                                                                             \
    "test/accuracy, test/loss, train/epoch_loss, train/epoch_seconds, "                           \
    "train/images_per_second, train_eval/accuracy, train_eval/loss, val/accuracy, val/loss"

static char tmp[64];

/* Two runs: a (3 epochs) and b (2 epochs, another seed), no analyses. */
static void two_runs(void)
{
    snprintf(tmp, sizeof tmp, "/tmp/rn_compare_XXXXXX");
    cr_assert_not_null(mkdtemp(tmp));
    char out[8192];
    int rc = sh(out, sizeof out,
                "cd %s && %s tests/fixtures/e2e_lazy.yaml %s train.epochs=3 'analyses=[]' --out %s/a --quiet "
                "2>&1 && %s tests/fixtures/e2e_lazy.yaml %s train.epochs=2 'analyses=[]' --seed 4 --out %s/b "
                "--quiet 2>&1",
                SRC, RN_RUNNER_BIN, FIXTURE_DATA, tmp, RN_RUNNER_BIN, FIXTURE_DATA, tmp);
    cr_assert_eq(rc, 0, "%s", out);
}

static void cleanup(void)
{
    char out[256];
    sh(out, sizeof out, "rm -rf %s", tmp);
}

/* value of metric name at epoch e of run dir */
static double metric_at(const char *run, const char *name, int e)
{
    char file[256];
    snprintf(file, sizeof file, "%s/%s/run.h5", tmp, run);
    struct rn_results *r;
    struct rn_error err;
    cr_assert_eq(rn_results_open(&r, file, &err), 0, "%s", err.msg);
    double *x, *v, found = -1;
    int n;
    cr_assert_eq(rn_results_read_metric(r, name, &x, &v, &n, &err), 0, "%s", err.msg);
    for (int i = 0; i < n; i++)
        if ((int)x[i] == e)
            found = v[i];
    free(x);
    free(v);
    rn_results_close(r);
    cr_assert_neq(found, -1, "%s has no %s at epoch %d", run, name, e);
    return found;
}

static void read_file(const char *rel, char *out, size_t cap)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", tmp, rel);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s", path);
    size_t n = fread(out, 1, cap - 1, f);
    out[n] = 0;
    fclose(f);
}

static void defaults_draw_test_accuracy_and_val_test_bars(void)
{
    char out[8192], want[1024], line[256];
    int rc = sh(out, sizeof out, "%s compare %s/a %s/b --out %s/cmp 2>&1", RN_RUNNER_BIN, tmp, tmp,
                tmp);
    cr_assert_eq(rc, 0, "%s", out);
    /* run a's epochs: epoch, test accuracy %, the colour head's (none: NaN) */
    read_file("cmp/data/compare_epochs_1.dat", out, sizeof out);
    snprintf(want, sizeof want,
             "# e2e_lazy:a (%s/a): epoch, test/accuracy %%, test/colour_accuracy %%\n", tmp);
    for (int e = 1; e <= 3; e++) {
        snprintf(line, sizeof line, "%d %.4f NaN\n", e, 100 * metric_at("a", "test/accuracy", e));
        strcat(want, line);
    }
    cr_expect_str_eq(out, want);
    /* the bars at the last epoch both runs reached (2) */
    read_file("cmp/data/compare_summary.dat", out, sizeof out);
    snprintf(want, sizeof want,
             "# label, val/accuracy %%, test/accuracy %%, epoch used\n"
             "\"e2e_lazy:a (2 ep)\" %.4f %.4f 2\n\"e2e_lazy:b (2 ep)\" %.4f %.4f 2\n",
             100 * metric_at("a", "val/accuracy", 2), 100 * metric_at("a", "test/accuracy", 2),
             100 * metric_at("b", "val/accuracy", 2), 100 * metric_at("b", "test/accuracy", 2));
    cr_expect_str_eq(out, want);
    read_file("cmp/compare.txt", out, sizeof out);
    snprintf(want, sizeof want, "%-32s %6s %10s %10s\n%-32s %6d %9.2f%% %9.2f%%\n", "run", "epoch",
             "easy val", "hard test", "e2e_lazy:a", 2, 100 * metric_at("a", "val/accuracy", 2),
             100 * metric_at("a", "test/accuracy", 2));
    cr_expect(strstr(out, want) == out, "%s", out);
}

static void metrics_bars_and_control_from_the_arguments(void)
{
    char out[8192], want[1024], line[256];
    int rc = sh(out, sizeof out,
                "%s compare %s/a %s/b --out %s/cmp --metric val/loss --metric "
                "'train_eval/accuracy=train accuracy' --bar test/loss --control %s/b 2>&1",
                RN_RUNNER_BIN, tmp, tmp, tmp, tmp);
    cr_assert_eq(rc, 0, "%s", out);
    struct stat st;
    char path[256];
    snprintf(path, sizeof path, "%s/cmp/compare_epochs.png", tmp);
    cr_expect(stat(path, &st) == 0 && st.st_size > 2000, "%s missing or empty", path);
    /* run b's epochs: the loss as it is, the accuracy in percent */
    read_file("cmp/data/compare_epochs_2.dat", out, sizeof out);
    snprintf(want, sizeof want, "# e2e_lazy:b (%s/b): epoch, val/loss, train_eval/accuracy %%\n",
             tmp);
    for (int e = 1; e <= 2; e++) {
        snprintf(line, sizeof line, "%d %.6g %.4f\n", e, metric_at("b", "val/loss", e),
                 100 * metric_at("b", "train_eval/accuracy", e));
        strcat(want, line);
    }
    cr_expect_str_eq(out, want);
    read_file("cmp/data/compare_summary.dat", out, sizeof out);
    snprintf(want, sizeof want,
             "# label, test/loss, epoch used\n\"e2e_lazy:a (2 ep)\" %.6g 2\n"
             "\"e2e_lazy:b (2 ep)\" %.6g 2\n",
             metric_at("a", "test/loss", 2), metric_at("b", "test/loss", 2));
    cr_expect_str_eq(out, want);
    /* the table: the bar's name, the control marked */
    read_file("cmp/compare.txt", out, sizeof out);
    snprintf(want, sizeof want,
             "%-32s %6s %10s\n%-32s %6d %10.4g\n%-32s %6d %10.4g\n", "run", "epoch", "test/loss",
             "e2e_lazy:a", 2, metric_at("a", "test/loss", 2), "e2e_lazy:b (control)", 2,
             metric_at("b", "test/loss", 2));
    cr_expect_str_eq(out, want);
    /* a label names the control as well */
    rc = sh(out, sizeof out, "%s compare %s/a %s/b --out %s/cmp2 --control e2e_lazy:a 2>&1",
            RN_RUNNER_BIN, tmp, tmp, tmp);
    cr_assert_eq(rc, 0, "%s", out);
    read_file("cmp2/compare.txt", out, sizeof out);
    cr_expect(strstr(out, "\ne2e_lazy:a (control) "), "%s", out);
}

static void a_metric_a_run_lacks_is_named(void)
{
    char out[8192], want[2048];
    int rc = sh(out, sizeof out, "%s compare %s/a %s/b --out %s/cmp --metric test/nope 2>&1",
                RN_RUNNER_BIN, tmp, tmp, tmp);
    cr_expect_eq(rc, 1);
    snprintf(want, sizeof want,
             "runner: compare: %s/a/run.h5 has no per-epoch test/nope (its per-epoch metrics: "
             EPOCH_METRICS ")\n", tmp);
    cr_expect_str_eq(out, want);
    /* a per-step metric is not per epoch */
    rc = sh(out, sizeof out, "%s compare %s/a %s/b --out %s/cmp --bar train/loss 2>&1",
            RN_RUNNER_BIN, tmp, tmp, tmp);
    cr_expect_eq(rc, 1);
    snprintf(want, sizeof want,
             "runner: compare: %s/a/run.h5 has no per-epoch train/loss (it is there per step; "
             "its per-epoch metrics: " EPOCH_METRICS ")\n", tmp);
    cr_expect_str_eq(out, want);
}

static void bad_arguments(void)
{
    char out[4096], want[1024];
    int rc = sh(out, sizeof out, "%s compare %s/a %s/b --out %s/cmp --control %s/c 2>&1",
                RN_RUNNER_BIN, tmp, tmp, tmp, tmp);
    cr_expect_eq(rc, 1);
    snprintf(want, sizeof want,
             "runner: compare: --control %s/c is none of the runs (give a RUN_DIR as written or "
             "a label: e2e_lazy:a, e2e_lazy:b)\n", tmp);
    cr_expect_str_eq(out, want);
    rc = sh(out, sizeof out, "%s compare %s/a --out %s/cmp --metric 2>&1", RN_RUNNER_BIN, tmp, tmp);
    cr_expect_eq(rc, 2);
    cr_expect_str_eq(out, "runner: compare: --metric needs a value\nrun 'runner --help' for usage\n");
    rc = sh(out, sizeof out, "%s compare %s/a --out %s/cmp --bar =caption 2>&1", RN_RUNNER_BIN,
            tmp, tmp);
    cr_expect_eq(rc, 2);
    cr_expect_str_eq(out, "runner: compare: --bar needs a metric name (test/accuracy, val/loss, "
                          "...)\nrun 'runner --help' for usage\n");
    rc = sh(out, sizeof out,
            "%s compare %s/a --out %s/cmp --bar a --bar b --bar c --bar d --bar e --bar f --bar g "
            "--bar h --bar i 2>&1",
            RN_RUNNER_BIN, tmp, tmp);
    cr_expect_eq(rc, 2);
    cr_expect_str_eq(out, "runner: compare: at most 8 --bar options\nrun 'runner --help' for "
                          "usage\n");
}

/* One test: the two runs are trained once for every check. */
Test(compare, from_its_arguments, .timeout = 300)
{
    two_runs();
    defaults_draw_test_accuracy_and_val_test_bars();
    metrics_bars_and_control_from_the_arguments();
    a_metric_a_run_lacks_is_named();
    bad_arguments();
    cleanup();
}
