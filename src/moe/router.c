// The registry of routing methods: one row per router, indexed by enum moe_router_kind.
#include "moe/moe.h"

extern const struct router_ops router_token_choice, router_expert_choice, router_diffmoe,
    router_expert_race, router_kmeans, router_classification, router_prototype;

const struct router_ops *router_lookup(int kind)
{
    static const struct router_ops *const registry[ROUTER_COUNT] = {
        [ROUTER_TOKEN_CHOICE] = &router_token_choice,
        [ROUTER_EXPERT_CHOICE] = &router_expert_choice,
        [ROUTER_DIFFMOE] = &router_diffmoe,
        [ROUTER_EXPERT_RACE] = &router_expert_race,
        [ROUTER_KMEANS] = &router_kmeans,
        [ROUTER_CLASSIFICATION] = &router_classification,
        [ROUTER_PROTOTYPE] = &router_prototype,
    };
    const struct router_ops *ops = kind >= 0 && kind < ROUTER_COUNT ? registry[kind] : NULL;
    return ops && ops->plan ? ops : NULL;
}
