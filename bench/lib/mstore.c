// SPDX-License-Identifier: MIT
/* A compressed page store on malloc; see mstore.h. */
#include "mstore.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "codec.h"

#define SLOT_SAME 0xffffffffu /* len value of a same-filled page */

struct slot {
	union {
		void *blob;
		uint64_t fill; /* same-filled value */
	};
	uint32_t len; /* 0: empty; SLOT_SAME; BENCH_PAGE_SIZE: raw; else compressed */
	uint32_t pad;
};

struct mstore {
	const struct bench_mstore_arg *arg;
	struct slot *slots;
	size_t npages;
	uint64_t payload; /* atomic, relaxed: sum of stored sizes */
	int codec_err;
};

/*
 * Per-thread codec and scratch; the codec is created on a thread's first
 * write or read and freed when the thread exits (the key's destructor).
 */
static __thread struct bench_codec *tls_codec;
static __thread uint8_t tls_scratch[BENCH_CODEC_BOUND];
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

static struct bench_codec *codec(struct mstore *m)
{
	if (!tls_codec) {
		tls_codec = bench_codec_new(m->arg->codec, m->arg->level);
		pthread_once(&codec_once, codec_key_init);
		pthread_setspecific(codec_key, tls_codec);
	}
	return tls_codec;
}

static void *ms_create(void *argp, size_t npages, char *err, size_t errlen)
{
	const struct bench_mstore_arg *arg = argp;
	struct bench_codec *probe = bench_codec_new(arg->codec, arg->level);
	struct mstore *m;

	if (!probe) {
		snprintf(err, errlen, "unknown algorithm '%s' (known: %s)", arg->codec,
			 bench_codec_names());
		return NULL;
	}
	bench_codec_free(probe);
	m = arg->alloc->malloc(sizeof(*m));
	if (!m) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	memset(m, 0, sizeof(*m));
	m->arg = arg;
	m->npages = npages;
	m->slots = arg->alloc->malloc((npages ? npages : 1) * sizeof(*m->slots));
	if (!m->slots) {
		arg->alloc->free(m);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	memset(m->slots, 0, npages * sizeof(*m->slots));
	return m;
}

static void slot_free(struct mstore *m, struct slot *s)
{
	if (s->len && s->len != SLOT_SAME) {
		m->arg->alloc->free(s->blob);
		__atomic_fetch_sub(&m->payload, s->len, __ATOMIC_RELAXED);
	}
	s->len = 0;
	s->blob = NULL;
}

static int ms_write(void *sp, size_t index, const void *page)
{
	struct mstore *m = sp;
	struct slot *s = &m->slots[index];
	struct bench_codec *c = codec(m);
	const void *src = tls_scratch;
	uint64_t v;
	int n;
	void *blob;

	if (!c)
		return -ENOMEM;
	slot_free(m, s);
	if (bench_page_same_filled(page, &v)) {
		s->fill = v;
		s->len = SLOT_SAME;
		return 0;
	}
	n = bench_codec_compress(c, page, tls_scratch);
	if (n < 0)
		return n;
	if ((size_t)n >= (m->arg->huge ? m->arg->huge : BENCH_HUGE_SIZE)) {
		n = BENCH_PAGE_SIZE;
		src = page;
	}
	blob = m->arg->alloc->malloc((size_t)n);
	if (!blob)
		return -ENOMEM;
	memcpy(blob, src, (size_t)n);
	s->blob = blob;
	s->len = (uint32_t)n;
	__atomic_fetch_add(&m->payload, (uint64_t)n, __ATOMIC_RELAXED);
	return 0;
}

static int ms_read(void *sp, size_t index, void *page)
{
	struct mstore *m = sp;
	struct slot *s = &m->slots[index];
	struct bench_codec *c;

	if (s->len == 0 || s->len == SLOT_SAME) {
		uint64_t v = s->len ? s->fill : 0, *w = page;

		for (size_t i = 0; i < BENCH_PAGE_SIZE / 8; i++)
			w[i] = v;
		return 0;
	}
	if (s->len == BENCH_PAGE_SIZE) {
		memcpy(page, s->blob, BENCH_PAGE_SIZE);
		return 0;
	}
	c = codec(m);
	return c ? bench_codec_decompress(c, s->blob, s->len, page) : -ENOMEM;
}

static int ms_discard(void *sp, size_t index)
{
	struct mstore *m = sp;

	slot_free(m, &m->slots[index]);
	return 0;
}

static long ms_compact(void *sp)
{
	struct mstore *m = sp;

	if (m->arg->alloc->trim)
		m->arg->alloc->trim();
	return 0;
}

static void ms_memory(void *sp, struct bench_mem *mem)
{
	struct mstore *m = sp;

	mem->payload = (double)__atomic_load_n(&m->payload, __ATOMIC_RELAXED);
	mem->held = -1; /* what malloc holds is measured as RSS */
}

static void ms_extra(void *sp, char *buf, size_t len)
{
	struct mstore *m = sp;

	if (m->arg->alloc->stats)
		m->arg->alloc->stats(buf, len);
}

static void ms_destroy(void *sp)
{
	struct mstore *m = sp;
	void (*fr)(void *) = m->arg->alloc->free;

	for (size_t i = 0; i < m->npages; i++)
		slot_free(m, &m->slots[i]);
	fr(m->slots);
	fr(m);
	if (tls_codec) {
		pthread_setspecific(codec_key, NULL);
		bench_codec_free(tls_codec);
		tls_codec = NULL;
	}
}

const struct bench_store_ops bench_mstore_ops = {
	.name = "malloc",
	.multithread = 1,
	.has_rss = 1,
	.create = ms_create,
	.write = ms_write,
	.read = ms_read,
	.discard = ms_discard,
	.compact = ms_compact,
	.memory = ms_memory,
	.extra = ms_extra,
	.destroy = ms_destroy,
};
