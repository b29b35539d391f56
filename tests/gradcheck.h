// Finite-difference gradient checking for the double-precision build (tests/f64_*.c): five-point
// central differences with step 5e-5 (truncation O(h^4), so rounding dominates: about
// 1e-16 |loss| / h); error = |numeric - analytic| / max(|numeric|, |analytic|, 1e-3), limit 1e-5
// (the floor keeps exactly-zero gradients, such as the key bias's, from turning rounding noise
// into a relative error of 1). gradcheck_dit checks every trainable tensor of a whole tiny DiT
// built from config overrides (MoE layers included, auxiliary losses added to the loss), with
// random weights and inputs, buffers frozen, and checks that backward accumulates.
#ifndef PROMOE_GRADCHECK_H
#define PROMOE_GRADCHECK_H

#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/error.h"
#include "core/rng.h"
#include "model/dit.h"
#include "nn/embed.h"

#define FD_STEP 5e-5
#define FD_TOLERANCE 1e-5
#define FD_FLOOR 1e-3
#define MAX_CHECKS_PER_TENSOR 24

static struct rng test_rng;

static void fill_normal(real *x, size_t n, double std)
{
    for (size_t i = 0; i < n; i++) x[i] = rng_normal(&test_rng) * std;
}

static double dot(const real *a, const real *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

static double rel_error(double a, double b) { return fabs(a - b) / fmax(FD_FLOOR, fmax(fabs(a), fabs(b))); }

// A layer under test: forward computes out from the variables; loss = <out, R>.
typedef void (*forward_fn)(void *ctx);

struct fd_case {
    const char *name;
    forward_fn forward;
    void *ctx;
    real *out, *probe;   // probe = R
    size_t out_n;
    double (*extra_loss)(void *ctx);   // added to <out, R> when set (MoE auxiliary losses)
    uint64_t (*signature)(void *ctx);  // when set: a hash of the routing decisions of the last forward
};

static double loss_of(struct fd_case *c)
{
    c->forward(c->ctx);
    return dot(c->out, c->probe, c->out_n) + (c->extra_loss ? c->extra_loss(c->ctx) : 0);
}

// Compares analytic gradient grad [n] of variable x [n] against central differences. Routing
// (top-k, capacity) is piecewise constant: an entry whose perturbation changes a routing decision
// has no finite difference to compare and is skipped; at most a quarter may be.
static void check_variable(struct fd_case *c, const char *var, real *x, const real *grad, size_t n)
{
    double worst = 0, worst_numeric = 0, worst_analytic = 0;
    size_t stride = n > MAX_CHECKS_PER_TENSOR ? n / MAX_CHECKS_PER_TENSOR : 1, checked = 0, skipped = 0;
    loss_of(c);
    uint64_t routing = c->signature ? c->signature(c->ctx) : 0;
    for (size_t i = 0; i < n; i += stride) {
        real saved = x[i];
        double f[4], offsets[4] = {2 * FD_STEP, FD_STEP, -FD_STEP, -2 * FD_STEP};
        int flipped = 0;
        for (int j = 0; j < 4; j++) {
            x[i] = saved + offsets[j];
            f[j] = loss_of(c);
            flipped |= c->signature && c->signature(c->ctx) != routing;
        }
        x[i] = saved;
        checked++;
        if (flipped) {
            skipped++;
            continue;
        }
        double numeric = (-f[0] + 8 * f[1] - 8 * f[2] + f[3]) / (12 * FD_STEP);
        double e = rel_error(numeric, grad[i]);
        if (e > worst) {
            worst = e;
            worst_numeric = numeric;
            worst_analytic = grad[i];
        }
    }
    loss_of(c);
    CHECK(worst <= FD_TOLERANCE, "%s: d%s worst error %.3g (numeric %.9g, analytic %.9g)", c->name,
          var, worst, worst_numeric, worst_analytic);
    CHECK(4 * skipped <= checked, "%s: d%s: %zu of %zu perturbations changed the routing", c->name, var,
          skipped, checked);
}

// ---- the whole network ----
// The network output is probed with R; MoE auxiliary losses are added to the loss as trained.
struct dit_ctx { struct dit *m; real *x, *t; int *labels; int B; real *r; size_t out_n; double aux; };
static void dit_fwd(void *p)
{
    struct dit_ctx *c = p;
    double per_kind[AUX_COUNT];
    dit_forward(c->m, c->x, c->t, c->labels, c->B);
    c->aux = dit_aux_losses(c->m, per_kind);
}

static double dit_aux(void *p) { return ((struct dit_ctx *)p)->aux; }

// FNV-1a over every MoE layer's plan (experts' slot ranges and tokens).
static uint64_t dit_routing_signature(void *p)
{
    const struct dit *m = ((struct dit_ctx *)p)->m;
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < m->shape.depth; i++) {
        const struct routing_plan *plan = m->moe[i] ? &m->moe[i]->plan : NULL;
        for (int e = 0; plan && e <= plan->n_experts; e++) h = (h ^ (uint64_t)plan->offset[e]) * 1099511628211ull;
        for (int s = 0; plan && s < plan->n_slots; s++) h = (h ^ (uint64_t)plan->token[s]) * 1099511628211ull;
    }
    return h;
}

static void gradcheck_dit(const char *name, const char *const *sets, int n_sets)
{
    struct config cfg;
    config_defaults(&cfg);
    const char *base[] = {"data.channels=2", "data.image_size=8", "model.patch=2", "model.hidden=16",
                          "model.depth=2", "model.heads=2", "data.num_classes=3", "data.name=npy",
                          "data.path=x", "data.labels=y"};
    for (size_t i = 0; i < sizeof base / sizeof *base; i++) config_set(&cfg, base[i]);
    for (int i = 0; i < n_sets; i++)
        if (config_set(&cfg, sets[i]) < 0) CHECK(0, "%s: %s", name, err_message());
    struct dit m;
    CHECK(dit_create(&m, &cfg, 3) == 0, "%s: dit_create: %s", name, err_message());
    m.training = 1;
    m.update_buffers = 0;   // k-means centroids, thresholds: fixed across the perturbations
    size_t n = m.table.total;
    real *w = calloc(n, sizeof(real)), *g = calloc(n, sizeof(real)), *g2 = calloc(n, sizeof(real));
    params_init(&m.table, w, 7);
    fill_normal(w, n, 0.3);  // random everywhere, so no path is hidden by a zero
    const struct param_entry *pos = params_find(&m.table, "pos_embed");
    pos_embed_table(w + pos->offset, 4, 16);
    // Buffers are not trained; give prototypes and routers well-separated random values.
    dit_bind_weights(&m, w);
    dit_bind_grads(&m, g);
    int B = 3, labels[3] = {0, 3, 1};   // label 3 = the null label: an unconditional sample
    size_t in_n = (size_t)B * 2 * 8 * 8, out_n = (size_t)B * 4 * 8 * 8;
    real x[3 * 2 * 64], t[3] = {3.0, 500.5, 999.0}, *r = malloc(sizeof(real) * out_n);
    fill_normal(x, in_n, 1); fill_normal(r, out_n, 1);
    m.aux_target = x;   // any [B, C, S, S] target will do for the per-layer heads
    struct dit_ctx ctx = {&m, x, t, labels, B, r, out_n, 0};
    struct fd_case c = {name, dit_fwd, &ctx, m.acts.out, r, out_n, dit_aux, dit_routing_signature};
    loss_of(&c);
    dit_backward(&m, r, B);
    for (int i = 0; i < m.table.n; i++) {
        const struct param_entry *e = &m.table.entries[i];
        if (e->trainable) check_variable(&c, e->name, w + e->offset, g + e->offset, e->count);
    }
    memcpy(g2, g, sizeof(real) * n);
    dit_bind_grads(&m, g2);
    loss_of(&c);
    dit_backward(&m, r, B);
    double worst = 0;
    for (size_t i = 0; i < n; i++) worst = fmax(worst, rel_error(g2[i], 2 * g[i]));
    CHECK(worst < 1e-12, "backward does not accumulate: worst %.3g", worst);
    CHECK(g[pos->offset] == 0, "fixed position table received gradient");
    free(w); free(g); free(g2); free(r);
    dit_destroy(&m);
}

#endif
