// Parameter table construction and DiT's initialisation rules (ROUTERS.md 1.6).
#include "nn/params.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/rng.h"
#include "nn/embed.h"

enum { PARAM_ALIGN = 16 };

int params_add(struct param_table *t, const char *name, int ndim, const int64_t *shape,
               enum param_init init, double std, int trainable)
{
    if (t->n == t->capacity) {
        int capacity = t->capacity ? 2 * t->capacity : 64;
        struct param_entry *grown = realloc(t->entries, sizeof *grown * capacity);
        if (!grown) return err("out of memory for the parameter table");
        t->entries = grown;
        t->capacity = capacity;
    }
    struct param_entry *e = &t->entries[t->n];
    memset(e, 0, sizeof *e);
    if (strlen(name) >= PARAM_NAME_MAX || ndim > PARAM_MAX_DIMS) BUG("bad parameter '%s'", name);
    strcpy(e->name, name);
    e->ndim = ndim;
    e->count = 1;
    for (int d = 0; d < ndim; d++) {
        e->shape[d] = shape[d];
        e->count *= (size_t)shape[d];
    }
    e->offset = (t->total + PARAM_ALIGN - 1) / PARAM_ALIGN * PARAM_ALIGN;
    e->init = init;
    e->std = std;
    e->trainable = trainable;
    e->activated = 1;
    t->total = e->offset + e->count;
    return t->n++;
}

void params_free(struct param_table *t)
{
    free(t->entries);
    memset(t, 0, sizeof *t);
}

static void init_tensor(const struct param_entry *e, real *w, struct rng *r)
{
    size_t fan_out = (size_t)e->shape[0], fan_in = e->count / fan_out;
    double bound = sqrt(6.0 / (double)(fan_in + fan_out));
    switch (e->init) {
    case INIT_ZERO:
        memset(w, 0, sizeof(real) * e->count);
        break;
    case INIT_XAVIER:
        for (size_t i = 0; i < e->count; i++) w[i] = (real)((2 * rng_uniform(r) - 1) * bound);
        break;
    case INIT_NORMAL:
        for (size_t i = 0; i < e->count; i++) w[i] = (real)(rng_normal(r) * e->std);
        break;
    case INIT_UNIFORM:
        for (size_t i = 0; i < e->count; i++) w[i] = (real)((2 * rng_uniform(r) - 1) * e->std);
        break;
    case INIT_CONSTANT:
        for (size_t i = 0; i < e->count; i++) w[i] = (real)e->std;
        break;
    case INIT_POS_EMBED: {
        int D = (int)e->shape[e->ndim - 1];
        int grid = (int)lround(sqrt((double)(e->count / (size_t)D)));
        pos_embed_table(w, grid, D);
        break;
    }
    }
}

void params_init(const struct param_table *t, real *buf, uint64_t seed)
{
    memset(buf, 0, sizeof(real) * t->total);
    for (int i = 0; i < t->n; i++) {
        struct rng r;
        rng_init(&r, seed, 0, RNG_INIT, (uint32_t)i);
        init_tensor(&t->entries[i], buf + t->entries[i].offset, &r);
    }
}

const struct param_entry *params_find(const struct param_table *t, const char *name)
{
    for (int i = 0; i < t->n; i++)
        if (strcmp(t->entries[i].name, name) == 0) return &t->entries[i];
    return NULL;
}

int64_t params_count_total(const struct param_table *t)
{
    int64_t n = 0;
    for (int i = 0; i < t->n; i++) n += (int64_t)t->entries[i].count;
    return n;
}

int64_t params_count_activated(const struct param_table *t)
{
    int64_t n = 0;
    for (int i = 0; i < t->n; i++)
        if (t->entries[i].activated) n += (int64_t)t->entries[i].count;
    return n;
}
