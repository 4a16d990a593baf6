/* kernels/cuda/layers/common.c - what the CUDA layer files share: the entry
 * checks of every pass (device tensors, shapes within what prepare sized the
 * state for), parameter checks, zeroed device state, the state of the types
 * that keep none, the pooling geometry. Contracts: common.h. */
#include <stdlib.h>

#include "kernels/cuda/layers/common.h"

/* ---- checks ---------------------------------------------------------------- */

static const char *type_name(const struct rn_layer *l)
{
    return l->type && l->type->name ? l->type->name : "?";
}

size_t rn_cuda_shape_numel(struct rn_shape s)
{
    return (size_t)s.c * s.h * s.w;
}

/* The layer's dpriv, or NULL with an error when prepare was not called. */
static void *dp_get(const struct rn_layer *l, struct rn_error *err)
{
    if (!l->dpriv)
        rn_errorf(err, "layer '%s' (%s): CUDA kernels used before prepare", l->name, type_name(l));
    return l->dpriv;
}

static int need_device(const struct rn_layer *l, const struct rn_tensor *t, const char *what,
                       struct rn_error *err)
{
    if (!t || !t->data)
        return rn_errorf(err, "layer '%s' (%s): %s has no data", l->name, type_name(l), what);
    if (t->device != RN_DEVICE_CUDA)
        return rn_errorf(err,
                         "layer '%s' (%s): %s is in host memory; the CUDA kernels need "
                         "device tensors (rn_graph_to_device)",
                         l->name, type_name(l), what);
    return 0;
}

int rn_cuda_check_input(const struct rn_layer *l, const struct rn_tensor *t, int i, int n0,
                        const char *what, struct rn_error *err)
{
    const struct rn_cuda_dp_base *b = l->dpriv;
    if (need_device(l, t, what, err))
        return -1;
    if (rn_tensor_sample(t) != rn_cuda_shape_numel(l->in[i]) || t->n < 0 || t->n > b->max_n ||
        (n0 >= 0 && t->n != n0))
        return rn_errorf(err, "layer '%s' (%s): %s is (%d,%d,%d,%d), built for (%s%d,%d,%d,%d)",
                         l->name, type_name(l), what, t->n, t->c, t->h, t->w,
                         n0 >= 0 ? "" : "<=", n0 >= 0 ? n0 : b->max_n, l->in[i].c, l->in[i].h,
                         l->in[i].w);
    return 0;
}

/* A tensor the pass reads or writes n samples of shape s in (y, dy, dx). */
static int check_room(const struct rn_layer *l, const struct rn_tensor *t, int n, struct rn_shape s,
                      const char *what, struct rn_error *err)
{
    if (need_device(l, t, what, err))
        return -1;
    if ((size_t)n * rn_cuda_shape_numel(s) > t->cap)
        return rn_errorf(err, "layer '%s' (%s): %s holds %zu floats, the pass needs %d x %zu",
                         l->name, type_name(l), what, t->cap, n, rn_cuda_shape_numel(s));
    return 0;
}

struct rn_cuda *rn_cuda_enter_forward(const struct rn_layer *l, const struct rn_tensor *const *x,
                                      int n_in, const struct rn_tensor *y, const char *what,
                                      struct rn_error *err)
{
    if (!dp_get(l, err))
        return NULL;
    for (int i = 0; i < n_in; i++)
        if (rn_cuda_check_input(l, x[i], i, i ? x[0]->n : -1, what, err))
            return NULL;
    if (check_room(l, y, x[0]->n, l->out, "output", err))
        return NULL;
    return rn_cuda_get(err);
}

struct rn_cuda *rn_cuda_enter_backward(const struct rn_layer *l, const struct rn_tensor *const *x,
                                       const struct rn_tensor *const *tx, int n_in,
                                       const struct rn_tensor *dy, const struct rn_tensor *tdy,
                                       struct rn_tensor *const *dx, struct rn_error *err)
{
    if (!dp_get(l, err))
        return NULL;
    for (int i = 0; i < n_in; i++) {
        if (rn_cuda_check_input(l, x[i], i, i ? x[0]->n : -1, "input", err))
            return NULL;
        if (tx && rn_cuda_check_input(l, tx[i], i, x[0]->n, "tangent input", err))
            return NULL;
    }
    const int n = x[0]->n;
    if (check_room(l, dy, n, l->out, "output gradient", err))
        return NULL;
    if (tdy && check_room(l, tdy, n, l->out, "output gradient tangent", err))
        return NULL;
    for (int i = 0; i < n_in; i++)
        if (dx && dx[i] && check_room(l, dx[i], n, l->in[i], "input gradient", err))
            return NULL;
    return rn_cuda_get(err);
}

/* ---- small helpers -------------------------------------------------------- */

int rn_cuda_copy_floats(struct rn_cuda *cu, float *dst, const float *src, size_t n,
                        struct rn_error *err)
{
    if (n && dst != src)
        RN_CUDA_CHECK(err, cudaMemcpyAsync(dst, src, n * sizeof(float), cudaMemcpyDeviceToDevice,
                                           cu->stream));
    return 0;
}

/* Zeroed, like the CPU layers' calloc'd state: a pass that reads the state
 * before any forward (the maxpool argmax gather) then stays in bounds
 * instead of faulting the context. Queued on the stream the kernels use. */
int rn_cuda_state_alloc(void **p, size_t bytes, struct rn_error *err)
{
    *p = NULL;
    struct rn_cuda *cu = rn_cuda_get(err);
    if (!cu)
        return -1;
    RN_CUDA_CHECK(err, cudaMalloc(p, bytes ? bytes : 1));
    RN_CUDA_CHECK(err, cudaMemsetAsync(*p, 0, bytes ? bytes : 1, cu->stream));
    return 0;
}

float *rn_cuda_param_grad(struct rn_param *p)
{
    return p && p->grad.data ? p->grad.data : NULL;
}

int rn_cuda_need_param(const struct rn_layer *l, const struct rn_param *p, const char *name,
                       size_t numel, struct rn_error *err)
{
    if (!p)
        return rn_errorf(err, "layer '%s' (%s): no parameter '%s'", l->name, type_name(l), name);
    if (need_device(l, &p->value, name, err))
        return -1;
    if (rn_tensor_numel(&p->value) != numel)
        return rn_errorf(err, "layer '%s' (%s): parameter '%s' has %zu floats, expected %zu",
                         l->name, type_name(l), name, rn_tensor_numel(&p->value), numel);
    if (p->grad.data && p->grad.device != RN_DEVICE_CUDA)
        return rn_errorf(err, "layer '%s' (%s): the gradient of '%s' is in host memory", l->name,
                         type_name(l), name);
    return 0;
}

int rn_cuda_plain_prepare(struct rn_layer *l, int max_n, struct rn_error *err)
{
    struct rn_cuda_dp_base *b = rn_calloc(1, sizeof *b, err);
    if (!b)
        return -1;
    b->max_n = max_n;
    l->dpriv = b;
    return 0;
}

void rn_cuda_plain_release(struct rn_layer *l)
{
    free(l->dpriv);
    l->dpriv = NULL;
}

/* ---- pooling geometry (layers/maxpool2d.c, avgpool2d.c) ------------------- */

/* The key order of both pooling types' schemas. */
enum { POOL_K_KERNEL, POOL_K_STRIDE, POOL_K_PADDING };

struct rn_cuda_pool_geom rn_cuda_pool_geom_of(const struct rn_layer *l, int n)
{
    struct rn_cuda_pool_geom g;
    g.n = n;
    g.c = l->in[0].c;
    g.h = l->in[0].h;
    g.w = l->in[0].w;
    g.ho = l->out.h;
    g.wo = l->out.w;
    g.k = (int)l->v.num[POOL_K_KERNEL];
    g.s = (int)l->v.num[POOL_K_STRIDE];
    g.p = (int)l->v.num[POOL_K_PADDING];
    if (g.s == 0)
        g.s = g.k;
    return g;
}

int rn_cuda_acc_into(struct rn_cuda *cu, const struct rn_tensor *g, struct rn_tensor *out, size_t n,
                     struct rn_error *err)
{
    if (out)
        RN_CUDA_CHECK(err, rn_cuda_axpy_acc(1.0f, g->data, out->data, n, cu->stream));
    return 0;
}
