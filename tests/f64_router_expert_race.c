// Expert Race in double precision: finite-difference checks of the whole tiny DiT with the race
// router (identity, sigmoid and softmax scores, k 1 and 2, conditional routing on and off, router
// similarity loss on and off), and the similarity loss's value against a direct evaluation of
// ROUTERS.md 3.4's formula (P' = P^T P, M' = M^T M, weights W) on the plan the layer built.
// Routing is piecewise constant: gradcheck.h skips perturbations that change a plan (at most a
// quarter may); with these inputs none of the race's selections flips (checked when written).
#include <omp.h>

#include "gradcheck.h"

#include "moe/moe.h"

#define SIM_TOLERANCE 1e-12

// ---- whole-network gradient checks ----

static void test_gradients(void)
{
    const char *identity_top2[] = {"model.moe.experts=E5A2S0U0", "model.moe.router=expert_race",
                                   "loss.router_sim.weight=0.5"};
    gradcheck_dit("expert_race identity top-2 + sim", identity_top2, 3);
    const char *conditional[] = {"model.moe.experts=E6A1S1U1", "model.moe.router=expert_race",
                                 "model.moe.conditional=true", "loss.router_sim.weight=0.3"};
    gradcheck_dit("expert_race conditional + sim", conditional, 4);
    const char *sigmoid[] = {"model.moe.experts=E5A2S1U0", "model.moe.router=expert_race",
                             "model.moe.activation=sigmoid", "loss.router_sim.weight=0.2"};
    gradcheck_dit("expert_race sigmoid top-2 + sim", sigmoid, 4);
    const char *softmax[] = {"model.moe.experts=E5A1S0U0", "model.moe.router=expert_race",
                             "model.moe.activation=softmax", "model.moe.first=0", "model.moe.every=1",
                             "loss.router_sim.weight=0.7"};
    gradcheck_dit("expert_race softmax every block + sim", softmax, 6);
    const char *race_only[] = {"model.moe.experts=E4A1S1U0", "model.moe.router=expert_race"};
    gradcheck_dit("expert_race without sim", race_only, 2);
    // The similarity loss's other normalisations, and pools of one sample each (moe/pool.h).
    const char *all_divide_experts[] = {"model.moe.experts=E5A2S0U0", "model.moe.router=expert_race",
                                        "loss.router_sim.weight=0.5", "loss.router_sim.off_diagonal=all",
                                        "loss.router_sim.divide=experts"};
    gradcheck_dit("expert_race sim over all of M', divided by E", all_divide_experts, 5);
    const char *pools[] = {"model.moe.experts=E6A1S1U1", "model.moe.router=expert_race",
                           "model.moe.conditional=true", "loss.router_sim.weight=0.3",
                           "model.moe.pool_scope=samples", "model.moe.pool_samples=1"};
    gradcheck_dit("expert_race conditional + sim, pools of 1 sample", pools, 6);
}

// ---- the similarity loss's value ----

struct layer {
    struct config cfg;
    struct param_table t;
    struct moe_layer L;
    struct arena a;
    real *w, *g, *x, *y;
    int B, T;
};

static void layer_open(struct layer *f, const char *experts, double sim_weight, int B, int T)
{
    memset(f, 0, sizeof *f);
    config_defaults(&f->cfg);
    char set[96];
    snprintf(set, sizeof set, "model.moe.experts=%s", experts);
    config_set(&f->cfg, set);
    config_set(&f->cfg, "model.moe.router=expert_race");
    config_set(&f->cfg, "model.hidden=16");
    f->cfg.router_sim_weight = sim_weight;
    CHECK(moe_create(&f->L, &f->cfg, 1, &f->t) == 0, "moe_create: %s", err_message());
    f->B = B, f->T = T;
    f->w = calloc(f->t.total, sizeof(real));
    f->g = calloc(f->t.total, sizeof(real));
    f->x = calloc((size_t)B * T * 16, sizeof(real));
    f->y = calloc((size_t)B * T * 16, sizeof(real));
    params_init(&f->t, f->w, 11);
    moe_bind(&f->L, &f->t, f->w, 0);
    moe_bind(&f->L, &f->t, f->g, 1);
    moe_layout(&f->L, &f->a, B, T);
    CHECK(arena_allocate(&f->a) == 0, "arena: %s", err_message());
    moe_layout(&f->L, &f->a, B, T);
    f->L.training = 1;
}

static void layer_close(struct layer *f)
{
    moe_destroy(&f->L);
    params_free(&f->t);
    arena_free(&f->a);
    free(f->w); free(f->g); free(f->x); free(f->y);
}

// L_sim straight from the formula, with the plan's selection as M; all routed tokens.
static double sim_reference(struct layer *f, double weight)
{
    int N = f->B * f->T, E = f->L.spec.routed, D = 16;
    const real *w = f->w + params_find(&f->t, "blocks.1.mlp.gate.weight")->offset;
    double *P = calloc((size_t)N * E, sizeof(double)), *M = calloc((size_t)N * E, sizeof(double));
    for (int n = 0; n < N; n++) {
        double z[64], max = -INFINITY, sum = 0;
        for (int e = 0; e < E; e++) {
            z[e] = 0;
            for (int d = 0; d < D; d++) z[e] += f->x[(size_t)n * D + d] * w[(size_t)e * D + d];
            max = fmax(max, z[e]);
        }
        for (int e = 0; e < E; e++) sum += P[(size_t)n * E + e] = exp(z[e] - max);
        for (int e = 0; e < E; e++) P[(size_t)n * E + e] /= sum;
    }
    const struct routing_plan *p = &f->L.plan;
    for (int e = 0; e < E; e++)
        for (int s = p->offset[e]; s < p->offset[e + 1]; s++) M[(size_t)p->token[s] * E + e] = 1;
    double diag = 0, off = 0, loss = 0;
    for (int i = 0; i < E; i++)
        for (int j = 0; j < E; j++) {
            double m = 0;
            for (int n = 0; n < N; n++) m += M[(size_t)n * E + i] * M[(size_t)n * E + j];
            if (i == j) diag += m;
            else off += m;
        }
    for (int i = 0; i < E; i++)
        for (int j = 0; j < E; j++) {
            double m = 0, pp = 0;
            for (int n = 0; n < N; n++) {
                m += M[(size_t)n * E + i] * M[(size_t)n * E + j];
                pp += P[(size_t)n * E + i] * P[(size_t)n * E + j];
            }
            double off_norm = f->cfg.router_sim_off_diagonal == SIM_OFF_DIAGONAL_ALL ? off + diag : off;
            double wij = i == j ? E * m / diag : off_norm > 0 ? ((double)E * E - E) * m / off_norm : 0;
            loss += wij * pp;
        }
    free(P); free(M);
    return weight * loss / (f->cfg.router_sim_divide == SIM_DIVIDE_EXPERTS ? E : N);
}

// Both normalisations of each kind (loss.router_sim.off_diagonal, loss.router_sim.divide); the
// four values differ, so each option is seen to act.
static void test_sim_value(void)
{
    double seen[4];
    for (int c = 0; c < 4; c++) {
        struct layer f;
        int labels[4] = {0, 1, 2, 3};
        layer_open(&f, "E7A2S1U0", 0.25, 4, 6);
        f.cfg.router_sim_off_diagonal = c & 1 ? SIM_OFF_DIAGONAL_ALL : SIM_OFF_DIAGONAL_PAIRS;
        f.cfg.router_sim_divide = c & 2 ? SIM_DIVIDE_EXPERTS : SIM_DIVIDE_TOKENS;
        rng_init(&test_rng, 2025, 1, RNG_TEST, 4);   // the same tokens for every case
        fill_normal(f.x, (size_t)4 * 6 * 16, 1);
        moe_forward(&f.L, f.y, f.x, labels, 4, 6);
        double ref = sim_reference(&f, 0.25);
        seen[c] = f.L.aux[AUX_ROUTER_SIM];
        CHECK(fabs(seen[c] - ref) <= SIM_TOLERANCE * fabs(ref) && ref > 0,
              "router_sim (off_diagonal %d, divide %d) %.15g, formula %.15g", c & 1, c >> 1, seen[c], ref);
        layer_close(&f);
    }
    CHECK(seen[0] != seen[1] && seen[0] != seen[2] && seen[1] != seen[3], "router_sim options change nothing: %g %g %g",
          seen[0], seen[1], seen[2]);
}

// No two experts ever chosen by the same token: the off-diagonal weights must be 0, not 0/0.
static void test_sim_without_coselection(void)
{
    struct layer f;
    int labels[2] = {0, 1}, E = 4, D = 16, N = 2 * 4;
    layer_open(&f, "E4A1S0U0", 1.0, 2, 4);
    real *w = f.w + params_find(&f.t, "blocks.1.mlp.gate.weight")->offset;
    memset(w, 0, sizeof(real) * E * D);
    for (int e = 0; e < E; e++) w[(size_t)e * D + e] = 1;   // z_{n,e} = x_{n,e}
    for (int n = 0; n < N; n++) f.x[(size_t)n * D + n % E] = 5;   // token n wins expert n % E only
    moe_forward(&f.L, f.y, f.x, labels, 2, 4);
    int per_token_max = 0, count[8] = {0};
    for (int s = 0; s < f.L.plan.n_slots; s++) count[f.L.plan.token[s]]++;
    for (int n = 0; n < N; n++) per_token_max = count[n] > per_token_max ? count[n] : per_token_max;
    CHECK(per_token_max == 1 && f.L.plan.n_slots == N, "setup: %d slots, a token with %d", f.L.plan.n_slots,
          per_token_max);
    double ref = sim_reference(&f, 1.0), got = f.L.aux[AUX_ROUTER_SIM];
    CHECK(isfinite(got) && fabs(got - ref) <= SIM_TOLERANCE * fabs(ref), "router_sim %.15g, formula %.15g", got, ref);
    layer_close(&f);
}

int main(void)
{
    omp_set_num_threads(1);   // tiny problems: thread start-up would dominate (results do not depend on it)
    rng_init(&test_rng, 2025, 0, RNG_TEST, 3);
    test_gradients();
    test_sim_value();
    test_sim_without_coselection();
    return test_summary("f64_router_expert_race");
}
