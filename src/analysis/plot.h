// Figures through gnuplot (pngcairo): the harness writes a data file and a script beside the PNG
// (so a user can restyle and rerun it) and runs `gnuplot SCRIPT`; gnuplot's messages go to
// SCRIPT.log. Colours are a fixed table of distinguishable hues.
#ifndef PROMOE_PLOT_H
#define PROMOE_PLOT_H

// 1 when a gnuplot program can be run.
int plot_available(void);

// Scatter of (x_col, y_col) from csv (comma-separated, one header line), one colour and legend
// entry per value of the integer column colour_col in [lowest, highest] (legend_name %d).
struct scatter_spec {
    const char *csv, *png, *title, *legend_name;
    int x_col, y_col, colour_col;   // 1-based columns
    int lowest, highest;
};
int plot_scatter(const struct scatter_spec *s);

// Heat map of values [rows, cols] (row r drawn at y = r), colour range [0, 1].
struct heatmap_spec {
    const char *png, *title, *x_label, *y_label, *colour_label;
    int rows, cols;
};
int plot_heatmap(const struct heatmap_spec *s, const double *values);

#endif
