/* spec/extends.c - `extends:` (deep merge over a base spec) and
 * `model: {include:}` (a model file). */
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* ---- extends and include ---------------------------------------------------- */

/* rel resolved against the folder of the file that wrote it (cwd when the
 * writer is an override). */
static void resolve_rel(const char *writer, const char *rel, char *out, size_t size)
{
    const char *slash = writer ? strrchr(writer, '/') : NULL;
    if (rel[0] == '/' || !slash)
        snprintf(out, size, "%s", rel);
    else
        snprintf(out, size, "%.*s/%s", (int)(slash - writer), writer, rel);
}

/* Deep merge, consuming both: over's keys win, lists and scalars are
 * replaced, and a null value in over deletes the key from base (so a spec can
 * drop a section it inherited, e.g. `train: ~` next to `load:`). */
static struct node *merge(struct loader *L, struct node *base, struct node *over)
{
    if (base->kind != NODE_MAP || over->kind != NODE_MAP) {
        node_free(base);
        return over;
    }
    for (int i = 0; i < over->n; i++) {
        struct node *k = over->keys[i], *v = over->items[i];
        int j;
        struct node *b = map_get(base, k->text, &j);
        if (b && v->kind == NODE_SCALAR && v->is_null) {
            map_remove(base, j);
            node_free(k);
            node_free(v);
        } else if (b) {
            base->items[j] = merge(L, b, v);
            node_free(base->keys[j]);
            base->keys[j] = k; /* errors about the key point at the file that won */
        } else {
            node_push(L, base, k, v);
        }
    }
    free(over->keys);
    free(over->items);
    free(over);
    return base;
}

void pop_frame(struct loader *L)
{
    L->depth--;
    free(L->stack[L->depth].real);
}

/* Loads path and everything it extends. */
struct node *load_tree(struct loader *L, const char *path, const struct node *from,
                              const char *as_written)
{
    char real[PATH_MAX];
    if (!realpath(path, real)) {
        if (from)
            report(L, from, "", "cannot open '%s' (resolved to %s)", as_written, path);
        else
            report_pos(L, path, 0, 0, "cannot open: %s", strerror(errno));
        return NULL;
    }
    for (int i = 0; i < L->depth; i++) {
        if (strcmp(L->stack[i].real, real) != 0)
            continue;
        char chain[2048] = "";
        size_t len = 0;
        for (int j = i; j < L->depth && len < sizeof chain; j++)
            len += (size_t)snprintf(chain + len, sizeof chain - len, "%s -> ",
                                    L->stack[j].display);
        if (len < sizeof chain)
            snprintf(chain + len, sizeof chain - len, "%s", path);
        report(L, from, "", "extends cycle: %s", chain);
        return NULL;
    }
    if (L->depth >= MAX_EXTENDS) {
        report(L, from, "", "more than %d files extend each other", MAX_EXTENDS);
        return NULL;
    }
    struct node *root = parse_file(L, path, from, as_written);
    if (!root)
        return NULL;
    L->stack[L->depth].real = strdup(real);
    L->stack[L->depth].display = intern(L, path);
    if (!L->stack[L->depth].real || !L->stack[L->depth].display) {
        free(L->stack[L->depth].real);
        report_oom(L);
        node_free(root);
        return NULL;
    }
    L->depth++;
    int i;
    struct node *ext = map_get(root, "extends", &i);
    if (ext) {
        if (ext->kind != NODE_SCALAR || ext->is_null || !ext->text[0]) {
            report(L, ext, "extends", "expected the path of a spec file");
            goto fail;
        }
        char resolved[PATH_MAX];
        resolve_rel(ext->file, ext->text, resolved, sizeof resolved);
        struct node *base = load_tree(L, resolved, ext, ext->text);
        if (!base)
            goto fail;
        map_remove(root, i);
        /* A name identifies the results folder: it is never inherited. */
        int j;
        if (map_get(base, "name", &j))
            map_remove(base, j);
        root = merge(L, base, root);
    }
    pop_frame(L);
    return root;
fail:
    pop_frame(L);
    node_free(root);
    return NULL;
}

static const char *const model_file_keys[] = {"name", "layers"};

/* Replaces model.include by the model file's contents (the including mapping's
 * own keys win). */
int resolve_include(struct loader *L, struct node *root)
{
    int mi, ii;
    struct node *model = map_get(root, "model", &mi);
    struct node *inc = map_get(model, "include", &ii);
    if (!inc)
        return 0;
    if (inc->kind != NODE_SCALAR || inc->is_null || !inc->text[0]) {
        report(L, inc, "model.include", "expected the path of a model file");
        return -1;
    }
    char path[PATH_MAX];
    resolve_rel(inc->file, inc->text, path, sizeof path);
    struct node *m = parse_file(L, path, inc, inc->text);
    if (!m)
        return -1;
    int bad = 0;
    for (int i = 0; i < m->n; i++) {
        const char *k = m->keys[i]->text;
        if (!strcmp(k, "name") || !strcmp(k, "layers"))
            continue;
        char sug[128];
        report(L, m->keys[i], "model file",
               "unknown key '%s'%s; a model file holds only 'name' and 'layers'", k,
               suggest(sug, sizeof sug, k, model_file_keys, 2));
        bad = 1;
    }
    if (bad) {
        node_free(m);
        return -1;
    }
    map_remove(model, ii);
    root->items[mi] = merge(L, m, model);
    return 0;
}

