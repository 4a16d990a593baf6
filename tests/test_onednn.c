/* tests/test_onednn.c - the oneDNN convolution (kernels/cpu/conv2d_onednn.c)
 * against the reference im2col + sgemm path over many shapes, finite-
 * difference gradient checks of the conv2d layer on the oneDNN path, equal
 * input patches giving bit-identical outputs (so max-pool ties fall as in
 * PyTorch), several batch sizes on one workspace, and the kernel choice's
 * errors. Every oneDNN test skips itself in a build without oneDNN. */
#include <criterion/criterion.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "bufs.h"
#include "gradcheck.h"
#include "kernels/cpu/conv2d.h"
#include "runner/layer.h"

#define SKIP_WITHOUT_ONEDNN()                                                                      \
    do {                                                                                           \
        if (!rn_conv2d_cpu_have_onednn())                                                          \
            cr_skip_test("built without oneDNN (RUNNER_ONEDNN)");                                  \
    } while (0)

/* Both paths sum the same products in float, in different orders: they
 * agree to a few ulps of the output's scale. */
#define TOL 2e-6

struct shape {
    int n, cin, h, w, cout, k, s, p;
};

/* max |a - b| / max |b|. */
static double rel_diff(const float *a, const float *b, size_t n)
{
    double num = 0.0, den = 1e-30;
    for (size_t i = 0; i < n; i++) {
        num = fmax(num, fabs((double)a[i] - b[i]));
        den = fmax(den, fabs((double)b[i]));
    }
    return num / den;
}

struct pair {
    struct rn_conv2d_cpu_geom g;
    struct rn_conv2d_cpu_ws ref, dnn;
};

static void pair_init(struct pair *p, const struct shape *t)
{
    struct rn_error err = {{0}};
    cr_assert_eq(
        rn_conv2d_cpu_geom_init(&p->g, t->cin, t->h, t->w, t->cout, t->k, t->s, t->p, &err), 0,
        "%s", err.msg);
    cr_assert_eq(rn_conv2d_cpu_ws_init_impl(&p->ref, &p->g, 0, RN_CONV2D_CPU_REF, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(rn_conv2d_cpu_ws_init_impl(&p->dnn, &p->g, 0, RN_CONV2D_CPU_ONEDNN, &err), 0, "%s",
                 err.msg);
}

static void pair_free(struct pair *p)
{
    rn_conv2d_cpu_ws_free(&p->ref);
    rn_conv2d_cpu_ws_free(&p->dnn);
}

/* Forward (with and without bias) and backward (each gradient alone, then
 * all three, accumulating onto random starting values) of batch n on both
 * paths; returns the worst relative difference. */
static double compare_at(struct pair *p, int n, struct rn_rng *r, const char *what)
{
    struct rn_error err = {{0}};
    struct rn_conv2d_cpu_geom g = p->g;
    g.n = n;
    const size_t nx = (size_t)n * g.cin * g.h * g.w, ny = (size_t)n * g.cout * g.hout * g.wout;
    const size_t nw = (size_t)g.cout * g.cin * g.k * g.k, nb = (size_t)g.cout;
    float *x = rand_buf(nx, r), *w = rand_buf(nw, r), *b = rand_buf(nb, r), *dy = rand_buf(ny, r);
    float *dx0 = rand_buf(nx, r), *dw0 = rand_buf(nw, r), *db0 = rand_buf(nb, r);
    float *y[2], *dx[2], *dw[2], *db[2];
    struct rn_conv2d_cpu_ws *ws[2] = {&p->ref, &p->dnn};
    double worst = 0.0;
    for (int bias = 0; bias < 2; bias++) {
        for (int k = 0; k < 2; k++) {
            y[k] = rand_buf(ny, r);
            cr_assert_eq(rn_conv2d_forward_cpu(&g, x, w, bias ? b : NULL, y[k], ws[k], &err), 0,
                         "%s", err.msg);
        }
        double e = rel_diff(y[1], y[0], ny);
        cr_expect_lt(e, TOL, "%s n=%d bias=%d forward: %g", what, n, bias, e);
        worst = fmax(worst, e);
        free(y[0]), free(y[1]);
    }
    for (int mode = 0; mode < 4; mode++) { /* dx alone, dw alone, db alone, all three */
        for (int k = 0; k < 2; k++) {
            dx[k] = copy_buf(dx0, nx), dw[k] = copy_buf(dw0, nw), db[k] = copy_buf(db0, nb);
            cr_assert_eq(rn_conv2d_backward_cpu(&g, mode == 0 || mode == 2 ? NULL : x,
                                                mode == 1 || mode == 2 ? NULL : w, dy,
                                                mode == 0 || mode == 3 ? dx[k] : NULL,
                                                mode == 1 || mode == 3 ? dw[k] : NULL,
                                                mode == 2 || mode == 3 ? db[k] : NULL, ws[k], &err),
                         0, "%s", err.msg);
        }
        const double e[3] = {rel_diff(dx[1], dx[0], nx), rel_diff(dw[1], dw[0], nw),
                             rel_diff(db[1], db[0], nb)};
        static const char *const names[3] = {"dx", "dw", "db"};
        for (int i = 0; i < 3; i++) {
            /* dw sums n * Hout * Wout products: a looser bound for long sums */
            const double tol = i == 0 ? TOL : 1e-5;
            cr_expect_lt(e[i], tol, "%s n=%d backward mode %d %s: %g", what, n, mode, names[i],
                         e[i]);
            worst = fmax(worst, e[i] / tol * TOL);
        }
        for (int k = 0; k < 2; k++)
            free(dx[k]), free(dw[k]), free(db[k]);
    }
    free(x), free(w), free(b), free(dy), free(dx0), free(dw0), free(db0);
    return worst;
}

static const struct shape shapes[] = {
    {4, 3, 28, 28, 32, 3, 1, 1},   /* conv1 of simple_gap_cnn */
    {4, 32, 14, 14, 64, 3, 1, 1},  /* conv2 */
    {4, 64, 7, 7, 128, 3, 1, 1},   /* conv3 */
    {3, 64, 28, 28, 128, 3, 2, 1}, /* ResNet downsampling 3x3, stride 2 */
    {3, 64, 28, 28, 128, 1, 2, 0}, /* ResNet shortcut 1x1, stride 2 */
    {2, 3, 28, 28, 64, 7, 2, 3},   /* 7x7 stem, stride 2, pad 3 */
    {5, 16, 9, 9, 16, 1, 1, 0},    /* pointwise */
    {1, 1, 11, 13, 6, 3, 2, 1},    /* one channel, odd sizes, batch 1 */
    {17, 5, 6, 5, 7, 3, 1, 1},     /* more images than threads, odd channels */
    {2, 35, 8, 8, 33, 3, 1, 0},    /* channels not a multiple of 16, no padding */
    {3, 4, 10, 10, 5, 5, 3, 2},    /* 5x5, stride 3 */
    {2, 8, 4, 4, 3, 1, 1, 1},      /* 1x1 with padding */
    {2, 24, 15, 15, 48, 3, 2, 0},  /* stride 2, no padding, odd size */
};

Test(onednn, matches_reference_over_shapes)
{
    SKIP_WITHOUT_ONEDNN();
    struct rn_rng r;
    rn_rng_init(&r, 5, 77, 0);
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const struct shape *t = &shapes[i];
        char what[96];
        snprintf(what, sizeof what, "cin=%d %dx%d cout=%d k=%d s=%d p=%d", t->cin, t->h, t->w,
                 t->cout, t->k, t->s, t->p);
        struct pair p;
        pair_init(&p, t);
        compare_at(&p, t->n, &r, what);
        pair_free(&p);
    }
}

/* One workspace, batch sizes coming and going: more sizes than the plans it
 * keeps (4), then the first size again. */
Test(onednn, batch_sizes_on_one_workspace)
{
    SKIP_WITHOUT_ONEDNN();
    struct rn_rng r;
    rn_rng_init(&r, 6, 77, 0);
    const struct shape t = {0, 6, 9, 9, 10, 3, 1, 1};
    struct pair p;
    pair_init(&p, &t);
    const int ns[] = {8, 3, 8, 1, 5, 7, 2, 8, 3};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++)
        compare_at(&p, ns[i], &r, "batch sizes");
    pair_free(&p);
}

/* keep_input: the forward keeps x in oneDNN's layout and the weight
 * gradient reads it when the backward gets the same x and batch size; the
 * result is the same bits as reordering x again. A forward on another input
 * (a tangent direction) or batch size in between must not be mistaken for
 * it. */
Test(onednn, kept_input_gives_the_same_weight_gradient)
{
    SKIP_WITHOUT_ONEDNN();
    const struct shape t = {5, 32, 10, 10, 48, 3, 1, 1};
    struct rn_error err = {{0}};
    struct rn_conv2d_cpu_geom g;
    cr_assert_eq(rn_conv2d_cpu_geom_init(&g, t.cin, t.h, t.w, t.cout, t.k, t.s, t.p, &err), 0);
    g.n = t.n;
    struct rn_rng r;
    rn_rng_init(&r, 10, 77, 0);
    const size_t nx = (size_t)t.n * t.cin * t.h * t.w, ny = (size_t)t.n * t.cout * t.h * t.w;
    const size_t nw = (size_t)t.cout * t.cin * 9;
    float *x = rand_buf(nx, &r), *x2 = rand_buf(nx, &r), *w = rand_buf(nw, &r);
    float *dy = rand_buf(ny, &r), *y = rand_buf(ny, &r);
    float *dw[4];
    struct rn_conv2d_cpu_ws ws;
    cr_assert_eq(rn_conv2d_cpu_ws_init_impl(&ws, &g, 0, RN_CONV2D_CPU_ONEDNN, &err), 0);
    for (int mode = 0; mode < 4; mode++) {
        /* 0: not kept; 1: kept; 2: kept, then a kept forward of x2;
         * 3: kept, then a forward of x at another batch size */
        dw[mode] = calloc(nw, sizeof(float));
        ws.keep_input = mode > 0;
        cr_assert_eq(rn_conv2d_forward_cpu(&g, x, w, NULL, y, &ws, &err), 0, "%s", err.msg);
        if (mode == 2)
            cr_assert_eq(rn_conv2d_forward_cpu(&g, x2, w, NULL, y, &ws, &err), 0);
        if (mode == 3) {
            struct rn_conv2d_cpu_geom g2 = g;
            g2.n = t.n - 2;
            cr_assert_eq(rn_conv2d_forward_cpu(&g2, x + nx / t.n, w, NULL, y, &ws, &err), 0);
        }
        cr_assert_eq(rn_conv2d_backward_cpu(&g, x, NULL, dy, NULL, dw[mode], NULL, &ws, &err), 0,
                     "%s", err.msg);
    }
    for (int mode = 1; mode < 4; mode++)
        cr_expect_eq(memcmp(dw[0], dw[mode], nw * sizeof(float)), 0,
                     "weight gradient of mode %d differs from the one without a kept input", mode);
    rn_conv2d_cpu_ws_free(&ws);
    for (int mode = 0; mode < 4; mode++)
        free(dw[mode]);
    free(x), free(x2), free(w), free(dy), free(y);
}

/* The forward and the data gradient compute each output in one thread, so
 * they are the same bits for any thread count. */
Test(onednn, forward_and_data_gradient_same_for_any_thread_count)
{
    SKIP_WITHOUT_ONEDNN();
    const struct shape t = {6, 16, 12, 12, 32, 3, 1, 1};
    struct rn_error err = {{0}};
    struct rn_conv2d_cpu_geom g;
    cr_assert_eq(rn_conv2d_cpu_geom_init(&g, t.cin, t.h, t.w, t.cout, t.k, t.s, t.p, &err), 0);
    g.n = t.n;
    struct rn_rng r;
    rn_rng_init(&r, 8, 77, 0);
    const size_t nx = (size_t)t.n * t.cin * t.h * t.w, ny = (size_t)t.n * t.cout * t.h * t.w;
    const size_t nw = (size_t)t.cout * t.cin * 9;
    float *x = rand_buf(nx, &r), *w = rand_buf(nw, &r), *b = rand_buf(t.cout, &r);
    float *dy = rand_buf(ny, &r);
    float *y[3], *dx[3];
    const int saved = omp_get_max_threads();
    for (int th = 1; th <= 3; th++) {
        omp_set_num_threads(th);
        struct rn_conv2d_cpu_ws ws;
        cr_assert_eq(rn_conv2d_cpu_ws_init_impl(&ws, &g, 0, RN_CONV2D_CPU_ONEDNN, &err), 0);
        y[th - 1] = calloc(ny, sizeof(float));
        dx[th - 1] = calloc(nx, sizeof(float));
        cr_assert_eq(rn_conv2d_forward_cpu(&g, x, w, b, y[th - 1], &ws, &err), 0, "%s", err.msg);
        cr_assert_eq(rn_conv2d_backward_cpu(&g, NULL, w, dy, dx[th - 1], NULL, NULL, &ws, &err), 0);
        rn_conv2d_cpu_ws_free(&ws);
    }
    omp_set_num_threads(saved);
    for (int th = 2; th <= 3; th++) {
        cr_expect_eq(memcmp(y[0], y[th - 1], ny * sizeof(float)), 0, "forward, 1 vs %d threads",
                     th);
        cr_expect_eq(memcmp(dx[0], dx[th - 1], nx * sizeof(float)), 0, "dx, 1 vs %d threads", th);
    }
    for (int i = 0; i < 3; i++)
        free(y[i]), free(dx[i]);
    free(x), free(w), free(b), free(dy);
}

/* Images of "strokes": each pixel is background (0) or one of two stroke
 * colours (per channel), in blocks, so most 3x3xC patches, padded border
 * ones included, occur many times. Outputs at positions whose patches are
 * equal must be equal bits, per output channel, with the bias. */
static void check_equal_patches(int cin, int cout, int h, int n)
{
    struct rn_error err = {{0}};
    struct rn_conv2d_cpu_geom g;
    cr_assert_eq(rn_conv2d_cpu_geom_init(&g, cin, h, h, cout, 3, 1, 1, &err), 0);
    g.n = n;
    struct rn_conv2d_cpu_ws ws;
    cr_assert_eq(rn_conv2d_cpu_ws_init_impl(&ws, &g, 0, RN_CONV2D_CPU_ONEDNN, &err), 0, "%s",
                 err.msg);
    struct rn_rng r;
    rn_rng_init(&r, 9, 77, (uint64_t)cin);
    const size_t hw = (size_t)h * h, nx = (size_t)n * cin * hw, ny = (size_t)n * cout * hw;
    float *x = calloc(nx, sizeof(float)), *y = calloc(ny, sizeof(float));
    float *w = rand_buf((size_t)cout * cin * 9, &r), *b = rand_buf(cout, &r);
    float colour[2][64];
    for (int k = 0; k < 2; k++)
        for (int c = 0; c < cin; c++)
            colour[k][c] = 0.25f + 0.75f * rn_rng_uniform(&r);
    /* pixel classes 0 (background), 1, 2 on a grid of 4x4 blocks */
    unsigned char *cls = calloc((size_t)n * hw, 1);
    for (int i = 0; i < n; i++)
        for (int bh = 0; bh < h; bh += 4)
            for (int bw = 0; bw < h; bw += 4) {
                const float u = rn_rng_uniform(&r);
                const unsigned char k = u < 0.5f ? 0 : u < 0.85f ? 1 : 2;
                for (int yy = bh; yy < bh + 4 && yy < h; yy++)
                    for (int xx = bw; xx < bw + 4 && xx < h; xx++)
                        cls[(size_t)i * hw + (size_t)yy * h + xx] = k;
            }
    for (int i = 0; i < n; i++)
        for (int c = 0; c < cin; c++)
            for (size_t q = 0; q < hw; q++) {
                const unsigned char k = cls[(size_t)i * hw + q];
                x[((size_t)i * cin + c) * hw + q] = k ? colour[k - 1][c] : 0.0f;
            }
    cr_assert_eq(rn_conv2d_forward_cpu(&g, x, w, b, y, &ws, &err), 0, "%s", err.msg);
    /* A patch's key: its 9 classes in base 3 (out-of-image pixels are
     * background, like the zero padding). The first position seen with a
     * key is where later ones are compared to. */
    enum { KEYS = 19683 }; /* 3^9 */
    long *first = malloc(KEYS * sizeof *first);
    for (int k = 0; k < KEYS; k++)
        first[k] = -1;
    long compared = 0, differ = 0;
    for (int i = 0; i < n; i++)
        for (int oh = 0; oh < h; oh++)
            for (int ow = 0; ow < h; ow++) {
                int key = 0;
                for (int dh = -1; dh <= 1; dh++)
                    for (int dw = -1; dw <= 1; dw++) {
                        const int ih = oh + dh, iw = ow + dw;
                        const int k = ih < 0 || ih >= h || iw < 0 || iw >= h
                                          ? 0
                                          : cls[(size_t)i * hw + (size_t)ih * h + iw];
                        key = key * 3 + k;
                    }
                const long pos = ((long)i * h + oh) * h + ow;
                if (first[key] < 0) {
                    first[key] = pos;
                    continue;
                }
                const long i0 = first[key] / (long)hw, q0 = first[key] % (long)hw;
                for (int co = 0; co < cout; co++) {
                    const float a = y[((size_t)i0 * cout + co) * hw + (size_t)q0];
                    const float v = y[((size_t)i * cout + co) * hw + (size_t)oh * h + ow];
                    compared++;
                    if (memcmp(&a, &v, sizeof a) != 0 && differ++ < 5)
                        cr_log_error("cin=%d: patch key %d at image %d (%d,%d) channel %d: %.9g "
                                     "vs %.9g at its first position",
                                     cin, key, i, oh, ow, co, v, a);
                }
            }
    cr_assert_gt(compared, 1000, "too few repeated patches to mean anything: %ld", compared);
    cr_expect_eq(differ, 0, "cin=%d: %ld of %ld outputs of equal patches differ in their bits", cin,
                 differ, compared);
    free(first), free(cls), free(x), free(y), free(w), free(b);
    rn_conv2d_cpu_ws_free(&ws);
}

Test(onednn, equal_patches_give_equal_bits)
{
    SKIP_WITHOUT_ONEDNN();
    check_equal_patches(3, 32, 28, 4);  /* conv1 on coloured MNIST */
    check_equal_patches(32, 64, 14, 3); /* a deeper layer */
    check_equal_patches(5, 7, 13, 2);   /* channels off the 16-block */
}

/* The conv2d layer's gradients through the oneDNN path, by finite
 * differences (tests/gradcheck.h); RN_CPU_CONV picks the kernel at build. */
Test(onednn, layer_gradient_checks)
{
    SKIP_WITHOUT_ONEDNN();
    setenv("RN_CPU_CONV", "onednn", 1);
    static const struct {
        const char *kv;
        struct rn_shape in;
        int n;
    } cases[] = {
        {"filters=4,kernel=3,padding=1", {3, 6, 6}, 2},
        {"filters=3,kernel=3,stride=2", {2, 7, 7}, 2},
        {"filters=17,kernel=3,stride=2,padding=1,bias=false", {3, 8, 8}, 2},
        {"filters=5,kernel=1", {18, 5, 5}, 3},
        {"filters=3,kernel=7,stride=2,padding=3", {2, 9, 9}, 1},
        {"filters=4,kernel=1,stride=2", {4, 6, 6}, 2},
    };
    const struct rn_layer_type *conv = rn_layer_type_find("conv2d");
    cr_assert(conv);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct rn_layer l;
        struct rn_error err = {{0}};
        cr_assert_eq(gc_build(&l, conv, cases[i].kv, &cases[i].in, 1, 4, &err), 0, "%s", err.msg);
        const int fails =
            gc_check_backward(&l, cases[i].n, 1, 42) + gc_check_tangent(&l, cases[i].n, 1, 42);
        cr_expect_eq(fails, 0, "conv2d %s: %d gradient check failures", cases[i].kv, fails);
        rn_layer_free(&l);
    }
    unsetenv("RN_CPU_CONV");
}

Test(onednn, kernel_choice_errors)
{
    struct rn_error err = {{0}};
    struct rn_conv2d_cpu_geom g;
    struct rn_conv2d_cpu_ws ws;
    cr_assert_eq(rn_conv2d_cpu_geom_init(&g, 2, 5, 5, 3, 3, 1, 1, &err), 0);
    setenv("RN_CPU_CONV", "mkl", 1);
    cr_assert_eq(rn_conv2d_cpu_ws_init(&ws, &g, 0, &err), -1);
    cr_assert_str_eq(err.msg,
                     "RN_CPU_CONV is 'mkl'; expected 'ref' (im2col + OpenBLAS) or 'onednn'");
    setenv("RN_CPU_CONV", "ref", 1);
    cr_assert_eq(rn_conv2d_cpu_ws_init(&ws, &g, 0, &err), 0, "%s", err.msg);
    cr_assert_str_eq(rn_conv2d_cpu_impl_name(&ws), "ref");
    rn_conv2d_cpu_ws_free(&ws);
    unsetenv("RN_CPU_CONV");
    const int rc = rn_conv2d_cpu_ws_init_impl(&ws, &g, 0, RN_CONV2D_CPU_ONEDNN, &err);
    if (rn_conv2d_cpu_have_onednn()) {
        cr_assert_eq(rc, 0, "%s", err.msg);
        cr_assert(strncmp(rn_conv2d_cpu_impl_name(&ws), "onednn:", 7) == 0);
        rn_conv2d_cpu_ws_free(&ws);
        /* without RN_CPU_CONV a oneDNN build runs oneDNN */
        cr_assert_eq(rn_conv2d_cpu_ws_init(&ws, &g, 0, &err), 0);
        cr_assert(strncmp(rn_conv2d_cpu_impl_name(&ws), "onednn:", 7) == 0);
        rn_conv2d_cpu_ws_free(&ws);
    } else {
        cr_assert_eq(rc, -1);
        cr_assert_str_eq(err.msg, "this runner was built without oneDNN (cmake found no libdnnl; "
                                  "-DRUNNER_ONEDNN=ON to require it); use RN_CPU_CONV=ref");
    }
}
