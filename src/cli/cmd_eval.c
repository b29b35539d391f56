// promoe eval RUN [--cfg 1.0,1.5] [--n N] [--steps N] [--seed S] [--db PATH] [--batch B] [--precision P]
// Samples from the latest checkpoint of a run (EMA weights) and stores the mini-scale sample
// quality (fd, is, precision, recall, class_acc per cfg scale) in the `evals` table; prints a small table.
// --batch B: images per sampler pass (default: the run's sample.batch, else 64).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/model_load.h"
#include "cli/options.h"
#include "core/error.h"
#include "eval/evaluate.h"
#include "io/path.h"
#include "store/evals.h"

static const char *const eval_usage =
    "promoe eval RUN [--cfg 1.0,1.5] [--n N] [--steps N] [--seed S] [--db PATH] [--batch B]\n"
    "                   [--precision fp32|bf16]";

enum { DEFAULT_EVAL_PASS = 64 };

struct eval_args {
    const char *run, *cfg_list, *db_path, *precision;   // precision: NULL = the run's
    long long n, steps, seed, batch;
};

// Ranges as those of eval.n and eval.steps in the config key table.
enum { EVAL_N_MIN = 4, EVAL_N_MAX = 100000, EVAL_STEPS_MAX = 100000, EVAL_BATCH_MAX = 65536 };

// 0 parsed, -1 after --help, else the exit status.
static int parse(int argc, char **argv, struct eval_args *a)
{
    const struct cli_option options[] = {
        CLI_OPT_INT("--n", &a->n, EVAL_N_MIN, EVAL_N_MAX),
        CLI_OPT_INT("--steps", &a->steps, 1, EVAL_STEPS_MAX),
        CLI_OPT_INT("--seed", &a->seed, 0, CLI_SEED_MAX),
        CLI_OPT_INT("--batch", &a->batch, 1, EVAL_BATCH_MAX),
        CLI_OPT_STRING("--cfg", &a->cfg_list),
        CLI_OPT_STRING("--db", &a->db_path),
        CLI_OPT_STRING("--precision", &a->precision),
    };
    const struct cli_command_line line = {eval_usage, CLI_TABLE(options), &a->run, 1, 1, NULL};
    return cli_parse(argc, argv, &line);
}

static void print_table(const struct eval_request *r, const struct eval_figures *f, double accuracy)
{
    printf("run %s step %lld: %d samples per cfg, %d sampler steps, feature network test accuracy %.4f\n",
           r->run_id, (long long)r->step, r->n, r->steps, accuracy);
    printf("%6s %10s %8s %10s %8s %10s %8s\n", "cfg", "fd", "is", "precision", "recall", "class_acc", "wall_s");
    for (int c = 0; c < r->n_cfg; c++)
        printf("%6.2f %10.4f %8.4f %10.4f %8.4f %10.4f %8.1f\n", f[c].cfg, f[c].fd, f[c].is, f[c].precision,
               f[c].recall, f[c].class_acc, f[c].wall_s);
}

static int evaluate(struct store *db, const struct eval_args *a)
{
    char run_id[64], path[IO_PATH_MAX], featnet_dir[IO_PATH_MAX];
    int64_t step;
    if (store_resolve_run(db, a->run, run_id) < 0) return -1;
    if (store_latest_checkpoint(db, run_id, "train", path, &step) != 1)
        return err("run '%s' has no checkpoint in '%s'", run_id, a->db_path);
    struct config cfg;
    struct dit m;
    real *weights = NULL;
    if (cli_load_sampler(path, (int)a->batch, DEFAULT_EVAL_PASS, a->precision, &cfg, &m, &weights) < 0)
        return free(weights), -1;
    struct eval_request r = {.run_id = run_id, .step = step, .seed = a->seed >= 0 ? (uint64_t)a->seed : cfg.seed};
    r.n = a->n > 0 ? (int)a->n : cfg.eval_n;
    r.steps = a->steps > 0 ? (int)a->steps : cfg.eval_steps;
    eval_featnet_dir(a->db_path, featnet_dir);
    r.featnet_dir = featnet_dir;
    struct eval_figures figures[EVAL_MAX_CFG];
    double accuracy = 0;
    int rc = eval_parse_cfg_list(a->cfg_list ? a->cfg_list : cfg.eval_cfg, a->cfg_list ? "--cfg" : "eval.cfg", &r);
    if (!rc) rc = eval_model(&m, &cfg, &r, db, figures, &accuracy);
    if (!rc) print_table(&r, figures, accuracy);
    free(weights);
    dit_destroy(&m);
    return rc;
}

int cmd_eval(int argc, char **argv)
{
    struct eval_args a = {.db_path = CLI_DEFAULT_DB, .seed = -1};   // seed -1: the run's own; batch 0: sample.batch
    int status = parse(argc, argv, &a);
    if (status) return status < 0 ? 0 : status;
    struct store *db;
    if (store_open(&db, a.db_path) < 0) return EXIT_FAILED;
    int rc = evaluate(db, &a);
    store_close(db);
    return rc ? EXIT_FAILED : 0;
}
