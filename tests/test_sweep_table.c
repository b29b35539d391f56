// End to end from a sweep file to a paper table: a tiny sweep of two configs (dense, and ProMoE
// layers) trains and evaluates itself (eval.every) through `promoe sweep`, then `promoe table
// --format csv` must show, cell by cell, exactly the figures the runs wrote to `evals` (10
// significant digits, the CSV's precision), n = 1, the paper's Table 1 figure beside them, and
// "no run" for a row that has none. The database lives in build/test-results so that the
// feature network cached there by test_eval (or trained here first) is shared.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "runs.h"
#include "scratch.h"
#include "shell.h"

static const char results_dir[] = "build/test-results";
static const char db_name[] = "sweep_table.db";
static char dir[] = "/tmp/promoe_test_sweep_table_XXXXXX";

struct expected_cell {
    const char *row, *label, *metric;   // table row, run label, metric as the CSV names it
    double cfg;
    const char *paper;                  // Table 1 figure, "" when the paper has none
};

static const struct expected_cell cells[] = {
    {"Dense-DiT-B-Flow", "dense", "fd", 1.5, "9.02"},
    {"Dense-DiT-B-Flow", "dense", "is", 1.5, "131.13"},
    {"Dense-DiT-B-Flow", "dense", "precision", 1.0, ""},
    {"Dense-DiT-B-Flow", "dense", "recall", 1.0, ""},
    {"DiT-MoE-B-Flow", "moe", "fd", 1.5, "8.94"},
    {"DiT-MoE-B-Flow", "moe", "is", 1.5, "131.66"},
    {"DiT-MoE-B-Flow", "moe", "precision", 1.0, ""},
    {"DiT-MoE-B-Flow", "moe", "recall", 1.0, ""},
};

static void write_text(const char *name, const char *text) { scratch_write(dir, name, text); }

static void write_inputs(void)
{
    char text[2048];
    write_text("tiny.yaml", "model: {hidden: 32, depth: 2, heads: 2, patch: 7}\n"
                            "train: {steps: 4, batch_size: 16}\nlog: {every: 2}\nsample: {n: 0}\n");
    snprintf(text, sizeof text,
             "sweep: e2e-mini\nbase: %s/tiny.yaml\n"
             "set: {ckpt.dir: %s/ckpt, eval.every: 4, eval.n: 20, eval.cfg: \"1.0,1.5\", eval.steps: 2}\n"
             "seeds: [0]\nruns:\n"
             "  - {label: dense}\n"
             "  - {label: moe, model.moe.experts: E4A1S1U1, model.moe.router: prototype, model.moe.conditional: true}\n",
             dir, dir);
    write_text("sweep.yaml", text);
    write_text("table.yaml",
               "table: 1\ntitle: \"end to end\"\nsweeps: {mini: e2e-mini, paper: e2e}\ncolumns:\n"
               "  - {metric: fid, cfg: 1.5}\n  - {metric: is, cfg: 1.5}\n"
               "  - {metric: precision, cfg: 1.0}\n  - {metric: recall, cfg: 1.0}\nrows:\n"
               "  - {label: \"Dense-DiT-B-Flow\", where: {model.moe.experts: \"\"}}\n"
               "  - {label: \"DiT-MoE-B-Flow\", where: {model.moe.experts: E4A1S1U1}}\n"
               "  - {label: \"DiffMoE-B-Flow\", where: {model.moe.router: diffmoe}}\n");
}

// The CSV line of a cell as the table must print it, from the run's `evals` row.
static void expected_line(const struct expected_cell *c, char *line, size_t size)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT e.value FROM evals e JOIN runs r ON r.run_id = e.run_id WHERE r.label = '%s' "
             "AND e.metric = '%s' AND e.cfg_scale = %g AND e.step = 4",
             c->label, c->metric, c->cfg);
    double value = run_query(results_dir, db_name, sql);
    CHECK(!isnan(value), "%s: no %s at cfg %g in evals", c->label, c->metric, c->cfg);
    snprintf(line, size, "%s,%s@%g,mini,1,%.10g,,%s,ok", c->row, c->metric, c->cfg, value, c->paper);
}

int main(void)
{
    if (!mkdtemp(dir)) return 1;
    char db[600];
    snprintf(db, sizeof db, "%s/%s", results_dir, db_name);
    run("mkdir -p %s && rm -f %s %s-wal %s-shm", results_dir, db, db, db);
    write_inputs();
    // --record-only: the sweep and its runs are listed (queued), nothing is trained.
    int rc = run("build/promoe sweep %s/sweep.yaml --record-only --db %s", dir, db);
    CHECK(rc == 0 && strstr(output, "2 runs recorded, none trained"), "record only (%d): %s", rc, output);
    CHECK(run_query(results_dir, db_name, "SELECT count(*) FROM runs WHERE status = 'queued'") == 2 &&
          run_query(results_dir, db_name, "SELECT count(*) FROM metrics") == 0, "record only: 2 queued runs, no metrics");
    rc = run("build/promoe sweep %s/sweep.yaml --jobs 2 --db %s", dir, db);
    CHECK(rc == 0, "sweep (%d): %s", rc, output);
    CHECK(run_query(results_dir, db_name, "SELECT count(*) FROM evals") == 20, "5 metrics x 2 cfg x 2 runs in evals");
    rc = run("build/promoe table %s/table.yaml --db %s --format csv", dir, db);
    CHECK(rc == 0 && !strncmp(output, "row,column,scale,n,mean,ci95,paper,status\n", 42), "table (%d): %s", rc, output);
    for (size_t i = 0; i < sizeof cells / sizeof *cells; i++) {
        char line[512];
        expected_line(&cells[i], line, sizeof line);
        char *found = strstr(output, line);
        CHECK(found && (found == output || found[-1] == '\n') && found[strlen(line)] == '\n', "cell line '%s' not in:\n%s",
              line, output);
    }
    CHECK(strstr(output, "\nDiffMoE-B-Flow,fd@1.5,mini,0,,,8.22,no run\n") != NULL, "a row without runs says so:\n%s", output);
    rc = run("build/promoe table %s/table.yaml --db %s", dir, db);
    CHECK(rc == 0 && strstr(output, "| Dense-DiT-B-Flow |") && strstr(output, "no run"), "markdown (%d): %s", rc, output);
    if (check_failed == 0) run("rm -rf %s", dir);
    return test_summary("test_sweep_table");
}
