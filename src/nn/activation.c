// GELU-tanh: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))); SiLU: x sigmoid(x).
// Derivatives as in ROUTERS.md 1.7.
#include "nn/activation.h"

#include "nn/fastmath.h"

#define GELU_SQRT_2_OVER_PI 0.7978845608028654
#define GELU_CUBIC 0.044715

// 0.5 x (1 + tanh(a)) = x sigmoid(2a): one exp, no tanh.
static inline real gelu_gate(real x, real *da)
{
    real a = (real)GELU_SQRT_2_OVER_PI * (x + (real)GELU_CUBIC * x * x * x);
    if (da) *da = (real)GELU_SQRT_2_OVER_PI * (1 + 3 * (real)GELU_CUBIC * x * x);
    return 1 / (1 + exp_fast(-2 * a));
}

void gelu_forward(real *out, const real *in, size_t n)
{
#pragma omp parallel for simd schedule(simd : static)
    for (size_t i = 0; i < n; i++) out[i] = in[i] * gelu_gate(in[i], NULL);
}

// d/dx [x s(2a)] = s + x * 2 s (1 - s) a'
void gelu_backward(real *d_in, const real *d_out, const real *in, size_t n)
{
#pragma omp parallel for simd schedule(simd : static)
    for (size_t i = 0; i < n; i++) {
        real da, s = gelu_gate(in[i], &da);
        d_in[i] = d_out[i] * (s + 2 * in[i] * s * (1 - s) * da);
    }
}

void gelu_bias_forward(real *out, const real *in, const real *bias, size_t rows, size_t cols)
{
    if (!bias) {
        gelu_forward(out, in, rows * cols);
        return;
    }
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < rows; r++) {
        const real *x = in + r * cols;
        real *y = out + r * cols;
#pragma omp simd
        for (size_t c = 0; c < cols; c++) {
            real u = x[c] + bias[c];
            y[c] = u * gelu_gate(u, NULL);
        }
    }
}

void gelu_bias_recompute(real *post, real *deriv, const real *in, const real *bias, size_t rows,
                         size_t cols)
{
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < rows; r++) {
        const real *x = in + r * cols;
        real *y = post + r * cols, *dy = deriv + r * cols;
#pragma omp simd
        for (size_t c = 0; c < cols; c++) {
            real da, u = bias ? x[c] + bias[c] : x[c], s = gelu_gate(u, &da);
            y[c] = u * s;
            dy[c] = s + 2 * u * s * (1 - s) * da;
        }
    }
}

void gelu_apply_deriv(real *d, const real *deriv, size_t n)
{
#pragma omp parallel for simd schedule(simd : static)
    for (size_t i = 0; i < n; i++) d[i] *= deriv[i];
}

void silu_forward(real *out, const real *in, size_t n)
{
#pragma omp parallel for simd schedule(simd : static)
    for (size_t i = 0; i < n; i++) out[i] = in[i] / (1 + exp_fast(-in[i]));
}

void silu_backward(real *d_in, const real *d_out, const real *in, size_t n)
{
#pragma omp parallel for simd schedule(simd : static)
    for (size_t i = 0; i < n; i++) {
        real s = 1 / (1 + exp_fast(-in[i]));
        d_in[i] = d_out[i] * s * (1 + in[i] * (1 - s));
    }
}
