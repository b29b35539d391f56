// The mini study's report (see study.h). Sections in reading order, each a function writing
// Markdown; CSV tables, figures and sample grids go beside REPORT.md.
#include "report/study.h"

#include <dirent.h>
#include <glob.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "eval/evaluate.h"
#include "io/atomic.h"
#include "report/claims.h"
#include "report/plot.h"
#include "report/plot_gnuplot.h"
#include "report/stats.h"
#include "report/table.h"

enum { PATH_MAX_STUDY = 1024, LABELS_MAX = 32, SEEDS_MAX = 16, STUDY_SEEDS = 3 };

static const char LABELS_SQL[] =
    "SELECT coalesce(r.label, r.run_id) AS label, count(*), sum(r.status = 'done'), avg(r.params_total), "
    "avg(r.params_active), avg(r.img_per_s), sum(coalesce(r.train_s, 0)) FROM sweep_runs s "
    "JOIN runs r ON r.run_id = s.run_id WHERE s.sweep = ?1 GROUP BY label ORDER BY min(s.idx)";
static const char LABEL_RUNS_SQL[] =
    "SELECT r.run_id, r.seed FROM sweep_runs s JOIN runs r ON r.run_id = s.run_id WHERE s.sweep = ?1 "
    "AND coalesce(r.label, r.run_id) = ?2 AND r.status = 'done' ORDER BY r.seed";
// Pairs of evaluations of one run that differ only in the sampler seed (the sampling noise).
static const char REDRAW_SQL[] =
    "SELECT a.value, b.value FROM evals a JOIN evals b ON a.run_id = b.run_id AND a.step = b.step "
    "AND a.metric = b.metric AND a.cfg_scale = b.cfg_scale AND a.n_samples = b.n_samples "
    "AND a.sampler_steps = b.sampler_steps AND a.sample_seed < b.sample_seed "
    "JOIN sweep_runs s ON s.run_id = a.run_id AND s.sweep = ?1 "
    "WHERE a.metric = ?2 AND abs(a.cfg_scale - ?3) < 1e-6 AND a.value IS NOT NULL AND b.value IS NOT NULL";
// Fig. 1b: the model-mean subspace similarity at each k of a label's runs (each run's latest
// analysis), averaged over its seeds.
static const char DIVERSITY_SQL[] =
    "SELECT d.k, avg(d.value), count(*) FROM diversity d JOIN runs r ON r.run_id = d.run_id "
    "JOIN sweep_runs s ON s.run_id = d.run_id AND s.sweep = ?1 WHERE coalesce(r.label, r.run_id) = ?2 "
    "AND d.layer = -1 AND d.variant = 'out' AND d.step = (SELECT max(step) FROM diversity WHERE run_id = d.run_id) "
    "GROUP BY d.k ORDER BY d.k";
static const char HIDDEN_SQL[] =
    "SELECT CAST(p.value AS INTEGER) FROM params p JOIN sweep_runs s ON s.run_id = p.run_id AND s.sweep = ?1 "
    "WHERE p.key = 'model.hidden' LIMIT 1";
// The difference between two labels' evaluations of runs with the same train.seed drawn with the
// same sampler seed: per run seed, the difference with the run's own sampler seed and with another.
static const char PAIRED_REDRAW_SQL[] =
    "SELECT ra.seed, ea.sample_seed = ra.seed, ea.value - eb.value FROM evals ea "
    "JOIN runs ra ON ra.run_id = ea.run_id AND coalesce(ra.label, ra.run_id) = ?2 AND ra.status = 'done' "
    "JOIN sweep_runs sa ON sa.run_id = ra.run_id AND sa.sweep = ?1 "
    "JOIN runs rb ON rb.seed = ra.seed AND coalesce(rb.label, rb.run_id) = ?3 AND rb.status = 'done' "
    "JOIN sweep_runs sb ON sb.run_id = rb.run_id AND sb.sweep = ?1 "
    "JOIN evals eb ON eb.run_id = rb.run_id AND eb.metric = ea.metric AND eb.cfg_scale = ea.cfg_scale "
    "AND eb.n_samples = ea.n_samples AND eb.sample_seed = ea.sample_seed AND eb.sampler_steps = ea.sampler_steps "
    "WHERE ea.metric = ?4 AND abs(ea.cfg_scale - ?5) < 1e-6 AND ea.value IS NOT NULL AND eb.value IS NOT NULL "
    "ORDER BY ra.seed, ea.sample_seed = ra.seed DESC";
static const char EVAL_TIME_SQL[] =
    "SELECT count(*), coalesce(sum(e.wall_s), 0) FROM (SELECT DISTINCT run_id, step, cfg_scale, sample_seed, "
    "wall_s FROM evals WHERE source = 'harness') e JOIN sweep_runs s ON s.run_id = e.run_id AND s.sweep = ?1";

struct label_row {
    char label[64];
    int runs, done;
    double params_total, params_active, img_per_s, train_s;
};

struct study {
    sqlite3 *db;
    const struct study_layout *l;
    FILE *f;
    struct label_row labels[LABELS_MAX];
    int n_labels;
    struct claims *claims;
    struct claim_result *results;
};

void study_layout_mini(struct study_layout *l, const char *db_path, const char *out_dir)
{
    static char featnet_dir[PATH_MAX_STUDY];
    eval_featnet_dir(db_path, featnet_dir);
    *l = (struct study_layout){
        .title = "Mini study: the ProMoE paper's claims at Fashion-MNIST scale",
        .sweep = "study-mini",
        .protocol_path = "experiments/mini/protocol.yaml",
        .protocol_search = "analysis/tables/protocol.yaml",
        .tables = {"analysis/tables/table1.yaml", "analysis/tables/table6.yaml", "analysis/tables/table7.yaml",
                   "analysis/tables/table8.yaml", "analysis/tables/table11.yaml", "analysis/tables/table12.yaml",
                   "analysis/tables/fig1.yaml"},
        .n_tables = 7,
        .claims_path = "analysis/claims.yaml",
        .figures = {{"loss-table1", "Table 1 methods (Fig. 5)",
                     {"dense", "dit-moe", "ec-dit", "diffmoe", "expert-race", "kmeans", "classification", "promoe"}, 8},
                    {"loss-table6", "Table 6 components", {"dense", "prototypes", "prototypes-rcl", "promoe"}, 4},
                    {"loss-ablations", "Tables 7, 8, 11, 12",
                     {"promoe", "promoe-softmax", "promoe-sigmoid", "kmeans", "kmeans-nocond", "promoe-top3", "promoe-lb"}, 7}},
        .n_figures = 3,
        .pilot_labels = {"dense", "promoe"},
        .n_pilot_labels = 2,
        .out_dir = out_dir,
        .ckpt_dir = "results/checkpoints",
        .featnet_dir = featnet_dir,
        .data_dir = "/usr/share/datasets/fashion-mnist",
        .eval_n = 1000,
    };
}

// ---- reading ---------------------------------------------------------------------------------

static int read_labels(struct study *s)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, LABELS_SQL, -1, &st, NULL) != SQLITE_OK) return err("labels: %s", sqlite3_errmsg(s->db));
    sqlite3_bind_text(st, 1, s->l->sweep, -1, SQLITE_STATIC);
    while (sqlite3_step(st) == SQLITE_ROW && s->n_labels < LABELS_MAX) {
        struct label_row *r = &s->labels[s->n_labels++];
        snprintf(r->label, sizeof r->label, "%s", (const char *)sqlite3_column_text(st, 0));
        r->runs = sqlite3_column_int(st, 1), r->done = sqlite3_column_int(st, 2);
        r->params_total = sqlite3_column_double(st, 3), r->params_active = sqlite3_column_double(st, 4);
        r->img_per_s = sqlite3_column_double(st, 5), r->train_s = sqlite3_column_double(st, 6);
    }
    sqlite3_finalize(st);
    return 0;
}

// Done runs of a label: ids [*n] (64 bytes each) and seeds.
static int label_runs(struct study *s, const char *label, char ids[][64], long long *seeds, int *n)
{
    sqlite3_stmt *st;
    *n = 0;
    if (sqlite3_prepare_v2(s->db, LABEL_RUNS_SQL, -1, &st, NULL) != SQLITE_OK)
        return err("runs of '%s': %s", label, sqlite3_errmsg(s->db));
    sqlite3_bind_text(st, 1, s->l->sweep, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, label, -1, SQLITE_STATIC);
    while (sqlite3_step(st) == SQLITE_ROW && *n < SEEDS_MAX) {
        snprintf(ids[*n], 64, "%s", (const char *)sqlite3_column_text(st, 0));
        seeds[(*n)++] = sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    return 0;
}

// Values of a column over the done runs of a label: values [*n].
static int label_values(struct study *s, const char *label, const struct spec_column *c, double *values, int *n)
{
    char ids[SEEDS_MAX][64];
    long long seeds[SEEDS_MAX];
    int runs;
    *n = 0;
    if (label_runs(s, label, ids, seeds, &runs) < 0) return -1;
    for (int i = 0; i < runs; i++) {
        int found = table_run_value(s->db, ids[i], c, SCALE_MINI, 0, &values[*n]);
        if (found < 0) return -1;
        *n += found;
    }
    return 0;
}

static double sample_sd(const double *v, int n)
{
    double mean = 0, ss = 0;
    for (int i = 0; i < n; i++) mean += v[i] / n;
    for (int i = 0; i < n; i++) ss += (v[i] - mean) * (v[i] - mean);
    return n > 1 ? sqrt(ss / (n - 1)) : NAN;
}

// ---- sections --------------------------------------------------------------------------------

static void write_header(struct study *s)
{
    int runs = 0, done = 0;
    for (int i = 0; i < s->n_labels; i++) runs += s->labels[i].runs, done += s->labels[i].done;
    fprintf(s->f, "# %s\n\n", s->l->title);
    fprintf(s->f, "Generated by `promoe report` from the results database (sweep `%s`): %d of %d runs done "
            "(%d methods x %d seeds). Every number below is read from the database by that command; rerun "
            "`make study` to continue the study and regenerate this file.\n\n", s->l->sweep, done, runs, s->n_labels,
            STUDY_SEEDS);
    if (done < runs)
        fprintf(s->f, "**The study is not complete.** Cells with fewer than 3 seeds have wide intervals or none "
                "(n=1), and claims with fewer than 2 paired seeds are reported as \"too few seeds\".\n\n");
}

static int write_protocol(struct study *s)
{
    FILE *p = fopen(s->l->protocol_path, "r");
    if (!p) return err("cannot read protocol '%s'", s->l->protocol_path);
    fprintf(s->f, "## Protocol\n\nEvery row shares one protocol, `%s`, laid over its model config by "
            "`sweeps/mini/study.yaml`:\n\n```yaml\n", s->l->protocol_path);
    char line[512];
    while (fgets(line, sizeof line, p)) fputs(line, s->f);
    fclose(p);
    fprintf(s->f, "```\n\nFor a given seed every method sees the same data order, flips, label dropout, noise and "
            "timesteps, so rows are compared seed by seed (paired). The validation loss uses the same 500 "
            "test images, noise and 10 timestep bins for every run. Parameters and speed per method (one "
            "thread per run, two runs at once):\n\n| Method | Runs done | Parameters | Activated | img/s | "
            "Training time per run |\n|---|---:|---:|---:|---:|---:|\n");
    for (int i = 0; i < s->n_labels; i++) {
        const struct label_row *r = &s->labels[i];
        if (!(r->params_total > 0)) {
            fprintf(s->f, "| %s | %d / %d | - | - | - | - |\n", r->label, r->done, r->runs);
            continue;
        }
        fprintf(s->f, "| %s | %d / %d | %.2fM | %.2fM | %.1f | ", r->label, r->done, r->runs, r->params_total / 1e6,
                r->params_active / 1e6, r->img_per_s);
        if (r->done) fprintf(s->f, "%.1f min |\n", r->train_s / r->done / 60);
        else fprintf(s->f, "- |\n");
    }
    fputc('\n', s->f);
    return 0;
}

// Seed-to-seed standard deviation of a metric: per pilot label and pooled over every label with
// two or more seeds; the smallest paired difference three seeds detect at 95% (pairs uncorrelated).
static int write_spread(struct study *s, const char *name, const struct spec_column *c)
{
    double pooled_ss = 0, values[SEEDS_MAX];
    int pooled_df = 0, n;
    fprintf(s->f, "| %s |", name);
    for (int i = 0; i < s->l->n_pilot_labels; i++) {
        if (label_values(s, s->l->pilot_labels[i], c, values, &n) < 0) return -1;
        if (n > 1) fprintf(s->f, " %.4g (n=%d) |", sample_sd(values, n), n);
        else fprintf(s->f, " - (n=%d) |", n);
    }
    for (int i = 0; i < s->n_labels; i++) {
        if (label_values(s, s->labels[i].label, c, values, &n) < 0) return -1;
        if (n > 1) pooled_ss += sample_sd(values, n) * sample_sd(values, n) * (n - 1), pooled_df += n - 1;
    }
    if (pooled_df == 0) return fprintf(s->f, " - | - |\n"), 0;
    double sd = sqrt(pooled_ss / pooled_df);
    fprintf(s->f, " %.4g (df=%d) | %.4g |\n", sd, pooled_df, stats_t975(STUDY_SEEDS - 1) * sqrt(2.0 / STUDY_SEEDS) * sd);
    return 0;
}

// Sampling noise: the standard deviation of one evaluation, from pairs drawn with two sampler seeds.
static int write_redraw(struct study *s, const char *metric, double cfg)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, REDRAW_SQL, -1, &st, NULL) != SQLITE_OK) return err("redraws: %s", sqlite3_errmsg(s->db));
    sqlite3_bind_text(st, 1, s->l->sweep, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, metric, -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 3, cfg);
    double ss = 0;
    int n = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        double d = sqlite3_column_double(st, 0) - sqlite3_column_double(st, 1);
        ss += d * d, n++;
    }
    sqlite3_finalize(st);
    if (n == 0) fprintf(s->f, "| %s at cfg %.1f | no redrawn evaluation yet | - |\n", metric, cfg);
    else fprintf(s->f, "| %s at cfg %.1f | %.4g | %d |\n", metric, cfg, sqrt(ss / (2.0 * n)), n);
    return 0;
}

// The floor needs the cached feature network; the report never trains one itself.
static int has_feature_network(const char *dir)
{
    char pattern[PATH_MAX_STUDY + 32];
    glob_t found;
    snprintf(pattern, sizeof pattern, "%s/featnet-*.safetensors", dir);
    int any = glob(pattern, 0, NULL, &found) == 0 && found.gl_pathc > 0;
    globfree(&found);
    return any;
}

// Sampling noise of a paired difference between the first two pilot rows: both drawn with the same
// sampler seeds share their starting noise and labels, so most of the noise cancels.
static int write_paired_redraw(struct study *s, const char *metric, double cfg)
{
    if (s->l->n_pilot_labels < 2) return 0;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, PAIRED_REDRAW_SQL, -1, &st, NULL) != SQLITE_OK)
        return err("paired redraws: %s", sqlite3_errmsg(s->db));
    sqlite3_bind_text(st, 1, s->l->sweep, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, s->l->pilot_labels[1], -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, s->l->pilot_labels[0], -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, metric, -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 5, cfg);
    double ss = 0, own = NAN;
    long long seed = -1;
    int n = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        long long run_seed = sqlite3_column_int64(st, 0);
        int is_own = sqlite3_column_int(st, 1);
        double d = sqlite3_column_double(st, 2);
        if (run_seed != seed) seed = run_seed, own = NAN;
        if (is_own) own = d;
        else if (!isnan(own)) ss += (own - d) * (own - d), n++;
    }
    sqlite3_finalize(st);
    if (n == 0) fprintf(s->f, "| %s at cfg %.1f, %s - %s | no redrawn pair yet | - |\n", metric, cfg, s->l->pilot_labels[1],
                        s->l->pilot_labels[0]);
    else fprintf(s->f, "| %s at cfg %.1f, %s - %s | %.4g | %d |\n", metric, cfg, s->l->pilot_labels[1], s->l->pilot_labels[0],
                 sqrt(ss / (2.0 * n)), n);
    return 0;
}

static int write_pilot(struct study *s)
{
    const struct spec_column val = {METRIC_VAL_LOSS, 0, 0}, fd = {METRIC_FID, 1.5, 0}, acc = {METRIC_CLASS_ACC, 1.5, 0};
    fprintf(s->f, "## Pilot: how large a difference the study can see\n\nThe pilot rows (");
    for (int i = 0; i < s->l->n_pilot_labels; i++) fprintf(s->f, "%s`%s`", i ? ", " : "", s->l->pilot_labels[i]);
    fprintf(s->f, ") train first over three seeds. Seed-to-seed standard deviation, pooled over every row with two or "
            "more seeds, and the smallest difference between two rows that three paired seeds detect at 95%% "
            "(t(0.975, 2) x sqrt(2/3) x SD, pairs taken as uncorrelated; pairing makes it smaller when seeds "
            "move rows together):\n\n| Metric |");
    for (int i = 0; i < s->l->n_pilot_labels; i++) fprintf(s->f, " SD %s |", s->l->pilot_labels[i]);
    fprintf(s->f, " SD pooled | Smallest detectable difference |\n|---|");
    for (int i = 0; i < s->l->n_pilot_labels + 2; i++) fprintf(s->f, "---:|");
    fputc('\n', s->f);
    if (write_spread(s, "val_loss", &val) < 0 || write_spread(s, "fd at cfg 1.5", &fd) < 0 ||
        write_spread(s, "class_acc at cfg 1.5", &acc) < 0)
        return -1;
    fprintf(s->f, "\nSampling noise: the same checkpoint evaluated again with another sampler seed (%d samples); "
            "standard deviation of one evaluation = RMS(difference) / sqrt(2):\n\n| Metric | SD of one evaluation "
            "| Pairs |\n|---|---:|---:|\n", s->l->eval_n);
    if (write_redraw(s, "fd", 1.5) < 0 || write_redraw(s, "class_acc", 1.5) < 0)
        return -1;
    fprintf(s->f, "\nEvery run of a given seed is evaluated with that seed's sampler noise and labels, so the noise of a "
            "difference between two rows is much smaller than that of one evaluation. The same redraws, as the "
            "difference between the two pilot rows at each sampler seed:\n\n| Paired difference | SD of one "
            "evaluation | Pairs |\n|---|---:|---:|\n");
    if (write_paired_redraw(s, "fd", 1.5) < 0 || write_paired_redraw(s, "class_acc", 1.5) < 0) return -1;
    double floor_fd, floor_acc, full_fd, full_acc;
    if (!has_feature_network(s->l->featnet_dir)) {
        fprintf(s->f, "\nFD floor: no feature network in `%s` yet (it is trained by the first evaluation).\n\n",
                s->l->featnet_dir);
        return 0;
    }
    if (eval_fd_floor(s->l->data_dir, s->l->featnet_dir, s->l->eval_n, &floor_fd, &floor_acc) < 0 ||
        eval_fd_floor(s->l->data_dir, s->l->featnet_dir, 10000, &full_fd, &full_acc) < 0)
        return err_context("FD floor");
    fprintf(s->f, "\nFD floor (what a perfect model scores): %d real test images against the training statistics "
            "give FD %.2f (class accuracy %.3f); all 10000 give FD %.2f (class accuracy %.3f). FD of n samples "
            "is biased upwards as n shrinks, so compare the tables' FD with the first figure.\n\n",
            s->l->eval_n, floor_fd, floor_acc, full_fd, full_acc);
    return 0;
}

static void base_name(const char *path, char *out, size_t size)
{
    const char *slash = strrchr(path, '/');
    snprintf(out, size, "%s", slash ? slash + 1 : path);
    char *dot = strrchr(out, '.');
    if (dot) *dot = '\0';
}

static int write_one_table(struct study *s, const char *path)
{
    struct table_spec *spec = malloc(sizeof *spec);
    struct table_result *result = malloc(sizeof *result);
    int rc = spec && result ? 0 : err("out of memory");
    if (!rc) rc = table_spec_load(spec, path);
    if (!rc) rc = table_build(spec, s->db, SCALE_MINI, result);
    if (!rc) {
        table_write(result, FORMAT_MARKDOWN, s->f);
        fputc('\n', s->f);
        char name[256], csv[PATH_MAX_STUDY];
        base_name(path, name, sizeof name);
        snprintf(csv, sizeof csv, "%s/tables/%s.csv", s->l->out_dir, name);
        FILE *out = fopen(csv, "w");
        if (!out) rc = err("cannot write '%s'", csv);
        else {
            table_write(result, FORMAT_CSV, out);
            if (fclose(out) != 0) rc = err("cannot write '%s'", csv);
        }
    }
    free(spec);
    free(result);
    return rc < 0 ? err_context("%s", path) : 0;
}

// The candidates the protocol was chosen from (one seed each), as a table with its CSV.
static int write_protocol_search(struct study *s)
{
    if (!s->l->protocol_search) return 0;
    char dir[PATH_MAX_STUDY];
    snprintf(dir, sizeof dir, "%s/tables", s->l->out_dir);
    if (plot_make_dir(dir) < 0) return -1;
    fprintf(s->f, "### Protocol search\n\nThe protocol was chosen on the dense model alone, before any other row "
            "was trained, at a fixed budget of training images; the candidate with the best class accuracy and "
            "validation loss became the protocol (`sweeps/mini/protocol-search.yaml`, one seed each):\n\n");
    return write_one_table(s, s->l->protocol_search);
}

static int write_tables(struct study *s)
{
    char dir[PATH_MAX_STUDY];
    snprintf(dir, sizeof dir, "%s/tables", s->l->out_dir);
    if (plot_make_dir(dir) < 0) return -1;
    fprintf(s->f, "## Tables\n\nOurs: mean ± 95%% interval over seeds (n); FD is the harness's Frechet distance in "
            "the feature network's space (not FID; see the FD floor above), class accuracy the share of "
            "conditional samples the feature network labels with their class, validation loss the held-out loss "
            "(lower is better). The paper's figures (ImageNet 256, FID50K) are beside ours where the paper has "
            "the row. Each table is also in `tables/<name>.csv`.\n\n");
    for (int i = 0; i < s->l->n_tables; i++)
        if (write_one_table(s, s->l->tables[i]) < 0) return -1;
    return 0;
}

static int write_claims(struct study *s)
{
    s->claims = malloc(sizeof *s->claims);
    s->results = malloc(sizeof *s->results * CLAIMS_MAX);
    if (!s->claims || !s->results) return err("out of memory");
    if (claims_load(s->claims, s->l->claims_path) < 0 || claims_decide(s->claims, s->db, s->results) < 0) return -1;
    fprintf(s->f, "## The paper's claims\n\nFrom `%s` (`promoe claims`): for each seed that both rows have, the "
            "improvement of the first row over the second (positive = the claim's direction), its mean over seeds "
            "and Student t 95%% interval. Verdict: agrees (the interval lies above 0), disagrees (below 0), "
            "inconclusive (it holds 0).\n\n", s->l->claims_path);
    claims_write(s->results, s->claims->n, FORMAT_MARKDOWN, s->f);
    char csv[PATH_MAX_STUDY];
    snprintf(csv, sizeof csv, "%s/tables/claims.csv", s->l->out_dir);
    FILE *out = fopen(csv, "w");
    if (!out) return err("cannot write '%s'", csv);
    claims_write(s->results, s->claims->n, FORMAT_CSV, out);
    fprintf(s->f, "\n");
    return fclose(out) == 0 ? 0 : err("cannot write '%s'", csv);
}

static int write_curves(struct study *s)
{
    char dir[PATH_MAX_STUDY];
    snprintf(dir, sizeof dir, "%s/figures", s->l->out_dir);
    fprintf(s->f, "## Loss curves\n\nTraining loss (mean over seeds; raw faint, and bold its centred moving average over "
            "1/20 of the run: 100 steps of 2000) and the held-out validation loss "
            "(points, every 200 steps). Data and gnuplot scripts beside each PNG in `figures/`.\n\n");
    for (int i = 0; i < s->l->n_figures; i++) {
        const struct study_figure *fig = &s->l->figures[i];
        struct plot_options o = {.out_dir = dir, .run_gnuplot = 1, .name = fig->name, .n_labels = fig->n_labels};
        for (int k = 0; k < fig->n_labels; k++) o.labels[k] = fig->labels[k];
        struct plot_report report = {0};
        if (plot_loss(s->db, s->l->sweep, &o, &report) < 0) return -1;
        fprintf(s->f, "### %s\n\n![training loss](figures/%s.png)\n\n![validation loss](figures/%s-val_loss.png)\n\n",
                fig->caption, fig->name, fig->name);
    }
    return 0;
}

static int copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb");
    if (!in) return 0;
    struct atomic_file af;
    if (atomic_open(&af, to) < 0) return fclose(in), -1;
    char buf[65536];
    size_t n;
    int rc = 0;
    while (!rc && (n = fread(buf, 1, sizeof buf, in)) > 0) rc = atomic_write(&af, buf, n);
    fclose(in);
    if (rc) return atomic_abort(&af), -1;
    return atomic_commit(&af) < 0 ? -1 : 1;
}

static int file_exists(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f) fclose(f);
    return f != NULL;
}

// The end-of-run grid of each method's lowest-seed run, copied beside the report (kept from an
// earlier report when the checkpoint folder is gone).
static int write_samples(struct study *s)
{
    char dir[PATH_MAX_STUDY], from[PATH_MAX_STUDY * 2], to[PATH_MAX_STUDY * 2], ids[SEEDS_MAX][64];
    long long seeds[SEEDS_MAX];
    snprintf(dir, sizeof dir, "%s/samples", s->l->out_dir);
    if (plot_make_dir(dir) < 0) return -1;
    fprintf(s->f, "## Samples\n\nThe end-of-run grid of each method's first seed: EMA weights, cfg 1.5, 25 Euler "
            "steps, one row per class (T-shirt, trouser, pullover, dress, coat, sandal, shirt, sneaker, bag, ankle "
            "boot).\n\n");
    for (int i = 0; i < s->n_labels; i++) {
        int n;
        if (label_runs(s, s->labels[i].label, ids, seeds, &n) < 0) return -1;
        snprintf(to, sizeof to, "%s/%s.png", dir, s->labels[i].label);
        if (n > 0) {
            snprintf(from, sizeof from, "%s/%s/samples.png", s->l->ckpt_dir, ids[0]);
            if (copy_file(from, to) < 0) return -1;
        }
        if (file_exists(to)) fprintf(s->f, "**%s**\n\n![%s](samples/%s.png)\n\n", s->labels[i].label, s->labels[i].label,
                                     s->labels[i].label);
    }
    return 0;
}

// One data block of a label (no block when it has no rows, so gnuplot's indices count blocks with data).
static int write_diversity_block(struct study *s, FILE *dat, const char *label, int *points)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, DIVERSITY_SQL, -1, &st, NULL) != SQLITE_OK) return err("diversity: %s", sqlite3_errmsg(s->db));
    sqlite3_bind_text(st, 1, s->l->sweep, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, label, -1, SQLITE_STATIC);
    *points = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (*points == 0) fprintf(dat, "# label %s: k mean runs\n", label);
        fprintf(dat, "%d %.9g %d\n", sqlite3_column_int(st, 0), sqlite3_column_double(st, 1), sqlite3_column_int(st, 2));
        ++*points;
    }
    if (*points) fputs("\n\n", dat);
    sqlite3_finalize(st);
    return 0;
}

static int hidden_width(struct study *s)
{
    sqlite3_stmt *st;
    int D = 0;
    if (sqlite3_prepare_v2(s->db, HIDDEN_SQL, -1, &st, NULL) != SQLITE_OK) return 0;
    sqlite3_bind_text(st, 1, s->l->sweep, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) D = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return D;
}

// Fig. 1b as a figure: similarity vs k for token choice and ProMoE, and the random level k / D.
static int write_diversity_figure(struct study *s)
{
    static const char *const labels[] = {"dit-moe", "promoe"}, name[] = "fig1b-diversity";
    char dir[PATH_MAX_STUDY];
    snprintf(dir, sizeof dir, "%s/figures", s->l->out_dir);
    FILE *dat, *gp;
    int points[2], D = hidden_width(s);
    if (plot_make_dir(dir) < 0 || plot_open(&dat, dir, name, "dat") < 0) return -1;
    int rc = 0;
    for (int i = 0; i < 2 && !rc; i++) rc = write_diversity_block(s, dat, labels[i], &points[i]);
    if (plot_close(dat, dir, name, "dat") < 0 || rc) return -1;
    fprintf(s->f, "## Fig. 1b: expert diversity\n\n");
    if (points[0] + points[1] == 0 || D <= 0) return fprintf(s->f, "No `promoe svd` rows yet.\n\n"), 0;
    if (plot_open(&gp, dir, name, "gp") < 0) return -1;
    plot_gp_header(gp, name, "Expert diversity: mean subspace similarity of the routed experts (lower = more diverse)",
                   "k (top singular vectors)", "subspace similarity");
    fprintf(gp, "set logscale x 2\nset xrange [1:64]\nset yrange [0:*]\nplot \\\n");
    for (int i = 0, block = 0; i < 2; i++)
        if (points[i])
            fprintf(gp, "  '%s.dat' index %d using 1:2 with linespoints lw 2.5 pt 7 lc rgb '#%s' title '%s', \\\n", name,
                    block++, plot_colour(i), labels[i]);
    fprintf(gp, "  x / %d.0 with lines dt 2 lc rgb '#808080' title 'random subspaces (k / D)'\n", D);
    if (plot_close(gp, dir, name, "gp") < 0 || plot_run_gnuplot(dir, name) < 0) return -1;
    fprintf(s->f, "The mean over expert pairs of ||Ua^T Ub||_F^2 / k for the top-k left singular vectors of the routed "
            "experts' output projections (`promoe svd`, model mean over MoE layers, mean over seeds), against the level of "
            "random subspaces k / D:\n\n![expert diversity](figures/%s.png)\n\n", name);
    return 0;
}

// The t-SNE pictures `make study` leaves in figures/tokens-<label>/.
static void write_token_figures(struct study *s)
{
    const char *labels[] = {"dense", "promoe"};
    fprintf(s->f, "## Fig. 1a: tokens\n\nt-SNE of the tokens at the output of the middle block (100 test images, "
            "model time 500, first seed), coloured by class and by routed expert; the inter/intra-class ratios "
            "over seeds are in the Fig. 1 table above.\n\n");
    for (size_t i = 0; i < sizeof labels / sizeof *labels; i++) {
        char dir[PATH_MAX_STUDY];
        snprintf(dir, sizeof dir, "%s/figures/tokens-%s", s->l->out_dir, labels[i]);
        struct dirent **names;
        int n = scandir(dir, &names, NULL, alphasort);
        for (int k = 0; k < n; k++) {
            const char *name = names[k]->d_name;
            size_t len = strlen(name);
            if (len > 4 && !strcmp(name + len - 4, ".png"))
                fprintf(s->f, "**%s**: ![%s](figures/tokens-%s/%s)\n\n", labels[i], name, labels[i], name);
            free(names[k]);
        }
        if (n >= 0) free(names);
    }
}

static int write_compute(struct study *s)
{
    double train_s = 0;
    int done = 0;
    for (int i = 0; i < s->n_labels; i++) train_s += s->labels[i].train_s, done += s->labels[i].done;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, EVAL_TIME_SQL, -1, &st, NULL) != SQLITE_OK) return err("eval time: %s", sqlite3_errmsg(s->db));
    sqlite3_bind_text(st, 1, s->l->sweep, -1, SQLITE_STATIC);
    int evals = 0;
    double eval_s = 0;
    if (sqlite3_step(st) == SQLITE_ROW) evals = sqlite3_column_int(st, 0), eval_s = sqlite3_column_double(st, 1);
    sqlite3_finalize(st);
    fprintf(s->f, "## Compute used\n\n%d runs done: %.1f hours of training (one thread per run, two runs at once on "
            "the 2-core machine, so about half that in wall time), %d sample evaluations taking %.1f hours.\n",
            done, train_s / 3600, evals, eval_s / 3600);
    return 0;
}

int study_report(sqlite3 *db, const struct study_layout *l)
{
    struct study s = {.db = db, .l = l};
    char path[PATH_MAX_STUDY];
    snprintf(path, sizeof path, "%s/REPORT.md", l->out_dir);
    if (plot_make_dir(l->out_dir) < 0 || read_labels(&s) < 0) return -1;
    struct atomic_file af;
    if (atomic_open(&af, path) < 0) return -1;
    s.f = af.fp;
    write_header(&s);
    int rc = write_protocol(&s);
    if (!rc) rc = write_protocol_search(&s);
    if (!rc) rc = write_pilot(&s);
    if (!rc) rc = write_tables(&s);
    if (!rc) rc = write_claims(&s);
    if (!rc) rc = write_curves(&s);
    if (!rc) rc = write_samples(&s);
    if (!rc) rc = write_diversity_figure(&s);
    if (!rc) write_token_figures(&s);
    if (!rc) rc = write_compute(&s);
    free(s.claims);
    free(s.results);
    if (rc) return atomic_abort(&af), -1;
    return atomic_commit(&af);
}
