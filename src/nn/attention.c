// Scaled dot-product attention over [B, H] blocks; each block's products go to BLIS
// single-threaded while OpenMP spreads the blocks over cores.
#include "nn/attention.h"

#include <omp.h>

#include "core/blas.h"
#include "nn/fastmath.h"

// The row reductions are vectorised (omp simd): their order is fixed by the compiled code, the same
// on every thread, so results stay independent of the thread count.
static void softmax_rows(real *m, int rows, int cols)
{
    for (int r = 0; r < rows; r++) {
        real *row = m + (size_t)r * cols, max = row[0], sum = 0;
        SIMD_REDUCTION(max : max)
        for (int c = 1; c < cols; c++) max = row[c] > max ? row[c] : max;
        SIMD_REDUCTION(+ : sum)
        for (int c = 0; c < cols; c++) {
            row[c] = exp_fast(row[c] - max);
            sum += row[c];
        }
        real inv = 1 / sum;
#pragma omp simd
        for (int c = 0; c < cols; c++) row[c] *= inv;
    }
}

// Adds head h's q, k and v biases to the T rows of one block (row stride ld).
static void add_head_bias(real *q, const real *bias, int T, int D, int hd, int ld)
{
    for (int t = 0; t < T; t++)
        for (int part = 0; part < 3; part++) {
            real *row = q + (size_t)t * ld + part * D;
            const real *b = bias + part * D;
#pragma omp simd
            for (int c = 0; c < hd; c++) row[c] += b[c];
        }
}

void attention_forward(enum matmul_precision precision, real *out, real *probs, real *qkv, const real *bias, int B, int T, int D, int H)
{
    int hd = D / H, ld = 3 * D;
    real scale = 1 / r_sqrt((real)hd);
#pragma omp parallel for schedule(static)
    for (int bh = 0; bh < B * H; bh++) {
        int b = bh / H, h = bh % H;
        real *q = qkv + (size_t)b * T * ld + h * hd, *k = q + D, *v = q + 2 * D;
        if (bias) add_head_bias(q, bias + h * hd, T, D, hd, ld);
        real *p = probs + (size_t)bh * T * T;
        gemm_serial_as(precision, NO_TRANS, TRANS, T, T, hd, scale, q, ld, k, ld, 0, p, T);
        softmax_rows(p, T, T);
        gemm_serial_as(precision, NO_TRANS, NO_TRANS, T, hd, T, 1, p, T, v, ld, 0, out + (size_t)b * T * D + h * hd, D);
    }
}

// d_scores = P * (dP - rowsum(P * dP)) * scale, in place over dP.
static void softmax_backward_rows(real *dp, const real *p, int T, real scale)
{
    for (int r = 0; r < T; r++) {
        real *drow = dp + (size_t)r * T, dot = 0;
        const real *prow = p + (size_t)r * T;
        SIMD_REDUCTION(+ : dot)
        for (int c = 0; c < T; c++) dot += prow[c] * drow[c];
#pragma omp simd
        for (int c = 0; c < T; c++) drow[c] = prow[c] * (drow[c] - dot) * scale;
    }
}

void attention_backward(enum matmul_precision precision, real *d_qkv, const real *d_out, const real *probs, const real *qkv,
                        real *scratch, int B, int T, int D, int H)
{
    int hd = D / H, ld = 3 * D;
    real scale = 1 / r_sqrt((real)hd);
#pragma omp parallel for schedule(static)
    for (int bh = 0; bh < B * H; bh++) {
        int b = bh / H, h = bh % H;
        size_t qkv_off = (size_t)b * T * ld + h * hd;
        const real *q = qkv + qkv_off, *k = q + D, *v = q + 2 * D;
        real *dq = d_qkv + qkv_off, *dk = dq + D, *dv = dq + 2 * D;
        const real *p = probs + (size_t)bh * T * T;
        const real *dout = d_out + (size_t)b * T * D + h * hd;
        real *dp = scratch + (size_t)omp_get_thread_num() * T * T;
        gemm_serial_as(precision, TRANS, NO_TRANS, T, hd, T, 1, p, T, dout, D, 0, dv, ld);
        gemm_serial_as(precision, NO_TRANS, TRANS, T, T, hd, 1, dout, D, v, ld, 0, dp, T);
        softmax_backward_rows(dp, p, T, scale);
        gemm_serial_as(precision, NO_TRANS, NO_TRANS, T, hd, T, 1, dp, T, k, ld, 0, dq, ld);
        gemm_serial_as(precision, TRANS, NO_TRANS, T, hd, T, 1, dp, T, q, ld, 0, dk, ld);
    }
}
