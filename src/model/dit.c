// DiT forward and backward over the parameter table (ROUTERS.md 1.2-1.7). Every product goes to
// BLIS through nn/linear and nn/attention; element-wise passes are OpenMP loops.
#include "model/dit.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "nn/activation.h"
#include "nn/adaln.h"
#include "nn/attention.h"
#include "nn/embed.h"
#include "nn/linear.h"

// DiT's initialisation constants (ROUTERS.md 1.6).
#define EMBED_INIT_STD 0.02

static void shape_from_config(struct dit_shape *s, const struct config *cfg)
{
    s->channels = cfg->channels;
    s->size = cfg->pad_to ? cfg->pad_to : cfg->image_size;
    s->patch = cfg->patch;
    s->grid = s->size / s->patch;
    s->tokens = s->grid * s->grid;
    s->hidden = cfg->hidden;
    s->depth = cfg->depth;
    s->heads = cfg->heads;
    s->mlp_hidden = cfg->mlp_ratio * cfg->hidden;
    s->num_classes = cfg->num_classes;
    s->out_channels = cfg->learn_sigma ? 2 * cfg->channels : cfg->channels;
}

static int add(struct param_table *t, const char *name, enum param_init init, double std, int ndim,
               int64_t d0, int64_t d1, int64_t d2, int64_t d3)
{
    int64_t shape[4] = {d0, d1, d2, d3};
    return params_add(t, name, ndim, shape, init, std, init != INIT_POS_EMBED);
}

// A linear layer's weight [out, in] and bias [out], PyTorch names "<prefix>.weight" / ".bias".
static int add_linear(struct param_table *t, const char *prefix, int64_t n_out, int64_t n_in,
                      enum param_init weight_init, double std)
{
    char name[PARAM_NAME_MAX];
    snprintf(name, sizeof name, "%s.weight", prefix);
    if (add(t, name, weight_init, std, 2, n_out, n_in, 0, 0) < 0) return -1;
    snprintf(name, sizeof name, "%s.bias", prefix);
    return add(t, name, INIT_ZERO, 0, 1, n_out, 0, 0, 0);
}

static int build_table(struct dit *m, struct param_table *t, const struct dit_shape *s)
{
    int64_t D = s->hidden, p = s->patch;
    int rc = 0;
    rc |= add(t, "pos_embed", INIT_POS_EMBED, 0, 3, 1, s->tokens, D, 0);
    rc |= add(t, "x_embedder.proj.weight", INIT_XAVIER, 0, 4, D, s->channels, p, p);
    rc |= add(t, "x_embedder.proj.bias", INIT_ZERO, 0, 1, D, 0, 0, 0);
    rc |= add_linear(t, "t_embedder.mlp.0", D, TIMESTEP_FREQ_DIM, INIT_NORMAL, EMBED_INIT_STD);
    rc |= add_linear(t, "t_embedder.mlp.2", D, D, INIT_NORMAL, EMBED_INIT_STD);
    rc |= add(t, "y_embedder.embedding_table.weight", INIT_NORMAL, EMBED_INIT_STD, 2,
              s->num_classes + 1, D, 0, 0);
    for (int i = 0; i < s->depth; i++) {
        char prefix[PARAM_NAME_MAX];
        snprintf(prefix, sizeof prefix, "blocks.%d.attn.qkv", i);
        rc |= add_linear(t, prefix, 3 * D, D, INIT_XAVIER, 0);
        snprintf(prefix, sizeof prefix, "blocks.%d.attn.proj", i);
        rc |= add_linear(t, prefix, D, D, INIT_XAVIER, 0);
        if (m->moe[i]) {
            rc |= moe_create(m->moe[i], &m->cfg, i, t);
        } else {
            snprintf(prefix, sizeof prefix, "blocks.%d.mlp.fc1", i);
            rc |= add_linear(t, prefix, s->mlp_hidden, D, INIT_XAVIER, 0);
            snprintf(prefix, sizeof prefix, "blocks.%d.mlp.fc2", i);
            rc |= add_linear(t, prefix, D, s->mlp_hidden, INIT_XAVIER, 0);
        }
        snprintf(prefix, sizeof prefix, "blocks.%d.adaLN_modulation.1", i);
        rc |= add_linear(t, prefix, 6 * D, D, INIT_ZERO, 0);
        // Expert Race's per-layer regularisation: a head on every MoE block (model/plr.h).
        if (m->moe[i] && m->cfg.plr_weight > 0) rc |= plr_add_head(&m->plr, t, i);
    }
    rc |= add_linear(t, "final_layer.linear", p * p * s->out_channels, D, INIT_ZERO, 0);
    rc |= add_linear(t, "final_layer.adaLN_modulation.1", 2 * D, D, INIT_ZERO, 0);
    return rc < 0 ? -1 : 0;
}

static real *tensor(const struct dit *m, real *base, const char *fmt, int index)
{
    char name[PARAM_NAME_MAX];
    snprintf(name, sizeof name, fmt, index);
    const struct param_entry *e = params_find(&m->table, name);
    if (!e) BUG("no parameter '%s'", name);
    return base + e->offset;
}

static void bind(struct dit *m, real *base, struct dit_tensors *w)
{
    w->pos = tensor(m, base, "pos_embed", 0);
    w->x_w = tensor(m, base, "x_embedder.proj.weight", 0);
    w->x_b = tensor(m, base, "x_embedder.proj.bias", 0);
    w->t_w1 = tensor(m, base, "t_embedder.mlp.0.weight", 0);
    w->t_b1 = tensor(m, base, "t_embedder.mlp.0.bias", 0);
    w->t_w2 = tensor(m, base, "t_embedder.mlp.2.weight", 0);
    w->t_b2 = tensor(m, base, "t_embedder.mlp.2.bias", 0);
    w->y_table = tensor(m, base, "y_embedder.embedding_table.weight", 0);
    w->final_ada_w = tensor(m, base, "final_layer.adaLN_modulation.1.weight", 0);
    w->final_ada_b = tensor(m, base, "final_layer.adaLN_modulation.1.bias", 0);
    w->final_w = tensor(m, base, "final_layer.linear.weight", 0);
    w->final_b = tensor(m, base, "final_layer.linear.bias", 0);
    plr_bind(&m->plr, &m->table, base, w == &m->g);
    for (int i = 0; i < m->shape.depth; i++) {
        struct dit_block_tensors *b = &w->blocks[i];
        b->ada_w = tensor(m, base, "blocks.%d.adaLN_modulation.1.weight", i);
        b->ada_b = tensor(m, base, "blocks.%d.adaLN_modulation.1.bias", i);
        b->qkv_w = tensor(m, base, "blocks.%d.attn.qkv.weight", i);
        b->qkv_b = tensor(m, base, "blocks.%d.attn.qkv.bias", i);
        b->proj_w = tensor(m, base, "blocks.%d.attn.proj.weight", i);
        b->proj_b = tensor(m, base, "blocks.%d.attn.proj.bias", i);
        if (m->moe[i]) {
            moe_bind(m->moe[i], &m->table, base, w == &m->g);
            continue;
        }
        b->fc1_w = tensor(m, base, "blocks.%d.mlp.fc1.weight", i);
        b->fc1_b = tensor(m, base, "blocks.%d.mlp.fc1.bias", i);
        b->fc2_w = tensor(m, base, "blocks.%d.mlp.fc2.weight", i);
        b->fc2_b = tensor(m, base, "blocks.%d.mlp.fc2.bias", i);
    }
}

void dit_bind_weights(struct dit *m, real *weights) { bind(m, weights, &m->w); }
void dit_bind_grads(struct dit *m, real *grads) { bind(m, grads, &m->g); }

// One region, used by one block's MLP at a time: the dense MLP's GELU output and derivative
// (recomputed from fc1 in the backward instead of kept per block) and its gradient, or an MoE
// layer's scratch; every MoE layer's scratch starts where the dense one does.
static void layout_mlp_scratch(struct dit *m)
{
    struct arena *a = &m->arena;
    size_t N = (size_t)m->max_batch * m->shape.tokens, F = m->shape.mlp_hidden;
    size_t start = a->used;
    m->acts.mlp_post = arena_reals(a, N * F);
    m->acts.gelu_deriv = arena_reals(a, N * F);
    m->acts.d_fc1 = arena_reals(a, N * F);
    size_t end = a->used;
    for (int i = 0; i < m->shape.depth; i++) {
        if (!m->moe[i]) continue;
        a->used = start;
        moe_layout_scratch(m->moe[i], a, m->max_batch, m->shape.tokens);
        if (a->used > end) end = a->used;
    }
    a->used = end;
}

// Carves every activation out of the arena (measuring pass when the base is NULL).
static void layout_acts(struct dit *m)
{
    const struct dit_shape *s = &m->shape;
    struct arena *a = &m->arena;
    struct dit_acts *x = &m->acts;
    size_t B = (size_t)m->max_batch, N = B * s->tokens, D = s->hidden, F = s->mlp_hidden;
    size_t P = (size_t)s->patch * s->patch, O = P * s->out_channels;
    x->labels = arena_ints(a, B);
    x->t = arena_reals(a, B);
    x->patches = arena_reals(a, N * s->channels * P);
    x->resid = arena_reals(a, (s->depth + 1) * N * D);
    x->t_freq = arena_reals(a, B * TIMESTEP_FREQ_DIM);
    x->t_hidden = arena_reals(a, B * D);
    x->t_act = arena_reals(a, B * D);
    x->c = arena_reals(a, B * D);
    x->silu_c = arena_reals(a, B * D);
    x->final_ada = arena_reals(a, B * 2 * D);
    x->lnf_mean = arena_reals(a, N);
    x->lnf_rstd = arena_reals(a, N);
    x->final_mod = arena_reals(a, N * D);
    x->out_tokens = arena_reals(a, N * O);
    x->out = arena_reals(a, N * O);
    for (int i = 0; i < s->depth; i++) {
        struct dit_block_acts *b = &x->blocks[i];
        b->ada = arena_reals(a, B * 6 * D);
        b->ln1_mean = arena_reals(a, N);
        b->ln1_rstd = arena_reals(a, N);
        b->mod1 = arena_reals(a, N * D);
        b->qkv = arena_reals(a, N * 3 * D);
        b->probs = arena_reals(a, B * s->heads * s->tokens * s->tokens);
        b->att = arena_reals(a, N * D);
        b->proj = arena_reals(a, N * D);
        b->x_mid = arena_reals(a, N * D);
        b->ln2_mean = arena_reals(a, N);
        b->ln2_rstd = arena_reals(a, N);
        b->mod2 = arena_reals(a, N * D);
        int dense = m->moe[i] == NULL;
        b->fc1 = arena_reals(a, dense ? N * F : 0);
        b->mlp = arena_reals(a, N * D);
        if (!dense) moe_layout_saved(m->moe[i], a, (int)B, s->tokens);
        plr_layout_block(&m->plr, a, i, N);
    }
    x->d_x = arena_reals(a, N * D);
    x->d_mod = arena_reals(a, N * D);
    x->d_branch = arena_reals(a, N * D);
    x->d_att = arena_reals(a, N * D);
    x->d_qkv = arena_reals(a, N * 3 * D);
    x->d_tokens = arena_reals(a, N * O);
    plr_layout(&m->plr, a, N);
    x->d_ada = arena_reals(a, B * 6 * D);
    x->d_final_ada = arena_reals(a, B * 2 * D);
    x->d_silu_c = arena_reals(a, B * D);
    x->d_c = arena_reals(a, B * D);
    x->d_t_act = arena_reals(a, B * D);
    x->d_t_hidden = arena_reals(a, B * D);
    x->attention_scratch = arena_reals(a, (size_t)m->max_threads * s->tokens * s->tokens);
    layout_mlp_scratch(m);
}

int dit_create(struct dit *m, const struct config *cfg, int max_batch)
{
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    shape_from_config(&m->shape, cfg);
    m->max_batch = max_batch;
    m->max_threads = omp_get_max_threads() > omp_get_num_procs() ? omp_get_max_threads() : omp_get_num_procs();
    m->precision = cfg->precision == PRECISION_BF16 ? MATMUL_BF16 : MATMUL_FP32;
    int depth = m->shape.depth;
    m->w.blocks = calloc(depth, sizeof *m->w.blocks);
    m->g.blocks = calloc(depth, sizeof *m->g.blocks);
    m->acts.blocks = calloc(depth, sizeof *m->acts.blocks);
    m->moe = calloc(depth, sizeof *m->moe);
    if (!m->w.blocks || !m->g.blocks || !m->acts.blocks || !m->moe) return err("out of memory");
    if (plr_create(&m->plr, depth, cfg->plr_weight, m->shape.channels, m->shape.size, m->shape.patch,
                   m->shape.hidden) < 0)
        return -1;
    for (int i = 0; i < depth; i++)
        if (moe_is_layer(cfg, i) && !(m->moe[i] = calloc(1, sizeof **m->moe))) return err("out of memory");
    if (build_table(m, &m->table, &m->shape) < 0) return -1;
    if (max_batch == 0) return 0;
    if (blas_reserve_precision(m->precision, m->max_threads) < 0)
        return err_context("train.precision 'bf16' (use 'fp32' here)");
    layout_acts(m);
    if (arena_allocate(&m->arena) < 0) return -1;
    layout_acts(m);
    return 0;
}

void dit_destroy(struct dit *m)
{
    for (int i = 0; m->moe && i < m->shape.depth; i++) {
        if (m->moe[i]) moe_destroy(m->moe[i]);
        free(m->moe[i]);
    }
    free(m->moe);
    plr_destroy(&m->plr);
    params_free(&m->table);
    arena_free(&m->arena);
    free(m->w.blocks);
    free(m->g.blocks);
    free(m->acts.blocks);
    memset(m, 0, sizeof *m);
}

// c [B, D] = t_embedder(t) + y_embedder(labels); silu_c = SiLU(c).
static void condition_forward(struct dit *m, int B)
{
    struct dit_acts *x = &m->acts;
    const struct dit_tensors *w = &m->w;
    int D = m->shape.hidden;
    timestep_features(x->t_freq, x->t, B);
    linear_forward(m->precision, x->t_hidden, x->t_freq, w->t_w1, w->t_b1, B, TIMESTEP_FREQ_DIM, D);
    silu_forward(x->t_act, x->t_hidden, (size_t)B * D);
    linear_forward(m->precision, x->c, x->t_act, w->t_w2, w->t_b2, B, D, D);
    for (int b = 0; b < B; b++) {
        const real *row = w->y_table + (size_t)x->labels[b] * D;
        for (int d = 0; d < D; d++) x->c[(size_t)b * D + d] += row[d];
    }
    silu_forward(x->silu_c, x->c, (size_t)B * D);
}

// out [N, D] = patch embedding of x + position table.
static void embed_forward(struct dit *m, const real *images, int B)
{
    const struct dit_shape *s = &m->shape;
    struct dit_acts *x = &m->acts;
    int T = s->tokens, D = s->hidden, F = s->channels * s->patch * s->patch;
    patchify(x->patches, images, B, s->channels, s->size, s->patch);
    linear_forward(m->precision, x->resid, x->patches, m->w.x_w, m->w.x_b, B * T, F, D);
#pragma omp parallel for schedule(static)
    for (int n = 0; n < B * T; n++)
        for (int d = 0; d < D; d++) x->resid[(size_t)n * D + d] += m->w.pos[(size_t)(n % T) * D + d];
}

static void block_forward(struct dit *m, int i, const real *in, real *out, int B)
{
    const struct dit_shape *s = &m->shape;
    const struct dit_block_tensors *w = &m->w.blocks[i];
    struct dit_block_acts *a = &m->acts.blocks[i];
    int T = s->tokens, D = s->hidden, N = B * T, ada = 6 * D;
    linear_forward(m->precision, a->ada, m->acts.silu_c, w->ada_w, w->ada_b, B, D, 6 * D);
    ln_modulate_forward(a->mod1, a->ln1_mean, a->ln1_rstd, in, a->ada, a->ada + D, ada, B, T, D);
    // The biases of qkv, proj, fc1 and fc2 are added by the passes that read the products (attention,
    // gated residual, GELU) rather than copied into the outputs first: one memory pass less each.
    linear_forward(m->precision, a->qkv, a->mod1, w->qkv_w, NULL, N, D, 3 * D);
    attention_forward(m->precision, a->att, a->probs, a->qkv, w->qkv_b, B, T, D, s->heads);
    linear_forward(m->precision, a->proj, a->att, w->proj_w, NULL, N, D, D);
    gated_residual_forward(a->x_mid, in, a->ada + 2 * D, a->proj, w->proj_b, ada, B, T, D);
    ln_modulate_forward(a->mod2, a->ln2_mean, a->ln2_rstd, a->x_mid, a->ada + 3 * D, a->ada + 4 * D,
                        ada, B, T, D);
    if (m->moe[i]) {
        m->moe[i]->training = m->training;
        m->moe[i]->update_buffers = m->training && m->update_buffers;
        m->moe[i]->step = m->step;
        moe_forward(m->moe[i], a->mlp, a->mod2, m->acts.labels, B, T);
    } else {
        linear_forward(m->precision, a->fc1, a->mod2, w->fc1_w, NULL, N, D, s->mlp_hidden);
        gelu_bias_forward(m->acts.mlp_post, a->fc1, w->fc1_b, N, s->mlp_hidden);
        linear_forward(m->precision, a->mlp, m->acts.mlp_post, w->fc2_w, NULL, N, s->mlp_hidden, D);
    }
    gated_residual_forward(out, a->x_mid, a->ada + 5 * D, a->mlp, m->moe[i] ? NULL : w->fc2_b, ada, B, T, D);
}

static void final_forward(struct dit *m, const real *in, int B)
{
    const struct dit_shape *s = &m->shape;
    struct dit_acts *x = &m->acts;
    int T = s->tokens, D = s->hidden, O = s->patch * s->patch * s->out_channels;
    linear_forward(m->precision, x->final_ada, x->silu_c, m->w.final_ada_w, m->w.final_ada_b, B, D, 2 * D);
    ln_modulate_forward(x->final_mod, x->lnf_mean, x->lnf_rstd, in, x->final_ada, x->final_ada + D,
                        2 * D, B, T, D);
    linear_forward(m->precision, x->out_tokens, x->final_mod, m->w.final_w, m->w.final_b, B * T, D, O);
    unpatchify(x->out, x->out_tokens, B, s->out_channels, s->size, s->patch);
}

// The per-layer heads' loss, in training forwards that have the target.
static void plr_heads_forward(struct dit *m, int B)
{
    size_t N = (size_t)B * m->shape.tokens;
    m->plr.loss = 0;
    if (!m->plr.layers || !m->training || !m->aux_target) return;
    plr_forward(&m->plr, m->acts.resid + N * m->shape.hidden, m->aux_target, B, (int)N);
}

// Adds block i's head gradient into d_x, the gradient at its output.
static void plr_head_backward(struct dit *m, int i, int B)
{
    size_t N = (size_t)B * m->shape.tokens;
    if (!plr_has_head(&m->plr, i) || !m->training || !m->aux_target) return;
    plr_backward(&m->plr, i, m->acts.d_x, m->acts.resid + (size_t)(i + 1) * N * m->shape.hidden, (int)N);
}

real *dit_forward(struct dit *m, const real *x, const real *t, const int *labels, int B)
{
    if (B > m->max_batch) BUG("batch %d exceeds the arena's %d", B, m->max_batch);
    struct dit_acts *a = &m->acts;
    size_t ND = (size_t)B * m->shape.tokens * m->shape.hidden;
    memcpy(a->labels, labels, sizeof(int) * B);
    memcpy(a->t, t, sizeof(real) * B);
    condition_forward(m, B);
    embed_forward(m, x, B);
    for (int i = 0; i < m->shape.depth; i++) block_forward(m, i, a->resid + i * ND, a->resid + (i + 1) * ND, B);
    final_forward(m, a->resid + m->shape.depth * ND, B);
    plr_heads_forward(m, B);
    return a->out;
}

// d_x [N, D] = gradient at the final layer's input; d_silu_c [B, D] = its share.
static void final_backward(struct dit *m, const real *d_out, const real *in, int B)
{
    const struct dit_shape *s = &m->shape;
    struct dit_acts *x = &m->acts;
    int T = s->tokens, D = s->hidden, O = s->patch * s->patch * s->out_channels;
    unpatchify_backward(x->d_tokens, d_out, B, s->out_channels, s->size, s->patch);
    linear_backward(m->precision, x->d_mod, m->g.final_w, m->g.final_b, x->d_tokens, x->final_mod, m->w.final_w,
                    B * T, D, O, 0);
    memset(x->d_x, 0, sizeof(real) * B * T * D);
    memset(x->d_final_ada, 0, sizeof(real) * B * 2 * D);
    ln_modulate_backward(x->d_x, x->d_final_ada, x->d_final_ada + D, x->d_mod, in, x->lnf_mean,
                         x->lnf_rstd, x->final_ada + D, 2 * D, B, T, D);
    linear_backward(m->precision, x->d_silu_c, m->g.final_ada_w, m->g.final_ada_b, x->d_final_ada, x->silu_c,
                    m->w.final_ada_w, B, D, 2 * D, 0);
}

// On entry d_x is the gradient at the block output; on exit, at its input.
static void block_backward(struct dit *m, int i, const real *in, int B)
{
    const struct dit_shape *s = &m->shape;
    const struct dit_block_tensors *w = &m->w.blocks[i];
    struct dit_block_tensors *g = &m->g.blocks[i];
    struct dit_block_acts *a = &m->acts.blocks[i];
    struct dit_acts *x = &m->acts;
    int T = s->tokens, D = s->hidden, N = B * T, F = s->mlp_hidden, ada = 6 * D;
    memset(x->d_ada, 0, sizeof(real) * B * ada);
    memset(x->d_branch, 0, sizeof(real) * N * D);
    gated_residual_backward(x->d_branch, x->d_ada + 5 * D, x->d_x, a->ada + 5 * D, a->mlp,
                            m->moe[i] ? NULL : w->fc2_b, ada, B, T, D);
    if (m->moe[i]) {
        moe_backward(m->moe[i], x->d_mod, x->d_branch, a->mod2, B, T);
    } else {
        gelu_bias_recompute(x->mlp_post, x->gelu_deriv, a->fc1, w->fc1_b, N, F);
        linear_backward(m->precision, x->d_fc1, g->fc2_w, g->fc2_b, x->d_branch, x->mlp_post, w->fc2_w, N, F, D, 0);
        gelu_apply_deriv(x->d_fc1, x->gelu_deriv, (size_t)N * F);
        linear_backward(m->precision, x->d_mod, g->fc1_w, g->fc1_b, x->d_fc1, a->mod2, w->fc1_w, N, D, F, 0);
    }
    ln_modulate_backward(x->d_x, x->d_ada + 3 * D, x->d_ada + 4 * D, x->d_mod, a->x_mid, a->ln2_mean,
                         a->ln2_rstd, a->ada + 4 * D, ada, B, T, D);
    memset(x->d_branch, 0, sizeof(real) * N * D);
    gated_residual_backward(x->d_branch, x->d_ada + 2 * D, x->d_x, a->ada + 2 * D, a->proj, w->proj_b,
                            ada, B, T, D);
    linear_backward(m->precision, x->d_att, g->proj_w, g->proj_b, x->d_branch, a->att, w->proj_w, N, D, D, 0);
    if (omp_get_max_threads() > m->max_threads)
        BUG("%d threads, activations sized for %d", omp_get_max_threads(), m->max_threads);
    attention_backward(m->precision, x->d_qkv, x->d_att, a->probs, a->qkv, x->attention_scratch, B, T, D, s->heads);
    linear_backward(m->precision, x->d_mod, g->qkv_w, g->qkv_b, x->d_qkv, a->mod1, w->qkv_w, N, D, 3 * D, 0);
    ln_modulate_backward(x->d_x, x->d_ada, x->d_ada + D, x->d_mod, in, a->ln1_mean, a->ln1_rstd,
                         a->ada + D, ada, B, T, D);
    linear_backward(m->precision, x->d_silu_c, g->ada_w, g->ada_b, x->d_ada, x->silu_c, w->ada_w, B, D, ada, 1);
}

static void condition_backward(struct dit *m, int B)
{
    struct dit_acts *x = &m->acts;
    int D = m->shape.hidden;
    silu_backward(x->d_c, x->d_silu_c, x->c, (size_t)B * D);
    label_lookup_backward(m->g.y_table, x->d_c, x->labels, B, D);
    linear_backward(m->precision, x->d_t_act, m->g.t_w2, m->g.t_b2, x->d_c, x->t_act, m->w.t_w2, B, D, D, 0);
    silu_backward(x->d_t_hidden, x->d_t_act, x->t_hidden, (size_t)B * D);
    linear_backward(m->precision, NULL, m->g.t_w1, m->g.t_b1, x->d_t_hidden, x->t_freq, m->w.t_w1, B,
                    TIMESTEP_FREQ_DIM, D, 0);
}

void dit_backward(struct dit *m, const real *d_out, int B)
{
    const struct dit_shape *s = &m->shape;
    struct dit_acts *x = &m->acts;
    int T = s->tokens, D = s->hidden, F = s->channels * s->patch * s->patch;
    size_t ND = (size_t)B * T * D;
    final_backward(m, d_out, x->resid + s->depth * ND, B);
    for (int i = s->depth - 1; i >= 0; i--) {
        plr_head_backward(m, i, B);
        block_backward(m, i, x->resid + i * ND, B);
    }
    // The position table is fixed: the embedding gradient stops at the patch projection.
    linear_backward(m->precision, NULL, m->g.x_w, m->g.x_b, x->d_x, x->patches, m->w.x_w, B * T, F, D, 0);
    condition_backward(m, B);
}

double dit_aux_losses(const struct dit *m, double per_kind[AUX_COUNT])
{
    double total = 0;
    for (int k = 0; k < AUX_COUNT; k++) per_kind[k] = 0;
    for (int i = 0; i < m->shape.depth; i++)
        for (int k = 0; m->moe[i] && k < AUX_COUNT; k++) {
            per_kind[k] += m->moe[i]->aux[k];
            total += m->moe[i]->aux[k];
        }
    per_kind[AUX_PLR] += m->plr.loss;
    return total + m->plr.loss;
}
