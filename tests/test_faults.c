/* SPDX-License-Identifier: MIT */
/*
 * Fault injection (-Drace_hooks=true builds): allocations, mappings and
 * madvise calls inside the library fail at random while pools and stores
 * work. Every failure must reach the caller as a clear error (ENOMEM,
 * -ENOMEM; a pool or store that cannot be created returns NULL), and no
 * stored object may be lost or damaged: objects and pages are checked
 * against shadow copies throughout and once more with the faults off.
 *
 *   creation    pools and stores created and destroyed with faults on
 *               (LeakSanitizer checks that failed creations free all)
 *   pool        two threads allocating, writing, reading and freeing
 *               (deferred too) while the main thread compacts, migrates
 *               (zs_defrag), trims and flushes; background compaction on
 *   zsram       writes, partial writes, discards, compaction and
 *               recompression of a store against a shadow disk
 *
 * FAULT_SEED=N (default 0) varies where the faults fall and what the
 * threads do; scripts/soak.sh sets a new one each round.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "zsmalloc.h"
#include "zsram.h"
#include "zsram_internal.h"
#include "fault.h"
#include "common.h"

/* ------------------------------------------------------------------ */
/* The hook: fails a call with probability permille/1000, per point     */

static unsigned permille;                       /* atomic, relaxed */
static uint64_t fault_seq;                      /* atomic: one draw per call */
static unsigned long injected[ZS_NR_FAULT_POINTS]; /* atomic, relaxed */
static uint64_t base_seed; /* FAULT_SEED */

static bool fault_hook(enum zs_fault_point point)
{
	uint64_t x = __atomic_fetch_add(&fault_seq, 1, __ATOMIC_RELAXED) * 0x9e3779b97f4a7c15ull;

	x ^= x >> 29;
	if ((x % 1000) >= __atomic_load_n(&permille, __ATOMIC_RELAXED))
		return false;
	__atomic_fetch_add(&injected[point], 1, __ATOMIC_RELAXED);
	return true;
}

static void faults_on(unsigned pm)
{
	__atomic_store_n(&permille, pm, __ATOMIC_RELAXED);
	/* release: pairs with fault()'s acquire load of the hook */
	__atomic_store_n(&zs_fault_hook, fault_hook, __ATOMIC_RELEASE);
}

static void faults_off(void)
{
	__atomic_store_n(&zs_fault_hook, NULL, __ATOMIC_RELEASE);
}

static unsigned long injected_total(void)
{
	unsigned long n = 0;

	for (int i = 0; i < ZS_NR_FAULT_POINTS; i++)
		n += __atomic_load_n(&injected[i], __ATOMIC_RELAXED);
	return n;
}

/* ------------------------------------------------------------------ */
/* Creation                                                             */

static void test_creation(void **state)
{
	unsigned created = 0, refused = 0;

	(void)state;
	faults_on(100);
	for (int i = 0; i < 300; i++) {
		struct zs_pool_config pc = { .flags = (i & 1) ? ZS_POOL_BG_COMPACT : 0 };
		struct zs_pool *pool;

		errno = 0;
		pool = zs_create_pool_ex("faults", &pc);
		if (!pool) {
			assert_int_equal(errno, ENOMEM);
			refused++;
			continue;
		}
		created++;
		zs_destroy_pool(pool);
	}
	for (int i = 0; i < 100; i++) {
		struct zsram_config cfg = { .disksize = 64 * 4096,
					    .algorithm = (i & 1) ? "zstd" : "lz4" };
		struct zsram *zr;

		errno = 0;
		zr = zsram_create(&cfg);
		if (!zr) {
			assert_int_equal(errno, ENOMEM);
			refused++;
			continue;
		}
		created++;
		zsram_destroy(zr);
	}
	faults_off();
	print_message("created %u, refused %u (ENOMEM)\n", created, refused);
	assert_true(created > 0 && refused > 0);
}

/* ------------------------------------------------------------------ */
/* Pool                                                                 */

enum { LIVE = 600, ROUNDS = 12000 };

struct worker {
	struct zs_pool *pool;
	uint64_t seed;
	unsigned long h[LIVE];
	size_t len[LIVE];
	uint64_t key[LIVE];
	unsigned long enomem, bad;
};

static int check_obj(struct zs_pool *pool, unsigned long h, size_t len, uint64_t key)
{
	unsigned char local[4096];
	void *p = zs_obj_read_begin(pool, h, len, local);
	int ok;

	if (!p)
		return 0; /* a live handle is never refused, faults or not */
	ok = pattern_check(p, len, key);
	zs_obj_read_end(pool, h, len, p);
	return ok;
}

static void *pool_worker(void *arg)
{
	struct worker *w = arg;
	unsigned char buf[4096];

	for (int r = 0; r < ROUNDS; r++) {
		unsigned i = rng_below(&w->seed, LIVE);

		if (w->h[i]) {
			w->bad += !check_obj(w->pool, w->h[i], w->len[i], w->key[i]);
			if (rng_below(&w->seed, 4) == 0) {
				/* rewrite in place */
				w->key[i] = rng_next(&w->seed);
				pattern_fill(buf, w->len[i], w->key[i]);
				w->bad += zs_obj_write(w->pool, w->h[i], buf, w->len[i]) != 0;
				continue;
			}
			if (rng_below(&w->seed, 2))
				zs_free(w->pool, w->h[i]);
			else
				zs_free_deferred(w->pool, w->h[i]);
			w->h[i] = 0;
			continue;
		}
		w->len[i] = 1 + rng_below(&w->seed, 4096);
		w->key[i] = rng_next(&w->seed);
		pattern_fill(buf, w->len[i], w->key[i]);
		errno = 0;
		w->h[i] = zs_malloc_write(w->pool, buf, w->len[i]);
		if (!w->h[i]) {
			/* out of memory is the one way it may fail here */
			w->enomem++;
			w->bad += errno != ENOMEM;
		}
	}
	return NULL;
}

static void test_pool_faults(void **state)
{
	struct zs_pool_config pc = { .flags = ZS_POOL_BG_COMPACT, .compact_threshold = 16,
				     .deferred_buffer_size = 64 };
	struct zs_pool *pool = zs_create_pool_ex("faults", &pc);
	static struct worker w[2];
	pthread_t tid[2];
	struct zs_pool_stats st;
	unsigned long before = injected_total(), live = 0;

	(void)state;
	assert_non_null(pool);
	faults_on(150);
	for (int t = 0; t < 2; t++) {
		memset(&w[t], 0, sizeof(w[t]));
		w[t].pool = pool;
		w[t].seed = 1234 + (uint64_t)t + base_seed * 7919;
		assert_int_equal(pthread_create(&tid[t], NULL, pool_worker, &w[t]), 0);
	}
	for (int r = 0; r < 200; r++) {
		zs_compact(pool);
		zs_defrag(pool);
		if (r % 8 == 0)
			zs_pool_trim(pool);
		if (r % 16 == 0)
			zs_free_deferred_flush(pool);
	}
	for (int t = 0; t < 2; t++)
		pthread_join(tid[t], NULL); /* each runs its ROUNDS */

	/* with the faults still on, then off: every object intact */
	for (int pass = 0; pass < 2; pass++) {
		if (pass == 1)
			faults_off();
		zs_compact(pool);
		zs_defrag(pool);
		for (int t = 0; t < 2; t++)
			for (int i = 0; i < LIVE; i++)
				if (w[t].h[i])
					w[t].bad += !check_obj(pool, w[t].h[i], w[t].len[i], w[t].key[i]);
	}
	for (int t = 0; t < 2; t++) {
		assert_int_equal(w[t].bad, 0);
		for (int i = 0; i < LIVE; i++)
			live += w[t].h[i] != 0;
	}
	zs_free_deferred_flush(pool);
	zs_pool_stats(pool, &st);
	assert_int_equal(st.objs_used, live);
	print_message("faults injected %lu (in all: alloc %lu, map %lu, madvise %lu); "
		      "zs_malloc_write ENOMEM %lu\n",
		      injected_total() - before, injected[ZS_FAULT_ALLOC], injected[ZS_FAULT_MAP],
		      injected[ZS_FAULT_MADVISE], w[0].enomem + w[1].enomem);
	assert_true(injected_total() > before);
	for (int t = 0; t < 2; t++)
		for (int i = 0; i < LIVE; i++)
			zs_free(pool, w[t].h[i]);
	zs_free_deferred_flush(pool);
	/* the background compactor may be freeing a spare zspage it took just
	 * before the trim: poll, with a deadline, for the pool to be empty */
	for (int i = 0; i < 500 && !pool_empty_after_trim(pool); i++) {
		struct timespec ms10 = { 0, 10000000 };
		nanosleep(&ms10, NULL);
	}
	if (!pool_empty_after_trim(pool)) {
		zs_pool_stats(pool, &st);
		print_message("not empty: objs %lu/%lu, pages %lu (spare %lu), total %lu\n",
			      st.objs_used, st.objs_allocated, st.pages_allocated, st.pages_spare,
			      zs_get_total_pages(pool));
		fail();
	}
	zs_destroy_pool(pool);
}

/* ------------------------------------------------------------------ */
/* zsram                                                                */

static void fill_page(unsigned char *p, uint64_t seed)
{
	switch (seed % 4) {
	case 0: /* same-filled */
		memset(p, (int)(seed >> 8), 4096);
		break;
	case 1: /* incompressible: stored raw */
		pattern_fill(p, 4096, seed);
		break;
	default: /* compressible */
		memset(p, 0, 4096);
		for (int i = 0; i < 4096; i += 64)
			memcpy(p + i, &seed, sizeof(seed));
		break;
	}
}

static void test_zsram_faults(void **state)
{
	enum { PAGES = 256, OPS = 6000 };
	struct zsram_config cfg = { .disksize = PAGES * 4096, .algorithm = "lz4" };
	static unsigned char shadow[PAGES][4096];
	unsigned char page[4096], got[4096];
	uint64_t seed = 99 + base_seed * 7919;
	unsigned long failed = 0, before = injected_total();
	struct zsram *zr = zsram_create(&cfg);

	(void)state;
	assert_non_null(zr);
	assert_int_equal(zsram_set_recomp_algorithm(zr, "zstd", 0), 0);
	memset(shadow, 0, sizeof(shadow));
	faults_on(30);
	for (int op = 0; op < OPS; op++) {
		uint64_t i = rng_below(&seed, PAGES);
		unsigned kind = rng_below(&seed, 10);
		int r;

		if (kind < 4) { /* whole page */
			fill_page(page, rng_next(&seed));
			r = zsram_write_page(zr, i, page);
			if (r == 0)
				memcpy(shadow[i], page, 4096);
			else
				assert_int_equal(r, -ENOMEM), failed++;
		} else if (kind < 6) { /* partial, unaligned */
			size_t off = rng_below(&seed, 4000), len = 1 + rng_below(&seed, 96);
			ssize_t n;

			pattern_fill(page, len, rng_next(&seed));
			n = zsram_pwrite(zr, page, len, i * 4096 + off);
			if (n == (ssize_t)len)
				memcpy(shadow[i] + off, page, len);
			else
				assert_int_equal(n, -ENOMEM), failed++;
		} else if (kind < 7) {
			assert_int_equal(zsram_discard(zr, i, 1), 0);
			memset(shadow[i], 0, 4096);
		} else if (kind < 8) {
			zsram_compact(zr);
		} else if (kind < 9) {
			long n = zsram_recompress(zr, rng_below(&seed, 2) ? ZSRAM_RECOMP_HUGE : 0, 0);
			assert_true(n >= 0 || n == -ENOMEM);
		}
		/* every read: the page as last written, or a clear error */
		r = zsram_read_page(zr, i, got);
		if (r == 0)
			assert_memory_equal(got, shadow[i], 4096);
		else
			assert_int_equal(r, -ENOMEM);
	}
	faults_off();
	for (uint64_t i = 0; i < PAGES; i++) {
		assert_int_equal(zsram_read_page(zr, i, got), 0);
		assert_memory_equal(got, shadow[i], 4096);
	}
	assert_true(zsram_is_valid(zr));
	print_message("zsram: %lu operations refused with -ENOMEM, %lu faults injected\n", failed,
		      injected_total() - before);
	assert_true(injected_total() > before);
	zsram_destroy(zr);
}

int main(void)
{
	base_seed = env_ulong("FAULT_SEED", 0);
	fault_seq = base_seed * 1000003;
	printf("# FAULT_SEED=%llu\n", (unsigned long long)base_seed);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_creation),
		cmocka_unit_test(test_pool_faults),
		cmocka_unit_test(test_zsram_faults),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
