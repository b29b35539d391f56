// The DiT network as built from configs: parameter counts of the paper's dense models (DiT's
// 33M / 130M / 458M / 675M, and the exact formula of ROUTERS.md 5.1), state-dict names and
// shapes, DiT's initialisation, the zero output at step 0, and that at step 0 the diffusion loss
// sends gradient only to the final output linear (ROUTERS.md 1.6); what loading a checkpoint checks.
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "core/error.h"
#include "core/rng.h"
#include "model/checkpoint.h"
#include "model/dit.h"

static int load(struct config *cfg, const char *path)
{
    config_defaults(cfg);
    if (config_load_file(cfg, path) < 0 || config_validate(cfg) < 0) {
        fprintf(stderr, "%s\n", err_message());
        return -1;
    }
    return 0;
}

// ROUTERS.md 5.1 for a dense model.
static int64_t dense_formula(int64_t D, int64_t depth, int64_t p, int64_t C, int64_t T, int64_t classes)
{
    int64_t C_out = 2 * C;
    int64_t embed = (p * p * C * D + D) + (256 * D + D) + (D * D + D) + (classes + 1) * D + T * D;
    int64_t block = 18 * D * D + 15 * D;
    int64_t final = 2 * D * D + 2 * D + D * p * p * C_out + p * p * C_out;
    return embed + depth * block + final;
}

static void test_paper_counts(void)
{
    const char *sizes[] = {"S", "B", "L", "XL"};
    const double paper[] = {33e6, 130e6, 458e6, 675e6};
    for (int i = 0; i < 4; i++)
        for (int flow = 0; flow <= 1; flow++) {
            char path[128];
            snprintf(path, sizeof path, "experiments/Dense-DiT-%s-%s.yaml", sizes[i], flow ? "Flow" : "DDPM");
            struct config cfg;
            struct dit m;
            if (load(&cfg, path) < 0 || dit_create(&m, &cfg, 0) < 0) {
                CHECK(0, "cannot build %s: %s", path, err_message());
                continue;
            }
            int64_t total = params_count_total(&m.table);
            int64_t formula = dense_formula(cfg.hidden, cfg.depth, cfg.patch, cfg.channels, 256, cfg.num_classes);
            CHECK(total == formula, "%s: %lld parameters, formula %lld", path, (long long)total, (long long)formula);
            CHECK(fabs(total - paper[i]) / paper[i] < 0.01, "%s: %lld is not within 1%% of %.0f", path,
                  (long long)total, paper[i]);
            CHECK(params_count_activated(&m.table) == total, "%s: dense model with inactive parameters", path);
            dit_destroy(&m);
        }
}

static void tiny(struct config *cfg)
{
    config_defaults(cfg);
    const char *sets[] = {"model.hidden=32", "model.depth=2", "model.heads=4", "model.patch=4"};
    for (int i = 0; i < 4; i++) config_set(cfg, sets[i]);
}

static void check_shape(const struct dit *m, const char *name, int ndim, int64_t d0, int64_t d1)
{
    const struct param_entry *e = params_find(&m->table, name);
    CHECK(e != NULL, "no tensor '%s'", name);
    if (!e) return;
    CHECK(e->ndim == ndim && e->shape[0] == d0 && (ndim < 2 || e->shape[1] == d1),
          "'%s' has shape [%lld, %lld] (ndim %d)", name, (long long)e->shape[0],
          (long long)(e->ndim > 1 ? e->shape[1] : 0), e->ndim);
}

static void test_names_and_init(void)
{
    struct config cfg;
    struct dit m;
    tiny(&cfg);
    CHECK(dit_create(&m, &cfg, 4) == 0, "dit_create: %s", err_message());
    check_shape(&m, "pos_embed", 3, 1, 49);
    check_shape(&m, "x_embedder.proj.weight", 4, 32, 1);
    check_shape(&m, "t_embedder.mlp.0.weight", 2, 32, 256);
    check_shape(&m, "y_embedder.embedding_table.weight", 2, 11, 32);
    check_shape(&m, "blocks.1.attn.qkv.weight", 2, 96, 32);
    check_shape(&m, "blocks.1.mlp.fc1.weight", 2, 128, 32);
    check_shape(&m, "blocks.0.adaLN_modulation.1.weight", 2, 192, 32);
    check_shape(&m, "final_layer.linear.weight", 2, 32, 32);   // p*p*C_out = 16*2
    real *w = calloc(m.table.total, sizeof(real));
    params_init(&m.table, w, 3);
    for (int i = 0; i < m.table.n; i++) {
        const struct param_entry *e = &m.table.entries[i];
        const real *x = w + e->offset;
        double sum = 0, sumsq = 0, max = 0;
        for (size_t k = 0; k < e->count; k++) {
            sum += x[k];
            sumsq += x[k] * x[k];
            max = fmax(max, fabs(x[k]));
        }
        double std = sqrt(sumsq / e->count);
        int zero_expected = strstr(e->name, "adaLN") || strstr(e->name, "final_layer") || strstr(e->name, ".bias");
        if (zero_expected) CHECK(max == 0, "'%s' is not zero-initialised", e->name);
        if (e->init == INIT_XAVIER) {
            double bound = sqrt(6.0 / (double)(e->count / e->shape[0] + e->shape[0]));
            CHECK(max <= bound && max > 0.9 * bound, "'%s': max %.4g, xavier bound %.4g", e->name, max, bound);
        }
        if (e->init == INIT_NORMAL && e->count > 1000)
            CHECK(fabs(std - 0.02) < 0.002, "'%s': std %.4g, expected 0.02", e->name, std);
    }
    free(w);
    dit_destroy(&m);
}

// At step 0 the output is exactly zero and only final_layer.linear receives gradient.
static void test_step_zero(void)
{
    struct config cfg;
    struct dit m;
    tiny(&cfg);
    dit_create(&m, &cfg, 3);
    real *w = calloc(m.table.total, sizeof(real)), *g = calloc(m.table.total, sizeof(real));
    params_init(&m.table, w, 5);
    dit_bind_weights(&m, w);
    dit_bind_grads(&m, g);
    struct rng r;
    rng_init(&r, 1, 0, RNG_TEST, 0);
    real x[3 * 28 * 28], t[3] = {10, 500, 990}, d_out[3 * 2 * 28 * 28];
    int labels[3] = {1, 10, 4};
    for (int i = 0; i < 3 * 28 * 28; i++) x[i] = (real)rng_normal(&r);
    for (int i = 0; i < 3 * 2 * 28 * 28; i++) d_out[i] = (real)rng_normal(&r);
    const real *out = dit_forward(&m, x, t, labels, 3);
    double max_out = 0;
    for (int i = 0; i < 3 * 2 * 28 * 28; i++) max_out = fmax(max_out, fabs(out[i]));
    CHECK(max_out == 0, "output at step 0 is not zero: %g", max_out);
    dit_backward(&m, d_out, 3);
    for (int i = 0; i < m.table.n; i++) {
        const struct param_entry *e = &m.table.entries[i];
        double max = 0;
        for (size_t k = 0; k < e->count; k++) max = fmax(max, fabs(g[e->offset + k]));
        if (strncmp(e->name, "final_layer.linear", 18) == 0) CHECK(max > 0, "'%s' got no gradient", e->name);
        else CHECK(max == 0, "'%s' got gradient %g at step 0", e->name, max);
    }
    free(w);
    free(g);
    dit_destroy(&m);
}

// What a resumed run requires of a checkpoint (model/checkpoint.h): its own run id and config, a
// step in [0, train.steps], and finite values; a NaN in the EMA weights is refused by name.
static void test_checkpoint_checks(void)
{
    struct config cfg;
    struct dit m;
    tiny(&cfg);
    dit_create(&m, &cfg, 1);
    size_t n = m.table.total;
    real *buffers = calloc(8 * n, sizeof(real));
    struct train_state s = {buffers, buffers + n, buffers + 2 * n, buffers + 3 * n, 3};
    struct train_state back = {buffers + 4 * n, buffers + 5 * n, buffers + 6 * n, buffers + 7 * n, 0};
    params_init(&m.table, s.weights, 5);
    memcpy(s.ema, s.weights, sizeof(real) * n);
    char text[16384], id[17], path[] = "/tmp/promoe_test_ckpt_XXXXXX";
    config_canonical(&cfg, text, sizeof text);
    config_run_id(&cfg, id);
    int fd = mkstemp(path);
    if (fd >= 0) close(fd);
    CHECK(checkpoint_save(path, &m.table, &s, text, id, NULL) == 0, "save: %s", err_message());
    struct checkpoint_expect own = {id, 3}, other = {"0123456789abcdef", 3}, short_run = {id, 2};
    CHECK(checkpoint_load_train(path, &m.table, &back, &own) == 0 && back.step == 3 &&
          memcmp(back.ema, s.ema, sizeof(real) * n) == 0, "own checkpoint: %s", err_message());
    CHECK(checkpoint_load_train(path, &m.table, &back, &other) < 0 && strstr(err_message(), "belongs to run"),
          "another run's checkpoint: %s", err_message());
    CHECK(checkpoint_load_train(path, &m.table, &back, &short_run) < 0 &&
          strstr(err_message(), "step '3' is not a whole number in [0, 2]"), "step beyond train.steps: %s", err_message());
    s.ema[7] = NAN;
    CHECK(checkpoint_save(path, &m.table, &s, text, id, NULL) == 0, "save: %s", err_message());
    CHECK(checkpoint_load_ema(path, &m.table, back.ema) < 0 && strstr(err_message(), "holds nan at element 7"),
          "NaN weights: %s", err_message());
    unlink(path);
    free(buffers);
    dit_destroy(&m);
}

int main(void)
{
    test_paper_counts();
    test_names_and_init();
    test_step_zero();
    test_checkpoint_checks();
    return test_summary("test_model");
}
