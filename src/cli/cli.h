// Subcommands of the promoe program. Each returns the exit status: 0 success, 1 failure
// (message printed by main), 75 a run owned by another live process (sysexits' EX_TEMPFAIL: try
// again later; message printed by main), 129 usage error.
#ifndef PROMOE_CLI_H
#define PROMOE_CLI_H

#include "config/config.h"

enum { EXIT_FAILED = 1, EXIT_BUSY = 75, EXIT_USAGE = 129 };

// The results database of every command's --db unless given (report has the study's own).
#define CLI_DEFAULT_DB "results/promoe.db"

int cmd_train(int argc, char **argv);
int cmd_sample(int argc, char **argv);
int cmd_forward(int argc, char **argv);
int cmd_config(int argc, char **argv);
int cmd_sweep(int argc, char **argv);
int cmd_runs(int argc, char **argv);
int cmd_table(int argc, char **argv);
int cmd_plot(int argc, char **argv);
int cmd_svd(int argc, char **argv);
int cmd_tokens(int argc, char **argv);
int cmd_routing(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_import_eval(int argc, char **argv);
int cmd_merge(int argc, char **argv);
int cmd_claims(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_import(int argc, char **argv);

// Reads a config file then applies overrides; NULL path = defaults only.
int cli_load_config(struct config *cfg, const char *path, char **overrides, int n_overrides);
// The checks that need the model's parts: the MoE spec and router options, and keys that would
// do nothing for the chosen model (moe/option_use.h).
int cli_check_model(const struct config *cfg);
// Prints "promoe: usage: ..." and returns EXIT_USAGE.
int cli_usage(const char *usage);

#endif
