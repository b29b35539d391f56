// promoe plot: a synthetic database (two runs' loss curves, a two-point model-size sweep with two
// seeds at one point, an experts sweep with a dense run to leave out) gives exact .dat files (the
// moving average in steps of a known sequence averaged over seeds, the validation loss, mean and t interval over seeds), scripts for a 1200x800 pngcairo canvas
// with the mini-scale axis names, and through the CLI PNG files of that size; a missing gnuplot
// and a failing script are errors that name the script.
#include "check.h"
#include "core/error.h"
#include "report/plot.h"
#include "report/plot_gnuplot.h"
#include "scratch.h"
#include "store/db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[] = "/tmp/promoe_test_plot_XXXXXX";

static const char *path_in(const char *name) { return scratch_path(dir, name); }

static const char *slurp(const char *path) { return scratch_slurp(path); }

static const char DATA_SQL[] =
    "INSERT INTO sweeps VALUES ('fig5-loss-mini','','x',0), ('fig3b-model-size-mini','','x',0),"
    " ('fig3c-experts-mini','','x',0), ('t7-activation-mini','','x',0);"
    "INSERT INTO runs (run_id, config_sha256, config_yaml, label, seed, status, params_active, created_ms) VALUES"
    " ('l0','h0','','dense',0,'done',NULL,0), ('l1','h1','','promoe',0,'done',NULL,0),"
    " ('l2','h8','','dense',1,'done',NULL,0),"
    " ('b0','h2','','dense-B',0,'done',1000,0), ('b1','h3','','dense-B',1,'done',1000,0),"
    " ('b2','h4','','dense-L',0,'done',2000,0),"
    " ('c0','h5','','E8A1S1U1-s0',0,'done',500,0), ('c1','h6','','E4A1S1U1-s0',0,'done',500,0),"
    " ('c2','h7','','dense-s0',0,'done',500,0);"
    "INSERT INTO sweep_runs VALUES ('fig5-loss-mini',0,'l0'), ('fig5-loss-mini',1,'l1'), ('fig5-loss-mini',2,'l2'),"
    " ('fig3b-model-size-mini',0,'b2'), ('fig3b-model-size-mini',1,'b0'), ('fig3b-model-size-mini',2,'b1'),"
    " ('fig3c-experts-mini',0,'c0'), ('fig3c-experts-mini',1,'c1'), ('fig3c-experts-mini',2,'c2');"
    "INSERT INTO params VALUES ('c0','model.moe.experts','\"E8A1S1U1\"'), ('c1','model.moe.experts','\"E4A1S1U1\"'),"
    " ('c2','model.moe.experts','\"\"');"
    "INSERT INTO metrics VALUES ('l0','loss',0,1.0,0), ('l0','loss',10,0.5,0), ('l0','loss',20,0.25,0),"
    " ('l0','loss',30,NULL,0), ('l1','loss',0,2.0,0), ('l1','loss',10,1.0,0), ('l1','grad_norm',10,9.0,0),"
    " ('l2','loss',0,3.0,0), ('l2','loss',10,1.5,0), ('l0','val_loss',10,0.4,0), ('l0','val_loss',20,0.3,0),"
    " ('l2','val_loss',10,0.6,0);"
    "INSERT INTO evals (run_id, step, cfg_scale, sampler, sampler_steps, n_samples, reference, metric,"
    " value, created_ms) VALUES"
    " ('b0',100,1.0,'euler',50,1000,'fmnist-train','fd',99.0,0),"
    " ('b0',400,1.0,'euler',50,1000,'fmnist-train','fd',10.0,0),"
    " ('b1',400,1.0,'euler',50,1000,'fmnist-train','fd',12.0,0),"
    " ('b2',400,1.0,'euler',50,1000,'fmnist-train','fd',8.0,0),"
    " ('b2',400,1.5,'euler',50,1000,'fmnist-train','fd',5.0,0),"
    " ('c0',400,1.0,'euler',50,1000,'fmnist-train','fd',3.0,0),"
    " ('c1',400,1.0,'euler',50,1000,'fmnist-train','fd',4.0,0),"
    " ('c2',400,1.0,'euler',50,1000,'fmnist-train','fd',50.0,0);";

// Label dense averages its seeds l0 and l2 step by step (2, 1, then l0's 0.25 alone); the centred
// moving average over 20 steps takes the points within 10 steps: (2 + 1) / 2, (2 + 1 + 0.25) / 3,
// (1 + 0.25) / 2. The NULL loss at step 30 is left out.
static const char EXPECTED_LOSS[] =
    "# loss of sweep fig5-loss-mini, one block per run label, its seeds averaged at each step\n"
    "# step mean smoothed runs (centred mean over 20 steps)\n"
    "# label dense\n0 2 1.5 2\n10 1 1.08333333 2\n20 0.25 0.625 1\n\n\n"
    "# label promoe\n0 2 1.5 1\n10 1 1.5 1\n\n\n";

// The validation loss is not smoothed: seeds averaged where both have it.
static const char EXPECTED_VAL[] =
    "# val_loss of sweep fig5-loss-mini, one block per run label, its seeds averaged at each step\n"
    "# step mean runs\n"
    "# label dense\n10 0.5 2\n20 0.3 1\n\n\n";

// Seeds 10 and 12: mean 11, s = sqrt(2), half-width t(0.975, 1) * s / sqrt(2) = 12.706.
static const char EXPECTED_FIG3B[] =
    "# fd, one block per series and cfg scale; mean and 95% half-width over seeds\n"
    "# x mean ci95 n\n"
    "# series dense cfg 1.0\n1000 11 12.706 2\n2000 8 0 1\n\n\n"
    "# series dense cfg 1.5\n2000 5 0 1\n\n\n";

// The dense run (no experts) is left out; x is the E of the experts spec, ascending.
static const char EXPECTED_FIG3C[] =
    "# fd, one block per series and cfg scale; mean and 95% half-width over seeds\n"
    "# x mean ci95 n\n"
    "# series promoe cfg 1.0\n4 4 0 1\n8 3 0 1\n\n\n";

static int make_database(void) { return scratch_database(path_in("r.db"), DATA_SQL); }

static int report_has(const struct plot_report *report, const char *text)
{
    for (int i = 0; i < report->n; i++)
        if (strstr(report->lines[i], text)) return 1;
    return 0;
}

static void test_data_files(void)
{
    static struct plot_report report;
    struct store *db;
    static char out_dir[512];
    snprintf(out_dir, sizeof out_dir, "%s", path_in("data"));   // path_in's buffers rotate
    struct plot_options o = {.out_dir = out_dir, .smooth_steps = 20, .log_y = 1, .run_gnuplot = 0};
    CHECK(store_open(&db, path_in("r.db")) == 0, "%s", err_message());
    CHECK(plot_detect_scale(db) == SCALE_MINI, "scale");
    CHECK(plot_loss(db, "fig5-loss-mini", &o, &report) == 0, "%s", err_message());
    CHECK(!strcmp(slurp(path_in("data/fig5-loss-mini.dat")), EXPECTED_LOSS), "loss dat:\n%s", slurp(path_in("data/fig5-loss-mini.dat")));
    const char *gp = slurp(path_in("data/fig5-loss-mini.gp"));
    CHECK(strstr(gp, "set terminal pngcairo size 1200,800 font 'DejaVu Sans,11'"), "terminal:\n%s", gp);
    CHECK(strstr(gp, "set logscale y") && strstr(gp, "centred mean over 20 steps") && strstr(gp, "index 1 using 1:3"),
          "loss gp:\n%s", gp);
    CHECK(strstr(gp, "title 'dense'") && strstr(gp, "title 'promoe'") && !strstr(gp, "index 2"), "loss gp:\n%s", gp);
    CHECK(!strcmp(slurp(path_in("data/fig5-loss-mini-val_loss.dat")), EXPECTED_VAL), "val dat:\n%s",
          slurp(path_in("data/fig5-loss-mini-val_loss.dat")));
    gp = slurp(path_in("data/fig5-loss-mini-val_loss.gp"));
    CHECK(strstr(gp, "index 0 using 1:2 with linespoints") && strstr(gp, "title 'dense'") && !strstr(gp, "index 1"),
          "val gp:\n%s", gp);
    CHECK(plot_scaling(db, SCALE_MINI, &o, &report) == 0, "%s", err_message());
    CHECK(!strcmp(slurp(path_in("data/fig3b-model-size-mini-fd.dat")), EXPECTED_FIG3B), "fig3b dat:\n%s",
          slurp(path_in("data/fig3b-model-size-mini-fd.dat")));
    CHECK(!strcmp(slurp(path_in("data/fig3c-experts-mini-fd.dat")), EXPECTED_FIG3C), "fig3c dat:\n%s",
          slurp(path_in("data/fig3c-experts-mini-fd.dat")));
    gp = slurp(path_in("data/fig3b-model-size-mini-fd.gp"));
    CHECK(strstr(gp, "set ylabel 'FD (feature network)'") && !strstr(gp, "FID"), "mini axis:\n%s", gp);
    CHECK(strstr(gp, "index 1 using 1:2:3 with yerrorlines") && strstr(gp, "'dense, cfg 1.5'"), "fig3b gp:\n%s", gp);
    CHECK(access(path_in("data/fig3b-model-size-mini-is.dat"), F_OK) != 0, "no is data file");
    CHECK(report_has(&report, "fig3b-model-size-mini-is: no 'is' evaluations"), "is skipped");
    CHECK(plot_loss(db, "t7-activation-mini", &o, &report) == 0, "%s", err_message());
    CHECK(report_has(&report, "t7-activation-mini: no loss rows"), "empty sweep reported");
    store_close(db);
}

static int run_cli(const char *command, char *out, size_t size)
{
    FILE *p = popen(command, "r");
    if (!p) return -1;
    size_t n = fread(out, 1, size - 1, p);
    out[n] = '\0';
    return pclose(p);
}

static unsigned be32(const unsigned char *p)
{
    return (unsigned)p[0] << 24 | (unsigned)p[1] << 16 | (unsigned)p[2] << 8 | p[3];
}

// A PNG file: signature, then the IHDR chunk first with width and height.
static void check_png(const char *name)
{
    static const unsigned char signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    unsigned char head[24] = {0};
    FILE *f = fopen(path_in(name), "rb");
    size_t n = f ? fread(head, 1, sizeof head, f) : 0;
    if (f) fclose(f);
    CHECK(n == sizeof head && !memcmp(head, signature, sizeof signature), "%s: not a PNG", name);
    CHECK(!memcmp(head + 12, "IHDR", 4), "%s: IHDR first", name);
    CHECK(be32(head + 16) == PLOT_WIDTH && be32(head + 20) == PLOT_HEIGHT, "%s: %ux%u", name, be32(head + 16),
          be32(head + 20));
}

static void test_cli_png(void)
{
    char command[1024], out[4096];
    if (system("command -v gnuplot >/dev/null 2>&1") != 0) {
        printf("test_plot: skipped: gnuplot not installed (PNG checks)\n");
        return;
    }
    snprintf(command, sizeof command, "build/promoe plot --db %s --out %s --smooth 20 2>&1", path_in("r.db"),
             path_in("png"));
    CHECK(run_cli(command, out, sizeof out) == 0, "exit status: %s", out);
    CHECK(strstr(out, "fig5-loss-mini: 2 curves ->") && strstr(out, "fig5-loss-mini-val_loss: 1 curve ->") && strstr(out, "no 'is' evaluations"), "report:\n%s", out);
    CHECK(!strcmp(slurp(path_in("png/fig5-loss-mini.dat")), EXPECTED_LOSS), "cli loss dat");
    check_png("png/fig5-loss-mini.png");
    check_png("png/fig5-loss-mini-val_loss.png");
    check_png("png/fig3b-model-size-mini-fd.png");
    check_png("png/fig3c-experts-mini-fd.png");
    CHECK(access(path_in("png/fig5-loss-mini.log"), F_OK) != 0, "log removed after success");
    snprintf(command, sizeof command, "build/promoe plot --db %s --out %s --sweep t7-activation-mini --sweep fig5-loss-mini 2>&1",
             path_in("r.db"), path_in("sweep"));
    CHECK(run_cli(command, out, sizeof out) == 0 && strstr(out, "t7-activation-mini: no loss rows"), "--sweep:\n%s", out);
    CHECK(access(path_in("sweep/fig5-loss-mini.png"), F_OK) == 0 && access(path_in("sweep/fig3b-model-size-mini-fd.dat"), F_OK) != 0,
          "--sweep draws the named sweeps only");
    // A failing script: the error names it and quotes gnuplot.
    FILE *f = fopen(path_in("png/bad.gp"), "w");
    if (f) fputs("plot 'missing.dat'\n", f), fclose(f);
    CHECK(plot_run_gnuplot(path_in("png"), "bad") < 0, "bad script accepted");
    CHECK(strstr(err_message(), "gnuplot failed on") && strstr(err_message(), "bad.gp") && strstr(err_message(), "missing.dat"),
          "message: %s", err_message());
}

static void test_errors(void)
{
    char command[1024], out[4096];
    snprintf(command, sizeof command, "PATH=/nonexistent build/promoe plot --db %s --out %s 2>&1", path_in("r.db"),
             path_in("nognuplot"));
    CHECK(run_cli(command, out, sizeof out) != 0, "exit status without gnuplot");
    CHECK(strstr(out, "install gnuplot-nox") && strstr(out, "fig5-loss-mini.gp"), "message:\n%s", out);
    snprintf(command, sizeof command, "build/promoe plot --db %s 2>&1", path_in("none.db"));
    CHECK(run_cli(command, out, sizeof out) != 0 && strstr(out, "no results database"), "missing db: %s", out);
    snprintf(command, sizeof command, "build/promoe plot --db %s --smooth 0 2>&1", path_in("r.db"));
    CHECK(run_cli(command, out, sizeof out) >> 8 == 1 && strstr(out, "option '--smooth': 0 is out of range [1, 1e+12]"),
          "--smooth 0: %s", out);
}

int main(void)
{
    if (!mkdtemp(dir)) return 1;
    CHECK(make_database() == 0, "synthetic database");
    test_data_files();
    test_cli_png();
    test_errors();
    char command[600];
    snprintf(command, sizeof command, "rm -rf %s", dir);
    if (system(command) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return test_summary("test_plot");
}
