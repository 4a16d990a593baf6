/* Training as data (runner/program.h, the train sections of runner/spec.c):
 * schedules, parameter groups, optimizers over groups with their own
 * clipping, the step program and its cached partial passes, the colour
 * penalty's sign, spec errors of every new key, the resolved YAML round
 * trip, and a short end-to-end M3 run of the runner on the MNIST fixture. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runner/graph.h"
#include "runner/program.h"
#include "runner/results.h"
#include "runner/rng.h"
#include "runner/spec.h"

static char dir[256];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/rn_program_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(program, .init = setup, .fini = teardown);

/* A small model with both heads: the digit head `fc` and, through a GRL,
 * a colour head with batchnorm and dropout, as in M3. 14 nodes. */
static const char model_yaml[] =
    "model:\n"
    "  name: tiny_heads\n"
    "  layers:\n"
    "    - {type: conv2d, name: conv1, filters: 4, kernel: 3, padding: 1}\n"
    "    - {type: relu, name: relu1}\n"
    "    - {type: maxpool2d, name: pool1, kernel: 2}\n"
    "    - {type: conv2d, name: conv2, filters: 8, kernel: 3, padding: 1}\n"
    "    - {type: relu, name: relu2}\n"
    "    - {type: global_avg_pool, name: features}\n"
    "    - {type: dropout, name: dropout, p: 0.25}\n"
    "    - {type: linear, name: fc, units: 10}\n"
    "    - {type: grl, name: grl, from: features, alpha: 0}\n"
    "    - {type: linear, name: colour_fc1, units: 16}\n"
    "    - {type: batchnorm, name: colour_bn1}\n"
    "    - {type: relu, name: colour_relu1}\n"
    "    - {type: dropout, name: colour_drop, p: 0.3}\n"
    "    - {type: linear, name: colour_out, units: 10}\n";

/* The train section of M3, on the tiny model (line 16 is `train:`). */
static const char m3_train[] = "train:\n"
                               "  groups:\n"
                               "    backbone: [conv1, conv2]\n"
                               "    digit_head: fc\n"
                               "    colour_head: [colour_*]\n"
                               "  optimizers:\n"
                               "    - {name: main, lr: 1e-3, groups: [backbone, digit_head], "
                               "clip_norm: 1.0}\n"
                               "    - {name: adversary, lr: 2e-3, groups: [colour_head], "
                               "clip_norm: 1.0}\n"
                               "  schedules:\n"
                               "    - {name: alpha, type: linear, start: 0, end: 0.5}\n"
                               "  bind:\n"
                               "    - {node: grl, key: alpha, schedule: alpha}\n"
                               "  losses:\n"
                               "    - {name: digit, type: cross_entropy, on: fc, target: digit}\n"
                               "    - {name: colour, type: cross_entropy, on: colour_out, "
                               "target: colour}\n"
                               "  program:\n"
                               "    - {repeat: 3, optimizer: adversary, losses: [colour], set: "
                               "{grl.alpha: 0}}\n"
                               "    - {optimizer: main, losses: [digit, colour]}\n";

static void put(const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

/* Loads text as x.yaml; on failure returns NULL and the error lines in *errors. */
static struct rn_spec *load_text(const char *text, char **errors)
{
    put("x.yaml", text);
    char path[512];
    snprintf(path, sizeof path, "%s/x.yaml", dir);
    struct rn_spec *s = calloc(1, sizeof *s);
    cr_assert_not_null(s);
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    struct rn_error err;
    int rc = rn_spec_load(s, path, NULL, f, NULL, &err);
    fclose(f);
    if (errors)
        *errors = buf;
    else
        free(buf);
    if (rc) {
        rn_spec_free(s);
        free(s);
        return NULL;
    }
    return s;
}

static void free_spec(struct rn_spec *s)
{
    rn_spec_free(s);
    free(s);
}

/* Expects exactly these error lines; %1$s stands for the test folder. */
static void expect_errors(const char *text, const char *fmt)
{
    char want[4096], *errors = NULL;
    snprintf(want, sizeof want, fmt, dir);
    struct rn_spec *s = load_text(text, &errors);
    cr_assert_null(s, "loaded, but should fail with:\n%s", want);
    cr_assert_str_eq(errors, want);
    free(errors);
}

#define N 6

struct fixture {
    struct rn_spec *spec;
    struct rn_graph g;
    struct rn_program p;
    uint8_t digit[N], colour[N];
};

/* Builds model + train, the program (1000 steps of training in all) and a
 * random batch of N 3x8x8 images with random targets. */
static void build(struct fixture *f, const char *train)
{
    char text[8192], *errors = NULL;
    snprintf(text, sizeof text, "%s%s", model_yaml, train);
    memset(f, 0, sizeof *f);
    f->spec = load_text(text, &errors);
    cr_assert_not_null(f->spec, "%s", errors);
    free(errors);
    struct rn_error err;
    struct rn_shape in = {3, 8, 8};
    cr_assert_eq(rn_graph_build(&f->g, &f->spec->model, in, N, &err), 0, "%s", err.msg);
    rn_graph_init_params(&f->g, 7);
    cr_assert_eq(rn_program_init(&f->p, &f->spec->train, &f->g, 10, 1000, &err), 0, "%s",
                 err.msg);
    struct rn_rng r;
    rn_rng_init(&r, 11, 0, 0);
    f->g.x.n = N;
    for (size_t i = 0; i < rn_tensor_numel(&f->g.x); i++)
        f->g.x.data[i] = (float)rn_rng_uniform(&r);
    for (int i = 0; i < N; i++) {
        f->digit[i] = (uint8_t)rn_rng_below(&r, 10);
        f->colour[i] = (uint8_t)rn_rng_below(&r, 10);
    }
}

static void unbuild(struct fixture *f)
{
    rn_program_free(&f->p);
    rn_graph_free(&f->g);
    free_spec(f->spec);
}

static void batch(struct fixture *f, uint64_t step)
{
    struct rn_error err;
    cr_assert_eq(rn_program_batch(&f->p, N, f->digit, f->colour, step, 5, &err), 0, "%s",
                 err.msg);
}

/* Copies every trainable parameter of node `name` into out (returns count). */
static size_t params_of(struct rn_graph *g, const char *name, float *out)
{
    int i = rn_graph_find(g, name);
    cr_assert_geq(i, 0, "no node %s", name);
    size_t k = 0;
    struct rn_layer *l = &g->nodes[i].layer;
    for (int j = 0; j < l->n_params; j++)
        if (l->params[j].trainable) {
            size_t n = rn_tensor_numel(&l->params[j].value);
            if (out)
                memcpy(out + k, l->params[j].value.data, n * sizeof(float));
            k += n;
        }
    return k;
}

static const char *const backbone_nodes[] = {"conv1", "conv2", "fc"};
static const char *const colour_nodes[] = {"colour_fc1", "colour_bn1", "colour_out"};

struct snapshot {
    float *v[3];
    size_t n[3];
};

static void snap(struct rn_graph *g, const char *const *names, struct snapshot *s)
{
    for (int k = 0; k < 3; k++) {
        s->n[k] = params_of(g, names[k], NULL);
        s->v[k] = malloc(s->n[k] * sizeof(float));
        params_of(g, names[k], s->v[k]);
    }
}

/* 1 if every parameter of the snapshot's nodes is bit-identical now. */
static int unchanged(struct rn_graph *g, const char *const *names, const struct snapshot *s)
{
    int same = 1;
    for (int k = 0; k < 3; k++) {
        float *now = malloc(s->n[k] * sizeof(float));
        params_of(g, names[k], now);
        same &= memcmp(now, s->v[k], s->n[k] * sizeof(float)) == 0;
        free(now);
    }
    return same;
}

static void unsnap(struct snapshot *s)
{
    for (int k = 0; k < 3; k++)
        free(s->v[k]);
}

/* ---- schedules ------------------------------------------------------------------ */

Test(program, schedules_at_hand_computed_points)
{
    char *errors = NULL;
    struct rn_spec *s = load_text("model: {layers: [{type: linear, units: 10}]}\n"
                                  "train:\n"
                                  "  schedules:\n"
                                  "    - {name: c, type: constant, value: 0.5}\n"
                                  "    - {name: ramp, type: linear, start: 0, end: 0.5}\n"
                                  "    - {name: half, type: linear, start: 0, end: 0.5, until: 0.5}\n"
                                  "    - {name: mid, type: linear, start: 1, end: 3, from: 0.25, "
                                  "until: 0.75}\n"
                                  "    - {name: dann, type: dann_sigmoid}\n"
                                  "    - {name: dann2, type: dann_sigmoid, scale: 2, gamma: 4}\n"
                                  "    - {name: st, type: step, at: 0.5, before: 1, after: 0.1}\n",
                                  &errors);
    cr_assert_not_null(s, "%s", errors);
    free(errors);
    const double p[4] = {0, 0.25, 0.5, 1};
    /* by hand: linear = start + (end - start) (p - from) / (until - from), held outside;
     * dann = scale (2 / (1 + e^(-gamma p)) - 1): e^-2.5 = 0.0820850, e^-5 = 0.00673795,
     * e^-10 = 4.53999e-5; dann2 at p: 2 (2 / (1 + e^(-4p)) - 1), e^-1 = 0.367879,
     * e^-2 = 0.135335, e^-4 = 0.0183156 */
    const double want[7][4] = {
        {0.5, 0.5, 0.5, 0.5},
        {0, 0.125, 0.25, 0.5},
        {0, 0.25, 0.5, 0.5},
        {1, 1, 2, 3},
        {0, 0.848283639957513, 0.986614298151430, 0.999909204262595},
        {0, 0.924234314, 1.523188312, 1.928055160},
        {1, 1, 0.1, 0.1},
    };
    cr_assert_eq(s->train.n_schedules, 7);
    for (int k = 0; k < 7; k++)
        for (int j = 0; j < 4; j++)
            cr_assert_float_eq(rn_schedule_value(&s->train.schedules[k], p[j]), want[k][j], 1e-8,
                               "schedule %s at p = %g: %.12g, want %.12g",
                               s->train.schedules[k].name, p[j],
                               rn_schedule_value(&s->train.schedules[k], p[j]), want[k][j]);
    /* progress outside [0, 1] is clamped */
    cr_assert_float_eq(rn_schedule_value(&s->train.schedules[1], 2.0), 0.5, 0);
    cr_assert_float_eq(rn_schedule_value(&s->train.schedules[1], -1.0), 0, 0);
    free_spec(s);
}

/* ---- groups and optimizers --------------------------------------------------------- */

Test(program, groups_match_names_and_prefixes)
{
    struct fixture f;
    build(&f, m3_train);
    cr_assert_eq(f.p.n_opts, 2);
    cr_assert_str_eq(f.p.opts[0].name, "main");
    cr_assert_str_eq(f.p.opts[1].name, "adversary");
    const char *main_nodes[] = {"conv1", "conv2", "fc"};
    const char *adv_nodes[] = {"colour_fc1", "colour_bn1", "colour_out"};
    for (int i = 0; i < f.g.n_nodes; i++) {
        const char *nm = f.g.nodes[i].layer.name;
        int in_main = 0, in_adv = 0;
        for (int k = 0; k < 3; k++) {
            in_main |= !strcmp(nm, main_nodes[k]);
            in_adv |= !strcmp(nm, adv_nodes[k]);
        }
        cr_assert_eq(f.p.opts[0].owns[i], in_main, "main owns %s?", nm);
        /* colour_* also matches colour_relu1 and colour_drop, which have no parameters */
        cr_assert_eq(f.p.opts[1].owns[i], in_adv, "adversary owns %s?", nm);
    }
    /* weight + bias of 3 nodes each; batchnorm running statistics are not trained */
    cr_assert_eq(f.p.opts[0].optim.n, 6);
    cr_assert_eq(f.p.opts[1].optim.n, 6);
    cr_assert_float_eq(f.p.opts[1].optim.lr, 2e-3, 0);
    cr_assert_float_eq(f.p.opts[1].optim.clip_norm, 1.0, 0);
    unbuild(&f);
}

/* Builds and expects rn_program_init to fail with exactly want (%1$s = folder). */
static void expect_build_error(const char *train, const char *fmt)
{
    char text[8192], want[1024], *errors = NULL;
    snprintf(text, sizeof text, "%s%s", model_yaml, train);
    snprintf(want, sizeof want, fmt, dir);
    struct rn_spec *s = load_text(text, &errors);
    cr_assert_not_null(s, "%s", errors);
    free(errors);
    struct rn_graph g;
    struct rn_program p;
    struct rn_error err;
    cr_assert_eq(rn_graph_build(&g, &s->model, (struct rn_shape){3, 8, 8}, 4, &err), 0);
    cr_assert_eq(rn_program_init(&p, &s->train, &g, 10, 10, &err), -1, "built, should fail: %s",
                 want);
    cr_assert_str_eq(err.msg, want);
    rn_graph_free(&g);
    free_spec(s);
}

Test(program, graph_names_are_checked_with_positions)
{
    expect_build_error("train:\n  groups:\n    backbone: [conv1, conv9]\n",
                       "%1$s/x.yaml:20:23: error: train.groups.backbone: the model has no node "
                       "'conv9' (did you mean 'conv1'?)");
    expect_build_error("train:\n  groups:\n    head: [colr_*]\n",
                       "%1$s/x.yaml:20:12: error: train.groups.head: no node name starts with "
                       "'colr_'");
    expect_build_error("train:\n  groups: {a: [conv1], b: [conv1, fc]}\n"
                       "  optimizers:\n    - {name: one, groups: [a]}\n"
                       "    - {name: two, groups: [b]}\n",
                       "%1$s/x.yaml:22:7: error: optimizer 'two': node 'conv1' is already "
                       "updated by optimizer 'one'; a parameter belongs to one optimizer");
    expect_build_error("train:\n  groups: {relus: [relu1, relu2]}\n"
                       "  optimizers: [{name: one, groups: [relus]}]\n",
                       "%1$s/x.yaml:20:16: error: optimizer 'one': its groups hold no trainable "
                       "parameters");
    expect_build_error("train:\n  losses: [{type: cross_entropy, on: fcc}]\n",
                       "%1$s/x.yaml:19:12: error: loss reads node 'fcc', which the model does "
                       "not have");
    expect_build_error("train:\n  losses: [{type: cross_entropy, on: features}]\n",
                       "%1$s/x.yaml:19:12: error: loss 'digit': node 'features' gives (8,1,1) "
                       "but the loss needs (10,1,1) logits; end the head with a linear layer of "
                       "10 units");
    expect_build_error("train:\n  schedules: [{name: a, type: constant, value: 1}]\n"
                       "  bind: [{node: grl, key: alpah, schedule: a}]\n",
                       "%1$s/x.yaml:20:10: error: bind #1: node 'grl' (grl) has no number key "
                       "'alpah' (did you mean 'alpha'?)");
    expect_build_error("train:\n  program: [{set: {gr.alpha: 0}}]\n",
                       "%1$s/x.yaml:19:20: error: program step #1: set: the model has no node "
                       "'gr' (did you mean 'grl'?)");
    expect_build_error("train:\n  groups: {h: [colour_*]}\n"
                       "  optimizers: [{name: adv, groups: [h]}]\n"
                       "  losses: [{type: cross_entropy, on: fc}]\n"
                       "  program: [{optimizer: adv, losses: [digit]}]\n",
                       "%1$s/x.yaml:22:13: error: program step #1: none of its losses depends "
                       "on a parameter of its optimizers");
    expect_build_error("train:\n  losses: [{type: saliency, on: colour_out}]\n",
                       "%1$s/x.yaml:19:12: error: loss 'saliency' (saliency): node 'colour_bn1' "
                       "(batchnorm) lies on the path to 'colour_out' and runs in training mode, "
                       "which has no tangent mode; the saliency gradient needs tangent mode "
                       "through every layer (use a model without batchnorm for this loss)");
}

Test(program, optimizer_touches_only_its_groups)
{
    struct fixture f;
    build(&f, m3_train);
    struct snapshot bb, col;
    snap(&f.g, backbone_nodes, &bb);
    snap(&f.g, colour_nodes, &col);
    /* the adversary's sub-steps alone: program entry 0 */
    f.p.n_subs = 3;
    batch(&f, 0);
    cr_assert(unchanged(&f.g, backbone_nodes, &bb), "adversary steps moved the backbone");
    cr_assert_not(unchanged(&f.g, colour_nodes, &col), "adversary steps left the colour head");
    cr_assert_eq(f.p.opts[1].optim.step, 3);
    cr_assert_eq(f.p.opts[0].optim.step, 0);
    unsnap(&bb);
    unsnap(&col);
    unbuild(&f);
}

static double norm_of_delta(struct rn_graph *g, const char *const *names,
                            const struct snapshot *s)
{
    double sum = 0;
    for (int k = 0; k < 3; k++) {
        float *now = malloc(s->n[k] * sizeof(float));
        params_of(g, names[k], now);
        for (size_t i = 0; i < s->n[k]; i++)
            sum += ((double)now[i] - s->v[k][i]) * ((double)now[i] - s->v[k][i]);
        free(now);
    }
    return sqrt(sum);
}

static double grad_norm(const struct rn_optim *o)
{
    double sum = 0;
    for (int i = 0; i < o->n; i++)
        for (size_t k = 0; k < rn_tensor_numel(&o->params[i]->grad); k++)
            sum += (double)o->params[i]->grad.data[k] * o->params[i]->grad.data[k];
    return sqrt(sum);
}

Test(program, clip_norm_per_group)
{
    /* SGD with lr 1: a step moves the parameters by exactly the (clipped) gradient */
    struct fixture f;
    build(&f, "train:\n"
              "  groups: {backbone: [conv1, conv2, fc], colour_head: [colour_*]}\n"
              "  optimizers:\n"
              "    - {name: main, type: sgd, lr: 1, groups: [backbone], clip_norm: 0.01}\n"
              "    - {name: adv, type: sgd, lr: 1, groups: [colour_head]}\n"
              "  losses: [{type: cross_entropy, on: fc},\n"
              "           {type: cross_entropy, on: colour_out, target: colour}]\n");
    struct snapshot bb, col;
    snap(&f.g, backbone_nodes, &bb);
    snap(&f.g, colour_nodes, &col);
    batch(&f, 0);
    double g_main = grad_norm(&f.p.opts[0].optim), g_adv = grad_norm(&f.p.opts[1].optim);
    cr_assert_gt(g_main, 0.1, "the test needs a gradient well above the clip");
    double d_main = norm_of_delta(&f.g, backbone_nodes, &bb);
    double d_adv = norm_of_delta(&f.g, colour_nodes, &col);
    cr_assert_float_eq(d_main, 0.01, 1e-4, "clipped group moved %g", d_main);
    cr_assert_float_eq(d_adv, g_adv, 1e-3 * g_adv, "unclipped group moved %g, gradient %g", d_adv,
                       g_adv);
    unsnap(&bb);
    unsnap(&col);
    unbuild(&f);
}

/* ---- the program ------------------------------------------------------------------- */

Test(program, substeps_run_in_order_and_reuse_the_backbone)
{
    struct fixture f;
    build(&f, m3_train);
    cr_assert_eq(f.p.n_subs, 4);
    batch(&f, 0);
    cr_assert_eq(f.p.opts[1].optim.step, 3);
    cr_assert_eq(f.p.opts[0].optim.step, 1);
    /* sub-step 1: backbone (6 nodes) + grl + colour head (5); sub-steps 2-3: the colour head
     * only (grl.alpha is 0 already, so `set` changes nothing); main: dropout, fc and the
     * colour head again (its parameters changed). A full recompute would be 3 * 12 + 14. */
    cr_assert_eq(f.p.node_forwards, 12 + 5 + 5 + 7);
    /* backward: the colour head's 5 nodes per adversary step; everything in the main step */
    cr_assert_eq(f.p.node_backwards, 3 * 5 + 14);
    /* every term and head was computed; the digit head's metrics come from the main step */
    cr_assert(f.p.terms[0].fresh && f.p.terms[1].fresh);
    cr_assert_eq(f.p.heads[f.p.primary].node, rn_graph_find(&f.g, "fc"));
    cr_assert_eq(f.p.heads[f.p.primary].n, N);
    cr_assert_str_eq(f.p.heads[1].metric, "colour_");
    /* alpha bound to its schedule at p = 0, restored after the adversary's set */
    cr_assert_float_eq(f.g.nodes[rn_graph_find(&f.g, "grl")].layer.v.num[0], 0, 0);
    batch(&f, 500);
    cr_assert_float_eq(f.p.sched[0], 0.25, 1e-12);
    cr_assert_float_eq(f.g.nodes[rn_graph_find(&f.g, "grl")].layer.v.num[0], 0.25, 0);
    unbuild(&f);
}

Test(program, cached_features_give_the_same_training_as_recomputing)
{
    struct fixture a, b;
    build(&a, m3_train);
    build(&b, m3_train);
    b.p.recompute = 1;
    for (uint64_t step = 0; step < 3; step++) {
        batch(&a, step * 300);
        batch(&b, step * 300);
    }
    cr_assert_lt(a.p.node_forwards, b.p.node_forwards);
    for (int i = 0; i < a.g.n_nodes; i++) {
        struct rn_layer *la = &a.g.nodes[i].layer, *lb = &b.g.nodes[i].layer;
        for (int j = 0; j < la->n_params; j++)
            cr_assert_eq(memcmp(la->params[j].value.data, lb->params[j].value.data,
                                rn_tensor_numel(&la->params[j].value) * sizeof(float)),
                         0, "%s.%s differs", la->name, la->params[j].name);
    }
    cr_assert_float_eq(a.p.total, b.p.total, 0);
    unbuild(&a);
    unbuild(&b);
}

Test(program, partial_forward_equals_full_forward)
{
    struct fixture f;
    build(&f, m3_train);
    struct rn_graph *g = &f.g;
    struct rn_error err;
    struct rn_ctx ctx = {.train = 1, .seed = 3, .step = 9};
    cr_assert_eq(rn_graph_forward(g, N, -1, &ctx, &err), 0, "%s", err.msg);
    /* change the colour head, then recompute only what depends on it */
    int c1 = rn_graph_find(g, "colour_fc1"), out = rn_graph_find(g, "colour_out");
    struct rn_param *w = &g->nodes[c1].layer.params[0];
    for (size_t k = 0; k < rn_tensor_numel(&w->value); k++)
        w->value.data[k] += 0.01f * (float)(k % 7);
    unsigned char from[32] = {0}, run[32];
    from[c1] = 1;
    rn_graph_mark_downstream(g, from, run);
    for (int i = 0; i < g->n_nodes; i++)
        cr_assert_eq(run[i], i >= c1, "node %s", g->nodes[i].layer.name);
    cr_assert_eq(rn_graph_forward_nodes(g, N, run, &ctx, &err), 0, "%s", err.msg);
    size_t n = rn_tensor_numel(&g->nodes[out].y);
    float *partial = malloc(n * sizeof(float));
    memcpy(partial, g->nodes[out].y.data, n * sizeof(float));
    cr_assert_eq(rn_graph_forward(g, N, -1, &ctx, &err), 0, "%s", err.msg);
    cr_assert_eq(memcmp(partial, g->nodes[out].y.data, n * sizeof(float)), 0);
    /* upstream marks: colour_out reads the backbone through the grl, not the digit head */
    unsigned char to[32] = {0}, up[32];
    to[out] = 1;
    rn_graph_mark_upstream(g, to, up);
    cr_assert_eq(up[rn_graph_find(g, "fc")], 0);
    cr_assert_eq(up[rn_graph_find(g, "dropout")], 0);
    cr_assert_eq(up[rn_graph_find(g, "conv1")], 1);
    cr_assert_eq(up[rn_graph_find(g, "grl")], 1);
    free(partial);
    unbuild(&f);
}

Test(program, neg_cross_entropy_is_the_negated_gradient)
{
    const char *fmt = "train:\n"
                      "  groups: {h: [colour_*]}\n"
                      "  optimizers: [{name: o, type: sgd, lr: 0.1, groups: [h]}]\n"
                      "  losses: [{type: %s, on: colour_out, target: colour}]\n";
    char ta[512], tb[512];
    snprintf(ta, sizeof ta, fmt, "cross_entropy");
    snprintf(tb, sizeof tb, fmt, "neg_cross_entropy");
    struct fixture a, b;
    build(&a, ta);
    build(&b, tb);
    cr_assert_str_eq(b.spec->train.losses[0].name, "neg_colour");
    struct snapshot sa, sb;
    snap(&a.g, colour_nodes, &sa);
    snap(&b.g, colour_nodes, &sb);
    batch(&a, 0);
    batch(&b, 0);
    cr_assert_float_eq(b.p.terms[0].value, -a.p.terms[0].value, 0);
    cr_assert_float_eq(b.p.total, -a.p.total, 0);
    for (int k = 0; k < 3; k++) {
        float *na = malloc(sa.n[k] * sizeof(float)), *nb = malloc(sb.n[k] * sizeof(float));
        params_of(&a.g, colour_nodes[k], na);
        params_of(&b.g, colour_nodes[k], nb);
        double moved = 0;
        for (size_t i = 0; i < sa.n[k]; i++) {
            double da = (double)na[i] - sa.v[k][i], db = (double)nb[i] - sb.v[k][i];
            cr_assert_float_eq(db, -da, 1e-6, "%s[%zu]: %g vs %g", colour_nodes[k], i, db, da);
            moved += fabs(da);
        }
        cr_assert_gt(moved, 0, "%s did not move", colour_nodes[k]);
        free(na);
        free(nb);
    }
    unsnap(&sa);
    unsnap(&sb);
    unbuild(&a);
    unbuild(&b);
}

/* ---- spec errors --------------------------------------------------------------------- */

#define M "model: {layers: [{type: linear, units: 10}]}\n"

Test(program, spec_errors_schedules_groups_optimizers)
{
    expect_errors(M "train:\n  schedules:\n    - {name: a, type: linaer, end: 1}\n"
                    "    - {type: constant, value: 1}\n"
                    "    - {name: 2, type: constant, value: 1}\n"
                    "    - {name: b, type: linear, start: 0}\n"
                    "    - {name: c, type: linear, end: 1, from: 0.8, until: 0.2}\n"
                    "    - {name: d, type: step, at: 2, after: 1, value: 3}\n",
                  "%1$s/x.yaml:4:23: error: schedule 'a': unknown type 'linaer' (did you mean "
                  "'linear'?); valid types: constant, linear, dann_sigmoid, step\n"
                  "%1$s/x.yaml:5:7: error: schedule #2: missing required key 'name'\n"
                  "%1$s/x.yaml:6:14: error: schedule '2': name: expected a name that does not "
                  "read as a number, got '2'\n"
                  "%1$s/x.yaml:7:7: error: schedule 'b' (linear): missing required key 'end'\n"
                  "%1$s/x.yaml:8:7: error: schedule 'c' (linear): from (0.8) must not be after "
                  "until (0.2)\n"
                  "%1$s/x.yaml:9:33: error: schedule 'd' (step): at: expected a number in [0, "
                  "1], got 2\n"
                  "%1$s/x.yaml:9:46: error: schedule 'd' (step): unknown key 'value'\n");
    expect_errors(M "train:\n  groups: {a: [], b: {x: 1}, c: [x*y]}\n",
                  "%1$s/x.yaml:3:15: error: train.groups.a: expected a node name or a list of "
                  "1..16 node names, got an empty list\n"
                  "%1$s/x.yaml:3:22: error: train.groups.b: expected a node name or a list of "
                  "1..16 node names, got a mapping\n"
                  "%1$s/x.yaml:3:34: error: train.groups.c: 'x*y': '*' may only end a name (a "
                  "prefix match)\n");
    expect_errors(M "train:\n  groups: {backbone: [conv1]}\n"
                    "  schedules: [{name: warm, type: constant, value: 1}]\n"
                    "  optimizers:\n"
                    "    - {name: a, type: adma, lr: wram, groups: [backbon]}\n"
                    "    - {name: a, clip_norm: -1}\n",
                  "%1$s/x.yaml:6:23: error: optimizer 'a': type: expected one of adam|adamw|sgd, "
                  "got 'adma' (did you mean 'adam'?)\n"
                  "%1$s/x.yaml:6:33: error: optimizer 'a': lr: unknown schedule 'wram' (did you "
                  "mean 'warm'?)\n"
                  "%1$s/x.yaml:6:48: error: optimizer 'a': groups: unknown group 'backbon' (did "
                  "you mean 'backbone'?)\n"
                  "%1$s/x.yaml:7:7: error: optimizer 'a': missing key 'groups'; with several "
                  "optimizers each one names its groups\n"
                  "%1$s/x.yaml:7:14: error: optimizer 'a': name 'a' is already used by another "
                  "optimizer\n"
                  "%1$s/x.yaml:7:28: error: optimizer 'a': clip_norm: expected a number >= 0, "
                  "got -1\n");
}

Test(program, spec_errors_losses_bind_program_augment)
{
    expect_errors(M "train:\n  losses:\n"
                    "    - {type: cross_entropy, weight: lamda, norm: l2}\n"
                    "    - {type: saliency, norm: l3, reduce: mean, threshold: 2}\n"
                    "    - {type: neg_cross_entropy, target: colour, name: digit, weight: -1}\n",
                  "%1$s/x.yaml:4:37: error: loss #1: weight: unknown schedule 'lamda'; "
                  "train.schedules declares none\n"
                  "%1$s/x.yaml:4:44: error: loss #1: norm applies to saliency terms only, not "
                  "cross_entropy\n"
                  "%1$s/x.yaml:5:30: error: loss #2: norm: expected one of l1|l2, got 'l3' (did "
                  "you mean 'l1'?)\n"
                  "%1$s/x.yaml:5:42: error: loss #2: reduce: expected one of "
                  "mean_background|background_share, got 'mean'\n"
                  "%1$s/x.yaml:5:59: error: loss #2: threshold: expected a number in [0, 1], got "
                  "2\n"
                  "%1$s/x.yaml:6:55: error: loss 'digit': name 'digit' is already used by the "
                  "loss term at line 4\n"
                  "%1$s/x.yaml:6:70: error: loss 'digit': weight: expected a number >= 0 or a "
                  "schedule name, got -1\n");
    expect_errors(M "train:\n  schedules: [{name: a, type: constant, value: 0}]\n"
                    "  bind: [{node: grl, key: alpha, schedule: b}, {node: grl}]\n"
                    "  program:\n"
                    "    - {repeat: 0, optimizer: adversary, losses: [digt], set: {alpha: 0}}\n"
                    "    - {set: {grl.alpha: x}, loss: [digit]}\n",
                  "%1$s/x.yaml:4:44: error: bind #1: unknown schedule 'b' (did you mean 'a'?)\n"
                  "%1$s/x.yaml:4:48: error: bind #2: missing required key 'key'\n"
                  "%1$s/x.yaml:4:48: error: bind #2: missing required key 'schedule'\n"
                  "%1$s/x.yaml:6:16: error: program step #1: repeat: expected an integer in [1, "
                  "1000], got 0\n"
                  "%1$s/x.yaml:6:30: error: program step #1: optimizer: unknown optimizer "
                  "'adversary'\n"
                  "%1$s/x.yaml:6:50: error: program step #1: losses: unknown loss 'digt' (did you "
                  "mean 'digit'?)\n"
                  "%1$s/x.yaml:6:63: error: program step #1: set: expected node.key (e.g. "
                  "grl.alpha), got 'alpha'\n"
                  "%1$s/x.yaml:7:25: error: program step #2: set: grl.alpha: expected a number, "
                  "got 'x'\n"
                  "%1$s/x.yaml:7:29: error: program step #2: unknown key 'loss' (did you mean "
                  "'losses'?)\n");
    expect_errors(M "train:\n  augment:\n    - {type: channel_permute, hue: 0.1}\n"
                    "    - {type: color_jitter}\n    - {type: colour_jitter, hue: 0.6}\n",
                  "%1$s/x.yaml:4:31: error: augment #1 (channel_permute): unknown key 'hue'\n"
                  "%1$s/x.yaml:5:14: error: augment #2: unknown type 'color_jitter' (did you mean "
                  "'colour_jitter'?); valid types: channel_permute, colour_jitter\n"
                  "%1$s/x.yaml:6:34: error: augment #3 (colour_jitter): hue: expected a number in "
                  "[0, 0.5], got 0.6\n");
}

/* ---- resolved YAML ---------------------------------------------------------------------- */

Test(program, resolved_round_trip_with_every_section)
{
    char text[8192], *errors = NULL;
    snprintf(text, sizeof text,
             "%s%s"
             "  augment: [{type: channel_permute}, {type: colour_jitter, brightness: 0.3, "
             "contrast: 0.3, saturation: 0.5, hue: 0.5}]\n",
             model_yaml, m3_train);
    /* a saliency term and a scheduled weight and lr, too */
    strcat(text, "  eval: [val]\n");
    char *p = strstr(text, "    - {name: colour, type: cross_entropy");
    cr_assert_not_null(p);
    char tail[4096];
    snprintf(tail, sizeof tail, "%s", p);
    snprintf(p, sizeof text - (size_t)(p - text),
             "    - {type: saliency, on: fc, weight: alpha, norm: l2, reduce: background_share, "
             "threshold: 0.9}\n%s",
             tail);
    struct rn_spec *a = load_text(text, &errors);
    cr_assert_not_null(a, "%s\n%s", errors, text);
    free(errors);
    char *resolved = strdup(a->resolved);
    struct rn_spec *b = load_text(resolved, &errors);
    cr_assert_not_null(b, "resolved does not load: %s\n%s", errors, resolved);
    free(errors);
    cr_assert_str_eq(a->resolved, b->resolved);
    const struct rn_spec_train *ta = &a->train, *tb = &b->train;
    cr_assert_eq(tb->n_groups, 3);
    cr_assert_str_eq(tb->groups[2].nodes[0], "colour_*");
    cr_assert_str_eq(tb->groups[1].nodes[0], "fc");
    cr_assert_eq(tb->n_optimizers, 2);
    cr_assert_str_eq(tb->optimizers[1].name, "adversary");
    cr_assert_eq(tb->optimizers[1].lr, 2e-3);
    cr_assert_eq(tb->optimizers[0].clip_norm, 1.0);
    cr_assert_eq(tb->optimizers[0].n_groups, 2);
    cr_assert_eq(tb->n_schedules, 1);
    cr_assert_eq(tb->schedules[0].until, 1);
    cr_assert_eq(tb->n_binds, 1);
    cr_assert_str_eq(tb->binds[0].key, "alpha");
    cr_assert_eq(tb->n_losses, 3);
    cr_assert_str_eq(tb->losses[1].type, "saliency");
    cr_assert_str_eq(tb->losses[1].name, "saliency");
    cr_assert_str_eq(tb->losses[1].weight_schedule, "alpha");
    cr_assert_str_eq(tb->losses[1].norm, "l2");
    cr_assert_str_eq(tb->losses[1].reduce, "background_share");
    cr_assert_eq(tb->losses[1].threshold, 0.9);
    cr_assert_eq(tb->n_program, 2);
    cr_assert_eq(tb->program[0].repeat, 3);
    cr_assert_str_eq(tb->program[0].optimizers[0], "adversary");
    cr_assert_eq(tb->program[0].n_sets, 1);
    cr_assert_str_eq(tb->program[0].sets[0].node, "grl");
    cr_assert_str_eq(tb->program[0].sets[0].key, "alpha");
    cr_assert_eq(tb->program[1].n_losses, 2);
    cr_assert_eq(tb->n_augment, 2);
    cr_assert_eq(tb->augment[1].saturation, 0.5);
    cr_assert_eq(tb->augment[1].hue, 0.5);
    cr_assert_eq(ta->n_eval, 1);
    cr_assert(strstr(resolved, "  program:\n    - {repeat: 3, optimizer: [adversary], losses: "
                               "[colour], set: {grl.alpha: 0}}\n"),
              "%s", resolved);
    cr_assert(strstr(resolved, "    colour_head: [\"colour_*\"]\n"), "%s", resolved);
    free(resolved);
    free_spec(a);
    free_spec(b);
}

/* ---- end to end ---------------------------------------------------------------------------- */

static double last_metric(struct rn_results *r, const char *name)
{
    double *x, *v;
    int n;
    struct rn_error err;
    cr_assert_eq(rn_results_read_metric(r, name, &x, &v, &n, &err), 0, "%s: %s", name, err.msg);
    cr_assert_gt(n, 0);
    double last = v[n - 1];
    free(x);
    free(v);
    return last;
}

Test(program, m3_runs_end_to_end_and_logs_colour_metrics, .timeout = 300)
{
    char cmd[2048], out[8192] = "";
    snprintf(cmd, sizeof cmd,
             "cd %s && %s experiments/task4_m3.yaml data.dir=%s/mnist train.epochs=1 "
             "train.log_every=4 data.test_limit=200 --out %s/m3 --quiet 2>&1",
             RN_SOURCE_DIR, RN_RUNNER_BIN, RN_FIXTURES, dir);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = 0;
    int st = pclose(p);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "runner failed:\n%s", out);
    char path[512];
    snprintf(path, sizeof path, "%s/m3/run.h5", dir);
    struct rn_results *r = NULL;
    struct rn_error err;
    cr_assert_eq(rn_results_open(&r, path, &err), 0, "%s", err.msg);
    const char *metrics[] = {"loss/digit",       "loss/colour",           "sched/alpha",
                             "train/colour_loss", "train/colour_accuracy", "val/colour_accuracy",
                             "test/colour_accuracy", "test/accuracy",     "val/accuracy"};
    for (size_t i = 0; i < sizeof metrics / sizeof metrics[0]; i++) {
        double v = last_metric(r, metrics[i]);
        cr_assert(isfinite(v), "%s = %g", metrics[i], v);
    }
    /* alpha ramps over the run: below its end value 0.5 at the last logged step */
    double alpha = last_metric(r, "sched/alpha");
    cr_assert(alpha > 0 && alpha < 0.5, "alpha %g", alpha);
    double acc = last_metric(r, "val/colour_accuracy");
    cr_assert(acc >= 0 && acc <= 1);
    /* the checkpoint holds both heads */
    cr_assert(rn_results_exists(r, "/models/main/colour_out.weight"));
    cr_assert(rn_results_exists(r, "/models/main/fc.weight"));
    cr_assert(rn_results_exists(r, "/models/main/colour_bn1.running_mean"));
    char *yaml = NULL;
    cr_assert_eq(rn_results_get_attr_str(r, "/config", "yaml", &yaml, &err), 0);
    cr_assert(strstr(yaml, "  program:\n"), "%s", yaml);
    free(yaml);
    rn_results_close(r);
}
