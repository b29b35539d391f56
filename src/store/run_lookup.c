// Finding runs and reading what the database recorded about them: a run named by its id or a
// unique prefix of it, its canonical config, one of its params. Statements are prepared per call:
// commands call these once, never the training step.
#include "store/run_lookup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "store/db.h"
#include "store/store_internal.h"

enum { AMBIGUOUS_NAMES_SHOWN = 4, AMBIGUOUS_TEXT_CAPACITY = 256 };

int store_read_failed(struct store *db, const char *what, const char *run_id)
{
    return err("cannot read the %s of run '%s' from database '%s': %s", what, run_id, db->path,
               sqlite3_errmsg(db->handle));
}

// Copies the run ids matching prefix; returns how many matched (all of them, even beyond shown).
static int match_runs(sqlite3_stmt *stmt, char *run_id, char *names, size_t names_size)
{
    int matches = 0;
    names[0] = '\0';
    while (sqlite3_step(stmt) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(stmt, 0);
        if (matches == 0 && strlen(id) < STORE_RUN_ID_CAPACITY) strcpy(run_id, id);
        if (matches < AMBIGUOUS_NAMES_SHOWN) {
            size_t used = strlen(names);
            snprintf(names + used, names_size - used, "%s'%s'", matches ? ", " : "", id);
        }
        matches++;
    }
    return matches;
}

int store_resolve_run(struct store *db, const char *prefix, char *run_id)
{
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2(db->handle, "SELECT run_id FROM runs WHERE substr(run_id, 1, length(?1)) = ?1 "
                           "ORDER BY run_id", -1, &stmt, NULL) != SQLITE_OK)
        return store_read_failed(db, "id", prefix);
    store_bind_text(stmt, 1, prefix);
    char names[AMBIGUOUS_TEXT_CAPACITY];
    int matches = prefix[0] ? match_runs(stmt, run_id, names, sizeof names) : 0;
    sqlite3_finalize(stmt);
    if (matches == 0) return err("no run '%s' in database '%s'", prefix, db->path);
    if (matches > 1)
        return err("run '%s' is ambiguous in database '%s': %d runs match (%s)", prefix, db->path, matches, names);
    return 0;
}

int store_run_config(struct store *db, const char *run_id, char **yaml)
{
    sqlite3_stmt *stmt;
    *yaml = NULL;
    if (sqlite3_prepare_v2(db->handle, "SELECT config_yaml FROM runs WHERE run_id = ?1", -1, &stmt, NULL) != SQLITE_OK)
        return store_read_failed(db, "config", run_id);
    store_bind_text(stmt, 1, run_id);
    if (sqlite3_step(stmt) == SQLITE_ROW) {
        const char *text = (const char *)sqlite3_column_text(stmt, 0);
        *yaml = strdup(text ? text : "");
    }
    sqlite3_finalize(stmt);
    if (!*yaml) return err("run '%s' has no config in database '%s'", run_id, db->path);
    return 0;
}

int store_run_param(struct store *db, const char *run_id, const char *key, char *out, size_t capacity)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db->handle, "SELECT value FROM params WHERE run_id = ?1 AND key = ?2", -1, &st, NULL) !=
        SQLITE_OK)
        return err("database '%s': %s", db->path, sqlite3_errmsg(db->handle));
    sqlite3_bind_text(st, 1, run_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
    int found = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0);
    if (found) snprintf(out, capacity, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return found;
}
