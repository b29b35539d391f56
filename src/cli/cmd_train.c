// promoe train CONFIG.yaml [--set key=value | key=value ...] [--db PATH] [--resume | --force]
//              [--stop-after N] [--label NAME]
// A done run is left as it is: --resume reports it done, --force trains it again from step 0 as a
// new attempt. A run that another live process trains is refused with exit status 75.
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/options.h"
#include "config/sweep.h"
#include "core/error.h"
#include "dist/comm.h"
#include "train/trainer.h"

static const char *const train_usage =
    "promoe train CONFIG.yaml [--set key=value ...] [key=value ...] [--db PATH] [--resume | --force]\n"
    "                    [--stop-after N] [--label NAME]";

enum { OVERRIDES_MAX = 256 };

int cmd_train(int argc, char **argv)
{
    const char *config_path = NULL;
    const char *overrides[OVERRIDES_MAX];
    int n_overrides = 0;
    long long stop_after = 0;
    struct train_options o = {.db_path = CLI_DEFAULT_DB};
    const struct cli_option options[] = {
        CLI_OPT_LIST("--set", overrides, OVERRIDES_MAX, &n_overrides),
        CLI_OPT_ASSIGN(overrides, OVERRIDES_MAX, &n_overrides),
        CLI_OPT_STRING("--db", &o.db_path),
        CLI_OPT_STRING("--label", &o.label),
        CLI_OPT_FLAG("--resume", &o.resume),
        CLI_OPT_FLAG("--force", &o.force),
        CLI_OPT_INT("--stop-after", &stop_after, 1, CLI_SEED_MAX),
    };
    const struct cli_command_line line = {train_usage, CLI_TABLE(options), &config_path, 1, 1, NULL};
    int status = cli_parse(argc, argv, &line);
    if (status) return status < 0 ? 0 : status;
    if (o.label && sweep_label_check(o.label) < 0) return err_context("option '--label'"), EXIT_FAILED;
    o.stop_after = stop_after;
    struct config cfg;
    if (cli_load_config(&cfg, config_path, (char **)overrides, n_overrides) < 0) return EXIT_FAILED;
    struct train_result r;
    if (train_run(&cfg, &o, &r) < 0) return r.busy ? EXIT_BUSY : EXIT_FAILED;
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
