// Scratch folders of the tests that build synthetic databases and files: a path inside the folder,
// a whole file written (plain or printf-style) or read as text, and a database made by promoe's own schema plus the test's SQL rows.
#ifndef PROMOE_TEST_SCRATCH_H
#define PROMOE_TEST_SCRATCH_H

#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>

#include "core/error.h"
#include "store/db.h"

// dir/name in one of 8 rotating buffers (keep a copy of a path that must outlive 8 more calls).
static inline const char *scratch_path(const char *dir, const char *name)
{
    static char paths[8][512];
    static int next;
    char *p = paths[next++ % 8];
    snprintf(p, sizeof paths[0], "%s/%s", dir, name);
    return p;
}

// Writes text as the whole file at path (a failure shows up in the check that reads it).
static inline void scratch_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

// Writes text as the whole of dir/name.
static inline void scratch_write(const char *dir, const char *name, const char *text)
{
    scratch_write_file(scratch_path(dir, name), text);
}

// Writes the printf-style text as the whole of dir/name.
static inline void scratch_writef(const char *dir, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static inline void scratch_writef(const char *dir, const char *name, const char *fmt, ...)
{
    FILE *f = fopen(scratch_path(dir, name), "w");
    if (!f) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fclose(f);
}

// The whole file in a static buffer, overwritten by the next call ("" when unreadable).
static inline const char *scratch_slurp(const char *path)
{
    static char text[1 << 17];
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    text[n] = '\0';
    if (f) fclose(f);
    return text;
}

// A promoe database at path with the rows of sql; 0 or -1 (the reason printed).
static inline int scratch_database(const char *path, const char *sql)
{
    struct store *db;
    if (store_open(&db, path) < 0) return fprintf(stderr, "%s\n", err_message()), -1;
    char *message = NULL;
    int rc = sqlite3_exec(store_handle(db), sql, NULL, NULL, &message);
    if (rc != SQLITE_OK) fprintf(stderr, "%s: %s\n", path, message);
    sqlite3_free(message);
    store_close(db);
    return rc == SQLITE_OK ? 0 : -1;
}

#endif
