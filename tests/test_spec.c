/* test_spec.c - the experiment spec parser: values and defaults, extends and
 * include, every class of error with its exact message and position,
 * overrides, the resolved-YAML round trip, did-you-mean, the reference.
 *
 * Specs are written into a fresh mkdtemp folder per test. Expected messages
 * use "%1$s" for that folder.
 */
#define _GNU_SOURCE /* nftw, mkdtemp, open_memstream */
#include <criterion/criterion.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runner/analysis.h"
#include "runner/results.h"
#include "runner/spec.h"

static char dir[256];

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/rn_spec_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Writes dir/name (creating one level of sub-folder if name has one). */
static void put(const char *name, const char *text)
{
    char path[512];
    const char *slash = strchr(name, '/');
    if (slash) {
        snprintf(path, sizeof path, "%s/%.*s", dir, (int)(slash - name), name);
        mkdir(path, 0700);
    }
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "cannot write %s", path);
    fputs(text, f);
    fclose(f);
}

/* The outcome of one load: the spec (heap: it is large), the printed errors. */
struct outcome {
    int rc, n;
    char *errors;
    struct rn_error err;
    struct rn_spec *spec;
};

static struct outcome load_ov(const char *name, const char *const *overrides)
{
    struct outcome o = {0};
    char path[512];
    size_t size = 0;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    o.spec = calloc(1, sizeof *o.spec);
    cr_assert_not_null(o.spec);
    FILE *f = open_memstream(&o.errors, &size);
    cr_assert_not_null(f);
    o.rc = rn_spec_load(o.spec, path, overrides, f, &o.n, &o.err);
    fclose(f);
    return o;
}

static struct outcome load(const char *name)
{
    return load_ov(name, NULL);
}

static void done(struct outcome *o)
{
    rn_spec_free(o->spec);
    free(o->spec);
    free(o->errors);
}

/* fmt with %1$s = the test folder. */
static char *expand(const char *fmt)
{
    static char buf[4][4096];
    static int k;
    char *b = buf[k++ % 4];
    snprintf(b, sizeof buf[0], fmt, dir);
    return b;
}

/* Loads name, expects failure with exactly these error lines (joined by \n). */
static void expect_errors(const char *name, const char *const *overrides, const char *lines)
{
    struct outcome o = load_ov(name, overrides);
    const char *want = expand(lines);
    cr_assert_eq(o.rc, -1, "%s loaded but should fail with:\n%s", name, want);
    cr_assert_str_eq(o.errors, want);
    int count = 0;
    for (const char *p = want; *p; p++)
        count += *p == '\n';
    cr_assert_eq(o.n, count);
    char first[4096];
    snprintf(first, sizeof first, "%.*s", (int)(strchr(want, '\n') - want), want);
    cr_assert_str_eq(o.err.msg, first);
    done(&o);
}

/* One-file variant: writes x.yaml and expects these errors. */
static void expect_x(const char *text, const char *lines)
{
    put("x.yaml", text);
    expect_errors("x.yaml", NULL, lines);
}

static int key_of(const struct rn_key *keys, int n, const char *key)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(keys[i].key, key))
            return i;
    cr_assert_fail("no key %s", key);
    return -1;
}
#define LNUM(l, key) ((l)->v.num[key_of((l)->type->keys, (l)->type->n_keys, key)])
#define LSTR(l, key) ((l)->v.str[key_of((l)->type->keys, (l)->type->n_keys, key)])
#define LGIVEN(l, key) ((l)->v.given[key_of((l)->type->keys, (l)->type->n_keys, key)])

static const char full_spec[] =
    "name: task1_lazy\n"
    "description: \"the lazy model\"\n"
    "seed: 42\n"
    "device: cpu\n"
    "threads: 2\n"
    "deterministic: true\n"
    "out: results/x\n"
    "data:\n"
    "  source: fashion_mnist\n"
    "  dir: /tmp/mnist\n"
    "  colouring: stroke\n"
    "  texture: [0.5, 0.75]\n"
    "  threshold: 90\n"
    "  palette: study\n"
    "  bias: 0.99\n"
    "  test_rule: random\n"
    "  val_fraction: 0.2\n"
    "  train_limit: 1000\n"
    "  test_limit: 500\n"
    "  seed: 7\n"
    "model:\n"
    "  name: tiny\n"
    "  layers:\n"
    "    - {type: conv2d, name: conv1, filters: 8, padding: 1}\n"
    "    - {type: relu}\n"
    "    - {type: conv2d, name: conv2, filters: 8, kernel: 1, bias: false}\n"
    "    - {type: add, name: sum, from: [conv1, conv2]}\n"
    "    - {type: global_avg_pool, name: features}\n"
    "    - {type: linear, name: fc, units: 10, from: features}\n"
    "    - {type: linear, name: colour_head, units: 10, from: [features]}\n"
    "train:\n"
    "  epochs: 3\n"
    "  batch: 32\n"
    "  eval_batch: 128\n"
    "  optimizer: sgd\n"
    "  lr: 0.05\n"
    "  momentum: 0.9\n"
    "  weight_decay: 5e-4\n"
    "  shuffle: false\n"
    "  log_every: 5\n"
    "  losses:\n"
    "    - {type: cross_entropy, on: fc, target: digit}\n"
    "    - {type: cross_entropy, on: colour_head, target: colour, weight: 0.5}\n"
    "  eval: [train, test]\n"
    "analyses:\n"
    "  - {type: probe, name: red1, digit: 1, colour: red}\n"
    "  - {type: samples, n: 5}\n"
    "  - {type: colour_stats}\n";

TestSuite(spec, .init = setup, .fini = teardown);

Test(spec, full_spec_values)
{
    put("full.yaml", full_spec);
    struct outcome o = load("full.yaml");
    cr_assert_eq(o.rc, 0, "%s", o.errors);
    cr_assert_eq(o.n, 0);
    const struct rn_spec *s = o.spec;
    cr_assert_str_eq(s->name, "task1_lazy");
    cr_assert_str_eq(s->description, "the lazy model");
    cr_assert_eq(s->seed, 42);
    cr_assert_str_eq(s->device, "cpu");
    cr_assert_eq(s->threads, 2);
    cr_assert_eq(s->deterministic, 1);
    cr_assert_str_eq(s->out, "results/x");

    const struct rn_data_config *d = &s->data;
    cr_assert_str_eq(d->source, "fashion_mnist");
    cr_assert_str_eq(d->dir, "/tmp/mnist");
    cr_assert_eq(d->colouring, RN_COLOURING_STROKE);
    cr_assert_float_eq(d->noise_lo, 0.5f, 1e-7);
    cr_assert_float_eq(d->noise_hi, 0.75f, 1e-7);
    cr_assert_eq(d->threshold, 90);
    cr_assert_eq(memcmp(&d->palette, &rn_palette_study, sizeof d->palette), 0);
    cr_assert_float_eq(d->bias, 0.99, 1e-15);
    cr_assert_eq(d->test_rule, RN_RULE_RANDOM);
    cr_assert_float_eq(d->val_fraction, 0.2, 1e-15);
    cr_assert_eq(d->train_limit, 1000);
    cr_assert_eq(d->test_limit, 500);
    cr_assert_eq(d->seed, 7);

    cr_assert_eq(s->has_model, 1);
    cr_assert_str_eq(s->model.name, "tiny");
    cr_assert_eq(s->model.n_layers, 7);
    const struct rn_spec_layer *l = s->model.layers;
    cr_assert_eq(l[0].type, rn_layer_type_find("conv2d"));
    cr_assert_str_eq(l[0].name, "conv1");
    cr_assert_eq(LNUM(&l[0], "filters"), 8);
    cr_assert_eq(LNUM(&l[0], "padding"), 1);
    cr_assert_eq(LNUM(&l[0], "kernel"), 3); /* default */
    cr_assert_eq(LNUM(&l[0], "stride"), 1);
    cr_assert_eq(LNUM(&l[0], "bias"), 1);
    cr_assert_eq(LGIVEN(&l[0], "filters"), 1);
    cr_assert_eq(LGIVEN(&l[0], "kernel"), 0);
    cr_assert_eq(l[0].line, 24);
    cr_assert_eq(l[0].col, 7);
    cr_assert_eq(l[0].v.line[key_of(l[0].type->keys, l[0].type->n_keys, "filters")], 24);
    cr_assert(strstr(l[0].file, "full.yaml"));
    cr_assert_str_eq(l[1].name, "");
    cr_assert_eq(l[1].type, rn_layer_type_find("relu"));
    cr_assert_eq(LNUM(&l[2], "bias"), 0);
    cr_assert_eq(LNUM(&l[2], "kernel"), 1);
    cr_assert_eq(l[3].n_from, 2);
    cr_assert_str_eq(l[3].from[0], "conv1");
    cr_assert_str_eq(l[3].from[1], "conv2");
    cr_assert_eq(l[0].n_from, 0);
    cr_assert_eq(l[5].n_from, 1);
    cr_assert_str_eq(l[5].from[0], "features");
    cr_assert_eq(l[6].n_from, 1);
    cr_assert_eq(LNUM(&l[6], "units"), 10);

    const struct rn_spec_train *t = &s->train;
    cr_assert_eq(s->has_train, 1);
    cr_assert_eq(t->epochs, 3);
    cr_assert_eq(t->batch, 32);
    cr_assert_eq(t->eval_batch, 128);
    cr_assert_str_eq(t->optimizer, "sgd");
    cr_assert_float_eq(t->lr, 0.05, 1e-15);
    cr_assert_float_eq(t->momentum, 0.9, 1e-15);
    cr_assert_float_eq(t->weight_decay, 5e-4, 1e-18);
    cr_assert_float_eq(t->beta1, 0.9, 1e-15);
    cr_assert_float_eq(t->beta2, 0.999, 1e-15);
    cr_assert_float_eq(t->eps, 1e-8, 1e-20);
    cr_assert_eq(t->shuffle, 0);
    cr_assert_eq(t->log_every, 5);
    cr_assert_eq(t->n_losses, 2);
    cr_assert_str_eq(t->losses[0].type, "cross_entropy");
    cr_assert_str_eq(t->losses[0].on, "fc");
    cr_assert_str_eq(t->losses[0].target, "digit");
    cr_assert_float_eq(t->losses[0].weight, 1.0, 0);
    cr_assert_str_eq(t->losses[1].on, "colour_head");
    cr_assert_str_eq(t->losses[1].target, "colour");
    cr_assert_float_eq(t->losses[1].weight, 0.5, 0);
    cr_assert_eq(t->losses[1].line, 43);
    cr_assert_eq(t->n_eval, 2);
    cr_assert_str_eq(t->eval[0], "train");
    cr_assert_str_eq(t->eval[1], "test");
    cr_assert_str_eq(s->load.run, "");

    cr_assert_eq(s->n_analyses, 3);
    const struct rn_spec_analysis *a = s->analyses;
    cr_assert_eq(a[0].type, rn_analysis_type_find("probe"));
    cr_assert_str_eq(a[0].name, "red1");
    cr_assert_eq(LNUM(&a[0], "digit"), 1);
    cr_assert_str_eq(LSTR(&a[0], "colour"), "red");
    cr_assert_str_eq(LSTR(&a[0], "split"), "test");
    cr_assert_eq(LNUM(&a[0], "index"), -1);
    cr_assert_str_eq(a[1].name, "samples");
    cr_assert_eq(LNUM(&a[1], "n"), 5);
    cr_assert_str_eq(LSTR(&a[1], "split"), "all");
    cr_assert_str_eq(a[2].name, "colour_stats");
    cr_assert_eq(a[2].line, 48);
    cr_assert_not_null(s->resolved);
    done(&o);
}

Test(spec, defaults_of_a_data_only_spec)
{
    put("task0_dataset.yaml", "seed: 5\n");
    struct outcome o = load("task0_dataset.yaml");
    cr_assert_eq(o.rc, 0, "%s", o.errors);
    const struct rn_spec *s = o.spec;
    cr_assert_str_eq(s->name, "task0_dataset");
    cr_assert_str_eq(s->description, "");
    cr_assert_str_eq(s->device, "auto");
    cr_assert_eq(s->threads, 0);
    cr_assert_eq(s->deterministic, 0);
    cr_assert_str_eq(s->out, "results");
    cr_assert_eq(s->has_model, 0);
    cr_assert_eq(s->has_train, 0);
    cr_assert_eq(s->n_analyses, 0);
    cr_assert_str_eq(s->data.source, "mnist");
    cr_assert_str_eq(s->data.dir, "data/mnist");
    cr_assert_eq(s->data.colouring, RN_COLOURING_BACKGROUND);
    cr_assert_float_eq(s->data.noise_lo, 0.4f, 0);
    cr_assert_float_eq(s->data.noise_hi, 1.0f, 0);
    cr_assert_eq(s->data.threshold, 50);
    cr_assert_float_eq(s->data.bias, 0.95, 0);
    cr_assert_eq(s->data.test_rule, RN_RULE_CONFLICTING);
    cr_assert_float_eq(s->data.val_fraction, 0.1, 0);
    cr_assert_eq(s->data.train_limit, 0);
    cr_assert_eq(s->data.seed, 5, "data.seed defaults to the run seed");
    cr_assert_null(strstr(s->resolved, "train:"));
    cr_assert_null(strstr(s->resolved, "model:"));
    done(&o);
}

Test(spec, train_defaults)
{
    put("x.yaml", "model:\n  layers: [{type: flatten}, {type: linear, units: 10}]\ntrain: ~\n");
    struct outcome o = load("x.yaml");
    cr_assert_eq(o.rc, 0, "%s", o.errors);
    const struct rn_spec_train *t = &o.spec->train;
    cr_assert_eq(o.spec->has_train, 1);
    cr_assert_str_eq(o.spec->model.name, "model");
    cr_assert_eq(t->epochs, 1);
    cr_assert_eq(t->batch, 64);
    cr_assert_eq(t->eval_batch, 256);
    cr_assert_str_eq(t->optimizer, "adam");
    cr_assert_float_eq(t->lr, 1e-3, 0);
    cr_assert_float_eq(t->weight_decay, 0, 0);
    cr_assert_eq(t->shuffle, 1);
    cr_assert_eq(t->log_every, 10);
    cr_assert_eq(t->n_losses, 1);
    cr_assert_str_eq(t->losses[0].type, "cross_entropy");
    cr_assert_str_eq(t->losses[0].on, "");
    cr_assert_str_eq(t->losses[0].target, "digit");
    cr_assert_float_eq(t->losses[0].weight, 1, 0);
    cr_assert_eq(t->n_eval, 2);
    cr_assert_str_eq(t->eval[0], "val");
    cr_assert_str_eq(t->eval[1], "test");
    done(&o);
}

Test(spec, adamw_weight_decay_default)
{
    put("x.yaml", "model:\n  layers: [{type: relu}]\ntrain: {optimizer: adamw}\n");
    struct outcome o = load("x.yaml");
    cr_assert_eq(o.rc, 0, "%s", o.errors);
    cr_assert_float_eq(o.spec->train.weight_decay, 0.01, 0);
    done(&o);
    put("y.yaml", "model:\n  layers: [{type: relu}]\ntrain: {optimizer: adamw, weight_decay: 0}\n");
    o = load("y.yaml");
    cr_assert_eq(o.rc, 0, "%s", o.errors);
    cr_assert_float_eq(o.spec->train.weight_decay, 0, 0, "given 0 stays 0");
    done(&o);
}

Test(spec, load_section)
{
    put("x.yaml", "model:\n  layers: [{type: relu}]\nload: {run: results/a/latest}\n");
    struct outcome o = load("x.yaml");
    cr_assert_eq(o.rc, 0, "%s", o.errors);
    cr_assert_eq(o.spec->has_train, 0);
    cr_assert_str_eq(o.spec->load.run, "results/a/latest");
    cr_assert_str_eq(o.spec->load.model, "main");
    done(&o);
}

/* ---- extends and include ---------------------------------------------------- */

Test(spec, extends_deep_merge)
{
    /* grand <- base (in a sub-folder, extends relative to itself) <- child */
    put("base/grand.yaml",
        "name: grand\nseed: 1\nthreads: 3\ndata: {bias: 0.7, threshold: 40}\n"
        "analyses: [{type: samples}]\n");
    put("base/common.yaml",
        "extends: grand.yaml\nname: common\nseed: 2\ndata:\n  bias: 0.8\n  texture: [1, 1]\n"
        "model:\n  name: three\n  layers:\n    - {type: relu}\n    - {type: relu}\n"
        "    - {type: relu}\ntrain: {epochs: 5, batch: 16}\n");
    put("child.yaml",
        "extends: base/common.yaml\ndata: {bias: 0.9}\nmodel:\n  layers: [{type: flatten}]\n"
        "train: {epochs: 2}\n");
    struct outcome o = load("child.yaml");
    cr_assert_eq(o.rc, 0, "%s", o.errors);
    const struct rn_spec *s = o.spec;
    cr_assert_str_eq(s->name, "child", "a name is never inherited");
    cr_assert_eq(s->seed, 2);
    cr_assert_eq(s->threads, 3);
    cr_assert_float_eq(s->data.bias, 0.9, 0);
    cr_assert_eq(s->data.threshold, 40, "deep merge keeps keys of the grandparent");
    cr_assert_float_eq(s->data.noise_lo, 1.0f, 0);
    cr_assert_str_eq(s->model.name, "three");
    cr_assert_eq(s->model.n_layers, 1, "lists are replaced, not merged");
    cr_assert_eq(s->model.layers[0].type, rn_layer_type_find("flatten"));
    cr_assert(strstr(s->model.layers[0].file, "child.yaml"));
    cr_assert_eq(s->train.epochs, 2);
    cr_assert_eq(s->train.batch, 16);
    cr_assert_eq(s->n_analyses, 1);
    done(&o);
}

Test(spec, extends_null_deletes_inherited_key)
{
    put("base.yaml", "model:\n  layers: [{type: relu}]\ntrain: {epochs: 3}\n");
    put("x.yaml", "extends: base.yaml\ntrain: ~\nload: {run: r.h5}\n");
    struct outcome o = load("x.yaml");
    cr_assert_eq(o.rc, 0, "%s", o.errors);
    cr_assert_eq(o.spec->has_train, 0);
    cr_assert_str_eq(o.spec->load.run, "r.h5");
    done(&o);
}

Test(spec, errors_in_a_base_file_name_that_file)
{
    put("base.yaml", "seed: 1\ntrain:\n  epoch: 2\n");
    put("x.yaml", "extends: base.yaml\nmodel:\n  layers: [{type: relu}]\n");
    expect_errors("x.yaml", NULL,
                  "%1$s/base.yaml:3:3: error: train: unknown key 'epoch' (did you mean 'epochs'?)\n");
}

Test(spec, model_include)
{
    put("models/m.yaml", "# a model\nname: small\nlayers:\n  - {type: flatten, name: flat}\n"
                         "  - {type: linear, name: fc, units: 10}\n");
    put("exp/x.yaml", "model:\n  include: ../models/m.yaml\ntrain: {}\n");
    struct outcome o = load("exp/x.yaml");
    cr_assert_eq(o.rc, 0, "%s", o.errors);
    cr_assert_str_eq(o.spec->model.name, "small");
    cr_assert_eq(o.spec->model.n_layers, 2);
    cr_assert_str_eq(o.spec->model.layers[1].name, "fc");
    cr_assert(strstr(o.spec->model.layers[1].file, "models/m.yaml"));
    cr_assert_eq(o.spec->model.layers[1].line, 5);
    cr_assert_eq(o.spec->model.layers[1].col, 5);
    done(&o);

    /* keys written next to include win */
    put("exp/y.yaml", "model:\n  include: ../models/m.yaml\n  name: renamed\ntrain: {}\n");
    o = load("exp/y.yaml");
    cr_assert_eq(o.rc, 0, "%s", o.errors);
    cr_assert_str_eq(o.spec->model.name, "renamed");
    cr_assert_eq(o.spec->model.n_layers, 2);
    done(&o);
}

Test(spec, errors_inside_a_model_file)
{
    put("models/m.yaml", "name: small\nlayers:\n  - {type: conv2d, filtres: 8}\n");
    put("x.yaml", "model:\n  include: models/m.yaml\ntrain: {}\n");
    expect_errors("x.yaml", NULL,
                  "%1$s/models/m.yaml:3:5: error: layer #1 (conv2d): missing required key "
                  "'filters'\n"
                  "%1$s/models/m.yaml:3:20: error: layer #1 (conv2d): unknown key 'filtres' "
                  "(did you mean 'filters'?)\n");
    put("models/bad.yaml", "name: small\nlayer: []\n");
    put("y.yaml", "model:\n  include: models/bad.yaml\ntrain: {}\n");
    expect_errors("y.yaml", NULL,
                  "%1$s/models/bad.yaml:2:1: error: model file: unknown key 'layer' (did you "
                  "mean 'layers'?); a model file holds only 'name' and 'layers'\n");
}

/* ---- errors ----------------------------------------------------------------- */

Test(spec, error_unknown_layer_key)
{
    expect_x("model:\n"
             "  layers:\n"
             "    - type: relu\n"
             "    - type: conv2d\n"
             "      name: conv1\n"
             "      filters: 3\n"
             "      filtres: 32\n"
             "    - {type: relu, stride: 2}\n"
             "train: {}\n",
             "%1$s/x.yaml:7:7: error: layer 'conv1' (conv2d): unknown key 'filtres' (did you "
             "mean 'filters'?)\n"
             "%1$s/x.yaml:8:20: error: layer #3 (relu): unknown key 'stride'\n");
}

Test(spec, error_unknown_section_key)
{
    expect_x("model:\n  layers: [{type: relu}]\ntrain:\n  epoch: 2\nsed: 3\n",
             "%1$s/x.yaml:4:3: error: train: unknown key 'epoch' (did you mean 'epochs'?)\n"
             "%1$s/x.yaml:5:1: error: unknown key 'sed' (did you mean 'seed'?)\n");
}

Test(spec, error_wrong_kinds_and_ranges)
{
    expect_x("seed: -1\n"
             "deterministic: yes please\n"
             "data:\n"
             "  bias: 1.5\n"
             "  threshold: 3.5\n"
             "  texture: [0.9, 0.4]\n"
             "model:\n"
             "  layers: [{type: conv2d, filters: 0}, {type: dropout, p: high}]\n"
             "train:\n"
             "  epochs: two\n"
             "  optimizer: adamm\n"
             "  lr: [1]\n",
             "%1$s/x.yaml:1:7: error: seed: expected an integer in [0, 18446744073709551615], "
             "got '-1'\n"
             "%1$s/x.yaml:2:16: error: deterministic: expected true or false, got 'yes please'\n"
             "%1$s/x.yaml:4:9: error: data.bias: expected a number in [0, 1], got 1.5\n"
             "%1$s/x.yaml:5:14: error: data.threshold: expected an integer in [0, 255], got "
             "'3.5'\n"
             "%1$s/x.yaml:6:12: error: data.texture: expected lo <= hi, got [0.9, 0.4]\n"
             "%1$s/x.yaml:8:36: error: layer #1 (conv2d): filters: expected an integer in [1, "
             "65536], got 0\n"
             "%1$s/x.yaml:8:59: error: layer #2 (dropout): p: expected a number in [0, 0.999], "
             "got 'high'\n"
             "%1$s/x.yaml:10:11: error: train.epochs: expected an integer >= 1, got 'two'\n"
             "%1$s/x.yaml:11:14: error: train.optimizer: expected one of adam|adamw|sgd, got "
             "'adamm' (did you mean 'adam'?)\n"
             "%1$s/x.yaml:12:7: error: train.lr: expected a number >= 0, got a list\n");
}

Test(spec, error_missing_required)
{
    expect_x("model:\n"
             "  layers:\n"
             "    - {type: relu}\n"
             "    - type: conv2d\n"
             "      name: conv1\n"
             "    - {name: x}\n"
             "train: {}\n",
             "%1$s/x.yaml:4:7: error: layer 'conv1' (conv2d): missing required key 'filters'\n"
             "%1$s/x.yaml:6:7: error: layer 'x': missing required key 'type'\n");
    expect_x("model: {name: m}\ntrain: {}\n",
             "%1$s/x.yaml:1:8: error: model: missing required key 'layers'\n");
    expect_x("load: {model: main}\n", "%1$s/x.yaml:1:7: error: load: missing required key 'run'\n");
}

Test(spec, error_unknown_layer_type)
{
    expect_x("model:\n  layers:\n    - {type: relu}\n    - {type: relu}\n    - {type: relu}\n"
             "    - {type: conv3d}\ntrain: {}\n",
             "%1$s/x.yaml:6:14: error: layer #4: unknown type 'conv3d' (did you mean "
             "'conv2d'?); valid types: conv2d, linear, relu, maxpool2d, avgpool2d, "
             "global_avg_pool, flatten, dropout, batchnorm, add, basic_block, grl\n");
}

Test(spec, error_unknown_analysis_type_and_duplicate_names)
{
    expect_x("analyses:\n"
             "  - {type: samples}\n"
             "  - {type: samples}\n"
             "  - {type: samples, name: more}\n"
             "  - {type: probe, name: more}\n"
             "  - {type: prob}\n",
             "%1$s/x.yaml:3:5: error: analysis #2 (samples): the analysis at line 2 is already "
             "named 'samples'; give this one a 'name'\n"
             "%1$s/x.yaml:5:25: error: analysis 'more' (probe): name 'more' is already used by "
             "the analysis at line 4\n"
             "%1$s/x.yaml:6:12: error: analysis #5: unknown type 'prob' (did you mean 'probe'?); "
             "valid types: samples, probe, colour_stats, filters, activations, gradcam, saliency, attention_mass, attack, sae, sae_intervene\n");
}

Test(spec, error_duplicate_layer_name)
{
    expect_x("model:\n"
             "  layers:\n"
             "    - {type: conv2d, name: conv1, filters: 4}\n"
             "    - {type: relu, name: conv1}\n"
             "train: {}\n",
             "%1$s/x.yaml:4:26: error: layer 'conv1' (relu): name 'conv1' is already used by "
             "the layer at line 3\n");
}

Test(spec, error_from)
{
    expect_x("model:\n"
             "  layers:\n"
             "    - {type: relu, from: [a, b]}\n"
             "    - {type: add, from: [a, b, c]}\n"
             "    - {type: relu, from: {x: 1}}\n"
             "train: {}\n",
             "%1$s/x.yaml:3:26: error: layer #1 (relu): from: relu takes 1 input, got 2 names\n"
             "%1$s/x.yaml:4:25: error: layer #2 (add): from: add takes 2 inputs, got 3 names\n"
             "%1$s/x.yaml:5:26: error: layer #3 (relu): from: expected a node name or a list of "
             "1..1 names, got a mapping\n");
}

Test(spec, error_sections_and_lists)
{
    expect_x("model:\n  layers: [{type: relu}]\n",
             "%1$s/x.yaml:1:1: error: a model needs a 'train' or a 'load' section\n");
    expect_x("model:\n  layers: [{type: relu}]\ntrain: {}\nload: {run: a}\n",
             "%1$s/x.yaml:4:1: error: 'train' and 'load' exclude each other; keep one "
             "(`train: ~` drops an inherited one), or set load.if_missing: train to train only "
             "when the run does not exist\n");
    expect_x("model:\n  layers: [{type: relu}]\nload: {run: r.h5, if_missing: train}\n",
             "%1$s/x.yaml:3:1: error: load.if_missing: train needs a 'train' section\n");
    expect_x("train: {}\n", "%1$s/x.yaml:1:1: error: there is no 'model' to train\n");
    expect_x("model:\n  layers: [{type: relu}]\n"
             "train:\n  eval: [val, tset]\n"
             "  losses:\n    - {type: cross_entropy, target: color}\n    - {type: mse}\n",
             "%1$s/x.yaml:4:15: error: train.eval: expected one of train|val|test, got 'tset' "
             "(did you mean 'test'?)\n"
             "%1$s/x.yaml:6:37: error: loss #1: target: expected one of digit|colour, got "
             "'color' (did you mean 'colour'?)\n"
             "%1$s/x.yaml:7:14: error: loss #2: type: expected one of "
             "cross_entropy|neg_cross_entropy|saliency, got 'mse'\n");
    expect_x("model:\n  layers: []\ntrain: {}\n",
             "%1$s/x.yaml:2:11: error: model.layers: expected a list of layers, got an empty "
             "list\n");
    expect_x("data: 5\n", "%1$s/x.yaml:1:7: error: data: expected a mapping of keys, got '5'\n");
}

Test(spec, error_yaml_syntax)
{
    expect_x("train:\n  epochs: 1\n  batch: [1\n",
             "%1$s/x.yaml:4:1: error: did not find expected ',' or ']' (while parsing a flow "
             "sequence at line 3)\n");
    expect_x("a: b: c\n", "%1$s/x.yaml:1:5: error: mapping values are not allowed in this context\n");
    expect_x("seed: 1\nseed: 2\n", "%1$s/x.yaml:2:1: error: duplicate key 'seed' (first at line 1)\n");
    expect_x("- 1\n", "%1$s/x.yaml:1:1: error: expected a mapping of keys at the top of the file\n");
    expect_x("a: 1\n---\nb: 2\n",
             "%1$s/x.yaml:2:1: error: more than one YAML document; a spec is one document\n");
}

Test(spec, error_missing_files_and_cycles)
{
    expect_errors("nope.yaml", NULL, "%1$s/nope.yaml: error: cannot open: No such file or directory\n");
    put("x.yaml", "seed: 1\nextends: sub/base.yaml\n");
    expect_errors("x.yaml", NULL,
                  "%1$s/x.yaml:2:10: error: cannot open 'sub/base.yaml' (resolved to "
                  "%1$s/sub/base.yaml)\n");
    put("y.yaml", "model:\n  include: m.yaml\ntrain: {}\n");
    expect_errors("y.yaml", NULL,
                  "%1$s/y.yaml:2:12: error: cannot open 'm.yaml' (resolved to %1$s/m.yaml)\n");
    put("a.yaml", "extends: b.yaml\n");
    put("b.yaml", "extends: a.yaml\n");
    expect_errors("a.yaml", NULL,
                  "%1$s/b.yaml:1:10: error: extends cycle: %1$s/a.yaml -> %1$s/b.yaml -> "
                  "%1$s/a.yaml\n");
    put("self.yaml", "extends: self.yaml\n");
    expect_errors("self.yaml", NULL,
                  "%1$s/self.yaml:1:10: error: extends cycle: %1$s/self.yaml -> %1$s/self.yaml\n");
}

Test(spec, all_errors_are_collected)
{
    put("x.yaml", "sed: 1\ndata: {bias: 2}\nmodel:\n  layers: [{type: relu, p: 1}, {type: nope}]\n"
                  "train: {epochs: 0, optimizer: rmsprop}\n");
    struct outcome o = load("x.yaml");
    cr_assert_eq(o.rc, -1);
    cr_assert_eq(o.n, 6, "%s", o.errors);
    cr_assert(strstr(o.err.msg, "unknown key 'sed'"), "first error in err: %s", o.err.msg);
    cr_assert_null(strchr(o.err.msg, '\n'));
    done(&o);

    /* errors == NULL: still counted, the first in err */
    struct rn_spec *s = calloc(1, sizeof *s);
    struct rn_error err;
    int n = 0;
    char path[512];
    snprintf(path, sizeof path, "%s/x.yaml", dir);
    cr_assert_eq(rn_spec_load(s, path, NULL, NULL, &n, &err), -1);
    cr_assert_eq(n, 6);
    cr_assert(strstr(err.msg, "unknown key 'sed'"));
    cr_assert_null(s->resolved);
    rn_spec_free(s);
    free(s);
}

/* ---- overrides ---------------------------------------------------------------- */

Test(spec, overrides_apply)
{
    put("models/m.yaml", "name: m\nlayers:\n  - {type: relu}\n  - {type: relu}\n  - {type: relu}\n"
                         "  - {type: conv2d, filters: 32}\n");
    put("x.yaml", "model: {include: models/m.yaml}\ntrain: {epochs: 1}\n");
    const char *ov[] = {"train.epochs=2",
                        "model.layers.3.filters=8",
                        "data.texture=[1,1]",
                        "train.lr=0.5",        /* not in the file */
                        "analyses=[{type: samples, n: 3}]",
                        "description=a: b, c", /* taken as written */
                        "name='quoted'",
                        "train.epochs=4",       /* the last one wins */
                        NULL};
    struct outcome o = load_ov("x.yaml", ov);
    cr_assert_eq(o.rc, 0, "%s", o.errors);
    const struct rn_spec *s = o.spec;
    cr_assert_eq(s->train.epochs, 4);
    const struct rn_spec_layer *l = &s->model.layers[3];
    cr_assert_eq(LNUM(l, "filters"), 8);
    cr_assert_float_eq(s->data.noise_lo, 1.0f, 0);
    cr_assert_float_eq(s->data.noise_hi, 1.0f, 0);
    cr_assert_float_eq(s->train.lr, 0.5, 0);
    cr_assert_eq(s->n_analyses, 1);
    cr_assert_eq(LNUM(&s->analyses[0], "n"), 3);
    cr_assert_str_eq(s->description, "a: b, c");
    cr_assert_str_eq(s->name, "quoted");
    done(&o);

    /* an override can create a section the file does not have */
    put("y.yaml", "seed: 1\n");
    const char *ov2[] = {"data.bias=0.5", NULL};
    o = load_ov("y.yaml", ov2);
    cr_assert_eq(o.rc, 0, "%s", o.errors);
    cr_assert_float_eq(o.spec->data.bias, 0.5, 0);
    done(&o);

    /* model.include itself can be overridden (relative to the working directory) */
    put("z.yaml", "model: {include: nope.yaml}\ntrain: {}\n");
    char inc[600];
    snprintf(inc, sizeof inc, "model.include=%s/models/m.yaml", dir);
    const char *ov3[] = {inc, NULL};
    o = load_ov("z.yaml", ov3);
    cr_assert_eq(o.rc, 0, "%s", o.errors);
    cr_assert_eq(o.spec->model.n_layers, 4);
    done(&o);
}

Test(spec, override_errors)
{
    put("x.yaml", "model:\n  layers: [{type: relu}, {type: conv2d, filters: 3}]\ntrain: {epochs: 1}\n");
    const char *ov[] = {"train.epoch=2",
                        "foo",
                        "train.epochs=two",
                        "model.layers.5.filters=1",
                        "model.layers.1.filtres=8",
                        "train.epochs.x=1",
                        "data.texture=[1, 1",
                        "=3",
                        "trian.epochs=2",
                        "extends=other.yaml",
                        NULL};
    expect_errors("x.yaml", ov,
                  "override 'train.epoch=2': unknown key 'epoch' in train (did you mean "
                  "'epochs'?)\n"
                  "override 'foo': expected key.path=value\n"
                  "override 'train.epochs=two': expected an integer >= 1, got 'two'\n"
                  "override 'model.layers.5.filters=1': 'model.layers' has 2 items; '5' is not an "
                  "index 0..1\n"
                  "override 'model.layers.1.filtres=8': unknown key 'filtres' in layer #2 "
                  "(conv2d) (did you mean 'filters'?)\n"
                  "override 'train.epochs.x=1': 'train.epochs' is a single value, not a mapping or "
                  "list\n"
                  "override 'data.texture=[1, 1': cannot parse the value: did not find expected "
                  "',' or ']'\n"
                  "override '=3': expected key.path=value\n"
                  "override 'trian.epochs=2': unknown key 'trian' (did you mean 'train'?)\n"
                  "override 'extends=other.yaml': extends cannot be set by an override; write it "
                  "in the file\n");
}

/* ---- resolved YAML ------------------------------------------------------------- */

static void same_values(const struct rn_key *keys, int n, const struct rn_values *a,
                        const struct rn_values *b)
{
    for (int i = 0; i < n; i++) {
        cr_assert_eq(a->num[i], b->num[i], "key %s", keys[i].key);
        cr_assert_str_eq(a->str[i], b->str[i], "key %s", keys[i].key);
        cr_assert_eq(a->n_ints[i], b->n_ints[i]);
        cr_assert_eq(memcmp(a->ints[i], b->ints[i], sizeof a->ints[i]), 0);
    }
}

static void same_spec(const struct rn_spec *a, const struct rn_spec *b)
{
    cr_assert_str_eq(a->name, b->name);
    cr_assert_str_eq(a->description, b->description);
    cr_assert_eq(a->seed, b->seed);
    cr_assert_str_eq(a->device, b->device);
    cr_assert_eq(a->threads, b->threads);
    cr_assert_eq(a->deterministic, b->deterministic);
    cr_assert_str_eq(a->out, b->out);
    const struct rn_data_config *da = &a->data, *db = &b->data;
    cr_assert_str_eq(da->source, db->source);
    cr_assert_str_eq(da->dir, db->dir);
    cr_assert_eq(da->colouring, db->colouring);
    cr_assert_eq(da->noise_lo, db->noise_lo);
    cr_assert_eq(da->noise_hi, db->noise_hi);
    cr_assert_eq(da->threshold, db->threshold);
    cr_assert_eq(memcmp(&da->palette, &db->palette, sizeof da->palette), 0);
    cr_assert_eq(da->bias, db->bias);
    cr_assert_eq(da->test_rule, db->test_rule);
    cr_assert_eq(da->val_fraction, db->val_fraction);
    cr_assert_eq(da->train_limit, db->train_limit);
    cr_assert_eq(da->test_limit, db->test_limit);
    cr_assert_eq(da->seed, db->seed);
    cr_assert_eq(a->has_model, b->has_model);
    cr_assert_str_eq(a->model.name, b->model.name);
    cr_assert_eq(a->model.n_layers, b->model.n_layers);
    for (int i = 0; i < a->model.n_layers; i++) {
        const struct rn_spec_layer *la = &a->model.layers[i], *lb = &b->model.layers[i];
        cr_assert_eq(la->type, lb->type);
        cr_assert_str_eq(la->name, lb->name);
        cr_assert_eq(la->n_from, lb->n_from);
        for (int j = 0; j < la->n_from; j++)
            cr_assert_str_eq(la->from[j], lb->from[j]);
        same_values(la->type->keys, la->type->n_keys, &la->v, &lb->v);
    }
    cr_assert_eq(a->has_train, b->has_train);
    const struct rn_spec_train *ta = &a->train, *tb = &b->train;
    cr_assert_eq(ta->epochs, tb->epochs);
    cr_assert_eq(ta->batch, tb->batch);
    cr_assert_eq(ta->eval_batch, tb->eval_batch);
    cr_assert_str_eq(ta->optimizer, tb->optimizer);
    cr_assert_eq(ta->lr, tb->lr);
    cr_assert_eq(ta->beta1, tb->beta1);
    cr_assert_eq(ta->beta2, tb->beta2);
    cr_assert_eq(ta->eps, tb->eps);
    cr_assert_eq(ta->weight_decay, tb->weight_decay);
    cr_assert_eq(ta->momentum, tb->momentum);
    cr_assert_eq(ta->shuffle, tb->shuffle);
    cr_assert_eq(ta->log_every, tb->log_every);
    cr_assert_eq(ta->n_losses, tb->n_losses);
    for (int i = 0; i < ta->n_losses; i++) {
        cr_assert_str_eq(ta->losses[i].type, tb->losses[i].type);
        cr_assert_str_eq(ta->losses[i].on, tb->losses[i].on);
        cr_assert_str_eq(ta->losses[i].target, tb->losses[i].target);
        cr_assert_eq(ta->losses[i].weight, tb->losses[i].weight);
    }
    cr_assert_eq(ta->n_eval, tb->n_eval);
    for (int i = 0; i < ta->n_eval; i++)
        cr_assert_str_eq(ta->eval[i], tb->eval[i]);
    cr_assert_str_eq(a->load.run, b->load.run);
    cr_assert_str_eq(a->load.model, b->load.model);
    cr_assert_eq(a->n_analyses, b->n_analyses);
    for (int i = 0; i < a->n_analyses; i++) {
        cr_assert_eq(a->analyses[i].type, b->analyses[i].type);
        cr_assert_str_eq(a->analyses[i].name, b->analyses[i].name);
        same_values(a->analyses[i].type->keys, a->analyses[i].type->n_keys, &a->analyses[i].v,
                    &b->analyses[i].v);
    }
}

static void round_trip(const char *name, const char *const *overrides)
{
    struct outcome o = load_ov(name, overrides);
    cr_assert_eq(o.rc, 0, "%s", o.errors);
    put("resolved.yaml", o.spec->resolved);
    struct outcome r = load("resolved.yaml");
    cr_assert_eq(r.rc, 0, "resolved YAML does not load:\n%s\n%s", r.errors, o.spec->resolved);
    same_spec(o.spec, r.spec);
    cr_assert_str_eq(o.spec->resolved, r.spec->resolved);
    done(&o);
    done(&r);
}

Test(spec, resolved_round_trip)
{
    put("full.yaml", full_spec);
    round_trip("full.yaml", NULL);
    const char *ov[] = {"train.lr=0.1234567891234", "description=tab\there \"q\" \\ x",
                        "data.texture=[0.3, 0.7]", "seed=18446744073709551615",
                        "model.layers.1.name=yes", "train.optimizer=adamw", NULL};
    round_trip("full.yaml", ov);
    put("data.yaml", "data: {colouring: none}\n");
    round_trip("data.yaml", NULL);
    put("load.yaml",
        "model: {name: m, layers: [{type: linear, units: 3, name: '0dd: name'}]}\n"
        "load: {run: results/x/run.h5, model: best}\n");
    round_trip("load.yaml", NULL);
}

Test(spec, resolved_has_every_default)
{
    put("x.yaml", "model:\n  layers: [{type: conv2d, filters: 4}]\ntrain: {}\n"
                  "analyses: [{type: probe}]\n");
    struct outcome o = load("x.yaml");
    cr_assert_eq(o.rc, 0, "%s", o.errors);
    const char *r = o.spec->resolved;
    const char *want[] = {"name: x\n", "seed: 0\n", "device: auto\n", "out: results\n",
                          "  texture: [0.4, 1]\n", "  val_fraction: 0.1\n", "  seed: 0\n",
                          "    - {type: conv2d, name: \"\", filters: 4, kernel: 3, stride: 1, "
                          "padding: 0, bias: true}\n",
                          "  eps: 1e-08\n", "  eval: [val, test]\n",
                          "    - {type: cross_entropy, name: digit, on: \"\", target: digit, "
                          "weight: 1}\n",
                          "  - {type: probe, name: probe, digit: 1, colour: red, split: test, "
                          "index: -1}\n"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_assert(strstr(r, want[i]), "missing '%s' in:\n%s", want[i], r);
    done(&o);
}

Test(spec, an_empty_spec_is_an_error)
{
    const char *texts[] = {"", "---\n", "# only a comment\n# and another\n", "--- ~\n",
                           "---\n# c\n...\n"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
        expect_x(texts[i], "%1$s/x.yaml: error: the spec is empty; expected at least a `data:` "
                           "section (or `extends:` a spec)\n");
    /* a base file may be empty: the experiment says something */
    put("base.yaml", "# nothing yet\n");
    put("y.yaml", "extends: base.yaml\n");
    struct outcome o = load("y.yaml");
    cr_assert_eq(o.rc, 0, "%s", o.errors);
    done(&o);
}

/* ---- specs given as text ----------------------------------------------------------- */

/* rn_spec_load_text into a fresh outcome. */
static struct outcome load_text(const char *text, const char *name, const char *in_dir,
                                const char *const *overrides)
{
    struct outcome o = {0};
    size_t size = 0;
    o.spec = calloc(1, sizeof *o.spec);
    cr_assert_not_null(o.spec);
    FILE *f = open_memstream(&o.errors, &size);
    cr_assert_not_null(f);
    o.rc = rn_spec_load_text(o.spec, text, name, in_dir, overrides, f, &o.n, &o.err);
    fclose(f);
    return o;
}

/* load_text(text).resolved == want (want: text itself when NULL). */
static void text_round_trip(const char *text, const char *name)
{
    struct outcome o = load_text(text, name, NULL, NULL);
    cr_assert_eq(o.rc, 0, "%s does not load as text:\n%s", name, o.errors);
    cr_assert_str_eq(o.spec->resolved, text, "%s: the resolved text differs", name);
    cr_assert_str_eq(o.spec->file, name);
    done(&o);
}

Test(spec_text, a_recorded_config_round_trips)
{
    /* a run file's /config yaml, as a run wrote it */
    struct rn_results *r = NULL;
    struct rn_error err;
    char *yaml = NULL;
    cr_assert_eq(rn_results_open(&r, RN_FIXTURES "/interp_ref.h5", &err), 0, "%s", err.msg);
    cr_assert_eq(rn_results_get_attr_str(r, "/config", "yaml", &yaml, &err), 0, "%s", err.msg);
    rn_results_close(r);
    struct outcome o = load_text(yaml, "interp_ref.h5:/config", NULL, NULL);
    cr_assert_eq(o.rc, 0, "%s", o.errors);
    cr_assert(o.spec->has_model && o.spec->model.n_layers > 0);
    text_round_trip(o.spec->resolved, "again");
    done(&o);
    free(yaml);
    /* and the experiments' resolved specs, as a run records them */
    const char *exps[] = {"task1_lazy", "task3_gradcam", "task4_m2", "task4_m3", "task0_dataset",
                          "task3_saliency_compare"};
    for (size_t i = 0; i < sizeof exps / sizeof exps[0]; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/experiments/%s.yaml", RN_SOURCE_DIR, exps[i]);
        struct outcome f = {0};
        f.spec = calloc(1, sizeof *f.spec);
        cr_assert_not_null(f.spec);
        cr_assert_eq(rn_spec_load(f.spec, path, NULL, NULL, NULL, &f.err), 0, "%s", f.err.msg);
        text_round_trip(f.spec->resolved, exps[i]);
        done(&f);
    }
}

Test(spec_text, names_paths_and_errors, .init = setup, .fini = teardown)
{
    /* errors name the text by its name; the default `name:` comes from it */
    struct outcome o = load_text("seed: 1\ndata: {bias: 2}\n", "runs/a.yaml", NULL, NULL);
    cr_assert_eq(o.rc, -1);
    cr_assert_str_eq(o.errors, "runs/a.yaml:2:14: error: data.bias: expected a number in [0, 1], "
                               "got 2\n");
    done(&o);
    const char *ov[] = {"seed=3", NULL};
    o = load_text("data: {bias: 0.5}\n", "runs/a.yaml", NULL, ov);
    cr_assert_eq(o.rc, 0, "%s", o.errors);
    cr_assert_str_eq(o.spec->name, "a");
    cr_assert_eq(o.spec->seed, 3);
    done(&o);
    o = load_text("# nothing\n", "run.h5:/config", NULL, NULL);
    cr_assert_str_eq(o.errors, "run.h5:/config: error: the spec is empty; expected at least a "
                               "`data:` section (or `extends:` a spec)\n");
    done(&o);

    /* relative paths: against the folder given, refused without one */
    put("base.yaml", "data: {bias: 0.25}\n");
    put("models/m.yaml", "name: m\nlayers: [{type: flatten}, {type: linear, units: 10}]\n");
    const char *text = "extends: base.yaml\nmodel: {include: models/m.yaml}\ntrain: {}\n";
    o = load_text(text, "t", NULL, NULL);
    cr_assert_str_eq(o.errors, "t:1:10: error: extends: cannot follow 'base.yaml': this spec was "
                               "given as text, with no folder for its relative paths (give the "
                               "folder, or an absolute path)\n");
    done(&o);
    o = load_text(text, "t", dir, NULL);
    cr_assert_eq(o.rc, 0, "%s", o.errors);
    cr_assert_float_eq(o.spec->data.bias, 0.25, 0);
    cr_assert_str_eq(o.spec->model.name, "m");
    done(&o);
    o = load_text("data: {}\nmodel: {include: models/m.yaml}\ntrain: {}\n", "t", NULL, NULL);
    cr_assert_str_eq(o.errors, "t:2:18: error: model.include: cannot follow 'models/m.yaml': this "
                               "spec was given as text, with no folder for its relative paths "
                               "(give the folder, or an absolute path)\n");
    done(&o);
    char abs_text[1024];
    snprintf(abs_text, sizeof abs_text, "extends: %s/base.yaml\n", dir);
    o = load_text(abs_text, "t", NULL, NULL);
    cr_assert_eq(o.rc, 0, "%s", o.errors);
    cr_assert_float_eq(o.spec->data.bias, 0.25, 0);
    done(&o);
}

/* ---- the loss, schedule and optimizer registries ---------------------------------- */

/* names joined by '|' */
static void join(char *buf, size_t size, const char *const *names, int n)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(buf + len, size - len, "%s%s", i ? "|" : "", names[i]);
}

Test(spec_registries, choices_are_the_registries_names)
{
    char buf[256];
    const char *names[16];
    for (int i = 0; i < rn_n_optim_types; i++) {
        names[i] = rn_optim_types[i].name;
        cr_assert_eq((int)rn_optim_types[i].kind, i, "optimizer registry in enum order");
        cr_assert_eq(rn_optim_type_find(names[i]), &rn_optim_types[i]);
    }
    join(buf, sizeof buf, names, rn_n_optim_types);
    cr_assert_str_eq(buf, RN_OPTIM_CHOICES);
    for (int i = 0; i < rn_n_loss_types; i++) {
        names[i] = rn_loss_types[i].name;
        cr_assert_eq((int)rn_loss_types[i].kind, i, "loss registry in enum order");
        cr_assert_eq(rn_loss_type_find(names[i]), &rn_loss_types[i]);
    }
    join(buf, sizeof buf, names, rn_n_loss_types);
    cr_assert_str_eq(buf, RN_LOSS_CHOICES);
    join(buf, sizeof buf, rn_target_names, rn_n_targets);
    cr_assert_str_eq(buf, RN_TARGET_CHOICES);
    cr_assert_eq(rn_target_find("colour"), RN_TARGET_COLOUR);
    cr_assert_eq(rn_target_find("color"), -1);
    for (int i = 0; i < rn_n_schedule_types; i++) {
        cr_assert_eq((int)rn_schedule_types[i].kind, i, "schedule registry in enum order");
        cr_assert_eq(rn_schedule_type_find(rn_schedule_types[i].name), &rn_schedule_types[i]);
    }
    cr_assert_null(rn_optim_type_find("adamx"));
    cr_assert_null(rn_loss_type_find("mse"));
    cr_assert_null(rn_schedule_type_find("cosine"));
}

Test(spec_registries, unknown_optimizer_lists_the_valid_ones)
{
    struct rn_error err;
    enum rn_optim_kind k = RN_OPTIM_SGD;
    cr_assert_eq(rn_optim_kind_of("adamw", &k, &err), 0);
    cr_assert_eq(k, RN_OPTIM_ADAMW);
    cr_assert_eq(rn_optim_kind_of("adan", &k, &err), -1);
    cr_assert_str_eq(err.msg, "unknown optimizer 'adan' (did you mean 'adam'?); valid optimizers: "
                              "adam, adamw, sgd");
    cr_assert_eq(rn_optim_kind_of("rmsprop", &k, &err), -1);
    cr_assert_str_eq(err.msg, "unknown optimizer 'rmsprop'; valid optimizers: adam, adamw, sgd");
}

Test(spec_registries, the_spec_resolves_the_kinds, .init = setup, .fini = teardown)
{
    put("x.yaml", "model: {layers: [{type: flatten}, {type: linear, units: 10, name: h}]}\n"
                  "train:\n  optimizer: adamw\n"
                  "  schedules: [{name: s, type: step, at: 0.5, after: 1}]\n"
                  "  losses: [{type: neg_cross_entropy, target: colour}, {type: saliency}]\n"
                  "  optimizers: [{name: o, type: sgd}]\n");
    struct outcome o = load("x.yaml");
    cr_assert_eq(o.rc, 0, "%s", o.errors);
    const struct rn_spec_train *t = &o.spec->train;
    cr_assert_eq(t->optimizer_kind, RN_OPTIM_ADAMW);
    cr_assert_eq(t->optimizers[0].kind, RN_OPTIM_SGD);
    cr_assert_eq(t->schedules[0].kind, RN_SCHEDULE_STEP);
    cr_assert_eq(t->losses[0].kind, RN_LOSS_NEG_CE);
    cr_assert_eq(t->losses[0].target_kind, RN_TARGET_COLOUR);
    cr_assert_eq(t->losses[1].kind, RN_LOSS_SALIENCY);
    cr_assert_eq(t->losses[1].target_kind, RN_TARGET_DIGIT);
    done(&o);
    put("y.yaml", "model: {layers: [{type: flatten}, {type: linear, units: 10}]}\ntrain: {}\n");
    o = load("y.yaml");
    cr_assert_eq(o.rc, 0, "%s", o.errors);
    cr_assert_eq(o.spec->train.optimizer_kind, RN_OPTIM_ADAM);
    cr_assert_eq(o.spec->train.losses[0].kind, RN_LOSS_CE);
    cr_assert_eq(o.spec->train.losses[0].target_kind, RN_TARGET_DIGIT);
    done(&o);
}

/* ---- helpers and the reference ----------------------------------------------------- */

Test(spec_nearest, did_you_mean)
{
    const char *keys[] = {"filters", "kernel", "stride", "padding", "bias"};
    cr_assert_str_eq(rn_nearest("filtres", keys, 5), "filters");
    cr_assert_str_eq(rn_nearest("kernal", keys, 5), "kernel");
    cr_assert_str_eq(rn_nearest("pading", keys, 5), "padding");
    cr_assert_str_eq(rn_nearest("bias", keys, 5), "bias");
    cr_assert_null(rn_nearest("momentum", keys, 5));
    cr_assert_null(rn_nearest("x", keys, 0));
    const char *opt[] = {"adam", "adamw", "sgd"};
    cr_assert_str_eq(rn_nearest("adamm", opt, 3), "adam", "ties go to the first");
    cr_assert_str_eq(rn_nearest("sdg", opt, 3), "sgd");
    /* longer words allow more edits: strlen/3 */
    const char *long_words[] = {"global_avg_pool"};
    cr_assert_str_eq(rn_nearest("globl_avrg_pol", long_words, 1), "global_avg_pool");
    cr_assert_null(rn_nearest("gap", long_words, 1));
}

/* noinline: GCC 12 otherwise warns that buf, set by open_memstream, may dangle */
__attribute__((noinline)) static char *reference(void)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    rn_spec_write_reference(f);
    fclose(f);
    return buf;
}

Test(spec_reference, lists_every_key)
{
    char *r = reference();
    cr_assert(strstr(r, "## train\n"));
    cr_assert(strstr(r, "| `epochs` | integer | 1 | >= 1 | passes over the train split |"), "%s", r);
    cr_assert(strstr(r, "| `optimizer` | choice | `adam` | adam, adamw, sgd |"));
    cr_assert(strstr(r, "| `texture` | [number, number] | [0.4, 1.0] |"));
    for (int i = 0; i < rn_n_layer_types; i++) {
        char h[128];
        snprintf(h, sizeof h, "### %s\n", rn_layer_types[i]->name);
        cr_assert(strstr(r, h), "no section for layer %s", rn_layer_types[i]->name);
        for (int k = 0; k < rn_layer_types[i]->n_keys; k++) {
            snprintf(h, sizeof h, "| `%s` |", rn_layer_types[i]->keys[k].key);
            cr_assert(strstr(strstr(r, "## Layer types"), h));
        }
    }
    cr_assert(strstr(r, "| `filters` | integer | required | [1, 65536] | output channels |"));
    for (int i = 0; i < rn_n_analysis_types; i++) {
        char h[128];
        snprintf(h, sizeof h, "### %s\n", rn_analysis_types[i]->name);
        cr_assert(strstr(r, h));
    }
    free(r);
}

/* docs/spec.md is generated; this fails when a schema changed without
 * regenerating it. RN_UPDATE_REFERENCE=1 rewrites the file. */
Test(spec_reference, docs_spec_md_is_current)
{
    char *r = reference();
    const char *path = RN_SOURCE_DIR "/docs/spec.md";
    if (getenv("RN_UPDATE_REFERENCE")) {
        FILE *f = fopen(path, "w");
        cr_assert_not_null(f);
        fputs(r, f);
        fclose(f);
    }
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s is missing; run this test with RN_UPDATE_REFERENCE=1", path);
    char *doc = NULL;
    size_t size = 0;
    FILE *m = open_memstream(&doc, &size);
    int c;
    while ((c = fgetc(f)) != EOF)
        fputc(c, m);
    fclose(m);
    fclose(f);
    cr_assert(strcmp(doc, r) == 0,
              "docs/spec.md is out of date; rerun test_spec with RN_UPDATE_REFERENCE=1");
    free(doc);
    free(r);
}
