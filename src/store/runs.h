// The runs, attempts, params and checkpoints rows of a run's life (runs.c).
#ifndef PROMOE_STORE_RUNS_H
#define PROMOE_STORE_RUNS_H

#include <stdint.h>

struct store;
struct sqlite3_stmt;

// What the runs row records about a run when it starts or resumes.
struct run_info {
    const char *run_id;       // 16 hex digits
    const char *config_sha256;
    const char *config_yaml;  // canonical resolved config
    const char *label;        // may be NULL
    int64_t seed;
    int threads;
    int64_t params_total, params_active;
    int64_t from_step;        // 0 for a fresh run, the checkpoint step when resuming
    int world_size;           // data-parallel ranks (0 is read as 1)
};

// Inserts or updates the runs row (status 'running', host, pid, code version, timings) and adds
// an attempts row starting at info->from_step. When resuming, metric rows with step > from_step
// are deleted in the same transaction (they will be written again).
int store_run_begin(struct store *db, const struct run_info *info);

// Records a checkpoint file of a run.
int store_checkpoint(struct store *db, const char *run_id, int64_t step, const char *kind,
                     const char *path, int64_t bytes, const char *sha256);

// Ends the current attempt and sets the run status ('done', 'failed', 'nan', 'interrupted') with
// an error text (may be NULL) and timings.
int store_run_end(struct store *db, const char *run_id, const char *status, const char *error,
                  double train_s, double img_per_s);

// Reads a run's status (into status, capacity 16) and step_done; returns 1 if found, 0 if not.
int store_run_status(struct store *db, const char *run_id, char *status, int64_t *step_done);

// Latest checkpoint of a run of the given kind: path (capacity IO_PATH_MAX, io/path.h) and step; 1 found, 0 not.
int store_latest_checkpoint(struct store *db, const char *run_id, const char *kind, char *path,
                            int64_t *step);

// Inside the store: binds the run id (index 1, bound by the caller) and inserts one params row
// per "key: value" line of a canonical config text (indexes 2 and 3); SQLite result code, or -1 with a message.
int store_insert_params(const char *config_yaml, struct sqlite3_stmt *stmt);

#endif
