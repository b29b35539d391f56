// The catalogue of bad input, through the promoe program as a user meets it: each case exits 1 with
// a message naming the file (or key) and the problem, and leaves the results database exactly as
// it was (same rows in every table, integrity_check ok). A full disk is simulated with a file-size
// limit (ulimit -f, SIGXFSZ ignored) in the child; a results folder that cannot be written is a path
// under a regular file (ENOTDIR), which stops root too, where permission bits would not.
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
#include "shell.h"
#include "tmpfiles.h"

static char dir[] = "/tmp/promoe_test_bad_XXXXXX";

static const char *path(const char *name)
{
    static char buffers[8][512];
    static int next;
    char *b = buffers[next++ % 8];
    snprintf(b, 512, "%s/%s", dir, name);
    return b;
}

static void write_file(const char *name, const char *text)
{
    FILE *f = fopen(path(name), "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

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

// One bad input: exit status 1, the message holds both parts, the database did not change.
static void expect_refused(const char *what, const char *file_part, const char *problem, int rc)
{
    static uint64_t expected_digest;
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

int main(void)
{
    if (!mkdtemp(dir)) return 1;
    write_file("tiny.yaml", TINY);
    int rc = run(TRAIN, path("tiny.yaml"), path("r.db"), path("ckpt"));
    CHECK(rc == 0, "the tiny run that fills the database: %s", output);
    test_config_files();
    test_sweep_file();
    test_data();
    test_checkpoint_of_another_model();
    test_database_and_disk();
    if (check_failed == 0 && run("rm -rf %s", dir) != 0) fprintf(stderr, "cannot remove %s\n", dir);
    return test_summary("test_bad_input");
}
