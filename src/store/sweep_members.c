// The runs of a sweep as the report reads them (sweep_members.h). Statements are prepared per
// call: reports call these a few times per figure or table, never inside training.
#include "store/sweep_members.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "store/store_internal.h"

enum { MATCH_SQL_MAX = 4096 };

static const char HAS_RUNS_SQL[] = "SELECT 1 FROM sweep_runs WHERE sweep = ?1 LIMIT 1";
static const char LABELS_SQL[] =
    "SELECT coalesce(r.label, r.run_id) AS label FROM sweep_runs s JOIN runs r ON r.run_id = s.run_id "
    "WHERE s.sweep = ?1 GROUP BY label ORDER BY min(s.idx)";
static const char SUMMARIES_SQL[] =
    "SELECT coalesce(r.label, r.run_id) AS label, count(*), sum(r.status = 'done'), avg(r.params_total), "
    "avg(r.params_active), avg(r.img_per_s), sum(coalesce(r.train_s, 0)), "
    "  coalesce(sum(CASE WHEN r.status = 'done' THEN (SELECT sum(coalesce(a.ended_ms, r.heartbeat_ms, a.started_ms) "
    "    - a.started_ms) FROM attempts a WHERE a.run_id = r.run_id) END), 0) / 1000.0, "
    "  coalesce(min(CASE WHEN r.status = 'done' THEN r.threads END), 0), "
    "  coalesce(max(CASE WHEN r.status = 'done' THEN r.threads END), 0) FROM sweep_runs s "
    "JOIN runs r ON r.run_id = s.run_id WHERE s.sweep = ?1 GROUP BY label ORDER BY min(s.idx)";
static const char DONE_RUNS_SQL[] =
    "SELECT r.run_id, r.seed FROM sweep_runs s JOIN runs r ON r.run_id = s.run_id WHERE s.sweep = ?1 "
    "AND coalesce(r.label, r.run_id) = ?2 AND r.status = 'done' ORDER BY r.seed";
static const char SCALING_RUNS_SQL[] =
    "SELECT r.run_id, coalesce(r.label, r.run_id), r.params_active, "
    "  coalesce((SELECT value FROM params WHERE run_id = r.run_id AND key = 'model.moe.experts'), '') "
    "FROM sweep_runs s JOIN runs r ON r.run_id = s.run_id WHERE s.sweep = ?1 ORDER BY s.idx";
static const char MATCHING_RUNS_SQL[] =
    "SELECT r.run_id, r.status, r.step_done, "
    "  coalesce((SELECT value FROM params WHERE run_id = r.run_id AND key = 'train.seed'), ''), "
    "  coalesce((SELECT value FROM params WHERE run_id = r.run_id AND key = 'train.steps'), '?') "
    "FROM sweep_runs s JOIN runs r ON r.run_id = s.run_id WHERE s.sweep = ?1";
static const char MATCH_WHERE_SQL[] =
    " AND EXISTS (SELECT 1 FROM params p WHERE p.run_id = r.run_id AND p.key = ?%d AND p.value = ?%d)";
// For a key's default value where runs at the default leave the key out of their params.
static const char MATCH_WHERE_OR_ABSENT_SQL[] =
    " AND (EXISTS (SELECT 1 FROM params p WHERE p.run_id = r.run_id AND p.key = ?%d AND p.value = ?%d)"
    " OR NOT EXISTS (SELECT 1 FROM params p WHERE p.run_id = r.run_id AND p.key = ?%d))";

// Text of a column into a buffer of capacity bytes ("" for NULL).
static void copy_text(sqlite3_stmt *stmt, int column, char *out, size_t capacity)
{
    const unsigned char *text = sqlite3_column_text(stmt, column);
    snprintf(out, capacity, "%s", text ? (const char *)text : "");
}

// Prepares sql with the sweep bound to ?1; on failure records "<what>: <reason>".
static int prepare_for_sweep(struct store *db, const char *sql, const char *sweep, const char *what,
                             sqlite3_stmt **stmt)
{
    if (sqlite3_prepare_v2(db->handle, sql, -1, stmt, NULL) != SQLITE_OK)
        return err("%s: %s", what, sqlite3_errmsg(db->handle));
    sqlite3_bind_text(*stmt, 1, sweep, -1, SQLITE_STATIC);
    return 0;
}

int store_sweep_has_runs(struct store *db, const char *sweep)
{
    sqlite3_stmt *stmt;
    int has_runs = 0;
    if (sqlite3_prepare_v2(db->handle, HAS_RUNS_SQL, -1, &stmt, NULL) == SQLITE_OK) {
        sqlite3_bind_text(stmt, 1, sweep, -1, SQLITE_STATIC);
        has_runs = sqlite3_step(stmt) == SQLITE_ROW;
        sqlite3_finalize(stmt);
    }
    return has_runs;
}

void store_labels_free(struct store_labels *labels)
{
    free(labels->label);
    labels->label = NULL;
    labels->n = 0;
}

static int push_label(struct store_labels *out, int *capacity, const char *label)
{
    void *array = out->label;
    int rc = store_grow(&array, out->n, capacity, sizeof *out->label, 16, "run labels");
    out->label = array;
    if (rc < 0) return -1;
    snprintf(out->label[out->n++], STORE_LABEL_CAPACITY, "%s", label);
    return 0;
}

int store_sweep_labels(struct store *db, const char *sweep, struct store_labels *out)
{
    char what[STORE_LABEL_CAPACITY + 32];
    snprintf(what, sizeof what, "runs of sweep '%s'", sweep);
    *out = (struct store_labels){0};
    sqlite3_stmt *stmt;
    if (prepare_for_sweep(db, LABELS_SQL, sweep, what, &stmt) < 0) return -1;
    int rc = 0, step, capacity = 0;
    while (rc == 0 && (step = sqlite3_step(stmt)) == SQLITE_ROW)
        rc = push_label(out, &capacity, (const char *)sqlite3_column_text(stmt, 0));
    if (rc == 0 && step != SQLITE_DONE) rc = err("%s: %s", what, sqlite3_errmsg(db->handle));
    sqlite3_finalize(stmt);
    if (rc < 0) store_labels_free(out);
    return rc;
}

int store_sweep_label_summaries(struct store *db, const char *sweep, struct store_label_summary *rows,
                                int capacity, int *n)
{
    sqlite3_stmt *st;
    *n = 0;
    if (prepare_for_sweep(db, SUMMARIES_SQL, sweep, "labels", &st) < 0) return -1;
    while (sqlite3_step(st) == SQLITE_ROW && *n < capacity) {
        struct store_label_summary *r = &rows[(*n)++];
        copy_text(st, 0, r->label, sizeof r->label);
        r->runs = sqlite3_column_int(st, 1), r->done = sqlite3_column_int(st, 2);
        r->params_total = sqlite3_column_double(st, 3), r->params_active = sqlite3_column_double(st, 4);
        r->img_per_s = sqlite3_column_double(st, 5), r->train_s = sqlite3_column_double(st, 6);
        r->wall_s = sqlite3_column_double(st, 7);
        r->min_threads = sqlite3_column_int(st, 8), r->max_threads = sqlite3_column_int(st, 9);
    }
    sqlite3_finalize(st);
    return 0;
}

int store_label_done_runs(struct store *db, const char *sweep, const char *label,
                          char (*ids)[STORE_TEXT_CAPACITY], long long *seeds, int capacity, int *n)
{
    sqlite3_stmt *st;
    *n = 0;
    if (sqlite3_prepare_v2(db->handle, DONE_RUNS_SQL, -1, &st, NULL) != SQLITE_OK)
        return err("runs of '%s': %s", label, sqlite3_errmsg(db->handle));
    sqlite3_bind_text(st, 1, sweep, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, label, -1, SQLITE_STATIC);
    while (sqlite3_step(st) == SQLITE_ROW && *n < capacity) {
        copy_text(st, 0, ids[*n], STORE_TEXT_CAPACITY);
        seeds[(*n)++] = sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    return 0;
}

static int push_scaling_run(sqlite3_stmt *stmt, struct store_scaling_run **rows, int *n, int *capacity)
{
    void *array = *rows;
    int rc = store_grow(&array, *n, capacity, sizeof **rows, 64, "runs");
    *rows = array;
    if (rc < 0) return -1;
    struct store_scaling_run *run = &(*rows)[(*n)++];
    copy_text(stmt, 0, run->run_id, sizeof run->run_id);
    copy_text(stmt, 1, run->label, sizeof run->label);
    run->has_params_active = sqlite3_column_type(stmt, 2) != SQLITE_NULL;
    run->params_active = sqlite3_column_double(stmt, 2);
    copy_text(stmt, 3, run->experts, sizeof run->experts);
    return 0;
}

int store_sweep_scaling_runs(struct store *db, const char *sweep, struct store_scaling_run **rows, int *n)
{
    char what[STORE_LABEL_CAPACITY + 32];
    snprintf(what, sizeof what, "runs of sweep '%s'", sweep);
    *rows = NULL, *n = 0;
    sqlite3_stmt *stmt;
    if (prepare_for_sweep(db, SCALING_RUNS_SQL, sweep, what, &stmt) < 0) return -1;
    int rc = 0, step, capacity = 0;
    while (rc == 0 && (step = sqlite3_step(stmt)) == SQLITE_ROW) rc = push_scaling_run(stmt, rows, n, &capacity);
    if (rc == 0 && step != SQLITE_DONE) rc = err("runs: %s", sqlite3_errmsg(db->handle));
    sqlite3_finalize(stmt);
    if (rc < 0) free(*rows), *rows = NULL, *n = 0;
    return rc;
}

// The matching-runs statement: the base query and one EXISTS clause per where pair, bound.
static int prepare_matching(struct store *db, const char *sweep, const char *const *keys,
                            const char *const *values, const int *or_absent, int n_where, sqlite3_stmt **stmt)
{
    char sql[MATCH_SQL_MAX];
    int used = snprintf(sql, sizeof sql, "%s", MATCHING_RUNS_SQL);
    for (int w = 0; w < n_where; w++) {
        int key = 2 + 2 * w, value = 3 + 2 * w;
        if (or_absent && or_absent[w])
            used += snprintf(sql + used, sizeof sql - (size_t)used, MATCH_WHERE_OR_ABSENT_SQL, key, value, key);
        else
            used += snprintf(sql + used, sizeof sql - (size_t)used, MATCH_WHERE_SQL, key, value);
        if (used >= (int)sizeof sql) return err("row query: %d where keys are more than one statement holds", n_where);
    }
    snprintf(sql + used, sizeof sql - (size_t)used, " ORDER BY s.idx");
    if (prepare_for_sweep(db, sql, sweep, "row query", stmt) < 0) return -1;
    for (int w = 0; w < n_where; w++) {
        sqlite3_bind_text(*stmt, 2 + 2 * w, keys[w], -1, SQLITE_STATIC);
        sqlite3_bind_text(*stmt, 3 + 2 * w, values[w], -1, SQLITE_STATIC);
    }
    return 0;
}

int store_sweep_matching_runs(struct store *db, const char *sweep, const char *const *keys,
                              const char *const *values, const int *or_absent, int n_where,
                              struct store_row_run *rows, int capacity, int *n)
{
    sqlite3_stmt *stmt;
    *n = 0;
    if (prepare_matching(db, sweep, keys, values, or_absent, n_where, &stmt) < 0) return -1;
    int more = 0, step;
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (*n == capacity) {
            more = 1;
            break;
        }
        struct store_row_run *run = &rows[(*n)++];
        copy_text(stmt, 0, run->run_id, sizeof run->run_id);
        copy_text(stmt, 1, run->status, sizeof run->status);
        run->step_done = sqlite3_column_int64(stmt, 2);
        copy_text(stmt, 3, run->seed, sizeof run->seed);
        copy_text(stmt, 4, run->steps, sizeof run->steps);
    }
    int rc = more || step == SQLITE_DONE ? more : err("row query: %s", sqlite3_errmsg(db->handle));
    sqlite3_finalize(stmt);
    return rc;
}
