/* spec/diff.c - two resolved specs compared key by key (rn_spec_diff,
 * spec.h): what a resume names when the spec changed since the run started. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* Top-level keys that cannot change a run's numbers or its files. */
static int ignored(const char *path)
{
    return !strcmp(path, "description") || !strcmp(path, "out");
}

struct diff {
    char *out;
    size_t cap, len;
    int n;
};

static const char *describe(const struct node *n, char *buf, size_t size)
{
    if (!n)
        return "absent";
    if (n->kind == NODE_MAP)
        return "a mapping";
    if (n->kind == NODE_SEQ) {
        snprintf(buf, size, "%d item%s", n->n, n->n == 1 ? "" : "s");
        return buf;
    }
    if (strlen(n->text) > 40)
        snprintf(buf, size, "%.37s...", n->text);
    else
        snprintf(buf, size, "%s", n->text);
    return buf;
}

static void add(struct diff *d, const char *path, const struct node *a, const struct node *b)
{
    char ba[64], bb[64];
    d->n++;
    if (d->len >= d->cap)
        return;
    d->len +=
        (size_t)snprintf(d->out + d->len, d->cap - d->len, "%s%s (%s -> %s)", d->n > 1 ? ", " : "",
                         path, describe(a, ba, sizeof ba), describe(b, bb, sizeof bb));
}

static void diff_node(struct diff *d, const char *path, const struct node *a, const struct node *b)
{
    if (!a || !b || a->kind != b->kind) {
        add(d, path, a, b);
        return;
    }
    char sub[512];
    switch (a->kind) {
    case NODE_SCALAR:
        if (strcmp(a->text, b->text) != 0)
            add(d, path, a, b);
        return;
    case NODE_SEQ:
        if (a->n != b->n) {
            add(d, path, a, b);
            return;
        }
        for (int i = 0; i < a->n; i++) {
            snprintf(sub, sizeof sub, "%s%s%d", path, *path ? "." : "", i);
            diff_node(d, sub, a->items[i], b->items[i]);
        }
        return;
    case NODE_MAP:
        for (int i = 0; i < a->n; i++) {
            snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", a->keys[i]->text);
            if (!ignored(sub))
                diff_node(d, sub, a->items[i], map_get(b, a->keys[i]->text, NULL));
        }
        for (int i = 0; i < b->n; i++) {
            if (map_get(a, b->keys[i]->text, NULL))
                continue;
            snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", b->keys[i]->text);
            if (!ignored(sub))
                add(d, sub, NULL, b->items[i]);
        }
        return;
    }
}

static struct node *tree_of(struct loader *L, const char *name, const char *yaml)
{
    L->text_name = name;
    return parse_text(L, yaml, strlen(yaml));
}

int rn_spec_diff(const char *old_yaml, const char *new_yaml, char *out, size_t cap,
                 struct rn_error *err)
{
    struct loader L = {.err = err};
    err->msg[0] = '\0';
    struct node *a = tree_of(&L, "the recorded spec", old_yaml);
    struct node *b = L.n_errors ? NULL : tree_of(&L, "the spec", new_yaml);
    int n = -1;
    if (a && b && !L.n_errors) {
        struct diff d = {out, cap, 0, 0};
        if (cap)
            out[0] = '\0';
        diff_node(&d, "", a, b);
        n = d.n;
    }
    node_free(a);
    node_free(b);
    flush_diags(&L);
    for (int i = 0; i < L.n_files; i++)
        free(L.files[i]);
    free(L.files);
    if (n < 0 && !err->msg[0])
        rn_errorf(err, "cannot compare the specs");
    return n;
}
