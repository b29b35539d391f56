// The communicator of data-parallel training: rank, world size and the few collectives the trainer
// and the routers need. Two implementations chosen at compile time: a world of one process (the
// plain build, no MPI headers; every collective is the identity) and MPI over MPI_COMM_WORLD
// (`make mpi` compiles with -DPROMOE_MPI). Every collective must be called by all ranks in the
// same order; buffers are reduced in place and the result is the same on every rank.
#ifndef PROMOE_DIST_COMM_H
#define PROMOE_DIST_COMM_H

#include <stddef.h>
#include <stdint.h>

#include "core/real.h"

// Starts the communicator (MPI_Init_thread); call once before anything else. Returns 0 or -1.
int comm_init(int *argc, char ***argv);
// Ends it: MPI_Finalize, or MPI_Abort when status is non-zero and other ranks may be waiting in a
// collective; harmless when comm_init was not called.
void comm_finish(int status);
int comm_rank(void);
int comm_size(void);
static inline int comm_is_root(void) { return comm_rank() == 0; }

// Element-wise sums over ranks, in place, the same result on every rank.
void comm_sum_reals(real *buf, size_t n);
void comm_sum_doubles(double *buf, size_t n);
void comm_sum_ints(int *buf, size_t n);
void comm_sum_int64(int64_t *buf, size_t n);
// Fixed order (on = 1): from now on every floating-point sum gathers all ranks' buffers and adds
// them in rank order, 0 first, so results do not depend on the reduction algorithm the MPI library
// picks (an all-gather and size - 1 buffers of scratch instead of an all-reduce). Integer sums
// are exact either way. largest_bytes bounds every later floating-point sum (the scratch is
// reserved here, so reductions allocate nothing). Returns 0, or -1 when it cannot be allocated.
int comm_set_ordered(int on, size_t largest_bytes);
// all [size * n] = every rank's mine [n], rank 0's block first, the same on every rank
// (MPI_Allgather of equal blocks). Pure data movement: exact, so no fixed order is needed. With
// one process, a copy. mine and all must not overlap.
void comm_gather_reals(const real *mine, size_t n, real *all);
void comm_gather_ints(const int *mine, size_t n, int *all);
// Rank 0's bytes to every rank.
void comm_broadcast(void *buf, size_t bytes);
void comm_barrier(void);
// Bytes this rank sent into reductions since start (the all-reduce volume per step, measured).
int64_t comm_reduced_bytes(void);
// Bytes this rank sent into comm_gather_* since start (its own blocks; it receives size times as
// many). The fixed-order sums' internal all-gathers count as reductions, not here.
int64_t comm_gathered_bytes(void);

#endif
