// promoe config --list
// promoe config CONFIG.yaml [--set key=value ...] [--params]
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/error.h"
#include "model/dit.h"

static const char *const config_usage =
    "promoe config --list | promoe config CONFIG.yaml [--set key=value ...] [--params]";

enum { CANONICAL_MAX = 16384 };

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
    const char *path = NULL;
    char *overrides[256];
    int n_overrides = 0, params = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--list")) {
            config_print_list(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--help")) {
            printf("usage: %s\n", config_usage);
            return 0;
        } else if (!strcmp(argv[i], "--params")) {
            params = 1;
        } else if (!strcmp(argv[i], "--set") && i + 1 < argc && n_overrides < 256) {
            overrides[n_overrides++] = argv[++i];
        } else if (argv[i][0] != '-' && strchr(argv[i], '=') && n_overrides < 256) {
            overrides[n_overrides++] = argv[i];
        } else if (argv[i][0] != '-' && !path) {
            path = argv[i];
        } else {
            return cli_usage(config_usage);
        }
    }
    if (!path) return cli_usage(config_usage);
    struct config cfg;
    if (cli_load_config(&cfg, path, overrides, n_overrides) < 0) return EXIT_FAILED;
    if (params) return print_params(&cfg);
    char text[CANONICAL_MAX], id[17];
    config_canonical(&cfg, text, sizeof text);
    config_run_id(&cfg, id);
    printf("# run id %s\n%s", id, text);
    return 0;
}
