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
// generated in passes of sample.batch images (0: as many as the model's arena holds). Each
// image's noise is keyed by its index, so the result does not depend on the pass size, except
// for DiffMoE, whose inference ranks tokens over the whole forward batch (ROUTERS.md 3.3): its
// samples follow the official ones only with the official pass (sample.batch).
int sample_images(struct dit *m, const struct config *cfg, const struct sample_options *o, real *out);
// Images per pass at guidance scale cfg_scale: sample.batch, else what the model's batch holds.
int sample_pass(const struct dit *m, const struct config *cfg, double cfg_scale);
// Samples in one forward of a guided pass of `pass` images: doubled for DDPM, whose sampler runs
// the conditional and null halves as one batch [x; x]; rectified flow runs them separately.
int sample_forward_batch(const struct config *cfg, int pass);
// Checks that passes of sample.batch fit a model holding max_batch samples; errors name the key.
int sample_check_batch(const struct config *cfg, int max_batch);

// Labels for a grid with one row per class: n / num_classes images per row (all of them in one
// row when n < num_classes), so image i has class i / per_row. Returns per_row.
int grid_labels(int *labels, int n, int num_classes);
// A sample value in [-1, 1] as a pixel 0..255 (rounded, clamped).
uint8_t sample_to_byte(real v);
// Writes images [n, C, S, S] in [-1, 1] as a PNG grid (rows of `per_row`, 2-pixel padding).
int write_image_grid(const char *path, const real *images, int n, int C, int S, int per_row);

#endif
