// Fig. 5: training loss vs step of every run of a sweep (the loss_curve view), one curve per run
// label: the raw values faint and their exponential moving average bold, as TensorBoard's
// smoothing slider draws them. DIR/<sweep>.dat holds one block per run (gnuplot `index`):
// `step loss loss_ema`, NULL (NaN) losses left out.
#include "report/plot.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "report/plot_gnuplot.h"

enum { RUNS_MAX = 64, LABEL_MAX = 128 };
// Alpha of the raw curves in gnuplot's #AARRGGBB (00 opaque, ff transparent).
static const char FAINT_ALPHA[] = "b0";
static const double RAW_WIDTH = 1.0, SMOOTH_WIDTH = 2.5;

static const char RUNS_SQL[] =
    "SELECT r.run_id, coalesce(r.label, r.run_id) FROM sweep_runs s JOIN runs r ON r.run_id = s.run_id "
    "WHERE s.sweep = ?1 ORDER BY s.idx";
static const char CURVE_SQL[] =
    "SELECT step, value FROM loss_curve WHERE run_id = ?1 AND value IS NOT NULL ORDER BY step";

struct loss_runs {
    char label[RUNS_MAX][LABEL_MAX];
    int n;
};

void plot_loss_sweep(enum table_scale scale, char *out)
{
    snprintf(out, PLOT_TEXT_MAX, scale == SCALE_MINI ? "fig5-loss-mini" : "fig5-loss");
}

// Writes the block of one run; *rows = its number of loss rows (no block when 0).
static int write_run(sqlite3 *db, FILE *dat, const char *run_id, const char *label, double w, int *rows)
{
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2(db, CURVE_SQL, -1, &stmt, NULL) != SQLITE_OK)
        return err("loss query: %s", sqlite3_errmsg(db));
    sqlite3_bind_text(stmt, 1, run_id, -1, SQLITE_STATIC);
    double smooth = 0;
    int step;
    *rows = 0;
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
        double value = sqlite3_column_double(stmt, 1);
        smooth = *rows == 0 ? value : w * smooth + (1 - w) * value;
        if (*rows == 0) fprintf(dat, "# run %s %s\n", run_id, label);
        fprintf(dat, "%lld %.9g %.9g\n", (long long)sqlite3_column_int64(stmt, 0), value, smooth);
        ++*rows;
    }
    sqlite3_finalize(stmt);
    if (step != SQLITE_DONE) return err("loss query: %s", sqlite3_errmsg(db));
    if (*rows) fputs("\n\n", dat);
    return 0;
}

static int write_data(sqlite3 *db, FILE *dat, const char *sweep, double w, struct loss_runs *runs)
{
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2(db, RUNS_SQL, -1, &stmt, NULL) != SQLITE_OK)
        return err("runs of sweep '%s': %s", sweep, sqlite3_errmsg(db));
    sqlite3_bind_text(stmt, 1, sweep, -1, SQLITE_STATIC);
    fprintf(dat, "# training loss of sweep %s, one block per run; ema weight %g\n# step loss loss_ema\n", sweep, w);
    int rc = 0, step, rows = 0;
    runs->n = 0;
    while (rc == 0 && (step = sqlite3_step(stmt)) == SQLITE_ROW) {
        const char *run_id = (const char *)sqlite3_column_text(stmt, 0);
        const char *label = (const char *)sqlite3_column_text(stmt, 1);
        if (runs->n == RUNS_MAX) {
            rc = err("sweep '%s': more than %d runs to plot", sweep, RUNS_MAX);
            break;
        }
        rc = write_run(db, dat, run_id, label, w, &rows);
        if (rc == 0 && rows) snprintf(runs->label[runs->n++], LABEL_MAX, "%s", label);
    }
    if (rc == 0 && step != SQLITE_DONE) rc = err("runs of sweep '%s': %s", sweep, sqlite3_errmsg(db));
    sqlite3_finalize(stmt);
    return rc;
}

static void write_script(FILE *gp, const char *sweep, const struct loss_runs *runs,
                         const struct plot_options *o)
{
    char title[PLOT_TEXT_MAX];
    snprintf(title, sizeof title, "Training loss, sweep %s (bold: EMA, weight %g; faint: raw)", sweep, o->smoothing);
    plot_gp_header(gp, sweep, title, "training step", "training loss");
    if (o->log_y) fputs("set logscale y\n", gp);
    fputs("plot \\\n", gp);
    for (int i = 0; i < runs->n; i++)
        fprintf(gp, "  '%s.dat' index %d using 1:2 with lines lw %g lc rgb '#%s%s' notitle, \\\n",
                sweep, i, RAW_WIDTH, FAINT_ALPHA, plot_colour(i));
    for (int i = 0; i < runs->n; i++) {
        fprintf(gp, "  '%s.dat' index %d using 1:3 with lines lw %g lc rgb '#%s' title ", sweep, i,
                SMOOTH_WIDTH, plot_colour(i));
        plot_gp_string(gp, runs->label[i]);
        fputs(i + 1 < runs->n ? ", \\\n" : "\n", gp);
    }
}

int plot_loss(sqlite3 *db, const char *sweep, const struct plot_options *o, struct plot_report *report)
{
    struct loss_runs runs;
    FILE *dat, *gp;
    if (plot_make_dir(o->out_dir) < 0 || plot_open(&dat, o->out_dir, sweep, "dat") < 0) return -1;
    int rc = write_data(db, dat, sweep, o->smoothing, &runs);
    if (plot_close(dat, o->out_dir, sweep, "dat") < 0 || rc < 0) return -1;
    if (runs.n == 0) {
        char path[PLOT_TEXT_MAX];
        snprintf(path, sizeof path, "%s/%s.dat", o->out_dir, sweep);
        remove(path);
        plot_report_add(report, "%s: no loss rows in the database, skipped", sweep);
        return 0;
    }
    if (plot_open(&gp, o->out_dir, sweep, "gp") < 0) return -1;
    write_script(gp, sweep, &runs, o);
    if (plot_close(gp, o->out_dir, sweep, "gp") < 0) return -1;
    if (o->run_gnuplot && plot_run_gnuplot(o->out_dir, sweep) < 0) return -1;
    plot_report_add(report, "%s: %d run%s -> %s/%s.%s", sweep, runs.n, runs.n == 1 ? "" : "s", o->out_dir, sweep,
                    o->run_gnuplot ? "png" : "gp");
    return 0;
}
