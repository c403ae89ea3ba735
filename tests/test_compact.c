/* SPDX-License-Identifier: MIT */
/*
 * Compaction frees what it should; migration and zs_defrag give whole
 * chunks back; background compaction runs on its own.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdbool.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "zsmalloc.h"
#include "common.h"

struct objset {
	unsigned long *h;
	unsigned *len;
	size_t n;
};

static void fill(struct zs_pool *pool, struct objset *o, size_t n, uint64_t seed)
{
	unsigned char buf[4096];

	o->h = calloc(n, sizeof(*o->h));
	o->len = calloc(n, sizeof(*o->len));
	o->n = n;
	for (size_t i = 0; i < n; i++) {
		o->len[i] = page_like_len(&seed);
		o->h[i] = zs_malloc(pool, o->len[i]);
		assert_true(o->h[i] != 0);
		pattern_fill(buf, o->len[i], i);
		assert_int_equal(zs_obj_write(pool, o->h[i], buf, o->len[i]), 0);
	}
}

static void free_random_half(struct zs_pool *pool, struct objset *o, uint64_t seed)
{
	for (size_t i = 0; i < o->n; i++) {
		if (o->h[i] && rng_below(&seed, 2)) {
			zs_free(pool, o->h[i]);
			o->h[i] = 0;
		}
	}
}

static void verify_all(struct zs_pool *pool, struct objset *o)
{
	unsigned char local[4096];

	for (size_t i = 0; i < o->n; i++) {
		if (!o->h[i])
			continue;
		void *p = zs_obj_read_begin(pool, o->h[i], o->len[i], local);
		assert_non_null(p);
		if (!pattern_check(p, o->len[i], i))
			fail_msg("object %zu (len %u) corrupt", i, o->len[i]);
		zs_obj_read_end(pool, o->h[i], o->len[i], p);
	}
}

static void release(struct zs_pool *pool, struct objset *o)
{
	for (size_t i = 0; i < o->n; i++)
		zs_free(pool, o->h[i]);
	free(o->h);
	free(o->len);
}

/* The fewest pages the live objects can take, class by class. */
static unsigned long min_pages(struct zs_pool *pool)
{
	unsigned long pages = 0;

	for (unsigned k = 0; k < zs_class_count(pool); k++) {
		struct zs_class_stats cs;
		zs_class_stats(pool, k, &cs);
		pages += (cs.obj_used + cs.objs_per_zspage - 1) / cs.objs_per_zspage *
			 cs.pages_per_zspage;
	}
	return pages;
}

static void test_compact_to_minimum(void **state)
{
	struct zs_pool *pool = zs_create_pool("compact");
	struct zs_pool_stats st;
	struct objset o;
	unsigned long before, freed, compactable;
	size_t rss_before, rss_after;

	(void)state;
	fill(pool, &o, 60000, 1);
	assert_int_equal(zs_compact(pool), 0); /* nothing to do yet */
	free_random_half(pool, &o, 2);
	before = zs_get_total_pages(pool);
	compactable = zs_compactable_pages(pool);
	assert_true(compactable > before / 4);
	rss_before = rss_bytes();

	freed = zs_compact(pool);
	rss_after = rss_bytes();
	zs_pool_stats(pool, &st);
	assert_int_equal(freed, before - zs_get_total_pages(pool));
	assert_int_equal(st.pages_compacted, freed);
	assert_int_equal(zs_get_total_pages(pool), min_pages(pool));
	assert_int_equal(zs_compactable_pages(pool), 0);
	assert_true(freed >= compactable);
	/* RSS fell by at least 90 % of what compaction freed */
	if (!ZS_TEST_SANITIZED && rss_after + freed * 4096 * 9 / 10 > rss_before)
		fail_msg("RSS fell by %zu bytes, compaction freed %lu pages",
			 rss_before - rss_after, freed);
	verify_all(pool, &o);

	/* a second pass finds nothing, and counts nothing */
	assert_int_equal(zs_compact(pool), 0);
	zs_pool_stats(pool, &st);
	assert_int_equal(st.pages_compacted, freed);
	release(pool, &o);
	assert_true(pool_empty_after_trim(pool));
	zs_destroy_pool(pool);
}

/* Compaction skips zspages that readers hold, and finishes the rest. */
static void test_compact_skips_readers(void **state)
{
	struct zs_pool *pool = zs_create_pool("busy");
	unsigned long h[600];
	unsigned char local[200];

	(void)state;
	for (int i = 0; i < 600; i++) {
		h[i] = zs_malloc(pool, 100);
		unsigned char buf[100];
		pattern_fill(buf, 100, (uint64_t)i);
		zs_obj_write(pool, h[i], buf, 100);
	}
	/* three zspages (256 objects each): keep a few objects in each */
	for (int i = 0; i < 600; i++)
		if (i % 64)
			zs_free(pool, h[i]), h[i] = 0;
	unsigned long before = zs_get_total_pages(pool);
	/* hold object 0 open: its zspage cannot be a source */
	void *p = zs_obj_read_begin(pool, h[0], 100, local);
	unsigned long freed = zs_compact(pool);
	assert_true(pattern_check(p, 100, 0));
	zs_obj_read_end(pool, h[0], 100, p);
	assert_true(freed > 0);
	assert_true(zs_get_total_pages(pool) < before);
	freed += zs_compact(pool);
	assert_int_equal(zs_get_total_pages(pool), min_pages(pool));
	for (int i = 0; i < 600; i++) {
		if (!h[i])
			continue;
		p = zs_obj_read_begin(pool, h[i], 100, local);
		assert_true(pattern_check(p, 100, (uint64_t)i));
		zs_obj_read_end(pool, h[i], 100, p);
		zs_free(pool, h[i]);
	}
	zs_destroy_pool(pool);
}

static void defrag_case(unsigned flags)
{
	struct zs_pool_config cfg = { .flags = flags };
	struct zs_pool *pool = zs_create_pool_ex("defrag", &cfg);
	struct zs_pool_stats st0, st1;
	struct objset o;
	unsigned long moved;

	fill(pool, &o, 80000, 3);
	free_random_half(pool, &o, 4);
	free_random_half(pool, &o, 5); /* three quarters gone */
	zs_compact(pool);
	zs_pool_stats(pool, &st0);
	moved = zs_defrag(pool);
	zs_pool_stats(pool, &st1);
	assert_true(moved > 0);
	assert_int_equal(st1.pages_migrated, moved);
	assert_true(st1.chunks_committed < st0.chunks_committed);
	assert_true(st1.chunks_released > st0.chunks_released);
	assert_true(st1.pages_resident <= st0.pages_resident);
	/* pages in use did not change: migration only moves them */
	assert_int_equal(st1.pages_allocated, st0.pages_allocated);
	/* the live pages now fit in about as many chunks as they need */
	assert_true(st1.chunks_committed <= st1.pages_allocated / 512 + 3);
	verify_all(pool, &o);
	release(pool, &o);
	assert_true(pool_empty_after_trim(pool));
	zs_destroy_pool(pool);
}

static void test_defrag_releases_chunks(void **state)
{
	(void)state;
	defrag_case(0);
}

/* With huge-page-backed chunks freed pages stay resident until whole
 * chunks go: defrag is what gives that memory back. */
static void test_defrag_hugepages(void **state)
{
	(void)state;
	defrag_case(ZS_POOL_HUGEPAGES);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void test_background_compaction(void **state)
{
	struct zs_pool_config cfg = { .flags = ZS_POOL_BG_COMPACT, .compact_threshold = 64 };
	struct zs_pool *pool = zs_create_pool_ex("bg", &cfg);
	struct zs_pool_stats st;
	struct objset o;
	double deadline;

	(void)state;
	fill(pool, &o, 30000, 6);
	free_random_half(pool, &o, 7);
	/* wait for the condition, bounded: the thread polls every 100 ms */
	deadline = now_s() + 10;
	do {
		zs_pool_stats(pool, &st);
		if (st.pages_compacted > 0 && zs_compactable_pages(pool) < 64)
			break;
		sched_yield();
	} while (now_s() < deadline);
	assert_true(st.pages_compacted > 0);
	assert_true(zs_compactable_pages(pool) < 64);
	verify_all(pool, &o);
	release(pool, &o);
	zs_destroy_pool(pool);
}

/* Whether this process may set a PSI memory trigger at all (2 s window). */
static bool psi_settable(void)
{
	static const char trig[] = "some 200000 2000000";
	int fd = open("/proc/pressure/memory", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	bool ok;

	if (fd < 0)
		return false;
	ok = write(fd, trig, sizeof(trig)) >= 0;
	close(fd);
	return ok;
}

/* ZS_POOL_PSI_COMPACT gets a trigger wherever one can be set. */
static void test_psi_trigger(void **state)
{
	struct zs_pool_config cfg = { .flags = ZS_POOL_PSI_COMPACT };
	struct zs_pool *pool;
	struct zs_pool_stats st;

	(void)state;
	if (!psi_settable())
		skip(); /* no PSI, or no right to set a trigger */
	pool = zs_create_pool_ex("psi", &cfg);
	assert_non_null(pool);
	zs_pool_stats(pool, &st);
	assert_int_equal(st.psi_trigger, 1);
	zs_destroy_pool(pool);
	/* without the flag, no trigger */
	pool = zs_create_pool("no-psi");
	zs_pool_stats(pool, &st);
	assert_int_equal(st.psi_trigger, 0);
	zs_destroy_pool(pool);
}

/* Compaction and migration keep the pool-lock zs_free variant correct. */
static void test_pool_lock_variant(void **state)
{
	struct zs_pool_config cfg = { .flags = ZS_POOL_FREE_POOL_LOCK };
	struct zs_pool *pool = zs_create_pool_ex("legacy", &cfg);
	struct objset o;

	(void)state;
	fill(pool, &o, 20000, 8);
	free_random_half(pool, &o, 9);
	assert_true(zs_compact(pool) > 0);
	zs_defrag(pool);
	verify_all(pool, &o);
	release(pool, &o);
	assert_true(pool_empty_after_trim(pool));
	zs_destroy_pool(pool);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_compact_to_minimum),
		cmocka_unit_test(test_compact_skips_readers),
		cmocka_unit_test(test_defrag_releases_chunks),
		cmocka_unit_test(test_defrag_hugepages),
		cmocka_unit_test(test_background_compaction),
		cmocka_unit_test(test_psi_trigger),
		cmocka_unit_test(test_pool_lock_variant),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
