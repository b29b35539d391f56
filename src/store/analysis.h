// The analysis tables of the results database (schema version 3, migrate.c) and the class-routing
// counts the analysis commands read. Rows are written in one transaction per call; a rerun overwrites
// (upsert), so analysing the same checkpoint twice never duplicates rows.
#ifndef PROMOE_STORE_ANALYSIS_H
#define PROMOE_STORE_ANALYSIS_H

#include <stdint.h>

#include "store/db.h"

// `diversity` rows: layer -1 holds the mean over the model's MoE layers.
struct diversity_row {
    int layer, k;
    const char *variant;   // 'out', 'in', or with shared/unconditional experts 'out+all', 'in+all'
    double value;
};
int store_diversity(struct store *db, const char *run_id, int64_t step, const struct diversity_row *rows, int n);

// `token_stats` rows of one layer, model time t and token count.
struct token_stat_row {
    const char *variant;   // 'centroid' | 'pairwise'
    const char *metric;    // 'inter' | 'intra' | 'ratio'
    double value;
};
int store_token_stats(struct store *db, const char *run_id, int64_t step, int layer, double t,
                      int64_t n_tokens, const struct token_stat_row *rows, int n);

// `specialisation` rows (NaN stored as NULL).
struct specialisation_row {
    int layer;
    const char *metric;
    double value;
};
int store_specialisation(struct store *db, const char *run_id, int64_t step,
                         const struct specialisation_row *rows, int n);

// `class_routing` rows of a run at one step (step < 0: the latest step that has rows). *rows is
// allocated (the caller frees it); *n = 0 and *step_out = -1 when the run has none.
struct class_routing_row {
    int layer, class_id, expert;
    int64_t tokens;
};
int store_class_routing_read(struct store *db, const char *run_id, int64_t step, int64_t *step_out,
                             struct class_routing_row **rows, int *n);

#endif
