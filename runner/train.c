#include "train.h"

#include "analysis.h"
#include "backend.h"

#include <cblas.h>
#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <yaml.h>

#include "rn_git.h"

volatile sig_atomic_t rn_interrupted;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int rn_make_dirs(const char *path, struct rn_error *err)
{
    char buf[RN_PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(buf, 0777) && errno != EEXIST)
            return rn_errorf(err, "%s: cannot create directory: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0777) && errno != EEXIST)
        return rn_errorf(err, "%s: cannot create directory: %s", buf, strerror(errno));
    return 0;
}

static int choose_dir(struct rn_run *run, struct rn_error *err)
{
    const struct rn_spec *s = run->spec;
    if (run->opt.out_dir) {
        snprintf(run->dir, sizeof run->dir, "%s", run->opt.out_dir);
        return rn_make_dirs(run->dir, err);
    }
    char stamp[32], parent[RN_PATH_MAX];
    time_t t = time(NULL);
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", localtime(&t));
    snprintf(parent, sizeof parent, "%s/%s", s->out, s->name);
    if (rn_make_dirs(parent, err))
        return -1;
    /* a second run in the same second gets a suffix rather than overwriting */
    for (int k = 0; k < 100; k++) {
        if (k == 0)
            snprintf(run->dir, sizeof run->dir, "%s/%s-s%llu", parent, stamp,
                     (unsigned long long)s->seed);
        else
            snprintf(run->dir, sizeof run->dir, "%s/%s-s%llu-%d", parent, stamp,
                     (unsigned long long)s->seed, k);
        if (mkdir(run->dir, 0777) == 0)
            break;
        if (errno != EEXIST)
            return rn_errorf(err, "%s: cannot create directory: %s", run->dir, strerror(errno));
    }
    char link[RN_PATH_MAX];
    snprintf(link, sizeof link, "%s/latest", parent);
    unlink(link);
    const char *base = strrchr(run->dir, '/');
    if (symlink(base ? base + 1 : run->dir, link))
        return 0; /* a missing convenience link is not worth failing a run */
    return 0;
}

static int write_config(struct rn_run *run, struct rn_error *err)
{
    const struct rn_spec *s = run->spec;
    struct rn_results *r = run->results;
    char versions[512], started[64];
    unsigned maj, min, rel;
    H5get_libversion(&maj, &min, &rel);
    snprintf(versions, sizeof versions, "runner %s; libyaml %s; HDF5 %u.%u.%u; OpenBLAS %s",
             RN_VERSION, yaml_get_version_string(), maj, min, rel, openblas_get_config());
    time_t t = time(NULL);
    strftime(started, sizeof started, "%Y-%m-%dT%H:%M:%S%z", localtime(&t));
    if (rn_results_set_attr_str(r, "/config", "yaml", s->resolved ? s->resolved : "", err) ||
        rn_results_set_attr_u64(r, "/config", "seed", s->seed, err) ||
        rn_results_set_attr_str(r, "/config", "git_commit", RN_GIT_COMMIT, err) ||
        rn_results_set_attr_str(r, "/config", "device", run->opt.device ? "cuda" : "cpu", err) ||
        rn_results_set_attr_str(r, "/config", "device_name",
                                run->opt.device_desc[0] ? run->opt.device_desc : "host CPU", err) ||
        rn_results_set_attr_str(r, "/config", "versions", versions, err) ||
        rn_results_set_attr_str(r, "/config", "experiment", s->name, err) ||
        rn_results_set_attr_str(r, "/config", "spec_file", s->file, err) ||
        rn_results_set_attr_str(r, "/config", "started", started, err))
        return -1;
    return rn_results_flush(r, err);
}

static int init_augment(struct rn_run *run, struct rn_error *err)
{
    const struct rn_spec_train *t = &run->spec->train;
    struct rn_augment *a = &run->augment;
    for (int i = 0; i < t->n_augment; i++) {
        const struct rn_spec_augment *sa = &t->augment[i];
        if (!strcmp(sa->type, "channel_permute")) {
            a->channel_permute = 1;
        } else {
            a->color_jitter = 1;
            a->brightness = (float)sa->brightness;
            a->contrast = (float)sa->contrast;
            a->saturation = (float)sa->saturation;
            a->hue = (float)sa->hue;
        }
        if (run->graph.in_shape.c != 3)
            return rn_errorf(err, "%s:%d:%d: error: augment #%d (%s): needs RGB images, the "
                             "data has %d channel%s", sa->file, sa->line, sa->col, i + 1,
                             sa->type, run->graph.in_shape.c,
                             run->graph.in_shape.c == 1 ? "" : "s");
    }
    run->augment_on = t->n_augment > 0;
    return 0;
}

/* Colour targets for every split when some head predicts colours: the
 * generator's colour of each image, or the pixel detector's for images of
 * unknown origin (SPEC.md "Colour label"). Never the digit label. */
static int init_colours(struct rn_run *run, struct rn_error *err)
{
    int wanted = 0;
    for (int h = 0; h < run->program.n_heads; h++)
        wanted |= run->program.heads[h].target == RN_TARGET_COLOR;
    if (!wanted)
        return 0;
    const struct rn_data_config *d = &run->spec->data;
    const float texture_mean = 0.5f * (d->noise_lo + d->noise_hi);
    for (int k = 0; k < run->data.n_splits; k++) {
        const struct rn_split *s = &run->data.splits[k];
        if (s->c != 3)
            continue;
        if (!(run->colours[k] = rn_malloc((size_t)s->n + 1, err)))
            return -1;
        const size_t per = (size_t)s->c * s->h * s->w;
        for (int i = 0; i < s->n; i++)
            run->colours[k][i] = s->colours && s->colours[i] != RN_NO_COLOUR
                                     ? s->colours[i]
                                     : (uint8_t)rn_colour_detect(s->images + per * i, s->h, s->w,
                                                                 &d->palette, texture_mean);
    }
    return 0;
}

const uint8_t *rn_run_split_colours(const struct rn_run *run, const struct rn_split *split)
{
    for (int k = 0; k < run->data.n_splits; k++)
        if (&run->data.splits[k] == split)
            return run->colours[k];
    return NULL;
}

/* A copy of host bytes on the device (nothing for none). */
static int upload_bytes(const struct rn_backend *be, void **dst, const void *src, size_t bytes,
                        struct rn_error *err)
{
    if (!src || !bytes)
        return 0;
    return be->alloc(dst, bytes, err) || be->upload(*dst, src, bytes, err) ? -1 : 0;
}

/* The dataset moves to the device once, with its labels and colour targets;
 * a batch is gathered there from its indices (the images never cross the
 * bus again) and evaluation sums stay there until a split is done. */
static int upload_data(struct rn_run *run, struct rn_error *err)
{
    const struct rn_backend *be = rn_backend_of(run->opt.device);
    if (!be->gather_images || !be->cross_entropy)
        return 0;
    run->data_device = run->opt.device;
    for (int k = 0; k < run->data.n_splits; k++) {
        const struct rn_split *s = &run->data.splits[k];
        size_t bytes = (size_t)s->n * s->c * s->h * s->w;
        if ((!run->dev_images[k] && /* coloured there already (rn_data_load_on) */
             upload_bytes(be, &run->dev_images[k], s->images, bytes, err)) ||
            upload_bytes(be, &run->dev_labels[k], s->labels, (size_t)s->n, err) ||
            upload_bytes(be, &run->dev_colours[k], run->colours[k], (size_t)s->n, err))
            return rn_error_prefix(err, "the %s split (%zu MB) to %s", s->name, bytes >> 20,
                                   be->name);
    }
    /* A training epoch's order, targets and augmentation draws go over once
     * per epoch (rn_run_train), so no batch waits for a copy. */
    const struct rn_split *tr = rn_data_split(&run->data, "train");
    const size_t n_train = run->spec->has_train && tr ? (size_t)tr->n : 0;
    if (n_train && (be->alloc(&run->dev_order, sizeof(int32_t) * n_train, err) ||
                    be->alloc(&run->dev_order_targets, 2 * n_train, err)))
        return -1;
    if (n_train && run->augment_on && be->augment) { /* the draws are made here, applied there */
        size_t bytes = sizeof(struct rn_augment_draw) * n_train;
        if (!(run->draws = rn_malloc(bytes, err)) || be->alloc(&run->dev_draws, bytes, err))
            return -1;
    }
    const int k = run->data.n_classes, max_n = run->graph.max_n;
    size_t eval_bytes = RN_MAX_LOSSES * (sizeof(double) + sizeof(int32_t)) +
                        (size_t)k * k * sizeof(int32_t);
    int32_t iota[max_n];
    for (int i = 0; i < max_n; i++)
        iota[i] = i;
    return be->alloc(&run->dev_idx, sizeof(int32_t) * (size_t)max_n, err) ||
                   be->alloc(&run->dev_iota, sizeof iota, err) ||
                   be->upload(run->dev_iota, iota, sizeof iota, err) ||
                   be->alloc(&run->dev_eval, eval_bytes, err)
               ? -1
               : 0;
}

int rn_run_open(struct rn_run *run, const struct rn_spec *spec, const struct rn_run_options *opt,
                struct rn_error *err)
{
    memset(run, 0, sizeof *run);
    run->spec = spec;
    if (opt)
        run->opt = *opt;
    if (!run->opt.log)
        run->opt.log = stderr;
    /* A run on a device colours its dataset there and keeps it there */
    int device_data = spec->has_model && run->opt.device != RN_DEVICE_CPU &&
                      rn_backend_of(run->opt.device)->gather_images;
    if (rn_data_load_on(&spec->data, &run->data, device_data ? run->opt.device : RN_DEVICE_CPU,
                        run->dev_images, err))
        return -1;
    for (int k = 0; k < RN_MAX_SPLITS; k++)
        if (run->dev_images[k])
            run->data_device = run->opt.device;
    if (spec->has_model) {
        const struct rn_split *tr = &run->data.splits[0];
        struct rn_shape in = {tr->c, tr->h, tr->w};
        int max_n = 1;
        if (spec->has_train && spec->train.batch > max_n)
            max_n = spec->train.batch;
        int eval_batch = spec->has_train ? spec->train.eval_batch : 256;
        if (eval_batch > max_n)
            max_n = eval_batch;
        if (rn_graph_build(&run->graph, &spec->model, in, max_n, err))
            return -1;
        run->has_graph = 1;
        run->logits_node = run->graph.n_nodes - 1;
        /* parameters are initialised (and loaded) on the host, so every
         * device starts from the same values; then the graph moves */
        rn_graph_init_params(&run->graph, spec->seed);
        if (spec->load.run[0] && rn_run_load_model(run, spec->load.run, spec->load.model, err))
            return -1;
        if (run->opt.device != RN_DEVICE_CPU &&
            rn_graph_to_device(&run->graph, run->opt.device, err))
            return -1;
        if (spec->has_train) {
            const struct rn_spec_train *t = &spec->train;
            const struct rn_split *trs = rn_data_split(&run->data, "train");
            int n_train = trs && trs->n > 0 ? trs->n : 1;
            uint64_t total = (uint64_t)((n_train + t->batch - 1) / t->batch) * (uint64_t)t->epochs;
            if (rn_program_init(&run->program, t, &run->graph, run->data.n_classes, total, err))
                return -1;
            run->has_program = 1;
            run->logits_node = run->program.heads[run->program.primary].node;
            if (init_augment(run, err) || init_colours(run, err))
                return -1;
        }
        struct rn_shape o = run->graph.nodes[run->logits_node].layer.out;
        if (o.c != run->data.n_classes || o.h != 1 || o.w != 1)
            return rn_errorf(err, "model '%s': node '%s' gives (%d,%d,%d) but the loss needs (%d,1,1) logits; end the model with a linear layer of %d units",
                             spec->model.name, run->graph.nodes[run->logits_node].layer.name, o.c,
                             o.h, o.w, run->data.n_classes, run->data.n_classes);
        run->probs = rn_calloc((size_t)max_n * o.c, sizeof(float), err);
        if (!run->probs)
            return -1;
        if (run->opt.device != RN_DEVICE_CPU && upload_data(run, err))
            return -1;
        /* gradients are only needed at the training batch size */
        if (rn_graph_reserve_grad(&run->graph, spec->has_train ? spec->train.batch : 1, err))
            return -1;
    }
    /* what the analyses name must exist before anything is trained */
    if (rn_analyses_check(spec, run->has_graph ? &run->graph : NULL, run->logits_node, err))
        return -1;
    if (choose_dir(run, err))
        return -1;
    char path[RN_PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/run.h5", run->dir);
    if (rn_results_create(&run->results, path, err))
        return -1;
    return write_config(run, err);
}

/* The batch into the host side of the graph input (not committed). */
static int load_host(struct rn_run *run, const struct rn_split *split, const int *idx, int n,
                     struct rn_error *err)
{
    struct rn_tensor *x = rn_graph_input_host(&run->graph, n, err);
    if (!x)
        return -1;
    const size_t per = (size_t)split->c * split->h * split->w;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        const uint8_t *src = split->images + (size_t)(idx ? idx[i] : i) * per;
        float *dst = x->data + (size_t)i * per;
        for (size_t k = 0; k < per; k++)
            dst[k] = src[k] * (1.0f / 255.0f);
    }
    return 0;
}

int rn_run_load_batch(struct rn_run *run, const struct rn_split *split, const int *idx, int n,
                      struct rn_error *err)
{
    struct rn_graph *g = &run->graph;
    int k = (int)(split - run->data.splits);
    if (run->data_device && g->device == run->data_device && k >= 0 && k < RN_MAX_SPLITS &&
        run->dev_images[k]) {
        if (n < 1 || n > g->max_n)
            return rn_errorf(err, "batch of %d samples does not fit the graph (max %d)", n,
                             g->max_n);
        const struct rn_backend *be = rn_backend_of(g->device);
        int32_t ix[n];
        for (int i = 0; i < n; i++)
            ix[i] = idx ? idx[i] : i;
        g->x.n = n;
        if (be->upload(run->dev_idx, ix, sizeof ix, err) ||
            be->gather_images(run->dev_images[k], run->dev_idx, n,
                              (size_t)split->c * split->h * split->w, g->x.data, err))
            return rn_error_prefix(err, "batch of %s", split->name);
        return 0;
    }
    return load_host(run, split, idx, n, err) || rn_graph_input_commit(g, err) ? -1 : 0;
}

int rn_run_predict(struct rn_run *run, int n, float *probs, struct rn_error *err)
{
    struct rn_ctx ctx = {.train = 0, .seed = run->spec->seed, .step = run->step};
    if (rn_graph_forward(&run->graph, n, run->logits_node, &ctx, err))
        return -1;
    const struct rn_tensor *z = rn_graph_output_host(&run->graph, run->logits_node, err);
    if (!z)
        return -1;
    static const uint8_t zeros[4096];
    if (n > (int)sizeof zeros)
        return rn_errorf(err, "predict: batch of %d is too large", n);
    rn_cross_entropy(z, zeros, 0, NULL, NULL, probs);
    return 0;
}

/* rn_run_evaluate on a device: losses, hits and the confusion matrix are
 * summed there and read back once, at the end of the split. */
static int evaluate_device(struct rn_run *run, const struct rn_split *split, int ks,
                           const struct rn_head *heads, int n_heads, int primary, int last, int bs,
                           struct rn_ctx *ctx, double *loss, int *correct,
                           struct rn_split_result *res, struct rn_error *err)
{
    const struct rn_backend *be = rn_backend_of(run->graph.device);
    const int k = run->data.n_classes;
    double *d_loss = run->dev_eval;
    int32_t *d_correct = (int32_t *)(d_loss + RN_MAX_LOSSES), *d_conf = d_correct + RN_MAX_LOSSES;
    const size_t bytes =
        RN_MAX_LOSSES * (sizeof(double) + sizeof(int32_t)) + (size_t)k * k * sizeof(int32_t);
    if (be->zero(run->dev_eval, bytes, err))
        return -1;
    const size_t per = (size_t)split->c * split->h * split->w;
    for (int start = 0; start < split->n; start += bs) {
        int n = split->n - start < bs ? split->n - start : bs;
        /* images [start, start + n): the split from start, indices 0..n-1 */
        run->graph.x.n = n;
        if (be->gather_images((const uint8_t *)run->dev_images[ks] + (size_t)start * per,
                              run->dev_iota, n, per, run->graph.x.data, err))
            return rn_error_prefix(err, "batch of %s", split->name);
        if (rn_graph_forward(&run->graph, n, last, ctx, err))
            return -1;
        for (int h = 0; h < n_heads; h++) {
            const uint8_t *y = heads[h].target == RN_TARGET_COLOR ? run->dev_colours[ks]
                                                                  : run->dev_labels[ks];
            if (!y)
                continue;
            int digit_main = h == primary && heads[h].target == RN_TARGET_DIGIT;
            if (be->cross_entropy(run->graph.nodes[heads[h].node].y.data, y + start, n, k, 0,
                                  NULL, d_loss + h, d_correct + h, digit_main ? d_conf : NULL,
                                  err))
                return rn_error_prefix(err, "evaluating %s", split->name);
        }
    }
    double sums[RN_MAX_LOSSES];
    int32_t counts[RN_MAX_LOSSES], conf[k * k];
    if (be->download(sums, d_loss, sizeof sums, err) ||
        be->download(counts, d_correct, sizeof counts, err) ||
        be->download(conf, d_conf, sizeof conf, err))
        return rn_error_prefix(err, "evaluation sums of %s", split->name);
    for (int h = 0; h < n_heads; h++) {
        loss[h] = sums[h];
        correct[h] = counts[h];
    }
    for (int t = 0; t < k; t++)
        for (int j = 0; j < k; j++)
            res->confusion[t][j] = conf[t * k + j];
    return 0;
}

int rn_run_evaluate(struct rn_run *run, const struct rn_split *split, struct rn_split_result *res,
                    struct rn_error *err)
{
    memset(res, 0, sizeof *res);
    snprintf(res->split, sizeof res->split, "%s", split->name);
    int bs = run->spec->has_train ? run->spec->train.eval_batch : 256;
    if (bs > run->graph.max_n)
        bs = run->graph.max_n;
    struct rn_ctx ctx = {.train = 0, .seed = run->spec->seed, .step = run->step};
    /* the heads: the program's, or the one logits node of a loaded model */
    struct rn_head single = {.node = run->logits_node, .target = RN_TARGET_DIGIT};
    const struct rn_head *heads = run->has_program ? run->program.heads : &single;
    const int n_heads = run->has_program ? run->program.n_heads : 1;
    const int primary = run->has_program ? run->program.primary : 0;
    const uint8_t *colours = rn_run_split_colours(run, split);
    int last = run->logits_node;
    for (int h = 0; h < n_heads; h++)
        if (heads[h].node > last)
            last = heads[h].node;
    double loss[RN_MAX_LOSSES] = {0};
    int correct[RN_MAX_LOSSES] = {0};
    int idx[bs];
    const int k = run->data.n_classes;
    const int ks = (int)(split - run->data.splits);
    const int on_device = run->data_device && run->graph.device == run->data_device &&
                          ks >= 0 && ks < RN_MAX_SPLITS && run->dev_labels[ks];
    if (on_device) {
        if (evaluate_device(run, split, ks, heads, n_heads, primary, last, bs, &ctx, loss,
                            correct, res, err))
            return -1;
    }
    for (int start = 0; !on_device && start < split->n; start += bs) {
        int n = split->n - start < bs ? split->n - start : bs;
        for (int i = 0; i < n; i++)
            idx[i] = start + i;
        if (rn_run_load_batch(run, split, idx, n, err) ||
            rn_graph_forward(&run->graph, n, last, &ctx, err))
            return -1;
        for (int h = 0; h < n_heads; h++) {
            const uint8_t *y = heads[h].target == RN_TARGET_COLOR ? colours : split->labels;
            if (!y)
                continue;
            int c = 0;
            const struct rn_tensor *z = rn_graph_output_host(&run->graph, heads[h].node, err);
            if (!z)
                return -1;
            loss[h] += rn_cross_entropy(z, y + start, 0, NULL, &c, run->probs) * n;
            correct[h] += c;
            if (h != primary || heads[h].target != RN_TARGET_DIGIT)
                continue;
            for (int i = 0; i < n; i++) {
                const float *p = run->probs + (size_t)i * k;
                int arg = 0;
                for (int j = 1; j < k; j++)
                    if (p[j] > p[arg])
                        arg = j;
                res->confusion[split->labels[start + i]][arg]++;
            }
        }
    }
    res->n = split->n;
    res->n_heads = n_heads;
    for (int h = 0; h < n_heads; h++) {
        int has = heads[h].target == RN_TARGET_DIGIT || colours;
        res->head_n[h] = has ? split->n : 0;
        res->head_loss[h] = has && split->n ? loss[h] / split->n : 0;
        res->head_accuracy[h] = has && split->n ? (double)correct[h] / split->n : 0;
        if (h == primary) {
            res->loss = res->head_loss[h];
            res->accuracy = res->head_accuracy[h];
        }
    }
    return 0;
}

int rn_run_save_model(struct rn_run *run, const char *model, struct rn_error *err)
{
    struct rn_graph *g = &run->graph;
    for (int i = 0; i < g->n_nodes; i++) {
        struct rn_layer *l = &g->nodes[i].layer;
        for (int j = 0; j < l->n_params; j++) {
            struct rn_param *p = &l->params[j];
            const struct rn_tensor *t = &p->value;
            struct rn_tensor host = {0};
            if (t->device != RN_DEVICE_CPU) { /* checkpoints are written from the host */
                if (rn_tensor_init(&host, t->n, t->c, t->h, t->w, err) ||
                    rn_tensor_copy(&host, t, err)) {
                    rn_tensor_free(&host);
                    return rn_error_prefix(err, "checkpoint of %s.%s", l->name, p->name);
                }
                t = &host;
            }
            char path[512];
            snprintf(path, sizeof path, "/models/%s/%s.%s", model, l->name, p->name);
            int dims[4] = {t->n, t->c, t->h, t->w};
            if (p->ndim == 1)
                dims[0] = (int)rn_tensor_numel(t);
            int rc;
            if (p->is_int64) {
                int64_t v = (int64_t)t->data[0];
                rc = rn_results_write(run->results, path, RN_DTYPE_I64, &v, 0, NULL, err);
            } else {
                rc = rn_results_write(run->results, path, RN_DTYPE_F32, t->data, p->ndim, dims, err);
            }
            rn_tensor_free(&host);
            if (rc)
                return -1;
        }
    }
    char group[256];
    snprintf(group, sizeof group, "/models/%s", model);
    if (rn_results_set_attr_str(run->results, group, "architecture", run->spec->model.name, err) ||
        rn_results_set_attr_u64(run->results, group, "epochs", (uint64_t)run->epochs_done, err))
        return -1;
    return 0;
}

int rn_run_load_model(struct rn_run *run, const char *path, const char *model,
                      struct rn_error *err)
{
    char file[RN_PATH_MAX + 16];
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        snprintf(file, sizeof file, "%s/run.h5", path);
    else
        snprintf(file, sizeof file, "%s", path);
    struct rn_results *r = NULL;
    if (rn_results_open(&r, file, err))
        return rn_error_prefix(err, "load");
    struct rn_graph *g = &run->graph;
    int rc = 0;
    for (int i = 0; i < g->n_nodes && !rc; i++) {
        struct rn_layer *l = &g->nodes[i].layer;
        for (int j = 0; j < l->n_params && !rc; j++) {
            struct rn_param *p = &l->params[j];
            char key[512];
            snprintf(key, sizeof key, "/models/%s/%s.%s", model, l->name, p->name);
            void *data = NULL;
            int ndim = 0, dims[4] = {0};
            if (!rn_results_exists(r, key)) {
                rc = rn_errorf(err, "load: %s has no %s; was it trained with the same model?", file,
                               key);
                break;
            }
            if (p->is_int64) {
                if ((rc = rn_results_read(r, key, RN_DTYPE_I64, &data, &ndim, dims, err)))
                    break;
                p->value.data[0] = (float)*(int64_t *)data;
                free(data);
                continue;
            }
            if ((rc = rn_results_read(r, key, RN_DTYPE_F32, &data, &ndim, dims, err)))
                break;
            size_t numel = 1;
            for (int d = 0; d < ndim; d++)
                numel *= (size_t)dims[d];
            if (ndim != p->ndim || numel != rn_tensor_numel(&p->value))
                rc = rn_errorf(err, "load: %s%s has %zu values in %d dims; the model expects %zu in %d",
                               file, key, numel, ndim, rn_tensor_numel(&p->value), p->ndim);
            else
                memcpy(p->value.data, data, numel * sizeof(float));
            free(data);
        }
    }
    rn_results_close(r);
    return rc;
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
        int dims[2] = {10, 10};
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

int rn_run_train(struct rn_run *run, struct rn_error *err)
{
    const struct rn_spec *spec = run->spec;
    if (!run->has_graph || !spec->has_train)
        return 0;
    const struct rn_spec_train *t = &spec->train;
    struct rn_split *train = rn_data_split(&run->data, "train");
    if (!train || train->n == 0)
        return rn_errorf(err, "%s: the train split is empty; lower data.val_fraction or raise data.train_limit",
                         spec->file);
    const int bs = t->batch;
    const int steps = (train->n + bs - 1) / bs;
    int *perm = rn_malloc(sizeof(int) * (size_t)train->n, err);
    if (!perm)
        return -1;
    struct pending_step *pend = NULL; /* device runs: batches whose losses are unread */
    int n_pend = 0;
    if (rn_results_set_attr_u64(run->results, "/metrics", "steps_per_epoch", (uint64_t)steps, err))
        goto fail;
    struct rn_graph *g = &run->graph;
    const uint8_t *split_colours = rn_run_split_colours(run, train);
    struct step_log slog;
    memset(&slog, 0, sizeof slog);
    /* On a device the losses stay there until the log reads them, and the
     * batches come from the epoch's copies there (when the device gathers,
     * and augments if asked). */
    const int k_train = (int)(train - run->data.splits);
    const int dev_batches = run->data_device && g->device == run->data_device &&
                            run->dev_images[k_train] && run->dev_order &&
                            (!run->augment_on || run->dev_draws);
    if (run->data_device && g->device == run->data_device) {
        if (rn_program_device(&run->program, t->log_every, err) ||
            !(pend = rn_calloc((size_t)t->log_every, sizeof *pend, err)))
            goto fail;
    }
    for (int epoch = 1; epoch <= t->epochs; epoch++) {
        for (int i = 0; i < train->n; i++)
            perm[i] = i;
        if (t->shuffle) {
            struct rn_rng r;
            rn_rng_init(&r, spec->seed, RN_STREAM_SHUFFLE, (uint64_t)epoch);
            rn_rng_shuffle(&r, perm, train->n);
        }
        double t0 = now_s(), last_draw = 0, epoch_loss = 0;
        int seen = 0, loss_n = 0; /* images trained, and those whose loss is known */
        n_pend = 0;
        if (dev_batches &&
            epoch_to_device(run, train, perm, split_colours, bs, run->step, err))
            goto fail;
        uint8_t labels[bs], colours[bs];
        for (int s = 0; s < steps; s++) {
            if (rn_interrupted)
                break;
            int n = train->n - s * bs < bs ? train->n - s * bs : bs;
            const int *idx = perm + (size_t)s * bs;
            if (dev_batches) {
                /* from the epoch's copies: gathered (and augmented) there */
                const struct rn_backend *be = rn_backend_of(g->device);
                const size_t off = (size_t)s * bs;
                g->x.n = n;
                const int32_t *order = (const int32_t *)run->dev_order + off;
                const struct rn_augment_draw *draws =
                    run->dev_draws ? (const struct rn_augment_draw *)run->dev_draws + off : NULL;
                if (be->gather_images(run->dev_images[k_train], order, n,
                                      (size_t)train->c * train->h * train->w, g->x.data, err) ||
                    (draws && be->augment(&run->augment, draws, g->x.data, n, g->in_shape.c,
                                          g->in_shape.h, g->in_shape.w, err))) {
                    rn_error_prefix(err, "batch %d of epoch %d", s + 1, epoch);
                    goto fail;
                }
                run->program.batch_digit = (const uint8_t *)run->dev_order_targets + off;
                run->program.batch_colour =
                    split_colours ? (const uint8_t *)run->dev_order_targets + train->n + off : NULL;
            } else if (run->augment_on) {
                /* augmentation on the host; the batch goes over after it */
                if (load_host(run, train, idx, n, err) ||
                    rn_augment_batch(&run->augment, rn_graph_input_host(g, n, err)->data, n,
                                     g->in_shape.c, g->in_shape.h, g->in_shape.w, spec->seed,
                                     run->step, err) ||
                    rn_graph_input_commit(g, err))
                    goto fail;
            } else if (rn_run_load_batch(run, train, idx, n, err)) {
                goto fail;
            }
            for (int i = 0; i < n; i++) {
                labels[i] = train->labels[idx[i]];
                colours[i] = split_colours ? split_colours[idx[i]] : 0;
            }
            run->program.slot = n_pend;
            if (rn_program_batch(&run->program, n, labels, split_colours ? colours : NULL,
                                 run->step, spec->seed, err)) {
                if (!isfinite(run->program.total))
                    rn_errorf(err, "training diverged at epoch %d step %d (loss %g); lower train.lr",
                              epoch, s + 1, run->program.total);
                goto fail;
            }
            run->step++;
            seen += n;
            if (pend) {
                pending_record(&pend[n_pend++], &run->program, n);
            } else {
                epoch_loss += run->program.total * n;
                loss_n += n;
                step_log_add(&slog, &run->program, n);
            }
            if (run->step % (uint64_t)t->log_every == 0 || s == steps - 1) {
                if (pend && pending_settle(run, pend, n_pend, &slog, &epoch_loss, &loss_n, epoch,
                                           s + 1, err))
                    goto fail;
                n_pend = 0;
                if (step_log_flush(run, &slog, err))
                    goto fail;
            }
            double now = now_s();
            if (now - last_draw > 0.25 || s == steps - 1) {
                double ips = seen / (now - t0);
                progress(run, epoch, t->epochs, s + 1, steps, loss_n ? epoch_loss / loss_n : NAN, ips,
                         (train->n - seen) / (ips > 0 ? ips : 1), s == steps - 1);
                last_draw = now;
            }
        }
        if (rn_interrupted) {
            if (!run->opt.quiet)
                fprintf(run->opt.log, "\ninterrupted during epoch %d; keeping %d finished epoch%s\n",
                        epoch, run->epochs_done, run->epochs_done == 1 ? "" : "s");
            break;
        }
        double secs = now_s() - t0;
        if (log_metric(run, "train/epoch_loss", epoch, loss_n ? epoch_loss / loss_n : NAN, 0, err) ||
            log_metric(run, "train/epoch_seconds", epoch, secs, 0, err) ||
            log_metric(run, "train/images_per_second", epoch, seen / secs, 0, err))
            goto fail;
        run->epochs_done = epoch;
        if (evaluate_all(run, epoch, err) || rn_run_save_model(run, "main", err) ||
            rn_results_flush(run->results, err))
            goto fail;
    }
    free(perm);
    free(pend);
    return 0;
fail:
    free(perm);
    free(pend);
    return -1;
}

void rn_run_close(struct rn_run *run, const char *status)
{
    if (run->results) {
        struct rn_error e;
        char finished[64];
        time_t t = time(NULL);
        strftime(finished, sizeof finished, "%Y-%m-%dT%H:%M:%S%z", localtime(&t));
        rn_results_set_attr_str(run->results, "/config", "finished", finished, &e);
        rn_results_set_attr_u64(run->results, "/", "epochs_done", (uint64_t)run->epochs_done, &e);
        rn_results_set_attr_str(run->results, "/", "status", status, &e);
        rn_results_close(run->results);
        run->results = NULL;
    }
    if (run->has_program)
        rn_program_free(&run->program);
    run->has_program = 0;
    for (int k = 0; k < RN_MAX_SPLITS; k++) {
        free(run->colours[k]);
        run->colours[k] = NULL;
    }
    if (run->data_device) {
        const struct rn_backend *be = rn_backend_of(run->data_device);
        for (int k = 0; k < RN_MAX_SPLITS; k++) {
            be->release(run->dev_images[k]);
            be->release(run->dev_labels[k]);
            be->release(run->dev_colours[k]);
        }
        be->release(run->dev_idx);
        be->release(run->dev_iota);
        be->release(run->dev_order);
        be->release(run->dev_order_targets);
        be->release(run->dev_eval);
        be->release(run->dev_draws);
        run->dev_draws = NULL;
        memset(run->dev_images, 0, sizeof run->dev_images);
        memset(run->dev_labels, 0, sizeof run->dev_labels);
        memset(run->dev_colours, 0, sizeof run->dev_colours);
        run->dev_idx = run->dev_eval = run->dev_iota = NULL;
        run->dev_order = run->dev_order_targets = NULL;
        run->data_device = 0;
    }
    free(run->draws);
    run->draws = NULL;
    if (run->has_graph)
        rn_graph_free(&run->graph);
    rn_data_free(&run->data);
    free(run->probs);
    run->probs = NULL;
}
