// bf16 products on oneDNN's matmul: op(A) and op(B) are packed, rounded to bf16, into dense
// row-major blocks owned by the calling thread (m and k rounded up to a grain), and one cached
// primitive per shape (core/bf16_matmul.c) multiplies them into C with alpha and beta applied.
// Why the bits do not depend on the thread count: above pack_operands; why m and k have grains:
// above plan_of.
#include "core/gemm_bf16.h"

#include <omp.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/bf16_matmul.h"
#include "core/error.h"

enum {
    EXACT_BELOW = 64,          // m and k below this run at their own size
    GRAINS_PER_OCTAVE = 16,    // from there on, rounded up to 1/16 of their power of two (<= 6% more)
    STAGE_WHOLE_BELOW = 512,   // rows of C below which a ragged product runs as one, all staged
    PACK_ROWS = 64,            // rows of an operand per packing task
};

// The operands and result of one product (the arguments of gemm_bf16).
struct product {
    int trans_a, trans_b, m, n, k;
    float alpha, beta;
    const float *a, *b;
    float *c;
    int lda, ldb, ldc;
};

// How a product is cut: rows [0, body) of C in place, rows [body, m) (rest, fewer than grain)
// through a staging block of grain rows; k padded to k_pad.
struct plan {
    int body, rest, grain, k_pad;
};

// A thread's buffers: op(A) [body + grain, k_pad] and op(B) [k_pad, n] in bf16, the staging block
// of C's rows [.., n] and oneDNN's scratchpad. For serial products each grows to the largest size any
// thread has needed (the high-water mark), so that a thread meeting a shape another met first
// allocates at its next product, not steps later; products on all threads (thread 0's, outside
// parallel regions) grow only thread 0's, or every thread would hold the largest linear's operands.
enum buffer { BUF_A, BUF_B, BUF_STAGE, BUF_SCRATCH, N_BUFFERS };
struct workspace {
    void *buffer[N_BUFFERS];
    size_t capacity[N_BUFFERS];
};

static struct workspace *workspaces;   // [reserved], one per OpenMP thread number
static int reserved;
static atomic_size_t high_water[N_BUFFERS];

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
    struct workspace *grown = realloc(workspaces, sizeof *grown * (size_t)threads);
    if (!grown) return err("out of memory for the bf16 workspaces of %d threads", threads);
    workspaces = grown;
    memset(workspaces + reserved, 0, sizeof *grown * (size_t)(threads - reserved));
    if (bf16_matmul_init(threads) < 0) return err_context("bf16 products");
    reserved = threads;
    return 0;
}

// ---------------------------------------------------------------------------------------------
// Plan and buffers

static int min_int(int a, int b) { return a < b ? a : b; }
static int ceil_div(int a, int b) { return (a + b - 1) / b; }

static int grain_of(int x)
{
    if (x < EXACT_BELOW) return 1;
    int power = 1;
    while (power <= x / 2) power *= 2;
    return power / GRAINS_PER_OCTAVE;
}

// m and k are rounded up to a grain (1/16 of their power of two, from 64 up) so that the varying
// token counts of experts meet a few hundred primitives, not thousands. The zero columns of op(A)
// and rows of op(B) added to k change no sum (exact zeros after the last k of the last k block;
// 1024, past which oneDNN lengthens its k blocks, is a grain boundary); the rows of C past the last
// whole grain run as one grain of rows through a staging block, since C has no room for padding
// (all of C where it is small: one oneDNN call, not two).
static struct plan plan_of(int m, int k)
{
    int grain = grain_of(m), body = m / grain * grain, k_grain = grain_of(k);
    return (struct plan){body, m - body, grain, ceil_div(k, k_grain) * k_grain};
}

static size_t raise_high_water(enum buffer b, size_t bytes)
{
    size_t seen = atomic_load(&high_water[b]);
    while (seen < bytes && !atomic_compare_exchange_weak(&high_water[b], &seen, bytes)) {}
    return seen > bytes ? seen : bytes;
}

static void *buffer_of(struct workspace *w, enum buffer b, size_t bytes, int threads)
{
    size_t want = threads == 1 ? raise_high_water(b, bytes) : bytes;
    if (w->capacity[b] >= want) return w->buffer[b];
    free(w->buffer[b]);
    size_t rounded = (want + 63) / 64 * 64;
    w->buffer[b] = aligned_alloc(64, rounded);
    if (!w->buffer[b]) BUG("out of memory for %zu bytes of bf16 operands", rounded);
    w->capacity[b] = rounded;
    return w->buffer[b];
}

// The calling thread's number in the innermost active parallel region (0 outside any): the owner
// of its workspace also where it calls from inside a nested, inactive region.
static int team_thread(void)
{
    int level = omp_get_active_level();
    return level > 0 ? omp_get_ancestor_thread_num(level) : 0;
}

static struct workspace *workspace_of(int thread)
{
    if (thread >= reserved) BUG("bf16 product on thread %d, workspaces reserved for %d", thread, reserved);
    return &workspaces[thread];
}

// ---------------------------------------------------------------------------------------------
// Products

// Why the bits do not depend on the thread count. oneDNN 2.6's brgemm matmul on AVX512-BF16 sums
// each element of C over k in an order fixed by k alone (blocks of 512, or 1024 where k > 1024, in
// turn; pairs within a block, as vdpbf16ps adds them) and splits rows and columns of C over threads,
// with one exception: for a transposed A (its weight-gradient layout) with k a power of two >= 2048
// and fewer column blocks of C than threads (weight gradients of small layers: m 64, n 64, k 8192),
// a primitive created for 2 threads splits k over them and adds the partial sums, chosen at creation
// from the thread count. Measured on such products: up to 58% of the elements differ between 1 and
// 2 threads. op(A) reaches oneDNN packed row-major whatever trans_a says, so that split is never
// chosen. The thread count a primitive is created for (part of its key) then changes only the row
// and column blocking: measured bit-identical for 1, 2, 3, 4, 8 and 16; and a primitive created for
// several threads, run inside a parallel region, runs on the calling thread with the same blocking.
// tests/test_bf16.c checks the model's shapes on 1 and 2 threads, serially and inside a parallel
// region, bit for bit.
//
// op(A) into a [body + grain, k_pad] and op(B) into b [k_pad, n], zero where padded; on `threads`
// threads (1: the calling thread).
static void pack_operands(const struct product *p, const struct plan *plan, uint16_t *a, uint16_t *b, int threads)
{
    int a_tasks = ceil_div(p->m, PACK_ROWS), b_tasks = ceil_div(p->k, PACK_ROWS);
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
    for (int t = 0; t < a_tasks + b_tasks; t++) {
        int row0 = (t < a_tasks ? t : t - a_tasks) * PACK_ROWS;
        if (t < a_tasks)
            bf16_pack_rows(a, plan->k_pad, p->a, p->lda, p->trans_a, row0, min_int(row0 + PACK_ROWS, p->m), p->k);
        else
            bf16_pack_rows(b, p->n, p->b, p->ldb, p->trans_b, row0, min_int(row0 + PACK_ROWS, p->k), p->n);
    }
    size_t a_padding = (size_t)(plan->rest ? plan->grain - plan->rest : 0) * plan->k_pad;
    memset(a + (size_t)p->m * plan->k_pad, 0, sizeof(uint16_t) * a_padding);
    memset(b + (size_t)p->k * p->n, 0, sizeof(uint16_t) * (plan->k_pad - p->k) * p->n);
}

// Rows [row0, row0 + rows) of C through the staging block stage [rows_pad, n]: C's rows copied in
// where beta reads them (the padding rows zero), the product over rows_pad rows of a, the rows
// copied back.
static void run_staged(const struct product *p, int row0, int rows, int rows_pad, struct bf16_matmul *mm, int slot,
                       const uint16_t *a, const uint16_t *b, float *stage, void *scratch)
{
    float *c = p->c + (size_t)row0 * p->ldc;
    size_t row_bytes = sizeof(float) * p->n;
    if (p->beta != 0) {
        for (int i = 0; i < rows; i++) memcpy(stage + (size_t)i * p->n, c + (size_t)i * p->ldc, row_bytes);
        memset(stage + (size_t)rows * p->n, 0, row_bytes * (rows_pad - rows));
    }
    bf16_matmul_run(mm, slot, a, b, stage, scratch);
    for (int i = 0; i < rows; i++) memcpy(c + (size_t)i * p->ldc, stage + (size_t)i * p->n, row_bytes);
}

static struct bf16_matmul *primitive_of(const struct product *p, int m, int k, int threads)
{
    return bf16_matmul_acquire(&(struct bf16_matmul_key){m, p->n, k, threads, p->alpha, p->beta});
}

static size_t larger(size_t x, size_t y) { return x > y ? x : y; }

// A dense C: rows [0, body) in place, the rest staged.
static void run_dense(const struct product *p, const struct plan *plan, int threads, int slot, struct workspace *w)
{
    struct bf16_matmul *body = plan->body ? primitive_of(p, plan->body, plan->k_pad, threads) : NULL;
    struct bf16_matmul *rest = plan->rest ? primitive_of(p, plan->grain, plan->k_pad, threads) : NULL;
    size_t scratch_bytes = larger(body ? bf16_matmul_scratch_size(body) : 0, rest ? bf16_matmul_scratch_size(rest) : 0);
    uint16_t *a = w->buffer[BUF_A], *b = w->buffer[BUF_B];
    void *scratch = scratch_bytes ? buffer_of(w, BUF_SCRATCH, scratch_bytes, threads) : NULL;
    if (body) bf16_matmul_run(body, slot, a, b, p->c, scratch);
    if (rest) {
        float *stage = buffer_of(w, BUF_STAGE, sizeof(float) * plan->grain * p->n, threads);
        const uint16_t *a_rest = a + (size_t)plan->body * plan->k_pad;
        run_staged(p, plan->body, plan->rest, plan->grain, rest, slot, a_rest, b, stage, scratch);
        bf16_matmul_release(rest);
    }
    if (body) bf16_matmul_release(body);
}

// All of C through the staging block: where its rows are wider than n (attention writes each head
// into rows of all heads), since oneDNN 2.6's brgemm matmul takes a dense C only, and where C is
// small and ragged.
static void run_staged_whole(const struct product *p, const struct plan *plan, int threads, int slot,
                             struct workspace *w)
{
    int rows_pad = plan->body + (plan->rest ? plan->grain : 0);
    struct bf16_matmul *mm = primitive_of(p, rows_pad, plan->k_pad, threads);
    size_t scratch_bytes = bf16_matmul_scratch_size(mm);
    void *scratch = scratch_bytes ? buffer_of(w, BUF_SCRATCH, scratch_bytes, threads) : NULL;
    float *stage = buffer_of(w, BUF_STAGE, sizeof(float) * rows_pad * p->n, threads);
    run_staged(p, 0, p->m, rows_pad, mm, slot, w->buffer[BUF_A], w->buffer[BUF_B], stage, scratch);
    bf16_matmul_release(mm);
}

static void product(const struct product *p, int threads, int slot)
{
    struct workspace *w = workspace_of(slot);
    struct plan plan = plan_of(p->m, p->k);
    int a_rows = plan.body + (plan.rest ? plan.grain : 0);
    uint16_t *a = buffer_of(w, BUF_A, sizeof(uint16_t) * a_rows * plan.k_pad, threads);
    uint16_t *b = buffer_of(w, BUF_B, sizeof(uint16_t) * plan.k_pad * p->n, threads);
    pack_operands(p, &plan, a, b, threads);
    if (p->ldc == p->n && (plan.rest == 0 || p->m >= STAGE_WHOLE_BELOW))
        run_dense(p, &plan, threads, slot, w);
    else
        run_staged_whole(p, &plan, threads, slot, w);
}

// C = beta C where k = 0 (no products to add).
static void scale_only(const struct product *p)
{
    for (int i = 0; i < p->m; i++)
        for (int j = 0; j < p->n; j++) {
            float *x = p->c + (size_t)i * p->ldc + j;
            *x = p->beta == 0 ? 0 : p->beta * *x;
        }
}

static struct product product_of(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
                                 int lda, const float *b, int ldb, float beta, float *c, int ldc)
{
    return (struct product){trans_a, trans_b, m, n, k, alpha, beta, a, b, c, lda, ldb, ldc};
}

// Nothing to multiply: 1 after doing what remains (C = beta C where k is 0).
static int trivial(const struct product *p)
{
    if (p->m <= 0 || p->n <= 0) return 1;
    if (p->k > 0) return 0;
    scale_only(p);
    return 1;
}

void gemm_bf16_serial(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
                      int lda, const float *b, int ldb, float beta, float *c, int ldc)
{
    struct product p = product_of(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    if (!trivial(&p)) product(&p, 1, team_thread());
}

void gemm_bf16(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
               const float *b, int ldb, float beta, float *c, int ldc)
{
    struct product p = product_of(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    if (trivial(&p)) return;
    if (omp_in_parallel()) {   // its team's threads are busy: the caller's thread alone, own workspace
        product(&p, 1, team_thread());
        return;
    }
    int threads = min_int(omp_get_max_threads(), reserved);
    if (threads < 1) BUG("bf16 product before gemm_bf16_reserve");
    product(&p, threads, 0);
}
