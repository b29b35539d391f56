// Fully connected layer with PyTorch's weight layout W[out, in]: y = x W^T + b. Every product in
// the given precision (train.precision: bf16 operands with fp32 accumulation, or fp32); the
// bias and its gradient stay fp32.
#ifndef PROMOE_LINEAR_H
#define PROMOE_LINEAR_H

#include "core/blas.h"
#include "core/real.h"

// out [n, n_out] = in [n, n_in] W[n_out, n_in]^T + bias [n_out] (bias may be NULL)
void linear_forward(enum matmul_precision precision, real *out, const real *in, const real *weight, const real *bias, int n, int n_in,
                    int n_out);
// Accumulates: d_weight [n_out, n_in] += d_out^T in; d_bias [n_out] += column sums of d_out;
// d_in [n, n_in] = d_out W, or += when accumulate_d_in (skipped when d_in is NULL).
void linear_backward(enum matmul_precision precision, real *d_in, real *d_weight, real *d_bias, const real *d_out, const real *in,
                     const real *weight, int n, int n_in, int n_out, int accumulate_d_in);
// The same on one thread, for calls from inside an OpenMP parallel region (one expert per thread).
void linear_forward_serial(enum matmul_precision precision, real *out, const real *in, const real *weight, const real *bias, int n,
                           int n_in, int n_out);
void linear_backward_serial(enum matmul_precision precision, real *d_in, real *d_weight, real *d_bias, const real *d_out, const real *in,
                            const real *weight, int n, int n_in, int n_out, int accumulate_d_in);
// Accumulates column sums: d_bias [cols] += sum over rows of m [rows, cols], in row order.
void column_sums_add(real *d_bias, const real *m, int rows, int cols);

#endif
