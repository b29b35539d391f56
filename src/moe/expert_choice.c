// Expert choice (EC-DiT, ROUTERS.md 3.2): a linear router W_r [E_r, D] without bias, scores
// S = activation(x W_r^T) (softmax over the routed experts by default); within each routed sample
// every routed expert takes the k tokens with the largest S[b, :, e], k = floor(T / E_r * capacity)
// clamped to [1, T], ties to the lower token index; gate = S. A token may be taken by several
// experts or none. Same rule at inference (per sample, so batch independent). EC-DiT has no
// auxiliary loss: loss.balance.weight is ignored by this router (nothing is added to L->aux).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/blas.h"
#include "core/error.h"
#include "moe/router.h"
#include "moe/scores.h"

// Router init N(0, 0.006^2), as EC-DiT's and DiffMoE's gate (ROUTERS.md 3.2, 3.12).
#define EXPERT_CHOICE_INIT_STD 0.006

struct expert_choice {
    real *w, *g;                  // router weight and its gradient [E, D]
    real *z, *s, *d_s, *d_z;      // [N, E] logits, scores and their gradients
    int *taken;                   // [N, E] 1 where expert e took token n
    int *chosen;                  // [B, E, k] scratch: the k best tokens of (b, e), best first
};

static int ec_add_params(struct router_context *L, struct param_table *t, const char *prefix)
{
    if (!(L->router_state = calloc(1, sizeof(struct expert_choice)))) return err("out of memory");
    return router_add_tensor(t, prefix, "gate_weight", 2, L->spec.routed, L->D, INIT_NORMAL,
                             EXPERT_CHOICE_INIT_STD, 1);
}

static void ec_bind(struct router_context *L, const struct param_table *t, const char *prefix, real *base, int grads)
{
    struct expert_choice *r = L->router_state;
    real *p = router_tensor(t, base, prefix, "gate_weight");
    if (grads) r->g = p;
    else r->w = p;
}

// Tokens each expert takes per sample: floor(T / E_r * capacity), at least 1, at most T.
static int tokens_per_expert(const struct router_context *L, int T)
{
    double k = floor((double)T / L->spec.routed * L->spec.capacity);
    return k < 1 ? 1 : k > T ? T : (int)k;
}

static int ec_max_slots(const struct router_context *L, int B, int T)
{
    return B * L->spec.routed * tokens_per_expert(L, T);
}

static void ec_layout(struct router_context *L, struct arena *a, int B, int T)
{
    struct expert_choice *r = L->router_state;
    size_t N = (size_t)B * T, E = L->spec.routed, k = tokens_per_expert(L, T);
    r->z = arena_reals(a, N * E);
    r->s = arena_reals(a, N * E);
    r->d_s = arena_reals(a, N * E);
    r->d_z = arena_reals(a, N * E);
    r->taken = arena_ints(a, N * E);
    r->chosen = arena_ints(a, (size_t)B * E * k);
}

// The k largest of column e of s [T, E] into chosen [k], best first. Insertion keeps a sorted list;
// a later token enters only with a strictly larger score, so ties go to the lower token index.
static void top_tokens(const real *s, int T, int E, int e, int k, int *chosen)
{
    int count = 0;
    for (int t = 0; t < T; t++) {
        real v = s[(size_t)t * E + e];
        if (count == k && !(v > s[(size_t)chosen[k - 1] * E + e])) continue;
        int pos = count < k ? count++ : k - 1;
        for (; pos > 0 && v > s[(size_t)chosen[pos - 1] * E + e]; pos--) chosen[pos] = chosen[pos - 1];
        chosen[pos] = t;
    }
}

static void ec_plan(struct router_context *L, const real *x, const int *routed, int B, int T)
{
    struct expert_choice *r = L->router_state;
    int N = B * T, E = L->spec.routed, k = tokens_per_expert(L, T);
    gemm(NO_TRANS, TRANS, N, E, L->D, 1, x, L->D, r->w, L->D, 0, r->z, E);
    scores_activate(r->s, r->z, N, E, L->spec.activation);
    memset(r->taken, 0, sizeof(int) * N * E);
    // Each (sample, expert) pair writes only its own column entries of its own sample.
#pragma omp parallel for schedule(static)
    for (int pair = 0; pair < B * E; pair++) {
        int b = pair / E, e = pair % E, *chosen = r->chosen + (size_t)pair * k;
        if (!routed[b]) continue;
        top_tokens(r->s + (size_t)b * T * E, T, E, e, k, chosen);
        for (int j = 0; j < k; j++) r->taken[((size_t)b * T + chosen[j]) * E + e] = 1;
    }
    // Tokens ascending within an expert, as the plan's slot order promises.
    for (int e = 0; e < E; e++)
        for (int n = 0; n < N; n++)
            if (r->taken[(size_t)n * E + e]) plan_add(&L->plan, e, n, r->s[(size_t)n * E + e]);
}

// dS at the taken (token, expert) pairs only, activation backward per token over the E_r experts,
// then dW += dZ^T x and d_x += dZ W (ROUTERS.md 3.2, as 3.1 without the balance term).
static void ec_backward(struct router_context *L, const real *x, const int *routed, int B, int T, real *d_x)
{
    struct expert_choice *r = L->router_state;
    const struct routing_plan *p = &L->plan;
    int N = B * T, E = L->spec.routed;
    (void)routed;   // tokens of unrouted samples have no slots, hence zero d_s
    plan_gate_gradients(p, r->d_s, N, E);
    scores_activate_backward(r->d_z, r->d_s, r->s, N, E, L->spec.activation);
    gemm(TRANS, NO_TRANS, E, L->D, N, 1, r->d_z, E, x, L->D, 1, r->g, L->D);
    gemm(NO_TRANS, NO_TRANS, N, L->D, E, 1, r->d_z, E, r->w, L->D, 1, d_x, L->D);
}

// Shared experts: the official EC-DiT layout's shared expert is a SwiGLU MLP, which the layer
// does not build (its shared experts are GELU MLPs); refused rather than silently different.
static int ec_check(const struct moe_spec *spec, const struct config *cfg)
{
    if (spec->shared > 0)
        return err("model.moe.experts '%s' has %d shared experts, but router expert_choice follows EC-DiT, whose "
                   "shared expert is a SwiGLU MLP that this harness does not build; use S0",
                   cfg->moe_experts, spec->shared);
    return 0;
}

const struct router_ops router_expert_choice = {
    .expert_names = EXPERT_NAMES_FC,   // experts are timm Mlps in the official class
    .default_activation = ACTIVATION_SOFTMAX,
    .check = ec_check,
    .aux = 0,
    .reads = ROUTER_READS_ACTIVATION | ROUTER_READS_CAPACITY,
    .add_params = ec_add_params,
    .bind = ec_bind,
    .max_slots = ec_max_slots,
    .layout = ec_layout,
    .plan = ec_plan,
    .backward = ec_backward,
    .destroy = router_free_state,
};
