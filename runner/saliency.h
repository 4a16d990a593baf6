/* saliency.h - the saliency loss of Task 4, Method 2, with its exact
 * parameter gradient (DESIGN.md "Differentiation").
 *
 *   g_i      = d CE_i / d x_i        each sample's OWN cross-entropy (not the batch mean,
 *                                    whose input gradient is n times smaller: SPEC.md M2)
 *   s_i(p)   = sum_c |g_i[c,p]|      (norm l1)  or  sqrt(sum_c g_i[c,p]^2) (norm l2)
 *   mask_i(p)= 1 where min(R,G,B) of x_i at p < threshold (background), else 0
 *   R        = weight * reduce over the batch:
 *                mean_background:  mean over samples of (sum_p mask s / sum_p mask)
 *                background_share: mean over samples of (sum_p mask s / sum_p s)  (scale-free)
 *              A sample whose denominator is 0 (no background pixel; an all-zero
 *              input gradient) contributes 0 to the mean and nothing to the gradient.
 *
 * dR/dtheta is the directional derivative of the parameter gradient along
 * v = dR/dg: one tangent forward along v and one tangent backward, exact for
 * piecewise-linear nets (relu, max-pool, conv, linear, eval-mode batchnorm,
 * dropout with its mask fixed). Where |.| or the l2 norm has a kink (g == 0,
 * s == 0) the subgradient 0 is used, as PyTorch's abs backward does.
 *
 * Cost per call: one backward with the input gradient, one tangent forward,
 * one tangent backward. On SimpleGAPCNN at batch 64 (bench/bench_saliency.c)
 * a training step with rn_saliency_loss_ce costs ~2.3x a plain step (PyTorch's
 * double backprop ~2.9x); rn_saliency_loss followed by a separate CE backward
 * ~3.1x. Training loops should use the fused call when the run has a
 * cross-entropy term on the same logits and targets.
 */
#ifndef RN_SALIENCY_H
#define RN_SALIENCY_H

#include <stdint.h>

#include "graph.h"

enum rn_saliency_norm { RN_SALIENCY_L1, RN_SALIENCY_L2 };
enum rn_saliency_reduce { RN_SALIENCY_MEAN_BACKGROUND, RN_SALIENCY_BACKGROUND_SHARE };

struct rn_saliency {
    enum rn_saliency_norm norm;
    enum rn_saliency_reduce reduce;
    float threshold; /* background: min over channels < threshold (0.95) */
};

/* Requires: rn_graph_forward already ran on g->x (n samples) with ctx, up to
 * at least logits_node (k classes; targets[i] < k).
 * Computes R (returned in *value, weight included) and ADDS weight * dR/dtheta
 * into the parameter gradients. Uses and clobbers node dy/ty/tdy buffers,
 * g->dx, g->tx and g->tdx, so call it before the backward of the other loss
 * terms (which zeroes dy). Parameter gradients other than the added term are
 * left as they were (the by-product gradient of the per-sample losses is
 * discarded). Fails with a clear message when a layer has no tangent mode
 * (batchnorm in training mode); the parameter gradients are then as they
 * were before the call. logits_node: the node whose output are the logits. */
int rn_saliency_loss(struct rn_graph *g, int n, int logits_node, const uint8_t *targets,
                     const struct rn_saliency *cfg, float weight, struct rn_ctx *ctx, double *value,
                     struct rn_error *err);

/* The same, fused with a cross-entropy term ce_weight * mean_i CE_i on the
 * same logits and targets: the backward that yields g also yields that
 * term's parameter gradient, which is added (exactly what rn_cross_entropy
 * with ce_weight followed by rn_graph_backward would add) instead of being
 * discarded. The caller then does NOT run that term's own backward: one
 * backward per step saved. *ce_value (may be NULL) gets the unweighted mean
 * CE. With ce_weight == 0 this is rn_saliency_loss. */
int rn_saliency_loss_ce(struct rn_graph *g, int n, int logits_node, const uint8_t *targets,
                        const struct rn_saliency *cfg, float weight, float ce_weight,
                        struct rn_ctx *ctx, double *value, double *ce_value, struct rn_error *err);

/* A backend's part of the saliency loss: the per-sample arithmetic of steps
 * 1-3 of saliency.c, on the backend's memory (backend.h: its `saliency`
 * table; NULL there: saliency.c runs the CPU's on host copies). Every
 * pointer below is the backend's unless said otherwise (targets: n bytes
 * < k, checked by the caller). */
struct rn_saliency_kernels {
    /* Logits step: probs (n, k) = softmax(z) as rn_cross_entropy computes
     * it; *ce += the batch's mean CE (the caller zeroes it); dz (n, k):
     * with ce_weight != 0 (fused) dz += (float)(ce_weight * (p - onehot) /
     * n) into the caller's zeroed dz, else dz = probs - onehot (written). */
    int (*logits)(const float *z, const uint8_t *targets, int n, int k, float ce_weight,
                  float *probs, float *dz, double *ce, struct rn_error *err);
    /* Direction step on x, dx (n, C, HW): when rescale != 1, first dx =
     * (float)(dx / rescale) in place (the fused case's 1 / c). Then per
     * sample i, with cfg's norm, reduction and background mask (min over
     * channels of x < threshold): r[i] = the sample's unweighted term r_i
     * and tx_i = vscale * dr_i/d dx_i (floats), sums over HW in double.
     * r: n doubles; *r_sum += r[0] + r[1] + ... in index order. cfg is host
     * memory. */
    int (*direction)(const struct rn_saliency *cfg, const float *x, float *dx, int n, int C, int HW,
                     double rescale, double vscale, float *tx, double *r, double *r_sum,
                     struct rn_error *err);
    /* Tangent-logits step: per sample, tdz = (float)(c * p * (tz - p.tz))
     * with the dot product p.tz summed in double; probs, tz, tdz (n, k). */
    int (*tangent_logits)(const float *probs, const float *tz, int n, int k, double c, float *tdz,
                          struct rn_error *err);
};

#endif
