/* SPDX-License-Identifier: MIT */
/*
 * zsram: a zram-like compressed page store on libzsmalloc.
 *
 * A fixed-size array of 4 KiB pages. Pages are compressed (lz4 by default,
 * or zstd), same-filled pages (one repeated 8-byte pattern) take no pool
 * memory, and pages that do not compress below zs_huge_class_size() are
 * stored raw ("huge"). Pages never written, or discarded, read as zeros.
 *
 * Errors: calls return 0 (or a byte count) on success and a negative errno
 * on failure: -ERANGE for an index or range past the end, -EINVAL for a NULL
 * buffer or bad config, -ENOSPC when a write would take the pool past
 * mem_limit (the page keeps its previous content), -ENOMEM when memory runs
 * out. zsram_create returns NULL and sets errno.
 *
 * Concurrency: every call may run from many threads at once. Two writes (or
 * a write and a discard) to the same page are serialised; a read never sees
 * a torn page; operations on different pages run in parallel.
 */
#ifndef ZSRAM_H
#define ZSRAM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ZSRAM_PAGE_SIZE 4096

struct zsram;

struct zsram_config {
	uint64_t    disksize;   /* bytes, a multiple of 4096 */
	const char *algorithm;  /* "lz4" (default when NULL), "zstd", ... */
	int         level;      /* codec level; 0 = the codec's default */
	uint64_t    mem_limit;  /* bytes of pool memory; 0 = no limit */
	unsigned    flags;
};

struct zsram_mm_stat {          /* zram's mm_stat, same meanings and units */
	uint64_t orig_data_size, compr_data_size, mem_used_total, mem_limit, mem_used_max,
	         same_pages, pages_compacted, huge_pages, huge_pages_since;
};

struct zsram *zsram_create(const struct zsram_config *config);   /* NULL + errno on failure */
void zsram_destroy(struct zsram *zr);
int zsram_write_page(struct zsram *zr, uint64_t index, const void *page);   /* 0 or -errno */
int zsram_read_page(struct zsram *zr, uint64_t index, void *page);          /* 0 or -errno */
int zsram_discard(struct zsram *zr, uint64_t index, uint64_t npages);
ssize_t zsram_pwrite(struct zsram *zr, const void *buf, size_t count, uint64_t offset);
ssize_t zsram_pread(struct zsram *zr, void *buf, size_t count, uint64_t offset);
unsigned long zsram_compact(struct zsram *zr);
void zsram_mm_stat(struct zsram *zr, struct zsram_mm_stat *stat);

#ifdef __cplusplus
}
#endif

#endif /* ZSRAM_H */
