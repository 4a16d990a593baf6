/* train.c - the training loop (train.h): epochs of shuffled batches through
 * the step program, the per-step log averaged over log_every steps (read
 * from the device once per interval when the losses stay there), the
 * evaluation after each epoch and its checkpoint. */
#include "train.h"

#include "backend.h"

#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void progress(struct rn_run *run, int epoch, int epochs, int step, int steps, double loss,
                     double ips, double eta, int final)
{
    FILE *f = run->opt.log;
    if (run->opt.quiet)
        return;
    if (isatty(fileno(f))) {
        int width = 24, fill = steps ? step * width / steps : width;
        char bar[32];
        for (int i = 0; i < width; i++)
            bar[i] = i < fill ? '=' : i == fill ? '>' : ' ';
        bar[width] = 0;
        fprintf(f, "\r\033[Kepoch %d/%d [%s] step %d/%d  loss %.4f  %.0f img/s  ETA %d:%02d", epoch,
                epochs, bar, step, steps, loss, ips, (int)eta / 60, (int)eta % 60);
        if (final)
            fputc('\n', f);
        fflush(f);
    } else if (final) {
        fprintf(f, "epoch %d/%d: %d steps, train loss %.4f, %.0f img/s\n", epoch, epochs, steps,
                loss, ips);
    }
}

/* Appends one row; a new metric gets its x axis named ("step" or "epoch"). */
static int log_metric(struct rn_run *run, const char *name, double x, double v, int per_step,
                      struct rn_error *err)
{
    char path[256];
    snprintf(path, sizeof path, "/metrics/%s", name);
    int is_new = !rn_results_exists(run->results, path);
    if (rn_results_append_metric(run->results, name, &x, &v, 1, err))
        return -1;
    if (is_new)
        return rn_results_set_attr_str(run->results, path, "x_label", per_step ? "step" : "epoch",
                                       err);
    return 0;
}

static int evaluate_all(struct rn_run *run, int epoch, struct rn_error *err)
{
    const struct rn_spec_train *t = &run->spec->train;
    run->n_last = 0;
    for (int e = 0; e < t->n_eval; e++) {
        struct rn_split *s = rn_data_split(&run->data, t->eval[e]);
        if (!s || s->n == 0)
            continue;
        struct rn_split_result *res = &run->last[run->n_last++];
        if (rn_run_evaluate(run, s, res, err))
            return -1;
        /* "train/..." holds the running per-step training metrics; the train
         * split evaluated in eval mode after the epoch is "train_eval/..." */
        const char *prefix = strcmp(s->name, "train") == 0 ? "train_eval" : s->name;
        char name[RN_NAME_MAX + 64];
        snprintf(name, sizeof name, "%s/loss", prefix);
        if (log_metric(run, name, epoch, res->loss, 0, err))
            return -1;
        snprintf(name, sizeof name, "%s/accuracy", prefix);
        if (log_metric(run, name, epoch, res->accuracy, 0, err))
            return -1;
        char extra[256] = "";
        size_t len = 0;
        for (int h = 0; run->has_program && h < res->n_heads; h++) {
            const struct rn_head *hd = &run->program.heads[h];
            if (h == run->program.primary || res->head_n[h] == 0)
                continue;
            snprintf(name, sizeof name, "%s/%sloss", prefix, hd->metric);
            if (log_metric(run, name, epoch, res->head_loss[h], 0, err))
                return -1;
            snprintf(name, sizeof name, "%s/%saccuracy", prefix, hd->metric);
            if (log_metric(run, name, epoch, res->head_accuracy[h], 0, err))
                return -1;
            if (len < sizeof extra)
                len += (size_t)snprintf(extra + len, sizeof extra - len, "  %saccuracy %6.2f%%",
                                        hd->metric, 100 * res->head_accuracy[h]);
        }
        char path[128];
        snprintf(path, sizeof path, "/analyses/confusion/%s", s->name);
        int dims[2] = {res->n_classes, res->n_classes};
        if (rn_results_write(run->results, path, RN_DTYPE_I32, res->confusion, 2, dims, err) ||
            rn_results_set_attr_str(run->results, "/analyses/confusion", "kind", "confusion", err))
            return -1;
        if (!run->opt.quiet)
            fprintf(run->opt.log, "  %-5s loss %.4f  accuracy %6.2f%%%s  (%d images)\n", s->name,
                    res->loss, 100 * res->accuracy, extra, res->n);
    }
    return 0;
}

/* Per-step metrics averaged over log_every steps (each over the steps that
 * computed it). */
struct step_log {
    double total, n; /* train/loss, weighted by images */
    double correct;  /* train/accuracy */
    double term[RN_MAX_LOSSES];
    double term_n[RN_MAX_LOSSES];
    double head_loss[RN_MAX_LOSSES], head_correct[RN_MAX_LOSSES], head_n[RN_MAX_LOSSES];
};
/* a checkpoint keeps it as RN_TRAIN_LOG_N doubles (struct rn_train_pos) */
_Static_assert(sizeof(struct step_log) == sizeof(double) * RN_TRAIN_LOG_N,
               "the step log is RN_TRAIN_LOG_N doubles");

/* The program's own metrics: only for specs that use more than the one
 * default loss, so the files of plain runs keep their old set of metrics. */
static int program_metrics(const struct rn_run *run)
{
    const struct rn_spec_train *t = &run->spec->train;
    return run->program.n_terms > 1 || run->program.n_heads > 1 || t->n_schedules > 0 ||
           t->n_program > 0 || t->n_optimizers > 0;
}

/* One batch's numbers into the log: head losses are means over its head_n
 * samples; fresh bits say which heads and terms the batch computed. */
static void step_log_values(struct step_log *L, const struct rn_program *p, int n, double total,
                            const double *head_loss, const int *head_correct, const int *head_n,
                            unsigned head_fresh, const double *term_value, unsigned term_fresh)
{
    L->total += total * n;
    L->n += n;
    L->correct += head_fresh >> p->primary & 1 ? head_correct[p->primary] : 0;
    for (int k = 0; k < p->n_terms; k++)
        if (term_fresh >> k & 1) {
            L->term[k] += term_value[k];
            L->term_n[k]++;
        }
    for (int h = 0; h < p->n_heads; h++)
        if (head_fresh >> h & 1) {
            L->head_loss[h] += head_loss[h] * head_n[h];
            L->head_correct[h] += head_correct[h];
            L->head_n[h] += head_n[h];
        }
}

static void step_log_add(struct step_log *L, const struct rn_program *p, int n)
{
    double head_loss[RN_MAX_LOSSES], term_value[RN_MAX_LOSSES];
    int head_correct[RN_MAX_LOSSES], head_n[RN_MAX_LOSSES];
    unsigned head_fresh = 0, term_fresh = 0;
    for (int h = 0; h < p->n_heads && h < RN_MAX_LOSSES; h++) {
        head_loss[h] = p->heads[h].loss;
        head_correct[h] = p->heads[h].correct;
        head_n[h] = p->heads[h].n;
        head_fresh |= (unsigned)(p->heads[h].fresh != 0) << h;
    }
    for (int k = 0; k < p->n_terms && k < RN_MAX_LOSSES; k++) {
        term_value[k] = p->terms[k].value;
        term_fresh |= (unsigned)(p->terms[k].fresh != 0) << k;
    }
    step_log_values(L, p, n, p->total, head_loss, head_correct, head_n, head_fresh, term_value,
                    term_fresh);
}

/* A batch trained on a device, its losses still there: what the log needs
 * besides them (the program's state after the batch). */
struct pending_step {
    int n;
    unsigned head_fresh, term_fresh;
    int head_n[RN_MAX_LOSSES];
    double head_w[RN_MAX_LOSSES];
    double total_host;                /* the part of the total known on the host */
    double host_value[RN_MAX_LOSSES]; /* values of terms computed on the host (saliency) */
};

static void pending_record(struct pending_step *ps, const struct rn_program *p, int n)
{
    memset(ps, 0, sizeof *ps);
    ps->n = n;
    for (int h = 0; h < p->n_heads && h < RN_MAX_LOSSES; h++) {
        ps->head_fresh |= (unsigned)(p->heads[h].fresh != 0) << h;
        ps->head_n[h] = p->heads[h].n;
        ps->head_w[h] = p->head_w[h];
    }
    for (int k = 0; k < p->n_terms && k < RN_MAX_LOSSES; k++) {
        ps->term_fresh |= (unsigned)(p->terms[k].fresh != 0) << k;
        if (p->terms[k].kind == RN_LOSS_SALIENCY)
            ps->host_value[k] = p->terms[k].value;
    }
    ps->total_host = p->total_host;
}

/* Reads the losses of the pending batches from the device (once per log
 * interval) and logs them as rn_program_batch would have on the host:
 * term values are +-their head's mean loss, total = sum of head_w x loss. */
static int pending_settle(struct rn_run *run, const struct pending_step *ps, int count,
                          struct step_log *L, double *epoch_loss, double *loss_n, int epoch,
                          int step, struct rn_error *err)
{
    const struct rn_program *p = &run->program;
    double sums[count * RN_MAX_LOSSES];
    int hits[count * RN_MAX_LOSSES];
    if (rn_program_fetch(&run->program, count, sums, hits, err))
        return -1;
    for (int i = 0; i < count; i++) {
        double loss[RN_MAX_LOSSES] = {0}, value[RN_MAX_LOSSES] = {0}, total = ps[i].total_host;
        for (int h = 0; h < p->n_heads; h++) {
            if (!(ps[i].head_fresh >> h & 1) || ps[i].head_n[h] <= 0)
                continue;
            loss[h] = sums[i * RN_MAX_LOSSES + h] / ps[i].head_n[h];
            total += ps[i].head_w[h] * loss[h];
        }
        for (int k = 0; k < p->n_terms; k++)
            value[k] = p->terms[k].kind == RN_LOSS_SALIENCY ? ps[i].host_value[k]
                       : p->terms[k].kind == RN_LOSS_NEG_CE ? -loss[p->terms[k].head]
                                                            : loss[p->terms[k].head];
        if (!isfinite(total))
            return rn_errorf(err,
                             "train: steps %llu to %llu (epoch %d, up to its step %d): "
                             "the loss is %s; lower train.lr",
                             (unsigned long long)(run->step - (uint64_t)count + 1),
                             (unsigned long long)run->step, epoch, step,
                             isnan(total) ? "NaN" : "Inf");
        step_log_values(L, p, ps[i].n, total, loss, hits + i * RN_MAX_LOSSES, ps[i].head_n,
                        ps[i].head_fresh, value, ps[i].term_fresh);
        *epoch_loss += total * ps[i].n;
        *loss_n += ps[i].n;
    }
    return 0;
}

static int step_log_flush(struct rn_run *run, struct step_log *L, struct rn_error *err)
{
    const struct rn_program *p = &run->program;
    const double x = (double)run->step;
    if (L->n == 0) /* every step of the interval was skipped (train.on_nonfinite: skip) */
        return 0;
    if (log_metric(run, "train/loss", x, L->total / L->n, 1, err) ||
        log_metric(run, "train/accuracy", x, L->correct / L->n, 1, err))
        return -1;
    if (program_metrics(run)) {
        char name[RN_NAME_MAX + 64];
        for (int k = 0; k < p->n_terms; k++) {
            if (!L->term_n[k])
                continue;
            snprintf(name, sizeof name, "loss/%s", p->terms[k].spec->name);
            if (log_metric(run, name, x, L->term[k] / L->term_n[k], 1, err))
                return -1;
        }
        for (int h = 0; h < p->n_heads; h++) {
            if (h == p->primary || !L->head_n[h])
                continue;
            snprintf(name, sizeof name, "train/%sloss", p->heads[h].metric);
            if (log_metric(run, name, x, L->head_loss[h] / L->head_n[h], 1, err))
                return -1;
            snprintf(name, sizeof name, "train/%saccuracy", p->heads[h].metric);
            if (log_metric(run, name, x, L->head_correct[h] / L->head_n[h], 1, err))
                return -1;
        }
        for (int k = 0; k < run->spec->train.n_schedules; k++) {
            snprintf(name, sizeof name, "sched/%s", run->spec->train.schedules[k].name);
            if (log_metric(run, name, x, p->sched[k], 1, err))
                return -1;
        }
    }
    memset(L, 0, sizeof *L);
    return 0;
}

/* A device epoch's order, targets and augmentation draws, in one copy each
 * (steps of bs images from image 0 of perm; the draws of step s are those
 * rn_augment_draws makes for training step step0 + s). */
static int epoch_to_device(struct rn_run *run, const struct rn_split *train, const int *perm,
                           const uint8_t *colours, int bs, uint64_t step0, struct rn_error *err)
{
    _Static_assert(sizeof(int) == sizeof(int32_t), "the order goes over as int32");
    const struct rn_backend *be = rn_backend_of(run->graph.device);
    const size_t n = (size_t)train->n;
    uint8_t *targets = rn_malloc(2 * n, err);
    int rc = -1;
    if (!targets)
        goto done;
    for (size_t i = 0; i < n; i++) {
        targets[i] = train->labels[perm[i]];
        targets[n + i] = colours ? colours[perm[i]] : 0;
    }
    if (be->upload(run->dev_order, perm, sizeof(int32_t) * n, err) ||
        be->upload(run->dev_order_targets, targets, 2 * n, err))
        goto done;
    if (run->dev_draws) {
        for (size_t s = 0; s * bs < n; s++) {
            int m = n - s * bs < (size_t)bs ? (int)(n - s * bs) : bs;
            if (rn_augment_draws(&run->augment, m, run->spec->seed, step0 + s, run->draws + s * bs,
                                 err))
                goto done;
        }
        if (be->upload(run->dev_draws, run->draws, sizeof *run->draws * n, err))
            goto done;
    }
    rc = 0;
done:
    free(targets);
    return rc ? rn_error_prefix(err, "the epoch's order to the device") : 0;
}

/* What the epochs of rn_run_train share. */
struct trainer {
    struct rn_split *train;
    const uint8_t *split_colours; /* colour targets of the train split, or NULL */
    int *perm;                    /* (train n) the epoch's order */
    int bs, steps;
    int k_train;               /* index of the train split in run->data */
    int dev_batches;           /* batches gathered (and augmented) from the epoch's copies */
    struct pending_step *pend; /* device runs: batches whose losses are unread */
    int n_pend;
    struct step_log slog;
    /* the epoch in progress: its sums, where it started, how far it got */
    double epoch_loss, loss_n, seen; /* loss x images, images whose loss is known, images */
    double seconds;                  /* its training time before this process (resumed) */
    int s0, done;                    /* steps done when this process took it up, and now */
};

/* The trainer's position as a checkpoint records it. */
static void trainer_pos(const struct trainer *T, int epoch, int done, double secs,
                        struct rn_train_pos *pos)
{
    memset(pos, 0, sizeof *pos);
    pos->epoch = epoch;
    pos->step_in_epoch = done;
    memcpy(pos->log, &T->slog, sizeof T->slog);
    pos->epoch_loss = T->epoch_loss;
    pos->loss_n = T->loss_n;
    pos->seen = T->seen;
    pos->epoch_seconds = secs;
}

/* Batch s of the epoch (n images from perm + s * bs) into the graph's input;
 * from the epoch's copies on the device, the program's targets too. */
static int batch_input(struct rn_run *run, struct trainer *T, int s, int n, int epoch,
                       struct rn_error *err)
{
    struct rn_graph *g = &run->graph;
    const struct rn_split *train = T->train;
    const int *idx = T->perm + (size_t)s * T->bs;
    if (T->dev_batches) {
        /* from the epoch's copies: gathered (and augmented) there */
        const struct rn_backend *be = rn_backend_of(g->device);
        const size_t off = (size_t)s * T->bs;
        g->x.n = n;
        const int32_t *order = (const int32_t *)run->dev_order + off;
        const struct rn_augment_draw *draws =
            run->dev_draws ? (const struct rn_augment_draw *)run->dev_draws + off : NULL;
        if (be->data->gather_images(run->dev_images[T->k_train], order, n,
                                    (size_t)train->c * train->h * train->w, g->x.data, err) ||
            (draws && be->augment->apply(&run->augment, draws, g->x.data, n, g->in_shape.c,
                                         g->in_shape.h, g->in_shape.w, err)))
            return rn_error_prefix(err, "batch %d of epoch %d", s + 1, epoch);
        run->program.batch_digit = (const uint8_t *)run->dev_order_targets + off;
        run->program.batch_colour =
            T->split_colours ? (const uint8_t *)run->dev_order_targets + train->n + off : NULL;
        return 0;
    }
    if (run->augment_on) {
        /* augmentation on the host; the batch goes over after it */
        return rn_run_load_host(run, train, idx, n, err) ||
                       rn_augment_batch(&run->augment, rn_graph_input_host(g, n, err)->data, n,
                                        g->in_shape.c, g->in_shape.h, g->in_shape.w,
                                        run->spec->seed, run->step, err) ||
                       rn_graph_input_commit(g, err)
                   ? -1
                   : 0;
    }
    return rn_run_load_batch(run, train, idx, n, err);
}

/* A checkpoint is due after epoch (train.checkpoint_epochs; the last too). */
static int epoch_checkpoint_due(const struct rn_run *run, int epoch)
{
    const struct rn_spec_train *t = &run->spec->train;
    return t->checkpoint_epochs > 0 && (epoch % t->checkpoint_epochs == 0 || epoch == t->epochs);
}

/* "train: step N (epoch E): <what>", with where the last good state is. */
static int nonfinite_error(struct rn_run *run, int epoch, struct rn_error *err)
{
    char where[RN_PATH_MAX + 96];
    if (run->has_checkpoint)
        snprintf(where, sizeof where, "the last good checkpoint is %s/checkpoint.h5 (step %llu)",
                 run->dir, (unsigned long long)run->checkpoint_step);
    else
        snprintf(where, sizeof where, "no checkpoint was written before it");
    return rn_errorf(err,
                     "train: step %llu (epoch %d): %s; %s; lower train.lr, or set "
                     "train.on_nonfinite: skip",
                     (unsigned long long)run->step + 1, epoch, run->program.nonfinite, where);
}

/* The losses of the batches still on the device into the log (no record). */
static int settle(struct rn_run *run, struct trainer *T, int epoch, int s, struct rn_error *err)
{
    if (T->pend && T->n_pend &&
        pending_settle(run, T->pend, T->n_pend, &T->slog, &T->epoch_loss, &T->loss_n, epoch, s,
                       err))
        return -1;
    T->n_pend = 0;
    return 0;
}

/* The step just done as the program left it: into the log, or counted as
 * skipped. */
static void step_done(struct rn_run *run, struct trainer *T, int epoch, int n)
{
    if (run->program.skipped) {
        run->nonfinite_skipped++;
        if (!run->opt.quiet)
            fprintf(run->opt.log, "\ntrain: step %llu (epoch %d): %s; step skipped (%llu so far)\n",
                    (unsigned long long)run->step, epoch, run->program.nonfinite,
                    (unsigned long long)run->nonfinite_skipped);
    } else if (T->pend) {
        pending_record(&T->pend[T->n_pend++], &run->program, n);
    } else {
        T->epoch_loss += run->program.total * n;
        T->loss_n += n;
        step_log_add(&T->slog, &run->program, n);
    }
}

/* After step s (0-based) of the epoch: the test hooks' stop, the checkpoint
 * every train.checkpoint_steps steps. */
static int after_step(struct rn_run *run, struct trainer *T, int epoch, int s, double secs,
                      struct rn_error *err)
{
    const struct rn_run_options *o = &run->opt;
    if (o->stop_after_step && run->step == o->stop_after_step) {
        if (o->stop_hard)
            return rn_errorf(err, "stopped at step %llu without a checkpoint (test hook)",
                             (unsigned long long)run->step);
        rn_interrupted = SIGINT;
    }
    const int every = run->spec->train.checkpoint_steps;
    if (rn_interrupted || !every || run->step % (uint64_t)every != 0 ||
        (s == T->steps - 1 && epoch_checkpoint_due(run, epoch)))
        return 0;
    struct rn_train_pos pos;
    if (settle(run, T, epoch, s + 1, err))
        return -1;
    trainer_pos(T, epoch, s + 1, secs, &pos);
    return rn_run_checkpoint(run, &pos, err);
}

/* Steps T->s0.. of an epoch, then its metrics; an interrupt ends it after
 * the current step, without them (T->done: the steps done). */
static int train_epoch(struct rn_run *run, struct trainer *T, int epoch, struct rn_error *err)
{
    const struct rn_spec *spec = run->spec;
    const struct rn_spec_train *t = &spec->train;
    const struct rn_split *train = T->train;
    const int bs = T->bs, steps = T->steps;
    for (int i = 0; i < train->n; i++)
        T->perm[i] = i;
    if (t->shuffle) {
        struct rn_rng r;
        rn_rng_init(&r, spec->seed, RN_STREAM_SHUFFLE, (uint64_t)epoch);
        rn_rng_shuffle(&r, T->perm, train->n);
    }
    double t0 = now_s(), last_draw = 0;
    if (T->s0 == 0)
        T->epoch_loss = T->loss_n = T->seen = T->seconds = 0;
    T->n_pend = 0;
    if (T->dev_batches && epoch_to_device(run, train, T->perm, T->split_colours, bs,
                                          run->step - (uint64_t)T->s0, err))
        return -1;
    uint8_t labels[bs], colours[bs];
    int s;
    for (s = T->s0; s < steps && !rn_interrupted; s++) {
        int n = train->n - s * bs < bs ? train->n - s * bs : bs;
        const int *idx = T->perm + (size_t)s * bs;
        if (batch_input(run, T, s, n, epoch, err))
            return -1;
        for (int i = 0; i < n; i++) {
            labels[i] = train->labels[idx[i]];
            colours[i] = T->split_colours ? T->split_colours[idx[i]] : 0;
        }
        run->program.slot = T->n_pend;
        if (rn_program_batch(&run->program, n, labels, T->split_colours ? colours : NULL, run->step,
                             spec->seed, err))
            return run->program.nonfinite[0] ? nonfinite_error(run, epoch, err) : -1;
        run->step++;
        T->seen += n;
        step_done(run, T, epoch, n);
        if (run->step % (uint64_t)t->log_every == 0 || s == steps - 1) {
            if (settle(run, T, epoch, s + 1, err) || step_log_flush(run, &T->slog, err))
                return -1;
        }
        double now = now_s();
        if (now - last_draw > 0.25 || s == steps - 1) {
            double ips = (T->seen - (double)T->s0 * bs) / (now - t0);
            progress(run, epoch, t->epochs, s + 1, steps,
                     T->loss_n ? T->epoch_loss / T->loss_n : NAN, ips,
                     (train->n - T->seen) / (ips > 0 ? ips : 1), s == steps - 1);
            last_draw = now;
        }
        if (after_step(run, T, epoch, s, T->seconds + now - t0, err))
            return -1;
    }
    T->done = s;
    T->seconds += now_s() - t0;
    if (s < steps) /* interrupted: the log keeps what the device still holds */
        return settle(run, T, epoch, s, err);
    double secs = T->seconds;
    if (log_metric(run, "train/epoch_loss", epoch, T->loss_n ? T->epoch_loss / T->loss_n : NAN, 0,
                   err) ||
        log_metric(run, "train/epoch_seconds", epoch, secs, 0, err) ||
        log_metric(run, "train/images_per_second", epoch, T->seen / secs, 0, err))
        return -1;
    return 0;
}

/* The trainer of a resumed run where its checkpoint left it. */
static int trainer_resume(struct rn_run *run, struct trainer *T)
{
    const struct rn_train_pos *pos = &run->pos;
    memcpy(&T->slog, pos->log, sizeof T->slog);
    T->epoch_loss = pos->epoch_loss;
    T->loss_n = pos->loss_n;
    T->seen = pos->seen;
    T->seconds = pos->epoch_seconds;
    T->s0 = pos->step_in_epoch;
    if (!run->opt.quiet)
        fprintf(run->opt.log, "resuming %s at step %llu (epoch %d, %d of its %d steps done)\n",
                run->dir, (unsigned long long)run->step, pos->epoch, T->s0, T->steps);
    return pos->epoch;
}

int rn_run_train(struct rn_run *run, struct rn_error *err)
{
    const struct rn_spec *spec = run->spec;
    if (!run->has_graph || !spec->has_train)
        return 0;
    const struct rn_spec_train *t = &spec->train;
    struct trainer T;
    memset(&T, 0, sizeof T);
    T.train = rn_data_split(&run->data, "train");
    if (!T.train || T.train->n == 0)
        return rn_errorf(
            err, "%s: the train split is empty; lower data.val_fraction or raise data.train_limit",
            spec->file);
    T.bs = t->batch;
    T.steps = (T.train->n + T.bs - 1) / T.bs;
    if (!(T.perm = rn_malloc(sizeof(int) * (size_t)T.train->n, err)))
        return -1;
    int rc = -1;
    if (rn_results_set_attr_u64(run->results, "/metrics", "steps_per_epoch", (uint64_t)T.steps,
                                err))
        goto done;
    const struct rn_graph *g = &run->graph;
    T.split_colours = rn_run_split_colours(run, T.train);
    /* On a device the losses stay there until the log reads them, and the
     * batches come from the epoch's copies there (when the device gathers,
     * and augments if asked). */
    T.k_train = (int)(T.train - run->data.splits);
    T.dev_batches = run->data_device && g->device == run->data_device &&
                    run->dev_images[T.k_train] && run->dev_order &&
                    (!run->augment_on || run->dev_draws);
    if (run->data_device && g->device == run->data_device) {
        if (rn_program_device(&run->program, t->log_every, err) ||
            !(T.pend = rn_calloc((size_t)t->log_every, sizeof *T.pend, err)))
            goto done;
    }
    int first = run->resumed ? trainer_resume(run, &T) : 1;
    for (int epoch = first; epoch <= t->epochs; epoch++) {
        if (epoch != first)
            T.s0 = 0;
        if (train_epoch(run, &T, epoch, err))
            goto done;
        struct rn_train_pos pos;
        if (T.done < T.steps) { /* interrupted: the state as it stands */
            if (!run->opt.quiet)
                fprintf(run->opt.log,
                        "\ninterrupted during epoch %d (step %llu); keeping %d "
                        "finished epoch%s and a checkpoint to resume from\n",
                        epoch, (unsigned long long)run->step, run->epochs_done,
                        run->epochs_done == 1 ? "" : "s");
            trainer_pos(&T, epoch, T.done, T.seconds, &pos);
            if (rn_run_checkpoint(run, &pos, err))
                goto done;
            break;
        }
        run->epochs_done = epoch;
        if (evaluate_all(run, epoch, err) || rn_run_save_model(run, "main", err) ||
            rn_results_flush(run->results, err))
            goto done;
        if (epoch_checkpoint_due(run, epoch) || rn_interrupted) {
            memset(&T.slog, 0, sizeof T.slog); /* flushed at the epoch's last step */
            T.epoch_loss = T.loss_n = T.seen = 0;
            trainer_pos(&T, epoch + 1, 0, 0, &pos);
            if (rn_run_checkpoint(run, &pos, err))
                goto done;
        }
        if (rn_interrupted) {
            if (!run->opt.quiet)
                fprintf(run->opt.log,
                        "interrupted after epoch %d; a checkpoint to resume from "
                        "is kept\n",
                        epoch);
            break;
        }
    }
    rc = 0;
done:
    free(T.perm);
    free(T.pend);
    return rc;
}
