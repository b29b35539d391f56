// Checkpoint layout over the safetensors reader and writer.
#include "model/checkpoint.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/error.h"
#include "core/sha256.h"
#include "model/legacy_names.h"
#include "model/safetensors.h"

enum { N_GROUPS = 4, FULL_NAME_MAX = PARAM_NAME_MAX + 32 };
static const char *const group_prefix[N_GROUPS] = {"", "train.", "adam.exp_avg.", "adam.exp_avg_sq."};

// SHA-256 hex of "run_id\nstep\nsha256(config)\n": changes when any of the three does.
static void meta_digest(const char *run_id, const char *step, const char *config_text, char out[65])
{
    char config_sha[65], text[256];
    sha256_hex(config_text, strlen(config_text), config_sha);
    int n = snprintf(text, sizeof text, "%s\n%s\n%s\n", run_id, step, config_sha);
    sha256_hex(text, (size_t)(n < (int)sizeof text ? n : (int)sizeof text - 1), out);
}

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
    char digest[65];
    meta_digest(run_id, step_text, config_text, digest);
    struct st_meta meta[] = {{"promoe.config", config_text}, {"promoe.run_id", run_id},
                             {"promoe.step", step_text}, {"promoe.meta_sha256", digest}};
    int rc = st_write(path, tensors, n, meta, 4, bytes);
    free(tensors);
    free(names);
    return rc;
}

// The tensor of a table entry in group g (its name with the group's prefix), or under its name
// before the rename (legacy_names.h). NULL when absent under both.
static const void *find_tensor(const struct st_file *f, const char *prefix, const char *name, char *found,
                               const char **dtype, int *ndim, int64_t shape[8])
{
    char old[PARAM_NAME_MAX + 32];
    snprintf(found, FULL_NAME_MAX, "%s%s", prefix, name);
    const void *data = st_get(f, found, dtype, ndim, shape);
    if (data || !legacy_tensor_name(name, old, sizeof old)) return data;
    snprintf(found, FULL_NAME_MAX, "%s%s", prefix, old);
    data = st_get(f, found, dtype, ndim, shape);
    if (!data) snprintf(found, FULL_NAME_MAX, "%s%s", prefix, name);   // report the current name
    return data;
}

// A tensor that the rename added (legacy_names.h) and the file predates: its constant initial
// value in the weight groups, zero in the AdamW moments (buffers are never optimised). 1 when
// filled, 0 when the tensor must be in the file.
static int fill_added(const struct st_file *f, const char *prefix, const struct param_entry *e, real *w)
{
    char marker[PARAM_NAME_MAX + 32], full[FULL_NAME_MAX];
    const char *dtype;
    int ndim;
    int64_t shape[8];
    if (e->init != INIT_CONSTANT || !legacy_added_marker(e->name, marker, sizeof marker)) return 0;
    snprintf(full, sizeof full, "%s%s", prefix, marker);
    if (!st_get(f, full, &dtype, &ndim, shape)) return 0;
    real value = strncmp(prefix, "adam.", 5) == 0 ? 0 : (real)e->std;
    for (size_t k = 0; k < e->count; k++) w[k] = value;
    return 1;
}

int checkpoint_read_tensor(const struct st_file *f, const char *path, const char *prefix,
                           const struct param_entry *e, real *w)
{
    char name[FULL_NAME_MAX];
    const char *dtype;
    int ndim;
    int64_t shape[8];
    const void *data = find_tensor(f, prefix, e->name, name, &dtype, &ndim, shape);
    if (!data && fill_added(f, prefix, e, w)) return 0;
    if (!data) return err("checkpoint '%s' has no tensor '%s': it was written for another model", path, name);
    int same = ndim == e->ndim && strcmp(dtype, REAL_DTYPE) == 0;
    for (int d = 0; same && d < ndim; d++) same = shape[d] == e->shape[d];
    if (!same) {
        char want[64] = "", got[64] = "";
        for (int d = 0; d < e->ndim; d++) snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", d ? "," : "", (long long)e->shape[d]);
        for (int d = 0; d < ndim && d < 8; d++) snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", d ? "," : "", (long long)shape[d]);
        return err("checkpoint '%s': tensor '%s' is %s [%s], the model expects %s [%s]", path, name, dtype, got,
                   REAL_DTYPE, want);
    }
    memcpy(w, data, sizeof(real) * e->count);
    for (size_t k = 0; k < e->count; k++)   // a NaN or infinity would only spread through training
        if (!isfinite(w[k]))
            return err("checkpoint '%s': tensor '%s' holds %g at element %lld: values must be finite", path, name,
                       (double)w[k], (long long)k);
    return 0;
}

static int load_group(const struct st_file *f, const char *path, const struct param_table *t,
                      int group, real *buffer)
{
    for (int i = 0; i < t->n; i++)
        if (checkpoint_read_tensor(f, path, group_prefix[group], &t->entries[i], buffer + t->entries[i].offset) < 0)
            return -1;
    return 0;
}

// The step of the metadata: a whole number in [0, max].
static int parse_step(const char *path, const char *text, int64_t max, int64_t *step)
{
    char *end;
    errno = 0;
    long long n = strtoll(text, &end, 10);
    if (end == text || *end || errno == ERANGE || n < 0 || n > max)
        return err("checkpoint '%s': step '%s' is not a whole number in [0, %lld]", path, text, (long long)max);
    *step = n;
    return 0;
}

// The run id that the stored config hashes to (its result-affecting keys), into id.
static int config_run_id_of(const char *path, const char *config_text, char id[17])
{
    struct config cfg;
    config_defaults(&cfg);
    if (config_load_text(&cfg, config_text, "config stored in the checkpoint") < 0)
        return err_context("checkpoint '%s'", path);
    config_run_id(&cfg, id);
    return 0;
}

static int check_meta(const struct st_file *f, const char *path, const struct checkpoint_expect *expect, int64_t *step)
{
    const char *run_id = st_meta_get(f, "promoe.run_id"), *step_text = st_meta_get(f, "promoe.step");
    const char *config = st_meta_get(f, "promoe.config"), *digest = st_meta_get(f, "promoe.meta_sha256");
    if (!run_id || !step_text || !config)
        return err("checkpoint '%s' lacks its run id, step or config in the metadata", path);
    char want[65], config_id[17];
    meta_digest(run_id, step_text, config, want);
    if (digest && strcmp(digest, want) != 0)
        return err("checkpoint '%s': the metadata (run id, step, config) does not match its checksum", path);
    if (expect && strcmp(run_id, expect->run_id) != 0)
        return err("checkpoint '%s' belongs to run %s, not to run %s", path, run_id, expect->run_id);
    if (expect && config_run_id_of(path, config, config_id) < 0) return -1;
    if (expect && strcmp(config_id, expect->run_id) != 0)
        return err("checkpoint '%s': its config is that of run %s, not of run %s", path, config_id, expect->run_id);
    return parse_step(path, step_text, expect ? expect->max_step : INT64_MAX, step);
}

int checkpoint_load_train(const char *path, const struct param_table *t, struct train_state *s,
                          const struct checkpoint_expect *expect)
{
    struct st_file *f;
    if (st_open(path, &f) < 0) return -1;
    int64_t step = 0;
    int rc = check_meta(f, path, expect, &step);
    for (int g = 0; g < N_GROUPS && !rc; g++) rc = load_group(f, path, t, g, group_buffer(s, g));
    if (!rc) s->step = step;
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

int checkpoint_export(const char *path, const struct param_table *t, enum checkpoint_weights which,
                      const char *out, int64_t *bytes)
{
    struct st_file *f;
    if (st_open(path, &f) < 0) return -1;
    real *w = calloc(t->total ? t->total : 1, sizeof(real));
    struct st_tensor *tensors = calloc(t->n ? t->n : 1, sizeof *tensors);
    const char *config = st_meta_get(f, "promoe.config"), *run_id = st_meta_get(f, "promoe.run_id");
    const char *step = st_meta_get(f, "promoe.step");
    int rc = 0;
    if (!w || !tensors) rc = err("out of memory exporting '%s'", path);
    else if (!config || !run_id || !step) rc = err("checkpoint '%s' lacks its run id, step or config in the metadata", path);
    else rc = load_group(f, path, t, which == CHECKPOINT_WEIGHTS_EMA ? 0 : 1, w);
    for (int i = 0; i < t->n && !rc; i++) {
        const struct param_entry *e = &t->entries[i];
        tensors[i] = (struct st_tensor){.name = e->name, .dtype = REAL_DTYPE, .ndim = e->ndim, .data = w + e->offset};
        for (int d = 0; d < e->ndim; d++) tensors[i].shape[d] = e->shape[d];
    }
    if (!rc) {
        struct st_meta meta[] = {{"promoe.config", config}, {"promoe.run_id", run_id}, {"promoe.step", step},
                                 {"promoe.weights", which == CHECKPOINT_WEIGHTS_EMA ? "ema" : "online"}};
        rc = st_write(out, tensors, t->n, meta, 4, bytes);
    }
    free(tensors);
    free(w);
    st_close(f);
    return rc;
}

// 1 when the file's tensor `name` is a tensor of the table, under its name or its old one.
static int table_has(const struct param_table *t, const char *name)
{
    if (params_find(t, name)) return 1;
    char old[PARAM_NAME_MAX + 32];
    for (int i = 0; i < t->n; i++)
        if (legacy_tensor_name(t->entries[i].name, old, sizeof old) && strcmp(old, name) == 0) return 1;
    return 0;
}

int checkpoint_import_weights(const char *path, const struct param_table *t, real *w)
{
    struct st_file *f;
    if (st_open(path, &f) < 0) return -1;
    int rc = 0;
    for (int i = 0; i < st_count(f) && !rc; i++)
        if (!table_has(t, st_name(f, i)))
            rc = err("'%s': tensor '%s' is not a tensor of the model its config describes (%d tensors; "
                     "a training checkpoint's train.* and adam.* are not weights: export it first)",
                     path, st_name(f, i), t->n);
    for (int i = 0; i < t->n && !rc; i++) rc = checkpoint_read_tensor(f, path, "", &t->entries[i], w + t->entries[i].offset);
    st_close(f);
    return rc;
}
