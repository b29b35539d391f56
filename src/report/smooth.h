// Smoothing of a logged curve in training steps, not in logged points: an exponential moving
// average whose per-point decay is exp(-(steps since the previous point) / tau). The smoothed value
// at a point is a weighted mean of the raw values up to it (weights summing to 1, the first value's
// weight fading as exp(-(steps since it) / tau)), so it lies within the range of the raw values of
// the last few tau steps, and a curve is smoothed alike whatever log.every was.
#ifndef PROMOE_REPORT_SMOOTH_H
#define PROMOE_REPORT_SMOOTH_H

// out [n] from values [n] at increasing steps [n]; tau in steps (> 0). out may alias values.
void smooth_in_steps(const double *steps, const double *values, int n, double tau, double *out);

// The default time constant of a curve ending at last_step: 1/20 of it, at least 1 step.
double smooth_default_tau(double last_step);

#endif
