// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011).
// Key = seed; counter = (block number, index, purpose, step).
#include "core/rng.h"

#include <math.h>

enum { PHILOX_ROUNDS = 10 };
static const uint32_t PHILOX_M0 = 0xD2511F53u, PHILOX_M1 = 0xCD9E8D57u;
static const uint32_t PHILOX_W0 = 0x9E3779B9u, PHILOX_W1 = 0xBB67AE85u;

static void philox_round(uint32_t ctr[4], const uint32_t key[2])
{
    uint64_t p0 = (uint64_t)PHILOX_M0 * ctr[0];
    uint64_t p1 = (uint64_t)PHILOX_M1 * ctr[2];
    uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
    uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
    uint32_t c1 = ctr[1], c3 = ctr[3];
    ctr[0] = hi1 ^ c1 ^ key[0];
    ctr[1] = lo1;
    ctr[2] = hi0 ^ c3 ^ key[1];
    ctr[3] = lo0;
}

static void philox_block(const uint32_t counter[4], const uint32_t key_in[2], uint32_t out[4])
{
    uint32_t key[2] = {key_in[0], key_in[1]};
    for (int i = 0; i < 4; i++) out[i] = counter[i];
    for (int round = 0; round < PHILOX_ROUNDS; round++) {
        philox_round(out, key);
        key[0] += PHILOX_W0;
        key[1] += PHILOX_W1;
    }
}

void rng_init(struct rng *r, uint64_t seed, uint64_t step, enum rng_purpose purpose, uint32_t index)
{
    r->key[0] = (uint32_t)seed;
    r->key[1] = (uint32_t)(seed >> 32);
    r->counter[0] = 0;
    r->counter[1] = index;
    // Steps beyond 2^24 share bits with the purpose only above 16M steps x 256 purposes.
    r->counter[2] = (uint32_t)purpose | (uint32_t)(step >> 32) << 8;
    r->counter[3] = (uint32_t)step;
    r->available = 0;
    r->has_spare = 0;
    r->spare = 0;
}

uint32_t rng_u32(struct rng *r)
{
    if (r->available == 0) {
        philox_block(r->counter, r->key, r->block);
        r->counter[0]++;
        r->available = 4;
    }
    return r->block[4 - r->available--];
}

double rng_uniform(struct rng *r)
{
    uint64_t hi = rng_u32(r) >> 5, lo = rng_u32(r) >> 6;  // 27 + 26 bits
    return ((double)(hi * 67108864u + lo) + 0.5) / 9007199254740992.0;
}

double rng_normal(struct rng *r)
{
    if (r->has_spare) {
        r->has_spare = 0;
        return r->spare;
    }
    double u1 = rng_uniform(r), u2 = rng_uniform(r);
    double radius = sqrt(-2.0 * log(u1)), angle = 2.0 * M_PI * u2;
    r->spare = radius * sin(angle);
    r->has_spare = 1;
    return radius * cos(angle);
}

uint32_t rng_below(struct rng *r, uint32_t n)
{
    // Lemire's multiply-shift with rejection: unbiased.
    uint64_t m = (uint64_t)rng_u32(r) * n;
    uint32_t low = (uint32_t)m;
    if (low < n) {
        uint32_t threshold = (uint32_t)(-n) % n;
        while (low < threshold) {
            m = (uint64_t)rng_u32(r) * n;
            low = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}
