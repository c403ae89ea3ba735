/* SPDX-License-Identifier: MIT */
/*
 * bench-density: memory density of libzsmalloc against the kernel's zram on
 * the same real pages, after filling, after freeing a random fraction, and
 * after compaction; RSS-based density including all metadata; how much RSS
 * falls per page compaction frees; what zs_defrag gives back; and the
 * class table's bound: the density if every zspage were full (each object
 * charged its share of a full zspage of its class), against which the
 * partly filled zspages (one per class in use, at least) are what is left.
 *
 *   bench-density [--input PATH]... [--size MIB] [--codec lz4] [--repeat N]
 *                 [--chain N] [--free-fraction F] [--seed N] [--no-zram]
 *
 * Both stores get the same blobs: each page compressed with the codec,
 * same-filled pages left out (zram keeps them without memory), pages that do
 * not compress below the huge class stored whole. zram's density is
 * compr_data_size / mem_used_total from mm_stat; ours is the same payload over
 * zs_get_total_pages() * 4096. Medians over --repeat runs.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blobs.h"
#include "kzram.h"
#include "memstat.h"
#include "timing.h"
#include "zsmalloc.h"

enum { FILL, FREED, COMPACTED, NR_PHASES };

struct result {
	double density[NR_PHASES];
	double rss_density;     /* payload / RSS growth after filling */
	double rss_compacted;   /* live payload / RSS growth after compaction */
	double rss_fall_ratio;  /* RSS fall / (pages compaction freed * 4096) */
	double defrag_chunks;   /* chunks zs_defrag gave back */
	double bound;           /* payload / what it would take with every zspage full */
	double partial_mib;     /* memory held after filling beyond that bound */
	double ok;
};

static struct {
	char **paths;
	size_t npaths;
	size_t size_mib;
	const char *codec;
	unsigned repeat, chain;
	double free_fraction;
	uint64_t seed;
	int zram;
} opt = { .size_mib = 256, .codec = "lz4", .repeat = 3, .chain = 8, .free_fraction = 0.5,
	  .seed = 1, .zram = 1 };

/*
 * The class table's bound after filling: each object charged its share of
 * a full zspage of its class (pages * 4096 / objects; a huge object one
 * page), as if no zspage were partly empty. What the pool holds beyond
 * that is its partly filled zspages (at least one per class in use).
 */
static double class_bound_bytes(struct zs_pool *pool, const struct blobs *b)
{
	static double share_of_index[4096];
	unsigned n = zs_class_count(pool);
	size_t huge = zs_huge_class_size(pool);
	struct zs_class_stats cs;
	double bytes = 0;

	for (unsigned k = 0; k < n; k++)
		if (zs_class_stats(pool, k, &cs) == 0 && cs.index < 4096)
			share_of_index[cs.index] = (double)cs.pages_per_zspage * 4096 /
						   cs.objs_per_zspage;
	for (size_t i = 0; i < b->n; i++) {
		unsigned idx = zs_lookup_class_index(pool, (unsigned)b->len[i] + ZS_OBJ_HEADER_SIZE);

		bytes += b->len[i] >= huge || idx >= 4096 ? 4096 : share_of_index[idx];
	}
	return bytes;
}

static int run_zs(const struct blobs *b, const uint32_t *order, size_t nfree, struct result *r)
{
	struct zs_pool_config cfg = { .chain_size = opt.chain };
	unsigned long *h = calloc(b->n, sizeof(*h));
	uint64_t live = b->payload, rss0, rss1, rss2;
	unsigned long freed;
	struct zs_pool_stats st;
	struct zs_pool *pool;

	memset(h, 0, b->n * sizeof(*h));
	rss0 = bench_rss_anon();
	pool = zs_create_pool_ex("bench-density", &cfg);
	if (!pool)
		return -errno;
	for (size_t i = 0; i < b->n; i++) {
		h[i] = zs_malloc(pool, b->len[i]);
		if (!h[i] || zs_obj_write(pool, h[i], blob(b, i), b->len[i]))
			return -ENOMEM;
	}
	rss1 = bench_rss_anon();
	r->density[FILL] = (double)live / ((double)zs_get_total_pages(pool) * 4096);
	r->rss_density = (double)live / (double)(rss1 - rss0);
	double bound = class_bound_bytes(pool, b);
	r->bound = (double)live / bound;
	r->partial_mib = ((double)zs_get_total_pages(pool) * 4096 - bound) / (1 << 20);

	for (size_t k = 0; k < nfree; k++) {
		size_t i = order[k];
		zs_free(pool, h[i]);
		h[i] = 0;
		live -= b->len[i];
	}
	r->density[FREED] = (double)live / ((double)zs_get_total_pages(pool) * 4096);

	rss1 = bench_rss_anon();
	freed = zs_compact(pool);
	rss2 = bench_rss_anon();
	r->density[COMPACTED] = (double)live / ((double)zs_get_total_pages(pool) * 4096);
	r->rss_compacted = (double)live / (double)(rss2 - rss0);
	r->rss_fall_ratio = freed ? (double)(rss1 - rss2) / ((double)freed * 4096) : 1;

	zs_pool_stats(pool, &st);
	unsigned long chunks = st.chunks_released;
	zs_defrag(pool);
	zs_pool_stats(pool, &st);
	r->defrag_chunks = (double)(st.chunks_released - chunks);

	/* what is left must read back intact */
	r->ok = 1;
	for (size_t i = 0; i < b->n; i++) {
		uint8_t local[4096];
		if (!h[i])
			continue;
		void *p = zs_obj_read_begin(pool, h[i], b->len[i], local);
		if (!p || memcmp(p, blob(b, i), b->len[i]))
			r->ok = 0;
		if (p)
			zs_obj_read_end(pool, h[i], b->len[i], p);
		zs_free(pool, h[i]);
	}
	zs_destroy_pool(pool);
	free(h);
	return 0;
}

static double mm_density(struct bench_kzram *z)
{
	uint64_t v[9];

	if (bench_kzram_mm_stat(z, v) || !v[2])
		return 0;
	return (double)v[1] / (double)v[2];
}

static int run_zram(const struct blobs *b, const uint32_t *order, size_t nfree, struct result *r)
{
	char err[256];
	struct bench_kzram *z =
		bench_kzram_create((uint64_t)b->pages.npages * 4096 + (1 << 20), opt.codec, err,
				   sizeof(err));
	uint8_t *page;

	if (!z) {
		fprintf(stderr, "bench-density: kernel zram: %s\n", err);
		return -ENODEV;
	}
	if (posix_memalign((void **)&page, 4096, 4096))
		return -ENOMEM;
	for (size_t i = 0; i < b->pages.npages; i++) {
		memcpy(page, bench_page(&b->pages, i), 4096);
		if (bench_kzram_write(z, i, page))
			return -EIO;
	}
	r->density[FILL] = mm_density(z);
	for (size_t k = 0; k < nfree; k++)
		bench_kzram_discard(z, b->page_of[order[k]], 1);
	r->density[FREED] = mm_density(z);
	bench_kzram_compact(z);
	r->density[COMPACTED] = mm_density(z);
	r->ok = 1;
	bench_kzram_destroy(z);
	free(page);
	return 0;
}

static void parse(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "input", required_argument, NULL, 'i' },  { "size", required_argument, NULL, 's' },
		{ "codec", required_argument, NULL, 'c' },  { "repeat", required_argument, NULL, 'r' },
		{ "chain", required_argument, NULL, 'n' },  { "free-fraction", required_argument, NULL, 'f' },
		{ "seed", required_argument, NULL, 'S' },   { "no-zram", no_argument, NULL, 'z' },
		{ "help", no_argument, NULL, 'h' },         { NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'i':
			opt.paths = realloc(opt.paths, (opt.npaths + 1) * sizeof(char *));
			opt.paths[opt.npaths++] = optarg;
			break;
		case 's': opt.size_mib = strtoul(optarg, NULL, 0); break;
		case 'c': opt.codec = optarg; break;
		case 'r': opt.repeat = (unsigned)atoi(optarg); break;
		case 'n': opt.chain = (unsigned)atoi(optarg); break;
		case 'f': opt.free_fraction = atof(optarg); break;
		case 'S': opt.seed = strtoull(optarg, NULL, 0); break;
		case 'z': opt.zram = 0; break;
		default:
			fprintf(stderr, "usage: bench-density [--input PATH]... [--size MIB] "
					"[--codec NAME] [--repeat N] [--chain N] [--free-fraction F] "
					"[--seed N] [--no-zram]\n");
			exit(c == 'h' ? 0 : 2);
		}
	}
	if (!opt.repeat)
		opt.repeat = 1;
}

int main(int argc, char **argv)
{
	static char *def_paths[] = { "/usr/lib", "/usr/bin", "/usr/share" };
	struct result zs[16], kz[16];
	char why[256];
	struct blobs b;
	unsigned nz = 0, nk = 0;
	int zram_ok = 0;

	parse(argc, argv);
	if (!opt.npaths) {
		opt.paths = def_paths;
		opt.npaths = 3;
	}
	if (opt.repeat > 16)
		opt.repeat = 16;
	if (blobs_load(&b, opt.paths, opt.npaths, opt.size_mib * 256, opt.codec, why,
		       sizeof(why))) {
		fprintf(stderr, "bench-density: %s\n", why);
		return 1;
	}
	if (opt.zram)
		zram_ok = bench_kzram_available(why, sizeof(why));
	printf("pages: %zu from %s (%zu same-filled, %zu huge), %s payload %.1f MiB, "
	       "ratio %.2f\n",
	       b.pages.npages, b.pages.source, b.same, b.huge, opt.codec,
	       (double)b.payload / (1 << 20),
	       (double)b.pages.npages * 4096 / (double)b.payload);
	if (opt.zram && !zram_ok)
		printf("kernel zram: not measured (%s)\n", why);

	for (unsigned rep = 0; rep < opt.repeat; rep++) {
		uint32_t *order = blobs_shuffle(b.n, opt.seed + rep);
		size_t nfree = (size_t)((double)b.n * opt.free_fraction);

		if (run_zs(&b, order, nfree, &zs[nz]) == 0)
			nz++;
		if (zram_ok && run_zram(&b, order, nfree, &kz[nk]) == 0)
			nk++;
		free(order);
	}

#define MED(arr, n, field)                                                                         \
	({                                                                                         \
		double v_[16];                                                                     \
		for (unsigned i_ = 0; i_ < (n); i_++)                                              \
			v_[i_] = (arr)[i_].field;                                                  \
		median(v_, (n));                                                                   \
	})
	printf("\ndensity = payload / memory held; medians of %u runs\n", opt.repeat);
	printf("%-14s %10s %12s %14s\n", "store", "filled", "freed " "half", "compacted");
	printf("%-14s %10.3f %12.3f %14.3f\n", "zsmalloc", MED(zs, nz, density[FILL]),
	       MED(zs, nz, density[FREED]), MED(zs, nz, density[COMPACTED]));
	printf("%-14s %10.3f %12s %14.3f\n", "  by RSS", MED(zs, nz, rss_density), "",
	       MED(zs, nz, rss_compacted));
	printf("%-14s %10.3f   (every zspage full; partly filled ones hold %.1f MiB more)\n",
	       "  class bound", MED(zs, nz, bound), MED(zs, nz, partial_mib));
	if (nk) {
		printf("%-14s %10.3f %12.3f %14.3f\n", "kernel zram", MED(kz, nk, density[FILL]),
		       MED(kz, nk, density[FREED]), MED(kz, nk, density[COMPACTED]));
		printf("%-14s %10.3f %12.3f %14.3f\n", "ratio", MED(zs, nz, density[FILL]) /
		       MED(kz, nk, density[FILL]), MED(zs, nz, density[FREED]) /
		       MED(kz, nk, density[FREED]), MED(zs, nz, density[COMPACTED]) /
		       MED(kz, nk, density[COMPACTED]));
	}
	printf("\nzsmalloc: RSS fell by %.2f x the pages compaction freed; zs_defrag released "
	       "%.0f chunks; read-back %s\n",
	       MED(zs, nz, rss_fall_ratio), MED(zs, nz, defrag_chunks),
	       MED(zs, nz, ok) == 1 ? "verified" : "FAILED");
	blobs_free(&b);
	return MED(zs, nz, ok) == 1 ? 0 : 1;
}
