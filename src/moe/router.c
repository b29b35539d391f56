// The helpers every router shares (router.h): plan entries, tensor registration and lookup, gate
// gradients, state release. The registry of routers is registry.c.
#include "moe/router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

const char *const moe_aux_names[AUX_COUNT] = {"balance", "rcl", "router_sim", "cls", "capacity", "plr"};

void plan_add(struct routing_plan *p, int expert, int token, real gate)
{
    if (p->n_staged >= p->max_slots) {
        p->dropped++;
        return;
    }
    p->stage_expert[p->n_staged] = expert;
    p->stage_token[p->n_staged] = token;
    p->stage_gate[p->n_staged] = gate;
    p->n_staged++;
}

int router_add_tensor(struct param_table *t, const char *prefix, const char *suffix, int ndim, int64_t d0,
                      int64_t d1, enum param_init init, double std, int trainable)
{
    char name[PARAM_NAME_MAX + 48];
    int64_t shape[2] = {d0, d1};
    snprintf(name, sizeof name, "%s.%s", prefix, suffix);
    return params_add(t, name, ndim, shape, init, std, trainable) < 0 ? -1 : 0;
}

real *router_tensor(const struct param_table *t, real *base, const char *prefix, const char *suffix)
{
    char name[PARAM_NAME_MAX + 48];
    snprintf(name, sizeof name, "%s.%s", prefix, suffix);
    const struct param_entry *e = params_find(t, name);
    if (!e) BUG("no parameter '%s'", name);
    return base + e->offset;
}

#define PROTOTYPE_INIT_STD 0.02

int router_add_prototypes(struct router_context *L, struct param_table *t, const char *prefix, size_t state_size)
{
    if (!(L->router_state = calloc(1, state_size))) return err("out of memory");
    return router_add_tensor(t, prefix, "cluster_centers", 2, L->spec.routed, L->D, INIT_NORMAL,
                             PROTOTYPE_INIT_STD, 1);
}

void router_bind_prototypes(const struct param_table *t, const char *prefix, real *base, int grads, real **weights,
                            real **gradients)
{
    real *p = router_tensor(t, base, prefix, "cluster_centers");
    if (grads) *gradients = p;
    else *weights = p;
}

void plan_gate_gradients(const struct routing_plan *p, real *d_s, int N, int E)
{
    memset(d_s, 0, sizeof(real) * N * E);
    for (int e = 0; e < E; e++)
        for (int s = p->offset[e]; s < p->offset[e + 1]; s++) d_s[(size_t)p->token[s] * E + e] += p->d_gate[s];
}

void router_free_state(struct router_context *L)
{
    free(L->router_state);
    L->router_state = NULL;
}
