// Inter/intra-class distances of tokens, centroid and pairwise forms.
#include "analysis/separation.h"

#include <math.h>
#include <stdlib.h>

#include "core/error.h"

static int check_classes(const int *classes, int N, int C, int *present)
{
    int *count = calloc((size_t)C, sizeof(int));
    if (!count) return err("out of memory counting %d classes", C);
    for (int i = 0; i < N; i++) {
        if (classes[i] < 0 || classes[i] >= C) {
            free(count);
            return err("token %d has class %d outside [0, %d)", i, classes[i], C);
        }
        count[classes[i]]++;
    }
    *present = 0;
    for (int c = 0; c < C; c++) *present += count[c] > 0;
    free(count);
    if (*present < 2) return err("class separation needs tokens of at least 2 classes, got %d", *present);
    return 0;
}

static double distance(const double *a, const double *b, int D)
{
    double sum = 0;
    for (int d = 0; d < D; d++) sum += (a[d] - b[d]) * (a[d] - b[d]);
    return sqrt(sum);
}

// centroids [C, D] and counts [C] of the tokens.
static void class_centroids(const float *tokens, const int *classes, int N, int D, int C, double *centroids, int *counts)
{
    for (int c = 0; c < C; c++) counts[c] = 0;
    for (size_t i = 0; i < (size_t)C * D; i++) centroids[i] = 0;
    for (int i = 0; i < N; i++) {
        counts[classes[i]]++;
        for (int d = 0; d < D; d++) centroids[(size_t)classes[i] * D + d] += tokens[(size_t)i * D + d];
    }
    for (int c = 0; c < C; c++)
        for (int d = 0; d < D && counts[c]; d++) centroids[(size_t)c * D + d] /= counts[c];
}

static void finish(struct class_separation *out, double inter, double intra)
{
    out->inter = inter;
    out->intra = intra;
    out->ratio = intra > 0 ? inter / intra : NAN;
}

int separation_centroid(const float *tokens, const int *classes, int N, int D, int C, struct class_separation *out)
{
    int present;
    if (check_classes(classes, N, C, &present) < 0) return -1;
    double *centroids = malloc(sizeof(double) * (size_t)C * D), *token = malloc(sizeof(double) * D);
    int *counts = malloc(sizeof(int) * C);
    if (!centroids || !token || !counts) {
        free(centroids), free(token), free(counts);
        return err("out of memory for %d class centroids", C);
    }
    class_centroids(tokens, classes, N, D, C, centroids, counts);
    double intra = 0, inter = 0;
    for (int i = 0; i < N; i++) {
        for (int d = 0; d < D; d++) token[d] = tokens[(size_t)i * D + d];
        intra += distance(token, centroids + (size_t)classes[i] * D, D);
    }
    int pairs = 0;
    for (int a = 0; a < C; a++)
        for (int b = a + 1; b < C; b++)
            if (counts[a] && counts[b]) {
                inter += distance(centroids + (size_t)a * D, centroids + (size_t)b * D, D);
                pairs++;
            }
    finish(out, inter / pairs, intra / N);
    free(centroids), free(token), free(counts);
    return 0;
}

int separation_pairwise(const float *tokens, const int *classes, int N, int D, int C, struct class_separation *out)
{
    int present;
    if (check_classes(classes, N, C, &present) < 0) return -1;
    double *same = calloc((size_t)N, sizeof(double)), *other = calloc((size_t)N, sizeof(double));
    long long *n_same = calloc((size_t)N, sizeof(long long));
    if (!same || !other || !n_same) {
        free(same), free(other), free(n_same);
        return err("out of memory for pairwise distances of %d tokens", N);
    }
    // Row sums in parallel, each in a fixed order; then rows in order: thread-independent.
#pragma omp parallel for schedule(dynamic, 16)
    for (int i = 0; i < N; i++)
        for (int j = i + 1; j < N; j++) {
            double sum = 0;
            for (int d = 0; d < D; d++) {
                double diff = (double)tokens[(size_t)i * D + d] - tokens[(size_t)j * D + d];
                sum += diff * diff;
            }
            if (classes[i] == classes[j]) same[i] += sqrt(sum), n_same[i]++;
            else other[i] += sqrt(sum);
        }
    double intra = 0, inter = 0;
    long long same_pairs = 0, all_pairs = (long long)N * (N - 1) / 2;
    for (int i = 0; i < N; i++) intra += same[i], inter += other[i], same_pairs += n_same[i];
    long long other_pairs = all_pairs - same_pairs;
    finish(out, inter / other_pairs, same_pairs ? intra / same_pairs : 0);
    free(same), free(other), free(n_same);
    return 0;
}
