/* SPDX-License-Identifier: MIT */
/* Helpers shared by the zsram tests: PRNG and page generators of each kind. */
#ifndef ZSRAM_TEST_H
#define ZSRAM_TEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "zsram.h"

#define PAGE ZSRAM_PAGE_SIZE

/* splitmix64 */
static inline uint64_t zt_rng(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static inline unsigned zt_below(uint64_t *s, unsigned n)
{
	return (unsigned)(zt_rng(s) % n);
}

/* Kinds of page content, as the store sees them. */
enum zt_kind {
	ZT_TEXT,   /* compresses well with any codec */
	ZT_SAME,   /* one 8-byte pattern repeated: stored without memory */
	ZT_RANDOM, /* incompressible: stored raw ("huge") */
	ZT_NIBBLE, /* 16-symbol noise: huge for lz4, compressible for zstd */
	ZT_NR_KINDS
};

/* Fills buf[0..len) with content of the given kind, determined by seed. */
static inline void zt_fill(void *buf, size_t len, enum zt_kind kind, uint64_t seed)
{
	static const char *const words[] = {
		"page ", "store ", "zram ", "compress ", "handle ", "slot ", "the ", "of ",
		"lock ", "read ", "write ", "memory ", "\n", "0x1f2e ", "struct ", "{ }; ",
	};
	unsigned char *p = buf;
	uint64_t s = seed, v;
	size_t i = 0;

	switch (kind) {
	case ZT_TEXT:
		while (i < len) {
			const char *w = words[zt_below(&s, 16)];
			size_t n = strlen(w);

			if (n > len - i)
				n = len - i;
			memcpy(p + i, w, n);
			i += n;
			if (zt_below(&s, 8) == 0 && i < len)
				p[i++] = (unsigned char)zt_rng(&s); /* a little noise */
		}
		break;
	case ZT_SAME:
		v = zt_rng(&s);
		for (; i < len; i++)
			p[i] = (unsigned char)(v >> (8 * (i % 8)));
		break;
	case ZT_RANDOM:
		for (; i < len; i += 8) {
			v = zt_rng(&s);
			memcpy(p + i, &v, len - i < 8 ? len - i : 8);
		}
		break;
	case ZT_NIBBLE:
		for (; i < len; i += 16) {
			v = zt_rng(&s);
			for (size_t k = 0; k < 16 && i + k < len; k++)
				p[i + k] = (unsigned char)('a' + ((v >> (4 * k)) & 15));
		}
		break;
	default:
		memset(p, 0, len);
	}
}

/* True when the page is one 8-byte pattern repeated (what zsram stores as same-filled). */
static inline bool zt_same_filled(const void *page)
{
	const unsigned char *p = page;

	for (size_t i = 8; i < PAGE; i++)
		if (p[i] != p[i % 8])
			return false;
	return true;
}

#endif /* ZSRAM_TEST_H */
