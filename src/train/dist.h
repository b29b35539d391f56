// Data-parallel training steps (ECOSYSTEM.md 5.2): each rank takes a contiguous slice of the global
// batch that one process would draw (data order, flips, label dropout, noise and timesteps are
// keyed by the global sample index, so R ranks x B/R see exactly the samples of 1 x B), computes
// the loss as a mean over its slice, and the ranks' gradients are averaged (summed, times B_r / B)
// so that the result is the single-process gradient of the mean over the global batch. Rank 0
// alone writes the database and checkpoints. With one process every function is the identity.
#ifndef PROMOE_TRAIN_DIST_H
#define PROMOE_TRAIN_DIST_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "core/real.h"

// This rank's samples of a global batch: [offset, offset + count).
struct dist_slice {
    int offset, count, global;
};

// The slice of this rank; fails when the batch does not split evenly over the ranks.
int dist_slice_of(const struct config *cfg, struct dist_slice *slice);
// With train.deterministic, every later sum over ranks adds the ranks' buffers in rank order;
// reserves room for sums up to `total` gradients. 0 or -1.
int dist_prepare(const struct config *cfg, size_t total);
// grads [total] of this slice's mean loss become the gradient of the global mean, on every rank.
void dist_reduce_gradients(const struct dist_slice *slice, real *grads, size_t total);
// figures [n] of this slice (means over its samples) become the means over the global batch.
void dist_average_figures(const struct dist_slice *slice, double *figures, size_t n);
// Number of ranks.
int dist_ranks(void);
// 1 on the rank that writes the database, checkpoints and samples.
int dist_is_writer(void);
// Every rank gets rank 0's value.
int dist_broadcast_int(int value);
// Bytes this rank has put into reductions so far.
int64_t dist_reduced_bytes(void);
// Bytes this rank has put into all-gathers so far (routers' global pools, moe/pool.h).
int64_t dist_gathered_bytes(void);

#endif
