/* SPDX-License-Identifier: MIT */
/*
 * The fuzzers' view of an input: bytes taken from the front, zeros once
 * it runs out (so every input, however short, is a complete program), and
 * a seeded mixer (splitmix64) for data derived from a few input bytes.
 */
#ifndef ZS_FUZZ_INPUT_H
#define ZS_FUZZ_INPUT_H

#include <stddef.h>
#include <stdint.h>

struct input {
	const uint8_t *p;
	size_t n;
};

static inline unsigned get8(struct input *in)
{
	if (!in->n)
		return 0;
	in->n--;
	return *in->p++;
}

static inline unsigned get16(struct input *in)
{
	unsigned lo = get8(in);
	return lo | get8(in) << 8;
}

static inline uint32_t get32(struct input *in)
{
	uint32_t lo = get16(in);
	return lo | (uint32_t)get16(in) << 16;
}

static inline uint64_t get64(struct input *in)
{
	uint64_t lo = get32(in);
	return lo | (uint64_t)get32(in) << 32;
}

static inline uint64_t mix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

#endif /* ZS_FUZZ_INPUT_H */
