// Matrix products with bf16 operands and fp32 accumulation (AVX512-BF16, vdpbf16ps), the products
// of mixed-precision training: fp32 operands in, fp32 result out, each operand rounded to bf16
// (nearest even) while it is packed. Same contract as gemm in core/blas.h:
// C[m,n] = alpha op(A)[m,k] op(B)[k,n] + beta C, row-major, op(X) = X^T when trans_x.
// Every element of C is summed over k in one fixed order (k blocks of GEMM_BF16_KC in turn, pairs of
// k within a block in turn), whatever the thread count and however rows and columns are split over
// threads: results are bit-identical for any thread count.
#ifndef PROMOE_GEMM_BF16_H
#define PROMOE_GEMM_BF16_H

#include <stdint.h>

// 1 when this processor has AVX512-BF16 (and AVX-512F), 0 otherwise.
int gemm_bf16_supported(void);

// Reserves the packing buffers for calls from up to `threads` OpenMP threads (at model set-up: the
// products themselves allocate nothing). Buffers only grow; they live until the process ends.
// Returns -1 with a message when the processor lacks AVX512-BF16 or memory runs out.
int gemm_bf16_reserve(int threads);

// Uses the OpenMP threads (at most those reserved); inside a parallel region, the calling thread
// alone (as gemm_bf16_serial).
void gemm_bf16(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
               const float *b, int ldb, float beta, float *c, int ldc);
// Single-threaded, on the calling thread's buffers: for calls inside an OpenMP parallel region.
void gemm_bf16_serial(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
                      int lda, const float *b, int ldb, float beta, float *c, int ldc);

// x rounded to the nearest bf16 (ties to even; NaN stays NaN), as the products round operands.
uint16_t bf16_from_float(float x);
float float_from_bf16(uint16_t h);

#endif
