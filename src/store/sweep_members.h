// The runs of a sweep (sweep_members.c), as the report reads them: whether a sweep has runs, its
// run labels, per-label summaries, a label's done runs, the runs of a scaling figure and the runs
// of a table row. Rows come back as plain C arrays; no SQL leaves the store.
#ifndef PROMOE_STORE_SWEEP_MEMBERS_H
#define PROMOE_STORE_SWEEP_MEMBERS_H

#include <stddef.h>

struct store;

enum { STORE_LABEL_CAPACITY = 128, STORE_TEXT_CAPACITY = 64 };

// 1 when the sweep has any run, 0 when not or when the database cannot say.
int store_sweep_has_runs(struct store *db, const char *sweep);

// The run labels of a sweep (a run without a label counts under its id), in the order of their
// first run in the sweep. label[n] is allocated; free it with store_labels_free.
struct store_labels {
    char (*label)[STORE_LABEL_CAPACITY];
    int n;
};
int store_sweep_labels(struct store *db, const char *sweep, struct store_labels *out);
void store_labels_free(struct store_labels *labels);

// One label of a sweep: its runs, how many are done, the means of their parameter counts and
// images per second, and their training seconds summed (NULL counted as 0).
// train_s: training seconds summed over the runs (each over its attempts); wall_s: the done runs'
// attempts from start to end, validation and evaluation included; threads: the done runs' range.
struct store_label_summary {
    char label[STORE_TEXT_CAPACITY];
    int runs, done, min_threads, max_threads;
    double params_total, params_active, img_per_s, train_s, wall_s;
};
// The first `capacity` labels of a sweep in first-run order, into rows [*n].
int store_sweep_label_summaries(struct store *db, const char *sweep, struct store_label_summary *rows,
                                int capacity, int *n);

// The done runs of one label of a sweep by seed: ids [*n] and seeds [*n], at most capacity.
int store_label_done_runs(struct store *db, const char *sweep, const char *label,
                          char (*ids)[STORE_TEXT_CAPACITY], long long *seeds, int capacity, int *n);

// A run of a scaling sweep: its id, label, activated parameters (has_params_active 0 when NULL) and
// its model.moe.experts text ("" when the config has none).
struct store_scaling_run {
    char run_id[STORE_TEXT_CAPACITY], label[STORE_LABEL_CAPACITY], experts[STORE_TEXT_CAPACITY];
    double params_active;
    int has_params_active;
};
// The runs of a sweep in sweep order; rows[n] allocated, the caller frees *rows.
int store_sweep_scaling_runs(struct store *db, const char *sweep, struct store_scaling_run **rows, int *n);

// A run that matches a table row: id, status, steps done, and its train.seed ("" when absent)
// and train.steps ("?" when absent) as stored.
struct store_row_run {
    char run_id[STORE_TEXT_CAPACITY], status[STORE_TEXT_CAPACITY], seed[STORE_TEXT_CAPACITY],
        steps[STORE_TEXT_CAPACITY];
    long long step_done;
};
// The runs of a sweep, in sweep order, whose params hold every (keys[w], values[w]) pair, w < n_where,
// or, where or_absent[w] is set (or_absent may be NULL), have no params row for keys[w] at all (a key
// left out of a run's params at its default value): at most capacity into rows [*n]. Returns 1 when
// more runs matched than capacity, 0, or -1 on error ("row query: <reason>").
int store_sweep_matching_runs(struct store *db, const char *sweep, const char *const *keys,
                              const char *const *values, const int *or_absent, int n_where,
                              struct store_row_run *rows, int capacity, int *n);

#endif
