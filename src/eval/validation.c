// Held-out validation loss (see validation.h).
#include "eval/validation.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/rng.h"
#include "data/probe.h"

static const uint64_t VALIDATION_SEED = 0;   // one noise draw for every run, whatever train.seed

int validation_open(struct validation *v, const struct config *cfg, int chunk)
{
    memset(v, 0, sizeof *v);
    int S = cfg->pad_to ? cfg->pad_to : cfg->image_size;
    int C_out = cfg->learn_sigma ? 2 * cfg->channels : cfg->channels;
    v->n = cfg->val_n, v->bins = cfg->val_bins, v->chunk = chunk, v->objective = cfg->objective;
    v->image = cfg->channels * S * S, v->out_image = C_out * S * S;
    if (v->bins < 1 || v->bins > VALIDATION_MAX_BINS || v->n < 1 || chunk < 1)
        return err("eval.val_n %d, eval.val_bins %d: need val_n >= 1 and 1 <= val_bins <= %d", v->n, v->bins,
                   VALIDATION_MAX_BINS);
    v->x0 = malloc(sizeof(real) * (size_t)v->n * v->image);
    v->labels = malloc(sizeof(int) * v->n);
    v->x_t = malloc(sizeof(real) * (size_t)chunk * v->image);
    v->target = malloc(sizeof(real) * (size_t)chunk * v->image);
    v->t = malloc(sizeof(real) * chunk);
    if (!v->x0 || !v->labels || !v->x_t || !v->target || !v->t)
        return validation_free(v), err("out of memory for %d validation images", v->n);
    if (cfg->objective == OBJECTIVE_DDPM && ddpm_schedule_linear(&v->ddpm, cfg->ddpm_steps) < 0)
        return validation_free(v), -1;
    if (probe_images(cfg, v->n, v->x0, v->labels) < 0)
        return validation_free(v), err_context("validation images (eval.val_n %d)", v->n);
    return 0;
}

void validation_free(struct validation *v)
{
    free(v->x0); free(v->labels); free(v->x_t); free(v->target); free(v->t);
    if (v->ddpm.n) ddpm_schedule_free(&v->ddpm);
    memset(v, 0, sizeof *v);
}

// x_t, target and model time of images [first, first + count) at bin k.
static void noise_chunk(struct validation *v, int k, int first, int count)
{
    double mid = (k + 0.5) / v->bins, a = 1 - mid, b = mid, t_model = 1000 * mid;
    int is_rf = v->objective == OBJECTIVE_RF;
    if (!is_rf) {
        int index = (int)(mid * v->ddpm.n);
        a = sqrt(v->ddpm.abar[index]), b = sqrt(1 - v->ddpm.abar[index]), t_model = index;
    }
    for (int i = 0; i < count; i++) {
        struct rng g;
        rng_init(&g, VALIDATION_SEED, (uint64_t)k, RNG_VAL_NOISE, (uint32_t)(first + i));
        const real *x0 = v->x0 + (size_t)(first + i) * v->image;
        real *x_t = v->x_t + (size_t)i * v->image, *target = v->target + (size_t)i * v->image;
        for (int j = 0; j < v->image; j++) {
            double eps = rng_normal(&g);
            x_t[j] = (real)(a * x0[j] + b * eps);
            target[j] = (real)(is_rf ? eps - x0[j] : eps);
        }
        v->t[i] = (real)t_model;
    }
}

// Sum of squared errors of the first `image` outputs of each of count rows against the targets.
static double squared_error(const struct validation *v, const real *out, int count)
{
    double sum = 0;
    for (int i = 0; i < count; i++) {
        const real *o = out + (size_t)i * v->out_image, *y = v->target + (size_t)i * v->image;
        for (int j = 0; j < v->image; j++) sum += ((double)o[j] - y[j]) * ((double)o[j] - y[j]);
    }
    return sum;
}

double validation_loss(struct validation *v, struct dit *m, double *per_bin)
{
    int training = m->training;
    m->training = 0;
    double total = 0;
    for (int k = 0; k < v->bins; k++) {
        double sum = 0;
        for (int first = 0; first < v->n; first += v->chunk) {
            int count = v->n - first < v->chunk ? v->n - first : v->chunk;
            noise_chunk(v, k, first, count);
            sum += squared_error(v, dit_forward(m, v->x_t, v->t, v->labels + first, count), count);
        }
        per_bin[k] = sum / ((double)v->n * v->image);
        total += per_bin[k];
    }
    m->training = training;
    return total / v->bins;
}
