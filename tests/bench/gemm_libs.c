// make bench-gemm: the matrix products of a DiT-S/2 training step (batch 32, 8192 tokens of width
// 384) on the libraries that could run them, side by side in one process: bf16 through gemm_bf16
// (core/gemm_bf16.c: fp32 operands packed to bf16, then oneDNN's matmul, what the model runs) and
// on oneDNN's matmul called directly (bf16 operands, fp32 result), once on operands already in bf16
// and once counting their conversion from fp32 (a oneDNN reorder each), and on fp32 operands with
// oneDNN's bf16 math mode (fpmath_mode bf16: it converts internally); fp32 on BLIS (what the model
// runs) and on oneDNN. Each product in its three forms of a training step: the forward C = A B^T,
// the input gradient dA = dC B and the weight gradient dB = dC^T A. For each it prints GFLOP/s, and
// whether the direct oneDNN bf16 result (the weight gradient's A handed over transposed) is
// bit-identical between 1 and all threads and between two calls; gemm_bf16's is (core/gemm_bf16.c,
// tests/test_bf16.c). It chose oneDNN over promoe's own AVX512-BF16 kernels (README, "Mixed
// precision").
#include <dnnl.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/blas.h"
#include "core/clock.h"
#include "core/gemm_bf16.h"

#define MIN_SECONDS 0.4   // each rate: repeat the product for at least this long

enum { N_TOKENS = 32 * 256, WIDTH = 384 };

struct product {
    const char *name;
    int trans_a, trans_b, m, n, k;   // C [m, n] = op(A) op(B), row-major as core/blas.h
};

struct onednn {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
};

#define DNNL_OK(call)                                                                  \
    do {                                                                               \
        dnnl_status_t status_ = (call);                                                \
        if (status_ != dnnl_success) {                                                 \
            fprintf(stderr, "bench-gemm: %s failed (oneDNN status %d)\n", #call, status_); \
            exit(1);                                                                   \
        }                                                                              \
    } while (0)

// A row-major [rows, cols] operand, read transposed when trans: oneDNN's dims are those of op(X).
static void describe(dnnl_memory_desc_t *md, int trans, int rows, int cols, dnnl_data_type_t type)
{
    dnnl_dims_t dims = {trans ? cols : rows, trans ? rows : cols};
    DNNL_OK(dnnl_memory_desc_init_by_tag(md, 2, dims, type, trans ? dnnl_ba : dnnl_ab));
}

struct matmul {
    dnnl_primitive_t prim, reorder_a, reorder_b;
    dnnl_memory_t a, b, c, a32, b32;
    const char *impl;
};

// op(A) [m, k] op(B) [k, n] -> C [m, n] fp32, operands of `type`; with a bf16 type also the reorders
// from the fp32 operands a32, b32.
static void matmul_create(struct onednn *d, struct matmul *mm, const struct product *p, dnnl_data_type_t type,
                          int bf16_math, float *a32, float *b32, void *a, void *b, float *c)
{
    dnnl_memory_desc_t a_md, b_md, c_md, a32_md, b32_md;
    int a_rows = p->trans_a ? p->k : p->m, a_cols = p->trans_a ? p->m : p->k;
    int b_rows = p->trans_b ? p->n : p->k, b_cols = p->trans_b ? p->k : p->n;
    describe(&a_md, p->trans_a, a_rows, a_cols, type);
    describe(&b_md, p->trans_b, b_rows, b_cols, type);
    describe(&c_md, 0, p->m, p->n, dnnl_f32);
    dnnl_matmul_desc_t desc;
    DNNL_OK(dnnl_matmul_desc_init(&desc, &a_md, &b_md, NULL, &c_md));
    dnnl_primitive_desc_t pd;
    dnnl_primitive_attr_t attr;
    DNNL_OK(dnnl_primitive_attr_create(&attr));
    if (bf16_math) DNNL_OK(dnnl_primitive_attr_set_fpmath_mode(attr, dnnl_fpmath_mode_bf16));
    DNNL_OK(dnnl_primitive_desc_create(&pd, &desc, attr, d->engine, NULL));
    dnnl_primitive_attr_destroy(attr);
    DNNL_OK(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &mm->impl));
    DNNL_OK(dnnl_primitive_create(&mm->prim, pd));
    DNNL_OK(dnnl_memory_create(&mm->a, &a_md, d->engine, a));
    DNNL_OK(dnnl_memory_create(&mm->b, &b_md, d->engine, b));
    DNNL_OK(dnnl_memory_create(&mm->c, &c_md, d->engine, c));
    mm->reorder_a = mm->reorder_b = NULL;
    if (type != dnnl_bf16) return;
    describe(&a32_md, p->trans_a, a_rows, a_cols, dnnl_f32);
    describe(&b32_md, p->trans_b, b_rows, b_cols, dnnl_f32);
    DNNL_OK(dnnl_memory_create(&mm->a32, &a32_md, d->engine, a32));
    DNNL_OK(dnnl_memory_create(&mm->b32, &b32_md, d->engine, b32));
    dnnl_primitive_desc_t ra, rb;
    DNNL_OK(dnnl_reorder_primitive_desc_create(&ra, &a32_md, d->engine, &a_md, d->engine, NULL));
    DNNL_OK(dnnl_reorder_primitive_desc_create(&rb, &b32_md, d->engine, &b_md, d->engine, NULL));
    DNNL_OK(dnnl_primitive_create(&mm->reorder_a, ra));
    DNNL_OK(dnnl_primitive_create(&mm->reorder_b, rb));
}

static void matmul_run(struct onednn *d, struct matmul *mm, int convert)
{
    if (convert) {
        dnnl_exec_arg_t ra[2] = {{DNNL_ARG_FROM, mm->a32}, {DNNL_ARG_TO, mm->a}};
        dnnl_exec_arg_t rb[2] = {{DNNL_ARG_FROM, mm->b32}, {DNNL_ARG_TO, mm->b}};
        DNNL_OK(dnnl_primitive_execute(mm->reorder_a, d->stream, 2, ra));
        DNNL_OK(dnnl_primitive_execute(mm->reorder_b, d->stream, 2, rb));
    }
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, mm->a}, {DNNL_ARG_WEIGHTS, mm->b}, {DNNL_ARG_DST, mm->c}};
    DNNL_OK(dnnl_primitive_execute(mm->prim, d->stream, 3, args));
    DNNL_OK(dnnl_stream_wait(d->stream));
}

static void matmul_destroy(struct matmul *mm)
{
    dnnl_primitive_destroy(mm->prim);
    if (mm->reorder_a) {
        dnnl_primitive_destroy(mm->reorder_a);
        dnnl_primitive_destroy(mm->reorder_b);
        dnnl_memory_destroy(mm->a32);
        dnnl_memory_destroy(mm->b32);
    }
    dnnl_memory_destroy(mm->a);
    dnnl_memory_destroy(mm->b);
    dnnl_memory_destroy(mm->c);
}

enum impl { GEMM_BF16, ONEDNN_BF16, ONEDNN_BF16_CONVERT, ONEDNN_FP32_BF16_MATH, BLIS_FP32, ONEDNN_FP32, N_IMPLS };
static const char *const impl_names[N_IMPLS] = {"gemm_bf16", "onednn-bf16", "onednn-bf16+cvt", "onednn-f32math16",
                                                "blis-fp32", "onednn-fp32"};

struct operands {
    float *a, *b, *c;        // fp32 operands and result
    uint16_t *a16, *b16;     // bf16 copies for oneDNN
};

static void run_once(struct onednn *d, enum impl which, const struct product *p, struct operands *o,
                     struct matmul *bf, struct matmul *f32, struct matmul *math16)
{
    int lda = p->trans_a ? p->m : p->k, ldb = p->trans_b ? p->k : p->n;
    switch (which) {
    case GEMM_BF16: gemm_bf16(p->trans_a, p->trans_b, p->m, p->n, p->k, 1, o->a, lda, o->b, ldb, 0, o->c, p->n); break;
    case BLIS_FP32: gemm(p->trans_a, p->trans_b, p->m, p->n, p->k, 1, o->a, lda, o->b, ldb, 0, o->c, p->n); break;
    case ONEDNN_BF16: matmul_run(d, bf, 0); break;
    case ONEDNN_BF16_CONVERT: matmul_run(d, bf, 1); break;
    case ONEDNN_FP32_BF16_MATH: matmul_run(d, math16, 0); break;
    default: matmul_run(d, f32, 0); break;
    }
}

static double rate(struct onednn *d, enum impl which, const struct product *p, struct operands *o,
                   struct matmul *bf, struct matmul *f32, struct matmul *math16)
{
    run_once(d, which, p, o, bf, f32, math16);   // warm-up
    int reps = 0;
    double start = clock_seconds(), elapsed;
    do {
        run_once(d, which, p, o, bf, f32, math16);
        reps++;
        elapsed = clock_seconds() - start;
    } while (elapsed < MIN_SECONDS);
    return 2.0 * p->m * p->n * p->k * reps / elapsed / 1e9;
}

// 1 when oneDNN's bf16 result is the same bit for bit on 1 thread as on all, and twice in a row.
static int onednn_repeatable(struct onednn *d, const struct product *p, struct operands *o, struct matmul *bf)
{
    size_t nc = (size_t)p->m * p->n;
    float *first = malloc(sizeof(float) * nc);
    matmul_run(d, bf, 0);
    memcpy(first, o->c, sizeof(float) * nc);
    matmul_run(d, bf, 0);
    int same = !memcmp(first, o->c, sizeof(float) * nc);
    int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    struct matmul one;
    matmul_create(d, &one, p, dnnl_bf16, 0, o->a, o->b, o->a16, o->b16, o->c);
    matmul_run(d, &one, 0);
    same = same && !memcmp(first, o->c, sizeof(float) * nc);
    matmul_destroy(&one);
    omp_set_num_threads(threads);
    free(first);
    return same;
}

static void bench_product(struct onednn *d, const struct product *p)
{
    size_t na = (size_t)p->m * p->k, nb = (size_t)p->k * p->n, nc = (size_t)p->m * p->n;
    struct operands o = {malloc(sizeof(float) * na), malloc(sizeof(float) * nb), malloc(sizeof(float) * nc),
                         malloc(2 * na), malloc(2 * nb)};
    for (size_t i = 0; i < na; i++) o.a[i] = (float)((int)(i % 13) - 6) * 0.03f, o.a16[i] = bf16_from_float(o.a[i]);
    for (size_t i = 0; i < nb; i++) o.b[i] = (float)((int)(i % 7) - 3) * 0.02f, o.b16[i] = bf16_from_float(o.b[i]);
    struct matmul bf, f32, math16;
    matmul_create(d, &bf, p, dnnl_bf16, 0, o.a, o.b, o.a16, o.b16, o.c);
    matmul_create(d, &f32, p, dnnl_f32, 0, NULL, NULL, o.a, o.b, o.c);
    matmul_create(d, &math16, p, dnnl_f32, 1, NULL, NULL, o.a, o.b, o.c);
    printf("%-14s %c%c %5d %5d %5d", p->name, p->trans_a ? 'T' : 'N', p->trans_b ? 'T' : 'N', p->m, p->n, p->k);
    double r[N_IMPLS];
    for (int i = 0; i < N_IMPLS; i++) {
        r[i] = rate(d, (enum impl)i, p, &o, &bf, &f32, &math16);
        printf(" %15.1f", r[i]);
    }
    int repeatable = onednn_repeatable(d, p, &o, &bf);
    printf("  %-3s  %s\n", repeatable ? "yes" : "NO", bf.impl);
    printf("bench impl=gemm product=%s threads=%d", p->name, omp_get_max_threads());
    for (int i = 0; i < N_IMPLS; i++) printf(" %s=%.3f", impl_names[i], r[i]);
    printf(" onednn_bf16_repeatable=%d onednn_bf16_impl=%s onednn_f32math16_impl=%s onednn_fp32_impl=%s\n",
           repeatable, bf.impl, math16.impl, f32.impl);
    matmul_destroy(&bf);
    matmul_destroy(&math16);
    matmul_destroy(&f32);
    free(o.a); free(o.b); free(o.c); free(o.a16); free(o.b16);
}

int main(void)
{
    if (!gemm_bf16_supported()) {
        fprintf(stderr, "bench-gemm: this processor has no AVX512-BF16\n");
        return 1;
    }
    int threads = omp_get_max_threads();
    if (gemm_bf16_reserve(threads) < 0) return 1;
    blas_set_threads(threads);
    struct onednn d;
    DNNL_OK(dnnl_engine_create(&d.engine, dnnl_cpu, 0));
    DNNL_OK(dnnl_stream_create(&d.stream, d.engine, dnnl_stream_default_flags));
    const dnnl_version_t *v = dnnl_version();
    printf("DiT-S/2 products (batch 32: %d tokens of width %d), %d threads, GFLOP/s; oneDNN %d.%d.%d\n",
           N_TOKENS, WIDTH, threads, v->major, v->minor, v->patch);
    printf("%-14s %2s %5s %5s %5s", "product", "op", "m", "n", "k");
    for (int i = 0; i < N_IMPLS; i++) printf(" %15s", impl_names[i]);
    printf("  1=%d?  oneDNN bf16 kernel\n", threads);
    // Forward C [N, out] = X [N, in] W^T; input gradient dX [N, in] = dC W; weight gradient dW [out, in] = dC^T X.
    const int linear[4][2] = {{3 * WIDTH, WIDTH}, {WIDTH, WIDTH}, {4 * WIDTH, WIDTH}, {WIDTH, 4 * WIDTH}};
    const char *names[4] = {"qkv", "proj", "fc1", "fc2"};
    for (int l = 0; l < 4; l++) {
        int out = linear[l][0], in = linear[l][1];
        char fwd[32], dx[32], dw[32];
        snprintf(fwd, sizeof fwd, "%s", names[l]);
        snprintf(dx, sizeof dx, "%s.dX", names[l]);
        snprintf(dw, sizeof dw, "%s.dW", names[l]);
        const struct product p[3] = {{fwd, 0, 1, N_TOKENS, out, in}, {dx, 0, 0, N_TOKENS, in, out},
                                     {dw, 1, 0, out, in, N_TOKENS}};
        for (int i = 0; i < 3; i++) bench_product(&d, &p[i]);
    }
    dnnl_stream_destroy(d.stream);
    dnnl_engine_destroy(d.engine);
    return 0;
}
