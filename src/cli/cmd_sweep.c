// promoe sweep SWEEP.yaml [--jobs N] [--dry-run] [--record-only] [--db PATH] [--retry-failed] [--update]
//              [--index I|env] [--slurm [--partition P] [--time T] [--cpus C] [--array-parallel N]
//              [--out DIR]]
// Checks and expands the whole sweep file first; --dry-run then lists idx, run id, status and
// label and writes nothing. Otherwise the sweep and its runs are recorded (a changed file needs
// --update; --record-only stops there, so tables and reports can list the runs before any is
// trained), and every run not done is trained by a child process, N at once, each with
// train.threads = cores / N when the sweep leaves it at 0 (once none is left to start, the runs
// still going share the freed cores: sweep_jobs.c): done runs are skipped, interrupted or
// orphaned ones resume from their checkpoint, failed ones are retried only with --retry-failed.
// --index trains run I alone, into a shard database; --slurm writes the sbatch scripts that do
// so for every run on a cluster (sweep_cluster.h, sweep_slurm.h).
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/options.h"
#include "cli/sweep_cluster.h"
#include "cli/sweep_jobs.h"
#include "cli/sweep_slurm.h"
#include "config/sweep.h"
#include "core/error.h"
#include "core/progress.h"
#include "core/sha256.h"
#include "moe/option_use.h"
#include "store/sweeps.h"
#include "train/run_lock.h"

static const char *const sweep_usage =
    "promoe sweep SWEEP.yaml [--jobs N] [--dry-run] [--record-only] [--db PATH] [--retry-failed] [--update]\n"
    "                    [--index I|env]   (run I alone; --db may hold {index})\n"
    "                    [--slurm [--partition P] [--time T] [--cpus C] [--array-parallel N] [--out DIR]]";


enum { HOST_CAPACITY = 256, MAX_JOBS_OPTION = 256 };

struct sweep_options {
    const char *path, *db_path;
    int jobs, dry_run, record_only, retry_failed, update;
    struct sweep_cluster_options cluster;
};

static int parse_options(int argc, char **argv, struct sweep_options *o)
{
    *o = (struct sweep_options){0};
    sweep_cluster_defaults(&o->cluster);
    struct sweep_cluster_options *c = &o->cluster;
    long long jobs = 1, cpus = 0, parallel = 0;
    const char *index = NULL;
    const struct cli_option options[] = {
        CLI_OPT_INT("--jobs", &jobs, 1, MAX_JOBS_OPTION),
        CLI_OPT_STRING("--db", &o->db_path),
        CLI_OPT_FLAG("--dry-run", &o->dry_run),
        CLI_OPT_FLAG("--record-only", &o->record_only),
        CLI_OPT_FLAG("--retry-failed", &o->retry_failed),
        CLI_OPT_FLAG("--update", &o->update),
        CLI_OPT_STRING("--index", &index),
        CLI_OPT_FLAG("--slurm", &c->slurm),
        CLI_OPT_STRING("--partition", &c->partition),
        CLI_OPT_STRING("--time", &c->time),
        CLI_OPT_STRING("--out", &c->out_dir),
        CLI_OPT_INT("--cpus", &cpus, 1, SWEEP_MAX_CPUS),
        CLI_OPT_INT("--array-parallel", &parallel, 1, SWEEP_MAX_INDEX),
    };
    const struct cli_command_line line = {sweep_usage, CLI_TABLE(options), &o->path, 1, 1, NULL};
    int parsed = cli_parse(argc, argv, &line);
    if (parsed) return parsed < 0 ? -1 : parsed;
    o->jobs = (int)jobs, c->cpus = (int)cpus, c->parallel = (int)parallel;
    if (index && sweep_cluster_parse_index(index, &c->index) < 0) return EXIT_FAILED;
    if (!o->db_path && c->index < 0) o->db_path = CLI_DEFAULT_DB;  // else the shard, once loaded
    return 0;
}

// ---- --dry-run -----------------------------------------------------------------------------------

static int dry_run(const struct sweep *sw, const char *db_path)
{
    struct store *db;
    if (store_open_readonly(&db, db_path) < 0) return EXIT_FAILED;
    char stored_sha[65];
    if (db && store_sweep_sha(db, sw->name, stored_sha) == 1 && strcmp(stored_sha, sw->spec_sha256) != 0)
        printf("note: the file changed since sweep '%s' was recorded: running it needs --update\n", sw->name);
    printf("sweep %s: %d runs\n", sw->name, sw->n_runs);
    for (int i = 0; i < sw->n_runs; i++) {
        char status[16] = "queued";
        int64_t step_done = 0;
        if (db && store_run_status(db, sw->runs[i].run_id, status, &step_done) < 0) break;
        printf("%4d  %s  %-11s  %s\n", sw->runs[i].idx, sw->runs[i].run_id, status, sw->runs[i].label);
    }
    store_close(db);
    return 0;
}

// ---- changes since the sweep was recorded ----------------------------------------------------------

static int has_id(char (*ids)[17], int n, const char *id)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(ids[i], id)) return 1;
    return 0;
}

static int in_sweep(const struct sweep *sw, const char *id)
{
    for (int i = 0; i < sw->n_runs; i++)
        if (!strcmp(sw->runs[i].run_id, id)) return 1;
    return 0;
}

// Prints the runs added and removed since the recorded version; 1 when anything changed.
static int print_changes(struct store *db, const struct sweep *sw, char (*old)[17], int n_old)
{
    char stored_sha[65] = "";
    int changed = store_sweep_sha(db, sw->name, stored_sha) == 1 && strcmp(stored_sha, sw->spec_sha256) != 0;
    for (int i = 0; i < sw->n_runs; i++)
        if (n_old > 0 && !has_id(old, n_old, sw->runs[i].run_id)) {
            printf("added    %4d  %s  %s\n", sw->runs[i].idx, sw->runs[i].run_id, sw->runs[i].label);
            changed = 1;
        }
    for (int i = 0; i < n_old; i++)
        if (!in_sweep(sw, old[i])) {
            printf("removed        %s\n", old[i]);
            changed = 1;
        }
    for (int i = 0; i < sw->n_runs && i < n_old; i++)
        changed |= strcmp(sw->runs[i].run_id, old[i]) != 0; // same runs, new order
    return changed;
}

static int check_changes(struct store *db, const struct sweep *sw, const struct sweep_options *o)
{
    char (*old)[17];
    int n_old;
    if (store_sweep_members(db, sw->name, &old, &n_old) < 0) return -1;
    int changed = print_changes(db, sw, old, n_old);
    free(old);
    if (changed && !o->update)
        return err("sweep '%s' in '%s' was recorded from a different file: run again with --update "
                   "to record this version (runs already trained are kept)", sw->name, o->db_path);
    return 0;
}

// ---- recording -----------------------------------------------------------------------------------

static void set_threads(struct sweep *sw, int jobs)
{
    long cores = sweep_cores();
    int threads = cores > jobs ? (int)(cores / jobs) : 1;
    for (int i = 0; i < sw->n_runs; i++)
        if (sw->runs[i].cfg.threads == 0) {
            sw->runs[i].cfg.threads = threads;
            sw->runs[i].threads_auto = 1;
        }
}

static int record(struct store *db, const struct sweep *sw)
{
    struct store_sweep_run *rows = calloc((size_t)sw->n_runs, sizeof *rows);
    char **texts = calloc((size_t)sw->n_runs, sizeof *texts);
    char (*shas)[65] = calloc((size_t)sw->n_runs, sizeof *shas);
    int rc = rows && texts && shas ? 0 : err("out of memory");
    for (int i = 0; rc == 0 && i < sw->n_runs; i++) {
        const struct sweep_run *run = &sw->runs[i];
        int n = config_canonical(&run->cfg, NULL, 0);
        if (!(texts[i] = malloc((size_t)n + 1))) rc = err("out of memory");
        if (rc < 0) break;
        config_canonical(&run->cfg, texts[i], (size_t)n + 1);
        sha256_hex(texts[i], (size_t)n, shas[i]);
        rows[i] = (struct store_sweep_run){run->idx, run->run_id, run->label, texts[i], shas[i],
                                           (int64_t)run->cfg.seed};
    }
    if (rc == 0) rc = store_sweep_record(db, sw->name, sw->spec_text, sw->spec_sha256, rows, sw->n_runs);
    for (int i = 0; texts && i < sw->n_runs; i++) free(texts[i]);
    free(texts);
    free(shas);
    free(rows);
    return rc;
}

// ---- what to run ----------------------------------------------------------------------------------

// A 'running' run's owner: its lock (run_lock.h), or its process on this host. An owner of
// another host that cannot be probed counts as alive, except in a shard: a shard is one array
// task's, and another host was its last try.
static int owner_alive(const struct sweep_run *run, const char *host, int64_t pid, const struct sweep_options *o)
{
    char folder[IO_PATH_MAX];
    snprintf(folder, sizeof folder, "%s/%s", run->cfg.ckpt_dir, run->run_id);
    int state = run_owner_state(folder, host, pid);
    return state == OWNER_ALIVE || (state == OWNER_UNKNOWN && o->cluster.index < 0);
}

// 1 to run, 0 to skip (printing why).
static int wants_run(struct store *db, const struct sweep_run *run, const struct sweep_options *o)
{
    char status[16] = "queued", host[HOST_CAPACITY] = "";
    int64_t pid = 0;
    if (store_run_owner(db, run->run_id, status, host, &pid) < 0) return -1;
    const char *why = NULL;
    if (!strcmp(status, "done"))
        why = "done";
    else if ((!strcmp(status, "failed") || !strcmp(status, "nan")) && !o->retry_failed)
        why = "failed before (--retry-failed runs it again)";
    else if (!strcmp(status, "running") && owner_alive(run, host, pid, o))
        why = "running in another process"; // waiting would hold this sweep's slot: it is skipped
    if (!why) return 1;
    printf("skip     %4d  %s  %s: %s\n", run->idx, run->run_id, run->label, why);
    return 0;
}

static int plan(struct store *db, const struct sweep *sw, const struct sweep_options *o, int *todo,
                int *n_todo, int *skipped)
{
    *n_todo = *skipped = 0;
    int first = o->cluster.index < 0 ? 0 : o->cluster.index;
    int end = o->cluster.index < 0 ? sw->n_runs : o->cluster.index + 1;
    for (int i = first; i < end; i++) {
        int want = wants_run(db, &sw->runs[i], o);
        if (want < 0) return -1;
        if (want)
            todo[(*n_todo)++] = i;
        else
            (*skipped)++;
    }
    return 0;
}

static int report(const struct sweep *sw, const struct sweep_tally *t, const char *db_path)
{
    printf("sweep %s: %d done, %d failed, %d interrupted, %d skipped (database %s)\n", sw->name, t->done,
           t->failed, t->interrupted, t->skipped, db_path);
    if (t->stopped_by_signal)
        return err("stopped by signal %d: run the same command again to resume", t->stopped_by_signal), EXIT_FAILED;
    if (t->failed) return err("%d of %d runs failed", t->failed, sw->n_runs), EXIT_FAILED;
    return 0;
}

static int run_sweep(struct sweep *sw, const struct sweep_options *o)
{
    struct store *db;
    if (store_open(&db, o->db_path) < 0) return EXIT_FAILED;
    set_threads(sw, o->jobs);
    int *todo = malloc((size_t)sw->n_runs * sizeof *todo), n_todo = 0;
    struct sweep_tally tally = {0};
    int rc = todo ? 0 : err("out of memory");
    if (rc == 0) rc = check_changes(db, sw, o);
    if (rc == 0) rc = record(db, sw);
    if (rc == 0 && o->record_only) {
        printf("sweep %s: %d runs recorded, none trained (database %s)\n", sw->name, sw->n_runs, o->db_path);
        store_close(db);
        free(todo);
        return 0;
    }
    if (rc == 0) rc = plan(db, sw, o, todo, &n_todo, &tally.skipped);
    if (rc == 0) rc = sweep_jobs_run(sw, todo, n_todo, o->jobs, o->db_path, db, &tally);
    free(todo);
    store_close(db);
    return rc < 0 ? EXIT_FAILED : report(sw, &tally, o->db_path);
}

static int write_slurm(const struct sweep *sw, const struct sweep_options *o)
{
    struct sweep_slurm_scripts s;
    if (sweep_slurm_write(sw, o->path, o->db_path, &o->cluster, &s) < 0) return EXIT_FAILED;
    printf("sweep %s: %d runs as a Slurm job array\n  %s\n  %s (merges %s/*.db into %s)\n", sw->name,
           sw->n_runs, s.array, s.merge, s.shards, o->db_path);
    printf("submit with:\n  jid=$(sbatch --parsable %s) && sbatch --dependency=afterany:${jid%%%%;*} %s\n",
           s.array, s.merge);
    return 0;
}

// The model-level checks of every run before any runs (sweep_load checks each config on its
// own): router options are errors; keys a run's model does not read (often inherited from the
// shared base by a dense or baseline run) are reported once per key.
static int check_models(const struct sweep *sw, const char *path)
{
    const char *reported[64];
    int n_reported = 0;
    for (int i = 0; i < sw->n_runs; i++) {
        const struct sweep_run *run = &sw->runs[i];
        struct unused_options u;
        if (cli_check_model(&run->cfg) < 0 || moe_find_unused_options(&run->cfg, &u) < 0)
            return err_context("%s: run %d (%s)", path, run->idx, run->label);
        for (int k = 0; k < u.n; k++) {
            int seen = 0;
            for (int j = 0; j < n_reported; j++) seen |= strcmp(reported[j], u.found[k].key) == 0;
            if (seen || n_reported == 64) continue;
            reported[n_reported++] = u.found[k].key;
            note("%s: run %d (%s) and maybe others: %s (the key still enters the run id)", path, run->idx,
                 run->label, u.found[k].why);
        }
    }
    return 0;
}

int cmd_sweep(int argc, char **argv)
{
    struct sweep_options o;
    int status = parse_options(argc, argv, &o);
    if (status) return status < 0 ? 0 : status;   // -1: --help printed
    struct sweep sw;
    if (sweep_load(&sw, o.path) < 0) return EXIT_FAILED;
    if (check_models(&sw, o.path) < 0) {
        sweep_free(&sw);
        return EXIT_FAILED;
    }
    char shard[IO_PATH_MAX];
    if (o.cluster.index >= 0 && (sweep_cluster_check_index(&o.cluster, &sw) < 0 ||
                                 sweep_shard_path(o.db_path, sw.name, o.cluster.index, shard, sizeof shard) < 0)) {
        sweep_free(&sw);
        return EXIT_FAILED;
    }
    if (o.cluster.index >= 0) o.db_path = shard;
    status = o.cluster.slurm ? write_slurm(&sw, &o) : o.dry_run ? dry_run(&sw, o.db_path) : run_sweep(&sw, &o);
    sweep_free(&sw);
    return status;
}
