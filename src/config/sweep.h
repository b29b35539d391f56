// Sweep files (ECOSYSTEM.md 1.4): a base config, fixed overrides (`set`), named override bundles
// (`presets`), `grid` axes (their Cartesian product), `zip` groups (lists that advance together),
// `seeds`, explicit `runs` and a `label` template; plus the W&B alias `method: grid` + `parameters`.
// sweep_load parses and expands a file into resolved configs, each with its run id, label and idx;
// every mistake is reported before anything runs, naming the file, line and column.
#ifndef PROMOE_SWEEP_H
#define PROMOE_SWEEP_H

#include "config/config.h"

enum { SWEEP_NAME_MAX = 128, SWEEP_LABEL_MAX = 256 };

struct sweep_run {
    int idx;                      // expansion position (seeds outermost, then grid, then runs)
    char run_id[17];
    char label[SWEEP_LABEL_MAX];
    struct config cfg;            // resolved and validated
    int threads_auto;             // train.threads was chosen by the sweep (cores / jobs), not the file
};

struct sweep {
    char name[SWEEP_NAME_MAX];    // `sweep:`, or the file name without folder and extension
    char *spec_text;              // the file as read (owned)
    char spec_sha256[65];
    struct sweep_run *runs;       // owned
    int n_runs;
};

// Reads, checks and expands a sweep file. `base` files are looked up as written (relative to
// the current folder, normally the repository root) and then relative to the sweep file's
// folder. On error nothing is left allocated and the message names file:line:column.
int sweep_load(struct sweep *sw, const char *path);
void sweep_free(struct sweep *sw);
// A run label becomes a file name (the report's sample grids): no '/', no control characters,
// not '.' or '..' (message names the label). Labels from a template are checked; default labels
// (axis values joined) have such characters replaced by '_'.
int sweep_label_check(const char *label);

#endif
