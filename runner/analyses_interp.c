/* analyses_interp.c - looking inside a model (SPEC.md "Interpretability"):
 * conv filters, activation maps, Grad-CAM / Grad-CAM++, saliency, and the
 * attention mass that turns the maps into numbers.
 *
 * Inputs are either the first n images of a split or constructed `cases`: a
 * digit of a split re-coloured with a chosen palette colour exactly as the
 * probe analysis does (stroke mask recovered from the image, then
 * rn_colourise with the data config), so "red 1" is six characters of YAML.
 * Saliency and attention mass compare several models: `models` lists runs
 * whose saved model is loaded next to the analysed one (architecture from
 * their /config yaml); a run that does not exist yet is skipped with a
 * warning.
 */
#include "analysis.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "interp.h"
#include "loss.h"
#include "spec.h"
#include "train.h"

struct rn_run;
static int run_filters(struct rn_run *, const struct rn_spec_analysis *, struct rn_error *);
static int run_activations(struct rn_run *, const struct rn_spec_analysis *, struct rn_error *);
static int run_gradcam(struct rn_run *, const struct rn_spec_analysis *, struct rn_error *);
static int run_saliency(struct rn_run *, const struct rn_spec_analysis *, struct rn_error *);
static int run_attention_mass(struct rn_run *, const struct rn_spec_analysis *,
                              struct rn_error *);

#define CASES_DOC                                                                              \
    "constructed inputs: a list of {digit, colour, split, index} (see 'List-valued analysis "  \
    "keys'); empty = the first n images of split"
#define MODELS_DOC                                                                             \
    "models to compare: a list of {name, run, model} (see 'List-valued analysis keys'); a run " \
    "not found is skipped with a warning; empty = this run's model"
#define MAX_INPUTS 64
#define MAX_MODELS 8

static const struct rn_key filters_keys[] = {
    {"node", RN_KIND_STRING, 0, 0, "conv1", 1, 0, NULL, "conv2d node whose weights are drawn"},
    {"max_filters", RN_KIND_INT, 0, 64, NULL, 1, 1024, NULL, "filters drawn (the first ones)"},
    {"max_channels", RN_KIND_INT, 0, 8, NULL, 1, 64, NULL,
     "input channels drawn per filter when the input is not RGB"},
};
const struct rn_analysis_type rn_analysis_filters = {
    .name = "filters",
    .doc = "the weights of a conv node: RGB images for 3-channel inputs (each filter min-max "
           "normalised), per-channel heatmaps otherwise (the study's Figure 9)",
    .keys = filters_keys,
    .n_keys = 3,
    .run = run_filters,
};

static const struct rn_key activations_keys[] = {
    {"node", RN_KIND_STRING, 0, 0, "conv1", 1, 0, NULL, "node whose output maps are drawn"},
    {"cases", RN_KIND_STRING, 0, 0, "", 1, 0, NULL, CASES_DOC},
    {"split", RN_KIND_STRING, 0, 0, "test", 1, 0, NULL,
     "split of the inputs when there are no cases"},
    {"n", RN_KIND_INT, 0, 1, NULL, 1, MAX_INPUTS, NULL,
     "inputs taken from split when there are no cases"},
    {"max_maps", RN_KIND_INT, 0, 32, NULL, 1, 256, NULL, "channels drawn (the first ones)"},
};
const struct rn_analysis_type rn_analysis_activations = {
    .name = "activations",
    .doc = "the feature maps of a node for chosen inputs, beside the input (the study's Figure 10)",
    .keys = activations_keys,
    .n_keys = 5,
    .run = run_activations,
};

static const struct rn_key gradcam_keys[] = {
    {"node", RN_KIND_STRING, 0, 0, "conv3", 1, 0, NULL,
     "node whose output A is explained (the study: conv3, before its relu and pool)"},
    {"method", RN_KIND_CHOICE, 0, 0, "gradcam", 1, 0, "gradcam|gradcam++",
     "gradcam: weights = spatial mean of dy_c/dA; gradcam++: Chattopadhyay et al.'s closed form"},
    {"class", RN_KIND_STRING, 0, 0, "pred", 1, 0, NULL,
     "class explained: pred, true or a class index 0-9"},
    {"cases", RN_KIND_STRING, 0, 0, "", 1, 0, NULL, CASES_DOC},
    {"split", RN_KIND_STRING, 0, 0, "test", 1, 0, NULL,
     "split of the inputs when there are no cases"},
    {"n", RN_KIND_INT, 0, 6, NULL, 1, MAX_INPUTS, NULL,
     "inputs taken from split when there are no cases"},
};
const struct rn_analysis_type rn_analysis_gradcam = {
    .name = "gradcam",
    .doc = "Grad-CAM (or Grad-CAM++) maps upsampled to the input, per input: image, class "
           "probabilities, jet overlay",
    .keys = gradcam_keys,
    .n_keys = 6,
    .run = run_gradcam,
};

static const struct rn_key saliency_keys[] = {
    {"models", RN_KIND_STRING, 0, 0, "", 1, 0, NULL, MODELS_DOC},
    {"cases", RN_KIND_STRING, 0, 0, "", 1, 0, NULL, CASES_DOC},
    {"split", RN_KIND_STRING, 0, 0, "test", 1, 0, NULL,
     "split of the inputs when there are no cases"},
    {"n", RN_KIND_INT, 0, 6, NULL, 1, MAX_INPUTS, NULL,
     "inputs taken from split when there are no cases"},
};
const struct rn_analysis_type rn_analysis_saliency = {
    .name = "saliency",
    .doc = "saliency maps: |d CE / d input| summed over channels (CE on the true label), "
           "several models side by side",
    .keys = saliency_keys,
    .n_keys = 4,
    .run = run_saliency,
};

static const struct rn_key attention_mass_keys[] = {
    {"models", RN_KIND_STRING, 0, 0, "", 1, 0, NULL, MODELS_DOC},
    {"split", RN_KIND_STRING, 0, 0, "test", 1, 0, NULL, "split of the images"},
    {"n", RN_KIND_INT, 0, 500, NULL, 1, 100000, NULL, "images (the first n of the split)"},
    {"node", RN_KIND_STRING, 0, 0, "conv3", 1, 0, NULL, "Grad-CAM node"},
    {"method", RN_KIND_CHOICE, 0, 0, "gradcam", 1, 0, "gradcam|gradcam++", "Grad-CAM variant"},
    {"class", RN_KIND_STRING, 0, 0, "pred", 1, 0, NULL,
     "Grad-CAM class: pred, true or a class index 0-9"},
};
const struct rn_analysis_type rn_analysis_attention_mass = {
    .name = "attention_mass",
    .doc = "share of Grad-CAM and of saliency mass on background vs stroke pixels over n images, "
           "per model, with the background's share of the pixels",
    .keys = attention_mass_keys,
    .n_keys = 6,
    .run = run_attention_mass,
};

/* ---- the arithmetic (interp.h) ---------------------------------------- */

void rn_upsample_bilinear(const float *src, int h, int w, float *dst, int H, int W)
{
    const float sy = (float)h / (float)H, sx = (float)w / (float)W;
    for (int Y = 0; Y < H; Y++) {
        float fy = ((float)Y + 0.5f) * sy - 0.5f;
        if (fy < 0)
            fy = 0;
        int y0 = (int)fy, y1 = y0 < h - 1 ? y0 + 1 : y0;
        float ly = fy - (float)y0;
        for (int X = 0; X < W; X++) {
            float fx = ((float)X + 0.5f) * sx - 0.5f;
            if (fx < 0)
                fx = 0;
            int x0 = (int)fx, x1 = x0 < w - 1 ? x0 + 1 : x0;
            float lx = fx - (float)x0;
            dst[(size_t)Y * W + X] =
                (1 - ly) * ((1 - lx) * src[y0 * w + x0] + lx * src[y0 * w + x1]) +
                ly * ((1 - lx) * src[y1 * w + x0] + lx * src[y1 * w + x1]);
        }
    }
}

static void softmax(const float *z, int k, float *p)
{
    double m = z[rn_argmax(z, k)], s = 0;
    for (int j = 0; j < k; j++)
        s += exp((double)z[j] - m);
    for (int j = 0; j < k; j++)
        p[j] = (float)(exp((double)z[j] - m) / s);
}

int rn_gradcam(struct rn_graph *g, int n, int logits_node, int tap, enum rn_cam_method method,
               int *classes, float *raw, float *map, float *probs, struct rn_error *err)
{
    struct rn_ctx ctx = {.train = 0};
    if (tap < 0 || tap >= logits_node)
        return rn_errorf(err, "Grad-CAM: node %d does not lie before the logits node %d", tap,
                         logits_node);
    if (rn_graph_forward(g, n, logits_node, &ctx, err))
        return -1;
    /* On a device graph the logits and the tap's maps are read back and the
     * one-hot seed goes down; the passes themselves stay there. */
    const struct rn_tensor *z = rn_graph_output_host(g, logits_node, err);
    if (!z)
        return -1;
    const int k = (int)rn_tensor_sample(z);
    for (int i = 0; i < n; i++) {
        const float *zi = z->data + (size_t)i * k;
        if (classes[i] < 0)
            classes[i] = rn_argmax(zi, k);
        if (classes[i] >= k)
            return rn_errorf(err, "Grad-CAM: class %d but the model has %d classes", classes[i], k);
        if (probs)
            softmax(zi, k, probs + (size_t)i * k);
    }
    /* d y_c / d logits = one-hot(c): the class score, not its probability. */
    if (rn_graph_zero_dy(g, n, err))
        return rn_error_prefix(err, "Grad-CAM");
    struct rn_tensor *dz = rn_graph_grad_host(g, logits_node, err);
    if (!dz)
        return -1;
    for (int i = 0; i < n; i++)
        dz->data[(size_t)i * k + classes[i]] = 1.0f;
    if (rn_graph_backward(g, n, logits_node, 0, &ctx, err))
        return -1;
    struct rn_tensor stage_a = {0}, stage_g = {0};
    const struct rn_tensor *A = rn_host_view(&g->nodes[tap].y, &stage_a, 1, err);
    const struct rn_tensor *G = A ? rn_host_view(&g->nodes[tap].dy, &stage_g, 1, err) : NULL;
    const int K = g->nodes[tap].y.c, h = g->nodes[tap].y.h, w = g->nodes[tap].y.w, hw = h * w;
    const int H = g->in_shape.h, W = g->in_shape.w;
    double *cam = malloc(sizeof(double) * (size_t)hw);
    float *tmp = malloc(sizeof(float) * (size_t)hw);
    if (!A || !G || !cam || !tmp) {
        free(cam);
        free(tmp);
        rn_tensor_free(&stage_a);
        rn_tensor_free(&stage_g);
        return A && G ? rn_errorf(err, "Grad-CAM: out of memory") : -1;
    }
    for (int i = 0; i < n; i++) {
        for (int p = 0; p < hw; p++)
            cam[p] = 0;
        for (int c = 0; c < K; c++) {
            const float *a = A->data + ((size_t)i * K + c) * hw;
            const float *gr = G->data + ((size_t)i * K + c) * hw;
            double wk = 0;
            if (method == RN_CAM_GRADCAM) {
                for (int p = 0; p < hw; p++)
                    wk += gr[p];
                wk /= hw;
            } else {
                /* alpha = g^2 / (2 g^2 + sum(A) g^3) (the exponential
                 * trick's closed form), weights = sum alpha relu(g), as
                 * pytorch-grad-cam's GradCAMPlusPlus, eps included. */
                double sa = 0;
                for (int p = 0; p < hw; p++)
                    sa += a[p];
                for (int p = 0; p < hw; p++) {
                    double g1 = gr[p], g2 = g1 * g1, g3 = g2 * g1;
                    if (g1 == 0)
                        continue;
                    double alpha = g2 / (2 * g2 + sa * g3 + 1e-6);
                    wk += alpha * (g1 > 0 ? g1 : 0);
                }
            }
            if (wk != 0)
                for (int p = 0; p < hw; p++)
                    cam[p] += wk * a[p];
        }
        float *ri = raw + (size_t)i * hw, *mi = map + (size_t)i * H * W;
        for (int p = 0; p < hw; p++) {
            ri[p] = cam[p] > 0 ? (float)cam[p] : 0.0f;
            tmp[p] = ri[p];
        }
        rn_upsample_bilinear(tmp, h, w, mi, H, W);
        float mx = 0;
        for (int p = 0; p < H * W; p++)
            if (mi[p] > mx)
                mx = mi[p];
        if (mx > 0)
            for (int p = 0; p < H * W; p++)
                mi[p] /= mx;
    }
    free(cam);
    free(tmp);
    rn_tensor_free(&stage_a);
    rn_tensor_free(&stage_g);
    return 0;
}

int rn_saliency_map(struct rn_graph *g, int n, int logits_node, const uint8_t *labels, float *map,
                float *probs, struct rn_error *err)
{
    struct rn_ctx ctx = {.train = 0};
    if (rn_graph_forward(g, n, logits_node, &ctx, err))
        return -1;
    const struct rn_tensor *z = rn_graph_output_host(g, logits_node, err);
    if (!z)
        return -1;
    if (rn_graph_zero_dy(g, n, err))
        return rn_error_prefix(err, "saliency");
    struct rn_tensor *dz = rn_graph_grad_host(g, logits_node, err);
    if (!dz)
        return -1;
    /* rn_cross_entropy differentiates the batch mean: weight n gives each
     * sample the gradient of its own loss. */
    rn_cross_entropy(z, labels, (float)n, dz, NULL, probs);
    if (rn_graph_backward(g, n, logits_node, 1, &ctx, err))
        return -1;
    struct rn_tensor stage = {0};
    const struct rn_tensor *dxt = rn_host_view(&g->dx, &stage, 1, err);
    if (!dxt)
        return -1;
    const int C = g->in_shape.c, hw = g->in_shape.h * g->in_shape.w;
    for (int i = 0; i < n; i++) {
        float *mi = map + (size_t)i * hw;
        const float *dx = dxt->data + (size_t)i * C * hw;
        for (int p = 0; p < hw; p++) {
            float s = 0;
            for (int c = 0; c < C; c++)
                s += fabsf(dx[(size_t)c * hw + p]);
            mi[p] = s;
        }
    }
    rn_tensor_free(&stage);
    return 0;
}

/* ---- keys, errors --------------------------------------------------------- */

#define NUM(a, key) ((a)->v.num[rn_analysis_key((a)->type, key)])
#define STR(a, key) ((a)->v.str[rn_analysis_key((a)->type, key)])

/* "file:line:col: error: analysis 'x' (type): msg", at the key when it was
 * written, else at the analysis. Returns -1. */
__attribute__((format(printf, 4, 5))) static int aerr(struct rn_error *err,
                                                      const struct rn_spec_analysis *a,
                                                      const char *key, const char *fmt, ...)
{
    char msg[RN_ERROR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int i = key ? rn_analysis_key(a->type, key) : -1;
    int line = a->line, col = a->col;
    if (i >= 0 && a->v.given[i]) {
        line = a->v.line[i];
        col = a->v.col[i];
    }
    return rn_errorf(err, "%s:%d:%d: error: analysis '%s' (%s): %s", a->file, line, col, a->name,
                     a->type->name, msg);
}

static int need_graph(struct rn_run *run, const struct rn_spec_analysis *a, struct rn_error *err)
{
    if (!run->has_graph)
        return aerr(err, a, NULL, "needs a model: add a model with train or load");
    return 0;
}

/* Node by name; a readable error listing a few names when it is missing. */
static int find_node(const struct rn_graph *g, const struct rn_spec_analysis *a, const char *key,
                     const char *name, struct rn_error *err)
{
    int i = rn_graph_find(g, name);
    if (i >= 0)
        return i;
    char names[512] = "";
    size_t len = 0;
    for (int j = 0; j < g->n_nodes && len < sizeof names - 64; j++)
        len += (size_t)snprintf(names + len, sizeof names - len, "%s%s", j ? ", " : "",
                                g->nodes[j].layer.name);
    aerr(err, a, key, "the model has no node '%s'; its nodes: %s", name, names);
    return -1;
}

/* ---- inputs: constructed cases or images of a split ------------------------- */

struct inputs {
    int n, c, h, w;
    uint8_t *images;  /* (n, c, h, w) */
    uint8_t *masks;   /* (n, h, w): 1 on stroke (foreground) pixels */
    int32_t labels[MAX_INPUTS], colours[MAX_INPUTS], sources[MAX_INPUTS];
    char split[16];   /* "" when cases come from several splits */
    int constructed;  /* 1: cases */
};

static void inputs_free(struct inputs *in)
{
    free(in->images);
    free(in->masks);
    in->images = in->masks = NULL;
}

/* Stroke pixels of an image as the colouriser drew them: white on a
 * coloured background, lit on black for stroke colouring, above the
 * threshold for grey images. */
static void stroke_mask(const uint8_t *img, int c, int hw, const struct rn_data_config *dc,
                        uint8_t *mask)
{
    for (int p = 0; p < hw; p++) {
        if (c < 3) {
            mask[p] = img[p] > dc->threshold;
            continue;
        }
        uint8_t r = img[p], g = img[hw + p], b = img[2 * hw + p];
        if (dc->colouring == RN_COLOURING_STROKE)
            mask[p] = r || g || b;
        else
            mask[p] = r == 255 && g == 255 && b == 255;
    }
}

/* One case: image `index` of split (or its first image of digit), its
 * stroke re-coloured with palette colour `colour` like the probe analysis. */
static int make_case(struct rn_run *run, const struct rn_spec_analysis *a, int digit,
                     const char *colour_name, const char *split, int index, struct inputs *in,
                     int slot, struct rn_error *err)
{
    const struct rn_data_config *dc = &run->spec->data;
    if (dc->colouring == RN_COLOURING_NONE)
        return aerr(err, a, "cases",
                    "cases need coloured data (data.colouring: background or stroke)");
    int colour = rn_palette_index(&dc->palette, colour_name);
    if (colour < 0)
        return aerr(err, a, "cases", "unknown colour '%s'", colour_name);
    struct rn_split *s = rn_data_split(&run->data, split);
    if (!s || s->n == 0)
        return aerr(err, a, "cases", "no split '%s' with images", split);
    if (index < 0)
        for (int i = 0; i < s->n && index < 0; i++)
            if (s->labels[i] == digit)
                index = i;
    if (index < 0 || index >= s->n)
        return aerr(err, a, "cases", "no image %d of digit %d in split '%s' (%d images)", index,
                    digit, s->name, s->n);
    const int h = s->h, w = s->w, hw = h * w;
    uint8_t *mask = in->masks + (size_t)slot * hw, grey[hw];
    stroke_mask(s->images + (size_t)index * s->c * hw, s->c, hw, dc, mask);
    for (int p = 0; p < hw; p++)
        grey[p] = mask[p] ? 255 : 0;
    struct rn_rng r;
    rn_rng_init(&r, run->spec->seed, RN_STREAM_ANALYSIS, (uint64_t)index);
    rn_colourise(grey, h, w, dc->palette.rgb[colour], dc->colouring, dc->noise_lo, dc->noise_hi,
                 dc->threshold, &r, in->images + (size_t)slot * 3 * hw);
    in->labels[slot] = s->labels[index];
    in->colours[slot] = colour;
    in->sources[slot] = index;
    if (slot == 0)
        snprintf(in->split, sizeof in->split, "%s", s->name);
    else if (strcmp(in->split, s->name) != 0)
        in->split[0] = '\0';
    return 0;
}

/* The inputs of an analysis: its cases, else the first n images of split. */
static int build_inputs(struct rn_run *run, const struct rn_spec_analysis *a, struct inputs *in,
                        struct rn_error *err)
{
    memset(in, 0, sizeof *in);
    const char *cases = STR(a, "cases");
    const struct rn_split *first = &run->data.splits[0];
    in->h = first->h;
    in->w = first->w;
    size_t hw = (size_t)in->h * in->w;
    if (cases[0]) {
        /* Canonical text from the spec: "digit colour split index; ..." */
        int n = 1;
        for (const char *p = cases; *p; p++)
            n += *p == ';';
        if (n > MAX_INPUTS)
            return aerr(err, a, "cases", "%d cases; at most %d", n, MAX_INPUTS);
        in->c = 3;
        in->constructed = 1;
        if (!(in->images = rn_calloc((size_t)n * 3 * hw, 1, err)) ||
            !(in->masks = rn_calloc((size_t)n * hw, 1, err)))
            return -1;
        const char *p = cases;
        for (int i = 0; i < n; i++) {
            int digit, index;
            char colour[32], split[32], item[RN_STR_MAX];
            size_t span = strcspn(p, ";");
            snprintf(item, sizeof item, "%.*s", (int)span, p);
            p += span + (p[span] == ';');
            if (sscanf(item, "%d %31s %31s %d", &digit, colour, split, &index) != 4)
                return aerr(err, a, "cases", "cannot read case %d of '%s'", i + 1, cases);
            if (make_case(run, a, digit, colour, split, index, in, i, err))
                return -1;
            in->n++;
        }
        return 0;
    }
    struct rn_split *s = rn_data_split(&run->data, STR(a, "split"));
    if (!s || s->n == 0)
        return aerr(err, a, "split", "no split '%s' with images; expected train, val or test",
                    STR(a, "split"));
    int n = (int)NUM(a, "n") < s->n ? (int)NUM(a, "n") : s->n;
    in->c = s->c;
    snprintf(in->split, sizeof in->split, "%s", s->name);
    if (!(in->images = rn_malloc((size_t)n * s->c * hw, err)) ||
        !(in->masks = rn_calloc((size_t)n * hw, 1, err)))
        return -1;
    memcpy(in->images, s->images, (size_t)n * s->c * hw);
    for (int i = 0; i < n; i++) {
        stroke_mask(in->images + (size_t)i * s->c * hw, s->c, (int)hw, &run->spec->data,
                    in->masks + (size_t)i * hw);
        in->labels[i] = s->labels[i];
        in->colours[i] = s->colours[i] == RN_NO_COLOUR ? -1 : s->colours[i];
        in->sources[i] = i;
    }
    in->n = n;
    return 0;
}

/* Copies images [start, start + m) of a (n, c, h, w) uint8 array into the
 * graph's input (on its device). */
static int load_x(struct rn_graph *g, const uint8_t *images, int start, int m,
                  struct rn_error *err)
{
    struct rn_tensor *x = rn_graph_input_host(g, m, err);
    if (!x)
        return -1;
    const size_t per = rn_tensor_sample(x);
    for (size_t k = 0; k < (size_t)m * per; k++)
        x->data[k] = images[(size_t)start * per + k] * (1.0f / 255.0f);
    return rn_graph_input_commit(g, err);
}

static int batch_of(const struct rn_graph *g)
{
    return g->max_n < 64 ? g->max_n : 64;
}

/* Writes the inputs every figure shows beside its maps. */
static int write_inputs(struct rn_run *run, const char *group, const struct inputs *in,
                        struct rn_error *err)
{
    char path[400];
    int dims[4] = {in->n, in->c, in->h, in->w}, n = in->n;
    snprintf(path, sizeof path, "%s/images", group);
    if (rn_results_write(run->results, path, RN_DTYPE_U8, in->images, 4, dims, err))
        return -1;
    snprintf(path, sizeof path, "%s/labels", group);
    if (rn_results_write(run->results, path, RN_DTYPE_I32, in->labels, 1, &n, err))
        return -1;
    snprintf(path, sizeof path, "%s/colours", group);
    if (rn_results_write(run->results, path, RN_DTYPE_I32, in->colours, 1, &n, err))
        return -1;
    snprintf(path, sizeof path, "%s/sources", group);
    if (rn_results_write(run->results, path, RN_DTYPE_I32, in->sources, 1, &n, err))
        return -1;
    return rn_results_set_attr_str(run->results, group, "inputs",
                                   in->constructed ? "cases" : "split", err) ||
           rn_results_set_attr_str(run->results, group, "split", in->split, err) ||
           rn_results_set_attr_str(run->results, group, "colouring",
                                   run->spec->data.colouring == RN_COLOURING_STROKE ? "stroke"
                                                                                    : "background",
                                   err);
}

/* ---- models: this run's and others' -------------------------------------- */

struct model {
    char name[RN_NAME_MAX];
    struct rn_run *run;   /* the analysed run, or &own */
    struct rn_run own;    /* a model loaded from another run: spec, graph, probs only */
    struct rn_spec spec;
    int loaded;
};

static void models_free(struct model *m, int n)
{
    for (int i = 0; i < n; i++) {
        if (!m[i].loaded)
            continue;
        rn_graph_free(&m[i].own.graph);
        free(m[i].own.probs);
        rn_spec_free(&m[i].spec);
    }
    free(m);
}

/* Builds the architecture recorded in run file `file` (its /config yaml) and
 * loads /models/<model> into it. */
static int load_model(struct rn_run *run, struct model *m, const char *file, const char *model,
                      struct rn_error *err)
{
    const struct rn_split *s = &run->data.splits[0];
    struct rn_shape in = {s->c, s->h, s->w};
    /* on the device the analysed run uses */
    int device = run->has_graph ? run->graph.device : run->opt.device;
    if (rn_run_open_model(&m->own, &m->spec, file, model, &run->opt, in, 64, run->data.n_classes,
                          device, err))
        return -1;
    m->loaded = 1;
    m->run = &m->own;
    return 0;
}

/* The models of a `models` key ("name run model; ..."), or this run's. */
static int open_models(struct rn_run *run, const struct rn_spec_analysis *a, struct model **out,
                       int *n_out, struct rn_error *err)
{
    const char *list = STR(a, "models");
    struct model *m = rn_calloc(MAX_MODELS, sizeof *m, err);
    int n = 0;
    *out = NULL;
    *n_out = 0;
    if (!m)
        return -1;
    if (!list[0]) {
        if (need_graph(run, a, err))
            goto fail;
        snprintf(m[0].name, sizeof m[0].name, "%s", run->spec->name);
        m[0].run = run;
        *out = m;
        *n_out = 1;
        return 0;
    }
    const char *p = list;
    char skipped[1024] = "";
    while (*p) {
        char name[RN_NAME_MAX], path[RN_PATH_MAX], model[RN_NAME_MAX], item[RN_STR_MAX];
        size_t span = strcspn(p, ";");
        snprintf(item, sizeof item, "%.*s", (int)span, p);
        p += span + (p[span] == ';');
        if (sscanf(item, "%95s %511s %95s", name, path, model) != 3) {
            aerr(err, a, "models", "cannot read '%s'", item);
            goto fail;
        }
        if (n == MAX_MODELS) {
            aerr(err, a, "models", "at most %d models", MAX_MODELS);
            goto fail;
        }
        struct model *mi = &m[n];
        snprintf(mi->name, sizeof mi->name, "%s", name);
        if (strcmp(path, "self") == 0) {
            if (need_graph(run, a, err))
                goto fail;
            mi->run = run;
            n++;
            continue;
        }
        char file[RN_PATH_MAX + 16];
        struct stat st;
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
            snprintf(file, sizeof file, "%s/run.h5", path);
        else
            snprintf(file, sizeof file, "%s", path);
        if (access(file, R_OK) != 0) {
            /* Models of later issues may not be trained yet. */
            fprintf(run->opt.log ? run->opt.log : stderr,
                    "warning: analysis '%s': model '%s' skipped: no run at %s (train it first)\n",
                    a->name, name, path);
            size_t len = strlen(skipped);
            snprintf(skipped + len, sizeof skipped - len, "%s%s", len ? ", " : "", name);
            continue;
        }
        n++;
        if (load_model(run, mi, file, model, err)) {
            char why[RN_ERROR_MAX];
            snprintf(why, sizeof why, "%s", err ? err->msg : "");
            aerr(err, a, "models", "model '%s': %s", name, why);
            goto fail;
        }
    }
    if (n == 0) {
        aerr(err, a, "models", "none of its models could be loaded (skipped: %s)", skipped);
        goto fail;
    }
    *out = m;
    *n_out = n;
    return 0;
fail:
    models_free(m, n);
    return -1;
}

static int write_model_names(struct rn_run *run, const char *group, const struct model *m, int n,
                             struct rn_error *err)
{
    char names[MAX_MODELS * (RN_NAME_MAX + 1)] = "";
    size_t len = 0;
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(names + len, sizeof names - len, "%s%s", i ? ";" : "", m[i].name);
    return rn_results_set_attr_str(run->results, group, "models", names, err);
}

/* `class`: pred (-1), true (-2) or a class index. */
static int parse_class(const struct rn_spec_analysis *a, int k, int *out, struct rn_error *err)
{
    const char *s = STR(a, "class");
    char *end;
    long c = strtol(s, &end, 10);
    if (strcmp(s, "pred") == 0)
        *out = -1;
    else if (strcmp(s, "true") == 0)
        *out = -2;
    else if (*s && !*end && c >= 0 && c < k)
        *out = (int)c;
    else
        return aerr(err, a, "class", "expected pred, true or a class index 0-%d, got '%s'", k - 1,
                    s);
    return 0;
}

static enum rn_cam_method cam_method(const struct rn_spec_analysis *a)
{
    return strcmp(STR(a, "method"), "gradcam++") == 0 ? RN_CAM_GRADCAM_PP : RN_CAM_GRADCAM;
}

/* Grad-CAM at `tap` must explain a spatial map. */
static int check_tap(const struct rn_graph *g, const struct rn_spec_analysis *a, int tap,
                     int logits, struct rn_error *err)
{
    const struct rn_shape o = g->nodes[tap].layer.out;
    if (tap >= logits || o.h * o.w < 2)
        return aerr(err, a, "node", "node '%s' gives (%d,%d,%d): Grad-CAM needs a spatial map "
                    "before the logits (e.g. the last conv)",
                    g->nodes[tap].layer.name, o.c, o.h, o.w);
    return 0;
}

/* ---- filters ------------------------------------------------------------- */

static int run_filters(struct rn_run *run, const struct rn_spec_analysis *a, struct rn_error *err)
{
    if (need_graph(run, a, err))
        return -1;
    int node = find_node(&run->graph, a, "node", STR(a, "node"), err);
    if (node < 0)
        return -1;
    struct rn_layer *l = &run->graph.nodes[node].layer;
    struct rn_param *wp = rn_layer_param(l, "weight");
    if (strcmp(l->type->name, "conv2d") != 0 || !wp)
        return aerr(err, a, "node", "node '%s' is a %s; filters draws conv2d weights", l->name,
                    l->type->name);
    struct rn_tensor stage = {0};
    const struct rn_tensor *t = rn_host_view(&wp->value, &stage, 1, err);
    if (!t)
        return -1;
    char group[256], path[320];
    snprintf(group, sizeof group, "/analyses/%s", a->name);
    snprintf(path, sizeof path, "%s/weights", group);
    int dims[4] = {t->n, t->c, t->h, t->w};
    int rc = rn_results_write(run->results, path, RN_DTYPE_F32, t->data, 4, dims, err);
    rn_tensor_free(&stage);
    if (rc || rn_results_set_attr_str(run->results, group, "kind", "filters", err) ||
        rn_results_set_attr_str(run->results, group, "node", l->name, err) ||
        rn_results_set_attr_u64(run->results, group, "max_filters",
                                (uint64_t)NUM(a, "max_filters"), err) ||
        rn_results_set_attr_u64(run->results, group, "max_channels",
                                (uint64_t)NUM(a, "max_channels"), err))
        return -1;
    if (!run->opt.quiet)
        fprintf(run->opt.log, "filters %s: %s weights (%d, %d, %d, %d)\n", a->name, l->name, t->n,
                t->c, t->h, t->w);
    return 0;
}

/* ---- activations ----------------------------------------------------------- */

static int run_activations(struct rn_run *run, const struct rn_spec_analysis *a,
                           struct rn_error *err)
{
    if (need_graph(run, a, err))
        return -1;
    struct rn_graph *g = &run->graph;
    int node = find_node(g, a, "node", STR(a, "node"), err);
    if (node < 0)
        return -1;
    struct inputs in;
    float *maps = NULL, *probs = NULL;
    int rc = -1;
    if (build_inputs(run, a, &in, err))
        goto done;
    const struct rn_shape o = g->nodes[node].layer.out;
    const int M = (int)NUM(a, "max_maps") < o.c ? (int)NUM(a, "max_maps") : o.c;
    const int k = run->data.n_classes, per = o.h * o.w;
    int preds[MAX_INPUTS];
    if (!(maps = rn_malloc(sizeof(float) * (size_t)in.n * M * per, err)) ||
        !(probs = rn_malloc(sizeof(float) * (size_t)in.n * k, err)))
        goto done;
    for (int s = 0, bs = batch_of(g); s < in.n; s += bs) {
        int m = in.n - s < bs ? in.n - s : bs;
        if (load_x(g, in.images, s, m, err) || rn_run_predict(run, m, probs + (size_t)s * k, err))
            goto done;
        const struct rn_tensor *y = rn_graph_output_host(g, node, err);
        if (!y)
            goto done;
        for (int i = 0; i < m; i++) {
            preds[s + i] = rn_argmax(probs + (size_t)(s + i) * k, k);
            memcpy(maps + (size_t)(s + i) * M * per, y->data + (size_t)i * o.c * per,
                   sizeof(float) * (size_t)M * per);
        }
    }
    char group[256], path[320];
    snprintf(group, sizeof group, "/analyses/%s", a->name);
    int dims[4] = {in.n, M, o.h, o.w}, pd[2] = {in.n, k};
    snprintf(path, sizeof path, "%s/maps", group);
    if (write_inputs(run, group, &in, err) ||
        rn_results_write(run->results, path, RN_DTYPE_F32, maps, 4, dims, err))
        goto done;
    snprintf(path, sizeof path, "%s/preds", group);
    if (rn_results_write(run->results, path, RN_DTYPE_I32, preds, 1, &in.n, err))
        goto done;
    snprintf(path, sizeof path, "%s/probs", group);
    if (rn_results_write(run->results, path, RN_DTYPE_F32, probs, 2, pd, err) ||
        rn_results_set_attr_str(run->results, group, "kind", "activations", err) ||
        rn_results_set_attr_str(run->results, group, "node", g->nodes[node].layer.name, err) ||
        rn_results_set_attr_u64(run->results, group, "channels", (uint64_t)o.c, err))
        goto done;
    if (!run->opt.quiet)
        fprintf(run->opt.log, "activations %s: %d of %d maps of %s (%dx%d) for %d input%s\n",
                a->name, M, o.c, g->nodes[node].layer.name, o.h, o.w, in.n, in.n == 1 ? "" : "s");
    rc = 0;
done:
    inputs_free(&in);
    free(maps);
    free(probs);
    return rc;
}

/* ---- Grad-CAM ---------------------------------------------------------------- */

static int run_gradcam(struct rn_run *run, const struct rn_spec_analysis *a, struct rn_error *err)
{
    if (need_graph(run, a, err))
        return -1;
    struct rn_graph *g = &run->graph;
    int tap = find_node(g, a, "node", STR(a, "node"), err), want;
    if (tap < 0 || check_tap(g, a, tap, run->logits_node, err) ||
        parse_class(a, run->data.n_classes, &want, err))
        return -1;
    struct inputs in;
    float *raw = NULL, *maps = NULL, *probs = NULL;
    int rc = -1;
    if (build_inputs(run, a, &in, err))
        goto done;
    const struct rn_shape o = g->nodes[tap].layer.out;
    const int k = run->data.n_classes, H = in.h, W = in.w;
    int classes[MAX_INPUTS], preds[MAX_INPUTS];
    if (!(raw = rn_malloc(sizeof(float) * (size_t)in.n * o.h * o.w, err)) ||
        !(maps = rn_malloc(sizeof(float) * (size_t)in.n * H * W, err)) ||
        !(probs = rn_malloc(sizeof(float) * (size_t)in.n * k, err)))
        goto done;
    for (int i = 0; i < in.n; i++)
        classes[i] = want == -2 ? in.labels[i] : want;
    for (int s = 0, bs = batch_of(g); s < in.n; s += bs) {
        int m = in.n - s < bs ? in.n - s : bs;
        if (load_x(g, in.images, s, m, err) ||
            rn_gradcam(g, m, run->logits_node, tap, cam_method(a), classes + s,
                       raw + (size_t)s * o.h * o.w, maps + (size_t)s * H * W,
                       probs + (size_t)s * k, err))
            goto done;
    }
    for (int i = 0; i < in.n; i++)
        preds[i] = rn_argmax(probs + (size_t)i * k, k);
    char group[256], path[320];
    snprintf(group, sizeof group, "/analyses/%s", a->name);
    int md[3] = {in.n, H, W}, rd[3] = {in.n, o.h, o.w}, pd[2] = {in.n, k};
    if (write_inputs(run, group, &in, err))
        goto done;
    snprintf(path, sizeof path, "%s/maps", group);
    if (rn_results_write(run->results, path, RN_DTYPE_F32, maps, 3, md, err))
        goto done;
    snprintf(path, sizeof path, "%s/raw", group);
    if (rn_results_write(run->results, path, RN_DTYPE_F32, raw, 3, rd, err))
        goto done;
    snprintf(path, sizeof path, "%s/probs", group);
    if (rn_results_write(run->results, path, RN_DTYPE_F32, probs, 2, pd, err))
        goto done;
    snprintf(path, sizeof path, "%s/preds", group);
    if (rn_results_write(run->results, path, RN_DTYPE_I32, preds, 1, &in.n, err))
        goto done;
    snprintf(path, sizeof path, "%s/classes", group);
    if (rn_results_write(run->results, path, RN_DTYPE_I32, classes, 1, &in.n, err) ||
        rn_results_set_attr_str(run->results, group, "kind", "gradcam", err) ||
        rn_results_set_attr_str(run->results, group, "method", STR(a, "method"), err) ||
        rn_results_set_attr_str(run->results, group, "node", g->nodes[tap].layer.name, err) ||
        rn_results_set_attr_str(run->results, group, "class", STR(a, "class"), err))
        goto done;
    if (!run->opt.quiet) {
        const struct rn_palette *pal = &run->spec->data.palette;
        for (int i = 0; i < in.n; i++) {
            /* Where the map's mass sits: the share on background pixels. */
            double bg = 0, tot = 0;
            for (int p = 0; p < H * W; p++) {
                tot += maps[(size_t)i * H * W + p];
                if (!in.masks[(size_t)i * H * W + p])
                    bg += maps[(size_t)i * H * W + p];
            }
            fprintf(run->opt.log,
                    "%s %s: digit %d on %-7s -> predicted %d (p = %.3f); map of class %d, "
                    "%.0f%% of its mass on the background\n",
                    STR(a, "method"), a->name, in.labels[i],
                    in.colours[i] >= 0 ? pal->names[in.colours[i]] : "-", preds[i],
                    probs[(size_t)i * k + preds[i]], classes[i], tot > 0 ? 100 * bg / tot : 0.0);
        }
    }
    rc = 0;
done:
    inputs_free(&in);
    free(raw);
    free(maps);
    free(probs);
    return rc;
}

/* ---- saliency ----------------------------------------------------------------- */

static int run_saliency(struct rn_run *run, const struct rn_spec_analysis *a,
                        struct rn_error *err)
{
    struct model *models = NULL;
    int nm = 0, rc = -1;
    struct inputs in;
    memset(&in, 0, sizeof in);
    float *maps = NULL, *probs = NULL;
    int32_t *preds = NULL;
    if (open_models(run, a, &models, &nm, err) || build_inputs(run, a, &in, err))
        goto done;
    const int k = run->data.n_classes, HW = in.h * in.w;
    if (!(maps = rn_malloc(sizeof(float) * (size_t)nm * in.n * HW, err)) ||
        !(probs = rn_malloc(sizeof(float) * (size_t)in.n * k, err)) ||
        !(preds = rn_malloc(sizeof(int32_t) * (size_t)nm * in.n, err)))
        goto done;
    uint8_t labels[MAX_INPUTS];
    for (int i = 0; i < in.n; i++)
        labels[i] = (uint8_t)in.labels[i];
    for (int j = 0; j < nm; j++) {
        struct rn_run *r = models[j].run;
        struct rn_graph *g = &r->graph;
        for (int s = 0, bs = batch_of(g); s < in.n; s += bs) {
            int m = in.n - s < bs ? in.n - s : bs;
            if (load_x(g, in.images, s, m, err) ||
                rn_saliency_map(g, m, r->logits_node, labels + s,
                            maps + ((size_t)j * in.n + s) * HW, probs + (size_t)s * k, err))
                goto done;
        }
        for (int i = 0; i < in.n; i++)
            preds[j * in.n + i] = rn_argmax(probs + (size_t)i * k, k);
    }
    char group[256], path[320];
    snprintf(group, sizeof group, "/analyses/%s", a->name);
    int md[4] = {nm, in.n, in.h, in.w}, pd[2] = {nm, in.n};
    if (write_inputs(run, group, &in, err))
        goto done;
    snprintf(path, sizeof path, "%s/maps", group);
    if (rn_results_write(run->results, path, RN_DTYPE_F32, maps, 4, md, err))
        goto done;
    snprintf(path, sizeof path, "%s/preds", group);
    if (rn_results_write(run->results, path, RN_DTYPE_I32, preds, 2, pd, err) ||
        write_model_names(run, group, models, nm, err) ||
        rn_results_set_attr_str(run->results, group, "kind", "saliency", err))
        goto done;
    if (!run->opt.quiet)
        for (int j = 0; j < nm; j++) {
            double bg = 0, tot = 0;
            for (size_t p = 0; p < (size_t)in.n * HW; p++) {
                float v = maps[(size_t)j * in.n * HW + p];
                tot += v;
                bg += in.masks[p] ? 0 : v;
            }
            fprintf(run->opt.log, "saliency %s: %-8s %.0f%% of the |gradient| on the background\n",
                    a->name, models[j].name, tot > 0 ? 100 * bg / tot : 0.0);
        }
    rc = 0;
done:
    models_free(models, nm);
    inputs_free(&in);
    free(maps);
    free(probs);
    free(preds);
    return rc;
}

/* ---- attention mass -------------------------------------------------------------- */

/* Share of a map's mass on background pixels; NAN for an all-zero map. */
static float bg_share(const float *map, const uint8_t *mask, int hw)
{
    double bg = 0, tot = 0;
    for (int p = 0; p < hw; p++) {
        tot += map[p];
        if (!mask[p])
            bg += map[p];
    }
    return tot > 0 ? (float)(bg / tot) : NAN;
}

static double mean_finite(const float *v, int n, int *count)
{
    double s = 0;
    int c = 0;
    for (int i = 0; i < n; i++)
        if (isfinite(v[i])) {
            s += v[i];
            c++;
        }
    if (count)
        *count = c;
    return c ? s / c : NAN;
}

static int run_attention_mass(struct rn_run *run, const struct rn_spec_analysis *a,
                              struct rn_error *err)
{
    struct model *models = NULL;
    int nm = 0, rc = -1, want;
    float *cam = NULL, *raw = NULL, *sal = NULL, *gc_bg = NULL, *sal_bg = NULL, *px_bg = NULL;
    uint8_t *masks = NULL;
    double *summary = NULL;
    if (parse_class(a, run->data.n_classes, &want, err) ||
        open_models(run, a, &models, &nm, err))
        goto done;
    struct rn_split *s = rn_data_split(&run->data, STR(a, "split"));
    if (!s || s->n == 0) {
        aerr(err, a, "split", "no split '%s' with images", STR(a, "split"));
        goto done;
    }
    const int n = (int)NUM(a, "n") < s->n ? (int)NUM(a, "n") : s->n;
    const int HW = s->h * s->w, k = run->data.n_classes, bs = 64;
    if (!(cam = rn_malloc(sizeof(float) * (size_t)bs * HW, err)) ||
        !(raw = rn_malloc(sizeof(float) * (size_t)bs * HW, err)) ||
        !(sal = rn_malloc(sizeof(float) * (size_t)bs * HW, err)) ||
        !(gc_bg = rn_malloc(sizeof(float) * (size_t)nm * n, err)) ||
        !(sal_bg = rn_malloc(sizeof(float) * (size_t)nm * n, err)) ||
        !(px_bg = rn_malloc(sizeof(float) * (size_t)n, err)) ||
        !(masks = rn_malloc((size_t)n * HW, err)) ||
        !(summary = rn_calloc((size_t)nm * 4, sizeof(double), err)))
        goto done;
    for (int i = 0; i < n; i++) {
        uint8_t *mk = masks + (size_t)i * HW;
        stroke_mask(s->images + (size_t)i * s->c * HW, s->c, HW, &run->spec->data, mk);
        int bgpx = 0;
        for (int p = 0; p < HW; p++)
            bgpx += !mk[p];
        px_bg[i] = (float)bgpx / HW;
    }
    for (int j = 0; j < nm; j++) {
        struct rn_run *r = models[j].run;
        struct rn_graph *g = &r->graph;
        int tap = find_node(g, a, "node", STR(a, "node"), err);
        if (tap < 0 || check_tap(g, a, tap, r->logits_node, err))
            goto done;
        const struct rn_shape o = g->nodes[tap].layer.out;
        if (o.h * o.w > HW) {
            aerr(err, a, "node", "node '%s' is larger than the input", STR(a, "node"));
            goto done;
        }
        int correct = 0, b = bs < g->max_n ? bs : g->max_n;
        for (int st = 0; st < n; st += b) {
            int m = n - st < b ? n - st : b, classes[64];
            uint8_t labels[64];
            for (int i = 0; i < m; i++) {
                labels[i] = s->labels[st + i];
                classes[i] = want == -2 ? labels[i] : want;
            }
            if (load_x(g, s->images, st, m, err) ||
                rn_gradcam(g, m, r->logits_node, tap, cam_method(a), classes, raw, cam, r->probs,
                           err))
                goto done;
            for (int i = 0; i < m; i++)
                correct += rn_argmax(r->probs + (size_t)i * k, k) == labels[i];
            if (rn_saliency_map(g, m, r->logits_node, labels, sal, NULL, err))
                goto done;
            for (int i = 0; i < m; i++) {
                const uint8_t *mk = masks + (size_t)(st + i) * HW;
                gc_bg[j * n + st + i] = bg_share(cam + (size_t)i * HW, mk, HW);
                sal_bg[j * n + st + i] = bg_share(sal + (size_t)i * HW, mk, HW);
            }
        }
        int valid;
        summary[j * 4 + 0] = mean_finite(gc_bg + (size_t)j * n, n, &valid);
        summary[j * 4 + 1] = mean_finite(sal_bg + (size_t)j * n, n, NULL);
        summary[j * 4 + 2] = mean_finite(px_bg, n, NULL);
        summary[j * 4 + 3] = (double)correct / n;
        if (!run->opt.quiet)
            fprintf(run->opt.log,
                    "attention_mass %s: %-8s on %d %s images: background holds %.1f%% of the "
                    "Grad-CAM mass (%d non-zero maps), %.1f%% of the saliency mass, %.1f%% of the "
                    "pixels; accuracy %.1f%%\n",
                    a->name, models[j].name, n, s->name, 100 * summary[j * 4],
                    valid, 100 * summary[j * 4 + 1], 100 * summary[j * 4 + 2],
                    100 * summary[j * 4 + 3]);
    }
    char group[256], path[320];
    snprintf(group, sizeof group, "/analyses/%s", a->name);
    int sd[2] = {nm, 4}, vd[2] = {nm, n};
    snprintf(path, sizeof path, "%s/summary", group);
    if (rn_results_write(run->results, path, RN_DTYPE_F64, summary, 2, sd, err))
        goto done;
    snprintf(path, sizeof path, "%s/gradcam_bg", group);
    if (rn_results_write(run->results, path, RN_DTYPE_F32, gc_bg, 2, vd, err))
        goto done;
    snprintf(path, sizeof path, "%s/saliency_bg", group);
    if (rn_results_write(run->results, path, RN_DTYPE_F32, sal_bg, 2, vd, err))
        goto done;
    snprintf(path, sizeof path, "%s/pixel_bg", group);
    if (rn_results_write(run->results, path, RN_DTYPE_F32, px_bg, 1, &vd[1], err) ||
        write_model_names(run, group, models, nm, err) ||
        rn_results_set_attr_str(run->results, group, "kind", "attention_mass", err) ||
        rn_results_set_attr_str(run->results, group, "split", s->name, err) ||
        rn_results_set_attr_str(run->results, group, "method", STR(a, "method"), err) ||
        rn_results_set_attr_str(run->results, group, "node", STR(a, "node"), err) ||
        rn_results_set_attr_str(run->results, group, "columns",
                                "gradcam_bg saliency_bg pixel_bg accuracy", err))
        goto done;
    rc = 0;
done:
    models_free(models, nm);
    free(cam);
    free(raw);
    free(sal);
    free(gc_bg);
    free(sal_bg);
    free(px_bg);
    free(masks);
    free(summary);
    return rc;
}
