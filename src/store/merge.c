// store_merge_shard (see merge.h). The shard is checked and checkpointed through its own
// connection, hashed, then ATTACHed to the main connection; one store_write transaction copies
// each of its tables with INSERT ... ON CONFLICT (primary key) DO UPDATE, built from the shard's
// own table list and columns, so tables added by later migrations are merged without code here.
// Tables without a primary key get only the rows they lack (EXCEPT), so a repeat adds nothing.
#include "store/merge.h"

#include "core/error.h"
#include "core/sha256.h"
#include "store/store_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { SQL_CAPACITY = 16384, TABLE_NAME_MAX = 256,
       SHARD_BUSY_TIMEOUT_MS = 30000 };

#define SHARD_SCHEMA "shard"

// Per-table conditions on replacing an existing row (DO UPDATE ... WHERE); `cur` is the main
// database's row, `excluded` the shard's. A run's row from a shard replaces the main one only if
// its status is further along: done > running / interrupted / failed / nan > queued; among
// equal ranks (except queued, where the rows agree) the more recently active row wins.
#define STATUS_RANK(row) "(CASE " row ".status WHEN 'done' THEN 3 WHEN 'queued' THEN 1 ELSE 2 END)"
#define LAST_ACTIVE(row)                                                                           \
    "max(coalesce(" row ".ended_ms, 0), coalesce(" row ".heartbeat_ms, 0), coalesce(" row          \
    ".started_ms, 0), " row ".created_ms)"

static const struct merge_rule {
    const char *table, *update_when;
} merge_rules[] = {
    {"runs", STATUS_RANK("excluded") " > " STATUS_RANK("cur") " OR (" STATUS_RANK("excluded") " = "
             STATUS_RANK("cur") " AND " STATUS_RANK("cur") " = 2 AND " LAST_ACTIVE("excluded") " >= "
             LAST_ACTIVE("cur") ")"},
};

// ---- the shard file ------------------------------------------------------------------------------

static int shard_ints(sqlite3 *handle, int64_t *application_id, int64_t *version)
{
    sqlite3_stmt *stmt;
    int rc = sqlite3_prepare_v2(handle, "SELECT application_id, user_version FROM pragma_application_id, "
                                        "pragma_user_version", -1, &stmt, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        *application_id = sqlite3_column_int64(stmt, 0);
        *version = sqlite3_column_int64(stmt, 1);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(stmt);
    return rc;
}

// Checks the shard's ids and version, and moves its WAL (if any) into the file.
static int check_shard(const char *path)
{
    if (access(path, R_OK) != 0) return err("cannot merge shard '%s': %s", path, strerror(errno));
    sqlite3 *handle = NULL;
    int64_t application_id = 0, version = 0;
    int rc = sqlite3_open_v2(path, &handle, SQLITE_OPEN_READWRITE, NULL);
    if (rc == SQLITE_OK) sqlite3_busy_timeout(handle, SHARD_BUSY_TIMEOUT_MS);
    if (rc == SQLITE_OK) rc = shard_ints(handle, &application_id, &version);
    if (rc != SQLITE_OK) {
        err("cannot merge shard '%s': %s", path, handle ? sqlite3_errmsg(handle) : sqlite3_errstr(rc));
    } else if (application_id != STORE_APPLICATION_ID) {
        rc = err("cannot merge shard '%s': not a promoe database (application_id)", path);
    } else if (version != STORE_SCHEMA_VERSION) {
        rc = err("cannot merge shard '%s': its schema version is %lld, this promoe's is %d: merge it "
                 "with the promoe that wrote it", path, (long long)version, STORE_SCHEMA_VERSION);
    } else if ((rc = sqlite3_exec(handle, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL)) != SQLITE_OK) {
        err("cannot merge shard '%s': checkpoint of its WAL: %s", path, sqlite3_errmsg(handle));
    }
    sqlite3_close(handle);
    return rc == SQLITE_OK ? 0 : -1;
}

static int same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

// ---- building the copy statement -----------------------------------------------------------------

struct sql_text {
    char buf[SQL_CAPACITY];
    size_t len;
    int overflow;
};

static void sql_add(struct sql_text *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sql_add(struct sql_text *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = s->len < sizeof s->buf ? vsnprintf(s->buf + s->len, sizeof s->buf - s->len, fmt, ap) : 0;
    va_end(ap);
    if (n < 0 || s->len + (size_t)n >= sizeof s->buf) s->overflow = 1;
    else s->len += (size_t)n;
}

// An identifier in double quotes, inner quotes doubled.
static void sql_name(struct sql_text *s, const char *prefix, const char *name)
{
    sql_add(s, "%s\"", prefix);
    for (const char *c = name; *c; c++) sql_add(s, "%s%c", *c == '"' ? "\"" : "", *c);
    sql_add(s, "\"");
}

static const char *update_condition(const char *table)
{
    for (size_t i = 0; i < sizeof merge_rules / sizeof *merge_rules; i++)
        if (!strcmp(merge_rules[i].table, table)) return merge_rules[i].update_when;
    return NULL;
}

struct columns {
    struct sql_text all, key, update;  // "a", "b" / key columns / "a" = excluded."a", ...
    int n_key, n_update;
};

static int read_columns(sqlite3 *handle, const char *table, struct columns *c)
{
    sqlite3_stmt *stmt;
    int rc = sqlite3_prepare_v2(handle, "SELECT name, pk FROM pragma_table_info(?1, '" SHARD_SCHEMA "') "
                                        "ORDER BY cid", -1, &stmt, NULL);
    if (rc != SQLITE_OK) return rc;
    sqlite3_bind_text(stmt, 1, table, -1, SQLITE_STATIC);
    int first = 1;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(stmt, 0);
        sql_name(&c->all, first ? "" : ", ", name);
        if (sqlite3_column_int(stmt, 1) > 0) {
            sql_name(&c->key, c->n_key++ ? ", " : "", name);
        } else {
            sql_name(&c->update, c->n_update++ ? ", " : "", name);
            sql_name(&c->update, " = excluded.", name);
        }
        first = 0;
    }
    sqlite3_finalize(stmt);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

// INSERT ... SELECT for one table: an upsert on the primary key, or the missing rows when the
// table has none.
static int copy_statement(sqlite3 *handle, const char *table, struct sql_text *sql)
{
    static struct columns c;
    memset(&c, 0, sizeof c);
    int rc = read_columns(handle, table, &c);
    if (rc != SQLITE_OK) return rc;
    sql_name(sql, "INSERT INTO main.", table);
    sql_add(sql, " AS cur (%s) SELECT %s FROM ", c.all.buf, c.all.buf);
    sql_name(sql, SHARD_SCHEMA ".", table);
    if (c.n_key == 0) {
        sql_add(sql, " EXCEPT SELECT %s FROM ", c.all.buf);
        sql_name(sql, "main.", table);
    } else if (c.n_update == 0) {
        sql_add(sql, " WHERE true ON CONFLICT (%s) DO NOTHING", c.key.buf);
    } else {
        const char *when = update_condition(table);
        sql_add(sql, " WHERE true ON CONFLICT (%s) DO UPDATE SET %s", c.key.buf, c.update.buf);
        if (when) sql_add(sql, " WHERE %s", when);
    }
    if (c.all.overflow || c.key.overflow || c.update.overflow || sql->overflow)
        return err("cannot merge table '%s': too many columns", table);
    return SQLITE_OK;
}

// ---- the transaction -----------------------------------------------------------------------------

struct merge_ctx {
    const char *path;
    struct store_merge_result *result;
};

static int copy_table(struct store *db, const char *table, struct merge_ctx *m)
{
    static struct sql_text sql;
    memset(&sql, 0, sizeof sql);
    int rc = copy_statement(db->handle, table, &sql);
    if (rc != SQLITE_OK) return rc;
    rc = sqlite3_exec(db->handle, sql.buf, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return err("cannot merge table '%s' of shard '%s' into database '%s': %s", table, m->path, db->path,
                   sqlite3_errmsg(db->handle));
    m->result->rows += sqlite3_changes64(db->handle);
    m->result->tables++;
    return SQLITE_OK;
}

static int already_merged(struct store *db, const char *sha, int *merged)
{
    sqlite3_stmt *stmt;
    int rc = sqlite3_prepare_v2(db->handle, "SELECT count(*) FROM main.merged_shards WHERE shard_sha256 = ?1",
                                -1, &stmt, NULL);
    if (rc != SQLITE_OK) return rc;
    store_bind_text(stmt, 1, sha);
    rc = sqlite3_step(stmt);
    *merged = rc == SQLITE_ROW && sqlite3_column_int(stmt, 0) > 0;
    sqlite3_finalize(stmt);
    return rc == SQLITE_ROW ? SQLITE_OK : rc;
}

// The shard's tables in creation order (parents before the tables that reference them).
static int copy_tables(struct store *db, struct merge_ctx *m)
{
    sqlite3_stmt *stmt;
    int rc = sqlite3_prepare_v2(db->handle, "SELECT name FROM " SHARD_SCHEMA ".sqlite_schema WHERE type = 'table' "
                                "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY rowid", -1, &stmt, NULL);
    if (rc != SQLITE_OK) return rc;
    while (rc == SQLITE_OK && sqlite3_step(stmt) == SQLITE_ROW) {
        char table[TABLE_NAME_MAX];
        snprintf(table, sizeof table, "%s", (const char *)sqlite3_column_text(stmt, 0));
        rc = copy_table(db, table, m);
    }
    sqlite3_finalize(stmt);
    return rc;
}

static int record_shard(struct store *db, const struct merge_ctx *m)
{
    sqlite3_stmt *stmt;
    int rc = sqlite3_prepare_v2(db->handle, "INSERT OR REPLACE INTO main.merged_shards (shard_sha256, path, "
                                "rows, merged_ms) VALUES (?1, ?2, ?3, ?4)", -1, &stmt, NULL);
    if (rc != SQLITE_OK) return rc;
    store_bind_text(stmt, 1, m->result->shard_sha256);
    store_bind_text(stmt, 2, m->path);
    sqlite3_bind_int64(stmt, 3, m->result->rows);
    sqlite3_bind_int64(stmt, 4, store_now_ms());
    rc = store_exec(stmt);
    sqlite3_finalize(stmt);
    return rc;
}

static int merge_body(struct store *db, void *ctx)
{
    struct merge_ctx *m = ctx;
    m->result->rows = 0;
    m->result->tables = 0;
    int rc = already_merged(db, m->result->shard_sha256, &m->result->already_merged);
    if (rc != SQLITE_OK || m->result->already_merged) return rc;
    rc = copy_tables(db, m);
    return rc == SQLITE_OK ? record_shard(db, m) : rc;
}

static int attach(struct store *db, const char *path)
{
    sqlite3_stmt *stmt;
    int rc = sqlite3_prepare_v2(db->handle, "ATTACH DATABASE ?1 AS " SHARD_SCHEMA, -1, &stmt, NULL);
    if (rc == SQLITE_OK) {
        store_bind_text(stmt, 1, path);
        rc = store_exec(stmt);
    }
    sqlite3_finalize(stmt);
    if (rc != SQLITE_OK) return err("cannot attach shard '%s': %s", path, sqlite3_errmsg(db->handle));
    return 0;
}

int store_merge_shard(struct store *db, const char *shard_path, struct store_merge_result *out)
{
    memset(out, 0, sizeof *out);
    if (same_file(db->path, shard_path))
        return err("cannot merge shard '%s' into itself", shard_path);
    if (check_shard(shard_path) < 0) return -1;
    if (sha256_file_hex(shard_path, out->shard_sha256) < 0) return err_context("cannot merge shard '%s'", shard_path);
    if (attach(db, shard_path) < 0) return -1;
    struct merge_ctx m = {shard_path, out};
    int rc = store_write(db, merge_body, &m, "cannot merge a shard into");
    sqlite3_exec(db->handle, "DETACH DATABASE " SHARD_SCHEMA, NULL, NULL, NULL);
    return rc;
}
