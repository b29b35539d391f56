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
    "ON CONFLICT (run_id, step, weights, cfg_scale, sampler, sampler_steps, n_samples, reference, metric, sample_seed) "
    "DO UPDATE SET value = excluded.value, source = excluded.source, "
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
        sqlite3_bind_int64(st, 12, r->sample_seed < 0 ? -1 : r->sample_seed);
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
