// promoe export CHECKPOINT --out FILE.safetensors [--weights ema|online]
// Writes a checkpoint's weights alone under the official classes' tensor names: a state dict that
// the model's official PyTorch class (DiT, TC-DiT, EC-DiT, DiffMoE, ProMoE) loads with strict=True.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/model_load.h"
#include "cli/options.h"
#include "core/error.h"
#include "io/path.h"
#include "model/checkpoint.h"
#include "model/dit.h"

static const char *const export_usage = "promoe export CHECKPOINT --out FILE.safetensors [--weights ema|online]";

// "ema" or "online" into *which; else an error naming the option and the value.
static int parse_weights(const char *text, enum checkpoint_weights *which)
{
    if (strcmp(text, "ema") == 0) *which = CHECKPOINT_WEIGHTS_EMA;
    else if (strcmp(text, "online") == 0) *which = CHECKPOINT_WEIGHTS_ONLINE;
    else return err("option '--weights': '%s' is not one of ema, online", text);
    return 0;
}

// The model that the checkpoint's stored config describes (its parameter table only).
static int model_of(const char *path, struct config *cfg, struct dit *m)
{
    return cli_checkpoint_config(path, cfg) < 0 ? -1 : dit_create(m, cfg, 0);
}

int cmd_export(int argc, char **argv)
{
    const char *path = NULL, *out = NULL, *weights = "ema";
    const struct cli_option options[] = {
        CLI_OPT_STRING("--out", &out),
        CLI_OPT_STRING("--weights", &weights),
    };
    const struct cli_command_line line = {export_usage, CLI_TABLE(options), &path, 1, 1, NULL};
    int status = cli_parse(argc, argv, &line);
    if (status) return status < 0 ? 0 : status;
    if (!out) return cli_usage(export_usage);
    enum checkpoint_weights which = CHECKPOINT_WEIGHTS_EMA;
    if (parse_weights(weights, &which) < 0) return EXIT_FAILED;
    struct config cfg;
    struct dit m;
    memset(&m, 0, sizeof m);
    int64_t bytes = 0;
    int rc = model_of(path, &cfg, &m);
    if (!rc) rc = checkpoint_export(path, &m.table, which, out, &bytes);
    if (!rc) printf("%s: %d tensors (%s weights), %lld bytes\n", out, m.table.n, weights, (long long)bytes);
    dit_destroy(&m);
    return rc ? EXIT_FAILED : 0;
}
