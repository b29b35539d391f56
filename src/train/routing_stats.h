// Routing statistics of the last training forward, written to the database at log steps: per MoE
// layer and expert the tokens of conditional and unconditional samples and gate sums (`routing`),
// per layer, class and expert the token counts (`class_routing`, the null label as class
// num_classes), and per layer the load imbalance (coefficient of variation and max/mean of the
// routed experts' token counts), the entropy of the assignment (nats) and dropped slots (metrics
// "moe/L<layer>/cv", ".../max_over_mean", ".../entropy", ".../dropped").
#ifndef PROMOE_ROUTING_STATS_H
#define PROMOE_ROUTING_STATS_H

#include <stdint.h>

#include "model/dit.h"
#include "store/db.h"

struct layer_balance {
    double cv, max_over_mean, entropy;
};

// Balance figures of one layer's last plan over its routed experts.
struct layer_balance routing_balance_of(const struct moe_layer *L, int T);

// Rows of every MoE layer's last plan, summed over data-parallel ranks (every rank calls it; only
// the writer passes a db, the others NULL), buffered in db (written by the next store_flush).
int routing_stats_write(struct store *db, const char *run_id, int64_t step, const struct dit *m);

#endif
