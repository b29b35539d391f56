// Claims file parsing, paired decisions over seeds, and their table (see claims.h).
#include "report/claims.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "core/error.h"
#include "report/stats.h"
#include "report/yaml_error.h"

enum { SPECS_MAX = 24, PAIR_MAX = 64 };

// ---- parsing -------------------------------------------------------------------------------

struct reader {
    yaml_document_t doc;
    const char *path;
};

static yaml_node_t *node(struct reader *rd, int index) { return yaml_document_get_node(&rd->doc, index); }
static const char *text(const yaml_node_t *n) { return (const char *)n->data.scalar.value; }

// An error at node n of the file being read.
#define at(rd, n, ...) yaml_error_at((rd)->path, n, __VA_ARGS__)

static int copy_scalar(const struct reader *rd, const yaml_node_t *n, const char *key, char *out, size_t size)
{
    if (n->type != YAML_SCALAR_NODE) return at(rd, n, "'%s' must be a scalar", key);
    if (strlen(text(n)) >= size) return at(rd, n, "'%s' is too long", key);
    strcpy(out, text(n));
    return 0;
}

static int parse_cfg(const struct reader *rd, const yaml_node_t *n, double *cfg)
{
    char *end;
    if (n->type != YAML_SCALAR_NODE) return at(rd, n, "'cfg' must be a number");
    *cfg = strtod(text(n), &end);
    if (end == text(n) || *end || !(*cfg >= 0)) return at(rd, n, "cfg: '%s' is not a number >= 0", text(n));
    return 0;
}

static int parse_claim_key(struct reader *rd, const yaml_node_t *k, const yaml_node_t *v, struct claim *c, int *has_cfg)
{
    const char *key = text(k);
    if (!strcmp(key, "id")) return copy_scalar(rd, v, key, c->id, sizeof c->id);
    if (!strcmp(key, "claim")) return copy_scalar(rd, v, key, c->text, sizeof c->text);
    if (!strcmp(key, "source")) return copy_scalar(rd, v, key, c->source, sizeof c->source);
    if (!strcmp(key, "table")) return copy_scalar(rd, v, key, c->table, sizeof c->table);
    if (!strcmp(key, "better")) return copy_scalar(rd, v, key, c->better, sizeof c->better);
    if (!strcmp(key, "than")) return copy_scalar(rd, v, key, c->than, sizeof c->than);
    if (!strcmp(key, "untestable")) return copy_scalar(rd, v, key, c->untestable, sizeof c->untestable);
    if (!strcmp(key, "cfg")) return *has_cfg = 1, parse_cfg(rd, v, &c->column.cfg);
    if (!strcmp(key, "k")) {
        char *end = NULL;
        long k = v->type == YAML_SCALAR_NODE ? strtol(text(v), &end, 10) : 0;
        if (!end || *end || k < 1 || k > 64) return at(rd, v, "k must be an integer in [1, 64]");
        c->column.k = (int)k;
        return 0;
    }
    if (!strcmp(key, "metric")) {
        if (v->type != YAML_SCALAR_NODE) return at(rd, v, "'metric' must be a scalar");
        return spec_metric_parse(text(v), &c->column.metric) < 0 ? at(rd, v, "%s", err_message()) : 0;
    }
    return at(rd, k, "unknown claim key '%s' (id, claim, source, table, better, than, metric, cfg, k, untestable)", key);
}

// A claim needs an id and its text; a tested one also its table, both rows and a metric (with cfg
// where the metric is a sample evaluation).
static int check_claim(const struct reader *rd, const yaml_node_t *n, struct claim *c, int has_metric, int has_cfg)
{
    if (!c->id[0] || !c->text[0]) return at(rd, n, "a claim needs 'id' and 'claim'");
    if (c->untestable[0]) return 0;
    if (!c->table[0] || !c->better[0] || !c->than[0] || !has_metric)
        return at(rd, n, "claim '%s' needs 'table', 'better', 'than' and 'metric' (or 'untestable')", c->id);
    if (spec_metric_has_cfg(c->column.metric) != has_cfg)
        return at(rd, n, "claim '%s': metric %s %s", c->id, has_cfg ? "takes no cfg" : "needs a cfg",
                  spec_metric_name(c->column.metric, SCALE_PAPER));
    if (!c->column.k) c->column.k = SPEC_DEFAULT_K;
    return 0;
}

static int parse_claim(struct reader *rd, const yaml_node_t *n, struct claim *c)
{
    if (n->type != YAML_MAPPING_NODE) return at(rd, n, "a claim must be a mapping");
    memset(c, 0, sizeof *c);
    int has_cfg = 0, has_metric = 0;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node(rd, p->key);
        if (k->type != YAML_SCALAR_NODE) return at(rd, k, "a claim key must be a scalar");
        has_metric |= !strcmp(text(k), "metric");
        if (parse_claim_key(rd, k, node(rd, p->value), c, &has_cfg) < 0) return -1;
    }
    return check_claim(rd, n, c, has_metric, has_cfg);
}

static int parse_claims(struct reader *rd, struct claims *c)
{
    yaml_node_t *root = yaml_document_get_root_node(&rd->doc);
    if (!root || root->type != YAML_MAPPING_NODE) return err("%s: a claims file is a mapping with 'claims'", rd->path);
    yaml_node_t *list = NULL;
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node(rd, p->key);
        if (k->type != YAML_SCALAR_NODE || strcmp(text(k), "claims")) return at(rd, k, "unknown key (claims)");
        list = node(rd, p->value);
    }
    if (!list || list->type != YAML_SEQUENCE_NODE) return at(rd, root, "'claims' must be a list");
    for (yaml_node_item_t *i = list->data.sequence.items.start; i < list->data.sequence.items.top; i++) {
        if (c->n == CLAIMS_MAX) return at(rd, node(rd, *i), "more than %d claims", CLAIMS_MAX);
        if (parse_claim(rd, node(rd, *i), &c->items[c->n]) < 0) return -1;
        for (int j = 0; j < c->n; j++)
            if (!strcmp(c->items[j].id, c->items[c->n].id))
                return at(rd, node(rd, *i), "claim id '%s' is used twice", c->items[j].id);
        c->n++;
    }
    return c->n ? 0 : at(rd, list, "no claims");
}

int claims_load(struct claims *c, const char *path)
{
    memset(c, 0, sizeof *c);
    snprintf(c->path, sizeof c->path, "%s", path);
    FILE *f = fopen(path, "rb");
    if (!f) return err("cannot open claims file '%s'", path);
    struct reader rd = {.path = path};
    yaml_parser_t parser;
    int rc = yaml_parser_initialize(&parser) ? 0 : err("out of memory");
    if (!rc) {
        yaml_parser_set_input_file(&parser, f);
        if (!yaml_parser_load(&parser, &rd.doc))
            rc = err("%s:%zu:%zu: malformed YAML: %s", path, parser.problem_mark.line + 1,
                     parser.problem_mark.column + 1, parser.problem ? parser.problem : "out of memory");
        else {
            rc = parse_claims(&rd, c);
            yaml_document_delete(&rd.doc);
        }
        yaml_parser_delete(&parser);
    }
    fclose(f);
    return rc;
}

// ---- deciding ------------------------------------------------------------------------------

struct spec_cache {
    struct table_spec *specs[SPECS_MAX];
    int n;
};

static const struct table_spec *spec_for(struct spec_cache *cache, const char *path)
{
    for (int i = 0; i < cache->n; i++)
        if (!strcmp(cache->specs[i]->path, path)) return cache->specs[i];
    if (cache->n == SPECS_MAX) return err("more than %d table specs in one claims file", SPECS_MAX), NULL;
    struct table_spec *spec = malloc(sizeof *spec);
    if (!spec) return err("out of memory"), NULL;
    if (table_spec_load(spec, path) < 0) return free(spec), NULL;
    return cache->specs[cache->n++] = spec;
}

static int row_index(const struct table_spec *spec, const char *label, const struct claim *c)
{
    for (int r = 0; r < spec->n_rows; r++)
        if (!strcmp(spec->rows[r].label, label)) return r;
    return err("claim '%s': table spec '%s' has no row '%s'", c->id, spec->path, label);
}

// Pairs the two rows' values by seed into better [n], than [n].
static int pair_by_seed(const struct row_value *a, int na, const struct row_value *b, int nb, double *better,
                        double *than)
{
    int n = 0;
    for (int i = 0; i < na; i++)
        for (int j = 0; j < nb; j++)
            if (!strcmp(a[i].seed, b[j].seed)) {
                better[n] = a[i].value, than[n] = b[j].value;
                n++;
                break;
            }
    return n;
}

static void summarise(struct claim_result *r, const double *better, const double *than)
{
    double diffs[PAIR_MAX], half;
    int lower = spec_metric_lower_is_better(r->claim->column.metric);
    for (int i = 0; i < r->n; i++) diffs[i] = lower ? than[i] - better[i] : better[i] - than[i];
    stats_mean_ci95(better, r->n, &r->better_mean, &half);
    stats_mean_ci95(than, r->n, &r->than_mean, &half);
    stats_mean_ci95(diffs, r->n, &r->diff, &r->half);
    if (r->n < 2) r->verdict = VERDICT_TOO_FEW;
    else if (r->diff - r->half > 0) r->verdict = VERDICT_AGREES;
    else if (r->diff + r->half < 0) r->verdict = VERDICT_DISAGREES;
    else r->verdict = VERDICT_INCONCLUSIVE;
}

static int decide_one(struct spec_cache *cache, struct store *db, struct claim_result *r)
{
    const struct claim *c = r->claim;
    if (c->untestable[0]) return r->verdict = VERDICT_UNTESTABLE, 0;
    const struct table_spec *spec = spec_for(cache, c->table);
    if (!spec) return err_context("claim '%s'", c->id);
    int better_row = row_index(spec, c->better, c), than_row = row_index(spec, c->than, c);
    if (better_row < 0 || than_row < 0) return -1;
    r->scale = table_detect_scale(spec, db);
    struct row_value a[PAIR_MAX], b[PAIR_MAX];
    int na, nb;
    if (table_row_values(db, spec, better_row, &c->column, r->scale, a, PAIR_MAX, &na) < 0 ||
        table_row_values(db, spec, than_row, &c->column, r->scale, b, PAIR_MAX, &nb) < 0)
        return err_context("claim '%s'", c->id);
    double better[PAIR_MAX], than[PAIR_MAX];
    r->n = pair_by_seed(a, na, b, nb, better, than);
    if (r->n == 0) return r->verdict = VERDICT_TOO_FEW, 0;
    summarise(r, better, than);
    return 0;
}

int claims_decide(const struct claims *c, struct store *db, struct claim_result *results)
{
    struct spec_cache cache = {0};
    int rc = 0;
    for (int i = 0; i < c->n && !rc; i++) {
        memset(&results[i], 0, sizeof results[i]);
        results[i].claim = &c->items[i];
        rc = decide_one(&cache, db, &results[i]);
    }
    for (int i = 0; i < cache.n; i++) free(cache.specs[i]);
    return rc;
}

// ---- output --------------------------------------------------------------------------------

const char *claim_verdict_name(enum claim_verdict v)
{
    static const char *const names[] = {"agrees", "disagrees", "inconclusive", "too few seeds", "not tested"};
    return names[v];
}

static void metric_label(const struct claim *c, enum table_scale scale, char *out, size_t size)
{
    const char *name = spec_metric_name(c->column.metric, scale);
    if (!name) name = spec_metric_name(c->column.metric, SCALE_PAPER);
    if (spec_metric_has_cfg(c->column.metric)) snprintf(out, size, "%s @ cfg %.1f", name, c->column.cfg);
    else if (c->column.metric == METRIC_DIVERSITY) snprintf(out, size, "%s @ k %d", name, c->column.k);
    else snprintf(out, size, "%s", name);
}

static void write_markdown_row(const struct claim_result *r, FILE *out)
{
    const struct claim *c = r->claim;
    char metric[96];
    int d = spec_metric_decimals(c->column.metric) + 1;
    if (r->verdict == VERDICT_UNTESTABLE) {
        fprintf(out, "| %s | %s | - | - | - | - | - | not tested: %s |\n", c->text, c->source, c->untestable);
        return;
    }
    metric_label(c, r->scale, metric, sizeof metric);
    fprintf(out, "| %s | %s | %s | %d | ", c->text, c->source, metric, r->n);
    if (r->n == 0) {
        fprintf(out, "- | - | - | %s |\n", claim_verdict_name(r->verdict));
        return;
    }
    fprintf(out, "%.*f vs %.*f | %+.*f | ", d, r->better_mean, d, r->than_mean, d, r->diff);
    if (r->n >= 2) fprintf(out, "[%+.*f, %+.*f] | ", d, r->diff - r->half, d, r->diff + r->half);
    else fprintf(out, "- | ");
    fprintf(out, "**%s** |\n", claim_verdict_name(r->verdict));
}

static void write_csv_row(const struct claim_result *r, FILE *out)
{
    const struct claim *c = r->claim;
    const char *metric = spec_metric_name(c->column.metric, r->scale);
    fprintf(out, "%s,\"%s\",%s,", c->id, c->source, metric ? metric : spec_metric_name(c->column.metric, SCALE_PAPER));
    if (spec_metric_has_cfg(c->column.metric)) fprintf(out, "%g", c->column.cfg);
    fprintf(out, ",%s,%d,", table_scale_name(r->scale), r->n);
    if (r->n > 0) fprintf(out, "%.10g,%.10g,%.10g,", r->better_mean, r->than_mean, r->diff);
    else fprintf(out, ",,,");
    if (r->n >= 2) fprintf(out, "%.10g,%.10g,", r->diff - r->half, r->diff + r->half);
    else fprintf(out, ",,");
    fprintf(out, "%s\n", claim_verdict_name(r->verdict));
}

void claims_write(const struct claim_result *results, int n, enum table_format format, FILE *out)
{
    if (format == FORMAT_CSV) {
        fprintf(out, "id,source,metric,cfg,scale,n,better_mean,than_mean,diff,ci_low,ci_high,verdict\n");
        for (int i = 0; i < n; i++) write_csv_row(&results[i], out);
        return;
    }
    fprintf(out, "| Claim | Source | Metric | Seeds | Better vs than (means) | Improvement (paired) | 95%% interval "
                 "| Verdict |\n|---|---|---|---:|---:|---:|---:|---|\n");
    for (int i = 0; i < n; i++) write_markdown_row(&results[i], out);
}
