/* spec/tree.c - the spec's YAML tree, every node with its file and line:col,
 * built from libyaml's events. */
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- tree building --------------------------------------------------------- */

const char *intern(struct loader *L, const char *path)
{
    for (int i = 0; i < L->n_files; i++)
        if (strcmp(L->files[i], path) == 0)
            return L->files[i];
    if (L->n_files == L->cap_files) {
        int cap = L->cap_files ? 2 * L->cap_files : 8;
        char **f = realloc(L->files, sizeof *f * (size_t)cap);
        if (!f)
            return NULL;
        L->files = f;
        L->cap_files = cap;
    }
    char *s = strdup(path);
    if (!s)
        return NULL;
    L->files[L->n_files++] = s;
    return s;
}

struct node *node_new(struct loader *L, enum node_kind kind, const char *file, const char *origin,
                      int line, int col)
{
    struct node *n = calloc(1, sizeof *n);
    if (!n) {
        report_oom(L);
        return NULL;
    }
    n->kind = kind;
    n->file = file;
    n->origin = origin;
    n->line = line;
    n->col = col;
    return n;
}

struct node *scalar_new(struct loader *L, const char *text, size_t len, int plain, const char *file,
                        const char *origin, int line, int col)
{
    struct node *n = node_new(L, NODE_SCALAR, file, origin, line, col);
    if (!n)
        return NULL;
    n->text = malloc(len + 1);
    if (!n->text) {
        free(n);
        report_oom(L);
        return NULL;
    }
    memcpy(n->text, text, len);
    n->text[len] = '\0';
    n->is_null = plain && (len == 0 || !strcmp(n->text, "~") || !strcmp(n->text, "null") ||
                           !strcmp(n->text, "Null") || !strcmp(n->text, "NULL"));
    return n;
}

void node_free(struct node *n)
{
    if (!n)
        return;
    for (int i = 0; i < n->n; i++) {
        if (n->keys)
            node_free(n->keys[i]);
        node_free(n->items[i]);
    }
    free(n->keys);
    free(n->items);
    free(n->text);
    free(n);
}

/* Appends item (and key, for maps). On failure frees both. */
int node_push(struct loader *L, struct node *parent, struct node *key, struct node *item)
{
    if (parent->n == parent->cap) {
        int cap = parent->cap ? 2 * parent->cap : 4;
        struct node **items = realloc(parent->items, sizeof *items * (size_t)cap);
        if (items)
            parent->items = items;
        struct node **keys = NULL;
        if (items && parent->kind == NODE_MAP) {
            keys = realloc(parent->keys, sizeof *keys * (size_t)cap);
            if (keys)
                parent->keys = keys;
        }
        if (!items || (parent->kind == NODE_MAP && !keys)) {
            node_free(key);
            node_free(item);
            report_oom(L);
            return -1;
        }
        parent->cap = cap;
    }
    if (parent->kind == NODE_MAP)
        parent->keys[parent->n] = key;
    parent->items[parent->n++] = item;
    return 0;
}

struct node *map_get(const struct node *map, const char *key, int *index)
{
    if (!map || map->kind != NODE_MAP)
        return NULL;
    for (int i = 0; i < map->n; i++)
        if (strcmp(map->keys[i]->text, key) == 0) {
            if (index)
                *index = i;
            return map->items[i];
        }
    return NULL;
}

void map_remove(struct node *map, int i)
{
    node_free(map->keys[i]);
    node_free(map->items[i]);
    memmove(map->keys + i, map->keys + i + 1, sizeof *map->keys * (size_t)(map->n - i - 1));
    memmove(map->items + i, map->items + i + 1, sizeof *map->items * (size_t)(map->n - i - 1));
    map->n--;
}

void set_origin(struct node *n, const char *origin)
{
    n->origin = origin;
    for (int i = 0; i < n->n; i++) {
        if (n->keys)
            set_origin(n->keys[i], origin);
        set_origin(n->items[i], origin);
    }
}

/* ---- libyaml events -> tree ------------------------------------------------ */

static int next_event(struct source *S, yaml_event_t *ev)
{
    if (yaml_parser_parse(S->p, ev))
        return 0;
    const yaml_parser_t *p = S->p;
    const char *problem = p->problem ? p->problem : "cannot parse the YAML";
    if (S->origin)
        report_override(S->L, S->origin, "cannot parse the value: %s", problem);
    else if (p->error == YAML_MEMORY_ERROR)
        report_oom(S->L);
    else if (p->error == YAML_READER_ERROR)
        report_pos(S->L, S->file, 0, 0, "%s at byte %zu", problem, p->problem_offset);
    else if (p->context)
        /* The context says where the construct left open began. */
        report_pos(S->L, S->file, (int)p->problem_mark.line + 1, (int)p->problem_mark.column + 1,
                   "%s (%s at line %d)", problem, p->context, (int)p->context_mark.line + 1);
    else
        report_pos(S->L, S->file, (int)p->problem_mark.line + 1, (int)p->problem_mark.column + 1,
                   "%s", problem);
    return -1;
}

static struct node *at_mark(struct source *S, enum node_kind kind, yaml_mark_t m)
{
    return node_new(S->L, kind, S->file, S->origin, (int)m.line + 1, (int)m.column + 1);
}

/* Builds the node that starts with ev (consumed). NULL after reporting. */
static struct node *parse_value(struct source *S, yaml_event_t *ev, int depth)
{
    struct node *n = NULL;
    yaml_mark_t m = ev->start_mark;
    if (depth > MAX_DEPTH) {
        report_pos(S->L, S->file ? S->file : "override", (int)m.line + 1, (int)m.column + 1,
                   "nesting deeper than %d levels", MAX_DEPTH);
        yaml_event_delete(ev);
        return NULL;
    }
    if (++S->L->n_nodes > MAX_NODES) {
        report_pos(S->L, S->file ? S->file : "override", (int)m.line + 1, (int)m.column + 1,
                   "more than %d YAML values in this spec (its files together)", MAX_NODES);
        yaml_event_delete(ev);
        return NULL;
    }
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        n = scalar_new(S->L, (const char *)ev->data.scalar.value, ev->data.scalar.length,
                       ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE, S->file, S->origin,
                       (int)m.line + 1, (int)m.column + 1);
        yaml_event_delete(ev);
        return n;
    case YAML_ALIAS_EVENT: {
        struct node tmp = {.file = S->file,
                           .origin = S->origin,
                           .line = (int)m.line + 1,
                           .col = (int)m.column + 1};
        report(S->L, &tmp, "", "aliases (*%s) are not supported; write the value out",
               (const char *)ev->data.alias.anchor);
        yaml_event_delete(ev);
        return NULL;
    }
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT:
        break;
    default:
        yaml_event_delete(ev);
        report_pos(S->L, S->file ? S->file : "override", (int)m.line + 1, (int)m.column + 1,
                   "unexpected YAML event");
        return NULL;
    }
    int is_map = ev->type == YAML_MAPPING_START_EVENT;
    yaml_event_delete(ev);
    n = at_mark(S, is_map ? NODE_MAP : NODE_SEQ, m);
    if (!n)
        return NULL;
    for (;;) {
        yaml_event_t e;
        if (next_event(S, &e))
            goto fail;
        if (e.type == (is_map ? YAML_MAPPING_END_EVENT : YAML_SEQUENCE_END_EVENT)) {
            yaml_event_delete(&e);
            return n;
        }
        struct node *key = NULL;
        if (is_map) {
            if (e.type != YAML_SCALAR_EVENT) {
                struct node tmp = {.file = S->file,
                                   .origin = S->origin,
                                   .line = (int)e.start_mark.line + 1,
                                   .col = (int)e.start_mark.column + 1};
                report(S->L, &tmp, "", "a key must be a plain word, not a list or mapping");
                yaml_event_delete(&e);
                goto fail;
            }
            key = parse_value(S, &e, depth + 1);
            if (!key)
                goto fail;
            if (next_event(S, &e)) {
                node_free(key);
                goto fail;
            }
        }
        struct node *item = parse_value(S, &e, depth + 1);
        if (!item) {
            node_free(key);
            goto fail;
        }
        struct node *first = key ? map_get(n, key->text, NULL) : NULL;
        if (first) {
            int first_line = 0;
            for (int i = 0; i < n->n; i++)
                if (!strcmp(n->keys[i]->text, key->text))
                    first_line = n->keys[i]->line;
            report(S->L, key, "", "duplicate key '%s' (first at line %d)", key->text, first_line);
            node_free(key);
            node_free(item);
            continue;
        }
        if (node_push(S->L, n, key, item))
            goto fail;
    }
fail:
    node_free(n);
    return NULL;
}

/* Parses one YAML document. need_map: the root must be a mapping (a null
 * document counts as an empty one). */
struct node *parse_stream(struct source *S, int need_map)
{
    yaml_event_t e;
    struct node *root = NULL;
    if (next_event(S, &e))
        return NULL;
    yaml_event_delete(&e); /* stream start */
    if (next_event(S, &e))
        return NULL;
    if (e.type == YAML_STREAM_END_EVENT) {
        yaml_event_delete(&e);
        return node_new(S->L, need_map ? NODE_MAP : NODE_SCALAR, S->file, S->origin, 1, 1);
    }
    yaml_event_delete(&e); /* document start */
    if (next_event(S, &e))
        return NULL;
    root = parse_value(S, &e, 0);
    if (!root)
        return NULL;
    if (next_event(S, &e))
        goto fail;
    yaml_event_delete(&e); /* document end */
    if (next_event(S, &e))
        goto fail;
    if (e.type != YAML_STREAM_END_EVENT) {
        struct node tmp = {.file = S->file,
                           .origin = S->origin,
                           .line = (int)e.start_mark.line + 1,
                           .col = (int)e.start_mark.column + 1};
        yaml_event_delete(&e);
        report(S->L, &tmp, "", "more than one YAML document; a spec is one document");
        goto fail;
    }
    yaml_event_delete(&e);
    if (need_map && root->kind == NODE_SCALAR && root->is_null) {
        root->kind = NODE_MAP;
        free(root->text);
        root->text = NULL;
    }
    if (need_map && root->kind != NODE_MAP) {
        report(S->L, root, "", "expected a mapping of keys at the top of the file");
        goto fail;
    }
    return root;
fail:
    node_free(root);
    return NULL;
}

/* Parses path. from: the extends/include value that named it (for a
 * position), NULL for the experiment file itself. */
/* A file larger than MAX_FILE_BYTES is refused before it is parsed. */
static int check_size(struct loader *L, const char *file, size_t len)
{
    if (len <= MAX_FILE_BYTES)
        return 0;
    report_pos(L, file, 0, 0, "%zu bytes; a spec or model file holds at most %d", len,
               MAX_FILE_BYTES);
    return -1;
}

/* Parses len bytes of text that go by the (interned) name file. */
static struct node *parse_buffer(struct loader *L, const char *file, const char *text, size_t len)
{
    yaml_parser_t p;
    if (!file || !yaml_parser_initialize(&p)) {
        report_oom(L);
        return NULL;
    }
    if (check_size(L, file, len)) {
        yaml_parser_delete(&p);
        return NULL;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    struct source S = {L, &p, file, NULL};
    struct node *root = parse_stream(&S, 1);
    yaml_parser_delete(&p);
    return root;
}

const struct rn_spec_file *vfs_find(const struct loader *L, const char *path, char *norm)
{
    /* fold "." and "x/.." components; a leading ".." stays */
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    const char *parts[PATH_MAX / 2];
    int n = 0;
    for (char *save = NULL, *t = strtok_r(buf, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
        if (!strcmp(t, "."))
            continue;
        if (!strcmp(t, "..") && n > 0 && strcmp(parts[n - 1], ".."))
            n--;
        else
            parts[n++] = t;
    }
    size_t len = 0;
    norm[0] = 0;
    if (path[0] == '/')
        len = (size_t)snprintf(norm, PATH_MAX, "/");
    for (int i = 0; i < n && len < PATH_MAX; i++)
        len += (size_t)snprintf(norm + len, PATH_MAX - len, "%s%s", i ? "/" : "", parts[i]);
    for (int i = 0; i < L->n_vfs; i++)
        if (L->vfs[i].name && !strcmp(L->vfs[i].name, norm))
            return &L->vfs[i];
    return NULL;
}

struct node *parse_file(struct loader *L, const char *path, const struct node *from,
                        const char *as_written)
{
    if (L->vfs) {
        char norm[PATH_MAX];
        const struct rn_spec_file *vf = vfs_find(L, path, norm);
        if (vf)
            return parse_buffer(L, intern(L, path), vf->text, vf->len);
        errno = ENOENT;
    }
    FILE *f = L->vfs ? NULL : fopen(path, "rb");
    if (!f) {
        if (from)
            report(L, from, "", "cannot open '%s' (resolved to %s)", as_written, path);
        else
            report_pos(L, path, 0, 0, "cannot open: %s", strerror(errno));
        return NULL;
    }
    const char *file = intern(L, path);
    if (!file) {
        fclose(f);
        report_oom(L);
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && check_size(L, file, (size_t)st.st_size)) {
        fclose(f);
        return NULL;
    }
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) {
        fclose(f);
        report_oom(L);
        return NULL;
    }
    yaml_parser_set_input_file(&p, f);
    struct source S = {L, &p, file, NULL};
    struct node *root = parse_stream(&S, 1);
    yaml_parser_delete(&p);
    fclose(f);
    return root;
}

struct node *parse_text(struct loader *L, const char *text, size_t len)
{
    return parse_buffer(L, intern(L, L->text_name), text, len);
}
