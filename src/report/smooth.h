// Smoothing of a logged curve in training steps, not in logged points: a centred moving average
// over a span of steps. Each smoothed point is the mean of the raw values logged within span / 2
// steps of it on either side (one-sided at the ends of the curve), so the smoothed curve has no
// lag behind a falling loss, lies within the range of the raw values around each point, and means
// the same whatever log.every was.
#ifndef PROMOE_REPORT_SMOOTH_H
#define PROMOE_REPORT_SMOOTH_H

// out [n] from values [n] at increasing steps [n]; span in steps (> 0). out must not alias values.
void smooth_in_steps(const double *steps, const double *values, int n, double span, double *out);

// The default span of a curve ending at last_step: 1/20 of it, at least 1 step.
double smooth_default_span(double last_step);

#endif
