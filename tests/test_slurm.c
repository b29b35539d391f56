// Sweeps over a Slurm job array, emulated without Slurm: a tiny 3-run MoE sweep is trained once
// locally (`--jobs 2`, folder A) and once as array tasks (folder B): `promoe sweep --slurm`
// writes the two sbatch scripts, tasks 0 and 2 run the array script itself with
// SLURM_ARRAY_TASK_ID set (two at once), task 1 runs `--index env`, is killed with SIGKILL after
// its first checkpoint and run again (it resumes); a finished task run again exits at once. The
// merge script folds the shards; merging again adds nothing, even with merged_shards cleared;
// the merged database equals the local one row for row; shards of another schema version or
// application are refused.
#include <errno.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "config/sweep.h"
#include "core/error.h"
#include "runs.h"
#include "scratch.h"
#include "shell.h"
#include "store/store_internal.h"

enum { STEPS = 30, KILL_WAIT_MS = 60000, POLL_MS = 1, PATH_MAX_TEST = 4096, LINE_MAX_TEST = 8192 };

static char dir[] = "/tmp/promoe_test_slurm_XXXXXX";
static char program[PATH_MAX_TEST];

static const char *path(const char *name) { return scratch_path(dir, name); }

static void write_file(const char *name, const char *text) { scratch_write(dir, name, text); }

static int read_text(const char *file, char *out, size_t size)
{
    FILE *f = fopen(file, "r");
    if (!f) return out[0] = '\0', -1;
    size_t n = fread(out, 1, size - 1, f);
    out[n] = '\0';
    fclose(f);
    return 0;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

// A MoE model (routing and class_routing rows), a checkpoint every step, the checkpoint folder
// relative to the working folder: A and B train the same configs into different folders.
static const char TINY[] = "model: {hidden: 32, depth: 2, heads: 2, patch: 7, moe: {experts: E4A1S1U1, conditional: true}}\n"
                           "train: {steps: 30, batch_size: 16, threads: 1}\n"
                           "sample: {n: 0}\nckpt: {every: 1, dir: ckpt}\nlog: {every: 1}\n";
static const char SWEEP[] = "sweep: sl\nbase: tiny.yaml\ngrid:\n  train.seed: [0, 1, 2]\nlabel: \"s{seed}\"\n";

static void setup(void)
{
    mkdir(path("A"), 0777);
    mkdir(path("B"), 0777);
    write_file("A/tiny.yaml", TINY);
    write_file("A/sl.yaml", SWEEP);
    write_file("B/tiny.yaml", TINY);
    write_file("B/sl.yaml", SWEEP);
}

// ---- the two ways of running the sweep -------------------------------------------------------------

static void test_local_jobs(void)
{
    int rc = run("cd %s && %s sweep sl.yaml --jobs 2 --db A.db", path("A"), program);
    CHECK(rc == 0 && strstr(output, "3 done, 0 failed"), "local sweep (%d): %s", rc, output);
}

static void test_slurm_scripts(void)
{
    int rc = run("cd %s && %s sweep sl.yaml --slurm --partition cpu --time 0:30:00 --cpus 2 --array-parallel 2 "
                 "--out slurm", path("B"), program);
    char want[2048];
    snprintf(want, sizeof want, "jid=$(sbatch --parsable %s/slurm/sl.sbatch) && sbatch "
             "--dependency=afterany:${jid%%%%;*} %s/slurm/sl-merge.sbatch", path("B"), path("B"));
    CHECK(rc == 0 && strstr(output, want), "--slurm (%d): %s\nwant: %s", rc, output, want);
    static char script[8192];
    read_text(path("B/slurm/sl.sbatch"), script, sizeof script);
    static char lines[4][LINE_MAX_TEST];
    snprintf(lines[0], LINE_MAX_TEST, "#SBATCH --output=%s/slurm/logs/%%A_%%a.out\n", path("B"));
    snprintf(lines[1], LINE_MAX_TEST, "#SBATCH --chdir=%s\n", path("B"));
    snprintf(lines[2], LINE_MAX_TEST, "exec '%s' sweep '%s/sl.yaml' --index \"$SLURM_ARRAY_TASK_ID\" --db "
             "'%s/results/shards/sl/'\"$SLURM_ARRAY_TASK_ID\".db\n", program, path("B"), path("B"));
    const char *fixed[] = {"#!/bin/bash\n", "#SBATCH --array=0-2%2\n", "#SBATCH --cpus-per-task=2\n",
                           "#SBATCH --time=0:30:00\n", "#SBATCH --partition=cpu\n", "#SBATCH --signal=B:TERM@120\n",
                           "#SBATCH --job-name=promoe-sl\n", lines[0], lines[1], lines[2]};
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++)
        CHECK(strstr(script, fixed[i]), "array script lacks '%s':\n%s", fixed[i], script);
    read_text(path("B/slurm/sl-merge.sbatch"), script, sizeof script);
    snprintf(lines[3], LINE_MAX_TEST, "exec '%s' merge '%s/results/promoe.db' '%s/results/shards/sl'/*.db\n", program,
             path("B"), path("B"));
    CHECK(strstr(script, lines[3]) && strstr(script, "#SBATCH --cpus-per-task=1\n") &&
          strstr(script, "#SBATCH --job-name=promoe-sl-merge\n"), "merge script:\n%s", script);
    CHECK(access(path("B/slurm/logs"), F_OK) == 0, "log folder made before submission");
}

static pid_t start_task_1(void)
{
    pid_t pid = fork();
    if (pid != 0) return pid;
    setpgid(0, 0);  // Slurm ends a task's whole process tree: so does the test, through the group
    if (chdir(path("B")) != 0) _exit(1);
    setenv("SLURM_ARRAY_TASK_ID", "1", 1);
    if (!freopen("/dev/null", "w", stdout)) _exit(1);
    execl(program, "promoe", "sweep", "sl.yaml", "--index", "env", "--db", "results/shards/sl/{index}.db", (char *)NULL);
    _exit(127);
}

// Waits for the first checkpoint of the run, then kills the task's process group.
static void kill_after_checkpoint(pid_t pid, const char *run_id)
{
    char ckpt[600];
    snprintf(ckpt, sizeof ckpt, "%s/ckpt/%s/latest.safetensors", path("B"), run_id);
    int waited = 0;
    while (access(ckpt, F_OK) != 0 && waited < KILL_WAIT_MS) sleep_ms(POLL_MS), waited += POLL_MS;
    CHECK(access(ckpt, F_OK) == 0, "no checkpoint of task 1 after %d ms", waited);
    kill(-pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    for (waited = 0; kill(-pid, 0) == 0 && waited < KILL_WAIT_MS; waited += POLL_MS) sleep_ms(POLL_MS);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "task 1 was killed");
}

static double shard_value(int index, const char *sql)
{
    char name[64];
    snprintf(name, sizeof name, "B/results/shards/sl/%d.db", index);
    return run_query(dir, name, sql);
}

static void test_array_tasks(const struct sweep *sw)
{
    const char *id1 = sw->runs[1].run_id;
    char sql[256];
    kill_after_checkpoint(start_task_1(), id1);
    snprintf(sql, sizeof sql, "SELECT step_done FROM runs WHERE run_id = '%s' AND status = 'running'", id1);
    double step = shard_value(1, sql);
    CHECK(step >= 0 && step < STEPS, "task 1 killed mid-run: step_done %g of %d", step, STEPS);
    int rc = run("cd %s && printf '0\\n2\\n' | xargs -P 2 -I@ env SLURM_ARRAY_TASK_ID=@ bash slurm/sl.sbatch",
                 path("B"));
    CHECK(rc == 0 && strstr(output, "(database ") && !strstr(output, "FAILED"), "tasks 0 and 2 (%d): %s", rc, output);
    rc = run("cd %s && SLURM_ARRAY_TASK_ID=1 %s sweep sl.yaml --index env --db 'results/shards/sl/{index}.db'",
             path("B"), program);
    CHECK(rc == 0 && strstr(output, "1 done, 0 failed, 0 interrupted, 0 skipped"), "task 1 again (%d): %s", rc, output);
    snprintf(sql, sizeof sql, "SELECT max(from_step) FROM attempts WHERE run_id = '%s'", id1);
    CHECK(shard_value(1, sql) > 0, "task 1 resumed from its checkpoint (from_step %g)", shard_value(1, sql));
    rc = run("cd %s && SLURM_ARRAY_TASK_ID=2 bash slurm/sl.sbatch", path("B"));
    CHECK(rc == 0 && strstr(output, "s2: done") && strstr(output, "0 done, 0 failed, 0 interrupted, 1 skipped"),
          "a finished task again (%d): %s", rc, output);
    for (int i = 0; i < 3; i++)
        CHECK(shard_value(i, "SELECT count(*) FROM runs WHERE status = 'done'") == 1, "shard %d holds one done run", i);
}

// ---- merging ---------------------------------------------------------------------------------------

static const char *const TABLES[] = {"sweeps", "sweep_runs", "runs", "params", "attempts", "metrics",
                                     "routing", "class_routing", "evals", "diversity", "checkpoints"};

static double total_rows(void)
{
    double n = 0;
    for (size_t i = 0; i < sizeof TABLES / sizeof *TABLES; i++) {
        char sql[128];
        snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", TABLES[i]);
        n += run_query(dir, "B/results/promoe.db", sql);
    }
    return n;
}

static void test_merge(void)
{
    int rc = run("cd %s && bash slurm/sl-merge.sbatch", path("B"));
    CHECK(rc == 0 && strstr(output, "merged  ") && strstr(output, "sl/2.db"), "merge script (%d): %s", rc, output);
    double rows = total_rows();
    rc = run("%s merge %s/results/promoe.db %s/results/shards/sl/*.db", program, path("B"), path("B"));
    CHECK(rc == 0 && strstr(output, "already merged") && !strstr(output, "merged  "), "again (%d): %s", rc, output);
    CHECK(total_rows() == rows, "merging again added rows: %g -> %g", rows, total_rows());
    // Without the record of merged shards the rows themselves must make a repeat a no-op.
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "sqlite3 %s/results/promoe.db 'DELETE FROM merged_shards'", path("B"));
    CHECK(system(cmd) == 0, "sqlite3");
    rc = run("%s merge %s/results/promoe.db %s/results/shards/sl/*.db", program, path("B"), path("B"));
    CHECK(rc == 0 && strstr(output, "merged  "), "forced again (%d): %s", rc, output);
    CHECK(total_rows() == rows, "a forced repeat added rows: %g -> %g", rows, total_rows());
    CHECK(run_query(dir, "B/results/promoe.db", "SELECT count(*) FROM runs WHERE status = 'done'") == 3,
          "every run done after merging (queued rows of other shards do not win)");
}

// Compared columns of each table. Ignored, because they differ between any two trainings of the
// same configs: host and pid (machine and process), created/started/heartbeat/ended_ms, train_s,
// img_per_s and every wall_ms / wall_s (clock time), the metric 'img_per_s' (a speed), and the
// whole of `attempts` (the killed task has one attempt more, by design).
static const struct compared {
    const char *table, *columns, *where;
} COMPARED[] = {
    {"sweeps", "sweep, spec_yaml, spec_sha256", "true"},
    {"sweep_runs", "*", "true"},
    {"runs", "run_id, config_sha256, config_yaml, label, seed, status, error, code_commit, code_dirty, "
             "code_diff_sha256, build_info, threads, world_size, params_total, params_active, step_done", "true"},
    {"params", "*", "true"},
    {"metrics", "run_id, name, step, value", "name <> 'img_per_s'"},
    {"routing", "*", "true"},
    {"class_routing", "*", "true"},
    {"evals", "run_id, step, weights, cfg_scale, sampler, sampler_steps, n_samples, reference, metric, value, "
              "source, sample_seed", "true"},
    {"diversity", "*", "true"},
    {"checkpoints", "run_id, step, kind, path, bytes, sha256", "true"},
};

static sqlite3_int64 count(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    sqlite3_int64 n = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    else
        fprintf(stderr, "query failed: %s: %s\n", sql, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return n;
}

static void compare_table(sqlite3 *db, const struct compared *c)
{
    char sql[2048];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM a.%s WHERE %s", c->table, c->where);
    sqlite3_int64 n_a = count(db, sql);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM main.%s WHERE %s", c->table, c->where);
    sqlite3_int64 n_b = count(db, sql);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM (SELECT %s FROM a.%s WHERE %s EXCEPT SELECT %s FROM main.%s WHERE %s)",
             c->columns, c->table, c->where, c->columns, c->table, c->where);
    sqlite3_int64 only_a = count(db, sql);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM (SELECT %s FROM main.%s WHERE %s EXCEPT SELECT %s FROM a.%s WHERE %s)",
             c->columns, c->table, c->where, c->columns, c->table, c->where);
    sqlite3_int64 only_b = count(db, sql);
    CHECK(n_a == n_b && only_a == 0 && only_b == 0, "table %s: %lld local rows, %lld merged, %lld only local, "
          "%lld only merged", c->table, n_a, n_b, only_a, only_b);
}

static void test_equal_to_local(void)
{
    sqlite3 *db;
    char attach[1024];
    snprintf(attach, sizeof attach, "ATTACH DATABASE '%s' AS a", path("A/A.db"));
    CHECK(sqlite3_open(path("B/results/promoe.db"), &db) == SQLITE_OK &&
          sqlite3_exec(db, attach, NULL, NULL, NULL) == SQLITE_OK, "open: %s", sqlite3_errmsg(db));
    for (size_t i = 0; i < sizeof COMPARED / sizeof *COMPARED; i++) compare_table(db, &COMPARED[i]);
    // Not vacuous: the compared tables hold what a MoE sweep writes.
    CHECK(count(db, "SELECT count(*) FROM a.metrics") >= 3 * STEPS && count(db, "SELECT count(*) FROM a.routing") > 0 &&
          count(db, "SELECT count(*) FROM a.class_routing") > 0 && count(db, "SELECT count(*) FROM a.checkpoints") > 0,
          "the local sweep wrote metrics, routing and checkpoints");
    sqlite3_close(db);
}

static void set_user_version(const char *file, int version, int application_id)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "sqlite3 %s 'PRAGMA user_version = %d; PRAGMA application_id = %d'", file, version,
             application_id);
    CHECK(system(cmd) == 0, "sqlite3 %s", cmd);
}

static void test_refused_shards(void)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cp %s/results/shards/sl/0.db %s && cp %s/results/shards/sl/0.db %s", path("B"),
             path("old.db"), path("B"), path("other.db"));
    CHECK(system(cmd) == 0, "cp");
    set_user_version(path("old.db"), STORE_SCHEMA_VERSION - 1, STORE_APPLICATION_ID);
    set_user_version(path("other.db"), STORE_SCHEMA_VERSION, STORE_APPLICATION_ID + 1);
    double rows = total_rows();
    int rc = run("%s merge %s/results/promoe.db %s", program, path("B"), path("old.db"));
    char want[700];
    snprintf(want, sizeof want, "cannot merge shard '%s': its schema version is %d, this promoe's is %d", path("old.db"),
             STORE_SCHEMA_VERSION - 1, STORE_SCHEMA_VERSION);
    CHECK(rc == 1 && strstr(output, want), "older shard (%d): %s\nwant: %s", rc, output, want);
    rc = run("%s merge %s/results/promoe.db %s", program, path("B"), path("other.db"));
    CHECK(rc == 1 && strstr(output, "other.db': not a promoe database"), "other application (%d): %s", rc, output);
    rc = run("%s merge %s/results/promoe.db %s", program, path("B"), path("missing.db"));
    CHECK(rc == 1 && strstr(output, "missing.db': No such file"), "missing shard (%d): %s", rc, output);
    rc = run("%s merge %s/results/promoe.db %s/results/promoe.db", program, path("B"), path("B"));
    CHECK(rc == 1 && strstr(output, "into itself"), "itself (%d): %s", rc, output);
    CHECK(total_rows() == rows, "a refused shard changed the main database");
}

static void test_index_errors(void)
{
    int rc = run("cd %s && env -u SLURM_ARRAY_TASK_ID %s sweep sl.yaml --index env", path("B"), program);
    CHECK(rc == 1 && strstr(output, "SLURM_ARRAY_TASK_ID is not set"), "unset (%d): %s", rc, output);
    rc = run("cd %s && %s sweep sl.yaml --index 3", path("B"), program);
    CHECK(rc == 1 && strstr(output, "--index 3: sweep 'sl' has 3 runs (indexes 0 to 2)"), "range (%d): %s", rc, output);
    rc = run("cd %s && SLURM_ARRAY_TASK_ID=x %s sweep sl.yaml --index env", path("B"), program);
    CHECK(rc == 1 && strstr(output, "SLURM_ARRAY_TASK_ID': expected an integer, got 'x'"), "bad (%d): %s", rc, output);
}

int main(void)
{
    if (!mkdtemp(dir) || !realpath("build/promoe", program)) return 1;
    setup();
    struct sweep sw;
    CHECK(sweep_load(&sw, path("B/sl.yaml")) == 0 && sw.n_runs == 3, "load: %s", err_message());
    if (check_failed) return test_summary("test_slurm");
    test_local_jobs();
    test_slurm_scripts();
    test_array_tasks(&sw);
    test_merge();
    test_equal_to_local();
    test_refused_shards();
    test_index_errors();
    sweep_free(&sw);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (check_failed == 0 && system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
    return test_summary("test_slurm");
}
