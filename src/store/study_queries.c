// The study report's questions about a sweep (study_queries.h). A row that fails to step ends the
// rows read, as a short listing: the report states what it has.
#include "store/study_queries.h"

#include <stdlib.h>

#include "core/error.h"
#include "store/store_internal.h"

// Pairs of evaluations of one run that differ only in the sampler seed (the sampling noise).
static const char REDRAW_SQL[] =
    "SELECT a.value, b.value FROM evals a JOIN evals b ON a.run_id = b.run_id AND a.step = b.step "
    "AND a.metric = b.metric AND a.cfg_scale = b.cfg_scale AND a.n_samples = b.n_samples "
    "AND a.sampler_steps = b.sampler_steps AND a.sample_seed < b.sample_seed "
    "JOIN sweep_runs s ON s.run_id = a.run_id AND s.sweep = ?1 "
    "WHERE a.metric = ?2 AND abs(a.cfg_scale - ?3) < 1e-6 AND a.value IS NOT NULL AND b.value IS NOT NULL";
static const char PAIRED_REDRAW_SQL[] =
    "SELECT ra.seed, ea.sample_seed = ra.seed, ea.value - eb.value FROM evals ea "
    "JOIN runs ra ON ra.run_id = ea.run_id AND coalesce(ra.label, ra.run_id) = ?2 AND ra.status = 'done' "
    "JOIN sweep_runs sa ON sa.run_id = ra.run_id AND sa.sweep = ?1 "
    "JOIN runs rb ON rb.seed = ra.seed AND coalesce(rb.label, rb.run_id) = ?3 AND rb.status = 'done' "
    "JOIN sweep_runs sb ON sb.run_id = rb.run_id AND sb.sweep = ?1 "
    "JOIN evals eb ON eb.run_id = rb.run_id AND eb.metric = ea.metric AND eb.cfg_scale = ea.cfg_scale "
    "AND eb.n_samples = ea.n_samples AND eb.sample_seed = ea.sample_seed AND eb.sampler_steps = ea.sampler_steps "
    "WHERE ea.metric = ?4 AND abs(ea.cfg_scale - ?5) < 1e-6 AND ea.value IS NOT NULL AND eb.value IS NOT NULL "
    "ORDER BY ra.seed, ea.sample_seed = ra.seed DESC";
static const char DIVERSITY_SQL[] =
    "SELECT d.k, avg(d.value), count(*) FROM diversity d JOIN runs r ON r.run_id = d.run_id "
    "JOIN sweep_runs s ON s.run_id = d.run_id AND s.sweep = ?1 WHERE coalesce(r.label, r.run_id) = ?2 "
    "AND d.layer = -1 AND d.variant = 'out' AND d.step = (SELECT max(step) FROM diversity WHERE run_id = d.run_id) "
    "GROUP BY d.k ORDER BY d.k";
static const char INT_PARAM_SQL[] =
    "SELECT max(CAST(p.value AS INTEGER)) FROM params p JOIN sweep_runs s ON s.run_id = p.run_id AND s.sweep = ?1 "
    "WHERE p.key = ?2";
static const char EVAL_TIME_SQL[] =
    "SELECT count(*), coalesce(sum(e.wall_s), 0) FROM (SELECT DISTINCT run_id, step, cfg_scale, sample_seed, "
    "wall_s FROM evals WHERE source = 'harness') e JOIN sweep_runs s ON s.run_id = e.run_id AND s.sweep = ?1";

static int prepare(struct store *db, const char *sql, const char *what, sqlite3_stmt **stmt)
{
    if (sqlite3_prepare_v2(db->handle, sql, -1, stmt, NULL) != SQLITE_OK)
        return err("%s: %s", what, sqlite3_errmsg(db->handle));
    return 0;
}

// Steps st to its end, each row filled into a new item of item_size bytes by fill; finalizes st.
// *rows [*n] allocated (NULL when none), freed again on error.
typedef void (*row_fill)(sqlite3_stmt *st, void *item);
static int read_rows(sqlite3_stmt *st, size_t item_size, const char *what, row_fill fill, void **rows, int *n)
{
    int rc = 0, capacity = 0;
    *rows = NULL, *n = 0;
    while (rc == 0 && sqlite3_step(st) == SQLITE_ROW)
        if ((rc = store_grow(rows, *n, &capacity, item_size, 64, what)) == 0)
            fill(st, (char *)*rows + item_size * (size_t)(*n)++);
    sqlite3_finalize(st);
    if (rc < 0) free(*rows), *rows = NULL, *n = 0;
    return rc;
}

static void fill_difference(sqlite3_stmt *st, void *item)
{
    *(double *)item = sqlite3_column_double(st, 0) - sqlite3_column_double(st, 1);
}

static void fill_paired_redraw(sqlite3_stmt *st, void *item)
{
    *(struct store_paired_redraw *)item = (struct store_paired_redraw){
        sqlite3_column_int64(st, 0), sqlite3_column_int(st, 1), sqlite3_column_double(st, 2)};
}

static void fill_diversity_point(sqlite3_stmt *st, void *item)
{
    *(struct store_diversity_point *)item = (struct store_diversity_point){
        .k = sqlite3_column_int(st, 0), .mean = sqlite3_column_double(st, 1), .runs = sqlite3_column_int(st, 2)};
}

int store_redraw_differences(struct store *db, const char *sweep, const char *metric, double cfg,
                             double **differences, int *n)
{
    sqlite3_stmt *st;
    *differences = NULL, *n = 0;
    if (prepare(db, REDRAW_SQL, "redraws", &st) < 0) return -1;
    sqlite3_bind_text(st, 1, sweep, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, metric, -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 3, cfg);
    void *rows;
    int rc = read_rows(st, sizeof **differences, "redraws", fill_difference, &rows, n);
    *differences = rows;
    return rc;
}

int store_paired_redraws(struct store *db, const char *sweep, const char *label_a, const char *label_b,
                         const char *metric, double cfg, struct store_paired_redraw **rows, int *n)
{
    sqlite3_stmt *st;
    *rows = NULL, *n = 0;
    if (prepare(db, PAIRED_REDRAW_SQL, "paired redraws", &st) < 0) return -1;
    sqlite3_bind_text(st, 1, sweep, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, label_a, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, label_b, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, metric, -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 5, cfg);
    void *items;
    int rc = read_rows(st, sizeof **rows, "paired redraws", fill_paired_redraw, &items, n);
    *rows = items;
    return rc;
}

int store_label_diversity(struct store *db, const char *sweep, const char *label,
                          struct store_diversity_point **rows, int *n)
{
    sqlite3_stmt *st;
    *rows = NULL, *n = 0;
    if (prepare(db, DIVERSITY_SQL, "diversity", &st) < 0) return -1;
    sqlite3_bind_text(st, 1, sweep, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, label, -1, SQLITE_STATIC);
    void *items;
    int rc = read_rows(st, sizeof **rows, "diversity points", fill_diversity_point, &items, n);
    *rows = items;
    return rc;
}

long long store_sweep_int_param(struct store *db, const char *sweep, const char *key)
{
    sqlite3_stmt *st;
    long long value = 0;
    if (sqlite3_prepare_v2(db->handle, INT_PARAM_SQL, -1, &st, NULL) != SQLITE_OK) return 0;
    sqlite3_bind_text(st, 1, sweep, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) value = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return value;
}

int store_sweep_eval_time(struct store *db, const char *sweep, int *evals, double *seconds)
{
    sqlite3_stmt *st;
    *evals = 0, *seconds = 0;
    if (prepare(db, EVAL_TIME_SQL, "eval time", &st) < 0) return -1;
    sqlite3_bind_text(st, 1, sweep, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) *evals = sqlite3_column_int(st, 0), *seconds = sqlite3_column_double(st, 1);
    sqlite3_finalize(st);
    return 0;
}
