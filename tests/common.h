/* SPDX-License-Identifier: MIT */
/* Helpers shared by the allocator tests: PRNG, patterns, RSS. */
#ifndef ZS_TEST_COMMON_H
#define ZS_TEST_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "zsmalloc.h"

/* splitmix64: small, fast, good enough for test data */
static inline uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static inline unsigned rng_below(uint64_t *s, unsigned n)
{
	return (unsigned)(rng_next(s) % n);
}

/* Sizes like lz4-compressed pages: a broad peak around 1-1.5 KiB, 5 %
 * huge (4096), 10 % small. */
static inline unsigned page_like_len(uint64_t *s)
{
	unsigned r = rng_below(s, 100);

	if (r < 5)
		return 4096;
	if (r < 15)
		return 50 + rng_below(s, 300);
	return 600 + rng_below(s, 1000) + rng_below(s, 1000);
}

/* A pattern that names its object: any byte from another object or an
 * older version fails the check. */
static inline void pattern_fill(void *buf, size_t len, uint64_t key)
{
	unsigned char *p = buf;
	uint64_t s = key;

	for (size_t i = 0; i < len; i += 8) {
		uint64_t v = rng_next(&s);
		memcpy(p + i, &v, len - i < 8 ? len - i : 8);
	}
}

static inline int pattern_check(const void *buf, size_t len, uint64_t key)
{
	unsigned char tmp[4096];

	if (len > sizeof(tmp))
		return 0;
	pattern_fill(tmp, len, key);
	return memcmp(tmp, buf, len) == 0;
}

/* Resident set size of this process in bytes. */
static inline size_t rss_bytes(void)
{
	long pages = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (!f)
		return 0;
	if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
		resident = 0;
	fclose(f);
	return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

/* Sanitizers keep freed memory in quarantine and add shadow memory:
 * RSS-based checks are meaningless under them. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define ZS_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define ZS_TEST_SANITIZED 1
#endif
#endif
#ifndef ZS_TEST_SANITIZED
#define ZS_TEST_SANITIZED 0
#endif
/* ThreadSanitizer refuses to start threads in the child of a
 * multi-threaded fork. */
#if defined(__SANITIZE_THREAD__)
#define ZS_TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define ZS_TEST_TSAN 1
#endif
#endif
#ifndef ZS_TEST_TSAN
#define ZS_TEST_TSAN 0
#endif

/*
 * With no live object a pool holds only its spare empty zspages (at most
 * POOL_SPARE_PAGES, 512 pages); zs_pool_trim() frees those. Returns 1 when that holds.
 */
static inline int pool_empty_after_trim(struct zs_pool *pool)
{
	struct zs_pool_stats st;

	zs_pool_stats(pool, &st);
	if (st.objs_used || st.pages_allocated != st.pages_spare || st.pages_spare > 512)
		return 0;
	zs_pool_trim(pool);
	zs_pool_stats(pool, &st);
	return st.pages_allocated == 0 && st.pages_spare == 0 && st.objs_allocated == 0 &&
	       zs_get_total_pages(pool) == 0;
}

/* Number from the environment, for scaling stress runs. */
static inline unsigned long env_ulong(const char *name, unsigned long def)
{
	const char *v = getenv(name);
	return v && *v ? strtoul(v, NULL, 0) : def;
}

#endif /* ZS_TEST_COMMON_H */
