/* models.c - the models an analysis compares (common.h): this run's, and
 * others' loaded from their run files. `models` lists runs whose saved model
 * is loaded next to the analysed one (architecture from their /config yaml);
 * a run that does not exist yet is skipped with a warning.
 */
#include "common.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void rn_models_free(struct rn_model *m, int n)
{
    for (int i = 0; i < n; i++) {
        if (!m[i].loaded)
            continue;
        rn_graph_free(&m[i].own.graph);
        free(m[i].own.probs);
        rn_spec_free(&m[i].spec);
    }
    free(m);
}

/* Builds the architecture recorded in run file `file` (its /config yaml) and
 * loads /models/<model> into it. */
static int load_model(struct rn_run *run, struct rn_model *m, const char *file, const char *model,
                      struct rn_error *err)
{
    const struct rn_split *s = &run->data.splits[0];
    struct rn_shape in = {s->c, s->h, s->w};
    /* on the device the analysed run uses */
    int device = run->has_graph ? run->graph.device : run->opt.device;
    if (rn_run_open_model(&m->own, &m->spec, file, model, &run->opt, in, 64, run->data.n_classes,
                          device, err))
        return -1;
    m->loaded = 1;
    m->run = &m->own;
    return 0;
}

int rn_models_open(struct rn_run *run, const struct rn_spec_analysis *a, int key,
                   struct rn_model **out, int *n_out, struct rn_error *err)
{
    const char *list = a->v.str[key];
    struct rn_model *m = rn_calloc(RN_ANALYSIS_MAX_MODELS, sizeof *m, err);
    int n = 0;
    *out = NULL;
    *n_out = 0;
    if (!m)
        return -1;
    if (!list[0]) {
        if (rn_analysis_need_graph(a, run->has_graph, err))
            goto fail;
        snprintf(m[0].name, sizeof m[0].name, "%s", run->spec->name);
        m[0].run = run;
        *out = m;
        *n_out = 1;
        return 0;
    }
    const char *p = list;
    char skipped[1024] = "";
    while (*p) {
        char name[RN_NAME_MAX], path[RN_PATH_MAX], model[RN_NAME_MAX], item[RN_STR_MAX];
        size_t span = strcspn(p, ";");
        snprintf(item, sizeof item, "%.*s", (int)span, p);
        p += span + (p[span] == ';');
        if (sscanf(item, "%95s %511s %95s", name, path, model) != 3) {
            rn_analysis_errorf(err, a, key, "cannot read '%s'", item);
            goto fail;
        }
        if (n == RN_ANALYSIS_MAX_MODELS) {
            rn_analysis_errorf(err, a, key, "at most %d models", RN_ANALYSIS_MAX_MODELS);
            goto fail;
        }
        struct rn_model *mi = &m[n];
        snprintf(mi->name, sizeof mi->name, "%s", name);
        if (strcmp(path, "self") == 0) {
            if (rn_analysis_need_graph(a, run->has_graph, err))
                goto fail;
            mi->run = run;
            n++;
            continue;
        }
        char file[RN_PATH_MAX + 16];
        struct stat st;
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
            snprintf(file, sizeof file, "%s/run.h5", path);
        else
            snprintf(file, sizeof file, "%s", path);
        if (access(file, R_OK) != 0) {
            /* Models of later issues may not be trained yet. */
            fprintf(run->opt.log ? run->opt.log : stderr,
                    "warning: analysis '%s': model '%s' skipped: no run at %s (train it first)\n",
                    a->name, name, path);
            size_t len = strlen(skipped);
            snprintf(skipped + len, sizeof skipped - len, "%s%s", len ? ", " : "", name);
            continue;
        }
        n++;
        if (load_model(run, mi, file, model, err)) {
            char why[RN_ERROR_MAX];
            snprintf(why, sizeof why, "%s", err ? err->msg : "");
            rn_analysis_errorf(err, a, key, "model '%s': %s", name, why);
            goto fail;
        }
    }
    if (n == 0) {
        rn_analysis_errorf(err, a, key, "none of its models could be loaded (skipped: %s)",
                           skipped);
        goto fail;
    }
    *out = m;
    *n_out = n;
    return 0;
fail:
    rn_models_free(m, n);
    return -1;
}

int rn_models_write_names(struct rn_run *run, const char *group, const struct rn_model *m, int n,
                          struct rn_error *err)
{
    char names[RN_ANALYSIS_MAX_MODELS * (RN_NAME_MAX + 1)] = "";
    size_t len = 0;
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(names + len, sizeof names - len, "%s%s", i ? ";" : "", m[i].name);
    return rn_results_set_attr_str(run->results, group, "models", names, err);
}

int rn_models_use_own(const char *list)
{
    if (!list[0])
        return 1;
    for (const char *p = list; *p;) {
        char name[RN_NAME_MAX], path[RN_PATH_MAX], item[RN_STR_MAX];
        size_t span = strcspn(p, ";");
        snprintf(item, sizeof item, "%.*s", (int)span, p);
        p += span + (p[span] == ';');
        if (sscanf(item, "%95s %511s", name, path) == 2 && strcmp(path, "self") == 0)
            return 1;
    }
    return 0;
}

int rn_models_split_names(char *s, char **out, int max)
{
    int n = 0;
    for (char *save = NULL, *t = strtok_r(s, ";", &save); t && n < max;
         t = strtok_r(NULL, ";", &save))
        out[n++] = t;
    return n;
}
