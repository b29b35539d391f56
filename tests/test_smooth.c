// Loss-curve smoothing in steps (report/smooth.h): on a decreasing series logged at few points
// and at many, the smoothed last point lies within the range of the last raw points (a weight per
// logged point would leave it near the starting loss), the ranking of two series at the end is
// kept, the curve barely depends on log.every, and the first point is the raw first value.
#include "check.h"
#include "report/smooth.h"

#include <math.h>

enum { FEW = 9, MANY = 2000 };

// A training-loss-like curve: 0.3 + 0.7 exp(-step / 80), with deterministic noise of +-amplitude.
static double curve(double step, double offset, double amplitude, unsigned *state)
{
    *state = *state * 1664525u + 1013904223u;
    double noise = ((*state >> 8) / (double)(1u << 24) - 0.5) * 2 * amplitude;
    return 0.3 + offset + 0.7 * exp(-step / 80) + noise;
}

static void range_of_tail(const double *steps, const double *v, int n, double span, double *lo, double *hi)
{
    *lo = INFINITY, *hi = -INFINITY;
    for (int i = n - 1; i >= 0 && steps[n - 1] - steps[i] <= span; i--) {
        if (v[i] < *lo) *lo = v[i];
        if (v[i] > *hi) *hi = v[i];
    }
}

static void test_few_points(void)
{
    // The case that broke the old smoothing: 9 points of a 400-step run, from 1.0 to 0.3.
    double steps[FEW], v[FEW], s[FEW], lo, hi;
    unsigned state = 1;
    for (int i = 0; i < FEW; i++) steps[i] = 50.0 * i, v[i] = curve(steps[i], 0, 0.01, &state);
    double tau = smooth_default_tau(steps[FEW - 1]);
    CHECK_NEAR(tau, 20, 1e-12, "default time constant: 1/20 of 400 steps");
    smooth_in_steps(steps, v, FEW, tau, s);
    range_of_tail(steps, v, FEW, 100, &lo, &hi);
    CHECK(s[FEW - 1] >= lo && s[FEW - 1] <= hi, "few points: smoothed %.4f outside the last raw [%.4f, %.4f]",
          s[FEW - 1], lo, hi);
    CHECK(s[0] == v[0], "first point is the raw value");
}

static void test_many_points(void)
{
    static double steps[MANY], a[MANY], b[MANY], sa[MANY], sb[MANY];
    unsigned state = 7;
    for (int i = 0; i < MANY; i++) {
        steps[i] = i;
        a[i] = curve(i, 0.02, 0.05, &state);   // the worse run: 0.02 above, noise 2.5 times larger
        b[i] = curve(i, 0.0, 0.05, &state);
    }
    double tau = smooth_default_tau(steps[MANY - 1]), lo, hi;
    smooth_in_steps(steps, a, MANY, tau, sa);
    smooth_in_steps(steps, b, MANY, tau, sb);
    range_of_tail(steps, a, MANY, 3 * tau, &lo, &hi);
    CHECK(sa[MANY - 1] >= lo && sa[MANY - 1] <= hi, "many points: %.4f outside [%.4f, %.4f]", sa[MANY - 1], lo, hi);
    CHECK(sa[MANY - 1] > sb[MANY - 1], "ranking kept: %.4f vs %.4f", sa[MANY - 1], sb[MANY - 1]);
    CHECK(fabs(sa[MANY - 1] - 0.32) < 0.01, "smoothed end %.4f near the noiseless 0.32", sa[MANY - 1]);
    // The same run logged every 50 steps: nearly the same smoothed end.
    double coarse_steps[MANY / 50], coarse[MANY / 50], smoothed[MANY / 50];
    for (int i = 0; i < MANY / 50; i++) coarse_steps[i] = steps[50 * i + 49], coarse[i] = a[50 * i + 49];
    smooth_in_steps(coarse_steps, coarse, MANY / 50, tau, smoothed);
    CHECK(fabs(smoothed[MANY / 50 - 1] - sa[MANY - 1]) < 0.02, "log.every 50 vs 1: %.4f vs %.4f",
          smoothed[MANY / 50 - 1], sa[MANY - 1]);
}

int main(void)
{
    test_few_points();
    test_many_points();
    return test_summary("test_smooth");
}
