// Summary statistics of a table cell: the mean of the values of several seeds and the half-width
// of its two-sided 95% confidence interval, mean +- t(0.975, n - 1) * s / sqrt(n) with s the
// sample standard deviation (Student's t, as for a handful of seeds).
#ifndef PROMOE_REPORT_STATS_H
#define PROMOE_REPORT_STATS_H

// The 0.975 quantile of Student's t with df degrees of freedom (df >= 1); beyond the tabulated
// degrees of freedom, the value of the nearest smaller tabulated df (a slightly wider interval).
double stats_t975(int df);

// Mean of values[0..n) into *mean and the 95% half-width into *half (0 when n == 1). n >= 1.
void stats_mean_ci95(const double *values, int n, double *mean, double *half);

#endif
