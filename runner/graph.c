/* graph.c - building the layer graph (graph.h), its memory, moving it to a
 * device and host access to its tensors. The passes over it are graph_pass.c.
 */
#include "graph.h"

#include "backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- building ---------------------------------------------------------- */

static void values_defaults(struct rn_values *v, const struct rn_layer_type *t)
{
    memset(v, 0, sizeof *v);
    for (int i = 0; i < t->n_keys; i++) {
        v->num[i] = t->keys[i].def;
        if (t->keys[i].def_str)
            snprintf(v->str[i], RN_STR_MAX, "%s", t->keys[i].def_str);
    }
}

static void values_set(struct rn_values *v, const struct rn_layer_type *t, const char *key,
                       double num)
{
    for (int i = 0; i < t->n_keys; i++)
        if (strcmp(t->keys[i].key, key) == 0) {
            v->num[i] = num;
            v->given[i] = 1;
            return;
        }
}

static double values_get(const struct rn_values *v, const struct rn_layer_type *t, const char *key)
{
    for (int i = 0; i < t->n_keys; i++)
        if (strcmp(t->keys[i].key, key) == 0)
            return v->num[i];
    return 0;
}

int rn_graph_find(const struct rn_graph *g, const char *name)
{
    for (int i = 0; i < g->n_nodes; i++)
        if (strcmp(g->nodes[i].layer.name, name) == 0)
            return i;
    return -1;
}

static struct rn_shape node_shape(const struct rn_graph *g, int idx)
{
    return idx < 0 ? g->in_shape : g->nodes[idx].layer.out;
}

/* Appends one node: builds its layer on the given inputs and allocates its
 * activations. file/line/col locate the spec entry it came from. */
static int add_node(struct rn_graph *g, int cap, const struct rn_layer_type *type, const char *name,
                    const struct rn_values *v, const int *in, int n_in, const char *file, int line,
                    int col, struct rn_error *err)
{
    if (g->n_nodes >= cap)
        return rn_errorf(err, "%s:%d:%d: error: model has more than %d nodes", file, line, col,
                         cap);
    if (rn_graph_find(g, name) >= 0)
        return rn_errorf(err, "%s:%d:%d: error: node name '%s' is used twice", file, line, col,
                         name);
    struct rn_node *node = &g->nodes[g->n_nodes];
    memset(node, 0, sizeof *node);
    struct rn_layer *l = &node->layer;
    l->type = type;
    snprintf(l->name, sizeof l->name, "%s", name);
    l->file = file;
    l->line = line;
    l->col = col;
    l->v = *v;
    l->n_in = n_in;
    node->n_in = n_in;
    for (int i = 0; i < n_in; i++) {
        node->in[i] = in[i];
        l->in[i] = node_shape(g, in[i]);
    }
    l->max_n = g->max_n;
    g->n_nodes++; /* counted now so rn_graph_free releases a half-built node */
    if (type->build(l, g->max_n, err))
        return rn_error_prefix(err, "%s:%d:%d: error: layer '%s' (%s)", file, line, col, name,
                               type->name);
    if (l->out.c < 1 || l->out.h < 1 || l->out.w < 1)
        return rn_errorf(err, "%s:%d:%d: error: layer '%s' (%s): output shape (%d,%d,%d) is empty",
                         file, line, col, name, type->name, l->out.c, l->out.h, l->out.w);
    for (int i = 0; i < l->n_params; i++)
        g->param_bytes +=
            (double)(rn_tensor_numel(&l->params[i].value) + rn_tensor_numel(&l->params[i].grad)) *
            sizeof(float);
    g->act_bytes += 2.0 * g->max_n * l->out.c * l->out.h * l->out.w * sizeof(float);
    double limit = rn_mem_limit();
    if (g->param_bytes + g->act_bytes > limit) {
        char b[4][32];
        return rn_errorf(err,
                         "%s:%d:%d: error: layer '%s' (%s): the model needs at least %s for a "
                         "batch of %d (parameters and gradients %s, activations %s up to here), "
                         "more than the %s of memory this machine has; make the batch or the "
                         "model smaller",
                         file, line, col, name, type->name,
                         rn_mem_str(g->param_bytes + g->act_bytes, b[0]), g->max_n,
                         rn_mem_str(g->param_bytes, b[1]), rn_mem_str(g->act_bytes, b[2]),
                         rn_mem_str(limit, b[3]));
    }
    if (rn_tensor_init(&node->y, g->max_n, l->out.c, l->out.h, l->out.w, err) ||
        rn_tensor_init(&node->dy, g->max_n, l->out.c, l->out.h, l->out.w, err))
        return -1;
    return 0;
}

/* ResNet BasicBlock (CIFAR ResNet naming): conv1 bn1 relu1 conv2 bn2
 * [shortcut.0 shortcut.1] add, then the final relu named after the block. */
static int expand_basic_block(struct rn_graph *g, int cap, const struct rn_spec_layer *s,
                              const char *name, int input, struct rn_error *err)
{
    extern const struct rn_layer_type rn_layer_conv2d, rn_layer_batchnorm, rn_layer_relu,
        rn_layer_add;
    const struct rn_layer_type *bt = s->type;
    int filters = (int)values_get(&s->v, bt, "filters");
    int stride = (int)values_get(&s->v, bt, "stride");
    int kernel = (int)values_get(&s->v, bt, "kernel");
    struct rn_shape in = node_shape(g, input);
    char nm[RN_NAME_MAX + 16];
    struct rn_values v;
    const char *f = s->file;
    int ln = s->line, cl = s->col;

#define NODE(type_, suffix_, inputs_, n_in_)                                                       \
    do {                                                                                           \
        snprintf(nm, sizeof nm, "%s.%s", name, suffix_);                                           \
        if (add_node(g, cap, &type_, nm, &v, inputs_, n_in_, f, ln, cl, err))                      \
            return -1;                                                                             \
    } while (0)

    values_defaults(&v, &rn_layer_conv2d);
    values_set(&v, &rn_layer_conv2d, "filters", filters);
    values_set(&v, &rn_layer_conv2d, "kernel", kernel);
    values_set(&v, &rn_layer_conv2d, "stride", stride);
    values_set(&v, &rn_layer_conv2d, "padding", kernel / 2);
    values_set(&v, &rn_layer_conv2d, "bias", 0);
    NODE(rn_layer_conv2d, "conv1", &input, 1);
    int prev = g->n_nodes - 1;
    values_defaults(&v, &rn_layer_batchnorm);
    NODE(rn_layer_batchnorm, "bn1", &prev, 1);
    prev = g->n_nodes - 1;
    values_defaults(&v, &rn_layer_relu);
    NODE(rn_layer_relu, "relu1", &prev, 1);
    prev = g->n_nodes - 1;
    values_defaults(&v, &rn_layer_conv2d);
    values_set(&v, &rn_layer_conv2d, "filters", filters);
    values_set(&v, &rn_layer_conv2d, "kernel", kernel);
    values_set(&v, &rn_layer_conv2d, "padding", kernel / 2);
    values_set(&v, &rn_layer_conv2d, "bias", 0);
    NODE(rn_layer_conv2d, "conv2", &prev, 1);
    prev = g->n_nodes - 1;
    values_defaults(&v, &rn_layer_batchnorm);
    NODE(rn_layer_batchnorm, "bn2", &prev, 1);
    int main_out = g->n_nodes - 1;
    int shortcut = input;
    if (stride != 1 || in.c != filters) {
        values_defaults(&v, &rn_layer_conv2d);
        values_set(&v, &rn_layer_conv2d, "filters", filters);
        values_set(&v, &rn_layer_conv2d, "kernel", 1);
        values_set(&v, &rn_layer_conv2d, "stride", stride);
        values_set(&v, &rn_layer_conv2d, "bias", 0);
        NODE(rn_layer_conv2d, "shortcut.0", &input, 1);
        prev = g->n_nodes - 1;
        values_defaults(&v, &rn_layer_batchnorm);
        NODE(rn_layer_batchnorm, "shortcut.1", &prev, 1);
        shortcut = g->n_nodes - 1;
    }
    int pair[2] = {main_out, shortcut};
    values_defaults(&v, &rn_layer_add);
    NODE(rn_layer_add, "add", pair, 2);
#undef NODE
    prev = g->n_nodes - 1;
    values_defaults(&v, &rn_layer_relu);
    return add_node(g, cap, &rn_layer_relu, name, &v, &prev, 1, f, ln, cl, err);
}

int rn_graph_build(struct rn_graph *g, const struct rn_spec_model *m, struct rn_shape in, int max_n,
                   struct rn_error *err)
{
    memset(g, 0, sizeof *g);
    g->in_shape = in;
    g->max_n = max_n;
    g->grad_n = max_n;
    int cap = 0;
    for (int i = 0; i < m->n_layers; i++)
        cap += strcmp(m->layers[i].type->name, "basic_block") == 0 ? 10 : 1;
    g->nodes = rn_calloc((size_t)cap + 1, sizeof *g->nodes, err);
    if (!g->nodes)
        return -1;
    g->act_bytes = (double)max_n * in.c * in.h * in.w * sizeof(float);
    if (g->act_bytes > rn_mem_limit()) {
        char b[2][32];
        rn_errorf(err,
                  "model '%s': a batch of %d inputs (%d, %d, %d) needs %s, more than the %s of "
                  "memory this machine has; make the batch smaller",
                  m->name, max_n, in.c, in.h, in.w, rn_mem_str(g->act_bytes, b[0]),
                  rn_mem_str(rn_mem_limit(), b[1]));
        goto fail;
    }
    if (rn_tensor_init(&g->x, max_n, in.c, in.h, in.w, err))
        goto fail;
    if (m->n_layers == 0) {
        rn_errorf(err, "model '%s' has no layers", m->name);
        goto fail;
    }
    for (int i = 0; i < m->n_layers; i++) {
        const struct rn_spec_layer *s = &m->layers[i];
        char name[RN_NAME_MAX];
        if (s->name[0]) {
            snprintf(name, sizeof name, "%s", s->name);
        } else {
            /* <type><k>, k counting this type's layers so far, skipping taken names */
            int k = 1;
            for (int j = 0; j < i; j++)
                k += m->layers[j].type == s->type;
            do
                snprintf(name, sizeof name, "%s%d", s->type->name, k++);
            while (rn_graph_find(g, name) >= 0);
        }
        int inputs[RN_MAX_INPUTS];
        int n_in = s->n_from ? s->n_from : 1;
        if (s->n_from == 0)
            inputs[0] = g->n_nodes - 1;
        for (int j = 0; j < s->n_from; j++) {
            inputs[j] = strcmp(s->from[j], "input") == 0 ? -1 : rn_graph_find(g, s->from[j]);
            if (inputs[j] < 0 && strcmp(s->from[j], "input") != 0) {
                rn_errorf(err, "%s:%d:%d: error: layer '%s' (%s): from: no earlier node named '%s'",
                          s->file, s->line, s->col, name, s->type->name, s->from[j]);
                goto fail;
            }
        }
        if (n_in != s->type->n_inputs) {
            rn_errorf(
                err, "%s:%d:%d: error: layer '%s' (%s): takes %d input%s, got %d; set from: [a, b]",
                s->file, s->line, s->col, name, s->type->name, s->type->n_inputs,
                s->type->n_inputs == 1 ? "" : "s", n_in);
            goto fail;
        }
        int rc;
        if (strcmp(s->type->name, "basic_block") == 0)
            rc = expand_basic_block(g, cap, s, name, inputs[0], err);
        else
            rc =
                add_node(g, cap, s->type, name, &s->v, inputs, n_in, s->file, s->line, s->col, err);
        if (rc)
            goto fail;
    }
    return 0;
fail:
    rn_graph_free(g);
    return -1;
}

/* ---- memory ------------------------------------------------------------ */

static void scratch_free(struct rn_graph *g)
{
    for (int i = 0; i < RN_GRAPH_SCRATCH; i++) {
        if (g->scratch[i])
            rn_backend_of((enum rn_device)g->scratch_device[i])->release(g->scratch[i]);
        g->scratch[i] = NULL;
        g->scratch_bytes[i] = 0;
    }
    struct rn_pool *pools[] = {&g->ypool, &g->dypool};
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < pools[k]->n; i++)
            rn_tensor_free(&pools[k]->buf[i]);
        free(pools[k]->buf);
        pools[k]->buf = NULL;
        pools[k]->n = 0;
    }
}

void *rn_graph_scratch(struct rn_graph *g, int slot, int d, size_t bytes, struct rn_error *err)
{
    if (slot < 0 || slot >= RN_GRAPH_SCRATCH) {
        rn_errorf(err, "graph scratch slot %d of %d", slot, RN_GRAPH_SCRATCH);
        return NULL;
    }
    if (g->scratch[slot] && g->scratch_device[slot] == d && g->scratch_bytes[slot] >= bytes)
        return g->scratch[slot];
    const struct rn_backend *be = rn_backend_of((enum rn_device)d);
    if (!be) {
        rn_errorf(err, "graph scratch: no backend for device %d", d);
        return NULL;
    }
    if (g->scratch[slot])
        rn_backend_of((enum rn_device)g->scratch_device[slot])->release(g->scratch[slot]);
    g->scratch[slot] = NULL;
    g->scratch_bytes[slot] = 0;
    if (be->alloc(&g->scratch[slot], bytes ? bytes : 1, err))
        return NULL;
    g->scratch_bytes[slot] = bytes;
    g->scratch_device[slot] = d;
    return g->scratch[slot];
}

void rn_graph_free(struct rn_graph *g)
{
    if (!g)
        return;
    scratch_free(g);
    for (int i = 0; i < g->n_nodes; i++) {
        struct rn_node *node = &g->nodes[i];
        if (node->k && node->k->release)
            node->k->release(&node->layer);
        rn_layer_free(&node->layer);
        rn_tensor_free(&node->y);
        rn_tensor_free(&node->yh);
        rn_tensor_free(&node->dyh);
        rn_tensor_free(&node->dy);
        rn_tensor_free(&node->ty);
        rn_tensor_free(&node->tdy);
    }
    free(g->nodes);
    rn_tensor_free(&g->x);
    rn_tensor_free(&g->dx);
    rn_tensor_free(&g->tx);
    rn_tensor_free(&g->tdx);
    rn_tensor_free(&g->xh);
    memset(g, 0, sizeof *g);
}

void rn_graph_init_params(struct rn_graph *g, uint64_t seed)
{
    for (int i = 0; i < g->n_nodes; i++) {
        struct rn_layer *l = &g->nodes[i].layer;
        if (l->type->init) {
            struct rn_rng r;
            rn_rng_init(&r, seed, RN_STREAM_INIT, (uint64_t)i);
            l->type->init(l, &r);
        }
    }
}

size_t rn_graph_n_trainable(const struct rn_graph *g)
{
    size_t n = 0;
    for (int i = 0; i < g->n_nodes; i++)
        for (int j = 0; j < g->nodes[i].layer.n_params; j++)
            if (g->nodes[i].layer.params[j].trainable)
                n += rn_tensor_numel(&g->nodes[i].layer.params[j].value);
    return n;
}

/* ---- devices and host access ------------------------------------------- */

/* Moves t's floats (all cap of them) to device d; an empty tensor only
 * changes its device, so lazily allocated buffers follow. */
static int move_tensor(struct rn_tensor *t, int d, struct rn_error *err)
{
    if (!t->data || t->device == d) {
        t->device = d;
        return 0;
    }
    size_t sample = rn_tensor_sample(t);
    int n_cap = sample ? (int)(t->cap / sample) : 0, n = t->n;
    struct rn_tensor moved;
    if (rn_tensor_init_on(&moved, (enum rn_device)d, n_cap, t->c, t->h, t->w, err))
        return -1;
    struct rn_tensor all = *t;
    all.n = n_cap;
    if (rn_tensor_copy(&moved, &all, err)) {
        rn_tensor_free(&moved);
        return -1;
    }
    rn_tensor_free(t);
    *t = moved;
    t->n = n;
    return 0;
}

int rn_graph_to_device(struct rn_graph *g, int d, struct rn_error *err)
{
    if (d == g->device)
        return 0;
    scratch_free(g);
    const struct rn_backend *be = rn_backend_of((enum rn_device)d);
    if (!be)
        return rn_errorf(err, "this runner was built without a backend for device %d", d);
    for (int i = 0; d != RN_DEVICE_CPU && i < g->n_nodes; i++) {
        const struct rn_layer_kernels *k = be->layer(g->nodes[i].layer.type->name);
        if (!k || !k->forward || !k->backward)
            return rn_errorf(err, "layer '%s' (%s) has no %s kernels", g->nodes[i].layer.name,
                             g->nodes[i].layer.type->name, be->name);
    }
    for (int i = 0; i < g->n_nodes; i++) {
        struct rn_node *node = &g->nodes[i];
        struct rn_layer *l = &node->layer;
        if (node->k && node->k->release)
            node->k->release(l);
        node->k = NULL;
        for (int j = 0; j < l->n_params; j++)
            if (move_tensor(&l->params[j].value, d, err) || move_tensor(&l->params[j].grad, d, err))
                return rn_error_prefix(err, "moving '%s.%s' to %s", l->name, l->params[j].name,
                                       be->name);
        if (move_tensor(&node->y, d, err) || move_tensor(&node->dy, d, err) ||
            move_tensor(&node->ty, d, err) || move_tensor(&node->tdy, d, err))
            return rn_error_prefix(err, "moving the activations of '%s' to %s", l->name, be->name);
        node->dyh_dirty = 0;
        if (d != RN_DEVICE_CPU) {
            node->k = be->layer(l->type->name);
            if (node->k->prepare && node->k->prepare(l, g->max_n, err)) {
                node->k = NULL;
                return rn_error_prefix(err, "layer '%s' (%s) on %s", l->name, l->type->name,
                                       be->name);
            }
        }
    }
    if (move_tensor(&g->x, d, err) || move_tensor(&g->dx, d, err) || move_tensor(&g->tx, d, err) ||
        move_tensor(&g->tdx, d, err))
        return rn_error_prefix(err, "moving the graph input to %s", be->name);
    g->device = d;
    return 0;
}

/* A host tensor shaped like t (reallocated when t grew), batch t->n. */
static int host_like(struct rn_tensor *h, const struct rn_tensor *t, struct rn_error *err)
{
    if (h->data && h->cap < t->cap)
        rn_tensor_free(h);
    if (!h->data) {
        size_t sample = rn_tensor_sample(t);
        if (rn_tensor_init(h, sample ? (int)(t->cap / sample) : 0, t->c, t->h, t->w, err))
            return -1;
    }
    h->n = t->n;
    return 0;
}

struct rn_tensor *rn_graph_input_host(struct rn_graph *g, int n, struct rn_error *err)
{
    if (n < 0 || n > g->max_n) {
        rn_errorf(err, "batch of %d samples does not fit the graph (max %d)", n, g->max_n);
        return NULL;
    }
    g->x.n = n;
    if (g->device == RN_DEVICE_CPU)
        return &g->x;
    if (host_like(&g->xh, &g->x, err))
        return NULL;
    return &g->xh;
}

int rn_graph_input_commit(struct rn_graph *g, struct rn_error *err)
{
    if (g->device == RN_DEVICE_CPU)
        return 0;
    g->xh.n = g->x.n;
    return rn_tensor_copy(&g->x, &g->xh, err) ? rn_error_prefix(err, "batch to the device") : 0;
}

const struct rn_tensor *rn_graph_output_host(struct rn_graph *g, int i, struct rn_error *err)
{
    struct rn_node *node = &g->nodes[i];
    if (g->device == RN_DEVICE_CPU)
        return &node->y;
    if (host_like(&node->yh, &node->y, err) || rn_tensor_copy(&node->yh, &node->y, err)) {
        rn_error_prefix(err, "output of '%s' from the device", node->layer.name);
        return NULL;
    }
    return &node->yh;
}

struct rn_tensor *rn_graph_grad_host(struct rn_graph *g, int i, struct rn_error *err)
{
    struct rn_node *node = &g->nodes[i];
    if (g->device == RN_DEVICE_CPU)
        return &node->dy;
    if (node->dyh.data && node->dyh.cap < node->dy.cap)
        rn_tensor_free(&node->dyh);
    if (!node->dyh.data) {
        if (host_like(&node->dyh, &node->dy, err))
            return NULL;
        if (rn_tensor_zero(&node->dyh, err))
            return NULL;
    }
    node->dyh.n = node->dy.n;
    node->dyh_dirty = 1;
    return &node->dyh;
}

struct rn_tensor *rn_host_view(struct rn_tensor *t, struct rn_tensor *stage, int fetch,
                               struct rn_error *err)
{
    if (t->device == RN_DEVICE_CPU)
        return t;
    if (host_like(stage, t, err))
        return NULL;
    stage->c = t->c;
    stage->h = t->h;
    stage->w = t->w;
    if (fetch && rn_tensor_copy(stage, t, err))
        return NULL;
    return stage;
}

int rn_host_commit(struct rn_tensor *t, struct rn_tensor *view, struct rn_error *err)
{
    if (view == t)
        return 0;
    view->n = t->n;
    return rn_tensor_copy(t, view, err);
}
