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
#include "model/params.h"
#include "moe/spec.h"

// The routing plan: slots grouped by expert (CSR), tokens ascending within an expert.
struct routing_plan {
    int n_experts;        // routed + unconditional
    int *offset;          // [n_experts + 1]: slots of expert e are offset[e] .. offset[e+1]-1
    int *token;           // [max_slots] token index n in [0, B*T)
    real *gate;           // [max_slots]
    real *d_gate;         // [max_slots] dLoss/dgate, filled by the layer's backward
    int n_slots, max_slots;
    int dropped;          // routed slots refused for lack of room (capacity or arena)
    // staging while a router adds entries in any order
    int *stage_expert, *stage_token;
    real *stage_gate;
    int n_staged;
};

// Adds one (expert, token, gate) entry; entries beyond max_slots are counted as dropped.
void plan_add(struct routing_plan *p, int expert, int token, real gate);

struct expert_tensors {
    real *up_w, *up_b, *down_w, *down_b;   // [h, D], [h], [D, h], [D]
};

struct moe_layer;

// A routing method: one file in src/moe/ and one row in the registry (router.c).
struct router_ops {
    const char *name;
    // Registers the router's tensors under prefix ("blocks.3.mlp"): trainable ones and buffers
    // (trainable = 0: saved in checkpoints, copied into the EMA weights).
    int (*add_params)(struct moe_layer *L, struct param_table *t, const char *prefix);
    // Points the router at its tensors in a buffer of the table's layout (weights or gradients).
    void (*bind)(struct moe_layer *L, const struct param_table *t, const char *prefix, real *base, int grads);
    // Routed slots needed at most for B samples of T tokens (sizes the arena).
    int (*max_slots)(const struct moe_layer *L, int B, int T);
    // Carves the router's activations out of the arena (measuring pass when the base is NULL).
    void (*layout)(struct moe_layer *L, struct arena *a, int B, int T);
    // Adds the routed entries for the tokens of samples with routed[b] = 1; x [B*T, D].
    // In training also computes the weighted auxiliary losses into L->aux.
    void (*plan)(struct moe_layer *L, const real *x, const int *routed, int B, int T);
    // From plan.d_gate and the auxiliary losses: accumulates router parameter gradients and
    // adds into d_x [B*T, D].
    void (*backward)(struct moe_layer *L, const real *x, const int *routed, int B, int T, real *d_x);
};

const struct router_ops *router_lookup(int kind);

// Helpers shared by routers. Registers "<prefix>.<suffix>" ([d0] or [d0, d1]); trainable = 0 makes a
// buffer. Returns 0 or -1.
int router_add_tensor(struct param_table *t, const char *prefix, const char *suffix, int ndim, int64_t d0,
                      int64_t d1, enum param_init init, double std, int trainable);
// The tensor "<prefix>.<suffix>" in a buffer of the table's layout (absent: a bug).
real *router_tensor(const struct param_table *t, real *base, const char *prefix, const char *suffix);
// d_s [N, E] = dLoss/dgate of each routed slot at (token, expert), zero elsewhere.
void plan_gate_gradients(const struct routing_plan *p, real *d_s, int N, int E);

// Auxiliary losses of the last training forward, already multiplied by their weights.
// AUX_PLR is the model's (per-layer heads on MoE blocks), not a router's.
enum moe_aux { AUX_BALANCE, AUX_RCL, AUX_ROUTER_SIM, AUX_CLS, AUX_CAPACITY, AUX_PLR, AUX_COUNT };
extern const char *const moe_aux_names[AUX_COUNT];   // metric names: "balance", "rcl", ...

struct moe_layer {
    struct moe_spec spec;
    const struct router_ops *router;
    const struct config *cfg;
    int block, D, num_classes;
    int training;                  // set by the model: training routes and losses, or inference
    int update_buffers;            // training forward may update buffers (centroids, thresholds)
    uint64_t seed;                 // for routers that draw (k-means initialisation)
    int64_t step;
    struct expert_tensors *w, *g;  // [routed + uncond] routed then unconditional experts
    struct expert_tensors *shared_w, *shared_g;   // [shared]
    void *router_state;            // owned by the router (allocated in add_params)
    double aux[AUX_COUNT];
    // activations (arena), sized for max_batch samples
    struct routing_plan plan;
    int *routed;                   // [B] 1 = the router routes this sample, 0 = unconditional experts
    int *labels;                   // [B] labels of the last forward (for statistics)
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
