/* train.c - the training loop (train.h): epochs of shuffled batches through
 * the step program, the per-step log averaged over log_every steps (read
 * from the device once per interval when the losses stay there), the
 * evaluation after each epoch and its checkpoint. */
#include "train.h"

#include "backend.h"

#include <math.h>
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
    double total, n;                              /* train/loss, weighted by images */
    double correct;                               /* train/accuracy */
    double term[RN_MAX_LOSSES];
    int term_n[RN_MAX_LOSSES];
    double head_loss[RN_MAX_LOSSES], head_correct[RN_MAX_LOSSES], head_n[RN_MAX_LOSSES];
};

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
    for (int h = 0; h < p->n_heads; h++) {
        head_loss[h] = p->heads[h].loss;
        head_correct[h] = p->heads[h].correct;
        head_n[h] = p->heads[h].n;
        head_fresh |= (unsigned)(p->heads[h].fresh != 0) << h;
    }
    for (int k = 0; k < p->n_terms; k++) {
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
    double total_host;                 /* the part of the total known on the host */
    double host_value[RN_MAX_LOSSES];  /* values of terms computed on the host (saliency) */
};

static void pending_record(struct pending_step *ps, const struct rn_program *p, int n)
{
    memset(ps, 0, sizeof *ps);
    ps->n = n;
    for (int h = 0; h < p->n_heads; h++) {
        ps->head_fresh |= (unsigned)(p->heads[h].fresh != 0) << h;
        ps->head_n[h] = p->heads[h].n;
        ps->head_w[h] = p->head_w[h];
    }
    for (int k = 0; k < p->n_terms; k++) {
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
                          struct step_log *L, double *epoch_loss, int *loss_n, int epoch,
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
            return rn_errorf(err, "training diverged at epoch %d, in the %d steps up to step %d "
                                  "(loss %g); lower train.lr",
                             epoch, count, step, total);
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
            if (rn_augment_draws(&run->augment, m, run->spec->seed, step0 + s,
                                 run->draws + s * bs, err))
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
    int k_train;                  /* index of the train split in run->data */
    int dev_batches;              /* batches gathered (and augmented) from the epoch's copies */
    struct pending_step *pend;    /* device runs: batches whose losses are unread */
    int n_pend;
    struct step_log slog;
};

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

/* One epoch of training steps, then its metrics; an interrupt ends it after
 * the current step, without them. */
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
    double t0 = now_s(), last_draw = 0, epoch_loss = 0;
    int seen = 0, loss_n = 0; /* images trained, and those whose loss is known */
    T->n_pend = 0;
    if (T->dev_batches &&
        epoch_to_device(run, train, T->perm, T->split_colours, bs, run->step, err))
        return -1;
    uint8_t labels[bs], colours[bs];
    for (int s = 0; s < steps && !rn_interrupted; s++) {
        int n = train->n - s * bs < bs ? train->n - s * bs : bs;
        const int *idx = T->perm + (size_t)s * bs;
        if (batch_input(run, T, s, n, epoch, err))
            return -1;
        for (int i = 0; i < n; i++) {
            labels[i] = train->labels[idx[i]];
            colours[i] = T->split_colours ? T->split_colours[idx[i]] : 0;
        }
        run->program.slot = T->n_pend;
        if (rn_program_batch(&run->program, n, labels, T->split_colours ? colours : NULL,
                             run->step, spec->seed, err)) {
            if (!isfinite(run->program.total))
                rn_errorf(err, "training diverged at epoch %d step %d (loss %g); lower train.lr",
                          epoch, s + 1, run->program.total);
            return -1;
        }
        run->step++;
        seen += n;
        if (T->pend) {
            pending_record(&T->pend[T->n_pend++], &run->program, n);
        } else {
            epoch_loss += run->program.total * n;
            loss_n += n;
            step_log_add(&T->slog, &run->program, n);
        }
        if (run->step % (uint64_t)t->log_every == 0 || s == steps - 1) {
            if (T->pend && pending_settle(run, T->pend, T->n_pend, &T->slog, &epoch_loss,
                                          &loss_n, epoch, s + 1, err))
                return -1;
            T->n_pend = 0;
            if (step_log_flush(run, &T->slog, err))
                return -1;
        }
        double now = now_s();
        if (now - last_draw > 0.25 || s == steps - 1) {
            double ips = seen / (now - t0);
            progress(run, epoch, t->epochs, s + 1, steps, loss_n ? epoch_loss / loss_n : NAN, ips,
                     (train->n - seen) / (ips > 0 ? ips : 1), s == steps - 1);
            last_draw = now;
        }
    }
    if (rn_interrupted)
        return 0;
    double secs = now_s() - t0;
    if (log_metric(run, "train/epoch_loss", epoch, loss_n ? epoch_loss / loss_n : NAN, 0, err) ||
        log_metric(run, "train/epoch_seconds", epoch, secs, 0, err) ||
        log_metric(run, "train/images_per_second", epoch, seen / secs, 0, err))
        return -1;
    return 0;
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
        return rn_errorf(err, "%s: the train split is empty; lower data.val_fraction or raise data.train_limit",
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
    for (int epoch = 1; epoch <= t->epochs; epoch++) {
        if (train_epoch(run, &T, epoch, err))
            goto done;
        if (rn_interrupted) {
            if (!run->opt.quiet)
                fprintf(run->opt.log, "\ninterrupted during epoch %d; keeping %d finished epoch%s\n",
                        epoch, run->epochs_done, run->epochs_done == 1 ? "" : "s");
            break;
        }
        run->epochs_done = epoch;
        if (evaluate_all(run, epoch, err) || rn_run_save_model(run, "main", err) ||
            rn_results_flush(run->results, err))
            goto done;
    }
    rc = 0;
done:
    free(T.perm);
    free(T.pend);
    return rc;
}
