// Counter-based random numbers (Philox4x32-10): every draw is a pure function of
// (seed, step, purpose, index, position), so results do not depend on thread count or call order
// and a resumed run continues bit-identically.
#ifndef PROMOE_RNG_H
#define PROMOE_RNG_H

#include <stdint.h>

// What a stream is for; part of the counter so that streams never overlap.
enum rng_purpose {
    RNG_INIT = 1,        // parameter initialisation, index = tensor number
    RNG_SHUFFLE,         // data order, step = epoch
    RNG_FLIP,            // horizontal flip, index = sample in batch
    RNG_LABEL_DROP,      // classifier-free guidance label dropout, index = sample
    RNG_TIME,            // diffusion time, index = sample
    RNG_NOISE,           // diffusion noise, index = sample
    RNG_SAMPLE_NOISE,    // sampler noise, step = sampler step, index = image
    RNG_SAMPLE_LABEL,    // sampler class labels, index = image
    RNG_ROUTER,          // router initialisation (k-means centroids), index = layer
    RNG_TEST,            // tests
    RNG_VAL_NOISE,       // validation-loss noise (fixed seed), step = timestep bin, index = image
    RNG_LATENT           // latent posterior draw z = mean + std * eps, index = sample in batch
};

struct rng {
    uint32_t key[2];
    uint32_t counter[4];
    uint32_t block[4];
    int available;       // unused words left in block
    int has_spare;       // Box-Muller's second normal
    double spare;
};

void rng_init(struct rng *r, uint64_t seed, uint64_t step, enum rng_purpose purpose, uint32_t index);
uint32_t rng_u32(struct rng *r);
// Uniform in the open interval (0, 1), 53 random bits.
double rng_uniform(struct rng *r);
// Standard normal (Box-Muller).
double rng_normal(struct rng *r);
// Uniform integer in [0, n).
uint32_t rng_below(struct rng *r, uint32_t n);

#endif
