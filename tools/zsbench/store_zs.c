// SPDX-License-Identifier: MIT
/*
 * A page store directly on a zsmalloc pool: what zsram does (same-filled
 * pages kept in the slot, pages compressing to zs_huge_class_size() or more
 * stored raw), with the allocator's knobs exposed: chain size, pool flags,
 * zs_free vs zs_free_deferred, compaction on or off. zsbench uses it where
 * zsram is not built: for the main row, the ablation and the classes table
 * (store_zsram.c picks it).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zsmalloc.h>

#include "zsbench.h"

#define SLOT_SAME 0xffffffffu

struct slot {
	union {
		unsigned long handle;
		uint64_t fill;
	};
	uint32_t len; /* 0 empty, SLOT_SAME, BENCH_PAGE_SIZE raw, else compressed */
	uint32_t pad;
};

struct zstore {
	struct zsb_zs_cfg cfg;
	struct zs_pool *pool;
	struct slot *slots;
	size_t npages;
	size_t huge;
	uint64_t payload; /* atomic, relaxed */
};

static __thread struct bench_codec *tls_codec;
static __thread uint8_t tls_buf[BENCH_CODEC_BOUND];
static pthread_key_t codec_key;
static pthread_once_t codec_once = PTHREAD_ONCE_INIT;

static void codec_release(void *c)
{
	bench_codec_free(c);
}

static void codec_key_init(void)
{
	pthread_key_create(&codec_key, codec_release);
}

static struct bench_codec *codec(struct zstore *z)
{
	if (!tls_codec) {
		tls_codec = bench_codec_new(z->cfg.codec, z->cfg.level);
		pthread_once(&codec_once, codec_key_init);
		pthread_setspecific(codec_key, tls_codec);
	}
	return tls_codec;
}

static void *zs_create(void *arg, size_t npages, char *err, size_t errlen)
{
	const struct zsb_zs_cfg *cfg = arg;
	struct zs_pool_config pc = {.chain_size = cfg->chain_size, .flags = cfg->flags};
	struct bench_codec *probe = bench_codec_new(cfg->codec, cfg->level);
	struct zstore *z;

	if (!probe) {
		snprintf(err, errlen, "unknown algorithm '%s' (known: %s)", cfg->codec,
			 bench_codec_names());
		return NULL;
	}
	bench_codec_free(probe);
	z = calloc(1, sizeof(*z));
	if (!z || !(z->slots = calloc(npages ? npages : 1, sizeof(*z->slots)))) {
		free(z);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	z->cfg = *cfg;
	z->npages = npages;
	z->pool = zs_create_pool_ex("zsbench", &pc);
	if (!z->pool) {
		snprintf(err, errlen, "zs_create_pool: %s", strerror(errno));
		free(z->slots);
		free(z);
		return NULL;
	}
	z->huge = zs_huge_class_size(z->pool);
	return z;
}

static void slot_free(struct zstore *z, struct slot *s)
{
	if (s->len && s->len != SLOT_SAME) {
		if (z->cfg.deferred)
			zs_free_deferred(z->pool, s->handle);
		else
			zs_free(z->pool, s->handle);
		__atomic_fetch_sub(&z->payload, s->len, __ATOMIC_RELAXED);
	}
	s->len = 0;
	s->handle = 0;
}

static int zs_write(void *sp, size_t index, const void *page)
{
	struct zstore *z = sp;
	struct slot *s = &z->slots[index];
	struct bench_codec *c = codec(z);
	const void *src = tls_buf;
	unsigned long h;
	uint64_t v;
	int n, err;

	if (!c)
		return -ENOMEM;
	slot_free(z, s);
	if (bench_page_same_filled(page, &v)) {
		s->fill = v;
		s->len = SLOT_SAME;
		return 0;
	}
	n = bench_codec_compress(c, page, tls_buf);
	if (n < 0)
		return n;
	if ((size_t)n >= z->huge) {
		n = BENCH_PAGE_SIZE;
		src = page;
	}
	h = zs_malloc(z->pool, (size_t)n);
	if (!h)
		return -errno;
	err = zs_obj_write(z->pool, h, src, (size_t)n);
	if (err) {
		zs_free(z->pool, h);
		return err;
	}
	s->handle = h;
	s->len = (uint32_t)n;
	__atomic_fetch_add(&z->payload, (uint64_t)n, __ATOMIC_RELAXED);
	return 0;
}

static int zs_read(void *sp, size_t index, void *page)
{
	struct zstore *z = sp;
	struct slot *s = &z->slots[index];
	struct bench_codec *c = codec(z);
	void *mem;
	int err = 0;

	if (s->len == 0 || s->len == SLOT_SAME) {
		uint64_t v = s->len ? s->fill : 0, *w = page;

		for (size_t i = 0; i < BENCH_PAGE_SIZE / 8; i++)
			w[i] = v;
		return 0;
	}
	if (!c)
		return -ENOMEM;
	mem = zs_obj_read_begin(z->pool, s->handle, s->len, tls_buf);
	if (!mem)
		return -errno;
	if (s->len == BENCH_PAGE_SIZE)
		memcpy(page, mem, BENCH_PAGE_SIZE);
	else
		err = bench_codec_decompress(c, mem, s->len, page);
	zs_obj_read_end(z->pool, s->handle, s->len, mem);
	return err;
}

static int zs_discard(void *sp, size_t index)
{
	slot_free(sp, &((struct zstore *)sp)->slots[index]);
	return 0;
}

static void zs_flush(void *sp)
{
	struct zstore *z = sp;

	if (z->cfg.deferred)
		zs_free_deferred_flush(z->pool);
}

static long zs_compact_op(void *sp)
{
	struct zstore *z = sp;

	return z->cfg.compact ? (long)zs_compact(z->pool) : 0;
}

static void zs_memory(void *sp, struct bench_mem *m)
{
	struct zstore *z = sp;

	m->payload = (double)__atomic_load_n(&z->payload, __ATOMIC_RELAXED);
	m->held = (double)zs_get_total_pages(z->pool) * ZS_PAGE_SIZE; /* zram's mem_used_total */
}

static void zs_extra(void *sp, char *buf, size_t len)
{
	struct zstore *z = sp;
	struct zs_pool_stats st;

	zs_pool_stats(z->pool, &st);
	snprintf(buf, len,
		 "\"pages_compacted\": %lu, \"pages_max\": %lu, \"objs_used\": %lu, "
		 "\"chunks_committed\": %lu, \"chunks_released\": %lu, \"metadata_bytes\": %lu, "
		 "\"deferred_queued\": %lu, \"deferred_sync\": %lu, \"huge_class_size\": %zu",
		 st.pages_compacted, st.pages_max, st.objs_used, st.chunks_committed,
		 st.chunks_released, st.metadata_bytes, st.deferred_queued, st.deferred_sync,
		 z->huge);
}

static void zs_destroy(void *sp)
{
	struct zstore *z = sp;

	zs_free_deferred_flush(z->pool);
	zs_destroy_pool(z->pool);
	free(z->slots);
	free(z);
	if (tls_codec) {
		pthread_setspecific(codec_key, NULL);
		bench_codec_free(tls_codec);
		tls_codec = NULL;
	}
}

const struct bench_store_ops zsb_zs_ops = {
	.name = "zsmalloc",
	.multithread = 1,
	.has_rss = 1,
	.create = zs_create,
	.write = zs_write,
	.read = zs_read,
	.discard = zs_discard,
	.flush = zs_flush,
	.compact = zs_compact_op,
	.memory = zs_memory,
	.extra = zs_extra,
	.destroy = zs_destroy,
};

struct zs_pool *zsb_zs_pool(void *store)
{
	return ((struct zstore *)store)->pool;
}

size_t zsb_huge_size(unsigned chain_size)
{
	struct zs_pool_config cfg = {.chain_size = chain_size};
	struct zs_pool *pool = zs_create_pool_ex("zsbench-probe", &cfg);
	size_t huge = pool ? zs_huge_class_size(pool) : BENCH_HUGE_SIZE;

	zs_destroy_pool(pool);
	return huge;
}
