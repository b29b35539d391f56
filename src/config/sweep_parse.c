// Sweep file -> sweep_spec: the libyaml document is walked section by section (`sweep`, `base`,
// `set`, `presets`, `grid`, `zip`, `seeds`, `runs`, `label`, and the W&B alias `method` +
// `parameters`). Checks that need only the file happen here: unknown sections, empty axes, zip
// lists of unequal length, a key given twice at one level, duplicate axes, unknown presets and a
// method other than grid. Keys and values are checked against the key table in sweep_expand.c.
#include "config/sweep_internal.h"

#include "config/config.h"

#include "core/error.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SUGGEST_DISTANCE = 3, MESSAGE_MAX = 1024, SWEEP_NAME_MAX = 128 };

static const char SEED_ALIAS[] = "seed", SEED_KEY[] = "train.seed", PRESET_KEY[] = "preset";

int sweep_error_at(const struct sweep_spec *spec, const yaml_node_t *node, const char *fmt, ...)
{
    char message[MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    return err("%s:%zu:%zu: %s", spec->origin, node->start_mark.line + 1,
               node->start_mark.column + 1, message);
}

int sweep_key_context(const struct sweep_spec *spec, const yaml_node_t *node, const char *key)
{
    return err_context("%s:%zu:%zu: key '%s'", spec->origin, node->start_mark.line + 1,
                       node->start_mark.column + 1, key);
}

int sweep_find_preset(const struct sweep_spec *spec, const char *name)
{
    for (int i = 0; i < spec->n_presets; i++)
        if (strcmp(sweep_scalar(spec->presets[i].name_node), name) == 0) return i;
    return -1;
}

static yaml_node_t *node_at(struct sweep_spec *spec, int index)
{
    return yaml_document_get_node(&spec->doc, index);
}

static int is_scalar(const yaml_node_t *node) { return node->type == YAML_SCALAR_NODE; }

static int expect(struct sweep_spec *spec, const yaml_node_t *node, yaml_node_type_t type,
                  const char *what)
{
    static const char *const names[] = {"nothing", "a single value", "a list", "a mapping"};
    if (node->type == type) return 0;
    return sweep_error_at(spec, node, "%s: expected %s, got %s", what, names[type],
                          names[node->type]);
}

// Grows an array of `size`-byte items to hold one more; 0 or -1 (out of memory).
static int grow(void **items, int *capacity, int n, size_t size)
{
    if (n < *capacity) return 0;
    int wanted = *capacity ? 2 * *capacity : 8;
    void *bigger = realloc(*items, (size_t)wanted * size);
    if (!bigger) return err("out of memory");
    *items = bigger;
    *capacity = wanted;
    return 0;
}

static int push_node(yaml_node_t ***items, int *n, yaml_node_t *node)
{
    yaml_node_t **bigger = realloc(*items, (size_t)(*n + 1) * sizeof **items);
    if (!bigger) return err("out of memory");
    bigger[(*n)++] = node;
    *items = bigger;
    return 0;
}

// ---- override lists (`set`, preset bodies, run entries) ------------------------------------------

static const struct sweep_assign *list_find(const struct sweep_list *list, const char *key)
{
    for (int i = 0; i < list->n; i++)
        if (strcmp(list->items[i].key, key) == 0) return &list->items[i];
    return NULL;
}

static int join_key(struct sweep_spec *spec, const char *prefix, yaml_node_t *key_node,
                    char out[SWEEP_KEY_MAX])
{
    const char *name = sweep_scalar(key_node);
    if (!*prefix && strcmp(name, SEED_ALIAS) == 0) name = SEED_KEY;
    int n = snprintf(out, SWEEP_KEY_MAX, "%s%s%s", prefix, *prefix ? "." : "", name);
    if (n < 0 || n >= SWEEP_KEY_MAX) return sweep_error_at(spec, key_node, "key is too long");
    return 0;
}

static int add_pairs(struct sweep_spec *spec, struct sweep_list *list, yaml_node_t *mapping,
                     const char *prefix);

// One "key: value" of an override list; a mapping value is a section (`model: {hidden: 32}`).
static int add_pair(struct sweep_spec *spec, struct sweep_list *list, const char *prefix,
                    yaml_node_t *key_node, yaml_node_t *value_node)
{
    char key[SWEEP_KEY_MAX];
    if (expect(spec, key_node, YAML_SCALAR_NODE, "a key") < 0) return -1;
    if (join_key(spec, prefix, key_node, key) < 0) return -1;
    if (value_node->type == YAML_MAPPING_NODE) return add_pairs(spec, list, value_node, key);
    if (expect(spec, value_node, YAML_SCALAR_NODE, key) < 0) return -1;
    const struct sweep_assign *before = list_find(list, key);
    if (before)
        return sweep_error_at(spec, key_node, "key '%s' given twice (first at line %zu, column %zu)",
                              key, before->key_node->start_mark.line + 1,
                              before->key_node->start_mark.column + 1);
    if (grow((void **)&list->items, &list->capacity, list->n, sizeof *list->items) < 0) return -1;
    struct sweep_assign *a = &list->items[list->n++];
    snprintf(a->key, sizeof a->key, "%s", key);
    a->key_node = key_node;
    a->value_node = value_node;
    return 0;
}

static int add_pairs(struct sweep_spec *spec, struct sweep_list *list, yaml_node_t *mapping,
                     const char *prefix)
{
    for (yaml_node_pair_t *p = mapping->data.mapping.pairs.start;
         p < mapping->data.mapping.pairs.top; p++)
        if (add_pair(spec, list, prefix, node_at(spec, p->key), node_at(spec, p->value)) < 0)
            return -1;
    return 0;
}

// ---- axes ------------------------------------------------------------------------------------------

// The column of key in any axis, or NULL.
static const struct sweep_column *find_column(const struct sweep_spec *spec, const char *key)
{
    for (int a = 0; a < spec->n_axes; a++)
        for (int c = 0; c < spec->axes[a].n_columns; c++)
            if (strcmp(spec->axes[a].columns[c].key, key) == 0) return &spec->axes[a].columns[c];
    return NULL;
}

static int check_new_axis_key(struct sweep_spec *spec, const char *key, yaml_node_t *key_node)
{
    const struct sweep_column *before = find_column(spec, key);
    if (before)
        return sweep_error_at(spec, key_node, "duplicate axis '%s' (first at line %zu, column %zu)",
                              key, before->key_node->start_mark.line + 1,
                              before->key_node->start_mark.column + 1);
    if (strcmp(key, SEED_KEY) == 0 && spec->n_seeds > 0)
        return sweep_error_at(spec, key_node, "duplicate axis '%s': 'seeds' already sets it", key);
    return 0;
}

// Fills a column from a key node and a list of scalar values.
static int make_column(struct sweep_spec *spec, struct sweep_column *column, yaml_node_t *key_node,
                       yaml_node_t *list)
{
    memset(column, 0, sizeof *column);
    if (expect(spec, key_node, YAML_SCALAR_NODE, "an axis name") < 0) return -1;
    if (join_key(spec, "", key_node, column->key) < 0) return -1;
    column->key_node = key_node;
    column->is_preset = strcmp(column->key, PRESET_KEY) == 0;
    if (check_new_axis_key(spec, column->key, key_node) < 0) return -1;
    if (expect(spec, list, YAML_SEQUENCE_NODE, column->key) < 0) return -1;
    for (yaml_node_item_t *i = list->data.sequence.items.start; i < list->data.sequence.items.top; i++) {
        yaml_node_t *value = node_at(spec, *i);
        if (expect(spec, value, YAML_SCALAR_NODE, column->key) < 0) return -1;
        if (push_node(&column->values, &column->n_values, value) < 0) return -1;
    }
    if (column->n_values == 0)
        return sweep_error_at(spec, list, "empty axis '%s': give at least one value", column->key);
    return 0;
}

static struct sweep_axis *new_axis(struct sweep_spec *spec)
{
    struct sweep_axis *bigger = realloc(spec->axes, (size_t)(spec->n_axes + 1) * sizeof *bigger);
    if (!bigger) {
        err("out of memory");
        return NULL;
    }
    spec->axes = bigger;
    memset(&bigger[spec->n_axes], 0, sizeof *bigger);
    return &bigger[spec->n_axes++];
}

static int add_column(struct sweep_spec *spec, struct sweep_axis *axis, yaml_node_t *key_node,
                      yaml_node_t *list)
{
    struct sweep_column *bigger =
        realloc(axis->columns, (size_t)(axis->n_columns + 1) * sizeof *bigger);
    if (!bigger) return err("out of memory");
    axis->columns = bigger;
    // Counted only once filled, so find_column never sees a half-made column.
    if (make_column(spec, &bigger[axis->n_columns], key_node, list) < 0) {
        free(bigger[axis->n_columns].values);
        return -1;
    }
    axis->n_columns++;
    return 0;
}

static int add_grid_axis(struct sweep_spec *spec, yaml_node_t *key_node, yaml_node_t *list)
{
    struct sweep_axis *axis = new_axis(spec);
    if (!axis || add_column(spec, axis, key_node, list) < 0) return -1;
    axis->length = axis->columns[0].n_values;
    spec->has_axes = 1;
    return 0;
}

static int parse_grid(struct sweep_spec *spec, yaml_node_t *node)
{
    if (expect(spec, node, YAML_MAPPING_NODE, "grid") < 0) return -1;
    for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top; p++)
        if (add_grid_axis(spec, node_at(spec, p->key), node_at(spec, p->value)) < 0) return -1;
    return 0;
}

static int parse_zip_group(struct sweep_spec *spec, yaml_node_t *group)
{
    if (expect(spec, group, YAML_MAPPING_NODE, "a zip group") < 0) return -1;
    struct sweep_axis *axis = new_axis(spec);
    if (!axis) return -1;
    spec->has_axes = 1;
    for (yaml_node_pair_t *p = group->data.mapping.pairs.start; p < group->data.mapping.pairs.top; p++) {
        if (add_column(spec, axis, node_at(spec, p->key), node_at(spec, p->value)) < 0) return -1;
        const struct sweep_column *first = &axis->columns[0], *last = &axis->columns[axis->n_columns - 1];
        if (last->n_values != first->n_values)
            return sweep_error_at(spec, last->key_node,
                                  "zip lists of unequal length: '%s' has %d values, '%s' has %d",
                                  first->key, first->n_values, last->key, last->n_values);
    }
    if (axis->n_columns == 0) return sweep_error_at(spec, group, "empty zip group");
    axis->length = axis->columns[0].n_values;
    return 0;
}

static int parse_zip(struct sweep_spec *spec, yaml_node_t *node)
{
    if (node->type == YAML_MAPPING_NODE) return parse_zip_group(spec, node); // a single group
    if (expect(spec, node, YAML_SEQUENCE_NODE, "zip") < 0) return -1;
    for (yaml_node_item_t *i = node->data.sequence.items.start; i < node->data.sequence.items.top; i++)
        if (parse_zip_group(spec, node_at(spec, *i)) < 0) return -1;
    return 0;
}

static int parse_seeds(struct sweep_spec *spec, yaml_node_t *node)
{
    if (spec->n_seeds > 0) return sweep_error_at(spec, node, "seeds are given twice");
    if (find_column(spec, SEED_KEY))
        return sweep_error_at(spec, node, "duplicate axis '%s': an axis already sets it", SEED_KEY);
    if (expect(spec, node, YAML_SEQUENCE_NODE, "seeds") < 0) return -1;
    for (yaml_node_item_t *i = node->data.sequence.items.start; i < node->data.sequence.items.top; i++) {
        yaml_node_t *seed = node_at(spec, *i);
        if (expect(spec, seed, YAML_SCALAR_NODE, "seeds") < 0) return -1;
        if (push_node(&spec->seeds, &spec->n_seeds, seed) < 0) return -1;
    }
    if (spec->n_seeds == 0) return sweep_error_at(spec, node, "empty axis 'seeds': give at least one seed");
    return 0;
}

// ---- other sections ---------------------------------------------------------------------------------

static int parse_name(struct sweep_spec *spec, yaml_node_t *node)
{
    if (expect(spec, node, YAML_SCALAR_NODE, "sweep") < 0) return -1;
    const char *name = sweep_scalar(node);
    if (!*name) return sweep_error_at(spec, node, "sweep: the name is empty");
    // The name becomes folder and file names (shard databases, sbatch scripts): it must stay one
    // plain name inside its folder.
    size_t plain = strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-");
    if (name[plain] || name[0] == '.' || strlen(name) > SWEEP_NAME_MAX)
        return sweep_error_at(spec, node, "sweep: the name '%s' must be 1 to %d letters, digits, '.', '_' or '-', "
                              "not starting with '.'", name, SWEEP_NAME_MAX);
    spec->name_node = node;
    return 0;
}

static int parse_description(struct sweep_spec *spec, yaml_node_t *node)
{
    return expect(spec, node, YAML_SCALAR_NODE, "description");
}

static int parse_label(struct sweep_spec *spec, yaml_node_t *node)
{
    if (expect(spec, node, YAML_SCALAR_NODE, "label") < 0) return -1;
    spec->label_node = node;
    return 0;
}

static int parse_base(struct sweep_spec *spec, yaml_node_t *node)
{
    if (is_scalar(node)) return push_node(&spec->bases, &spec->n_bases, node);
    if (expect(spec, node, YAML_SEQUENCE_NODE, "base") < 0) return -1;
    for (yaml_node_item_t *i = node->data.sequence.items.start; i < node->data.sequence.items.top; i++) {
        yaml_node_t *file = node_at(spec, *i);
        if (expect(spec, file, YAML_SCALAR_NODE, "base") < 0) return -1;
        if (push_node(&spec->bases, &spec->n_bases, file) < 0) return -1;
    }
    return 0;
}

static int parse_set(struct sweep_spec *spec, yaml_node_t *node)
{
    if (expect(spec, node, YAML_MAPPING_NODE, "set") < 0) return -1;
    return add_pairs(spec, &spec->set, node, "");
}

static int parse_presets(struct sweep_spec *spec, yaml_node_t *node)
{
    if (expect(spec, node, YAML_MAPPING_NODE, "presets") < 0) return -1;
    for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top; p++) {
        yaml_node_t *name = node_at(spec, p->key), *body = node_at(spec, p->value);
        if (expect(spec, name, YAML_SCALAR_NODE, "a preset name") < 0 ||
            expect(spec, body, YAML_MAPPING_NODE, sweep_scalar(name)) < 0)
            return -1;
        if (sweep_find_preset(spec, sweep_scalar(name)) >= 0)
            return sweep_error_at(spec, name, "preset '%s' given twice", sweep_scalar(name));
        struct sweep_preset *bigger =
            realloc(spec->presets, (size_t)(spec->n_presets + 1) * sizeof *bigger);
        if (!bigger) return err("out of memory");
        spec->presets = bigger;
        struct sweep_preset *preset = &bigger[spec->n_presets++];
        memset(preset, 0, sizeof *preset);
        preset->name_node = name;
        if (add_pairs(spec, &preset->keys, body, "") < 0) return -1;
    }
    return 0;
}

static int parse_entry_pair(struct sweep_spec *spec, struct sweep_entry *entry,
                            yaml_node_t *key_node, yaml_node_t *value_node)
{
    const char *key = is_scalar(key_node) ? sweep_scalar(key_node) : "";
    int is_label = strcmp(key, "label") == 0, is_preset = strcmp(key, PRESET_KEY) == 0;
    if (!is_label && !is_preset) return add_pair(spec, &entry->keys, "", key_node, value_node);
    if (expect(spec, value_node, YAML_SCALAR_NODE, key) < 0) return -1;
    yaml_node_t **slot = is_label ? &entry->label_node : &entry->preset_node;
    if (*slot) return sweep_error_at(spec, key_node, "key '%s' given twice", key);
    *slot = value_node;
    return 0;
}

static int parse_entry(struct sweep_spec *spec, yaml_node_t *node)
{
    if (expect(spec, node, YAML_MAPPING_NODE, "a run of 'runs'") < 0) return -1;
    struct sweep_entry *bigger = realloc(spec->entries, (size_t)(spec->n_entries + 1) * sizeof *bigger);
    if (!bigger) return err("out of memory");
    spec->entries = bigger;
    struct sweep_entry *entry = &bigger[spec->n_entries++];
    memset(entry, 0, sizeof *entry);
    entry->node = node;
    for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top; p++)
        if (parse_entry_pair(spec, entry, node_at(spec, p->key), node_at(spec, p->value)) < 0)
            return -1;
    entry->sets_seed = list_find(&entry->keys, SEED_KEY) != NULL;
    return 0;
}

static int parse_runs(struct sweep_spec *spec, yaml_node_t *node)
{
    if (expect(spec, node, YAML_SEQUENCE_NODE, "runs") < 0) return -1;
    spec->has_runs = 1;
    for (yaml_node_item_t *i = node->data.sequence.items.start; i < node->data.sequence.items.top; i++)
        if (parse_entry(spec, node_at(spec, *i)) < 0) return -1;
    return 0;
}

static int parse_method(struct sweep_spec *spec, yaml_node_t *node)
{
    if (expect(spec, node, YAML_SCALAR_NODE, "method") < 0) return -1;
    if (strcmp(sweep_scalar(node), "grid") != 0)
        return sweep_error_at(spec, node, "method '%s' is not supported: only grid (every "
                              "combination, in order) is", sweep_scalar(node));
    return 0;
}

// W&B: `key: {values: [...]}` is a grid axis (`seed` -> seeds), `key: {value: x}` a fixed override.
static int parse_parameter(struct sweep_spec *spec, yaml_node_t *key_node, yaml_node_t *body)
{
    if (expect(spec, body, YAML_MAPPING_NODE, "a W&B parameter") < 0) return -1;
    yaml_node_pair_t *p = body->data.mapping.pairs.start;
    if (body->data.mapping.pairs.top - p != 1)
        return sweep_error_at(spec, body, "a parameter takes exactly one of 'values' or 'value'");
    yaml_node_t *kind = node_at(spec, p->key), *value = node_at(spec, p->value);
    const char *word = is_scalar(kind) ? sweep_scalar(kind) : "";
    int is_seed = is_scalar(key_node) && strcmp(sweep_scalar(key_node), SEED_ALIAS) == 0;
    if (strcmp(word, "values") == 0)
        return is_seed ? parse_seeds(spec, value) : add_grid_axis(spec, key_node, value);
    if (strcmp(word, "value") == 0) return add_pair(spec, &spec->set, "", key_node, value);
    return sweep_error_at(spec, kind, "'%s' is not supported: a grid parameter has 'values' or "
                          "'value'", word);
}

static int parse_parameters(struct sweep_spec *spec, yaml_node_t *node)
{
    if (expect(spec, node, YAML_MAPPING_NODE, "parameters") < 0) return -1;
    for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top; p++)
        if (parse_parameter(spec, node_at(spec, p->key), node_at(spec, p->value)) < 0) return -1;
    return 0;
}

// ---- the top level ----------------------------------------------------------------------------------

struct section {
    const char *name;
    int (*parse)(struct sweep_spec *spec, yaml_node_t *node);
};

static const struct section sections[] = {
    {"sweep", parse_name},   {"description", parse_description}, {"base", parse_base},
    {"set", parse_set},      {"presets", parse_presets},          {"grid", parse_grid},
    {"zip", parse_zip},      {"seeds", parse_seeds},              {"runs", parse_runs},
    {"label", parse_label},  {"method", parse_method},            {"parameters", parse_parameters},
};
enum { N_SECTIONS = sizeof sections / sizeof sections[0] };

static int unknown_section(struct sweep_spec *spec, yaml_node_t *key_node)
{
    const char *name = sweep_scalar(key_node), *best = NULL;
    size_t best_distance = SUGGEST_DISTANCE + 1;
    for (int i = 0; i < N_SECTIONS; i++) {
        size_t d = config_edit_distance(name, sections[i].name);
        if (d < best_distance) best_distance = d, best = sections[i].name;
    }
    if (best)
        return sweep_error_at(spec, key_node, "unknown sweep key '%s' (did you mean '%s'?)", name, best);
    return sweep_error_at(spec, key_node, "unknown sweep key '%s' (config keys go under 'set', "
                          "'grid' or 'zip')", name);
}

static int parse_section(struct sweep_spec *spec, yaml_node_t *key_node, yaml_node_t *value,
                         unsigned *seen)
{
    if (expect(spec, key_node, YAML_SCALAR_NODE, "a sweep key") < 0) return -1;
    for (int i = 0; i < N_SECTIONS; i++) {
        if (strcmp(sweep_scalar(key_node), sections[i].name) != 0) continue;
        if (*seen & (1u << i))
            return sweep_error_at(spec, key_node, "key '%s' given twice", sections[i].name);
        *seen |= 1u << i;
        return sections[i].parse(spec, value);
    }
    return unknown_section(spec, key_node);
}

// ---- checks across sections ----------------------------------------------------------------------

static int check_preset_name(struct sweep_spec *spec, yaml_node_t *name)
{
    if (sweep_find_preset(spec, sweep_scalar(name)) >= 0) return 0;
    char known[MESSAGE_MAX / 2] = "";
    for (int i = 0; i < spec->n_presets; i++)
        snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", i ? ", " : "",
                 sweep_scalar(spec->presets[i].name_node));
    return sweep_error_at(spec, name, "unknown preset '%s' (presets: %s)", sweep_scalar(name),
                          spec->n_presets ? known : "none defined");
}

static int check_presets_used(struct sweep_spec *spec)
{
    for (int a = 0; a < spec->n_axes; a++)
        for (int c = 0; c < spec->axes[a].n_columns; c++)
            for (int v = 0; spec->axes[a].columns[c].is_preset && v < spec->axes[a].columns[c].n_values; v++)
                if (check_preset_name(spec, spec->axes[a].columns[c].values[v]) < 0) return -1;
    for (int e = 0; e < spec->n_entries; e++)
        if (spec->entries[e].preset_node && check_preset_name(spec, spec->entries[e].preset_node) < 0)
            return -1;
    return 0;
}

// `set` and the axes are one level: a key in both is an error, not a silent win.
static int check_set_against_axes(struct sweep_spec *spec)
{
    for (int i = 0; i < spec->set.n; i++) {
        const struct sweep_assign *a = &spec->set.items[i];
        const struct sweep_column *column = find_column(spec, a->key);
        if (column)
            return sweep_error_at(spec, a->key_node, "key '%s' is both fixed and an axis (line %zu, "
                                  "column %zu)", a->key, column->key_node->start_mark.line + 1,
                                  column->key_node->start_mark.column + 1);
        if (strcmp(a->key, SEED_KEY) == 0 && spec->n_seeds > 0)
            return sweep_error_at(spec, a->key_node, "key '%s' is both fixed and given by 'seeds'", a->key);
        if (strcmp(a->key, PRESET_KEY) == 0)
            return sweep_error_at(spec, a->key_node, "a preset is chosen by an axis or a run, not fixed");
    }
    return 0;
}

static int malformed(struct sweep_spec *spec, const yaml_parser_t *p)
{
    const char *problem = p->problem ? p->problem : "out of memory";
    if (p->error == YAML_READER_ERROR)
        return err("%s: malformed YAML: %s at byte %zu", spec->origin, problem, p->problem_offset);
    return err("%s:%zu:%zu: malformed YAML: %s", spec->origin, p->problem_mark.line + 1,
               p->problem_mark.column + 1, problem);
}

static int load_document(struct sweep_spec *spec, const char *text, size_t n)
{
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) return err("%s: out of memory", spec->origin);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, n);
    int ok = yaml_parser_load(&parser, &spec->doc);
    int rc = ok ? 0 : malformed(spec, &parser);
    spec->has_doc = ok;
    yaml_parser_delete(&parser);
    return rc;
}

static int parse_root(struct sweep_spec *spec)
{
    yaml_node_t *root = yaml_document_get_root_node(&spec->doc);
    if (!root) return err("%s: the sweep file is empty", spec->origin);
    if (expect(spec, root, YAML_MAPPING_NODE, "the top level") < 0) return -1;
    unsigned seen = 0;
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++)
        if (parse_section(spec, node_at(spec, p->key), node_at(spec, p->value), &seen) < 0) return -1;
    return 0;
}

int sweep_parse(struct sweep_spec *spec, const char *text, size_t n)
{
    int rc = load_document(spec, text, n);
    if (rc == 0) rc = parse_root(spec);
    if (rc == 0) rc = check_presets_used(spec);
    if (rc == 0) rc = check_set_against_axes(spec);
    if (rc < 0) sweep_spec_free(spec);
    return rc;
}

static void free_list(struct sweep_list *list) { free(list->items); }

void sweep_spec_free(struct sweep_spec *spec)
{
    for (int a = 0; a < spec->n_axes; a++) {
        for (int c = 0; c < spec->axes[a].n_columns; c++) free(spec->axes[a].columns[c].values);
        free(spec->axes[a].columns);
    }
    for (int p = 0; p < spec->n_presets; p++) free_list(&spec->presets[p].keys);
    for (int e = 0; e < spec->n_entries; e++) free_list(&spec->entries[e].keys);
    free_list(&spec->set);
    free(spec->axes);
    free(spec->presets);
    free(spec->entries);
    free(spec->bases);
    free(spec->seeds);
    if (spec->has_doc) yaml_document_delete(&spec->doc);
    const char *origin = spec->origin;
    memset(spec, 0, sizeof *spec);
    spec->origin = origin;
}
