// Expert diversity of a MoE layer (Fig. 1b, ROUTERS.md 4.1): each expert's matrix oriented
// [D, h] so that its left singular vectors live in the model space R^D shared by all experts
// (variant out: the output projection down_proj [D, h]; variant in: the transposed input
// projection up_proj [h, D], i.e. its right singular vectors), top-k bases by SVD, and the mean
// subspace similarity over expert pairs for a list of k. Lower = more diverse; random subspaces
// give about k / D.
#ifndef PROMOE_DIVERSITY_H
#define PROMOE_DIVERSITY_H

#include "moe/moe.h"

enum diversity_variant { DIVERSITY_OUT, DIVERSITY_IN, DIVERSITY_VARIANTS };
extern const char *const diversity_variant_names[DIVERSITY_VARIANTS];   // "out", "in"

// The k of the stored curve (those <= min(D, h) apply).
enum { DIVERSITY_KS = 7 };
extern const int diversity_ks[DIVERSITY_KS];   // 1, 2, 4, ..., 64

// values [n_k] = mean pairwise similarity of E matrices [E][D, h] at each ks[i] (<= min(D, h));
// E >= 2.
int diversity_of_matrices(const double *matrices, int E, int D, int h, const int *ks, int n_k, double *values);

// The experts of layer L that diversity compares: the routed ones, or with include_all also the
// unconditional and shared experts. Returns their count.
int diversity_expert_count(const struct moe_layer *L, int include_all);

// matrices [count][D, h] in double of those experts for a variant (allocated; caller frees).
int diversity_layer_matrices(const struct moe_layer *L, int variant, int include_all, double **matrices);

#endif
