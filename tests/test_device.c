/* test_device.c - the executor's device plumbing, checked without a GPU.
 *
 * A stand-in device (RN_DEVICE_TEST) keeps its "device memory" on the host
 * and runs the CPU layer functions, but every kernel first checks that each
 * tensor it is handed (inputs, output, gradients, parameters) lives on that
 * device, and counts the copies in and out. Training on it must give results
 * bit-identical to the CPU: the same graph moves, the same batches are staged
 * and committed, losses read their logits through the host accessors, the
 * optimizers update through the backend table, checkpoints download. What
 * the CUDA backend adds on top (its kernels) is checked against the CPU by
 * test_cuda on a machine with a GPU.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "graph.h"
#include "loss.h"
#include "saliency.h"
#include "spec.h"
#include "train.h"

/* ---- the stand-in device ---------------------------------------------- */

static int misplaced;        /* tensors a kernel got that were not on the device */
static long uploads, downloads, gathers;
static size_t upload_bytes;
static const char *no_kernels_for; /* layer type to refuse (NULL: none) */
static int alloc_fails;            /* 1: every allocation fails */

static int emu_alloc(void **p, size_t bytes, struct rn_error *err)
{
    *p = alloc_fails ? NULL : calloc(1, bytes ? bytes : 1);
    return *p ? 0 : rn_errorf(err, "emu: out of memory");
}

static void emu_release(void *p)
{
    free(p);
}

static int emu_upload(void *dst, const void *src, size_t bytes, struct rn_error *err)
{
    (void)err;
    uploads++;
    upload_bytes += bytes;
    memmove(dst, src, bytes);
    return 0;
}

static int emu_download(void *dst, const void *src, size_t bytes, struct rn_error *err)
{
    (void)err;
    downloads++;
    memmove(dst, src, bytes);
    return 0;
}

static int emu_copy(void *dst, const void *src, size_t bytes, struct rn_error *err)
{
    (void)err;
    memmove(dst, src, bytes);
    return 0;
}

static int emu_zero(void *p, size_t bytes, struct rn_error *err)
{
    (void)err;
    memset(p, 0, bytes);
    return 0;
}

static int emu_sync(struct rn_error *err)
{
    (void)err;
    return 0;
}

static void check(const struct rn_tensor *t)
{
    if (t && t->data && t->device != RN_DEVICE_TEST)
        misplaced++;
}

static void check_layer(const struct rn_layer *l)
{
    for (int i = 0; i < l->n_params; i++) {
        check(&l->params[i].value);
        check(&l->params[i].grad);
    }
}

static int emu_forward(struct rn_layer *l, const struct rn_tensor *const *x, struct rn_tensor *y,
                       const struct rn_ctx *ctx, struct rn_error *err)
{
    for (int i = 0; i < l->type->n_inputs; i++)
        check(x[i]);
    check(y);
    check_layer(l);
    return l->type->forward(l, x, y, ctx, err);
}

static int emu_backward(struct rn_layer *l, const struct rn_tensor *const *x,
                        const struct rn_tensor *y, const struct rn_tensor *dy,
                        struct rn_tensor *const *dx, const struct rn_ctx *ctx, struct rn_error *err)
{
    for (int i = 0; i < l->type->n_inputs; i++) {
        check(x[i]);
        check(dx[i]);
    }
    check(y);
    check(dy);
    check_layer(l);
    return l->type->backward(l, x, y, dy, dx, ctx, err);
}

static int emu_tangent_forward(struct rn_layer *l, const struct rn_tensor *const *x,
                               const struct rn_tensor *const *tx, struct rn_tensor *ty,
                               const struct rn_ctx *ctx, struct rn_error *err)
{
    for (int i = 0; i < l->type->n_inputs; i++) {
        check(x[i]);
        check(tx[i]);
    }
    check(ty);
    check_layer(l);
    if (!l->type->tangent_forward)
        return rn_errorf(err, "no tangent");
    return l->type->tangent_forward(l, x, tx, ty, ctx, err);
}

static int emu_tangent_backward(struct rn_layer *l, const struct rn_tensor *const *x,
                                const struct rn_tensor *const *tx, const struct rn_tensor *dy,
                                const struct rn_tensor *tdy, struct rn_tensor *const *tdx,
                                const struct rn_ctx *ctx, struct rn_error *err)
{
    for (int i = 0; i < l->type->n_inputs; i++) {
        check(x[i]);
        check(tx[i]);
        check(tdx[i]);
    }
    check(dy);
    check(tdy);
    check_layer(l);
    if (!l->type->tangent_backward)
        return rn_errorf(err, "no tangent");
    return l->type->tangent_backward(l, x, tx, dy, tdy, tdx, ctx, err);
}

static int emu_prepare(struct rn_layer *l, int max_n, struct rn_error *err)
{
    (void)max_n;
    (void)err;
    check_layer(l);
    l->dpriv = l; /* something to release */
    return 0;
}

static void emu_release_layer(struct rn_layer *l)
{
    l->dpriv = NULL;
}

static const struct rn_layer_kernels emu_kernels = {
    .type = "any",
    .prepare = emu_prepare,
    .release = emu_release_layer,
    .forward = emu_forward,
    .backward = emu_backward,
    .tangent_forward = emu_tangent_forward,
    .tangent_backward = emu_tangent_backward,
};

static const struct rn_layer_kernels *emu_layer(const char *type)
{
    return no_kernels_for && strcmp(type, no_kernels_for) == 0 ? NULL : &emu_kernels;
}

static int emu_optim_update(const struct rn_optim_update *u, float *p, const float *g, float *m,
                            float *v, size_t n, struct rn_error *err)
{
    return rn_backend_of(RN_DEVICE_CPU)->optim->update(u, p, g, m, v, n, err);
}

static int emu_sum_squares(const float *x, size_t n, double *out, struct rn_error *err)
{
    return rn_backend_of(RN_DEVICE_CPU)->optim->sum_squares(x, n, out, err);
}

static int emu_gather(const uint8_t *images, const int32_t *idx, int n, size_t sample,
                      float *out, struct rn_error *err)
{
    gathers++;
    return rn_backend_of(RN_DEVICE_CPU)->data->gather_images(images, idx, n, sample, out, err);
}

static long ce_calls;

static int emu_cross_entropy(const float *logits, const uint8_t *targets, int n, int k,
                             float weight, float *dlogits, double *loss_sum, int32_t *correct,
                             int32_t *confusion, struct rn_error *err)
{
    ce_calls++;
    return rn_backend_of(RN_DEVICE_CPU)
        ->loss->cross_entropy(logits, targets, n, k, weight, dlogits, loss_sum, correct, confusion,
                              err);
}

static long colourings;

static int emu_colourise(const struct rn_data_config *cfg, int stream, const uint8_t *grey,
                         const uint8_t *labels, const int32_t *src, int n, int h, int w,
                         uint8_t *out, uint8_t *colours, struct rn_error *err)
{
    colourings++;
    return rn_backend_of(RN_DEVICE_CPU)
        ->data->colourise(cfg, stream, grey, labels, src, n, h, w, out, colours, err);
}

static long augments;

static int emu_augment(const struct rn_augment *a, const struct rn_augment_draw *draws, float *x,
                       int n, int c, int h, int w, struct rn_error *err)
{
    augments++;
    return rn_backend_of(RN_DEVICE_CPU)->augment->apply(a, draws, x, n, c, h, w, err);
}

static int emu_saliency_logits(const float *z, const uint8_t *targets, int n, int k,
                               float ce_weight, float *probs, float *dz, double *ce,
                               struct rn_error *err)
{
    return rn_backend_of(RN_DEVICE_CPU)
        ->saliency->logits(z, targets, n, k, ce_weight, probs, dz, ce, err);
}

static int emu_saliency_direction(const struct rn_saliency *cfg, const float *x, float *dx, int n,
                                  int C, int HW, double rescale, double vscale, float *tx,
                                  double *r, double *r_sum, struct rn_error *err)
{
    return rn_backend_of(RN_DEVICE_CPU)
        ->saliency->direction(cfg, x, dx, n, C, HW, rescale, vscale, tx, r, r_sum, err);
}

static int emu_saliency_tangent_logits(const float *probs, const float *tz, int n, int k,
                                       double c, float *tdz, struct rn_error *err)
{
    return rn_backend_of(RN_DEVICE_CPU)->saliency->tangent_logits(probs, tz, n, k, c, tdz, err);
}

static const struct rn_optim_kernels emu_optim = {
    .update = emu_optim_update,
    .sum_squares = emu_sum_squares,
};

static const struct rn_loss_kernels emu_loss = {.cross_entropy = emu_cross_entropy};

static const struct rn_data_kernels emu_data = {
    .gather_images = emu_gather,
    .colourise = emu_colourise,
};

static const struct rn_augment_kernels emu_augment_table = {.apply = emu_augment};

static const struct rn_saliency_kernels emu_saliency = {
    .logits = emu_saliency_logits,
    .direction = emu_saliency_direction,
    .tangent_logits = emu_saliency_tangent_logits,
};

static const struct rn_backend emu = {
    .name = "emu",
    .device = RN_DEVICE_TEST,
    .alloc = emu_alloc,
    .release = emu_release,
    .upload = emu_upload,
    .download = emu_download,
    .copy = emu_copy,
    .zero = emu_zero,
    .sync = emu_sync,
    .layer = emu_layer,
    .optim = &emu_optim,
    .loss = &emu_loss,
    .data = &emu_data,
    .augment = &emu_augment_table,
    .saliency = &emu_saliency,
};

static char dir[256];

static void setup(void)
{
    rn_backend_set_test(&emu);
    misplaced = 0;
    uploads = downloads = gathers = ce_calls = augments = colourings = 0;
    upload_bytes = 0;
    no_kernels_for = NULL;
    alloc_fails = 0;
    snprintf(dir, sizeof dir, "/tmp/rn_device_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
    rn_backend_set_test(NULL);
}

TestSuite(device, .init = setup, .fini = teardown);

/* ---- helpers ------------------------------------------------------------ */

static struct rn_spec *load_text(const char *text)
{
    char path[300];
    snprintf(path, sizeof path, "%s/spec.yaml", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    struct rn_spec *s = calloc(1, sizeof *s);
    cr_assert_not_null(s);
    char errs[4096] = "";
    FILE *ef = fmemopen(errs, sizeof errs, "w");
    struct rn_error err;
    int rc = rn_spec_load(s, path, NULL, ef, NULL, &err);
    fclose(ef);
    cr_assert_eq(rc, 0, "%s %s", err.msg, errs);
    return s;
}

static const char tiny_model[] =
    "model:\n"
    "  name: tiny_heads\n"
    "  layers:\n"
    "    - {type: conv2d, name: conv1, filters: 6, kernel: 3, padding: 1}\n"
    "    - {type: relu}\n"
    "    - {type: maxpool2d, kernel: 2}\n"
    "    - {type: conv2d, name: conv2, filters: 8, kernel: 3, padding: 1, stride: 2}\n"
    "    - {type: batchnorm, name: bn2}\n"
    "    - {type: relu}\n"
    "    - {type: avgpool2d, kernel: 2}\n"
    "    - {type: global_avg_pool, name: features}\n"
    "    - {type: dropout, p: 0.25}\n"
    "    - {type: linear, name: fc, units: 10}\n"
    "    - {type: grl, name: grl, from: features}\n"
    "    - {type: linear, name: colour_fc1, units: 12}\n"
    "    - {type: batchnorm, name: colour_bn1}\n"
    "    - {type: relu}\n"
    "    - {type: linear, name: colour_out, units: 10}\n";

static const char heads_train[] =
    "train:\n"
    "  epochs: 2\n"
    "  batch: 32\n"
    "  log_every: 4\n"
    "  augment:\n"
    "    - {type: channel_permute}\n"
    "  groups:\n"
    "    backbone: [conv1, conv2, bn2]\n"
    "    digit_head: [fc]\n"
    "    colour_head: [colour_*]\n"
    "  optimizers:\n"
    "    - {name: main, type: adam, lr: 1e-3, groups: [backbone, digit_head], clip_norm: 1.0}\n"
    "    - {name: adversary, type: sgd, lr: 1e-2, momentum: 0.9, groups: [colour_head], "
    "clip_norm: 0.5}\n"
    "  schedules:\n"
    "    - {name: alpha, type: linear, start: 0, end: 0.5}\n"
    "  bind:\n"
    "    - {node: grl, key: alpha, schedule: alpha}\n"
    "  losses:\n"
    "    - {name: digit, type: cross_entropy, on: fc, target: digit}\n"
    "    - {name: colour, type: cross_entropy, on: colour_out, target: colour}\n"
    "  program:\n"
    "    - {repeat: 2, optimizer: adversary, losses: [colour], set: {grl.alpha: 0}}\n"
    "    - {optimizer: main, losses: [digit, colour]}\n"
    "  eval: [val, test]\n";

static const char *const metric_names[8] = {
    "train/loss", "train/accuracy", "loss/digit", "loss/colour",
    "train/colour_loss", "train/colour_accuracy", "train/epoch_loss", "loss/sal",
};

struct outcome {
    struct rn_split_result last[RN_MAX_EVAL];
    int n_last;
    float *params; /* every parameter and buffer, in graph order */
    size_t n_params;
    int device_after;
    size_t train_upload_bytes; /* copied to the device by rn_run_train */
    long train_uploads;        /* copies to the device during rn_run_train */
    double *metric[8];         /* the per-step and per-epoch training metrics below */
    int metric_n[8];
    size_t image_bytes;        /* bytes of the images one epoch reads */
    char file[512];            /* the run's HDF5 file */
};

/* Opens, trains and evaluates spec on device d; keeps what to compare. */
static struct outcome train_on(const struct rn_spec *spec, int d, const char *sub)
{
    struct outcome o;
    memset(&o, 0, sizeof o);
    char out[400], log[8192];
    snprintf(out, sizeof out, "%s/%s", dir, sub);
    FILE *lf = fmemopen(log, sizeof log, "w");
    struct rn_run_options opt = {.out_dir = out, .quiet = 1, .log = lf, .device = d};
    struct rn_run *run = calloc(1, sizeof *run);
    struct rn_error err;
    cr_assert_eq(rn_run_open(run, spec, &opt, &err), 0, "%s", err.msg);
    cr_assert_eq(run->graph.device, d);
    size_t before = upload_bytes;
    long uploads_before = uploads;
    cr_assert_eq(rn_run_train(run, &err), 0, "%s", err.msg);
    o.train_upload_bytes = upload_bytes - before;
    o.train_uploads = uploads - uploads_before;
    const struct rn_split *tr = rn_data_split(&run->data, "train");
    o.image_bytes = (size_t)tr->n * tr->c * tr->h * tr->w;
    o.device_after = run->graph.device;
    for (int m = 0; m < 8; m++) {
        double *xs = NULL;
        if (rn_results_read_metric(run->results, metric_names[m], &xs, &o.metric[m],
                                   &o.metric_n[m], &err) != 0)
            o.metric_n[m] = -1;
        free(xs);
    }
    memcpy(o.last, run->last, sizeof o.last);
    o.n_last = run->n_last;
    /* parameters, downloaded by moving the graph home */
    cr_assert_eq(rn_graph_to_device(&run->graph, RN_DEVICE_CPU, &err), 0, "%s", err.msg);
    for (int pass = 0; pass < 2; pass++) {
        size_t k = 0;
        for (int i = 0; i < run->graph.n_nodes; i++) {
            const struct rn_layer *l = &run->graph.nodes[i].layer;
            for (int j = 0; j < l->n_params; j++) {
                const struct rn_tensor *t = &l->params[j].value;
                cr_assert_eq(t->device, RN_DEVICE_CPU);
                if (pass)
                    memcpy(o.params + k, t->data, rn_tensor_numel(t) * sizeof(float));
                k += rn_tensor_numel(t);
            }
        }
        if (!pass) {
            o.params = calloc(k ? k : 1, sizeof(float));
            o.n_params = k;
        }
    }
    snprintf(o.file, sizeof o.file, "%s/run.h5", run->dir);
    rn_run_close(run, "completed");
    free(run);
    fclose(lf);
    return o;
}

/* The same datasets, of the same types and shapes, in two run files. */
static void same_layout(const char *a_path, const char *b_path)
{
    struct rn_results *a, *b;
    struct rn_error err;
    cr_assert_eq(rn_results_open(&a, a_path, &err), 0, "%s", err.msg);
    cr_assert_eq(rn_results_open(&b, b_path, &err), 0, "%s", err.msg);
    char **na = NULL, **nb = NULL;
    int ca = 0, cb = 0;
    cr_assert_eq(rn_results_list(a, "/", &na, &ca, &err), 0, "%s", err.msg);
    cr_assert_eq(rn_results_list(b, "/", &nb, &cb, &err), 0, "%s", err.msg);
    cr_expect_eq(ca, cb, "%d datasets on the CPU, %d on the device", ca, cb);
    for (int i = 0; i < ca && i < cb; i++) {
        cr_expect_str_eq(na[i], nb[i]);
        static const enum rn_dtype types[] = {RN_DTYPE_F32, RN_DTYPE_F64, RN_DTYPE_I32,
                                              RN_DTYPE_U8};
        char path[600];
        snprintf(path, sizeof path, "/%s", na[i]);
        int shape_a[4] = {0}, shape_b[4] = {0}, nda = -1, ndb = -2, found = 0;
        for (int t = 0; t < 4 && !found; t++) {
            void *x = NULL;
            struct rn_error e;
            if (rn_results_read(a, path, types[t], &x, &nda, shape_a, &e) != 0)
                continue;
            found = 1;
            free(x);
            x = NULL;
            cr_expect_eq(rn_results_read(b, path, types[t], &x, &ndb, shape_b, &e), 0,
                         "%s: not of the same type on the device", path);
            free(x);
        }
        if (!found)
            continue; /* a metric table: read by rn_results_read_metric, compared elsewhere */
        cr_expect_eq(nda, ndb, "%s: rank", path);
        cr_expect_eq(memcmp(shape_a, shape_b, sizeof shape_a), 0, "%s: shape", path);
    }
    rn_results_free_list(na, ca);
    rn_results_free_list(nb, cb);
    rn_results_close(a);
    rn_results_close(b);
}

static void outcome_free(struct outcome *o)
{
    free(o->params);
    for (int m = 0; m < 8; m++)
        free(o->metric[m]);
}

static void compare(const struct outcome *a, const struct outcome *b)
{
    cr_assert_eq(a->n_last, b->n_last);
    for (int i = 0; i < a->n_last; i++) {
        cr_assert_str_eq(a->last[i].split, b->last[i].split);
        cr_expect_eq(a->last[i].loss, b->last[i].loss, "%s loss %.9g vs %.9g", a->last[i].split,
                     a->last[i].loss, b->last[i].loss);
        cr_expect_eq(a->last[i].accuracy, b->last[i].accuracy, "%s accuracy", a->last[i].split);
        cr_expect_eq(memcmp(a->last[i].confusion, b->last[i].confusion, sizeof a->last[i].confusion),
                     0, "%s confusion", a->last[i].split);
        for (int h = 0; h < a->last[i].n_heads; h++)
            cr_expect_eq(a->last[i].head_accuracy[h], b->last[i].head_accuracy[h]);
    }
    /* the device keeps its losses until the log reads them (sums, then
     * means): equal to rounding */
    for (int m = 0; m < 8; m++) {
        cr_expect_eq(a->metric_n[m], b->metric_n[m], "%s: %d vs %d rows", metric_names[m],
                     a->metric_n[m], b->metric_n[m]);
        for (int i = 0; i < a->metric_n[m] && i < b->metric_n[m]; i++) {
            double x = a->metric[m][i], y = b->metric[m][i];
            cr_expect(fabs(x - y) <= 1e-12 * fabs(x) + 1e-15, "%s row %d: %.17g vs %.17g",
                      metric_names[m], i, x, y);
        }
    }
    cr_assert_eq(a->n_params, b->n_params);
    size_t differ = 0;
    for (size_t k = 0; k < a->n_params; k++)
        differ += memcmp(&a->params[k], &b->params[k], sizeof(float)) != 0;
    cr_expect_eq(differ, 0, "%zu of %zu parameters differ", differ, a->n_params);
}

static char *spec_text_model(const char *model, const char *train)
{
    char *text = malloc(8192);
    cr_assert_not_null(text);
    snprintf(text, 8192,
             "name: device_test\nseed: 5\n"
             "data: {dir: %s/mnist, colouring: background, bias: 0.95, val_fraction: 0.2,"
             " train_limit: 256}\n%s%s",
             RN_FIXTURES, model, train);
    return text;
}

static char *spec_text(const char *train)
{
    return spec_text_model(tiny_model, train);
}

/* ---- tests -------------------------------------------------------------- */

Test(device, two_heads_program_trains_identically_on_the_stand_in_device)
{
    char *text = spec_text(heads_train);
    struct rn_spec *spec = load_text(text);
    struct outcome cpu = train_on(spec, RN_DEVICE_CPU, "cpu");
    long up0 = uploads, down0 = downloads;
    struct outcome dev = train_on(spec, RN_DEVICE_TEST, "dev");
    cr_assert_eq(cpu.device_after, RN_DEVICE_CPU);
    cr_assert_eq(dev.device_after, RN_DEVICE_TEST);
    cr_assert_eq(misplaced, 0, "%d host tensors reached device kernels", misplaced);
    cr_assert_gt(uploads - up0, 0);
    /* augmented on the device: 14 batches, and no images over the bus */
    cr_assert_eq(augments, 14, "%ld batches augmented on the device", augments);
    cr_assert_lt(dev.train_upload_bytes, dev.image_bytes / 4, "%zu bytes uploaded (images %zu)",
                 dev.train_upload_bytes, dev.image_bytes);
    /* no copy per batch: each epoch's order, targets and draws go over once
     * (3 copies x 2 epochs), evaluation batches need none */
    cr_assert_eq(dev.train_uploads, 6, "%ld copies to the device for 14 batches of 2 epochs",
                 dev.train_uploads);
    cr_assert_gt(downloads - down0, 0);
    cr_assert_eq(up0, 0, "the CPU run copied to the device");
    compare(&cpu, &dev);
    same_layout(cpu.file, dev.file);
    cr_assert_gt(cpu.metric_n[3], 0, "no loss/colour metric to compare");
    /* 14 batches x 4 head losses on the device, besides the evaluations */
    cr_assert_gt(ce_calls, 50, "the training losses were not computed on the device (%ld)",
                 ce_calls);
    outcome_free(&cpu);
    outcome_free(&dev);
    rn_spec_free(spec);
    free(spec);
    free(text);
}

Test(device, checkpoint_is_written_from_the_device)
{
    char *text = spec_text("train: {epochs: 1, batch: 64, eval: [val]}\n");
    struct rn_spec *spec = load_text(text);
    struct outcome dev = train_on(spec, RN_DEVICE_TEST, "dev");
    cr_assert_eq(misplaced, 0);
    /* without augmentation the batches are gathered on the device: what
     * crosses the bus during training is indices, logits' gradients and
     * the evaluation's (val) batches' indices, not images */
    cr_assert_gt(gathers, 0);
    cr_assert_gt(ce_calls, 0, "the evaluation did not sum on the device");
    cr_assert_lt(dev.train_upload_bytes, dev.image_bytes / 20, "%zu bytes uploaded (images %zu)",
                 dev.train_upload_bytes, dev.image_bytes);
    /* a new run on the CPU loads the device run's checkpoint: same parameters */
    char with_load[9000];
    char *plain = spec_text("");
    snprintf(with_load, sizeof with_load, "%sload: {run: %s/dev}\n", plain, dir);
    free(plain);
    struct rn_spec *spec2 = load_text(with_load);
    struct rn_run run;
    struct rn_error err;
    char out[400];
    snprintf(out, sizeof out, "%s/loaded", dir);
    struct rn_run_options opt = {.out_dir = out, .quiet = 1};
    cr_assert_eq(rn_run_open(&run, spec2, &opt, &err), 0, "%s", err.msg);
    size_t k = 0, differ = 0;
    for (int i = 0; i < run.graph.n_nodes; i++) {
        const struct rn_layer *l = &run.graph.nodes[i].layer;
        for (int j = 0; j < l->n_params; j++)
            for (size_t q = 0; q < rn_tensor_numel(&l->params[j].value); q++, k++)
                differ += l->params[j].value.data[q] != dev.params[k];
    }
    cr_assert_eq(k, dev.n_params);
    cr_assert_eq(differ, 0, "%zu parameters differ after the round trip", differ);
    rn_run_close(&run, "completed");
    outcome_free(&dev);
    rn_spec_free(spec);
    free(spec);
    rn_spec_free(spec2);
    free(spec2);
    free(text);
}

Test(device, layer_without_kernels_is_named_and_graph_unchanged)
{
    char *text = spec_text("train: {epochs: 1, batch: 32}\n");
    struct rn_spec *spec = load_text(text);
    struct rn_graph g;
    struct rn_error err;
    struct rn_shape in = {3, 28, 28};
    cr_assert_eq(rn_graph_build(&g, &spec->model, in, 8, &err), 0, "%s", err.msg);
    no_kernels_for = "batchnorm";
    cr_assert_eq(rn_graph_to_device(&g, RN_DEVICE_TEST, &err), -1);
    cr_assert_str_eq(err.msg, "layer 'bn2' (batchnorm) has no emu kernels");
    cr_assert_eq(g.device, RN_DEVICE_CPU);
    cr_assert_eq(g.nodes[0].layer.params[0].value.device, RN_DEVICE_CPU);
    no_kernels_for = NULL;
    /* and a backend that does not exist */
    rn_backend_set_test(NULL);
    cr_assert_eq(rn_graph_to_device(&g, RN_DEVICE_TEST, &err), -1);
    cr_assert_str_eq(err.msg, "this runner was built without a backend for device 2");
    rn_backend_set_test(&emu);
    rn_graph_free(&g);
    rn_spec_free(spec);
    free(spec);
    free(text);
}

/* When the gradient buffers must grow on the device and cannot, the
 * executor passes the device's own message on (it used to drop it, and its
 * callers guessed "out of memory"). */
Test(device, growing_gradients_reports_the_device_error)
{
    char *text = spec_text("train: {epochs: 1, batch: 32}\n");
    struct rn_spec *spec = load_text(text);
    struct rn_graph g;
    struct rn_error err;
    struct rn_shape in = {3, 28, 28};
    cr_assert_eq(rn_graph_build(&g, &spec->model, in, 4, &err), 0, "%s", err.msg);
    cr_assert_eq(rn_graph_reserve_grad(&g, 2, &err), 0, "%s", err.msg);
    cr_assert_eq(rn_graph_to_device(&g, RN_DEVICE_TEST, &err), 0, "%s", err.msg);
    alloc_fails = 1;
    cr_assert_eq(rn_graph_zero_dy(&g, 4, &err), -1);
    cr_assert_str_eq(err.msg, "gradients of 4 samples: a (4, 6, 28, 28) tensor on emu: emu: out "
                              "of memory");
    unsigned char all[64];
    memset(all, 1, sizeof all);
    cr_assert_leq(g.n_nodes, (int)sizeof all);
    cr_assert_eq(rn_graph_zero_dy_nodes(&g, 3, all, &err), -1);
    cr_assert_str_eq(err.msg, "gradients of 3 samples: a (3, 6, 28, 28) tensor on emu: emu: out "
                              "of memory");
    alloc_fails = 0;
    cr_assert_eq(rn_graph_zero_dy(&g, 4, &err), 0, "%s", err.msg);
    cr_assert_eq(g.grad_n, 4);
    rn_graph_free(&g);
    rn_spec_free(spec);
    free(spec);
    free(text);
}

Test(device, round_trip_keeps_parameters_and_outputs)
{
    char *text = spec_text("train: {epochs: 1, batch: 32}\n");
    struct rn_spec *spec = load_text(text);
    struct rn_graph g;
    struct rn_error err;
    struct rn_shape in = {3, 28, 28};
    cr_assert_eq(rn_graph_build(&g, &spec->model, in, 4, &err), 0, "%s", err.msg);
    rn_graph_init_params(&g, 11);
    const struct rn_tensor *w = &g.nodes[0].layer.params[0].value;
    size_t n = rn_tensor_numel(w);
    float *before = malloc(n * sizeof(float));
    memcpy(before, w->data, n * sizeof(float));
    for (int i = 0; i < 4 * 3 * 28 * 28; i++)
        g.x.data[i] = (float)((i * 37) % 101) / 101.0f;
    struct rn_ctx ctx = {.train = 0, .seed = 1};
    cr_assert_eq(rn_graph_forward(&g, 4, -1, &ctx, &err), 0, "%s", err.msg);
    int last = g.n_nodes - 1;
    float cpu_out[40];
    memcpy(cpu_out, g.nodes[last].y.data, sizeof cpu_out);

    cr_assert_eq(rn_graph_to_device(&g, RN_DEVICE_TEST, &err), 0, "%s", err.msg);
    cr_assert_eq(g.x.device, RN_DEVICE_TEST);
    cr_assert_not_null(g.nodes[0].layer.dpriv, "prepare was not called");
    struct rn_tensor *xh = rn_graph_input_host(&g, 4, &err);
    cr_assert_not_null(xh);
    cr_assert_eq(xh->device, RN_DEVICE_CPU);
    for (int i = 0; i < 4 * 3 * 28 * 28; i++)
        xh->data[i] = (float)((i * 37) % 101) / 101.0f;
    cr_assert_eq(rn_graph_input_commit(&g, &err), 0, "%s", err.msg);
    cr_assert_eq(rn_graph_forward(&g, 4, -1, &ctx, &err), 0, "%s", err.msg);
    const struct rn_tensor *out = rn_graph_output_host(&g, last, &err);
    cr_assert_not_null(out);
    cr_assert_eq(out->device, RN_DEVICE_CPU);
    cr_assert_eq(out->n, 4);
    cr_assert_eq(memcmp(out->data, cpu_out, sizeof cpu_out), 0);
    cr_assert_eq(misplaced, 0);

    cr_assert_eq(rn_graph_to_device(&g, RN_DEVICE_CPU, &err), 0, "%s", err.msg);
    cr_assert_null(g.nodes[0].layer.dpriv, "release was not called");
    w = &g.nodes[0].layer.params[0].value;
    cr_assert_eq(w->device, RN_DEVICE_CPU);
    cr_assert_eq(memcmp(w->data, before, n * sizeof(float)), 0);
    free(before);
    rn_graph_free(&g);
    rn_spec_free(spec);
    free(spec);
    free(text);
}

/* Method 2 on a device: the saliency loss runs its passes there and its
 * per-sample arithmetic through the backend table (the stand-in's wraps the
 * CPU's); same bits as the CPU. */
Test(device, saliency_loss_trains_identically_on_the_stand_in_device)
{
    /* no batchnorm (no tangent in training mode), one head */
    static const char model[] = "model:\n"
                                "  name: tiny\n"
                                "  layers:\n"
                                "    - {type: conv2d, name: conv1, filters: 4, kernel: 3}\n"
                                "    - {type: relu}\n"
                                "    - {type: maxpool2d, kernel: 2}\n"
                                "    - {type: conv2d, name: conv2, filters: 6, kernel: 3}\n"
                                "    - {type: relu}\n"
                                "    - {type: global_avg_pool}\n"
                                "    - {type: linear, name: fc, units: 10}\n";
    char *text = spec_text_model(
        model, "train:\n  epochs: 1\n  batch: 32\n  log_every: 3\n  losses:\n"
               "    - {name: digit, type: cross_entropy, on: fc, target: digit}\n"
               "    - {name: sal, type: saliency, on: fc, target: digit, weight: 50}\n"
               "  eval: [val, test]\n");
    struct rn_spec *spec = load_text(text);
    struct outcome cpu = train_on(spec, RN_DEVICE_CPU, "cpu");
    struct outcome dev = train_on(spec, RN_DEVICE_TEST, "dev");
    cr_assert_eq(misplaced, 0, "%d host tensors reached device kernels", misplaced);
    compare(&cpu, &dev);
    cr_assert_gt(cpu.metric_n[2], 0, "no loss/digit metric to compare");
    cr_assert_gt(cpu.metric_n[7], 0, "no loss/sal metric to compare");
    outcome_free(&cpu);
    outcome_free(&dev);
    rn_spec_free(spec);
    free(spec);
    free(text);
}

Test(device, cuda_probe_says_why_not)
{
    char desc[160] = "x";
    struct rn_error err = {{0}};
    if (rn_cuda_probe(desc, sizeof desc, &err) == 0)
        cr_skip_test("a CUDA device is present (%s): test_cuda covers it", desc);
    cr_assert_str_eq(desc, "");
    cr_assert_gt(strlen(err.msg), 10, "%s", err.msg);
}

/* Adam's bias corrections come from the double hyperparameters, as torch
 * computes them: with float betas the first step's size is off by ~2e-7
 * relative, enough to change a trained model's probabilities in the third
 * digit after an epoch. */
Test(device, adam_bias_corrections_in_double)
{
    for (long step = 1; step <= 3; step++) {
        struct rn_optim_update u =
            rn_optim_update_args(0, 1e-3, 0.9, 0.999, 1e-8, 0, 0, step, 1.0f);
        cr_assert_eq(u.step_size, (float)(1e-3 / (1.0 - pow(0.9, (double)step))));
        cr_assert_eq(u.bc2_sqrt, (float)sqrt(1.0 - pow(0.999, (double)step)));
        cr_assert_eq(u.lr, 1e-3f);
    }
    cr_assert_neq((float)(1e-3 / (1.0 - pow(0.9f, 1.0))), (float)(1e-3 / (1.0 - pow(0.9, 1.0))),
                  "the test would not notice float betas");
}

/* ---- analyses on the device ------------------------------------------- */

#define INTERP_REF RN_FIXTURES "/interp_ref.h5"

static const char device_analyses[] =
    "analyses:\n"
    "  - {type: samples, name: samples, split: val, n: 12}\n"
    "  - {type: probe, name: red1, digit: 1, colour: red, split: test}\n"
    "  - {type: filters, name: f1, node: conv1}\n"
    "  - {type: activations, name: act, node: conv2, max_maps: 4, cases: \"1 red; 7 yellow\"}\n"
    "  - {type: gradcam, name: cam, node: conv3, cases: \"0 red; 1 green; 2 blue\"}\n"
    "  - {type: gradcam, name: campp, node: conv3, method: gradcam++, class: true, split: test, "
    "n: 40}\n"
    "  - {type: saliency, name: sal, split: test, n: 5, models: \"self self; ref " INTERP_REF
    "\"}\n"
    "  - {type: attention_mass, name: mass, node: conv3, n: 80, models: \"self self; ref "
    INTERP_REF "\"}\n";

/* Runs device_analyses on the fixture model on device d; returns the run
 * file's path (malloc'd) after closing the run. */
static char *analyse_on(int d, const char *sub)
{
    char text[4096];
    snprintf(text, sizeof text,
             "name: device_analyses\nseed: 5\n"
             "data: {dir: %s/mnist, colouring: background, bias: 0.95, val_fraction: 0.2}\n"
             "model: {include: %s/interp_model.yaml}\n"
             "load: {run: %s}\n%s",
             RN_FIXTURES, RN_FIXTURES, INTERP_REF, device_analyses);
    struct rn_spec *spec = load_text(text);
    char out[400], log[16384];
    snprintf(out, sizeof out, "%s/%s", dir, sub);
    FILE *lf = fmemopen(log, sizeof log, "w");
    struct rn_run_options opt = {.out_dir = out, .quiet = 0, .log = lf, .device = d};
    struct rn_run *run = calloc(1, sizeof *run);
    struct rn_error err;
    cr_assert_eq(rn_run_open(run, spec, &opt, &err), 0, "%s", err.msg);
    cr_assert_eq(rn_run_analyses(run, &err), 0, "%s", err.msg);
    cr_assert_eq(run->graph.device, d, "the analyses moved the model off its device");
    char *path = malloc(RN_PATH_MAX + 16);
    snprintf(path, RN_PATH_MAX + 16, "%s/run.h5", run->dir);
    rn_run_close(run, "completed");
    free(run);
    fclose(lf);
    rn_spec_free(spec);
    free(spec);
    return path;
}

/* Every analysis runs where the model is (the stand-in device: its kernels
 * refuse host tensors) and writes the same bits as on the CPU. */
Test(device, analyses_run_on_the_device_and_match_the_cpu)
{
    char *cpu = analyse_on(RN_DEVICE_CPU, "cpu");
    long downloads_before = downloads;
    char *dev = analyse_on(RN_DEVICE_TEST, "dev");
    cr_assert_eq(misplaced, 0, "%d host tensors reached device kernels", misplaced);
    cr_assert_gt(downloads, downloads_before, "nothing was read back from the device");
    struct rn_results *a, *b;
    struct rn_error err;
    cr_assert_eq(rn_results_open(&a, cpu, &err), 0, "%s", err.msg);
    cr_assert_eq(rn_results_open(&b, dev, &err), 0, "%s", err.msg);
    char **names = NULL;
    int n = 0;
    cr_assert_eq(rn_results_list(a, "/analyses", &names, &n, &err), 0, "%s", err.msg);
    static const char *const want[] = {"samples/val/preds", "red1/probs", "f1/weights",
                                       "act/maps", "cam/maps", "cam/raw", "campp/maps",
                                       "sal/maps", "mass/summary", "mass/gradcam_bg"};
    for (size_t w = 0; w < sizeof want / sizeof *want; w++) {
        int found = 0;
        for (int i = 0; i < n; i++)
            found |= strcmp(names[i], want[w]) == 0;
        cr_expect(found, "no /analyses/%s", want[w]);
    }
    static const enum rn_dtype types[] = {RN_DTYPE_F32, RN_DTYPE_F64, RN_DTYPE_I32, RN_DTYPE_U8};
    static const size_t sizes[] = {4, 8, 4, 1};
    int compared = 0;
    for (int i = 0; i < n; i++) {
        char path[512];
        snprintf(path, sizeof path, "/analyses/%s", names[i]);
        for (int t = 0; t < 4; t++) {
            void *x = NULL, *y = NULL;
            int nd, dx[4], dy[4];
            struct rn_error e1, e2;
            if (rn_results_read(a, path, types[t], &x, &nd, dx, &e1) != 0)
                continue;
            cr_assert_eq(rn_results_read(b, path, types[t], &y, &nd, dy, &e2), 0, "%s: %s", path,
                         e2.msg);
            size_t count = 1;
            for (int k = 0; k < nd; k++) {
                cr_assert_eq(dx[k], dy[k], "%s: shape", path);
                count *= (size_t)dx[k];
            }
            cr_expect_eq(memcmp(x, y, count * sizes[t]), 0, "%s differs on the device", path);
            compared++;
            free(x);
            free(y);
            break;
        }
    }
    cr_assert_eq(compared, n, "%d of %d datasets compared", compared, n);
    rn_results_free_list(names, n);
    rn_results_close(a);
    rn_results_close(b);
    free(cpu);
    free(dev);
}

/* ---- the dataset coloured on the device --------------------------------- */

/* rn_data_load_on colours on the device (the grey sources go up, the
 * coloured splits come down) and gives rn_data_load's bytes; the device
 * copies hold the same bytes. */
static void check_data_on_device(const char *data_yaml)
{
    char text[2048];
    snprintf(text, sizeof text, "name: device_data\nseed: 3\ndata: {dir: %s/mnist, %s}\n",
             RN_FIXTURES, data_yaml);
    struct rn_spec *spec = load_text(text);
    struct rn_data host, dev;
    void *dev_images[RN_MAX_SPLITS];
    struct rn_error err;
    cr_assert_eq(rn_data_load(&spec->data, &host, &err), 0, "%s", err.msg);
    size_t before = upload_bytes;
    cr_assert_eq(rn_data_load_on(&spec->data, &dev, RN_DEVICE_TEST, dev_images, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(colourings, 3, "%ld colouring calls", colourings);
    size_t coloured = 0;
    for (int k = 0; k < host.n_splits; k++) {
        const struct rn_split *a = &host.splits[k], *b = &dev.splits[k];
        cr_assert_eq(a->n, b->n);
        size_t bytes = (size_t)a->n * a->c * a->h * a->w;
        coloured += bytes;
        cr_expect_eq(memcmp(a->images, b->images, bytes), 0, "%s images (%s)", a->name, data_yaml);
        cr_expect_eq(memcmp(a->labels, b->labels, (size_t)a->n), 0, "%s labels", a->name);
        cr_expect_eq(memcmp(a->colours, b->colours, (size_t)a->n), 0, "%s colours", a->name);
        cr_assert_not_null(dev_images[k], "no device copy of %s", a->name);
        cr_expect_eq(memcmp(dev_images[k], a->images, bytes), 0, "%s on the device", a->name);
        emu_release(dev_images[k]);
    }
    /* the grey sources and the index lists went up, not the coloured images */
    cr_expect_lt(upload_bytes - before, coloured / 2, "%zu bytes uploaded for %zu coloured",
                 upload_bytes - before, coloured);
    rn_data_free(&host);
    rn_data_free(&dev);
    rn_spec_free(spec);
    free(spec);
}

Test(device, dataset_is_coloured_on_the_device)
{
    check_data_on_device("colouring: background, bias: 0.9, val_fraction: 0.2");
}

Test(device, stroke_dataset_is_coloured_on_the_device)
{
    check_data_on_device("colouring: stroke, bias: 0.5, val_fraction: 0.1, test_rule: random, "
                         "texture: [0.2, 0.9]");
}
