/* spec/check_train.c - the train section: its keys, schedules, groups, loss
 * terms, optimizers, bindings, program steps, augmentations, eval splits. */
#include "internal.h"

#include <string.h>

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
    const char *types[16];
    for (int k = 0; k < rn_n_schedule_types && k < 16; k++)
        types[k] = rn_schedule_types[k].name;
    for (int i = 0; i < n->n; i++) {
        const struct node *item = n->items[i];
        struct rn_spec_schedule *sc = &t->schedules[t->n_schedules];
        char label[300], full[400];
        named_label(label, sizeof label, "schedule", item, i);
        if (item->kind != NODE_MAP) {
            report(L, item, label,
                   "expected a mapping such as {name: alpha, type: linear, end: "
                   "0.5}, got %s",
                   got(item, gbuf, sizeof gbuf));
            continue;
        }
        const struct node *ty = map_get(item, "type", NULL), *nm = map_get(item, "name", NULL);
        const struct rn_schedule_type *st = NULL;
        if (!ty)
            report(L, item, label, "missing required key 'type'");
        else if (ty->kind != NODE_SCALAR || ty->is_null)
            report(L, ty, label, "expected a schedule type, got %s", got(ty, gbuf, sizeof gbuf));
        else if (!(st = rn_schedule_type_find(ty->text)))
            report_unknown_type(L, ty, label, types, rn_n_schedule_types);
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
        check_map(L, item, full, 0, st->keys, st->n_keys, sec_schedule.extra, sec_schedule.n_extra,
                  &v);
        snprintf(sc->type, sizeof sc->type, "%s", st->name);
        sc->kind = st->kind;
        sc->v = v;
        set_pos(sc->file, &sc->line, &sc->col, item);
#define SV(key) v.num[key_index(st->keys, st->n_keys, key)]
        sc->scale = 1;
        sc->gamma = 10;
        sc->until = 1;
        switch (st->kind) {
        case RN_SCHEDULE_CONSTANT:
            sc->value = SV("value");
            break;
        case RN_SCHEDULE_LINEAR:
            sc->start = SV("start");
            sc->end = SV("end");
            sc->from = SV("from");
            sc->until = SV("until");
            if (sc->from > sc->until)
                report(L, item, full, "from (%g) must not be after until (%g)", sc->from,
                       sc->until);
            break;
        case RN_SCHEDULE_DANN_SIGMOID:
            sc->scale = SV("scale");
            sc->gamma = SV("gamma");
            break;
        case RN_SCHEDULE_STEP:
            sc->at = SV("at");
            sc->before = SV("before");
            sc->after = SV("after");
            break;
        }
#undef SV
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
        check_section(L, item, label, 0, &sec_loss, &v);
        snprintf(l->type, sizeof l->type, "%s", VSTR(v, sec_loss, "type"));
        const struct rn_loss_type *lt = rn_loss_type_find(l->type);
        l->kind = lt ? lt->kind : RN_LOSS_CE;
        if (strlen(VSTR(v, sec_loss, "on")) >= RN_NAME_MAX)
            report(L, map_get(item, "on", NULL), label, "on: expected at most %d characters",
                   RN_NAME_MAX - 1);
        snprintf(l->on, sizeof l->on, "%s", VSTR(v, sec_loss, "on"));
        snprintf(l->target, sizeof l->target, "%s", VSTR(v, sec_loss, "target"));
        int target = rn_target_find(l->target);
        l->target_kind = target < 0 ? RN_TARGET_DIGIT : (enum rn_target)target;
        snprintf(l->norm, sizeof l->norm, "%s", VSTR(v, sec_loss, "norm"));
        snprintf(l->reduce, sizeof l->reduce, "%s", VSTR(v, sec_loss, "reduce"));
        l->threshold = VNUM(v, sec_loss, "threshold");
        if (lt && l->kind != RN_LOSS_SALIENCY) {
            static const char *const sal_only[] = {"norm", "reduce", "threshold"};
            for (int k = 0; k < 3; k++)
                if (VGIVEN(v, sec_loss, sal_only[k]))
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
        const char *nm = VSTR(v, sec_loss, "name");
        int named = nm[0] != '\0';
        if (strlen(nm) >= RN_NAME_MAX)
            report(L, map_get(item, "name", NULL), label, "name: expected at most %d characters",
                   RN_NAME_MAX - 1);
        else if (named)
            snprintf(l->name, sizeof l->name, "%s", nm);
        else if (lt && l->kind == RN_LOSS_SALIENCY)
            snprintf(l->name, sizeof l->name, "saliency");
        else {
            char tg[sizeof l->target]; /* a copy: gcc cannot tell l->name from l->target */
            memcpy(tg, l->target, sizeof tg);
            snprintf(l->name, sizeof l->name, "%s%s", lt && l->kind == RN_LOSS_NEG_CE ? "neg_" : "",
                     tg);
        }
        l->v = v;
        set_value_str(&l->v, &sec_loss, "name", l->name);
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
    if (n->kind == NODE_MAP || (n->kind == NODE_SCALAR && n->is_null) || count < 1 || count > max) {
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
            report(L, item, label,
                   "expected a mapping such as {name: main, type: adam, lr: "
                   "1e-3, groups: [backbone]}, got %s",
                   got(item, gbuf, sizeof gbuf));
            continue;
        }
        struct rn_values v;
        memset(o, 0, sizeof *o);
        check_section(L, item, label, 0, &sec_optimizer, &v);
        set_pos(o->file, &o->line, &o->col, item);
        const char *nm = VSTR(v, sec_optimizer, "name");
        if (strlen(nm) >= RN_NAME_MAX || (VGIVEN(v, sec_optimizer, "name") && !nm[0])) {
            report(L, map_get(item, "name", NULL), label, "name: expected 1..%d characters",
                   RN_NAME_MAX - 1);
            continue;
        }
        snprintf(o->name, sizeof o->name, "%s", nm);
        for (int j = 0; j < t->n_optimizers; j++)
            if (!strcmp(t->optimizers[j].name, o->name))
                report(L, map_get(item, "name", NULL), label,
                       "name '%s' is already used by another optimizer", o->name);
        snprintf(o->type, sizeof o->type, "%s", VSTR(v, sec_optimizer, "type"));
        const struct rn_optim_type *ot = rn_optim_type_find(o->type);
        o->kind = ot ? ot->kind : RN_OPTIM_ADAM;
        o->beta1 = VNUM(v, sec_optimizer, "beta1");
        o->beta2 = VNUM(v, sec_optimizer, "beta2");
        o->eps = VNUM(v, sec_optimizer, "eps");
        o->weight_decay = VNUM(v, sec_optimizer, "weight_decay");
        if (!VGIVEN(v, sec_optimizer, "weight_decay") && o->kind == RN_OPTIM_ADAMW)
            set_value_num(&v, &sec_optimizer, "weight_decay", o->weight_decay = 0.01);
        o->momentum = VNUM(v, sec_optimizer, "momentum");
        o->clip_norm = VNUM(v, sec_optimizer, "clip_norm");
        o->v = v;
        o->lr = 1e-3;
        const struct node *lr = map_get(item, "lr", NULL);
        snprintf(sub, sizeof sub, "%s: lr", label);
        if (lr && number_or_name(L, lr, sub, 0, &o->lr, o->lr_schedule) == 0 && o->lr_schedule[0])
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
            report(L, item, label,
                   "expected a mapping such as {node: grl, key: alpha, schedule: "
                   "alpha}, got %s",
                   got(item, gbuf, sizeof gbuf));
            continue;
        }
        struct rn_values v;
        check_section(L, item, label, 0, &sec_bind, &v);
        if (!VGIVEN(v, sec_bind, "node") || !VGIVEN(v, sec_bind, "key") ||
            !VGIVEN(v, sec_bind, "schedule"))
            continue;
        memset(b, 0, sizeof *b);
        b->v = v;
        set_pos(b->file, &b->line, &b->col, item);
        static const char *const fields[] = {"node", "key", "schedule"};
        char *dst[] = {b->node, b->key, b->schedule};
        size_t size[] = {sizeof b->node, sizeof b->key, sizeof b->schedule};
        int ok = 1;
        for (int k = 0; k < 3; k++) {
            const char *val = VSTR(v, sec_bind, fields[k]);
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
            report(L, item, label,
                   "expected a mapping such as {optimizer: main, losses: "
                   "[digit]}, got %s",
                   got(item, gbuf, sizeof gbuf));
            continue;
        }
        struct rn_values v;
        memset(st, 0, sizeof *st);
        check_section(L, item, label, 0, &sec_step, &v);
        st->repeat = (int)VNUM(v, sec_step, "repeat");
        st->v = v;
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
                report(L, e, sub,
                       "expected a mapping of at most %d node.key: number entries "
                       "such as {grl.alpha: 0}, got %s",
                       RN_MAX_SETS, e->kind == NODE_MAP ? "more" : got(e, gbuf, sizeof gbuf));
            } else {
                for (int j = 0; j < e->n; j++) {
                    const struct node *k = e->keys[j], *val = e->items[j];
                    struct rn_spec_set *ss = &st->sets[st->n_sets];
                    const char *dot = strrchr(k->text, '.');
                    double d;
                    if (!dot || dot == k->text || !dot[1] ||
                        (size_t)(dot - k->text) >= sizeof ss->node ||
                        strlen(dot + 1) >= sizeof ss->key) {
                        report(L, k, sub, "expected node.key (e.g. grl.alpha), got '%s'", k->text);
                        continue;
                    }
                    if (val->kind != NODE_SCALAR || val->is_null || parse_double(val->text, &d)) {
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
    const char *types[8];
    for (int k = 0; k < n_augment_types && k < 8; k++)
        types[k] = augment_types[k].name;
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
        else if ((k = find_name(ty->text, types, n_augment_types)) < 0)
            report_unknown_type(L, ty, label, types, n_augment_types);
        if (k < 0)
            continue;
        snprintf(full, sizeof full, "%s (%s)", label, types[k]);
        struct rn_values v;
        memset(a, 0, sizeof *a);
        check_section(L, item, full, 0, augment_types[k].sec, &v);
        for (int j = 0; j < t->n_augment; j++)
            if (!strcmp(t->augment[j].type, types[k]))
                report(L, ty, full, "listed twice");
        snprintf(a->type, sizeof a->type, "%s", types[k]);
        a->v = v;
        if (augment_types[k].sec == &sec_jitter) {
            a->brightness = VNUM(v, sec_jitter, "brightness");
            a->contrast = VNUM(v, sec_jitter, "contrast");
            a->saturation = VNUM(v, sec_jitter, "saturation");
            a->hue = VNUM(v, sec_jitter, "hue");
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

void check_train(struct loader *L, const struct node *n, struct rn_spec *s)
{
    struct rn_values v;
    struct rn_spec_train *t = &s->train;
    int bad = check_section(L, n, "train", 1, &sec_train, &v);
#define K(key) VNUM(v, sec_train, key)
    t->epochs = (int)K("epochs");
    t->batch = (int)K("batch");
    t->eval_batch = (int)K("eval_batch");
    snprintf(t->optimizer, sizeof t->optimizer, "%s", VSTR(v, sec_train, "optimizer"));
    const struct rn_optim_type *ot = rn_optim_type_find(t->optimizer);
    t->optimizer_kind = ot ? ot->kind : RN_OPTIM_ADAM;
    t->lr = K("lr");
    t->beta1 = K("beta1");
    t->beta2 = K("beta2");
    t->eps = K("eps");
    t->weight_decay = K("weight_decay");
    if (!VGIVEN(v, sec_train, "weight_decay") && t->optimizer_kind == RN_OPTIM_ADAMW)
        set_value_num(&v, &sec_train, "weight_decay", t->weight_decay = 0.01);
    t->momentum = K("momentum");
    t->clip_norm = K("clip_norm");
    t->shuffle = K("shuffle") != 0;
    t->log_every = (int)K("log_every");
    t->checkpoint_epochs = (int)K("checkpoint_epochs");
    t->checkpoint_steps = (int)K("checkpoint_steps");
    t->on_nonfinite_skip = strcmp(VSTR(v, sec_train, "on_nonfinite"), "skip") == 0;
#undef K
    t->v = v;
    /* the default loss term: cross_entropy on the digit */
    struct rn_spec_loss *l = &t->losses[0];
    t->n_losses = 1;
    set_defaults(sec_loss.keys, sec_loss.n_keys, &l->v);
    set_value_str(&l->v, &sec_loss, "type", "cross_entropy");
    set_value_str(&l->v, &sec_loss, "name", "digit");
    snprintf(l->type, sizeof l->type, "cross_entropy");
    l->kind = RN_LOSS_CE;
    snprintf(l->target, sizeof l->target, "%s", VSTR(l->v, sec_loss, "target"));
    l->target_kind = RN_TARGET_DIGIT;
    l->weight = 1.0;
    snprintf(l->name, sizeof l->name, "digit");
    snprintf(l->norm, sizeof l->norm, "%s", VSTR(l->v, sec_loss, "norm"));
    snprintf(l->reduce, sizeof l->reduce, "%s", VSTR(l->v, sec_loss, "reduce"));
    l->threshold = VNUM(l->v, sec_loss, "threshold");
    if (n)
        set_pos(l->file, &l->line, &l->col, n);
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
