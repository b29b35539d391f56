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
    {"sweep", cmd_sweep, "train every run of a sweep file, resumably, N at once"},
    {"runs", cmd_runs, "list runs with their status and key figures"},
    {"export", cmd_export, "write a checkpoint's weights alone under the official classes' names (safetensors)"},
    {"import", cmd_import, "make a checkpoint from an official state dict (safetensors) and its config"},
    {"config", cmd_config, "list every config key, or print a config's resolved keys and parameters"},
    {"eval", cmd_eval, "sample a run's latest checkpoint and store its sample quality (fd, is, precision, recall, class_acc)"},
    {"import-eval", cmd_import_eval, "store the guided-diffusion evaluator's printed results for a run"},
    {"plot", cmd_plot, "draw the paper's loss and scaling figures as PNG with gnuplot"},
    {"merge", cmd_merge, "fold shard databases (one per Slurm array task) into the main database"},
    {"table", cmd_table, "print a paper table with our figures beside the paper's (md, latex, csv)"},
    {"claims", cmd_claims, "decide the paper's claims from paired runs over seeds (difference, 95% interval, verdict)"},
    {"report", cmd_report, "write the mini study's report (REPORT.md, tables, figures) from the database"},
    {"svd", cmd_svd, "expert diversity: subspace similarity of the experts' singular vectors"},
    {"tokens", cmd_tokens, "token semantics of one block: class separation, k-means, t-SNE plots"},
    {"routing", cmd_routing, "routing specialisation: class-expert mutual information and heat maps"},
    {"serve", cmd_serve, "the results dashboard: a local web page over the database, live while sweeps run"},
};

static int usage(FILE *out)
{
    fprintf(out, "usage: promoe <command> [arguments]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        fprintf(out, "  %-12s %s\n", commands[i].name, commands[i].summary);
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
        if (status == EXIT_FAILED || status == EXIT_BUSY) fprintf(stderr, "promoe %s: error: %s\n", argv[1], err_message());
        comm_finish(status);
        return status;
    }
    fprintf(stderr, "promoe: '%s' is not a command\n", argv[1]);
    return usage(stderr);
}
