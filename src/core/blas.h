// Every matrix product goes through here, to BLIS. Row-major operands with leading dimensions;
// trans_a / trans_b say whether op(A) = A^T. C[m,n] = alpha op(A)[m,k] op(B)[k,n] + beta C.
#ifndef PROMOE_BLAS_H
#define PROMOE_BLAS_H

#include "core/real.h"

enum { NO_TRANS = 0, TRANS = 1 };

// Uses the threads set by blas_set_threads (call outside OpenMP parallel regions).
void gemm(int trans_a, int trans_b, int m, int n, int k, real alpha, const real *a, int lda,
          const real *b, int ldb, real beta, real *c, int ldc);
// Single-threaded, for calls from inside an OpenMP parallel region.
void gemm_serial(int trans_a, int trans_b, int m, int n, int k, real alpha, const real *a, int lda,
                 const real *b, int ldb, real beta, real *c, int ldc);
void blas_set_threads(int n);

#endif
