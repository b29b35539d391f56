// Every matrix product goes through here, to BLIS. Row-major operands with leading dimensions;
// trans_a / trans_b say whether op(A) = A^T. C[m,n] = alpha op(A)[m,k] op(B)[k,n] + beta C.
#ifndef PROMOE_BLAS_H
#define PROMOE_BLAS_H

#include "core/real.h"

enum { NO_TRANS = 0, TRANS = 1 };

// train.precision: MATMUL_BF16 rounds both operands to bf16 and accumulates in fp32
// (core/gemm_bf16.h); the double build of the gradient checks ignores it.
enum matmul_precision { MATMUL_FP32, MATMUL_BF16 };

// Uses the threads set by blas_set_threads (call outside OpenMP parallel regions).
void gemm(int trans_a, int trans_b, int m, int n, int k, real alpha, const real *a, int lda,
          const real *b, int ldb, real beta, real *c, int ldc);
// Single-threaded, for calls from inside an OpenMP parallel region.
void gemm_serial(int trans_a, int trans_b, int m, int n, int k, real alpha, const real *a, int lda,
                 const real *b, int ldb, real beta, real *c, int ldc);
void blas_set_threads(int n);

// gemm and gemm_serial in the given precision: fp32 on BLIS, bf16 on core/gemm_bf16 (reserved with
// blas_reserve_precision first).
void gemm_as(enum matmul_precision precision, int trans_a, int trans_b, int m, int n, int k, real alpha,
             const real *a, int lda, const real *b, int ldb, real beta, real *c, int ldc);
void gemm_serial_as(enum matmul_precision precision, int trans_a, int trans_b, int m, int n, int k,
                    real alpha, const real *a, int lda, const real *b, int ldb, real beta, real *c, int ldc);
// Prepares the products of a precision for up to `threads` threads (at set-up; nothing for fp32).
// Returns -1 with a message where the processor cannot run it (bf16 without AVX512-BF16).
int blas_reserve_precision(enum matmul_precision precision, int threads);

#endif
