// The registry of routing methods: one row per router, indexed by enum moe_router_kind.
#include "moe/moe.h"

extern const struct router_ops router_token_choice, router_prototype;

const struct router_ops *router_lookup(int kind)
{
    static const struct router_ops *const registry[ROUTER_COUNT] = {
        [ROUTER_TOKEN_CHOICE] = &router_token_choice,
        [ROUTER_PROTOTYPE] = &router_prototype,
    };
    return kind >= 0 && kind < ROUTER_COUNT ? registry[kind] : NULL;
}
