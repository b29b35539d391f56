// Token choice (DiT-MoE / TC-DiT, ROUTERS.md 3.1): a linear router W_r [E, D] without bias,
// scores S = activation(x W_r^T), each token takes its top-k experts with gate S (not
// renormalised). No capacity, no dropping. Optional load-balancing loss (loss.balance.weight;
// DiT-MoE uses 0.01).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/blas.h"
#include "core/error.h"
#include "moe/router.h"
#include "moe/pool.h"
#include "moe/scores.h"

struct token_choice {
    real *w, *g;             // router weight and its gradient [E, D]
    real *z, *s, *d_s, *d_z; // [N, E]
    int *topk;               // [N, k]
    int *routed_token;       // [N]
};

static int tc_add_params(struct router_context *L, struct param_table *t, const char *prefix)
{
    if (!(L->router_state = calloc(1, sizeof(struct token_choice)))) return err("out of memory");
    // nn.Linear's default (Kaiming-uniform, a = sqrt(5)): U(-1/sqrt(D), 1/sqrt(D)).
    return router_add_tensor(t, prefix, "gate.weight", 2, L->spec.routed, L->D, INIT_UNIFORM,
                             1 / sqrt((double)L->D), 1);
}

static void tc_bind(struct router_context *L, const struct param_table *t, const char *prefix, real *base, int grads)
{
    struct token_choice *r = L->router_state;
    real *p = router_tensor(t, base, prefix, "gate.weight");
    if (grads) r->g = p;
    else r->w = p;
}

static int tc_max_slots(const struct router_context *L, int B, int T) { return B * T * L->spec.active; }

static void tc_layout(struct router_context *L, struct arena *a, int B, int T)
{
    struct token_choice *r = L->router_state;
    size_t N = (size_t)B * T, E = L->spec.routed;
    r->z = arena_reals(a, N * E);
    r->s = arena_reals(a, N * E);
    r->d_s = arena_reals(a, N * E);
    r->d_z = arena_reals(a, N * E);
    r->topk = arena_ints(a, N * L->spec.active);
    r->routed_token = arena_ints(a, N);
}

static void tc_plan(struct router_context *L, const real *x, const int *routed, int B, int T)
{
    struct token_choice *r = L->router_state;
    int N = B * T, E = L->spec.routed, k = L->spec.active;
    gemm(NO_TRANS, TRANS, N, E, L->D, 1, x, L->D, r->w, L->D, 0, r->z, E);
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
    if (L->training)
        L->aux[AUX_BALANCE] = balance_loss(r->s, r->topk, r->routed_token, N, pool_group_samples(L, B) * T, E, k, L->spec.activation,
                                           L->cfg->balance_weight, pool_is_global(L));
}

static void tc_backward(struct router_context *L, const real *x, const int *routed, int B, int T, real *d_x)
{
    struct token_choice *r = L->router_state;
    const struct routing_plan *p = &L->plan;
    int N = B * T, E = L->spec.routed, k = L->spec.active;
    (void)routed;
    plan_gate_gradients(p, r->d_s, N, E);
    balance_loss_backward(r->d_s, r->s, r->topk, r->routed_token, N, pool_group_samples(L, B) * T, E, k, L->spec.activation,
                          L->cfg->balance_weight, pool_is_global(L));
    scores_activate_backward(r->d_z, r->d_s, r->s, N, E, L->spec.activation);
    gemm(TRANS, NO_TRANS, E, L->D, N, 1, r->d_z, E, x, L->D, 1, r->g, L->D);
    gemm(NO_TRANS, NO_TRANS, N, L->D, E, 1, r->d_z, E, r->w, L->D, 1, d_x, L->D);
}

// Shared experts: the official TC-DiT layout's shared expert is a SwiGLU MLP, which the layer
// does not build (its shared experts are GELU MLPs); refused rather than silently different.
static int tc_check(const struct moe_spec *spec, const struct config *cfg)
{
    if (spec->shared > 0)
        return err("model.moe.experts '%s' has %d shared experts, but router token_choice follows TC-DiT, whose "
                   "shared expert is a SwiGLU MLP that this harness does not build; use S0",
                   cfg->moe_experts, spec->shared);
    return 0;
}

const struct router_ops router_token_choice = {
    .expert_names = EXPERT_NAMES_FC,   // experts are timm Mlps in the official class
    .default_activation = ACTIVATION_SOFTMAX,
    .check = tc_check,
    .aux = AUX_BIT(AUX_BALANCE),
    .reads = ROUTER_READS_ACTIVATION,
    .add_params = tc_add_params,
    .bind = tc_bind,
    .max_slots = tc_max_slots,
    .layout = tc_layout,
    .plan = tc_plan,
    .backward = tc_backward,
    .destroy = router_free_state,
};
