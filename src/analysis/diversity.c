// Diversity of a layer's experts: one SVD per expert, then pairwise overlaps at every k.
#include "analysis/diversity.h"

#include <stdlib.h>

#include "analysis/subspace.h"
#include "core/error.h"

const char *const diversity_variant_names[DIVERSITY_VARIANTS] = {"out", "in"};
const int diversity_ks[DIVERSITY_KS] = {1, 2, 4, 8, 16, 32, 64};

int diversity_of_matrices(const double *matrices, int E, int D, int h, const int *ks, int n_k, double *values)
{
    int k_max = 0, small = D < h ? D : h;
    for (int i = 0; i < n_k; i++) {
        if (ks[i] < 1 || ks[i] > small) return err("k %d is outside [1, %d] for experts of shape [%d, %d]", ks[i], small, D, h);
        k_max = ks[i] > k_max ? ks[i] : k_max;
    }
    if (E < 2) return err("diversity needs at least 2 experts, got %d", E);
    double *bases = malloc(sizeof(double) * (size_t)E * k_max * D);
    if (!bases) return err("out of memory for %d bases of %d vectors", E, k_max);
    int rc = 0;
    for (int e = 0; !rc && e < E; e++)
        if (subspace_basis(matrices + (size_t)e * D * h, D, h, k_max, bases + (size_t)e * k_max * D) < 0)
            rc = err_context("expert %d", e);
    for (int i = 0; !rc && i < n_k; i++) values[i] = subspace_mean_similarity(bases, E, D, k_max, ks[i]);
    free(bases);
    return rc;
}

int diversity_expert_count(const struct moe_layer *L, int include_all)
{
    return include_all ? L->spec.routed + L->spec.uncond + L->spec.shared : L->spec.routed;
}

// Expert i of the compared set: routed and unconditional experts first (L->w), then shared.
static const struct expert_tensors *expert_at(const struct moe_layer *L, int i)
{
    int in_w = L->spec.routed + L->spec.uncond;
    return i < in_w ? &L->w[i] : &L->shared_w[i - in_w];
}

int diversity_layer_matrices(const struct moe_layer *L, int variant, int include_all, double **matrices)
{
    int E = diversity_expert_count(L, include_all), D = L->D, h = L->spec.hidden;
    *matrices = malloc(sizeof(double) * (size_t)E * D * h);
    if (!*matrices) return err("out of memory for the expert matrices of block %d", L->block);
    for (int e = 0; e < E; e++) {
        const struct expert_tensors *x = expert_at(L, e);
        double *out = *matrices + (size_t)e * D * h;
        for (int d = 0; d < D; d++)
            for (int j = 0; j < h; j++)
                out[(size_t)d * h + j] = variant == DIVERSITY_OUT ? x->down_w[(size_t)d * h + j] : x->up_w[(size_t)j * D + d];
    }
    return 0;
}
