/* SPDX-License-Identifier: MIT */
/*
 * Multi-threaded stress test. Worker threads allocate objects of random
 * sizes (zs_malloc + zs_obj_write, or zs_malloc_write), write a pattern
 * derived from the handle (or a drawn number) and a sequence number,
 * read back and verify, rewrite, and free -- objects allocated by any
 * thread, through zs_free or zs_free_deferred -- while, optionally, one
 * thread runs zs_compact and one runs zs_defrag in a loop. Some reads hold
 * the object open for a while so that compaction and migration meet busy
 * zspages. Every read is verified; at the end the pool's statistics must
 * match a recount of the live objects, and freeing everything must leave
 * the pool empty.
 *
 * Usage: stress [--threads N] [--seconds S | --ops N] [--compact] [--defrag]
 *               [--deferred] [--pool-lock] [--chain N] [--slots N] [--seed N]
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "zsmalloc.h"
#include "common.h"
#ifdef ZS_RACE_HOOKS
#include "internal.h"

/* Race-hook builds: yield at one in four handoff points, widening every
 * race window the protocol has. */
static void yield_hook(enum zs_race_point point, struct zs_pool *p)
{
	static __thread uint64_t s;
	(void)point;
	(void)p;
	if (!s)
		s = (uint64_t)(uintptr_t)&s;
	if (rng_below(&s, 4) == 0)
		sched_yield();
}
#endif

struct entry {
	pthread_mutex_t lock; /* serialises operations on this handle */
	unsigned long handle; /* 0 = empty */
	unsigned long id;     /* what the pattern is keyed on: the handle, or a
				 number drawn before zs_malloc_write made one */
	unsigned len;
	uint64_t seq;
};

static struct {
	unsigned threads, chain, slots;
	double seconds;
	unsigned long ops;
	bool compact, defrag, deferred, pool_lock;
	uint64_t seed;
} opt = { .threads = 4, .chain = 8, .slots = 1 << 15, .seconds = 0, .ops = 100000,
	  .seed = 1 };

static struct zs_pool *pool;
static struct entry *entries;
static int stop;                 /* atomic: set when workers are done */
static unsigned long failures;   /* atomic */
static unsigned long compactions, pages_compacted, defrags, pages_migrated; /* helper threads */

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t key_of(unsigned long id, uint64_t seq)
{
	return id * 0x9e3779b97f4a7c15ull + seq;
}

/* Sizes like compressed pages: mostly 200..3000, some tiny, some huge. */
static unsigned random_len(uint64_t *s)
{
	unsigned r = rng_below(s, 100);
	if (r < 10)
		return 1 + rng_below(s, 64);
	if (r < 85)
		return 200 + rng_below(s, 2800);
	return 3000 + rng_below(s, 1097);
}

static void report(const char *what, unsigned long h, unsigned len)
{
	__atomic_fetch_add(&failures, 1, __ATOMIC_RELAXED);
	fprintf(stderr, "stress: %s: handle 0x%lx len %u\n", what, h, len);
}

static void verify(struct entry *e, bool slow)
{
	unsigned char local[4096];
	void *p = zs_obj_read_begin(pool, e->handle, e->len, local);

	if (!p) {
		report("read_begin failed", e->handle, e->len);
		return;
	}
	if (slow)
		sched_yield(); /* hold the zspage read-locked a while */
	if (!pattern_check(p, e->len, key_of(e->id, e->seq)))
		report("content mismatch", e->handle, e->len);
	zs_obj_read_end(pool, e->handle, e->len, p);
}

static void put(struct entry *e)
{
	unsigned char buf[4096];

	pattern_fill(buf, e->len, key_of(e->id, e->seq));
	if (zs_obj_write(pool, e->handle, buf, e->len))
		report("write failed", e->handle, e->len);
}

static void *worker(void *arg)
{
	uint64_t s = opt.seed * 1000003 + (uintptr_t)arg;
	unsigned long n = 0;
	double end = opt.seconds > 0 ? now() + opt.seconds : 0;

	for (;; n++) {
		if (end ? (n % 256 == 0 && now() > end) : n >= opt.ops)
			break;
		struct entry *e = &entries[rng_below(&s, opt.slots)];
		unsigned r = rng_below(&s, 100);

		pthread_mutex_lock(&e->lock);
		if (!e->handle && (r & 1)) {
			/* filled under the class lock, where migration and
			 * compaction of its page wait (TSan sees a copy that
			 * escaped it race with their page copy) */
			unsigned char buf[4096];

			e->len = random_len(&s);
			e->id = rng_below(&s, 1u << 31) | (1ul << 40);
			e->seq = 0;
			pattern_fill(buf, e->len, key_of(e->id, e->seq));
			e->handle = zs_malloc_write(pool, buf, e->len);
			if (!e->handle)
				report("zs_malloc_write failed", 0, e->len);
		} else if (!e->handle) {
			e->len = random_len(&s);
			e->handle = zs_malloc(pool, e->len);
			if (!e->handle) {
				report("zs_malloc failed", 0, e->len);
			} else {
				e->id = e->handle;
				e->seq = 0;
				put(e);
			}
		} else if (r < 45) {
			verify(e, r < 2);
		} else if (r < 60) {
			e->seq++;
			put(e);
			verify(e, false);
		} else {
			verify(e, false);
			if (opt.deferred && (r & 1))
				zs_free_deferred(pool, e->handle);
			else
				zs_free(pool, e->handle);
			e->handle = 0;
		}
		pthread_mutex_unlock(&e->lock);
	}
	return NULL;
}

static void *compactor(void *arg)
{
	(void)arg;
	while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
		unsigned long f = zs_compact(pool);
		compactions++;
		pages_compacted += f;
		sched_yield();
	}
	return NULL;
}

static void *defragger(void *arg)
{
	(void)arg;
	while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
		pages_migrated += zs_defrag(pool);
		defrags++;
		sched_yield();
	}
	return NULL;
}

static void parse(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "threads", required_argument, NULL, 't' }, { "seconds", required_argument, NULL, 's' },
		{ "ops", required_argument, NULL, 'o' },     { "compact", no_argument, NULL, 'c' },
		{ "defrag", no_argument, NULL, 'd' },        { "deferred", no_argument, NULL, 'f' },
		{ "pool-lock", no_argument, NULL, 'p' },     { "chain", required_argument, NULL, 'n' },
		{ "slots", required_argument, NULL, 'l' },   { "seed", required_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 't': opt.threads = (unsigned)atoi(optarg); break;
		case 's': opt.seconds = atof(optarg); break;
		case 'o': opt.ops = strtoul(optarg, NULL, 0); break;
		case 'c': opt.compact = true; break;
		case 'd': opt.defrag = true; break;
		case 'f': opt.deferred = true; break;
		case 'p': opt.pool_lock = true; break;
		case 'n': opt.chain = (unsigned)atoi(optarg); break;
		case 'l': opt.slots = (unsigned)atoi(optarg); break;
		case 'r': opt.seed = strtoull(optarg, NULL, 0); break;
		default: exit(2);
		}
	}
	/* environment overrides for long runs: STRESS_SECONDS, STRESS_THREADS */
	opt.seconds = (double)env_ulong("STRESS_SECONDS", (unsigned long)opt.seconds);
	opt.threads = (unsigned)env_ulong("STRESS_THREADS", opt.threads);
}

int main(int argc, char **argv)
{
	struct zs_pool_config cfg = { 0 };
	pthread_t *workers, comp, defr;
	struct zs_pool_stats st;
	unsigned long live = 0;
	double t0;

	parse(argc, argv);
	cfg.chain_size = opt.chain;
	cfg.flags = opt.pool_lock ? ZS_POOL_FREE_POOL_LOCK : 0;
	cfg.deferred_buffer_size = 64; /* small: many handoffs */
	pool = zs_create_pool_ex("stress", &cfg);
	entries = calloc(opt.slots, sizeof(*entries));
	workers = calloc(opt.threads, sizeof(*workers));
	if (!pool || !entries || !workers)
		return 1;
	for (unsigned i = 0; i < opt.slots; i++)
		pthread_mutex_init(&entries[i].lock, NULL);

#ifdef ZS_RACE_HOOKS
	__atomic_store_n(&zs_race_hook, yield_hook, __ATOMIC_RELEASE);
#endif
	t0 = now();
	for (unsigned i = 0; i < opt.threads; i++)
		pthread_create(&workers[i], NULL, worker, (void *)(uintptr_t)i);
	if (opt.compact)
		pthread_create(&comp, NULL, compactor, NULL);
	if (opt.defrag)
		pthread_create(&defr, NULL, defragger, NULL);
	for (unsigned i = 0; i < opt.threads; i++)
		pthread_join(workers[i], NULL);
	__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
	if (opt.compact)
		pthread_join(comp, NULL);
	if (opt.defrag)
		pthread_join(defr, NULL);

	/* recount against the pool's own figures */
	zs_free_deferred_flush(pool);
	for (unsigned i = 0; i < opt.slots; i++) {
		if (entries[i].handle) {
			verify(&entries[i], false);
			live++;
		}
	}
	zs_pool_stats(pool, &st);
	if (st.objs_used != live) {
		fprintf(stderr, "stress: objs_used %lu, live %lu\n", st.objs_used, live);
		failures++;
	}
	if (st.invalid_handles) {
		fprintf(stderr, "stress: %lu invalid handles\n", st.invalid_handles);
		failures++;
	}
	if (st.objs_allocated < st.objs_used || (live && !zs_get_total_pages(pool))) {
		fprintf(stderr, "stress: inconsistent objs_allocated/pages\n");
		failures++;
	}
	/* the per-class counters (class locks) against the pool's (atomics):
	 * quiescent now, so they must agree exactly */
	{
		unsigned long used = 0, alloc = 0, pages = 0;
		struct zs_class_stats cs;

		for (unsigned k = 0; k < zs_class_count(pool); k++) {
			if (zs_class_stats(pool, k, &cs))
				continue;
			used += cs.obj_used;
			alloc += cs.obj_allocated;
			pages += cs.pages_used;
			if (cs.obj_allocated !=
			    cs.pages_used / cs.pages_per_zspage * cs.objs_per_zspage) {
				fprintf(stderr, "stress: class %u: %lu objects in %lu pages\n",
					cs.index, cs.obj_allocated, cs.pages_used);
				failures++;
			}
		}
		if (used != live || alloc != st.objs_allocated || pages != zs_get_total_pages(pool)) {
			fprintf(stderr,
				"stress: classes hold %lu/%lu objects in %lu pages; pool: %lu/%lu "
				"in %lu\n",
				used, alloc, pages, live, st.objs_allocated, zs_get_total_pages(pool));
			failures++;
		}
	}
	if (opt.deferred && st.deferred_drained != st.deferred_queued) {
		fprintf(stderr, "stress: deferred: %lu queued, %lu drained after a flush\n",
			st.deferred_queued, st.deferred_drained);
		failures++;
	}
	/* the movers must have moved something, or the run tested little */
	if ((opt.compact && !pages_compacted) || (opt.defrag && !pages_migrated)) {
		fprintf(stderr, "stress: compaction freed %lu pages, defrag moved %lu: no work\n",
			pages_compacted, pages_migrated);
		failures++;
	}
	printf("stress: %u threads, %.1f s, %lu live, %lu pages, %lu compactions "
	       "(%lu pages), %lu defrags (%lu pages migrated), deferred %lu/%lu sync %lu\n",
	       opt.threads, now() - t0, live, zs_get_total_pages(pool), compactions,
	       pages_compacted, defrags, pages_migrated, st.deferred_drained, st.deferred_queued,
	       st.deferred_sync);

	for (unsigned i = 0; i < opt.slots; i++)
		if (entries[i].handle)
			zs_free(pool, entries[i].handle);
	zs_pool_stats(pool, &st);
	if (!pool_empty_after_trim(pool)) {
		fprintf(stderr, "stress: not empty after freeing all: %lu objs, %lu pages\n",
			st.objs_used, zs_get_total_pages(pool));
		failures++;
	}
	zs_destroy_pool(pool);
	for (unsigned i = 0; i < opt.slots; i++)
		pthread_mutex_destroy(&entries[i].lock);
	free(entries);
	free(workers);
	if (failures) {
		fprintf(stderr, "stress: %lu failures\n", failures);
		return 1;
	}
	return 0;
}
