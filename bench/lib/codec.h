/* SPDX-License-Identifier: MIT */
/*
 * Page codecs (lz4, lz4hc, zstd, and lzo when built with liblzo2, as
 * zsram) with one context per thread, and the compressed-size figures zram
 * would record for a set of pages: same-filled pages take no space, pages
 * whose compressed size reaches the huge threshold are stored raw (4096
 * bytes), the rest take their compressed size.
 */
#ifndef BENCH_CODEC_H
#define BENCH_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "pageset.h"

/* zs_huge_class_size() of a pool with the default chain size (8): the kernel's value. */
#define BENCH_HUGE_SIZE 3625
/* Room a compression destination needs (any codec, one page). */
#define BENCH_CODEC_BOUND (BENCH_PAGE_SIZE + 1024)

struct bench_codec;

/* Names accepted by bench_codec_new, comma-separated (for help and errors). */
const char *bench_codec_names(void);
/*
 * A codec context for one thread. level 0 = the codec's default (lz4: the
 * acceleration factor, 1; lz4hc: 9; zstd: 3; lzo: 1, its only one). NULL
 * with errno ENOENT for an unknown name, ERANGE for a level outside
 * bench_codec_levels(), ENOMEM.
 */
struct bench_codec *bench_codec_new(const char *name, int level);
/* The levels name accepts (zsram's ranges): 0, or -ENOENT for an unknown name. */
int bench_codec_levels(const char *name, int *min, int *max);
void bench_codec_free(struct bench_codec *c);
const char *bench_codec_name(const struct bench_codec *c);
/*
 * Compresses one page into dst (BENCH_CODEC_BOUND bytes). Returns the
 * compressed length (> 0) or a negative errno.
 */
int bench_codec_compress(struct bench_codec *c, const void *page, void *dst);
/* Decompresses len bytes into one page. 0, or -EIO when it does not yield exactly a page. */
int bench_codec_decompress(struct bench_codec *c, const void *src, size_t len, void *page);

/*
 * The size zram would store for 'page': 0 when same-filled, BENCH_PAGE_SIZE
 * when the compressed size is >= huge, else the compressed size (in dst).
 * Negative errno on codec failure.
 */
int bench_codec_stored_size(struct bench_codec *c, const void *page, void *dst, size_t huge);

#define BENCH_HIST_BIN	256
#define BENCH_HIST_BINS (BENCH_PAGE_SIZE / BENCH_HIST_BIN)

/* Histogram of stored sizes. */
struct bench_size_hist {
	size_t pages;		      /* all pages */
	size_t same;		      /* same-filled pages (zero pages counted in both) */
	size_t zero;		      /* all-zero pages */
	size_t huge;		      /* compressed size >= huge: stored raw */
	size_t bins[BENCH_HIST_BINS]; /* others, by compressed size / BENCH_HIST_BIN */
	uint64_t stored_bytes;	      /* sum of stored sizes (zram's compr_data_size) */
	uint64_t compressed_bytes;    /* sum of compressed sizes of non-same pages */
	size_t huge_threshold;
};

/* Compresses every page. 0, or -ENOENT (unknown codec), -ENOMEM, -EIO. */
int bench_size_hist_compute(const struct bench_pages *ps, const char *codec, int level, size_t huge,
			    struct bench_size_hist *out);
/* The stored size below which 'q' (0..1) of the non-same pages fall (bin resolution). */
size_t bench_size_hist_quantile(const struct bench_size_hist *h, double q);

#endif /* BENCH_CODEC_H */
