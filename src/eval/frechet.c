// Frechet distance of two Gaussians via two symmetric eigen-decompositions: S1 = V L V^T gives
// S1^1/2 = V L^1/2 V^T, and M = S1^1/2 S2 S1^1/2 is symmetric PSD with tr(M^1/2) the sum of the
// square roots of its eigenvalues (equal to tr((S1 S2)^1/2), which scipy's sqrtm computes).
// Eigenvalues below zero are rounding and count as zero.
#include "eval/frechet.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

// LAPACK: eigenvalues (and vectors with jobz 'V') of a symmetric matrix, divide and conquer.
void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w,
             double *work, const int *lwork, int *iwork, const int *liwork, int *info);

// a [n, n] (symmetric, overwritten by the eigenvectors as columns when vectors) -> w [n].
static int eigen_symmetric(double *a, int n, double *w, int vectors)
{
    const char *jobz = vectors ? "V" : "N";
    int lwork = -1, liwork = -1, info = 0, iwork_query;
    double work_query;
    dsyevd_(jobz, "U", &n, a, &n, w, &work_query, &lwork, &iwork_query, &liwork, &info);
    if (info != 0) return err("LAPACK dsyevd workspace query failed (info %d)", info);
    lwork = (int)work_query;
    liwork = iwork_query;
    double *work = malloc(sizeof(double) * lwork);
    int *iwork = malloc(sizeof(int) * liwork);
    if (!work || !iwork) {
        free(work);
        free(iwork);
        return err("out of memory for an eigen-decomposition of size %d", n);
    }
    dsyevd_(jobz, "U", &n, a, &n, w, work, &lwork, iwork, &liwork, &info);
    free(work);
    free(iwork);
    if (info != 0) return err("LAPACK dsyevd did not converge (info %d) on a %dx%d covariance", info, n, n);
    return 0;
}

// c [n, n] = a [n, n] b [n, n].
static void matmul(const double *a, const double *b, double *c, int n)
{
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        double *row = c + (size_t)i * n;
        memset(row, 0, sizeof(double) * n);
        for (int k = 0; k < n; k++) {
            double aik = a[(size_t)i * n + k];
            for (int j = 0; j < n; j++) row[j] += aik * b[(size_t)k * n + j];
        }
    }
}

int frechet_distance(const double *mu1, const double *s1, const double *mu2, const double *s2, int d,
                     double *out)
{
    size_t dd = (size_t)d * d;
    double *v = malloc(sizeof(double) * dd), *root = malloc(sizeof(double) * dd);
    double *tmp = malloc(sizeof(double) * dd), *w = malloc(sizeof(double) * d);
    int rc = v && root && tmp && w ? 0 : err("out of memory for a Frechet distance of dimension %d", d);
    if (!rc) {
        memcpy(v, s1, sizeof(double) * dd);
        rc = eigen_symmetric(v, d, w, 1);
    }
    if (!rc) {
        // Column-major eigenvectors read row-major: v[k * d + i] is component i of vector k.
        for (int i = 0; i < d; i++)
            for (int j = 0; j < d; j++) {
                double s = 0;
                for (int k = 0; k < d; k++) s += v[(size_t)k * d + i] * sqrt(fmax(w[k], 0)) * v[(size_t)k * d + j];
                root[(size_t)i * d + j] = s;
            }
        matmul(root, s2, tmp, d);
        matmul(tmp, root, v, d);
        rc = eigen_symmetric(v, d, w, 0);
    }
    if (!rc) {
        double mean_term = 0, trace = 0, trace_root = 0;
        for (int i = 0; i < d; i++) {
            mean_term += (mu1[i] - mu2[i]) * (mu1[i] - mu2[i]);
            trace += s1[(size_t)i * d + i] + s2[(size_t)i * d + i];
            trace_root += sqrt(fmax(w[i], 0));
        }
        *out = fmax(mean_term + trace - 2 * trace_root, 0);
    }
    free(v);
    free(root);
    free(tmp);
    free(w);
    return rc;
}

void gaussian_fit(const real *x, int n, int d, double *mean, double *cov)
{
    for (int a = 0; a < d; a++) {
        double s = 0;
        for (int i = 0; i < n; i++) s += x[(size_t)i * d + a];
        mean[a] = s / n;
    }
#pragma omp parallel for schedule(dynamic)
    for (int a = 0; a < d; a++)
        for (int b = a; b < d; b++) {
            double s = 0;
            for (int i = 0; i < n; i++) s += (x[(size_t)i * d + a] - mean[a]) * (x[(size_t)i * d + b] - mean[b]);
            cov[(size_t)a * d + b] = cov[(size_t)b * d + a] = s / (n - 1);
        }
}
