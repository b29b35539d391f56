// Linear layers as one BLIS product each; the bias gradient is summed in a fixed row order per
// column so results do not depend on the thread count.
#include "nn/linear.h"

#include <string.h>

#include "core/blas.h"

void linear_forward(enum matmul_precision precision, real *out, const real *in, const real *weight, const real *bias, int n, int n_in,
                    int n_out)
{
    if (bias) {
#pragma omp parallel for schedule(static)
        for (int i = 0; i < n; i++) memcpy(out + (size_t)i * n_out, bias, sizeof(real) * n_out);
    }
    gemm_as(precision, NO_TRANS, TRANS, n, n_out, n_in, 1, in, n_in, weight, n_in, bias ? 1 : 0, out, n_out);
}

enum { COLUMN_CHUNK = 64 };

void column_sums_add(real *d_bias, const real *m, int rows, int cols)
{
    int chunks = (cols + COLUMN_CHUNK - 1) / COLUMN_CHUNK;
#pragma omp parallel for schedule(static)
    for (int chunk = 0; chunk < chunks; chunk++) {
        int begin = chunk * COLUMN_CHUNK;
        int end = begin + COLUMN_CHUNK < cols ? begin + COLUMN_CHUNK : cols;
        real sums[COLUMN_CHUNK] = {0};
        for (int r = 0; r < rows; r++) {
            const real *row = m + (size_t)r * cols;
            for (int c = begin; c < end; c++) sums[c - begin] += row[c];
        }
        for (int c = begin; c < end; c++) d_bias[c] += sums[c - begin];
    }
}

void linear_backward(enum matmul_precision precision, real *d_in, real *d_weight, real *d_bias, const real *d_out, const real *in,
                     const real *weight, int n, int n_in, int n_out, int accumulate_d_in)
{
    gemm_as(precision, TRANS, NO_TRANS, n_out, n_in, n, 1, d_out, n_out, in, n_in, 1, d_weight, n_in);
    if (d_bias) column_sums_add(d_bias, d_out, n, n_out);
    if (d_in) gemm_as(precision, NO_TRANS, NO_TRANS, n, n_in, n_out, 1, d_out, n_out, weight, n_in,
                     accumulate_d_in ? 1 : 0, d_in, n_in);
}

void linear_forward_serial(enum matmul_precision precision, real *out, const real *in, const real *weight, const real *bias, int n,
                           int n_in, int n_out)
{
    if (bias)
        for (int i = 0; i < n; i++) memcpy(out + (size_t)i * n_out, bias, sizeof(real) * n_out);
    gemm_serial_as(precision, NO_TRANS, TRANS, n, n_out, n_in, 1, in, n_in, weight, n_in, bias ? 1 : 0, out, n_out);
}

void linear_backward_serial(enum matmul_precision precision, real *d_in, real *d_weight, real *d_bias, const real *d_out, const real *in,
                            const real *weight, int n, int n_in, int n_out, int accumulate_d_in)
{
    gemm_serial_as(precision, TRANS, NO_TRANS, n_out, n_in, n, 1, d_out, n_out, in, n_in, 1, d_weight, n_in);
    if (d_bias) column_sums_add(d_bias, d_out, n, n_out);   // nested region: runs on this thread
    if (d_in)
        gemm_serial_as(precision, NO_TRANS, NO_TRANS, n, n_in, n_out, 1, d_out, n_out, weight, n_in,
                    accumulate_d_in ? 1 : 0, d_in, n_in);
}
