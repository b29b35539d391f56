// Global router pools on single MoE layers over 2 MPI ranks (built by `make test-mpi` with mpicc,
// run by test_mpi under mpirun -np 2): comm_gather_* lays rank r's block at r n on every rank; a
// DiffMoE or Expert Race layer with model.moe.pool_scope global, fed rank r's half of a batch,
// plans exactly the entries that the same layer gives this rank's tokens when it sees the whole
// batch (scope rank, one pool), with the same thresholds, loss figures and gradients once the
// trainer's averaging is applied. Rank 1's first sample copies rank 0's, so scores tie across
// ranks; zero router weights make every score tie, and then only the global token order (rank 0's
// tokens first) breaks the ties as one process does. Under scope rank, Expert Race replicas agree on the threshold and its flag
// when one rank has no routed token.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/error.h"
#include "core/rng.h"
#include "dist/comm.h"
#include "moe/moe.h"

#define D 16
#define T 9          // tokens per sample
#define B_RANK 2     // samples per rank
#define RANKS 2
#define NULL_LABEL 10   // data.num_classes: the label of a dropped class (conditional routing)
#define GATE_STD 1.0    // well-separated scores, as the single-process router tests use
#define REL_TOL 1e-5    // float sums grouped differently by the split

static int rank;

// One MoE layer with weights, gradients and activations for B samples of T tokens.
struct layer {
    struct config cfg;
    struct param_table table;
    struct moe_layer L;
    struct arena arena;
    real *w, *g, *y, *d_x;
    int B;
};

static real *tensor(struct layer *f, real *base, const char *suffix)
{
    char name[PARAM_NAME_MAX + 32];
    snprintf(name, sizeof name, "blocks.1.mlp.%s", suffix);
    const struct param_entry *e = params_find(&f->table, name);
    if (!e && strcmp(suffix, "gate.weight") == 0) {   // DiffMoE's router, named as its official class
        snprintf(name, sizeof name, "blocks.1.mlp.gate_weight");
        e = params_find(&f->table, name);
    }
    if (!e) {
        fprintf(stderr, "no tensor %s\n", name);
        exit(1);
    }
    return base + e->offset;
}

// sets: config overrides; gate: "random" (N(0, GATE_STD^2), the same on every rank) or "zero".
static void layer_open(struct layer *f, const char *const *sets, int B, const char *gate)
{
    memset(f, 0, sizeof *f);
    config_defaults(&f->cfg);
    config_set(&f->cfg, "model.hidden=16");
    for (int i = 0; sets[i]; i++)
        if (config_set(&f->cfg, sets[i]) < 0) fprintf(stderr, "config_set %s: %s\n", sets[i], err_message());
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
    real *w = tensor(f, f->w, "gate.weight");
    struct rng r;
    rng_init(&r, 11, 0, RNG_TEST, 1);
    for (int i = 0; i < f->L.spec.routed * D; i++) w[i] = strcmp(gate, "zero") ? (real)(GATE_STD * rng_normal(&r)) : 0;
}

static void layer_close(struct layer *f)
{
    moe_destroy(&f->L);
    params_free(&f->table);
    arena_free(&f->arena);
    free(f->w), free(f->g), free(f->y), free(f->d_x);
}

// One training step's forward and backward (buffers updated) on x [B T, D] with output gradient
// d_y [B T, D] times d_y_scale.
static void step(struct layer *f, const real *x, const int *labels, const real *d_y, real d_y_scale)
{
    size_t n = (size_t)f->B * T * D;
    real *scaled = malloc(sizeof(real) * n);
    for (size_t i = 0; i < n; i++) scaled[i] = d_y[i] * d_y_scale;
    f->L.training = 1;
    f->L.update_buffers = 1;
    moe_forward(&f->L, f->y, x, labels, f->B, T);
    moe_backward(&f->L, f->d_x, scaled, x, f->B, T);
    free(scaled);
}

// The whole batch [RANKS B_RANK T, D], the same on every rank. Rank 1's first sample repeats
// rank 0's (scores tie across ranks); its second is its own, so the ranks' halves differ.
static void make_batch(real *x, real *d_y)
{
    struct rng r;
    rng_init(&r, 3, 0, RNG_TEST, 2);
    size_t all = (size_t)RANKS * B_RANK * T * D, sample = (size_t)T * D, half = B_RANK * sample;
    for (size_t i = 0; i < all; i++) x[i] = (real)rng_normal(&r), d_y[i] = (real)rng_normal(&r);
    memcpy(x + half, x, sizeof(real) * sample);
}

// Expert by expert, the split layer's slots equal the whole-batch layer's slots of this rank's
// tokens (token index shifted by rank N), in order, gates within REL_TOL; returns mismatches.
static int compare_plans(const struct layer *whole, const struct layer *split, const char *what)
{
    const struct routing_plan *a = &whole->L.plan, *b = &split->L.plan;
    int N = split->B * T, first = rank * N, bad = 0;
    for (int e = 0; e < a->n_experts; e++) {
        int j = b->offset[e];
        for (int s = a->offset[e]; s < a->offset[e + 1]; s++) {
            if (a->token[s] < first || a->token[s] >= first + N) continue;
            if (j >= b->offset[e + 1] || b->token[j] + first != a->token[s] ||
                fabs(b->gate[j] - a->gate[s]) > REL_TOL * fmax(1e-3, fabs(a->gate[s])))
                bad++;
            j++;
        }
        bad += b->offset[e + 1] - j > 0 ? b->offset[e + 1] - j : 0;   // extra slots in the split
    }
    CHECK(bad == 0, "%s: rank %d: %d slots differ from the whole batch's plan", what, rank, bad);
    return bad;
}

// max |sum over ranks of split[i] / RANKS - whole[i]| relative to max |whole|, over n values.
static double averaged_difference(const real *whole, const real *split, size_t n)
{
    real *sum = malloc(sizeof(real) * n);
    memcpy(sum, split, sizeof(real) * n);
    comm_sum_reals(sum, n);
    double diff = 0, scale = 0;
    for (size_t i = 0; i < n; i++) {
        diff = fmax(diff, fabs((double)sum[i] / RANKS - whole[i]));
        scale = fmax(scale, fabs((double)whole[i]));
    }
    free(sum);
    return scale > 0 ? diff / scale : diff;
}

// The buffers of both layers agree within REL_TOL (bit for bit is not asked: scores come from
// products over N and 2N rows).
static void compare_buffers(struct layer *whole, struct layer *split, const char *const *names, const char *what)
{
    for (int i = 0; names[i]; i++) {
        const struct param_entry *e = params_find(&whole->table, names[i]);
        double worst = 0;
        for (size_t k = 0; k < e->count; k++) {
            double a = whole->w[e->offset + k], b = split->w[e->offset + k];
            worst = fmax(worst, fabs(a - b) / fmax(1e-6, fabs(a)));
        }
        CHECK(worst <= REL_TOL, "%s: rank %d: buffer %s differs by %.3g relative", what, rank, names[i], worst);
    }
}

// One case: the whole batch through a scope-rank layer, each rank's half through a global one;
// plans, buffers, auxiliary loss (its ranks' mean), gradients (the trainer's average) and d_x.
static void check_case(const char *what, const char *const *sets, const char *gate, const int *labels,
                       enum moe_aux aux, const char *const *buffers)
{
    const char *scoped[16];
    int n = 0;
    for (; sets[n]; n++) scoped[n] = sets[n];
    struct layer whole, split;
    scoped[n] = "model.moe.pool_scope=rank", scoped[n + 1] = NULL;
    layer_open(&whole, scoped, RANKS * B_RANK, gate);
    scoped[n] = "model.moe.pool_scope=global";
    layer_open(&split, scoped, B_RANK, gate);
    size_t N = (size_t)B_RANK * T, all = RANKS * N * D;
    real *x = malloc(sizeof(real) * all), *d_y = malloc(sizeof(real) * all);
    make_batch(x, d_y);
    step(&whole, x, labels, d_y, 1);
    // The trainer's mean over a slice is RANKS times the slice's share of the global mean.
    step(&split, x + rank * N * D, labels + rank * B_RANK, d_y + rank * N * D, RANKS);
    compare_plans(&whole, &split, what);
    compare_buffers(&whole, &split, buffers, what);
    double share = split.L.aux[aux];
    comm_sum_doubles(&share, 1);
    CHECK(fabs(share / RANKS - whole.L.aux[aux]) <= REL_TOL * fabs(whole.L.aux[aux]) && whole.L.aux[aux] > 0,
          "%s: auxiliary loss %.9g (mean over ranks) vs %.9g", what, share / RANKS, whole.L.aux[aux]);
    double g = averaged_difference(whole.g, split.g, whole.table.total);
    CHECK(g <= REL_TOL, "%s: averaged gradients differ by %.3g relative", what, g);
    double dx = 0, scale = 0;
    for (size_t i = 0; i < N * D; i++) {
        dx = fmax(dx, fabs((double)split.d_x[i] / RANKS - whole.d_x[rank * N * D + i]));
        scale = fmax(scale, fabs((double)whole.d_x[rank * N * D + i]));
    }
    CHECK(dx <= REL_TOL * scale, "%s: rank %d: d_x differs by %.3g (scale %.3g)", what, rank, dx, scale);
    free(x), free(d_y);
    layer_close(&whole);
    layer_close(&split);
}

// With every score equal, ties alone decide: the lowest global tokens win, all of them rank 0's.
static void check_all_ties(const char *what, const char *const *sets)
{
    const char *scoped[16];
    int n = 0;
    for (; sets[n]; n++) scoped[n] = sets[n];
    scoped[n] = "model.moe.pool_scope=global", scoped[n + 1] = NULL;
    struct layer split;
    layer_open(&split, scoped, B_RANK, "zero");
    size_t N = (size_t)B_RANK * T;
    real *x = malloc(sizeof(real) * RANKS * N * D), *d_y = malloc(sizeof(real) * RANKS * N * D);
    int labels[RANKS * B_RANK] = {0};
    make_batch(x, d_y);
    step(&split, x + rank * N * D, labels, d_y, 1);
    int slots = split.L.plan.n_slots, expected = rank == 0 ? (int)(RANKS * N) : 0;   // k = 1 per token
    CHECK(slots == expected, "%s: rank %d holds %d slots, expected %d", what, rank, slots, expected);
    free(x), free(d_y);
    layer_close(&split);
}

static const char *const diffmoe_sets[] = {"model.moe.router=diffmoe", "model.moe.experts=E4A1S0U0",
                                           "loss.capacity.weight=1", NULL};
static const char *const diffmoe_cond_sets[] = {"model.moe.router=diffmoe", "model.moe.experts=E5A1S0U1",
                                                "model.moe.conditional=true", "loss.capacity.weight=1", NULL};
static const char *const race_sets[] = {"model.moe.router=expert_race", "model.moe.experts=E4A1S0U0",
                                        "loss.router_sim.weight=0.1", NULL};
static const char *const race_cond_sets[] = {"model.moe.router=expert_race", "model.moe.experts=E5A1S0U1",
                                             "model.moe.conditional=true", "loss.router_sim.weight=0.1", NULL};
static const char *const diffmoe_buffers[] = {"blocks.1.mlp.expert_threshold", NULL};
static const char *const race_buffers[] = {"blocks.1.mlp.race_threshold", "blocks.1.mlp.race_threshold_initialised",
                                           NULL};

// rank r's block of gathered reals and ints is at r n, on every rank, and the bytes are counted.
static void check_gather(void)
{
    enum { COUNT = 5 };
    real mine[COUNT], all[RANKS * COUNT];
    int mine_i[COUNT], all_i[RANKS * COUNT], bad = 0;
    for (int i = 0; i < COUNT; i++) mine[i] = (real)(100 * rank + i) + (real)0.25, mine_i[i] = -(100 * rank + i);
    int64_t before = comm_gathered_bytes();
    comm_gather_reals(mine, COUNT, all);
    comm_gather_ints(mine_i, COUNT, all_i);
    for (int r = 0; r < RANKS; r++)
        for (int i = 0; i < COUNT; i++)
            bad += all[r * COUNT + i] != (real)(100 * r + i) + (real)0.25 || all_i[r * COUNT + i] != -(100 * r + i);
    CHECK(bad == 0, "rank %d: %d gathered values out of place", rank, bad);
    int64_t counted = comm_gathered_bytes() - before;
    CHECK(counted == (int64_t)(COUNT * (sizeof(real) + sizeof(int))), "rank %d: %lld gathered bytes counted", rank,
          (long long)counted);
}

// Scope rank, rank 1's samples all null-label: only rank 0 races. Both replicas take rank 0's
// tau_b and set the flag (the k-th largest of rank 0's N E identity scores, k = N).
static void check_race_flag_agreement(void)
{
    const char *sets[] = {"model.moe.router=expert_race", "model.moe.experts=E5A1S0U1", "model.moe.conditional=true",
                          "model.moe.pool_scope=rank", NULL};
    struct layer f;
    layer_open(&f, sets, B_RANK, "random");
    size_t N = (size_t)B_RANK * T;
    real *x = malloc(sizeof(real) * RANKS * N * D), *d_y = malloc(sizeof(real) * RANKS * N * D);
    int labels[B_RANK];
    for (int b = 0; b < B_RANK; b++) labels[b] = rank == 0 ? 0 : NULL_LABEL;
    make_batch(x, d_y);
    step(&f, x, labels, d_y, 1);   // rank 0's tokens on both ranks (rank 1 routes none of them)
    const real *w = tensor(&f, f.w, "gate.weight");
    int E = f.L.spec.routed, count = 0;
    double *s = malloc(sizeof(double) * N * E), tau_b = 0;
    for (size_t n = 0; n < N; n++)
        for (int e = 0; e < E; e++) {
            s[n * E + e] = 0;
            for (int d = 0; d < D; d++) s[n * E + e] += (double)x[n * D + d] * w[e * D + d];
        }
    for (size_t i = 0; i < N * E; i++) {   // tau_b: the entry with exactly N - 1 entries above it
        int above = 0;
        for (size_t j = 0; j < N * E; j++) above += s[j] > s[i];
        if (above == (int)N - 1) tau_b = s[i], count++;
    }
    real tau = *tensor(&f, f.w, "race_threshold"), set = *tensor(&f, f.w, "race_threshold_initialised");
    CHECK(count == 1 && set == 1 && fabs(tau - tau_b) <= REL_TOL * fabs(tau_b),
          "rank %d: threshold %.9g (flag %g), rank 0's race gives %.9g", rank, tau, set, tau_b);
    free(s), free(x), free(d_y);
    layer_close(&f);
}

int main(int argc, char **argv)
{
    if (comm_init(&argc, &argv) < 0 || comm_size() != RANKS) {
        fprintf(stderr, "mpi_pool: run under mpirun -np %d\n", RANKS);
        comm_finish(1);
        return 1;
    }
    rank = comm_rank();
    int labels[RANKS * B_RANK] = {0}, uneven[RANKS * B_RANK] = {0};
    uneven[RANKS * B_RANK - 1] = NULL_LABEL;   // rank 1 routes one sample of two: pools of 18 and 9
    check_gather();
    check_case("diffmoe", diffmoe_sets, "random", labels, AUX_CAPACITY, diffmoe_buffers);
    check_case("diffmoe conditional", diffmoe_cond_sets, "random", uneven, AUX_CAPACITY, diffmoe_buffers);
    check_case("expert_race", race_sets, "random", labels, AUX_ROUTER_SIM, race_buffers);
    check_case("expert_race conditional", race_cond_sets, "random", uneven, AUX_ROUTER_SIM, race_buffers);
    check_all_ties("diffmoe ties", diffmoe_sets);
    check_all_ties("expert_race ties", race_sets);
    check_race_flag_agreement();
    char name[32];
    snprintf(name, sizeof name, "mpi_pool_rank%d", rank);
    int status = test_summary(name);
    comm_finish(0);
    return status;
}
