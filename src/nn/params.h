// The named parameter table: every tensor's name (PyTorch state-dict names), shape, offset in the
// one contiguous buffer, and initialisation. Gradients, AdamW moments and EMA weights are buffers
// of the same layout, so optimizers are loops over floats.
#ifndef PROMOE_PARAMS_H
#define PROMOE_PARAMS_H

#include <stddef.h>
#include <stdint.h>

#include "core/real.h"

enum param_init {
    INIT_ZERO,
    INIT_XAVIER,     // uniform, bound sqrt(6 / (fan_in + fan_out)), fan_in = product of shape[1:]
    INIT_NORMAL,     // N(0, std^2)
    INIT_UNIFORM,    // U(-std, std)
    INIT_POS_EMBED,  // fixed 2-D sine-cosine table (not trained)
    INIT_CONSTANT    // every element = std (a constant buffer, e.g. DiffMoE's ema_decay)
};

enum { PARAM_NAME_MAX = 96, PARAM_MAX_DIMS = 4 };

struct param_entry {
    char name[PARAM_NAME_MAX];
    int ndim;
    int64_t shape[PARAM_MAX_DIMS];
    size_t offset, count;   // in reals
    enum param_init init;
    double std;
    int trainable;
    int activated;          // counted among activated parameters
};

struct param_table {
    struct param_entry *entries;
    int n, capacity;
    size_t total;           // reals
};

// Appends a tensor (offsets 16-real aligned); returns its index, or -1 if out of memory.
int params_add(struct param_table *t, const char *name, int ndim, const int64_t *shape,
               enum param_init init, double std, int trainable);
void params_free(struct param_table *t);
// Initialises buf [t->total] as the table says; tensor i draws from stream (seed, 0, INIT, i).
void params_init(const struct param_table *t, real *buf, uint64_t seed);
const struct param_entry *params_find(const struct param_table *t, const char *name);
// PyTorch-style counts: every tensor (frozen ones too); activated excludes inactive experts.
int64_t params_count_total(const struct param_table *t);
int64_t params_count_activated(const struct param_table *t);

#endif
