// gnuplot scripts for the analysis figures, run as a child process.
#include "analysis/plot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/gnuplot.h"
#include "io/path.h"

enum { PLOT_WIDTH = 1000, PLOT_HEIGHT = 800 };
#define PLOT_FONT "DejaVu Sans,11"
#define PLOT_POINT_SIZE "0.5"

// Distinguishable hues (Tableau 20 order); legend entries beyond it reuse them.
static const char *const plot_colours[] = {
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
    "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5"};
enum { PLOT_COLOURS = sizeof plot_colours / sizeof *plot_colours };

int plot_available(void)
{
    return system("gnuplot --version >/dev/null 2>&1") == 0;
}

static FILE *open_script(const char *png, char *script)
{
    snprintf(script, IO_PATH_MAX, "%s.gp", png);
    FILE *f = fopen(script, "w");
    if (!f) {
        err("cannot write '%s'", script);
        return NULL;
    }
    fprintf(f, "set terminal pngcairo size %d,%d font \"%s\"\nset output '%s'\n", PLOT_WIDTH, PLOT_HEIGHT, PLOT_FONT, png);
    for (int i = 0; i < PLOT_COLOURS; i++) fprintf(f, "set linetype %d lc rgb '%s'\n", i + 1, plot_colours[i]);
    fprintf(f, "set linetype cycle %d\n", PLOT_COLOURS);
    return f;
}

static int close_script(FILE *f, const char *script)
{
    if (fclose(f) != 0) return err("cannot write '%s'", script);
    char log[IO_PATH_MAX + 8];
    snprintf(log, sizeof log, "%s.log", script);
    return io_gnuplot_run(NULL, script, log);
}

int plot_scatter(const struct scatter_spec *s)
{
    char script[IO_PATH_MAX];
    FILE *f = open_script(s->png, script);
    if (!f) return -1;
    fprintf(f, "set datafile separator ','\nset title \"%s\" noenhanced\nset xlabel 't-SNE 1'\nset ylabel 't-SNE 2'\n",
            s->title);
    fprintf(f, "set key outside right top\nset size ratio -1\n");
    fprintf(f, "plot for [v=%d:%d] '%s' every ::1 using (column(%d) == v ? column(%d) : NaN):%d "
            "with points pt 7 ps %s lt (v - %d + 1) title sprintf('%s', v)\n",
            s->lowest, s->highest, s->csv, s->colour_col, s->x_col, s->y_col, PLOT_POINT_SIZE, s->lowest, s->legend_name);
    return close_script(f, script);
}

int plot_heatmap(const struct heatmap_spec *s, const double *values)
{
    char script[IO_PATH_MAX], data[IO_PATH_MAX];
    snprintf(data, sizeof data, "%s.dat", s->png);
    FILE *d = fopen(data, "w");
    if (!d) return err("cannot write '%s'", data);
    for (int r = 0; r < s->rows; r++)
        for (int c = 0; c < s->cols; c++) fprintf(d, "%.6f%c", values[r * s->cols + c], c + 1 < s->cols ? ' ' : '\n');
    if (fclose(d) != 0) return err("cannot write '%s'", data);
    FILE *f = open_script(s->png, script);
    if (!f) return -1;
    fprintf(f, "set title \"%s\" noenhanced\nset xlabel \"%s\"\nset ylabel \"%s\"\nset cblabel \"%s\"\n", s->title, s->x_label,
            s->y_label, s->colour_label);
    fprintf(f, "set xrange [-0.5:%d.5]\nset yrange [-0.5:%d.5] reverse\nset xtics 1\nset ytics 1\nset cbrange [0:1]\n",
            s->cols - 1, s->rows - 1);
    fprintf(f, "set palette defined (0 'white', 1 '#1f77b4')\nset tics out\n");
    fprintf(f, "plot '%s' matrix with image notitle\n", data);
    return close_script(f, script);
}
