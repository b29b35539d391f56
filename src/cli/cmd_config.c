// promoe config --list
// promoe config CONFIG.yaml [--set key=value ...] [--params]
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/options.h"
#include "core/error.h"
#include "model/dit.h"

static const char *const config_usage =
    "promoe config --list | promoe config CONFIG.yaml [--set key=value ...] [--params]";

enum { CANONICAL_MAX = 16384, OVERRIDES_MAX = 256 };

static int print_params(const struct config *cfg)
{
    struct dit m;
    if (dit_create(&m, cfg, 0) < 0) return EXIT_FAILED;
    long long total = params_count_total(&m.table), active = params_count_activated(&m.table);
    printf("parameters: total %lld (%.2fM), activated %lld (%.2fM)\n", total, total / 1e6, active,
           active / 1e6);
    dit_destroy(&m);
    return 0;
}

int cmd_config(int argc, char **argv)
{
    const char *path = NULL, *overrides[OVERRIDES_MAX];
    int n_overrides = 0, params = 0, list = 0;
    const struct cli_option options[] = {
        CLI_OPT_FLAG("--list", &list),
        CLI_OPT_FLAG("--params", &params),
        CLI_OPT_LIST("--set", overrides, OVERRIDES_MAX, &n_overrides),
        CLI_OPT_ASSIGN(overrides, OVERRIDES_MAX, &n_overrides),
    };
    const struct cli_command_line line = {config_usage, CLI_TABLE(options), &path, 0, 1, NULL};
    int status = cli_parse(argc, argv, &line);
    if (status) return status < 0 ? 0 : status;
    if (list) {
        config_print_list(stdout);
        return 0;
    }
    if (!path) return cli_usage(config_usage);
    struct config cfg;
    if (cli_load_config(&cfg, path, (char **)overrides, n_overrides) < 0) return EXIT_FAILED;
    if (params) return print_params(&cfg);
    char text[CANONICAL_MAX], id[17];
    config_canonical(&cfg, text, sizeof text);
    config_run_id(&cfg, id);
    printf("# run id %s\n%s", id, text);
    return 0;
}
