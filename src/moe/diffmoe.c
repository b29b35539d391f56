// Placeholder: the diffmoe router is not implemented yet; moe_create refuses configs that name it.
#include "moe/moe.h"

const struct router_ops router_diffmoe = {"diffmoe", NULL, NULL, NULL, NULL, NULL, NULL};
