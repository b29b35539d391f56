// A paper table filled from the results database: for each row of a spec, the runs of the
// scale's sweep whose params match the row's `where`; for each column, their latest evaluation of
// the metric at the cfg scale, as mean and 95% interval over seeds, beside the paper's figure.
// Cells without a value say why (no run, queued, running (step/steps), failed, no eval).
#ifndef PROMOE_REPORT_TABLE_H
#define PROMOE_REPORT_TABLE_H

#include <stdio.h>

#include "report/table_spec.h"

struct store;

enum table_format { FORMAT_MARKDOWN, FORMAT_LATEX, FORMAT_CSV };
enum { CELL_STATE_MAX = 128 };

struct table_cell {
    int n;                        // evaluated runs (seeds); 0 = state says why not
    double mean, half;            // half-width of the 95% interval (0 when n == 1)
    int decimals;                 // printed decimals of the column's metric
    char state[CELL_STATE_MAX];   // "ok" or the reason there is no value
    int has_paper;
    double paper;
};

struct table_result {
    const struct table_spec *spec;
    enum table_scale scale;
    struct table_cell cells[SPEC_ROWS_MAX][SPEC_COLUMNS_MAX];
};

// The scale whose sweep has runs in the database: paper if its sweep has any, else mini.
enum table_scale table_detect_scale(const struct table_spec *spec, struct store *db);

// Fills *out (caller-owned) for the given scale.
int table_build(const struct table_spec *spec, struct store *db, enum table_scale scale,
                struct table_result *out);

// A run's value of a column (any metric kind): its evaluation of the column's metric at the
// column's cfg scale, or its validation loss, expert diversity or token ratio; at step_wanted, or
// (0) the latest step. 1 and *value when found, 0 when not, -1 on error.
int table_run_value(struct store *db, const char *run_id, const struct spec_column *column, enum table_scale scale,
                    long long step_wanted, double *value);

// The value of each run of a spec row that has one, with its train.seed (text), for pairing runs
// of two rows seed by seed; at most max. *n = how many.
struct row_value {
    char seed[64], run_id[64];
    double value;
};
int table_row_values(struct store *db, const struct table_spec *spec, int row, const struct spec_column *column,
                     enum table_scale scale, struct row_value *out, int max, int *n);

int table_format_parse(const char *name, enum table_format *out);
// Writes the table in the format; CSV is long: row,column,scale,n,mean,ci95,paper,status.
void table_write(const struct table_result *result, enum table_format format, FILE *out);

#endif
