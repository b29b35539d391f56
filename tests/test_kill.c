// Interruption: `promoe sweep` killed with SIGKILL (the sweep and its training child together, as
// a power cut or the OOM killer would) at deterministic pseudo-random moments, then run again with
// the same command. After every kill the database passes PRAGMA integrity_check, runs already done
// are untouched, and a checkpoint caught half-written leaves the previous one valid; at the end
// every run is done and its loss and gradient-norm rows and checkpoint tensors equal, bit for bit,
// those of an uninterrupted reference sweep, each attempt having resumed from a checkpoint step.
// Bounded by a kill count and a time budget; prints how many kills it made and where they landed.
#include <signal.h>
#include <sys/prctl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "core/clock.h"
#include "core/error.h"
#include "io/atomic.h"
#include "runs.h"
#include "scratch.h"
#include "tmpfiles.h"

enum {
    N_RUNS = 2,             // seeds 0 and 1
    STEPS = 120,
    CKPT_EVERY = 8,
    MAX_KILLS = 40,
    POLL_US = 2000,         // how often a waiting parent looks at its child
    ROWS_TEXT = 1 << 16,
};
static const double KILL_BUDGET_S = 50;  // the kill loop stops starting new sweeps after this
static const double DELAY_SPAN = 1.2;    // kill delays: uniform in [0, span x a whole sweep's time)
static const uint64_t KILL_SEED = 20240607;

static char dir[] = "/tmp/promoe_test_kill_XXXXXX";
static char run_ids[N_RUNS][17];

static const char *path(const char *name) { return scratch_path(dir, name); }

static void write_text(const char *name, const char *text) { scratch_write(dir, name, text); }

static void write_sweeps(void)
{
    char text[1024];
    snprintf(text, sizeof text,
             "model: {hidden: 32, depth: 2, heads: 2, patch: 7}\n"
             "train: {steps: %d, batch_size: 16, threads: 1}\n"
             "sample: {n: 0}\nlog: {every: 1}\nckpt: {every: %d}\n", STEPS, CKPT_EVERY);
    write_text("tiny.yaml", text);
    for (int k = 0; k < 2; k++) {
        snprintf(text, sizeof text, "sweep: kill\nbase: tiny.yaml\nset: {ckpt.dir: %s/ckpt_%c}\n"
                 "grid: {train.seed: [0, 1]}\n", dir, "ab"[k]);
        write_text(k ? "b.yaml" : "a.yaml", text);
    }
}

// Starts `promoe sweep` in a process group of its own (so one kill reaches its children too).
static pid_t start_sweep(const char *sweep, const char *db)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0);
        if (!freopen(path("sweep.log"), "a", stdout) || !freopen(path("sweep.log"), "a", stderr)) _exit(126);
        execl("build/promoe", "promoe", "sweep", sweep, "--db", db, (char *)NULL);
        _exit(127);
    }
    if (pid > 0) setpgid(pid, pid);
    return pid;
}

static int wait_status(pid_t pid)
{
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {}
    return status;
}

// Waits up to `seconds` for the child; 1 with *status when it ended by itself.
static int wait_for(pid_t pid, double seconds, int *status)
{
    double until = clock_seconds() + seconds;
    do {
        if (waitpid(pid, status, WNOHANG) == pid) return 1;
        usleep(POLL_US);
    } while (clock_seconds() < until);
    return 0;
}

static int integrity_ok(const char *db_path)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    int ok = 0;
    if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK) {
        ok = sqlite3_step(st) == SQLITE_ROW && strcmp((const char *)sqlite3_column_text(st, 0), "ok") == 0;
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return ok;
}

static double db_value(const char *db_name, const char *fmt, const char *run_id)
{
    char sql[512];
    snprintf(sql, sizeof sql, fmt, run_id);
    return run_query(dir, db_name, sql);
}

// Loss and gradient-norm rows of a run, every bit.
static void figures(const char *db_name, const char *run_id, char *out)
{
    static char grad[ROWS_TEXT / 2];
    run_losses(dir, db_name, run_id, out, ROWS_TEXT / 2);
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT group_concat(printf('%%d %%.17g', step, value), ';') FROM "
             "(SELECT step, value FROM metrics WHERE run_id='%s' AND name='grad_norm' ORDER BY step)", run_id);
    sqlite3 *db;
    sqlite3_stmt *st;
    grad[0] = '\0';
    if (sqlite3_open(path(db_name), &db) == SQLITE_OK && sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
            snprintf(grad, sizeof grad, "%s", (const char *)sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    size_t used = strlen(out);
    snprintf(out + used, ROWS_TEXT - used, "%s", grad);
}

static const char *checkpoint_of(char which, const char *run_id)
{
    static char p[2][600];
    static int next;
    char *b = p[next++ % 2];
    snprintf(b, 600, "%s/ckpt_%c/%s/latest.safetensors", dir, which, run_id);
    return b;
}

// A run of B equals the same run of the reference A: figures and checkpoint tensors.
static int same_as_reference(const char *run_id)
{
    static char a[ROWS_TEXT], b[ROWS_TEXT];
    figures("a.db", run_id, a);
    figures("b.db", run_id, b);
    int same_rows = a[0] && strcmp(a, b) == 0;
    if (!same_rows) fprintf(stderr, "run %s: metrics differ from the reference\n", run_id);
    return same_rows && same_tensors(checkpoint_of('a', run_id), checkpoint_of('b', run_id));
}

static void reference_sweep(double *seconds)
{
    double start = clock_seconds();
    int status = wait_status(start_sweep(path("a.yaml"), path("a.db")));
    *seconds = clock_seconds() - start;
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "reference sweep failed, see %s", path("sweep.log"));
    for (int i = 0; i < N_RUNS; i++) {
        char sql[128];
        snprintf(sql, sizeof sql, "SELECT run_id FROM sweep_runs WHERE idx = %d", i);
        sqlite3 *db;
        sqlite3_stmt *st;
        if (sqlite3_open(path("a.db"), &db) == SQLITE_OK && sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
            if (sqlite3_step(st) == SQLITE_ROW) snprintf(run_ids[i], 17, "%s", (const char *)sqlite3_column_text(st, 0));
            sqlite3_finalize(st);
        }
        sqlite3_close(db);
        CHECK(strlen(run_ids[i]) == 16, "reference run %d has no id", i);
    }
}

struct kill_tally {
    int kills, rounds, mid_checkpoint, done_before[N_RUNS];
    double attempts_when_done[N_RUNS];
};

// After a kill: the database is sound, a half-written checkpoint left the previous one valid, and
// runs done before stay exactly as they were.
static void check_after_kill(struct kill_tally *t)
{
    CHECK(integrity_ok(path("b.db")), "integrity_check after kill %d", t->kills);
    for (int i = 0; i < N_RUNS; i++) {
        const char *ckpt = checkpoint_of('b', run_ids[i]);
        if (tmp_files_of(ckpt) > 0) {
            t->mid_checkpoint++;
            struct st_file *f = NULL;
            int opened = access(ckpt, F_OK) != 0 || st_open(ckpt, &f) == 0;
            CHECK(opened, "kill %d mid-checkpoint: previous checkpoint broken: %s", t->kills, err_message());
            if (f) st_close(f);
        }
        double done = db_value("b.db", "SELECT count(*) FROM runs WHERE run_id='%s' AND status='done'", run_ids[i]);
        double attempts = db_value("b.db", "SELECT count(*) FROM attempts WHERE run_id='%s'", run_ids[i]);
        if (t->done_before[i]) {
            CHECK(done == 1 && attempts == t->attempts_when_done[i] && same_as_reference(run_ids[i]),
                  "run %s was done before kill %d and changed", run_ids[i], t->kills);
        } else if (done == 1) {
            t->done_before[i] = 1;
            t->attempts_when_done[i] = attempts;
        }
    }
}

static uint64_t next_random(uint64_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return *state;
}

static void compare_with_reference(void)
{
    CHECK(integrity_ok(path("b.db")), "integrity_check at the end of a round");
    for (int i = 0; i < N_RUNS; i++) {
        CHECK(db_value("b.db", "SELECT count(*) FROM runs WHERE run_id='%s' AND status='done' AND step_done=120", run_ids[i]) == 1,
              "run %s not done", run_ids[i]);
        CHECK(same_as_reference(run_ids[i]), "run %s differs from the uninterrupted sweep", run_ids[i]);
        char sql[256];
        snprintf(sql, sizeof sql, "SELECT count(*) FROM attempts WHERE run_id='%%s' AND from_step %% %d != 0", CKPT_EVERY);
        CHECK(db_value("b.db", sql, run_ids[i]) == 0, "run %s resumed from a step that is not a checkpoint's", run_ids[i]);
    }
}

// A round ends when sweep B has done every run; the next starts again from nothing.
static void new_round(struct kill_tally *t)
{
    compare_with_reference();
    t->rounds++;
    memset(t->done_before, 0, sizeof t->done_before);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf %s/b.db %s/b.db-wal %s/b.db-shm %s/ckpt_b", dir, dir, dir, dir);
    CHECK(system(cmd) == 0, "reset sweep B");
}

static void kill_loop(double reference_s, struct kill_tally *t)
{
    uint64_t rng = KILL_SEED;
    double start = clock_seconds(), sweep_s = reference_s;
    int fresh = 1; // B's database is empty: a sweep that ends by itself now took a whole sweep's time
    while (t->kills < MAX_KILLS && clock_seconds() - start < KILL_BUDGET_S) {
        double delay = (double)(next_random(&rng) % 1000000) / 1e6 * DELAY_SPAN * sweep_s;
        double started = clock_seconds();
        pid_t pid = start_sweep(path("b.yaml"), path("b.db"));
        int status;
        if (wait_for(pid, delay, &status)) {
            if (fresh) sweep_s = clock_seconds() - started; // the load changes: follow the last whole sweep
            CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "an unkilled sweep failed, see %s", path("sweep.log"));
            new_round(t);
            fresh = 1;
            continue;
        }
        fresh = 0;
        kill(-pid, SIGKILL);
        while (waitpid(-pid, &status, 0) > 0) {} // the sweep and, as their subreaper, its children
        t->kills++;
        check_after_kill(t);
    }
}

static void final_sweep_and_compare(void)
{
    int status = wait_status(start_sweep(path("b.yaml"), path("b.db")));
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the last sweep failed, see %s", path("sweep.log"));
    compare_with_reference();
}

// A writer killed between writing the temporary file and renaming it leaves the previous
// checkpoint whole, and the next save replaces the stale temporary file.
static void test_crash_before_rename(void)
{
    const char *ckpt = checkpoint_of('a', run_ids[0]);
    char copy[600];
    snprintf(copy, sizeof copy, "%s/before.safetensors", dir);
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "cp %s %s", ckpt, copy);
    CHECK(system(cmd) == 0, "copy checkpoint");
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        struct atomic_file af;
        static const char half[] = "half a checkpoint";
        if (atomic_open(&af, ckpt) == 0 && atomic_write(&af, half, sizeof half) == 0) fflush(af.fp);
        raise(SIGKILL);
        _exit(1);
    }
    int status = wait_status(pid);
    CHECK(WIFSIGNALED(status) && tmp_files_of(ckpt) == 1, "the writer left no temporary file");
    CHECK(same_tensors(ckpt, copy), "the previous checkpoint changed: %s", err_message());
    CHECK(atomic_write_file(ckpt, "x", 1) == 0 && tmp_files_of(ckpt) == 0, "a new write over a stale temporary file");
}

int main(void)
{
    if (!mkdtemp(dir)) return 1;
    prctl(PR_SET_CHILD_SUBREAPER, 1); // a killed sweep's children are reaped here, not left as zombies
    write_sweeps();
    double reference_s = 0;
    reference_sweep(&reference_s);
    struct kill_tally t = {0};
    kill_loop(reference_s, &t);
    final_sweep_and_compare();
    printf("kill test: %d kills over %d rounds (%d during a checkpoint write), reference sweep %.1f s\n",
           t.kills, t.rounds + 1, t.mid_checkpoint, reference_s);
    CHECK(t.kills >= 5, "only %d kills", t.kills);
    test_crash_before_rename();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (check_failed == 0 && system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
    return test_summary("test_kill");
}
