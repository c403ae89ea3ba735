// SPDX-License-Identifier: MIT
/* Page codecs and stored-size histograms; see codec.h. */
#include "codec.h"

#include <errno.h>
#include <lz4.h>
#include <lz4hc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>
#ifdef BENCH_HAVE_LZO
#include <lzo/lzo1x.h>

/* lzo1x's worst case for a page, as src/zsram/codec.c checks for its own buffer */
#if BENCH_CODEC_BOUND < BENCH_PAGE_SIZE + BENCH_PAGE_SIZE / 16 + 64 + 3
#error "BENCH_CODEC_BOUND below lzo1x's worst case for a page"
#endif
#endif

enum codec_kind { CODEC_LZ4, CODEC_LZ4HC, CODEC_ZSTD, CODEC_LZO };

struct bench_codec {
	enum codec_kind kind;
	int level;
	const char *name;
	void *state; /* lz4hc state, ZSTD_CCtx, or lzo's work memory */
	ZSTD_DCtx *dctx;
};

/* the same level ranges as zsram's codecs (src/zsram/codec.c) */
static const struct {
	const char *name;
	enum codec_kind kind;
	int default_level, min_level, max_level;
} codecs[] = {
	{"lz4", CODEC_LZ4, 1, 1, 65537 /* LZ4_ACCELERATION_MAX */},
	{"lz4hc", CODEC_LZ4HC, LZ4HC_CLEVEL_DEFAULT, 1, LZ4HC_CLEVEL_MAX},
	{"zstd", CODEC_ZSTD, 3, -131072 /* ZSTD_minCLevel() */, 22 /* ZSTD_maxCLevel() */},
#ifdef BENCH_HAVE_LZO
	{"lzo", CODEC_LZO, 1, 1, 1 /* lzo1x-1 */},
#endif
};

const char *bench_codec_names(void)
{
#ifdef BENCH_HAVE_LZO
	return "lz4, lz4hc, zstd, lzo";
#else
	return "lz4, lz4hc, zstd";
#endif
}

#ifdef BENCH_HAVE_LZO
static pthread_once_t lzo_once = PTHREAD_ONCE_INIT;
static int lzo_ok; /* written once under lzo_once */

static void lzo_setup(void)
{
	lzo_ok = lzo_init() == LZO_E_OK;
}
#endif

const char *bench_codec_name(const struct bench_codec *c)
{
	return c->name;
}

static int codec_find(const char *name)
{
	for (size_t i = 0; i < sizeof(codecs) / sizeof(codecs[0]); i++)
		if (strcmp(name, codecs[i].name) == 0)
			return (int)i;
	return -1;
}

int bench_codec_levels(const char *name, int *min, int *max)
{
	int i = codec_find(name);

	if (i < 0)
		return -ENOENT;
	*min = codecs[i].min_level;
	*max = codecs[i].max_level;
	return 0;
}

struct bench_codec *bench_codec_new(const char *name, int level)
{
	struct bench_codec *c;
	int i = codec_find(name);

	if (i < 0) {
		errno = ENOENT;
		return NULL;
	}
	if (level && (level < codecs[i].min_level || level > codecs[i].max_level)) {
		errno = ERANGE;
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->kind = codecs[i].kind;
	c->name = codecs[i].name;
	c->level = level ? level : codecs[i].default_level;
	if (c->kind == CODEC_LZ4HC)
		c->state = malloc((size_t)LZ4_sizeofStateHC());
#ifdef BENCH_HAVE_LZO
	else if (c->kind == CODEC_LZO)
		c->state = pthread_once(&lzo_once, lzo_setup) == 0 && lzo_ok
				   ? malloc(LZO1X_1_MEM_COMPRESS)
				   : NULL;
#endif
	else if (c->kind == CODEC_ZSTD) {
		c->state = ZSTD_createCCtx();
		c->dctx = ZSTD_createDCtx();
		if (!c->dctx) {
			bench_codec_free(c);
			errno = ENOMEM;
			return NULL;
		}
	}
	if (c->kind != CODEC_LZ4 && !c->state) {
		bench_codec_free(c);
		errno = ENOMEM;
		return NULL;
	}
	return c;
}

void bench_codec_free(struct bench_codec *c)
{
	if (!c)
		return;
	if (c->kind == CODEC_ZSTD) {
		ZSTD_freeCCtx(c->state);
		ZSTD_freeDCtx(c->dctx);
	} else {
		free(c->state);
	}
	free(c);
}

int bench_codec_compress(struct bench_codec *c, const void *page, void *dst)
{
	int n;
	size_t z;
#ifdef BENCH_HAVE_LZO
	lzo_uint lz = 0;
#endif

	switch (c->kind) {
	case CODEC_LZ4:
		n = LZ4_compress_fast(page, dst, BENCH_PAGE_SIZE, BENCH_CODEC_BOUND, c->level);
		return n > 0 ? n : -EIO;
	case CODEC_LZ4HC:
		n = LZ4_compress_HC_extStateHC(c->state, page, dst, BENCH_PAGE_SIZE,
					       BENCH_CODEC_BOUND, c->level);
		return n > 0 ? n : -EIO;
	case CODEC_ZSTD:
		z = ZSTD_compressCCtx(c->state, dst, BENCH_CODEC_BOUND, page, BENCH_PAGE_SIZE,
				      c->level);
		return ZSTD_isError(z) ? -EIO : (int)z;
	case CODEC_LZO:
#ifdef BENCH_HAVE_LZO
		/* dst holds lzo's worst case (checked above): it cannot overrun */
		return lzo1x_1_compress(page, BENCH_PAGE_SIZE, dst, &lz, c->state) == LZO_E_OK
			       ? (int)lz
			       : -EIO;
#else
		break;
#endif
	}
	return -EINVAL;
}

int bench_codec_decompress(struct bench_codec *c, const void *src, size_t len, void *page)
{
	size_t z;

#ifdef BENCH_HAVE_LZO
	if (c->kind == CODEC_LZO) {
		lzo_uint n = BENCH_PAGE_SIZE;

		return lzo1x_decompress_safe(src, len, page, &n, NULL) == LZO_E_OK &&
				       n == BENCH_PAGE_SIZE
			       ? 0
			       : -EIO;
	}
#endif
	if (c->kind == CODEC_ZSTD) {
		z = ZSTD_decompressDCtx(c->dctx, page, BENCH_PAGE_SIZE, src, len);
		return !ZSTD_isError(z) && z == BENCH_PAGE_SIZE ? 0 : -EIO;
	}
	return LZ4_decompress_safe(src, page, (int)len, BENCH_PAGE_SIZE) == BENCH_PAGE_SIZE ? 0
											    : -EIO;
}

int bench_codec_stored_size(struct bench_codec *c, const void *page, void *dst, size_t huge)
{
	int n;

	if (bench_page_same_filled(page, NULL))
		return 0;
	n = bench_codec_compress(c, page, dst);
	if (n < 0)
		return n;
	return (size_t)n >= huge ? BENCH_PAGE_SIZE : n;
}

int bench_size_hist_compute(const struct bench_pages *ps, const char *codec, int level, size_t huge,
			    struct bench_size_hist *out)
{
	struct bench_codec *c = bench_codec_new(codec, level);
	uint8_t *dst = malloc(BENCH_CODEC_BOUND);
	int err = 0;

	memset(out, 0, sizeof(*out));
	out->huge_threshold = huge;
	if (!c || !dst) {
		err = c ? -ENOMEM : -errno;
		goto out;
	}
	for (size_t i = 0; i < ps->npages; i++) {
		const uint8_t *page = bench_page(ps, i);
		uint64_t v;
		int n;

		out->pages++;
		if (bench_page_same_filled(page, &v)) {
			out->same++;
			out->zero += v == 0;
			continue;
		}
		n = bench_codec_compress(c, page, dst);
		if (n < 0) {
			err = n;
			goto out;
		}
		out->compressed_bytes += (uint64_t)n;
		if ((size_t)n >= huge) {
			out->huge++;
			out->stored_bytes += BENCH_PAGE_SIZE;
		} else {
			out->bins[n / BENCH_HIST_BIN]++;
			out->stored_bytes += (uint64_t)n;
		}
	}
out:
	bench_codec_free(c);
	free(dst);
	return err;
}

size_t bench_size_hist_quantile(const struct bench_size_hist *h, double q)
{
	size_t n = h->pages - h->same, want = (size_t)(q * (double)n), seen = 0;

	for (size_t b = 0; b < BENCH_HIST_BINS; b++) {
		seen += h->bins[b];
		if (seen > want)
			return (b + 1) * BENCH_HIST_BIN;
	}
	return BENCH_PAGE_SIZE;
}
