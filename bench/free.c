/* SPDX-License-Identifier: MIT */
/*
 * bench-free: the free side of the seeds, measured.
 *
 *   scale     zs_free throughput from 1, 2, 4, 8 threads (4 and 8
 *             oversubscribe this machine's cores): the class-index path
 *             (seed 000) against the pool-lock path (ZS_POOL_FREE_POOL_LOCK),
 *             side by side
 *   latency   p50/p99/p99.9 of zs_free from one thread, with nothing else
 *             running and while another thread runs zs_compact in a loop
 *   deferred  caller-side p50/p99 of zs_free_deferred against zs_free, the
 *             CPU time of both (the drain thread included), and the wall time
 *             to free 256 MiB worth of compressed pages from 1 and 2 threads
 *
 *   bench-free [scale|latency|deferred|all] [--input PATH]... [--size MIB]
 *              [--repeat N]
 *
 * Objects are lz4-compressed real pages (the blobs of bench-density).
 * Medians over --repeat runs.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <x86intrin.h>

#include "blobs.h"
#include "prng.h"
#include "timing.h"
#include "zsmalloc.h"

static struct {
	char **paths;
	size_t npaths, size_mib;
	unsigned repeat;
} opt = { .size_mib = 256, .repeat = 5 };

static const struct blobs *B;

/* ------------------------------------------------------------------ */
/* Cycle counter, calibrated against the monotonic clock               */

static double ns_per_tick;

static void calibrate(void)
{
	uint64_t t0 = bench_now_ns(), c0 = __rdtsc();
	while (bench_now_ns() - t0 < 50000000)
		;
	ns_per_tick = (double)(bench_now_ns() - t0) / (double)(__rdtsc() - c0);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

static double pct(uint32_t *ticks, size_t n, double p)
{
	size_t i = (size_t)(p / 100.0 * (double)(n - 1));
	return (double)ticks[i] * ns_per_tick;
}

/* ------------------------------------------------------------------ */

/* Fills a pool with the blobs (cycled to 'count' objects). */
static unsigned long *fill(struct zs_pool *pool, size_t count)
{
	unsigned long *h = malloc(count * sizeof(*h));

	for (size_t i = 0; i < count; i++) {
		size_t b = i % B->n;
		h[i] = zs_malloc(pool, B->len[b]);
		zs_obj_write(pool, h[i], blob(B, b), B->len[b]);
	}
	return h;
}

/* Objects worth 'mib' MiB of uncompressed pages. */
static size_t objects_for(size_t mib)
{
	return mib * 256 * B->n / B->pages.npages;
}

struct freer {
	struct zs_pool *pool;
	unsigned long *h; /* this thread's handles, in the order to free them */
	size_t n;
	int deferred;
	pthread_barrier_t *start;
};

static void *free_part(void *arg)
{
	struct freer *f = arg;

	pthread_barrier_wait(f->start);
	for (size_t i = 0; i < f->n; i++) {
		if (f->deferred)
			zs_free_deferred(f->pool, f->h[i]);
		else
			zs_free(f->pool, f->h[i]);
	}
	return NULL;
}

/*
 * Frees every handle from 'threads' threads: the objects are dealt to the
 * threads at random and each frees its share in random order, as when
 * several processes release their swap. Returns the callers' wall time in
 * ns; *flush_ns gets the time until everything is freed.
 */
static uint64_t free_all(struct zs_pool *pool, unsigned long *h, size_t n, unsigned threads,
			 int deferred, uint64_t *flush_ns)
{
	pthread_t t[16];
	struct freer f[16];
	pthread_barrier_t start;
	uint32_t *order = blobs_shuffle(n, 99);
	uint64_t t0, t1;

	pthread_barrier_init(&start, NULL, threads + 1);
	for (unsigned i = 0; i < threads; i++) {
		size_t from = n * i / threads, to = n * (i + 1) / threads;
		f[i] = (struct freer){ pool, malloc((to - from) * sizeof(*h)), to - from, deferred,
				       &start };
		for (size_t k = from; k < to; k++)
			f[i].h[k - from] = h[order[k]];
	}
	free(order);
	for (unsigned i = 0; i < threads; i++)
		pthread_create(&t[i], NULL, free_part, &f[i]);
	t0 = bench_now_ns(); /* the workers start when we reach the barrier */
	pthread_barrier_wait(&start);
	for (unsigned i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	t1 = bench_now_ns();
	if (deferred)
		zs_free_deferred_flush(pool);
	if (flush_ns)
		*flush_ns = bench_now_ns() - t0;
	for (unsigned i = 0; i < threads; i++)
		free(f[i].h);
	pthread_barrier_destroy(&start);
	return t1 - t0;
}

static void scale(void)
{
	static const unsigned threads[] = { 1, 2, 4, 8 };
	size_t n = objects_for(opt.size_mib);

	printf("\nzs_free throughput, %zu objects (%zu MiB of pages), frees/s, median of %u\n", n,
	       opt.size_mib, opt.repeat);
	printf("%8s %16s %16s %8s\n", "threads", "class index", "pool lock", "ratio");
	for (size_t k = 0; k < sizeof(threads) / sizeof(threads[0]); k++) {
		double ci[64], pl[64];

		for (unsigned r = 0; r < opt.repeat; r++) {
			for (int legacy = 0; legacy < 2; legacy++) {
				struct zs_pool_config cfg = {
					.flags = legacy ? ZS_POOL_FREE_POOL_LOCK : 0
				};
				struct zs_pool *pool = zs_create_pool_ex("bench-free", &cfg);
				unsigned long *h = fill(pool, n);
				uint64_t ns = free_all(pool, h, n, threads[k], 0, NULL);

				(legacy ? pl : ci)[r] = (double)n / ((double)ns * 1e-9);
				zs_destroy_pool(pool);
				free(h);
			}
		}
		printf("%8u %15.2fM %15.2fM %8.2f\n", threads[k], median(ci, opt.repeat) / 1e6,
		       median(pl, opt.repeat) / 1e6, median(ci, opt.repeat) / median(pl, opt.repeat));
	}
}

struct compactor {
	struct zs_pool *pool;
	int stop; /* atomic */
	unsigned long runs, pages;
};

static void *compact_loop(void *arg)
{
	struct compactor *c = arg;

	while (!__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE)) {
		c->pages += zs_compact(c->pool);
		c->runs++;
	}
	return NULL;
}

/* Times each zs_free (every object, in random order). */
static void free_latency(int with_compaction, double out[3], unsigned long *runs)
{
	size_t n = objects_for(opt.size_mib);
	struct zs_pool *pool = zs_create_pool("bench-free");
	unsigned long *h = fill(pool, n);
	uint32_t *ticks = malloc(n * sizeof(*ticks));
	uint32_t *order = blobs_shuffle(n, 7);
	struct compactor c = { .pool = pool };
	pthread_t t;

	/* a fragmented pool, so compaction has work while we free */
	for (size_t i = 0; i < n / 2; i++) {
		zs_free(pool, h[order[i]]);
		h[order[i]] = 0;
	}
	if (with_compaction)
		pthread_create(&t, NULL, compact_loop, &c);
	size_t m = 0;
	for (size_t i = n / 2; i < n; i++) {
		uint64_t c0 = __rdtsc();
		zs_free(pool, h[order[i]]);
		ticks[m++] = (uint32_t)(__rdtsc() - c0);
	}
	if (with_compaction) {
		__atomic_store_n(&c.stop, 1, __ATOMIC_RELEASE);
		pthread_join(t, NULL);
		*runs = c.runs;
	}
	qsort(ticks, m, sizeof(*ticks), cmp_u32);
	out[0] = pct(ticks, m, 50);
	out[1] = pct(ticks, m, 99);
	out[2] = pct(ticks, m, 99.9);
	zs_destroy_pool(pool);
	free(h);
	free(ticks);
	free(order);
}

static void latency(void)
{
	double idle[3][64], busy[3][64], v[3];
	unsigned long runs = 0;

	for (unsigned r = 0; r < opt.repeat; r++) {
		free_latency(0, v, NULL);
		for (int i = 0; i < 3; i++)
			idle[i][r] = v[i];
		free_latency(1, v, &runs);
		for (int i = 0; i < 3; i++)
			busy[i][r] = v[i];
	}
	printf("\nzs_free latency (ns), half of %zu MiB of pages freed one by one, median of %u\n",
	       opt.size_mib, opt.repeat);
	printf("%-28s %8s %8s %8s\n", "", "p50", "p99", "p99.9");
	printf("%-28s %8.0f %8.0f %8.0f\n", "nothing else running", median(idle[0], opt.repeat),
	       median(idle[1], opt.repeat), median(idle[2], opt.repeat));
	printf("%-28s %8.0f %8.0f %8.0f   (%lu zs_compact runs in the last)\n",
	       "zs_compact looping", median(busy[0], opt.repeat), median(busy[1], opt.repeat),
	       median(busy[2], opt.repeat), runs);
}

static double cpu_seconds(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

static void deferred(void)
{
	size_t n = objects_for(256);
	double lat[2][2][64], cpu[2][64], wall[2][2][64], done[2][2][64], sync_share[64];

	for (unsigned r = 0; r < opt.repeat; r++) {
		for (int d = 0; d < 2; d++) {
			/* caller latency and CPU time, one thread */
			struct zs_pool *pool = zs_create_pool("bench-deferred");
			unsigned long *h = fill(pool, n);
			uint32_t *ticks = malloc(n * sizeof(*ticks));
			double c0 = cpu_seconds();

			for (size_t i = 0; i < n; i++) {
				uint64_t t0 = __rdtsc();
				if (d)
					zs_free_deferred(pool, h[i]);
				else
					zs_free(pool, h[i]);
				ticks[i] = (uint32_t)(__rdtsc() - t0);
			}
			if (d) {
				struct zs_pool_stats st;
				zs_free_deferred_flush(pool);
				zs_pool_stats(pool, &st);
				sync_share[r] = (double)st.deferred_sync / (double)n;
			}
			cpu[d][r] = cpu_seconds() - c0;
			qsort(ticks, n, sizeof(*ticks), cmp_u32);
			lat[d][0][r] = pct(ticks, n, 50);
			lat[d][1][r] = pct(ticks, n, 99);
			zs_destroy_pool(pool);
			free(h);
			free(ticks);

			/* wall time from 1 and 2 threads */
			for (unsigned th = 1; th <= 2; th++) {
				uint64_t flush;
				pool = zs_create_pool("bench-deferred");
				h = fill(pool, n);
				wall[d][th - 1][r] = (double)free_all(pool, h, n, th, d, &flush) * 1e-6;
				done[d][th - 1][r] = (double)flush * 1e-6;
				zs_destroy_pool(pool);
				free(h);
			}
		}
	}
	printf("\nfreeing 256 MiB worth of compressed pages (%zu objects), median of %u\n", n,
	       opt.repeat);
	printf("%-34s %12s %12s %8s\n", "", "zs_free", "deferred", "ratio");
	printf("%-34s %12.0f %12.0f %8.2f\n", "caller latency p50 (ns)", median(lat[0][0], opt.repeat),
	       median(lat[1][0], opt.repeat), median(lat[0][0], opt.repeat) / median(lat[1][0], opt.repeat));
	printf("%-34s %12.0f %12.0f %8.2f\n", "caller latency p99 (ns)", median(lat[0][1], opt.repeat),
	       median(lat[1][1], opt.repeat), median(lat[0][1], opt.repeat) / median(lat[1][1], opt.repeat));
	printf("%-34s %12.1f %12.1f %8.2f\n", "CPU time, all threads (ms)",
	       median(cpu[0], opt.repeat) * 1e3, median(cpu[1], opt.repeat) * 1e3,
	       median(cpu[0], opt.repeat) / median(cpu[1], opt.repeat));
	printf("%-34s %12s %11.1f%%\n", "freed synchronously (no buffer)", "",
	       median(sync_share, opt.repeat) * 100);
	for (int th = 0; th < 2; th++) {
		char label[64];
		snprintf(label, sizeof(label), "callers' wall time, %d thread%s (ms)", th + 1,
			 th ? "s" : "");
		printf("%-34s %12.1f %12.1f %8.2f\n", label, median(wall[0][th], opt.repeat),
		       median(wall[1][th], opt.repeat),
		       median(wall[0][th], opt.repeat) / median(wall[1][th], opt.repeat));
		snprintf(label, sizeof(label), "  until all freed, %d thread%s (ms)", th + 1,
			 th ? "s" : "");
		printf("%-34s %12.1f %12.1f %8.2f\n", label, median(done[0][th], opt.repeat),
		       median(done[1][th], opt.repeat),
		       median(done[0][th], opt.repeat) / median(done[1][th], opt.repeat));
	}
}

int main(int argc, char **argv)
{
	static char *def_paths[] = { "/usr/lib/x86_64-linux-gnu", "/usr/bin", "/usr/include",
				     "/usr/share/doc" };
	static const struct option lo[] = {
		{ "input", required_argument, NULL, 'i' }, { "size", required_argument, NULL, 's' },
		{ "repeat", required_argument, NULL, 'r' }, { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *mode = "all";
	struct blobs b;
	char why[256];
	int c;

	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'i':
			opt.paths = realloc(opt.paths, (opt.npaths + 1) * sizeof(char *));
			opt.paths[opt.npaths++] = optarg;
			break;
		case 's': opt.size_mib = strtoul(optarg, NULL, 0); break;
		case 'r': opt.repeat = (unsigned)atoi(optarg); break;
		default:
			fprintf(stderr, "usage: bench-free [scale|latency|deferred|all] "
					"[--input PATH]... [--size MIB] [--repeat N]\n");
			return c == 'h' ? 0 : 2;
		}
	}
	if (optind < argc)
		mode = argv[optind];
	if (opt.repeat < 1 || opt.repeat > 64)
		opt.repeat = 5;
	if (!opt.npaths) {
		opt.paths = def_paths;
		opt.npaths = 4;
	}
	if (blobs_load(&b, opt.paths, opt.npaths, 64 * 256, "lz4", why, sizeof(why))) {
		fprintf(stderr, "bench-free: %s\n", why);
		return 1;
	}
	B = &b;
	calibrate();
	printf("blobs: lz4-compressed pages from %s..., mean %.0f bytes\n", b.pages.source,
	       (double)b.payload / (double)b.n);
	if (!strcmp(mode, "scale") || !strcmp(mode, "all"))
		scale();
	if (!strcmp(mode, "latency") || !strcmp(mode, "all"))
		latency();
	if (!strcmp(mode, "deferred") || !strcmp(mode, "all"))
		deferred();
	blobs_free(&b);
	return 0;
}
