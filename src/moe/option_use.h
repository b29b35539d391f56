// Model options that would do nothing for the chosen model: model.moe.* and loss.* keys of a
// dense model, router keys and auxiliary losses the chosen router does not read.
#ifndef PROMOE_MOE_OPTION_USE_H
#define PROMOE_MOE_OPTION_USE_H

#include "config/config.h"

enum { UNUSED_OPTIONS_MAX = 16 };

struct unused_option {
    const char *key;     // "loss.rcl.weight" (static)
    char why[512];       // the key, its value, and why nothing reads it
};

struct unused_options {
    int n;
    struct unused_option found[UNUSED_OPTIONS_MAX];
};

// Lists every model.moe.* and loss.* key away from its default that the model does not read
// (loss weights set to 0 pass: they switch a loss off). Returns how many, or -1 on error.
int moe_find_unused_options(const struct config *cfg, struct unused_options *u);

#endif
