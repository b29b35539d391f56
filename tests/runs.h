// Helpers for tests that train through train_run and look at what a run left behind: a value
// from its database, its loss (or any metric's) rows with every bit, and whether two checkpoints
// hold the same tensors. Databases are named by folder and file name.
#ifndef PROMOE_TEST_RUNS_H
#define PROMOE_TEST_RUNS_H

#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "model/safetensors.h"

// The first column of the first row of sql in dir/db_name as a double; NAN if absent or NULL.
static inline double run_query(const char *dir, const char *db_name, const char *sql)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, db_name);
    sqlite3 *db;
    sqlite3_stmt *st;
    double value = NAN;
    if (sqlite3_open(path, &db) == SQLITE_OK && sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
            value = sqlite3_column_double(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return value;
}

// A run's rows of metric `name` as "step value" lines, values printed with every bit (%.17g).
static inline void run_metric_rows(const char *dir, const char *db_name, const char *run_id, const char *name,
                                   char *out, size_t size)
{
    char path[512], sql[320];
    snprintf(path, sizeof path, "%s/%s", dir, db_name);
    snprintf(sql, sizeof sql, "SELECT step, printf('%%.17g', value) FROM metrics WHERE run_id='%s' "
             "AND name='%s' ORDER BY step", run_id, name);
    sqlite3 *db;
    sqlite3_stmt *st;
    out[0] = '\0';
    if (sqlite3_open(path, &db) != SQLITE_OK || sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return;
    }
    size_t used = 0;
    while (sqlite3_step(st) == SQLITE_ROW && used < size - 64)
        used += snprintf(out + used, size - used, "%lld %s\n", (long long)sqlite3_column_int64(st, 0),
                         (const char *)sqlite3_column_text(st, 1));
    sqlite3_finalize(st);
    sqlite3_close(db);
}

// A run's loss rows, as run_metric_rows.
static inline void run_losses(const char *dir, const char *db_name, const char *run_id, char *out, size_t size)
{
    run_metric_rows(dir, db_name, run_id, "loss", out, size);
}

// 1 when every tensor of two checkpoints has identical bytes (the differing one is printed).
static inline int same_tensors(const char *a_path, const char *b_path)
{
    struct st_file *a, *b;
    if (st_open(a_path, &a) < 0) return 0;
    if (st_open(b_path, &b) < 0) {
        st_close(a);
        return 0;
    }
    int same = st_count(a) == st_count(b);
    for (int i = 0; same && i < st_count(a); i++) {
        const char *dt_a, *dt_b;
        int nd_a, nd_b;
        int64_t sh_a[8], sh_b[8];
        const void *da = st_get(a, st_name(a, i), &dt_a, &nd_a, sh_a);
        const void *db = st_get(b, st_name(a, i), &dt_b, &nd_b, sh_b);
        size_t n = 4;
        for (int d = 0; d < nd_a; d++) n *= (size_t)sh_a[d];
        same = db && nd_a == nd_b && memcmp(da, db, n) == 0;
        if (!same) fprintf(stderr, "tensor '%s' differs\n", st_name(a, i));
    }
    st_close(a);
    st_close(b);
    return same;
}

#endif
