// Sampler passes (sample.batch): images go through the sampler in passes of sample.batch, each the
// conditional and the null pass separately for rectified flow (one doubled forward for DDPM).
// Samples of routers whose inference is per token or per sample are bit-identical whatever the
// pass; DiffMoE's, whose inference ranks tokens over the forward batch, change with it, so its
// evaluations carry the pass in the sampler's name. A pass larger than the model holds is refused
// with a message naming sample.batch.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "config/config.h"
#include "core/error.h"
#include "core/rng.h"
#include "diffusion/sampler.h"
#include "eval/evaluate.h"
#include "model/dit.h"
#include "nn/params.h"

enum { N_IMAGES = 6, MAX_BATCH = 8, SIZE = 28, STEPS = 3 };
#define WEIGHT_STD 0.2   // every tensor random, so that no path is zero as at initialisation

// A 2-block model on Fashion-MNIST's 28x28 images (49 tokens) with the given MoE settings.
static int tiny(struct config *cfg, const char *experts, const char *router, const char *objective)
{
    config_defaults(cfg);
    char e[64], r[64], o[64];
    snprintf(e, sizeof e, "model.moe.experts=%s", experts);
    snprintf(r, sizeof r, "model.moe.router=%s", router);
    snprintf(o, sizeof o, "objective=%s", objective);
    const char *sets[] = {"model.hidden=16", "model.depth=2", "model.heads=2", "model.patch=4", e, r,
                          "model.moe.conditional=false", "model.moe.activation=softmax", o};
    for (size_t i = 0; i < sizeof sets / sizeof *sets; i++)
        if (config_set(cfg, sets[i]) < 0) {
            CHECK(0, "%s: %s", sets[i], err_message());
            return -1;
        }
    if (config_validate(cfg) < 0) {
        CHECK(0, "%s %s %s: %s", experts, router, objective, err_message());
        return -1;
    }
    return 0;
}

// out [N_IMAGES, 1, SIZE, SIZE]: samples at guidance 1.5 in passes of `pass` images.
static int sample_with_pass(struct config *cfg, int pass, real *out, int *failed)
{
    struct dit m;
    if (dit_create(&m, cfg, MAX_BATCH) < 0) {
        CHECK(0, "dit_create: %s", err_message());
        return -1;
    }
    real *w = malloc(sizeof(real) * m.table.total);
    struct rng r;
    rng_init(&r, 11, 0, RNG_TEST, 0);
    for (size_t i = 0; i < m.table.total; i++) w[i] = (real)(rng_normal(&r) * WEIGHT_STD);
    // A trained Expert Race layer decides by its threshold; one never trained races the batch.
    for (int i = 0; i < m.table.n; i++)
        if (strstr(m.table.entries[i].name, "race_threshold_initialised")) w[m.table.entries[i].offset] = 1;
    dit_bind_weights(&m, w);
    m.training = 0;
    cfg->sample_batch = pass;
    struct sample_options o = {N_IMAGES, STEPS, 1.5, 0, 5, NULL};
    *failed = sample_images(&m, cfg, &o, out) < 0;
    free(w);
    dit_destroy(&m);
    return 0;
}

static double max_difference(const real *a, const real *b, size_t n)
{
    double d = 0;
    for (size_t i = 0; i < n; i++) d = fmax(d, fabs((double)a[i] - b[i]));
    return d;
}

static void check_router(const char *experts, const char *router, const char *objective, int dependent)
{
    struct config cfg;
    if (tiny(&cfg, experts, router, objective) < 0) return;
    size_t n = (size_t)N_IMAGES * SIZE * SIZE;
    real *whole = malloc(sizeof(real) * n), *pairs = malloc(sizeof(real) * n), *zero = malloc(sizeof(real) * n);
    int failed[3];
    sample_with_pass(&cfg, 4, whole, &failed[0]);   // passes of 4 and 2 images
    sample_with_pass(&cfg, 2, pairs, &failed[1]);
    sample_with_pass(&cfg, 0, zero, &failed[2]);    // 0: as many as the model holds
    CHECK(!failed[0] && !failed[1] && !failed[2], "%s/%s: sampling failed: %s", router, objective, err_message());
    double d = max_difference(whole, pairs, n);
    if (dependent) CHECK(d > 1e-3, "%s/%s: passes of 4 and 2 give the same samples (max diff %.3g)", router, objective, d);
    else CHECK(d == 0, "%s/%s: samples change with the pass (max diff %.3g)", router, objective, d);
    if (!dependent) CHECK(max_difference(whole, zero, n) == 0, "%s/%s: sample.batch 0 differs", router, objective);
    free(whole); free(pairs); free(zero);
}

// RF passes of up to 8 fit a model of 8; DDPM's doubled forward fits passes of up to 4.
static void test_pass_limits(void)
{
    struct config cfg;
    if (tiny(&cfg, "E4A1S0U0", "diffmoe", "rf") < 0) return;
    size_t n = (size_t)N_IMAGES * SIZE * SIZE;
    real *out = malloc(sizeof(real) * n);
    int failed;
    sample_with_pass(&cfg, 8, out, &failed);
    CHECK(!failed, "rf pass of 8 on a model of 8 refused: %s", err_message());
    sample_with_pass(&cfg, 9, out, &failed);
    CHECK(failed && strstr(err_message(), "sample.batch 9") && strstr(err_message(), "holds 8") &&
              !strstr(err_message(), "twin"),
          "rf pass of 9 on a model of 8: %s", failed ? err_message() : "accepted");
    CHECK(sample_forward_batch(&cfg, 9) == 9 && sample_check_batch(&cfg, 9) == 0, "rf forward of a pass of 9");
    tiny(&cfg, "E4A1S0U0", "diffmoe", "ddpm");
    sample_with_pass(&cfg, 4, out, &failed);
    CHECK(!failed, "ddpm pass of 4 (forward 8) on a model of 8 refused: %s", err_message());
    sample_with_pass(&cfg, 5, out, &failed);
    CHECK(failed && strstr(err_message(), "sample.batch 5") && strstr(err_message(), "runs 10") &&
              strstr(err_message(), "null-label twin"),
          "ddpm pass of 5 (forward 10) on a model of 8: %s", failed ? err_message() : "accepted");
    cfg.sample_batch = 0;
    CHECK(sample_check_batch(&cfg, 1) == 0, "sample.batch 0 needs no check");
    free(out);
}

// The sampler's name in `evals` for a model of MAX_BATCH with sample.batch `pass` at guidance `scale`.
static void expect_name(const char *experts, const char *router, const char *objective, int pass, double scale,
                        const char *expected)
{
    struct config cfg;
    struct dit m;
    char name[32];
    if (tiny(&cfg, experts, router, objective) < 0 || dit_create(&m, &cfg, MAX_BATCH) < 0) return;
    cfg.sample_batch = pass;
    eval_sampler_name(&m, &cfg, scale, name, sizeof name);
    CHECK(!strcmp(name, expected), "%s %s %s pass %d cfg %g: sampler '%s', expected '%s'", experts, router,
          objective, pass, scale, name, expected);
    dit_destroy(&m);
}

// The sampler's name carries the pass only where samples depend on it.
static void test_sampler_names(void)
{
    expect_name("E4A1S0U0", "diffmoe", "rf", 4, 1.5, "euler-pass4");
    expect_name("E4A1S0U0", "diffmoe", "rf", 0, 1.5, "euler-pass8");   // 0: what the model holds
    expect_name("E4A1S0U0", "diffmoe", "ddpm", 0, 1.5, "ddpm-pass4");  // guided: [x; x] in one forward
    expect_name("E4A1S0U0", "diffmoe", "ddpm", 0, 1.0, "ddpm-pass8");
    expect_name("E4A1S0U0", "token_choice", "rf", 4, 1.5, "euler");
    expect_name("", "token_choice", "ddpm", 4, 1.5, "ddpm");
}

int main(void)
{
    check_router("E4A1S0U0", "diffmoe", "rf", 1);
    check_router("E4A1S0U0", "diffmoe", "ddpm", 1);
    check_router("E4A1S0U0", "token_choice", "rf", 0);
    check_router("E4A1S0U0", "expert_choice", "ddpm", 0);
    check_router("E4A1S0U0", "expert_race", "rf", 0);
    check_router("", "token_choice", "rf", 0);
    test_pass_limits();
    test_sampler_names();
    return test_summary("test_sample_pass");
}
