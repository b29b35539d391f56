// The parsed form of a sweep file, shared by sweep_parse.c (YAML -> spec, with the checks that
// need only the file) and sweep_expand.c (spec -> resolved runs). Values are libyaml document
// nodes, so every value keeps its line and column until expansion is over. Not for other modules.
#ifndef PROMOE_SWEEP_INTERNAL_H
#define PROMOE_SWEEP_INTERNAL_H

#include <yaml.h>

#include "io/path.h"

enum { SWEEP_KEY_MAX = 256 };

// One "key: value" override; key is a config key ("seed" already mapped to "train.seed").
struct sweep_assign {
    char key[SWEEP_KEY_MAX];
    yaml_node_t *key_node, *value_node;
};

struct sweep_list {
    struct sweep_assign *items;
    int n, capacity;
};

struct sweep_preset {
    yaml_node_t *name_node;
    struct sweep_list keys;
};

// A list of values for one key (or for "preset": preset names).
struct sweep_column {
    char key[SWEEP_KEY_MAX];
    int is_preset;
    yaml_node_t *key_node;
    yaml_node_t **values;
    int n_values;
};

// A grid axis has one column; a zip group has several of the same length.
struct sweep_axis {
    struct sweep_column *columns;
    int n_columns;
    int length;
};

// An explicit run: its overrides, an optional preset and label.
struct sweep_entry {
    yaml_node_t *node, *preset_node, *label_node;
    struct sweep_list keys;
    int sets_seed;
};

struct sweep_spec {
    const char *origin;               // the sweep file's path, for messages
    char dir[IO_PATH_MAX];         // its folder, for base files
    yaml_document_t doc;
    int has_doc;
    yaml_node_t *name_node, *label_node;
    yaml_node_t **bases;
    int n_bases;
    struct sweep_list set;
    struct sweep_preset *presets;
    int n_presets;
    struct sweep_axis *axes;
    int n_axes;
    yaml_node_t **seeds;
    int n_seeds;
    struct sweep_entry *entries;
    int n_entries;
    int has_axes, has_runs;           // a grid/zip/parameters section, a runs section was given
};

// Parses text (the contents of spec->origin) into spec; on error spec is freed.
int sweep_parse(struct sweep_spec *spec, const char *text, size_t n);
void sweep_spec_free(struct sweep_spec *spec);

// "origin:line:column: " + message, recorded with err(); returns -1.
int sweep_error_at(const struct sweep_spec *spec, const yaml_node_t *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
// Adds "origin:line:column: key 'name'" as context to the recorded message; returns -1.
int sweep_key_context(const struct sweep_spec *spec, const yaml_node_t *node, const char *key);
// The index of a preset by name, -1 if none.
int sweep_find_preset(const struct sweep_spec *spec, const char *name);

static inline const char *sweep_scalar(const yaml_node_t *node)
{
    return (const char *)node->data.scalar.value;
}

#endif
