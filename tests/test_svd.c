// Expert diversity (ROUTERS.md 4.1) on synthetic experts through the library: identical experts
// give similarity 1, experts spanning orthogonal subspaces give 0, the layer mean does not depend
// on the order of the experts, random experts sit at the random-subspace level k / D, and the
// expert matrices are taken in the [D, h] orientation for both variants.
#include <stdlib.h>
#include <string.h>

#include "analysis/diversity.h"
#include "analysis/subspace.h"
#include "check.h"
#include "core/error.h"
#include "core/rng.h"

enum { D = 64, H = 128, E = 8 };

static void fill_normal(double *x, size_t n, uint32_t index)
{
    struct rng r;
    rng_init(&r, 7, 0, RNG_TEST, index);
    for (size_t i = 0; i < n; i++) x[i] = rng_normal(&r);
}

static double *experts(void)
{
    return calloc((size_t)E * D * H, sizeof(double));
}

static void test_identical(void)
{
    double *m = experts(), values[DIVERSITY_KS];
    fill_normal(m, (size_t)D * H, 1);
    for (int e = 1; e < E; e++) memcpy(m + (size_t)e * D * H, m, sizeof(double) * D * H);
    CHECK(diversity_of_matrices(m, E, D, H, diversity_ks, DIVERSITY_KS, values) == 0, "%s", err_message());
    for (int i = 0; i < DIVERSITY_KS; i++) CHECK_NEAR(values[i], 1.0, 1e-9, "identical experts");
    free(m);
}

// Expert e has rank K, its columns in the rows e*K .. e*K+K-1 only: pairwise orthogonal spans.
static void test_orthogonal(void)
{
    enum { K = 4 };
    double *m = experts(), *block = malloc(sizeof(double) * K * H), value;
    int k = K;
    for (int e = 0; e < E; e++) {
        fill_normal(block, (size_t)K * H, 10 + e);
        memcpy(m + (size_t)e * D * H + (size_t)e * K * H, block, sizeof(double) * K * H);
    }
    CHECK(diversity_of_matrices(m, E, D, H, &k, 1, &value) == 0, "%s", err_message());
    CHECK_NEAR(value, 0.0, 1e-12, "orthogonal experts");
    free(block);
    free(m);
}

static void test_order_and_random_level(void)
{
    double *m = experts(), *permuted = experts(), values[DIVERSITY_KS], again[DIVERSITY_KS];
    int order[E] = {5, 2, 7, 0, 3, 6, 1, 4}, n_k = 5;   // k 1..16 (min(D, H) = 64 allows all 7)
    fill_normal(m, (size_t)E * D * H, 2);
    for (int e = 0; e < E; e++) memcpy(permuted + (size_t)e * D * H, m + (size_t)order[e] * D * H, sizeof(double) * D * H);
    CHECK(diversity_of_matrices(m, E, D, H, diversity_ks, n_k, values) == 0, "%s", err_message());
    CHECK(diversity_of_matrices(permuted, E, D, H, diversity_ks, n_k, again) == 0, "%s", err_message());
    for (int i = 0; i < n_k; i++) {
        CHECK_NEAR(again[i], values[i], 1e-12, "permuted experts");
        // Gaussian experts have uniformly random singular subspaces: E[phi] = k / D, and one pair's
        // phi has standard deviation about sqrt(2) / D (0.022 for D 64); the mean over 28 pairs
        // about 0.005 even allowing for correlated pairs. 0.025 is five of those.
        CHECK_NEAR(values[i], (double)diversity_ks[i] / D, 0.025, "random experts at k / D");
    }
    free(m);
    free(permuted);
}

static void test_errors(void)
{
    double m[2 * 3 * 2] = {1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1}, value;
    int k = 3;
    CHECK(diversity_of_matrices(m, 2, 2, 3, &k, 1, &value) == -1, "k beyond min(D, h) refused");
    CHECK(strstr(err_message(), "k 3 is outside [1, 2]") != NULL, "message: %s", err_message());
    k = 1;
    CHECK(diversity_of_matrices(m, 1, 2, 3, &k, 1, &value) == -1, "one expert refused");
}

// down_proj [D, h] is taken as is; up_proj [h, D] transposed, so both give [D, h].
static void test_orientation(void)
{
    enum { d = 2, h = 3 };
    real up[2][h * d] = {{1, 2, 3, 4, 5, 6}, {7, 8, 9, 10, 11, 12}};
    real down[2][d * h] = {{-1, -2, -3, -4, -5, -6}, {-7, -8, -9, -10, -11, -12}};
    struct expert_tensors w[2] = {{up[0], NULL, down[0], NULL}, {up[1], NULL, down[1], NULL}};
    struct moe_layer L;
    memset(&L, 0, sizeof L);
    L.D = d;
    L.spec.hidden = h;
    L.spec.routed = 2;
    L.w = w;
    double *out = NULL, *in = NULL;
    CHECK(diversity_expert_count(&L, 0) == 2, "routed experts");
    CHECK(diversity_layer_matrices(&L, DIVERSITY_OUT, 0, &out) == 0, "%s", err_message());
    CHECK(diversity_layer_matrices(&L, DIVERSITY_IN, 0, &in) == 0, "%s", err_message());
    CHECK(out && out[1 * h + 2] == -6, "out: expert 0 [1, 2] = %g", out ? out[5] : 0);
    CHECK(out && out[d * h + 0] == -7, "out: expert 1 [0, 0]");
    // up [h, D] row j = (2j+1, 2j+2): transposed [d][j] = up[j * d + d']
    CHECK(in && in[0 * h + 2] == 5 && in[1 * h + 0] == 2, "in: transposed up_proj");
    CHECK(in && in[d * h + 1 * h + 2] == 12, "in: expert 1");
    free(out);
    free(in);
}

int main(void)
{
    test_identical();
    test_orthogonal();
    test_order_and_random_level();
    test_errors();
    test_orientation();
    return test_summary("test_svd");
}
