// Routing statistics rows: the `routing` table (per layer and expert) and `class_routing` (per
// layer, class and expert), buffered like metrics and upserted by the same flush transaction, so
// a resumed run overwrites its rows instead of duplicating them.
#include "store/routing.h"

#include "core/error.h"
#include "store/db.h"
#include "store/store_internal.h"

#include <stdlib.h>
#include <string.h>

enum { ROUTING_FIRST_CAPACITY = 512 };

static const char ROUTING_UPSERT[] =
    "INSERT INTO routing (run_id, step, layer, expert, t_bin, tokens_cond, tokens_uncond, gate_sum, "
    "gate_sumsq, dropped) VALUES (?1, ?2, ?3, ?4, -1, ?5, ?6, ?7, ?8, ?9) "
    "ON CONFLICT (run_id, step, layer, expert, t_bin) DO UPDATE SET tokens_cond = excluded.tokens_cond, "
    "tokens_uncond = excluded.tokens_uncond, gate_sum = excluded.gate_sum, "
    "gate_sumsq = excluded.gate_sumsq, dropped = excluded.dropped";

static const char CLASS_ROUTING_UPSERT[] =
    "INSERT INTO class_routing (run_id, step, layer, class_id, expert, tokens) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
    "ON CONFLICT (run_id, step, layer, class_id, expert) DO UPDATE SET tokens = excluded.tokens";

static struct routing_row *next_row(struct store *db, const char *run_id)
{
    if (strlen(run_id) >= STORE_RUN_ID_MAX) {
        err("routing row: run id '%s' is too long", run_id);
        return NULL;
    }
    if (db->n_routing == db->routing_capacity) {
        size_t capacity = db->routing_capacity ? 2 * db->routing_capacity : ROUTING_FIRST_CAPACITY;
        struct routing_row *rows = realloc(db->routing, capacity * sizeof *rows);
        if (!rows) {
            err("cannot buffer routing rows: out of memory (%zu rows)", capacity);
            return NULL;
        }
        db->routing = rows;
        db->routing_capacity = capacity;
    }
    struct routing_row *row = &db->routing[db->n_routing++];
    memset(row, 0, sizeof *row);
    strcpy(row->run_id, run_id);
    return row;
}

int store_routing(struct store *db, const char *run_id, int64_t step, int layer, int expert,
                  int64_t tokens_cond, int64_t tokens_uncond, double gate_sum, double gate_sumsq,
                  int64_t dropped)
{
    struct routing_row *row = next_row(db, run_id);
    if (!row) return -1;
    row->step = step;
    row->layer = layer;
    row->expert = expert;
    row->class_id = -1;
    row->tokens_cond = tokens_cond;
    row->tokens_uncond = tokens_uncond;
    row->gate_sum = gate_sum;
    row->gate_sumsq = gate_sumsq;
    row->dropped = dropped;
    return 0;
}

int store_class_routing(struct store *db, const char *run_id, int64_t step, int layer, int class_id,
                        int expert, int64_t tokens)
{
    if (class_id < 0) return err("class routing row with class %d", class_id);
    struct routing_row *row = next_row(db, run_id);
    if (!row) return -1;
    row->step = step;
    row->layer = layer;
    row->expert = expert;
    row->class_id = class_id;
    row->tokens_cond = tokens;
    return 0;
}

static int write_row(struct store *db, const struct routing_row *row)
{
    sqlite3_stmt *stmt;
    int rc = row->class_id < 0 ? store_stmt(db, STMT_ROUTING_UPSERT, ROUTING_UPSERT, &stmt)
                               : store_stmt(db, STMT_CLASS_ROUTING_UPSERT, CLASS_ROUTING_UPSERT, &stmt);
    if (rc != SQLITE_OK) return rc;
    store_bind_text(stmt, 1, row->run_id);
    sqlite3_bind_int64(stmt, 2, row->step);
    sqlite3_bind_int(stmt, 3, row->layer);
    if (row->class_id < 0) {
        sqlite3_bind_int(stmt, 4, row->expert);
        sqlite3_bind_int64(stmt, 5, row->tokens_cond);
        sqlite3_bind_int64(stmt, 6, row->tokens_uncond);
        store_bind_real(stmt, 7, row->gate_sum);
        store_bind_real(stmt, 8, row->gate_sumsq);
        sqlite3_bind_int64(stmt, 9, row->dropped);
    } else {
        sqlite3_bind_int(stmt, 4, row->class_id);
        sqlite3_bind_int(stmt, 5, row->expert);
        sqlite3_bind_int64(stmt, 6, row->tokens_cond);
    }
    return store_exec(stmt);
}

int store_write_routing(struct store *db)
{
    int rc = SQLITE_OK;
    for (size_t i = 0; rc == SQLITE_OK && i < db->n_routing; i++) rc = write_row(db, &db->routing[i]);
    return rc;
}
