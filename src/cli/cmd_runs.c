// promoe runs [--sweep NAME] [--status S] [--db PATH]
// One line per run (the run_summary view): run id, label, status, steps done / train.steps, the
// last logged loss, images per second, and where evaluations exist FD and IS at the largest
// guidance scale evaluated; failed runs add their error text.
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/error.h"
#include "store/sweeps.h"

static const char *const runs_usage = "promoe runs [--sweep NAME] [--status S] [--db PATH]";

#define DEFAULT_DB "results/promoe.db"

static void print_number(const char *format, double value)
{
    if (isnan(value))
        printf("  %8s", "-");
    else
        printf(format, value);
}

static int print_row(const struct store_run_row *r, void *ctx)
{
    int *count = ctx;
    printf("%-16s  %-28.28s  %-11s  %7lld/%-7lld", r->run_id, r->label[0] ? r->label : "-", r->status,
           (long long)r->step_done, (long long)r->steps);
    print_number("  %8.4f", r->loss);
    print_number("  %8.1f", r->img_per_s);
    if (!isnan(r->fd) || !isnan(r->is_score)) {
        printf("  cfg %.2f", r->eval_cfg);
        print_number("  fd %.3f", r->fd);
        print_number("  is %.3f", r->is_score);
    }
    if (r->error[0]) printf("  error: %s", r->error);
    printf("\n");
    (*count)++;
    return 0;
}

int cmd_runs(int argc, char **argv)
{
    const char *sweep = NULL, *status = NULL, *db_path = DEFAULT_DB;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help")) {
            printf("usage: %s\n", runs_usage);
            return 0;
        } else if (!strcmp(a, "--sweep") && i + 1 < argc) {
            sweep = argv[++i];
        } else if (!strcmp(a, "--status") && i + 1 < argc) {
            status = argv[++i];
        } else if (!strcmp(a, "--db") && i + 1 < argc) {
            db_path = argv[++i];
        } else {
            fprintf(stderr, "promoe runs: unknown or incomplete option '%s'\n", a);
            return cli_usage(runs_usage);
        }
    }
    struct store *db;
    if (access(db_path, F_OK) != 0) return err("no database at '%s'", db_path), EXIT_FAILED;
    if (store_open(&db, db_path) < 0) return EXIT_FAILED; // brings an older schema up to date
    int count = 0;
    printf("%-16s  %-28s  %-11s  %15s  %8s  %8s\n", "run", "label", "status", "steps", "loss", "img/s");
    int rc = store_run_list(db, sweep, status, print_row, &count);
    store_close(db);
    if (rc < 0) return EXIT_FAILED;
    printf("%d runs\n", count);
    return 0;
}
