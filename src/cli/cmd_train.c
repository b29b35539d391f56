// promoe train CONFIG.yaml [--set key=value | key=value ...] [--db PATH] [--resume]
//              [--stop-after N] [--label NAME]
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/error.h"
#include "dist/comm.h"
#include "train/trainer.h"

static const char *const train_usage =
    "promoe train CONFIG.yaml [--set key=value ...] [key=value ...] [--db PATH] [--resume]\n"
    "                    [--stop-after N] [--label NAME]";

#define DEFAULT_DB "results/promoe.db"

int cmd_train(int argc, char **argv)
{
    const char *config_path = NULL;
    char *overrides[256];
    int n_overrides = 0;
    struct train_options o = {.db_path = DEFAULT_DB};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has_value = i + 1 < argc;
        if (!strcmp(a, "--help")) {
            printf("usage: %s\n", train_usage);
            return 0;
        } else if (!strcmp(a, "--set") && has_value && n_overrides < 256) {
            overrides[n_overrides++] = argv[++i];
        } else if (!strcmp(a, "--db") && has_value) {
            o.db_path = argv[++i];
        } else if (!strcmp(a, "--label") && has_value) {
            o.label = argv[++i];
        } else if (!strcmp(a, "--resume")) {
            o.resume = 1;
        } else if (!strcmp(a, "--stop-after") && has_value) {
            long long n;
            if (cli_int(a, argv[++i], &n) < 0) return EXIT_FAILED;
            o.stop_after = n;
        } else if (a[0] != '-' && strchr(a, '=') && n_overrides < 256) {
            overrides[n_overrides++] = argv[i];
        } else if (a[0] != '-' && !config_path) {
            config_path = a;
        } else {
            fprintf(stderr, "promoe train: unknown or incomplete option '%s'\n", a);
            return cli_usage(train_usage);
        }
    }
    if (!config_path) return cli_usage(train_usage);
    struct config cfg;
    if (cli_load_config(&cfg, config_path, overrides, n_overrides) < 0) return EXIT_FAILED;
    struct train_result r;
    if (train_run(&cfg, &o, &r) < 0) return EXIT_FAILED;
    if (!comm_is_root()) return 0;   // rank 0 reports for the whole data-parallel job
    if (r.already_done) {
        printf("run %s is already done (database %s)\n", r.run_id, o.db_path);
        return 0;
    }
    printf("run %s: %lld steps, loss %.4f -> %.4f, %.1f img/s\n", r.run_id, (long long)r.steps_done,
           r.first_loss, r.last_loss, r.img_per_s);
    printf("checkpoint %s\n", r.checkpoint);
    if (r.grid[0]) printf("samples %s\n", r.grid);
    printf("database %s\n", o.db_path);
    return 0;
}
