// Subspace similarity of singular vectors (LoRA, arXiv 2106.09685 Eq. 4; ROUTERS.md 4.1): the
// top-k left singular vectors of a matrix span a k-dimensional subspace of its row space R^rows;
// two such subspaces compare as phi = ||Ua^T Ub||_F^2 / k, 1 when they coincide, 0 when they are
// orthogonal, about k/rows for random subspaces. SVDs by LAPACK dgesdd in double.
#ifndef PROMOE_SUBSPACE_H
#define PROMOE_SUBSPACE_H

// basis [k, rows] (vector j contiguous, by decreasing singular value) = the top-k left singular
// vectors of matrix [rows, cols] (row-major); k <= min(rows, cols). Errors name what failed.
int subspace_basis(const double *matrix, int rows, int cols, int k, double *basis);

// phi of the first k vectors of two bases a, b [k_max, rows] (k <= k_max).
double subspace_similarity(const double *a, const double *b, int rows, int k);

// Mean phi over the E(E-1)/2 unordered pairs of bases [E][k_max, rows] (E >= 2).
double subspace_mean_similarity(const double *bases, int E, int rows, int k_max, int k);

#endif
