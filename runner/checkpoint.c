/* checkpoint.c - a graph's parameters saved into a run's file and loaded
 * back, shapes checked exactly (checkpoint.h). */
#include "checkpoint.h"

#include "backend.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- one parameter's shape ------------------------------------------- */

/* The shape of p as stored (PyTorch's rank: (O,I,kH,kW) conv, (out,in)
 * linear, (C) vectors, () scalars): its rank, dims filled. */
static int param_shape(const struct rn_param *p, int dims[4])
{
    const struct rn_tensor *t = &p->value;
    dims[0] = t->n, dims[1] = t->c, dims[2] = t->h, dims[3] = t->w;
    if (p->ndim == 1)
        dims[0] = (int)rn_tensor_numel(t);
    return p->is_int64 ? 0 : p->ndim;
}

/* "(10, 128)", "(6)", "()" */
static const char *shape_text(char *buf, size_t cap, int ndim, const int *dims)
{
    size_t len = (size_t)snprintf(buf, cap, "(");
    for (int d = 0; d < ndim && len < cap; d++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%d", d ? ", " : "", dims[d]);
    if (len < cap)
        snprintf(buf + len, cap - len, ")");
    return buf;
}

/* ---- saving and loading ----------------------------------------------- */

int rn_checkpoint_save(const struct rn_graph *g, struct rn_results *r, const char *model,
                       const char *architecture, int epochs, struct rn_error *err)
{
    for (int i = 0; i < g->n_nodes; i++) {
        const struct rn_layer *l = &g->nodes[i].layer;
        for (int j = 0; j < l->n_params; j++) {
            const struct rn_param *p = &l->params[j];
            const struct rn_tensor *t = &p->value;
            struct rn_tensor host = {0};
            if (t->device != RN_DEVICE_CPU) { /* checkpoints are written from the host */
                if (rn_tensor_init(&host, t->n, t->c, t->h, t->w, err) ||
                    rn_tensor_copy(&host, t, err)) {
                    rn_tensor_free(&host);
                    return rn_error_prefix(err, "checkpoint of %s.%s", l->name, p->name);
                }
                t = &host;
            }
            char path[512];
            snprintf(path, sizeof path, "/models/%s/%s.%s", model, l->name, p->name);
            int dims[4];
            param_shape(p, dims);
            int rc;
            if (p->is_int64) {
                int64_t v = (int64_t)t->data[0];
                rc = rn_results_write(r, path, RN_DTYPE_I64, &v, 0, NULL, err);
            } else {
                rc = rn_results_write(r, path, RN_DTYPE_F32, t->data, p->ndim, dims, err);
            }
            rn_tensor_free(&host);
            if (rc)
                return -1;
        }
    }
    char group[256];
    snprintf(group, sizeof group, "/models/%s", model);
    if (rn_results_set_attr_str(r, group, "architecture", architecture, err) ||
        rn_results_set_attr_u64(r, group, "epochs", (uint64_t)epochs, err))
        return -1;
    return 0;
}

/* One stored tensor into p, its shape checked exactly against the model's. */
static int load_param(struct rn_results *r, const char *file, const char *key,
                      struct rn_param *p, struct rn_error *err)
{
    int want[4], ndim = 0, dims[4] = {0};
    const int want_ndim = param_shape(p, want);
    void *data = NULL;
    if (rn_results_read(r, key, p->is_int64 ? RN_DTYPE_I64 : RN_DTYPE_F32, &data, &ndim, dims,
                        err))
        return rn_error_prefix(err, "load: %s", file);
    int same = ndim == want_ndim;
    for (int d = 0; same && d < ndim; d++)
        same = dims[d] == want[d];
    if (!same) {
        char got_s[64], want_s[64];
        free(data);
        return rn_errorf(err, "load: %s: %s has shape %s; the model expects %s", file, key,
                         shape_text(got_s, sizeof got_s, ndim, dims),
                         shape_text(want_s, sizeof want_s, want_ndim, want));
    }
    if (p->is_int64)
        p->value.data[0] = (float)*(int64_t *)data;
    else
        memcpy(p->value.data, data, rn_tensor_numel(&p->value) * sizeof(float));
    free(data);
    return 0;
}

int rn_checkpoint_load(struct rn_graph *g, const char *path, const char *model,
                       struct rn_error *err)
{
    char file[RN_PATH_MAX + 16];
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        snprintf(file, sizeof file, "%s/run.h5", path);
    else
        snprintf(file, sizeof file, "%s", path);
    struct rn_results *r = NULL;
    if (rn_results_open(&r, file, err))
        return rn_error_prefix(err, "load");
    int rc = 0;
    for (int i = 0; i < g->n_nodes && !rc; i++) {
        struct rn_layer *l = &g->nodes[i].layer;
        for (int j = 0; j < l->n_params && !rc; j++) {
            struct rn_param *p = &l->params[j];
            char key[512];
            snprintf(key, sizeof key, "/models/%s/%s.%s", model, l->name, p->name);
            if (!rn_results_exists(r, key))
                rc = rn_errorf(err, "load: %s has no %s; was it trained with the same model?",
                               file, key);
            else
                rc = load_param(r, file, key, p, err);
        }
    }
    rn_results_close(r);
    return rc;
}
