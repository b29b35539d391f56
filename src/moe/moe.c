// The MoE layer shared by every router: expert registration under the tensor names of the
// router's official class (ProMoE's up_proj/down_proj, or fc1/fc2 for TC-DiT, EC-DiT, DiffMoE), the
// routing plan (staged entries sorted into per-expert slot ranges), dispatch and its backward.
// Experts run one after another, each as BLIS products over its gathered tokens; scatter-adds
// go expert by expert, so each token's sum has a fixed order (determinism).
#include "moe/moe.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "nn/activation.h"
#include "moe/registry.h"
#include "nn/linear.h"

// Counting sort of the staged entries by expert, keeping their staged order within an expert.
static void plan_finalize(struct routing_plan *p)
{
    memset(p->offset, 0, sizeof(int) * (p->n_experts + 1));
    for (int i = 0; i < p->n_staged; i++) p->offset[p->stage_expert[i] + 1]++;
    for (int e = 0; e < p->n_experts; e++) p->offset[e + 1] += p->offset[e];
    int next[p->n_experts];
    memcpy(next, p->offset, sizeof next);
    for (int i = 0; i < p->n_staged; i++) {
        int slot = next[p->stage_expert[i]]++;
        p->token[slot] = p->stage_token[i];
        p->gate[slot] = p->stage_gate[i];
    }
    p->n_slots = p->n_staged;
}

// The two linears of an expert under the names its router's official class uses (router.h).
static void linear_names(const struct moe_layer *L, int shared, const char **up, const char **down)
{
    int fc = !shared && L->router->expert_names == EXPERT_NAMES_FC;
    *up = fc ? "fc1" : "up_proj";
    *down = fc ? "fc2" : "down_proj";
}

static int add_expert(struct param_table *t, const struct moe_layer *L, const char *prefix, int shared, int activated)
{
    const char *up, *down;
    linear_names(L, shared, &up, &down);
    int64_t D = L->D, h = L->spec.hidden;
    const struct { const char *linear, *part; int64_t d0, d1; int ndim; enum param_init init; } parts[] = {
        {up, "weight", h, D, 2, INIT_XAVIER}, {up, "bias", h, 0, 1, INIT_ZERO},
        {down, "weight", D, h, 2, INIT_XAVIER}, {down, "bias", D, 0, 1, INIT_ZERO}};
    char name[PARAM_NAME_MAX + 32];
    for (int i = 0; i < 4; i++) {
        int64_t shape[2] = {parts[i].d0, parts[i].d1};
        snprintf(name, sizeof name, "%s.%s.%s", prefix, parts[i].linear, parts[i].part);
        int index = params_add(t, name, parts[i].ndim, shape, parts[i].init, 0, 1);
        if (index < 0) return -1;
        t->entries[index].activated = activated;
    }
    return 0;
}

static void expert_prefix(char *out, const struct moe_layer *L, int shared, int index)
{
    if (shared && L->spec.shared == 1) snprintf(out, PARAM_NAME_MAX, "blocks.%d.mlp.shared_expert", L->block);
    else if (shared) snprintf(out, PARAM_NAME_MAX, "blocks.%d.mlp.shared_experts.%d", L->block, index);
    else snprintf(out, PARAM_NAME_MAX, "blocks.%d.mlp.experts.%d", L->block, index);
}

int moe_create(struct moe_layer *L, const struct config *cfg, int block, struct param_table *t)
{
    memset(L, 0, sizeof *L);
    if (moe_spec_from_config(cfg, &L->spec) < 0) return -1;
    L->cfg = cfg;
    L->block = block;
    L->D = cfg->hidden;
    L->num_classes = cfg->num_classes;
    L->seed = cfg->seed;
    L->router = router_lookup(L->spec.router);
    if (!L->router) BUG("model.moe.router %d has no registry row", cfg->moe_router);
    int experts = L->spec.routed + L->spec.uncond, S = L->spec.shared;
    L->w = calloc(experts, sizeof *L->w);
    L->g = calloc(experts, sizeof *L->g);
    L->shared_w = calloc(S ? S : 1, sizeof *L->shared_w);
    L->shared_g = calloc(S ? S : 1, sizeof *L->shared_g);
    if (!L->w || !L->g || !L->shared_w || !L->shared_g) return err("out of memory");
    char prefix[PARAM_NAME_MAX];
    for (int e = 0; e < experts; e++) {
        expert_prefix(prefix, L, 0, e);
        // Activated parameters: the top-k routed experts' worth; unconditional ones are extra.
        if (add_expert(t, L, prefix, 0, e < L->spec.active) < 0) return -1;
    }
    for (int s = 0; s < S; s++) {
        expert_prefix(prefix, L, 1, s);
        if (add_expert(t, L, prefix, 1, 1) < 0) return -1;
    }
    snprintf(prefix, sizeof prefix, "blocks.%d.mlp", block);
    return L->router->add_params(&L->ctx, t, prefix);
}

void moe_destroy(struct moe_layer *L)
{
    free(L->w);
    free(L->g);
    free(L->shared_w);
    free(L->shared_g);
    if (L->router && L->router->destroy) L->router->destroy(&L->ctx);
    memset(L, 0, sizeof *L);
}

static void bind_expert(struct expert_tensors *x, const struct moe_layer *L, const struct param_table *t, real *base,
                        const char *prefix, int shared)
{
    const char *up, *down;
    char name[PARAM_NAME_MAX];
    linear_names(L, shared, &up, &down);
    snprintf(name, sizeof name, "%s.weight", up);
    x->up_w = router_tensor(t, base, prefix, name);
    snprintf(name, sizeof name, "%s.bias", up);
    x->up_b = router_tensor(t, base, prefix, name);
    snprintf(name, sizeof name, "%s.weight", down);
    x->down_w = router_tensor(t, base, prefix, name);
    snprintf(name, sizeof name, "%s.bias", down);
    x->down_b = router_tensor(t, base, prefix, name);
}

void moe_bind(struct moe_layer *L, const struct param_table *t, real *base, int grads)
{
    char prefix[PARAM_NAME_MAX];
    for (int e = 0; e < L->spec.routed + L->spec.uncond; e++) {
        expert_prefix(prefix, L, 0, e);
        bind_expert(grads ? &L->g[e] : &L->w[e], L, t, base, prefix, 0);
    }
    for (int s = 0; s < L->spec.shared; s++) {
        expert_prefix(prefix, L, 1, s);
        bind_expert(grads ? &L->shared_g[s] : &L->shared_w[s], L, t, base, prefix, 1);
    }
    snprintf(prefix, sizeof prefix, "blocks.%d.mlp", L->block);
    L->router->bind(&L->ctx, t, prefix, base, grads);
}

// What the backward reads, kept per layer: the plan, the gathered inputs, the pre-activations and
// expert outputs, and the router's activations.
void moe_layout_saved(struct moe_layer *L, struct arena *a, int B, int T)
{
    size_t N = (size_t)B * T, D = L->D, h = L->spec.hidden, S = L->spec.shared;
    struct routing_plan *p = &L->plan;
    p->n_experts = L->spec.routed + L->spec.uncond;
    p->max_slots = L->router->max_slots(&L->ctx, B, T) + (int)(N * L->spec.uncond);
    size_t slots = (size_t)p->max_slots;
    p->offset = arena_ints(a, p->n_experts + 1);
    L->expert_order = arena_ints(a, p->n_experts);
    p->token = arena_ints(a, slots);
    p->gate = arena_reals(a, slots);
    p->d_gate = arena_reals(a, slots);
    p->stage_expert = arena_ints(a, slots);
    p->stage_token = arena_ints(a, slots);
    p->stage_gate = arena_reals(a, slots);
    L->routed = arena_ints(a, B);
    L->labels = arena_ints(a, B);
    L->gathered = arena_reals(a, slots * D);
    L->pre = arena_reals(a, slots * h);
    L->expert_out = arena_reals(a, slots * D);
    L->shared_pre = arena_reals(a, S * N * h);
    L->router->layout(&L->ctx, a, B, T);
}

// Buffers used only inside one layer's forward or backward: the model lays them out once at the
// same place for every layer. The GELU outputs (post) are recomputed from pre in the backward
// rather than kept (with their derivatives), and the GELU gradient overwrites d_post in place.
void moe_layout_scratch(struct moe_layer *L, struct arena *a, int B, int T)
{
    size_t N = (size_t)B * T, D = L->D, h = L->spec.hidden, S = L->spec.shared;
    size_t slots = (size_t)L->plan.max_slots;   // set by moe_layout_saved, which runs first
    L->post = arena_reals(a, slots * h);
    L->deriv = arena_reals(a, slots * h);
    L->shared_post = arena_reals(a, N * h);
    L->shared_deriv = arena_reals(a, N * h);
    L->d_slots = arena_reals(a, slots * D);
    L->d_post = arena_reals(a, slots * h);
    L->d_shared_post = arena_reals(a, N * h);
    L->d_x_slots = arena_reals(a, (S > 1 ? N : 0) * D + slots * D);
}

void moe_layout(struct moe_layer *L, struct arena *a, int B, int T)
{
    moe_layout_saved(L, a, B, T);
    moe_layout_scratch(L, a, B, T);
}

// A router writes only the auxiliary losses its registry entry declares (the trainer logs them).
static void check_declared_aux(const struct moe_layer *L)
{
    for (int k = 0; k < AUX_COUNT; k++)
        if (L->aux[k] != 0 && !(L->router->aux & AUX_BIT(k)))
            BUG("router %s wrote aux/%s, which its registry entry does not declare", router_name(L->spec.router),
                moe_aux_names[k]);
}

// Plan for this forward: the router's entries, then unconditional tokens (gate 1).
static void build_plan(struct moe_layer *L, const real *x, const int *labels, int B, int T)
{
    struct routing_plan *p = &L->plan;
    for (int b = 0; b < B; b++) {
        L->labels[b] = labels[b];
        L->routed[b] = !(L->spec.conditional && labels[b] == L->num_classes);
    }
    p->n_staged = 0;
    p->dropped = 0;
    memset(L->aux, 0, sizeof L->aux);
    L->router->plan(&L->ctx, x, L->routed, B, T);
    check_declared_aux(L);
    for (int b = 0; b < B; b++)
        for (int t = 0; !L->routed[b] && t < T; t++)
            for (int u = 0; u < L->spec.uncond; u++) plan_add(p, L->spec.routed + u, b * T + t, 1);
    plan_finalize(p);
}

// The experts' products follow train.precision (the routers' stay fp32: small products whose
// scores decide discrete assignments).
static enum matmul_precision precision_of(const struct moe_layer *L)
{
    return L->cfg->precision == PRECISION_BF16 ? MATMUL_BF16 : MATMUL_FP32;
}

// The linears of an expert: on all threads, or serial inside the experts' parallel loop (its
// element-wise passes are then nested regions, which run on the calling thread).
typedef void linear_forward_fn(enum matmul_precision, real *, const real *, const real *, const real *, int, int, int);
typedef void linear_backward_fn(enum matmul_precision, real *, real *, real *, const real *, const real *, const real *, int, int,
                                int, int);

// pre [n, h] is the up product without its bias, which the GELU pass adds (no copy before the product).
static void run_expert(enum matmul_precision precision, const struct expert_tensors *w, real *pre, real *post, real *out, const real *in,
                       int n, int D, int h, int serial)
{
    linear_forward_fn *linear = serial ? linear_forward_serial : linear_forward;
    linear(precision, pre, in, w->up_w, NULL, n, D, h);
    gelu_bias_forward(post, pre, w->up_b, n, h);
    linear(precision, out, post, w->down_w, w->down_b, n, h, D);
}

// Experts by decreasing token count, so that dynamic scheduling over threads balances well.
static void order_experts(struct moe_layer *L)
{
    const struct routing_plan *p = &L->plan;
    int *order = L->expert_order;
    for (int e = 0; e < p->n_experts; e++) order[e] = e;
    for (int i = 1; i < p->n_experts; i++)
        for (int j = i; j > 0; j--) {
            int a = order[j - 1], b = order[j];
            if (p->offset[a + 1] - p->offset[a] >= p->offset[b + 1] - p->offset[b]) break;
            order[j - 1] = b;
            order[j] = a;
        }
}

// How many of the experts, taken by decreasing token count (expert_order), hold more than a
// thread's share of the slots: those would keep one thread busy while the others wait (the
// unconditional expert takes every token of a CFG null-label pass).
static int big_experts(const struct moe_layer *L)
{
    const struct routing_plan *p = &L->plan;
    int threads = omp_get_max_threads(), big = 0;
    while (threads > 1 && big < p->n_experts) {
        int e = L->expert_order[big];
        if ((int64_t)(p->offset[e + 1] - p->offset[e]) * threads <= p->n_slots) break;
        big++;
    }
    return big;
}

// Routed or unconditional expert e over its slots of the plan.
static void routed_expert_forward(struct moe_layer *L, int e, int serial)
{
    const struct routing_plan *p = &L->plan;
    int D = L->D, h = L->spec.hidden, first = p->offset[e], n = p->offset[e + 1] - first;
    if (n > 0)
        run_expert(precision_of(L), &L->w[e], L->pre + (size_t)first * h, L->post + (size_t)first * h,
                   L->expert_out + (size_t)first * D, L->gathered + (size_t)first * D, n, D, h, serial);
}

void moe_forward(struct moe_layer *L, real *y, const real *x, const int *labels, int B, int T)
{
    int N = B * T, D = L->D, h = L->spec.hidden;
    struct routing_plan *p = &L->plan;
    build_plan(L, x, labels, B, T);
#pragma omp parallel for schedule(static)
    for (int s = 0; s < p->n_slots; s++) memcpy(L->gathered + (size_t)s * D, x + (size_t)p->token[s] * D, sizeof(real) * D);
    // Each expert on one thread (its products single-threaded): many mid-sized products in parallel
    // beat each one split over threads. An expert with more than a thread's share of the slots runs
    // first, alone on all threads (BLIS splits rows and columns, never the sum over k: the same bits).
    order_experts(L);
    int big = big_experts(L);
    for (int i = 0; i < big; i++) routed_expert_forward(L, L->expert_order[i], 0);
#pragma omp parallel for schedule(dynamic, 1)
    for (int i = big; i < p->n_experts; i++) routed_expert_forward(L, L->expert_order[i], 1);
    if (L->spec.shared == 0) memset(y, 0, sizeof(real) * N * D);
    real *scratch = L->d_x_slots;   // free during the forward
    for (int s = 0; s < L->spec.shared; s++)
        run_expert(precision_of(L), &L->shared_w[s], L->shared_pre + (size_t)s * N * h, L->shared_post, s == 0 ? y : scratch,
                   x, N, D, h, 0);
    for (int s = 1; s < L->spec.shared; s++)
        for (size_t i = 0; i < (size_t)N * D; i++) y[i] += scratch[i];   // (S > 1 only; order fixed)
    for (int e = 0; e < p->n_experts; e++) {
#pragma omp parallel for schedule(static)
        for (int s = p->offset[e]; s < p->offset[e + 1]; s++) {
            real *row = y + (size_t)p->token[s] * D, g = p->gate[s];
            const real *out = L->expert_out + (size_t)s * D;
            for (int d = 0; d < D; d++) row[d] += g * out[d];
        }
    }
}

// The expert's scratch [n, h] each: post and deriv, the GELU output and derivative recomputed from
// pre; d_post, dLoss/dpost and then dLoss/dpre in place.
struct expert_scratch {
    real *post, *deriv, *d_post;
};

static void expert_backward(enum matmul_precision precision, const struct expert_tensors *w, struct expert_tensors *g, real *d_in,
                            struct expert_scratch x, const real *d_out, const real *in, const real *pre,
                            int n, int D, int h, int accumulate, int serial)
{
    linear_backward_fn *linear = serial ? linear_backward_serial : linear_backward;
    gelu_bias_recompute(x.post, x.deriv, pre, w->up_b, n, h);
    linear(precision, x.d_post, g->down_w, g->down_b, d_out, x.post, w->down_w, n, h, D, 0);
    gelu_apply_deriv(x.d_post, x.deriv, (size_t)n * h);
    linear(precision, d_in, g->up_w, g->up_b, x.d_post, in, w->up_w, n, D, h, accumulate);
}

// Routed or unconditional expert e: d_x_slots of its slots from d_slots; parameter gradients.
static void routed_expert_backward(struct moe_layer *L, int e, int serial)
{
    const struct routing_plan *p = &L->plan;
    int D = L->D, h = L->spec.hidden, first = p->offset[e], n = p->offset[e + 1] - first;
    if (n == 0) return;
    size_t fh = (size_t)first * h, fd = (size_t)first * D;
    struct expert_scratch scratch = {L->post + fh, L->deriv + fh, L->d_post + fh};
    expert_backward(precision_of(L), &L->w[e], &L->g[e], L->d_x_slots + fd, scratch, L->d_slots + fd, L->gathered + fd,
                    L->pre + fh, n, D, h, 0, serial);
}

void moe_backward(struct moe_layer *L, real *d_x, const real *d_y, const real *x, int B, int T)
{
    int N = B * T, D = L->D, h = L->spec.hidden;
    struct routing_plan *p = &L->plan;
    memset(d_x, 0, sizeof(real) * N * D);
    for (int s = 0; s < L->spec.shared; s++)
        expert_backward(precision_of(L), &L->shared_w[s], &L->shared_g[s], d_x,
                        (struct expert_scratch){L->shared_post, L->shared_deriv, L->d_shared_post}, d_y, x,
                        L->shared_pre + (size_t)s * N * h, N, D, h, 1, 0);
#pragma omp parallel for schedule(static)
    for (int s = 0; s < p->n_slots; s++) {
        const real *dy = d_y + (size_t)p->token[s] * D, *out = L->expert_out + (size_t)s * D;
        real *ds = L->d_slots + (size_t)s * D, dot = 0, g = p->gate[s];
        for (int d = 0; d < D; d++) {
            dot += dy[d] * out[d];
            ds[d] = g * dy[d];
        }
        p->d_gate[s] = dot;
    }
    int big = big_experts(L);   // as in the forward: the largest experts alone on all threads
    for (int i = 0; i < big; i++) routed_expert_backward(L, L->expert_order[i], 0);
#pragma omp parallel for schedule(dynamic, 1)
    for (int i = big; i < p->n_experts; i++) routed_expert_backward(L, L->expert_order[i], 1);
    for (int e = 0; e < p->n_experts; e++) {
        int first = p->offset[e], n = p->offset[e + 1] - first;
#pragma omp parallel for schedule(static)
        for (int s = first; s < first + n; s++) {
            real *row = d_x + (size_t)p->token[s] * D;
            const real *src = L->d_x_slots + (size_t)s * D;
            for (int d = 0; d < D; d++) row[d] += src[d];
        }
    }
    L->router->backward(&L->ctx, x, L->routed, B, T, d_x);
}
