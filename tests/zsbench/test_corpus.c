// SPDX-License-Identifier: MIT
/*
 * The built-in corpus: deterministic for a seed (the same bytes on every
 * run, every build: a golden hash), and its lz4 stored-size histogram within
 * the bands docs/corpus.md documents. If you change the generator on
 * purpose, re-run the calibration, update docs/corpus.md and the hash here.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "check.h"
#include "corpus.h"

/* bench_pages_hash of the first GOLDEN_PAGES pages for seed 1. */
#define GOLDEN_PAGES 1024
#define GOLDEN_HASH  UINT64_C(0x890f1d4dc684b614)
#define BAND_PAGES   16384 /* 64 MiB: large enough for stable shares */

static uint64_t corpus_hash(size_t npages, uint64_t seed)
{
	struct bench_pages ps;
	uint64_t h;

	if (bench_pages_init(&ps, "test") || bench_corpus_generate(&ps, npages, seed)) {
		fprintf(stderr, "cannot generate the corpus\n");
		exit(1);
	}
	h = bench_pages_hash(&ps);
	bench_pages_free(&ps);
	return h;
}

static void test_determinism(void)
{
	uint64_t a = corpus_hash(GOLDEN_PAGES, 1), b = corpus_hash(GOLDEN_PAGES, 1);
	uint8_t p1[BENCH_PAGE_SIZE], p2[BENCH_PAGE_SIZE];

	CHECK(a == b, "two runs differ: %016" PRIx64 " vs %016" PRIx64, a, b);
	CHECK(a == GOLDEN_HASH,
	      "seed 1 hash %016" PRIx64 ", expected %016" PRIx64
	      " (generator changed? see docs/corpus.md)",
	      a, GOLDEN_HASH);
	CHECK(corpus_hash(GOLDEN_PAGES, 2) != a, "seeds 1 and 2 give the same pages");
	/* a page depends on (seed, index) only */
	bench_corpus_page(1, 77, p1);
	bench_corpus_page(1, 77, p2);
	CHECK(!memcmp(p1, p2, sizeof(p1)), "page 77 differs between calls");
}

static double share(size_t n, const struct bench_size_hist *h)
{
	return (double)n / (double)h->pages;
}

/* Pages whose stored size falls in [lo, hi) bytes (hi a multiple of the bin). */
static size_t in_range(const struct bench_size_hist *h, int lo, int hi)
{
	size_t n = 0;

	for (int b = lo / BENCH_HIST_BIN; b < hi / BENCH_HIST_BIN; b++)
		n += h->bins[b];
	return n;
}

static void test_bands(uint64_t seed)
{
	struct bench_pages ps;
	struct bench_size_hist h;
	size_t mode = 0, med;

	if (bench_pages_init(&ps, "test") || bench_corpus_generate(&ps, BAND_PAGES, seed) ||
	    bench_size_hist_compute(&ps, "lz4", 0, BENCH_HUGE_SIZE, &h)) {
		fprintf(stderr, "cannot measure the corpus\n");
		exit(1);
	}
	for (int b = 1; b < BENCH_HIST_BINS; b++)
		if (h.bins[b] > h.bins[mode])
			mode = (size_t)b;
	med = bench_size_hist_quantile(&h, 0.5);
	printf("seed %" PRIu64 ": zero %.2f%% same %.2f%% huge %.2f%% 1024-1535 %.2f%% "
	       "768-2047 %.2f%% <512 %.2f%% mode bin %zu median<=%zu stored %.3f\n",
	       seed, 100 * share(h.zero, &h), 100 * share(h.same, &h), 100 * share(h.huge, &h),
	       100 * share(in_range(&h, 1024, 1536), &h), 100 * share(in_range(&h, 768, 2048), &h),
	       100 * share(in_range(&h, 0, 512), &h), mode * BENCH_HIST_BIN, med,
	       (double)h.stored_bytes / ((double)h.pages * BENCH_PAGE_SIZE));
	CHECK(share(h.zero, &h) >= 0.02 && share(h.zero, &h) <= 0.05, "zero pages out of band");
	CHECK(share(h.same, &h) >= 0.025 && share(h.same, &h) <= 0.055, "same-filled out of band");
	CHECK(share(h.huge, &h) >= 0.025 && share(h.huge, &h) <= 0.06,
	      "incompressible out of band");
	CHECK(share(in_range(&h, 1024, 1536), &h) >= 0.25, "peak 1024-1535 below 25%%");
	CHECK(share(in_range(&h, 768, 2048), &h) >= 0.55, "768-2047 below 55%%");
	CHECK(share(in_range(&h, 0, 512), &h) <= 0.08, "too many tiny pages");
	CHECK(mode * BENCH_HIST_BIN >= 1024 && mode * BENCH_HIST_BIN < 1536,
	      "mode bin %zu not in 1024-1535", mode * BENCH_HIST_BIN);
	CHECK(med >= 1280 && med <= 1792, "median bin edge %zu not in 1280..1792", med);
	CHECK((double)h.stored_bytes / ((double)h.pages * BENCH_PAGE_SIZE) >= 0.30 &&
		      (double)h.stored_bytes / ((double)h.pages * BENCH_PAGE_SIZE) <= 0.45,
	      "stored/original out of 0.30..0.45");
	bench_pages_free(&ps);
}

int main(void)
{
	test_determinism();
	test_bands(1);
	test_bands(2);
	if (failures)
		fprintf(stderr, "%d check(s) failed\n", failures);
	return failures ? 1 : 0;
}
