// Tests of the classification router (ROUTERS.md 3.6) on one MoE layer and in training: every
// token of a routed sample goes to the argmax of an independently computed classifier score, with
// the activated score as gate; the cross-entropy matches a double-precision computation; null
// samples bypass the router (or, unconditional, are routed but left out of the loss); plans are
// pure functions of the inputs and thread count; inference routes alike without a loss; the map
// loader names file, line and problem; a short Fashion-MNIST run learns and logs aux/cls.
#include <omp.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "core/error.h"
#include "core/rng.h"
#include "model/dit.h"
#include "moe/moe.h"
#include "train/trainer.h"

#define FASHION_MAP "data/superclasses/fashion-mnist.txt"
#define IMAGENET_MAP "data/superclasses/imagenet-12.txt"
#define GATE_TOLERANCE 1e-5    // float router versus double reference, relative
#define LOSS_TOLERANCE 1e-5
#define WEIGHT_STD 0.5         // random weights everywhere, so samples spread over the experts

enum { B = 8, T = 6, D = 16, CLASSES = 10, NULL_LABEL = CLASSES, MAX_SUPER = 16 };
static const int labels[B] = {0, NULL_LABEL, 3, 5, 8, NULL_LABEL, 9, 2};
static char tmp_dir[] = "/tmp/promoe_test_cls_XXXXXX";

// ---- one MoE layer with random weights ----
struct fixture {
    struct config cfg;          // the layer points into it: a fixture does not move
    struct param_table table;
    struct moe_layer L;
    struct arena arena;
    real *w, *g;
};

static int fixture_create(struct fixture *f, const char *const *sets, int n_sets)
{
    memset(f, 0, sizeof *f);
    config_defaults(&f->cfg);
    const char *base[] = {"model.hidden=16", "model.moe.router=classification", "model.moe.experts=E6A1S1U1",
                          "model.moe.conditional=true", "model.moe.superclasses=" FASHION_MAP, "loss.cls.weight=0.8"};
    for (size_t i = 0; i < sizeof base / sizeof *base; i++) config_set(&f->cfg, base[i]);
    for (int i = 0; i < n_sets; i++)
        if (config_set(&f->cfg, sets[i]) < 0) return -1;
    if (moe_create(&f->L, &f->cfg, 1, &f->table) < 0) return -1;
    f->w = calloc(f->table.total, sizeof(real));
    f->g = calloc(f->table.total, sizeof(real));
    struct rng r;
    rng_init(&r, 99, 0, RNG_TEST, 0);
    for (size_t i = 0; i < f->table.total; i++) f->w[i] = (real)(rng_normal(&r) * WEIGHT_STD);
    moe_bind(&f->L, &f->table, f->w, 0);
    moe_bind(&f->L, &f->table, f->g, 1);
    moe_layout(&f->L, &f->arena, B, T);
    if (arena_allocate(&f->arena) < 0) return -1;
    moe_layout(&f->L, &f->arena, B, T);
    f->L.training = 1;
    f->L.update_buffers = 1;
    return 0;
}

static void fixture_destroy(struct fixture *f)
{
    moe_destroy(&f->L);
    params_free(&f->table);
    arena_free(&f->arena);
    free(f->w);
    free(f->g);
}

static void random_input(real *x, size_t n, uint32_t index)
{
    struct rng r;
    rng_init(&r, 7, 0, RNG_TEST, index);
    for (size_t i = 0; i < n; i++) x[i] = (real)rng_normal(&r);
}

// The map as the test reads it (independent of the router's loader); returns N_c.
static int read_map(const char *path, int *map, int num_classes)
{
    FILE *f = fopen(path, "r");
    char line[256];
    int n_super = 0;
    for (int c = 0; c < num_classes; c++) map[c] = -1;
    while (f && fgets(line, sizeof line, f)) {
        int c, s;
        if (line[0] != '#' && sscanf(line, "%d %d", &c, &s) == 2 && c >= 0 && c < num_classes) {
            map[c] = s;
            n_super = s + 1 > n_super ? s + 1 : n_super;
        }
    }
    if (f) fclose(f);
    return n_super;
}

// ---- reference: classifier on the token mean, in double ----
struct reference {
    int routed[B], choice[B];
    double gate[B], loss;
};

static double activate(const double *z, int E, int e, int activation)
{
    if (activation == ACTIVATION_IDENTITY) return z[e];
    if (activation == ACTIVATION_SIGMOID) return 1 / (1 + exp(-z[e]));
    double max = z[0], sum = 0;
    for (int k = 1; k < E; k++) max = fmax(max, z[k]);
    for (int k = 0; k < E; k++) sum += exp(z[k] - max);
    return exp(z[e] - max) / sum;
}

static void reference(const struct fixture *f, const real *x, struct reference *ref)
{
    const real *W = f->w + params_find(&f->table, "blocks.1.mlp.classifier.weight")->offset;
    const real *bias = f->w + params_find(&f->table, "blocks.1.mlp.classifier.bias")->offset;
    int E = f->L.spec.routed, map[CLASSES], targets = 0;
    read_map(f->cfg.moe_superclasses, map, CLASSES);
    double sum = 0;
    for (int b = 0; b < B; b++) {
        double mean[D] = {0}, z[MAX_SUPER];
        for (int t = 0; t < T; t++)
            for (int d = 0; d < D; d++) mean[d] += x[(b * T + t) * D + d] / (double)T;
        for (int e = 0; e < E; e++) {
            z[e] = bias[e];
            for (int d = 0; d < D; d++) z[e] += W[e * D + d] * mean[d];
        }
        ref->choice[b] = 0;
        for (int e = 1; e < E; e++) ref->choice[b] = z[e] > z[ref->choice[b]] ? e : ref->choice[b];
        ref->gate[b] = activate(z, E, ref->choice[b], f->L.spec.activation);
        ref->routed[b] = !(f->cfg.moe_conditional && labels[b] == NULL_LABEL);
        if (ref->routed[b] && labels[b] != NULL_LABEL) {
            sum -= log(activate(z, E, map[labels[b]], ACTIVATION_SOFTMAX));
            targets++;
        }
    }
    ref->loss = targets ? f->cfg.cls_weight * sum / targets : 0;
}

// ---- plan invariants ----
static void check_plan(const struct fixture *f, const struct reference *ref, const char *what)
{
    const struct routing_plan *p = &f->L.plan;
    int R = f->L.spec.routed, seen[B * T] = {0}, expert_of[B * T], order = 0, wrong_expert = 0, wrong_gate = 0;
    int leaks = 0, worst_token = -1;
    double worst = 0;
    for (int e = 0; e < p->n_experts; e++)
        for (int s = p->offset[e]; s < p->offset[e + 1]; s++) {
            int n = p->token[s], b = n / T;
            seen[n]++;
            expert_of[n] = e;
            order += s > p->offset[e] && n <= p->token[s - 1];   // ascending: no duplicate in an expert
            if (!ref->routed[b]) {
                leaks += e < R || p->gate[s] != 1;
                continue;
            }
            leaks += e >= R;
            wrong_expert += e != ref->choice[b];
            double error = fabs(p->gate[s] - ref->gate[b]) / fmax(1, fabs(ref->gate[b]));
            if (error > worst) worst = error, worst_token = n;
            wrong_gate += error > GATE_TOLERANCE;
        }
    int missing = 0, split = 0;
    for (int n = 0; n < B * T; n++) {
        missing += seen[n] != 1;
        split += seen[n] == 1 && seen[n - n % T] == 1 && expert_of[n] != expert_of[n - n % T];
    }
    CHECK(p->dropped == 0, "%s: %d slots dropped", what, p->dropped);
    CHECK(missing == 0, "%s: %d tokens not in exactly one expert", what, missing);
    CHECK(split == 0, "%s: %d tokens in another expert than their sample's first token", what, split);
    CHECK(order == 0, "%s: tokens not strictly ascending within an expert (%d)", what, order);
    CHECK(wrong_expert == 0, "%s: %d routed tokens not at the argmax of the reference scores", what, wrong_expert);
    CHECK(wrong_gate == 0, "%s: %d gates differ from the reference, worst %.3g at token %d", what, wrong_gate,
          worst, worst_token);
    CHECK(leaks == 0, "%s: %d tokens cross the routed / unconditional boundary", what, leaks);
}

static int distinct_choices(const struct reference *ref)
{
    int used[MAX_SUPER] = {0}, n = 0;
    for (int b = 0; b < B; b++)
        if (ref->routed[b] && !used[ref->choice[b]]++) n++;
    return n;
}

static void test_routing(const char *activation, const char *experts, int conditional)
{
    char set_activation[64], set_experts[64], what[128];
    snprintf(set_activation, sizeof set_activation, "model.moe.activation=%s", activation);
    snprintf(set_experts, sizeof set_experts, "model.moe.experts=%s", experts);
    snprintf(what, sizeof what, "%s %s conditional %d", activation, experts, conditional);
    const char *sets[] = {set_activation, set_experts, conditional ? "model.moe.conditional=true"
                                                                     : "model.moe.conditional=false"};
    struct fixture f;
    if (fixture_create(&f, sets, 3) < 0) {
        CHECK(0, "%s: %s", what, err_message());
        return;
    }
    static real x[B * T * D], y[B * T * D];
    random_input(x, B * T * D, 1);
    moe_forward(&f.L, y, x, labels, B, T);
    struct reference ref;
    reference(&f, x, &ref);
    check_plan(&f, &ref, what);
    CHECK(distinct_choices(&ref) >= 2, "%s: all samples chose one expert; the test shows little", what);
    double loss = f.L.aux[AUX_CLS];
    CHECK(fabs(loss - ref.loss) <= LOSS_TOLERANCE * fabs(ref.loss) && ref.loss > 0,
          "%s: cross-entropy %.9g, reference %.9g", what, loss, ref.loss);
    double others = 0;
    for (int k = 0; k < AUX_COUNT; k++) others += k == AUX_CLS ? 0 : fabs(f.L.aux[k]);
    CHECK(others == 0, "%s: other auxiliary losses %.3g", what, others);
    fixture_destroy(&f);
}

// ---- determinism: same plan, losses and gradients twice, and with 1 and 2 threads ----
struct snapshot {
    int offset[MAX_SUPER], token[B * T];
    real gate[B * T], d_x[B * T * D], *grads;
    double aux;
};

static void run_once(struct fixture *f, const real *x, const real *d_y, struct snapshot *s)
{
    static real y[B * T * D];
    memset(f->g, 0, sizeof(real) * f->table.total);
    moe_forward(&f->L, y, x, labels, B, T);
    moe_backward(&f->L, s->d_x, d_y, x, B, T);
    memcpy(s->offset, f->L.plan.offset, sizeof(int) * (f->L.plan.n_experts + 1));
    memcpy(s->token, f->L.plan.token, sizeof(int) * f->L.plan.n_slots);
    memcpy(s->gate, f->L.plan.gate, sizeof(real) * f->L.plan.n_slots);
    s->grads = malloc(sizeof(real) * f->table.total);
    memcpy(s->grads, f->g, sizeof(real) * f->table.total);
    s->aux = f->L.aux[AUX_CLS];
}

static int same(const struct snapshot *a, const struct snapshot *b, size_t n_params)
{
    return memcmp(a->offset, b->offset, sizeof a->offset) == 0 && memcmp(a->token, b->token, sizeof a->token) == 0 &&
           memcmp(a->gate, b->gate, sizeof a->gate) == 0 && memcmp(a->d_x, b->d_x, sizeof a->d_x) == 0 &&
           memcmp(a->grads, b->grads, sizeof(real) * n_params) == 0 && a->aux == b->aux;
}

static void test_determinism(void)
{
    struct fixture f;
    if (fixture_create(&f, NULL, 0) < 0) {
        CHECK(0, "determinism: %s", err_message());
        return;
    }
    static real x[B * T * D], d_y[B * T * D];
    static struct snapshot first, second, one_thread;
    random_input(x, B * T * D, 2);
    random_input(d_y, B * T * D, 3);
    omp_set_num_threads(2);
    run_once(&f, x, d_y, &first);
    run_once(&f, x, d_y, &second);
    omp_set_num_threads(1);
    run_once(&f, x, d_y, &one_thread);
    omp_set_num_threads(2);
    CHECK(same(&first, &second, f.table.total), "two identical forwards/backwards differ");
    CHECK(same(&first, &one_thread, f.table.total), "1 and 2 threads differ");
    free(first.grads);
    free(second.grads);
    free(one_thread.grads);
    fixture_destroy(&f);
}

// ---- inference: the same argmax routing, no loss ----
static void test_inference(void)
{
    struct fixture f;
    if (fixture_create(&f, NULL, 0) < 0) {
        CHECK(0, "inference: %s", err_message());
        return;
    }
    static real x[B * T * D], y_train[B * T * D], y_infer[B * T * D];
    static int token[B * T];
    static real gate[B * T];
    random_input(x, B * T * D, 4);
    moe_forward(&f.L, y_train, x, labels, B, T);
    memcpy(token, f.L.plan.token, sizeof token);
    memcpy(gate, f.L.plan.gate, sizeof gate);
    double train_loss = f.L.aux[AUX_CLS];
    f.L.training = 0;
    f.L.update_buffers = 0;
    moe_forward(&f.L, y_infer, x, labels, B, T);
    struct reference ref;
    reference(&f, x, &ref);
    check_plan(&f, &ref, "inference");
    double aux = 0;
    for (int k = 0; k < AUX_COUNT; k++) aux += fabs(f.L.aux[k]);
    CHECK(aux == 0 && train_loss > 0, "inference: auxiliary losses %.3g (training %.3g)", aux, train_loss);
    CHECK(memcmp(token, f.L.plan.token, sizeof token) == 0 && memcmp(gate, f.L.plan.gate, sizeof gate) == 0,
          "inference plan differs from the training plan");
    CHECK(memcmp(y_train, y_infer, sizeof y_train) == 0, "inference output differs from the training output");
    fixture_destroy(&f);
}

// ---- the map loader ----
static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

// Creates a layer (4 classes, 3 routed experts) over a map with `text`; expect NULL = success,
// otherwise a message containing `expect` and the file's path.
static void check_map(const char *name, const char *text, const char *expect)
{
    char path[128], set[192];
    snprintf(path, sizeof path, "%s/%s.txt", tmp_dir, name);
    if (text) write_text(path, text);
    snprintf(set, sizeof set, "model.moe.superclasses=%s", path);
    const char *sets[] = {"data.num_classes=4", "model.moe.experts=E5A1S1U1", set};
    struct config cfg;
    config_defaults(&cfg);
    for (int i = 0; i < 3; i++) config_set(&cfg, sets[i]);
    config_set(&cfg, "model.moe.router=classification");
    config_set(&cfg, "model.moe.conditional=true");
    config_set(&cfg, "model.hidden=16");
    struct param_table table = {0};
    struct moe_layer L;
    err_clear();
    int rc = moe_create(&L, &cfg, 1, &table);
    if (!expect) CHECK(rc == 0, "map '%s' refused: %s", name, err_message());
    else
        CHECK(rc < 0 && strstr(err_message(), expect) && strstr(err_message(), path),
              "map '%s': rc %d, message '%s', expected '%s' and the path", name, rc, err_message(), expect);
    moe_destroy(&L);
    params_free(&table);
    unlink(path);
}

static void test_map_errors(void)
{
    check_map("ok", "# header\n0 0\n\n1 1   # comment\r\n  2 2\t\n3 0\n", NULL);
    check_map("missing", "0 0\n1 1\n2 2\n", "': missing class 3");
    check_map("empty", "# nothing\n", "missing class 0");
    check_map("twice", "0 0\n1 1\n2 2\n1 0\n3 1\n", "line 4: class 1 given twice (first at line 2)");
    check_map("super_range", "0 0\n1 1\n2 13\n3 2\n", "line 3: superclass 13 out of range 0..3");
    check_map("super_negative", "0 -1\n", "line 1: superclass -1 out of range");
    check_map("class_range", "0 0\n7 1\n", "line 2: class 7 out of range 0..3");
    check_map("not_integer", "0 0\n1 one\n", "line 2: expected 'class superclass' (two integers), got '1 one'");
    check_map("three_fields", "0 0 0\n", "line 1: expected 'class superclass'");
    check_map("one_field", "0 0\n1\n", "line 2: expected 'class superclass'");
    check_map("unused", "0 0\n1 2\n2 2\n3 0\n", "superclass 1 has no class");
    check_map("mismatch", "0 0\n1 1\n2 1\n3 0\n", "N_c 2 does not match 3 routed experts");
    check_map("absent", NULL, "cannot open: No such file or directory");
}

// N_c against the routed experts, refused when the model is created; the message names the file.
static void test_model_creation(void)
{
    struct config cfg;
    struct dit m;
    config_defaults(&cfg);
    const char *sets[] = {"model.hidden=16", "model.depth=2", "model.heads=2", "model.patch=7",
                          "model.moe.router=classification", "model.moe.conditional=true",
                          "model.moe.experts=E14A1S1U1", "model.moe.superclasses=" FASHION_MAP};
    for (size_t i = 0; i < sizeof sets / sizeof *sets; i++) config_set(&cfg, sets[i]);
    err_clear();
    CHECK(dit_create(&m, &cfg, 0) < 0 && strstr(err_message(), "'" FASHION_MAP "'") &&
              strstr(err_message(), "N_c 4 does not match 12 routed experts"),
          "12 routed experts over the 4 Fashion-MNIST superclasses: '%s'", err_message());
    dit_destroy(&m);
    config_set(&cfg, "model.moe.experts=E6A1S1U1");
    CHECK(dit_create(&m, &cfg, 2) == 0, "Fashion-MNIST map with E6A1S1U1 refused: %s", err_message());
    CHECK(params_find(&m.table, "blocks.1.mlp.classifier.weight") &&
              params_find(&m.table, "blocks.1.mlp.classifier.weight")->shape[0] == 4 &&
              params_find(&m.table, "blocks.1.mlp.classifier.bias")->trainable,
          "classifier tensors missing or misshapen");
    dit_destroy(&m);
}

// The shipped maps: Fashion-MNIST's four groups and MaskCon's 12 ImageNet superclasses.
static void test_shipped_maps(void)
{
    int fashion[CLASSES], expected[CLASSES] = {0, 1, 0, 1, 0, 2, 0, 2, 3, 2};
    CHECK(read_map(FASHION_MAP, fashion, CLASSES) == 4 && memcmp(fashion, expected, sizeof expected) == 0,
          "Fashion-MNIST map is not tops / bottoms and dresses / footwear / bags");
    static int imagenet[1000];
    const int sizes[12] = {61, 123, 59, 95, 60, 130, 70, 53, 105, 71, 93, 80};
    int count[12] = {0}, bad = 0, dogs = 1;
    CHECK(read_map(IMAGENET_MAP, imagenet, 1000) == 12, "ImageNet map does not have 12 superclasses");
    for (int c = 0; c < 1000; c++) {
        if (imagenet[c] < 0 || imagenet[c] >= 12) bad++;
        else count[imagenet[c]]++;
    }
    for (int c = 151; c <= 268; c++) dogs &= imagenet[c] == imagenet[151];
    CHECK(bad == 0 && memcmp(count, sizes, sizeof sizes) == 0 && dogs,
          "ImageNet map: %d bad classes, superclass sizes or the dogs' group (151-268) differ from MaskCon", bad);
    struct config cfg;
    struct dit m;
    config_defaults(&cfg);
    const char *sets[] = {"model.hidden=16", "model.depth=2", "model.heads=2", "model.patch=7", "data.num_classes=1000",
                          "model.moe.router=classification", "model.moe.conditional=true",
                          "model.moe.experts=E14A1S1U1", "model.moe.superclasses=" IMAGENET_MAP};
    for (size_t i = 0; i < sizeof sets / sizeof *sets; i++) config_set(&cfg, sets[i]);
    CHECK(dit_create(&m, &cfg, 0) == 0, "ImageNet map with E14A1S1U1 refused: %s", err_message());
    dit_destroy(&m);
}

// ---- a short training run ----
static double metric_mean(const char *db_path, const char *run_id, const char *name, int last, int window,
                          int *rows)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT avg(value), (SELECT count(*) FROM metrics WHERE run_id='%s' AND name='%s') FROM "
             "(SELECT value FROM metrics WHERE run_id='%s' AND name='%s' ORDER BY step %s LIMIT %d)",
             run_id, name, run_id, name, last ? "DESC" : "ASC", window);
    sqlite3 *db;
    sqlite3_stmt *st;
    double mean = -1;
    *rows = 0;
    if (sqlite3_open(db_path, &db) == SQLITE_OK && sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW) {
            mean = sqlite3_column_double(st, 0);
            *rows = sqlite3_column_int(st, 1);
        }
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return mean;
}

enum { TRAIN_STEPS = 200, WINDOW = 30 };
#define MAX_LOSS_RATIO 0.75    // last / first 30-step mean of the diffusion loss
#define MAX_CLS_RATIO 0.1      // aux/cls: the labels reach the MoE input through adaLN, so the
                               // classifier learns them almost perfectly (1.36 -> 0.002 here)

static void test_training(void)
{
    struct config cfg;
    config_defaults(&cfg);
    const char *sets[] = {"model.hidden=32", "model.depth=2", "model.heads=2", "model.patch=7",
                          "train.batch_size=32", "train.lr=1e-3", "log.every=1", "ckpt.every=0", "sample.n=0",
                          "train.ema_decay=0.9", "model.moe.experts=E6A1S1U1", "model.moe.router=classification",
                          "model.moe.conditional=true", "model.moe.superclasses=" FASHION_MAP,
                          // results do not depend on it; one thread avoids spinning barriers on a busy machine
                          "train.threads=1"};
    for (size_t i = 0; i < sizeof sets / sizeof *sets; i++)
        if (config_set(&cfg, sets[i]) < 0) CHECK(0, "config: %s", err_message());
    cfg.steps = TRAIN_STEPS;
    snprintf(cfg.ckpt_dir, sizeof cfg.ckpt_dir, "%s/ckpt", tmp_dir);
    char db[256];
    snprintf(db, sizeof db, "%s/train.db", tmp_dir);
    struct train_options o = {.db_path = db};
    struct train_result r;
    int rc = train_run(&cfg, &o, &r);
    CHECK(rc == 0, "training run: %s", err_message());
    if (rc) return;
    int rows, cls_rows;
    double loss_ratio = metric_mean(db, r.run_id, "loss", 1, WINDOW, &rows) /
                        metric_mean(db, r.run_id, "loss", 0, WINDOW, &rows);
    double cls_first = metric_mean(db, r.run_id, "aux/cls", 0, WINDOW, &cls_rows);
    double cls_last = metric_mean(db, r.run_id, "aux/cls", 1, WINDOW, &cls_rows);
    printf("classification training: loss ratio %.3f, aux/cls %.3f -> %.3f (ln 4 = %.3f)\n", loss_ratio, cls_first,
           cls_last, log(4.0));
    CHECK(loss_ratio > 0 && loss_ratio < MAX_LOSS_RATIO, "loss ratio %.3f is not below %.2f", loss_ratio,
          MAX_LOSS_RATIO);
    CHECK(cls_rows == TRAIN_STEPS, "aux/cls has %d rows, expected %d", cls_rows, TRAIN_STEPS);
    CHECK(cls_first > 0 && cls_last < MAX_CLS_RATIO * cls_first, "aux/cls %.3f -> %.3f: ratio not below %.2f",
          cls_first, cls_last, MAX_CLS_RATIO);
}

int main(void)
{
    if (!mkdtemp(tmp_dir)) return 1;
    omp_set_num_threads(2);
    test_routing("softmax", "E6A1S1U1", 1);
    test_routing("identity", "E6A1S1U1", 1);
    test_routing("sigmoid", "E6A1S1U1", 1);
    test_routing("softmax", "E4A1S0U0", 0);   // null-label samples routed, left out of the loss
    test_determinism();
    test_inference();
    test_map_errors();
    test_model_creation();
    test_shipped_maps();
    test_training();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp_dir);
    if (check_failed == 0 && system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp_dir);
    return test_summary("test_router_classification");
}
