// Fig. 3b and 3c: FD/FID and IS of each run of a scaling sweep at cfg 1.0 and 1.5, against its
// activated parameters (runs.params_active) or its number of experts (the E<total> of
// model.moe.experts). Runs of one series and x are seeds: a point is their mean with the Student t
// 95% interval (report/stats). DIR/<sweep>-<metric>.dat holds one block per series and cfg
// (gnuplot `index`): `x mean ci95 n`.
#include "report/plot.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/path.h"
#include "report/plot_gnuplot.h"
#include "report/stats.h"
#include "report/table.h"
#include "store/run_values.h"
#include "store/sweep_members.h"

enum { RUNS_MAX = 128, SERIES_MAX = 8, LABEL_MAX = 64, ID_MAX = 64 };
enum scaling_x { X_PARAMS_ACTIVE, X_EXPERTS };
// Series of a run: its label without the seed suffix ("-s<seed>") and without the size suffix
// ("dense-B" -> "dense"), or one series for the whole sweep.
enum scaling_series { SERIES_LABEL_STEM, SERIES_ONE };

static const double CFG_SCALES[] = {1.0, 1.5};
enum { CFG_COUNT = sizeof CFG_SCALES / sizeof *CFG_SCALES };
static const enum spec_metric METRICS[] = {METRIC_FID, METRIC_IS};
enum { METRIC_PLOTS = sizeof METRICS / sizeof *METRICS };
static const char ONE_SERIES[] = "promoe";
static const double LINE_WIDTH = 2.0, POINT_SIZE = 1.2;

static const struct scaling_figure {
    const char *figure, *sweep, *x_label;
    enum scaling_x x;
    enum scaling_series series;
} figures[] = {
    {"Fig. 3b", "fig3b-model-size", "activated parameters", X_PARAMS_ACTIVE, SERIES_LABEL_STEM},
    {"Fig. 3c", "fig3c-experts", "experts (total, E of model.moe.experts)", X_EXPERTS, SERIES_ONE},
};
enum { FIGURE_COUNT = sizeof figures / sizeof *figures };

struct scaling_run {
    char run_id[ID_MAX];
    int series;
    double x;
};

struct scaling_data {
    struct scaling_run runs[RUNS_MAX];
    int n_runs;
    char series[SERIES_MAX][LABEL_MAX];
    int n_series;
};

// One block of the .dat file: which series at which cfg.
struct scaling_block {
    int series, cfg;
};

static void sweep_name(const struct scaling_figure *fig, enum table_scale scale, char *out)
{
    snprintf(out, PLOT_TEXT_MAX, "%s%s", fig->sweep, scale == SCALE_MINI ? "-mini" : "");
}

// The total expert count of an experts spec such as "E14A1S1U1" (stored quoted); 0 when none.
static double expert_count(const char *spec)
{
    const char *e = strchr(spec, 'E');
    return e && isdigit((unsigned char)e[1]) ? strtod(e + 1, NULL) : 0;
}

static void series_name(const char *label, enum scaling_series kind, char *out)
{
    if (kind == SERIES_ONE) {
        snprintf(out, LABEL_MAX, "%s", ONE_SERIES);
        return;
    }
    snprintf(out, LABEL_MAX, "%.*s", LABEL_MAX - 1, label);
    char *dash = strrchr(out, '-');
    if (dash && dash[1] == 's' && dash[2] && strspn(dash + 2, "0123456789") == strlen(dash + 2)) *dash = '\0';
    if ((dash = strrchr(out, '-')) && dash != out) *dash = '\0';
}

static int series_index(struct scaling_data *d, const char *name)
{
    for (int i = 0; i < d->n_series; i++)
        if (!strcmp(d->series[i], name)) return i;
    if (d->n_series == SERIES_MAX) return err("more than %d series", SERIES_MAX);
    snprintf(d->series[d->n_series], LABEL_MAX, "%s", name);
    return d->n_series++;
}

// Adds a run of the sweep unless it has no x (no params_active, or a dense model in an experts sweep).
static int add_run(const struct store_scaling_run *row, const struct scaling_figure *fig, struct scaling_data *d)
{
    int has_x = fig->x == X_PARAMS_ACTIVE ? row->has_params_active : expert_count(row->experts) > 0;
    if (!has_x) return 0;
    if (d->n_runs == RUNS_MAX) return err("more than %d runs", RUNS_MAX);
    struct scaling_run *run = &d->runs[d->n_runs];
    char series[LABEL_MAX];
    snprintf(run->run_id, ID_MAX, "%s", row->run_id);
    series_name(row->label, fig->series, series);
    run->x = fig->x == X_PARAMS_ACTIVE ? row->params_active : expert_count(row->experts);
    if ((run->series = series_index(d, series)) < 0) return -1;
    d->n_runs++;
    return 0;
}

static int compare_x(const void *a, const void *b)
{
    double xa = ((const struct scaling_run *)a)->x, xb = ((const struct scaling_run *)b)->x;
    return (xa > xb) - (xa < xb);
}

static int load_runs(struct store *db, const struct scaling_figure *fig, const char *sweep, struct scaling_data *d)
{
    struct store_scaling_run *rows;
    int n_rows;
    d->n_runs = d->n_series = 0;
    if (store_sweep_scaling_runs(db, sweep, &rows, &n_rows) < 0) return -1;
    int rc = 0;
    for (int i = 0; rc == 0 && i < n_rows; i++) rc = add_run(&rows[i], fig, d);
    free(rows);
    if (rc < 0) return err_context("sweep '%s'", sweep);
    qsort(d->runs, (size_t)d->n_runs, sizeof *d->runs, compare_x);
    return 0;
}

struct scaling_point {
    double x, mean, half;
    int n;
};

// The point of the runs [first, end) of one series and x; point->n = 0 when none has the evaluation.
static int make_point(struct store *db, const struct scaling_data *d, int first, int end, int series,
                      const char *metric, double cfg, struct scaling_point *point)
{
    double values[RUNS_MAX];
    point->n = 0;
    point->x = d->runs[first].x;
    for (int i = first; i < end; i++) {
        if (d->runs[i].series != series) continue;
        int found = store_run_eval(db, d->runs[i].run_id, metric, cfg, 0, &values[point->n]);
        if (found < 0) return -1;
        point->n += found;
    }
    if (point->n) stats_mean_ci95(values, point->n, &point->mean, &point->half);
    return 0;
}

// The block of one series at one cfg; *points = its number of points (nothing written at 0).
static int write_block(struct store *db, FILE *dat, const struct scaling_data *d, int series,
                       const char *metric, double cfg, int *points)
{
    struct scaling_point found[RUNS_MAX];
    *points = 0;
    for (int first = 0, end; first < d->n_runs; first = end) {
        for (end = first + 1; end < d->n_runs && d->runs[end].x == d->runs[first].x; end++) {}
        if (make_point(db, d, first, end, series, metric, cfg, &found[*points]) < 0) return -1;
        *points += found[*points].n > 0;
    }
    if (*points == 0) return 0;
    fprintf(dat, "# series %s cfg %.1f\n", d->series[series], cfg);
    for (int i = 0; i < *points; i++)
        fprintf(dat, "%.9g %.9g %.9g %d\n", found[i].x, found[i].mean, found[i].half, found[i].n);
    fputs("\n\n", dat);
    return 0;
}

static int write_data(struct store *db, FILE *dat, const struct scaling_data *d, const char *metric,
                      struct scaling_block *blocks, int *n_blocks)
{
    fprintf(dat, "# %s, one block per series and cfg scale; mean and 95%% half-width over seeds\n"
                 "# x mean ci95 n\n", metric);
    *n_blocks = 0;
    for (int c = 0; c < CFG_COUNT; c++)
        for (int s = 0; s < d->n_series; s++) {
            int points;
            if (write_block(db, dat, d, s, metric, CFG_SCALES[c], &points) < 0) return -1;
            if (points) blocks[(*n_blocks)++] = (struct scaling_block){s, c};
        }
    return 0;
}

static void y_label(enum spec_metric metric, enum table_scale scale, char *out)
{
    const char *name = metric == METRIC_FID ? (scale == SCALE_MINI ? "FD" : "FID") : "IS";
    snprintf(out, PLOT_TEXT_MAX, "%s%s", name, scale == SCALE_MINI ? " (feature network)" : "");
}

static void write_script(FILE *gp, const struct scaling_figure *fig, const char *name, const char *sweep,
                         const char *y, const struct scaling_data *d, const struct scaling_block *blocks,
                         int n_blocks)
{
    char title[4 * PLOT_TEXT_MAX];
    snprintf(title, sizeof title, "%s: %s vs %s, sweep %s (mean and 95%% interval over seeds)",
             fig->figure, y, fig->x_label, sweep);
    plot_gp_header(gp, name, title, fig->x_label, y);
    fputs("set offsets graph 0.05, graph 0.05, graph 0.05, graph 0.05\nplot \\\n", gp);
    for (int b = 0; b < n_blocks; b++) {
        char curve[2 * PLOT_TEXT_MAX];
        snprintf(curve, sizeof curve, "%s, cfg %.1f", d->series[blocks[b].series], CFG_SCALES[blocks[b].cfg]);
        fprintf(gp, "  '%s.dat' index %d using 1:2:3 with yerrorlines lw %g pt 7 ps %g dt %d lc rgb '#%s' title ",
                name, b, LINE_WIDTH, POINT_SIZE, 1 + blocks[b].cfg, plot_colour(blocks[b].series));
        plot_gp_string(gp, curve);
        fputs(b + 1 < n_blocks ? ", \\\n" : "\n", gp);
    }
}

// One metric of a figure: DIR/<sweep>-<metric>.{dat,gp,png}, or a report line when no run has it.
static int plot_metric(struct store *db, const struct scaling_figure *fig, const char *sweep,
                       const struct scaling_data *d, enum spec_metric metric, enum table_scale scale,
                       const struct plot_options *o, struct plot_report *report)
{
    const char *metric_name = spec_metric_name(metric, scale);
    char name[2 * PLOT_TEXT_MAX], y[PLOT_TEXT_MAX], path[4 * PLOT_TEXT_MAX];
    struct scaling_block blocks[CFG_COUNT * SERIES_MAX];
    int n_blocks;
    FILE *dat, *gp;
    snprintf(name, sizeof name, "%s-%s", sweep, metric_name);
    y_label(metric, scale, y);
    if (plot_open(&dat, o->out_dir, name, "dat") < 0) return -1;
    int rc = write_data(db, dat, d, metric_name, blocks, &n_blocks);
    if (plot_close(dat, o->out_dir, name, "dat") < 0 || rc < 0) return -1;
    if (n_blocks == 0) {
        snprintf(path, sizeof path, "%s/%s.dat", o->out_dir, name);
        remove(path);
        plot_report_add(report, "%s: no '%s' evaluations in sweep %s, skipped", name, metric_name, sweep);
        return 0;
    }
    if (plot_open(&gp, o->out_dir, name, "gp") < 0) return -1;
    write_script(gp, fig, name, sweep, y, d, blocks, n_blocks);
    if (plot_close(gp, o->out_dir, name, "gp") < 0) return -1;
    if (o->run_gnuplot && plot_run_gnuplot(o->out_dir, name) < 0) return -1;
    plot_report_add(report, "%s: %d curve%s -> %s/%s.%s", name, n_blocks, n_blocks == 1 ? "" : "s", o->out_dir, name,
                    o->run_gnuplot ? "png" : "gp");
    return 0;
}

static int plot_figure(struct store *db, const struct scaling_figure *fig, enum table_scale scale,
                       const struct plot_options *o, struct plot_report *report)
{
    static struct scaling_data data;
    char sweep[PLOT_TEXT_MAX];
    sweep_name(fig, scale, sweep);
    if (load_runs(db, fig, sweep, &data) < 0) return -1;
    if (data.n_runs == 0) {
        plot_report_add(report, "%s: no runs of sweep %s in the database, skipped", fig->figure, sweep);
        return 0;
    }
    for (int m = 0; m < METRIC_PLOTS; m++)
        if (plot_metric(db, fig, sweep, &data, METRICS[m], scale, o, report) < 0) return -1;
    return 0;
}

int plot_scaling(struct store *db, enum table_scale scale, const struct plot_options *o, struct plot_report *report)
{
    if (io_make_folders(o->out_dir) < 0) return -1;
    for (int f = 0; f < FIGURE_COUNT; f++)
        if (plot_figure(db, &figures[f], scale, o, report) < 0) return -1;
    return 0;
}

enum table_scale plot_detect_scale(struct store *db)
{
    char sweep[PLOT_TEXT_MAX];
    plot_loss_sweep(SCALE_PAPER, sweep);
    if (store_sweep_has_runs(db, sweep)) return SCALE_PAPER;
    for (int f = 0; f < FIGURE_COUNT; f++) {
        sweep_name(&figures[f], SCALE_PAPER, sweep);
        if (store_sweep_has_runs(db, sweep)) return SCALE_PAPER;
    }
    return SCALE_MINI;
}
