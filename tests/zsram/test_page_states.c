/* SPDX-License-Identifier: MIT */
/*
 * zsram_page_states: the states of each kind of page, the argument checks,
 * and a threaded run in which a page known to hold data is never reported
 * empty while writes of it race the query (what the nbdkit plugin relies on
 * to never report a hole over data).
 *
 * Threaded run: writer threads own disjoint sets of pages and overwrite
 * them (text, huge, same-filled non-zero, zero pages; whole-page writes and
 * partial pwrites) and sometimes discard them; checker threads query the
 * whole disk over and over. Per page, the writer publishes:
 *
 *   written[i] = 1  (release) after a write of page i returned
 *   written[i] = 0  (relaxed), then disc[i]++ (release), before a discard
 *
 * A checker loads d1 = disc[i], then w = written[i] (both acquire), then
 * queries, then d2 = disc[i]. When w == 1 and d1 == d2, a write completed
 * before the query and no discard can have emptied the page before the
 * query read it: a discard that did would have incremented disc[i] before
 * its slot unlock, which the query's acquire load read, so d2 would see it.
 * The query must then say ZERO or DATA, never EMPTY.
 *
 *   test_zsram_page_states [--threads N] [--seconds S] [--pages N]
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "zsram.h"
#include "zsram_internal.h"
#include "zsram_test.h"

static unsigned failures;

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
			__atomic_fetch_add(&failures, 1, __ATOMIC_RELAXED);                        \
		}                                                                                  \
	} while (0)

static struct {
	unsigned threads, seconds, pages;
} opt = {.threads = 2, .seconds = 2, .pages = 512};

/* ------------------------------------------------------------------ */
/* Single-threaded checks                                              */

static uint8_t state_of(struct zsram *zr, uint64_t i)
{
	uint8_t st = 0xff;

	CHECK(zsram_page_states(zr, i, 1, &st) == 0);
	return st;
}

static void test_kinds(void)
{
	struct zsram_config cfg = {.disksize = 16 * PAGE};
	struct zsram *zr = zsram_create(&cfg);
	unsigned char page[PAGE];
	uint8_t st[16];

	CHECK(zr != NULL);
	if (!zr)
		return;
	CHECK(zsram_page_states(zr, 0, 16, st) == 0);
	for (int i = 0; i < 16; i++)
		CHECK(st[i] == ZSRAM_PAGE_EMPTY);

	zt_fill(page, PAGE, ZT_TEXT, 1);
	CHECK(zsram_write_page(zr, 1, page) == 0);
	zt_fill(page, PAGE, ZT_RANDOM, 2); /* huge */
	CHECK(zsram_write_page(zr, 2, page) == 0);
	memset(page, 0, PAGE);
	CHECK(zsram_write_page(zr, 3, page) == 0);
	memset(page, 0x5a, PAGE); /* same-filled, not zero */
	CHECK(zsram_write_page(zr, 4, page) == 0);
	CHECK(zsram_pwrite(zr, "x", 1, 5 * PAGE + 100) == 1); /* partial into empty */
	memset(page, 0, PAGE);
	CHECK(zsram_pwrite(zr, page, 10, 6 * PAGE) == 10); /* zeros into empty: zero page */

	CHECK(zsram_page_states(zr, 0, 16, st) == 0);
	CHECK(st[0] == ZSRAM_PAGE_EMPTY);
	CHECK(st[1] == ZSRAM_PAGE_DATA);
	CHECK(st[2] == ZSRAM_PAGE_DATA);
	CHECK(st[3] == ZSRAM_PAGE_ZERO);
	CHECK(st[4] == ZSRAM_PAGE_DATA);
	CHECK(st[5] == ZSRAM_PAGE_DATA);
	CHECK(st[6] == ZSRAM_PAGE_ZERO);
	CHECK(st[7] == ZSRAM_PAGE_EMPTY);

	CHECK(zsram_discard(zr, 1, 4) == 0);
	for (int i = 1; i < 5; i++)
		CHECK(state_of(zr, (uint64_t)i) == ZSRAM_PAGE_EMPTY);
	CHECK(state_of(zr, 5) == ZSRAM_PAGE_DATA);

	/* a query past the end or without a buffer changes nothing */
	CHECK(zsram_page_states(zr, 16, 1, st) == -ERANGE);
	CHECK(zsram_page_states(zr, 15, 2, st) == -ERANGE);
	CHECK(zsram_page_states(zr, 0, UINT64_MAX, st) == -ERANGE);
	CHECK(zsram_page_states(zr, 0, 1, NULL) == -EINVAL);
	CHECK(zsram_page_states(NULL, 0, 1, st) == -EINVAL);
	CHECK(zsram_page_states(zr, 15, 0, NULL) == 0);
	CHECK(zsram_page_states(zr, 15, 1, st) == 0 && st[0] == ZSRAM_PAGE_EMPTY);
	CHECK(zsram_is_valid(zr));
	zsram_destroy(zr);
}

/* ------------------------------------------------------------------ */
/* Writes racing queries                                               */

static struct zsram *zr;
static uint64_t *written; /* per page: 1 after a write returned; see the file comment */
static uint64_t *disc;	  /* per page: discards started */
static int stop;	  /* release/acquire: the run is over */
static uint64_t checked, writes, discards; /* atomic, relaxed: counts for the report */

struct writer_arg {
	unsigned id;
};

static void *writer_main(void *p)
{
	struct writer_arg *a = p;
	uint64_t s = 0x1234 + a->id;
	unsigned char page[PAGE];

	while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
		/* pages i with i % threads == id are this writer's */
		uint64_t i = zt_below(&s, opt.pages / opt.threads) * opt.threads + a->id;
		unsigned op = zt_below(&s, 10);

		if (i >= opt.pages)
			continue;
		if (op == 0) {
			__atomic_store_n(&written[i], 0, __ATOMIC_RELAXED);
			/* release: a checker that sees the page empty through
			 * the discard's slot unlock sees this increment too */
			__atomic_fetch_add(&disc[i], 1, __ATOMIC_RELEASE);
			CHECK(zsram_discard(zr, i, 1) == 0);
			__atomic_fetch_add(&discards, 1, __ATOMIC_RELAXED);
			continue;
		}
		if (op <= 3) {
			zt_fill(page, PAGE, ZT_TEXT, zt_rng(&s));
		} else if (op == 4) {
			zt_fill(page, PAGE, ZT_RANDOM, zt_rng(&s));
		} else if (op == 5) {
			zt_fill(page, PAGE, ZT_SAME, zt_rng(&s));
		} else if (op == 6) {
			memset(page, 0, PAGE);
		}
		if (op <= 6) {
			CHECK(zsram_write_page(zr, i, page) == 0);
		} else {
			/* a partial write: read-modify-write under the slot lock */
			size_t off = zt_below(&s, PAGE - 64), len = 1 + zt_below(&s, 64);

			zt_fill(page, len, ZT_TEXT, zt_rng(&s));
			CHECK(zsram_pwrite(zr, page, len, i * PAGE + off) == (ssize_t)len);
		}
		/* release: pairs with the checker's acquire of written[i] */
		__atomic_store_n(&written[i], 1, __ATOMIC_RELEASE);
		__atomic_fetch_add(&writes, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

static void *checker_main(void *p)
{
	uint64_t *d1 = calloc(opt.pages, sizeof(*d1));
	uint8_t *w = calloc(opt.pages, 1), *st = calloc(opt.pages, 1);

	(void)p;
	if (!d1 || !w || !st) {
		CHECK(!"out of memory");
		goto out;
	}
	while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
		for (unsigned i = 0; i < opt.pages; i++) {
			/* acquire: pairs with the writer's release increments */
			d1[i] = __atomic_load_n(&disc[i], __ATOMIC_ACQUIRE);
			w[i] = (uint8_t)__atomic_load_n(&written[i], __ATOMIC_ACQUIRE);
		}
		CHECK(zsram_page_states(zr, 0, opt.pages, st) == 0);
		for (unsigned i = 0; i < opt.pages; i++) {
			if (!w[i] || __atomic_load_n(&disc[i], __ATOMIC_ACQUIRE) != d1[i])
				continue;
			if (st[i] == ZSRAM_PAGE_EMPTY) {
				fprintf(stderr, "page %u: written, not discarded, reported empty\n",
					i);
				CHECK(st[i] != ZSRAM_PAGE_EMPTY);
			}
			CHECK(st[i] == ZSRAM_PAGE_ZERO || st[i] == ZSRAM_PAGE_DATA);
			__atomic_fetch_add(&checked, 1, __ATOMIC_RELAXED);
		}
	}
out:
	free(d1);
	free(w);
	free(st);
	return NULL;
}

static void test_race(void)
{
	struct zsram_config cfg = {.disksize = (uint64_t)opt.pages * PAGE};
	unsigned nw = opt.threads, nc = opt.threads > 1 ? opt.threads / 2 : 1;
	pthread_t *th = calloc(nw + nc, sizeof(*th));
	struct writer_arg *wa = calloc(nw, sizeof(*wa));
	struct timespec ts = {.tv_sec = opt.seconds};

	zr = zsram_create(&cfg);
	written = calloc(opt.pages, sizeof(*written));
	disc = calloc(opt.pages, sizeof(*disc));
	CHECK(zr && th && wa && written && disc);
	if (!zr || !th || !wa || !written || !disc)
		return;
	for (unsigned t = 0; t < nw; t++) {
		wa[t].id = t;
		CHECK(pthread_create(&th[t], NULL, writer_main, &wa[t]) == 0);
	}
	for (unsigned t = 0; t < nc; t++)
		CHECK(pthread_create(&th[nw + t], NULL, checker_main, NULL) == 0);
	nanosleep(&ts, NULL);
	__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
	for (unsigned t = 0; t < nw + nc; t++)
		pthread_join(th[t], NULL);
	printf("page states: %lu writes, %lu discards, %lu written pages checked\n",
	       (unsigned long)writes, (unsigned long)discards, (unsigned long)checked);
	CHECK(checked > 0);
	CHECK(zsram_is_valid(zr));
	zsram_destroy(zr);
	free(th);
	free(wa);
	free(written);
	free(disc);
}

int main(int argc, char **argv)
{
	for (int i = 1; i + 1 < argc; i += 2) {
		unsigned v = (unsigned)strtoul(argv[i + 1], NULL, 0);

		if (!strcmp(argv[i], "--threads") && v)
			opt.threads = v;
		else if (!strcmp(argv[i], "--seconds"))
			opt.seconds = v;
		else if (!strcmp(argv[i], "--pages") && v)
			opt.pages = v;
		else {
			fprintf(stderr, "usage: %s [--threads N] [--seconds S] [--pages N]\n",
				argv[0]);
			return 2;
		}
	}
	if (opt.pages < opt.threads)
		opt.pages = opt.threads;
	test_kinds();
	test_race();
	if (failures)
		fprintf(stderr, "%u checks failed\n", failures);
	return failures ? 1 : 0;
}
