// Finite-difference gradient checks in double precision (machinery in gradcheck.h): every layer's
// backward, and the whole DiT dense and with the token-choice and prototype MoE routers and their
// auxiliary losses, on random inputs and random weights (DiT's zero init would hide most paths).
#include "gradcheck.h"
#include "nn/activation.h"
#include "nn/adaln.h"
#include "nn/attention.h"
#include "nn/embed.h"
#include "nn/linear.h"

// ---- linear ----
struct linear_ctx { real *out, *in, *w, *b; int n, n_in, n_out; };
static void linear_fwd(void *p)
{
    struct linear_ctx *c = p;
    linear_forward(MATMUL_FP32, c->out, c->in, c->w, c->b, c->n, c->n_in, c->n_out);
}

static void test_linear(void)
{
    int n = 5, ni = 7, no = 6;
    real in[35], w[42], b[6], out[30], r[30], din[35], dw[42], db[6];
    fill_normal(in, 35, 1); fill_normal(w, 42, 1); fill_normal(b, 6, 1); fill_normal(r, 30, 1);
    struct linear_ctx ctx = {out, in, w, b, n, ni, no};
    struct fd_case c = {"linear", linear_fwd, &ctx, out, r, 30, NULL, NULL};
    memset(dw, 0, sizeof dw); memset(db, 0, sizeof db);
    loss_of(&c);
    linear_backward(MATMUL_FP32, din, dw, db, r, in, w, n, ni, no, 0);
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
        struct fd_case c = {gelu ? "gelu" : "silu", act_fwd, &ctx, out, r, 40, NULL, NULL};
        loss_of(&c);
        if (gelu) gelu_backward(din, r, in, 40);
        else silu_backward(din, r, in, 40);
        check_variable(&c, "in", in, din, 40);
    }
}

// The MLP's fused form: GELU(in + bias), its derivative recomputed in one pass (rows 5, cols 8).
struct gelu_bias_ctx { real *out, *in, *bias; };
static void gelu_bias_fwd(void *p)
{
    struct gelu_bias_ctx *c = p;
    gelu_bias_forward(c->out, c->in, c->bias, 5, 8);
}

static void test_gelu_bias(void)
{
    real in[40], bias[8], out[40], r[40], post[40], deriv[40], din[40], dbias[8] = {0};
    fill_normal(in, 40, 2); fill_normal(bias, 8, 1); fill_normal(r, 40, 1);
    struct gelu_bias_ctx ctx = {out, in, bias};
    struct fd_case c = {"gelu+bias", gelu_bias_fwd, &ctx, out, r, 40, NULL, NULL};
    loss_of(&c);
    gelu_bias_recompute(post, deriv, in, bias, 5, 8);
    double worst = 0;
    for (int i = 0; i < 40; i++) worst = fmax(worst, fabs(post[i] - out[i]));
    CHECK(worst == 0, "gelu_bias_recompute's output equals the forward's (worst %.3g)", worst);
    for (int i = 0; i < 40; i++) din[i] = r[i];
    gelu_apply_deriv(din, deriv, 40);
    for (int i = 0; i < 40; i++) dbias[i % 8] += din[i];
    check_variable(&c, "in", in, din, 40);
    check_variable(&c, "bias", bias, dbias, 8);
}

// ---- LayerNorm + modulation, gated residual ----
enum { AB = 2, AT = 3, AD = 8, ASTRIDE = 3 * AD };
struct adaln_ctx { real *out, *mean, *rstd, *x, *ada, *f; int gated; };
static void adaln_fwd(void *p)
{
    struct adaln_ctx *c = p;
    if (c->gated) gated_residual_forward(c->out, c->x, c->ada + 2 * AD, c->f, NULL, ASTRIDE, AB, AT, AD);
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
        struct fd_case c = {gated ? "gated_residual" : "ln_modulate", adaln_fwd, &ctx, out, r, N, NULL, NULL};
        memset(dx, 0, sizeof dx); memset(df, 0, sizeof df); memset(dada, 0, sizeof dada);
        loss_of(&c);
        if (gated) {
            gated_residual_backward(df, dada + 2 * AD, r, ada + 2 * AD, f, NULL, ASTRIDE, AB, AT, AD);
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
    attention_forward(MATMUL_FP32, c->out, c->probs, c->qkv, NULL, HB, HT, HD, HH);
}

static void test_attention(void)
{
    enum { N = HB * HT };
    real qkv[N * 3 * HD], out[N * HD], probs[HB * HH * HT * HT], r[N * HD], dqkv[N * 3 * HD];
    real *scratch = calloc((size_t)64 * HT * HT, sizeof(real));
    fill_normal(qkv, N * 3 * HD, 1); fill_normal(r, N * HD, 1);
    struct att_ctx ctx = {out, probs, qkv};
    struct fd_case c = {"attention", att_fwd, &ctx, out, r, N * HD, NULL, NULL};
    loss_of(&c);
    attention_backward(MATMUL_FP32, dqkv, r, probs, qkv, scratch, HB, HT, HD, HH);
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

int main(void)
{
    rng_init(&test_rng, 1234, 0, RNG_TEST, 0);
    test_linear();
    test_activations();
    test_gelu_bias();
    test_adaln();
    test_attention();
    test_unpatchify();
    gradcheck_dit("dit dense", NULL, 0);
    const char *tc[] = {"model.moe.experts=E4A2S0U0", "model.moe.router=token_choice", "loss.balance.weight=0.5"};
    gradcheck_dit("dit token_choice+balance", tc, 3);
    const char *proto[] = {"model.moe.experts=E6A1S1U1", "model.moe.router=prototype",
                           "model.moe.conditional=true", "loss.rcl.weight=0.7", "loss.balance.weight=0.3"};
    gradcheck_dit("dit prototype+rcl+balance", proto, 5);
    const char *proto_top2[] = {"model.moe.experts=E6A2S1U1", "model.moe.router=prototype",
                                "model.moe.conditional=true", "model.moe.activation=sigmoid", "model.moe.alpha=3"};
    gradcheck_dit("dit prototype sigmoid top-2", proto_top2, 4);
    const char *proto_softmax[] = {"model.moe.experts=E5A1S2U0", "model.moe.router=prototype",
                                   "model.moe.activation=softmax", "model.moe.first=0", "model.moe.every=1"};
    gradcheck_dit("dit prototype softmax 2 shared", proto_softmax, 5);
    // Pools of one sample each (moe/pool.h): the balance loss and RCL as means over the pools.
    const char *tc_pools[] = {"model.moe.experts=E4A2S0U0", "model.moe.router=token_choice", "loss.balance.weight=0.5",
                              "model.moe.pool_scope=samples", "model.moe.pool_samples=1"};
    gradcheck_dit("dit token_choice+balance, pools of 1 sample", tc_pools, 5);
    const char *proto_pools[] = {"model.moe.experts=E6A1S1U1", "model.moe.router=prototype",
                                 "model.moe.conditional=true", "loss.rcl.weight=0.7", "loss.balance.weight=0.3",
                                 "model.moe.pool_scope=samples", "model.moe.pool_samples=1"};
    gradcheck_dit("dit prototype+rcl+balance, pools of 1 sample", proto_pools, 7);
    const char *plr[] = {"model.moe.experts=E4A1S0U0", "model.moe.router=token_choice", "loss.plr.weight=0.05"};
    gradcheck_dit("dit per-layer regularisation head", plr, 3);
    return test_summary("f64_gradcheck");
}
