// A metric's curve over the runs of one label of a sweep (loss_curves.c): at each step the mean
// over the label's runs (its seeds) and how many runs had a value there; NULL values left out.
#ifndef PROMOE_STORE_LOSS_CURVES_H
#define PROMOE_STORE_LOSS_CURVES_H

struct store;

// Points [n] by step; the arrays are allocated, free them with store_curve_free.
struct store_curve {
    double *steps, *values;
    int *runs;
    int n;
};

int store_label_curve(struct store *db, const char *sweep, const char *label, const char *metric,
                      struct store_curve *out);
void store_curve_free(struct store_curve *curve);

#endif
