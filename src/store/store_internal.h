// Internals shared by the store's files: the store object, its statement ids and pending rows.
// Not for use outside src/store/: other modules see db.h and the headers it includes. The
// statement and transaction helpers are sql.h's (included here).
#ifndef PROMOE_STORE_INTERNAL_H
#define PROMOE_STORE_INTERNAL_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "store/sql.h"

enum { STORE_SCHEMA_VERSION = 4 };
// PRAGMA application_id of a promoe database: "PrMo" in ASCII.
enum { STORE_APPLICATION_ID = 0x50724d6f };
enum { STORE_RUN_ID_MAX = 64, STORE_METRIC_NAME_MAX = 64 };

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

#endif
