// Training images and labels in memory, and the batch of a given step: a fresh permutation of the
// data per epoch (stream (seed, epoch, SHUFFLE)), pixels scaled to [-1, 1], optional padding and
// random horizontal flip. Batches are a pure function of (seed, step), so resuming is exact.
#ifndef PROMOE_DATASET_H
#define PROMOE_DATASET_H

#include <stdint.h>

#include "config/config.h"
#include "core/real.h"

struct dataset {
    int64_t n;                 // examples
    int channels, stored_size, size;  // size = padded size
    int num_classes;
    uint8_t *pixels;           // [n, C, s, s] for image data sets (or NULL)
    float *latents;            // [n, C, s, s] for npy latents (or NULL)
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

#endif
