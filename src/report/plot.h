// Figures from the results database as PNG through gnuplot: the training-loss curves of a sweep
// (ProMoE Fig. 5) and the scaling curves of Fig. 3b (vs activated parameters) and Fig. 3c (vs
// number of experts). Each figure leaves DIR/<name>.dat (gnuplot data blocks, one per curve) and
// DIR/<name>.gp (the script, run from DIR) beside DIR/<name>.png, so a user can restyle it.
#ifndef PROMOE_REPORT_PLOT_H
#define PROMOE_REPORT_PLOT_H

#include "report/table_spec.h"

struct store;

enum { PLOT_TEXT_MAX = 512, PLOT_REPORT_MAX = 32 };

enum { PLOT_LABELS_MAX = 32 };

struct plot_options {
    const char *out_dir;
    double smooth_steps; // span of the training loss's centred moving average in steps (report/smooth.h); 0 = 1/20 of the run
    int log_y;           // logarithmic loss axis
    int run_gnuplot;     // 0: write the .dat and .gp files only
    const char *labels[PLOT_LABELS_MAX]; // run labels to draw, in this order (n_labels 0: every label)
    int n_labels;
    const char *name;    // file name of the figures instead of the sweep's (NULL: the sweep's)
};

// What a call did, one line per figure for people: "wrote DIR/x.png" or why a figure is skipped.
struct plot_report {
    char lines[PLOT_REPORT_MAX][PLOT_TEXT_MAX];
    int n;
};

// The scale whose figure sweeps have runs in the database: paper if any has, else mini.
enum table_scale plot_detect_scale(struct store *db);

// Loss curves of a sweep, one per run label, the runs of a label (its seeds) averaged step by step:
// DIR/<sweep>.{dat,gp,png}, the training loss raw (faint) and its centred moving average over a span of steps (bold); and
// DIR/<sweep>-val_loss.{dat,gp,png}, the held-out validation loss with its points marked (it is
// measured with fixed inputs, so it is drawn unsmoothed). A figure without rows is reported and
// skipped, not an error.
int plot_loss(struct store *db, const char *sweep, const struct plot_options *options,
              struct plot_report *report);

// The Fig. 3b and 3c scaling figures of the scale (sweeps fig3b-model-size[-mini] and
// fig3c-experts[-mini]): DIR/<sweep>-<metric>.{dat,gp,png} for FD/FID and IS, cfg 1.0 and 1.5.
int plot_scaling(struct store *db, enum table_scale scale, const struct plot_options *options,
                 struct plot_report *report);

// The loss sweep of Fig. 5 at the scale (fig5-loss or fig5-loss-mini), in a buffer of PLOT_TEXT_MAX.
void plot_loss_sweep(enum table_scale scale, char *out);

#endif
