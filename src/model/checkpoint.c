// Checkpoint layout over the safetensors reader and writer.
#include "model/checkpoint.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "model/safetensors.h"

enum { N_GROUPS = 4, FULL_NAME_MAX = PARAM_NAME_MAX + 32 };
static const char *const group_prefix[N_GROUPS] = {"", "train.", "adam.exp_avg.", "adam.exp_avg_sq."};

static real *group_buffer(const struct train_state *s, int group)
{
    real *buffers[N_GROUPS] = {s->ema, s->weights, s->adam_m, s->adam_v};
    return buffers[group];
}

int checkpoint_save(const char *path, const struct param_table *t, const struct train_state *s,
                    const char *config_text, const char *run_id, int64_t *bytes)
{
    int n = t->n * N_GROUPS;
    struct st_tensor *tensors = calloc(n, sizeof *tensors);
    char (*names)[FULL_NAME_MAX] = calloc(n, FULL_NAME_MAX);
    if (!tensors || !names) {
        free(tensors);
        free(names);
        return err("out of memory writing checkpoint '%s'", path);
    }
    for (int g = 0; g < N_GROUPS; g++)
        for (int i = 0; i < t->n; i++) {
            const struct param_entry *e = &t->entries[i];
            struct st_tensor *st = &tensors[g * t->n + i];
            snprintf(names[g * t->n + i], FULL_NAME_MAX, "%s%s", group_prefix[g], e->name);
            st->name = names[g * t->n + i];
            st->dtype = REAL_DTYPE;
            st->ndim = e->ndim;
            for (int d = 0; d < e->ndim; d++) st->shape[d] = e->shape[d];
            st->data = group_buffer(s, g) + e->offset;
        }
    char step_text[32];
    snprintf(step_text, sizeof step_text, "%" PRId64, s->step);
    struct st_meta meta[] = {{"promoe.config", config_text}, {"promoe.run_id", run_id},
                             {"promoe.step", step_text}};
    int rc = st_write(path, tensors, n, meta, 3, bytes);
    free(tensors);
    free(names);
    return rc;
}

static int load_group(const struct st_file *f, const char *path, const struct param_table *t,
                      int group, real *buffer)
{
    for (int i = 0; i < t->n; i++) {
        const struct param_entry *e = &t->entries[i];
        char name[FULL_NAME_MAX];
        snprintf(name, sizeof name, "%s%s", group_prefix[group], e->name);
        const char *dtype;
        int ndim;
        int64_t shape[8];
        const void *data = st_get(f, name, &dtype, &ndim, shape);
        if (!data) return err("checkpoint '%s' has no tensor '%s': it was written for another model", path, name);
        int same = ndim == e->ndim && strcmp(dtype, REAL_DTYPE) == 0;
        for (int d = 0; same && d < ndim; d++) same = shape[d] == e->shape[d];
        if (!same) {
            char want[64] = "", got[64] = "";
            for (int d = 0; d < e->ndim; d++) snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", d ? "," : "", (long long)e->shape[d]);
            for (int d = 0; d < ndim && d < 8; d++) snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", d ? "," : "", (long long)shape[d]);
            return err("checkpoint '%s': tensor '%s' is %s [%s], the model expects %s [%s]", path, name,
                       dtype, got, REAL_DTYPE, want);
        }
        memcpy(buffer + e->offset, data, sizeof(real) * e->count);
    }
    return 0;
}

int checkpoint_load_train(const char *path, const struct param_table *t, struct train_state *s)
{
    struct st_file *f;
    if (st_open(path, &f) < 0) return -1;
    int rc = 0;
    for (int g = 0; g < N_GROUPS && !rc; g++) rc = load_group(f, path, t, g, group_buffer(s, g));
    const char *step = st_meta_get(f, "promoe.step");
    if (!rc && !step) rc = err("checkpoint '%s' has no step in its metadata", path);
    if (!rc) s->step = strtoll(step, NULL, 10);
    st_close(f);
    return rc;
}

int checkpoint_load_ema(const char *path, const struct param_table *t, real *ema)
{
    struct st_file *f;
    if (st_open(path, &f) < 0) return -1;
    int rc = load_group(f, path, t, 0, ema);
    st_close(f);
    return rc;
}

int checkpoint_read_config(const char *path, char **config_text)
{
    struct st_file *f;
    if (st_open(path, &f) < 0) return -1;
    const char *text = st_meta_get(f, "promoe.config");
    int rc = 0;
    if (!text) rc = err("checkpoint '%s' has no promoe.config metadata", path);
    else if (!(*config_text = strdup(text))) rc = err("out of memory");
    st_close(f);
    return rc;
}
