// The bf16 products (core/gemm_bf16.h): rounding to bf16; every transpose case and ragged shapes
// (edges of the micro-tile, odd k, k across blocks, n across column blocks) against a reference in
// double over the bf16-rounded operands (only the fp32 accumulation may differ) and against the
// fp32 operands (within bf16 rounding); alpha and beta; the bits the same on 1 and 2 threads and
// serially. Skipped, with a line saying so, on a processor without AVX512-BF16.
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

static double op_at(const float *x, int trans, int ld, int row, int col, int rounded)
{
    float v = trans ? x[(size_t)col * ld + row] : x[(size_t)row * ld + col];
    return rounded ? float_from_bf16(bf16_from_float(v)) : v;
}

struct shape {
    int trans_a, trans_b, m, n, k;
};

// Worst |C - reference| over C, each in units of alpha sum_k |a b| of its element.
static double worst_error(struct shape s, const float *a, const float *b, const float *c0,
                          const float *c, float alpha, float beta, int rounded)
{
    int lda = s.trans_a ? s.m : s.k, ldb = s.trans_b ? s.k : s.n;
    double worst = 0;
    for (int i = 0; i < s.m; i++)
        for (int j = 0; j < s.n; j++) {
            double sum = 0, size = 0;
            for (int p = 0; p < s.k; p++) {
                double x = op_at(a, s.trans_a, lda, i, p, rounded), y = op_at(b, s.trans_b, ldb, p, j, rounded);
                sum += x * y;
                size += fabs(x * y);
            }
            double want = alpha * sum + (beta == 0 ? 0 : beta * (double)c0[(size_t)i * s.n + j]);
            double e = fabs(c[(size_t)i * s.n + j] - want) / (fabs(alpha) * size + 1e-30);
            if (e > worst) worst = e;
        }
    return worst;
}

static void run_case(struct shape s, float alpha, float beta, int serial)
{
    size_t na = (size_t)s.m * s.k, nb = (size_t)s.k * s.n, nc = (size_t)s.m * s.n;
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
                                            beta, c, s.n);
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
        {0, 0, 37, 45, 301}, {0, 0, 12, 32, 256}, {0, 0, 50, 33, 17},
        {0, 0, 5, 70, 530},  {0, 0, 1, 1, 1},     {0, 0, 3, 2100, 40},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++)
        for (int tr = 0; tr < 4; tr++) {
            struct shape s = shapes[i];
            s.trans_a = tr & 1;
            s.trans_b = tr >> 1;
            run_case(s, 1, 0, 0);
            run_case(s, 0.25f, 1, 1);
        }
    run_case((struct shape){0, 1, 29, 40, 513}, -0.5f, 0.75f, 0);
}

// 1 thread, 2 threads and serial: the same bits.
static void test_thread_independence(void)
{
    int m = 300, n = 200, k = 700;
    size_t nc = (size_t)m * n;
    float *a = malloc(sizeof *a * m * k), *b = malloc(sizeof *b * k * n);
    float *c[3] = {calloc(nc, sizeof(float)), calloc(nc, sizeof(float)), calloc(nc, sizeof(float))};
    fill(a, (size_t)m * k, 4);
    fill(b, (size_t)k * n, 5);
    for (int run = 0; run < 2; run++) {
        omp_set_num_threads(run + 1);
        gemm_bf16(TRANS, NO_TRANS, m, n, k, 1, a, m, b, n, 0, c[run], n);
    }
    gemm_bf16_serial(TRANS, NO_TRANS, m, n, k, 1, a, m, b, n, 0, c[2], n);
    CHECK(memcmp(c[0], c[1], sizeof(float) * nc) == 0, "1 and 2 threads differ");
    CHECK(memcmp(c[0], c[2], sizeof(float) * nc) == 0, "threaded and serial differ");
    // the threaded entry called from inside a parallel region: each thread alone on its own buffers
    float *inside = calloc(4 * nc, sizeof(float));
    omp_set_num_threads(2);
#pragma omp parallel for schedule(static)
    for (int i = 0; i < 4; i++) gemm_bf16(TRANS, NO_TRANS, m, n, k, 1, a, m, b, n, 0, inside + i * nc, n);
    for (int i = 0; i < 4; i++)
        CHECK(memcmp(c[0], inside + i * nc, sizeof(float) * nc) == 0, "product %d inside a parallel region differs", i);
    free(inside);
    free(a);
    free(b);
    for (int i = 0; i < 3; i++) free(c[i]);
}

int main(void)
{
    test_rounding();
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
