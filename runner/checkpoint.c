/* checkpoint.c - models saved into a run's file and loaded back, and a
 * model recorded in another run's file opened for inference
 * (checkpoint.h). */
#include "checkpoint.h"

#include "backend.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

int rn_run_save_model(struct rn_run *run, const char *model, struct rn_error *err)
{
    struct rn_graph *g = &run->graph;
    for (int i = 0; i < g->n_nodes; i++) {
        struct rn_layer *l = &g->nodes[i].layer;
        for (int j = 0; j < l->n_params; j++) {
            struct rn_param *p = &l->params[j];
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
                rc = rn_results_write(run->results, path, RN_DTYPE_I64, &v, 0, NULL, err);
            } else {
                rc = rn_results_write(run->results, path, RN_DTYPE_F32, t->data, p->ndim, dims, err);
            }
            rn_tensor_free(&host);
            if (rc)
                return -1;
        }
    }
    char group[256];
    snprintf(group, sizeof group, "/models/%s", model);
    if (rn_results_set_attr_str(run->results, group, "architecture", run->spec->model.name, err) ||
        rn_results_set_attr_u64(run->results, group, "epochs", (uint64_t)run->epochs_done, err))
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

int rn_run_load_model(struct rn_run *run, const char *path, const char *model,
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
    struct rn_graph *g = &run->graph;
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

/* ---- a model recorded in another run's file --------------------------- */

/* The spec recorded as text, parsed (relative `extends` are refused: a
 * recorded spec is resolved and has none). */
static int spec_from_text(struct rn_spec *spec, const char *yaml, const char *file,
                          struct rn_error *err)
{
    char name[RN_PATH_MAX + 16];
    snprintf(name, sizeof name, "%s:/config", file);
    if (rn_spec_load_text(spec, yaml, name, NULL, NULL, NULL, NULL, err))
        return rn_error_prefix(err, "%s: its recorded spec", file);
    return 0;
}

/* The recorded spec of file, when it holds /models/<model>. */
static int recorded_spec(struct rn_spec *spec, const char *file, const char *model,
                         struct rn_error *err)
{
    struct rn_results *r = NULL;
    char *yaml = NULL;
    memset(spec, 0, sizeof *spec);
    if (rn_results_open(&r, file, err))
        return -1;
    char group[RN_NAME_MAX + 16];
    snprintf(group, sizeof group, "/models/%s", model);
    int rc = rn_results_get_attr_str(r, "/config", "yaml", &yaml, err);
    if (!rc && !rn_results_exists(r, group))
        rc = rn_errorf(err, "%s has no model '%s' (no %s)", file, model, group);
    rn_results_close(r);
    if (!rc)
        rc = spec_from_text(spec, yaml, file, err);
    free(yaml);
    if (!rc && !spec->has_model)
        rc = rn_errorf(err, "%s: its spec has no model", file);
    return rc;
}

/* The graph of spec for inputs in, its logits node found and checked. */
static int recorded_graph(struct rn_run *run, const struct rn_spec *spec, const char *file,
                          struct rn_shape in, int max_n, int n_classes, struct rn_error *err)
{
    if (rn_graph_build(&run->graph, &spec->model, in, max_n, err))
        return rn_error_prefix(err, "%s: model '%s'", file, spec->model.name);
    run->has_graph = 1;
    run->logits_node = run->graph.n_nodes - 1;
    const struct rn_spec_train *t = &spec->train;
    if (spec->has_train && t->n_losses > 0 && t->losses[0].on[0] &&
        (run->logits_node = rn_graph_find(&run->graph, t->losses[0].on)) < 0)
        return rn_errorf(err, "%s: its loss reads node '%s', which its model lacks", file,
                         t->losses[0].on);
    int k = run->graph.nodes[run->logits_node].layer.out.c;
    if (k != n_classes)
        return rn_errorf(err, "%s: its model gives %d logits; this data has %d classes", file, k,
                         n_classes);
    return 0;
}

int rn_run_open_model(struct rn_run *run, struct rn_spec *spec, const char *file,
                      const char *model, const struct rn_run_options *opt, struct rn_shape in,
                      int max_n, int n_classes, int device, struct rn_error *err)
{
    memset(run, 0, sizeof *run);
    run->spec = spec;
    if (opt)
        run->opt = *opt;
    if (recorded_spec(spec, file, model, err) ||
        recorded_graph(run, spec, file, in, max_n, n_classes, err) ||
        !(run->probs = rn_calloc((size_t)max_n * n_classes, sizeof(float), err)))
        goto fail;
    /* loaded on the host, as a run's own model is, then to the device */
    rn_graph_init_params(&run->graph, spec->seed);
    if (rn_run_load_model(run, file, model, err))
        goto fail;
    if (device != RN_DEVICE_CPU && rn_graph_to_device(&run->graph, device, err)) {
        rn_error_prefix(err, "%s: model '%s'", file, model);
        goto fail;
    }
    return 0;
fail:
    rn_run_close_model(run, spec);
    return -1;
}

void rn_run_close_model(struct rn_run *run, struct rn_spec *spec)
{
    rn_graph_free(&run->graph); /* also a half-built one (rn_run_open_model zeroed it) */
    run->has_graph = 0;
    free(run->probs);
    run->probs = NULL;
    rn_spec_free(spec);
}
