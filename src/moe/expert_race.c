// Expert Race (Race-DiT, arXiv 2503.16057; ROUTERS.md 3.4): a linear router W_r [E, D] (no bias,
// Xavier), scores S = activation(x W_r^T) (identity by default). In training the routed tokens'
// flattened [n, E] score matrix races: its top n*k entries win (a token gets 0..E experts), gate = S.
// A per-layer threshold tau follows the batch's race threshold by an EMA and alone decides at
// inference (S >= tau). Auxiliary: the router similarity loss (3.4 [R]). The per-layer
// regularisation (loss.plr.weight) lives in the model (model/dit.c): it needs the block output and
// the diffusion target, which a router does not see. With model.moe.pool_scope global over several
// ranks the race spans the global batch: every rank's scores are gathered (moe/pool.h) and each
// rank keeps its own winners.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/blas.h"
#include "core/error.h"
#include "moe/router.h"
#include "moe/pool.h"
#include "moe/scores.h"

// The "initialised" buffer stores 0 or 1; anything above one half counts as set.
#define THRESHOLD_SET_LEVEL 0.5

// One entry of the flattened score matrix in the race: index = token * E + expert.
struct race_entry {
    real score;
    int index;
};

struct expert_race {
    real *w, *g;                  // router weight and its gradient [E, D]
    real *tau, *tau_set;          // buffers [1]: inference threshold, 1 once it holds a value
    real *z, *s, *d_s, *d_z;      // [N, E] logits, scores and their gradients
    real *prob, *prob_w;          // [N, E] softmax of z (zero rows for unrouted tokens), prob W_sim
    real *sim_w;                  // [E, E] co-selection weights W of the similarity loss (constant)
    int *selected;                // [N, E] 1 = entry in the plan (the mask M)
    int *routed_token;            // [N]
    struct race_entry *heap;      // [W N E] the race (W = pool ranks)
    real *gathered_s;             // [W N, E] every pool rank's scores (W > 1 only)
    int *gathered_routed;         // [W B] their samples' routed flags (W > 1 only)
    double *sim_grad_scale;       // [groups] dL_sim/dP = scale of the token's pool group * prob_w; 0: off
    int groups, group_tokens;     // pool groups (moe/pool.h) of the last forward, tokens per group
};

// The entries that race: tokens g of s [n_tokens, E] whose sample g / T is routed; this rank's
// tokens are [first, first + N), so its entry (n, e) is the race's (first + n) E + e.
struct race_field {
    const real *s;
    const int *routed;            // [n_tokens / T] per sample
    int n_tokens, T, first, n_routed;
    int start;                    // tokens before it do not race (a pool group's first token)
};

// ---- parameters and buffers ----

static int race_add_params(struct router_context *L, struct param_table *t, const char *prefix)
{
    if (L->cfg->balance_weight > 0)
        return err("loss.balance.weight %g: the Switch balance loss assumes k experts per token, which "
                   "router 'expert_race' does not give; use loss.router_sim.weight", L->cfg->balance_weight);
    if (!(L->router_state = calloc(1, sizeof(struct expert_race)))) return err("out of memory");
    if (router_add_tensor(t, prefix, "gate.weight", 2, L->spec.routed, L->D, INIT_XAVIER, 0, 1) < 0 ||  // [R] 3.12
        router_add_tensor(t, prefix, "race_threshold", 1, 1, 0, INIT_ZERO, 0, 0) < 0)
        return -1;
    // A flag rather than a sentinel value of tau, so that any tau (negative, zero) resumes exactly.
    return router_add_tensor(t, prefix, "race_threshold_initialised", 1, 1, 0, INIT_ZERO, 0, 0);
}

static void race_bind(struct router_context *L, const struct param_table *t, const char *prefix, real *base, int grads)
{
    struct expert_race *r = L->router_state;
    if (grads) {
        r->g = router_tensor(t, base, prefix, "gate.weight");
        return;
    }
    r->w = router_tensor(t, base, prefix, "gate.weight");
    r->tau = router_tensor(t, base, prefix, "race_threshold");
    r->tau_set = router_tensor(t, base, prefix, "race_threshold_initialised");
}

// At inference every entry may pass the threshold: room for all N * E_r (training needs N * k).
static int race_max_slots(const struct router_context *L, int B, int T) { return B * T * L->spec.routed; }

static void race_layout(struct router_context *L, struct arena *a, int B, int T)
{
    struct expert_race *r = L->router_state;
    size_t N = (size_t)B * T, E = L->spec.routed, W = pool_ranks(L);
    r->z = arena_reals(a, N * E);
    r->s = arena_reals(a, N * E);
    r->d_s = arena_reals(a, N * E);
    r->d_z = arena_reals(a, N * E);
    r->prob = arena_reals(a, N * E);
    r->prob_w = arena_reals(a, N * E);
    r->sim_w = arena_reals(a, E * E);
    r->selected = arena_ints(a, N * E);
    r->routed_token = arena_ints(a, N);
    r->heap = (struct race_entry *)arena_reals(
        a, (W * N * E * sizeof(struct race_entry) + sizeof(real) - 1) / sizeof(real));
    r->sim_grad_scale = (double *)arena_reals(a, pool_group_count(L, B) * sizeof(double) / sizeof(real));
    if (W == 1) return;
    r->gathered_s = arena_reals(a, W * N * E);
    r->gathered_routed = arena_ints(a, W * B);
}

// ---- the race (training) ----

// The race's total order: higher score first, ties to the lower (token, expert) index; NaN last.
static int race_before(const struct race_entry *a, const struct race_entry *b)
{
    int a_nan = isnan(a->score), b_nan = isnan(b->score);
    if (a_nan != b_nan) return b_nan;
    if (!a_nan && a->score != b->score) return a->score > b->score;
    return a->index < b->index;
}

static void sift_down(struct race_entry *h, size_t root, size_t size)
{
    for (;;) {
        size_t best = root, left = 2 * root + 1, right = left + 1;
        if (left < size && race_before(&h[left], &h[best])) best = left;
        if (right < size && race_before(&h[right], &h[best])) best = right;
        if (best == root) return;
        struct race_entry tmp = h[root];
        h[root] = h[best];
        h[best] = tmp;
        root = best;
    }
}

// This rank's tokens alone: the race at inference (training_field gives the same with scope rank).
static struct race_field local_field(struct expert_race *r, const int *routed, int N, int T, int n_routed)
{
    return (struct race_field){r->s, routed, N, T, 0, n_routed, 0};
}

// The training race over every pool rank's tokens, in the order one process gives the global batch
// (rank r's token n is r N + n), so ties fall as they would there.
static struct race_field training_field(struct router_context *L, struct expert_race *r, const int *routed, int B,
                                        int T)
{
    int N = B * T, W = pool_ranks(L);
    struct race_field f = {pool_gather_reals(L, r->s, (size_t)N * L->spec.routed, r->gathered_s),
                           pool_gather_ints(L, routed, B, r->gathered_routed), W * N, T, pool_rank(L) * N, 0, 0};
    for (int b = 0; b < W * B; b++) f.n_routed += f.routed[b] ? T : 0;
    return f;
}

// Marks this rank's entries among the first K_tot = n_routed * k entries of the field's race order
// in r->selected [N, E] (already zero); returns tau_b, the K_tot-th largest score. A heap over all
// entries, popped K_tot times: no allocation, and the result is fixed by the total order alone.
static real race_select(struct expert_race *r, const struct race_field *f, int N, int E, int k)
{
    size_t size = 0, winners = (size_t)f->n_routed * k, mine = (size_t)f->first * E;
    for (int g = f->start; g < f->n_tokens; g++)
        for (int e = 0; f->routed[g / f->T] && e < E; e++) {
            r->heap[size].score = f->s[(size_t)g * E + e];
            r->heap[size++].index = g * E + e;
        }
    for (size_t i = size / 2; i-- > 0;) sift_down(r->heap, i, size);
    real tau_b = 0;
    for (size_t i = 0; i < winners; i++) {
        tau_b = r->heap[0].score;
        size_t index = (size_t)r->heap[0].index;
        if (index >= mine && index < mine + (size_t)N * E) r->selected[index - mine] = 1;
        r->heap[0] = r->heap[--size];
        sift_down(r->heap, 0, size);
    }
    return tau_b;
}

// First update: tau = tau_b; afterwards tau <- m tau + (1 - m) tau_b (3.4, initialisation [R]).
// Replicas must agree on tau and on its flag. A global race gives every rank the same tau_b; races
// per rank use the mean tau_b of the ranks that raced any token, so a rank without routed tokens
// neither keeps a stale tau nor leaves its flag unset while the others set theirs.
static void threshold_update(const struct router_context *L, struct expert_race *r, double tau_b, int raced)
{
    double value = tau_b;
    if (pool_ranks(L) == 1) raced = pool_mean_where_present(&value, raced) > 0;
    if (!raced) return;
    double momentum = L->cfg->moe_race_momentum >= 0 ? L->cfg->moe_race_momentum : L->spec.threshold_momentum;
    if (*r->tau_set > (real)THRESHOLD_SET_LEVEL)
        *r->tau = (real)(momentum * (double)*r->tau + (1 - momentum) * value);
    else
        *r->tau = (real)value;
    *r->tau_set = 1;
}

// Inference: entry (n, e) is active iff S[n, e] >= tau, independently of the rest of the batch.
static void threshold_select(struct expert_race *r, int N, int E)
{
    real tau = *r->tau;
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++)
        for (int e = 0; r->routed_token[n] && e < E; e++)
            r->selected[(size_t)n * E + e] = r->s[(size_t)n * E + e] >= tau;
}

// ---- router similarity loss (3.4 [R], Eq. 9-11 reconstructed) ----

// W [E, E] from the selection mask M of tokens [start, end): M' = M^T M; W_ii = E M'_ii / sum_j M'_jj,
// W_ij = (E^2 - E) M'_ij / sum_{a != b} M'_ab (0 when no two experts are ever co-selected), or
// over sum_ab M'_ab with loss.router_sim.off_diagonal all (the two reimplementations, 3.4 [R]).
// M' sums over the pool's tokens: over every rank with a global pool (integer counts below 2^24,
// so the float sum is exact and the same on every rank).
static void sim_weights(const struct router_context *L, struct expert_race *r, int start, int end, int E)
{
    real *w = r->sim_w;
    memset(w, 0, sizeof(real) * E * E);
    for (int n = start; n < end; n++) {
        const int *m = r->selected + (size_t)n * E;
        for (int i = 0; i < E; i++)
            for (int j = 0; m[i] && j < E; j++) w[(size_t)i * E + j] += m[j];
    }
    pool_sum_reals(L, w, (size_t)E * E);
    double diagonal = 0, off_diagonal = 0;
    for (int i = 0; i < E; i++)
        for (int j = 0; j < E; j++) {
            if (i == j) diagonal += w[(size_t)i * E + j];
            else off_diagonal += w[(size_t)i * E + j];
        }
    // loss.router_sim.off_diagonal all: the co-selections over the whole of M', diagonal included
    if (L->cfg->router_sim_off_diagonal == SIM_OFF_DIAGONAL_ALL) off_diagonal += diagonal;
    for (int i = 0; i < E; i++)
        for (int j = 0; j < E; j++) {
            real *entry = &w[(size_t)i * E + j];
            if (i == j) *entry = diagonal > 0 ? (real)(E * (double)*entry / diagonal) : 0;
            else *entry = off_diagonal > 0 ? (real)(((double)E * E - E) * (double)*entry / off_diagonal) : 0;
        }
}

// Tokens [*start, *end) of pool group g (moe/pool.h); the whole forward when there is one group.
static void group_range(const struct expert_race *r, int g, int N, int *start, int *end)
{
    *start = g * r->group_tokens;
    *end = N - *start < r->group_tokens ? N : *start + r->group_tokens;
}

static int routed_in(const struct expert_race *r, int start, int end)
{
    int n = 0;
    for (int i = start; i < end; i++) n += r->routed_token[i];
    return n;
}

// L_sim of pool group g = weight (1/n) sum_ij W_ij P'_ij with P' = P^T P over the group's tokens,
// computed as weight (1/n) sum_t <P_t, (P W)_t>, n the routed tokens of the pool (of every rank
// when global). W is symmetric, so dL/dP_t = 2 weight / n (P W)_t; the backward keeps P and P W.
// This rank returns its tokens' share of the sum, and both it and the gradient carry the pool's
// share factor (pool.h).
static double sim_loss_group(const struct router_context *L, struct expert_race *r, int g, int N, int E,
                             int n_routed, double weight)
{
    int start, end;
    group_range(r, g, N, &start, &end);
    if (n_routed == 0) return 0;
    sim_weights(L, r, start, end, E);
    gemm(NO_TRANS, NO_TRANS, end - start, E, E, 1, r->prob + (size_t)start * E, E, r->sim_w, E, 0,
         r->prob_w + (size_t)start * E, E);
    double sum = 0, share = pool_token_gradient_scale(L);
    for (size_t i = (size_t)start * E; i < (size_t)end * E; i++) sum += (double)r->prob[i] * r->prob_w[i];
    // loss.router_sim.divide experts: (1/E) instead of (1/n), as one reimplementation writes it
    double divisor = L->cfg->router_sim_divide == SIM_DIVIDE_EXPERTS ? (double)E : (double)n_routed;
    r->sim_grad_scale[g] = 2 * weight * share / divisor;
    return weight * share * sum / divisor;
}

// The similarity loss of every pool group with weight / groups (their mean). One group counts the
// routed tokens of the whole pool, n_routed (every rank's when global).
static double sim_loss(const struct router_context *L, struct expert_race *r, int N, int E, int n_routed, double weight)
{
    scores_activate(r->prob, r->z, N, E, ACTIVATION_SOFTMAX);
    for (int n = 0; n < N; n++)
        if (!r->routed_token[n]) memset(r->prob + (size_t)n * E, 0, sizeof(real) * E);
    double loss = 0;
    for (int g = 0; g < r->groups; g++) {
        int start, end;
        group_range(r, g, N, &start, &end);
        int n_pool = r->groups > 1 ? routed_in(r, start, end) : n_routed;
        loss += sim_loss_group(L, r, g, N, E, n_pool, weight / r->groups);
    }
    return loss;
}

// d_z [N, E] += the similarity loss's gradient through the softmax: P (g - <P, g>), g = scale P W,
// scale that of the token's pool group.
static void sim_loss_backward(struct expert_race *r, int N, int E)
{
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        real scale = (real)r->sim_grad_scale[n / r->group_tokens];
        if (scale == 0) continue;
        const real *p = r->prob + (size_t)n * E, *pw = r->prob_w + (size_t)n * E;
        real dot = 0;
        for (int e = 0; e < E; e++) dot += p[e] * scale * pw[e];
        for (int e = 0; e < E; e++) r->d_z[(size_t)n * E + e] += p[e] * (scale * pw[e] - dot);
    }
}

// ---- plan and backward ----

// Training over pool groups (moe/pool.h, scope samples): each group races on its own; the
// threshold follows the mean of the groups' race thresholds, as races per rank average theirs.
static void race_groups(struct router_context *L, struct expert_race *r, const int *routed, int N, int T, int E,
                        int k)
{
    double tau_sum = 0;
    int raced = 0;
    for (int g = 0; g < r->groups; g++) {
        int start, end;
        group_range(r, g, N, &start, &end);
        struct race_field f = {r->s, routed, end, T, 0, routed_in(r, start, end), start};
        real tau_b = race_select(r, &f, N, E, k);
        if (f.n_routed > 0) tau_sum += tau_b, raced++;
    }
    if (L->update_buffers) threshold_update(L, r, raced ? tau_sum / raced : 0, raced > 0);
}

static void race_plan(struct router_context *L, const real *x, const int *routed, int B, int T)
{
    struct expert_race *r = L->router_state;
    int N = B * T, E = L->spec.routed, k = L->spec.active, n_routed = 0;
    gemm(NO_TRANS, TRANS, N, E, L->D, 1, x, L->D, r->w, L->D, 0, r->z, E);
    scores_activate(r->s, r->z, N, E, L->spec.activation);
    for (int n = 0; n < N; n++) n_routed += r->routed_token[n] = routed[n / T];
    memset(r->selected, 0, sizeof(int) * N * E);
    r->groups = L->training ? pool_group_count(L, B) : 1;
    r->group_tokens = (L->training ? pool_group_samples(L, B) : B) * T;
    for (int g = 0; g < r->groups; g++) r->sim_grad_scale[g] = 0;
    struct race_field field = local_field(r, routed, N, T, n_routed);
    if (L->training && r->groups > 1) {
        race_groups(L, r, routed, N, T, E, k);
    } else if (L->training) {
        field = training_field(L, r, routed, B, T);
        real tau_b = race_select(r, &field, N, E, k);
        if (L->update_buffers) threshold_update(L, r, tau_b, field.n_routed > 0);
    } else if (*r->tau_set <= (real)THRESHOLD_SET_LEVEL) {
        race_select(r, &field, N, E, k);   // a model never trained has no threshold: the race decides
    } else {
        threshold_select(r, N, E);
    }
    // Token-major order keeps tokens ascending within each expert's slots.
    for (int n = 0; n < N; n++)
        for (int e = 0; e < E; e++)
            if (r->selected[(size_t)n * E + e]) plan_add(&L->plan, e, n, r->s[(size_t)n * E + e]);
    if (L->training && L->cfg->router_sim_weight > 0 && field.n_routed > 0)
        L->aux[AUX_ROUTER_SIM] = sim_loss(L, r, N, E, field.n_routed, L->cfg->router_sim_weight);
}

static void race_backward(struct router_context *L, const real *x, const int *routed, int B, int T, real *d_x)
{
    struct expert_race *r = L->router_state;
    const struct routing_plan *p = &L->plan;
    int N = B * T, E = L->spec.routed;
    (void)routed;
    plan_gate_gradients(p, r->d_s, N, E);
    scores_activate_backward(r->d_z, r->d_s, r->s, N, E, L->spec.activation);
    if (L->cfg->router_sim_weight > 0) sim_loss_backward(r, N, E);
    gemm(TRANS, NO_TRANS, E, L->D, N, 1, r->d_z, E, x, L->D, 1, r->g, L->D);
    gemm(NO_TRANS, NO_TRANS, N, L->D, E, 1, r->d_z, E, r->w, L->D, 1, d_x, L->D);
}

// model.moe.race_momentum: -1 (the shared model.moe.threshold_momentum) or a momentum in [0, 1].
static int race_check(const struct moe_spec *spec, const struct config *cfg)
{
    (void)spec;
    double m = cfg->moe_race_momentum;
    if (m < 0 && m != -1)
        return err("model.moe.race_momentum %g: expected -1 (use model.moe.threshold_momentum) or a momentum in "
                   "[0, 1]", m);
    return 0;
}

const struct router_ops router_expert_race = {
    .default_activation = ACTIVATION_IDENTITY,
    .check = race_check,
    .aux = AUX_BIT(AUX_ROUTER_SIM),
    .reads = ROUTER_READS_ACTIVATION | ROUTER_READS_THRESHOLD_MOMENTUM | ROUTER_READS_RACE_MOMENTUM,
    .add_params = race_add_params,
    .bind = race_bind,
    .max_slots = race_max_slots,
    .layout = race_layout,
    .plan = race_plan,
    .backward = race_backward,
    .destroy = router_free_state,
};
