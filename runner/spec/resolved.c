/* spec/resolved.c - the resolved spec as YAML: every default written out,
 * loading back to the same experiment. */
#include "internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "analysis.h"

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

/* The value of schema key i. */
static void put_value(FILE *f, const struct rn_key *k, const struct rn_values *v, int i)
{
    switch (k->kind) {
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

/* "key: value" for keys [from, to) of a schema in flow style, each after
 * ", " (the first one too unless first). */
static void put_flow(FILE *f, const struct rn_key *keys, int from, int to,
                     const struct rn_values *v, int first)
{
    for (int i = from; i < to; i++) {
        fprintf(f, "%s%s: ", i == from && first ? "" : ", ", keys[i].key);
        put_value(f, &keys[i], v, i);
    }
}

/* ", key: value" for every key of a schema, in flow style. */
static void put_values(FILE *f, const struct rn_key *keys, int n, const struct rn_values *v)
{
    put_flow(f, keys, 0, n, v, 0);
}

/* "  key: value" lines for keys [from, to) of a section, in block style. */
static void put_block(FILE *f, const struct section *sec, int from, int to,
                      const struct rn_values *v)
{
    for (int i = from; i < to; i++) {
        fprintf(f, "  %s: ", sec->keys[i].key);
        put_value(f, &sec->keys[i], v, i);
        fputc('\n', f);
    }
}

/* The index of a section's key (for the extra keys written between them). */
static int at(const struct section *sec, const char *key)
{
    return key_index(sec->keys, sec->n_keys, key);
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

/* ---- the train section ------------------------------------------------------------ */

static void put_losses(FILE *f, const struct rn_spec_train *t)
{
    const struct section *sec = &sec_loss;
    fputs("  losses:\n", f);
    for (int i = 0; i < t->n_losses; i++) {
        const struct rn_spec_loss *l = &t->losses[i];
        /* type, name, on, target; weight; the saliency's own keys from norm on */
        fputs("    - {", f);
        put_flow(f, sec->keys, 0, at(sec, "target") + 1, &l->v, 1);
        fputs(", weight: ", f);
        put_number_or_name(f, l->weight, l->weight_schedule);
        if (l->kind == RN_LOSS_SALIENCY)
            put_flow(f, sec->keys, at(sec, "norm"), sec->n_keys, &l->v, 0);
        fputs("}\n", f);
    }
}

static void put_schedules(FILE *f, const struct rn_spec_train *t)
{
    if (t->n_schedules)
        fputs("  schedules:\n", f);
    for (int i = 0; i < t->n_schedules; i++) {
        const struct rn_spec_schedule *sc = &t->schedules[i];
        const struct rn_schedule_type *st = &rn_schedule_types[sc->kind];
        fputs("    - {name: ", f);
        put_string(f, sc->name);
        fprintf(f, ", type: %s", st->name);
        put_values(f, st->keys, st->n_keys, &sc->v);
        fputs("}\n", f);
    }
}

static void put_optimizers(FILE *f, const struct rn_spec_train *t)
{
    const struct section *sec = &sec_optimizer;
    if (t->n_optimizers)
        fputs("  optimizers:\n", f);
    for (int i = 0; i < t->n_optimizers; i++) {
        const struct rn_spec_optimizer *o = &t->optimizers[i];
        /* name, type; lr; the other keys; groups */
        fputs("    - {", f);
        put_flow(f, sec->keys, 0, at(sec, "type") + 1, &o->v, 1);
        fputs(", lr: ", f);
        put_number_or_name(f, o->lr, o->lr_schedule);
        put_flow(f, sec->keys, at(sec, "type") + 1, sec->n_keys, &o->v, 0);
        if (o->n_groups) {
            fputs(", groups: ", f);
            put_names(f, o->groups, o->n_groups);
        }
        fputs("}\n", f);
    }
}

static void put_program(FILE *f, const struct rn_spec_train *t)
{
    if (t->n_program)
        fputs("  program:\n", f);
    for (int i = 0; i < t->n_program; i++) {
        const struct rn_spec_step *st = &t->program[i];
        fputs("    - {", f);
        put_flow(f, sec_step.keys, 0, sec_step.n_keys, &st->v, 1);
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
}

/* The sections of "training as data" after the losses; absent ones are not
 * written (their defaults are the absence of the section). */
static void put_train_lists(FILE *f, const struct rn_spec_train *t)
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
    put_schedules(f, t);
    put_optimizers(f, t);
    if (t->n_binds)
        fputs("  bind:\n", f);
    for (int i = 0; i < t->n_binds; i++) {
        fputs("    - {", f);
        put_flow(f, sec_bind.keys, 0, sec_bind.n_keys, &t->binds[i].v, 1);
        fputs("}\n", f);
    }
    put_program(f, t);
    if (t->n_augment)
        fputs("  augment:\n", f);
    for (int i = 0; i < t->n_augment; i++) {
        const struct rn_spec_augment *a = &t->augment[i];
        const struct section *sec = &sec_augment;
        for (int k = 0; k < n_augment_types; k++)
            if (!strcmp(augment_types[k].name, a->type))
                sec = augment_types[k].sec;
        fprintf(f, "    - {type: %s", a->type);
        put_values(f, sec->keys, sec->n_keys, &a->v);
        fputs("}\n", f);
    }
    fputs("  eval: [", f);
    for (int i = 0; i < t->n_eval; i++)
        fprintf(f, "%s%s", i ? ", " : "", t->eval[i]);
    fputs("]\n", f);
}

/* ---- the whole spec ---------------------------------------------------------------- */

static void put_data(FILE *f, const struct rn_spec *s)
{
    const struct section *sec = &sec_data;
    const struct rn_data_config *d = &s->data;
    fputs("data:\n", f);
    /* the schema's keys, with texture after colouring and the seed last */
    put_block(f, sec, 0, at(sec, "colouring") + 1, &s->data_v);
    fputs("  texture: [", f);
    put_float(f, d->noise_lo);
    fputs(", ", f);
    put_float(f, d->noise_hi);
    fputs("]\n", f);
    put_block(f, sec, at(sec, "colouring") + 1, sec->n_keys, &s->data_v);
    fprintf(f, "  seed: %llu\n", (unsigned long long)d->seed);
}

static void put_model(FILE *f, const struct rn_spec *s)
{
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

void write_resolved(FILE *f, const struct rn_spec *s)
{
    fputs("# resolved spec: extends, include and overrides applied, every default written\n",
          f);
    fputs("name: ", f);
    put_string(f, s->name);
    fputs("\ndescription: ", f);
    put_string(f, s->description);
    fprintf(f, "\nseed: %llu\n", (unsigned long long)s->seed);
    for (int i = 0; i < sec_top.n_keys; i++) {
        fprintf(f, "%s: ", sec_top.keys[i].key);
        put_value(f, &sec_top.keys[i], &s->v, i);
        fputc('\n', f);
    }
    put_data(f, s);
    if (s->has_model)
        put_model(f, s);
    if (s->has_train) {
        fputs("train:\n", f);
        put_block(f, &sec_train, 0, sec_train.n_keys, &s->train.v);
        put_losses(f, &s->train);
        put_train_lists(f, &s->train);
    }
    if (s->load.run[0]) {
        fputs("load:\n", f);
        put_block(f, &sec_load, 0, sec_load.n_keys, &s->load.v);
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
