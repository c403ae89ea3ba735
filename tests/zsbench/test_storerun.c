// SPDX-License-Identifier: MIT
/*
 * bench_store_run() with threads, on a plain in-memory store: every
 * operation of every phase runs exactly once and the data comes back; and
 * the threads share the work by speed, not by halves. Of the two threads,
 * the one bench_store_run() creates is made slow (each of its writes and
 * reads spins for SLOW_NS; the caller's thread is worker 0, fast):
 * the fast one must take nearly all the operations, so both finish
 * together. Split into halves, the slow thread would do 50% and the phase
 * would last npages / 2 * SLOW_NS.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "corpus.h"
#include "storerun.h"
#include "timing.h"

#define NPAGES	2048
#define SLOW_NS 200000 /* 0.2 ms: the slow thread's half would take 0.2 s */

struct plain {
	uint8_t *data;
	unsigned *writes, *discards; /* per page; atomic, relaxed */
	void *fast_thread;	     /* the caller's thread; the others are slow */
	uint64_t ops_fast, ops_slow; /* atomic, relaxed: writes and reads */
};

static __thread char thread_tag; /* its address tells threads apart */

/* Counts the operation; spins SLOW_NS unless it runs on the fast thread. */
static void pace(struct plain *p)
{
	if (p->fast_thread == &thread_tag) {
		__atomic_fetch_add(&p->ops_fast, 1, __ATOMIC_RELAXED);
		return;
	}
	__atomic_fetch_add(&p->ops_slow, 1, __ATOMIC_RELAXED);
	for (uint64_t t0 = bench_now_ns(); bench_now_ns() - t0 < SLOW_NS;)
		;
}

static void *plain_create(void *arg, size_t npages, char *err, size_t errlen)
{
	struct plain *p = arg;

	p->data = calloc(npages, BENCH_PAGE_SIZE);
	p->writes = calloc(npages, sizeof(*p->writes));
	p->discards = calloc(npages, sizeof(*p->discards));
	if (!p->data || !p->writes || !p->discards) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	return p;
}

static int plain_write(void *s, size_t index, const void *page)
{
	struct plain *p = s;

	pace(p);
	memcpy(p->data + index * BENCH_PAGE_SIZE, page, BENCH_PAGE_SIZE);
	__atomic_fetch_add(&p->writes[index], 1, __ATOMIC_RELAXED);
	return 0;
}

static int plain_read(void *s, size_t index, void *page)
{
	struct plain *p = s;

	pace(p);
	memcpy(page, p->data + index * BENCH_PAGE_SIZE, BENCH_PAGE_SIZE);
	return 0;
}

static int plain_discard(void *s, size_t index)
{
	struct plain *p = s;

	memset(p->data + index * BENCH_PAGE_SIZE, 0, BENCH_PAGE_SIZE);
	__atomic_fetch_add(&p->discards[index], 1, __ATOMIC_RELAXED);
	return 0;
}

static void plain_memory(void *s, struct bench_mem *m)
{
	(void)s;
	m->payload = m->held = NPAGES * BENCH_PAGE_SIZE;
}

static void plain_destroy(void *s)
{
	(void)s; /* the test reads the counters afterwards, then frees */
}

static const struct bench_store_ops plain_ops = {
	.name = "plain",
	.multithread = 1,
	.create = plain_create,
	.write = plain_write,
	.read = plain_read,
	.discard = plain_discard,
	.memory = plain_memory,
	.destroy = plain_destroy,
};

int main(void)
{
	static struct bench_result res; /* large: not on the stack */
	struct bench_pages ps;
	struct plain p = {.fast_thread = &thread_tag};
	struct bench_run_cfg cfg = {.threads = 2, .free_fraction = 0.5, .seed = 7};
	size_t nfree, *plan;
	uint8_t *freed;
	double share;

	if (bench_pages_init(&ps, "test") || bench_corpus_generate(&ps, NPAGES, 1)) {
		fprintf(stderr, "cannot generate the corpus\n");
		return 1;
	}
	CHECK(bench_store_run(&plain_ops, &p, &ps, &cfg, &res) == 0, "run failed: %s", res.error);
	CHECK(res.ok && res.verified, "ok %d verified %d, %llu mismatches", res.ok, res.verified,
	      (unsigned long long)res.mismatches);
	CHECK(res.op[BENCH_FILL].ops == NPAGES && res.op[BENCH_LOAD].ops == NPAGES - res.freed,
	      "ops: fill %llu, load %llu", (unsigned long long)res.op[BENCH_FILL].ops,
	      (unsigned long long)res.op[BENCH_LOAD].ops);

	/* every page written once; exactly the plan's pages discarded, once */
	plan = bench_free_plan(NPAGES, cfg.free_fraction, cfg.seed, &nfree);
	freed = plan ? bench_free_map(NPAGES, plan, nfree) : NULL;
	CHECK(freed && nfree == res.freed, "free plan of %zu pages, run freed %llu", nfree,
	      (unsigned long long)res.freed);
	for (size_t i = 0; freed && i < NPAGES; i++) {
		CHECK(p.writes[i] == 1, "page %zu written %u times", i, p.writes[i]);
		CHECK(p.discards[i] == freed[i], "page %zu discarded %u times", i, p.discards[i]);
	}

	/* the work went by speed: the slow thread did a few claims at most */
	share = (double)p.ops_slow / (double)(p.ops_fast + p.ops_slow);
	/* the fill's writes, the load's reads, and the untimed reads of the freed pages */
	CHECK(p.ops_fast + p.ops_slow ==
		      res.op[BENCH_FILL].ops + res.op[BENCH_LOAD].ops + res.freed,
	      "%llu + %llu operations paced", (unsigned long long)p.ops_fast,
	      (unsigned long long)p.ops_slow);
	CHECK(share < 0.25, "the slow thread did %.0f%% of the writes and reads", share * 100);
	printf("slow thread: %llu of %llu operations (%.1f%%); fill %.1f ms wall\n",
	       (unsigned long long)p.ops_slow, (unsigned long long)(p.ops_fast + p.ops_slow),
	       share * 100, (double)res.op[BENCH_FILL].wall_ns / 1e6);

	free(plan);
	free(freed);
	free(p.data);
	free(p.writes);
	free(p.discards);
	bench_pages_free(&ps);
	if (failures)
		fprintf(stderr, "%d check(s) failed\n", failures);
	else
		printf("storerun: all checks passed\n");
	return failures ? 1 : 0;
}
