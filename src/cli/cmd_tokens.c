// promoe tokens RUN [--db PATH] [--layer L] [--n N] [--t T] [--seed S] [--clusters K] [--out DIR]
// Token semantics of one block (Fig. 1a, Fig. 6; ROUTERS.md 4.2): N probe images balanced over
// classes, noised to model time T, forwarded with their labels through the run's latest
// checkpoint (EMA weights); the tokens at the output of block L (at most TOKENS_MAX, evenly
// spaced) give the inter/intra-class distance ratio (centroid and pairwise forms, stored in
// `token_stats`), k-means clusters, and a t-SNE embedding, written to DIR/tokens_L<L>.csv and
// drawn coloured by expert and by class (DIR/tokens_L<L>_experts.png, ..._classes.png).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/cluster.h"
#include "analysis/output.h"
#include "analysis/plot.h"
#include "analysis/separation.h"
#include "analysis/tsne.h"
#include "cli/cli.h"
#include "cli/model_load.h"
#include "cli/options.h"
#include "cli/run_lookup.h"
#include "core/error.h"
#include "data/probe.h"
#include "io/path.h"

static const char *const tokens_usage =
    "promoe tokens RUN [--db PATH] [--layer L] [--n N] [--t T] [--seed S] [--clusters K] [--out DIR]";

// Fig. 6 shows 2,560 tokens; t 500 = sigma 0.5 (rf) or DDPM step 500; 10 clusters as Fig. 1a.
enum { TOKENS_MAX = 2560, TOKENS_DEFAULT_IMAGES = 100, TOKENS_DEFAULT_CLUSTERS = 10, TOKENS_BATCH = 50 };
enum { KMEANS_ITERATIONS = 100, TSNE_ITERATIONS = 500, TSNE_EXAGGERATION_ITERATIONS = 250 };
#define TOKENS_DEFAULT_T 500.0
#define TSNE_PERPLEXITY 30.0
#define TSNE_EXAGGERATION 12.0

struct tokens_args {
    const char *run, *db, *out;
    long long layer, n, seed, clusters;
    double t;
};

// --layer below model.depth's bound, --n images and --clusters at most the tokens kept, --t up to
// ddpm.steps' bound (the model's own limit is checked once it is loaded: time_in_range).
enum { TOKENS_LAYER_MAX = 255, TOKENS_IMAGES_MAX = 100000, TOKENS_T_MAX = 100000 };

// 0 parsed, -1 after --help, else the exit status.
static int parse_args(int argc, char **argv, struct tokens_args *a)
{
    *a = (struct tokens_args){NULL, CLI_DEFAULT_DB, NULL, -1, TOKENS_DEFAULT_IMAGES, 0, TOKENS_DEFAULT_CLUSTERS, TOKENS_DEFAULT_T};
    const struct cli_option options[] = {
        CLI_OPT_STRING("--db", &a->db),
        CLI_OPT_STRING("--out", &a->out),
        CLI_OPT_INT("--layer", &a->layer, 0, TOKENS_LAYER_MAX),
        CLI_OPT_INT("--n", &a->n, 1, TOKENS_IMAGES_MAX),
        CLI_OPT_INT("--seed", &a->seed, 0, CLI_SEED_MAX),
        CLI_OPT_INT("--clusters", &a->clusters, 1, TOKENS_MAX),
        CLI_OPT_DOUBLE("--t", &a->t, 0, TOKENS_T_MAX),
    };
    const struct cli_command_line line = {tokens_usage, CLI_TABLE(options), &a->run, 1, 1, NULL};
    return cli_parse(argc, argv, &line);
}

// Model time: 1000 sigma under rf (sigma in [0, 1]), a step of [0, ddpm.steps) under ddpm.
static int time_in_range(const struct config *cfg, double t)
{
    double max = cfg->objective == OBJECTIVE_DDPM ? cfg->ddpm_steps - 1 : 1000.0;
    if (t > max) return err("option '--t': %g is out of range [0, %g] for this run's objective", t, max);
    return 0;
}

struct token_results {
    struct class_separation centroid, pairwise;
    int *clusters;
    double *embedding;
    int kmeans_iterations;
};

static int analyse_tokens(const struct token_set *s, int num_classes, int K, struct token_results *r)
{
    r->clusters = malloc(sizeof(int) * s->n);
    r->embedding = malloc(sizeof(double) * 2 * s->n);
    if (!r->clusters || !r->embedding) return err("out of memory for %d tokens", s->n);
    if (separation_centroid(s->x, s->classes, s->n, s->D, num_classes, &r->centroid) < 0) return -1;
    if (separation_pairwise(s->x, s->classes, s->n, s->D, num_classes, &r->pairwise) < 0) return -1;
    r->kmeans_iterations = cluster_kmeans(s->x, s->n, s->D, K > s->n ? s->n : K, KMEANS_ITERATIONS, r->clusters);
    if (r->kmeans_iterations < 0) return -1;
    // Few tokens (tiny models): the largest perplexity t-SNE accepts.
    double perplexity = s->n > 3 * TSNE_PERPLEXITY ? TSNE_PERPLEXITY : (s->n - 1) / 3.0;
    struct tsne_options o = {perplexity, TSNE_ITERATIONS, TSNE_EXAGGERATION_ITERATIONS, TSNE_EXAGGERATION};
    return tsne_embed(s->x, s->n, s->D, &o, r->embedding);
}

static int store_results(const struct run_ref *run, int layer, double t, int n, const struct token_results *r)
{
    const struct class_separation *forms[2] = {&r->centroid, &r->pairwise};
    const char *names[2] = {"centroid", "pairwise"};
    struct token_stat_row rows[6];
    for (int f = 0; f < 2; f++) {
        rows[3 * f] = (struct token_stat_row){names[f], "inter", forms[f]->inter};
        rows[3 * f + 1] = (struct token_stat_row){names[f], "intra", forms[f]->intra};
        rows[3 * f + 2] = (struct token_stat_row){names[f], "ratio", forms[f]->ratio};
    }
    return store_token_stats(run->db, run->run_id, run->step, layer, t, n, rows, 6);
}

// The CSV and, when gnuplot runs, the two scatter plots; paths printed.
static int write_outputs(const char *dir, int layer, const struct token_set *s, const struct token_results *r,
                         const struct dit *m, const char *run_id)
{
    char csv[CLI_FILE_CAPACITY], png[CLI_FILE_CAPACITY], title[IO_PATH_MAX];
    snprintf(csv, sizeof csv, "%s/tokens_L%d.csv", dir, layer);
    if (io_make_folders(dir) < 0 || output_tokens_csv(csv, s, r->clusters, r->embedding) < 0) return -1;
    printf("wrote %s\n", csv);
    if (!plot_available()) {
        printf("gnuplot not found: plots skipped (install gnuplot-nox)\n");
        return 0;
    }
    int E = m->moe[layer] ? m->moe[layer]->plan.n_experts : 0;
    snprintf(png, sizeof png, "%s/tokens_L%d_experts.png", dir, layer);
    snprintf(title, sizeof title, "run %s, block %d: t-SNE of %d tokens by expert", run_id, layer, s->n);
    // Every token of a MoE block has an expert; -1 (no expert) only exists in a dense block.
    struct scatter_spec by_expert = {csv, png, title, "expert %d", 5, 6, 3, E > 0 ? 0 : -1, E > 0 ? E - 1 : -1};
    if (plot_scatter(&by_expert) < 0) return -1;
    printf("wrote %s\n", png);
    snprintf(png, sizeof png, "%s/tokens_L%d_classes.png", dir, layer);
    snprintf(title, sizeof title, "run %s, block %d: t-SNE of %d tokens by class", run_id, layer, s->n);
    struct scatter_spec by_class = {csv, png, title, "class %d", 5, 6, 2, 0, m->shape.num_classes - 1};
    if (plot_scatter(&by_class) < 0) return -1;
    printf("wrote %s\n", png);
    return 0;
}

static void print_results(const struct run_ref *run, int layer, double t, const struct token_set *s, const struct token_results *r)
{
    printf("run %s, step %lld, block %d, t %g: %d tokens\n", run->run_id, (long long)run->step, layer, t, s->n);
    printf("%-9s %10s %10s %10s\n", "form", "inter", "intra", "ratio");
    printf("%-9s %10.4f %10.4f %10.4f\n", "centroid", r->centroid.inter, r->centroid.intra, r->centroid.ratio);
    printf("%-9s %10.4f %10.4f %10.4f\n", "pairwise", r->pairwise.inter, r->pairwise.intra, r->pairwise.ratio);
    printf("k-means: %d iterations\n", r->kmeans_iterations);
}

static int run_probe(struct dit *m, const struct config *cfg, const struct run_ref *run, const struct tokens_args *a)
{
    int layer = a->layer >= 0 ? (int)a->layer : m->shape.depth / 2, n = (int)a->n;
    size_t per_image = (size_t)cfg->channels * m->shape.size * m->shape.size;
    real *images = malloc(sizeof(real) * per_image * n);
    int *labels = malloc(sizeof(int) * n);
    struct token_set s = {0};
    struct token_results r = {0};
    struct token_probe p = {layer, a->t, (uint64_t)a->seed, TOKENS_MAX, TOKENS_BATCH};
    char dir[IO_PATH_MAX];
    if (a->out) snprintf(dir, sizeof dir, "%s", a->out);
    else snprintf(dir, sizeof dir, "%s/%s/analysis", cfg->ckpt_dir, run->run_id);
    int rc = images && labels ? 0 : err("out of memory for %d probe images", n);
    if (!rc) rc = probe_images(cfg, n, images, labels);
    if (!rc) rc = tokens_collect(m, images, labels, n, &p, &s);
    if (!rc) rc = analyse_tokens(&s, cfg->num_classes, (int)a->clusters, &r);
    if (!rc) rc = store_results(run, layer, a->t, s.n, &r);
    if (!rc) print_results(run, layer, a->t, &s, &r);
    if (!rc) rc = write_outputs(dir, layer, &s, &r, m, run->run_id);
    free(images), free(labels), free(r.clusters), free(r.embedding);
    token_set_free(&s);
    return rc;
}

int cmd_tokens(int argc, char **argv)
{
    struct tokens_args a;
    int status = parse_args(argc, argv, &a);
    if (status) return status < 0 ? 0 : status;
    struct run_ref run;
    struct config cfg;
    struct dit m;
    real *weights = NULL;
    int rc = cli_open_run(a.db, a.run, 1, &run);
    if (!rc) rc = cli_load_model(run.checkpoint, TOKENS_BATCH, NULL, &cfg, &m, &weights);
    if (!rc) {
        rc = time_in_range(&cfg, a.t);
        if (!rc) rc = run_probe(&m, &cfg, &run, &a);
        dit_destroy(&m);
    }
    free(weights);
    if (run.db) store_close(run.db);
    return rc ? EXIT_FAILED : 0;
}
