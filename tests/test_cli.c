// The promoe program end to end, as a user runs it: train a tiny model, then `forward` (its output
// equals the library's forward with the checkpoint's EMA weights, bit for bit), `sample` to PNG, NPY
// and NPZ, `config --list` and `--params`; and bad input: a corrupt or truncated checkpoint, an
// unknown YAML key, a missing data set, each a clear message (file, line, problem) and exit status 1.
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "core/error.h"
#include "data/npy.h"
#include "model/checkpoint.h"
#include "model/dit.h"
#include "scratch.h"
#include "shell.h"

static char dir[] = "/tmp/promoe_test_cli_XXXXXX";

static const char *path(const char *name) { return scratch_path(dir, name); }

static void write_file(const char *name, const char *text) { scratch_write(dir, name, text); }

static const char TINY[] =
    "model: {hidden: 32, depth: 2, heads: 2, patch: 7}\n"
    "train: {steps: 3, batch_size: 8}\n"
    "sample: {n: 0}\n";

static char checkpoint[1024];

static void test_train(void)
{
    write_file("tiny.yaml", TINY);
    int rc = run("build/promoe train %s --db %s --set ckpt.dir=%s", path("tiny.yaml"), path("r.db"), dir);
    CHECK(rc == 0, "train failed (%d): %s", rc, output);
    const char *at = strstr(output, "checkpoint ");
    if (at) sscanf(at + 11, "%1023s", checkpoint);
    CHECK(access(checkpoint, F_OK) == 0, "no checkpoint reported: %s", output);
}

static void test_forward(void)
{
    enum { B = 3, C = 1, S = 28 };
    static float x[B * C * S * S];
    float t[B] = {0.5f, 500.0f, 999.0f};
    int64_t y[B] = {0, 7, 10}, xs[4] = {B, C, S, S}, ts[1] = {B};
    for (int i = 0; i < B * C * S * S; i++) x[i] = (float)((i * 37) % 100) / 50.0f - 1.0f;
    npy_write(path("x.npy"), NPY_F32, 4, xs, x);
    npy_write(path("t.npy"), NPY_F32, 1, ts, t);
    npy_write(path("y.npy"), NPY_I64, 1, ts, y);
    int rc = run("build/promoe forward %s --x %s --t %s --y %s --out %s", checkpoint, path("x.npy"),
                 path("t.npy"), path("y.npy"), path("out.npy"));
    CHECK(rc == 0, "forward failed: %s", output);
    struct npy_array out = {0};
    CHECK(npy_read(path("out.npy"), &out) == 0 && out.ndim == 4 && out.shape[0] == B && out.shape[1] == 2 &&
          out.shape[2] == S, "forward output shape wrong: %s", err_message());
    // The same forward in this process.
    struct config cfg;
    config_defaults(&cfg);
    config_load_text(&cfg, TINY, "tiny");
    struct dit m;
    dit_create(&m, &cfg, B);
    real *w = calloc(m.table.total, sizeof(real));
    CHECK(checkpoint_load_ema(checkpoint, &m.table, w) == 0, "load: %s", err_message());
    dit_bind_weights(&m, w);
    real xr[B * C * S * S], tr[B];
    int yr[B];
    for (int i = 0; i < B * C * S * S; i++) xr[i] = x[i];
    for (int b = 0; b < B; b++) tr[b] = t[b], yr[b] = (int)y[b];
    const real *expected = dit_forward(&m, xr, tr, yr, B);
    int differ = out.data == NULL;
    for (int64_t i = 0; !differ && i < out.count; i++) differ = ((float *)out.data)[i] != expected[i];
    CHECK(!differ, "promoe forward differs from the library's forward");
    double max = 0;
    for (int64_t i = 0; out.data && i < out.count; i++) max = fmax(max, fabs(((float *)out.data)[i]));
    CHECK(max > 0, "forward output is all zero");
    npy_free(&out);
    free(w);
    dit_destroy(&m);
    rc = run("build/promoe forward %s --x %s --t %s --y %s --out %s", checkpoint, path("t.npy"), path("t.npy"),
             path("y.npy"), path("bad.npy"));
    CHECK(rc == 1 && strstr(output, "t.npy") && strstr(output, "[B, C, S, S]"), "bad x shape: %s", output);
}

static void test_sample(void)
{
    int rc = run("build/promoe sample %s --n 20 --steps 4 --cfg 1.5 --seed 3 --out %s", checkpoint, path("g.png"));
    CHECK(rc == 0 && access(path("g.png"), F_OK) == 0, "png: %s", output);
    rc = run("build/promoe sample %s --n 6 --steps 4 --out %s", checkpoint, path("s.npy"));
    struct npy_array a = {0};
    CHECK(rc == 0 && npy_read(path("s.npy"), &a) == 0 && a.shape[0] == 6 && a.shape[1] == 1 && a.shape[3] == 28,
          "npy samples: %s", output);
    npy_free(&a);
    rc = run("build/promoe sample %s --n 6 --steps 4 --out %s", checkpoint, path("s.npz"));
    CHECK(rc == 0 && npz_read(path("s.npz"), "arr_0", &a) == 0 && a.dtype == NPY_U8 && a.ndim == 4 &&
          a.shape[0] == 6 && a.shape[3] == 1, "npz arr_0 must be uint8 NHWC: %s", output);
    npy_free(&a);
    rc = run("build/promoe sample %s --n 6 --out %s", checkpoint, path("s.jpg"));
    CHECK(rc == 1 && strstr(output, ".png, .npy or .npz"), "unknown extension: %s", output);
}

static void test_bad_input(void)
{
    // A corrupt copy (one flipped byte near the end) and a truncated copy of the checkpoint.
    run("cp %s %s && cp %s %s && truncate -s -100 %s", checkpoint, path("bad.safetensors"), checkpoint,
        path("short.safetensors"), path("short.safetensors"));
    FILE *f = fopen(path("bad.safetensors"), "r+b");
    if (f) {
        fseek(f, -50, SEEK_END);
        int c = fgetc(f);
        fseek(f, -50, SEEK_END);
        fputc(c ^ 0x40, f);
        fclose(f);
    }
    int rc = run("build/promoe sample %s --n 2 --out %s", path("bad.safetensors"), path("x.png"));
    CHECK(rc == 1 && strstr(output, "bad.safetensors") && strstr(output, "checksum"), "corrupt: %s", output);
    rc = run("build/promoe sample %s --n 2 --out %s", path("short.safetensors"), path("x.png"));
    CHECK(rc == 1 && strstr(output, "short.safetensors") && strstr(output, "truncated"), "truncated: %s", output);
    write_file("typo.yaml", "model:\n  hidden: 32\n  dept: 2\n");
    rc = run("build/promoe train %s --db %s", path("typo.yaml"), path("r.db"));
    CHECK(rc == 1 && strstr(output, "typo.yaml:3:3") && strstr(output, "did you mean 'model.depth'"), "typo: %s", output);
    rc = run("build/promoe train %s --db %s --set data.path=%s", path("tiny.yaml"), path("r.db"), path("nowhere"));
    CHECK(rc == 1 && strstr(output, "nowhere/train-images-idx3-ubyte.gz") && strstr(output, "No such file"),
          "missing data set: %s", output);
    rc = run("build/promoe train %s --db %s --set model.heads=3", path("tiny.yaml"), path("r.db"));
    CHECK(rc == 1 && strstr(output, "model.heads"), "heads not dividing hidden: %s", output);
    rc = run("build/promoe train");
    CHECK(rc == 129 && strstr(output, "usage"), "usage error: %d %s", rc, output);
}

static void test_config_command(void)
{
    int rc = run("build/promoe config --list");
    CHECK(rc == 0 && strstr(output, "model.hidden") && strstr(output, "loss.rcl.tau"), "config --list: %s", output);
    rc = run("build/promoe config experiments/mini/dense.yaml --params");
    CHECK(rc == 0 && strstr(output, "total 4180064"), "mini dense params: %s", output);
    rc = run("build/promoe config experiments/mini/promoe.yaml --params");
    CHECK(rc == 0 && strstr(output, "total 9516704") && strstr(output, "activated 4187552"), "mini ProMoE params: %s", output);
}

int main(void)
{
    if (!mkdtemp(dir)) return 1;
    test_train();
    test_forward();
    test_sample();
    test_bad_input();
    test_config_command();
    if (check_failed == 0 && run("rm -rf %s", dir) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return test_summary("test_cli");
}
