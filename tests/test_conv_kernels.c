/* tests/test_conv_kernels.c - the fast conv2d and linear kernels against a
 * naive direct implementation accumulated in double, plus the layer
 * wrappers (build errors, init, accumulation, tangent passes). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bufs.h"
#include "kernels/cpu/conv2d.h"
#include "runner/layer.h"

extern const struct rn_layer_type rn_layer_conv2d, rn_layer_linear;

#define TOL 1e-4

/* max |got - want| / max |want|: error relative to the tensor's scale. */
static double rel_err(const float *got, const double *want, size_t n)
{
    double num = 0.0, den = 1e-30;
    for (size_t i = 0; i < n; i++) {
        num = fmax(num, fabs((double)got[i] - want[i]));
        den = fmax(den, fabs(want[i]));
    }
    return num / den;
}

struct shape {
    int n, cin, h, w, cout, k, s, p;
};

static size_t x_len(const struct shape *t)
{
    return (size_t)t->n * t->cin * t->h * t->w;
}

/* Naive reference. want_* start as copies of the prefilled float buffers so
 * the accumulation contract is checked too. */
static void naive_conv(const struct shape *t, int ho, int wo, const float *x, const float *w,
                       const float *b, const float *dy, double *y, double *dx, double *dw,
                       double *db)
{
    for (int n = 0; n < t->n; n++)
        for (int co = 0; co < t->cout; co++)
            for (int oh = 0; oh < ho; oh++)
                for (int ow = 0; ow < wo; ow++) {
                    size_t yi = (((size_t)n * t->cout + co) * ho + oh) * wo + ow;
                    double acc = b ? b[co] : 0.0;
                    for (int ci = 0; ci < t->cin; ci++)
                        for (int kh = 0; kh < t->k; kh++)
                            for (int kw = 0; kw < t->k; kw++) {
                                int ih = oh * t->s - t->p + kh, iw = ow * t->s - t->p + kw;
                                if (ih < 0 || ih >= t->h || iw < 0 || iw >= t->w)
                                    continue;
                                size_t xi = (((size_t)n * t->cin + ci) * t->h + ih) * t->w + iw;
                                size_t wi = (((size_t)co * t->cin + ci) * t->k + kh) * t->k + kw;
                                acc += (double)w[wi] * x[xi];
                                dx[xi] += (double)w[wi] * dy[yi];
                                dw[wi] += (double)x[xi] * dy[yi];
                            }
                    y[yi] = acc;
                    db[co] += dy[yi];
                }
}

static void to_double(const float *a, double *d, size_t n)
{
    for (size_t i = 0; i < n; i++)
        d[i] = a[i];
}

static void check_conv(struct shape t, int n_threads, int with_bias, enum rn_conv2d_cpu_impl impl)
{
    struct rn_error err = {{0}};
    struct rn_conv2d_cpu_geom g;
    cr_assert_eq(rn_conv2d_cpu_geom_init(&g, t.cin, t.h, t.w, t.cout, t.k, t.s, t.p, &err), 0, "%s",
                 err.msg);
    g.n = t.n;
    cr_assert_eq(g.hout, (t.h + 2 * t.p - t.k) / t.s + 1);
    struct rn_conv2d_cpu_ws ws;
    cr_assert_eq(rn_conv2d_cpu_ws_init_impl(&ws, &g, n_threads, impl, &err), 0, "%s", err.msg);

    struct rn_rng r;
    rn_rng_init(&r, 7, 99, (uint64_t)(t.n * 1000 + t.cin * 100 + t.k * 10 + t.s));
    const size_t nx = x_len(&t), nw = (size_t)t.cout * t.cin * t.k * t.k;
    const size_t ny = (size_t)t.n * t.cout * g.hout * g.wout;
    float *x = rand_buf(nx, &r), *w = rand_buf(nw, &r), *b = rand_buf(t.cout, &r);
    float *dy = rand_buf(ny, &r), *y = rand_buf(ny, &r);
    float *dx = rand_buf(nx, &r), *dw = rand_buf(nw, &r), *db = rand_buf(t.cout, &r);
    double *ry = calloc(ny, sizeof *ry), *rdx = calloc(nx, sizeof *rdx);
    double *rdw = calloc(nw, sizeof *rdw), *rdb = calloc(t.cout, sizeof *rdb);
    to_double(dx, rdx, nx);
    to_double(dw, rdw, nw);
    to_double(db, rdb, t.cout);
    naive_conv(&t, g.hout, g.wout, x, w, with_bias ? b : NULL, dy, ry, rdx, rdw, rdb);

    cr_assert_eq(rn_conv2d_forward_cpu(&g, x, w, with_bias ? b : NULL, y, &ws, &err), 0, "%s",
                 err.msg);
    double e = rel_err(y, ry, ny);
    cr_expect_lt(e, TOL, "forward n=%d cin=%d %dx%d cout=%d k=%d s=%d p=%d threads=%d: %g", t.n,
                 t.cin, t.h, t.w, t.cout, t.k, t.s, t.p, n_threads, e);

    /* Each gradient alone (the others NULL), then all three in one call. */
    float *dx1 = copy_buf(dx, nx), *dw1 = copy_buf(dw, nw), *db1 = copy_buf(db, t.cout);
    cr_assert_eq(rn_conv2d_backward_cpu(&g, NULL, w, dy, dx1, NULL, NULL, &ws, &err), 0);
    cr_assert_eq(rn_conv2d_backward_cpu(&g, x, NULL, dy, NULL, dw1, NULL, &ws, &err), 0);
    cr_assert_eq(rn_conv2d_backward_cpu(&g, NULL, NULL, dy, NULL, NULL, db1, &ws, &err), 0);
    cr_assert_eq(rn_conv2d_backward_cpu(&g, x, w, dy, dx, dw, db, &ws, &err), 0, "%s", err.msg);
#define fmt "%s n=%d cin=%d %dx%d cout=%d k=%d s=%d p=%d threads=%d: %g"
    e = rel_err(dx1, rdx, nx);
    cr_expect_lt(e, TOL, fmt, "backward-data", t.n, t.cin, t.h, t.w, t.cout, t.k, t.s, t.p,
                 n_threads, e);
    e = rel_err(dw1, rdw, nw);
    cr_expect_lt(e, TOL, fmt, "backward-filter", t.n, t.cin, t.h, t.w, t.cout, t.k, t.s, t.p,
                 n_threads, e);
    e = rel_err(db1, rdb, t.cout);
    cr_expect_lt(e, TOL, fmt, "bias grad", t.n, t.cin, t.h, t.w, t.cout, t.k, t.s, t.p, n_threads,
                 e);
    e = rel_err(dx, rdx, nx) + rel_err(dw, rdw, nw) + rel_err(db, rdb, t.cout);
    cr_expect_lt(e, 3 * TOL, fmt, "combined backward", t.n, t.cin, t.h, t.w, t.cout, t.k, t.s, t.p,
                 n_threads, e);

#undef fmt
    rn_conv2d_cpu_ws_free(&ws);
    free(x), free(w), free(b), free(dy), free(y), free(dx), free(dw), free(db);
    free(dx1), free(dw1), free(db1);
    free(ry), free(rdx), free(rdw), free(rdb);
}

static const struct shape shapes[] = {
    {1, 3, 7, 7, 4, 3, 1, 1},   /* batch 1, pad 1 */
    {5, 2, 9, 8, 3, 3, 2, 1},   /* odd sizes, stride 2 */
    {5, 4, 6, 6, 5, 1, 1, 0},   /* pointwise fast path */
    {2, 3, 5, 7, 4, 1, 2, 0},   /* 1x1 with stride: im2col path */
    {5, 3, 8, 9, 2, 3, 1, 0},   /* no padding */
    {1, 2, 5, 5, 3, 3, 2, 0},   /* stride 2, no padding */
    {3, 3, 4, 4, 2, 5, 1, 2},   /* 5x5, pad 2 */
    {2, 2, 3, 3, 2, 3, 3, 1},   /* stride 3 */
    {5, 1, 11, 13, 6, 3, 2, 1}, /* one input channel, odd */
    {1, 4, 4, 4, 3, 1, 1, 1},   /* 1x1 with padding */
    {5, 3, 28, 28, 8, 3, 1, 1}, /* conv1 of simple_gap_cnn, narrower */
    {5, 32, 7, 7, 16, 3, 1, 1}, /* conv3-like: tiny images, many channels */
    {17, 3, 6, 5, 4, 3, 1, 1},  /* more images than gradient chunks */
    {11, 4, 5, 5, 3, 1, 1, 0},  /* same, pointwise */
};

Test(conv_kernels, parity_with_naive_conv)
{
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (int th = 1; th <= 3; th++)
            check_conv(shapes[i], th, th != 2, RN_CONV2D_CPU_REF);
}

/* The same shapes through oneDNN (tests/test_onednn.c compares it with the
 * reference path more closely). */
Test(conv_kernels, onednn_parity_with_naive_conv)
{
    if (!rn_conv2d_cpu_have_onednn())
        cr_skip_test("built without oneDNN");
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        check_conv(shapes[i], 2, i % 2, RN_CONV2D_CPU_ONEDNN);
}

/* The weight/bias gradient is summed over fixed image chunks, so any thread
 * count gives the same bits; the forward and data gradient are per image.
 * (The reference path's promise; oneDNN's weight gradient may differ.) */
Test(conv_kernels, same_bits_for_any_thread_count)
{
    const struct shape t = {13, 5, 9, 9, 6, 3, 1, 1};
    struct rn_error err = {{0}};
    struct rn_conv2d_cpu_geom g;
    cr_assert_eq(rn_conv2d_cpu_geom_init(&g, t.cin, t.h, t.w, t.cout, t.k, t.s, t.p, &err), 0);
    g.n = t.n;
    struct rn_rng r;
    rn_rng_init(&r, 11, 99, 0);
    const size_t nx = x_len(&t), nw = (size_t)t.cout * t.cin * 9, ny = (size_t)t.n * t.cout * 81;
    float *x = rand_buf(nx, &r), *w = rand_buf(nw, &r), *b = rand_buf(t.cout, &r);
    float *dy = rand_buf(ny, &r);
    float *out[4][4];
    for (int th = 1; th <= 4; th++) {
        struct rn_conv2d_cpu_ws ws;
        cr_assert_eq(rn_conv2d_cpu_ws_init_impl(&ws, &g, th, RN_CONV2D_CPU_REF, &err), 0);
        float **o = out[th - 1];
        o[0] = calloc(ny, sizeof(float)), o[1] = calloc(nx, sizeof(float));
        o[2] = calloc(nw, sizeof(float)), o[3] = calloc(t.cout, sizeof(float));
        cr_assert_eq(rn_conv2d_forward_cpu(&g, x, w, b, o[0], &ws, &err), 0);
        cr_assert_eq(rn_conv2d_backward_cpu(&g, x, w, dy, o[1], o[2], o[3], &ws, &err), 0);
        rn_conv2d_cpu_ws_free(&ws);
    }
    const size_t len[4] = {ny, nx, nw, (size_t)t.cout};
    for (int th = 2; th <= 4; th++)
        for (int k = 0; k < 4; k++)
            cr_expect_eq(memcmp(out[0][k], out[th - 1][k], len[k] * sizeof(float)), 0,
                         "output %d differs between 1 and %d threads", k, th);
    for (int th = 0; th < 4; th++)
        for (int k = 0; k < 4; k++)
            free(out[th][k]);
    free(x), free(w), free(b), free(dy);
}

Test(conv_kernels, geometry_errors)
{
    struct rn_error err = {{0}};
    struct rn_conv2d_cpu_geom g;
    cr_assert_eq(rn_conv2d_cpu_geom_init(&g, 3, 2, 2, 4, 5, 1, 0, &err), -1);
    cr_assert(strstr(err.msg, "conv2d needs an input of at least 5x5 after padding, got (3,2,2)"),
              "%s", err.msg);
    cr_assert_eq(rn_conv2d_cpu_geom_init(&g, 3, 2, 2, 4, 5, 1, 2, &err), 0, "%s", err.msg);
    cr_assert_eq(g.hout, 2);
    cr_assert_eq(rn_conv2d_cpu_geom_init(&g, 3, 8, 8, 4, 3, 2, 0, &err), 0);
    cr_assert_eq(g.hout, 3); /* floor((8 - 3) / 2) + 1 */
}

/* ---- layer wrappers ---- */

static void make_conv(struct rn_layer *l, int cin, int h, int w, int filters, int k, int s, int p,
                      int bias, int max_n)
{
    memset(l, 0, sizeof *l);
    l->type = &rn_layer_conv2d;
    strcpy(l->name, "conv");
    l->v.num[0] = filters;
    l->v.num[1] = k;
    l->v.num[2] = s;
    l->v.num[3] = p;
    l->v.num[4] = bias;
    l->in[0] = (struct rn_shape){cin, h, w};
    l->n_in = 1;
    struct rn_error err = {{0}};
    cr_assert_eq(rn_layer_conv2d.build(l, max_n, &err), 0, "%s", err.msg);
}

static void make_linear(struct rn_layer *l, int c, int units, int bias, int max_n)
{
    memset(l, 0, sizeof *l);
    l->type = &rn_layer_linear;
    strcpy(l->name, "fc");
    l->v.num[0] = units;
    l->v.num[1] = bias;
    l->in[0] = (struct rn_shape){c, 1, 1};
    l->n_in = 1;
    struct rn_error err = {{0}};
    cr_assert_eq(rn_layer_linear.build(l, max_n, &err), 0, "%s", err.msg);
}

Test(conv_layer, build_shapes_and_errors)
{
    struct rn_layer l;
    make_conv(&l, 3, 28, 28, 32, 3, 2, 1, 1, 8);
    cr_assert_eq(l.out.c, 32);
    cr_assert_eq(l.out.h, 14);
    cr_assert_eq(l.out.w, 14);
    cr_assert_eq(l.n_params, 2);
    struct rn_param *w = rn_layer_param(&l, "weight"), *b = rn_layer_param(&l, "bias");
    cr_assert(w && b);
    cr_assert(w->value.n == 32 && w->value.c == 3 && w->value.h == 3 && w->value.w == 3);
    cr_assert_eq(w->ndim, 4);
    cr_assert_eq(b->ndim, 1);
    cr_assert(b->value.n == 32 && b->grad.data);
    rn_layer_free(&l);

    make_conv(&l, 3, 28, 28, 8, 3, 1, 1, 0, 8);
    cr_assert_eq(l.n_params, 1);
    cr_assert_null(rn_layer_param(&l, "bias"));
    rn_layer_free(&l);

    memset(&l, 0, sizeof l);
    l.type = &rn_layer_conv2d;
    l.v.num[0] = 16, l.v.num[1] = 3, l.v.num[2] = 1, l.v.num[3] = 0, l.v.num[4] = 1;
    l.in[0] = (struct rn_shape){64, 2, 2};
    struct rn_error err = {{0}};
    cr_assert_eq(rn_layer_conv2d.build(&l, 4, &err), -1);
    cr_assert(strstr(err.msg, "conv2d needs an input of at least 3x3 after padding, got (64,2,2)"),
              "%s", err.msg);
    cr_assert(strstr(err.msg, "lower kernel/stride or remove a pooling layer before it"));
    cr_assert_eq(l.n_params, 0);
    rn_layer_free(&l);

    memset(&l, 0, sizeof l);
    l.type = &rn_layer_linear;
    l.v.num[0] = 10, l.v.num[1] = 1;
    l.in[0] = (struct rn_shape){64, 7, 7};
    cr_assert_eq(rn_layer_linear.build(&l, 4, &err), -1);
    cr_assert_str_eq(err.msg, "linear expects a vector input (C,1,1), got (64,7,7); add flatten "
                              "or global_avg_pool before it");
    rn_layer_free(&l);
}

Test(conv_layer, init_bounds_and_determinism)
{
    struct rn_layer a, b;
    make_conv(&a, 4, 6, 6, 8, 3, 1, 1, 1, 2);
    make_conv(&b, 4, 6, 6, 8, 3, 1, 1, 1, 2);
    struct rn_rng r1, r2;
    rn_rng_init(&r1, 1, RN_STREAM_INIT, 0);
    rn_rng_init(&r2, 1, RN_STREAM_INIT, 0);
    rn_layer_conv2d.init(&a, &r1);
    rn_layer_conv2d.init(&b, &r2);
    const float bound = 1.0f / sqrtf(4 * 9);
    for (int p = 0; p < 2; p++) {
        struct rn_tensor *t = &a.params[p].value;
        float mx = 0.0f;
        for (size_t i = 0; i < rn_tensor_numel(t); i++) {
            cr_assert_leq(fabsf(t->data[i]), bound);
            mx = fmaxf(mx, fabsf(t->data[i]));
            cr_assert_eq(t->data[i], b.params[p].value.data[i]);
        }
        cr_assert_gt(mx, 0.5f * bound, "values should spread over the bound");
    }
    /* Weights come first from the stream, then the bias. */
    struct rn_rng r3;
    rn_rng_init(&r3, 1, RN_STREAM_INIT, 0);
    cr_assert_eq(a.params[0].value.data[0], (2.0f * rn_rng_uniform(&r3) - 1.0f) * bound);
    for (int i = 1; i < 8 * 4 * 9; i++)
        rn_rng_uniform(&r3);
    cr_assert_eq(a.params[1].value.data[0], (2.0f * rn_rng_uniform(&r3) - 1.0f) * bound);
    rn_layer_free(&a);
    rn_layer_free(&b);

    struct rn_layer f;
    make_linear(&f, 50, 10, 1, 2);
    rn_layer_linear.init(&f, &r1);
    for (int p = 0; p < 2; p++)
        for (size_t i = 0; i < rn_tensor_numel(&f.params[p].value); i++)
            cr_assert_leq(fabsf(f.params[p].value.data[i]), 1.0f / sqrtf(50.0f));
    cr_assert_eq(f.params[0].ndim, 2);
    cr_assert_eq(f.params[1].ndim, 1);
    rn_layer_free(&f);
}

/* Runs forward, backward (twice, to see accumulation) and both tangent
 * passes of a built layer and compares with the naive conv. */
Test(conv_layer, forward_backward_tangent)
{
    const struct shape t = {3, 3, 9, 9, 4, 3, 2, 1};
    struct rn_layer l;
    make_conv(&l, t.cin, t.h, t.w, t.cout, t.k, t.s, t.p, 1, 4);
    struct rn_rng r;
    rn_rng_init(&r, 3, RN_STREAM_INIT, 0);
    rn_layer_conv2d.init(&l, &r);
    const int ho = l.out.h, wo = l.out.w;
    const size_t nx = x_len(&t), ny = (size_t)t.n * t.cout * ho * wo, nw = (size_t)t.cout * 27;
    struct rn_tensor x, tx, y, ty, dy, tdy, dx, tdx;
    struct rn_error err = {{0}};
    rn_tensor_init(&x, 4, t.cin, t.h, t.w, &err);
    rn_tensor_init(&tx, 4, t.cin, t.h, t.w, &err);
    rn_tensor_init(&dx, 4, t.cin, t.h, t.w, &err);
    rn_tensor_init(&tdx, 4, t.cin, t.h, t.w, &err);
    rn_tensor_init(&y, 4, t.cout, ho, wo, &err);
    rn_tensor_init(&ty, 4, t.cout, ho, wo, &err);
    rn_tensor_init(&dy, 4, t.cout, ho, wo, &err);
    rn_tensor_init(&tdy, 4, t.cout, ho, wo, &err);
    struct rn_tensor *all[] = {&x, &tx, &dx, &tdx, &y, &ty, &dy, &tdy};
    for (int i = 0; i < 8; i++) {
        all[i]->n = t.n;
        for (size_t j = 0; j < rn_tensor_numel(all[i]); j++)
            all[i]->data[j] = 2.0f * rn_rng_uniform(&r) - 1.0f;
    }
    const float *w = l.params[0].value.data, *b = l.params[1].value.data;
    double *ry = calloc(ny, 8), *rdx = calloc(nx, 8), *rdw = calloc(nw, 8), *rdb = calloc(4, 8);
    double *sy = calloc(ny, 8), *sdx = calloc(nx, 8), *sdw = calloc(nw, 8), *sdb = calloc(4, 8);
    struct rn_ctx ctx = {.train = 1, .seed = 1};
    const struct rn_tensor *xin[] = {&x}, *txin[] = {&tx};
    struct rn_tensor *dxo[] = {&dx}, *tdxo[] = {&tdx}, *none[] = {NULL};

    /* forward + backward twice: grads double, dx accumulates onto its start. */
    naive_conv(&t, ho, wo, x.data, w, b, dy.data, ry, rdx, rdw, rdb);
    y.n = 0;
    cr_assert_eq(rn_layer_conv2d.forward(&l, xin, &y, &ctx, &err), 0, "%s", err.msg);
    cr_assert_eq(y.n, t.n);
    cr_assert_lt(rel_err(y.data, ry, ny), TOL);
    float *dx0 = copy_buf(dx.data, nx);
    cr_assert_eq(rn_layer_conv2d.backward(&l, xin, &y, &dy, dxo, &ctx, &err), 0);
    cr_assert_eq(rn_layer_conv2d.backward(&l, xin, &y, &dy, none, &ctx, &err), 0);
    for (size_t i = 0; i < nx; i++)
        sdx[i] = dx0[i] + rdx[i];
    for (size_t i = 0; i < nw; i++)
        sdw[i] = 2 * rdw[i];
    for (int i = 0; i < 4; i++)
        sdb[i] = 2 * rdb[i];
    cr_expect_lt(rel_err(dx.data, sdx, nx), TOL);
    cr_expect_lt(rel_err(l.params[0].grad.data, sdw, nw), TOL);
    cr_expect_lt(rel_err(l.params[1].grad.data, sdb, 4), TOL);

    /* tangent: ty = conv(tx, W) without bias; tdx = J^T tdy;
     * dW = filter(tdy, x) + filter(dy, tx); db = sum(tdy). */
    cr_assert_eq(rn_tensor_zero(&l.params[0].grad, NULL), 0);
    cr_assert_eq(rn_tensor_zero(&l.params[1].grad, NULL), 0);
    memset(tdx.data, 0, nx * sizeof(float));
    memset(rdx, 0, nx * 8), memset(rdw, 0, nw * 8), memset(rdb, 0, 4 * 8);
    memset(sdx, 0, nx * 8), memset(sdw, 0, nw * 8), memset(sdb, 0, 4 * 8);
    naive_conv(&t, ho, wo, tx.data, w, NULL, dy.data, ry, sdx, rdw, sdb); /* ry = conv(tx) */
    memset(sdb, 0, 4 * 8);
    naive_conv(&t, ho, wo, x.data, w, NULL, tdy.data, sy, rdx, rdw, rdb);
    cr_assert_eq(rn_layer_conv2d.tangent_forward(&l, xin, txin, &ty, &ctx, &err), 0);
    cr_expect_lt(rel_err(ty.data, ry, ny), TOL);
    cr_assert_eq(rn_layer_conv2d.tangent_backward(&l, xin, txin, &dy, &tdy, tdxo, &ctx, &err), 0);
    cr_expect_lt(rel_err(tdx.data, rdx, nx), TOL);
    cr_expect_lt(rel_err(l.params[0].grad.data, rdw, nw), TOL);
    cr_expect_lt(rel_err(l.params[1].grad.data, rdb, 4), TOL);

    free(dx0);
    free(ry), free(rdx), free(rdw), free(rdb), free(sy), free(sdx), free(sdw), free(sdb);
    for (int i = 0; i < 8; i++)
        rn_tensor_free(all[i]);
    rn_layer_free(&l);
}

/* Linear through the layer: y = x W^T + b, dx += dy W, dW += dy^T x, db += sum dy,
 * and the tangent passes, for small and (thread-split) large shapes. */
static void check_linear(int n, int c, int units, int bias)
{
    struct rn_layer l;
    make_linear(&l, c, units, bias, n + 2);
    struct rn_rng r;
    rn_rng_init(&r, 5, 77, (uint64_t)(n * 7919 + c * 31 + units));
    rn_layer_linear.init(&l, &r);
    struct rn_error err = {{0}};
    struct rn_tensor x, tx, y, ty, dy, tdy, dx, tdx;
    rn_tensor_init(&x, n + 2, c, 1, 1, &err);
    rn_tensor_init(&tx, n + 2, c, 1, 1, &err);
    rn_tensor_init(&dx, n + 2, c, 1, 1, &err);
    rn_tensor_init(&tdx, n + 2, c, 1, 1, &err);
    rn_tensor_init(&y, n + 2, units, 1, 1, &err);
    rn_tensor_init(&ty, n + 2, units, 1, 1, &err);
    rn_tensor_init(&dy, n + 2, units, 1, 1, &err);
    rn_tensor_init(&tdy, n + 2, units, 1, 1, &err);
    struct rn_tensor *all[] = {&x, &tx, &dx, &tdx, &y, &ty, &dy, &tdy};
    for (int i = 0; i < 8; i++) {
        all[i]->n = n; /* a last batch smaller than max_n */
        for (size_t j = 0; j < rn_tensor_numel(all[i]); j++)
            all[i]->data[j] = 2.0f * rn_rng_uniform(&r) - 1.0f;
    }
    struct rn_param *pw = &l.params[0], *pb = bias ? &l.params[1] : NULL;
    for (size_t j = 0; j < rn_tensor_numel(&pw->grad); j++)
        pw->grad.data[j] = 0.5f;
    const float *w = pw->value.data;
    const size_t nx = (size_t)n * c, ny = (size_t)n * units, nw = (size_t)units * c;
    double *ry = calloc(ny, 8), *rty = calloc(ny, 8), *rdx = calloc(nx, 8), *rtdx = calloc(nx, 8);
    double *rdw = calloc(nw, 8), *rdw2 = calloc(nw, 8), *rdb = calloc(units, 8);
    for (int i = 0; i < n; i++)
        for (int u = 0; u < units; u++) {
            double a = pb ? pb->value.data[u] : 0.0, ta = 0.0;
            for (int k = 0; k < c; k++) {
                a += (double)x.data[i * c + k] * w[(size_t)u * c + k];
                ta += (double)tx.data[i * c + k] * w[(size_t)u * c + k];
            }
            ry[(size_t)i * units + u] = a;
            rty[(size_t)i * units + u] = ta;
        }
    for (size_t j = 0; j < nx; j++)
        rdx[j] = dx.data[j];
    for (int i = 0; i < n; i++)
        for (int k = 0; k < c; k++)
            for (int u = 0; u < units; u++) {
                rdx[(size_t)i * c + k] +=
                    (double)dy.data[(size_t)i * units + u] * w[(size_t)u * c + k];
                rtdx[(size_t)i * c + k] +=
                    (double)tdy.data[(size_t)i * units + u] * w[(size_t)u * c + k];
            }
    for (int u = 0; u < units; u++)
        for (int k = 0; k < c; k++) {
            double g = 0.5, g2 = 0.0;
            for (int i = 0; i < n; i++) {
                g += (double)dy.data[(size_t)i * units + u] * x.data[(size_t)i * c + k];
                g2 += (double)tdy.data[(size_t)i * units + u] * x.data[(size_t)i * c + k] +
                      (double)dy.data[(size_t)i * units + u] * tx.data[(size_t)i * c + k];
            }
            rdw[(size_t)u * c + k] = g;
            rdw2[(size_t)u * c + k] = g2;
        }

    struct rn_ctx ctx = {.train = 1, .seed = 1};
    const struct rn_tensor *xin[] = {&x}, *txin[] = {&tx};
    struct rn_tensor *dxo[] = {&dx}, *tdxo[] = {&tdx};
    cr_assert_eq(rn_layer_linear.forward(&l, xin, &y, &ctx, &err), 0, "%s", err.msg);
    cr_assert_eq(y.n, n);
    cr_expect_lt(rel_err(y.data, ry, ny), TOL, "linear forward n=%d c=%d u=%d", n, c, units);
    cr_assert_eq(rn_layer_linear.backward(&l, xin, &y, &dy, dxo, &ctx, &err), 0);
    cr_expect_lt(rel_err(dx.data, rdx, nx), TOL, "linear dx n=%d c=%d u=%d", n, c, units);
    cr_expect_lt(rel_err(pw->grad.data, rdw, nw), TOL, "linear dW n=%d c=%d u=%d", n, c, units);
    if (pb) {
        for (int u = 0; u < units; u++) {
            double s = 0.0;
            for (int i = 0; i < n; i++)
                s += dy.data[(size_t)i * units + u];
            rdb[u] = s;
        }
        cr_expect_lt(rel_err(pb->grad.data, rdb, units), TOL);
    }

    cr_assert_eq(rn_tensor_zero(&pw->grad, NULL), 0);
    if (pb)
        cr_assert_eq(rn_tensor_zero(&pb->grad, NULL), 0);
    memset(tdx.data, 0, nx * sizeof(float));
    cr_assert_eq(rn_layer_linear.tangent_forward(&l, xin, txin, &ty, &ctx, &err), 0);
    cr_expect_lt(rel_err(ty.data, rty, ny), TOL, "linear tangent forward");
    cr_assert_eq(rn_layer_linear.tangent_backward(&l, xin, txin, &dy, &tdy, tdxo, &ctx, &err), 0);
    cr_expect_lt(rel_err(tdx.data, rtdx, nx), TOL, "linear tdx");
    cr_expect_lt(rel_err(pw->grad.data, rdw2, nw), TOL, "linear tangent dW");
    if (pb) {
        for (int u = 0; u < units; u++) {
            double s = 0.0;
            for (int i = 0; i < n; i++)
                s += tdy.data[(size_t)i * units + u];
            rdb[u] = s;
        }
        cr_expect_lt(rel_err(pb->grad.data, rdb, units), TOL, "linear tangent db");
    }

    free(ry), free(rty), free(rdx), free(rtdx), free(rdw), free(rdw2), free(rdb);
    for (int i = 0; i < 8; i++)
        rn_tensor_free(all[i]);
    rn_layer_free(&l);
}

Test(linear_layer, parity_with_naive)
{
    check_linear(1, 3, 2, 1);
    check_linear(5, 17, 9, 0);
    check_linear(64, 128, 10, 1);
    check_linear(70, 300, 200, 1); /* split over the units */
    check_linear(3, 500, 1000, 1); /* split over the units, tiny batch */
    check_linear(300, 100, 40, 1); /* split over the batch */
    check_linear(40, 200, 600, 1); /* dW split over the units of a transposed dy */
}
