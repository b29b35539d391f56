// Shared parts of the figure writers (report/plot_*.c): the output folder and files, gnuplot's
// terminal, colours and quoting, and running gnuplot on a script. Not used outside report/plot*.
#ifndef PROMOE_REPORT_PLOT_GNUPLOT_H
#define PROMOE_REPORT_PLOT_GNUPLOT_H

#include <stdio.h>

#include "report/plot.h"

// pngcairo canvas of every figure, in pixels.
enum { PLOT_WIDTH = 1200, PLOT_HEIGHT = 800 };

// Opens dir/name.ext for writing into *f; error names the file.
int plot_open(FILE **f, const char *dir, const char *name, const char *ext);
// Closes f, reporting a write error with the file's name.
int plot_close(FILE *f, const char *dir, const char *name, const char *ext);

// A gnuplot single-quoted string ('' inside for a quote).
void plot_gp_string(FILE *f, const char *text);
// Terminal, output name.png, title and axis labels.
void plot_gp_header(FILE *f, const char *name, const char *title, const char *xlabel, const char *ylabel);
// Colour of curve i as six hex digits, cycling through a fixed palette.
const char *plot_colour(int i);

// Runs `gnuplot name.gp` in dir with its messages in dir/name.log (removed on success); an error
// names the script when gnuplot is missing or fails.
int plot_run_gnuplot(const char *dir, const char *name);

// Appends a line to the report (printf-style); lines beyond PLOT_REPORT_MAX are dropped.
void plot_report_add(struct plot_report *report, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
