// gnuplot from C: the harness writes the script text (this file's helpers) and runs gnuplot
// (io/gnuplot.h) in the output folder, whose pngcairo terminal uses cairo and pango.
#include "report/plot_gnuplot.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/gnuplot.h"
#include "io/path.h"

static const char FONT[] = "DejaVu Sans,11";

// Tableau 10, matplotlib's default cycle.
static const char *const palette[] = {"1f77b4", "ff7f0e", "2ca02c", "d62728", "9467bd",
                                      "8c564b", "e377c2", "7f7f7f", "bcbd22", "17becf"};

const char *plot_colour(int i)
{
    return palette[i % (int)(sizeof palette / sizeof *palette)];
}

int plot_open(FILE **f, const char *dir, const char *name, const char *ext)
{
    char path[IO_PATH_MAX];
    snprintf(path, sizeof path, "%s/%s.%s", dir, name, ext);
    *f = fopen(path, "w");
    return *f ? 0 : err("cannot write '%s'", path);
}

int plot_close(FILE *f, const char *dir, const char *name, const char *ext)
{
    int failed = ferror(f);
    if (fclose(f) != 0) failed = 1;
    return failed ? err("write error on '%s/%s.%s'", dir, name, ext) : 0;
}

void plot_gp_string(FILE *f, const char *text)
{
    fputc('\'', f);
    for (const char *p = text; *p; p++) {
        if (*p == '\'') fputc('\'', f);
        if (*p != '\n') fputc(*p, f);
    }
    fputc('\'', f);
}

void plot_gp_header(FILE *f, const char *name, const char *title, const char *xlabel, const char *ylabel)
{
    fprintf(f, "set terminal pngcairo size %d,%d font '%s' noenhanced\n", PLOT_WIDTH, PLOT_HEIGHT, FONT);
    fprintf(f, "set output '%s.png'\n", name);
    fputs("set title ", f), plot_gp_string(f, title), fputc('\n', f);
    fputs("set xlabel ", f), plot_gp_string(f, xlabel), fputc('\n', f);
    fputs("set ylabel ", f), plot_gp_string(f, ylabel), fputc('\n', f);
    fputs("set grid\nset key outside right top\n", f);
}

int plot_run_gnuplot(const char *dir, const char *name)
{
    char script[IO_PATH_MAX], log[IO_PATH_MAX], path[2 * IO_PATH_MAX];
    snprintf(script, sizeof script, "%s.gp", name);
    snprintf(log, sizeof log, "%s.log", name);
    if (io_gnuplot_run(dir, script, log) < 0) return -1;
    snprintf(path, sizeof path, "%s/%s", dir, log);
    remove(path); // kept only when gnuplot fails
    return 0;
}

void plot_report_add(struct plot_report *report, const char *fmt, ...)
{
    if (report->n >= PLOT_REPORT_MAX) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(report->lines[report->n++], PLOT_TEXT_MAX, fmt, ap);
    va_end(ap);
}
