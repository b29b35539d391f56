// promoe import WEIGHTS.safetensors CONFIG.yaml [--set key=value ...] [key=value ...] [--out CKPT]
//               [--step S] [--db PATH] [--label NAME]
// The reverse of export: a state dict of an official class (safetensors; DiT, TC-DiT, EC-DiT,
// DiffMoE, ProMoE names) and the config that describes its model become a promoe checkpoint (EMA
// and online weights both the imported ones, AdamW moments zero) at ckpt.dir/<run id>/latest.safetensors
// (or --out), recorded in the database as a done run, so that `promoe sample` and `promoe eval`
// take it as they take a trained one.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/options.h"
#include "config/sweep.h"
#include "core/error.h"
#include "core/sha256.h"
#include "io/path.h"
#include "model/checkpoint.h"
#include "model/dit.h"
#include "nn/params.h"
#include "store/db.h"
#include "store/runs.h"

static const char *const import_usage =
    "promoe import WEIGHTS.safetensors CONFIG.yaml [--set key=value ...] [key=value ...] [--out CKPT]\n"
    "                     [--step S] [--db PATH] [--label NAME]";

#define DEFAULT_DB "results/promoe.db"
enum { OVERRIDES_MAX = 256, CONFIG_TEXT_MAX = 16384 };   // as the trainer's config text

struct import_args {
    const char *positional[2], *out, *db_path, *label;
    const char *overrides[OVERRIDES_MAX];
    int n_overrides;
    long long step;
};

// Constant buffers (DiffMoE's ema_decay) hold what the config sets (model.moe.threshold_momentum):
// the router reads the config, so a state dict with another value would not be the model it names.
static int check_constants(const char *path, const struct param_table *t, const real *w)
{
    for (int i = 0; i < t->n; i++) {
        const struct param_entry *e = &t->entries[i];
        for (size_t k = 0; e->init == INIT_CONSTANT && k < e->count; k++)
            if (w[e->offset + k] != (real)e->std)
                return err("'%s': tensor '%s' is %g where the config gives %g (model.moe.threshold_momentum)", path,
                           e->name, (double)w[e->offset + k], e->std);
    }
    return 0;
}

// Records the imported run as done with its checkpoint; refuses a run id the database holds.
static int record(const struct import_args *a, const struct config *cfg, const struct dit *m, const char *run_id,
                  const char *text, const char *ckpt, int64_t bytes)
{
    struct store *db;
    if (store_open(&db, a->db_path) < 0) return -1;
    char status[16], sha[65];
    int64_t done;
    int rc = store_run_status(db, run_id, status, &done);
    if (rc == 1) rc = err("run %s (the config's run id) is already in '%s' (status %s): not imported", run_id, a->db_path, status);
    sha256_hex(text, strlen(text), sha);
    struct run_info info = {run_id, sha, text, a->label ? a->label : "imported", (int64_t)cfg->seed, 1,
                            params_count_total(&m->table), params_count_activated(&m->table), a->step, 1};
    if (!rc) rc = store_run_begin(db, &info);
    if (!rc) rc = store_checkpoint(db, run_id, a->step, "train", ckpt, bytes, "");
    if (!rc) rc = store_run_end(db, run_id, "done", NULL, 0, 0);
    store_close(db);
    return rc;
}

static int import(const struct import_args *a, const struct config *cfg, struct dit *m)
{
    static char text[CONFIG_TEXT_MAX];
    char run_id[17], ckpt[IO_PATH_MAX];
    config_canonical(cfg, text, sizeof text);
    config_run_id(cfg, run_id);
    if (a->out) snprintf(ckpt, sizeof ckpt, "%s", a->out);
    else snprintf(ckpt, sizeof ckpt, "%s/%s/latest.safetensors", cfg->ckpt_dir, run_id);
    if (dit_create(m, cfg, 0) < 0) return -1;
    size_t n = m->table.total ? m->table.total : 1;
    real *w = calloc(n, sizeof(real)), *zero = calloc(n, sizeof(real));
    int rc = w && zero ? 0 : err("out of memory importing '%s'", a->positional[0]);
    if (!rc) rc = checkpoint_import_weights(a->positional[0], &m->table, w);
    if (!rc) rc = check_constants(a->positional[0], &m->table, w);
    if (!rc && !a->out) {
        char folder[IO_PATH_MAX];
        snprintf(folder, sizeof folder, "%s/%s", cfg->ckpt_dir, run_id);
        rc = io_make_folders(folder);
    }
    struct train_state s = {w, w, zero, zero, a->step};
    int64_t bytes = 0;
    if (!rc) rc = checkpoint_save(ckpt, &m->table, &s, text, run_id, &bytes);
    if (!rc) rc = record(a, cfg, m, run_id, text, ckpt, bytes);
    if (!rc) printf("run %s: %d tensors from %s\ncheckpoint %s\ndatabase %s\n", run_id, m->table.n, a->positional[0], ckpt, a->db_path);
    free(w);
    free(zero);
    return rc;
}

int cmd_import(int argc, char **argv)
{
    struct import_args a = {.db_path = DEFAULT_DB};
    const struct cli_option options[] = {
        CLI_OPT_LIST("--set", a.overrides, OVERRIDES_MAX, &a.n_overrides),
        CLI_OPT_ASSIGN(a.overrides, OVERRIDES_MAX, &a.n_overrides),
        CLI_OPT_STRING("--out", &a.out),
        CLI_OPT_STRING("--db", &a.db_path),
        CLI_OPT_STRING("--label", &a.label),
        CLI_OPT_INT("--step", &a.step, 0, CLI_SEED_MAX),
    };
    const struct cli_command_line line = {import_usage, CLI_TABLE(options), a.positional, 2, 2, NULL};
    int status = cli_parse(argc, argv, &line);
    if (status) return status < 0 ? 0 : status;
    if (a.label && sweep_label_check(a.label) < 0) return err_context("option '--label'"), EXIT_FAILED;
    struct config cfg;
    if (cli_load_config(&cfg, a.positional[1], (char **)a.overrides, a.n_overrides) < 0) return EXIT_FAILED;
    struct dit m;
    memset(&m, 0, sizeof m);
    int rc = import(&a, &cfg, &m);
    dit_destroy(&m);
    return rc ? EXIT_FAILED : 0;
}
