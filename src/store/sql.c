// The store's statement helpers: the cache of prepared statements, binding, stepping, and
// store_write, the one way the store writes: a body run inside BEGIN IMMEDIATE ... COMMIT,
// retried with backoff on SQLITE_BUSY so that several processes can share one WAL database
// without losing rows (ECOSYSTEM.md 2.4-2.5). Every other store file builds on these.
#include "store/sql.h"

#include "core/error.h"
#include "store/store_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum {
    RETRY_TOTAL_MS = 120000,      // store_write gives up after this long
    RETRY_FIRST_WAIT_MS = 50,
    RETRY_MAX_WAIT_MS = 2000,
    ERROR_TEXT_MAX = 1024,
};

int64_t store_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int store_grow(void **array, int n, int *capacity, size_t item_size, int first, const char *what)
{
    if (n < *capacity) return 0;
    int grown = *capacity ? 2 * *capacity : first;
    void *more = realloc(*array, item_size * (size_t)grown);
    if (!more) return err("out of memory for %d %s", grown, what);
    *array = more, *capacity = grown;
    return 0;
}

int store_stmt(struct store *db, enum store_stmt_id id, const char *sql, sqlite3_stmt **out)
{
    if (!db->stmts[id]) {
        int rc = sqlite3_prepare_v3(db->handle, sql, -1, SQLITE_PREPARE_PERSISTENT,
                                    &db->stmts[id], NULL);
        if (rc != SQLITE_OK)
            return rc;
    }
    *out = db->stmts[id];
    sqlite3_reset(*out);
    sqlite3_clear_bindings(*out);
    return SQLITE_OK;
}

int store_exec(sqlite3_stmt *stmt)
{
    int rc = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

int store_bind_text(sqlite3_stmt *stmt, int index, const char *text)
{
    return text ? sqlite3_bind_text(stmt, index, text, -1, SQLITE_STATIC)
                : sqlite3_bind_null(stmt, index);
}

int store_bind_real(sqlite3_stmt *stmt, int index, double value)
{
    return isnan(value) ? sqlite3_bind_null(stmt, index) : sqlite3_bind_double(stmt, index, value);
}

static int is_busy(int rc)
{
    rc &= 0xff;
    return rc == SQLITE_BUSY || rc == SQLITE_LOCKED;
}

// One try: BEGIN IMMEDIATE, body, COMMIT; on failure the SQLite message is copied into message
// (before ROLLBACK replaces it) and the transaction rolled back.
static int write_once(struct store *db, store_tx_body body, void *ctx, char *message, size_t size)
{
    int rc = sqlite3_exec(db->handle, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = body(db, ctx);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db->handle, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        int system_errno = sqlite3_system_errno(db->handle);  // a full disk: "No space left on device"
        if (rc != -1)
            snprintf(message, size, "%s%s%s", sqlite3_errmsg(db->handle), system_errno ? ": " : "",
                     system_errno ? strerror(system_errno) : "");
        if (!sqlite3_get_autocommit(db->handle))
            sqlite3_exec(db->handle, "ROLLBACK", NULL, NULL, NULL);
    }
    return rc;
}

int store_write(struct store *db, store_tx_body body, void *ctx, const char *what)
{
    char message[ERROR_TEXT_MAX] = "";
    int64_t deadline = store_now_ms() + RETRY_TOTAL_MS;
    int wait_ms = RETRY_FIRST_WAIT_MS;
    for (;;) {
        int rc = write_once(db, body, ctx, message, sizeof message);
        if (rc == SQLITE_OK)
            return 0;
        if (rc == -1)
            return -1;  // the body recorded its own message
        if (!is_busy(rc) || store_now_ms() + wait_ms > deadline)
            return err("%s database '%s': %s", what, db->path, message);
        sqlite3_sleep(wait_ms);
        wait_ms = wait_ms * 2 < RETRY_MAX_WAIT_MS ? wait_ms * 2 : RETRY_MAX_WAIT_MS;
    }
}
