// Inputs for probing a trained model's tokens: real images chosen deterministically and balanced
// over classes (image i has class i mod C and is that class's (i / C)-th example in file order),
// from the Fashion-MNIST test set (t10k files in data.path, pixels scaled to [-1, 1]) or, for
// data.name npy, the latents the run trained on (view 0 at its posterior mean, times
// data.latents.scale); padded as in training (data.pad_to), never flipped.
#ifndef PROMOE_PROBE_H
#define PROMOE_PROBE_H

#include "config/config.h"
#include "core/real.h"

// images [n, C, S, S] (S = padded size), labels [n]. Errors name the file and what is missing
// (a class with too few examples).
int probe_images(const struct config *cfg, int n, real *images, int *labels);

#endif
