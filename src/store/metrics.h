// Metric rows (metrics.c): buffered, then committed with the run's heartbeat by store_flush.
#ifndef PROMOE_STORE_METRICS_H
#define PROMOE_STORE_METRICS_H

#include <stdint.h>

struct store;

// Buffers one metric row (upserted on flush). NaN is stored as NULL.
int store_metric(struct store *db, const char *run_id, const char *name, int64_t step, double value);

// Commits buffered rows and the heartbeat/step_done of run_id in one transaction.
int store_flush(struct store *db, const char *run_id, int64_t step_done);

// Inside the store: writes every pending metric row (inside a transaction body).
int store_write_pending(struct store *db);

#endif
