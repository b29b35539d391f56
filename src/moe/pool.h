// Scope of the batch-level quantities routers compute (ROUTERS.md 7, item 10). With
// model.moe.pool_scope global and more than one rank, sums over the tokens of the batch (RCL
// centroids, k-means centroid sums and counts, the k-means initial draw) are summed over ranks, and
// pools ranked by a global top-k (DiffMoE, Expert Race) gather every rank's scores, so that every
// rank sees the quantity of the whole global batch, as one process would; with scope rank each rank
// keeps its own slice, as the official per-GPU pools do. Every rank holds the same number of tokens
// N (train/dist.h refuses an uneven split), so rank r's token n is the pool's token r N + n: the
// order one process gives the global batch, which is what ties are broken by.
// With scope samples one process pools over groups of model.moe.pool_samples consecutive samples,
// as the official runs pool over each GPU's micro-batch: a group gives exactly what a batch of
// its samples alone would give (routing, thresholds, centroids), and a pooled loss is the mean of
// the groups' losses, as data-parallel training averages the ranks'. Buffers follow scope rank:
// thresholds average the groups' updates, k-means keeps the first group's (rank 0's) centroids.
#ifndef PROMOE_MOE_POOL_H
#define PROMOE_MOE_POOL_H

#include <stddef.h>

#include "core/real.h"
#include "moe/router.h"

// 1 when the layer's batch-level sums span every rank.
int pool_is_global(const struct router_context *L);
// Ranks whose tokens form one pool (the world size when global, else 1), and this rank's place
// among them (0 when not global). Known at layout time, so gathered buffers are sized there.
int pool_ranks(const struct router_context *L);
int pool_rank(const struct router_context *L);
// Samples per pool group of a batch of B: model.moe.pool_samples with scope samples, else B. Groups
// are consecutive samples; when B is not a multiple (never in training, the config refuses it)
// the last group is shorter.
int pool_group_samples(const struct router_context *L, int B);
// Number of groups of a batch of B (1 unless scope samples).
int pool_group_count(const struct router_context *L, int B);
// In-place sums over the pool's ranks (nothing with scope rank or one rank).
void pool_sum_reals(const struct router_context *L, real *buf, size_t n);
void pool_sum_doubles(const struct router_context *L, double *buf, size_t n);
void pool_sum_ints(const struct router_context *L, int *buf, size_t n);
// Every pool rank's mine [n], rank 0 first: filled into all [pool_ranks * n] and returned when
// global; otherwise mine itself is returned and all is not touched (it may be NULL).
const real *pool_gather_reals(const struct router_context *L, const real *mine, size_t n, real *all);
const int *pool_gather_ints(const struct router_context *L, const int *mine, size_t n, int *all);
// Factor on gradients that a pooled loss sends into this rank's tokens. The trainer averages the
// ranks' gradients; a token's share of a global loss must be summed instead, so it is
// pre-multiplied by the world size (1 with scope rank). Loss figures of this rank's share carry
// the same factor, as the trainer averages figures too.
real pool_token_gradient_scale(const struct router_context *L);
// Router buffers (EMA thresholds) averaged over every rank so that replicas stay identical.
void pool_average_buffer(real *buf, size_t n);
// *value becomes its mean over the ranks that pass present = 1, on every rank (any scope), for a
// buffer update that some ranks have no value for; returns the number of such ranks (0: *value
// unchanged). Every rank must call it.
int pool_mean_where_present(double *value, int present);
// With scope rank and several ranks, rank 0's buffer (k-means centroids) replaces the others', as
// PyTorch DDP broadcasts buffers; nothing otherwise (a global pool keeps replicas identical).
void pool_share_buffer(const struct router_context *L, real *buf, size_t n);

#endif
