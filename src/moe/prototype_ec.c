// ProMoE-EC (ROUTERS.md 3.11): the prototypes and cosine scores of ProMoE (prototype.c) with expert
// choice within each conditional sample, and the routing contrastive loss per sample.
//
// Shapes: B samples of T tokens, N = B T, width D, E = E_r routed experts, prototypes P [E, D]
// (N(0, 0.02^2), as ProMoE's), k = clamp(floor(T / E x model.moe.capacity), 1, T) tokens per expert
// and sample (the official top_k, a capacity multiplier there, is model.moe.capacity here, as for
// expert_choice; the expert string must say A1).
//   Z[b, e, t] = alpha cos(x_{b,t}, p_e)                          [B, E, T], the expert view
//   S[b, e, :] = A(Z[b, e, :]): identity (default), sigmoid, or softmax over the sample's T tokens
//                (over tokens, not experts: the official code normalises the expert view's last axis)
//   expert e takes in sample b the k tokens with the largest S[b, e, :], ties to the lower index;
//   gate = S[b, e, t]. A token may be taken by several experts or by none.
// RCL per sample (training only): m_{b,e} = mean of the k tokens (the MoE input itself, not
// detached) that expert e took in sample b; every expert is active; s_{b,ij} = cos(p_i, m_{b,j});
//   L = weight / B_cond sum_b (1/E) sum_i -log softmax_j(s_{b,ij} / tau)[i]
// i.e. the cross-entropy over B_cond x E rows of ROUTERS.md 3.9 applied to each sample on its own
// (rcl.c on the sample's chosen tokens grouped by expert). Null-label samples (routed[b] = 0) are
// neither routed nor counted in B_cond. No load-balancing loss: loss.balance.weight is ignored.
// Everything is per sample, so routing and loss do not depend on the batch or the pool scope.
// Inference routes by the same rule. Ties: the official topk leaves their order unspecified.
// Backward: dS[b, e, t] = <dY_{b,t}, E_e(x_{b,t})> at the taken entries, 0 elsewhere; dZ = A'
// along each token row (softmax: s (dS - <dS, s>)); dX_hat_b = alpha dZ_b^T P_hat and
// dP_hat = alpha sum_b dZ_b X_hat_b, then the cosine backward of ROUTERS.md 3.7. RCL: 3.9's G per
// sample with weight / B_cond; a chosen token receives dm_{b,e} / k from every expert e that took it.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/blas.h"
#include "core/error.h"
#include "moe/rcl.h"
#include "moe/router.h"
#include "moe/scores.h"


struct prototype_ec {
    real *p, *g;                 // prototypes and their gradient [E, D]
    real *x_hat, *x_norm;        // [N, D] normalised tokens, [N] their norms
    real *p_hat, *p_norm;        // [E, D], [E]
    real *z, *s, *d_s, *d_z;     // [B, E, T] scores in the expert view and their gradients
    real *d_x_hat, *d_p_hat;     // [N, D], [E, D]
    int *chosen;                 // [B, E, k] tokens (0..T-1) expert e took in sample b, ascending
    real *group, *d_group;       // [E k, D] one sample's chosen tokens, expert by expert, and their gradient
    int *group_expert, *all;     // [E k] expert of each group row (row / k); all ones
    int k, n_cond;               // tokens per expert; routed samples of the last forward
    struct rcl_work rcl;
};

static int pec_add_params(struct router_context *L, struct param_table *t, const char *prefix)
{
    return router_add_prototypes(L, t, prefix, sizeof(struct prototype_ec));
}

static void pec_bind(struct router_context *L, const struct param_table *t, const char *prefix, real *base, int grads)
{
    struct prototype_ec *r = L->router_state;
    router_bind_prototypes(t, prefix, base, grads, &r->p, &r->g);
}

// Tokens each expert takes per sample: floor(T / E_r * capacity), at least 1, at most T.
static int tokens_per_expert(const struct router_context *L, int T)
{
    double k = floor((double)T / L->spec.routed * L->spec.capacity);
    return k < 1 ? 1 : k > T ? T : (int)k;
}

static int pec_max_slots(const struct router_context *L, int B, int T)
{
    return B * L->spec.routed * tokens_per_expert(L, T);
}

static void pec_layout(struct router_context *L, struct arena *a, int B, int T)
{
    struct prototype_ec *r = L->router_state;
    size_t N = (size_t)B * T, E = L->spec.routed, D = L->D, k = tokens_per_expert(L, T);
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
    r->chosen = arena_ints(a, (size_t)B * E * k);
    r->group = arena_reals(a, E * k * D);
    r->d_group = arena_reals(a, E * k * D);
    r->group_expert = arena_ints(a, E * k);
    r->all = arena_ints(a, E * k);
    r->rcl.centroid = arena_reals(a, E * D);
    r->rcl.count = arena_ints(a, E);
    r->rcl.active = arena_ints(a, E);
    r->rcl.q = arena_reals(a, E * E);
    r->rcl.p_norm = arena_reals(a, E);
    r->rcl.m_norm = arena_reals(a, E);
}

// The k largest of row s [T] into chosen [k], then sorted ascending. Insertion keeps a best-first
// list; a later token enters only with a strictly larger score, so ties go to the lower index.
static void top_tokens(const real *s, int T, int k, int *chosen)
{
    int count = 0;
    for (int t = 0; t < T; t++) {
        if (count == k && !(s[t] > s[chosen[k - 1]])) continue;
        int pos = count < k ? count++ : k - 1;
        for (; pos > 0 && s[t] > s[chosen[pos - 1]]; pos--) chosen[pos] = chosen[pos - 1];
        chosen[pos] = t;
    }
    for (int i = 1; i < k; i++)
        for (int j = i; j > 0 && chosen[j] < chosen[j - 1]; j--) {
            int swap = chosen[j];
            chosen[j] = chosen[j - 1];
            chosen[j - 1] = swap;
        }
}

// Z_b [E, T] = alpha P_hat X_hat_b^T per sample, then S = A(Z) along each expert's token row.
static void expert_view_scores(struct router_context *L, int B, int T)
{
    struct prototype_ec *r = L->router_state;
    int E = L->spec.routed, D = L->D;
    for (int b = 0; b < B; b++)
        gemm(NO_TRANS, TRANS, E, T, D, (real)L->spec.alpha, r->p_hat, D, r->x_hat + (size_t)b * T * D, D, 0,
             r->z + (size_t)b * E * T, T);
    scores_activate(r->s, r->z, B * E, T, L->spec.activation);
}

// Sample b's chosen tokens of x [N, D] into group [E k, D], expert by expert, token order within.
static void gather_group(struct prototype_ec *r, const real *x, int b, int T, int E, int D)
{
    int rows = E * r->k;
    const int *chosen = r->chosen + (size_t)b * rows;
    for (int row = 0; row < rows; row++)
        memcpy(r->group + (size_t)row * D, x + ((size_t)b * T + chosen[row]) * D, sizeof(real) * D);
}

// Per-sample RCL of sample b (fills r->rcl for its backward); weight already divided by B_cond.
static double sample_rcl(struct router_context *L, const real *x, int b, int T)
{
    struct prototype_ec *r = L->router_state;
    int E = L->spec.routed, D = L->D;
    gather_group(r, x, b, T, E, D);
    return rcl_forward(&r->rcl, r->group, r->p, r->group_expert, r->all, E * r->k, D, E, 1, L->cfg->rcl_tau,
                       L->cfg->rcl_weight / r->n_cond);
}

static void pec_plan(struct router_context *L, const real *x, const int *routed, int B, int T)
{
    struct prototype_ec *r = L->router_state;
    int E = L->spec.routed, D = L->D, k = r->k = tokens_per_expert(L, T);
    normalise_rows(r->x_hat, r->x_norm, x, B * T, D);
    normalise_rows(r->p_hat, r->p_norm, r->p, E, D);
    expert_view_scores(L, B, T);
    // Each (sample, expert) pair writes only its own k entries of chosen.
#pragma omp parallel for schedule(static)
    for (int pair = 0; pair < B * E; pair++)
        if (routed[pair / E]) top_tokens(r->s + (size_t)pair * T, T, k, r->chosen + (size_t)pair * k);
    // Samples in order, tokens ascending within each: every expert's slots ascend, as the plan promises.
    r->n_cond = 0;
    for (int b = 0; b < B; b++) {
        if (!routed[b]) continue;
        r->n_cond++;
        for (int e = 0; e < E; e++)
            for (int j = 0; j < k; j++) {
                int t = r->chosen[((size_t)b * E + e) * k + j];
                plan_add(&L->plan, e, b * T + t, r->s[((size_t)b * E + e) * T + t]);
            }
    }
    if (!L->training) return;
    for (int row = 0; row < E * k; row++) {
        r->group_expert[row] = row / k;
        r->all[row] = 1;
    }
    r->rcl.global = 0;   // one sample's tokens: never pooled over ranks
    double loss = 0;
    for (int b = 0; b < B; b++)
        if (routed[b]) loss += sample_rcl(L, x, b, T);
    L->aux[AUX_RCL] = loss;
}

// RCL backward of every routed sample: its forward again (rcl_work holds one sample), the gradient
// of its grouped rows, scattered back to the tokens they came from (d_x [N, D]) and into g.
static void rcl_samples_backward(struct router_context *L, const real *x, const int *routed, int B, int T, real *d_x)
{
    struct prototype_ec *r = L->router_state;
    int E = L->spec.routed, D = L->D, rows = E * r->k;
    for (int b = 0; b < B; b++) {
        if (!routed[b]) continue;
        sample_rcl(L, x, b, T);
        memset(r->d_group, 0, sizeof(real) * rows * D);
        rcl_backward(&r->rcl, r->g, r->d_group, r->p, r->group_expert, r->all, rows, D, E, 1, L->cfg->rcl_tau,
                     L->cfg->rcl_weight / r->n_cond);
        const int *chosen = r->chosen + (size_t)b * rows;
        for (int row = 0; row < rows; row++) {
            real *dst = d_x + ((size_t)b * T + chosen[row]) * D;
            for (int d = 0; d < D; d++) dst[d] += r->d_group[(size_t)row * D + d];
        }
    }
}

// dS at the taken (b, e, t) entries, activation backward along each expert's token row, then per
// sample d_X_hat_b [T, D] = alpha dZ_b^T P_hat and d_P_hat += alpha dZ_b X_hat_b, and the cosine
// backward (ROUTERS.md 3.7); then the RCL gradient.
static void pec_backward(struct router_context *L, const real *x, const int *routed, int B, int T, real *d_x)
{
    struct prototype_ec *r = L->router_state;
    const struct routing_plan *p = &L->plan;
    int E = L->spec.routed, D = L->D;
    real alpha = (real)L->spec.alpha;
    memset(r->d_s, 0, sizeof(real) * B * E * T);
    for (int e = 0; e < E; e++)
        for (int slot = p->offset[e]; slot < p->offset[e + 1]; slot++) {
            int n = p->token[slot];
            r->d_s[((size_t)(n / T) * E + e) * T + n % T] += p->d_gate[slot];
        }
    scores_activate_backward(r->d_z, r->d_s, r->s, B * E, T, L->spec.activation);
    for (int b = 0; b < B; b++) {
        const real *d_z = r->d_z + (size_t)b * E * T, *x_hat = r->x_hat + (size_t)b * T * D;
        gemm(TRANS, NO_TRANS, T, D, E, alpha, d_z, T, r->p_hat, D, 0, r->d_x_hat + (size_t)b * T * D, D);
        gemm(NO_TRANS, NO_TRANS, E, D, T, alpha, d_z, T, x_hat, D, b ? 1 : 0, r->d_p_hat, D);
    }
    normalise_rows_backward(d_x, r->d_x_hat, r->x_hat, r->x_norm, B * T, D);
    normalise_rows_backward(r->g, r->d_p_hat, r->p_hat, r->p_norm, E, D);
    rcl_samples_backward(L, x, routed, B, T, d_x);
}

static int pec_check(const struct moe_spec *spec, const struct config *cfg)
{
    if (spec->active != 1)
        return err("model.moe.router prototype_ec lets each expert take floor(T / E_r x model.moe.capacity) "
                   "tokens per sample: top-k must be 1 (set model.moe.capacity instead), model.moe.experts "
                   "'%s' asks for %d", cfg->moe_experts, spec->active);
    return 0;
}

const struct router_ops router_prototype_ec = {
    .default_activation = ACTIVATION_IDENTITY,
    .check = pec_check,
    .aux = AUX_BIT(AUX_RCL),
    .reads = ROUTER_READS_ACTIVATION | ROUTER_READS_ALPHA | ROUTER_READS_CAPACITY,
    .add_params = pec_add_params,
    .bind = pec_bind,
    .max_slots = pec_max_slots,
    .layout = pec_layout,
    .plan = pec_plan,
    .backward = pec_backward,
    .destroy = router_free_state,
};
