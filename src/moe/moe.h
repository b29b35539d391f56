// One Mixture-of-Experts layer (ROUTERS.md 3.0): shared experts see every token; a router builds a
// routing plan (for each expert, the tokens it processes and their gates) for the conditional
// tokens; with conditional routing, tokens of null-label samples go to the unconditional experts
// with gate 1. Experts, dispatch (gather, FFN, gated scatter-add) and their backward are shared
// by every router; a router only plans, maps gate gradients to its parameters, and adds its
// auxiliary loss. Experts are numbered routed 0..R-1, then unconditional R..R+U-1.
#ifndef PROMOE_MOE_H
#define PROMOE_MOE_H

#include <stdint.h>

#include "core/arena.h"
#include "moe/router.h"
#include "moe/spec.h"
#include "nn/params.h"

struct expert_tensors {
    real *up_w, *up_b, *down_w, *down_b;   // [h, D], [h], [D, h], [D]
};

struct moe_layer {
    // What the router sees (router.h): the layer hands it &ctx; the same fields are the layer's
    // own L->spec, L->plan, ... through the anonymous struct.
    union {
        struct router_context ctx;
        struct {
            ROUTER_CONTEXT_FIELDS
        };
    };
    // The layer's own; a router never touches these.
    const struct router_ops *router;
    struct expert_tensors *w, *g;  // [routed + uncond] routed then unconditional experts
    struct expert_tensors *shared_w, *shared_g;   // [shared]
    // activations (arena), sized for max_batch samples
    int *routed;                   // [B] 1 = the router routes this sample, 0 = unconditional experts
    int *expert_order;             // [n_experts] experts by decreasing token count
    // saved for the backward
    real *gathered, *pre, *expert_out;                // [max_slots, D], [max_slots, h], [max_slots, D]
    real *shared_pre;                                 // [shared][N, h]; pre: up products without bias
    // scratch (moe_layout_scratch): shared by every layer of a model
    real *post, *deriv;                               // GELU outputs and derivatives [max_slots, h]
    real *shared_post, *shared_deriv;                 // the same for a shared expert [N, h]
    real *d_slots, *d_post;                           // [max_slots, D], [max_slots, h]
    real *d_shared_post;                              // [N, h]
    real *d_x_slots;                                  // [(shared > 1 ? N : 0) + max_slots, D]
};

// Registers the layer's experts and router under "blocks.<block>.mlp" (ProMoE's names).
int moe_create(struct moe_layer *L, const struct config *cfg, int block, struct param_table *t);
void moe_destroy(struct moe_layer *L);
void moe_bind(struct moe_layer *L, const struct param_table *t, real *base, int grads);
// Carves the layer's buffers out of the arena: what its backward reads (saved) and what it uses only
// while it runs (scratch, which a model lays out once for all its layers; after the layer's saved
// part, whose slot count it reuses); moe_layout does both.
void moe_layout_saved(struct moe_layer *L, struct arena *a, int B, int T);
void moe_layout_scratch(struct moe_layer *L, struct arena *a, int B, int T);
void moe_layout(struct moe_layer *L, struct arena *a, int B, int T);

// y [B*T, D] = MoE(x [B*T, D]); labels [B] decide conditional routing.
void moe_forward(struct moe_layer *L, real *y, const real *x, const int *labels, int B, int T);
// d_x [B*T, D] = gradient at the input (overwritten), from d_y [B*T, D]; accumulates parameter
// gradients, the auxiliary losses' included.
void moe_backward(struct moe_layer *L, real *d_x, const real *d_y, const real *x, int B, int T);

#endif
