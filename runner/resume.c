/* resume.c - a run's checkpoints, its resumption and its lock (run.h).
 *
 * checkpoint.h5 is a copy of run.h5 taken when run.h5 was flushed, plus
 * /resume with everything else training needs to go on exactly as if it had
 * not stopped. Taking run.h5 along makes a resume simple and safe: run.h5 is
 * replaced by the checkpoint's copy, so the metrics written after the
 * checkpoint go (they are written again, once), and a run.h5 that a kill -9
 * left half-written (HDF5 keeps metadata in memory between flushes) is
 * rebuilt whole. The copy is small: a run.h5 holds scalar metrics, the
 * model and a few analyses' arrays.
 *
 * What /resume holds: the global step, the epoch and the steps done in it,
 * epochs_done, the steps skipped for NaN/Inf (attributes); the step log's
 * and the epoch's running sums (float64 datasets); every parameter and
 * buffer of the graph (params/<node>.<param>) and every optimizer's moments
 * (optim/<name>/m<i>, v<i>) with its step count, float32, flat. The random
 * streams need nothing: the shuffle is a function of (seed, epoch), dropout
 * and augmentation of (seed, step) (rng.h). */
#include "run.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- files -------------------------------------------------------------------------- */

static int fsync_path(const char *path, int dir)
{
    int fd = open(path, (dir ? O_RDONLY | O_DIRECTORY : O_RDWR) | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* src copied to dst (created or truncated) and fsync'ed. */
static int copy_file(const char *src, const char *dst, struct rn_error *err)
{
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return rn_errorf(err, "%s: cannot read: %s", src, strerror(errno));
    int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (out < 0) {
        close(in);
        return rn_errorf(err, "%s: cannot write: %s", dst, strerror(errno));
    }
    char buf[1 << 16];
    ssize_t n;
    int rc = 0;
    while (!rc && (n = read(in, buf, sizeof buf)) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = rn_errorf(err, "%s: cannot read: %s", src, strerror(errno));
            break;
        }
        for (ssize_t off = 0; off < n && !rc;) {
            ssize_t w = write(out, buf + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0)
                rc = rn_errorf(err, "%s: cannot write: %s", dst, strerror(errno));
            else
                off += w;
        }
    }
    if (!rc && fsync(out) != 0)
        rc = rn_errorf(err, "%s: fsync: %s", dst, strerror(errno));
    close(in);
    if (close(out) != 0 && !rc)
        rc = rn_errorf(err, "%s: cannot write: %s", dst, strerror(errno));
    return rc;
}

/* tmp renamed over dst, the folder synced so that the rename survives a
 * crash. */
static int replace_file(const char *tmp, const char *dst, const char *dir, struct rn_error *err)
{
    if (rename(tmp, dst) != 0)
        return rn_errorf(err, "%s: cannot rename to %s: %s", tmp, dst, strerror(errno));
    fsync_path(dir, 1);
    return 0;
}

/* ---- tensors ------------------------------------------------------------------------ */

/* t (any device) as a flat float32 dataset at key. */
static int put_tensor(struct rn_results *r, const char *key, const struct rn_tensor *t,
                      struct rn_error *err)
{
    struct rn_tensor host = {0};
    const struct rn_tensor *src = t;
    if (t->device != RN_DEVICE_CPU) {
        if (rn_tensor_init(&host, t->n, t->c, t->h, t->w, err) || rn_tensor_copy(&host, t, err)) {
            rn_tensor_free(&host);
            return -1;
        }
        src = &host;
    }
    int dims[1] = {(int)rn_tensor_numel(src)};
    int rc = rn_results_write(r, key, RN_DTYPE_F32, src->data, 1, dims, err);
    rn_tensor_free(&host);
    return rc;
}

/* The dataset at key into t (any device), its length checked. */
static int get_tensor(struct rn_results *r, const char *file, const char *key, struct rn_tensor *t,
                      struct rn_error *err)
{
    void *data = NULL;
    int ndim = 0, dims[4] = {0};
    if (!rn_results_exists(r, key))
        return rn_errorf(err, "resume: %s has no %s; was it written for this model?", file, key);
    if (rn_results_read(r, key, RN_DTYPE_F32, &data, &ndim, dims, err))
        return rn_error_prefix(err, "resume: %s", file);
    size_t n = rn_tensor_numel(t);
    int rc = 0;
    if (ndim != 1 || (size_t)dims[0] != n) {
        rc = rn_errorf(err, "resume: %s: %s has %d values; the model has %zu", file, key,
                       ndim == 1 ? dims[0] : -1, n);
    } else {
        struct rn_tensor view = rn_tensor_view(data, t->n, t->c, t->h, t->w);
        rc = rn_tensor_copy(t, &view, err);
    }
    free(data);
    return rc;
}

/* Every parameter and buffer, every optimizer's state: written (save) or
 * read back. */
static int state_tensors(struct rn_run *run, struct rn_results *r, const char *file, int save,
                         struct rn_error *err)
{
    char key[RN_PATH_MAX];
    struct rn_graph *g = &run->graph;
    for (int i = 0; i < g->n_nodes; i++) {
        struct rn_layer *l = &g->nodes[i].layer;
        for (int j = 0; j < l->n_params; j++) {
            snprintf(key, sizeof key, "/resume/params/%s.%s", l->name, l->params[j].name);
            if (save ? put_tensor(r, key, &l->params[j].value, err)
                     : get_tensor(r, file, key, &l->params[j].value, err))
                return -1;
        }
    }
    for (int q = 0; run->has_program && q < run->program.n_opts; q++) {
        struct rn_optim *o = &run->program.opts[q].optim;
        char group[RN_PATH_MAX];
        snprintf(group, sizeof group, "/resume/optim/%s", run->program.opts[q].name);
        for (int i = 0; i < o->n; i++) {
            snprintf(key, sizeof key, "%s/m%d", group, i);
            if (save ? put_tensor(r, key, &o->m[i], err) : get_tensor(r, file, key, &o->m[i], err))
                return -1;
            if (!o->v[i].data)
                continue;
            snprintf(key, sizeof key, "%s/v%d", group, i);
            if (save ? put_tensor(r, key, &o->v[i], err) : get_tensor(r, file, key, &o->v[i], err))
                return -1;
        }
        uint64_t step = (uint64_t)o->step;
        if (save ? rn_results_set_attr_u64(r, group, "step", step, err)
                 : rn_results_get_attr_u64(r, group, "step", &step, err))
            return -1;
        o->step = (long)step;
    }
    return 0;
}

/* ---- the position ------------------------------------------------------------------- */

static int put_pos(struct rn_run *run, struct rn_results *r, const struct rn_train_pos *pos,
                   struct rn_error *err)
{
    const double sums[4] = {pos->epoch_loss, pos->loss_n, pos->seen, pos->epoch_seconds};
    const int n_log[1] = {RN_TRAIN_LOG_N}, n_sums[1] = {4};
    return rn_results_set_attr_u64(r, "/resume", "step", run->step, err) ||
                   rn_results_set_attr_u64(r, "/resume", "epoch", (uint64_t)pos->epoch, err) ||
                   rn_results_set_attr_u64(r, "/resume", "step_in_epoch",
                                           (uint64_t)pos->step_in_epoch, err) ||
                   rn_results_set_attr_u64(r, "/resume", "epochs_done", (uint64_t)run->epochs_done,
                                           err) ||
                   rn_results_set_attr_u64(r, "/resume", "nonfinite_skipped",
                                           run->nonfinite_skipped, err) ||
                   rn_results_write(r, "/resume/log", RN_DTYPE_F64, pos->log, 1, n_log, err) ||
                   rn_results_write(r, "/resume/sums", RN_DTYPE_F64, sums, 1, n_sums, err)
               ? -1
               : 0;
}

static int get_f64s(struct rn_results *r, const char *file, const char *key, double *out, int n,
                    struct rn_error *err)
{
    void *data = NULL;
    int ndim = 0, dims[4] = {0};
    if (rn_results_read(r, key, RN_DTYPE_F64, &data, &ndim, dims, err))
        return rn_error_prefix(err, "resume: %s", file);
    int ok = ndim == 1 && dims[0] == n;
    if (ok)
        memcpy(out, data, sizeof(double) * (size_t)n);
    free(data);
    return ok ? 0
              : rn_errorf(err, "resume: %s: %s has %d values, expected %d", file, key,
                          ndim == 1 ? dims[0] : -1, n);
}

static int get_pos(struct rn_run *run, struct rn_results *r, const char *file, struct rn_error *err)
{
    uint64_t step, epoch, in_epoch, done, skipped;
    double sums[4];
    struct rn_train_pos *pos = &run->pos;
    if (rn_results_get_attr_u64(r, "/resume", "step", &step, err) ||
        rn_results_get_attr_u64(r, "/resume", "epoch", &epoch, err) ||
        rn_results_get_attr_u64(r, "/resume", "step_in_epoch", &in_epoch, err) ||
        rn_results_get_attr_u64(r, "/resume", "epochs_done", &done, err) ||
        rn_results_get_attr_u64(r, "/resume", "nonfinite_skipped", &skipped, err))
        return rn_error_prefix(err, "resume: %s", file);
    if (get_f64s(r, file, "/resume/log", pos->log, RN_TRAIN_LOG_N, err) ||
        get_f64s(r, file, "/resume/sums", sums, 4, err))
        return -1;
    run->step = step;
    run->epochs_done = (int)done;
    run->nonfinite_skipped = skipped;
    pos->epoch = (int)epoch;
    pos->step_in_epoch = (int)in_epoch;
    pos->epoch_loss = sums[0];
    pos->loss_n = sums[1];
    pos->seen = sums[2];
    pos->epoch_seconds = sums[3];
    return 0;
}

/* ---- checkpoints -------------------------------------------------------------------- */

/* A failed checkpoint's error, saying so when the cause is the run's folder
 * having gone (deleted or unmounted while the run wrote to it; `rm -rf` takes
 * run.h5 before the folder, so a folder without its run.h5 counts as gone). */
static int checkpoint_failed(const struct rn_run *run, struct rn_error *err)
{
    struct stat st;
    char h5[RN_PATH_MAX + 16];
    snprintf(h5, sizeof h5, "%s/run.h5", run->dir);
    if (stat(run->dir, &st) != 0 || stat(h5, &st) != 0) {
        char was[RN_ERROR_MAX];
        snprintf(was, sizeof was, "%s", err->msg);
        return rn_errorf(err,
                         "checkpoint: the run folder %s is gone (%s); nothing more can be "
                         "saved there (%s)",
                         run->dir, strerror(errno), was);
    }
    return rn_error_prefix(err, "checkpoint");
}

int rn_run_checkpoint(struct rn_run *run, const struct rn_train_pos *pos, struct rn_error *err)
{
    char h5[RN_PATH_MAX + 16], ck[RN_PATH_MAX + 32], tmp[RN_PATH_MAX + 32];
    snprintf(h5, sizeof h5, "%s/run.h5", run->dir);
    snprintf(ck, sizeof ck, "%s/checkpoint.h5", run->dir);
    snprintf(tmp, sizeof tmp, "%s/checkpoint.h5.tmp", run->dir);
    if (rn_results_set_attr_u64(run->results, "/", "nonfinite_skipped", run->nonfinite_skipped,
                                err) ||
        rn_results_flush(run->results, err) || copy_file(h5, tmp, err))
        return checkpoint_failed(run, err);
    struct rn_results *r = NULL;
    int rc = rn_results_open_rw(&r, tmp, err) || put_pos(run, r, pos, err) ||
             state_tensors(run, r, tmp, 1, err) || rn_results_flush(r, err);
    rn_results_close(r);
    if (!rc && fsync_path(tmp, 0) != 0)
        rc = rn_errorf(err, "%s: fsync: %s", tmp, strerror(errno));
    if (!rc)
        rc = replace_file(tmp, ck, run->dir, err);
    if (rc) {
        unlink(tmp);
        return checkpoint_failed(run, err);
    }
    run->checkpoint_step = run->step;
    run->has_checkpoint = 1;
    return 0;
}

int rn_run_resume(struct rn_run *run, struct rn_error *err)
{
    char h5[RN_PATH_MAX + 16], ck[RN_PATH_MAX + 32], tmp[RN_PATH_MAX + 32];
    snprintf(h5, sizeof h5, "%s/run.h5", run->dir);
    snprintf(ck, sizeof ck, "%s/checkpoint.h5", run->dir);
    snprintf(tmp, sizeof tmp, "%s/run.h5.tmp", run->dir);
    /* the state first: a checkpoint that does not fit leaves run.h5 alone */
    struct rn_results *r = NULL;
    if (rn_results_open(&r, ck, err))
        return rn_error_prefix(err, "resume");
    int rc = get_pos(run, r, ck, err) || state_tensors(run, r, ck, 0, err);
    rn_results_close(r);
    if (rc)
        return -1;
    if (copy_file(ck, tmp, err) || replace_file(tmp, h5, run->dir, err))
        return rn_error_prefix(err, "resume");
    if (rn_results_open_rw(&run->results, h5, err))
        return rn_error_prefix(err, "resume");
    uint64_t times = 0;
    if (rn_results_exists(run->results, "/config") &&
        rn_results_get_attr_u64(run->results, "/config", "resumed", &times, err))
        times = 0;
    char stamp[64];
    time_t t = time(NULL);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S%z", localtime(&t));
    if (rn_results_delete(run->results, "/resume", err) ||
        rn_results_set_attr_str(run->results, "/", "status", "running", err) ||
        rn_results_set_attr_u64(run->results, "/config", "resumed", times + 1, err) ||
        rn_results_set_attr_str(run->results, "/config", "resumed_at", stamp, err) ||
        rn_results_set_attr_u64(run->results, "/config", "resumed_from_step", run->step, err) ||
        rn_results_flush(run->results, err))
        return rn_error_prefix(err, "resume");
    run->resumed = 1;
    run->has_checkpoint = 1;
    run->checkpoint_step = run->step;
    return 0;
}

int rn_run_recorded(const char *dir, char **yaml, char *status, size_t status_size,
                    struct rn_error *err)
{
    char path[RN_PATH_MAX + 32];
    *yaml = NULL;
    snprintf(path, sizeof path, "%s/checkpoint.h5", dir);
    if (access(path, F_OK) != 0)
        snprintf(path, sizeof path, "%s/run.h5", dir);
    struct rn_results *r = NULL;
    char *st = NULL;
    if (rn_results_open(&r, path, err))
        return rn_error_prefix(err, "resume");
    int rc = rn_results_get_attr_str(r, "/config", "yaml", yaml, err);
    rn_results_close(r);
    if (rc)
        return rn_error_prefix(err, "resume: %s", path);
    /* the status is run.h5's (the checkpoint's copy says "running") */
    snprintf(status, status_size, "unknown");
    snprintf(path, sizeof path, "%s/run.h5", dir);
    struct rn_error e;
    if (rn_results_open(&r, path, &e) == 0) {
        if (rn_results_get_attr_str(r, "/", "status", &st, &e) == 0)
            snprintf(status, status_size, "%s", st);
        free(st);
        rn_results_close(r);
    }
    return 0;
}

/* ---- the lock ----------------------------------------------------------------------- */

int rn_run_lock_held(const char *dir, char *who, size_t who_size)
{
    char path[RN_PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/run.lock", dir);
    if (who && who_size)
        who[0] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    int held = flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    if (held && who && who_size) {
        ssize_t n = read(fd, who, who_size - 1);
        who[n > 0 ? n : 0] = '\0';
        who[strcspn(who, "\n")] = '\0';
    }
    close(fd);
    return held;
}

int rn_run_lock(struct rn_run *run, struct rn_error *err)
{
    char path[RN_PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/run.lock", run->dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0)
        return rn_errorf(err, "%s: cannot create: %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        char who[256] = "";
        ssize_t n = read(fd, who, sizeof who - 1);
        who[n > 0 ? n : 0] = '\0';
        who[strcspn(who, "\n")] = '\0';
        close(fd);
        return rn_errorf(err,
                         "%s is being written by another runner (%s); wait for it or "
                         "stop it first",
                         run->dir, who[0] ? who : "its lock is held");
    }
    char host[128] = "?", stamp[64], line[320];
    gethostname(host, sizeof host);
    host[sizeof host - 1] = '\0';
    time_t t = time(NULL);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S%z", localtime(&t));
    int len = snprintf(line, sizeof line, "pid %d on %s since %s\n", (int)getpid(), host, stamp);
    if (ftruncate(fd, 0) != 0 || pwrite(fd, line, (size_t)len, 0) != len) {
        close(fd);
        return rn_errorf(err, "%s: cannot write: %s", path, strerror(errno));
    }
    run->lock_fd = fd + 1;
    return 0;
}
