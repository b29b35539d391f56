// promoe's speed benchmark (`make bench`, tests/bench/run.sh): for each case, a training step
// (forward, backward, global norm, AdamW, EMA) on random data and a sampling step with
// classifier-free guidance (the sampler's rectified-flow schedule: a conditional and a null-label
// forward of the whole batch, guidance, an Euler update); prints images/s, model GFLOP/s, the BLIS
// rate measured on the blocks' own matrix products (the forward's for sampling; for training also
// the backward's input- and weight-gradient products) and our fraction of it, and peak resident memory.
// Model FLOPs of a forward: 2 x multiply-adds of every matrix product (linears with the tokens
// each one sees, attention's q k^T and p v); a training step counts 3 forwards (backward = 2x).
// Each case prints a line for people and a `bench impl=promoe key=value ...` line for run.sh.
// `--save DIR` writes each case's initial weights as DIR/<case>.safetensors (the PyTorch bench
// loads them, so both sides route the same tokens to the same experts). `--precision bf16` runs the
// model's products in bf16 (train.precision), and the per-product rates of gemm_bf16 (oneDNN).
// `--peak` prints the machine's fp32 FMA and bf16 dot-product peaks from a probe (peak.h);
// `--blis-arch` the BLIS_ARCH_TYPE our BLIS runs with, so PyTorch can be given the same kernels.
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "config/config.h"
#include "core/blas.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/rng.h"
#include "diffusion/rf.h"
#include "model/checkpoint.h"
#include "model/dit.h"
#include "nn/embed.h"
#include "optim/adamw.h"
#include "peak.h"

#define GEMM_MIN_SECONDS 0.2
#define CONFIG_TEXT_MAX (1 << 16)

struct bench_case {
    const char *id, *name;
    const char *overrides[16];
};

#define S2_SHAPE "model.hidden=384", "model.depth=12", "model.heads=6", "model.patch=2", "data.name=npy", \
    "data.path=x", "data.labels=y", "data.channels=4", "data.image_size=32", "data.num_classes=1000"
#define PROMOE_MOE "model.moe.experts=E14A1S1U1", "model.moe.router=prototype", "model.moe.conditional=true"

// The precision of the timed products (--precision): the model's and the per-product rates'.
static enum matmul_precision product_precision = MATMUL_FP32;

static const struct bench_case cases[] = {
    {"mini-dense", "mini dense (28x28x1 p4 D192 depth 6, batch 128)", {"train.batch_size=128", NULL}},
    {"mini-promoe", "mini ProMoE E14A1S1U1 (batch 128)", {"train.batch_size=128", PROMOE_MOE, NULL}},
    {"dit-s2", "DiT-S/2 dense (32x32x4, batch 32)", {"train.batch_size=32", S2_SHAPE, NULL}},
    {"promoe-s", "ProMoE-S E14A1S1U1 (32x32x4, batch 32)", {"train.batch_size=32", S2_SHAPE, PROMOE_MOE, NULL}},
    // a check that the bench runs (run.sh leaves it out unless BENCH_CASES names it)
    {"tiny", "tiny dense (28x28x1 p7 D64 depth 2, batch 8)",
     {"train.batch_size=8", "model.hidden=64", "model.depth=2", "model.heads=2", "model.patch=7", NULL}},
};
enum { N_CASES = sizeof cases / sizeof *cases };

// Forward FLOPs for B samples (activated experts: each routed token passes k routed experts and the
// shared ones; unconditional tokens go to the unconditional expert instead, the same cost).
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

// One of the blocks' matrix products C[m,n] = op(A)[m,k] op(B)[k,n]: `parallel` > 0 runs that many
// independent single-threaded products spread over the threads (attention heads, experts), as the
// model does; 0 runs one product on all threads. flops = its share of a forward.
struct gemm_shape {
    const char *name;
    int trans_a, trans_b, m, n, k, parallel;
    double flops;
};

static void gemm_shape_run(const struct gemm_shape *g, const real *a, const real *b, real *c)
{
    int lda = g->trans_a ? g->m : g->k, ldb = g->trans_b ? g->k : g->n;
    size_t nc = (size_t)g->m * g->n;
    if (!g->parallel) {
        gemm_as(product_precision, g->trans_a, g->trans_b, g->m, g->n, g->k, 1, a, lda, b, ldb, 0, c, g->n);
        return;
    }
#pragma omp parallel for schedule(static)
    for (int i = 0; i < g->parallel; i++)
        gemm_serial_as(product_precision, g->trans_a, g->trans_b, g->m, g->n, g->k, 1, a, lda, b, ldb, 0,
                    c + (size_t)omp_get_thread_num() * nc, g->n);
}

// The backward's two products of a forward C = A op(B) (A [m, k] untransposed), as the model runs
// them: which = 0 gives dA [m, k] = dC op(B)^T (a linear's input gradient), 1 gives dB = the weight
// gradient, dC^T A ([n, k], op(B) = B^T) or A^T dC ([k, n]); each has the forward's FLOPs.
static struct gemm_shape backward_shape(const struct gemm_shape *f, int which)
{
    struct gemm_shape g = *f;
    if (which == 0) {
        g.trans_a = NO_TRANS;
        g.trans_b = f->trans_b ? NO_TRANS : TRANS;
        g.m = f->m, g.n = f->k, g.k = f->n;
    } else if (f->trans_b) {
        g.trans_a = TRANS, g.trans_b = NO_TRANS;
        g.m = f->n, g.n = f->k, g.k = f->m;
    } else {
        g.trans_a = TRANS, g.trans_b = NO_TRANS;
        g.m = f->k, g.n = f->n, g.k = f->m;
    }
    return g;
}

static double gemm_shape_rate(const struct gemm_shape *g)
{
    int copies = g->parallel ? omp_get_max_threads() : 1, count = g->parallel ? g->parallel : 1, reps = 0;
    size_t na = (size_t)g->m * g->k, nb = (size_t)g->n * g->k, nc = (size_t)g->m * g->n;
    real *a = malloc(sizeof(real) * na), *b = malloc(sizeof(real) * nb), *c = calloc(nc * copies, sizeof(real));
    for (size_t i = 0; i < na; i++) a[i] = (real)((i % 7) * 0.01);
    for (size_t i = 0; i < nb; i++) b[i] = (real)((i % 5) * 0.01);
    gemm_shape_run(g, a, b, c);   // warm-up
    double start = clock_seconds(), elapsed;
    do {
        gemm_shape_run(g, a, b, c);
        reps++;
        elapsed = clock_seconds() - start;
    } while (elapsed < GEMM_MIN_SECONDS);
    free(a); free(b); free(c);
    return 2.0 * g->m * g->n * g->k * count * reps / elapsed / 1e9;
}

// The distinct products of the model's blocks with their forward FLOPs (routed experts: the
// batch's tokens spread evenly over the routed experts).
static int block_shapes(const struct dit *m, int B, struct gemm_shape *out)
{
    const struct dit_shape *s = &m->shape;
    int T = s->tokens, D = s->hidden, N = B * T, hd = D / s->heads, n = 0, dense = 0, moe = 0;
    for (int i = 0; i < s->depth; i++) m->moe[i] ? moe++ : dense++;
    double depth = s->depth, attn = 2.0 * T * T * hd * B * s->heads;
    out[n++] = (struct gemm_shape){"qkv", NO_TRANS, TRANS, N, 3 * D, D, 0, depth * 2.0 * N * 3 * D * D};
    out[n++] = (struct gemm_shape){"proj", NO_TRANS, TRANS, N, D, D, 0, depth * 2.0 * N * D * D};
    out[n++] = (struct gemm_shape){"attn-qk", NO_TRANS, TRANS, T, T, hd, B * s->heads, depth * attn};
    out[n++] = (struct gemm_shape){"attn-pv", NO_TRANS, NO_TRANS, T, hd, T, B * s->heads, depth * attn};
    if (dense) {
        int F = s->mlp_hidden;
        out[n++] = (struct gemm_shape){"fc1", NO_TRANS, TRANS, N, F, D, 0, dense * 2.0 * N * F * D};
        out[n++] = (struct gemm_shape){"fc2", NO_TRANS, TRANS, N, D, F, 0, dense * 2.0 * N * D * F};
    }
    for (int i = 0; moe && i < s->depth; i++) {
        if (!m->moe[i]) continue;
        const struct moe_spec *e = &m->moe[i]->spec;
        int h = e->hidden, per_expert = N * e->active / e->routed;
        double shared = (double)moe * e->shared, routed = (double)moe * e->active;
        out[n++] = (struct gemm_shape){"shared-up", NO_TRANS, TRANS, N, h, D, 0, shared * 2.0 * N * h * D};
        out[n++] = (struct gemm_shape){"shared-down", NO_TRANS, TRANS, N, D, h, 0, shared * 2.0 * N * D * h};
        out[n++] = (struct gemm_shape){"expert-up", NO_TRANS, TRANS, per_expert, h, D, e->routed,
                                       routed * 2.0 * N * h * D};
        out[n++] = (struct gemm_shape){"expert-down", NO_TRANS, TRANS, per_expert, D, h, e->routed,
                                       routed * 2.0 * N * D * h};
        break;
    }
    return n;
}

// The rates BLIS reaches on the blocks' products, weighted by their FLOPs: total FLOPs over the time
// BLIS alone would take for them. rate[0]: the forward's products (the sampling step's); rate[1]:
// the training step's, forward plus the backward's input- and weight-gradient products. Prints
// each product's rate and share.
static void blis_rates(const struct dit *m, int B, double rate[2])
{
    static const char *const pass[3] = {"fwd", "d-in", "d-weight"};
    struct gemm_shape shapes[16];
    int n = block_shapes(m, B, shapes);
    double flops = 0, seconds[2] = {0, 0};
    for (int i = 0; i < n; i++) flops += shapes[i].flops;
    for (int i = 0; i < n; i++)
        for (int p = 0; p < 3; p++) {
            struct gemm_shape g = p == 0 ? shapes[i] : backward_shape(&shapes[i], p - 1);
            double r = gemm_shape_rate(&g);
            printf("  %-12s %-8s %s %6.1f GFLOP/s on %c%c m %5d n %5d k %5d, %4.1f%% of a forward's FLOPs",
                   g.name, pass[p], product_precision == MATMUL_BF16 ? "bf16" : "BLIS", r, g.trans_a ? 'T' : 'N', g.trans_b ? 'T' : 'N', g.m, g.n, g.k,
                   100 * g.flops / flops);
            if (g.parallel) printf(" (%d independent products, one thread each)", g.parallel);
            printf("\n");
            if (p == 0) seconds[0] += g.flops / (r * 1e9);
            seconds[1] += g.flops / (r * 1e9);
        }
    rate[0] = flops / seconds[0] / 1e9;
    rate[1] = 3 * flops / seconds[1] / 1e9;
}

static double peak_rss_mb(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return u.ru_maxrss / 1024.0;   // kilobytes on Linux
}

struct buffers {
    real *w, *g, *am, *av, *ema, *x0, *xt, *target, *t, *d_out, *guided;
    int *labels, *class_labels, *null_labels;   // training (with null), sampling's two passes
};

static int save_weights(const char *dir, const struct bench_case *bc, const struct config *cfg,
                        const struct dit *m, const struct buffers *b)
{
    char path[4096], *text = malloc(CONFIG_TEXT_MAX);
    if (!text) return err("out of memory");
    snprintf(path, sizeof path, "%s/%s.safetensors", dir, bc->id);
    config_canonical(cfg, text, CONFIG_TEXT_MAX);
    struct train_state st = {.weights = b->w, .ema = b->w, .adam_m = b->am, .adam_v = b->av, .step = 0};
    int rc = checkpoint_save(path, &m->table, &st, text, bc->id, NULL);
    free(text);
    return rc;
}

// One training step (the step index picks the batch's noise and AdamW's bias correction).
static void train_step(struct dit *m, struct buffers *b, int B, size_t image, int step)
{
    size_t total = m->table.total;
    struct adamw_hparams h = {1e-4, 0.9, 0.999, 1e-8, 0};
    m->training = 1;
    m->update_buffers = 1;
    rf_make_batch(b->xt, b->target, b->t, b->x0, B, (int)image, 1, step, 0, 1);
    const real *out = dit_forward(m, b->xt, b->t, b->labels, B);
    rf_loss(b->d_out, out, b->target, B, m->shape.channels, m->shape.out_channels,
            m->shape.size * m->shape.size);
    memset(b->g, 0, sizeof(real) * total);
    dit_backward(m, b->d_out, B);
    grad_global_norm(b->g, total);
    adamw_update(&m->table, b->w, b->g, b->am, b->av, &h, step + 1);
    ema_update(&m->table, b->ema, b->w, 0.9999);
}

static double train_seconds(struct dit *m, struct buffers *b, int B, size_t image, int steps)
{
    double start = 0;
    for (int step = 0; step <= steps; step++) {
        if (step == 1) start = clock_seconds();   // step 0 warms up caches and page tables
        train_step(m, b, B, image, step);
    }
    return (clock_seconds() - start) / steps;
}

// One Euler step of guided rectified-flow sampling for B images (as src/diffusion/sampler.c).
static double sample_seconds(struct dit *m, struct buffers *b, int B, size_t image, int steps)
{
    size_t out_image = (size_t)m->shape.out_channels * m->shape.size * m->shape.size;
    double start = 0, scale = 1.5, dt = -1.0 / 50;
    m->training = 0;
    for (int step = 0; step <= steps; step++) {
        if (step == 1) start = clock_seconds();
        const real *cond = dit_forward(m, b->xt, b->t, b->class_labels, B);
        memcpy(b->guided, cond, sizeof(real) * B * out_image);
        const real *uncond = dit_forward(m, b->xt, b->t, b->null_labels, B);
        for (int i = 0; i < B; i++)
            for (size_t k = 0; k < image; k++) {
                size_t o = i * out_image + k;
                real v = uncond[o] + (real)scale * (b->guided[o] - uncond[o]);
                b->xt[i * image + k] += (real)dt * v;
            }
    }
    return (clock_seconds() - start) / steps;
}

// A case's model, its weights, optimizer state and batch.
struct bench_model {
    struct config cfg;
    struct dit m;
    struct buffers b;
    int B;
    size_t image;
};

static void model_free(struct bench_model *bm)
{
    struct buffers *b = &bm->b;
    free(b->w); free(b->g); free(b->am); free(b->av); free(b->ema); free(b->x0); free(b->xt); free(b->target);
    free(b->t); free(b->d_out); free(b->guided); free(b->labels); free(b->class_labels); free(b->null_labels);
    dit_destroy(&bm->m);
}

static int model_setup(struct bench_model *bm, const struct bench_case *bc)
{
    struct config *cfg = &bm->cfg;
    config_defaults(cfg);
    for (int i = 0; bc->overrides[i]; i++)
        if (config_set(cfg, bc->overrides[i]) < 0) return -1;
    cfg->precision = product_precision == MATMUL_BF16 ? PRECISION_BF16 : PRECISION_FP32;
    if (config_validate(cfg) < 0) return -1;
    struct dit *m = &bm->m;
    int B = bm->B = cfg->batch_size;
    if (dit_create(m, cfg, B) < 0) return -1;
    size_t total = m->table.total, image = bm->image = (size_t)m->shape.channels * m->shape.size * m->shape.size;
    size_t out_n = (size_t)B * m->shape.out_channels * m->shape.size * m->shape.size;
    bm->b = (struct buffers){
        .w = calloc(total, sizeof(real)), .g = calloc(total, sizeof(real)), .am = calloc(total, sizeof(real)),
        .av = calloc(total, sizeof(real)), .ema = calloc(total, sizeof(real)), .x0 = malloc(sizeof(real) * B * image),
        .xt = malloc(sizeof(real) * B * image), .target = malloc(sizeof(real) * B * image),
        .t = malloc(sizeof(real) * B), .d_out = malloc(sizeof(real) * out_n), .guided = malloc(sizeof(real) * out_n),
        .labels = malloc(sizeof(int) * B), .class_labels = malloc(sizeof(int) * B),
        .null_labels = malloc(sizeof(int) * B)};
    struct buffers *b = &bm->b;
    params_init(&m->table, b->w, 0);
    memcpy(b->ema, b->w, sizeof(real) * total);
    dit_bind_weights(m, b->w);
    dit_bind_grads(m, b->g);
    struct rng r;
    rng_init(&r, 1, 0, RNG_TEST, 0);
    for (size_t i = 0; i < B * image; i++) b->x0[i] = (real)rng_normal(&r);
    for (int i = 0; i < B; i++) {
        b->labels[i] = i % 11 == 10 ? cfg->num_classes : i % cfg->num_classes;   // ~10% label dropout
        b->class_labels[i] = i % cfg->num_classes;
        b->null_labels[i] = cfg->num_classes;
    }
    return 0;
}

static int run_case(const struct bench_case *bc, int steps, const char *save_dir)
{
    struct bench_model bm;
    if (model_setup(&bm, bc) < 0) return -1;
    struct dit *m = &bm.m;
    struct buffers *b = &bm.b;
    int B = bm.B;
    int rc = save_dir ? save_weights(save_dir, bc, &bm.cfg, m, b) : 0;
    if (!rc) {
        double train_s = train_seconds(m, b, B, bm.image, steps);
        double sample_s = sample_seconds(m, b, B, bm.image, steps);
        double flops = forward_flops(m, B), train_gf = 3 * flops / train_s / 1e9;
        double sample_gf = 2 * flops / sample_s / 1e9, rss = peak_rss_mb();
        double blis[2];
        blis_rates(m, B, blis);
        int threads = omp_get_max_threads();
        printf("%-44s train %7.1f img/s %6.1f GFLOP/s (%3.0f%% of BLIS %5.1f)  sample+cfg %7.1f img/s "
               "%6.1f GFLOP/s (%3.0f%% of BLIS %5.1f)  peak RSS %.0f MB\n", bc->name, B / train_s, train_gf,
               100 * train_gf / blis[1], blis[1], B / sample_s, sample_gf, 100 * sample_gf / blis[0], blis[0],
               rss);
        printf("bench impl=promoe case=%s precision=%s threads=%d batch=%d forward_gflop=%.4f train_img_s=%.3f "
               "train_gflops=%.3f sample_img_s=%.3f sample_gflops=%.3f blis_gflops=%.3f blis_train_gflops=%.3f "
               "train_blis_frac=%.4f sample_blis_frac=%.4f rss_mb=%.1f\n", bc->id,
               product_precision == MATMUL_BF16 ? "bf16" : "fp32", threads, B, flops / 1e9,
               B / train_s, train_gf, B / sample_s, sample_gf, blis[0], blis[1], train_gf / blis[1],
               sample_gf / blis[0], rss);
        fflush(stdout);
    }
    model_free(&bm);
    return rc;
}

static int compare_doubles(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

// --pair DENSE,MOE: the two models in one process, their training steps interleaved (dense, MoE,
// dense, MoE, ...) for `rounds` rounds after a warm-up step each, so that both meet the same state
// of the machine; each round gives the ratio of its MoE step to its dense step. On a shared or
// virtual machine the speed drifts by 10-20% between runs minutes apart, which a ratio of two
// processes' averages takes for a difference between the models; the median of paired ratios does not.
static int run_pair(const struct bench_case *dense, const struct bench_case *moe, int rounds)
{
    struct bench_model d, e;
    if (model_setup(&d, dense) < 0) return -1;
    if (model_setup(&e, moe) < 0) {
        model_free(&d);
        return -1;
    }
    double ratio[rounds], dense_sum = 0, moe_sum = 0;
    train_step(&d.m, &d.b, d.B, d.image, 0);
    train_step(&e.m, &e.b, e.B, e.image, 0);
    for (int r = 0; r < rounds; r++) {
        double t0 = clock_seconds();
        train_step(&d.m, &d.b, d.B, d.image, r + 1);
        double t1 = clock_seconds();
        train_step(&e.m, &e.b, e.B, e.image, r + 1);
        double t2 = clock_seconds();
        ratio[r] = (t2 - t1) / (t1 - t0);
        dense_sum += t1 - t0;
        moe_sum += t2 - t1;
    }
    qsort(ratio, rounds, sizeof *ratio, compare_doubles);
    double median = rounds % 2 ? ratio[rounds / 2] : 0.5 * (ratio[rounds / 2 - 1] + ratio[rounds / 2]);
    const char *precision = product_precision == MATMUL_BF16 ? "bf16" : "fp32";
    printf("%s step / %s step, %s, %d interleaved rounds: median %.3fx (min %.3fx, max %.3fx); mean steps "
           "%.3f s / %.3f s\n", moe->id, dense->id, precision, rounds, median, ratio[0], ratio[rounds - 1],
           moe_sum / rounds, dense_sum / rounds);
    printf("bench impl=pair dense=%s moe=%s precision=%s threads=%d rounds=%d ratio_median=%.4f ratio_min=%.4f "
           "ratio_max=%.4f dense_s=%.4f moe_s=%.4f\n", dense->id, moe->id, precision, omp_get_max_threads(),
           rounds, median, ratio[0], ratio[rounds - 1], dense_sum / rounds, moe_sum / rounds);
    fflush(stdout);
    model_free(&e);
    model_free(&d);
    return 0;
}

static const struct bench_case *case_named(const char *id)
{
    for (int c = 0; c < N_CASES; c++)
        if (!strcmp(cases[c].id, id)) return &cases[c];
    return NULL;
}

static const char *const usage =
    "usage: bench [--steps N] [--case ID] [--save DIR] [--precision fp32|bf16] [--list] [--peak] [--blis-arch]\n"
    "       bench --pair DENSE,MOE [--rounds N] [--precision fp32|bf16]\n"
    "  cases: mini-dense mini-promoe dit-s2 promoe-s tiny (default: all, in one process; run.sh runs one\n"
    "  per process so that the peak RSS is the case's own); --pair interleaves the two cases' training\n"
    "  steps for N rounds (default 7) and prints the median ratio of the MoE step to the dense step";

// --peak: one line for people, one `bench impl=probe` line for run.sh.
static int print_peaks(void)
{
    double fma = peak_gflops(0), bf16 = peak_gflops(1);
    printf("probe: %d threads, fp32 FMA peak %.1f GFLOP/s, bf16 dot-product peak %.1f GFLOP/s%s\n",
           omp_get_max_threads(), fma, bf16, bf16 > 0 ? "" : " (no AVX512-BF16)");
    printf("bench impl=probe threads=%d fma_peak_gflops=%.3f bf16_peak_gflops=%.3f\n", omp_get_max_threads(),
           fma, bf16);
    return 0;
}

static int pair_main(const char *pair, int rounds)
{
    char dense_id[64];
    const char *comma = strchr(pair, ',');
    const struct bench_case *dense = NULL, *moe = comma ? case_named(comma + 1) : NULL;
    if (comma && (size_t)(comma - pair) < sizeof dense_id) {
        memcpy(dense_id, pair, comma - pair);
        dense_id[comma - pair] = 0;
        dense = case_named(dense_id);
    }
    if (!dense || !moe || rounds < 1 || rounds > 1000) {
        fprintf(stderr, "bench: --pair wants two case ids as DENSE,MOE (bench --list) and --rounds 1 to 1000, "
                        "got '%s' and %d\n", pair, rounds);
        return 129;
    }
    if (run_pair(dense, moe, rounds) < 0) {
        fprintf(stderr, "bench: --pair %s: %s\n", pair, err_message());
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    int steps = 5, rounds = 7;
    const char *only = NULL, *save_dir = NULL, *pair = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--case") && i + 1 < argc) only = argv[++i];
        else if (!strcmp(argv[i], "--save") && i + 1 < argc) save_dir = argv[++i];
        else if (!strcmp(argv[i], "--pair") && i + 1 < argc) pair = argv[++i];
        else if (!strcmp(argv[i], "--rounds") && i + 1 < argc) rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--precision") && i + 1 < argc && !strcmp(argv[i + 1], "fp32")) i++;
        else if (!strcmp(argv[i], "--precision") && i + 1 < argc && !strcmp(argv[i + 1], "bf16"))
            i++, product_precision = MATMUL_BF16;
        else if (!strcmp(argv[i], "--peak")) return print_peaks();
        else if (!strcmp(argv[i], "--blis-arch")) {
            printf("%s\n", getenv("BLIS_ARCH_TYPE") ? getenv("BLIS_ARCH_TYPE") : "");
            return 0;
        }
        else if (!strcmp(argv[i], "--list")) {
            for (int c = 0; c < N_CASES; c++) printf("%s\t%s\n", cases[c].id, cases[c].name);
            return 0;
        } else {
            fprintf(stderr, "%s\n", usage);
            return 129;
        }
    }
    if (steps < 1) steps = 1;
    blas_set_threads(omp_get_max_threads());
    if (blas_reserve_precision(product_precision, omp_get_max_threads()) < 0) {
        fprintf(stderr, "bench: --precision bf16: %s\n", err_message());
        return 1;
    }
    if (pair) return pair_main(pair, rounds);
    printf("promoe bench: %s products, %d threads, %d timed steps per case; FLOPs = 2 x multiply-adds of every matrix "
           "product, training step = 3 forwards, sampling step = 2 forwards (CFG)\n",
           product_precision == MATMUL_BF16 ? "bf16" : "fp32", omp_get_max_threads(), steps);
    int found = 0;
    for (int i = 0; i < N_CASES; i++) {
        if (only && strcmp(only, cases[i].id)) continue;
        found = 1;
        if (run_case(&cases[i], steps, save_dir) < 0) {
            fprintf(stderr, "bench: %s: %s\n", cases[i].name, err_message());
            return 1;
        }
    }
    if (!found) {
        fprintf(stderr, "bench: no case '%s' (bench --list)\n", only);
        return 129;
    }
    return 0;
}
