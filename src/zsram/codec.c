/* SPDX-License-Identifier: MIT */
/*
 * codec.c: lz4, lz4hc, zstd and (when built with liblzo2) lzo behind one
 * ops table, and the per-thread scratch state (see codec.h).
 *
 * Each thread keeps its lz4/lz4hc state and zstd contexts (no per-page
 * allocation or 16 KiB stack state). lz4 uses the one-shot extState call:
 * it picks the 16-bit table for inputs under 64 KiB, which measured ~35 %
 * faster on 4 KiB pages than LZ4_resetStream_fast() + _continue() (always
 * the 32-bit table) despite clearing the table per page. lz4hc and zstd
 * stop at 'cap', so an incompressible page is given up on as soon as it
 * shows; lz4 (see lz4_compress) and lzo compress into room for their worst
 * case.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <lz4.h>
#include <lz4hc.h>
#include <zstd.h>
#include <zstd_errors.h>
#ifdef ZSRAM_HAVE_LZO
#include <lzo/lzo1x.h>
#endif

#include "codec.h"
#include "../fault.h"

#if CODEC_DST_SIZE < ZSRAM_PAGE_SIZE + ZSRAM_PAGE_SIZE / 16 + 64 + 3
#error "CODEC_DST_SIZE below lzo1x's worst case for a page"
#endif
_Static_assert(CODEC_DST_SIZE >= LZ4_COMPRESSBOUND(ZSRAM_PAGE_SIZE),
	       "CODEC_DST_SIZE below lz4's worst case for a page");

/* ------------------------------------------------------------------ */
/* lz4: level = acceleration factor                                    */

static void *lz4_create(int level)
{
	(void)level;
	return LZ4_createStream();
}

static void lz4_destroy(void *state)
{
	LZ4_freeStream(state);
}

/*
 * Compresses into the whole destination, not into cap: with room for the
 * worst case, lz4 takes its unchecked output path -- 3.3 % fewer
 * instructions (callgrind) and ~2 % less time on pages that compress, all
 * but a few. Giving up at cap would gain only on incompressible pages
 * (~9 % of their time), which lz4 skips through several times faster
 * anyway.
 */
static int lz4_compress(void *state, int level, const void *src, void *dst, size_t cap)
{
	int n = LZ4_compress_fast_extState(state, src, dst, ZSRAM_PAGE_SIZE, CODEC_DST_SIZE, level);

	return n > 0 && (size_t)n <= cap ? n : 0; /* 0: does not fit in cap */
}

static int lz4_decompress(void *state, const void *src, size_t len, void *dst)
{
	(void)state;
	return LZ4_decompress_safe(src, dst, (int)len, ZSRAM_PAGE_SIZE) == ZSRAM_PAGE_SIZE ? 0
											   : -EIO;
}

static const struct codec_ops lz4_ops = {
	.name = "lz4",
	.min_level = 1,
	.max_level = 65537, /* LZ4_ACCELERATION_MAX */
	.default_level = 1,
	.stateless_decompress = true,
	.create = lz4_create,
	.destroy = lz4_destroy,
	.compress = lz4_compress,
	.decompress = lz4_decompress,
};

/* ------------------------------------------------------------------ */
/* lz4hc                                                               */

static void *lz4hc_create(int level)
{
	(void)level;
	return LZ4_createStreamHC();
}

static void lz4hc_destroy(void *state)
{
	LZ4_freeStreamHC(state);
}

static int lz4hc_compress(void *state, int level, const void *src, void *dst, size_t cap)
{
	int n = LZ4_compress_HC_extStateHC(state, src, dst, ZSRAM_PAGE_SIZE, (int)cap, level);

	return n > 0 ? n : 0;
}

static const struct codec_ops lz4hc_ops = {
	.name = "lz4hc",
	.min_level = 1,
	.max_level = LZ4HC_CLEVEL_MAX,
	.default_level = LZ4HC_CLEVEL_DEFAULT,
	.stateless_decompress = true,
	.create = lz4hc_create,
	.destroy = lz4hc_destroy,
	.compress = lz4hc_compress,
	.decompress = lz4_decompress,
};

/* ------------------------------------------------------------------ */
/* zstd                                                                */

struct zstd_state {
	ZSTD_CCtx *cctx; /* created on first compression */
	ZSTD_DCtx *dctx; /* created on first decompression */
};

static void *zstd_create(int level)
{
	(void)level;
	return calloc(1, sizeof(struct zstd_state));
}

static void zstd_destroy(void *state)
{
	struct zstd_state *z = state;

	ZSTD_freeCCtx(z->cctx);
	ZSTD_freeDCtx(z->dctx);
	free(z);
}

static int zstd_compress(void *state, int level, const void *src, void *dst, size_t cap)
{
	struct zstd_state *z = state;
	size_t n;

	if (!z->cctx && !(z->cctx = ZSTD_createCCtx()))
		return -ENOMEM;
	n = ZSTD_compressCCtx(z->cctx, dst, cap, src, ZSRAM_PAGE_SIZE, level);
	if (!ZSTD_isError(n))
		return (int)n;
	return ZSTD_getErrorCode(n) == ZSTD_error_dstSize_tooSmall ? 0 : -EIO;
}

static int zstd_decompress(void *state, const void *src, size_t len, void *dst)
{
	struct zstd_state *z = state;
	size_t n;

	if (!z->dctx && !(z->dctx = ZSTD_createDCtx()))
		return -ENOMEM;
	n = ZSTD_decompressDCtx(z->dctx, dst, ZSRAM_PAGE_SIZE, src, len);
	return !ZSTD_isError(n) && n == ZSRAM_PAGE_SIZE ? 0 : -EIO;
}

static const struct codec_ops zstd_ops = {
	.name = "zstd",
	.min_level = -131072, /* ZSTD_minCLevel() */
	.max_level = 22,      /* ZSTD_maxCLevel() */
	.default_level = 3,   /* ZSTD_CLEVEL_DEFAULT */
	.create = zstd_create,
	.destroy = zstd_destroy,
	.compress = zstd_compress,
	.decompress = zstd_decompress,
};

/* ------------------------------------------------------------------ */
/* lzo (lzo1x-1; one level)                                            */

#ifdef ZSRAM_HAVE_LZO
static pthread_once_t lzo_once = PTHREAD_ONCE_INIT;
static int lzo_ok; /* written once under lzo_once */

static void lzo_setup(void)
{
	lzo_ok = lzo_init() == LZO_E_OK;
}

static void *lzo_create(int level)
{
	(void)level;
	pthread_once(&lzo_once, lzo_setup);
	return lzo_ok ? malloc(LZO1X_1_MEM_COMPRESS) : NULL;
}

static void lzo_destroy(void *state)
{
	free(state);
}

static int lzo_compress(void *state, int level, const void *src, void *dst, size_t cap)
{
	lzo_uint n = 0;

	(void)level;
	/* cannot stop early: dst holds lzo's worst case (checked above) */
	if (lzo1x_1_compress(src, ZSRAM_PAGE_SIZE, dst, &n, state) != LZO_E_OK)
		return -EIO;
	return n <= cap ? (int)n : 0;
}

static int lzo_decompress(void *state, const void *src, size_t len, void *dst)
{
	lzo_uint n = ZSRAM_PAGE_SIZE;

	(void)state;
	if (lzo1x_decompress_safe(src, len, dst, &n, NULL) != LZO_E_OK || n != ZSRAM_PAGE_SIZE)
		return -EIO;
	return 0;
}

static const struct codec_ops lzo_ops = {
	.name = "lzo",
	.min_level = 1,
	.max_level = 1,
	.default_level = 1,
	.stateless_decompress = true,
	.create = lzo_create,
	.destroy = lzo_destroy,
	.compress = lzo_compress,
	.decompress = lzo_decompress,
};
#endif

static const struct codec_ops *const codecs[] = {
	&lz4_ops,
	&lz4hc_ops,
	&zstd_ops,
#ifdef ZSRAM_HAVE_LZO
	&lzo_ops,
#endif
};

const char *codec_names(void)
{
#ifdef ZSRAM_HAVE_LZO
	return "lz4 lz4hc zstd lzo";
#else
	return "lz4 lz4hc zstd";
#endif
}

int codec_init(struct codec *c, const char *name, int level)
{
	for (size_t i = 0; i < sizeof(codecs) / sizeof(codecs[0]); i++) {
		const struct codec_ops *ops = codecs[i];

		if (strcmp(name, ops->name) != 0)
			continue;
		if (level == 0)
			level = ops->default_level;
		if (level < ops->min_level || level > ops->max_level)
			return -EINVAL;
		c->ops = ops;
		c->level = level;
		return 0;
	}
	return -EINVAL;
}

/* ------------------------------------------------------------------ */
/* Per-thread scratch state                                            */

static __thread struct codec_tls *tls_cur; /* this thread's, or NULL */
static pthread_key_t tls_key;
static pthread_once_t tls_key_once = PTHREAD_ONCE_INIT;
static int tls_key_err; /* written once under tls_key_once */

static void tls_free(void *arg)
{
	struct codec_tls *t = arg;

	for (int i = 0; i < CODEC_TLS_CTX; i++)
		if (t->ctx[i].ops)
			t->ctx[i].ops->destroy(t->ctx[i].state);
	if (tls_cur == t)
		tls_cur = NULL;
	free(t);
}

static void tls_key_make(void)
{
	tls_key_err = pthread_key_create(&tls_key, tls_free);
}

static struct codec_tls *tls_create(void)
{
	struct codec_tls *t;

	pthread_once(&tls_key_once, tls_key_make);
	if (tls_key_err)
		return NULL;
	t = fault(ZS_FAULT_ALLOC) ? NULL : aligned_alloc(64, (sizeof(*t) + 63) / 64 * 64);
	if (!t)
		return NULL;
	memset(t->ctx, 0, sizeof(t->ctx));
	if (pthread_setspecific(tls_key, t)) {
		free(t);
		return NULL;
	}
	tls_cur = t;
	return t;
}

struct codec_tls *codec_tls_get(void)
{
	struct codec_tls *t = tls_cur;

	return t ? t : tls_create();
}

/*
 * The thread's context for (c->ops, c->level), created on first use. A
 * thread uses one context at a time, so when the cache is full the last
 * entry is recycled. NULL when out of memory.
 */
static void *tls_state(struct codec_tls *t, const struct codec *c)
{
	int i;

	for (i = 0; i < CODEC_TLS_CTX; i++) {
		if (t->ctx[i].ops == c->ops && t->ctx[i].level == c->level)
			return t->ctx[i].state;
		if (!t->ctx[i].ops)
			break;
	}
	if (i == CODEC_TLS_CTX) {
		i = CODEC_TLS_CTX - 1;
		t->ctx[i].ops->destroy(t->ctx[i].state);
		t->ctx[i].ops = NULL;
	}
	t->ctx[i].state = c->ops->create(c->level);
	if (!t->ctx[i].state)
		return NULL;
	t->ctx[i].ops = c->ops;
	t->ctx[i].level = c->level;
	return t->ctx[i].state;
}

int codec_compress(struct codec_tls *t, const struct codec *c, const void *src, void *dst,
		   size_t cap)
{
	void *state = tls_state(t, c);

	if (!state)
		return -ENOMEM;
	return c->ops->compress(state, c->level, src, dst, cap);
}

int codec_decompress(struct codec_tls *t, const struct codec *c, const void *src, size_t len,
		     void *dst)
{
	void *state = NULL;

	if (!c->ops->stateless_decompress && !(state = tls_state(t, c)))
		return -ENOMEM;
	return c->ops->decompress(state, src, len, dst);
}
