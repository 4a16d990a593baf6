/* tests/gradcheck.h - finite-difference checks of a layer type's backward and
 * tangent passes (header-only: every function is static; include it from a
 * test, link against rn).
 *
 * The layer is driven only through its type's function pointers, the way the
 * graph drives it (layer.h): build for max_n, init, forward into a y allocated
 * for max_n, backward accumulating into dx and parameter gradients.
 *
 *   struct rn_layer l;
 *   struct rn_error err;
 *   struct rn_shape in = {3, 6, 6};
 *   if (gc_build(&l, rn_layer_type_find("conv2d"), "filters=4,kernel=3,padding=1", &in, 1, 4,
 * &err))
 *       ... err.msg says why ...
 *   int fails = gc_check_backward(&l, 2, 1, 42) + gc_check_tangent(&l, 2, 0, 42);
 *   rn_layer_free(&l);
 *
 * gc_build      builds a layer named "t" from a "key=value,key=value" list
 *               (unspecified keys take the schema default; INTS values are
 *               written a:b:c), input shapes in[0..n_in), max_n; runs init
 *               with a fixed seed.
 * gc_check_backward
 *               objective f = sum(r * y), r fixed in [-1,1], x in [-1,1]
 *               (seeded). Compares dx (every input) and the gradient of every
 *               trainable parameter with central differences, one element at
 *               a time: every element of tensors up to GC_ALL_POINTS, else
 *               gc_subset (default and at most GC_SUBSET) random ones. Also
 *               checks that backward accumulates (dx and grads start at
 *               0.25, not 0), that a NULL dx gives the
 *               same parameter gradients, that y->n is set and nothing past
 *               the batch is written.
 * gc_check_tangent
 *               random tx (each input) and tdy; ty against
 *               (f(x + e tx) - f(x - e tx)) / 2e element-wise; tdx and the
 *               parameter-gradient tangents against the central difference of
 *               the backward run at (x + e tx, dy + e tdy).
 *
 * Both return the number of failures (0 = pass) and print the first
 * mismatches to stderr (unless gc_quiet is set). ctx is {train, seed,
 * step 3, node 1} for every pass, so a dropout mask is the same in every
 * perturbed forward. Buffers
 * (non-trainable parameters such as running statistics) are restored after
 * every forward, so a training-mode batchnorm sees the same running stats
 * throughout.
 *
 * Finite differences run in float32 layers with the objective summed in
 * double, step GC_EPS relative to the value's scale 1. A point next to a kink
 * (relu at 0, a maxpool argmax switch) is skipped when the central
 * differences at e and e/2 disagree, or the curvatures seen at e and e/2 do
 * (see gc_estimate); if more than half of a check's points are skipped that
 * is a failure. Agreement means |a - b| <= GC_TOL * max(1, |a|, |b|) (the
 * observed worst error is ~1e-4, so GC_TOL = 1e-2 has a wide margin). With
 * GC_VERBOSE set in the environment every check prints its point count,
 * skips and worst error.
 */
#ifndef RN_TESTS_GRADCHECK_H
#define RN_TESTS_GRADCHECK_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner/layer.h"

#ifndef GC_EPS
#define GC_EPS 1e-2
#endif
#ifndef GC_TOL
#define GC_TOL 1e-2
#endif
#define GC_ALL_POINTS 128
#define GC_SUBSET 100
#define GC_MAX_PRINT 8
#define GC_SEED_INIT 1234
#define GC_STREAM 0x6763 /* "gc": not one of the runner's streams */
#define GC_SENTINEL 12345.0f
#define GC_ACC_START 0.25f

/* Every function is static; unused ones must not warn in a test that uses
 * only some of them. */
#define GC_API static __attribute__((unused))

/* Set to 1 to silence mismatch messages (tests that expect a failure). */
static int gc_quiet;
/* Random points per large tensor; lower it for big shapes under ASan. */
static int gc_subset = GC_SUBSET;

/* ---- building ---------------------------------------------------------- */

GC_API int gc_set_key(struct rn_values *v, const struct rn_key *k, int i, const char *val,
                      struct rn_error *err)
{
    char *end;
    v->given[i] = 1;
    switch (k->kind) {
    case RN_KIND_INT:
    case RN_KIND_FLOAT:
        v->num[i] = strtod(val, &end);
        if (end == val || *end)
            return rn_errorf(err, "gc_build: key '%s': '%s' is not a number", k->key, val);
        return 0;
    case RN_KIND_BOOL:
        if (!strcmp(val, "true") || !strcmp(val, "1"))
            v->num[i] = 1.0;
        else if (!strcmp(val, "false") || !strcmp(val, "0"))
            v->num[i] = 0.0;
        else
            return rn_errorf(err, "gc_build: key '%s': '%s' is not true/false", k->key, val);
        return 0;
    case RN_KIND_STRING:
    case RN_KIND_CHOICE:
        snprintf(v->str[i], sizeof v->str[i], "%s", val);
        return 0;
    case RN_KIND_INTS:
        v->n_ints[i] = 0;
        for (const char *p = val; *p && v->n_ints[i] < 8;) {
            v->ints[i][v->n_ints[i]++] = (int)strtol(p, &end, 10);
            if (end == p)
                return rn_errorf(err, "gc_build: key '%s': bad list '%s'", k->key, val);
            p = *end == ':' ? end + 1 : end;
        }
        return 0;
    }
    return rn_errorf(err, "gc_build: key '%s': unknown kind", k->key);
}

GC_API int gc_parse_values(const struct rn_layer_type *type, const char *kv, struct rn_values *v,
                           struct rn_error *err)
{
    memset(v, 0, sizeof *v);
    for (int i = 0; i < type->n_keys; i++) {
        v->num[i] = type->keys[i].def;
        if (type->keys[i].def_str)
            snprintf(v->str[i], sizeof v->str[i], "%s", type->keys[i].def_str);
    }
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", kv ? kv : "");
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq)
            return rn_errorf(err, "gc_build: '%s' is not key=value", tok);
        *eq = '\0';
        int i = 0;
        while (i < type->n_keys && strcmp(type->keys[i].key, tok))
            i++;
        if (i == type->n_keys)
            return rn_errorf(err, "gc_build: %s has no key '%s'", type->name, tok);
        if (gc_set_key(v, &type->keys[i], i, eq + 1, err))
            return -1;
    }
    for (int i = 0; i < type->n_keys; i++)
        if (type->keys[i].required && !v->given[i])
            return rn_errorf(err, "gc_build: %s needs key '%s'", type->name, type->keys[i].key);
    return 0;
}

/* Builds and initialises; on failure l is freed and err says why. */
GC_API int gc_build(struct rn_layer *l, const struct rn_layer_type *type, const char *kv,
                    const struct rn_shape *in, int n_in, int max_n, struct rn_error *err)
{
    memset(l, 0, sizeof *l);
    l->type = type;
    snprintf(l->name, sizeof l->name, "t");
    l->file = "gradcheck";
    l->line = l->col = 1;
    l->max_n = max_n;
    l->n_in = n_in;
    for (int i = 0; i < n_in && i < RN_MAX_INPUTS; i++)
        l->in[i] = in[i];
    if (!type->build || !type->forward || !type->backward)
        return rn_errorf(err, "gc_build: layer type %s has no build/forward/backward yet",
                         type->name);
    if (gc_parse_values(type, kv, &l->v, err))
        return -1;
    if (type->build(l, max_n, err)) {
        rn_layer_free(l);
        return -1;
    }
    if (type->init) {
        struct rn_rng r;
        rn_rng_init(&r, GC_SEED_INIT, RN_STREAM_INIT, 0);
        type->init(l, &r);
    }
    return 0;
}

/* Fills every trainable parameter with U(lo, hi): batchnorm's ones/zeros
 * would hide a gamma or beta mixed up in the backward. */
GC_API void gc_randomize_params(struct rn_layer *l, float lo, float hi, uint64_t seed)
{
    struct rn_rng r;
    rn_rng_init(&r, seed, GC_STREAM, 99);
    for (int i = 0; i < l->n_params; i++)
        if (l->params[i].trainable)
            for (size_t j = 0; j < rn_tensor_numel(&l->params[i].value); j++)
                l->params[i].value.data[j] = lo + (hi - lo) * rn_rng_uniform(&r);
}

/* ---- workspace --------------------------------------------------------- */

struct gc_ws {
    struct rn_layer *l;
    int n;
    struct rn_ctx ctx;
    struct rn_tensor x[RN_MAX_INPUTS], tx[RN_MAX_INPUTS];   /* (n, in[i]) */
    struct rn_tensor dx[RN_MAX_INPUTS], tdx[RN_MAX_INPUTS]; /* (n, in[i]) */
    struct rn_tensor y, ty;                                 /* (max_n, out) */
    struct rn_tensor r, tr, dyv;                            /* (n, out): dy, tdy, dy + e tdy */
    float *buffers[RN_MAX_PARAMS];                          /* saved buffer values */
    int failed;                                             /* setup or a pass failed */
};

GC_API void gc_fill(struct rn_tensor *t, struct rn_rng *r)
{
    for (size_t i = 0; i < rn_tensor_numel(t); i++)
        t->data[i] = 2.0f * rn_rng_uniform(r) - 1.0f;
}

GC_API void gc_ws_free(struct gc_ws *w)
{
    for (int i = 0; i < RN_MAX_INPUTS; i++) {
        rn_tensor_free(&w->x[i]);
        rn_tensor_free(&w->tx[i]);
        rn_tensor_free(&w->dx[i]);
        rn_tensor_free(&w->tdx[i]);
    }
    rn_tensor_free(&w->y);
    rn_tensor_free(&w->ty);
    rn_tensor_free(&w->r);
    rn_tensor_free(&w->tr);
    rn_tensor_free(&w->dyv);
    for (int i = 0; i < RN_MAX_PARAMS; i++)
        free(w->buffers[i]);
}

GC_API int gc_ws_init(struct gc_ws *w, struct rn_layer *l, int n, int train, uint64_t seed)
{
    struct rn_error err;
    struct rn_rng r;
    memset(w, 0, sizeof *w);
    w->l = l;
    w->n = n;
    w->ctx.train = train;
    w->ctx.seed = seed;
    w->ctx.step = 3;
    w->ctx.node = 1;
    if (n > l->max_n) {
        fprintf(stderr, "gradcheck %s: batch %d > max_n %d\n", l->type->name, n, l->max_n);
        return -1;
    }
    rn_rng_init(&r, seed, GC_STREAM, 1);
    struct rn_shape o = l->out;
    for (int i = 0; i < l->n_in; i++) {
        struct rn_shape s = l->in[i];
        if (rn_tensor_init(&w->x[i], n, s.c, s.h, s.w, &err) ||
            rn_tensor_init(&w->tx[i], n, s.c, s.h, s.w, &err) ||
            rn_tensor_init(&w->dx[i], n, s.c, s.h, s.w, &err) ||
            rn_tensor_init(&w->tdx[i], n, s.c, s.h, s.w, &err))
            goto fail;
        gc_fill(&w->x[i], &r);
        gc_fill(&w->tx[i], &r);
    }
    if (rn_tensor_init(&w->y, l->max_n, o.c, o.h, o.w, &err) ||
        rn_tensor_init(&w->ty, l->max_n, o.c, o.h, o.w, &err) ||
        rn_tensor_init(&w->r, n, o.c, o.h, o.w, &err) ||
        rn_tensor_init(&w->tr, n, o.c, o.h, o.w, &err) ||
        rn_tensor_init(&w->dyv, n, o.c, o.h, o.w, &err))
        goto fail;
    gc_fill(&w->r, &r);
    gc_fill(&w->tr, &r);
    for (int i = 0; i < l->n_params; i++) {
        struct rn_param *p = &l->params[i];
        if (p->trainable)
            continue;
        size_t bytes = rn_tensor_numel(&p->value) * sizeof(float);
        w->buffers[i] = malloc(bytes ? bytes : 1);
        if (!w->buffers[i]) {
            rn_errorf(&err, "out of memory");
            goto fail;
        }
        memcpy(w->buffers[i], p->value.data, bytes);
    }
    return 0;
fail:
    fprintf(stderr, "gradcheck %s: %s\n", l->type->name, err.msg);
    gc_ws_free(w);
    return -1;
}

GC_API void gc_restore_buffers(struct gc_ws *w)
{
    for (int i = 0; i < w->l->n_params; i++)
        if (w->buffers[i])
            memcpy(w->l->params[i].value.data, w->buffers[i],
                   rn_tensor_numel(&w->l->params[i].value) * sizeof(float));
}

/* Checks y->n and that nothing past the batch changed (filled with the
 * sentinel before the pass). */
GC_API int gc_check_output(struct gc_ws *w, const struct rn_tensor *y, const char *pass)
{
    struct rn_layer *l = w->l;
    if (y->n != w->n) {
        fprintf(stderr, "gradcheck %s: %s set y->n = %d, expected %d\n", l->type->name, pass, y->n,
                w->n);
        return -1;
    }
    size_t per = (size_t)l->out.c * l->out.h * l->out.w;
    for (size_t i = (size_t)w->n * per; i < (size_t)l->max_n * per; i++)
        if (y->data[i] != GC_SENTINEL) {
            fprintf(stderr, "gradcheck %s: %s wrote past the batch (element %zu)\n", l->type->name,
                    pass, i);
            return -1;
        }
    return 0;
}

GC_API void gc_sentinel(struct gc_ws *w, struct rn_tensor *y)
{
    y->n = w->l->max_n;
    for (size_t i = 0; i < rn_tensor_numel(y); i++)
        y->data[i] = GC_SENTINEL;
}

GC_API int gc_forward(struct gc_ws *w)
{
    struct rn_error err = {{0}};
    const struct rn_tensor *xs[RN_MAX_INPUTS] = {&w->x[0], &w->x[1]};
    gc_sentinel(w, &w->y);
    int rc = w->l->type->forward(w->l, xs, &w->y, &w->ctx, &err);
    gc_restore_buffers(w);
    if (rc) {
        fprintf(stderr, "gradcheck %s: forward failed: %s\n", w->l->type->name, err.msg);
        w->failed = 1;
        return -1;
    }
    if (gc_check_output(w, &w->y, "forward")) {
        w->failed = 1;
        return -1;
    }
    return 0;
}

GC_API double gc_objective(struct gc_ws *w)
{
    if (gc_forward(w))
        return NAN;
    double s = 0.0;
    for (size_t i = 0; i < rn_tensor_numel(&w->r); i++)
        s += (double)w->r.data[i] * w->y.data[i];
    return s;
}

/* Sets dx (and parameter gradients) to GC_ACC_START so that an overwriting
 * backward shows up as an offset. */
GC_API void gc_reset_grads(struct gc_ws *w)
{
    for (int i = 0; i < w->l->n_in; i++)
        for (size_t j = 0; j < rn_tensor_numel(&w->dx[i]); j++)
            w->dx[i].data[j] = w->tdx[i].data[j] = GC_ACC_START;
    for (int i = 0; i < w->l->n_params; i++) {
        struct rn_tensor *g = &w->l->params[i].grad;
        for (size_t j = 0; g->data && j < rn_tensor_numel(g); j++)
            g->data[j] = GC_ACC_START;
    }
}

GC_API int gc_backward(struct gc_ws *w, const struct rn_tensor *dy, int with_dx)
{
    struct rn_error err = {{0}};
    const struct rn_tensor *xs[RN_MAX_INPUTS] = {&w->x[0], &w->x[1]};
    struct rn_tensor *dxs[RN_MAX_INPUTS] = {NULL, NULL};
    for (int i = 0; with_dx && i < w->l->n_in; i++)
        dxs[i] = &w->dx[i];
    if (w->l->type->backward(w->l, xs, &w->y, dy, dxs, &w->ctx, &err)) {
        fprintf(stderr, "gradcheck %s: backward failed: %s\n", w->l->type->name, err.msg);
        w->failed = 1;
        return -1;
    }
    return 0;
}

/* Number of floats in the gathered gradient vector: every dx, then every
 * trainable parameter's gradient. */
GC_API size_t gc_grad_len(const struct gc_ws *w)
{
    size_t len = 0;
    for (int i = 0; i < w->l->n_in; i++)
        len += rn_tensor_numel(&w->dx[i]);
    for (int i = 0; i < w->l->n_params; i++)
        if (w->l->params[i].trainable)
            len += rn_tensor_numel(&w->l->params[i].grad);
    return len;
}

/* out = (dx or tdx, param grads) - GC_ACC_START. */
GC_API void gc_gather(const struct gc_ws *w, const struct rn_tensor *dx, double *out)
{
    size_t k = 0;
    for (int i = 0; i < w->l->n_in; i++)
        for (size_t j = 0; j < rn_tensor_numel(&dx[i]); j++)
            out[k++] = (double)dx[i].data[j] - GC_ACC_START;
    for (int i = 0; i < w->l->n_params; i++) {
        const struct rn_param *p = &w->l->params[i];
        if (p->trainable)
            for (size_t j = 0; j < rn_tensor_numel(&p->grad); j++)
                out[k++] = (double)p->grad.data[j] - GC_ACC_START;
    }
}

/* Where element k of the gathered vector comes from, for messages. */
GC_API void gc_describe(const struct gc_ws *w, size_t k, const char *dxname, char *buf, size_t size)
{
    for (int i = 0; i < w->l->n_in; i++) {
        size_t m = rn_tensor_numel(&w->dx[i]);
        if (k < m) {
            snprintf(buf, size, "%s[%d][%zu]", dxname, i, k);
            return;
        }
        k -= m;
    }
    for (int i = 0; i < w->l->n_params; i++) {
        const struct rn_param *p = &w->l->params[i];
        if (!p->trainable)
            continue;
        size_t m = rn_tensor_numel(&p->grad);
        if (k < m) {
            snprintf(buf, size, "grad %s[%zu]", p->name, k);
            return;
        }
        k -= m;
    }
    snprintf(buf, size, "?[%zu]", k);
}

/* ---- comparing --------------------------------------------------------- */

GC_API int gc_close(double a, double b)
{
    double s = fmax(1.0, fmax(fabs(a), fabs(b)));
    return fabs(a - b) <= GC_TOL * s;
}

/* f[0..4] = f at steps h[0..4] = (-e, -e/2, 0, e/2, e) (h as actually
 * applied). Sets *d to the central difference at e; returns 1 when the point
 * sits next to a kink.
 *
 * Two signs of a kink in [-e, e], each exact for a quadratic f (the tangent
 * of a bilinear backward such as conv's dW is quadratic in the step):
 *  - the central differences at e and e/2 disagree;
 *  - the curvature seen at e and at e/2 disagrees: with D(h) the forward
 *    minus the backward one-sided difference at h, D(e) != 2 D(e/2).
 * For a slope jump J at distance u*e from the point (0 < u < 1/2) they are
 * J u / 2 and J |3u - 1|, while the error of the central difference is
 * J (1 - u) / 2; the threshold GC_TOL/4 makes every undetected kink's error
 * smaller than GC_TOL. */
GC_API int gc_estimate(const double *f, const double *h, double *d)
{
    double c1 = (f[4] - f[0]) / (h[4] - h[0]);
    double c2 = (f[3] - f[1]) / (h[3] - h[1]);
    double d1 = (f[4] - f[2]) / (h[4] - h[2]) - (f[2] - f[0]) / (h[2] - h[0]);
    double d2 = (f[3] - f[2]) / (h[3] - h[2]) - (f[2] - f[1]) / (h[2] - h[1]);
    double s = fmax(1.0, fmax(fabs(c1), fabs(c2)));
    *d = c1;
    return fabs(c1 - c2) > 0.25 * GC_TOL * s || fabs(d1 - 2.0 * d2) > 0.25 * GC_TOL * s;
}

struct gc_tally {
    const char *type, *check;
    int checked, skipped, failed;
    double worst; /* largest |a - b| / max(1, |a|, |b|) among compared points */
};

GC_API void gc_compare(struct gc_tally *t, const char *what, double analytic, const double *f,
                       const double *h)
{
    double d;
    t->checked++;
    if (gc_estimate(f, h, &d)) {
        t->skipped++;
        return;
    }
    double e = fabs(analytic - d) / fmax(1.0, fmax(fabs(analytic), fabs(d)));
    if (e > t->worst)
        t->worst = e;
    if (!gc_close(analytic, d)) {
        if (t->failed < GC_MAX_PRINT && !gc_quiet)
            fprintf(stderr, "gradcheck %s %s: %s: analytic %.6g, numeric %.6g\n", t->type, t->check,
                    what, analytic, d);
        t->failed++;
    }
}

/* Failures, counting "more than half the points skipped" as one. */
GC_API int gc_finish(const struct gc_tally *t)
{
    int fails = t->failed;
    if (getenv("GC_VERBOSE"))
        fprintf(stderr, "gradcheck %s %s: %d points, %d skipped, %d failed, worst error %.2g\n",
                t->type, t->check, t->checked, t->skipped, t->failed, t->worst);
    if (t->checked == 0 || 2 * t->skipped > t->checked) {
        fprintf(stderr, "gradcheck %s %s: %d of %d points skipped as kinks\n", t->type, t->check,
                t->skipped, t->checked);
        fails++;
    }
    return fails;
}

/* Indices to perturb in a tensor of m elements: all, or GC_SUBSET random. */
GC_API size_t gc_points(size_t m, struct rn_rng *r, size_t *idx)
{
    if (m <= GC_ALL_POINTS) {
        for (size_t i = 0; i < m; i++)
            idx[i] = i;
        return m;
    }
    size_t np = gc_subset < 1 ? 1 : gc_subset > GC_SUBSET ? GC_SUBSET : (size_t)gc_subset;
    for (size_t i = 0; i < np; i++)
        idx[i] = rn_rng_below(r, (uint32_t)m);
    return np;
}

/* Perturbs p[idx] by the five steps and compares with analytic. */
GC_API void gc_perturb(struct gc_ws *w, struct gc_tally *t, float *p, size_t k, double analytic,
                       const char *what)
{
    static const double steps[5] = {-GC_EPS, -GC_EPS / 2, 0.0, GC_EPS / 2, GC_EPS};
    float orig = p[k];
    double f[5], h[5];
    for (int s = 0; s < 5; s++) {
        p[k] = (float)(orig + steps[s]);
        h[s] = (double)p[k] - orig;
        f[s] = gc_objective(w);
    }
    p[k] = orig;
    gc_compare(t, what, analytic, f, h);
}

/* ---- the checks -------------------------------------------------------- */

GC_API int gc_check_backward(struct rn_layer *l, int n, int train, uint64_t seed)
{
    struct gc_ws w;
    struct gc_tally t = {
        l->type->name, train ? "backward (train)" : "backward (eval)", 0, 0, 0, 0.0};
    if (gc_ws_init(&w, l, n, train, seed))
        return 1;
    size_t len = gc_grad_len(&w);
    double *a = calloc(len ? len : 1, sizeof *a), *a2 = calloc(len ? len : 1, sizeof *a2);
    size_t *idx = calloc(GC_ALL_POINTS + GC_SUBSET, sizeof *idx);
    int fails = 0;
    if (!a || !a2 || !idx) {
        fails = 1;
        goto out;
    }
    gc_reset_grads(&w);
    if (gc_forward(&w) || gc_backward(&w, &w.r, 1)) {
        fails = 1;
        goto out;
    }
    gc_gather(&w, w.dx, a);

    /* dx = NULL must skip the input gradient and leave the parameter
     * gradients as they were. */
    gc_reset_grads(&w);
    if (gc_backward(&w, &w.r, 0)) {
        fails = 1;
        goto out;
    }
    gc_gather(&w, w.dx, a2);
    size_t off = 0;
    for (int i = 0; i < l->n_in; i++)
        off += rn_tensor_numel(&w.dx[i]);
    for (size_t k = 0; k < len; k++) {
        int bad = k < off ? a2[k] != 0.0 : fabs(a2[k] - a[k]) > 1e-6 * fmax(1.0, fabs(a[k]));
        if (bad) {
            char what[96];
            gc_describe(&w, k, "dx", what, sizeof what);
            fprintf(stderr, "gradcheck %s: with dx = NULL, %s is %g instead of %g\n", l->type->name,
                    what, a2[k] + GC_ACC_START, k < off ? GC_ACC_START : a[k] + GC_ACC_START);
            fails++;
            break;
        }
    }

    struct rn_rng r;
    rn_rng_init(&r, seed, GC_STREAM, 2);
    size_t base = 0;
    for (int i = 0; i < l->n_in; i++) {
        size_t m = rn_tensor_numel(&w.x[i]), np = gc_points(m, &r, idx);
        for (size_t j = 0; j < np; j++) {
            char what[96];
            snprintf(what, sizeof what, "dx[%d][%zu]", i, idx[j]);
            gc_perturb(&w, &t, w.x[i].data, idx[j], a[base + idx[j]], what);
        }
        base += m;
    }
    for (int i = 0; i < l->n_params; i++) {
        struct rn_param *p = &l->params[i];
        if (!p->trainable)
            continue;
        size_t m = rn_tensor_numel(&p->value), np = gc_points(m, &r, idx);
        for (size_t j = 0; j < np; j++) {
            char what[96];
            snprintf(what, sizeof what, "grad %s[%zu]", p->name, idx[j]);
            gc_perturb(&w, &t, p->value.data, idx[j], a[base + idx[j]], what);
        }
        base += m;
    }
    fails += gc_finish(&t) + w.failed;
out:
    free(a);
    free(a2);
    free(idx);
    gc_ws_free(&w);
    return fails;
}

GC_API int gc_check_tangent(struct rn_layer *l, int n, int train, uint64_t seed)
{
    static const double steps[5] = {-GC_EPS, -GC_EPS / 2, 0.0, GC_EPS / 2, GC_EPS};
    struct gc_ws w;
    struct rn_error err = {{0}};
    const char *tname = l->type->name;
    if (!l->type->tangent_forward || !l->type->tangent_backward) {
        fprintf(stderr, "gradcheck %s: no tangent functions\n", tname);
        return 1;
    }
    if (gc_ws_init(&w, l, n, train, seed))
        return 1;
    const struct rn_tensor *xs[RN_MAX_INPUTS] = {&w.x[0], &w.x[1]};
    const struct rn_tensor *txs[RN_MAX_INPUTS] = {&w.tx[0], &w.tx[1]};
    struct rn_tensor *tdxs[RN_MAX_INPUTS] = {NULL, NULL};
    for (int i = 0; i < l->n_in; i++)
        tdxs[i] = &w.tdx[i];
    size_t ylen = rn_tensor_numel(&w.r), glen = gc_grad_len(&w);
    double *ay = calloc(ylen, sizeof *ay), *ag = calloc(glen ? glen : 1, sizeof *ag);
    double *fy = calloc(5 * ylen, sizeof *fy), *fg = calloc(5 * (glen ? glen : 1), sizeof *fg);
    float *x0[RN_MAX_INPUTS] = {NULL, NULL};
    int fails = 0;
    if (!ay || !ag || !fy || !fg) {
        fails = 1;
        goto out;
    }
    for (int i = 0; i < l->n_in; i++) {
        size_t m = rn_tensor_numel(&w.x[i]);
        x0[i] = malloc(m * sizeof(float));
        if (!x0[i]) {
            fails = 1;
            goto out;
        }
        memcpy(x0[i], w.x[i].data, m * sizeof(float));
    }

    /* Analytic: forward at x, then both tangent passes. */
    gc_reset_grads(&w);
    if (gc_forward(&w)) {
        fails = 1;
        goto out;
    }
    gc_sentinel(&w, &w.ty);
    if (l->type->tangent_forward(l, xs, txs, &w.ty, &w.ctx, &err) ||
        l->type->tangent_backward(l, xs, txs, &w.r, &w.tr, tdxs, &w.ctx, &err)) {
        fprintf(stderr, "gradcheck %s: tangent pass failed: %s\n", tname, err.msg);
        fails = 1;
        goto out;
    }
    if (gc_check_output(&w, &w.ty, "tangent_forward")) {
        fails = 1;
        goto out;
    }
    for (size_t k = 0; k < ylen; k++)
        ay[k] = w.ty.data[k];
    gc_gather(&w, w.tdx, ag);

    /* Numeric: forward and backward at (x + s tx, dy + s tdy). */
    double h[5];
    for (int s = 0; s < 5; s++) {
        h[s] = steps[s];
        for (int i = 0; i < l->n_in; i++)
            for (size_t j = 0; j < rn_tensor_numel(&w.x[i]); j++)
                w.x[i].data[j] = (float)(x0[i][j] + steps[s] * w.tx[i].data[j]);
        for (size_t j = 0; j < ylen; j++)
            w.dyv.data[j] = (float)(w.r.data[j] + steps[s] * w.tr.data[j]);
        gc_reset_grads(&w);
        if (gc_forward(&w) || gc_backward(&w, &w.dyv, 1)) {
            fails = 1;
            goto out;
        }
        for (size_t k = 0; k < ylen; k++)
            fy[s * ylen + k] = w.y.data[k];
        gc_gather(&w, w.dx, fg + s * glen);
    }
    for (int i = 0; i < l->n_in; i++)
        memcpy(w.x[i].data, x0[i], rn_tensor_numel(&w.x[i]) * sizeof(float));

    struct gc_tally ty = {tname, "tangent_forward", 0, 0, 0, 0.0};
    for (size_t k = 0; k < ylen; k++) {
        double f[5];
        char what[64];
        for (int s = 0; s < 5; s++)
            f[s] = fy[s * ylen + k];
        snprintf(what, sizeof what, "ty[%zu]", k);
        gc_compare(&ty, what, ay[k], f, h);
    }
    struct gc_tally tg = {tname, "tangent_backward", 0, 0, 0, 0.0};
    for (size_t k = 0; k < glen; k++) {
        double f[5];
        char what[96];
        for (int s = 0; s < 5; s++)
            f[s] = fg[s * glen + k];
        gc_describe(&w, k, "tdx", what, sizeof what);
        gc_compare(&tg, what, ag[k], f, h);
    }
    fails += gc_finish(&ty) + gc_finish(&tg) + w.failed;
out:
    free(ay);
    free(ag);
    free(fy);
    free(fg);
    for (int i = 0; i < RN_MAX_INPUTS; i++)
        free(x0[i]);
    gc_ws_free(&w);
    return fails;
}

#endif
