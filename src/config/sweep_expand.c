// sweep_spec -> resolved runs (ECOSYSTEM.md 1.4 "Semantics"). Order: for each seed (outermost),
// every point of the product of the axes (first axis slowest); then, again for each seed, every
// `runs` entry (an entry that sets `seed` appears once, with the first seed). Precedence: base < preset < set <
// axis/zip/seed < run entry. Values are typed by the config key table (config_set_key), so `1e-4`
// is a float wherever the key is one. Each run is validated, labelled and given its run id; two
// runs of one sweep with the same run id are an error.
#include "config/sweep.h"
#include "config/sweep_internal.h"

#include "core/error.h"
#include "core/sha256.h"

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char SEED_KEY[] = "train.seed";

struct point {
    int seed;        // index into spec->seeds, or -1 without seeds
    int *choice;     // per axis, the index of its value; NULL for an entry
    int entry;       // index into spec->entries, or -1 for a grid point
};

// Sets key from a value node; an unknown key is reported at key_node (if given), a bad value at
// the value.
static int apply(const struct sweep_spec *spec, struct config *cfg, const char *key,
                 const yaml_node_t *key_node, yaml_node_t *value)
{
    char probe[1];
    if (key_node && config_value_text(cfg, key, probe, sizeof probe) < 0)
        return sweep_key_context(spec, key_node, key);
    if (config_set_key(cfg, key, sweep_scalar(value)) == 0) return 0;
    return sweep_key_context(spec, value, key);
}

static int apply_list(const struct sweep_spec *spec, struct config *cfg, const struct sweep_list *list)
{
    for (int i = 0; i < list->n; i++)
        if (apply(spec, cfg, list->items[i].key, list->items[i].key_node, list->items[i].value_node) < 0)
            return -1;
    return 0;
}

static int apply_preset(const struct sweep_spec *spec, struct config *cfg, yaml_node_t *name)
{
    int index = sweep_find_preset(spec, sweep_scalar(name));
    if (index < 0) BUG("preset '%s' was not checked", sweep_scalar(name));
    return apply_list(spec, cfg, &spec->presets[index].keys);
}

// ---- base files ----------------------------------------------------------------------------------

// The base path as written if it exists, else relative to the sweep file's folder.
static void resolve_base(const struct sweep_spec *spec, const char *written, char *out, size_t size)
{
    snprintf(out, size, "%s", written);
    if (access(written, F_OK) == 0 || written[0] == '/') return;
    char beside[IO_PATH_MAX * 2];
    snprintf(beside, sizeof beside, "%s/%s", spec->dir, written);
    if (access(beside, F_OK) == 0) snprintf(out, size, "%s", beside);
}

static int load_bases(const struct sweep_spec *spec, struct config *base)
{
    config_defaults(base);
    for (int i = 0; i < spec->n_bases; i++) {
        char path[IO_PATH_MAX * 2];
        resolve_base(spec, sweep_scalar(spec->bases[i]), path, sizeof path);
        if (access(path, F_OK) != 0)
            return sweep_error_at(spec, spec->bases[i], "base '%s' not found (looked in the current "
                                  "folder and in '%s')", sweep_scalar(spec->bases[i]), spec->dir);
        if (config_load_file(base, path) < 0) return err_context("base of %s", spec->origin);
    }
    return 0;
}

// Every preset applied once to the base, so a mistake in an unused preset is still reported.
static int check_presets(const struct sweep_spec *spec, const struct config *base)
{
    for (int p = 0; p < spec->n_presets; p++) {
        struct config scratch = *base;
        if (apply_list(spec, &scratch, &spec->presets[p].keys) < 0) return -1;
    }
    return 0;
}

// ---- one run -------------------------------------------------------------------------------------

static int resolve_grid_point(const struct sweep_spec *spec, const struct point *pt, struct config *cfg)
{
    for (int a = 0; a < spec->n_axes; a++)
        for (int c = 0; c < spec->axes[a].n_columns; c++)
            if (spec->axes[a].columns[c].is_preset &&
                apply_preset(spec, cfg, spec->axes[a].columns[c].values[pt->choice[a]]) < 0)
                return -1;
    if (apply_list(spec, cfg, &spec->set) < 0) return -1;
    for (int a = 0; a < spec->n_axes; a++)
        for (int c = 0; c < spec->axes[a].n_columns; c++) {
            const struct sweep_column *column = &spec->axes[a].columns[c];
            if (!column->is_preset && apply(spec, cfg, column->key, column->key_node, column->values[pt->choice[a]]) < 0)
                return -1;
        }
    return pt->seed >= 0 ? apply(spec, cfg, SEED_KEY, NULL, spec->seeds[pt->seed]) : 0;
}

static int resolve_entry(const struct sweep_spec *spec, const struct point *pt, struct config *cfg)
{
    const struct sweep_entry *entry = &spec->entries[pt->entry];
    if (entry->preset_node && apply_preset(spec, cfg, entry->preset_node) < 0) return -1;
    if (apply_list(spec, cfg, &spec->set) < 0) return -1;
    if (pt->seed >= 0 && apply(spec, cfg, SEED_KEY, NULL, spec->seeds[pt->seed]) < 0) return -1;
    return apply_list(spec, cfg, &entry->keys);
}

// ---- labels --------------------------------------------------------------------------------------

// Appends text to a label, truncating at the capacity.
static void label_add(char *label, const char *text, size_t n)
{
    size_t used = strlen(label), room = SWEEP_LABEL_MAX - 1 - used;
    if (n > room) n = room;
    memcpy(label + used, text, n);
    label[used + n] = '\0';
}

// The names of the presets a run uses, joined by '-'.
static void preset_names(const struct sweep_spec *spec, const struct point *pt, char *out)
{
    out[0] = '\0';
    if (pt->entry >= 0) {
        const yaml_node_t *name = spec->entries[pt->entry].preset_node;
        if (name) label_add(out, sweep_scalar(name), strlen(sweep_scalar(name)));
        return;
    }
    for (int a = 0; a < spec->n_axes; a++)
        for (int c = 0; c < spec->axes[a].n_columns; c++) {
            if (!spec->axes[a].columns[c].is_preset) continue;
            const char *name = sweep_scalar(spec->axes[a].columns[c].values[pt->choice[a]]);
            if (out[0]) label_add(out, "-", 1);
            label_add(out, name, strlen(name));
        }
}

// The text of one `{field}`: a config key, `seed`, `preset`, `idx` or `sweep`.
static int field_text(const struct sweep_spec *spec, const struct point *pt, const struct sweep_run *run,
                      const char *field, char *out, size_t size)
{
    if (strcmp(field, "seed") == 0) field = SEED_KEY;
    if (strcmp(field, "idx") == 0) return snprintf(out, size, "%d", run->idx), 0;
    if (strcmp(field, "sweep") == 0) {
        snprintf(out, size, "%s", spec->name_node ? sweep_scalar(spec->name_node) : "");
        return 0;
    }
    if (strcmp(field, "preset") == 0) {
        char names[SWEEP_LABEL_MAX];
        preset_names(spec, pt, names);
        snprintf(out, size, "%s", names);
        return 0;
    }
    return config_value_text(&run->cfg, field, out, size) < 0 ? -1 : 0;
}

// Substitutes every `{field}` of template into the run's label.
static int expand_template(const struct sweep_spec *spec, const struct point *pt, struct sweep_run *run,
                           const yaml_node_t *template_node)
{
    const char *t = sweep_scalar(template_node);
    run->label[0] = '\0';
    while (*t) {
        const char *open = strchr(t, '{');
        const char *close = open ? strchr(open, '}') : NULL;
        if (!open || !close) {
            label_add(run->label, t, strlen(t));
            break;
        }
        label_add(run->label, t, (size_t)(open - t));
        char field[SWEEP_KEY_MAX], value[CONFIG_STRING_MAX];
        snprintf(field, sizeof field, "%.*s", (int)(close - open - 1), open + 1);
        if (field_text(spec, pt, run, field, value, sizeof value) < 0)
            return sweep_error_at(spec, template_node, "label field '{%s}': %s", field, err_message());
        label_add(run->label, value, strlen(value));
        t = close + 1;
    }
    return 0;
}

// Without a template: the values of the point's axes joined by '-', then "s<seed>" with seeds.
static void default_label(const struct sweep_spec *spec, const struct point *pt, struct sweep_run *run)
{
    run->label[0] = '\0';
    for (int a = 0; pt->entry < 0 && a < spec->n_axes; a++)
        for (int c = 0; c < spec->axes[a].n_columns; c++) {
            const char *value = sweep_scalar(spec->axes[a].columns[c].values[pt->choice[a]]);
            if (run->label[0]) label_add(run->label, "-", 1);
            label_add(run->label, value, strlen(value));
        }
    if (pt->entry >= 0 || !run->label[0]) {
        char name[SWEEP_LABEL_MAX];
        snprintf(name, sizeof name, "%s-%d", spec->name_node ? sweep_scalar(spec->name_node) : "run", run->idx);
        label_add(run->label, name, strlen(name));
    }
    if (pt->seed >= 0) {
        char seed[SWEEP_KEY_MAX];
        snprintf(seed, sizeof seed, "-s%s", sweep_scalar(spec->seeds[pt->seed]));
        label_add(run->label, seed, strlen(seed));
    }
}

int sweep_label_check(const char *label)
{
    int control = 0;
    for (const char *p = label; *p; p++) control |= (unsigned char)*p < ' ' || *p == 0x7f;
    if (strchr(label, '/') || control || !strcmp(label, ".") || !strcmp(label, ".."))
        return err("label '%s' becomes a file name (report sample grids): it may not hold '/' or control "
                   "characters, nor be '.' or '..'", label);
    return 0;
}

static int make_label(const struct sweep_spec *spec, const struct point *pt, struct sweep_run *run)
{
    const yaml_node_t *entry_label = pt->entry >= 0 ? spec->entries[pt->entry].label_node : NULL;
    const yaml_node_t *template_node = entry_label ? entry_label : spec->label_node;
    if (template_node) {
        if (expand_template(spec, pt, run, template_node) < 0) return -1;
        if (sweep_label_check(run->label) < 0) return sweep_error_at(spec, template_node, "%s", err_message());
        return 0;
    }
    default_label(spec, pt, run);
    for (char *p = run->label; *p; p++)   // axis values such as paths: a label stays one file name
        if (*p == '/' || (unsigned char)*p < ' ') *p = '_';
    return 0;
}

static int make_run(const struct sweep_spec *spec, const struct config *base, const struct point *pt,
                    struct sweep_run *run)
{
    run->cfg = *base;
    int rc = pt->entry >= 0 ? resolve_entry(spec, pt, &run->cfg) : resolve_grid_point(spec, pt, &run->cfg);
    if (rc < 0) return -1;
    if (make_label(spec, pt, run) < 0) return -1;
    if (config_validate(&run->cfg) < 0)
        return err_context("%s: run %d (%s)", spec->origin, run->idx, run->label);
    config_run_id(&run->cfg, run->run_id);
    return 0;
}

// ---- the whole expansion ---------------------------------------------------------------------------

static int product_size(const struct sweep_spec *spec)
{
    if (!spec->has_axes && spec->has_runs) return 0; // only explicit runs
    long long n = 1;
    for (int a = 0; a < spec->n_axes && n > 0; a++) n *= spec->axes[a].length;
    return n > INT32_MAX / 2 ? -1 : (int)n;
}

static int add_run(struct sweep *sw, int *capacity, const struct sweep_spec *spec,
                   const struct config *base, const struct point *pt)
{
    if (sw->n_runs == *capacity) {
        int wanted = *capacity ? 2 * *capacity : 16;
        struct sweep_run *bigger = realloc(sw->runs, (size_t)wanted * sizeof *bigger);
        if (!bigger) return err("out of memory");
        sw->runs = bigger;
        *capacity = wanted;
    }
    struct sweep_run *run = &sw->runs[sw->n_runs];
    memset(run, 0, sizeof *run);
    run->idx = sw->n_runs;
    if (make_run(spec, base, pt, run) < 0) return -1;
    sw->n_runs++;
    return 0;
}

// Position p of the product, first axis slowest.
static void decompose(const struct sweep_spec *spec, int p, int *choice)
{
    for (int a = spec->n_axes - 1; a >= 0; a--) {
        choice[a] = p % spec->axes[a].length;
        p /= spec->axes[a].length;
    }
}

static int expand_grid(struct sweep *sw, int *capacity, const struct sweep_spec *spec,
                       const struct config *base, int seed, int n_points, int *choice)
{
    struct point pt = {seed, choice, -1};
    for (int p = 0; p < n_points; p++) {
        decompose(spec, p, choice);
        if (add_run(sw, capacity, spec, base, &pt) < 0) return -1;
    }
    return 0;
}

static int expand_entries(struct sweep *sw, int *capacity, const struct sweep_spec *spec,
                          const struct config *base, int seed)
{
    for (int e = 0; e < spec->n_entries; e++) {
        int sets_seed = spec->entries[e].sets_seed;
        if (sets_seed && seed > 0) continue; // its own seed: once
        struct point entry = {sets_seed ? -1 : seed, NULL, e};
        if (add_run(sw, capacity, spec, base, &entry) < 0) return -1;
    }
    return 0;
}

static int check_distinct(const struct sweep *sw, const char *origin)
{
    for (int i = 0; i < sw->n_runs; i++)
        for (int j = 0; j < i; j++)
            if (strcmp(sw->runs[i].run_id, sw->runs[j].run_id) == 0)
                return err("%s: runs %d (%s) and %d (%s) train the same thing (run id %s): only "
                           "keys outside the run id differ", origin, j, sw->runs[j].label, i,
                           sw->runs[i].label, sw->runs[i].run_id);
    return 0;
}

static int expand(struct sweep *sw, const struct sweep_spec *spec)
{
    struct config base;
    if (load_bases(spec, &base) < 0 || check_presets(spec, &base) < 0) return -1;
    int n_points = product_size(spec), capacity = 0;
    if (n_points < 0) return err("%s: the grid has too many points", spec->origin);
    int *choice = calloc((size_t)spec->n_axes + 1, sizeof *choice);
    if (!choice) return err("out of memory");
    int rc = 0;
    int n_seeds = spec->n_seeds ? spec->n_seeds : 1;
    for (int s = 0; rc == 0 && s < n_seeds; s++)
        rc = expand_grid(sw, &capacity, spec, &base, spec->n_seeds ? s : -1, n_points, choice);
    for (int s = 0; rc == 0 && s < n_seeds; s++)
        rc = expand_entries(sw, &capacity, spec, &base, spec->n_seeds ? s : -1);
    free(choice);
    if (rc == 0 && sw->n_runs == 0) rc = err("%s: the sweep has no runs", spec->origin);
    return rc < 0 ? -1 : check_distinct(sw, spec->origin);
}

// ---- sweep_load ------------------------------------------------------------------------------------

static int read_text(const char *path, char **out, size_t *n_out)
{
    FILE *f = fopen(path, "rb");
    if (!f) return err("cannot open sweep file '%s': %s", path, strerror(errno));
    size_t n = 0, capacity = 4096;
    char *buf = malloc(capacity + 1);
    while (buf && (n += fread(buf + n, 1, capacity - n, f)) == capacity) {
        char *grown = realloc(buf, (capacity *= 2) + 1);
        if (!grown) free(buf);
        buf = grown;
    }
    int failed = !buf || ferror(f);
    fclose(f);
    if (failed) {
        free(buf);
        return err("cannot read sweep file '%s'", path);
    }
    buf[n] = '\0';
    *out = buf;
    *n_out = n;
    return 0;
}

static void set_name(struct sweep *sw, const struct sweep_spec *spec, const char *path)
{
    if (spec->name_node) {
        snprintf(sw->name, sizeof sw->name, "%s", sweep_scalar(spec->name_node));
        return;
    }
    const char *slash = strrchr(path, '/'), *stem = slash ? slash + 1 : path;
    const char *dot = strrchr(stem, '.');
    int n = dot && dot > stem ? (int)(dot - stem) : (int)strlen(stem);
    snprintf(sw->name, sizeof sw->name, "%.*s", n, stem);
}

int sweep_load(struct sweep *sw, const char *path)
{
    memset(sw, 0, sizeof *sw);
    size_t n = 0;
    if (read_text(path, &sw->spec_text, &n) < 0) return -1;
    struct sweep_spec spec = {.origin = path};
    char *copy = strdup(path);
    if (!copy) return free(sw->spec_text), err("out of memory");
    snprintf(spec.dir, sizeof spec.dir, "%s", dirname(copy));
    free(copy);
    int rc = sweep_parse(&spec, sw->spec_text, n);
    if (rc == 0) {
        set_name(sw, &spec, path);
        sha256_hex(sw->spec_text, n, sw->spec_sha256);
        rc = expand(sw, &spec);
        sweep_spec_free(&spec);
    }
    if (rc < 0) sweep_free(sw);
    return rc;
}

void sweep_free(struct sweep *sw)
{
    free(sw->spec_text);
    free(sw->runs);
    memset(sw, 0, sizeof *sw);
}
