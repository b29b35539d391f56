// Counting the routing plan of every MoE layer into database rows.
#include "train/routing_stats.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "dist/comm.h"

// Conditional-token counts of the routed experts, into counts [routed].
static void routed_counts(const struct moe_layer *L, int T, int64_t *counts)
{
    const struct routing_plan *p = &L->plan;
    for (int e = 0; e < L->spec.routed; e++) {
        counts[e] = 0;
        for (int s = p->offset[e]; s < p->offset[e + 1]; s++) counts[e] += L->routed[p->token[s] / T];
    }
}

// Balance figures of token counts [E] over the routed experts.
static struct layer_balance balance_of_counts(const int64_t *counts, int E)
{
    int64_t total = 0, max = 0;
    for (int e = 0; e < E; e++) {
        total += counts[e];
        max = counts[e] > max ? counts[e] : max;
    }
    struct layer_balance b = {0, 0, 0};
    if (total == 0) return b;
    double mean = (double)total / E, var = 0;
    for (int e = 0; e < E; e++) {
        var += (counts[e] - mean) * (counts[e] - mean) / E;
        double share = (double)counts[e] / total;
        if (share > 0) b.entropy -= share * log(share);
    }
    b.cv = sqrt(var) / mean;
    b.max_over_mean = max / mean;
    return b;
}

struct layer_balance routing_balance_of(const struct moe_layer *L, int T)
{
    int64_t counts[L->spec.routed];
    routed_counts(L, T, counts);
    return balance_of_counts(counts, L->spec.routed);
}

// A layer's tally: per expert (cond, uncond, gate sum, gate sum of squares), then per expert the
// tokens of each class, then the dropped slots. Doubles, so that one sum over ranks adds them all.
enum { EXPERT_FIGURES = 4 };

static size_t tally_size(const struct moe_layer *L)
{
    size_t experts = (size_t)L->plan.n_experts;
    return experts * EXPERT_FIGURES + experts * (size_t)(L->num_classes + 1) + 1;
}

static void tally_layer(const struct moe_layer *L, int T, double *tally)
{
    const struct routing_plan *p = &L->plan;
    int classes = L->num_classes + 1;
    double *by_class = tally + (size_t)p->n_experts * EXPERT_FIGURES;
    for (int e = 0; e < p->n_experts; e++) {
        double *f = tally + (size_t)e * EXPERT_FIGURES;
        for (int s = p->offset[e]; s < p->offset[e + 1]; s++) {
            f[L->routed[p->token[s] / T] ? 0 : 1] += 1;
            f[2] += p->gate[s];
            f[3] += (double)p->gate[s] * p->gate[s];
            by_class[(size_t)e * classes + L->labels[p->token[s] / T]] += 1;
        }
    }
    by_class[(size_t)p->n_experts * classes] = p->dropped;
}

static int write_layer(struct store *db, const char *run_id, int64_t step, const struct moe_layer *L,
                       const double *tally)
{
    int E = L->plan.n_experts, classes = L->num_classes + 1;
    const double *by_class = tally + (size_t)E * EXPERT_FIGURES;
    int64_t dropped = (int64_t)by_class[(size_t)E * classes], counts[L->spec.routed];
    for (int e = 0; e < E; e++) {
        const double *f = tally + (size_t)e * EXPERT_FIGURES;
        if (e < L->spec.routed) counts[e] = (int64_t)f[0];
        if (store_routing(db, run_id, step, L->block, e, (int64_t)f[0], (int64_t)f[1], f[2], f[3],
                          e == 0 ? dropped : 0) < 0)
            return -1;
        for (int c = 0; c < classes; c++) {
            int64_t tokens = (int64_t)by_class[(size_t)e * classes + c];
            if (tokens && store_class_routing(db, run_id, step, L->block, c, e, tokens) < 0) return -1;
        }
    }
    struct layer_balance b = balance_of_counts(counts, L->spec.routed);
    const struct { const char *name; double value; } figures[] = {
        {"cv", b.cv}, {"max_over_mean", b.max_over_mean}, {"entropy", b.entropy}, {"dropped", (double)dropped}};
    for (size_t i = 0; i < sizeof figures / sizeof *figures; i++) {
        char name[64];
        snprintf(name, sizeof name, "moe/L%d/%s", L->block, figures[i].name);
        if (store_metric(db, run_id, name, step, figures[i].value) < 0) return -1;
    }
    return 0;
}

int routing_stats_write(struct store *db, const char *run_id, int64_t step, const struct dit *m)
{
    int T = m->shape.tokens;
    for (int i = 0; i < m->shape.depth; i++) {
        const struct moe_layer *L = m->moe[i];
        if (!L) continue;
        size_t n = tally_size(L);
        double *tally = calloc(n, sizeof(double));
        if (!tally) return err("out of memory for the routing statistics of block %d", L->block);
        tally_layer(L, T, tally);
        comm_sum_doubles(tally, n);   // every rank's tokens
        int rc = db ? write_layer(db, run_id, step, L, tally) : 0;
        free(tally);
        if (rc < 0) return -1;
    }
    return 0;
}
