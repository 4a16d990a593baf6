/* interp.h - the arithmetic of the interpretability analyses (interp.c):
 * Grad-CAM, saliency maps, bilinear upsampling; used by gradcam.c,
 * saliency.c and attention_mass.c, and exposed for their tests.
 *
 * Every function runs the graph in eval mode on the first n samples of g->x,
 * which the caller fills. Maps are float (n, H, W) with H, W the input's
 * height and width, row-major, row 0 at the top: the same orientation as the
 * image.
 */
#ifndef RN_INTERP_H
#define RN_INTERP_H

#include "error.h"
#include "graph.h"

enum rn_cam_method { RN_CAM_GRADCAM, RN_CAM_GRADCAM_PP };

/* Grad-CAM (or Grad-CAM++) at node `tap` for class classes[i] of sample i
 * (-1: the predicted class; the class used is written back). Backward from
 * the class score (the logit, not the softmax). raw (n, h, w) at the tap's
 * resolution gets ReLU(sum_k w_k A_k); map (n, H, W) the raw map upsampled
 * bilinearly (half-pixel centres) and divided by its maximum (an all-zero map
 * stays zero). probs (n, classes) may be NULL. Parameter gradients of g
 * accumulate as a side effect. */
int rn_gradcam(struct rn_graph *g, int n, int logits_node, int tap, enum rn_cam_method method,
               int *classes, float *raw, float *map, float *probs, struct rn_error *err);

/* Saliency: sum over channels of |d CE(logits_i, labels[i]) / d x_i| into
 * map (n, H, W) (per sample, not divided by n). probs (n, classes) may be
 * NULL. */
int rn_saliency_map(struct rn_graph *g, int n, int logits_node, const uint8_t *labels, float *map,
                float *probs, struct rn_error *err);

/* Bilinear resize of one (h, w) map to (H, W) with half-pixel centres, as
 * PyTorch's F.interpolate(mode='bilinear', align_corners=False). */
void rn_upsample_bilinear(const float *src, int h, int w, float *dst, int H, int W);

#endif
