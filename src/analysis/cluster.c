// Lloyd's k-means over float tokens with double centroids.
#include "analysis/cluster.h"

#include <float.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

static int nearest(const float *token, const double *centroids, int K, int D)
{
    int best = 0;
    double best_distance = DBL_MAX;
    for (int k = 0; k < K; k++) {
        double sum = 0;
        for (int d = 0; d < D; d++) {
            double diff = token[d] - centroids[(size_t)k * D + d];
            sum += diff * diff;
        }
        if (sum < best_distance) best_distance = sum, best = k;
    }
    return best;
}

// Centroids as the means of their tokens; an empty cluster keeps its centroid.
// sums [K, D] is scratch.
static void update_centroids(const float *tokens, const int *assign, int N, int D, int K, double *centroids, int *counts,
                             double *sums)
{
    memset(sums, 0, sizeof(double) * K * D);
    memset(counts, 0, sizeof(int) * K);
    for (int i = 0; i < N; i++) {
        counts[assign[i]]++;
        for (int d = 0; d < D; d++) sums[(size_t)assign[i] * D + d] += tokens[(size_t)i * D + d];
    }
    for (int k = 0; k < K; k++)
        for (int d = 0; d < D && counts[k]; d++) centroids[(size_t)k * D + d] = sums[(size_t)k * D + d] / counts[k];
}

int cluster_kmeans(const float *tokens, int N, int D, int K, int max_iterations, int *assign)
{
    if (K < 1 || K > N) return err("k-means: %d clusters for %d tokens", K, N);
    double *centroids = malloc(sizeof(double) * (size_t)K * D);
    double *sums = malloc(sizeof(double) * (size_t)K * D);
    int *counts = malloc(sizeof(int) * K);
    if (!centroids || !sums || !counts) {
        free(centroids), free(sums), free(counts);
        return err("out of memory for %d k-means centroids", K);
    }
    for (int k = 0; k < K; k++)
        for (int d = 0; d < D; d++) centroids[(size_t)k * D + d] = tokens[(size_t)((long long)k * N / K) * D + d];
    for (int i = 0; i < N; i++) assign[i] = -1;
    int iteration = 0, changed = 1;
    while (changed && iteration < max_iterations) {
        changed = 0;
#pragma omp parallel for schedule(static) reduction(| : changed)
        for (int i = 0; i < N; i++) {
            int k = nearest(tokens + (size_t)i * D, centroids, K, D);
            changed |= k != assign[i];
            assign[i] = k;
        }
        update_centroids(tokens, assign, N, D, K, centroids, counts, sums);
        iteration++;
    }
    free(centroids), free(sums), free(counts);
    return iteration;
}
