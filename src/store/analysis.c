// Writes of the analysis tables (diversity, token_stats, specialisation) and the reads behind the
// analysis commands. Statements are prepared per call: these run once per command, not per step.
#include "store/analysis.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "store/store_internal.h"

enum { FIRST_ROWS_CAPACITY = 256 };

// ---- writes ---------------------------------------------------------------------------------

// One batch of rows for one table: bind(stmt, i) binds row i's columns after run_id and step.
struct row_batch {
    const char *sql, *run_id;
    int64_t step;
    int n;
    const void *rows;
    const void *extra;
    void (*bind)(sqlite3_stmt *stmt, const struct row_batch *batch, int i);
};

static int batch_body(struct store *db, void *ctx)
{
    const struct row_batch *batch = ctx;
    sqlite3_stmt *stmt;
    int rc = sqlite3_prepare_v2(db->handle, batch->sql, -1, &stmt, NULL);
    for (int i = 0; rc == SQLITE_OK && i < batch->n; i++) {
        sqlite3_reset(stmt);
        store_bind_text(stmt, 1, batch->run_id);
        sqlite3_bind_int64(stmt, 2, batch->step);
        batch->bind(stmt, batch, i);
        rc = sqlite3_step(stmt) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(db->handle);
    }
    sqlite3_finalize(stmt);
    return rc;
}

static int write_batch(struct store *db, struct row_batch *batch, const char *table)
{
    if (store_write(db, batch_body, batch, "cannot write analysis rows into") < 0)
        return err_context("table '%s', run '%s'", table, batch->run_id);
    return 0;
}

static void bind_diversity(sqlite3_stmt *stmt, const struct row_batch *batch, int i)
{
    const struct diversity_row *row = (const struct diversity_row *)batch->rows + i;
    sqlite3_bind_int(stmt, 3, row->layer);
    sqlite3_bind_int(stmt, 4, row->k);
    store_bind_text(stmt, 5, row->variant);
    sqlite3_bind_double(stmt, 6, row->value);
}

int store_diversity(struct store *db, const char *run_id, int64_t step, const struct diversity_row *rows, int n)
{
    struct row_batch batch = {"INSERT OR REPLACE INTO diversity (run_id, step, layer, k, variant, value) "
                              "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                              run_id, step, n, rows, NULL, bind_diversity};
    return write_batch(db, &batch, "diversity");
}

struct token_stat_key {
    int layer;
    double t;
    int64_t n_tokens;
};

static void bind_token_stat(sqlite3_stmt *stmt, const struct row_batch *batch, int i)
{
    const struct token_stat_row *row = (const struct token_stat_row *)batch->rows + i;
    const struct token_stat_key *key = batch->extra;
    sqlite3_bind_int(stmt, 3, key->layer);
    sqlite3_bind_double(stmt, 4, key->t);
    sqlite3_bind_int64(stmt, 5, key->n_tokens);
    store_bind_text(stmt, 6, row->variant);
    store_bind_text(stmt, 7, row->metric);
    store_bind_real(stmt, 8, row->value);
}

int store_token_stats(struct store *db, const char *run_id, int64_t step, int layer, double t,
                      int64_t n_tokens, const struct token_stat_row *rows, int n)
{
    struct token_stat_key key = {layer, t, n_tokens};
    struct row_batch batch = {"INSERT OR REPLACE INTO token_stats (run_id, step, layer, t, n_tokens, variant, "
                              "metric, value) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                              run_id, step, n, rows, &key, bind_token_stat};
    return write_batch(db, &batch, "token_stats");
}

static void bind_specialisation(sqlite3_stmt *stmt, const struct row_batch *batch, int i)
{
    const struct specialisation_row *row = (const struct specialisation_row *)batch->rows + i;
    sqlite3_bind_int(stmt, 3, row->layer);
    store_bind_text(stmt, 4, row->metric);
    store_bind_real(stmt, 5, row->value);
}

int store_specialisation(struct store *db, const char *run_id, int64_t step,
                         const struct specialisation_row *rows, int n)
{
    struct row_batch batch = {"INSERT OR REPLACE INTO specialisation (run_id, step, layer, metric, value) "
                              "VALUES (?1, ?2, ?3, ?4, ?5)",
                              run_id, step, n, rows, NULL, bind_specialisation};
    return write_batch(db, &batch, "specialisation");
}

// ---- class routing --------------------------------------------------------------------------

static int64_t latest_class_routing_step(struct store *db, const char *run_id)
{
    sqlite3_stmt *stmt;
    int64_t step = -1;
    if (sqlite3_prepare_v2(db->handle, "SELECT max(step) FROM class_routing WHERE run_id = ?1", -1, &stmt, NULL) != SQLITE_OK)
        return -2;
    store_bind_text(stmt, 1, run_id);
    if (sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_type(stmt, 0) != SQLITE_NULL)
        step = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    return step;
}

int store_class_routing_read(struct store *db, const char *run_id, int64_t step, int64_t *step_out,
                             struct class_routing_row **rows, int *n)
{
    *rows = NULL;
    *n = 0;
    *step_out = step >= 0 ? step : latest_class_routing_step(db, run_id);
    if (*step_out == -2) return store_read_failed(db, "class routing", run_id);
    if (*step_out < 0) return 0;
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2(db->handle, "SELECT layer, class_id, expert, tokens FROM class_routing "
                           "WHERE run_id = ?1 AND step = ?2 ORDER BY layer, class_id, expert",
                           -1, &stmt, NULL) != SQLITE_OK)
        return store_read_failed(db, "class routing", run_id);
    store_bind_text(stmt, 1, run_id);
    sqlite3_bind_int64(stmt, 2, *step_out);
    int capacity = 0, rc = 0;
    while (!rc && sqlite3_step(stmt) == SQLITE_ROW) {
        if (*n == capacity) {
            capacity = capacity ? 2 * capacity : FIRST_ROWS_CAPACITY;
            struct class_routing_row *grown = realloc(*rows, sizeof **rows * capacity);
            if (!grown) {
                rc = err("out of memory reading the class routing of run '%s'", run_id);
                break;
            }
            *rows = grown;
        }
        struct class_routing_row *row = *rows + (*n)++;
        row->layer = sqlite3_column_int(stmt, 0);
        row->class_id = sqlite3_column_int(stmt, 1);
        row->expert = sqlite3_column_int(stmt, 2);
        row->tokens = sqlite3_column_int64(stmt, 3);
    }
    sqlite3_finalize(stmt);
    if (rc) {
        free(*rows);
        *rows = NULL;
        *n = 0;
    }
    return rc;
}
