/* tests/test_layers.c - every layer type: finite-difference checks of backward
 * and tangent mode (tests/gradcheck.h), a check that no registered type lacks
 * them or its CUDA kernels, hand-computed forward values, and the exact
 * build/run error messages. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <math.h>
#include <string.h>

#include "gradcheck.h"
#include "runner/backend.h"
#include "runner/layer.h"

static const struct rn_layer_type *type_of(const char *name)
{
    const struct rn_layer_type *t = rn_layer_type_find(name);
    cr_assert_not_null(t, "layer type %s is not registered", name);
    return t;
}

/* ---- gradient and tangent checks ---------------------------------------- */

enum { CHECK_BACKWARD = 1, CHECK_TANGENT = 2, CHECK_BOTH = 3 };

/* One gradient check: `type` built from kv on input shape in (twice for
 * add), run on a batch of n in training (train = 1) or eval mode, checking
 * the passes asked for; setup (may be NULL) then adjusts the initialised
 * layer. */
struct gc_case {
    const char *type;
    const char *kv;
    struct rn_shape in;
    int n, train;
    int passes; /* CHECK_BACKWARD | CHECK_TANGENT */
    void (*setup)(struct rn_layer *l);
};

/* Batchnorm with random gamma/beta and, for eval, non-trivial running
 * statistics. */
static void bn_setup(struct rn_layer *l)
{
    gc_randomize_params(l, -1.5f, 1.5f, 5);
    struct rn_param *rm = rn_layer_param(l, "running_mean"), *rv = rn_layer_param(l, "running_var");
    cr_assert(rm && rv);
    for (int c = 0; c < l->in[0].c; c++) {
        rm->value.data[c] = 0.1f * (float)c - 0.2f;
        rv->value.data[c] = 0.5f + 0.25f * (float)c;
    }
}

/* Every gradient check of the layer types, each row its own test
 * (gradcheck::cases below). registry::every_layer_type_has_a_gradient_check
 * asks for rows checking both passes of every registered type. */
/* clang-format off */
static const struct gc_case gc_cases[] = {
    {"conv2d", "filters=4,kernel=3,padding=1", {3, 6, 6}, 2, 1, CHECK_BOTH, NULL},
    {"conv2d", "filters=3,kernel=3,stride=2", {2, 7, 7}, 2, 1, CHECK_BOTH, NULL},
    {"conv2d", "filters=2,kernel=3,stride=2,padding=1,bias=false", {3, 8, 8}, 2, 1, CHECK_BOTH,
     NULL},
    {"conv2d", "filters=5,kernel=1", {4, 5, 5}, 3, 1, CHECK_BOTH, NULL},
    {"conv2d", "filters=3,kernel=5,padding=2", {1, 6, 6}, 1, 1, CHECK_BOTH, NULL},
    {"linear", "units=5", {12, 1, 1}, 3, 1, CHECK_BOTH, NULL},
    {"linear", "units=3,bias=false", {7, 1, 1}, 2, 1, CHECK_BOTH, NULL},
    {"relu", "", {3, 5, 5}, 2, 1, CHECK_BOTH, NULL},
    {"relu", "", {10, 1, 1}, 3, 0, CHECK_BOTH, NULL},
    {"maxpool2d", "", {3, 6, 6}, 2, 1, CHECK_BOTH, NULL},
    {"maxpool2d", "kernel=3,stride=2,padding=1", {2, 7, 7}, 2, 1, CHECK_BOTH, NULL},
    {"maxpool2d", "kernel=3,stride=1", {2, 6, 5}, 2, 1, CHECK_BOTH, NULL},
    {"maxpool2d", "kernel=2,stride=2", {2, 7, 7}, 1, 1, CHECK_BOTH, NULL},
    {"avgpool2d", "", {3, 6, 6}, 2, 1, CHECK_BOTH, NULL},
    {"avgpool2d", "kernel=3,stride=2,padding=1", {2, 7, 7}, 2, 1, CHECK_BOTH, NULL},
    {"avgpool2d", "kernel=3,stride=1,padding=1", {2, 5, 6}, 2, 1, CHECK_BOTH, NULL},
    {"global_avg_pool", "", {4, 5, 3}, 2, 1, CHECK_BOTH, NULL},
    {"global_avg_pool", "", {6, 1, 1}, 2, 1, CHECK_BOTH, NULL},
    {"flatten", "", {3, 4, 2}, 2, 1, CHECK_BOTH, NULL},
    {"dropout", "p=0.3", {3, 4, 4}, 2, 1, CHECK_BOTH, NULL},
    {"dropout", "p=0.5", {20, 1, 1}, 3, 1, CHECK_BOTH, NULL},
    {"dropout", "p=0.3", {3, 4, 4}, 2, 0, CHECK_BOTH, NULL},
    /* tangents only in eval mode; one sample: statistics over H*W only */
    {"batchnorm", "", {3, 4, 4}, 2, 1, CHECK_BACKWARD, bn_setup},
    {"batchnorm", "", {3, 4, 4}, 2, 0, CHECK_BOTH, bn_setup},
    {"batchnorm", "", {2, 2, 3}, 1, 1, CHECK_BACKWARD, bn_setup},
    {"batchnorm", "", {5, 1, 1}, 4, 1, CHECK_BACKWARD, bn_setup},
    {"batchnorm", "", {5, 1, 1}, 4, 0, CHECK_BOTH, bn_setup},
    {"add", "", {3, 4, 4}, 2, 1, CHECK_BOTH, NULL},
    {"add", "", {5, 1, 1}, 3, 0, CHECK_BOTH, NULL},
    /* grl's backward is -alpha times the gradient of its identity forward:
     * alpha = -1 makes it the true gradient, so the finite differences apply
     * (the range check is the spec's, not the layer's); its tangents are the
     * same maps whatever alpha. tests/test_saliency.c checks the reversal. */
    {"grl", "alpha=-1", {3, 4, 5}, 2, 1, CHECK_BACKWARD, NULL},
    {"grl", "alpha=0.7", {3, 4, 5}, 2, 1, CHECK_TANGENT, NULL},
    {"grl", "alpha=0.7", {3, 4, 5}, 3, 0, CHECK_TANGENT, NULL},
};
/* clang-format on */
#define N_GC_CASES ((int)(sizeof gc_cases / sizeof gc_cases[0]))

/* The registered layer types that have no passes of their own, so neither a
 * gradient check nor CUDA kernels, each with the reason. */
static const struct {
    const char *type, *why;
} no_passes[] = {
    {"basic_block", "the graph expands it into conv2d, batchnorm, relu and add nodes (each "
                    "checked); it never runs as one layer"},
};

static const char *no_passes_why(const char *type)
{
    for (size_t i = 0; i < sizeof no_passes / sizeof no_passes[0]; i++)
        if (!strcmp(no_passes[i].type, type))
            return no_passes[i].why;
    return NULL;
}

/* Builds c->type with max_n = n + 1, so the checks also see that nothing
 * past the batch is written, and runs the checks c asks for. */
static void check_case(const struct gc_case *c)
{
    struct rn_layer l;
    struct rn_error err = {{0}};
    struct rn_shape ins[2] = {c->in, c->in};
    const struct rn_layer_type *t = type_of(c->type);
    const char *mode = c->train ? "train" : "eval";
    cr_assert_eq(gc_build(&l, t, c->kv, ins, t->n_inputs, c->n + 1, &err), 0, "%s {%s}: %s",
                 c->type, c->kv, err.msg);
    if (c->setup)
        c->setup(&l);
    int fb = c->passes & CHECK_BACKWARD ? gc_check_backward(&l, c->n, c->train, 11) : 0;
    int ft = c->passes & CHECK_TANGENT ? gc_check_tangent(&l, c->n, c->train, 12) : 0;
    rn_layer_free(&l);
    cr_expect_eq(fb, 0, "%s {%s} (%d,%d,%d) x %d %s: %d backward mismatches (see stderr)", c->type,
                 c->kv, c->in.c, c->in.h, c->in.w, c->n, mode, fb);
    cr_expect_eq(ft, 0, "%s {%s} (%d,%d,%d) x %d %s: %d tangent mismatches (see stderr)", c->type,
                 c->kv, c->in.c, c->in.h, c->in.w, c->n, mode, ft);
}

static void check_layer(const char *type, const char *kv, struct rn_shape in, int n, int train,
                        int passes)
{
    const struct gc_case c = {type, kv, in, n, train, passes, NULL};
    check_case(&c);
}

static struct rn_shape shp(int c, int h, int w)
{
    struct rn_shape s = {c, h, w};
    return s;
}

/* Indices, not the rows: Criterion copies a parameter into the test's worker
 * process, and wants memory behind a parameter's pointers from cr_malloc. */
ParameterizedTestParameters(gradcheck, cases)
{
    static int idx[N_GC_CASES];
    for (int i = 0; i < N_GC_CASES; i++)
        idx[i] = i;
    return cr_make_param_array(int, idx, N_GC_CASES);
}

ParameterizedTest(int *i, gradcheck, cases)
{
    cr_assert(*i >= 0 && *i < N_GC_CASES);
    check_case(&gc_cases[*i]);
}

/* A type that writes its input gradients when told (backward_assigns,
 * ctx->dx_assign: the pooled backward's unzeroed buffers) writes exactly
 * what adding into zeros gives, bit for bit, whatever the buffer held
 * (NaN here), and its parameter gradients still add. Every gradient-check
 * row of such a type, every subset of its inputs. */
static int assigning_rows(void);

Test(backward, assigning_equals_adding_into_zeros)
{
    int checked = assigning_rows(); /* convolutions on oneDNN where built with it */
    setenv("RN_CPU_CONV", "ref", 1);
    checked += assigning_rows(); /* and on the im2col reference */
    unsetenv("RN_CPU_CONV");
    cr_assert_geq(checked, 20, "%d rows checked", checked); /* conv, relu, batchnorm, add rows */
}

static int assigning_rows(void)
{
    int checked = 0;
    for (int c = 0; c < N_GC_CASES; c++) {
        const struct gc_case *gc = &gc_cases[c];
        const struct rn_layer_type *t = type_of(gc->type);
        if (!t->backward_assigns || !(gc->passes & CHECK_BACKWARD))
            continue;
        struct rn_layer l;
        struct rn_error err = {{0}};
        struct rn_shape ins[2] = {gc->in, gc->in};
        cr_assert_eq(gc_build(&l, t, gc->kv, ins, t->n_inputs, gc->n, &err), 0, "%s", err.msg);
        if (gc->setup)
            gc->setup(&l);
        struct gc_ws w;
        cr_assert_eq(gc_ws_init(&w, &l, gc->n, gc->train, 17), 0);
        cr_assert_eq(gc_forward(&w), 0);
        const size_t len = gc_grad_len(&w);
        double *want = malloc(len * sizeof *want), *got = malloc(len * sizeof *got);
        cr_assert(want && got);
        gc_reset_grads(&w);
        for (int i = 0; i < l.n_in; i++)
            for (size_t j = 0; j < rn_tensor_numel(&w.dx[i]); j++)
                w.dx[i].data[j] = 0.0f;
        cr_assert_eq(gc_backward(&w, &w.r, 1), 0);
        for (int i = 0; i < l.n_in; i++) /* gc_gather subtracts GC_ACC_START */
            for (size_t j = 0; j < rn_tensor_numel(&w.dx[i]); j++)
                w.dx[i].data[j] += GC_ACC_START;
        gc_gather(&w, w.dx, want);
        for (unsigned mask = 1; mask < 1u << l.n_in; mask++) {
            gc_reset_grads(&w);
            for (int i = 0; i < l.n_in; i++)
                for (size_t j = 0; (mask >> i & 1) && j < rn_tensor_numel(&w.dx[i]); j++)
                    w.dx[i].data[j] = NAN;
            w.ctx.dx_assign = mask;
            cr_assert_eq(gc_backward(&w, &w.r, 1), 0);
            w.ctx.dx_assign = 0;
            for (int i = 0; i < l.n_in; i++)
                for (size_t j = 0; (mask >> i & 1) && j < rn_tensor_numel(&w.dx[i]); j++)
                    w.dx[i].data[j] += GC_ACC_START;
            gc_gather(&w, w.dx, got);
            for (size_t k = 0; k < len; k++)
                cr_assert(memcmp(&want[k], &got[k], sizeof want[k]) == 0,
                          "%s {%s} %s, dx_assign %u: gradient element %zu is %.9g, adding "
                          "into zeros gives %.9g",
                          gc->type, gc->kv, gc->train ? "train" : "eval", mask, k, got[k], want[k]);
        }
        free(want);
        free(got);
        gc_ws_free(&w);
        rn_layer_free(&l);
        checked++;
    }
    return checked;
}

/* Shapes above the layers' OpenMP thresholds, so the threaded loops are
 * checked too (OMP_NUM_THREADS=2 under ctest). */
Test(gradcheck, large_shapes_take_the_threaded_path)
{
    struct rn_shape big = shp(4, 16, 16); /* x 65 samples: 66560 elements */
    gc_subset = 6;
    check_layer("relu", "", big, 65, 1, CHECK_BOTH);
    check_layer("maxpool2d", "kernel=3,stride=2,padding=1", big, 65, 1, CHECK_BOTH);
    check_layer("avgpool2d", "kernel=2", big, 65, 1, CHECK_BOTH);
    check_layer("global_avg_pool", "", big, 65, 1, CHECK_BOTH);
    check_layer("dropout", "p=0.2", big, 65, 1, CHECK_BOTH);
    check_layer("add", "", big, 65, 1, CHECK_BOTH);
    check_layer("batchnorm", "", big, 65, 1, CHECK_BACKWARD);
    check_layer("batchnorm", "", big, 65, 0, CHECK_BOTH);
    gc_subset = GC_SUBSET;
}

/* The harness must be able to fail: a layer whose backward is off by a
 * factor is caught. */
static int bad_relu_backward(struct rn_layer *l, const struct rn_tensor *const *x,
                             const struct rn_tensor *y, const struct rn_tensor *dy,
                             struct rn_tensor *const *dx, const struct rn_ctx *ctx,
                             struct rn_error *err)
{
    for (size_t i = 0; dx[0] && i < rn_tensor_numel(x[0]); i++)
        dx[0]->data[i] += x[0]->data[i] > 0 ? 0.9f * dy->data[i] : 0.0f;
    return 0;
}

static int overwriting_backward(struct rn_layer *l, const struct rn_tensor *const *x,
                                const struct rn_tensor *y, const struct rn_tensor *dy,
                                struct rn_tensor *const *dx, const struct rn_ctx *ctx,
                                struct rn_error *err)
{
    for (size_t i = 0; dx[0] && i < rn_tensor_numel(x[0]); i++)
        dx[0]->data[i] = x[0]->data[i] > 0 ? dy->data[i] : 0.0f;
    return 0;
}

Test(gradcheck, catches_wrong_gradients)
{
    struct rn_layer_type bad = *type_of("relu");
    struct rn_layer l;
    struct rn_error err = {{0}};
    struct rn_shape in = shp(2, 3, 3);
    bad.backward = bad_relu_backward;
    gc_quiet = 1;
    cr_assert_eq(gc_build(&l, &bad, "", &in, 1, 2, &err), 0, "%s", err.msg);
    cr_expect_gt(gc_check_backward(&l, 2, 1, 3), 0);
    rn_layer_free(&l);
    bad.backward = overwriting_backward;
    cr_assert_eq(gc_build(&l, &bad, "", &in, 1, 2, &err), 0, "%s", err.msg);
    cr_expect_gt(gc_check_backward(&l, 2, 1, 3), 0, "an overwriting backward must fail");
    gc_quiet = 0;
    rn_layer_free(&l);
}

/* ---- every type has every pass, a gradient check and CUDA kernels -------- */

Test(registry, every_layer_type_is_complete)
{
    for (int i = 0; i < rn_n_layer_types; i++) {
        const struct rn_layer_type *t = rn_layer_types[i];
        if (no_passes_why(t->name))
            continue;
        cr_expect(t->build && t->forward && t->backward && t->tangent_forward &&
                      t->tangent_backward,
                  "layer type %s lacks build/forward/backward/tangent", t->name);
    }
}

/* A new layer type cannot go without its gradient check: every registered
 * type has rows in gc_cases checking its backward and its tangent passes,
 * or an entry in no_passes saying why it has none. */
Test(registry, every_layer_type_has_a_gradient_check)
{
    for (int i = 0; i < rn_n_layer_types; i++) {
        const char *name = rn_layer_types[i]->name, *why = no_passes_why(name);
        int passes = 0;
        for (int k = 0; k < N_GC_CASES; k++)
            if (!strcmp(gc_cases[k].type, name))
                passes |= gc_cases[k].passes;
        if (why)
            cr_expect_eq(passes, 0,
                         "layer type %s has gradient checks but no_passes says it has no passes "
                         "(%s)",
                         name, why);
        else
            cr_expect_eq(passes, CHECK_BOTH,
                         "layer type %s has no gradient check of its %s: add a row to gc_cases "
                         "(tests/test_layers.c)",
                         name,
                         passes == 0                ? "backward and tangent passes"
                         : passes == CHECK_BACKWARD ? "tangent passes"
                                                    : "backward pass");
    }
    for (size_t k = 0; k < sizeof no_passes / sizeof no_passes[0]; k++)
        cr_expect_not_null(rn_layer_type_find(no_passes[k].type),
                           "no_passes names %s, which is not a registered layer type",
                           no_passes[k].type);
}

/* ... nor without its GPU side: in a build with the CUDA backend, every
 * registered type but those of no_passes has an entry with every pass in
 * the CUDA table (kernels/cuda/layers/registry.c). A table lookup: no GPU
 * needed. */
Test(registry, every_layer_type_has_cuda_kernels)
{
    const struct rn_backend *cu = rn_backend_cuda();
    if (!cu)
        cr_skip_test("built without the CUDA backend: no CUDA layer table to check");
    for (int i = 0; i < rn_n_layer_types; i++) {
        const char *name = rn_layer_types[i]->name, *why = no_passes_why(name);
        const struct rn_layer_kernels *k = cu->layer(name);
        if (why) {
            cr_expect_null(k,
                           "layer type %s has CUDA kernels but no_passes says it has no passes "
                           "(%s)",
                           name, why);
            continue;
        }
        if (!k) {
            cr_expect_not_null(k,
                               "layer type %s has no entry in the CUDA table "
                               "(kernels/cuda/layers/registry.c)",
                               name);
            continue;
        }
        cr_expect_str_eq(k->type, name, "the CUDA table answers %s with %s's kernels", name,
                         k->type);
        cr_expect(k->prepare && k->release && k->forward && k->backward && k->tangent_forward &&
                      k->tangent_backward,
                  "the CUDA kernels of layer type %s lack prepare/release/forward/backward/"
                  "tangent",
                  name);
    }
}

/* ---- forward values against hand-computed cases ------------------------- */

struct fixture {
    struct rn_layer l;
    struct rn_tensor x, y, dy, dx;
    struct rn_ctx ctx;
};

/* Builds type on a (n, c, h, w) input holding xv and runs forward. */
static void fx_run(struct fixture *f, const char *type, const char *kv, int n, int c, int h, int w,
                   const float *xv, int train)
{
    struct rn_error err = {{0}};
    struct rn_shape in = shp(c, h, w);
    memset(f, 0, sizeof *f);
    cr_assert_eq(gc_build(&f->l, type_of(type), kv, &in, 1, n, &err), 0, "%s", err.msg);
    struct rn_shape o = f->l.out;
    cr_assert_eq(rn_tensor_init(&f->x, n, c, h, w, &err), 0);
    cr_assert_eq(rn_tensor_init(&f->dx, n, c, h, w, &err), 0);
    cr_assert_eq(rn_tensor_init(&f->y, n, o.c, o.h, o.w, &err), 0);
    cr_assert_eq(rn_tensor_init(&f->dy, n, o.c, o.h, o.w, &err), 0);
    if (xv)
        memcpy(f->x.data, xv, rn_tensor_numel(&f->x) * sizeof(float));
    f->ctx.train = train;
    f->ctx.seed = 7;
    f->ctx.step = 5;
    f->ctx.node = 2;
    const struct rn_tensor *xs[1] = {&f->x};
    cr_assert_eq(f->l.type->forward(&f->l, xs, &f->y, &f->ctx, &err), 0, "%s", err.msg);
    cr_assert_eq(f->y.n, n);
}

static void fx_backward(struct fixture *f, const float *dyv)
{
    struct rn_error err = {{0}};
    const struct rn_tensor *xs[1] = {&f->x};
    struct rn_tensor *dxs[1] = {&f->dx};
    memcpy(f->dy.data, dyv, rn_tensor_numel(&f->dy) * sizeof(float));
    cr_assert_eq(f->l.type->backward(&f->l, xs, &f->y, &f->dy, dxs, &f->ctx, &err), 0, "%s",
                 err.msg);
}

static void fx_free(struct fixture *f)
{
    rn_layer_free(&f->l);
    rn_tensor_free(&f->x);
    rn_tensor_free(&f->y);
    rn_tensor_free(&f->dy);
    rn_tensor_free(&f->dx);
}

static void expect_values(const float *got, const float *want, int n, float tol, const char *what)
{
    for (int i = 0; i < n; i++)
        cr_expect(fabsf(got[i] - want[i]) <= tol, "%s[%d] = %.7g, expected %.7g", what, i, got[i],
                  want[i]);
}

Test(forward, relu)
{
    struct fixture f;
    const float x[4] = {-1.0f, 0.0f, 2.5f, -0.0f};
    fx_run(&f, "relu", "", 1, 4, 1, 1, x, 1);
    const float y[4] = {0.0f, 0.0f, 2.5f, 0.0f};
    expect_values(f.y.data, y, 4, 0.0f, "y");
    const float dy[4] = {1.0f, 1.0f, 1.0f, 1.0f}, dx[4] = {0.0f, 0.0f, 1.0f, 0.0f};
    fx_backward(&f, dy);
    expect_values(f.dx.data, dx, 4, 0.0f, "dx");
    fx_free(&f);
}

/* Ties route the gradient to the first maximum in row-major window order. */
Test(forward, maxpool_ties_go_to_the_first_maximum)
{
    struct fixture f;
    const float x[16] = {
        1, 1, 0,  2,  /* */
        1, 1, 2,  2,  /* */
        3, 0, -1, -1, /* */
        0, 3, -1, -1,
    };
    fx_run(&f, "maxpool2d", "kernel=2", 1, 1, 4, 4, x, 1);
    cr_assert_eq(f.l.out.h, 2);
    const float y[4] = {1, 2, 3, -1};
    expect_values(f.y.data, y, 4, 0.0f, "y");
    const float dy[4] = {1, 2, 3, 4};
    fx_backward(&f, dy);
    float dx[16] = {0};
    dx[0] = 1;  /* (0,0), not (0,1), (1,0), (1,1) */
    dx[3] = 2;  /* (0,3), not (1,2), (1,3) */
    dx[8] = 3;  /* (2,0), not (3,1) */
    dx[10] = 4; /* (2,2) of four equal -1 */
    expect_values(f.dx.data, dx, 16, 0.0f, "dx");
    fx_free(&f);

    /* Overlapping windows on a constant image: each window's first element. */
    const float c[9] = {5, 5, 5, 5, 5, 5, 5, 5, 5};
    fx_run(&f, "maxpool2d", "kernel=2,stride=1", 1, 1, 3, 3, c, 1);
    const float dy2[4] = {1, 10, 100, 1000}, dx2[9] = {1, 10, 0, 100, 1000, 0, 0, 0, 0};
    fx_backward(&f, dy2);
    expect_values(f.dx.data, dx2, 9, 0.0f, "dx");
    fx_free(&f);
}

/* Padding acts as -inf: an all-negative image keeps its values. */
Test(forward, maxpool_padding_is_minus_infinity)
{
    struct fixture f;
    const float x[9] = {-5, -5, -5, -5, -5, -5, -5, -5, -5};
    fx_run(&f, "maxpool2d", "kernel=3,stride=2,padding=1", 1, 1, 3, 3, x, 1);
    cr_assert_eq(f.l.out.h, 2);
    cr_assert_eq(f.l.out.w, 2);
    const float y[4] = {-5, -5, -5, -5};
    expect_values(f.y.data, y, 4, 0.0f, "y");
    const float dy[4] = {1, 2, 3, 4}, dx[9] = {1, 2, 0, 3, 4, 0, 0, 0, 0};
    fx_backward(&f, dy);
    expect_values(f.dx.data, dx, 9, 0.0f, "dx");
    fx_free(&f);
}

Test(forward, avgpool)
{
    struct fixture f;
    float x[16];
    for (int i = 0; i < 16; i++)
        x[i] = (float)i;
    fx_run(&f, "avgpool2d", "kernel=2", 1, 1, 4, 4, x, 1);
    const float y[4] = {2.5f, 4.5f, 10.5f, 12.5f};
    expect_values(f.y.data, y, 4, 1e-6f, "y");
    fx_free(&f);

    /* count_include_pad: a corner window holds 4 real ones of 9. */
    const float ones[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    fx_run(&f, "avgpool2d", "kernel=3,stride=2,padding=1", 1, 1, 3, 3, ones, 1);
    const float y2[4] = {4.f / 9, 4.f / 9, 4.f / 9, 4.f / 9};
    expect_values(f.y.data, y2, 4, 1e-6f, "y");
    const float dy[4] = {1, 1, 1, 1};
    const float dx[9] = {1.f / 9, 2.f / 9, 1.f / 9, 2.f / 9, 4.f / 9,
                         2.f / 9, 1.f / 9, 2.f / 9, 1.f / 9};
    fx_backward(&f, dy);
    expect_values(f.dx.data, dx, 9, 1e-6f, "dx");
    fx_free(&f);
}

Test(forward, global_avg_pool_and_flatten)
{
    struct fixture f;
    const float x[8] = {1, 2, 3, 4, -1, -1, -1, 3};
    fx_run(&f, "global_avg_pool", "", 1, 2, 2, 2, x, 1);
    cr_assert(f.l.out.c == 2 && f.l.out.h == 1 && f.l.out.w == 1);
    const float y[2] = {2.5f, 0.0f};
    expect_values(f.y.data, y, 2, 1e-6f, "y");
    fx_free(&f);

    fx_run(&f, "flatten", "", 1, 2, 2, 2, x, 1);
    cr_assert(f.l.out.c == 8 && f.l.out.h == 1 && f.l.out.w == 1);
    expect_values(f.y.data, x, 8, 0.0f, "y");
    fx_free(&f);
}

/* N=2, C=2, H=1, W=2. Channel 0 holds 1,2,3,6 (mean 3, biased var 3.5,
 * unbiased 14/3); channel 1 holds 0,0,0,4 (mean 1, var 3, unbiased 4). */
Test(forward, batchnorm_running_stats)
{
    struct fixture f;
    const float x[8] = {1, 2, 0, 0, 3, 6, 0, 4};
    fx_run(&f, "batchnorm", "momentum=0.1", 2, 2, 1, 2, x, 1);
    const double eps = 1e-5, s0 = 1.0 / sqrt(3.5 + eps), s1 = 1.0 / sqrt(3.0 + eps);
    const float y[8] = {
        (float)(-2 * s0), (float)(-1 * s0), (float)(-1 * s1), (float)(-1 * s1), 0.0f,
        (float)(3 * s0),  (float)(-1 * s1), (float)(3 * s1)};
    expect_values(f.y.data, y, 8, 1e-5f, "y");
    const float rm[2] = {0.3f, 0.1f}, rv[2] = {0.9f + 0.1f * 14.0f / 3.0f, 0.9f + 0.1f * 4.0f};
    expect_values(rn_layer_param(&f.l, "running_mean")->value.data, rm, 2, 1e-6f, "running_mean");
    expect_values(rn_layer_param(&f.l, "running_var")->value.data, rv, 2, 1e-6f, "running_var");
    cr_expect_eq(rn_layer_param(&f.l, "num_batches_tracked")->value.data[0], 1.0f);

    /* Eval uses the running statistics and leaves them alone. */
    struct rn_error err = {{0}};
    const struct rn_tensor *xs[1] = {&f.x};
    f.ctx.train = 0;
    cr_assert_eq(f.l.type->forward(&f.l, xs, &f.y, &f.ctx, &err), 0, "%s", err.msg);
    for (int i = 0; i < 8; i++) {
        int c = (i / 2) % 2;
        float want = (float)((x[i] - rm[c]) / sqrt(rv[c] + eps));
        cr_expect(fabsf(f.y.data[i] - want) <= 1e-5f, "eval y[%d] = %g, expected %g", i,
                  f.y.data[i], want);
    }
    expect_values(rn_layer_param(&f.l, "running_mean")->value.data, rm, 2, 0.0f, "running_mean");
    cr_expect_eq(rn_layer_param(&f.l, "num_batches_tracked")->value.data[0], 1.0f);
    fx_free(&f);
}

Test(forward, batchnorm_params_follow_pytorch)
{
    struct rn_layer l;
    struct rn_error err = {{0}};
    struct rn_shape in = shp(3, 4, 4);
    cr_assert_eq(gc_build(&l, type_of("batchnorm"), "", &in, 1, 2, &err), 0, "%s", err.msg);
    static const char *names[5] = {"weight", "bias", "running_mean", "running_var",
                                   "num_batches_tracked"};
    static const int ndim[5] = {1, 1, 1, 1, 0}, trainable[5] = {1, 1, 0, 0, 0};
    static const float value[5] = {1, 0, 0, 1, 0};
    cr_assert_eq(l.n_params, 5);
    for (int i = 0; i < 5; i++) {
        const struct rn_param *p = &l.params[i];
        cr_expect_str_eq(p->name, names[i]);
        cr_expect_eq(p->ndim, ndim[i], "%s ndim", names[i]);
        cr_expect_eq(p->trainable, trainable[i], "%s trainable", names[i]);
        cr_expect_eq(p->is_int64, i == 4, "%s is_int64", names[i]);
        cr_expect_eq(rn_tensor_numel(&p->value), i == 4 ? 1u : 3u, "%s numel", names[i]);
        cr_expect_eq(p->grad.data != NULL, trainable[i], "%s grad", names[i]);
        for (size_t j = 0; j < rn_tensor_numel(&p->value); j++)
            cr_expect_eq(p->value.data[j], value[i], "%s[%zu]", names[i], j);
    }
    rn_layer_free(&l);
}

Test(forward, dropout_scale_keep_rate_and_mask)
{
    struct fixture f;
    const int C = 1000, H = 10, W = 10, N = C * H * W;
    const double p = 0.3;
    float *ones = malloc(N * sizeof *ones);
    for (int i = 0; i < N; i++)
        ones[i] = 1.0f;
    fx_run(&f, "dropout", "p=0.3", 1, C, H, W, ones, 1);
    const float scale = (float)(1.0 / (1.0 - p));
    struct rn_rng r;
    rn_rng_init(&r, 7, RN_STREAM_DROPOUT, 5 * 1024 + 2);
    int kept = 0, wrong = 0;
    for (int i = 0; i < N; i++) {
        float want = rn_rng_uniform(&r) >= p ? scale : 0.0f;
        wrong += f.y.data[i] != want;
        kept += f.y.data[i] != 0.0f;
    }
    cr_expect_eq(wrong, 0, "%d elements differ from the (seed, DROPOUT, step*1024+node) mask",
                 wrong);
    cr_expect(fabs((double)kept / N - 0.7) < 0.01, "keep rate %g, expected ~0.7", (double)kept / N);

    /* Backward uses the same mask. */
    fx_backward(&f, ones);
    cr_expect_eq(memcmp(f.dx.data, f.y.data, N * sizeof(float)), 0);

    /* Another step, another mask. */
    struct rn_error err = {{0}};
    const struct rn_tensor *xs[1] = {&f.x};
    float *first = malloc(N * sizeof *first);
    memcpy(first, f.y.data, N * sizeof *first);
    f.ctx.step = 6;
    cr_assert_eq(f.l.type->forward(&f.l, xs, &f.y, &f.ctx, &err), 0);
    cr_expect_neq(memcmp(first, f.y.data, N * sizeof(float)), 0);
    f.ctx.step = 5;
    cr_assert_eq(f.l.type->forward(&f.l, xs, &f.y, &f.ctx, &err), 0);
    cr_expect_eq(memcmp(first, f.y.data, N * sizeof(float)), 0, "same step, same mask");

    /* Eval: the identity. */
    f.ctx.train = 0;
    cr_assert_eq(f.l.type->forward(&f.l, xs, &f.y, &f.ctx, &err), 0);
    cr_expect_eq(memcmp(ones, f.y.data, N * sizeof(float)), 0);
    free(first);
    free(ones);
    fx_free(&f);
}

/* ---- error messages ----------------------------------------------------- */

static void expect_build_error(const char *type, const char *kv, struct rn_shape a,
                               struct rn_shape b, int n_in, const char *want)
{
    struct rn_layer l;
    struct rn_error err = {{0}};
    struct rn_shape ins[2] = {a, b};
    cr_assert_eq(gc_build(&l, type_of(type), kv, ins, n_in, 2, &err), -1, "%s {%s} built", type,
                 kv);
    cr_expect_str_eq(err.msg, want);
}

Test(errors, build)
{
    expect_build_error("add", "", shp(4, 8, 8), shp(4, 4, 4), 2,
                       "add needs two inputs of the same shape, got (4,8,8) and (4,4,4)");
    expect_build_error("add", "", shp(4, 8, 8), shp(4, 8, 8), 1,
                       "add needs two inputs (from: [a, b]), got 1");
    expect_build_error("maxpool2d", "kernel=3,padding=2", shp(4, 8, 8), shp(0, 0, 0), 1,
                       "padding 2 is more than half the kernel 3; PyTorch requires padding <= "
                       "kernel/2, lower padding");
    expect_build_error("maxpool2d", "kernel=3", shp(8, 1, 1), shp(0, 0, 0), 1,
                       "kernel 3 (padding 0) does not fit the (8,1,1) input; use a smaller kernel "
                       "or remove a pooling layer before it");
    expect_build_error("avgpool2d", "kernel=2,padding=2", shp(4, 8, 8), shp(0, 0, 0), 1,
                       "padding 2 is more than half the kernel 2; PyTorch requires padding <= "
                       "kernel/2, lower padding");
    expect_build_error("avgpool2d", "kernel=5,padding=1", shp(2, 2, 9), shp(0, 0, 0), 1,
                       "kernel 5 (padding 1) does not fit the (2,2,9) input; use a smaller kernel "
                       "or remove a pooling layer before it");
}

Test(errors, batchnorm_batch_of_one_in_training)
{
    struct rn_layer l;
    struct rn_error err = {{0}};
    struct rn_shape in = shp(4, 1, 1);
    struct rn_tensor x, y;
    cr_assert_eq(gc_build(&l, type_of("batchnorm"), "", &in, 1, 2, &err), 0, "%s", err.msg);
    cr_assert_eq(rn_tensor_init(&x, 1, 4, 1, 1, &err), 0);
    cr_assert_eq(rn_tensor_init(&y, 2, 4, 1, 1, &err), 0);
    const struct rn_tensor *xs[1] = {&x};
    struct rn_ctx ctx = {.train = 1};
    cr_expect_eq(l.type->forward(&l, xs, &y, &ctx, &err), -1);
    cr_expect_str_eq(err.msg, "batchnorm 't' in training mode needs more than one value per "
                              "channel (batch of 1)");
    ctx.train = 0;
    cr_expect_eq(l.type->forward(&l, xs, &y, &ctx, &err), 0, "eval with one sample is fine");
    rn_tensor_free(&x);
    rn_tensor_free(&y);
    rn_layer_free(&l);
}

Test(errors, batchnorm_tangent_in_training)
{
    struct rn_layer l;
    struct rn_error err = {{0}};
    struct rn_shape in = shp(2, 3, 3);
    struct rn_tensor x, y, t;
    cr_assert_eq(gc_build(&l, type_of("batchnorm"), "", &in, 1, 2, &err), 0, "%s", err.msg);
    cr_assert_eq(rn_tensor_init(&x, 2, 2, 3, 3, &err), 0);
    cr_assert_eq(rn_tensor_init(&y, 2, 2, 3, 3, &err), 0);
    cr_assert_eq(rn_tensor_init(&t, 2, 2, 3, 3, &err), 0);
    for (int i = 0; i < 36; i++)
        x.data[i] = (float)(i % 7);
    const struct rn_tensor *xs[1] = {&x}, *ts[1] = {&x};
    struct rn_tensor *tds[1] = {&t};
    struct rn_ctx ctx = {.train = 1};
    cr_assert_eq(l.type->forward(&l, xs, &y, &ctx, &err), 0, "%s", err.msg);
    const char *want = "batchnorm 't': tangent mode in training mode is not supported (use eval "
                       "mode or remove batchnorm for saliency losses)";
    cr_expect_eq(l.type->tangent_forward(&l, xs, ts, &t, &ctx, &err), -1);
    cr_expect_str_eq(err.msg, want);
    memset(err.msg, 0, sizeof err.msg);
    cr_expect_eq(l.type->tangent_backward(&l, xs, ts, &y, &y, tds, &ctx, &err), -1);
    cr_expect_str_eq(err.msg, want);
    rn_tensor_free(&x);
    rn_tensor_free(&y);
    rn_tensor_free(&t);
    rn_layer_free(&l);
}
