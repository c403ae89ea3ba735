/* SPDX-License-Identifier: MIT */
/*
 * bench-footprint: the footprint and deferred-burst figures of issue 17,
 * on real data (lz4-compressed pages of the given paths, or the built-in
 * corpus), all from one run:
 *
 *   density after filling            stored bytes / RSS growth
 *   density after freeing half       stored bytes / RSS growth, right after
 *     (random) + zs_compact          zs_compact
 *   after freeing everything + 1 s   RSS above the start, zs_get_total_pages
 *   deferred burst                   caller time of zs_free vs zs_free_deferred
 *                                    for every object of a filled pool (the
 *                                    same objects, a fresh pool each), median
 *                                    of --repeat rounds, and the ratio
 *
 *   bench-footprint [--input PATH]... [--size MIB] [--repeat N]
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blobs.h"
#include "memstat.h"
#include "timing.h"
#include "zsmalloc.h"

static struct blobs B;

/* Where the pool's memory is: the figures that add up to its RSS growth. */
static void breakdown(struct zs_pool *pool, uint64_t stored)
{
	struct zs_pool_stats st;
	const double mib = 1048576.0, page = 4096.0;

	zs_pool_stats(pool, &st);
	printf("  zspages %.1f MiB (stored / zspages %.3f), cached beyond them %.1f MiB, "
	       "metadata %.1f MiB, deferred buffers %.2f MiB\n",
	       (double)st.pages_allocated * page / mib,
	       st.pages_allocated ? (double)stored / ((double)st.pages_allocated * page) : 0,
	       (double)(st.pages_resident - st.pages_allocated) * page / mib,
	       (double)st.metadata_bytes / mib, (double)st.deferred_bytes / mib);
}

/* Stores every blob; h (B.n entries) receives the handles. */
static void fill(struct zs_pool *pool, unsigned long *h)
{
	for (size_t i = 0; i < B.n; i++)
		if (!(h[i] = zs_malloc_write(pool, blob(&B, i), B.len[i]))) {
			fprintf(stderr, "bench-footprint: zs_malloc_write failed\n");
			exit(1);
		}
}

/* Caller time of freeing every object, ns per call. */
static double burst(int deferred)
{
	struct zs_pool *pool = zs_create_pool("burst");
	unsigned long *h = malloc(B.n * sizeof(*h));
	uint64_t t0, t1;

	fill(pool, h);

	t0 = bench_now_ns();
	for (size_t i = 0; i < B.n; i++) {
		if (deferred)
			zs_free_deferred(pool, h[i]);
		else
			zs_free(pool, h[i]);
	}
	t1 = bench_now_ns();
	zs_free_deferred_flush(pool);
	if (deferred) {
		struct zs_pool_stats st;
		zs_pool_stats(pool, &st);
		if (st.deferred_sync)
			printf("  (deferred round: %lu synchronous frees)\n", st.deferred_sync);
	}
	zs_destroy_pool(pool);
	free(h);
	return (double)(t1 - t0) / (double)B.n;
}

int main(int argc, char **argv)
{
	char *paths[16], why[256];
	size_t npaths = 0, size_mib = 256;
	unsigned repeat = 5;
	int c;

	while ((c = getopt_long(argc, argv, "i:s:r:",
				(const struct option[]){ { "input", 1, NULL, 'i' },
							 { "size", 1, NULL, 's' },
							 { "repeat", 1, NULL, 'r' },
							 { NULL, 0, NULL, 0 } },
				NULL)) != -1) {
		if (c == 'i' && npaths < 16)
			paths[npaths++] = optarg;
		else if (c == 's')
			size_mib = strtoul(optarg, NULL, 0);
		else if (c == 'r')
			repeat = (unsigned)strtoul(optarg, NULL, 0);
		else
			return 2;
	}
	if (blobs_load(&B, paths, npaths, size_mib * 256, "lz4", why, sizeof(why))) {
		fprintf(stderr, "bench-footprint: %s\n", why);
		return 1;
	}
	printf("%zu objects, %.1f MiB stored (of %zu pages)\n", B.n, B.payload / 1048576.0,
	       B.pages.npages);

	/* this program's own arrays exist before the start figure, so that
	 * the growth is the pool's alone (0.7 MiB of 99 counted otherwise) */
	struct zs_pool *pool = zs_create_pool("footprint");
	unsigned long *h = calloc(B.n, sizeof(*h));
	uint32_t *order = blobs_shuffle(B.n, 42);
	uint64_t stored = B.payload, half = 0, rss;

	if (!h || !order)
		return 1;
	memset(h, 0xff, B.n * sizeof(*h)); /* resident now, not during the fill */
	uint64_t rss0 = bench_rss_anon();
	fill(pool, h);

	rss = bench_rss_anon();
	printf("density after filling:              %.3f (RSS +%.1f MiB)\n",
	       (double)stored / (double)(rss - rss0), (rss - rss0) / 1048576.0);
	breakdown(pool, stored);
	for (size_t i = 0; i < B.n / 2; i++) {
		zs_free(pool, h[order[i]]);
		half += B.len[order[i]];
	}
	zs_compact(pool);
	rss = bench_rss_anon();
	printf("density after freeing half+compact: %.3f (RSS +%.1f MiB)\n",
	       (double)(stored - half) / (double)(rss - rss0), (rss - rss0) / 1048576.0);
	breakdown(pool, stored - half);
	for (size_t i = B.n / 2; i < B.n; i++)
		zs_free(pool, h[order[i]]);
	sleep(1);
	rss = bench_rss_anon();
	printf("after freeing all + 1 s idle:       RSS %+.2f MiB vs start, %lu pages in zspages\n",
	       ((double)rss - (double)rss0) / 1048576.0, zs_get_total_pages(pool));
	zs_destroy_pool(pool);
	free(h);
	free(order);

	double *sync = calloc(repeat, sizeof(double)), *def = calloc(repeat, sizeof(double));
	double *ratio = calloc(repeat, sizeof(double));
	for (unsigned r = 0; r < repeat; r++) {
		sync[r] = burst(0);
		def[r] = burst(1);
		ratio[r] = sync[r] / def[r];
	}
	printf("burst of %zu frees, caller ns/call (median of %u): zs_free %.1f, "
	       "zs_free_deferred %.1f; speed ratio %.2fx (median of per-round ratios)\n",
	       B.n, repeat, median(sync, repeat), median(def, repeat), median(ratio, repeat));
	blobs_free(&B);
	return 0;
}
