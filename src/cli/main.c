// promoe: one program, subcommands dispatched through a table (as git does). Only this file and
// the other cli/ files print; library functions return errors as values.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/error.h"
#include "dist/comm.h"

struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
};

static const struct command commands[] = {
    {"train", cmd_train, "train a model from a YAML config, logging to the results database"},
    {"sample", cmd_sample, "generate images from a checkpoint (PNG grid, .npy or .npz)"},
    {"forward", cmd_forward, "run the network on given inputs (.npy) and write its raw output"},
    {"config", cmd_config, "list every config key, or print a config's resolved keys and parameters"},
};

static int usage(FILE *out)
{
    fprintf(out, "usage: promoe <command> [arguments]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n'promoe <command> --help' describes a command.\n");
    return out == stdout ? 0 : EXIT_USAGE;
}

int main(int argc, char **argv)
{
    if (argc < 2) return usage(stderr);
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) return usage(stdout);
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++) {
        if (strcmp(argv[1], commands[i].name) != 0) continue;
        err_clear();
        if (comm_init(&argc, &argv) < 0) {   // one process, or a rank of an MPI job (`make mpi`)
            fprintf(stderr, "promoe: error: %s\n", err_message());
            return EXIT_FAILED;
        }
        int status = commands[i].run(argc - 1, argv + 1);
        if (status == EXIT_FAILED) fprintf(stderr, "promoe %s: error: %s\n", argv[1], err_message());
        comm_finish(status);
        return status;
    }
    fprintf(stderr, "promoe: '%s' is not a command\n", argv[1]);
    return usage(stderr);
}
