// Top-k singular vectors by LAPACK (dgesdd, thin U) and their normalised overlaps.
#include "analysis/subspace.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"

enum { DGESDD_IWORK_PER_DIM = 8 };

// LAPACK's Fortran interface (liblapack-dev ships no C prototypes for it without LAPACKE).
void dgesdd_(const char *jobz, const int *m, const int *n, double *a, const int *lda, double *s, double *u,
             const int *ldu, double *vt, const int *ldvt, double *work, const int *lwork, int *iwork, int *info);

// U (column-major [rows, min]) of a column-major copy a [rows, cols]; a is destroyed.
static int thin_svd(double *a, int rows, int cols, double *singular, double *u)
{
    int lwork = -1, info = 0, small = rows < cols ? rows : cols, ldvt = small;
    double query;
    // dgesdd needs 8 min(m, n) integers of workspace (LAPACK documentation of IWORK).
    int *iwork = malloc(sizeof(int) * DGESDD_IWORK_PER_DIM * (size_t)small);
    if (!iwork) return err("out of memory for an svd of a [%d, %d] matrix", rows, cols);
    // With jobz 'O' and rows >= cols U overwrites a; 'S' keeps it simple: thin U and VT.
    double *vt = malloc(sizeof(double) * (size_t)small * cols);
    if (!vt) {
        free(iwork);
        return err("out of memory for an svd of a [%d, %d] matrix", rows, cols);
    }
    dgesdd_("S", &rows, &cols, a, &rows, singular, u, &rows, vt, &ldvt, &query, &lwork, iwork, &info);
    lwork = (int)query;
    double *work = info == 0 ? malloc(sizeof(double) * (size_t)lwork) : NULL;
    if (work) dgesdd_("S", &rows, &cols, a, &rows, singular, u, &rows, vt, &ldvt, work, &lwork, iwork, &info);
    free(work);
    free(vt);
    free(iwork);
    if (!work && info == 0) return err("out of memory for an svd of a [%d, %d] matrix", rows, cols);
    if (info != 0) return err("lapack dgesdd failed on a [%d, %d] matrix (info %d)", rows, cols, info);
    return 0;
}

int subspace_basis(const double *matrix, int rows, int cols, int k, double *basis)
{
    int small = rows < cols ? rows : cols;
    if (k < 1 || k > small) return err("k %d is outside [1, %d] for a [%d, %d] matrix", k, small, rows, cols);
    double *a = malloc(sizeof(double) * (size_t)rows * cols);
    double *u = malloc(sizeof(double) * (size_t)rows * small);
    double *singular = malloc(sizeof(double) * (size_t)small);
    int rc = a && u && singular ? 0 : err("out of memory for an svd of a [%d, %d] matrix", rows, cols);
    for (int i = 0; !rc && i < rows; i++)
        for (int j = 0; j < cols; j++) a[(size_t)j * rows + i] = matrix[(size_t)i * cols + j];
    if (!rc) rc = thin_svd(a, rows, cols, singular, u);
    // Column j of the column-major U is vector j, already contiguous.
    if (!rc) memcpy(basis, u, sizeof(double) * (size_t)k * rows);
    free(a);
    free(u);
    free(singular);
    return rc;
}

double subspace_similarity(const double *a, const double *b, int rows, int k)
{
    double sum = 0;
    for (int i = 0; i < k; i++)
        for (int j = 0; j < k; j++) {
            double dot = 0;
            for (int r = 0; r < rows; r++) dot += a[(size_t)i * rows + r] * b[(size_t)j * rows + r];
            sum += dot * dot;
        }
    return sum / k;
}

double subspace_mean_similarity(const double *bases, int E, int rows, int k_max, int k)
{
    double sum = 0;
    int pairs = 0;
    size_t stride = (size_t)k_max * rows;
    for (int a = 0; a < E; a++)
        for (int b = a + 1; b < E; b++, pairs++) sum += subspace_similarity(bases + a * stride, bases + b * stride, rows, k);
    return pairs ? sum / pairs : 0;
}
