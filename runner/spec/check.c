/* spec/check.c - the top level and the data, model and load sections, and
 * the helpers every section check shares. */
#include "internal.h"

#include <string.h>

/* ---- sections ------------------------------------------------------------------ */

static void check_data(struct loader *L, const struct node *n, struct rn_spec *s)
{
    struct rn_values v;
    struct rn_data_config *d = &s->data;
    check_section(L, n, "data", 1, &sec_data, &v);
    s->data_v = v;
    snprintf(d->source, sizeof d->source, "%s", VSTR(v, sec_data, "source"));
    snprintf(d->dir, sizeof d->dir, "%s", VSTR(v, sec_data, "dir"));
    const char *c = VSTR(v, sec_data, "colouring");
    d->colouring = !strcmp(c, "none")     ? RN_COLOURING_NONE
                   : !strcmp(c, "stroke") ? RN_COLOURING_STROKE
                                          : RN_COLOURING_BACKGROUND;
    d->threshold = (int)VNUM(v, sec_data, "threshold");
    d->palette = rn_palette_study;
    d->bias = VNUM(v, sec_data, "bias");
    const char *r = VSTR(v, sec_data, "test_rule");
    d->test_rule = !strcmp(r, "random")    ? RN_RULE_RANDOM
                   : !strcmp(r, "aligned") ? RN_RULE_ALIGNED
                                           : RN_RULE_CONFLICTING;
    d->val_fraction = VNUM(v, sec_data, "val_fraction");
    d->train_limit = (int)VNUM(v, sec_data, "train_limit");
    d->test_limit = (int)VNUM(v, sec_data, "test_limit");
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
void item_label(char *buf, size_t size, const char *what, const char *name, int index)
{
    if (name && *name)
        snprintf(buf, size, "%s '%s'", what, name);
    else
        snprintf(buf, size, "%s #%d", what, index + 1);
}

/* "line 7", or "base.yaml:7" when the first one lives in another file. */
void where_first(char *buf, size_t size, const char *first_file, int first_line,
                        const struct node *second)
{
    if (first_file && second->file && strcmp(first_file, second->file) != 0)
        snprintf(buf, size, "%s:%d", first_file, first_line);
    else
        snprintf(buf, size, "line %d", first_line);
}

/* "type: unknown type 'x' (did you mean 'y'?); valid types: a, b" */
void report_unknown_type(struct loader *L, const struct node *t, const char *label,
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

void set_pos(char *file, int *line, int *col, const struct node *n)
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
        check_map(L, item, full, 0, sl->type->keys, sl->type->n_keys, sec_layer.extra,
                  sec_layer.n_extra, &sl->v);
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
    if (check_section(L, n, "model", 1, &sec_model, &v))
        return;
    if (strlen(VSTR(v, sec_model, "name")) >= RN_NAME_MAX)
        report(L, map_get(n, "name", NULL), "model.name", "expected at most %d characters",
               RN_NAME_MAX - 1);
    snprintf(s->model.name, sizeof s->model.name, "%s", VSTR(v, sec_model, "name"));
    if (n->kind == NODE_SCALAR) {
        report(L, n, "model", "missing required key 'layers'");
        return;
    }
    check_layers(L, n, s);
}

/* "loss #2" or "loss 'penalty'" when the item names itself. */
void named_label(char *buf, size_t size, const char *what, const struct node *item, int i)
{
    const struct node *nm = item->kind == NODE_MAP ? map_get(item, "name", NULL) : NULL;
    if (nm && nm->kind == NODE_SCALAR && !nm->is_null && nm->text[0] &&
        strlen(nm->text) < RN_NAME_MAX)
        item_label(buf, size, what, nm->text, i);
    else
        item_label(buf, size, what, NULL, i);
}

/* A list of 1..max items, or a report. */
int check_list(struct loader *L, const struct node *n, const char *label, int max,
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
int number_or_name(struct loader *L, const struct node *n, const char *label, double min,
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

int find_name(const char *name, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(names[i], name))
            return i;
    return -1;
}

/* An unknown reference: "unknown schedule 'lamda' (did you mean 'lambda'?)". */
int check_ref(struct loader *L, const struct node *at, const char *label, const char *what,
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

static void check_load(struct loader *L, const struct node *n, struct rn_spec *s)
{
    struct rn_values v;
    check_section(L, n, "load", 1, &sec_load, &v);
    s->load.v = v;
    const char *run = VSTR(v, sec_load, "run");
    const char *model = VSTR(v, sec_load, "model");
    if (strlen(model) >= RN_NAME_MAX)
        report(L, map_get(n, "model", NULL), "load.model", "expected at most %d characters",
               RN_NAME_MAX - 1);
    if (VGIVEN(v, sec_load, "run") && !run[0])
        report(L, map_get(n, "run", NULL), "load.run",
               "expected a run file or directory, got nothing");
    snprintf(s->load.run, sizeof s->load.run, "%s", run);
    snprintf(s->load.model, sizeof s->load.model, "%s", model);
    s->load.train_if_missing = strcmp(VSTR(v, sec_load, "if_missing"), "train") == 0;
}

void check_spec(struct loader *L, const struct node *root, struct rn_spec *s)
{
    struct rn_values v;
    check_section(L, root, "", 1, &sec_top, &v);
    s->v = v;
    snprintf(s->device, sizeof s->device, "%s", VSTR(v, sec_top, "device"));
    s->threads = (int)VNUM(v, sec_top, "threads");
    s->deterministic = VNUM(v, sec_top, "deterministic") != 0;
    if (strlen(VSTR(v, sec_top, "out")) >= sizeof s->out)
        report(L, map_get(root, "out", NULL), "out", "path too long");
    snprintf(s->out, sizeof s->out, "%s", VSTR(v, sec_top, "out"));

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

