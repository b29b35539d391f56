// Data-parallel scope of the batch-level quantities routers compute (ROUTERS.md 7, item 10). With
// model.moe.pool_scope global and more than one rank, sums over the tokens of the batch (RCL
// centroids, k-means centroid sums and counts, the k-means initial draw) are summed over ranks, so
// every rank sees the quantity of the whole global batch; with scope rank each rank keeps its own
// slice, as the official per-GPU pools do. Token-choice pools that need a global top-k (DiffMoE,
// Expert Race) support scope rank only.
#ifndef PROMOE_MOE_POOL_H
#define PROMOE_MOE_POOL_H

#include <stddef.h>

#include "core/real.h"
#include "moe/moe.h"

// 1 when the layer's batch-level sums span every rank.
int pool_is_global(const struct moe_layer *L);
// Refuses routers that cannot pool globally when the world has several ranks; 0 or -1.
int pool_check(const struct moe_layer *L);
// In-place sums over the pool's ranks (nothing with scope rank or one rank).
void pool_sum_reals(const struct moe_layer *L, real *buf, size_t n);
void pool_sum_doubles(const struct moe_layer *L, double *buf, size_t n);
void pool_sum_ints(const struct moe_layer *L, int *buf, size_t n);
// Factor on gradients that a pooled loss sends into this rank's tokens. The trainer averages the
// ranks' gradients; a token's share of a global loss must be summed instead, so it is
// pre-multiplied by the world size (1 with scope rank).
real pool_token_gradient_scale(const struct moe_layer *L);
// Router buffers (EMA thresholds) averaged over every rank so that replicas stay identical.
void pool_average_buffer(real *buf, size_t n);
// With scope rank and several ranks, rank 0's buffer (k-means centroids) replaces the others', as
// PyTorch DDP broadcasts buffers; nothing otherwise (a global pool keeps replicas identical).
void pool_share_buffer(const struct moe_layer *L, real *buf, size_t n);

#endif
