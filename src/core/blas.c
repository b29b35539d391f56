// BLIS typed API with explicit row and column strides; one runtime object pins the serial calls
// to a single thread so that products inside OpenMP loops never nest thread teams.
#include "core/blas.h"

#include "core/gemm_bf16.h"

#include <blis.h>
#include <stdio.h>
#include <stdlib.h>

#ifdef PROMOE_F64
#define BLIS_GEMM_EX bli_dgemm_ex
#else
#define BLIS_GEMM_EX bli_sgemm_ex
#endif

static void gemm_with(rntm_t *rntm, int trans_a, int trans_b, int m, int n, int k, real alpha,
                      const real *a, int lda, const real *b, int ldb, real beta, real *c, int ldc)
{
    real alpha_v = alpha, beta_v = beta;
    BLIS_GEMM_EX(trans_a ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE,
                 trans_b ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE, m, n, k, &alpha_v, (real *)a, lda, 1,
                 (real *)b, ldb, 1, &beta_v, c, ldc, 1, NULL, rntm);
}

void gemm(int trans_a, int trans_b, int m, int n, int k, real alpha, const real *a, int lda,
          const real *b, int ldb, real beta, real *c, int ldc)
{
    gemm_with(NULL, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void gemm_serial(int trans_a, int trans_b, int m, int n, int k, real alpha, const real *a, int lda,
                 const real *b, int ldb, real beta, real *c, int ldc)
{
    rntm_t rntm = BLIS_RNTM_INITIALIZER;
    bli_rntm_set_num_threads(1, &rntm);
    gemm_with(&rntm, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void blas_set_threads(int n) { bli_thread_set_num_threads(n); }

#ifdef PROMOE_F64
void gemm_as(enum matmul_precision precision, int trans_a, int trans_b, int m, int n, int k, real alpha,
             const real *a, int lda, const real *b, int ldb, real beta, real *c, int ldc)
{
    (void)precision;
    gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void gemm_serial_as(enum matmul_precision precision, int trans_a, int trans_b, int m, int n, int k,
                    real alpha, const real *a, int lda, const real *b, int ldb, real beta, real *c, int ldc)
{
    (void)precision;
    gemm_serial(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

int blas_reserve_precision(enum matmul_precision precision, int threads)
{
    (void)precision;
    (void)threads;
    return 0;
}
#else
void gemm_as(enum matmul_precision precision, int trans_a, int trans_b, int m, int n, int k, real alpha,
             const real *a, int lda, const real *b, int ldb, real beta, real *c, int ldc)
{
    if (precision == MATMUL_BF16)
        gemm_bf16(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    else
        gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void gemm_serial_as(enum matmul_precision precision, int trans_a, int trans_b, int m, int n, int k,
                    real alpha, const real *a, int lda, const real *b, int ldb, real beta, real *c, int ldc)
{
    if (precision == MATMUL_BF16)
        gemm_bf16_serial(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    else
        gemm_serial(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

int blas_reserve_precision(enum matmul_precision precision, int threads)
{
    return precision == MATMUL_BF16 ? gemm_bf16_reserve(threads) : 0;
}
#endif

// BLIS 0.9 picks its kernels from the CPU model and falls back to the slow generic reference
// kernels on processors newer than itself (Zen 5 measured at 20x slower). Unless the user chose
// with BLIS_ARCH_TYPE, pick by instruction set before BLIS initialises: the SKX kernels where
// AVX-512 is present, the Haswell kernels where AVX2 and FMA are.
__attribute__((constructor)) static void blas_choose_kernels(void)
{
    if (getenv("BLIS_ARCH_TYPE")) return;
    __builtin_cpu_init();
    arch_t arch = BLIS_ARCH_GENERIC;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"))
        arch = BLIS_ARCH_SKX;
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        arch = BLIS_ARCH_HASWELL;
    if (arch == BLIS_ARCH_GENERIC) return;
    char value[16];
    snprintf(value, sizeof value, "%d", (int)arch);
    setenv("BLIS_ARCH_TYPE", value, 0);
}
