// A metric's curve over the runs of one label of a sweep (loss_curves.h).
#include "store/loss_curves.h"

#include <stdlib.h>

#include "core/error.h"
#include "store/store_internal.h"

static const char CURVE_SQL[] =
    "SELECT m.step, avg(m.value), count(*) FROM metrics m JOIN sweep_runs s ON s.run_id = m.run_id "
    "JOIN runs r ON r.run_id = m.run_id WHERE s.sweep = ?1 AND coalesce(r.label, r.run_id) = ?2 "
    "AND m.name = ?3 AND m.value IS NOT NULL GROUP BY m.step ORDER BY m.step";

void store_curve_free(struct store_curve *c)
{
    free(c->steps), free(c->values), free(c->runs);
    *c = (struct store_curve){0};
}

// The three arrays grow together: each keeps its own capacity, equal after every call.
static int push_point(struct store_curve *c, int capacity[3], double step, double value, int runs)
{
    void *steps = c->steps, *values = c->values, *counts = c->runs;
    int rc = store_grow(&steps, c->n, &capacity[0], sizeof(double), 256, "curve points");
    c->steps = steps;
    if (rc == 0) rc = store_grow(&values, c->n, &capacity[1], sizeof(double), 256, "curve points");
    c->values = values;
    if (rc == 0) rc = store_grow(&counts, c->n, &capacity[2], sizeof(int), 256, "curve points");
    c->runs = counts;
    if (rc < 0) return -1;
    c->steps[c->n] = step, c->values[c->n] = value, c->runs[c->n] = runs;
    c->n++;
    return 0;
}

int store_label_curve(struct store *db, const char *sweep, const char *label, const char *metric,
                      struct store_curve *out)
{
    *out = (struct store_curve){0};
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2(db->handle, CURVE_SQL, -1, &stmt, NULL) != SQLITE_OK)
        return err("%s query: %s", metric, sqlite3_errmsg(db->handle));
    sqlite3_bind_text(stmt, 1, sweep, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, label, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 3, metric, -1, SQLITE_STATIC);
    int rc = 0, step, capacity[3] = {0, 0, 0};
    while (rc == 0 && (step = sqlite3_step(stmt)) == SQLITE_ROW)
        rc = push_point(out, capacity, (double)sqlite3_column_int64(stmt, 0), sqlite3_column_double(stmt, 1),
                        sqlite3_column_int(stmt, 2));
    if (rc == 0 && step != SQLITE_DONE) rc = err("%s query: %s", metric, sqlite3_errmsg(db->handle));
    sqlite3_finalize(stmt);
    if (rc < 0) store_curve_free(out);
    return rc;
}
