// DiffMoE (ROUTERS.md 3.3, arXiv 2503.14487): a linear router scores S = activation(x W_r^T); in
// training the routed tokens of the whole forward form one pool and each expert takes the
// k = floor(n/E * capacity) tokens with the largest S[:, e], gate S. A capacity predictor (Linear,
// SiLU, Linear on detached tokens, BCE x loss.capacity.weight) learns which tokens were taken;
// at inference per-expert thresholds (EMA of the k-th largest predicted probability) set each
// expert's count, still filled by S, so inference is mildly batch dependent, as in the reference.
// With model.moe.pool_scope global over several ranks the training pool is the global batch's:
// scores and predicted probabilities are gathered (moe/pool.h) and each rank keeps its own tokens.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/blas.h"
#include "core/error.h"
#include "moe/router.h"
#include "moe/pool.h"
#include "moe/scores.h"
#include "nn/activation.h"
#include "nn/linear.h"

#define GATE_INIT_STD 0.006   // N(0, 0.006^2), as EC-DiT and DiffMoE initialise the router

// One candidate of a per-expert ranking: a score and the token's position in the pool.
struct scored {
    real value;
    int position;
};

struct diffmoe {
    real *w, *g;                          // gate_weight [E, D] and its gradient
    real *w0, *b0, *w2, *b2;              // capacity predictor [D, D], [D], [E, D], [E]
    real *g_w0, *g_b0, *g_w2, *g_b2;      // their gradients
    real *tau;                            // expert_threshold [E] (buffer)
    real *z, *s, *d_s, *d_z;              // router logits, scores and their gradients [N, E]
    int *pool;                            // [N] routed token indices, ascending (first n_pool used)
    real *pool_x;                         // [N, D] pooled tokens (a detached copy)
    real *h_pre, *h_post;                 // [N, D] predictor hidden layer
    real *d_h_pre, *d_h_post;             // [N, D]
    real *pred, *prob, *d_pred;           // [N, E] predictor logits, sigmoid, BCE gradient
    real *taken;                          // [N, E] target M: 1 where expert e took pool token i
    struct scored *ranking;               // [E, W N] per-expert sorting scratch (W = pool ranks)
    int n_pool, trained;                  // pool size; 1 when the last forward was a training one
    // The training pool over every pool rank (with scope rank, this rank's own tokens):
    const real *all_s;                    // [W N, E] scores, rows by global token r N + n
    real *gathered_s, *gathered_prob;     // [W N, E] gather targets (W > 1 only)
    real *prob_by_token;                  // [N, E] this rank's prob at token rows, for the gather
    int *gathered_routed;                 // [W B] routed flags of every pool rank's samples
    int *all_pool;                        // [W N] the pool's global token indices, ascending
    int n_all, first;                     // pool size over every rank; this rank's first position
    // Pool groups (moe/pool.h, scope samples): groups of group_tokens consecutive tokens, each its
    // own pool; the capacity loss is the mean of theirs. groups = 1 otherwise.
    int groups, group_tokens;
};

static int dm_add_params(struct router_context *L, struct param_table *t, const char *prefix)
{
    if (!(L->router_state = calloc(1, sizeof(struct diffmoe)))) return err("out of memory");
    int E = L->spec.routed, D = L->D;
    if (router_add_tensor(t, prefix, "gate_weight", 2, E, D, INIT_NORMAL, GATE_INIT_STD, 1) < 0 ||
        router_add_tensor(t, prefix, "capacity_predictor.0.weight", 2, D, D, INIT_XAVIER, 0, 1) < 0 ||
        router_add_tensor(t, prefix, "capacity_predictor.0.bias", 1, D, 0, INIT_ZERO, 0, 1) < 0 ||
        router_add_tensor(t, prefix, "capacity_predictor.2.weight", 2, E, D, INIT_XAVIER, 0, 1) < 0 ||
        router_add_tensor(t, prefix, "capacity_predictor.2.bias", 1, E, 0, INIT_ZERO, 0, 1) < 0)
        return -1;
    // Buffers as the official class registers them: not optimised, saved in checkpoints, copied
    // into the EMA weights. expert_threshold [E]; ema_decay [1], the thresholds' EMA momentum
    // (model.moe.threshold_momentum), kept so that the state dict loads strictly.
    return router_add_tensor(t, prefix, "expert_threshold", 1, E, 0, INIT_ZERO, 0, 0) < 0 ||
                   router_add_tensor(t, prefix, "ema_decay", 1, 1, 0, INIT_CONSTANT, L->cfg->moe_threshold_momentum, 0) < 0
               ? -1
               : 0;
}

static void dm_bind(struct router_context *L, const struct param_table *t, const char *prefix, real *base, int grads)
{
    struct diffmoe *r = L->router_state;
    real *gate = router_tensor(t, base, prefix, "gate_weight"), *w0 = router_tensor(t, base, prefix, "capacity_predictor.0.weight");
    real *b0 = router_tensor(t, base, prefix, "capacity_predictor.0.bias");
    real *w2 = router_tensor(t, base, prefix, "capacity_predictor.2.weight");
    real *b2 = router_tensor(t, base, prefix, "capacity_predictor.2.bias");
    if (grads) {
        r->g = gate, r->g_w0 = w0, r->g_b0 = b0, r->g_w2 = w2, r->g_b2 = b2;
        return;
    }
    r->w = gate, r->w0 = w0, r->b0 = b0, r->w2 = w2, r->b2 = b2;
    r->tau = router_tensor(t, base, prefix, "expert_threshold");
}

// At inference an expert may take every routed token (its predicted count can reach n), so the
// worst case is n * E slots; training needs at most E * min(k, n) <= n * E.
static int dm_max_slots(const struct router_context *L, int B, int T) { return B * T * L->spec.routed; }

static void dm_layout(struct router_context *L, struct arena *a, int B, int T)
{
    struct diffmoe *r = L->router_state;
    size_t N = (size_t)B * T, E = L->spec.routed, D = L->D, W = pool_ranks(L);
    r->z = arena_reals(a, N * E);
    r->s = arena_reals(a, N * E);
    r->d_s = arena_reals(a, N * E);
    r->d_z = arena_reals(a, N * E);
    r->pool = arena_ints(a, N);
    r->pool_x = arena_reals(a, N * D);
    r->h_pre = arena_reals(a, N * D);
    r->h_post = arena_reals(a, N * D);
    r->d_h_pre = arena_reals(a, N * D);
    r->d_h_post = arena_reals(a, N * D);
    r->pred = arena_reals(a, N * E);
    r->prob = arena_reals(a, N * E);
    r->d_pred = arena_reals(a, N * E);
    r->taken = arena_reals(a, N * E);
    size_t ranking_bytes = E * W * N * sizeof(struct scored);
    r->ranking = (struct scored *)arena_reals(a, (ranking_bytes + sizeof(real) - 1) / sizeof(real));
    r->all_pool = arena_ints(a, W * N);
    if (W == 1) return;
    r->gathered_s = arena_reals(a, W * N * E);
    r->gathered_prob = arena_reals(a, W * N * E);
    r->prob_by_token = arena_reals(a, N * E);
    r->gathered_routed = arena_ints(a, W * B);
}

// The pool: tokens of routed samples, ascending; pool_x [n, D] their detached copies.
static void gather_pool(struct diffmoe *r, const real *x, const int *routed, int N, int T, int D)
{
    r->n_pool = 0;
    for (int n = 0; n < N; n++)
        if (routed[n / T]) r->pool[r->n_pool++] = n;
    for (int i = 0; i < r->n_pool; i++)
        memcpy(r->pool_x + (size_t)i * D, x + (size_t)r->pool[i] * D, sizeof(real) * D);
}

// pred [n, E] = Linear(SiLU(Linear(pool_x))), prob = sigmoid(pred).
static void predictor_forward(struct diffmoe *r, int D, int E)
{
    int n = r->n_pool;
    if (n == 0) return;
    linear_forward(MATMUL_FP32, r->h_pre, r->pool_x, r->w0, r->b0, n, D, D);
    silu_forward(r->h_post, r->h_pre, (size_t)n * D);
    linear_forward(MATMUL_FP32, r->pred, r->h_post, r->w2, r->b2, n, D, E);
    for (size_t i = 0; i < (size_t)n * E; i++) r->prob[i] = 1 / (1 + r_exp(-r->pred[i]));
}

// Descending by value; ties to the lower pool position, i.e. the lower token index (ROUTERS.md 3.0).
static int by_value_descending(const void *a, const void *b)
{
    const struct scored *p = a, *q = b;
    if (p->value != q->value) return p->value > q->value ? -1 : 1;
    return (p->position > q->position) - (p->position < q->position);
}

// Ranks a pool of n on column e of v [*, E] (row rows[i] for pool position i, or row i when rows
// is NULL), best first, in expert e's part of the scratch; returns the ranking.
static struct scored *rank_column(struct diffmoe *r, const real *v, const int *rows, int n, int e, int E)
{
    struct scored *out = r->ranking + (size_t)e * n;
    for (int i = 0; i < n; i++) {
        size_t row = rows ? (size_t)rows[i] : (size_t)i;
        out[i].value = v[row * E + e];
        out[i].position = i;
    }
    qsort(out, n, sizeof *out, by_value_descending);
    return out;
}

// Each expert e takes the count[e] tokens with the largest s[:, e] of a pool of n (s [*, E] at
// rows[i]); this rank's tokens are pool positions first .. first + n_pool - 1: marks them in taken
// [n_pool, E] (cleared by the caller).
static void select_by_score(struct diffmoe *r, const real *s, const int *rows, int n, int first,
                            const int *count, int E)
{
#pragma omp parallel for schedule(static)
    for (int e = 0; e < E; e++) {
        const struct scored *ranking = rank_column(r, s, rows, n, e, E);
        for (int j = 0; j < count[e]; j++) {
            int i = ranking[j].position - first;
            if (i >= 0 && i < r->n_pool) r->taken[(size_t)i * E + e] = 1;
        }
    }
}

// The training pool of every pool rank: their scores and routed flags gathered (moe/pool.h), the
// routed tokens' global indices g = rank N + n ascending, which is the pool order one process gives
// the global batch (and so its tie order), and where this rank's tokens start in it.
static void gather_training_pool(struct router_context *L, struct diffmoe *r, const int *routed, int B, int T)
{
    int N = B * T, E = L->spec.routed, W = pool_ranks(L), mine = pool_rank(L) * N;
    r->all_s = pool_gather_reals(L, r->s, (size_t)N * E, r->gathered_s);
    const int *flags = pool_gather_ints(L, routed, B, r->gathered_routed);
    r->n_all = r->first = 0;
    for (int g = 0; g < W * N; g++) {
        if (g == mine) r->first = r->n_all;
        if (flags[g / T]) r->all_pool[r->n_all++] = g;
    }
}

// Training capacity per expert: k = floor(n / E * capacity), at most the pool.
static int training_capacity(int n, int E, double capacity)
{
    int k = (int)floor((double)n / E * capacity);
    return k < n ? k : n;
}

// Inference count per expert: c_e = #{n : sigmoid(pred[n, e]) > tau_e}.
static int predicted_count(const struct diffmoe *r, int e, int E)
{
    int c = 0;
    for (int i = 0; i < r->n_pool; i++) c += r->prob[(size_t)i * E + e] > r->tau[e];
    return c;
}

// BCE-with-logits of pred against taken over this rank's n_pool * E entries, as its share of the
// mean over the whole pool's n_all * E entries, times weight and share (pool.h: the trainer
// averages the ranks' figures, so a global pool's share is pre-multiplied by the world size).
static double capacity_loss(const struct diffmoe *r, int E, double weight, double share)
{
    size_t entries = (size_t)r->n_pool * E;
    if (entries == 0 || weight == 0) return 0;
    double sum = 0;
    for (size_t i = 0; i < entries; i++) {
        double l = r->pred[i];
        sum += fmax(l, 0) - l * r->taken[i] + log1p(exp(-fabs(l)));   // stable log(1 + e^l) - l y
    }
    return weight * share * sum / ((double)r->n_all * E);
}

// The predicted probabilities of the whole training pool and their rows (NULL: pool positions).
// Gathered at token rows, so that all_pool indexes them as it indexes all_s.
static const real *pool_probabilities(struct router_context *L, struct diffmoe *r, int N, int E, const int **rows)
{
    *rows = NULL;
    if (pool_ranks(L) == 1) return r->prob;
    memset(r->prob_by_token, 0, sizeof(real) * N * E);
    for (int i = 0; i < r->n_pool; i++)
        memcpy(r->prob_by_token + (size_t)r->pool[i] * E, r->prob + (size_t)i * E, sizeof(real) * E);
    *rows = r->all_pool;
    return pool_gather_reals(L, r->prob_by_token, (size_t)N * E, r->gathered_prob);
}

// tau_e <- m tau_e + (1 - m) q_e, q_e the k-th largest predicted probability of expert e over the
// whole training pool. A global pool gives every rank the same q; per-rank pools average tau.
static void update_thresholds(struct router_context *L, struct diffmoe *r, int k, int N, int E, double momentum)
{
    if (k < 1) return;   // no k-th largest (tiny pools): keep the thresholds
    const int *rows;
    const real *prob = pool_probabilities(L, r, N, E, &rows);
#pragma omp parallel for schedule(static)
    for (int e = 0; e < E; e++) {
        real q = rank_column(r, prob, rows, r->n_all, e, E)[k - 1].value;
        r->tau[e] = (real)(momentum * r->tau[e] + (1 - momentum) * q);
    }
    if (pool_ranks(L) == 1) pool_average_buffer(r->tau, E);   // as the reference's per-GPU pools do
}

// The plan from taken: pool order keeps tokens ascending within an expert.
static void plan_entries(struct router_context *L, const struct diffmoe *r, int E)
{
    for (int e = 0; e < E; e++)
        for (int i = 0; i < r->n_pool; i++) {
            int n = r->pool[i];
            if (r->taken[(size_t)i * E + e] != 0) plan_add(&L->plan, e, n, r->s[(size_t)n * E + e]);
        }
}

// Pool positions [*first, *last) of group g's routed tokens (the pool is ascending).
static void group_positions(const struct diffmoe *r, int g, int *first, int *last)
{
    int i = 0;
    while (i < r->n_pool && r->pool[i] / r->group_tokens < g) i++;
    *first = i;
    while (i < r->n_pool && r->pool[i] / r->group_tokens == g) i++;
    *last = i;
}

// BCE-with-logits over pool positions [first, last) times E, averaged, times weight.
static double group_capacity_loss(const struct diffmoe *r, int first, int last, int E, double weight)
{
    size_t from = (size_t)first * E, to = (size_t)last * E;
    if (to == from || weight == 0) return 0;
    double sum = 0;
    for (size_t i = from; i < to; i++) {
        double l = r->pred[i];
        sum += fmax(l, 0) - l * r->taken[i] + log1p(exp(-fabs(l)));
    }
    return weight * sum / (double)(to - from);
}

// Training over pool groups: each group's tokens are a pool of their own (selection, capacity k,
// the k-th largest predicted probability), thresholds move by the mean of the groups' updates
// (as per-rank updates averaged over ranks) and the capacity loss is the mean of the groups'.
static void train_groups(struct router_context *L, struct diffmoe *r, int E)
{
    double momentum = L->spec.threshold_momentum, tau_sum[E], loss = 0;
    int updated = 0, count[E];
    memset(tau_sum, 0, sizeof tau_sum);
    for (int g = 0; g < r->groups; g++) {
        int first, last;
        group_positions(r, g, &first, &last);
        int n = last - first, k = training_capacity(n, E, L->spec.capacity);
        for (int e = 0; e < E; e++) count[e] = k;
        select_by_score(r, r->s, r->pool + first, n, -first, count, E);
        loss += group_capacity_loss(r, first, last, E, L->cfg->capacity_weight / r->groups);
        if (k < 1) continue;   // no k-th largest in this group: no threshold update from it
        updated++;
        for (int e = 0; e < E; e++) {
            real q = rank_column(r, r->prob + (size_t)first * E, NULL, n, e, E)[k - 1].value;
            tau_sum[e] += (real)(momentum * r->tau[e] + (1 - momentum) * q);
        }
    }
    r->trained = 1;
    L->aux[AUX_CAPACITY] = loss;
    if (!L->update_buffers || !updated) return;
    for (int e = 0; e < E; e++) r->tau[e] = (real)(tau_sum[e] / updated);
    pool_average_buffer(r->tau, E);
}

static void dm_plan(struct router_context *L, const real *x, const int *routed, int B, int T)
{
    struct diffmoe *r = L->router_state;
    int N = B * T, E = L->spec.routed, D = L->D, count[E];
    gemm(NO_TRANS, TRANS, N, E, D, 1, x, D, r->w, D, 0, r->z, E);
    scores_activate(r->s, r->z, N, E, L->spec.activation);
    gather_pool(r, x, routed, N, T, D);
    predictor_forward(r, D, E);
    int k = 0;
    memset(r->taken, 0, sizeof(real) * r->n_pool * E);
    r->groups = pool_group_count(L, B);
    r->group_tokens = pool_group_samples(L, B) * T;
    if (L->training && r->groups > 1) {
        train_groups(L, r, E);
        plan_entries(L, r, E);
        return;
    }
    if (L->training) {   // k = floor(n/E * capacity) of the whole pool, over every pool rank
        gather_training_pool(L, r, routed, B, T);
        k = training_capacity(r->n_all, E, L->spec.capacity);
        for (int e = 0; e < E; e++) count[e] = k;
        select_by_score(r, r->all_s, r->all_pool, r->n_all, r->first, count, E);
    } else {             // inference: this forward's tokens alone
        for (int e = 0; e < E; e++) count[e] = predicted_count(r, e, E);
        select_by_score(r, r->s, r->pool, r->n_pool, 0, count, E);
    }
    plan_entries(L, r, E);
    r->trained = L->training;
    if (!L->training) return;
    L->aux[AUX_CAPACITY] = capacity_loss(r, E, L->cfg->capacity_weight, pool_token_gradient_scale(L));
    if (L->update_buffers) update_thresholds(L, r, k, N, E, L->spec.threshold_momentum);
}

// d_pred of the mean of the groups' BCE: weight (sigmoid(pred) - M) / (groups n_g E).
static void group_gradients(struct diffmoe *r, int E, double weight)
{
    for (int g = 0; g < r->groups; g++) {
        int first, last;
        group_positions(r, g, &first, &last);
        if (last == first) continue;
        real scale = (real)(weight / r->groups / ((double)(last - first) * E));
        for (size_t i = (size_t)first * E; i < (size_t)last * E; i++) r->d_pred[i] = scale * (r->prob[i] - r->taken[i]);
    }
}

// The predictor's BCE backward: d_pred = weight share (sigmoid(pred) - M) / (n_all E) over this
// rank's entries; its input is detached, so only the predictor's own weights receive gradient
// (nothing into d_x).
static void predictor_backward(struct diffmoe *r, int D, int E, double weight, double share)
{
    int n = r->n_pool;
    if (n == 0 || weight == 0) return;
    if (r->groups > 1) {
        group_gradients(r, E, weight);
    } else {
        real scale = (real)(weight * share / ((double)r->n_all * E));
        for (size_t i = 0; i < (size_t)n * E; i++) r->d_pred[i] = scale * (r->prob[i] - r->taken[i]);
    }
    linear_backward(MATMUL_FP32, r->d_h_post, r->g_w2, r->g_b2, r->d_pred, r->h_post, r->w2, n, D, E, 0);
    silu_backward(r->d_h_pre, r->d_h_post, r->h_pre, (size_t)n * D);
    linear_backward(MATMUL_FP32, NULL, r->g_w0, r->g_b0, r->d_h_pre, r->pool_x, r->w0, n, D, D, 0);
}

static void dm_backward(struct router_context *L, const real *x, const int *routed, int B, int T, real *d_x)
{
    struct diffmoe *r = L->router_state;
    const struct routing_plan *p = &L->plan;
    int N = B * T, E = L->spec.routed, D = L->D;
    (void)routed;
    plan_gate_gradients(p, r->d_s, N, E);
    scores_activate_backward(r->d_z, r->d_s, r->s, N, E, L->spec.activation);
    gemm(TRANS, NO_TRANS, E, D, N, 1, r->d_z, E, x, D, 1, r->g, D);
    gemm(NO_TRANS, NO_TRANS, N, D, E, 1, r->d_z, E, r->w, D, 1, d_x, D);
    if (r->trained) predictor_backward(r, D, E, L->cfg->capacity_weight, pool_token_gradient_scale(L));
}

// Shared experts: the official DiffMoE layout's shared expert is a GELU MLP of width 8D, twice the
// routed experts' width, and the layer gives shared and routed experts one width; refused rather
// than silently different.
static int dm_check(const struct moe_spec *spec, const struct config *cfg)
{
    if (spec->shared > 0)
        return err("model.moe.experts '%s' has %d shared experts, but router diffmoe follows DiffMoE, whose "
                   "shared expert is a GELU MLP of width 8D while its routed experts are 4D; this harness "
                   "gives every expert one width (model.moe.hidden); use S0",
                   cfg->moe_experts, spec->shared);
    return 0;
}

const struct router_ops router_diffmoe = {
    .expert_names = EXPERT_NAMES_FC,   // experts are timm Mlps in the official class
    .pass_dependent = 1,               // inference capacity over the forward batch
    .default_activation = ACTIVATION_SOFTMAX,
    .check = dm_check,
    .aux = AUX_BIT(AUX_CAPACITY),
    .reads = ROUTER_READS_ACTIVATION | ROUTER_READS_CAPACITY | ROUTER_READS_THRESHOLD_MOMENTUM,
    .add_params = dm_add_params,
    .bind = dm_bind,
    .max_slots = dm_max_slots,
    .layout = dm_layout,
    .plan = dm_plan,
    .backward = dm_backward,
    .destroy = router_free_state,
};
