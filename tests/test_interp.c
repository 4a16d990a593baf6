/* Interpretability analyses (runner/analyses/, analyses/interp.h):
 *  - Grad-CAM, Grad-CAM++ and saliency against an independent PyTorch
 *    reference (tests/reference/make_interp_fixture.py ->
 *    tests/fixtures/interp_ref.h5), to 1e-4;
 *  - finite differences of the class score with respect to the tapped
 *    activations, and of the CE with respect to the input;
 *  - orientation: a bright patch in the top of the image gives a map that
 *    peaks there (no transposes, no flips), and the upsampling matches
 *    PyTorch's bilinear (align_corners=False) on a hand-checked case;
 *  - `cases` and `models` lists in specs: canonical text, errors at
 *    file:line:col, the compact form, round trip through the resolved spec;
 *  - every analysis end to end on the MNIST fixture with the reference model
 *    loaded from the fixture, a missing model skipped with a warning, and
 *    every figure drawn from run.h5 alone.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runner/analysis.h"
#include "runner/graph.h"
#include "runner/analyses/interp.h"
#include "runner/plot.h"
#include "runner/results.h"
#include "runner/spec.h"
#include "runner/train.h"

#define REF RN_FIXTURES "/interp_ref.h5"

/* ---- helpers ---------------------------------------------------------- */

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    fputs(text, f);
    fclose(f);
}

/* A spec from text, in a temporary file. Returns 0 or the error count;
 * the errors go to errbuf. */
static int load_spec_text(struct rn_spec *s, const char *text, char *errbuf, size_t cap)
{
    char path[] = "/tmp/rn_interp_spec_XXXXXX.yaml";
    int fd = mkstemps(path, 5);
    cr_assert(fd >= 0);
    close(fd);
    write_file(path, text);
    FILE *errs = fmemopen(errbuf, cap, "w");
    int n = 0;
    struct rn_error err;
    memset(s, 0, sizeof *s);
    rn_spec_load(s, path, NULL, errs, &n, &err);
    fclose(errs);
    unlink(path);
    return n;
}

static struct rn_spec *spec_new(void)
{
    struct rn_spec *s = calloc(1, sizeof *s);
    cr_assert_not_null(s);
    return s;
}

/* The reference model with the fixture's weights, in a bare run. */
static struct rn_run *ref_model(struct rn_spec *spec)
{
    char text[1024], errs[2048] = "";
    snprintf(text, sizeof text,
             "name: interp_test\n"
             "data: {dir: %s/mnist, colouring: background}\n"
             "model: {include: %s/interp_model.yaml}\n"
             "load: {run: %s}\n",
             RN_FIXTURES, RN_FIXTURES, REF);
    cr_assert_eq(load_spec_text(spec, text, errs, sizeof errs), 0, "%s", errs);
    struct rn_run *run = calloc(1, sizeof *run);
    cr_assert_not_null(run);
    struct rn_error err;
    struct rn_shape in = {3, 28, 28};
    cr_assert_eq(rn_graph_build(&run->graph, &spec->model, in, 8, &err), 0, "%s", err.msg);
    run->spec = spec;
    run->has_graph = 1;
    run->logits_node = run->graph.n_nodes - 1;
    cr_assert_eq(rn_run_load_model(run, REF, "main", &err), 0, "%s", err.msg);
    return run;
}

static void ref_free(struct rn_run *run, struct rn_spec *spec)
{
    rn_graph_free(&run->graph);
    free(run);
    rn_spec_free(spec);
    free(spec);
}

static void *read_ref(const char *name, enum rn_dtype t, int *ndim, int dims[4])
{
    struct rn_results *r = NULL;
    struct rn_error err;
    void *data = NULL;
    cr_assert_eq(rn_results_open(&r, REF, &err), 0, "%s", err.msg);
    char path[128];
    snprintf(path, sizeof path, "/%s", name);
    cr_assert_eq(rn_results_read(r, path, t, &data, ndim, dims, &err), 0, "%s", err.msg);
    rn_results_close(r);
    return data;
}

static int ref_inputs(struct rn_graph *g)
{
    int nd, dims[4];
    float *x = read_ref("inputs", RN_DTYPE_F32, &nd, dims);
    cr_assert_eq(nd, 4);
    cr_assert(dims[0] <= g->max_n && dims[1] == 3 && dims[2] == 28 && dims[3] == 28);
    memcpy(g->x.data, x, sizeof(float) * (size_t)dims[0] * 3 * 28 * 28);
    g->x.n = dims[0];
    free(x);
    return dims[0] & 7; /* <= 7: the graph holds 8 */
}

/* Compares got to want (count values), |got - want| <= tol; prints the first
 * mismatches. Returns the number of mismatches. */
static int compare(const char *what, const float *got, const float *want, size_t count, double tol)
{
    int bad = 0;
    for (size_t i = 0; i < count; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (!(d <= tol)) {
            if (bad < 5)
                fprintf(stderr, "%s[%zu]: got %.8g, want %.8g (|diff| %.3g > %.3g)\n", what, i,
                        got[i], want[i], d, tol);
            bad++;
        }
    }
    if (bad)
        fprintf(stderr, "%s: %d of %zu values differ\n", what, bad, count);
    return bad;
}

static float max_abs(const float *v, size_t n)
{
    float m = 0;
    for (size_t i = 0; i < n; i++)
        m = fabsf(v[i]) > m ? fabsf(v[i]) : m;
    return m;
}

/* ---- against the PyTorch reference ------------------------------------- */

Test(interp, logits_match_reference)
{
    struct rn_spec *spec = spec_new();
    struct rn_run *run = ref_model(spec);
    int n = ref_inputs(&run->graph), nd, dims[4];
    struct rn_ctx ctx = {0};
    struct rn_error err;
    cr_assert_eq(rn_graph_forward(&run->graph, n, run->logits_node, &ctx, &err), 0, "%s", err.msg);
    float *want = read_ref("logits", RN_DTYPE_F32, &nd, dims);
    cr_assert_eq(compare("logits", run->graph.nodes[run->logits_node].y.data, want,
                         (size_t)n * 10, 1e-4), 0);
    free(want);
    ref_free(run, spec);
}

static void check_cam(enum rn_cam_method method, const char *raw_name, const char *map_name)
{
    struct rn_spec *spec = spec_new();
    struct rn_run *run = ref_model(spec);
    struct rn_graph *g = &run->graph;
    int n = ref_inputs(g), nd, dims[4];
    int32_t *req = read_ref("requested", RN_DTYPE_I32, &nd, dims);
    int32_t *cls = read_ref("classes", RN_DTYPE_I32, &nd, dims);
    float *want_raw = read_ref(raw_name, RN_DTYPE_F32, &nd, dims);
    cr_assert(nd == 3 && dims[1] == 7 && dims[2] == 7);
    float *want_map = read_ref(map_name, RN_DTYPE_F32, &nd, dims);
    int classes[8];
    for (int i = 0; i < n; i++)
        classes[i] = req[i];
    float raw[8 * 49], map[8 * 784], probs[8 * 10];
    struct rn_error err;
    int tap = rn_graph_find(g, "conv3");
    cr_assert(tap >= 0);
    cr_assert_eq(rn_gradcam(g, n, run->logits_node, tap, method, classes, raw, map, probs, &err),
                 0, "%s", err.msg);
    for (int i = 0; i < n; i++)
        cr_expect_eq(classes[i], cls[i], "sample %d: class %d, reference %d", i, classes[i],
                     cls[i]);
    /* Raw maps are tiny (1e-3): compare relative to their scale. */
    int bad = compare(raw_name, raw, want_raw, (size_t)n * 49,
                      1e-4 * max_abs(want_raw, (size_t)n * 49));
    bad += compare(map_name, map, want_map, (size_t)n * 784, 1e-4);
    cr_assert_eq(bad, 0, "%s differs from the PyTorch reference", map_name);
    /* Normalised to max 1; the reference's maps are all non-zero. */
    for (int i = 0; i < n; i++)
        cr_expect_float_eq(max_abs(map + i * 784, 784), 1.0f, 1e-6, "map %d max", i);
    free(req);
    free(cls);
    free(want_raw);
    free(want_map);
    ref_free(run, spec);
}

Test(interp, gradcam_matches_reference)
{
    check_cam(RN_CAM_GRADCAM, "gradcam_raw", "gradcam");
}

Test(interp, gradcampp_matches_reference)
{
    check_cam(RN_CAM_GRADCAM_PP, "gradcampp_raw", "gradcampp");
}

Test(interp, saliency_matches_reference)
{
    struct rn_spec *spec = spec_new();
    struct rn_run *run = ref_model(spec);
    struct rn_graph *g = &run->graph;
    int n = ref_inputs(g), nd, dims[4];
    int32_t *lab = read_ref("labels", RN_DTYPE_I32, &nd, dims);
    float *want = read_ref("saliency", RN_DTYPE_F32, &nd, dims);
    uint8_t labels[8];
    for (int i = 0; i < n && i < 8; i++)
        labels[i] = (uint8_t)lab[i];
    float map[8 * 784];
    struct rn_error err;
    cr_assert_eq(rn_saliency_map(g, n, run->logits_node, labels, map, NULL, &err), 0, "%s",
                 err.msg);
    int bad = 0;
    for (int i = 0; i < n; i++) {
        /* Each map relative to its maximum, to 1e-4. */
        float m = max_abs(want + i * 784, 784), a[784], b[784];
        cr_assert(m > 0);
        for (int p = 0; p < 784; p++) {
            a[p] = map[i * 784 + p] / m;
            b[p] = want[i * 784 + p] / m;
        }
        bad += compare("saliency / max", a, b, 784, 1e-4);
    }
    cr_assert_eq(bad, 0);
    free(lab);
    free(want);
    ref_free(run, spec);
}

/* ---- finite differences ------------------------------------------------ */

/* Re-runs the nodes after `from` up to `last` (the head) in eval mode. */
static void run_head(struct rn_graph *g, int n, int from, int last)
{
    struct rn_ctx ctx = {0};
    struct rn_error err;
    for (int i = from + 1; i <= last; i++) {
        struct rn_node *node = &g->nodes[i];
        const struct rn_tensor *xs[RN_MAX_INPUTS];
        for (int j = 0; j < node->n_in; j++)
            xs[j] = node->in[j] < 0 ? &g->x : &g->nodes[node->in[j]].y;
        node->y.n = n;
        ctx.node = i;
        cr_assert_eq(node->layer.type->forward(&node->layer, xs, &node->y, &ctx, &err), 0, "%s",
                     err.msg);
    }
}

Test(interp, class_score_gradient_matches_finite_differences)
{
    struct rn_spec *spec = spec_new();
    struct rn_run *run = ref_model(spec);
    struct rn_graph *g = &run->graph;
    ref_inputs(g);
    const int n = 1, logits = run->logits_node, tap = rn_graph_find(g, "conv3");
    float raw[49], map[784];
    int cls = 3; /* a class the model does not predict: gradients of a non-max score */
    struct rn_error err;
    cr_assert_eq(rn_gradcam(g, n, logits, tap, RN_CAM_GRADCAM, &cls, raw, map, NULL, &err), 0,
                 "%s", err.msg);
    struct rn_tensor *A = &g->nodes[tap].y;
    const int size = (int)rn_tensor_sample(A), K = A->c;
    cr_assert(A->h == 7 && A->w == 7 && size == K * 49);
    float *G = malloc(sizeof(float) * size), *A0 = malloc(sizeof(float) * size);
    memcpy(G, g->nodes[tap].dy.data, sizeof(float) * size);
    memcpy(A0, A->data, sizeof(float) * size);
    /* The head (relu3, 2x2 max pooling of the 7x7 map, average, linear) is
     * piecewise linear: central differences are exact away from its kinks.
     * An entry is checked when relu3 and pool3 decide the same way at
     * A +- h: |A| > 2h and its window's runner-up is more than 2h away. */
    const double h = 1e-4;
    int checked = 0, nonzero = 0, bad = 0;
    for (int e = 0; e < size; e++) {
        int c = e / 49, y = e % 49 / 7, x = e % 7;
        if (fabs(A0[e]) <= 2 * h)
            continue;
        if (y < 6 && x < 6) {
            float best_other = 0; /* relu outputs are >= 0 */
            for (int yy = y / 2 * 2; yy < y / 2 * 2 + 2; yy++)
                for (int xx = x / 2 * 2; xx < x / 2 * 2 + 2; xx++) {
                    float v = A0[c * 49 + yy * 7 + xx];
                    if ((yy != y || xx != x) && v > best_other)
                        best_other = v;
                }
            if (fabs((A0[e] > 0 ? A0[e] : 0) - best_other) <= 2 * h)
                continue;
        }
        double sc[2];
        for (int sgn = 0; sgn < 2; sgn++) {
            A->data[e] = A0[e] + (float)(sgn ? -h : h);
            run_head(g, n, tap, logits);
            sc[sgn] = g->nodes[logits].y.data[cls];
        }
        A->data[e] = A0[e];
        double fd = (sc[0] - sc[1]) / (2 * h);
        checked++;
        nonzero += G[e] != 0;
        if (fabs(fd - G[e]) > 1e-3 * fabs(G[e]) + 2e-4) {
            if (bad < 5)
                fprintf(stderr, "d score / d A[%d]: backward %.8g, finite difference %.8g\n", e,
                        G[e], fd);
            bad++;
        }
    }
    cr_assert_eq(bad, 0, "class-score gradient disagrees with finite differences at %d of %d",
                 bad, checked);
    cr_assert(checked > size / 2 && nonzero >= 10, "only %d entries checked, %d non-zero",
              checked, nonzero);
    free(G);
    free(A0);
    ref_free(run, spec);
}

/* CE of sample 0 against label, in double from the float logits. */
static double ce_of(struct rn_graph *g, int logits, uint8_t label)
{
    struct rn_ctx ctx = {0};
    struct rn_error err;
    cr_assert_eq(rn_graph_forward(g, 1, logits, &ctx, &err), 0, "%s", err.msg);
    const float *z = g->nodes[logits].y.data;
    double m = z[0], s = 0;
    for (int k = 1; k < 10; k++)
        m = z[k] > m ? z[k] : m;
    for (int k = 0; k < 10; k++)
        s += exp(z[k] - m);
    return m + log(s) - z[label];
}

Test(interp, saliency_gradient_matches_finite_differences)
{
    struct rn_spec *spec = spec_new();
    struct rn_run *run = ref_model(spec);
    struct rn_graph *g = &run->graph;
    ref_inputs(g);
    /* Sample 2 alone (the ring), label 2. */
    memmove(g->x.data, g->x.data + 2 * 3 * 784, sizeof(float) * 3 * 784);
    const int logits = run->logits_node, size = 3 * 784;
    uint8_t label = 2;
    float map[784];
    struct rn_error err;
    cr_assert_eq(rn_saliency_map(g, 1, logits, &label, map, NULL, &err), 0, "%s", err.msg);
    float *dx = malloc(sizeof(float) * size), *x0 = malloc(sizeof(float) * size);
    memcpy(dx, g->dx.data, sizeof(float) * size);
    memcpy(x0, g->x.data, sizeof(float) * size);
    /* The map is the channel sum of |dx|. */
    for (int p = 0; p < 784; p++)
        cr_assert_float_eq(map[p], fabsf(dx[p]) + fabsf(dx[784 + p]) + fabsf(dx[1568 + p]),
                           1e-6 + 1e-5 * map[p]);
    double norm = 0;
    for (int i = 0; i < size; i++)
        norm += (double)dx[i] * dx[i];
    norm = sqrt(norm);
    cr_assert(norm > 0);
    /* Directional derivatives (float32 forward passes are too coarse for
     * single pixels): along the gradient itself and along random directions,
     * central differences against <dx, v>. */
    float *v = malloc(sizeof(float) * size);
    uint32_t state = 12345;
    const double h = 1e-2;
    for (int dir = 0; dir < 4; dir++) {
        double vn = 0, dot = 0;
        for (int i = 0; i < size; i++) {
            state = state * 1664525u + 1013904223u;
            v[i] = dir == 0 ? dx[i] : (float)((state >> 8) / 16777216.0 - 0.5);
            vn += (double)v[i] * v[i];
        }
        vn = sqrt(vn);
        for (int i = 0; i < size; i++) {
            v[i] = (float)(v[i] / vn);
            dot += (double)v[i] * dx[i];
        }
        double ce[2];
        for (int sgn = 0; sgn < 2; sgn++) {
            for (int i = 0; i < size; i++)
                g->x.data[i] = x0[i] + (float)((sgn ? -h : h) * v[i]);
            ce[sgn] = ce_of(g, logits, label);
        }
        double fd = (ce[0] - ce[1]) / (2 * h);
        cr_expect(fabs(fd - dot) <= 2e-2 * norm, "direction %d: <dx, v> %.8g, finite difference "
                  "%.8g (|dx| %.4g)", dir, dot, fd, norm);
    }
    free(v);
    free(dx);
    free(x0);
    ref_free(run, spec);
}

/* ---- orientation and upsampling ------------------------------------------- */

Test(interp, upsample_matches_pytorch_bilinear)
{
    /* F.interpolate(tensor([[[[1., 2.], [3., 4.]]]]), size=(4, 4), mode='bilinear',
     * align_corners=False) */
    const float src[4] = {1, 2, 3, 4};
    const float want[16] = {1.0f, 1.25f, 1.75f, 2.0f, 1.5f, 1.75f, 2.25f, 2.5f,
                            2.5f, 2.75f, 3.25f, 3.5f, 3.0f, 3.25f, 3.75f, 4.0f};
    float got[16];
    rn_upsample_bilinear(src, 2, 2, got, 4, 4);
    cr_assert_eq(compare("upsample 2x2 -> 4x4", got, want, 16, 1e-6), 0);
    /* Non-square: a row vector stays constant down the columns. */
    const float row[3] = {0, 3, 6};
    float wide[2 * 6];
    rn_upsample_bilinear(row, 1, 3, wide, 2, 6);
    const float want_row[6] = {0, 0.75f, 2.25f, 3.75f, 5.25f, 6};
    cr_assert_eq(compare("upsample 1x3 -> 2x6 row 0", wide, want_row, 6, 1e-6), 0);
    cr_assert_eq(compare("upsample 1x3 -> 2x6 row 1", wide + 6, want_row, 6, 1e-6), 0);
}

Test(interp, gradcam_map_keeps_orientation)
{
    /* grey = mean of the channels (1x1 conv), 4x4 max pooling to 7x7 (the tap),
     * average, logit 0 = that average: Grad-CAM of class 0 is the pooled
     * brightness itself. */
    struct rn_spec *spec = spec_new();
    char errs[2048] = "";
    const char *text = "name: orient\n"
                       "data: {colouring: background}\n"
                       "model:\n"
                       "  name: orient\n"
                       "  layers:\n"
                       "    - {type: conv2d, name: grey, filters: 1, kernel: 1}\n"
                       "    - {type: maxpool2d, name: cells, kernel: 4}\n"
                       "    - {type: global_avg_pool, name: gap}\n"
                       "    - {type: linear, name: fc, units: 10}\n"
                       "train: {epochs: 1}\n";
    cr_assert_eq(load_spec_text(spec, text, errs, sizeof errs), 0, "%s", errs);
    struct rn_graph g;
    struct rn_error err;
    struct rn_shape in = {3, 28, 28};
    cr_assert_eq(rn_graph_build(&g, &spec->model, in, 1, &err), 0, "%s", err.msg);
    struct rn_param *w = rn_layer_param(&g.nodes[0].layer, "weight");
    struct rn_param *b = rn_layer_param(&g.nodes[0].layer, "bias");
    for (int c = 0; c < 3; c++)
        w->value.data[c] = 1.0f / 3;
    b->value.data[0] = 0;
    struct rn_param *fw = rn_layer_param(&g.nodes[3].layer, "weight");
    struct rn_param *fb = rn_layer_param(&g.nodes[3].layer, "bias");
    memset(fw->value.data, 0, sizeof(float) * 10);
    memset(fb->value.data, 0, sizeof(float) * 10);
    fw->value.data[0] = 1; /* logit 0 = the mean pooled brightness */
    /* Dark image; one bright patch at rows 1-3, columns 9-14: top, left of
     * centre. A transpose would put it at rows 9-14, a vertical flip at the
     * bottom, a horizontal flip right of centre. */
    memset(g.x.data, 0, sizeof(float) * 3 * 784);
    for (int c = 0; c < 3; c++)
        for (int y = 1; y <= 3; y++)
            for (int x = 9; x <= 14; x++)
                g.x.data[c * 784 + y * 28 + x] = 1.0f;
    g.x.n = 1;
    int cls = 0;
    float raw[49], map[784];
    cr_assert_eq(rn_gradcam(&g, 1, 3, 1, RN_CAM_GRADCAM, &cls, raw, map, NULL, &err), 0, "%s",
                 err.msg);
    /* Raw: the pooled cells (row 0, columns 2 and 3) are lit, nothing else. */
    for (int p = 0; p < 49; p++)
        cr_expect_eq(raw[p] > 0, p == 2 || p == 3, "raw cell (%d, %d) = %g", p / 7, p % 7, raw[p]);
    int best = 0;
    for (int p = 1; p < 784; p++)
        best = map[p] > map[best] ? p : best;
    int by = best / 28, bx = best % 28;
    cr_assert(by <= 3 && bx >= 9 && bx <= 14, "map peaks at row %d, column %d", by, bx);
    cr_assert_float_eq(map[best], 1.0f, 1e-6);
    cr_assert_eq(map[27 * 28 + 0], 0.0f);
    cr_assert_eq(map[27 * 28 + 27], 0.0f);
    cr_assert_eq(map[12 * 28 + 2], 0.0f, "transposed location lit");
    rn_graph_free(&g);
    rn_spec_free(spec);
    free(spec);
}

/* ---- list-valued keys in specs --------------------------------------------- */

static const char *analysis_str(const struct rn_spec_analysis *a, const char *key)
{
    for (int i = 0; i < a->type->n_keys; i++)
        if (!strcmp(a->type->keys[i].key, key))
            return a->v.str[i];
    return NULL;
}

Test(interp, cases_and_models_lists_in_specs)
{
    struct rn_spec *s = spec_new();
    char errs[4096] = "";
    const char *text = "name: cases\n"
                       "data: {colouring: background}\n"
                       "analyses:\n"
                       "  - type: gradcam\n"
                       "    cases:\n"
                       "      - {digit: 0, colour: red}\n"
                       "      - {digit: 2, colour: 3, split: val, index: 17}\n"
                       "  - {type: saliency, cases: \"1 red; 2 yellow test 5\",\n"
                       "     models: [{name: lazy, run: results/task1_lazy/latest}, {name: me, run: self, model: best}]}\n";
    cr_assert_eq(load_spec_text(s, text, errs, sizeof errs), 0, "%s", errs);
    cr_assert_eq(s->n_analyses, 2);
    cr_assert_str_eq(analysis_str(&s->analyses[0], "cases"), "0 red test -1; 2 3 val 17");
    cr_assert_str_eq(analysis_str(&s->analyses[1], "cases"), "1 red test -1; 2 yellow test 5");
    cr_assert_str_eq(analysis_str(&s->analyses[1], "models"),
                     "lazy results/task1_lazy/latest main skip; me self best skip");
    /* The resolved spec stores the canonical text and loads back to it. */
    char *resolved = strdup(s->resolved);
    rn_spec_free(s);
    cr_assert_eq(load_spec_text(s, resolved, errs, sizeof errs), 0, "%s", errs);
    cr_assert_str_eq(analysis_str(&s->analyses[0], "cases"), "0 red test -1; 2 3 val 17");
    cr_assert_str_eq(analysis_str(&s->analyses[1], "models"),
                     "lazy results/task1_lazy/latest main skip; me self best skip");
    free(resolved);
    rn_spec_free(s);

    /* Errors point at the item (file:line:col) and say what is wrong. */
    const char *bad = "name: bad\n"
                      "data: {colouring: background}\n"
                      "analyses:\n"
                      "  - type: gradcam\n"
                      "    cases:\n"
                      "      - {digit: 12, colour: red}\n"
                      "      - {digit: 1, colour: redd}\n"
                      "      - {digit: 1, color: red}\n"
                      "      - 3\n"
                      "  - {type: saliency, models: [{name: x}]}\n"
                      "  - {type: saliency, name: s2, cases: \"1 red test 3 9 x\"}\n"
                      "  - {type: filters, cases: \"1 red\"}\n";
    int n = load_spec_text(s, bad, errs, sizeof errs);
    cr_expect_eq(n, 8, "%s", errs);
    cr_expect(strstr(errs, ":6:17: error: analysis #1 (gradcam): cases #1: digit: expected an integer in [0, 9], got 12"), "%s", errs);
    cr_expect(strstr(errs, ":7:9: error: analysis #1 (gradcam): cases #2: colour: unknown colour 'redd' (did you mean 'red'?)"), "%s", errs);
    cr_expect(strstr(errs, ":8:20: error: analysis #1 (gradcam): cases #3: unknown key 'color' (did you mean 'colour'?)"), "%s", errs);
    cr_expect(strstr(errs, ":9:9: error: analysis #1 (gradcam): cases #4: expected a mapping such as {digit: 1, colour: red}, got '3'"), "%s", errs);
    cr_expect(strstr(errs, ":10:31: error: analysis #2 (saliency): models #1: missing required key 'run'"), "%s", errs);
    cr_expect(strstr(errs, ":11:39: error: analysis 's2' (saliency): cases #1: 'x': more than 5 fields"), "%s", errs);
    cr_expect(strstr(errs, ":12:21: error: analysis #4 (filters): unknown key 'cases'"), "%s", errs);
    rn_spec_free(s);
    free(s);
}

/* ---- every analysis, end to end --------------------------------------------- */

static int h5_dims(struct rn_results *r, const char *path, enum rn_dtype t, int dims[4], void **data)
{
    int nd = 0;
    struct rn_error err;
    cr_assert_eq(rn_results_read(r, path, t, data, &nd, dims, &err), 0, "%s", err.msg);
    return nd;
}

static void remove_dir(const char *dir)
{
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_expect_eq(system(cmd), 0);
}

static int file_exists(const char *dir, const char *name)
{
    char path[1024];
    struct stat st;
    snprintf(path, sizeof path, "%s/plots/%s", dir, name);
    return stat(path, &st) == 0 && st.st_size > 0;
}

/* Runs the analyses of spec text (data and model from the fixtures) in dir;
 * the log (warnings) goes to logbuf. Returns rn_run_open's result when it
 * refuses the analyses (the checks made before training), else
 * rn_run_analyses'. */
static int run_analyses(const char *analyses, char *dir, char *logbuf, size_t cap,
                        struct rn_error *err)
{
    char text[8192], errs[4096] = "";
    snprintf(text, sizeof text,
             "name: interp_e2e\n"
             "seed: 5\n"
             "data: {dir: %s/mnist, colouring: background, bias: 0.95, val_fraction: 0.2}\n"
             "model: {include: %s/interp_model.yaml}\n"
             "load: {run: %s}\n"
             "analyses:\n%s",
             RN_FIXTURES, RN_FIXTURES, REF, analyses);
    struct rn_spec *spec = spec_new();
    cr_assert_eq(load_spec_text(spec, text, errs, sizeof errs), 0, "%s", errs);
    snprintf(dir, 64, "/tmp/rn_interp_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    FILE *log = fmemopen(logbuf, cap, "w");
    struct rn_run_options opt = {.out_dir = dir, .quiet = 0, .log = log};
    struct rn_run *run = calloc(1, sizeof *run);
    int rc = rn_run_open(run, spec, &opt, err);
    if (!rc)
        rc = rn_run_analyses(run, err);
    rn_run_close(run, rc ? "failed" : "completed");
    fclose(log);
    free(run);
    rn_spec_free(spec);
    free(spec);
    return rc;
}

Test(interp, analyses_end_to_end)
{
    char dir[64], logbuf[16384] = "";
    struct rn_error err;
    const char *analyses =
        "  - {type: filters, name: f1, node: conv1}\n"
        "  - {type: filters, name: f2, node: conv2, max_filters: 4, max_channels: 3}\n"
        "  - {type: activations, name: act, node: conv1, max_maps: 6, cases: \"1 red; 7 yellow\"}\n"
        "  - type: gradcam\n"
        "    name: cam\n"
        "    cases:\n"
        "      - {digit: 0, colour: red}\n"
        "      - {digit: 0, colour: green}\n"
        "      - {digit: 1, colour: green}\n"
        "      - {digit: 1, colour: red}\n"
        "      - {digit: 2, colour: blue}\n"
        "      - {digit: 2, colour: yellow}\n"
        "  - {type: gradcam, name: campp, method: gradcam++, class: true, split: test, n: 3}\n"
        "  - type: saliency\n"
        "    name: sal\n"
        "    cases: \"1 red; 2 yellow\"\n"
        "    models:\n"
        "      - {name: self, run: self}\n"
        "      - {name: ref, run: " REF "}\n"
        "      - {name: M9, run: /nonexistent/task4_m9/latest}\n"
        "  - {type: attention_mass, name: mass, n: 40, models: \"self self; ref " REF "\"}\n";
    int rc = run_analyses(analyses, dir, logbuf, sizeof logbuf, &err);
    cr_assert_eq(rc, 0, "%s", err.msg);
    /* One warning line for the missing model, naming it. */
    cr_assert(strstr(logbuf, "warning: analysis 'sal': model 'M9' skipped: no run at "
                             "/nonexistent/task4_m9/latest"),
              "%s", logbuf);

    char h5[128];
    snprintf(h5, sizeof h5, "%s/run.h5", dir);
    struct rn_results *r = NULL;
    cr_assert_eq(rn_results_open(&r, h5, &err), 0, "%s", err.msg);
    int dims[4];
    void *d = NULL;
    cr_assert_eq(h5_dims(r, "/analyses/f1/weights", RN_DTYPE_F32, dims, &d), 4);
    cr_expect(dims[0] == 6 && dims[1] == 3 && dims[2] == 3 && dims[3] == 3);
    free(d);
    cr_assert_eq(h5_dims(r, "/analyses/act/maps", RN_DTYPE_F32, dims, &d), 4);
    cr_expect(dims[0] == 2 && dims[1] == 6 && dims[2] == 28 && dims[3] == 28);
    free(d);

    /* The six cases: images re-coloured as asked, the stroke kept white. */
    uint8_t *img = NULL;
    int32_t *colours = NULL, *labels = NULL;
    cr_assert_eq(h5_dims(r, "/analyses/cam/images", RN_DTYPE_U8, dims, (void **)&img), 4);
    cr_assert(dims[0] == 6 && dims[1] == 3);
    h5_dims(r, "/analyses/cam/colours", RN_DTYPE_I32, dims, (void **)&colours);
    h5_dims(r, "/analyses/cam/labels", RN_DTYPE_I32, dims, (void **)&labels);
    const int want_digit[6] = {0, 0, 1, 1, 2, 2}, want_colour[6] = {0, 1, 1, 0, 2, 3};
    for (int i = 0; i < 6; i++) {
        cr_expect_eq(labels[i], want_digit[i]);
        cr_expect_eq(colours[i], want_colour[i]);
        const uint8_t *im = img + (size_t)i * 3 * 784, *rgb = rn_palette_study.rgb[want_colour[i]];
        int white = 0, off = 0;
        for (int p = 0; p < 784; p++) {
            if (im[p] == 255 && im[784 + p] == 255 && im[1568 + p] == 255) {
                white++;
                continue;
            }
            /* background = noise * colour: a zero channel of the colour stays zero */
            for (int c = 0; c < 3; c++)
                off += rgb[c] == 0 && im[c * 784 + p] != 0;
        }
        cr_expect(white > 30 && white < 400, "case %d: %d stroke pixels", i, white);
        cr_expect_eq(off, 0, "case %d: background not in the palette colour", i);
    }
    free(img);
    free(colours);
    free(labels);
    float *maps = NULL;
    cr_assert_eq(h5_dims(r, "/analyses/cam/maps", RN_DTYPE_F32, dims, (void **)&maps), 3);
    cr_assert(dims[0] == 6 && dims[1] == 28 && dims[2] == 28);
    for (int i = 0; i < 6; i++) {
        float mx = max_abs(maps + i * 784, 784), mn = 1;
        for (int p = 0; p < 784; p++)
            mn = maps[i * 784 + p] < mn ? maps[i * 784 + p] : mn;
        cr_expect(mn >= 0 && (mx == 0 || fabsf(mx - 1) < 1e-6), "map %d in [%g, %g]", i, mn, mx);
    }
    free(maps);

    /* Saliency: the skipped model is not there; self and ref are the same
     * weights, loaded two ways, so their maps agree. */
    char *names = NULL;
    cr_assert_eq(rn_results_get_attr_str(r, "/analyses/sal", "models", &names, &err), 0);
    cr_expect_str_eq(names, "self;ref");
    free(names);
    cr_assert_eq(h5_dims(r, "/analyses/sal/maps", RN_DTYPE_F32, dims, (void **)&maps), 4);
    cr_assert(dims[0] == 2 && dims[1] == 2 && dims[2] == 28 && dims[3] == 28);
    cr_expect_eq(compare("saliency self vs ref", maps, maps + 2 * 784, 2 * 784, 1e-7), 0);
    cr_expect(max_abs(maps, 2 * 784) > 0);
    free(maps);

    double *summary = NULL;
    cr_assert_eq(h5_dims(r, "/analyses/mass/summary", RN_DTYPE_F64, dims, (void **)&summary), 2);
    cr_assert(dims[0] == 2 && dims[1] == 4);
    for (int c = 0; c < 4; c++)
        cr_expect(fabs(summary[c] - summary[4 + c]) < 1e-6, "column %d: self %g, ref %g", c,
                  summary[c], summary[4 + c]);
    for (int c = 0; c < 3; c++)
        cr_expect(summary[c] > 0.3 && summary[c] < 1.0, "share %d = %g", c, summary[c]);
    free(summary);
    rn_results_close(r);

    /* Every figure from run.h5 alone. */
    int nfig = 0;
    cr_assert_eq(rn_plot_run(dir, "png", &nfig, &err), 0, "%s", err.msg);
    const char *figs[] = {"f1.png",  "f2.png",    "act_0.png", "act_1.png",
                          "cam.png", "campp.png", "sal.png",   "mass.png"};
    for (int i = 0; i < 8; i++)
        cr_expect(file_exists(dir, figs[i]), "%s/plots/%s missing", dir, figs[i]);
    cr_expect_geq(nfig, 8);
    /* A paper format too. */
    cr_assert_eq(rn_plot_run(dir, "svg", &nfig, &err), 0, "%s", err.msg);
    cr_expect(file_exists(dir, "cam.svg"));
    remove_dir(dir);
}

Test(interp, no_model_loads_is_an_error)
{
    char dir[64], logbuf[4096] = "";
    struct rn_error err;
    int rc = run_analyses("  - {type: saliency, name: s, cases: \"1 red\", models: \"a /nonexistent/a\"}\n",
                          dir, logbuf, sizeof logbuf, &err);
    remove_dir(dir);
    cr_assert_neq(rc, 0);
    cr_expect(strstr(err.msg, "analysis 's' (saliency): none of its models could be loaded (skipped: a)"),
              "%s", err.msg);
    cr_expect(strstr(logbuf, "model 'a' skipped"), "%s", logbuf);
    /* Refused before anything runs: at the key, the nodes of this run's model. */
    rc = run_analyses("  - {type: gradcam, name: g, node: fc}\n", dir, logbuf, sizeof logbuf, &err);
    remove_dir(dir);
    cr_assert_neq(rc, 0);
    cr_expect(strstr(err.msg, ":7:36: error: analysis 'g' (gradcam): node 'fc' gives (10,1,1): "
                              "Grad-CAM needs a spatial map before the logits"),
              "%s", err.msg);
    rc = run_analyses("  - {type: gradcam, name: g, node: nope}\n", dir, logbuf, sizeof logbuf,
                      &err);
    remove_dir(dir);
    cr_assert_neq(rc, 0);
    cr_expect(strstr(err.msg, ":7:36: error: analysis 'g' (gradcam): unknown node 'nope'; the "
                              "model's nodes: conv1, relu1"),
              "%s", err.msg);
    /* A loaded model's nodes when it is loaded. */
    rc = run_analyses("  - {type: attention_mass, name: m, node: conv4, models: \"ref " REF "\"}\n",
                      dir, logbuf, sizeof logbuf, &err);
    remove_dir(dir);
    cr_assert_neq(rc, 0);
    cr_expect(strstr(err.msg, ":7:43: error: analysis 'm' (attention_mass): unknown node 'conv4' "
                              "(did you mean 'conv1'?)"),
              "%s", err.msg);
}
