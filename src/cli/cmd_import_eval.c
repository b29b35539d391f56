// promoe import-eval RUN FILE [--step S] [--cfg C] [--steps N] [--n N] [--db PATH]
// Reads the guided-diffusion evaluator's printed results (Inception Score, FID, sFID, Precision,
// Recall) from FILE into `evals` (source adm-evaluator, reference VIRTUAL_imagenet256_labeled).
// Defaults: the run's latest checkpoint step, cfg 1.5, 250 sampler steps, 50000 samples (the
// paper's FID-50K setting).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/options.h"
#include "core/error.h"
#include "eval/adm_import.h"
#include "io/path.h"
#include "store/evals.h"

static const char *const import_usage =
    "promoe import-eval RUN FILE [--step S] [--cfg C] [--steps N] [--n N] [--db PATH]";

static const char ADM_REFERENCE[] = "VIRTUAL_imagenet256_labeled";
enum { PAPER_SAMPLER_STEPS = 250, PAPER_SAMPLES = 50000 };
static const double PAPER_CFG = 1.5;

struct import_args {
    const char *run, *file, *db_path;
    long long step, steps, n;
    double cfg;
};

enum { IMPORT_STEPS_MAX = 100000 };
#define IMPORT_CFG_MAX 100.0

// 0 parsed, -1 after --help, else the exit status.
static int parse(int argc, char **argv, struct import_args *a)
{
    const struct cli_option options[] = {
        CLI_OPT_INT("--step", &a->step, 0, CLI_SEED_MAX),
        CLI_OPT_INT("--steps", &a->steps, 1, IMPORT_STEPS_MAX),
        CLI_OPT_INT("--n", &a->n, 1, CLI_COUNT_MAX),
        CLI_OPT_DOUBLE("--cfg", &a->cfg, 0, IMPORT_CFG_MAX),
        CLI_OPT_STRING("--db", &a->db_path),
    };
    const char *positional[2] = {NULL, NULL};
    const struct cli_command_line line = {import_usage, CLI_TABLE(options), positional, 2, 2, NULL};
    int status = cli_parse(argc, argv, &line);
    a->run = positional[0], a->file = positional[1];
    return status;
}

static int import(struct store *db, struct import_args *a)
{
    char run_id[64], path[IO_PATH_MAX];
    struct adm_results res;
    if (store_resolve_run(db, a->run, run_id) < 0 || adm_parse_file(a->file, &res) < 0) return -1;
    int64_t step = a->step;
    if (step < 0 && store_latest_checkpoint(db, run_id, "train", path, &step) != 1)
        return err("run '%s' has no checkpoint: give its step with --step", run_id);
    char objective[32] = "rf";
    if (store_run_param(db, run_id, "objective", objective, sizeof objective) < 0) return -1;
    const char *sampler = strcmp(objective, "ddpm") == 0 ? "ddpm" : "euler";
    struct eval_row rows[ADM_METRICS];
    int n = 0;
    for (int i = 0; i < ADM_METRICS; i++)
        if (res.found[i])
            rows[n++] = (struct eval_row){run_id, step, "ema", a->cfg, sampler, (int)a->steps, a->n, ADM_REFERENCE,
                                          adm_metric_names[i], res.value[i], "adm-evaluator", -1, NAN};
    if (store_evals(db, rows, n) < 0) return -1;
    printf("run %s step %lld cfg %.2f:", run_id, (long long)step, a->cfg);
    for (int i = 0; i < ADM_METRICS; i++)
        if (res.found[i]) printf(" %s %.6g", adm_metric_names[i], res.value[i]);
    printf("\n");
    return 0;
}

int cmd_import_eval(int argc, char **argv)
{
    struct import_args a = {NULL, NULL, CLI_DEFAULT_DB, -1, PAPER_SAMPLER_STEPS, PAPER_SAMPLES, PAPER_CFG};
    int status = parse(argc, argv, &a);
    if (status) return status < 0 ? 0 : status;
    struct store *db;
    if (store_open(&db, a.db_path) < 0) return EXIT_FAILED;
    int rc = import(db, &a);
    store_close(db);
    return rc ? EXIT_FAILED : 0;
}
