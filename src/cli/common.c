// Helpers shared by the subcommands: config loading with overrides, the usage line (options are
// parsed by cli/options.h).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/error.h"
#include "core/progress.h"
#include "moe/option_use.h"
#include "moe/spec.h"

// An override "key=value" names key.
static int override_names(const char *assignment, const char *key)
{
    size_t n = strlen(key);
    return strncmp(assignment, key, n) == 0 && assignment[n] == '=';
}

// Keys that would do nothing (moe/option_use.h): an override asking for one is refused; one from
// a file (often inherited by a dense or baseline variant of a shared base) is reported.
static int check_unused(const struct config *cfg, const char *path, char **overrides, int n_overrides)
{
    struct unused_options u;
    if (moe_find_unused_options(cfg, &u) < 0) return -1;
    for (int i = 0; i < u.n; i++)
        for (int j = 0; j < n_overrides; j++)
            if (override_names(overrides[j], u.found[i].key))
                return err("--set %s: %s; remove the override", overrides[j], u.found[i].why);
    for (int i = 0; i < u.n; i++)
        note("%s: %s (the key still enters the run id)", path ? path : "config", u.found[i].why);
    return 0;
}

int cli_load_config(struct config *cfg, const char *path, char **overrides, int n_overrides)
{
    config_defaults(cfg);
    if (path && config_load_file(cfg, path) < 0) return -1;
    for (int i = 0; i < n_overrides; i++)
        if (config_set(cfg, overrides[i]) < 0) return -1;
    // the expert string and router options too, so the message can name the file
    if (config_validate(cfg) < 0 || cli_check_model(cfg) < 0) return path ? err_context("'%s'", path) : -1;
    return check_unused(cfg, path, overrides, n_overrides);
}

int cli_check_model(const struct config *cfg)
{
    struct moe_spec spec;
    return moe_enabled(cfg) && moe_spec_from_config(cfg, &spec) < 0 ? -1 : 0;
}

int cli_usage(const char *usage)
{
    fprintf(stderr, "promoe: usage: %s\n", usage);
    return EXIT_USAGE;
}
