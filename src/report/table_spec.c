// Table spec loading: libyaml's document API gives a node tree with the line and column of every
// node, walked here key by key. Unknown keys, missing keys, wrong node kinds, unknown metrics and
// unknown config keys in `where` are errors naming file:line:column.
#include "report/table_spec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "config/config.h"
#include "core/error.h"
#include "report/yaml_error.h"

static const char DEFAULT_PAPER_CSV[] = "analysis/paper/paper_tables.csv";
enum { CANONICAL_MAX = 65536 };

static const char *const scale_names[SCALE_COUNT] = {"mini", "paper"};

// Per metric: the paper's name, the name at mini scale (NULL: not measured), the paper column.
static const struct {
    const char *paper, *mini, *paper_column;
    int has_cfg, decimals;
} metric_names[METRIC_COUNT] = {
    [METRIC_FID] = {"fid", "fd", "fid50k", 1, 2},
    [METRIC_SFID] = {"sfid", NULL, NULL, 1, 2},
    [METRIC_IS] = {"is", "is", "is", 1, 2},
    [METRIC_PRECISION] = {"precision", "precision", NULL, 1, 3},
    [METRIC_RECALL] = {"recall", "recall", NULL, 1, 3},
    [METRIC_CLASS_ACC] = {"class_acc", "class_acc", NULL, 1, 3},
    [METRIC_VAL_LOSS] = {"val_loss", "val_loss", NULL, 0, 4},
    [METRIC_DIVERSITY] = {"diversity", "diversity", NULL, 0, 4},
    [METRIC_TOKEN_RATIO] = {"token_ratio", "token_ratio", NULL, 0, 4},
};

int spec_metric_has_cfg(enum spec_metric metric) { return metric_names[metric].has_cfg; }

int spec_metric_lower_is_better(enum spec_metric metric)
{
    return metric == METRIC_FID || metric == METRIC_SFID || metric == METRIC_VAL_LOSS || metric == METRIC_DIVERSITY;
}

int spec_metric_parse(const char *name, enum spec_metric *out)
{
    for (int m = 0; m < METRIC_COUNT; m++)
        if (!strcmp(name, metric_names[m].paper)) {
            *out = (enum spec_metric)m;
            return 0;
        }
    return err("unknown metric '%s' (fid, sfid, is, precision, recall, class_acc, val_loss, diversity, "
               "token_ratio)", name);
}
int spec_metric_decimals(enum spec_metric metric) { return metric_names[metric].decimals; }

const char *table_scale_name(enum table_scale scale) { return scale_names[scale]; }

int table_scale_parse(const char *name, enum table_scale *out)
{
    for (int s = 0; s < SCALE_COUNT; s++)
        if (!strcmp(name, scale_names[s])) {
            *out = (enum table_scale)s;
            return 0;
        }
    return err("unknown scale '%s' (mini or paper)", name);
}

const char *spec_metric_name(enum spec_metric metric, enum table_scale scale)
{
    return scale == SCALE_MINI ? metric_names[metric].mini : metric_names[metric].paper;
}

const char *spec_metric_paper_column(enum spec_metric metric)
{
    return metric_names[metric].paper_column;
}

// ---- node helpers ----------------------------------------------------------------------------

struct reader {
    yaml_document_t doc;
    struct table_spec *spec;
};

static yaml_node_t *node(struct reader *rd, int index)
{
    return yaml_document_get_node(&rd->doc, index);
}

// An error at node n of the file being read.
#define at(rd, n, ...) yaml_error_at((rd)->spec->path, n, __VA_ARGS__)

static int expect(const struct reader *rd, const yaml_node_t *n, yaml_node_type_t type,
                  const char *what)
{
    static const char *const kinds[] = {"nothing", "a scalar", "a list", "a mapping"};
    if (n->type == type) return 0;
    return at(rd, n, "%s must be %s", what, kinds[type]);
}

static const char *text(const yaml_node_t *n) { return (const char *)n->data.scalar.value; }

static int copy_scalar(const struct reader *rd, const yaml_node_t *n, const char *what, char *out,
                       size_t size)
{
    if (expect(rd, n, YAML_SCALAR_NODE, what) < 0) return -1;
    if (strlen(text(n)) >= size) return at(rd, n, "%s is too long", what);
    strcpy(out, text(n));
    return 0;
}

static int parse_number(const struct reader *rd, const yaml_node_t *n, const char *what,
                        double *out)
{
    if (expect(rd, n, YAML_SCALAR_NODE, what) < 0) return -1;
    char *end;
    *out = strtod(text(n), &end);
    if (end == text(n) || *end) return at(rd, n, "%s: '%s' is not a number", what, text(n));
    return 0;
}

// ---- where: values in the params table's canonical text ----------------------------------------

// The canonical text of key after setting it to value on a default config, e.g. "1" for 1.0,
// "\"E14A1S1U1\"" for a string key. A key the canonical config leaves out at its default
// (train.precision fp32, sample.batch 0) gets its value's text and *left_out = 1.
static int canonical_value(const char *key, const char *value, char *out, size_t size, int *left_out)
{
    *left_out = 0;
    struct config cfg;
    config_defaults(&cfg);
    size_t n = strlen(key) + strlen(value) + 2;
    char *assignment = malloc(n), *canonical = malloc(CANONICAL_MAX);
    int rc = -1;
    if (!assignment || !canonical) {
        err("out of memory");
        goto done;
    }
    snprintf(assignment, n, "%s=%s", key, value);
    if (config_set(&cfg, assignment) < 0) goto done;
    config_canonical(&cfg, canonical, CANONICAL_MAX);
    size_t key_length = strlen(key);
    for (const char *line = canonical; *line; line += strcspn(line, "\n") + (line[strcspn(line, "\n")] == '\n')) {
        if (strncmp(line, key, key_length) || strncmp(line + key_length, ": ", 2)) continue;
        const char *begin = line + key_length + 2;
        size_t length = strcspn(begin, "\n");
        if (length >= size) {
            err("value of '%s' is too long", key);
            goto done;
        }
        memcpy(out, begin, length);
        out[length] = '\0';
        rc = 0;
        goto done;
    }
    // Not in the canonical text: a key left out at its default value.
    if (config_value_text(&cfg, key, out, size) < 0) BUG("key '%s' missing from the canonical config", key);
    *left_out = 1;
    rc = 0;
done:
    free(assignment);
    free(canonical);
    return rc;
}

static int where_value(struct reader *rd, const yaml_node_t *n, struct spec_where *w, int scale)
{
    if (expect(rd, n, YAML_SCALAR_NODE, "a where value") < 0) return -1;
    if (canonical_value(w->key, text(n), w->value[scale], sizeof w->value[scale], &w->default_left_out[scale]) < 0)
        return err_context("%s:%zu:%zu", rd->spec->path, n->start_mark.line + 1,
                           n->start_mark.column + 1);
    return 0;
}

static int scale_index(struct reader *rd, const yaml_node_t *key, int *scale)
{
    for (int s = 0; s < SCALE_COUNT; s++)
        if (!strcmp(text(key), scale_names[s])) {
            *scale = s;
            return 0;
        }
    return at(rd, key, "unknown scale '%s' (mini or paper)", text(key));
}

// `key: value` for both scales, or `key: {mini: v, paper: w}`.
static int parse_where_entry(struct reader *rd, const yaml_node_t *key, const yaml_node_t *value,
                             struct spec_row *row)
{
    if (row->n_where == SPEC_WHERE_MAX) return at(rd, key, "more than %d where keys", SPEC_WHERE_MAX);
    struct spec_where *w = &row->where[row->n_where];
    if (copy_scalar(rd, key, "a where key", w->key, sizeof w->key) < 0) return -1;
    if (value->type != YAML_MAPPING_NODE) {
        for (int s = 0; s < SCALE_COUNT; s++)
            if (where_value(rd, value, w, s) < 0) return -1;
        row->n_where++;
        return 0;
    }
    int given[SCALE_COUNT] = {0};
    for (yaml_node_pair_t *p = value->data.mapping.pairs.start; p < value->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node(rd, p->key), *v = node(rd, p->value);
        int scale = 0;
        if (expect(rd, k, YAML_SCALAR_NODE, "a scale") < 0 || scale_index(rd, k, &scale) < 0 ||
            where_value(rd, v, w, scale) < 0)
            return -1;
        given[scale] = 1;
    }
    for (int s = 0; s < SCALE_COUNT; s++)
        if (!given[s]) return at(rd, value, "where '%s' has no %s value", w->key, scale_names[s]);
    row->n_where++;
    return 0;
}

// `step: N` for both scales or `step: {mini: N, paper: M}`.
static int parse_step(struct reader *rd, const yaml_node_t *n, struct spec_row *row)
{
    int given[SCALE_COUNT] = {0};
    double value;
    if (n->type != YAML_MAPPING_NODE) {
        if (parse_number(rd, n, "step", &value) < 0) return -1;
        if (value < 1 || value != (long long)value) return at(rd, n, "step must be a positive integer");
        for (int s = 0; s < SCALE_COUNT; s++) row->step[s] = (long long)value;
        return 0;
    }
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node(rd, p->key), *v = node(rd, p->value);
        int scale = 0;
        if (expect(rd, k, YAML_SCALAR_NODE, "a scale") < 0 || scale_index(rd, k, &scale) < 0 ||
            parse_number(rd, v, "step", &value) < 0)
            return -1;
        if (value < 1 || value != (long long)value) return at(rd, v, "step must be a positive integer");
        row->step[scale] = (long long)value;
        given[scale] = 1;
    }
    for (int s = 0; s < SCALE_COUNT; s++)
        if (!given[s]) return at(rd, n, "step has no %s value", scale_names[s]);
    return 0;
}

// ---- rows and columns --------------------------------------------------------------------------

static int parse_mapping_of(struct reader *rd, const yaml_node_t *n, const char *what,
                            struct spec_row *row,
                            int (*entry)(struct reader *, const yaml_node_t *, const yaml_node_t *,
                                         struct spec_row *))
{
    if (expect(rd, n, YAML_MAPPING_NODE, what) < 0) return -1;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++)
        if (entry(rd, node(rd, p->key), node(rd, p->value), row) < 0) return -1;
    return 0;
}

static int parse_qualifier(struct reader *rd, const yaml_node_t *key, const yaml_node_t *value,
                           struct spec_row *row)
{
    if (row->n_paper == SPEC_QUALIFIER_MAX)
        return at(rd, key, "more than %d paper qualifiers", SPEC_QUALIFIER_MAX);
    struct spec_qualifier *q = &row->paper[row->n_paper++];
    if (copy_scalar(rd, key, "a paper column", q->column, sizeof q->column) < 0) return -1;
    return copy_scalar(rd, value, "a paper value", q->value, sizeof q->value);
}

static int parse_row(struct reader *rd, const yaml_node_t *n, struct spec_row *row)
{
    if (expect(rd, n, YAML_MAPPING_NODE, "a row") < 0) return -1;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node(rd, p->key), *v = node(rd, p->value);
        int rc;
        if (expect(rd, k, YAML_SCALAR_NODE, "a row key") < 0) return -1;
        if (!strcmp(text(k), "label"))
            rc = copy_scalar(rd, v, "label", row->label, sizeof row->label);
        else if (!strcmp(text(k), "paper"))
            rc = parse_mapping_of(rd, v, "paper", row, parse_qualifier);
        else if (!strcmp(text(k), "where"))
            rc = parse_mapping_of(rd, v, "where", row, parse_where_entry);
        else if (!strcmp(text(k), "step"))
            rc = parse_step(rd, v, row);
        else
            rc = at(rd, k, "unknown row key '%s' (label, paper, where, step)", text(k));
        if (rc < 0) return -1;
    }
    if (!row->label[0]) return at(rd, n, "row without a label");
    return 0;
}

static int parse_metric(struct reader *rd, const yaml_node_t *n, enum spec_metric *out)
{
    if (expect(rd, n, YAML_SCALAR_NODE, "metric") < 0) return -1;
    if (spec_metric_parse(text(n), out) == 0) return 0;
    return at(rd, n, "%s", err_message());
}

static int parse_k(struct reader *rd, const yaml_node_t *n, int *k)
{
    double v;
    if (parse_number(rd, n, "k", &v) < 0) return -1;
    if (v != (int)v || v < 1 || v > 64) return at(rd, n, "k must be an integer in [1, 64]");
    *k = (int)v;
    return 0;
}

static int parse_column(struct reader *rd, const yaml_node_t *n, struct spec_column *column)
{
    if (expect(rd, n, YAML_MAPPING_NODE, "a column") < 0) return -1;
    int has_metric = 0, has_cfg = 0;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node(rd, p->key), *v = node(rd, p->value);
        int rc;
        if (expect(rd, k, YAML_SCALAR_NODE, "a column key") < 0) return -1;
        if (!strcmp(text(k), "metric"))
            rc = parse_metric(rd, v, &column->metric), has_metric = 1;
        else if (!strcmp(text(k), "cfg"))
            rc = parse_number(rd, v, "cfg", &column->cfg), has_cfg = 1;
        else if (!strcmp(text(k), "k"))
            rc = parse_k(rd, v, &column->k);
        else
            rc = at(rd, k, "unknown column key '%s' (metric, cfg, k)", text(k));
        if (rc < 0) return -1;
    }
    if (!has_metric) return at(rd, n, "a column needs a metric");
    if (spec_metric_has_cfg(column->metric) != has_cfg)
        return at(rd, n, has_cfg ? "metric '%s' takes no cfg" : "metric '%s' needs a cfg",
                  metric_names[column->metric].paper);
    if (!column->k) column->k = SPEC_DEFAULT_K;
    return 0;
}

static int parse_list(struct reader *rd, const yaml_node_t *n, const char *what, int max,
                      int *count, void *items, size_t item_size,
                      int (*parse)(struct reader *, const yaml_node_t *, void *))
{
    if (expect(rd, n, YAML_SEQUENCE_NODE, what) < 0) return -1;
    for (yaml_node_item_t *i = n->data.sequence.items.start; i < n->data.sequence.items.top; i++) {
        if (*count == max) return at(rd, node(rd, *i), "more than %d %s", max, what);
        if (parse(rd, node(rd, *i), (char *)items + (size_t)*count * item_size) < 0) return -1;
        (*count)++;
    }
    if (*count == 0) return at(rd, n, "%s is empty", what);
    return 0;
}

static int parse_row_item(struct reader *rd, const yaml_node_t *n, void *row)
{
    return parse_row(rd, n, row);
}

static int parse_column_item(struct reader *rd, const yaml_node_t *n, void *column)
{
    return parse_column(rd, n, column);
}

// ---- top level ---------------------------------------------------------------------------------

static int parse_sweeps(struct reader *rd, const yaml_node_t *n)
{
    if (expect(rd, n, YAML_MAPPING_NODE, "sweeps") < 0) return -1;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node(rd, p->key), *v = node(rd, p->value);
        int scale = 0;
        if (expect(rd, k, YAML_SCALAR_NODE, "a scale") < 0 || scale_index(rd, k, &scale) < 0 ||
            copy_scalar(rd, v, "a sweep name", rd->spec->sweep[scale], SPEC_TEXT_MAX) < 0)
            return -1;
    }
    return 0;
}

static int parse_top_entry(struct reader *rd, const yaml_node_t *k, const yaml_node_t *v)
{
    struct table_spec *spec = rd->spec;
    const char *name = text(k);
    if (!strcmp(name, "table")) {
        double number;
        if (parse_number(rd, v, "table", &number) < 0) return -1;
        spec->table = (int)number;
        return number == spec->table && number >= 0 ? 0 : at(rd, v, "table must be an integer >= 0 (0: a figure)");
    }
    if (!strcmp(name, "title")) return copy_scalar(rd, v, "title", spec->title, sizeof spec->title);
    if (!strcmp(name, "caption"))
        return copy_scalar(rd, v, "caption", spec->caption, sizeof spec->caption);
    if (!strcmp(name, "paper"))
        return copy_scalar(rd, v, "paper", spec->paper_csv, sizeof spec->paper_csv);
    if (!strcmp(name, "sweeps")) return parse_sweeps(rd, v);
    if (!strcmp(name, "rows"))
        return parse_list(rd, v, "rows", SPEC_ROWS_MAX, &spec->n_rows, spec->rows,
                          sizeof spec->rows[0], parse_row_item);
    if (!strcmp(name, "columns"))
        return parse_list(rd, v, "columns", SPEC_COLUMNS_MAX, &spec->n_columns, spec->columns,
                          sizeof spec->columns[0], parse_column_item);
    return at(rd, k, "unknown key '%s' (table, title, caption, paper, sweeps, columns, rows)", name);
}

static int parse_spec(struct reader *rd)
{
    yaml_node_t *root = yaml_document_get_root_node(&rd->doc);
    if (!root) return err("%s: empty table spec", rd->spec->path);
    if (expect(rd, root, YAML_MAPPING_NODE, "a table spec") < 0) return -1;
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node(rd, p->key);
        if (expect(rd, k, YAML_SCALAR_NODE, "a key") < 0 || parse_top_entry(rd, k, node(rd, p->value)) < 0)
            return -1;
    }
    static const char *const required[] = {"table", "sweeps", "columns", "rows"};
    int present[] = {rd->spec->table >= 0, rd->spec->sweep[SCALE_MINI][0] || rd->spec->sweep[SCALE_PAPER][0],
                     rd->spec->n_columns > 0, rd->spec->n_rows > 0};
    for (size_t i = 0; i < sizeof required / sizeof *required; i++)
        if (!present[i]) return at(rd, root, "missing key '%s'", required[i]);
    return 0;
}

static int load_document(struct reader *rd, FILE *f)
{
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) return err("out of memory");
    yaml_parser_set_input_file(&parser, f);
    int ok = yaml_parser_load(&parser, &rd->doc);
    if (!ok)
        err("%s:%zu:%zu: malformed YAML: %s", rd->spec->path, parser.problem_mark.line + 1,
            parser.problem_mark.column + 1, parser.problem ? parser.problem : "out of memory");
    yaml_parser_delete(&parser);
    return ok ? 0 : -1;
}

int table_spec_load(struct table_spec *spec, const char *path)
{
    memset(spec, 0, sizeof *spec);
    spec->table = -1;   // "missing" until the file says
    if (strlen(path) >= sizeof spec->path) return err("table spec path '%s' is too long", path);
    strcpy(spec->path, path);
    strcpy(spec->paper_csv, DEFAULT_PAPER_CSV);
    FILE *f = fopen(path, "rb");
    if (!f) return err("cannot open table spec '%s'", path);
    struct reader rd = {.spec = spec};
    int rc = load_document(&rd, f);
    fclose(f);
    if (rc < 0) return -1;
    rc = parse_spec(&rd);
    yaml_document_delete(&rd.doc);
    return rc;
}
