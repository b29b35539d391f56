// The study's measurement pieces: the learning-rate and EMA schedules (exact values at the warm-up
// and cosine boundaries), class_acc, and the held-out validation loss: the same inputs whatever
// train.seed (paired across runs), independent of the forward chunk, per-bin figures averaging to
// the total, and rows written by training at eval.val_every and the end that an interrupted and
// resumed run repeats bit for bit.
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "runs.h"
#include "core/error.h"
#include "eval/sample_scores.h"
#include "eval/validation.h"
#include "train/schedule.h"
#include "train/trainer.h"

static char tmp_dir[] = "/tmp/promoe_test_validation_XXXXXX";

static void tiny_config(struct config *cfg, const char *tag)
{
    config_defaults(cfg);
    const char *sets[] = {"model.hidden=32", "model.depth=2", "model.heads=2", "model.patch=7",
                          "train.batch_size=16", "train.steps=12", "train.lr=1e-3", "log.every=1",
                          "ckpt.every=4", "sample.n=0", "train.ema_decay=0.9", "eval.val_every=4",
                          "eval.val_n=20", "eval.val_bins=5"};
    for (size_t i = 0; i < sizeof sets / sizeof *sets; i++)
        if (config_set(cfg, sets[i]) < 0) fprintf(stderr, "config_set: %s\n", err_message());
    snprintf(cfg->ckpt_dir, sizeof cfg->ckpt_dir, "%s/%s", tmp_dir, tag);
}

static void test_schedules(void)
{
    struct config cfg;
    config_defaults(&cfg);
    cfg.lr = 1e-3, cfg.steps = 12, cfg.warmup = 4, cfg.lr_schedule = LR_COSINE;
    CHECK_NEAR(schedule_lr(&cfg, 0), 2.5e-4, 1e-18, "warm-up step 0");
    CHECK_NEAR(schedule_lr(&cfg, 3), 1e-3, 1e-18, "end of warm-up");
    CHECK_NEAR(schedule_lr(&cfg, 4), 1e-3, 1e-18, "cosine start");
    CHECK_NEAR(schedule_lr(&cfg, 8), 5e-4, 1e-15, "cosine half way");
    CHECK_NEAR(schedule_lr(&cfg, 11), 0.5e-3 * (1 + cos(M_PI * 7 / 8)), 1e-15, "cosine last step");
    cfg.lr_schedule = LR_CONSTANT;
    CHECK_NEAR(schedule_lr(&cfg, 11), 1e-3, 0, "constant after warm-up");
    cfg.warmup = 0;
    CHECK_NEAR(schedule_lr(&cfg, 0), 1e-3, 0, "no warm-up");
    cfg.ema_decay = 0.9;
    CHECK_NEAR(schedule_ema_decay(&cfg, 0), 0.9, 0, "EMA without warm-up");
    cfg.ema_warmup = 1;
    CHECK_NEAR(schedule_ema_decay(&cfg, 0), 0.1, 1e-15, "EMA warm-up: first update");
    CHECK_NEAR(schedule_ema_decay(&cfg, 20), 21.0 / 30, 1e-15, "EMA warm-up at 20");
    CHECK_NEAR(schedule_ema_decay(&cfg, 90), 0.9, 0, "EMA warm-up capped by ema_decay");
}

static void test_class_accuracy(void)
{
    enum { N = 20, K = 10 };
    real probs[N * K] = {0};
    for (int i = 0; i < N; i++) probs[i * K + (i < 10 ? i % K : (i + 1) % K)] = 1;
    CHECK_NEAR(class_accuracy(probs, NULL, N, K), 0.5, 1e-15, "half the samples labelled with their class");
    int labels[N];
    for (int i = 0; i < N; i++) labels[i] = i < 10 ? i % K : (i + 1) % K;
    CHECK_NEAR(class_accuracy(probs, labels, N, K), 1.0, 1e-15, "given labels");
}

static double loss_of(const struct config *cfg, int chunk, double *bins)
{
    struct dit m;
    struct validation v;
    double loss = NAN;
    if (dit_create(&m, cfg, chunk) < 0) return fprintf(stderr, "%s\n", err_message()), NAN;
    real *w = calloc(m.table.total, sizeof(real));
    params_init(&m.table, w, 3);   // the same weights whatever train.seed
    dit_bind_weights(&m, w);
    if (validation_open(&v, cfg, chunk) == 0) loss = validation_loss(&v, &m, bins);
    else fprintf(stderr, "%s\n", err_message());
    validation_free(&v);
    dit_destroy(&m);
    free(w);
    return loss;
}

static void test_validation_loss(void)
{
    struct config cfg;
    double bins[5], other_bins[5];
    tiny_config(&cfg, "v");
    double loss = loss_of(&cfg, 16, bins);
    CHECK(isfinite(loss) && loss > 0, "loss %g", loss);
    double mean = 0;
    for (int k = 0; k < 5; k++) mean += bins[k] / 5;
    CHECK_NEAR(loss, mean, 1e-12, "total is the mean of the bins");
    CHECK(bins[0] != bins[4], "bins differ: %g %g", bins[0], bins[4]);
    cfg.seed = 5;
    CHECK(loss_of(&cfg, 16, other_bins) == loss, "train.seed changes the validation inputs");
    CHECK_NEAR(loss_of(&cfg, 7, other_bins), loss, 1e-6 * loss, "chunk of 7 vs 16");
    cfg.objective = OBJECTIVE_DDPM;
    CHECK(isfinite(loss_of(&cfg, 16, bins)), "ddpm validation loss");
}

static void test_training_rows(void)
{
    struct config cfg;
    struct train_result whole, part;
    char db[512], a[4096], b[4096];
    tiny_config(&cfg, "w");
    snprintf(db, sizeof db, "%s/w.db", tmp_dir);
    struct train_options o = {.db_path = db};
    CHECK(train_run(&cfg, &o, &whole) == 0, "%s", err_message());
    run_metric_rows(tmp_dir, "w.db", whole.run_id, "val_loss", a, sizeof a);
    CHECK(run_query(tmp_dir, "w.db", "SELECT count(*) FROM metrics WHERE name = 'val_loss'") == 3, "val rows at 4, 8, 12:\n%s", a);
    CHECK(run_query(tmp_dir, "w.db", "SELECT count(*) FROM metrics WHERE name LIKE 'val_loss/t%'") == 15, "per-bin rows");
    tiny_config(&cfg, "r");
    snprintf(db, sizeof db, "%s/r.db", tmp_dir);
    struct train_options first = {.db_path = db, .stop_after = 6}, rest = {.db_path = db, .resume = 1};
    CHECK(train_run(&cfg, &first, &part) == 0 && train_run(&cfg, &rest, &part) == 0, "%s", err_message());
    run_metric_rows(tmp_dir, "r.db", part.run_id, "val_loss", b, sizeof b);
    CHECK(strcmp(a, b) == 0 && a[0], "resumed run's val_loss:\n%s---\n%s", a, b);
}

int main(void)
{
    if (!mkdtemp(tmp_dir)) return 1;
    test_schedules();
    test_class_accuracy();
    test_validation_loss();
    test_training_rows();
    char command[600];
    snprintf(command, sizeof command, "rm -rf %s", tmp_dir);
    if (system(command) != 0) fprintf(stderr, "could not remove %s\n", tmp_dir);
    return test_summary("test_validation");
}
