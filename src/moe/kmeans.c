// Placeholder: the kmeans router is not implemented yet; moe_create refuses configs that name it.
#include "moe/moe.h"

const struct router_ops router_kmeans = {"kmeans", NULL, NULL, NULL, NULL, NULL, NULL};
