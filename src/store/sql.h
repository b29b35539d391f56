// Statement and transaction helpers of the store (sql.c), for the store's own files only.
#ifndef PROMOE_STORE_SQL_H
#define PROMOE_STORE_SQL_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

struct store;

// One prepared statement per id, prepared on first use and reused until store_close.
enum store_stmt_id {
    STMT_METRIC_UPSERT,
    STMT_RUN_HEARTBEAT,
    STMT_ATTEMPT_CLOSE_STALE,
    STMT_RUN_UPSERT,
    STMT_PARAMS_DELETE,
    STMT_PARAM_INSERT,
    STMT_ATTEMPT_INSERT,
    STMT_METRICS_TRUNCATE,
    STMT_ROUTING_TRUNCATE,
    STMT_CLASS_ROUTING_TRUNCATE,
    STMT_RUN_END,
    STMT_ATTEMPT_END,
    STMT_CHECKPOINT_UPSERT,
    STMT_RUN_STATUS,
    STMT_CHECKPOINT_LATEST,
    STMT_ROUTING_UPSERT,
    STMT_CLASS_ROUTING_UPSERT,
    STMT_COUNT
};

// Body of a write transaction: returns SQLITE_OK, the SQLite result code of the failing call, or
// -1 after recording its own message with err() (not retried). It may run several times (after
// SQLITE_BUSY), so it must not change anything outside the database but its context.
typedef int (*store_tx_body)(struct store *db, void *ctx);

// Runs body inside BEGIN IMMEDIATE ... COMMIT. On SQLITE_BUSY / SQLITE_LOCKED (after the busy
// timeout) it rolls back, waits with exponential backoff and retries, for about two minutes in all.
// Returns 0, or -1 with a message that starts with `what` and names the database.
int store_write(struct store *db, store_tx_body body, void *ctx, const char *what);

// The cached statement of id, preparing sql on first use (sqlite result code; *out reset).
int store_stmt(struct store *db, enum store_stmt_id id, const char *sql, sqlite3_stmt **out);

// Steps a statement that returns no rows and resets it: SQLITE_OK or the error code.
int store_exec(sqlite3_stmt *stmt);

// Binds text (SQLITE_STATIC: it must outlive the step) or NULL for a NULL pointer.
int store_bind_text(sqlite3_stmt *stmt, int index, const char *text);
// Binds a double, or NULL for NaN.
int store_bind_real(sqlite3_stmt *stmt, int index, double value);

// Makes room for one more of *n items of item_size bytes in *array (capacity *capacity, doubled, at
// least first): 0, or -1 with an out-of-memory message naming what.
int store_grow(void **array, int n, int *capacity, size_t item_size, int first, const char *what);

// Unix time in milliseconds.
int64_t store_now_ms(void);

#endif
