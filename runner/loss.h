/* loss.h - softmax cross-entropy on logits, on the host and as a backend
 * table (struct rn_loss_kernels) for logits that live on a device.
 *
 * Numerically stable: per sample lse = z[argmax] + log(sum exp(z - z[argmax]))
 * in double, loss = lse - z[target]; argmax takes the first maximum.
 */
#ifndef RN_LOSS_H
#define RN_LOSS_H

#include <stdint.h>

#include "error.h"
#include "tensor.h"

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
