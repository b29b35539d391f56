// K-means routing ("implicit guidance", ROUTERS.md 3.5; paper Tables 1 and 8): E_r centroids,
// buffers rather than parameters, set to E_r distinct routed tokens of the first training batch;
// each routed token goes to its nearest centroid (squared Euclidean distance, ties to the lower
// index) with gate 1; after every training forward that may update buffers each centroid becomes
// the mean of the tokens it received (unchanged if none). No gradient, no auxiliary loss; frozen
// at inference. Before any training the centroids are 0, so every routed token goes to expert 0.
// Options (3.5 [R]): model.moe.kmeans.distance cosine (d = 1 - cos(x, c), assignment by the least
// d^2); model.moe.kmeans.gate softmax (gate softmax(-d^2)[chosen], whose gradient reaches the
// tokens; centroids, being buffers, get none); model.moe.kmeans.momentum m (c <- m c + (1-m) mean).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/rng.h"
#include "dist/comm.h"
#include "moe/router.h"
#include "moe/pool.h"

// Gate of every routed entry [R]: there is no router parameter to train through it, and 1 keeps
// the expert output at the scale of the dense MLP's.
#define KMEANS_GATE 1
// Columns of the centroid update handled by one thread at a time: 16 reals are whole 64-byte lines
// of float centroids (and of the double sums), so with D a multiple of 16 no two threads write the
// same cache line.
#define KMEANS_DIM_BLOCK 16

struct kmeans {
    real *centroids;        // buffer [E, D]
    real *initialised;      // buffer [1]: 0 until a training forward drew the centroids, then 1
    int *assigned;          // [N] expert of each token of the last forward, -1 for unrouted tokens
    int *order;             // [N] routed token indices, partially shuffled by the initial draw
    int *count;             // [E] tokens assigned to each expert in the last forward
    double *sums;           // [E, D] sums of the assigned tokens (double: up to B*T terms)
    real *dist;             // [N, E] d^2 of each routed token to each centroid (squared Euclidean
                            // distance, or (1 - cos)^2)
    real *cosine;           // [N, E] cos(x_n, c_e) (cosine distance)
    real *prob;             // [N, E] softmax(-d^2) over the centroids (softmax gates)
    real *x_norm;           // [N] token norms clamped at COSINE_EPS (cosine distance)
    // The centroids each token was assigned with, for the backward (the update follows the
    // assignment): set 0 for every token, except at the first training forward with pool groups,
    // where group g drew its own (set g, tokens [g group_tokens, (g + 1) group_tokens)).
    real *used;             // [groups, E, D]
    real *used_norm;        // [groups, E] their norms clamped at COSINE_EPS (cosine distance)
    int own_sets, group_tokens;
};

#define COSINE_EPS 1e-12

static void buffer_name(char *out, size_t size, const char *prefix, const char *suffix)
{
    snprintf(out, size, "%s.%s", prefix, suffix);
}

static int km_add_params(struct router_context *L, struct param_table *t, const char *prefix)
{
    if (L->cfg->balance_weight != 0)
        return err("loss.balance.weight is %g but model.moe.router kmeans has no router scores to balance "
                   "(ROUTERS.md 3.5: load balancing off); set it to 0", L->cfg->balance_weight);
    if (!(L->router_state = calloc(1, sizeof(struct kmeans)))) return err("out of memory");
    char name[PARAM_NAME_MAX + 32];
    int64_t centroid_shape[2] = {L->spec.routed, L->D}, flag_shape[1] = {1};
    buffer_name(name, sizeof name, prefix, "kmeans_centroids");
    if (params_add(t, name, 2, centroid_shape, INIT_ZERO, 0, 0) < 0) return err("out of memory");
    buffer_name(name, sizeof name, prefix, "kmeans_initialised");
    if (params_add(t, name, 1, flag_shape, INIT_ZERO, 0, 0) < 0) return err("out of memory");
    return 0;
}

// Buffers only: the gradient buffer's slots for them stay unused (and zero).
static void km_bind(struct router_context *L, const struct param_table *t, const char *prefix, real *base, int grads)
{
    struct kmeans *r = L->router_state;
    char name[PARAM_NAME_MAX + 32];
    if (grads) return;
    buffer_name(name, sizeof name, prefix, "kmeans_centroids");
    r->centroids = base + params_find(t, name)->offset;
    buffer_name(name, sizeof name, prefix, "kmeans_initialised");
    r->initialised = base + params_find(t, name)->offset;
}

// Top-1: one slot per routed token.
static int km_max_slots(const struct router_context *L, int B, int T)
{
    (void)L;
    return B * T;
}

static void km_layout(struct router_context *L, struct arena *a, int B, int T)
{
    struct kmeans *r = L->router_state;
    size_t N = (size_t)B * T, E = L->spec.routed, D = L->D;
    r->assigned = arena_ints(a, N);
    r->order = arena_ints(a, N);
    r->count = arena_ints(a, E);
    r->sums = (double *)arena_reals(a, E * D * sizeof(double) / sizeof(real));
    r->dist = arena_reals(a, N * E);
    r->cosine = arena_reals(a, N * E);
    r->prob = arena_reals(a, N * E);
    r->x_norm = arena_reals(a, N);
    r->used = arena_reals(a, (size_t)pool_group_count(L, B) * E * D);
    r->used_norm = arena_reals(a, (size_t)pool_group_count(L, B) * E);
}

// What virtual slot `at` holds: its own position unless a swap moved something there.
static int moved_slot(const int *slot, const int *holds, int n_moved, int at)
{
    for (int m = 0; m < n_moved; m++)
        if (slot[m] == at) return holds[m];
    return at;
}

// Slot `at` now holds `value`; returns the new number of moved slots.
static int move_slot(int *slot, int *holds, int n_moved, int at, int value)
{
    for (int m = 0; m < n_moved; m++)
        if (slot[m] == at) {
            holds[m] = value;
            return n_moved;
        }
    slot[n_moved] = at;
    holds[n_moved] = value;
    return n_moved + 1;
}

// Centroids = E distinct routed tokens drawn uniformly (partial Fisher-Yates over the routed token
// positions, stream (seed, step, ROUTER, layer)) [P "randomly sampling tokens"]. A batch with fewer
// than E routed tokens cannot supply them: the draw waits for the next training batch. With a
// global pool the positions run over every rank's routed tokens in rank order (the single
// process's order), each rank copies the picks it holds and a sum over ranks fills the rest.
static void initialise(struct router_context *L, const real *x, const int *routed, int N, int T)
{
    struct kmeans *r = L->router_state;
    int E = L->spec.routed, D = L->D, n_routed = 0;
    for (int n = 0; n < N; n++)
        if (routed[n / T]) r->order[n_routed++] = n;
    int ranks = pool_is_global(L) ? comm_size() : 1, rank = ranks > 1 ? comm_rank() : 0;
    int per_rank[ranks], total = 0, first = 0;
    memset(per_rank, 0, sizeof per_rank);
    per_rank[rank] = n_routed;
    pool_sum_ints(L, per_rank, ranks);
    for (int q = 0; q < ranks; q++) total += per_rank[q], first += q < rank ? per_rank[q] : 0;
    if (total < E) return;
    // Fisher-Yates over virtual positions 0..total-1: only moved slots are stored (at most 2E).
    int slot[2 * E], holds[2 * E], n_moved = 0;
    struct rng g;
    rng_init(&g, L->seed, (uint64_t)L->step, RNG_ROUTER, (uint32_t)L->block);
    memset(r->centroids, 0, sizeof(real) * E * D);
    for (int i = 0; i < E; i++) {
        int j = i + (int)rng_below(&g, (uint32_t)(total - i));
        int at_i = moved_slot(slot, holds, n_moved, i), picked = moved_slot(slot, holds, n_moved, j);
        n_moved = move_slot(slot, holds, n_moved, j, at_i);
        if (picked >= first && picked < first + n_routed)
            memcpy(r->centroids + (size_t)i * D, x + (size_t)r->order[picked - first] * D, sizeof(real) * D);
    }
    pool_sum_reals(L, r->centroids, (size_t)E * D);
    r->initialised[0] = 1;
}

static double norm_clamped(const real *v, int D)
{
    double s = 0;
    for (int d = 0; d < D; d++) s += (double)v[d] * v[d];
    s = sqrt(s);
    return s > COSINE_EPS ? s : COSINE_EPS;
}

// d^2 of token xn to centroid e, in double: the squared Euclidean distance, or with cosine
// distance (1 - cos)^2, cos kept in *cosine.
static double distance(const real *centroids, const real *c_norm, const real *xn, double x_norm, int e, int D,
                       int cosine_distance, double *cosine)
{
    const real *c = centroids + (size_t)e * D;
    double sum = 0;
    if (!cosine_distance) {
        for (int d = 0; d < D; d++) {
            double diff = (double)xn[d] - (double)c[d];
            sum += diff * diff;
        }
        return sum;
    }
    for (int d = 0; d < D; d++) sum += (double)xn[d] * c[d];
    *cosine = sum / (x_norm * c_norm[e]);
    return (1 - *cosine) * (1 - *cosine);
}

// prob row [E] = softmax(-dist row) in double.
static void softmax_negative(real *prob, const real *dist, int E)
{
    double min = dist[0], sum = 0, p[E];
    for (int e = 1; e < E; e++) min = dist[e] < min ? dist[e] : min;
    for (int e = 0; e < E; e++) sum += p[e] = exp(min - (double)dist[e]);
    for (int e = 0; e < E; e++) prob[e] = (real)(p[e] / sum);
}

// assigned[n] = argmin_e d^2(x_n, c_e) (ties to the lower index), -1 for unrouted tokens; x [N, D].
// Rows of dist, cosine, prob and x_norm from row `row` on are this call's tokens; the centroids
// are kept as used set `set`.
static void assign(const struct kmeans *r, const struct config *cfg, int *assigned, const real *x, const int *routed,
                   int N, int T, int E, int D, size_t row, int set)
{
    int cosine_distance = cfg->moe_kmeans_distance == KMEANS_COSINE;
    real *used = r->used + (size_t)set * E * D, *c_norm = r->used_norm + (size_t)set * E;
    memcpy(used, r->centroids, sizeof(real) * E * D);
    for (int e = 0; cosine_distance && e < E; e++) c_norm[e] = (real)norm_clamped(used + (size_t)e * D, D);
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        if (!routed[n / T]) {
            assigned[n] = -1;
            continue;
        }
        const real *xn = x + (size_t)n * D;
        size_t at = (row + n) * E;
        double x_norm = cosine_distance ? norm_clamped(xn, D) : 0, best_distance = 0, cosine = 0;
        int best = 0;
        if (cosine_distance) r->x_norm[row + n] = (real)x_norm;
        for (int e = 0; e < E; e++) {
            double distance_e = distance(used, c_norm, xn, x_norm, e, D, cosine_distance, &cosine);
            r->dist[at + e] = (real)distance_e;
            r->cosine[at + e] = (real)cosine;
            if (e == 0 || distance_e < best_distance) {
                best = e;
                best_distance = distance_e;
            }
        }
        assigned[n] = best;
        if (cfg->moe_kmeans_gate == KMEANS_GATE_SOFTMAX) softmax_negative(r->prob + at, r->dist + at, E);
    }
}

// c_e <- mean of the tokens assigned to e in this forward, unchanged if none [P "replacing each
// with the mean of their currently assigned tokens"]; no momentum. Threads own column blocks and
// add tokens in ascending order, so the sums do not depend on the thread count. A global pool
// sums counts and sums over ranks first.
static void update_centroids(struct router_context *L, const real *x, int N, int E, int D)
{
    struct kmeans *r = L->router_state;
    memset(r->count, 0, sizeof(int) * E);
    for (int n = 0; n < N; n++)
        if (r->assigned[n] >= 0) r->count[r->assigned[n]]++;
#pragma omp parallel for schedule(static)
    for (int first = 0; first < D; first += KMEANS_DIM_BLOCK) {
        int last = first + KMEANS_DIM_BLOCK < D ? first + KMEANS_DIM_BLOCK : D;
        for (int e = 0; e < E; e++)
            for (int d = first; d < last; d++) r->sums[(size_t)e * D + d] = 0;
        for (int n = 0; n < N; n++) {
            int e = r->assigned[n];
            for (int d = first; e >= 0 && d < last; d++) r->sums[(size_t)e * D + d] += x[(size_t)n * D + d];
        }
    }
    pool_sum_ints(L, r->count, E);
    pool_sum_doubles(L, r->sums, (size_t)E * D);
    double m = L->cfg->moe_kmeans_momentum;
    for (int e = 0; e < E; e++)
        for (int d = 0; r->count[e] > 0 && d < D; d++) {
            real *c = &r->centroids[(size_t)e * D + d];
            double mean = r->sums[(size_t)e * D + d] / r->count[e];
            *c = m == 0 ? (real)mean : (real)(m * *c + (1 - m) * mean);
        }
}

// The first training forward: each pool group (moe/pool.h) draws centroids from its own tokens and
// assigns them with those, as each rank of per-rank pools does before replicas take rank 0's; so
// the groups run last to first and the first group's centroids (and flag) remain. One group: the
// draw from the whole batch.
static void initialise_groups(struct router_context *L, const real *x, const int *routed, int B, int T)
{
    struct kmeans *r = L->router_state;
    int E = L->spec.routed, D = L->D, P = pool_group_samples(L, B), last = pool_group_count(L, B) - 1;
    for (int g = last; g >= 0; g--) {
        int first = g * P, samples = B - first < P ? B - first : P;
        size_t token = (size_t)first * T;
        if (g < last) {   // undo the later group's draw: a group that cannot draw keeps zero centroids
            memset(r->centroids, 0, sizeof(real) * E * D);
            r->initialised[0] = 0;
        }
        initialise(L, x + token * D, routed + first, samples * T, T);
        assign(r, L->cfg, r->assigned + token, x + token * D, routed + first, samples * T, T, E, D, token, g);
    }
}

static void km_plan(struct router_context *L, const real *x, const int *routed, int B, int T)
{
    struct kmeans *r = L->router_state;
    int N = B * T, E = L->spec.routed, D = L->D;
    int may_update = L->training && L->update_buffers;   // frozen at inference and in gradient checks
    int pool_tokens = pool_group_samples(L, B) * T;
    r->group_tokens = pool_tokens;
    r->own_sets = may_update && r->initialised[0] == 0 && pool_group_count(L, B) > 1;
    if (may_update && r->initialised[0] == 0) initialise_groups(L, x, routed, B, T);
    else assign(r, L->cfg, r->assigned, x, routed, N, T, E, D, 0, 0);
    int softmax_gate = L->cfg->moe_kmeans_gate == KMEANS_GATE_SOFTMAX;
    for (int n = 0; n < N; n++) {
        int e = r->assigned[n];
        if (e >= 0) plan_add(&L->plan, e, n, softmax_gate ? r->prob[(size_t)n * E + e] : KMEANS_GATE);
    }
    // Pool groups (moe/pool.h): the first group's tokens alone update the centroids, as replicas
    // with per-rank pools keep rank 0's.
    if (may_update && r->initialised[0] != 0) update_centroids(L, x, pool_tokens, E, D);
    if (may_update) {   // a pool per rank: replicas keep rank 0's centroids
        pool_share_buffer(L, r->centroids, (size_t)E * D);
        pool_share_buffer(L, r->initialised, 1);
    }
}

// With gate 1 the router sends no gradient anywhere (nearest-centroid selection is piecewise
// constant; ROUTERS.md 3.5). With softmax gates g = p_e*, p = softmax(a), a_j = -d_j^2:
// dL/da_j = h p_e* (delta_je* - p_j), h = dL/dg; da_j/dx = -2 (x - c_j) (Euclidean) or
// 2 (1 - cos_j) (c_j/|c_j| - cos_j x/|x|) / |x| (cosine). Adds into d_x [B*T, D].
static void km_backward(struct router_context *L, const real *x, const int *routed, int B, int T, real *d_x)
{
    const struct kmeans *r = L->router_state;
    const struct routing_plan *p = &L->plan;
    int E = L->spec.routed, D = L->D, cosine_distance = L->cfg->moe_kmeans_distance == KMEANS_COSINE;
    (void)routed, (void)B, (void)T;
    if (L->cfg->moe_kmeans_gate != KMEANS_GATE_SOFTMAX) return;
    for (int e = 0; e < E; e++) {
#pragma omp parallel for schedule(static)
        for (int s = p->offset[e]; s < p->offset[e + 1]; s++) {   // top-1: one slot per token
            int n = p->token[s], set = r->own_sets ? n / r->group_tokens : 0;
            const real *xn = x + (size_t)n * D, *prob = r->prob + (size_t)n * E, *cosine = r->cosine + (size_t)n * E;
            const real *used = r->used + (size_t)set * E * D, *c_norm = r->used_norm + (size_t)set * E;
            real *dxn = d_x + (size_t)n * D;
            for (int j = 0; j < E; j++) {
                double d_a = (double)p->d_gate[s] * prob[e] * ((j == e) - (double)prob[j]);
                const real *c = used + (size_t)j * D;
                if (!cosine_distance) {
                    for (int d = 0; d < D; d++) dxn[d] += (real)(-2 * d_a * ((double)xn[d] - c[d]));
                    continue;
                }
                double scale = 2 * d_a * (1 - (double)cosine[j]) / r->x_norm[n];
                for (int d = 0; d < D; d++)
                    dxn[d] += (real)(scale * ((double)c[d] / c_norm[j] - cosine[j] * (double)xn[d] / r->x_norm[n]));
            }
        }
    }
}

// model.moe.router kmeans: one centroid per token.
static int km_check(const struct moe_spec *spec, const struct config *cfg)
{
    if (spec->active != 1)
        return err("model.moe.router kmeans routes each token to its nearest centroid: top-k must be 1, "
                   "model.moe.experts '%s' asks for %d", cfg->moe_experts, spec->active);
    return 0;
}

const struct router_ops router_kmeans = {
    .default_activation = ACTIVATION_SOFTMAX,
    .check = km_check,
    .aux = 0,
    .reads = ROUTER_READS_KMEANS,
    .add_params = km_add_params,
    .bind = km_bind,
    .max_slots = km_max_slots,
    .layout = km_layout,
    .plan = km_plan,
    .backward = km_backward,
    .destroy = router_free_state,
};
