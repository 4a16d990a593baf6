/* backend_cpu.c - the CPU backend (backend.h): host memory, and the
 * reference kernels of every domain table, each the host arithmetic of the
 * module that owns it (tests/test_cuda.c checks the CUDA twins against
 * these). The layer passes are the layer types' own functions (layers/),
 * which the executor calls directly.
 *
 * A leaf: it includes the domain headers to fill their tables; nothing
 * includes it (backend.c reaches it through rn_backend_cpu). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "runner/augment.h"
#include "runner/backend.h"
#include "runner/data.h"
#include "runner/loss.h"
#include "runner/optim.h"
#include "runner/saliency.h"

/* ---- memory ------------------------------------------------------------ */

/* Every buffer is 64-byte aligned and zeroed. Large ones (RN_LAZY_BYTES and
 * up: activations, gradients) are anonymous mappings, whose pages the kernel
 * zeroes on first touch: a buffer sized for the largest batch costs resident
 * memory only for the samples a pass writes (a graph built for evaluation
 * batches of 256 that trains at 64 pays for 64 in training). Small ones come
 * from malloc, zeroed here. A 64-byte header in front of the data says which. */
enum { CPU_HEADER = 64, CPU_HEAP = 1, CPU_MAP = 2 };
/* Under AddressSanitizer every buffer stays on the heap, where ASan checks
 * bounds and LeakSanitizer finds leaks (ASan maps large blocks lazily
 * itself). */
#if defined(__SANITIZE_ADDRESS__)
#define RN_CPU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RN_CPU_ASAN 1
#endif
#endif
#ifdef RN_CPU_ASAN
#define RN_LAZY_BYTES SIZE_MAX
#else
#define RN_LAZY_BYTES ((size_t)1 << 20)
#endif

struct cpu_header {
    char *map;  /* CPU_MAP: the mapping (the data may start past its beginning) */
    size_t len; /* CPU_MAP: the mapping's length */
    int kind;
};

/* Transparent huge pages for the large mappings: activations and gradients of
 * tens of MiB are walked by every pass, and 2 MiB pages spare the TLB misses
 * of 4 KiB ones (the machine's THP mode is usually "madvise": nothing gets
 * them unless asked). The data then starts on a 2 MiB boundary. RN_HUGEPAGES=0
 * turns it off, to measure what it brings. */
#define RN_HUGE ((size_t)2 << 20)
static int huge_enabled(void)
{
    static int on = -1;
    if (on < 0) {
        const char *e = getenv("RN_HUGEPAGES");
        on = !(e && strcmp(e, "0") == 0);
    }
    return on;
}

/* An anonymous mapping whose data (after CPU_HEADER bytes) holds `rounded`
 * bytes; NULL when the kernel refuses. */
static char *cpu_map(size_t rounded, struct cpu_header *h)
{
    const int huge = rounded >= RN_HUGE && huge_enabled();
    const size_t len = (rounded + CPU_HEADER + (huge ? RN_HUGE : 0) + 4095) & ~(size_t)4095;
    char *map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED)
        return NULL;
    char *data = map + CPU_HEADER;
#ifdef MADV_HUGEPAGE
    if (huge) {
        data = (char *)(((uintptr_t)map + CPU_HEADER + RN_HUGE - 1) & ~(uintptr_t)(RN_HUGE - 1));
        madvise(data, rounded, MADV_HUGEPAGE); /* advice: a refusal leaves 4 KiB pages */
    }
#endif
    *h = (struct cpu_header){map, len, CPU_MAP};
    return data - CPU_HEADER;
}

static int cpu_alloc(void **p, size_t bytes, struct rn_error *err)
{
    size_t rounded = (bytes + 63) & ~(size_t)63;
    if (rounded < 64)
        rounded = 64;
    if (rounded > SIZE_MAX - 2 * (size_t)CPU_HEADER - 4096 - RN_HUGE)
        return rn_errorf(err, "out of memory allocating %zu bytes", bytes);
    char *base;
    struct cpu_header h = {NULL, 0, CPU_HEAP};
    if (rounded >= RN_LAZY_BYTES) {
        base = cpu_map(rounded, &h);
    } else {
        base = aligned_alloc(64, rounded + CPU_HEADER);
        if (base)
            memset(base + CPU_HEADER, 0, rounded);
    }
    if (!base)
        return rn_errorf(err, "out of memory allocating %zu bytes", bytes);
    memcpy(base, &h, sizeof h);
    *p = base + CPU_HEADER;
    return 0;
}

static void cpu_release(void *p)
{
    if (!p)
        return;
    char *base = (char *)p - CPU_HEADER;
    struct cpu_header h;
    memcpy(&h, base, sizeof h);
    if (h.kind == CPU_MAP)
        munmap(h.map, h.len);
    else
        free(base);
}

static int cpu_copy(void *dst, const void *src, size_t bytes, struct rn_error *err)
{
    (void)err;
    if (bytes)
        memmove(dst, src, bytes);
    return 0;
}

static int cpu_zero(void *p, size_t bytes, struct rn_error *err)
{
    (void)err;
    if (bytes)
        memset(p, 0, bytes);
    return 0;
}

static int cpu_sync(struct rn_error *err)
{
    (void)err;
    return 0;
}

static const struct rn_layer_kernels *cpu_layer(const char *type)
{
    /* The CPU kernels are the layer types' own functions; the executor
     * calls them directly. */
    (void)type;
    return NULL;
}

/* ---- optim.h ----------------------------------------------------------- */

static int cpu_optim_update(const struct rn_optim_update *u, float *p, const float *g, float *m,
                            float *v, size_t n, struct rn_error *err)
{
    (void)err;
    float s = u->grad_scale;
    if (u->clip_sq) {
        const double norm = sqrt(*u->clip_sq);
        s = norm > u->clip_norm ? (float)(u->clip_norm / (norm + 1e-6)) : 1.0f;
    }
    const float lr = u->lr, wd = u->weight_decay;
    switch (u->kind) {
    case RN_OPTIM_ADAM:
    case RN_OPTIM_ADAMW: {
        const float step_size = u->step_size, bc2_sqrt = u->bc2_sqrt;
        const int adamw = u->kind == RN_OPTIM_ADAMW;
#pragma omp parallel for if (n > 65536) schedule(static)
        for (size_t i = 0; i < n; i++) {
            float gi = g[i] * s;
            if (adamw)
                p[i] *= 1.0f - lr * wd;
            else if (wd != 0.0f)
                gi += wd * p[i];
            m[i] = u->beta1 * m[i] + (1.0f - u->beta1) * gi;
            v[i] = u->beta2 * v[i] + (1.0f - u->beta2) * gi * gi;
            p[i] -= step_size * m[i] / (sqrtf(v[i]) / bc2_sqrt + u->eps);
        }
        return 0;
    }
    case RN_OPTIM_SGD:
        for (size_t i = 0; i < n; i++) {
            float gi = g[i] * s + wd * p[i];
            if (u->momentum != 0.0f) {
                m[i] = u->step == 1 ? gi : u->momentum * m[i] + gi;
                gi = m[i];
            }
            p[i] -= lr * gi;
        }
        return 0;
    }
    return rn_errorf(err, "unknown optimizer kind %d", u->kind);
}

static int cpu_sum_squares(const float *x, size_t n, double *out, struct rn_error *err)
{
    (void)err;
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (double)x[i] * x[i];
    *out += s;
    return 0;
}

static const struct rn_optim_kernels cpu_optim = {
    .update = cpu_optim_update,
    .sum_squares = cpu_sum_squares,
};

/* ---- loss.h ------------------------------------------------------------ */

static int cpu_cross_entropy(const float *logits, const uint8_t *targets, int n, int k,
                             float weight, float *dlogits, double *loss_sum, int32_t *correct,
                             int32_t *confusion, struct rn_error *err)
{
    (void)err;
    /* rn_cross_entropy's own arithmetic, so a device evaluation through
     * this table gives the host evaluation's bits */
    struct rn_tensor z = rn_tensor_view((float *)logits, n, k, 1, 1);
    struct rn_tensor dz = rn_tensor_view(dlogits, n, k, 1, 1);
    int right = 0;
    double mean = rn_cross_entropy(&z, targets, weight, dlogits ? &dz : NULL, &right, NULL);
    *loss_sum += mean * n;
    *correct += right;
    for (int i = 0; confusion && i < n; i++) {
        const float *zi = logits + (size_t)i * k;
        int arg = 0;
        for (int j = 1; j < k; j++)
            if (zi[j] > zi[arg])
                arg = j;
        confusion[targets[i] * k + arg]++;
    }
    return 0;
}

static const struct rn_loss_kernels cpu_loss = {
    .cross_entropy = cpu_cross_entropy,
};

/* ---- data.h ------------------------------------------------------------ */

static int cpu_gather_images(const uint8_t *images, const int32_t *idx, int n, size_t sample,
                             float *out, struct rn_error *err)
{
    (void)err;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        const uint8_t *src = images + (size_t)idx[i] * sample;
        float *dst = out + (size_t)i * sample;
        for (size_t k = 0; k < sample; k++)
            dst[k] = src[k] * (1.0f / 255.0f);
    }
    return 0;
}

static int cpu_colourise(const struct rn_data_config *cfg, int stream, const uint8_t *grey,
                         const uint8_t *labels, const int32_t *src, int n, int h, int w,
                         uint8_t *out, uint8_t *colours, struct rn_error *err)
{
    (void)err;
    const size_t hw = (size_t)h * w;
#pragma omp parallel for schedule(static)
    for (int j = 0; j < n; j++)
        rn_colour_image(cfg, stream, grey + (size_t)src[j] * hw, h, w, labels[src[j]], src[j],
                        out + (size_t)j * 3 * hw, &colours[j]);
    return 0;
}

static const struct rn_data_kernels cpu_data = {
    .gather_images = cpu_gather_images,
    .colourise = cpu_colourise,
};

/* ---- augment.h --------------------------------------------------------- */

/* The CPU "device" is the host: the draws and x are host memory. */
static const struct rn_augment_kernels cpu_augment = {
    .apply = rn_augment_apply,
};

/* ---- saliency.h: the loss's per-sample arithmetic (saliency.c's steps) -- */

/* Step 1: rn_cross_entropy's softmax and mean, as saliency.c always did it. */
static int cpu_saliency_logits(const float *z, const uint8_t *targets, int n, int k,
                               float ce_weight, float *probs, float *dz, double *ce,
                               struct rn_error *err)
{
    (void)err;
    struct rn_tensor zt = rn_tensor_view((float *)z, n, k, 1, 1);
    struct rn_tensor dzt = rn_tensor_view(dz, n, k, 1, 1);
    if (ce_weight != 0) {
        *ce += rn_cross_entropy(&zt, targets, ce_weight, &dzt, NULL, probs);
    } else {
        *ce += rn_cross_entropy(&zt, targets, 0, NULL, NULL, probs);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < k; j++)
                dz[(size_t)i * k + j] = probs[(size_t)i * k + j] - (j == targets[i]);
    }
    return 0;
}

/* Step 2 for one sample: x and g are (C, HW), s is HW scratch. Returns the
 * sample's unweighted term r_i and writes v = scale * dr_i/dg into v. */
static double saliency_sample_direction(const struct rn_saliency *cfg, const float *x,
                                        const float *g, int C, int HW, double scale, double *s,
                                        float *v)
{
    double mask_sum = 0, back = 0, total = 0;
    for (int p = 0; p < HW; p++) {
        double acc = 0;
        float mn = x[p];
        for (int c = 0; c < C; c++) {
            double gc = g[(size_t)c * HW + p];
            acc += cfg->norm == RN_SALIENCY_L1 ? fabs(gc) : gc * gc;
            if (x[(size_t)c * HW + p] < mn)
                mn = x[(size_t)c * HW + p];
        }
        s[p] = cfg->norm == RN_SALIENCY_L1 ? acc : sqrt(acc);
        int bg = mn < cfg->threshold;
        mask_sum += bg;
        back += bg ? s[p] : 0.0;
        total += s[p];
    }
    /* dr/ds(p) = a0 * mask(p) + a1 */
    double r = 0, a0 = 0, a1 = 0;
    if (cfg->reduce == RN_SALIENCY_MEAN_BACKGROUND) {
        if (mask_sum > 0) {
            r = back / mask_sum;
            a0 = 1.0 / mask_sum;
        }
    } else if (total > 0) {
        r = back / total;
        a0 = 1.0 / total;
        a1 = -r / total;
    }
    for (int p = 0; p < HW; p++) {
        float mn = x[p];
        for (int c = 1; c < C; c++)
            if (x[(size_t)c * HW + p] < mn)
                mn = x[(size_t)c * HW + p];
        double ds = scale * ((mn < cfg->threshold ? a0 : 0.0) + a1);
        for (int c = 0; c < C; c++) {
            float gc = g[(size_t)c * HW + p];
            double d;
            if (cfg->norm == RN_SALIENCY_L1) /* sign(0) = 0: the subgradient PyTorch uses */
                d = (gc > 0) - (gc < 0);
            else
                d = s[p] > 0 ? gc / s[p] : 0.0;
            v[(size_t)c * HW + p] = (float)(ds * d);
        }
    }
    return r;
}

static int cpu_saliency_direction(const struct rn_saliency *cfg, const float *x, float *dx, int n,
                                  int C, int HW, double rescale, double vscale, float *tx,
                                  double *r, double *r_sum, struct rn_error *err)
{
    double *s = rn_malloc((size_t)(HW > 0 ? HW : 1) * sizeof(double), err);
    if (!s)
        return -1;
    const size_t nx = (size_t)n * C * HW;
    if (rescale != 1.0)
        for (size_t j = 0; j < nx; j++)
            dx[j] = (float)(dx[j] / rescale);
    double sum = 0;
    for (int i = 0; i < n; i++) {
        const size_t off = (size_t)i * C * HW;
        r[i] = saliency_sample_direction(cfg, x + off, dx + off, C, HW, vscale, s, tx + off);
        sum += r[i];
    }
    *r_sum += sum;
    free(s);
    return 0;
}

static int cpu_saliency_tangent_logits(const float *probs, const float *tz, int n, int k, double c,
                                       float *tdz, struct rn_error *err)
{
    (void)err;
    for (int i = 0; i < n; i++) {
        const float *p = probs + (size_t)i * k, *t = tz + (size_t)i * k;
        double dot = 0;
        for (int j = 0; j < k; j++)
            dot += (double)p[j] * t[j];
        for (int j = 0; j < k; j++)
            tdz[(size_t)i * k + j] = (float)(c * p[j] * (t[j] - dot));
    }
    return 0;
}

static const struct rn_saliency_kernels cpu_saliency = {
    .logits = cpu_saliency_logits,
    .direction = cpu_saliency_direction,
    .tangent_logits = cpu_saliency_tangent_logits,
};

/* ---- the table ---------------------------------------------------------- */

static const struct rn_backend cpu_backend = {
    .name = "cpu",
    .device = RN_DEVICE_CPU,
    .alloc = cpu_alloc,
    .release = cpu_release,
    .upload = cpu_copy,
    .download = cpu_copy,
    .copy = cpu_copy,
    .zero = cpu_zero,
    .sync = cpu_sync,
    .layer = cpu_layer,
    .optim = &cpu_optim,
    .loss = &cpu_loss,
    .data = &cpu_data,
    .augment = &cpu_augment,
    .saliency = &cpu_saliency,
};

const struct rn_backend *rn_backend_cpu(void)
{
    return &cpu_backend;
}
