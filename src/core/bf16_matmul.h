// oneDNN matmul primitives for the bf16 products of core/gemm_bf16.c, one per shape, created on
// first use and cached: C [m, n] fp32 = alpha A B + beta C, with A [m, k] and B [k, n] bf16, all
// dense and row-major. Each OpenMP thread runs them on its own stream and memory objects
// (slot = its thread number), with a scratchpad it owns.
#ifndef PROMOE_BF16_MATMUL_H
#define PROMOE_BF16_MATMUL_H

#include <stddef.h>
#include <stdint.h>

// What a primitive is specialised for; threads: how many it may use (1 for the serial products),
// which also chooses oneDNN's blocking at creation.
struct bf16_matmul_key {
    int m, n, k, threads;
    float alpha, beta;
};

struct bf16_matmul;

// Starts oneDNN for calls from up to `slots` threads (at set-up, outside parallel regions; growing
// the slots drops the primitives made so far). Returns -1 with a message where oneDNN would not run
// the products on its AVX512-BF16 brgemm kernels (the ones whose sums core/gemm_bf16.c relies on).
int bf16_matmul_init(int slots);

// The primitive for key, from the cache or created now (any thread may ask), held until released:
// a full cache evicts the least recently used primitive that no thread holds.
struct bf16_matmul *bf16_matmul_acquire(const struct bf16_matmul_key *key);
void bf16_matmul_release(struct bf16_matmul *mm);

// Bytes of scratchpad a run needs (0: none).
size_t bf16_matmul_scratch_size(const struct bf16_matmul *mm);

// Runs the product on the calling thread's slot (its threads: the key's, or 1 inside a parallel
// region). a [m, k], b [k, n] bf16; c [m, n] fp32; scratch of bf16_matmul_scratch_size bytes.
void bf16_matmul_run(struct bf16_matmul *mm, int slot, const uint16_t *a, const uint16_t *b, float *c, void *scratch);

#endif
