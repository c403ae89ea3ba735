/* SPDX-License-Identifier: MIT */
/*
 * codec.h: page codecs behind one ops table, and the per-thread scratch
 * state they run in.
 *
 * Every codec compresses exactly one 4 KiB page. A thread's scratch state
 * (struct codec_tls: the compression output buffer, a decoded-page buffer,
 * zs_obj_read_begin's local copy, and a small cache of codec contexts) is
 * created on the thread's first call that needs it and freed by a pthread
 * key destructor when the thread exits. Nothing on the read or write path
 * allocates after that. The scratch state belongs to its thread alone: no
 * field of it is shared, so none needs a lock.
 */
#ifndef ZSRAM_CODEC_H
#define ZSRAM_CODEC_H

#include <stdbool.h>
#include <stddef.h>

#include "zsram.h"

/* Bytes a compression destination holds: any codec's worst case for a page. */
#define CODEC_DST_SIZE (2 * ZSRAM_PAGE_SIZE)
/* Codec contexts cached per thread, keyed by (codec, level). */
#define CODEC_TLS_CTX 6

struct codec_ops {
	const char *name;
	int min_level, max_level, default_level;
	/* decompress() runs with a NULL state: no context is created for it */
	bool stateless_decompress;
	/* A context for this level; NULL when out of memory. */
	void *(*create)(int level);
	void (*destroy)(void *state);
	/*
	 * Compresses one page. dst holds CODEC_DST_SIZE bytes. Returns the
	 * compressed length (1..cap), 0 when the result would exceed cap (a
	 * codec that cannot stop early may have written past cap, within
	 * CODEC_DST_SIZE), or -EIO.
	 */
	int (*compress)(void *state, int level, const void *src, void *dst, size_t cap);
	/* 0 when src (len bytes) decodes to exactly one page in dst, else -EIO. */
	int (*decompress)(void *state, const void *src, size_t len, void *dst);
};

/* A configured codec: immutable once its zsram publishes it. */
struct codec {
	const struct codec_ops *ops;
	int level;
};

struct codec_tls {
	unsigned char cbuf[CODEC_DST_SIZE];  /* compression output */
	unsigned char page[ZSRAM_PAGE_SIZE]; /* a decoded page (read-modify-write, recompress) */
	unsigned char copy[ZSRAM_PAGE_SIZE]; /* zs_obj_read_begin's local copy */
	struct {
		const struct codec_ops *ops; /* NULL: unused */
		int level;
		void *state;
	} ctx[CODEC_TLS_CTX];
};

/*
 * Looks a codec up by name and resolves its level (0 = the codec's
 * default). 0, or -EINVAL for an unknown name or a level out of range.
 */
int codec_init(struct codec *c, const char *name, int level);
/* The codec names this build supports, space-separated. */
const char *codec_names(void);

/* The calling thread's scratch state, created on first use; NULL (ENOMEM). */
struct codec_tls *codec_tls_get(void);

/* As the ops above, with the thread's context for c. -ENOMEM when it cannot be created. */
int codec_compress(struct codec_tls *t, const struct codec *c, const void *src, void *dst,
		   size_t cap);
int codec_decompress(struct codec_tls *t, const struct codec *c, const void *src, size_t len,
		     void *dst);

#endif /* ZSRAM_CODEC_H */
