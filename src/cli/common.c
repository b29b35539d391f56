// Helpers shared by the subcommands: config loading with overrides, the usage line (options are
// parsed by cli/options.h).
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"
#include "core/error.h"
#include "moe/spec.h"

int cli_load_config(struct config *cfg, const char *path, char **overrides, int n_overrides)
{
    config_defaults(cfg);
    if (path && config_load_file(cfg, path) < 0) return -1;
    for (int i = 0; i < n_overrides; i++)
        if (config_set(cfg, overrides[i]) < 0) return -1;
    struct moe_spec spec;  // the expert string and router options too, so the message can name the file
    if (config_validate(cfg) < 0 || (moe_enabled(cfg) && moe_spec_from_config(cfg, &spec) < 0))
        return path ? err_context("'%s'", path) : -1;
    return 0;
}

int cli_usage(const char *usage)
{
    fprintf(stderr, "promoe: usage: %s\n", usage);
    return EXIT_USAGE;
}
