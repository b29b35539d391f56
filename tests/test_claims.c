// promoe claims and the table metrics behind them: a synthetic database (two rows of three seeds,
// FD from evaluations, the validation loss from metrics, a redrawn evaluation with another sampler
// seed) gives exact paired differences, Student t intervals and verdicts (agrees, disagrees,
// inconclusive, too few seeds, not tested), in Markdown and CSV; a table cell reads the run's own
// sampler seed, not the redraw; bad claims files are errors naming file, line and key.
#include "check.h"
#include "core/error.h"
#include "report/claims.h"
#include "report/stats.h"
#include "report/table.h"
#include "scratch.h"
#include "store/db.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[] = "/tmp/promoe_test_claims_XXXXXX";

static const char *path_in(const char *name) { return scratch_path(dir, name); }

// Row A (prototype): FD 10, 11, 12 and val_loss 0.30, 0.31, 0.32 for seeds 0-2; row B (token
// choice): FD 12, 14, 13 and val_loss 0.35, 0.36, 0.37; row C (kmeans) only has seed 0. A0 also has
// an FD of 99 drawn with sampler seed 1000 (a redraw), which cells must not pick.
static const char DATA_SQL[] =
    "INSERT INTO sweeps VALUES ('s','','x',0);"
    "INSERT INTO runs (run_id, config_sha256, config_yaml, label, seed, status, created_ms) VALUES"
    " ('a0','h0','','a',0,'done',0), ('a1','h1','','a',1,'done',0), ('a2','h2','','a',2,'done',0),"
    " ('b0','h3','','b',0,'done',0), ('b1','h4','','b',1,'done',0), ('b2','h5','','b',2,'done',0),"
    " ('c0','h6','','c',0,'done',0);"
    "INSERT INTO sweep_runs VALUES ('s',0,'a0'), ('s',1,'b0'), ('s',2,'c0'), ('s',3,'a1'), ('s',4,'b1'),"
    " ('s',5,'a2'), ('s',6,'b2');"
    "INSERT INTO params SELECT run_id, 'train.seed', CAST(seed AS TEXT) FROM runs;"
    "INSERT INTO params SELECT run_id, 'model.moe.router', CASE label WHEN 'a' THEN 'prototype' WHEN 'b' THEN"
    " 'token_choice' ELSE 'kmeans' END FROM runs;"
    "INSERT INTO evals (run_id, step, cfg_scale, sampler, sampler_steps, n_samples, reference, metric, value,"
    " sample_seed, created_ms) VALUES"
    " ('a0',100,1.5,'euler',25,1000,'fmnist-train','fd',10,0,0), ('a1',100,1.5,'euler',25,1000,'fmnist-train','fd',11,1,0),"
    " ('a2',100,1.5,'euler',25,1000,'fmnist-train','fd',12,2,0), ('b0',100,1.5,'euler',25,1000,'fmnist-train','fd',12,0,0),"
    " ('b1',100,1.5,'euler',25,1000,'fmnist-train','fd',14,1,0), ('b2',100,1.5,'euler',25,1000,'fmnist-train','fd',13,2,0),"
    " ('c0',100,1.5,'euler',25,1000,'fmnist-train','fd',20,0,0),"
    " ('a0',100,1.5,'euler',25,1000,'fmnist-train','fd',99,1000,0);"
    "INSERT INTO metrics VALUES ('a0','val_loss',100,0.30,0), ('a1','val_loss',100,0.31,0), ('a2','val_loss',100,0.32,0),"
    " ('b0','val_loss',100,0.35,0), ('b1','val_loss',100,0.36,0), ('b2','val_loss',100,0.37,0),"
    " ('a0','val_loss',50,0.9,0);";

static const char SPEC[] =
    "table: 0\ntitle: t\nsweeps: {mini: s}\n"
    "columns:\n  - {metric: fid, cfg: 1.5}\n  - {metric: val_loss}\n"
    "rows:\n  - label: A\n    where: {model.moe.router: prototype}\n  - label: B\n    where: {model.moe.router: token_choice}\n"
    "  - label: C\n    where: {model.moe.router: kmeans}\n";

static const char CLAIMS[] =
    "claims:\n"
    "  - {id: fd, claim: A beats B, source: T, table: %1$s, better: A, than: B, metric: fid, cfg: 1.5}\n"
    "  - {id: val, claim: A beats B, source: T, table: %1$s, better: A, than: B, metric: val_loss}\n"
    "  - {id: reverse, claim: B beats A, source: T, table: %1$s, better: B, than: A, metric: val_loss}\n"
    "  - {id: one, claim: C beats A, source: T, table: %1$s, better: C, than: A, metric: fid, cfg: 1.5}\n"
    "  - {id: later, claim: scales, source: F, untestable: one size only}\n";

static void write_file(const char *path, const char *text) { scratch_write_file(path, text); }

static int make_files(void)
{
    int rc = scratch_database(path_in("r.db"), DATA_SQL);
    write_file(path_in("spec.yaml"), SPEC);
    char claims[4096];
    snprintf(claims, sizeof claims, CLAIMS, path_in("spec.yaml"));
    write_file(path_in("claims.yaml"), claims);
    return rc;
}

static void test_decisions(void)
{
    static struct claims c;
    static struct claim_result r[CLAIMS_MAX];
    struct store *db;
    CHECK(claims_load(&c, path_in("claims.yaml")) == 0, "%s", err_message());
    CHECK(c.n == 5, "claims: %d", c.n);
    CHECK(store_open(&db, path_in("r.db")) == 0, "%s", err_message());
    CHECK(claims_decide(&c, db, r) == 0, "%s", err_message());
    // FD: improvements 2, 3, 1 (lower is better): mean 2, s = 1, half = t(0.975, 2) / sqrt(3).
    CHECK(r[0].n == 3 && r[0].verdict == VERDICT_INCONCLUSIVE, "fd: n %d verdict %s", r[0].n, claim_verdict_name(r[0].verdict));
    CHECK_NEAR(r[0].diff, 2, 1e-12, "fd improvement");
    CHECK_NEAR(r[0].half, stats_t975(2) / sqrt(3), 1e-12, "fd half-width");
    CHECK_NEAR(r[0].better_mean, 11, 1e-12, "A's mean FD ignores the redraw");
    // val_loss: every pair improves by 0.05 (s = 0 up to rounding): agrees, and the reverse disagrees.
    CHECK(r[1].verdict == VERDICT_AGREES, "val: %s", claim_verdict_name(r[1].verdict));
    CHECK_NEAR(r[1].diff, 0.05, 1e-12, "val improvement");
    CHECK(r[2].verdict == VERDICT_DISAGREES, "reverse: %s", claim_verdict_name(r[2].verdict));
    CHECK(r[3].n == 1 && r[3].verdict == VERDICT_TOO_FEW, "one seed: n %d %s", r[3].n, claim_verdict_name(r[3].verdict));
    CHECK(r[4].verdict == VERDICT_UNTESTABLE, "untestable: %s", claim_verdict_name(r[4].verdict));
    // Outputs: the CSV line of the val claim, and the Markdown verdicts.
    FILE *f = fopen(path_in("out.csv"), "w+");
    claims_write(r, c.n, FORMAT_CSV, f);
    char text[4096] = {0};
    rewind(f);
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    CHECK(strstr(text, "id,source,metric,cfg,scale,n,better_mean,than_mean,diff,ci_low,ci_high,verdict\n"), "csv header:\n%s", text);
    CHECK(strstr(text, "\nval,\"T\",val_loss,,mini,3,0.31,0.36,0.05,") && strstr(text, ",agrees\n"), "csv:\n%s", text);
    CHECK(strstr(text, "\nlater,\"F\",") && strstr(text, ",not tested\n"), "csv untestable:\n%s", text);
    store_close(db);
}

static void test_table_cells(void)
{
    static struct table_spec spec;
    static struct table_result result;
    struct store *db;
    CHECK(table_spec_load(&spec, path_in("spec.yaml")) == 0, "%s", err_message());
    CHECK(store_open(&db, path_in("r.db")) == 0, "%s", err_message());
    CHECK(table_build(&spec, db, SCALE_MINI, &result) == 0, "%s", err_message());
    CHECK(result.cells[0][0].n == 3 && fabs(result.cells[0][0].mean - 11) < 1e-12, "A fd %g n %d", result.cells[0][0].mean,
          result.cells[0][0].n);
    CHECK(result.cells[0][1].n == 3 && fabs(result.cells[0][1].mean - 0.31) < 1e-12 && result.cells[0][1].decimals == 4,
          "A val_loss: the latest step of each run, %g", result.cells[0][1].mean);
    store_close(db);
}

static void expect_bad(const char *text, const char *message)
{
    write_file(path_in("bad.yaml"), text);
    static struct claims c;
    CHECK(claims_load(&c, path_in("bad.yaml")) < 0 && strstr(err_message(), message) && strstr(err_message(), "bad.yaml:"),
          "'%s': %s", message, err_message());
}

static void test_bad_files(void)
{
    expect_bad("claims:\n  - {id: x, claim: y, table: t, better: A, than: B}\n", "needs 'table', 'better', 'than' and 'metric'");
    expect_bad("claims:\n  - {id: x, claim: y, table: t, better: A, than: B, metric: fid}\n", "needs a cfg");
    expect_bad("claims:\n  - {id: x, claim: y, table: t, better: A, than: B, metric: val_loss, cfg: 1}\n", "takes no cfg");
    expect_bad("claims:\n  - {id: x, claim: y, table: t, better: A, than: B, metric: fdd, cfg: 1}\n", "unknown metric 'fdd'");
    expect_bad("claims:\n  - {id: x, claim: y, colour: red}\n", "unknown claim key 'colour'");
    expect_bad("claims:\n  - {id: x, claim: y, untestable: z}\n  - {id: x, claim: w, untestable: z}\n", "used twice");
    expect_bad("claims:\n  - {id: x, claim: y, table: t, better: A, than: B, metric: diversity, k: 8x}\n",
               "k must be an integer in [1, 64]");
    expect_bad("claims: [\n", "malformed YAML");
}

static void test_cli(void)
{
    char command[2048], out[8192];
    snprintf(command, sizeof command, "build/promoe claims %s --db %s 2>&1", path_in("claims.yaml"), path_in("r.db"));
    FILE *p = popen(command, "r");
    size_t n = p ? fread(out, 1, sizeof out - 1, p) : 0;
    out[n] = '\0';
    int status = p ? pclose(p) : -1;
    CHECK(status == 0 && strstr(out, "| A beats B | T | val_loss | 3 |") && strstr(out, "**agrees**") &&
          strstr(out, "**disagrees**") && strstr(out, "not tested: one size only"), "cli:\n%s", out);
}

int main(void)
{
    if (!mkdtemp(dir)) return 1;
    CHECK(make_files() == 0, "synthetic database");
    test_decisions();
    test_table_cells();
    test_bad_files();
    test_cli();
    char command[600];
    snprintf(command, sizeof command, "rm -rf %s", dir);
    if (system(command) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return test_summary("test_claims");
}
