// Held-out validation loss with paired inputs: the same test images, noise and timesteps for every
// run and method, so two runs' figures differ only by their models. val_n Fashion-MNIST test images
// balanced over classes (data/probe.h), each noised with fixed noise (stream (0, bin, VAL_NOISE,
// image), independent of train.seed) at the midpoint of each of val_bins equal timestep bins, and
// forwarded with its label by the bound (EMA) weights. A bin's loss is the objective's mean squared
// error on its target (rf: eps - x0 at sigma = (k + 0.5) / K; ddpm: eps at t = (k + 0.5) T / K);
// val_loss is the plain mean over bins (uniform in t, unlike the logit-normal training density).
#ifndef PROMOE_VALIDATION_H
#define PROMOE_VALIDATION_H

#include "config/config.h"
#include "diffusion/ddpm.h"
#include "model/dit.h"

enum { VALIDATION_MAX_BINS = 100 };

struct validation {
    int n, bins, chunk, image, out_image;
    real *x0;                  // [n, C, S, S] test images in [-1, 1]
    int *labels;               // [n]
    real *x_t, *target, *t;    // [chunk, C S S] x2, [chunk]
    struct ddpm_schedule ddpm; // ddpm only
    int objective;
};

// Loads the images and sizes the buffers for forwards of up to `chunk` images (the model's
// max_batch). Owner frees with validation_free.
int validation_open(struct validation *v, const struct config *cfg, int chunk);
void validation_free(struct validation *v);
// Loss per bin into per_bin [bins]; returns their mean. The model's training flag is restored.
double validation_loss(struct validation *v, struct dit *m, double *per_bin);

#endif
