/* pgd.h - projected gradient descent (PGD) on a model's input, L-inf or L2,
 * targeted or not, over a batch of (epsilon, image) pairs (pgd.c): the
 * arithmetic of the attack analysis (analyses/attack.c).
 */
#ifndef RN_PGD_H
#define RN_PGD_H

#include <stdint.h>

#include "error.h"
#include "graph.h"

/* The objective each step ascends, from the logits z (k classes), the true
 * label y, the target t and pi, the classes sorted by z, largest first:
 *   RN_PGD_CE      untargeted CE(z, y); targeted -CE(z, t)
 *   RN_PGD_MARGIN  untargeted max_{j != y} z_j - z_y; targeted z_t - max_{j != t} z_j
 *   RN_PGD_DLR     (Croce & Hein 2020) untargeted
 *                  (max_{j != y} z_j - z_y) / (z_pi1 - z_pi3 + 1e-12); targeted
 *                  (z_t - z_y) / (z_pi1 - (z_pi3 + z_pi4) / 2 + 1e-12)
 * Ties in a max or in the sort go to the lowest class index. */
enum rn_pgd_loss { RN_PGD_CE, RN_PGD_MARGIN, RN_PGD_DLR };

struct rn_attack_cfg {
    int l2;     /* 0: L-inf ball, 1: L2 ball */
    int steps;  /* iterations (FGSM: 1 with step_rel 1) */
    float step; /* absolute step size; <= 0: step_rel * epsilon */
    float step_rel;
    int random_start; /* L-inf: uniform in the box; L2: uniform in the ball */
    int restarts;     /* >= 1; the best per (epsilon, image) is kept */
    uint64_t seed;
    enum rn_pgd_loss loss;
    /* (n, H, W): 1 where the perturbation may go (every channel), 0 where
     * the source is kept; NULL: everywhere. Applied to the random start and
     * to every step, before the projection. */
    const uint8_t *mask;
    /* > 0: the probabilities after every trace_stride-th step (and before
     * the first) into trace, (steps / trace_stride + 1, n_eps, n, classes),
     * of the restart that is kept; 0: none. */
    int trace_stride;
    float *trace;
};

/* The value of the objective (above) at logits z, and into dz (k) its
 * gradient with respect to z. target < 0: untargeted. */
float rn_pgd_objective(enum rn_pgd_loss loss, const float *z, int k, int label, int target,
                       float *dz);

/* Attacks the n images src (n, C, H, W) in [0, 1] at each of the n_eps
 * epsilons. Each step, in this order: a gradient step (L-inf: step *
 * sign(g); L2: step * g / |g|_2 per image), the projection onto the ball of
 * radius epsilon around the source, the clamp to [0, 1]; g is the gradient of
 * cfg->loss (rn_pgd_objective). targets[i] >= 0: targeted at class
 * targets[i]; -1: untargeted (away from labels[i]). g runs in
 * eval mode, in chunks of its max batch, one forward and backward per chunk
 * and step for all (epsilon, image) pairs. adv (n_eps, n, C, H, W) and
 * probs (n_eps, n, classes) get the result; with restarts, the one with the
 * highest target probability (targeted) or lowest true-class probability
 * (untargeted). */
int rn_attack_pgd(struct rn_graph *g, int logits_node, const struct rn_attack_cfg *cfg,
                  const float *eps, int n_eps, const float *src, int n, const int *labels,
                  const int *targets, float *adv, float *probs, struct rn_error *err);

/* The largest distance of adv (n_eps, n, per) outside [0, 1] or outside the
 * ball of radius eps[e] around src (n, per); 0 when every image is valid.
 * Float rounding is forgiven: 1e-6 on L-inf distances, a relative 1e-5 on
 * L2 norms. */
/* Whether probabilities p (k) count as a success at confidence threshold:
 * targeted (target >= 0) p[target] >= threshold; untargeted, the top class
 * is not label. */
int rn_attack_reached(const float *p, int k, int label, int target, float threshold);

/* Per image the smallest epsilon at which the attack reaches the threshold
 * (rn_attack_reached), refined by bisection: image i is known to fail at
 * lo[i] and to succeed at hi[i] (from a sweep); each of `rounds` rounds
 * attacks every open image at the midpoint (one batch, cfg's steps and
 * restarts) and keeps the half that holds the boundary. min_eps[i] gets the
 * final hi[i]; images with hi[i] <= lo[i] or hi[i] infinite are left at
 * hi[i]. */
int rn_attack_min_eps(struct rn_graph *g, int logits_node, const struct rn_attack_cfg *cfg,
                      const float *src, int n, const int *labels, const int *targets,
                      float threshold, const float *lo, const float *hi, int rounds,
                      float *min_eps, struct rn_error *err);

double rn_attack_max_violation(int l2, const float *eps, int n_eps, const float *src,
                               const float *adv, int n, size_t per);

#endif
