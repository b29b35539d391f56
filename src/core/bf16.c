// bf16 rounding and the packing of operands: op(X) read row by row (or, transposed, in tiles of
// TILE rows so that each read of X is one contiguous run) and written as dense bf16 rows.
#include "core/bf16.h"

#include <string.h>

enum { TILE = 16 };   // rows of op(X) per pass over X when transposed: 16 floats, one cache line

static inline uint16_t round_to_bf16(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);   // quiet NaN
    u += 0x7fffu + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

uint16_t bf16_from_float(float x) { return round_to_bf16(x); }

float float_from_bf16(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

static void pack_plain(uint16_t *dst, int ld_dst, const float *x, int ld, int row0, int row1, int cols)
{
    for (int i = row0; i < row1; i++) {
        const float *src = x + (size_t)i * ld;
        uint16_t *out = dst + (size_t)i * ld_dst;
        for (int j = 0; j < cols; j++) out[j] = round_to_bf16(src[j]);
    }
}

// op(X)[i][j] = X[j][i]: for each tile of rows, one pass down X reading TILE floats per row of X.
static void pack_transposed(uint16_t *dst, int ld_dst, const float *x, int ld, int row0, int row1, int cols)
{
    for (int i0 = row0; i0 < row1; i0 += TILE) {
        int i1 = i0 + TILE < row1 ? i0 + TILE : row1;
        for (int j = 0; j < cols; j++) {
            const float *src = x + (size_t)j * ld;
            for (int i = i0; i < i1; i++) dst[(size_t)i * ld_dst + j] = round_to_bf16(src[i]);
        }
    }
}

void bf16_pack_rows(uint16_t *dst, int ld_dst, const float *x, int ld, int trans, int row0, int row1, int cols)
{
    if (trans)
        pack_transposed(dst, ld_dst, x, ld, row0, row1, cols);
    else
        pack_plain(dst, ld_dst, x, ld, row0, row1, cols);
    if (ld_dst > cols)
        for (int i = row0; i < row1; i++) memset(dst + (size_t)i * ld_dst + cols, 0, sizeof(uint16_t) * (ld_dst - cols));
}
