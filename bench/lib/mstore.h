/* SPDX-License-Identifier: MIT */
/*
 * A zram-like page store on a general-purpose allocator: the "malloc peer".
 * It stores exactly what zsram stores: nothing for same-filled pages (their
 * value is kept in the slot), the page raw when it compresses to
 * the huge size (zsram's zs_huge_class_size()) or more, else the compressed bytes, each in its own
 * malloc'd block. Its slot table (16 bytes a page) comes from the same
 * allocator. Payload is counted like zram's compr_data_size.
 */
#ifndef BENCH_MSTORE_H
#define BENCH_MSTORE_H

#include <stddef.h>

#include "storerun.h"

struct bench_allocator {
	const char *name; /* "glibc malloc", "jemalloc", ... */
	void *(*malloc)(size_t size);
	void (*free)(void *p);
	/* Give free memory back to the OS (the store's "compaction"); may be NULL. */
	void (*trim)(void);
	/* The allocator's own figures as JSON object members; may be NULL. */
	void (*stats)(char *buf, size_t len);
};

struct bench_mstore_arg {
	const struct bench_allocator *alloc;
	const char *codec;
	int level;
	size_t huge; /* store pages raw that compress to this or more; 0 = BENCH_HUGE_SIZE */
};

/* The store's operations; create() takes a struct bench_mstore_arg *. */
extern const struct bench_store_ops bench_mstore_ops;

#endif /* BENCH_MSTORE_H */
