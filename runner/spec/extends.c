/* spec/extends.c - `extends:` (deep merge over a base spec) and
 * `model: {include:}` (a model file). */
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* ---- extends and include ---------------------------------------------------- */

/* The path `at` names (extends, include), resolved against the folder of the
 * file that wrote it (the working directory when an override wrote it; the
 * folder given to rn_spec_load_text when its text did, and refused without
 * one). -1 after reporting. */
static int resolve_path(struct loader *L, const struct node *at, const char *label, char *out,
                        size_t size)
{
    const char *rel = at->text, *writer = at->file;
    if (rel[0] != '/' && L->text_name && writer && !strcmp(writer, L->text_name)) {
        if (!L->text_dir) {
            report(L, at, label,
                   "cannot follow '%s': this spec was given as text, with no "
                   "folder for its relative paths (give the folder, or an absolute path)",
                   rel);
            return -1;
        }
        snprintf(out, size, "%s/%s", L->text_dir, rel);
        return 0;
    }
    const char *slash = writer ? strrchr(writer, '/') : NULL;
    if (rel[0] == '/' || !slash)
        snprintf(out, size, "%s", rel);
    else
        snprintf(out, size, "%.*s/%s", (int)(slash - writer), writer, rel);
    return 0;
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

static int push_frame(struct loader *L, const char *real, const char *display)
{
    L->stack[L->depth].real = strdup(real);
    L->stack[L->depth].display = intern(L, display);
    if (!L->stack[L->depth].real || !L->stack[L->depth].display) {
        free(L->stack[L->depth].real);
        report_oom(L);
        return -1;
    }
    L->depth++;
    return 0;
}

/* The experiment itself must say something: an empty file (or only `---`, or
 * only comments) is a mistake, not a data-only experiment. */
static int check_not_empty(struct loader *L, const char *name, const struct node *root)
{
    if (root->kind != NODE_MAP || root->n > 0)
        return 0;
    report_pos(L, name, 0, 0,
               "the spec is empty; expected at least a `data:` section (or "
               "`extends:` a spec)");
    return -1;
}

/* Replaces root's `extends` by the spec it names, root merged over it;
 * consumes root. The frame of root's file is on the stack. */
static struct node *follow_extends(struct loader *L, struct node *root)
{
    int i;
    struct node *ext = map_get(root, "extends", &i);
    if (!ext)
        return root;
    char resolved[PATH_MAX];
    if (ext->kind != NODE_SCALAR || ext->is_null || !ext->text[0]) {
        report(L, ext, "extends", "expected the path of a spec file");
        goto fail;
    }
    if (resolve_path(L, ext, "extends", resolved, sizeof resolved))
        goto fail;
    struct node *base = load_tree(L, resolved, ext, ext->text);
    if (!base)
        goto fail;
    map_remove(root, i);
    /* A name identifies the results folder: it is never inherited. */
    int j;
    if (map_get(base, "name", &j))
        map_remove(base, j);
    return merge(L, base, root);
fail:
    node_free(root);
    return NULL;
}

/* Loads path and everything it extends. from: the extends value that named
 * it, NULL for the experiment file. */
struct node *load_tree(struct loader *L, const char *path, const struct node *from,
                       const char *as_written)
{
    char real[PATH_MAX];
    if (L->vfs ? !vfs_find(L, path, real) : !realpath(path, real)) {
        if (L->vfs)
            errno = ENOENT;
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
            len += (size_t)snprintf(chain + len, sizeof chain - len, "%s -> ", L->stack[j].display);
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
    if (!root || (!from && check_not_empty(L, path, root)) || push_frame(L, real, path)) {
        node_free(root);
        return NULL;
    }
    root = follow_extends(L, root);
    pop_frame(L);
    return root;
}

/* The same for a spec given as text (L->text_name). */
struct node *load_text_tree(struct loader *L, const char *text, size_t len)
{
    struct node *root = parse_text(L, text, len);
    /* no real path: a file it extends can never be the text itself */
    if (!root || check_not_empty(L, L->text_name, root) || push_frame(L, "", L->text_name)) {
        node_free(root);
        return NULL;
    }
    root = follow_extends(L, root);
    pop_frame(L);
    return root;
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
    if (resolve_path(L, inc, "model.include", path, sizeof path))
        return -1;
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
