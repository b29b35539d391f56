// Schema creation and forward migration. A file is identified by PRAGMA application_id (promoe's)
// and its schema version by PRAGMA user_version: 0 for a new file, which gets schema.sql (embedded
// by the Makefile with `ld -r -b binary`). migrations[v] takes version v to v + 1; all of them run
// in one BEGIN IMMEDIATE transaction that re-reads the version first, so processes opening a new
// file at the same moment create the schema exactly once. Newer files and other files are refused.
#include "store/migrate.h"

#include "core/error.h"
#include "store/store_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const char _binary_schema_sql_start[], _binary_schema_sql_end[];

enum { WAL_RETRIES = 100, WAL_RETRY_WAIT_MS = 100 };

// Version 0 -> 1: the whole of schema.sql (the embedded bytes are not NUL-terminated).
static int apply_schema_v1(sqlite3 *handle)
{
    size_t size = (size_t)(_binary_schema_sql_end - _binary_schema_sql_start);
    char *sql = malloc(size + 1);
    if (!sql)
        return SQLITE_NOMEM;
    memcpy(sql, _binary_schema_sql_start, size);
    sql[size] = '\0';
    int rc = sqlite3_exec(handle, sql, NULL, NULL, NULL);
    free(sql);
    return rc;
}

// One line per run with its key figures, behind `promoe runs`; FD and IS from the run's own sampler
// seed when an evaluation was also redrawn with another (schema 4).
static const char RUN_SUMMARY_SQL[] =
        "CREATE VIEW run_summary AS "
        "SELECT r.run_id, r.label, r.status, r.step_done, "
        "  CAST((SELECT value FROM params p WHERE p.run_id = r.run_id AND p.key = 'train.steps') "
        "       AS INTEGER) AS steps, "
        "  (SELECT value FROM metrics m WHERE m.run_id = r.run_id AND m.name = 'loss' "
        "   ORDER BY m.step DESC LIMIT 1) AS loss, "
        "  coalesce(r.img_per_s, (SELECT value FROM metrics m WHERE m.run_id = r.run_id "
        "   AND m.name = 'img_per_s' ORDER BY m.step DESC LIMIT 1)) AS img_per_s, "
        "  (SELECT max(cfg_scale) FROM evals e WHERE e.run_id = r.run_id "
        "   AND e.metric IN ('fd', 'is')) AS eval_cfg, "
        "  (SELECT value FROM evals e WHERE e.run_id = r.run_id AND e.metric = 'fd' "
        "   ORDER BY e.cfg_scale DESC, e.step DESC, e.n_samples DESC, e.sample_seed = (SELECT seed FROM runs x WHERE x.run_id = e.run_id) DESC LIMIT 1) AS fd, "
        "  (SELECT value FROM evals e WHERE e.run_id = r.run_id AND e.metric = 'is' "
        "   ORDER BY e.cfg_scale DESC, e.step DESC, e.n_samples DESC, e.sample_seed = (SELECT seed FROM runs x WHERE x.run_id = e.run_id) DESC LIMIT 1) AS is_score, "
        "  r.train_s, r.error, r.host, r.pid, r.created_ms, r.started_ms, r.ended_ms "
        "FROM runs r;";

// Views for the usual questions that schema.sql lacks: one line per run with its key figures
// (run_summary, behind `promoe runs`) and the progress of each sweep (sweep_progress).
static int apply_views(sqlite3 *handle)
{
    static const char sql[] =
        "CREATE VIEW sweep_progress AS "
        "SELECT s.sweep, count(*) AS runs, sum(r.status = 'done') AS done, "
        "  sum(r.status = 'running') AS running, sum(r.status = 'queued') AS queued, "
        "  sum(r.status = 'interrupted') AS interrupted, "
        "  sum(r.status IN ('failed', 'nan')) AS failed, sum(r.step_done) AS steps_done "
        "FROM sweep_runs s JOIN runs r ON r.run_id = s.run_id GROUP BY s.sweep;";
    int rc = sqlite3_exec(handle, RUN_SUMMARY_SQL, NULL, NULL, NULL);
    return rc == SQLITE_OK ? sqlite3_exec(handle, sql, NULL, NULL, NULL) : rc;
}


// Version 2 -> 3: analysis tables (src/store/analysis.c). token_stats: the inter/intra-class
// distance figures of `promoe tokens` (variant 'centroid' or 'pairwise'; metric 'inter', 'intra',
// 'ratio'), for the tokens at the output of block `layer` at model time t. specialisation: per
// MoE layer, mutual information between class and expert of `promoe routing` (metric 'mi_bits',
// 'h_class_bits', 'h_expert_bits', 'mi_over_h_class', 'mi_over_h_expert').
static int apply_analysis_tables(sqlite3 *handle)
{
    return sqlite3_exec(handle,
                        "CREATE TABLE token_stats ("
                        "  run_id TEXT NOT NULL, step INTEGER NOT NULL, layer INTEGER NOT NULL,"
                        "  t REAL NOT NULL, n_tokens INTEGER NOT NULL, variant TEXT NOT NULL,"
                        "  metric TEXT NOT NULL, value REAL,"
                        "  PRIMARY KEY (run_id, step, layer, t, n_tokens, variant, metric)"
                        ") STRICT, WITHOUT ROWID;"
                        "CREATE TABLE specialisation ("
                        "  run_id TEXT NOT NULL, step INTEGER NOT NULL, layer INTEGER NOT NULL,"
                        "  metric TEXT NOT NULL, value REAL,"
                        "  PRIMARY KEY (run_id, step, layer, metric)"
                        ") STRICT, WITHOUT ROWID;",
                        NULL, NULL, NULL);
}

// Version 3 -> 4: the sampler seed joins the key of `evals`, so an evaluation redrawn with another
// seed (the sampling noise of a figure) is kept beside the first instead of replacing it; -1 = no
// seed (imported figures); run_summary then prefers the run's own seed. SQLite changes a key by
// copying into a new table; legacy_alter_table keeps the rename from rewriting the views, which name `evals` and find the new table.
static int apply_eval_seed_key(sqlite3 *handle)
{
    int rc = sqlite3_exec(handle,
                        "CREATE TABLE evals_v4 ("
                        "  run_id TEXT NOT NULL, step INTEGER NOT NULL, weights TEXT NOT NULL DEFAULT 'ema',"
                        "  cfg_scale REAL NOT NULL, sampler TEXT NOT NULL, sampler_steps INTEGER NOT NULL,"
                        "  n_samples INTEGER NOT NULL, reference TEXT NOT NULL, metric TEXT NOT NULL,"
                        "  value REAL, source TEXT NOT NULL DEFAULT 'harness',"
                        "  sample_seed INTEGER NOT NULL DEFAULT -1, wall_s REAL, created_ms INTEGER NOT NULL,"
                        "  PRIMARY KEY (run_id, step, weights, cfg_scale, sampler, sampler_steps, n_samples,"
                        "               reference, metric, sample_seed)"
                        ") STRICT, WITHOUT ROWID;"
                        "INSERT INTO evals_v4 SELECT run_id, step, weights, cfg_scale, sampler, sampler_steps,"
                        "  n_samples, reference, metric, value, source, coalesce(sample_seed, -1), wall_s,"
                        "  created_ms FROM evals;"
                        "PRAGMA legacy_alter_table = ON;"
                        "DROP TABLE evals;"
                        "ALTER TABLE evals_v4 RENAME TO evals;"
                        "PRAGMA legacy_alter_table = OFF;"
                        "CREATE INDEX evals_metric ON evals(metric, cfg_scale);"
                        "DROP VIEW final_evals;"
                        "CREATE VIEW final_evals AS"
                        "  SELECT run_id, max(step) AS step, weights, cfg_scale, sampler, sampler_steps, n_samples,"
                        "         reference, metric, value, source, sample_seed, wall_s, created_ms"
                        "  FROM evals"
                        "  GROUP BY run_id, weights, cfg_scale, sampler, sampler_steps, n_samples, reference,"
                        "           metric, sample_seed;"
                        "DROP VIEW run_summary;",
                        NULL, NULL, NULL);
    return rc == SQLITE_OK ? sqlite3_exec(handle, RUN_SUMMARY_SQL, NULL, NULL, NULL) : rc;
}

static int (*const migrations[])(sqlite3 *handle) = {apply_schema_v1, apply_views, apply_analysis_tables,
                                                      apply_eval_seed_key};
_Static_assert(sizeof migrations / sizeof migrations[0] == STORE_SCHEMA_VERSION,
               "one migration per schema version");

// Column 0, or columns 0 and 1, of the one row of sql (second may be NULL).
static int query_ints(sqlite3 *handle, const char *sql, int64_t *first, int64_t *second)
{
    sqlite3_stmt *stmt;
    int rc = sqlite3_prepare_v2(handle, sql, -1, &stmt, NULL);
    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite3_step(stmt);
    *first = rc == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : 0;
    if (second)
        *second = rc == SQLITE_ROW ? sqlite3_column_int64(stmt, 1) : 0;
    sqlite3_finalize(stmt);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int not_promoe(const char *path, const char *why)
{
    return err("'%s' is not a promoe database: %s", path, why);
}

// Reads the application id and schema version. SQLite result code, or -1 with a message when the
// file is not a promoe database or its schema is newer than this code's.
static int read_version(struct store *db, int64_t *version)
{
    int64_t application_id;
    // One statement, so both come from one snapshot of a file that others may be creating.
    int rc = query_ints(db->handle,
                        "SELECT application_id, user_version "
                        "FROM pragma_application_id, pragma_user_version",
                        &application_id, version);
    if ((rc & 0xff) == SQLITE_NOTADB)
        return not_promoe(db->path, sqlite3_errmsg(db->handle));
    if (rc != SQLITE_OK)
        return rc;
    if (application_id != 0 && application_id != STORE_APPLICATION_ID)
        return not_promoe(db->path, "it belongs to another application (application_id)");
    if (application_id == 0 && *version != 0)
        return not_promoe(db->path, "it has a schema version but no promoe application_id");
    if (*version > STORE_SCHEMA_VERSION)
        return err("database '%s' has schema version %lld, newer than this promoe's %d: update "
                   "promoe", db->path, (long long)*version, STORE_SCHEMA_VERSION);
    return SQLITE_OK;
}

// A version-0 file must be empty: tables without promoe's ids belong to something else.
static int check_empty(struct store *db)
{
    int64_t n_objects;
    int rc = query_ints(db->handle, "SELECT count(*) FROM sqlite_schema", &n_objects, NULL);
    if (rc == SQLITE_OK && n_objects > 0)
        return not_promoe(db->path, "it has tables but no promoe schema version");
    return rc;
}

static int set_ids(sqlite3 *handle)
{
    char sql[128];
    snprintf(sql, sizeof sql, "PRAGMA application_id = %d; PRAGMA user_version = %d",
             STORE_APPLICATION_ID, STORE_SCHEMA_VERSION);
    return sqlite3_exec(handle, sql, NULL, NULL, NULL);
}

static int migrate_body(struct store *db, void *ctx)
{
    (void)ctx;
    int64_t version;
    int rc = read_version(db, &version);
    if (rc == SQLITE_OK && version == 0)
        rc = check_empty(db);
    for (int64_t v = version; rc == SQLITE_OK && v < STORE_SCHEMA_VERSION; v++)
        rc = migrations[v](db->handle);
    if (rc == SQLITE_OK && version < STORE_SCHEMA_VERSION)
        rc = set_ids(db->handle);
    return rc;
}

// WAL is a property of the file, set once when the file is created. Changing the journal mode
// needs a moment with no other connection active, so a busy answer is retried.
static int set_wal(struct store *db)
{
    int rc = SQLITE_OK;
    for (int attempt = 0; attempt < WAL_RETRIES; attempt++) {
        sqlite3_stmt *stmt;
        rc = sqlite3_prepare_v2(db->handle, "PRAGMA journal_mode = WAL", -1, &stmt, NULL);
        if (rc == SQLITE_OK && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
            const char *mode = (const char *)sqlite3_column_text(stmt, 0);
            int is_wal = mode && (strcmp(mode, "wal") == 0 || strcmp(mode, "memory") == 0);
            sqlite3_finalize(stmt);
            if (is_wal)
                return 0;
            rc = SQLITE_BUSY;  // another connection kept the file busy: try again
        } else {
            sqlite3_finalize(stmt);
        }
        if ((rc & 0xff) == SQLITE_NOTADB)
            return not_promoe(db->path, sqlite3_errmsg(db->handle));
        if ((rc & 0xff) != SQLITE_BUSY && (rc & 0xff) != SQLITE_LOCKED)
            break;
        sqlite3_sleep(WAL_RETRY_WAIT_MS);
    }
    return err("cannot set WAL mode on database '%s': %s", db->path, sqlite3_errstr(rc));
}

int store_migrate(struct store *db)
{
    int64_t version;
    int rc = read_version(db, &version);
    if (rc == -1)
        return -1;
    if (rc != SQLITE_OK)
        return err("cannot read database '%s': %s%s%s", db->path, sqlite3_errmsg(db->handle),
                   sqlite3_system_errno(db->handle) ? ": " : "",
                   sqlite3_system_errno(db->handle) ? strerror(sqlite3_system_errno(db->handle)) : "");
    if (version == STORE_SCHEMA_VERSION)
        return 0;
    if (version == 0 && set_wal(db) < 0)
        return -1;
    return store_write(db, migrate_body, NULL, "cannot create the schema of");
}
