// Expert Race's per-layer regularisation (ROUTERS.md 3.4 [R]): a linear head on the output of
// every MoE block predicts the diffusion target; trained with the network (loss.plr.weight),
// unused at inference. It belongs to the model, not to a router: it reads the block outputs and
// the target. Tensors "blocks.<i>.plr_head.weight" [p p C, D] and ".bias" [p p C].
#ifndef PROMOE_PLR_H
#define PROMOE_PLR_H

#include "core/arena.h"
#include "core/real.h"
#include "nn/params.h"

struct plr_head {
    int present;              // the block carries a head
    real *w, *b, *g_w, *g_b;  // [F, D], [F]: weights and gradients (NULL without a head)
    real *pred;               // [N, F] the head's prediction of the last forward
};

struct plr_heads {
    double weight;            // loss.plr.weight
    int depth, layers;        // blocks, and how many carry a head
    int channels, size, patch, hidden;   // C, S, p, D; F = p p C
    struct plr_head *blocks;  // [depth]
    real *target, *d_pred;    // [N, F]: the target as tokens, the gradient of one head's prediction
    double loss;              // weighted loss of the last training forward
};

// Sets the shapes; heads are added block by block with plr_add_head. Returns 0 or -1.
int plr_create(struct plr_heads *h, int depth, double weight, int channels, int size, int patch, int hidden);
void plr_destroy(struct plr_heads *h);
// Registers block's head in the table (a MoE block, with loss.plr.weight > 0).
int plr_add_head(struct plr_heads *h, struct param_table *t, int block);
int plr_has_head(const struct plr_heads *h, int block);
// Points the heads at a buffer of the table's layout (weights or gradients).
void plr_bind(struct plr_heads *h, const struct param_table *t, real *base, int grads);
// Carves block's prediction [N, F] (or nothing without a head), then the shared buffers.
void plr_layout_block(struct plr_heads *h, struct arena *a, int block, size_t N);
void plr_layout(struct plr_heads *h, struct arena *a, size_t N);
// loss = weight * mean over heads of mean((head(h_l) - target)^2); block_out [depth][N, D] are
// the blocks' outputs, target [B, C, S, S]; N = B * T.
void plr_forward(struct plr_heads *h, const real *block_out, const real *target, int B, int N);
// Adds head `block`'s gradient into d_x [N, D], the gradient at the block's output h [N, D].
void plr_backward(struct plr_heads *h, int block, real *d_x, const real *block_out, int N);

#endif
