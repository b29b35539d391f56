// Single figures of one run (run_values.h): each a one-row SELECT, prepared per call.
#include "store/run_values.h"

#include "core/error.h"
#include "store/store_internal.h"

// ?5 = 0: the run's latest evaluation; else the evaluation at that step.
static const char EVAL_SQL[] =
    "SELECT value FROM evals WHERE run_id = ?1 AND metric = ?2 AND abs(cfg_scale - ?3) < ?4 "
    "AND value IS NOT NULL AND (?5 = 0 OR step = ?5) ORDER BY step DESC, n_samples DESC, "
    "sample_seed = coalesce((SELECT CAST(value AS INTEGER) FROM params WHERE run_id = ?1 AND key = 'train.seed'), -1) "
    "DESC, sample_seed LIMIT 1";
// ?2 = 0: the latest step (for val_loss, that of a done run); ?3: k of the diversity.
static const char VAL_LOSS_SQL[] =
    "SELECT value FROM metrics WHERE run_id = ?1 AND name = 'val_loss' AND (?2 = 0 OR step = ?2) "
    "AND (?2 <> 0 OR (SELECT status FROM runs WHERE run_id = ?1) = 'done') ORDER BY step DESC LIMIT 1";
static const char DIVERSITY_SQL[] =
    "SELECT value FROM diversity WHERE run_id = ?1 AND layer = -1 AND variant = 'out' AND k = ?3 "
    "AND (?2 = 0 OR step = ?2) ORDER BY step DESC LIMIT 1";
static const char TOKEN_RATIO_SQL[] =
    "SELECT value FROM token_stats WHERE run_id = ?1 AND metric = 'ratio' AND variant = 'centroid' "
    "AND value IS NOT NULL AND (?2 = 0 OR step = ?2) ORDER BY step DESC, n_tokens DESC LIMIT 1";

// Steps a one-row statement and finalizes it: 1 with *value, 0 without a row, -1 ("<what>: reason").
static int one_value(struct store *db, sqlite3_stmt *stmt, const char *what, double *value)
{
    int step = sqlite3_step(stmt), found = step == SQLITE_ROW;
    if (found) *value = sqlite3_column_double(stmt, 0);
    sqlite3_finalize(stmt);
    return found || step == SQLITE_DONE ? found : err("%s: %s", what, sqlite3_errmsg(db->handle));
}

int store_run_eval(struct store *db, const char *run_id, const char *metric, double cfg,
                   long long step_wanted, double *value)
{
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2(db->handle, EVAL_SQL, -1, &stmt, NULL) != SQLITE_OK)
        return err("eval query: %s", sqlite3_errmsg(db->handle));
    sqlite3_bind_text(stmt, 1, run_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, metric, -1, SQLITE_STATIC);
    sqlite3_bind_double(stmt, 3, cfg);
    sqlite3_bind_double(stmt, 4, STORE_CFG_TOLERANCE);
    sqlite3_bind_int64(stmt, 5, step_wanted);
    return one_value(db, stmt, "eval query", value);
}

// One of the per-run value queries with run ?1 and step ?2 bound, and k ?3 when with_k.
static int run_value(struct store *db, const char *sql, const char *run_id, long long step_wanted, int with_k,
                     int k, double *value)
{
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2(db->handle, sql, -1, &stmt, NULL) != SQLITE_OK)
        return err("value query: %s", sqlite3_errmsg(db->handle));
    sqlite3_bind_text(stmt, 1, run_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 2, step_wanted);
    if (with_k) sqlite3_bind_int(stmt, 3, k);
    return one_value(db, stmt, "value query", value);
}

int store_run_val_loss(struct store *db, const char *run_id, long long step_wanted, double *value)
{
    return run_value(db, VAL_LOSS_SQL, run_id, step_wanted, 0, 0, value);
}

int store_run_diversity(struct store *db, const char *run_id, long long step_wanted, int k, double *value)
{
    return run_value(db, DIVERSITY_SQL, run_id, step_wanted, 1, k, value);
}

int store_run_token_ratio(struct store *db, const char *run_id, long long step_wanted, double *value)
{
    return run_value(db, TOKEN_RATIO_SQL, run_id, step_wanted, 0, 0, value);
}
