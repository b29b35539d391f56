// The study report's questions about a sweep (study_queries.c): evaluations redrawn with another
// sampler seed, paired redraws between two labels, the expert-diversity curve of a label, the
// model width and the evaluation time spent. Rows come back as allocated C arrays.
#ifndef PROMOE_STORE_STUDY_QUERIES_H
#define PROMOE_STORE_STUDY_QUERIES_H

struct store;

// For each pair of evaluations of one run that differ only in the sampler seed (metric at cfg),
// the first minus the second: differences[n], allocated (the caller frees it).
int store_redraw_differences(struct store *db, const char *sweep, const char *metric, double cfg,
                             double **differences, int *n);

// The evaluation of a run of label_a minus that of the run of label_b with the same train.seed,
// both drawn with one sampler seed: by run seed, the pair drawn with the run's own seed first.
struct store_paired_redraw {
    long long run_seed;
    int is_own_seed;   // the sampler seed is the runs' train.seed
    double difference;
};
int store_paired_redraws(struct store *db, const char *sweep, const char *label_a, const char *label_b,
                         const char *metric, double cfg, struct store_paired_redraw **rows, int *n);

// Fig. 1b: at each k, the model-mean subspace similarity of the label's runs (each run's latest
// analysis) averaged over them, and how many runs.
struct store_diversity_point {
    int k, runs;
    double mean;
};
int store_label_diversity(struct store *db, const char *sweep, const char *label,
                          struct store_diversity_point **rows, int *n);

// The largest value of an integer param (model.hidden, train.steps) over the sweep's runs; 0 when
// none records it or the database cannot say.
long long store_sweep_int_param(struct store *db, const char *sweep, const char *key);

// The harness's distinct sample evaluations of the sweep's runs and their seconds in all.
int store_sweep_eval_time(struct store *db, const char *sweep, int *evals, double *seconds);

#endif
