// promoe table: the t quantile, a synthetic database (3 seeds, 1 seed, a running run, a missing
// row, an older evaluation that must be ignored) checked cell by cell through the library and as
// exact CSV through the CLI, spec errors with file:line:column, and every shipped table spec and
// sweep file checked against the config key table.
#include "check.h"
#include "config/config.h"
#include "config/sweep.h"
#include "core/error.h"
#include "report/stats.h"
#include "report/table.h"
#include "scratch.h"
#include "store/db.h"

#include <glob.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char dir[] = "/tmp/promoe_test_table_XXXXXX";

static const char *path_in(const char *name) { return scratch_path(dir, name); }

static void write_file(const char *path, const char *text) { scratch_write_file(path, text); }

static const char PAPER_CSV[] =
    "table,model,objective,size,experts,activated_params,total_params,train_steps,cfg,fid50k,is\n"
    "7,Softmax,rf,B,E14A1S1U1,,,500K,1.0,25.74,58.04\n"
    "7,Softmax,rf,B,E14A1S1U1,,,500K,1.5,6.92,149.11\n"
    "7,Sigmoid,rf,B,E14A1S1U1,,,500K,1.0,25.49,58.51\n";

static const char SPEC[] =
    "table: 7\n"
    "title: \"Table 7: activation\"\n"
    "sweeps: {mini: t7-mini, paper: t7}\n"
    "paper: %s\n"
    "columns:\n"
    "  - {metric: fid, cfg: 1.0}\n"
    "  - {metric: is, cfg: 1.5}\n"
    "rows:\n"
    "  - {label: Softmax, where: {model.moe.activation: softmax, loss.rcl.weight: 1.0}}\n"
    "  - {label: Sigmoid, where: {model.moe.activation: sigmoid}}\n"
    "  - {label: Identity, where: {model.moe.activation: identity}}\n"
    "  - {label: \"Default, none\", where: {model.moe.activation: default}}\n";

// Runs: three softmax seeds, one sigmoid seed, one identity run still training.
static const char DATA_SQL[] =
    "INSERT INTO sweeps VALUES ('t7-mini', '', 'x', 0);"
    "INSERT INTO runs (run_id, config_sha256, config_yaml, seed, status, step_done, created_ms) VALUES"
    " ('r0','h0','',0,'done',400,0), ('r1','h1','',1,'done',400,0), ('r2','h2','',2,'done',400,0),"
    " ('r3','h3','',0,'done',400,0), ('r4','h4','',0,'running',120,0), ('r5','h5','',0,'done',400,0);"
    "INSERT INTO sweep_runs VALUES ('t7-mini',0,'r0'),('t7-mini',1,'r1'),('t7-mini',2,'r2'),"
    " ('t7-mini',3,'r3'),('t7-mini',4,'r4');"
    "INSERT INTO params SELECT run_id, 'train.steps', '400' FROM runs;"
    "INSERT INTO params SELECT run_id, 'train.seed', CAST(seed AS TEXT) FROM runs;"
    "INSERT INTO params SELECT run_id, 'loss.rcl.weight', '1' FROM runs;"
    "INSERT INTO params VALUES ('r0','model.moe.activation','softmax'),('r1','model.moe.activation','softmax'),"
    " ('r2','model.moe.activation','softmax'),('r3','model.moe.activation','sigmoid'),"
    " ('r4','model.moe.activation','identity'),('r5','model.moe.activation','default');"
    "INSERT INTO evals (run_id, step, cfg_scale, sampler, sampler_steps, n_samples, reference, metric,"
    " value, created_ms) VALUES"
    " ('r0',200,1.0,'euler',50,1000,'fmnist-train','fd',99.0,0),"
    " ('r0',400,1.0,'euler',50,1000,'fmnist-train','fd',10.0,0),"
    " ('r1',400,1.0,'euler',50,1000,'fmnist-train','fd',12.0,0),"
    " ('r2',400,1.0,'euler',50,1000,'fmnist-train','fd',14.0,0),"
    " ('r0',400,1.5,'euler',50,1000,'fmnist-train','is',3.0,0),"
    " ('r3',400,1.0,'euler',50,1000,'fmnist-train','fd',7.5,0),"
    " ('r5',400,1.0,'euler',50,1000,'fmnist-train','fd',1.0,0);";

static const double T975_DF2 = 4.303;

static void test_stats(void)
{
    CHECK(stats_t975(2) == T975_DF2, "t(0.975, 2) = %g", stats_t975(2));
    CHECK(stats_t975(1) == 12.706, "t(0.975, 1) = %g", stats_t975(1));
    CHECK(stats_t975(35) == 2.042, "t(0.975, 35) = %g", stats_t975(35));
    CHECK(stats_t975(100000) == 1.980, "t(0.975, 1e5) = %g", stats_t975(100000));
    double values[] = {10, 12, 14}, mean, half;
    stats_mean_ci95(values, 3, &mean, &half);
    CHECK_NEAR(mean, 12, 1e-12, "mean");
    CHECK_NEAR(half, T975_DF2 * 2 / sqrt(3), 1e-12, "half-width");
    stats_mean_ci95(values, 1, &mean, &half);
    CHECK(mean == 10 && half == 0, "one value: %g +- %g", mean, half);
}

static int make_database(void)
{
    int rc = scratch_database(path_in("r.db"), DATA_SQL);
    char spec[2048];
    snprintf(spec, sizeof spec, SPEC, path_in("paper.csv"));
    write_file(path_in("paper.csv"), PAPER_CSV);
    write_file(path_in("t7.yaml"), spec);
    return rc;
}

static void test_cells(void)
{
    static struct table_spec spec;
    static struct table_result result;
    struct store *db;
    CHECK(table_spec_load(&spec, path_in("t7.yaml")) == 0, "%s", err_message());
    CHECK(store_open(&db, path_in("r.db")) == 0, "%s", err_message());
    CHECK(table_detect_scale(&spec, db) == SCALE_MINI, "scale");
    CHECK(table_build(&spec, db, SCALE_MINI, &result) == 0, "%s", err_message());
    const struct table_cell *softmax = &result.cells[0][0];
    CHECK(softmax->n == 3, "softmax n %d", softmax->n);
    CHECK_NEAR(softmax->mean, 12, 1e-12, "softmax mean (the step-200 value 99 is not the latest)");
    CHECK_NEAR(softmax->half, T975_DF2 * 2 / sqrt(3), 1e-12, "softmax 95% half-width");
    CHECK(softmax->has_paper && softmax->paper == 25.74, "softmax paper %g", softmax->paper);
    CHECK(result.cells[0][1].n == 1 && result.cells[0][1].mean == 3.0, "softmax is@1.5");
    CHECK(result.cells[0][1].has_paper && result.cells[0][1].paper == 149.11, "paper is@1.5");
    CHECK(result.cells[1][0].n == 1 && result.cells[1][0].mean == 7.5, "sigmoid single seed");
    CHECK(!strcmp(result.cells[1][1].state, "no eval"), "sigmoid is@1.5: '%s'", result.cells[1][1].state);
    CHECK(!result.cells[1][1].has_paper, "the paper gives no sigmoid cfg 1.5 here");
    CHECK(!strcmp(result.cells[2][0].state, "running (120/400)"), "identity: '%s'", result.cells[2][0].state);
    CHECK(!strcmp(result.cells[3][0].state, "no run"), "run outside the sweep: '%s'", result.cells[3][0].state);
    store_close(db);
}

static const char EXPECTED_CSV[] =
    "row,column,scale,n,mean,ci95,paper,status\n"
    "Softmax,fd@1,mini,3,12,4.968676417,25.74,ok\n"
    "Softmax,is@1.5,mini,1,3,,149.11,ok\n"
    "Sigmoid,fd@1,mini,1,7.5,,25.49,ok\n"
    "Sigmoid,is@1.5,mini,0,,,,no eval\n"
    "Identity,fd@1,mini,0,,,,running (120/400)\n"
    "Identity,is@1.5,mini,0,,,,running (120/400)\n"
    "\"Default, none\",fd@1,mini,0,,,,no run\n"
    "\"Default, none\",is@1.5,mini,0,,,,no run\n";

static int run_cli(const char *command, char *out, size_t size)
{
    FILE *p = popen(command, "r");
    if (!p) return -1;
    size_t n = fread(out, 1, size - 1, p);
    out[n] = '\0';
    return pclose(p);
}

static void test_cli(void)
{
    char command[1024], out[8192];
    snprintf(command, sizeof command, "build/promoe table %s --db %s --format csv 2>&1",
             path_in("t7.yaml"), path_in("r.db"));
    CHECK(run_cli(command, out, sizeof out) == 0, "exit status: %s", out);
    CHECK(!strcmp(out, EXPECTED_CSV), "csv:\n%s", out);
    snprintf(command, sizeof command, "build/promoe table %s --db %s 2>&1", path_in("t7.yaml"), path_in("r.db"));
    CHECK(run_cli(command, out, sizeof out) == 0, "markdown exit status");
    CHECK(strstr(out, "| Softmax | 12.00 ± 4.97 (n=3) | 25.74 | 3.00 | 149.11 |"), "markdown:\n%s", out);
    CHECK(strstr(out, "| Identity | running (120/400) | 25") == NULL && strstr(out, "| Identity | running (120/400) | - |"),
          "identity row:\n%s", out);
    snprintf(command, sizeof command, "build/promoe table %s --db %s --format latex 2>&1", path_in("t7.yaml"), path_in("r.db"));
    CHECK(run_cli(command, out, sizeof out) == 0, "latex exit status");
    CHECK(strstr(out, "Softmax & 12.00 $\\pm$ 4.97 (n=3) & 25.74") && strstr(out, "\\toprule"), "latex:\n%s", out);
    snprintf(command, sizeof command, "build/promoe table %s --db %s --scale paper --format csv 2>&1",
             path_in("t7.yaml"), path_in("r.db"));
    CHECK(run_cli(command, out, sizeof out) == 0 && strstr(out, "Softmax,fid@1,paper,0,,,25.74,no run"),
          "paper scale:\n%s", out);
    snprintf(command, sizeof command, "build/promoe table %s --db %s 2>&1", path_in("t7.yaml"), path_in("none.db"));
    CHECK(run_cli(command, out, sizeof out) != 0 && strstr(out, "no results database"), "missing db: %s", out);
}

// A spec text with one mistake gives an error that starts with file:line:column.
static void expect_spec_error(const char *text, const char *expected)
{
    static struct table_spec spec;
    write_file(path_in("bad.yaml"), text);
    CHECK(table_spec_load(&spec, path_in("bad.yaml")) < 0, "accepted: %s", text);
    char want[512];
    snprintf(want, sizeof want, "%s%s", path_in("bad.yaml"), expected);
    CHECK(strstr(err_message(), want) != NULL, "message '%s' lacks '%s'", err_message(), want);
}

static void test_spec_errors(void)
{
    const char *head = "table: 7\nsweeps: {mini: a}\n";
    char text[1024];
    snprintf(text, sizeof text, "%scolums: []\n", head);
    expect_spec_error(text, ":3:1: unknown key 'colums'");
    snprintf(text, sizeof text, "%scolumns:\n  - {metric: fd, cfg: 1}\nrows: [{label: x}]\n", head);
    expect_spec_error(text, ":4:14: unknown metric 'fd'");
    snprintf(text, sizeof text, "%scolumns: [{metric: fid, cfg: 1}]\nrows:\n  - {label: x, where: {model.moe.rooter: a}}\n", head);
    expect_spec_error(text, ":5:42: --set 'model.moe.rooter=a': unknown key");
    snprintf(text, sizeof text, "%scolumns: [{metric: fid, cfg: 1}]\nrows:\n  - {label: x, where: {model.hidden: {mini: 1, big: 2}}}\n", head);
    expect_spec_error(text, ":5:48: unknown scale 'big'");
    snprintf(text, sizeof text, "%scolumns: [{metric: fid, cfg: 1}]\nrows:\n  - {label: x, colour: red}\n", head);
    expect_spec_error(text, ":5:16: unknown row key 'colour'");
    snprintf(text, sizeof text, "%scolumns: [{metric: fid, cfg: 1}]\n", head);
    expect_spec_error(text, ":1:1: missing key 'rows'");
    expect_spec_error("table: [1\n", ":2:1: malformed YAML");
}

// A where value at a key's default that the canonical config leaves out (train.precision fp32):
// the fp32 row matches runs without the key and no bf16 run; the bf16 row only the bf16 run.
static const char PRECISION_SQL[] =
    "INSERT INTO sweeps VALUES ('prec', '', 'x', 0);"
    "INSERT INTO runs (run_id, config_sha256, config_yaml, seed, status, step_done, created_ms) VALUES"
    " ('f0','h0','',0,'done',400,0), ('f1','h1','',1,'done',400,0), ('b0','h2','',0,'done',400,0);"
    "INSERT INTO sweep_runs VALUES ('prec',0,'f0'),('prec',1,'f1'),('prec',2,'b0');"
    "INSERT INTO params SELECT run_id, 'train.steps', '400' FROM runs;"
    "INSERT INTO params SELECT run_id, 'train.seed', CAST(seed AS TEXT) FROM runs;"
    "INSERT INTO params VALUES ('b0','train.precision','bf16');"
    "INSERT INTO evals (run_id, step, cfg_scale, sampler, sampler_steps, n_samples, reference, metric,"
    " value, created_ms) VALUES ('f0',400,1.0,'euler',50,1000,'fmnist-train','fd',10.0,0),"
    " ('f1',400,1.0,'euler',50,1000,'fmnist-train','fd',12.0,0), ('b0',400,1.0,'euler',50,1000,'fmnist-train','fd',20.0,0);";

static void test_default_left_out(void)
{
    static struct table_spec spec;
    static struct table_result result;
    struct store *db;
    CHECK(scratch_database(path_in("prec.db"), PRECISION_SQL) == 0, "precision database");
    write_file(path_in("prec.yaml"), "table: 0\nsweeps: {mini: prec}\ncolumns: [{metric: fid, cfg: 1.0}]\nrows:\n"
                                     "  - {label: fp32, where: {train.precision: fp32}}\n"
                                     "  - {label: bf16, where: {train.precision: bf16}}\n"
                                     "  - {label: pass0, where: {sample.batch: 0, train.precision: bf16}}\n");
    CHECK(table_spec_load(&spec, path_in("prec.yaml")) == 0, "%s", err_message());
    CHECK(spec.rows[0].where[0].default_left_out[SCALE_MINI] && !spec.rows[1].where[0].default_left_out[SCALE_MINI],
          "fp32 is the default left out, bf16 is not");
    CHECK(store_open(&db, path_in("prec.db")) == 0, "%s", err_message());
    CHECK(table_build(&spec, db, SCALE_MINI, &result) == 0, "%s", err_message());
    CHECK(result.cells[0][0].n == 2 && result.cells[0][0].mean == 11, "fp32 row: n %d mean %g", result.cells[0][0].n,
          result.cells[0][0].mean);
    CHECK(result.cells[1][0].n == 1 && result.cells[1][0].mean == 20, "bf16 row: n %d mean %g", result.cells[1][0].n,
          result.cells[1][0].mean);
    CHECK(result.cells[2][0].n == 1 && result.cells[2][0].mean == 20, "sample.batch 0 and bf16: n %d mean %g",
          result.cells[2][0].n, result.cells[2][0].mean);
    store_close(db);
}

// ---- shipped specs and sweeps --------------------------------------------------------------

// Every shipped sweep file loads and expands through the sweep runner's own parser (keys, types,
// ranges, base files, labels, duplicate run ids), into at least one run.
static void check_sweep(const char *file)
{
    struct sweep sw;
    int rc = sweep_load(&sw, file);
    CHECK(rc == 0, "%s: %s", file, err_message());
    if (rc < 0) return;
    CHECK(sw.n_runs > 0, "%s: no runs", file);
    sweep_free(&sw);
}

// The name after `sweep:` in a sweep file, or "" if none.
static void sweep_name(const char *file, char *out, size_t size)
{
    char line[512];
    out[0] = '\0';
    FILE *f = fopen(file, "r");
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "sweep: ", 7)) {
            line[strcspn(line, "\n")] = '\0';
            snprintf(out, size, "%.200s", line + 7);
        }
    if (f) fclose(f);
}

static void test_shipped(void)
{
    static struct table_spec spec;
    glob_t specs, sweeps;
    CHECK(glob("analysis/tables/table*.yaml", 0, NULL, &specs) == 0 && specs.gl_pathc == 12,
          "12 table specs (1, 3-13), found %zu", specs.gl_pathc);
    for (size_t i = 0; i < specs.gl_pathc; i++) {
        CHECK(table_spec_load(&spec, specs.gl_pathv[i]) == 0, "%s", err_message());
        for (int s = 0; s < SCALE_COUNT; s++) {
            char file[512], name[256], stem[256];
            snprintf(stem, sizeof stem, "%s", spec.sweep[s]);
            if (s == SCALE_MINI && strlen(stem) > 5) stem[strlen(stem) - 5] = '\0'; // "-mini"
            snprintf(file, sizeof file, "sweeps/%s/%s.yaml", table_scale_name(s), stem);
            sweep_name(file, name, sizeof name);
            CHECK(!strcmp(name, spec.sweep[s]), "%s: sweep '%s' not in %s", specs.gl_pathv[i], spec.sweep[s], file);
        }
    }
    CHECK(table_spec_load(&spec, "analysis/tables/main.yaml") == 0, "main job spec: %s", err_message());
    CHECK(table_spec_load(&spec, "analysis/tables/precision.yaml") == 0 && spec.n_rows == 4 &&
              !strcmp(spec.sweep[SCALE_MINI], "precision-mini"),
          "precision spec: %s", err_message());
    char search[256];
    CHECK(table_spec_load(&spec, "analysis/tables/protocol.yaml") == 0, "protocol search spec: %s", err_message());
    sweep_name("sweeps/mini/protocol-search.yaml", search, sizeof search);
    CHECK(!strcmp(spec.sweep[SCALE_MINI], "protocol-search-mini") && !strcmp(search, spec.sweep[SCALE_MINI]),
          "protocol search: spec sweep '%s', file sweep '%s'", spec.sweep[SCALE_MINI], search);
    CHECK(spec.n_rows == 6, "protocol search: 6 candidates, found %d", spec.n_rows);
    CHECK(glob("sweeps/*/*.yaml", 0, NULL, &sweeps) == 0 && sweeps.gl_pathc == 29, "29 sweep files (15 paper, 14 mini), found %zu",
          sweeps.gl_pathc);
    for (size_t i = 0; i < sweeps.gl_pathc; i++) check_sweep(sweeps.gl_pathv[i]);
    globfree(&specs);
    globfree(&sweeps);
}

int main(void)
{
    if (!mkdtemp(dir)) return 1;
    test_stats();
    CHECK(make_database() == 0, "synthetic database");
    test_cells();
    test_cli();
    test_spec_errors();
    test_default_left_out();
    test_shipped();
    char command[600];
    snprintf(command, sizeof command, "rm -rf %s", dir);
    if (system(command) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return test_summary("test_table");
}
