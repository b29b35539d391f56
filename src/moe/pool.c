// Scope of router pools over data-parallel ranks: thin wrappers over the communicator.
#include "moe/pool.h"

#include "config/config.h"
#include "dist/comm.h"

int pool_is_global(const struct router_context *L)
{
    return L->cfg->moe_pool_scope == POOL_GLOBAL && comm_size() > 1;
}

int pool_ranks(const struct router_context *L) { return pool_is_global(L) ? comm_size() : 1; }

int pool_rank(const struct router_context *L) { return pool_is_global(L) ? comm_rank() : 0; }

int pool_group_samples(const struct router_context *L, int B)
{
    int P = L->cfg->moe_pool_scope == POOL_SAMPLES ? L->cfg->moe_pool_samples : 0;
    return P > 0 && P < B ? P : B;
}

int pool_group_count(const struct router_context *L, int B)
{
    int P = pool_group_samples(L, B);
    return P > 0 ? (B + P - 1) / P : 1;
}

void pool_sum_reals(const struct router_context *L, real *buf, size_t n)
{
    if (pool_is_global(L)) comm_sum_reals(buf, n);
}

void pool_sum_doubles(const struct router_context *L, double *buf, size_t n)
{
    if (pool_is_global(L)) comm_sum_doubles(buf, n);
}

void pool_sum_ints(const struct router_context *L, int *buf, size_t n)
{
    if (pool_is_global(L)) comm_sum_ints(buf, n);
}

const real *pool_gather_reals(const struct router_context *L, const real *mine, size_t n, real *all)
{
    if (!pool_is_global(L)) return mine;
    comm_gather_reals(mine, n, all);
    return all;
}

const int *pool_gather_ints(const struct router_context *L, const int *mine, size_t n, int *all)
{
    if (!pool_is_global(L)) return mine;
    comm_gather_ints(mine, n, all);
    return all;
}

real pool_token_gradient_scale(const struct router_context *L)
{
    return pool_is_global(L) ? (real)comm_size() : 1;
}

void pool_average_buffer(real *buf, size_t n)
{
    int size = comm_size();
    if (size == 1) return;
    comm_sum_reals(buf, n);
    for (size_t i = 0; i < n; i++) buf[i] /= (real)size;
}

int pool_mean_where_present(double *value, int present)
{
    if (comm_size() == 1) return present != 0;
    double sums[2] = {present ? *value : 0, present != 0};   // sum of values, number of ranks
    comm_sum_doubles(sums, 2);
    if (sums[1] > 0) *value = sums[0] / sums[1];
    return (int)sums[1];
}

void pool_share_buffer(const struct router_context *L, real *buf, size_t n)
{
    if (comm_size() > 1 && !pool_is_global(L)) comm_broadcast(buf, sizeof(real) * n);
}
