// adaLN-Zero pieces: LayerNorm without affine parameters followed by a per-sample modulation
// u * (1 + scale) + shift, and the gated residual x + gate * f. Shift, scale and gate are rows of
// the adaLN output [B, k*D], addressed with a row stride.
#ifndef PROMOE_ADALN_H
#define PROMOE_ADALN_H

#include "core/real.h"

// out [B*T, D] = LN(x [B*T, D]) * (1 + scale[b]) + shift[b]; saves mean, rstd [B*T].
// shift, scale: [B, D] with row stride ada_stride.
void ln_modulate_forward(real *out, real *mean, real *rstd, const real *x, const real *shift,
                         const real *scale, int ada_stride, int B, int T, int D);
// Accumulates: d_x [B*T, D] +=; d_shift, d_scale [B, D] (row stride ada_stride) +=.
void ln_modulate_backward(real *d_x, real *d_shift, real *d_scale, const real *d_out,
                          const real *x, const real *mean, const real *rstd, const real *scale,
                          int ada_stride, int B, int T, int D);

// out [B*T, D] = x + gate[b] * (f + bias); gate [B, D] with row stride ada_stride; bias [D] is the
// branch's last linear bias, added here rather than by a copy before its product (or NULL).
// out may equal x.
void gated_residual_forward(real *out, const real *x, const real *gate, const real *f,
                            const real *bias, int ada_stride, int B, int T, int D);
// Accumulates: d_f [B*T, D] += d_out * gate; d_gate [B, D] += sum over tokens of d_out * (f + bias).
// (d_x += d_out is the caller's: the residual gradient passes through unchanged.)
void gated_residual_backward(real *d_f, real *d_gate, const real *d_out, const real *gate,
                             const real *f, const real *bias, int ada_stride, int B, int T, int D);

#endif
