// A table spec (analysis/tables/tableN.yaml): which paper table it reproduces, the sweep that
// holds its runs at each scale, its columns (metric at a cfg scale) and its rows (a label as in
// the paper's figures file, qualifiers that pick the paper's row, and the params a run must have).
// Parsed with libyaml; every error names file:line:column. `where` values are checked against the
// config key table and stored in the canonical text of the params table, so "1.0" matches "1".
#ifndef PROMOE_REPORT_TABLE_SPEC_H
#define PROMOE_REPORT_TABLE_SPEC_H

enum table_scale { SCALE_MINI, SCALE_PAPER, SCALE_COUNT };

enum {
    SPEC_TEXT_MAX = 256,
    SPEC_CAPTION_MAX = 1024,
    SPEC_KEY_MAX = 64,
    SPEC_VALUE_MAX = 1100, // a canonical string value, fully escaped
    SPEC_WHERE_MAX = 8,
    SPEC_QUALIFIER_MAX = 4,
    SPEC_ROWS_MAX = 32,
    SPEC_COLUMNS_MAX = 8,
};

// One params condition: key = value[scale] (the same value at both scales unless the spec gives
// a {mini: ..., paper: ...} mapping).
struct spec_where {
    char key[SPEC_KEY_MAX];
    char value[SCALE_COUNT][SPEC_VALUE_MAX];
    int default_left_out[SCALE_COUNT];   // value is the key's default, which the canonical config (and so
                                         // a run's params) leaves out: runs without the key match too
};

// A paper_tables.csv column that must hold this value for the paper's row (e.g. train_steps 1M).
struct spec_qualifier {
    char column[SPEC_KEY_MAX];
    char value[SPEC_KEY_MAX];
};

struct spec_row {
    char label[SPEC_TEXT_MAX]; // paper_tables.csv `model`
    struct spec_qualifier paper[SPEC_QUALIFIER_MAX];
    int n_paper;
    struct spec_where where[SPEC_WHERE_MAX];
    int n_where;
    long long step[SCALE_COUNT]; // evaluation step to show; 0 = each run's latest
};

// Metrics as the paper names them; at mini scale FID is measured as the harness's `fd`. The
// first ones are sample evaluations (`evals`, at a cfg scale); then the held-out validation loss
// (`metrics`), expert diversity (`diversity`: model mean of the subspace similarity at k, variant
// out; lower = more diverse) and the tokens' inter/intra-class distance ratio (`token_stats`,
// centroid form), which take no cfg scale.
enum spec_metric {
    METRIC_FID, METRIC_SFID, METRIC_IS, METRIC_PRECISION, METRIC_RECALL, METRIC_CLASS_ACC,
    METRIC_VAL_LOSS, METRIC_DIVERSITY, METRIC_TOKEN_RATIO, METRIC_COUNT
};

enum { SPEC_DEFAULT_K = 8 };   // subspace dimension of METRIC_DIVERSITY unless a column says k

struct spec_column {
    enum spec_metric metric;
    double cfg;   // sample evaluations only
    int k;        // METRIC_DIVERSITY only
};

struct table_spec {
    char path[SPEC_TEXT_MAX];
    int table;                          // the paper's table number (paper_tables.csv `table`)
    char title[SPEC_TEXT_MAX];
    char caption[SPEC_CAPTION_MAX];
    char sweep[SCALE_COUNT][SPEC_TEXT_MAX];
    char paper_csv[SPEC_TEXT_MAX];      // the paper's figures; default analysis/paper/paper_tables.csv
    struct spec_row rows[SPEC_ROWS_MAX];
    int n_rows;
    struct spec_column columns[SPEC_COLUMNS_MAX];
    int n_columns;
};

// Reads a spec into *spec (caller-owned, zeroed here).
int table_spec_load(struct table_spec *spec, const char *path);

// Names: "mini" / "paper"; metric names at each scale ("fid" -> "fd" at mini scale); the
// paper_tables.csv column of a metric (NULL when the paper reports none).
const char *table_scale_name(enum table_scale scale);
int table_scale_parse(const char *name, enum table_scale *out);
const char *spec_metric_name(enum spec_metric metric, enum table_scale scale);
const char *spec_metric_paper_column(enum spec_metric metric);
// The metric of a name as specs write it (fid, is, ..., val_loss); -1 with a message when unknown.
int spec_metric_parse(const char *name, enum spec_metric *out);
// 1 when a lower value is better (fid, sfid, val_loss, diversity).
int spec_metric_lower_is_better(enum spec_metric metric);
// 1 for the metrics read from sample evaluations at a cfg scale.
int spec_metric_has_cfg(enum spec_metric metric);
// Decimals a table prints for the metric.
int spec_metric_decimals(enum spec_metric metric);

#endif
