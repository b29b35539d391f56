// Sweep bookkeeping in the results database (see sweeps.h). Statements here run a few times per
// sweep, not per step, so they are prepared when used rather than cached.
#include "store/sweeps.h"

#include "core/error.h"
#include "store/store_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { READ_BUSY_TIMEOUT_MS = 30000 };

static int read_failed(struct store *db, const char *what)
{
    return err("cannot read %s from database '%s': %s", what, db->path, sqlite3_errmsg(db->handle));
}

static int prepare(struct store *db, const char *sql, sqlite3_stmt **stmt, const char *what)
{
    return sqlite3_prepare_v2(db->handle, sql, -1, stmt, NULL) == SQLITE_OK ? 0 : read_failed(db, what);
}

static void copy_column(sqlite3_stmt *stmt, int column, char *buf, size_t size)
{
    const unsigned char *text = sqlite3_column_text(stmt, column);
    snprintf(buf, size, "%s", text ? (const char *)text : "");
}

static double real_column(sqlite3_stmt *stmt, int column)
{
    return sqlite3_column_type(stmt, column) == SQLITE_NULL ? NAN : sqlite3_column_double(stmt, column);
}

int store_open_readonly(struct store **out, const char *path)
{
    *out = NULL;
    if (access(path, F_OK) != 0) return 0;
    struct store *db = calloc(1, sizeof *db);
    if (!db || !(db->path = strdup(path))) {
        free(db);
        return err("cannot open database '%s': out of memory", path);
    }
    *out = db;
    if (sqlite3_open_v2(path, &db->handle, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        err("cannot open database '%s': %s", path, sqlite3_errmsg(db->handle));
        store_close(db);
        *out = NULL;
        return -1;
    }
    sqlite3_busy_timeout(db->handle, READ_BUSY_TIMEOUT_MS);
    return 0;
}

int store_sweep_sha(struct store *db, const char *sweep, char *sha)
{
    sqlite3_stmt *stmt;
    if (prepare(db, "SELECT spec_sha256 FROM sweeps WHERE sweep = ?1", &stmt, "the sweep") < 0) return -1;
    sqlite3_bind_text(stmt, 1, sweep, -1, SQLITE_STATIC);
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) copy_column(stmt, 0, sha, 65);
    sqlite3_finalize(stmt);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return read_failed(db, "the sweep");
    return rc == SQLITE_ROW;
}

int store_sweep_members(struct store *db, const char *sweep, char (**run_ids)[17], int *n)
{
    sqlite3_stmt *stmt;
    *run_ids = NULL;
    *n = 0;
    if (prepare(db, "SELECT run_id FROM sweep_runs WHERE sweep = ?1 ORDER BY idx", &stmt, "sweep runs") < 0)
        return -1;
    sqlite3_bind_text(stmt, 1, sweep, -1, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        char (*bigger)[17] = realloc(*run_ids, (size_t)(*n + 1) * sizeof *bigger);
        if (!bigger) {
            sqlite3_finalize(stmt);
            return err("out of memory");
        }
        *run_ids = bigger;
        copy_column(stmt, 0, bigger[(*n)++], 17);
    }
    sqlite3_finalize(stmt);
    return rc == SQLITE_DONE ? 0 : read_failed(db, "sweep runs");
}

// ---- store_sweep_record -----------------------------------------------------------------------

struct sweep_record {
    const char *sweep, *spec_yaml, *spec_sha256;
    const struct store_sweep_run *runs;
    int n;
    int64_t now_ms;
};

static int run_sql(struct store *db, const char *sql, sqlite3_stmt **stmt)
{
    return sqlite3_prepare_v2(db->handle, sql, -1, stmt, NULL);
}

static int upsert_sweep(struct store *db, const struct sweep_record *r)
{
    sqlite3_stmt *stmt;
    int rc = run_sql(db, "INSERT INTO sweeps (sweep, spec_yaml, spec_sha256, created_ms) "
                         "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (sweep) DO UPDATE SET "
                         "spec_yaml = excluded.spec_yaml, spec_sha256 = excluded.spec_sha256", &stmt);
    if (rc != SQLITE_OK) return rc;
    store_bind_text(stmt, 1, r->sweep);
    store_bind_text(stmt, 2, r->spec_yaml);
    store_bind_text(stmt, 3, r->spec_sha256);
    sqlite3_bind_int64(stmt, 4, r->now_ms);
    rc = store_exec(stmt);
    sqlite3_finalize(stmt);
    if (rc != SQLITE_OK) return rc;
    if ((rc = run_sql(db, "DELETE FROM sweep_runs WHERE sweep = ?1", &stmt)) != SQLITE_OK) return rc;
    store_bind_text(stmt, 1, r->sweep);
    rc = store_exec(stmt);
    sqlite3_finalize(stmt);
    return rc;
}

// The runs row of a new run, and its params; an existing run (done, or shared with another
// sweep) is left as it is.
static int insert_run(struct store *db, const struct sweep_record *r, const struct store_sweep_run *run,
                      sqlite3_stmt *insert, sqlite3_stmt *params)
{
    store_bind_text(insert, 1, run->run_id);
    store_bind_text(insert, 2, run->config_sha256);
    store_bind_text(insert, 3, run->config_yaml);
    store_bind_text(insert, 4, run->label);
    sqlite3_bind_int64(insert, 5, run->seed);
    sqlite3_bind_int64(insert, 6, r->now_ms);
    int rc = store_exec(insert);
    if (rc != SQLITE_OK || sqlite3_changes(db->handle) == 0) return rc;
    store_bind_text(params, 1, run->run_id);
    return store_insert_params(run->config_yaml, params);
}

static int insert_member(const struct sweep_record *r, const struct store_sweep_run *run, sqlite3_stmt *stmt)
{
    store_bind_text(stmt, 1, r->sweep);
    sqlite3_bind_int(stmt, 2, run->idx);
    store_bind_text(stmt, 3, run->run_id);
    return store_exec(stmt);
}

static int record_body(struct store *db, void *ctx)
{
    const struct sweep_record *r = ctx;
    sqlite3_stmt *insert = NULL, *params = NULL, *member = NULL;
    int rc = upsert_sweep(db, r);
    if (rc == SQLITE_OK)
        rc = run_sql(db, "INSERT INTO runs (run_id, config_sha256, config_yaml, label, seed, status, "
                         "created_ms) VALUES (?1, ?2, ?3, ?4, ?5, 'queued', ?6) ON CONFLICT DO NOTHING",
                     &insert);
    if (rc == SQLITE_OK)
        rc = run_sql(db, "INSERT OR REPLACE INTO params (run_id, key, value) VALUES (?1, ?2, ?3)", &params);
    if (rc == SQLITE_OK)
        rc = run_sql(db, "INSERT INTO sweep_runs (sweep, idx, run_id) VALUES (?1, ?2, ?3)", &member);
    for (int i = 0; rc == SQLITE_OK && i < r->n; i++) {
        rc = insert_run(db, r, &r->runs[i], insert, params);
        if (rc == SQLITE_OK) rc = insert_member(r, &r->runs[i], member);
    }
    sqlite3_finalize(insert);
    sqlite3_finalize(params);
    sqlite3_finalize(member);
    return rc;
}

int store_sweep_record(struct store *db, const char *sweep, const char *spec_yaml,
                       const char *spec_sha256, const struct store_sweep_run *runs, int n)
{
    struct sweep_record r = {sweep, spec_yaml, spec_sha256, runs, n, store_now_ms()};
    return store_write(db, record_body, &r, "cannot record the sweep in");
}

// ---- run state -----------------------------------------------------------------------------------

int store_run_owner(struct store *db, const char *run_id, char *status, char *host, int64_t *pid)
{
    sqlite3_stmt *stmt;
    if (prepare(db, "SELECT status, host, pid FROM runs WHERE run_id = ?1", &stmt, "a run") < 0) return -1;
    sqlite3_bind_text(stmt, 1, run_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        copy_column(stmt, 0, status, 16);
        copy_column(stmt, 1, host, 256);
        *pid = sqlite3_column_int64(stmt, 2);
    }
    sqlite3_finalize(stmt);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return read_failed(db, "a run");
    return rc == SQLITE_ROW;
}

struct mark {
    const char *run_id;
    int64_t pid, now_ms;
};

static int mark_body(struct store *db, void *ctx)
{
    const struct mark *m = ctx;
    sqlite3_stmt *stmt;
    int rc = run_sql(db, "UPDATE runs SET status = 'interrupted', ended_ms = ?3 "
                         "WHERE run_id = ?1 AND status = 'running' AND pid = ?2", &stmt);
    if (rc != SQLITE_OK) return rc;
    store_bind_text(stmt, 1, m->run_id);
    sqlite3_bind_int64(stmt, 2, m->pid);
    sqlite3_bind_int64(stmt, 3, m->now_ms);
    rc = store_exec(stmt);
    sqlite3_finalize(stmt);
    if (rc != SQLITE_OK) return rc;
    if ((rc = run_sql(db, "UPDATE attempts SET outcome = 'interrupted', ended_ms = ?3 "
                          "WHERE run_id = ?1 AND pid = ?2 AND ended_ms IS NULL", &stmt)) != SQLITE_OK)
        return rc;
    store_bind_text(stmt, 1, m->run_id);
    sqlite3_bind_int64(stmt, 2, m->pid);
    sqlite3_bind_int64(stmt, 3, m->now_ms);
    rc = store_exec(stmt);
    sqlite3_finalize(stmt);
    return rc;
}

int store_run_mark_interrupted(struct store *db, const char *run_id, int64_t pid)
{
    struct mark m = {run_id, pid, store_now_ms()};
    return store_write(db, mark_body, &m, "cannot mark a run interrupted in");
}

struct failure {
    const char *run_id, *error;
    int64_t now_ms;
};

static int failed_body(struct store *db, void *ctx)
{
    const struct failure *f = ctx;
    sqlite3_stmt *stmt;
    int rc = run_sql(db, "UPDATE runs SET status = 'failed', error = ?2, ended_ms = ?3 "
                         "WHERE run_id = ?1 AND status = 'queued'", &stmt);
    if (rc != SQLITE_OK) return rc;
    store_bind_text(stmt, 1, f->run_id);
    store_bind_text(stmt, 2, f->error);
    sqlite3_bind_int64(stmt, 3, f->now_ms);
    rc = store_exec(stmt);
    sqlite3_finalize(stmt);
    return rc;
}

struct owned_failure {
    const char *run_id, *error;
    int64_t pid, now_ms;
};

static int owned_failed_body(struct store *db, void *ctx)
{
    const struct owned_failure *f = ctx;
    sqlite3_stmt *stmt;
    int rc = run_sql(db, "UPDATE runs SET status = 'failed', error = ?3, ended_ms = ?4 "
                         "WHERE run_id = ?1 AND status = 'running' AND pid = ?2", &stmt);
    if (rc != SQLITE_OK) return rc;
    store_bind_text(stmt, 1, f->run_id);
    sqlite3_bind_int64(stmt, 2, f->pid);
    store_bind_text(stmt, 3, f->error);
    sqlite3_bind_int64(stmt, 4, f->now_ms);
    rc = store_exec(stmt);
    sqlite3_finalize(stmt);
    if (rc != SQLITE_OK) return rc;
    if ((rc = run_sql(db, "UPDATE attempts SET outcome = 'failed', ended_ms = ?3 "
                          "WHERE run_id = ?1 AND pid = ?2 AND ended_ms IS NULL", &stmt)) != SQLITE_OK)
        return rc;
    store_bind_text(stmt, 1, f->run_id);
    sqlite3_bind_int64(stmt, 2, f->pid);
    sqlite3_bind_int64(stmt, 3, f->now_ms);
    rc = store_exec(stmt);
    sqlite3_finalize(stmt);
    return rc;
}

int store_run_mark_failed_owned(struct store *db, const char *run_id, int64_t pid, const char *error)
{
    struct owned_failure f = {run_id, error, pid, store_now_ms()};
    return store_write(db, owned_failed_body, &f, "cannot mark a run failed in");
}

int store_run_mark_failed(struct store *db, const char *run_id, const char *error)
{
    struct failure f = {run_id, error, store_now_ms()};
    return store_write(db, failed_body, &f, "cannot mark a run failed in");
}

// ---- store_run_list ------------------------------------------------------------------------------

static const char RUN_LIST[] =
    "SELECT s.run_id, s.label, s.status, s.error, s.step_done, s.steps, s.loss, s.img_per_s, "
    "  s.eval_cfg, s.fd, s.is_score "
    "FROM run_summary s LEFT JOIN sweep_runs m ON m.run_id = s.run_id AND m.sweep = ?1 "
    "WHERE (?1 IS NULL OR m.sweep IS NOT NULL) AND (?2 IS NULL OR s.status = ?2) "
    "ORDER BY m.idx, s.created_ms, s.run_id";

static void read_row(sqlite3_stmt *stmt, struct store_run_row *r)
{
    copy_column(stmt, 0, r->run_id, sizeof r->run_id);
    copy_column(stmt, 1, r->label, sizeof r->label);
    copy_column(stmt, 2, r->status, sizeof r->status);
    copy_column(stmt, 3, r->error, sizeof r->error);
    r->step_done = sqlite3_column_int64(stmt, 4);
    r->steps = sqlite3_column_int64(stmt, 5);
    r->loss = real_column(stmt, 6);
    r->img_per_s = real_column(stmt, 7);
    r->eval_cfg = real_column(stmt, 8);
    r->fd = real_column(stmt, 9);
    r->is_score = real_column(stmt, 10);
}

int store_run_list(struct store *db, const char *sweep, const char *status,
                   int (*row)(const struct store_run_row *r, void *ctx), void *ctx)
{
    sqlite3_stmt *stmt;
    if (prepare(db, RUN_LIST, &stmt, "the run list") < 0) return -1;
    store_bind_text(stmt, 1, sweep);
    store_bind_text(stmt, 2, status);
    int rc, stopped = 0;
    struct store_run_row r;
    while (!stopped && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        read_row(stmt, &r);
        stopped = row(&r, ctx) < 0;
    }
    sqlite3_finalize(stmt);
    if (stopped) return -1;
    return rc == SQLITE_DONE ? 0 : read_failed(db, "the run list");
}
