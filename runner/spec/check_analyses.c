/* spec/check_analyses.c - the analyses list, and the list-valued analysis
 * keys (`cases`, `models`, `methods`: analysis_lists). */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#include "analysis.h"

/* List-valued analysis keys. An analysis type declares `cases`, `models` or
 * `methods` as a string key; in a spec it is a YAML list of flow mappings (an
 * item of one field may be its value alone: `methods: [gradcam, gradcam++]`), each checked
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
     "index in the split; -1 = the first image of that digit (that passes predicted)"},
    {"predicted", RN_KIND_STRING, 0, 0, "any", 1, 0, NULL,
     "only an image this run's model (eval mode) predicts, re-coloured, so: any, correct, wrong, "
     "a class 0-9, or follows_colour (the class whose training colour it has: colour k is "
     "digit k's); with an explicit index, checked; written in the compact text only when not any"},
};
static const struct rn_key model_item_keys[] = {
    {"name", RN_KIND_STRING, 1, 0, NULL, 1, 0, NULL, "label in results and figures"},
    {"run", RN_KIND_STRING, 1, 0, NULL, 1, 0, NULL,
     "run directory or run.h5 to load the model from; 'self' = this run's model"},
    {"model", RN_KIND_STRING, 0, 0, "main", 1, 0, NULL, "model name inside the run's /models"},
    {"if_missing", RN_KIND_STRING, 0, 0, "skip", 1, 0, NULL,
     "when the run does not exist: skip (with a warning), or an experiment yaml that makes it, "
     "run first with this run's threads and device"},
};
static const struct rn_key method_item_keys[] = {
    {"method", RN_KIND_CHOICE, 1, 0, NULL, 1, 0, "gradcam|gradcam++", "a Grad-CAM variant"},
};
const struct list_key analysis_lists[] = {
    {"cases", case_item_keys, COUNT(case_item_keys), "{digit: 1, colour: red}"},
    {"models", model_item_keys, COUNT(model_item_keys),
     "{name: lazy, run: results/task1_lazy/latest}"},
    {"methods", method_item_keys, COUNT(method_item_keys), "gradcam"},
};

const int n_analysis_lists = COUNT(analysis_lists);

static const struct list_key *list_key_find(const struct rn_key *k)
{
    for (int i = 0; k->kind == RN_KIND_STRING && i < n_analysis_lists; i++)
        if (!strcmp(analysis_lists[i].key, k->key))
            return &analysis_lists[i];
    return NULL;
}

/* ---- the choice of inputs: cases' fields and the filters of split inputs ---- */

/* 1 when t is a class (digit) 0-9. */
static int is_digit_word(const char *t)
{
    char *end;
    long c = strtol(t, &end, 10);
    return *t && !*end && c >= 0 && c <= 9;
}

/* A palette colour (name or 0-9; or any when any_ok) at `at`; -1 reported. */
static int check_colour(struct loader *L, const struct node *at, const char *label, const char *t,
                        int any_ok)
{
    const char *names[RN_N_COLOURS + 1];
    int ok = is_digit_word(t) || (any_ok && !strcmp(t, "any"));
    for (int q = 0; q < RN_N_COLOURS; q++) {
        names[q] = rn_palette_study.names[q];
        ok |= !strcmp(names[q], t);
    }
    names[RN_N_COLOURS] = "any";
    if (ok)
        return 0;
    char sug[300];
    report(L, at, label,
           "colour: unknown colour '%s'%s; expected a palette name (red, green, "
           "blue, ...)%s",
           t, suggest(sug, sizeof sug, t, names, RN_N_COLOURS + any_ok),
           any_ok ? ", 0-9 or any" : " or 0-9");
    return -1;
}

/* A `predicted` condition (of a case or a filter) at `at`: its words, and
 * the run's own model that decides it; -1 reported. */
static int check_predicted(struct loader *L, const struct node *at, const char *label,
                           const char *t, const struct rn_spec *s)
{
    static const char *const words[] = {"any", "correct", "wrong", "follows_colour"};
    int ok = is_digit_word(t);
    for (int q = 0; q < COUNT(words); q++)
        ok |= !strcmp(t, words[q]);
    char sug[300];
    if (!ok)
        report(L, at, label,
               "predicted: expected any, correct, wrong, follows_colour or a class "
               "0-9, got '%s'%s",
               t, suggest(sug, sizeof sug, t, words, COUNT(words)));
    else if (strcmp(t, "any") && !s->has_model)
        report(L, at, label,
               "predicted: '%s' is decided by this run's model, and this spec has "
               "none (a models list is not used for it); add a model with train or load",
               t);
    else if (!strcmp(t, "follows_colour") && s->data.colouring == RN_COLOURING_NONE)
        report(L, at, label,
               "predicted: follows_colour needs coloured data (data.colouring: "
               "background or stroke)");
    else
        return 0;
    return -1;
}

/* The filters of split inputs (analyses/common.h: RN_INPUT_*_KEY) of an
 * analysis whose type takes `cases`: their values, and none but defaults
 * beside cases. */
static void check_input_filters(struct loader *L, const struct node *item, const char *label,
                                const struct rn_spec_analysis *a, const struct rn_spec *s)
{
    int cases = -1;
    for (int j = 0; j < a->type->n_keys && cases < 0; j++)
        if (!strcmp(a->type->keys[j].key, "cases"))
            cases = j;
    if (cases < 0)
        return;
    for (int j = 0; j < a->type->n_keys && j < RN_MAX_KEYS; j++) {
        const char *key = a->type->keys[j].key, *t = a->v.str[j];
        const struct node *at = map_get(item, key, NULL);
        int digit = !strcmp(key, "digit"), colour = !strcmp(key, "colour");
        int predicted = !strcmp(key, "predicted");
        if (!at || !(digit || colour || predicted || !strcmp(key, "index")))
            continue;
        /* at its default (as a resolved spec writes it), a filter is no filter */
        int set = strcmp(key, "index") ? strcmp(t, "any") != 0 : a->v.num[j] != 0;
        if (a->v.str[cases][0] && set) {
            report(L, at, label,
                   "%s: filters the images of split, and this analysis has "
                   "cases (a case has its own digit, colour, index and predicted)",
                   key);
            continue;
        }
        if (digit && strcmp(t, "any") && !is_digit_word(t))
            report(L, at, label, "digit: expected a digit 0-9 or any, got '%s'", t);
        if (colour && check_colour(L, at, label, t, 1) == 0 && strcmp(t, "any") &&
            s->data.colouring == RN_COLOURING_NONE)
            report(L, at, label,
                   "colour: the data is not coloured (data.colouring: none); "
                   "a colour filter needs background or stroke");
        if (predicted)
            check_predicted(L, at, label, t, s);
    }
}

/* Appends one checked item to the canonical text; -1 if a field cannot be
 * written as one word. A case's `predicted` is written only when it is not
 * any, so the text of a case without it is what it always was. */
static int put_list_item(struct loader *L, const struct node *at, const char *label,
                         const struct list_key *lk, const struct rn_values *iv,
                         const struct rn_spec *s, char *out, size_t *len, int first)
{
    char buf[RN_STR_MAX + 8];
    size_t k = 0;
    for (int j = 0; j < lk->n_items; j++) {
        const struct rn_key *key = &lk->items[j];
        if (key->kind == RN_KIND_STRING || key->kind == RN_KIND_CHOICE) {
            const char *t = iv->str[j];
            if (!*t || strpbrk(t, " \t\n;")) {
                report(L, at, label, "%s: expected one word without spaces or ';', got '%s'",
                       key->key, t);
                return -1;
            }
            if (!strcmp(key->key, "colour") && check_colour(L, at, label, t, 0))
                return -1;
            if (!strcmp(key->key, "predicted")) {
                if (check_predicted(L, at, label, t, s))
                    return -1;
                if (!strcmp(t, "any"))
                    continue;
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

/* One item given as compact text (fields separated by spaces, in item-schema
 * order), validated through a mapping built from its fields and placed at
 * `at`, so errors point there; appended to out when valid. Returns 1 when
 * appended, 0 when not (reported, or an empty item), -1 when out of memory. */
static int compact_item(struct loader *L, const struct node *at, const char *text,
                        const char *ilabel, const struct list_key *lk, const struct rn_spec *s,
                        char *out, size_t *len, int first)
{
    char itext[RN_STR_MAX];
    snprintf(itext, sizeof itext, "%s", text);
    struct node *map = node_new(L, NODE_MAP, at->file, at->origin, at->line, at->col);
    if (!map)
        return -1;
    int nf = 0, bad = 0;
    for (char *save = NULL, *f = strtok_r(itext, " \t", &save); f;
         f = strtok_r(NULL, " \t", &save), nf++) {
        if (nf >= lk->n_items) {
            report(L, at, ilabel, "'%s': more than %d field%s", f, lk->n_items,
                   lk->n_items == 1 ? "" : "s");
            bad = 1;
            break;
        }
        const char *kname = lk->items[nf].key;
        struct node *kn =
            scalar_new(L, kname, strlen(kname), 1, at->file, at->origin, at->line, at->col);
        struct node *vn =
            kn ? scalar_new(L, f, strlen(f), 1, at->file, at->origin, at->line, at->col) : NULL;
        if (!kn || !vn || node_push(L, map, kn, vn)) {
            if (kn && !vn)
                node_free(kn);
            node_free(map);
            return -1;
        }
    }
    int added = 0;
    if (nf > 0 && !bad) { /* nf 0: "a; ; b" or a trailing ';' */
        struct rn_values iv;
        int before = L->n_errors;
        check_map(L, map, ilabel, 0, lk->items, lk->n_items, NULL, 0, &iv);
        added =
            L->n_errors == before && put_list_item(L, at, ilabel, lk, &iv, s, out, len, first) == 0;
    }
    node_free(map);
    return added;
}

/* Checks a list-valued key (a list of mappings or its compact text) and
 * writes the canonical text into out (RN_STR_MAX bytes). */
static void check_list_key(struct loader *L, const struct node *n, const char *where,
                           const struct list_key *lk, const struct rn_spec *s, char *out)
{
    char label[600], gbuf[300];
    size_t len = 0;
    int count = 0;
    out[0] = '\0';
    snprintf(label, sizeof label, "%s: %s", where, lk->key);
    if (n->kind == NODE_MAP) {
        report(L, n, label, "expected a list of mappings such as - %s, got a mapping", lk->example);
        return;
    }
    if (n->kind == NODE_SEQ) {
        for (int i = 0; i < n->n; i++) {
            const struct node *item = n->items[i];
            char ilabel[700];
            snprintf(ilabel, sizeof ilabel, "%s #%d", label, i + 1);
            if (lk->n_items == 1 && item->kind == NODE_SCALAR && !item->is_null) {
                /* an item of one field as its value: `methods: [gradcam, gradcam++]` */
                int added = compact_item(L, item, item->text, ilabel, lk, s, out, &len, count == 0);
                if (added < 0)
                    return;
                count += added;
                continue;
            }
            if (item->kind != NODE_MAP) {
                report(L, item, ilabel, "expected a mapping such as %s, got %s", lk->example,
                       got(item, gbuf, sizeof gbuf));
                continue;
            }
            struct rn_values iv;
            int before = L->n_errors;
            check_map(L, item, ilabel, 0, lk->items, lk->n_items, NULL, 0, &iv);
            if (L->n_errors == before &&
                put_list_item(L, item, ilabel, lk, &iv, s, out, &len, count == 0) == 0)
                count++;
        }
    } else if (!n->is_null) {
        /* Compact text: items separated by ';' */
        const char *p = n->text;
        for (int i = 0; *p; i++) {
            size_t span = strcspn(p, ";");
            char itext[RN_STR_MAX], ilabel[700];
            snprintf(itext, sizeof itext, "%.*s", (int)(span < RN_STR_MAX ? span : RN_STR_MAX - 1),
                     p);
            p += span + (p[span] == ';');
            snprintf(ilabel, sizeof ilabel, "%s #%d", label, i + 1);
            int added = compact_item(L, n, itext, ilabel, lk, s, out, &len, count == 0);
            if (added < 0)
                return;
            count += added;
        }
    }
    if (len >= RN_STR_MAX) {
        report(L, n, label,
               "the list is too long to store (%zu of at most %d characters as "
               "text); split the analysis in two",
               len, RN_STR_MAX - 1);
        out[0] = '\0';
    }
}

void check_analyses(struct loader *L, const struct node *n, struct rn_spec *s)
{
    char gbuf[300];
    if (n->kind == NODE_SCALAR && n->is_null)
        return;
    if (n->kind != NODE_SEQ || n->n > RN_MAX_ANALYSES) {
        report(L, n, "analyses", "expected a list of at most %d analyses, got %s", RN_MAX_ANALYSES,
               n->kind == NODE_SEQ ? "a longer list" : got(n, gbuf, sizeof gbuf));
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
        if (t->kind != NODE_SCALAR || t->is_null || !(a->type = rn_analysis_type_find(t->text))) {
            if (t->kind != NODE_SCALAR || t->is_null)
                report(L, t, label, "expected an analysis type, got %s", got(t, gbuf, sizeof gbuf));
            else
                report_unknown_type(L, t, label, names, n_names);
            continue;
        }
        snprintf(full, sizeof full, "%s (%s)", label, a->type->name);
        /* List-valued keys are skipped by check_map and checked as lists. */
        struct extra_key extra[8 + RN_MAX_KEYS];
        int n_extra = 0;
        for (int j = 0; j < sec_analysis.n_extra; j++)
            extra[n_extra++] = sec_analysis.extra[j];
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
            check_list_key(L, ln, full, lk, s, a->v.str[j]);
        }
        check_input_filters(L, item, full, a, s);
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
