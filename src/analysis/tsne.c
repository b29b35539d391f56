// Exact t-SNE: affinities, PCA start, and gradient descent (scikit-learn's schedule: momentum 0.5
// during early exaggeration, then 0.8; gains +0.2 / x0.8 with a floor; learning rate
// max(N / exaggeration / 4, 50)).
#include "analysis/tsne.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

#define TSNE_ENTROPY_TOLERANCE 1e-5
#define TSNE_MIN_PROBABILITY 1e-12
#define TSNE_INITIAL_STD 1e-4
#define TSNE_MOMENTUM_EARLY 0.5
#define TSNE_MOMENTUM_LATE 0.8
#define TSNE_GAIN_STEP 0.2
#define TSNE_GAIN_DECAY 0.8
#define TSNE_MIN_GAIN 0.01
#define TSNE_MIN_LEARNING_RATE 50.0
#define TSNE_LEARNING_RATE_DIVISOR 4.0
enum { TSNE_BISECTION_STEPS = 100, TSNE_DIMS = 2 };

void dsyev_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w, double *work,
            const int *lwork, int *info);

// row [N] (squared distances from point i) -> conditional probabilities p_{j|i} with the
// Gaussian precision whose entropy is log(perplexity), by bisection.
static void calibrate_row(double *row, int N, int i, double perplexity)
{
    double target = log(perplexity), beta = 1, lo = 0, hi = INFINITY, nearest = INFINITY;
    for (int j = 0; j < N; j++)
        if (j != i && row[j] < nearest) nearest = row[j];
    double p[N];   // a few thousand points: tens of kilobytes of stack
    for (int step = 0; step < TSNE_BISECTION_STEPS; step++) {
        double sum = 0, weighted = 0;
        for (int j = 0; j < N; j++) {
            p[j] = j == i ? 0 : exp(-beta * (row[j] - nearest));   // shifted: no underflow at the nearest
            sum += p[j];
            weighted += p[j] * (row[j] - nearest);
        }
        double entropy = log(sum) + beta * weighted / sum;
        for (int j = 0; j < N; j++) p[j] /= sum;
        if (fabs(entropy - target) < TSNE_ENTROPY_TOLERANCE) break;
        if (entropy > target) lo = beta, beta = isinf(hi) ? 2 * beta : (beta + hi) / 2;
        else hi = beta, beta = (beta + lo) / 2;
    }
    memcpy(row, p, sizeof(double) * N);
}

// P [N, N] symmetric joint probabilities.
static int affinities(const float *x, int N, int D, double perplexity, float *P)
{
    double *conditional = malloc(sizeof(double) * (size_t)N * N);
    if (!conditional) return err("out of memory for the t-SNE affinities of %d points", N);
#pragma omp parallel for schedule(dynamic, 16)
    for (int i = 0; i < N; i++) {
        double *row = conditional + (size_t)i * N;
        for (int j = 0; j < N; j++) {
            double sum = 0;
            for (int d = 0; d < D; d++) {
                double diff = (double)x[(size_t)i * D + d] - x[(size_t)j * D + d];
                sum += diff * diff;
            }
            row[j] = sum;
        }
        calibrate_row(row, N, i, perplexity);
    }
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            double p = (conditional[(size_t)i * N + j] + conditional[(size_t)j * N + i]) / (2.0 * N);
            P[(size_t)i * N + j] = (float)(p > TSNE_MIN_PROBABILITY ? p : TSNE_MIN_PROBABILITY);
        }
    free(conditional);
    return 0;
}

// The top two principal axes of x (columns of the covariance's eigenvectors), sign fixed so the
// largest entry of each is positive; y [N, 2] = centred projections scaled to TSNE_INITIAL_STD.
static int pca_start(const float *x, int N, int D, double *y)
{
    double *mean = calloc((size_t)D, sizeof(double)), *cov = calloc((size_t)D * D, sizeof(double));
    double *eig = malloc(sizeof(double) * D), query;
    int lwork = -1, info = 0;
    if (!mean || !cov || !eig) return free(mean), free(cov), free(eig), err("out of memory for the t-SNE start");
    for (int i = 0; i < N; i++)
        for (int d = 0; d < D; d++) mean[d] += x[(size_t)i * D + d] / (double)N;
#pragma omp parallel for schedule(static)
    for (int a = 0; a < D; a++)
        for (int i = 0; i < N; i++) {
            double xa = x[(size_t)i * D + a] - mean[a];
            for (int b = 0; b <= a; b++) cov[(size_t)a * D + b] += xa * (x[(size_t)i * D + b] - mean[b]);
        }
    // Row-major lower triangle = column-major upper triangle.
    dsyev_("V", "U", &D, cov, &D, eig, &query, &lwork, &info);
    lwork = (int)query;
    double *work = malloc(sizeof(double) * (size_t)(lwork > 1 ? lwork : 1));
    if (work) dsyev_("V", "U", &D, cov, &D, eig, work, &lwork, &info);
    free(work);
    if (!work || info != 0) return free(mean), free(cov), free(eig), err("lapack dsyev failed on a %d-dimensional covariance (info %d)", D, info);
    for (int c = 0; c < TSNE_DIMS; c++) {
        const double *axis = cov + (size_t)(D - 1 - c) * D;   // eigenvalues ascend
        int largest = 0;
        for (int d = 1; d < D; d++)
            if (fabs(axis[d]) > fabs(axis[largest])) largest = d;
        double sign = axis[largest] < 0 ? -1 : 1;
        for (int i = 0; i < N; i++) {
            double sum = 0;
            for (int d = 0; d < D; d++) sum += (x[(size_t)i * D + d] - mean[d]) * axis[d];
            y[i * TSNE_DIMS + c] = sign * sum;
        }
    }
    double sq = 0, first_mean = 0;
    for (int i = 0; i < N; i++) first_mean += y[i * TSNE_DIMS] / N;
    for (int i = 0; i < N; i++) sq += (y[i * TSNE_DIMS] - first_mean) * (y[i * TSNE_DIMS] - first_mean) / N;
    double scale = sq > 0 ? TSNE_INITIAL_STD / sqrt(sq) : TSNE_INITIAL_STD;
    for (int i = 0; i < N * TSNE_DIMS; i++) y[i] *= scale;
    free(mean), free(cov), free(eig);
    return 0;
}

// grad [N, 2] of KL(P || Q) at y: 4 (exaggeration sum_j p_ij q'_ij (y_i - y_j)
// - sum_j q'_ij^2 (y_i - y_j) / Z), q'_ij = 1 / (1 + |y_i - y_j|^2), Z = sum q'. One pass; row
// sums in a fixed order.
static void gradient(const float *P, const double *y, int N, double exaggeration, double *grad, double *row_z)
{
#pragma omp parallel for schedule(static)
    for (int i = 0; i < N; i++) {
        double attract[TSNE_DIMS] = {0, 0}, repel[TSNE_DIMS] = {0, 0}, z = 0;
        const float *p = P + (size_t)i * N;
        for (int j = 0; j < N; j++) {
            if (j == i) continue;
            double dx = y[i * 2] - y[j * 2], dy = y[i * 2 + 1] - y[j * 2 + 1];
            double q = 1 / (1 + dx * dx + dy * dy);
            z += q;
            attract[0] += p[j] * q * dx, attract[1] += p[j] * q * dy;
            repel[0] += q * q * dx, repel[1] += q * q * dy;
        }
        row_z[i] = z;
        grad[i * 2] = exaggeration * attract[0], grad[i * 2 + 1] = exaggeration * attract[1];
        grad[N * 2 + i * 2] = repel[0], grad[N * 2 + i * 2 + 1] = repel[1];
    }
    double Z = 0;
    for (int i = 0; i < N; i++) Z += row_z[i];
    for (int i = 0; i < N * TSNE_DIMS; i++) grad[i] = 4 * (grad[i] - grad[N * TSNE_DIMS + i] / Z);
}

static void descend(const float *P, int N, const struct tsne_options *o, double *y, double *scratch)
{
    double *grad = scratch, *update = scratch + 2 * N * TSNE_DIMS, *gains = update + N * TSNE_DIMS;
    double *row_z = gains + N * TSNE_DIMS;
    double rate = N / o->exaggeration / TSNE_LEARNING_RATE_DIVISOR;
    rate = rate > TSNE_MIN_LEARNING_RATE ? rate : TSNE_MIN_LEARNING_RATE;
    for (int i = 0; i < N * TSNE_DIMS; i++) update[i] = 0, gains[i] = 1;
    for (int it = 0; it < o->iterations; it++) {
        int early = it < o->exaggeration_iterations;
        gradient(P, y, N, early ? o->exaggeration : 1, grad, row_z);
        double momentum = early ? TSNE_MOMENTUM_EARLY : TSNE_MOMENTUM_LATE;
        for (int i = 0; i < N * TSNE_DIMS; i++) {
            gains[i] = update[i] * grad[i] < 0 ? gains[i] + TSNE_GAIN_STEP : gains[i] * TSNE_GAIN_DECAY;
            gains[i] = gains[i] > TSNE_MIN_GAIN ? gains[i] : TSNE_MIN_GAIN;
            update[i] = momentum * update[i] - rate * gains[i] * grad[i];
            y[i] += update[i];
        }
    }
}

int tsne_embed(const float *x, int N, int D, const struct tsne_options *o, double *y)
{
    if (N <= 3 * o->perplexity) return err("t-SNE of %d points needs more than 3 x perplexity %g points", N, o->perplexity);
    float *P = malloc(sizeof(float) * (size_t)N * N);
    double *scratch = malloc(sizeof(double) * (size_t)N * (4 * TSNE_DIMS + 1));
    int rc = P && scratch ? 0 : err("out of memory for the t-SNE of %d points", N);
    if (!rc) rc = affinities(x, N, D, o->perplexity, P);
    if (!rc) rc = pca_start(x, N, D, y);
    if (!rc) descend(P, N, o, y, scratch);
    free(P);
    free(scratch);
    return rc;
}
