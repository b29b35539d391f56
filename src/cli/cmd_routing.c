// promoe routing RUN [--db PATH] [--step S] [--out DIR]
// Routing specialisation from a run's `class_routing` counts (the latest logged step by
// default): per MoE layer the mutual information between a conditional token's class and its
// expert, in bits and over H(class) and H(expert) (stored in `specialisation`), printed as a
// table, and a class-by-expert heat map of row-normalised fractions, DIR/routing_L<L>.png.
// Tokens of the null label (class num_classes) are left out: they go to the unconditional experts.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/output.h"
#include "analysis/plot.h"
#include "analysis/specialisation.h"
#include "cli/cli.h"
#include "cli/options.h"
#include "cli/run_lookup.h"
#include "core/error.h"
#include "io/path.h"

static const char *const routing_usage = "promoe routing RUN [--db PATH] [--step S] [--out DIR]";

enum { SPECIALISATION_METRICS = 5, ROUTING_MAX_LAYERS = 256 };

struct routing_args {
    const char *run, *db, *out;
    long long step;
};

// 0 parsed, -1 after --help, else the exit status.
static int parse_args(int argc, char **argv, struct routing_args *a)
{
    *a = (struct routing_args){NULL, CLI_DEFAULT_DB, NULL, -1};
    const struct cli_option options[] = {
        CLI_OPT_STRING("--db", &a->db),
        CLI_OPT_STRING("--out", &a->out),
        CLI_OPT_INT("--step", &a->step, 0, CLI_SEED_MAX),
    };
    const struct cli_command_line line = {routing_usage, CLI_TABLE(options), &a->run, 1, 1, NULL};
    return cli_parse(argc, argv, &line);
}

// counts [classes, experts] of one layer from rows (classes >= num_classes left out).
static void layer_counts(const struct class_routing_row *rows, int n, int layer, int classes, int experts, int64_t *counts)
{
    memset(counts, 0, sizeof(int64_t) * classes * experts);
    for (int i = 0; i < n; i++)
        if (rows[i].layer == layer && rows[i].class_id < classes && rows[i].expert < experts)
            counts[rows[i].class_id * experts + rows[i].expert] += rows[i].tokens;
}

static int draw(const char *dir, const char *run_id, int64_t step, int layer, const int64_t *counts, int classes, int experts)
{
    double fractions[classes * experts];
    specialisation_row_fractions(counts, classes, experts, fractions);
    char png[CLI_FILE_CAPACITY], title[IO_PATH_MAX];
    snprintf(png, sizeof png, "%s/routing_L%d.png", dir, layer);
    snprintf(title, sizeof title, "run %s, step %lld, block %d: class to expert", run_id, (long long)step, layer);
    struct heatmap_spec spec = {png, title, "expert", "class", "fraction of the class's tokens", classes, experts};
    if (plot_heatmap(&spec, fractions) < 0) return -1;
    printf("wrote %s\n", png);
    return 0;
}

struct layer_table {
    int classes, experts, layers[ROUTING_MAX_LAYERS], n_layers;
};

// The layers present in rows (ascending) and the expert count (largest expert + 1).
static void scan_rows(const struct class_routing_row *rows, int n, struct layer_table *t)
{
    t->n_layers = 0, t->experts = 0;
    for (int i = 0; i < n; i++) {
        if (rows[i].expert + 1 > t->experts) t->experts = rows[i].expert + 1;
        if ((t->n_layers == 0 || t->layers[t->n_layers - 1] != rows[i].layer) && t->n_layers < ROUTING_MAX_LAYERS)
            t->layers[t->n_layers++] = rows[i].layer;
    }
}

static int analyse(const struct run_ref *run, const char *dir, int64_t step, const struct class_routing_row *rows, int n,
                   int classes)
{
    struct layer_table t = {.classes = classes};
    scan_rows(rows, n, &t);
    int64_t *counts = malloc(sizeof(int64_t) * classes * t.experts);
    struct specialisation_row *out = malloc(sizeof *out * SPECIALISATION_METRICS * t.n_layers);
    int rc = counts && out ? 0 : err("out of memory for the class routing of run '%s'", run->run_id);
    int draws = !rc && plot_available();
    if (!rc) rc = io_make_folders(dir);
    if (!rc) printf("run %s, step %lld: class-expert mutual information (conditional tokens)\n", run->run_id, (long long)step);
    if (!rc) printf("%-6s %9s %9s %9s %9s %11s %11s\n", "layer", "tokens", "MI bits", "H(class)", "H(expert)", "MI/H(class)", "MI/H(expert)");
    for (int l = 0; !rc && l < t.n_layers; l++) {
        layer_counts(rows, n, t.layers[l], classes, t.experts, counts);
        struct specialisation s = specialisation_of(counts, classes, t.experts);
        printf("%-6d %9lld %9.4f %9.4f %9.4f %11.4f %11.4f\n", t.layers[l], (long long)s.tokens, s.mi_bits, s.h_class_bits,
               s.h_expert_bits, s.mi_over_h_class, s.mi_over_h_expert);
        struct specialisation_row *r = out + SPECIALISATION_METRICS * l;
        r[0] = (struct specialisation_row){t.layers[l], "mi_bits", s.mi_bits};
        r[1] = (struct specialisation_row){t.layers[l], "h_class_bits", s.h_class_bits};
        r[2] = (struct specialisation_row){t.layers[l], "h_expert_bits", s.h_expert_bits};
        r[3] = (struct specialisation_row){t.layers[l], "mi_over_h_class", s.mi_over_h_class};
        r[4] = (struct specialisation_row){t.layers[l], "mi_over_h_expert", s.mi_over_h_expert};
        if (draws) rc = draw(dir, run->run_id, step, t.layers[l], counts, classes, t.experts);
    }
    if (!rc && !draws) printf("gnuplot not found: heat maps skipped (install gnuplot-nox)\n");
    if (!rc) rc = store_specialisation(run->db, run->run_id, step, out, SPECIALISATION_METRICS * t.n_layers);
    free(counts), free(out);
    return rc;
}

static int routing_report(const struct run_ref *run, const struct routing_args *a)
{
    char *yaml = NULL, dir[IO_PATH_MAX];
    struct config cfg;
    config_defaults(&cfg);
    if (store_run_config(run->db, run->run_id, &yaml) < 0) return -1;
    int rc = config_load_text(&cfg, yaml, "config stored in the runs table");
    free(yaml);
    if (rc < 0) return -1;
    if (a->out) snprintf(dir, sizeof dir, "%s", a->out);
    else snprintf(dir, sizeof dir, "%s/%s/analysis", cfg.ckpt_dir, run->run_id);
    struct class_routing_row *rows = NULL;
    int n = 0;
    int64_t step;
    if (store_class_routing_read(run->db, run->run_id, a->step, &step, &rows, &n) < 0) return -1;
    if (n == 0) {
        if (a->step >= 0) rc = err("run '%s' has no class routing rows at step %lld", run->run_id, a->step);
        else printf("run %s: no class routing rows (no expert layers: a dense model)\n", run->run_id);
    } else {
        rc = analyse(run, dir, step, rows, n, cfg.num_classes);
    }
    free(rows);
    return rc;
}

int cmd_routing(int argc, char **argv)
{
    struct routing_args a;
    int status = parse_args(argc, argv, &a);
    if (status) return status < 0 ? 0 : status;
    struct run_ref run;
    int rc = cli_open_run(a.db, a.run, 0, &run);
    if (!rc) rc = routing_report(&run, &a);
    if (run.db) store_close(run.db);
    return rc ? EXIT_FAILED : 0;
}
