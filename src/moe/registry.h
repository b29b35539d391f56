// The router registry: model.moe.router's value (a row of config/routers.h) to the router's
// descriptor (moe/router.h: ops, default activation, option checks, auxiliary losses, destroy).
#ifndef PROMOE_MOE_REGISTRY_H
#define PROMOE_MOE_REGISTRY_H

#include "moe/router.h"

// The registry entry of model.moe.router value kind; NULL for a kind outside the list.
const struct router_ops *router_lookup(int kind);
// The row's name ("prototype"), or NULL for a kind outside the list.
const char *router_name(int kind);

#endif
