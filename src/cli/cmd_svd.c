// promoe svd RUN [--db PATH] [--k K] [--variant out|in] [--include-shared]
// Expert diversity of every MoE layer of a run's latest checkpoint (EMA weights, ROUTERS.md 4.1):
// mean subspace similarity of the experts' top-k singular vectors, printed for one k and variant
// beside the random-subspace level k / D, and stored in `diversity` for every k of the curve and
// both variants (layer -1 = the mean over MoE layers; variant "+all" when shared and
// unconditional experts are included).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/diversity.h"
#include "cli/cli.h"
#include "cli/options.h"
#include "cli/model_load.h"
#include "cli/run_lookup.h"
#include "core/error.h"

static const char *const svd_usage = "promoe svd RUN [--db PATH] [--k K] [--variant out|in] [--include-shared]";

enum { SVD_DEFAULT_K = 8, SVD_MAX_KS = DIVERSITY_KS + 1, SVD_VARIANT_NAME = 16 };

struct svd_args {
    const char *run, *db, *variant;
    long long k;
    int include_all;
};

enum { SVD_K_MAX = 65536 };

// 0 parsed, -1 after --help, else the exit status.
static int parse_args(int argc, char **argv, struct svd_args *a)
{
    *a = (struct svd_args){NULL, CLI_DEFAULT_DB, "out", SVD_DEFAULT_K, 0};
    const struct cli_option options[] = {
        CLI_OPT_FLAG("--include-shared", &a->include_all),
        CLI_OPT_STRING("--db", &a->db),
        CLI_OPT_STRING("--variant", &a->variant),
        CLI_OPT_INT("--k", &a->k, 1, SVD_K_MAX),
    };
    const struct cli_command_line line = {svd_usage, CLI_TABLE(options), &a->run, 1, 1, NULL};
    int status = cli_parse(argc, argv, &line);
    if (status) return status;
    if (strcmp(a->variant, "out") && strcmp(a->variant, "in"))
        return err("option '--variant': '%s' is not out or in", a->variant), EXIT_FAILED;
    return 0;
}

// The curve's k up to min(D, h), plus the asked k; returns their count.
static int curve_ks(int limit, int asked, int *ks)
{
    int n = 0, has = 0;
    for (int i = 0; i < DIVERSITY_KS; i++)
        if (diversity_ks[i] <= limit) ks[n++] = diversity_ks[i], has |= diversity_ks[i] == asked;
    if (!has && asked <= limit) ks[n++] = asked;
    return n;
}

// Curve values [n_k] of one layer and variant.
static int layer_curve(const struct moe_layer *L, int variant, int include_all, const int *ks, int n_k, double *values)
{
    double *matrices;
    if (diversity_layer_matrices(L, variant, include_all, &matrices) < 0) return -1;
    int E = diversity_expert_count(L, include_all);
    int rc = diversity_of_matrices(matrices, E, L->D, L->spec.hidden, ks, n_k, values);
    free(matrices);
    return rc < 0 ? err_context("block %d, variant %s", L->block, diversity_variant_names[variant]) : 0;
}

struct svd_result {
    int ks[SVD_MAX_KS], n_k, layers, shown_k_index;
    struct diversity_row *rows;
    int n_rows;
};

static void add_row(struct svd_result *r, int layer, int k, const char *variant, double value)
{
    r->rows[r->n_rows++] = (struct diversity_row){layer, k, variant, value};
}

// Rows of every layer, variant and k, and of the model mean (layer -1); variant names in names.
static int compute(const struct dit *m, int include_all, char names[DIVERSITY_VARIANTS][SVD_VARIANT_NAME], struct svd_result *r)
{
    double means[DIVERSITY_VARIANTS][SVD_MAX_KS] = {{0}}, values[SVD_MAX_KS];
    for (int v = 0; v < DIVERSITY_VARIANTS; v++) {
        for (int i = 0; i < m->shape.depth; i++) {
            if (!m->moe[i]) continue;
            if (layer_curve(m->moe[i], v, include_all, r->ks, r->n_k, values) < 0) return -1;
            for (int j = 0; j < r->n_k; j++) add_row(r, i, r->ks[j], names[v], values[j]), means[v][j] += values[j] / r->layers;
        }
        for (int j = 0; j < r->n_k; j++) add_row(r, -1, r->ks[j], names[v], means[v][j]);
    }
    return 0;
}

static void print_table(const struct dit *m, const struct run_ref *run, const struct svd_args *a, const struct svd_result *r,
                        const char *variant_name)
{
    int D = m->shape.hidden, k = (int)a->k;
    printf("run %s, step %lld: expert diversity, variant %s, k %d (%s)\n", run->run_id, (long long)run->step, a->variant, k,
           a->include_all ? "all experts" : "routed experts");
    printf("%-6s %7s %6s %10s %10s\n", "layer", "experts", "pairs", "phi", "random k/D");
    for (int i = 0; i < r->n_rows; i++) {
        const struct diversity_row *row = &r->rows[i];
        if (row->k != k || strcmp(row->variant, variant_name)) continue;
        if (row->layer < 0) {
            printf("%-6s %7s %6s %10.4f %10.4f\n", "mean", "", "", row->value, (double)k / D);
            continue;
        }
        int E = diversity_expert_count(m->moe[row->layer], a->include_all);
        printf("%-6d %7d %6d %10.4f %10.4f\n", row->layer, E, E * (E - 1) / 2, row->value, (double)k / D);
    }
}

static int analyse(struct dit *m, const struct run_ref *run, const struct svd_args *a)
{
    struct svd_result r = {.layers = 0};
    int h = 0;
    for (int i = 0; i < m->shape.depth; i++)
        if (m->moe[i]) r.layers++, h = m->moe[i]->spec.hidden;
    if (r.layers == 0) {
        printf("run %s: no expert layers (dense model), nothing to compare\n", run->run_id);
        return 0;
    }
    int limit = m->shape.hidden < h ? m->shape.hidden : h;
    if (a->k > limit) return err("--k %lld exceeds min(D, h) = %d", a->k, limit);
    r.n_k = curve_ks(limit, (int)a->k, r.ks);
    char names[DIVERSITY_VARIANTS][SVD_VARIANT_NAME];
    for (int v = 0; v < DIVERSITY_VARIANTS; v++)
        snprintf(names[v], sizeof names[v], "%s%s", diversity_variant_names[v], a->include_all ? "+all" : "");
    r.rows = malloc(sizeof *r.rows * (size_t)DIVERSITY_VARIANTS * (r.layers + 1) * r.n_k);
    int rc = r.rows ? compute(m, a->include_all, names, &r) : err("out of memory for diversity rows");
    if (!rc) rc = store_diversity(run->db, run->run_id, run->step, r.rows, r.n_rows);
    if (!rc) print_table(m, run, a, &r, names[strcmp(a->variant, "in") == 0 ? DIVERSITY_IN : DIVERSITY_OUT]);
    free(r.rows);
    return rc;
}

int cmd_svd(int argc, char **argv)
{
    struct svd_args a;
    int status = parse_args(argc, argv, &a);
    if (status) return status < 0 ? 0 : status;
    struct run_ref run;
    struct config cfg;
    struct dit m;
    real *weights = NULL;
    int rc = cli_open_run(a.db, a.run, 1, &run);
    if (!rc) rc = cli_load_model(run.checkpoint, 1, NULL, &cfg, &m, &weights);
    if (!rc) {
        rc = analyse(&m, &run, &a);
        dit_destroy(&m);
    }
    free(weights);
    if (run.db) store_close(run.db);
    return rc ? EXIT_FAILED : 0;
}
