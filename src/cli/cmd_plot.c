// promoe plot [--db PATH] [--out DIR] [--sweep NAME ...] [--scale mini|paper] [--smooth STEPS] [--label L ...] [--log-y]
// Draws the paper's figures from the results database as PNG with gnuplot: the training-loss
// curves of Fig. 5 and the scaling curves of Figs. 3b and 3c, at the scale whose sweeps the
// database holds; with --sweep, the loss curves of the named sweeps only.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/options.h"
#include "core/error.h"
#include "report/plot.h"
#include "store/db.h"

static const char *const plot_usage =
    "promoe plot [--db PATH] [--out DIR] [--sweep NAME ...] [--scale mini|paper] [--smooth STEPS] [--label L ...] [--log-y]";
#define PLOT_DEFAULT_OUT "results/plots"
enum { PLOT_SWEEPS_MAX = 32 };

struct plot_cli {
    const char *db_path, *scale;
    const char *sweeps[PLOT_SWEEPS_MAX];
    int n_sweeps;
    struct plot_options options;
};

// The moving average spans at least one logged step.
#define PLOT_SMOOTH_MIN 1.0
#define PLOT_SMOOTH_MAX 1e12

// 0 parsed, -1 after --help, else the exit status.
static int parse_options(int argc, char **argv, struct plot_cli *o)
{
    const struct cli_option options[] = {
        CLI_OPT_FLAG("--log-y", &o->options.log_y),
        CLI_OPT_STRING("--db", &o->db_path),
        CLI_OPT_STRING("--out", &o->options.out_dir),
        CLI_OPT_STRING("--scale", &o->scale),
        CLI_OPT_LIST("--sweep", o->sweeps, PLOT_SWEEPS_MAX, &o->n_sweeps),
        CLI_OPT_LIST("--label", o->options.labels, PLOT_LABELS_MAX, &o->options.n_labels),
        CLI_OPT_DOUBLE("--smooth", &o->options.smooth_steps, PLOT_SMOOTH_MIN, PLOT_SMOOTH_MAX),
    };
    const struct cli_command_line line = {plot_usage, CLI_TABLE(options), NULL, 0, 0, NULL};
    return cli_parse(argc, argv, &line);
}

static int plot_all(struct store *db, const struct plot_cli *o, struct plot_report *report)
{
    for (int i = 0; i < o->n_sweeps; i++)
        if (plot_loss(db, o->sweeps[i], &o->options, report) < 0) return -1;
    if (o->n_sweeps) return 0;
    enum table_scale scale = plot_detect_scale(db);
    if (o->scale && table_scale_parse(o->scale, &scale) < 0) return -1;
    char sweep[PLOT_TEXT_MAX];
    plot_loss_sweep(scale, sweep);
    if (plot_loss(db, sweep, &o->options, report) < 0) return -1;
    return plot_scaling(db, scale, &o->options, report);
}

int cmd_plot(int argc, char **argv)
{
    struct plot_cli o = {.db_path = CLI_DEFAULT_DB,
                         .options = {.out_dir = PLOT_DEFAULT_OUT, .run_gnuplot = 1}};
    int status = parse_options(argc, argv, &o);
    if (status) return status < 0 ? 0 : status;
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
