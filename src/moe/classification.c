// Classification routing ("explicit guidance", ROUTERS.md 3.6): a classifier Linear(D -> N_c) per
// MoE layer scores each sample's token mean; all tokens of the sample go to the superclass expert
// with the highest score, gated by the activated score there (softmax by default). In training a
// cross-entropy against the superclass of the sample's label (loss.cls.weight) teaches the
// classifier. The class -> superclass map (model.moe.superclasses) is read once at set-up, and its
// N_c superclasses must be the N_c routed experts.
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "moe/router.h"
#include "moe/pool.h"
#include "moe/scores.h"
#include "nn/linear.h"

struct classification {
    real *w, *b, *g_w, *g_b;   // classifier weight [N_c, D], bias [N_c], and their gradients
    real *x_mean;              // [B, D] xbar_b: mean of sample b's tokens
    real *z, *s;               // [B, N_c] Sbar (raw classifier scores) and activated scores
    real *d_s, *d_z;           // [B, N_c]
    real *d_x_mean;            // [B, D]
    int *choice;               // [B] superclass expert of each sample (argmax of Sbar)
    int superclass[];          // [num_classes] class -> superclass, from the map file
};

// ---- the class -> superclass map file ----

// Parses "class superclass" (a '#' comment already cut off); 1 = a pair, 0 = blank, -1 = malformed.
static int parse_pair(const char *text, long *class_id, long *superclass_id)
{
    char *end;
    const char *p = text;
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') p++;
    if (!*p) return 0;
    errno = 0;
    *class_id = strtol(p, &end, 10);
    if (end == p || errno) return -1;
    p = end;
    *superclass_id = strtol(p, &end, 10);
    if (end == p || errno) return -1;
    for (p = end; *p; p++)
        if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') return -1;
    return 1;
}

// Records one pair of line `line` in map [num_classes]; first_line [num_classes] (0 = not yet
// given) finds duplicates. Superclass ids are bounded by num_classes: each needs a class.
static int map_add(const char *path, int line, long class_id, long superclass_id, int num_classes, int *map,
                   int *first_line)
{
    if (class_id < 0 || class_id >= num_classes)
        return err("superclass map '%s' line %d: class %ld out of range 0..%d (data.num_classes %d)", path, line,
                   class_id, num_classes - 1, num_classes);
    if (first_line[class_id])
        return err("superclass map '%s' line %d: class %ld given twice (first at line %d)", path, line, class_id,
                   first_line[class_id]);
    if (superclass_id < 0 || superclass_id >= num_classes)
        return err("superclass map '%s' line %d: superclass %ld out of range 0..%d", path, line, superclass_id,
                   num_classes - 1);
    first_line[class_id] = line;
    map[class_id] = (int)superclass_id;
    return 0;
}

// Every class given; superclass ids 0..N_c-1 all used. Returns N_c.
static int map_check(const char *path, int num_classes, const int *map, const int *first_line)
{
    int n_super = 0;
    for (int c = 0; c < num_classes; c++) {
        if (!first_line[c]) return err("superclass map '%s': missing class %d", path, c);
        if (map[c] + 1 > n_super) n_super = map[c] + 1;
    }
    for (int k = 0; k < n_super; k++) {
        int used = 0;
        for (int c = 0; c < num_classes && !used; c++) used = map[c] == k;
        if (!used)
            return err("superclass map '%s': superclass %d has no class (ids must be 0..N_c-1 = 0..%d, all used)",
                       path, k, n_super - 1);
    }
    return n_super;
}

// Reads the lines of an open map file into map [num_classes]; returns N_c or -1.
static int map_read(FILE *f, const char *path, int num_classes, int *map, int *first_line)
{
    char *text = NULL;
    size_t size = 0;
    int line = 0, rc = 0;
    while (rc == 0 && getline(&text, &size, f) >= 0) {
        line++;
        char *comment = strchr(text, '#');
        if (comment) *comment = '\0';
        long class_id, superclass_id;
        int kind = parse_pair(text, &class_id, &superclass_id);
        if (kind < 0) {
            text[strcspn(text, "\r\n")] = '\0';
            rc = err("superclass map '%s' line %d: expected 'class superclass' (two integers), got '%s'", path,
                     line, text);
        } else if (kind > 0) {
            rc = map_add(path, line, class_id, superclass_id, num_classes, map, first_line);
        }
    }
    free(text);
    if (rc == 0 && ferror(f)) rc = err("superclass map '%s': read error: %s", path, strerror(errno));
    return rc < 0 ? -1 : map_check(path, num_classes, map, first_line);
}

// Loads the map file at path into map [num_classes]; returns N_c, or -1 with a message naming
// the file, the line and the problem.
static int superclass_map_load(const char *path, int num_classes, int *map)
{
    FILE *f = fopen(path, "r");
    if (!f) return err("superclass map '%s': cannot open: %s", path, strerror(errno));
    int *first_line = calloc(num_classes, sizeof *first_line);
    int n_super = first_line ? map_read(f, path, num_classes, map, first_line) : err("out of memory");
    free(first_line);
    fclose(f);
    return n_super;
}

// ---- the router ----

static void tensor_name(char *out, const char *prefix, const char *suffix)
{
    snprintf(out, PARAM_NAME_MAX + 32, "%s.classifier.%s", prefix, suffix);
}

// Loads the map (set-up, once per layer), then registers the classifier: Xavier weight, zero bias
// (ROUTERS.md 3.6 [R]: like every Linear of the code base).
static int cls_add_params(struct router_context *L, struct param_table *t, const char *prefix)
{
    struct classification *r = calloc(1, sizeof *r + sizeof(int) * L->num_classes);
    if (!(L->router_state = r)) return err("out of memory");
    const char *path = L->cfg->moe_superclasses;
    int n_super = superclass_map_load(path, L->num_classes, r->superclass);
    if (n_super < 0) return -1;
    if (n_super != L->spec.routed)
        return err("superclass map '%s': N_c %d does not match %d routed experts of model.moe.experts '%s' "
                   "(one expert per superclass)", path, n_super, L->spec.routed, L->cfg->moe_experts);
    char name[PARAM_NAME_MAX + 32];
    int64_t weight_shape[2] = {n_super, L->D}, bias_shape[1] = {n_super};
    tensor_name(name, prefix, "weight");
    if (params_add(t, name, 2, weight_shape, INIT_XAVIER, 0, 1) < 0) return -1;
    tensor_name(name, prefix, "bias");
    return params_add(t, name, 1, bias_shape, INIT_ZERO, 0, 1) < 0 ? -1 : 0;
}

static void cls_bind(struct router_context *L, const struct param_table *t, const char *prefix, real *base, int grads)
{
    struct classification *r = L->router_state;
    char name[PARAM_NAME_MAX + 32];
    tensor_name(name, prefix, "weight");
    real *w = base + params_find(t, name)->offset;
    tensor_name(name, prefix, "bias");
    real *b = base + params_find(t, name)->offset;
    if (grads) r->g_w = w, r->g_b = b;
    else r->w = w, r->b = b;
}

// One slot per token of a routed sample (sample level, top-1).
static int cls_max_slots(const struct router_context *L, int B, int T)
{
    (void)L;
    return B * T;
}

static void cls_layout(struct router_context *L, struct arena *a, int B, int T)
{
    struct classification *r = L->router_state;
    size_t D = L->D, E = L->spec.routed;
    (void)T;
    r->x_mean = arena_reals(a, B * D);
    r->z = arena_reals(a, B * E);
    r->s = arena_reals(a, B * E);
    r->d_s = arena_reals(a, B * E);
    r->d_z = arena_reals(a, B * E);
    r->d_x_mean = arena_reals(a, B * D);
    r->choice = arena_ints(a, B);
}

// x_mean [B, D] = mean over each sample's T tokens of x [B*T, D] (tokens summed in order).
static void token_mean(real *x_mean, const real *x, int B, int T, int D)
{
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        real *m = x_mean + (size_t)b * D;
        memset(m, 0, sizeof(real) * D);
        for (int t = 0; t < T; t++)
            for (int d = 0; d < D; d++) m[d] += x[((size_t)b * T + t) * D + d];
        for (int d = 0; d < D; d++) m[d] /= (real)T;
    }
}

// The samples the cross-entropy averages over: routed ones with a visible (non-null) label.
static int cls_target(const struct router_context *L, const int *routed, int b)
{
    int label = L->labels[b];
    if (label < 0 || label > L->num_classes) BUG("label %d outside 0..%d", label, L->num_classes);
    return routed[b] && label != L->num_classes;
}

// p [E] = softmax(z [E]) in double (the cross-entropy and its gradient share it).
static void softmax_double(double *p, const real *z, int E)
{
    double max = z[0], sum = 0;
    for (int e = 1; e < E; e++) max = z[e] > max ? z[e] : max;
    for (int e = 0; e < E; e++) sum += p[e] = exp(z[e] - max);
    for (int e = 0; e < E; e++) p[e] /= sum;
}

// L_cls = weight * mean over the target samples b0 .. b1-1 of CE(Sbar_b, superclass(label_b))
// (ROUTERS.md 3.6).
static double cls_loss_pool(const struct router_context *L, const int *routed, int b0, int b1, double weight)
{
    const struct classification *r = L->router_state;
    int E = L->spec.routed, count = 0;
    double sum = 0, p[E];
    for (int b = b0; b < b1; b++) {
        if (!cls_target(L, routed, b)) continue;
        softmax_double(p, r->z + (size_t)b * E, E);
        sum -= log(p[r->superclass[L->labels[b]]]);
        count++;
    }
    double totals[2] = {sum, count};   // the mean over the global batch with a global pool
    pool_sum_doubles(L, totals, 2);
    return totals[1] ? weight * totals[0] / totals[1] : 0;
}

// The mean of the pool groups' losses (moe/pool.h; one group but with scope samples).
static double cls_loss(const struct router_context *L, const int *routed, int B)
{
    int P = pool_group_samples(L, B), groups = pool_group_count(L, B);
    double loss = 0;
    for (int b0 = 0; b0 < B; b0 += P)
        loss += cls_loss_pool(L, routed, b0, b0 + P < B ? b0 + P : B, L->cfg->cls_weight / groups);
    return loss;
}

// d_z [B, N_c] += dL_cls/dSbar = weight (softmax(Sbar_b) - onehot) / count over samples b0 .. b1-1.
static void cls_loss_backward_pool(const struct router_context *L, real *d_z, const int *routed, int b0, int b1,
                                   double weight)
{
    const struct classification *r = L->router_state;
    int E = L->spec.routed, count = 0;
    for (int b = b0; b < b1; b++) count += cls_target(L, routed, b);
    pool_sum_ints(L, &count, 1);
    // times the world size with a global pool: the trainer averages rank gradients
    double p[E], scale = count ? weight / count * pool_token_gradient_scale(L) : 0;
    for (int b = b0; b < b1; b++) {
        if (!cls_target(L, routed, b)) continue;
        softmax_double(p, r->z + (size_t)b * E, E);
        p[r->superclass[L->labels[b]]] -= 1;
        for (int e = 0; e < E; e++) d_z[(size_t)b * E + e] += (real)(scale * p[e]);
    }
}

static void cls_loss_backward(const struct router_context *L, real *d_z, const int *routed, int B)
{
    int P = pool_group_samples(L, B), groups = pool_group_count(L, B);
    for (int b0 = 0; b0 < B; b0 += P)
        cls_loss_backward_pool(L, d_z, routed, b0, b0 + P < B ? b0 + P : B, L->cfg->cls_weight / groups);
}

static void cls_plan(struct router_context *L, const real *x, const int *routed, int B, int T)
{
    struct classification *r = L->router_state;
    int E = L->spec.routed;
    token_mean(r->x_mean, x, B, T, L->D);
    linear_forward(MATMUL_FP32, r->z, r->x_mean, r->w, r->b, B, L->D, E);
    scores_activate(r->s, r->z, B, E, L->spec.activation);
    for (int b = 0; b < B; b++) {
        // argmax of Sbar, ties to the lower index; the activations are monotone
        topk_row(r->z + (size_t)b * E, E, 1, &r->choice[b]);
        real gate = r->s[(size_t)b * E + r->choice[b]];
        for (int t = 0; routed[b] && t < T; t++) plan_add(&L->plan, r->choice[b], b * T + t, gate);
    }
    if (L->training) L->aux[AUX_CLS] = cls_loss(L, routed, B);
}

// The gate path (each sample's gate gradients summed over its tokens, through the activation),
// the cross-entropy, then the classifier; each token of sample b gets d_xbar_b / T.
static void cls_backward(struct router_context *L, const real *x, const int *routed, int B, int T, real *d_x)
{
    struct classification *r = L->router_state;
    const struct routing_plan *p = &L->plan;
    int E = L->spec.routed, D = L->D;
    (void)x;   // the classifier input is the token mean kept from the forward
    memset(r->d_s, 0, sizeof(real) * B * E);
    for (int e = 0; e < E; e++)
        for (int s = p->offset[e]; s < p->offset[e + 1]; s++) r->d_s[(size_t)(p->token[s] / T) * E + e] += p->d_gate[s];
    scores_activate_backward(r->d_z, r->d_s, r->s, B, E, L->spec.activation);
    if (L->training) cls_loss_backward(L, r->d_z, routed, B);
    linear_backward(MATMUL_FP32, r->d_x_mean, r->g_w, r->g_b, r->d_z, r->x_mean, r->w, B, D, E, 0);
#pragma omp parallel for schedule(static)
    for (int n = 0; n < B * T; n++) {
        const real *dm = r->d_x_mean + (size_t)(n / T) * D;
        for (int d = 0; routed[n / T] && d < D; d++) d_x[(size_t)n * D + d] += dm[d] / (real)T;
    }
}

// model.moe.router classification: a superclass map, one superclass expert per sample.
static int cls_check(const struct moe_spec *spec, const struct config *cfg)
{
    if (!cfg->moe_superclasses[0])
        return err("model.moe.router classification needs model.moe.superclasses (a class -> superclass file)");
    if (spec->active != 1)
        return err("model.moe.router classification routes each sample to one superclass expert: top-k must "
                   "be 1, model.moe.experts '%s' asks for %d", cfg->moe_experts, spec->active);
    return 0;
}

const struct router_ops router_classification = {
    .default_activation = ACTIVATION_SOFTMAX,
    .check = cls_check,
    .aux = AUX_BIT(AUX_CLS),
    .reads = ROUTER_READS_ACTIVATION | ROUTER_READS_SUPERCLASSES,
    .add_params = cls_add_params,
    .bind = cls_bind,
    .max_slots = cls_max_slots,
    .layout = cls_layout,
    .plan = cls_plan,
    .backward = cls_backward,
    .destroy = router_free_state,
};
