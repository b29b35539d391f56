// The paper's figures (analysis/paper/paper_tables.csv): one row per table, model and cfg scale,
// with the columns named in its header line. Plain CSV: no quoted fields, no commas inside one.
#ifndef PROMOE_REPORT_PAPER_H
#define PROMOE_REPORT_PAPER_H

#include "report/table_spec.h"

struct paper_figures;

// Reads the file (caller frees with paper_free).
int paper_load(struct paper_figures **out, const char *path);
void paper_free(struct paper_figures *paper);

// The value in column `column` of the row of this table, row label (`model`), qualifiers and
// cfg scale: 1 and *value when found, 0 when the paper gives none.
int paper_value(const struct paper_figures *paper, int table, const struct spec_row *row,
                double cfg, const char *column, double *value);

// Error unless every qualifier of row names a column of the file.
int paper_check_row(const struct paper_figures *paper, const char *path, const struct spec_row *row);

#endif
