// Finite-difference gradient checks (double build, gradcheck.h) of the classification router
// (ROUTERS.md 3.6) inside a tiny DiT: the classifier and everything upstream of the MoE input
// receive the gate-path gradient (through softmax, sigmoid or identity) and the cross-entropy's,
// with conditional routing on and off, one or two MoE layers. A routing flip under the 1e-4
// perturbation would show as an error of order 1, so passing checks also show none happened.
#include <unistd.h>

#include "gradcheck.h"

static char tmp_dir[] = "/tmp/promoe_f64_cls_XXXXXX";
static char map_two[128], map_three[128];

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL, "cannot write %s", path);
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

// gradcheck_dit's tiny DiT has 3 classes (label 3 = null); maps onto 2 and onto 3 superclasses.
static void write_maps(void)
{
    snprintf(map_two, sizeof map_two, "%s/two.txt", tmp_dir);
    snprintf(map_three, sizeof map_three, "%s/three.txt", tmp_dir);
    write_file(map_two, "# 3 classes onto 2 superclasses\n0 0\n1 1\n2 1\n");
    write_file(map_three, "0 2\n1 0  # a comment after the pair\n\n2 1\n");
}

static void check_config(const char *name, const char *map, const char *const *sets, int n_sets)
{
    char set_map[192];
    const char *all[16];
    snprintf(set_map, sizeof set_map, "model.moe.superclasses=%s", map);
    all[0] = "model.moe.router=classification";
    all[1] = set_map;
    for (int i = 0; i < n_sets; i++) all[2 + i] = sets[i];
    gradcheck_dit(name, all, 2 + n_sets);
}

int main(void)
{
    rng_init(&test_rng, 1234, 0, RNG_TEST, 0);
    if (!mkdtemp(tmp_dir)) {
        perror("mkdtemp");
        return 1;
    }
    write_maps();
    // Conditional routing, softmax gates, cross-entropy on: the null-label sample bypasses the router.
    const char *softmax_ce[] = {"model.moe.experts=E4A1S1U1", "model.moe.conditional=true", "loss.cls.weight=0.7"};
    check_config("classification softmax + ce", map_two, softmax_ce, 3);
    // Pools of one sample each (moe/pool.h): the cross-entropy is the mean of the pools'.
    const char *pools[] = {"model.moe.experts=E4A1S1U1", "model.moe.conditional=true", "loss.cls.weight=0.7",
                           "model.moe.pool_scope=samples", "model.moe.pool_samples=1"};
    check_config("classification softmax + ce, pools of 1 sample", map_two, pools, 5);
    // The gate path alone (no cross-entropy).
    const char *gate_only[] = {"model.moe.experts=E4A1S1U1", "model.moe.conditional=true", "loss.cls.weight=0"};
    check_config("classification softmax gate only", map_two, gate_only, 3);
    // Conditional routing off: the null-label sample is routed, but excluded from the cross-entropy.
    const char *identity[] = {"model.moe.experts=E2A1S0U0", "model.moe.activation=identity", "loss.cls.weight=1.3"};
    check_config("classification identity unconditional", map_two, identity, 3);
    // Sigmoid gates, 3 superclasses, MoE in both blocks, 2 shared experts.
    const char *sigmoid[] = {"model.moe.experts=E5A1S2U0", "model.moe.activation=sigmoid", "model.moe.first=0",
                             "model.moe.every=1", "loss.cls.weight=2"};
    check_config("classification sigmoid 2 layers", map_three, sigmoid, 5);
    unlink(map_two);
    unlink(map_three);
    rmdir(tmp_dir);
    return test_summary("f64_router_classification");
}
