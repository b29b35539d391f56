// Router score helpers shared by the routing methods: the score activation (softmax over the
// routed experts, sigmoid, identity) and its backward, deterministic top-k, and the Switch
// load-balancing loss (ROUTERS.md 3.10), and the row normalisation of cosine scores.
#ifndef PROMOE_MOE_SCORES_H
#define PROMOE_MOE_SCORES_H

#include "core/real.h"

// s [n, E] = activation(z [n, E]) row by row.
void scores_activate(real *s, const real *z, int n, int E, int activation);
// d_z [n, E] = d_s pulled back through the activation (overwritten).
void scores_activate_backward(real *d_z, const real *d_s, const real *s, int n, int E, int activation);
// Cosine scores (prototype routers, ROUTERS.md 3.7): out [n, D] = rows of v over their L2 norms,
// norms [n] clamped below at 1e-12 as F.normalize does.
void normalise_rows(real *out, real *norms, const real *v, int n, int D);
// Its backward: d_v [n, D] += (d_hat - <d_hat, v_hat> v_hat) / |v| row by row.
void normalise_rows_backward(real *d_v, const real *d_hat, const real *v_hat, const real *norms, int n, int D);
// The k largest entries of s [E] into index [k], largest first; ties go to the lower index.
void topk_row(const real *s, int E, int k, int *index);

// Load-balancing loss over the routed tokens (rows with routed_token[n] = 1) of s [n, E] whose
// top-k choices are topk [n, k]: L = weight * sum_e f_e P_e with f_e = E * count_e / (N k),
// P_e = mean over tokens of pi, pi = s for softmax scores, softmax(s) otherwise. Returns L.
// global: f and P over every rank's tokens (moe/pool.h); all ranks must call it together.
// Pools of pool_tokens consecutive tokens (n for one pool) each have their own f and P, and L is
// the mean of their losses (moe/pool.h, scope samples).
double balance_loss(const real *s, const int *topk, const int *routed_token, int n, int pool_tokens, int E,
                    int k, int activation, double weight, int global);
// d_s [n, E] += dL/ds of the same loss (with global, this rank's share times the world size).
void balance_loss_backward(real *d_s, const real *s, const int *topk, const int *routed_token, int n,
                           int pool_tokens, int E, int k, int activation, double weight, int global);

#endif
