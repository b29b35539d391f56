// The results database (SQLite, WAL): runs, attempts, metrics, checkpoints, and the tables later
// parts fill (routing, class_routing, evals, diversity, sweeps). Schema in schema.sql, versioned
// with PRAGMA user_version. Writes are buffered and committed in one BEGIN IMMEDIATE transaction
// per flush, retried on SQLITE_BUSY, so several processes can write one file at once.
#ifndef PROMOE_DB_H
#define PROMOE_DB_H

#include <stddef.h>
#include <stdint.h>

struct store;

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

// Opens (creating folders, file and schema as needed) the database at path. A database of a
// newer schema version is refused with a message naming the path and both versions.
int store_open(struct store **out, const char *path);
void store_close(struct store *db);

// Inserts or updates the runs row (status 'running', host, pid, code version, timings) and adds
// an attempts row starting at info->from_step. When resuming, metric rows with step > from_step
// are deleted in the same transaction (they will be written again).
int store_run_begin(struct store *db, const struct run_info *info);

// Buffers one metric row (upserted on flush). NaN is stored as NULL.
int store_metric(struct store *db, const char *run_id, const char *name, int64_t step, double value);

// Commits buffered rows and the heartbeat/step_done of run_id in one transaction.
int store_flush(struct store *db, const char *run_id, int64_t step_done);

// Buffers one `routing` row (layer, expert; t_bin -1) and one per class of `class_routing`
// (class_id >= 0: only tokens_cond is used, as the token count); written by the next flush.
int store_routing(struct store *db, const char *run_id, int64_t step, int layer, int expert,
                  int64_t tokens_cond, int64_t tokens_uncond, double gate_sum, double gate_sumsq,
                  int64_t dropped);
int store_class_routing(struct store *db, const char *run_id, int64_t step, int layer, int class_id,
                        int expert, int64_t tokens);

// Records a checkpoint file of a run.
int store_checkpoint(struct store *db, const char *run_id, int64_t step, const char *kind,
                     const char *path, int64_t bytes, const char *sha256);

// Ends the current attempt and sets the run status ('done', 'failed', 'nan', 'interrupted') with
// an error text (may be NULL) and timings.
int store_run_end(struct store *db, const char *run_id, const char *status, const char *error,
                  double train_s, double img_per_s);

// Reads a run's status (into status, capacity 16) and step_done; returns 1 if found, 0 if not.
int store_run_status(struct store *db, const char *run_id, char *status, int64_t *step_done);

// Latest checkpoint of a run of the given kind: path (capacity 1024) and step; 1 found, 0 not.
int store_latest_checkpoint(struct store *db, const char *run_id, const char *kind, char *path,
                            int64_t *step);

enum { STORE_RUN_ID_CAPACITY = 64 };

// The run whose id starts with prefix, into run_id (capacity STORE_RUN_ID_CAPACITY). Errors: no
// such run, or several (the message names them) (run_lookup.c).
int store_resolve_run(struct store *db, const char *prefix, char *run_id);
// The canonical resolved config of a run (*yaml allocated, the caller frees it).
int store_run_config(struct store *db, const char *run_id, char **yaml);
// The value of config key `key` recorded for a run (into out); 1 found, 0 not, -1 error.
int store_run_param(struct store *db, const char *run_id, const char *key, char *out, size_t capacity);

// The underlying handle, for queries of later modules and tests.
struct sqlite3 *store_handle(struct store *db);

#endif
