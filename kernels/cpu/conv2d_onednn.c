/* kernels/cpu/conv2d_onednn.c - CPU convolution through oneDNN's C API (see
 * conv2d_onednn.h). Compiled to nothing without RN_HAVE_ONEDNN. */
#include "kernels/cpu/conv2d_onednn.h"

#ifdef RN_HAVE_ONEDNN

#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl_debug.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Batch sizes kept at once per layer (training, evaluation, a last short
 * batch, a saliency batch); the oldest is dropped for a fifth. */
#define N_PLANS 4

/* One tensor argument of a primitive: its plain layout (what the caller
 * holds) and the layout the primitive wants, with the reorders between
 * them when they differ. to_user accumulates (sum post-op) when the
 * argument is a gradient. */
struct arg {
    dnnl_memory_desc_t user, prim;
    int same; /* prim is user: no reorder, no scratch */
    dnnl_primitive_t to_prim, to_user;
    dnnl_primitive_t to_set; /* a gradient's plain (not accumulating) reorder out, on first use */
};

/* Everything for one batch size. */
struct plan {
    int n; /* 0: unused slot */
    unsigned long used;
    dnnl_primitive_desc_t fwd_pd;
    dnnl_primitive_t fwd, fwd_nobias; /* fwd_nobias made on first use */
    dnnl_primitive_t fwd_relu[2];     /* inference with a relu post-op [without, with bias] */
    struct arg f_src, f_w, f_dst;
    dnnl_primitive_t bwd_data, bwd_w; /* made on the first backward */
    struct arg d_dsrc, d_w, d_ddst;
    struct arg w_src, w_dw, w_ddst;
    dnnl_memory_desc_t bias_md;
};

struct rn_conv2d_onednn {
    struct rn_conv2d_cpu_geom g;
    int plain;
    unsigned long clock;
    struct plan plans[N_PLANS];
    char impl[64];
    /* x of the last forward in the forward's layout (kept only when asked):
     * the backward's weight gradient reads it when its x, batch size and
     * layout are the same. */
    void *kept;
    size_t kept_len;
    const float *kept_x; /* NULL: nothing kept */
    int kept_n;
    dnnl_memory_desc_t kept_md;
};

/* ---- process-wide engine, stream and scratch ------------------------------ */

enum { S_SRC, S_W, S_DST, S_DST2, S_BIAS, N_SCRATCH };

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static dnnl_engine_t engine;
static dnnl_stream_t stream;
static int n_users;
static void *scratch[N_SCRATCH];
static size_t scratch_len[N_SCRATCH];

static int check(dnnl_status_t st, const char *what, struct rn_error *err)
{
    if (st == dnnl_success)
        return 0;
    return rn_errorf(err, "oneDNN: %s failed: %s", what, dnnl_status2str(st));
}
#define CHECK(call) check((call), #call, err)

/* Scratch buffer `slot` of at least `bytes`; call with the lock held. */
static void *scratch_get(int slot, size_t bytes, struct rn_error *err)
{
    if (scratch_len[slot] >= bytes)
        return scratch[slot];
    free(scratch[slot]);
    size_t rounded = (bytes + 4095) & ~(size_t)4095;
    scratch[slot] = aligned_alloc(64, rounded);
    scratch_len[slot] = scratch[slot] ? rounded : 0;
    if (!scratch[slot])
        rn_errorf(err, "out of memory allocating %zu bytes of oneDNN conv2d scratch", rounded);
    return scratch[slot];
}

/* ---- descriptors ------------------------------------------------------------ */

static void destroy_prim(dnnl_primitive_t *p)
{
    if (*p)
        dnnl_primitive_destroy(*p);
    *p = NULL;
}

static void arg_free(struct arg *a)
{
    destroy_prim(&a->to_prim);
    destroy_prim(&a->to_user);
    destroy_prim(&a->to_set);
}

static void plan_free(struct plan *p)
{
    if (p->fwd_pd)
        dnnl_primitive_desc_destroy(p->fwd_pd);
    destroy_prim(&p->fwd);
    destroy_prim(&p->fwd_nobias);
    destroy_prim(&p->fwd_relu[0]);
    destroy_prim(&p->fwd_relu[1]);
    destroy_prim(&p->bwd_data);
    destroy_prim(&p->bwd_w);
    struct arg *args[] = {&p->f_src,  &p->f_w,   &p->f_dst, &p->d_dsrc, &p->d_w,
                          &p->d_ddst, &p->w_src, &p->w_dw,  &p->w_ddst};
    for (size_t i = 0; i < sizeof args / sizeof args[0]; i++)
        arg_free(args[i]);
    memset(p, 0, sizeof *p);
}

static int reorder(dnnl_primitive_t *out, const dnnl_memory_desc_t *from,
                   const dnnl_memory_desc_t *to, int accumulate, struct rn_error *err)
{
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t ops = NULL;
    dnnl_primitive_desc_t pd = NULL;
    int rc = CHECK(dnnl_primitive_attr_create(&attr));
    if (!rc && accumulate) {
        rc = CHECK(dnnl_post_ops_create(&ops)) || CHECK(dnnl_post_ops_append_sum(ops, 1.0f)) ||
             CHECK(dnnl_primitive_attr_set_post_ops(attr, ops));
    }
    if (!rc)
        rc = CHECK(dnnl_reorder_primitive_desc_create(&pd, from, engine, to, engine, attr));
    if (!rc)
        rc = CHECK(dnnl_primitive_create(out, pd));
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    if (ops)
        dnnl_post_ops_destroy(ops);
    if (attr)
        dnnl_primitive_attr_destroy(attr);
    return rc;
}

/* Fills a's primitive layout from pd's `what` and makes the reorders it
 * needs: to_prim for an input, to_user (accumulating) for a gradient out. */
static int arg_init(struct arg *a, const_dnnl_primitive_desc_t pd, dnnl_query_t what, int output,
                    struct rn_error *err)
{
    const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, what, 0);
    if (!md)
        return rn_errorf(err, "oneDNN: the convolution has no memory descriptor %d", (int)what);
    a->prim = *md;
    a->same = dnnl_memory_desc_equal(&a->prim, &a->user);
    if (output == 2) /* accumulated into the caller's tensor: always through a reorder */
        return reorder(&a->to_user, &a->prim, &a->user, 1, err);
    if (a->same)
        return 0;
    return output ? reorder(&a->to_user, &a->prim, &a->user, 0, err)
                  : reorder(&a->to_prim, &a->user, &a->prim, 0, err);
}

static void geom_dims(const struct rn_conv2d_cpu_geom *g, int n, dnnl_dims_t src, dnnl_dims_t w,
                      dnnl_dims_t dst)
{
    src[0] = n, src[1] = g->cin, src[2] = g->h, src[3] = g->w;
    w[0] = g->cout, w[1] = g->cin, w[2] = g->k, w[3] = g->k;
    dst[0] = n, dst[1] = g->cout, dst[2] = g->hout, dst[3] = g->wout;
}

/* Plain layouts of the caller's tensors and the descriptors the primitive
 * gets (the same, or format_tag_any to let oneDNN choose). */
static int mds(const struct rn_conv2d_onednn *o, int n, dnnl_memory_desc_t user[3],
               dnnl_memory_desc_t want[3], struct rn_error *err)
{
    dnnl_dims_t d[3];
    geom_dims(&o->g, n, d[0], d[1], d[2]);
    const dnnl_format_tag_t tag[3] = {dnnl_nchw, dnnl_oihw, dnnl_nchw};
    for (int i = 0; i < 3; i++)
        if (CHECK(dnnl_memory_desc_init_by_tag(&user[i], 4, d[i], dnnl_f32, tag[i])) ||
            CHECK(dnnl_memory_desc_init_by_tag(&want[i], 4, d[i], dnnl_f32,
                                               o->plain ? tag[i] : dnnl_format_tag_any)))
            return -1;
    return 0;
}

static int plan_forward(struct rn_conv2d_onednn *o, struct plan *p, int n, struct rn_error *err)
{
    const struct rn_conv2d_cpu_geom *g = &o->g;
    dnnl_memory_desc_t user[3], want[3];
    dnnl_dims_t bias_dims = {g->cout}, strides = {g->stride, g->stride}, pad = {g->pad, g->pad};
    dnnl_convolution_desc_t cd;
    p->n = n;
    if (mds(o, n, user, want, err) ||
        CHECK(dnnl_memory_desc_init_by_tag(&p->bias_md, 1, bias_dims, dnnl_f32, dnnl_a)) ||
        CHECK(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_training,
                                                 dnnl_convolution_direct, &want[0], &want[1],
                                                 &p->bias_md, &want[2], strides, pad, pad)) ||
        CHECK(dnnl_primitive_desc_create(&p->fwd_pd, &cd, NULL, engine, NULL)) ||
        CHECK(dnnl_primitive_create(&p->fwd, p->fwd_pd)))
        return -1;
    p->f_src.user = p->d_dsrc.user = p->w_src.user = user[0];
    p->f_w.user = p->d_w.user = p->w_dw.user = user[1];
    p->f_dst.user = p->d_ddst.user = p->w_ddst.user = user[2];
    if (arg_init(&p->f_src, p->fwd_pd, dnnl_query_src_md, 0, err) ||
        arg_init(&p->f_w, p->fwd_pd, dnnl_query_weights_md, 0, err) ||
        arg_init(&p->f_dst, p->fwd_pd, dnnl_query_dst_md, 1, err))
        return -1;
    const char *impl = NULL;
    if (dnnl_primitive_desc_query(p->fwd_pd, dnnl_query_impl_info_str, 0, &impl) == dnnl_success &&
        impl)
        snprintf(o->impl, sizeof o->impl, "%s", impl);
    return 0;
}

/* A forward variant on the layouts the forward chose, so its reorders serve
 * it too: without bias (tangent mode: training), or with a relu post-op
 * (inference), bias or not. */
static int plan_forward_variant(struct rn_conv2d_onednn *o, struct plan *p, int bias, int relu,
                                dnnl_primitive_t *out, struct rn_error *err)
{
    const struct rn_conv2d_cpu_geom *g = &o->g;
    dnnl_dims_t strides = {g->stride, g->stride}, pad = {g->pad, g->pad};
    dnnl_convolution_desc_t cd;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    int rc =
        relu && (CHECK(dnnl_post_ops_create(&po)) ||
                 CHECK(dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f)) ||
                 CHECK(dnnl_primitive_attr_create(&attr)) ||
                 CHECK(dnnl_primitive_attr_set_post_ops(attr, po)));
    rc = rc ||
         CHECK(dnnl_convolution_forward_desc_init(
             &cd, relu ? dnnl_forward_inference : dnnl_forward_training, dnnl_convolution_direct,
             &p->f_src.prim, &p->f_w.prim, bias ? &p->bias_md : NULL, &p->f_dst.prim, strides, pad,
             pad)) ||
         CHECK(dnnl_primitive_desc_create(&pd, &cd, attr, engine, NULL)) ||
         CHECK(dnnl_primitive_create(out, pd));
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    if (attr)
        dnnl_primitive_attr_destroy(attr);
    if (po)
        dnnl_post_ops_destroy(po);
    return rc;
}

static int plan_backward(struct rn_conv2d_onednn *o, struct plan *p, struct rn_error *err)
{
    const struct rn_conv2d_cpu_geom *g = &o->g;
    dnnl_memory_desc_t user[3], want[3];
    dnnl_dims_t strides = {g->stride, g->stride}, pad = {g->pad, g->pad};
    dnnl_convolution_desc_t cd;
    dnnl_primitive_desc_t pd_d = NULL, pd_w = NULL;
    int rc = mds(o, p->n, user, want, err) ||
             CHECK(dnnl_convolution_backward_data_desc_init(
                 &cd, dnnl_convolution_direct, &want[0], &want[1], &want[2], strides, pad, pad)) ||
             CHECK(dnnl_primitive_desc_create(&pd_d, &cd, NULL, engine, p->fwd_pd)) ||
             CHECK(dnnl_primitive_create(&p->bwd_data, pd_d)) ||
             arg_init(&p->d_dsrc, pd_d, dnnl_query_diff_src_md, 2, err) ||
             arg_init(&p->d_w, pd_d, dnnl_query_weights_md, 0, err) ||
             arg_init(&p->d_ddst, pd_d, dnnl_query_diff_dst_md, 0, err) ||
             CHECK(dnnl_convolution_backward_weights_desc_init(&cd, dnnl_convolution_direct,
                                                               &want[0], &want[1], &p->bias_md,
                                                               &want[2], strides, pad, pad)) ||
             CHECK(dnnl_primitive_desc_create(&pd_w, &cd, NULL, engine, p->fwd_pd)) ||
             CHECK(dnnl_primitive_create(&p->bwd_w, pd_w)) ||
             arg_init(&p->w_src, pd_w, dnnl_query_src_md, 0, err) ||
             arg_init(&p->w_dw, pd_w, dnnl_query_diff_weights_md, 2, err) ||
             arg_init(&p->w_ddst, pd_w, dnnl_query_diff_dst_md, 0, err);
    if (pd_d)
        dnnl_primitive_desc_destroy(pd_d);
    if (pd_w)
        dnnl_primitive_desc_destroy(pd_w);
    return rc;
}

/* The plan for batch size n, made (evicting the least recently used) when
 * there is none. */
static struct plan *plan_get(struct rn_conv2d_onednn *o, int n, struct rn_error *err)
{
    struct plan *victim = &o->plans[0];
    for (int i = 0; i < N_PLANS; i++) {
        struct plan *p = &o->plans[i];
        if (p->n == n) {
            p->used = ++o->clock;
            return p;
        }
        if (p->used < victim->used)
            victim = p;
    }
    plan_free(victim);
    if (plan_forward(o, victim, n, err)) {
        plan_free(victim);
        return NULL;
    }
    victim->used = ++o->clock;
    return victim;
}

/* ---- execution ---------------------------------------------------------------- */

/* A memory object over ptr (NULL: none). */
static dnnl_memory_t mem(const dnnl_memory_desc_t *md, const void *ptr, struct rn_error *err)
{
    dnnl_memory_t m = NULL;
    if (CHECK(dnnl_memory_create(&m, md, engine, (void *)ptr)))
        return NULL;
    return m;
}

/* Runs prim on n (arg, memory) pairs, then frees the memory objects. A NULL
 * memory among them (a failed mem()) fails the call. */
static int exec(dnnl_primitive_t prim, int n, const int *names, dnnl_memory_t *ms,
                struct rn_error *err)
{
    dnnl_exec_arg_t args[8];
    int rc = 0;
    for (int i = 0; i < n; i++) {
        args[i] = (dnnl_exec_arg_t){names[i], ms[i]};
        if (!ms[i])
            rc = -1;
    }
    if (!rc)
        rc =
            CHECK(dnnl_primitive_execute(prim, stream, n, args)) || CHECK(dnnl_stream_wait(stream));
    for (int i = 0; i < n; i++)
        if (ms[i])
            dnnl_memory_destroy(ms[i]);
    return rc;
}

static int run_reorder(dnnl_primitive_t r, const dnnl_memory_desc_t *from, const void *src,
                       const dnnl_memory_desc_t *to, void *dst, struct rn_error *err)
{
    const int names[2] = {DNNL_ARG_FROM, DNNL_ARG_TO};
    dnnl_memory_t ms[2] = {mem(from, src, err), mem(to, dst, err)};
    return exec(r, 2, names, ms, err);
}

/* The caller's tensor `user` in the primitive's layout: itself, or its
 * reorder into scratch slot. NULL on failure. */
static const void *arg_in(const struct arg *a, const void *user, int slot, struct rn_error *err)
{
    if (a->same)
        return user;
    void *buf = scratch_get(slot, dnnl_memory_desc_get_size(&a->prim), err);
    if (!buf || run_reorder(a->to_prim, &a->user, user, &a->prim, buf, err))
        return NULL;
    return buf;
}

/* x in the forward's layout, reordered into o->kept (grown as needed)
 * rather than the shared scratch, and remembered for the backward. */
static const void *keep_input(struct rn_conv2d_onednn *o, const struct plan *p, const float *x,
                              struct rn_error *err)
{
    const size_t bytes = dnnl_memory_desc_get_size(&p->f_src.prim);
    if (o->kept_len < bytes) {
        free(o->kept);
        o->kept = aligned_alloc(64, (bytes + 4095) & ~(size_t)4095);
        o->kept_len = o->kept ? (bytes + 4095) & ~(size_t)4095 : 0;
        if (!o->kept) {
            rn_errorf(err, "out of memory allocating %zu bytes for conv2d's kept input", bytes);
            return NULL;
        }
    }
    if (run_reorder(p->f_src.to_prim, &p->f_src.user, x, &p->f_src.prim, o->kept, err))
        return NULL;
    o->kept_x = x;
    o->kept_n = p->n;
    o->kept_md = p->f_src.prim;
    return o->kept;
}

static int forward_locked(struct rn_conv2d_onednn *o, int n, const float *x, const float *w,
                          const float *bias, float *y, int keep, int relu, struct rn_error *err)
{
    struct plan *p = plan_get(o, n, err);
    const int b = bias != NULL;
    if (!p ||
        (!bias && !relu && !p->fwd_nobias &&
         plan_forward_variant(o, p, 0, 0, &p->fwd_nobias, err)) ||
        (relu && !p->fwd_relu[b] && plan_forward_variant(o, p, b, 1, &p->fwd_relu[b], err)))
        return -1;
    o->kept_x = NULL; /* whatever was kept is stale from here on */
    const void *xs =
        keep && !p->f_src.same ? keep_input(o, p, x, err) : arg_in(&p->f_src, x, S_SRC, err);
    const void *ws = xs ? arg_in(&p->f_w, w, S_W, err) : NULL;
    void *ys =
        p->f_dst.same ? y : scratch_get(S_DST, dnnl_memory_desc_get_size(&p->f_dst.prim), err);
    if (!xs || !ws || !ys)
        return -1;
    const int names[4] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST, DNNL_ARG_BIAS};
    dnnl_memory_t ms[4] = {mem(&p->f_src.prim, xs, err), mem(&p->f_w.prim, ws, err),
                           mem(&p->f_dst.prim, ys, err), bias ? mem(&p->bias_md, bias, err) : NULL};
    dnnl_primitive_t prim = relu ? p->fwd_relu[b] : bias ? p->fwd : p->fwd_nobias;
    if (exec(prim, bias ? 4 : 3, names, ms, err))
        return -1;
    if (!p->f_dst.same)
        return run_reorder(p->f_dst.to_user, &p->f_dst.prim, ys, &p->f_dst.user, y, err);
    return 0;
}

static int backward_locked(struct rn_conv2d_onednn *o, int n, const float *x, const float *w,
                           const float *dy, float *dx, int assign_dx, float *dw, float *db,
                           struct rn_error *err)
{
    struct plan *p = plan_get(o, n, err);
    if (!p || (!p->bwd_data && plan_backward(o, p, err)))
        return -1;
    const void *dys = NULL;
    if (dx) {
        dys = arg_in(&p->d_ddst, dy, S_DST, err);
        const void *ws = dys ? arg_in(&p->d_w, w, S_W, err) : NULL;
        /* dx written, not added: straight into dx when the layouts agree,
         * else through a plain reorder (made on first use). */
        const int direct = assign_dx && p->d_dsrc.same;
        if (ws && assign_dx && !direct && !p->d_dsrc.to_set &&
            reorder(&p->d_dsrc.to_set, &p->d_dsrc.prim, &p->d_dsrc.user, 0, err))
            return -1;
        void *dxs = !ws      ? NULL
                    : direct ? dx
                             : scratch_get(S_SRC, dnnl_memory_desc_get_size(&p->d_dsrc.prim), err);
        if (!dxs)
            return -1;
        const int names[3] = {DNNL_ARG_DIFF_DST, DNNL_ARG_WEIGHTS, DNNL_ARG_DIFF_SRC};
        dnnl_memory_t ms[3] = {mem(&p->d_ddst.prim, dys, err), mem(&p->d_w.prim, ws, err),
                               mem(&p->d_dsrc.prim, dxs, err)};
        if (exec(p->bwd_data, 3, names, ms, err) ||
            (!direct && run_reorder(assign_dx ? p->d_dsrc.to_set : p->d_dsrc.to_user,
                                    &p->d_dsrc.prim, dxs, &p->d_dsrc.user, dx, err)))
            return -1;
    }
    if (!dw && !db)
        return 0;
    if (!dw) { /* the bias gradient alone (x may be NULL): per-channel sums of dy */
        const size_t P = (size_t)o->g.hout * o->g.wout;
        for (int c = 0; c < o->g.cout; c++) {
            float s = 0.0f;
            for (int i = 0; i < n; i++) {
                const float *row = dy + ((size_t)i * o->g.cout + c) * P;
                for (size_t q = 0; q < P; q++)
                    s += row[q];
            }
            db[c] += s;
        }
        return 0;
    }
    /* dy in backward-weights' layout: the one made above when they agree. */
    const int reuse = dys && dnnl_memory_desc_equal(&p->w_ddst.prim, &p->d_ddst.prim);
    const void *dyw = reuse ? dys : arg_in(&p->w_ddst, dy, S_DST2, err);
    const int kept = o->kept_x && o->kept_x == x && o->kept_n == n &&
                     dnnl_memory_desc_equal(&o->kept_md, &p->w_src.prim);
    const void *xs = !dyw ? NULL : kept ? o->kept : arg_in(&p->w_src, x, S_SRC, err);
    void *dws = xs ? scratch_get(S_W, dnnl_memory_desc_get_size(&p->w_dw.prim), err) : NULL;
    float *dbs = dws ? scratch_get(S_BIAS, (size_t)o->g.cout * sizeof(float), err) : NULL;
    if (!dbs)
        return -1;
    const int names[4] = {DNNL_ARG_SRC, DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_WEIGHTS,
                          DNNL_ARG_DIFF_BIAS};
    dnnl_memory_t ms[4] = {mem(&p->w_src.prim, xs, err), mem(&p->w_ddst.prim, dyw, err),
                           mem(&p->w_dw.prim, dws, err), mem(&p->bias_md, dbs, err)};
    if (exec(p->bwd_w, 4, names, ms, err))
        return -1;
    if (run_reorder(p->w_dw.to_user, &p->w_dw.prim, dws, &p->w_dw.user, dw, err))
        return -1;
    if (db)
        for (int c = 0; c < o->g.cout; c++)
            db[c] += dbs[c];
    return 0;
}

/* ---- the interface ------------------------------------------------------------- */

int rn_conv2d_onednn_create(struct rn_conv2d_onednn **out, const struct rn_conv2d_cpu_geom *g,
                            int plain, struct rn_error *err)
{
    *out = NULL;
    struct rn_conv2d_onednn *o = calloc(1, sizeof *o);
    if (!o)
        return rn_errorf(err, "out of memory allocating oneDNN conv2d state");
    o->g = *g;
    o->plain = plain;
    pthread_mutex_lock(&lock);
    int rc = 0;
    if (!engine)
        rc = CHECK(dnnl_engine_create(&engine, dnnl_cpu, 0)) ||
             CHECK(dnnl_stream_create(&stream, engine, dnnl_stream_default_flags));
    if (!rc)
        n_users++;
    pthread_mutex_unlock(&lock);
    if (rc) {
        free(o);
        return -1;
    }
    *out = o;
    return 0;
}

void rn_conv2d_onednn_free(struct rn_conv2d_onednn *o)
{
    if (!o)
        return;
    for (int i = 0; i < N_PLANS; i++)
        plan_free(&o->plans[i]);
    free(o->kept);
    free(o);
    pthread_mutex_lock(&lock);
    if (--n_users == 0) { /* the last convolution: give the scratch back */
        for (int i = 0; i < N_SCRATCH; i++) {
            free(scratch[i]);
            scratch[i] = NULL;
            scratch_len[i] = 0;
        }
    }
    pthread_mutex_unlock(&lock);
}

int rn_conv2d_onednn_forward(struct rn_conv2d_onednn *o, const struct rn_conv2d_cpu_geom *g,
                             const float *x, const float *w, const float *bias, float *y, int keep,
                             int relu, struct rn_error *err)
{
    if (g->n <= 0)
        return 0;
    pthread_mutex_lock(&lock);
    int rc = forward_locked(o, g->n, x, w, bias, y, keep, relu, err);
    pthread_mutex_unlock(&lock);
    return rc;
}

int rn_conv2d_onednn_backward(struct rn_conv2d_onednn *o, const struct rn_conv2d_cpu_geom *g,
                              const float *x, const float *w, const float *dy, float *dx,
                              int assign_dx, float *dw, float *db, struct rn_error *err)
{
    if (g->n <= 0 || (!dx && !dw && !db))
        return 0;
    pthread_mutex_lock(&lock);
    int rc = backward_locked(o, g->n, x, w, dy, dx, assign_dx, dw, db, err);
    pthread_mutex_unlock(&lock);
    return rc;
}

const char *rn_conv2d_onednn_impl(const struct rn_conv2d_onednn *o)
{
    return o->impl;
}

#endif
