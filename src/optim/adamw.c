// Optimizer loops over flat buffers. Element-wise work is parallel; the one reduction (the norm)
// uses a fixed chunking so the result is the same for any thread count.
#include "optim/adamw.h"

#include <math.h>
#include <string.h>

enum { NORM_CHUNK = 1 << 16 };
#define CLIP_EPS 1e-6

void adamw_update(const struct param_table *t, real *w, const real *g, real *m, real *v,
                  const struct adamw_hparams *h, int64_t step)
{
    double bias1 = 1 - pow(h->beta1, (double)step), bias2 = 1 - pow(h->beta2, (double)step);
    real step_size = (real)(h->lr / bias1), sqrt_bias2 = (real)sqrt(bias2);
    real decay = (real)(1 - h->lr * h->weight_decay), b1 = (real)h->beta1, b2 = (real)h->beta2;
    real eps = (real)h->eps;
    for (int i = 0; i < t->n; i++) {
        const struct param_entry *e = &t->entries[i];
        if (!e->trainable) continue;
        real *wp = w + e->offset, *mp = m + e->offset, *vp = v + e->offset;
        const real *gp = g + e->offset;
#pragma omp parallel for schedule(static)
        for (size_t k = 0; k < e->count; k++) {
            wp[k] *= decay;
            mp[k] = b1 * mp[k] + (1 - b1) * gp[k];
            vp[k] = b2 * vp[k] + (1 - b2) * gp[k] * gp[k];
            wp[k] -= step_size * mp[k] / (r_sqrt(vp[k]) / sqrt_bias2 + eps);
        }
    }
}

double grad_global_norm(const real *g, size_t total)
{
    size_t chunks = (total + NORM_CHUNK - 1) / NORM_CHUNK;
    double partial[chunks ? chunks : 1];
#pragma omp parallel for schedule(static)
    for (size_t c = 0; c < chunks; c++) {
        size_t end = (c + 1) * NORM_CHUNK < total ? (c + 1) * NORM_CHUNK : total;
        double s = 0;
        for (size_t k = c * NORM_CHUNK; k < end; k++) s += (double)g[k] * g[k];
        partial[c] = s;
    }
    double sum = 0;
    for (size_t c = 0; c < chunks; c++) sum += partial[c];
    return sqrt(sum);
}

void grad_clip(real *g, size_t total, double norm, double max_norm)
{
    double coef = max_norm / (norm + CLIP_EPS);
    if (coef >= 1) return;
#pragma omp parallel for schedule(static)
    for (size_t k = 0; k < total; k++) g[k] *= (real)coef;
}

void ema_update(const struct param_table *t, real *ema, const real *w, double decay)
{
    real d = (real)decay;
    for (int i = 0; i < t->n; i++) {
        const struct param_entry *e = &t->entries[i];
        real *ep = ema + e->offset;
        const real *wp = w + e->offset;
        if (!e->trainable) {
            memcpy(ep, wp, sizeof(real) * e->count);
            continue;
        }
#pragma omp parallel for schedule(static)
        for (size_t k = 0; k < e->count; k++) ep[k] = d * ep[k] + (1 - d) * wp[k];
    }
}
