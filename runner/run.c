/* run.c - opening and closing a run (run.h): its directory and /config, the
 * data with its colour targets and augmentation, the graph with its
 * parameters (initialised, or loaded by checkpoint.c), the step program, and
 * the data's copy on a device. */
#include "run.h"

#include "backend.h"
#include "checkpoint.h"

#include <cblas.h>
#include <errno.h>
#include <hdf5.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <yaml.h>

#include "rn_git.h"

volatile sig_atomic_t rn_interrupted;

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
            a->colour_jitter = 1;
            a->brightness = (float)sa->brightness;
            a->contrast = (float)sa->contrast;
            a->saturation = (float)sa->saturation;
            a->hue = (float)sa->hue;
        }
        if (run->graph.in_shape.c != 3)
            return rn_errorf(err,
                             "%s:%d:%d: error: augment #%d (%s): needs RGB images, the "
                             "data has %d channel%s",
                             sa->file, sa->line, sa->col, i + 1, sa->type, run->graph.in_shape.c,
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
        wanted |= run->program.heads[h].target == RN_TARGET_COLOUR;
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
    if (!be->data || !be->loss)
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
    size_t eval_bytes =
        RN_MAX_LOSSES * (sizeof(double) + sizeof(int32_t)) + (size_t)k * k * sizeof(int32_t);
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
    int device_data =
        spec->has_model && run->opt.device != RN_DEVICE_CPU && rn_backend_of(run->opt.device)->data;
    if (rn_data_load_on(&spec->data, &run->data, device_data ? run->opt.device : RN_DEVICE_CPU,
                        run->dev_images, err))
        return -1;
    for (int k = 0; k < RN_MAX_SPLITS; k++)
        if (run->dev_images[k])
            run->data_device = run->opt.device;
    if (spec->has_model && run->data.n_classes > RN_MAX_CLASSES)
        return rn_errorf(err,
                         "%s: the data has %d classes; the runner evaluates at most %d "
                         "(RN_MAX_CLASSES in runner/run.h)",
                         spec->file, run->data.n_classes, RN_MAX_CLASSES);
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
            return rn_errorf(err,
                             "model '%s': node '%s' gives (%d,%d,%d) but the loss needs (%d,1,1) "
                             "logits; end the model with a linear layer of %d units",
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
    if (run->opt.check &&
        run->opt.check(spec, run->has_graph ? &run->graph : NULL, run->logits_node, err))
        return -1;
    if (choose_dir(run, err) || rn_run_lock(run, err))
        return -1;
    char path[RN_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/checkpoint.h5", run->dir);
    if (run->opt.resume && access(path, F_OK) == 0)
        return rn_run_resume(run, err);
    /* a fresh run (also a resumed one that never reached its first
     * checkpoint): an earlier run's checkpoint there is not this one's */
    unlink(path);
    snprintf(path, sizeof path, "%s/run.h5", run->dir);
    if (rn_results_create(&run->results, path, err))
        return -1;
    return write_config(run, err);
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
        rn_results_set_attr_u64(run->results, "/", "nonfinite_skipped", run->nonfinite_skipped, &e);
        rn_results_set_attr_str(run->results, "/", "status", status, &e);
        rn_results_close(run->results);
        run->results = NULL;
    }
    if (run->lock_fd > 0) /* closing it releases the flock */
        close(run->lock_fd - 1);
    run->lock_fd = 0;
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

/* ---- models: this run's checkpoints (checkpoint.h) --------------------- */

int rn_run_save_model(struct rn_run *run, const char *model, struct rn_error *err)
{
    return rn_checkpoint_save(&run->graph, run->results, model, run->spec->model.name,
                              run->epochs_done, err);
}

int rn_run_load_model(struct rn_run *run, const char *path, const char *model, struct rn_error *err)
{
    return rn_checkpoint_load(&run->graph, path, model, err);
}

/* ---- a model recorded in another run's file --------------------------- */

/* The spec recorded as text, parsed (relative `extends` are refused: a
 * recorded spec is resolved and has none). */
static int spec_from_text(struct rn_spec *spec, const char *yaml, const char *file,
                          struct rn_error *err)
{
    char name[RN_PATH_MAX + 16];
    snprintf(name, sizeof name, "%s:/config", file);
    if (rn_spec_load_text(spec, yaml, name, NULL, NULL, NULL, NULL, err))
        return rn_error_prefix(err, "%s: its recorded spec", file);
    return 0;
}

/* The recorded spec of file, when it holds /models/<model>. */
static int recorded_spec(struct rn_spec *spec, const char *file, const char *model,
                         struct rn_error *err)
{
    struct rn_results *r = NULL;
    char *yaml = NULL;
    memset(spec, 0, sizeof *spec);
    if (rn_results_open(&r, file, err))
        return -1;
    char group[RN_NAME_MAX + 16];
    snprintf(group, sizeof group, "/models/%s", model);
    int rc = rn_results_get_attr_str(r, "/config", "yaml", &yaml, err);
    if (!rc && !rn_results_exists(r, group))
        rc = rn_errorf(err, "%s has no model '%s' (no %s)", file, model, group);
    rn_results_close(r);
    if (!rc)
        rc = spec_from_text(spec, yaml, file, err);
    free(yaml);
    if (!rc && !spec->has_model)
        rc = rn_errorf(err, "%s: its spec has no model", file);
    return rc;
}

/* The graph of spec for inputs in, its logits node found and checked. */
static int recorded_graph(struct rn_run *run, const struct rn_spec *spec, const char *file,
                          struct rn_shape in, int max_n, int n_classes, struct rn_error *err)
{
    if (rn_graph_build(&run->graph, &spec->model, in, max_n, err))
        return rn_error_prefix(err, "%s: model '%s'", file, spec->model.name);
    run->has_graph = 1;
    run->logits_node = run->graph.n_nodes - 1;
    const struct rn_spec_train *t = &spec->train;
    if (spec->has_train && t->n_losses > 0 && t->losses[0].on[0] &&
        (run->logits_node = rn_graph_find(&run->graph, t->losses[0].on)) < 0)
        return rn_errorf(err, "%s: its loss reads node '%s', which its model lacks", file,
                         t->losses[0].on);
    int k = run->graph.nodes[run->logits_node].layer.out.c;
    if (k != n_classes)
        return rn_errorf(err, "%s: its model gives %d logits; this data has %d classes", file, k,
                         n_classes);
    return 0;
}

int rn_run_open_model(struct rn_run *run, struct rn_spec *spec, const char *file, const char *model,
                      const struct rn_run_options *opt, struct rn_shape in, int max_n,
                      int n_classes, int device, struct rn_error *err)
{
    memset(run, 0, sizeof *run);
    run->spec = spec;
    if (opt)
        run->opt = *opt;
    if (recorded_spec(spec, file, model, err) ||
        recorded_graph(run, spec, file, in, max_n, n_classes, err) ||
        !(run->probs = rn_calloc((size_t)max_n * n_classes, sizeof(float), err)))
        goto fail;
    /* loaded on the host, as a run's own model is, then to the device */
    rn_graph_init_params(&run->graph, spec->seed);
    if (rn_run_load_model(run, file, model, err))
        goto fail;
    if (device != RN_DEVICE_CPU && rn_graph_to_device(&run->graph, device, err)) {
        rn_error_prefix(err, "%s: model '%s'", file, model);
        goto fail;
    }
    return 0;
fail:
    rn_run_close_model(run, spec);
    return -1;
}

void rn_run_close_model(struct rn_run *run, struct rn_spec *spec)
{
    rn_graph_free(&run->graph); /* also a half-built one (rn_run_open_model zeroed it) */
    run->has_graph = 0;
    free(run->probs);
    run->probs = NULL;
    rn_spec_free(spec);
}
