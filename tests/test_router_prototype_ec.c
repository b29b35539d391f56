// ProMoE-EC router (ROUTERS.md 3.11, src/moe/prototype_ec.c) on single MoE layers, its configs and
// short training runs. Against a reference computed here in double from the official formulas:
// S[b, e, t] = A(alpha cos(x_{b,t}, p_e)) with softmax over the sample's tokens; every routed sample
// gives every routed expert exactly k = clamp(floor(T / E_r * capacity), 1, T) tokens, the top-k of
// S[b, e, :] with ties to the lower index; gates equal S; the per-sample RCL value (means of the
// chosen tokens, cross-entropy over B_cond x E_r rows); null-label samples go to the unconditional
// expert and count in neither; plans are batch and thread-count independent and identical at
// inference, where no loss is computed.
#include <math.h>
#include <omp.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/error.h"
#include "core/rng.h"
#include "model/dit.h"
#include "moe/moe.h"
#include "moe/registry.h"
#include "train/trainer.h"

#define PROTOTYPES "blocks.1.mlp.cluster_centers"
#define GATE_TOLERANCE 1e-5   // float scores versus the test's double reference
#define RCL_TOLERANCE 1e-5    // relative, float loss versus the double reference
enum { D = 16, T = 16, MAX_B = 4, MAX_E = 8 };

static struct rng test_rng;

static void fill_normal(real *x, size_t n, double std)
{
    for (size_t i = 0; i < n; i++) x[i] = (real)(rng_normal(&test_rng) * std);
}

// One MoE layer (block 1) with its weights, gradients and arena, from config overrides.
struct fixture {
    struct config cfg;
    struct param_table table;
    struct moe_layer L;
    struct arena arena;
    real *w, *g;
};

static int fixture_create(struct fixture *f, const char *const *sets, int n_sets, int max_batch, uint64_t seed)
{
    memset(f, 0, sizeof *f);
    config_defaults(&f->cfg);
    const char *base[] = {"model.hidden=16", "model.moe.experts=E4A1S0U0", "model.moe.router=prototype_ec",
                          "data.num_classes=3"};
    for (size_t i = 0; i < sizeof base / sizeof *base; i++) config_set(&f->cfg, base[i]);
    for (int i = 0; i < n_sets; i++)
        if (config_set(&f->cfg, sets[i]) < 0) {
            CHECK(0, "config_set %s: %s", sets[i], err_message());
            return -1;
        }
    if (moe_create(&f->L, &f->cfg, 1, &f->table) < 0) {
        CHECK(0, "moe_create: %s", err_message());
        return -1;
    }
    f->w = calloc(f->table.total, sizeof(real));
    f->g = calloc(f->table.total, sizeof(real));
    params_init(&f->table, f->w, seed);
    moe_bind(&f->L, &f->table, f->w, 0);
    moe_bind(&f->L, &f->table, f->g, 1);
    moe_layout(&f->L, &f->arena, max_batch, T);
    if (arena_allocate(&f->arena) < 0) return -1;
    moe_layout(&f->L, &f->arena, max_batch, T);
    f->L.training = 1;
    // Prototypes spread out (N(0, 1)): cosines far apart, so no two scores are near-equal by chance.
    const struct param_entry *p = params_find(&f->table, PROTOTYPES);
    fill_normal(f->w + p->offset, p->count, 1);
    return 0;
}

static void fixture_destroy(struct fixture *f)
{
    moe_destroy(&f->L);
    arena_free(&f->arena);
    params_free(&f->table);
    free(f->w);
    free(f->g);
}

// Reference S [B, E, T] in double.
static void reference_scores(double *S, const struct fixture *f, const real *x, int B)
{
    int E = f->L.spec.routed;
    const real *P = f->w + params_find(&f->table, PROTOTYPES)->offset;
    for (int b = 0; b < B; b++)
        for (int e = 0; e < E; e++) {
            double *row = S + (b * E + e) * T, max = -INFINITY, sum = 0;
            for (int t = 0; t < T; t++) {
                const real *v = x + (b * T + t) * D, *p = P + e * D;
                double dot = 0, nx = 0, np = 0;
                for (int d = 0; d < D; d++) {
                    dot += (double)v[d] * p[d];
                    nx += (double)v[d] * v[d];
                    np += (double)p[d] * p[d];
                }
                double z = f->L.spec.alpha * dot / (sqrt(nx) * sqrt(np));
                row[t] = f->L.spec.activation == ACTIVATION_SIGMOID ? 1 / (1 + exp(-z)) : z;
                max = fmax(max, z);
            }
            if (f->L.spec.activation != ACTIVATION_SOFTMAX) continue;
            for (int t = 0; t < T; t++) sum += row[t] = exp(row[t] - max);
            for (int t = 0; t < T; t++) row[t] /= sum;
        }
}

// The k best tokens of row [T], ties to the lower index, as a 0/1 mask taken [T].
static void reference_choice(int *taken, const double *row, int k)
{
    memset(taken, 0, sizeof(int) * T);
    for (int j = 0; j < k; j++) {
        int best = -1;
        for (int t = 0; t < T; t++)
            if (!taken[t] && (best < 0 || row[t] > row[best])) best = t;
        taken[best] = 1;
    }
}

// Every routed (b, e): exactly the reference top-k, gates equal S; no slot for unrouted samples;
// tokens strictly ascending within every expert.
static void check_choice(struct fixture *f, const real *x, int B, const int *routed, int k, const char *what)
{
    const struct routing_plan *p = &f->L.plan;
    int E = f->L.spec.routed, bad_set = 0, not_ascending = 0;
    double S[MAX_B * MAX_E * T], worst_gate = 0;
    reference_scores(S, f, x, B);
    for (int e = 0; e < E; e++) {
        for (int s = p->offset[e] + 1; s < p->offset[e + 1]; s++) not_ascending += p->token[s] <= p->token[s - 1];
        for (int b = 0; b < B; b++) {
            int ref[T] = {0}, got[T] = {0};
            if (routed[b]) reference_choice(ref, S + (b * E + e) * T, k);
            for (int s = p->offset[e]; s < p->offset[e + 1]; s++)
                if (p->token[s] / T == b) {
                    got[p->token[s] % T] = 1;
                    worst_gate = fmax(worst_gate, fabs(p->gate[s] - S[(b * E + e) * T + p->token[s] % T]));
                }
            bad_set += memcmp(ref, got, sizeof ref) != 0;
        }
    }
    CHECK(not_ascending == 0 && p->dropped == 0, "%s: %d slots out of order, %d dropped", what, not_ascending,
          p->dropped);
    CHECK(bad_set == 0, "%s: %d (sample, expert) pairs differ from the reference top-%d", what, bad_set, k);
    CHECK(worst_gate <= GATE_TOLERANCE, "%s: gate differs from S by %.3g", what, worst_gate);
}

// Reference RCL: per routed sample, m_{b,j} = mean of the k tokens expert j took (the reference
// choice), CE of row i of cos(p_i, m_{b,j}) / tau against j = i, averaged over B_cond x E rows.
static double reference_rcl(const struct fixture *f, const real *x, int B, const int *routed, int k)
{
    int E = f->L.spec.routed, rows = 0;
    const real *P = f->w + params_find(&f->table, PROTOTYPES)->offset;
    double S[MAX_B * MAX_E * T], tau = f->cfg.rcl_tau, total = 0;
    reference_scores(S, f, x, B);
    for (int b = 0; b < B; b++) {
        if (!routed[b]) continue;
        double m[MAX_E][D];
        for (int e = 0; e < E; e++) {
            int taken[T];
            reference_choice(taken, S + (b * E + e) * T, k);
            for (int d = 0; d < D; d++) {
                m[e][d] = 0;
                for (int t = 0; t < T; t++) m[e][d] += taken[t] ? x[(b * T + t) * D + d] / (double)k : 0;
            }
        }
        for (int i = 0; i < E; i++, rows++) {
            double logit[MAX_E], max = -INFINITY, sum = 0;
            for (int j = 0; j < E; j++) {
                double dot = 0, np = 0, nm = 0;
                for (int d = 0; d < D; d++) {
                    dot += P[i * D + d] * m[j][d];
                    np += (double)P[i * D + d] * P[i * D + d];
                    nm += m[j][d] * m[j][d];
                }
                logit[j] = dot / (sqrt(np) * sqrt(nm)) / tau;
                max = fmax(max, logit[j]);
            }
            for (int j = 0; j < E; j++) sum += exp(logit[j] - max);
            total -= logit[i] - max - log(sum);
        }
    }
    return rows ? f->cfg.rcl_weight * total / rows : 0;
}

static void test_parameters(void)
{
    struct fixture f;
    const char *sets[] = {"model.hidden=192", "model.moe.experts=E14A1S1U1", "model.moe.conditional=true"};
    if (fixture_create(&f, sets, 3, 1, 11) < 0) return;
    params_init(&f.table, f.w, 11);   // undo the fixture's spreading: the initialisation itself
    const struct param_entry *e = params_find(&f.table, "blocks.1.mlp.cluster_centers");
    CHECK(e && e->ndim == 2 && e->shape[0] == 12 && e->shape[1] == 192 && e->trainable,
          "prototypes missing or not [12, 192] trainable");
    if (e) {
        double sumsq = 0;
        for (size_t i = 0; i < e->count; i++) sumsq += (double)f.w[e->offset + i] * f.w[e->offset + i];
        double std = sqrt(sumsq / e->count);   // 2304 draws: standard error of the std about 1.5%
        CHECK(e->init == INIT_NORMAL && fabs(std - 0.02) < 0.002, "prototype init std %.5f, expected 0.02", std);
    }
    CHECK(params_find(&f.table, "blocks.1.mlp.gate.weight") == NULL, "ProMoE-EC has a linear gate");
    CHECK(f.L.spec.activation == ACTIVATION_IDENTITY, "default activation is not identity");
    fixture_destroy(&f);
}

// Choices, gates and the RCL value for the three activations and several capacities.
static void test_choice_and_rcl(void)
{
    const char *cases[][3] = {
        {"model.moe.activation=default", "model.moe.capacity=1", "loss.rcl.weight=1"},           // k = 4
        {"model.moe.activation=softmax", "model.moe.capacity=2.5", "loss.rcl.weight=0.5"},       // k = 10
        {"model.moe.activation=sigmoid", "model.moe.alpha=3", "loss.rcl.tau=0.5"},               // k = 4
        {"model.moe.activation=identity", "model.moe.capacity=0.1", "loss.rcl.weight=2"},        // k = 1
        {"model.moe.activation=identity", "model.moe.capacity=8", "loss.rcl.weight=1"},          // k = T
    };
    int ks[] = {4, 10, 4, 1, T}, B = 3, routed[3] = {1, 1, 1}, labels[3] = {0, 1, 2};
    for (int c = 0; c < 5; c++) {
        struct fixture f;
        real x[3 * T * D], y[3 * T * D];
        if (fixture_create(&f, cases[c], 3, B, 21 + c) < 0) continue;
        fill_normal(x, sizeof x / sizeof *x, 1);
        moe_forward(&f.L, y, x, labels, B, T);
        check_choice(&f, x, B, routed, ks[c], cases[c][0]);
        CHECK(f.L.plan.n_slots == B * 4 * ks[c], "%s %s: %d slots, expected %d", cases[c][0], cases[c][1],
              f.L.plan.n_slots, B * 4 * ks[c]);
        double ref = reference_rcl(&f, x, B, routed, ks[c]);
        CHECK(ref > 0 && fabs(f.L.aux[AUX_RCL] - ref) <= RCL_TOLERANCE * ref, "%s %s: RCL %.9g, reference %.9g",
              cases[c][0], cases[c][1], f.L.aux[AUX_RCL], ref);
        CHECK(f.L.aux[AUX_BALANCE] == 0, "a balance loss was written");
        fixture_destroy(&f);
    }
}

// Identical tokens tie on every score: each expert takes the first k tokens of each sample.
static void test_ties(void)
{
    struct fixture f;
    int B = 2, labels[2] = {0, 0}, bad = 0;
    real x[2 * T * D], y[2 * T * D];
    if (fixture_create(&f, NULL, 0, B, 31) < 0) return;
    fill_normal(x, D, 1);
    fill_normal(x + T * D, D, 1);
    for (int b = 0; b < B; b++)
        for (int t = 1; t < T; t++) memcpy(x + (b * T + t) * D, x + b * T * D, sizeof(real) * D);
    moe_forward(&f.L, y, x, labels, B, T);
    for (int s = 0; s < f.L.plan.n_slots; s++) bad += f.L.plan.token[s] % T >= 4;
    CHECK(f.L.plan.n_slots == B * 4 * 4 && bad == 0, "ties: %d slots, %d beyond the first 4 tokens",
          f.L.plan.n_slots, bad);
    fixture_destroy(&f);
}

// Null-label samples: their tokens go to the unconditional expert only (gate 1) and count in
// neither the routing nor the RCL (B_cond = 2 of 3 samples).
static void test_conditional(void)
{
    struct fixture f;
    const char *sets[] = {"model.moe.experts=E6A1S1U1", "model.moe.conditional=true"};
    int B = 3, labels[3] = {0, 3, 2}, routed[3] = {1, 0, 1}, E = 4;
    real x[3 * T * D], y[3 * T * D];
    if (fixture_create(&f, sets, 2, B, 61) < 0) return;
    fill_normal(x, sizeof x / sizeof *x, 1);
    moe_forward(&f.L, y, x, labels, B, T);
    const struct routing_plan *p = &f.L.plan;
    check_choice(&f, x, B, routed, 4, "conditional");
    int uncond_ok = p->offset[E + 1] - p->offset[E] == T;
    for (int s = p->offset[E]; uncond_ok && s < p->offset[E + 1]; s++)
        uncond_ok = p->token[s] == T + (s - p->offset[E]) && p->gate[s] == 1;
    CHECK(uncond_ok, "the unconditional expert does not hold exactly the null sample's tokens with gate 1");
    double ref = reference_rcl(&f, x, B, routed, 4);
    CHECK(fabs(f.L.aux[AUX_RCL] - ref) <= RCL_TOLERANCE * ref, "conditional RCL %.9g, reference %.9g",
          f.L.aux[AUX_RCL], ref);
    fixture_destroy(&f);
}

// Sample 1 in a batch of 3 and alone: the same tokens and outputs (per-sample routing).
static void test_batch_independence(void)
{
    struct fixture f;
    int labels[3] = {0, 1, 2};
    real x[3 * T * D], y[3 * T * D], y_alone[T * D];
    if (fixture_create(&f, NULL, 0, 3, 71) < 0) return;
    fill_normal(x, sizeof x / sizeof *x, 1);
    moe_forward(&f.L, y, x, labels, 3, T);
    int in_batch[4 * T], n_batch = 0;
    for (int s = 0; s < f.L.plan.n_slots; s++)
        if (f.L.plan.token[s] / T == 1) in_batch[n_batch++] = f.L.plan.token[s] - T;
    moe_forward(&f.L, y_alone, x + T * D, labels + 1, 1, T);
    double worst = 0;
    for (int i = 0; i < T * D; i++) worst = fmax(worst, fabs(y_alone[i] - y[T * D + i]));
    CHECK(n_batch == f.L.plan.n_slots && !memcmp(in_batch, f.L.plan.token, sizeof(int) * n_batch),
          "sample routed alone takes other tokens than in the batch");
    CHECK(worst <= 1e-5, "alone vs batch: outputs differ by %.3g", worst);
    fixture_destroy(&f);
}

// Forward and backward with 1 and 2 threads: bit-identical outputs, d_x and gradients (RCL on).
static void test_determinism(void)
{
    struct fixture f;
    enum { B = 4, N = B * T * D };
    static real x[N], d_y[N], y1[N], y2[N], dx1[N], dx2[N];
    const char *sets[] = {"model.moe.activation=softmax", "model.moe.capacity=1.5"};
    int labels[B] = {0, 1, 2, 0};
    if (fixture_create(&f, sets, 2, B, 81) < 0) return;
    fill_normal(x, N, 1);
    fill_normal(d_y, N, 1);
    real *g1 = malloc(sizeof(real) * f.table.total);
    for (int threads = 2; threads >= 1; threads--) {
        omp_set_num_threads(threads);
        memset(f.g, 0, sizeof(real) * f.table.total);
        moe_forward(&f.L, threads == 2 ? y1 : y2, x, labels, B, T);
        moe_backward(&f.L, threads == 2 ? dx1 : dx2, d_y, x, B, T);
        if (threads == 2) memcpy(g1, f.g, sizeof(real) * f.table.total);
    }
    CHECK(!memcmp(y1, y2, sizeof y1) && !memcmp(dx1, dx2, sizeof dx1), "1 and 2 threads: outputs or d_x differ");
    CHECK(!memcmp(g1, f.g, sizeof(real) * f.table.total), "1 and 2 threads: parameter gradients differ");
    const real *gp = f.g + params_find(&f.table, PROTOTYPES)->offset;
    double norm = 0;
    for (int i = 0; i < 4 * D; i++) norm += fabs(gp[i]);
    CHECK(norm > 0, "the prototypes received no gradient");
    omp_set_num_threads(2);
    free(g1);
    fixture_destroy(&f);
}

// Inference routes by the same rule and computes no loss.
static void test_inference(void)
{
    struct fixture f;
    enum { B = 3, N = B * T * D };
    static real x[N], y[N], y_inf[N];
    int labels[B] = {0, 1, 2}, tokens[B * 4 * 4];
    if (fixture_create(&f, NULL, 0, B, 91) < 0) return;
    fill_normal(x, N, 1);
    moe_forward(&f.L, y, x, labels, B, T);
    memcpy(tokens, f.L.plan.token, sizeof tokens);
    f.L.training = 0;
    moe_forward(&f.L, y_inf, x, labels, B, T);
    double aux = 0;
    for (int k = 0; k < AUX_COUNT; k++) aux += fabs(f.L.aux[k]);
    CHECK(f.L.plan.n_slots == B * 16 && !memcmp(tokens, f.L.plan.token, sizeof tokens) && !memcmp(y, y_inf, sizeof y),
          "inference routes differently");
    CHECK(aux == 0, "auxiliary loss %.3g at inference", aux);
    fixture_destroy(&f);
}

// The configs that name the router load, validate and build with the expected routing; top-k
// other than 1 is refused with the key and value named.
static void test_configs(void)
{
    const char *paths[] = {"experiments/mini/prototype_ec.yaml", "experiments/ProMoE-S-DDPM.yaml",
                           "experiments/ProMoE-B-DDPM.yaml", "experiments/ProMoE-L-DDPM.yaml",
                           "experiments/ProMoE-XL-DDPM.yaml", "experiments/ProMoE-L-EC-Flow.yaml"};
    for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
        struct config cfg;
        struct moe_spec spec;
        config_defaults(&cfg);
        if (config_load_file(&cfg, paths[i]) < 0 || config_validate(&cfg) < 0 || moe_spec_from_config(&cfg, &spec) < 0) {
            CHECK(0, "%s: %s", paths[i], err_message());
            continue;
        }
        CHECK(strcmp(router_name(cfg.moe_router), "prototype_ec") == 0 && spec.routed == 12 && spec.conditional &&
                  spec.capacity == 1 && spec.activation == ACTIVATION_IDENTITY && cfg.rcl_tau == 0.07,
              "%s: router, experts, capacity, activation or tau", paths[i]);
        CHECK((cfg.objective == OBJECTIVE_DDPM) == (strstr(paths[i], "Flow") == NULL), "%s: objective", paths[i]);
    }
    struct config cfg;
    struct dit m;
    config_defaults(&cfg);
    if (config_load_file(&cfg, "experiments/mini/prototype_ec.yaml") == 0 && dit_create(&m, &cfg, 0) == 0) {
        for (int block = 0; block < cfg.depth; block++) {
            char name[PARAM_NAME_MAX];
            snprintf(name, sizeof name, "blocks.%d.mlp.cluster_centers", block);
            const struct param_entry *p = params_find(&m.table, name);
            if (block % 2) CHECK(p && p->shape[0] == 12 && p->shape[1] == 192, "mini block %d: prototypes", block);
            else CHECK(!p, "mini block %d should be dense", block);
        }
        dit_destroy(&m);
    } else CHECK(0, "mini config: %s", err_message());
    config_defaults(&cfg);
    CHECK(config_load_file(&cfg, "experiments/mini/prototype_ec.yaml") == 0 &&
              config_set(&cfg, "model.moe.experts=E14A2S1U1") == 0, "mini config with top-2 does not load");
    struct moe_spec spec;
    CHECK(moe_spec_from_config(&cfg, &spec) < 0 && strstr(err_message(), "model.moe.capacity") &&
              strstr(err_message(), "E14A2S1U1"), "top-2 not refused with the keys named: %s", err_message());
}

// ---- training ----
static char tmp_dir[] = "/tmp/promoe_test_pec_XXXXXX";

static double query(const char *db_path, const char *sql)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    double value = -1;
    if (sqlite3_open(db_path, &db) == SQLITE_OK && sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW) value = sqlite3_column_double(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return value;
}

#define TRAIN_STEPS 150
#define LOSS_WINDOW 20
#define MAX_LOSS_RATIO 0.75   // as test_train's dense rf run

// A tiny conditional rectified-flow model trains: the loss falls, aux/rcl is logged at every step and
// positive, and every expert takes k = floor(16 / 4) = 4 tokens of every conditional sample.
static void test_training(void)
{
    struct config cfg;
    struct train_result r;
    char db[256], sql[640];
    config_defaults(&cfg);
    const char *sets[] = {"model.hidden=32", "model.depth=2", "model.heads=2", "model.patch=7",
                          "model.moe.experts=E6A1S1U1", "model.moe.router=prototype_ec",
                          "model.moe.conditional=true", "train.batch_size=16", "train.steps=150", "train.lr=1e-3",
                          "log.every=1", "ckpt.every=0", "sample.n=0", "train.ema_decay=0.9", "train.threads=1"};
    for (size_t i = 0; i < sizeof sets / sizeof *sets; i++) config_set(&cfg, sets[i]);
    snprintf(cfg.ckpt_dir, sizeof cfg.ckpt_dir, "%s/ckpt", tmp_dir);
    snprintf(db, sizeof db, "%s/pec.db", tmp_dir);
    struct train_options o = {.db_path = db};
    if (train_run(&cfg, &o, &r) < 0) {
        CHECK(0, "training run: %s", err_message());
        return;
    }
    snprintf(sql, sizeof sql,
             "SELECT (SELECT avg(value) FROM (SELECT value FROM metrics WHERE run_id='%s' AND name='loss' "
             "ORDER BY step DESC LIMIT %d)) / (SELECT avg(value) FROM (SELECT value FROM metrics WHERE "
             "run_id='%s' AND name='loss' ORDER BY step LIMIT %d))", r.run_id, LOSS_WINDOW, r.run_id, LOSS_WINDOW);
    double ratio = query(db, sql);
    printf("prototype_ec: loss %.4f -> %.4f, last/first %d-step mean ratio %.3f\n", r.first_loss, r.last_loss,
           LOSS_WINDOW, ratio);
    CHECK(ratio > 0 && ratio < MAX_LOSS_RATIO, "loss ratio %.3f is not below %.2f", ratio, MAX_LOSS_RATIO);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM metrics WHERE run_id='%s' AND name='aux/rcl' AND value > 0",
             r.run_id);
    CHECK(query(db, sql) == TRAIN_STEPS, "aux/rcl not positive at every step");
    snprintf(sql, sizeof sql, "SELECT max(abs(value)) FROM metrics WHERE run_id='%s' AND name='aux/balance'", r.run_id);
    CHECK(query(db, sql) == 0, "a balance loss was logged");
    // Routed experts 0..3: 4 tokens per conditional sample, so tokens_cond is a multiple of 4 and at
    // most 16 x 4; nothing dropped.
    snprintf(sql, sizeof sql, "SELECT count(*) FROM routing WHERE run_id='%s' AND layer=1 AND expert<4 AND "
             "(tokens_cond %% 4 != 0 OR tokens_cond > 64 OR tokens_uncond != 0 OR dropped != 0)", r.run_id);
    CHECK(query(db, sql) == 0, "routing rows with other than 4 tokens per conditional sample");
    snprintf(sql, sizeof sql, "SELECT count(*) FROM routing WHERE run_id='%s' AND layer=1 AND t_bin=-1", r.run_id);
    CHECK(query(db, sql) == TRAIN_STEPS * 5, "routing rows: %.0f", query(db, sql));
}

// The mini config (DDPM) trains a few steps at a small batch.
static void test_mini_steps(void)
{
    struct config cfg;
    struct train_result r;
    char db[256];
    config_defaults(&cfg);
    if (config_load_file(&cfg, "experiments/mini/prototype_ec.yaml") < 0) {
        CHECK(0, "mini config: %s", err_message());
        return;
    }
    const char *sets[] = {"train.steps=3", "train.batch_size=8", "log.every=1", "ckpt.every=0", "sample.n=0",
                          "train.threads=1", "eval.every=0"};
    for (size_t i = 0; i < sizeof sets / sizeof *sets; i++) config_set(&cfg, sets[i]);
    snprintf(cfg.ckpt_dir, sizeof cfg.ckpt_dir, "%s/ckpt", tmp_dir);
    snprintf(db, sizeof db, "%s/mini.db", tmp_dir);
    struct train_options o = {.db_path = db};
    if (train_run(&cfg, &o, &r) < 0) {
        CHECK(0, "mini run: %s", err_message());
        return;
    }
    CHECK(r.steps_done == 3 && isfinite(r.last_loss) && r.last_loss > 0, "mini run: %lld steps, loss %.4f",
          (long long)r.steps_done, r.last_loss);
}

int main(void)
{
    rng_init(&test_rng, 2025, 0, RNG_TEST, 0);
    omp_set_num_threads(2);
    test_parameters();
    test_choice_and_rcl();
    test_ties();
    test_conditional();
    test_batch_independence();
    test_determinism();
    test_inference();
    test_configs();
    if (!mkdtemp(tmp_dir)) return 1;
    test_training();
    test_mini_steps();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp_dir);
    if (check_failed == 0 && system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp_dir);
    return test_summary("test_router_prototype_ec");
}
