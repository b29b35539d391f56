// Diffusion objectives in the float build (ROUTERS.md 2.1, 2.2): the DDPM tables against values
// computed here from the formulas, the 250-step respacing, the rectified-flow and DDPM training
// batches (reconstructed from their random streams, deterministic across calls and thread counts,
// logit-normal sigma), both losses on hand-made examples, the ancestral step's variance, exp_fast
// against libm, and the PNG grid's size. Finite differences of the hybrid loss are in
// f64_diffusion.c.
#include <float.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "core/error.h"
#include "core/rng.h"
#include "diffusion/ddpm.h"
#include "diffusion/rf.h"
#include "diffusion/sampler.h"
#include "nn/fastmath.h"

#define N_STEPS 1000
#define SAMPLER_STEPS 250
// Table entries are double computations of a few operations; the independent loop here may round
// differently in the last bits, and the cumulative product over 1000 factors compounds that.
#define TABLE_RTOL 1e-12
// abar_999 as an exact rational product of the linspace betas (Python fractions), rounded to double.
#define ABAR_999_EXACT 4.0358297653756835e-05
// Float results of a few multiply-adds on O(1) values: a handful of float ulps.
#define FLOAT_TOL(scale) (8 * FLT_EPSILON * (1 + (scale)))
// Number of standard errors allowed for the statistical checks.
#define N_SIGMA 4.0

static struct rng test_rng;

static double rel_diff(double a, double b)
{
    return a == b ? 0 : fabs(a - b) / fmax(fabs(a), fabs(b));
}

static void fill_uniform(real *x, size_t n, double lo, double hi)
{
    for (size_t i = 0; i < n; i++) x[i] = (real)(lo + (hi - lo) * rng_uniform(&test_rng));
}

// ---- DDPM schedule ---------------------------------------------------------------------------

// numpy.linspace(lo, hi, n): start + k * step, the last entry set to stop.
static void reference_betas(double *beta, int n)
{
    double scale = 1000.0 / n, lo = 1e-4 * scale, hi = 0.02 * scale, step = (hi - lo) / (n - 1);
    for (int k = 0; k < n; k++) beta[k] = lo + k * step;
    beta[n - 1] = hi;
}

struct reference_tables {
    double beta[N_STEPS], abar[N_STEPS], abar_prev[N_STEPS], post_var[N_STEPS];
};

static void reference_schedule(struct reference_tables *r)
{
    reference_betas(r->beta, N_STEPS);
    double product = 1;
    for (int k = 0; k < N_STEPS; k++) {
        r->abar_prev[k] = product;
        product *= 1 - r->beta[k];
        r->abar[k] = product;
        r->post_var[k] = r->beta[k] * (1 - r->abar_prev[k]) / (1 - r->abar[k]);
    }
}

static void test_schedule_linear(void)
{
    struct ddpm_schedule s;
    CHECK(ddpm_schedule_linear(&s, N_STEPS) == 0, "ddpm_schedule_linear: %s", err_message());
    static struct reference_tables r;
    reference_schedule(&r);
    CHECK(s.n == N_STEPS, "n %d", s.n);
    CHECK(s.beta[0] == 1e-4, "beta_0 %.17g, want exactly 1e-4", s.beta[0]);
    CHECK(rel_diff(s.beta[N_STEPS - 1], 0.02) <= 2 * DBL_EPSILON, "beta_999 %.17g, want 0.02",
          s.beta[N_STEPS - 1]);
    CHECK(rel_diff(s.abar[N_STEPS - 1], ABAR_999_EXACT) <= TABLE_RTOL, "abar_999 %.17g, want %.17g",
          s.abar[N_STEPS - 1], ABAR_999_EXACT);
    CHECK(rel_diff(r.abar[N_STEPS - 1], ABAR_999_EXACT) <= TABLE_RTOL, "reference abar_999 %.17g",
          r.abar[N_STEPS - 1]);
    CHECK(s.abar_prev[0] == 1, "abar_prev_0 %.17g", s.abar_prev[0]);
    CHECK(s.post_var[0] == 0, "posterior variance at t = 0 is %.17g, want 0", s.post_var[0]);
    double worst[6] = {0}, worst_beta = 0;
    int identity = 1;
    for (int k = 0; k < N_STEPS; k++) {
        double b = r.beta[k], a = r.abar[k], ap = r.abar_prev[k];
        double coef1 = b * sqrt(ap) / (1 - a), coef2 = (1 - ap) * sqrt(1 - b) / (1 - a);
        double pairs[6][2] = {{s.beta[k], b}, {s.abar[k], a}, {s.abar_prev[k], ap},
                              {s.post_var[k], r.post_var[k]}, {s.post_coef1[k], coef1},
                              {s.post_coef2[k], coef2}};
        for (int j = 0; j < 6; j++) worst[j] = fmax(worst[j], rel_diff(pairs[j][0], pairs[j][1]));
        worst_beta = fmax(worst_beta, rel_diff(s.beta[k], b));
        identity &= s.timesteps[k] == k;
    }
    // lo + (hi - lo) k / (n - 1) and numpy's lo + k ((hi - lo) / (n - 1)) may differ in the last bit.
    CHECK(worst_beta <= 2 * DBL_EPSILON, "beta vs numpy linspace: worst relative %.3g", worst_beta);
    const char *names[6] = {"beta", "abar", "abar_prev", "post_var", "post_coef1", "post_coef2"};
    for (int j = 0; j < 6; j++)
        CHECK(worst[j] <= TABLE_RTOL, "%s: worst relative difference %.3g", names[j], worst[j]);
    CHECK(identity, "timesteps of the unrespaced schedule are not 0..999");
    // Hand-checked points: coef1 at t = 0 is beta_0 / beta_0 = 1 and coef2 at t = 0 is 0.
    CHECK_NEAR(s.post_coef1[0], 1.0, 1e-12, "post_coef1[0]");
    CHECK(s.post_coef2[0] == 0, "post_coef2[0] %.17g", s.post_coef2[0]);
    CHECK(rel_diff(s.post_var[1], 5.4531876613021935e-05) <= TABLE_RTOL, "post_var[1] %.17g",
          s.post_var[1]);
    // Clipped log variance: entry 0 repeats entry 1.
    CHECK(s.post_log_var_clipped[0] == s.post_log_var_clipped[1], "clipped[0] %.17g != clipped[1] %.17g",
          s.post_log_var_clipped[0], s.post_log_var_clipped[1]);
    double worst_log = 0;
    for (int k = 1; k < N_STEPS; k++)
        worst_log = fmax(worst_log, fabs(s.post_log_var_clipped[k] - log(r.post_var[k])));
    CHECK(worst_log <= 1e-11, "post_log_var_clipped vs log(post_var): worst %.3g", worst_log);
    ddpm_schedule_free(&s);

    // The general rule for other step counts: scale = 1000 / n.
    struct ddpm_schedule s250;
    CHECK(ddpm_schedule_linear(&s250, SAMPLER_STEPS) == 0, "linear 250: %s", err_message());
    CHECK(rel_diff(s250.beta[0], 4e-4) <= 2 * DBL_EPSILON, "250-step beta_0 %.17g, want 4e-4", s250.beta[0]);
    CHECK(rel_diff(s250.beta[SAMPLER_STEPS - 1], 0.08) <= 2 * DBL_EPSILON, "250-step beta_last %.17g, want 0.08",
          s250.beta[SAMPLER_STEPS - 1]);
    ddpm_schedule_free(&s250);
}

static void test_schedule_respaced(void)
{
    struct ddpm_schedule base, s;
    CHECK(ddpm_schedule_linear(&base, N_STEPS) == 0, "linear: %s", err_message());
    CHECK(ddpm_schedule_respaced(&s, &base, SAMPLER_STEPS) == 0, "respaced: %s", err_message());
    CHECK(s.n == SAMPLER_STEPS, "respaced n %d", s.n);
    CHECK(s.timesteps[0] == 0 && s.timesteps[SAMPLER_STEPS - 1] == N_STEPS - 1, "first %d last %d",
          s.timesteps[0], s.timesteps[SAMPLER_STEPS - 1]);
    CHECK(s.timesteps[1] == 4 && s.timesteps[2] == 8 && s.timesteps[SAMPLER_STEPS - 2] == 995,
          "timesteps 1, 2, 248: %d %d %d", s.timesteps[1], s.timesteps[2], s.timesteps[SAMPLER_STEPS - 2]);
    int mismatches = 0, first_bad = -1;
    for (int i = 0; i < SAMPLER_STEPS; i++) {
        // Independent rounding of the exact quotient (no ties occur for 999/249).
        int want = (int)floor((double)i * (N_STEPS - 1) / (SAMPLER_STEPS - 1) + 0.5);
        if (s.timesteps[i] != want) {
            mismatches++;
            if (first_bad < 0) first_bad = i;
        }
    }
    CHECK(mismatches == 0, "%d kept timesteps differ from round(i*999/249), first at i = %d", mismatches,
          first_bad);
    // abar' (product of 1 - beta') equals the base abar at the kept steps.
    double product = 1, worst = 0, worst_table = 0;
    for (int k = 0; k < SAMPLER_STEPS; k++) {
        product *= 1 - s.beta[k];
        double want = base.abar[s.timesteps[k]];
        worst = fmax(worst, rel_diff(product, want));
        worst_table = fmax(worst_table, rel_diff(s.abar[k], want));
    }
    CHECK(worst <= TABLE_RTOL, "prod(1 - beta') vs base abar: worst relative %.3g", worst);
    CHECK(worst_table <= TABLE_RTOL, "respaced abar table vs base abar: worst relative %.3g", worst_table);
    CHECK(s.post_log_var_clipped[0] == s.post_log_var_clipped[1], "respaced clipped[0] != clipped[1]");
    CHECK(rel_diff(s.beta[0], base.beta[0]) <= TABLE_RTOL, "respaced beta'_0 %.17g vs beta_0 %.17g",
          s.beta[0], base.beta[0]);
    ddpm_schedule_free(&s);

    // Respacing to every step reproduces the base schedule.
    CHECK(ddpm_schedule_respaced(&s, &base, N_STEPS) == 0, "respaced 1000: %s", err_message());
    double worst_beta = 0;
    int identity = 1;
    for (int k = 0; k < N_STEPS; k++) {
        identity &= s.timesteps[k] == k;
        worst_beta = fmax(worst_beta, fabs(s.beta[k] - base.beta[k]) / base.beta[k]);
    }
    CHECK(identity, "respacing to 1000 steps does not keep every timestep");
    // beta' = 1 - abar_k / abar_{k-1} cancels to ~eps / beta_k ~ 1e-12 relative.
    CHECK(worst_beta <= 1e-11, "respacing to 1000 steps changes betas by %.3g relative", worst_beta);
    ddpm_schedule_free(&s);

    CHECK(ddpm_schedule_respaced(&s, &base, 0) == -1, "0 sampler steps accepted");
    CHECK(ddpm_schedule_respaced(&s, &base, N_STEPS + 1) == -1, "1001 sampler steps accepted");
    ddpm_schedule_free(&base);
}

// ---- Rectified flow --------------------------------------------------------------------------

struct rf_batch {
    real *x_t, *target, *t_model;
};

static void rf_batch_alloc(struct rf_batch *b, int B, int n)
{
    b->x_t = malloc(sizeof(real) * B * n);
    b->target = malloc(sizeof(real) * B * n);
    b->t_model = malloc(sizeof(real) * B);
}

static void rf_batch_free(struct rf_batch *b)
{
    free(b->x_t); free(b->target); free(b->t_model);
}

static int rf_batch_equal(const struct rf_batch *a, const struct rf_batch *b, int B, int n)
{
    return !memcmp(a->x_t, b->x_t, sizeof(real) * B * n) &&
           !memcmp(a->target, b->target, sizeof(real) * B * n) &&
           !memcmp(a->t_model, b->t_model, sizeof(real) * B);
}

static double sigmoid(double x) { return 1 / (1 + exp(-x)); }

static void test_rf_batch_values(void)
{
    enum { B = 16, N = 50 };
    const uint64_t seed = 1234;
    const int64_t step = 7;
    real x0[B * N];
    fill_uniform(x0, B * N, -1, 1);
    struct rf_batch b;
    rf_batch_alloc(&b, B, N);
    rf_make_batch(b.x_t, b.target, b.t_model, x0, B, N, seed, step, 0.25, 1.5);
    double worst_sigma = 0, largest_eps = 0, worst_xt = 0, worst_stream = 0;
    int in_range = 1;
    for (int s = 0; s < B; s++) {
        struct rng time_rng, noise_rng;
        rng_init(&time_rng, seed, (uint64_t)step, RNG_TIME, (uint32_t)s);
        rng_init(&noise_rng, seed, (uint64_t)step, RNG_NOISE, (uint32_t)s);
        double want_sigma = sigmoid(0.25 + 1.5 * rng_normal(&time_rng));
        double sigma = (double)b.t_model[s] / 1000;
        in_range &= sigma > 0 && sigma < 1;
        worst_sigma = fmax(worst_sigma, fabs(sigma - want_sigma));
        for (int i = 0; i < N; i++) {
            size_t k = (size_t)s * N + i;
            double eps = (double)b.target[k] + x0[k];           // target = eps - x0
            double stream_eps = (double)(real)rng_normal(&noise_rng);
            worst_stream = fmax(worst_stream, fabs(eps - stream_eps) / FLOAT_TOL(fabs(stream_eps)));
            double want = (1 - sigma) * x0[k] + sigma * eps;
            worst_xt = fmax(worst_xt, fabs(b.x_t[k] - want) / FLOAT_TOL(fabs(x0[k]) + fabs(eps)));
            largest_eps = fmax(largest_eps, fabs(eps));
        }
    }
    CHECK(in_range, "some sigma outside (0, 1)");
    // t_model is float: 1000 sigma rounded to 24 bits, so sigma is known to ~6e-8.
    CHECK(worst_sigma <= 1e-6, "sigma vs sigmoid(m + s n) of the TIME stream: worst %.3g", worst_sigma);
    CHECK(worst_stream <= 1, "target + x0 vs the NOISE stream: worst %.3g of the float tolerance", worst_stream);
    CHECK(worst_xt <= 1, "x_t vs (1-sigma) x0 + sigma eps: worst %.3g of the float tolerance", worst_xt);
    CHECK(largest_eps > 1, "noise looks degenerate: max |eps| %.3g", largest_eps);
    rf_batch_free(&b);
}

// Mean and standard deviation of logit(sigma) over B samples.
static void logit_moments(double logit_mean, double logit_std, int B, double *mean, double *std)
{
    real *x0 = calloc(B, sizeof(real));
    struct rf_batch b;
    rf_batch_alloc(&b, B, 1);
    rf_make_batch(b.x_t, b.target, b.t_model, x0, B, 1, 99, 3, logit_mean, logit_std);
    double sum = 0, sum2 = 0;
    for (int s = 0; s < B; s++) {
        double sigma = (double)b.t_model[s] / 1000, logit = log(sigma / (1 - sigma));
        sum += logit;
        sum2 += logit * logit;
    }
    *mean = sum / B;
    *std = sqrt(sum2 / B - *mean * *mean);
    rf_batch_free(&b);
    free(x0);
}

static void test_rf_logit_normal(void)
{
    enum { B = 4096 };
    const double params[2][2] = {{0, 1}, {0.5, 2}};
    for (int p = 0; p < 2; p++) {
        double m = params[p][0], s = params[p][1], mean, std;
        logit_moments(m, s, B, &mean, &std);
        // Standard errors: s / sqrt(B) for the mean, about s / sqrt(2B) for the std.
        double mean_tol = N_SIGMA * s / sqrt(B), std_tol = N_SIGMA * s / sqrt(2.0 * B);
        CHECK(fabs(mean - m) <= mean_tol, "logit mean %.4f, want %.2f +- %.4f", mean, m, mean_tol);
        CHECK(fabs(std - s) <= std_tol, "logit std %.4f, want %.2f +- %.4f", std, s, std_tol);
    }
}

static void test_rf_determinism(void)
{
    enum { B = 64, N = 40 };
    real x0[B * N];
    fill_uniform(x0, B * N, -1, 1);
    struct rf_batch a, b;
    rf_batch_alloc(&a, B, N);
    rf_batch_alloc(&b, B, N);
    int threads = omp_get_max_threads();
    rf_make_batch(a.x_t, a.target, a.t_model, x0, B, N, 5, 11, 0, 1);
    rf_make_batch(b.x_t, b.target, b.t_model, x0, B, N, 5, 11, 0, 1);
    CHECK(rf_batch_equal(&a, &b, B, N), "rf batch differs between two identical calls");
    omp_set_num_threads(1);
    rf_make_batch(a.x_t, a.target, a.t_model, x0, B, N, 5, 11, 0, 1);
    omp_set_num_threads(2);
    rf_make_batch(b.x_t, b.target, b.t_model, x0, B, N, 5, 11, 0, 1);
    omp_set_num_threads(threads);
    CHECK(rf_batch_equal(&a, &b, B, N), "rf batch differs between 1 and 2 threads");
    rf_make_batch(b.x_t, b.target, b.t_model, x0, B, N, 6, 11, 0, 1);
    CHECK(!rf_batch_equal(&a, &b, B, N), "rf batch unchanged by the seed");
    rf_make_batch(b.x_t, b.target, b.t_model, x0, B, N, 5, 12, 0, 1);
    CHECK(!rf_batch_equal(&a, &b, B, N), "rf batch unchanged by the step");
    // Samples use distinct streams: no two samples share a sigma.
    int repeated = 0;
    for (int i = 0; i < B; i++)
        for (int j = i + 1; j < B; j++) repeated += a.t_model[i] == a.t_model[j];
    CHECK(repeated == 0, "%d pairs of samples share a sigma", repeated);
    rf_batch_free(&a);
    rf_batch_free(&b);
}

static void test_rf_loss(void)
{
    // B = 2, C = 1, C_out = 2, HW = 2; out [b][c][i], target [b][0][i].
    const real out[8] = {1, 2, 5, 6, 0, -1, 7, 8};
    const real target[4] = {0.5, 2.5, 1, -3};
    real d_out[8];
    for (int i = 0; i < 8; i++) d_out[i] = 99;
    // diffs 0.5, -0.5, -1, 2: sum of squares 5.5 over B*C*HW = 4 elements; gradient diff / 2.
    double loss = rf_loss(d_out, out, target, 2, 1, 2, 2);
    CHECK(loss == 1.375, "rf loss %.17g, want 1.375", loss);
    const real want[8] = {0.25, -0.25, 0, 0, -0.5, 1, 0, 0};
    int exact = 1;
    for (int i = 0; i < 8; i++) exact &= d_out[i] == want[i];
    CHECK(exact, "rf d_out %g %g %g %g %g %g %g %g", d_out[0], d_out[1], d_out[2], d_out[3], d_out[4],
          d_out[5], d_out[6], d_out[7]);

    // Random case against 2 (out - target) / (B C HW), with C = 3 of C_out = 4 channels.
    enum { B = 3, C = 3, C_OUT = 4, HW = 5 };
    real o[B * C_OUT * HW], t[B * C * HW], d[B * C_OUT * HW];
    fill_uniform(o, B * C_OUT * HW, -2, 2);
    fill_uniform(t, B * C * HW, -2, 2);
    double sum = 0, worst = 0;
    int zero = 1;
    double l = rf_loss(d, o, t, B, C, C_OUT, HW);
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C_OUT; c++)
            for (int i = 0; i < HW; i++) {
                size_t k = ((size_t)b * C_OUT + c) * HW + i;
                if (c >= C) {
                    zero &= d[k] == 0;
                    continue;
                }
                double diff = (double)o[k] - t[((size_t)b * C + c) * HW + i];
                sum += diff * diff;
                worst = fmax(worst, fabs(d[k] - 2 * diff / (B * C * HW)));
            }
    CHECK(rel_diff(l, sum / (B * C * HW)) <= 1e-14, "rf loss %.17g vs %.17g", l, sum / (B * C * HW));
    CHECK(worst <= FLOAT_TOL(0) * 0.5, "rf gradient vs 2 diff / (B C HW): worst %.3g", worst);
    CHECK(zero, "rf gradient nonzero on an unused output channel");
}

// ---- DDPM batch, loss, step ------------------------------------------------------------------

static void test_ddpm_batch(void)
{
    enum { B = 64, N = 20 };
    struct ddpm_schedule s;
    CHECK(ddpm_schedule_linear(&s, N_STEPS) == 0, "linear: %s", err_message());
    real x0[B * N], x_t[B * N], eps[B * N], t_model[B], x_t2[B * N], eps2[B * N], t_model2[B];
    int t_index[B], t_index2[B];
    fill_uniform(x0, B * N, -1, 1);
    const uint64_t seed = 77;
    const int64_t step = 3;
    ddpm_make_batch(&s, x_t, eps, t_index, t_model, x0, B, N, seed, step);
    int in_range = 1, stream_t = 1, stream_eps = 1;
    double worst = 0;
    for (int b = 0; b < B; b++) {
        int t = t_index[b];
        in_range &= t >= 0 && t < N_STEPS && t_model[b] == (real)t;
        if (t < 0 || t >= N_STEPS) continue;
        struct rng time_rng, noise_rng;
        rng_init(&time_rng, seed, (uint64_t)step, RNG_TIME, (uint32_t)b);
        rng_init(&noise_rng, seed, (uint64_t)step, RNG_NOISE, (uint32_t)b);
        stream_t &= (int)rng_below(&time_rng, N_STEPS) == t;
        double a = sqrt(s.abar[t]), sn = sqrt(1 - s.abar[t]);
        for (int i = 0; i < N; i++) {
            size_t k = (size_t)b * N + i;
            stream_eps &= eps[k] == (real)rng_normal(&noise_rng);
            double want = a * x0[k] + sn * eps[k];
            worst = fmax(worst, fabs(x_t[k] - want) / FLOAT_TOL(fabs(want)));
        }
    }
    CHECK(in_range, "t outside [0, 1000) or t_model != t");
    CHECK(stream_t, "t is not rng_below(1000) of the TIME stream");
    CHECK(stream_eps, "eps is not the NOISE stream");
    CHECK(worst <= 1, "x_t vs sqrt(abar) x0 + sqrt(1-abar) eps: worst %.3g of the float tolerance", worst);

    ddpm_make_batch(&s, x_t2, eps2, t_index2, t_model2, x0, B, N, seed, step);
    CHECK(!memcmp(x_t, x_t2, sizeof x_t) && !memcmp(eps, eps2, sizeof eps) &&
              !memcmp(t_index, t_index2, sizeof t_index), "ddpm batch differs between identical calls");
    int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    ddpm_make_batch(&s, x_t, eps, t_index, t_model, x0, B, N, seed, step);
    omp_set_num_threads(2);
    ddpm_make_batch(&s, x_t2, eps2, t_index2, t_model2, x0, B, N, seed, step);
    omp_set_num_threads(threads);
    CHECK(!memcmp(x_t, x_t2, sizeof x_t) && !memcmp(eps, eps2, sizeof eps) &&
              !memcmp(t_index, t_index2, sizeof t_index), "ddpm batch differs between 1 and 2 threads");
    ddpm_make_batch(&s, x_t2, eps2, t_index2, t_model2, x0, B, N, seed + 1, step);
    CHECK(memcmp(eps, eps2, sizeof eps) && memcmp(t_index, t_index2, sizeof t_index),
          "ddpm batch unchanged by the seed");
    ddpm_make_batch(&s, x_t2, eps2, t_index2, t_model2, x0, B, N, seed, step + 1);
    CHECK(memcmp(eps, eps2, sizeof eps) && memcmp(t_index, t_index2, sizeof t_index),
          "ddpm batch unchanged by the step");

    // t is uniform over [0, 1000): mean 499.5, std 288.7.
    enum { BIG = 4096 };
    real *bx0 = calloc(BIG, sizeof(real)), *bxt = malloc(sizeof(real) * BIG),
         *beps = malloc(sizeof(real) * BIG), *bt = malloc(sizeof(real) * BIG);
    int *bti = malloc(sizeof(int) * BIG);
    ddpm_make_batch(&s, bxt, beps, bti, bt, bx0, BIG, 1, 8, 1);
    double sum = 0;
    int low = 0, high = 0;
    for (int b = 0; b < BIG; b++) {
        sum += bti[b];
        low += bti[b] < 10;
        high += bti[b] >= N_STEPS - 10;
    }
    double mean_tol = N_SIGMA * sqrt((N_STEPS * (double)N_STEPS - 1) / 12) / sqrt(BIG);
    CHECK(fabs(sum / BIG - 499.5) <= mean_tol, "mean t %.2f, want 499.5 +- %.2f", sum / BIG, mean_tol);
    CHECK(low > 0 && high > 0, "t never near an end: %d below 10, %d above 989", low, high);

    // A respaced schedule feeds the model the original timestep.
    struct ddpm_schedule r;
    CHECK(ddpm_schedule_respaced(&r, &s, SAMPLER_STEPS) == 0, "respaced: %s", err_message());
    ddpm_make_batch(&r, bxt, beps, bti, bt, bx0, BIG, 1, 8, 1);
    int original = 1, below = 1;
    for (int b = 0; b < BIG; b++) {
        below &= bti[b] >= 0 && bti[b] < SAMPLER_STEPS;
        if (bti[b] >= 0 && bti[b] < SAMPLER_STEPS) original &= bt[b] == (real)r.timesteps[bti[b]];
    }
    CHECK(below, "respaced batch index outside [0, 250)");
    CHECK(original, "respaced batch t_model is not the original timestep");
    ddpm_schedule_free(&r);
    free(bx0); free(bxt); free(beps); free(bt); free(bti);
    ddpm_schedule_free(&s);
}

static void test_ddpm_loss_mse(void)
{
    struct ddpm_schedule s;
    CHECK(ddpm_schedule_linear(&s, N_STEPS) == 0, "linear: %s", err_message());
    // B = 2, C = 1, C_out = 2, HW = 2. eps-channel diffs 1, -2 | 0.5, 0.5: per-sample mse
    // (1 + 4) / 2 = 2.5 and 0.25, batch mean 1.375; gradient 2 diff / (C HW B) = diff / 2.
    const real out[8] = {1, -1, 0.3f, -0.7f, 2.5f, 0.5f, 0.9f, 0.1f};
    const real eps[4] = {0, 1, 2, 0};
    // Sample 1 (t = 0): x_t = sqrt(abar_0) x0 + sqrt(1 - abar_0) eps, so the model mean lies within
    // a bin or two of x0 and the discretised likelihood is not clamped.
    const real x0[4] = {0.1f, -0.2f, 0.3f, 0.4f}, x_t[4] = {0.5f, -0.5f, 0.32f, 0.4f};
    const int t[2] = {10, 0};
    real d_out[8];
    for (int i = 0; i < 8; i++) d_out[i] = 99;
    struct ddpm_loss_parts p = ddpm_loss(&s, d_out, out, eps, x0, x_t, t, 2, 1, 2, 2, 0);
    CHECK(p.mse == 1.375 && p.vb == 0 && p.loss == 1.375, "hybrid off: loss %.17g mse %.17g vb %.17g",
          p.loss, p.mse, p.vb);
    const real want[8] = {0.5, -1, 0, 0, 0.25, 0.25, 0, 0};
    int exact = 1;
    for (int i = 0; i < 8; i++) exact &= d_out[i] == want[i];
    CHECK(exact, "hybrid off d_out %g %g %g %g %g %g %g %g", d_out[0], d_out[1], d_out[2], d_out[3],
          d_out[4], d_out[5], d_out[6], d_out[7]);

    // Hybrid on with C_out == 2C: same mse and eps gradient, and now a vb term that trains the
    // variance channels (this is what makes the zero checks above meaningful).
    for (int i = 0; i < 8; i++) d_out[i] = 99;
    p = ddpm_loss(&s, d_out, out, eps, x0, x_t, t, 2, 1, 2, 2, 1);
    CHECK(p.mse == 1.375, "hybrid on: mse %.17g", p.mse);
    CHECK(p.vb > 0 && isfinite(p.vb), "hybrid on: vb %.17g, want > 0", p.vb);
    CHECK(p.loss == p.mse + p.vb, "hybrid on: loss %.17g != mse + vb", p.loss);
    CHECK(d_out[0] == 0.5f && d_out[1] == -1 && d_out[4] == 0.25f && d_out[5] == 0.25f,
          "hybrid on: eps gradient changed: %g %g %g %g", d_out[0], d_out[1], d_out[4], d_out[5]);
    CHECK(d_out[2] != 0 && d_out[3] != 0 && d_out[6] != 0 && d_out[7] != 0 && d_out[2] != 99,
          "hybrid on: variance gradient %g %g %g %g", d_out[2], d_out[3], d_out[6], d_out[7]);

    // Hybrid on but C_out == C: no variance channels, vb 0.
    const real out_eps_only[4] = {1, -1, 2.5f, 0.5f};
    real d4[4];
    p = ddpm_loss(&s, d4, out_eps_only, eps, x0, x_t, t, 2, 1, 1, 2, 1);
    CHECK(p.mse == 1.375 && p.vb == 0 && p.loss == 1.375, "C_out == C: loss %.17g mse %.17g vb %.17g",
          p.loss, p.mse, p.vb);
    CHECK(d4[0] == 0.5f && d4[1] == -1 && d4[2] == 0.25f && d4[3] == 0.25f, "C_out == C d_out %g %g %g %g",
          d4[0], d4[1], d4[2], d4[3]);

    // Hybrid on with C_out = 3C (not 2C): extra channels are not variance channels.
    real out3[12], d12[12];
    for (int b = 0; b < 2; b++)
        for (int j = 0; j < 6; j++) out3[b * 6 + j] = j < 4 ? out[b * 4 + j] : 0.25f;
    for (int i = 0; i < 12; i++) d12[i] = 99;
    p = ddpm_loss(&s, d12, out3, eps, x0, x_t, t, 2, 1, 3, 2, 1);
    CHECK(p.mse == 1.375 && p.vb == 0, "C_out == 3C: mse %.17g vb %.17g", p.mse, p.vb);
    int zero = 1;
    for (int b = 0; b < 2; b++)
        for (int j = 2; j < 6; j++) zero &= d12[b * 6 + j] == 0;
    CHECK(zero, "C_out == 3C: gradient on non-eps channels");
    ddpm_schedule_free(&s);
}

// x after one ancestral step with z = 1, minus the posterior mean computed here.
static double step_offset(const struct ddpm_schedule *s, int k, double x, double eps_hat, const real *v)
{
    real xr = (real)x, er = (real)eps_hat, z = 1;
    double ra = sqrt(1 / s->abar[k]), rm = sqrt(1 / s->abar[k] - 1);
    double mean = s->post_coef1[k] * (ra * xr - rm * er) + s->post_coef2[k] * xr;
    ddpm_step(s, k, &xr, &er, v, &z, 1);
    return (double)xr - mean;
}

static void test_ddpm_step(void)
{
    struct ddpm_schedule base, s;
    CHECK(ddpm_schedule_linear(&base, N_STEPS) == 0, "linear: %s", err_message());
    CHECK(ddpm_schedule_respaced(&s, &base, SAMPLER_STEPS) == 0, "respaced: %s", err_message());
    const real plus_one = 1, minus_one = -1, zero = 0;
    // Offsets are O(sqrt(beta)) ~ 0.01-0.3 on means of O(1): float rounding of x bounds the error.
    const double tol = FLOAT_TOL(2);
    const struct ddpm_schedule *schedules[2] = {&base, &s};
    const int ks[2][2] = {{37, 100}, {1, 20}};
    for (int j = 0; j < 2; j++) {
        const struct ddpm_schedule *sc = schedules[j];
        CHECK_NEAR(step_offset(sc, 0, 0.3, -0.4, &plus_one), 0, tol, "k = 0 adds no noise (v = 1)");
        CHECK_NEAR(step_offset(sc, 0, 0.3, -0.4, NULL), 0, tol, "k = 0 adds no noise (fixed variance)");
        for (int i = 0; i < 2; i++) {
            int k = ks[j][i];
            double beta = sc->beta[k], post = exp(sc->post_log_var_clipped[k]);
            CHECK_NEAR(step_offset(sc, k, 0.7, 0.2, &plus_one), sqrt(beta), tol, "v = 1: sigma = sqrt(beta_k)");
            CHECK_NEAR(step_offset(sc, k, 0.7, 0.2, &minus_one), sqrt(post), tol,
                       "v = -1: sigma = sqrt(clipped posterior variance)");
            CHECK_NEAR(step_offset(sc, k, 0.7, 0.2, NULL), sqrt(post), tol, "fixed variance = posterior");
            CHECK_NEAR(step_offset(sc, k, 0.7, 0.2, &zero), pow(beta * post, 0.25), tol,
                       "v = 0: geometric mean of the variances");
            CHECK(fabs(sqrt(beta) - sqrt(post)) > 100 * tol, "k %d: beta and posterior too close to tell apart", k);
        }
    }
    ddpm_schedule_free(&s);
    ddpm_schedule_free(&base);
}

// ---- exp_fast --------------------------------------------------------------------------------

static void test_exp_fast(void)
{
    CHECK(exp_fast(0.0f) == 1.0f, "exp_fast(0) = %.9g", (double)exp_fast(0.0f));
    // Relative error against libm's double exp on a grid of step 1e-4 over [-80, 80].
    const double limit = 1e-6;
    double worst = 0, worst_x = 0;
    for (long i = -800000; i <= 800000; i++) {
        float x = (float)(i * 1e-4);
        double want = exp((double)x), e = fabs((double)exp_fast(x) - want) / want;
        if (e > worst) worst = e, worst_x = x;
    }
    CHECK(worst < limit, "exp_fast relative error %.3g at x = %.7g", worst, worst_x);
    // The header's claim, tighter: truncation < 3e-9 leaves only float rounding (reduction,
    // polynomial, result), which stays within one float epsilon (observed 7.7e-8).
    CHECK(worst < FLT_EPSILON, "exp_fast relative error %.3g at x = %.7g exceeds one float epsilon", worst,
          worst_x);
    // Monotone: a grid of step 1e-5 over [-10, 10], and every float within 256 ulps of each
    // switch of the reduction's integer k (x = (k + 1/2) ln 2), where the polynomial pieces meet.
    int drops = 0;
    float drop_x = 0;
    float previous = exp_fast(-10.0f);
    for (long i = -1000000 + 1; i <= 1000000; i++) {
        float x = (float)(i * 1e-5), y = exp_fast(x);
        if (y < previous && !drops++) drop_x = x;
        previous = y;
    }
    for (int k = -15; k <= 14; k++) {
        float x = (float)((k + 0.5) * M_LN2);
        for (int u = 0; u < 256; u++) x = nextafterf(x, -INFINITY);
        previous = exp_fast(x);
        for (int u = 0; u < 512; u++) {
            x = nextafterf(x, INFINITY);
            float y = exp_fast(x);
            if (y < previous && !drops++) drop_x = x;
            previous = y;
        }
    }
    CHECK(drops == 0, "exp_fast decreases %d times, first at x = %.9g", drops, (double)drop_x);
}

// ---- Sampler output --------------------------------------------------------------------------

static uint32_t big_endian(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void test_image_grid(void)
{
    char dir[] = "/tmp/promoe_test_diffusion_XXXXXX", path[96];
    CHECK(mkdtemp(dir) != NULL, "mkdtemp failed");
    snprintf(path, sizeof path, "%s/grid.png", dir);
    enum { N = 20, S = 28, C = 1 };
    real *images = malloc(sizeof(real) * N * C * S * S);
    fill_uniform(images, (size_t)N * C * S * S, -1.2, 1.2);
    CHECK(write_image_grid(path, images, N, C, S, 10) == 0, "write_image_grid: %s", err_message());
    unsigned char header[26] = {0};
    FILE *fp = fopen(path, "rb");
    size_t got = fp ? fread(header, 1, sizeof header, fp) : 0;
    if (fp) fclose(fp);
    CHECK(got == sizeof header, "read %zu header bytes", got);
    CHECK(!memcmp(header + 12, "IHDR", 4), "no IHDR chunk at offset 12");
    CHECK(big_endian(header + 16) == 302 && big_endian(header + 20) == 62, "grid %ux%u, want 302x62",
          big_endian(header + 16), big_endian(header + 20));
    CHECK(header[24] == 8 && header[25] == 0, "bit depth %d colour type %d, want 8 and 0 (gray)", header[24],
          header[25]);
    CHECK(write_image_grid(path, images, N, 2, S / 2, 10) == -1, "a 2-channel grid was accepted");
    unlink(path);
    rmdir(dir);
    free(images);
}

int main(void)
{
    rng_init(&test_rng, 2024, 0, RNG_TEST, 0);
    test_schedule_linear();
    test_schedule_respaced();
    test_rf_batch_values();
    test_rf_logit_normal();
    test_rf_determinism();
    test_rf_loss();
    test_ddpm_batch();
    test_ddpm_loss_mse();
    test_ddpm_step();
    test_exp_fast();
    test_image_grid();
    return test_summary("test_diffusion");
}
