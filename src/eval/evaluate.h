// Mini-scale sample quality of a model: n samples per cfg scale (labels cycling through the
// classes, the model's bound weights, normally the EMA weights), scored by the Fashion-MNIST
// feature network against the training set: Frechet distance to the training statistics ("fd"),
// the inception-style score ("is"), k-NN precision / recall against n training images chosen
// by a fixed permutation, and the share of samples the network classifies as their label
// ("class_acc"). Five `evals` rows per cfg scale (reference fmnist-train, source
// harness). Used by `promoe eval` and by training with eval.every.
#ifndef PROMOE_EVALUATE_H
#define PROMOE_EVALUATE_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "model/dit.h"
#include "store/db.h"

enum { EVAL_MAX_CFG = 16 };

struct eval_request {
    const char *run_id;
    int64_t step;             // the checkpoint's step
    double cfg_scales[EVAL_MAX_CFG];
    int n_cfg;
    int n;                    // samples per cfg scale (and real reference images)
    int steps;                // sampler steps
    uint64_t seed;            // sampler seed
    const char *featnet_dir;  // feature network cache folder
};

struct eval_figures {
    double cfg, fd, is, precision, recall, class_acc, wall_s;
};

// Fails with a message pointing to the npz export and import-eval when the run's data is not
// 28x28 single-channel Fashion-MNIST (optionally padded).
int eval_supported(const struct config *cfg);
// Parses "1.0,1.5" into r->cfg_scales; errors name `what` (a key or option).
int eval_parse_cfg_list(const char *text, const char *what, struct eval_request *r);
// The feature network folder beside a database: dirname(db_path)/featnet (out: 1024 bytes).
void eval_featnet_dir(const char *db_path, char *out);   // out: IO_PATH_MAX bytes (io/path.h)
// The sampler's name in `evals` at guidance `scale`: "euler" (rf) or "ddpm", with "-pass<P>" appended
// when the router's inference depends on the pass (DiffMoE), so evaluations with other passes stay apart.
void eval_sampler_name(const struct dit *m, const struct config *cfg, double scale, char *out, size_t size);
// Evaluates and writes the rows; figures [r->n_cfg] (may be NULL). The test accuracy of the
// feature network goes to *featnet_accuracy (may be NULL).
int eval_model(struct dit *m, const struct config *cfg, const struct eval_request *r, struct store *db,
               struct eval_figures *figures, double *featnet_accuracy);

// The FD a perfect model would score: n real test images (the first n of the test split) against
// the training statistics, with the feature network's class accuracy on them; n as in an evaluation,
// since the Frechet distance of n samples is biased upwards as n shrinks.
int eval_fd_floor(const char *data_dir, const char *featnet_dir, int n, double *fd, double *class_acc);

#endif
