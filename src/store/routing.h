// Routing and class-routing rows (routing.c), buffered and written by the next flush.
#ifndef PROMOE_STORE_ROUTING_H
#define PROMOE_STORE_ROUTING_H

#include <stdint.h>

struct store;

// Buffers one `routing` row (layer, expert; t_bin -1) and one per class of `class_routing`
// (class_id >= 0: only tokens_cond is used, as the token count); written by the next flush.
int store_routing(struct store *db, const char *run_id, int64_t step, int layer, int expert,
                  int64_t tokens_cond, int64_t tokens_uncond, double gate_sum, double gate_sumsq,
                  int64_t dropped);
int store_class_routing(struct store *db, const char *run_id, int64_t step, int layer, int class_id,
                        int expert, int64_t tokens);

// Inside the store: writes every pending routing and class-routing row (inside a transaction body).
int store_write_routing(struct store *db);

#endif
