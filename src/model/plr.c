// Per-layer regularisation heads (Expert Race, ROUTERS.md 3.4 [R]): registration, binding,
// activations, and the weighted mean-squared loss of every head against the diffusion target.
#include "model/plr.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "nn/embed.h"
#include "nn/linear.h"

int plr_create(struct plr_heads *h, int depth, double weight, int channels, int size, int patch, int hidden)
{
    memset(h, 0, sizeof *h);
    h->weight = weight;
    h->depth = depth;
    h->channels = channels;
    h->size = size;
    h->patch = patch;
    h->hidden = hidden;
    h->blocks = calloc(depth, sizeof *h->blocks);
    return h->blocks ? 0 : err("out of memory");
}

void plr_destroy(struct plr_heads *h)
{
    free(h->blocks);
    memset(h, 0, sizeof *h);
}

static int features(const struct plr_heads *h) { return h->patch * h->patch * h->channels; }

int plr_add_head(struct plr_heads *h, struct param_table *t, int block)
{
    char name[PARAM_NAME_MAX];
    int64_t weight_shape[2] = {features(h), h->hidden}, bias_shape[1] = {features(h)};
    h->blocks[block].present = 1;
    h->layers++;
    snprintf(name, sizeof name, "blocks.%d.plr_head.weight", block);
    if (params_add(t, name, 2, weight_shape, INIT_XAVIER, 0, 1) < 0) return -1;
    snprintf(name, sizeof name, "blocks.%d.plr_head.bias", block);
    if (params_add(t, name, 1, bias_shape, INIT_ZERO, 0, 1) < 0) return -1;
    return 0;
}

int plr_has_head(const struct plr_heads *h, int block) { return h->blocks && h->blocks[block].present; }

static real *tensor(const struct param_table *t, real *base, int block, const char *suffix)
{
    char name[PARAM_NAME_MAX];
    snprintf(name, sizeof name, "blocks.%d.plr_head.%s", block, suffix);
    const struct param_entry *e = params_find(t, name);
    if (!e) BUG("no parameter '%s'", name);
    return base + e->offset;
}

void plr_bind(struct plr_heads *h, const struct param_table *t, real *base, int grads)
{
    for (int i = 0; i < h->depth; i++) {
        struct plr_head *b = &h->blocks[i];
        if (!plr_has_head(h, i)) continue;
        *(grads ? &b->g_w : &b->w) = tensor(t, base, i, "weight");
        *(grads ? &b->g_b : &b->b) = tensor(t, base, i, "bias");
    }
}

void plr_layout_block(struct plr_heads *h, struct arena *a, int block, size_t N)
{
    h->blocks[block].pred = arena_reals(a, plr_has_head(h, block) ? N * features(h) : 0);
}

void plr_layout(struct plr_heads *h, struct arena *a, size_t N)
{
    h->target = arena_reals(a, N * features(h));
    h->d_pred = arena_reals(a, N * features(h));
}

void plr_forward(struct plr_heads *h, const real *block_out, const real *target, int B, int N)
{
    int F = features(h);
    h->loss = 0;
    unpatchify_backward(h->target, target, B, h->channels, h->size, h->patch);
    for (int i = 0; i < h->depth; i++) {
        if (!plr_has_head(h, i)) continue;
        real *pred = h->blocks[i].pred;
        const real *x = block_out + (size_t)i * N * h->hidden;
        linear_forward(MATMUL_FP32, pred, x, h->blocks[i].w, h->blocks[i].b, N, h->hidden, F);
        double sum = 0;
        for (size_t k = 0; k < (size_t)N * F; k++) sum += (double)(pred[k] - h->target[k]) * (pred[k] - h->target[k]);
        h->loss += h->weight * sum / ((double)N * F * h->layers);
    }
}

void plr_backward(struct plr_heads *h, int block, real *d_x, const real *block_out, int N)
{
    int F = features(h);
    const real *pred = h->blocks[block].pred;
    real scale = (real)(2 * h->weight / ((double)N * F * h->layers));
    for (size_t k = 0; k < (size_t)N * F; k++) h->d_pred[k] = scale * (pred[k] - h->target[k]);
    linear_backward(MATMUL_FP32, d_x, h->blocks[block].g_w, h->blocks[block].g_b, h->d_pred, block_out, h->blocks[block].w, N,
                    h->hidden, F, 1);
}
