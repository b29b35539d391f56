// Finding a run and what was recorded about it (run_lookup.c).
#ifndef PROMOE_STORE_RUN_LOOKUP_H
#define PROMOE_STORE_RUN_LOOKUP_H

#include <stddef.h>

struct store;

enum { STORE_RUN_ID_CAPACITY = 64 };

// The run whose id starts with prefix, into run_id (capacity STORE_RUN_ID_CAPACITY). Errors: no
// such run, or several (the message names them) (run_lookup.c).
int store_resolve_run(struct store *db, const char *prefix, char *run_id);
// The canonical resolved config of a run (*yaml allocated, the caller frees it).
int store_run_config(struct store *db, const char *run_id, char **yaml);
// The value of config key `key` recorded for a run (into out); 1 found, 0 not, -1 error.
int store_run_param(struct store *db, const char *run_id, const char *key, char *out, size_t capacity);

// Inside the store: records "cannot read the <what> of run '<run_id>' from database '<path>':
// <sqlite message>" and returns -1.
int store_read_failed(struct store *db, const char *what, const char *run_id);

#endif
