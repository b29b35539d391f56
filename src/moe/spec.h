// The shape of a MoE layer from the config: the expert string E<total>A<top-k>S<shared>U<uncond>
// (the paper writes N for U in some tables; both are accepted), the expert width, the router and
// its options, and which blocks carry a MoE layer.
#ifndef PROMOE_MOE_SPEC_H
#define PROMOE_MOE_SPEC_H

#include "config/config.h"

struct moe_spec {
    int total, active, shared, uncond;   // from the expert string
    int routed;                          // total - shared - uncond
    int hidden;                          // expert FFN width h
    int router;                          // model.moe.router: row of config/routers.h
    int activation;                      // enum moe_activation, resolved (never DEFAULT)
    int conditional;
    double alpha, capacity, threshold_momentum;
};

// Parses "E14A1S1U1"; errors name the text and what does not add up.
int moe_spec_parse(const char *text, struct moe_spec *out);
// 1 when cfg describes a MoE model (model.moe.experts not empty).
int moe_enabled(const struct config *cfg);
// Full spec from the config (expert string, width, router options), validated.
int moe_spec_from_config(const struct config *cfg, struct moe_spec *out);
// 1 when block i of the network carries a MoE layer.
int moe_is_layer(const struct config *cfg, int block);

#endif
