// DDPM as in DiT / DiffMoE (ROUTERS.md 2.2): linear betas, epsilon target, optional learned
// variance ("learned range") with the hybrid loss mse + vb, and the respaced ancestral sampler.
#ifndef PROMOE_DDPM_H
#define PROMOE_DDPM_H

#include <stdint.h>

#include "core/real.h"

// Tables over n steps, in double (numpy float64 in the reference).
struct ddpm_schedule {
    int n;
    int *timesteps;        // original timestep of each step (identity unless respaced)
    double *beta, *abar, *abar_prev;
    double *post_var, *post_log_var_clipped, *post_coef1, *post_coef2;
};

// The training schedule: n steps of linear betas from 1e-4*1000/n to 0.02*1000/n.
int ddpm_schedule_linear(struct ddpm_schedule *s, int n);
// Respaced to `steps` of the base schedule: kept timesteps round(i * (n-1)/(steps-1)).
int ddpm_schedule_respaced(struct ddpm_schedule *s, const struct ddpm_schedule *base, int steps);
void ddpm_schedule_free(struct ddpm_schedule *s);

// Per sample b: t uniform in [0, n) from stream (seed, step, TIME, b), eps from (.., NOISE, b).
// x_t, eps (the target), x0: [B, n_elem]; t_index [B] (int), t_model [B] (= t as real).
void ddpm_make_batch(const struct ddpm_schedule *s, real *x_t, real *eps, int *t_index,
                     real *t_model, const real *x0, int B, int n_elem, uint64_t seed, int64_t step);

struct ddpm_loss_parts {
    double loss, mse, vb;
};
// out [B, C_out, HW]: channels [0, C) predict eps, [C, 2C) the variance values v when C_out == 2C
// and hybrid is set. d_out (overwritten) is the gradient of the batch loss mean(mse + vb), with
// vb computed on the detached eps prediction (it trains only the variance channels).
struct ddpm_loss_parts ddpm_loss(const struct ddpm_schedule *s, real *d_out, const real *out,
                                 const real *eps, const real *x0, const real *x_t,
                                 const int *t_index, int B, int C, int C_out, int HW, int hybrid);

// One ancestral step at schedule index k: x [n] <- mean + (k > 0) sigma z, with the model's eps
// and (when learned) variance values v (NULL: fixed posterior variance, large-variance off).
void ddpm_step(const struct ddpm_schedule *s, int k, real *x, const real *eps_hat, const real *v,
               const real *z, int n);

#endif
