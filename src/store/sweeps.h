// Sweeps in the results database: the sweeps row (name, spec text, sha256), the queued runs of a
// sweep with their params, membership in sweep_runs (a run shared by two sweeps is one row of
// runs), the state the sweep runner reads before starting a run, and the run_summary listing of
// `promoe runs`. Writes go through store_write (one BEGIN IMMEDIATE transaction each).
#ifndef PROMOE_STORE_SWEEPS_H
#define PROMOE_STORE_SWEEPS_H

#include <stdint.h>

#include "store/db.h"

// One run of a sweep as recorded before it starts.
struct store_sweep_run {
    int idx;
    const char *run_id, *label;
    const char *config_yaml, *config_sha256;  // canonical resolved config and its SHA-256
    int64_t seed;
};

// Opens an existing database for reading only (no schema change, no file created). *out is
// NULL when the file does not exist.
int store_open_readonly(struct store **out, const char *path);

// The stored spec SHA-256 of a sweep (capacity 65): 1 found, 0 not.
int store_sweep_sha(struct store *db, const char *sweep, char *sha);

// The stored members of a sweep in idx order: *run_ids is a malloc'ed array of n 17-byte ids
// (the caller frees it).
int store_sweep_members(struct store *db, const char *sweep, char (**run_ids)[17], int *n);

// In one transaction: upserts the sweeps row, inserts each run that is not in runs yet (status
// queued, with its params rows) and replaces the sweep's sweep_runs rows by these runs.
int store_sweep_record(struct store *db, const char *sweep, const char *spec_yaml,
                       const char *spec_sha256, const struct store_sweep_run *runs, int n);

// Who holds a run: status (capacity 16), host (capacity 256) and pid; 1 found, 0 not.
int store_run_owner(struct store *db, const char *run_id, char *status, char *host, int64_t *pid);

// A run still 'running' under pid (its process is gone) becomes 'interrupted'.
int store_run_mark_interrupted(struct store *db, const char *run_id, int64_t pid);

// A run still 'running' under pid whose process ended in failure without recording it (killed,
// or a write that failed) becomes 'failed' with error, and that attempt too.
int store_run_mark_failed_owned(struct store *db, const char *run_id, int64_t pid, const char *error);

// A run still 'queued' (its process failed before training began) becomes 'failed' with error.
int store_run_mark_failed(struct store *db, const char *run_id, const char *error);

// One line of `promoe runs` (run_summary view). Text fields are "" and numbers NaN when absent.
struct store_run_row {
    char run_id[17], label[256], status[16], error[512];
    int64_t step_done, steps;
    double loss, img_per_s, eval_cfg, fd, is_score;
};

// Calls row() for each run, in creation order, of sweep (NULL: all runs, else in idx order)
// whose status is status (NULL: any). Stops and returns -1 if row() does.
int store_run_list(struct store *db, const char *sweep, const char *status,
                   int (*row)(const struct store_run_row *r, void *ctx), void *ctx);

#endif
