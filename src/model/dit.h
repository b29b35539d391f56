// The Diffusion Transformer (DiT, adaLN-Zero) of ROUTERS.md section 1: patch embedding + fixed
// position table, timestep and label embedders, `depth` blocks, final adaLN layer, unpatchify.
// Parameters live in one buffer described by the table; the model binds named pointers into any
// buffer of that layout (weights, gradients, EMA). Activations live in one arena sized for
// max_batch at creation; forward and backward allocate nothing.
#ifndef PROMOE_DIT_H
#define PROMOE_DIT_H

#include "config/config.h"
#include "core/arena.h"
#include "core/blas.h"
#include "nn/params.h"
#include "model/plr.h"
#include "moe/moe.h"

struct dit_shape {
    int channels, size, patch, grid, tokens;  // C, S, p, S/p, T
    int hidden, depth, heads, mlp_hidden;     // D, depth, H, 4D
    int num_classes, out_channels;            // classes (null label = num_classes), C_out
};

// Named pointers into a buffer of the table's layout.
struct dit_block_tensors {
    real *ada_w, *ada_b, *qkv_w, *qkv_b, *proj_w, *proj_b, *fc1_w, *fc1_b, *fc2_w, *fc2_b;
};
struct dit_tensors {
    real *pos, *x_w, *x_b, *t_w1, *t_b1, *t_w2, *t_b2, *y_table;
    real *final_ada_w, *final_ada_b, *final_w, *final_b;
    struct dit_block_tensors *blocks;   // [depth]
};

// Saved forward activations of one block (shapes for N = B*T tokens).
struct dit_block_acts {
    real *ada;                        // [B, 6D]
    real *ln1_mean, *ln1_rstd;        // [N]
    real *mod1;                       // [N, D]  attention input
    real *qkv;                        // [N, 3D] (bias included by the attention forward)
    real *probs;                      // [B, H, T, T]
    real *att;                        // [N, D]  heads concatenated
    real *proj;                       // [N, D]  attention branch output, without proj's bias
    real *x_mid;                      // [N, D]  residual after attention
    real *ln2_mean, *ln2_rstd;        // [N]
    real *mod2;                       // [N, D]  MLP input (the MoE input u)
    real *fc1;                        // [N, 4D] pre-activation without fc1's bias (GELU adds it)
    real *mlp;                        // [N, D]  MLP branch output (dense: without fc2's bias)
};

struct dit_acts {
    int *labels;                      // [B]
    real *t;                          // [B] model time input
    real *patches;                    // [N, C p p]
    real *resid;                      // [depth + 1][N, D]: block inputs, then the final input
    real *t_freq, *t_hidden, *t_act;  // [B, 256], [B, D], [B, D]
    real *c, *silu_c;                 // [B, D]
    real *final_ada;                  // [B, 2D]
    real *lnf_mean, *lnf_rstd;        // [N]
    real *final_mod;                  // [N, D]
    real *out_tokens;                 // [N, p p C_out]
    real *out;                        // [B, C_out, S, S]
    struct dit_block_acts *blocks;    // [depth]
    // backward scratch
    real *d_x, *d_mod, *d_branch, *d_att;   // [N, D]
    real *d_qkv;                            // [N, 3D]
    // one block's MLP at a time (layout_mlp_scratch): GELU output and derivative, then dLoss/dGELU
    // and dLoss/dfc1 in place; an MoE layer's scratch overlays the same region
    real *mlp_post, *gelu_deriv, *d_fc1;    // [N, 4D]
    real *d_tokens;                         // [N, p p C_out]
    real *d_ada, *d_final_ada;              // [B, 6D], [B, 2D]
    real *d_silu_c, *d_c, *d_t_act, *d_t_hidden;  // [B, D]
    real *attention_scratch;                // [threads, T, T]
};

struct dit {
    struct config cfg;        // a copy: MoE layers keep pointers into it
    struct dit_shape shape;
    struct param_table table;
    struct dit_tensors w;     // bound to the weights in use (training or EMA)
    struct dit_tensors g;     // bound to the gradient buffer
    struct arena arena;
    struct dit_acts acts;
    int max_batch;
    int max_threads;          // OpenMP threads the activations are sized for (thread scratch)
    enum matmul_precision precision;   // of the products (cfg.precision; routers stay fp32)
    struct moe_layer **moe;   // [depth]: the block's MoE layer, NULL for a dense MLP
    int training;             // routers train (capacity, aux losses) or infer
    int update_buffers;       // training forwards update router buffers (centroids, thresholds)
    int64_t step;             // training step of the forward (routers' random streams)
    const real *aux_target;   // [B, C, S, S] the diffusion target, for per-layer regularisation
    struct plr_heads plr;     // Expert Race's per-layer regularisation heads (model/plr.h)
};

// Shape from a config (validated). Fills the parameter table; allocates the arena for max_batch
// (0: no activations, for counting parameters). Per-thread scratch is sized for max_threads: the
// larger of omp_get_max_threads() at this call and the processors available, so that a run may
// take more threads later (up to max_threads) without a new model. A bf16 model (train.precision)
// starts its products (core/gemm_bf16.h) here; on a processor without AVX512-BF16 it fails with a
// message saying so.
int dit_create(struct dit *m, const struct config *cfg, int max_batch);
void dit_destroy(struct dit *m);
void dit_bind_weights(struct dit *m, real *weights);
void dit_bind_grads(struct dit *m, real *grads);

// out [B, C_out, S, S] = model(x [B, C, S, S], t [B], labels [B]); returns m->acts.out.
real *dit_forward(struct dit *m, const real *x, const real *t, const int *labels, int B);
// Accumulates parameter gradients (into the bound gradient buffer) of sum(d_out * out) for the
// last forward.
void dit_backward(struct dit *m, const real *d_out, int B);
// Auxiliary losses of the last training forward summed over MoE layers (weighted), per kind;
// returns their total.
double dit_aux_losses(const struct dit *m, double per_kind[AUX_COUNT]);

#endif
