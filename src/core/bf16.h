// bf16 numbers (1 sign, 8 exponent and 7 fraction bits: the top half of an fp32) and the packing of
// fp32 matrices into zero-padded bf16 blocks, the operands of the bf16 products (core/gemm_bf16.h).
#ifndef PROMOE_BF16_H
#define PROMOE_BF16_H

#include <stdint.h>

// x rounded to the nearest bf16 (ties to even; NaN stays NaN), as the products round operands.
uint16_t bf16_from_float(float x);
float float_from_bf16(uint16_t h);

// Rows [row0, row1) of op(X) into dst [.., ld_dst] as bf16, columns [cols, ld_dst) zero. X is
// row-major with row stride ld; op(X) = X^T when trans (op(X) [rows, cols] reads X [cols, rows]).
void bf16_pack_rows(uint16_t *dst, int ld_dst, const float *x, int ld, int trans, int row0, int row1, int cols);

#endif
