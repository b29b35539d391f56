// Rectified flow as trained by ProMoE (SD3 convention, ROUTERS.md 2.1): sigma = 0 is data, 1 is
// noise; x_t = (1 - sigma) x0 + sigma eps; target v = eps - x0; sigma logit-normal; model time
// 1000 sigma; Euler sampler from sigma = 1 to 0.
#ifndef PROMOE_RF_H
#define PROMOE_RF_H

#include <stdint.h>

#include "core/real.h"

// Per sample b: sigma from stream (seed, step, TIME, b), eps from (seed, step, NOISE, b).
// x0, x_t, target: [B, n] with n = C*S*S; t_model [B].
void rf_make_batch(real *x_t, real *target, real *t_model, const real *x0, int B, int n,
                   uint64_t seed, int64_t step, double logit_mean, double logit_std);
// Mean squared error over the first C of C_out output channels; d_out [B, C_out, HW] is
// overwritten (0 on the unused channels). Returns the loss.
double rf_loss(real *d_out, const real *out, const real *target, int B, int C, int C_out, int HW);

#endif
