// Scope of router pools over data-parallel ranks: thin wrappers over the communicator.
#include "moe/pool.h"

#include "config/config.h"
#include "core/error.h"
#include "dist/comm.h"

int pool_is_global(const struct moe_layer *L)
{
    return L->cfg->moe_pool_scope == POOL_GLOBAL && comm_size() > 1;
}

int pool_check(const struct moe_layer *L)
{
    int kind = L->cfg->moe_router;
    if (!pool_is_global(L) || (kind != ROUTER_DIFFMOE && kind != ROUTER_EXPERT_RACE)) return 0;
    return err("model.moe.router '%s' ranks tokens over a batch-level pool, which needs an all-gather of "
               "scores over %d ranks that this build does not do; set model.moe.pool_scope: rank "
               "(a pool per rank, as the official per-GPU code)", L->router->name, comm_size());
}

void pool_sum_reals(const struct moe_layer *L, real *buf, size_t n)
{
    if (pool_is_global(L)) comm_sum_reals(buf, n);
}

void pool_sum_doubles(const struct moe_layer *L, double *buf, size_t n)
{
    if (pool_is_global(L)) comm_sum_doubles(buf, n);
}

void pool_sum_ints(const struct moe_layer *L, int *buf, size_t n)
{
    if (pool_is_global(L)) comm_sum_ints(buf, n);
}

real pool_token_gradient_scale(const struct moe_layer *L)
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

void pool_share_buffer(const struct moe_layer *L, real *buf, size_t n)
{
    if (comm_size() > 1 && !pool_is_global(L)) comm_broadcast(buf, sizeof(real) * n);
}
