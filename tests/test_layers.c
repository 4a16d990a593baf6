/* tests/test_layers.c - every layer type: finite-difference checks of backward
 * and tangent mode (tests/gradcheck.h), hand-computed forward values, and the
 * exact build/run error messages. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "gradcheck.h"
#include "runner/layer.h"

static const struct rn_layer_type *type_of(const char *name)
{
    const struct rn_layer_type *t = rn_layer_type_find(name);
    cr_assert_not_null(t, "layer type %s is not registered", name);
    return t;
}

/* Builds `type` on input shape in (twice for add), with max_n = n + 1 so the
 * checks also see that nothing past the batch is written, and runs the
 * backward check and, if asked, the tangent check. */
static void check_layer(const char *type, const char *kv, struct rn_shape in, int n, int train,
                        int tangent)
{
    struct rn_layer l;
    struct rn_error err = {{0}};
    struct rn_shape ins[2] = {in, in};
    const struct rn_layer_type *t = type_of(type);
    cr_assert_eq(gc_build(&l, t, kv, ins, t->n_inputs, n + 1, &err), 0, "%s {%s}: %s", type, kv,
                 err.msg);
    int fb = gc_check_backward(&l, n, train, 11);
    int ft = tangent ? gc_check_tangent(&l, n, train, 12) : 0;
    rn_layer_free(&l);
    cr_expect_eq(fb, 0, "%s {%s} %s: %d backward mismatches (see stderr)", type, kv,
                 train ? "train" : "eval", fb);
    cr_expect_eq(ft, 0, "%s {%s} %s: %d tangent mismatches (see stderr)", type, kv,
                 train ? "train" : "eval", ft);
}

static struct rn_shape shp(int c, int h, int w)
{
    struct rn_shape s = {c, h, w};
    return s;
}

/* ---- gradient and tangent checks ---------------------------------------- */

Test(gradcheck, conv2d)
{
    check_layer("conv2d", "filters=4,kernel=3,padding=1", shp(3, 6, 6), 2, 1, 1);
    check_layer("conv2d", "filters=3,kernel=3,stride=2", shp(2, 7, 7), 2, 1, 1);
    check_layer("conv2d", "filters=2,kernel=3,stride=2,padding=1,bias=false", shp(3, 8, 8), 2, 1,
                1);
    check_layer("conv2d", "filters=5,kernel=1", shp(4, 5, 5), 3, 1, 1);
    check_layer("conv2d", "filters=3,kernel=5,padding=2", shp(1, 6, 6), 1, 1, 1);
}

Test(gradcheck, linear)
{
    check_layer("linear", "units=5", shp(12, 1, 1), 3, 1, 1);
    check_layer("linear", "units=3,bias=false", shp(7, 1, 1), 2, 1, 1);
}

Test(gradcheck, relu)
{
    check_layer("relu", "", shp(3, 5, 5), 2, 1, 1);
    check_layer("relu", "", shp(10, 1, 1), 3, 0, 1);
}

Test(gradcheck, maxpool2d)
{
    check_layer("maxpool2d", "", shp(3, 6, 6), 2, 1, 1);
    check_layer("maxpool2d", "kernel=3,stride=2,padding=1", shp(2, 7, 7), 2, 1, 1);
    check_layer("maxpool2d", "kernel=3,stride=1", shp(2, 6, 5), 2, 1, 1);
    check_layer("maxpool2d", "kernel=2,stride=2", shp(2, 7, 7), 1, 1, 1);
}

Test(gradcheck, avgpool2d)
{
    check_layer("avgpool2d", "", shp(3, 6, 6), 2, 1, 1);
    check_layer("avgpool2d", "kernel=3,stride=2,padding=1", shp(2, 7, 7), 2, 1, 1);
    check_layer("avgpool2d", "kernel=3,stride=1,padding=1", shp(2, 5, 6), 2, 1, 1);
}

Test(gradcheck, global_avg_pool)
{
    check_layer("global_avg_pool", "", shp(4, 5, 3), 2, 1, 1);
    check_layer("global_avg_pool", "", shp(6, 1, 1), 2, 1, 1);
}

Test(gradcheck, flatten)
{
    check_layer("flatten", "", shp(3, 4, 2), 2, 1, 1);
}

Test(gradcheck, dropout)
{
    check_layer("dropout", "p=0.3", shp(3, 4, 4), 2, 1, 1);
    check_layer("dropout", "p=0.5", shp(20, 1, 1), 3, 1, 1);
    check_layer("dropout", "p=0.3", shp(3, 4, 4), 2, 0, 1);
}

Test(gradcheck, add)
{
    check_layer("add", "", shp(3, 4, 4), 2, 1, 1);
    check_layer("add", "", shp(5, 1, 1), 3, 0, 1);
}

/* Shapes above the layers' OpenMP thresholds, so the threaded loops are
 * checked too (OMP_NUM_THREADS=2 under ctest). */
Test(gradcheck, large_shapes_take_the_threaded_path)
{
    struct rn_shape big = shp(4, 16, 16); /* x 65 samples: 66560 elements */
    gc_subset = 6;
    check_layer("relu", "", big, 65, 1, 1);
    check_layer("maxpool2d", "kernel=3,stride=2,padding=1", big, 65, 1, 1);
    check_layer("avgpool2d", "kernel=2", big, 65, 1, 1);
    check_layer("global_avg_pool", "", big, 65, 1, 1);
    check_layer("dropout", "p=0.2", big, 65, 1, 1);
    check_layer("add", "", big, 65, 1, 1);
    check_layer("batchnorm", "", big, 65, 1, 0);
    check_layer("batchnorm", "", big, 65, 0, 1);
    gc_subset = GC_SUBSET;
}

/* Batchnorm with random gamma/beta and, for eval, non-trivial running
 * statistics; tangent only in eval. */
static void check_batchnorm(struct rn_shape in, int n, int train)
{
    struct rn_layer l;
    struct rn_error err = {{0}};
    cr_assert_eq(gc_build(&l, type_of("batchnorm"), "", &in, 1, n + 1, &err), 0, "%s", err.msg);
    gc_randomize_params(&l, -1.5f, 1.5f, 5);
    struct rn_param *rm = rn_layer_param(&l, "running_mean"),
                    *rv = rn_layer_param(&l, "running_var");
    cr_assert(rm && rv);
    for (int c = 0; c < in.c; c++) {
        rm->value.data[c] = 0.1f * (float)c - 0.2f;
        rv->value.data[c] = 0.5f + 0.25f * (float)c;
    }
    int fb = gc_check_backward(&l, n, train, 21);
    int ft = train ? 0 : gc_check_tangent(&l, n, train, 22);
    rn_layer_free(&l);
    cr_expect_eq(fb, 0, "batchnorm (%d,%d,%d) %s: %d backward mismatches", in.c, in.h, in.w,
                 train ? "train" : "eval", fb);
    cr_expect_eq(ft, 0, "batchnorm (%d,%d,%d) eval: %d tangent mismatches", in.c, in.h, in.w, ft);
}

Test(gradcheck, batchnorm2d)
{
    check_batchnorm(shp(3, 4, 4), 2, 1);
    check_batchnorm(shp(3, 4, 4), 2, 0);
    check_batchnorm(shp(2, 2, 3), 1, 1); /* one sample: stats over H*W only */
}

Test(gradcheck, batchnorm1d)
{
    check_batchnorm(shp(5, 1, 1), 4, 1);
    check_batchnorm(shp(5, 1, 1), 4, 0);
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

/* ---- every type has every pass ------------------------------------------ */

Test(registry, every_layer_type_is_complete)
{
    for (int i = 0; i < rn_n_layer_types; i++) {
        const struct rn_layer_type *t = rn_layer_types[i];
        if (!strcmp(t->name, "basic_block"))
            continue; /* expanded by the graph */
        cr_expect(t->build && t->forward && t->backward && t->tangent_forward &&
                      t->tangent_backward,
                  "layer type %s lacks build/forward/backward/tangent", t->name);
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
    struct rn_ctx ctx = {1, 0, 0, 0};
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
    struct rn_ctx ctx = {1, 0, 0, 0};
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
