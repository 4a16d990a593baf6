/* The analysis registry (runner/analysis.c, runner/analyses/):
 *  - every registered type is whole: a schema without holes, a run function
 *    and a figure writer, names unique;
 *  - the checks made before training (rn_analyses_check): each class of bad
 *    node or class with its exact message and position, nodes of models
 *    loaded from other runs left to their loading, and for every type with
 *    a `node` key a misspelt node refused (so a new type cannot forget it);
 *  - `runner validate` reports a misspelt Grad-CAM node, and a run refuses
 *    it before training, without creating its run directory.
 */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runner/analysis.h"
#include "runner/graph.h"
#include "runner/spec.h"
#include "sh.h"

static char dir[64];

static void make_dir(void)
{
    snprintf(dir, sizeof dir, "/tmp/rn_analyses_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void remove_dir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_expect_eq(system(cmd), 0);
}

TestSuite(check, .init = make_dir, .fini = remove_dir);
TestSuite(cli, .init = make_dir, .fini = remove_dir, .timeout = 120);

/* Writes text to <dir>/<name>; the path goes into path. */
static void put(const char *name, const char *text, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    fputs(text, f);
    fclose(f);
}

/* A model of the interpretability tests and the given analyses, as x.yaml:
 * the analyses start at line 6. */
static const char *spec_head = "name: x\n"
                               "data: {colouring: background}\n"
                               "model: {include: " RN_FIXTURES "/interp_model.yaml}\n"
                               "load: {run: " RN_FIXTURES "/interp_ref.h5}\n"
                               "analyses:\n";

/* Loads <head><analyses> and checks its analyses against its graph (none
 * when the spec has no model); the first error into msg, "" when none. */
static int check_spec(const char *head, const char *analyses, char *msg, size_t cap)
{
    char text[4096], path[256], errs[2048] = "";
    snprintf(text, sizeof text, "%s%s", head, analyses);
    put("x.yaml", text, path, sizeof path);
    struct rn_spec *s = calloc(1, sizeof *s);
    cr_assert_not_null(s);
    struct rn_error err = {0};
    int n = 0;
    FILE *ef = fmemopen(errs, sizeof errs, "w");
    int rc = rn_spec_load(s, path, NULL, ef, &n, &err);
    fclose(ef);
    cr_assert_eq(rc, 0, "%s", errs);
    struct rn_graph g;
    struct rn_shape in = {3, 28, 28};
    if (s->has_model)
        cr_assert_eq(rn_graph_build(&g, &s->model, in, 1, &err), 0, "%s", err.msg);
    err.msg[0] = '\0';
    rc = rn_analyses_check(s, s->has_model ? &g : NULL, s->has_model ? g.n_nodes - 1 : -1, &err);
    snprintf(msg, cap, "%s", rc ? err.msg : "");
    if (s->has_model)
        rn_graph_free(&g);
    rn_spec_free(s);
    free(s);
    return rc;
}

/* Expects the check of analyses to fail with exactly "<dir>/x.yaml:<want>". */
static void expect_error(const char *head, const char *analyses, const char *want)
{
    char msg[RN_ERROR_MAX], full[RN_ERROR_MAX];
    cr_expect_neq(check_spec(head, analyses, msg, sizeof msg), 0, "no error for %s", analyses);
    snprintf(full, sizeof full, "%s/x.yaml:%s", dir, want);
    cr_expect_str_eq(msg, full);
}

/* ---- the registry ---------------------------------------------------------- */

Test(registry, every_type_is_whole_and_found_by_name)
{
    cr_assert_eq(rn_n_analysis_types, 11);
    for (int i = 0; i < rn_n_analysis_types; i++) {
        const struct rn_analysis_type *t = rn_analysis_types[i];
        cr_expect(t->name && t->doc && t->run && t->plot, "type %d is incomplete", i);
        cr_expect_eq(rn_analysis_type_find(t->name), t, "%s", t->name);
        cr_expect(t->n_keys >= 1 && t->n_keys <= RN_MAX_KEYS, "%s: %d keys", t->name, t->n_keys);
        for (int j = 0; j < t->n_keys; j++) {
            /* a designated initializer left out leaves a hole of zeros */
            cr_expect(t->keys[j].key && t->keys[j].doc, "%s: key %d has no name or doc", t->name,
                      j);
            for (int q = 0; q < j && t->keys[j].key; q++)
                cr_expect(strcmp(t->keys[q].key, t->keys[j].key), "%s: key '%s' twice", t->name,
                          t->keys[j].key);
        }
        for (int q = 0; q < i; q++)
            cr_expect(strcmp(rn_analysis_types[q]->name, t->name), "'%s' twice", t->name);
    }
    cr_expect_null(rn_analysis_type_find("gradcamm"));
}

/* ---- checks before training ------------------------------------------------- */

Test(check, valid_analyses_pass)
{
    char msg[RN_ERROR_MAX];
    int rc = check_spec(spec_head,
                        "  - {type: filters, node: conv2}\n"
                        "  - {type: activations, node: relu1}\n"
                        "  - {type: gradcam, node: conv3, class: 7}\n"
                        "  - {type: attention_mass, node: conv2, class: true}\n"
                        "  - {type: saliency}\n"
                        "  - {type: probe}\n"
                        "  - {type: samples}\n"
                        "  - {type: colour_stats}\n",
                        msg, sizeof msg);
    cr_expect_eq(rc, 0, "%s", msg);
}

Test(check, unknown_nodes_at_the_key)
{
    expect_error(spec_head, "  - {type: gradcam, name: cam, node: comv3}\n",
                 "6:38: error: analysis 'cam' (gradcam): unknown node 'comv3' (did you mean "
                 "'conv3'?)");
    expect_error(spec_head, "  - {type: activations, node: nope}\n",
                 "6:31: error: analysis 'activations' (activations): unknown node 'nope'; the "
                 "model's nodes: conv1, relu1, pool1, conv2, relu2, pool2, conv3, relu3, pool3, "
                 "features, dropout, fc");
    expect_error(spec_head, "  - {type: filters, node: conv_1}\n",
                 "6:27: error: analysis 'filters' (filters): unknown node 'conv_1' (did you mean "
                 "'conv1'?)");
    /* the default node, not written: at the analysis */
    expect_error("name: x\n"
                 "data: {colouring: background}\n"
                 "model: {layers: [{type: flatten, name: flat}, {type: linear, name: fc, units: "
                 "10}]}\n"
                 "load: {run: " RN_FIXTURES "/interp_ref.h5}\n"
                 "analyses:\n",
                 "  - {type: attention_mass}\n",
                 "6:5: error: analysis 'attention_mass' (attention_mass): unknown node 'conv3'; "
                 "the model's nodes: flat, fc");
}

Test(check, nodes_of_the_wrong_kind_and_classes)
{
    expect_error(spec_head, "  - {type: filters, node: relu1}\n",
                 "6:27: error: analysis 'filters' (filters): node 'relu1' is a relu; filters "
                 "draws conv2d weights");
    expect_error(spec_head, "  - {type: gradcam, node: fc}\n",
                 "6:27: error: analysis 'gradcam' (gradcam): node 'fc' gives (10,1,1): Grad-CAM "
                 "needs a spatial map before the logits (e.g. the last conv)");
    expect_error(spec_head, "  - {type: gradcam, class: 10}\n",
                 "6:28: error: analysis 'gradcam' (gradcam): expected pred, true or a class index "
                 "0-9, got '10'");
    expect_error(spec_head, "  - {type: attention_mass, models: \"a self\", node: features}\n",
                 "6:52: error: analysis 'attention_mass' (attention_mass): node 'features' gives "
                 "(8,1,1): Grad-CAM needs a spatial map before the logits (e.g. the last conv)");
}

Test(check, models_of_other_runs_are_checked_when_loaded)
{
    char msg[RN_ERROR_MAX];
    /* no run uses this run's model: its nodes are looked up in the loaded ones */
    cr_expect_eq(check_spec(spec_head,
                            "  - {type: attention_mass, node: layer4, models: \"a /no/run\"}\n",
                            msg, sizeof msg),
                 0, "%s", msg);
    cr_expect_eq(check_spec("name: x\ndata: {colouring: background}\nanalyses:\n",
                            "  - {type: saliency, models: \"a /no/run; b /no/other\"}\n", msg,
                            sizeof msg),
                 0, "%s", msg);
}

Test(check, analyses_that_need_a_model)
{
    const char *data_only = "name: x\ndata: {colouring: background}\nanalyses:\n";
    expect_error(data_only, "  - {type: gradcam, name: g}\n",
                 "4:5: error: analysis 'g' (gradcam): needs a model: add a model with train or "
                 "load");
    expect_error(data_only, "  - {type: saliency, models: \"a /no/run; me self\"}\n",
                 "4:5: error: analysis 'saliency' (saliency): needs a model: add a model with "
                 "train or load");
    expect_error(data_only, "  - {type: probe, name: p}\n",
                 "4:5: error: analysis 'p' (probe) needs a model");
    char msg[RN_ERROR_MAX];
    cr_expect_eq(check_spec(data_only, "  - {type: samples}\n  - {type: colour_stats}\n", msg,
                            sizeof msg),
                 0, "%s", msg);
}

/* Every type with a `node` key refuses a misspelt node before training. */
Test(check, every_node_key_is_checked)
{
    for (int i = 0; i < rn_n_analysis_types; i++) {
        const struct rn_analysis_type *t = rn_analysis_types[i];
        for (int j = 0; j < t->n_keys; j++) {
            if (strcmp(t->keys[j].key, "node") != 0)
                continue;
            char analyses[128], msg[RN_ERROR_MAX];
            snprintf(analyses, sizeof analyses, "  - {type: %s, node: conv9}\n", t->name);
            cr_expect_neq(check_spec(spec_head, analyses, msg, sizeof msg), 0,
                          "%s: a misspelt node passes its check", t->name);
            cr_expect(strstr(msg, "unknown node 'conv9' (did you mean 'conv1'?)"), "%s: %s",
                      t->name, msg);
        }
    }
}

/* ---- the command line ------------------------------------------------------- */

Test(cli, misspelt_gradcam_node_fails_validate_and_the_run_before_training)
{
    char path[256], out[4096], want[1024], run_dir[320];
    put("cam.yaml",
        "extends: " RN_SOURCE_DIR "/tests/fixtures/e2e_lazy.yaml\n"
        "analyses:\n"
        "  - {type: gradcam, name: cam, node: conv3}\n",
        path, sizeof path);
    snprintf(want, sizeof want,
             "%s:3:38: error: analysis 'cam' (gradcam): unknown node 'conv3' (did you mean "
             "'conv1'?)\n",
             path);
    int rc = sh(out, sizeof out, "%s validate %s 2>&1", RN_RUNNER_BIN, path);
    cr_expect_eq(rc, 1, "%s", out);
    cr_expect_str_eq(out, want);

    snprintf(run_dir, sizeof run_dir, "%s/run", dir);
    rc = sh(out, sizeof out, "%s %s data.dir=%s/mnist --out %s --quiet 2>&1", RN_RUNNER_BIN, path,
            RN_FIXTURES, run_dir);
    cr_expect_eq(rc, 1, "%s", out);
    char line[1100];
    snprintf(line, sizeof line, "runner: %s", want);
    cr_expect_str_eq(out, line);
    struct stat st;
    cr_expect_neq(stat(run_dir, &st), 0, "the refused run created %s", run_dir);
}
