// Patch layout, unpatchify, and the fixed sinusoidal tables of DiT (ROUTERS.md 1.2, 1.4).
#include "nn/embed.h"

#include <math.h>
#include <string.h>

void patchify(real *patches, const real *images, int B, int C, int S, int p)
{
    int g = S / p, T = g * g, F = C * p * p;
#pragma omp parallel for schedule(static)
    for (int bt = 0; bt < B * T; bt++) {
        int b = bt / T, r = (bt % T) / g, q = bt % g;
        real *out = patches + (size_t)bt * F;
        for (int c = 0; c < C; c++)
            for (int i = 0; i < p; i++)
                for (int j = 0; j < p; j++)
                    out[(c * p + i) * p + j] = images[(((size_t)b * C + c) * S + r * p + i) * S + q * p + j];
    }
}

// Visits every (token feature, image element) pair of DiT's unpatchify layout.
static void unpatchify_map(real *tokens, real *images, int to_images, int B, int C, int S, int p)
{
    int g = S / p, T = g * g, F = C * p * p;
#pragma omp parallel for schedule(static)
    for (int bt = 0; bt < B * T; bt++) {
        int b = bt / T, r = (bt % T) / g, q = bt % g;
        real *tok = tokens + (size_t)bt * F;
        for (int i = 0; i < p; i++)
            for (int j = 0; j < p; j++)
                for (int c = 0; c < C; c++) {
                    real *img = images + (((size_t)b * C + c) * S + r * p + i) * S + q * p + j;
                    real *feature = tok + (i * p + j) * C + c;
                    if (to_images) *img = *feature;
                    else *feature = *img;
                }
    }
}

void unpatchify(real *images, const real *tokens, int B, int C, int S, int p)
{
    unpatchify_map((real *)tokens, images, 1, B, C, S, p);
}

void unpatchify_backward(real *d_tokens, const real *d_images, int B, int C, int S, int p)
{
    unpatchify_map(d_tokens, (real *)d_images, 0, B, C, S, p);
}

void pos_embed_table(real *table, int grid, int D)
{
    int F = D / 4;
    for (int r = 0; r < grid; r++)
        for (int q = 0; q < grid; q++) {
            real *row = table + (size_t)(r * grid + q) * D;
            for (int k = 0; k < F; k++) {
                double w = pow(10000.0, -(double)k / F);
                row[k] = (real)sin(q * w);
                row[F + k] = (real)cos(q * w);
                row[2 * F + k] = (real)sin(r * w);
                row[3 * F + k] = (real)cos(r * w);
            }
        }
}

void timestep_features(real *freq, const real *t, int B)
{
    int half = TIMESTEP_FREQ_DIM / 2;
    for (int b = 0; b < B; b++)
        for (int k = 0; k < half; k++) {
            float f = expf(-logf(10000.0f) * (float)k / (float)half);
            float arg = (float)t[b] * f;  // float32 as in DiT's reference
            freq[(size_t)b * TIMESTEP_FREQ_DIM + k] = cosf(arg);
            freq[(size_t)b * TIMESTEP_FREQ_DIM + half + k] = sinf(arg);
        }
}

void label_lookup(real *out, const real *table, const int *labels, int B, int D)
{
    for (int b = 0; b < B; b++) memcpy(out + (size_t)b * D, table + (size_t)labels[b] * D, sizeof(real) * D);
}

void label_lookup_backward(real *d_table, const real *d_out, const int *labels, int B, int D)
{
    for (int b = 0; b < B; b++)
        for (int d = 0; d < D; d++) d_table[(size_t)labels[b] * D + d] += d_out[(size_t)b * D + d];
}
