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
                fprintf(f, ", %s: ", sec_jitter.keys[j].key);
                put_double(f, nums[j]);
            }
        }
        fputs("}\n", f);
    }
}

void write_resolved(FILE *f, const struct rn_spec *s)
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

