// Samplers (ROUTERS.md 2.1, 2.2). Buffers are allocated once per call, outside the model step.
#include "diffusion/sampler.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/rng.h"
#include "diffusion/ddpm.h"
#include "io/png.h"

#define RF_TIME_SCALE 1000.0

struct sampling {
    struct dit *m;
    const struct config *cfg;
    const struct sample_options *o;
    int chunk, C, S, C_out;
    size_t image, out_image;   // elements per image in and out
    real *x, *t, *guided;      // [2 chunk, C S S], [2 chunk], [chunk, C_out S S]
    real *noise;               // [chunk, C S S]
    int *labels;               // [2 chunk]
};

static void draw_noise(real *z, int first, int count, size_t image, uint64_t seed, uint64_t step)
{
    for (int i = 0; i < count; i++) {
        struct rng r;
        rng_init(&r, seed, step, RNG_SAMPLE_NOISE, (uint32_t)(first + i));
        for (size_t k = 0; k < image; k++) z[i * image + k] = (real)rng_normal(&r);
    }
}

// guided = u + s (c - u) on the first cfg_channels channels, c elsewhere.
static void guide(struct sampling *s, real *guided, const real *cond, const real *uncond, int count)
{
    int guided_channels = s->o->cfg_channels ? s->o->cfg_channels : s->C_out;
    size_t hw = (size_t)s->S * s->S;
    for (int b = 0; b < count; b++)
        for (int c = 0; c < s->C_out; c++)
            for (size_t i = 0; i < hw; i++) {
                size_t k = ((size_t)b * s->C_out + c) * hw + i;
                real u = uncond[k], v = cond[k];
                guided[k] = c < guided_channels ? u + (real)s->o->cfg * (v - u) : v;
            }
}

// Model output for the chunk at time t, guided when cfg != 1.
static const real *guided_output(struct sampling *s, int count, real t, int split_passes)
{
    int null_label = s->cfg->num_classes;
    for (int b = 0; b < 2 * count; b++) s->t[b] = t;
    if (s->o->cfg == 1.0) return dit_forward(s->m, s->x, s->t, s->labels, count);
    for (int b = 0; b < count; b++) s->labels[count + b] = null_label;
    memcpy(s->x + count * s->image, s->x, sizeof(real) * count * s->image);
    if (!split_passes) {
        const real *out = dit_forward(s->m, s->x, s->t, s->labels, 2 * count);
        guide(s, s->guided, out, out + count * s->out_image, count);
        return s->guided;
    }
    const real *cond = dit_forward(s->m, s->x, s->t, s->labels, count);
    memcpy(s->guided, cond, sizeof(real) * count * s->out_image);
    const real *uncond = dit_forward(s->m, s->x + count * s->image, s->t, s->labels + count, count);
    guide(s, s->guided, s->guided, uncond, count);
    return s->guided;
}

static void rf_chunk(struct sampling *s, int count)
{
    int N = s->o->steps;
    for (int i = 0; i < N; i++) {
        double sigma = 1.0 - (double)i / N, next = 1.0 - (double)(i + 1) / N;
        const real *v = guided_output(s, count, (real)(RF_TIME_SCALE * sigma), 1);
        for (int b = 0; b < count; b++)
            for (size_t k = 0; k < s->image; k++)
                s->x[b * s->image + k] += (real)(next - sigma) * v[b * s->out_image + k];
    }
}

static int ddpm_chunk(struct sampling *s, int first, int count)
{
    struct ddpm_schedule base, sched;
    if (ddpm_schedule_linear(&base, s->cfg->ddpm_steps) < 0) return -1;
    if (ddpm_schedule_respaced(&sched, &base, s->o->steps) < 0) {
        ddpm_schedule_free(&base);
        return -1;
    }
    size_t hw = (size_t)s->S * s->S;
    int learned = s->C_out == 2 * s->C;
    for (int k = sched.n - 1; k >= 0; k--) {
        const real *out = guided_output(s, count, (real)sched.timesteps[k], 0);
        draw_noise(s->noise, first, count, s->image, s->o->seed, (uint64_t)k + 1);
        for (int b = 0; b < count; b++) {
            const real *eps = out + b * s->out_image;
            ddpm_step(&sched, k, s->x + b * s->image, eps, learned ? eps + s->C * hw : NULL,
                      s->noise + b * s->image, (int)s->image);
        }
    }
    ddpm_schedule_free(&sched);
    ddpm_schedule_free(&base);
    return 0;
}

int sample_images(struct dit *m, const struct config *cfg, const struct sample_options *o, real *out)
{
    struct sampling s = {.m = m, .cfg = cfg, .o = o, .C = m->shape.channels, .S = m->shape.size,
                         .C_out = m->shape.out_channels};
    s.image = (size_t)s.C * s.S * s.S;
    s.out_image = (size_t)s.C_out * s.S * s.S;
    int doubled = o->cfg != 1.0 && cfg->objective == OBJECTIVE_DDPM;
    s.chunk = sample_pass(m, cfg, o->cfg);
    if (s.chunk < 1) return err("the model's batch %d is too small to sample with guidance", m->max_batch);
    if ((doubled ? 2 * s.chunk : s.chunk) > m->max_batch) return sample_check_batch(cfg, m->max_batch);
    s.x = malloc(sizeof(real) * 2 * s.chunk * s.image);
    s.t = malloc(sizeof(real) * 2 * s.chunk);
    s.guided = malloc(sizeof(real) * s.chunk * s.out_image);
    s.noise = malloc(sizeof(real) * s.chunk * s.image);
    s.labels = malloc(sizeof(int) * 2 * s.chunk);
    int rc = s.x && s.t && s.guided && s.noise && s.labels ? 0 : err("out of memory for sampling");
    for (int first = 0; !rc && first < o->n; first += s.chunk) {
        int count = o->n - first < s.chunk ? o->n - first : s.chunk;
        for (int b = 0; b < count; b++)
            s.labels[b] = o->labels ? o->labels[first + b] : (first + b) % cfg->num_classes;
        draw_noise(s.x, first, count, s.image, o->seed, 0);
        if (cfg->objective == OBJECTIVE_RF) rf_chunk(&s, count);
        else rc = ddpm_chunk(&s, first, count);
        memcpy(out + first * s.image, s.x, sizeof(real) * count * s.image);
    }
    free(s.x); free(s.t); free(s.guided); free(s.noise); free(s.labels);
    return rc;
}

int sample_pass(const struct dit *m, const struct config *cfg, double cfg_scale)
{
    if (cfg->sample_batch > 0) return cfg->sample_batch;
    return cfg_scale != 1.0 && cfg->objective == OBJECTIVE_DDPM ? m->max_batch / 2 : m->max_batch;
}

int sample_forward_batch(const struct config *cfg, int pass)
{
    return cfg->objective == OBJECTIVE_DDPM ? 2 * pass : pass;
}

int sample_check_batch(const struct config *cfg, int max_batch)
{
    if (cfg->sample_batch <= 0 || sample_forward_batch(cfg, cfg->sample_batch) <= max_batch) return 0;
    const char *why = cfg->objective == OBJECTIVE_DDPM ? " (ddpm: the pass and its null-label twin)" : "";
    return err("sample.batch %d: a pass runs %d samples in one forward%s, and this model holds %d; "
               "lower sample.batch, or sample with 'promoe sample' / 'promoe eval', which hold a whole pass",
               cfg->sample_batch, sample_forward_batch(cfg, cfg->sample_batch), why, max_batch);
}

int grid_labels(int *labels, int n, int num_classes)
{
    int per_row = n >= num_classes ? n / num_classes : n;
    for (int i = 0; i < n; i++) labels[i] = (i / per_row) % num_classes;
    return per_row;
}

uint8_t sample_to_byte(real v)
{
    double b = ((double)v + 1) * 127.5 + 0.5;
    return (uint8_t)(b < 0 ? 0 : b > 255 ? 255 : b);
}

int write_image_grid(const char *path, const real *images, int n, int C, int S, int per_row)
{
    if (C != 1 && C != 3) return err("cannot write '%s': a PNG grid needs 1 or 3 channels, the model has %d (write .npy instead)", path, C);
    enum { PAD = 2 };
    int rows = (n + per_row - 1) / per_row, W = per_row * (S + PAD) + PAD, H = rows * (S + PAD) + PAD;
    uint8_t *pixels = calloc((size_t)W * H * C, 1);
    if (!pixels) return err("out of memory for the grid '%s'", path);
    for (int i = 0; i < n; i++) {
        int top = PAD + (i / per_row) * (S + PAD), left = PAD + (i % per_row) * (S + PAD);
        for (int c = 0; c < C; c++)
            for (int y = 0; y < S; y++)
                for (int x = 0; x < S; x++)
                    pixels[((size_t)(top + y) * W + left + x) * C + c] =
                        sample_to_byte(images[(((size_t)i * C + c) * S + y) * S + x]);
    }
    int rc = png_write(path, W, H, C, pixels);
    free(pixels);
    return rc;
}
