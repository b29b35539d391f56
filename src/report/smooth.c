// Exponential moving average in training steps (see smooth.h).
#include "report/smooth.h"

#include <math.h>

enum { DEFAULT_TAU_FRACTION = 20 };

void smooth_in_steps(const double *steps, const double *values, int n, double tau, double *out)
{
    double mean = n > 0 ? values[0] : 0;
    for (int i = 0; i < n; i++) {
        double keep = i ? exp(-(steps[i] - steps[i - 1]) / tau) : 1;
        mean = keep * mean + (1 - keep) * values[i];
        out[i] = mean;
    }
}

double smooth_default_tau(double last_step)
{
    double tau = last_step / DEFAULT_TAU_FRACTION;
    return tau >= 1 ? tau : 1;
}
