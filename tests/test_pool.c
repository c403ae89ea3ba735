/* SPDX-License-Identifier: MIT */
/*
 * Pool basics: every size round-trips (zs_malloc + zs_obj_write, and
 * zs_malloc_write), straddling objects (in place and through the caller's
 * copy), the huge class, fullness transitions, max_pages, argument errors,
 * statistics dumps, memory going back to the OS, a growing pool's pages
 * faulted in ahead of need, and the arena's transparent-huge-page policy.
 */
#include <errno.h>
#include <malloc.h>
#include <sched.h>
#include <time.h>
#include <string.h>
#include <stdio.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <unistd.h>

#include "zsmalloc.h"
#include "internal.h"
#include "common.h"

static void write_pattern(struct zs_pool *pool, unsigned long h, size_t len, uint64_t key)
{
	unsigned char buf[4096];

	pattern_fill(buf, len, key);
	assert_int_equal(zs_obj_write(pool, h, buf, len), 0);
}

/* Reads and checks; returns 1 if the read went through local_copy. */
static int check_pattern(struct zs_pool *pool, unsigned long h, size_t len, uint64_t key)
{
	unsigned char local[4096];
	void *p = zs_obj_read_begin(pool, h, len, local);
	int copied = p == (void *)local;

	assert_non_null(p);
	assert_true(pattern_check(p, len, key));
	zs_obj_read_end(pool, h, len, p);
	return copied;
}

static void test_every_size(void **state)
{
	struct zs_pool *pool = zs_create_pool("sizes");
	unsigned long h[4097];

	(void)state;
	/* three rounds so that every class has objects at many offsets; the
	 * middle one allocates and fills in one call (zs_malloc_write) */
	for (int round = 0; round < 3; round++) {
		for (size_t size = 1; size <= 4096; size++) {
			uint64_t key = size * 7 + (uint64_t)round;
			unsigned char buf[4096];

			if (round == 1) {
				pattern_fill(buf, size, key);
				h[size] = zs_malloc_write(pool, buf, size);
				assert_true(h[size] != 0);
				continue;
			}
			h[size] = zs_malloc(pool, size);
			assert_true(h[size] != 0);
			write_pattern(pool, h[size], size, key);
		}
		for (size_t size = 1; size <= 4096; size++)
			check_pattern(pool, h[size], size, size * 7 + (uint64_t)round);
		/* free in a scattered order */
		for (size_t i = 0; i < 4096; i++) {
			size_t size = 1 + (i * 2731) % 4096;
			zs_free(pool, h[size]);
		}
		assert_true(pool_empty_after_trim(pool));
	}
	zs_destroy_pool(pool);
}

/* Partial reads and writes of an object's prefix. */
static void test_prefix_access(void **state)
{
	struct zs_pool *pool = zs_create_pool("prefix");
	unsigned long h = zs_malloc(pool, 3000);
	unsigned char buf[3000], local[3000];

	(void)state;
	pattern_fill(buf, sizeof(buf), 42);
	assert_int_equal(zs_obj_write(pool, h, buf, sizeof(buf)), 0);
	assert_int_equal(zs_obj_write(pool, h, "abc", 3), 0);
	unsigned char *p = zs_obj_read_begin(pool, h, 10, local);
	assert_memory_equal(p, "abc", 3);
	assert_memory_equal(p + 3, buf + 3, 7);
	zs_obj_read_end(pool, h, 10, p);
	zs_free(pool, h);
	zs_destroy_pool(pool);
}

/*
 * Objects straddling two pages whose frames are not adjacent are read
 * through local_copy. Freed one-page zspages go to the arena's cache and
 * come back last-in first-out, so a new multi-page zspage built from them
 * gets its pages in descending order.
 */
static void test_straddle_copy(void **state)
{
	struct zs_pool *pool = zs_create_pool("straddle");
	unsigned long huge[64], h[200];
	size_t size = 3000; /* class 3008: several pages per zspage */
	int copied = 0;

	(void)state;
	for (int i = 0; i < 64; i++)
		huge[i] = zs_malloc(pool, 4000);
	for (int i = 0; i < 64; i++)
		zs_free(pool, huge[i]);
	for (int i = 0; i < 200; i++) {
		h[i] = zs_malloc(pool, size);
		write_pattern(pool, h[i], size, (uint64_t)i);
	}
	for (int i = 0; i < 200; i++)
		copied += check_pattern(pool, h[i], size, (uint64_t)i);
	assert_true(copied > 0);
	for (int i = 0; i < 200; i++)
		zs_free(pool, h[i]);

	/* fresh pages, taken in runs: straddlers are read in place, but for
	 * the odd zspage whose pages came from two batches of the arena's
	 * prefaulted cache */
	zs_pool_trim(pool);
	copied = 0;
	for (int i = 0; i < 200; i++) {
		h[i] = zs_malloc(pool, size);
		write_pattern(pool, h[i], size, (uint64_t)i + 1000);
	}
	for (int i = 0; i < 200; i++)
		copied += check_pattern(pool, h[i], size, (uint64_t)i + 1000);
	assert_true(copied <= 20);
	for (int i = 0; i < 200; i++)
		zs_free(pool, h[i]);
	zs_destroy_pool(pool);
}

static void test_huge_class(void **state)
{
	struct zs_pool *pool = zs_create_pool("huge");
	size_t huge = zs_huge_class_size(pool);
	unsigned long h[8];

	(void)state;
	/* huge objects take a page each, no header: 4096 bytes fit */
	for (int i = 0; i < 8; i++) {
		h[i] = zs_malloc(pool, i < 4 ? 4096 : huge + (size_t)i);
		write_pattern(pool, h[i], i < 4 ? 4096 : huge + (size_t)i, (uint64_t)i);
	}
	assert_int_equal(zs_get_total_pages(pool), 8);
	for (int i = 0; i < 8; i++)
		check_pattern(pool, h[i], i < 4 ? 4096 : huge + (size_t)i, (uint64_t)i);
	/* one byte less than huge is not huge: it shares zspages */
	unsigned long small = zs_malloc(pool, huge - 1);
	assert_int_not_equal(zs_lookup_class_index(pool, (unsigned)huge - 1 + 8),
			     zs_lookup_class_index(pool, 4096));
	zs_free(pool, small);
	for (int i = 0; i < 8; i++)
		zs_free(pool, h[i]);
	assert_true(pool_empty_after_trim(pool));
	zs_destroy_pool(pool);
}

static int class_pos(struct zs_pool *pool, unsigned index)
{
	struct zs_class_stats cs;

	for (unsigned k = 0; k < zs_class_count(pool); k++) {
		zs_class_stats(pool, k, &cs);
		if (cs.index == index)
			return (int)k;
	}
	return -1;
}

static unsigned expected_column(unsigned inuse, unsigned objs)
{
	if (inuse == objs)
		return 10;                     /* "100%" */
	return 100 * inuse / objs / 10; /* "10%" = 0-9 % used ... "99%" = 90-99 % */
}

static void test_fullness(void **state)
{
	struct zs_pool *pool = zs_create_pool("fullness");
	size_t size = 100;
	int pos = class_pos(pool, zs_lookup_class_index(pool, (unsigned)size + 8));
	struct zs_class_stats cs;
	unsigned long *h;

	(void)state;
	assert_true(pos >= 0);
	zs_class_stats(pool, (unsigned)pos, &cs);
	h = calloc(cs.objs_per_zspage, sizeof(*h));
	for (unsigned n = 1; n <= cs.objs_per_zspage; n++) {
		h[n - 1] = zs_malloc(pool, size);
		zs_class_stats(pool, (unsigned)pos, &cs);
		for (unsigned col = 0; col < ZS_NR_FULLNESS_COLUMNS; col++)
			assert_int_equal(cs.zspages[col], col == expected_column(n, cs.objs_per_zspage));
		assert_int_equal(cs.obj_used, n);
		assert_int_equal(cs.obj_allocated, cs.objs_per_zspage);
		assert_int_equal(cs.pages_used, cs.pages_per_zspage);
	}
	/* one more opens a second zspage */
	unsigned long extra = zs_malloc(pool, size);
	zs_class_stats(pool, (unsigned)pos, &cs);
	assert_int_equal(cs.obj_allocated, 2 * cs.objs_per_zspage);
	assert_int_equal(cs.zspages[0], 1);
	assert_int_equal(cs.zspages[10], 1);
	assert_int_equal(cs.freeable, 0);
	zs_free(pool, extra);
	for (unsigned n = cs.objs_per_zspage; n > 0; n--) {
		zs_class_stats(pool, (unsigned)pos, &cs);
		for (unsigned col = 0; col < ZS_NR_FULLNESS_COLUMNS; col++)
			assert_int_equal(cs.zspages[col], col == expected_column(n, cs.objs_per_zspage));
		zs_free(pool, h[n - 1]);
	}
	/* the emptied zspage stays as the class's spare: counted, not shown in
	 * the fullness columns, all of it freeable */
	zs_class_stats(pool, (unsigned)pos, &cs);
	assert_int_equal(cs.obj_used, 0);
	assert_int_equal(cs.obj_allocated, cs.objs_per_zspage);
	assert_int_equal(cs.pages_used, cs.pages_per_zspage);
	assert_int_equal(cs.freeable, cs.pages_per_zspage);
	for (unsigned col = 0; col < ZS_NR_FULLNESS_COLUMNS; col++)
		assert_int_equal(cs.zspages[col], 0);
	assert_int_equal(zs_get_total_pages(pool), cs.pages_per_zspage);
	/* reused by the next allocation, then freed by zs_compact */
	h[0] = zs_malloc(pool, size);
	assert_int_equal(zs_get_total_pages(pool), cs.pages_per_zspage);
	zs_free(pool, h[0]);
	assert_int_equal(zs_compact(pool), cs.pages_per_zspage);
	zs_class_stats(pool, (unsigned)pos, &cs);
	assert_int_equal(cs.obj_allocated, 0);
	assert_int_equal(cs.pages_used, 0);
	assert_int_equal(zs_get_total_pages(pool), 0);
	free(h);
	zs_destroy_pool(pool);
}

static void test_max_pages(void **state)
{
	struct zs_pool_config cfg = { .max_pages = 16 };
	struct zs_pool *pool = zs_create_pool_ex("limited", &cfg);
	unsigned long h[1000];
	int n = 0;

	(void)state;
	for (;;) {
		errno = 0;
		unsigned long x = zs_malloc(pool, 3000);
		if (!x) {
			assert_int_equal(errno, ENOMEM);
			break;
		}
		write_pattern(pool, x, 3000, (uint64_t)n);
		h[n++] = x;
		assert_true(n < 1000);
	}
	assert_true(zs_get_total_pages(pool) <= 16);
	assert_true(zs_get_total_pages(pool) > 8);
	/* a failure changes nothing */
	unsigned long before = zs_get_total_pages(pool);
	errno = 0;
	assert_int_equal(zs_malloc(pool, 3000), 0);
	assert_int_equal(errno, ENOMEM);
	assert_int_equal(zs_get_total_pages(pool), before);
	for (int i = 0; i < n; i++)
		check_pattern(pool, h[i], 3000, (uint64_t)i);
	unsigned char buf[3000];
	pattern_fill(buf, sizeof(buf), 77);
	errno = 0;
	assert_int_equal(zs_malloc_write(pool, buf, sizeof(buf)), 0);
	assert_int_equal(errno, ENOMEM);
	assert_int_equal(zs_get_total_pages(pool), before);
	/* freeing one makes room for one */
	zs_free(pool, h[0]);
	h[0] = zs_malloc_write(pool, buf, sizeof(buf));
	assert_true(h[0] != 0);
	check_pattern(pool, h[0], sizeof(buf), 77);
	for (int i = 0; i < n; i++)
		zs_free(pool, h[i]);
	zs_destroy_pool(pool);
}

/*
 * Spare zspages count in the pool's pages but are a cache: an allocation
 * that the page limit refuses frees them first. Before, a pool at its
 * limit refused allocations while emptied zspages of other classes sat
 * idle (up to POOL_SPARE_PAGES pages).
 */
static void test_max_pages_spares(void **state)
{
	struct zs_pool_config cfg = { .max_pages = 16 };
	struct zs_pool *pool = zs_create_pool_ex("limited-spares", &cfg);
	struct zs_pool_stats s;
	unsigned long h[64];
	int n = 0;

	(void)state;
	/* a spare in the 100-byte class: allocate one object, free it */
	h[0] = zs_malloc(pool, 100);
	assert_true(h[0] != 0);
	zs_free(pool, h[0]);
	zs_pool_stats(pool, &s);
	assert_true(s.pages_spare > 0);
	assert_int_equal(s.pages_allocated, s.pages_spare);
	/* huge objects (a page each) up to the limit: the spare goes first */
	for (;;) {
		errno = 0;
		unsigned long x = zs_malloc(pool, 4000);
		if (!x) {
			assert_int_equal(errno, ENOMEM);
			break;
		}
		h[n++] = x;
		assert_true(n < 64);
	}
	zs_pool_stats(pool, &s);
	assert_int_equal(s.pages_spare, 0);
	assert_int_equal(n, 16);
	assert_int_equal(zs_get_total_pages(pool), 16);
	for (int i = 0; i < n; i++)
		zs_free(pool, h[i]);
	zs_destroy_pool(pool);
}

static void test_arguments(void **state)
{
	struct zs_pool *pool = zs_create_pool("args");
	struct zs_pool_stats st;
	unsigned char buf[4096] = { 0 };

	(void)state;
	errno = 0;
	assert_int_equal(zs_malloc(pool, 0), 0);
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_int_equal(zs_malloc(pool, ZS_MAX_ALLOC_SIZE + 1), 0);
	assert_int_equal(errno, E2BIG);
	errno = 0;
	assert_int_equal(zs_malloc_write(pool, NULL, 100), 0);
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_int_equal(zs_malloc_write(pool, buf, 0), 0);
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_int_equal(zs_malloc_write(pool, buf, ZS_MAX_ALLOC_SIZE + 1), 0);
	assert_int_equal(errno, E2BIG);
	assert_int_equal(zs_get_total_pages(pool), 0);
	zs_free(pool, 0); /* ignored */

	/* writes past the object's capacity are refused and change nothing */
	unsigned long h = zs_malloc(pool, 100);
	write_pattern(pool, h, 100, 9);
	assert_int_equal(zs_obj_write(pool, h, buf, 4096), -EINVAL);
	check_pattern(pool, h, 100, 9);
	errno = 0;
	assert_null(zs_obj_read_begin(pool, h, 4096, buf));
	assert_int_equal(errno, EINVAL);
	/* and the object is not left read-locked: compaction still works */
	zs_pool_stats(pool, &st);
	assert_int_equal(st.objs_used, 1);
	zs_free(pool, h);
	zs_destroy_pool(pool);
}

/*
 * A NULL pool (or a NULL buffer where bytes are read or written) is an
 * error or a no-op, never a dereference: each call below used to crash.
 */
static void test_null_arguments(void **state)
{
	struct zs_pool *pool = zs_create_pool("null-args");
	struct zs_pool_stats st;
	struct zs_class_stats cs;
	unsigned char buf[64] = { 0 };
	char text[16];
	unsigned long h;

	(void)state;
	errno = 0;
	assert_int_equal(zs_malloc(NULL, 100), 0);
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_int_equal(zs_malloc_write(NULL, buf, 10), 0);
	assert_int_equal(errno, EINVAL);
	zs_free(NULL, 0x1234);
	zs_free_deferred(NULL, 0x1234);
	zs_free_deferred_cookie(NULL, 0x1234, 1);
	zs_free_deferred_flush(NULL);
	assert_int_equal(zs_pool_set_deferred_hook(NULL, NULL, NULL), -EINVAL);
	errno = 0;
	assert_null(zs_obj_read_begin(NULL, 0x1234, 10, buf));
	assert_int_equal(errno, EINVAL);
	zs_obj_read_end(NULL, 0x1234, 10, buf);
	assert_int_equal(zs_obj_write(NULL, 0x1234, buf, 10), -EINVAL);
	assert_int_equal(zs_huge_class_size(NULL), 0);
	assert_int_equal(zs_get_total_pages(NULL), 0);
	assert_int_equal(zs_lookup_class_index(NULL, 100), ZS_NO_CLASS);
	assert_int_equal(zs_class_count(NULL), 0);
	assert_int_equal(zs_class_stats(NULL, 0, &cs), -EINVAL);
	assert_int_equal(zs_class_stats(pool, 0, NULL), -EINVAL);
	memset(&st, 0xff, sizeof(st));
	zs_pool_stats(NULL, &st);
	assert_int_equal(st.objs_used, 0);
	zs_pool_stats(pool, NULL);
	assert_int_equal(zs_pool_stats_dump(NULL, ZS_STATS_TEXT, text, sizeof(text)), -EINVAL);
	assert_int_equal(zs_pool_stats_dump(pool, ZS_STATS_TEXT, NULL, 10), -EINVAL);
	assert_int_equal(zs_pool_stats_dump(pool, (enum zs_stats_format)7, text, sizeof(text)),
			 -EINVAL);
	assert_true(zs_pool_stats_dump(pool, ZS_STATS_TEXT, NULL, 0) > 0); /* snprintf's rule */
	assert_int_equal(zs_compact(NULL), 0);
	assert_int_equal(zs_compactable_pages(NULL), 0);
	assert_int_equal(zs_defrag(NULL), 0);
	zs_pool_trim(NULL);
	zs_destroy_pool(NULL);

	/* NULL buffers on a live handle: refused, the object unchanged */
	h = zs_malloc(pool, 50);
	write_pattern(pool, h, 50, 4);
	assert_int_equal(zs_obj_write(pool, h, NULL, 10), -EINVAL);
	errno = 0;
	assert_null(zs_obj_read_begin(pool, h, 10, NULL));
	assert_int_equal(errno, EINVAL);
	check_pattern(pool, h, 50, 4); /* and not left read-locked */
	assert_int_equal(zs_obj_write(pool, h, NULL, 0), 0); /* nothing to copy */
	zs_free(pool, h);
	zs_destroy_pool(pool);
}

/* Deferred-free settings are bounded: absurd ones are a bad config, not
 * terabytes of spare buffers. */
static void test_deferred_bounds(void **state)
{
	static const struct {
		unsigned size, spares;
		int ok;
	} cases[] = {
		{ 0, 0, 1 },
		{ ZS_DEFERRED_MAX_BUFFER, 1, 1 },
		{ ZS_DEFERRED_MAX_BUFFER + 1, 1, 0 },
		{ 16, ZS_DEFERRED_MAX_SPARES, 1 },
		{ 16, ZS_DEFERRED_MAX_SPARES + 1, 0 },
		{ 0, 1000000000u, 0 },
		{ 4000000000u, 0, 0 },
		{ ZS_DEFERRED_MAX_BUFFER, ZS_DEFERRED_MAX_SPARES, 0 }, /* 4 GiB of entries */
		{ ZS_DEFERRED_MAX_BUFFER, ZS_DEFERRED_NO_SPARES, 1 },
		{ 1024, ZS_DEFERRED_MAX_ENTRIES / 1024, 1 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct zs_pool_config cfg = { .deferred_buffer_size = cases[i].size,
					      .deferred_spares = cases[i].spares };
		struct zs_pool *pool;

		errno = 0;
		pool = zs_create_pool_ex("bounds", &cfg);
		if (!cases[i].ok) {
			assert_null(pool);
			assert_int_equal(errno, EINVAL);
			continue;
		}
		assert_non_null(pool);
		unsigned long h = zs_malloc(pool, 100);
		zs_free_deferred(pool, h); /* builds the spares */
		zs_free_deferred_flush(pool);
		zs_destroy_pool(pool);
	}
}

/*
 * zs_pool_trim promises that RSS reflects the trim when it returns: every
 * chunk left empty is unmapped by then, also one that the arena's worker
 * is unmapping at that moment (its pages used to leave "transit" before
 * the chunk was unmapped, so trim could return first).
 */
static void test_trim_unmaps_chunks(void **state)
{
	enum { ROUNDS = 60, OBJS = 3000 };
	static unsigned long h[OBJS];
	int late = 0;

	(void)state;
	for (int r = 0; r < ROUNDS; r++) {
		struct zs_pool *pool = zs_create_pool("trim-chunks");
		struct zs_pool_stats st;

		for (int i = 0; i < OBJS; i++)
			assert_true((h[i] = zs_malloc(pool, 2000 + (size_t)i % 1000)) != 0);
		for (int i = 0; i < OBJS; i++)
			zs_free(pool, h[i]); /* evictions go to the worker */
		zs_pool_trim(pool);
		zs_pool_stats(pool, &st);
		late += st.chunks_committed != 0;
		assert_int_equal(st.pages_resident, 0);
		zs_destroy_pool(pool);
	}
	assert_int_equal(late, 0);
}

static void test_stats_dump(void **state)
{
	struct zs_pool *pool = zs_create_pool("dump \"quoted\"");
	unsigned long h[100];
	char small[16];
	char *buf;
	int len;

	(void)state;
	for (int i = 0; i < 100; i++)
		h[i] = zs_malloc(pool, 50 + 30 * (size_t)i);
	len = zs_pool_stats_dump(pool, ZS_STATS_TEXT, small, sizeof(small));
	assert_true(len > (int)sizeof(small));
	assert_int_equal(strlen(small), sizeof(small) - 1); /* truncated, terminated */
	buf = malloc((size_t)len + 1);
	assert_int_equal(zs_pool_stats_dump(pool, ZS_STATS_TEXT, buf, (size_t)len + 1), len);
	assert_non_null(strstr(buf, " class  size       10%"));
	assert_non_null(strstr(buf, "obj_allocated   obj_used pages_used pages_per_zspage freeable"));
	assert_non_null(strstr(buf, " Total"));
	free(buf);

	len = zs_pool_stats_dump(pool, ZS_STATS_JSON, NULL, 0);
	buf = malloc((size_t)len + 1);
	zs_pool_stats_dump(pool, ZS_STATS_JSON, buf, (size_t)len + 1);
	assert_true(buf[0] == '{');
	assert_non_null(strstr(buf, "\"pool\":\"dump \\\"quoted\\\"\""));
	assert_non_null(strstr(buf, "\"classes\":[{\"class\":0,"));
	assert_non_null(strstr(buf, "\"objs_used\":100"));
	free(buf);

	struct zs_pool_stats st;
	zs_pool_stats(pool, &st);
	assert_int_equal(st.objs_used, 100);
	assert_int_equal(st.pages_allocated, zs_get_total_pages(pool));
	assert_true(st.pages_max >= st.pages_allocated);
	assert_true(st.metadata_bytes > 0);
	for (int i = 0; i < 100; i++)
		zs_free(pool, h[i]);
	zs_destroy_pool(pool);
}

/* After freeing everything, RSS is back within 1 MiB plus metadata. */
static void test_rss_returns(void **state)
{
	enum { N = 60000 };
	struct zs_pool *pool;
	unsigned long *h;
	struct zs_pool_stats st;
	uint64_t seed = 5;
	size_t before, peak, after;

	(void)state;
	if (ZS_TEST_SANITIZED)
		skip();
	pool = zs_create_pool("rss");
	h = calloc(N, sizeof(*h));
	memset(h, 0, N * sizeof(*h)); /* touch it before the baseline */
	before = rss_bytes();
	for (int i = 0; i < N; i++) {
		size_t len = 500 + rng_below(&seed, 3000);
		h[i] = zs_malloc(pool, len);
		write_pattern(pool, h[i], len, (uint64_t)i);
	}
	peak = rss_bytes();
	zs_pool_stats(pool, &st);
	assert_true(peak - before > (size_t)st.pages_allocated * 4096 * 9 / 10);
	size_t metadata = st.metadata_bytes;
	for (int i = 0; i < N; i++)
		zs_free(pool, h[(i * 7919) % N]);
	zs_pool_stats(pool, &st);
	assert_int_equal(zs_get_total_pages(pool), st.pages_spare);
	/* the arena's releaser gives pages back asynchronously, off the free
	 * path: wait for the condition, bounded */
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		after = rss_bytes();
		if (after <= before + (1u << 20) + metadata)
			break;
		sched_yield();
		clock_gettime(CLOCK_MONOTONIC, &t1);
	} while (t1.tv_sec - t0.tv_sec < 5);
	if (after > before + (1u << 20) + metadata)
		fail_msg("RSS %zu -> peak %zu -> %zu: %zu above baseline (metadata %zu)", before,
			 peak, after, after - before, metadata);
	free(h);
	zs_destroy_pool(pool);
}

/*
 * A pool takes little from malloc: its large tables are mappings of their
 * own. A table calloc()ed in the hope that it is lazily zeroed mmap memory
 * is so only until the process frees one such block: glibc then raises its
 * mmap threshold above it, and the next pool's table comes from the heap,
 * zeroed and resident (the arena's chunk table: +1.7 MB per new pool, and
 * kept in the heap after the pool is gone; seen in nbdkit, which validates
 * its configuration with throwaway stores).
 */
static void test_pool_malloc_small(void **state)
{
	struct mallinfo2 before, after;
	struct zs_pool *pool;
	size_t taken;

	(void)state;
	if (ZS_TEST_SANITIZED)
		skip(); /* the sanitizers' allocators do not fill mallinfo2 */
	before = mallinfo2();
	pool = zs_create_pool("malloc-small");
	after = mallinfo2();
	assert_non_null(pool);
	taken = (after.uordblks + after.hblkhd) - (before.uordblks + before.hblkhd);
	if (taken > (256u << 10))
		fail_msg("a new pool took %zu KiB from malloc", taken >> 10);
	zs_destroy_pool(pool);
}

/* Fills a pool with N objects of 500..3500 bytes; returns the handles. */
static unsigned long *fill_pool(struct zs_pool *pool, int n, uint64_t seed)
{
	unsigned long *h = calloc((size_t)n, sizeof(*h));

	assert_non_null(h);
	for (int i = 0; i < n; i++) {
		size_t len = 500 + rng_below(&seed, 3000);
		h[i] = zs_malloc(pool, len);
		assert_true(h[i] != 0);
		write_pattern(pool, h[i], len, (uint64_t)i);
	}
	return h;
}

/*
 * Decay: after everything is freed and the pool idles for its decay period
 * (100 ms here), the arena's worker gives back the cached pages, the spare
 * zspages and the handle table's tail by itself: RSS comes back within
 * 1 MiB of the baseline -- no allowance for metadata -- and no page is
 * left in a zspage. Polls for the condition, bounded (5 s).
 */
static void test_decay_returns(void **state)
{
	enum { N = 60000 };
	struct zs_pool_config cfg = {.decay_ms = 100};
	struct zs_pool *pool;
	struct zs_pool_stats st;
	struct timespec t0, t1;
	size_t before, after;
	unsigned long *h;

	(void)state;
	if (ZS_TEST_SANITIZED)
		skip();
	pool = zs_create_pool_ex("decay", &cfg);
	assert_non_null(pool);
	before = rss_bytes();
	h = fill_pool(pool, N, 11);
	for (int i = 0; i < N; i++)
		zs_free(pool, h[(i * 7919) % N]);
	free(h);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		after = rss_bytes();
		zs_pool_stats(pool, &st);
		/* the worker gives zspages' pages back before it decays the
		 * cache: wait for all of it, not just for RSS to drop */
		if (after <= before + (1u << 20) && st.pages_allocated == 0 &&
		    st.pages_resident == 0 && st.pages_decayed > 0)
			break;
		usleep(10000); /* polling a condition, bounded below */
		clock_gettime(CLOCK_MONOTONIC, &t1);
	} while (t1.tv_sec - t0.tv_sec < 5);
	if (after > before + (1u << 20) || st.pages_allocated)
		fail_msg("after decay: RSS %zu above baseline, %lu pages in zspages (%lu spare)",
			 after > before ? after - before : 0, st.pages_allocated, st.pages_spare);
	assert_true(st.pages_decayed > 0);
	assert_int_equal(st.pages_resident, 0);
	zs_destroy_pool(pool);
}

/*
 * zs_compact gives back at once what an idle pool would release after its
 * decay period (here: never): RSS is back within 1 MiB of the baseline
 * right after the call, and the handle table's tail went with it
 * (metadata_bytes falls back near its value before the fill).
 */
static void test_compact_returns_cached(void **state)
{
	enum { N = 60000 };
	struct zs_pool_config cfg = {.decay_ms = ZS_DECAY_NEVER};
	struct zs_pool *pool;
	struct zs_pool_stats st, st0;
	size_t before, after;
	unsigned long *h;

	(void)state;
	if (ZS_TEST_SANITIZED)
		skip();
	pool = zs_create_pool_ex("compact-rss", &cfg);
	assert_non_null(pool);
	zs_pool_stats(pool, &st0);
	before = rss_bytes();
	h = fill_pool(pool, N, 13);
	zs_pool_stats(pool, &st);
	assert_true(st.metadata_bytes > st0.metadata_bytes + N * sizeof(uint64_t));
	for (int i = 0; i < N; i++)
		zs_free(pool, h[(i * 7919) % N]);
	free(h);
	zs_pool_stats(pool, &st);
	assert_true(st.pages_resident > 0); /* kept: no decay in this pool */
	zs_compact(pool);
	after = rss_bytes();
	zs_pool_stats(pool, &st);
	if (after > before + (1u << 20))
		fail_msg("after zs_compact: RSS %zu above baseline", after - before);
	assert_int_equal(st.pages_allocated, 0);
	assert_int_equal(st.pages_resident, 0);
	assert_int_equal(st.pages_decayed, 0);
	/* the handle slots (480 KiB at the peak) shrank back; metadata_bytes
	 * also counts a pdesc page for each mapped chunk, and allocation may
	 * have mapped a few chunks ahead that it never used (all free, kept) */
	if (handle_table_bytes(&pool->handles) > 4096)
		fail_msg("handle table %zu bytes after zs_compact",
			 handle_table_bytes(&pool->handles));
	if (st.metadata_bytes > st0.metadata_bytes + 512 * 1024)
		fail_msg("metadata %lu bytes, %lu before the fill", st.metadata_bytes,
			 st0.metadata_bytes);
	zs_destroy_pool(pool);
}

/* Waits, bounded, until the arena's worker has done the refill asked for. */
static void wait_refilled(struct zs_pool *pool)
{
	struct timespec t0, t1;
	unsigned target;
	bool wanted;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		arena_prefault_state(&pool->arena, &target, &wanted);
		if (!wanted)
			return;
		sched_yield();
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if (t1.tv_sec - t0.tv_sec >= 10)
			fail_msg("the refill of %u pages did not finish", target);
	}
}

/*
 * One allocation in a new pool wakes the arena's worker once, which must
 * fault ARENA_PREFAULT_MIN pages in ahead and stop there -- with
 * transparent huge pages too, where the writer would otherwise fault each
 * 2 MiB chunk in itself. A pool that keeps growing gets refills twice as
 * large each time, up to the cache's capacity, within a few refills; a trim
 * starts them small again. (A refill always to the capacity faulted 128
 * pages in for one page used.) Waits for the worker, bounded; a lost
 * wake-up fails it as well.
 */
static void prefault_case(unsigned flags)
{
	enum { N = 600 };
	struct zs_pool_config cfg = {.flags = flags};
	struct zs_pool *pool = zs_create_pool_ex("prefault", &cfg);
	struct zs_pool_stats st;
	unsigned long h[N];
	unsigned target, cap, cached, n;
	bool wanted;

	assert_non_null(pool);
	h[0] = zs_malloc(pool, 4000); /* one page */
	assert_true(h[0] != 0);
	wait_refilled(pool);
	zs_pool_stats(pool, &st);
	if (st.pages_prefaulted != ARENA_PREFAULT_MIN)
		fail_msg("flags %#x: %lu pages prefaulted, %u expected", flags,
			 st.pages_prefaulted, ARENA_PREFAULT_MIN);
	if (!(flags & ZS_POOL_HUGEPAGES)) /* else whole chunks count as resident */
		assert_int_equal(st.pages_resident - st.pages_allocated, ARENA_PREFAULT_MIN);

	/* growing: 8 + 16 + 32 + 64 pages used take the target to 128 */
	for (n = 1; n < N; n++) {
		arena_prefault_state(&pool->arena, &target, &wanted);
		arena_cache_state(&pool->arena, &cap, &cached);
		if (target == cap)
			break;
		h[n] = zs_malloc(pool, 4000);
		assert_true(h[n] != 0);
		wait_refilled(pool);
	}
	assert_int_equal(cap, ARENA_CACHE_MIN);
	if (n > 8 + 16 + 32 + 64 + 1)
		fail_msg("flags %#x: the refill's target reached %u after %u pages", flags, cap, n);
	zs_pool_stats(pool, &st);
	/* every page prefaulted was either used or is still cached */
	assert_true(st.pages_prefaulted <= n + cached);

	zs_pool_trim(pool);
	arena_prefault_state(&pool->arena, &target, &wanted);
	assert_int_equal(target, ARENA_PREFAULT_MIN / 2);
	for (unsigned i = 0; i < n; i++)
		zs_free(pool, h[i]);
	zs_destroy_pool(pool);
}

static void test_prefault_refills(void **state)
{
	(void)state;
	prefault_case(0);
	prefault_case(ZS_POOL_HUGEPAGES);
}

/*
 * The arena's cache of resident free pages holds 1/64 of the pages in use,
 * between 128 and 512, so that a large growing pool wakes its worker less
 * often: a pool of 40,000 one-page objects keeps 300 freed pages resident
 * (frees reach the cache synchronously; nothing is evicted below its
 * capacity, where a fixed 128 would have evicted past 128 + a chain), and
 * the capacity falls back as the pool empties.
 */
static void test_cache_scales(void **state)
{
	enum { N = 40000, FREED = 300 };
	struct zs_pool_config cfg = {.flags = ZS_POOL_NO_SPARE};
	struct zs_pool *pool = zs_create_pool_ex("cache", &cfg);
	unsigned long *h = calloc(N, sizeof(*h));
	unsigned cap, cached;

	(void)state;
	assert_non_null(pool);
	assert_non_null(h);
	arena_cache_state(&pool->arena, &cap, &cached);
	assert_int_equal(cap, ARENA_CACHE_MIN);
	for (int i = 0; i < N; i++) {
		h[i] = zs_malloc(pool, 4000); /* one page each (the huge class) */
		assert_true(h[i] != 0);
		if (i + 1 == 16384) {
			arena_cache_state(&pool->arena, &cap, &cached);
			assert_int_equal(cap, 16384 / ARENA_CACHE_SHARE);
		}
	}
	zs_pool_trim(pool); /* empties the cache, waits for a prefault in flight */
	arena_cache_state(&pool->arena, &cap, &cached);
	assert_int_equal(cap, ARENA_CACHE_MAX);
	assert_int_equal(cached, 0);
	for (int i = 0; i < FREED; i++)
		zs_free(pool, h[i]);
	arena_cache_state(&pool->arena, &cap, &cached);
	assert_int_equal(cached, FREED);
	for (int i = FREED; i < N; i++)
		zs_free(pool, h[i]);
	arena_cache_state(&pool->arena, &cap, &cached);
	assert_int_equal(cap, ARENA_CACHE_MIN);
	assert_true(cached < ARENA_CACHE_MIN + ARENA_CACHE_SLACK + ZS_MAX_CHAIN);
	free(h);
	zs_destroy_pool(pool);
}

/*
 * A burst of frees followed by a burst of allocations (a store discarding
 * and rewriting a range) must not pay madvise for pages it takes back a
 * moment later: freed pages may pile up ARENA_CACHE_SLACK above the cache's
 * capacity before the older ones are evicted. Here 400 one-page objects
 * freed at once above a small pool (capacity 128) all stay cached (with
 * eviction at the capacity, 128 + a chain, only ~64 did), the allocations
 * that follow take them all back from the cache, and a burst larger than
 * the slack is still evicted down to the capacity.
 */
static void test_cache_absorbs_burst(void **state)
{
	enum { BURST = 400, BIG = ARENA_CACHE_MIN + ZS_CHUNK_PAGES + 200 };
	struct zs_pool_config cfg = {.flags = ZS_POOL_NO_SPARE, .decay_ms = ZS_DECAY_NEVER};
	struct zs_pool *pool = zs_create_pool_ex("burst", &cfg);
	unsigned long h[BIG];
	unsigned cap, cached;

	(void)state;
	assert_non_null(pool);
	for (int i = 0; i < BURST; i++)
		assert_true((h[i] = zs_malloc(pool, 4000)) != 0); /* one page each */
	zs_pool_trim(pool); /* nothing cached, no prefault in flight */
	for (int i = 0; i < BURST; i++)
		zs_free(pool, h[i]);
	arena_cache_state(&pool->arena, &cap, &cached);
	assert_int_equal(cap, ARENA_CACHE_MIN);
	assert_int_equal(cached, BURST);
	for (int i = 0; i < BURST; i++)
		assert_true((h[i] = zs_malloc(pool, 4000)) != 0);
	arena_cache_state(&pool->arena, &cap, &cached);
	/* every page came from the cache (the worker may have added fresh
	 * ones once it ran low) */
	assert_true(cached < BURST);
	for (int i = BURST; i < BIG; i++)
		assert_true((h[i] = zs_malloc(pool, 4000)) != 0);
	zs_pool_trim(pool);
	for (int i = 0; i < BIG; i++)
		zs_free(pool, h[i]);
	arena_cache_state(&pool->arena, &cap, &cached);
	assert_true(cached >= cap && cached < cap + ARENA_CACHE_SLACK + ZS_MAX_CHAIN);
	zs_destroy_pool(pool);
}

/* The VmFlags line of the mapping that holds addr in /proc/self/smaps, or "". */
static void vm_flags_of(const void *addr, char *out, size_t len)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	int inside = 0;

	out[0] = 0;
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;

		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' '))
			inside = (uintptr_t)addr >= lo && (uintptr_t)addr < hi;
		else if (inside && !strncmp(line, "VmFlags:", 8)) {
			snprintf(out, len, "%s", line + 8);
			break;
		}
	}
	fclose(f);
}

/*
 * A pool gives pages back one by one, so its arena must not be backed by
 * transparent huge pages where the system has them "always" on (a 4 KiB
 * MADV_DONTNEED would free nothing, and khugepaged would refill sparse
 * chunks): the mapping says "nh"; with ZS_POOL_HUGEPAGES it says "hg".
 */
static void test_thp_policy(void **state)
{
	static const struct {
		unsigned flags;
		const char *want, *not;
	} cases[] = {{0, " nh", " hg"}, {ZS_POOL_HUGEPAGES, " hg", " nh"}};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct zs_pool_config cfg = {.flags = cases[i].flags};
		struct zs_pool *pool = zs_create_pool_ex("thp", &cfg);
		unsigned char local[100];
		char flags[512];
		unsigned long h;
		void *p;

		assert_non_null(pool);
		h = zs_malloc(pool, 100);
		assert_true(h != 0);
		p = zs_obj_read_begin(pool, h, 100, local);
		assert_true(p != (void *)local);
		vm_flags_of(p, flags, sizeof(flags));
		zs_obj_read_end(pool, h, 100, p);
		if (!strstr(flags, cases[i].want) || strstr(flags, cases[i].not))
			fail_msg("flags %#x: VmFlags%s lacks%s", cases[i].flags, flags,
				 cases[i].want);
		zs_free(pool, h);
		zs_destroy_pool(pool);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_size),    cmocka_unit_test(test_prefix_access),
		cmocka_unit_test(test_straddle_copy), cmocka_unit_test(test_huge_class),
		cmocka_unit_test(test_fullness),      cmocka_unit_test(test_max_pages),
		cmocka_unit_test(test_max_pages_spares),
		cmocka_unit_test(test_arguments),     cmocka_unit_test(test_stats_dump),
		cmocka_unit_test(test_null_arguments), cmocka_unit_test(test_deferred_bounds),
		cmocka_unit_test(test_trim_unmaps_chunks),
		cmocka_unit_test(test_rss_returns),   cmocka_unit_test(test_prefault_refills),
		cmocka_unit_test(test_pool_malloc_small),
		cmocka_unit_test(test_thp_policy),    cmocka_unit_test(test_cache_scales),
		cmocka_unit_test(test_cache_absorbs_burst),
		cmocka_unit_test(test_decay_returns), cmocka_unit_test(test_compact_returns_cached),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
