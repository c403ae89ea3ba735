/* SPDX-License-Identifier: MIT */
/* Real-data blobs for the allocator benchmarks; see blobs.h. */
#include "blobs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "corpus.h"
#include "prng.h"

static void warn_ignore(void *ctx, const char *msg)
{
	(void)ctx;
	(void)msg;
}

int blobs_load(struct blobs *b, char *const *paths, size_t npaths, size_t max_pages,
	       const char *codec, char *why, size_t whylen)
{
	struct bench_codec *c;
	int err, truncated = 0;

	memset(b, 0, sizeof(*b));
	err = bench_pages_init(&b->pages, npaths ? paths[0] : "built-in corpus");
	/* an equal share of pages from each path, so a mix stays a mix */
	for (size_t i = 0; !err && i < npaths; i++) {
		size_t quota = max_pages ? b->pages.npages + (max_pages - b->pages.npages) /
								     (npaths - i)
					 : 0;
		int e = bench_corpus_read_paths(&b->pages, &paths[i], 1, quota, &truncated,
						warn_ignore, NULL);
		if (e && e != -ENOENT)
			err = e;
	}
	if (!err && !npaths)
		err = bench_corpus_generate(&b->pages, max_pages, 1);
	if (!err && !b->pages.npages)
		err = -ENOENT;
	if (err) {
		snprintf(why, whylen, "cannot read pages: %s", strerror(-err));
		return err;
	}
	c = bench_codec_new(codec, 0);
	b->page_of = calloc(b->pages.npages, sizeof(*b->page_of));
	b->len = calloc(b->pages.npages, sizeof(*b->len));
	b->data = malloc(b->pages.npages * BLOB_STRIDE);
	if (!c || !b->page_of || !b->len || !b->data) {
		snprintf(why, whylen, c ? "out of memory" : "unknown codec %s", codec);
		bench_codec_free(c);
		blobs_free(b);
		return c ? -ENOMEM : -EINVAL;
	}
	for (size_t i = 0; i < b->pages.npages; i++) {
		uint8_t out[BENCH_CODEC_BOUND];
		int n = bench_codec_stored_size(c, bench_page(&b->pages, i), out, BENCH_HUGE_SIZE);

		if (n <= 0) {
			b->same++;
			continue;
		}
		if (n == BENCH_PAGE_SIZE) {
			memcpy(b->data + b->n * BLOB_STRIDE, bench_page(&b->pages, i), n);
			b->huge++;
		} else {
			memcpy(b->data + b->n * BLOB_STRIDE, out, (size_t)n);
		}
		b->page_of[b->n] = (uint32_t)i;
		b->len[b->n] = (uint32_t)n;
		b->payload += (uint64_t)n;
		b->n++;
	}
	bench_codec_free(c);
	return 0;
}

void blobs_free(struct blobs *b)
{
	bench_pages_free(&b->pages);
	free(b->page_of);
	free(b->len);
	free(b->data);
	memset(b, 0, sizeof(*b));
}

uint32_t *blobs_shuffle(size_t n, uint64_t seed)
{
	uint32_t *p = malloc(n * sizeof(*p));
	uint64_t s = seed;

	if (!p)
		return NULL;
	for (size_t i = 0; i < n; i++)
		p[i] = (uint32_t)i;
	for (size_t i = n; i > 1; i--) {
		size_t j = (size_t)(bench_splitmix64(&s) % i);
		uint32_t t = p[i - 1];
		p[i - 1] = p[j];
		p[j] = t;
	}
	return p;
}

static int cmp_double(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;
	return (a > b) - (a < b);
}

double median(const double *v, size_t n)
{
	double *c = malloc(n * sizeof(*c)), m;

	if (!c || !n) {
		free(c);
		return 0;
	}
	memcpy(c, v, n * sizeof(*c));
	qsort(c, n, sizeof(*c), cmp_double);
	m = n % 2 ? c[n / 2] : (c[n / 2 - 1] + c[n / 2]) / 2;
	free(c);
	return m;
}
