/* test_faults.c - faults with a clear message and nothing lost: a disk that
 * fills while run.h5 and checkpoint.h5 are written (an injected failure,
 * RN_FAULT_INJECT=h5write:N, and a real full tmpfs where this process may
 * mount one), an output folder that is read-only or disappears mid-run,
 * gnuplot missing or failing (the run completes; `runner plot` draws the
 * figures later), a data file changed between a run and its resume. Two
 * runs writing to one --out at once: test_resume's a_live_run_locks_its_folder. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runner/results.h"
#include "sh.h"

#define SPEC RN_FIXTURES "/resume.yaml"
#define RUN "cd " RN_SOURCE_DIR " && OMP_NUM_THREADS=1 " RN_RUNNER_BIN " " SPEC " threads=1 --quiet"

static char tmp[256];

static void make_tmp(void)
{
    snprintf(tmp, sizeof tmp, "/tmp/rn_faults_XXXXXX");
    cr_assert_not_null(mkdtemp(tmp));
}

static void cleanup(void)
{
    if (tmp[0])
        sh(NULL, 0, "rm -rf %s", tmp);
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
    cr_assert_str_eq(status, want, "%s: status %s, expected %s", dir, status, want);
    free(status);
    rn_results_close(r);
}

/* The run resumed in dir ends as a straight run does: every dataset bitwise. */
static void expect_same_as_straight(const char *dir)
{
    char out[4096];
    cr_assert_eq(sh(out, sizeof out, RUN " --out %s/straight 2>&1", tmp), 0, "%s", out);
    cr_assert_eq(sh(out, sizeof out,
                    "/usr/bin/python3 %s/scripts/h5-compare.py %s/straight/run.h5 "
                    "%s/run.h5 2>&1",
                    RN_SOURCE_DIR, tmp, dir),
                 0, "%s", out);
}

/* ---- a full disk ---------------------------------------------------------------------- */

Test(faults, disk_full_while_writing_keeps_the_last_checkpoint, .timeout = 300, .fini = cleanup)
{
    make_tmp();
    char out[4096], dir[400];
    snprintf(dir, sizeof dir, "%s/a", tmp);
    /* the 60th HDF5 write fails, and every later one: mid epoch 2, after a checkpoint */
    int rc = sh(out, sizeof out, "export RN_FAULT_INJECT=h5write:60; " RUN " --out %s 2>&1", dir);
    cr_assert_eq(rc, 1, "%s", out);
    cr_assert(strstr(out, "No space left on device (RN_FAULT_INJECT)"), "%s", out);
    /* run.h5 still opens (its status could not be written: "running", stale) */
    expect_status(dir, "running");
    rc = sh(out, sizeof out, "cd %s && %s resume %s --quiet 2>&1", RN_SOURCE_DIR, RN_RUNNER_BIN,
            dir);
    cr_assert_eq(rc, 0, "%s", out);
    expect_status(dir, "completed");
    expect_same_as_straight(dir);
}

Test(faults, disk_full_on_a_real_small_filesystem, .timeout = 300, .fini = cleanup)
{
    make_tmp();
    char mnt[400], out[4096];
    snprintf(mnt, sizeof mnt, "%s/small", tmp);
    cr_assert_eq(mkdir(mnt, 0700), 0);
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=160k") != 0)
        cr_skip_test("cannot mount a tmpfs here (%s): the injected fault above stands in for it",
                     strerror(errno));
    /* HDF5 keeps the buffers of a file it could not flush (LeakSanitizer would list them
     * at exit): leaks are not checked in this one runner process */
    int rc =
        sh(out, sizeof out, "export ASAN_OPTIONS=detect_leaks=0; " RUN " --out %s/a 2>&1", mnt);
    char a[400];
    snprintf(a, sizeof a, "%s/a", mnt);
    cr_assert_eq(rc, 1, "%s", out);
    cr_assert(strstr(out, "H5Fflush failed: no space left on device; free some space, then resume "
                          "the run (runner resume RUN_DIR)"),
              "%s", out);
    cr_assert_null(strstr(out, "AddressSanitizer"), "%s", out);
    /* room again: everything moves to a disk with space and resumes to the end */
    char dir[400];
    snprintf(dir, sizeof dir, "%s/moved", tmp);
    cr_assert_eq(sh(out, sizeof out, "cp -r %s %s 2>&1", a, dir), 0, "%s", out);
    umount(mnt);
    rc = sh(out, sizeof out, "cd %s && %s resume %s --quiet 2>&1", RN_SOURCE_DIR, RN_RUNNER_BIN,
            dir);
    cr_assert_eq(rc, 0, "%s", out);
    expect_status(dir, "completed");
    expect_same_as_straight(dir);
}

/* ---- the output folder ------------------------------------------------------------------ */

Test(faults, output_folder_read_only, .timeout = 120, .fini = cleanup)
{
    make_tmp();
    char ro[400], out[4096];
    snprintf(ro, sizeof ro, "%s/ro", tmp);
    cr_assert_eq(mkdir(ro, 0700), 0);
    if (geteuid() == 0) {
        /* root writes through permissions: a read-only mount, where allowed */
        if (mount("tmpfs", ro, "tmpfs", MS_RDONLY, "size=64k") != 0)
            cr_skip_test("running as root and cannot mount read-only here (%s)", strerror(errno));
    } else {
        cr_assert_eq(chmod(ro, 0500), 0);
    }
    int rc = sh(out, sizeof out, RUN " --out %s/a 2>&1", ro);
    if (geteuid() == 0)
        umount(ro);
    cr_assert_eq(rc, 1, "%s", out);
    char want[600];
    snprintf(want, sizeof want, "runner: %s/a: cannot create directory: %s\n", ro,
             geteuid() == 0 ? "Read-only file system" : "Permission denied");
    cr_assert(strstr(out, want), "%s", out);
}

Test(faults, output_folder_disappears_mid_run, .timeout = 120, .fini = cleanup)
{
    make_tmp();
    char out[8192];
    int rc = sh(out, sizeof out,
                "(" RUN " train.epochs=400 --out %s/gone 2>&1 & pid=$!; "
                "for i in $(seq 600); do [ -e %s/gone/run.h5 ] && break; sleep 0.05; done; "
                "sleep 0.3; rm -rf %s/gone; wait $pid; echo exit $?)",
                tmp, tmp, tmp);
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, "exit 1\n"), "%s", out);
    char want[600];
    snprintf(want, sizeof want,
             "runner: checkpoint: the run folder %s/gone is gone (No such file "
             "or directory); nothing more can be saved there (",
             tmp);
    cr_assert(strstr(out, want), "%s", out);
}

/* ---- gnuplot ---------------------------------------------------------------------------- */

/* The run completes without figures, says how to draw them later, and
 * `runner plot` draws them once gnuplot works. */
static void expect_figures_later(const char *out, const char *dir)
{
    char want[800], out2[4096];
    snprintf(want, sizeof want,
             "runner: the run itself is completed (%s/run.h5); draw its figures later with "
             "`runner plot %s`\n",
             dir, dir);
    cr_assert(strstr(out, want), "%s", out);
    expect_status(dir, "completed");
    cr_assert_eq(
        sh(out2, sizeof out2, "cd %s && %s plot %s 2>&1", RN_SOURCE_DIR, RN_RUNNER_BIN, dir), 0,
        "%s", out2);
    cr_assert_eq(sh(NULL, 0, "ls %s/plots/*.png >/dev/null 2>&1", dir), 0);
}

Test(faults, gnuplot_missing, .timeout = 120, .fini = cleanup)
{
    make_tmp();
    char out[4096], dir[400];
    snprintf(dir, sizeof dir, "%s/a", tmp);
    int rc = sh(out, sizeof out,
                "cd " RN_SOURCE_DIR " && PATH=%s OMP_NUM_THREADS=1 " RN_RUNNER_BIN " " SPEC
                " threads=1 train.epochs=1 --quiet --out %s 2>&1",
                tmp, dir);
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, "runner: figures: cannot run gnuplot: "), "%s", out);
    expect_figures_later(out, dir);
}

Test(faults, gnuplot_failing, .timeout = 120, .fini = cleanup)
{
    make_tmp();
    char out[4096], dir[400];
    snprintf(dir, sizeof dir, "%s/a", tmp);
    cr_assert_eq(sh(NULL, 0,
                    "mkdir %s/bin && printf '#!/bin/sh\\necho \"fake: cannot write: No space left "
                    "on device\" >&2\\nexit 1\\n' > %s/bin/gnuplot && chmod +x %s/bin/gnuplot",
                    tmp, tmp, tmp),
                 0);
    int rc = sh(out, sizeof out, "export PATH=%s/bin:$PATH; " RUN " train.epochs=1 --out %s 2>&1",
                tmp, dir);
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, "gnuplot failed (exit 1): fake: cannot write: No space left on device"),
              "%s", out);
    expect_figures_later(out, dir);
}

/* ---- the data -------------------------------------------------------------------------- */

Test(faults, a_data_file_changed_between_run_and_resume, .timeout = 300, .fini = cleanup)
{
    make_tmp();
    char out[4096], dir[400];
    snprintf(dir, sizeof dir, "%s/a", tmp);
    cr_assert_eq(sh(NULL, 0, "cp -r %s/mnist %s/data", RN_FIXTURES, tmp), 0);
    int rc =
        sh(out, sizeof out,
           "export RN_FAULT_INJECT=h5write:60; " RUN " data.dir=%s/data --out %s 2>&1", tmp, dir);
    cr_assert_eq(rc, 1, "%s", out);
    /* the same bytes written again: a new mtime is enough to refuse */
    cr_assert_eq(
        sh(NULL, 0, "touch -d '2001-01-01 00:00:00 UTC' %s/data/t10k-labels-idx1-ubyte.gz", tmp),
        0);
    rc = sh(out, sizeof out, "cd %s && %s resume %s --quiet 2>&1", RN_SOURCE_DIR, RN_RUNNER_BIN,
            dir);
    cr_assert_eq(rc, 1, "%s", out);
    char want[1024];
    snprintf(want, sizeof want,
             "runner: resume: data file %s/data/t10k-labels-idx1-ubyte.gz changed since the run "
             "started (it had size ",
             tmp);
    cr_assert(!strncmp(out, want, strlen(want)), "%s", out);
    cr_assert(strstr(out, "; now size ") && strstr(out, " mtime 978307200); the resumed run would "
                                                        "not continue the same one: restore the "
                                                        "file, or use --force\n"),
              "%s", out);
    /* truncated: refused the same way; gone: named as gone */
    cr_assert_eq(sh(NULL, 0, "mv %s/data/t10k-labels-idx1-ubyte.gz %s/labels.gz", tmp, tmp), 0);
    rc = sh(out, sizeof out, "cd %s && %s resume %s --quiet 2>&1", RN_SOURCE_DIR, RN_RUNNER_BIN,
            dir);
    cr_assert_eq(rc, 1, "%s", out);
    cr_assert(strstr(out, "/data/t10k-labels-idx1-ubyte.gz is gone (it had size "), "%s", out);
    /* --force: resumed on what is there (the same bytes back under their name) */
    cr_assert_eq(sh(NULL, 0, "cp %s/labels.gz %s/data/t10k-labels-idx1-ubyte.gz", tmp, tmp), 0);
    rc = sh(out, sizeof out, "cd %s && %s resume %s --quiet --force 2>&1", RN_SOURCE_DIR,
            RN_RUNNER_BIN, dir);
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, "resuming anyway (--force)"), "%s", out);
    expect_status(dir, "completed");
}
