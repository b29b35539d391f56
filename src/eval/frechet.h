// Frechet distance between two Gaussians (the feature-space distance behind FID, here on the
// harness's own feature network, so never called FID):
//   d^2 = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1^1/2 S2 S1^1/2)^1/2),
// with the square roots from symmetric eigen-decompositions (LAPACK dsyevd), in double precision.
#ifndef PROMOE_FRECHET_H
#define PROMOE_FRECHET_H

#include "core/real.h"

// mu1, mu2 [d]; s1, s2 [d, d] symmetric positive semi-definite. *out = d^2 (clamped at 0).
// Fails (naming LAPACK's info) if an eigen-decomposition does not converge.
int frechet_distance(const double *mu1, const double *s1, const double *mu2, const double *s2, int d,
                     double *out);

// Mean [d] and unbiased covariance [d, d] (double) of the rows of x [n, d].
void gaussian_fit(const real *x, int n, int d, double *mean, double *cov);

#endif
