// Loss-curve smoothing in steps (report/smooth.h): on a decreasing series logged at few points and
// at many, the smoothed last point lies within the range of the last raw points (a weight per
// logged point would leave it near the starting loss), a fast-falling curve is not lagged (each
// smoothed point lies within the raw values around it), the ranking of two series at the end is
// kept, and the curve barely depends on log.every.
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

// Range of the raw values logged within `before` steps before and `after` steps after point i.
static void range_around(const double *steps, const double *v, int n, int i, double before, double after, double *lo,
                         double *hi)
{
    *lo = INFINITY, *hi = -INFINITY;
    for (int j = 0; j < n; j++)
        if (steps[j] >= steps[i] - before && steps[j] <= steps[i] + after) {
            if (v[j] < *lo) *lo = v[j];
            if (v[j] > *hi) *hi = v[j];
        }
}

static void test_few_points(void)
{
    // The case that broke a weight per logged point: 9 points of a 400-step run, from 1.0 to 0.3.
    double steps[FEW], v[FEW], s[FEW], lo, hi;
    unsigned state = 1;
    for (int i = 0; i < FEW; i++) steps[i] = 50.0 * i, v[i] = curve(steps[i], 0, 0.01, &state);
    double span = smooth_default_span(steps[FEW - 1]);
    CHECK_NEAR(span, 20, 1e-12, "default span: 1/20 of 400 steps");
    smooth_in_steps(steps, v, FEW, span, s);
    range_around(steps, v, FEW, FEW - 1, 100, 0, &lo, &hi);
    CHECK(s[FEW - 1] >= lo && s[FEW - 1] <= hi, "few points: smoothed %.4f outside the last raw [%.4f, %.4f]",
          s[FEW - 1], lo, hi);
    CHECK(s[FEW - 1] < 0.4, "few points: the smoothed end %.4f follows the data, not the start", s[FEW - 1]);
    smooth_in_steps(steps, v, FEW, 150, s);
    CHECK_NEAR(s[FEW - 1], (v[FEW - 2] + v[FEW - 1]) / 2, 1e-15, "span 150: the last point and the one 50 steps before");
}

static void test_no_lag(void)
{
    double steps[41], v[41], s[41], lo, hi;
    unsigned state = 3;
    for (int i = 0; i <= 40; i++) steps[i] = 10.0 * i, v[i] = curve(steps[i], 0, 0, &state);
    smooth_in_steps(steps, v, 41, 100, s);
    for (int i = 0; i <= 40; i++) {
        range_around(steps, v, 41, i, 50, 50, &lo, &hi);
        CHECK(s[i] >= lo && s[i] <= hi, "step %.0f: smoothed %.4f outside the raw values around it [%.4f, %.4f]", steps[i],
              s[i], lo, hi);
    }
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
    double span = smooth_default_span(steps[MANY - 1]), lo, hi;
    smooth_in_steps(steps, a, MANY, span, sa);
    smooth_in_steps(steps, b, MANY, span, sb);
    range_around(steps, a, MANY, MANY - 1, span, 0, &lo, &hi);
    CHECK(sa[MANY - 1] >= lo && sa[MANY - 1] <= hi, "many points: %.4f outside [%.4f, %.4f]", sa[MANY - 1], lo, hi);
    CHECK(sa[MANY - 1] > sb[MANY - 1], "ranking kept: %.4f vs %.4f", sa[MANY - 1], sb[MANY - 1]);
    CHECK(fabs(sa[MANY - 1] - 0.32) < 0.015, "smoothed end %.4f near the noiseless 0.32", sa[MANY - 1]);
    // The same run logged every 10 steps: nearly the same smoothed curve.
    double coarse_steps[MANY / 10], coarse[MANY / 10], smoothed[MANY / 10];
    for (int i = 0; i < MANY / 10; i++) coarse_steps[i] = steps[10 * i + 9], coarse[i] = a[10 * i + 9];
    smooth_in_steps(coarse_steps, coarse, MANY / 10, span, smoothed);
    CHECK(fabs(smoothed[MANY / 10 - 1] - sa[MANY - 1]) < 0.03, "log.every 10 vs 1 at the end: %.4f vs %.4f",
          smoothed[MANY / 10 - 1], sa[MANY - 1]);
    CHECK(fabs(smoothed[MANY / 20 - 1] - sa[MANY / 2 - 1]) < 0.03, "log.every 10 vs 1 half way: %.4f vs %.4f",
          smoothed[MANY / 20 - 1], sa[MANY / 2 - 1]);
}

int main(void)
{
    test_few_points();
    test_no_lag();
    test_many_points();
    return test_summary("test_smooth");
}
