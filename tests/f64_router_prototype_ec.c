// Finite-difference gradient checks (double build, tests/gradcheck.h) of whole tiny DiTs with the
// ProMoE-EC router (ROUTERS.md 3.11; src/moe/prototype_ec.c): the gate gradient flows through the
// scores at the taken (sample, expert, token) entries, the activation backward along each expert's
// token row (softmax over the sample's tokens), the cosine into the prototypes and the MoE input;
// the per-sample routing contrastive loss adds its gradient through the means of the chosen tokens
// and the prototypes. T = 16 tokens (8x8 images, patch 2), D = 16, batch of 3 with one null-label
// sample; gradcheck.h skips a perturbation that changes a routing choice (at most a quarter).
#include "gradcheck.h"

int main(void)
{
    rng_init(&test_rng, 8642, 0, RNG_TEST, 0);
    // The official recipe: E_r = 4 routed, shared and unconditional experts, identity scores,
    // capacity 1 (k = 4), RCL on; the null-label sample goes to the unconditional expert.
    const char *official[] = {"model.moe.experts=E6A1S1U1", "model.moe.router=prototype_ec",
                              "model.moe.conditional=true", "loss.rcl.weight=0.7"};
    gradcheck_dit("prototype_ec identity+rcl conditional", official, 4);
    // Softmax over each expert's tokens, alpha 3, capacity 2.5 (k = 10), MoE in both blocks.
    const char *softmax[] = {"model.moe.experts=E4A1S0U0", "model.moe.router=prototype_ec",
                             "model.moe.activation=softmax", "model.moe.alpha=3", "model.moe.capacity=2.5",
                             "model.moe.first=0", "model.moe.every=1", "loss.rcl.weight=1.5"};
    gradcheck_dit("prototype_ec softmax k=10 both blocks", softmax, 8);
    // Sigmoid, E_r = 5 (k = 3), tau 0.5; loss.balance.weight must add nothing (no balance loss).
    const char *sigmoid[] = {"model.moe.experts=E6A1S1U0", "model.moe.router=prototype_ec",
                             "model.moe.activation=sigmoid", "loss.rcl.tau=0.5", "loss.rcl.weight=2",
                             "loss.balance.weight=0.5"};
    gradcheck_dit("prototype_ec sigmoid k=3 balance ignored", sigmoid, 6);
    // Capacity E_r: every expert takes every token (k = T); RCL means over the whole sample.
    const char *full[] = {"model.moe.experts=E3A1S0U0", "model.moe.router=prototype_ec",
                          "model.moe.capacity=3", "model.moe.conditional=false"};
    gradcheck_dit("prototype_ec k=T", full, 4);
    return test_summary("f64_router_prototype_ec");
}
