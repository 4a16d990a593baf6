/* backend.h - where tensors live: a device's memory and its tables of kernels.
 *
 * A backend is one constant table (DESIGN.md "Tensors and backends"): the
 * memory interface of its device (allocate, free, copy host <-> device and
 * device <-> device, zero, wait), which tensor.c and graph.c build on, and
 * pointers to the kernel tables it offers for the domains above it. Each
 * of those tables is declared by the module that owns the domain (the
 * layer passes in layer.h, the optimizer update in optim.h, cross-entropy
 * in loss.h, gathering and colouring data in data.h, augmentation in
 * augment.h, the saliency loss's arithmetic in saliency.h); this header
 * only names them, so it includes nothing above it.
 *
 * The CPU backend (kernels/cpu/backend_cpu.c) is host memory and the
 * reference kernels; the CUDA backend (kernels/cuda/, built when nvcc and
 * cuDNN are found) gives every layer type and every domain table a second
 * implementation on device memory. Layer files contain no CUDA code: the
 * graph executor asks the graph's backend for the kernels of each node.
 *
 * A graph is always built and initialised on the host (so both backends
 * start from bit-identical parameters); rn_graph_to_device then moves it.
 * Device pointers are plain `float *` in struct rn_tensor with device set;
 * host code must never dereference them (rn_tensor_copy copies out).
 */
#ifndef RN_BACKEND_H
#define RN_BACKEND_H

#include <stddef.h>

#include "error.h"

enum rn_device {
    RN_DEVICE_CPU = 0,
    RN_DEVICE_CUDA = 1,
    /* a stand-in device on host memory that the tests install
     * (rn_backend_set_test) to check the executor's device plumbing */
    RN_DEVICE_TEST = 2,
};

/* The kernel tables, each declared where its domain lives. */
struct rn_layer_kernels;    /* layer.h: one layer type's passes */
struct rn_optim_kernels;    /* optim.h: optimizer update, sum of squares */
struct rn_loss_kernels;     /* loss.h: softmax cross-entropy */
struct rn_data_kernels;     /* data.h: batch gathering, colouring */
struct rn_augment_kernels;  /* augment.h: training augmentation */
struct rn_saliency_kernels; /* saliency.h: the saliency loss's per-sample steps */

struct rn_backend {
    const char *name;           /* "cpu" | "cuda" */
    enum rn_device device;

    /* ---- memory: bytes on this device; the other side of upload and
     * download is host memory. alloc returns zeroed memory; release(NULL)
     * is harmless. upload may return before the copy is done (src may be
     * reused at once); download returns when dst holds the bytes; copy,
     * zero and the kernels are ordered with them; sync waits for all. */
    int (*alloc)(void **p, size_t bytes, struct rn_error *err);
    void (*release)(void *p);
    int (*upload)(void *dst, const void *src, size_t bytes, struct rn_error *err);
    int (*download)(void *dst, const void *src, size_t bytes, struct rn_error *err);
    int (*copy)(void *dst, const void *src, size_t bytes, struct rn_error *err);
    int (*zero)(void *p, size_t bytes, struct rn_error *err);
    int (*sync)(struct rn_error *err);

    /* ---- kernels. A table's entries are all set; a table NULL means the
     * backend has none for that domain (what its user then does is said
     * where the table is declared). */
    /* Kernels of a layer type by name; NULL when the backend has none (the
     * CPU's: the layer types' own functions, which the executor calls). */
    const struct rn_layer_kernels *(*layer)(const char *type);
    const struct rn_optim_kernels *optim; /* set on every backend */
    const struct rn_loss_kernels *loss;
    const struct rn_data_kernels *data;
    const struct rn_augment_kernels *augment;
    const struct rn_saliency_kernels *saliency;
};

/* The CPU backend (kernels/cpu/backend_cpu.c). */
const struct rn_backend *rn_backend_cpu(void);
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

#endif
