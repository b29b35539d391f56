// Sampling from a trained model with classifier-free guidance: the Euler sampler for rectified
// flow (conditional and null-label passes run separately, as the reference sampler does) and the
// respaced ancestral sampler for DDPM (one doubled batch [x; x] with labels [y; null]).
#ifndef PROMOE_SAMPLER_H
#define PROMOE_SAMPLER_H

#include <stdint.h>

#include "config/config.h"
#include "model/dit.h"

struct sample_options {
    int n;               // images
    int steps;           // sampler steps
    double cfg;          // guidance scale; 1 = conditional only
    int cfg_channels;    // guided output channels, 0 = all
    uint64_t seed;
    const int *labels;   // [n] classes, or NULL for image i -> class i % num_classes
};

// out [n, C, S, S]. The model's weights must be bound (normally the EMA weights); images are
// generated in chunks that fit the model's arena. Each image's noise is keyed by its index, so
// the result does not depend on the chunk size.
int sample_images(struct dit *m, const struct config *cfg, const struct sample_options *o, real *out);

// Labels for a grid with one row per class: n / num_classes images per row (all of them in one
// row when n < num_classes), so image i has class i / per_row. Returns per_row.
int grid_labels(int *labels, int n, int num_classes);
// A sample value in [-1, 1] as a pixel 0..255 (rounded, clamped).
uint8_t sample_to_byte(real v);
// Writes images [n, C, S, S] in [-1, 1] as a PNG grid (rows of `per_row`, 2-pixel padding).
int write_image_grid(const char *path, const real *images, int n, int C, int S, int per_row);

#endif
