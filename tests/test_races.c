/* SPDX-License-Identifier: MIT */
/*
 * Targeted races, forced deterministically with the race-window hooks of a
 * -Drace_hooks=true build (src/internal.h, race_window()). Each test stops
 * one thread inside a window and runs the racing operation there, so the
 * interleaving the protocol must survive happens on every run. Run under
 * AddressSanitizer (a use-after-free of a zspage descriptor) and
 * ThreadSanitizer (a missing happens-before) by scripts/test.sh.
 */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "internal.h"
#include "common.h"

/* The test's current hook, its pool and thread, and a handshake. */
static struct {
	enum zs_race_point point;
	pthread_t thread;
	bool any_thread;
	int fired; /* atomic */
	void (*action)(void);
	struct zs_pool *pool;
	unsigned long handle;
	sem_t go, done;
} race;

static void hook(enum zs_race_point point, struct zs_pool *pool)
{
	if (point != race.point || pool != race.pool ||
	    (!race.any_thread && !pthread_equal(pthread_self(), race.thread)))
		return;
	if (__atomic_exchange_n(&race.fired, 1, __ATOMIC_ACQ_REL))
		return; /* once */
	race.action();
}

static void arm(enum zs_race_point point, pthread_t thread, void (*action)(void))
{
	race.point = point;
	race.thread = thread;
	race.any_thread = false;
	race.action = action;
	__atomic_store_n(&race.fired, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&zs_race_hook, hook, __ATOMIC_RELEASE);
}

static void disarm(void)
{
	__atomic_store_n(&zs_race_hook, NULL, __ATOMIC_RELEASE);
}

static uint32_t pfn_of(struct zs_pool *pool, unsigned long handle)
{
	uint64_t obj = 0; /* set by the lookup the assertion checks */

	assert_int_equal(handle_lookup(&pool->handles, handle, &obj, NULL), 0);
	return obj_pfn(obj);
}

static void write_obj(struct zs_pool *pool, unsigned long h, size_t len, uint64_t key)
{
	unsigned char buf[4096];
	pattern_fill(buf, len, key);
	assert_int_equal(zs_obj_write(pool, h, buf, len), 0);
}

static int read_ok(struct zs_pool *pool, unsigned long h, size_t len, uint64_t key)
{
	unsigned char local[4096];
	void *p = zs_obj_read_begin(pool, h, len, local);
	int ok = p && pattern_check(p, len, key);
	if (p)
		zs_obj_read_end(pool, h, len, p);
	return ok;
}

/* ------------------------------------------------------------------ */
/* 1. free emptying a zspage while migration looks it up               */

static void free_in_window(void)
{
	zs_free(race.pool, race.handle);
}

static void test_free_during_migration_lookup(void **state)
{
	/* no spare: the last free must tear the zspage down */
	struct zs_pool_config cfg = { .flags = ZS_POOL_NO_SPARE };
	struct zs_pool *pool = zs_create_pool_ex("race-lookup", &cfg);
	unsigned long h = zs_malloc(pool, 100);
	uint32_t pfn = pfn_of(pool, h);

	(void)state;
	race.pool = pool;
	race.handle = h;
	/* migration finds the zspage under RCU; in the window, the last object
	 * is freed, the zspage unpublished and its descriptor queued for RCU.
	 * Migration must then see it dead, not move it, not touch freed
	 * memory. */
	arm(ZS_RACE_MIGRATE_LOOKUP, pthread_self(), free_in_window);
	int err = migrate_page(pool, pfn, pool->arena.nr_chunks);
	disarm();
	assert_int_equal(race.fired, 1);
	assert_int_equal(err, -EAGAIN);
	assert_int_equal(zs_get_total_pages(pool), 0);
	struct zs_pool_stats st;
	zs_pool_stats(pool, &st);
	assert_int_equal(st.objs_used, 0);
	assert_int_equal(st.pages_migrated, 0);
	zs_destroy_pool(pool);
}

/* ------------------------------------------------------------------ */
/* 2. free racing migration of the same page                           */

static void *free_thread(void *arg)
{
	(void)arg;
	sem_wait(&race.go);
	zs_free(race.pool, race.handle); /* looks up obj, then blocks on the class */
	return NULL;
}

/* In the freeing thread: it has read the old obj locklessly. */
static void free_has_stale_obj(void)
{
	sem_post(&race.done);
}

/* In the migrating thread, page copied, obj not yet rewritten, class and
 * zspage locked: start the free and let it read the old obj. */
static void migrate_mid_copy(void)
{
	sem_post(&race.go);
	sem_wait(&race.done);
}

static void *migrate_thread(void *arg)
{
	uint32_t pfn = (uint32_t)(uintptr_t)arg;
	return (void *)(intptr_t)migrate_page(race.pool, pfn, race.pool->arena.nr_chunks);
}

static enum zs_race_point second_point;
static int second_fired;
static void (*second_action)(void);

/* Two hooks at once: the migration's and the free's. Only the migrating
 * thread reaches ZS_RACE_MIGRATE_COPY and only the freeing thread frees
 * while they run, so the points alone tell the threads apart. */
static void hook2(enum zs_race_point point, struct zs_pool *pool)
{
	if (pool == race.pool && point == second_point &&
	    !__atomic_exchange_n(&second_fired, 1, __ATOMIC_ACQ_REL))
		second_action();
	hook(point, pool);
}

static void test_free_racing_migration(void **state)
{
	struct zs_pool *pool = zs_create_pool("race-migrate");
	unsigned long keep[8], h;
	pthread_t mt, ft;
	void *ret;

	(void)state;
	/* objects sharing the page, so the zspage survives the free */
	for (int i = 0; i < 8; i++) {
		keep[i] = zs_malloc(pool, 300);
		write_obj(pool, keep[i], 300, (uint64_t)i);
	}
	h = zs_malloc(pool, 300);
	write_obj(pool, h, 300, 99);
	assert_int_equal(pfn_of(pool, h), pfn_of(pool, keep[0]));

	race.pool = pool;
	race.handle = h;
	sem_init(&race.go, 0, 0);
	sem_init(&race.done, 0, 0);
	second_point = ZS_RACE_FREE_LOOKUP;
	second_fired = 0;
	second_action = free_has_stale_obj;
	arm(ZS_RACE_MIGRATE_COPY, pthread_self(), migrate_mid_copy);
	race.any_thread = true;
	__atomic_store_n(&zs_race_hook, hook2, __ATOMIC_RELEASE);
	pthread_create(&ft, NULL, free_thread, NULL);
	pthread_create(&mt, NULL, migrate_thread, (void *)(uintptr_t)pfn_of(pool, h));
	pthread_join(mt, &ret);
	pthread_join(ft, NULL);
	disarm();
	assert_int_equal(race.fired, 1);
	assert_int_equal(second_fired, 1);
	assert_int_equal((int)(intptr_t)ret, 0);

	/* the free used the rewritten obj: h is gone, nothing else is */
	struct zs_pool_stats st;
	zs_pool_stats(pool, &st);
	assert_int_equal(st.objs_used, 8);
	assert_int_equal(st.pages_migrated, 1);
	assert_int_equal(st.invalid_handles, 0);
	for (int i = 0; i < 8; i++) {
		assert_true(read_ok(pool, keep[i], 300, (uint64_t)i));
		zs_free(pool, keep[i]);
	}
	assert_true(pool_empty_after_trim(pool));
	sem_destroy(&race.go);
	sem_destroy(&race.done);
	zs_destroy_pool(pool);
}

/* ------------------------------------------------------------------ */
/* 3. read racing compaction of the same zspage                        */

static void compact_in_window(void)
{
	assert_true(zs_compact(race.pool) > 0);
}

static void test_read_racing_compaction(void **state)
{
	struct zs_pool *pool = zs_create_pool("race-compact");
	unsigned long *h;
	unsigned objs;
	struct zs_class_stats cs;
	int pos = -1;

	(void)state;
	for (unsigned k = 0; k < zs_class_count(pool); k++) {
		zs_class_stats(pool, k, &cs);
		if (cs.index == zs_lookup_class_index(pool, 108))
			pos = (int)k;
	}
	zs_class_stats(pool, (unsigned)pos, &cs);
	objs = cs.objs_per_zspage;
	h = calloc(2 * objs, sizeof(*h));
	/* zspage A full, then B filled to ~40 % */
	for (unsigned i = 0; i < objs + objs * 4 / 10; i++) {
		h[i] = zs_malloc(pool, 100);
		write_obj(pool, h[i], 100, i);
	}
	/* A down to 3 objects: the emptiest, so compaction moves them to B */
	for (unsigned i = 3; i < objs; i++) {
		zs_free(pool, h[i]);
		h[i] = 0;
	}
	race.pool = pool;
	/* the reader found A under RCU; in the window compaction moves the
	 * object to B and frees A. The reader must notice and follow it. */
	arm(ZS_RACE_READ_LOOKUP, pthread_self(), compact_in_window);
	assert_true(read_ok(pool, h[1], 100, 1));
	disarm();
	assert_int_equal(race.fired, 1);
	assert_int_not_equal(pfn_of(pool, h[1]), 0);
	for (unsigned i = 0; i < objs + objs * 4 / 10; i++) {
		if (!h[i])
			continue;
		assert_true(read_ok(pool, h[i], 100, i));
		zs_free(pool, h[i]);
	}
	assert_true(pool_empty_after_trim(pool));
	free(h);
	zs_destroy_pool(pool);
}

/* ------------------------------------------------------------------ */
/* 4. write racing migration of its page                               */

static void migrate_in_window(void)
{
	assert_int_equal(migrate_page(race.pool, pfn_of(race.pool, race.handle),
				      race.pool->arena.nr_chunks),
			 0);
}

static void test_write_racing_migration(void **state)
{
	struct zs_pool *pool = zs_create_pool("race-write");
	unsigned long h = zs_malloc(pool, 2000);
	uint32_t before = pfn_of(pool, h);

	(void)state;
	write_obj(pool, h, 2000, 1);
	race.pool = pool;
	race.handle = h;
	/* the writer found the zspage; the page moves before it locks it.
	 * The write must land in the new page. */
	arm(ZS_RACE_READ_LOOKUP, pthread_self(), migrate_in_window);
	write_obj(pool, h, 2000, 2);
	disarm();
	assert_int_equal(race.fired, 1);
	assert_int_not_equal(pfn_of(pool, h), before);
	assert_true(read_ok(pool, h, 2000, 2));
	zs_free(pool, h);
	zs_destroy_pool(pool);
}

/* ------------------------------------------------------------------ */
/* 5. read whose zspage dies and whose object comes back to the same   */
/*    place in another zspage (ABA on obj)                             */

static struct {
	unsigned long a[4], d[4], b[4];
	uint32_t pfn_a;
} aba;

/*
 * In the reader's window, after it found zspage A for its object X (index 0
 * of A's only page) and before it locks A: X is compacted into D, A dies and
 * its page goes back to the arena, a new zspage B takes that page, and X is
 * compacted into B's index 0 -- so X's obj is the word the reader read, but
 * the object is in B, not A.
 */
static void aba_in_window(void)
{
	struct zs_pool *pool = race.pool;

	for (int i = 1; i < 4; i++)
		zs_free(pool, aba.a[i]); /* A: X alone */
	zs_free(pool, aba.d[3]);        /* D: three, one free slot */
	assert_int_equal(zs_compact(pool), 1); /* X -> D, A freed */
	for (int i = 0; i < 4; i++) {
		aba.b[i] = zs_malloc(pool, 1000);
		write_obj(pool, aba.b[i], 1000, 100 + (uint64_t)i);
	}
	assert_int_equal(pfn_of(pool, aba.b[0]), aba.pfn_a); /* B took A's page */
	zs_free(pool, aba.b[0]);        /* B: index 0 free */
	for (int i = 0; i < 3; i++)
		zs_free(pool, aba.d[i]); /* D: X alone */
	assert_int_equal(zs_compact(pool), 1); /* X -> B index 0, D freed */
	assert_int_equal(pfn_of(pool, race.handle), aba.pfn_a);
}

static void test_read_aba_same_obj_other_zspage(void **state)
{
	/* no spare: emptied zspages are torn down at once, their page reused */
	struct zs_pool_config cfg = { .flags = ZS_POOL_NO_SPARE };
	struct zs_pool *pool = zs_create_pool_ex("race-aba", &cfg);
	struct zs_class_stats cs;
	struct zspage *b;
	uint64_t obj0, obj1;

	(void)state;
	/* size 1000 is the 1024-byte class: one page, four objects */
	for (unsigned k = 0; k < zs_class_count(pool); k++) {
		zs_class_stats(pool, k, &cs);
		if (cs.index == zs_lookup_class_index(pool, 1000))
			break;
	}
	assert_int_equal(cs.pages_per_zspage, 1);
	assert_int_equal(cs.objs_per_zspage, 4);
	for (int i = 0; i < 4; i++) {
		aba.a[i] = zs_malloc(pool, 1000);
		write_obj(pool, aba.a[i], 1000, (uint64_t)i);
	}
	for (int i = 0; i < 4; i++) {
		aba.d[i] = zs_malloc(pool, 1000);
		write_obj(pool, aba.d[i], 1000, 10 + (uint64_t)i);
	}
	aba.pfn_a = pfn_of(pool, aba.a[0]);
	assert_int_equal(handle_lookup(&pool->handles, aba.a[0], &obj0, NULL), 0);
	race.pool = pool;
	race.handle = aba.a[0];
	arm(ZS_RACE_READ_LOOKUP, pthread_self(), aba_in_window);
	assert_true(read_ok(pool, aba.a[0], 1000, 0));
	disarm();
	assert_int_equal(race.fired, 1);
	assert_int_equal(handle_lookup(&pool->handles, aba.a[0], &obj1, NULL), 0);
	assert_int_equal(obj1, obj0); /* the same word, in another zspage */
	/* the read locked and unlocked B, the zspage that holds X: B's lock is
	 * free again (a reader that locked the dead A would have decremented
	 * B's count to -1, which reads as write-locked, for good) */
	b = pdesc_zspage(&pool->arena, aba.pfn_a);
	assert_non_null(b);
	assert_int_equal(__atomic_load_n(&b->lock, __ATOMIC_ACQUIRE), 0);
	assert_int_equal(zs_compact(pool), 0);
	assert_true(read_ok(pool, aba.b[1], 1000, 101));
	zs_free(pool, aba.a[0]);
	for (int i = 1; i < 4; i++) {
		assert_true(read_ok(pool, aba.b[i], 1000, 100 + (uint64_t)i));
		zs_free(pool, aba.b[i]);
	}
	assert_true(pool_empty_after_trim(pool));
	zs_destroy_pool(pool);
}

/* ------------------------------------------------------------------ */
/* 6. a read and a migration that found a zspage whose descriptor then  */
/*    moves to another slab page (zs_compact's relocation)              */

#define RELOC_OBJS 200
static unsigned long reloc_h[RELOC_OBJS];

/* A pool whose first huge object's descriptor sits alone on its slab page
 * while a fuller page exists: relocation will move it. */
static struct zs_pool *reloc_setup(void)
{
	struct zs_pool_config cfg = { .flags = ZS_POOL_NO_SPARE };
	struct zs_pool *pool = zs_create_pool_ex("race-reloc", &cfg);
	unsigned cap;

	assert_non_null(pool);
	cap = pool->slab.caches[0].capacity;
	assert_true(RELOC_OBJS > 2 * cap);
	/* huge objects: a one-page zspage each, descriptors of the smallest
	 * size, handed out in address order from the first slab page on */
	for (unsigned i = 0; i < RELOC_OBJS; i++) {
		reloc_h[i] = zs_malloc(pool, 4000);
		assert_true(reloc_h[i] != 0);
		write_obj(pool, reloc_h[i], 4000, i);
	}
	for (unsigned i = 1; i < cap; i++) {
		zs_free(pool, reloc_h[i]);
		reloc_h[i] = 0;
	}
	zs_rcu_barrier(); /* their descriptors are back in the slab */
	return pool;
}

static void reloc_teardown(struct zs_pool *pool)
{
	for (unsigned i = 0; i < RELOC_OBJS; i++)
		if (reloc_h[i]) {
			assert_true(read_ok(pool, reloc_h[i], 4000, i));
			zs_free(pool, reloc_h[i]);
		}
	zs_destroy_pool(pool);
}

static struct zspage *reloc_old; /* the descriptor moved in the window */

static void relocate_in_window(void)
{
	struct zs_pool *pool = race.pool;
	uint64_t obj = 0;
	struct size_class *class;
	struct zspage *z;

	assert_int_equal(handle_lookup(&pool->handles, race.handle, &obj, NULL), 0);
	class = pool->size_class[obj_class(obj)];
	zs_mutex_lock(&class->lock);
	z = pdesc_zspage(&pool->arena, obj_pfn(obj));
	reloc_old = zspage_relocate_locked(pool, class, z);
	zs_mutex_unlock(&class->lock);
	/* freed after the grace period, which the racing lookup holds up */
	if (reloc_old)
		zs_rcu_free_zspage(reloc_old);
}

static void test_read_racing_relocation(void **state)
{
	struct zs_pool *pool = reloc_setup();
	struct zspage *before;

	(void)state;
	race.pool = pool;
	race.handle = reloc_h[0];
	before = pdesc_zspage(&pool->arena, pfn_of(pool, reloc_h[0]));
	/* the read finds the zspage under RCU; in the window its descriptor
	 * moves. The read takes the old one's lock, must see that the page
	 * names another zspage now, and look again */
	arm(ZS_RACE_READ_LOOKUP, pthread_self(), relocate_in_window);
	assert_true(read_ok(pool, reloc_h[0], 4000, 0));
	disarm();
	assert_int_equal(race.fired, 1);
	assert_ptr_equal(reloc_old, before);
	assert_ptr_not_equal(pdesc_zspage(&pool->arena, pfn_of(pool, reloc_h[0])), before);
	write_obj(pool, reloc_h[0], 4000, 0);
	reloc_teardown(pool);
}

static void test_migration_racing_relocation(void **state)
{
	struct zs_pool *pool = reloc_setup();
	uint32_t pfn;

	(void)state;
	race.pool = pool;
	race.handle = reloc_h[0];
	pfn = pfn_of(pool, reloc_h[0]);
	/* migration found the zspage under RCU; in the window its descriptor
	 * moves: under the class lock it must see the old one dead and skip */
	arm(ZS_RACE_MIGRATE_LOOKUP, pthread_self(), relocate_in_window);
	int err = migrate_page(pool, pfn, pool->arena.nr_chunks);
	disarm();
	assert_int_equal(race.fired, 1);
	assert_non_null(reloc_old);
	assert_int_equal(err, -EAGAIN);
	assert_int_equal(pfn_of(pool, reloc_h[0]), pfn);
	/* the next migration moves it, through the new descriptor */
	assert_int_equal(migrate_page(pool, pfn, pool->arena.nr_chunks), 0);
	reloc_teardown(pool);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_free_during_migration_lookup),
		cmocka_unit_test(test_free_racing_migration),
		cmocka_unit_test(test_read_racing_compaction),
		cmocka_unit_test(test_write_racing_migration),
		cmocka_unit_test(test_read_aba_same_obj_other_zspage),
		cmocka_unit_test(test_read_racing_relocation),
		cmocka_unit_test(test_migration_racing_relocation),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
