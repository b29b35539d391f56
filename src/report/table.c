// Filling a table from the database. A row's runs: the members of the scale's sweep (sweep_runs)
// whose params hold every `where` pair; two of them with the same train.seed mean the spec does
// not pin the row down, which is an error. A cell: each run's latest evaluation (final_evals) of
// the column's metric at its cfg scale (or the one at the row's `step`), preferring the latest
// step, then the most samples.
#include "report/table.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "report/paper.h"
#include "report/stats.h"

enum { RUNS_PER_ROW_MAX = 64, SQL_MAX = 4096, ID_MAX = 64 };
static const double CFG_TOLERANCE = 1e-6;

struct matched_run {
    char run_id[ID_MAX], status[ID_MAX], seed[ID_MAX], steps[ID_MAX];
    long long step_done;
};

static const char ROW_RUNS_SQL[] =
    "SELECT r.run_id, r.status, r.step_done, "
    "  coalesce((SELECT value FROM params WHERE run_id = r.run_id AND key = 'train.seed'), ''), "
    "  coalesce((SELECT value FROM params WHERE run_id = r.run_id AND key = 'train.steps'), '?') "
    "FROM sweep_runs s JOIN runs r ON r.run_id = s.run_id WHERE s.sweep = ?1";
static const char WHERE_SQL[] =
    " AND EXISTS (SELECT 1 FROM params p WHERE p.run_id = r.run_id AND p.key = ?%d AND p.value = ?%d)";

// ?5 = 0: the run's latest evaluation; else the evaluation at that step.
static const char EVAL_SQL[] =
    "SELECT value FROM evals WHERE run_id = ?1 AND metric = ?2 AND abs(cfg_scale - ?3) < ?4 "
    "AND value IS NOT NULL AND (?5 = 0 OR step = ?5) ORDER BY step DESC, n_samples DESC, "
    "sample_seed = coalesce((SELECT CAST(value AS INTEGER) FROM params WHERE run_id = ?1 AND key = 'train.seed'), -1) "
    "DESC, sample_seed LIMIT 1";

// The validation loss of a done run's last step (or of step ?2), the model-mean expert diversity at k = ?3, and the
// centroid inter/intra-class ratio of a run, the latest step first.
static const char VAL_LOSS_SQL[] =
    "SELECT value FROM metrics WHERE run_id = ?1 AND name = 'val_loss' AND (?2 = 0 OR step = ?2) "
    "AND (?2 <> 0 OR (SELECT status FROM runs WHERE run_id = ?1) = 'done') ORDER BY step DESC LIMIT 1";
static const char DIVERSITY_SQL[] =
    "SELECT value FROM diversity WHERE run_id = ?1 AND layer = -1 AND variant = 'out' AND k = ?3 "
    "AND (?2 = 0 OR step = ?2) ORDER BY step DESC LIMIT 1";
static const char TOKEN_RATIO_SQL[] =
    "SELECT value FROM token_stats WHERE run_id = ?1 AND metric = 'ratio' AND variant = 'centroid' "
    "AND value IS NOT NULL AND (?2 = 0 OR step = ?2) ORDER BY step DESC, n_tokens DESC LIMIT 1";

static int sql_error(sqlite3 *db, const char *what)
{
    return err("%s: %s", what, sqlite3_errmsg(db));
}

static void copy_column(sqlite3_stmt *stmt, int column, char *out)
{
    const unsigned char *text = sqlite3_column_text(stmt, column);
    snprintf(out, ID_MAX, "%s", text ? (const char *)text : "");
}

static int prepare_row_query(sqlite3 *db, const struct spec_row *row, enum table_scale scale,
                             const char *sweep, sqlite3_stmt **stmt)
{
    char sql[SQL_MAX];
    int used = snprintf(sql, sizeof sql, "%s", ROW_RUNS_SQL);
    for (int w = 0; w < row->n_where; w++)
        used += snprintf(sql + used, sizeof sql - (size_t)used, WHERE_SQL, 2 + 2 * w, 3 + 2 * w);
    snprintf(sql + used, sizeof sql - (size_t)used, " ORDER BY s.idx");
    if (sqlite3_prepare_v2(db, sql, -1, stmt, NULL) != SQLITE_OK) return sql_error(db, "row query");
    sqlite3_bind_text(*stmt, 1, sweep, -1, SQLITE_STATIC);
    for (int w = 0; w < row->n_where; w++) {
        sqlite3_bind_text(*stmt, 2 + 2 * w, row->where[w].key, -1, SQLITE_STATIC);
        sqlite3_bind_text(*stmt, 3 + 2 * w, row->where[w].value[scale], -1, SQLITE_STATIC);
    }
    return 0;
}

static int check_seed_unique(const struct matched_run *runs, int n, const struct spec_row *row,
                             const char *sweep)
{
    for (int i = 0; i < n - 1; i++)
        if (!strcmp(runs[i].seed, runs[n - 1].seed))
            return err("row '%s': runs %s and %s of sweep '%s' both match with train.seed %s; "
                       "add where keys", row->label, runs[i].run_id, runs[n - 1].run_id, sweep,
                       runs[n - 1].seed);
    return 0;
}

static int match_runs(sqlite3 *db, const struct spec_row *row, enum table_scale scale,
                      const char *sweep, struct matched_run *runs, int *n_runs)
{
    sqlite3_stmt *stmt;
    if (prepare_row_query(db, row, scale, sweep, &stmt) < 0) return -1;
    int rc = 0, step;
    *n_runs = 0;
    while (rc == 0 && (step = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (*n_runs == RUNS_PER_ROW_MAX) {
            rc = err("row '%s': more than %d runs", row->label, RUNS_PER_ROW_MAX);
            break;
        }
        struct matched_run *run = &runs[(*n_runs)++];
        copy_column(stmt, 0, run->run_id);
        copy_column(stmt, 1, run->status);
        run->step_done = sqlite3_column_int64(stmt, 2);
        copy_column(stmt, 3, run->seed);
        copy_column(stmt, 4, run->steps);
        rc = check_seed_unique(runs, *n_runs, row, sweep);
    }
    if (rc == 0 && step != SQLITE_DONE) rc = sql_error(db, "row query");
    sqlite3_finalize(stmt);
    return rc;
}

int table_run_eval(sqlite3 *db, const char *run_id, const char *metric, double cfg,
                    long long step_wanted, double *value)
{
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2(db, EVAL_SQL, -1, &stmt, NULL) != SQLITE_OK)
        return sql_error(db, "eval query");
    sqlite3_bind_text(stmt, 1, run_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, metric, -1, SQLITE_STATIC);
    sqlite3_bind_double(stmt, 3, cfg);
    sqlite3_bind_double(stmt, 4, CFG_TOLERANCE);
    sqlite3_bind_int64(stmt, 5, step_wanted);
    int step = sqlite3_step(stmt), found = step == SQLITE_ROW;
    if (found) *value = sqlite3_column_double(stmt, 0);
    sqlite3_finalize(stmt);
    return found || step == SQLITE_DONE ? found : sql_error(db, "eval query");
}

int table_run_value(sqlite3 *db, const char *run_id, const struct spec_column *column, enum table_scale scale,
                    long long step_wanted, double *value)
{
    const char *sql = column->metric == METRIC_VAL_LOSS ? VAL_LOSS_SQL
                    : column->metric == METRIC_DIVERSITY ? DIVERSITY_SQL
                    : column->metric == METRIC_TOKEN_RATIO ? TOKEN_RATIO_SQL : NULL;
    if (!sql) {
        const char *metric = spec_metric_name(column->metric, scale);
        return metric ? table_run_eval(db, run_id, metric, column->cfg, step_wanted, value) : 0;
    }
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) != SQLITE_OK) return sql_error(db, "value query");
    sqlite3_bind_text(stmt, 1, run_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 2, step_wanted);
    if (column->metric == METRIC_DIVERSITY) sqlite3_bind_int(stmt, 3, column->k);
    int step = sqlite3_step(stmt), found = step == SQLITE_ROW;
    if (found) *value = sqlite3_column_double(stmt, 0);
    sqlite3_finalize(stmt);
    return found || step == SQLITE_DONE ? found : sql_error(db, "value query");
}

// Why a cell with matching runs has no value: the first state in this list that one of them is in.
static const struct {
    const char *status, *text;
    int with_progress; // append (step_done/train.steps)
} missing_states[] = {
    {"running", "running", 1}, {"interrupted", "interrupted", 1}, {"queued", "queued", 0},
    {"failed", "failed", 0},   {"nan", "failed (nan)", 0},        {"done", "no eval", 0},
};

static void missing_state(const struct matched_run *runs, int n, char *state)
{
    for (size_t s = 0; s < sizeof missing_states / sizeof *missing_states; s++)
        for (int i = 0; i < n; i++) {
            if (strcmp(runs[i].status, missing_states[s].status)) continue;
            if (missing_states[s].with_progress)
                snprintf(state, CELL_STATE_MAX, "%s (%lld/%s)", missing_states[s].text,
                         runs[i].step_done, runs[i].steps);
            else
                snprintf(state, CELL_STATE_MAX, "%s", missing_states[s].text);
            return;
        }
    snprintf(state, CELL_STATE_MAX, "no run");
}

static int fill_cell(sqlite3 *db, const struct matched_run *runs, int n_runs, long long step,
                     const struct spec_column *column, enum table_scale scale,
                     struct table_cell *cell)
{
    double values[RUNS_PER_ROW_MAX];
    const char *metric = spec_metric_name(column->metric, scale);
    cell->n = 0;
    cell->decimals = spec_metric_decimals(column->metric);
    for (int i = 0; metric && i < n_runs; i++) {
        int found = table_run_value(db, runs[i].run_id, column, scale, step, &values[cell->n]);
        if (found < 0) return -1;
        cell->n += found;
    }
    if (cell->n == 0) {
        if (!metric)
            snprintf(cell->state, CELL_STATE_MAX, "not measured");
        else
            missing_state(runs, n_runs, cell->state);
        return 0;
    }
    stats_mean_ci95(values, cell->n, &cell->mean, &cell->half);
    snprintf(cell->state, CELL_STATE_MAX, "ok");
    return 0;
}

static int fill_row(sqlite3 *db, const struct paper_figures *paper, struct table_result *result, int r)
{
    const struct table_spec *spec = result->spec;
    const struct spec_row *row = &spec->rows[r];
    const char *sweep = spec->sweep[result->scale];
    struct matched_run runs[RUNS_PER_ROW_MAX];
    int n_runs = 0;
    if (paper_check_row(paper, spec->paper_csv, row) < 0) return -1;
    if (sweep[0] && match_runs(db, row, result->scale, sweep, runs, &n_runs) < 0) return -1;
    for (int c = 0; c < spec->n_columns; c++) {
        const struct spec_column *column = &spec->columns[c];
        struct table_cell *cell = &result->cells[r][c];
        if (fill_cell(db, runs, n_runs, row->step[result->scale], column, result->scale, cell) < 0) return -1;
        cell->has_paper = paper_value(paper, spec->table, row, column->cfg,
                                      spec_metric_paper_column(column->metric), &cell->paper);
    }
    return 0;
}

int table_row_values(sqlite3 *db, const struct table_spec *spec, int row, const struct spec_column *column,
                     enum table_scale scale, struct row_value *out, int max, int *n)
{
    struct matched_run runs[RUNS_PER_ROW_MAX];
    int n_runs = 0;
    *n = 0;
    const char *sweep = spec->sweep[scale];
    if (sweep[0] && match_runs(db, &spec->rows[row], scale, sweep, runs, &n_runs) < 0) return -1;
    for (int i = 0; i < n_runs && *n < max; i++) {
        struct row_value *v = &out[*n];
        int found = table_run_value(db, runs[i].run_id, column, scale, spec->rows[row].step[scale], &v->value);
        if (found < 0) return -1;
        if (!found) continue;
        snprintf(v->seed, sizeof v->seed, "%.63s", runs[i].seed);
        snprintf(v->run_id, sizeof v->run_id, "%.63s", runs[i].run_id);
        (*n)++;
    }
    return 0;
}

int table_build(const struct table_spec *spec, sqlite3 *db, enum table_scale scale,
                struct table_result *out)
{
    memset(out, 0, sizeof *out);
    out->spec = spec;
    out->scale = scale;
    struct paper_figures *paper;
    if (paper_load(&paper, spec->paper_csv) < 0) return err_context("%s", spec->path);
    int rc = 0;
    for (int r = 0; rc == 0 && r < spec->n_rows; r++) rc = fill_row(db, paper, out, r);
    paper_free(paper);
    return rc < 0 ? err_context("%s", spec->path) : 0;
}

enum table_scale table_detect_scale(const struct table_spec *spec, sqlite3 *db)
{
    const char *sweep = spec->sweep[SCALE_PAPER];
    if (!sweep[0]) return SCALE_MINI;
    sqlite3_stmt *stmt;
    int has_runs = 0;
    if (sqlite3_prepare_v2(db, "SELECT 1 FROM sweep_runs WHERE sweep = ?1 LIMIT 1", -1, &stmt, NULL) == SQLITE_OK) {
        sqlite3_bind_text(stmt, 1, sweep, -1, SQLITE_STATIC);
        has_runs = sqlite3_step(stmt) == SQLITE_ROW;
        sqlite3_finalize(stmt);
    }
    return has_runs ? SCALE_PAPER : SCALE_MINI;
}
