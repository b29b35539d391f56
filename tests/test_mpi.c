// Data-parallel training over MPI, end to end (`make test-mpi` builds build-mpi/promoe and installs
// Open MPI when missing): 2 ranks x batch b/2 reproduce 1 process x batch b (build/promoe) on tiny
// dense, ProMoE, DiffMoE and Expert Race models within the tolerances below (the last two rank a
// global pool of gathered scores; their auxiliary losses are compared too); train.deterministic
// repeats bit for bit; rank 0 alone writes; a 2-rank run stopped and resumed equals the
// uninterrupted one; per-rank pools are different computations that the tolerances tell apart;
// an uneven batch split is refused. The layer-level checks of global pools are tests/mpi_pool.c,
// run here under mpirun. Outside `make test-mpi` (which sets PROMOE_TEST_MPI) the program says
// that it skips and why, and checks nothing.
#include <dirent.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "runs.h"
#include "model/safetensors.h"

// Losses are means over the batch: the split changes only the order of float sums.
#define LOSS_REL_TOL 1e-5
// Weights after a few AdamW steps: an entry whose gradient is rounding noise may move by a
// noticeably different amount, so the bound is on each tensor's largest change relative to its
// largest entry.
#define WEIGHT_REL_TOL 1e-3
#define STEPS "4"

static const char *const mpi_binary = "build-mpi/promoe", *plain_binary = "build/promoe";
static const char *const pool_test = "build-mpi/tests/mpi_pool";
static const char *const launcher =
    "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none "
    "OMP_NUM_THREADS=1 mpirun -np 2 --oversubscribe --bind-to none";
static const char *const tiny =
    "model.hidden=32 model.depth=2 model.heads=2 model.patch=7 train.batch_size=16 train.steps=" STEPS
    " train.lr=1e-3 log.every=1 sample.n=0 train.ema_decay=0.9 train.threads=1";
static char tmp_dir[] = "/tmp/promoe_test_mpi_XXXXXX";

// Trains into tmp_dir/<tag>.db and tmp_dir/<tag>/; ranks = 1 runs the plain build without mpirun.
static int train(int ranks, const char *config, const char *extra, const char *tag)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s%s %s train %s %s %s ckpt.dir=%s/%s --db %s/%s.db > %s/%s.log 2>&1",
             ranks > 1 ? "" : "OMP_NUM_THREADS=1 ", ranks > 1 ? launcher : "", ranks > 1 ? mpi_binary : plain_binary,
             config, tiny, extra, tmp_dir, tag, tmp_dir, tag, tmp_dir, tag);
    return system(cmd);
}

// The checkpoint of the single run in tmp_dir/<tag>/, into path (capacity 1024); 0 or -1.
static int checkpoint_of(const char *tag, char *path)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/%s", tmp_dir, tag);
    DIR *d = opendir(dir);
    struct dirent *e;
    int found = -1;
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.' && found < 0) {
            snprintf(path, 1024, "%s/%s/latest.safetensors", dir, e->d_name);
            found = 0;
        }
    if (d) closedir(d);
    return found;
}

// The rows of metric `name` of the run in tmp_dir/<tag>.
static void rows_of(const char *tag, const char *name, char *out, size_t size)
{
    char db[256], path[1024];
    snprintf(db, sizeof db, "%s.db", tag);
    out[0] = '\0';
    if (checkpoint_of(tag, path) < 0) return;
    char *id = strrchr(path, '/');   // .../<run id>/latest.safetensors
    *id = '\0';
    run_metric_rows(tmp_dir, db, strrchr(path, '/') + 1, name, out, size);
}

static void losses_of(const char *tag, char *out, size_t size) { rows_of(tag, "loss", out, size); }

// Largest |a - b| / |a| over the steps of two loss listings; -1 when they differ in steps.
static double loss_difference(const char *a, const char *b)
{
    double worst = 0;
    int rows = 0;
    while (*a && *b) {
        long long sa, sb;
        double va, vb;
        int na, nb;
        if (sscanf(a, "%lld %lf%n", &sa, &va, &na) != 2 || sscanf(b, "%lld %lf%n", &sb, &vb, &nb) != 2 || sa != sb)
            return -1;
        double rel = fabs(va - vb) / fabs(va);
        worst = rel > worst ? rel : worst;
        a += na + 1, b += nb + 1, rows++;
    }
    return *a || *b || rows == 0 ? -1 : worst;
}

// Largest per-tensor max |a - b| / max |a| over two checkpoints (float32); -1 if they differ in
// layout. The worst tensor's name goes to worst_name.
static double weight_difference(const char *a_path, const char *b_path, char *worst_name, size_t size)
{
    struct st_file *a, *b;
    double worst = -1;
    if (st_open(a_path, &a) < 0) return -1;
    if (st_open(b_path, &b) < 0) {
        st_close(a);
        return -1;
    }
    for (int i = 0; st_count(a) == st_count(b) && i < st_count(a); i++) {
        const char *dt_a, *dt_b;
        int nd_a, nd_b;
        int64_t sh_a[8], sh_b[8];
        const float *da = st_get(a, st_name(a, i), &dt_a, &nd_a, sh_a);
        const float *db = st_get(b, st_name(a, i), &dt_b, &nd_b, sh_b);
        if (!db || nd_a != nd_b || strcmp(dt_a, "F32") != 0) {
            worst = -1;
            break;
        }
        size_t n = 1;
        for (int d = 0; d < nd_a; d++) n *= (size_t)sh_a[d];
        double diff = 0, scale = 0;
        for (size_t k = 0; k < n; k++) {
            diff = fmax(diff, fabs((double)da[k] - db[k]));
            scale = fmax(scale, fabs((double)da[k]));
        }
        double rel = scale > 0 ? diff / scale : diff;
        if (rel > worst || worst < 0) {
            worst = rel;
            snprintf(worst_name, size, "%s", st_name(a, i));
        }
    }
    st_close(a);
    st_close(b);
    return worst;
}

// Largest relative difference of the figure rows `name` of two runs (-1 when they differ in steps);
// the rows are left in la and lb (capacity 8192 each).
static double figure_difference(const char *one, const char *two, const char *name, char *la, char *lb)
{
    rows_of(one, name, la, 8192);
    rows_of(two, name, lb, 8192);
    return loss_difference(la, lb);
}

// 1 x b against 2 x b/2 for one config: losses, the auxiliary loss `aux` (a metric name such as
// "aux/capacity"; NULL for none) and final weights, buffers included. expect_match = 0 for a
// control that must fall outside the tolerances: on the figures and on the weights.
static void compare_with_one_process(const char *config, const char *extra, const char *tag, const char *aux,
                                     int expect_match)
{
    char one[64], two[64], a[1024], b[1024], worst[256] = "";
    static char la[8192], lb[8192], xa[8192], xb[8192];
    snprintf(one, sizeof one, "%s_one", tag);
    snprintf(two, sizeof two, "%s_two", tag);
    CHECK(train(1, config, extra, one) == 0, "%s: one process failed (see %s/%s.log)", tag, tmp_dir, one);
    int rc = train(2, config, extra, two);
    CHECK(rc == 0, "%s: two ranks failed with status %d (see %s/%s.log)", tag, rc, tmp_dir, two);
    double loss_rel = figure_difference(one, two, "loss", la, lb), weight_rel = -1;
    double aux_rel = aux ? figure_difference(one, two, aux, xa, xb) : 0;
    double figure_rel = loss_rel < 0 || aux_rel < 0 ? -1 : fmax(loss_rel, aux_rel);
    char aux_text[96] = "";
    if (aux) snprintf(aux_text, sizeof aux_text, ", %s %.2g", aux, aux_rel);
    if (checkpoint_of(one, a) == 0 && checkpoint_of(two, b) == 0)
        weight_rel = weight_difference(a, b, worst, sizeof worst);
    if (!expect_match) {
        CHECK(figure_rel > LOSS_REL_TOL && weight_rel > WEIGHT_REL_TOL,
              "%s: a run that should differ matches (losses %.3g%s, weights %.3g)", tag, loss_rel, aux_text,
              weight_rel);
        printf("%s (control, must differ): relative differences: losses %.2g%s, weights %.2g ('%s')\n", tag,
               loss_rel, aux_text, weight_rel, worst);
        return;
    }
    CHECK(loss_rel >= 0 && loss_rel <= LOSS_REL_TOL, "%s: losses differ by %.3g relative:\n%s---\n%s", tag,
          loss_rel, la, lb);
    CHECK(!aux || (xa[0] && aux_rel >= 0 && aux_rel <= LOSS_REL_TOL), "%s: %s differs by %.3g relative:\n%s---\n%s",
          tag, aux ? aux : "", aux_rel, xa, xb);
    CHECK(weight_rel >= 0 && weight_rel <= WEIGHT_REL_TOL, "%s: weights differ by %.3g relative (tensor '%s')",
          tag, weight_rel, worst);
    printf("%s: 1 x 16 vs 2 x 8 over " STEPS " steps: relative differences: losses %.2g%s, weights %.2g ('%s')\n",
           tag, loss_rel, aux_text, weight_rel, worst);
}

// A value from tmp_dir/<tag>.db.
static double query(const char *tag, const char *sql)
{
    char db[256];
    snprintf(db, sizeof db, "%s.db", tag);
    return run_query(tmp_dir, db, sql);
}

// Fixed-order sums: two 2-rank runs of config, tmp_dir/<tag>_a and _b, agree bit for bit.
static void check_repeats(const char *config, const char *tag)
{
    char a[1024], b[1024], first[64], second[64];
    static char la[8192], lb[8192];
    const char *extra = "train.deterministic=true";
    snprintf(first, sizeof first, "%s_a", tag);
    snprintf(second, sizeof second, "%s_b", tag);
    CHECK(train(2, config, extra, first) == 0, "%s: first deterministic run", tag);
    CHECK(train(2, config, extra, second) == 0, "%s: second deterministic run", tag);
    losses_of(first, la, sizeof la);
    losses_of(second, lb, sizeof lb);
    CHECK(la[0] && strcmp(la, lb) == 0, "%s: deterministic repeats differ:\n%s---\n%s", tag, la, lb);
    CHECK(checkpoint_of(first, a) == 0 && checkpoint_of(second, b) == 0 && same_tensors(a, b),
          "%s: deterministic repeats end with different weights", tag);
}

// Fixed-order sums: ProMoE and Expert Race (whose global race gathers scores and sums co-selection
// counts) repeat bit for bit; rank 0 records the world size and the all-reduce volume (at least
// the gradient buffer, 4 bytes a parameter).
static void test_deterministic(void)
{
    check_repeats("experiments/mini/promoe.yaml", "det");
    check_repeats("experiments/mini/expert_race.yaml", "race_det");
    double world = query("det_a", "SELECT world_size FROM runs");
    double params = query("det_a", "SELECT params_total FROM runs");
    double bytes = query("det_a", "SELECT value FROM metrics WHERE name = 'reduced_bytes_per_step' AND step = " STEPS);
    CHECK(world == 2, "world size %g", world);
    CHECK(bytes >= 4 * params && bytes < 4 * params * 1.5, "%g bytes all-reduced per step for %g parameters",
          bytes, params);
    printf("mpi: tiny ProMoE, %g parameters: %g bytes all-reduced per step\n", params, bytes);
}

// A 2-rank run stopped after 2 steps and resumed by both ranks from rank 0's checkpoint equals
// the uninterrupted 2-rank run.
static void test_resume(void)
{
    char a[1024], b[1024];
    static char la[8192], lb[8192];
    CHECK(train(2, "experiments/mini/promoe.yaml", "train.deterministic=true --stop-after 2", "res") == 0,
          "interrupted run");
    CHECK(query("res", "SELECT step_done FROM runs") == 2, "stopped at step %g",
          query("res", "SELECT step_done FROM runs"));
    CHECK(train(2, "experiments/mini/promoe.yaml", "train.deterministic=true --resume", "res") == 0, "resumed run");
    losses_of("res", la, sizeof la);
    losses_of("det_a", lb, sizeof lb);
    CHECK(la[0] && strcmp(la, lb) == 0, "resumed losses differ:\n%s---\n%s", la, lb);
    CHECK(checkpoint_of("res", a) == 0 && checkpoint_of("det_a", b) == 0 && same_tensors(a, b),
          "resumed weights differ");
}

// The gathered volume per step that rank 0 records: DiffMoE's global pool gathers, in its one MoE
// layer (block 1), the scores and predicted probabilities of 8 samples x 16 tokens x 8 experts and
// 8 routed flags, 4 bytes each; its per-rank pool gathers nothing.
static void test_gathered_bytes(void)
{
    const char *sql = "SELECT value FROM metrics WHERE name = 'gathered_bytes_per_step' AND step = " STEPS;
    double global = query("diffmoe_two", sql), rank = query("diffmoe_rank_two", sql);
    CHECK(global == 4 * (2 * 8 * 16 * 8 + 8), "DiffMoE's global pool gathered %g bytes per step", global);
    CHECK(rank == 0, "DiffMoE's per-rank pools gathered %g bytes per step", rank);
}

// The layer-level checks of global pools (tests/mpi_pool.c) on 2 ranks.
static void test_pool_layers(void)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s %s > %s/mpi_pool.log 2>&1", launcher, pool_test, tmp_dir);
    int rc = system(cmd);
    CHECK(rc == 0, "%s failed with status %d (see %s/mpi_pool.log)", pool_test, rc, tmp_dir);
    // Indented, so that tests/run.sh does not take a rank's summary line for this program's.
    fflush(stdout);
    snprintf(cmd, sizeof cmd, "grep -E 'FAIL|passed' %s/mpi_pool.log | sed 's/^/  /' | grep -q passed", tmp_dir);
    CHECK(system(cmd) == 0, "%s printed no summary (see %s/mpi_pool.log)", pool_test, tmp_dir);
    snprintf(cmd, sizeof cmd, "grep -E 'FAIL|passed' %s/mpi_pool.log | sed 's/^/  /'", tmp_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not show %s/mpi_pool.log\n", tmp_dir);
}

// A pool per rank trains (k-means; DiffMoE and Expert Race in the controls above). A batch that
// does not split evenly is refused.
static void test_refusals(void)
{
    char cmd[1024];
    CHECK(train(2, "experiments/mini/kmeans.yaml", "model.moe.pool_scope=rank", "kmeans_rank") == 0,
          "k-means with a pool per rank failed (see %s/kmeans_rank.log)", tmp_dir);
    CHECK(train(2, "experiments/mini/dense.yaml", "train.batch_size=15", "uneven") != 0, "batch 15 over 2 ranks");
    snprintf(cmd, sizeof cmd, "grep -q 'does not split evenly over 2 ranks' %s/uneven.log", tmp_dir);
    CHECK(system(cmd) == 0, "the uneven split message is missing");
}

static void test_matches_one_process(const char *config, const char *extra, const char *tag, const char *aux)
{
    compare_with_one_process(config, extra, tag, aux, 1);
}

// DiffMoE with an unconditional expert for null-label samples: ranks' pools differ in size.
static const char *const diffmoe_conditional = "model.moe.experts=E9A1S0U1 model.moe.conditional=true";

int main(void)
{
    if (!getenv("PROMOE_TEST_MPI")) {   // set by `make test-mpi`, which builds what this needs
        printf("mpi: skipped: the data-parallel test runs under `make test-mpi` (Open MPI, build-mpi/promoe)\n");
        return test_summary("mpi");
    }
    CHECK(access(mpi_binary, X_OK) == 0 && access(plain_binary, X_OK) == 0 && access(pool_test, X_OK) == 0,
          "%s, %s or %s is missing", mpi_binary, plain_binary, pool_test);
    CHECK(system("command -v mpirun > /dev/null 2>&1") == 0, "mpirun is not on PATH");
    if (check_failed) return test_summary("mpi");
    if (!mkdtemp(tmp_dir)) return fprintf(stderr, "mkdtemp failed\n"), 1;
    test_pool_layers();
    test_matches_one_process("experiments/mini/dense.yaml", "", "dense", NULL);
    test_matches_one_process("experiments/mini/dense.yaml", "objective=ddpm", "dense_ddpm", NULL);
    test_matches_one_process("experiments/mini/promoe.yaml", "", "promoe", NULL);
    test_matches_one_process("experiments/mini/promoe.yaml", "loss.balance.weight=0.01", "promoe_balance", NULL);
    test_matches_one_process("experiments/mini/kmeans.yaml", "", "kmeans", NULL);
    test_matches_one_process("experiments/mini/classification.yaml", "", "classification", NULL);
    test_matches_one_process("experiments/mini/token_choice.yaml", "", "token_choice", NULL);
    test_matches_one_process("experiments/mini/diffmoe.yaml", "", "diffmoe", "aux/capacity");
    test_matches_one_process("experiments/mini/diffmoe.yaml", diffmoe_conditional, "diffmoe_cond", "aux/capacity");
    test_matches_one_process("experiments/mini/expert_race.yaml", "", "race", "aux/router_sim");
    // Controls: pools of each rank's own tokens are different computations, and the tolerances see
    // them (RCL centroids; DiffMoE's and Expert Race's selections and thresholds).
    compare_with_one_process("experiments/mini/promoe.yaml", "model.moe.pool_scope=rank", "promoe_rank", NULL, 0);
    compare_with_one_process("experiments/mini/diffmoe.yaml", "model.moe.pool_scope=rank", "diffmoe_rank",
                             "aux/capacity", 0);
    compare_with_one_process("experiments/mini/expert_race.yaml", "model.moe.pool_scope=rank", "race_rank",
                             "aux/router_sim", 0);
    test_gathered_bytes();
    test_deterministic();
    test_resume();
    test_refusals();
    return test_summary("mpi");
}
