// Inception-style score and k-NN precision / recall. Squared distances are |a|^2 + |b|^2 - 2 a.b
// with the dot products of a block of rows against all points from one BLIS product, so n of a
// few thousand needs only a block of BLOCK_ROWS x n distances at a time.
#include "eval/sample_scores.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/blas.h"
#include "core/error.h"

enum { BLOCK_ROWS = 256 };

double inception_score(const real *probs, int n, int classes)
{
    double *marginal = calloc(classes, sizeof(double)), kl_sum = 0;
    if (!marginal) return NAN;
    for (int i = 0; i < n; i++)
        for (int c = 0; c < classes; c++) marginal[c] += probs[(size_t)i * classes + c] / (double)n;
    for (int i = 0; i < n; i++)
        for (int c = 0; c < classes; c++) {
            double p = probs[(size_t)i * classes + c];
            if (p > 0) kl_sum += p * (log(p) - log(marginal[c]));
        }
    free(marginal);
    return exp(kl_sum / n);
}

static void squared_norms(const real *x, int n, int d, double *out)
{
    for (int i = 0; i < n; i++) {
        double s = 0;
        for (int j = 0; j < d; j++) s += (double)x[(size_t)i * d + j] * x[(size_t)i * d + j];
        out[i] = s;
    }
}

// d2 [rows, n] of the rows q [rows, d] (norms qn) to x [n, d] (norms xn), clamped at 0.
static void block_distances(const real *q, const double *qn, int rows, const real *x, const double *xn, int n,
                            int d, real *dots, double *d2)
{
    gemm(NO_TRANS, TRANS, rows, n, d, 1, q, d, x, d, 0, dots, n);
#pragma omp parallel for schedule(static)
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < n; j++)
            d2[(size_t)r * n + j] = fmax(qn[r] + xn[j] - 2.0 * dots[(size_t)r * n + j], 0);
}

// radius2 [n]: squared distance of each point of x to its k-th nearest other point (the (k+1)-th
// smallest distance of its row, which includes the point itself at 0).
static void knn_radii(const real *x, const double *xn, int n, int d, int k, real *dots, double *d2, double *radius2)
{
    for (int start = 0; start < n; start += BLOCK_ROWS) {
        int rows = n - start < BLOCK_ROWS ? n - start : BLOCK_ROWS;
        block_distances(x + (size_t)start * d, xn + start, rows, x, xn, n, d, dots, d2);
#pragma omp parallel for schedule(static)
        for (int r = 0; r < rows; r++) {
            double best[PR_NEIGHBOURS + 1];
            int have = 0;
            for (int j = 0; j < n; j++) {
                double v = d2[(size_t)r * n + j];
                if (have == k + 1 && v >= best[k]) continue;
                int pos = have < k + 1 ? have++ : k;
                while (pos > 0 && best[pos - 1] > v) best[pos] = best[pos - 1], pos--;
                best[pos] = v;
            }
            radius2[start + r] = best[k];
        }
    }
}

// Fraction of q [m, d] within radius2 of at least one point of x [n, d].
static double coverage(const real *q, const double *qn, int m, const real *x, const double *xn,
                       const double *radius2, int n, int d, real *dots, double *d2)
{
    int inside = 0;
    for (int start = 0; start < m; start += BLOCK_ROWS) {
        int rows = m - start < BLOCK_ROWS ? m - start : BLOCK_ROWS;
        block_distances(q + (size_t)start * d, qn + start, rows, x, xn, n, d, dots, d2);
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < n; j++)
                if (d2[(size_t)r * n + j] <= radius2[j]) {
                    inside++;
                    break;
                }
    }
    return (double)inside / m;
}

int knn_precision_recall(const real *real_x, int n_real, const real *fake_x, int n_fake, int d, int k,
                         double *precision, double *recall)
{
    if (k < 1 || k > PR_NEIGHBOURS || n_real <= k || n_fake <= k)
        return err("precision/recall needs more than k = %d points in each set (have %d real, %d generated)", k,
                   n_real, n_fake);
    int widest = n_real > n_fake ? n_real : n_fake;
    double *rn = malloc(sizeof(double) * n_real), *fn = malloc(sizeof(double) * n_fake);
    double *r_rad = malloc(sizeof(double) * n_real), *f_rad = malloc(sizeof(double) * n_fake);
    real *dots = malloc(sizeof(real) * BLOCK_ROWS * widest);
    double *d2 = malloc(sizeof(double) * BLOCK_ROWS * widest);
    int rc = rn && fn && r_rad && f_rad && dots && d2 ? 0 : err("out of memory for precision/recall of %d points", widest);
    if (!rc) {
        squared_norms(real_x, n_real, d, rn);
        squared_norms(fake_x, n_fake, d, fn);
        knn_radii(real_x, rn, n_real, d, k, dots, d2, r_rad);
        knn_radii(fake_x, fn, n_fake, d, k, dots, d2, f_rad);
        *precision = coverage(fake_x, fn, n_fake, real_x, rn, r_rad, n_real, d, dots, d2);
        *recall = coverage(real_x, rn, n_real, fake_x, fn, f_rad, n_fake, d, dots, d2);
    }
    free(rn); free(fn); free(r_rad); free(f_rad); free(dots); free(d2);
    return rc;
}

double class_accuracy(const real *probs, const int *labels, int n, int classes)
{
    int hits = 0;
    for (int i = 0; i < n; i++) {
        const real *p = probs + (size_t)i * classes;
        int best = 0;
        for (int c = 1; c < classes; c++)
            if (p[c] > p[best]) best = c;
        hits += best == (labels ? labels[i] : i % classes);
    }
    return n > 0 ? (double)hits / n : 0;
}
