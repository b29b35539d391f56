// Pools over groups of samples (model.moe.pool_scope samples, moe/pool.h) on single MoE layers of
// every pooling router: a batch of GROUPS * P samples with pool_samples P routes each group as a
// batch of its P samples alone would (the same slots and gates), its buffers move by the mean of
// the groups' updates (thresholds) or by the first group's (k-means centroids), its auxiliary loss
// is the mean of the groups' losses, and its gradients are those of that mean. With pool_samples
// equal to the batch (one group) a layer is bit for bit the scope-global layer.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/error.h"
#include "core/rng.h"
#include "moe/moe.h"

#define D 16
#define T 9           // tokens per sample
#define P 3           // samples per pool group
#define GROUPS 2
#define NULL_LABEL 10 // data.num_classes: the label of a dropped class (conditional routing)
#define GATE_STD 1.0  // well-separated router scores
#define REL_TOL 1e-5  // float sums over B and GROUPS * B rows group differently
#define FASHION_MAP "data/superclasses/fashion-mnist.txt"

struct layer {
    struct config cfg;
    struct param_table table;
    struct moe_layer L;
    struct arena arena;
    real *w, *g, *y, *d_x;
    int B;
};

// sets: config overrides (NULL-terminated), then one more (or NULL); router weights N(0, GATE_STD^2)
// drawn the same way for every layer, so that every layer starts from the same parameters.
static void layer_open(struct layer *f, const char *const *sets, const char *extra, int B)
{
    memset(f, 0, sizeof *f);
    config_defaults(&f->cfg);
    char batch[64];
    snprintf(batch, sizeof batch, "train.batch_size=%d", B);
    config_set(&f->cfg, "model.hidden=16");
    config_set(&f->cfg, batch);
    for (int i = 0; sets[i]; i++)
        if (config_set(&f->cfg, sets[i]) < 0) fprintf(stderr, "config_set %s: %s\n", sets[i], err_message());
    if (extra && config_set(&f->cfg, extra) < 0) fprintf(stderr, "config_set %s: %s\n", extra, err_message());
    if (moe_create(&f->L, &f->cfg, 1, &f->table) < 0) {
        fprintf(stderr, "moe_create: %s\n", err_message());
        exit(1);
    }
    f->B = B;
    f->w = calloc(f->table.total, sizeof(real));
    f->g = calloc(f->table.total, sizeof(real));
    f->y = calloc((size_t)B * T * D, sizeof(real));
    f->d_x = calloc((size_t)B * T * D, sizeof(real));
    params_init(&f->table, f->w, 7);
    moe_bind(&f->L, &f->table, f->w, 0);
    moe_bind(&f->L, &f->table, f->g, 1);
    moe_layout(&f->L, &f->arena, B, T);
    if (arena_allocate(&f->arena) < 0) exit(1);
    moe_layout(&f->L, &f->arena, B, T);
    const struct param_entry *gate = params_find(&f->table, "blocks.1.mlp.gate.weight");
    if (!gate) gate = params_find(&f->table, "blocks.1.mlp.gate_weight");   // EC-DiT's and DiffMoE's name
    struct rng r;
    rng_init(&r, 11, 0, RNG_TEST, 1);
    for (size_t i = 0; gate && i < gate->count; i++) f->w[gate->offset + i] = (real)(GATE_STD * rng_normal(&r));
}

static void layer_close(struct layer *f)
{
    moe_destroy(&f->L);
    params_free(&f->table);
    arena_free(&f->arena);
    free(f->w), free(f->g), free(f->y), free(f->d_x);
}

// One training forward and backward (buffers updated) on x [B T, D], output gradient d_y * scale.
static void step(struct layer *f, const real *x, const int *labels, const real *d_y, real scale)
{
    size_t n = (size_t)f->B * T * D;
    real *scaled = malloc(sizeof(real) * n);
    for (size_t i = 0; i < n; i++) scaled[i] = d_y[i] * scale;
    f->L.training = 1;
    f->L.update_buffers = 1;
    moe_forward(&f->L, f->y, x, labels, f->B, T);
    moe_backward(&f->L, f->d_x, scaled, x, f->B, T);
    free(scaled);
}

static void make_batch(real *x, real *d_y, size_t n)
{
    struct rng r;
    rng_init(&r, 3, 0, RNG_TEST, 2);
    for (size_t i = 0; i < n; i++) x[i] = (real)rng_normal(&r), d_y[i] = (real)rng_normal(&r);
}

// The pooled layer's slots of group g's tokens equal the lone layer's, shifted by g P T, expert by
// expert and in order, gates within REL_TOL; returns the number of mismatches.
static int compare_plans(const struct layer *pooled, const struct layer *alone, int g, const char *what)
{
    const struct routing_plan *a = &pooled->L.plan, *b = &alone->L.plan;
    int first = g * P * T, bad = 0, compared = 0;
    for (int e = 0; e < a->n_experts; e++) {
        int j = b->offset[e];
        for (int s = a->offset[e]; s < a->offset[e + 1]; s++) {
            if (a->token[s] < first || a->token[s] >= first + P * T) continue;
            if (j >= b->offset[e + 1] || b->token[j] + first != a->token[s] ||
                fabs(b->gate[j] - a->gate[s]) > REL_TOL * fmax(1e-3, fabs(a->gate[s])))
                bad++;
            j++, compared++;
        }
        bad += b->offset[e + 1] - j > 0 ? b->offset[e + 1] - j : 0;
    }
    CHECK(bad == 0 && compared > 0, "%s: group %d: %d of %d slots differ from its batch alone", what, g, bad,
          compared);
    return bad;
}

// max |expected[i] - actual[i]| relative to max |expected|.
static double relative_difference(const double *expected, const real *actual, size_t n)
{
    double diff = 0, scale = 0;
    for (size_t i = 0; i < n; i++) {
        diff = fmax(diff, fabs(expected[i] - actual[i]));
        scale = fmax(scale, fabs(expected[i]));
    }
    return scale > 0 ? diff / scale : diff;
}

// A buffer of the pooled layer against the mean of the lone layers' (mean = 1) or group 0's.
static void compare_buffer(struct layer *pooled, struct layer alone[GROUPS], const char *name, int mean,
                           const char *what)
{
    const struct param_entry *e = params_find(&pooled->table, name);
    CHECK(e != NULL, "%s: no buffer %s", what, name);
    if (!e) return;
    double *expected = calloc(e->count, sizeof(double));
    for (int g = 0; g < (mean ? GROUPS : 1); g++)
        for (size_t i = 0; i < e->count; i++) expected[i] += (double)alone[g].w[e->offset + i] / (mean ? GROUPS : 1);
    double diff = relative_difference(expected, pooled->w + e->offset, e->count);
    CHECK(diff <= REL_TOL, "%s: buffer %s differs by %.3g relative from the %s", what, name, diff,
          mean ? "groups' mean" : "first group's");
    free(expected);
}

struct pool_case {
    const char *what;
    const char *sets[8];
    enum moe_aux aux;            // the loss compared, AUX_COUNT for none
    const char *mean_buffer;     // buffer equal to the groups' mean, or NULL
    const char *first_buffer;    // buffer equal to the first group's, or NULL
};

// The pooled batch against each group alone: plans, buffers, the mean auxiliary loss, gradients
// (alone with output gradient GROUPS d_y: a pooled loss is the mean of the groups') and d_x.
static void check_groups(const struct pool_case *c, const int *labels)
{
    char pool_samples[64];
    snprintf(pool_samples, sizeof pool_samples, "model.moe.pool_samples=%d", P);
    const char *sets[16];
    int n = 0;
    for (; c->sets[n]; n++) sets[n] = c->sets[n];
    sets[n] = "model.moe.pool_scope=samples", sets[n + 1] = NULL;
    struct layer pooled, alone[GROUPS];
    layer_open(&pooled, sets, pool_samples, GROUPS * P);
    size_t N = (size_t)P * T, all = GROUPS * N * D;
    real *x = malloc(sizeof(real) * all), *d_y = malloc(sizeof(real) * all);
    make_batch(x, d_y, all);
    step(&pooled, x, labels, d_y, 1);
    double aux = 0, *grad = calloc(pooled.table.total, sizeof(double));
    for (int g = 0; g < GROUPS; g++) {
        layer_open(&alone[g], c->sets, NULL, P);
        step(&alone[g], x + g * N * D, labels + g * P, d_y + g * N * D, GROUPS);
        compare_plans(&pooled, &alone[g], g, c->what);
        if (c->aux != AUX_COUNT) aux += alone[g].L.aux[c->aux] / GROUPS;
        for (size_t i = 0; i < pooled.table.total; i++) grad[i] += (double)alone[g].g[i] / GROUPS;
        double dx = 0, scale = 0;
        for (size_t i = 0; i < N * D; i++) {
            dx = fmax(dx, fabs((double)alone[g].d_x[i] / GROUPS - pooled.d_x[g * N * D + i]));
            scale = fmax(scale, fabs((double)pooled.d_x[g * N * D + i]));
        }
        CHECK(dx <= REL_TOL * scale, "%s: group %d: d_x differs by %.3g (scale %.3g)", c->what, g, dx, scale);
    }
    if (c->aux != AUX_COUNT)
        CHECK(fabs(pooled.L.aux[c->aux] - aux) <= REL_TOL * aux && aux > 0,
              "%s: auxiliary loss %.9g vs the groups' mean %.9g", c->what, pooled.L.aux[c->aux], aux);
    double diff = relative_difference(grad, pooled.g, pooled.table.total);
    CHECK(diff <= REL_TOL, "%s: gradients differ by %.3g relative from the groups' mean", c->what, diff);
    if (c->mean_buffer) compare_buffer(&pooled, alone, c->mean_buffer, 1, c->what);
    if (c->first_buffer) compare_buffer(&pooled, alone, c->first_buffer, 0, c->what);
    free(x), free(d_y), free(grad);
    layer_close(&pooled);
    for (int g = 0; g < GROUPS; g++) layer_close(&alone[g]);
}

// One group as large as the batch against scope global: every output bit for bit.
static void check_one_group(const struct pool_case *c, const int *labels)
{
    char pool_samples[64];
    snprintf(pool_samples, sizeof pool_samples, "model.moe.pool_samples=%d", GROUPS * P);
    const char *sets[16];
    int n = 0;
    for (; c->sets[n]; n++) sets[n] = c->sets[n];
    sets[n] = "model.moe.pool_scope=samples", sets[n + 1] = NULL;
    struct layer grouped, global;
    layer_open(&grouped, sets, pool_samples, GROUPS * P);
    layer_open(&global, c->sets, NULL, GROUPS * P);
    size_t all = (size_t)GROUPS * P * T * D;
    real *x = malloc(sizeof(real) * all), *d_y = malloc(sizeof(real) * all);
    make_batch(x, d_y, all);
    step(&grouped, x, labels, d_y, 1);
    step(&global, x, labels, d_y, 1);
    const struct routing_plan *a = &grouped.L.plan, *b = &global.L.plan;
    int same = a->n_slots == b->n_slots && memcmp(a->offset, b->offset, sizeof(int) * (a->n_experts + 1)) == 0 &&
               memcmp(a->token, b->token, sizeof(int) * a->n_slots) == 0 &&
               memcmp(a->gate, b->gate, sizeof(real) * a->n_slots) == 0;
    CHECK(same, "%s: one pool group plans differently from scope global", c->what);
    CHECK(memcmp(grouped.L.aux, global.L.aux, sizeof grouped.L.aux) == 0, "%s: one group's losses differ", c->what);
    CHECK(memcmp(grouped.w, global.w, sizeof(real) * grouped.table.total) == 0,
          "%s: one group's weights or buffers differ", c->what);
    CHECK(memcmp(grouped.g, global.g, sizeof(real) * grouped.table.total) == 0, "%s: one group's gradients differ",
          c->what);
    CHECK(memcmp(grouped.d_x, global.d_x, sizeof(real) * all) == 0, "%s: one group's d_x differs", c->what);
    free(x), free(d_y);
    layer_close(&grouped);
    layer_close(&global);
}

static const struct pool_case cases[] = {
    {"token choice, balance loss",
     {"model.moe.router=token_choice", "model.moe.experts=E4A1S0U0", "loss.balance.weight=0.01", NULL},
     AUX_BALANCE, NULL, NULL},
    {"prototype, RCL",
     {"model.moe.router=prototype", "model.moe.experts=E6A1S1U1", "model.moe.conditional=true",
      "loss.balance.weight=0.01", NULL},
     AUX_RCL, NULL, NULL},
    {"prototype top-2, balance loss",
     {"model.moe.router=prototype", "model.moe.experts=E6A2S1U1", "model.moe.conditional=true",
      "loss.balance.weight=0.01", NULL},
     AUX_BALANCE, NULL, NULL},
    {"diffmoe",
     {"model.moe.router=diffmoe", "model.moe.experts=E4A1S0U0", "loss.capacity.weight=1", NULL},
     AUX_CAPACITY, "blocks.1.mlp.expert_threshold", NULL},
    {"expert race",
     {"model.moe.router=expert_race", "model.moe.experts=E4A2S0U0", "loss.router_sim.weight=0.01", NULL},
     AUX_ROUTER_SIM, "blocks.1.mlp.race_threshold", NULL},
    {"kmeans",
     {"model.moe.router=kmeans", "model.moe.experts=E6A1S1U1", "model.moe.conditional=true", NULL},
     AUX_COUNT, NULL, "blocks.1.mlp.kmeans_centroids"},
    {"classification",
     {"model.moe.router=classification", "model.moe.experts=E6A1S1U1", "model.moe.conditional=true",
      "model.moe.superclasses=" FASHION_MAP, NULL},
     AUX_CLS, NULL, NULL},
};

// A batch size that pool_samples does not divide, and pool_samples without scope samples, are
// refused with the keys and values named.
static void check_config_errors(void)
{
    struct config cfg;
    struct moe_spec spec;
    config_defaults(&cfg);
    config_set(&cfg, "model.moe.experts=E4A1S0U0");
    config_set(&cfg, "model.moe.router=token_choice");
    config_set(&cfg, "train.batch_size=10");
    config_set(&cfg, "model.moe.pool_scope=samples");
    config_set(&cfg, "model.moe.pool_samples=4");
    CHECK(moe_spec_from_config(&cfg, &spec) < 0 && strstr(err_message(), "model.moe.pool_samples 4") &&
              strstr(err_message(), "train.batch_size 10"),
          "uneven groups: '%s'", err_message());
    config_set(&cfg, "model.moe.pool_samples=0");
    CHECK(moe_spec_from_config(&cfg, &spec) < 0 && strstr(err_message(), "model.moe.pool_samples >= 1"),
          "scope samples without a size: '%s'", err_message());
    config_set(&cfg, "model.moe.pool_samples=5");
    CHECK(moe_spec_from_config(&cfg, &spec) == 0, "pool_samples 5 of batch 10 refused: %s", err_message());
    config_set(&cfg, "model.moe.pool_scope=global");
    CHECK(moe_spec_from_config(&cfg, &spec) < 0 && strstr(err_message(), "model.moe.pool_samples 5") &&
              strstr(err_message(), "pool_scope samples"),
          "pool_samples with scope global: '%s'", err_message());
}

int main(void)
{
    // every group has a null-label sample, so conditional routers leave some tokens out
    int labels[GROUPS * P] = {1, NULL_LABEL, 2, 3, 3, NULL_LABEL};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        check_groups(&cases[i], labels);
        check_one_group(&cases[i], labels);
    }
    check_config_errors();
    return test_summary("test_pool_groups");
}
