/* interp.c - the arithmetic of the interpretability analyses (interp.h):
 * Grad-CAM / Grad-CAM++, saliency maps and the bilinear upsampling of maps.
 */
#include "interp.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "analysis.h"
#include "loss.h"
#include "train.h"

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
