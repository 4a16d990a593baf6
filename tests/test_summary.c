/* The model table (`runner summary`, `runner validate --summary`): every
 * layer type counts its FLOPs; simple_gap_cnn's parameters and forward FLOPs
 * per node against counts made here from the architecture alone; the other
 * layer types' counts on a small graph; the command's output, row by row,
 * and its errors. */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runner/graph.h"
#include "runner/spec.h"
#include "runner/summary.h"
#include "sh.h"

#define SRC RN_SOURCE_DIR

/* ---- helpers -------------------------------------------------------------- */

/* Loads a spec file (calloc'd) and builds its model for (3,28,28) images. */
static struct rn_spec *load_and_build(const char *path, struct rn_graph *g)
{
    struct rn_spec *s = calloc(1, sizeof *s);
    cr_assert_not_null(s);
    struct rn_error err = {{0}};
    cr_assert_eq(rn_spec_load(s, path, NULL, stderr, NULL, &err), 0, "%s", err.msg);
    cr_assert(s->has_model);
    cr_assert_eq(rn_graph_build(g, &s->model, (struct rn_shape){3, 28, 28}, 1, &err), 0, "%s",
                 err.msg);
    return s;
}

/* One row of the expected table. */
struct row {
    const char *name, *type;
    int c, h, w;
    long long params, flops;
};

/* simple_gap_cnn (experiments/models/simple_gap_cnn.yaml) counted by hand:
 * conv 3x3 padding 1 keeps H and W, maxpool 2 halves them (7 -> 3, floor).
 * conv: params Cout*Cin*9 + Cout, FLOPs 2*Cin*9*Cout*H*W + Cout*H*W;
 * relu: 1 per element; maxpool 2x2: 3 comparisons per output; GAP: 1 per
 * input element; dropout: 0; linear: params out*in + out, FLOPs 2*in*out + out. */
static int simple_gap_cnn_rows(struct row *r)
{
    const int cin[3] = {3, 32, 64}, cout[3] = {32, 64, 128}, hw[4] = {28, 14, 7, 3};
    const char *conv[3] = {"conv1", "conv2", "conv3"}, *relu[3] = {"relu1", "relu2", "relu3"},
               *pool[3] = {"pool1", "pool2", "pool3"};
    int n = 0;
    for (int b = 0; b < 3; b++) {
        long long out = (long long)cout[b] * hw[b] * hw[b];
        r[n++] = (struct row){conv[b], "conv2d", cout[b], hw[b], hw[b],
                              (long long)cout[b] * cin[b] * 9 + cout[b],
                              2LL * cin[b] * 9 * out + out};
        r[n++] = (struct row){relu[b], "relu", cout[b], hw[b], hw[b], 0, out};
        long long pooled = (long long)cout[b] * hw[b + 1] * hw[b + 1];
        r[n++] = (struct row){pool[b], "maxpool2d", cout[b], hw[b + 1], hw[b + 1], 0, 3 * pooled};
    }
    r[n++] = (struct row){"features", "global_avg_pool", 128, 1, 1, 0, 128 * 3 * 3};
    r[n++] = (struct row){"dropout", "dropout", 128, 1, 1, 0, 0};
    r[n++] = (struct row){"fc", "linear", 10, 1, 1, 10 * 128 + 10, 2 * 128 * 10 + 10};
    return n;
}

/* ---- the descriptors ------------------------------------------------------- */

Test(summary, every_layer_type_that_builds_counts_flops)
{
    for (int i = 0; i < rn_n_layer_types; i++) {
        const struct rn_layer_type *t = rn_layer_types[i];
        if (t->build) /* basic_block has none: the graph expands it */
            cr_expect_not_null(t->flops, "layer type '%s' has no flops", t->name);
    }
}

/* ---- counts ---------------------------------------------------------------- */

Test(summary, simple_gap_cnn_counts_match_the_architecture)
{
    struct rn_graph g;
    struct rn_spec *s = load_and_build(SRC "/experiments/task1_lazy.yaml", &g);
    struct row want[16];
    int n = simple_gap_cnn_rows(want);
    cr_assert_eq(g.n_nodes, n);
    long long params = 0, flops = 0;
    for (int i = 0; i < n; i++) {
        const struct rn_layer *l = &g.nodes[i].layer;
        cr_expect_str_eq(l->name, want[i].name);
        cr_expect_str_eq(l->type->name, want[i].type, "%s", want[i].name);
        cr_expect(l->out.c == want[i].c && l->out.h == want[i].h && l->out.w == want[i].w,
                  "%s: (%d,%d,%d)", want[i].name, l->out.c, l->out.h, l->out.w);
        cr_expect_eq((long long)rn_summary_node_params(&g, i), want[i].params, "%s: %zu",
                     want[i].name, rn_summary_node_params(&g, i));
        cr_expect_eq((long long)rn_summary_node_flops(&g, i), want[i].flops, "%s: %lld",
                     want[i].name, (long long)rn_summary_node_flops(&g, i));
        params += want[i].params;
        flops += want[i].flops;
    }
    cr_expect_eq(params, 94538); /* PyTorch's sum(p.numel() for p in model.parameters()) */
    cr_expect_eq((long long)rn_graph_n_trainable(&g), params);
    cr_expect_eq((long long)rn_summary_flops(&g), flops);
    rn_graph_free(&g);
    rn_spec_free(s);
    free(s);
}

/* The types simple_gap_cnn lacks, on (3,8,8) images: a conv without bias, a
 * batchnorm (2 per element at inference, weight and bias trainable, running
 * statistics not counted), avgpool 2x2 (4 per output), add (1 per element),
 * flatten and grl (0). */
Test(summary, the_other_layer_types)
{
    char dir[] = "/tmp/rn_summary_XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/spec.yaml", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("name: other_types\n"
          "data: {colouring: background}\n"
          "model:\n"
          "  name: other\n"
          "  layers:\n"
          "    - {type: conv2d, name: c, filters: 4, kernel: 3, padding: 1, bias: false}\n"
          "    - {type: batchnorm, name: bn}\n"
          "    - {type: avgpool2d, name: ap, kernel: 2}\n"
          "    - {type: conv2d, name: c2, filters: 4, kernel: 1, from: ap}\n"
          "    - {type: add, name: sum, from: [ap, c2]}\n"
          "    - {type: flatten, name: flat}\n"
          "    - {type: grl, name: rev}\n"
          "    - {type: linear, name: fc, units: 5, bias: false}\n"
          "train: {epochs: 1}\n",
          f);
    fclose(f);
    struct rn_spec *s = calloc(1, sizeof *s);
    cr_assert_not_null(s);
    struct rn_error err = {{0}};
    cr_assert_eq(rn_spec_load(s, path, NULL, stderr, NULL, &err), 0, "%s", err.msg);
    struct rn_graph g;
    cr_assert_eq(rn_graph_build(&g, &s->model, (struct rn_shape){3, 8, 8}, 1, &err), 0, "%s",
                 err.msg);
    const long long want_params[] = {4 * 3 * 9, 2 * 4, 0, 4 * 4 + 4, 0, 0, 0, 5 * 64};
    const long long want_flops[] = {2LL * 3 * 9 * 4 * 64, 2 * 4 * 64, 4 * 4 * 16,
                                    2 * 4 * 4 * 16 + 4 * 16, 4 * 16, 0, 0, 2 * 64 * 5};
    cr_assert_eq(g.n_nodes, 8);
    for (int i = 0; i < 8; i++) {
        cr_expect_eq((long long)rn_summary_node_params(&g, i), want_params[i], "%s: %zu",
                     g.nodes[i].layer.name, rn_summary_node_params(&g, i));
        cr_expect_eq((long long)rn_summary_node_flops(&g, i), want_flops[i], "%s: %lld",
                     g.nodes[i].layer.name, (long long)rn_summary_node_flops(&g, i));
    }
    rn_graph_free(&g);
    rn_spec_free(s);
    free(s);
    remove(path);
    rmdir(dir);
}

/* ---- the command ----------------------------------------------------------- */

/* The table rows of out, one by one, against simple_gap_cnn_rows. */
static void check_table(const char *out)
{
    struct row want[16];
    int n = simple_gap_cnn_rows(want);
    const char *p = strstr(out, "model 'simple_gap_cnn': input (3,28,28), 12 nodes\n");
    cr_assert_not_null(p, "%s", out);
    p = strstr(p, "\nnode ");
    cr_assert_not_null(p, "%s", out);
    cr_assert(strstr(p, "type") && strstr(p, "output") && strstr(p, "params") &&
                  strstr(p, "MFLOP"),
              "%s", out);
    p = strchr(p + 1, '\n') + 1; /* the rule under the heading */
    p = strchr(p, '\n') + 1;
    long long params = 0, flops = 0;
    for (int i = 0; i < n; i++) {
        char name[64], type[64], shape[64], mflop[32], want_shape[64], want_mflop[32];
        long long prm;
        cr_assert_eq(sscanf(p, "%63s %63s %63s %lld %31s", name, type, shape, &prm, mflop), 5,
                     "row %d: %.80s", i, p);
        snprintf(want_shape, sizeof want_shape, "(%d,%d,%d)", want[i].c, want[i].h, want[i].w);
        snprintf(want_mflop, sizeof want_mflop, "%.3f", want[i].flops / 1e6);
        cr_expect_str_eq(name, want[i].name);
        cr_expect_str_eq(type, want[i].type);
        cr_expect_str_eq(shape, want_shape, "%s", name);
        cr_expect_eq(prm, want[i].params, "%s", name);
        cr_expect_str_eq(mflop, want_mflop, "%s", name);
        params += want[i].params;
        flops += want[i].flops;
        p = strchr(p, '\n') + 1;
    }
    cr_assert_eq(*p, '-', "a rule after the last node: %.80s", p);
    p = strchr(p, '\n') + 1;
    char total[64], mflop[32], want_mflop[32];
    long long prm;
    cr_assert_eq(sscanf(p, "%63s %lld %31s", total, &prm, mflop), 3, "%.80s", p);
    snprintf(want_mflop, sizeof want_mflop, "%.3f", flops / 1e6);
    cr_expect_str_eq(total, "total");
    cr_expect_eq(prm, params);
    cr_expect_str_eq(mflop, want_mflop);
    /* the convention, in the footer */
    cr_expect(strstr(p, "MFLOP: forward floating-point operations per image / 1e6"), "%s", p);
    cr_expect(strstr(p, "a multiply-add counts as 2 FLOPs"), "%s", p);
}

Test(summary, the_command_prints_the_table, .timeout = 60)
{
    static char out[16384];
    int rc = sh(out, sizeof out, "cd %s && %s summary experiments/task1_lazy.yaml 2>&1", SRC,
                RN_RUNNER_BIN);
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, "experiments/task1_lazy.yaml: ok: model 'simple_gap_cnn', 12 nodes") ==
                  out,
              "%s", out);
    check_table(out);
    /* validate --summary prints the same; overrides apply */
    static char out2[16384];
    rc = sh(out2, sizeof out2, "cd %s && %s validate --summary experiments/task1_lazy.yaml 2>&1",
            SRC, RN_RUNNER_BIN);
    cr_assert_eq(rc, 0, "%s", out2);
    cr_expect_str_eq(out2, out);
    rc = sh(out, sizeof out,
            "cd %s && %s summary experiments/task1_lazy.yaml model.layers.0.filters=16 2>&1", SRC,
            RN_RUNNER_BIN);
    cr_assert_eq(rc, 0, "%s", out);
    cr_expect(strstr(out, "conv1     conv2d           (16,28,28)               448"), "%s", out);
    /* plain validate prints no table */
    rc = sh(out, sizeof out, "cd %s && %s validate experiments/task1_lazy.yaml 2>&1", SRC,
            RN_RUNNER_BIN);
    cr_assert_eq(rc, 0, "%s", out);
    cr_expect_null(strstr(out, "MFLOP"), "%s", out);
}

Test(summary, the_command_refuses_what_has_no_table, .timeout = 60)
{
    char out[4096];
    int rc = sh(out, sizeof out, "cd %s && %s validate --summary experiments/task0_dataset.yaml 2>&1",
                SRC, RN_RUNNER_BIN);
    cr_expect_eq(rc, 1, "%s", out);
    cr_expect(strstr(out, "runner: --summary: the spec has no model to summarise\n"), "%s", out);
    rc = sh(out, sizeof out, "cd %s && %s experiments/task1_lazy.yaml --summary 2>&1", SRC,
            RN_RUNNER_BIN);
    cr_expect_eq(rc, 2, "%s", out);
    cr_expect_str_eq(out, "runner: --summary goes with validate: runner validate --summary "
                          "EXPERIMENT.yaml\nrun 'runner --help' for usage\n");
    rc = sh(out, sizeof out, "%s summary 2>&1", RN_RUNNER_BIN);
    cr_expect_eq(rc, 2, "%s", out);
    cr_expect_str_eq(out, "runner: summary needs an EXPERIMENT.yaml\nrun 'runner --help' for "
                          "usage\n");
}
