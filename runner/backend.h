/* backend.h - where tensors live and what runs on them.
 *
 * A backend is a table of kernels (DESIGN.md "Tensors and backends"). The CPU
 * backend is the layer types' own functions (layers/, kernels/cpu/); the
 * CUDA backend (kernels/cuda/, built when nvcc and cuDNN are found) gives
 * every layer type a second implementation on device memory, with cuDNN for
 * convolution, pooling, activation and batchnorm, cuBLAS for linear layers
 * and small CUDA kernels for the rest. Layer files contain no CUDA code: the
 * graph executor asks the graph's backend for the kernels of each node.
 *
 * A graph is always built and initialised on the host (so both backends
 * start from bit-identical parameters); rn_graph_to_device then moves it.
 * Device pointers are plain `float *` in struct rn_tensor with device set;
 * host code must never dereference them (rn_tensor_download copies out).
 */
#ifndef RN_BACKEND_H
#define RN_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "augment.h"
#include "error.h"
#include "layer.h"

struct rn_saliency;    /* saliency.h */
struct rn_data_config; /* data.h */

enum rn_device {
    RN_DEVICE_CPU = 0,
    RN_DEVICE_CUDA = 1,
    /* a stand-in device on host memory that the tests install
     * (rn_backend_set_test) to check the executor's device plumbing */
    RN_DEVICE_TEST = 2,
};

/* One backend's implementation of one layer type. forward .. tangent_backward
 * have the signatures and the contract of struct rn_layer_type (layer.h),
 * on tensors of this backend's device; NULL: not available on this backend
 * (the executor reports it by name). */
struct rn_layer_kernels {
    const char *type; /* layer type name, as in the registry */
    /* Called once after the layer's parameters were moved to the device:
     * creates descriptors and workspaces in l->dpriv for batches <= max_n. */
    int (*prepare)(struct rn_layer *l, int max_n, struct rn_error *err);
    /* Frees l->dpriv (NULL-safe). */
    void (*release)(struct rn_layer *l);
    rn_layer_forward_fn *forward;
    rn_layer_backward_fn *backward;
    rn_layer_tangent_forward_fn *tangent_forward;
    rn_layer_tangent_backward_fn *tangent_backward;
};

/* One optimizer update of a parameter of n floats (optim.h semantics). */
struct rn_optim_update {
    int kind;           /* enum rn_optim_kind */
    float lr, beta1, beta2, eps, weight_decay, momentum;
    long step;          /* 1-based update count (SGD: 1 = the first) */
    float grad_scale;   /* gradient multiplier (1 when none), unless clip_sq is set */
    /* Clipping by global norm without a round trip: clip_sq (the backend's
     * memory) holds the squared norm of every gradient of the optimizer;
     * when set, the multiplier is clip_norm / (norm + 1e-6) if norm >
     * clip_norm, else 1 (computed in double, torch's clip_grad_norm_). */
    const double *clip_sq;
    double clip_norm;
    /* Adam's bias corrections, computed by rn_optim_update_args in double
     * from the double hyperparameters as torch does: lr / (1 - beta1^step)
     * and sqrt(1 - beta2^step). */
    float step_size, bc2_sqrt;
};

/* The update's arguments from double hyperparameters (optim.h's). */
struct rn_optim_update rn_optim_update_args(int kind, double lr, double beta1, double beta2,
                                            double eps, double weight_decay, double momentum,
                                            long step, float grad_scale);

struct rn_backend {
    const char *name;           /* "cpu" | "cuda" */
    enum rn_device device;
    /* Memory: alloc returns zeroed memory. */
    int (*alloc)(void **p, size_t bytes, struct rn_error *err);
    void (*release)(void *p);
    int (*upload)(void *dst, const void *src, size_t bytes, struct rn_error *err);
    int (*download)(void *dst, const void *src, size_t bytes, struct rn_error *err);
    int (*copy)(void *dst, const void *src, size_t bytes, struct rn_error *err);
    int (*zero)(void *p, size_t bytes, struct rn_error *err);
    int (*sync)(struct rn_error *err);
    /* Kernels of a layer type by name; NULL when the backend has none. */
    const struct rn_layer_kernels *(*layer)(const char *type);
    /* p, g, m, v: n floats each on the device (m, v zero before the first
     * update; v unused by SGD). */
    int (*optim_update)(const struct rn_optim_update *u, float *p, const float *g, float *m,
                        float *v, size_t n, struct rn_error *err);
    /* *acc += sum of x[i]^2 (for clipping by global norm); acc is in the
     * backend's memory (a device double on a device: nothing is read back). */
    int (*sum_squares)(const float *x, size_t n, double *acc, struct rn_error *err);
    /* A batch from a dataset that lives on the device: out[i] = images[idx[i]]
     * as float / 255, sample = bytes (= floats) per image; images, idx and
     * out are device pointers. */
    int (*gather_images)(const uint8_t *images, const int32_t *idx, int n, size_t sample,
                         float *out, struct rn_error *err);
    /* Softmax cross-entropy of logits (n, k) against targets (bytes < k), on
     * device memory: *loss_sum += the batch's summed loss, *correct += its
     * argmax hits (first maximum), confusion (NULL: none; k x k int32,
     * [target][argmax]) += 1 per sample; dlogits (NULL: none) += weight *
     * d(mean CE)/d logits. Nothing is read back: the caller downloads the
     * sums when it needs them (once per evaluated split). */
    int (*cross_entropy)(const float *logits, const uint8_t *targets, int n, int k, float weight,
                         float *dlogits, double *loss_sum, int32_t *correct, int32_t *confusion,
                         struct rn_error *err);
    /* The coloured dataset made on the device (data.h: rn_colour_image):
     * out image j (3, h, w) and colours[j] from grey source src[j] (of
     * grey, (., h, w)) whose digit is labels[src[j]], with generator
     * (cfg->seed, stream, src[j]). grey, labels, src, out and colours are
     * the backend's memory; cfg is host memory. NULL: colouring is done on
     * the host and uploaded. */
    int (*colourise)(const struct rn_data_config *cfg, int stream, const uint8_t *grey,
                     const uint8_t *labels, const int32_t *src, int n, int h, int w,
                     uint8_t *out, uint8_t *colours, struct rn_error *err);
    /* Training augmentation (augment.h) of x (n, c, h, w), device floats in
     * place, with the n per-sample draws rn_augment_draw made on the host
     * (draws: device memory). NULL: the batch is augmented on the host. */
    int (*augment)(const struct rn_augment *a, const struct rn_augment_draw *draws, float *x,
                   int n, int c, int h, int w, struct rn_error *err);
    /* The saliency loss's per-sample arithmetic (runner/saliency.c, steps
     * 1-3 of its header), on the backend's memory; every pointer below is
     * the backend's (targets: n bytes < k, checked by the caller). Any of
     * the three NULL: saliency.c runs the CPU table's on host copies.
     *
     * Logits step: probs (n, k) = softmax(z) as rn_cross_entropy computes
     * it; *ce += the batch's mean CE (the caller zeroes it); dz (n, k):
     * with ce_weight != 0 (fused) dz += (float)(ce_weight * (p - onehot) /
     * n) into the caller's zeroed dz, else dz = probs - onehot (written). */
    int (*saliency_logits)(const float *z, const uint8_t *targets, int n, int k, float ce_weight,
                           float *probs, float *dz, double *ce, struct rn_error *err);
    /* Direction step on x, dx (n, C, HW): when rescale != 1, first dx =
     * (float)(dx / rescale) in place (the fused case's 1 / c). Then per
     * sample i, with cfg's norm, reduction and background mask (min over
     * channels of x < threshold): r[i] = the sample's unweighted term r_i
     * and tx_i = vscale * dr_i/d dx_i (floats), sums over HW in double.
     * r: n doubles; *r_sum += r[0] + r[1] + ... in index order. cfg is host
     * memory (struct rn_saliency, saliency.h). */
    int (*saliency_direction)(const struct rn_saliency *cfg, const float *x, float *dx, int n,
                              int C, int HW, double rescale, double vscale, float *tx, double *r,
                              double *r_sum, struct rn_error *err);
    /* Tangent-logits step: per sample, tdz = (float)(c * p * (tz - p.tz))
     * with the dot product p.tz summed in double; probs, tz, tdz (n, k). */
    int (*saliency_tangent_logits)(const float *probs, const float *tz, int n, int k, double c,
                                   float *tdz, struct rn_error *err);
};

/* The CUDA backend, or NULL when this binary was built without it. */
const struct rn_backend *rn_backend_cuda(void);
/* 0 when a CUDA device can be used now; else -1 and err says why ("built
 * without the CUDA backend", "no CUDA device: ...", "CUDA driver ..."). On
 * success, desc (may be NULL) gets e.g. "NVIDIA H200 (139 GiB), cuDNN 91900". */
int rn_cuda_probe(char *desc, size_t len, struct rn_error *err);
/* Only deterministic cuDNN algorithms from now on (spec `deterministic`). */
void rn_cuda_set_deterministic(int on);
/* The backend of a device: the CPU backend, rn_backend_cuda(), or the test
 * backend; NULL when there is none. */
const struct rn_backend *rn_backend_of(enum rn_device d);
/* Installs (or with NULL removes) the backend of RN_DEVICE_TEST. */
void rn_backend_set_test(const struct rn_backend *be);

/* Allocates a zeroed (n,c,h,w) tensor on device d. */
int rn_tensor_init_on(struct rn_tensor *t, enum rn_device d, int n, int c, int h, int w,
                      struct rn_error *err);
/* Copies numel(src) floats between tensors of any devices (shapes must hold
 * as many floats). */
int rn_tensor_copy(struct rn_tensor *dst, const struct rn_tensor *src, struct rn_error *err);

#endif
