/* spec/values.c - checking one mapping against a key schema: kinds, ranges,
 * choices, unknown and missing keys; defaults. */
#include "internal.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

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
const char *got(const struct node *n, char *buf, size_t size)
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

int parse_double(const char *s, double *out)
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

void set_defaults(const struct rn_key *keys, int n, struct rn_values *v)
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
int check_map(struct loader *L, const struct node *map, const char *where, int dotted,
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

int check_section(struct loader *L, const struct node *map, const char *where, int dotted,
                  const struct section *sec, struct rn_values *v)
{
    return check_map(L, map, where, dotted, sec->keys, sec->n_keys, sec->extra, sec->n_extra, v);
}

int key_index(const struct rn_key *keys, int n, const char *key)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(keys[i].key, key))
            return i;
    return -1;
}

void set_value_str(struct rn_values *v, const struct section *sec, const char *key,
                   const char *text)
{
    snprintf(v->str[key_index(sec->keys, sec->n_keys, key)], RN_STR_MAX, "%s", text);
}

void set_value_num(struct rn_values *v, const struct section *sec, const char *key, double x)
{
    v->num[key_index(sec->keys, sec->n_keys, key)] = x;
}

/* A scalar string into dst (size bytes). Null = "". */
int get_string(struct loader *L, const struct node *n, const char *label, char *dst,
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

int get_seed(struct loader *L, const struct node *n, const char *label, uint64_t *out)
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
const struct node *key_node(const struct node *map, const char *key)
{
    int i;
    return map_get(map, key, &i) ? map->keys[i] : NULL;
}

