// promoe plot [--db PATH] [--out DIR] [--sweep NAME ...] [--scale mini|paper] [--smooth STEPS] [--label L ...] [--log-y]
// Draws the paper's figures from the results database as PNG with gnuplot: the training-loss
// curves of Fig. 5 and the scaling curves of Figs. 3b and 3c, at the scale whose sweeps the
// database holds; with --sweep, the loss curves of the named sweeps only.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/error.h"
#include "report/plot.h"
#include "store/db.h"

static const char *const plot_usage =
    "promoe plot [--db PATH] [--out DIR] [--sweep NAME ...] [--scale mini|paper] [--smooth STEPS] [--label L ...] [--log-y]";
#define PLOT_DEFAULT_DB "results/promoe.db"
#define PLOT_DEFAULT_OUT "results/plots"
enum { PLOT_SWEEPS_MAX = 32 };

struct plot_cli {
    const char *db_path, *scale;
    const char *sweeps[PLOT_SWEEPS_MAX];
    int n_sweeps;
    struct plot_options options;
};

static int parse_option(int argc, char **argv, int *i, struct plot_cli *o)
{
    const char *a = argv[*i];
    if (!strcmp(a, "--log-y")) return o->options.log_y = 1, 0;
    if (*i + 1 >= argc) return -1;
    const char *value = argv[++*i];
    if (!strcmp(a, "--db")) return o->db_path = value, 0;
    if (!strcmp(a, "--out")) return o->options.out_dir = value, 0;
    if (!strcmp(a, "--scale")) return o->scale = value, 0;
    if (!strcmp(a, "--sweep") && o->n_sweeps < PLOT_SWEEPS_MAX) return o->sweeps[o->n_sweeps++] = value, 0;
    if (!strcmp(a, "--label") && o->options.n_labels < PLOT_LABELS_MAX)
        return o->options.labels[o->options.n_labels++] = value, 0;
    if (!strcmp(a, "--smooth")) {
        if (cli_double("--smooth", value, &o->options.smooth_steps) < 0) return -1;
        if (!(o->options.smooth_steps > 0)) return err("--smooth: the span of the moving average in steps must be > 0");
        return 0;
    }
    return -1;
}

static int plot_all(struct store *db, const struct plot_cli *o, struct plot_report *report)
{
    struct sqlite3 *handle = store_handle(db);
    for (int i = 0; i < o->n_sweeps; i++)
        if (plot_loss(handle, o->sweeps[i], &o->options, report) < 0) return -1;
    if (o->n_sweeps) return 0;
    enum table_scale scale = plot_detect_scale(handle);
    if (o->scale && table_scale_parse(o->scale, &scale) < 0) return -1;
    char sweep[PLOT_TEXT_MAX];
    plot_loss_sweep(scale, sweep);
    if (plot_loss(handle, sweep, &o->options, report) < 0) return -1;
    return plot_scaling(handle, scale, &o->options, report);
}

int cmd_plot(int argc, char **argv)
{
    if (argc == 2 && !strcmp(argv[1], "--help")) return printf("usage: %s\n", plot_usage), 0;
    struct plot_cli o = {.db_path = PLOT_DEFAULT_DB,
                         .options = {.out_dir = PLOT_DEFAULT_OUT, .run_gnuplot = 1}};
    for (int i = 1; i < argc; i++)
        if (parse_option(argc, argv, &i, &o) < 0) return cli_usage(plot_usage);
    if (access(o.db_path, F_OK) != 0) return err("no results database '%s'", o.db_path), EXIT_FAILED;
    struct store *db;
    if (store_open(&db, o.db_path) < 0) return EXIT_FAILED;
    struct plot_report *report = calloc(1, sizeof *report);
    int rc = report ? plot_all(db, &o, report) : err("out of memory");
    for (int i = 0; report && i < report->n; i++) printf("%s\n", report->lines[i]);
    free(report);
    store_close(db);
    return rc < 0 ? EXIT_FAILED : 0;
}
