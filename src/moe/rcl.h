// Routing contrastive loss (ProMoE Eq. 6, ROUTERS.md 3.9): each active expert's prototype should be
// closer (cosine) to the centroid of its own tokens than to the other active experts' centroids.
#ifndef PROMOE_MOE_RCL_H
#define PROMOE_MOE_RCL_H

#include "core/real.h"

// Scratch for E experts of width D.
struct rcl_work {
    real *centroid;     // [E, D] mean of the (not detached) tokens assigned to each expert
    int *count;         // [E]
    int *active;        // [E] active experts in increasing order, n_active of them
    int n_active;
    real *q;            // [E, E] row softmax of s / tau over the active experts
    real *p_norm, *m_norm;   // [E]
    int global;         // centroids over every rank's tokens (model.moe.pool_scope global)
};

// Loss weight * L_RCL over the tokens x [N, D] with routed_token[n] = 1, each assigned to its top-k
// experts topk [N, k]; prototypes p [E, D].
double rcl_forward(struct rcl_work *w, const real *x, const real *p, const int *topk,
                   const int *routed_token, int N, int D, int E, int k, double tau, double weight);
// Adds the gradient of the same loss into d_p [E, D] and d_x [N, D].
void rcl_backward(struct rcl_work *w, real *d_p, real *d_x, const real *p, const int *topk,
                  const int *routed_token, int N, int D, int E, int k, double tau, double weight);

#endif
