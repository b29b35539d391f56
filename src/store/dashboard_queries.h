// The read-only queries behind `promoe serve` (src/serve/): runs with their progress and key
// figures, sweeps, metric curves, routing statistics and the analysis tables, each returned as a
// cJSON value built from the rows (column names become keys, NULL becomes null). Every query is
// parameterised. Connections are opened read-only: in WAL mode a reader never blocks a writer.
#ifndef PROMOE_STORE_DASHBOARD_QUERIES_H
#define PROMOE_STORE_DASHBOARD_QUERIES_H

#include <stddef.h>

#include <cjson/cJSON.h>

struct store;

enum {
    DASH_BUSY_TIMEOUT_MS = 2000,   // a reader waits this long for a writer's WAL recovery
    DASH_RUNS_MAX = 5000,          // rows of one runs listing
    DASH_PARAMS_SHOWN = 8,         // varying config keys shown beside each run
    DASH_CURVE_POINTS_MAX = 4000,  // points of one curve; longer curves are thinned evenly
    DASH_ROWS_MAX = 100000,        // rows of any other answer
};

// Opens the promoe database at path read-only (the file must exist; it is never created or
// migrated) and refuses a file that is not a promoe database. The caller closes *out with dash_close.
int dash_open(const char *path, struct store **out);
void dash_close(struct store *db);

// Which runs a listing shows; NULL fields do not filter. A param filter matches a config key, and
// its value either as stored (canonical text) or as a string without its quotes.
struct dash_run_filter {
    const char *sweep, *status, *param_key, *param_value;
};

// The runs that pass the filter, oldest first: run_id, label, status, step_done, steps, loss,
// val_loss, fd, is_score, eval_cfg, img_per_s, train_s, heartbeat_ms, sweeps (comma-separated),
// and params: the config keys whose values differ between these runs (at most DASH_PARAMS_SHOWN).
int dash_runs(struct store *db, const struct dash_run_filter *filter, cJSON **out);
// {sweeps: the sweep_progress view's rows, statuses: [{status, runs}]}.
int dash_overview(struct store *db, cJSON **out);
// 1 when the run exists, 0 when not, -1 on error.
int dash_run_exists(struct store *db, const char *run_id);
// One run: its summary row, config text, final evaluations, attempts and checkpoints. *out is
// NULL (and 0 returned) when there is no such run.
int dash_run_detail(struct store *db, const char *run_id, cJSON **out);
// The metric names recorded by any of the runs, sorted.
int dash_metric_names(struct store *db, const char *const *run_ids, int n_runs, cJSON **out);
// A run's metric as [[step, value], ...] by step, at most max_points (evenly thinned, last kept).
int dash_curve(struct store *db, const char *run_id, const char *metric, int max_points, cJSON **out);
// Per MoE layer, each expert's share of the layer's conditional tokens at every recorded step:
// [{layer, steps: [s0, s1, ...], share: [[expert 0, expert 1, ...] at s0, ...]}, ...].
int dash_routing_share(struct store *db, const char *run_id, cJSON **out);
// Per MoE layer, the class-by-expert token counts of the last recorded step:
// [{layer, step, classes: [c0, c1, ...], tokens: [[expert 0, expert 1, ...] of c0, ...]}, ...].
int dash_class_routing(struct store *db, const char *run_id, cJSON **out);
// The rows of the analysis tables of a run: diversity (step, layer, k, variant, value),
// token_stats (step, layer, t, n_tokens, variant, metric, value) and specialisation.
int dash_analysis_rows(struct store *db, const char *run_id, cJSON **out);
// The folder of a run's files: its ckpt.dir param joined with its id, into out. 1 found, 0 no
// such run or no ckpt.dir, -1 error.
int dash_run_folder(struct store *db, const char *run_id, char *out, size_t capacity);

#endif
