// The rename map of legacy_names.h, as suffix rewrites of "blocks.N.mlp." names.
#include "model/legacy_names.h"

#include <stdio.h>
#include <string.h>

// Current suffix (after "blocks.N.mlp.") and the old one; an expert's suffix follows "experts.E.".
static const struct {
    const char *now, *then;
    int expert;   // 1: the suffix of a routed expert's tensor
} renames[] = {
    {"fc1.weight", "up_proj.weight", 1},   {"fc1.bias", "up_proj.bias", 1},
    {"fc2.weight", "down_proj.weight", 1}, {"fc2.bias", "down_proj.bias", 1},
    {"gate_weight", "gate.weight", 0},     {"expert_threshold", "capacity_thresholds", 0},
};

// The length of the "blocks.N.mlp." head of name (and with expert, of "blocks.N.mlp.experts.E."),
// or 0 when name does not start so.
static size_t mlp_head(const char *name, int expert)
{
    int n = -1;
    if (expert) sscanf(name, "blocks.%*d.mlp.experts.%*d.%n", &n);
    else sscanf(name, "blocks.%*d.mlp.%n", &n);
    return n > 0 ? (size_t)n : 0;
}

int legacy_tensor_name(const char *name, char *out, size_t size)
{
    for (size_t i = 0; i < sizeof renames / sizeof *renames; i++) {
        size_t head = mlp_head(name, renames[i].expert);
        if (!head || strcmp(name + head, renames[i].now) != 0) continue;
        int n = snprintf(out, size, "%.*s%s", (int)head, name, renames[i].then);
        return n > 0 && (size_t)n < size;
    }
    return 0;
}

int legacy_added_marker(const char *name, char *marker, size_t size)
{
    size_t head = mlp_head(name, 0);
    if (!head || strcmp(name + head, "ema_decay") != 0) return 0;
    int n = snprintf(marker, size, "%.*scapacity_thresholds", (int)head, name);
    return n > 0 && (size_t)n < size;
}
