// paper_tables.csv reader: the header names the columns; a cell is looked up by matching the
// `table`, `model` and `cfg` columns and any qualifier columns of the spec's row.
#include "report/paper.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

enum { PAPER_COLUMNS_MAX = 24, PAPER_LINE_MAX = 1024 };
static const double CFG_TOLERANCE = 1e-9;

struct paper_line {
    char *fields[PAPER_COLUMNS_MAX];
};

struct paper_figures {
    char *header[PAPER_COLUMNS_MAX];
    int n_columns;
    struct paper_line *lines;
    int n_lines;
};

// Splits a line in place at commas; returns the number of fields.
static int split(char *line, char **fields)
{
    int n = 0;
    line[strcspn(line, "\r\n")] = '\0';
    for (char *p = line;; p++) {
        if (n == PAPER_COLUMNS_MAX) return n + 1;
        fields[n++] = p;
        p += strcspn(p, ",");
        if (!*p) return n;
        *p = '\0';
    }
}

static int add_line(struct paper_figures *paper, const char *path, int number, char *text)
{
    char *fields[PAPER_COLUMNS_MAX];
    int n = split(text, fields);
    if (number == 1) {
        if (n > PAPER_COLUMNS_MAX) return err("%s:1: more than %d columns", path, PAPER_COLUMNS_MAX);
        paper->n_columns = n;
        for (int i = 0; i < n; i++)
            if (!(paper->header[i] = strdup(fields[i]))) return err("out of memory");
        return 0;
    }
    if (n != paper->n_columns)
        return err("%s:%d: %d fields, the header has %d", path, number, n, paper->n_columns);
    struct paper_line *lines = realloc(paper->lines, (size_t)(paper->n_lines + 1) * sizeof *lines);
    if (!lines) return err("out of memory");
    paper->lines = lines;
    struct paper_line *line = &lines[paper->n_lines++];
    memset(line, 0, sizeof *line);
    for (int i = 0; i < n; i++)
        if (!(line->fields[i] = strdup(fields[i]))) return err("out of memory");
    return 0;
}

int paper_load(struct paper_figures **out, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return err("cannot open the paper's figures '%s'", path);
    struct paper_figures *paper = calloc(1, sizeof *paper);
    char text[PAPER_LINE_MAX];
    int rc = paper ? 0 : err("out of memory");
    for (int number = 1; rc == 0 && fgets(text, sizeof text, f); number++)
        if (number == 1 || text[0] != '\n') rc = add_line(paper, path, number, text);
    fclose(f);
    if (rc == 0 && paper->n_columns == 0) rc = err("%s: empty file", path);
    if (rc < 0) {
        paper_free(paper);
        return -1;
    }
    *out = paper;
    return 0;
}

void paper_free(struct paper_figures *paper)
{
    if (!paper) return;
    for (int i = 0; i < paper->n_columns; i++) free(paper->header[i]);
    for (int l = 0; l < paper->n_lines; l++)
        for (int i = 0; i < paper->n_columns; i++) free(paper->lines[l].fields[i]);
    free(paper->lines);
    free(paper);
}

static int column_index(const struct paper_figures *paper, const char *name)
{
    for (int i = 0; i < paper->n_columns; i++)
        if (!strcmp(paper->header[i], name)) return i;
    return -1;
}

static int line_matches(const struct paper_figures *paper, const struct paper_line *line,
                        int table, const struct spec_row *row, double cfg)
{
    int t = column_index(paper, "table"), m = column_index(paper, "model"), c = column_index(paper, "cfg");
    if (t < 0 || m < 0 || c < 0) return 0;
    if (atoi(line->fields[t]) != table || strcmp(line->fields[m], row->label)) return 0;
    if (fabs(atof(line->fields[c]) - cfg) > CFG_TOLERANCE) return 0;
    for (int q = 0; q < row->n_paper; q++) {
        int i = column_index(paper, row->paper[q].column);
        if (i < 0 || strcmp(line->fields[i], row->paper[q].value)) return 0;
    }
    return 1;
}

int paper_value(const struct paper_figures *paper, int table, const struct spec_row *row,
                double cfg, const char *column, double *value)
{
    int i = column ? column_index(paper, column) : -1;
    if (i < 0) return 0;
    for (int l = 0; l < paper->n_lines; l++) {
        const struct paper_line *line = &paper->lines[l];
        if (!line_matches(paper, line, table, row, cfg) || !line->fields[i][0]) continue;
        char *end;
        *value = strtod(line->fields[i], &end);
        return end != line->fields[i] && !*end;
    }
    return 0;
}

int paper_check_row(const struct paper_figures *paper, const char *path, const struct spec_row *row)
{
    for (int q = 0; q < row->n_paper; q++)
        if (column_index(paper, row->paper[q].column) < 0)
            return err("row '%s': '%s' has no column '%s'", row->label, path, row->paper[q].column);
    return 0;
}
