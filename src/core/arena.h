// One activation arena: sized once from the config and batch size, carved into named regions at
// set-up; the training step allocates nothing. A first pass with a NULL base only measures.
#ifndef PROMOE_ARENA_H
#define PROMOE_ARENA_H

#include <stddef.h>

#include "core/real.h"

struct arena {
    char *base;       // NULL while measuring
    size_t used;
    size_t capacity;
};

// Reserves n reals, 64-byte aligned; returns NULL while measuring.
real *arena_reals(struct arena *a, size_t n);
// Reserves n ints, 64-byte aligned (the same region rules as arena_reals).
int *arena_ints(struct arena *a, size_t n);
// Allocates the base for the measured size; returns -1 (with message) if out of memory.
int arena_allocate(struct arena *a);
void arena_free(struct arena *a);

#endif
