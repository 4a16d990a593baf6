/* loss.h - loss terms: the registry of loss types and of the targets a term
 * predicts (the only lists of either; spec and program code use the enums),
 * and softmax cross-entropy on logits, on the host and as a backend table
 * (struct rn_loss_kernels) for logits that live on a device. The terms are
 * computed by runner/program.c (saliency through runner/saliency.h).
 *
 * Cross-entropy is numerically stable: per sample lse = z[argmax] +
 * log(sum exp(z - z[argmax])) in double, loss = lse - z[target]; argmax takes
 * the first maximum.
 */
#ifndef RN_LOSS_H
#define RN_LOSS_H

#include <stdint.h>

#include "error.h"
#include "tensor.h"

enum rn_loss_kind { RN_LOSS_CE, RN_LOSS_NEG_CE, RN_LOSS_SALIENCY };
enum rn_target { RN_TARGET_DIGIT, RN_TARGET_COLOUR };

struct rn_loss_type {
    const char *name; /* as written in a spec: "cross_entropy" */
    enum rn_loss_kind kind;
    const char *doc;
};
extern const struct rn_loss_type rn_loss_types[]; /* in enum order */
extern const int rn_n_loss_types;
/* NULL when name is not a registered loss type. */
const struct rn_loss_type *rn_loss_type_find(const char *name);

extern const char *const rn_target_names[]; /* in enum order: "digit", "colour" */
extern const int rn_n_targets;
/* The enum of a target name, or -1. */
int rn_target_find(const char *name);

/* The registries' names in order, as a schema's choices; a test checks that
 * they agree. */
#define RN_LOSS_CHOICES "cross_entropy|neg_cross_entropy|saliency"
#define RN_TARGET_CHOICES "digit|colour"

/* Mean cross-entropy of logits (n, k) against targets; adds
 * weight * d(mean CE)/d logits into dlogits when non-NULL; counts correct
 * argmax predictions; probs (n, k) gets the softmax when non-NULL. Host
 * tensors. */
double rn_cross_entropy(const struct rn_tensor *logits, const uint8_t *targets, float weight,
                        struct rn_tensor *dlogits, int *correct, float *probs);

/* A backend's cross-entropy (backend.h: its `loss` table; NULL there: the
 * device keeps no losses, they are computed on host copies). */
struct rn_loss_kernels {
    /* Softmax cross-entropy of logits (n, k) against targets (bytes < k),
     * on the backend's memory: *loss_sum += the batch's summed loss,
     * *correct += its argmax hits (first maximum), confusion (NULL: none;
     * k x k int32, [target][argmax]) += 1 per sample; dlogits (NULL: none)
     * += weight * d(mean CE)/d logits. Nothing is read back: the caller
     * downloads the sums when it needs them (once per evaluated split).
     * The CPU's gives rn_cross_entropy's bits. */
    int (*cross_entropy)(const float *logits, const uint8_t *targets, int n, int k, float weight,
                         float *dlogits, double *loss_sum, int32_t *correct, int32_t *confusion,
                         struct rn_error *err);
};

#endif
