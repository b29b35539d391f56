// The read-only queries of the dashboard (`promoe serve`): each one a parameterised SELECT whose
// rows become cJSON values, so the HTTP side (src/serve/) holds no SQL. A connection per request,
// opened read-only, with query_only set as a second guard; WAL lets it read beside the writers.
#include "store/dashboard_queries.h"

#include "core/error.h"
#include "store/db.h"
#include "store/store_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { DASH_OLDEST_SCHEMA = 4 };   // run_summary and evals as these queries read them

static int query_failed(sqlite3 *db, const char *what)
{
    return err("cannot read the %s from database '%s': %s", what, sqlite3_db_filename(db, "main"),
               sqlite3_errmsg(db));
}

static int check_promoe_file(sqlite3 *db, const char *path)
{
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2(db, "SELECT application_id, user_version FROM pragma_application_id, pragma_user_version",
                           -1, &stmt, NULL) != SQLITE_OK)
        return err("cannot read database '%s': %s", path, sqlite3_errmsg(db));
    int rc = sqlite3_step(stmt);
    long long id = rc == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : 0;
    long long version = rc == SQLITE_ROW ? sqlite3_column_int64(stmt, 1) : 0;
    sqlite3_finalize(stmt);
    if (rc != SQLITE_ROW) return err("cannot read database '%s': %s", path, sqlite3_errmsg(db));
    if (id != STORE_APPLICATION_ID) return err("'%s' is not a promoe database (application_id %lld)", path, id);
    if (version < DASH_OLDEST_SCHEMA)
        return err("database '%s' has schema version %lld, older than %d: open it once with `promoe runs --db %s` "
                   "to migrate it", path, version, DASH_OLDEST_SCHEMA, path);
    if (version > STORE_SCHEMA_VERSION)
        return err("database '%s' has schema version %lld, newer than this promoe's %d: update promoe", path,
                   version, STORE_SCHEMA_VERSION);
    return 0;
}

// The connection, opened read-only and checked, in a store object of its own (no pending rows, no
// cached statements: store_close only closes it).
static int open_readonly(const char *path, sqlite3 **out)
{
    *out = NULL;
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL);
    if (rc != SQLITE_OK) {
        err("cannot open database '%s' read-only: %s", path, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close(db);
        return -1;
    }
    sqlite3_busy_timeout(db, DASH_BUSY_TIMEOUT_MS);
    rc = check_promoe_file(db, path);
    if (rc == 0 && sqlite3_exec(db, "PRAGMA query_only = 1", NULL, NULL, NULL) != SQLITE_OK)
        rc = err("cannot set up database '%s': %s", path, sqlite3_errmsg(db));
    if (rc < 0) {
        sqlite3_close(db);
        return -1;
    }
    *out = db;
    return 0;
}

int dash_open(const char *path, struct store **out)
{
    *out = NULL;
    struct store *store = calloc(1, sizeof *store);
    if (!store || !(store->path = strdup(path))) {
        free(store);
        return err("cannot open database '%s' read-only: out of memory", path);
    }
    if (open_readonly(path, &store->handle) < 0) {
        store_close(store);
        return -1;
    }
    *out = store;
    return 0;
}

void dash_close(struct store *store) { store_close(store); }

// Column i of the current row as JSON: numbers, text, or null (NULL, NaN, blobs).
static cJSON *column_json(sqlite3_stmt *stmt, int i)
{
    switch (sqlite3_column_type(stmt, i)) {
    case SQLITE_INTEGER: return cJSON_CreateNumber((double)sqlite3_column_int64(stmt, i));
    case SQLITE_FLOAT: return cJSON_CreateNumber(sqlite3_column_double(stmt, i));
    case SQLITE_TEXT: return cJSON_CreateString((const char *)sqlite3_column_text(stmt, i));
    default: return cJSON_CreateNull();
    }
}

static cJSON *row_object(sqlite3_stmt *stmt)
{
    cJSON *row = cJSON_CreateObject();
    for (int i = 0; row && i < sqlite3_column_count(stmt); i++)
        cJSON_AddItemToObject(row, sqlite3_column_name(stmt, i), column_json(stmt, i));
    return row;
}

// Steps a prepared statement (bound by the caller; finalized here) and appends each row, as an
// object keyed by column name, to a new array. 0, or -1 with a message naming `what`.
static int rows_json(sqlite3_stmt *stmt, const char *what, cJSON **out)
{
    sqlite3 *db = sqlite3_db_handle(stmt);
    cJSON *rows = cJSON_CreateArray();
    int rc, n = 0;
    while (rows && n++ < DASH_ROWS_MAX && (rc = sqlite3_step(stmt)) == SQLITE_ROW)
        cJSON_AddItemToArray(rows, row_object(stmt));
    int ok = rows && (rc == SQLITE_DONE || rc == SQLITE_ROW);
    if (!ok) {
        if (rows) query_failed(db, what);
        else err("out of memory reading the %s", what);
        cJSON_Delete(rows);
        rows = NULL;
    }
    sqlite3_finalize(stmt);
    *out = rows;
    return ok ? 0 : -1;
}

static int prepare(sqlite3 *db, const char *sql, const char *what, sqlite3_stmt **stmt)
{
    return sqlite3_prepare_v2(db, sql, -1, stmt, NULL) == SQLITE_OK ? 0 : query_failed(db, what);
}

// A query with the run id as ?1 (and no other parameter) into an array of row objects.
static int run_rows(sqlite3 *db, const char *sql, const char *run_id, const char *what, cJSON **out)
{
    sqlite3_stmt *stmt;
    *out = NULL;
    if (prepare(db, sql, what, &stmt) < 0) return -1;
    sqlite3_bind_text(stmt, 1, run_id, -1, SQLITE_STATIC);
    return rows_json(stmt, what, out);
}

// ---- runs ----

// The run ids that pass a filter: ?1 sweep, ?2 status, ?3 param key, ?4 param value (each NULL
// for no filter); a string value matches with or without the quotes of the canonical text.
#define RUN_FILTER_CTE                                                                                       \
    "sel AS (SELECT r.run_id FROM runs r WHERE "                                                             \
    " (?1 IS NULL OR EXISTS (SELECT 1 FROM sweep_runs w WHERE w.run_id = r.run_id AND w.sweep = ?1))"        \
    " AND (?2 IS NULL OR r.status = ?2)"                                                                     \
    " AND (?3 IS NULL OR EXISTS (SELECT 1 FROM params p WHERE p.run_id = r.run_id AND p.key = ?3"          \
    "      AND (?4 IS NULL OR p.value = ?4 OR p.value = '\"' || ?4 || '\"'))))"

static const char RUNS_SQL[] =
    "WITH " RUN_FILTER_CTE " "
    "SELECT s.run_id, s.label, s.status, s.step_done, s.steps, s.loss, "
    "  (SELECT value FROM metrics m WHERE m.run_id = s.run_id AND m.name = 'val_loss' "
    "   ORDER BY m.step DESC LIMIT 1) AS val_loss, "
    "  s.fd, s.is_score, s.eval_cfg, s.img_per_s, s.train_s, r.heartbeat_ms, r.created_ms, "
    "  (SELECT group_concat(w.sweep, ',') FROM sweep_runs w WHERE w.run_id = s.run_id) AS sweeps "
    "FROM run_summary s JOIN runs r ON r.run_id = s.run_id "
    "WHERE s.run_id IN sel ORDER BY r.created_ms, s.run_id LIMIT ?5";

// The config keys that tell the selected runs apart: those with several values (most values
// first), or set for some runs only.
static const char VARYING_PARAMS_SQL[] =
    "WITH " RUN_FILTER_CTE ", "
    "varying AS (SELECT key FROM params WHERE run_id IN sel GROUP BY key "
    "  HAVING count(DISTINCT value) > 1 OR count(*) < (SELECT count(*) FROM sel) "
    "  ORDER BY count(DISTINCT value) DESC, key LIMIT ?5) "
    "SELECT run_id, key, value FROM params WHERE run_id IN sel AND key IN varying ORDER BY run_id, key";

static void bind_filter(sqlite3_stmt *stmt, const struct dash_run_filter *f, int limit)
{
    store_bind_text(stmt, 1, f->sweep);
    store_bind_text(stmt, 2, f->status);
    store_bind_text(stmt, 3, f->param_key);
    store_bind_text(stmt, 4, f->param_key ? f->param_value : NULL);
    sqlite3_bind_int(stmt, 5, limit);
}

struct run_entry {
    const char *run_id;
    cJSON *params;
};

static int compare_entries(const void *a, const void *b)
{
    return strcmp(((const struct run_entry *)a)->run_id, ((const struct run_entry *)b)->run_id);
}

// Adds an empty `params` object to every run and returns them sorted by id (caller frees).
static struct run_entry *index_runs(cJSON *runs, int *n)
{
    *n = cJSON_GetArraySize(runs);
    struct run_entry *entries = calloc((size_t)*n + 1, sizeof *entries);
    if (!entries) return NULL;
    int i = 0;
    for (cJSON *run = runs->child; run; run = run->next, i++) {
        entries[i].run_id = cJSON_GetStringValue(cJSON_GetObjectItem(run, "run_id"));
        entries[i].params = cJSON_AddObjectToObject(run, "params");
        if (!entries[i].run_id || !entries[i].params) return free(entries), NULL;
    }
    qsort(entries, (size_t)*n, sizeof *entries, compare_entries);
    return entries;
}

static int add_varying_params(sqlite3 *db, const struct dash_run_filter *f, cJSON *runs)
{
    int n;
    struct run_entry *entries = index_runs(runs, &n);
    sqlite3_stmt *stmt;
    if (!entries) return err("out of memory listing runs");
    if (prepare(db, VARYING_PARAMS_SQL, "params of the runs", &stmt) < 0) return free(entries), -1;
    bind_filter(stmt, f, DASH_PARAMS_SHOWN);
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        struct run_entry key = {.run_id = (const char *)sqlite3_column_text(stmt, 0)};
        struct run_entry *found = bsearch(&key, entries, (size_t)n, sizeof *entries, compare_entries);
        if (found)
            cJSON_AddStringToObject(found->params, (const char *)sqlite3_column_text(stmt, 1),
                                    (const char *)sqlite3_column_text(stmt, 2));
    }
    sqlite3_finalize(stmt);
    free(entries);
    return rc == SQLITE_DONE ? 0 : query_failed(db, "params of the runs");
}

int dash_runs(struct store *store, const struct dash_run_filter *filter, cJSON **out)
{
    sqlite3 *db = store->handle;
    sqlite3_stmt *stmt;
    *out = NULL;
    if (prepare(db, RUNS_SQL, "runs", &stmt) < 0) return -1;
    bind_filter(stmt, filter, DASH_RUNS_MAX);
    if (rows_json(stmt, "runs", out) < 0) return -1;
    if (add_varying_params(db, filter, *out) < 0) {
        cJSON_Delete(*out);
        *out = NULL;
        return -1;
    }
    return 0;
}

// A query without parameters into an array of row objects.
static int plain_rows(sqlite3 *db, const char *sql, const char *what, cJSON **out)
{
    sqlite3_stmt *stmt;
    *out = NULL;
    return prepare(db, sql, what, &stmt) < 0 ? -1 : rows_json(stmt, what, out);
}

int dash_overview(struct store *store, cJSON **out)
{
    sqlite3 *db = store->handle;
    cJSON *sweeps, *statuses;
    *out = NULL;
    if (plain_rows(db, "SELECT * FROM sweep_progress ORDER BY sweep", "sweep progress", &sweeps) < 0) return -1;
    if (plain_rows(db, "SELECT status, count(*) AS runs FROM runs GROUP BY status ORDER BY status", "run statuses",
                   &statuses) < 0)
        return cJSON_Delete(sweeps), -1;
    *out = cJSON_CreateObject();
    if (!*out) return cJSON_Delete(sweeps), cJSON_Delete(statuses), err("out of memory");
    cJSON_AddItemToObject(*out, "sweeps", sweeps);
    cJSON_AddItemToObject(*out, "statuses", statuses);
    return 0;
}

int dash_run_exists(struct store *store, const char *run_id)
{
    sqlite3 *db = store->handle;
    sqlite3_stmt *stmt;
    if (prepare(db, "SELECT 1 FROM runs WHERE run_id = ?1", "run", &stmt) < 0) return -1;
    sqlite3_bind_text(stmt, 1, run_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return query_failed(db, "run");
    return rc == SQLITE_ROW;
}

// ---- one run ----

static const char RUN_SQL[] =
    "SELECT s.*, r.seed, r.threads, r.world_size, r.params_total, r.params_active, r.code_commit, "
    "  r.code_dirty, r.heartbeat_ms, r.config_yaml, "
    "  (SELECT group_concat(w.sweep, ',') FROM sweep_runs w WHERE w.run_id = s.run_id) AS sweeps "
    "FROM run_summary s JOIN runs r ON r.run_id = s.run_id WHERE s.run_id = ?1";
static const char RUN_EVALS_SQL[] =
    "SELECT step, weights, cfg_scale, sampler, sampler_steps, n_samples, reference, metric, value, source, "
    "  sample_seed FROM final_evals WHERE run_id = ?1 ORDER BY metric, cfg_scale, sample_seed";
static const char RUN_ATTEMPTS_SQL[] =
    "SELECT attempt, host, pid, from_step, started_ms, ended_ms, outcome FROM attempts WHERE run_id = ?1 "
    "ORDER BY attempt";
static const char RUN_CHECKPOINTS_SQL[] =
    "SELECT step, kind, path, bytes, created_ms FROM checkpoints WHERE run_id = ?1 ORDER BY step DESC, kind LIMIT 20";

// Runs one per-run query and adds its rows under name.
static int add_run_rows(sqlite3 *db, cJSON *object, const char *name, const char *sql, const char *run_id)
{
    cJSON *rows;
    if (run_rows(db, sql, run_id, name, &rows) < 0) return -1;
    cJSON_AddItemToObject(object, name, rows);
    return 0;
}

int dash_run_detail(struct store *store, const char *run_id, cJSON **out)
{
    sqlite3 *db = store->handle;
    cJSON *rows;
    *out = NULL;
    if (run_rows(db, RUN_SQL, run_id, "run", &rows) < 0) return -1;
    cJSON *run = cJSON_DetachItemFromArray(rows, 0);
    cJSON_Delete(rows);
    if (!run) return 0;
    if (add_run_rows(db, run, "evals", RUN_EVALS_SQL, run_id) < 0 ||
        add_run_rows(db, run, "attempts", RUN_ATTEMPTS_SQL, run_id) < 0 ||
        add_run_rows(db, run, "checkpoints", RUN_CHECKPOINTS_SQL, run_id) < 0) {
        cJSON_Delete(run);
        return -1;
    }
    *out = run;
    return 0;
}

// ---- curves ----

int dash_metric_names(struct store *store, const char *const *run_ids, int n_runs, cJSON **out)
{
    sqlite3 *db = store->handle;
    *out = NULL;
    // The ids travel as one JSON array parameter, read back by json_each: no SQL is built from them.
    cJSON *ids = cJSON_CreateStringArray(run_ids, n_runs);
    char *ids_text = ids ? cJSON_PrintUnformatted(ids) : NULL;
    cJSON_Delete(ids);
    if (!ids_text) return err("out of memory listing metric names");
    sqlite3_stmt *stmt;
    int rc = prepare(db, "SELECT DISTINCT name FROM metrics WHERE run_id IN (SELECT value FROM json_each(?1)) "
                         "ORDER BY name", "metric names", &stmt);
    cJSON *rows = NULL;
    if (rc == 0) {
        sqlite3_bind_text(stmt, 1, ids_text, -1, SQLITE_STATIC);
        rc = rows_json(stmt, "metric names", &rows);
    }
    free(ids_text);
    if (rc < 0) return -1;
    *out = cJSON_CreateArray();
    for (cJSON *row = rows->child; *out && row; row = row->next)
        cJSON_AddItemToArray(*out, cJSON_CreateString(cJSON_GetStringValue(cJSON_GetObjectItem(row, "name"))));
    cJSON_Delete(rows);
    return *out ? 0 : err("out of memory listing metric names");
}

// Every stride-th point (stride = ceil(n / max)) and the last one, so a long curve keeps its shape.
static const char CURVE_SQL[] =
    "SELECT step, value FROM ("
    "  SELECT step, value, row_number() OVER (ORDER BY step) - 1 AS i, count(*) OVER () AS n "
    "  FROM metrics WHERE run_id = ?1 AND name = ?2) "
    "WHERE n <= ?3 OR i % ((n + ?3 - 1) / ?3) = 0 OR i = n - 1 ORDER BY step";

int dash_curve(struct store *store, const char *run_id, const char *metric, int max_points, cJSON **out)
{
    sqlite3 *db = store->handle;
    sqlite3_stmt *stmt;
    *out = NULL;
    if (prepare(db, CURVE_SQL, "curve", &stmt) < 0) return -1;
    sqlite3_bind_text(stmt, 1, run_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, metric, -1, SQLITE_STATIC);
    sqlite3_bind_int(stmt, 3, max_points > 0 ? max_points : 1);
    cJSON *points = cJSON_CreateArray();
    int rc;
    while (points && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        cJSON *point = cJSON_CreateArray();
        cJSON_AddItemToArray(point, column_json(stmt, 0));
        cJSON_AddItemToArray(point, column_json(stmt, 1));
        cJSON_AddItemToArray(points, point);
    }
    sqlite3_finalize(stmt);
    if (!points || rc != SQLITE_DONE) {
        cJSON_Delete(points);
        return points ? query_failed(db, "curve") : err("out of memory reading a curve");
    }
    *out = points;
    return 0;
}

// ---- routing ----

// Puts item at array[index], padding with `pad` values (numbers, or null when pad is NaN).
static void set_at(cJSON *array, int index, cJSON *item, double pad)
{
    while (cJSON_GetArraySize(array) < index)
        cJSON_AddItemToArray(array, !isnan(pad) ? cJSON_CreateNumber(pad) : cJSON_CreateNull());
    cJSON_AddItemToArray(array, item);
}

// Groups rows (layer, key, index, value) by layer, then by key (step or class): one object per
// layer with `key_name` listing the keys and `matrix_name` a row per key, value at index.
static int layered_matrix(sqlite3_stmt *stmt, const char *key_name, const char *matrix_name, double pad,
                          const char *what, cJSON **out)
{
    sqlite3 *db = sqlite3_db_handle(stmt);
    cJSON *layers = cJSON_CreateArray(), *layer = NULL, *keys = NULL, *matrix = NULL, *row = NULL;
    long long last_layer = -1, last_key = -1;
    int rc, n = 0;
    while (layers && n++ < DASH_ROWS_MAX && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        long long l = sqlite3_column_int64(stmt, 0), key = sqlite3_column_int64(stmt, 1);
        int index = sqlite3_column_int(stmt, 2);
        if (!layer || l != last_layer) {
            layer = cJSON_CreateObject();
            cJSON_AddNumberToObject(layer, "layer", (double)l);
            keys = cJSON_AddArrayToObject(layer, key_name);
            matrix = cJSON_AddArrayToObject(layer, matrix_name);
            cJSON_AddItemToArray(layers, layer);
            row = NULL;
        }
        if (!row || l != last_layer || key != last_key) {
            cJSON_AddItemToArray(keys, cJSON_CreateNumber((double)key));
            cJSON_AddItemToArray(matrix, row = cJSON_CreateArray());
        }
        last_layer = l, last_key = key;
        if (index >= 0 && index < DASH_ROWS_MAX && cJSON_GetArraySize(row) <= index)
            set_at(row, index, column_json(stmt, 3), pad);
    }
    sqlite3_finalize(stmt);
    if (!layers || (rc != SQLITE_DONE && rc != SQLITE_ROW)) {
        cJSON_Delete(layers);
        return layers ? query_failed(db, what) : err("out of memory reading the %s", what);
    }
    *out = layers;
    return 0;
}

static const char ROUTING_SHARE_SQL[] =
    "SELECT layer, step, expert, "
    "  tokens_cond * 1.0 / nullif(sum(tokens_cond) OVER (PARTITION BY layer, step), 0) AS share "
    "FROM routing WHERE run_id = ?1 AND t_bin = -1 ORDER BY layer, step, expert";

int dash_routing_share(struct store *store, const char *run_id, cJSON **out)
{
    sqlite3 *db = store->handle;
    sqlite3_stmt *stmt;
    *out = NULL;
    if (prepare(db, ROUTING_SHARE_SQL, "routing", &stmt) < 0) return -1;
    sqlite3_bind_text(stmt, 1, run_id, -1, SQLITE_STATIC);
    return layered_matrix(stmt, "steps", "share", (double)NAN, "routing", out);
}

static const char CLASS_ROUTING_SQL[] =
    "SELECT c.layer, c.class_id, c.expert, c.tokens FROM class_routing c "
    "WHERE c.run_id = ?1 AND c.step = (SELECT max(x.step) FROM class_routing x "
    "                                  WHERE x.run_id = ?1 AND x.layer = c.layer) "
    "ORDER BY c.layer, c.class_id, c.expert";

static const char CLASS_ROUTING_STEPS_SQL[] =
    "SELECT layer, max(step) AS step FROM class_routing WHERE run_id = ?1 GROUP BY layer ORDER BY layer";

int dash_class_routing(struct store *store, const char *run_id, cJSON **out)
{
    sqlite3 *db = store->handle;
    sqlite3_stmt *stmt;
    cJSON *steps;
    *out = NULL;
    if (prepare(db, CLASS_ROUTING_SQL, "class routing", &stmt) < 0) return -1;
    sqlite3_bind_text(stmt, 1, run_id, -1, SQLITE_STATIC);
    if (layered_matrix(stmt, "classes", "tokens", 0.0, "class routing", out) < 0) return -1;
    if (run_rows(db, CLASS_ROUTING_STEPS_SQL, run_id, "class routing", &steps) < 0) {
        cJSON_Delete(*out);
        *out = NULL;
        return -1;
    }
    // Both lists are by layer, one entry per layer with rows.
    cJSON *layer = (*out)->child;
    for (cJSON *s = steps->child; layer && s; s = s->next, layer = layer->next)
        cJSON_AddNumberToObject(layer, "step", cJSON_GetNumberValue(cJSON_GetObjectItem(s, "step")));
    cJSON_Delete(steps);
    return 0;
}

static const char DIVERSITY_SQL[] =
    "SELECT step, layer, k, variant, value FROM diversity WHERE run_id = ?1 ORDER BY step, layer, k, variant";
static const char TOKEN_STATS_SQL[] =
    "SELECT step, layer, t, n_tokens, variant, metric, value FROM token_stats WHERE run_id = ?1 "
    "ORDER BY step, layer, t, variant, metric";
static const char SPECIALISATION_SQL[] =
    "SELECT step, layer, metric, value FROM specialisation WHERE run_id = ?1 ORDER BY step, layer, metric";

int dash_analysis_rows(struct store *store, const char *run_id, cJSON **out)
{
    sqlite3 *db = store->handle;
    *out = cJSON_CreateObject();
    if (!*out) return err("out of memory");
    if (add_run_rows(db, *out, "diversity", DIVERSITY_SQL, run_id) < 0 ||
        add_run_rows(db, *out, "token_stats", TOKEN_STATS_SQL, run_id) < 0 ||
        add_run_rows(db, *out, "specialisation", SPECIALISATION_SQL, run_id) < 0) {
        cJSON_Delete(*out);
        *out = NULL;
        return -1;
    }
    return 0;
}

// ---- files ----

int dash_run_folder(struct store *store, const char *run_id, char *out, size_t capacity)
{
    sqlite3 *db = store->handle;
    sqlite3_stmt *stmt;
    if (prepare(db, "SELECT value FROM params WHERE run_id = ?1 AND key = 'ckpt.dir'", "ckpt.dir", &stmt) < 0)
        return -1;
    sqlite3_bind_text(stmt, 1, run_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(stmt), found = 0;
    if (rc == SQLITE_ROW && sqlite3_column_text(stmt, 0)) {
        // The canonical text quotes a string; an escaped one (a backslash) is not a plain path.
        const char *value = (const char *)sqlite3_column_text(stmt, 0);
        size_t len = strlen(value);
        if (len >= 2 && value[0] == '"' && value[len - 1] == '"') value++, len -= 2;
        found = len > 0 && !memchr(value, '\\', len) &&
                (size_t)snprintf(out, capacity, "%.*s/%s", (int)len, value, run_id) < capacity;
    }
    sqlite3_finalize(stmt);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return query_failed(db, "ckpt.dir");
    return found;
}
