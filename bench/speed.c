/* SPDX-License-Identifier: MIT */
/*
 * bench-speed: single-thread allocation speed of libzsmalloc against
 * mimalloc on the sizes of real compressed pages, in the same run.
 *
 *   churn      a store's steady state: a live set of --live objects; each
 *              step frees a random one and stores a new blob in its place
 *              (zs_free + zs_malloc + zs_obj_write, against
 *              mi_free + mi_malloc + memcpy)
 *   cycle      allocate, write and free one blob at a time (zs_malloc_write,
 *              the one call a store makes, + zs_free)
 *   read       zs_obj_read_begin/end of the whole blob plus a read of its
 *              bytes, against reading the same bytes through a pointer
 *
 *   bench-speed [--input PATH]... [--size MIB] [--live N] [--ops N] [--repeat N] [--wall]
 *
 * Medians over --repeat runs; the ratio is zsmalloc's rate over mimalloc's.
 * Times are the process's CPU time, every thread's (--wall: wall time), so
 * that other processes on a shared machine do not count while the work the
 * pool hands to its own threads (the arena worker's madvise, RCU frees of
 * zspage descriptors) still does.
 */
#include <errno.h>
#include <getopt.h>
#include <mimalloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blobs.h"
#include "prng.h"
#include "timing.h"
#include "zsmalloc.h"

static struct {
	char **paths;
	size_t npaths, size_mib, live, ops;
	unsigned repeat;
} opt = { .size_mib = 128, .live = 100000, .ops = 2000000, .repeat = 5 };

static int use_wall;
static const struct blobs *B;
static uint32_t *pick, *src; /* per step: which live slot, which blob */
static volatile uint64_t sink;

static uint64_t now_ns(void)
{
	return use_wall ? bench_now_ns() : bench_process_cpu_ns();
}

static uint64_t sum_bytes(const uint8_t *p, size_t len)
{
	uint64_t s = 0;
	for (size_t i = 0; i < len; i += 64)
		s += p[i];
	return s;
}

static double zs_churn(void)
{
	struct zs_pool *pool = zs_create_pool("bench-speed");
	unsigned long *h = calloc(opt.live, sizeof(*h));
	uint32_t *len = calloc(opt.live, sizeof(*len));
	uint64_t t0;
	double rate;

	for (size_t i = 0; i < opt.live; i++) {
		len[i] = B->len[i % B->n];
		h[i] = zs_malloc(pool, len[i]);
		zs_obj_write(pool, h[i], blob(B, i % B->n), len[i]);
	}
	t0 = now_ns();
	for (size_t k = 0; k < opt.ops; k++) {
		uint32_t i = pick[k], b = src[k];
		zs_free(pool, h[i]);
		len[i] = B->len[b];
		h[i] = zs_malloc(pool, len[i]);
		zs_obj_write(pool, h[i], blob(B, b), len[i]);
	}
	rate = (double)opt.ops / ((double)(now_ns() - t0) * 1e-9);
	zs_destroy_pool(pool);
	free(h);
	free(len);
	return rate;
}

static double mi_churn(void)
{
	void **p = calloc(opt.live, sizeof(*p));
	uint64_t t0;
	double rate;

	for (size_t i = 0; i < opt.live; i++) {
		p[i] = mi_malloc(B->len[i % B->n]);
		memcpy(p[i], blob(B, i % B->n), B->len[i % B->n]);
	}
	t0 = now_ns();
	for (size_t k = 0; k < opt.ops; k++) {
		uint32_t i = pick[k], b = src[k];
		mi_free(p[i]);
		p[i] = mi_malloc(B->len[b]);
		memcpy(p[i], blob(B, b), B->len[b]);
	}
	rate = (double)opt.ops / ((double)(now_ns() - t0) * 1e-9);
	for (size_t i = 0; i < opt.live; i++)
		mi_free(p[i]);
	free(p);
	return rate;
}

static double zs_cycle(void)
{
	struct zs_pool *pool = zs_create_pool("bench-speed");
	uint64_t t0 = now_ns();
	double rate;

	for (size_t k = 0; k < opt.ops; k++) {
		uint32_t b = src[k];
		unsigned long h = zs_malloc_write(pool, blob(B, b), B->len[b]);

		zs_free(pool, h);
	}
	rate = (double)opt.ops / ((double)(now_ns() - t0) * 1e-9);
	zs_destroy_pool(pool);
	return rate;
}

static double mi_cycle(void)
{
	uint64_t t0 = now_ns();

	for (size_t k = 0; k < opt.ops; k++) {
		uint32_t b = src[k];
		void *p = mi_malloc(B->len[b]);
		memcpy(p, blob(B, b), B->len[b]);
		__asm__ __volatile__("" : : "r"(p) : "memory");
		mi_free(p);
	}
	return (double)opt.ops / ((double)(now_ns() - t0) * 1e-9);
}

/* Reads of the live set in random order: *zs_rate and *mi_rate. */
static void reads(double *zs_rate, double *mi_rate)
{
	struct zs_pool *pool = zs_create_pool("bench-speed");
	unsigned long *h = calloc(opt.live, sizeof(*h));
	void **p = calloc(opt.live, sizeof(*p));
	uint8_t local[4096];
	uint64_t t0, s = 0;

	for (size_t i = 0; i < opt.live; i++) {
		uint32_t len = B->len[i % B->n];
		h[i] = zs_malloc(pool, len);
		zs_obj_write(pool, h[i], blob(B, i % B->n), len);
		p[i] = mi_malloc(len);
		memcpy(p[i], blob(B, i % B->n), len);
	}
	t0 = now_ns();
	for (size_t k = 0; k < opt.ops; k++) {
		uint32_t i = pick[k], len = B->len[i % B->n];
		void *q = zs_obj_read_begin(pool, h[i], len, local);
		s += sum_bytes(q, len);
		zs_obj_read_end(pool, h[i], len, q);
	}
	*zs_rate = (double)opt.ops / ((double)(now_ns() - t0) * 1e-9);
	t0 = now_ns();
	for (size_t k = 0; k < opt.ops; k++) {
		uint32_t i = pick[k];
		s += sum_bytes(p[i], B->len[i % B->n]);
	}
	*mi_rate = (double)opt.ops / ((double)(now_ns() - t0) * 1e-9);
	sink = s;
	for (size_t i = 0; i < opt.live; i++)
		mi_free(p[i]);
	zs_destroy_pool(pool);
	free(h);
	free(p);
}

static void parse(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "input", required_argument, NULL, 'i' }, { "size", required_argument, NULL, 's' },
		{ "live", required_argument, NULL, 'l' },  { "ops", required_argument, NULL, 'o' },
		{ "repeat", required_argument, NULL, 'r' }, { "wall", no_argument, NULL, 'w' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'i':
			opt.paths = realloc(opt.paths, (opt.npaths + 1) * sizeof(char *));
			opt.paths[opt.npaths++] = optarg;
			break;
		case 's': opt.size_mib = strtoul(optarg, NULL, 0); break;
		case 'l': opt.live = strtoul(optarg, NULL, 0); break;
		case 'o': opt.ops = strtoul(optarg, NULL, 0); break;
		case 'r': opt.repeat = (unsigned)atoi(optarg); break;
		case 'w': use_wall = 1; break;
		default:
			fprintf(stderr, "usage: bench-speed [--input PATH]... [--size MIB] "
					"[--live N] [--ops N] [--repeat N] [--wall]\n");
			exit(c == 'h' ? 0 : 2);
		}
	}
	if (opt.repeat < 1 || opt.repeat > 64)
		opt.repeat = 5;
}

int main(int argc, char **argv)
{
	static char *def_paths[] = { "/usr/lib/x86_64-linux-gnu", "/usr/bin", "/usr/include",
				     "/usr/share/doc" };
	double zc[64], mc[64], zy[64], my[64], zr[64], mr[64];
	struct bench_rng rng;
	struct blobs b;
	char why[256];

	parse(argc, argv);
	if (!opt.npaths) {
		opt.paths = def_paths;
		opt.npaths = 4;
	}
	if (blobs_load(&b, opt.paths, opt.npaths, opt.size_mib * 256, "lz4", why, sizeof(why))) {
		fprintf(stderr, "bench-speed: %s\n", why);
		return 1;
	}
	B = &b;
	pick = malloc(opt.ops * sizeof(*pick));
	src = malloc(opt.ops * sizeof(*src));
	bench_rng_seed(&rng, 42);
	for (size_t k = 0; k < opt.ops; k++) {
		pick[k] = (uint32_t)bench_rng_below(&rng, opt.live);
		src[k] = (uint32_t)bench_rng_below(&rng, b.n);
	}
	printf("%zu blobs of lz4-compressed pages from %s..., mean %.0f bytes; live set %zu, "
	       "%zu ops, %u runs\n",
	       b.n, b.pages.source, (double)b.payload / (double)b.n, opt.live, opt.ops,
	       opt.repeat);
	/* alternate the two so that machine noise hits both alike */
	for (unsigned r = 0; r < opt.repeat; r++) {
		zc[r] = zs_churn();
		mc[r] = mi_churn();
		zy[r] = zs_cycle();
		my[r] = mi_cycle();
		reads(&zr[r], &mr[r]);
	}
	printf("\n%-44s %12s %12s %7s\n", "operations per second (median)", "zsmalloc",
	       "mimalloc", "ratio");
	printf("%-44s %11.2fM %11.2fM %7.2f\n", "churn: free + malloc + write (live set)",
	       median(zc, opt.repeat) / 1e6, median(mc, opt.repeat) / 1e6,
	       median(zc, opt.repeat) / median(mc, opt.repeat));
	printf("%-44s %11.2fM %11.2fM %7.2f\n", "cycle: malloc_write + free (one object)",
	       median(zy, opt.repeat) / 1e6, median(my, opt.repeat) / 1e6,
	       median(zy, opt.repeat) / median(my, opt.repeat));
	printf("%-44s %11.2fM %11.2fM %7.2f\n", "read: read_begin + read bytes + read_end",
	       median(zr, opt.repeat) / 1e6, median(mr, opt.repeat) / 1e6,
	       median(zr, opt.repeat) / median(mr, opt.repeat));
	blobs_free(&b);
	return 0;
}
