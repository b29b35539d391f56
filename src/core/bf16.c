// bf16 rounding and the packing of operands: op(X) read row by row and written as dense bf16 rows,
// or, transposed, in 16 x 16 tiles turned in AVX-512 registers (measured ten times faster than an
// element-by-element copy, whose every read lands on another row, and page, of X).
#include "core/bf16.h"

#include <immintrin.h>
#include <string.h>

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

#define AVX512_TARGET __attribute__((target("avx512f")))

enum {
    BLOCK_I = 128,   // rows of op(X) per block of the transposed packing: with BLOCK_J, few enough
    BLOCK_J = 256,   // pages of X and of op(X) per block to stay in the TLB (measured best of 64..4096)
};

// round_to_bf16 on 16 lanes, each result in the low half of its 32-bit lane.
AVX512_TARGET static inline __m512i round16(__m512 x)
{
    __m512i u = _mm512_castps_si512(x), high = _mm512_srli_epi32(u, 16);
    __m512i bias = _mm512_add_epi32(_mm512_and_si512(high, _mm512_set1_epi32(1)), _mm512_set1_epi32(0x7fff));
    __m512i nearest = _mm512_srli_epi32(_mm512_add_epi32(u, bias), 16);
    __m512i quiet_nan = _mm512_or_si512(high, _mm512_set1_epi32(0x40));
    __m512i magnitude = _mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff));
    __mmask16 nan = _mm512_cmpgt_epu32_mask(magnitude, _mm512_set1_epi32(0x7f800000));
    return _mm512_mask_blend_epi32(nan, nearest, quiet_nan);
}

// r[i] lane j becomes r[j] lane i (16 x 16 32-bit lanes).
AVX512_TARGET static inline void transpose16(__m512i r[16])
{
    __m512i t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
        r[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
        r[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
        r[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
    }
    for (int h = 0; h < 16; h += 8)
        for (int i = 0; i < 4; i++) {
            t[h + i] = _mm512_shuffle_i32x4(r[h + i], r[h + i + 4], 0x88);
            t[h + i + 4] = _mm512_shuffle_i32x4(r[h + i], r[h + i + 4], 0xdd);
        }
    for (int i = 0; i < 8; i++) {
        r[i] = _mm512_shuffle_i32x4(t[i], t[i + 8], 0x88);
        r[i + 8] = _mm512_shuffle_i32x4(t[i], t[i + 8], 0xdd);
    }
}

// op(X) rows [i, i + 16) x columns [j, j + 16): 16 rows of X read, rounded, transposed, written.
AVX512_TARGET static void pack_tile(uint16_t *dst, int ld_dst, const float *x, int ld, int i, int j)
{
    __m512i r[16];
    for (int q = 0; q < 16; q++) r[q] = round16(_mm512_loadu_ps(x + (size_t)(j + q) * ld + i));
    transpose16(r);
    for (int q = 0; q < 16; q++)
        _mm256_storeu_si256((__m256i *)(dst + (size_t)(i + q) * ld_dst + j), _mm512_cvtepi32_epi16(r[q]));
}

static void pack_one(uint16_t *dst, int ld_dst, const float *x, int ld, int i, int j)
{
    dst[(size_t)i * ld_dst + j] = round_to_bf16(x[(size_t)j * ld + i]);
}

// op(X)[i][j] = X[j][i], in blocks of BLOCK_I x BLOCK_J (a block's rows of X and of op(X) few
// enough pages to stay in the TLB) of 16 x 16 tiles; the ragged edges element by element.
AVX512_TARGET static void pack_transposed(uint16_t *dst, int ld_dst, const float *x, int ld, int row0, int row1,
                                          int cols)
{
    int rows_16 = row0 + (row1 - row0) / 16 * 16, cols_16 = cols / 16 * 16;
    for (int i0 = row0; i0 < rows_16; i0 += BLOCK_I)
        for (int j0 = 0; j0 < cols_16; j0 += BLOCK_J)
            for (int i = i0; i < i0 + BLOCK_I && i < rows_16; i += 16)
                for (int j = j0; j < j0 + BLOCK_J && j < cols_16; j += 16) pack_tile(dst, ld_dst, x, ld, i, j);
    for (int i = row0; i < rows_16; i++)
        for (int j = cols_16; j < cols; j++) pack_one(dst, ld_dst, x, ld, i, j);
    for (int i = rows_16; i < row1; i++)
        for (int j = 0; j < cols; j++) pack_one(dst, ld_dst, x, ld, i, j);
}

void bf16_pack_rows(uint16_t *dst, int ld_dst, const float *x, int ld, int trans, int row0, int row1, int cols)
{
    if (!trans)
        pack_plain(dst, ld_dst, x, ld, row0, row1, cols);
    else if (__builtin_cpu_supports("avx512f"))
        pack_transposed(dst, ld_dst, x, ld, row0, row1, cols);
    else   // only where bf16 products cannot run (they need AVX512-BF16), for completeness
        for (int i = row0; i < row1; i++)
            for (int j = 0; j < cols; j++) pack_one(dst, ld_dst, x, ld, i, j);
    for (int i = row0; i < row1 && ld_dst > cols; i++)
        memset(dst + (size_t)i * ld_dst + cols, 0, sizeof(uint16_t) * (ld_dst - cols));
}
