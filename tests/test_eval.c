// Sample-quality metrics: the Frechet distance against closed forms on Gaussians (diagonal,
// rotated, non-commuting covariances, and large sampled sets), the inception-style score's bounds,
// k-NN precision / recall on constructed sets, the evaluator-output parser, the feature network
// (test accuracy >= 0.90; held-out real images score far better than noise; the cache is reused),
// and end to end: `promoe eval` writes 4 rows per cfg scale, training with eval.every evaluates at
// its multiples, `promoe import-eval` stores the evaluator's five figures.
// The feature network is cached in build/test-results/featnet (trained on the first run).
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "core/error.h"
#include "core/rng.h"
#include "eval/adm_import.h"
#include "eval/featnet_cache.h"
#include "eval/frechet.h"
#include "eval/sample_scores.h"
#include "runs.h"
#include "scratch.h"
#include "shell.h"

static const char RESULTS[] = "build/test-results";
static const char FMNIST[] = "/usr/share/datasets/fashion-mnist";
static char tmp[] = "/tmp/promoe_test_eval_XXXXXX";
static struct rng g;

static void write_text(const char *path, const char *text) { scratch_write_file(path, text); }

// ---- Frechet distance ----

// c [3, 3] = R diag(l) R^T with R a fixed rotation (non-diagonal result).
static void rotated(const double l[3], double *c)
{
    double a = 0.7, b = -0.4;
    double rz[9] = {cos(a), -sin(a), 0, sin(a), cos(a), 0, 0, 0, 1}, rx[9] = {1, 0, 0, 0, cos(b), -sin(b), 0, sin(b), cos(b)};
    double r[9] = {0};
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 3; k++) r[i * 3 + j] += rz[i * 3 + k] * rx[k * 3 + j];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) {
            double s = 0;
            for (int k = 0; k < 3; k++) s += r[i * 3 + k] * l[k] * r[j * 3 + k];
            c[i * 3 + j] = s;
        }
}

static void test_frechet_closed_forms(void)
{
    double d;
    // Diagonal: |(1,1)|^2 + (1 + 4 + 4 + 9) - 2 (sqrt(1*4) + sqrt(4*9)) = 2 + 18 - 16 = 4.
    double m0[2] = {0, 0}, m1[2] = {1, 1}, s1[4] = {1, 0, 0, 4}, s2[4] = {4, 0, 0, 9};
    CHECK(frechet_distance(m0, s1, m1, s2, 2, &d) == 0, "%s", err_message());
    CHECK_NEAR(d, 4.0, 1e-10, "diagonal Gaussians");
    // Same eigenvectors, eigenvalues (1,4,9) and (4,1,16): sum (sqrt a - sqrt b)^2 = 1 + 1 + 1, plus
    // |mu1 - mu2|^2 = 0.25 + 1 + 4.
    double la[3] = {1, 4, 9}, lb[3] = {4, 1, 16}, ca[9], cb[9], ma[3] = {0, 0, 0}, mb[3] = {0.5, -1, 2};
    rotated(la, ca);
    rotated(lb, cb);
    CHECK(frechet_distance(ma, ca, mb, cb, 3, &d) == 0, "%s", err_message());
    CHECK_NEAR(d, 3 + 5.25, 1e-9, "rotated commuting covariances");
    // Non-commuting: S1 = I, S2 = [[2,1],[1,2]] (eigenvalues 3, 1): 2 + 4 - 2 (sqrt 3 + 1).
    double eye[4] = {1, 0, 0, 1}, s3[4] = {2, 1, 1, 2};
    CHECK(frechet_distance(m0, eye, m0, s3, 2, &d) == 0, "%s", err_message());
    CHECK_NEAR(d, 4 - 2 * sqrt(3), 1e-10, "non-commuting covariances");
    // Symmetry and identity.
    double d2;
    CHECK(frechet_distance(mb, cb, ma, ca, 3, &d2) == 0, "%s", err_message());
    CHECK_NEAR(d2, 3 + 5.25, 1e-9, "swapped arguments");
    CHECK(frechet_distance(ma, ca, ma, ca, 3, &d) == 0 && d < 1e-10, "identical Gaussians: %g", d);
}

// x [n, 3] ~ N(mu, R diag(l) R^T).
static void sample_gaussian(real *x, int n, const double mu[3], const double l[3])
{
    double c[9];
    rotated(l, c);
    // Cholesky of c.
    double L[9] = {0};
    for (int i = 0; i < 3; i++)
        for (int j = 0; j <= i; j++) {
            double s = c[i * 3 + j];
            for (int k = 0; k < j; k++) s -= L[i * 3 + k] * L[j * 3 + k];
            L[i * 3 + j] = i == j ? sqrt(s) : s / L[j * 3 + j];
        }
    for (int i = 0; i < n; i++) {
        double z[3] = {rng_normal(&g), rng_normal(&g), rng_normal(&g)};
        for (int a = 0; a < 3; a++) {
            double v = mu[a];
            for (int k = 0; k <= a; k++) v += L[a * 3 + k] * z[k];
            x[i * 3 + a] = (real)v;
        }
    }
}

static void test_frechet_sampled(void)
{
    enum { N = 200000 };
    real *a = malloc(sizeof(real) * N * 3), *b = malloc(sizeof(real) * N * 3);
    double la[3] = {1, 4, 9}, lb[3] = {4, 1, 16}, ma[3] = {0, 0, 0}, mb[3] = {0.5, -1, 2};
    sample_gaussian(a, N, ma, la);
    sample_gaussian(b, N, mb, lb);
    double mua[3], mub[3], ca[9], cb[9], d;
    gaussian_fit(a, N, 3, mua, ca);
    gaussian_fit(b, N, 3, mub, cb);
    CHECK(frechet_distance(mua, ca, mub, cb, 3, &d) == 0, "%s", err_message());
    // Sampling error of the fitted moments at n = 2e5: a few hundredths at most.
    CHECK_NEAR(d, 8.25, 0.1, "sampled Gaussians vs closed form");
    CHECK(frechet_distance(mua, ca, mua, ca, 3, &d) == 0 && d < 1e-8, "identical sets: %g", d);
    free(a);
    free(b);
}

// ---- inception-style score, precision / recall ----

static void test_inception_score(void)
{
    enum { N = 40, K = 10 };
    real p[N * K];
    for (int i = 0; i < N * K; i++) p[i] = (real)(1.0 / K);
    CHECK_NEAR(inception_score(p, N, K), 1.0, 1e-6, "uniform probabilities");
    memset(p, 0, sizeof p);
    for (int i = 0; i < N; i++) p[i * K + i % K] = 1;
    CHECK_NEAR(inception_score(p, N, K), K, 1e-4, "balanced one-hot");
    for (int i = 0; i < N; i++) memset(p + i * K, 0, sizeof(real) * K), p[i * K + 3] = 1;
    CHECK_NEAR(inception_score(p, N, K), 1.0, 1e-6, "one class only");
}

static void test_precision_recall(void)
{
    enum { N = 300, D = 8 };
    real *a = malloc(sizeof(real) * N * D), *b = malloc(sizeof(real) * N * D);
    for (int i = 0; i < N * D; i++) a[i] = (real)rng_normal(&g);
    double p, r;
    CHECK(knn_precision_recall(a, N, a, N, D, PR_NEIGHBOURS, &p, &r) == 0, "%s", err_message());
    CHECK(p == 1 && r == 1, "identical sets: precision %g recall %g", p, r);
    for (int i = 0; i < N * D; i++) b[i] = a[i] + 100;
    CHECK(knn_precision_recall(a, N, b, N, D, PR_NEIGHBOURS, &p, &r) == 0, "%s", err_message());
    CHECK(p == 0 && r == 0, "disjoint far sets: precision %g recall %g", p, r);
    // Generated points only in half of the real support: precision stays high, recall drops.
    for (int i = 0; i < N; i++)
        for (int j = 0; j < D; j++) b[i * D + j] = (real)(j == 0 ? fabs(rng_normal(&g)) : rng_normal(&g));
    CHECK(knn_precision_recall(a, N, b, N, D, PR_NEIGHBOURS, &p, &r) == 0, "%s", err_message());
    CHECK(p > 0.8 && r < 0.8 && r > 0.2, "half-support generator: precision %g recall %g", p, r);
    CHECK(knn_precision_recall(a, 3, b, N, D, PR_NEIGHBOURS, &p, &r) < 0, "3 real points accepted");
    free(a);
    free(b);
}

// ---- evaluator output ----

static const char ADM_OUTPUT[] =
    "warming up TensorFlow...\n"
    "computing reference batch activations...\n"
    "computing/reading reference batch statistics...\n"
    "computing sample batch activations...\n"
    "Computing evaluations...\n"
    "Inception Score: 215.83984375\n"
    "FID: 2.2706\n"
    "sFID: 4.61\r\n"
    "Precision: 0.8262\n"
    "Recall: 0.5764\n";

static void test_adm_parse(void)
{
    char path[600];
    struct adm_results res;
    snprintf(path, sizeof path, "%s/eval_openai.txt", tmp);
    write_text(path, ADM_OUTPUT);
    CHECK(adm_parse_file(path, &res) == 0, "%s", err_message());
    double expect[ADM_METRICS] = {215.83984375, 2.2706, 4.61, 0.8262, 0.5764};
    for (int i = 0; i < ADM_METRICS; i++) {
        CHECK(res.found[i], "%s not found", adm_labels[i]);
        CHECK_NEAR(res.value[i], expect[i], 1e-12, adm_metric_names[i]);
    }
    write_text(path, "warming up TensorFlow...\nFID 2.27\nsomething: else\n");
    CHECK(adm_parse_file(path, &res) < 0 && strstr(err_message(), path) && strstr(err_message(), "no evaluator"),
          "no result line: %s", err_message());
    write_text(path, "FID: 2.2\nsFID: oops\n");
    CHECK(adm_parse_file(path, &res) < 0 && strstr(err_message(), "line 2"), "bad number: %s", err_message());
    snprintf(path, sizeof path, "%s/missing.txt", tmp);
    CHECK(adm_parse_file(path, &res) < 0 && strstr(err_message(), "missing.txt"), "missing file: %s", err_message());
}

// ---- the feature network ----

static void features_of(struct feature_model *fm, const real *images, int n, real *features, double *mean, double *cov)
{
    feature_model_apply(fm, images, n, features, NULL);
    gaussian_fit(features, n, FEATNET_FEATURES, mean, cov);
}

static void test_feature_network(void)
{
    enum { N = 1000, D = FEATNET_FEATURES, PIXELS = FEATNET_SIZE * FEATNET_SIZE };
    char dir[600];
    snprintf(dir, sizeof dir, "%s/featnet", RESULTS);
    struct feature_model fm;
    if (feature_model_obtain(&fm, dir, FMNIST) < 0) {
        CHECK(0, "feature network: %s", err_message());
        return;
    }
    printf("feature network test accuracy %.4f (%s)\n", fm.test_accuracy, fm.trained ? "trained" : "cached");
    CHECK(fm.test_accuracy >= 0.90, "test accuracy %.4f", fm.test_accuracy);
    real *test_images, *noise = malloc(sizeof(real) * N * PIXELS);
    int *labels, n_test;
    CHECK(fmnist_load(FMNIST, "t10k", &test_images, &labels, &n_test) == 0, "%s", err_message());
    for (int i = 0; i < N * PIXELS; i++) noise[i] = (real)(2 * rng_uniform(&g) - 1);
    real *fr = malloc(sizeof(real) * N * D), *fn = malloc(sizeof(real) * N * D), *probs = malloc(sizeof(real) * N * 10);
    double *mean = malloc(sizeof(double) * D), *cov = malloc(sizeof(double) * D * D), fd_real, fd_noise, p_real, p_noise, r;
    features_of(&fm, test_images, N, fr, mean, cov);
    frechet_distance(mean, cov, fm.train_mean, fm.train_cov, D, &fd_real);
    feature_model_apply(&fm, test_images, N, NULL, probs);
    double is_real = inception_score(probs, N, 10);
    features_of(&fm, noise, N, fn, mean, cov);
    frechet_distance(mean, cov, fm.train_mean, fm.train_cov, D, &fd_noise);
    // Reference: the first N training images' features.
    real *train_images;
    int *train_labels, n_train;
    fmnist_load(FMNIST, "train", &train_images, &train_labels, &n_train);
    real *ft = malloc(sizeof(real) * N * D);
    feature_model_apply(&fm, train_images, N, ft, NULL);
    knn_precision_recall(ft, N, fr, N, D, PR_NEIGHBOURS, &p_real, &r);
    knn_precision_recall(ft, N, fn, N, D, PR_NEIGHBOURS, &p_noise, &r);
    printf("held-out real: fd %.3f is %.3f precision %.3f; noise: fd %.3f precision %.3f\n", fd_real, is_real, p_real,
           fd_noise, p_noise);
    CHECK(fd_noise > 20 * fd_real, "fd real %g vs noise %g", fd_real, fd_noise);
    // Uniform noise lands in the real manifold's k-NN balls for a few percent of samples (0.05 with
    // this network); real images for most (0.88).
    CHECK(p_real > 0.5 && p_noise < 0.15, "precision real %g vs noise %g", p_real, p_noise);
    CHECK(is_real > 5, "inception-style score of real test images %g", is_real);
    // The second call reads the cache, bit-identical statistics.
    struct feature_model again;
    CHECK(feature_model_obtain(&again, dir, FMNIST) == 0 && !again.trained, "cache not reused: %s", err_message());
    CHECK(memcmp(again.train_cov, fm.train_cov, sizeof(double) * D * D) == 0 && again.test_accuracy == fm.test_accuracy,
          "cached statistics differ");
    feature_model_free(&again);
    free(test_images); free(labels); free(noise); free(fr); free(fn); free(probs); free(mean); free(cov);
    free(train_images); free(train_labels); free(ft);
    feature_model_free(&fm);
}

// ---- end to end ----

static const char TINY[] =
    "model: {hidden: 32, depth: 2, heads: 2, patch: 7}\n"
    "train: {steps: 4, batch_size: 8}\n"
    "sample: {n: 0}\n";

static void test_cli(void)
{
    char db[600], yaml[600], adm[600], run_id[64] = "";
    snprintf(db, sizeof db, "%s/test_eval_%d.db", RESULTS, (int)getpid());
    snprintf(yaml, sizeof yaml, "%s/tiny.yaml", tmp);
    snprintf(adm, sizeof adm, "%s/adm.txt", tmp);
    write_text(yaml, TINY);
    write_text(adm, ADM_OUTPUT);
    int rc = run("build/promoe train %s --db %s --set ckpt.dir=%s --set eval.every=2 --set eval.n=40 --set eval.steps=2",
                 yaml, db, tmp);
    CHECK(rc == 0, "train with eval.every failed (%d): %s", rc, output);
    const char *at = strstr(output, "run ");
    if (at) sscanf(at + 4, "%16s", run_id);
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM evals WHERE run_id='%s' AND source='harness'", run_id);
    CHECK(run_query(".", db, sql) == 20, "eval.every=2 over 4 steps: %g rows, want 2 steps x 2 cfg x 5", run_query(".", db, sql));
    snprintf(sql, sizeof sql, "SELECT sum(step) FROM evals WHERE run_id='%s' AND metric='fd'", run_id);
    CHECK(run_query(".", db, sql) == 2 * (2 + 4), "evaluated steps (sum %g)", run_query(".", db, sql));
    // promoe eval by a prefix of the run id, other sample counts: 10 more rows.
    rc = run("build/promoe eval %.8s --cfg 1.0,1.5 --n 50 --steps 2 --db %s", run_id, db);
    CHECK(rc == 0 && strstr(output, "precision"), "promoe eval failed (%d): %s", rc, output);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM evals WHERE run_id='%s' AND n_samples=50 AND step=4 AND "
             "sampler='euler' AND sampler_steps=2 AND reference='fmnist-train' AND weights='ema' AND value IS NOT NULL", run_id);
    CHECK(run_query(".", db, sql) == 10, "promoe eval rows: %g", run_query(".", db, sql));
    snprintf(sql, sizeof sql, "SELECT count(*) FROM evals WHERE run_id='%s' AND metric='class_acc' AND value >= 0 AND value <= 1",
             run_id);
    CHECK(run_query(".", db, sql) == 6, "class_acc in [0, 1] at every evaluation and cfg: %g", run_query(".", db, sql));
    // Drawn again with another sampler seed: kept beside the first (the sampling noise), not replacing it.
    rc = run("build/promoe eval %.8s --cfg 1.5 --n 50 --steps 2 --seed 7 --db %s", run_id, db);
    snprintf(sql, sizeof sql, "SELECT count(DISTINCT sample_seed) FROM evals WHERE run_id='%s' AND n_samples=50 AND "
             "cfg_scale=1.5 AND metric='fd'", run_id);
    CHECK(rc == 0 && run_query(".", db, sql) == 2, "redraw with --seed 7 kept beside seed 0: %g", run_query(".", db, sql));
    snprintf(sql, sizeof sql, "SELECT min(value) FROM evals WHERE run_id='%s' AND metric='is'", run_id);
    CHECK(run_query(".", db, sql) >= 1 && run_query(".", db, sql) <= 10, "is out of [1, 10]");
    rc = run("build/promoe eval nosuchrun --db %s", db);
    CHECK(rc == 1 && strstr(output, "no run 'nosuchrun'"), "unknown run: %s", output);
    rc = run("build/promoe eval %s --cfg 1.0,x --db %s", run_id, db);
    CHECK(rc == 1 && strstr(output, "--cfg"), "bad cfg list: %s", output);
    // import-eval: five rows from the evaluator's output.
    rc = run("build/promoe import-eval %s %s --step 4 --cfg 1.5 --db %s", run_id, adm, db);
    CHECK(rc == 0, "import-eval failed (%d): %s", rc, output);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM evals WHERE run_id='%s' AND source='adm-evaluator' AND "
             "reference='VIRTUAL_imagenet256_labeled' AND n_samples=50000 AND sampler_steps=250", run_id);
    CHECK(run_query(".", db, sql) == 5, "import-eval rows: %g", run_query(".", db, sql));
    snprintf(sql, sizeof sql, "SELECT value FROM evals WHERE run_id='%s' AND metric='fid'", run_id);
    CHECK_NEAR(run_query(".", db, sql), 2.2706, 1e-12, "imported fid");
    rc = run("build/promoe import-eval %s %s --db %s", run_id, yaml, db);
    CHECK(rc == 1 && strstr(output, yaml), "malformed evaluator file: %s", output);
    char wal[700];
    unlink(db);
    snprintf(wal, sizeof wal, "%s-wal", db), unlink(wal);
    snprintf(wal, sizeof wal, "%s-shm", db), unlink(wal);
}

int main(void)
{
    rng_init(&g, 5, 0, RNG_TEST, 0);
    if (!mkdtemp(tmp)) return 1;
    mkdir("build", 0755);
    mkdir(RESULTS, 0755);
    test_frechet_closed_forms();
    test_frechet_sampled();
    test_inception_score();
    test_precision_recall();
    test_adm_parse();
    test_feature_network();
    test_cli();
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp);
    return test_summary("test_eval");
}
