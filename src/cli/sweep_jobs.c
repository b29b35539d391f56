// Child processes of `promoe sweep` (see sweep_jobs.h). The signal handler only forwards the
// signal (SIGINT, SIGTERM, SIGHUP) to the live children (kill is async-signal-safe) and records
// it; the loop then stops starting runs and waits for the children it has, which stop at a step
// boundary and record their runs 'interrupted'. A child that dies otherwise without closing its
// run leaves it 'running' under a dead pid; the loop marks it 'failed' with the cause (resumable
// with --retry-failed), or 'interrupted' when the sweep itself was stopped.
#include "cli/sweep_jobs.h"

#include "cli/sweep_cluster.h"
#include "core/error.h"
#include "io/atomic.h"
#include "io/path.h"
#include "store/sweeps.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

// EXIT_RUN_BUSY: `promoe train` refused a run that another live process owns (cli.h, EXIT_BUSY).
enum { MAX_JOBS = 256, EXIT_EXEC_FAILED = 127, EXIT_RUN_BUSY = 75 };

static volatile sig_atomic_t stop_signal;
static volatile pid_t live[MAX_JOBS];

static void forward_signal(int sig)
{
    stop_signal = sig;
    for (int i = 0; i < MAX_JOBS; i++)
        if (live[i] > 0) kill(live[i], sig);
}

static const int forwarded[] = {SIGINT, SIGTERM, SIGHUP};
enum { FORWARDED = sizeof forwarded / sizeof *forwarded };

static void install_handlers(struct sigaction *old)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = forward_signal;
    sigemptyset(&sa.sa_mask);
    for (int i = 0; i < FORWARDED; i++) sigaction(forwarded[i], &sa, &old[i]);
}

// <ckpt.dir>/<run id>/name
static void run_file(const struct sweep_run *run, const char *name, char *out)
{
    snprintf(out, IO_PATH_MAX, "%s/%s/%s", run->cfg.ckpt_dir, run->run_id, name);
}

// The resolved config as canonical YAML, which `train` reads back key for key.
static int write_config(const struct sweep_run *run, char *config_path)
{
    char folder[IO_PATH_MAX];
    snprintf(folder, sizeof folder, "%s/%s", run->cfg.ckpt_dir, run->run_id);
    if (io_make_folders(folder) < 0) return -1;
    int n = config_canonical(&run->cfg, NULL, 0);
    char *text = malloc((size_t)n + 1);
    if (!text) return err("out of memory");
    config_canonical(&run->cfg, text, (size_t)n + 1);
    run_file(run, "sweep-config.yaml", config_path);
    int rc = atomic_write_file(config_path, text, (size_t)n);
    free(text);
    return rc;
}

// In the child: output to the run's log, then this program's `train`.
static _Noreturn void exec_train(const struct sweep_run *run, const char *config_path, const char *db_path)
{
    char log_path[IO_PATH_MAX];
    run_file(run, "train.log", log_path);
    int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0666);
    if (fd >= 0) {
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        close(fd);
    }
    for (int i = 0; i < FORWARDED; i++) signal(forwarded[i], SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    char *argv[] = {"promoe", "train", (char *)config_path, "--resume", "--db", (char *)db_path,
                    "--label", (char *)run->label, NULL};
    execv("/proc/self/exe", argv);
    fprintf(stderr, "promoe sweep: cannot run /proc/self/exe: %s\n", strerror(errno));
    _exit(EXIT_EXEC_FAILED);
}

static int start(const struct sweep_run *run, const char *db_path, pid_t *pid)
{
    char config_path[IO_PATH_MAX], threads_path[IO_PATH_MAX];
    if (write_config(run, config_path) < 0) return -1;
    run_file(run, "threads", threads_path);
    unlink(threads_path);   // a thread count left by an earlier sweep: the run starts with its own
    fflush(NULL);
    *pid = fork();
    if (*pid < 0) return err("cannot start run %s: fork: %s", run->run_id, strerror(errno));
    if (*pid == 0) exec_train(run, config_path, db_path);
    return 0;
}

static int add_live(pid_t pid)
{
    for (int i = 0; i < MAX_JOBS; i++)
        if (live[i] == 0) {
            live[i] = pid;
            return i;
        }
    BUG("more children than MAX_JOBS");
}

static int find_live(pid_t pid)
{
    for (int i = 0; i < MAX_JOBS; i++)
        if (live[i] == pid) return i;
    return -1;
}

// "exit status N" or "signal N (name)".
static void describe_end(int status, char *text, size_t size)
{
    if (WIFEXITED(status)) snprintf(text, size, "exit status %d", WEXITSTATUS(status));
    else snprintf(text, size, "signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
}

// A child that failed: its run, if the child left it open or never opened it, becomes 'failed'
// with the reason (a run the child closed itself keeps the status and error it recorded).
static void record_failure(struct store *db, const struct sweep_run *run, pid_t pid, const char *state,
                           int64_t owner_pid, const char *how)
{
    char error[IO_PATH_MAX + 128];
    snprintf(error, sizeof error, "%s, see %s/%s/train.log", how, run->cfg.ckpt_dir, run->run_id);
    if (!strcmp(state, "running") && owner_pid == pid) store_run_mark_failed_owned(db, run->run_id, pid, error);
    else if (!strcmp(state, "queued")) store_run_mark_failed(db, run->run_id, error);
    err_clear();
    printf("FAILED   %4d  %s  %s: %s\n", run->idx, run->run_id, run->label, error);
}

// Counts how a child ended, from its exit status and what it left in the database: done; stopped
// by this sweep's signal (resumable); skipped when another process owns the run (exit 75);
// failed otherwise, whatever the cause, so that the sweep's own exit status says so.
static void finish(struct store *db, const struct sweep_run *run, pid_t pid, int status,
                   struct sweep_tally *tally)
{
    char state[16] = "", host[256], how[96];
    int64_t owner_pid = 0;
    if (store_run_owner(db, run->run_id, state, host, &owner_pid) < 0) err_clear();
    int left_open = !strcmp(state, "running") && owner_pid == pid;
    describe_end(status, how, sizeof how);
    if (WIFEXITED(status) && WEXITSTATUS(status) == EXIT_RUN_BUSY) {
        tally->skipped++;
        printf("skip     %4d  %s  %s: another process trains it\n", run->idx, run->run_id, run->label);
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && !strcmp(state, "done")) {
        tally->done++;
        printf("done     %4d  %s  %s\n", run->idx, run->run_id, run->label);
    } else if (stop_signal && (left_open || !strcmp(state, "interrupted"))) {
        if (left_open) store_run_mark_interrupted(db, run->run_id, pid);
        tally->interrupted++;
        printf("stopped  %4d  %s  %s (resumable)\n", run->idx, run->run_id, run->label);
    } else {
        tally->failed++;
        record_failure(db, run, pid, state, owner_pid, how);
    }
    fflush(stdout);
}

// Waits for one child; -1 only when there is none left.
static int reap(struct store *db, const struct sweep *sw, const int *slot_run, struct sweep_tally *tally)
{
    int status;
    pid_t pid = waitpid(-1, &status, 0);
    if (pid < 0) return errno == EINTR ? 0 : -1;
    int slot = find_live(pid);
    if (slot < 0) return 0;
    live[slot] = 0;
    finish(db, &sw->runs[slot_run[slot]], pid, status, tally);
    return 0;
}

static int count_live(void)
{
    int n = 0;
    for (int i = 0; i < MAX_JOBS; i++) n += live[i] > 0;
    return n;
}

// Once no run is left to start, the live runs whose thread count the sweep chose share the cores
// that finished runs freed: each is given cores / live threads through its `threads` file, which
// the trainer reads between steps (results do not depend on the thread count).
static void widen_live(const struct sweep *sw, const int *slot_run)
{
    int n = count_live();
    long cores = sweep_cores();
    if (n == 0 || cores <= n) return;
    int threads = (int)(cores / n);
    for (int i = 0; i < MAX_JOBS; i++) {
        if (live[i] <= 0) continue;
        const struct sweep_run *run = &sw->runs[slot_run[i]];
        if (!run->threads_auto || threads <= run->cfg.threads) continue;
        char path[IO_PATH_MAX], text[16];
        run_file(run, "threads", path);
        int len = snprintf(text, sizeof text, "%d\n", threads);
        if (atomic_write_file(path, text, (size_t)len) < 0) err_clear();   // the run keeps its threads
    }
}

int sweep_jobs_run(const struct sweep *sw, const int *todo, int n_todo, int jobs, const char *db_path,
                   struct store *db, struct sweep_tally *tally)
{
    struct sigaction old[FORWARDED];
    int slot_run[MAX_JOBS], next = 0, rc = 0;
    if (jobs > MAX_JOBS) jobs = MAX_JOBS;
    stop_signal = 0;
    install_handlers(old);
    while (rc == 0 && (next < n_todo || count_live() > 0)) {
        while (!stop_signal && next < n_todo && count_live() < jobs) {
            const struct sweep_run *run = &sw->runs[todo[next++]];
            pid_t pid;
            sigset_t block, old_mask;
            sigemptyset(&block);
            for (int i = 0; i < FORWARDED; i++) sigaddset(&block, forwarded[i]);
            sigprocmask(SIG_BLOCK, &block, &old_mask); // the handler must see the new child
            rc = start(run, db_path, &pid);
            if (rc == 0) slot_run[add_live(pid)] = run->idx;
            sigprocmask(SIG_SETMASK, &old_mask, NULL);
            if (rc < 0) break;
            printf("start    %4d  %s  %s\n", run->idx, run->run_id, run->label);
            fflush(stdout);
        }
        if (stop_signal) next = n_todo;
        if (count_live() > 0 && reap(db, sw, slot_run, tally) < 0) break;
        if (!stop_signal && next == n_todo) widen_live(sw, slot_run);
    }
    while (count_live() > 0) reap(db, sw, slot_run, tally); // after a failed start
    for (int i = 0; i < FORWARDED; i++) sigaction(forwarded[i], &old[i], NULL);
    tally->stopped_by_signal = stop_signal;
    return rc;
}
