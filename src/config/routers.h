// The list of routing methods: one row per router, in the order of model.moe.router's values
// (the value stored in struct config is the row's index). This list is the only place that names
// the routers: config.c takes model.moe.router's allowed names from it, and the router registry
// (moe/router.c) turns each row NAME into its entry, the descriptor `router_NAME` that the file
// src/moe/NAME.c defines. Adding a router: see the guide atop src/moe/router.h.
// Appending keeps existing values; the run id hashes the name, never the index.
#ifndef PROMOE_CONFIG_ROUTERS_H
#define PROMOE_CONFIG_ROUTERS_H

#define PROMOE_ROUTERS(ROW) \
    ROW(token_choice)       \
    ROW(expert_choice)      \
    ROW(diffmoe)            \
    ROW(expert_race)        \
    ROW(kmeans)             \
    ROW(classification)     \
    ROW(prototype)          \
    ROW(prototype_ec)

#endif
