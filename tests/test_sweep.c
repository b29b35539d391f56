// Sweep files and `promoe sweep` / `promoe runs`: expansion count and order (the 18 + 6 = 24
// example of ECOSYSTEM.md 1.4 over a stub base), zip groups, presets, the W&B alias giving the
// same runs, label templates, every listed mistake reported with file:line:column, run ids shared
// between sweeps; then end to end with tiny runs: --dry-run writes nothing, --jobs 2 trains all,
// a second call skips all, a run stopped half-way resumes from its checkpoint, failed runs are
// retried only with --retry-failed, and a changed file needs --update.
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "config/sweep.h"
#include "core/error.h"
#include "runs.h"
#include "scratch.h"
#include "shell.h"

static char dir[] = "/tmp/promoe_test_sweep_XXXXXX";

static const char *path(const char *name) { return scratch_path(dir, name); }

static double db_value(const char *sql) { return run_query(dir, "r.db", sql); }

static const char STUB_BASE[] = "model: {hidden: 32, depth: 2, heads: 2, patch: 7}\n"
                                "train: {steps: 4, batch_size: 16}\n"
                                "sample: {n: 0}\n";

// ---- expansion --------------------------------------------------------------------------------------

static const char T7[] =
    "sweep: t7-activation-mini\n"
    "description: \"Router activation x objective\"\n"
    "base: stub.yaml\n"
    "set:\n"
    "  train.steps: 20000\n"
    "  train.lr: 1e-4\n"
    "presets:\n"
    "  rf:   {objective: rf,   sample.steps: 40}\n"
    "  ddpm: {objective: ddpm, sample.steps: 30}\n"
    "grid:\n"
    "  model.moe.activation: [softmax, sigmoid, identity]\n"
    "  preset: [rf, ddpm]\n"
    "seeds: [0, 1, 2]\n"
    "runs:\n"
    "  - {label: dense-rf,   preset: rf,   model.moe.experts: \"\"}\n"
    "  - {label: dense-ddpm, preset: ddpm, model.moe.experts: \"\", sample.steps: 25}\n"
    "label: \"{model.moe.activation}-{objective}-s{seed}\"\n";

static void test_expansion(void)
{
    scratch_writef(dir, "stub.yaml", "%s", STUB_BASE);
    scratch_writef(dir, "t7.yaml", "%s", T7);
    struct sweep sw;
    CHECK(sweep_load(&sw, path("t7.yaml")) == 0, "load: %s", err_message());
    if (!sw.runs) return;
    CHECK(sw.n_runs == 24, "18 grid + 6 dense runs, got %d", sw.n_runs);
    CHECK(strcmp(sw.name, "t7-activation-mini") == 0, "name %s", sw.name);
    static const char *const first[] = {"softmax-rf-s0", "softmax-ddpm-s0", "sigmoid-rf-s0",
                                        "sigmoid-ddpm-s0", "identity-rf-s0", "identity-ddpm-s0",
                                        "softmax-rf-s1"};
    for (int i = 0; i < 7; i++)
        CHECK(strcmp(sw.runs[i].label, first[i]) == 0, "run %d label %s, want %s", i, sw.runs[i].label, first[i]);
    CHECK(strcmp(sw.runs[17].label, "identity-ddpm-s2") == 0, "run 17 %s", sw.runs[17].label);
    CHECK(strcmp(sw.runs[18].label, "dense-rf") == 0 && sw.runs[18].cfg.seed == 0, "run 18 %s", sw.runs[18].label);
    CHECK(strcmp(sw.runs[23].label, "dense-ddpm") == 0 && sw.runs[23].cfg.seed == 2, "run 23 seed %llu",
          (unsigned long long)sw.runs[23].cfg.seed);
    // precedence: base < preset < set < axis < run entry; values typed by the key table
    CHECK(sw.runs[1].cfg.objective == OBJECTIVE_DDPM && sw.runs[1].cfg.sample_steps == 30, "preset ddpm");
    CHECK(sw.runs[0].cfg.steps == 20000 && sw.runs[0].cfg.lr == 1e-4, "set: steps %lld lr %g",
          (long long)sw.runs[0].cfg.steps, sw.runs[0].cfg.lr);
    CHECK(sw.runs[19].cfg.sample_steps == 25 && sw.runs[19].cfg.hidden == 32, "run entry over preset");
    CHECK(sw.runs[2].cfg.moe_activation == ACTIVATION_SIGMOID, "axis value");
    for (int i = 0; i < 24; i++) CHECK(sw.runs[i].idx == i, "idx %d", sw.runs[i].idx);
    char id[17];
    config_run_id(&sw.runs[5].cfg, id);
    CHECK(strcmp(id, sw.runs[5].run_id) == 0, "run id is the config's");
    CHECK(strlen(sw.spec_sha256) == 64, "spec sha");
    sweep_free(&sw);
}

static void test_zip_and_alias(void)
{
    scratch_writef(dir, "zip.yaml", "sweep: z\nbase: stub.yaml\ngrid:\n  model.moe.activation: [softmax, sigmoid, identity]\n"
               "zip:\n  - objective: [rf, ddpm]\n    sample.steps: [40, 30]\nseeds: [0, 1, 2]\n");
    scratch_writef(dir, "wandb.yaml", "method: grid\nbase: stub.yaml\nparameters:\n"
               "  model.moe.activation: {values: [softmax, sigmoid, identity]}\n"
               "  objective: {values: [rf, ddpm]}\n  seed: {values: [0, 1, 2]}\n  train.steps: {value: 4}\n");
    scratch_writef(dir, "plain.yaml", "sweep: p\nbase: stub.yaml\nset: {train.steps: 4}\ngrid:\n"
               "  model.moe.activation: [softmax, sigmoid, identity]\n  objective: [rf, ddpm]\nseeds: [0, 1, 2]\n");
    struct sweep z, w, p;
    CHECK(sweep_load(&z, path("zip.yaml")) == 0, "zip: %s", err_message());
    CHECK(sweep_load(&w, path("wandb.yaml")) == 0, "wandb: %s", err_message());
    CHECK(sweep_load(&p, path("plain.yaml")) == 0, "plain: %s", err_message());
    if (!z.runs || !w.runs || !p.runs) return;
    CHECK(z.n_runs == 18 && z.runs[1].cfg.objective == OBJECTIVE_DDPM && z.runs[1].cfg.sample_steps == 30 &&
          z.runs[0].cfg.sample_steps == 40, "zip moves together");
    CHECK(strcmp(z.runs[1].label, "softmax-ddpm-30-s0") == 0, "default label %s", z.runs[1].label);
    CHECK(strcmp(w.name, "wandb") == 0, "name from the file: %s", w.name);
    int same = w.n_runs == 18 && p.n_runs == 18;
    for (int i = 0; same && i < 18; i++) same = strcmp(w.runs[i].run_id, p.runs[i].run_id) == 0;
    CHECK(same, "W&B alias gives the same runs in the same order");
    sweep_free(&z);
    sweep_free(&w);
    sweep_free(&p);
}

static void test_shared_runs(void)
{
    scratch_writef(dir, "a.yaml", "sweep: a\nbase: stub.yaml\ngrid: {model.depth: [1, 2]}\n");
    scratch_writef(dir, "b.yaml", "sweep: b\nbase: stub.yaml\ngrid: {model.depth: [2, 3]}\nlabel: \"d{model.depth}-{idx}\"\n");
    struct sweep a, b;
    CHECK(sweep_load(&a, path("a.yaml")) == 0 && sweep_load(&b, path("b.yaml")) == 0, "%s", err_message());
    if (!a.runs || !b.runs) return;
    CHECK(strcmp(a.runs[1].run_id, b.runs[0].run_id) == 0, "a shared point shares the run id");
    CHECK(strcmp(a.runs[0].run_id, b.runs[0].run_id) != 0, "different points differ");
    CHECK(strcmp(b.runs[1].label, "d3-1") == 0, "label %s", b.runs[1].label);
    sweep_free(&a);
    sweep_free(&b);
}

// ---- mistakes ---------------------------------------------------------------------------------------

static void expect_error(const char *text, const char *want)
{
    scratch_writef(dir, "bad.yaml", "%s", text);
    struct sweep sw;
    int rc = sweep_load(&sw, path("bad.yaml"));
    CHECK(rc < 0 && strstr(err_message(), want), "want '%s', got '%s'", want, rc < 0 ? err_message() : "success");
    if (rc == 0) sweep_free(&sw);
}

static void test_errors(void)
{
    expect_error("sweep: x\nbase: stub.yaml\ngrid:\n  model.hiden: [32]\n",
                 "bad.yaml:4:3: key 'model.hiden': unknown key (did you mean 'model.hidden'?)");
    expect_error("sweep: x\nbase: stub.yaml\ngrid:\n  train.steps: [10, abc]\n",
                 "bad.yaml:4:21: key 'train.steps': expected an integer, got 'abc'");
    expect_error("sweep: x\nbase: stub.yaml\nset:\n  model.depth: 0\n",
                 "bad.yaml:4:16: key 'model.depth': 0 is out of range [1, 256]");
    expect_error("sweep: x\ngrid:\n  model.depth: []\n", "bad.yaml:3:16: empty axis 'model.depth'");
    expect_error("sweep: x\nzip:\n  - objective: [rf, ddpm]\n    sample.steps: [40]\n",
                 "bad.yaml:4:5: zip lists of unequal length: 'objective' has 2 values, 'sample.steps' has 1");
    expect_error("sweep: x\npresets: {rf: {objective: rf}}\ngrid:\n  preset: [rf, dpm]\n",
                 "bad.yaml:4:16: unknown preset 'dpm' (presets: rf)");
    expect_error("sweep: x\ngrid:\n  model.depth: [1]\nzip:\n  - model.depth: [2]\n",
                 "bad.yaml:5:5: duplicate axis 'model.depth' (first at line 3, column 3)");
    expect_error("method: random\nparameters:\n  model.depth: {values: [1, 2]}\n",
                 "bad.yaml:1:9: method 'random' is not supported");
    expect_error("sweep: x\nset: {model.depth: 2}\ngrid:\n  model.depth: [1, 3]\n",
                 "bad.yaml:2:7: key 'model.depth' is both fixed and an axis (line 4, column 3)");
    expect_error("sweep: x\ngird:\n  model.depth: [1]\n", "bad.yaml:2:1: unknown sweep key 'gird' (did you mean 'grid'?)");
    expect_error("sweep: x\nbase: missing.yaml\n", "bad.yaml:2:7: base 'missing.yaml' not found");
    expect_error("sweep: x\nbase: stub.yaml\ngrid: {sample.n: [0, 1]}\n", "train the same thing");
    expect_error("sweep: x\nbase: stub.yaml\ngrid: {model.heads: [2, 3]}\n",
                 "bad.yaml: run 1 (3): model.hidden 32 is not divisible by model.heads 3");
    expect_error("sweep: x\nbase: stub.yaml\nlabel: \"{model.wide}\"\n", "bad.yaml:3:8: label field '{model.wide}'");
}

// ---- end to end -------------------------------------------------------------------------------------

static void write_sweep(const char *extra_seed)
{
    scratch_writef(dir, "tiny.yaml", "%slog: {every: 1}\n", STUB_BASE);
    scratch_writef(dir, "e2e.yaml", "sweep: e2e\nbase: tiny.yaml\nset:\n  ckpt.dir: %s/ckpt\ngrid:\n  train.seed: [0, 1, 2%s]\n"
               "label: \"tiny-s{seed}\"\n", dir, extra_seed);
}

static void test_dry_run_writes_nothing(void)
{
    write_sweep("");
    int rc = run("build/promoe sweep %s --dry-run --db %s", path("e2e.yaml"), path("r.db"));
    CHECK(rc == 0 && strstr(output, "   2  ") && strstr(output, "queued       tiny-s2"), "dry run (%d): %s", rc, output);
    CHECK(access(path("r.db"), F_OK) != 0 && access(path("ckpt"), F_OK) != 0, "dry run wrote files");
}

static void test_sweep_end_to_end(void)
{
    // Seed 0 stopped half-way by hand first: the sweep must continue it from step 2.
    int rc = run("build/promoe train %s --set ckpt.dir=%s/ckpt --set train.seed=0 --stop-after 2 --db %s",
                 path("tiny.yaml"), dir, path("r.db"));
    CHECK(rc == 0, "stopped run (%d): %s", rc, output);
    rc = run("build/promoe sweep %s --jobs 2 --db %s", path("e2e.yaml"), path("r.db"));
    CHECK(rc == 0 && strstr(output, "3 done, 0 failed, 0 interrupted, 0 skipped"), "sweep (%d): %s", rc, output);
    CHECK(db_value("SELECT count(*) FROM runs r JOIN sweep_runs s USING (run_id) WHERE s.sweep='e2e' "
                   "AND r.status='done' AND r.step_done=4") == 3, "3 runs done at step 4");
    CHECK(db_value("SELECT max(from_step) FROM attempts a JOIN params p ON p.run_id=a.run_id "
                   "AND p.key='train.seed' AND p.value='0'") == 2, "seed 0 resumed from step 2");
    CHECK(db_value("SELECT count(*) FROM attempts") == 4, "4 attempts");
    CHECK(db_value("SELECT count(*) FROM params WHERE key='train.threads' AND value='0'") == 0, "threads set");
    CHECK(db_value("SELECT done FROM sweep_progress WHERE sweep='e2e'") == 3, "sweep_progress");
    rc = run("build/promoe sweep %s --jobs 2 --db %s", path("e2e.yaml"), path("r.db"));
    CHECK(rc == 0 && strstr(output, "0 done, 0 failed, 0 interrupted, 3 skipped"), "again (%d): %s", rc, output);
    rc = run("build/promoe runs --sweep e2e --db %s", path("r.db"));
    CHECK(rc == 0 && strstr(output, "tiny-s1") && strstr(output, "4/4") && strstr(output, "3 runs"), "runs: %s", output);
}

static void test_retry_failed_and_update(void)
{
    char sql[512];
    snprintf(sql, sizeof sql, "sqlite3 %s \"UPDATE runs SET status='failed', error='test' WHERE label='tiny-s1'\"", path("r.db"));
    CHECK(system(sql) == 0, "sqlite3");
    int rc = run("build/promoe sweep %s --db %s", path("e2e.yaml"), path("r.db"));
    CHECK(rc == 0 && strstr(output, "failed before") && strstr(output, "3 skipped"), "failed skipped (%d): %s", rc, output);
    rc = run("build/promoe runs --status failed --db %s", path("r.db"));
    CHECK(strstr(output, "error: test") && strstr(output, "1 runs"), "runs --status: %s", output);
    rc = run("build/promoe sweep %s --db %s --retry-failed", path("e2e.yaml"), path("r.db"));
    CHECK(rc == 0 && strstr(output, "1 done, 0 failed"), "retry (%d): %s", rc, output);
    write_sweep(", 3");
    rc = run("build/promoe sweep %s --db %s", path("e2e.yaml"), path("r.db"));
    CHECK(rc == 1 && strstr(output, "added       3") && strstr(output, "--update"), "changed (%d): %s", rc, output);
    rc = run("build/promoe sweep %s --db %s --update", path("e2e.yaml"), path("r.db"));
    CHECK(rc == 0 && strstr(output, "1 done, 0 failed, 0 interrupted, 3 skipped"), "update (%d): %s", rc, output);
    CHECK(db_value("SELECT count(*) FROM sweep_runs WHERE sweep='e2e'") == 4, "4 members");
}

static void test_failed_child(void)
{
    scratch_writef(dir, "fail.yaml", "sweep: fail\nbase: tiny.yaml\nset:\n  ckpt.dir: %s/ckpt\n  data.path: %s/none\n"
               "grid: {train.seed: [0, 1]}\n", dir, dir);
    int rc = run("build/promoe sweep %s --jobs 2 --db %s", path("fail.yaml"), path("r.db"));
    CHECK(rc == 1 && strstr(output, "0 done, 2 failed") && strstr(output, "2 of 2 runs failed"), "failing (%d): %s", rc, output);
    rc = run("build/promoe runs --sweep fail --status failed --db %s", path("r.db"));
    CHECK(rc == 0 && strstr(output, "error: exit status 1") && strstr(output, "2 runs"), "failed runs: %s", output);
}

int main(void)
{
    if (!mkdtemp(dir)) return 1;
    test_expansion();
    test_zip_and_alias();
    test_shared_runs();
    test_errors();
    test_dry_run_writes_nothing();
    test_sweep_end_to_end();
    test_retry_failed_and_update();
    test_failed_child();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (check_failed == 0 && system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
    return test_summary("test_sweep");
}
