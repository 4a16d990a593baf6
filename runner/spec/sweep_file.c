/* spec/sweep_file.c - a sweep file (sweep.h) read with the spec's tree and
 * diagnostics: every key checked, every error one line at its position. */
#include "internal.h"

#include "sweep.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const top_keys[] = {"name",        "description", "out",  "experiment",
                                       "experiments", "set",         "grid", "list"};

/* ---- values as override text ---------------------------------------------------- */

/* A scalar that reads back the same unquoted inside a flow collection. */
static int plain_safe(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("._+-/", *s))
            return 0;
    return 1;
}

static void put_quoted(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', f);
        if (*s == '\n')
            fputs("\\n", f);
        else if (*s == '\t')
            fputs("\\t", f);
        else
            fputc(*s, f);
    }
    fputc('"', f);
}

/* n as flow YAML (inside a collection). */
static void put_flow(FILE *f, const struct node *n)
{
    if (n->kind == NODE_SCALAR) {
        if (n->is_null)
            fputc('~', f);
        else if (plain_safe(n->text))
            fputs(n->text, f);
        else
            put_quoted(f, n->text);
        return;
    }
    fputc(n->kind == NODE_SEQ ? '[' : '{', f);
    for (int i = 0; i < n->n; i++) {
        fputs(i ? ", " : "", f);
        if (n->kind == NODE_MAP) {
            put_flow(f, n->keys[i]);
            fputs(": ", f);
        }
        put_flow(f, n->items[i]);
    }
    fputc(n->kind == NODE_SEQ ? ']' : '}', f);
}

/* "key=value" as the command line would write it: a scalar as its text
 * (quoted only when the override parser would read it as YAML), a
 * collection as flow YAML. Malloc'd; NULL on running out of memory. */
static char *override_text(const char *key, const struct node *v)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    if (!f)
        return NULL;
    fprintf(f, "%s=", key);
    if (v->kind != NODE_SCALAR)
        put_flow(f, v);
    else if (v->is_null)
        fputc('~', f);
    else if (!v->text[0] || strchr("[{\"'", v->text[0]) || strchr(v->text, '\n') ||
             strchr(v->text, '\t'))
        put_quoted(f, v->text);
    else
        fputs(v->text, f);
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* ---- checks ------------------------------------------------------------------------- */

/* "train.losses.1.weight": words of letters, digits and _ joined by dots. */
static int is_key_path(const char *s)
{
    int word = 0;
    for (; *s; s++) {
        if (*s == '.') {
            if (!word)
                return 0;
            word = 0;
        } else if (isalnum((unsigned char)*s) || *s == '_') {
            word = 1;
        } else {
            return 0;
        }
    }
    return word;
}

static int add_override(struct loader *L, struct rn_sweep_set *set, const char *file,
                        const struct node *key, const struct node *value, const char *label)
{
    if (key->kind != NODE_SCALAR || !is_key_path(key->text)) {
        char g[300];
        report(L, key, label,
               "%s is not a key path (expected one like train.epochs or "
               "train.losses.1.weight)",
               got(key, g, sizeof g));
        return -1;
    }
    struct rn_sweep_override *o = realloc(set->o, sizeof *o * (size_t)(set->n + 1));
    if (!o) {
        report_oom(L);
        return -1;
    }
    set->o = o;
    char *text = override_text(key->text, value);
    if (!text) {
        report_oom(L);
        return -1;
    }
    o[set->n++] = (struct rn_sweep_override){text, file, value->line, value->col};
    return 0;
}

/* A mapping of key paths to values (`set`, a list item). */
static void get_set(struct loader *L, const struct node *n, const char *file, const char *label,
                    struct rn_sweep_set *set)
{
    if (n->kind != NODE_MAP || n->n == 0) {
        char g[300];
        report(L, n, label,
               "expected a mapping of key paths to values ({train.epochs: 5}), "
               "got %s",
               n->kind == NODE_MAP ? "an empty mapping" : got(n, g, sizeof g));
        return;
    }
    for (int i = 0; i < n->n; i++)
        add_override(L, set, file, n->keys[i], n->items[i], label);
}

/* "a/b/../c" -> "a/c", "./x" -> "x" (the text only; links are not followed). */
static void normalise_path(char *p)
{
    char out[RN_PATH_MAX] = "";
    const char *seg[RN_PATH_MAX / 2];
    int len[RN_PATH_MAX / 2], n = 0, up = 0;
    int abs = p[0] == '/';
    for (const char *s = p; *s;) {
        while (*s == '/')
            s++;
        if (!*s)
            break;
        const char *e = strchr(s, '/');
        int l = e ? (int)(e - s) : (int)strlen(s);
        if (l == 1 && s[0] == '.') {
        } else if (l == 2 && s[0] == '.' && s[1] == '.' && n > up) {
            n--;
        } else {
            if (l == 2 && s[0] == '.' && s[1] == '.')
                up++;
            seg[n] = s;
            len[n++] = l;
        }
        s += l;
    }
    size_t o = 0;
    if (abs)
        out[o++] = '/';
    for (int i = 0; i < n && o + (size_t)len[i] + 2 < sizeof out; i++) {
        if (i)
            out[o++] = '/';
        memcpy(out + o, seg[i], (size_t)len[i]);
        o += (size_t)len[i];
    }
    out[o] = '\0';
    snprintf(p, RN_PATH_MAX, "%s", o ? out : ".");
}

static void add_experiment(struct loader *L, struct rn_sweep_file *sw, const struct node *n,
                           int index)
{
    char label[64];
    snprintf(label, sizeof label, "experiments #%d", index + 1);
    const struct node *file = n, *set = NULL;
    if (n->kind == NODE_MAP) {
        static const char *const keys[] = {"file", "set"};
        for (int i = 0; i < n->n; i++) {
            const char *k = n->keys[i]->text;
            if (find_name(k, keys, COUNT(keys)) < 0) {
                char s[128];
                report(L, n->keys[i], label, "unknown key '%s'%s; expected file, set", k,
                       suggest(s, sizeof s, k, keys, COUNT(keys)));
            }
        }
        file = map_get(n, "file", NULL);
        set = map_get(n, "set", NULL);
        if (!file) {
            report(L, n, label, "missing key 'file' (the experiment's YAML file)");
            return;
        }
    }
    if (file->kind != NODE_SCALAR || file->is_null || !file->text[0]) {
        char g[300];
        report(L, file, label, "expected an experiment file (../task1_lazy.yaml), got %s",
               got(file, g, sizeof g));
        return;
    }
    struct rn_sweep_experiment *e = realloc(sw->exps, sizeof *e * (size_t)(sw->n_exps + 1));
    if (!e) {
        report_oom(L);
        return;
    }
    sw->exps = e;
    e = &sw->exps[sw->n_exps++];
    memset(e, 0, sizeof *e);
    e->line = file->line;
    e->col = file->col;
    const char *slash = strrchr(sw->file, '/');
    if (file->text[0] == '/' || !slash)
        snprintf(e->path, sizeof e->path, "%s", file->text);
    else
        snprintf(e->path, sizeof e->path, "%.*s/%s", (int)(slash - sw->file), sw->file, file->text);
    normalise_path(e->path);
    if (access(e->path, R_OK) != 0)
        report(L, file, label,
               "cannot read '%s' (resolved to %s; paths are relative to the "
               "sweep file's folder)",
               file->text, e->path);
    if (set)
        get_set(L, set, sw->file, label, &e->set);
}

static void get_experiments(struct loader *L, struct rn_sweep_file *sw, const struct node *root)
{
    const struct node *one = map_get(root, "experiment", NULL);
    const struct node *many = map_get(root, "experiments", NULL);
    if (one && many) {
        report(L, key_node(root, "experiments"), "",
               "write either experiment: or experiments:, not both");
        return;
    }
    if (!one && !many) {
        report_pos(L, sw->file, 1, 1,
                   "missing key 'experiments' (the experiment files to "
                   "sweep, relative to this file: experiments: [../task1_lazy.yaml])");
        return;
    }
    if (one) {
        add_experiment(L, sw, one, 0);
        return;
    }
    if (many->kind != NODE_SEQ || many->n == 0) {
        char g[300];
        report(L, many, "experiments", "expected a list of experiment files, got %s",
               many->kind == NODE_SEQ ? "an empty list" : got(many, g, sizeof g));
        return;
    }
    for (int i = 0; i < many->n; i++)
        add_experiment(L, sw, many->items[i], i);
}

static void get_grid(struct loader *L, struct rn_sweep_file *sw, const struct node *n)
{
    if (n->kind != NODE_MAP || n->n == 0) {
        char g[300];
        report(L, n, "grid",
               "expected a mapping of key paths to lists of values "
               "({seed: [0, 1, 2]}), got %s",
               n->kind == NODE_MAP ? "an empty mapping" : got(n, g, sizeof g));
        return;
    }
    if (!(sw->grid = calloc((size_t)n->n, sizeof *sw->grid))) {
        report_oom(L);
        return;
    }
    for (int i = 0; i < n->n; i++) {
        const struct node *k = n->keys[i], *v = n->items[i];
        char label[RN_SWEEP_KEY_MAX + 8];
        snprintf(label, sizeof label, "grid.%s", k->text);
        if (!is_key_path(k->text)) {
            char g[300];
            report(L, k, "grid",
                   "%s is not a key path (expected one like train.epochs or "
                   "train.losses.1.weight)",
                   got(k, g, sizeof g));
            continue;
        }
        if (v->kind != NODE_SEQ || v->n == 0) {
            char g[300];
            report(L, v, label,
                   "expected a list of values, got %s (one value goes under "
                   "set:, or write [%s])",
                   v->kind == NODE_SEQ ? "an empty list" : got(v, g, sizeof g),
                   v->kind == NODE_SCALAR ? v->text : "...");
            continue;
        }
        struct rn_sweep_axis *a = &sw->grid[sw->n_grid++];
        snprintf(a->key, sizeof a->key, "%s", k->text);
        for (int j = 0; j < v->n; j++)
            add_override(L, &a->values, sw->file, k, v->items[j], label);
    }
}

static void get_list(struct loader *L, struct rn_sweep_file *sw, const struct node *n)
{
    if (n->kind != NODE_SEQ || n->n == 0) {
        char g[300];
        report(L, n, "list",
               "expected a list of mappings of key paths to values "
               "([{train.epochs: 5}, {train.epochs: 10}]), got %s",
               n->kind == NODE_SEQ ? "an empty list" : got(n, g, sizeof g));
        return;
    }
    if (!(sw->list = calloc((size_t)n->n, sizeof *sw->list))) {
        report_oom(L);
        return;
    }
    for (int i = 0; i < n->n; i++) {
        char label[32];
        snprintf(label, sizeof label, "list #%d", i + 1);
        get_set(L, n->items[i], sw->file, label, &sw->list[sw->n_list++]);
    }
}

/* The key path of override text "key=value" into key. */
static void override_key(const char *text, char *key, size_t size)
{
    size_t n = strcspn(text, "=");
    snprintf(key, size, "%.*s", (int)(n < size ? n : size - 1), text);
}

/* A key both in grid and in set (or a list item) would be overwritten by the
 * grid in every cell: almost certainly a mistake, so an error. */
static void check_overlap(struct loader *L, const struct rn_sweep_file *sw)
{
    for (int a = 0; a < sw->n_grid; a++) {
        const struct rn_sweep_set *sets[1 + 64];
        int ns = 0;
        sets[ns++] = &sw->set;
        for (int i = 0; i < sw->n_list && ns < COUNT(sets); i++)
            sets[ns++] = &sw->list[i];
        for (int s = 0; s < ns; s++)
            for (int i = 0; i < sets[s]->n; i++) {
                char key[RN_SWEEP_KEY_MAX];
                override_key(sets[s]->o[i].text, key, sizeof key);
                if (strcmp(key, sw->grid[a].key))
                    continue;
                const struct rn_sweep_override *o = &sets[s]->o[i];
                report_pos(L, o->file, o->line, o->col,
                           "%s: '%s' is also a grid key (line "
                           "%d), which would replace this value in every cell",
                           s ? "list" : "set", key, sw->grid[a].values.o[0].line);
            }
    }
}

static int is_name(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("_.-", *s))
            return 0;
    return 1;
}

int rn_sweep_file_load(struct rn_sweep_file *sw, const char *path, FILE *errors, int *n_errors,
                       struct rn_error *err)
{
    memset(sw, 0, sizeof *sw);
    struct loader L = {.errors = errors, .err = err};
    snprintf(sw->file, sizeof sw->file, "%s", path);
    struct node *root = parse_file(&L, path, NULL, path);
    if (root && !L.n_errors) {
        for (int i = 0; i < root->n; i++) {
            const char *k = root->keys[i]->text;
            if (find_name(k, top_keys, COUNT(top_keys)) < 0) {
                char s[128];
                report(&L, root->keys[i], "",
                       "unknown key '%s'%s; a sweep file has name, "
                       "description, out, experiment(s), set, grid, list",
                       k, suggest(s, sizeof s, k, top_keys, COUNT(top_keys)));
            }
        }
        const struct node *n;
        /* the default name: the file's, without .yaml */
        const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
        size_t len = strcspn(base, ".");
        snprintf(sw->name, sizeof sw->name, "%.*s", (int)len, base);
        if ((n = map_get(root, "name", NULL)) &&
            !get_string(&L, n, "name", sw->name, sizeof sw->name) && !is_name(sw->name))
            report(&L, n, "name", "'%s' is not a folder name (letters, digits, _ . -)", sw->name);
        snprintf(sw->out, sizeof sw->out, "results/sweeps");
        if ((n = map_get(root, "out", NULL)))
            get_string(&L, n, "out", sw->out, sizeof sw->out);
        char description[1024];
        if ((n = map_get(root, "description", NULL)))
            get_string(&L, n, "description", description, sizeof description);
        get_experiments(&L, sw, root);
        if ((n = map_get(root, "set", NULL)))
            get_set(&L, n, sw->file, "set", &sw->set);
        if ((n = map_get(root, "grid", NULL)))
            get_grid(&L, sw, n);
        if ((n = map_get(root, "list", NULL)))
            get_list(&L, sw, n);
        check_overlap(&L, sw);
        snprintf(sw->dir, sizeof sw->dir, "%s/%s", sw->out, sw->name);
    }
    node_free(root);
    flush_diags(&L);
    for (int i = 0; i < L.n_files; i++)
        free(L.files[i]);
    free(L.files);
    if (n_errors)
        *n_errors = L.n_errors;
    return L.n_errors ? -1 : 0;
}

static void free_set(struct rn_sweep_set *s)
{
    for (int i = 0; i < s->n; i++)
        free(s->o[i].text);
    free(s->o);
    s->o = NULL;
    s->n = 0;
}

void rn_sweep_file_free(struct rn_sweep_file *sw)
{
    if (!sw)
        return;
    for (int i = 0; i < sw->n_exps; i++)
        free_set(&sw->exps[i].set);
    free(sw->exps);
    for (int i = 0; i < sw->n_grid; i++)
        free_set(&sw->grid[i].values);
    free(sw->grid);
    for (int i = 0; i < sw->n_list; i++)
        free_set(&sw->list[i]);
    free(sw->list);
    free_set(&sw->set);
    memset(sw, 0, sizeof *sw);
}
