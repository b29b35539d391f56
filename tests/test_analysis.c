// The analysis library on synthetic data (class separation, k-means, t-SNE, class-expert mutual
// information, the schema-2 migration of a version-1 database) and the analysis commands end to
// end on a tiny MoE run and a tiny dense run: svd, tokens and routing write their rows and files,
// and a dense run gets a clear message with exit status 0.
#include <math.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "analysis/cluster.h"
#include "analysis/plot.h"
#include "analysis/separation.h"
#include "analysis/specialisation.h"
#include "analysis/tsne.h"
#include "check.h"
#include "shell.h"
#include "core/error.h"
#include "core/rng.h"
#include "runs.h"
#include "store/analysis.h"
#include "store/evals.h"

static char dir[] = "/tmp/promoe_test_analysis_XXXXXX";

// Two classes of 3 tokens in R^2: class 0 at (0,0),(2,0),(1,3) (centroid (1,1)), class 1 the same
// shifted by (10, 0). Intra = mean distance to own centroid = (2 sqrt 2 + 2) / 3 per class;
// inter = 10. Pairwise: same-class pairs (2, sqrt 10, sqrt 10); different-class pairs computed.
static void test_separation(void)
{
    float x[12] = {0, 0, 2, 0, 1, 3, 10, 0, 12, 0, 11, 3};
    int classes[6] = {0, 0, 0, 1, 1, 1};
    struct class_separation c, p;
    CHECK(separation_centroid(x, classes, 6, 2, 2, &c) == 0, "%s", err_message());
    double intra = (2 * sqrt(2) + 2) / 3;
    CHECK_NEAR(c.intra, intra, 1e-6, "centroid intra");
    CHECK_NEAR(c.inter, 10, 1e-9, "centroid inter");
    CHECK_NEAR(c.ratio, 10 / intra, 1e-5, "centroid ratio");
    CHECK(separation_pairwise(x, classes, 6, 2, 2, &p) == 0, "%s", err_message());
    double same = (2 + 2 * sqrt(10)) / 3, other = 0;
    for (int i = 0; i < 3; i++)
        for (int j = 3; j < 6; j++) other += hypot(x[2 * i] - x[2 * j], x[2 * i + 1] - x[2 * j + 1]) / 9;
    CHECK_NEAR(p.intra, same, 1e-6, "pairwise intra");
    CHECK_NEAR(p.inter, other, 1e-5, "pairwise inter");
    int one_class[6] = {0, 0, 0, 0, 0, 0}, bad[6] = {0, 0, 0, 1, 1, 2};
    CHECK(separation_centroid(x, one_class, 6, 2, 2, &c) == -1, "one class refused");
    CHECK(separation_pairwise(x, bad, 6, 2, 2, &p) == -1 && strstr(err_message(), "class 2 outside [0, 2)"),
          "class out of range: %s", err_message());
}

// Three tight, well separated blobs: k-means finds them exactly; t-SNE keeps them apart.
enum { BLOB = 40, BLOBS = 3, DIM = 5 };
static void blobs(float *x, int *labels)
{
    struct rng r;
    rng_init(&r, 3, 0, RNG_TEST, 0);
    for (int i = 0; i < BLOB * BLOBS; i++) {
        labels[i] = i / BLOB;
        for (int d = 0; d < DIM; d++) x[i * DIM + d] = (float)((d == labels[i] ? 20 : 0) + 0.5 * rng_normal(&r));
    }
}

static void test_kmeans_and_tsne(void)
{
    float x[BLOB * BLOBS * DIM];
    int labels[BLOB * BLOBS], assign[BLOB * BLOBS], agree = 1;
    blobs(x, labels);
    int iterations = cluster_kmeans(x, BLOB * BLOBS, DIM, BLOBS, 100, assign);
    CHECK(iterations > 0 && iterations < 100, "k-means converged (%d iterations)", iterations);
    for (int i = 0; i < BLOB * BLOBS; i++) agree &= assign[i] == assign[labels[i] * BLOB];
    CHECK(agree && assign[0] != assign[BLOB] && assign[BLOB] != assign[2 * BLOB] && assign[0] != assign[2 * BLOB],
          "k-means recovers the blobs");
    double y[BLOB * BLOBS * 2], again[BLOB * BLOBS * 2];
    struct tsne_options o = {10, 300, 100, 12};
    CHECK(tsne_embed(x, BLOB * BLOBS, DIM, &o, y) == 0, "%s", err_message());
    CHECK(tsne_embed(x, BLOB * BLOBS, DIM, &o, again) == 0 && memcmp(y, again, sizeof y) == 0, "t-SNE deterministic");
    float embedded[BLOB * BLOBS * 2];
    for (int i = 0; i < BLOB * BLOBS * 2; i++) embedded[i] = (float)y[i];
    struct class_separation s;
    separation_centroid(embedded, labels, BLOB * BLOBS, 2, BLOBS, &s);
    // Blobs 40 apart with spread 0.5: the embedding keeps each blob far tighter than the gaps.
    CHECK(s.ratio > 3, "t-SNE separates the blobs (centroid ratio %.3f)", s.ratio);
    CHECK(tsne_embed(x, 20, DIM, &o, y) == -1, "too few points for the perplexity refused");
}

static void test_mutual_information(void)
{
    enum { C = 4 };
    int64_t independent[C * C], diagonal[C * C] = {0}, half[2 * 4] = {5, 5, 0, 0, 0, 0, 5, 5};
    for (int i = 0; i < C * C; i++) independent[i] = 7 * (1 + i % C);   // same expert mix per class
    for (int c = 0; c < C; c++) diagonal[c * C + (c + 1) % C] = 25;
    struct specialisation s = specialisation_of(independent, C, C);
    CHECK_NEAR(s.mi_bits, 0, 1e-12, "independent class and expert: 0 bits");
    s = specialisation_of(diagonal, C, C);
    CHECK_NEAR(s.mi_bits, 2, 1e-12, "one-to-one map: log2(4) bits");
    CHECK_NEAR(s.mi_over_h_class, 1, 1e-12, "normalised by H(class)");
    // Two classes, each over its own two experts: 1 bit of 2 bits of expert entropy.
    s = specialisation_of(half, 2, 4);
    CHECK_NEAR(s.mi_bits, 1, 1e-12, "class splits experts in halves");
    CHECK_NEAR(s.mi_over_h_expert, 0.5, 1e-12, "normalised by H(expert)");
    CHECK(s.tokens == 20, "token total");
    double f[8];
    specialisation_row_fractions(half, 2, 4, f);
    CHECK(f[0] == 0.5 && f[2] == 0 && f[7] == 0.5, "row fractions");
    int64_t empty[4] = {0};
    s = specialisation_of(empty, 2, 2);
    CHECK(s.tokens == 0 && s.mi_bits == 0 && isnan(s.mi_over_h_class), "no tokens");
}

// A version-1 file (before the views and the analysis tables) is migrated to the current version.
static void test_migration(void)
{
    char path[600];
    snprintf(path, sizeof path, "%s/v1.db", dir);
    struct store *db;
    CHECK(store_open(&db, path) == 0, "open: %s", err_message());
    store_close(db);
    sqlite3 *raw;
    sqlite3_open(path, &raw);
    sqlite3_exec(raw, "DROP TABLE token_stats; DROP TABLE specialisation; DROP VIEW run_summary; "
                 "DROP VIEW sweep_progress; PRAGMA user_version = 1", NULL, NULL, NULL);
    sqlite3_close(raw);
    CHECK(store_open(&db, path) == 0, "reopen v1: %s", err_message());
    struct specialisation_row row = {3, "mi_bits", 0.25};
    CHECK(db && store_specialisation(db, "r", 7, &row, 1) == 0, "write: %s", err_message());
    CHECK(db && store_specialisation(db, "r", 7, &row, 1) == 0, "rewrite (upsert)");
    if (db) store_close(db);
    CHECK(run_query(dir, "v1.db", "PRAGMA user_version") == 4, "migrated to version 4");
    CHECK(run_query(dir, "v1.db", "SELECT count(*) FROM specialisation") == 1, "one row after two writes");
    CHECK(run_query(dir, "v1.db", "SELECT value FROM specialisation WHERE layer = 3") == 0.25, "value");
}

// A version-3 file (evals keyed without the sampler seed, a NULL seed for an imported figure) is
// migrated: the row keeps its value with seed -1, and a redraw with another seed is kept beside the
// first evaluation instead of replacing it; final_evals still answers.
static void test_migrate_eval_seed(void)
{
    char path[600];
    snprintf(path, sizeof path, "%s/v3.db", dir);
    struct store *db;
    CHECK(store_open(&db, path) == 0, "open: %s", err_message());
    store_close(db);
    sqlite3 *raw;
    sqlite3_open(path, &raw);
    int rc = sqlite3_exec(raw,
                 "DROP VIEW final_evals; DROP TABLE evals;"
                 "CREATE TABLE evals (run_id TEXT NOT NULL, step INTEGER NOT NULL, weights TEXT NOT NULL DEFAULT 'ema',"
                 " cfg_scale REAL NOT NULL, sampler TEXT NOT NULL, sampler_steps INTEGER NOT NULL, n_samples INTEGER NOT NULL,"
                 " reference TEXT NOT NULL, metric TEXT NOT NULL, value REAL, source TEXT NOT NULL DEFAULT 'harness',"
                 " sample_seed INTEGER, wall_s REAL, created_ms INTEGER NOT NULL,"
                 " PRIMARY KEY (run_id, step, weights, cfg_scale, sampler, sampler_steps, n_samples, reference, metric)"
                 ") STRICT, WITHOUT ROWID;"
                 "CREATE VIEW final_evals AS SELECT run_id, max(step) AS step, metric, value FROM evals GROUP BY run_id, metric;"
                 "INSERT INTO evals VALUES ('r',5,'ema',1.5,'euler',25,100,'fmnist-train','fd',7.5,'harness',NULL,1.0,0);"
                 "PRAGMA user_version = 3", NULL, NULL, NULL);
    CHECK(rc == SQLITE_OK, "version-3 file: %s", sqlite3_errmsg(raw));
    sqlite3_close(raw);
    CHECK(store_open(&db, path) == 0, "reopen v3: %s", err_message());
    struct eval_row redraw = {"r", 5, "ema", 1.5, "euler", 25, 100, "fmnist-train", "fd", 9.5, "harness", 1000, 1.0};
    CHECK(db && store_evals(db, &redraw, 1) == 0, "redraw: %s", err_message());
    if (db) store_close(db);
    CHECK(run_query(dir, "v3.db", "PRAGMA user_version") == 4, "migrated to version 4");
    CHECK(run_query(dir, "v3.db", "SELECT value FROM evals WHERE sample_seed = -1") == 7.5, "old row kept, seed -1");
    CHECK(run_query(dir, "v3.db", "SELECT count(*) FROM evals") == 2, "redraw kept beside it");
    CHECK(run_query(dir, "v3.db", "SELECT count(*) FROM final_evals") == 2, "final_evals: one row per seed");
    sqlite3_open(path, &raw);
    sqlite3_exec(raw, "INSERT INTO runs (run_id, config_sha256, config_yaml, seed, status, created_ms)"
                 " VALUES ('r', 'h', '', 1000, 'done', 0)", NULL, NULL, NULL);
    sqlite3_close(raw);
    CHECK(run_query(dir, "v3.db", "SELECT fd FROM run_summary WHERE run_id = 'r'") == 9.5,
          "run_summary takes the evaluation drawn with the run's own seed");
}

static const char TINY_MOE[] =
    "model: {hidden: 32, depth: 2, heads: 2, patch: 7, moe: {experts: E6A1S1U1, first: 1, every: 2, "
    "router: prototype, activation: identity, conditional: true}}\n"
    "train: {steps: 3, batch_size: 16}\nlog: {every: 1}\nsample: {n: 0}\n";
static const char TINY_DENSE[] =
    "model: {hidden: 32, depth: 2, heads: 2, patch: 7}\ntrain: {steps: 3, batch_size: 8}\nsample: {n: 0}\n";

static void train(const char *name, const char *yaml, char *run_id)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s.yaml", dir, name);
    FILE *f = fopen(path, "w");
    if (f) fputs(yaml, f), fclose(f);
    int rc = run("build/promoe train %s --db %s/r.db --set ckpt.dir=%s", path, dir, dir);
    CHECK(rc == 0, "train %s (%d): %s", name, rc, output);
    const char *at = strstr(output, "run ");
    run_id[0] = '\0';
    if (at) sscanf(at + 4, "%16[0-9a-f]", run_id);
    CHECK(strlen(run_id) == 16, "run id reported: %s", output);
}

static int file_size(const char *fmt, const char *run_id, int layer)
{
    char path[700];
    snprintf(path, sizeof path, fmt, dir, run_id, layer);
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    int size = (int)ftell(f);
    fclose(f);
    return size;
}

static void test_commands(void)
{
    char moe[32], dense[32], sql[256];
    train("moe", TINY_MOE, moe);
    train("dense", TINY_DENSE, dense);
    int plots = plot_available();
    if (!plots) printf("test_analysis: gnuplot not found, PNG checks skipped\n");

    CHECK(run("build/promoe svd %.6s --db %s/r.db --k 4", moe, dir) == 0, "svd: %s", output);
    CHECK(strstr(output, "mean") && strstr(output, "0.1250"), "svd table with k/D = 4/32: %s", output);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM diversity WHERE run_id = '%s'", moe);
    // One MoE layer + the mean, 2 variants, k in {1, 2, 4, 8, 16, 32} (min(D, h) = 32).
    CHECK(run_query(dir, "r.db", sql) == 2 * 2 * 6, "diversity rows: %g", run_query(dir, "r.db", sql));
    CHECK(run("build/promoe svd %s --db %s/r.db", dense, dir) == 0 && strstr(output, "no expert layers"),
          "dense svd: %s", output);
    CHECK(run("build/promoe svd %s --db %s/r.db --k 64", moe, dir) == 1 && strstr(output, "exceeds min(D, h) = 32"),
          "k too large: %s", output);
    CHECK(run("build/promoe svd ffffffffffff --db %s/r.db", dir) == 1 && strstr(output, "no run 'ffffffffffff'"),
          "unknown run: %s", output);

    CHECK(run("build/promoe tokens %s --db %s/r.db --layer 1 --n 40", moe, dir) == 0, "tokens: %s", output);
    snprintf(sql, sizeof sql, "SELECT value FROM token_stats WHERE run_id = '%s' AND variant = 'centroid' "
             "AND metric = 'ratio' AND layer = 1 AND n_tokens = 640", moe);
    double ratio = run_query(dir, "r.db", sql);
    CHECK(ratio > 0 && ratio < 10, "centroid ratio stored for 40 x 16 tokens: %g", ratio);
    CHECK(file_size("%s/%s/analysis/tokens_L%d.csv", moe, 1) > 640 * 12, "token csv");
    if (plots) CHECK(file_size("%s/%s/analysis/tokens_L%d_experts.png", moe, 1) > 1000, "expert scatter png");
    CHECK(run("build/promoe tokens %s --db %s/r.db --layer 0 --n 20 --out %s/dense_tokens", dense, dir, dir) == 0,
          "dense tokens: %s", output);
    CHECK(run("build/promoe tokens %s --db %s/r.db --layer 2", dense, dir) == 1 && strstr(output, "layer 2 is outside"),
          "layer out of range: %s", output);

    CHECK(run("build/promoe routing %s --db %s/r.db", moe, dir) == 0 && strstr(output, "MI bits"), "routing: %s", output);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM specialisation WHERE run_id = '%s' AND layer = 1", moe);
    CHECK(run_query(dir, "r.db", sql) == 5, "specialisation rows");
    if (plots) CHECK(file_size("%s/%s/analysis/routing_L%d.png", moe, 1) > 1000, "heat map png");
    CHECK(run("build/promoe routing %s --db %s/r.db", dense, dir) == 0 && strstr(output, "no class routing rows"),
          "dense routing: %s", output);
}

int main(void)
{
    if (!mkdtemp(dir)) return perror("mkdtemp"), 1;
    test_separation();
    test_kmeans_and_tsne();
    test_mutual_information();
    test_migration();
    test_migrate_eval_seed();
    test_commands();
    char command[600];
    snprintf(command, sizeof command, "rm -rf '%s'", dir);
    if (check_failed == 0 && system(command) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return test_summary("test_analysis");
}
