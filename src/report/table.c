// Filling a table from the database. A row's runs: the members of the scale's sweep (sweep_runs)
// whose params hold every `where` pair; two of them with the same train.seed mean the spec does
// not pin the row down, which is an error. A cell: each run's latest evaluation (final_evals) of
// the column's metric at its cfg scale (or the one at the row's `step`), preferring the latest
// step, then the most samples.
#include "report/table.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "report/paper.h"
#include "report/stats.h"
#include "store/run_values.h"
#include "store/sweep_members.h"

enum { RUNS_PER_ROW_MAX = 64 };

static int check_seed_unique(const struct store_row_run *runs, int n, const struct spec_row *row,
                             const char *sweep)
{
    for (int i = 0; i < n - 1; i++)
        if (!strcmp(runs[i].seed, runs[n - 1].seed))
            return err("row '%s': runs %s and %s of sweep '%s' both match with train.seed %s; "
                       "add where keys", row->label, runs[i].run_id, runs[n - 1].run_id, sweep,
                       runs[n - 1].seed);
    return 0;
}

static int match_runs(struct store *db, const struct spec_row *row, enum table_scale scale,
                      const char *sweep, struct store_row_run *runs, int *n_runs)
{
    const char *keys[SPEC_WHERE_MAX], *values[SPEC_WHERE_MAX];
    int or_absent[SPEC_WHERE_MAX];
    for (int w = 0; w < row->n_where; w++) {
        keys[w] = row->where[w].key;
        values[w] = row->where[w].value[scale];
        or_absent[w] = row->where[w].default_left_out[scale];
    }
    int more = store_sweep_matching_runs(db, sweep, keys, values, or_absent, row->n_where, runs, RUNS_PER_ROW_MAX,
                                         n_runs);
    if (more < 0) return -1;
    // Checked run by run in sweep order, as they match: the first repeated seed is the one named.
    for (int n = 2; n <= *n_runs; n++)
        if (check_seed_unique(runs, n, row, sweep) < 0) return -1;
    return more ? err("row '%s': more than %d runs", row->label, RUNS_PER_ROW_MAX) : 0;
}

int table_run_value(struct store *db, const char *run_id, const struct spec_column *column, enum table_scale scale,
                    long long step_wanted, double *value)
{
    switch (column->metric) {
    case METRIC_VAL_LOSS: return store_run_val_loss(db, run_id, step_wanted, value);
    case METRIC_DIVERSITY: return store_run_diversity(db, run_id, step_wanted, column->k, value);
    case METRIC_TOKEN_RATIO: return store_run_token_ratio(db, run_id, step_wanted, value);
    default: {
        const char *metric = spec_metric_name(column->metric, scale);
        return metric ? store_run_eval(db, run_id, metric, column->cfg, step_wanted, value) : 0;
    }
    }
}

// Why a cell with matching runs has no value: the first state in this list that one of them is in.
static const struct {
    const char *status, *text;
    int with_progress; // append (step_done/train.steps)
} missing_states[] = {
    {"running", "running", 1}, {"interrupted", "interrupted", 1}, {"queued", "queued", 0},
    {"failed", "failed", 0},   {"nan", "failed (nan)", 0},        {"done", "no eval", 0},
};

static void missing_state(const struct store_row_run *runs, int n, char *state)
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

static int fill_cell(struct store *db, const struct store_row_run *runs, int n_runs, long long step,
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

static int fill_row(struct store *db, const struct paper_figures *paper, struct table_result *result, int r)
{
    const struct table_spec *spec = result->spec;
    const struct spec_row *row = &spec->rows[r];
    const char *sweep = spec->sweep[result->scale];
    struct store_row_run runs[RUNS_PER_ROW_MAX];
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

int table_row_values(struct store *db, const struct table_spec *spec, int row, const struct spec_column *column,
                     enum table_scale scale, struct row_value *out, int max, int *n)
{
    struct store_row_run runs[RUNS_PER_ROW_MAX];
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

int table_build(const struct table_spec *spec, struct store *db, enum table_scale scale,
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

enum table_scale table_detect_scale(const struct table_spec *spec, struct store *db)
{
    const char *sweep = spec->sweep[SCALE_PAPER];
    if (!sweep[0]) return SCALE_MINI;
    return store_sweep_has_runs(db, sweep) ? SCALE_PAPER : SCALE_MINI;
}
