// SPDX-License-Identifier: MIT
/*
 * The peers: glibc malloc, jemalloc and mimalloc through their helper
 * programs (zsbench-peer-*), the kernel's zram in a forked child, and the
 * codec alone ("raw"), also in a child.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kzram.h"
#include "peer.h"
#include "timing.h"
#include "zsbench.h"

#ifndef ZSBENCH_LIBEXECDIR
#define ZSBENCH_LIBEXECDIR "/usr/local/libexec/zsbench"
#endif

/* Next to this program (build tree), else where it is installed. */
static int helper_path(const char *key, char *buf, size_t len)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	if (n > 0) {
		self[n] = '\0';
		slash = strrchr(self, '/');
		if (slash) {
			*slash = '\0';
			if (snprintf(buf, len, "%s/zsbench-peer-%s", self, key) < (int)len &&
			    access(buf, X_OK) == 0)
				return 0;
		}
	}
	snprintf(buf, len, "%s/zsbench-peer-%s", ZSBENCH_LIBEXECDIR, key);
	return access(buf, X_OK) == 0 ? 0 : -ENOENT;
}

int zsb_run_peer(struct zsb_ctx *ctx, enum zsb_store s, struct bench_result *res)
{
	struct zsb_options *opt = ctx->opt;
	char path[PATH_MAX];
	struct bench_peer_req req = {
		.helper = path,
		.pages = &ctx->pages,
		.codec = opt->algorithm,
		.level = opt->level,
		.threads = opt->threads,
		.free_fraction = opt->free_fraction,
		.seed = opt->seed,
		.huge = ctx->huge,
		.progress_fd = ctx->progress_fd,
	};

	if (helper_path(zsb_store_key(s), path, sizeof(path))) {
		memset(res, 0, sizeof(*res));
		snprintf(res->error, sizeof(res->error),
			 "not installed: zsbench-peer-%s was not built (install lib%s-dev and "
			 "rebuild)",
			 zsb_store_key(s), zsb_store_key(s));
		return -ENOENT;
	}
	return bench_peer_run(&req, res, zsb_bar_wait, &ctx->bar);
}

static int kzram_child(void *cp, struct bench_result *res)
{
	struct zsb_ctx *ctx = cp;
	struct zsb_options *opt = ctx->opt;
	struct bench_run_cfg cfg = {.threads = opt->threads,
				    .free_fraction = opt->free_fraction,
				    .seed = opt->seed,
				    .progress = ctx->bar.shared};

	bench_test_kill(zsb_store_key(ST_KZRAM));
	return bench_store_run(&bench_kzram_ops, (void *)opt->algorithm, &ctx->pages, &cfg, res);
}

int zsb_run_kzram(struct zsb_ctx *ctx, struct bench_result *res)
{
	char why[128];

	if (!bench_kzram_available(why, sizeof(why))) {
		memset(res, 0, sizeof(*res));
		snprintf(res->error, sizeof(res->error), "skipped: %s", why);
		return -ENODEV;
	}
	int err = bench_child_run(kzram_child, ctx, res, zsb_bar_wait, &ctx->bar);

	bench_kzram_cleanup_all(); /* the device of a child that died (crash, SIGKILL) */
	return err;
}

/*
 * ---- the codec alone ----
 *
 * The yardstick a store is held to: the same codec on the same pages, with
 * no store around it. The threads take the pages as the stores' threads
 * do (BENCH_CLAIM_BATCH at a time, in index order, from a shared cursor)
 * and compress each claim's pages one after the other into a stretch of a
 * buffer of its own (prefaulted, as a store's pool is): the store phase.
 * When all are done, they take the claims again and decompress, from there
 * into one page buffer each, exactly the pages the stores' load phase
 * reads -- those the free plan (bench_free_plan, same fraction and seed)
 * keeps, in index order -- skipping the compressed bytes of the others. Each
 * loop's time is its slowest thread's. So the codec reads and
 * writes memory the way a store must -- compressed bytes land in, and are
 * read back from, memory that is not in cache -- and what the stores add on
 * top is their own work: the lookups, locks and copies. (Decompressing each
 * page straight after compressing it would read the compressed bytes from
 * L1, a speed no store could reach; decompressing every page, freed ones
 * included, would time other pages than the stores read, in one unbroken
 * stream that the hardware prefetcher follows perfectly.)
 */

struct raw_run {
	struct zsb_ctx *ctx;
	const uint8_t *freed; /* by page: 1 when the free plan discards it */
	uint32_t *lat[2];     /* compress latencies (ns) by page, decompress by page */
	uint8_t *packed;      /* claim c's pages packed from c * RAW_CLAIM_BYTES */
	uint32_t *len;	      /* by page: its compressed length */
	size_t cursor[2];     /* atomic, relaxed: the next page each loop hands out */
	int stop;	      /* atomic, relaxed: a thread failed */
	pthread_mutex_t lock; /* of the gate between the loops: */
	pthread_cond_t gate;
	unsigned threads, arrived;
};

struct raw_worker {
	struct raw_run *run;
	pthread_t tid;
	uint64_t busy[2];
	uint64_t wall[2], cpu[2]; /* of each loop (thread CPU time) */
	int64_t steal[2];	  /* the host's steal during each loop (-1: unknown) */
	size_t loaded;		  /* pages decompressed */
	uint64_t mismatches;
	int err;
};

/* room for the worst case; pages that compress are packed tightly */
#define RAW_CLAIM_BYTES ((size_t)BENCH_CLAIM_BATCH * BENCH_CODEC_BOUND)

static void loop_times(struct raw_worker *w, int k, uint64_t t0, uint64_t c0, int64_t s0)
{
	int64_t s1 = bench_steal_ns();

	w->wall[k] = bench_now_ns() - t0;
	w->cpu[k] = bench_thread_cpu_ns() - c0;
	w->steal[k] = s0 >= 0 && s1 >= s0 ? s1 - s0 : -1;
}

/* The next claim of loop k (pages *first..*end-1); false when none are left. */
static bool raw_claim(struct raw_run *r, int k, size_t *first, size_t *end)
{
	size_t n = r->ctx->pages.npages;

	if (__atomic_load_n(&r->stop, __ATOMIC_RELAXED))
		return false;
	*first = __atomic_fetch_add(&r->cursor[k], BENCH_CLAIM_BATCH, __ATOMIC_RELAXED);
	*end = *first + BENCH_CLAIM_BATCH < n ? *first + BENCH_CLAIM_BATCH : n;
	return *first < n;
}

/* Waits until every running thread has compressed its last claim. */
static void raw_gate(struct raw_run *r)
{
	pthread_mutex_lock(&r->lock);
	if (++r->arrived >= r->threads)
		pthread_cond_broadcast(&r->gate);
	while (r->arrived < r->threads)
		pthread_cond_wait(&r->gate, &r->lock);
	pthread_mutex_unlock(&r->lock);
}

/* Compresses claims of pages, each claim packed into its own stretch. */
static void raw_compress(struct raw_worker *w, struct bench_codec *c)
{
	struct raw_run *r = w->run;
	int64_t loop_s0 = bench_steal_ns();
	uint64_t loop_t0 = bench_now_ns(), loop_c0 = bench_thread_cpu_ns();
	size_t first, end;

	while (!w->err && raw_claim(r, 0, &first, &end)) {
		uint8_t *at = r->packed + first / BENCH_CLAIM_BATCH * RAW_CLAIM_BYTES;

		for (size_t i = first; i < end; i++) {
			uint64_t t0 = bench_now_ns(), t1;
			int l = bench_codec_compress(c, bench_page(&r->ctx->pages, i), at);

			t1 = bench_now_ns();
			r->lat[0][i] = (uint32_t)(t1 - t0);
			w->busy[0] += t1 - t0;
			if (l < 0) {
				w->err = l;
				__atomic_store_n(&r->stop, 1, __ATOMIC_RELAXED);
				break;
			}
			r->len[i] = (uint32_t)l;
			at += l;
		}
		bench_progress_add(r->ctx->bar.shared, (end - first) / 2);
	}
	loop_times(w, 0, loop_t0, loop_c0, loop_s0);
}

/* Decompresses, claim by claim, the pages the stores' load phase reads. */
static void raw_decompress(struct raw_worker *w, struct bench_codec *c, uint8_t *page)
{
	struct raw_run *r = w->run;
	int64_t loop_s0 = bench_steal_ns();
	uint64_t loop_t0 = bench_now_ns(), loop_c0 = bench_thread_cpu_ns();
	size_t first, end;

	while (!w->err && raw_claim(r, 1, &first, &end)) {
		const uint8_t *at = r->packed + first / BENCH_CLAIM_BATCH * RAW_CLAIM_BYTES;

		for (size_t i = first; i < end && !w->err; at += r->len[i++]) {
			uint64_t t0, t1;

			if (r->freed[i]) /* the stores do not load it */
				continue;
			t0 = bench_now_ns();
			w->err = bench_codec_decompress(c, at, r->len[i], page);
			t1 = bench_now_ns();
			r->lat[1][i] = (uint32_t)(t1 - t0);
			w->busy[1] += t1 - t0;
			w->loaded++;
			w->mismatches += !w->err && memcmp(page, bench_page(&r->ctx->pages, i),
							   BENCH_PAGE_SIZE) != 0;
		}
		if (w->err)
			__atomic_store_n(&r->stop, 1, __ATOMIC_RELAXED);
		bench_progress_add(r->ctx->bar.shared, (end - first) / 2);
	}
	loop_times(w, 1, loop_t0, loop_c0, loop_s0);
}

static void *raw_worker_main(void *wp)
{
	struct raw_worker *w = wp;
	struct raw_run *r = w->run;
	struct bench_codec *c = bench_codec_new(r->ctx->opt->algorithm, r->ctx->opt->level);
	uint8_t *page = aligned_alloc(4096, 4096);

	w->err = c && page ? 0 : -ENOMEM;
	if (w->err)
		__atomic_store_n(&r->stop, 1, __ATOMIC_RELAXED);
	raw_compress(w, c);
	raw_gate(r);
	raw_decompress(w, c, page);
	bench_codec_free(c);
	free(page);
	return NULL;
}

/* Runs the workers (as many threads as the stores get) and sums up. */
static int raw_pages(struct zsb_ctx *ctx, const uint8_t *freed, uint32_t **lat,
		     struct bench_result *res)
{
	size_t n = ctx->pages.npages, claims = (n + BENCH_CLAIM_BATCH - 1) / BENCH_CLAIM_BATCH;
	struct raw_run r = {.ctx = ctx,
			    .freed = freed,
			    .lat = {lat[0], lat[1]},
			    .packed = malloc(claims * RAW_CLAIM_BYTES + 1),
			    .len = malloc(n * sizeof(*r.len) + 1),
			    .lock = PTHREAD_MUTEX_INITIALIZER,
			    .gate = PTHREAD_COND_INITIALIZER,
			    .threads = ctx->opt->threads};
	struct raw_worker *w = calloc(r.threads, sizeof(*w));
	int err = 0;

	if (!w || !r.packed || !r.len) {
		free(w);
		free(r.packed);
		free(r.len);
		return -ENOMEM;
	}
	/* fault in what typically fills: the stores' pools are resident too */
	for (size_t c = 0; c < claims; c++)
		memset(r.packed + c * RAW_CLAIM_BYTES, 0, BENCH_CLAIM_BATCH * BENCH_PAGE_SIZE);
	for (unsigned t = 0; t < r.threads; t++)
		w[t].run = &r;
	for (unsigned t = 1; t < r.threads; t++) {
		if (pthread_create(&w[t].tid, NULL, raw_worker_main, &w[t])) {
			w[t].tid = 0; /* could not start it: the others do its share */
			pthread_mutex_lock(&r.lock);
			r.threads--;
			pthread_cond_broadcast(&r.gate);
			pthread_mutex_unlock(&r.lock);
		}
	}
	raw_worker_main(&w[0]);
	for (unsigned t = 0; t < ctx->opt->threads; t++) {
		if (t && !w[t].tid)
			continue;
		if (t)
			pthread_join(w[t].tid, NULL);
		for (int k = 0; k < 2; k++) {
			struct bench_op_stats *st = &res->op[k ? BENCH_LOAD : BENCH_FILL];

			if (w[t].busy[k] > st->busy_ns)
				st->busy_ns = w[t].busy[k];
			/* the phase's wall time and steal: its longest loop's */
			if (w[t].wall[k] > st->wall_ns) {
				st->wall_ns = w[t].wall[k];
				st->steal_ns = w[t].steal[k];
			}
			st->cpu_ns += w[t].cpu[k];
		}
		res->op[BENCH_LOAD].ops += w[t].loaded;
		res->mismatches += w[t].mismatches;
		if (!err)
			err = w[t].err;
	}
	for (int k = 0; k < 2; k++) {
		struct bench_op_stats *st = &res->op[k ? BENCH_LOAD : BENCH_FILL];

		bench_steal_share(st, 0, st->steal_ns); /* steal_ns is the span's already */
	}
	free(w);
	free(r.packed);
	free(r.len);
	return err;
}

/* The free plan as a map by page (1: freed), as bench_store_run() draws it. */
static uint8_t *raw_freed_map(const struct zsb_ctx *ctx)
{
	size_t n = ctx->pages.npages, nfree;
	size_t *plan = bench_free_plan(n, ctx->opt->free_fraction, ctx->opt->seed, &nfree);
	uint8_t *freed = plan ? bench_free_map(n, plan, nfree) : NULL;

	free(plan);
	return freed;
}

static int raw_child(void *cp, struct bench_result *res)
{
	static const double pct[2] = {50, 99};
	struct zsb_ctx *ctx = cp;
	size_t n = ctx->pages.npages, nlat[2] = {n, 0};
	struct bench_codec *probe = bench_codec_new(ctx->opt->algorithm, ctx->opt->level);
	uint32_t *lat[2] = {calloc(n + 1, 4), calloc(n + 1, 4)};
	uint8_t *freed = raw_freed_map(ctx);
	int err;

	bench_test_kill(zsb_store_key(ST_RAW));
	memset(res, 0, sizeof(*res));
	snprintf(res->name, sizeof(res->name), "raw %s", ctx->opt->algorithm);
	res->rss_peak = -1;
	for (int p = 0; p < BENCH_NPOINTS; p++)
		res->mem[p] = (struct bench_mem){-1, -1, -1};
	if (!probe || !lat[0] || !lat[1] || !freed) {
		snprintf(res->error, sizeof(res->error),
			 probe ? "out of memory" : "unknown algorithm '%s'", ctx->opt->algorithm);
		bench_codec_free(probe);
		free(lat[0]);
		free(lat[1]);
		free(freed);
		return probe ? -ENOMEM : -EINVAL;
	}
	bench_codec_free(probe);
	bench_progress_reset(ctx->bar.shared, n);
	bench_pages_prefault(&ctx->pages);
	err = raw_pages(ctx, freed, lat, res);
	res->op[BENCH_FILL].ops = n;
	for (size_t i = 0; i < n; i++) /* the loaded pages' latencies, packed */
		if (!freed[i])
			lat[1][nlat[1]++] = lat[1][i];
	for (int k = 0; k < 2; k++) {
		struct bench_op_stats *st = &res->op[k ? BENCH_LOAD : BENCH_FILL];
		double out[2];

		st->bytes = st->ops * BENCH_PAGE_SIZE;
		st->mbps = bench_mbps(st->bytes, st->busy_ns);
		st->cpus = st->wall_ns ? (double)st->cpu_ns / (double)st->wall_ns : 0;
		if (!err && !bench_percentiles(lat[k], nlat[k], pct, out, 2)) {
			st->p50_us = out[0] / 1e3;
			st->p99_us = out[1] / 1e3;
		}
	}
	res->pages = n;
	res->freed = n - nlat[1];
	res->ok = !err;
	res->verified = !err && !res->mismatches;
	if (err)
		snprintf(res->error, sizeof(res->error), "codec error: %s", strerror(-err));
	free(lat[0]);
	free(lat[1]);
	free(freed);
	return err;
}

int zsb_run_raw(struct zsb_ctx *ctx, struct bench_result *res)
{
	return bench_child_run(raw_child, ctx, res, zsb_bar_wait, &ctx->bar);
}
