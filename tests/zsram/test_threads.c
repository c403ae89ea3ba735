/* SPDX-License-Identifier: MIT */
/*
 * zsram under many threads, with compaction (and optionally recompression)
 * running throughout. Two phases:
 *
 * 1. Stamped pages. Threads write, read and discard pages, some shared by
 *    all threads, some their own. Every written page names itself: page
 *    index, writer thread, and the writer's sequence number n, in a header
 *    (or, for a same-filled page, in the repeated word). A read must return
 *    a whole page that was written (no torn or foreign page) and must not
 *    be stale. The staleness check is sound for pages written concurrently:
 *
 *      a global ticket counter T (acq_rel fetch_add) gives each write or
 *      discard a start ticket s (before the call) and a completion ticket
 *      c (after it); each thread records (n, c) of its writes in a ring;
 *      after completing, an op raises floor[page] to its s (release).
 *      A reader loads F = floor[page] (acquire) before reading. If the
 *      read returns version v, completed at c_v, and F > c_v, then some op
 *      started after v's write completed and finished before the read
 *      began: v was overwritten, the read is stale. A zero page is stale
 *      when no discard could explain it: none in flight and the latest
 *      completed discard completed before F.
 *
 *    Tickets are ordered by T's read-modify-write chain, so "F > c_v"
 *    implies v's write happens-before the later op, which happens-before
 *    the read: any correct store must show the later op (or a newer one).
 *
 * 2. Read-modify-write. Threads own disjoint 1000-byte chunks of a region
 *    (chunks straddle page boundaries) and pwrite random sub-ranges of
 *    their chunks at unaligned offsets, many threads in the same page at
 *    once. Each thread checks its bytes against its own shadow: a lost
 *    update (a partial write based on a stale copy of the page) shows.
 *
 * At the end, with the queued frees finished, the pool must hold exactly
 * the objects the slots name: no leaked and no doubly freed object, in
 * either free mode (deferred, the default, or --sync-free).
 *
 *   test_zsram_threads [--threads N] [--seconds S] [--pages N] [--codec NAME]
 *                      [--level L] [--recompress] [--no-compact] [--sync-free]
 *                      [--seed S]
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "zsmalloc.h"
#include "zsram.h"
#include "zsram_internal.h"
#include "zsram_test.h"

#define RING      65536 /* recent writes remembered per thread */
#define SEQ_BITS  28
#define TICK_BITS 36
#define TICK_MASK ((1ull << TICK_BITS) - 1)
#define SEQ_MASK  ((1ull << SEQ_BITS) - 1)
#define HDR_MAGIC 0x5a5352414d000000ull /* "ZSRAM" */
#define SAME_TAG  0xa5ull               /* top byte of a same-filled stamp */
#define CHUNK     1000                  /* phase 2: bytes owned per chunk */

static struct {
	unsigned threads, seconds, pages, rmw_pages, seed;
	const char *codec;
	int level;
	bool recompress, compact, sync_free;
} opt = {
	.threads = 4, .seconds = 2, .pages = 256, .rmw_pages = 32, .seed = 1,
	.codec = "lz4", .compact = true,
};

struct page_state {
	uint64_t floor;      /* max start ticket of completed ops; release/acquire */
	uint64_t disc_busy;  /* discards in flight */
	uint64_t disc_cmax;  /* max completion ticket of completed discards */
} __attribute__((aligned(64)));

static struct zsram *zr;
static uint64_t ticket;              /* T: acq_rel fetch_add */
static struct page_state *pstate;    /* per page of phase 1 */
static uint64_t *ring;               /* [thread][RING]: seq << TICK_BITS | completion */
static unsigned shared_pages, own_pages;
static unsigned char *rmw_shadow;    /* phase 2: bytes written, each by its owner only */
static uint64_t rmw_base;            /* phase 2: first page */
static int workers_done;             /* atomic: background threads stop */
static uint64_t failures, reads_checked, stale_unknown, zero_reads, writes, discards;

#define FAIL(...)                                                                                  \
	do {                                                                                       \
		fprintf(stderr, "FAIL: " __VA_ARGS__);                                             \
		__atomic_fetch_add(&failures, 1, __ATOMIC_RELAXED);                                \
	} while (0)

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t tick(void)
{
	return __atomic_add_fetch(&ticket, 1, __ATOMIC_ACQ_REL);
}

static void max_release(uint64_t *p, uint64_t v)
{
	uint64_t cur = __atomic_load_n(p, __ATOMIC_RELAXED);

	while (cur < v &&
	       !__atomic_compare_exchange_n(p, &cur, v, 1, __ATOMIC_RELEASE, __ATOMIC_RELAXED))
		;
}

/* ------------------------------------------------------------------ */
/* Phase 1: stamped pages                                              */

static uint64_t body_seed(uint64_t page, uint64_t tid, uint64_t seq)
{
	return (page * 0x100000001b3ull) ^ (tid << 40) ^ (seq * 0x9e3779b97f4a7c15ull);
}

/* The page that write (page, tid, seq) of the given kind stores. */
static void stamp_build(unsigned char *buf, uint64_t page, uint64_t tid, uint64_t seq,
			enum zt_kind kind)
{
	uint64_t hdr[4];

	if (kind == ZT_SAME) {
		uint64_t w = SAME_TAG << 56 | (page & 0xfffff) << 36 | (tid & 0xff) << SEQ_BITS |
			     (seq & SEQ_MASK);

		for (size_t i = 0; i < PAGE; i += 8)
			memcpy(buf + i, &w, 8);
		return;
	}
	hdr[0] = HDR_MAGIC | (uint64_t)kind;
	hdr[1] = page;
	hdr[2] = tid;
	hdr[3] = seq;
	memcpy(buf, hdr, sizeof(hdr));
	zt_fill(buf + sizeof(hdr), PAGE - sizeof(hdr), kind, body_seed(page, tid, seq));
}

/*
 * Checks a page read from 'page' after loading floor F. Returns 0 or counts
 * a failure.
 */
static void stamp_check(const unsigned char *buf, uint64_t page, uint64_t F, unsigned char *tmp)
{
	uint64_t tid, seq, e, es;
	enum zt_kind kind;

	if (zt_same_filled(buf)) {
		uint64_t w;

		memcpy(&w, buf, 8);
		if (w == 0) {
			/* zero: explained by a discard in flight, or one that completed
			 * no earlier than F (acquire: after its cmax update) */
			uint64_t busy = __atomic_load_n(&pstate[page].disc_busy, __ATOMIC_ACQUIRE);
			uint64_t cmax = __atomic_load_n(&pstate[page].disc_cmax, __ATOMIC_ACQUIRE);

			__atomic_fetch_add(&zero_reads, 1, __ATOMIC_RELAXED);
			if (!busy && F > cmax)
				FAIL("page %llu: stale zero page (floor %llu, last discard %llu)\n",
				     (unsigned long long)page, (unsigned long long)F,
				     (unsigned long long)cmax);
			return;
		}
		if (w >> 56 != SAME_TAG || ((w >> 36) & 0xfffff) != (page & 0xfffff)) {
			FAIL("page %llu: foreign same-filled page %016llx\n",
			     (unsigned long long)page, (unsigned long long)w);
			return;
		}
		tid = (w >> SEQ_BITS) & 0xff;
		seq = w & SEQ_MASK;
		kind = ZT_SAME;
	} else {
		uint64_t hdr[4];

		memcpy(hdr, buf, sizeof(hdr));
		if ((hdr[0] & ~0xffull) != HDR_MAGIC || (hdr[0] & 0xff) >= ZT_NR_KINDS ||
		    hdr[1] != page || hdr[2] >= opt.threads || hdr[3] > SEQ_MASK) {
			FAIL("page %llu: torn or foreign page (header %016llx %llu %llu %llu)\n",
			     (unsigned long long)page, (unsigned long long)hdr[0],
			     (unsigned long long)hdr[1], (unsigned long long)hdr[2],
			     (unsigned long long)hdr[3]);
			return;
		}
		tid = hdr[2];
		seq = hdr[3];
		kind = (enum zt_kind)(hdr[0] & 0xff);
	}
	if (tid >= opt.threads) {
		FAIL("page %llu: bad writer %llu\n", (unsigned long long)page,
		     (unsigned long long)tid);
		return;
	}
	stamp_build(tmp, page, tid, seq, kind);
	if (memcmp(tmp, buf, PAGE) != 0) {
		FAIL("page %llu: content of (thread %llu, seq %llu) corrupt\n",
		     (unsigned long long)page, (unsigned long long)tid, (unsigned long long)seq);
		return;
	}
	/* the writer published (seq, 0) before writing: happens-before this read */
	e = __atomic_load_n(&ring[tid * RING + seq % RING], __ATOMIC_ACQUIRE);
	es = e >> TICK_BITS;
	if (es == seq) {
		uint64_t c = e & TICK_MASK;

		if (c && F > c)
			FAIL("page %llu: stale read of (thread %llu, seq %llu) completed at %llu, "
			     "overwritten by an op started at %llu\n",
			     (unsigned long long)page, (unsigned long long)tid,
			     (unsigned long long)seq, (unsigned long long)c,
			     (unsigned long long)F);
	} else if (es > seq) {
		__atomic_fetch_add(&stale_unknown, 1, __ATOMIC_RELAXED); /* ring moved on */
	} else {
		FAIL("page %llu: (thread %llu, seq %llu) was never written\n",
		     (unsigned long long)page, (unsigned long long)tid, (unsigned long long)seq);
	}
}

struct worker {
	pthread_t th;
	unsigned id;
	double deadline;
};

static enum zt_kind pick_kind(uint64_t *s)
{
	unsigned r = zt_below(s, 100);

	return r < 50 ? ZT_TEXT : r < 65 ? ZT_SAME : r < 85 ? ZT_RANDOM : ZT_NIBBLE;
}

static void *stamp_worker(void *arg)
{
	struct worker *w = arg;
	unsigned char *buf = malloc(PAGE), *tmp = malloc(PAGE);
	uint64_t s = opt.seed * 1000003ull + w->id, seq = 0, n = 0;

	if (!buf || !tmp) {
		FAIL("out of memory\n");
		goto out;
	}
	while ((n++ & 63) || now() < w->deadline) {
		uint64_t page, st, c, F;
		unsigned r = zt_below(&s, 100);
		int err;

		if (seq >= SEQ_MASK)
			break;
		if (zt_below(&s, 2))
			page = zt_below(&s, shared_pages);
		else
			page = shared_pages + (uint64_t)w->id * own_pages + zt_below(&s, own_pages);
		if (r < 40) {
			uint64_t *slot;

			seq++;
			slot = &ring[(uint64_t)w->id * RING + seq % RING];
			/* (seq, in flight) before the page can be seen */
			__atomic_store_n(slot, seq << TICK_BITS, __ATOMIC_RELEASE);
			stamp_build(buf, page, w->id, seq, pick_kind(&s));
			st = tick();
			err = zsram_write_page(zr, page, buf);
			c = tick();
			if (err)
				FAIL("write page %llu: %d\n", (unsigned long long)page, err);
			__atomic_store_n(slot, seq << TICK_BITS | c, __ATOMIC_RELEASE);
			max_release(&pstate[page].floor, st);
			__atomic_fetch_add(&writes, 1, __ATOMIC_RELAXED);
		} else if (r < 48) {
			__atomic_fetch_add(&pstate[page].disc_busy, 1, __ATOMIC_ACQ_REL);
			st = tick();
			err = zsram_discard(zr, page, 1);
			c = tick();
			if (err)
				FAIL("discard page %llu: %d\n", (unsigned long long)page, err);
			/* cmax before busy drops: a reader that sees busy == 0 sees c */
			max_release(&pstate[page].disc_cmax, c);
			__atomic_fetch_sub(&pstate[page].disc_busy, 1, __ATOMIC_RELEASE);
			max_release(&pstate[page].floor, st);
			__atomic_fetch_add(&discards, 1, __ATOMIC_RELAXED);
		} else {
			/* acquire: pairs with max_release of floor by completed ops */
			F = __atomic_load_n(&pstate[page].floor, __ATOMIC_ACQUIRE);
			err = zsram_read_page(zr, page, buf);
			if (err)
				FAIL("read page %llu: %d\n", (unsigned long long)page, err);
			else
				stamp_check(buf, page, F, tmp);
			__atomic_fetch_add(&reads_checked, 1, __ATOMIC_RELAXED);
		}
	}
out:
	free(buf);
	free(tmp);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Phase 2: read-modify-write of shared pages                          */

static void *rmw_worker(void *arg)
{
	struct worker *w = arg;
	const uint64_t region = (uint64_t)opt.rmw_pages * PAGE, base = rmw_base * PAGE;
	const uint64_t nchunks = region / CHUNK;
	unsigned char *buf = malloc(CHUNK), *got = malloc(CHUNK);
	uint64_t s = opt.seed * 7919ull + w->id, n = 0;

	if (!buf || !got) {
		FAIL("out of memory\n");
		goto out;
	}
	while ((n++ & 63) || now() < w->deadline) {
		/* a chunk of ours: chunk k belongs to thread k % threads */
		uint64_t k = zt_below(&s, (unsigned)(nchunks / opt.threads)) * opt.threads + w->id;
		size_t a = zt_below(&s, CHUNK), len = zt_below(&s, (unsigned)(CHUNK - a)) + 1;
		uint64_t off = k * CHUNK + a;
		ssize_t r;

		if (off + len > region)
			continue;
		if (zt_below(&s, 100) < 60) {
			unsigned kind = zt_below(&s, ZT_NR_KINDS + 1);

			if (kind == ZT_NR_KINDS)
				memset(buf, 0, len);
			else
				zt_fill(buf, len, (enum zt_kind)kind, zt_rng(&s));
			r = zsram_pwrite(zr, buf, len, base + off);
			if (r != (ssize_t)len)
				FAIL("pwrite %zu at %llu: %zd\n", len, (unsigned long long)off, r);
			memcpy(rmw_shadow + off, buf, len);
		} else {
			r = zsram_pread(zr, got, len, base + off);
			if (r != (ssize_t)len)
				FAIL("pread %zu at %llu: %zd\n", len, (unsigned long long)off, r);
			else if (memcmp(got, rmw_shadow + off, len) != 0)
				FAIL("thread %u: bytes %llu..%llu lost an update\n", w->id,
				     (unsigned long long)off, (unsigned long long)(off + len));
			__atomic_fetch_add(&reads_checked, 1, __ATOMIC_RELAXED);
		}
	}
out:
	free(buf);
	free(got);
	return NULL;
}

/* ------------------------------------------------------------------ */

static void *background(void *arg)
{
	unsigned long compacted = 0, rounds = 0;
	long recompressed = 0;

	(void)arg;
	while (!__atomic_load_n(&workers_done, __ATOMIC_ACQUIRE)) {
		struct zsram_mm_stat st;

		if (opt.compact)
			compacted += zsram_compact(zr);
		if (opt.recompress) {
			long r = zsram_recompress(zr, rounds % 2 ? ZSRAM_RECOMP_HUGE : 0, 512);

			if (r < 0)
				FAIL("recompress: %ld\n", r);
			else
				recompressed += r;
		}
		zsram_mm_stat(zr, &st);
		if (st.mem_used_max < st.mem_used_total)
			FAIL("mem_used_max %llu < mem_used_total %llu\n",
			     (unsigned long long)st.mem_used_max,
			     (unsigned long long)st.mem_used_total);
		rounds++;
		sched_yield();
	}
	printf("# background: %lu rounds, %lu pages compacted, %ld pages recompressed\n", rounds,
	       compacted, recompressed);
	return NULL;
}

static int run_phase(void *(*fn)(void *), const char *name)
{
	struct worker *w = calloc(opt.threads, sizeof(*w));
	pthread_t bg;
	double t0 = now();

	if (!w)
		return -1;
	__atomic_store_n(&workers_done, 0, __ATOMIC_RELAXED);
	if (pthread_create(&bg, NULL, background, NULL))
		return -1;
	for (unsigned i = 0; i < opt.threads; i++) {
		w[i].id = i;
		w[i].deadline = t0 + opt.seconds;
		if (pthread_create(&w[i].th, NULL, fn, &w[i]))
			return -1;
	}
	for (unsigned i = 0; i < opt.threads; i++)
		pthread_join(w[i].th, NULL);
	__atomic_store_n(&workers_done, 1, __ATOMIC_RELEASE);
	pthread_join(bg, NULL);
	printf("# %s: %.2f s\n", name, now() - t0);
	free(w);
	return 0;
}

static int parse(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--recompress") == 0) {
			opt.recompress = true;
			continue;
		}
		if (strcmp(a, "--no-compact") == 0) {
			opt.compact = false;
			continue;
		}
		if (strcmp(a, "--sync-free") == 0) {
			opt.sync_free = true;
			continue;
		}
		if (!v)
			return -1;
		i++;
		if (strcmp(a, "--threads") == 0)
			opt.threads = (unsigned)strtoul(v, NULL, 10);
		else if (strcmp(a, "--seconds") == 0)
			opt.seconds = (unsigned)strtoul(v, NULL, 10);
		else if (strcmp(a, "--pages") == 0)
			opt.pages = (unsigned)strtoul(v, NULL, 10);
		else if (strcmp(a, "--codec") == 0)
			opt.codec = v;
		else if (strcmp(a, "--level") == 0)
			opt.level = atoi(v);
		else if (strcmp(a, "--seed") == 0)
			opt.seed = (unsigned)strtoul(v, NULL, 10);
		else
			return -1;
	}
	if (opt.threads < 1 || opt.threads > 255 || opt.pages < 4 * opt.threads ||
	    opt.pages > (1u << 20))
		return -1;
	return 0;
}

int main(int argc, char **argv)
{
	struct zsram_config cfg = {0};
	unsigned char *page;
	uint64_t total_pages;

	if (parse(argc, argv)) {
		fprintf(stderr,
			"usage: %s [--threads N] [--seconds S] [--pages N] [--codec NAME] "
			"[--level L] [--recompress] [--no-compact] [--sync-free] [--seed S]\n",
			argv[0]);
		return 2;
	}
	shared_pages = opt.pages / 4;
	own_pages = (opt.pages - shared_pages) / opt.threads;
	rmw_base = opt.pages;
	opt.rmw_pages = opt.threads * 2 > 32 ? opt.threads * 2 : 32; /* >= 8 chunks per thread */
	total_pages = opt.pages + opt.rmw_pages;
	cfg.disksize = total_pages * PAGE;
	cfg.algorithm = opt.codec;
	cfg.level = opt.level;
	cfg.flags = opt.sync_free ? ZSRAM_SYNC_FREE : 0;
	zr = zsram_create(&cfg);
	pstate = calloc(opt.pages, sizeof(*pstate));
	ring = calloc((size_t)opt.threads * RING, sizeof(*ring));
	rmw_shadow = calloc(opt.rmw_pages, PAGE);
	page = malloc(2 * PAGE);
	if (!zr || !pstate || !ring || !rmw_shadow || !page) {
		fprintf(stderr, "setup failed\n");
		return 1;
	}
	if (opt.recompress && zsram_set_recomp_algorithm(zr, "zstd", 0)) {
		fprintf(stderr, "no secondary codec\n");
		return 1;
	}

	if (run_phase(stamp_worker, "stamped pages"))
		return 1;
	/* quiet now: every page must pass the same check once more */
	for (uint64_t p = 0; p < opt.pages; p++) {
		uint64_t F = __atomic_load_n(&pstate[p].floor, __ATOMIC_ACQUIRE);

		if (zsram_read_page(zr, p, page))
			FAIL("final read of page %llu\n", (unsigned long long)p);
		else
			stamp_check(page, p, F, page + PAGE);
	}
	if (!zsram_is_valid(zr))
		FAIL("mm_stat disagrees with a recount after phase 1\n");
	printf("# phase 1: %llu writes, %llu discards, %llu reads checked (%llu zero, %llu "
	       "beyond the ring)\n",
	       (unsigned long long)writes, (unsigned long long)discards,
	       (unsigned long long)reads_checked, (unsigned long long)zero_reads,
	       (unsigned long long)stale_unknown);

	if (run_phase(rmw_worker, "read-modify-write"))
		return 1;
	{
		unsigned char *all = malloc((size_t)opt.rmw_pages * PAGE);

		if (!all || zsram_pread(zr, all, (size_t)opt.rmw_pages * PAGE, rmw_base * PAGE) !=
				    (ssize_t)opt.rmw_pages * PAGE)
			FAIL("final pread\n");
		else if (memcmp(all, rmw_shadow, (size_t)opt.rmw_pages * PAGE) != 0)
			FAIL("read-modify-write region differs from the shadow\n");
		free(all);
	}
	if (!zsram_is_valid(zr))
		FAIL("mm_stat disagrees with a recount after phase 2\n");
	{
		struct zsram_recount rc;
		struct zs_pool_stats ps;

		zs_free_deferred_flush(zsram_pool(zr));
		zsram_recount(zr, &rc);
		zs_pool_stats(zsram_pool(zr), &ps);
		if (ps.objs_used != rc.pages_stored - rc.same_pages)
			FAIL("the pool holds %lu objects, the slots %llu\n", ps.objs_used,
			     (unsigned long long)(rc.pages_stored - rc.same_pages));
		if (opt.sync_free && ps.deferred_queued + ps.deferred_sync)
			FAIL("--sync-free, yet %lu frees went through zs_free_deferred\n",
			     ps.deferred_queued + ps.deferred_sync);
		printf("# %s free: %lu queued, %lu objects in %lu pages\n",
		       opt.sync_free ? "sync" : "deferred", ps.deferred_queued, ps.objs_used,
		       ps.pages_allocated);
	}

	zsram_destroy(zr);
	free(pstate);
	free(ring);
	free(rmw_shadow);
	free(page);
	printf("# %llu failures\n", (unsigned long long)failures);
	return failures ? 1 : 0;
}
