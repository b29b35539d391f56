// promoe's speed benchmark (`make bench`): for each case, a training step (forward, backward,
// global norm, AdamW, EMA) on random data and a sampling step with classifier-free guidance; prints
// images/s and model GFLOP/s, and the BLIS rate measured on the block's own matrix shapes.
// Model FLOPs of a forward: 2 x multiply-adds of every matrix product (linears with the tokens
// each one sees, attention's q k^T and p v); a training step counts 3 forwards (backward = 2x).
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/blas.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/rng.h"
#include "diffusion/rf.h"
#include "model/dit.h"
#include "nn/embed.h"
#include "train/adamw.h"

struct bench_case {
    const char *name;
    const char *overrides[16];
};

static const struct bench_case cases[] = {
    {"mini dense (28x28x1 p4 D192 depth 6, batch 128)", {"train.batch_size=128", NULL}},
    {"mini ProMoE E14A1S1U1 (batch 128)", {"train.batch_size=128", "model.moe.experts=E14A1S1U1",
                                           "model.moe.router=prototype", "model.moe.conditional=true", NULL}},
    {"DiT-S/2 dense (32x32x4, batch 32)", {"train.batch_size=32", "model.hidden=384", "model.depth=12",
                                           "model.patch=2", "data.name=npy", "data.path=x", "data.labels=y",
                                           "data.channels=4", "data.image_size=32", "data.num_classes=1000", NULL}},
    {"ProMoE-S E14A1S1U1 (32x32x4, batch 32)", {"train.batch_size=32", "model.hidden=384", "model.depth=12",
                                           "model.patch=2", "data.name=npy", "data.path=x", "data.labels=y",
                                           "data.channels=4", "data.image_size=32", "data.num_classes=1000",
                                           "model.moe.experts=E14A1S1U1", "model.moe.router=prototype",
                                           "model.moe.conditional=true", NULL}},
};

// Forward FLOPs for B samples (activated experts: each routed token passes k routed experts and the
// shared ones; unconditional tokens (10%) are counted as routed, which is the same cost).
static double forward_flops(const struct dit *m, int B)
{
    const struct dit_shape *s = &m->shape;
    double N = (double)B * s->tokens, D = s->hidden, T = s->tokens;
    double f = 2 * N * (s->channels * s->patch * s->patch) * D;          // patch embedding
    f += 2 * B * (TIMESTEP_FREQ_DIM * D + D * D);                          // timestep MLP
    for (int i = 0; i < s->depth; i++) {
        f += 2 * B * D * 6 * D;                                            // adaLN
        f += 2 * N * D * 3 * D + 2 * N * D * D;                            // qkv, proj
        f += 2 * 2 * B * T * T * D;                                        // q k^T, p v (all heads)
        if (m->moe[i]) {
            const struct moe_spec *e = &m->moe[i]->spec;
            f += 2 * 2 * N * D * e->hidden * (e->active + e->shared);      // experts
            f += 2 * N * D * e->routed;                                    // router scores
        } else {
            f += 2 * 2 * N * D * s->mlp_hidden;
        }
    }
    f += 2 * B * D * 2 * D + 2 * N * D * s->patch * s->patch * s->out_channels;   // final layer
    return f;
}

// GFLOP/s of BLIS on C[m,n] = A[m,k] B[n,k]^T (the linear layers' shape).
static double gemm_rate(int m, int n, int k)
{
    real *a = calloc((size_t)m * k, sizeof(real)), *b = calloc((size_t)n * k, sizeof(real)),
         *c = calloc((size_t)m * n, sizeof(real));
    for (size_t i = 0; i < (size_t)m * k; i++) a[i] = (real)((i % 7) * 0.01);
    for (size_t i = 0; i < (size_t)n * k; i++) b[i] = (real)((i % 5) * 0.01);
    gemm(NO_TRANS, TRANS, m, n, k, 1, a, k, b, k, 0, c, n);
    int reps = 0;
    double start = clock_seconds(), elapsed;
    do {
        gemm(NO_TRANS, TRANS, m, n, k, 1, a, k, b, k, 0, c, n);
        reps++;
        elapsed = clock_seconds() - start;
    } while (elapsed < 0.3);
    free(a); free(b); free(c);
    return 2.0 * m * n * k * reps / elapsed / 1e9;
}

static int run_case(const struct bench_case *bc, int steps)
{
    struct config cfg;
    config_defaults(&cfg);
    for (int i = 0; bc->overrides[i]; i++)
        if (config_set(&cfg, bc->overrides[i]) < 0) return -1;
    if (config_validate(&cfg) < 0) return -1;
    struct dit m;
    int B = cfg.batch_size;
    if (dit_create(&m, &cfg, B) < 0) return -1;
    size_t total = m.table.total, image = (size_t)m.shape.channels * m.shape.size * m.shape.size;
    size_t out_n = (size_t)B * m.shape.out_channels * m.shape.size * m.shape.size;
    real *w = calloc(total, sizeof(real)), *g = calloc(total, sizeof(real)), *am = calloc(total, sizeof(real)),
         *av = calloc(total, sizeof(real)), *ema = calloc(total, sizeof(real));
    real *x0 = malloc(sizeof(real) * B * image), *xt = malloc(sizeof(real) * B * image),
         *target = malloc(sizeof(real) * B * image), *t = malloc(sizeof(real) * B), *d_out = malloc(sizeof(real) * out_n);
    int *labels = malloc(sizeof(int) * B);
    params_init(&m.table, w, 0);
    memcpy(ema, w, sizeof(real) * total);
    dit_bind_weights(&m, w);
    dit_bind_grads(&m, g);
    struct rng r;
    rng_init(&r, 1, 0, RNG_TEST, 0);
    for (size_t i = 0; i < B * image; i++) x0[i] = (real)rng_normal(&r);
    for (int b = 0; b < B; b++) labels[b] = b % 11 == 10 ? cfg.num_classes : b % cfg.num_classes;
    struct adamw_hparams h = {1e-4, 0.9, 0.999, 1e-8, 0};
    double start = 0;
    m.training = 1;
    m.update_buffers = 1;
    for (int step = 0; step <= steps; step++) {
        if (step == 1) start = clock_seconds();   // step 0 warms up caches and page tables
        rf_make_batch(xt, target, t, x0, B, (int)image, 1, step, 0, 1);
        const real *out = dit_forward(&m, xt, t, labels, B);
        rf_loss(d_out, out, target, B, m.shape.channels, m.shape.out_channels, m.shape.size * m.shape.size);
        memset(g, 0, sizeof(real) * total);
        dit_backward(&m, d_out, B);
        grad_global_norm(g, total);
        adamw_update(&m.table, w, g, am, av, &h, step + 1);
        ema_update(&m.table, ema, w, 0.9999);
    }
    double train_s = (clock_seconds() - start) / steps;
    // Sampling step with guidance: the conditional and the null-label pass.
    m.training = 0;
    int half = B / 2;
    start = clock_seconds();
    for (int rep = 0; rep < steps; rep++) {
        dit_forward(&m, xt, t, labels, half);
        dit_forward(&m, xt, t, labels, half);
    }
    double sample_s = (clock_seconds() - start) / steps;
    double flops = forward_flops(&m, B);
    const struct dit_shape *s = &m.shape;
    double blis = gemm_rate(B * s->tokens, 3 * s->hidden, s->hidden);
    printf("%-44s train %7.1f img/s %6.1f GFLOP/s (%3.0f%% of BLIS %5.1f on the qkv shape)  "
           "sample+cfg %7.1f img/s\n", bc->name, B / train_s, 3 * flops / train_s / 1e9,
           100 * 3 * flops / train_s / 1e9 / blis, blis, half / sample_s);
    free(w); free(g); free(am); free(av); free(ema); free(x0); free(xt); free(target); free(t);
    free(d_out); free(labels);
    dit_destroy(&m);
    return 0;
}

int main(int argc, char **argv)
{
    int steps = argc > 1 ? atoi(argv[1]) : 5;
    blas_set_threads(omp_get_max_threads());
    printf("promoe bench: %d threads, %d timed steps per case; FLOPs = 2 x multiply-adds of every matrix "
           "product, training step = 3 forwards\n", omp_get_max_threads(), steps);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        if (run_case(&cases[i], steps) < 0) {
            fprintf(stderr, "bench: %s: %s\n", cases[i].name, err_message());
            return 1;
        }
    return 0;
}
