// The router registry, built from the list in config/routers.h: row NAME is the descriptor
// router_NAME that src/moe/NAME.c defines. Adding a router: the guide atop moe/router.h.
#include "moe/registry.h"

#define DECLARE_ROUTER(name) extern const struct router_ops router_##name;
PROMOE_ROUTERS(DECLARE_ROUTER)

#define REGISTRY_ROW(name) {#name, &router_##name},
static const struct {
    const char *name;
    const struct router_ops *ops;
} registry[] = {PROMOE_ROUTERS(REGISTRY_ROW)};
_Static_assert(sizeof registry / sizeof registry[0] == ROUTER_COUNT, "one registry row per router");

const struct router_ops *router_lookup(int kind)
{
    return kind >= 0 && kind < ROUTER_COUNT ? registry[kind].ops : NULL;
}

const char *router_name(int kind)
{
    return kind >= 0 && kind < ROUTER_COUNT ? registry[kind].name : NULL;
}

