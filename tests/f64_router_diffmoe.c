// DiffMoE gradient checks in double precision (ROUTERS.md 3.3). The capacity predictor reads
// detached tokens, so the true derivative of its BCE reaches the backbone while the trained
// gradient must not: whole-DiT checks (gradcheck_dit) run with loss.capacity.weight 0, and with
// the weight on, the MoE layer's own tensors (router, experts, predictor, none upstream of its
// input) are checked against the full loss and every other gradient must equal the weight-0 one.
// Inputs are chosen so that no finite-difference perturbation can flip the pool selection.
#include <omp.h>

#include "core/blas.h"
#include "gradcheck.h"

#define MIN_SELECTION_MARGIN 1e-3   // k-th minus (k+1)-th score; perturbations move scores ~1e-5
#define MAX_INPUT_TRIES 50
#define MOE_BLOCK 1                 // depth 2 with the default placement: block 1 is the MoE layer

// The tiny DiT of gradcheck_dit with its random weights and inputs, drawn in the same order from
// test_rng, so a saved test_rng reproduces gradcheck_dit's exact case.
struct tiny {
    struct config cfg;
    struct dit m;
    real *w, *g, *r;
    real x[3 * 2 * 64], t[3];
    int labels[3];
    size_t out_n;
    struct dit_ctx ctx;
    struct fd_case c;
};

static void tiny_build(struct tiny *s, const char *name, const char *const *sets, int n_sets)
{
    config_defaults(&s->cfg);
    const char *base[] = {"data.channels=2", "data.image_size=8", "model.patch=2", "model.hidden=16",
                          "model.depth=2", "model.heads=2", "data.num_classes=3", "data.name=npy",
                          "data.path=x", "data.labels=y"};
    for (size_t i = 0; i < sizeof base / sizeof *base; i++) config_set(&s->cfg, base[i]);
    for (int i = 0; i < n_sets; i++)
        if (config_set(&s->cfg, sets[i]) < 0) CHECK(0, "%s: %s", name, err_message());
    CHECK(dit_create(&s->m, &s->cfg, 3) == 0, "%s: dit_create: %s", name, err_message());
    s->m.training = 1;
    s->m.update_buffers = 0;
    size_t n = s->m.table.total;
    s->w = calloc(n, sizeof(real)), s->g = calloc(n, sizeof(real));
    params_init(&s->m.table, s->w, 7);
    fill_normal(s->w, n, 0.3);
    pos_embed_table(s->w + params_find(&s->m.table, "pos_embed")->offset, 4, 16);
    dit_bind_weights(&s->m, s->w);
    dit_bind_grads(&s->m, s->g);
    int labels[3] = {0, 3, 1};
    real t[3] = {3.0, 500.5, 999.0};
    memcpy(s->labels, labels, sizeof labels);
    memcpy(s->t, t, sizeof t);
    s->out_n = (size_t)3 * 4 * 8 * 8;
    s->r = malloc(sizeof(real) * s->out_n);
    fill_normal(s->x, sizeof s->x / sizeof *s->x, 1);
    fill_normal(s->r, s->out_n, 1);
    s->ctx = (struct dit_ctx){&s->m, s->x, s->t, s->labels, 3, s->r, s->out_n, 0};
    s->c = (struct fd_case){name, dit_fwd, &s->ctx, s->m.acts.out, s->r, s->out_n, dit_aux, dit_routing_signature};
}

static void tiny_free(struct tiny *s)
{
    free(s->w), free(s->g), free(s->r);
    dit_destroy(&s->m);
}

// Loss at the current weights, then gradients (overwritten) into s->g.
static void tiny_gradients(struct tiny *s)
{
    memset(s->g, 0, sizeof(real) * s->m.table.total);
    loss_of(&s->c);
    dit_backward(&s->m, s->r, 3);
}

// The smallest gap, over experts, between the k-th and (k+1)-th pool score of the MoE layer.
static double selection_margin(struct tiny *s)
{
    const struct moe_layer *L = s->m.moe[MOE_BLOCK];
    const real *x = s->m.acts.blocks[MOE_BLOCK].mod2;
    const real *W = s->w + params_find(&s->m.table, "blocks.1.mlp.gate_weight")->offset;
    int T = s->m.shape.tokens, N = 3 * T, D = L->D, E = L->spec.routed, n = 0;
    double S[3 * 16 * 8], column[3 * 16], margin = INFINITY;
    loss_of(&s->c);
    for (int i = 0; i < N; i++) {
        double z[8], max = -INFINITY, sum = 0;
        for (int e = 0; e < E; e++) {
            z[e] = dot(x + (size_t)i * D, W + (size_t)e * D, D);
            max = fmax(max, z[e]);
        }
        for (int e = 0; e < E; e++) sum += exp(z[e] - max);
        for (int e = 0; e < E; e++)
            S[i * E + e] = L->spec.activation == ACTIVATION_SIGMOID ? 1 / (1 + exp(-z[e])) : exp(z[e] - max) / sum;
    }
    for (int i = 0; i < N; i++) n += L->routed[i / T];
    int k = (int)floor((double)n / E * L->spec.capacity);
    for (int e = 0; e < E; e++) {
        int m = 0;
        for (int i = 0; i < N; i++)
            if (L->routed[i / T]) column[m++] = S[i * E + e];
        for (int a = 0; a < m; a++)   // sort descending (tiny)
            for (int b = a + 1; b < m; b++)
                if (column[b] > column[a]) { double v = column[a]; column[a] = column[b]; column[b] = v; }
        if (k > 0 && k < m) margin = fmin(margin, column[k - 1] - column[k]);
    }
    return margin;
}

// Leaves test_rng where the tiny DiT built from it has a selection margin above
// MIN_SELECTION_MARGIN, skipping one draw per try (near-ties, e.g. saturated softmax columns,
// could flip under perturbation); the inputs stay a pure function of the seed.
static void choose_inputs(const char *name, const char *const *sets, int n_sets)
{
    double margin = 0;
    int tries = 0;
    for (; tries < MAX_INPUT_TRIES; tries++) {
        struct rng saved = test_rng;
        struct tiny s;
        tiny_build(&s, name, sets, n_sets);
        margin = selection_margin(&s);
        tiny_free(&s);
        test_rng = saved;
        if (margin > MIN_SELECTION_MARGIN) break;
        rng_normal(&test_rng);
    }
    printf("%s: selection margin %.3g after skipping %d draws\n", name, margin, tries);
    CHECK(margin > MIN_SELECTION_MARGIN, "%s: no input with selection margin above %g", name, MIN_SELECTION_MARGIN);
}

// gradcheck_dit with loss.capacity.weight 0 on inputs with a safe selection margin.
static void gradcheck_diffmoe(const char *name, const char *const *sets, int n_sets)
{
    const char *all[8] = {"model.moe.router=diffmoe", "loss.capacity.weight=0"};
    for (int i = 0; i < n_sets; i++) all[2 + i] = sets[i];
    choose_inputs(name, all, 2 + n_sets);
    gradcheck_dit(name, all, 2 + n_sets);
}

static int is_predictor(const char *name) { return strstr(name, "capacity_predictor") != NULL; }

// Gradients (into a new buffer) at loss.capacity.weight = weight; the MoE layers read the
// model's copy of the config.
static real *gradients_at(struct tiny *s, double weight)
{
    real *out = malloc(sizeof(real) * s->m.table.total);
    s->m.cfg.capacity_weight = weight;
    tiny_gradients(s);
    memcpy(out, s->g, sizeof(real) * s->m.table.total);
    return out;
}

// Counts, over every tensor, gradients outside the predictor that differ between a and b, and
// predictor gradients of a that are nonzero (zero_wanted) or zero (!zero_wanted).
static void compare_gradients(const struct param_table *t, const real *a, const real *b, int zero_wanted,
                              int *changed, int *predictor_bad)
{
    *changed = *predictor_bad = 0;
    for (int i = 0; i < t->n; i++) {
        const struct param_entry *e = &t->entries[i];
        for (size_t j = e->offset; j < e->offset + e->count; j++) {
            if (!is_predictor(e->name)) *changed += a[j] != b[j];
            else *predictor_bad += zero_wanted ? a[j] != 0 : a[j] == 0;
        }
    }
}

// With the BCE on: the MoE layer's tensors against the full loss (router, experts and predictor;
// none is upstream of the layer's input). At weights 0, w and 3w every gradient outside the
// predictor is the same bit for bit (no BCE into x); at 0 the predictor gets nothing.
static void check_capacity_loss(const char *name, const char *const *sets, int n_sets, double weight)
{
    const char *all[8] = {"model.moe.router=diffmoe"};
    for (int i = 0; i < n_sets; i++) all[1 + i] = sets[i];
    choose_inputs(name, all, 1 + n_sets);
    struct tiny s;
    tiny_build(&s, name, all, 1 + n_sets);
    const struct param_table *t = &s.m.table;
    real *without = gradients_at(&s, 0), *tripled = gradients_at(&s, 3 * weight), *with_bce = gradients_at(&s, weight);
    CHECK(s.ctx.aux > 0, "%s: capacity loss %.3g", name, s.ctx.aux);
    char prefix[32];
    snprintf(prefix, sizeof prefix, "blocks.%d.mlp.", MOE_BLOCK);
    for (int i = 0; i < t->n; i++) {
        const struct param_entry *e = &t->entries[i];
        if (e->trainable && strncmp(e->name, prefix, strlen(prefix)) == 0)
            check_variable(&s.c, e->name, s.w + e->offset, with_bce + e->offset, e->count);
    }
    int changed, predictor_bad;
    compare_gradients(t, without, with_bce, 1, &changed, &predictor_bad);
    CHECK(changed == 0, "%s: %d gradients outside the predictor change at weight %g", name, changed, weight);
    CHECK(predictor_bad == 0, "%s: predictor gets %d nonzero gradients from the diffusion loss", name, predictor_bad);
    compare_gradients(t, tripled, with_bce, 0, &changed, &predictor_bad);
    CHECK(changed == 0, "%s: %d gradients outside the predictor change from weight %g to %g", name, changed,
          weight, 3 * weight);
    CHECK(predictor_bad == 0, "%s: %d predictor gradients are zero with the BCE on", name, predictor_bad);
    printf("%s: capacity loss checked at weight %g\n", name, weight);
    free(without), free(tripled), free(with_bce);
    tiny_free(&s);
}

int main(void)
{
    omp_set_num_threads(1);   // thousands of tiny forwards: OpenMP barriers would dominate
    blas_set_threads(1);
    rng_init(&test_rng, 1234, 0, RNG_TEST, 0);
    const char *softmax[] = {"model.moe.experts=E4A1S0U0"};
    gradcheck_diffmoe("diffmoe softmax E4", softmax, 1);
    const char *sigmoid[] = {"model.moe.experts=E4A1S0U0", "model.moe.activation=sigmoid", "model.moe.capacity=2"};
    gradcheck_diffmoe("diffmoe sigmoid capacity 2", sigmoid, 3);
    const char *cond[] = {"model.moe.experts=E5A1S0U1", "model.moe.conditional=true"};
    gradcheck_diffmoe("diffmoe conditional", cond, 2);
    check_capacity_loss("diffmoe + capacity loss", softmax, 1, 0.7);
    const char *cond_sigmoid[] = {"model.moe.experts=E5A1S0U1", "model.moe.conditional=true",
                                  "model.moe.activation=sigmoid"};
    check_capacity_loss("diffmoe conditional sigmoid + capacity loss", cond_sigmoid, 3, 1.0);
    // Pools of one sample each (moe/pool.h): selection per pool, the BCE a mean over the pools.
    const char *pools[] = {"model.moe.experts=E5A1S0U1", "model.moe.conditional=true", "model.moe.pool_scope=samples",
                           "model.moe.pool_samples=1"};
    gradcheck_diffmoe("diffmoe conditional, pools of 1 sample", pools, 4);
    check_capacity_loss("diffmoe conditional + capacity loss, pools of 1 sample", pools, 4, 1.0);
    return test_summary("f64_router_diffmoe");
}
