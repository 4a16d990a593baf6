/* cuda_common.h - what every file of the CUDA backend shares: one device
 * context (stream, cuDNN and cuBLAS handles, a grow-only workspace) and the
 * checks that turn a failed CUDA, cuDNN or cuBLAS call into one error line
 * naming the call ("cudnnConvolutionForward: CUDNN_STATUS_BAD_PARAM").
 *
 * Everything runs on one stream, in order; host code reads results only
 * through rn_backend download (which synchronises).
 */
#ifndef RN_CUDA_COMMON_H
#define RN_CUDA_COMMON_H

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include "runner/backend.h"
#include "runner/error.h"

struct rn_cuda {
    int device;
    cudaStream_t stream;
    cudnnHandle_t cudnn;
    cublasHandle_t cublas;
    void *workspace;        /* shared scratch for cuDNN algorithms, grow-only */
    size_t workspace_bytes;
    int deterministic;      /* 1: only deterministic cuDNN algorithms */
};

/* The process-wide context, created on first use; NULL (err set) when no
 * device can be used. */
struct rn_cuda *rn_cuda_get(struct rn_error *err);
/* Frees the context (process exit; safe when never created). */
void rn_cuda_shutdown(void);
/* Selects deterministic cuDNN algorithms for everything built after it. */
void rn_cuda_set_deterministic(int on);
/* Grows the shared workspace to at least bytes; -1 on failure. */
int rn_cuda_workspace(struct rn_cuda *cu, size_t bytes, struct rn_error *err);

/* The layer kernels of the CUDA backend (kernels/cuda/layers/registry.c). */
const struct rn_layer_kernels *rn_cuda_layer_kernels(const char *type);

#define RN_CUDA_CHECK(err, call)                                                                  \
    do {                                                                                          \
        cudaError_t rn_e_ = (call);                                                               \
        if (rn_e_ != cudaSuccess) {                                                               \
            (void)cudaGetLastError(); /* a non-sticky error must not be blamed on the next launch */ \
            return rn_errorf((err), "%s: %s (%s)", #call, cudaGetErrorString(rn_e_),             \
                             cudaGetErrorName(rn_e_));                                            \
        }                                                                                         \
    } while (0)

#define RN_CUDNN_CHECK(err, call)                                                                 \
    do {                                                                                          \
        cudnnStatus_t rn_s_ = (call);                                                             \
        if (rn_s_ != CUDNN_STATUS_SUCCESS)                                                        \
            return rn_errorf((err), "%s: %s", #call, cudnnGetErrorString(rn_s_));                \
    } while (0)

#define RN_CUBLAS_CHECK(err, call)                                                                \
    do {                                                                                          \
        cublasStatus_t rn_b_ = (call);                                                            \
        if (rn_b_ != CUBLAS_STATUS_SUCCESS)                                                       \
            return rn_errorf((err), "%s: %s", #call, cublasGetStatusString(rn_b_));              \
    } while (0)

/* After a kernel launch: reports launch errors (bad configuration). */
#define RN_CUDA_LAUNCHED(err, what)                                                               \
    do {                                                                                          \
        cudaError_t rn_e_ = cudaGetLastError();                                                   \
        if (rn_e_ != cudaSuccess)                                                                 \
            return rn_errorf((err), "kernel %s: %s", (what), cudaGetErrorString(rn_e_));         \
    } while (0)

#endif
