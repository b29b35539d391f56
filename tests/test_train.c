// End-to-end training on Fashion-MNIST with tiny models: the same config and seed give
// bit-identical losses and weights; 1 and 2 threads agree bit for bit, also when a run switches
// from 1 to 2 threads between steps (a sweep's threads file); a run stopped at step 6 and
// resumed equals the uninterrupted run; training lowers the loss (rf and ddpm); a non-finite loss
// stops the run with status 'failed' and keeps the last checkpoint.
#include <omp.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "runs.h"
#include "core/error.h"
#include "core/gemm_bf16.h"
#include "data/npy.h"
#include "model/safetensors.h"
#include "train/trainer.h"

static char tmp_dir[] = "/tmp/promoe_test_train_XXXXXX";

static void tiny_config(struct config *cfg, const char *tag)
{
    config_defaults(cfg);
    const char *sets[] = {"model.hidden=32", "model.depth=2", "model.heads=2", "model.patch=7",
                          "train.batch_size=16", "train.steps=12", "train.lr=1e-3", "log.every=1",
                          "ckpt.every=4", "sample.n=0", "train.ema_decay=0.9"};
    for (size_t i = 0; i < sizeof sets / sizeof *sets; i++)
        if (config_set(cfg, sets[i]) < 0) fprintf(stderr, "config_set: %s\n", err_message());
    snprintf(cfg->ckpt_dir, sizeof cfg->ckpt_dir, "%s/%s", tmp_dir, tag);
}

static int train(const struct config *cfg, const char *db_name, int resume, int stop_after,
                 struct train_result *r)
{
    char db[256];
    snprintf(db, sizeof db, "%s/%s", tmp_dir, db_name);
    struct train_options o = {.db_path = db, .resume = resume, .stop_after = stop_after};
    int rc = train_run(cfg, &o, r);
    if (rc) fprintf(stderr, "train_run: %s\n", err_message());
    return rc;
}

// The fp32 run of test_determinism, the reference of test_bf16.
static char first[8192];
static struct train_result r1;

static void test_determinism(void)
{
    static char second[8192], one_thread[8192], resumed[8192];
    struct config cfg;
    struct train_result r2, r3, r4;
    tiny_config(&cfg, "a");
    CHECK(train(&cfg, "a.db", 0, 0, &r1) == 0, "first run");
    run_losses(tmp_dir, "a.db", r1.run_id, first, sizeof first);
    tiny_config(&cfg, "b");
    CHECK(train(&cfg, "b.db", 0, 0, &r2) == 0, "second run");
    run_losses(tmp_dir, "b.db", r2.run_id, second, sizeof second);
    CHECK(strcmp(first, second) == 0 && first[0], "same seed, different losses:\n%s---\n%s", first, second);
    CHECK(same_tensors(r1.checkpoint, r2.checkpoint), "same seed, different weights");

    tiny_config(&cfg, "c");
    cfg.threads = 1;
    CHECK(train(&cfg, "c.db", 0, 0, &r3) == 0, "one-thread run");
    omp_set_num_threads(2);
    run_losses(tmp_dir, "c.db", r3.run_id, one_thread, sizeof one_thread);
    CHECK(strcmp(first, one_thread) == 0, "1 and 2 threads differ:\n%s---\n%s", first, one_thread);
    CHECK(same_tensors(r1.checkpoint, r3.checkpoint), "1 and 2 threads give different weights");

    tiny_config(&cfg, "d");
    CHECK(train(&cfg, "d.db", 0, 6, &r4) == 0, "interrupted run");
    CHECK(r4.steps_done == 6, "stopped after %lld steps", (long long)r4.steps_done);
    CHECK(train(&cfg, "d.db", 1, 0, &r4) == 0, "resumed run");
    CHECK(r4.steps_done == 12, "resumed run ended at %lld", (long long)r4.steps_done);
    run_losses(tmp_dir, "d.db", r4.run_id, resumed, sizeof resumed);
    CHECK(strcmp(first, resumed) == 0, "resumed run differs:\n%s---\n%s", first, resumed);
    CHECK(same_tensors(r1.checkpoint, r4.checkpoint), "resumed run gives different weights");
    CHECK(train(&cfg, "d.db", 1, 0, &r4) == 0 && r4.already_done, "resuming a finished run trains again");

    // A sweep widens a run through <ckpt.dir>/<run id>/threads: a one-thread run switches to 2
    // threads between steps and still gives the same losses and weights.
    static char widened[8192];
    struct train_result r5;
    tiny_config(&cfg, "e");
    cfg.threads = 1;
    CHECK(train(&cfg, "e.db", 0, 3, &r5) == 0 && r5.steps_done == 3, "first 3 steps on one thread");
    char path[sizeof cfg.ckpt_dir + 32];
    snprintf(path, sizeof path, "%s/%s/threads", cfg.ckpt_dir, r5.run_id);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL, "cannot write %s", path);
    if (f) fprintf(f, "2\n"), fclose(f);
    CHECK(train(&cfg, "e.db", 1, 0, &r5) == 0 && r5.steps_done == 12, "widened run");
    int expected = omp_get_num_procs() >= 2 ? 2 : 1;   // capped at the processors available
    CHECK(omp_get_max_threads() == expected, "the run took %d threads, its threads file %d",
          omp_get_max_threads(), expected);
    omp_set_num_threads(2);
    run_losses(tmp_dir, "e.db", r5.run_id, widened, sizeof widened);
    CHECK(strcmp(first, widened) == 0, "widened run differs:\n%s---\n%s", first, widened);
    CHECK(same_tensors(r1.checkpoint, r5.checkpoint), "widened run gives different weights");
}

// The last logged loss in a run_losses text ("step value" lines).
static double last_loss(const char *losses)
{
    const char *end = losses + strlen(losses), *line = end;
    while (line > losses && line[-1] == '\n') line--;
    while (line > losses && line[-1] != '\n') line--;
    long step;
    double value;
    return sscanf(line, "%ld %lf", &step, &value) == 2 ? value : NAN;
}

// train.precision bf16: two runs and a one-thread run give the same losses and weights (the bf16
// products split rows and columns over threads, never k); the weights differ from fp32's (the
// products are bf16) while the final loss stays within 2% of it.
static void test_bf16(void)
{
    if (!gemm_bf16_supported()) {
        printf("test_train: bf16 runs skipped: this processor has no AVX512-BF16\n");
        return;
    }
    static char losses[3][8192];
    struct config cfg;
    struct train_result r[3];
    for (int i = 0; i < 3; i++) {
        char tag[8];
        snprintf(tag, sizeof tag, "bf%d", i);
        tiny_config(&cfg, tag);
        cfg.precision = PRECISION_BF16;
        if (i == 2) cfg.threads = 1;
        snprintf(tag, sizeof tag, "bf%d.db", i);
        struct train_result one;
        CHECK(train(&cfg, tag, 0, 0, &one) == 0, "bf16 run %d", i);
        omp_set_num_threads(2);
        run_losses(tmp_dir, tag, one.run_id, losses[i], sizeof losses[i]);
        r[i] = one;
    }
    CHECK(strcmp(losses[0], losses[1]) == 0 && losses[0][0], "bf16, same seed, different losses");
    CHECK(same_tensors(r[0].checkpoint, r[1].checkpoint), "bf16, same seed, different weights");
    CHECK(strcmp(losses[0], losses[2]) == 0, "bf16, 1 and 2 threads differ:\n%s---\n%s", losses[0], losses[2]);
    CHECK(same_tensors(r[0].checkpoint, r[2].checkpoint), "bf16, 1 and 2 threads give different weights");
    CHECK(strcmp(r[0].run_id, r1.run_id) != 0, "bf16 and fp32 share the run id %s", r1.run_id);
    CHECK(strcmp(losses[0], first) != 0, "bf16 losses equal fp32's: products not in bf16?");
    double bf16 = last_loss(losses[0]), fp32 = last_loss(first);
    CHECK(fabs(bf16 - fp32) <= 0.02 * fp32, "final loss bf16 %.6f, fp32 %.6f", bf16, fp32);
}

// Mean loss of the last `window` logged steps over the first `window`.
static double loss_ratio(const char *db_name, const char *run_id, int window)
{
    char path[256], sql[512];
    snprintf(path, sizeof path, "%s/%s", tmp_dir, db_name);
    snprintf(sql, sizeof sql,
             "SELECT (SELECT avg(value) FROM (SELECT value FROM metrics WHERE run_id='%s' AND name='loss' "
             "ORDER BY step DESC LIMIT %d)) / (SELECT avg(value) FROM (SELECT value FROM metrics WHERE "
             "run_id='%s' AND name='loss' ORDER BY step LIMIT %d))", run_id, window, run_id, window);
    sqlite3 *db;
    sqlite3_stmt *st;
    double ratio = -1;
    if (sqlite3_open(path, &db) == SQLITE_OK && sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW) ratio = sqlite3_column_double(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return ratio;
}

static void test_loss_decreases(const char *objective, double max_ratio)
{
    struct config cfg;
    struct train_result r;
    char set[64], tag[32];
    snprintf(tag, sizeof tag, "learn-%s", objective);
    tiny_config(&cfg, tag);
    snprintf(set, sizeof set, "objective=%s", objective);
    config_set(&cfg, set);
    config_set(&cfg, "model.hidden=64");
    config_set(&cfg, "train.steps=300");
    config_set(&cfg, "train.batch_size=32");
    config_set(&cfg, "ckpt.every=0");
    CHECK(train(&cfg, "learn.db", 0, 0, &r) == 0, "%s training run", objective);
    double ratio = loss_ratio("learn.db", r.run_id, 30);
    printf("%s: loss %.4f -> %.4f, last/first 30-step mean ratio %.3f\n", objective, r.first_loss,
           r.last_loss, ratio);
    CHECK(ratio > 0 && ratio < max_ratio, "%s: loss ratio %.3f is not below %.2f", objective, ratio, max_ratio);
}

// A data set with one NaN example: the step that draws it gets a NaN loss.
static void write_nan_dataset(const char *latents, const char *labels)
{
    enum { N = 64, S = 8 };
    static float x[N * S * S];
    static int64_t y[N];
    for (int i = 0; i < N * S * S; i++) x[i] = (float)((i * 7919) % 200) / 100.0f - 1.0f;
    for (int i = 0; i < N; i++) y[i] = i % 10;
    x[37 * S * S + 5] = NAN;
    int64_t shape[4] = {N, 1, S, S}, label_shape[1] = {N};
    npy_write(latents, NPY_F32, 4, shape, x);
    npy_write(labels, NPY_I64, 1, label_shape, y);
}

static int64_t checkpoint_step(const char *path)
{
    struct st_file *f;
    if (st_open(path, &f) < 0) return -1;
    const char *step = st_meta_get(f, "promoe.step");
    int64_t value = step ? strtoll(step, NULL, 10) : -1;
    st_close(f);
    return value;
}

static void test_divergence(void)
{
    struct config cfg;
    struct train_result r;
    tiny_config(&cfg, "nan");
    snprintf(cfg.data_path, sizeof cfg.data_path, "%s/nan_x.npy", tmp_dir);
    snprintf(cfg.data_labels, sizeof cfg.data_labels, "%s/nan_y.npy", tmp_dir);
    write_nan_dataset(cfg.data_path, cfg.data_labels);
    const char *sets[] = {"data.name=npy", "data.image_size=8", "model.patch=4", "train.steps=40",
                          "ckpt.every=1"};
    for (size_t i = 0; i < sizeof sets / sizeof *sets; i++) config_set(&cfg, sets[i]);
    int rc = train(&cfg, "nan.db", 0, 0, &r);
    CHECK(rc < 0, "a run with a NaN in its data succeeded");
    const char *at = strstr(err_message(), "at step ");
    CHECK(at != NULL && strstr(err_message(), "nan"), "message does not name nan and the step: %s", err_message());
    int64_t failed_step = at ? strtoll(at + 8, NULL, 10) : -1;
    CHECK(failed_step >= 2 && failed_step <= 4, "NaN example 37 of 64 should be drawn in steps 1-4, got %lld",
          (long long)failed_step);
    CHECK(checkpoint_step(r.checkpoint) == failed_step - 1, "last good checkpoint is at step %lld, not %lld",
          (long long)checkpoint_step(r.checkpoint), (long long)failed_step - 1);
    char path[256], status[32] = "", error[256] = "";
    snprintf(path, sizeof path, "%s/nan.db", tmp_dir);
    sqlite3 *db;
    sqlite3_stmt *st;
    if (sqlite3_open(path, &db) == SQLITE_OK &&
        sqlite3_prepare_v2(db, "SELECT status, error FROM runs", -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW) {
            snprintf(status, sizeof status, "%s", sqlite3_column_text(st, 0));
            snprintf(error, sizeof error, "%s", sqlite3_column_text(st, 1));
        }
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    CHECK(strcmp(status, "failed") == 0, "diverged run has status '%s'", status);
    CHECK(strstr(error, "at step") != NULL, "stored error does not name the step: '%s'", error);
}

int main(void)
{
    if (!mkdtemp(tmp_dir)) return 1;
    omp_set_num_threads(2);
    test_determinism();
    test_bf16();
    test_loss_decreases("rf", 0.75);
    test_loss_decreases("ddpm", 0.75);
    test_divergence();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp_dir);
    if (check_failed == 0 && system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp_dir);
    return test_summary("test_train");
}
