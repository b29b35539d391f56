// Sample-quality rows of the `evals` table (one per run, step, weights, cfg scale, sampler,
// sampler steps, sample count, reference and metric; written again = replaced),.
#ifndef PROMOE_STORE_EVALS_H
#define PROMOE_STORE_EVALS_H

#include <stddef.h>
#include <stdint.h>

#include "store/db.h"

struct eval_row {
    const char *run_id;
    int64_t step;
    const char *weights;       // "ema"
    double cfg_scale;
    const char *sampler;       // "euler" (rf), "ddpm"; "-pass<P>" appended for DiffMoE (sample.batch)
    int sampler_steps;
    int64_t n_samples;
    const char *reference;     // "fmnist-train", "VIRTUAL_imagenet256_labeled"
    const char *metric;        // harness: fd, is, precision, recall; evaluator: fid, sfid, ...
    double value;              // NaN is stored as NULL
    const char *source;        // "harness", "adm-evaluator"
    int64_t sample_seed;       // < 0: NULL
    double wall_s;             // NaN: NULL
};

// Upserts rows [n] in one transaction.
int store_evals(struct store *db, const struct eval_row *rows, int n);

#endif
