// A run's life through the promoe program, with more than one process at it: one writer per run
// (a second `train` of a run in training is refused with exit 75 and the owner named, and leaves no
// attempt), two sweeps sharing runs train each run once, SIGTERM stops a run at a step boundary as
// 'interrupted' and --resume continues it bit-identically, a killed trainer shows as 'orphaned',
// a done run is kept unless --force, a checkpoint whose metadata was edited is refused and the run
// recorded failed, and a sweep whose child fails (a write error, or killed) records the run failed
// and exits 1. States are awaited by polling the database with a generous bound; nothing is timed.
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "runs.h"
#include "scratch.h"
#include "shell.h"

enum { POLL_US = 20000, POLL_LIMIT = 15000, ROWS_TEXT = 1 << 20 };   // at most 300 s per wait

static char dir[] = "/tmp/promoe_test_lifecycle_XXXXXX";

static const char *path(const char *name) { return scratch_path(dir, name); }
static void write_file(const char *name, const char *text) { scratch_write(dir, name, text); }

// A run that would train for hours: it ends only when stopped.
static const char ENDLESS[] = "model: {hidden: 32, depth: 2, heads: 2, patch: 7}\n"
                              "train: {steps: 1000000, batch_size: 8, threads: 1}\n"
                              "log: {every: 1}\nsample: {n: 0}\n";
static const char SHORT[] = "model: {hidden: 32, depth: 2, heads: 2, patch: 7}\n"
                            "train: {steps: 6, batch_size: 8, threads: 1}\n"
                            "log: {every: 1}\nsample: {n: 0}\n";

#define TRAIN "build/promoe train %s --db %s --set ckpt.dir=%s "

static void run_id_of(const char *config, const char *sets, char id[17])
{
    run("build/promoe config %s --set ckpt.dir=%s %s", path(config), path("ckpt"), sets);
    const char *at = strstr(output, "run id ");
    id[0] = '\0';
    if (at) snprintf(id, 17, "%s", at + 7);
    CHECK(strlen(id) == 16, "run id of %s: %s", config, output);
}

// Starts a shell command in the background; its pid (0 if it did not start).
static pid_t start(const char *command, const char *log)
{
    run("%s > %s 2>&1 & echo $!", command, path(log));
    return (pid_t)atol(output);
}

// Exit status of a background command started by start() (this process is its subreaper).
static int reap(pid_t pid)
{
    int status = 0;
    if (pid <= 0 || waitpid(pid, &status, 0) != pid) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static double value(const char *db, const char *fmt, const char *run_id)
{
    char sql[512];
    snprintf(sql, sizeof sql, fmt, run_id);
    return run_query(dir, db, sql);
}

// Waits until run_id is 'running' with at least `steps` steps recorded; 1 when it got there.
static int await_running(const char *db, const char *run_id, int steps)
{
    for (int i = 0; i < POLL_LIMIT; i++) {
        if (value(db, "SELECT step_done FROM runs WHERE run_id='%s' AND status='running'", run_id) >= steps) return 1;
        usleep(POLL_US);
    }
    return 0;
}

// Two trains of one run: the second is refused while the first trains; SIGTERM then stops the
// first at a step boundary ('interrupted', checkpoint written), and --resume continues it to the
// same loss rows, bit for bit, as one uninterrupted process.
static void test_two_trains_and_sigterm(void)
{
    char id[17], cmd[2048], pid_text[32];
    write_file("endless.yaml", ENDLESS);
    run_id_of("endless.yaml", "", id);
    snprintf(cmd, sizeof cmd, "exec " TRAIN, path("endless.yaml"), path("r.db"), path("ckpt"));
    pid_t first = start(cmd, "first.log");
    CHECK(first > 0 && await_running("r.db", id, 3), "the first train did not start: pid %d", (int)first);
    int rc = run(TRAIN, path("endless.yaml"), path("r.db"), path("ckpt"));
    snprintf(pid_text, sizeof pid_text, "by process %d on host", (int)first);
    CHECK(rc == 75 && strstr(output, id) && strstr(output, pid_text) && strstr(output, "owner.lock"),
          "second train of a run in training (%d): %s", rc, output);
    CHECK(value("r.db", "SELECT count(*) FROM attempts WHERE run_id='%s'", id) == 1, "the refused train added an attempt");
    kill(first, SIGTERM);
    rc = reap(first);
    double done = value("r.db", "SELECT step_done FROM runs WHERE run_id='%s' AND status='interrupted' "
                        "AND error LIKE 'stopped by signal 15%%'", id);
    CHECK(rc == 1 && done >= 3, "SIGTERM: exit %d, step_done %g", rc, done);
    CHECK(value("r.db", "SELECT count(*) FROM metrics WHERE run_id='%s' AND name='loss'", id) == done,
          "an interrupted run lost metric rows");
    CHECK(value("r.db", "SELECT max(step) FROM checkpoints WHERE run_id='%s'", id) == done, "no checkpoint at the stop");
    rc = run(TRAIN "--resume --stop-after 4", path("endless.yaml"), path("r.db"), path("ckpt"));
    CHECK(rc == 0 && value("r.db", "SELECT step_done FROM runs WHERE run_id='%s'", id) == done + 4, "resume: %s", output);
    rc = run(TRAIN "--stop-after %d", path("endless.yaml"), path("ref.db"), path("ref_ckpt"), (int)done + 4);
    CHECK(rc == 0, "reference run: %s", output);
    static char resumed[ROWS_TEXT], reference[ROWS_TEXT];
    run_losses(dir, "r.db", id, resumed, sizeof resumed);
    run_losses(dir, "ref.db", id, reference, sizeof reference);
    CHECK(resumed[0] && strcmp(resumed, reference) == 0, "stopped and resumed loss rows differ from one process's");
}

// SIGKILL leaves the run 'running' under a dead process: `promoe runs` shows it orphaned, and the
// next train takes it over (the kernel dropped the lock).
static void test_orphaned(void)
{
    char id[17], cmd[2048];
    run_id_of("endless.yaml", "train.seed=3", id);
    snprintf(cmd, sizeof cmd, "exec " TRAIN "train.seed=3", path("endless.yaml"), path("r.db"), path("ckpt"));
    pid_t pid = start(cmd, "killed.log");
    CHECK(pid > 0 && await_running("r.db", id, 2), "the train to kill did not start");
    kill(pid, SIGKILL);
    reap(pid);
    int rc = run("build/promoe runs --db %s --status orphaned", path("r.db"));
    CHECK(rc == 0 && strstr(output, id) && strstr(output, "orphaned") && strstr(output, "1 runs"),
          "runs after a kill (%d): %s", rc, output);
    rc = run(TRAIN "train.seed=3 --resume --stop-after 2", path("endless.yaml"), path("r.db"), path("ckpt"));
    CHECK(rc == 0 && value("r.db", "SELECT count(*) FROM runs WHERE run_id='%s' AND status='interrupted'", id) == 1,
          "taking over an orphaned run (%d): %s", rc, output);
}

// A done run is kept; --force trains it again as a second attempt.
static void test_force(void)
{
    char id[17];
    write_file("short.yaml", SHORT);
    run_id_of("short.yaml", "", id);
    int rc = run(TRAIN, path("short.yaml"), path("r.db"), path("ckpt"));
    CHECK(rc == 0, "short run: %s", output);
    rc = run(TRAIN, path("short.yaml"), path("r.db"), path("ckpt"));
    CHECK(rc == 1 && strstr(output, "is done (6 steps)") && strstr(output, "--force"), "retrain a done run (%d): %s", rc, output);
    rc = run(TRAIN "--resume", path("short.yaml"), path("r.db"), path("ckpt"));
    CHECK(rc == 0 && strstr(output, "already done"), "resume a done run (%d): %s", rc, output);
    CHECK(value("r.db", "SELECT count(*) FROM attempts WHERE run_id='%s'", id) == 1, "a refused train added an attempt");
    rc = run(TRAIN "--force", path("short.yaml"), path("r.db"), path("ckpt"));
    CHECK(rc == 0 && value("r.db", "SELECT count(*) FROM attempts WHERE run_id='%s' AND outcome='done'", id) == 2 &&
          value("r.db", "SELECT count(*) FROM metrics WHERE run_id='%s' AND name='loss'", id) == 6,
          "--force (%d): %s", rc, output);
}

// Replaces the first occurrence of from by to (same length) in a file's bytes.
static int patch_file(const char *file, const char *from, const char *to)
{
    FILE *f = fopen(file, "r+b");
    if (!f) return -1;
    static char bytes[1 << 22];
    size_t n = fread(bytes, 1, sizeof bytes, f);
    char *at = memmem(bytes, n, from, strlen(from));
    int rc = -1;
    if (at && strlen(from) == strlen(to)) {
        memcpy(at, to, strlen(to));
        rc = fseek(f, 0, SEEK_SET) == 0 && fwrite(bytes, 1, n, f) == n ? 0 : -1;
    }
    fclose(f);
    return rc;
}

// A checkpoint whose step was edited fails its metadata checksum: the resume is refused and the run
// recorded failed with the reason.
static void test_edited_checkpoint(void)
{
    char id[17], checkpoint[600];
    run_id_of("short.yaml", "train.seed=4", id);
    int rc = run(TRAIN "train.seed=4 --stop-after 2", path("short.yaml"), path("r.db"), path("ckpt"));
    snprintf(checkpoint, sizeof checkpoint, "%s/%s/latest.safetensors", path("ckpt"), id);
    CHECK(rc == 0 && patch_file(checkpoint, "\"promoe.step\":\"2\"", "\"promoe.step\":\"5\"") == 0,
          "an interrupted run to edit: %s", output);
    rc = run(TRAIN "train.seed=4 --resume", path("short.yaml"), path("r.db"), path("ckpt"));
    CHECK(rc == 1 && strstr(output, "latest.safetensors") && strstr(output, "does not match its checksum"),
          "edited checkpoint (%d): %s", rc, output);
    CHECK(value("r.db", "SELECT count(*) FROM runs WHERE run_id='%s' AND status='failed' AND error LIKE '%%checksum%%'",
                id) == 1, "the refused resume did not record the run failed");
}

// Two sweeps over the same three runs at once: each run is trained once (one attempt, every loss
// row), whichever sweep trains it; the other skips it or finds it done. Both exit 0.
static void test_two_sweeps(void)
{
    char text[512];
    for (int k = 0; k < 2; k++) {
        snprintf(text, sizeof text, "sweep: %c\nbase: short.yaml\nset: {train.steps: 30, ckpt.dir: %s}\nseeds: %s\n",
                 "ab"[k], path("ckpt"), k ? "[12, 11, 10]" : "[10, 11, 12]");
        write_file(k ? "b.yaml" : "a.yaml", text);
    }
    char promoe[512];
    if (!getcwd(promoe, sizeof promoe - 16)) promoe[0] = '\0';
    strcat(promoe, "/build/promoe");
    int rc = run("cd %s && (%s sweep a.yaml --db s.db > a.out 2>&1; echo $? > a.rc) & "
                 "(cd %s && %s sweep b.yaml --db s.db > b.out 2>&1; echo $? > b.rc) & wait; cd %s && cat a.rc b.rc",
                 dir, promoe, dir, promoe, dir);
    CHECK(rc == 0 && !strcmp(output, "0\n0\n"), "two sweeps sharing runs: exit statuses %s", output);
    CHECK(run_query(dir, "s.db", "SELECT count(*) FROM runs WHERE status='done'") == 3 &&
          run_query(dir, "s.db", "SELECT count(*) FROM attempts") == 3 &&
          run_query(dir, "s.db", "SELECT count(*) FROM metrics WHERE name='loss'") == 90,
          "two sweeps sharing runs: runs done %g, attempts %g, loss rows %g",
          run_query(dir, "s.db", "SELECT count(*) FROM runs WHERE status='done'"),
          run_query(dir, "s.db", "SELECT count(*) FROM attempts"),
          run_query(dir, "s.db", "SELECT count(*) FROM metrics WHERE name='loss'"));
}

// A child that fails on a write (the checkpoint hits a file-size limit) is recorded failed with the
// system's reason, and the sweep exits 1; so does a child killed by someone else.
static void test_failing_children(void)
{
    char text[512];
    snprintf(text, sizeof text, "sweep: f\nbase: short.yaml\nset: {ckpt.dir: %s}\nseeds: [20]\n", path("ckpt"));
    write_file("f.yaml", text);
    int rc = run("build/promoe sweep %s --db %s --record-only", path("f.yaml"), path("f.db"));
    CHECK(rc == 0, "recording: %s", output);
    rc = run("trap '' XFSZ; ulimit -f 512; build/promoe sweep %s --db %s", path("f.yaml"), path("f.db"));
    CHECK(rc == 1 && strstr(output, "0 done, 1 failed"), "sweep over a write error (%d): %s", rc, output);
    CHECK(run_query(dir, "f.db", "SELECT count(*) FROM runs WHERE status='failed' AND error LIKE '%File too large%'") == 1,
          "the write error is not the run's recorded reason");
    snprintf(text, sizeof text, "sweep: k\nbase: endless.yaml\nset: {ckpt.dir: %s}\nseeds: [21]\n", path("ckpt"));
    write_file("k.yaml", text);
    char cmd[2048], id[17];
    run_id_of("endless.yaml", "train.seed=21", id);
    snprintf(cmd, sizeof cmd, "exec build/promoe sweep %s --db %s", path("k.yaml"), path("k.db"));
    pid_t sweep = start(cmd, "k.out");
    CHECK(await_running("k.db", id, 2), "the sweep's child did not start");
    pid_t child = (pid_t)value("k.db", "SELECT pid FROM runs WHERE run_id='%s'", id);
    CHECK(child > 0 && kill(child, SIGKILL) == 0, "no child to kill");
    rc = reap(sweep);
    CHECK(rc == 1 && run_query(dir, "k.db", "SELECT count(*) FROM runs WHERE status='failed' AND error LIKE 'signal 9%'") == 1,
          "sweep whose child was killed: exit %d", rc);
}

int main(void)
{
    if (!mkdtemp(dir)) return 1;
    prctl(PR_SET_CHILD_SUBREAPER, 1);   // background commands are reaped here
    test_two_trains_and_sigterm();
    test_orphaned();
    test_force();
    test_edited_checkpoint();
    test_two_sweeps();
    test_failing_children();
    if (check_failed == 0 && run("rm -rf %s", dir) != 0) fprintf(stderr, "cannot remove %s\n", dir);
    return test_summary("test_lifecycle");
}
