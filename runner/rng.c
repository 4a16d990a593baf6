#include "rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void rn_rng_init(struct rn_rng *r, uint64_t seed, uint64_t stream, uint64_t item)
{
    /* Mix the triple through splitmix64 so neighbouring items are unrelated. */
    uint64_t x = seed;
    uint64_t a = splitmix64(&x);
    x ^= stream * 0xd1b54a32d192ed03ULL;
    uint64_t b = splitmix64(&x);
    x ^= item * 0x8cb92ba72f3d8dd7ULL;
    uint64_t c = splitmix64(&x);
    r->state = 0;
    r->inc = ((b ^ c) << 1) | 1u;
    rn_rng_u32(r);
    r->state += a ^ c;
    rn_rng_u32(r);
}

uint32_t rn_rng_u32(struct rn_rng *r)
{
    uint64_t old = r->state;
    r->state = old * 6364136223846793005ULL + r->inc;
    uint32_t xorshifted = (uint32_t)(((old >> 18u) ^ old) >> 27u);
    uint32_t rot = (uint32_t)(old >> 59u);
    return (xorshifted >> rot) | (xorshifted << ((-rot) & 31));
}

uint32_t rn_rng_below(struct rn_rng *r, uint32_t n)
{
    uint64_t m = (uint64_t)rn_rng_u32(r) * n;
    uint32_t l = (uint32_t)m;
    if (l < n) {
        uint32_t t = (uint32_t)(-n) % n;
        while (l < t) {
            m = (uint64_t)rn_rng_u32(r) * n;
            l = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

float rn_rng_uniform(struct rn_rng *r)
{
    return (float)(rn_rng_u32(r) >> 8) * (1.0f / 16777216.0f);
}

float rn_rng_normal(struct rn_rng *r)
{
    float u1 = rn_rng_uniform(r), u2 = rn_rng_uniform(r);
    if (u1 < 1e-7f)
        u1 = 1e-7f;
    return sqrtf(-2.0f * logf(u1)) * cosf(6.28318530717958647692f * u2);
}

void rn_rng_shuffle(struct rn_rng *r, int *idx, int n)
{
    for (int i = n - 1; i > 0; i--) {
        int j = (int)rn_rng_below(r, (uint32_t)i + 1);
        int t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}
