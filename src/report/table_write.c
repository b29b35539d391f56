// Writing a filled table as Markdown, LaTeX (booktabs) or long CSV. Our cells read
// "mean ± half-width (n=3)" over seeds, or the single value when n = 1, or the reason there is no
// value; the paper's figure stands in the column beside ours ("-" where the paper gives none).
// At mini scale the Frechet distance of the harness's own feature network is "FD (ours)", never FID.
#include "report/table.h"

#include <string.h>

enum { CSV_DIGITS = 10, HEADER_MAX = 64, LABEL_MAX = 512 };

static const char *const format_names[] = {"md", "latex", "csv"}; // index = enum table_format

int table_format_parse(const char *name, enum table_format *out)
{
    for (size_t f = 0; f < sizeof format_names / sizeof *format_names; f++)
        if (!strcmp(name, format_names[f])) {
            *out = (enum table_format)f;
            return 0;
        }
    return -1;
}

// Display names of our measurement and of the paper's, per metric.
static const struct {
    const char *ours[SCALE_COUNT], *paper;
} headers[METRIC_COUNT] = {
    [METRIC_FID] = {{"FD (ours)", "FID50K (ours)"}, "FID50K (paper)"},
    [METRIC_SFID] = {{"sFID (ours)", "sFID (ours)"}, NULL},
    [METRIC_IS] = {{"IS (ours)", "IS (ours)"}, "IS (paper)"},
    [METRIC_PRECISION] = {{"Precision (ours)", "Precision (ours)"}, NULL},
    [METRIC_RECALL] = {{"Recall (ours)", "Recall (ours)"}, NULL},
    [METRIC_CLASS_ACC] = {{"Class acc. (ours)", "Class acc. (ours)"}, NULL},
    [METRIC_VAL_LOSS] = {{"Val. loss (ours)", "Val. loss (ours)"}, NULL},
    [METRIC_DIVERSITY] = {{"Expert similarity (ours)", "Expert similarity (ours)"}, NULL},
    [METRIC_TOKEN_RATIO] = {{"Inter/intra ratio (ours)", "Inter/intra ratio (ours)"}, NULL},
};

// A cfg scale as the paper writes it: 1.0, 1.5.
static void write_cfg(const struct spec_column *column, FILE *out)
{
    double cfg = column->cfg;
    if (column->metric == METRIC_DIVERSITY) fprintf(out, "k=%d", column->k);
    if (!spec_metric_has_cfg(column->metric)) return;
    fprintf(out, cfg == (long long)cfg ? "cfg=%.1f" : "cfg=%g", cfg);
}

static int has_paper_column(const struct spec_column *column)
{
    return spec_metric_paper_column(column->metric) != NULL;
}

// The row label and its paper qualifiers: "ProMoE-L-Flow (1M)".
static void row_label(const struct spec_row *row, char *out)
{
    int used = snprintf(out, LABEL_MAX, "%s", row->label);
    for (int q = 0; q < row->n_paper && used < LABEL_MAX; q++)
        used += snprintf(out + used, LABEL_MAX - (size_t)used, "%s%s%s", q ? ", " : " (",
                         row->paper[q].value, q == row->n_paper - 1 ? ")" : "");
}

static void write_ours(const struct table_cell *cell, const char *plus_minus, FILE *out)
{
    if (cell->n == 0)
        fprintf(out, "%s", cell->state);
    else if (cell->n == 1)
        fprintf(out, "%.*f", cell->decimals, cell->mean);
    else
        fprintf(out, "%.*f %s %.*f (n=%d)", cell->decimals, cell->mean, plus_minus, cell->decimals,
                cell->half, cell->n);
}

static void write_paper(const struct table_cell *cell, FILE *out)
{
    if (cell->has_paper)
        fprintf(out, "%.*f", cell->decimals, cell->paper);
    else
        fprintf(out, "-");
}

// ---- Markdown ----------------------------------------------------------------------------------

static void markdown_header(const struct table_result *r, FILE *out)
{
    const struct table_spec *spec = r->spec;
    fprintf(out, "### %s\n\n", spec->title[0] ? spec->title : spec->path);
    fprintf(out, "Scale: %s (sweep `%s`). Ours: mean ± 95%% interval over seeds (n); the paper: "
            "ImageNet 256x256.\n\n| Model |", table_scale_name(r->scale), spec->sweep[r->scale]);
    for (int c = 0; c < spec->n_columns; c++) {
        const struct spec_column *column = &spec->columns[c];
        fprintf(out, " %s ", headers[column->metric].ours[r->scale]);
        write_cfg(column, out);
        fprintf(out, " |");
        if (!has_paper_column(column)) continue;
        fprintf(out, " %s ", headers[column->metric].paper);
        write_cfg(column, out);
        fprintf(out, " |");
    }
    fprintf(out, "\n|---|");
    for (int c = 0; c < spec->n_columns; c++) fprintf(out, has_paper_column(&spec->columns[c]) ? "---:|---:|" : "---:|");
    fprintf(out, "\n");
}

static void write_markdown(const struct table_result *r, FILE *out)
{
    const struct table_spec *spec = r->spec;
    markdown_header(r, out);
    for (int i = 0; i < spec->n_rows; i++) {
        char label[LABEL_MAX];
        row_label(&spec->rows[i], label);
        fprintf(out, "| %s |", label);
        for (int c = 0; c < spec->n_columns; c++) {
            fputc(' ', out);
            write_ours(&r->cells[i][c], "±", out);
            fprintf(out, " |");
            if (!has_paper_column(&spec->columns[c])) continue;
            fputc(' ', out);
            write_paper(&r->cells[i][c], out);
            fprintf(out, " |");
        }
        fputc('\n', out);
    }
    if (spec->caption[0]) fprintf(out, "\n%s\n", spec->caption);
}

// ---- LaTeX -------------------------------------------------------------------------------------

static void latex_text(const char *s, FILE *out)
{
    for (; *s; s++) {
        if (strchr("&%$#_{}", *s))
            fprintf(out, "\\%c", *s);
        else if (*s == '~')
            fprintf(out, "\\textasciitilde{}");
        else if (*s == '^')
            fprintf(out, "\\textasciicircum{}");
        else if (*s == '\\')
            fprintf(out, "\\textbackslash{}");
        else
            fputc(*s, out);
    }
}

static void latex_header(const struct table_result *r, FILE *out)
{
    const struct table_spec *spec = r->spec;
    fprintf(out, "\\begin{table}[t]\n\\centering\n\\caption{");
    latex_text(spec->title[0] ? spec->title : spec->path, out);
    fprintf(out, " (%s scale", table_scale_name(r->scale));
    if (spec->caption[0]) fprintf(out, "; ");
    latex_text(spec->caption, out);
    fprintf(out, ")}\n\\begin{tabular}{l");
    for (int c = 0; c < spec->n_columns; c++) fprintf(out, has_paper_column(&spec->columns[c]) ? "rr" : "r");
    fprintf(out, "}\n\\toprule\nModel");
    for (int c = 0; c < spec->n_columns; c++) {
        const struct spec_column *column = &spec->columns[c];
        fprintf(out, " & ");
        latex_text(headers[column->metric].ours[r->scale], out);
        fputc(' ', out);
        write_cfg(column, out);
        if (!has_paper_column(column)) continue;
        fprintf(out, " & ");
        latex_text(headers[column->metric].paper, out);
        fputc(' ', out);
        write_cfg(column, out);
    }
    fprintf(out, " \\\\\n\\midrule\n");
}

static void write_latex(const struct table_result *r, FILE *out)
{
    const struct table_spec *spec = r->spec;
    latex_header(r, out);
    for (int i = 0; i < spec->n_rows; i++) {
        char label[LABEL_MAX];
        row_label(&spec->rows[i], label);
        latex_text(label, out);
        for (int c = 0; c < spec->n_columns; c++) {
            fprintf(out, " & ");
            write_ours(&r->cells[i][c], "$\\pm$", out);
            if (!has_paper_column(&spec->columns[c])) continue;
            fprintf(out, " & ");
            write_paper(&r->cells[i][c], out);
        }
        fprintf(out, " \\\\\n");
    }
    fprintf(out, "\\bottomrule\n\\end{tabular}\n\\end{table}\n");
}

// ---- CSV ---------------------------------------------------------------------------------------

// RFC 4180: a field with a comma, quote or line break is quoted, quotes doubled.
static void csv_field(const char *s, FILE *out)
{
    if (!strpbrk(s, ",\"\n\r")) {
        fprintf(out, "%s", s);
        return;
    }
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '"') fputc('"', out);
        fputc(*s, out);
    }
    fputc('"', out);
}

static void write_csv(const struct table_result *r, FILE *out)
{
    const struct table_spec *spec = r->spec;
    fprintf(out, "row,column,scale,n,mean,ci95,paper,status\n");
    for (int i = 0; i < spec->n_rows; i++) {
        char label[LABEL_MAX];
        row_label(&spec->rows[i], label);
        for (int c = 0; c < spec->n_columns; c++) {
            const struct spec_column *column = &spec->columns[c];
            const struct table_cell *cell = &r->cells[i][c];
            const char *metric = spec_metric_name(column->metric, r->scale);
            csv_field(label, out);
            fprintf(out, ",%s@%g,%s,%d,", metric ? metric : spec_metric_name(column->metric, SCALE_PAPER),
                    column->cfg, table_scale_name(r->scale), cell->n);
            if (cell->n > 0) fprintf(out, "%.*g", CSV_DIGITS, cell->mean);
            fputc(',', out);
            if (cell->n > 1) fprintf(out, "%.*g", CSV_DIGITS, cell->half);
            fputc(',', out);
            if (cell->has_paper) fprintf(out, "%.*g", CSV_DIGITS, cell->paper);
            fputc(',', out);
            csv_field(cell->state, out);
            fputc('\n', out);
        }
    }
}

void table_write(const struct table_result *result, enum table_format format, FILE *out)
{
    switch (format) {
    case FORMAT_MARKDOWN: write_markdown(result, out); break;
    case FORMAT_LATEX: write_latex(result, out); break;
    case FORMAT_CSV: write_csv(result, out); break;
    }
}
