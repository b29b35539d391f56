// The catalogue of bad input, through the promoe program as a user meets it: each case exits 1 with
// a message naming the file, key or option and the problem (for values: the value and the allowed
// range), and leaves the results database exactly as it was (same rows in every table,
// integrity_check ok). The closing line counts the cases. A full disk is simulated with a file-size
// limit (ulimit -f, SIGXFSZ ignored) in the child; a results folder that cannot be written is a path
// under a regular file (ENOTDIR), which stops root too, where permission bits would not.
#include <math.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "check.h"
#include "scratch.h"
#include "shell.h"
#include "tmpfiles.h"

static char dir[] = "/tmp/promoe_test_bad_XXXXXX";

static const char *path(const char *name) { return scratch_path(dir, name); }

static void write_file(const char *name, const char *text) { scratch_write(dir, name, text); }

// FNV-1a over every row of every table (tables by name, rows in rowid or key order), plus
// integrity_check: two digests are equal when the database holds the same data.
static uint64_t db_digest(const char *db_path)
{
    uint64_t h = 1469598103934665603ull;
    sqlite3 *db;
    if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) return 0;
    sqlite3_stmt *tables, *rows;
    const char *list = "SELECT name FROM sqlite_master WHERE type='table' UNION ALL SELECT 'pragma' ORDER BY 1";
    if (sqlite3_prepare_v2(db, list, -1, &tables, NULL) != SQLITE_OK) return sqlite3_close(db), 0;
    while (sqlite3_step(tables) == SQLITE_ROW) {
        char sql[256];
        const char *name = (const char *)sqlite3_column_text(tables, 0);
        if (!strcmp(name, "pragma")) snprintf(sql, sizeof sql, "PRAGMA integrity_check");
        else snprintf(sql, sizeof sql, "SELECT * FROM \"%s\" ORDER BY 1, 2, 3", name);
        if (sqlite3_prepare_v2(db, sql, -1, &rows, NULL) != SQLITE_OK) continue;
        while (sqlite3_step(rows) == SQLITE_ROW)
            for (int c = 0; c < sqlite3_column_count(rows); c++) {
                const unsigned char *text = sqlite3_column_text(rows, c);
                for (const unsigned char *p = text ? text : (const unsigned char *)"\x01NULL"; *p; p++)
                    h = (h ^ *p) * 1099511628211ull;
                h = (h ^ 0xff) * 1099511628211ull;
            }
        sqlite3_finalize(rows);
    }
    sqlite3_finalize(tables);
    sqlite3_close(db);
    return h;
}

static int has(const char *needle) { return strstr(output, needle) != NULL; }

static int cases;   // bad inputs tried

// One bad input: exit status 1, the message holds both parts, the database did not change.
static void expect_refused(const char *what, const char *file_part, const char *problem, int rc)
{
    static uint64_t expected_digest;
    cases++;
    if (!expected_digest) expected_digest = db_digest(path("r.db"));
    CHECK(rc == 1 && has(file_part) && has(problem), "%s: exit %d, want '%s' and '%s' in: %s", what, rc,
          file_part, problem, output);
    CHECK(db_digest(path("r.db")) == expected_digest && expected_digest != 0, "%s: the database changed", what);
}

static const char TINY[] = "model: {hidden: 32, depth: 2, heads: 2, patch: 7}\n"
                           "train: {steps: 2, batch_size: 8, threads: 1}\n"
                           "sample: {n: 0}\n";

#define TRAIN "build/promoe train %s --db %s --set ckpt.dir=%s "

static void train_file(const char *what, const char *name, const char *text, const char *file_part,
                       const char *problem)
{
    write_file(name, text);
    int rc = run(TRAIN, path(name), path("r.db"), path("ckpt"));
    expect_refused(what, file_part, problem, rc);
}

static void test_config_files(void)
{
    train_file("unknown key", "typo.yaml", "model:\n  hidden: 32\n  dept: 2\n", "typo.yaml:3:3",
               "unknown key (did you mean 'model.depth'?)");
    train_file("wrong type", "type.yaml", "train:\n  lr: fast\n", "type.yaml:2:7", "expected a number, got 'fast'");
    train_file("out of range", "range.yaml", "model:\n  depth: 0\n", "range.yaml:2:10", "0 is out of range [1, 256]");
    train_file("duplicate key", "dup.yaml", "model:\n  hidden: 32\nmodel.hidden: 64\n", "dup.yaml:3:1", "given twice");
    train_file("malformed YAML", "bad.yaml", "model: {hidden: 32\n", "bad.yaml:2:1", "malformed YAML");
    train_file("heads not dividing hidden", "heads.yaml", "model: {hidden: 32, heads: 3}\n", "heads.yaml",
               "model.hidden 32 is not divisible by model.heads 3");
    train_file("expert string that does not parse", "e1.yaml", "model.moe.experts: E4X2\n", "e1.yaml",
               "model.moe.experts 'E4X2' does not parse");
    train_file("expert string that does not add up", "e2.yaml", "model.moe.experts: E4A1S2U2\n", "e2.yaml",
               "leave no routed expert");
    train_file("router lacking an option", "router.yaml",
               "model.moe: {experts: E4A1S0U0, router: classification}\n", "router.yaml",
               "needs model.moe.superclasses");
}

static void test_sweep_file(void)
{
    write_file("tiny.yaml", TINY);
    write_file("empty.yaml", "sweep: empty\nbase: tiny.yaml\ngrid:\n  model.depth: []\n");
    int rc = run("build/promoe sweep %s --db %s", path("empty.yaml"), path("r.db"));
    expect_refused("empty sweep axis", "empty.yaml:4:16", "empty axis 'model.depth'", rc);
}

// An IDX pair whose image file promises 100 images and holds 10.
static void write_truncated_idx(void)
{
    CHECK(run("mkdir -p %s", path("idx")) == 0, "mkdir");
    uint8_t header[16] = {0, 0, 8, 3, 0, 0, 0, 100, 0, 0, 0, 28, 0, 0, 0, 28};
    static uint8_t pixels[10 * 28 * 28];
    gzFile g = gzopen(path("idx/train-images-idx3-ubyte.gz"), "wb");
    if (g) {
        gzwrite(g, header, sizeof header);
        gzwrite(g, pixels, sizeof pixels);
        gzclose(g);
    }
    uint8_t label_header[8] = {0, 0, 8, 1, 0, 0, 0, 100};
    static uint8_t labels[100];
    g = gzopen(path("idx/train-labels-idx1-ubyte.gz"), "wb");
    if (g) {
        gzwrite(g, label_header, sizeof label_header);
        gzwrite(g, labels, sizeof labels);
        gzclose(g);
    }
}

// A float32 [10, 1, 28, 28] .npy cut short, and its labels.
static void write_truncated_npy(void)
{
    static const char dict[] = "{'descr': '<f4', 'fortran_order': False, 'shape': (10, 1, 28, 28), }";
    char header[128];
    memset(header, ' ', sizeof header);
    memcpy(header, "\x93NUMPY\x01\x00\x76\x00", 10);
    memcpy(header + 10, dict, strlen(dict));
    header[127] = '\n';
    FILE *f = fopen(path("x.npy"), "wb");
    if (f) {
        fwrite(header, 1, sizeof header, f);
        static float data[100];
        fwrite(data, sizeof(float), 100, f);
        fclose(f);
    }
}

static void test_data(void)
{
    write_file("tiny.yaml", TINY);
    int rc = run(TRAIN "--set data.path=%s", path("tiny.yaml"), path("r.db"), path("ckpt"), path("nowhere"));
    expect_refused("missing data set", "nowhere/train-images-idx3-ubyte.gz", "No such file", rc);
    write_truncated_idx();
    rc = run(TRAIN "--set data.path=%s", path("tiny.yaml"), path("r.db"), path("ckpt"), path("idx"));
    expect_refused("truncated IDX", "idx/train-images-idx3-ubyte.gz", "truncated", rc);
    write_truncated_npy();
    CHECK(run("cp %s %s", path("x.npy"), path("y.npy")) == 0, "cp");
    rc = run(TRAIN "--set data.name=npy data.path=%s data.labels=%s", path("tiny.yaml"), path("r.db"),
             path("ckpt"), path("x.npy"), path("y.npy"));
    expect_refused("truncated npy", "x.npy", "truncated", rc);
}

static void test_checkpoint_of_another_model(void)
{
    // The tiny model's checkpoint where the resumed run (hidden 64) looks for its own.
    write_file("wide.yaml", "model: {hidden: 64, depth: 2, heads: 2, patch: 7}\ntrain: {steps: 2, batch_size: 8}\nsample: {n: 0}\n");
    int rc = run("build/promoe config %s --set ckpt.dir=%s | grep '^# run id' ", path("wide.yaml"), path("ckpt"));
    char id[17] = "";
    const char *at = strstr(output, "run id ");
    if (at) snprintf(id, sizeof id, "%s", at + 7);
    CHECK(strlen(id) == 16, "run id of wide.yaml: %s", output);
    rc = run("mkdir -p %s/ckpt/%s && cp %s/ckpt/*/latest.safetensors %s/ckpt/%s/latest.safetensors", dir, id, dir, dir, id);
    CHECK(rc == 0, "planting the checkpoint: %s", output);
    rc = run(TRAIN "--resume", path("wide.yaml"), path("r.db"), path("ckpt"));
    expect_refused("checkpoint of another run (and model shape)", "latest.safetensors", "belongs to run", rc);
}

static void test_database_and_disk(void)
{
    write_file("tiny.yaml", TINY);
    CHECK(run("cp %s %s && sqlite3 %s 'PRAGMA user_version = 999'", path("r.db"), path("new.db"), path("new.db")) == 0,
          "newer copy: %s", output);
    int rc = run(TRAIN, path("tiny.yaml"), path("new.db"), path("ckpt"));
    expect_refused("database of a newer schema", "new.db", "newer", rc);
    rc = run("trap '' XFSZ; ulimit -f 8; " TRAIN "--set train.seed=5", path("tiny.yaml"), path("r.db"), path("ckpt"));
    expect_refused("full disk (database)", "r.db", "File too large", rc);
    rc = run("trap '' XFSZ; ulimit -f 16; build/promoe sample $(ls %s/ckpt/*/latest.safetensors | head -n 1) --n 64 --out %s",
             dir, path("samples.npy"));
    expect_refused("full disk (export)", "samples.npy", "File too large", rc);
    CHECK(access(path("samples.npy"), F_OK) != 0 && tmp_files_of(path("samples.npy")) == 0,
          "a failed export left a file behind");
    write_file("plain-file", "not a folder\n");
    rc = run(TRAIN, path("tiny.yaml"), path("plain-file/r.db"), path("ckpt"));
    expect_refused("results folder not writable (database)", "plain-file/r.db", "is not a folder", rc);
    rc = run(TRAIN "--set train.seed=6", path("tiny.yaml"), path("r.db"), path("plain-file/ckpt"));
    expect_refused("results folder not writable (checkpoints)", "plain-file", "Not a directory", rc);
}


// ---- numeric options of every command: range, overflow, trailing characters, NaN, infinity ---------

static char run_id[17];      // the tiny run of main()
static char checkpoint[600]; // its checkpoint

struct option_case {
    const char *what, *arguments, *option_part, *problem;
};

// "promoe <arguments>" with {db}, {ckpt} and {run} in arguments replaced.
static int run_promoe(const char *arguments)
{
    char line[2048] = "build/promoe ";
    size_t used = strlen(line);
    for (const char *a = arguments; *a && used + 700 < sizeof line;) {
        const char *value = !strncmp(a, "{db}", 4) ? path("r.db") : !strncmp(a, "{ckpt}", 6) ? checkpoint
                          : !strncmp(a, "{run}", 5) ? run_id : NULL;
        if (value) {
            used += (size_t)snprintf(line + used, sizeof line - used, "%s", value);
            a = strchr(a, '}') + 1;
        } else {
            line[used++] = *a++;
            line[used] = '\0';
        }
    }
    return run("%s", line);
}

static const struct option_case option_cases[] = {
    {"sample --n 0", "sample {ckpt} --n 0 --out x.npy", "option '--n'", "0 is out of range [1, 1000000]"},
    {"sample --n overflow", "sample {ckpt} --n 99999999999999999999 --out x.npy", "option '--n'",
     "99999999999999999999 is out of range [1, 1000000]"},
    {"sample --n trailing", "sample {ckpt} --n 5x --out x.npy", "option '--n'", "expected an integer, got '5x'"},
    {"sample --n wraps an int", "sample {ckpt} --n 4294967297 --out x.npy", "option '--n'", "out of range"},
    {"sample --steps negative", "sample {ckpt} --steps -3 --out x.npy", "option '--steps'", "-3 is out of range [1, 100000]"},
    {"sample --steps float", "sample {ckpt} --steps 1e9 --out x.npy", "option '--steps'", "expected an integer, got '1e9'"},
    {"sample --cfg NaN", "sample {ckpt} --cfg nan --out x.npy", "option '--cfg'", "expected a finite number, got 'nan'"},
    {"sample --cfg infinite", "sample {ckpt} --cfg inf --out x.npy", "option '--cfg'", "expected a finite number, got 'inf'"},
    {"sample --cfg negative", "sample {ckpt} --cfg -1 --out x.npy", "option '--cfg'", "-1 is out of range [0, 100]"},
    {"sample --seed negative", "sample {ckpt} --seed -1 --out x.npy", "option '--seed'", "-1 is out of range [0, "},
    {"sample --batch 0", "sample {ckpt} --batch 0 --out x.npy", "option '--batch'", "0 is out of range [1, 65536]"},
    {"sample --batch huge", "sample {ckpt} --batch 4294967297 --out x.npy", "option '--batch'", "out of range [1, 65536]"},
    {"eval --n below the evaluation minimum", "eval {run} --db {db} --n 3", "option '--n'", "3 is out of range [4, 100000]"},
    {"eval --n overflow", "eval {run} --db {db} --n 99999999999999999999999", "option '--n'", "out of range"},
    {"eval --steps 0", "eval {run} --db {db} --steps 0", "option '--steps'", "0 is out of range [1, 100000]"},
    {"eval --seed float", "eval {run} --db {db} --seed 1e3", "option '--seed'", "expected an integer, got '1e3'"},
    {"eval --batch negative", "eval {run} --db {db} --batch -5", "option '--batch'", "-5 is out of range [1, 65536]"},
    {"tokens --layer wraps an int", "tokens {run} --db {db} --layer 4294967296", "option '--layer'",
     "4294967296 is out of range [0, 255]"},
    {"tokens --t NaN", "tokens {run} --db {db} --t nan", "option '--t'", "expected a finite number, got 'nan'"},
    {"tokens --t negative", "tokens {run} --db {db} --t -1", "option '--t'", "-1 is out of range [0, 100000]"},
    {"tokens --t beyond the objective", "tokens {run} --db {db} --t 5000", "option '--t'",
     "5000 is out of range [0, 1000] for this run's objective"},
    {"tokens --clusters 0", "tokens {run} --db {db} --clusters 0", "option '--clusters'", "0 is out of range [1, 2560]"},
    {"tokens --n 0", "tokens {run} --db {db} --n 0", "option '--n'", "0 is out of range [1, 100000]"},
    {"tokens --seed negative", "tokens {run} --db {db} --seed -7", "option '--seed'", "-7 is out of range"},
    {"routing --step negative", "routing {run} --db {db} --step -2", "option '--step'", "-2 is out of range [0, "},
    {"routing --step text", "routing {run} --db {db} --step abc", "option '--step'", "expected an integer, got 'abc'"},
    {"svd --k 0", "svd {run} --db {db} --k 0", "option '--k'", "0 is out of range [1, 65536]"},
    {"svd --k wraps an int", "svd {run} --db {db} --k 9999999999999", "option '--k'", "out of range [1, 65536]"},
    {"svd --variant", "svd {run} --db {db} --variant sideways", "option '--variant'", "'sideways' is not out or in"},
    {"runs --status", "runs --db {db} --status finished", "option '--status'", "'finished' is not one of"},
    {"train --stop-after 0", "train tiny.yaml --db {db} --stop-after 0", "option '--stop-after'", "0 is out of range [1, "},
    {"train --stop-after negative", "train tiny.yaml --db {db} --stop-after -5", "option '--stop-after'", "-5 is out of range"},
    {"train --stop-after float", "train tiny.yaml --db {db} --stop-after 1.5", "option '--stop-after'",
     "expected an integer, got '1.5'"},
    {"train --label leaving its folder", "train tiny.yaml --db {db} --label ../../escape", "option '--label'",
     "label '../../escape' becomes a file name"},
    {"import-eval --cfg NaN", "import-eval {run} adm.txt --db {db} --cfg nan", "option '--cfg'", "expected a finite number"},
    {"import-eval --steps 0", "import-eval {run} adm.txt --db {db} --steps 0", "option '--steps'", "0 is out of range [1, 100000]"},
    {"import-eval --n negative", "import-eval {run} adm.txt --db {db} --n -1", "option '--n'", "-1 is out of range [1, "},
    {"import-eval --step negative", "import-eval {run} adm.txt --db {db} --step -1", "option '--step'", "-1 is out of range [0, "},
    {"plot --smooth 0", "plot --db {db} --smooth 0", "option '--smooth'", "0 is out of range [1, 1e+12]"},
    {"plot --smooth NaN", "plot --db {db} --smooth nan", "option '--smooth'", "expected a finite number, got 'nan'"},
    {"train --set a loss a dense model does not have", "train tiny.yaml --db {db} --set loss.rcl.weight=2",
     "--set loss.rcl.weight=2", "loss.rcl.weight is 2 but the model is dense"},
    {"train --set a key the router does not read",
     "train tiny.yaml --db {db} --set model.moe.experts=E4A1S0U0 model.moe.router=token_choice model.moe.alpha=3",
     "--set model.moe.alpha=3", "model.moe.router 'token_choice' does not read it (read by: prototype, prototype_ec)"},
    {"sweep --jobs 0", "sweep sw.yaml --db {db} --jobs 0", "option '--jobs'", "0 is out of range [1, 256]"},
    {"sweep --jobs huge", "sweep sw.yaml --db {db} --jobs 100000", "option '--jobs'", "100000 is out of range [1, 256]"},
    {"sweep --index negative", "sweep sw.yaml --db {db} --index -1", "option '--index'", "-1 is out of range [0, "},
    {"sweep --cpus 0", "sweep sw.yaml --db {db} --slurm --cpus 0", "option '--cpus'", "0 is out of range [1, 65536]"},
    {"sweep --array-parallel text", "sweep sw.yaml --db {db} --slurm --array-parallel x", "option '--array-parallel'",
     "expected an integer, got 'x'"},
};

// A key that does nothing in a file (a dense variant inheriting a MoE base) is reported, not refused.
static void test_unused_file_keys(void)
{
    write_file("inherits.yaml", "model: {hidden: 32, depth: 2, heads: 2, patch: 7, moe: {activation: sigmoid}}\n");
    int rc = run("build/promoe config %s", path("inherits.yaml"));
    CHECK(rc == 0 && has("model.moe.activation is sigmoid but the model is dense") && has("still enters the run id"),
          "a dense config with model.moe.activation: exit %d, output: %s", rc, output);
    write_file("sw-inherits.yaml", "sweep: inherits\nbase: inherits.yaml\nseeds: [0, 1]\n");
    rc = run("build/promoe sweep %s --dry-run --db %s", path("sw-inherits.yaml"), path("dry.db"));
    const char *first = strstr(output, "model.moe.activation is sigmoid");
    CHECK(rc == 0 && first && !strstr(first + 1, "model.moe.activation is sigmoid") && has("run 0 (inherits-0-s0)"),
          "a sweep reports an inherited key once: exit %d, output: %s", rc, output);
}

static void test_numeric_options(void)
{
    write_file("sw.yaml", "sweep: sw\nbase: tiny.yaml\nseeds: [0]\n");
    for (size_t i = 0; i < sizeof option_cases / sizeof *option_cases; i++) {
        const struct option_case *c = &option_cases[i];
        char arguments[1024];
        // relative file names live in the test folder
        snprintf(arguments, sizeof arguments, "%s", c->arguments);
        char *name = strstr(arguments, "tiny.yaml");
        if (!name) name = strstr(arguments, "sw.yaml");
        if (!name) name = strstr(arguments, "adm.txt");
        if (!name) name = strstr(arguments, "x.npy");
        if (name) {
            char rest[1024], file[64];
            size_t len = strcspn(name, " ");
            snprintf(file, sizeof file, "%.*s", (int)len, name);
            snprintf(rest, sizeof rest, "%s%s", path(file), name + len);
            snprintf(name, sizeof arguments - (size_t)(name - arguments), "%s", rest);
        }
        expect_refused(c->what, c->option_part, c->problem, run_promoe(arguments));
    }
}

// ---- values read from files: evaluator results, arrays given to forward, sweep names and labels ----

static void import_case(const char *what, const char *text, const char *problem)
{
    write_file("adm-bad.txt", text);
    int rc = run("build/promoe import-eval %s %s --db %s", run_id, path("adm-bad.txt"), path("r.db"));
    expect_refused(what, "adm-bad.txt", problem, rc);
}

// A little-endian .npy of descr ('<f4' or '<i8') with the shape text given, from raw bytes.
static void write_npy(const char *name, const char *descr, const char *shape, const void *data, size_t bytes)
{
    char header[128];
    memset(header, ' ', sizeof header);
    int n = snprintf(header + 10, sizeof header - 10, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, shape);
    memcpy(header, "\x93NUMPY\x01\x00\x76\x00", 10);
    header[10 + n] = ' ';
    header[127] = '\n';
    FILE *f = fopen(path(name), "wb");
    if (f) {
        fwrite(header, 1, sizeof header, f);
        if (bytes) fwrite(data, 1, bytes, f);
        fclose(f);
    }
}

static int forward(const char *x, const char *t, const char *y)
{
    return run("build/promoe forward %s --x %s --t %s --y %s --out %s", checkpoint, path(x), path(t), path(y),
               path("out.npy"));
}

static void test_file_values(void)
{
    import_case("FID below 0", "FID: -3\n", "FID -3 is out of range [0, inf]");
    import_case("precision above 1", "Precision: 1.5\n", "Precision 1.5 is out of range [0, 1]");
    import_case("recall NaN", "Recall: nan\n", "Recall nan is out of range [0, 1]");
    import_case("inception score infinite", "Inception Score: inf\n", "Inception Score inf is out of range [1, inf]");
    static float x[2 * 28 * 28], t[3] = {500, 500, 500}, y_half[2] = {0.5f, 1};
    static int64_t y[2] = {1, 2};
    write_npy("x0.npy", "<f4", "(0, 1, 28, 28)", NULL, 0);
    write_npy("t0.npy", "<f4", "(0,)", NULL, 0);
    write_npy("y0.npy", "<i8", "(0,)", NULL, 0);
    expect_refused("forward with an empty batch", "x0.npy", "batch of 0 rows is out of range [1, 65536]",
                   forward("x0.npy", "t0.npy", "y0.npy"));
    x[5] = NAN;
    write_npy("xnan.npy", "<f4", "(2, 1, 28, 28)", x, sizeof x);
    write_npy("t2.npy", "<f4", "(2,)", t, 2 * sizeof(float));
    write_npy("y2.npy", "<i8", "(2,)", y, sizeof y);
    expect_refused("forward with a NaN input", "xnan.npy", "element 5 is nan: inputs must be finite",
                   forward("xnan.npy", "t2.npy", "y2.npy"));
    x[5] = 0;
    write_npy("x2.npy", "<f4", "(2, 1, 28, 28)", x, sizeof x);
    write_npy("t3.npy", "<f4", "(3,)", t, sizeof t);
    expect_refused("forward with a timestep too many", "t3.npy", "expected shape [2]", forward("x2.npy", "t3.npy", "y2.npy"));
    float t_far[2] = {500, 5000};
    write_npy("tfar.npy", "<f4", "(2,)", t_far, sizeof t_far);
    expect_refused("forward with a timestep out of range", "tfar.npy", "timestep 5000 is out of range [0, 1000]",
                   forward("x2.npy", "tfar.npy", "y2.npy"));
    write_npy("yhalf.npy", "<f4", "(2,)", y_half, sizeof y_half);
    expect_refused("forward with a label that is not whole", "yhalf.npy", "element 0 (0.5) is not an integer",
                   forward("x2.npy", "t2.npy", "yhalf.npy"));
    int64_t y_big[2] = {1, 11};
    write_npy("ybig.npy", "<i8", "(2,)", y_big, sizeof y_big);
    expect_refused("forward with a label beyond the null class", "ybig.npy", "label 11 is outside [0, 10]",
                   forward("x2.npy", "t2.npy", "ybig.npy"));
}

static void test_names_and_runs(void)
{
    write_file("escape.yaml", "sweep: ../escape\nbase: tiny.yaml\nseeds: [0]\n");
    int rc = run("build/promoe sweep %s --db %s", path("escape.yaml"), path("r.db"));
    expect_refused("sweep name leaving its folder", "escape.yaml:1:8", "the name '../escape' must be", rc);
    write_file("slash.yaml", "sweep: slash\nbase: tiny.yaml\nseeds: [0]\nlabel: \"a/{train.seed}\"\n");
    rc = run("build/promoe sweep %s --db %s", path("slash.yaml"), path("r.db"));
    expect_refused("sweep label with a slash", "slash.yaml:4:8", "label 'a/0' becomes a file name", rc);
    rc = run(TRAIN, path("tiny.yaml"), path("r.db"), path("ckpt"));
    expect_refused("train of a done run without --force", run_id, "--force trains it again", rc);
    rc = run(TRAIN "--set train.threads=2000", path("tiny.yaml"), path("r.db"), path("ckpt"));
    expect_refused("train.threads out of range", "train.threads", "2000 is out of range [0, 1024]", rc);
}

int main(void)
{
    if (!mkdtemp(dir)) return 1;
    write_file("tiny.yaml", TINY);
    int rc = run(TRAIN, path("tiny.yaml"), path("r.db"), path("ckpt"));
    CHECK(rc == 0, "the tiny run that fills the database: %s", output);
    rc = run("build/promoe config %s --set ckpt.dir=%s", path("tiny.yaml"), path("ckpt"));
    const char *at = strstr(output, "run id ");
    if (at) snprintf(run_id, sizeof run_id, "%s", at + 7);
    snprintf(checkpoint, sizeof checkpoint, "%s/%s/latest.safetensors", path("ckpt"), run_id);
    CHECK(rc == 0 && strlen(run_id) == 16 && access(checkpoint, F_OK) == 0, "the tiny run's checkpoint: %s", output);
    write_file("adm.txt", "FID: 2.5\n");
    test_config_files();
    test_sweep_file();
    test_data();
    test_checkpoint_of_another_model();
    test_database_and_disk();
    test_numeric_options();
    test_unused_file_keys();
    test_file_values();
    test_names_and_runs();
    printf("test_bad_input: %d bad inputs refused\n", cases);
    CHECK(cases >= 60, "the catalogue holds %d cases", cases);
    if (check_failed == 0 && run("rm -rf %s", dir) != 0) fprintf(stderr, "cannot remove %s\n", dir);
    return test_summary("test_bad_input");
}
