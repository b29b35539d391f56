// Bump allocator over one aligned block, with a measuring pass so the size is known exactly.
#include "core/arena.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"

enum { ARENA_ALIGN = 64 };

real *arena_reals(struct arena *a, size_t n)
{
    size_t offset = (a->used + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
    a->used = offset + n * sizeof(real);
    if (!a->base) return NULL;
    if (a->used > a->capacity) BUG("arena overflow: %zu > %zu", a->used, a->capacity);
    return (real *)(a->base + offset);
}

int *arena_ints(struct arena *a, size_t n)
{
    return (int *)arena_reals(a, (n * sizeof(int) + sizeof(real) - 1) / sizeof(real));
}

int arena_allocate(struct arena *a)
{
    a->capacity = (a->used + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
    a->base = aligned_alloc(ARENA_ALIGN, a->capacity ? a->capacity : ARENA_ALIGN);
    if (!a->base) return err("cannot allocate %zu MiB of activations", a->capacity >> 20);
    memset(a->base, 0, a->capacity);
    a->used = 0;
    return 0;
}

void arena_free(struct arena *a)
{
    free(a->base);
    a->base = NULL;
    a->used = a->capacity = 0;
}
