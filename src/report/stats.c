// Mean and Student-t 95% interval over seeds. The quantiles are those of the standard t table
// (e.g. NIST/SEMATECH e-Handbook 1.3.6.7.2), two-sided 95% = upper 0.975 quantile.
#include "report/stats.h"

#include <math.h>

#include "core/error.h"

// t(0.975, df) for df = 1..30.
static const double t975_small[] = {
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201,  2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080,  2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
};
enum { T975_SMALL_COUNT = sizeof t975_small / sizeof t975_small[0] };

// Larger degrees of freedom, ascending; the last is the normal limit.
static const struct {
    int df;
    double t;
} t975_large[] = {{40, 2.021}, {60, 2.000}, {120, 1.980}, {1000000000, 1.960}};
enum { T975_LARGE_COUNT = sizeof t975_large / sizeof t975_large[0] };

double stats_t975(int df)
{
    if (df < 1) BUG("t quantile of %d degrees of freedom", df);
    if (df <= T975_SMALL_COUNT) return t975_small[df - 1];
    double t = t975_small[T975_SMALL_COUNT - 1];
    for (int i = 0; i < T975_LARGE_COUNT && t975_large[i].df <= df; i++) t = t975_large[i].t;
    return t;
}

void stats_mean_ci95(const double *values, int n, double *mean, double *half)
{
    if (n < 1) BUG("mean of %d values", n);
    double sum = 0;
    for (int i = 0; i < n; i++) sum += values[i];
    *mean = sum / n;
    *half = 0;
    if (n == 1) return;
    double squares = 0;
    for (int i = 0; i < n; i++) squares += (values[i] - *mean) * (values[i] - *mean);
    double sd = sqrt(squares / (n - 1));
    *half = stats_t975(n - 1) * sd / sqrt((double)n);
}
