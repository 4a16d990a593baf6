/* kernels/cpu/gemm.h - thin wrappers over OpenBLAS sgemm, row-major.
 *
 * Threading: the runner parallelises with OpenMP and keeps OpenBLAS itself
 * single-threaded (rn_gemm_cpu_setup). Two thread pools spinning on two
 * cores fight each other, and measured on the target machine (2-core EPYC,
 * OpenBLAS 0.3.21) OpenBLAS's own threading reaches only ~80-100 GFLOP/s on
 * the conv shapes (it splits the 32..128-row dimension) while one
 * single-threaded sgemm per image on each OpenMP thread reaches ~180.
 * So: rn_gemm_cpu runs in the calling thread and is safe inside an OpenMP
 * parallel region; rn_gemm_cpu_par splits a large product over the OpenMP
 * threads itself.
 */
#ifndef RN_KERNELS_CPU_GEMM_H
#define RN_KERNELS_CPU_GEMM_H

#include <cblas.h>
#include <omp.h>

/* Makes OpenBLAS run every call in the calling thread. Idempotent and cheap;
 * call it from single-threaded setup code (layer build) before the first
 * rn_gemm_cpu. */
static inline void rn_gemm_cpu_setup(void)
{
    if (openblas_get_num_threads() != 1)
        openblas_set_num_threads(1);
}

/* C(m,n) = alpha * op(A) op(B) + beta * C, row-major; op(A) is (m,k) and
 * op(B) is (k,n); ta/tb nonzero transpose. Runs in the calling thread. */
static inline void rn_gemm_cpu(int ta, int tb, int m, int n, int k, float alpha, const float *a,
                               int lda, const float *b, int ldb, float beta, float *c, int ldc)
{
    if (m <= 0 || n <= 0)
        return;
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n,
                k, alpha, a, lda, b, ldb, beta, c, ldc);
}

/* Same product, split over the OpenMP threads along the larger of m and n
 * when it is big enough to pay for a parallel region. Call it outside a
 * parallel region. */
static inline void rn_gemm_cpu_par(int ta, int tb, int m, int n, int k, float alpha, const float *a,
                                   int lda, const float *b, int ldb, float beta, float *c, int ldc)
{
    int nt = omp_get_max_threads();
    double flops = 2.0 * m * n * k;
    if (nt <= 1 || flops < 4e6 || (m < 2 * 16 && n < 2 * 16)) {
        rn_gemm_cpu(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    int split_m = m >= n;
    int len = split_m ? m : n;
#pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num(), T = omp_get_num_threads();
        /* Chunk starts on multiples of 16 so each piece keeps whole SIMD tiles. */
        int chunk = ((len + T - 1) / T + 15) / 16 * 16;
        int lo = t * chunk, hi = lo + chunk < len ? lo + chunk : len;
        if (lo < hi) {
            if (split_m) {
                const float *ap = ta ? a + lo : a + (size_t)lo * lda;
                rn_gemm_cpu(ta, tb, hi - lo, n, k, alpha, ap, lda, b, ldb, beta,
                            c + (size_t)lo * ldc, ldc);
            } else {
                const float *bp = tb ? b + (size_t)lo * ldb : b + lo;
                rn_gemm_cpu(ta, tb, m, hi - lo, k, alpha, a, lda, bp, ldb, beta, c + lo, ldc);
            }
        }
    }
}

#endif
