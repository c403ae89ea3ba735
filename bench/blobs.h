/* SPDX-License-Identifier: MIT */
/*
 * Real data for the allocator benchmarks: pages read from files (or the
 * built-in corpus), compressed one by one, kept as the blobs a zram-like
 * store would hand to its allocator. Same-filled pages are set aside (zram
 * stores them without memory); pages that do not compress below the huge
 * class are kept whole (4096 bytes), as zram stores them.
 */
#ifndef BENCH_BLOBS_H
#define BENCH_BLOBS_H

#include <stddef.h>
#include <stdint.h>

#include "pageset.h"

struct blobs {
	struct bench_pages pages; /* the source pages, in order */
	size_t n;                 /* blobs (pages that are not same-filled) */
	uint32_t *page_of;        /* blob -> page index */
	uint32_t *len;            /* stored size: compressed, or 4096 when huge */
	uint8_t *data;            /* blob i at data + i * BLOB_STRIDE */
	uint64_t payload;         /* sum of len */
	size_t same, huge;
};

#define BLOB_STRIDE 4096

/*
 * Loads up to max_pages pages from paths (NULL/0: the built-in corpus of
 * that many pages) and compresses them with codec. 0 or -errno; a one-line
 * reason in why.
 */
int blobs_load(struct blobs *b, char *const *paths, size_t npaths, size_t max_pages,
	       const char *codec, char *why, size_t whylen);
void blobs_free(struct blobs *b);

static inline const uint8_t *blob(const struct blobs *b, size_t i)
{
	return b->data + i * BLOB_STRIDE;
}

/* A fixed random permutation of 0..n-1 (the same for every store). */
uint32_t *blobs_shuffle(size_t n, uint64_t seed);

/* Median of n doubles (sorts a copy). */
double median(const double *v, size_t n);

#endif /* BENCH_BLOBS_H */
