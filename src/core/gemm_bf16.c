// bf16 products with fp32 accumulation, blocked as BLIS blocks its fp32 products: op(B) is packed
// in blocks of KC x NC (k pairs interleaved, NR columns per sliver), op(A) in blocks of MC x KC (k
// pairs as 32-bit words, MR rows per sliver), both rounded to bf16 while packed; a 12 x 32
// micro-kernel keeps 24 fp32 accumulators and adds two products per lane and instruction
// (vdpbf16ps). Threads split rows and columns of C, never k, so the bits do not depend on them.
#include "core/gemm_bf16.h"

#include <immintrin.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

enum {
    MR = 12,      // rows of a micro-tile: 12 x 2 accumulator registers, 2 of B, 1 broadcast
    NR = 32,      // columns of a micro-tile: two registers of 16 floats
    KC = 256,     // k per packed block (even: k is consumed in pairs)
    MC = 144,     // rows per packed A block, a multiple of MR
    NC = 2048,    // columns per packed B block, a multiple of NR
    GROUP = 256,  // columns per task when there are too few row blocks to share out
};

// The operands and result of one product (the arguments of gemm_bf16).
struct product {
    int trans_a, trans_b, m, n, k;
    float alpha, beta;
    const float *a, *b;
    float *c;
    int lda, ldb, ldc;
};

// How a micro-tile's sum meets C: C = alpha AB, C = alpha AB + C, or C = alpha AB + beta C.
enum store_mode { STORE_OVERWRITE, STORE_ACCUMULATE, STORE_SCALE };

struct pack_buffers {
    uint16_t *a;   // [MC / MR][KC / 2][MR][2]
    uint16_t *b;   // [NC / NR][KC / 2][NR][2]
};

static struct pack_buffers *buffers;   // [reserved], one per OpenMP thread number
static int reserved;

uint16_t bf16_from_float(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);   // quiet NaN
    u += 0x7fffu + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

float float_from_bf16(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

int gemm_bf16_supported(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bf16");
}

int gemm_bf16_reserve(int threads)
{
    if (!gemm_bf16_supported())
        return err("bf16 products need a processor with AVX512-BF16, and this one has none");
    if (threads <= reserved) return 0;
    struct pack_buffers *grown = realloc(buffers, sizeof *grown * (size_t)threads);
    if (!grown) return err("out of memory for the bf16 packing buffers of %d threads", threads);
    buffers = grown;
    for (int t = reserved; t < threads; t++) {
        buffers[t].a = aligned_alloc(64, sizeof(uint16_t) * MC * KC);
        buffers[t].b = aligned_alloc(64, sizeof(uint16_t) * KC * NC);
        if (!buffers[t].a || !buffers[t].b) {
            free(buffers[t].a);
            free(buffers[t].b);
            return err("out of memory for the bf16 packing buffers of %d threads", threads);
        }
        reserved = t + 1;
    }
    return 0;
}

// ---------------------------------------------------------------------------------------------
// Packing: element (row, kk) of op(A) and (kk, col) of op(B), rounded to bf16; zero beyond the edges.

static float a_at(const struct product *p, int row, int kk)
{
    return p->trans_a ? p->a[(size_t)kk * p->lda + row] : p->a[(size_t)row * p->lda + kk];
}

static float b_at(const struct product *p, int kk, int col)
{
    return p->trans_b ? p->b[(size_t)col * p->ldb + kk] : p->b[(size_t)kk * p->ldb + col];
}

// MR rows from row0 (rows beyond m are zero), k from k0 for kc (padded to even): dst [kc2][MR][2].
static void pack_a_sliver(uint16_t *dst, const struct product *p, int row0, int k0, int kc)
{
    int kc2 = (kc + 1) / 2;
    for (int r = 0; r < MR; r++) {
        int row = row0 + r;
        for (int kk = 0; kk < 2 * kc2; kk++) {
            float v = row < p->m && kk < kc ? a_at(p, row, k0 + kk) : 0;
            dst[((size_t)(kk / 2) * MR + r) * 2 + kk % 2] = bf16_from_float(v);
        }
    }
}

// NR columns from col0 (columns beyond n are zero), k from k0 for kc: dst [kc2][NR][2].
static void pack_b_sliver(uint16_t *dst, const struct product *p, int col0, int k0, int kc)
{
    int kc2 = (kc + 1) / 2;
    for (int kk = 0; kk < 2 * kc2; kk++)
        for (int j = 0; j < NR; j++) {
            int col = col0 + j;
            float v = col < p->n && kk < kc ? b_at(p, k0 + kk, col) : 0;
            dst[((size_t)(kk / 2) * NR + j) * 2 + kk % 2] = bf16_from_float(v);
        }
}

static size_t sliver_size(int rows, int kc) { return (size_t)rows * (size_t)((kc + 1) / 2) * 2; }

// ---------------------------------------------------------------------------------------------
// Micro-kernel

#define BF16_TARGET __attribute__((target("avx512f,avx512bf16")))

BF16_TARGET static inline void store_part(float *dst, __m512 sum, __mmask16 mask, __m512 alpha,
                                          __m512 beta, enum store_mode mode)
{
    __m512 v = _mm512_mul_ps(alpha, sum);
    if (mode == STORE_ACCUMULATE) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, dst));
    if (mode == STORE_SCALE) v = _mm512_add_ps(v, _mm512_mul_ps(beta, _mm512_maskz_loadu_ps(mask, dst)));
    _mm512_mask_storeu_ps(dst, mask, v);
}

static __mmask16 lane_mask(int lanes)
{
    if (lanes <= 0) return 0;
    return lanes >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << lanes) - 1);
}

// c [mr, nr] (row stride ldc) from a packed A sliver [kc2][MR][2] and B sliver [kc2][NR][2]:
// each lane sums its k pairs in order, a[2q] b[2q] then a[2q + 1] b[2q + 1] (vdpbf16ps).
BF16_TARGET static void micro_kernel(int kc2, const uint16_t *a, const uint16_t *b, float *c, int ldc,
                                     int mr, int nr, float alpha, float beta, enum store_mode mode)
{
    __m512 acc[MR][2];
    for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (int q = 0; q < kc2; q++) {
        __m512bh b0 = (__m512bh)_mm512_load_si512(b + (size_t)q * 2 * NR);
        __m512bh b1 = (__m512bh)_mm512_load_si512(b + (size_t)q * 2 * NR + NR);
        const uint16_t *pair = a + (size_t)q * 2 * MR;
        for (int r = 0; r < MR; r++) {
            uint32_t word;
            memcpy(&word, pair + 2 * r, sizeof word);
            __m512bh av = (__m512bh)_mm512_set1_epi32((int)word);
            acc[r][0] = _mm512_dpbf16_ps(acc[r][0], av, b0);
            acc[r][1] = _mm512_dpbf16_ps(acc[r][1], av, b1);
        }
    }
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    __mmask16 low = lane_mask(nr), high = lane_mask(nr - 16);
    for (int r = 0; r < mr; r++) {
        float *row = c + (size_t)r * ldc;
        store_part(row, acc[r][0], low, va, vb, mode);
        if (high) store_part(row + 16, acc[r][1], high, va, vb, mode);
    }
}

// ---------------------------------------------------------------------------------------------
// Blocks and tasks

static enum store_mode mode_of(const struct product *p, int first_k_block)
{
    if (!first_k_block || p->beta == 1) return STORE_ACCUMULATE;
    return p->beta == 0 ? STORE_OVERWRITE : STORE_SCALE;
}

// Rows [row0, row0 + mc) x columns [col0, col0 + cols) of C over k block [k0, k0 + kc), with the
// B block of columns from jc already packed in b_block. a_block holds the packed rows.
static void run_task(const struct product *p, uint16_t *a_block, const uint16_t *b_block, int jc,
                     int k0, int kc, int row0, int mc, int col0, int cols)
{
    int kc2 = (kc + 1) / 2;
    size_t a_step = sliver_size(MR, kc), b_step = sliver_size(NR, kc);
    enum store_mode mode = mode_of(p, k0 == 0);
    for (int i = 0; i < mc; i += MR) pack_a_sliver(a_block + (size_t)(i / MR) * a_step, p, row0 + i, k0, kc);
    for (int j = col0; j < col0 + cols; j += NR) {
        const uint16_t *b = b_block + (size_t)((j - jc) / NR) * b_step;
        int nr = p->n - j < NR ? p->n - j : NR;
        for (int i = 0; i < mc; i += MR) {
            int mr = p->m - row0 - i < MR ? p->m - row0 - i : MR;
            micro_kernel(kc2, a_block + (size_t)(i / MR) * a_step, b, p->c + (size_t)(row0 + i) * p->ldc + j,
                         p->ldc, mr, nr, p->alpha, p->beta, mode);
        }
    }
}

static int min_int(int a, int b) { return a < b ? a : b; }
static int ceil_div(int a, int b) { return (a + b - 1) / b; }

// C = beta C where k = 0 (no products to add).
static void scale_only(const struct product *p)
{
    for (int i = 0; i < p->m; i++)
        for (int j = 0; j < p->n; j++) {
            float *x = p->c + (size_t)i * p->ldc + j;
            *x = p->beta == 0 ? 0 : p->beta * *x;
        }
}

// The calling thread's number in the innermost active parallel region (0 outside any): the owner
// of its buffers also where it calls from inside a nested, inactive region.
static int team_thread(void)
{
    int level = omp_get_active_level();
    return level > 0 ? omp_get_ancestor_thread_num(level) : 0;
}

static struct pack_buffers *buffers_of(int thread)
{
    if (thread >= reserved) BUG("bf16 product on thread %d, buffers reserved for %d", thread, reserved);
    return &buffers[thread];
}

// One (column block, k block) step on the calling thread: pack B, then every row block.
static void block_serial(const struct product *p, struct pack_buffers *own, int jc, int nc, int k0, int kc)
{
    for (int s = 0; s < ceil_div(nc, NR); s++)
        pack_b_sliver(own->b + (size_t)s * sliver_size(NR, kc), p, jc + s * NR, k0, kc);
    for (int i = 0; i < p->m; i += MC)
        run_task(p, own->a, own->b, jc, k0, kc, i, min_int(MC, p->m - i), jc, nc);
}

// The same inside a parallel region: B packed by all threads into the shared block, then tasks of
// (row block, column group). The column groups split the block only where the row blocks are too
// few to keep every thread busy.
static void block_parallel(const struct product *p, uint16_t *shared_b, int jc, int nc, int k0, int kc)
{
    struct pack_buffers *own = buffers_of(team_thread());
#pragma omp for schedule(static)
    for (int s = 0; s < ceil_div(nc, NR); s++)
        pack_b_sliver(shared_b + (size_t)s * sliver_size(NR, kc), p, jc + s * NR, k0, kc);
    int row_blocks = ceil_div(p->m, MC);
    int group = row_blocks >= 2 * omp_get_num_threads() ? nc : GROUP;
    int groups = ceil_div(nc, group);
#pragma omp for schedule(dynamic, 1)
    for (int task = 0; task < row_blocks * groups; task++) {
        int i = task / groups * MC, j = task % groups * group;
        run_task(p, own->a, shared_b, jc, k0, kc, i, min_int(MC, p->m - i), jc + j, min_int(group, nc - j));
    }
}

static struct product product_of(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
                                 int lda, const float *b, int ldb, float beta, float *c, int ldc)
{
    return (struct product){trans_a, trans_b, m, n, k, alpha, beta, a, b, c, lda, ldb, ldc};
}

void gemm_bf16_serial(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
                      int lda, const float *b, int ldb, float beta, float *c, int ldc)
{
    struct product p = product_of(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    if (m <= 0 || n <= 0) return;
    if (k <= 0) {
        scale_only(&p);
        return;
    }
    struct pack_buffers *own = buffers_of(team_thread());
    for (int jc = 0; jc < n; jc += NC)
        for (int k0 = 0; k0 < k; k0 += KC) block_serial(&p, own, jc, min_int(NC, n - jc), k0, min_int(KC, k - k0));
}

void gemm_bf16(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
               const float *b, int ldb, float beta, float *c, int ldc)
{
    struct product p = product_of(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    if (m <= 0 || n <= 0) return;
    if (k <= 0) {
        scale_only(&p);
        return;
    }
    if (omp_in_parallel()) {   // its team's threads are busy: the caller's thread alone, own buffers
        gemm_bf16_serial(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    int threads = min_int(omp_get_max_threads(), reserved);
    if (threads < 1) BUG("bf16 product before gemm_bf16_reserve");
    uint16_t *shared_b = buffers[0].b;
#pragma omp parallel num_threads(threads)
    for (int jc = 0; jc < n; jc += NC)
        for (int k0 = 0; k0 < k; k0 += KC)
            block_parallel(&p, shared_b, jc, min_int(NC, n - jc), k0, min_int(KC, k - k0));
}
