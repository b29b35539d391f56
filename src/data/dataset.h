// Training images (in memory) or latents (memory-mapped, data/latents.h) with their labels, and the
// batch of a given step: a fresh permutation of the data per epoch (stream (seed, epoch, SHUFFLE)),
// pixels scaled to [-1, 1], latents drawn from their posterior (stream (seed, step, LATENT, sample))
// and scaled, optional padding and random horizontal flip (stream (seed, step, FLIP, sample)): the
// flipped view of a latents file that has one, else the example mirrored. Batches are a pure
// function of (seed, step), so resuming is exact and the thread count does not matter.
#ifndef PROMOE_DATASET_H
#define PROMOE_DATASET_H

#include <stdint.h>

#include "config/config.h"
#include "core/real.h"
#include "core/rng.h"
#include "data/latents.h"

struct dataset {
    int64_t n;                 // examples
    int channels, stored_size, size;  // size = padded size
    int num_classes;
    uint8_t *pixels;           // [n, C, s, s] for image data sets (or NULL)
    struct latents_file latents;  // for npy latents (latents.map NULL otherwise)
    real *stored;              // [C, s, s] one example before padding and mirroring
    int64_t *labels;           // [n]
    uint32_t *order;           // [n] permutation of the cached epoch
    int64_t order_epoch;       // -1: none yet
    int flip;
    uint64_t seed;
};

// Loads the data set the config names and checks it against data.channels, data.image_size and
// data.num_classes. Errors name the file and the problem.
int dataset_open(struct dataset *ds, const struct config *cfg);
void dataset_close(struct dataset *ds);
// x [B, C, size, size] and labels [B] of training step `step` (batch positions step*B .. +B).
void dataset_batch(struct dataset *ds, int64_t step, int B, real *x, int *labels);
// Example `example` before padding, out [C, s, s]: pixels scaled to [-1, 1], or latents of view
// `view` (0, or 1 = the flipped image's where the file has it) drawn with `noise` (NULL: the
// posterior mean) and scaled by data.latents.scale.
void dataset_stored_example(const struct dataset *ds, int64_t example, int view, struct rng *noise,
                            real *out);

#endif
