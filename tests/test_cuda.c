/* tests/test_cuda.c - conformance of the CUDA backend against the CPU.
 *
 * Every layer type runs forward, backward (with and without dx) and both
 * tangent passes on the CPU and on the device from the same parameters and
 * inputs; the device results are downloaded and compared element by element
 * with a tolerance per type (cuDNN and cuBLAS sum in other orders than the
 * CPU loops; elementwise ops must match exactly). The backend table's own
 * kernels (optimizer updates, sum of squares) and the training loop's
 * kernels (cross-entropy, gathers) are compared with their CPU twins, and a
 * failing call must give one clear error line.
 *
 * Without a usable device (or in a build without the CUDA backend) every
 * test is skipped, visibly, with the probe's reason: never passed silently.
 * RN_TEST_CUDA_EMULATE=1 runs the harness itself against a stand-in device
 * whose kernels are the CPU's (see cuda_or_skip).
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "runner/backend.h"
#include "runner/layer.h"
#include "runner/loss.h"
#include "runner/optim.h"
#include "runner/rng.h"
#include "runner/spec.h"
#include "runner/train.h"
#ifdef RN_HAVE_CUDA
#include "kernels/cuda/backend_kernels.h"
#include "kernels/cuda/cuda_common.h"
#endif

#define MAX_PRINT 6

static void shutdown_cuda(void)
{
#ifdef RN_HAVE_CUDA
    rn_cuda_shutdown();
#endif
}

TestSuite(cuda, .fini = shutdown_cuda);

/* The device under test: RN_DEVICE_CUDA, or with RN_TEST_CUDA_EMULATE=1 in
 * the environment a stand-in on host memory whose "kernels" are the CPU
 * layer functions (RN_DEVICE_TEST). The stand-in checks this harness
 * without a GPU: every comparison must then hold exactly, and the tests of
 * CUDA-only kernels skip. */
static enum rn_device dev = RN_DEVICE_CUDA;
static const struct rn_backend *dev_be;
static struct rn_backend emu_backend;
static struct rn_layer_kernels emu_kernels[32];

static const struct rn_layer_kernels *emu_layer(const char *type)
{
    for (int i = 0; i < rn_n_layer_types && i < 32; i++) {
        const struct rn_layer_type *t = rn_layer_types[i];
        if (strcmp(t->name, type))
            continue;
        struct rn_layer_kernels *k = &emu_kernels[i];
        k->type = t->name;
        k->forward = t->forward;
        k->backward = t->backward;
        k->tangent_forward = t->tangent_forward;
        k->tangent_backward = t->tangent_backward;
        return t->forward ? k : NULL;
    }
    return NULL;
}

static int emulated(void)
{
    const char *e = getenv("RN_TEST_CUDA_EMULATE");
    return e && *e && strcmp(e, "0");
}

/* The CUDA backend (or the stand-in), or the test is skipped with the
 * probe's reason. */
static const struct rn_backend *cuda_or_skip(void)
{
    struct rn_error err = {{0}};
    char desc[256];
    if (emulated()) {
        emu_backend = *rn_backend_of(RN_DEVICE_CPU);
        emu_backend.name = "emulated";
        emu_backend.device = RN_DEVICE_TEST;
        emu_backend.layer = emu_layer;
        rn_backend_set_test(&emu_backend);
        dev = RN_DEVICE_TEST;
        return dev_be = &emu_backend;
    }
    if (rn_cuda_probe(desc, sizeof desc, &err)) {
        const char *pre = strncmp(err.msg, "no CUDA device", 14) ? "no CUDA device: " : "";
        /* Criterion lists skips only with --verbose; this line also lets
         * ctest's SKIP_REGULAR_EXPRESSION mark the binary skipped. */
        fprintf(stderr, "[SKIP] cuda::%s: %s%s\n",
                criterion_current_test ? criterion_current_test->name : "?", pre, err.msg);
        cr_skip_test("%s%s", pre, err.msg);
    }
    dev_be = rn_backend_cuda();
    cr_assert_not_null(dev_be, "rn_cuda_probe succeeded but rn_backend_cuda() is NULL");
    return dev_be;
}

/* For the tests of CUDA-only code: skipped on the stand-in. */
static const struct rn_backend *real_cuda_or_skip(void)
{
    const struct rn_backend *be = cuda_or_skip();
    if (dev == RN_DEVICE_TEST)
        cr_skip_test("emulated device: this test needs the CUDA kernels");
    return be;
}

/* ---- helpers -------------------------------------------------------------- */

static void fill_uniform(float *p, size_t n, float lo, float hi, struct rn_rng *r)
{
    for (size_t i = 0; i < n; i++)
        p[i] = lo + (hi - lo) * rn_rng_uniform(r);
}

static void fill_const(float *p, size_t n, float v)
{
    for (size_t i = 0; i < n; i++)
        p[i] = v;
}

static float *dup_floats(const float *p, size_t n)
{
    float *q = malloc((n ? n : 1) * sizeof *q);
    cr_assert_not_null(q);
    if (n)
        memcpy(q, p, n * sizeof *q);
    return q;
}

/* Compares got (device) with want (CPU): |got - want| <= atol + rtol |want|
 * (atol = rtol = 0: bit-exact up to the sign of zero). Prints the first
 * mismatches and returns their number. */
static size_t compare(const char *what, const float *got, const float *want, size_t n, double atol,
                      double rtol)
{
    size_t bad = 0;
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double a = got[i], b = want[i], d = fabs(a - b);
        int ok = (isnan(a) && isnan(b)) || d <= atol + rtol * fabs(b);
        if (d > worst || isnan(d))
            worst = d;
        if (!ok && bad++ < MAX_PRINT)
            fprintf(stderr, "  %s[%zu]: cuda %.9g, cpu %.9g (diff %.3g)\n", what, i, a, b, d);
    }
    if (bad)
        fprintf(stderr, "  %s: %zu of %zu elements differ (worst %.3g, tolerance %g + %g|cpu|)\n",
                what, bad, n, worst, atol, rtol);
    return bad;
}

/* A device tensor of h's shape holding h's numel() floats. */
static void to_device(struct rn_tensor *d, const struct rn_tensor *h)
{
    struct rn_error err = {{0}};
    cr_assert_eq(rn_tensor_init_on(d, dev, h->n, h->c, h->h, h->w, &err), 0, "%s", err.msg);
    cr_assert_eq(rn_tensor_copy(d, h, &err), 0, "%s", err.msg);
}

/* Downloads the first count floats of d into a new array. */
static float *download(const struct rn_tensor *d, size_t count)
{
    struct rn_error err = {{0}};
    float *h = malloc((count ? count : 1) * sizeof *h);
    cr_assert_not_null(h);
    cr_assert_eq(dev_be->download(h, d->data, count * sizeof *h, &err), 0, "%s", err.msg);
    return h;
}

static void upload(struct rn_tensor *d, const float *h, size_t count)
{
    struct rn_error err = {{0}};
    cr_assert_eq(dev_be->upload(d->data, h, count * sizeof *h, &err), 0, "%s", err.msg);
}

/* ---- layers --------------------------------------------------------------- */

struct lcase {
    const char *type, *kv;
    struct rn_shape in;
    int n, train, tangent;
    double atol, rtol; /* 0, 0: exact */
    int bn_stats;      /* random gamma/beta and non-trivial running statistics */
    int quantise;      /* inputs in {-1, -0.5, 0, 0.5, 1}: ties in every window, zeros */
};

/* What one pass produced, on the host. */
struct results {
    float *y, *ty;                                     /* (n, out) */
    float *dx[RN_MAX_INPUTS], *tdx[RN_MAX_INPUTS];     /* (n, in[i]) */
    float *grad[RN_MAX_PARAMS], *tgrad[RN_MAX_PARAMS]; /* trainable only */
    float *grad_nodx[RN_MAX_PARAMS];                   /* backward with dx = NULL */
    float *value[RN_MAX_PARAMS];                       /* after forward (running stats) */
};

static void results_free(struct results *r)
{
    free(r->y);
    free(r->ty);
    for (int i = 0; i < RN_MAX_INPUTS; i++) {
        free(r->dx[i]);
        free(r->tdx[i]);
    }
    for (int i = 0; i < RN_MAX_PARAMS; i++) {
        free(r->grad[i]);
        free(r->tgrad[i]);
        free(r->grad_nodx[i]);
        free(r->value[i]);
    }
    memset(r, 0, sizeof *r);
}

/* Inputs of a case: x, tx per input; dy, tdy on the output. Host tensors. */
struct inputs {
    struct rn_tensor x[RN_MAX_INPUTS], tx[RN_MAX_INPUTS], dy, tdy;
};

static void inputs_free(struct inputs *in)
{
    for (int i = 0; i < RN_MAX_INPUTS; i++) {
        rn_tensor_free(&in->x[i]);
        rn_tensor_free(&in->tx[i]);
    }
    rn_tensor_free(&in->dy);
    rn_tensor_free(&in->tdy);
}

static size_t out_numel(const struct rn_layer *l, int n)
{
    return (size_t)n * l->out.c * l->out.h * l->out.w;
}

static size_t in_numel(const struct rn_layer *l, int i, int n)
{
    return (size_t)n * l->in[i].c * l->in[i].h * l->in[i].w;
}

static void set_param_grads(struct rn_layer *l, int device, float v)
{
    for (int i = 0; i < l->n_params; i++) {
        struct rn_tensor *g = &l->params[i].grad;
        if (!g->data)
            continue;
        size_t m = rn_tensor_numel(g);
        float *h = malloc(m * sizeof *h);
        cr_assert_not_null(h);
        fill_const(h, m, v);
        if (device)
            upload(g, h, m);
        else
            memcpy(g->data, h, m * sizeof *h);
        free(h);
    }
}

static void save_grads(struct rn_layer *l, int device, float **out)
{
    for (int i = 0; i < l->n_params; i++) {
        struct rn_tensor *g = &l->params[i].grad;
        if (!g->data)
            continue;
        out[i] = device ? download(g, rn_tensor_numel(g)) : dup_floats(g->data, rn_tensor_numel(g));
    }
}

/* The CPU pass: forward, backward, backward without dx, tangents. */
static void run_cpu(struct rn_layer *l, const struct lcase *c, struct inputs *in,
                    const struct rn_ctx *ctx, struct results *r)
{
    struct rn_error err = {{0}};
    const struct rn_layer_type *t = l->type;
    struct rn_tensor y, ty, dx[RN_MAX_INPUTS] = {{0}}, tdx[RN_MAX_INPUTS] = {{0}};
    const struct rn_tensor *xs[RN_MAX_INPUTS] = {&in->x[0], &in->x[1]};
    const struct rn_tensor *txs[RN_MAX_INPUTS] = {&in->tx[0], &in->tx[1]};
    struct rn_tensor *dxs[RN_MAX_INPUTS] = {NULL, NULL}, *tdxs[RN_MAX_INPUTS] = {NULL, NULL};
    struct rn_tensor *none[RN_MAX_INPUTS] = {NULL, NULL};
    cr_assert_eq(rn_tensor_init(&y, l->max_n, l->out.c, l->out.h, l->out.w, &err), 0);
    cr_assert_eq(rn_tensor_init(&ty, l->max_n, l->out.c, l->out.h, l->out.w, &err), 0);
    for (int i = 0; i < l->n_in; i++) {
        cr_assert_eq(rn_tensor_init(&dx[i], c->n, l->in[i].c, l->in[i].h, l->in[i].w, &err), 0);
        cr_assert_eq(rn_tensor_init(&tdx[i], c->n, l->in[i].c, l->in[i].h, l->in[i].w, &err), 0);
        fill_const(dx[i].data, rn_tensor_numel(&dx[i]), GC_ACC_START);
        fill_const(tdx[i].data, rn_tensor_numel(&tdx[i]), GC_ACC_START);
        dxs[i] = &dx[i];
        tdxs[i] = &tdx[i];
    }
    cr_assert_eq(t->forward(l, xs, &y, ctx, &err), 0, "cpu %s forward: %s", t->name, err.msg);
    r->y = dup_floats(y.data, out_numel(l, c->n));
    for (int i = 0; i < l->n_params; i++)
        r->value[i] = dup_floats(l->params[i].value.data, rn_tensor_numel(&l->params[i].value));
    set_param_grads(l, 0, GC_ACC_START);
    cr_assert_eq(t->backward(l, xs, &y, &in->dy, dxs, ctx, &err), 0, "cpu %s backward: %s", t->name,
                 err.msg);
    for (int i = 0; i < l->n_in; i++)
        r->dx[i] = dup_floats(dx[i].data, rn_tensor_numel(&dx[i]));
    save_grads(l, 0, r->grad);
    set_param_grads(l, 0, GC_ACC_START);
    cr_assert_eq(t->backward(l, xs, &y, &in->dy, none, ctx, &err), 0, "cpu %s backward: %s",
                 t->name, err.msg);
    save_grads(l, 0, r->grad_nodx);
    if (c->tangent) {
        set_param_grads(l, 0, GC_ACC_START);
        cr_assert_eq(t->tangent_forward(l, xs, txs, &ty, ctx, &err), 0, "cpu %s: %s", t->name,
                     err.msg);
        cr_assert_eq(t->tangent_backward(l, xs, txs, &in->dy, &in->tdy, tdxs, ctx, &err), 0,
                     "cpu %s: %s", t->name, err.msg);
        r->ty = dup_floats(ty.data, out_numel(l, c->n));
        for (int i = 0; i < l->n_in; i++)
            r->tdx[i] = dup_floats(tdx[i].data, rn_tensor_numel(&tdx[i]));
        save_grads(l, 0, r->tgrad);
    }
    rn_tensor_free(&y);
    rn_tensor_free(&ty);
    for (int i = 0; i < RN_MAX_INPUTS; i++) {
        rn_tensor_free(&dx[i]);
        rn_tensor_free(&tdx[i]);
    }
}

/* Checks that the device output has y->n = n and nothing written past it. */
static int check_output(const char *what, struct rn_tensor *y, const struct rn_layer *l, int n)
{
    int bad = 0;
    if (y->n != n) {
        fprintf(stderr, "  %s: y->n = %d, expected %d\n", what, y->n, n);
        bad++;
    }
    size_t total = out_numel(l, l->max_n), used = out_numel(l, n);
    float *h = download(y, total);
    for (size_t i = used; i < total; i++)
        if (h[i] != GC_SENTINEL) {
            fprintf(stderr, "  %s wrote past the batch (element %zu = %g)\n", what, i, h[i]);
            bad++;
            break;
        }
    free(h);
    return bad;
}

/* The device pass on l, whose parameters are already device tensors. */
static int run_cuda(struct rn_layer *l, const struct rn_layer_kernels *k, const struct lcase *c,
                    struct inputs *in, const struct rn_ctx *ctx, struct results *r)
{
    struct rn_error err = {{0}};
    int bad = 0;
    struct rn_tensor x[RN_MAX_INPUTS] = {{0}}, tx[RN_MAX_INPUTS] = {{0}}, dx[RN_MAX_INPUTS] = {{0}},
                     tdx[RN_MAX_INPUTS] = {{0}}, dy = {0}, tdy = {0}, y = {0}, ty = {0};
    const struct rn_tensor *xs[RN_MAX_INPUTS] = {NULL, NULL}, *txs[RN_MAX_INPUTS] = {NULL, NULL};
    struct rn_tensor *dxs[RN_MAX_INPUTS] = {NULL, NULL}, *tdxs[RN_MAX_INPUTS] = {NULL, NULL};
    struct rn_tensor *none[RN_MAX_INPUTS] = {NULL, NULL};
    size_t ycap = out_numel(l, l->max_n);
    float *sentinel = malloc(ycap * sizeof *sentinel);
    cr_assert_not_null(sentinel);
    fill_const(sentinel, ycap, GC_SENTINEL);
    for (int i = 0; i < l->n_in; i++) {
        to_device(&x[i], &in->x[i]);
        to_device(&tx[i], &in->tx[i]);
        cr_assert_eq(rn_tensor_init_on(&dx[i], dev, c->n, l->in[i].c, l->in[i].h, l->in[i].w, &err),
                     0, "%s", err.msg);
        cr_assert_eq(
            rn_tensor_init_on(&tdx[i], dev, c->n, l->in[i].c, l->in[i].h, l->in[i].w, &err), 0,
            "%s", err.msg);
        float *acc = malloc(in_numel(l, i, c->n) * sizeof *acc);
        cr_assert_not_null(acc);
        fill_const(acc, in_numel(l, i, c->n), GC_ACC_START);
        upload(&dx[i], acc, in_numel(l, i, c->n));
        upload(&tdx[i], acc, in_numel(l, i, c->n));
        free(acc);
        xs[i] = &x[i];
        txs[i] = &tx[i];
        dxs[i] = &dx[i];
        tdxs[i] = &tdx[i];
    }
    to_device(&dy, &in->dy);
    to_device(&tdy, &in->tdy);
    cr_assert_eq(rn_tensor_init_on(&y, dev, l->max_n, l->out.c, l->out.h, l->out.w, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(rn_tensor_init_on(&ty, dev, l->max_n, l->out.c, l->out.h, l->out.w, &err), 0, "%s",
                 err.msg);
    upload(&y, sentinel, ycap);
    upload(&ty, sentinel, ycap);

    if (!k->forward || !k->backward) {
        fprintf(stderr, "  cuda %s: no forward/backward kernel\n", c->type);
        bad++;
        goto out;
    }
    if (k->forward(l, xs, &y, ctx, &err)) {
        fprintf(stderr, "  cuda %s forward: %s\n", c->type, err.msg);
        bad++;
        goto out;
    }
    bad += check_output("forward", &y, l, c->n);
    r->y = download(&y, out_numel(l, c->n));
    for (int i = 0; i < l->n_params; i++)
        r->value[i] = download(&l->params[i].value, rn_tensor_numel(&l->params[i].value));
    set_param_grads(l, 1, GC_ACC_START);
    if (k->backward(l, xs, &y, &dy, dxs, ctx, &err)) {
        fprintf(stderr, "  cuda %s backward: %s\n", c->type, err.msg);
        bad++;
        goto out;
    }
    for (int i = 0; i < l->n_in; i++)
        r->dx[i] = download(&dx[i], in_numel(l, i, c->n));
    save_grads(l, 1, r->grad);
    set_param_grads(l, 1, GC_ACC_START);
    if (k->backward(l, xs, &y, &dy, none, ctx, &err)) {
        fprintf(stderr, "  cuda %s backward (dx = NULL): %s\n", c->type, err.msg);
        bad++;
        goto out;
    }
    save_grads(l, 1, r->grad_nodx);
    if (c->tangent) {
        if (!k->tangent_forward || !k->tangent_backward) {
            fprintf(stderr, "  cuda %s: no tangent kernels\n", c->type);
            bad++;
            goto out;
        }
        set_param_grads(l, 1, GC_ACC_START);
        if (k->tangent_forward(l, xs, txs, &ty, ctx, &err) ||
            k->tangent_backward(l, xs, txs, &dy, &tdy, tdxs, ctx, &err)) {
            fprintf(stderr, "  cuda %s tangent: %s\n", c->type, err.msg);
            bad++;
            goto out;
        }
        bad += check_output("tangent_forward", &ty, l, c->n);
        r->ty = download(&ty, out_numel(l, c->n));
        for (int i = 0; i < l->n_in; i++)
            r->tdx[i] = download(&tdx[i], in_numel(l, i, c->n));
        save_grads(l, 1, r->tgrad);
    }
out:
    free(sentinel);
    for (int i = 0; i < RN_MAX_INPUTS; i++) {
        rn_tensor_free(&x[i]);
        rn_tensor_free(&tx[i]);
        rn_tensor_free(&dx[i]);
        rn_tensor_free(&tdx[i]);
    }
    rn_tensor_free(&dy);
    rn_tensor_free(&tdy);
    rn_tensor_free(&y);
    rn_tensor_free(&ty);
    return bad;
}

/* Dropout whose device mask is not the CPU's: the device's own mask (read
 * off y: kept elements are x * 1/(1-p), dropped ones 0) must be applied
 * consistently by every pass, and drop about a fraction p. Rewrites want to
 * what the device mask implies; returns the number of inconsistencies. */
static int dropout_own_mask(const struct rn_layer *l, const struct lcase *c, struct inputs *in,
                            const struct results *got, struct results *want)
{
    const double p = l->v.num[0];
    const float scale = (float)(1.0 / (1.0 - p));
    const size_t m = out_numel(l, c->n);
    size_t dropped = 0;
    int bad = 0;
    for (size_t i = 0; i < m; i++) {
        float keep = got->y[i] == 0.0f ? 0.0f : scale;
        if (got->y[i] != keep * in->x[0].data[i] && bad++ < MAX_PRINT)
            fprintf(stderr, "  dropout y[%zu] = %g is neither 0 nor x * %g = %g\n", i, got->y[i],
                    scale, scale * in->x[0].data[i]);
        dropped += keep == 0.0f;
        want->y[i] = keep * in->x[0].data[i];
        want->dx[0][i] = GC_ACC_START + keep * in->dy.data[i];
        if (want->ty)
            want->ty[i] = keep * in->tx[0].data[i];
        if (want->tdx[0])
            want->tdx[0][i] = GC_ACC_START + keep * in->tdy.data[i];
    }
    double frac = (double)dropped / (double)m, sd = sqrt(p * (1 - p) / (double)m);
    cr_log_warn("dropout p=%g: the device mask differs from the CPU's (RNG not reproduced); "
                "checked its consistency instead: dropped %.4f of %zu",
                p, frac, m);
    if (m >= 1000 && fabs(frac - p) > 6 * sd) {
        fprintf(stderr, "  dropout: dropped a fraction %.4f of %zu, expected %g +- %.4f\n", frac, m,
                p, 6 * sd);
        bad++;
    }
    return bad;
}

static int compare_results(const struct rn_layer *l, const struct lcase *c,
                           const struct results *got, const struct results *want)
{
    int bad = 0;
    char what[64];
    const double at = c->atol, rt = c->rtol;
    bad += compare("y", got->y, want->y, out_numel(l, c->n), at, rt) != 0;
    for (int i = 0; i < l->n_in; i++) {
        snprintf(what, sizeof what, "dx[%d]", i);
        bad += compare(what, got->dx[i], want->dx[i], in_numel(l, i, c->n), at, rt) != 0;
        if (c->tangent) {
            snprintf(what, sizeof what, "tdx[%d]", i);
            bad += compare(what, got->tdx[i], want->tdx[i], in_numel(l, i, c->n), at, rt) != 0;
        }
    }
    if (c->tangent)
        bad += compare("ty", got->ty, want->ty, out_numel(l, c->n), at, rt) != 0;
    for (int i = 0; i < l->n_params; i++) {
        const struct rn_param *p = &l->params[i];
        size_t m = rn_tensor_numel(&p->value);
        snprintf(what, sizeof what, "%s after forward", p->name);
        bad += compare(what, got->value[i], want->value[i], m, at, rt) != 0;
        if (!want->grad[i])
            continue;
        snprintf(what, sizeof what, "grad %s", p->name);
        bad += compare(what, got->grad[i], want->grad[i], m, at, rt) != 0;
        snprintf(what, sizeof what, "grad %s (dx = NULL)", p->name);
        bad += compare(what, got->grad_nodx[i], want->grad_nodx[i], m, at, rt) != 0;
        if (c->tangent) {
            snprintf(what, sizeof what, "tangent grad %s", p->name);
            bad += compare(what, got->tgrad[i], want->tgrad[i], m, at, rt) != 0;
        }
    }
    return bad;
}

static void check_case(const struct rn_backend *be, const struct lcase *c)
{
    struct rn_layer l;
    struct rn_error err = {{0}};
    const struct rn_layer_type *t = rn_layer_type_find(c->type);
    cr_assert_not_null(t, "layer type %s is not registered", c->type);
    struct rn_shape ins[RN_MAX_INPUTS] = {c->in, c->in};
    cr_assert_eq(gc_build(&l, t, c->kv, ins, t->n_inputs, c->n + 1, &err), 0, "%s {%s}: %s",
                 c->type, c->kv, err.msg);
    if (c->bn_stats) {
        gc_randomize_params(&l, -1.5f, 1.5f, 5);
        struct rn_param *rm = rn_layer_param(&l, "running_mean"),
                        *rv = rn_layer_param(&l, "running_var");
        cr_assert(rm && rv);
        for (int i = 0; i < c->in.c; i++) {
            rm->value.data[i] = 0.1f * (float)i - 0.2f;
            rv->value.data[i] = 0.5f + 0.25f * (float)i;
        }
    }
    struct inputs in;
    memset(&in, 0, sizeof in);
    struct rn_rng r;
    rn_rng_init(&r, 2024, GC_STREAM, 7);
    for (int i = 0; i < l.n_in; i++) {
        struct rn_shape s = l.in[i];
        cr_assert_eq(rn_tensor_init(&in.x[i], c->n, s.c, s.h, s.w, &err), 0);
        cr_assert_eq(rn_tensor_init(&in.tx[i], c->n, s.c, s.h, s.w, &err), 0);
        fill_uniform(in.x[i].data, rn_tensor_numel(&in.x[i]), -1, 1, &r);
        fill_uniform(in.tx[i].data, rn_tensor_numel(&in.tx[i]), -1, 1, &r);
        for (size_t j = 0; c->quantise && j < rn_tensor_numel(&in.x[i]); j++)
            in.x[i].data[j] = roundf(2 * in.x[i].data[j]) / 2;
    }
    cr_assert_eq(rn_tensor_init(&in.dy, c->n, l.out.c, l.out.h, l.out.w, &err), 0);
    cr_assert_eq(rn_tensor_init(&in.tdy, c->n, l.out.c, l.out.h, l.out.w, &err), 0);
    fill_uniform(in.dy.data, rn_tensor_numel(&in.dy), -1, 1, &r);
    fill_uniform(in.tdy.data, rn_tensor_numel(&in.tdy), -1, 1, &r);
    struct rn_ctx ctx = {.train = c->train, .seed = 99, .step = 3, .node = 1};

    /* Parameters as initialised, before the CPU forward moves running stats. */
    float *p0[RN_MAX_PARAMS] = {NULL};
    for (int i = 0; i < l.n_params; i++)
        p0[i] = dup_floats(l.params[i].value.data, rn_tensor_numel(&l.params[i].value));

    struct results want = {0}, got = {0};
    run_cpu(&l, c, &in, &ctx, &want);

    /* The same layer on the device: parameters become device tensors (the
     * host ones are kept aside and put back before rn_layer_free). */
    struct rn_tensor host_value[RN_MAX_PARAMS], host_grad[RN_MAX_PARAMS];
    for (int i = 0; i < l.n_params; i++) {
        struct rn_param *p = &l.params[i];
        host_value[i] = p->value;
        host_grad[i] = p->grad;
        struct rn_tensor init =
            rn_tensor_view(p0[i], p->value.n, p->value.c, p->value.h, p->value.w);
        to_device(&p->value, &init);
        if (host_grad[i].data)
            cr_assert_eq(
                rn_tensor_init_on(&p->grad, dev, p->grad.n, p->grad.c, p->grad.h, p->grad.w, &err),
                0, "%s", err.msg);
    }
    int bad = 0;
    const struct rn_layer_kernels *k = be->layer(c->type);
    if (!k) {
        fprintf(stderr, "  the CUDA backend has no kernels for layer type %s\n", c->type);
        bad++;
    } else if (k->prepare && k->prepare(&l, l.max_n, &err)) {
        fprintf(stderr, "  cuda %s prepare: %s\n", c->type, err.msg);
        bad++;
    } else {
        bad += run_cuda(&l, k, c, &in, &ctx, &got);
        if (!bad && !strcmp(c->type, "dropout") && c->train &&
            memcmp(got.y, want.y, out_numel(&l, c->n) * sizeof(float))) {
            if (dev == RN_DEVICE_CUDA) { /* the kernels promise the CPU's masks, bit for bit */
                fprintf(stderr, "  dropout: the device mask is not the CPU's (PCG32 skip-ahead)\n");
                bad++;
            }
            bad += dropout_own_mask(&l, c, &in, &got, &want);
        }
        if (!bad)
            bad += compare_results(&l, c, &got, &want);
    }
    if (k && k->release)
        k->release(&l);
    for (int i = 0; i < l.n_params; i++) {
        rn_tensor_free(&l.params[i].value);
        rn_tensor_free(&l.params[i].grad);
        l.params[i].value = host_value[i];
        l.params[i].grad = host_grad[i];
        free(p0[i]);
    }
    rn_layer_free(&l);
    results_free(&want);
    results_free(&got);
    inputs_free(&in);
    cr_expect_eq(bad, 0, "%s {%s} in (%d,%d,%d) x %d, %s: %d mismatching outputs (see stderr)",
                 c->type, c->kv, c->in.c, c->in.h, c->in.w, c->n, c->train ? "train" : "eval", bad);
}

#define GEMM_TOL 1e-4, 1e-4 /* cuDNN / cuBLAS in FP32 (a TF32 path would fail it) */
#define SUM_TOL 1e-6, 1e-5  /* short sums in another order */
#define EXACT 0.0, 0.0
/* out += a * b: one rounding, or two where a compiler fused it (GCC does with
 * -march=native on an FMA machine, nvcc by default) */
#define FMA_TOL 1e-7, 2.5e-7

static void check_cases(const struct lcase *cases, int n)
{
    const struct rn_backend *be = cuda_or_skip();
    for (int i = 0; i < n; i++)
        check_case(be, &cases[i]);
}

Test(cuda, conv2d)
{
    static const struct lcase cases[] = {
        {"conv2d", "filters=4,kernel=3,padding=1", {3, 6, 6}, 2, 1, 1, GEMM_TOL, 0, 0},
        {"conv2d", "filters=3,kernel=3,stride=2", {2, 7, 7}, 2, 1, 1, GEMM_TOL, 0, 0},
        {"conv2d",
         "filters=2,kernel=3,stride=2,padding=1,bias=false",
         {3, 8, 8},
         2,
         1,
         1,
         GEMM_TOL,
         0, 0},
        {"conv2d", "filters=5,kernel=1", {4, 5, 5}, 3, 1, 1, GEMM_TOL, 0, 0},
        {"conv2d", "filters=8,kernel=1,stride=2,bias=false", {6, 9, 9}, 3, 1, 1, GEMM_TOL, 0, 0},
        {"conv2d", "filters=3,kernel=5,padding=2", {1, 6, 6}, 1, 1, 1, GEMM_TOL, 0, 0},
        {"conv2d", "filters=32,kernel=3,padding=1", {16, 14, 14}, 4, 1, 1, GEMM_TOL, 0, 0},
        {"conv2d", "filters=16,kernel=3,stride=2,padding=1", {3, 28, 28}, 5, 0, 1, GEMM_TOL, 0, 0},
    };
    check_cases(cases, (int)(sizeof cases / sizeof cases[0]));
}

Test(cuda, linear)
{
    static const struct lcase cases[] = {
        {"linear", "units=5", {12, 1, 1}, 3, 1, 1, GEMM_TOL, 0, 0},
        {"linear", "units=3,bias=false", {7, 1, 1}, 2, 1, 1, GEMM_TOL, 0, 0},
        {"linear", "units=10", {256, 1, 1}, 17, 1, 1, GEMM_TOL, 0, 0},
    };
    check_cases(cases, (int)(sizeof cases / sizeof cases[0]));
}

Test(cuda, relu)
{
    static const struct lcase cases[] = {
        {"relu", "", {3, 5, 5}, 2, 1, 1, EXACT, 0, 0},
        {"relu", "", {10, 1, 1}, 3, 0, 1, EXACT, 0, 0},
        {"relu", "", {4, 16, 16}, 65, 1, 1, EXACT, 0, 0},
    };
    check_cases(cases, (int)(sizeof cases / sizeof cases[0]));
}

Test(cuda, maxpool2d)
{
    /* Forward values are copies; backward sums overlapping windows' dy in
     * another order, hence a last-bit tolerance. */
    static const struct lcase cases[] = {
        {"maxpool2d", "", {3, 6, 6}, 2, 1, 1, SUM_TOL, 0, 0},
        {"maxpool2d", "kernel=3,stride=2,padding=1", {2, 7, 7}, 2, 1, 1, SUM_TOL, 0, 0},
        {"maxpool2d", "kernel=3,stride=1", {2, 6, 5}, 2, 1, 1, SUM_TOL, 0, 0},
        {"maxpool2d", "kernel=2,stride=2", {2, 7, 7}, 1, 1, 1, SUM_TOL, 0, 0},
        {"maxpool2d", "kernel=3,stride=2,padding=1", {4, 16, 16}, 9, 1, 1, SUM_TOL, 0, 0},
    };
    check_cases(cases, (int)(sizeof cases / sizeof cases[0]));
}

/* Ties: the first maximum of a window wins on both sides, exactly. */
Test(cuda, maxpool2d_ties)
{
    static const struct lcase cases[] = {
        {"maxpool2d", "", {3, 6, 6}, 3, 1, 1, SUM_TOL, 0, 1},
        {"maxpool2d", "kernel=3,stride=2,padding=1", {2, 9, 9}, 2, 1, 1, SUM_TOL, 0, 1},
    };
    check_cases(cases, (int)(sizeof cases / sizeof cases[0]));
}

/* relu at exactly 0 (gradient 0 there, as the CPU). */
Test(cuda, relu_at_zero)
{
    static const struct lcase cases[] = {
        {"relu", "", {3, 5, 5}, 4, 1, 1, EXACT, 0, 1},
    };
    check_cases(cases, (int)(sizeof cases / sizeof cases[0]));
}

/* The deterministic algorithm choice (spec `deterministic: true`). */
Test(cuda, conv2d_deterministic)
{
    static const struct lcase cases[] = {
        {"conv2d", "filters=4,kernel=3,padding=1", {3, 6, 6}, 2, 1, 1, GEMM_TOL, 0, 0},
        {"conv2d", "filters=32,kernel=3,padding=1", {16, 14, 14}, 4, 1, 1, GEMM_TOL, 0, 0},
        {"conv2d", "filters=8,kernel=1,stride=2,bias=false", {6, 9, 9}, 3, 1, 1, GEMM_TOL, 0, 0},
    };
    rn_cuda_set_deterministic(1);
    check_cases(cases, (int)(sizeof cases / sizeof cases[0]));
    rn_cuda_set_deterministic(0);
}

Test(cuda, avgpool2d)
{
    static const struct lcase cases[] = {
        {"avgpool2d", "", {3, 6, 6}, 2, 1, 1, SUM_TOL, 0, 0},
        {"avgpool2d", "kernel=3,stride=2,padding=1", {2, 7, 7}, 2, 1, 1, SUM_TOL, 0, 0},
        {"avgpool2d", "kernel=3,stride=1,padding=1", {2, 5, 6}, 2, 1, 1, SUM_TOL, 0, 0},
        {"avgpool2d", "kernel=2", {4, 16, 16}, 9, 1, 1, SUM_TOL, 0, 0},
    };
    check_cases(cases, (int)(sizeof cases / sizeof cases[0]));
}

Test(cuda, global_avg_pool)
{
    static const struct lcase cases[] = {
        {"global_avg_pool", "", {4, 5, 3}, 2, 1, 1, SUM_TOL, 0, 0},
        {"global_avg_pool", "", {6, 1, 1}, 2, 1, 1, SUM_TOL, 0, 0},
        {"global_avg_pool", "", {64, 7, 7}, 9, 1, 1, SUM_TOL, 0, 0},
    };
    check_cases(cases, (int)(sizeof cases / sizeof cases[0]));
}

Test(cuda, flatten)
{
    static const struct lcase cases[] = {
        {"flatten", "", {3, 4, 2}, 2, 1, 1, EXACT, 0, 0},
        {"flatten", "", {16, 7, 7}, 5, 0, 1, EXACT, 0, 0},
    };
    check_cases(cases, (int)(sizeof cases / sizeof cases[0]));
}

Test(cuda, dropout)
{
    /* Train-mode masks must equal the CPU's when the device reproduces the
     * CPU's RNG stream; otherwise dropout_own_mask checks the device's own.
     * Backward: dx += mask * dy, hence FMA_TOL. */
    static const struct lcase cases[] = {
        {"dropout", "p=0.3", {8, 16, 16}, 4, 1, 1, FMA_TOL, 0, 0},
        {"dropout", "p=0.5", {20, 1, 1}, 3, 1, 1, FMA_TOL, 0, 0},
        {"dropout", "p=0.3", {3, 4, 4}, 2, 0, 1, FMA_TOL, 0, 0},
    };
    check_cases(cases, (int)(sizeof cases / sizeof cases[0]));
}

Test(cuda, batchnorm2d)
{
    static const struct lcase cases[] = {
        {"batchnorm", "", {3, 4, 4}, 2, 1, 0, GEMM_TOL, 1, 0},
        {"batchnorm", "", {3, 4, 4}, 2, 0, 1, GEMM_TOL, 1, 0},
        {"batchnorm", "", {2, 2, 3}, 1, 1, 0, GEMM_TOL, 1, 0},
        {"batchnorm", "momentum=0.3,eps=0.001", {16, 8, 8}, 8, 1, 0, GEMM_TOL, 1, 0},
        {"batchnorm", "", {16, 8, 8}, 8, 0, 1, GEMM_TOL, 1, 0},
    };
    check_cases(cases, (int)(sizeof cases / sizeof cases[0]));
}

Test(cuda, batchnorm1d)
{
    static const struct lcase cases[] = {
        {"batchnorm", "", {5, 1, 1}, 4, 1, 0, GEMM_TOL, 1, 0},
        {"batchnorm", "", {5, 1, 1}, 4, 0, 1, GEMM_TOL, 1, 0},
        {"batchnorm", "", {64, 1, 1}, 32, 1, 0, GEMM_TOL, 1, 0},
    };
    check_cases(cases, (int)(sizeof cases / sizeof cases[0]));
}

Test(cuda, add)
{
    static const struct lcase cases[] = {
        {"add", "", {3, 4, 4}, 2, 1, 1, EXACT, 0, 0},
        {"add", "", {5, 1, 1}, 3, 0, 1, EXACT, 0, 0},
        {"add", "", {4, 16, 16}, 65, 1, 1, EXACT, 0, 0},
    };
    check_cases(cases, (int)(sizeof cases / sizeof cases[0]));
}

Test(cuda, grl)
{
    /* Backward: dx += -alpha * dy, hence FMA_TOL. */
    static const struct lcase cases[] = {
        {"grl", "alpha=0.7", {3, 4, 4}, 2, 1, 1, FMA_TOL, 0, 0},
        {"grl", "alpha=0", {5, 1, 1}, 3, 1, 1, FMA_TOL, 0, 0},
        {"grl", "", {32, 1, 1}, 9, 0, 1, FMA_TOL, 0, 0},
    };
    check_cases(cases, (int)(sizeof cases / sizeof cases[0]));
}

/* ---- the backend table ---------------------------------------------------- */

Test(cuda, probe_describes_the_device)
{
    real_cuda_or_skip();
    char desc[256];
    struct rn_error err = {{0}};
    cr_assert_eq(rn_cuda_probe(desc, sizeof desc, &err), 0, "%s", err.msg);
    fprintf(stderr, "device: %s\n", desc);
    cr_expect(strstr(desc, "sm_") && strstr(desc, "cuDNN"), "probe description '%s'", desc);
}

Test(cuda, memory_roundtrip)
{
    const struct rn_backend *be = cuda_or_skip();
    struct rn_error err = {{0}};
    enum { N = 1000 };
    float h[N], back[N];
    void *a = NULL, *b = NULL;
    cr_assert_eq(be->alloc(&a, N * sizeof(float), &err), 0, "%s", err.msg);
    cr_assert_eq(be->alloc(&b, N * sizeof(float), &err), 0, "%s", err.msg);
    cr_assert_eq(be->download(back, a, sizeof back, &err), 0, "%s", err.msg);
    for (int i = 0; i < N; i++)
        cr_assert_eq(back[i], 0.0f, "alloc must return zeroed memory (element %d)", i);
    for (int i = 0; i < N; i++)
        h[i] = (float)i * 0.5f - 7.0f;
    cr_assert_eq(be->upload(a, h, sizeof h, &err), 0, "%s", err.msg);
    cr_assert_eq(be->copy(b, a, sizeof h, &err), 0, "%s", err.msg);
    cr_assert_eq(be->zero(a, 100 * sizeof(float), &err), 0, "%s", err.msg);
    cr_assert_eq(be->sync(&err), 0, "%s", err.msg);
    cr_assert_eq(be->download(back, b, sizeof back, &err), 0, "%s", err.msg);
    cr_expect_eq(memcmp(back, h, sizeof h), 0, "upload + copy + download changed the data");
    cr_assert_eq(be->download(back, a, sizeof back, &err), 0, "%s", err.msg);
    for (int i = 0; i < N; i++)
        cr_assert_eq(back[i], i < 100 ? 0.0f : h[i], "zero: element %d", i);
    be->release(a);
    be->release(b);
    be->release(NULL);

    /* The same through device tensors. */
    struct rn_tensor th, td = {0}, th2;
    cr_assert_eq(rn_tensor_init(&th, 2, 3, 4, 5, &err), 0);
    for (size_t i = 0; i < rn_tensor_numel(&th); i++)
        th.data[i] = (float)i;
    to_device(&td, &th);
    cr_assert_eq(td.device, (int)dev);
    cr_assert_eq(rn_tensor_init(&th2, 2, 3, 4, 5, &err), 0);
    cr_assert_eq(rn_tensor_copy(&th2, &td, &err), 0, "%s", err.msg);
    cr_expect_eq(memcmp(th.data, th2.data, rn_tensor_numel(&th) * sizeof(float)), 0);
    cr_assert_eq(rn_tensor_zero(&td, &err), 0, "%s", err.msg);
    cr_assert_eq(rn_tensor_copy(&th2, &td, &err), 0, "%s", err.msg);
    for (size_t i = 0; i < rn_tensor_numel(&th2); i++)
        cr_assert_eq(th2.data[i], 0.0f, "rn_tensor_zero on the device: element %zu", i);
    rn_tensor_free(&th);
    rn_tensor_free(&th2);
    rn_tensor_free(&td);
}

Test(cuda, failing_call_gives_one_clear_line)
{
    const struct rn_backend *be = real_cuda_or_skip();
    struct rn_error err = {{0}};
    void *p = (void *)1;
    cr_assert_eq(be->alloc(&p, (size_t)1e15, &err), -1, "allocating 1e15 bytes succeeded");
    cr_expect_null(p);
    cr_expect(strstr(err.msg, "cudaMalloc") && strstr(err.msg, "out of memory") &&
                  strstr(err.msg, "MiB are free; lower train.batch") && !strchr(err.msg, '\n'),
              "error line: '%s'", err.msg);
    fprintf(stderr, "error line: %s\n", err.msg);

    /* The failure must not be blamed on the next call or kernel. */
    double s = 0;
    cr_assert_eq(be->alloc(&p, 64 * sizeof(float), &err), 0, "after the failure: %s", err.msg);
    cr_expect_eq(be->optim->sum_squares(p, 64, &s, &err), 0, "after the failure: %s", err.msg);
    cr_expect_eq(be->sync(&err), 0, "after the failure: %s", err.msg);
    cr_expect_eq(s, 0.0);
    be->release(p);

    struct rn_tensor t = {0};
    cr_expect_eq(rn_tensor_init_on(&t, RN_DEVICE_CUDA, 1000000, 1000, 1000, 1, &err), -1);
    cr_expect(strstr(err.msg, "cudaMalloc") && strstr(err.msg, "on cuda"), "tensor error: '%s'",
              err.msg);
    rn_tensor_free(&t);
}

/* Runs 3 updates of kind on CPU and device from the same state, with
 * clipping by the global norm of two parameters. */
static void check_optim(const struct rn_backend *be, int kind, float wd, float momentum)
{
    const struct rn_backend *cpu = rn_backend_of(RN_DEVICE_CPU);
    struct rn_error err = {{0}};
    enum { NP = 2 };
    static const size_t sizes[NP] = {1037, 70001};
    float *p[NP], *m[NP], *v[NP], *g[NP];
    void *dp[NP], *dm[NP], *dv[NP], *dg[NP];
    struct rn_rng r;
    rn_rng_init(&r, 31, GC_STREAM, (uint64_t)kind);
    for (int j = 0; j < NP; j++) {
        size_t n = sizes[j], bytes = n * sizeof(float);
        p[j] = malloc(bytes);
        m[j] = calloc(n, sizeof(float));
        v[j] = calloc(n, sizeof(float));
        g[j] = malloc(bytes);
        cr_assert(p[j] && m[j] && v[j] && g[j]);
        fill_uniform(p[j], n, -1, 1, &r);
        cr_assert_eq(be->alloc(&dp[j], bytes, &err), 0, "%s", err.msg);
        cr_assert_eq(be->alloc(&dm[j], bytes, &err), 0, "%s", err.msg);
        cr_assert_eq(be->alloc(&dv[j], bytes, &err), 0, "%s", err.msg);
        cr_assert_eq(be->alloc(&dg[j], bytes, &err), 0, "%s", err.msg);
        cr_assert_eq(be->upload(dp[j], p[j], bytes, &err), 0, "%s", err.msg);
    }
    int bad = 0;
    void *d_sq = NULL; /* the device's squared norm: clipping without a round trip */
    cr_assert_eq(be->alloc(&d_sq, sizeof(double), &err), 0, "%s", err.msg);
    for (long step = 1; step <= 4; step++) {
        double s_cpu = 0, s_dev = 0; /* sum_squares adds to *acc */
        cr_assert_eq(be->zero(d_sq, sizeof(double), &err), 0, "%s", err.msg);
        for (int j = 0; j < NP; j++) {
            fill_uniform(g[j], sizes[j], -2, 2, &r);
            cr_assert_eq(be->upload(dg[j], g[j], sizes[j] * sizeof(float), &err), 0, "%s", err.msg);
            cr_assert_eq(cpu->optim->sum_squares(g[j], sizes[j], &s_cpu, &err), 0);
            cr_assert_eq(be->optim->sum_squares(dg[j], sizes[j], d_sq, &err), 0, "%s", err.msg);
        }
        cr_assert_eq(be->download(&s_dev, d_sq, sizeof s_dev, &err), 0, "%s", err.msg);
        cr_expect(fabs(s_dev - s_cpu) <= 1e-12 * s_cpu, "sum of squares: cuda %.17g, cpu %.17g",
                  s_dev, s_cpu);
        const double clip_norm = 50.0, norm = sqrt(s_cpu);
        struct rn_optim_update u = rn_optim_update_args(
            kind, 0.01, 0.9, 0.999, 1e-8, wd, momentum, step,
            norm > clip_norm ? (float)(clip_norm / (norm + 1e-6)) : 1.0f);
        cr_assert_lt(u.grad_scale, 1.0f, "the test means to clip");
        /* steps 3 and 4: the multiplier from the squared norm where it lies */
        struct rn_optim_update ud = u, uc = u;
        if (step >= 3) {
            ud.clip_sq = d_sq;
            uc.clip_sq = &s_cpu;
            ud.clip_norm = uc.clip_norm = clip_norm;
            ud.grad_scale = uc.grad_scale = 7.0f; /* must be ignored */
        }
        for (int j = 0; j < NP; j++) {
            size_t n = sizes[j];
            cr_assert_eq(cpu->optim->update(&uc, p[j], g[j], m[j], v[j], n, &err), 0);
            cr_assert_eq(be->optim->update(&ud, dp[j], dg[j], dm[j], dv[j], n, &err), 0, "%s",
                         err.msg);
            float *hp = malloc(n * sizeof(float)), *hm = malloc(n * sizeof(float)),
                  *hv = malloc(n * sizeof(float));
            cr_assert(hp && hm && hv);
            cr_assert_eq(be->download(hp, dp[j], n * sizeof(float), &err), 0, "%s", err.msg);
            cr_assert_eq(be->download(hm, dm[j], n * sizeof(float), &err), 0, "%s", err.msg);
            cr_assert_eq(be->download(hv, dv[j], n * sizeof(float), &err), 0, "%s", err.msg);
            /* The same float formulas; the CPU build may fuse multiply-adds
             * (-march=native), so allow a few ulps. */
            size_t differ = 0;
            for (size_t i = 0; i < n; i++)
                differ += hp[i] != p[j][i] || hm[i] != m[j][i];
            if (differ)
                cr_log_info("optim kind %d step %ld: %zu of %zu elements not bit-identical", kind,
                            step, differ, n);
            bad += compare("p", hp, p[j], n, 1e-7, 2e-6) != 0;
            bad += compare("m", hm, m[j], n, 1e-7, 2e-6) != 0;
            if (kind != RN_OPTIM_SGD)
                bad += compare("v", hv, v[j], n, 1e-9, 2e-6) != 0;
            free(hp);
            free(hm);
            free(hv);
        }
    }
    be->release(d_sq);
    for (int j = 0; j < NP; j++) {
        free(p[j]);
        free(m[j]);
        free(v[j]);
        free(g[j]);
        be->release(dp[j]);
        be->release(dm[j]);
        be->release(dv[j]);
        be->release(dg[j]);
    }
    cr_expect_eq(bad, 0, "optimizer kind %d: %d mismatching tensors (see stderr)", kind, bad);
}

Test(cuda, optim_adam)
{
    check_optim(cuda_or_skip(), RN_OPTIM_ADAM, 0.01f, 0);
}

Test(cuda, optim_adamw)
{
    check_optim(cuda_or_skip(), RN_OPTIM_ADAMW, 0.05f, 0);
}

Test(cuda, optim_sgd)
{
    const struct rn_backend *be = cuda_or_skip();
    check_optim(be, RN_OPTIM_SGD, 0.001f, 0.9f);
    check_optim(be, RN_OPTIM_SGD, 0.0f, 0.0f);
}

Test(cuda, sum_squares)
{
    const struct rn_backend *be = cuda_or_skip();
    const struct rn_backend *cpu = rn_backend_of(RN_DEVICE_CPU);
    struct rn_error err = {{0}};
    static const size_t sizes[] = {0, 1, 255, 256, 257, 100003, (1u << 20) + 3, 5000000};
    struct rn_rng r;
    rn_rng_init(&r, 5, GC_STREAM, 11);
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n = sizes[s];
        float *x = malloc((n ? n : 1) * sizeof *x);
        void *d = NULL;
        cr_assert_not_null(x);
        fill_uniform(x, n, -3, 3, &r);
        cr_assert_eq(be->alloc(&d, n * sizeof *x, &err), 0, "%s", err.msg);
        cr_assert_eq(be->upload(d, x, n * sizeof *x, &err), 0, "%s", err.msg);
        /* sum_squares adds to *acc, which lives on the device there */
        double a = 1.5, b = 1.5, b1 = 0, b2 = 0;
        void *acc = NULL;
        cr_assert_eq(be->alloc(&acc, sizeof(double), &err), 0, "%s", err.msg);
        cr_assert_eq(cpu->optim->sum_squares(x, n, &a, &err), 0);
        double *res[3] = {&b, &b1, &b2};
        for (int q = 0; q < 3; q++) {
            cr_assert_eq(be->upload(acc, res[q], sizeof(double), &err), 0, "%s", err.msg);
            cr_assert_eq(be->optim->sum_squares(d, n, acc, &err), 0, "%s", err.msg);
            cr_assert_eq(be->download(res[q], acc, sizeof(double), &err), 0, "%s", err.msg);
        }
        be->release(acc);
        cr_expect(fabs(a - b) <= 1e-12 * a, "n = %zu: cuda %.17g, cpu %.17g", n, b, a);
        cr_expect_eq(b1, b2, "n = %zu: two runs differ (%.17g, %.17g)", n, b1, b2);
        be->release(d);
        free(x);
    }
}

#ifdef RN_HAVE_CUDA
/* The same rows through rn_cross_entropy and rn_cuda_cross_entropy. */
static void check_cross_entropy(int n, int k, float weight, uint64_t seed)
{
    const struct rn_backend *be = real_cuda_or_skip();
    struct rn_cuda *cu = rn_cuda_get(NULL);
    cr_assert_not_null(cu);
    struct rn_error err = {{0}};
    struct rn_rng r;
    rn_rng_init(&r, seed, GC_STREAM, 13);
    struct rn_tensor z, dz;
    cr_assert_eq(rn_tensor_init(&z, n, k, 1, 1, &err), 0);
    cr_assert_eq(rn_tensor_init(&dz, n, k, 1, 1, &err), 0);
    uint8_t *t = malloc((size_t)n);
    float *probs = malloc((size_t)n * k * sizeof *probs);
    cr_assert(t && probs);
    fill_uniform(z.data, rn_tensor_numel(&z), -4, 4, &r);
    fill_const(dz.data, rn_tensor_numel(&dz), GC_ACC_START);
    for (int i = 0; i < n; i++)
        t[i] = (uint8_t)rn_rng_below(&r, (uint32_t)k);
    /* A tie (first maximum wins, so the later target is wrong), a row of
     * equal logits and large logits (log-sum-exp must not overflow). */
    if (n >= 3 && k >= 3) {
        z.data[0 * k + 1] = z.data[0 * k + k - 1] = 9.0f;
        t[0] = (uint8_t)(k - 1);
        for (int j = 0; j < k; j++)
            z.data[1 * k + j] = 0.5f;
        for (int j = 0; j < k; j++)
            z.data[2 * k + j] = 80.0f + (float)j * 3.0f;
    }
    int right_cpu = 0;
    double mean = rn_cross_entropy(&z, t, weight, &dz, &right_cpu, probs);

    struct rn_tensor dzd = {0}, zd = {0};
    struct rn_tensor acc = rn_tensor_view(NULL, n, k, 1, 1);
    float *acc_data = malloc((size_t)n * k * sizeof(float));
    cr_assert_not_null(acc_data);
    fill_const(acc_data, (size_t)n * k, GC_ACC_START);
    acc.data = acc_data;
    to_device(&zd, &z);
    to_device(&dzd, &acc);
    void *td = NULL, *probs_d = NULL, *sums = NULL;
    cr_assert_eq(be->alloc(&td, (size_t)n, &err), 0, "%s", err.msg);
    cr_assert_eq(be->alloc(&probs_d, (size_t)n * k * sizeof(float), &err), 0, "%s", err.msg);
    cr_assert_eq(be->alloc(&sums, 2 * sizeof(double), &err), 0, "%s", err.msg); /* loss, count */
    cr_assert_eq(be->upload(td, t, (size_t)n, &err), 0, "%s", err.msg);
    double *loss_d = sums;
    int *right_d = (int *)((double *)sums + 1);
    cr_assert_eq(rn_cuda_cross_entropy(zd.data, td, n, k, weight, dzd.data, loss_d, right_d,
                                       probs_d, cu->stream),
                 0);
    /* Counters accumulate across calls; dlogits and probs are optional. */
    cr_assert_eq(
        rn_cuda_cross_entropy(zd.data, td, n, k, weight, NULL, loss_d, right_d, NULL, cu->stream),
        0);
    cr_assert_eq(be->sync(&err), 0, "%s", err.msg);
    double loss_sum = 0;
    int right = 0;
    cr_assert_eq(be->download(&loss_sum, loss_d, sizeof loss_sum, &err), 0, "%s", err.msg);
    cr_assert_eq(be->download(&right, right_d, sizeof right, &err), 0, "%s", err.msg);
    cr_expect(fabs(loss_sum / (2.0 * n) - mean) <= 1e-12 * fabs(mean) + 1e-15,
              "n %d k %d: mean loss cuda %.17g, cpu %.17g", n, k, loss_sum / (2.0 * n), mean);
    cr_expect_eq(right, 2 * right_cpu, "n %d k %d: correct cuda %d, cpu %d (x2)", n, k, right,
                 right_cpu);
    float *gd = download(&dzd, (size_t)n * k);
    float *pd = malloc((size_t)n * k * sizeof *pd);
    cr_assert_not_null(pd);
    cr_assert_eq(be->download(pd, probs_d, (size_t)n * k * sizeof *pd, &err), 0, "%s", err.msg);
    cr_expect_eq(compare("dlogits", gd, dz.data, (size_t)n * k, 1e-9, 1e-6), 0);
    cr_expect_eq(compare("probs", pd, probs, (size_t)n * k, 1e-9, 1e-6), 0);
    free(gd);
    free(pd);
    free(acc_data);
    free(t);
    free(probs);
    be->release(td);
    be->release(probs_d);
    be->release(sums);
    rn_tensor_free(&z);
    rn_tensor_free(&dz);
    rn_tensor_free(&zd);
    rn_tensor_free(&dzd);
}

Test(cuda, cross_entropy)
{
    check_cross_entropy(37, 10, 0.7f, 1);
    check_cross_entropy(300, 10, 1.0f, 2); /* more rows than threads */
    check_cross_entropy(5, 2, 3.0f, 3);
    check_cross_entropy(64, 100, 0.25f, 4);
}

Test(cuda, gather)
{
    const struct rn_backend *be = real_cuda_or_skip();
    struct rn_cuda *cu = rn_cuda_get(NULL);
    cr_assert_not_null(cu);
    struct rn_error err = {{0}};
    enum { N = 50, C = 3, H = 5, W = 7, PER = C * H * W, B = 20 };
    static uint8_t images[N * PER], labels[N];
    int32_t idx[B];
    struct rn_rng r;
    rn_rng_init(&r, 8, GC_STREAM, 17);
    for (int i = 0; i < N * PER; i++)
        images[i] = (uint8_t)rn_rng_below(&r, 256);
    images[0] = 0;
    images[1] = 255;
    for (int i = 0; i < N; i++)
        labels[i] = (uint8_t)rn_rng_below(&r, 10);
    for (int i = 0; i < B; i++)
        idx[i] = (int)rn_rng_below(&r, N);
    idx[3] = idx[4]; /* repeats are fine */
    idx[0] = 0;
    idx[B - 1] = N - 1;

    void *img_d = NULL, *lab_d = NULL, *idx_d = NULL, *out_d = NULL, *lout_d = NULL;
    cr_assert_eq(be->alloc(&img_d, sizeof images, &err), 0, "%s", err.msg);
    cr_assert_eq(be->alloc(&lab_d, sizeof labels, &err), 0, "%s", err.msg);
    cr_assert_eq(be->alloc(&idx_d, sizeof idx, &err), 0, "%s", err.msg);
    cr_assert_eq(be->alloc(&out_d, (size_t)N * PER * sizeof(float), &err), 0, "%s", err.msg);
    cr_assert_eq(be->alloc(&lout_d, N, &err), 0, "%s", err.msg);
    cr_assert_eq(be->upload(img_d, images, sizeof images, &err), 0, "%s", err.msg);
    cr_assert_eq(be->upload(lab_d, labels, sizeof labels, &err), 0, "%s", err.msg);
    cr_assert_eq(be->upload(idx_d, idx, sizeof idx, &err), 0, "%s", err.msg);

    static float want[N * PER], got[N * PER];
    uint8_t lwant[N], lgot[N];
    for (int pass = 0; pass < 2; pass++) {
        const int n = pass ? N : B;
        const int *ix = pass ? NULL : idx;
        /* rn_run_load_batch (runner/eval.c): src[k] * (1.0f / 255.0f). */
        for (int i = 0; i < n; i++) {
            const uint8_t *src = images + (size_t)(ix ? ix[i] : i) * PER;
            for (int k = 0; k < PER; k++)
                want[(size_t)i * PER + k] = src[k] * (1.0f / 255.0f);
            lwant[i] = labels[ix ? ix[i] : i];
        }
        cr_assert_eq(rn_cuda_gather_images(img_d, pass ? NULL : idx_d, n, PER, 1.0f / 255.0f, out_d,
                                           cu->stream),
                     0);
        cr_assert_eq(rn_cuda_gather_u8(lab_d, pass ? NULL : idx_d, n, lout_d, cu->stream), 0);
        cr_assert_eq(be->sync(&err), 0, "%s", err.msg);
        cr_assert_eq(be->download(got, out_d, (size_t)n * PER * sizeof(float), &err), 0, "%s",
                     err.msg);
        cr_assert_eq(be->download(lgot, lout_d, (size_t)n, &err), 0, "%s", err.msg);
        cr_expect_eq(
            compare(pass ? "images (no idx)" : "images", got, want, (size_t)n * PER, EXACT), 0);
        cr_expect_eq(memcmp(lgot, lwant, (size_t)n), 0, "labels differ (pass %d)", pass);
    }

    /* The backend tables' gather_images: CUDA against the CPU's. */
    const struct rn_backend *cpu = rn_backend_of(RN_DEVICE_CPU);
    cr_assert_not_null(be->data, "the CUDA table has no data kernels");
    cr_assert_eq(cpu->data->gather_images(images, idx, B, PER, want, &err), 0, "%s", err.msg);
    cr_assert_eq(be->data->gather_images(img_d, idx_d, B, PER, out_d, &err), 0, "%s", err.msg);
    cr_assert_eq(be->download(got, out_d, (size_t)B * PER * sizeof(float), &err), 0, "%s", err.msg);
    cr_expect_eq(compare("gather_images (table)", got, want, (size_t)B * PER, EXACT), 0);
    be->release(img_d);
    be->release(lab_d);
    be->release(idx_d);
    be->release(out_d);
    be->release(lout_d);
}
#else
Test(cuda, cross_entropy)
{
    real_cuda_or_skip();
}

Test(cuda, gather)
{
    real_cuda_or_skip();
}
#endif

/* ---- whole models: training steps through the run ------------------------ */

/* The repository root: RN_SOURCE_ROOT (scripts/gpu-check.sh sets it on a
 * machine where the tree lies elsewhere) or where this was built from. */
static const char *source_root(void)
{
    const char *r = getenv("RN_SOURCE_ROOT");
    return r && *r ? r : RN_SOURCE_DIR;
}

/* Writes text to dir/spec.yaml and loads it (calloc'd; rn_spec_free and
 * free it). */
static struct rn_spec *spec_in(const char *dir, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/spec.yaml", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    struct rn_spec *spec = calloc(1, sizeof *spec);
    struct rn_error err = {{0}};
    cr_assert_eq(rn_spec_load(spec, path, NULL, stderr, NULL, &err), 0, "%s", err.msg);
    return spec;
}

/* Trains model (an experiments/models file) for 2 steps of 32 fixture images
 * and evaluates the 300 test images, on device d; returns every parameter
 * and buffer (in graph order, n floats) and the test accuracy. */
static float *train_model(const char *model, int d, size_t *n, double *val_acc)
{
    char dir[] = "/tmp/rn_cuda_model_XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char text[2048];
    snprintf(text, sizeof text,
             "name: cuda_model_step\nseed: 7\n"
             "data: {dir: %s/tests/fixtures/mnist, colouring: background, bias: 0.95,"
             " val_fraction: 0.05, train_limit: 64}\n"
             "model: {include: %s/experiments/models/%s.yaml}\n"
             "train: {epochs: 1, batch: 32, log_every: 1, optimizer: sgd, lr: 0.05,"
             " eval: [test]}\n",
             source_root(), source_root(), model);
    struct rn_spec *spec = spec_in(dir, text);
    struct rn_error err = {{0}};
    char out[300];
    snprintf(out, sizeof out, "%s/%s", dir, d == RN_DEVICE_CPU ? "cpu" : "dev");
    struct rn_run_options opt = {.out_dir = out, .quiet = 1, .log = stderr, .device = d};
    struct rn_run *run = calloc(1, sizeof *run);
    cr_assert_eq(rn_run_open(run, spec, &opt, &err), 0, "%s", err.msg);
    cr_assert_eq(rn_run_train(run, &err), 0, "%s", err.msg);
    *val_acc = run->last[0].accuracy;
    cr_assert_eq(rn_graph_to_device(&run->graph, RN_DEVICE_CPU, &err), 0, "%s", err.msg);
    size_t total = 0;
    for (int i = 0; i < run->graph.n_nodes; i++)
        for (int j = 0; j < run->graph.nodes[i].layer.n_params; j++)
            total += rn_tensor_numel(&run->graph.nodes[i].layer.params[j].value);
    float *all = malloc(total * sizeof(float)), *p = all;
    for (int i = 0; i < run->graph.n_nodes; i++)
        for (int j = 0; j < run->graph.nodes[i].layer.n_params; j++) {
            const struct rn_tensor *t = &run->graph.nodes[i].layer.params[j].value;
            memcpy(p, t->data, rn_tensor_numel(t) * sizeof(float));
            p += rn_tensor_numel(t);
        }
    rn_run_close(run, "completed");
    free(run);
    rn_spec_free(spec);
    free(spec);
    snprintf(text, sizeof text, "rm -rf %s", dir);
    cr_assert_eq(system(text), 0);
    *n = total;
    return all;
}

/* Two SGD steps (lr 0.05: an update is linear in the gradient, where Adam's
 * first step would turn a rounding-level gradient into a full +-lr step);
 * the two backends must agree to rounding, and evaluate the 300 test
 * images alike. */
static void check_model(const char *model)
{
    cuda_or_skip();
    size_t n_cpu, n_dev;
    double acc_cpu, acc_dev;
    float *cpu = train_model(model, RN_DEVICE_CPU, &n_cpu, &acc_cpu);
    float *got = train_model(model, dev, &n_dev, &acc_dev);
    cr_assert_eq(n_cpu, n_dev);
    size_t bad = 0;
    double worst = 0;
    for (size_t i = 0; i < n_cpu; i++) {
        double diff = fabs((double)got[i] - cpu[i]);
        if (diff > worst)
            worst = diff;
        bad += diff > 2e-5 + 1e-4 * fabs(cpu[i]);
    }
    cr_log_info("%s: %zu values, largest difference %.3g, test accuracy %.4f (cpu) %.4f (device)",
                model, n_cpu, worst, acc_cpu, acc_dev);
    cr_expect_eq(bad, 0, "%s: %zu of %zu parameters differ beyond 2e-5 + 1e-4|x| (worst %.3g)",
                 model, bad, n_cpu, worst);
    cr_expect_leq(fabs(acc_cpu - acc_dev), 0.02, "%s: test accuracy %.4f vs %.4f", model, acc_cpu,
                  acc_dev);
    free(cpu);
    free(got);
}

Test(cuda, simple_gap_cnn_training_steps, .timeout = 120)
{
    check_model("simple_gap_cnn");
}

Test(cuda, resnet18_training_steps, .timeout = 300)
{
    check_model("resnet18");
}

/* The table's cross_entropy (evaluation sums and confusion counts on the
 * device) against the CPU table's, on logits with ties and a target row. */
Test(cuda, cross_entropy_table)
{
    const struct rn_backend *be = cuda_or_skip();
    const struct rn_backend *cpu = rn_backend_of(RN_DEVICE_CPU);
    enum { N = 300, K = 10 };
    static float z[N * K], dz_cpu[N * K], dz_dev[N * K];
    static uint8_t t[N];
    struct rn_rng r;
    rn_rng_init(&r, 9, 0, 0);
    fill_uniform(z, N * K, -4, 4, &r);
    for (int i = 0; i < N; i++) {
        t[i] = (uint8_t)(i * 7 % K);
        if (i % 13 == 0)
            z[i * K + 3] = z[i * K + 5] = 9; /* a tie: the first maximum wins */
    }
    double loss_cpu = 0.5, loss_dev_h = 0;
    int32_t right_cpu = 2, right_dev_h = 0, conf_cpu[K * K] = {0}, conf_dev_h[K * K];
    struct rn_error err = {{0}};
    cr_assert_eq(
        cpu->loss->cross_entropy(z, t, N, K, 0.5f, dz_cpu, &loss_cpu, &right_cpu, conf_cpu, &err),
        0);
    void *dz, *dt, *dd;
    size_t zb = sizeof z, tail = sizeof(double) + sizeof(int32_t) * (1 + K * K);
    cr_assert_eq(be->alloc(&dz, zb, &err), 0, "%s", err.msg);
    cr_assert_eq(be->alloc(&dd, zb + tail, &err), 0, "%s", err.msg);
    cr_assert_eq(be->alloc(&dt, sizeof t, &err), 0, "%s", err.msg);
    cr_assert_eq(be->upload(dz, z, zb, &err), 0, "%s", err.msg);
    cr_assert_eq(be->upload(dt, t, sizeof t, &err), 0, "%s", err.msg);
    double *d_loss = (double *)((char *)dd + zb);
    int32_t *d_right = (int32_t *)(d_loss + 1), *d_conf = d_right + 1;
    const double half = 0.5;
    const int32_t two = 2;
    cr_assert_eq(be->upload(d_loss, &half, sizeof half, &err), 0, "%s", err.msg);
    cr_assert_eq(be->upload(d_right, &two, sizeof two, &err), 0, "%s", err.msg);
    cr_assert_eq(be->loss->cross_entropy(dz, dt, N, K, 0.5f, dd, d_loss, d_right, d_conf, &err), 0,
                 "%s", err.msg);
    cr_assert_eq(be->download(dz_dev, dd, zb, &err), 0, "%s", err.msg);
    cr_assert_eq(be->download(&loss_dev_h, d_loss, sizeof loss_dev_h, &err), 0, "%s", err.msg);
    cr_assert_eq(be->download(&right_dev_h, d_right, sizeof right_dev_h, &err), 0, "%s", err.msg);
    cr_assert_eq(be->download(conf_dev_h, d_conf, sizeof conf_dev_h, &err), 0, "%s", err.msg);
    cr_expect(fabs(loss_dev_h - loss_cpu) <= 1e-9 * fabs(loss_cpu), "loss %.17g vs %.17g",
              loss_dev_h, loss_cpu);
    cr_expect_eq(right_dev_h, right_cpu);
    cr_expect_eq(memcmp(conf_dev_h, conf_cpu, sizeof conf_cpu), 0, "confusion counts differ");
    cr_expect_eq(compare("dlogits (table)", dz_dev, dz_cpu, N * K, 1e-7, 1e-6), 0);
    be->release(dz);
    be->release(dd);
    be->release(dt);
}

/* ---- augmentation ---------------------------------------------------------- */

/* The table's augment against the CPU table's (rn_augment_apply) on a host
 * copy, from the same draws (rn_augment_draws on the host, uploaded). The
 * kernel never fuses a multiply and an add, while the host build may
 * (-march=native, gcc's -ffp-contract=fast): one ulp per blend or HSV step.
 * The hue op magnifies that: it rounds H at magnitude 1 (h / 6 + 1, then
 * h + hue_factor; ulp 1.2e-7) and multiplies by 6, so a 1-ulp difference in
 * its input can move a saturated pixel's middle channel by 7e-7 per rounding,
 * and later ops scale it by up to 1.4 (brightness, contrast) and 1.8
 * (saturation): at most ~6.5e-6. A host simulation of the kernel measured
 * 3.0e-6 at worst over 11100 such samples (and no difference at all against
 * augment.c built with -ffp-contract=off), hence 1e-5. Without jitter the
 * result must be exact. Besides random pixels, each image holds greys, ties
 * of the maximum, black and white (the hue op's branches, the clamps). */
Test(cuda, augment)
{
    const struct rn_backend *be = cuda_or_skip();
    const struct rn_backend *cpu = rn_backend_of(RN_DEVICE_CPU);
    cr_assert_not_null(be->augment, "backend %s has no augment", be->name);
    cr_assert_not_null(cpu->augment, "the CPU backend has no augment");
    enum { N = 37, C = 3, H = 28, W = 28, HW = H * W };
    const size_t count = (size_t)N * C * HW;
    static const struct rn_augment cases[] = {
        {.channel_permute = 1, .colour_jitter = 1, .brightness = 0.4f, .contrast = 0.4f,
         .saturation = 0.4f, .hue = 0.1f},
        {.channel_permute = 1, .colour_jitter = 1, .brightness = 0.4f, .contrast = 0.4f,
         .saturation = 0.4f, .hue = 0.5f},
        {.colour_jitter = 1, .brightness = 0.4f, .contrast = 0.4f, .saturation = 0.4f, .hue = 0.1f},
        {.channel_permute = 1},
    };
    static const char *names[] = {"augment (permute + jitter, hue 0.1)",
                                  "augment (permute + jitter, hue 0.5)", "augment (jitter only)",
                                  "augment (permute only)"};
    static const float special[][3] = {{0.5f, 0.5f, 0.5f}, {1, 1, 0},    {0.3f, 0.8f, 0.8f},
                                       {0.6f, 0.2f, 0.6f}, {0, 0, 0},    {1, 1, 1},
                                       {1, 0, 0},          {0, 1e-7f, 0}};
    const int n_special = (int)(sizeof special / sizeof special[0]);
    float *x = malloc(count * sizeof *x), *want = malloc(count * sizeof *x),
          *got = malloc(count * sizeof *x), *again = malloc(count * sizeof *x);
    cr_assert(x && want && got && again);
    struct rn_augment_draw draws[N];
    struct rn_error err = {{0}};
    void *dx = NULL, *dd = NULL;
    cr_assert_eq(be->alloc(&dx, count * sizeof *x, &err), 0, "%s", err.msg);
    cr_assert_eq(be->alloc(&dd, sizeof draws, &err), 0, "%s", err.msg);
    struct rn_rng r;
    rn_rng_init(&r, 21, GC_STREAM, 17);
    for (int k = 0; k < (int)(sizeof cases / sizeof cases[0]); k++) {
        const struct rn_augment *a = &cases[k];
        fill_uniform(x, count, 0, 1, &r);
        for (int i = 0; i < N; i++)
            for (int p = 0; p < n_special; p++)
                for (int c = 0; c < C; c++)
                    x[((size_t)i * C + c) * HW + 97 * p] = special[p][c];
        cr_assert_eq(rn_augment_draws(a, N, 8, 100 + (uint64_t)k, draws, &err), 0, "%s", err.msg);
        memcpy(want, x, count * sizeof *x);
        cr_assert_eq(cpu->augment->apply(a, draws, want, N, C, H, W, &err), 0, "%s", err.msg);
        cr_expect(memcmp(want, x, count * sizeof *x) != 0, "%s changed nothing", names[k]);
        cr_assert_eq(be->upload(dd, draws, sizeof draws, &err), 0, "%s", err.msg);
        for (int run = 0; run < 2; run++) {
            cr_assert_eq(be->upload(dx, x, count * sizeof *x, &err), 0, "%s", err.msg);
            cr_assert_eq(be->augment->apply(a, dd, dx, N, C, H, W, &err), 0, "%s", err.msg);
            cr_assert_eq(be->download(run ? again : got, dx, count * sizeof *x, &err), 0, "%s",
                         err.msg);
        }
        double tol = a->colour_jitter ? 1e-5 : 0.0;
        cr_expect_eq(compare(names[k], got, want, count, tol, 0), 0,
                     "%s: device and CPU differ (see stderr)", names[k]);
        cr_expect(memcmp(got, again, count * sizeof *x) == 0, "%s: two device runs differ",
                  names[k]);
    }
    /* a bad shape: one line, before anything runs */
    cr_assert_eq(be->augment->apply(&cases[0], dd, dx, N, 1, H, W, &err), -1);
    cr_expect(strstr(err.msg, "RGB") != NULL, "message: %s", err.msg);
    be->release(dx);
    be->release(dd);
    free(x);
    free(want);
    free(got);
    free(again);
}

/* ---- the saliency loss's per-sample arithmetic ------------------------------ */

#include "runner/saliency.h"

/* A new device buffer of bytes, holding h's (h NULL: zeroed, as alloc gives). */
static void *saliency_put(const struct rn_backend *be, const void *h, size_t bytes)
{
    struct rn_error err = {{0}};
    void *d = NULL;
    cr_assert_eq(be->alloc(&d, bytes ? bytes : 1, &err), 0, "%s", err.msg);
    if (h && bytes)
        cr_assert_eq(be->upload(d, h, bytes, &err), 0, "%s", err.msg);
    return d;
}

static void saliency_get(const struct rn_backend *be, void *h, const void *d, size_t bytes)
{
    struct rn_error err = {{0}};
    cr_assert_eq(be->download(h, d, bytes, &err), 0, "%s", err.msg);
}

/* One shape, one configuration: the three entries of the device's table and
 * of the CPU's on the same inputs (the tangent step gets the CPU's softmax on
 * both sides, so each step is compared on its own). The tolerances, against
 * the CPU's bits (on the stand-in everything must be exact):
 * - probs and the logits' gradient: CUDA's double exp and log are within 2
 *   ulps (glibc's nearly correctly rounded), ~4e-16 relative, so the floats
 *   differ by at most an ulp (6e-8 relative); p - 1 in float (plain dz)
 *   near p = 1 by an ulp of 1 (6e-8 absolute): 1e-6 relative + 1e-7.
 * - the CE mean: the batch summed in a tree, not in order: 1e-12 relative.
 * - dx / c (fused): one IEEE division per element on both sides: exact.
 * - r_i and sum r_i: the pixel sums in a tree instead of in order, at most
 *   HW * 2^-53 ~ 1e-13 relative for these sums of nonnegative terms: 1e-12.
 * - tx: those doubles rounded to float once: an ulp, 1e-6 relative (the
 *   share's a0 + a1 = (1 - r) / total loses 1 / (1 - r) of that, r <= ~0.7
 *   here). The host build may also fuse acc += g * g (l2) into an FMA: an
 *   ulp of a double, far below.
 * - tdz: the same products summed in the same order, up to the host's FMA:
 *   a few double ulps of sum |p t| absolute after the cancellation in
 *   t - p.t, then a float rounding: 1e-6 relative + 1e-12. */
static void check_saliency(const struct rn_backend *be, int n, int k, int C, int H, int W,
                           enum rn_saliency_norm norm, enum rn_saliency_reduce reduce, int fused,
                           uint64_t seed)
{
    const struct rn_backend *cpu = rn_backend_of(RN_DEVICE_CPU);
    const int exact = dev == RN_DEVICE_TEST, HW = H * W;
    const size_t nk = (size_t)n * k, nx = (size_t)n * C * HW;
    const struct rn_saliency cfg = {.norm = norm, .reduce = reduce, .threshold = 0.95f};
    const float ce_weight = fused ? 0.7f : 0.0f, weight = 50.0f;
    const double c = fused ? (double)ce_weight / n : 1.0, vscale = (double)weight / (n * c);
    char what[96];
    snprintf(what, sizeof what, "saliency %s %s %s n %d k %d %dx%dx%d",
             norm == RN_SALIENCY_L2 ? "l2" : "l1",
             reduce == RN_SALIENCY_MEAN_BACKGROUND ? "mean_background" : "background_share",
             fused ? "fused" : "plain", n, k, C, H, W);
    struct rn_error err = {{0}};
    struct rn_rng r;
    rn_rng_init(&r, seed, GC_STREAM, 23);

    float *z = malloc(nk * sizeof *z), *tz = malloc(nk * sizeof *z);
    float *probs = malloc(nk * sizeof *z), *dz = malloc(nk * sizeof *z);
    float *got = malloc((nx > nk ? nx : nk) * sizeof *z), *again = malloc(nx * sizeof *z);
    float *x = malloc(nx * sizeof *x), *dx = malloc(nx * sizeof *x), *tx = malloc(nx * sizeof *x);
    float *dx0 = malloc(nx * sizeof *x), *tdz = malloc(nk * sizeof *z);
    double *rr = malloc((size_t)n * sizeof *rr), *rgot = malloc((size_t)n * sizeof *rr);
    uint8_t *t = malloc((size_t)n);
    cr_assert(z && tz && probs && dz && got && again && x && dx && tx && dx0 && tdz && rr && rgot &&
              t);
    fill_uniform(z, nk, -4, 4, &r);
    fill_uniform(tz, nk, -2, 2, &r);
    for (int i = 0; i < n; i++) {
        t[i] = (uint8_t)rn_rng_below(&r, (uint32_t)k);
        if (i % 5 == 0 && k >= 3)
            z[(size_t)i * k + 1] = z[(size_t)i * k + 2] = 6.0f; /* a tie */
    }
    /* x: a third of the pixels foreground (every channel >= 0.96), the rest
     * random; sample 1 has no background at all. dx: gradient-sized, with
     * exact zeros (sign(0)); sample 2's is all zero (s = 0, total = 0). */
    fill_uniform(x, nx, 0, 1, &r);
    fill_uniform(dx0, nx, -1e-3f, 1e-3f, &r);
    for (int i = 0; i < n; i++)
        for (int p = 0; p < HW; p++)
            for (int ch = 0; ch < C; ch++) {
                const size_t e = ((size_t)i * C + ch) * HW + p;
                if (p % 3 == 0 || i == 1)
                    x[e] = 0.96f + 0.04f * rn_rng_uniform(&r);
                if ((p % 7 == 0 && ch == 0) || i == 2)
                    dx0[e] = 0.0f;
            }

    /* 1. the logits step */
    const float dz_start = fused ? GC_ACC_START : 7.0f; /* fused adds, plain writes */
    fill_const(dz, nk, dz_start);
    double ce = 0, ce_dev = 0;
    cr_assert_eq(cpu->saliency->logits(z, t, n, k, ce_weight, probs, dz, &ce, &err), 0, "%s",
                 err.msg);
    float *z_d = saliency_put(be, z, nk * sizeof *z), *dz_d = saliency_put(be, dz, nk * sizeof *z);
    float *probs_d = saliency_put(be, NULL, nk * sizeof *z);
    uint8_t *t_d = saliency_put(be, t, (size_t)n);
    double *sc_d = saliency_put(be, NULL, 2 * sizeof(double)); /* CE mean, sum r_i: zeroed */
    fill_const(got, nk, dz_start);
    cr_assert_eq(be->upload(dz_d, got, nk * sizeof *z, &err), 0, "%s", err.msg);
    cr_assert_eq(be->saliency->logits(z_d, t_d, n, k, ce_weight, probs_d, dz_d, &sc_d[0], &err), 0,
                 "%s: %s", what, err.msg);
    saliency_get(be, &ce_dev, &sc_d[0], sizeof ce_dev);
    cr_expect(fabs(ce_dev - ce) <= (exact ? 0 : 1e-12) * fabs(ce), "%s: CE mean %.17g, cpu %.17g",
              what, ce_dev, ce);
    saliency_get(be, got, probs_d, nk * sizeof *z);
    cr_expect_eq(compare("probs", got, probs, nk, exact ? 0 : 1e-9, exact ? 0 : 1e-6), 0, "%s",
                 what);
    saliency_get(be, got, dz_d, nk * sizeof *z);
    cr_expect_eq(compare("dz", got, dz, nk, exact ? 0 : 1e-7, exact ? 0 : 1e-6), 0, "%s", what);

    /* 2. the direction step, twice on the device (dx is rescaled in place) */
    memcpy(dx, dx0, nx * sizeof *dx);
    double rsum = 0.125, rsum_dev[2];
    cr_assert_eq(cpu->saliency->direction(&cfg, x, dx, n, C, HW, fused ? c : 1.0, vscale, tx, rr,
                                          &rsum, &err),
                 0, "%s", err.msg);
    float *x_d = saliency_put(be, x, nx * sizeof *x), *dx_d = saliency_put(be, dx0, nx * sizeof *x);
    float *tx_d = saliency_put(be, NULL, nx * sizeof *x);
    double *r_d = saliency_put(be, NULL, (size_t)n * sizeof(double));
    for (int run = 0; run < 2; run++) {
        const double start = 0.125;
        cr_assert_eq(be->upload(dx_d, dx0, nx * sizeof *x, &err), 0, "%s", err.msg);
        cr_assert_eq(be->upload(&sc_d[1], &start, sizeof start, &err), 0, "%s", err.msg);
        cr_assert_eq(be->saliency->direction(&cfg, x_d, dx_d, n, C, HW, fused ? c : 1.0, vscale,
                                             tx_d, r_d, &sc_d[1], &err),
                     0, "%s: %s", what, err.msg);
        saliency_get(be, &rsum_dev[run], &sc_d[1], sizeof(double));
        saliency_get(be, run ? again : got, tx_d, nx * sizeof *x);
    }
    cr_expect(memcmp(got, again, nx * sizeof *x) == 0 && rsum_dev[0] == rsum_dev[1],
              "%s: two device runs differ", what);
    cr_expect(fabs(rsum_dev[0] - rsum) <= (exact ? 0 : 1e-12) * fabs(rsum),
              "%s: sum r %.17g, cpu %.17g", what, rsum_dev[0], rsum);
    cr_expect_eq(compare("tx", got, tx, nx, exact ? 0 : 1e-30, exact ? 0 : 1e-6), 0, "%s", what);
    saliency_get(be, rgot, r_d, (size_t)n * sizeof(double));
    for (int i = 0; i < n; i++)
        cr_expect(fabs(rgot[i] - rr[i]) <= (exact ? 0 : 1e-12) * fabs(rr[i]),
                  "%s: r[%d] %.17g, cpu %.17g", what, i, rgot[i], rr[i]);
    cr_expect(rr[1] == 0 || reduce != RN_SALIENCY_MEAN_BACKGROUND, "%s: no background, r %g",
              what, rr[1]);
    cr_expect(rr[2] == 0, "%s: zero gradient, r %g", what, rr[2]);
    saliency_get(be, got, dx_d, nx * sizeof *x);
    cr_expect_eq(compare("dx / c", got, dx, nx, 0, 0), 0, "%s", what);

    /* 3. the tangent-logits step, from the CPU's softmax on both sides */
    float *tz_d = saliency_put(be, tz, nk * sizeof *z);
    float *tdz_d = saliency_put(be, NULL, nk * sizeof *z);
    cr_assert_eq(be->upload(probs_d, probs, nk * sizeof *z, &err), 0, "%s", err.msg);
    cr_assert_eq(cpu->saliency->tangent_logits(probs, tz, n, k, c, tdz, &err), 0, "%s", err.msg);
    cr_assert_eq(be->saliency->tangent_logits(probs_d, tz_d, n, k, c, tdz_d, &err), 0, "%s: %s",
                 what, err.msg);
    saliency_get(be, got, tdz_d, nk * sizeof *z);
    cr_expect_eq(compare("tdz", got, tdz, nk, exact ? 0 : 1e-12, exact ? 0 : 1e-6), 0, "%s", what);

    void *bufs[] = {z_d, dz_d, probs_d, t_d, sc_d, x_d, dx_d, tx_d, r_d, tz_d, tdz_d};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        be->release(bufs[i]);
    void *host[] = {z, tz, probs, dz, got, again, x, dx, tx, dx0, tdz, rr, rgot, t};
    for (size_t i = 0; i < sizeof host / sizeof host[0]; i++)
        free(host[i]);
}

Test(cuda, saliency_table)
{
    const struct rn_backend *be = cuda_or_skip();
    cr_assert_not_null(be->saliency, "backend %s has no saliency kernels", be->name);
    uint64_t seed = 1;
    for (int norm = 0; norm < 2; norm++)
        for (int reduce = 0; reduce < 2; reduce++)
            for (int fused = 0; fused < 2; fused++) {
                const enum rn_saliency_norm nm = norm ? RN_SALIENCY_L2 : RN_SALIENCY_L1;
                const enum rn_saliency_reduce rd =
                    reduce ? RN_SALIENCY_BACKGROUND_SHARE : RN_SALIENCY_MEAN_BACKGROUND;
                /* more pixels than threads (28 x 28), fewer (3 x 3); more samples than threads */
                check_saliency(be, 37, 10, 3, 28, 28, nm, rd, fused, seed++);
                check_saliency(be, 300, 10, 3, 3, 3, nm, rd, fused, seed++);
            }
}

/* ---- analyses on the device ------------------------------------------------ */

/* Runs the interpretability analyses on the fixture model (its trained
 * weights in tests/fixtures/interp_ref.h5) on device d; returns the run
 * file's path. */
static char *analyses_on(int d, const char *dir)
{
    char text[4096];
    const char *root = source_root();
    snprintf(text, sizeof text,
             "name: cuda_analyses\nseed: 5\n"
             "data: {dir: %s/tests/fixtures/mnist, colouring: background, bias: 0.95,"
             " val_fraction: 0.2}\n"
             "model: {include: %s/tests/fixtures/interp_model.yaml}\n"
             "load: {run: %s/tests/fixtures/interp_ref.h5}\n"
             "analyses:\n"
             "  - {type: samples, name: samples, split: test, n: 20}\n"
             "  - {type: probe, name: red1, digit: 1, colour: red, split: test}\n"
             "  - {type: filters, name: f1, node: conv1}\n"
             "  - {type: activations, name: act, node: conv2, max_maps: 4, split: test, n: 8}\n"
             "  - {type: gradcam, name: cam, node: conv3, split: test, n: 24}\n"
             "  - {type: gradcam, name: campp, node: conv3, method: gradcam++, class: true,"
             " split: test, n: 24}\n"
             "  - {type: saliency, name: sal, split: test, n: 24}\n"
             "  - {type: attention_mass, name: mass, node: conv3, n: 100}\n",
             root, root, root);
    struct rn_spec *spec = spec_in(dir, text);
    struct rn_error err = {{0}};
    char out[450];
    snprintf(out, sizeof out, "%s/%s", dir, d == RN_DEVICE_CPU ? "cpu" : "dev");
    struct rn_run_options opt = {.out_dir = out, .quiet = 1, .log = stderr, .device = d};
    struct rn_run *run = calloc(1, sizeof *run);
    cr_assert_eq(rn_run_open(run, spec, &opt, &err), 0, "%s", err.msg);
    cr_assert_eq(rn_run_analyses(run, &err), 0, "%s", err.msg);
    cr_assert_eq(run->graph.device, d, "the analyses moved the model off the device");
    char *file = malloc(RN_PATH_MAX + 16);
    snprintf(file, RN_PATH_MAX + 16, "%s/run.h5", run->dir);
    rn_run_close(run, "completed");
    free(run);
    rn_spec_free(spec);
    free(spec);
    return file;
}

/* Filters, activations, Grad-CAM, Grad-CAM++, saliency and attention mass
 * on the device against the CPU: integers (predictions, classes, images)
 * equal, floats within 1e-4 + 1e-3|x| (normalised maps lie in [0, 1]). */
Test(cuda, analyses, .timeout = 120)
{
    cuda_or_skip();
    char dir[] = "/tmp/rn_cuda_analyses_XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char *cpu = analyses_on(RN_DEVICE_CPU, dir), *got = analyses_on(dev, dir);
    struct rn_results *a, *b;
    struct rn_error err = {{0}};
    cr_assert_eq(rn_results_open(&a, cpu, &err), 0, "%s", err.msg);
    cr_assert_eq(rn_results_open(&b, got, &err), 0, "%s", err.msg);
    char **names = NULL;
    int n = 0, compared = 0;
    cr_assert_eq(rn_results_list(a, "/analyses", &names, &n, &err), 0, "%s", err.msg);
    for (int i = 0; i < n; i++) {
        char path[512];
        snprintf(path, sizeof path, "/analyses/%s", names[i]);
        static const enum rn_dtype types[] = {RN_DTYPE_F32, RN_DTYPE_F64, RN_DTYPE_I32,
                                              RN_DTYPE_U8};
        for (int t = 0; t < 4; t++) {
            void *x = NULL, *y = NULL;
            int nd, dx[4], dy[4];
            struct rn_error e = {{0}};
            if (rn_results_read(a, path, types[t], &x, &nd, dx, &e) != 0)
                continue;
            cr_assert_eq(rn_results_read(b, path, types[t], &y, &nd, dy, &e), 0, "%s: %s", path,
                         e.msg);
            size_t count = 1, bad = 0;
            for (int k = 0; k < nd; k++) {
                cr_assert_eq(dx[k], dy[k], "%s: shape", path);
                count *= (size_t)dx[k];
            }
            double worst = 0;
            for (size_t k = 0; k < count; k++) {
                double u, v;
                if (types[t] == RN_DTYPE_F32)
                    u = ((float *)x)[k], v = ((float *)y)[k];
                else if (types[t] == RN_DTYPE_F64)
                    u = ((double *)x)[k], v = ((double *)y)[k];
                else if (types[t] == RN_DTYPE_I32)
                    u = ((int32_t *)x)[k], v = ((int32_t *)y)[k];
                else
                    u = ((uint8_t *)x)[k], v = ((uint8_t *)y)[k];
                int is_float = types[t] == RN_DTYPE_F32 || types[t] == RN_DTYPE_F64;
                if (isnan(u) && isnan(v))
                    continue;
                double diff = fabs(u - v);
                worst = diff > worst ? diff : worst;
                bad += is_float ? !(diff <= 1e-4 + 1e-3 * fabs(u)) : diff != 0;
            }
            cr_log_info("%s: %zu values, largest difference %.3g", path, count, worst);
            cr_expect_eq(bad, 0, "%s: %zu of %zu values differ (largest difference %.3g)", path,
                         bad, count, worst);
            compared++;
            free(x);
            free(y);
            break;
        }
    }
    cr_expect_eq(compared, n, "%d of %d datasets compared", compared, n);
    cr_expect_gt(n, 20, "only %d analysis datasets", n);
    rn_results_free_list(names, n);
    rn_results_close(a);
    rn_results_close(b);
    free(cpu);
    free(got);
    char cmd[100];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

/* ---- the colouriser ------------------------------------------------------------- */

/* The dataset coloured by the device's kernel (rn_data_load_on) against the
 * host's: the same bytes, labels and colours, for background and stroke
 * colouring, both easy-set and hard-set rules, flat and textured noise. */
static void check_colourise(const char *data_yaml)
{
    char dir[] = "/tmp/rn_cuda_colour_XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char text[2048];
    snprintf(text, sizeof text,
             "name: cuda_colourise\nseed: 11\ndata: {dir: %s/tests/fixtures/mnist, %s}\n",
             source_root(), data_yaml);
    struct rn_spec *spec = spec_in(dir, text);
    struct rn_error err = {{0}};
    struct rn_data host, got;
    void *dev_images[RN_MAX_SPLITS];
    cr_assert_eq(rn_data_load(&spec->data, &host, &err), 0, "%s", err.msg);
    cr_assert_eq(rn_data_load_on(&spec->data, &got, dev, dev_images, &err), 0, "%s", err.msg);
    for (int k = 0; k < host.n_splits; k++) {
        const struct rn_split *a = &host.splits[k], *b = &got.splits[k];
        cr_assert_eq(a->n, b->n);
        if (a->n == 0)
            continue;
        size_t bytes = (size_t)a->n * a->c * a->h * a->w, bad = 0;
        for (size_t i = 0; i < bytes; i++)
            bad += a->images[i] != b->images[i];
        cr_expect_eq(bad, 0, "%s (%s): %zu of %zu bytes differ", a->name, data_yaml, bad, bytes);
        cr_expect_eq(memcmp(a->labels, b->labels, (size_t)a->n), 0, "%s labels", a->name);
        cr_expect_eq(memcmp(a->colours, b->colours, (size_t)a->n), 0, "%s colours", a->name);
        cr_assert_not_null(dev_images[k], "%s: no device copy", a->name);
        uint8_t *back = malloc(bytes);
        cr_assert_eq(dev_be->download(back, dev_images[k], bytes, &err), 0, "%s", err.msg);
        cr_expect_eq(memcmp(back, a->images, bytes), 0, "%s: device copy", a->name);
        free(back);
        dev_be->release(dev_images[k]);
    }
    rn_data_free(&host);
    rn_data_free(&got);
    rn_spec_free(spec);
    free(spec);
    snprintf(text, sizeof text, "rm -rf %s", dir);
    cr_assert_eq(system(text), 0);
}

Test(cuda, colourise)
{
    const struct rn_backend *be = cuda_or_skip();
    cr_assert_not_null(be->data, "backend %s has no data kernels", be->name);
    check_colourise("colouring: background, bias: 0.95, val_fraction: 0.1");
    check_colourise("colouring: background, bias: 0.5, val_fraction: 0.2, test_rule: random, "
                    "texture: [1, 1]");
    check_colourise("colouring: stroke, bias: 0.9, val_fraction: 0.0, test_rule: aligned, "
                    "texture: [0.2, 0.9], threshold: 100");
}
