// Centred moving average in training steps (see smooth.h): a window [step - span/2, step + span/2]
// slides over the points with two indices and a running sum.
#include "report/smooth.h"

enum { DEFAULT_SPAN_FRACTION = 20 };

void smooth_in_steps(const double *steps, const double *values, int n, double span, double *out)
{
    double half = span / 2, sum = 0;
    int first = 0, last = 0;   // the window holds points [first, last)
    for (int i = 0; i < n; i++) {
        while (last < n && steps[last] <= steps[i] + half) sum += values[last++];
        while (steps[first] < steps[i] - half) sum -= values[first++];
        out[i] = sum / (last - first);
    }
}

double smooth_default_span(double last_step)
{
    double span = last_step / DEFAULT_SPAN_FRACTION;
    return span >= 1 ? span : 1;
}
