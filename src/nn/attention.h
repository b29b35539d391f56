// Multi-head self-attention core (no mask, no dropout): per (sample, head) block,
// softmax(q k^T / sqrt(hd)) v, heads concatenated. The qkv and output projections are linears
// around it. Blocks are independent, so they run in parallel with single-threaded products.
#ifndef PROMOE_ATTENTION_H
#define PROMOE_ATTENTION_H

#include "core/blas.h"
#include "core/real.h"

// out [B*T, D] (heads concatenated), probs [B, H, T, T] saved for backward,
// qkv [B*T, 3D] with q | k | v column blocks, head h owning columns [h*hd, (h+1)*hd) of each.
// bias [3D] (the qkv linear's, or NULL) is added into qkv in place, block by block while the
// block is in cache, instead of by a copy before the product; qkv then holds what the backward needs.
void attention_forward(enum matmul_precision precision, real *out, real *probs, real *qkv, const real *bias, int B, int T, int D, int H);
// d_qkv [B*T, 3D] is overwritten (not accumulated); scratch [n_threads, T, T].
void attention_backward(enum matmul_precision precision, real *d_qkv, const real *d_out, const real *probs, const real *qkv,
                        real *scratch, int B, int T, int D, int H);

#endif
