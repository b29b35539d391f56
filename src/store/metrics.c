// Metric rows: store_metric appends to a buffer owned by the store (grown by doubling, so the cost
// is amortised), store_flush upserts them all in one transaction with the run's heartbeat. The
// buffer is emptied only after COMMIT succeeds, so a busy or failed flush loses nothing: the rows
// go with the next flush.
#include "store/metrics.h"

#include "core/error.h"
#include "store/db.h"
#include "store/store_internal.h"

#include <stdlib.h>
#include <string.h>

enum { ROWS_FIRST_CAPACITY = 256 };

static const char METRIC_UPSERT[] =
    "INSERT INTO metrics (run_id, name, step, value, wall_ms) VALUES (?1, ?2, ?3, ?4, ?5) "
    "ON CONFLICT (run_id, name, step) DO UPDATE SET value = excluded.value, "
    "wall_ms = excluded.wall_ms";

static const char RUN_HEARTBEAT[] =
    "UPDATE runs SET heartbeat_ms = ?2, step_done = ?3 WHERE run_id = ?1";

static int grow_rows(struct store *db)
{
    if (db->n_rows < db->rows_capacity)
        return 0;
    size_t capacity = db->rows_capacity ? 2 * db->rows_capacity : ROWS_FIRST_CAPACITY;
    struct metric_row *rows = realloc(db->rows, capacity * sizeof *rows);
    if (!rows)
        return err("cannot buffer metric rows: out of memory (%zu rows)", capacity);
    db->rows = rows;
    db->rows_capacity = capacity;
    return 0;
}

int store_metric(struct store *db, const char *run_id, const char *name, int64_t step, double value)
{
    if (strlen(run_id) >= STORE_RUN_ID_MAX)
        return err("metric '%s': run id '%s' is longer than %d characters", name, run_id,
                   STORE_RUN_ID_MAX - 1);
    if (strlen(name) >= STORE_METRIC_NAME_MAX)
        return err("metric name '%s' is longer than %d characters", name,
                   STORE_METRIC_NAME_MAX - 1);
    if (grow_rows(db) < 0)
        return -1;
    struct metric_row *row = &db->rows[db->n_rows++];
    strcpy(row->run_id, run_id);
    strcpy(row->name, name);
    row->step = step;
    row->value = value;
    row->wall_ms = store_now_ms();
    return 0;
}

int store_write_pending(struct store *db)
{
    sqlite3_stmt *stmt;
    int rc = store_stmt(db, STMT_METRIC_UPSERT, METRIC_UPSERT, &stmt);
    for (size_t i = 0; rc == SQLITE_OK && i < db->n_rows; i++) {
        const struct metric_row *row = &db->rows[i];
        store_bind_text(stmt, 1, row->run_id);
        store_bind_text(stmt, 2, row->name);
        sqlite3_bind_int64(stmt, 3, row->step);
        store_bind_real(stmt, 4, row->value);
        sqlite3_bind_int64(stmt, 5, row->wall_ms);
        rc = store_exec(stmt);
    }
    return rc;
}

struct flush {
    const char *run_id;  // NULL: no heartbeat
    int64_t step_done;
};

static int flush_body(struct store *db, void *ctx)
{
    const struct flush *flush = ctx;
    int rc = store_write_pending(db);
    if (rc == SQLITE_OK)
        rc = store_write_routing(db);
    if (rc != SQLITE_OK || !flush->run_id)
        return rc;
    sqlite3_stmt *stmt;
    rc = store_stmt(db, STMT_RUN_HEARTBEAT, RUN_HEARTBEAT, &stmt);
    if (rc != SQLITE_OK)
        return rc;
    store_bind_text(stmt, 1, flush->run_id);
    sqlite3_bind_int64(stmt, 2, store_now_ms());
    sqlite3_bind_int64(stmt, 3, flush->step_done);
    return store_exec(stmt);
}

int store_flush(struct store *db, const char *run_id, int64_t step_done)
{
    if (db->n_rows == 0 && db->n_routing == 0 && !run_id)
        return 0;
    struct flush flush = {run_id, step_done};
    if (store_write(db, flush_body, &flush, "cannot write metrics to") < 0)
        return -1;
    db->n_rows = 0;
    db->n_routing = 0;
    return 0;
}
