/* spec/reference.c - the reference of every key (docs/spec.md, --help-spec),
 * written from the schemas the checks use. */
#include "internal.h"

#include <string.h>

#include "analysis.h"

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

static void put_section(FILE *f, const struct section *sec)
{
    put_key_rows(f, sec->keys, sec->n_keys, sec->extra, sec->n_extra);
}

void rn_spec_write_reference(FILE *f)
{
    fputs("# Experiment spec reference\n\n"
          "Generated from the key schemas by `rn_spec_write_reference` (runner/spec/); do not\n"
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
    put_section(f, &sec_top);
    fputs("## data\n\n", f);
    put_section(f, &sec_data);
    fputs("## model\n\n", f);
    put_section(f, &sec_model);
    fputs("## train\n\n", f);
    put_section(f, &sec_train);
    fputs("### Loss terms (`train.losses` items)\n\n"
          "The total loss of a step is the sum of weight x term over the step's terms. "
          "`cross_entropy` is the mean CE of the logits at `on` against the target; "
          "`neg_cross_entropy` is minus that (a penalty that rewards fooling a head); "
          "`saliency` is the input-gradient penalty of runner/saliency.h (per-sample CE, "
          "exact parameter gradient by tangent mode; refused when a batchnorm in training "
          "mode lies on the path to `on`).\n\n",
          f);
    put_section(f, &sec_loss);
    fputs("### Optimizers (`train.optimizers` items)\n\n"
          "Each optimizer updates the parameters of its groups (`train.groups`); a parameter "
          "belongs to at most one optimizer, and parameters in no optimizer stay fixed.\n\n",
          f);
    put_section(f, &sec_optimizer);
    fputs("### Schedules (`train.schedules` items)\n\n"
          "A schedule is a number that changes with training progress p = step / total steps "
          "(0 at the first step, 1 after the last); it can drive a loss weight, an "
          "optimizer's lr and, through `train.bind`, any number key of a layer.\n\n",
          f);
    put_section(f, &sec_schedule);
    for (int i = 0; i < rn_n_schedule_types; i++) {
        const struct rn_schedule_type *t = &rn_schedule_types[i];
        fprintf(f, "#### %s\n\n%s.\n\n", t->name, t->doc);
        put_key_rows(f, t->keys, t->n_keys, NULL, 0);
    }
    fputs("### Bindings (`train.bind` items)\n\n", f);
    put_section(f, &sec_bind);
    fputs("### Program steps (`train.program` items)\n\n"
          "Each batch runs the steps in order, each `repeat` times: a forward of the nodes "
          "whose inputs or parameters changed since the batch's first forward (backbone "
          "features stay computed while only a head learns), the backward of the step's "
          "losses through the nodes that lead to the step's optimizers' parameters, and an "
          "update by those optimizers.\n\n",
          f);
    put_section(f, &sec_step);
    fputs("### Augmentations (`train.augment` items)\n\n", f);
    put_section(f, &sec_jitter);
    fputs("## load\n\n", f);
    put_section(f, &sec_load);

    fputs("## Layer types\n\nEvery layer (an item of `model.layers`) takes these keys, plus "
          "those of its type:\n\n",
          f);
    put_section(f, &sec_layer);
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
    put_section(f, &sec_analysis);
    for (int i = 0; i < rn_n_analysis_types; i++) {
        const struct rn_analysis_type *t = rn_analysis_types[i];
        fprintf(f, "### %s\n\n%s.\n\n", t->name, t->doc ? t->doc : "");
        if (t->n_keys)
            put_key_rows(f, t->keys, t->n_keys, NULL, 0);
        else
            fputs("No keys of its own.\n\n", f);
    }
    fputs("### List-valued analysis keys\n\n"
          "`cases`, `models` and `methods` take a list of flow mappings, one item a line (`- "
          "{digit: 1, colour: red}`),\nor the same list as compact text: items separated by "
          "`;`, fields by spaces in the order\nbelow, trailing fields defaulted (`cases: \"1 "
          "red; 2 yellow test 17\"`); an item of one field may be\nits value alone "
          "(`methods: [gradcam, gradcam++]`). The resolved spec stores the\ncompact text with "
          "every field written (a case's `predicted` only when it is not `any`).\n\n",
          f);
    for (int i = 0; i < n_analysis_lists; i++) {
        fprintf(f, "Items of `%s`:\n\n", analysis_lists[i].key);
        put_key_rows(f, analysis_lists[i].items, analysis_lists[i].n_items, NULL, 0);
    }
}
