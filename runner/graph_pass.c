/* graph_pass.c - the passes over the layer graph (graph.h): forward,
 * backward, the tangent passes, and the partial passes of step programs.
 * Building the graph, its memory and its devices are graph.c.
 */
#include "graph.h"

#include "backend.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* ---- full passes ------------------------------------------------------- */

static void set_n(struct rn_tensor *t, int n)
{
    t->n = n;
}

static const struct rn_tensor *input_of(struct rn_graph *g, int idx, int tangent)
{
    if (idx < 0)
        return tangent ? &g->tx : &g->x;
    return tangent ? &g->nodes[idx].ty : &g->nodes[idx].y;
}

/* A node's kernels: the layer type's own on the CPU, the backend's on a device. */
static int node_forward(struct rn_node *node, const struct rn_tensor *const *xs, struct rn_ctx *ctx,
                        struct rn_error *err)
{
    int rc = node->k ? node->k->forward(&node->layer, xs, &node->y, ctx, err)
                     : node->layer.type->forward(&node->layer, xs, &node->y, ctx, err);
    return rc ? rn_error_prefix(err, "layer '%s' (%s) forward", node->layer.name,
                                node->layer.type->name)
              : 0;
}

static int node_backward(struct rn_node *node, const struct rn_tensor *const *xs,
                         struct rn_tensor *const *dxs, struct rn_ctx *ctx, struct rn_error *err)
{
    int rc = node->k
                 ? node->k->backward(&node->layer, xs, &node->y, &node->dy, dxs, ctx, err)
                 : node->layer.type->backward(&node->layer, xs, &node->y, &node->dy, dxs, ctx, err);
    return rc ? rn_error_prefix(err, "layer '%s' (%s) backward", node->layer.name,
                                node->layer.type->name)
              : 0;
}

/* The host's part of a device graph's loss gradients goes to dy first. */
static int flush_grad_host(struct rn_graph *g, struct rn_error *err)
{
    for (int i = 0; i < g->n_nodes; i++) {
        struct rn_node *node = &g->nodes[i];
        if (!node->dyh_dirty)
            continue;
        node->dyh_dirty = 0;
        node->dyh.n = node->dy.n;
        if (rn_tensor_copy(&node->dy, &node->dyh, err))
            return rn_error_prefix(err, "gradient of '%s' to the device", node->layer.name);
    }
    return 0;
}

static int forward_nodes(struct rn_graph *g, int n, int last, const unsigned char *fused,
                         struct rn_ctx *ctx, struct rn_error *err);

int rn_graph_forward(struct rn_graph *g, int n, int last, struct rn_ctx *ctx, struct rn_error *err)
{
    if (n < 1 || n > g->max_n)
        return rn_errorf(err, "batch of %d samples does not fit the graph (max %d)", n, g->max_n);
    if (last < 0 || last >= g->n_nodes)
        last = g->n_nodes - 1;
    return forward_nodes(g, n, last, NULL, ctx, err);
}

/* ---- inference passes -------------------------------------------------- */

/* Whether inference passes fuse a relu into the node before it
 * (RN_INFER_FUSE=0 turns it off, to measure what it brings). */
static int fuse_enabled(void)
{
    static int on = -1;
    if (on < 0) {
        const char *e = getenv("RN_INFER_FUSE");
        on = !(e && strcmp(e, "0") == 0);
    }
    return on;
}

/* An inference pass's plan over nodes [0, last]. */
struct infer_plan {
    int *buf;             /* pool buffer of each node's output; -1: its own y (kept) */
    int *last_use;        /* the last node that reads each node's output */
    int *busy;            /* scratch: per buffer, the last reader of what it holds */
    unsigned char *fused; /* node i and the relu i + 1 run as one (forward_relu) */
    size_t *need;         /* floats each buffer must hold */
    int n_buf;
};

/* Node i and the relu after it run as one when the relu is the only reader
 * of i's output, which is not kept, on a CPU graph in eval mode. */
static int fusable(const struct rn_graph *g, int i, int last, const int *buf, const int *last_use)
{
    const struct rn_node *node = &g->nodes[i], *next = node + 1;
    extern const struct rn_layer_type rn_layer_relu;
    return i < last && !node->k && node->layer.type->forward_relu && buf[i] >= 0 &&
           last_use[i] == i + 1 && next->layer.type == &rn_layer_relu && next->n_in == 1 &&
           next->in[0] == i;
}

/* Buffers first fit over those whose last reader ran before the node, so a
 * node never writes where one of its inputs lives; a fused relu counts as
 * written by the node before it (whose inputs it must not overwrite). */
static void plan_infer(const struct rn_graph *g, int n, int last, const int *keep, int n_keep,
                       int fuse, struct infer_plan *pl)
{
    for (int i = 0; i <= last; i++) {
        pl->last_use[i] = i;
        pl->buf[i] = 0;
        for (int k = 0; k < n_keep; k++)
            if (keep[k] == i)
                pl->buf[i] = -1;
    }
    for (int j = 0; j <= last; j++)
        for (int k = 0; k < g->nodes[j].n_in; k++)
            if (g->nodes[j].in[k] >= 0)
                pl->last_use[g->nodes[j].in[k]] = j;
    for (int i = 0; i <= last; i++)
        pl->fused[i] = fuse && fusable(g, i, last, pl->buf, pl->last_use);
    pl->n_buf = 0;
    for (int i = 0; i <= last; i++) {
        if (pl->fused[i])
            pl->buf[i] = -1; /* never written: its relu takes the output */
        if (pl->buf[i] < 0)
            continue;
        const int written = i > 0 && pl->fused[i - 1] ? i - 1 : i;
        const struct rn_shape o = g->nodes[i].layer.out;
        const size_t numel = (size_t)n * o.c * o.h * o.w;
        int b = 0;
        while (b < pl->n_buf && pl->busy[b] >= written)
            b++;
        if (b == pl->n_buf)
            pl->need[pl->n_buf++] = 0;
        pl->buf[i] = b;
        pl->busy[b] = pl->last_use[i];
        if (pl->need[b] < numel)
            pl->need[b] = numel;
    }
}

/* Grows pool to n_buf buffers of at least need[b] floats each, on device d. */
static int pool_reserve(struct rn_pool *pool, int d, int n_buf, const size_t *need,
                        struct rn_error *err)
{
    if (n_buf > pool->n) {
        struct rn_tensor *p = realloc(pool->buf, sizeof *p * (size_t)n_buf);
        if (!p)
            return rn_errorf(err, "out of memory growing a buffer pool");
        memset(p + pool->n, 0, sizeof *p * (size_t)(n_buf - pool->n));
        pool->buf = p;
        pool->n = n_buf;
    }
    for (int b = 0; b < n_buf; b++) {
        if (pool->buf[b].data && pool->buf[b].cap >= need[b])
            continue;
        if (need[b] > INT_MAX)
            return rn_errorf(err, "pool buffer %d: %zu floats is more than a tensor holds", b,
                             need[b]);
        rn_tensor_free(&pool->buf[b]);
        if (rn_tensor_init_on(&pool->buf[b], d, 1, 1, 1, (int)need[b], err))
            return rn_error_prefix(err, "pool buffer %d", b);
    }
    return 0;
}

/* Forward over nodes [0, last]; where fused[i] (fused may be NULL: none),
 * node i and the relu after it run as one (forward_relu into the relu's y). */
static int forward_nodes(struct rn_graph *g, int n, int last, const unsigned char *fused,
                         struct rn_ctx *ctx, struct rn_error *err)
{
    g->n_fused = 0;
    set_n(&g->x, n);
    for (int i = 0; i <= last; i++) {
        struct rn_node *node = &g->nodes[i];
        const struct rn_tensor *xs[RN_MAX_INPUTS];
        for (int j = 0; j < node->n_in; j++)
            xs[j] = input_of(g, node->in[j], 0);
        set_n(&node->y, n);
        ctx->node = i;
        if (!fused || !fused[i]) {
            if (node_forward(node, xs, ctx, err))
                return -1;
            continue;
        }
        struct rn_node *relu = node + 1;
        set_n(&relu->y, n);
        if (node->layer.type->forward_relu(&node->layer, xs, &relu->y, ctx, err))
            return rn_error_prefix(err, "layer '%s' (%s) forward with '%s'", node->layer.name,
                                   node->layer.type->name, relu->layer.name);
        g->n_fused++;
        i++;
    }
    return 0;
}

int rn_graph_infer(struct rn_graph *g, int n, const int *keep, int n_keep, struct rn_ctx *ctx,
                   struct rn_error *err)
{
    if (n < 1 || n > g->max_n)
        return rn_errorf(err, "batch of %d samples does not fit the graph (max %d)", n, g->max_n);
    int last = -1;
    for (int k = 0; k < n_keep; k++) {
        if (keep[k] < 0 || keep[k] >= g->n_nodes)
            return rn_errorf(err, "inference: node %d is not in the graph (%d nodes)", keep[k],
                             g->n_nodes);
        if (keep[k] > last)
            last = keep[k];
    }
    if (last < 0)
        return rn_errorf(err, "inference: no node's output is wanted");
    const size_t cnt = (size_t)last + 1;
    struct infer_plan pl = {0};
    int *ints = malloc(sizeof(int) * cnt * 3);
    pl.fused = malloc(cnt);
    pl.need = malloc(sizeof(size_t) * cnt);
    float **own = malloc(sizeof(float *) * cnt);
    int rc = 0;
    if (!ints || !pl.fused || !pl.need || !own) {
        rc = rn_errorf(err, "out of memory planning an inference pass");
    } else {
        pl.buf = ints, pl.last_use = ints + cnt, pl.busy = ints + 2 * cnt;
        plan_infer(g, n, last, keep, n_keep, fuse_enabled() && !ctx->train, &pl);
        rc = pool_reserve(&g->ypool, g->device, pl.n_buf, pl.need, err);
    }
    if (!rc) {
        for (int i = 0; i <= last; i++) {
            own[i] = g->nodes[i].y.data;
            if (pl.buf[i] >= 0)
                g->nodes[i].y.data = g->ypool.buf[pl.buf[i]].data;
        }
        rc = forward_nodes(g, n, last, pl.fused, ctx, err);
        for (int i = 0; i <= last; i++)
            g->nodes[i].y.data = own[i];
    }
    free(ints);
    free(pl.fused);
    free(pl.need);
    free(own);
    return rc;
}

/* ---- backward ----------------------------------------------------------- */

/* Marks the nodes from which loss_node can be reached. */
static void mark_path(struct rn_graph *g, int loss_node)
{
    for (int i = 0; i < g->n_nodes; i++)
        g->nodes[i].on_path = i == loss_node;
    for (int i = loss_node; i >= 0; i--) {
        if (!g->nodes[i].on_path)
            continue;
        for (int j = 0; j < g->nodes[i].n_in; j++)
            if (g->nodes[i].in[j] >= 0)
                g->nodes[g->nodes[i].in[j]].on_path = 1;
    }
}

/* Zeroing every activation gradient each step is a few tens of MB: split it
 * over the threads in page-sized blocks. */
static void zero_parallel(float *p, long n);

/* Zeroes a node's dy for n samples, and the host part of it. */
static int zero_node_dy(struct rn_node *node, int n, struct rn_error *err)
{
    set_n(&node->dy, n);
    if (node->dy.device == RN_DEVICE_CPU)
        zero_parallel(node->dy.data, (long)rn_tensor_numel(&node->dy));
    else if (rn_tensor_zero(&node->dy, err))
        return rn_error_prefix(err, "zeroing the gradient of '%s'", node->layer.name);
    if (node->dyh.data && node->dyh.cap < node->dy.cap)
        rn_tensor_free(&node->dyh); /* dy grew: rn_graph_grad_host makes it again */
    if (node->dyh.data) {
        set_n(&node->dyh, n);
        if (rn_tensor_zero(&node->dyh, err))
            return -1;
    }
    node->dyh_dirty = 0;
    return 0;
}

static void zero_parallel(float *p, long n)
{
    const long block = 4096;
#pragma omp parallel for if (n > (1L << 16)) schedule(static)
    for (long b = 0; b < n; b += block)
        memset(p + b, 0, (size_t)(n - b < block ? n - b : block) * sizeof(float));
}

int rn_graph_reserve_grad(struct rn_graph *g, int n, struct rn_error *err)
{
    for (int i = 0; i < g->n_nodes; i++) {
        struct rn_node *node = &g->nodes[i];
        struct rn_shape o = node->layer.out;
        if (node->dy.data && node->dy.cap == (size_t)n * o.c * o.h * o.w)
            continue;
        rn_tensor_free(&node->dy);
        if (rn_tensor_init_on(&node->dy, g->device, n, o.c, o.h, o.w, err))
            return -1;
    }
    g->grad_n = n;
    return 0;
}

int rn_graph_zero_dy(struct rn_graph *g, int n, struct rn_error *err)
{
    if (n > g->grad_n && rn_graph_reserve_grad(g, n, err))
        return rn_error_prefix(err, "gradients of %d samples", n);
    for (int i = 0; i < g->n_nodes; i++)
        if (zero_node_dy(&g->nodes[i], n, err))
            return -1;
    return 0;
}

static int ensure(struct rn_tensor *t, const struct rn_tensor *like, struct rn_error *err)
{
    if (t->data)
        return 0;
    return rn_tensor_init_on(t, like->device, (int)(like->cap / rn_tensor_sample(like)), like->c,
                             like->h, like->w, err);
}

int rn_graph_backward(struct rn_graph *g, int n, int loss_node, int want_dx, struct rn_ctx *ctx,
                      struct rn_error *err)
{
    if (n > g->grad_n)
        return rn_errorf(
            err, "backward of %d samples: gradient buffers hold %d; call rn_graph_zero_dy first", n,
            g->grad_n);
    mark_path(g, loss_node);
    if (flush_grad_host(g, err))
        return -1;
    if (want_dx) {
        if (ensure(&g->dx, &g->x, err))
            return -1;
        set_n(&g->dx, n);
        if (rn_tensor_zero(&g->dx, err))
            return rn_error_prefix(err, "zeroing the input gradient");
    }
    for (int i = loss_node; i >= 0; i--) {
        struct rn_node *node = &g->nodes[i];
        if (!node->on_path)
            continue;
        const struct rn_tensor *xs[RN_MAX_INPUTS];
        struct rn_tensor *dxs[RN_MAX_INPUTS];
        for (int j = 0; j < node->n_in; j++) {
            int src = node->in[j];
            xs[j] = input_of(g, src, 0);
            dxs[j] = src >= 0 ? &g->nodes[src].dy : want_dx ? &g->dx : NULL;
        }
        ctx->node = i;
        if (node_backward(node, xs, dxs, ctx, err))
            return -1;
    }
    return 0;
}

/* ---- tangent passes ---------------------------------------------------- */

int rn_graph_tangent_input(struct rn_graph *g, int n, struct rn_error *err)
{
    if (n < 1 || n > g->max_n)
        return rn_errorf(err, "batch of %d samples does not fit the graph (max %d)", n, g->max_n);
    if (ensure(&g->tx, &g->x, err))
        return -1;
    set_n(&g->tx, n);
    return 0;
}

int rn_graph_tangent_forward(struct rn_graph *g, int n, int last, struct rn_ctx *ctx,
                             struct rn_error *err)
{
    if (last < 0 || last >= g->n_nodes)
        last = g->n_nodes - 1;
    if (ensure(&g->tx, &g->x, err))
        return -1;
    set_n(&g->tx, n);
    for (int i = 0; i <= last; i++) {
        struct rn_node *node = &g->nodes[i];
        const struct rn_layer_type *t = node->layer.type;
        if (node->k ? !node->k->tangent_forward : !t->tangent_forward)
            return rn_errorf(err, "layer '%s' (%s) has no tangent mode%s", node->layer.name,
                             t->name, node->k ? " on this device" : "");
        if (ensure(&node->ty, &node->y, err) || ensure(&node->tdy, &node->y, err))
            return -1;
        const struct rn_tensor *xs[RN_MAX_INPUTS], *txs[RN_MAX_INPUTS];
        for (int j = 0; j < node->n_in; j++) {
            xs[j] = input_of(g, node->in[j], 0);
            txs[j] = input_of(g, node->in[j], 1);
        }
        set_n(&node->ty, n);
        set_n(&node->tdy, n);
        if (rn_tensor_zero(&node->tdy, err))
            return rn_error_prefix(err, "zeroing the tangent gradient of '%s'", node->layer.name);
        ctx->node = i;
        if (node->k ? node->k->tangent_forward(&node->layer, xs, txs, &node->ty, ctx, err)
                    : t->tangent_forward(&node->layer, xs, txs, &node->ty, ctx, err))
            return rn_error_prefix(err, "layer '%s' (%s) tangent forward", node->layer.name,
                                   t->name);
    }
    return 0;
}

int rn_graph_tangent_backward(struct rn_graph *g, int n, int loss_node, struct rn_ctx *ctx,
                              struct rn_error *err)
{
    mark_path(g, loss_node);
    if (flush_grad_host(g, err))
        return -1;
    if (ensure(&g->tdx, &g->x, err))
        return -1;
    set_n(&g->tdx, n);
    if (rn_tensor_zero(&g->tdx, err))
        return rn_error_prefix(err, "zeroing the input's tangent gradient");
    for (int i = loss_node; i >= 0; i--) {
        struct rn_node *node = &g->nodes[i];
        if (!node->on_path)
            continue;
        const struct rn_layer_type *t = node->layer.type;
        if (node->k ? !node->k->tangent_backward : !t->tangent_backward)
            return rn_errorf(err, "layer '%s' (%s) has no tangent mode%s", node->layer.name,
                             t->name, node->k ? " on this device" : "");
        const struct rn_tensor *xs[RN_MAX_INPUTS], *txs[RN_MAX_INPUTS];
        struct rn_tensor *tdxs[RN_MAX_INPUTS];
        for (int j = 0; j < node->n_in; j++) {
            int src = node->in[j];
            xs[j] = input_of(g, src, 0);
            txs[j] = input_of(g, src, 1);
            tdxs[j] = src >= 0 ? &g->nodes[src].tdy : &g->tdx;
        }
        ctx->node = i;
        if (node->k
                ? node->k->tangent_backward(&node->layer, xs, txs, &node->dy, &node->tdy, tdxs, ctx,
                                            err)
                : t->tangent_backward(&node->layer, xs, txs, &node->dy, &node->tdy, tdxs, ctx, err))
            return rn_error_prefix(err, "layer '%s' (%s) tangent backward", node->layer.name,
                                   t->name);
    }
    return 0;
}

int rn_graph_zero_grad(struct rn_graph *g, struct rn_error *err)
{
    for (int i = 0; i < g->n_nodes; i++)
        for (int j = 0; j < g->nodes[i].layer.n_params; j++) {
            struct rn_param *p = &g->nodes[i].layer.params[j];
            if (p->trainable && rn_tensor_zero(&p->grad, err))
                return rn_error_prefix(err, "zeroing the gradient of '%s.%s'",
                                       g->nodes[i].layer.name, p->name);
        }
    return 0;
}

/* ---- partial passes ---------------------------------------------------- */

void rn_graph_mark_downstream(const struct rn_graph *g, const unsigned char *from,
                              unsigned char *out)
{
    /* declaration order is topological: one forward sweep suffices */
    for (int i = 0; i < g->n_nodes; i++) {
        out[i] = from[i] != 0;
        for (int j = 0; j < g->nodes[i].n_in && !out[i]; j++)
            if (g->nodes[i].in[j] >= 0 && out[g->nodes[i].in[j]])
                out[i] = 1;
    }
}

void rn_graph_mark_upstream(const struct rn_graph *g, const unsigned char *to, unsigned char *out)
{
    for (int i = 0; i < g->n_nodes; i++)
        out[i] = to[i] != 0;
    for (int i = g->n_nodes - 1; i >= 0; i--) {
        if (!out[i])
            continue;
        for (int j = 0; j < g->nodes[i].n_in; j++)
            if (g->nodes[i].in[j] >= 0)
                out[g->nodes[i].in[j]] = 1;
    }
}

int rn_graph_forward_nodes(struct rn_graph *g, int n, const unsigned char *run, struct rn_ctx *ctx,
                           struct rn_error *err)
{
    if (n < 1 || n > g->max_n)
        return rn_errorf(err, "batch of %d samples does not fit the graph (max %d)", n, g->max_n);
    set_n(&g->x, n);
    for (int i = 0; i < g->n_nodes; i++) {
        if (!run[i])
            continue;
        struct rn_node *node = &g->nodes[i];
        const struct rn_tensor *xs[RN_MAX_INPUTS];
        for (int j = 0; j < node->n_in; j++)
            xs[j] = input_of(g, node->in[j], 0);
        set_n(&node->y, n);
        ctx->node = i;
        if (node_forward(node, xs, ctx, err))
            return -1;
    }
    return 0;
}

int rn_graph_zero_dy_nodes(struct rn_graph *g, int n, const unsigned char *nodes,
                           struct rn_error *err)
{
    if (n > g->grad_n && rn_graph_reserve_grad(g, n, err))
        return rn_error_prefix(err, "gradients of %d samples", n);
    for (int i = 0; i < g->n_nodes; i++)
        if (nodes[i] && zero_node_dy(&g->nodes[i], n, err))
            return -1;
    return 0;
}

int rn_graph_backward_nodes(struct rn_graph *g, int n, const unsigned char *run, int want_dx,
                            struct rn_ctx *ctx, struct rn_error *err)
{
    if (n > g->grad_n)
        return rn_errorf(err,
                         "backward of %d samples: gradient buffers hold %d; call "
                         "rn_graph_zero_dy_nodes first",
                         n, g->grad_n);
    if (flush_grad_host(g, err))
        return -1;
    if (want_dx) {
        if (ensure(&g->dx, &g->x, err))
            return -1;
        set_n(&g->dx, n);
        if (rn_tensor_zero(&g->dx, err))
            return rn_error_prefix(err, "zeroing the input gradient");
    }
    for (int i = g->n_nodes - 1; i >= 0; i--) {
        struct rn_node *node = &g->nodes[i];
        if (!run[i])
            continue;
        const struct rn_tensor *xs[RN_MAX_INPUTS];
        struct rn_tensor *dxs[RN_MAX_INPUTS];
        for (int j = 0; j < node->n_in; j++) {
            int src = node->in[j];
            xs[j] = input_of(g, src, 0);
            dxs[j] = src >= 0 ? (run[src] ? &g->nodes[src].dy : NULL) : want_dx ? &g->dx : NULL;
        }
        ctx->node = i;
        if (node_backward(node, xs, dxs, ctx, err))
            return -1;
    }
    return 0;
}

/* ---- pooled backward --------------------------------------------------- */

/* The dypool buffer of each node's dy in a backward over run (-1: its own:
 * the src nodes and those outside run), and in first[] the step (node index,
 * descending) at which that buffer is taken: the backward of the node's last
 * consumer in run, or its own when it has none. Buffers are taken first fit
 * among those whose holder's backward has run; a node's inputs never share
 * its buffer. need[b]: floats buffer b must hold. */
static int plan_dy(const struct rn_graph *g, int n, const unsigned char *run,
                   const unsigned char *src, int *buf, size_t *need, int *first, int *busy)
{
    const int N = g->n_nodes;
    for (int i = 0; i < N; i++) {
        first[i] = i;
        buf[i] = -1;
    }
    for (int j = 0; j < N; j++)
        for (int k = 0; run[j] && k < g->nodes[j].n_in; k++) {
            int s = g->nodes[j].in[k];
            if (s >= 0 && run[s] && first[s] < j)
                first[s] = j;
        }
    int n_buf = 0;
    for (int j = N - 1; j >= 0; j--) {
        if (!run[j])
            continue;
        /* taken at step j: j itself (no consumer), then the inputs j writes first */
        for (int k = -1; k < g->nodes[j].n_in; k++) {
            int i = k < 0 ? j : g->nodes[j].in[k];
            if (i < 0 || !run[i] || src[i] || first[i] != j || buf[i] >= 0)
                continue;
            const struct rn_shape o = g->nodes[i].layer.out;
            const size_t numel = (size_t)n * o.c * o.h * o.w;
            int b = 0;
            while (b < n_buf && busy[b] <= j)
                b++;
            if (b == n_buf)
                need[n_buf++] = 0;
            buf[i] = b;
            busy[b] = i; /* until node i's own backward */
            if (need[b] < numel)
                need[b] = numel;
        }
    }
    return n_buf;
}

int rn_graph_backward_pooled(struct rn_graph *g, int n, const unsigned char *run,
                             const unsigned char *src, struct rn_ctx *ctx, struct rn_error *err)
{
    const int N = g->n_nodes;
    if (n < 1 || n > g->grad_n)
        return rn_errorf(err,
                         "backward of %d samples: gradient buffers hold %d; call "
                         "rn_graph_zero_dy_nodes first",
                         n, g->grad_n);
    int *buf = malloc(sizeof(int) * (size_t)N * 3);
    size_t *need = malloc(sizeof(size_t) * (size_t)N);
    float **own = malloc(sizeof(float *) * (size_t)N);
    int rc = !buf || !need || !own ? rn_errorf(err, "out of memory planning a backward pass") : 0;
    int n_buf = rc ? 0 : plan_dy(g, n, run, src, buf, need, buf + N, buf + 2 * N);
    g->n_assigned = 0;
    if (!rc)
        rc = pool_reserve(&g->dypool, g->device, n_buf, need, err);
    if (!rc)
        rc = flush_grad_host(g, err);
    for (int i = 0; i < N; i++)
        own[i] = g->nodes[i].dy.data;
    const int *first = buf + N;
    for (int j = N - 1; !rc && j >= 0; j--) {
        struct rn_node *node = &g->nodes[j];
        if (!run[j])
            continue;
        /* The buffers taken here start as zeros, or, for an input this node
         * alone names and whose type writes rather than adds when told
         * (backward_assigns), unset: the backward writes them whole. */
        ctx->dx_assign = 0;
        for (int k = -1; !rc && k < node->n_in; k++) {
            int i = k < 0 ? j : node->in[k];
            if (i < 0 || buf[i] < 0 || first[i] != j || g->nodes[i].dy.data != own[i])
                continue;
            struct rn_tensor *dy = &g->nodes[i].dy;
            dy->data = g->dypool.buf[buf[i]].data;
            set_n(dy, n);
            int once = k >= 0 && !node->k && node->layer.type->backward_assigns;
            for (int m = 0; once && m < node->n_in; m++)
                once = m == k || node->in[m] != i;
            if (once) {
                ctx->dx_assign |= 1u << k;
                g->n_assigned++;
            } else if (dy->device == RN_DEVICE_CPU)
                zero_parallel(dy->data, (long)rn_tensor_numel(dy));
            else
                rc = rn_tensor_zero(dy, err);
        }
        const struct rn_tensor *xs[RN_MAX_INPUTS];
        struct rn_tensor *dxs[RN_MAX_INPUTS];
        for (int k = 0; k < node->n_in; k++) {
            int s = node->in[k];
            xs[k] = input_of(g, s, 0);
            dxs[k] = s >= 0 && run[s] ? &g->nodes[s].dy : NULL;
        }
        ctx->node = j;
        if (!rc)
            rc = node_backward(node, xs, dxs, ctx, err);
    }
    ctx->dx_assign = 0;
    for (int i = 0; i < N; i++)
        g->nodes[i].dy.data = own[i];
    free(buf);
    free(need);
    free(own);
    return rc;
}
