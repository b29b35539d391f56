// Intermediate tokens of a trained DiT (ROUTERS.md 4.2): images noised to one model time with the
// objective's own x_t (rf: x_t = (1 - sigma) x0 + sigma eps, t = 1000 sigma; ddpm: sqrt(abar_t) x0
// + sqrt(1 - abar_t) eps), a forward with their true labels, and the hidden states at the output
// of one block (acts.resid[layer + 1]), with each token's class and the expert it was routed to
// (the largest gate; -1 for a dense block or an unrouted token).
#ifndef PROMOE_TOKENS_H
#define PROMOE_TOKENS_H

#include <stdint.h>

#include "model/dit.h"

struct token_set {
    int n, D;
    float *x;        // [n, D]
    int *classes;    // [n]
    int *experts;    // [n]
};

struct token_probe {
    int layer;          // block index
    double t;           // model time (ddpm: rounded to an integer step)
    uint64_t seed;      // noise: stream (seed, 0, NOISE, image index)
    int max_tokens;     // evenly spaced subsample when the images give more
    int batch;          // images per forward (<= the model's max_batch)
};

// Tokens of images [n, C, S, S] with labels [n]; out's arrays are allocated (token_set_free).
int tokens_collect(struct dit *m, const real *images, const int *labels, int n, const struct token_probe *p,
                   struct token_set *out);
void token_set_free(struct token_set *s);

#endif
