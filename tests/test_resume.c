/* Resume: a run stopped after step k (as an interrupt stops it, with a
 * checkpoint there; or as a crash does, without one, so that it goes on from
 * the last periodic checkpoint) and resumed ends with every dataset of run.h5
 * (metrics, model, confusion matrices) bitwise equal to a straight run's, on a
 * spec with dropout, colour augmentation, Adam and a scheduled lr. Also: a
 * changed spec is refused with its keys named, a live run's lock refuses a
 * second writer, and NaN/Inf stop (or skip) a step with the step, the term or
 * the parameter named. */
#include <criterion/criterion.h>
#include <hdf5.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runner/run.h"
#include "runner/spec.h"
#include "runner/train.h"
#include "sh.h"

#define SPEC RN_FIXTURES "/resume.yaml"
#define DATA "data.dir=" RN_FIXTURES "/mnist"

static char tmp[256];

static void make_tmp(void)
{
    snprintf(tmp, sizeof tmp, "/tmp/rn_resume_XXXXXX");
    cr_assert_not_null(mkdtemp(tmp));
}

static struct rn_spec *load_spec2(const char *extra, const char *extra2)
{
    struct rn_spec *sp = calloc(1, sizeof *sp);
    cr_assert_not_null(sp);
    const char *ov[] = {DATA, "threads=1", extra, extra2, NULL};
    struct rn_error err;
    cr_assert_eq(rn_spec_load(sp, SPEC, ov, stderr, NULL, &err), 0, "%s", err.msg);
    return sp;
}

static struct rn_spec *load_spec(const char *extra)
{
    return load_spec2(extra, NULL);
}

static void free_spec(struct rn_spec *sp)
{
    rn_spec_free(sp);
    free(sp);
}

/* One process's part of a run: opened (resumed when resume), trained, closed
 * with the status the runner would give it. Returns rn_run_train's result. */
static int run_part(const struct rn_spec *sp, const char *dir, int resume, uint64_t stop, int hard,
                    char *msg, size_t msg_size)
{
    struct rn_run run;
    struct rn_error err = {{0}};
    struct rn_run_options opt = {
        .out_dir = dir, .quiet = 1, .resume = resume, .stop_after_step = stop, .stop_hard = hard};
    rn_interrupted = 0;
    cr_assert_eq(rn_run_open(&run, sp, &opt, &err), 0, "%s", err.msg);
    int rc = rn_run_train(&run, &err);
    if (msg)
        snprintf(msg, msg_size, "%s", rc ? err.msg : "");
    /* a hard stop stands for kill -9: run.h5 keeps status "running" */
    rn_run_close(&run, rc               ? (hard ? "running" : "failed")
                       : rn_interrupted ? "interrupted"
                                        : "completed");
    rn_interrupted = 0;
    return rc;
}

/* ---- comparing two run.h5 files dataset by dataset ------------------------------------ */

struct cmp {
    hid_t other;
    int n, differ;
    char first[512];
};

/* Timings differ between any two runs. */
static int timing(const char *name)
{
    return strstr(name, "epoch_seconds") || strstr(name, "images_per_second");
}

static herr_t cmp_cb(hid_t obj, const char *name, const H5O_info_t *info, void *data)
{
    struct cmp *c = data;
    if (info->type != H5O_TYPE_DATASET || timing(name))
        return 0;
    c->n++;
    hid_t a = H5Dopen2(obj, name, H5P_DEFAULT);
    hid_t b =
        H5Lexists(c->other, name, H5P_DEFAULT) > 0 ? H5Dopen2(c->other, name, H5P_DEFAULT) : -1;
    int same = 0;
    if (b >= 0) {
        hid_t ta = H5Dget_type(a), na = H5Tget_native_type(ta, H5T_DIR_ASCEND);
        size_t bytes = H5Tget_size(na) * (size_t)H5Sget_simple_extent_npoints(H5Dget_space(a));
        size_t bytes_b = H5Tget_size(na) * (size_t)H5Sget_simple_extent_npoints(H5Dget_space(b));
        if (bytes == bytes_b) {
            char *x = calloc(1, bytes + 1), *y = calloc(1, bytes + 1);
            same = H5Dread(a, na, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) >= 0 &&
                   H5Dread(b, na, H5S_ALL, H5S_ALL, H5P_DEFAULT, y) >= 0 &&
                   memcmp(x, y, bytes) == 0;
            free(x);
            free(y);
        }
        H5Tclose(na);
        H5Tclose(ta);
        H5Dclose(b);
    }
    H5Dclose(a);
    if (!same && !c->differ++)
        snprintf(c->first, sizeof c->first, "%s", name);
    return 0;
}

/* Every dataset of a (timings aside) equal bitwise in b, and b has no other;
 * returns how many differ, the first named in first. */
static int compare_files(const char *pa, const char *pb, char *first, size_t first_size,
                         int *n_datasets)
{
    hid_t fa = H5Fopen(pa, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t fb = H5Fopen(pb, H5F_ACC_RDONLY, H5P_DEFAULT);
    cr_assert(fa >= 0 && fb >= 0, "cannot open %s or %s", pa, pb);
    struct cmp ab = {fb, 0, 0, ""}, ba = {fa, 0, 0, ""};
    H5Ovisit2(fa, H5_INDEX_NAME, H5_ITER_INC, cmp_cb, &ab, H5O_INFO_BASIC);
    H5Ovisit2(fb, H5_INDEX_NAME, H5_ITER_INC, cmp_cb, &ba, H5O_INFO_BASIC);
    H5Fclose(fa);
    H5Fclose(fb);
    snprintf(first, first_size, "%s", ab.differ ? ab.first : ba.first);
    *n_datasets = ab.n;
    return ab.differ + ba.differ;
}

static void straight_run(const struct rn_spec *sp, char *dir, size_t size)
{
    snprintf(dir, size, "%s/straight", tmp);
    cr_assert_eq(run_part(sp, dir, 0, 0, 0, NULL, 0), 0);
}

static void expect_same(const char *straight, const char *dir, const char *what)
{
    char pa[400], pb[400], first[512];
    int n = 0;
    snprintf(pa, sizeof pa, "%s/run.h5", straight);
    snprintf(pb, sizeof pb, "%s/run.h5", dir);
    int d = compare_files(pa, pb, first, sizeof first, &n);
    cr_assert_eq(d, 0, "%s: %d datasets differ from the straight run's, first %s", what, d, first);
    /* 9 metrics, 6 parameters, 2 confusion matrices */
    cr_assert_geq(n, 17, "only %d datasets compared", n);
}

static void expect_status(const char *dir, const char *want)
{
    char path[400];
    snprintf(path, sizeof path, "%s/run.h5", dir);
    struct rn_results *r;
    struct rn_error err;
    char *status = NULL;
    cr_assert_eq(rn_results_open(&r, path, &err), 0, "%s", err.msg);
    cr_assert_eq(rn_results_get_attr_str(r, "/", "status", &status, &err), 0, "%s", err.msg);
    cr_assert_str_eq(status, want);
    free(status);
    rn_results_close(r);
}

/* k: steps 3 (inside the first log interval), 8 (an epoch's last), 13 (mid
 * epoch 2, off the log grid), 17 (mid epoch 3), 24 (the last). */
Test(resume, interrupted_at_step_k_then_resumed_is_bitwise_a_straight_run, .timeout = 300)
{
    make_tmp();
    struct rn_spec *sp = load_spec(NULL);
    char straight[300];
    straight_run(sp, straight, sizeof straight);
    const uint64_t ks[] = {3, 8, 13, 17, 24};
    for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++) {
        char dir[300], what[64];
        snprintf(dir, sizeof dir, "%s/k%llu", tmp, (unsigned long long)ks[i]);
        cr_assert_eq(run_part(sp, dir, 0, ks[i], 0, NULL, 0), 0);
        /* a stop with the last step still leaves the analyses to do */
        expect_status(dir, "interrupted");
        cr_assert_eq(run_part(sp, dir, 1, 0, 0, NULL, 0), 0);
        expect_status(dir, "completed");
        snprintf(what, sizeof what, "stopped after step %llu", (unsigned long long)ks[i]);
        expect_same(straight, dir, what);
    }
    free_spec(sp);
}

/* A crash after step k leaves run.h5 with steps past the last checkpoint
 * (every 5 steps, and at the epochs' ends): they are written again, once. */
Test(resume, crashed_after_step_k_resumes_from_the_last_checkpoint, .timeout = 300)
{
    make_tmp();
    struct rn_spec *sp = load_spec(NULL);
    char straight[300];
    straight_run(sp, straight, sizeof straight);
    const uint64_t ks[] = {4, 9, 14, 22};
    for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++) {
        char dir[300], what[64], msg[512];
        snprintf(dir, sizeof dir, "%s/crash%llu", tmp, (unsigned long long)ks[i]);
        cr_assert_eq(run_part(sp, dir, 0, ks[i], 1, msg, sizeof msg), -1);
        cr_assert(strstr(msg, "without a checkpoint"), "%s", msg);
        expect_status(dir, "running");
        /* stale: the process that wrote "running" holds no lock any more */
        cr_assert_eq(rn_run_lock_held(dir, NULL, 0), 0);
        cr_assert_eq(run_part(sp, dir, 1, 0, 0, NULL, 0), 0);
        snprintf(what, sizeof what, "crashed after step %llu", (unsigned long long)ks[i]);
        expect_same(straight, dir, what);
        /* twice in a row: a resumed run stopped again resumes as well */
        snprintf(dir, sizeof dir, "%s/twice%llu", tmp, (unsigned long long)ks[i]);
        cr_assert_eq(run_part(sp, dir, 0, ks[i], 0, NULL, 0), 0);
        cr_assert_eq(run_part(sp, dir, 1, ks[i] + 6 < 24 ? ks[i] + 6 : 24, 1, msg, sizeof msg), -1);
        cr_assert_eq(run_part(sp, dir, 1, 0, 0, NULL, 0), 0);
        expect_same(straight, dir, "stopped twice");
    }
    free_spec(sp);
}

/* Without a checkpoint (stopped before the first), a resume starts over. */
Test(resume, without_a_checkpoint_starts_over, .timeout = 120)
{
    make_tmp();
    struct rn_spec *sp = load_spec("train.checkpoint_steps=0");
    char straight[300], dir[300], msg[512];
    straight_run(sp, straight, sizeof straight);
    snprintf(dir, sizeof dir, "%s/early", tmp);
    cr_assert_eq(run_part(sp, dir, 0, 3, 1, msg, sizeof msg), -1);
    cr_assert_eq(run_part(sp, dir, 1, 0, 0, NULL, 0), 0);
    expect_same(straight, dir, "started over");
    /* and the comparison sees a difference where there is one: another seed */
    struct rn_spec *other = load_spec2("train.checkpoint_steps=0", "seed=12");
    char pa[400], pb[400], first[512];
    int n = 0;
    snprintf(dir, sizeof dir, "%s/seed12", tmp);
    cr_assert_eq(run_part(other, dir, 0, 0, 0, NULL, 0), 0);
    snprintf(pa, sizeof pa, "%s/run.h5", straight);
    snprintf(pb, sizeof pb, "%s/run.h5", dir);
    cr_assert_gt(compare_files(pa, pb, first, sizeof first, &n), 10);
    free_spec(other);
    free_spec(sp);
}

/* ---- the command line: spec changes, the lock, the exit status ---------------------- */

Test(resume, a_changed_spec_is_refused_with_its_keys, .timeout = 120)
{
    make_tmp();
    char out[4096];
    int rc = sh(out, sizeof out,
                "cd %s && %s %s %s threads=1 --quiet --out %s/a 2>&1 && "
                "%s %s %s threads=1 train.epochs=5 data.bias=0.9 --quiet --resume %s/a 2>&1",
                RN_SOURCE_DIR, RN_RUNNER_BIN, SPEC, DATA, tmp, RN_RUNNER_BIN, SPEC, DATA, tmp);
    cr_assert_eq(rc, 1, "%s", out);
    cr_assert_str_eq(out, "runner: resume: spec differs at data.bias (0.95 -> 0.9), train.epochs "
                          "(3 -> 5); use --force to resume anyway\n");
    /* the same spec: a completed run is left alone */
    rc = sh(out, sizeof out, "cd %s && %s %s %s threads=1 --quiet --resume %s/a 2>&1",
            RN_SOURCE_DIR, RN_RUNNER_BIN, SPEC, DATA, tmp);
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, "completed already; nothing to do"), "%s", out);
    rc = sh(out, sizeof out, "cd %s && %s resume %s/nothing 2>&1", RN_SOURCE_DIR, RN_RUNNER_BIN,
            tmp);
    cr_assert_eq(rc, 1, "%s", out);
    cr_assert(strstr(out, "/nothing/run.h5: cannot open"), "%s", out);
}

/* SIGTERM mid-run: exit 143, status interrupted; `runner resume` finishes it
 * as the straight run would have. */
Test(resume, sigterm_then_runner_resume, .timeout = 300)
{
    make_tmp();
    char out[4096];
    cr_assert_eq(sh(out, sizeof out, "cd %s && %s %s %s threads=1 --quiet --out %s/straight 2>&1",
                    RN_SOURCE_DIR, RN_RUNNER_BIN, SPEC, DATA, tmp),
                 0, "%s", out);
    /* long enough to be caught mid-run: many epochs, then compared on a fresh straight run */
    int rc = sh(out, sizeof out,
                "cd %s && (%s %s %s threads=1 train.epochs=400 --quiet --out %s/b 2>&1 & "
                "pid=$!; for i in $(seq 600); do [ -e %s/b/run.h5 ] && break; sleep 0.05; done; "
                "sleep 0.5; kill -TERM $pid; wait $pid; echo exit $?)",
                RN_SOURCE_DIR, RN_RUNNER_BIN, SPEC, DATA, tmp, tmp);
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, "exit 143"), "%s", out);
    char b[300];
    snprintf(b, sizeof b, "%s/b", tmp);
    expect_status(b, "interrupted");
    /* a second writer while none runs: the lock is free */
    cr_assert_eq(rn_run_lock_held(b, NULL, 0), 0);
    rc = sh(out, sizeof out, "cd %s && %s resume %s --quiet --force 2>&1", RN_SOURCE_DIR,
            RN_RUNNER_BIN, b);
    cr_assert_eq(rc, 0, "%s", out);
    expect_status(b, "completed");
}

Test(resume, a_live_run_locks_its_folder, .timeout = 120)
{
    make_tmp();
    char out[4096];
    int rc = sh(out, sizeof out,
                "cd %s && (%s %s %s threads=1 train.epochs=400 --quiet --out %s/a 2>/dev/null & "
                "pid=$!; for i in $(seq 600); do [ -e %s/a/run.h5 ] && break; sleep 0.05; done; "
                "%s %s %s threads=1 --quiet --out %s/a 2>&1; "
                "%s resume %s/a 2>&1; kill -INT $pid; wait $pid; echo exit $?)",
                RN_SOURCE_DIR, RN_RUNNER_BIN, SPEC, DATA, tmp, tmp, RN_RUNNER_BIN, SPEC, DATA, tmp,
                RN_RUNNER_BIN, tmp);
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, "is being written by another runner (pid "), "%s", out);
    cr_assert(strstr(out, "resume: ") && strstr(out, "/a is still running (pid "), "%s", out);
    cr_assert(strstr(out, "exit 130"), "%s", out);
}

/* ---- NaN and Inf ----------------------------------------------------------------------- */

/* lr 1e30 with SGD: the first update sends the weights to +-1e30 and more;
 * the next forward overflows. */
#define DIVERGE "train.optimizers=[{name: main, type: sgd, lr: 1e30}]"

Test(resume, a_nonfinite_step_stops_the_run_with_step_and_name, .timeout = 120)
{
    make_tmp();
    struct rn_spec *sp = load_spec(DIVERGE);
    char dir[300], msg[512];
    snprintf(dir, sizeof dir, "%s/nan", tmp);
    cr_assert_eq(run_part(sp, dir, 0, 0, 0, msg, sizeof msg), -1);
    cr_assert(strncmp(msg, "train: step ", 12) == 0, "%s", msg);
    cr_assert(strstr(msg, " (epoch 1): ") &&
                  (strstr(msg, "loss term 'digit' is ") || strstr(msg, "gradient of ") ||
                   strstr(msg, "after its update")),
              "%s", msg);
    cr_assert(strstr(msg, "no checkpoint was written before it") ||
                  strstr(msg, "the last good checkpoint is "),
              "%s", msg);
    expect_status(dir, "failed");
    free_spec(sp);
}

Test(resume, the_exact_message_of_a_nan_loss, .timeout = 120)
{
    make_tmp();
    /* an lr of 1e30 on Adam: the first update moves every weight by about
     * 1e30; the second step's loss is NaN (inf - inf in the softmax) or its
     * gradients are */
    struct rn_spec *sp = load_spec("train.optimizers=[{name: main, type: adam, lr: 1e30}]");
    char dir[300], msg[512];
    snprintf(dir, sizeof dir, "%s/nan", tmp);
    cr_assert_eq(run_part(sp, dir, 0, 0, 0, msg, sizeof msg), -1);
    cr_assert_str_eq(msg, "train: step 2 (epoch 1): loss term 'digit' is NaN; no checkpoint was "
                          "written before it; lower train.lr, or set train.on_nonfinite: skip");
    free_spec(sp);
}

Test(resume, skip_counts_nonfinite_steps, .timeout = 120)
{
    make_tmp();
    struct rn_spec *sp = load_spec2("train.optimizers=[{name: main, type: adam, lr: 1e30}]",
                                    "train.on_nonfinite=skip");
    char dir[300], msg[512], path[400];
    snprintf(dir, sizeof dir, "%s/skip", tmp);
    cr_assert_eq(run_part(sp, dir, 0, 0, 0, msg, sizeof msg), 0, "%s", msg);
    expect_status(dir, "completed");
    snprintf(path, sizeof path, "%s/run.h5", dir);
    struct rn_results *r;
    struct rn_error err;
    uint64_t skipped = 0;
    cr_assert_eq(rn_results_open(&r, path, &err), 0, "%s", err.msg);
    cr_assert_eq(rn_results_get_attr_u64(r, "/", "nonfinite_skipped", &skipped, &err), 0, "%s",
                 err.msg);
    rn_results_close(r);
    /* step 1 updates, every later step has a NaN loss and is skipped */
    cr_assert_eq(skipped, 23, "skipped %llu steps", (unsigned long long)skipped);
    free_spec(sp);
}

Test(resume, rn_tensor_nonfinite_tells_nan_from_inf)
{
    float x[37];
    for (int i = 0; i < 37; i++)
        x[i] = (float)(i - 18) * 1e37f; /* large, finite */
    struct rn_tensor t = rn_tensor_view(x, 37, 1, 1, 1);
    cr_assert_eq(rn_tensor_nonfinite(&t), 0);
    x[36] = -INFINITY;
    cr_assert_eq(rn_tensor_nonfinite(&t), 'I');
    x[5] = NAN;
    cr_assert_eq(rn_tensor_nonfinite(&t), 'N');
    x[36] = 0;
    cr_assert_eq(rn_tensor_nonfinite(&t), 'N');
}
