/* backend_cuda.c - the CUDA backend table (backend.h) with its domain
 * tables (optim.h, loss.h, data.h, augment.h, saliency.h: a leaf, it may
 * include them), and the process-wide device context (cuda_common.h):
 * device 0, one non-blocking stream, the cuDNN and cuBLAS handles bound to
 * it, a grow-only workspace.
 *
 * The context is created on first use. When it cannot be (no driver, no
 * device, a driver older than the runtime), the reason is kept and every
 * later call returns the same one line until rn_cuda_shutdown. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "augment_kernels.h"
#include "backend_kernels.h"
#include "cuda_common.h"
#include "data_kernels.h"
#include "runner/augment.h"
#include "runner/data.h"
#include "runner/loss.h"
#include "runner/optim.h"
#include "runner/saliency.h"
#include "saliency_kernels.h"

static struct rn_cuda g_cu;
static int g_state; /* 0 not tried, 1 ready, -1 failed (g_fail says why) */
static char g_fail[RN_ERROR_MAX];
static int g_deterministic;
static double *g_scratch; /* RN_CUDA_SUMSQ_SCRATCH doubles for sum_squares */

/* Frees what a (possibly half-made) context holds. */
static void context_destroy(struct rn_cuda *cu)
{
    if (cu->stream)
        cudaStreamSynchronize(cu->stream);
    if (g_scratch)
        cudaFree(g_scratch);
    g_scratch = NULL;
    if (cu->workspace)
        cudaFree(cu->workspace);
    if (cu->cublas)
        cublasDestroy(cu->cublas);
    if (cu->cudnn)
        cudnnDestroy(cu->cudnn);
    if (cu->stream)
        cudaStreamDestroy(cu->stream);
    (void)cudaGetLastError();
    memset(cu, 0, sizeof *cu);
}

/* Why cudaGetDeviceCount failed, in words a user can act on. */
static int explain_no_device(cudaError_t e, struct rn_error *err)
{
    int driver = 0, runtime = 0;
    (void)cudaDriverGetVersion(&driver);
    (void)cudaRuntimeGetVersion(&runtime);
    (void)cudaGetLastError();
    if (driver == 0)
        return rn_errorf(err,
                         "no CUDA device: no NVIDIA driver is loaded (libcuda.so.1 not found); "
                         "cudaGetDeviceCount: %s (%s)",
                         cudaGetErrorString(e), cudaGetErrorName(e));
    if (e == cudaErrorInsufficientDriver || e == cudaErrorSystemDriverMismatch ||
        e == cudaErrorCompatNotSupportedOnDevice)
        return rn_errorf(err,
                         "CUDA driver (supports CUDA %d.%d) cannot run this runner's CUDA runtime "
                         "%d.%d: cudaGetDeviceCount: %s (%s); update the NVIDIA driver",
                         driver / 1000, driver % 1000 / 10, runtime / 1000, runtime % 1000 / 10,
                         cudaGetErrorString(e), cudaGetErrorName(e));
    return rn_errorf(err, "no CUDA device: cudaGetDeviceCount: %s (%s)", cudaGetErrorString(e),
                     cudaGetErrorName(e));
}

static int context_create(struct rn_cuda *cu, struct rn_error *err)
{
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess)
        return explain_no_device(e, err);
    if (count == 0)
        return rn_errorf(err, "no CUDA device: cudaGetDeviceCount found none");
    cu->device = 0;
    cu->deterministic = g_deterministic;
    RN_CUDA_CHECK(err, cudaSetDevice(cu->device));
    RN_CUDA_CHECK(err, cudaStreamCreateWithFlags(&cu->stream, cudaStreamNonBlocking));
    RN_CUDNN_CHECK(err, cudnnCreate(&cu->cudnn));
    RN_CUDNN_CHECK(err, cudnnSetStream(cu->cudnn, cu->stream));
    RN_CUBLAS_CHECK(err, cublasCreate(&cu->cublas));
    RN_CUBLAS_CHECK(err, cublasSetStream(cu->cublas, cu->stream));
    /* FP32 throughout (no TF32), so results match the CPU to ~1e-5. */
    RN_CUBLAS_CHECK(err, cublasSetMathMode(cu->cublas, CUBLAS_DEFAULT_MATH));
    RN_CUDA_CHECK(err, cudaMalloc((void **)&g_scratch, RN_CUDA_SUMSQ_SCRATCH * sizeof(double)));
    return 0;
}

struct rn_cuda *rn_cuda_get(struct rn_error *err)
{
    if (g_state == 1)
        return &g_cu;
    if (g_state == -1) {
        rn_errorf(err, "%s", g_fail);
        return NULL;
    }
    struct rn_error e = {{0}};
    if (context_create(&g_cu, &e)) {
        context_destroy(&g_cu);
        snprintf(g_fail, sizeof g_fail, "%s", e.msg);
        g_state = -1;
        rn_errorf(err, "%s", g_fail);
        return NULL;
    }
    g_state = 1;
    return &g_cu;
}

void rn_cuda_shutdown(void)
{
    if (g_state == 1)
        context_destroy(&g_cu);
    g_state = 0;
    g_fail[0] = '\0';
}

void rn_cuda_set_deterministic(int on)
{
    g_deterministic = on != 0;
    if (g_state == 1)
        g_cu.deterministic = g_deterministic;
}

int rn_cuda_workspace(struct rn_cuda *cu, size_t bytes, struct rn_error *err)
{
    if (bytes <= cu->workspace_bytes)
        return 0;
    RN_CUDA_CHECK(err, cudaSetDevice(cu->device));
    /* Work queued on the stream may still use the old buffer. */
    RN_CUDA_CHECK(err, cudaStreamSynchronize(cu->stream));
    if (cu->workspace)
        RN_CUDA_CHECK(err, cudaFree(cu->workspace));
    cu->workspace = NULL;
    cu->workspace_bytes = 0;
    cudaError_t e = cudaMalloc(&cu->workspace, bytes);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        cu->workspace = NULL;
        return rn_errorf(err, "cudaMalloc(%zu bytes) for the cuDNN workspace: %s (%s)", bytes,
                         cudaGetErrorString(e), cudaGetErrorName(e));
    }
    cu->workspace_bytes = bytes;
    return 0;
}

int rn_cuda_probe(char *desc, size_t len, struct rn_error *err)
{
    if (desc && len)
        desc[0] = '\0';
    struct rn_cuda *cu = rn_cuda_get(err);
    if (!cu)
        return -1;
    struct cudaDeviceProp prop;
    int runtime = 0, driver = 0;
    RN_CUDA_CHECK(err, cudaGetDeviceProperties(&prop, cu->device));
    RN_CUDA_CHECK(err, cudaRuntimeGetVersion(&runtime));
    RN_CUDA_CHECK(err, cudaDriverGetVersion(&driver));
    cudaError_t e = (cudaError_t)rn_cuda_kernels_check();
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        return rn_errorf(err,
                         "no CUDA device: %s is sm_%d%d and this binary has no code for it "
                         "(rebuild with CMAKE_CUDA_ARCHITECTURES=%d%d): %s (%s)",
                         prop.name, prop.major, prop.minor, prop.major, prop.minor,
                         cudaGetErrorString(e), cudaGetErrorName(e));
    }
    if (desc && len) {
        size_t cudnn = cudnnGetVersion();
        char built[48] = "";
        if (cudnn != CUDNN_VERSION)
            snprintf(built, sizeof built, " (built with %d)", CUDNN_VERSION);
        snprintf(desc, len, "%s (%.0f GiB, sm_%d%d), CUDA runtime %d, driver %d, cuDNN %zu%s",
                 prop.name, (double)prop.totalGlobalMem / (1024.0 * 1024.0 * 1024.0), prop.major,
                 prop.minor, runtime, driver, cudnn, built);
    }
    return 0;
}

/* ---- the backend table ---------------------------------------------------- */

static int cuda_alloc(void **p, size_t bytes, struct rn_error *err)
{
    *p = NULL;
    struct rn_cuda *cu = rn_cuda_get(err);
    if (!cu)
        return -1;
    /* cudaMalloc(0) gives no pointer; every tensor gets a real one. */
    size_t rounded = bytes ? bytes : 256;
    cudaError_t e = cudaMalloc(p, rounded);
    if (e != cudaSuccess) {
        (void)cudaGetLastError(); /* not sticky: keep it from blaming the next call */
        *p = NULL;
        size_t free_b = 0, total_b = 0;
        if (e == cudaErrorMemoryAllocation && cudaMemGetInfo(&free_b, &total_b) == cudaSuccess)
            return rn_errorf(err, "cudaMalloc(%zu bytes): %s (%s): %zu MiB of the GPU's %zu MiB "
                                  "are free; lower train.batch / train.eval_batch or use "
                                  "--device cpu",
                             bytes, cudaGetErrorString(e), cudaGetErrorName(e), free_b >> 20,
                             total_b >> 20);
        return rn_errorf(err, "cudaMalloc(%zu bytes): %s (%s)", bytes, cudaGetErrorString(e),
                         cudaGetErrorName(e));
    }
    e = cudaMemsetAsync(*p, 0, rounded, cu->stream);
    if (e == cudaSuccess)
        e = cudaStreamSynchronize(cu->stream);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        cudaFree(*p);
        *p = NULL;
        return rn_errorf(err, "cudaMemsetAsync(%zu bytes): %s (%s)", rounded, cudaGetErrorString(e),
                         cudaGetErrorName(e));
    }
    return 0;
}

static void cuda_release(void *p)
{
    if (p) {
        cudaFree(p);
        (void)cudaGetLastError();
    }
}

static int cuda_upload(void *dst, const void *src, size_t bytes, struct rn_error *err)
{
    struct rn_cuda *cu = rn_cuda_get(err);
    if (!cu)
        return -1;
    /* From pageable memory the call returns once src was staged, so the
     * caller may reuse src at once. */
    if (bytes)
        RN_CUDA_CHECK(err, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, cu->stream));
    return 0;
}

static int cuda_download(void *dst, const void *src, size_t bytes, struct rn_error *err)
{
    struct rn_cuda *cu = rn_cuda_get(err);
    if (!cu)
        return -1;
    if (bytes)
        RN_CUDA_CHECK(err, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, cu->stream));
    RN_CUDA_CHECK(err, cudaStreamSynchronize(cu->stream));
    return 0;
}

static int cuda_copy(void *dst, const void *src, size_t bytes, struct rn_error *err)
{
    struct rn_cuda *cu = rn_cuda_get(err);
    if (!cu)
        return -1;
    if (bytes && dst != src)
        RN_CUDA_CHECK(err, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, cu->stream));
    return 0;
}

static int cuda_zero(void *p, size_t bytes, struct rn_error *err)
{
    struct rn_cuda *cu = rn_cuda_get(err);
    if (!cu)
        return -1;
    if (bytes)
        RN_CUDA_CHECK(err, cudaMemsetAsync(p, 0, bytes, cu->stream));
    return 0;
}

static int cuda_sync(struct rn_error *err)
{
    struct rn_cuda *cu = rn_cuda_get(err);
    if (!cu)
        return -1;
    RN_CUDA_CHECK(err, cudaStreamSynchronize(cu->stream));
    return 0;
}

static int cuda_optim_update(const struct rn_optim_update *u, float *p, const float *g, float *m,
                             float *v, size_t n, struct rn_error *err)
{
    struct rn_cuda *cu = rn_cuda_get(err);
    if (!cu)
        return -1;
    struct rn_cuda_optim_args a = {
        .lr = u->lr,
        .beta1 = u->beta1,
        .beta2 = u->beta2,
        .eps = u->eps,
        .weight_decay = u->weight_decay,
        .momentum = u->momentum,
        .grad_scale = u->grad_scale,
        .first = u->step == 1,
        .clip_sq = u->clip_sq,
        .clip_norm = u->clip_norm,
    };
    switch (u->kind) {
    case RN_OPTIM_ADAM:
    case RN_OPTIM_ADAMW: {
        /* the bias corrections come computed in double (rn_optim_update_args) */
        a.kind = u->kind == RN_OPTIM_ADAM ? RN_CUDA_OPTIM_ADAM : RN_CUDA_OPTIM_ADAMW;
        a.step_size = u->step_size;
        a.bc2_sqrt = u->bc2_sqrt;
        break;
    }
    case RN_OPTIM_SGD:
        a.kind = RN_CUDA_OPTIM_SGD;
        break;
    default:
        return rn_errorf(err, "unknown optimizer kind %d", u->kind);
    }
    cudaError_t e = (cudaError_t)rn_cuda_optim_update(&a, p, g, m, v, n, cu->stream);
    if (e != cudaSuccess)
        return rn_errorf(err, "kernel optim_update (%zu floats): %s (%s)", n, cudaGetErrorString(e),
                         cudaGetErrorName(e));
    return 0;
}

static int cuda_sum_squares(const float *x, size_t n, double *out, struct rn_error *err)
{
    struct rn_cuda *cu = rn_cuda_get(err);
    if (!cu)
        return -1;
    /* out is device memory: the sum is added there, nothing is read back */
    cudaError_t e = (cudaError_t)rn_cuda_sum_squares_acc(x, n, g_scratch, out, cu->stream);
    if (e != cudaSuccess)
        return rn_errorf(err, "kernel sum_squares (%zu floats): %s (%s)", n, cudaGetErrorString(e),
                         cudaGetErrorName(e));
    return 0;
}

static const struct rn_optim_kernels cuda_optim = {
    .update = cuda_optim_update,
    .sum_squares = cuda_sum_squares,
};

static int cuda_gather_images(const uint8_t *images, const int32_t *idx, int n, size_t sample,
                              float *out, struct rn_error *err)
{
    struct rn_cuda *cu = rn_cuda_get(err);
    if (!cu)
        return -1;
    if (sample > (size_t)INT_MAX)
        return rn_errorf(err, "gather_images: %zu bytes per sample is too many", sample);
    /* 1.0f / 255.0f: the same float rn_run_load_batch multiplies by. */
    cudaError_t e = (cudaError_t)rn_cuda_gather_images(images, idx, n, (int)sample, 1.0f / 255.0f,
                                                       out, cu->stream);
    if (e != cudaSuccess)
        return rn_errorf(err, "kernel gather_images (%d x %zu bytes): %s (%s)", n, sample,
                         cudaGetErrorString(e), cudaGetErrorName(e));
    return 0;
}

static int cuda_cross_entropy(const float *logits, const uint8_t *targets, int n, int k,
                              float weight, float *dlogits, double *loss_sum, int32_t *correct,
                              int32_t *confusion, struct rn_error *err)
{
    struct rn_cuda *cu = rn_cuda_get(err);
    if (!cu)
        return -1;
    cudaError_t e = (cudaError_t)rn_cuda_cross_entropy(logits, targets, n, k, weight, dlogits,
                                                       loss_sum, (int *)correct, NULL, cu->stream);
    if (e == cudaSuccess && confusion)
        e = (cudaError_t)rn_cuda_confusion(logits, targets, n, k, (int *)confusion, cu->stream);
    if (e != cudaSuccess)
        return rn_errorf(err, "kernel cross_entropy (%d x %d logits): %s (%s)", n, k,
                         cudaGetErrorString(e), cudaGetErrorName(e));
    return 0;
}

static const struct rn_loss_kernels cuda_loss = {
    .cross_entropy = cuda_cross_entropy,
};

static int cuda_colourise(const struct rn_data_config *cfg, int stream, const uint8_t *grey,
                          const uint8_t *labels, const int32_t *src, int n, int h, int w,
                          uint8_t *out, uint8_t *colours, struct rn_error *err)
{
    if (cfg->colouring != RN_COLOURING_BACKGROUND && cfg->colouring != RN_COLOURING_STROKE)
        return rn_errorf(err, "colourise: the data is not coloured");
    if (n < 0 || h <= 0 || w <= 0 || (int64_t)h * w > ((int64_t)1 << 26))
        return rn_errorf(err, "colourise: bad shape (%d, %d, %d)", n, h, w);
    if (n == 0)
        return 0;
    struct rn_cuda *cu = rn_cuda_get(err);
    if (!cu)
        return -1;
    struct rn_cuda_colour_args a = {
        .seed = cfg->seed,
        .stream = stream,
        .easy = stream == RN_STREAM_DATA_TRAIN,
        .bias = cfg->bias,
        .test_rule = (int)cfg->test_rule,
        .stroke = cfg->colouring == RN_COLOURING_STROKE,
        .noise_lo = cfg->noise_lo,
        .noise_hi = cfg->noise_hi,
        .threshold = cfg->threshold,
    };
    memcpy(a.rgb, cfg->palette.rgb, sizeof a.rgb);
    cudaError_t e = (cudaError_t)rn_cuda_colourise(&a, grey, labels, src, n, h, w, out, colours,
                                                   cu->stream);
    if (e != cudaSuccess)
        return rn_errorf(err, "kernel colourise (%d images of %d x %d): %s (%s)", n, h, w,
                         cudaGetErrorString(e), cudaGetErrorName(e));
    return 0;
}

static const struct rn_data_kernels cuda_data = {
    .gather_images = cuda_gather_images,
    .colourise = cuda_colourise,
};

static int cuda_augment(const struct rn_augment *a, const struct rn_augment_draw *draws, float *x,
                        int n, int c, int h, int w, struct rn_error *err)
{
    if (!a)
        return rn_errorf(err, "augment: no configuration");
    if (!a->channel_permute && !a->colour_jitter)
        return 0;
    /* rn_augment_apply's shape checks; the draws were checked when they
     * were made (rn_augment_draws) */
    if (n < 0 || h <= 0 || w <= 0)
        return rn_errorf(err, "augment: bad batch shape (%d, %d, %d, %d)", n, c, h, w);
    if (c != 3)
        return rn_errorf(err, "augment: channel_permute and colour_jitter need RGB input, "
                              "got %d channel(s)", c);
    if ((int64_t)h * w > ((int64_t)1 << 26))
        return rn_errorf(err, "augment: image of %d x %d is too large", h, w);
    if (n == 0)
        return 0;
    if (!x || !draws)
        return rn_errorf(err, "augment: no %s", !x ? "input" : "draws");
    struct rn_cuda *cu = rn_cuda_get(err);
    if (!cu)
        return -1;
    cudaError_t e = (cudaError_t)rn_cuda_augment(a, draws, x, n, h * w, cu->stream);
    if (e != cudaSuccess)
        return rn_errorf(err, "kernel augment (%d x 3 x %d x %d): %s (%s)", n, h, w,
                         cudaGetErrorString(e), cudaGetErrorName(e));
    return 0;
}

static const struct rn_augment_kernels cuda_augment_table = {
    .apply = cuda_augment,
};

static int cuda_saliency_logits(const float *z, const uint8_t *targets, int n, int k,
                                float ce_weight, float *probs, float *dz, double *ce,
                                struct rn_error *err)
{
    struct rn_cuda *cu = rn_cuda_get(err);
    if (!cu)
        return -1;
    cudaError_t e = (cudaError_t)rn_cuda_saliency_logits(z, targets, n, k, ce_weight, probs, dz,
                                                         ce, cu->stream);
    if (e != cudaSuccess)
        return rn_errorf(err, "kernel saliency_logits (%d x %d logits): %s (%s)", n, k,
                         cudaGetErrorString(e), cudaGetErrorName(e));
    return 0;
}

static int cuda_saliency_direction(const struct rn_saliency *cfg, const float *x, float *dx, int n,
                                   int C, int HW, double rescale, double vscale, float *tx,
                                   double *r, double *r_sum, struct rn_error *err)
{
    struct rn_cuda *cu = rn_cuda_get(err);
    if (!cu)
        return -1;
    cudaError_t e = (cudaError_t)rn_cuda_saliency_direction(
        cfg->norm == RN_SALIENCY_L2, cfg->reduce == RN_SALIENCY_BACKGROUND_SHARE, cfg->threshold,
        x, dx, n, C, HW, rescale, vscale, tx, r, r_sum, cu->stream);
    if (e != cudaSuccess)
        return rn_errorf(err, "kernel saliency_direction (%d x %d x %d): %s (%s)", n, C, HW,
                         cudaGetErrorString(e), cudaGetErrorName(e));
    return 0;
}

static int cuda_saliency_tangent_logits(const float *probs, const float *tz, int n, int k,
                                        double c, float *tdz, struct rn_error *err)
{
    struct rn_cuda *cu = rn_cuda_get(err);
    if (!cu)
        return -1;
    cudaError_t e =
        (cudaError_t)rn_cuda_saliency_tangent_logits(probs, tz, n, k, c, tdz, cu->stream);
    if (e != cudaSuccess)
        return rn_errorf(err, "kernel saliency_tangent_logits (%d x %d logits): %s (%s)", n, k,
                         cudaGetErrorString(e), cudaGetErrorName(e));
    return 0;
}

static const struct rn_saliency_kernels cuda_saliency = {
    .logits = cuda_saliency_logits,
    .direction = cuda_saliency_direction,
    .tangent_logits = cuda_saliency_tangent_logits,
};

static const struct rn_backend cuda_backend = {
    .name = "cuda",
    .device = RN_DEVICE_CUDA,
    .alloc = cuda_alloc,
    .release = cuda_release,
    .upload = cuda_upload,
    .download = cuda_download,
    .copy = cuda_copy,
    .zero = cuda_zero,
    .sync = cuda_sync,
    .layer = rn_cuda_layer_kernels,
    .optim = &cuda_optim,
    .loss = &cuda_loss,
    .data = &cuda_data,
    .augment = &cuda_augment_table,
    .saliency = &cuda_saliency,
};

const struct rn_backend *rn_backend_cuda(void)
{
    return &cuda_backend;
}
