/* pgd.h - projected gradient descent (PGD) on a model's input, L-inf or L2,
 * targeted or not, over a batch of (epsilon, image) pairs (pgd.c): the
 * arithmetic of the attack analysis (analyses/attack.c).
 */
#ifndef RN_PGD_H
#define RN_PGD_H

#include <stdint.h>

#include "error.h"
#include "graph.h"

struct rn_attack_cfg {
    int l2;     /* 0: L-inf ball, 1: L2 ball */
    int steps;  /* iterations (FGSM: 1 with step_rel 1) */
    float step; /* absolute step size; <= 0: step_rel * epsilon */
    float step_rel;
    int random_start; /* L-inf: uniform in the box; L2: uniform in the ball */
    int restarts;     /* >= 1; the best per (epsilon, image) is kept */
    uint64_t seed;
};

/* Attacks the n images src (n, C, H, W) in [0, 1] at each of the n_eps
 * epsilons. Each step, in this order: a gradient step (L-inf: step *
 * sign(g); L2: step * g / |g|_2 per image), the projection onto the ball of
 * radius epsilon around the source, the clamp to [0, 1]. targets[i] >= 0:
 * minimise CE(target) (g = -dCE/dx); -1: maximise CE(labels[i]). g runs in
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
double rn_attack_max_violation(int l2, const float *eps, int n_eps, const float *src,
                               const float *adv, int n, size_t per);

#endif
