// The MoE layer shared by every router: a one-expert layer whose gate is 1 equals the dense MLP
// with the same weights (a check of dispatch); with conditional routing the null-label samples
// reach only the unconditional expert and the others only routed experts, each routed token in
// exactly top-k experts and never twice in one; the plan is the same for 1 and 2 threads, and so
// are outputs and gradients bit for bit when one expert holds most tokens; the expert string parser; parameter counts of the paper's MoE models (Tables 2, 5, 11).
#include <omp.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/error.h"
#include "core/rng.h"
#include "model/dit.h"
#include "moe/registry.h"
#include "moe/spec.h"
#include "train/trainer.h"

static void tiny(struct config *cfg, const char *const *sets)
{
    config_defaults(cfg);
    const char *base[] = {"model.hidden=32", "model.depth=2", "model.heads=4", "model.patch=4"};
    for (int i = 0; i < 4; i++) config_set(cfg, base[i]);
    for (int i = 0; sets && sets[i]; i++)
        if (config_set(cfg, sets[i]) < 0) CHECK(0, "%s", err_message());
}

static void random_inputs(real *x, real *t, int *labels, int B, int null_every)
{
    struct rng r;
    rng_init(&r, 5, 0, RNG_TEST, 0);
    for (int i = 0; i < B * 28 * 28; i++) x[i] = (real)rng_normal(&r);
    for (int b = 0; b < B; b++) {
        t[b] = (real)(37 * b % 1000);
        labels[b] = null_every && b % null_every == 0 ? 10 : b % 10;
    }
}

static void copy_tensor(const struct dit *from, const real *wf, const char *a, const struct dit *to, real *wt, const char *b)
{
    const struct param_entry *ea = params_find(&from->table, a), *eb = params_find(&to->table, b);
    CHECK(ea && eb && ea->count == eb->count, "cannot copy '%s' to '%s'", a, b);
    if (ea && eb && ea->count == eb->count) memcpy(wt + eb->offset, wf + ea->offset, sizeof(real) * ea->count);
}

// E1A1S0U0, token choice with softmax over one expert: every gate is exactly 1.
static void test_one_expert_equals_dense(void)
{
    struct config dense_cfg, moe_cfg;
    const char *moe_sets[] = {"model.moe.experts=E1A1S0U0", "model.moe.router=token_choice", "model.moe.first=0",
                              "model.moe.every=1", NULL};
    tiny(&dense_cfg, NULL);
    tiny(&moe_cfg, moe_sets);
    struct dit dense, moe;
    CHECK(dit_create(&dense, &dense_cfg, 4) == 0 && dit_create(&moe, &moe_cfg, 4) == 0, "%s", err_message());
    real *wd = calloc(dense.table.total, sizeof(real)), *wm = calloc(moe.table.total, sizeof(real));
    params_init(&dense.table, wd, 3);
    struct rng r;
    rng_init(&r, 9, 0, RNG_TEST, 1);
    for (size_t i = 0; i < dense.table.total; i++) wd[i] += (real)(0.05 * rng_normal(&r));  // no zero paths
    for (int i = 0; i < dense.table.n; i++) {
        const char *name = dense.table.entries[i].name;
        if (!(strncmp(name, "blocks.", 7) == 0 && strstr(name, ".mlp."))) copy_tensor(&dense, wd, name, &moe, wm, name);
    }
    const char *pairs[][2] = {{"fc1.weight", "experts.0.fc1.weight"}, {"fc1.bias", "experts.0.fc1.bias"},
                              {"fc2.weight", "experts.0.fc2.weight"}, {"fc2.bias", "experts.0.fc2.bias"}};
    for (int b = 0; b < 2; b++)
        for (int k = 0; k < 4; k++) {
            char a[96], c[96];
            snprintf(a, sizeof a, "blocks.%d.mlp.%s", b, pairs[k][0]);
            snprintf(c, sizeof c, "blocks.%d.mlp.%s", b, pairs[k][1]);
            copy_tensor(&dense, wd, a, &moe, wm, c);
        }
    dit_bind_weights(&dense, wd);
    dit_bind_weights(&moe, wm);
    real x[4 * 784], t[4];
    int labels[4];
    random_inputs(x, t, labels, 4, 0);
    size_t n = 4 * 2 * 784;
    real *out_dense = malloc(sizeof(real) * n);
    memcpy(out_dense, dit_forward(&dense, x, t, labels, 4), sizeof(real) * n);
    const real *out_moe = dit_forward(&moe, x, t, labels, 4);
    double worst = 0, scale = 0;
    for (size_t i = 0; i < n; i++) {
        worst = fmax(worst, fabs(out_moe[i] - out_dense[i]));
        scale = fmax(scale, fabs(out_dense[i]));
    }
    CHECK(scale > 1e-3, "dense output is trivially small (%g)", scale);
    CHECK(worst <= 1e-6 * scale, "one-expert MoE differs from the dense MLP by %g (scale %g)", worst, scale);
    free(wd); free(wm); free(out_dense);
    dit_destroy(&dense);
    dit_destroy(&moe);
}

// Plan invariants of a prototype layer with conditional routing, top-2.
static void check_plan(const struct moe_layer *L, int B, int T, const int *labels)
{
    const struct routing_plan *p = &L->plan;
    int R = L->spec.routed, K = L->spec.active, bad_cond = 0, bad_uncond = 0, dupes = 0, wrong_k = 0;
    int count[B * T];
    memset(count, 0, sizeof count);
    for (int e = 0; e < p->n_experts; e++)
        for (int s = p->offset[e]; s < p->offset[e + 1]; s++) {
            int n = p->token[s], null = labels[n / T] == L->num_classes;
            if (e < R) { bad_cond += null; count[n]++; }
            else bad_uncond += !null || p->gate[s] != 1;
            if (s > p->offset[e] && p->token[s - 1] >= n) dupes++;
        }
    for (int n = 0; n < B * T; n++) wrong_k += labels[n / T] != L->num_classes && count[n] != K;
    CHECK(bad_cond == 0, "%d null-label tokens reached routed experts", bad_cond);
    CHECK(bad_uncond == 0, "%d conditional tokens (or gates != 1) at the unconditional expert", bad_uncond);
    CHECK(dupes == 0, "%d tokens repeated or out of order within an expert", dupes);
    CHECK(wrong_k == 0, "%d routed tokens without exactly %d experts", wrong_k, K);
    int uncond_slots = p->offset[p->n_experts] - p->offset[R], nulls = 0;
    for (int b = 0; b < B; b++) nulls += labels[b] == L->num_classes;
    CHECK(uncond_slots == nulls * T, "%d unconditional slots for %d null samples of %d tokens", uncond_slots, nulls, T);
}

// A tiny conditional ProMoE model (prototype router, MoE in block 1) for batches of up to 6, with
// its initial weights plus noise drawn from seed (so every expert and gate is non-trivial); returns
// the weights, bound.
static real *prototype_model(struct config *cfg, struct dit *m, const char *experts, uint64_t seed)
{
    const char *sets[] = {experts, "model.moe.router=prototype", "model.moe.conditional=true", NULL};
    tiny(cfg, sets);
    CHECK(dit_create(m, cfg, 6) == 0, "%s", err_message());
    real *w = calloc(m->table.total, sizeof(real));
    params_init(&m->table, w, 1);
    struct rng r;
    rng_init(&r, seed, 0, RNG_TEST, 0);
    for (size_t i = 0; i < m->table.total; i++) w[i] += (real)(0.05 * rng_normal(&r));
    dit_bind_weights(m, w);
    return w;
}

static void test_conditional_plan(void)
{
    struct config cfg;
    struct dit m;
    real *w = prototype_model(&cfg, &m, "model.moe.experts=E8A2S1U1", 2);
    real x[6 * 784], t[6];
    int labels[6];
    random_inputs(x, t, labels, 6, 3);   // samples 0 and 3 carry the null label
    m.training = 1;
    dit_forward(&m, x, t, labels, 6);
    const struct moe_layer *L = m.moe[1];
    CHECK(L != NULL && m.moe[0] == NULL, "MoE should be in block 1 only");
    if (!L) return;
    check_plan(L, 6, 49, labels);
    // The same plan with one thread.
    int n_slots = L->plan.n_slots, *tokens = malloc(sizeof(int) * n_slots);
    real *gates = malloc(sizeof(real) * n_slots);
    memcpy(tokens, L->plan.token, sizeof(int) * n_slots);
    memcpy(gates, L->plan.gate, sizeof(real) * n_slots);
    omp_set_num_threads(1);
    dit_forward(&m, x, t, labels, 6);
    omp_set_num_threads(2);
    CHECK(L->plan.n_slots == n_slots && memcmp(tokens, L->plan.token, sizeof(int) * n_slots) == 0 &&
          memcmp(gates, L->plan.gate, sizeof(real) * n_slots) == 0, "plan differs between 1 and 2 threads");
    free(tokens); free(gates); free(w);
    dit_destroy(&m);
}

// Forward and backward of one batch with the given thread count: output [B, 2, 28, 28] then the
// gradient buffer, into out.
static void forward_backward(struct dit *m, real *g, const real *x, const real *t, const int *labels, int B,
                             int threads, real *out)
{
    size_t n_out = (size_t)B * m->shape.out_channels * 28 * 28;
    real *d_out = malloc(sizeof(real) * n_out);
    for (size_t i = 0; i < n_out; i++) d_out[i] = (real)(((i * 7919) % 13) - 6) / 13;
    omp_set_num_threads(threads);
    memset(g, 0, sizeof(real) * m->table.total);
    memcpy(out, dit_forward(m, x, t, labels, B), sizeof(real) * n_out);
    dit_backward(m, d_out, B);
    memcpy(out + n_out, g, sizeof(real) * m->table.total);
    omp_set_num_threads(2);
    free(d_out);
}

// The unconditional expert takes every token of null-label samples: with most samples null it holds
// more than a thread's share of the slots and runs alone on all threads, the others one per thread.
// 1 and 2 threads must agree bit for bit on the output and every gradient.
static void test_unbalanced_experts_threads(void)
{
    struct config cfg;
    struct dit m;
    real *w = prototype_model(&cfg, &m, "model.moe.experts=E6A1S1U1", 3), *g = calloc(m.table.total, sizeof(real));
    dit_bind_grads(&m, g);
    m.training = 1;
    size_t n = (size_t)6 * m.shape.out_channels * 28 * 28 + m.table.total;
    real *one = malloc(sizeof(real) * n), *two = malloc(sizeof(real) * n), x[6 * 784], t[6];
    int labels[6];
    for (int nulls = 4; nulls <= 6; nulls += 2) {
        random_inputs(x, t, labels, 6, 0);
        for (int b = 0; b < nulls; b++) labels[b] = cfg.num_classes;
        forward_backward(&m, g, x, t, labels, 6, 1, one);
        forward_backward(&m, g, x, t, labels, 6, 2, two);
        const struct routing_plan *p = &m.moe[1]->plan;
        int uncond = p->offset[p->n_experts] - p->offset[p->n_experts - 1];
        CHECK(2 * uncond > p->n_slots, "%d null samples: the unconditional expert has %d of %d slots", nulls,
              uncond, p->n_slots);
        CHECK(memcmp(one, two, sizeof(real) * n) == 0, "%d null samples of 6: 1 and 2 threads differ", nulls);
    }
    free(one); free(two); free(w); free(g);
    dit_destroy(&m);
}

static void test_spec_parser(void)
{
    struct moe_spec s;
    CHECK(moe_spec_parse("E14A1S1U1", &s) == 0 && s.routed == 12 && s.active == 1 && s.shared == 1 && s.uncond == 1,
          "E14A1S1U1");
    CHECK(moe_spec_parse("E8A1S0N0", &s) == 0 && s.routed == 8, "the paper's N spelling");
    const char *bad[][2] = {{"E14A1S1", "does not parse"}, {"14A1S1U1", "does not parse"},
                            {"E2A1S1U1", "leave no routed expert"}, {"E14A13S1U1", "top-k 13"},
                            {"E14A0S1U1", "top-k 0"}, {"E14A1S1U1x", "does not parse"}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        CHECK(moe_spec_parse(bad[i][0], &s) < 0, "'%s' accepted", bad[i][0]);
        CHECK(strstr(err_message(), bad[i][1]) && strstr(err_message(), bad[i][0]), "'%s': message '%s'",
              bad[i][0], err_message());
    }
    struct config cfg;
    tiny(&cfg, (const char *[]){"model.moe.experts=E14A1S1U1", NULL});
    CHECK(moe_spec_from_config(&cfg, &s) < 0 && strstr(err_message(), "model.moe.conditional"),
          "unconditional experts without conditional routing: %s", err_message());
    // Baseline routers refuse shared experts whose official layout the layer does not build.
    const char *refused[][2] = {{"token_choice", "SwiGLU"}, {"expert_choice", "SwiGLU"}, {"diffmoe", "8D"}};
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
        char router[64];
        snprintf(router, sizeof router, "model.moe.router=%s", refused[i][0]);
        tiny(&cfg, (const char *[]){"model.moe.experts=E5A1S1U0", router, NULL});
        CHECK(moe_spec_from_config(&cfg, &s) < 0 && strstr(err_message(), refused[i][1]) &&
                  strstr(err_message(), "E5A1S1U0") && strstr(err_message(), refused[i][0]),
              "%s with a shared expert: '%s'", refused[i][0], err_message());
        tiny(&cfg, (const char *[]){"model.moe.experts=E4A1S0U0", router, NULL});
        CHECK(moe_spec_from_config(&cfg, &s) == 0, "%s without shared experts: %s", refused[i][0], err_message());
    }
}

// Every row of config/routers.h is a value of model.moe.router with a complete registry entry,
// and the config's name of each value is the registry's; a value past the list has none.
static void test_router_registry(void)
{
    for (int kind = 0; kind < ROUTER_COUNT; kind++) {
        const struct router_ops *r = router_lookup(kind);
        const char *name = router_name(kind);
        CHECK(r && name && r->add_params && r->bind && r->max_slots && r->layout && r->plan && r->backward &&
                  r->destroy, "router %d (%s): incomplete registry entry", kind, name ? name : "?");
        if (!r || !name) continue;
        CHECK(r->default_activation > ACTIVATION_DEFAULT && r->default_activation <= ACTIVATION_IDENTITY,
              "router %s: default activation %d", name, r->default_activation);
        CHECK(!(r->aux & AUX_BIT(AUX_PLR)) && r->aux < AUX_BIT(AUX_COUNT), "router %s: aux %#x", name, r->aux);
        struct config cfg;
        char text[64], assignment[96];
        config_defaults(&cfg);
        snprintf(assignment, sizeof assignment, "model.moe.router=%s", name);
        CHECK(config_set(&cfg, assignment) == 0 && cfg.moe_router == kind, "%s: %s", assignment, err_message());
        CHECK(config_value_text(&cfg, "model.moe.router", text, sizeof text) > 0 && strcmp(text, name) == 0,
              "router %d: config names it '%s', the registry '%s'", kind, text, name);
    }
    CHECK(!router_lookup(ROUTER_COUNT) && !router_name(ROUTER_COUNT) && !router_lookup(-1), "lookup past the list");
    struct config cfg;
    config_defaults(&cfg);
    CHECK(config_set(&cfg, "model.moe.router=prototypes") < 0 && strstr(err_message(), "prototype"),
          "an unknown router is refused naming the allowed ones: %s", err_message());
}

// Tables 2, 5, 11 (paper figures), within 1.5%.
static void test_paper_counts(void)
{
    const struct { const char *file; double total, active; } rows[] = {
        {"ProMoE-S-Flow", 75e6, 33e6}, {"ProMoE-B-Flow", 300e6, 130e6}, {"ProMoE-L-Flow", 1.063e9, 458e6},
        {"ProMoE-XL-Flow", 1.568e9, 675e6}, {"ProMoE-B-DDPM", 300e6, 130e6}, {"ProMoE-L-top3-Flow", 1.063e9, 558e6},
        {"DiT-MoE-L-Flow", 1.163e9, 458e6}, {"EC-DiT-L-Flow", 1.163e9, 458e6}, {"DiT-MoE-L-DDPM", 1.163e9, 458e6}};
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
        char path[128];
        snprintf(path, sizeof path, "experiments/%s.yaml", rows[i].file);
        struct config cfg;
        struct dit m;
        config_defaults(&cfg);
        if (config_load_file(&cfg, path) < 0 || dit_create(&m, &cfg, 0) < 0) {
            CHECK(0, "%s: %s", path, err_message());
            continue;
        }
        double total = (double)params_count_total(&m.table), active = (double)params_count_activated(&m.table);
        CHECK(fabs(total - rows[i].total) / rows[i].total < 0.015, "%s: total %.2fM vs paper %.0fM", path, total / 1e6,
              rows[i].total / 1e6);
        CHECK(fabs(active - rows[i].active) / rows[i].active < 0.015, "%s: activated %.2fM vs paper %.0fM", path,
              active / 1e6, rows[i].active / 1e6);
        dit_destroy(&m);
    }
}

// A short run of a router's mini settings at tiny size: the loss falls and the routing statistics
// land in the database (every expert of every MoE layer at every logged step).
static void test_training_run(const char *router, const char *experts, const char *extra)
{
    char dir[] = "/tmp/promoe_test_moe_XXXXXX";
    if (!mkdtemp(dir)) return;
    struct config cfg;
    char set_router[64], set_experts[64], db[128];
    snprintf(set_router, sizeof set_router, "model.moe.router=%s", router);
    snprintf(set_experts, sizeof set_experts, "model.moe.experts=%s", experts);
    const char *sets[] = {set_router, set_experts, extra, "model.hidden=64", "train.batch_size=32",
                          "train.steps=200", "train.lr=1e-3", "log.every=10", "sample.n=0", "train.threads=1", NULL};
    tiny(&cfg, sets);
    config_set(&cfg, "model.patch=7");
    snprintf(cfg.ckpt_dir, sizeof cfg.ckpt_dir, "%s", dir);
    snprintf(db, sizeof db, "%s/r.db", dir);
    struct train_options o = {.db_path = db};
    struct train_result r;
    CHECK(train_run(&cfg, &o, &r) == 0, "%s: %s", router, err_message());
    sqlite3 *h;
    sqlite3_stmt *st;
    double first = 0, last = 0;
    int64_t rows = 0, classes = 0;
    if (sqlite3_open(db, &h) == SQLITE_OK) {
        const char *sql =
            "SELECT (SELECT avg(value) FROM (SELECT value FROM metrics WHERE name='loss' ORDER BY step LIMIT 3)),"
            "(SELECT avg(value) FROM (SELECT value FROM metrics WHERE name='loss' ORDER BY step DESC LIMIT 3)),"
            "(SELECT count(*) FROM routing), (SELECT count(DISTINCT class_id) FROM class_routing)";
        if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
            first = sqlite3_column_double(st, 0);
            last = sqlite3_column_double(st, 1);
            rows = sqlite3_column_int64(st, 2);
            classes = sqlite3_column_int64(st, 3);
        }
        sqlite3_finalize(st);
    }
    sqlite3_close(h);
    struct moe_spec spec;
    moe_spec_from_config(&cfg, &spec);
    int64_t expected_rows = 21 * (int64_t)(spec.routed + spec.uncond);   // steps 1, 10, ..., 200; MoE in block 1
    printf("%s: loss %.4f -> %.4f (first/last 3 logged), %lld routing rows\n", router, first, last, (long long)rows);
    CHECK(first > 0 && last < 0.75 * first, "%s: loss %.4f -> %.4f did not fall by 25%%", router, first, last);
    CHECK(rows == expected_rows, "%s: %lld routing rows, expected %lld", router, (long long)rows, (long long)expected_rows);
    CHECK(classes >= 10, "%s: class_routing covers %lld classes", router, (long long)classes);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

int main(void)
{
    omp_set_num_threads(2);
    test_one_expert_equals_dense();
    test_conditional_plan();
    test_unbalanced_experts_threads();
    test_spec_parser();
    test_router_registry();
    test_paper_counts();
    test_training_run("token_choice", "E4A1S0U0", "loss.balance.weight=0.01");
    test_training_run("prototype", "E6A1S1U1", "model.moe.conditional=true");
    return test_summary("test_moe");
}
