// evals rows and run-id lookup. Evaluations are rare (one transaction per evaluation), so the
// statements are prepared per call rather than cached with the training-time ones.
#include "store/evals.h"

#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "store/store_internal.h"

static const char EVAL_UPSERT[] =
    "INSERT INTO evals (run_id, step, weights, cfg_scale, sampler, sampler_steps, n_samples, reference, "
    "metric, value, source, sample_seed, wall_s, created_ms) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) "
    "ON CONFLICT (run_id, step, weights, cfg_scale, sampler, sampler_steps, n_samples, reference, metric) "
    "DO UPDATE SET value = excluded.value, source = excluded.source, sample_seed = excluded.sample_seed, "
    "wall_s = excluded.wall_s, created_ms = excluded.created_ms";

struct eval_batch {
    const struct eval_row *rows;
    int n;
};

static int write_rows(struct store *db, void *ctx)
{
    const struct eval_batch *b = ctx;
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db->handle, EVAL_UPSERT, -1, &st, NULL);
    int64_t now = store_now_ms();
    for (int i = 0; rc == SQLITE_OK && i < b->n; i++) {
        const struct eval_row *r = &b->rows[i];
        store_bind_text(st, 1, r->run_id);
        sqlite3_bind_int64(st, 2, r->step);
        store_bind_text(st, 3, r->weights);
        sqlite3_bind_double(st, 4, r->cfg_scale);
        store_bind_text(st, 5, r->sampler);
        sqlite3_bind_int(st, 6, r->sampler_steps);
        sqlite3_bind_int64(st, 7, r->n_samples);
        store_bind_text(st, 8, r->reference);
        store_bind_text(st, 9, r->metric);
        store_bind_real(st, 10, r->value);
        store_bind_text(st, 11, r->source);
        if (r->sample_seed < 0) sqlite3_bind_null(st, 12);
        else sqlite3_bind_int64(st, 12, r->sample_seed);
        store_bind_real(st, 13, r->wall_s);
        sqlite3_bind_int64(st, 14, now);
        rc = store_exec(st);
    }
    sqlite3_finalize(st);
    return rc;
}

int store_evals(struct store *db, const struct eval_row *rows, int n)
{
    struct eval_batch b = {rows, n};
    return store_write(db, write_rows, &b, "writing evals");
}

int store_resolve_run(struct store *db, const char *id, char *out)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db->handle, "SELECT run_id FROM runs WHERE substr(run_id, 1, length(?1)) = ?1 "
                           "ORDER BY run_id LIMIT 2", -1, &st, NULL) != SQLITE_OK)
        return err("database '%s': %s", db->path, sqlite3_errmsg(db->handle));
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int found = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (found++ == 0) snprintf(out, STORE_RUN_ID_MAX, "%s", (const char *)sqlite3_column_text(st, 0));
        else if (strcmp(out, id) != 0) {
            sqlite3_finalize(st);
            return err("run '%s' is ambiguous in database '%s': give more of the id", id, db->path);
        }
    }
    sqlite3_finalize(st);
    if (!found) return err("no run '%s' in database '%s'", id, db->path);
    return 0;
}

int store_run_param(struct store *db, const char *run_id, const char *key, char *out, size_t capacity)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db->handle, "SELECT value FROM params WHERE run_id = ?1 AND key = ?2", -1, &st, NULL) !=
        SQLITE_OK)
        return err("database '%s': %s", db->path, sqlite3_errmsg(db->handle));
    sqlite3_bind_text(st, 1, run_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
    int found = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0);
    if (found) snprintf(out, capacity, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return found;
}
