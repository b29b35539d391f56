// Divergence inside a sweep: the first run's data holds a NaN, so its loss becomes NaN; that run
// stops at once, is marked failed with the step and the reason, keeps its last good checkpoint, and
// the sweep goes on to train the next run to the end (exit status 1: one run failed).
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "check.h"
#include "data/npy.h"
#include "runs.h"

enum { N = 64, S = 8, NAN_EXAMPLE = 37 };

static char dir[] = "/tmp/promoe_test_divergence_XXXXXX";

static void write_dataset(const char *name, int with_nan)
{
    static float x[N * S * S];
    static int64_t y[N];
    for (int i = 0; i < N * S * S; i++) x[i] = (float)((i * 7919) % 200) / 100.0f - 1.0f;
    for (int i = 0; i < N; i++) y[i] = i % 10;
    if (with_nan) x[NAN_EXAMPLE * S * S + 5] = NAN;
    char xp[512], yp[512];
    snprintf(xp, sizeof xp, "%s/%s_x.npy", dir, name);
    snprintf(yp, sizeof yp, "%s/%s_y.npy", dir, name);
    int64_t shape[4] = {N, 1, S, S}, label_shape[1] = {N};
    CHECK(npy_write(xp, NPY_F32, 4, shape, x) == 0 && npy_write(yp, NPY_I64, 1, label_shape, y) == 0, "write %s", name);
}

int main(void)
{
    if (!mkdtemp(dir)) return 1;
    write_dataset("nan", 1);
    write_dataset("good", 0);
    char text[2048], cmd[1024];
    snprintf(text, sizeof text,
             "sweep: diverge\n"
             "set: {model.hidden: 32, model.depth: 2, model.heads: 2, model.patch: 4, data.name: npy,\n"
             "      data.image_size: 8, train.steps: 40, train.batch_size: 16, train.threads: 1,\n"
             "      sample.n: 0, ckpt.every: 1, ckpt.dir: %s/ckpt}\n"
             "runs:\n"
             "  - {label: nan, train.seed: 0, data.path: %s/nan_x.npy, data.labels: %s/nan_y.npy}\n"
             "  - {label: good, train.seed: 1, data.path: %s/good_x.npy, data.labels: %s/good_y.npy}\n",
             dir, dir, dir, dir, dir);
    snprintf(cmd, sizeof cmd, "%s/sweep.yaml", dir);
    FILE *f = fopen(cmd, "w");
    if (f) fputs(text, f), fclose(f);
    snprintf(cmd, sizeof cmd, "build/promoe sweep %s/sweep.yaml --db %s/r.db > %s/out.txt 2>&1", dir, dir, dir);
    int status = system(cmd);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 1, "the sweep should exit 1 (one run failed), status %d", status);
    CHECK(run_query(dir, "r.db", "SELECT count(*) FROM runs WHERE label='nan' AND status='failed' AND "
                    "error LIKE 'loss is nan at step %' AND step_done < 40") == 1, "the NaN run is failed with its step");
    double failed_at = run_query(dir, "r.db", "SELECT CAST(substr(error, 20) AS INTEGER) FROM runs WHERE label='nan'");
    double kept = run_query(dir, "r.db", "SELECT max(c.step) FROM checkpoints c JOIN runs r USING (run_id) WHERE r.label='nan'");
    CHECK(failed_at >= 1 && kept == failed_at - 1, "last good checkpoint at step %g, failure at step %g", kept, failed_at);
    CHECK(run_query(dir, "r.db", "SELECT count(*) FROM runs WHERE label='good' AND status='done' AND step_done=40") == 1,
          "the next run was trained to the end");
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (check_failed == 0 && system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
    return test_summary("test_divergence");
}
