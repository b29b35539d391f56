// The paper tables and the claim verdicts as JSON, from the same spec files and the same code as
// `promoe table` and `promoe claims` (src/report/): each cell is the mean and 95% interval over
// seeds beside the paper's figure, and lists the runs behind it so the page can link to them.
#include "core/error.h"
#include "report/claims.h"
#include "report/table.h"
#include "serve/serve_internal.h"

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { TABLES_MAX = 64, CELL_RUNS_MAX = 64, TABLE_NAME_MAX = 64 };

static int compare_names(const void *a, const void *b) { return strverscmp(*(char *const *)a, *(char *const *)b); }

// The names (without .yaml) of the spec files in dir, in natural order (table2 before table10).
static int spec_names(const char *dir, char names[][TABLE_NAME_MAX + 1], int *n)
{
    DIR *d = opendir(dir);
    if (!d) return err("cannot read the table specs folder '%s' (--tables)", dir);
    struct dirent *entry;
    *n = 0;
    while ((entry = readdir(d)) && *n < TABLES_MAX) {
        size_t len = strlen(entry->d_name);
        if (len <= 5 || len - 5 > TABLE_NAME_MAX || strcmp(entry->d_name + len - 5, ".yaml")) continue;
        snprintf(names[*n], TABLE_NAME_MAX + 1, "%.*s", (int)(len - 5), entry->d_name);
        if (serve_plain_name(names[*n], TABLE_NAME_MAX)) (*n)++;
    }
    closedir(d);
    return 0;
}

int tables_list_json(const char *tables_dir, cJSON **out)
{
    char (*local)[TABLE_NAME_MAX + 1] = malloc(TABLES_MAX * sizeof *local);
    char *order[TABLES_MAX], path[PATH_MAX];
    int n = 0;
    struct table_spec *spec = malloc(sizeof *spec);
    *out = NULL;
    if (!local || !spec) return free(local), free(spec), err("out of memory");
    int rc = spec_names(tables_dir, local, &n);
    for (int i = 0; i < n; i++) order[i] = local[i];
    qsort(order, (size_t)n, sizeof *order, compare_names);
    cJSON *tables = rc == 0 ? cJSON_CreateArray() : NULL;
    for (int i = 0; tables && i < n; i++) {
        snprintf(path, sizeof path, "%s/%s.yaml", tables_dir, order[i]);
        if (table_spec_load(spec, path) < 0) continue;   // a broken spec is left out of the list
        cJSON *item = cJSON_CreateObject();
        cJSON_AddStringToObject(item, "name", order[i]);
        cJSON_AddStringToObject(item, "title", spec->title);
        cJSON_AddItemToArray(tables, item);
    }
    free(local);
    free(spec);
    *out = tables;
    return tables ? 0 : -1;
}

// The runs of row r that have a value in column c, as an array of ids.
static cJSON *cell_runs(struct store *db, const struct table_spec *spec, int r, const struct spec_column *column,
                        enum table_scale scale)
{
    struct row_value values[CELL_RUNS_MAX];
    int n;
    if (table_row_values(db, spec, r, column, scale, values, CELL_RUNS_MAX, &n) < 0) return NULL;
    cJSON *runs = cJSON_CreateArray();
    for (int i = 0; runs && i < n; i++) cJSON_AddItemToArray(runs, cJSON_CreateString(values[i].run_id));
    return runs;
}

static cJSON *cell_json(const struct table_cell *cell, cJSON *runs)
{
    cJSON *json = cJSON_CreateObject();
    cJSON_AddNumberToObject(json, "n", cell->n);
    if (cell->n > 0) {
        cJSON_AddNumberToObject(json, "mean", cell->mean);
        cJSON_AddNumberToObject(json, "half", cell->half);
    }
    cJSON_AddNumberToObject(json, "decimals", cell->decimals);
    cJSON_AddStringToObject(json, "state", cell->state);
    if (cell->has_paper) cJSON_AddNumberToObject(json, "paper", cell->paper);
    else cJSON_AddNullToObject(json, "paper");
    cJSON_AddItemToObject(json, "runs", runs);
    return json;
}

static cJSON *column_json(const struct spec_column *column)
{
    cJSON *json = cJSON_CreateObject();
    cJSON_AddStringToObject(json, "metric", spec_metric_name(column->metric, SCALE_PAPER));
    if (spec_metric_has_cfg(column->metric)) cJSON_AddNumberToObject(json, "cfg", column->cfg);
    if (column->metric == METRIC_DIVERSITY) cJSON_AddNumberToObject(json, "k", column->k);
    cJSON_AddBoolToObject(json, "lower_is_better", spec_metric_lower_is_better(column->metric));
    return json;
}

static int result_json(const struct table_result *result, struct store *db, const char *name, cJSON **out)
{
    const struct table_spec *spec = result->spec;
    cJSON *json = cJSON_CreateObject(), *columns, *rows;
    cJSON_AddStringToObject(json, "name", name);
    cJSON_AddStringToObject(json, "title", spec->title);
    cJSON_AddStringToObject(json, "caption", spec->caption);
    cJSON_AddStringToObject(json, "scale", table_scale_name(result->scale));
    cJSON_AddStringToObject(json, "sweep", spec->sweep[result->scale]);
    columns = cJSON_AddArrayToObject(json, "columns");
    for (int c = 0; c < spec->n_columns; c++) cJSON_AddItemToArray(columns, column_json(&spec->columns[c]));
    rows = cJSON_AddArrayToObject(json, "rows");
    for (int r = 0; r < spec->n_rows; r++) {
        cJSON *row = cJSON_CreateObject(), *cells;
        cJSON_AddStringToObject(row, "label", spec->rows[r].label);
        cells = cJSON_AddArrayToObject(row, "cells");
        cJSON_AddItemToArray(rows, row);
        for (int c = 0; c < spec->n_columns; c++) {
            cJSON *runs = cell_runs(db, spec, r, &spec->columns[c], result->scale);
            if (!runs) return cJSON_Delete(json), -1;
            cJSON_AddItemToArray(cells, cell_json(&result->cells[r][c], runs));
        }
    }
    *out = json;
    return 0;
}

int table_json(const char *tables_dir, const char *name, struct store *db, cJSON **out, int *missing)
{
    char path[PATH_MAX];
    *out = NULL;
    *missing = 0;
    snprintf(path, sizeof path, "%s/%s.yaml", tables_dir, name);
    if (access(path, R_OK) != 0) return *missing = 1, err("no table spec '%s'", path);
    struct table_spec *spec = malloc(sizeof *spec);
    struct table_result *result = malloc(sizeof *result);
    int rc = spec && result ? 0 : err("out of memory");
    if (rc == 0) rc = table_spec_load(spec, path);
    if (rc == 0) rc = table_build(spec, db, table_detect_scale(spec, db), result);
    if (rc == 0) rc = result_json(result, db, name, out);
    free(result);
    free(spec);
    return rc;
}

// ---- claims ----

// The spec of a claim's table, reloaded only when the path changes (claims come grouped by table).
struct spec_slot {
    struct table_spec *spec;
    int loaded;
};

static const struct table_spec *claim_spec(struct spec_slot *slot, const char *path)
{
    if (slot->loaded && !strcmp(slot->spec->path, path)) return slot->spec;
    slot->loaded = table_spec_load(slot->spec, path) == 0;
    return slot->loaded ? slot->spec : NULL;
}

// The runs of a spec row (by label) with a value of the claim's metric; an empty list if none.
static cJSON *side_runs(struct spec_slot *slot, struct store *db, const struct claim_result *r, const char *label)
{
    const struct table_spec *spec = r->claim->untestable[0] ? NULL : claim_spec(slot, r->claim->table);
    for (int row = 0; spec && row < spec->n_rows; row++)
        if (!strcmp(spec->rows[row].label, label)) return cell_runs(db, spec, row, &r->claim->column, r->scale);
    return cJSON_CreateArray();
}

static cJSON *claim_json(const struct claim_result *r, struct spec_slot *slot, struct store *db)
{
    const struct claim *c = r->claim;
    cJSON *json = cJSON_CreateObject();
    cJSON_AddStringToObject(json, "id", c->id);
    cJSON_AddStringToObject(json, "claim", c->text);
    cJSON_AddStringToObject(json, "source", c->source);
    cJSON_AddStringToObject(json, "verdict", claim_verdict_name(r->verdict));
    if (c->untestable[0]) {
        cJSON_AddStringToObject(json, "untestable", c->untestable);
        return json;
    }
    cJSON_AddStringToObject(json, "table", c->table);
    cJSON_AddStringToObject(json, "better", c->better);
    cJSON_AddStringToObject(json, "than", c->than);
    cJSON_AddItemToObject(json, "column", column_json(&c->column));
    cJSON_AddStringToObject(json, "scale", table_scale_name(r->scale));
    cJSON_AddNumberToObject(json, "n", r->n);
    if (r->n > 0) {
        cJSON_AddNumberToObject(json, "better_mean", r->better_mean);
        cJSON_AddNumberToObject(json, "than_mean", r->than_mean);
        cJSON_AddNumberToObject(json, "diff", r->diff);
        cJSON_AddNumberToObject(json, "half", r->half);
    }
    cJSON *better = side_runs(slot, db, r, c->better), *than = side_runs(slot, db, r, c->than);
    if (!better || !than) return cJSON_Delete(better), cJSON_Delete(than), cJSON_Delete(json), NULL;
    cJSON_AddItemToObject(json, "better_runs", better);
    cJSON_AddItemToObject(json, "than_runs", than);
    return json;
}

int claims_json(const char *claims_path, struct store *db, cJSON **out)
{
    struct claims *claims = malloc(sizeof *claims);
    struct claim_result *results = malloc(CLAIMS_MAX * sizeof *results);
    struct spec_slot slot = {malloc(sizeof *slot.spec), 0};
    *out = NULL;
    int rc = claims && results && slot.spec ? 0 : err("out of memory");
    if (rc == 0) rc = claims_load(claims, claims_path);
    if (rc == 0) rc = claims_decide(claims, db, results);
    cJSON *list = rc == 0 ? cJSON_CreateArray() : NULL;
    for (int i = 0; list && i < claims->n; i++) {
        cJSON *item = claim_json(&results[i], &slot, db);
        if (!item) cJSON_Delete(list), list = NULL, rc = -1;
        else cJSON_AddItemToArray(list, item);
    }
    free(slot.spec);
    free(results);
    free(claims);
    *out = list;
    return rc;
}
