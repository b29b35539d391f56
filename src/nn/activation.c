// GELU-tanh: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))); SiLU: x sigmoid(x).
// Derivatives as in ROUTERS.md 1.7.
#include "nn/activation.h"

#include <math.h>

#define GELU_SQRT_2_OVER_PI 0.7978845608028654
#define GELU_CUBIC 0.044715

void gelu_forward(real *out, const real *in, size_t n)
{
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        real x = in[i];
        real a = (real)GELU_SQRT_2_OVER_PI * (x + (real)GELU_CUBIC * x * x * x);
        out[i] = (real)0.5 * x * (1 + r_tanh(a));
    }
}

void gelu_backward(real *d_in, const real *d_out, const real *in, size_t n)
{
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        real x = in[i];
        real a = (real)GELU_SQRT_2_OVER_PI * (x + (real)GELU_CUBIC * x * x * x);
        real th = r_tanh(a);
        real da = (real)GELU_SQRT_2_OVER_PI * (1 + 3 * (real)GELU_CUBIC * x * x);
        d_in[i] = d_out[i] * ((real)0.5 * (1 + th) + (real)0.5 * x * (1 - th * th) * da);
    }
}

void silu_forward(real *out, const real *in, size_t n)
{
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) out[i] = in[i] / (1 + r_exp(-in[i]));
}

void silu_backward(real *d_in, const real *d_out, const real *in, size_t n)
{
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        real s = 1 / (1 + r_exp(-in[i]));
        d_in[i] = d_out[i] * s * (1 + in[i] * (1 - s));
    }
}
