// DiT's embeddings and the image <-> token layouts (ROUTERS.md 1.2, 1.4).
#ifndef PROMOE_EMBED_H
#define PROMOE_EMBED_H

#include "core/real.h"

// Size of the sinusoidal timestep feature vector (DiT's frequency_embedding_size).
#define TIMESTEP_FREQ_DIM 256

// patches [B*T, C*p*p] from images [B, C, S, S]: token r*(S/p)+q, feature c*p*p + i*p + j.
void patchify(real *patches, const real *images, int B, int C, int S, int p);
// images [B, C, S, S] from tokens [B*T, p*p*C]: feature (i*p + j)*C + c (DiT's unpatchify).
void unpatchify(real *images, const real *tokens, int B, int C, int S, int p);
// The adjoint of unpatchify: d_tokens [B*T, p*p*C] = gather of d_images [B, C, S, S].
void unpatchify_backward(real *d_tokens, const real *d_images, int B, int C, int S, int p);
// Fixed 2-D sine-cosine table [T, D], T = grid*grid; column coordinate first, sine before cosine.
void pos_embed_table(real *table, int grid, int D);
// freq [B, 256] = [cos(t f_k), sin(t f_k)], f_k = exp(-ln(10000) k / 128).
void timestep_features(real *freq, const real *t, int B);
// out [B, D] = table[labels[b]]
void label_lookup(real *out, const real *table, const int *labels, int B, int D);
// d_table [n_rows, D] += scatter of d_out [B, D] into rows labels[b]
void label_lookup_backward(real *d_table, const real *d_out, const int *labels, int B, int D);

#endif
