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
#include "moe/moe.h"

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

static int km_add_params(struct moe_layer *L, struct param_table *t, const char *prefix)
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
static void km_bind(struct moe_layer *L, const struct param_table *t, const char *prefix, real *base, int grads)
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
static int km_max_slots(const struct moe_layer *L, int B, int T)
{
    (void)L;
    return B * T;
}

static void km_layout(struct moe_layer *L, struct arena *a, int B, int T)
{
    struct kmeans *r = L->router_state;
    size_t N = (size_t)B * T, E = L->spec.routed, D = L->D;
    r->assigned = (int *)arena_reals(a, N);
    r->order = (int *)arena_reals(a, N);
    r->count = (int *)arena_reals(a, E);
    r->sums = (double *)arena_reals(a, E * D * sizeof(double) / sizeof(real));
}

// Centroids = E distinct routed tokens drawn uniformly (partial Fisher-Yates over the routed token
// indices, stream (seed, step, ROUTER, layer)) [P "randomly sampling tokens"]. A batch with fewer
// than E routed tokens cannot supply them: the draw waits for the next training batch.
static void initialise(struct moe_layer *L, const real *x, const int *routed, int N, int T)
{
    struct kmeans *r = L->router_state;
    int E = L->spec.routed, D = L->D, n_routed = 0;
    for (int n = 0; n < N; n++)
        if (routed[n / T]) r->order[n_routed++] = n;
    if (n_routed < E) return;
    struct rng g;
    rng_init(&g, L->seed, (uint64_t)L->step, RNG_ROUTER, (uint32_t)L->block);
    for (int i = 0; i < E; i++) {
        int j = i + (int)rng_below(&g, (uint32_t)(n_routed - i)), picked = r->order[j];
        r->order[j] = r->order[i];
        r->order[i] = picked;
        memcpy(r->centroids + (size_t)i * D, x + (size_t)picked * D, sizeof(real) * D);
    }
    r->initialised[0] = 1;
}

// assigned[n] = argmin_e ||x_n - c_e||^2 (ties to the lower index), -1 for unrouted tokens.
static void assign(struct kmeans *r, const real *x, const int *routed, int N, int T, int E, int D)
{
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        if (!routed[n / T]) {
            r->assigned[n] = -1;
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
        r->assigned[n] = best;
    }
}

// c_e <- mean of the tokens assigned to e in this forward, unchanged if none [P "replacing each
// with the mean of their currently assigned tokens"]; no momentum. Threads own column blocks and
// add tokens in ascending order, so the sums do not depend on the thread count.
static void update_centroids(struct kmeans *r, const real *x, int N, int E, int D)
{
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
        for (int e = 0; e < E; e++)
            for (int d = first; r->count[e] > 0 && d < last; d++)
                r->centroids[(size_t)e * D + d] = (real)(r->sums[(size_t)e * D + d] / r->count[e]);
    }
}

static void km_plan(struct moe_layer *L, const real *x, const int *routed, int B, int T)
{
    struct kmeans *r = L->router_state;
    int N = B * T, E = L->spec.routed, D = L->D;
    int may_update = L->training && L->update_buffers;   // frozen at inference and in gradient checks
    if (may_update && r->initialised[0] == 0) initialise(L, x, routed, N, T);
    assign(r, x, routed, N, T, E, D);
    for (int n = 0; n < N; n++)
        if (r->assigned[n] >= 0) plan_add(&L->plan, r->assigned[n], n, KMEANS_GATE);
    if (may_update && r->initialised[0] != 0) update_centroids(r, x, N, E, D);
}

// The gate is the constant 1 and nearest-centroid selection is piecewise constant: the router
// sends no gradient anywhere and has no auxiliary loss (ROUTERS.md 3.5).
static void km_backward(struct moe_layer *L, const real *x, const int *routed, int B, int T, real *d_x)
{
    (void)L, (void)x, (void)routed, (void)B, (void)T, (void)d_x;
}

const struct router_ops router_kmeans = {
    "kmeans", km_add_params, km_bind, km_max_slots, km_layout, km_plan, km_backward,
};
