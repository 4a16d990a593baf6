/* common.c - located errors and node lookup for the analyses (common.h). */
#include "common.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

int rn_analysis_errorf(struct rn_error *err, const struct rn_spec_analysis *a, int key,
                       const char *fmt, ...)
{
    char msg[RN_ERROR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int line = a->line, col = a->col;
    if (key >= 0 && a->v.given[key]) {
        line = a->v.line[key];
        col = a->v.col[key];
    }
    return rn_errorf(err, "%s:%d:%d: error: analysis '%s' (%s): %s", a->file, line, col, a->name,
                     a->type->name, msg);
}

int rn_analysis_need_graph(const struct rn_spec_analysis *a, int has_graph, struct rn_error *err)
{
    if (!has_graph)
        return rn_analysis_errorf(err, a, -1, "needs a model: add a model with train or load");
    return 0;
}

int rn_analysis_node(const struct rn_graph *g, const struct rn_spec_analysis *a, int key,
                     struct rn_error *err)
{
    const char *name = a->v.str[key];
    int i = rn_graph_find(g, name);
    if (i >= 0)
        return i;
    const char **names = rn_calloc((size_t)g->n_nodes + 1, sizeof *names, err);
    if (!names)
        return -1;
    for (int j = 0; j < g->n_nodes; j++)
        names[j] = g->nodes[j].layer.name;
    const char *near = rn_nearest(name, names, g->n_nodes);
    if (near) {
        rn_analysis_errorf(err, a, key, "unknown node '%s' (did you mean '%s'?)", name, near);
    } else {
        char list[512] = "";
        size_t len = 0;
        for (int j = 0; j < g->n_nodes && len < sizeof list - 64; j++)
            len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", j ? ", " : "", names[j]);
        rn_analysis_errorf(err, a, key, "unknown node '%s'; the model's nodes: %s", name, list);
    }
    free(names);
    return -1;
}

int rn_analysis_splits(struct rn_run *run, const char *which, struct rn_split **out,
                       struct rn_error *err)
{
    int n = 0;
    for (int i = 0; i < run->data.n_splits; i++) {
        struct rn_split *s = &run->data.splits[i];
        if (s->n > 0 && (strcmp(which, "all") == 0 || strcmp(which, s->name) == 0))
            out[n++] = s;
    }
    if (n == 0)
        return rn_errorf(err, "no split named '%s' with images; expected train, val, test or all",
                         which);
    return n;
}

int rn_analysis_put(struct rn_run *run, const char *group, const char *name, enum rn_dtype t,
                    const void *v, int nd, int d0, int d1, struct rn_error *err)
{
    char path[640];
    int dims[2] = {d0, d1};
    snprintf(path, sizeof path, "%s/%s", group, name);
    return rn_results_write(run->results, path, t, v, nd, nd ? dims : NULL, err);
}
