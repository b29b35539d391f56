// Element-wise activations: GELU (tanh approximation, as DiT's MLP) and SiLU.
#ifndef PROMOE_ACTIVATION_H
#define PROMOE_ACTIVATION_H

#include <stddef.h>

#include "core/real.h"

// out [n] = gelu_tanh(in [n]); out may equal in
void gelu_forward(real *out, const real *in, size_t n);
// d_in [n] = d_out * gelu'(in) (overwritten)
void gelu_backward(real *d_in, const real *d_out, const real *in, size_t n);
// out [n] = in * sigmoid(in)
void silu_forward(real *out, const real *in, size_t n);
// d_in [n] = d_out * silu'(in) (overwritten)
void silu_backward(real *d_in, const real *d_out, const real *in, size_t n);

#endif
