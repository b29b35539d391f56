// Diffusion losses in double precision (ROUTERS.md 2.1, 2.2). The hybrid DDPM loss: its vb term
// against an independent implementation of the KL and of the discretised-Gaussian likelihood
// (interior and edge bins), and its gradient against central differences: on the variance
// channels d_out is d loss / d v (KL at t > 0, likelihood at t = 0), on the eps channels it is the
// mse gradient alone, because vb sees the detached eps prediction. Also: exact batches (x_t from
// x0 and the recovered noise), rf_loss's gradient, and the ancestral step's mean and variance.
#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/error.h"
#include "core/rng.h"
#include "diffusion/ddpm.h"
#include "diffusion/rf.h"

#define N_STEPS 1000
// Central differences of the whole batch loss (O(1)) with step 1e-4 on O(1) inputs: rounding
// ~1e-16 / h and truncation ~h^2 f''' leave errors near 1e-9 (1e-6 gave 4e-7 from rounding
// against gradients at the floor). error = |numeric - analytic| / max(|numeric|, |analytic|,
// FD_FLOOR).
#define FD_STEP 1e-4
#define FD_TOLERANCE 1e-6
#define FD_FLOOR 1e-4
// Agreement with the independent implementation: same formulas, different order of operations.
#define REFERENCE_RTOL 1e-11

static struct rng test_rng;

static double rel_error(double a, double b) { return fabs(a - b) / fmax(FD_FLOOR, fmax(fabs(a), fabs(b))); }

static double rel_diff(double a, double b)
{
    return a == b ? 0 : fabs(a - b) / fmax(fabs(a), fabs(b));
}

static void fill_uniform(real *x, size_t n, double lo, double hi)
{
    for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * rng_uniform(&test_rng);
}

// ---- Independent reference: tables and the vb of one element, in bits ------------------------

static double ref_beta[N_STEPS], ref_abar[N_STEPS], ref_abar_prev[N_STEPS], ref_post_var[N_STEPS];

static void reference_schedule(void)
{
    double step = (0.02 - 1e-4) / (N_STEPS - 1), product = 1;
    for (int k = 0; k < N_STEPS; k++) {
        ref_beta[k] = k == N_STEPS - 1 ? 0.02 : 1e-4 + k * step;
        ref_abar_prev[k] = product;
        product *= 1 - ref_beta[k];
        ref_abar[k] = product;
        ref_post_var[k] = ref_beta[k] * (1 - ref_abar_prev[k]) / (1 - ref_abar[k]);
    }
}

// guided-diffusion's approx_standard_normal_cdf.
static double ref_cdf(double x)
{
    return 0.5 * (1.0 + tanh(sqrt(2.0 / M_PI) * (x + 0.044715 * pow(x, 3))));
}

// guided-diffusion's discretized_gaussian_log_likelihood, negated.
static double ref_discretised_nll(double x, double mean, double log_scale)
{
    double centred = x - mean, inv_std = exp(-log_scale);
    double cdf_plus = ref_cdf(inv_std * (centred + 1.0 / 255.0));
    double cdf_min = ref_cdf(inv_std * (centred - 1.0 / 255.0));
    double log_cdf_plus = log(fmax(cdf_plus, 1e-12));
    double log_one_minus_cdf_min = log(fmax(1.0 - cdf_min, 1e-12));
    double log_cdf_delta = log(fmax(cdf_plus - cdf_min, 1e-12));
    return -(x < -0.999 ? log_cdf_plus : x > 0.999 ? log_one_minus_cdf_min : log_cdf_delta);
}

static double ref_vb_bits(int t, double x0, double x_t, double eps_hat, double v)
{
    double beta = ref_beta[t], abar = ref_abar[t], abar_prev = ref_abar_prev[t];
    double coef1 = beta * sqrt(abar_prev) / (1 - abar);
    double coef2 = (1 - abar_prev) * sqrt(1 - beta) / (1 - abar);
    double log_post = log(t == 0 ? ref_post_var[1] : ref_post_var[t]);
    double frac = (v + 1) / 2, log_var = frac * log(beta) + (1 - frac) * log_post;
    double x0_hat = x_t / sqrt(abar) - sqrt(1 / abar - 1) * eps_hat;
    double model_mean = coef1 * x0_hat + coef2 * x_t;
    if (t == 0) return ref_discretised_nll(x0, model_mean, 0.5 * log_var) / log(2.0);
    double true_mean = coef1 * x0 + coef2 * x_t;
    double kl = 0.5 * (-1.0 + log_var - log_post + exp(log_post - log_var) +
                       (true_mean - model_mean) * (true_mean - model_mean) * exp(-log_var));
    return kl / log(2.0);
}

// ---- vb of single elements against the reference ---------------------------------------------

static void test_vb_reference(const struct ddpm_schedule *s)
{
    struct {
        int t;
        double x0, eps, eps_hat, v;
    } cases[] = {
        {37, 0.3, -0.8, -0.5, 0.4},    {999, -0.6, 1.2, 0.9, -1},    {500, 0.9, 0.1, 0.4, 1},
        {1, -0.2, 0.5, 0.2, -0.3},     {0, 0.3, -0.8, -0.5, 0.4},    {0, -1, 0.4, 0.1, -1},
        {0, 1, -0.4, 0.3, 1},          {0, 0.9985, -0.3, 0.2, 0.5},  {0, -0.9995, 0.6, 1.1, 0},
        {0, 0.5, 4.0, -4.0, 0.2},      // model mean ~9 std from x0: the likelihood clamps at 1e-12
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int t = cases[i].t;
        real x0 = cases[i].x0, eps = cases[i].eps;
        real x_t = sqrt(ref_abar[t]) * x0 + sqrt(1 - ref_abar[t]) * eps;
        real out[2] = {cases[i].eps_hat, cases[i].v}, d_out[2];
        struct ddpm_loss_parts p = ddpm_loss(s, d_out, out, &eps, &x0, &x_t, &t, 1, 1, 2, 1, 1);
        double want_vb = ref_vb_bits(t, x0, x_t, out[0], out[1]);
        double want_mse = (out[0] - eps) * (out[0] - eps);
        CHECK(rel_diff(p.vb, want_vb) <= REFERENCE_RTOL, "case %zu (t %d, x0 %g): vb %.17g, reference %.17g",
              i, t, (double)x0, p.vb, want_vb);
        CHECK(rel_diff(p.mse, want_mse) <= REFERENCE_RTOL, "case %zu: mse %.17g, want %.17g", i, p.mse, want_mse);
        CHECK(p.loss == p.mse + p.vb, "case %zu: loss %.17g != mse + vb", i, p.loss);
    }
    // The clamped case really is clamped: -log(1e-12) / ln 2 bits.
    CHECK(rel_diff(ref_vb_bits(0, 0.5, sqrt(ref_abar[0]) * 0.5 + sqrt(1 - ref_abar[0]) * 4.0, -4.0, 0.2),
                   -log(1e-12) / log(2.0)) <= 1e-15, "reference clamp case is not clamped");
}

// ---- Finite differences of the hybrid loss -----------------------------------------------------

struct hybrid_case {
    const struct ddpm_schedule *s;
    int B, C, C_out, HW;
    real *out, *eps, *x0, *x_t, *scratch;
    int *t;
};

static struct ddpm_loss_parts evaluate(struct hybrid_case *h)
{
    return ddpm_loss(h->s, h->scratch, h->out, h->eps, h->x0, h->x_t, h->t, h->B, h->C, h->C_out, h->HW, 1);
}

// Central differences of loss, mse and vb with respect to out[o].
static void differences(struct hybrid_case *h, size_t o, double *loss, double *mse, double *vb)
{
    real saved = h->out[o];
    h->out[o] = saved + FD_STEP;
    struct ddpm_loss_parts plus = evaluate(h);
    h->out[o] = saved - FD_STEP;
    struct ddpm_loss_parts minus = evaluate(h);
    h->out[o] = saved;
    *loss = (plus.loss - minus.loss) / (2 * FD_STEP);
    *mse = (plus.mse - minus.mse) / (2 * FD_STEP);
    *vb = (plus.vb - minus.vb) / (2 * FD_STEP);
}

static void test_hybrid_gradient(const struct ddpm_schedule *s)
{
    // Samples: t = 0 with x0 inside (-0.999, 0.999); t = 0 with x0 at the edges -1 and 1 (and
    // one just inside each edge); t = 7 and t = 60 (KL; at large t beta_t and the posterior
    // variance nearly coincide, so the variance gradient all but vanishes and would test little).
    enum { B = 4, C = 2, C_OUT = 4, HW = 3, IMAGE = C * HW };
    int t[B] = {0, 0, 7, 60};
    real x0[B * IMAGE], eps[B * IMAGE], x_t[B * IMAGE], out[B * C_OUT * HW], d_out[B * C_OUT * HW],
        scratch[B * C_OUT * HW];
    fill_uniform(x0, B * IMAGE, -0.95, 0.95);
    const real edges[IMAGE] = {-1, 1, -1, 1, 0.998, -0.9985};
    memcpy(x0 + IMAGE, edges, sizeof edges);
    for (int b = 0; b < B; b++)
        for (int i = 0; i < IMAGE; i++) {
            size_t k = (size_t)b * IMAGE + i;
            eps[k] = rng_normal(&test_rng);
            x_t[k] = sqrt(ref_abar[t[b]]) * x0[k] + sqrt(1 - ref_abar[t[b]]) * eps[k];
            size_t o_eps = ((size_t)b * C_OUT) * HW + i, o_var = o_eps + (size_t)C * HW;  // i < C HW
            out[o_eps] = eps[k] + 0.3 * rng_normal(&test_rng);
            out[o_var] = -1 + 2 * rng_uniform(&test_rng);
        }
    struct hybrid_case h = {s, B, C, C_OUT, HW, out, eps, x0, x_t, scratch, t};
    struct ddpm_loss_parts parts = ddpm_loss(s, d_out, out, eps, x0, x_t, t, B, C, C_OUT, HW, 1);
    CHECK(isfinite(parts.loss) && parts.vb > 0, "hybrid loss %.17g vb %.17g", parts.loss, parts.vb);

    const char *group[3] = {"t = 0 interior", "t = 0 edges", "t > 0 (KL)"};
    double worst_var[3] = {0}, worst_eps = 0, worst_formula = 0, most_vb_on_eps = 0, smallest_var = INFINITY;
    int mse_moves_with_v = 0;
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C_OUT; c++)
            for (int i = 0; i < HW; i++) {
                size_t o = ((size_t)b * C_OUT + c) * HW + i;
                double fd_loss, fd_mse, fd_vb;
                differences(&h, o, &fd_loss, &fd_mse, &fd_vb);
                if (c >= C) {
                    int g = b < 2 ? b : 2;
                    worst_var[g] = fmax(worst_var[g], rel_error(d_out[o], fd_loss));
                    mse_moves_with_v += fd_mse != 0;
                    smallest_var = fmin(smallest_var, fabs(d_out[o]));
                    continue;
                }
                double diff = out[o] - eps[((size_t)b * C + c) * HW + i];
                worst_eps = fmax(worst_eps, rel_error(d_out[o], fd_mse));
                worst_formula = fmax(worst_formula, fabs(d_out[o] - 2 * diff / ((double)B * C * HW)));
                most_vb_on_eps = fmax(most_vb_on_eps, fabs(fd_vb));
            }
    for (int g = 0; g < 3; g++)
        CHECK(worst_var[g] <= FD_TOLERANCE, "variance-channel gradient, %s: worst error %.3g", group[g],
              worst_var[g]);
    CHECK(smallest_var > 1e-6, "a variance-channel gradient is ~0 (%.3g): clamped or degenerate case",
          smallest_var);
    CHECK(mse_moves_with_v == 0, "mse changes with %d variance channels", mse_moves_with_v);
    CHECK(worst_eps <= FD_TOLERANCE, "eps-channel gradient vs the mse's central difference: worst %.3g",
          worst_eps);
    CHECK(worst_formula <= 1e-15, "eps-channel gradient vs 2 (out - eps) / (B C HW): worst %.3g", worst_formula);
    // vb does depend on the eps prediction, so the detached gradient is a real difference: a
    // gradient with vb's eps path included would fail the mse comparison above.
    CHECK(most_vb_on_eps > 1e-3, "vb barely depends on eps_hat (%.3g): detach test is vacuous", most_vb_on_eps);
}

// ---- Exact batches and rf_loss gradient --------------------------------------------------------

static void test_batches_exact(const struct ddpm_schedule *s)
{
    enum { B = 8, N = 30 };
    real x0[B * N], x_t[B * N], target[B * N], t_model[B], eps[B * N];
    int t_index[B];
    fill_uniform(x0, B * N, -1, 1);
    rf_make_batch(x_t, target, t_model, x0, B, N, 42, 5, 0, 1);
    double worst = 0;
    for (int b = 0; b < B; b++) {
        double sigma = t_model[b] / 1000;
        CHECK(sigma > 0 && sigma < 1, "sigma %.17g outside (0, 1)", sigma);
        struct rng noise_rng;
        rng_init(&noise_rng, 42, 5, RNG_NOISE, (uint32_t)b);
        for (int i = 0; i < N; i++) {
            size_t k = (size_t)b * N + i;
            double e = rng_normal(&noise_rng);
            worst = fmax(worst, fabs(target[k] - (e - x0[k])));
            worst = fmax(worst, fabs(x_t[k] - ((1 - sigma) * x0[k] + sigma * e)));
        }
    }
    CHECK(worst <= 1e-14, "rf batch vs (1-sigma) x0 + sigma eps, eps - x0 in double: worst %.3g", worst);

    ddpm_make_batch(s, x_t, eps, t_index, t_model, x0, B, N, 42, 5);
    worst = 0;
    for (int b = 0; b < B; b++) {
        int t = t_index[b];
        CHECK(t >= 0 && t < N_STEPS, "t %d outside [0, 1000)", t);
        if (t < 0 || t >= N_STEPS) continue;
        for (int i = 0; i < N; i++) {
            size_t k = (size_t)b * N + i;
            worst = fmax(worst, fabs(x_t[k] - (sqrt(ref_abar[t]) * x0[k] + sqrt(1 - ref_abar[t]) * eps[k])));
        }
    }
    CHECK(worst <= 1e-14, "ddpm batch vs sqrt(abar) x0 + sqrt(1-abar) eps in double: worst %.3g", worst);
}

static void test_rf_loss_gradient(void)
{
    enum { B = 3, C = 2, C_OUT = 3, HW = 4 };
    real out[B * C_OUT * HW], target[B * C * HW], d_out[B * C_OUT * HW], scratch[B * C_OUT * HW];
    fill_uniform(out, B * C_OUT * HW, -2, 2);
    fill_uniform(target, B * C * HW, -2, 2);
    rf_loss(d_out, out, target, B, C, C_OUT, HW);
    double worst = 0;
    for (int o = 0; o < B * C_OUT * HW; o++) {
        real saved = out[o];
        out[o] = saved + FD_STEP;
        double plus = rf_loss(scratch, out, target, B, C, C_OUT, HW);
        out[o] = saved - FD_STEP;
        double minus = rf_loss(scratch, out, target, B, C, C_OUT, HW);
        out[o] = saved;
        worst = fmax(worst, rel_error(d_out[o], (plus - minus) / (2 * FD_STEP)));
    }
    CHECK(worst <= FD_TOLERANCE, "rf_loss gradient vs central differences: worst %.3g", worst);
}

// ---- Ancestral step -----------------------------------------------------------------------------

static void test_step_exact(const struct ddpm_schedule *s)
{
    const double x = 0.7, eps_hat = -0.35;
    const int ks[] = {0, 1, 50, 999};
    const real vs[] = {-1, -0.25, 1};
    for (size_t i = 0; i < sizeof ks / sizeof *ks; i++) {
        int k = ks[i];
        double x0_hat = x / sqrt(ref_abar[k]) - sqrt(1 / ref_abar[k] - 1) * eps_hat;
        double coef1 = ref_beta[k] * sqrt(ref_abar_prev[k]) / (1 - ref_abar[k]);
        double coef2 = (1 - ref_abar_prev[k]) * sqrt(1 - ref_beta[k]) / (1 - ref_abar[k]);
        double mean = coef1 * x0_hat + coef2 * x;
        double log_post = log(k == 0 ? ref_post_var[1] : ref_post_var[k]);
        for (size_t j = 0; j < sizeof vs / sizeof *vs; j++) {
            real xr = x, er = eps_hat, z = 1;
            ddpm_step(s, k, &xr, &er, &vs[j], &z, 1);
            double frac = (vs[j] + 1) / 2, sigma = exp(0.5 * (frac * log(ref_beta[k]) + (1 - frac) * log_post));
            double want = mean + (k > 0 ? sigma : 0);
            CHECK(fabs(xr - want) <= 1e-12, "step k %d v %g: %.17g, want %.17g", k, vs[j], xr, want);
        }
        real xr = x, er = eps_hat, z = 1;
        ddpm_step(s, k, &xr, &er, NULL, &z, 1);
        double want = mean + (k > 0 ? exp(0.5 * log_post) : 0);
        CHECK(fabs(xr - want) <= 1e-12, "step k %d fixed variance: %.17g, want %.17g", k, xr, want);
    }
}

int main(void)
{
    rng_init(&test_rng, 7, 0, RNG_TEST, 1);
    reference_schedule();
    struct ddpm_schedule s;
    if (ddpm_schedule_linear(&s, N_STEPS) < 0) {
        fprintf(stderr, "ddpm_schedule_linear: %s\n", err_message());
        return 1;
    }
    test_vb_reference(&s);
    test_hybrid_gradient(&s);
    test_batches_exact(&s);
    test_rf_loss_gradient();
    test_step_exact(&s);
    ddpm_schedule_free(&s);
    return test_summary("f64_diffusion");
}
