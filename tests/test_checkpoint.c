/* Checkpoints (runner/checkpoint.c, checkpoint.h):
 *  - a model saved and loaded back into a graph initialised differently
 *    gives bit-identical parameters and buffers (num_batches_tracked too);
 *  - a stored tensor whose shape differs from the model's is refused with
 *    the file, the key and both shapes, also when its element count fits
 *    (a transposed fc.weight), as PyTorch's load_state_dict does;
 *  - a model recorded in another run's file opens from its /config yaml
 *    alone (rn_run_open_model), and its errors name the file.
 * The files are real checkpoints written by rn_run_save_model; a bad one is
 * made by rewriting one dataset with results.h.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runner/backend.h"
#include "runner/checkpoint.h"
#include "runner/run.h"
#include "runner/results.h"

/* A small model with every kind of stored tensor: 4-d and 2-d weights,
 * vectors, running statistics and an int64 scalar. */
static const char spec_text[] =
    "name: ckpt_test\n"
    "data: {dir: " RN_FIXTURES "/mnist, colouring: background}\n"
    "model:\n"
    "  name: ckpt_cnn\n"
    "  layers:\n"
    "    - {type: conv2d, name: conv1, filters: 4, kernel: 3, padding: 1}\n"
    "    - {type: batchnorm, name: bn1}\n"
    "    - {type: relu, name: relu1}\n"
    "    - {type: global_avg_pool, name: features}\n"
    "    - {type: linear, name: fc, units: 10}\n"
    "train: {epochs: 1, batch: 4}\n";

static const struct rn_shape in_shape = {3, 28, 28};

static char dir[64];
static char path[128];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/rn_ckpt_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/run.h5", dir);
}

static void teardown(void)
{
    unlink(path);
    rmdir(dir);
}

static void load_spec(struct rn_spec *s)
{
    char file[128];
    snprintf(file, sizeof file, "%s/x.yaml", dir);
    FILE *f = fopen(file, "w");
    cr_assert_not_null(f);
    fputs(spec_text, f);
    fclose(f);
    struct rn_error err;
    int rc = rn_spec_load(s, file, NULL, NULL, NULL, &err);
    unlink(file);
    cr_assert_eq(rc, 0, "%s", err.msg);
}

/* A bare run holding the spec's model, its parameters from seed. */
static struct rn_run *model_run(const struct rn_spec *s, uint64_t seed)
{
    struct rn_run *run = calloc(1, sizeof *run);
    cr_assert_not_null(run);
    struct rn_error err;
    cr_assert_eq(rn_graph_build(&run->graph, &s->model, in_shape, 4, &err), 0, "%s", err.msg);
    run->spec = s;
    run->has_graph = 1;
    run->logits_node = run->graph.n_nodes - 1;
    rn_graph_init_params(&run->graph, seed);
    return run;
}

static void run_free(struct rn_run *run)
{
    rn_graph_free(&run->graph);
    free(run);
}

static struct rn_param *param(struct rn_run *run, const char *node, const char *name)
{
    int i = rn_graph_find(&run->graph, node);
    cr_assert_geq(i, 0, "%s", node);
    struct rn_param *p = rn_layer_param(&run->graph.nodes[i].layer, name);
    cr_assert_not_null(p, "%s.%s", node, name);
    return p;
}

/* Writes run's model as /models/main of a fresh file at path, buffers set
 * to values initialisation does not give; the file stays open for edits
 * when keep is non-NULL. */
static void save(struct rn_run *run, const char *yaml, struct rn_results **keep)
{
    struct rn_param *mean = param(run, "bn1", "running_mean");
    for (int c = 0; c < 4; c++)
        mean->value.data[c] = 0.25f * (float)c - 0.1f;
    param(run, "bn1", "num_batches_tracked")->value.data[0] = 7;
    run->epochs_done = 3;
    struct rn_error err;
    cr_assert_eq(rn_results_create(&run->results, path, &err), 0, "%s", err.msg);
    cr_assert_eq(rn_run_save_model(run, "main", &err), 0, "%s", err.msg);
    if (yaml)
        cr_assert_eq(rn_results_set_attr_str(run->results, "/config", "yaml", yaml, &err), 0,
                     "%s", err.msg);
    if (keep)
        *keep = run->results;
    else
        rn_results_close(run->results);
    run->results = NULL;
}

/* Number of parameters of a whose values differ from b's, bit for bit. */
static int params_differ(struct rn_run *a, struct rn_run *b)
{
    int differ = 0;
    cr_assert_eq(a->graph.n_nodes, b->graph.n_nodes);
    for (int i = 0; i < a->graph.n_nodes; i++) {
        const struct rn_layer *la = &a->graph.nodes[i].layer, *lb = &b->graph.nodes[i].layer;
        cr_assert_eq(la->n_params, lb->n_params);
        for (int j = 0; j < la->n_params; j++) {
            size_t n = rn_tensor_numel(&la->params[j].value);
            cr_assert_eq(n, rn_tensor_numel(&lb->params[j].value));
            differ += memcmp(la->params[j].value.data, lb->params[j].value.data,
                             n * sizeof(float)) != 0;
        }
    }
    return differ;
}

Test(checkpoint, round_trip_gives_bit_identical_parameters, .init = setup, .fini = teardown)
{
    struct rn_spec s;
    load_spec(&s);
    struct rn_run *a = model_run(&s, 1), *b = model_run(&s, 2);
    save(a, NULL, NULL);
    /* all but the batchnorm's weight, bias and running_var (their fixed init) differ */
    cr_assert_geq(params_differ(a, b), 6);
    struct rn_error err;
    cr_assert_eq(rn_run_load_model(b, path, "main", &err), 0, "%s", err.msg);
    cr_assert_eq(params_differ(a, b), 0, "a parameter changed on its way through the file");
    cr_assert_eq(param(b, "bn1", "num_batches_tracked")->value.data[0], 7.0f);
    /* the run directory names the same file */
    struct rn_run *c = model_run(&s, 3);
    cr_assert_eq(rn_run_load_model(c, dir, "main", &err), 0, "%s", err.msg);
    cr_assert_eq(params_differ(a, c), 0);
    /* the file records the architecture and the epochs */
    struct rn_results *r;
    char *arch = NULL;
    uint64_t epochs = 0;
    cr_assert_eq(rn_results_open(&r, path, &err), 0, "%s", err.msg);
    cr_assert_eq(rn_results_get_attr_str(r, "/models/main", "architecture", &arch, &err), 0);
    cr_assert_eq(rn_results_get_attr_u64(r, "/models/main", "epochs", &epochs, &err), 0);
    cr_assert_str_eq(arch, "ckpt_cnn");
    cr_assert_eq(epochs, 3);
    free(arch);
    rn_results_close(r);
    run_free(a);
    run_free(b);
    run_free(c);
    rn_spec_free(&s);
}

/* Saves a model, replaces `key` by a float32 tensor of shape dims (or an
 * int64 one), and returns rn_run_load_model's message on a fresh model. */
static void load_error(const char *key, enum rn_dtype t, int ndim, const int *dims, char *msg,
                       size_t cap)
{
    struct rn_spec s;
    load_spec(&s);
    struct rn_run *a = model_run(&s, 1), *b = model_run(&s, 2);
    struct rn_results *r = NULL;
    save(a, NULL, &r);
    size_t n = 1;
    for (int d = 0; d < ndim; d++)
        n *= (size_t)dims[d];
    void *data = calloc(n, 8);
    cr_assert_not_null(data);
    struct rn_error err;
    cr_assert_eq(rn_results_write(r, key, t, data, ndim, dims, &err), 0, "%s", err.msg);
    free(data);
    rn_results_close(r);
    cr_assert_eq(rn_run_load_model(b, path, "main", &err), -1, "a bad %s was loaded", key);
    snprintf(msg, cap, "%s", err.msg);
    run_free(a);
    run_free(b);
    rn_spec_free(&s);
}

Test(checkpoint, transposed_weight_is_refused_with_both_shapes, .init = setup, .fini = teardown)
{
    /* fc.weight is (10, 4): stored (4, 10), the same 40 values */
    char msg[RN_ERROR_MAX], want[RN_ERROR_MAX];
    load_error("/models/main/fc.weight", RN_DTYPE_F32, 2, (const int[]){4, 10}, msg, sizeof msg);
    snprintf(want, sizeof want,
             "load: %s: /models/main/fc.weight has shape (4, 10); the model expects (10, 4)",
             path);
    cr_assert_str_eq(msg, want);
}

Test(checkpoint, other_shapes_are_refused, .init = setup, .fini = teardown)
{
    char msg[RN_ERROR_MAX], want[RN_ERROR_MAX];
    /* the same values in another rank */
    load_error("/models/main/conv1.weight", RN_DTYPE_F32, 2, (const int[]){4, 27}, msg,
               sizeof msg);
    snprintf(want, sizeof want,
             "load: %s: /models/main/conv1.weight has shape (4, 27); the model expects "
             "(4, 3, 3, 3)",
             path);
    cr_assert_str_eq(msg, want);
    /* a vector of another length */
    load_error("/models/main/bn1.running_var", RN_DTYPE_F32, 1, (const int[]){5}, msg, sizeof msg);
    snprintf(want, sizeof want,
             "load: %s: /models/main/bn1.running_var has shape (5); the model expects (4)", path);
    cr_assert_str_eq(msg, want);
    /* the int64 scalar as a vector of one */
    load_error("/models/main/bn1.num_batches_tracked", RN_DTYPE_I64, 1, (const int[]){1}, msg,
               sizeof msg);
    snprintf(want, sizeof want,
             "load: %s: /models/main/bn1.num_batches_tracked has shape (1); the model expects ()",
             path);
    cr_assert_str_eq(msg, want);
}

Test(checkpoint, missing_tensor_is_named, .init = setup, .fini = teardown)
{
    struct rn_spec s;
    load_spec(&s);
    struct rn_run *a = model_run(&s, 1);
    save(a, NULL, NULL);
    struct rn_error err;
    cr_assert_eq(rn_run_load_model(a, path, "ema", &err), -1);
    char want[RN_ERROR_MAX];
    snprintf(want, sizeof want,
             "load: %s has no /models/ema/conv1.weight; was it trained with the same model?",
             path);
    cr_assert_str_eq(err.msg, want);
    run_free(a);
    rn_spec_free(&s);
}

Test(checkpoint, a_model_opens_from_another_runs_file, .init = setup, .fini = teardown)
{
    struct rn_spec s;
    load_spec(&s);
    struct rn_run *a = model_run(&s, 1);
    save(a, spec_text, NULL);
    struct rn_run *o = calloc(1, sizeof *o);
    struct rn_spec *os = calloc(1, sizeof *os);
    cr_assert(o && os);
    struct rn_run_options opt = {.quiet = 1};
    struct rn_error err;
    cr_assert_eq(rn_run_open_model(o, os, path, "main", &opt, in_shape, 4, 10, RN_DEVICE_CPU,
                                   &err),
                 0, "%s", err.msg);
    cr_assert_eq(o->spec, os);
    cr_assert_str_eq(os->model.name, "ckpt_cnn");
    cr_assert(o->opt.quiet);
    cr_assert_eq(o->logits_node, o->graph.n_nodes - 1);
    cr_assert_not_null(o->probs);
    cr_assert_eq(o->graph.max_n, 4);
    cr_assert_eq(params_differ(a, o), 0);
    rn_run_close_model(o, os);
    /* errors name the file; nothing is left to free */
    char want[RN_ERROR_MAX];
    cr_assert_eq(rn_run_open_model(o, os, path, "ema", &opt, in_shape, 4, 10, RN_DEVICE_CPU, &err),
                 -1);
    snprintf(want, sizeof want, "%s has no model 'ema' (no /models/ema)", path);
    cr_assert_str_eq(err.msg, want);
    cr_assert_eq(rn_run_open_model(o, os, path, "main", &opt, in_shape, 4, 7, RN_DEVICE_CPU, &err),
                 -1);
    snprintf(want, sizeof want, "%s: its model gives 10 logits; this data has 7 classes", path);
    cr_assert_str_eq(err.msg, want);
    free(o);
    free(os);
    run_free(a);
    rn_spec_free(&s);
}

Test(checkpoint, a_file_without_a_spec_is_refused, .init = setup, .fini = teardown)
{
    struct rn_spec s;
    load_spec(&s);
    struct rn_run *a = model_run(&s, 1);
    save(a, "name: no_model\ndata: {dir: " RN_FIXTURES "/mnist}\n", NULL);
    struct rn_run *o = calloc(1, sizeof *o);
    struct rn_spec *os = calloc(1, sizeof *os);
    cr_assert(o && os);
    struct rn_error err;
    cr_assert_eq(rn_run_open_model(o, os, path, "main", NULL, in_shape, 4, 10, RN_DEVICE_CPU, &err),
                 -1);
    char want[RN_ERROR_MAX];
    snprintf(want, sizeof want, "%s: its spec has no model", path);
    cr_assert_str_eq(err.msg, want);
    free(o);
    free(os);
    run_free(a);
    rn_spec_free(&s);
}
