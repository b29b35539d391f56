// The bf16 products (core/gemm_bf16.h): rounding to bf16 and packing; every transpose case and
// ragged shapes (odd k, k across oneDNN's k blocks, m and k between the grains of core/gemm_bf16.c,
// so rows of C through its staging block) against a reference in double over the bf16-rounded
// operands (only the fp32 accumulation may differ) and against the fp32 operands (within bf16
// rounding); alpha and beta; for the model's shapes, the bits the same on 1 and 2 threads, serially
// and inside a parallel region. Skipped, with a line saying so, on a processor without AVX512-BF16.
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/blas.h"
#include "core/gemm_bf16.h"
#include "core/rng.h"

static void fill(float *x, size_t n, uint64_t seed)
{
    struct rng r;
    rng_init(&r, seed, 0, RNG_INIT, 0);
    for (size_t i = 0; i < n; i++) x[i] = (float)rng_normal(&r);
}

static void test_rounding(void)
{
    CHECK(bf16_from_float(1.0f) == 0x3f80, "1.0 -> %#x", bf16_from_float(1.0f));
    // 1 + 2^-8 lies halfway between 1 and 1 + 2^-7: ties to the even 1.0
    CHECK(bf16_from_float(1.0f + 0x1p-8f) == 0x3f80, "tie to even, down");
    // 1 + 3 2^-8 lies halfway between 1 + 2^-7 (odd) and 1 + 2^-6: up to the even one
    CHECK(bf16_from_float(1.0f + 0x3p-8f) == 0x3f82, "tie to even, up");
    CHECK(bf16_from_float(1.0f + 0x1p-8f + 0x1p-20f) == 0x3f81, "above the tie rounds up");
    CHECK(bf16_from_float(-2.0f) == 0xc000, "-2.0");
    CHECK(isnan(float_from_bf16(bf16_from_float(NAN))), "NaN stays NaN");
    CHECK(float_from_bf16(bf16_from_float(INFINITY)) == INFINITY, "infinity stays infinite");
    CHECK(float_from_bf16(0x4049) == 3.140625f, "0x4049 -> %.9g", float_from_bf16(0x4049));
}

// bf16_pack_rows, plain and transposed (16 x 16 tiles in registers, edges one by one), against
// bf16_from_float element by element, special values included; padding columns zero.
static void test_packing(void)
{
    enum { ROWS = 37, COLS = 53, LD_DST = 64 };   // op(X) [ROWS, COLS]: full tiles and both edges
    const float specials[] = {NAN, -NAN, INFINITY, -INFINITY, -0.0f, 0x1p-130f, -0x1p-149f, 1.0f + 0x1p-8f,
                              1.0f + 0x3p-8f, 0x1.fffffep127f};
    const uint32_t signaling_nan = 0x7f800001u;   // would round to infinity were it not quieted
    float *x = malloc(sizeof *x * ROWS * COLS);
    fill(x, (size_t)ROWS * COLS, 7);
    for (size_t i = 0; i < sizeof specials / sizeof *specials; i++) x[i * 97 % (ROWS * COLS)] = specials[i];
    memcpy(&x[5], &signaling_nan, sizeof signaling_nan);
    uint16_t *dst = malloc(sizeof *dst * ROWS * LD_DST);
    for (int trans = 0; trans < 2; trans++) {
        memset(dst, 0xff, sizeof *dst * ROWS * LD_DST);
        bf16_pack_rows(dst, LD_DST, x, trans ? ROWS : COLS, trans, 0, ROWS, COLS);
        int wrong = 0;
        for (int i = 0; i < ROWS; i++)
            for (int j = 0; j < LD_DST; j++) {
                uint16_t want = j < COLS ? bf16_from_float(trans ? x[j * ROWS + i] : x[i * COLS + j]) : 0;
                wrong += dst[i * LD_DST + j] != want;
            }
        CHECK(wrong == 0, "packing (trans %d): %d of %d elements wrong", trans, wrong, ROWS * LD_DST);
    }
    free(x);
    free(dst);
}

static double op_at(const float *x, int trans, int ld, int row, int col, int rounded)
{
    float v = trans ? x[(size_t)col * ld + row] : x[(size_t)row * ld + col];
    return rounded ? float_from_bf16(bf16_from_float(v)) : v;
}

struct shape {
    int trans_a, trans_b, m, n, k;
    int ldc;   // row stride of C; 0: n
};

static int ldc_of(struct shape s) { return s.ldc ? s.ldc : s.n; }

// Worst |C - reference| over C, each in units of alpha sum_k |a b| of its element.
static double worst_error(struct shape s, const float *a, const float *b, const float *c0,
                          const float *c, float alpha, float beta, int rounded)
{
    int lda = s.trans_a ? s.m : s.k, ldb = s.trans_b ? s.k : s.n, ldc = ldc_of(s);
    double worst = 0;
    for (int i = 0; i < s.m; i++)
        for (int j = 0; j < s.n; j++) {
            double sum = 0, size = 0;
            for (int p = 0; p < s.k; p++) {
                double x = op_at(a, s.trans_a, lda, i, p, rounded), y = op_at(b, s.trans_b, ldb, p, j, rounded);
                sum += x * y;
                size += fabs(x * y);
            }
            double want = alpha * sum + (beta == 0 ? 0 : beta * (double)c0[(size_t)i * ldc + j]);
            double e = fabs(c[(size_t)i * ldc + j] - want) / (fabs(alpha) * size + 1e-30);
            if (e > worst) worst = e;
        }
    return worst;
}

static void run_case(struct shape s, float alpha, float beta, int serial)
{
    int ldc = ldc_of(s);
    size_t na = (size_t)s.m * s.k, nb = (size_t)s.k * s.n, nc = (size_t)s.m * ldc;
    float *a = malloc(sizeof *a * na), *b = malloc(sizeof *b * nb);
    float *c0 = malloc(sizeof *c0 * nc), *c = malloc(sizeof *c * nc);
    fill(a, na, 1);
    fill(b, nb, 2);
    fill(c0, nc, 3);
    if (beta == 0)
        for (size_t i = 0; i < nc; i++) c0[i] = NAN;   // beta 0 must not read C
    memcpy(c, c0, sizeof *c * nc);
    int lda = s.trans_a ? s.m : s.k, ldb = s.trans_b ? s.k : s.n;
    (serial ? gemm_bf16_serial : gemm_bf16)(s.trans_a, s.trans_b, s.m, s.n, s.k, alpha, a, lda, b, ldb,
                                            beta, c, ldc);
    int outside_kept = 1;   // C's rows past column n belong to others
    for (int i = 0; i < s.m; i++)
        outside_kept &= memcmp(c + (size_t)i * ldc + s.n, c0 + (size_t)i * ldc + s.n, sizeof(float) * (ldc - s.n)) == 0;
    CHECK(outside_kept, "m %d n %d ldc %d: C written past column n", s.m, s.n, ldc);
    // fp32 accumulation of exact bf16 products: a few units of 2^-24 per k block and pair
    double accumulated = worst_error(s, a, b, c0, c, alpha, beta, 1);
    // bf16 operands: each rounded by at most 2^-9, a product by at most 2^-8 (plus the above)
    double against_fp32 = worst_error(s, a, b, c0, c, alpha, beta, 0);
    double accumulation_tol = (s.k / 2 + 4) * 0x1p-24 * 2;
    CHECK(accumulated <= accumulation_tol, "%c%c m %d n %d k %d alpha %g beta %g serial %d: %.3g > %.3g",
          s.trans_a ? 'T' : 'N', s.trans_b ? 'T' : 'N', s.m, s.n, s.k, alpha, beta, serial, accumulated,
          accumulation_tol);
    CHECK(against_fp32 <= 0x1p-8 + accumulation_tol, "against fp32 operands: %.3g", against_fp32);
    CHECK(against_fp32 > 0x1p-12, "bf16 rounding not seen (%.3g): not a bf16 product?", against_fp32);
    free(a);
    free(b);
    free(c0);
    free(c);
}

static void test_products(void)
{
    const struct shape shapes[] = {
        {0, 0, 37, 45, 301, 0}, {0, 0, 12, 32, 256, 0}, {0, 0, 50, 33, 17, 0},
        {0, 0, 5, 70, 530, 0},  {0, 0, 1, 1, 1, 0},     {0, 0, 3, 2100, 40, 0},
        // past 64, m and k round up to a grain: m 131 -> 136, all of C staged, k 77 -> 80; m 517 =
        // 512 in place + 5 staged rows, k 300 -> 304; k 1030 -> 1088, past 1024 where oneDNN
        // lengthens its k blocks
        {0, 0, 131, 45, 77, 0}, {0, 0, 517, 24, 300, 0}, {0, 0, 70, 33, 1030, 0},
        // C rows wider than n (attention's heads), staged whole: with and without staged rows
        {0, 0, 49, 32, 49, 96}, {0, 0, 131, 24, 40, 100},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++)
        for (int tr = 0; tr < 4; tr++) {
            struct shape s = shapes[i];
            s.trans_a = tr & 1;
            s.trans_b = tr >> 1;
            run_case(s, 1, 0, 0);
            run_case(s, 0.25f, 1, 1);
        }
    run_case((struct shape){0, 1, 29, 40, 513, 0}, -0.5f, 0.75f, 0);
}

struct named_shape {
    const char *name;
    int trans_a, trans_b, m, n, k;
    float alpha, beta;
    int ldc;   // 0: n
};

// The model's products (DiT-S/2 at batch 16: 4096 tokens of width 384, 6 heads of 64 over 256
// tokens; the mini model: 784 tokens of width 192, heads of 32 over 49 tokens; experts of a few
// hundred tokens) and weight gradients with a large k and small m and n: oneDNN would split their k
// over 2 threads were op(A) handed over transposed.
static const struct named_shape model_shapes[] = {
    {"qkv", NO_TRANS, TRANS, 4096, 1152, 384, 1, 1, 0},
    {"fc1.dX", NO_TRANS, NO_TRANS, 4096, 384, 1536, 1, 0, 0},
    {"fc2.dW", TRANS, NO_TRANS, 384, 1536, 4096, 1, 1, 0},
    {"proj.dW", TRANS, NO_TRANS, 384, 384, 8192, 1, 1, 0},
    {"attn.qk", NO_TRANS, TRANS, 256, 256, 64, 0.125f, 0, 0},
    {"attn.pv", NO_TRANS, NO_TRANS, 256, 64, 256, 1, 0, 384},
    {"attn.dv", TRANS, NO_TRANS, 256, 64, 256, 1, 0, 1152},
    {"mini.qkv", NO_TRANS, TRANS, 784, 576, 192, 1, 1, 0},
    {"mini.attn.qk", NO_TRANS, TRANS, 49, 49, 32, 0.1767767f, 0, 0},
    {"mini.attn.pv", NO_TRANS, NO_TRANS, 49, 32, 49, 1, 0, 192},
    {"mini.attn.dk", TRANS, NO_TRANS, 49, 32, 49, 1, 0, 576},
    {"mini.adaln.dW", TRANS, NO_TRANS, 1152, 192, 16, 1, 1, 0},
    {"expert.up", NO_TRANS, TRANS, 517, 768, 384, 1, 0, 0},
    {"expert.dX", NO_TRANS, NO_TRANS, 517, 384, 768, 1, 1, 0},
    {"expert.dW", TRANS, NO_TRANS, 768, 384, 517, 1, 1, 0},
    {"small.dW 64", TRANS, NO_TRANS, 64, 64, 8192, 1, 1, 0},
    {"small.dW 32", TRANS, NO_TRANS, 32, 48, 4096, 1, 1, 0},
    {"small.dW 16", TRANS, NO_TRANS, 16, 16, 2048, 1, 1, 0},
};

// One shape on 1 thread, on 2, serially, and serially on each thread of a parallel region (the
// experts' loop of moe.c) and through gemm_bf16 there: the same bits.
static void check_thread_independence(const struct named_shape *s)
{
    int lda = s->trans_a ? s->m : s->k, ldb = s->trans_b ? s->k : s->n, ldc = s->ldc ? s->ldc : s->n;
    size_t na = (size_t)s->m * s->k, nb = (size_t)s->k * s->n, nc = (size_t)s->m * ldc;
    float *a = malloc(sizeof *a * na), *b = malloc(sizeof *b * nb), *c0 = malloc(sizeof *c0 * nc);
    enum { ONE, TWO, SERIAL, INSIDE_0, INSIDE_1, INSIDE_THREADED, N_RUNS };
    float *c = malloc(sizeof *c * nc * N_RUNS);
    fill(a, na, 4);
    fill(b, nb, 5);
    fill(c0, nc, 6);
    for (int r = 0; r < N_RUNS; r++) memcpy(c + r * nc, c0, sizeof *c * nc);
#define PRODUCT(fn, run) fn(s->trans_a, s->trans_b, s->m, s->n, s->k, s->alpha, a, lda, b, ldb, s->beta, c + (run) * nc, ldc)
    omp_set_num_threads(1);
    PRODUCT(gemm_bf16, ONE);
    omp_set_num_threads(2);
    PRODUCT(gemm_bf16, TWO);
    PRODUCT(gemm_bf16_serial, SERIAL);
#pragma omp parallel num_threads(2)
    {
        int t = omp_get_thread_num();
        PRODUCT(gemm_bf16_serial, INSIDE_0 + t);
        if (t == 1) PRODUCT(gemm_bf16, INSIDE_THREADED);
    }
#undef PRODUCT
    const char *names[N_RUNS] = {"1 thread", "2 threads", "serial", "serial on thread 0 of a region",
                                 "serial on thread 1 of a region", "gemm_bf16 inside a region"};
    for (int r = TWO; r < N_RUNS; r++)
        CHECK(memcmp(c, c + r * nc, sizeof(float) * nc) == 0, "%s (%c%c m %d n %d k %d): %s and 1 thread differ",
              s->name, s->trans_a ? 'T' : 'N', s->trans_b ? 'T' : 'N', s->m, s->n, s->k, names[r]);
    free(a);
    free(b);
    free(c0);
    free(c);
}

static void test_thread_independence(void)
{
    for (size_t i = 0; i < sizeof model_shapes / sizeof *model_shapes; i++) check_thread_independence(&model_shapes[i]);
    // ragged: staged rows (m 600 = 576 + 24) and padded k (700 -> 704)
    check_thread_independence(&(struct named_shape){"ragged", TRANS, NO_TRANS, 600, 200, 700, 1, 0, 0});
}

int main(void)
{
    test_rounding();
    test_packing();
    if (!gemm_bf16_supported()) {
        printf("test_bf16: products skipped: this processor has no AVX512-BF16\n");
        CHECK(gemm_bf16_reserve(1) < 0, "reserve must refuse without AVX512-BF16");
        return test_summary("test_bf16");
    }
    CHECK(gemm_bf16_reserve(2) == 0, "reserve: %s", "failed");
    test_products();
    test_thread_independence();
    return test_summary("test_bf16");
}
