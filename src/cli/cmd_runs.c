// promoe runs [--sweep NAME] [--status S] [--db PATH]
// One line per run (the run_summary view): run id, label, status, steps done / train.steps, the
// last logged loss, images per second, and where evaluations exist FD and IS at the largest
// guidance scale evaluated; failed runs add their error text. A 'running' run whose owner is
// gone shows as 'orphaned' (and --status orphaned lists those).
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/error.h"
#include "io/path.h"
#include "store/sweeps.h"

static const char *const runs_usage = "promoe runs [--sweep NAME] [--status S] [--db PATH]";


#include "cli/options.h"
#include "train/run_lock.h"

static const char *const statuses[] = {"queued", "running", "orphaned", "done", "failed", "nan", "interrupted"};

struct listing {
    struct store *db;
    const char *want;   // --status, NULL: any
    int count;
};

static void print_number(const char *format, double value)
{
    if (isnan(value))
        printf("  %8s", "-");
    else
        printf(format, value);
}

// A 'running' run whose owner is gone (killed without closing it) shows as 'orphaned': its owner
// lock (<ckpt.dir>/<run id>/owner.lock) is free, or, without a lock file, its recorded process on
// this host is dead. A run of another host without a readable lock stays 'running'.
static int owner_gone(struct listing *l, const char *run_id)
{
    char status[16], host[256] = "", ckpt_dir[IO_PATH_MAX] = "", folder[IO_PATH_MAX + 64] = "";
    int64_t pid = 0;
    if (store_run_owner(l->db, run_id, status, host, &pid) != 1) return 0;
    if (store_run_param(l->db, run_id, "ckpt.dir", ckpt_dir, sizeof ckpt_dir) == 1)
        snprintf(folder, sizeof folder, "%s/%s", ckpt_dir, run_id);
    err_clear();
    return run_owner_state(folder, host, pid) == OWNER_GONE;
}

static int print_row(const struct store_run_row *row, void *ctx)
{
    struct listing *l = ctx;
    struct store_run_row r = *row;
    if (!strcmp(r.status, "running") && owner_gone(l, r.run_id)) snprintf(r.status, sizeof r.status, "orphaned");
    if (l->want && strcmp(l->want, r.status) != 0) return 0;
    printf("%-16s  %-28.28s  %-11s  %7lld/%-7lld", r.run_id, r.label[0] ? r.label : "-", r.status,
           (long long)r.step_done, (long long)r.steps);
    print_number("  %8.4f", r.loss);
    print_number("  %8.1f", r.img_per_s);
    if (!isnan(r.fd) || !isnan(r.is_score)) {
        printf("  cfg %.2f", r.eval_cfg);
        print_number("  fd %.3f", r.fd);
        print_number("  is %.3f", r.is_score);
    }
    if (r.error[0]) printf("  error: %s", r.error);
    printf("\n");
    l->count++;
    return 0;
}

static int check_status(const char *status)
{
    for (size_t i = 0; i < sizeof statuses / sizeof *statuses; i++)
        if (!strcmp(status, statuses[i])) return 0;
    return err("option '--status': '%s' is not one of queued, running, orphaned, done, failed, nan, interrupted", status);
}

int cmd_runs(int argc, char **argv)
{
    const char *sweep = NULL, *status = NULL, *db_path = CLI_DEFAULT_DB;
    const struct cli_option options[] = {
        CLI_OPT_STRING("--sweep", &sweep),
        CLI_OPT_STRING("--status", &status),
        CLI_OPT_STRING("--db", &db_path),
    };
    const struct cli_command_line line = {runs_usage, CLI_TABLE(options), NULL, 0, 0, NULL};
    int parsed = cli_parse(argc, argv, &line);
    if (parsed) return parsed < 0 ? 0 : parsed;
    if (status && check_status(status) < 0) return EXIT_FAILED;
    struct store *db;
    if (access(db_path, F_OK) != 0) return err("no database at '%s'", db_path), EXIT_FAILED;
    if (store_open(&db, db_path) < 0) return EXIT_FAILED; // brings an older schema up to date
    struct listing l = {db, status, 0};
    printf("%-16s  %-28s  %-11s  %15s  %8s  %8s\n", "run", "label", "status", "steps", "loss", "img/s");
    // 'orphaned' is a 'running' row whose owner is gone: the database is asked for 'running'
    const char *stored = status && !strcmp(status, "orphaned") ? "running" : status;
    int rc = store_run_list(db, sweep, stored, print_row, &l);
    store_close(db);
    if (rc < 0) return EXIT_FAILED;
    printf("%d runs\n", l.count);
    return 0;
}
