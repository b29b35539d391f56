// Matrix products with bf16 operands and fp32 accumulation, the products of mixed-precision
// training, on oneDNN's matmul (its AVX512-BF16 kernels): fp32 operands in, fp32 result out, each
// operand rounded to bf16 (nearest even) as it is packed for the product. Same contract as gemm in
// core/blas.h: C[m,n] = alpha op(A)[m,k] op(B)[k,n] + beta C, row-major, op(X) = X^T when trans_x.
// Every element of C is summed over k in one order fixed by the shape, whatever the thread count and
// whether the product runs on all threads or serially inside a parallel region: results are
// bit-identical for any thread count (core/gemm_bf16.c says why; tests/test_bf16.c checks it).
#ifndef PROMOE_GEMM_BF16_H
#define PROMOE_GEMM_BF16_H

#include "core/bf16.h"

// 1 when this processor has AVX512-BF16 (and AVX-512F), 0 otherwise.
int gemm_bf16_supported(void);

// Starts oneDNN for calls from up to `threads` OpenMP threads (at model set-up, outside parallel
// regions). The first product of a shape creates its oneDNN primitive (the 1024 most recently used
// are kept) and grows the threads' buffers for packed operands (kept until the process ends): later
// products of that shape allocate nothing in promoe.
// Returns -1 with a message when the processor lacks AVX512-BF16 or oneDNN would not use it.
int gemm_bf16_reserve(int threads);

// Uses the OpenMP threads (at most those reserved); inside a parallel region, the calling thread
// alone (as gemm_bf16_serial).
void gemm_bf16(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
               const float *b, int ldb, float beta, float *c, int ldc);
// Single-threaded, on the calling thread's buffers: for calls inside an OpenMP parallel region.
void gemm_bf16_serial(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
                      int lda, const float *b, int ldb, float beta, float *c, int ldc);

#endif
