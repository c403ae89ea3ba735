/* SPDX-License-Identifier: MIT */
/*
 * bench-store: zsram's store and load speed against the raw codec on the
 * same real pages, in the same process, one thread (issue 17).
 *
 *   raw write      the codec compresses each page into a plain buffer
 *                  (packed, touched beforehand)
 *   zsram fill     zsram_write_page of each page into an empty store
 *   zsram overwr.  zsram_write_page of the same pages into the same slots
 *                  again (the old objects go to the deferred free)
 *   raw read       the codec decompresses each page from that buffer
 *   zsram read     zsram_read_page of each page
 *
 *   bench-store [--input PATH]... [--size MIB] [--codec NAME[,NAME]...] [--repeat N]
 *               [--wall]
 *
 * Pages: those of the inputs that are not same-filled (zsram stores those
 * without compressing; leaving them out compares the codec work alone).
 * Each codec runs a warm-up round first (codec contexts, the store's
 * threads, code and the pages' cache state); then --repeat rounds, each
 * alternating raw and zsram passes so that machine noise hits both alike.
 * Rates are of uncompressed bytes (MB = 10^6 bytes) per second of the
 * calling thread's CPU time (--wall: of wall time), so that other processes
 * on a shared machine do not count; medians over the rounds, and the ratio
 * of the zsram median to the raw median of the same run. The store's own
 * threads (deferred free, the arena's worker) are not counted either way:
 * taking work off the caller's thread is their point.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blobs.h"
#include "codec.h"
#include "timing.h"
#include "zsram.h"

static struct {
	char **paths;
	size_t npaths, size_mib;
	const char *codecs;
	unsigned repeat;
	int wall;
} opt = { .size_mib = 128, .codecs = "lz4,zstd", .repeat = 5 };

static struct blobs B;
static const uint8_t **pages; /* the pages measured: B's non-same-filled ones */
static size_t npages;
static uint8_t *packed;    /* raw write's output, packed */
static uint32_t *raw_off;  /* page i's compressed bytes at packed + raw_off[i] */
static uint32_t *raw_len;
static volatile uint64_t sink;

enum { RAW_FILL, ZS_FILL, RAW_OVER, ZS_OVER, RAW_READ, ZS_READ, NR_PASSES };

static uint64_t now_ns(void)
{
	return opt.wall ? bench_now_ns() : bench_thread_cpu_ns();
}

static double rate(uint64_t ns)
{
	return ns ? (double)npages * BENCH_PAGE_SIZE / ((double)ns * 1e-9) / 1e6 : 0;
}

static double raw_write(struct bench_codec *c)
{
	uint64_t t0 = now_ns();
	size_t off = 0;

	for (size_t i = 0; i < npages; i++) {
		int n = bench_codec_compress(c, pages[i], packed + off);

		if (n < 0) {
			fprintf(stderr, "bench-store: compression failed\n");
			exit(1);
		}
		raw_off[i] = (uint32_t)off;
		raw_len[i] = (uint32_t)n;
		off += (size_t)n;
	}
	return rate(now_ns() - t0);
}

static double raw_read(struct bench_codec *c)
{
	static uint8_t page[BENCH_PAGE_SIZE] __attribute__((aligned(64)));
	uint64_t t0 = now_ns(), s = 0;

	for (size_t i = 0; i < npages; i++) {
		if (bench_codec_decompress(c, packed + raw_off[i], raw_len[i], page)) {
			fprintf(stderr, "bench-store: decompression failed\n");
			exit(1);
		}
		s += page[i % BENCH_PAGE_SIZE];
	}
	sink = s;
	return rate(now_ns() - t0);
}

static double zs_write(struct zsram *zr)
{
	uint64_t t0 = now_ns();

	for (size_t i = 0; i < npages; i++) {
		int err = zsram_write_page(zr, i, pages[i]);

		if (err) {
			fprintf(stderr, "bench-store: zsram_write_page: %s\n", strerror(-err));
			exit(1);
		}
	}
	return rate(now_ns() - t0);
}

static double zs_read(struct zsram *zr, int verify)
{
	static uint8_t page[BENCH_PAGE_SIZE] __attribute__((aligned(64)));
	uint64_t t0 = now_ns(), s = 0;
	double r;

	for (size_t i = 0; i < npages; i++) {
		if (zsram_read_page(zr, i, page)) {
			fprintf(stderr, "bench-store: zsram_read_page failed\n");
			exit(1);
		}
		s += page[i % BENCH_PAGE_SIZE];
	}
	r = rate(now_ns() - t0);
	sink = s;
	for (size_t i = 0; verify && i < npages; i++) {
		zsram_read_page(zr, i, page);
		if (memcmp(page, pages[i], BENCH_PAGE_SIZE) != 0) {
			fprintf(stderr, "bench-store: page %zu read back wrong\n", i);
			exit(1);
		}
	}
	return r;
}

/* One round: the six passes, alternating raw and zsram, into v[pass]. */
static void round_once(const char *codec, struct bench_codec *c, double *v, int verify)
{
	struct zsram_config cfg = { .disksize = (uint64_t)npages * BENCH_PAGE_SIZE,
				    .algorithm = codec };
	struct zsram *zr = zsram_create(&cfg);

	if (!zr) {
		fprintf(stderr, "bench-store: zsram_create: %s\n", strerror(errno));
		exit(1);
	}
	v[RAW_FILL] = raw_write(c);
	v[ZS_FILL] = zs_write(zr);
	v[RAW_OVER] = raw_write(c);
	v[ZS_OVER] = zs_write(zr);
	v[RAW_READ] = raw_read(c);
	v[ZS_READ] = zs_read(zr, verify);
	zsram_destroy(zr);
}

static void min_max(const double *v, unsigned n, double *lo, double *hi)
{
	*lo = *hi = v[0];
	for (unsigned i = 1; i < n; i++) {
		if (v[i] < *lo)
			*lo = v[i];
		if (v[i] > *hi)
			*hi = v[i];
	}
}

static void run_codec(const char *codec)
{
	static const char *const what[] = { "write, fill", "write, overwrite", "read" };
	double v[NR_PASSES][64], one[NR_PASSES], m[NR_PASSES];
	struct bench_codec *c = bench_codec_new(codec, 0);

	if (!c) {
		fprintf(stderr, "bench-store: codec %s: %s\n", codec, strerror(errno));
		exit(2);
	}
	round_once(codec, c, one, 1); /* warm-up, with a read-back check */
	for (unsigned r = 0; r < opt.repeat; r++) {
		round_once(codec, c, one, 0);
		for (int p = 0; p < NR_PASSES; p++)
			v[p][r] = one[p];
	}
	for (int p = 0; p < NR_PASSES; p++)
		m[p] = median(v[p], opt.repeat);
	for (int k = 0; k < 3; k++) {
		int raw = 2 * k, zs = 2 * k + 1;
		double rlo, rhi, zlo, zhi;
		char label[64];

		min_max(v[raw], opt.repeat, &rlo, &rhi);
		min_max(v[zs], opt.repeat, &zlo, &zhi);
		snprintf(label, sizeof(label), "%s %s", codec, what[k]);
		printf("%-22s %9.0f %9.0f %7.3f   raw %.0f..%.0f, zsram %.0f..%.0f\n", label, m[raw],
		       m[zs], m[zs] / m[raw], rlo, rhi, zlo, zhi);
	}
	bench_codec_free(c);
}

static void parse(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "input", required_argument, NULL, 'i' }, { "size", required_argument, NULL, 's' },
		{ "codec", required_argument, NULL, 'c' }, { "repeat", required_argument, NULL, 'r' },
		{ "wall", no_argument, NULL, 'w' },	   { "help", no_argument, NULL, 'h' },
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
		case 'c': opt.codecs = optarg; break;
		case 'r': opt.repeat = (unsigned)atoi(optarg); break;
		case 'w': opt.wall = 1; break;
		default:
			fprintf(stderr, "usage: bench-store [--input PATH]... [--size MIB] "
					"[--codec NAME[,NAME]...] [--repeat N] [--wall]\n");
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
	size_t payload = 0;
	char why[256], *names, *save = NULL;

	parse(argc, argv);
	if (!opt.npaths) {
		opt.paths = def_paths;
		opt.npaths = 4;
	}
	if (blobs_load(&B, opt.paths, opt.npaths, opt.size_mib * 256, "lz4", why, sizeof(why))) {
		fprintf(stderr, "bench-store: %s\n", why);
		return 1;
	}
	npages = B.n;
	pages = malloc(npages * sizeof(*pages));
	raw_off = malloc(npages * sizeof(*raw_off));
	raw_len = malloc(npages * sizeof(*raw_len));
	packed = malloc(npages * (size_t)BENCH_CODEC_BOUND);
	if (!pages || !raw_off || !raw_len || !packed) {
		fprintf(stderr, "bench-store: out of memory\n");
		return 1;
	}
	memset(packed, 0, npages * (size_t)BENCH_CODEC_BOUND); /* touched: no faults timed */
	for (size_t i = 0; i < npages; i++) {
		pages[i] = bench_page(&B.pages, B.page_of[i]);
		payload += B.len[i];
	}
	printf("%zu pages (%zu same-filled left out) from %s..., lz4 stores them in %.1f %%; "
	       "%u rounds after a warm-up, 1 thread, %s time\n\n",
	       npages, B.same, B.pages.source, 100.0 * (double)payload / (double)npages / 4096,
	       opt.repeat, opt.wall ? "wall" : "thread CPU");
	printf("%-22s %9s %9s %7s\n", "MB/s (median)", "raw", "zsram", "ratio");
	names = strdup(opt.codecs); /* strtok_r writes into it */
	for (char *name = strtok_r(names, ",", &save); name;
	     name = strtok_r(NULL, ",", &save))
		run_codec(name);
	free(names);
	free(pages);
	free(raw_off);
	free(raw_len);
	free(packed);
	blobs_free(&B);
	return 0;
}
