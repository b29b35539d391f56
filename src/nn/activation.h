// Element-wise activations: GELU (tanh approximation, as DiT's MLP) and SiLU.
#ifndef PROMOE_ACTIVATION_H
#define PROMOE_ACTIVATION_H

#include <stddef.h>

#include "core/real.h"

// out [n] = gelu_tanh(in [n]); out may equal in
void gelu_forward(real *out, const real *in, size_t n);
// d_in [n] = d_out * gelu'(in) (overwritten)
void gelu_backward(real *d_in, const real *d_out, const real *in, size_t n);
// The MLP's fused forms: the linear's bias is added here instead of by a copy before the product.
// out [rows, cols] = gelu_tanh(in + bias) (bias [cols], or NULL); out may equal in
void gelu_bias_forward(real *out, const real *in, const real *bias, size_t rows, size_t cols);
// The backward's recomputation in one pass: post = gelu_tanh(in + bias), deriv = gelu'(in + bias)
void gelu_bias_recompute(real *post, real *deriv, const real *in, const real *bias, size_t rows,
                         size_t cols);
// d [n] *= deriv [n]: dLoss/dGELU-output to dLoss/dGELU-input with a recomputed derivative
void gelu_apply_deriv(real *d, const real *deriv, size_t n);
// out [n] = in * sigmoid(in)
void silu_forward(real *out, const real *in, size_t n);
// d_in [n] = d_out * silu'(in) (overwritten)
void silu_backward(real *d_in, const real *d_out, const real *in, size_t n);

#endif
