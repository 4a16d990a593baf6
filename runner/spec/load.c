/* spec/load.c - the entry points of spec.h. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- entry points -------------------------------------------------------------------- */

/* The default name: the file name without .yaml or .yml. */
static void default_name(struct rn_spec *spec, const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t len = strlen(base);
    if (len > 5 && !strcmp(base + len - 5, ".yaml"))
        len -= 5;
    else if (len > 4 && !strcmp(base + len - 4, ".yml"))
        len -= 4;
    if (len >= sizeof spec->name)
        len = sizeof spec->name - 1;
    snprintf(spec->name, sizeof spec->name, "%.*s", (int)len, base);
}

/* Loads the file path, or (text not NULL) the text going by the name path. */
static int load(struct rn_spec *spec, struct loader *L, const char *path, const char *text,
                const char *const *overrides, int *n_errors)
{
    memset(spec, 0, sizeof *spec);
    if (n_errors)
        *n_errors = 0;
    struct node *root = NULL;
    if (strlen(path) >= sizeof spec->file) {
        report_pos(L, path, 0, 0, "path longer than %d characters", RN_PATH_MAX - 1);
        goto done;
    }
    snprintf(spec->file, sizeof spec->file, "%s", path);

    root = text ? load_text_tree(L, text, strlen(text)) : load_tree(L, path, NULL, path);
    if (root && !L->n_errors) {
        for (int i = 0; overrides && overrides[i]; i++)
            apply_override(L, root, overrides[i], 1);
        if (!L->n_errors)
            resolve_include(L, root);
        /* An include that failed leaves nothing sensible to check. */
        if (!L->n_errors) {
            for (int i = 0; overrides && overrides[i]; i++)
                apply_override(L, root, overrides[i], 0);
            default_name(spec, path);
            check_spec(L, root, spec);
        }
    }

    if (!L->n_errors) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);
        if (f) {
            write_resolved(f, spec);
            if (fclose(f) != 0) {
                free(buf);
                buf = NULL;
            }
        }
        if (!buf)
            report_oom(L);
        spec->resolved = buf;
    }
done:
    node_free(root);
    flush_diags(L);
    for (int i = 0; i < L->n_files; i++)
        free(L->files[i]);
    free(L->files);
    while (L->depth > 0)
        pop_frame(L);
    if (n_errors)
        *n_errors = L->n_errors;
    return L->n_errors ? -1 : 0;
}

int rn_spec_load(struct rn_spec *spec, const char *path, const char *const *overrides, FILE *errors,
                 int *n_errors, struct rn_error *err)
{
    struct loader L = {.errors = errors, .err = err, .overrides = overrides};
    return load(spec, &L, path, NULL, overrides, n_errors);
}

int rn_spec_load_text(struct rn_spec *spec, const char *text, const char *name, const char *dir,
                      const char *const *overrides, FILE *errors, int *n_errors,
                      struct rn_error *err)
{
    struct loader L = {
        .errors = errors, .err = err, .overrides = overrides, .text_name = name, .text_dir = dir};
    return load(spec, &L, name, text, overrides, n_errors);
}

int rn_spec_load_files(struct rn_spec *spec, const struct rn_spec_file *files, int n_files,
                       const char *const *overrides, FILE *errors, int *n_errors,
                       struct rn_error *err)
{
    struct loader L = {
        .errors = errors, .err = err, .overrides = overrides, .vfs = files, .n_vfs = n_files};
    return load(spec, &L, n_files > 0 ? files[0].name : "", NULL, overrides, n_errors);
}

void rn_spec_free(struct rn_spec *spec)
{
    if (!spec)
        return;
    free(spec->resolved);
    spec->resolved = NULL;
}
