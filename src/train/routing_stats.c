// Counting the routing plan of every MoE layer into database rows.
#include "train/routing_stats.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

// Conditional-token counts of the routed experts, into counts [routed].
static void routed_counts(const struct moe_layer *L, int T, int64_t *counts)
{
    const struct routing_plan *p = &L->plan;
    for (int e = 0; e < L->spec.routed; e++) {
        counts[e] = 0;
        for (int s = p->offset[e]; s < p->offset[e + 1]; s++) counts[e] += L->routed[p->token[s] / T];
    }
}

struct layer_balance routing_balance_of(const struct moe_layer *L, int T)
{
    int E = L->spec.routed;
    int64_t counts[E], total = 0, max = 0;
    routed_counts(L, T, counts);
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

static int write_expert_rows(struct store *db, const char *run_id, int64_t step, const struct moe_layer *L, int T)
{
    const struct routing_plan *p = &L->plan;
    for (int e = 0; e < p->n_experts; e++) {
        int64_t cond = 0, uncond = 0;
        double gate_sum = 0, gate_sumsq = 0;
        for (int s = p->offset[e]; s < p->offset[e + 1]; s++) {
            if (L->routed[p->token[s] / T]) cond++;
            else uncond++;
            gate_sum += p->gate[s];
            gate_sumsq += (double)p->gate[s] * p->gate[s];
        }
        if (store_routing(db, run_id, step, L->block, e, cond, uncond, gate_sum, gate_sumsq,
                          e == 0 ? p->dropped : 0) < 0)
            return -1;
    }
    return 0;
}

static int write_class_rows(struct store *db, const char *run_id, int64_t step, const struct moe_layer *L, int T)
{
    const struct routing_plan *p = &L->plan;
    int classes = L->num_classes + 1;
    for (int e = 0; e < p->n_experts; e++) {
        int64_t counts[classes];
        memset(counts, 0, sizeof counts);
        for (int s = p->offset[e]; s < p->offset[e + 1]; s++) counts[L->labels[p->token[s] / T]]++;
        for (int c = 0; c < classes; c++)
            if (counts[c] && store_class_routing(db, run_id, step, L->block, c, e, counts[c]) < 0) return -1;
    }
    return 0;
}

static int write_balance(struct store *db, const char *run_id, int64_t step, const struct moe_layer *L, int T)
{
    struct layer_balance b = routing_balance_of(L, T);
    const struct { const char *name; double value; } figures[] = {
        {"cv", b.cv}, {"max_over_mean", b.max_over_mean}, {"entropy", b.entropy}, {"dropped", L->plan.dropped}};
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
        if (write_expert_rows(db, run_id, step, L, T) < 0 || write_class_rows(db, run_id, step, L, T) < 0 ||
            write_balance(db, run_id, step, L, T) < 0)
            return -1;
    }
    return 0;
}
