/* spec.c - experiment specs: YAML -> tree -> extends/include/overrides ->
 * validated structs (spec.h).
 *
 * The work happens in three phases on a small tree of our own (mappings,
 * lists, scalars, each carrying the file and 1-based line:col it came from):
 *  1. load: libyaml events -> tree for the experiment file, then every file it
 *     extends (deep merge) and the model file it includes. A syntax error, a
 *     missing file or an extends cycle stops here: checking a half-loaded spec
 *     would only add errors that are consequences of the first.
 *  2. overrides: "a.b.3.c=value" edits the tree; the nodes they create carry
 *     the override text instead of a position, so later errors name it.
 *  3. check: every mapping is checked against a key schema (struct rn_key, the
 *     same tables the layer and analysis registries use), collecting every
 *     error, and converted into struct rn_spec.
 * The resolved YAML is written from the struct, so it holds every default.
 */
#include "spec.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "analysis.h"

#define MAX_DEPTH 64        /* nesting of YAML collections */
#define MAX_EXTENDS 16      /* files in one extends chain */
#define UNBOUNDED 1e9       /* a schema max at or above this reads as "no upper bound" */
#define SEED_MAX 18446744073709551615.0

/* ---- the tree ------------------------------------------------------------ */

enum node_kind { NODE_SCALAR, NODE_MAP, NODE_SEQ };

struct node {
    enum node_kind kind;
    const char *file;   /* interned path (struct loader), NULL for override values */
    const char *origin; /* the override this node came from, or NULL */
    int line, col;      /* 1-based */
    char *text;         /* scalar text, owned */
    int is_null;        /* plain empty, ~ or null */
    int n, cap;
    struct node **keys;  /* map: the key scalars */
    struct node **items; /* map: values; seq: items */
};

struct frame {
    char *real;          /* realpath, for cycle detection; owned */
    const char *display; /* the path as resolved, for messages (interned) */
};

/* One collected error; they are sorted before printing (overrides in
 * command-line order, then by file, line and column). */
struct diag {
    int override; /* index of the override, or INT_MAX for file errors */
    int file;     /* index in loader.files, -1 when not a loaded file */
    int line, col, seq;
    char *text;
};

struct loader {
    FILE *errors;
    struct rn_error *err;
    int n_errors;
    int oom;
    char **files; /* interned paths, owned */
    int n_files, cap_files;
    struct frame stack[MAX_EXTENDS];
    int depth;
    const char *const *overrides;
    struct diag *diags;
    int n_diags, cap_diags;
};

/* ---- error reporting ----------------------------------------------------- */

static int file_index(const struct loader *L, const char *file)
{
    for (int i = 0; file && i < L->n_files; i++)
        if (L->files[i] == file || !strcmp(L->files[i], file))
            return i;
    return -1;
}

static int override_index(const struct loader *L, const char *origin)
{
    for (int i = 0; origin && L->overrides && L->overrides[i]; i++)
        if (L->overrides[i] == origin)
            return i;
    return INT_MAX;
}

/* Records one error line. If it cannot be stored it is printed at once. */
static void emit_at(struct loader *L, int override, const char *file, int line, int col,
                    const char *text)
{
    L->n_errors++;
    if (L->n_diags == L->cap_diags) {
        int cap = L->cap_diags ? 2 * L->cap_diags : 16;
        struct diag *d = realloc(L->diags, sizeof *d * (size_t)cap);
        if (d) {
            L->diags = d;
            L->cap_diags = cap;
        }
    }
    char *copy = L->n_diags < L->cap_diags ? strdup(text) : NULL;
    if (!copy) {
        if (L->n_errors == 1 && L->err)
            snprintf(L->err->msg, sizeof L->err->msg, "%s", text);
        if (L->errors)
            fprintf(L->errors, "%s\n", text);
        return;
    }
    L->diags[L->n_diags++] = (struct diag){override, file_index(L, file), line, col, L->n_diags,
                                           copy};
}

static void emit(struct loader *L, const char *line)
{
    emit_at(L, INT_MAX, NULL, 0, 0, line);
}

static int diag_cmp(const void *pa, const void *pb)
{
    const struct diag *a = pa, *b = pb;
    if (a->override != b->override)
        return a->override < b->override ? -1 : 1;
    if (a->file != b->file)
        return a->file < b->file ? -1 : 1;
    if (a->line != b->line)
        return a->line < b->line ? -1 : 1;
    if (a->col != b->col)
        return a->col < b->col ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* Sorts, prints and frees the collected errors; the first goes into err. */
static void flush_diags(struct loader *L)
{
    if (L->n_diags)
        qsort(L->diags, (size_t)L->n_diags, sizeof *L->diags, diag_cmp);
    for (int i = 0; i < L->n_diags; i++) {
        if (i == 0 && L->err && L->n_errors == L->n_diags)
            snprintf(L->err->msg, sizeof L->err->msg, "%s", L->diags[i].text);
        if (L->errors)
            fprintf(L->errors, "%s\n", L->diags[i].text);
        free(L->diags[i].text);
    }
    free(L->diags);
    L->diags = NULL;
    L->n_diags = L->cap_diags = 0;
}

static void vreport(struct loader *L, const struct node *at, const char *where, const char *fmt,
                    va_list ap)
{
    char msg[2048], line[4096];
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (at && at->origin) {
        snprintf(line, sizeof line, "override '%s': %s", at->origin, msg);
        emit_at(L, override_index(L, at->origin), NULL, 0, 0, line);
    } else if (at && at->file) {
        snprintf(line, sizeof line, "%s:%d:%d: error: %s%s%s", at->file, at->line, at->col,
                 where ? where : "", where && *where ? ": " : "", msg);
        emit_at(L, INT_MAX, at->file, at->line, at->col, line);
    } else {
        snprintf(line, sizeof line, "error: %s%s%s", where ? where : "",
                 where && *where ? ": " : "", msg);
        emit(L, line);
    }
}

/* An error at a node: "file:line:col: error: where: msg", or
 * "override 'a.b=c': msg" for nodes an override created. */
__attribute__((format(printf, 4, 5))) static void report(struct loader *L, const struct node *at,
                                                         const char *where, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(L, at, where, fmt, ap);
    va_end(ap);
}

/* An error about a whole file ("x.yaml: error: ..."), or at a raw position. */
__attribute__((format(printf, 5, 6))) static void report_pos(struct loader *L, const char *file,
                                                             int line, int col, const char *fmt,
                                                             ...)
{
    char msg[2048], out[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (line > 0)
        snprintf(out, sizeof out, "%s:%d:%d: error: %s", file, line, col, msg);
    else
        snprintf(out, sizeof out, "%s: error: %s", file, msg);
    emit_at(L, INT_MAX, file, line, col, out);
}

__attribute__((format(printf, 3, 4))) static void report_override(struct loader *L,
                                                                  const char *text,
                                                                  const char *fmt, ...)
{
    char msg[2048], out[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(out, sizeof out, "override '%s': %s", text, msg);
    emit_at(L, override_index(L, text), NULL, 0, 0, out);
}

static void report_oom(struct loader *L)
{
    if (!L->oom)
        emit(L, "error: out of memory while reading the spec");
    L->oom = 1;
}

/* ---- did you mean --------------------------------------------------------- */

static int edit_distance(const char *a, const char *b)
{
    int la = (int)strlen(a), lb = (int)strlen(b);
    if (la > 63 || lb > 63)
        return INT_MAX;
    int prev[64], cur[64];
    for (int j = 0; j <= lb; j++)
        prev[j] = j;
    for (int i = 1; i <= la; i++) {
        cur[0] = i;
        for (int j = 1; j <= lb; j++) {
            int sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            int del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, sizeof(int) * (size_t)(lb + 1));
    }
    return prev[lb];
}

const char *rn_nearest(const char *word, const char *const *candidates, int n)
{
    int len = (int)strlen(word);
    int limit = len / 3 > 2 ? len / 3 : 2;
    const char *best = NULL;
    int best_d = INT_MAX;
    for (int i = 0; i < n; i++) {
        int d = edit_distance(word, candidates[i]);
        if (d <= limit && d < best_d) {
            best = candidates[i];
            best_d = d;
        }
    }
    return best;
}

/* " (did you mean 'x'?)" or "". */
static const char *suggest(char *buf, size_t size, const char *word, const char *const *cands,
                           int n)
{
    const char *s = rn_nearest(word, cands, n);
    if (s)
        snprintf(buf, size, " (did you mean '%s'?)", s);
    else
        buf[0] = '\0';
    return buf;
}

/* Splits "a|b|c" into pointers into buf. */
static int split_choices(const char *choices, char *buf, size_t size, const char **out, int max)
{
    snprintf(buf, size, "%s", choices ? choices : "");
    int n = 0;
    char *p = buf;
    while (*p && n < max) {
        out[n++] = p;
        char *bar = strchr(p, '|');
        if (!bar)
            break;
        *bar = '\0';
        p = bar + 1;
    }
    return n;
}

/* ---- tree building --------------------------------------------------------- */

static const char *intern(struct loader *L, const char *path)
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

static struct node *node_new(struct loader *L, enum node_kind kind, const char *file,
                             const char *origin, int line, int col)
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

static struct node *scalar_new(struct loader *L, const char *text, size_t len, int plain,
                               const char *file, const char *origin, int line, int col)
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

static void node_free(struct node *n)
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
static int node_push(struct loader *L, struct node *parent, struct node *key, struct node *item)
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

static struct node *map_get(const struct node *map, const char *key, int *index)
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

static void map_remove(struct node *map, int i)
{
    node_free(map->keys[i]);
    node_free(map->items[i]);
    memmove(map->keys + i, map->keys + i + 1, sizeof *map->keys * (size_t)(map->n - i - 1));
    memmove(map->items + i, map->items + i + 1, sizeof *map->items * (size_t)(map->n - i - 1));
    map->n--;
}

static void set_origin(struct node *n, const char *origin)
{
    n->origin = origin;
    for (int i = 0; i < n->n; i++) {
        if (n->keys)
            set_origin(n->keys[i], origin);
        set_origin(n->items[i], origin);
    }
}

/* ---- libyaml events -> tree ------------------------------------------------ */

struct source {
    struct loader *L;
    yaml_parser_t *p;
    const char *file;   /* interned, or NULL for an override value */
    const char *origin; /* the override text, or NULL */
};

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
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        n = scalar_new(S->L, (const char *)ev->data.scalar.value, ev->data.scalar.length,
                       ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE, S->file, S->origin,
                       (int)m.line + 1, (int)m.column + 1);
        yaml_event_delete(ev);
        return n;
    case YAML_ALIAS_EVENT: {
        struct node tmp = {.file = S->file, .origin = S->origin, .line = (int)m.line + 1,
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
                struct node tmp = {.file = S->file, .origin = S->origin,
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
static struct node *parse_stream(struct source *S, int need_map)
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
        struct node tmp = {.file = S->file, .origin = S->origin,
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
static struct node *parse_file(struct loader *L, const char *path, const struct node *from,
                               const char *as_written)
{
    FILE *f = fopen(path, "rb");
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

static void pop_frame(struct loader *L)
{
    L->depth--;
    free(L->stack[L->depth].real);
}

/* Loads path and everything it extends. */
static struct node *load_tree(struct loader *L, const char *path, const struct node *from,
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
static int resolve_include(struct loader *L, struct node *root)
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

/* ---- overrides --------------------------------------------------------------- */

static int is_index(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return 0;
    return 1;
}

/* The value of "a.b=value": YAML when it starts like a flow collection or a
 * quoted scalar, otherwise the text as written (so "description=a: b" works). */
static struct node *override_value(struct loader *L, const char *text, const char *value)
{
    if (strchr("[{\"'", value[0]) && value[0]) {
        yaml_parser_t p;
        if (!yaml_parser_initialize(&p)) {
            report_oom(L);
            return NULL;
        }
        yaml_parser_set_input_string(&p, (const unsigned char *)value, strlen(value));
        struct source S = {L, &p, NULL, text};
        struct node *n = parse_stream(&S, 0);
        yaml_parser_delete(&p);
        if (n)
            set_origin(n, text);
        return n;
    }
    return scalar_new(L, value, strlen(value), 1, NULL, text, 0, 0);
}

/* Applies one override to the tree. only_include: apply it only if its path is
 * model.include (those must act before the include is read); otherwise only if
 * it is not. */
static void apply_override(struct loader *L, struct node *root, const char *text,
                           int only_include)
{
    const char *eq = strchr(text, '=');
    char path[512];
    if (!eq || eq == text || (size_t)(eq - text) >= sizeof path) {
        if (!only_include)
            report_override(L, text, "expected key.path=value");
        return;
    }
    memcpy(path, text, (size_t)(eq - text));
    path[eq - text] = '\0';
    if (path[0] == '.' || path[strlen(path) - 1] == '.' || strstr(path, "..")) {
        if (!only_include)
            report_override(L, text, "expected key.path=value");
        return;
    }
    if (only_include != !strcmp(path, "model.include"))
        return;

    struct node *value = override_value(L, text, eq + 1);
    if (!value)
        return;
    struct node *cur = root;
    char walked[512] = "";
    char *save = NULL;
    for (char *seg = strtok_r(path, ".", &save); seg; seg = strtok_r(NULL, ".", &save)) {
        int last = save == NULL || *save == '\0';
        if (cur->kind == NODE_SEQ) {
            long idx = is_index(seg) ? strtol(seg, NULL, 10) : -1;
            if (idx < 0 || idx >= cur->n) {
                report_override(L, text, "'%s' has %d item%s; '%s' is not an index 0..%d",
                                walked, cur->n, cur->n == 1 ? "" : "s", seg, cur->n - 1);
                node_free(value);
                return;
            }
            if (last) {
                node_free(cur->items[idx]);
                cur->items[idx] = value;
                return;
            }
            cur = cur->items[idx];
        } else if (cur->kind == NODE_MAP) {
            int i;
            struct node *child = map_get(cur, seg, &i);
            if (last) {
                if (child) {
                    node_free(child);
                    cur->items[i] = value;
                } else {
                    struct node *k = scalar_new(L, seg, strlen(seg), 0, NULL, text, 0, 0);
                    if (!k) {
                        node_free(value);
                        return;
                    }
                    node_push(L, cur, k, value);
                }
                return;
            }
            if (!child || (child->kind == NODE_SCALAR && child->is_null)) {
                /* A section the file does not write (or leaves empty): create it;
                 * checking the keys later says whether the schema knows it. */
                struct node *m = node_new(L, NODE_MAP, NULL, text, 0, 0);
                if (!m) {
                    node_free(value);
                    return;
                }
                if (child) {
                    node_free(child);
                    cur->items[i] = m;
                } else {
                    struct node *k = scalar_new(L, seg, strlen(seg), 0, NULL, text, 0, 0);
                    if (!k || node_push(L, cur, k, m)) {
                        if (!k)
                            node_free(m);
                        node_free(value);
                        return;
                    }
                }
                child = m;
            }
            cur = child;
        } else {
            report_override(L, text, "'%s' is a single value, not a mapping or list", walked);
            node_free(value);
            return;
        }
        size_t len = strlen(walked);
        snprintf(walked + len, sizeof walked - len, "%s%s", len ? "." : "", seg);
    }
    node_free(value); /* not reached: the last segment returns */
}

/* ---- schemas of the spec's own sections --------------------------------------- */

/* A key whose value is not one schema scalar (a section, a list, a pair, a
 * seed): checked by hand below; listed here so unknown-key checks and the
 * reference know it. */
struct extra_key {
    const char *key;
    const char *type;
    const char *def;
    const char *doc;
};

static const struct rn_key top_keys[] = {
    {"device", RN_KIND_CHOICE, 0, 0, "auto", 1, 0, "auto|cpu|cuda",
     "where to run; auto = cuda when available"},
    {"threads", RN_KIND_INT, 0, 0, NULL, 0, 4096, NULL, "CPU threads; 0 = all cores"},
    {"deterministic", RN_KIND_BOOL, 0, 0, NULL, 0, 1, NULL,
     "bitwise-reproducible kernels, even where slower"},
    {"out", RN_KIND_STRING, 0, 0, "results", 1, 0, NULL,
     "results root, relative to the working directory"},
};
static const struct extra_key top_extra[] = {
    {"name", "string", "file name without .yaml",
     "experiment name (results/<name>/...); never inherited through extends"},
    {"description", "string", "\"\"", "free text, at most 1023 characters"},
    {"extends", "path", "none",
     "spec this one is based on, relative to this file; deep merge, this file wins, lists are "
     "replaced, `key: ~` deletes an inherited key"},
    {"seed", "integer", "0", "run seed in [0, 2^64-1]"},
    {"data", "section", "all defaults", "the dataset (below)"},
    {"model", "section", "none", "the network; without it the experiment is data-only"},
    {"train", "section", "none", "how to train the model (excludes load)"},
    {"load", "section", "none", "take the trained model from an earlier run (excludes train)"},
    {"analyses", "list", "[]", "analyses to run after training/loading (below)"},
};

static const struct rn_key data_keys[] = {
    {"source", RN_KIND_CHOICE, 0, 0, "mnist", 1, 0, "mnist|fashion_mnist", "dataset"},
    {"dir", RN_KIND_STRING, 0, 0, "data/mnist", 1, 0, NULL,
     "folder with the four IDX files (raw or .gz); relative to the working directory, not "
     "the spec file"},
    {"colouring", RN_KIND_CHOICE, 0, 0, "background", 1, 0, "none|background|stroke",
     "what gets the digit's colour; none = grey 1-channel images"},
    {"threshold", RN_KIND_INT, 0, 50, NULL, 0, 255, NULL, "foreground: intensity > threshold"},
    {"palette", RN_KIND_CHOICE, 0, 0, "study", 1, 0, "study", "colour of each digit"},
    {"bias", RN_KIND_FLOAT, 0, 0.95, NULL, 0, 1, NULL,
     "P(a digit gets its own colour) in the easy (train/val) set"},
    {"test_rule", RN_KIND_CHOICE, 0, 0, "conflicting", 1, 0, "conflicting|random|aligned",
     "colour of the hard test set: any other colour, any colour, or the digit's own"},
    {"val_fraction", RN_KIND_FLOAT, 0, 0.1, NULL, 0, 0.9, NULL,
     "share of the easy set held out as val"},
    {"train_limit", RN_KIND_INT, 0, 0, NULL, 0, UNBOUNDED, NULL,
     "use the first k MNIST train images (0 = all)"},
    {"test_limit", RN_KIND_INT, 0, 0, NULL, 0, UNBOUNDED, NULL,
     "use the first k MNIST test images (0 = all)"},
};
static const struct extra_key data_extra[] = {
    {"texture", "[number, number]", "[0.4, 1.0]",
     "noise range [lo, hi], 0 <= lo <= hi <= 1; [1, 1] = flat colour"},
    {"seed", "integer", "the top-level seed", "seed of the colouring and the split"},
};

static const struct rn_key model_keys[] = {
    {"name", RN_KIND_STRING, 0, 0, "model", 1, 0, NULL, "architecture name"},
};
static const struct extra_key model_extra[] = {
    {"include", "path", "none",
     "model file (a mapping with only name and layers), relative to the including file; keys "
     "written next to include win"},
    {"layers", "list", "required", "the layers, in order (see Layer types)"},
};

static const struct rn_key train_keys[] = {
    {"epochs", RN_KIND_INT, 0, 1, NULL, 1, UNBOUNDED, NULL, "passes over the train split"},
    {"batch", RN_KIND_INT, 0, 64, NULL, 1, UNBOUNDED, NULL, "training batch size"},
    {"eval_batch", RN_KIND_INT, 0, 256, NULL, 1, UNBOUNDED, NULL, "evaluation batch size"},
    {"optimizer", RN_KIND_CHOICE, 0, 0, "adam", 1, 0, "adam|adamw|sgd", "optimizer"},
    {"lr", RN_KIND_FLOAT, 0, 1e-3, NULL, 0, UNBOUNDED, NULL, "learning rate"},
    {"beta1", RN_KIND_FLOAT, 0, 0.9, NULL, 0, 1, NULL, "Adam beta1"},
    {"beta2", RN_KIND_FLOAT, 0, 0.999, NULL, 0, 1, NULL, "Adam beta2"},
    {"eps", RN_KIND_FLOAT, 0, 1e-8, NULL, 0, 1, NULL, "Adam epsilon"},
    {"weight_decay", RN_KIND_FLOAT, 0, 0, NULL, 0, UNBOUNDED, NULL,
     "weight decay; when not given 0, or 0.01 for adamw"},
    {"momentum", RN_KIND_FLOAT, 0, 0, NULL, 0, 1, NULL, "SGD momentum"},
    {"clip_norm", RN_KIND_FLOAT, 0, 0, NULL, 0, UNBOUNDED, NULL,
     "clip the global gradient norm first (torch clip_grad_norm_); 0 = off"},
    {"shuffle", RN_KIND_BOOL, 0, 1, NULL, 0, 1, NULL, "reshuffle the train split every epoch"},
    {"log_every", RN_KIND_INT, 0, 10, NULL, 1, UNBOUNDED, NULL,
     "steps between step-metric records"},
};
static const struct extra_key train_extra[] = {
    {"losses", "list", "[{type: cross_entropy, target: digit}]",
     "loss terms, summed with their weights (see Loss terms)"},
    {"eval", "list of train|val|test", "[val, test]", "splits evaluated after every epoch"},
    {"groups", "mapping name: [node, ...]", "{}",
     "named parameter groups by node name; `color_*` matches a prefix, a basic_block's name "
     "its expanded nodes"},
    {"optimizers", "list", "one optimizer from the keys above over every parameter, named main",
     "optimizers, each over its groups (see Optimizers); the keys optimizer, lr, beta1, beta2, "
     "eps, weight_decay, momentum and clip_norm above then apply to nothing"},
    {"schedules", "list", "[]",
     "named scalar functions of training progress p = step / total steps (see Schedules)"},
    {"bind", "list of {node, key, schedule}", "[]",
     "layer keys driven by a schedule, set before every step (e.g. a grl's alpha)"},
    {"program", "list", "one step: every loss, every optimizer",
     "what one batch does, in order (see Program steps)"},
    {"augment", "list", "[]",
     "augmentations of the training batches (see Augmentations); val and test are never "
     "augmented"},
};

static const struct rn_key loss_keys[] = {
    {"type", RN_KIND_CHOICE, 1, 0, NULL, 1, 0, "cross_entropy|neg_cross_entropy|saliency",
     "loss function; neg_cross_entropy is the penalty -CE (a head the features should fool)"},
    {"name", RN_KIND_STRING, 0, 0, "", 1, 0, NULL,
     "unique name (program steps and metrics loss/<name>); \"\" = the target for "
     "cross_entropy, neg_<target>, saliency"},
    {"on", RN_KIND_STRING, 0, 0, "", 1, 0, NULL, "node whose output are the logits; \"\" = last"},
    {"target", RN_KIND_CHOICE, 0, 0, "digit", 1, 0, "digit|color",
     "labels to predict: the digit, or the colour the generator drew (never the digit)"},
    {"norm", RN_KIND_CHOICE, 0, 0, "l1", 1, 0, "l1|l2",
     "saliency: per pixel, sum of |g| over channels (l1) or its Euclidean norm (l2)"},
    {"reduce", RN_KIND_CHOICE, 0, 0, "mean_background", 1, 0, "mean_background|background_share",
     "saliency: mean over background pixels, or background share of the total (scale-free)"},
    {"threshold", RN_KIND_FLOAT, 0, 0.95, NULL, 0, 1, NULL,
     "saliency: background pixels are those with min(R,G,B) < threshold"},
};
static const struct extra_key loss_extra[] = {
    {"weight", "number >= 0 or schedule name", "1",
     "factor of this term; a schedule name makes it follow that schedule"},
};

static const struct rn_key optimizer_keys[] = {
    {"name", RN_KIND_STRING, 1, 0, NULL, 1, 0, NULL, "unique name, used by program steps"},
    {"type", RN_KIND_CHOICE, 0, 0, "adam", 1, 0, "adam|adamw|sgd", "optimizer"},
    {"beta1", RN_KIND_FLOAT, 0, 0.9, NULL, 0, 1, NULL, "Adam beta1"},
    {"beta2", RN_KIND_FLOAT, 0, 0.999, NULL, 0, 1, NULL, "Adam beta2"},
    {"eps", RN_KIND_FLOAT, 0, 1e-8, NULL, 0, 1, NULL, "Adam epsilon"},
    {"weight_decay", RN_KIND_FLOAT, 0, 0, NULL, 0, UNBOUNDED, NULL,
     "weight decay; when not given 0, or 0.01 for adamw"},
    {"momentum", RN_KIND_FLOAT, 0, 0, NULL, 0, 1, NULL, "SGD momentum"},
    {"clip_norm", RN_KIND_FLOAT, 0, 0, NULL, 0, UNBOUNDED, NULL,
     "clip the global gradient norm of this optimizer's parameters first "
     "(torch clip_grad_norm_); 0 = off"},
};
static const struct extra_key optimizer_extra[] = {
    {"lr", "number >= 0 or schedule name", "1e-3",
     "learning rate; a schedule name makes it follow that schedule"},
    {"groups", "list of group names", "every parameter",
     "parameter groups (train.groups) this optimizer updates; required when there are several "
     "optimizers"},
};

static const struct rn_key sched_constant_keys[] = {
    {"value", RN_KIND_FLOAT, 1, 0, NULL, 1, 0, NULL, "the value"},
};
static const struct rn_key sched_linear_keys[] = {
    {"start", RN_KIND_FLOAT, 0, 0, NULL, 1, 0, NULL, "value up to p = from"},
    {"end", RN_KIND_FLOAT, 1, 0, NULL, 1, 0, NULL, "value from p = until on (the cap)"},
    {"from", RN_KIND_FLOAT, 0, 0, NULL, 0, 1, NULL, "progress where the ramp starts"},
    {"until", RN_KIND_FLOAT, 0, 1, NULL, 0, 1, NULL, "progress where the ramp reaches end"},
};
static const struct rn_key sched_dann_keys[] = {
    {"scale", RN_KIND_FLOAT, 0, 1, NULL, 1, 0, NULL, "value approached at p = 1"},
    {"gamma", RN_KIND_FLOAT, 0, 10, NULL, 0, UNBOUNDED, NULL, "steepness (10 in the DANN paper)"},
};
static const struct rn_key sched_step_keys[] = {
    {"at", RN_KIND_FLOAT, 1, 0, NULL, 0, 1, NULL, "progress where the value switches"},
    {"before", RN_KIND_FLOAT, 0, 0, NULL, 1, 0, NULL, "value while p < at"},
    {"after", RN_KIND_FLOAT, 1, 0, NULL, 1, 0, NULL, "value from p = at on"},
};
struct schedule_type {
    const char *name;
    const char *doc;
    const struct rn_key *keys;
    int n_keys;
};
static const struct schedule_type schedule_types[] = {
    {"constant", "value at every step", sched_constant_keys, 1},
    {"linear", "start until p = from, a straight line to end at p = until, then end (a ramp "
               "with a cap)",
     sched_linear_keys, 4},
    {"dann_sigmoid", "scale * (2 / (1 + exp(-gamma p)) - 1), the DANN schedule",
     sched_dann_keys, 2},
    {"step", "before while p < at, after from then on", sched_step_keys, 3},
};
static const struct extra_key schedule_extra[] = {
    {"name", "string", "required",
     "unique name, not a number; used by a loss weight, an optimizer lr and bind"},
    {"type", "choice", "required", "constant, linear, dann_sigmoid or step (below)"},
};

static const struct rn_key bind_keys[] = {
    {"node", RN_KIND_STRING, 1, 0, NULL, 1, 0, NULL, "node whose key the schedule drives"},
    {"key", RN_KIND_STRING, 1, 0, NULL, 1, 0, NULL,
     "a number key of that node's layer type (grl: alpha)"},
    {"schedule", RN_KIND_STRING, 1, 0, NULL, 1, 0, NULL, "schedule name"},
};

static const struct rn_key step_keys[] = {
    {"repeat", RN_KIND_INT, 0, 1, NULL, 1, 1000, NULL, "sub-steps made of this entry"},
};
static const struct extra_key step_extra[] = {
    {"optimizer", "name or list of names", "every optimizer",
     "optimizers that update after the backward (the default optimizer is called main)"},
    {"losses", "list of loss names", "every loss term",
     "terms whose gradients this step backpropagates"},
    {"set", "mapping node.key: number", "{}",
     "layer keys set for this step only, e.g. {grl.alpha: 0}"},
};

static const struct rn_key jitter_keys[] = {
    {"brightness", RN_KIND_FLOAT, 0, 0, NULL, 0, UNBOUNDED, NULL,
     "factor ~ U(max(0, 1-b), 1+b)"},
    {"contrast", RN_KIND_FLOAT, 0, 0, NULL, 0, UNBOUNDED, NULL, "factor ~ U(max(0, 1-c), 1+c)"},
    {"saturation", RN_KIND_FLOAT, 0, 0, NULL, 0, UNBOUNDED, NULL,
     "factor ~ U(max(0, 1-s), 1+s)"},
    {"hue", RN_KIND_FLOAT, 0, 0, NULL, 0, 0.5, NULL, "hue shift ~ U(-h, h), through HSV"},
};
static const struct extra_key augment_extra[] = {
    {"type", "choice", "required",
     "channel_permute (a random RGB permutation per sample, no keys) or color_jitter "
     "(torchvision ColorJitter, keys below)"},
};

static const struct rn_key load_keys[] = {
    {"run", RN_KIND_STRING, 1, 0, NULL, 1, 0, NULL,
     "run.h5 or its run directory, relative to the working directory"},
    {"model", RN_KIND_STRING, 0, 0, "main", 1, 0, NULL, "model name inside the run's /models"},
    {"if_missing", RN_KIND_CHOICE, 0, 0, "error", 1, 0, "error|train",
     "when `run` does not exist: fail, or train with the spec's train section"},
};

static const struct extra_key layer_extra[] = {
    {"type", "choice", "required", "layer type (the sections below)"},
    {"name", "string", "\"\"", "node name, unique in the model; \"\" = generated"},
    {"from", "name or [name, name]", "previous node", "input node(s)"},
};
static const struct extra_key analysis_extra[] = {
    {"type", "choice", "required", "analysis type (the sections below)"},
    {"name", "string", "the type name", "unique name; results go to /analyses/<name>"},
};

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* ---- checking values ---------------------------------------------------------- */

/* "an integer >= 1", "a number in [0, 1]", "one of a|b", ... */
static const char *describe(const struct rn_key *k, char *buf, size_t size)
{
    const char *what = k->kind == RN_KIND_INT ? "an integer" : "a number";
    switch (k->kind) {
    case RN_KIND_INT:
    case RN_KIND_FLOAT:
    case RN_KIND_INTS:
        if (k->kind == RN_KIND_INTS)
            what = "a list of at most 8 integers";
        if (k->min > k->max)
            snprintf(buf, size, "%s", what);
        else if (k->max >= UNBOUNDED)
            snprintf(buf, size, "%s >= %.15g", what, k->min);
        else
            snprintf(buf, size, "%s in [%.15g, %.15g]", what, k->min, k->max);
        break;
    case RN_KIND_BOOL:
        snprintf(buf, size, "true or false");
        break;
    case RN_KIND_STRING:
        snprintf(buf, size, "a string");
        break;
    case RN_KIND_CHOICE:
        snprintf(buf, size, "one of %s", k->choices ? k->choices : "");
        break;
    }
    return buf;
}

/* "'two'", "a list", "a mapping", "nothing" */
static const char *got(const struct node *n, char *buf, size_t size)
{
    if (n->kind == NODE_MAP)
        return "a mapping";
    if (n->kind == NODE_SEQ)
        return "a list";
    if (n->is_null)
        return "nothing";
    snprintf(buf, size, "'%s'", n->text);
    return buf;
}

static int parse_int(const char *s, double *out)
{
    const char *p = s + (*s == '+' || *s == '-');
    if (!is_index(p))
        return -1;
    errno = 0;
    if (*s == '-') {
        long long v = strtoll(s, NULL, 10);
        *out = (double)v;
    } else {
        unsigned long long v = strtoull(s, NULL, 10);
        *out = (double)v;
    }
    return errno ? -1 : 0;
}

static int parse_double(const char *s, double *out)
{
    char *end;
    if (!*s || isspace((unsigned char)*s))
        return -1;
    errno = 0;
    double v = strtod(s, &end);
    if (*end || errno || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

static int parse_bool(const char *s, int *out)
{
    if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))
        *out = 1;
    else if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))
        *out = 0;
    else
        return -1;
    return 0;
}

static int in_range(const struct rn_key *k, double v)
{
    return k->min > k->max || (v >= k->min && v <= k->max);
}

/* Converts n into slot i of v per k; label names the value in errors
 * ("train.epochs", "layer 'conv1' (conv2d): filters"). */
static void convert_value(struct loader *L, const struct node *n, const struct rn_key *k,
                          const char *label, struct rn_values *v, int i)
{
    char want[256], gbuf[300];
    describe(k, want, sizeof want);
    v->given[i] = 1;
    v->line[i] = n->line;
    v->col[i] = n->col;
    if (k->kind == RN_KIND_INTS) {
        if (n->kind != NODE_SEQ || n->n > 8) {
            report(L, n, label, "expected %s, got %s", want,
                   n->kind == NODE_SEQ ? "a longer list" : got(n, gbuf, sizeof gbuf));
            return;
        }
        v->n_ints[i] = n->n;
        for (int j = 0; j < n->n; j++) {
            const struct node *e = n->items[j];
            double d;
            if (e->kind != NODE_SCALAR || parse_int(e->text, &d) || d < INT_MIN || d > INT_MAX) {
                report(L, e, label, "expected %s, got %s", want, got(e, gbuf, sizeof gbuf));
                return;
            }
            if (!in_range(k, d)) {
                report(L, e, label, "expected %s, got %s", want, e->text);
                return;
            }
            v->ints[i][j] = (int)d;
        }
        return;
    }
    if (n->kind != NODE_SCALAR || (n->is_null && k->kind != RN_KIND_STRING)) {
        report(L, n, label, "expected %s, got %s", want, got(n, gbuf, sizeof gbuf));
        return;
    }
    double d;
    int b;
    switch (k->kind) {
    case RN_KIND_INT:
    case RN_KIND_FLOAT:
        if (k->kind == RN_KIND_INT ? parse_int(n->text, &d) : parse_double(n->text, &d)) {
            report(L, n, label, "expected %s, got '%s'", want, n->text);
            return;
        }
        if (!in_range(k, d)) {
            report(L, n, label, "expected %s, got %s", want, n->text);
            return;
        }
        v->num[i] = d;
        break;
    case RN_KIND_BOOL:
        if (parse_bool(n->text, &b)) {
            report(L, n, label, "expected true or false, got '%s'", n->text);
            return;
        }
        v->num[i] = b;
        break;
    case RN_KIND_STRING: {
        const char *s = n->is_null ? "" : n->text;
        if (strlen(s) >= RN_STR_MAX) {
            report(L, n, label, "expected at most %d characters, got %zu", RN_STR_MAX - 1,
                   strlen(s));
            return;
        }
        snprintf(v->str[i], RN_STR_MAX, "%s", s);
        break;
    }
    case RN_KIND_CHOICE: {
        char buf[512], sug[300];
        const char *words[32];
        int nw = split_choices(k->choices, buf, sizeof buf, words, 32);
        for (int j = 0; j < nw; j++)
            if (!strcmp(words[j], n->text)) {
                snprintf(v->str[i], RN_STR_MAX, "%s", n->text);
                return;
            }
        report(L, n, label, "expected %s, got '%s'%s", want, n->text,
               suggest(sug, sizeof sug, n->text, words, nw));
        break;
    }
    case RN_KIND_INTS:
        break;
    }
}

static void set_defaults(const struct rn_key *keys, int n, struct rn_values *v)
{
    memset(v, 0, sizeof *v);
    for (int i = 0; i < n && i < RN_MAX_KEYS; i++) {
        v->num[i] = keys[i].def;
        if (keys[i].def_str && keys[i].kind != RN_KIND_INTS)
            snprintf(v->str[i], RN_STR_MAX, "%s", keys[i].def_str);
        if (keys[i].def_str && keys[i].kind == RN_KIND_INTS) {
            const char *p = keys[i].def_str;
            while (*p && v->n_ints[i] < 8) {
                while (*p && !isdigit((unsigned char)*p) && *p != '-')
                    p++;
                if (!*p)
                    break;
                char *end;
                v->ints[i][v->n_ints[i]++] = (int)strtol(p, &end, 10);
                p = end;
            }
        }
    }
}

static int is_extra(const char *key, const struct extra_key *extra, int n_extra)
{
    for (int i = 0; i < n_extra; i++)
        if (!strcmp(extra[i].key, key))
            return 1;
    return 0;
}

/* An unknown key: "where: unknown key 'k' (did you mean 'x'?)" in a file,
 * "override '...': unknown key 'k' in where (did you mean 'x'?)" from an
 * override. */
static void report_unknown(struct loader *L, const struct node *key, const char *where,
                           const struct rn_key *keys, int n, const struct extra_key *extra,
                           int n_extra)
{
    const char *cands[RN_MAX_KEYS + 16];
    int nc = 0;
    for (int i = 0; i < n && nc < COUNT(cands); i++)
        cands[nc++] = keys[i].key;
    for (int i = 0; i < n_extra && nc < COUNT(cands); i++)
        cands[nc++] = extra[i].key;
    char sug[300];
    suggest(sug, sizeof sug, key->text, cands, nc);
    if (key->origin)
        report(L, key, "", "unknown key '%s'%s%s%s", key->text, *where ? " in " : "", where, sug);
    else
        report(L, key, where, "unknown key '%s'%s", key->text, sug);
}

static void value_label(char *buf, size_t size, const char *where, int dotted, const char *key)
{
    if (!*where)
        snprintf(buf, size, "%s", key);
    else
        snprintf(buf, size, dotted ? "%s.%s" : "%s: %s", where, key);
}

/* Checks a mapping against keys (+ extra keys handled by the caller) and
 * resolves v with defaults. map may be NULL (section absent: defaults) or a
 * null scalar (written but empty). where: "train", "layer 'conv1' (conv2d)",
 * "" for the top level; dotted: value errors read "train.epochs" rather than
 * "layer ...: filters". Returns 0 if map was usable as a mapping. */
static int check_map(struct loader *L, const struct node *map, const char *where, int dotted,
                     const struct rn_key *keys, int n, const struct extra_key *extra, int n_extra,
                     struct rn_values *v)
{
    set_defaults(keys, n, v);
    if (!map || (map->kind == NODE_SCALAR && map->is_null)) {
        for (int i = 0; map && i < n; i++)
            if (keys[i].required)
                report(L, map, where, "missing required key '%s'", keys[i].key);
        return 0;
    }
    if (map->kind != NODE_MAP) {
        char gbuf[300];
        report(L, map, where, "expected a mapping of keys, got %s", got(map, gbuf, sizeof gbuf));
        return -1;
    }
    for (int j = 0; j < map->n; j++) {
        const char *name = map->keys[j]->text;
        if (is_extra(name, extra, n_extra))
            continue;
        int i = 0;
        while (i < n && strcmp(keys[i].key, name) != 0)
            i++;
        if (i == n) {
            report_unknown(L, map->keys[j], where, keys, n, extra, n_extra);
            continue;
        }
        char label[512];
        value_label(label, sizeof label, where, dotted, name);
        convert_value(L, map->items[j], &keys[i], label, v, i);
    }
    for (int i = 0; i < n; i++)
        if (keys[i].required && !v->given[i])
            report(L, map, where, "missing required key '%s'", keys[i].key);
    return 0;
}

static int key_index(const struct rn_key *keys, int n, const char *key)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(keys[i].key, key))
            return i;
    return -1;
}
#define VNUM(v, keys, key) ((v).num[key_index(keys, COUNT(keys), key)])
#define VSTR(v, keys, key) ((v).str[key_index(keys, COUNT(keys), key)])
#define VGIVEN(v, keys, key) ((v).given[key_index(keys, COUNT(keys), key)])

/* A scalar string into dst (size bytes). Null = "". */
static int get_string(struct loader *L, const struct node *n, const char *label, char *dst,
                      size_t size)
{
    char gbuf[300];
    if (n->kind != NODE_SCALAR) {
        report(L, n, label, "expected a string, got %s", got(n, gbuf, sizeof gbuf));
        return -1;
    }
    const char *s = n->is_null ? "" : n->text;
    if (strlen(s) >= size) {
        report(L, n, label, "expected at most %zu characters, got %zu", size - 1, strlen(s));
        return -1;
    }
    snprintf(dst, size, "%s", s);
    return 0;
}

static int get_seed(struct loader *L, const struct node *n, const char *label, uint64_t *out)
{
    char gbuf[300];
    if (n->kind != NODE_SCALAR || n->is_null || !is_index(n->text + (n->text[0] == '+'))) {
        report(L, n, label, "expected an integer in [0, 18446744073709551615], got %s",
               got(n, gbuf, sizeof gbuf));
        return -1;
    }
    errno = 0;
    unsigned long long v = strtoull(n->text, NULL, 10);
    if (errno) {
        report(L, n, label, "expected an integer in [0, 18446744073709551615], got %s",
               n->text);
        return -1;
    }
    *out = (uint64_t)v;
    return 0;
}

/* The key node of map's entry key (positions of section-level errors). */
static const struct node *key_node(const struct node *map, const char *key)
{
    int i;
    return map_get(map, key, &i) ? map->keys[i] : NULL;
}

/* ---- sections ------------------------------------------------------------------ */

static void check_data(struct loader *L, const struct node *n, struct rn_spec *s)
{
    struct rn_values v;
    struct rn_data_config *d = &s->data;
    check_map(L, n, "data", 1, data_keys, COUNT(data_keys), data_extra, COUNT(data_extra), &v);
    snprintf(d->source, sizeof d->source, "%s", VSTR(v, data_keys, "source"));
    snprintf(d->dir, sizeof d->dir, "%s", VSTR(v, data_keys, "dir"));
    const char *c = VSTR(v, data_keys, "colouring");
    d->colouring = !strcmp(c, "none")     ? RN_COLOURING_NONE
                   : !strcmp(c, "stroke") ? RN_COLOURING_STROKE
                                          : RN_COLOURING_BACKGROUND;
    d->threshold = (int)VNUM(v, data_keys, "threshold");
    d->palette = rn_palette_study;
    d->bias = VNUM(v, data_keys, "bias");
    const char *r = VSTR(v, data_keys, "test_rule");
    d->test_rule = !strcmp(r, "random")    ? RN_RULE_RANDOM
                   : !strcmp(r, "aligned") ? RN_RULE_ALIGNED
                                           : RN_RULE_CONFLICTING;
    d->val_fraction = VNUM(v, data_keys, "val_fraction");
    d->train_limit = (int)VNUM(v, data_keys, "train_limit");
    d->test_limit = (int)VNUM(v, data_keys, "test_limit");
    d->noise_lo = 0.4f;
    d->noise_hi = 1.0f;
    d->seed = s->seed;
    if (!n || n->kind != NODE_MAP)
        return;
    const struct node *seed = map_get(n, "seed", NULL);
    if (seed)
        get_seed(L, seed, "data.seed", &d->seed);
    const struct node *t = map_get(n, "texture", NULL);
    if (!t)
        return;
    char gbuf[300];
    if (t->kind != NODE_SEQ || t->n != 2) {
        report(L, t, "data.texture", "expected a list of 2 numbers [lo, hi], got %s",
               t->kind == NODE_SEQ ? "a list of another length" : got(t, gbuf, sizeof gbuf));
        return;
    }
    double x[2];
    for (int i = 0; i < 2; i++) {
        const struct node *e = t->items[i];
        if (e->kind != NODE_SCALAR || parse_double(e->text, &x[i])) {
            report(L, e, "data.texture", "expected a number in [0, 1], got %s",
                   got(e, gbuf, sizeof gbuf));
            return;
        }
        if (x[i] < 0 || x[i] > 1) {
            report(L, e, "data.texture", "expected a number in [0, 1], got %s", e->text);
            return;
        }
    }
    if (x[0] > x[1]) {
        report(L, t, "data.texture", "expected lo <= hi, got [%s, %s]", t->items[0]->text,
               t->items[1]->text);
        return;
    }
    d->noise_lo = (float)x[0];
    d->noise_hi = (float)x[1];
}

/* "layer 'conv1'" or "layer #3" */
static void item_label(char *buf, size_t size, const char *what, const char *name, int index)
{
    if (name && *name)
        snprintf(buf, size, "%s '%s'", what, name);
    else
        snprintf(buf, size, "%s #%d", what, index + 1);
}

/* "line 7", or "base.yaml:7" when the first one lives in another file. */
static void where_first(char *buf, size_t size, const char *first_file, int first_line,
                        const struct node *second)
{
    if (first_file && second->file && strcmp(first_file, second->file) != 0)
        snprintf(buf, size, "%s:%d", first_file, first_line);
    else
        snprintf(buf, size, "line %d", first_line);
}

/* "type: unknown type 'x' (did you mean 'y'?); valid types: a, b" */
static void report_unknown_type(struct loader *L, const struct node *t, const char *label,
                                const char *const *names, int n)
{
    char sug[300], valid[2048] = "";
    size_t len = 0;
    for (int i = 0; i < n && len < sizeof valid; i++)
        len += (size_t)snprintf(valid + len, sizeof valid - len, "%s%s", i ? ", " : "",
                                names[i]);
    report(L, t, label, "unknown type '%s'%s; valid types: %s", t->text,
           suggest(sug, sizeof sug, t->text, names, n), valid);
}

static void check_from(struct loader *L, const struct node *f, const char *label,
                       struct rn_spec_layer *sl)
{
    char lab[600], gbuf[300];
    snprintf(lab, sizeof lab, "%s: from", label);
    int n = f->kind == NODE_SEQ ? f->n : 1;
    if (f->kind == NODE_MAP || n < 1 || n > sl->type->n_inputs) {
        if (f->kind == NODE_SEQ && n > sl->type->n_inputs)
            report(L, f, lab, "%s takes %d input%s, got %d names", sl->type->name,
                   sl->type->n_inputs, sl->type->n_inputs == 1 ? "" : "s", n);
        else
            report(L, f, lab, "expected a node name or a list of 1..%d names, got %s",
                   sl->type->n_inputs,
                   f->kind == NODE_SEQ ? "an empty list" : got(f, gbuf, sizeof gbuf));
        return;
    }
    for (int i = 0; i < n; i++) {
        const struct node *e = f->kind == NODE_SEQ ? f->items[i] : f;
        if (e->kind != NODE_SCALAR || e->is_null || !e->text[0]) {
            report(L, e, lab, "expected a node name, got %s", got(e, gbuf, sizeof gbuf));
            return;
        }
        if (get_string(L, e, lab, sl->from[i], RN_NAME_MAX))
            return;
    }
    sl->n_from = n;
}

static void set_pos(char *file, int *line, int *col, const struct node *n)
{
    snprintf(file, RN_PATH_MAX, "%s", n->file ? n->file : "<override>");
    *line = n->line;
    *col = n->col;
}

static void check_layers(struct loader *L, const struct node *model, struct rn_spec *s)
{
    int li;
    const struct node *layers = map_get(model, "layers", &li);
    char gbuf[300];
    if (!layers) {
        report(L, model, "model", "missing required key 'layers'");
        return;
    }
    if (layers->kind != NODE_SEQ || layers->n == 0) {
        report(L, layers, "model.layers", "expected a list of layers, got %s",
               layers->kind == NODE_SEQ ? "an empty list" : got(layers, gbuf, sizeof gbuf));
        return;
    }
    if (layers->n > RN_MAX_LAYERS) {
        report(L, layers, "model.layers", "expected at most %d layers, got %d", RN_MAX_LAYERS,
               layers->n);
        return;
    }
    const char *names[64];
    int n_names = 0;
    for (int i = 0; i < rn_n_layer_types && i < 64; i++)
        names[n_names++] = rn_layer_types[i]->name;
    const struct node *name_nodes[RN_MAX_LAYERS] = {0};

    for (int i = 0; i < layers->n; i++) {
        const struct node *item = layers->items[i];
        struct rn_spec_layer *sl = &s->model.layers[s->model.n_layers++];
        char label[300], full[400];
        set_pos(sl->file, &sl->line, &sl->col, item);
        item_label(label, sizeof label, "layer", NULL, i);
        if (item->kind != NODE_MAP) {
            report(L, item, label, "expected a mapping such as {type: relu}, got %s",
                   got(item, gbuf, sizeof gbuf));
            continue;
        }
        const struct node *nm = map_get(item, "name", NULL);
        char name_label[320];
        snprintf(name_label, sizeof name_label, "%s: name", label);
        if (nm && get_string(L, nm, name_label, sl->name, RN_NAME_MAX) == 0 && sl->name[0]) {
            item_label(label, sizeof label, "layer", sl->name, i);
            name_nodes[i] = nm;
        }
        const struct node *t = map_get(item, "type", NULL);
        if (!t) {
            report(L, item, label, "missing required key 'type'");
            continue;
        }
        if (t->kind != NODE_SCALAR || t->is_null || !(sl->type = rn_layer_type_find(t->text))) {
            if (t->kind != NODE_SCALAR || t->is_null)
                report(L, t, label, "expected a layer type, got %s", got(t, gbuf, sizeof gbuf));
            else
                report_unknown_type(L, t, label, names, n_names);
            continue;
        }
        snprintf(full, sizeof full, "%s (%s)", label, sl->type->name);
        check_map(L, item, full, 0, sl->type->keys, sl->type->n_keys, layer_extra,
                  COUNT(layer_extra), &sl->v);
        const struct node *f = map_get(item, "from", NULL);
        if (f)
            check_from(L, f, full, sl);
        if (!name_nodes[i])
            continue;
        for (int j = 0; j < i; j++) {
            if (!name_nodes[j] || strcmp(s->model.layers[j].name, sl->name) != 0)
                continue;
            char first[600];
            where_first(first, sizeof first, name_nodes[j]->file, name_nodes[j]->line, nm);
            report(L, nm, full, "name '%s' is already used by the layer at %s", sl->name, first);
            break;
        }
    }
}

static void check_model(struct loader *L, const struct node *n, struct rn_spec *s)
{
    struct rn_values v;
    if (check_map(L, n, "model", 1, model_keys, COUNT(model_keys), model_extra,
                  COUNT(model_extra), &v))
        return;
    if (strlen(VSTR(v, model_keys, "name")) >= RN_NAME_MAX)
        report(L, map_get(n, "name", NULL), "model.name", "expected at most %d characters",
               RN_NAME_MAX - 1);
    snprintf(s->model.name, sizeof s->model.name, "%s", VSTR(v, model_keys, "name"));
    if (n->kind == NODE_SCALAR) {
        report(L, n, "model", "missing required key 'layers'");
        return;
    }
    check_layers(L, n, s);
}

/* "loss #2" or "loss 'penalty'" when the item names itself. */
static void named_label(char *buf, size_t size, const char *what, const struct node *item, int i)
{
    const struct node *nm = item->kind == NODE_MAP ? map_get(item, "name", NULL) : NULL;
    if (nm && nm->kind == NODE_SCALAR && !nm->is_null && nm->text[0] &&
        strlen(nm->text) < RN_NAME_MAX)
        item_label(buf, size, what, nm->text, i);
    else
        item_label(buf, size, what, NULL, i);
}

/* A list of 1..max items, or a report. */
static int check_list(struct loader *L, const struct node *n, const char *label, int max,
                      const char *what)
{
    char gbuf[300];
    if (n->kind == NODE_SEQ && n->n >= 1 && n->n <= max)
        return 0;
    report(L, n, label, "expected a list of 1..%d %s, got %s", max, what,
           n->kind == NODE_SEQ ? (n->n ? "a longer list" : "an empty list")
                               : got(n, gbuf, sizeof gbuf));
    return -1;
}

/* A number >= min, or a name (of a schedule, checked by the caller). */
static int number_or_name(struct loader *L, const struct node *n, const char *label, double min,
                          double *value, char *name)
{
    char gbuf[300];
    double d;
    name[0] = '\0';
    if (n->kind != NODE_SCALAR || n->is_null) {
        report(L, n, label, "expected a number >= %g or a schedule name, got %s", min,
               got(n, gbuf, sizeof gbuf));
        return -1;
    }
    if (parse_double(n->text, &d) == 0) {
        if (d < min) {
            report(L, n, label, "expected a number >= %g or a schedule name, got %s", min,
                   n->text);
            return -1;
        }
        *value = d;
        return 0;
    }
    return get_string(L, n, label, name, RN_NAME_MAX);
}

static int find_name(const char *name, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(names[i], name))
            return i;
    return -1;
}

/* An unknown reference: "unknown schedule 'lamda' (did you mean 'lambda'?)". */
static int check_ref(struct loader *L, const struct node *at, const char *label, const char *what,
                     const char *name, const char *const *names, int n, const char *declared_in)
{
    char sug[300];
    if (find_name(name, names, n) >= 0)
        return 0;
    if (n == 0)
        report(L, at, label, "unknown %s '%s'; %s declares none", what, name, declared_in);
    else
        report(L, at, label, "unknown %s '%s'%s", what, name, suggest(sug, sizeof sug, name, names, n));
    return -1;
}

static int schedule_names(const struct rn_spec_train *t, const char **names)
{
    for (int i = 0; i < t->n_schedules; i++)
        names[i] = t->schedules[i].name;
    return t->n_schedules;
}

static void check_schedules(struct loader *L, const struct node *n, struct rn_spec_train *t)
{
    char gbuf[300];
    if (check_list(L, n, "train.schedules", RN_MAX_SCHEDULES, "schedules"))
        return;
    const char *types[COUNT(schedule_types)];
    for (int k = 0; k < COUNT(schedule_types); k++)
        types[k] = schedule_types[k].name;
    for (int i = 0; i < n->n; i++) {
        const struct node *item = n->items[i];
        struct rn_spec_schedule *sc = &t->schedules[t->n_schedules];
        char label[300], full[400];
        named_label(label, sizeof label, "schedule", item, i);
        if (item->kind != NODE_MAP) {
            report(L, item, label, "expected a mapping such as {name: alpha, type: linear, end: "
                   "0.5}, got %s", got(item, gbuf, sizeof gbuf));
            continue;
        }
        const struct node *ty = map_get(item, "type", NULL), *nm = map_get(item, "name", NULL);
        const struct schedule_type *st = NULL;
        if (!ty)
            report(L, item, label, "missing required key 'type'");
        else if (ty->kind != NODE_SCALAR || ty->is_null)
            report(L, ty, label, "expected a schedule type, got %s", got(ty, gbuf, sizeof gbuf));
        else if (find_name(ty->text, types, COUNT(types)) < 0)
            report_unknown_type(L, ty, label, types, COUNT(types));
        else
            st = &schedule_types[find_name(ty->text, types, COUNT(types))];
        if (!nm)
            report(L, item, label, "missing required key 'name'");
        if (!st || !nm)
            continue;
        if (get_string(L, nm, label, sc->name, sizeof sc->name))
            continue;
        double d;
        if (!sc->name[0] || parse_double(sc->name, &d) == 0) {
            report(L, nm, label, "name: expected a name that does not read as a number, got '%s'",
                   sc->name);
            continue;
        }
        const char *prev[RN_MAX_SCHEDULES];
        int np = schedule_names(t, prev);
        if (find_name(sc->name, prev, np) >= 0) {
            report(L, nm, label, "name '%s' is already used by another schedule", sc->name);
            continue;
        }
        snprintf(full, sizeof full, "%s (%s)", label, st->name);
        struct rn_values v;
        check_map(L, item, full, 0, st->keys, st->n_keys, schedule_extra, COUNT(schedule_extra),
                  &v);
        snprintf(sc->type, sizeof sc->type, "%s", st->name);
        set_pos(sc->file, &sc->line, &sc->col, item);
        sc->scale = 1;
        sc->gamma = 10;
        sc->until = 1;
        if (!strcmp(st->name, "constant")) {
            sc->value = v.num[0];
        } else if (!strcmp(st->name, "linear")) {
            sc->start = v.num[0];
            sc->end = v.num[1];
            sc->from = v.num[2];
            sc->until = v.num[3];
            if (sc->from > sc->until)
                report(L, item, full, "from (%g) must not be after until (%g)", sc->from,
                       sc->until);
        } else if (!strcmp(st->name, "dann_sigmoid")) {
            sc->scale = v.num[0];
            sc->gamma = v.num[1];
        } else {
            sc->at = v.num[0];
            sc->before = v.num[1];
            sc->after = v.num[2];
        }
        t->n_schedules++;
    }
}

static void check_groups(struct loader *L, const struct node *n, struct rn_spec_train *t)
{
    char gbuf[300], label[RN_NAME_MAX + 32];
    if (n->kind != NODE_MAP || n->n == 0 || n->n > RN_MAX_GROUPS) {
        report(L, n, "train.groups",
               "expected a mapping of 1..%d groups such as {backbone: [conv1, conv2]}, got %s",
               RN_MAX_GROUPS,
               n->kind == NODE_MAP ? (n->n ? "more groups" : "an empty mapping")
                                   : got(n, gbuf, sizeof gbuf));
        return;
    }
    for (int i = 0; i < n->n; i++) {
        const struct node *k = n->keys[i], *v = n->items[i];
        struct rn_spec_group *g = &t->groups[t->n_groups];
        snprintf(label, sizeof label, "train.groups.%.*s", RN_NAME_MAX, k->text);
        if (!k->text[0] || strlen(k->text) >= RN_NAME_MAX) {
            report(L, k, "train.groups", "expected a group name of 1..%d characters",
                   RN_NAME_MAX - 1);
            continue;
        }
        int count = v->kind == NODE_SEQ ? v->n : 1;
        if (v->kind == NODE_MAP || (v->kind == NODE_SCALAR && v->is_null) || count < 1 ||
            count > RN_MAX_GROUP_NODES) {
            report(L, v, label, "expected a node name or a list of 1..%d node names, got %s",
                   RN_MAX_GROUP_NODES,
                   v->kind == NODE_SEQ ? (count ? "a longer list" : "an empty list")
                                       : got(v, gbuf, sizeof gbuf));
            continue;
        }
        memset(g, 0, sizeof *g);
        snprintf(g->name, sizeof g->name, "%s", k->text);
        set_pos(g->file, &g->line, &g->col, k);
        int ok = 1;
        for (int j = 0; j < count; j++) {
            const struct node *e = v->kind == NODE_SEQ ? v->items[j] : v;
            if (e->kind != NODE_SCALAR || e->is_null || !e->text[0]) {
                report(L, e, label, "expected a node name, got %s", got(e, gbuf, sizeof gbuf));
                ok = 0;
                continue;
            }
            const char *star = strchr(e->text, '*');
            if (star && star[1]) {
                report(L, e, label, "'%s': '*' may only end a name (a prefix match)", e->text);
                ok = 0;
                continue;
            }
            if (get_string(L, e, label, g->nodes[g->n_nodes], RN_NAME_MAX)) {
                ok = 0;
                continue;
            }
            g->node_line[g->n_nodes] = e->line;
            g->node_col[g->n_nodes] = e->col;
            g->n_nodes++;
        }
        if (ok)
            t->n_groups++;
    }
}

static void check_losses(struct loader *L, const struct node *n, struct rn_spec_train *t)
{
    char gbuf[300];
    if (check_list(L, n, "train.losses", RN_MAX_LOSSES, "loss terms"))
        return;
    const char *sched[RN_MAX_SCHEDULES];
    int n_sched = schedule_names(t, sched);
    const struct node *pos[RN_MAX_LOSSES] = {0};
    t->n_losses = 0;
    for (int i = 0; i < n->n; i++) {
        const struct node *item = n->items[i];
        struct rn_spec_loss *l = &t->losses[t->n_losses++];
        struct rn_values v;
        char label[300], wlabel[320];
        memset(l, 0, sizeof *l);
        named_label(label, sizeof label, "loss", item, i);
        set_pos(l->file, &l->line, &l->col, item);
        if (item->kind != NODE_MAP) {
            report(L, item, label,
                   "expected a mapping such as {type: cross_entropy, target: digit}, got %s",
                   got(item, gbuf, sizeof gbuf));
            continue;
        }
        check_map(L, item, label, 0, loss_keys, COUNT(loss_keys), loss_extra, COUNT(loss_extra),
                  &v);
        snprintf(l->type, sizeof l->type, "%s", VSTR(v, loss_keys, "type"));
        if (strlen(VSTR(v, loss_keys, "on")) >= RN_NAME_MAX)
            report(L, map_get(item, "on", NULL), label, "on: expected at most %d characters",
                   RN_NAME_MAX - 1);
        snprintf(l->on, sizeof l->on, "%s", VSTR(v, loss_keys, "on"));
        snprintf(l->target, sizeof l->target, "%s", VSTR(v, loss_keys, "target"));
        snprintf(l->norm, sizeof l->norm, "%s", VSTR(v, loss_keys, "norm"));
        snprintf(l->reduce, sizeof l->reduce, "%s", VSTR(v, loss_keys, "reduce"));
        l->threshold = VNUM(v, loss_keys, "threshold");
        if (l->type[0] && strcmp(l->type, "saliency") != 0) {
            static const char *const sal_only[] = {"norm", "reduce", "threshold"};
            for (int k = 0; k < 3; k++)
                if (VGIVEN(v, loss_keys, sal_only[k]))
                    report(L, key_node(item, sal_only[k]), label,
                           "%s applies to saliency terms only, not %s", sal_only[k], l->type);
        }
        l->weight = 1;
        const struct node *w = map_get(item, "weight", NULL);
        snprintf(wlabel, sizeof wlabel, "%s: weight", label);
        if (w && number_or_name(L, w, wlabel, 0, &l->weight, l->weight_schedule) == 0 &&
            l->weight_schedule[0])
            check_ref(L, w, wlabel, "schedule", l->weight_schedule, sched, n_sched,
                      "train.schedules");
        const char *nm = VSTR(v, loss_keys, "name");
        int named = nm[0] != '\0';
        if (strlen(nm) >= RN_NAME_MAX)
            report(L, map_get(item, "name", NULL), label, "name: expected at most %d characters",
                   RN_NAME_MAX - 1);
        else if (named)
            snprintf(l->name, sizeof l->name, "%s", nm);
        else if (!strcmp(l->type, "saliency"))
            snprintf(l->name, sizeof l->name, "saliency");
        else {
            char tg[sizeof l->target]; /* a copy: gcc cannot tell l->name from l->target */
            memcpy(tg, l->target, sizeof tg);
            snprintf(l->name, sizeof l->name, "%s%s",
                     !strcmp(l->type, "neg_cross_entropy") ? "neg_" : "", tg);
        }
        /* an unknown type has no default name worth comparing */
        pos[i] = named ? map_get(item, "name", NULL) : l->type[0] ? item : NULL;
        for (int j = 0; j < i && pos[i]; j++) {
            if (!pos[j] || strcmp(t->losses[j].name, l->name) != 0)
                continue;
            char first[600];
            where_first(first, sizeof first, pos[j]->file, pos[j]->line, pos[i]);
            if (named)
                report(L, pos[i], label, "name '%s' is already used by the loss term at %s",
                       l->name, first);
            else
                report(L, item, label,
                       "the loss term at %s is already named '%s'; give this one a 'name'", first,
                       l->name);
            break;
        }
    }
}

/* A name or a list of 1..max names, each checked against names[]. */
static int check_name_list(struct loader *L, const struct node *n, const char *label,
                           char (*out)[RN_NAME_MAX], int max, const char *what,
                           const char *const *names, int n_names, const char *declared_in)
{
    char gbuf[300];
    int count = n->kind == NODE_SEQ ? n->n : 1;
    if (n->kind == NODE_MAP || (n->kind == NODE_SCALAR && n->is_null) || count < 1 ||
        count > max) {
        report(L, n, label, "expected a %s name or a list of 1..%d names, got %s", what, max,
               n->kind == NODE_SEQ ? (count ? "a longer list" : "an empty list")
                                   : got(n, gbuf, sizeof gbuf));
        return 0;
    }
    int k = 0;
    for (int j = 0; j < count; j++) {
        const struct node *e = n->kind == NODE_SEQ ? n->items[j] : n;
        if (e->kind != NODE_SCALAR || e->is_null) {
            report(L, e, label, "expected a %s name, got %s", what, got(e, gbuf, sizeof gbuf));
            continue;
        }
        if (check_ref(L, e, label, what, e->text, names, n_names, declared_in))
            continue;
        for (int q = 0; q < k; q++)
            if (!strcmp(out[q], e->text))
                report(L, e, label, "'%s' is listed twice", e->text);
        snprintf(out[k++], RN_NAME_MAX, "%s", e->text);
    }
    return k;
}

static void check_optimizers(struct loader *L, const struct node *n, struct rn_spec_train *t)
{
    char gbuf[300];
    if (check_list(L, n, "train.optimizers", RN_MAX_OPTIMIZERS, "optimizers"))
        return;
    const char *sched[RN_MAX_SCHEDULES], *groups[RN_MAX_GROUPS];
    int n_sched = schedule_names(t, sched);
    for (int i = 0; i < t->n_groups; i++)
        groups[i] = t->groups[i].name;
    for (int i = 0; i < n->n; i++) {
        const struct node *item = n->items[i];
        struct rn_spec_optimizer *o = &t->optimizers[t->n_optimizers];
        char label[300], sub[320];
        named_label(label, sizeof label, "optimizer", item, i);
        if (item->kind != NODE_MAP) {
            report(L, item, label, "expected a mapping such as {name: main, type: adam, lr: "
                   "1e-3, groups: [backbone]}, got %s", got(item, gbuf, sizeof gbuf));
            continue;
        }
        struct rn_values v;
        memset(o, 0, sizeof *o);
        check_map(L, item, label, 0, optimizer_keys, COUNT(optimizer_keys), optimizer_extra,
                  COUNT(optimizer_extra), &v);
        set_pos(o->file, &o->line, &o->col, item);
        const char *nm = VSTR(v, optimizer_keys, "name");
        if (strlen(nm) >= RN_NAME_MAX || (VGIVEN(v, optimizer_keys, "name") && !nm[0])) {
            report(L, map_get(item, "name", NULL), label, "name: expected 1..%d characters",
                   RN_NAME_MAX - 1);
            continue;
        }
        snprintf(o->name, sizeof o->name, "%s", nm);
        for (int j = 0; j < t->n_optimizers; j++)
            if (!strcmp(t->optimizers[j].name, o->name))
                report(L, map_get(item, "name", NULL), label,
                       "name '%s' is already used by another optimizer", o->name);
        snprintf(o->type, sizeof o->type, "%s", VSTR(v, optimizer_keys, "type"));
        o->beta1 = VNUM(v, optimizer_keys, "beta1");
        o->beta2 = VNUM(v, optimizer_keys, "beta2");
        o->eps = VNUM(v, optimizer_keys, "eps");
        o->weight_decay = VNUM(v, optimizer_keys, "weight_decay");
        if (!VGIVEN(v, optimizer_keys, "weight_decay") && !strcmp(o->type, "adamw"))
            o->weight_decay = 0.01;
        o->momentum = VNUM(v, optimizer_keys, "momentum");
        o->clip_norm = VNUM(v, optimizer_keys, "clip_norm");
        o->lr = 1e-3;
        const struct node *lr = map_get(item, "lr", NULL);
        snprintf(sub, sizeof sub, "%s: lr", label);
        if (lr && number_or_name(L, lr, sub, 0, &o->lr, o->lr_schedule) == 0 &&
            o->lr_schedule[0])
            check_ref(L, lr, sub, "schedule", o->lr_schedule, sched, n_sched, "train.schedules");
        const struct node *gr = map_get(item, "groups", NULL);
        snprintf(sub, sizeof sub, "%s: groups", label);
        if (gr)
            o->n_groups = check_name_list(L, gr, sub, o->groups, RN_MAX_GROUPS, "group", groups,
                                          t->n_groups, "train.groups");
        else if (n->n > 1)
            report(L, item, label,
                   "missing key 'groups'; with several optimizers each one names its groups");
        t->n_optimizers++;
    }
}

static void check_binds(struct loader *L, const struct node *n, struct rn_spec_train *t)
{
    char gbuf[300];
    if (check_list(L, n, "train.bind", RN_MAX_BINDS, "bindings"))
        return;
    const char *sched[RN_MAX_SCHEDULES];
    int n_sched = schedule_names(t, sched);
    for (int i = 0; i < n->n; i++) {
        const struct node *item = n->items[i];
        struct rn_spec_bind *b = &t->binds[t->n_binds];
        char label[64];
        item_label(label, sizeof label, "bind", NULL, i);
        if (item->kind != NODE_MAP) {
            report(L, item, label, "expected a mapping such as {node: grl, key: alpha, schedule: "
                   "alpha}, got %s", got(item, gbuf, sizeof gbuf));
            continue;
        }
        struct rn_values v;
        check_map(L, item, label, 0, bind_keys, COUNT(bind_keys), NULL, 0, &v);
        if (!VGIVEN(v, bind_keys, "node") || !VGIVEN(v, bind_keys, "key") ||
            !VGIVEN(v, bind_keys, "schedule"))
            continue;
        memset(b, 0, sizeof *b);
        set_pos(b->file, &b->line, &b->col, item);
        static const char *const fields[] = {"node", "key", "schedule"};
        char *dst[] = {b->node, b->key, b->schedule};
        size_t size[] = {sizeof b->node, sizeof b->key, sizeof b->schedule};
        int ok = 1;
        for (int k = 0; k < 3; k++) {
            const char *val = VSTR(v, bind_keys, fields[k]);
            if (!val[0] || strlen(val) >= size[k]) {
                report(L, map_get(item, fields[k], NULL), label, "%s: expected 1..%zu characters",
                       fields[k], size[k] - 1);
                ok = 0;
            } else {
                snprintf(dst[k], size[k], "%s", val);
            }
        }
        if (ok && check_ref(L, map_get(item, "schedule", NULL), label, "schedule", b->schedule,
                            sched, n_sched, "train.schedules") == 0)
            t->n_binds++;
    }
}

static void check_program(struct loader *L, const struct node *n, struct rn_spec_train *t)
{
    char gbuf[300];
    if (check_list(L, n, "train.program", RN_MAX_PROGRAM, "steps"))
        return;
    const char *opts[RN_MAX_OPTIMIZERS], *losses[RN_MAX_LOSSES];
    int n_opts = t->n_optimizers;
    for (int i = 0; i < t->n_optimizers; i++)
        opts[i] = t->optimizers[i].name;
    if (n_opts == 0)
        opts[n_opts++] = "main";
    for (int i = 0; i < t->n_losses; i++)
        losses[i] = t->losses[i].name;
    for (int i = 0; i < n->n; i++) {
        const struct node *item = n->items[i];
        struct rn_spec_step *st = &t->program[t->n_program];
        char label[64], sub[128];
        item_label(label, sizeof label, "program step", NULL, i);
        if (item->kind != NODE_MAP) {
            report(L, item, label, "expected a mapping such as {optimizer: main, losses: "
                   "[digit]}, got %s", got(item, gbuf, sizeof gbuf));
            continue;
        }
        struct rn_values v;
        memset(st, 0, sizeof *st);
        check_map(L, item, label, 0, step_keys, COUNT(step_keys), step_extra, COUNT(step_extra),
                  &v);
        st->repeat = (int)VNUM(v, step_keys, "repeat");
        set_pos(st->file, &st->line, &st->col, item);
        const struct node *e;
        if ((e = map_get(item, "optimizer", NULL))) {
            snprintf(sub, sizeof sub, "%s: optimizer", label);
            st->n_optimizers = check_name_list(L, e, sub, st->optimizers, RN_MAX_OPTIMIZERS,
                                               "optimizer", opts, n_opts, "train.optimizers");
        }
        if ((e = map_get(item, "losses", NULL))) {
            snprintf(sub, sizeof sub, "%s: losses", label);
            st->n_losses = check_name_list(L, e, sub, st->losses, RN_MAX_LOSSES, "loss", losses,
                                           t->n_losses, "train.losses");
        }
        if ((e = map_get(item, "set", NULL))) {
            snprintf(sub, sizeof sub, "%s: set", label);
            if (e->kind != NODE_MAP || e->n > RN_MAX_SETS) {
                report(L, e, sub, "expected a mapping of at most %d node.key: number entries "
                       "such as {grl.alpha: 0}, got %s", RN_MAX_SETS,
                       e->kind == NODE_MAP ? "more" : got(e, gbuf, sizeof gbuf));
            } else {
                for (int j = 0; j < e->n; j++) {
                    const struct node *k = e->keys[j], *val = e->items[j];
                    struct rn_spec_set *ss = &st->sets[st->n_sets];
                    const char *dot = strrchr(k->text, '.');
                    double d;
                    if (!dot || dot == k->text || !dot[1] ||
                        (size_t)(dot - k->text) >= sizeof ss->node ||
                        strlen(dot + 1) >= sizeof ss->key) {
                        report(L, k, sub, "expected node.key (e.g. grl.alpha), got '%s'",
                               k->text);
                        continue;
                    }
                    if (val->kind != NODE_SCALAR || val->is_null ||
                        parse_double(val->text, &d)) {
                        report(L, val, sub, "%s: expected a number, got %s", k->text,
                               got(val, gbuf, sizeof gbuf));
                        continue;
                    }
                    snprintf(ss->node, sizeof ss->node, "%.*s", (int)(dot - k->text), k->text);
                    snprintf(ss->key, sizeof ss->key, "%s", dot + 1);
                    ss->value = d;
                    set_pos(ss->file, &ss->line, &ss->col, k);
                    st->n_sets++;
                }
            }
        }
        t->n_program++;
    }
}

static void check_augment(struct loader *L, const struct node *n, struct rn_spec_train *t)
{
    char gbuf[300];
    static const char *const types[] = {"channel_permute", "color_jitter"};
    if (check_list(L, n, "train.augment", RN_MAX_AUGMENTS, "augmentations"))
        return;
    for (int i = 0; i < n->n; i++) {
        const struct node *item = n->items[i];
        struct rn_spec_augment *a = &t->augment[t->n_augment];
        char label[64], full[128];
        item_label(label, sizeof label, "augment", NULL, i);
        if (item->kind != NODE_MAP) {
            report(L, item, label, "expected a mapping such as {type: channel_permute}, got %s",
                   got(item, gbuf, sizeof gbuf));
            continue;
        }
        const struct node *ty = map_get(item, "type", NULL);
        int k = -1;
        if (!ty)
            report(L, item, label, "missing required key 'type'");
        else if (ty->kind != NODE_SCALAR || ty->is_null)
            report(L, ty, label, "expected an augmentation type, got %s",
                   got(ty, gbuf, sizeof gbuf));
        else if ((k = find_name(ty->text, types, 2)) < 0)
            report_unknown_type(L, ty, label, types, 2);
        if (k < 0)
            continue;
        snprintf(full, sizeof full, "%s (%s)", label, types[k]);
        struct rn_values v;
        memset(a, 0, sizeof *a);
        check_map(L, item, full, 0, jitter_keys, k == 1 ? COUNT(jitter_keys) : 0, augment_extra,
                  COUNT(augment_extra), &v);
        for (int j = 0; j < t->n_augment; j++)
            if (!strcmp(t->augment[j].type, types[k]))
                report(L, ty, full, "listed twice");
        snprintf(a->type, sizeof a->type, "%s", types[k]);
        if (k == 1) {
            a->brightness = v.num[0];
            a->contrast = v.num[1];
            a->saturation = v.num[2];
            a->hue = v.num[3];
        }
        set_pos(a->file, &a->line, &a->col, item);
        t->n_augment++;
    }
}

static void check_eval(struct loader *L, const struct node *n, struct rn_spec_train *t)
{
    static const char *const splits[] = {"train", "val", "test"};
    char gbuf[300], sug[300];
    if (n->kind != NODE_SEQ || n->n > RN_MAX_EVAL) {
        report(L, n, "train.eval", "expected a list of splits (train|val|test), got %s",
               n->kind == NODE_SEQ ? "a longer list" : got(n, gbuf, sizeof gbuf));
        return;
    }
    t->n_eval = 0;
    for (int i = 0; i < n->n; i++) {
        const struct node *e = n->items[i];
        int k = 0;
        while (e->kind == NODE_SCALAR && k < 3 && strcmp(e->text, splits[k]) != 0)
            k++;
        if (e->kind != NODE_SCALAR || e->is_null || k == 3) {
            report(L, e, "train.eval", "expected one of train|val|test, got %s%s",
                   got(e, gbuf, sizeof gbuf),
                   e->kind == NODE_SCALAR ? suggest(sug, sizeof sug, e->text, splits, 3) : "");
            continue;
        }
        for (int j = 0; j < t->n_eval; j++)
            if (!strcmp(t->eval[j], splits[k]))
                report(L, e, "train.eval", "'%s' is listed twice", splits[k]);
        snprintf(t->eval[t->n_eval++], sizeof t->eval[0], "%s", splits[k]);
    }
}

static void check_train(struct loader *L, const struct node *n, struct rn_spec *s)
{
    struct rn_values v;
    struct rn_spec_train *t = &s->train;
    int bad = check_map(L, n, "train", 1, train_keys, COUNT(train_keys), train_extra,
                        COUNT(train_extra), &v);
#define K(key) VNUM(v, train_keys, key)
    t->epochs = (int)K("epochs");
    t->batch = (int)K("batch");
    t->eval_batch = (int)K("eval_batch");
    snprintf(t->optimizer, sizeof t->optimizer, "%s", VSTR(v, train_keys, "optimizer"));
    t->lr = K("lr");
    t->beta1 = K("beta1");
    t->beta2 = K("beta2");
    t->eps = K("eps");
    t->weight_decay = K("weight_decay");
    if (!VGIVEN(v, train_keys, "weight_decay") && !strcmp(t->optimizer, "adamw"))
        t->weight_decay = 0.01;
    t->momentum = K("momentum");
    t->clip_norm = K("clip_norm");
    t->shuffle = K("shuffle") != 0;
    t->log_every = (int)K("log_every");
#undef K
    t->n_losses = 1;
    snprintf(t->losses[0].type, sizeof t->losses[0].type, "cross_entropy");
    snprintf(t->losses[0].target, sizeof t->losses[0].target, "digit");
    t->losses[0].weight = 1.0;
    snprintf(t->losses[0].name, sizeof t->losses[0].name, "digit");
    snprintf(t->losses[0].norm, sizeof t->losses[0].norm, "l1");
    snprintf(t->losses[0].reduce, sizeof t->losses[0].reduce, "mean_background");
    t->losses[0].threshold = 0.95;
    if (n)
        set_pos(t->losses[0].file, &t->losses[0].line, &t->losses[0].col, n);
    t->n_eval = 2;
    snprintf(t->eval[0], sizeof t->eval[0], "val");
    snprintf(t->eval[1], sizeof t->eval[1], "test");
    if (bad || !n || n->kind != NODE_MAP)
        return;
    /* Order matters: later sections refer to the names earlier ones declare. */
    const struct node *e;
    if ((e = map_get(n, "schedules", NULL)))
        check_schedules(L, e, t);
    if ((e = map_get(n, "groups", NULL)))
        check_groups(L, e, t);
    if ((e = map_get(n, "losses", NULL)))
        check_losses(L, e, t);
    if ((e = map_get(n, "optimizers", NULL)))
        check_optimizers(L, e, t);
    if ((e = map_get(n, "bind", NULL)))
        check_binds(L, e, t);
    if ((e = map_get(n, "program", NULL)))
        check_program(L, e, t);
    if ((e = map_get(n, "augment", NULL)))
        check_augment(L, e, t);
    if ((e = map_get(n, "eval", NULL)))
        check_eval(L, e, t);
}

static void check_load(struct loader *L, const struct node *n, struct rn_spec *s)
{
    struct rn_values v;
    check_map(L, n, "load", 1, load_keys, COUNT(load_keys), NULL, 0, &v);
    const char *run = VSTR(v, load_keys, "run");
    const char *model = VSTR(v, load_keys, "model");
    if (strlen(model) >= RN_NAME_MAX)
        report(L, map_get(n, "model", NULL), "load.model", "expected at most %d characters",
               RN_NAME_MAX - 1);
    if (VGIVEN(v, load_keys, "run") && !run[0])
        report(L, map_get(n, "run", NULL), "load.run",
               "expected a run file or directory, got nothing");
    snprintf(s->load.run, sizeof s->load.run, "%s", run);
    snprintf(s->load.model, sizeof s->load.model, "%s", model);
    s->load.train_if_missing = strcmp(VSTR(v, load_keys, "if_missing"), "train") == 0;
}

/* List-valued analysis keys. An analysis type declares `cases` or `models`
 * as a string key; in a spec it is a YAML list of flow mappings, each checked
 * against the item schema below (errors at the item's line:col), or the same
 * list as compact text ("1 red; 2 yellow test 17": items separated by ';',
 * fields by spaces in item-schema order, trailing fields defaulted). Either
 * way the string slot gets the canonical text, every field written, which the
 * resolved spec stores and which loads back to the same list. */
static const struct rn_key case_item_keys[] = {
    {"digit", RN_KIND_INT, 1, 0, NULL, 0, 9, NULL, "digit to take from the split"},
    {"colour", RN_KIND_STRING, 1, 0, NULL, 1, 0, NULL,
     "palette colour name or 0-9 to paint the background (or stroke) with"},
    {"split", RN_KIND_STRING, 0, 0, "test", 1, 0, NULL, "split the digit comes from"},
    {"index", RN_KIND_INT, 0, -1, NULL, -1, UNBOUNDED, NULL,
     "index in the split; -1 = the first image of that digit"},
};
static const struct rn_key model_item_keys[] = {
    {"name", RN_KIND_STRING, 1, 0, NULL, 1, 0, NULL, "label in results and figures"},
    {"run", RN_KIND_STRING, 1, 0, NULL, 1, 0, NULL,
     "run directory or run.h5 to load the model from; 'self' = this run's model"},
    {"model", RN_KIND_STRING, 0, 0, "main", 1, 0, NULL, "model name inside the run's /models"},
};
struct list_key {
    const char *key;
    const struct rn_key *items;
    int n_items;
    const char *example;
};
static const struct list_key analysis_lists[] = {
    {"cases", case_item_keys, COUNT(case_item_keys), "{digit: 1, colour: red}"},
    {"models", model_item_keys, COUNT(model_item_keys),
     "{name: lazy, run: results/task1_lazy/latest}"},
};

static const struct list_key *list_key_find(const struct rn_key *k)
{
    for (int i = 0; k->kind == RN_KIND_STRING && i < COUNT(analysis_lists); i++)
        if (!strcmp(analysis_lists[i].key, k->key))
            return &analysis_lists[i];
    return NULL;
}

/* Appends one checked item to the canonical text; -1 if a field cannot be
 * written as one word. */
static int put_list_item(struct loader *L, const struct node *at, const char *label,
                         const struct list_key *lk, const struct rn_values *iv, char *out,
                         size_t *len, int first)
{
    char buf[RN_STR_MAX + 8];
    size_t k = 0;
    for (int j = 0; j < lk->n_items; j++) {
        const struct rn_key *key = &lk->items[j];
        if (key->kind == RN_KIND_STRING) {
            const char *t = iv->str[j];
            if (!*t || strpbrk(t, " \t\n;")) {
                report(L, at, label, "%s: expected one word without spaces or ';', got '%s'",
                       key->key, t);
                return -1;
            }
            if (!strcmp(key->key, "colour")) {
                const char *names[RN_N_COLOURS];
                char *end;
                long c = strtol(t, &end, 10);
                int ok = !*end && c >= 0 && c < RN_N_COLOURS;
                for (int q = 0; q < RN_N_COLOURS; q++) {
                    names[q] = rn_palette_study.names[q];
                    ok |= !strcmp(names[q], t);
                }
                if (!ok) {
                    char sug[300];
                    report(L, at, label, "colour: unknown colour '%s'%s; expected a palette "
                           "name (red, green, blue, ...) or 0-9", t,
                           suggest(sug, sizeof sug, t, names, RN_N_COLOURS));
                    return -1;
                }
            }
            k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%s", j ? " " : "", t);
        } else {
            k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%.0f", j ? " " : "", iv->num[j]);
        }
        if (k >= sizeof buf)
            k = sizeof buf - 1;
    }
    *len += (size_t)snprintf(out + *len, *len < RN_STR_MAX ? RN_STR_MAX - *len : 0, "%s%s",
                             first ? "" : "; ", buf);
    return 0;
}

/* Checks a list-valued key (a list of mappings or its compact text) and
 * writes the canonical text into out (RN_STR_MAX bytes). */
static void check_list_key(struct loader *L, const struct node *n, const char *where,
                           const struct list_key *lk, char *out)
{
    char label[600], gbuf[300];
    size_t len = 0;
    int count = 0;
    out[0] = '\0';
    snprintf(label, sizeof label, "%s: %s", where, lk->key);
    if (n->kind == NODE_MAP) {
        report(L, n, label, "expected a list of mappings such as - %s, got a mapping",
               lk->example);
        return;
    }
    if (n->kind == NODE_SEQ) {
        for (int i = 0; i < n->n; i++) {
            const struct node *item = n->items[i];
            char ilabel[700];
            snprintf(ilabel, sizeof ilabel, "%s #%d", label, i + 1);
            if (item->kind != NODE_MAP) {
                report(L, item, ilabel, "expected a mapping such as %s, got %s", lk->example,
                       got(item, gbuf, sizeof gbuf));
                continue;
            }
            struct rn_values iv;
            int before = L->n_errors;
            check_map(L, item, ilabel, 0, lk->items, lk->n_items, NULL, 0, &iv);
            if (L->n_errors == before &&
                put_list_item(L, item, ilabel, lk, &iv, out, &len, count == 0) == 0)
                count++;
        }
    } else if (!n->is_null) {
        /* Compact text: validated through a mapping built from its fields,
         * placed at the scalar, so errors point at it. */
        const char *p = n->text;
        for (int i = 0; *p; i++) {
            size_t span = strcspn(p, ";");
            char itext[RN_STR_MAX], ilabel[700];
            snprintf(itext, sizeof itext, "%.*s", (int)(span < RN_STR_MAX ? span : RN_STR_MAX - 1), p);
            p += span + (p[span] == ';');
            snprintf(ilabel, sizeof ilabel, "%s #%d", label, i + 1);
            struct node *map = node_new(L, NODE_MAP, n->file, n->origin, n->line, n->col);
            if (!map)
                return;
            int nf = 0, bad = 0;
            for (char *save = NULL, *f = strtok_r(itext, " \t", &save); f;
                 f = strtok_r(NULL, " \t", &save), nf++) {
                if (nf >= lk->n_items) {
                    report(L, n, ilabel, "'%s': more than %d fields", f, lk->n_items);
                    bad = 1;
                    break;
                }
                const char *kname = lk->items[nf].key;
                struct node *kn = scalar_new(L, kname, strlen(kname), 1, n->file, n->origin,
                                             n->line, n->col);
                struct node *vn = kn ? scalar_new(L, f, strlen(f), 1, n->file, n->origin,
                                                  n->line, n->col)
                                     : NULL;
                if (!kn || !vn || node_push(L, map, kn, vn)) {
                    if (kn && !vn)
                        node_free(kn);
                    node_free(map);
                    return;
                }
            }
            if (nf == 0 && !bad) { /* "a; ; b" or a trailing ';' */
                node_free(map);
                continue;
            }
            struct rn_values iv;
            int before = L->n_errors;
            if (!bad)
                check_map(L, map, ilabel, 0, lk->items, lk->n_items, NULL, 0, &iv);
            if (!bad && L->n_errors == before &&
                put_list_item(L, n, ilabel, lk, &iv, out, &len, count == 0) == 0)
                count++;
            node_free(map);
        }
    }
    if (len >= RN_STR_MAX) {
        report(L, n, label, "the list is too long to store (%zu of at most %d characters as "
               "text); split the analysis in two", len, RN_STR_MAX - 1);
        out[0] = '\0';
    }
}

static void check_analyses(struct loader *L, const struct node *n, struct rn_spec *s)
{
    char gbuf[300];
    if (n->kind == NODE_SCALAR && n->is_null)
        return;
    if (n->kind != NODE_SEQ || n->n > RN_MAX_ANALYSES) {
        report(L, n, "analyses", "expected a list of at most %d analyses, got %s",
               RN_MAX_ANALYSES, n->kind == NODE_SEQ ? "a longer list" : got(n, gbuf, sizeof gbuf));
        return;
    }
    const char *names[64];
    int n_names = 0;
    for (int i = 0; i < rn_n_analysis_types && i < 64; i++)
        names[n_names++] = rn_analysis_types[i]->name;
    const struct node *pos[RN_MAX_ANALYSES] = {0}; /* where each name was set */
    for (int i = 0; i < n->n; i++) {
        const struct node *item = n->items[i];
        struct rn_spec_analysis *a = &s->analyses[s->n_analyses++];
        char label[300], full[400];
        set_pos(a->file, &a->line, &a->col, item);
        item_label(label, sizeof label, "analysis", NULL, i);
        if (item->kind != NODE_MAP) {
            report(L, item, label, "expected a mapping such as {type: samples}, got %s",
                   got(item, gbuf, sizeof gbuf));
            continue;
        }
        const struct node *nm = map_get(item, "name", NULL);
        char name_label[320];
        snprintf(name_label, sizeof name_label, "%s: name", label);
        if (nm && get_string(L, nm, name_label, a->name, RN_NAME_MAX) == 0 && a->name[0])
            item_label(label, sizeof label, "analysis", a->name, i);
        const struct node *t = map_get(item, "type", NULL);
        if (!t) {
            report(L, item, label, "missing required key 'type'");
            continue;
        }
        if (t->kind != NODE_SCALAR || t->is_null ||
            !(a->type = rn_analysis_type_find(t->text))) {
            if (t->kind != NODE_SCALAR || t->is_null)
                report(L, t, label, "expected an analysis type, got %s",
                       got(t, gbuf, sizeof gbuf));
            else
                report_unknown_type(L, t, label, names, n_names);
            continue;
        }
        snprintf(full, sizeof full, "%s (%s)", label, a->type->name);
        /* List-valued keys are skipped by check_map and checked as lists. */
        struct extra_key extra[COUNT(analysis_extra) + RN_MAX_KEYS];
        int n_extra = 0;
        for (int j = 0; j < COUNT(analysis_extra); j++)
            extra[n_extra++] = analysis_extra[j];
        for (int j = 0; j < a->type->n_keys && j < RN_MAX_KEYS; j++)
            if (list_key_find(&a->type->keys[j]))
                extra[n_extra++] = (struct extra_key){a->type->keys[j].key, "list", "", ""};
        check_map(L, item, full, 0, a->type->keys, a->type->n_keys, extra, n_extra, &a->v);
        for (int j = 0; j < a->type->n_keys && j < RN_MAX_KEYS; j++) {
            const struct list_key *lk = list_key_find(&a->type->keys[j]);
            const struct node *ln = lk ? map_get(item, lk->key, NULL) : NULL;
            if (!ln)
                continue;
            a->v.given[j] = 1;
            a->v.line[j] = ln->line;
            a->v.col[j] = ln->col;
            check_list_key(L, ln, full, lk, a->v.str[j]);
        }
        int named = a->name[0] != '\0';
        if (!named)
            snprintf(a->name, sizeof a->name, "%s", a->type->name);
        pos[i] = named ? nm : item;
        for (int j = 0; j < i; j++) {
            if (!pos[j] || strcmp(s->analyses[j].name, a->name) != 0)
                continue;
            char first[600];
            where_first(first, sizeof first, pos[j]->file, pos[j]->line, pos[i]);
            if (named)
                report(L, nm, full, "name '%s' is already used by the analysis at %s", a->name,
                       first);
            else
                report(L, item, full,
                       "the analysis at %s is already named '%s'; give this one a 'name'", first,
                       a->name);
            break;
        }
    }
}

static void check_spec(struct loader *L, const struct node *root, struct rn_spec *s)
{
    struct rn_values v;
    check_map(L, root, "", 1, top_keys, COUNT(top_keys), top_extra, COUNT(top_extra), &v);
    snprintf(s->device, sizeof s->device, "%s", VSTR(v, top_keys, "device"));
    s->threads = (int)VNUM(v, top_keys, "threads");
    s->deterministic = VNUM(v, top_keys, "deterministic") != 0;
    if (strlen(VSTR(v, top_keys, "out")) >= sizeof s->out)
        report(L, map_get(root, "out", NULL), "out", "path too long");
    snprintf(s->out, sizeof s->out, "%s", VSTR(v, top_keys, "out"));

    const struct node *n;
    /* Files' extends are merged away by now: this one came from an override,
     * too late to be followed. */
    if ((n = map_get(root, "extends", NULL)))
        report(L, n, "extends", "extends cannot be set by an override; write it in the file");
    if ((n = map_get(root, "name", NULL)) &&
        get_string(L, n, "name", s->name, sizeof s->name) == 0 && !s->name[0])
        report(L, n, "name", "expected a non-empty name");
    if ((n = map_get(root, "description", NULL)))
        get_string(L, n, "description", s->description, sizeof s->description);
    if ((n = map_get(root, "seed", NULL)))
        get_seed(L, n, "seed", &s->seed);

    check_data(L, map_get(root, "data", NULL), s);
    const struct node *model = map_get(root, "model", NULL);
    const struct node *train = map_get(root, "train", NULL);
    const struct node *load = map_get(root, "load", NULL);
    s->has_model = model != NULL;
    s->has_train = train != NULL;
    if (model)
        check_model(L, model, s);
    if (train)
        check_train(L, train, s);
    else
        check_train(L, NULL, s); /* defaults, so an unused train section still reads sanely */
    if (load)
        check_load(L, load, s);
    if ((n = map_get(root, "analyses", NULL)))
        check_analyses(L, n, s);

    if (model && !train && !load)
        report(L, key_node(root, "model"), "", "a model needs a 'train' or a 'load' section");
    if (train && load && !s->load.train_if_missing)
        report(L, key_node(root, "load"), "",
               "'train' and 'load' exclude each other; keep one (`train: ~` drops an inherited "
               "one), or set load.if_missing: train to train only when the run does not exist");
    if (!train && load && s->load.train_if_missing)
        report(L, key_node(root, "load"), "",
               "load.if_missing: train needs a 'train' section");
    if (train && !model)
        report(L, key_node(root, "train"), "", "there is no 'model' to train");
}

/* ---- resolved YAML ------------------------------------------------------------------ */

static int is_plain_word(const char *s)
{
    static const char *const reserved[] = {"true", "false", "yes", "no", "on", "off", "null",
                                           "y", "n", "True", "False", "Yes", "No", "On", "Off",
                                           "Null", "NULL", "TRUE", "FALSE", "YES", "NO", "Y", "N",
                                           "ON", "OFF"};
    if (!isalpha((unsigned char)s[0]) && s[0] != '_')
        return 0;
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("_./-", *p))
            return 0;
    for (int i = 0; i < COUNT(reserved); i++)
        if (!strcmp(s, reserved[i]))
            return 0;
    return 1;
}

static void put_string(FILE *f, const char *s)
{
    if (is_plain_word(s)) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", f);
        else if (*p == '\t')
            fputs("\\t", f);
        else if (*p < 0x20 || *p == 0x7f)
            fprintf(f, "\\x%02x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

/* The shortest text that reads back as the same double. */
static void put_double(FILE *f, double x)
{
    char buf[64];
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, x);
        if (strtod(buf, NULL) == x)
            break;
    }
    fputs(buf, f);
}

static void put_float(FILE *f, float x)
{
    char buf[64];
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, (double)x);
        if ((float)strtod(buf, NULL) == x)
            break;
    }
    fputs(buf, f);
}

/* ", key: value" for every key of a schema, in flow style. */
static void put_values(FILE *f, const struct rn_key *keys, int n, const struct rn_values *v)
{
    for (int i = 0; i < n; i++) {
        fprintf(f, ", %s: ", keys[i].key);
        switch (keys[i].kind) {
        case RN_KIND_INT:
            fprintf(f, "%.0f", v->num[i]);
            break;
        case RN_KIND_FLOAT:
            put_double(f, v->num[i]);
            break;
        case RN_KIND_BOOL:
            fputs(v->num[i] != 0 ? "true" : "false", f);
            break;
        case RN_KIND_STRING:
        case RN_KIND_CHOICE:
            put_string(f, v->str[i]);
            break;
        case RN_KIND_INTS:
            fputc('[', f);
            for (int j = 0; j < v->n_ints[i]; j++)
                fprintf(f, "%s%d", j ? ", " : "", v->ints[i][j]);
            fputc(']', f);
            break;
        }
    }
}

/* A number, or the name of the schedule that replaces it. */
static void put_number_or_name(FILE *f, double x, const char *name)
{
    if (name[0])
        put_string(f, name);
    else
        put_double(f, x);
}

static void put_names(FILE *f, const char (*names)[RN_NAME_MAX], int n)
{
    fputc('[', f);
    for (int i = 0; i < n; i++) {
        fputs(i ? ", " : "", f);
        put_string(f, names[i]);
    }
    fputc(']', f);
}

/* The train sections of "training as data"; absent ones are not written
 * (their defaults are the absence of the section). */
static void write_resolved_program(FILE *f, const struct rn_spec_train *t)
{
    if (t->n_groups)
        fputs("  groups:\n", f);
    for (int i = 0; i < t->n_groups; i++) {
        fputs("    ", f);
        put_string(f, t->groups[i].name);
        fputs(": ", f);
        put_names(f, t->groups[i].nodes, t->groups[i].n_nodes);
        fputc('\n', f);
    }
    if (t->n_schedules)
        fputs("  schedules:\n", f);
    for (int i = 0; i < t->n_schedules; i++) {
        const struct rn_spec_schedule *sc = &t->schedules[i];
        fputs("    - {name: ", f);
        put_string(f, sc->name);
        fprintf(f, ", type: %s", sc->type);
        const char *keys[4];
        double vals[4];
        int k = 0;
        if (!strcmp(sc->type, "constant")) {
            keys[k] = "value", vals[k++] = sc->value;
        } else if (!strcmp(sc->type, "linear")) {
            keys[k] = "start", vals[k++] = sc->start;
            keys[k] = "end", vals[k++] = sc->end;
            keys[k] = "from", vals[k++] = sc->from;
            keys[k] = "until", vals[k++] = sc->until;
        } else if (!strcmp(sc->type, "dann_sigmoid")) {
            keys[k] = "scale", vals[k++] = sc->scale;
            keys[k] = "gamma", vals[k++] = sc->gamma;
        } else {
            keys[k] = "at", vals[k++] = sc->at;
            keys[k] = "before", vals[k++] = sc->before;
            keys[k] = "after", vals[k++] = sc->after;
        }
        for (int j = 0; j < k; j++) {
            fprintf(f, ", %s: ", keys[j]);
            put_double(f, vals[j]);
        }
        fputs("}\n", f);
    }
    if (t->n_optimizers)
        fputs("  optimizers:\n", f);
    for (int i = 0; i < t->n_optimizers; i++) {
        const struct rn_spec_optimizer *o = &t->optimizers[i];
        fputs("    - {name: ", f);
        put_string(f, o->name);
        fprintf(f, ", type: %s, lr: ", o->type);
        put_number_or_name(f, o->lr, o->lr_schedule);
        const double nums[] = {o->beta1, o->beta2, o->eps, o->weight_decay, o->momentum,
                               o->clip_norm};
        const char *const names[] = {"beta1", "beta2", "eps", "weight_decay", "momentum",
                                     "clip_norm"};
        for (int j = 0; j < 6; j++) {
            fprintf(f, ", %s: ", names[j]);
            put_double(f, nums[j]);
        }
        if (o->n_groups) {
            fputs(", groups: ", f);
            put_names(f, o->groups, o->n_groups);
        }
        fputs("}\n", f);
    }
    if (t->n_binds)
        fputs("  bind:\n", f);
    for (int i = 0; i < t->n_binds; i++) {
        fputs("    - {node: ", f);
        put_string(f, t->binds[i].node);
        fputs(", key: ", f);
        put_string(f, t->binds[i].key);
        fputs(", schedule: ", f);
        put_string(f, t->binds[i].schedule);
        fputs("}\n", f);
    }
    if (t->n_program)
        fputs("  program:\n", f);
    for (int i = 0; i < t->n_program; i++) {
        const struct rn_spec_step *st = &t->program[i];
        fprintf(f, "    - {repeat: %d", st->repeat);
        if (st->n_optimizers) {
            fputs(", optimizer: ", f);
            put_names(f, st->optimizers, st->n_optimizers);
        }
        if (st->n_losses) {
            fputs(", losses: ", f);
            put_names(f, st->losses, st->n_losses);
        }
        if (st->n_sets) {
            fputs(", set: {", f);
            for (int j = 0; j < st->n_sets; j++) {
                char key[RN_NAME_MAX + 40];
                snprintf(key, sizeof key, "%s.%s", st->sets[j].node, st->sets[j].key);
                fputs(j ? ", " : "", f);
                put_string(f, key);
                fputs(": ", f);
                put_double(f, st->sets[j].value);
            }
            fputc('}', f);
        }
        fputs("}\n", f);
    }
    if (t->n_augment)
        fputs("  augment:\n", f);
    for (int i = 0; i < t->n_augment; i++) {
        const struct rn_spec_augment *a = &t->augment[i];
        fprintf(f, "    - {type: %s", a->type);
        if (!strcmp(a->type, "color_jitter")) {
            const double nums[] = {a->brightness, a->contrast, a->saturation, a->hue};
            for (int j = 0; j < 4; j++) {
                fprintf(f, ", %s: ", jitter_keys[j].key);
                put_double(f, nums[j]);
            }
        }
        fputs("}\n", f);
    }
}

static void write_resolved(FILE *f, const struct rn_spec *s)
{
    static const char *const colourings[] = {"none", "background", "stroke"};
    static const char *const rules[] = {"conflicting", "random", "aligned"};
    const struct rn_data_config *d = &s->data;
    fputs("# resolved spec: extends, include and overrides applied, every default written\n",
          f);
    fputs("name: ", f);
    put_string(f, s->name);
    fputs("\ndescription: ", f);
    put_string(f, s->description);
    fprintf(f, "\nseed: %llu\ndevice: %s\nthreads: %d\ndeterministic: %s\nout: ",
            (unsigned long long)s->seed, s->device, s->threads,
            s->deterministic ? "true" : "false");
    put_string(f, s->out);
    fprintf(f, "\ndata:\n  source: %s\n  dir: ", d->source);
    put_string(f, d->dir);
    fprintf(f, "\n  colouring: %s\n  texture: [", colourings[d->colouring]);
    put_float(f, d->noise_lo);
    fputs(", ", f);
    put_float(f, d->noise_hi);
    fprintf(f, "]\n  threshold: %d\n  palette: study\n  bias: ", d->threshold);
    put_double(f, d->bias);
    fprintf(f, "\n  test_rule: %s\n  val_fraction: ", rules[d->test_rule]);
    put_double(f, d->val_fraction);
    fprintf(f, "\n  train_limit: %d\n  test_limit: %d\n  seed: %llu\n", d->train_limit,
            d->test_limit, (unsigned long long)d->seed);
    if (s->has_model) {
        fputs("model:\n  name: ", f);
        put_string(f, s->model.name);
        fputs("\n  layers:\n", f);
        for (int i = 0; i < s->model.n_layers; i++) {
            const struct rn_spec_layer *l = &s->model.layers[i];
            fprintf(f, "    - {type: %s, name: ", l->type->name);
            put_string(f, l->name);
            if (l->n_from) {
                fputs(", from: [", f);
                for (int j = 0; j < l->n_from; j++) {
                    fputs(j ? ", " : "", f);
                    put_string(f, l->from[j]);
                }
                fputc(']', f);
            }
            put_values(f, l->type->keys, l->type->n_keys, &l->v);
            fputs("}\n", f);
        }
    }
    if (s->has_train) {
        const struct rn_spec_train *t = &s->train;
        fprintf(f, "train:\n  epochs: %d\n  batch: %d\n  eval_batch: %d\n  optimizer: %s\n  lr: ",
                t->epochs, t->batch, t->eval_batch, t->optimizer);
        const double nums[] = {t->lr,           t->beta1,    t->beta2,    t->eps,
                               t->weight_decay, t->momentum, t->clip_norm};
        const char *const names[] = {"lr",           "beta1",    "beta2",    "eps",
                                     "weight_decay", "momentum", "clip_norm"};
        for (int i = 0; i < 7; i++) {
            if (i)
                fprintf(f, "  %s: ", names[i]);
            put_double(f, nums[i]);
            fputc('\n', f);
        }
        fprintf(f, "  shuffle: %s\n  log_every: %d\n  losses:\n", t->shuffle ? "true" : "false",
                t->log_every);
        for (int i = 0; i < t->n_losses; i++) {
            const struct rn_spec_loss *l = &t->losses[i];
            fprintf(f, "    - {type: %s, name: ", l->type);
            put_string(f, l->name);
            fputs(", on: ", f);
            put_string(f, l->on);
            fprintf(f, ", target: %s, weight: ", l->target);
            put_number_or_name(f, l->weight, l->weight_schedule);
            if (!strcmp(l->type, "saliency")) {
                fprintf(f, ", norm: %s, reduce: %s, threshold: ", l->norm, l->reduce);
                put_double(f, l->threshold);
            }
            fputs("}\n", f);
        }
        write_resolved_program(f, t);
        fputs("  eval: [", f);
        for (int i = 0; i < t->n_eval; i++)
            fprintf(f, "%s%s", i ? ", " : "", t->eval[i]);
        fputs("]\n", f);
    }
    if (s->load.run[0]) {
        fputs("load:\n  run: ", f);
        put_string(f, s->load.run);
        fputs("\n  model: ", f);
        put_string(f, s->load.model);
        fputs(s->load.train_if_missing ? "\n  if_missing: train\n" : "\n  if_missing: error\n", f);
    }
    fputs(s->n_analyses ? "analyses:\n" : "analyses: []\n", f);
    for (int i = 0; i < s->n_analyses; i++) {
        const struct rn_spec_analysis *a = &s->analyses[i];
        fprintf(f, "  - {type: %s, name: ", a->type->name);
        put_string(f, a->name);
        put_values(f, a->type->keys, a->type->n_keys, &a->v);
        fputs("}\n", f);
    }
}

/* ---- entry points -------------------------------------------------------------------- */

int rn_spec_load(struct rn_spec *spec, const char *path, const char *const *overrides,
                 FILE *errors, int *n_errors, struct rn_error *err)
{
    struct loader L = {.errors = errors, .err = err, .overrides = overrides};
    memset(spec, 0, sizeof *spec);
    if (n_errors)
        *n_errors = 0;
    if (strlen(path) >= sizeof spec->file) {
        report_pos(&L, path, 0, 0, "path longer than %d characters", RN_PATH_MAX - 1);
        goto done;
    }
    snprintf(spec->file, sizeof spec->file, "%s", path);

    struct node *root = load_tree(&L, path, NULL, path);
    if (root && !L.n_errors) {
        for (int i = 0; overrides && overrides[i]; i++)
            apply_override(&L, root, overrides[i], 1);
        if (!L.n_errors)
            resolve_include(&L, root);
        /* An include that failed leaves nothing sensible to check. */
        if (!L.n_errors) {
            for (int i = 0; overrides && overrides[i]; i++)
                apply_override(&L, root, overrides[i], 0);
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
            check_spec(&L, root, spec);
        }
    }
    node_free(root);

    if (!L.n_errors) {
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
            report_oom(&L);
        spec->resolved = buf;
    }
done:
    flush_diags(&L);
    for (int i = 0; i < L.n_files; i++)
        free(L.files[i]);
    free(L.files);
    while (L.depth > 0)
        pop_frame(&L);
    if (n_errors)
        *n_errors = L.n_errors;
    return L.n_errors ? -1 : 0;
}

void rn_spec_free(struct rn_spec *spec)
{
    if (!spec)
        return;
    free(spec->resolved);
    spec->resolved = NULL;
}

/* ---- reference ------------------------------------------------------------------------- */

static const char *kind_name(enum rn_kind k)
{
    switch (k) {
    case RN_KIND_INT:
        return "integer";
    case RN_KIND_FLOAT:
        return "number";
    case RN_KIND_BOOL:
        return "bool";
    case RN_KIND_STRING:
        return "string";
    case RN_KIND_CHOICE:
        return "choice";
    case RN_KIND_INTS:
        return "list of integers";
    }
    return "?";
}

/* Markdown table cells must not contain a bare '|'. */
static void put_cell(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        if (*s == '|')
            fputs("\\|", f);
        else
            fputc(*s, f);
    }
}

static void put_key_rows(FILE *f, const struct rn_key *keys, int n, const struct extra_key *extra,
                         int n_extra)
{
    fputs("| key | type | default | range / choices | description |\n"
          "|---|---|---|---|---|\n",
          f);
    for (int i = 0; i < n_extra; i++) {
        fprintf(f, "| `%s` | ", extra[i].key);
        put_cell(f, extra[i].type);
        fputs(" | ", f);
        put_cell(f, extra[i].def);
        fputs(" | | ", f);
        put_cell(f, extra[i].doc);
        fputs(" |\n", f);
    }
    for (int i = 0; i < n; i++) {
        const struct rn_key *k = &keys[i];
        char def[300], range[300] = "";
        if (k->required)
            snprintf(def, sizeof def, "required");
        else if (k->kind == RN_KIND_BOOL)
            snprintf(def, sizeof def, "%s", k->def != 0 ? "true" : "false");
        else if (k->kind == RN_KIND_INT || k->kind == RN_KIND_FLOAT)
            snprintf(def, sizeof def, "%.15g", k->def);
        else if (k->kind == RN_KIND_INTS)
            snprintf(def, sizeof def, "%s", k->def_str ? k->def_str : "[]");
        else
            snprintf(def, sizeof def, "`%s`", k->def_str && *k->def_str ? k->def_str : "\"\"");
        if (k->kind == RN_KIND_CHOICE) {
            char buf[300];
            const char *words[32];
            int nw = split_choices(k->choices, buf, sizeof buf, words, 32);
            size_t len = 0;
            for (int j = 0; j < nw && len < sizeof range; j++)
                len += (size_t)snprintf(range + len, sizeof range - len, "%s%s", j ? ", " : "",
                                        words[j]);
        } else if (k->kind != RN_KIND_BOOL && k->kind != RN_KIND_STRING && k->min <= k->max) {
            if (k->max >= UNBOUNDED)
                snprintf(range, sizeof range, ">= %.15g", k->min);
            else
                snprintf(range, sizeof range, "[%.15g, %.15g]", k->min, k->max);
        }
        fprintf(f, "| `%s` | %s | ", k->key, kind_name(k->kind));
        put_cell(f, def);
        fputs(" | ", f);
        put_cell(f, range);
        fputs(" | ", f);
        put_cell(f, k->doc);
        fputs(" |\n", f);
    }
    fputc('\n', f);
}

void rn_spec_write_reference(FILE *f)
{
    fputs("# Experiment spec reference\n\n"
          "Generated from the key schemas by `rn_spec_write_reference` (runner/spec.c); do not\n"
          "edit by hand. `runner --help-spec` prints the same text.\n\n"
          "An experiment is one YAML file. Every key is checked: an unknown key, a value of the\n"
          "wrong kind or out of range, a missing required key is an error reported as\n"
          "`file:line:col: error: ...`, and all errors of a file are reported at once.\n\n"
          "- Paths in `extends` and `model.include` are relative to the file that writes them;\n"
          "  `data.dir`, `out` and `load.run` are relative to the working directory.\n"
          "- `extends: base.yaml` deep-merges this file over base.yaml: mappings merge, lists\n"
          "  and scalars are replaced, `key: ~` deletes an inherited key. `name` is never\n"
          "  inherited.\n"
          "- Overrides on the command line, `key.path=value`, are applied after extends and\n"
          "  include: `train.epochs=2`, `data.texture=[1,1]`, `model.layers.3.filters=8` (list\n"
          "  indices are 0-based). A value starting with `[`, `{` or a quote is read as YAML,\n"
          "  anything else as the text written. An override may set a key the file does not\n"
          "  write.\n"
          "- A `model` needs a `train` or a `load` section (not both); without `model` the\n"
          "  experiment is data-only.\n"
          "- The resolved spec (every default written out) is stored with each run and loads\n"
          "  back to the same experiment.\n\n",
          f);
    fputs("## Top level\n\n", f);
    put_key_rows(f, top_keys, COUNT(top_keys), top_extra, COUNT(top_extra));
    fputs("## data\n\n", f);
    put_key_rows(f, data_keys, COUNT(data_keys), data_extra, COUNT(data_extra));
    fputs("## model\n\n", f);
    put_key_rows(f, model_keys, COUNT(model_keys), model_extra, COUNT(model_extra));
    fputs("## train\n\n", f);
    put_key_rows(f, train_keys, COUNT(train_keys), train_extra, COUNT(train_extra));
    fputs("### Loss terms (`train.losses` items)\n\n"
          "The total loss of a step is the sum of weight x term over the step's terms. "
          "`cross_entropy` is the mean CE of the logits at `on` against the target; "
          "`neg_cross_entropy` is minus that (a penalty that rewards fooling a head); "
          "`saliency` is the input-gradient penalty of runner/saliency.h (per-sample CE, "
          "exact parameter gradient by tangent mode; refused when a batchnorm in training "
          "mode lies on the path to `on`).\n\n",
          f);
    put_key_rows(f, loss_keys, COUNT(loss_keys), loss_extra, COUNT(loss_extra));
    fputs("### Optimizers (`train.optimizers` items)\n\n"
          "Each optimizer updates the parameters of its groups (`train.groups`); a parameter "
          "belongs to at most one optimizer, and parameters in no optimizer stay fixed.\n\n",
          f);
    put_key_rows(f, optimizer_keys, COUNT(optimizer_keys), optimizer_extra,
                 COUNT(optimizer_extra));
    fputs("### Schedules (`train.schedules` items)\n\n"
          "A schedule is a number that changes with training progress p = step / total steps "
          "(0 at the first step, 1 after the last); it can drive a loss weight, an "
          "optimizer's lr and, through `train.bind`, any number key of a layer.\n\n",
          f);
    put_key_rows(f, NULL, 0, schedule_extra, COUNT(schedule_extra));
    for (int i = 0; i < COUNT(schedule_types); i++) {
        fprintf(f, "#### %s\n\n%s.\n\n", schedule_types[i].name, schedule_types[i].doc);
        put_key_rows(f, schedule_types[i].keys, schedule_types[i].n_keys, NULL, 0);
    }
    fputs("### Bindings (`train.bind` items)\n\n", f);
    put_key_rows(f, bind_keys, COUNT(bind_keys), NULL, 0);
    fputs("### Program steps (`train.program` items)\n\n"
          "Each batch runs the steps in order, each `repeat` times: a forward of the nodes "
          "whose inputs or parameters changed since the batch's first forward (backbone "
          "features stay computed while only a head learns), the backward of the step's "
          "losses through the nodes that lead to the step's optimizers' parameters, and an "
          "update by those optimizers.\n\n",
          f);
    put_key_rows(f, step_keys, COUNT(step_keys), step_extra, COUNT(step_extra));
    fputs("### Augmentations (`train.augment` items)\n\n", f);
    put_key_rows(f, jitter_keys, COUNT(jitter_keys), augment_extra, COUNT(augment_extra));
    fputs("## load\n\n", f);
    put_key_rows(f, load_keys, COUNT(load_keys), NULL, 0);

    fputs("## Layer types\n\nEvery layer (an item of `model.layers`) takes these keys, plus "
          "those of its type:\n\n",
          f);
    put_key_rows(f, NULL, 0, layer_extra, COUNT(layer_extra));
    for (int i = 0; i < rn_n_layer_types; i++) {
        const struct rn_layer_type *t = rn_layer_types[i];
        fprintf(f, "### %s\n\n%s. Inputs: %d.\n\n", t->name, t->doc ? t->doc : "", t->n_inputs);
        if (t->n_keys)
            put_key_rows(f, t->keys, t->n_keys, NULL, 0);
        else
            fputs("No keys of its own.\n\n", f);
    }
    fputs("## Analysis types\n\nEvery analysis (an item of `analyses`) takes these keys, plus "
          "those of its type:\n\n",
          f);
    put_key_rows(f, NULL, 0, analysis_extra, COUNT(analysis_extra));
    for (int i = 0; i < rn_n_analysis_types; i++) {
        const struct rn_analysis_type *t = rn_analysis_types[i];
        fprintf(f, "### %s\n\n%s.\n\n", t->name, t->doc ? t->doc : "");
        if (t->n_keys)
            put_key_rows(f, t->keys, t->n_keys, NULL, 0);
        else
            fputs("No keys of its own.\n\n", f);
    }
    fputs("### List-valued analysis keys\n\n"
          "`cases` and `models` take a list of flow mappings, one item a line (`- {digit: 1, "
          "colour: red}`),\nor the same list as compact text: items separated by `;`, fields "
          "by spaces in the order\nbelow, trailing fields defaulted (`cases: \"1 red; 2 yellow "
          "test 17\"`). The resolved spec stores the\ncompact text with every field written.\n\n",
          f);
    for (int i = 0; i < COUNT(analysis_lists); i++) {
        fprintf(f, "Items of `%s`:\n\n", analysis_lists[i].key);
        put_key_rows(f, analysis_lists[i].items, analysis_lists[i].n_items, NULL, 0);
    }
}
