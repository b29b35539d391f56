// Placeholder: the expert_race router is not implemented yet; moe_create refuses configs that name it.
#include "moe/moe.h"

const struct router_ops router_expert_race = {"expert_race", NULL, NULL, NULL, NULL, NULL, NULL};
