// The results database (src/store): schema creation and version checks, run start / resume / end,
// metric buffering and upsert, NaN as NULL, checkpoints, views, refusal of newer and foreign
// files and of unwritable folders, retry on a busy database, and several processes writing one
// file at once (fresh file races and 4 x 2000 rows) without losing a row.
#include "check.h"
#include "core/error.h"
#include "scratch.h"
#include "store/db.h"
#include "store/store_internal.h"

#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char tmp_dir[] = "/tmp/promoe_test_store_XXXXXX";

static const char *path_in(const char *name) { return scratch_path(tmp_dir, name); }

static int64_t query_int(struct store *db, const char *sql)
{
    sqlite3_stmt *stmt;
    int64_t value = -12345;
    if (sqlite3_prepare_v2(store_handle(db), sql, -1, &stmt, NULL) != SQLITE_OK) {
        fprintf(stderr, "query failed: %s: %s\n", sql, sqlite3_errmsg(store_handle(db)));
        return value;
    }
    if (sqlite3_step(stmt) == SQLITE_ROW)
        value = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    return value;
}

// Column 0 of the first row as a double; NaN for NULL, -12345 for no row.
static double query_real(struct store *db, const char *sql)
{
    sqlite3_stmt *stmt;
    double value = -12345;
    if (sqlite3_prepare_v2(store_handle(db), sql, -1, &stmt, NULL) != SQLITE_OK)
        return value;
    if (sqlite3_step(stmt) == SQLITE_ROW)
        value = sqlite3_column_type(stmt, 0) == SQLITE_NULL ? NAN : sqlite3_column_double(stmt, 0);
    sqlite3_finalize(stmt);
    return value;
}

static const char *query_text(struct store *db, const char *sql)
{
    static char text[1024];
    sqlite3_stmt *stmt;
    snprintf(text, sizeof text, "(no row)");
    if (sqlite3_prepare_v2(store_handle(db), sql, -1, &stmt, NULL) != SQLITE_OK)
        return "(bad query)";
    if (sqlite3_step(stmt) == SQLITE_ROW)
        snprintf(text, sizeof text, "%s",
                 sqlite3_column_type(stmt, 0) == SQLITE_NULL
                     ? "(null)" : (const char *)sqlite3_column_text(stmt, 0));
    sqlite3_finalize(stmt);
    return text;
}

static void exec_raw(const char *path, const char *sql)
{
    sqlite3 *handle;
    sqlite3_open(path, &handle);
    if (sqlite3_exec(handle, sql, NULL, NULL, NULL) != SQLITE_OK)
        fprintf(stderr, "exec_raw %s: %s\n", sql, sqlite3_errmsg(handle));
    sqlite3_close(handle);
}

static struct run_info run_info_of(const char *run_id, int64_t from_step)
{
    struct run_info info = {
        .run_id = run_id,
        .config_sha256 = run_id,  // unique per run, which is all the schema asks
        .config_yaml = "data.path: /data/a:b\nmodel.hidden: 64\nsample.note:\ntrain.lr: 0.0001\n",
        .label = "test",
        .seed = 7,
        .threads = 2,
        .params_total = 1000,
        .params_active = 600,
        .from_step = from_step,
    };
    return info;
}

static double seconds_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void test_fresh_schema(void)
{
    struct store *db;
    const char *path = path_in("a/b/c/fresh.db");
    CHECK(store_open(&db, path) == 0, "open %s: %s", path, err_message());
    if (!db)
        return;
    CHECK(query_int(db, "PRAGMA user_version") == STORE_SCHEMA_VERSION, "schema version");
    CHECK(query_int(db, "PRAGMA application_id") == 0x50724d6f, "application id");
    CHECK(strcmp(query_text(db, "PRAGMA journal_mode"), "wal") == 0, "journal mode %s",
          query_text(db, "PRAGMA journal_mode"));
    CHECK(query_int(db, "PRAGMA foreign_keys") == 1, "foreign keys on");
    CHECK(query_int(db, "PRAGMA synchronous") == 1, "synchronous NORMAL");
    CHECK(query_int(db, "PRAGMA busy_timeout") == 30000, "busy timeout");
    CHECK(query_int(db, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name IN "
                        "('sweeps','runs','sweep_runs','params','attempts','metrics','routing',"
                        "'class_routing','evals','diversity','checkpoints','merged_shards')") == 12,
          "12 tables");
    CHECK(query_int(db, "SELECT count(*) FROM sqlite_schema WHERE type = 'view' AND name IN "
                        "('latest_metrics','final_evals','routing_balance','loss_curve')") == 4,
          "4 views");
    // 12 of schema version 1, token_stats and specialisation of version 3.
    CHECK(query_int(db, "SELECT count(*) FROM pragma_table_list WHERE strict = 1") == 14,
          "all tables STRICT");
    store_close(db);
    CHECK(store_open(&db, path) == 0, "reopen: %s", err_message());
    store_close(db);
}

static void test_metrics_roundtrip(struct store *db)
{
    struct run_info info = run_info_of("00000000000000a1", 0);
    CHECK(store_run_begin(db, &info) == 0, "run begin: %s", err_message());
    CHECK(strcmp(query_text(db, "SELECT status FROM runs WHERE run_id = '00000000000000a1'"),
                 "running") == 0, "status running");
    CHECK(query_int(db, "SELECT pid FROM runs") == getpid(), "pid");
    CHECK(strcmp(query_text(db, "SELECT code_commit FROM runs"), "unknown") == 0, "code version");
    CHECK(query_int(db, "SELECT count(*) FROM runs WHERE host IS NOT NULL AND threads = 2 AND "
                        "world_size = 1 AND params_total = 1000 AND params_active = 600 AND "
                        "seed = 7 AND label = 'test' AND created_ms > 0 AND "
                        "started_ms = created_ms AND heartbeat_ms = created_ms") == 1,
          "runs row");
    CHECK(query_int(db, "SELECT count(*) FROM params") == 4, "4 params");
    CHECK(strcmp(query_text(db, "SELECT value FROM params WHERE key = 'data.path'"),
                 "/data/a:b") == 0, "value after the first colon");
    CHECK(strcmp(query_text(db, "SELECT value FROM params WHERE key = 'sample.note'"), "") == 0,
          "empty value");
    CHECK(strcmp(query_text(db, "SELECT value FROM params WHERE key = 'train.lr'"),
                 "0.0001") == 0, "lr param");

    const double values[] = {0.1, 1e-300, -3.5, 1.0 / 3.0, 123456789.123456789};
    for (int i = 0; i < 5; i++)
        CHECK(store_metric(db, "00000000000000a1", "loss", i * 10, values[i]) == 0, "metric");
    CHECK(store_metric(db, "00000000000000a1", "grad_norm", 10, NAN) == 0, "nan metric");
    CHECK(query_int(db, "SELECT count(*) FROM metrics") == 0, "nothing written before flush");
    CHECK(store_flush(db, "00000000000000a1", 40) == 0, "flush: %s", err_message());
    CHECK(query_int(db, "SELECT count(*) FROM metrics") == 6, "6 rows after flush");
    for (int i = 0; i < 5; i++) {
        char sql[160];
        snprintf(sql, sizeof sql, "SELECT value FROM metrics WHERE name = 'loss' AND step = %d",
                 i * 10);
        CHECK(query_real(db, sql) == values[i], "value %d read back exactly", i);
    }
    CHECK(query_int(db, "SELECT count(*) FROM metrics WHERE name = 'grad_norm' AND "
                        "value IS NULL") == 1, "NaN stored as NULL");
    CHECK(query_int(db, "SELECT step_done FROM runs") == 40, "step_done");
    CHECK(query_int(db, "SELECT count(*) FROM metrics WHERE wall_ms <= 0") == 0, "wall_ms");

    CHECK(store_metric(db, "00000000000000a1", "loss", 20, 9.5) == 0, "upsert metric");
    CHECK(store_metric(db, "00000000000000a1", "loss", 20, 9.75) == 0, "twice in one flush");
    CHECK(store_flush(db, "00000000000000a1", 40) == 0, "flush: %s", err_message());
    CHECK(query_int(db, "SELECT count(*) FROM metrics") == 6, "upsert does not duplicate");
    CHECK(query_real(db, "SELECT value FROM metrics WHERE name = 'loss' AND step = 20") == 9.75,
          "upsert keeps the last value");
    CHECK(store_flush(db, NULL, 0) == 0, "empty flush");

    char long_name[100];
    memset(long_name, 'x', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    CHECK(store_metric(db, "00000000000000a1", long_name, 1, 1.0) == -1, "too long a name");
    CHECK(strstr(err_message(), "longer than") != NULL, "message: %s", err_message());
}

static void test_resume(struct store *db)
{
    const char *run = "00000000000000b2";
    struct run_info info = run_info_of(run, 0);
    CHECK(store_run_begin(db, &info) == 0, "run begin: %s", err_message());
    int64_t created = query_int(db, "SELECT created_ms FROM runs WHERE run_id = '00000000000000b2'");
    for (int step = 10; step <= 100; step += 10) {
        store_metric(db, run, "loss", step, step * 0.5);
        store_metric(db, run, "mse", step, step * 0.25);
    }
    CHECK(store_flush(db, run, 100) == 0, "flush: %s", err_message());
    sqlite3_exec(store_handle(db),
                 "INSERT INTO routing (run_id, step, layer, expert, tokens_cond, tokens_uncond) "
                 "VALUES ('00000000000000b2', 50, 0, 0, 5, 1), ('00000000000000b2', 60, 0, 0, 5, 1);"
                 "INSERT INTO class_routing VALUES ('00000000000000b2', 50, 0, 3, 0, 9),"
                 "('00000000000000b2', 70, 0, 3, 0, 9)", NULL, NULL, NULL);
    usleep(2000);

    info.from_step = 50;
    CHECK(store_run_begin(db, &info) == 0, "resume: %s", err_message());
    CHECK(query_int(db, "SELECT count(*) FROM metrics WHERE run_id = '00000000000000b2'") == 10,
          "rows up to step 50 kept (2 names x 5)");
    CHECK(query_int(db, "SELECT max(step) FROM metrics WHERE run_id = '00000000000000b2'") == 50,
          "rows after step 50 deleted");
    CHECK(query_real(db, "SELECT value FROM metrics WHERE run_id = '00000000000000b2' AND "
                         "name = 'loss' AND step = 50") == 25.0, "kept row unchanged");
    CHECK(query_int(db, "SELECT count(*) FROM routing WHERE run_id = '00000000000000b2'") == 1 &&
          query_int(db, "SELECT step FROM routing WHERE run_id = '00000000000000b2'") == 50,
          "routing after step 50 deleted");
    CHECK(query_int(db, "SELECT count(*) FROM class_routing") == 1, "class_routing truncated");
    CHECK(query_int(db, "SELECT count(*) FROM metrics WHERE run_id = '00000000000000a1'") == 6,
          "other run untouched");
    CHECK(query_int(db, "SELECT count(*) FROM attempts WHERE run_id = '00000000000000b2'") == 2,
          "two attempts");
    CHECK(query_int(db, "SELECT count(*) FROM attempts WHERE run_id = '00000000000000b2' AND "
                        "attempt = 1 AND outcome = 'interrupted' AND ended_ms IS NOT NULL AND "
                        "from_step = 0") == 1, "first attempt closed as interrupted");
    CHECK(query_int(db, "SELECT count(*) FROM attempts WHERE run_id = '00000000000000b2' AND "
                        "attempt = 2 AND ended_ms IS NULL AND from_step = 50 AND pid > 0") == 1,
          "second attempt open from step 50");
    CHECK(query_int(db, "SELECT created_ms FROM runs WHERE run_id = '00000000000000b2'") == created,
          "created_ms kept");
    CHECK(query_int(db, "SELECT count(*) FROM runs WHERE run_id = '00000000000000b2' AND "
                        "step_done = 50 AND status = 'running' AND started_ms > created_ms") == 1,
          "runs row restarted at step 50");
    CHECK(query_int(db, "SELECT count(*) FROM params WHERE run_id = '00000000000000b2'") == 4,
          "params replaced, not duplicated");

    info.config_yaml = "model.hidden: 64\nno colon here\n";
    CHECK(store_run_begin(db, &info) == -1, "bad config text refused");
    CHECK(strstr(err_message(), "line 2") && strstr(err_message(), "00000000000000b2"),
          "message: %s", err_message());
    CHECK(query_int(db, "SELECT count(*) FROM attempts WHERE run_id = '00000000000000b2'") == 2,
          "failed start rolled back");
}

static void test_checkpoints(struct store *db)
{
    const char *run = "00000000000000b2";
    char path[1024];
    int64_t step = -1;
    CHECK(store_latest_checkpoint(db, run, "train", path, &step) == 0, "no checkpoint yet");
    CHECK(store_checkpoint(db, run, 50, "train", "ck/50.safetensors", 100, "aa") == 0, "ckpt");
    CHECK(store_checkpoint(db, run, 100, "train", "ck/100.safetensors", 200, "bb") == 0, "ckpt");
    CHECK(store_checkpoint(db, run, 100, "ema", "ck/100-ema.safetensors", 50, "cc") == 0, "ema");
    CHECK(store_latest_checkpoint(db, run, "train", path, &step) == 1, "found");
    CHECK(step == 100 && strcmp(path, "ck/100.safetensors") == 0, "latest train %s %lld", path,
          (long long)step);
    CHECK(store_checkpoint(db, run, 100, "train", "ck/100b.safetensors", 201, "dd") == 0, "again");
    CHECK(query_int(db, "SELECT count(*) FROM checkpoints") == 3, "replaced, not duplicated");
    CHECK(store_latest_checkpoint(db, run, "train", path, &step) == 1 &&
          strcmp(path, "ck/100b.safetensors") == 0, "replaced path %s", path);
    CHECK(query_int(db, "SELECT bytes FROM checkpoints WHERE step = 100 AND kind = 'train'") == 201,
          "bytes");
    CHECK(store_latest_checkpoint(db, run, "weights", path, &step) == 0, "no weights checkpoint");
    CHECK(store_checkpoint(db, run, 1, "bogus", "x", 1, "ee") == -1, "bad kind refused");
    CHECK(strstr(err_message(), "bogus") != NULL, "message: %s", err_message());
}

static void test_run_end(struct store *db)
{
    const char *run = "00000000000000b2";
    char status[16];
    int64_t step_done = -1;
    CHECK(store_metric(db, run, "loss", 60, 1.5) == 0, "metric");
    CHECK(store_run_end(db, run, "done", NULL, 12.5, 3.25) == 0, "run end: %s", err_message());
    CHECK(query_real(db, "SELECT value FROM metrics WHERE run_id = '00000000000000b2' AND "
                         "name = 'loss' AND step = 60") == 1.5, "pending row written by run end");
    CHECK(query_int(db, "SELECT count(*) FROM runs WHERE run_id = '00000000000000b2' AND "
                        "status = 'done' AND error IS NULL AND ended_ms IS NOT NULL AND "
                        "train_s = 12.5 AND img_per_s = 3.25") == 1, "runs row ended");
    CHECK(query_int(db, "SELECT count(*) FROM attempts WHERE run_id = '00000000000000b2' AND "
                        "attempt = 2 AND outcome = 'done' AND ended_ms IS NOT NULL") == 1,
          "attempt ended");
    CHECK(store_run_status(db, run, status, &step_done) == 1, "status found");
    CHECK(strcmp(status, "done") == 0 && step_done == 50, "status %s step %lld", status,
          (long long)step_done);
    CHECK(store_run_status(db, "ffffffffffffffff", status, &step_done) == 0, "unknown run");

    CHECK(store_run_end(db, "00000000000000a1", "failed", "nan loss: step 7", NAN, NAN) == 0,
          "failed run end: %s", err_message());
    CHECK(strcmp(query_text(db, "SELECT error FROM runs WHERE run_id = '00000000000000a1'"),
                 "nan loss: step 7") == 0, "error text");
    CHECK(query_int(db, "SELECT count(*) FROM runs WHERE run_id = '00000000000000a1' AND "
                        "train_s IS NULL") == 1, "NaN timing stored as NULL");
    CHECK(store_run_end(db, run, "finished", NULL, 0, 0) == -1, "bad status refused");
    CHECK(store_run_end(db, "ffffffffffffffff", "done", NULL, 0, 0) == -1, "unknown run refused");
    CHECK(strstr(err_message(), "ffffffffffffffff") != NULL, "message: %s", err_message());
}

// train_s adds up over the attempts of a run: a resume adds to it, a start from step 0 clears it.
static void test_training_time_over_attempts(struct store *db)
{
    const char *run = "00000000000000c3";
    const char *sql = "SELECT train_s FROM runs WHERE run_id = '00000000000000c3'";
    struct run_info info = run_info_of(run, 0);
    CHECK(store_run_begin(db, &info) == 0 && store_run_end(db, run, "interrupted", NULL, 12.5, 1) == 0, "first");
    info.from_step = 40;
    CHECK(store_run_begin(db, &info) == 0, "resume: %s", err_message());
    CHECK(query_real(db, sql) == 12.5, "a resume keeps the earlier attempts' %.3g s", query_real(db, sql));
    CHECK(store_run_end(db, run, "done", NULL, 2.5, 1) == 0 && query_real(db, sql) == 15, "12.5 + 2.5 s: %.3g",
          query_real(db, sql));
    CHECK(store_run_end(db, run, "failed", "x", NAN, NAN) == 0 && query_real(db, sql) == 15, "NaN adds nothing");
    info.from_step = 0;
    CHECK(store_run_begin(db, &info) == 0, "again from step 0: %s", err_message());
    CHECK(query_int(db, "SELECT count(*) FROM runs WHERE run_id = '00000000000000c3' AND train_s IS NULL") == 1,
          "a start from step 0 clears the training time");
}

static void test_views(struct store *db)
{
    sqlite3_exec(store_handle(db),
                 "INSERT INTO routing (run_id, step, layer, expert, tokens_cond, tokens_uncond) "
                 "VALUES ('v', 1, 0, 0, 10, 0), ('v', 1, 0, 1, 10, 0), ('v', 1, 0, 2, 10, 0),"
                 "('v', 1, 1, 0, 0, 0), ('v', 1, 1, 1, 20, 0);"
                 "INSERT INTO routing (run_id, step, layer, expert, t_bin, tokens_cond, "
                 "tokens_uncond) VALUES ('v', 1, 1, 0, 3, 500, 0);"
                 "INSERT INTO evals (run_id, step, cfg_scale, sampler, sampler_steps, n_samples, "
                 "reference, metric, value, created_ms) VALUES "
                 "('v', 100, 1.5, 'euler', 50, 1000, 'fmnist', 'fd', 30.0, 1),"
                 "('v', 200, 1.5, 'euler', 50, 1000, 'fmnist', 'fd', 20.0, 2),"
                 "('v', 100, 4.0, 'euler', 50, 1000, 'fmnist', 'fd', 10.0, 3)",
                 NULL, NULL, NULL);
    CHECK(query_real(db, "SELECT cv FROM routing_balance WHERE run_id = 'v' AND layer = 0") == 0.0,
          "balanced layer cv 0");
    CHECK(fabs(query_real(db, "SELECT cv FROM routing_balance WHERE run_id = 'v' AND "
                              "layer = 1") - 1.0) < 1e-12, "cv of (0, 20) is 1");
    CHECK(query_int(db, "SELECT n_experts FROM routing_balance WHERE run_id = 'v' AND "
                        "layer = 1") == 2, "t bins other than -1 excluded");
    CHECK(query_real(db, "SELECT value FROM final_evals WHERE run_id = 'v' AND "
                         "cfg_scale = 1.5") == 20.0, "final eval is the latest step");
    CHECK(query_int(db, "SELECT count(*) FROM final_evals WHERE run_id = 'v'") == 2,
          "one final eval per cfg scale");
    CHECK(query_int(db, "SELECT step FROM latest_metrics WHERE run_id = '00000000000000b2' AND "
                        "name = 'loss'") == 60, "latest step");
    CHECK(query_real(db, "SELECT value FROM latest_metrics WHERE run_id = '00000000000000b2' AND "
                         "name = 'loss'") == 1.5, "value of the latest step");
    CHECK(query_int(db, "SELECT count(*) FROM loss_curve WHERE run_id = '00000000000000b2'") == 6,
          "loss curve rows");
}

static void test_close_flushes(void)
{
    struct store *db;
    const char *path = path_in("close.db");
    CHECK(store_open(&db, path) == 0, "open: %s", err_message());
    store_metric(db, "c", "loss", 1, 2.0);
    err("earlier error");
    store_close(db);
    CHECK(strcmp(err_message(), "earlier error") == 0, "close keeps the message: %s",
          err_message());
    CHECK(store_open(&db, path) == 0, "reopen: %s", err_message());
    CHECK(query_real(db, "SELECT value FROM metrics WHERE run_id = 'c'") == 2.0,
          "close flushed the pending row");
    store_close(db);
}

// A flush that fails (here: the table is missing) keeps its rows for the next flush.
static void test_failed_flush_keeps_rows(void)
{
    struct store *db;
    const char *path = path_in("failed_flush.db");
    CHECK(store_open(&db, path) == 0, "open: %s", err_message());
    if (!db)
        return;
    CHECK(store_metric(db, "f", "loss", 1, 1.0) == 0 && store_flush(db, NULL, 0) == 0, "flush");
    sqlite3_exec(store_handle(db), "ALTER TABLE metrics RENAME TO metrics_away", NULL, NULL, NULL);
    store_metric(db, "f", "loss", 2, 2.0);
    store_metric(db, "f", "lr", 2, 0.5);
    CHECK(store_flush(db, NULL, 0) == -1, "flush into a missing table fails");
    CHECK(strstr(err_message(), path) != NULL, "message names the database: %s", err_message());
    sqlite3_exec(store_handle(db), "ALTER TABLE metrics_away RENAME TO metrics", NULL, NULL, NULL);
    store_metric(db, "f", "loss", 3, 3.0);
    CHECK(store_flush(db, NULL, 0) == 0, "flush again: %s", err_message());
    CHECK(query_int(db, "SELECT count(*) FROM metrics WHERE run_id = 'f'") == 4,
          "rows of the failed flush written by the next one");
    store_close(db);
}

static void test_newer_schema_refused(void)
{
    struct store *db;
    const char *path = path_in("newer.db");
    CHECK(store_open(&db, path) == 0, "open: %s", err_message());
    store_close(db);
    exec_raw(path, "PRAGMA user_version = 99");
    CHECK(store_open(&db, path) == -1 && db == NULL, "newer schema refused");
    char expected[700];
    snprintf(expected, sizeof expected,
             "database '%s' has schema version 99, newer than this promoe's %d: update promoe",
             path, STORE_SCHEMA_VERSION);
    CHECK(strcmp(err_message(), expected) == 0, "message: %s", err_message());
}

static void test_foreign_files_refused(void)
{
    struct store *db;
    const char *path = path_in("notes.txt");
    FILE *file = fopen(path, "w");
    for (int i = 0; i < 100; i++)
        fprintf(file, "this is a text file, not a database %d\n", i);
    fclose(file);
    CHECK(store_open(&db, path) == -1, "text file refused");
    char expected[600];
    snprintf(expected, sizeof expected, "'%s' is not a promoe database: ", path);
    CHECK(strncmp(err_message(), expected, strlen(expected)) == 0, "message: %s", err_message());

    path = path_in("other.db");
    exec_raw(path, "CREATE TABLE notes (x INTEGER)");
    CHECK(store_open(&db, path) == -1, "another application's database refused");
    snprintf(expected, sizeof expected, "'%s' is not a promoe database: ", path);
    CHECK(strncmp(err_message(), expected, strlen(expected)) == 0, "message: %s", err_message());

    path = path_in("other_id.db");
    exec_raw(path, "PRAGMA application_id = 1234");
    CHECK(store_open(&db, path) == -1, "another application id refused");
    CHECK(strstr(err_message(), "not a promoe database") != NULL, "message: %s", err_message());

    path = path_in("empty.db");
    fclose(fopen(path, "w"));
    CHECK(store_open(&db, path) == 0, "an empty file becomes a database: %s", err_message());
    store_close(db);
}

static void test_unwritable_refused(void)
{
    struct store *db;
    const char *file_path = path_in("plain_file");
    fclose(fopen(file_path, "w"));
    const char *path = path_in("plain_file/sub/db.sqlite");
    CHECK(store_open(&db, path) == -1, "folder under a file refused");
    CHECK(strstr(err_message(), file_path) && strstr(err_message(), "not a folder"), "message: %s",
          err_message());

    CHECK(store_open(&db, "/proc/promoe_no_such/db.sqlite") == -1, "folder under /proc refused");
    CHECK(strstr(err_message(), "'/proc/promoe_no_such'") != NULL, "message: %s", err_message());

    if (geteuid() != 0) {  // root writes anywhere
        const char *folder = path_in("read_only");
        mkdir(folder, 0500);
        CHECK(store_open(&db, path_in("read_only/db.sqlite")) == -1, "read-only folder refused");
        CHECK(strstr(err_message(), "not writable") != NULL, "message: %s", err_message());
    }
    CHECK(store_open(&db, "") == -1, "empty path refused");
}

// Another connection holds the write lock for a second, longer than the busy timeout (set to
// 50 ms here): the flush must wait, retry and succeed.
static void test_busy_retry(void)
{
    struct store *db;
    const char *path = path_in("busy.db");
    CHECK(store_open(&db, path) == 0, "open: %s", err_message());
    int ready[2];
    CHECK(pipe(ready) == 0, "pipe");
    pid_t child = fork();
    if (child == 0) {
        sqlite3 *handle;
        sqlite3_open(path, &handle);
        int rc = sqlite3_exec(handle, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        if (write(ready[1], "x", 1) != 1 || rc != SQLITE_OK)
            _exit(1);
        usleep(1000 * 1000);
        sqlite3_exec(handle, "COMMIT", NULL, NULL, NULL);
        sqlite3_close(handle);
        _exit(0);
    }
    char byte;
    CHECK(read(ready[0], &byte, 1) == 1, "child holds the lock");
    sqlite3_busy_timeout(store_handle(db), 50);
    store_metric(db, "busy", "loss", 1, 4.0);
    double start = seconds_now();
    CHECK(store_flush(db, NULL, 0) == 0, "flush after retries: %s", err_message());
    double waited = seconds_now() - start;
    CHECK(waited > 0.5 && waited < 10, "waited %.3f s for the lock", waited);
    CHECK(query_real(db, "SELECT value FROM metrics WHERE run_id = 'busy'") == 4.0, "row written");
    int status;
    waitpid(child, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "lock holder exit");
    close(ready[0]);
    close(ready[1]);
    store_close(db);
}

// One writer process: opens path, starts its own run, writes n_rows metric rows in flushes of
// flush_every, ends the run. Exit status 0, or 1 after printing the error.
static void child_writer(const char *path, int index, int n_rows, int flush_every, int start_fd)
{
    char byte, run_id[17];
    if (start_fd >= 0 && read(start_fd, &byte, 1) < 0)
        _exit(2);
    snprintf(run_id, sizeof run_id, "%016x", 0xc0000 + index);
    struct run_info info = run_info_of(run_id, 0);
    struct store *db;
    int rc = store_open(&db, path);
    if (rc == 0)
        rc = store_run_begin(db, &info);
    for (int i = 0; rc == 0 && i < n_rows; i++) {
        rc = store_metric(db, run_id, "loss", i, index + i * 1e-3);
        if (rc == 0 && (i + 1) % flush_every == 0)
            rc = store_flush(db, run_id, i);
    }
    if (rc == 0)
        rc = store_run_end(db, run_id, "done", NULL, 1.0, 1.0);
    if (rc != 0)
        fprintf(stderr, "child %d: %s\n", index, err_message());
    store_close(db);
    _exit(rc == 0 ? 0 : 1);
}

// Forks n_children writers that all start when the parent closes the start pipe; returns how many
// exited with an error.
static int run_writers(const char *path, int n_children, int n_rows, int flush_every)
{
    int start[2];
    if (pipe(start) != 0)
        return n_children;
    pid_t pids[16];
    for (int i = 0; i < n_children; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            close(start[1]);
            child_writer(path, i, n_rows, flush_every, start[0]);
        }
    }
    close(start[0]);
    close(start[1]);  // all children start now
    int failed = 0;
    for (int i = 0; i < n_children; i++) {
        int status;
        waitpid(pids[i], &status, 0);
        failed += !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    return failed;
}

// Several processes open a file that does not exist yet at the same moment: the schema is created
// once and every process writes its rows.
static void test_fresh_file_race(void)
{
    for (int round = 0; round < 5; round++) {
        char name[64];
        snprintf(name, sizeof name, "race%d/race.db", round);
        const char *path = path_in(name);
        int failed = run_writers(path, 6, 50, 10);
        CHECK(failed == 0, "round %d: %d writers failed", round, failed);
        struct store *db;
        CHECK(store_open(&db, path) == 0, "open: %s", err_message());
        if (!db)
            continue;
        CHECK(query_int(db, "SELECT count(*) FROM metrics") == 300, "round %d: rows %lld", round,
              (long long)query_int(db, "SELECT count(*) FROM metrics"));
        CHECK(query_int(db, "SELECT count(*) FROM runs WHERE status = 'done'") == 6, "6 runs");
        store_close(db);
    }
}

// The parent creates the database first (DESIGN: create before fork), then 4 processes write
// 2000 rows each, in flushes of 100, at the same time.
static void test_concurrent_writers(void)
{
    struct store *db;
    const char *path = path_in("concurrent.db");
    CHECK(store_open(&db, path) == 0, "open: %s", err_message());
    store_close(db);
    double start = seconds_now();
    int failed = run_writers(path, 4, 2000, 100);
    double seconds = seconds_now() - start;
    CHECK(failed == 0, "%d writers failed", failed);
    CHECK(store_open(&db, path) == 0, "open: %s", err_message());
    if (!db)
        return;
    CHECK(query_int(db, "SELECT count(*) FROM metrics") == 8000, "all 8000 rows: %lld",
          (long long)query_int(db, "SELECT count(*) FROM metrics"));
    CHECK(query_int(db, "SELECT count(DISTINCT run_id) FROM metrics") == 4, "4 runs");
    CHECK(query_real(db, "SELECT value FROM metrics WHERE run_id = '00000000000c0002' AND "
                         "step = 1234") == 2 + 1234 * 1e-3, "a value read back");
    CHECK(query_int(db, "SELECT count(*) FROM runs WHERE status = 'done' AND step_done = 1999")
              == 4, "4 runs done at step 1999");
    CHECK(strcmp(query_text(db, "PRAGMA integrity_check"), "ok") == 0, "integrity: %s",
          query_text(db, "PRAGMA integrity_check"));
    fprintf(stderr, "test_store: 4 writers x 2000 rows in %.2f s\n", seconds);
    store_close(db);
}

int main(void)
{
    if (!mkdtemp(tmp_dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_fresh_schema();
    struct store *db;
    CHECK(store_open(&db, path_in("main.db")) == 0, "open: %s", err_message());
    if (db) {
        test_metrics_roundtrip(db);
        test_resume(db);
        test_checkpoints(db);
        test_run_end(db);
        test_training_time_over_attempts(db);
        test_views(db);
        CHECK(strcmp(query_text(db, "PRAGMA integrity_check"), "ok") == 0, "integrity");
        CHECK(query_int(db, "SELECT count(*) FROM pragma_foreign_key_check") == 0, "foreign keys");
        store_close(db);
    }
    test_close_flushes();
    test_failed_flush_keeps_rows();
    test_newer_schema_refused();
    test_foreign_files_refused();
    test_unwritable_refused();
    test_busy_retry();
    test_fresh_file_race();
    test_concurrent_writers();

    char command[600];
    snprintf(command, sizeof command, "rm -rf '%s'", tmp_dir);
    if (system(command) != 0)
        fprintf(stderr, "could not remove %s\n", tmp_dir);
    return test_summary("test_store");
}
