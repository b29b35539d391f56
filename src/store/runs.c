// Run bookkeeping: the runs row (upserted when a run starts or resumes, closed when it ends), one
// attempts row per start, the flattened config in params, the checkpoints of a run, and the two
// reads that resuming needs (status, latest checkpoint). Each write is one transaction through
// store_write, so a crash leaves either all of a run's start or none of it.
#include "store/runs.h"

#include "core/error.h"
#include "io/path.h"
#include "store/db.h"
#include "store/store_internal.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#ifdef PROMOE_VERSION
#define CODE_VERSION PROMOE_VERSION
#else
#define CODE_VERSION "unknown"
#endif

#ifdef __VERSION__
#define COMPILER_VERSION "cc " __VERSION__
#else
#define COMPILER_VERSION "cc unknown"
#endif

enum { HOST_MAX = 256, BUILD_INFO_MAX = 256, STATUS_CAPACITY = 16 };

// ---- store_run_begin -------------------------------------------------------------------------

// Attempts left open were killed (no store_run_end): they ended at the run's last heartbeat.
static const char ATTEMPT_CLOSE_STALE[] =
    "UPDATE attempts SET outcome = 'interrupted', "
    "ended_ms = coalesce((SELECT heartbeat_ms FROM runs WHERE run_id = ?1), ?2) "
    "WHERE run_id = ?1 AND ended_ms IS NULL";

static const char RUN_UPSERT[] =
    "INSERT INTO runs (run_id, config_sha256, config_yaml, label, seed, status, code_commit, "
    "  code_dirty, build_info, host, pid, threads, world_size, params_total, params_active, "
    "  step_done, created_ms, started_ms, heartbeat_ms) "
    "VALUES (?1, ?2, ?3, ?4, ?5, 'running', ?6, ?7, ?8, ?9, ?10, ?11, ?16, ?12, ?13, ?14, ?15, "
    "  ?15, ?15) "
    "ON CONFLICT (run_id) DO UPDATE SET config_sha256 = excluded.config_sha256, "
    "  config_yaml = excluded.config_yaml, label = coalesce(excluded.label, label), "
    "  seed = excluded.seed, status = 'running', error = NULL, "
    "  code_commit = excluded.code_commit, code_dirty = excluded.code_dirty, "
    "  build_info = excluded.build_info, host = excluded.host, pid = excluded.pid, "
    "  threads = excluded.threads, world_size = excluded.world_size, "
    "  params_total = excluded.params_total, params_active = excluded.params_active, "
    "  step_done = excluded.step_done, started_ms = excluded.started_ms, "
    "  heartbeat_ms = excluded.heartbeat_ms, ended_ms = NULL, img_per_s = NULL, "
    "  train_s = CASE WHEN excluded.step_done > 0 THEN train_s END";   // a resume adds to earlier attempts

static const char PARAMS_DELETE[] = "DELETE FROM params WHERE run_id = ?1";
static const char PARAM_INSERT[] =
    "INSERT OR REPLACE INTO params (run_id, key, value) VALUES (?1, ?2, ?3)";

static const char ATTEMPT_INSERT[] =
    "INSERT INTO attempts (run_id, attempt, host, pid, from_step, started_ms) "
    "SELECT ?1, coalesce(max(attempt), 0) + 1, ?2, ?3, ?4, ?5 FROM attempts WHERE run_id = ?1";

// Rows after the resumed step will be written again.
static const char METRICS_TRUNCATE[] = "DELETE FROM metrics WHERE run_id = ?1 AND step > ?2";
static const char ROUTING_TRUNCATE[] = "DELETE FROM routing WHERE run_id = ?1 AND step > ?2";
static const char CLASS_ROUTING_TRUNCATE[] =
    "DELETE FROM class_routing WHERE run_id = ?1 AND step > ?2";

struct run_begin {
    const struct run_info *info;
    char host[HOST_MAX];
    char build_info[BUILD_INFO_MAX];
    int64_t now_ms;
};

static int close_stale_attempts(struct store *db, const struct run_begin *begin)
{
    sqlite3_stmt *stmt;
    int rc = store_stmt(db, STMT_ATTEMPT_CLOSE_STALE, ATTEMPT_CLOSE_STALE, &stmt);
    if (rc != SQLITE_OK)
        return rc;
    store_bind_text(stmt, 1, begin->info->run_id);
    sqlite3_bind_int64(stmt, 2, begin->now_ms);
    return store_exec(stmt);
}

static int upsert_run(struct store *db, const struct run_begin *begin)
{
    const struct run_info *info = begin->info;
    sqlite3_stmt *stmt;
    int rc = store_stmt(db, STMT_RUN_UPSERT, RUN_UPSERT, &stmt);
    if (rc != SQLITE_OK)
        return rc;
    store_bind_text(stmt, 1, info->run_id);
    store_bind_text(stmt, 2, info->config_sha256);
    store_bind_text(stmt, 3, info->config_yaml);
    store_bind_text(stmt, 4, info->label);
    sqlite3_bind_int64(stmt, 5, info->seed);
    store_bind_text(stmt, 6, CODE_VERSION);
#ifdef PROMOE_DIRTY
    sqlite3_bind_int(stmt, 7, PROMOE_DIRTY);
#endif
    store_bind_text(stmt, 8, begin->build_info);
    store_bind_text(stmt, 9, begin->host);
    sqlite3_bind_int64(stmt, 10, getpid());
    sqlite3_bind_int(stmt, 11, info->threads);
    sqlite3_bind_int64(stmt, 12, info->params_total);
    sqlite3_bind_int64(stmt, 13, info->params_active);
    sqlite3_bind_int64(stmt, 14, info->from_step);
    sqlite3_bind_int64(stmt, 15, begin->now_ms);
    sqlite3_bind_int(stmt, 16, info->world_size > 0 ? info->world_size : 1);
    return store_exec(stmt);
}

// One params row per "key: value" line of the canonical config text (the value is what follows
// the first ':' and one space; empty lines are skipped).
int store_insert_params(const char *config_yaml, sqlite3_stmt *stmt)
{
    const char *line = config_yaml;
    for (int line_number = 1; *line; line_number++) {
        size_t length = strcspn(line, "\n");
        const char *colon = memchr(line, ':', length);
        if (length > 0 && !colon)
            return err("config text line %d is not 'key: value': '%.*s'", line_number,
                       (int)length, line);
        if (length > 0) {
            const char *value = colon + 1 + (colon + 1 < line + length && colon[1] == ' ');
            sqlite3_bind_text(stmt, 2, line, (int)(colon - line), SQLITE_STATIC);
            sqlite3_bind_text(stmt, 3, value, (int)(line + length - value), SQLITE_STATIC);
            int rc = store_exec(stmt);
            if (rc != SQLITE_OK)
                return rc;
        }
        line += length + (line[length] == '\n');
    }
    return SQLITE_OK;
}

static int replace_params(struct store *db, const struct run_begin *begin)
{
    sqlite3_stmt *stmt;
    int rc = store_stmt(db, STMT_PARAMS_DELETE, PARAMS_DELETE, &stmt);
    if (rc != SQLITE_OK)
        return rc;
    store_bind_text(stmt, 1, begin->info->run_id);
    if ((rc = store_exec(stmt)) != SQLITE_OK)
        return rc;
    if ((rc = store_stmt(db, STMT_PARAM_INSERT, PARAM_INSERT, &stmt)) != SQLITE_OK)
        return rc;
    store_bind_text(stmt, 1, begin->info->run_id);
    return store_insert_params(begin->info->config_yaml, stmt);
}

static int add_attempt(struct store *db, const struct run_begin *begin)
{
    sqlite3_stmt *stmt;
    int rc = store_stmt(db, STMT_ATTEMPT_INSERT, ATTEMPT_INSERT, &stmt);
    if (rc != SQLITE_OK)
        return rc;
    store_bind_text(stmt, 1, begin->info->run_id);
    store_bind_text(stmt, 2, begin->host);
    sqlite3_bind_int64(stmt, 3, getpid());
    sqlite3_bind_int64(stmt, 4, begin->info->from_step);
    sqlite3_bind_int64(stmt, 5, begin->now_ms);
    return store_exec(stmt);
}

static int truncate_one(struct store *db, enum store_stmt_id id, const char *sql,
                        const struct run_begin *begin)
{
    sqlite3_stmt *stmt;
    int rc = store_stmt(db, id, sql, &stmt);
    if (rc != SQLITE_OK)
        return rc;
    store_bind_text(stmt, 1, begin->info->run_id);
    sqlite3_bind_int64(stmt, 2, begin->info->from_step);
    return store_exec(stmt);
}

// Also for a fresh start (from_step 0): rows left by an earlier attempt that got further are
// stale, since every step after from_step is trained again.
static int truncate_after_resume(struct store *db, const struct run_begin *begin)
{
    int rc = truncate_one(db, STMT_METRICS_TRUNCATE, METRICS_TRUNCATE, begin);
    if (rc == SQLITE_OK)
        rc = truncate_one(db, STMT_ROUTING_TRUNCATE, ROUTING_TRUNCATE, begin);
    if (rc == SQLITE_OK)
        rc = truncate_one(db, STMT_CLASS_ROUTING_TRUNCATE, CLASS_ROUTING_TRUNCATE, begin);
    return rc;
}

static int run_begin_body(struct store *db, void *ctx)
{
    static int (*const steps[])(struct store *, const struct run_begin *) = {
        close_stale_attempts, upsert_run, replace_params, add_attempt, truncate_after_resume,
    };
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        int rc = steps[i](db, ctx);
        if (rc != SQLITE_OK)
            return rc;
    }
    return SQLITE_OK;
}

int store_run_begin(struct store *db, const struct run_info *info)
{
    if (!info->run_id || !info->config_sha256 || !info->config_yaml)
        return err("run_info without run id, config hash or config text");
    struct run_begin begin = {.info = info, .now_ms = store_now_ms()};
    if (gethostname(begin.host, sizeof begin.host) != 0)
        strcpy(begin.host, "unknown");
    begin.host[sizeof begin.host - 1] = '\0';
    snprintf(begin.build_info, sizeof begin.build_info, "%s, sqlite %s", COMPILER_VERSION,
             sqlite3_libversion());
    if (store_write(db, run_begin_body, &begin, "cannot record the start of a run in") < 0)
        return err_context("run '%s'", info->run_id);
    return 0;
}

// ---- store_run_end ---------------------------------------------------------------------------

static const char RUN_END[] =
    "UPDATE runs SET status = ?2, error = ?3, ended_ms = ?4, heartbeat_ms = ?4, "
    "train_s = CASE WHEN ?5 IS NULL THEN train_s ELSE coalesce(train_s, 0) + ?5 END, "
    "img_per_s = ?6 WHERE run_id = ?1";

static const char ATTEMPT_END[] =
    "UPDATE attempts SET ended_ms = ?2, outcome = ?3 WHERE run_id = ?1 AND attempt = "
    "(SELECT max(attempt) FROM attempts WHERE run_id = ?1)";

struct run_end {
    const char *run_id, *status, *error;
    double train_s, img_per_s;
    int64_t now_ms;
    int found;  // the runs row exists
};

static int end_run_row(struct store *db, struct run_end *end)
{
    sqlite3_stmt *stmt;
    int rc = store_stmt(db, STMT_RUN_END, RUN_END, &stmt);
    if (rc != SQLITE_OK)
        return rc;
    store_bind_text(stmt, 1, end->run_id);
    store_bind_text(stmt, 2, end->status);
    store_bind_text(stmt, 3, end->error);
    sqlite3_bind_int64(stmt, 4, end->now_ms);
    store_bind_real(stmt, 5, end->train_s);
    store_bind_real(stmt, 6, end->img_per_s);
    rc = store_exec(stmt);
    end->found = sqlite3_changes(db->handle) > 0;
    return rc;
}

static int end_attempt(struct store *db, const struct run_end *end)
{
    sqlite3_stmt *stmt;
    int rc = store_stmt(db, STMT_ATTEMPT_END, ATTEMPT_END, &stmt);
    if (rc != SQLITE_OK)
        return rc;
    store_bind_text(stmt, 1, end->run_id);
    sqlite3_bind_int64(stmt, 2, end->now_ms);
    store_bind_text(stmt, 3, end->status);
    return store_exec(stmt);
}

static int run_end_body(struct store *db, void *ctx)
{
    int rc = store_write_pending(db);
    if (rc == SQLITE_OK)
        rc = end_run_row(db, ctx);
    if (rc == SQLITE_OK)
        rc = end_attempt(db, ctx);
    return rc;
}

static int is_end_status(const char *status)
{
    static const char *const statuses[] = {"done", "failed", "nan", "interrupted"};
    for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++)
        if (strcmp(status, statuses[i]) == 0)
            return 1;
    return 0;
}

int store_run_end(struct store *db, const char *run_id, const char *status, const char *error,
                  double train_s, double img_per_s)
{
    if (!is_end_status(status))
        return err("run '%s': end status '%s' is not done, failed, nan or interrupted", run_id,
                   status);
    struct run_end end = {run_id, status, error, train_s, img_per_s, store_now_ms(), 0};
    if (store_write(db, run_end_body, &end, "cannot record the end of a run in") < 0)
        return err_context("run '%s'", run_id);
    db->n_rows = 0;  // written with the end of the run
    if (!end.found)
        return err("run '%s' is not in database '%s'", run_id, db->path);
    return 0;
}

// ---- checkpoints -----------------------------------------------------------------------------

static const char CHECKPOINT_UPSERT[] =
    "INSERT OR REPLACE INTO checkpoints (run_id, step, kind, path, bytes, sha256, created_ms) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

struct checkpoint {
    const char *run_id, *kind, *path, *sha256;
    int64_t step, bytes;
};

static int checkpoint_body(struct store *db, void *ctx)
{
    const struct checkpoint *checkpoint = ctx;
    sqlite3_stmt *stmt;
    int rc = store_stmt(db, STMT_CHECKPOINT_UPSERT, CHECKPOINT_UPSERT, &stmt);
    if (rc != SQLITE_OK)
        return rc;
    store_bind_text(stmt, 1, checkpoint->run_id);
    sqlite3_bind_int64(stmt, 2, checkpoint->step);
    store_bind_text(stmt, 3, checkpoint->kind);
    store_bind_text(stmt, 4, checkpoint->path);
    sqlite3_bind_int64(stmt, 5, checkpoint->bytes);
    store_bind_text(stmt, 6, checkpoint->sha256);
    sqlite3_bind_int64(stmt, 7, store_now_ms());
    return store_exec(stmt);
}

int store_checkpoint(struct store *db, const char *run_id, int64_t step, const char *kind,
                     const char *path, int64_t bytes, const char *sha256)
{
    if (strcmp(kind, "train") != 0 && strcmp(kind, "ema") != 0 && strcmp(kind, "weights") != 0)
        return err("checkpoint '%s': kind '%s' is not train, ema or weights", path, kind);
    struct checkpoint checkpoint = {run_id, kind, path, sha256, step, bytes};
    if (store_write(db, checkpoint_body, &checkpoint, "cannot record a checkpoint in") < 0)
        return err_context("checkpoint '%s' of run '%s'", path, run_id);
    return 0;
}

// ---- reads -----------------------------------------------------------------------------------

static const char RUN_STATUS[] = "SELECT status, step_done FROM runs WHERE run_id = ?1";

static const char CHECKPOINT_LATEST[] =
    "SELECT path, step FROM checkpoints WHERE run_id = ?1 AND kind = ?2 "
    "ORDER BY step DESC LIMIT 1";

static int read_failed(struct store *db, const char *what, const char *run_id)
{
    return err("cannot read the %s of run '%s' from database '%s': %s", what, run_id, db->path,
               sqlite3_errmsg(db->handle));
}

// Copies column 0 into buf of capacity size; -1 if it does not fit.
static int copy_text(sqlite3_stmt *stmt, char *buf, size_t size)
{
    const char *text = (const char *)sqlite3_column_text(stmt, 0);
    size_t length = text ? strlen(text) : 0;
    if (length >= size)
        return -1;
    memcpy(buf, text ? text : "", length + 1);
    return 0;
}

int store_run_status(struct store *db, const char *run_id, char *status, int64_t *step_done)
{
    sqlite3_stmt *stmt;
    if (store_stmt(db, STMT_RUN_STATUS, RUN_STATUS, &stmt) != SQLITE_OK)
        return read_failed(db, "status", run_id);
    store_bind_text(stmt, 1, run_id);
    int rc = sqlite3_step(stmt);
    int found = rc == SQLITE_ROW;
    if (found && status && copy_text(stmt, status, STATUS_CAPACITY) < 0) {
        sqlite3_reset(stmt);
        return err("run '%s': status longer than %d characters in database '%s'", run_id,
                   STATUS_CAPACITY - 1, db->path);
    }
    if (found && step_done)
        *step_done = sqlite3_column_int64(stmt, 1);
    sqlite3_reset(stmt);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return read_failed(db, "status", run_id);
    return found;
}

int store_latest_checkpoint(struct store *db, const char *run_id, const char *kind, char *path,
                            int64_t *step)
{
    sqlite3_stmt *stmt;
    if (store_stmt(db, STMT_CHECKPOINT_LATEST, CHECKPOINT_LATEST, &stmt) != SQLITE_OK)
        return read_failed(db, "checkpoints", run_id);
    store_bind_text(stmt, 1, run_id);
    store_bind_text(stmt, 2, kind);
    int rc = sqlite3_step(stmt);
    int found = rc == SQLITE_ROW;
    if (found && copy_text(stmt, path, IO_PATH_MAX) < 0) {
        sqlite3_reset(stmt);
        return err("run '%s': checkpoint path longer than %d characters in database '%s'",
                   run_id, IO_PATH_MAX - 1, db->path);
    }
    if (found)
        *step = sqlite3_column_int64(stmt, 1);
    sqlite3_reset(stmt);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return read_failed(db, "checkpoints", run_id);
    return found;
}
