// Internals shared by the store's files (db.c, migrate.c, metrics.c, runs.c): the store object,
// the cache of prepared statements, and the write-transaction helper that runs a body inside
// BEGIN IMMEDIATE ... COMMIT and retries it with backoff on SQLITE_BUSY. Not for use outside
// src/store/: other modules see only db.h.
#ifndef PROMOE_STORE_INTERNAL_H
#define PROMOE_STORE_INTERNAL_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

enum { STORE_SCHEMA_VERSION = 4 };
// PRAGMA application_id of a promoe database: "PrMo" in ASCII.
enum { STORE_APPLICATION_ID = 0x50724d6f };
enum { STORE_RUN_ID_MAX = 64, STORE_METRIC_NAME_MAX = 64 };

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

// A metric row waiting for the next flush. A NaN value is kept as NaN and bound as NULL.
struct metric_row {
    char run_id[STORE_RUN_ID_MAX];
    char name[STORE_METRIC_NAME_MAX];
    int64_t step;
    double value;
    int64_t wall_ms;
};

// A routing row (per layer and expert) or class-routing row (per layer, class and expert) waiting
// for the next flush.
struct routing_row {
    char run_id[STORE_RUN_ID_MAX];
    int64_t step;
    int layer, expert, class_id;   // class_id < 0: a `routing` row, else a `class_routing` row
    int64_t tokens_cond, tokens_uncond, dropped;
    double gate_sum, gate_sumsq;
};

struct store {
    sqlite3 *handle;
    char *path;                       // as given to store_open, for messages
    struct metric_row *rows;          // pending rows, owned; cleared only after a COMMIT
    size_t n_rows, rows_capacity;
    struct routing_row *routing;      // pending routing rows, owned, cleared with the metrics
    size_t n_routing, routing_capacity;
    sqlite3_stmt *stmts[STMT_COUNT];  // prepared on first use, finalized by store_close
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

// Writes every pending metric row (inside a transaction body).
int store_write_pending(struct store *db);
// Writes every pending routing and class-routing row (inside a transaction body).
int store_write_routing(struct store *db);

// Binds the run id (index 1, bound by the caller) and inserts one params row per "key: value" line
// of a canonical config text (indexes 2 and 3); SQLite result code, or -1 with a message.
int store_insert_params(const char *config_yaml, sqlite3_stmt *stmt);

// Creates or migrates the schema of a freshly opened store to STORE_SCHEMA_VERSION (migrate.c),
// refusing a newer version or a file that is not a promoe database.
int store_migrate(struct store *db);

// Unix time in milliseconds.
int64_t store_now_ms(void);

// Records "cannot read the <what> of run '<run_id>' from database '<path>': <sqlite message>" and
// returns -1 (run_lookup.c).
int store_read_failed(struct store *db, const char *what, const char *run_id);

#endif
