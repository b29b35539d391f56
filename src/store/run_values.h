// Single figures of one run (run_values.c), the cells of tables and claims: an evaluation at a cfg
// scale, the validation loss, the model-mean expert diversity and the centroid token ratio. Each
// returns 1 with *value set, 0 when the run has no such figure, -1 on error.
#ifndef PROMOE_STORE_RUN_VALUES_H
#define PROMOE_STORE_RUN_VALUES_H

struct store;

// Evaluations whose cfg scale differs from the one asked by less than this are the same scale.
#define STORE_CFG_TOLERANCE 1e-6

// The run's evaluation of metric at cfg: at step_wanted, or (0) its latest step; then the most
// samples, then the run's own sampler seed (its train.seed), then the lowest sampler seed.
int store_run_eval(struct store *db, const char *run_id, const char *metric, double cfg,
                   long long step_wanted, double *value);
// val_loss at step_wanted, or (0) at the last step of a done run.
int store_run_val_loss(struct store *db, const char *run_id, long long step_wanted, double *value);
// The model-mean (layer -1) subspace similarity of the routed experts' outputs at k, at
// step_wanted or (0) the latest step.
int store_run_diversity(struct store *db, const char *run_id, long long step_wanted, int k, double *value);
// The centroid inter/intra-class token ratio at step_wanted or (0) the latest step, most tokens first.
int store_run_token_ratio(struct store *db, const char *run_id, long long step_wanted, double *value);

#endif
