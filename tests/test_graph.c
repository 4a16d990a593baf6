/* Whole-graph checks: the cross-entropy gradient, the optimizers against
 * independently computed reference updates, end-to-end gradients and tangents
 * of a small CNN through the graph executor, and basic_block expansion. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/conv2d.h"
#include "runner/graph.h"
#include "runner/loss.h"
#include "runner/optim.h"
#include "runner/train.h"

/* A spec layer from "type" and "key=value,key=value" (numbers only). */
static void spec_layer(struct rn_spec_layer *s, const char *type, const char *name, const char *kv)
{
    memset(s, 0, sizeof *s);
    s->type = rn_layer_type_find(type);
    cr_assert_not_null(s->type, "no layer type %s", type);
    snprintf(s->name, sizeof s->name, "%s", name);
    snprintf(s->file, sizeof s->file, "test.yaml");
    s->line = 1;
    s->col = 1;
    for (int i = 0; i < s->type->n_keys; i++)
        s->v.num[i] = s->type->keys[i].def;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", kv);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        char *eq = strchr(tok, '=');
        cr_assert_not_null(eq);
        *eq = 0;
        int found = 0;
        for (int i = 0; i < s->type->n_keys; i++)
            if (strcmp(s->type->keys[i].key, tok) == 0) {
                s->v.num[i] = atof(eq + 1);
                s->v.given[i] = 1;
                found = 1;
            }
        cr_assert(found, "unknown key %s", tok);
    }
}

static struct rn_spec_model small_cnn(void)
{
    struct rn_spec_model m;
    memset(&m, 0, sizeof m);
    snprintf(m.name, sizeof m.name, "small");
    spec_layer(&m.layers[m.n_layers++], "conv2d", "conv1", "filters=4,kernel=3,padding=1");
    spec_layer(&m.layers[m.n_layers++], "relu", "", "");
    spec_layer(&m.layers[m.n_layers++], "maxpool2d", "", "kernel=2");
    spec_layer(&m.layers[m.n_layers++], "conv2d", "conv2", "filters=6,kernel=3,padding=1");
    spec_layer(&m.layers[m.n_layers++], "relu", "", "");
    spec_layer(&m.layers[m.n_layers++], "global_avg_pool", "features", "");
    spec_layer(&m.layers[m.n_layers++], "linear", "fc", "units=10");
    return m;
}

static double loss_of(struct rn_graph *g, int n, const uint8_t *y)
{
    struct rn_ctx ctx = {.train = 0, .seed = 1};
    struct rn_error err;
    cr_assert_eq(rn_graph_forward(g, n, -1, &ctx, &err), 0, "%s", err.msg);
    return rn_cross_entropy(&g->nodes[g->n_nodes - 1].y, y, 1, NULL, NULL, NULL);
}

Test(loss, cross_entropy_gradient_and_value)
{
    float z[2 * 3] = {0.5f, -1.0f, 2.0f, 3.0f, 3.0f, -2.0f};
    float d[6] = {0};
    struct rn_tensor zt = rn_tensor_view(z, 2, 3, 1, 1), dt = rn_tensor_view(d, 2, 3, 1, 1);
    uint8_t y[2] = {2, 0};
    int correct = 0;
    double l = rn_cross_entropy(&zt, y, 1, &dt, &correct, NULL);
    /* independent reference in double */
    double ref = 0;
    for (int i = 0; i < 2; i++) {
        double s = 0;
        for (int j = 0; j < 3; j++)
            s += exp(z[i * 3 + j]);
        ref += log(s) - z[i * 3 + y[i]];
    }
    cr_assert_float_eq(l, ref / 2, 1e-6);
    cr_assert_eq(correct, 2); /* ties go to the first maximum: sample 2 predicts 0 */
    for (int k = 0; k < 6; k++) {
        float keep = z[k];
        z[k] = keep + 1e-3f;
        double lp = rn_cross_entropy(&zt, y, 1, NULL, NULL, NULL);
        z[k] = keep - 1e-3f;
        double lm = rn_cross_entropy(&zt, y, 1, NULL, NULL, NULL);
        z[k] = keep;
        cr_assert_float_eq(d[k], (lp - lm) / 2e-3, 2e-4, "dz[%d] %g vs %g", k, d[k],
                           (lp - lm) / 2e-3);
    }
}

/* One parameter tensor of 3 values driven through rn_optim with fixed
 * gradients; compared with the update rules of torch.optim written out here. */
static void optim_case(const char *kind, double wd, double mom)
{
    struct rn_graph g;
    memset(&g, 0, sizeof g);
    struct rn_node node;
    memset(&node, 0, sizeof node);
    struct rn_error err;
    node.layer.type = rn_layer_type_find("linear");
    cr_assert_eq(rn_layer_add_param(&node.layer, "weight", 2, 3, 1, 1, 1, 1, &err), 0);
    g.nodes = &node;
    g.n_nodes = 1;
    float *p = node.layer.params[0].value.data, *gr = node.layer.params[0].grad.data;
    double ref[3] = {0.5, -0.3, 0.1}, m[3] = {0}, v[3] = {0};
    for (int i = 0; i < 3; i++)
        p[i] = (float)ref[i];
    struct rn_optim o;
    cr_assert_eq(rn_optim_init(&o, kind, &g, &err), 0, "%s", err.msg);
    o.lr = 0.01;
    o.weight_decay = wd;
    o.momentum = mom;
    const double grads[4][3] = {
        {0.1, -0.2, 0.3}, {0.05, 0.0, -0.4}, {-0.3, 0.2, 0.1}, {1.0, 1.0, -1.0}};
    for (int t = 1; t <= 4; t++) {
        for (int i = 0; i < 3; i++)
            gr[i] = (float)grads[t - 1][i];
        rn_optim_step(&o, NULL);
        for (int i = 0; i < 3; i++) {
            double gi = grads[t - 1][i];
            if (strcmp(kind, "sgd") == 0) {
                gi += wd * ref[i];
                if (mom != 0) {
                    m[i] = t == 1 ? gi : mom * m[i] + gi;
                    gi = m[i];
                }
                ref[i] -= 0.01 * gi;
                continue;
            }
            if (strcmp(kind, "adamw") == 0)
                ref[i] *= 1 - 0.01 * wd;
            else
                gi += wd * ref[i];
            m[i] = 0.9 * m[i] + 0.1 * gi;
            v[i] = 0.999 * v[i] + 0.001 * gi * gi;
            double mh = m[i] / (1 - pow(0.9, t)), vh = v[i] / (1 - pow(0.999, t));
            ref[i] -= 0.01 * mh / (sqrt(vh) + 1e-8);
        }
        for (int i = 0; i < 3; i++)
            cr_assert_float_eq(p[i], ref[i], 1e-6, "%s step %d param %d: %.8f vs %.8f", kind, t, i,
                               p[i], ref[i]);
    }
    rn_optim_free(&o);
    rn_layer_free(&node.layer);
}

Test(optim, adam)
{
    optim_case("adam", 0, 0);
}
Test(optim, adam_l2)
{
    optim_case("adam", 0.1, 0);
}
Test(optim, adamw)
{
    optim_case("adamw", 0.1, 0);
}
Test(optim, sgd_momentum_weight_decay)
{
    optim_case("sgd", 0.01, 0.9);
}

Test(optim, clip_by_global_norm)
{
    struct rn_graph g;
    memset(&g, 0, sizeof g);
    struct rn_node node;
    memset(&node, 0, sizeof node);
    struct rn_error err;
    node.layer.type = rn_layer_type_find("linear");
    cr_assert_eq(rn_layer_add_param(&node.layer, "weight", 2, 2, 1, 1, 1, 1, &err), 0);
    g.nodes = &node;
    g.n_nodes = 1;
    float *p = node.layer.params[0].value.data, *gr = node.layer.params[0].grad.data;
    gr[0] = 3;
    gr[1] = 4; /* norm 5 -> scaled to norm 1 */
    struct rn_optim o;
    cr_assert_eq(rn_optim_init(&o, "sgd", &g, &err), 0);
    o.lr = 1;
    o.clip_norm = 1;
    rn_optim_step(&o, NULL);
    cr_assert_float_eq(p[0], -3 / (5 + 1e-6), 1e-6);
    cr_assert_float_eq(p[1], -4 / (5 + 1e-6), 1e-6);
    rn_optim_free(&o);
    rn_layer_free(&node.layer);
}

static void random_input(struct rn_graph *g, int n, uint64_t seed)
{
    struct rn_rng r;
    rn_rng_init(&r, seed, 99, 0);
    g->x.n = n;
    for (size_t k = 0; k < rn_tensor_numel(&g->x); k++)
        g->x.data[k] = rn_rng_uniform(&r);
}

Test(graph, end_to_end_gradient_matches_finite_differences)
{
    struct rn_spec_model m = small_cnn();
    struct rn_graph g;
    struct rn_error err;
    struct rn_shape in = {3, 8, 8};
    cr_assert_eq(rn_graph_build(&g, &m, in, 4, &err), 0, "%s", err.msg);
    cr_assert_eq(g.n_nodes, 7);
    cr_assert_str_eq(g.nodes[1].layer.name, "relu1");
    cr_assert_str_eq(g.nodes[4].layer.name, "relu2");
    rn_graph_init_params(&g, 7);
    const int n = 3;
    uint8_t y[3] = {1, 7, 3};
    random_input(&g, n, 5);
    struct rn_ctx ctx = {.train = 0, .seed = 1};
    cr_assert_eq(rn_graph_forward(&g, n, -1, &ctx, &err), 0);
    cr_assert_eq(rn_graph_zero_dy(&g, n, NULL), 0);
    rn_cross_entropy(&g.nodes[6].y, y, 1, &g.nodes[6].dy, NULL, NULL);
    cr_assert_eq(rn_graph_zero_grad(&g, NULL), 0);
    cr_assert_eq(rn_graph_backward(&g, n, 6, 1, &ctx, &err), 0, "%s", err.msg);

    int checked = 0, bad = 0;
    const float eps = 3e-3f;
    /* parameters of conv1, conv2 and fc, and input pixels */
    for (int node = 0; node < g.n_nodes; node++) {
        for (int j = 0; j < g.nodes[node].layer.n_params; j++) {
            struct rn_param *p = &g.nodes[node].layer.params[j];
            size_t numel = rn_tensor_numel(&p->value);
            for (size_t k = 0; k < numel; k += 1 + numel / 12) {
                float keep = p->value.data[k];
                p->value.data[k] = keep + eps;
                double lp = loss_of(&g, n, y);
                p->value.data[k] = keep - eps;
                double lm = loss_of(&g, n, y);
                p->value.data[k] = keep + eps / 2;
                double lp2 = loss_of(&g, n, y);
                p->value.data[k] = keep - eps / 2;
                double lm2 = loss_of(&g, n, y);
                p->value.data[k] = keep;
                double fd = (lp - lm) / (2 * eps), fd2 = (lp2 - lm2) / eps;
                if (fabs(fd - fd2) > 1e-2 * fmax(fabs(fd), fabs(fd2)) + 1e-5)
                    continue; /* a relu or max-pool kink inside the step */
                checked++;
                double a = p->grad.data[k];
                if (fabs(a - fd) > 2e-2 * fmax(fabs(a), fabs(fd)) + 2e-4) {
                    bad++;
                    fprintf(stderr, "%s.%s[%zu]: backward %g, finite difference %g\n",
                            g.nodes[node].layer.name, p->name, k, a, fd);
                }
            }
        }
    }
    for (size_t k = 0; k < rn_tensor_numel(&g.x); k += 7) {
        float keep = g.x.data[k];
        g.x.data[k] = keep + eps;
        double lp = loss_of(&g, n, y);
        g.x.data[k] = keep - eps;
        double lm = loss_of(&g, n, y);
        g.x.data[k] = keep;
        double fd = (lp - lm) / (2 * eps);
        checked++;
        if (fabs(g.dx.data[k] - fd) > 2e-2 * fmax(fabs(g.dx.data[k]), fabs(fd)) + 2e-4) {
            bad++;
            fprintf(stderr, "x[%zu]: backward %g, finite difference %g\n", k, g.dx.data[k], fd);
        }
    }
    cr_assert_gt(checked, 60, "only %d points checked", checked);
    cr_assert_eq(bad, 0, "%d of %d gradient entries disagree", bad, checked);
    rn_graph_free(&g);
}

/* The tangent passes give the directional derivative of the parameter
 * gradient along an input direction v: (grad_W(x + e v) - grad_W(x - e v)) / 2e. */
Test(graph, tangent_gives_directional_derivative_of_parameter_gradient)
{
    struct rn_spec_model m = small_cnn();
    struct rn_graph g;
    struct rn_error err;
    struct rn_shape in = {3, 8, 8};
    cr_assert_eq(rn_graph_build(&g, &m, in, 4, &err), 0, "%s", err.msg);
    rn_graph_init_params(&g, 11);
    const int n = 2, last = g.n_nodes - 1;
    uint8_t y[2] = {4, 9};
    random_input(&g, n, 3);
    struct rn_ctx ctx = {.train = 0, .seed = 1};
    size_t nx = rn_tensor_numel(&g.x);
    float *x0 = malloc(nx * sizeof(float)), *v = malloc(nx * sizeof(float));
    memcpy(x0, g.x.data, nx * sizeof(float));
    struct rn_rng r;
    rn_rng_init(&r, 42, 1, 0);
    for (size_t k = 0; k < nx; k++)
        v[k] = rn_rng_uniform(&r) - 0.5f;

    /* exact: forward, backward, tangent forward, loss tangent, tangent backward */
    cr_assert_eq(rn_graph_forward(&g, n, -1, &ctx, &err), 0);
    cr_assert_eq(rn_graph_zero_dy(&g, n, NULL), 0);
    float probs[20];
    rn_cross_entropy(&g.nodes[last].y, y, 1, &g.nodes[last].dy, NULL, probs);
    cr_assert_eq(rn_graph_zero_grad(&g, NULL), 0);
    cr_assert_eq(rn_graph_backward(&g, n, last, 0, &ctx, &err), 0);
    /* the first tangent pass allocates g->tx (zero direction); then set v */
    cr_assert_eq(rn_graph_tangent_forward(&g, n, -1, &ctx, &err), 0, "%s", err.msg);
    memcpy(g.tx.data, v, nx * sizeof(float));
    cr_assert_eq(rn_graph_tangent_forward(&g, n, -1, &ctx, &err), 0, "%s", err.msg);
    /* R{dz} = (diag(p) - p p^T) R{z} / n for mean cross-entropy */
    const float *tz = g.nodes[last].ty.data;
    float *tdz = g.nodes[last].tdy.data;
    for (int i = 0; i < n; i++) {
        double dot = 0;
        for (int j = 0; j < 10; j++)
            dot += probs[i * 10 + j] * tz[i * 10 + j];
        for (int j = 0; j < 10; j++)
            tdz[i * 10 + j] = (float)(probs[i * 10 + j] * (tz[i * 10 + j] - dot) / n);
    }
    cr_assert_eq(rn_graph_zero_grad(&g, NULL), 0);
    cr_assert_eq(rn_graph_tangent_backward(&g, n, last, &ctx, &err), 0, "%s", err.msg);
    struct rn_param *w2 = rn_layer_param(&g.nodes[3].layer, "weight");
    struct rn_param *wf = rn_layer_param(&g.nodes[last].layer, "weight");
    size_t n2 = rn_tensor_numel(&w2->value), nf = rn_tensor_numel(&wf->value);
    float *exact2 = malloc(n2 * sizeof(float)), *exactf = malloc(nf * sizeof(float));
    memcpy(exact2, w2->grad.data, n2 * sizeof(float));
    memcpy(exactf, wf->grad.data, nf * sizeof(float));

    /* finite differences of the parameter gradient along v */
    const float eps = 1e-3f;
    float *gp2 = malloc(n2 * sizeof(float)), *gpf = malloc(nf * sizeof(float));
    for (int side = 0; side < 2; side++) {
        for (size_t k = 0; k < nx; k++)
            g.x.data[k] = x0[k] + (side ? -eps : eps) * v[k];
        cr_assert_eq(rn_graph_forward(&g, n, -1, &ctx, &err), 0);
        cr_assert_eq(rn_graph_zero_dy(&g, n, NULL), 0);
        rn_cross_entropy(&g.nodes[last].y, y, 1, &g.nodes[last].dy, NULL, NULL);
        cr_assert_eq(rn_graph_zero_grad(&g, NULL), 0);
        cr_assert_eq(rn_graph_backward(&g, n, last, 0, &ctx, &err), 0);
        for (size_t k = 0; k < n2; k++)
            gp2[k] = side ? (gp2[k] - w2->grad.data[k]) / (2 * eps) : w2->grad.data[k];
        for (size_t k = 0; k < nf; k++)
            gpf[k] = side ? (gpf[k] - wf->grad.data[k]) / (2 * eps) : wf->grad.data[k];
    }
    double num = 0, den = 0;
    for (size_t k = 0; k < n2; k++) {
        num += (exact2[k] - gp2[k]) * (exact2[k] - gp2[k]);
        den += gp2[k] * gp2[k];
    }
    for (size_t k = 0; k < nf; k++) {
        num += (exactf[k] - gpf[k]) * (exactf[k] - gpf[k]);
        den += gpf[k] * gpf[k];
    }
    cr_assert_gt(den, 1e-10, "the directional derivative is zero: nothing was checked");
    cr_assert_lt(sqrt(num / den), 2e-2, "relative error %g", sqrt(num / den));
    free(x0);
    free(v);
    free(exact2);
    free(exactf);
    free(gp2);
    free(gpf);
    rn_graph_free(&g);
}

Test(graph, basic_block_expands_to_pytorch_names)
{
    struct rn_spec_model m;
    memset(&m, 0, sizeof m);
    spec_layer(&m.layers[m.n_layers++], "conv2d", "conv1", "filters=8,kernel=3,padding=1,bias=0");
    spec_layer(&m.layers[m.n_layers++], "basic_block", "layer1.0", "filters=8");
    spec_layer(&m.layers[m.n_layers++], "basic_block", "layer2.0", "filters=16,stride=2");
    spec_layer(&m.layers[m.n_layers++], "global_avg_pool", "features", "");
    struct rn_graph g;
    struct rn_error err;
    struct rn_shape in = {3, 8, 8};
    cr_assert_eq(rn_graph_build(&g, &m, in, 2, &err), 0, "%s", err.msg);
    const char *expect[] = {"conv1",
                            "layer1.0.conv1",
                            "layer1.0.bn1",
                            "layer1.0.relu1",
                            "layer1.0.conv2",
                            "layer1.0.bn2",
                            "layer1.0.add",
                            "layer1.0",
                            "layer2.0.conv1",
                            "layer2.0.bn1",
                            "layer2.0.relu1",
                            "layer2.0.conv2",
                            "layer2.0.bn2",
                            "layer2.0.shortcut.0",
                            "layer2.0.shortcut.1",
                            "layer2.0.add",
                            "layer2.0",
                            "features"};
    cr_assert_eq(g.n_nodes, 18);
    for (int i = 0; i < 18; i++)
        cr_assert_str_eq(g.nodes[i].layer.name, expect[i]);
    /* identity shortcut in layer1.0: add reads bn2 and the block input */
    cr_assert_eq(g.nodes[6].in[0], 5);
    cr_assert_eq(g.nodes[6].in[1], 0);
    cr_assert_eq(g.nodes[16].layer.out.c, 16);
    cr_assert_eq(g.nodes[16].layer.out.h, 4);
    cr_assert_null(rn_layer_param(&g.nodes[1].layer, "bias"), "block convs have no bias");
    rn_graph_free(&g);
}

Test(graph, shape_errors_name_the_layer_and_position)
{
    struct rn_spec_model m;
    memset(&m, 0, sizeof m);
    spec_layer(&m.layers[m.n_layers++], "conv2d", "conv1", "filters=4,kernel=3,padding=1");
    spec_layer(&m.layers[m.n_layers++], "linear", "fc", "units=10");
    m.layers[1].line = 12;
    m.layers[1].col = 5;
    struct rn_graph g;
    struct rn_error err;
    struct rn_shape in = {3, 8, 8};
    cr_assert_eq(rn_graph_build(&g, &m, in, 2, &err), -1);
    cr_assert(strncmp(err.msg, "test.yaml:12:5: error: layer 'fc' (linear): ", 44) == 0, "%s",
              err.msg);
    cr_assert(strstr(err.msg, "(4,8,8)"), "%s", err.msg);

    memset(&m, 0, sizeof m);
    spec_layer(&m.layers[m.n_layers++], "conv2d", "conv1", "filters=4,kernel=3");
    spec_layer(&m.layers[m.n_layers++], "add", "sum", "");
    snprintf(m.layers[1].from[0], RN_NAME_MAX, "conv1");
    snprintf(m.layers[1].from[1], RN_NAME_MAX, "nope");
    m.layers[1].n_from = 2;
    cr_assert_eq(rn_graph_build(&g, &m, in, 2, &err), -1);
    cr_assert_str_eq(err.msg,
                     "test.yaml:1:1: error: layer 'sum' (add): from: no earlier node named 'nope'");
}

/* An inference pass gives the kept nodes bit for bit what the full forward
 * gives them, sharing a few pool buffers among the other nodes (a residual
 * network: the block input stays alive across the block). */
Test(graph, infer_keeps_outputs_bit_identical_in_a_small_pool)
{
    struct rn_spec_model m;
    memset(&m, 0, sizeof m);
    spec_layer(&m.layers[m.n_layers++], "conv2d", "conv1", "filters=8,kernel=3,padding=1,bias=0");
    spec_layer(&m.layers[m.n_layers++], "basic_block", "layer1.0", "filters=8");
    spec_layer(&m.layers[m.n_layers++], "basic_block", "layer1.1", "filters=8");
    spec_layer(&m.layers[m.n_layers++], "basic_block", "layer2.0", "filters=16,stride=2");
    spec_layer(&m.layers[m.n_layers++], "global_avg_pool", "features", "");
    spec_layer(&m.layers[m.n_layers++], "linear", "fc", "units=10");
    struct rn_graph g;
    struct rn_error err;
    struct rn_shape in = {3, 8, 8};
    cr_assert_eq(rn_graph_build(&g, &m, in, 5, &err), 0, "%s", err.msg);
    rn_graph_init_params(&g, 3);
    const int n = 5, fc = g.n_nodes - 1, feat = rn_graph_find(&g, "features");
    cr_assert_eq(fc, 25);
    random_input(&g, n, 11);
    struct rn_ctx ctx = {.train = 0, .seed = 1};
    cr_assert_eq(rn_graph_forward(&g, n, -1, &ctx, &err), 0, "%s", err.msg);
    float logits[50], features[80];
    memcpy(logits, g.nodes[fc].y.data, sizeof logits);
    memcpy(features, g.nodes[feat].y.data, sizeof features);
    for (int i = 0; i < g.n_nodes; i++) /* nothing is left over from the full pass */
        memset(g.nodes[i].y.data, 0xff, rn_tensor_numel(&g.nodes[i].y) * sizeof(float));
    const int keep[2] = {feat, fc};
    cr_assert_eq(rn_graph_infer(&g, n, keep, 2, &ctx, &err), 0, "%s", err.msg);
    cr_assert_eq(memcmp(logits, g.nodes[fc].y.data, sizeof logits), 0);
    cr_assert_eq(memcmp(features, g.nodes[feat].y.data, sizeof features), 0);
    /* at most the block input, two block activations and the shortcut alive at once */
    cr_assert_geq(g.ypool.n, 2);
    cr_assert_leq(g.ypool.n, 4, "%d pool buffers for %d nodes", g.ypool.n, g.n_nodes);
    size_t pooled = 0, all = 0;
    for (int b = 0; b < g.ypool.n; b++)
        pooled += g.ypool.buf[b].cap;
    for (int i = 0; i < fc; i++)
        all += (size_t)n * g.nodes[i].layer.out.c * g.nodes[i].layer.out.h * g.nodes[i].layer.out.w;
    cr_assert_lt(pooled * 4, all, "pool %zu floats, activations %zu", pooled, all);
    /* a pass that keeps only the logits again matches; the pool does not grow */
    const int n_pool = g.ypool.n;
    cr_assert_eq(rn_graph_infer(&g, n, &fc, 1, &ctx, &err), 0, "%s", err.msg);
    cr_assert_eq(memcmp(logits, g.nodes[fc].y.data, sizeof logits), 0);
    cr_assert_eq(g.ypool.n, n_pool);
    const int bad = 26;
    cr_assert_neq(rn_graph_infer(&g, n, &bad, 1, &ctx, &err), 0);
    cr_assert_str_eq(err.msg, "inference: node 26 is not in the graph (26 nodes)");
    cr_assert_neq(rn_graph_infer(&g, 6, &fc, 1, &ctx, &err), 0);
    cr_assert_str_eq(err.msg, "batch of 6 samples does not fit the graph (max 5)");
    rn_graph_free(&g);
}

/* A pooled backward (the gradients of most nodes in a few shared buffers)
 * gives the parameter gradients of the plain one bit for bit, on a residual
 * network where a block's input is read by two consumers. */
static void pooled_backward_case(void);

/* On both convolution kernels; the pooled pass runs twice, the second time
 * on buffers that hold the first one's values (what the layers that write
 * rather than add, backward_assigns, must overwrite whole). */
Test(graph, pooled_backward_gives_identical_parameter_gradients)
{
    const char *impl[] = {"ref", "onednn"};
    for (int k = 0; k < 2; k++) {
        if (k == 1 && !rn_conv2d_cpu_have_onednn())
            continue;
        setenv("RN_CPU_CONV", impl[k], 1);
        pooled_backward_case();
    }
    unsetenv("RN_CPU_CONV");
}

static void pooled_backward_case(void)
{
    struct rn_spec_model m;
    memset(&m, 0, sizeof m);
    spec_layer(&m.layers[m.n_layers++], "conv2d", "conv1", "filters=8,kernel=3,padding=1,bias=0");
    spec_layer(&m.layers[m.n_layers++], "basic_block", "layer1.0", "filters=8");
    spec_layer(&m.layers[m.n_layers++], "basic_block", "layer2.0", "filters=16,stride=2");
    spec_layer(&m.layers[m.n_layers++], "global_avg_pool", "features", "");
    spec_layer(&m.layers[m.n_layers++], "linear", "fc", "units=10");
    struct rn_graph g;
    struct rn_error err;
    struct rn_shape in = {3, 8, 8};
    cr_assert_eq(rn_graph_build(&g, &m, in, 4, &err), 0, "%s", err.msg);
    rn_graph_init_params(&g, 5);
    const int n = 4, N = g.n_nodes, fc = N - 1;
    uint8_t y[4] = {3, 1, 4, 1};
    unsigned char run[64], src[64] = {0};
    cr_assert_lt(N, 64);
    memset(run, 1, sizeof run);
    src[fc] = 1;
    random_input(&g, n, 21);
    struct rn_ctx ctx = {.train = 1, .seed = 1};
    float *want[64][RN_MAX_PARAMS] = {{0}};
    for (int pass = 0; pass < 3; pass++) {
        cr_assert_eq(rn_graph_forward(&g, n, -1, &ctx, &err), 0, "%s", err.msg);
        cr_assert_eq(rn_graph_zero_dy_nodes(&g, n, pass ? src : run, &err), 0, "%s", err.msg);
        rn_cross_entropy(&g.nodes[fc].y, y, 1, &g.nodes[fc].dy, NULL, NULL);
        cr_assert_eq(rn_graph_zero_grad(&g, NULL), 0);
        if (pass)
            cr_assert_eq(rn_graph_backward_pooled(&g, n, run, src, &ctx, &err), 0, "%s", err.msg);
        else
            cr_assert_eq(rn_graph_backward_nodes(&g, n, run, 0, &ctx, &err), 0, "%s", err.msg);
        int compared = 0;
        for (int i = 0; i < N; i++)
            for (int j = 0; j < g.nodes[i].layer.n_params; j++) {
                const struct rn_tensor *gr = &g.nodes[i].layer.params[j].grad;
                size_t bytes = rn_tensor_numel(gr) * sizeof(float);
                if (!gr->data)
                    continue; /* a buffer (running statistics): no gradient */
                if (!pass) {
                    want[i][j] = malloc(bytes);
                    memcpy(want[i][j], gr->data, bytes);
                    continue;
                }
                cr_assert_eq(memcmp(want[i][j], gr->data, bytes), 0, "pass %d: %s.%s differs", pass,
                             g.nodes[i].layer.name, g.nodes[i].layer.params[j].name);
                if (pass == 2)
                    free(want[i][j]);
                compared++;
            }
        cr_assert(pass == 0 || compared == 18, "%d parameters compared", compared);
    }
    /* Nodes 0-15 get their gradient first from conv, batchnorm, relu or add,
     * which write it; the last relu's (from global_avg_pool) and the
     * features' (from linear) are zeroed for those to add into; the fc's is
     * its own (the loss writes it). */
    cr_assert_eq(g.n_assigned, 16, "%d buffers written unzeroed", g.n_assigned);
    /* the block input, the two inputs of an add and the node at hand at most */
    cr_assert_geq(g.dypool.n, 2);
    cr_assert_leq(g.dypool.n, 4, "%d gradient buffers for %d nodes", g.dypool.n, N);
    rn_graph_free(&g);
}

/* Inference passes run conv2d and the relu that alone reads it as one pass
 * (a relu post-op), with the logits of the plain forward, on oneDNN's
 * kernels and on the im2col reference; a conv whose output is kept, or that
 * a second node reads, is not fused. */
Test(graph, infer_fuses_conv_and_relu)
{
    const char *impl[] = {"ref", "onednn"};
    for (int k = 0; k < 2; k++) {
        if (k == 1 && !rn_conv2d_cpu_have_onednn())
            continue;
        setenv("RN_CPU_CONV", impl[k], 1);
        struct rn_spec_model m = small_cnn();
        struct rn_graph g;
        struct rn_error err;
        struct rn_shape in = {3, 12, 12};
        cr_assert_eq(rn_graph_build(&g, &m, in, 6, &err), 0, "%s", err.msg);
        rn_graph_init_params(&g, 9);
        const int n = 6, fc = g.n_nodes - 1;
        random_input(&g, n, 4);
        for (size_t q = 0; q < rn_tensor_numel(&g.x); q++)
            g.x.data[q] -= 0.5f; /* negative pre-activations too */
        struct rn_ctx ctx = {.train = 0, .seed = 1};
        cr_assert_eq(rn_graph_forward(&g, n, -1, &ctx, &err), 0, "%s", err.msg);
        float logits[60];
        memcpy(logits, g.nodes[fc].y.data, sizeof logits);
        cr_assert_eq(rn_graph_infer(&g, n, &fc, 1, &ctx, &err), 0, "%s", err.msg);
        cr_assert_eq(g.n_fused, 2, "%s: %d pairs fused", impl[k], g.n_fused);
        for (int q = 0; q < 60; q++)
            cr_assert_eq(logits[q], g.nodes[fc].y.data[q], "%s: logit %d: %.9g vs %.9g", impl[k], q,
                         logits[q], g.nodes[fc].y.data[q]);
        /* conv2 kept: its relu runs on its own, and keeps the plain values */
        const int keep[2] = {3, fc};
        cr_assert_eq(rn_graph_infer(&g, n, keep, 2, &ctx, &err), 0, "%s", err.msg);
        cr_assert_eq(g.n_fused, 1);
        cr_assert_eq(memcmp(logits, g.nodes[fc].y.data, sizeof logits), 0);
        rn_graph_free(&g);
    }
    unsetenv("RN_CPU_CONV");
}
