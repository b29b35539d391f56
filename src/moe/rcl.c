// RCL: centroids m_j of the tokens routed to each expert, s_ij = cos(p_i, m_j) over the active
// experts, L = -(1/N_a) sum_i log softmax_j(s_ij / tau)[i]. Backward with
// G_ij = weight (q_ij - delta_ij) / (N_a tau), ROUTERS.md 3.9. Sums run in token order. With a
// global pool (moe/pool.h) the centroid sums and counts span every rank's tokens.
#include "moe/rcl.h"

#include <math.h>
#include <string.h>

#include "dist/comm.h"

#define COSINE_EPS 1e-12

static real norm_of(const real *v, int D)
{
    real s = 0;
    for (int d = 0; d < D; d++) s += v[d] * v[d];
    s = r_sqrt(s);
    return s > (real)COSINE_EPS ? s : (real)COSINE_EPS;
}

static real dot_of(const real *a, const real *b, int D)
{
    real s = 0;
    for (int d = 0; d < D; d++) s += a[d] * b[d];
    return s;
}

static void centroids(struct rcl_work *w, const real *x, const int *topk, const int *routed_token, int N,
                      int D, int E, int k)
{
    memset(w->centroid, 0, sizeof(real) * E * D);
    memset(w->count, 0, sizeof(int) * E);
    for (int n = 0; n < N; n++)
        for (int j = 0; routed_token[n] && j < k; j++) {
            int e = topk[(size_t)n * k + j];
            w->count[e]++;
            for (int d = 0; d < D; d++) w->centroid[(size_t)e * D + d] += x[(size_t)n * D + d];
        }
    if (w->global) {   // centroids of the whole global batch: sums and counts over ranks
        comm_sum_reals(w->centroid, (size_t)E * D);
        comm_sum_ints(w->count, E);
    }
    w->n_active = 0;
    for (int e = 0; e < E; e++) {
        if (!w->count[e]) continue;
        w->active[w->n_active++] = e;
        for (int d = 0; d < D; d++) w->centroid[(size_t)e * D + d] /= w->count[e];
    }
}

double rcl_forward(struct rcl_work *w, const real *x, const real *p, const int *topk,
                   const int *routed_token, int N, int D, int E, int k, double tau, double weight)
{
    centroids(w, x, topk, routed_token, N, D, E, k);
    int A = w->n_active;
    if (A < 2 || weight == 0) return 0;
    for (int e = 0; e < E; e++) {
        w->p_norm[e] = norm_of(p + (size_t)e * D, D);
        w->m_norm[e] = norm_of(w->centroid + (size_t)e * D, D);
    }
    double loss = 0;
    for (int a = 0; a < A; a++) {
        int i = w->active[a];
        double logits[A], max = -INFINITY, sum = 0;
        for (int b = 0; b < A; b++) {
            int j = w->active[b];
            logits[b] = dot_of(p + (size_t)i * D, w->centroid + (size_t)j * D, D) /
                        (w->p_norm[i] * w->m_norm[j]) / tau;
            max = fmax(max, logits[b]);
        }
        for (int b = 0; b < A; b++) sum += exp(logits[b] - max);
        for (int b = 0; b < A; b++) w->q[(size_t)a * E + b] = (real)(exp(logits[b] - max) / sum);
        loss -= logits[a] - max - log(sum);
    }
    return weight * loss / A;
}

void rcl_backward(struct rcl_work *w, real *d_p, real *d_x, const real *p, const int *topk,
                  const int *routed_token, int N, int D, int E, int k, double tau, double weight)
{
    int A = w->n_active;
    if (A < 2 || weight == 0) return;
    real d_m[E][D];   // gradient at each active centroid
    memset(d_m, 0, sizeof d_m);
    for (int a = 0; a < A; a++) {
        int i = w->active[a];
        const real *pi = p + (size_t)i * D;
        real d_ph[D];
        memset(d_ph, 0, sizeof d_ph);
        for (int b = 0; b < A; b++) {
            int j = w->active[b];
            real G = (real)(weight * (w->q[(size_t)a * E + b] - (a == b)) / (A * tau));
            const real *mj = w->centroid + (size_t)j * D;
            for (int d = 0; d < D; d++) {
                d_ph[d] += G * mj[d] / w->m_norm[j];
                d_m[j][d] += G * pi[d] / w->p_norm[i];
            }
        }
        // through p -> p / |p|
        real proj = dot_of(d_ph, pi, D) / w->p_norm[i];
        for (int d = 0; d < D; d++) d_p[(size_t)i * D + d] += (d_ph[d] - proj * pi[d] / w->p_norm[i]) / w->p_norm[i];
    }
    // A global loss's token share is summed over ranks, but the trainer averages gradients.
    real rank_scale = w->global ? (real)comm_size() : 1;
    for (int a = 0; a < A; a++) {   // through m -> m / |m|, then the mean over the expert's tokens
        int j = w->active[a];
        const real *mj = w->centroid + (size_t)j * D;
        real proj = dot_of(d_m[j], mj, D) / w->m_norm[j];
        for (int d = 0; d < D; d++)
            d_m[j][d] = (d_m[j][d] - proj * mj[d] / w->m_norm[j]) / w->m_norm[j] / w->count[j] * rank_scale;
    }
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++)
        for (int j = 0; routed_token[n] && j < k; j++) {
            int e = topk[(size_t)n * k + j];
            for (int d = 0; d < D; d++) d_x[(size_t)n * D + d] += d_m[e][d];
        }
}
