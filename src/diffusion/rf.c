// Rectified-flow training batch and loss. Sums run per sample in a fixed order, then over samples
// in order, so the loss does not depend on the thread count.
#include "diffusion/rf.h"

#include <math.h>

#include "core/rng.h"

#define RF_TIME_SCALE 1000.0

void rf_make_batch(real *x_t, real *target, real *t_model, const real *x0, int B, int n,
                   uint64_t seed, int64_t step, double logit_mean, double logit_std)
{
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        struct rng time_rng, noise_rng;
        rng_init(&time_rng, seed, (uint64_t)step, RNG_TIME, (uint32_t)b);
        rng_init(&noise_rng, seed, (uint64_t)step, RNG_NOISE, (uint32_t)b);
        double sigma = 1.0 / (1.0 + exp(-(logit_mean + logit_std * rng_normal(&time_rng))));
        t_model[b] = (real)(RF_TIME_SCALE * sigma);
        for (int i = 0; i < n; i++) {
            size_t k = (size_t)b * n + i;
            real eps = (real)rng_normal(&noise_rng);
            x_t[k] = (real)(1 - sigma) * x0[k] + (real)sigma * eps;
            target[k] = eps - x0[k];
        }
    }
}

double rf_loss(real *d_out, const real *out, const real *target, int B, int C, int C_out, int HW)
{
    double per_sample[B], scale = 2.0 / ((double)B * C * HW);
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        double sum = 0;
        for (int c = 0; c < C_out; c++)
            for (int i = 0; i < HW; i++) {
                size_t o = ((size_t)b * C_out + c) * HW + i;
                if (c >= C) {
                    d_out[o] = 0;
                    continue;
                }
                double diff = (double)out[o] - target[((size_t)b * C + c) * HW + i];
                sum += diff * diff;
                d_out[o] = (real)(scale * diff);
            }
        per_sample[b] = sum;
    }
    double total = 0;
    for (int b = 0; b < B; b++) total += per_sample[b];
    return total / ((double)B * C * HW);
}
