// Placeholder: the expert_choice router is not implemented yet; moe_create refuses configs that name it.
#include "moe/moe.h"

const struct router_ops router_expert_choice = {"expert_choice", NULL, NULL, NULL, NULL, NULL, NULL};
