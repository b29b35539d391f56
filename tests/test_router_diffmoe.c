// DiffMoE router (ROUTERS.md 3.3) on a single MoE layer and in a short training run: in training
// every expert takes exactly k = floor(n/E * capacity) tokens of the batch pool, the ones a double
// reference ranks highest, with gate S; conditional routing keeps the pools apart; plans do not
// depend on repetition or thread count; thresholds follow tau <- m tau + (1 - m) q only when
// buffers may change; at inference each expert's count is #{sigmoid(pred) > tau}; the BCE never
// reaches d_x; training lowers the loss and logs aux/capacity.
#include <omp.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "core/blas.h"
#include "core/error.h"
#include "core/rng.h"
#include "model/safetensors.h"
#include "moe/moe.h"
#include "train/trainer.h"

#define GATE_TEST_STD 1.0       // well-separated scores, so float and double rank alike
#define MIN_SCORE_GAP 1e-4      // asserted between the last chosen and first refused score
#define REL_TOL 1e-5
#define LAYER_BLOCK 1

static char tmp_dir[] = "/tmp/promoe_test_diffmoe_XXXXXX";

// One MoE layer with its weights, gradients and activations (B samples of T tokens, D = 16).
struct harness {
    struct config cfg;
    struct param_table table;
    struct moe_layer L;
    struct arena arena;
    real *w, *g, *x, *y, *d_y, *d_x;
    int labels[16];
    int B, T, N, D, E;
};

static real *tensor(struct harness *h, real *base, const char *suffix)
{
    char name[PARAM_NAME_MAX + 32];
    snprintf(name, sizeof name, "blocks.%d.mlp.%s", LAYER_BLOCK, suffix);
    const struct param_entry *e = params_find(&h->table, name);
    if (!e) {
        fprintf(stderr, "no tensor %s\n", name);
        exit(1);
    }
    return base + e->offset;
}

static struct harness *harness_new(const char *const *sets, int n_sets, int B, int T, uint64_t seed)
{
    struct harness *h = calloc(1, sizeof *h);
    config_defaults(&h->cfg);
    const char *base[] = {"model.hidden=16", "model.moe.router=diffmoe", "model.moe.experts=E4A1S0U0"};
    for (size_t i = 0; i < sizeof base / sizeof *base; i++) config_set(&h->cfg, base[i]);
    for (int i = 0; i < n_sets; i++)
        if (config_set(&h->cfg, sets[i]) < 0) fprintf(stderr, "config_set: %s\n", err_message());
    if (moe_create(&h->L, &h->cfg, LAYER_BLOCK, &h->table) < 0) {
        fprintf(stderr, "moe_create: %s\n", err_message());
        exit(1);
    }
    h->B = B, h->T = T, h->N = B * T, h->D = h->cfg.hidden, h->E = h->L.spec.routed;
    h->w = calloc(h->table.total, sizeof(real));
    h->g = calloc(h->table.total, sizeof(real));
    params_init(&h->table, h->w, seed);
    moe_bind(&h->L, &h->table, h->w, 0);
    moe_bind(&h->L, &h->table, h->g, 1);
    moe_layout(&h->L, &h->arena, B, T);
    if (arena_allocate(&h->arena) < 0) exit(1);
    moe_layout(&h->L, &h->arena, B, T);
    size_t nd = (size_t)h->N * h->D;
    h->x = malloc(sizeof(real) * nd), h->y = malloc(sizeof(real) * nd);
    h->d_y = malloc(sizeof(real) * nd), h->d_x = malloc(sizeof(real) * nd);
    struct rng r;
    rng_init(&r, seed, 0, RNG_TEST, 0);
    for (size_t i = 0; i < nd; i++) h->x[i] = (real)rng_normal(&r), h->d_y[i] = (real)rng_normal(&r);
    real *gate = tensor(h, h->w, "gate_weight");
    for (int i = 0; i < h->E * h->D; i++) gate[i] = (real)(GATE_TEST_STD * rng_normal(&r));
    for (int b = 0; b < B; b++) h->labels[b] = b % h->cfg.num_classes;
    h->L.training = 1;
    return h;
}

static void harness_free(struct harness *h)
{
    moe_destroy(&h->L);
    params_free(&h->table);
    arena_free(&h->arena);
    free(h->w), free(h->g), free(h->x), free(h->y), free(h->d_y), free(h->d_x);
    free(h);
}

static void forward(struct harness *h) { moe_forward(&h->L, h->y, h->x, h->labels, h->B, h->T); }

// ---- double-precision reference ----

// S [N, E] = activation(x W^T) (softmax or sigmoid).
static void ref_scores(struct harness *h, double *S)
{
    const real *W = tensor(h, h->w, "gate_weight");
    for (int n = 0; n < h->N; n++) {
        double z[64], max = -INFINITY, sum = 0;
        for (int e = 0; e < h->E; e++) {
            z[e] = 0;
            for (int d = 0; d < h->D; d++) z[e] += (double)h->x[n * h->D + d] * W[e * h->D + d];
            max = fmax(max, z[e]);
        }
        for (int e = 0; e < h->E; e++) sum += exp(z[e] - max);
        for (int e = 0; e < h->E; e++)
            S[n * h->E + e] = h->L.spec.activation == ACTIVATION_SIGMOID ? 1 / (1 + exp(-z[e])) : exp(z[e] - max) / sum;
    }
}

// prob [N, E] = sigmoid(Linear(SiLU(Linear(x)))) for every token.
static void ref_predictor(struct harness *h, double *prob, double *logit)
{
    const real *w0 = tensor(h, h->w, "capacity_predictor.0.weight"), *b0 = tensor(h, h->w, "capacity_predictor.0.bias");
    const real *w2 = tensor(h, h->w, "capacity_predictor.2.weight"), *b2 = tensor(h, h->w, "capacity_predictor.2.bias");
    int D = h->D;
    for (int n = 0; n < h->N; n++) {
        double hid[64];
        for (int j = 0; j < D; j++) {
            double a = b0[j];
            for (int d = 0; d < D; d++) a += (double)w0[j * D + d] * h->x[n * D + d];
            hid[j] = a / (1 + exp(-a));
        }
        for (int e = 0; e < h->E; e++) {
            double a = b2[e];
            for (int j = 0; j < D; j++) a += (double)w2[e * D + j] * hid[j];
            prob[n * h->E + e] = 1 / (1 + exp(-a));
            if (logit) logit[n * h->E + e] = a;
        }
    }
}

static int routed_token(struct harness *h, int n)
{
    return !(h->L.spec.conditional && h->labels[n / h->T] == h->cfg.num_classes);
}

// chosen [N] = 1 for the `count` routed tokens with the largest column e of v [N, E] (ties to the
// lower index); returns the gap between the last chosen and the first refused value (or 1).
static double ref_top(struct harness *h, const double *v, int e, int count, int *chosen)
{
    memset(chosen, 0, sizeof(int) * h->N);
    double last = INFINITY;
    for (int j = 0; j < count; j++) {
        int best = -1;
        for (int n = 0; n < h->N; n++)
            if (routed_token(h, n) && !chosen[n] && (best < 0 || v[n * h->E + e] > v[best * h->E + e])) best = n;
        chosen[best] = 1;
        last = v[best * h->E + e];
    }
    double next = -INFINITY;
    for (int n = 0; n < h->N; n++)
        if (routed_token(h, n) && !chosen[n]) next = fmax(next, v[n * h->E + e]);
    return isfinite(last) && isfinite(next) ? last - next : 1;
}

static int pool_size(struct harness *h)
{
    int n = 0;
    for (int t = 0; t < h->N; t++) n += routed_token(h, t);
    return n;
}

// The k-th largest (1-based) of column e of v [N, E] over the routed tokens.
static double kth_largest(struct harness *h, const double *v, int e, int k)
{
    int *chosen = malloc(sizeof(int) * h->N);
    ref_top(h, v, e, k, chosen);
    double kth = INFINITY;
    for (int t = 0; t < h->N; t++)
        if (chosen[t]) kth = fmin(kth, v[t * h->E + e]);
    free(chosen);
    return kth;
}

// ---- plan checks ----

// Expert e's slots hold exactly the chosen tokens, ascending, with gate S; returns mismatches.
static int check_expert(struct harness *h, int e, const int *chosen, const double *S, const char *what)
{
    const struct routing_plan *p = &h->L.plan;
    int bad = 0, count = 0;
    for (int n = 0; n < h->N; n++) count += chosen[n];
    CHECK(p->offset[e + 1] - p->offset[e] == count, "%s: expert %d takes %d tokens, expected %d", what, e,
          p->offset[e + 1] - p->offset[e], count);
    for (int s = p->offset[e]; s < p->offset[e + 1]; s++) {
        int n = p->token[s];
        bad += !chosen[n];
        bad += s > p->offset[e] && p->token[s - 1] >= n;   // ascending, so no duplicate
        bad += fabs(p->gate[s] - S[n * h->E + e]) > REL_TOL * fmax(1e-3, S[n * h->E + e]);
    }
    CHECK(bad == 0, "%s: expert %d has %d wrong, duplicated or mis-gated slots", what, e, bad);
    return bad;
}

static double bce_reference(struct harness *h, const double *logit)
{
    const struct routing_plan *p = &h->L.plan;
    double sum = 0;
    int n = 0;
    for (int t = 0; t < h->N; t++) {
        if (!routed_token(h, t)) continue;
        n++;
        for (int e = 0; e < h->E; e++) {
            int taken = 0;
            for (int s = p->offset[e]; s < p->offset[e + 1]; s++) taken |= p->token[s] == t;
            double l = logit[t * h->E + e];
            sum += log(1 + exp(l)) - l * taken;
        }
    }
    return n ? h->cfg.capacity_weight * sum / ((double)n * h->E) : 0;
}

// Training: each expert takes the k pool tokens with the largest score, gate S; BCE as defined.
static void check_training_plan(struct harness *h, const char *what)
{
    int n = pool_size(h), k = (int)floor((double)n / h->E * h->L.spec.capacity);
    k = k < n ? k : n;
    double *S = malloc(sizeof(double) * h->N * h->E), *prob = malloc(sizeof(double) * h->N * h->E);
    double *logit = malloc(sizeof(double) * h->N * h->E), min_gap = INFINITY;
    int *chosen = malloc(sizeof(int) * h->N);
    forward(h);
    ref_scores(h, S);
    ref_predictor(h, prob, logit);
    for (int e = 0; e < h->E; e++) {
        min_gap = fmin(min_gap, ref_top(h, S, e, k, chosen));
        check_expert(h, e, chosen, S, what);
    }
    CHECK(min_gap > MIN_SCORE_GAP, "%s: scores too close to test the choice (gap %.3g)", what, min_gap);
    CHECK(h->L.plan.dropped == 0, "%s: %d slots dropped", what, h->L.plan.dropped);
    double bce = bce_reference(h, logit);
    CHECK(fabs(h->L.aux[AUX_CAPACITY] - bce) <= 1e-5 * fabs(bce) && bce > 0, "%s: capacity loss %.9g, reference %.9g",
          what, h->L.aux[AUX_CAPACITY], bce);
    printf("%s: pool %d, k %d per expert, capacity loss %.6f, min score gap %.3g\n", what, n, k,
           h->L.aux[AUX_CAPACITY], min_gap);
    free(S), free(prob), free(logit), free(chosen);
}

static void test_training_plans(void)
{
    const char *sigmoid[] = {"model.moe.activation=sigmoid", "loss.capacity.weight=1"};
    const char *capacity[] = {"model.moe.capacity=1.5", "model.moe.experts=E6A1S0U0"};
    struct harness *h = harness_new(NULL, 0, 4, 12, 1);   // n 48, k 12
    check_training_plan(h, "softmax E4");
    harness_free(h);
    h = harness_new(NULL, 0, 5, 10, 2);   // n 50: k = floor(12.5) = 12
    check_training_plan(h, "softmax E4 n 50");
    harness_free(h);
    h = harness_new(sigmoid, 2, 4, 12, 3);
    check_training_plan(h, "sigmoid E4");
    harness_free(h);
    h = harness_new(capacity, 2, 4, 9, 4);   // n 36, k = floor(6 * 1.5) = 9
    check_training_plan(h, "softmax E6 capacity 1.5");
    harness_free(h);
}

// Exact ties (tokens in groups of 5 identical rows, so k = 12 splits a group): the lower token
// indices win, as ROUTERS.md 3.0 asks.
static void test_ties(void)
{
    struct harness *h = harness_new(NULL, 0, 4, 12, 12);
    for (int n = 0; n < h->N; n++) memcpy(h->x + n * h->D, h->x + n / 5 * 5 * h->D, sizeof(real) * h->D);
    double *S = malloc(sizeof(double) * h->N * h->E);
    int *chosen = malloc(sizeof(int) * h->N), split = 0;
    forward(h);
    ref_scores(h, S);
    for (int e = 0; e < h->E; e++) {
        ref_top(h, S, e, 12, chosen);
        for (int g = 0; g < h->N; g += 5) {
            int in = 0;
            for (int n = g; n < g + 5 && n < h->N; n++) in += chosen[n];
            split += in > 0 && in < 5 && g + 5 <= h->N;
        }
        check_expert(h, e, chosen, S, "ties");
    }
    CHECK(split == h->E, "ties: %d experts split a group of equal tokens, expected %d", split, h->E);
    free(S), free(chosen);
    harness_free(h);
}

// Conditional routing: null-label samples go only to the unconditional expert; the pool is the rest.
static void test_conditional(void)
{
    const char *sets[] = {"model.moe.experts=E5A1S0U1", "model.moe.conditional=true"};
    struct harness *h = harness_new(sets, 2, 6, 8, 5);
    h->labels[1] = h->labels[4] = h->cfg.num_classes;   // 2 of 6 samples unconditional: n 32, k 8
    check_training_plan(h, "conditional E5 U1");
    const struct routing_plan *p = &h->L.plan;
    int wrong = 0, uncond = h->E;
    for (int s = 0; s < p->offset[h->E]; s++) wrong += !routed_token(h, p->token[s]);
    for (int s = p->offset[uncond]; s < p->offset[uncond + 1]; s++) wrong += routed_token(h, p->token[s]);
    CHECK(wrong == 0, "conditional: %d slots cross between routed and unconditional experts", wrong);
    CHECK(p->offset[uncond + 1] - p->offset[uncond] == 2 * h->T, "unconditional expert takes %d tokens, not %d",
          p->offset[uncond + 1] - p->offset[uncond], 2 * h->T);
    harness_free(h);
}

// Copies of the plan's tokens and gates, to compare runs bit for bit.
static int same_plan(const struct routing_plan *p, const int *token, const real *gate, const int *offset)
{
    return memcmp(p->offset, offset, sizeof(int) * (p->n_experts + 1)) == 0 &&
           memcmp(p->token, token, sizeof(int) * p->n_slots) == 0 && memcmp(p->gate, gate, sizeof(real) * p->n_slots) == 0;
}

static void test_determinism(void)
{
    struct harness *h = harness_new(NULL, 0, 8, 16, 6);
    const struct routing_plan *p = &h->L.plan;
    forward(h);
    int *token = malloc(sizeof(int) * p->n_slots), offset[16];
    real *gate = malloc(sizeof(real) * p->n_slots);
    memcpy(token, p->token, sizeof(int) * p->n_slots);
    memcpy(gate, p->gate, sizeof(real) * p->n_slots);
    memcpy(offset, p->offset, sizeof(int) * (p->n_experts + 1));
    forward(h);
    CHECK(same_plan(p, token, gate, offset), "the same forward twice gives different plans");
    omp_set_num_threads(1);
    blas_set_threads(1);
    forward(h);
    CHECK(same_plan(p, token, gate, offset), "1 and 2 threads give different plans");
    omp_set_num_threads(2);
    blas_set_threads(2);
    free(token), free(gate);
    harness_free(h);
}

// tau_e <- m tau_e + (1 - m) q_e with q_e the k-th largest predicted probability, only when the
// layer trains with update_buffers = 1.
static void check_threshold_update(struct harness *h, double momentum, const char *what)
{
    real *tau = tensor(h, h->w, "expert_threshold");
    double *prob = malloc(sizeof(double) * h->N * h->E), start[64];
    int n = pool_size(h), k = (int)floor((double)n / h->E * h->L.spec.capacity);
    for (int e = 0; e < h->E; e++) tau[e] = (real)(start[e] = 0.1 + 0.2 * e);
    h->L.update_buffers = 0;
    forward(h);
    int moved = 0;
    for (int e = 0; e < h->E; e++) moved += tau[e] != (real)start[e];
    CHECK(moved == 0, "%s: %d thresholds moved with update_buffers 0", what, moved);
    h->L.training = 0, h->L.update_buffers = 1;
    forward(h);
    for (int e = 0; e < h->E; e++) moved += tau[e] != (real)start[e];
    CHECK(moved == 0, "%s: %d thresholds moved at inference", what, moved);
    h->L.training = 1;
    forward(h);
    ref_predictor(h, prob, NULL);
    for (int e = 0; e < h->E; e++) {
        double q = kth_largest(h, prob, e, k);
        double want = momentum * start[e] + (1 - momentum) * q;
        CHECK(fabs(tau[e] - want) < 1e-6, "%s: threshold %d is %.9g, expected %.9g (q %.6f)", what, e,
              (double)tau[e], want, q);
    }
    h->L.update_buffers = 0;
    free(prob);
}

static void test_thresholds(void)
{
    const char *sets[] = {"model.moe.threshold_momentum=0.5"};
    struct harness *h = harness_new(NULL, 0, 4, 12, 7);
    check_threshold_update(h, 0.95, "momentum 0.95 (default)");
    harness_free(h);
    h = harness_new(sets, 1, 4, 12, 8);
    check_threshold_update(h, 0.5, "momentum 0.5");
    harness_free(h);
}

// Inference: expert e takes the c_e = #{n : prob > tau_e} tokens with the largest S[:, e]. Each
// tau_e is set halfway between the target-th and the next largest reference probability.
static void check_inference(struct harness *h, const int *target, const char *what)
{
    real *tau = tensor(h, h->w, "expert_threshold");
    double *S = malloc(sizeof(double) * h->N * h->E), *prob = malloc(sizeof(double) * h->N * h->E);
    int *chosen = malloc(sizeof(int) * h->N), n = pool_size(h);
    ref_scores(h, S);
    ref_predictor(h, prob, NULL);
    for (int e = 0; e < h->E; e++) {
        if (target[e] == 0 || target[e] == n) {
            tau[e] = target[e] == 0 ? 1 : 0;   // sigmoid never exceeds 1 and is always above 0
            continue;
        }
        double upper = kth_largest(h, prob, e, target[e]), lower = kth_largest(h, prob, e, target[e] + 1);
        CHECK(upper - lower > 1e-5, "%s: probabilities %d and %d of expert %d too close", what, target[e],
              target[e] + 1, e);
        tau[e] = (real)(0.5 * (upper + lower));
    }
    h->L.training = 0;
    forward(h);
    for (int e = 0; e < h->E; e++) {
        int count = 0;
        for (int t = 0; t < h->N; t++) count += routed_token(h, t) && prob[t * h->E + e] > tau[e];
        CHECK(count == target[e], "%s: reference count %d for expert %d, wanted %d", what, count, e, target[e]);
        ref_top(h, S, e, count, chosen);
        check_expert(h, e, chosen, S, what);
    }
    CHECK(h->L.plan.dropped == 0, "%s: %d slots dropped at inference", what, h->L.plan.dropped);
    CHECK(h->L.aux[AUX_CAPACITY] == 0, "%s: capacity loss %.3g at inference", what, h->L.aux[AUX_CAPACITY]);
    h->L.training = 1;
    free(S), free(prob), free(chosen);
}

static void test_inference(void)
{
    struct harness *h = harness_new(NULL, 0, 4, 12, 9);
    int varied[4] = {0, 3, 20, 48}, all[4] = {48, 48, 48, 48};
    check_inference(h, varied, "inference counts 0, 3, 20, 48");
    check_inference(h, all, "inference every token to every expert");
    CHECK(h->L.plan.n_slots == 48 * 4, "n * E slots expected, got %d", h->L.plan.n_slots);
    harness_free(h);
    const char *sets[] = {"model.moe.experts=E5A1S0U1", "model.moe.conditional=true"};
    h = harness_new(sets, 2, 4, 12, 10);
    h->labels[2] = h->cfg.num_classes;   // n 36 routed tokens
    int cond[4] = {36, 1, 9, 0};
    check_inference(h, cond, "conditional inference");
    harness_free(h);
}

// d_x and the router weight's gradient do not depend on loss.capacity.weight (detached
// predictor); the predictor's gradients scale with it and vanish at 0.
static void test_detached_backward(void)
{
    struct harness *h = harness_new(NULL, 0, 4, 12, 11);
    size_t nd = (size_t)h->N * h->D, total = h->table.total;
    real *d_x0 = malloc(sizeof(real) * nd), *g0 = malloc(sizeof(real) * total);
    const double weights[3] = {0.01, 1.0, 0};
    const struct param_entry *w2 = params_find(&h->table, "blocks.1.mlp.capacity_predictor.2.weight");
    const struct param_entry *gate = params_find(&h->table, "blocks.1.mlp.gate_weight");
    double norm[3];
    for (int i = 0; i < 3; i++) {
        h->cfg.capacity_weight = weights[i];   // L->cfg points here
        memset(h->g, 0, sizeof(real) * total);
        forward(h);
        moe_backward(&h->L, h->d_x, h->d_y, h->x, h->B, h->T);
        norm[i] = 0;
        for (size_t j = 0; j < w2->count; j++) norm[i] += fabs(h->g[w2->offset + j]);
        if (i == 0) {
            memcpy(d_x0, h->d_x, sizeof(real) * nd);
            memcpy(g0, h->g, sizeof(real) * total);
            continue;
        }
        CHECK(memcmp(d_x0, h->d_x, sizeof(real) * nd) == 0, "d_x changes with loss.capacity.weight %g", weights[i]);
        CHECK(memcmp(g0 + gate->offset, h->g + gate->offset, sizeof(real) * gate->count) == 0,
              "router gradient changes with loss.capacity.weight %g", weights[i]);
    }
    CHECK(norm[0] > 0 && fabs(norm[1] / norm[0] - 100) < 1e-3, "predictor gradient ratio %.6g for weights 1 / 0.01",
          norm[1] / norm[0]);
    CHECK(norm[2] == 0, "predictor gets gradient %.3g without its loss", norm[2]);
    free(d_x0), free(g0);
    harness_free(h);
}

// ---- a short training run ----

static double query_double(const char *db_path, const char *sql)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    double v = -1;
    if (sqlite3_open(db_path, &db) == SQLITE_OK && sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_double(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return v;
}

#define TRAIN_STEPS 200
#define LOSS_WINDOW 20
#define MAX_LOSS_RATIO 0.8

static void test_training_run(void)
{
    struct config cfg;
    config_defaults(&cfg);
    const char *sets[] = {"model.hidden=32", "model.depth=2", "model.heads=2", "model.patch=7",
                          "train.batch_size=32", "train.steps=200", "train.lr=1e-3", "log.every=1",
                          "ckpt.every=0", "sample.n=0", "model.moe.experts=E4A1S0U0", "model.moe.router=diffmoe",
                          "train.threads=1"};   // one thread: OpenMP barriers crawl on a shared machine
    for (size_t i = 0; i < sizeof sets / sizeof *sets; i++)
        if (config_set(&cfg, sets[i]) < 0) fprintf(stderr, "config_set: %s\n", err_message());
    snprintf(cfg.ckpt_dir, sizeof cfg.ckpt_dir, "%s/ckpt", tmp_dir);
    char db[256], sql[512];
    snprintf(db, sizeof db, "%s/run.db", tmp_dir);
    struct train_options o = {.db_path = db};
    struct train_result r;
    int rc = train_run(&cfg, &o, &r);
    CHECK(rc == 0, "diffmoe training run: %s", rc ? err_message() : "");
    if (rc) return;
    snprintf(sql, sizeof sql,
             "SELECT (SELECT avg(value) FROM (SELECT value FROM metrics WHERE run_id='%s' AND name='loss' "
             "ORDER BY step DESC LIMIT %d)) / (SELECT avg(value) FROM (SELECT value FROM metrics WHERE "
             "run_id='%s' AND name='loss' ORDER BY step LIMIT %d))", r.run_id, LOSS_WINDOW, r.run_id, LOSS_WINDOW);
    double ratio = query_double(db, sql);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM metrics WHERE run_id='%s' AND name='aux/capacity' AND value > 0",
             r.run_id);
    double logged = query_double(db, sql);
    snprintf(sql, sizeof sql, "SELECT value FROM metrics WHERE run_id='%s' AND name='aux/capacity' ORDER BY step DESC",
             r.run_id);
    double last_bce = query_double(db, sql);
    printf("training: loss %.4f -> %.4f, last/first %d-step mean ratio %.3f, %g aux/capacity rows, last %.5f\n",
           r.first_loss, r.last_loss, LOSS_WINDOW, ratio, logged, last_bce);
    CHECK(ratio > 0 && ratio < MAX_LOSS_RATIO, "loss ratio %.3f is not below %.2f", ratio, MAX_LOSS_RATIO);
    CHECK(logged == TRAIN_STEPS, "%g positive aux/capacity rows, expected %d", logged, TRAIN_STEPS);
    // BCE at chance level is 0.01 * ln 2; a trained predictor must beat it
    CHECK(last_bce > 0 && last_bce < 0.01 * log(2), "capacity loss %.5f does not beat chance", last_bce);
    struct st_file *f;
    CHECK(st_open(r.checkpoint, &f) == 0, "open %s", r.checkpoint);
    const char *dtype;
    int ndim;
    int64_t shape[8];
    const float *tau = st_get(f, "train.blocks.1.mlp.expert_threshold", &dtype, &ndim, shape);
    const float *ema = st_get(f, "blocks.1.mlp.expert_threshold", &dtype, &ndim, shape);
    int in_range = tau && ema && shape[0] == 4;
    for (int e = 0; in_range && e < 4; e++) in_range = tau[e] > 0 && tau[e] < 1 && tau[e] == ema[e];
    CHECK(in_range, "thresholds after training are not in (0, 1) or differ in the EMA copy");
    if (tau) printf("training: thresholds %.4f %.4f %.4f %.4f\n", tau[0], tau[1], tau[2], tau[3]);
    st_close(f);
}

int main(void)
{
    if (!mkdtemp(tmp_dir)) return 1;
    omp_set_num_threads(2);
    blas_set_threads(2);
    test_training_plans();
    test_ties();
    test_conditional();
    test_determinism();
    test_thresholds();
    test_inference();
    test_detached_backward();
    test_training_run();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp_dir);
    if (check_failed == 0 && system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp_dir);
    return test_summary("test_router_diffmoe");
}
