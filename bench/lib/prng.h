/* SPDX-License-Identifier: MIT */
/*
 * Deterministic pseudo-random numbers for benchmarks: splitmix64 for seeding
 * and hashing, xoshiro256** for streams. Integer-only, so a seed gives the
 * same sequence on every platform and compiler.
 */
#ifndef BENCH_PRNG_H
#define BENCH_PRNG_H

#include <stdint.h>

struct bench_rng {
	uint64_t s[4];
};

/* One step of splitmix64; also a good 64-bit mixing function. */
static inline uint64_t bench_splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static inline void bench_rng_seed(struct bench_rng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		r->s[i] = bench_splitmix64(&seed);
}

static inline uint64_t bench_rotl64(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

/* xoshiro256** (Blackman & Vigna, public domain algorithm). */
static inline uint64_t bench_rng_next(struct bench_rng *r)
{
	uint64_t *s = r->s;
	uint64_t result = bench_rotl64(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = bench_rotl64(s[3], 45);
	return result;
}

/* Uniform in [0, n), n > 0 (Lemire's multiply-shift; the tiny bias is irrelevant here). */
static inline uint64_t bench_rng_below(struct bench_rng *r, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)bench_rng_next(r) * n) >> 64);
}

/* Uniform in [lo, hi], lo <= hi. */
static inline uint64_t bench_rng_range(struct bench_rng *r, uint64_t lo, uint64_t hi)
{
	return lo + bench_rng_below(r, hi - lo + 1);
}

/* True with probability num/den. */
static inline int bench_rng_chance(struct bench_rng *r, uint64_t num, uint64_t den)
{
	return bench_rng_below(r, den) < num;
}

#endif /* BENCH_PRNG_H */
