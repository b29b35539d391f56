// Data-parallel helpers of the training loop over the communicator (dist/comm.h).
#include "train/dist.h"

#include "core/error.h"
#include "dist/comm.h"

int dist_slice_of(const struct config *cfg, struct dist_slice *slice)
{
    int ranks = comm_size(), B = cfg->batch_size;
    if (B % ranks != 0)
        return err("train.batch_size %d does not split evenly over %d ranks", B, ranks);
    slice->count = B / ranks;
    slice->offset = comm_rank() * slice->count;
    slice->global = B;
    return 0;
}

int dist_prepare(const struct config *cfg, size_t total)
{
    return comm_set_ordered(cfg->deterministic, total * sizeof(real));
}

void dist_reduce_gradients(const struct dist_slice *slice, real *grads, size_t total)
{
    if (comm_size() == 1) return;
    real share = (real)slice->count / (real)slice->global;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < total; i++) grads[i] *= share;
    comm_sum_reals(grads, total);
}

void dist_average_figures(const struct dist_slice *slice, double *figures, size_t n)
{
    if (comm_size() == 1) return;
    double share = (double)slice->count / slice->global;
    for (size_t i = 0; i < n; i++) figures[i] *= share;
    comm_sum_doubles(figures, n);
}

int dist_ranks(void) { return comm_size(); }

int dist_is_writer(void) { return comm_is_root(); }

int dist_broadcast_int(int value)
{
    comm_broadcast(&value, sizeof value);
    return value;
}

int64_t dist_reduced_bytes(void) { return comm_reduced_bytes(); }

int64_t dist_gathered_bytes(void) { return comm_gathered_bytes(); }
