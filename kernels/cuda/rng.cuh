// rng.cuh - runner/rng.c on the device: the same splitmix64-seeded PCG32 streams, draw for draw,
// for the kernels that must reproduce the host's random choices (dropout masks, the colouriser).
#ifndef RN_RNG_CUH
#define RN_RNG_CUH

#include <stdint.h>

constexpr uint64_t kPcgMult = 6364136223846793005ULL;

// PCG32 output of the state before an advance (rn_rng_u32).
static __device__ __forceinline__ uint32_t pcg_output(uint64_t old)
{
    uint32_t xorshifted = (uint32_t)(((old >> 18u) ^ old) >> 27u);
    uint32_t rot = (uint32_t)(old >> 59u);
    return (xorshifted >> rot) | (xorshifted << ((32u - rot) & 31u));
}

struct DevRng {
    uint64_t state, inc;
};

static __device__ __forceinline__ uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static __device__ __forceinline__ uint32_t rng_u32(DevRng *r)
{
    uint64_t old = r->state;
    r->state = old * kPcgMult + r->inc;
    return pcg_output(old);
}

// rn_rng_init: generator (seed, stream, item).
static __device__ __forceinline__ void rng_init(DevRng *r, uint64_t seed, uint64_t stream,
                                                uint64_t item)
{
    uint64_t x = seed;
    uint64_t a = splitmix64(&x);
    x ^= stream * 0xd1b54a32d192ed03ULL;
    uint64_t b = splitmix64(&x);
    x ^= item * 0x8cb92ba72f3d8dd7ULL;
    uint64_t c = splitmix64(&x);
    r->state = 0;
    r->inc = ((b ^ c) << 1) | 1u;
    rng_u32(r);
    r->state += a ^ c;
    rng_u32(r);
}

// rn_rng_below: Lemire's unbiased [0, n).
static __device__ __forceinline__ uint32_t rng_below(DevRng *r, uint32_t n)
{
    uint64_t m = (uint64_t)rng_u32(r) * n;
    uint32_t l = (uint32_t)m;
    if (l < n) {
        uint32_t t = (uint32_t)(-n) % n;
        while (l < t) {
            m = (uint64_t)rng_u32(r) * n;
            l = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

// rn_rng_uniform: 24 bits, exact in float.
static __device__ __forceinline__ float rng_uniform(DevRng *r)
{
    return (float)(rng_u32(r) >> 8) * (1.0f / 16777216.0f);
}

#endif
