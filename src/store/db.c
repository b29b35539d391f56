// The store's connection: opening (folders, file, pragmas, schema through migrate.c) and closing
// (pending rows flushed through metrics.c). Statements and transactions are sql.c's.
#include "store/db.h"

#include "core/error.h"
#include "io/path.h"
#include "store/metrics.h"
#include "store/migrate.h"
#include "store/store_internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum {
    BUSY_TIMEOUT_MS = 30000,      // per statement, SQLite's own busy handler
    ERROR_TEXT_MAX = 1024,
};

static int is_memory_path(const char *path) { return strcmp(path, ":memory:") == 0; }

static int check_writable(const char *db_path, const char *folder)
{
    if (access(folder, W_OK | X_OK) != 0)
        return err("cannot open database '%s': folder '%s' is not writable: %s", db_path, folder,
                   strerror(errno));
    return 0;
}

// mkdir -p of the folder that holds path, then checks that it is writable (WAL needs to create
// the -wal and -shm files beside the database).
static int make_parent_folders(const char *path)
{
    if (io_make_parent_folders(path) < 0) return err_context("cannot create database '%s'", path);
    const char *slash = strrchr(path, '/');
    if (!slash) return check_writable(path, ".");
    if (slash == path) return check_writable(path, "/");
    char *folder = strndup(path, (size_t)(slash - path));
    if (!folder) return err("cannot open database '%s': out of memory", path);
    int rc = check_writable(path, folder);
    free(folder);
    return rc;
}

static int open_handle(struct store *db)
{
    int rc = sqlite3_open_v2(db->path, &db->handle, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                             NULL);
    if (rc != SQLITE_OK && db->handle && sqlite3_system_errno(db->handle) != 0)
        return err("cannot open database '%s': %s: %s", db->path, sqlite3_errmsg(db->handle),
                   strerror(sqlite3_system_errno(db->handle)));
    if (rc != SQLITE_OK)
        return err("cannot open database '%s': %s", db->path,
                   db->handle ? sqlite3_errmsg(db->handle) : sqlite3_errstr(rc));
    sqlite3_extended_result_codes(db->handle, 1);
    sqlite3_busy_timeout(db->handle, BUSY_TIMEOUT_MS);
    return 0;
}

// Per-connection settings (not stored in the file): enforce REFERENCES, and NORMAL sync, which
// in WAL survives a killed process (power loss may lose the last commits).
static int set_connection_pragmas(struct store *db)
{
    char *message = NULL;
    int rc = sqlite3_exec(db->handle, "PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL",
                          NULL, NULL, &message);
    if (rc != SQLITE_OK)
        err("cannot set up database '%s': %s", db->path,
            message ? message : sqlite3_errstr(rc));
    sqlite3_free(message);
    return rc == SQLITE_OK ? 0 : -1;
}

static void free_store(struct store *db)
{
    for (int i = 0; i < STMT_COUNT; i++)
        sqlite3_finalize(db->stmts[i]);
    sqlite3_close(db->handle);
    free(db->rows);
    free(db->routing);
    free(db->path);
    free(db);
}

int store_open(struct store **out, const char *path)
{
    *out = NULL;
    if (!path[0])
        return err("database path is empty");
    if (!is_memory_path(path) && make_parent_folders(path) < 0)
        return -1;
    struct store *db = calloc(1, sizeof *db);
    if (!db || !(db->path = strdup(path))) {
        free(db);
        return err("cannot open database '%s': out of memory", path);
    }
    if (open_handle(db) < 0 || store_migrate(db) < 0 || set_connection_pragmas(db) < 0) {
        free_store(db);
        return -1;
    }
    *out = db;
    return 0;
}

// Flushes pending rows (best effort: the message of an earlier error is kept, since the caller
// may be closing the store on its way to report it), then frees everything.
void store_close(struct store *db)
{
    if (!db)
        return;
    if (db->n_rows > 0 || db->n_routing > 0) {
        char saved[ERROR_TEXT_MAX];
        snprintf(saved, sizeof saved, "%s", err_message());
        store_flush(db, NULL, 0);
        err("%s", saved);
    }
    free_store(db);
}

struct sqlite3 *store_handle(struct store *db) { return db->handle; }
