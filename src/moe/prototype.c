// Prototypical routing (ProMoE, ROUTERS.md 3.7): learnable prototypes P [E, D] (N(0, 0.02^2)),
// scores Z = alpha cos(x, p_j), S = activation(Z) (identity by default), top-k experts per token
// with gate S. Auxiliary: routing contrastive loss (loss.rcl.*) and, optionally, load balancing.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/blas.h"
#include "core/error.h"
#include "moe/router.h"
#include "moe/pool.h"
#include "moe/rcl.h"
#include "moe/scores.h"


struct prototype {
    real *p, *g;                 // prototypes and their gradient [E, D]
    real *x_hat, *x_norm;        // [N, D] normalised tokens, [N] their norms
    real *p_hat, *p_norm;        // [E, D], [E]
    real *z, *s, *d_s, *d_z;     // [N, E]
    real *d_x_hat, *d_p_hat;     // [N, D], [E, D]
    int *topk, *routed_token;    // [N, k], [N]
    struct rcl_work *rcl;        // [groups] one per pool group (moe/pool.h), in the arena
    int max_groups;
};

static int proto_add_params(struct router_context *L, struct param_table *t, const char *prefix)
{
    return router_add_prototypes(L, t, prefix, sizeof(struct prototype));
}

static void proto_bind(struct router_context *L, const struct param_table *t, const char *prefix, real *base, int grads)
{
    struct prototype *r = L->router_state;
    router_bind_prototypes(t, prefix, base, grads, &r->p, &r->g);
}

static int proto_max_slots(const struct router_context *L, int B, int T) { return B * T * L->spec.active; }

static void proto_layout(struct router_context *L, struct arena *a, int B, int T)
{
    struct prototype *r = L->router_state;
    size_t N = (size_t)B * T, E = L->spec.routed, D = L->D;
    r->x_hat = arena_reals(a, N * D);
    r->x_norm = arena_reals(a, N);
    r->p_hat = arena_reals(a, E * D);
    r->p_norm = arena_reals(a, E);
    r->z = arena_reals(a, N * E);
    r->s = arena_reals(a, N * E);
    r->d_s = arena_reals(a, N * E);
    r->d_z = arena_reals(a, N * E);
    r->d_x_hat = arena_reals(a, N * D);
    r->d_p_hat = arena_reals(a, E * D);
    r->topk = arena_ints(a, N * L->spec.active);
    r->routed_token = arena_ints(a, N);
    r->max_groups = pool_group_count(L, B);
    size_t work_bytes = (size_t)r->max_groups * sizeof(struct rcl_work);
    r->rcl = (struct rcl_work *)arena_reals(a, (work_bytes + sizeof(real) - 1) / sizeof(real));
    for (int g = 0; g < r->max_groups; g++) {
        struct rcl_work w = {.centroid = arena_reals(a, E * D), .count = arena_ints(a, E),
                             .active = arena_ints(a, E), .q = arena_reals(a, E * E),
                             .p_norm = arena_reals(a, E), .m_norm = arena_reals(a, E)};
        if (r->rcl) r->rcl[g] = w;   // NULL in the arena's measuring pass
    }
}

// RCL of each pool group (moe/pool.h) with weight / groups: the mean of the groups' losses.
static double proto_rcl(struct router_context *L, struct prototype *r, const real *x, int B, int T)
{
    int E = L->spec.routed, k = L->spec.active, D = L->D, N = B * T;
    int groups = pool_group_count(L, B), pool_tokens = pool_group_samples(L, B) * T;
    if (groups > r->max_groups) BUG("batch %d has %d pool groups, laid out for %d", B, groups, r->max_groups);
    double loss = 0, weight = L->cfg->rcl_weight / groups;
    for (int g = 0, first = 0; g < groups; g++, first += pool_tokens) {
        int n = N - first < pool_tokens ? N - first : pool_tokens;
        r->rcl[g].global = pool_is_global(L);
        loss += rcl_forward(&r->rcl[g], x + (size_t)first * D, r->p, r->topk + (size_t)first * k,
                            r->routed_token + first, n, D, E, k, L->cfg->rcl_tau, weight);
    }
    return loss;
}

static void proto_rcl_backward(struct router_context *L, struct prototype *r, real *d_x, int B, int T)
{
    int E = L->spec.routed, k = L->spec.active, D = L->D, N = B * T;
    int groups = pool_group_count(L, B), pool_tokens = pool_group_samples(L, B) * T;
    double weight = L->cfg->rcl_weight / groups;
    for (int g = 0, first = 0; g < groups; g++, first += pool_tokens) {
        int n = N - first < pool_tokens ? N - first : pool_tokens;
        rcl_backward(&r->rcl[g], r->g, d_x + (size_t)first * D, r->p, r->topk + (size_t)first * k,
                     r->routed_token + first, n, D, E, k, L->cfg->rcl_tau, weight);
    }
}

static void proto_plan(struct router_context *L, const real *x, const int *routed, int B, int T)
{
    struct prototype *r = L->router_state;
    int N = B * T, E = L->spec.routed, k = L->spec.active, D = L->D;
    normalise_rows(r->x_hat, r->x_norm, x, N, D);
    normalise_rows(r->p_hat, r->p_norm, r->p, E, D);
    gemm(NO_TRANS, TRANS, N, E, D, (real)L->spec.alpha, r->x_hat, D, r->p_hat, D, 0, r->z, E);
    scores_activate(r->s, r->z, N, E, L->spec.activation);
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        r->routed_token[n] = routed[n / T];
        topk_row(r->s + (size_t)n * E, E, k, r->topk + (size_t)n * k);
    }
    for (int n = 0; n < N; n++)
        for (int j = 0; r->routed_token[n] && j < k; j++) {
            int e = r->topk[(size_t)n * k + j];
            plan_add(&L->plan, e, n, r->s[(size_t)n * E + e]);
        }
    if (!L->training) return;
    L->aux[AUX_RCL] = proto_rcl(L, r, x, B, T);
    L->aux[AUX_BALANCE] = balance_loss(r->s, r->topk, r->routed_token, N, pool_group_samples(L, B) * T, E, k, L->spec.activation,
                                       L->cfg->balance_weight, pool_is_global(L));
}

static void proto_backward(struct router_context *L, const real *x, const int *routed, int B, int T, real *d_x)
{
    struct prototype *r = L->router_state;
    const struct routing_plan *p = &L->plan;
    int N = B * T, E = L->spec.routed, k = L->spec.active, D = L->D;
    (void)routed;
    (void)x;   // the router works on the normalised tokens kept from the forward
    plan_gate_gradients(p, r->d_s, N, E);
    balance_loss_backward(r->d_s, r->s, r->topk, r->routed_token, N, pool_group_samples(L, B) * T, E, k, L->spec.activation,
                          L->cfg->balance_weight, pool_is_global(L));
    scores_activate_backward(r->d_z, r->d_s, r->s, N, E, L->spec.activation);
    real alpha = (real)L->spec.alpha;
    gemm(NO_TRANS, NO_TRANS, N, D, E, alpha, r->d_z, E, r->p_hat, D, 0, r->d_x_hat, D);
    gemm(TRANS, NO_TRANS, E, D, N, alpha, r->d_z, E, r->x_hat, D, 0, r->d_p_hat, D);
    normalise_rows_backward(d_x, r->d_x_hat, r->x_hat, r->x_norm, N, D);
    normalise_rows_backward(r->g, r->d_p_hat, r->p_hat, r->p_norm, E, D);
    proto_rcl_backward(L, r, d_x, B, T);
}

const struct router_ops router_prototype = {
    .default_activation = ACTIVATION_IDENTITY,
    .check = NULL,
    .aux = AUX_BIT(AUX_RCL) | AUX_BIT(AUX_BALANCE),
    .reads = ROUTER_READS_ACTIVATION | ROUTER_READS_ALPHA,
    .add_params = proto_add_params,
    .bind = proto_bind,
    .max_slots = proto_max_slots,
    .layout = proto_layout,
    .plan = proto_plan,
    .backward = proto_backward,
    .destroy = router_free_state,
};
