// Fig. 5: loss vs step of the runs of a sweep, one curve per run label (the seeds of a label
// averaged at each step): the training loss raw and faint, bold its centred moving average over a
// span of steps
// (report/smooth.h), and the held-out validation loss with points. DIR/<name>.dat holds one block
// per label (gnuplot `index`): `step mean smoothed runs` for the training loss, `step mean runs`
// for the validation loss; NULL (NaN) values are left out.
#include "report/plot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/path.h"
#include "report/plot_gnuplot.h"
#include "report/smooth.h"
#include "store/loss_curves.h"
#include "store/sweep_members.h"

enum { RUNS_MAX = 64, LABEL_MAX = 128 };
// Alpha of the raw curves in gnuplot's #AARRGGBB (00 opaque, ff transparent).
static const char FAINT_ALPHA[] = "b0";
static const double RAW_WIDTH = 1.0, SMOOTH_WIDTH = 2.5, POINT_SIZE = 1.2;

// A label's curve as the store gives it, and its moving average (training loss only).
struct curve {
    struct store_curve points;
    double *smoothed;
};

struct curve_set {
    char label[RUNS_MAX][LABEL_MAX];
    struct curve curves[RUNS_MAX];
    int n;
    double last_step;
};

void plot_loss_sweep(enum table_scale scale, char *out)
{
    snprintf(out, PLOT_TEXT_MAX, scale == SCALE_MINI ? "fig5-loss-mini" : "fig5-loss");
}

static void curve_set_free(struct curve_set *set)
{
    for (int i = 0; i < set->n; i++) {
        store_curve_free(&set->curves[i].points);
        free(set->curves[i].smoothed);
    }
    set->n = 0;
}

static int wanted(const struct plot_options *o, const char *label)
{
    if (o->n_labels == 0) return 1;
    for (int i = 0; i < o->n_labels; i++)
        if (!strcmp(o->labels[i], label)) return 1;
    return 0;
}

// The labels of the sweep (first appearance order, or the options' order) with a curve of metric.
static int read_curves(struct store *db, const char *sweep, const char *metric, const struct plot_options *o,
                       struct curve_set *set)
{
    struct store_labels labels;
    memset(set, 0, sizeof *set);
    if (store_sweep_labels(db, sweep, &labels) < 0) return -1;
    int rc = 0;
    for (int i = 0; rc == 0 && i < labels.n; i++) {
        const char *label = labels.label[i];
        if (!wanted(o, label)) continue;
        if (set->n == RUNS_MAX) {
            rc = err("sweep '%s': more than %d curves to plot", sweep, RUNS_MAX);
            break;
        }
        // The slot is counted at once so curve_set_free releases it on any path; a label without
        // rows gives its slot back (an empty curve owns nothing).
        struct store_curve *c = &set->curves[set->n].points;
        snprintf(set->label[set->n], LABEL_MAX, "%s", label);
        set->n++;
        rc = store_label_curve(db, sweep, label, metric, c);
        if (rc == 0 && c->n == 0) set->n--;
        else if (rc == 0 && c->steps[c->n - 1] > set->last_step) set->last_step = c->steps[c->n - 1];
    }
    store_labels_free(&labels);
    return rc;
}

static double span_of(const struct plot_options *o, const struct curve_set *set)
{
    return o->smooth_steps > 0 ? o->smooth_steps : smooth_default_span(set->last_step);
}

static int smooth_all(struct curve_set *set, double span)
{
    for (int i = 0; i < set->n; i++) {
        struct curve *curve = &set->curves[i];
        const struct store_curve *c = &curve->points;
        curve->smoothed = malloc(sizeof(double) * c->n);
        if (!curve->smoothed) return err("out of memory smoothing a curve of %d points", c->n);
        smooth_in_steps(c->steps, c->values, c->n, span, curve->smoothed);
    }
    return 0;
}

static void write_data(FILE *dat, const char *sweep, const char *metric, const struct curve_set *set, double span)
{
    fprintf(dat, "# %s of sweep %s, one block per run label, its seeds averaged at each step\n", metric, sweep);
    if (span > 0) fprintf(dat, "# step mean smoothed runs (centred mean over %g steps)\n", span);
    else fprintf(dat, "# step mean runs\n");
    for (int i = 0; i < set->n; i++) {
        const struct store_curve *c = &set->curves[i].points;
        fprintf(dat, "# label %s\n", set->label[i]);
        for (int k = 0; k < c->n; k++) {
            if (span > 0)
                fprintf(dat, "%.0f %.9g %.9g %d\n", c->steps[k], c->values[k], set->curves[i].smoothed[k], c->runs[k]);
            else fprintf(dat, "%.0f %.9g %d\n", c->steps[k], c->values[k], c->runs[k]);
        }
        fputs("\n\n", dat);
    }
}

static void write_loss_script(FILE *gp, const char *name, const char *sweep, const struct curve_set *set,
                              const struct plot_options *o, double span)
{
    char title[PLOT_TEXT_MAX];
    snprintf(title, sizeof title,
             "Training loss, sweep %s (mean over seeds; bold: centred mean over %g steps; faint: raw)",
             sweep, span);
    plot_gp_header(gp, name, title, "training step", "training loss");
    if (o->log_y) fputs("set logscale y\n", gp);
    fputs("plot \\\n", gp);
    for (int i = 0; i < set->n; i++)
        fprintf(gp, "  '%s.dat' index %d using 1:2 with lines lw %g lc rgb '#%s%s' notitle, \\\n",
                name, i, RAW_WIDTH, FAINT_ALPHA, plot_colour(i));
    for (int i = 0; i < set->n; i++) {
        fprintf(gp, "  '%s.dat' index %d using 1:3 with lines lw %g lc rgb '#%s' title ", name, i,
                SMOOTH_WIDTH, plot_colour(i));
        plot_gp_string(gp, set->label[i]);
        fputs(i + 1 < set->n ? ", \\\n" : "\n", gp);
    }
}

static void write_val_script(FILE *gp, const char *name, const char *sweep, const struct curve_set *set,
                             const struct plot_options *o)
{
    char title[PLOT_TEXT_MAX];
    snprintf(title, sizeof title, "Validation loss, sweep %s (held-out images, fixed noise and timesteps; mean over seeds)",
             sweep);
    plot_gp_header(gp, name, title, "training step", "validation loss");
    if (o->log_y) fputs("set logscale y\n", gp);
    fputs("plot \\\n", gp);
    for (int i = 0; i < set->n; i++) {
        fprintf(gp, "  '%s.dat' index %d using 1:2 with linespoints lw %g pt 7 ps %g lc rgb '#%s' title ", name, i,
                SMOOTH_WIDTH, POINT_SIZE, plot_colour(i));
        plot_gp_string(gp, set->label[i]);
        fputs(i + 1 < set->n ? ", \\\n" : "\n", gp);
    }
}

// One figure: metric "loss" (smoothed) or "val_loss" (points) into DIR/name.{dat,gp,png}.
static int plot_metric(struct store *db, const char *sweep, const char *metric, const char *name,
                       const struct plot_options *o, struct plot_report *report)
{
    struct curve_set *set = malloc(sizeof *set);
    if (!set) return err("out of memory");
    int is_loss = !strcmp(metric, "loss"), rc = read_curves(db, sweep, metric, o, set);
    double span = is_loss ? span_of(o, set) : 0;
    if (!rc && is_loss) rc = smooth_all(set, span);
    FILE *dat, *gp;
    if (!rc && set->n == 0) plot_report_add(report, "%s: no %s rows in the database, skipped", name, metric);
    if (!rc && set->n > 0 && !(rc = plot_open(&dat, o->out_dir, name, "dat"))) {
        write_data(dat, sweep, metric, set, span);
        rc = plot_close(dat, o->out_dir, name, "dat");
    }
    if (!rc && set->n > 0 && !(rc = plot_open(&gp, o->out_dir, name, "gp"))) {
        if (is_loss) write_loss_script(gp, name, sweep, set, o, span);
        else write_val_script(gp, name, sweep, set, o);
        rc = plot_close(gp, o->out_dir, name, "gp");
    }
    if (!rc && set->n > 0 && o->run_gnuplot) rc = plot_run_gnuplot(o->out_dir, name);
    if (!rc && set->n > 0)
        plot_report_add(report, "%s: %d curve%s -> %s/%s.%s", name, set->n, set->n == 1 ? "" : "s", o->out_dir, name,
                        o->run_gnuplot ? "png" : "gp");
    curve_set_free(set);
    free(set);
    return rc;
}

int plot_loss(struct store *db, const char *sweep, const struct plot_options *o, struct plot_report *report)
{
    char name[PLOT_TEXT_MAX], val_name[PLOT_TEXT_MAX + 16];
    snprintf(name, sizeof name, "%s", o->name ? o->name : sweep);
    snprintf(val_name, sizeof val_name, "%s-val_loss", name);
    if (io_make_folders(o->out_dir) < 0) return -1;
    if (plot_metric(db, sweep, "loss", name, o, report) < 0) return -1;
    return plot_metric(db, sweep, "val_loss", val_name, o, report);
}
