/* SPDX-License-Identifier: MIT */
/*
 * The slab of zspage descriptors (src/slab.c): pages go back to the OS when
 * their descriptors are freed, zs_compact() moves descriptors out of sparse
 * pages without losing an object, a pool that empties returns to within
 * 1 MiB of the RSS it started with, and a failed slab mapping is a clean
 * ENOMEM.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "internal.h"
#include "common.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZED 1
#endif
#endif

/* Anonymous resident bytes: statm's resident minus its shared (file) pages. */
static size_t rss_anon(void)
{
	long size = 0, resident = 0, shared = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (!f)
		return 0;
	if (fscanf(f, "%ld %ld %ld", &size, &resident, &shared) != 3)
		resident = shared = 0;
	fclose(f);
	return (size_t)(resident - shared) * (size_t)sysconf(_SC_PAGESIZE);
}

/* Every descriptor freed: no page but the spare stays, none after a trim. */
static void test_pages_return(void **state)
{
	enum { N = 6000 };
	static void *obj[N];
	struct zs_slab s;

	(void)state;
	assert_int_equal(slab_init(&s, 1 << 16), 0);
	for (int round = 0; round < 2; round++) {
		for (unsigned i = 0; i < N; i++) {
			unsigned n = 1 + i % ZS_MAX_CHAIN;

			obj[i] = slab_alloc(&s, n);
			assert_non_null(obj[i]);
			/* all of it is ours: a neighbour's marks would show below */
			memset(obj[i], (int)(i & 0xff), slab_object_size(n));
		}
		for (unsigned i = 0; i < N; i++) {
			unsigned char *p = obj[i];
			size_t len = slab_object_size(1 + i % ZS_MAX_CHAIN);

			for (size_t b = 0; b < len; b++)
				assert_int_equal(p[b], i & 0xff);
		}
		/* ~6000 descriptors of 48..104 bytes: some 110 pages */
		assert_true(slab_resident_pages(&s) >= N * 48 / ZS_PAGE_SIZE);
		assert_true(slab_resident_pages(&s) <= N * 104 / (ZS_PAGE_SIZE - 64) + SLAB_CACHES);
		for (unsigned i = 0; i < N; i++)
			slab_free(obj[(i * 7919u) % N]); /* in scattered order */
		assert_true(slab_resident_pages(&s) <= 1); /* the spare */
		slab_trim(&s);
		assert_int_equal(slab_resident_pages(&s), 0);
		/* the map's words of what was used, at most */
		assert_true(slab_bytes(&s) <= ZS_PAGE_SIZE);
	}
	slab_destroy(&s);
}

/* A descriptor on a sparse page moves to a fuller one, and the sparse page
 * goes back once its last descriptor does. */
static void test_denser(void **state)
{
	enum { N = 300 };
	void *obj[N], *moved;
	struct zs_slab s;
	unsigned keep, cap;

	(void)state;
	assert_int_equal(slab_init(&s, 1 << 12), 0);
	cap = s.caches[0].capacity;
	assert_true(N > 2 * cap && N < 4 * cap);
	for (unsigned i = 0; i < N; i++)
		assert_non_null(obj[i] = slab_alloc(&s, 1));
	unsigned long pages = slab_resident_pages(&s);
	/* pages fill lowest first: the last page is partly full; empty the
	 * first page but one descriptor, which then sits on a sparse page */
	for (unsigned i = 1; i < cap; i++)
		slab_free(obj[i]);
	keep = 0;
	assert_null(slab_alloc_denser(&s, obj[N - 1])); /* a fuller page: stays */
	moved = slab_alloc_denser(&s, obj[keep]);
	assert_non_null(moved);
	assert_true(((uintptr_t)moved & ~(uintptr_t)(ZS_PAGE_SIZE - 1)) !=
		    ((uintptr_t)obj[keep] & ~(uintptr_t)(ZS_PAGE_SIZE - 1)));
	slab_free(obj[keep]);
	/* the first page is the spare now; the trim gives it back */
	slab_trim(&s);
	assert_int_equal(slab_resident_pages(&s), pages - 1);
	slab_free(moved);
	for (unsigned i = cap; i < N; i++)
		slab_free(obj[i]);
	slab_trim(&s);
	assert_int_equal(slab_resident_pages(&s), 0);
	slab_destroy(&s);
}

/* Threads allocating and freeing at once, and freeing each other's. */
#define T_THREADS 4
#define T_ROUNDS  200
#define T_BATCH   300
static struct zs_slab tslab;
static void *handoff[T_THREADS][T_BATCH];

static void *slab_thread(void *arg)
{
	unsigned t = (unsigned)(uintptr_t)arg;
	uint64_t seed = t + 1;
	void *mine[T_BATCH];

	for (unsigned r = 0; r < T_ROUNDS; r++) {
		for (unsigned i = 0; i < T_BATCH; i++) {
			unsigned n = 1 + rng_below(&seed, ZS_MAX_CHAIN);

			mine[i] = slab_alloc(&tslab, n);
			assert_non_null(mine[i]);
			memset(mine[i], (int)t, slab_object_size(n));
		}
		for (unsigned i = 0; i < T_BATCH; i++) {
			/* half go to the next thread's handoff, whose previous
			 * contents we free: a descriptor freed by another thread,
			 * as the RCU callback thread does */
			if (i % 2) {
				void *old = __atomic_exchange_n(&handoff[(t + 1) % T_THREADS][i],
								mine[i], __ATOMIC_ACQ_REL);
				if (old)
					slab_free(old);
			} else {
				slab_free(mine[i]);
			}
		}
	}
	return NULL;
}

static void test_threads(void **state)
{
	pthread_t th[T_THREADS];

	(void)state;
	assert_int_equal(slab_init(&tslab, 1 << 16), 0);
	for (unsigned t = 0; t < T_THREADS; t++)
		assert_int_equal(pthread_create(&th[t], NULL, slab_thread, (void *)(uintptr_t)t), 0);
	for (unsigned t = 0; t < T_THREADS; t++)
		pthread_join(th[t], NULL);
	for (unsigned t = 0; t < T_THREADS; t++)
		for (unsigned i = 0; i < T_BATCH; i++)
			if (handoff[t][i])
				slab_free(handoff[t][i]);
	slab_trim(&tslab);
	assert_int_equal(slab_resident_pages(&tslab), 0);
	slab_destroy(&tslab);
}

static void fill(struct zs_pool *pool, unsigned long *h, unsigned *len, size_t n, uint64_t seed)
{
	unsigned char buf[4096];

	for (size_t i = 0; i < n; i++) {
		len[i] = page_like_len(&seed);
		pattern_fill(buf, len[i], i);
		h[i] = zs_malloc_write(pool, buf, len[i]);
		assert_true(h[i] != 0);
	}
}

static void verify(struct zs_pool *pool, unsigned long *h, unsigned *len, size_t n)
{
	unsigned char local[4096];

	for (size_t i = 0; i < n; i++) {
		if (!h[i])
			continue;
		void *p = zs_obj_read_begin(pool, h[i], len[i], local);
		assert_non_null(p);
		if (!pattern_check(p, len[i], i))
			fail_msg("object %zu (len %u) corrupt", i, len[i]);
		zs_obj_read_end(pool, h[i], len[i], p);
	}
}

/* Half freed at random, then zs_compact: the surviving descriptors move to
 * fewer slab pages and every object reads back; all freed: no slab page. */
static void test_pool_relocation(void **state)
{
	enum { N = 30000 };
	unsigned long *h = calloc(N, sizeof(*h));
	unsigned *len = calloc(N, sizeof(*len));
	struct zs_pool *pool = zs_create_pool("slab");
	uint64_t seed = 7;
	unsigned long before, after;

	(void)state;
	assert_non_null(h);
	assert_non_null(len);
	assert_non_null(pool);
	fill(pool, h, len, N, 42);
	for (size_t i = 0; i < N; i++)
		if (rng_below(&seed, 2)) {
			zs_free(pool, h[i]);
			h[i] = 0;
		}
	zs_rcu_barrier(); /* the freed descriptors are back in the slab */
	before = slab_resident_pages(&pool->slab);
	zs_compact(pool);
	after = slab_resident_pages(&pool->slab);
	print_message("slab pages: %lu after freeing half, %lu after zs_compact\n", before, after);
	/* with half the zspages left and their descriptors packed, the slab
	 * is well under what it was (about 0.6 of it in practice) */
	assert_true(after * 4 < before * 3);
	verify(pool, h, len, N);
	for (size_t i = 0; i < N; i++)
		if (h[i])
			zs_free(pool, h[i]);
	zs_pool_trim(pool); /* waits for RCU, releases the spares */
	zs_rcu_barrier();
	slab_trim(&pool->slab);
	assert_int_equal(zs_get_total_pages(pool), 0);
	assert_int_equal(slab_resident_pages(&pool->slab), 0);
	zs_destroy_pool(pool);
	free(h);
	free(len);
}

/* A pool that fills to ~48 MiB and empties again is, 1 s later, back within
 * 256 KiB of the RSS it started with (issue 17 asks for 1 MiB on real data,
 * where it was +1.80 MiB): no descriptor memory left behind in the heap.
 * Here that was +0.46 MiB with malloc'd descriptors, +0.01-0.07 now. */
static void test_free_all_rss(void **state)
{
	enum { N = 30000 };
	struct zs_pool_config cfg = { .decay_ms = 200 };
	struct zs_pool *pool;
	size_t rss0, rss_full, rss1;

	(void)state;
#ifdef SANITIZED
	skip(); /* shadow memory and the quarantine keep what we free */
#endif
	unsigned long *h = calloc(N, sizeof(*h));
	unsigned *len = calloc(N, sizeof(*len));
	assert_non_null(h);
	assert_non_null(len);
	memset(h, 0xff, N * sizeof(*h)); /* resident before the start figure */
	memset(len, 0, N * sizeof(*len));
	pool = zs_create_pool_ex("rss", &cfg);
	assert_non_null(pool);
	rss0 = rss_anon();
	fill(pool, h, len, N, 43);
	rss_full = rss_anon();
	for (size_t i = 0; i < N; i++)
		zs_free(pool, h[i]);
	/* 1 s idle: the arena's decay (200 ms) releases what the pool keeps
	 * (spare zspages, cached pages, the slab's spare page); a loaded
	 * machine gets up to 3 s */
	usleep(1000 * 1000);
	for (int i = 0; i < 10 && (zs_get_total_pages(pool) || rss_anon() > rss0 + (256u << 10)); i++)
		usleep(200 * 1000);
	rss1 = rss_anon();
	print_message("RSS %+.2f MiB full, %+.2f MiB after freeing all\n",
		      ((double)rss_full - (double)rss0) / 1048576.0,
		      ((double)rss1 - (double)rss0) / 1048576.0);
	assert_true(rss_full > rss0 + (20u << 20));
	assert_int_equal(zs_get_total_pages(pool), 0);
	assert_true(rss1 < rss0 + (256u << 10));
	zs_destroy_pool(pool);
	free(h);
	free(len);
}

#ifdef ZS_RACE_HOOKS
static unsigned map_calls, fail_at; /* atomic, relaxed */

static bool fail_nth_map(enum zs_fault_point point)
{
	return point == ZS_FAULT_MAP &&
	       __atomic_add_fetch(&map_calls, 1, __ATOMIC_RELAXED) == fail_at;
}

static void hook_set(bool (*fn)(enum zs_fault_point))
{
	__atomic_store_n(&zs_fault_hook, fn, __ATOMIC_RELEASE);
}

/* The slab's mapping fails: NULL, nothing changed, the next one works. */
static void test_slab_map_fault(void **state)
{
	struct zs_slab s;
	void *obj;

	(void)state;
	assert_int_equal(slab_init(&s, 1 << 10), 0);
	map_calls = 0;
	fail_at = 1;
	hook_set(fail_nth_map);
	assert_null(slab_alloc(&s, 4)); /* the first page needs a commit */
	hook_set(NULL);
	assert_int_equal(slab_resident_pages(&s), 0);
	assert_non_null(obj = slab_alloc(&s, 4));
	slab_free(obj);
	slab_trim(&s);
	slab_destroy(&s);
}

/* Each mapping a pool's first allocation makes (handle table, slab, arena)
 * fails in turn: zs_malloc is ENOMEM with nothing allocated, and the same
 * allocation works once the mapping does. */
static void test_pool_map_fault(void **state)
{
	unsigned char buf[512], local[512];
	unsigned failures = 0, slab_failures = 0;

	(void)state;
	pattern_fill(buf, sizeof(buf), 1);
	for (unsigned n = 1; n < 16; n++) {
		struct zs_pool *pool = zs_create_pool("slab-fault");
		unsigned long h;

		assert_non_null(pool);
		map_calls = 0;
		fail_at = n;
		hook_set(fail_nth_map);
		errno = 0;
		h = zs_malloc_write(pool, buf, sizeof(buf));
		hook_set(NULL);
		if (!h) {
			failures++;
			assert_int_equal(errno, ENOMEM);
			assert_int_equal(zs_get_total_pages(pool), 0);
			/* the handle table's mapping worked, the slab's did not */
			if (pool->handles.nr_committed && !pool->slab.nr_committed)
				slab_failures++;
			assert_non_null(h = zs_malloc_write(pool, buf, sizeof(buf)));
		}
		void *p = zs_obj_read_begin(pool, h, sizeof(buf), local);
		assert_true(pattern_check(p, sizeof(buf), 1));
		zs_obj_read_end(pool, h, sizeof(buf), p);
		zs_free(pool, h);
		zs_destroy_pool(pool);
		if (__atomic_load_n(&map_calls, __ATOMIC_RELAXED) < n)
			break; /* fewer mappings than n: every one has failed once */
	}
	assert_true(failures >= 2);
	assert_int_equal(slab_failures, 1);
}
#endif

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pages_return),
		cmocka_unit_test(test_denser),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_pool_relocation),
		cmocka_unit_test(test_free_all_rss),
#ifdef ZS_RACE_HOOKS
		cmocka_unit_test(test_slab_map_fault),
		cmocka_unit_test(test_pool_map_fault),
#endif
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
