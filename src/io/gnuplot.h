// Running the gnuplot program (Debian's gnuplot-nox) on a script the harness wrote (gnuplot.c).
#ifndef PROMOE_IO_GNUPLOT_H
#define PROMOE_IO_GNUPLOT_H

// Runs `gnuplot script` with the folder dir as its current folder (NULL: this process's), its
// output and messages into the file log (a name relative to that folder). 0 when gnuplot exits
// with 0; else -1 with a message naming dir/script: gnuplot could not start, the folder could not
// be entered, gnuplot is not installed (install gnuplot-nox), or its exit status or signal with
// the first line of the log. The log is left in place either way.
int io_gnuplot_run(const char *dir, const char *script, const char *log);

#endif
