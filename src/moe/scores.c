// Score activations, cosine row normalisation, top-k, and the load-balancing loss. Per-row loops;
// the balance loss sums over tokens in index order (determinism).
#include "moe/scores.h"

#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "dist/comm.h"
#include "nn/fastmath.h"

static void softmax_row(real *out, const real *z, int E)
{
    real max = z[0], sum = 0;
    for (int e = 1; e < E; e++) max = z[e] > max ? z[e] : max;
    for (int e = 0; e < E; e++) sum += out[e] = exp_fast(z[e] - max);
    for (int e = 0; e < E; e++) out[e] /= sum;
}

// d_z [E] = softmax Jacobian^T d_s: s * (d_s - <d_s, s>)
static void softmax_row_backward(real *d_z, const real *d_s, const real *s, int E)
{
    real dot = 0;
    for (int e = 0; e < E; e++) dot += d_s[e] * s[e];
    for (int e = 0; e < E; e++) d_z[e] = s[e] * (d_s[e] - dot);
}

void scores_activate(real *s, const real *z, int n, int E, int activation)
{
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        const real *zr = z + (size_t)i * E;
        real *sr = s + (size_t)i * E;
        if (activation == ACTIVATION_SOFTMAX) softmax_row(sr, zr, E);
        else if (activation == ACTIVATION_SIGMOID)
            for (int e = 0; e < E; e++) sr[e] = 1 / (1 + exp_fast(-zr[e]));
        else memcpy(sr, zr, sizeof(real) * E);
    }
}

void scores_activate_backward(real *d_z, const real *d_s, const real *s, int n, int E, int activation)
{
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        size_t o = (size_t)i * E;
        if (activation == ACTIVATION_SOFTMAX) softmax_row_backward(d_z + o, d_s + o, s + o, E);
        else if (activation == ACTIVATION_SIGMOID)
            for (int e = 0; e < E; e++) d_z[o + e] = d_s[o + e] * s[o + e] * (1 - s[o + e]);
        else memcpy(d_z + o, d_s + o, sizeof(real) * E);
    }
}

#define COSINE_EPS 1e-12

void normalise_rows(real *out, real *norms, const real *v, int n, int D)
{
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        real s = 0;
        for (int d = 0; d < D; d++) s += v[(size_t)i * D + d] * v[(size_t)i * D + d];
        s = r_sqrt(s);
        norms[i] = s > (real)COSINE_EPS ? s : (real)COSINE_EPS;
        for (int d = 0; d < D; d++) out[(size_t)i * D + d] = v[(size_t)i * D + d] / norms[i];
    }
}

void normalise_rows_backward(real *d_v, const real *d_hat, const real *v_hat, const real *norms, int n, int D)
{
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        const real *dh = d_hat + (size_t)i * D, *vh = v_hat + (size_t)i * D;
        real dot = 0;
        for (int d = 0; d < D; d++) dot += dh[d] * vh[d];
        for (int d = 0; d < D; d++) d_v[(size_t)i * D + d] += (dh[d] - dot * vh[d]) / norms[i];
    }
}

void topk_row(const real *s, int E, int k, int *index)
{
    for (int j = 0; j < k; j++) {
        int best = -1;
        for (int e = 0; e < E; e++) {
            int taken = 0;
            for (int q = 0; q < j; q++) taken |= index[q] == e;
            if (!taken && (best < 0 || s[e] > s[best])) best = e;
        }
        index[j] = best;
    }
}

// pi row: s itself for softmax scores, softmax(s) otherwise.
static void balance_probs(real *pi, const real *s, int E, int activation)
{
    if (activation == ACTIVATION_SOFTMAX) memcpy(pi, s, sizeof(real) * E);
    else softmax_row(pi, s, E);
}

// f_e = E * count_e / (N k) over routed tokens (of every rank when global); returns N.
static double balance_fractions(double *f, const int *topk, const int *routed_token, int n, int E, int k,
                                int global)
{
    double counted[E + 1];   // counts per expert, then the number of tokens
    memset(counted, 0, sizeof counted);
    for (int i = 0; i < n; i++) {
        if (!routed_token[i]) continue;
        counted[E] += 1;
        for (int j = 0; j < k; j++) counted[topk[(size_t)i * k + j]] += 1;
    }
    if (global) comm_sum_doubles(counted, (size_t)E + 1);
    double tokens = counted[E];
    for (int e = 0; e < E; e++) f[e] = tokens ? counted[e] * ((double)E / (tokens * k)) : 0;
    return tokens;
}

static double balance_loss_pool(const real *s, const int *topk, const int *routed_token, int n, int E, int k,
                                int activation, double weight, int global)
{
    double f[E], P[E];
    if (weight == 0) return 0;
    double tokens = balance_fractions(f, topk, routed_token, n, E, k, global);
    if (tokens == 0) return 0;
    memset(P, 0, sizeof P);
    real pi[E];
    for (int i = 0; i < n; i++) {
        if (!routed_token[i]) continue;
        balance_probs(pi, s + (size_t)i * E, E, activation);
        for (int e = 0; e < E; e++) P[e] += pi[e];
    }
    if (global) comm_sum_doubles(P, E);
    double loss = 0;
    for (int e = 0; e < E; e++) loss += f[e] * P[e] / tokens;
    return weight * loss;
}

static void balance_loss_backward_pool(real *d_s, const real *s, const int *topk, const int *routed_token,
                                      int n, int E, int k, int activation, double weight, int global)
{
    double f[E];
    if (weight == 0) return;
    double tokens = balance_fractions(f, topk, routed_token, n, E, k, global);
    if (tokens == 0) return;
    // the trainer averages rank gradients; a global loss's token share is summed instead
    double rank_scale = global ? comm_size() : 1;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        if (!routed_token[i]) continue;
        real d_pi[E], pi[E], d[E];
        for (int e = 0; e < E; e++) d_pi[e] = (real)(weight * f[e] / tokens * rank_scale);
        if (activation == ACTIVATION_SOFTMAX) {
            for (int e = 0; e < E; e++) d_s[(size_t)i * E + e] += d_pi[e];
            continue;
        }
        balance_probs(pi, s + (size_t)i * E, E, activation);
        softmax_row_backward(d, d_pi, pi, E);
        for (int e = 0; e < E; e++) d_s[(size_t)i * E + e] += d[e];
    }
}

// Each pool's loss with weight / pools: their mean (one pool: weight itself, bit for bit).
double balance_loss(const real *s, const int *topk, const int *routed_token, int n, int pool_tokens, int E,
                    int k, int activation, double weight, int global)
{
    if (n <= 0 || pool_tokens <= 0) return 0;
    int pools = (n + pool_tokens - 1) / pool_tokens;
    double loss = 0;
    for (int first = 0; first < n; first += pool_tokens) {
        int m = n - first < pool_tokens ? n - first : pool_tokens;
        loss += balance_loss_pool(s + (size_t)first * E, topk + (size_t)first * k, routed_token + first, m, E, k,
                                  activation, weight / pools, global);
    }
    return loss;
}

void balance_loss_backward(real *d_s, const real *s, const int *topk, const int *routed_token, int n,
                           int pool_tokens, int E, int k, int activation, double weight, int global)
{
    if (n <= 0 || pool_tokens <= 0) return;
    int pools = (n + pool_tokens - 1) / pool_tokens;
    for (int first = 0; first < n; first += pool_tokens) {
        int m = n - first < pool_tokens ? n - first : pool_tokens;
        balance_loss_backward_pool(d_s + (size_t)first * E, s + (size_t)first * E, topk + (size_t)first * k,
                                   routed_token + first, m, E, k, activation, weight / pools, global);
    }
}
