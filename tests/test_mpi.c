// Data-parallel training over MPI, end to end (`make test-mpi` builds build-mpi/promoe and installs
// Open MPI when missing): 2 ranks x batch b/2 reproduce 1 process x batch b (build/promoe) on tiny
// dense and ProMoE models within the tolerances below; train.deterministic repeats bit for bit;
// rank 0 alone writes; a 2-rank run stopped and resumed equals the uninterrupted one; a per-rank
// pool is a different computation that the tolerances tell apart; DiffMoE with
// a global pool and an uneven batch split are refused. Outside `make test-mpi` (which sets
// PROMOE_TEST_MPI) the program says that it skips and why, and checks nothing.
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

static void losses_of(const char *tag, char *out, size_t size)
{
    char db[256], path[1024];
    snprintf(db, sizeof db, "%s.db", tag);
    out[0] = '\0';
    if (checkpoint_of(tag, path) < 0) return;
    char *id = strrchr(path, '/');   // .../<run id>/latest.safetensors
    *id = '\0';
    run_losses(tmp_dir, db, strrchr(path, '/') + 1, out, size);
}

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

// 1 x b against 2 x b/2 for one config: losses and final weights. expect_match = 0 for a control
// that must fall outside the tolerance.
static void compare_with_one_process(const char *config, const char *extra, const char *tag, int expect_match)
{
    char one[64], two[64], a[1024], b[1024], worst[256] = "";
    static char la[8192], lb[8192];
    snprintf(one, sizeof one, "%s_one", tag);
    snprintf(two, sizeof two, "%s_two", tag);
    CHECK(train(1, config, extra, one) == 0, "%s: one process failed (see %s/%s.log)", tag, tmp_dir, one);
    int rc = train(2, config, extra, two);
    CHECK(rc == 0, "%s: two ranks failed with status %d (see %s/%s.log)", tag, rc, tmp_dir, two);
    losses_of(one, la, sizeof la);
    losses_of(two, lb, sizeof lb);
    double loss_rel = loss_difference(la, lb), weight_rel = -1;
    if (checkpoint_of(one, a) == 0 && checkpoint_of(two, b) == 0)
        weight_rel = weight_difference(a, b, worst, sizeof worst);
    if (!expect_match) {
        CHECK(loss_rel > LOSS_REL_TOL && weight_rel > WEIGHT_REL_TOL,
              "%s: a run that should differ matches (losses %.3g, weights %.3g)", tag, loss_rel, weight_rel);
        printf("%s (control, must differ): losses differ by %.2g, weights by %.2g\n", tag, loss_rel, weight_rel);
        return;
    }
    CHECK(loss_rel >= 0 && loss_rel <= LOSS_REL_TOL, "%s: losses differ by %.3g relative:\n%s---\n%s", tag,
          loss_rel, la, lb);
    CHECK(weight_rel >= 0 && weight_rel <= WEIGHT_REL_TOL, "%s: weights differ by %.3g relative (tensor '%s')",
          tag, weight_rel, worst);
    printf("%s: 1 x 16 vs 2 x 8 over " STEPS " steps: losses within %.2g relative, weights within %.2g ('%s')\n",
           tag, loss_rel, weight_rel, worst);
}

// A value from tmp_dir/<tag>.db.
static double query(const char *tag, const char *sql)
{
    char db[256];
    snprintf(db, sizeof db, "%s.db", tag);
    return run_query(tmp_dir, db, sql);
}

// Fixed-order sums: two 2-rank runs agree bit for bit; rank 0 records the world size and the
// all-reduce volume (at least the gradient buffer, 4 bytes a parameter).
static void test_deterministic(void)
{
    char a[1024], b[1024];
    static char la[8192], lb[8192];
    const char *extra = "train.deterministic=true";
    CHECK(train(2, "experiments/mini/promoe.yaml", extra, "det_a") == 0, "first deterministic run");
    CHECK(train(2, "experiments/mini/promoe.yaml", extra, "det_b") == 0, "second deterministic run");
    losses_of("det_a", la, sizeof la);
    losses_of("det_b", lb, sizeof lb);
    CHECK(la[0] && strcmp(la, lb) == 0, "deterministic repeats differ:\n%s---\n%s", la, lb);
    CHECK(checkpoint_of("det_a", a) == 0 && checkpoint_of("det_b", b) == 0 && same_tensors(a, b),
          "deterministic repeats end with different weights");
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

// A global DiffMoE pool over ranks is refused naming the router; a pool per rank trains (DiffMoE,
// k-means). A batch that does not split evenly is refused.
static void test_refusals(void)
{
    char log[512], cmd[1024];
    CHECK(train(2, "experiments/mini/diffmoe.yaml", "", "diffmoe_global") != 0, "global DiffMoE pool accepted");
    snprintf(log, sizeof log, "%s/diffmoe_global.log", tmp_dir);
    snprintf(cmd, sizeof cmd, "grep -q \"router 'diffmoe'.*model.moe.pool_scope: rank\" %s", log);
    CHECK(system(cmd) == 0, "the refusal does not name the router and the way out (see %s)", log);
    CHECK(train(2, "experiments/mini/diffmoe.yaml", "model.moe.pool_scope=rank", "diffmoe_rank") == 0,
          "DiffMoE with a pool per rank failed (see %s/diffmoe_rank.log)", tmp_dir);
    CHECK(train(2, "experiments/mini/kmeans.yaml", "model.moe.pool_scope=rank", "kmeans_rank") == 0,
          "k-means with a pool per rank failed (see %s/kmeans_rank.log)", tmp_dir);
    CHECK(train(2, "experiments/mini/dense.yaml", "train.batch_size=15", "uneven") != 0, "batch 15 over 2 ranks");
    snprintf(cmd, sizeof cmd, "grep -q 'does not split evenly over 2 ranks' %s/uneven.log", tmp_dir);
    CHECK(system(cmd) == 0, "the uneven split message is missing");
}

static void test_matches_one_process(const char *config, const char *extra, const char *tag)
{
    compare_with_one_process(config, extra, tag, 1);
}

int main(void)
{
    if (!getenv("PROMOE_TEST_MPI")) {   // set by `make test-mpi`, which builds what this needs
        printf("mpi: skipped: the data-parallel test runs under `make test-mpi` (Open MPI, build-mpi/promoe)\n");
        return test_summary("mpi");
    }
    CHECK(access(mpi_binary, X_OK) == 0 && access(plain_binary, X_OK) == 0, "%s or %s is missing", mpi_binary,
          plain_binary);
    CHECK(system("command -v mpirun > /dev/null 2>&1") == 0, "mpirun is not on PATH");
    if (check_failed) return test_summary("mpi");
    if (!mkdtemp(tmp_dir)) return fprintf(stderr, "mkdtemp failed\n"), 1;
    test_matches_one_process("experiments/mini/dense.yaml", "", "dense");
    test_matches_one_process("experiments/mini/dense.yaml", "objective=ddpm", "dense_ddpm");
    test_matches_one_process("experiments/mini/promoe.yaml", "", "promoe");
    test_matches_one_process("experiments/mini/promoe.yaml", "loss.balance.weight=0.01", "promoe_balance");
    test_matches_one_process("experiments/mini/kmeans.yaml", "", "kmeans");
    test_matches_one_process("experiments/mini/classification.yaml", "", "classification");
    test_matches_one_process("experiments/mini/token_choice.yaml", "", "token_choice");
    // Control: RCL over each rank's own tokens is a different loss, and the tolerances see it.
    compare_with_one_process("experiments/mini/promoe.yaml", "model.moe.pool_scope=rank", "promoe_rank", 0);
    test_deterministic();
    test_resume();
    test_refusals();
    return test_summary("mpi");
}
