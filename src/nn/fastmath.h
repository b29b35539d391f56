// exp for the element-wise passes (GELU, SiLU, softmax). libm's expf/tanhf are scalar calls and
// took a third of the training step; this one vectorises, and since it uses only explicit fmaf,
// multiply, add and integer ops it gives the same bits in vector and scalar code, so results
// stay independent of how loops are split across threads. Cody-Waite reduction x = k ln2 + r,
// |r| <= ln2/2, then a degree-7 Taylor polynomial (truncation < 3e-9 relative, under float
// rounding). The double build (gradient checks) uses libm's exp.
#ifndef PROMOE_FASTMATH_H
#define PROMOE_FASTMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "core/real.h"

#ifdef PROMOE_F64
static inline real exp_fast(real x) { return exp(x); }
#else
static inline float exp_fast(float x)
{
    const float log2e = 1.44269504088896341f, round_magic = 12582912.0f;  // 1.5 * 2^23
    const float ln2_hi = 0.693359375f, ln2_lo = -2.12194440e-4f;
    x = x < -87.0f ? -87.0f : x > 88.0f ? 88.0f : x;   // NaN compares false and passes through
    float k = fmaf(x, log2e, round_magic) - round_magic;   // nearest integer to x / ln2
    float r = fmaf(k, -ln2_hi, x);
    r = fmaf(k, -ln2_lo, r);
    float p = 1.0f / 5040;
    p = fmaf(p, r, 1.0f / 720);
    p = fmaf(p, r, 1.0f / 120);
    p = fmaf(p, r, 1.0f / 24);
    p = fmaf(p, r, 1.0f / 6);
    p = fmaf(p, r, 0.5f);
    p = fmaf(p, r, 1.0f);
    p = fmaf(p, r, 1.0f);
    int32_t k_int = k == k ? (int32_t)k : 0;   // a NaN k would make the conversion undefined; p is NaN then
    uint32_t bits = (uint32_t)(k_int + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}
#endif

#endif
