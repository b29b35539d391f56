// K-means routing (ROUTERS.md 3.5) in double precision: finite-difference checks of whole tiny
// DiTs with k-means MoE layers (the gate is the constant 1, so gradients reach the backbone only
// through the experts: the router must add nothing), with and without conditional routing, with
// 0 and 2 shared experts; and the centroid update equal to the means of the assigned tokens to
// rounding (1e-12).
// Selection under the 1e-4 step: gradcheck_dit freezes the buffers (update_buffers 0) and gives
// the centroids random N(0, 0.3^2) values, so nearest-centroid gaps are O(0.1) and no assignment
// changes in these cases; one that did would jump the loss by O(0.1), a numeric derivative of
// O(1e3), far outside the 1e-5 limit, so the checks would show it.
#include <omp.h>

#include "gradcheck.h"

// One layer's centroids after a training forward = the means of the tokens it assigned to them
// (momentum 0), or m c + (1 - m) mean (model.moe.kmeans.momentum m), with the centroids the
// assignment used.
static void test_update_is_mean(double momentum)
{
    struct config cfg;
    struct param_table table = {0};
    struct moe_layer L;
    struct arena a = {0};
    enum { B = 3, T = 12, D = 8 };
    config_defaults(&cfg);
    const char *sets[] = {"model.hidden=8", "model.moe.experts=E6A1S1U1", "model.moe.conditional=true",
                          "model.moe.router=kmeans", "data.num_classes=3"};
    for (size_t i = 0; i < sizeof sets / sizeof *sets; i++) config_set(&cfg, sets[i]);
    cfg.moe_kmeans_momentum = momentum;
    CHECK(moe_create(&L, &cfg, 1, &table) == 0, "moe_create: %s", err_message());
    real *w = calloc(table.total, sizeof(real)), x[B * T * D], y[B * T * D], before[6 * D];
    params_init(&table, w, 5);
    moe_bind(&L, &table, w, 0);
    moe_layout(&L, &a, B, T);
    arena_allocate(&a);
    moe_layout(&L, &a, B, T);
    real *c = w + params_find(&table, "blocks.1.mlp.kmeans_centroids")->offset;
    int labels[B] = {2, 3, 0}, E = L.spec.routed;
    L.training = L.update_buffers = 1;
    for (int step = 0; step < 3; step++) {
        fill_normal(x, B * T * D, 1);
        L.step = step;
        memcpy(before, c, sizeof(real) * E * D);   // the E_r routed experts' centroids [E_r, D]
        int drawn = step == 0;   // the first forward draws the centroids before it assigns
        moe_forward(&L, y, x, labels, B, T);
        if (drawn && momentum != 0) continue;   // its prior, the draw, is not seen from here
        double worst = 0;
        for (int e = 0; e < E; e++) {
            const struct routing_plan *p = &L.plan;
            int count = p->offset[e + 1] - p->offset[e];
            for (int d = 0; count && d < D; d++) {
                double sum = 0;
                for (int s = p->offset[e]; s < p->offset[e + 1]; s++) sum += x[p->token[s] * D + d];
                double m = momentum, prior = before[e * D + d];
                worst = fmax(worst, fabs(m * prior + (1 - m) * sum / count - c[e * D + d]));
            }
        }
        CHECK(worst < 1e-12, "step %d, momentum %g: centroids differ from the update by %.3g", step, momentum, worst);
    }
    moe_destroy(&L);
    params_free(&table);
    arena_free(&a);
    free(w);
}

int main(void)
{
    rng_init(&test_rng, 4321, 0, RNG_TEST, 0);
    omp_set_num_threads(1);   // results do not depend on it; one thread avoids idle spinning on a busy machine
    const char *cond[] = {"model.moe.experts=E6A1S1U1", "model.moe.router=kmeans", "model.moe.conditional=true"};
    gradcheck_dit("dit kmeans conditional", cond, 3);
    const char *nocond[] = {"model.moe.experts=E5A1S1U0", "model.moe.router=kmeans", "model.moe.conditional=false"};
    gradcheck_dit("dit kmeans unconditional", nocond, 3);
    const char *no_shared[] = {"model.moe.experts=E4A1S0U0", "model.moe.router=kmeans", "model.moe.first=0",
                               "model.moe.every=1"};
    gradcheck_dit("dit kmeans no shared, every block", no_shared, 4);
    const char *two_shared[] = {"model.moe.experts=E7A1S2U1", "model.moe.router=kmeans",
                                "model.moe.conditional=true", "model.moe.hidden=12"};
    gradcheck_dit("dit kmeans 2 shared", two_shared, 4);
    // Options (ROUTERS.md 3.5 [R]): softmax(-d^2) gates send gradient into the tokens, under both
    // distances; cosine distance with gate 1 sends none.
    const char *softmax_gate[] = {"model.moe.experts=E6A1S1U1", "model.moe.router=kmeans",
                                  "model.moe.conditional=true", "model.moe.kmeans.gate=softmax"};
    gradcheck_dit("dit kmeans softmax(-d^2) gate", softmax_gate, 4);
    const char *cosine_softmax[] = {"model.moe.experts=E6A1S1U1", "model.moe.router=kmeans",
                                    "model.moe.conditional=true", "model.moe.kmeans.gate=softmax",
                                    "model.moe.kmeans.distance=cosine"};
    gradcheck_dit("dit kmeans cosine distance, softmax(-d^2) gate", cosine_softmax, 5);
    const char *cosine[] = {"model.moe.experts=E5A1S1U0", "model.moe.router=kmeans",
                            "model.moe.kmeans.distance=cosine"};
    gradcheck_dit("dit kmeans cosine distance", cosine, 3);
    test_update_is_mean(0);
    test_update_is_mean(0.75);
    return test_summary("f64_router_kmeans");
}
