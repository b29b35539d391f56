// The latents .npy of data.name npy, memory-mapped read-only (ImageNet's 1.28M latents with their
// flipped views are tens of GB): shape [N, K, H, W] or [N, V, K, H, W] with V = 1 or 2 views, view 1
// holding the latents of the horizontally flipped image. K = C latents as stored (moments none), or
// K = 2C posterior moments, the C means then the C log-variances (logvar: diffusers'
// DiagonalGaussianDistribution.parameters, 8 channels for SD-VAE) or the C standard deviations (std).
// An example becomes z = scale * (mean + std * eps) with eps from a stream the caller keys.
#ifndef PROMOE_LATENTS_H
#define PROMOE_LATENTS_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "core/real.h"
#include "core/rng.h"
#include "data/npy.h"

struct latents_file {
    void *map;                  // the whole file, PROT_READ (NULL when closed)
    size_t map_size;
    const unsigned char *data;  // map + the npy data offset
    enum npy_dtype dtype;
    size_t item;                // bytes per stored value
    int64_t n;                  // examples N
    int views;                  // V: 1, or 2 with the flipped image's latents
    int stored_channels;        // K: C, or 2C with moments
    int channels, size;         // C and H = W of one z
    int moments;                // enum latents_moments
    int sample;                 // enum latents_sample
    double scale;               // data.latents.scale
};

// Maps cfg->data_path and checks its shape against data.channels, data.image_size and
// data.latents.moments, and its size against the header. Errors name the file, what was found
// and what was expected. Close with latents_close.
int latents_open(struct latents_file *f, const struct config *cfg);
void latents_close(struct latents_file *f);

// z [C, H, W] of `example` (< n) from view `view` (< views). With moments and data.latents.sample
// posterior, eps [C, H, W] are the next C*H*W normals of `noise` in that order; noise NULL (or
// sample mean) gives the posterior mean. Log-variances are clamped to [-30, 20] as diffusers does.
void latents_example(const struct latents_file *f, int64_t example, int view, struct rng *noise,
                     real *z);

#endif
