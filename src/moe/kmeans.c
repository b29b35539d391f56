// K-means routing ("implicit guidance", ROUTERS.md 3.5; paper Tables 1 and 8): E_r centroids,
// buffers rather than parameters, set to E_r distinct routed tokens of the first training batch;
// each routed token goes to its nearest centroid (squared Euclidean distance, ties to the lower
// index) with gate 1; after every training forward that may update buffers each centroid becomes
// the mean of the tokens it received (unchanged if none). No gradient, no auxiliary loss; frozen
// at inference. Before any training the centroids are 0, so every routed token goes to expert 0.
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
};

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

// assigned[n] = argmin_e ||x_n - c_e||^2 (ties to the lower index), -1 for unrouted tokens; x [N, D].
static void assign(const struct kmeans *r, int *assigned, const real *x, const int *routed, int N, int T, int E,
                   int D)
{
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        if (!routed[n / T]) {
            assigned[n] = -1;
            continue;
        }
        const real *xn = x + (size_t)n * D;
        int best = 0;
        double best_distance = 0;
        for (int e = 0; e < E; e++) {
            const real *c = r->centroids + (size_t)e * D;
            double distance = 0;
            for (int d = 0; d < D; d++) {
                double diff = (double)xn[d] - (double)c[d];
                distance += diff * diff;
            }
            if (e == 0 || distance < best_distance) {
                best = e;
                best_distance = distance;
            }
        }
        assigned[n] = best;
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
    for (int e = 0; e < E; e++)
        for (int d = 0; r->count[e] > 0 && d < D; d++)
            r->centroids[(size_t)e * D + d] = (real)(r->sums[(size_t)e * D + d] / r->count[e]);
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
        assign(r, r->assigned + token, x + token * D, routed + first, samples * T, T, E, D);
    }
}

static void km_plan(struct router_context *L, const real *x, const int *routed, int B, int T)
{
    struct kmeans *r = L->router_state;
    int N = B * T, E = L->spec.routed, D = L->D;
    int may_update = L->training && L->update_buffers;   // frozen at inference and in gradient checks
    int pool_tokens = pool_group_samples(L, B) * T;
    if (may_update && r->initialised[0] == 0) initialise_groups(L, x, routed, B, T);
    else assign(r, r->assigned, x, routed, N, T, E, D);
    for (int n = 0; n < N; n++)
        if (r->assigned[n] >= 0) plan_add(&L->plan, r->assigned[n], n, KMEANS_GATE);
    // Pool groups (moe/pool.h): the first group's tokens alone update the centroids, as replicas
    // with per-rank pools keep rank 0's.
    if (may_update && r->initialised[0] != 0) update_centroids(L, x, pool_tokens, E, D);
    if (may_update) {   // a pool per rank: replicas keep rank 0's centroids
        pool_share_buffer(L, r->centroids, (size_t)E * D);
        pool_share_buffer(L, r->initialised, 1);
    }
}

// The gate is the constant 1 and nearest-centroid selection is piecewise constant: the router
// sends no gradient anywhere and has no auxiliary loss (ROUTERS.md 3.5).
static void km_backward(struct router_context *L, const real *x, const int *routed, int B, int T, real *d_x)
{
    (void)L, (void)x, (void)routed, (void)B, (void)T, (void)d_x;
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
    .add_params = km_add_params,
    .bind = km_bind,
    .max_slots = km_max_slots,
    .layout = km_layout,
    .plan = km_plan,
    .backward = km_backward,
    .destroy = router_free_state,
};
