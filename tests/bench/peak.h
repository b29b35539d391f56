// The machine's peak from a probe, for make bench: every thread runs independent chains of vector
// fused multiply-adds (fp32) or bf16 dot products (vdpbf16ps, AVX512-BF16) that never wait on
// memory; the peak is the FLOPs of all threads over the wall time. 12 chains per thread cover the
// latency of two FMA pipes. AVX-512 where present, else AVX2.
#ifndef PROMOE_BENCH_PEAK_H
#define PROMOE_BENCH_PEAK_H

#include <immintrin.h>
#include <omp.h>

#include "core/clock.h"

enum { PEAK_CHAINS = 12, PEAK_ITERATIONS = 20 * 1000 * 1000 };

static volatile float peak_sink;   // keeps the chains' results alive

__attribute__((target("avx512f"))) static void peak_fma512(long iterations)
{
    __m512 acc[PEAK_CHAINS], x = _mm512_set1_ps(0.999999f), y = _mm512_set1_ps(1e-7f);
    for (int c = 0; c < PEAK_CHAINS; c++) acc[c] = _mm512_set1_ps((float)c);
    for (long i = 0; i < iterations; i++)
        for (int c = 0; c < PEAK_CHAINS; c++) acc[c] = _mm512_fmadd_ps(acc[c], x, y);
    for (int c = 1; c < PEAK_CHAINS; c++) acc[0] = _mm512_add_ps(acc[0], acc[c]);
    peak_sink = _mm512_reduce_add_ps(acc[0]);
}

__attribute__((target("avx2,fma"))) static void peak_fma256(long iterations)
{
    __m256 acc[PEAK_CHAINS], x = _mm256_set1_ps(0.999999f), y = _mm256_set1_ps(1e-7f);
    for (int c = 0; c < PEAK_CHAINS; c++) acc[c] = _mm256_set1_ps((float)c);
    for (long i = 0; i < iterations; i++)
        for (int c = 0; c < PEAK_CHAINS; c++) acc[c] = _mm256_fmadd_ps(acc[c], x, y);
    float lanes[8];
    for (int c = 1; c < PEAK_CHAINS; c++) acc[0] = _mm256_add_ps(acc[0], acc[c]);
    _mm256_storeu_ps(lanes, acc[0]);
    peak_sink = lanes[0];
}

__attribute__((target("avx512f,avx512bf16"))) static void peak_bf16(long iterations)
{
    __m512 acc[PEAK_CHAINS];
    __m512bh x = (__m512bh)_mm512_set1_epi16(0x3f80), y = (__m512bh)_mm512_set1_epi16(0x3380);
    for (int c = 0; c < PEAK_CHAINS; c++) acc[c] = _mm512_set1_ps((float)c);
    for (long i = 0; i < iterations; i++)
        for (int c = 0; c < PEAK_CHAINS; c++) acc[c] = _mm512_dpbf16_ps(acc[c], x, y);
    for (int c = 1; c < PEAK_CHAINS; c++) acc[0] = _mm512_add_ps(acc[0], acc[c]);
    peak_sink = _mm512_reduce_add_ps(acc[0]);
}

// GFLOP/s of all OpenMP threads: kind 0 fp32 FMA, kind 1 bf16 dot products (0 where unsupported).
static double peak_gflops(int kind)
{
    __builtin_cpu_init();
    int avx512 = __builtin_cpu_supports("avx512f"), lanes = avx512 ? 16 : 8;
    if (kind == 1 && !(avx512 && __builtin_cpu_supports("avx512bf16"))) return 0;
    if (kind == 0 && !avx512 && !(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))) return 0;
    double flops_per_op = kind == 1 ? 4.0 * lanes : 2.0 * lanes;   // dot: 2 products and 2 adds a lane
    int threads = omp_get_max_threads();
    double start = clock_seconds();
#pragma omp parallel
    {
        if (kind == 1) peak_bf16(PEAK_ITERATIONS);
        else if (avx512) peak_fma512(PEAK_ITERATIONS);
        else peak_fma256(PEAK_ITERATIONS);
    }
    double seconds = clock_seconds() - start;
    return flops_per_op * PEAK_CHAINS * (double)PEAK_ITERATIONS * threads / seconds / 1e9;
}

#endif
