// Finite-difference gradient checks in double precision: every layer's backward and the whole
// DiT, on random inputs and random weights (DiT's zero init would hide most paths). Loss is
// sum(out * R) for a random R; five-point central differences with step 1e-4 (truncation error
// O(h^4), so rounding dominates: about 1e-16 |loss| / h); error = |numeric - analytic| /
// max(|numeric|, |analytic|, 1e-3), limit 1e-5 (the floor keeps exactly-zero gradients, such as the
// key bias's, from turning rounding noise into a relative error of 1).
// Backward is run twice for parameters to confirm it accumulates.
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/error.h"
#include "core/rng.h"
#include "model/dit.h"
#include "nn/activation.h"
#include "nn/adaln.h"
#include "nn/attention.h"
#include "nn/embed.h"
#include "nn/linear.h"

#define FD_STEP 1e-4
#define FD_TOLERANCE 1e-5
#define FD_FLOOR 1e-3
#define MAX_CHECKS_PER_TENSOR 24

static struct rng test_rng;

static void fill_normal(real *x, size_t n, double std)
{
    for (size_t i = 0; i < n; i++) x[i] = rng_normal(&test_rng) * std;
}

static double dot(const real *a, const real *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

static double rel_error(double a, double b) { return fabs(a - b) / fmax(FD_FLOOR, fmax(fabs(a), fabs(b))); }

// A layer under test: forward computes out from the variables; loss = <out, R>.
typedef void (*forward_fn)(void *ctx);

struct fd_case {
    const char *name;
    forward_fn forward;
    void *ctx;
    real *out, *probe;   // probe = R
    size_t out_n;
    double (*extra_loss)(void *ctx);   // added to <out, R> when set (MoE auxiliary losses)
};

static double loss_of(struct fd_case *c)
{
    c->forward(c->ctx);
    return dot(c->out, c->probe, c->out_n) + (c->extra_loss ? c->extra_loss(c->ctx) : 0);
}

// Compares analytic gradient grad [n] of variable x [n] against central differences.
static void check_variable(struct fd_case *c, const char *var, real *x, const real *grad, size_t n)
{
    double worst = 0, worst_numeric = 0, worst_analytic = 0;
    size_t stride = n > MAX_CHECKS_PER_TENSOR ? n / MAX_CHECKS_PER_TENSOR : 1;
    for (size_t i = 0; i < n; i += stride) {
        real saved = x[i];
        double f[4], offsets[4] = {2 * FD_STEP, FD_STEP, -FD_STEP, -2 * FD_STEP};
        for (int j = 0; j < 4; j++) {
            x[i] = saved + offsets[j];
            f[j] = loss_of(c);
        }
        x[i] = saved;
        double numeric = (-f[0] + 8 * f[1] - 8 * f[2] + f[3]) / (12 * FD_STEP);
        double e = rel_error(numeric, grad[i]);
        if (e > worst) {
            worst = e;
            worst_numeric = numeric;
            worst_analytic = grad[i];
        }
    }
    loss_of(c);
    CHECK(worst <= FD_TOLERANCE, "%s: d%s worst error %.3g (numeric %.9g, analytic %.9g)", c->name,
          var, worst, worst_numeric, worst_analytic);
}

// ---- linear ----
struct linear_ctx { real *out, *in, *w, *b; int n, n_in, n_out; };
static void linear_fwd(void *p)
{
    struct linear_ctx *c = p;
    linear_forward(c->out, c->in, c->w, c->b, c->n, c->n_in, c->n_out);
}

static void test_linear(void)
{
    int n = 5, ni = 7, no = 6;
    real in[35], w[42], b[6], out[30], r[30], din[35], dw[42], db[6];
    fill_normal(in, 35, 1); fill_normal(w, 42, 1); fill_normal(b, 6, 1); fill_normal(r, 30, 1);
    struct linear_ctx ctx = {out, in, w, b, n, ni, no};
    struct fd_case c = {"linear", linear_fwd, &ctx, out, r, 30, NULL};
    memset(dw, 0, sizeof dw); memset(db, 0, sizeof db);
    loss_of(&c);
    linear_backward(din, dw, db, r, in, w, n, ni, no, 0);
    check_variable(&c, "in", in, din, 35);
    check_variable(&c, "weight", w, dw, 42);
    check_variable(&c, "bias", b, db, 6);
}

// ---- activations ----
struct act_ctx { real *out, *in; size_t n; int gelu; };
static void act_fwd(void *p)
{
    struct act_ctx *c = p;
    if (c->gelu) gelu_forward(c->out, c->in, c->n);
    else silu_forward(c->out, c->in, c->n);
}

static void test_activations(void)
{
    for (int gelu = 0; gelu <= 1; gelu++) {
        real in[40], out[40], r[40], din[40];
        fill_normal(in, 40, 2); fill_normal(r, 40, 1);
        struct act_ctx ctx = {out, in, 40, gelu};
        struct fd_case c = {gelu ? "gelu" : "silu", act_fwd, &ctx, out, r, 40, NULL};
        loss_of(&c);
        if (gelu) gelu_backward(din, r, in, 40);
        else silu_backward(din, r, in, 40);
        check_variable(&c, "in", in, din, 40);
    }
}

// ---- LayerNorm + modulation, gated residual ----
enum { AB = 2, AT = 3, AD = 8, ASTRIDE = 3 * AD };
struct adaln_ctx { real *out, *mean, *rstd, *x, *ada, *f; int gated; };
static void adaln_fwd(void *p)
{
    struct adaln_ctx *c = p;
    if (c->gated) gated_residual_forward(c->out, c->x, c->ada + 2 * AD, c->f, ASTRIDE, AB, AT, AD);
    else ln_modulate_forward(c->out, c->mean, c->rstd, c->x, c->ada, c->ada + AD, ASTRIDE, AB, AT, AD);
}

static void test_adaln(void)
{
    enum { N = AB * AT * AD };
    real x[N], f[N], out[N], r[N], ada[AB * ASTRIDE], mean[AB * AT], rstd[AB * AT];
    real dx[N], df[N], dada[AB * ASTRIDE];
    fill_normal(x, N, 1.5); fill_normal(f, N, 1); fill_normal(ada, AB * ASTRIDE, 0.5); fill_normal(r, N, 1);
    for (int gated = 0; gated <= 1; gated++) {
        struct adaln_ctx ctx = {out, mean, rstd, x, ada, f, gated};
        struct fd_case c = {gated ? "gated_residual" : "ln_modulate", adaln_fwd, &ctx, out, r, N, NULL};
        memset(dx, 0, sizeof dx); memset(df, 0, sizeof df); memset(dada, 0, sizeof dada);
        loss_of(&c);
        if (gated) {
            gated_residual_backward(df, dada + 2 * AD, r, ada + 2 * AD, f, ASTRIDE, AB, AT, AD);
            for (int i = 0; i < N; i++) dx[i] = r[i];
            check_variable(&c, "f", f, df, N);
        } else {
            ln_modulate_backward(dx, dada, dada + AD, r, x, mean, rstd, ada + AD, ASTRIDE, AB, AT, AD);
        }
        check_variable(&c, "x", x, dx, N);
        check_variable(&c, "ada", ada, dada, AB * ASTRIDE);
    }
}

// ---- attention ----
enum { HB = 2, HT = 5, HD = 8, HH = 2 };
struct att_ctx { real *out, *probs, *qkv; };
static void att_fwd(void *p)
{
    struct att_ctx *c = p;
    attention_forward(c->out, c->probs, c->qkv, HB, HT, HD, HH);
}

static void test_attention(void)
{
    enum { N = HB * HT };
    real qkv[N * 3 * HD], out[N * HD], probs[HB * HH * HT * HT], r[N * HD], dqkv[N * 3 * HD];
    real *scratch = calloc((size_t)64 * HT * HT, sizeof(real));
    fill_normal(qkv, N * 3 * HD, 1); fill_normal(r, N * HD, 1);
    struct att_ctx ctx = {out, probs, qkv};
    struct fd_case c = {"attention", att_fwd, &ctx, out, r, N * HD, NULL};
    loss_of(&c);
    attention_backward(dqkv, r, probs, qkv, scratch, HB, HT, HD, HH);
    check_variable(&c, "qkv", qkv, dqkv, N * 3 * HD);
    free(scratch);
}

// ---- unpatchify is a permutation: its backward must be its exact inverse ----
static void test_unpatchify(void)
{
    enum { B = 2, C = 3, S = 4, P = 2, N = B * C * S * S };
    real tokens[N], images[N], back[N], patches[N];
    fill_normal(tokens, N, 1);
    unpatchify(images, tokens, B, C, S, P);
    unpatchify_backward(back, images, B, C, S, P);
    CHECK(memcmp(tokens, back, sizeof tokens) == 0, "unpatchify_backward is not the inverse");
    patchify(patches, images, B, C, S, P);
    // patch feature c*p*p + i*p + j vs token feature (i*p + j)*C + c of the same token
    int mismatches = 0;
    for (int n = 0; n < B * (S / P) * (S / P); n++)
        for (int c = 0; c < C; c++)
            for (int ij = 0; ij < P * P; ij++)
                mismatches += patches[n * C * P * P + c * P * P + ij] != tokens[n * C * P * P + ij * C + c];
    CHECK(mismatches == 0, "patchify and unpatchify disagree on %d elements", mismatches);
}

// ---- the whole network ----
// The network output is probed with R; MoE auxiliary losses are added to the loss as trained.
struct dit_ctx { struct dit *m; real *x, *t; int *labels; int B; real *r; size_t out_n; double aux; };
static void dit_fwd(void *p)
{
    struct dit_ctx *c = p;
    double per_kind[AUX_COUNT];
    dit_forward(c->m, c->x, c->t, c->labels, c->B);
    c->aux = dit_aux_losses(c->m, per_kind);
}

static double dit_aux(void *p) { return ((struct dit_ctx *)p)->aux; }

static void test_dit(const char *name, const char *const *sets, int n_sets)
{
    struct config cfg;
    config_defaults(&cfg);
    const char *base[] = {"data.channels=2", "data.image_size=8", "model.patch=2", "model.hidden=16",
                          "model.depth=2", "model.heads=2", "data.num_classes=3", "data.name=npy",
                          "data.path=x", "data.labels=y"};
    for (size_t i = 0; i < sizeof base / sizeof *base; i++) config_set(&cfg, base[i]);
    for (int i = 0; i < n_sets; i++)
        if (config_set(&cfg, sets[i]) < 0) CHECK(0, "%s: %s", name, err_message());
    struct dit m;
    CHECK(dit_create(&m, &cfg, 3) == 0, "%s: dit_create: %s", name, err_message());
    m.training = 1;
    size_t n = m.table.total;
    real *w = calloc(n, sizeof(real)), *g = calloc(n, sizeof(real)), *g2 = calloc(n, sizeof(real));
    params_init(&m.table, w, 7);
    fill_normal(w, n, 0.3);  // random everywhere, so no path is hidden by a zero
    const struct param_entry *pos = params_find(&m.table, "pos_embed");
    pos_embed_table(w + pos->offset, 4, 16);
    // Buffers are not trained; give prototypes and routers well-separated random values.
    dit_bind_weights(&m, w);
    dit_bind_grads(&m, g);
    int B = 3, labels[3] = {0, 3, 1};   // label 3 = the null label: an unconditional sample
    size_t in_n = (size_t)B * 2 * 8 * 8, out_n = (size_t)B * 4 * 8 * 8;
    real x[3 * 2 * 64], t[3] = {3.0, 500.5, 999.0}, *r = malloc(sizeof(real) * out_n);
    fill_normal(x, in_n, 1); fill_normal(r, out_n, 1);
    struct dit_ctx ctx = {&m, x, t, labels, B, r, out_n, 0};
    struct fd_case c = {name, dit_fwd, &ctx, m.acts.out, r, out_n, dit_aux};
    loss_of(&c);
    dit_backward(&m, r, B);
    for (int i = 0; i < m.table.n; i++) {
        const struct param_entry *e = &m.table.entries[i];
        if (e->trainable) check_variable(&c, e->name, w + e->offset, g + e->offset, e->count);
    }
    memcpy(g2, g, sizeof(real) * n);
    dit_bind_grads(&m, g2);
    loss_of(&c);
    dit_backward(&m, r, B);
    double worst = 0;
    for (size_t i = 0; i < n; i++) worst = fmax(worst, rel_error(g2[i], 2 * g[i]));
    CHECK(worst < 1e-12, "backward does not accumulate: worst %.3g", worst);
    CHECK(g[pos->offset] == 0, "fixed position table received gradient");
    free(w); free(g); free(g2); free(r);
    dit_destroy(&m);
}

int main(void)
{
    rng_init(&test_rng, 1234, 0, RNG_TEST, 0);
    test_linear();
    test_activations();
    test_adaln();
    test_attention();
    test_unpatchify();
    test_dit("dit dense", NULL, 0);
    const char *tc[] = {"model.moe.experts=E4A2S0U0", "model.moe.router=token_choice", "loss.balance.weight=0.5"};
    test_dit("dit token_choice+balance", tc, 3);
    const char *proto[] = {"model.moe.experts=E6A1S1U1", "model.moe.router=prototype",
                           "model.moe.conditional=true", "loss.rcl.weight=0.7", "loss.balance.weight=0.3"};
    test_dit("dit prototype+rcl+balance", proto, 5);
    const char *proto_top2[] = {"model.moe.experts=E6A2S1U1", "model.moe.router=prototype",
                                "model.moe.conditional=true", "model.moe.activation=sigmoid", "model.moe.alpha=3"};
    test_dit("dit prototype sigmoid top-2", proto_top2, 4);
    const char *proto_softmax[] = {"model.moe.experts=E5A1S2U0", "model.moe.router=prototype",
                                   "model.moe.activation=softmax", "model.moe.first=0", "model.moe.every=1"};
    test_dit("dit prototype softmax 2 shared", proto_softmax, 5);
    return test_summary("f64_gradcheck");
}
