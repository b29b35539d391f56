// The router registry and the boundary between a router and its MoE layer (DESIGN.md, MoE).
//
// Adding a router (after git's builtin.h):
//  1. Write src/moe/NAME.c. It reads top to bottom: the method in two lines (with its ROUTERS.md
//     section), its options, then static functions for the ops below, and ends with its registry
//     entry `const struct router_ops router_NAME = {.add_params = ..., ...};` (prototype.c and
//     expert_choice.c are the models). Its per-layer state is a struct it allocates in add_params
//     into ctx->router_state and frees in destroy (router_free_state when one free() suffices).
//  2. Add the row ROW(NAME) to the list in src/config/routers.h. That row makes NAME a value of
//     model.moe.router (`promoe config --list` shows it) and puts router_NAME in the registry
//     (registry.c).
//  3. Options: a router reads its options from ctx->cfg (add rows to the config key table, with
//     their doc line, for new ones); cross-key rules go in its `check`; its auxiliary losses are
//     rows of enum moe_aux (their metric names, logged as aux/NAME) that it declares in `aux`.
//  4. Tests: tests/test_router_NAME.c (plans on small inputs, checkpoints) and, in double
//     precision, tests/f64_router_NAME.c (finite-difference gradients, tests/gradcheck.h), and a
//     mini config experiments/mini/NAME.yaml.
// Nothing else lists routers: the model, the trainer and the statistics see only routing plans.
//
// A router sees its layer through struct router_context only: what it reads (spec, cfg, shape,
// mode), what it owns (router_state), and what it writes (plan entries through plan_add, and aux).
// The experts, their activations and the dispatch belong to the layer (moe.c).
#ifndef PROMOE_MOE_ROUTER_H
#define PROMOE_MOE_ROUTER_H

#include <stdint.h>

#include "core/arena.h"
#include "core/real.h"
#include "moe/spec.h"
#include "nn/params.h"

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

// Auxiliary losses of the last training forward, already multiplied by their weights.
// AUX_PLR is the model's (per-layer heads on MoE blocks, model/plr.c), not a router's.
enum moe_aux { AUX_BALANCE, AUX_RCL, AUX_ROUTER_SIM, AUX_CLS, AUX_CAPACITY, AUX_PLR, AUX_COUNT };
extern const char *const moe_aux_names[AUX_COUNT];   // metric names: "balance", "rcl", ...
#define AUX_BIT(kind) (1u << (kind))

// Router-specific keys of model.moe, for router_ops.reads.
enum router_reads {
    ROUTER_READS_ACTIVATION = 1u << 0,          // model.moe.activation
    ROUTER_READS_ALPHA = 1u << 1,               // model.moe.alpha
    ROUTER_READS_CAPACITY = 1u << 2,            // model.moe.capacity
    ROUTER_READS_THRESHOLD_MOMENTUM = 1u << 3,  // model.moe.threshold_momentum
    ROUTER_READS_SUPERCLASSES = 1u << 4,        // model.moe.superclasses
    ROUTER_READS_RACE_MOMENTUM = 1u << 5,       // model.moe.race_momentum
    ROUTER_READS_KMEANS = 1u << 6,              // model.moe.kmeans.*
};

// What a router may read and write. struct moe_layer (moe.h) begins with these same fields, so
// the layer passes &L->ctx and its own code keeps writing L->spec.
#define ROUTER_CONTEXT_FIELDS                                                                   \
    /* read only */                                                                             \
    struct moe_spec spec;                                                                       \
    const struct config *cfg;                                                                   \
    int block, D, num_classes;                                                                  \
    int training;          /* set by the model: training routes and losses, or inference */     \
    int update_buffers;    /* a training forward may update buffers (centroids, thresholds) */ \
    uint64_t seed;         /* for routers that draw (k-means initialisation) */                 \
    int64_t step;                                                                               \
    int *labels;           /* [B] labels of the current forward */                              \
    /* owned by the router: allocated in add_params, freed by its destroy */                    \
    void *router_state;                                                                         \
    /* written: entries through plan_add, and the router's declared auxiliary losses */         \
    struct routing_plan plan;                                                                   \
    double aux[AUX_COUNT];

struct router_context {
    ROUTER_CONTEXT_FIELDS
};

// The names of an expert's two linears in checkpoints, as the method's official model class has
// them: ProMoE's MoeMLP (up_proj, down_proj; the default, 0) or the timm Mlp that TC-DiT, EC-DiT
// and DiffMoE build their experts from (fc1, fc2). Shared experts keep ProMoE's names.
enum expert_naming { EXPERT_NAMES_UP_DOWN = 0, EXPERT_NAMES_FC };

// A routing method's registry entry (registry.h looks them up): its ops, default activation, option checks and losses.
struct router_ops {
    // model.moe.activation "default" resolves to this (enum moe_activation).
    int default_activation;
    // Cross-key rules of the router's options (NULL: none); errors name the keys and values.
    int (*check)(const struct moe_spec *spec, const struct config *cfg);
    // The auxiliary losses its plan writes into ctx->aux: AUX_BIT(AUX_RCL) | ...
    unsigned aux;
    // The router-specific model.moe keys it reads (ROUTER_READS_*); moe/option_use.c reports any
    // other one set away from its default, since it would change the run id and nothing else.
    unsigned reads;
    // The tensor names of its routed and unconditional experts (enum expert_naming).
    int expert_names;
    // 1 when its inference ranks tokens over the whole forward batch (DiffMoE's capacity, ROUTERS.md
    // 3.3), so samples depend on the sampler's pass size (sample.batch); 0 when per token or sample.
    int pass_dependent;
    // Registers the router's tensors under prefix ("blocks.3.mlp"): trainable ones and buffers
    // (trainable = 0: saved in checkpoints, copied into the EMA weights). Allocates router_state.
    int (*add_params)(struct router_context *L, struct param_table *t, const char *prefix);
    // Points the router at its tensors in a buffer of the table's layout (weights or gradients).
    void (*bind)(struct router_context *L, const struct param_table *t, const char *prefix, real *base,
                 int grads);
    // Routed slots needed at most for B samples of T tokens (sizes the arena).
    int (*max_slots)(const struct router_context *L, int B, int T);
    // Carves the router's activations out of the arena (measuring pass when the base is NULL).
    void (*layout)(struct router_context *L, struct arena *a, int B, int T);
    // Adds the routed entries for the tokens of samples with routed[b] = 1; x [B*T, D].
    // In training also computes the weighted auxiliary losses into L->aux.
    void (*plan)(struct router_context *L, const real *x, const int *routed, int B, int T);
    // From plan.d_gate and the auxiliary losses: accumulates router parameter gradients and
    // adds into d_x [B*T, D].
    void (*backward)(struct router_context *L, const real *x, const int *routed, int B, int T, real *d_x);
    // Frees router_state and whatever it owns.
    void (*destroy)(struct router_context *L);
};

// Helpers shared by routers. Registers "<prefix>.<suffix>" ([d0] or [d0, d1]); trainable = 0 makes a
// buffer. Returns 0 or -1.
int router_add_tensor(struct param_table *t, const char *prefix, const char *suffix, int ndim, int64_t d0,
                      int64_t d1, enum param_init init, double std, int trainable);
// The tensor "<prefix>.<suffix>" in a buffer of the table's layout (absent: a bug).
real *router_tensor(const struct param_table *t, real *base, const char *prefix, const char *suffix);
// The prototypes of the prototype routers (ProMoE's token- and expert-choice forms): a zeroed
// router_state of state_size bytes and "<prefix>.cluster_centers" [E_r, D], N(0, 0.02^2) [C].
int router_add_prototypes(struct router_context *L, struct param_table *t, const char *prefix, size_t state_size);
// Points *weights (grads = 0) or *gradients (grads = 1) at the prototypes in base.
void router_bind_prototypes(const struct param_table *t, const char *prefix, real *base, int grads, real **weights,
                            real **gradients);
// d_s [N, E] = dLoss/dgate of each routed slot at (token, expert), zero elsewhere.
void plan_gate_gradients(const struct routing_plan *p, real *d_s, int N, int E);
// destroy for a router whose state is one allocation.
void router_free_state(struct router_context *L);

#endif
