// DDPM tables, training batch, hybrid loss (mse + vb, ROUTERS.md 2.2) and the ancestral step.
// The vb term follows guided-diffusion: KL between the true posterior and the model's Gaussian
// for t > 0, discretised-Gaussian negative log-likelihood of x0 at t = 0, both in bits.
#include "diffusion/ddpm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/rng.h"

#define DDPM_BETA_START 1e-4
#define DDPM_BETA_END 0.02
#define DDPM_REFERENCE_STEPS 1000.0
#define DISCRETE_HALF_BIN (1.0 / 255.0)
#define DISCRETE_EDGE 0.999
#define LOG_CLAMP 1e-12
#define CDF_SQRT_2_OVER_PI 0.7978845608028654
#define CDF_CUBIC 0.044715

static int schedule_alloc(struct ddpm_schedule *s, int n)
{
    memset(s, 0, sizeof *s);
    s->n = n;
    s->timesteps = calloc(n, sizeof(int));
    double **tables[] = {&s->beta, &s->abar, &s->abar_prev, &s->post_var, &s->post_log_var_clipped,
                         &s->post_coef1, &s->post_coef2};
    for (size_t i = 0; i < sizeof tables / sizeof *tables; i++) {
        *tables[i] = calloc(n, sizeof(double));
        if (!*tables[i]) return err("out of memory for the DDPM schedule");
    }
    return s->timesteps ? 0 : err("out of memory for the DDPM schedule");
}

// Every table derived from beta (guided-diffusion's GaussianDiffusion.__init__).
static void schedule_derive(struct ddpm_schedule *s)
{
    double abar = 1;
    for (int k = 0; k < s->n; k++) {
        s->abar_prev[k] = abar;
        abar *= 1 - s->beta[k];
        s->abar[k] = abar;
    }
    for (int k = 0; k < s->n; k++) {
        double b = s->beta[k], ap = s->abar_prev[k], a = s->abar[k];
        s->post_var[k] = b * (1 - ap) / (1 - a);
        s->post_coef1[k] = b * sqrt(ap) / (1 - a);
        s->post_coef2[k] = (1 - ap) * sqrt(1 - b) / (1 - a);
    }
    for (int k = 0; k < s->n; k++)
        s->post_log_var_clipped[k] = log(s->n > 1 && k == 0 ? s->post_var[1] : s->post_var[k]);
}

int ddpm_schedule_linear(struct ddpm_schedule *s, int n)
{
    if (schedule_alloc(s, n) < 0) return -1;
    double scale = DDPM_REFERENCE_STEPS / n, lo = DDPM_BETA_START * scale, hi = DDPM_BETA_END * scale;
    for (int k = 0; k < n; k++) {
        s->timesteps[k] = k;
        // numpy.linspace: start + k * step, the last entry set to stop exactly.
        s->beta[k] = n == 1 ? lo : k == n - 1 ? hi : lo + k * ((hi - lo) / (n - 1));
    }
    schedule_derive(s);
    return 0;
}

int ddpm_schedule_respaced(struct ddpm_schedule *s, const struct ddpm_schedule *base, int steps)
{
    if (steps < 1 || steps > base->n) return err("sampler steps %d out of range [1, %d]", steps, base->n);
    if (schedule_alloc(s, steps) < 0) return -1;
    double stride = steps > 1 ? (double)(base->n - 1) / (steps - 1) : 0, position = 0, last_abar = 1;
    for (int k = 0; k < steps; k++, position += stride) {
        int t = (int)lround(position);
        s->timesteps[k] = t;
        s->beta[k] = 1 - base->abar[t] / last_abar;
        last_abar = base->abar[t];
    }
    schedule_derive(s);
    return 0;
}

void ddpm_schedule_free(struct ddpm_schedule *s)
{
    free(s->timesteps);
    free(s->beta); free(s->abar); free(s->abar_prev); free(s->post_var);
    free(s->post_log_var_clipped); free(s->post_coef1); free(s->post_coef2);
    memset(s, 0, sizeof *s);
}

void ddpm_make_batch(const struct ddpm_schedule *s, real *x_t, real *eps, int *t_index,
                     real *t_model, const real *x0, int B, int n_elem, uint64_t seed, int64_t step)
{
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        struct rng time_rng, noise_rng;
        rng_init(&time_rng, seed, (uint64_t)step, RNG_TIME, (uint32_t)b);
        rng_init(&noise_rng, seed, (uint64_t)step, RNG_NOISE, (uint32_t)b);
        int t = (int)rng_below(&time_rng, (uint32_t)s->n);
        t_index[b] = t;
        t_model[b] = (real)s->timesteps[t];
        double a = sqrt(s->abar[t]), sn = sqrt(1 - s->abar[t]);
        for (int i = 0; i < n_elem; i++) {
            size_t k = (size_t)b * n_elem + i;
            eps[k] = (real)rng_normal(&noise_rng);
            x_t[k] = (real)(a * x0[k] + sn * eps[k]);
        }
    }
}

// The tanh approximation of the standard normal CDF and its derivative.
static double approx_cdf(double x)
{
    return 0.5 * (1 + tanh(CDF_SQRT_2_OVER_PI * (x + CDF_CUBIC * x * x * x)));
}
static double approx_cdf_grad(double x)
{
    double th = tanh(CDF_SQRT_2_OVER_PI * (x + CDF_CUBIC * x * x * x));
    return 0.5 * (1 - th * th) * CDF_SQRT_2_OVER_PI * (1 + 3 * CDF_CUBIC * x * x);
}

// -log p(x0 | mean, log_scale) of the 8-bit discretised Gaussian, in nats; *d_log_scale its
// derivative with respect to log_scale.
static double discretised_nll(double x, double mean, double log_scale, double *d_log_scale)
{
    double inv = exp(-log_scale), centred = x - mean;
    double plus = inv * (centred + DISCRETE_HALF_BIN), minus = inv * (centred - DISCRETE_HALF_BIN);
    double cdf_plus = approx_cdf(plus), cdf_minus = approx_cdf(minus);
    // d(plus)/d(log_scale) = -plus, likewise for minus.
    double dp = approx_cdf_grad(plus) * -plus, dm = approx_cdf_grad(minus) * -minus;
    double prob, d_prob;
    if (x < -DISCRETE_EDGE) prob = cdf_plus, d_prob = dp;
    else if (x > DISCRETE_EDGE) prob = 1 - cdf_minus, d_prob = -dm;
    else prob = cdf_plus - cdf_minus, d_prob = dp - dm;
    if (prob < LOG_CLAMP) {
        *d_log_scale = 0;
        return -log(LOG_CLAMP);
    }
    *d_log_scale = -d_prob / prob;
    return -log(prob);
}

// vb of one element in nats and d vb / d v (v = the raw variance channel value).
static double vb_element(const struct ddpm_schedule *s, int t, double x0, double x_t, double eps_hat,
                         double v, double *d_v)
{
    double log_beta = log(s->beta[t]), log_post = s->post_log_var_clipped[t];
    double frac = (v + 1) / 2, log_var = frac * log_beta + (1 - frac) * log_post;
    double d_log_var_d_v = 0.5 * (log_beta - log_post);
    double x0_hat = sqrt(1 / s->abar[t]) * x_t - sqrt(1 / s->abar[t] - 1) * eps_hat;
    double mean = s->post_coef1[t] * x0_hat + s->post_coef2[t] * x_t;
    if (t == 0) {
        double d_log_scale;
        double nll = discretised_nll(x0, mean, 0.5 * log_var, &d_log_scale);
        *d_v = d_log_scale * 0.5 * d_log_var_d_v;
        return nll;
    }
    double true_mean = s->post_coef1[t] * x0 + s->post_coef2[t] * x_t;
    double diff2 = (true_mean - mean) * (true_mean - mean);
    double kl = 0.5 * (-1 + log_var - log_post + exp(log_post - log_var) + diff2 * exp(-log_var));
    *d_v = 0.5 * (1 - exp(log_post - log_var) - diff2 * exp(-log_var)) * d_log_var_d_v;
    return kl;
}

struct ddpm_loss_parts ddpm_loss(const struct ddpm_schedule *s, real *d_out, const real *out,
                                 const real *eps, const real *x0, const real *x_t,
                                 const int *t_index, int B, int C, int C_out, int HW, int hybrid)
{
    int learned = hybrid && C_out == 2 * C;
    double mse_sum[B], vb_sum[B], n = (double)C * HW;
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        double mse = 0, vb = 0;
        int t = t_index[b];
        for (int c = 0; c < C_out; c++)
            for (int i = 0; i < HW; i++) {
                size_t o = ((size_t)b * C_out + c) * HW + i, e = ((size_t)b * C + c % C) * HW + i;
                if (c < C) {
                    double diff = (double)out[o] - eps[e];
                    mse += diff * diff;
                    d_out[o] = (real)(2 * diff / (n * B));
                } else if (learned) {
                    double d_v;
                    vb += vb_element(s, t, x0[e], x_t[e], out[o - (size_t)C * HW], out[o], &d_v);
                    d_out[o] = (real)(d_v / (M_LN2 * n * B));
                } else {
                    d_out[o] = 0;
                }
            }
        mse_sum[b] = mse / n;
        vb_sum[b] = vb / (M_LN2 * n);
    }
    struct ddpm_loss_parts parts = {0, 0, 0};
    for (int b = 0; b < B; b++) {
        parts.mse += mse_sum[b] / B;
        parts.vb += vb_sum[b] / B;
    }
    parts.loss = parts.mse + parts.vb;
    return parts;
}

void ddpm_step(const struct ddpm_schedule *s, int k, real *x, const real *eps_hat, const real *v,
               const real *z, int n)
{
    double ra = sqrt(1 / s->abar[k]), rm = sqrt(1 / s->abar[k] - 1);
    double log_beta = log(s->beta[k]), log_post = s->post_log_var_clipped[k];
    for (int i = 0; i < n; i++) {
        double x0_hat = ra * x[i] - rm * eps_hat[i];
        double mean = s->post_coef1[k] * x0_hat + s->post_coef2[k] * x[i];
        double log_var = log_post;
        if (v) {
            double frac = ((double)v[i] + 1) / 2;
            log_var = frac * log_beta + (1 - frac) * log_post;
        }
        x[i] = (real)(mean + (k > 0 ? exp(0.5 * log_var) * z[i] : 0));
    }
}
