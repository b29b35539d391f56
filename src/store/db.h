// The results database (SQLite, WAL): runs, attempts, metrics, checkpoints, and the tables later
// parts fill (routing, class_routing, evals, diversity, sweeps). Schema in schema.sql, versioned
// with PRAGMA user_version. Writes are buffered and committed in one BEGIN IMMEDIATE transaction
// per flush, retried on SQLITE_BUSY, so several processes can write one file at once.
#ifndef PROMOE_DB_H
#define PROMOE_DB_H

#include <stddef.h>
#include <stdint.h>

struct store;

// The store's other public parts, one header per file.
#include "store/metrics.h"
#include "store/routing.h"
#include "store/run_lookup.h"
#include "store/runs.h"

// Opens (creating folders, file and schema as needed) the database at path. A database of a
// newer schema version is refused with a message naming the path and both versions.
int store_open(struct store **out, const char *path);
void store_close(struct store *db);

// The underlying handle: the store's own files use it through store_internal.h; tests use this
// to write synthetic rows and read the schema.
struct sqlite3 *store_handle(struct store *db);

#endif
