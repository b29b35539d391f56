// Finite-difference gradient checks (double build, tests/gradcheck.h) of whole tiny DiTs with the
// expert-choice router (ROUTERS.md 3.2): the gate gradient flows through S at the taken
// (token, expert) pairs, the activation backward over the routed experts, into W_r and the MoE
// input. T = 16 tokens (8x8 images, patch 2), D = 16, random weights of std 0.3: the k-th and
// (k+1)-th scores of each expert are far apart next to the finite-difference step, so no choice
// flips (with these seeds gradcheck.h's routing signature skipped no perturbation at all).
#include "gradcheck.h"

int main(void)
{
    rng_init(&test_rng, 4321, 0, RNG_TEST, 0);
    // E_r = 4, capacity 1: k = 4 tokens per expert and sample, softmax scores.
    const char *base[] = {"model.moe.experts=E4A1S0U0", "model.moe.router=expert_choice"};
    gradcheck_dit("expert_choice softmax k=4", base, 2);
    // Capacity 2.5: k = 10; loss.balance.weight must add nothing (EC-DiT has no auxiliary loss).
    const char *wide[] = {"model.moe.experts=E4A1S0U0", "model.moe.router=expert_choice",
                          "model.moe.capacity=2.5", "loss.balance.weight=0.5"};
    gradcheck_dit("expert_choice k=10 balance ignored", wide, 4);
    // Capacity E_r: every expert takes every token (k = T); MoE in both blocks.
    const char *full[] = {"model.moe.experts=E4A1S0U0", "model.moe.router=expert_choice",
                          "model.moe.capacity=4", "model.moe.first=0", "model.moe.every=1"};
    gradcheck_dit("expert_choice k=T both blocks", full, 5);
    // Sigmoid scores, capacity 0.5: k = 2.
    const char *sigmoid[] = {"model.moe.experts=E4A1S0U0", "model.moe.router=expert_choice",
                             "model.moe.activation=sigmoid", "model.moe.capacity=0.5"};
    gradcheck_dit("expert_choice sigmoid k=2", sigmoid, 4);
    // Identity scores (gate = logit), E_r = 6: k = floor(16 / 6) = 2.
    const char *identity[] = {"model.moe.experts=E6A1S0U0", "model.moe.router=expert_choice",
                              "model.moe.activation=identity"};
    gradcheck_dit("expert_choice identity E6", identity, 3);
    // Conditional routing: the null-label sample (label 3) goes to the unconditional expert;
    // E_r = 3 routed, k = floor(16 / 3) = 5. (Shared experts are refused: EC-DiT's are SwiGLU.)
    const char *cond[] = {"model.moe.experts=E4A1S0U1", "model.moe.router=expert_choice",
                          "model.moe.conditional=true"};
    gradcheck_dit("expert_choice conditional", cond, 3);
    return test_summary("f64_router_expert_choice");
}
