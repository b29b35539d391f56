// One evaluation: for each cfg scale, sample, crop to the feature network's 28x28 frame, take
// features and class probabilities, and score them; then write all rows in one transaction.
#include "eval/evaluate.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/error.h"
#include "core/rng.h"
#include "diffusion/sampler.h"
#include "eval/featnet_cache.h"
#include "eval/frechet.h"
#include "eval/sample_scores.h"
#include "io/path.h"
#include "moe/registry.h"
#include "store/evals.h"

// Seed of the permutation that picks the real reference images of precision / recall.
static const uint64_t REFERENCE_SEED = 7;
static const char REFERENCE[] = "fmnist-train";
enum { METRICS_PER_CFG = 5, SAMPLER_NAME_MAX = 32 };

int eval_supported(const struct config *cfg)
{
    if (strcmp(cfg->data_name, "fashion-mnist") != 0 || cfg->channels != 1 || cfg->image_size != FEATNET_SIZE)
        return err("the harness metrics need the Fashion-MNIST feature network (28x28, 1 channel); this run's data "
                   "is '%s' (%d channels, %d pixels): export samples with 'promoe sample CKPT --out FILE.npz', run "
                   "the guided-diffusion evaluator on it, and load its output with 'promoe import-eval RUN FILE'",
                   cfg->data_name, cfg->channels, cfg->image_size);
    return 0;
}

int eval_parse_cfg_list(const char *text, const char *what, struct eval_request *r)
{
    r->n_cfg = 0;
    const char *p = text;
    while (*p) {
        char *end;
        errno = 0;
        double v = strtod(p, &end);
        if (end == p || errno || !(v >= 0) || (*end && *end != ','))
            return err("%s: '%s' is not a comma-separated list of cfg scales >= 0", what, text);
        if (r->n_cfg == EVAL_MAX_CFG) return err("%s: more than %d cfg scales", what, EVAL_MAX_CFG);
        r->cfg_scales[r->n_cfg++] = v;
        p = *end ? end + 1 : end;
    }
    if (!r->n_cfg) return err("%s: no cfg scale given", what);
    return 0;
}

void eval_featnet_dir(const char *db_path, char *out)
{
    const char *slash = strrchr(db_path, '/');
    if (!slash) snprintf(out, IO_PATH_MAX, "featnet");
    else snprintf(out, IO_PATH_MAX, "%.*s/featnet", (int)(slash - db_path), db_path);
}

// out [n, 28, 28]: the centre of images [n, 1, S, S] (S >= 28; padding is centred).
static void crop(const real *images, int n, int S, real *out)
{
    int margin = (S - FEATNET_SIZE) / 2;
    for (int i = 0; i < n; i++)
        for (int y = 0; y < FEATNET_SIZE; y++)
            memcpy(out + ((size_t)i * FEATNET_SIZE + y) * FEATNET_SIZE,
                   images + ((size_t)i * S + y + margin) * S + margin, sizeof(real) * FEATNET_SIZE);
}

// Features [n, 128] of n training images picked by a fixed permutation.
static int reference_features(struct feature_model *fm, const char *data_dir, int n, real *features)
{
    real *images, *picked;
    int *labels, total;
    if (fmnist_load(data_dir, "train", &images, &labels, &total) < 0) return -1;
    if (n > total) n = total;
    const size_t image = FEATNET_SIZE * FEATNET_SIZE;
    picked = malloc(sizeof(real) * n * image);
    uint32_t *order = malloc(sizeof(uint32_t) * total);
    int rc = picked && order ? 0 : err("out of memory for %d reference images", n);
    if (!rc) {
        struct rng g;
        rng_init(&g, REFERENCE_SEED, 0, RNG_SHUFFLE, 0);
        for (int i = 0; i < total; i++) order[i] = (uint32_t)i;
        for (int i = 0; i < n; i++) {
            uint32_t j = i + rng_below(&g, (uint32_t)(total - i)), t = order[i];
            order[i] = order[j], order[j] = t;
            memcpy(picked + i * image, images + order[i] * image, sizeof(real) * image);
        }
        feature_model_apply(fm, picked, n, features, NULL);
    }
    free(images); free(labels); free(picked); free(order);
    return rc;
}

struct buffers {
    real *samples, *cropped, *features, *probs, *real_features;
    double *mean, *cov;
};

static int score_one(struct dit *m, const struct config *cfg, const struct eval_request *r, double scale,
                     struct feature_model *fm, struct buffers *b, struct eval_figures *f)
{
    double started = clock_seconds();
    struct sample_options o = {r->n, r->steps, scale, cfg->sample_cfg_channels, r->seed, NULL};
    int S = m->shape.size;
    if (sample_images(m, cfg, &o, b->samples) < 0) return -1;
    crop(b->samples, r->n, S, b->cropped);
    feature_model_apply(fm, b->cropped, r->n, b->features, b->probs);
    gaussian_fit(b->features, r->n, FEATNET_FEATURES, b->mean, b->cov);
    f->cfg = scale;
    if (frechet_distance(b->mean, b->cov, fm->train_mean, fm->train_cov, FEATNET_FEATURES, &f->fd) < 0) return -1;
    f->is = inception_score(b->probs, r->n, FEATNET_CLASSES);
    f->class_acc = class_accuracy(b->probs, NULL, r->n, FEATNET_CLASSES);
    if (knn_precision_recall(b->real_features, r->n, b->features, r->n, FEATNET_FEATURES, PR_NEIGHBOURS,
                             &f->precision, &f->recall) < 0)
        return -1;
    f->wall_s = clock_seconds() - started;
    return 0;
}

void eval_sampler_name(const struct dit *m, const struct config *cfg, double scale, char *out, size_t size)
{
    const char *base = cfg->objective == OBJECTIVE_RF ? "euler" : "ddpm";
    const struct router_ops *router = cfg->moe_experts[0] ? router_lookup(cfg->moe_router) : NULL;
    if (router && router->pass_dependent) snprintf(out, size, "%s-pass%d", base, sample_pass(m, cfg, scale));
    else snprintf(out, size, "%s", base);
}

static int write_rows(struct store *db, const struct dit *m, const struct config *cfg,
                      const struct eval_request *r, const struct eval_figures *figures)
{
    struct eval_row rows[EVAL_MAX_CFG * METRICS_PER_CFG];
    char samplers[EVAL_MAX_CFG][SAMPLER_NAME_MAX];
    const char *names[METRICS_PER_CFG] = {"fd", "is", "precision", "recall", "class_acc"};
    int n = 0;
    for (int c = 0; c < r->n_cfg; c++) {
        const struct eval_figures *f = &figures[c];
        double values[METRICS_PER_CFG] = {f->fd, f->is, f->precision, f->recall, f->class_acc};
        eval_sampler_name(m, cfg, f->cfg, samplers[c], sizeof samplers[c]);
        for (int k = 0; k < METRICS_PER_CFG; k++)
            rows[n++] = (struct eval_row){r->run_id, r->step, "ema", f->cfg, samplers[c], r->steps, r->n,
                                          REFERENCE, names[k], values[k], "harness", (int64_t)r->seed, f->wall_s};
    }
    return store_evals(db, rows, n);
}

int eval_model(struct dit *m, const struct config *cfg, const struct eval_request *r, struct store *db,
               struct eval_figures *figures, double *featnet_accuracy)
{
    if (eval_supported(cfg) < 0) return -1;
    if (r->n <= PR_NEIGHBOURS || r->n_cfg < 1 || r->n_cfg > EVAL_MAX_CFG)
        return err("evaluation needs more than %d samples and 1 to %d cfg scales", PR_NEIGHBOURS, EVAL_MAX_CFG);
    struct feature_model fm;
    if (feature_model_obtain(&fm, r->featnet_dir, cfg->data_path) < 0) return err_context("feature network");
    if (featnet_accuracy) *featnet_accuracy = fm.test_accuracy;
    int S = m->shape.size, D = FEATNET_FEATURES;
    struct buffers b = {
        malloc(sizeof(real) * (size_t)r->n * S * S), malloc(sizeof(real) * (size_t)r->n * FEATNET_SIZE * FEATNET_SIZE),
        malloc(sizeof(real) * (size_t)r->n * D), malloc(sizeof(real) * (size_t)r->n * FEATNET_CLASSES),
        malloc(sizeof(real) * (size_t)r->n * D), malloc(sizeof(double) * D), malloc(sizeof(double) * D * D)};
    struct eval_figures local[EVAL_MAX_CFG];
    int rc = b.samples && b.cropped && b.features && b.probs && b.real_features && b.mean && b.cov
                 ? 0 : err("out of memory evaluating %d samples", r->n);
    int training = m->training;
    m->training = 0;
    if (!rc) rc = reference_features(&fm, cfg->data_path, r->n, b.real_features);
    for (int c = 0; !rc && c < r->n_cfg; c++) rc = score_one(m, cfg, r, r->cfg_scales[c], &fm, &b, &local[c]);
    m->training = training;
    if (!rc) rc = write_rows(db, m, cfg, r, local);
    if (!rc && figures) memcpy(figures, local, sizeof(struct eval_figures) * r->n_cfg);
    free(b.samples); free(b.cropped); free(b.features); free(b.probs); free(b.real_features);
    free(b.mean); free(b.cov);
    feature_model_free(&fm);
    return rc;
}

int eval_fd_floor(const char *data_dir, const char *featnet_dir, int n, double *fd, double *class_acc)
{
    struct feature_model fm;
    real *images = NULL, *features = NULL, *probs = NULL;
    int *labels = NULL, total = 0;
    double mean[FEATNET_FEATURES], *cov = malloc(sizeof(double) * FEATNET_FEATURES * FEATNET_FEATURES);
    if (!cov) return err("out of memory");
    if (feature_model_obtain(&fm, featnet_dir, data_dir) < 0) return free(cov), err_context("feature network");
    int rc = fmnist_load(data_dir, "t10k", &images, &labels, &total);
    if (!rc && (n < 2 || n > total)) rc = err("FD floor: n = %d test images, the test split has %d", n, total);
    if (!rc) {
        features = malloc(sizeof(real) * (size_t)n * FEATNET_FEATURES);
        probs = malloc(sizeof(real) * (size_t)n * FEATNET_CLASSES);
        if (!features || !probs) rc = err("out of memory for %d test images", n);
    }
    if (!rc) {
        feature_model_apply(&fm, images, n, features, probs);
        gaussian_fit(features, n, FEATNET_FEATURES, mean, cov);
        rc = frechet_distance(mean, cov, fm.train_mean, fm.train_cov, FEATNET_FEATURES, fd);
        *class_acc = class_accuracy(probs, labels, n, FEATNET_CLASSES);
    }
    free(images); free(labels); free(features); free(probs); free(cov);
    feature_model_free(&fm);
    return rc;
}
