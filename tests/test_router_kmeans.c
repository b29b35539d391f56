// K-means routing (ROUTERS.md 3.5) on one MoE layer and in short training runs: one routed expert
// per routed token with gate 1 and none for null-label tokens under conditional routing; the
// assignment is the nearest centroid (brute force, ties to the lower index); after a training
// forward each centroid is the mean of its tokens (unchanged if none); the first draw takes E_r
// distinct routed tokens, uniformly; nothing changes without update_buffers or at inference
// (never-trained centroids are 0: every routed token goes to expert 0); no gradient from the
// router; same plan across runs and thread counts; training lowers the loss, logs the aux/* rows,
// and is bit-identical across 1 and 2 threads and across an interruption and resume.
#include <omp.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "runs.h"
#include "core/error.h"
#include "core/rng.h"
#include "model/dit.h"
#include "model/safetensors.h"
#include "moe/registry.h"
#include "train/trainer.h"

static struct rng test_rng;
static char tmp_dir[] = "/tmp/promoe_test_kmeans_XXXXXX";

// ---- one MoE layer (block 1) with its own weights, gradients and arena ----
struct fixture {
    struct config cfg;
    struct param_table table;
    struct moe_layer L;
    struct arena arena;
    real *w, *g, *x, *y, *centroids, *flag;
    int B, T, D, E, N;
};

static int fixture_open(struct fixture *f, const char *experts, int conditional, int D, int B, int T)
{
    memset(f, 0, sizeof *f);
    config_defaults(&f->cfg);
    char sets[4][64];
    snprintf(sets[0], 64, "model.hidden=%d", D);
    snprintf(sets[1], 64, "model.moe.experts=%s", experts);
    snprintf(sets[2], 64, "model.moe.conditional=%s", conditional ? "true" : "false");
    snprintf(sets[3], 64, "model.moe.router=kmeans");
    for (int i = 0; i < 4; i++)
        if (config_set(&f->cfg, sets[i]) < 0) return -1;
    if (config_set(&f->cfg, "data.num_classes=3") < 0 || moe_create(&f->L, &f->cfg, 1, &f->table) < 0) return -1;
    f->B = B, f->T = T, f->D = D, f->E = f->L.spec.routed, f->N = B * T;
    f->w = calloc(f->table.total, sizeof(real));
    f->g = calloc(f->table.total, sizeof(real));
    f->x = malloc(sizeof(real) * f->N * D);
    f->y = malloc(sizeof(real) * f->N * D);
    params_init(&f->table, f->w, 11);
    moe_bind(&f->L, &f->table, f->w, 0);
    moe_bind(&f->L, &f->table, f->g, 1);
    moe_layout(&f->L, &f->arena, B, T);
    if (arena_allocate(&f->arena) < 0) return -1;
    moe_layout(&f->L, &f->arena, B, T);
    f->centroids = f->w + params_find(&f->table, "blocks.1.mlp.kmeans_centroids")->offset;
    f->flag = f->w + params_find(&f->table, "blocks.1.mlp.kmeans_initialised")->offset;
    for (int i = 0; i < f->N * D; i++) f->x[i] = (real)rng_normal(&test_rng);
    return 0;
}

static void fixture_close(struct fixture *f)
{
    moe_destroy(&f->L);
    params_free(&f->table);
    arena_free(&f->arena);
    free(f->w), free(f->g), free(f->x), free(f->y);
}

static void forward(struct fixture *f, const int *labels, int training, int update, int64_t step)
{
    f->L.training = training;
    f->L.update_buffers = update;
    f->L.step = step;
    moe_forward(&f->L, f->y, f->x, labels, f->B, f->T);
}

// expert[n] = the one routed expert of token n (-1: none; -2: more than one); also checks gates,
// that unrouted tokens reach exactly the unconditional experts, and that tokens ascend within each
// expert (no duplicates). Returns the number of violations.
static int read_plan(const struct fixture *f, const int *routed, int *expert)
{
    const struct routing_plan *p = &f->L.plan;
    int bad = p->dropped != 0, uncond_slots[f->N];
    memset(uncond_slots, 0, sizeof uncond_slots);
    for (int n = 0; n < f->N; n++) expert[n] = -1;
    for (int e = 0; e < p->n_experts; e++)
        for (int s = p->offset[e]; s < p->offset[e + 1]; s++) {
            int n = p->token[s];
            bad += p->gate[s] != 1;
            bad += s > p->offset[e] && p->token[s - 1] >= n;
            if (e >= f->E) uncond_slots[n]++;
            else expert[n] = expert[n] == -1 ? e : -2;
        }
    for (int n = 0; n < f->N; n++) {
        int r = routed[n / f->T];
        bad += r ? expert[n] < 0 || uncond_slots[n] != 0 : expert[n] != -1 || uncond_slots[n] != f->L.spec.uncond;
    }
    return bad;
}

static double squared_distance(const real *a, const real *b, int D)
{
    double s = 0;
    for (int d = 0; d < D; d++) s += ((double)a[d] - b[d]) * ((double)a[d] - b[d]);
    return s;
}

// Brute-force nearest centroid of x (ties to the lower index); *gap = second best - best.
static int nearest(const real *x, const real *centroids, int E, int D, double *gap)
{
    int best = 0;
    double d_best = squared_distance(x, centroids, D), d_second = INFINITY;
    for (int e = 1; e < E; e++) {
        double d = squared_distance(x, centroids + (size_t)e * D, D);
        if (d < d_best) d_second = d_best, d_best = d, best = e;
        else if (d < d_second) d_second = d;
    }
    if (gap) *gap = d_second - d_best;
    return best;
}

// Worst |centroid - mean of its tokens| over experts that got tokens; *empty = experts with none.
static double worst_mean_error(const struct fixture *f, const int *expert, int *empty)
{
    double worst = 0;
    *empty = 0;
    for (int e = 0; e < f->E; e++) {
        int count = 0;
        for (int n = 0; n < f->N; n++) count += expert[n] == e;
        *empty += count == 0;
        for (int d = 0; count && d < f->D; d++) {
            double sum = 0;
            for (int n = 0; n < f->N; n++) sum += expert[n] == e ? f->x[(size_t)n * f->D + d] : 0;
            worst = fmax(worst, fabs(sum / count - f->centroids[(size_t)e * f->D + d]));
        }
    }
    return worst;
}

static void routed_of(const struct fixture *f, const int *labels, int *routed)
{
    for (int b = 0; b < f->B; b++) routed[b] = !(f->L.spec.conditional && labels[b] == f->L.num_classes);
}

// 1 when some choice of one token per expert set, as initial centroids, reproduces the assignment
// (the first forward assigns with the drawn tokens, then moves the centroids to the means).
static int some_draw_explains(const struct fixture *f, const int *expert)
{
    int E = f->E, members[E][f->N], size[E], pick[E];
    for (int e = 0; e < E; e++) size[e] = pick[e] = 0;
    for (int n = 0; n < f->N; n++)
        if (expert[n] >= 0) members[expert[n]][size[expert[n]]++] = n;
    for (int e = 0; e < E; e++)
        if (size[e] == 0) return 0;
    real c[E * f->D];
    for (;;) {
        for (int e = 0; e < E; e++)
            memcpy(c + e * f->D, f->x + (size_t)members[e][pick[e]] * f->D, sizeof(real) * f->D);
        int ok = 1;
        for (int n = 0; ok && n < f->N; n++)
            ok = expert[n] < 0 || nearest(f->x + (size_t)n * f->D, c, E, f->D, NULL) == expert[n];
        if (ok) return 1;
        int e = 0;
        while (e < E && ++pick[e] == size[e]) pick[e++] = 0;
        if (e == E) return 0;
    }
}

// The first training forward: one routed expert per routed token (gate 1), unconditional tokens to
// the unconditional expert only, every expert non-empty (a drawn token is nearest its own
// centroid), a draw that explains the assignment, then centroids = means.
static void test_first_forward(void)
{
    struct fixture f;
    int labels[4] = {0, 3, 2, 1}, routed[4], expert[40];   // label 3 = the null label
    CHECK(fixture_open(&f, "E6A1S1U1", 1, 8, 4, 10) == 0, "fixture: %s", err_message());
    routed_of(&f, labels, routed);
    CHECK(f.flag[0] == 0 && f.centroids[5] == 0, "buffers do not start at 0");
    forward(&f, labels, 1, 1, 0);
    CHECK(f.flag[0] == 1, "initialised flag is %g after the first training forward", (double)f.flag[0]);
    CHECK(read_plan(&f, routed, expert) == 0, "plan breaks the per-token rules");
    CHECK(f.L.plan.n_slots == f.N, "%d slots for %d tokens (top-1, one unconditional expert)", f.L.plan.n_slots, f.N);
    int empty;
    double worst = worst_mean_error(&f, expert, &empty);
    CHECK(empty == 0, "%d experts got no token in the first forward", empty);
    CHECK(worst < 1e-6, "centroids differ from the means of their tokens by %.3g", worst);
    CHECK(some_draw_explains(&f, expert), "no choice of distinct routed tokens explains the first assignment");
    for (int k = 0; k < AUX_COUNT; k++) CHECK(f.L.aux[k] == 0, "auxiliary loss %s is %g", moe_aux_names[k], f.L.aux[k]);
    fixture_close(&f);
}

// Exactly E routed tokens: the draw is a permutation of them (never a null-label token), uniform
// over 240 steps (each token at each centroid 60 times expected, sd 6.7), and a function of step.
static void test_draw_is_uniform_permutation(void)
{
    enum { STEPS = 240 };
    struct fixture f;
    int labels[2] = {1, 3}, counts[4][4] = {{0}}, not_permutation = 0;
    CHECK(fixture_open(&f, "E6A1S1U1", 1, 8, 2, 4) == 0, "fixture: %s", err_message());
    real again[4 * 8];
    for (int step = 0; step < STEPS; step++) {
        f.flag[0] = 0;
        forward(&f, labels, 1, 1, step);
        int used = 0;
        for (int e = 0; e < 4; e++) {
            int match = -1;
            for (int n = 0; n < 4; n++)
                if (memcmp(f.centroids + e * 8, f.x + n * 8, sizeof(real) * 8) == 0) match = n;
            if (match < 0 || used & (1 << match)) not_permutation++;
            else used |= 1 << match, counts[e][match]++;
        }
        if (step != 7) continue;
        memcpy(again, f.centroids, sizeof again);
        f.flag[0] = 0;
        forward(&f, labels, 1, 1, step);
        CHECK(memcmp(again, f.centroids, sizeof again) == 0, "two draws at the same step differ");
    }
    CHECK(not_permutation == 0, "%d centroids are not distinct routed tokens", not_permutation);
    int low = STEPS, high = 0;
    for (int e = 0; e < 4; e++)
        for (int n = 0; n < 4; n++) {
            low = counts[e][n] < low ? counts[e][n] : low;
            high = counts[e][n] > high ? counts[e][n] : high;
        }
    CHECK(low >= 30 && high <= 90, "draw not uniform: counts between %d and %d (expect 60 +- 20)", low, high);
    fixture_close(&f);
}

// Fewer routed tokens than centroids: no draw (flag stays 0), zero centroids send every routed
// token to expert 0, nothing moves.
static void test_too_few_tokens(void)
{
    struct fixture f;
    int labels[2] = {1, 3}, routed[2], expert[6];
    CHECK(fixture_open(&f, "E6A1S1U1", 1, 8, 2, 3) == 0, "fixture: %s", err_message());
    routed_of(&f, labels, routed);
    forward(&f, labels, 1, 1, 0);
    CHECK(read_plan(&f, routed, expert) == 0, "plan breaks the per-token rules");
    CHECK(f.flag[0] == 0, "initialised from 3 routed tokens for 4 centroids");
    int moved = 0, not_zero = 0;
    for (int i = 0; i < 4 * 8; i++) moved += f.centroids[i] != 0;
    for (int n = 0; n < 3; n++) not_zero += expert[n] != 0;
    CHECK(moved == 0 && not_zero == 0, "%d centroid values moved, %d tokens not at expert 0", moved, not_zero);
    fixture_close(&f);
}

// A later training forward: the plan is the brute-force nearest centroid of the centroids before
// the forward; after it, centroids = means, and a far-away centroid that got nothing is unchanged.
static void test_assignment_and_update(void)
{
    struct fixture f;
    int labels[4] = {2, 0, 3, 1}, routed[4], expert[64];
    CHECK(fixture_open(&f, "E7A1S1U1", 1, 12, 4, 16) == 0, "fixture: %s", err_message());
    routed_of(&f, labels, routed);
    forward(&f, labels, 1, 1, 0);
    for (int i = 0; i < f.N * f.D; i++) f.x[i] = (real)rng_normal(&test_rng);
    for (int d = 0; d < f.D; d++) f.centroids[4 * f.D + d] = 100;   // expert 4 will get no token
    real before[5 * 12];
    memcpy(before, f.centroids, sizeof before);
    forward(&f, labels, 1, 1, 1);
    CHECK(read_plan(&f, routed, expert) == 0, "plan breaks the per-token rules");
    int wrong = 0;
    double smallest_gap = INFINITY, gap;
    for (int n = 0; n < f.N; n++) {
        if (!routed[n / f.T]) continue;
        wrong += nearest(f.x + (size_t)n * f.D, before, f.E, f.D, &gap) != expert[n];
        smallest_gap = fmin(smallest_gap, gap);
    }
    CHECK(smallest_gap > 1e-4, "test data has a near tie (gap %.3g): choose other inputs", smallest_gap);
    CHECK(wrong == 0, "%d tokens not at their nearest centroid", wrong);
    int empty;
    double worst = worst_mean_error(&f, expert, &empty);
    CHECK(empty == 1 && memcmp(f.centroids + 4 * f.D, before + 4 * f.D, sizeof(real) * f.D) == 0,
          "%d empty experts; the empty expert's centroid must stay as it was", empty);
    CHECK(worst < 1e-6, "centroids differ from the means of their tokens by %.3g", worst);
    // Ties go to the lower index: duplicate centroid 0 into 1 and 3.
    memcpy(f.centroids + 1 * f.D, f.centroids, sizeof(real) * f.D);
    memcpy(f.centroids + 3 * f.D, f.centroids, sizeof(real) * f.D);
    forward(&f, labels, 1, 0, 2);
    read_plan(&f, routed, expert);
    int at_copies = 0, at_zero = 0;
    for (int n = 0; n < f.N; n++) at_copies += expert[n] == 1 || expert[n] == 3, at_zero += expert[n] == 0;
    CHECK(at_copies == 0 && at_zero > 0, "tied centroids: %d tokens at the copies, %d at expert 0", at_copies, at_zero);
    fixture_close(&f);
}

// update_buffers 0 (training) and inference: buffers bit-identical, before and after the draw;
// inference routes like training with the same centroids; never-trained inference: expert 0.
static void test_frozen(void)
{
    struct fixture f;
    int labels[3] = {3, 0, 2}, routed[3], expert[30], expert_train[30];
    CHECK(fixture_open(&f, "E6A1S1U1", 1, 8, 3, 10) == 0, "fixture: %s", err_message());
    routed_of(&f, labels, routed);
    size_t n = f.table.total;
    real *saved = malloc(sizeof(real) * n);
    memcpy(saved, f.w, sizeof(real) * n);
    forward(&f, labels, 0, 0, 0);
    CHECK(read_plan(&f, routed, expert) == 0, "inference plan breaks the per-token rules");
    int not_zero = 0;
    for (int t = 0; t < f.N; t++) not_zero += routed[t / f.T] && expert[t] != 0;
    CHECK(not_zero == 0, "never-trained inference sent %d tokens elsewhere than expert 0", not_zero);
    for (int training = 0; training <= 1; training++) {
        forward(&f, labels, training, 1 - training, 3);   // inference with update_buffers 1 too
        CHECK(memcmp(saved, f.w, sizeof(real) * n) == 0, "uninitialised buffers changed (training %d)", training);
    }
    forward(&f, labels, 1, 1, 0);
    memcpy(saved, f.w, sizeof(real) * n);
    forward(&f, labels, 0, 1, 5);
    read_plan(&f, routed, expert);
    CHECK(memcmp(saved, f.w, sizeof(real) * n) == 0, "inference changed the buffers");
    forward(&f, labels, 1, 0, 5);
    CHECK(memcmp(saved, f.w, sizeof(real) * n) == 0, "training without update_buffers changed the buffers");
    forward(&f, labels, 1, 1, 5);
    read_plan(&f, routed, expert_train);
    CHECK(memcmp(expert, expert_train, sizeof expert) == 0, "inference and training route differently");
    CHECK(memcmp(saved, f.w, sizeof(real) * n) != 0, "training with update_buffers left the centroids");
    free(saved);
    fixture_close(&f);
}

// Without conditional routing (E13A1S1U0 style) null-label tokens are clustered like the rest and
// count in the means.
static void test_unconditional_clustering(void)
{
    struct fixture f;
    int labels[3] = {3, 0, 3}, routed[3], expert[30];
    CHECK(fixture_open(&f, "E5A1S1U0", 0, 8, 3, 10) == 0, "fixture: %s", err_message());
    routed_of(&f, labels, routed);
    CHECK(routed[0] && routed[2], "null-label samples not routed without conditional routing");
    forward(&f, labels, 1, 1, 0);
    CHECK(read_plan(&f, routed, expert) == 0, "plan breaks the per-token rules");
    int empty;
    double worst = worst_mean_error(&f, expert, &empty);
    CHECK(worst < 1e-6 && empty == 0, "means over all tokens: error %.3g, %d empty experts", worst, empty);
    fixture_close(&f);
}

// Same inputs and buffers: the same plan and centroids, run twice and with 1 and 2 threads
// (D 40 is not a multiple of the update's 16-column blocks).
static void test_determinism(void)
{
    struct fixture f;
    int labels[8] = {0, 1, 2, 3, 0, 1, 3, 2}, routed[8], expert[3][128];
    CHECK(fixture_open(&f, "E14A1S1U1", 1, 40, 8, 16) == 0, "fixture: %s", err_message());
    routed_of(&f, labels, routed);
    size_t n = f.table.total;
    real *start = malloc(sizeof(real) * n), *after[3], *drawn = malloc(sizeof(real) * n);
    memcpy(start, f.w, sizeof(real) * n);
    for (int run = 0; run < 3; run++) {
        memcpy(f.w, start, sizeof(real) * n);
        omp_set_num_threads(run == 2 ? 1 : 2);
        forward(&f, labels, 1, 1, 4);
        if (run == 0) memcpy(drawn, f.w, sizeof(real) * n);
        forward(&f, labels, 1, 1, 5);   // a second step with the drawn centroids
        read_plan(&f, routed, expert[run]);
        after[run] = malloc(sizeof(real) * n);
        memcpy(after[run], f.w, sizeof(real) * n);
    }
    omp_set_num_threads(1);
    CHECK(read_plan(&f, routed, expert[2]) == 0, "plan breaks the per-token rules");
    CHECK(memcmp(expert[0], expert[1], sizeof expert[0]) == 0 && memcmp(after[0], after[1], sizeof(real) * n) == 0,
          "two identical runs differ");
    CHECK(memcmp(expert[0], expert[2], sizeof expert[0]) == 0 && memcmp(after[0], after[2], sizeof(real) * n) == 0,
          "1 and 2 threads differ");
    memcpy(f.w, start, sizeof(real) * n);
    forward(&f, labels, 1, 1, 6);
    CHECK(memcmp(f.w, drawn, sizeof(real) * n) != 0, "the draw does not depend on the step");
    free(drawn);
    for (int run = 0; run < 3; run++) free(after[run]);
    free(start);
    fixture_close(&f);
}

// The router sends no gradient: its backward leaves d_x alone and its buffers get none.
static void test_no_gradient(void)
{
    struct fixture f;
    int labels[2] = {0, 3};
    CHECK(fixture_open(&f, "E6A1S1U1", 1, 8, 2, 8) == 0, "fixture: %s", err_message());
    forward(&f, labels, 1, 1, 0);
    real *d_x = malloc(sizeof(real) * f.N * f.D), *d_y = malloc(sizeof(real) * f.N * f.D);
    for (int i = 0; i < f.N * f.D; i++) d_y[i] = (real)rng_normal(&test_rng);
    moe_backward(&f.L, d_x, d_y, f.x, f.B, f.T);
    real *copy = malloc(sizeof(real) * f.N * f.D);
    memcpy(copy, d_x, sizeof(real) * f.N * f.D);
    f.L.router->backward(&f.L.ctx, f.x, f.L.routed, f.B, f.T, d_x);
    CHECK(memcmp(copy, d_x, sizeof(real) * f.N * f.D) == 0, "router backward changed d_x");
    const struct param_entry *c = params_find(&f.table, "blocks.1.mlp.kmeans_centroids");
    const struct param_entry *flag = params_find(&f.table, "blocks.1.mlp.kmeans_initialised");
    int touched = f.g[flag->offset] != 0, trainable = c->trainable || flag->trainable;
    for (size_t i = 0; i < c->count; i++) touched += f.g[c->offset + i] != 0;
    CHECK(touched == 0 && !trainable, "buffers: %d gradient entries, trainable %d", touched, trainable);
    free(d_x), free(d_y), free(copy);
    fixture_close(&f);
}

// Configurations the router refuses: a load-balancing weight (no scores), top-k above 1.
static double cosine_of(const real *a, const real *b, int D)
{
    double ab = 0, aa = 0, bb = 0;
    for (int d = 0; d < D; d++) ab += (double)a[d] * b[d], aa += (double)a[d] * a[d], bb += (double)b[d] * b[d];
    return ab / (sqrt(aa) * sqrt(bb));
}

// model.moe.kmeans.distance and .gate on frozen centroids: each token goes to the centroid of the
// least d^2 (squared Euclidean distance, or (1 - cos)^2: the largest cosine), with gate 1 or
// softmax(-d^2) at that centroid (within 1e-5, and below 1 for some token, so not one-hot).
static void test_distance_and_gate_options(void)
{
    for (int c = 0; c < 4; c++) {
        int cosine = c & 1, softmax = c >> 1;
        struct fixture f;
        CHECK(fixture_open(&f, "E5A1S1U0", 0, 8, 2, 6) == 0, "fixture: %s", err_message());
        f.cfg.moe_kmeans_distance = cosine ? KMEANS_COSINE : KMEANS_EUCLIDEAN;
        f.cfg.moe_kmeans_gate = softmax ? KMEANS_GATE_SOFTMAX : KMEANS_GATE_ONE;
        for (int i = 0; i < f.E * f.D; i++) f.centroids[i] = (real)(0.7 * rng_normal(&test_rng));
        *f.flag = 1;
        int labels[2] = {0, 1}, bad = 0, below_one = 0;
        forward(&f, labels, 0, 0, 0);
        const struct routing_plan *p = &f.L.plan;
        for (int e = 0; e < f.E; e++)
            for (int s = p->offset[e]; s < p->offset[e + 1]; s++) {
                const real *xn = f.x + (size_t)p->token[s] * f.D;
                double d2[8], sum = 0;
                int best = 0;
                for (int j = 0; j < f.E; j++) {
                    const real *cj = f.centroids + (size_t)j * f.D;
                    d2[j] = cosine ? pow(1 - cosine_of(xn, cj, f.D), 2) : squared_distance(xn, cj, f.D);
                    best = d2[j] < d2[best] ? j : best;
                }
                for (int j = 0; j < f.E; j++) sum += exp(d2[best] - d2[j]);
                double gate = softmax ? 1 / sum : 1;
                bad += best != e || fabs(p->gate[s] - gate) > 1e-5;
                below_one += p->gate[s] < 0.999;
            }
        CHECK(bad == 0 && p->n_slots == f.N, "distance %s, gate %s: %d of %d slots differ", cosine ? "cosine" : "euclidean",
              softmax ? "softmax" : "one", bad, p->n_slots);
        CHECK(softmax ? below_one > 0 : below_one == 0, "gate %s: %d gates below 1", softmax ? "softmax" : "one",
              below_one);
        fixture_close(&f);
    }
}

static void test_refusals(void)
{
    struct fixture f;
    memset(&f, 0, sizeof f);
    config_defaults(&f.cfg);
    const char *sets[] = {"model.hidden=8", "model.moe.experts=E6A1S1U1", "model.moe.conditional=true",
                          "model.moe.router=kmeans", "loss.balance.weight=0.01"};
    for (size_t i = 0; i < sizeof sets / sizeof *sets; i++) config_set(&f.cfg, sets[i]);
    CHECK(moe_create(&f.L, &f.cfg, 1, &f.table) < 0 && strstr(err_message(), "loss.balance.weight"),
          "balance weight accepted: %s", err_message());
    moe_destroy(&f.L);
    params_free(&f.table);
    memset(&f.table, 0, sizeof f.table);
    config_set(&f.cfg, "loss.balance.weight=0");
    config_set(&f.cfg, "model.moe.experts=E6A2S1U1");
    CHECK(moe_create(&f.L, &f.cfg, 1, &f.table) < 0 && strstr(err_message(), "top-k must be 1"),
          "top-2 accepted: %s", err_message());
    moe_destroy(&f.L);
    params_free(&f.table);
}

// The mini configs load, validate and build: Table 8 "w/ Cond." and "w/o Cond.".
static void test_mini_configs(void)
{
    const char *paths[2] = {"experiments/mini/kmeans.yaml", "experiments/mini/kmeans-nocond.yaml"};
    const char *experts[2] = {"E14A1S1U1", "E13A1S1U0"};
    for (int i = 0; i < 2; i++) {
        struct config cfg;
        struct dit m;
        config_defaults(&cfg);
        int ok = config_load_file(&cfg, paths[i]) == 0 && config_validate(&cfg) == 0;
        CHECK(ok, "%s: %s", paths[i], err_message());
        if (!ok) continue;
        CHECK(strcmp(router_name(cfg.moe_router), "kmeans") == 0 && strcmp(cfg.moe_experts, experts[i]) == 0 &&
              cfg.moe_conditional == (i == 0) && cfg.balance_weight == 0, "%s: wrong MoE settings", paths[i]);
        CHECK(dit_create(&m, &cfg, 0) == 0, "%s: %s", paths[i], err_message());
        const struct param_entry *c = params_find(&m.table, "blocks.5.mlp.kmeans_centroids");
        CHECK(c && c->shape[0] == 12 && c->shape[1] == 192 && !c->trainable, "%s: centroid buffer", paths[i]);
        printf("%s: %.3fM tensors in total (buffers included), %.3fM activated\n", paths[i],
               params_count_total(&m.table) / 1e6, params_count_activated(&m.table) / 1e6);
        dit_destroy(&m);
    }
}

// ---- training runs ----
static void tiny_config(struct config *cfg, const char *tag)
{
    config_defaults(cfg);
    const char *sets[] = {"model.hidden=32", "model.depth=2", "model.heads=2", "model.patch=7",
                          "train.batch_size=16", "train.steps=12", "train.lr=1e-3", "log.every=1",
                          "ckpt.every=4", "sample.n=0", "train.ema_decay=0.9",
                          "model.moe.experts=E6A1S1U1", "model.moe.router=kmeans", "model.moe.conditional=true"};
    for (size_t i = 0; i < sizeof sets / sizeof *sets; i++)
        if (config_set(cfg, sets[i]) < 0) fprintf(stderr, "config_set: %s\n", err_message());
    snprintf(cfg->ckpt_dir, sizeof cfg->ckpt_dir, "%s/%s", tmp_dir, tag);
}

static int train(const struct config *cfg, const char *db_name, int resume, int stop_after, struct train_result *r)
{
    char db[256];
    snprintf(db, sizeof db, "%s/%s", tmp_dir, db_name);
    struct train_options o = {.db_path = db, .resume = resume, .stop_after = stop_after};
    int rc = train_run(cfg, &o, r);
    if (rc) fprintf(stderr, "train_run: %s\n", err_message());
    return rc;
}

// The checkpoint's centroids: drawn (flag 1), not zero, the same in the EMA and live weights.
static void check_checkpoint_buffers(const char *path)
{
    struct st_file *f;
    if (st_open(path, &f) < 0) {
        CHECK(0, "cannot open %s", path);
        return;
    }
    const char *dtype;
    int ndim;
    int64_t shape[8];
    const float *flag = st_get(f, "train.blocks.1.mlp.kmeans_initialised", &dtype, &ndim, shape);
    const float *live = st_get(f, "train.blocks.1.mlp.kmeans_centroids", &dtype, &ndim, shape);
    const float *ema = st_get(f, "blocks.1.mlp.kmeans_centroids", &dtype, &ndim, shape);
    CHECK(flag && flag[0] == 1, "checkpoint: centroids not marked initialised");
    int non_zero = 0;
    for (int i = 0; live && i < 4 * 32; i++) non_zero += live[i] != 0;
    CHECK(live && ema && memcmp(live, ema, sizeof(float) * 4 * 32) == 0 && non_zero > 0,
          "checkpoint: EMA centroids must be a copy of the live ones (%d non-zero values)", non_zero);
    st_close(f);
}

static void test_training_determinism(void)
{
    static char first[8192], one_thread[8192], resumed[8192];
    struct config cfg;
    struct train_result r1, r2, r3;
    tiny_config(&cfg, "a");
    cfg.threads = 2;
    CHECK(train(&cfg, "a.db", 0, 0, &r1) == 0, "first run");
    run_losses(tmp_dir, "a.db", r1.run_id, first, sizeof first);
    check_checkpoint_buffers(r1.checkpoint);
    tiny_config(&cfg, "b");
    cfg.threads = 1;
    CHECK(train(&cfg, "b.db", 0, 0, &r2) == 0, "one-thread run");
    run_losses(tmp_dir, "b.db", r2.run_id, one_thread, sizeof one_thread);
    CHECK(strcmp(first, one_thread) == 0 && first[0], "1 and 2 threads differ:\n%s---\n%s", first, one_thread);
    CHECK(same_tensors(r1.checkpoint, r2.checkpoint), "1 and 2 threads give different weights");
    tiny_config(&cfg, "c");
    cfg.threads = 2;
    CHECK(train(&cfg, "c.db", 0, 6, &r3) == 0 && r3.steps_done == 6, "interrupted run");
    CHECK(train(&cfg, "c.db", 1, 0, &r3) == 0 && r3.steps_done == 12, "resumed run");
    run_losses(tmp_dir, "c.db", r3.run_id, resumed, sizeof resumed);
    CHECK(strcmp(first, resumed) == 0, "resumed run differs:\n%s---\n%s", first, resumed);
    CHECK(same_tensors(r1.checkpoint, r3.checkpoint), "resumed run gives different weights");
}

// 150 steps (one thread: quick on a busy machine): the mean loss of the last 20 steps below 0.75
// of the first 20; aux/* rows logged (all 0: k-means has no auxiliary loss), so loss_total = loss.
static void test_training_lowers_loss(void)
{
    struct config cfg;
    struct train_result r;
    char sql[512];
    tiny_config(&cfg, "learn");
    const char *sets[] = {"model.hidden=64", "train.steps=150", "train.batch_size=32", "ckpt.every=0",
                          "train.threads=1"};
    for (size_t i = 0; i < sizeof sets / sizeof *sets; i++) config_set(&cfg, sets[i]);
    CHECK(train(&cfg, "learn.db", 0, 0, &r) == 0, "training run");
    const char *ratio_sql =
        "SELECT (SELECT avg(value) FROM (SELECT value FROM metrics WHERE run_id='%s' AND name='loss' "
        "ORDER BY step DESC LIMIT 20)) / (SELECT avg(value) FROM (SELECT value FROM metrics WHERE "
        "run_id='%s' AND name='loss' ORDER BY step LIMIT 20))";
    snprintf(sql, sizeof sql, ratio_sql, r.run_id, r.run_id);
    double ratio = run_query(tmp_dir, "learn.db", sql);
    printf("kmeans rf: loss %.4f -> %.4f, last/first 20-step mean ratio %.3f\n", r.first_loss, r.last_loss, ratio);
    CHECK(ratio > 0 && ratio < 0.75, "loss ratio %.3f is not below 0.75", ratio);
    for (int k = 0; k < AUX_COUNT; k++) {
        snprintf(sql, sizeof sql, "SELECT count(*) FROM metrics WHERE run_id='%s' AND name='aux/%s' AND value = 0",
                 r.run_id, moe_aux_names[k]);
        CHECK(run_query(tmp_dir, "learn.db", sql) == 150, "aux/%s: not 150 zero rows", moe_aux_names[k]);
    }
    snprintf(sql, sizeof sql, "SELECT count(*) FROM metrics a JOIN metrics b ON a.run_id = b.run_id AND "
             "a.step = b.step WHERE a.run_id='%s' AND a.name='loss' AND b.name='loss_total' AND a.value = b.value",
             r.run_id);
    CHECK(run_query(tmp_dir, "learn.db", sql) == 150, "loss_total differs from loss");
}

int main(void)
{
    if (!mkdtemp(tmp_dir)) return 1;
    rng_init(&test_rng, 2024, 0, RNG_TEST, 0);
    omp_set_num_threads(1);   // except where 1 and 2 threads are compared: quick on a busy machine
    test_first_forward();
    test_draw_is_uniform_permutation();
    test_too_few_tokens();
    test_assignment_and_update();
    test_frozen();
    test_unconditional_clustering();
    test_determinism();
    test_no_gradient();
    test_distance_and_gate_options();
    test_refusals();
    test_mini_configs();
    test_training_determinism();
    test_training_lowers_loss();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp_dir);
    if (check_failed == 0 && system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp_dir);
    return test_summary("test_router_kmeans");
}
