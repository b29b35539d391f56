// LayerNorm (eps 1e-6, biased variance, no affine) fused with adaLN modulation, and the gated
// residual. Loops run over samples so each per-sample sum has one fixed order (determinism); row
// reductions are vectorised (omp simd), in an order fixed by the compiled code.
#include "nn/adaln.h"

#define LN_EPS 1e-6

static void ln_row(real *out, real *mean_out, real *rstd_out, const real *x, const real *shift,
                   const real *scale, int D)
{
    real mean = 0, var = 0;
    SIMD_REDUCTION(+ : mean)
    for (int d = 0; d < D; d++) mean += x[d];
    mean /= D;
    SIMD_REDUCTION(+ : var)
    for (int d = 0; d < D; d++) var += (x[d] - mean) * (x[d] - mean);
    var /= D;
    real rstd = 1 / r_sqrt(var + (real)LN_EPS);
#pragma omp simd
    for (int d = 0; d < D; d++) out[d] = (x[d] - mean) * rstd * (1 + scale[d]) + shift[d];
    *mean_out = mean;
    *rstd_out = rstd;
}

void ln_modulate_forward(real *out, real *mean, real *rstd, const real *x, const real *shift,
                         const real *scale, int ada_stride, int B, int T, int D)
{
#pragma omp parallel for schedule(static)
    for (int n = 0; n < B * T; n++) {
        int b = n / T;
        ln_row(out + (size_t)n * D, mean + n, rstd + n, x + (size_t)n * D,
               shift + (size_t)b * ada_stride, scale + (size_t)b * ada_stride, D);
    }
}

void ln_modulate_backward(real *d_x, real *d_shift, real *d_scale, const real *d_out,
                          const real *x, const real *mean, const real *rstd, const real *scale,
                          int ada_stride, int B, int T, int D)
{
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        real *dsh = d_shift + (size_t)b * ada_stride, *dsc = d_scale + (size_t)b * ada_stride;
        const real *sc = scale + (size_t)b * ada_stride;
        for (int t = 0; t < T; t++) {
            size_t n = (size_t)b * T + t;
            const real *xr = x + n * D, *dy = d_out + n * D;
            real *dx = d_x + n * D;
            real mu = mean[n], rs = rstd[n], mean_dxhat = 0, mean_dxhat_xhat = 0;
            SIMD_REDUCTION(+ : mean_dxhat, mean_dxhat_xhat)
            for (int d = 0; d < D; d++) {
                real xhat = (xr[d] - mu) * rs;
                real dxhat = dy[d] * (1 + sc[d]);
                dsh[d] += dy[d];
                dsc[d] += dy[d] * xhat;
                mean_dxhat += dxhat;
                mean_dxhat_xhat += dxhat * xhat;
            }
            mean_dxhat /= D;
            mean_dxhat_xhat /= D;
#pragma omp simd
            for (int d = 0; d < D; d++) {
                real xhat = (xr[d] - mu) * rs;
                real dxhat = dy[d] * (1 + sc[d]);
                dx[d] += (dxhat - mean_dxhat - xhat * mean_dxhat_xhat) * rs;
            }
        }
    }
}

void gated_residual_forward(real *out, const real *x, const real *gate, const real *f,
                            const real *bias, int ada_stride, int B, int T, int D)
{
#pragma omp parallel for schedule(static)
    for (int n = 0; n < B * T; n++) {
        const real *g = gate + (size_t)(n / T) * ada_stride;
        size_t row = (size_t)n * D;
        if (bias) {
#pragma omp simd
            for (int d = 0; d < D; d++) out[row + d] = x[row + d] + g[d] * (f[row + d] + bias[d]);
        } else {
#pragma omp simd
            for (int d = 0; d < D; d++) out[row + d] = x[row + d] + g[d] * f[row + d];
        }
    }
}

void gated_residual_backward(real *d_f, real *d_gate, const real *d_out, const real *gate,
                             const real *f, const real *bias, int ada_stride, int B, int T, int D)
{
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        const real *g = gate + (size_t)b * ada_stride;
        real *dg = d_gate + (size_t)b * ada_stride;
        for (int t = 0; t < T; t++) {
            size_t row = ((size_t)b * T + t) * D;
#pragma omp simd
            for (int d = 0; d < D; d++) {
                d_f[row + d] += d_out[row + d] * g[d];
                dg[d] += d_out[row + d] * (bias ? f[row + d] + bias[d] : f[row + d]);
            }
        }
    }
}
