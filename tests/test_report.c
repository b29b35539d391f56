// promoe report on a synthetic study database (sweep study-mini: the dense and ProMoE rows over two
// seeds, FD and class accuracy evaluations, one of them redrawn with another sampler seed,
// validation and training losses): REPORT.md holds the protocol, the pilot's seed spread and the
// smallest detectable difference computed from the rows, the sampling noise from the redraws, the
// tables with their CSV files, the claims with paired verdicts and the loss figures; without a
// cached feature network the FD floor says so instead of training one.
#include "check.h"
#include "scratch.h"
#include "core/error.h"
#include "report/stats.h"
#include "store/db.h"

#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[] = "/tmp/promoe_test_report_XXXXXX";

static const char *path_in(const char *name) { return scratch_path(dir, name); }

// Dense: val_loss 0.30, 0.32; FD 30, 31 (seed 0 redrawn: 32). ProMoE: val_loss 0.28, 0.29; FD 25, 27
// (seed 0 redrawn: 24).
static const char DATA_SQL[] =
    "INSERT INTO sweeps VALUES ('study-mini','','x',0);"
    "INSERT INTO runs (run_id, config_sha256, config_yaml, label, seed, status, params_total, params_active, train_s,"
    " img_per_s, created_ms, threads, heartbeat_ms) VALUES"
    " ('d0','h0','','dense',0,'done',1000000,1000000,600,200,0,1,0), ('d1','h1','','dense',1,'done',1000000,1000000,600,200,0,2,0),"
    " ('p0','h2','','promoe',0,'done',3000000,1000000,660,190,0,1,0), ('p1','h3','','promoe',1,'done',3000000,1000000,660,190,0,1,660000),"
    " ('d2','h4','','dense',2,'running',1000000,1000000,NULL,200,0,1,0);"
    // Wall time per run: dense 10 min (d1 in two attempts), ProMoE 11 min (p1's attempt ends at its heartbeat).
    "INSERT INTO attempts (run_id, attempt, from_step, started_ms, ended_ms) VALUES ('d0',1,0,0,600000),"
    " ('d1',1,0,0,240000), ('d1',2,10,1000000,1360000), ('p0',1,0,0,660000), ('p1',1,0,0,NULL), ('d2',1,0,0,999999);"
    "INSERT INTO sweep_runs VALUES ('study-mini',0,'d0'), ('study-mini',1,'p0'), ('study-mini',2,'d1'), ('study-mini',3,'p1'),"
    " ('study-mini',4,'d2');"
    "INSERT INTO params SELECT run_id, 'train.seed', CAST(seed AS TEXT) FROM runs;"
    "INSERT INTO sweeps VALUES ('protocol-search-mini','','y',0); INSERT INTO sweep_runs VALUES ('protocol-search-mini',0,'d0');"
    "INSERT INTO params VALUES ('d0','train.batch_size','128'), ('d0','train.lr','0.001');"
    "INSERT INTO params SELECT run_id, 'train.steps', '4000' FROM runs;"
    "INSERT INTO params SELECT run_id, 'eval.val_every', '400' FROM runs;"
    "INSERT INTO params SELECT run_id, 'eval.val_n', '300' FROM runs;"
    "INSERT INTO params SELECT run_id, 'eval.val_bins', '8' FROM runs;"
    "INSERT INTO params VALUES ('d0','model.moe.experts','\"\"'), ('d1','model.moe.experts','\"\"'), ('d2','model.moe.experts','\"\"');"
    "INSERT INTO params SELECT run_id, 'model.moe.experts', '\"E14A1S1U1\"' FROM runs WHERE label = 'promoe';"
    "INSERT INTO params SELECT run_id, 'model.moe.router', 'prototype' FROM runs WHERE label = 'promoe';"
    "INSERT INTO params SELECT run_id, 'model.moe.activation', 'identity' FROM runs WHERE label = 'promoe';"
    "INSERT INTO params SELECT run_id, 'loss.balance.weight', '0' FROM runs WHERE label = 'promoe';"
    "INSERT INTO evals (run_id, step, cfg_scale, sampler, sampler_steps, n_samples, reference, metric, value,"
    " sample_seed, wall_s, created_ms) VALUES"
    " ('d0',20,1.5,'euler',25,1000,'fmnist-train','fd',30,0,60,0), ('d1',20,1.5,'euler',25,1000,'fmnist-train','fd',31,1,60,0),"
    " ('p0',20,1.5,'euler',25,1000,'fmnist-train','fd',25,0,60,0), ('p1',20,1.5,'euler',25,1000,'fmnist-train','fd',27,1,60,0),"
    " ('d0',20,1.5,'euler',25,1000,'fmnist-train','fd',32,1000,60,0), ('p0',20,1.5,'euler',25,1000,'fmnist-train','fd',24,1000,60,0),"
    " ('d0',20,1.5,'euler',25,1000,'fmnist-train','class_acc',0.7,0,60,0), ('d1',20,1.5,'euler',25,1000,'fmnist-train','class_acc',0.72,1,60,0);"
    "INSERT INTO metrics VALUES ('d0','val_loss',20,0.30,0), ('d1','val_loss',20,0.32,0), ('p0','val_loss',20,0.28,0),"
    " ('p1','val_loss',20,0.29,0), ('d2','val_loss',10,0.9,0), ('d0','loss',10,0.5,0), ('d0','loss',20,0.4,0), ('p0','loss',10,0.45,0), ('p0','loss',20,0.35,0);";

static const char *slurp(const char *path) { return scratch_slurp(path); }

static int make_database(void) { return scratch_database(path_in("study.db"), DATA_SQL); }

int main(void)
{
    if (!mkdtemp(dir)) return 1;
    CHECK(make_database() == 0, "synthetic database");
    char command[2048], expected[256];
    snprintf(command, sizeof command, "build/promoe report --db %s --out %s > %s 2>&1", path_in("study.db"),
             path_in("out"), path_in("log"));
    CHECK(system(command) == 0, "report: %s", slurp(path_in("log")));
    const char *md = slurp(path_in("out/REPORT.md"));
    CHECK(strstr(md, "4 of 5 runs done"), "header:\n%.400s", md);
    CHECK(strstr(md, "```yaml\n# The mini study's protocol"), "protocol verbatim");
    CHECK(strstr(md, "uses the same 300 test images, noise and 8 timestep bins"), "validation set from the runs' params");
    CHECK(strstr(md, "| promoe | 2 / 2 | 3.00M | 1.00M | 190.0 | 11.0 min | 1 |"), "parameters row");
    CHECK(strstr(md, "### Protocol search") && strstr(md, "| batch 128, lr 1e-3 (the first protocol) | 30.00 |"),
          "protocol search table with d0's FD:\n%.600s", strstr(md, "### Protocol search") ? strstr(md, "### Protocol search") : md);
    CHECK(strstr(md, "| batch 64, lr 2e-3 | no run | - | no run | no run |"),
          "a candidate without runs");
    CHECK(access(path_in("out/tables/protocol.csv"), F_OK) == 0, "protocol search CSV");
    CHECK(strstr(md, "| dense | 2 / 3 | 1.00M | 1.00M | 200.0 | 10.0 min | 1-2 |"), "parameters row with a run going");
    // Pilot: SD of dense's val_loss sqrt(2) * 0.01; pooled over both rows sqrt((2e-4 + 5e-5) / 2).
    double pooled = sqrt((2e-4 + 5e-5) / 2), smallest = stats_t975(2) * sqrt(2.0 / 3) * pooled;
    snprintf(expected, sizeof expected, "| val_loss | %.4g (n=2) | %.4g (n=2) | %.4g (df=2) | %.4g |", sqrt(2) * 0.01,
             sqrt(0.5) * 0.01, pooled, smallest);
    CHECK(strstr(md, expected), "pilot row '%s' in:\n%s", expected, strstr(md, "## Pilot") ? strstr(md, "## Pilot") : md);
    // Sampling noise: redraw differences 2 and 1: sqrt((4 + 1) / 2 / 2).
    snprintf(expected, sizeof expected, "| fd at cfg 1.5 | %.4g | 2 |", sqrt(1.25));
    CHECK(strstr(md, expected), "redraw row '%s'", expected);
    snprintf(expected, sizeof expected, "| fd at cfg 1.5, promoe - dense | %.4g | 1 |", sqrt(4.5));
    CHECK(strstr(md, expected), "paired redraw row '%s' (differences -5 and -8)", expected);
    CHECK(strstr(md, "FD floor: no feature network"), "floor without a feature network");
    CHECK(strstr(md, "| 0.3100 ± 0.1271 (n=2) |"), "val_loss of done runs only (d2 is still running)");
    CHECK(strstr(md, "| 49.89 | 30.50 ± 6.35 (n=2) | 9.02 |"),
          "table 1 dense row (the run seed, not the redraw)");
    CHECK(strstr(md, "| ProMoE beats the dense DiT of the same activated size | Table 3 | val_loss | 2 | 0.28500 vs 0.31000 "
                     "| +0.02500 | [-0.03853, +0.08853] | **inconclusive** |"), "claim row");
    CHECK(access(path_in("out/tables/table1.csv"), F_OK) == 0 && access(path_in("out/tables/claims.csv"), F_OK) == 0,
          "CSV tables");
    CHECK(strstr(slurp(path_in("out/tables/claims.csv")), "t1-promoe-vs-dense-val,\"Table 3\",val_loss,,mini,2,"),
          "claims csv");
    CHECK(strstr(slurp(path_in("out/REPORT.md")), "![training loss](figures/loss-table1.png)"), "loss figure");
    CHECK(strstr(slurp(path_in("out/REPORT.md")), "1/20 of the run: 200 steps of 4000) and the held-out validation "
                                                   "loss (points, every 400 steps)"),
          "the loss curves' smoothing span and validation interval from the runs' params");
    CHECK(strstr(slurp(path_in("out/figures/loss-table1.dat")), "# label dense\n10 0.5 0.5 1\n"), "loss data");
    snprintf(command, sizeof command, "rm -rf %s", dir);
    if (check_failed == 0 && system(command) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return test_summary("test_report");
}
