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
 *
 * Freeing: the object a discard or an overwrite (write, partial write,
 * recompression) replaces leaves the slot, and the statistics, at once; its
 * memory goes back to the pool through zs_free_deferred() on the pool's
 * drain thread (within about 50 ms), unless ZSRAM_SYNC_FREE is set.
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
struct zs_pool;        /* <zsmalloc.h> */
struct zs_pool_config; /* <zsmalloc.h> */

struct zsram_config {
	uint64_t    disksize;   /* bytes, a multiple of 4096 */
	const char *algorithm;  /* "lz4" (default when NULL), "zstd", ... */
	int         level;      /* codec level; 0 = the codec's default */
	uint64_t    mem_limit;  /* bytes of pool memory; 0 = no limit */
	unsigned    flags;      /* ZSRAM_* */
	/* NULL = defaults; chain_size and flags of the store's pool
	 * (max_pages comes from mem_limit) */
	const struct zs_pool_config *pool;
};

/*
 * Algorithms (zsram_algorithms() lists those built in) and their levels:
 *   "lz4"    acceleration factor, 1 (default) .. 65537; higher is faster
 *   "lz4hc"  1 .. 12, default 9
 *   "zstd"   -131072 .. 22, default 3 (negative levels are zstd's fast modes)
 *   "lzo"    lzo1x-1, one level (only with liblzo2)
 * An unknown name or a level out of range is a bad config (EINVAL).
 * mem_limit is rounded up to whole pages.
 *
 * config->pool (read during zsram_create only): the store's pool takes its
 * chain_size, flags (ZS_POOL_*, added to those the ZSRAM_* flags imply),
 * compact_threshold, deferred_buffer_size and deferred_spares; its
 * max_pages is ignored (mem_limit / 4096 is the pool's). Values that
 * zs_create_pool_ex() refuses are a bad config (EINVAL).
 */

/* struct zsram_config.flags */
#define ZSRAM_BG_COMPACT (1u << 0) /* the pool compacts in a background thread */
#define ZSRAM_HUGEPAGES  (1u << 1) /* back the pool with transparent huge pages */
#define ZSRAM_NO_SPARE   (1u << 2) /* free emptied zspages at once, as the kernel does */
#define ZSRAM_SYNC_FREE  (1u << 3) /* discards and overwrites zs_free at once (default:
                                      zs_free_deferred, off the caller's path) */

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

/*
 * zsram_pwrite/zsram_pread: the byte range [offset, offset + count) must lie
 * inside the disk (else -ERANGE); buffers need no alignment. They return
 * count, a shorter count when a later page failed (like write(2)), or the
 * -errno of the first page. zsram_compact finishes queued frees of
 * discarded and overwritten pages, then compacts the pool; it returns the
 * pages freed. zsram_destroy must be the last call on a store: nothing may
 * run concurrently with it.
 */

/*
 * Page states, as zsram_page_states() reports them (one byte per page).
 *   ZSRAM_PAGE_EMPTY  never written, or discarded: reads as zeros, holds nothing
 *   ZSRAM_PAGE_ZERO   written with zeros (a same-filled page of 0): reads as
 *                     zeros, holds no pool memory
 *   ZSRAM_PAGE_DATA   anything else: compressed, huge, or same-filled with a
 *                     non-zero pattern
 */
#define ZSRAM_PAGE_EMPTY 0
#define ZSRAM_PAGE_ZERO  1
#define ZSRAM_PAGE_DATA  2

/*
 * zsram_page_states: the states of pages index .. index + npages - 1 into
 * states[0 .. npages - 1] (for a block device's extents: holes and zeros).
 *
 * Context: any thread, concurrently with every call but zsram_destroy. It
 * takes no lock for empty, compressed and huge pages (one acquire load of
 * the slot's flags word each) and the slot lock for same-filled ones (to
 * read the pattern); it never waits for a write's compression.
 *
 * Guarantee: a page whose write (zsram_write_page, or a zsram_pwrite that
 * covered it and returned) happened before this call began, and that was not
 * discarded since, is never reported EMPTY, even while other writes of it
 * are in flight. A page whose state changes during the call may be reported
 * in either its old or its new state.
 *
 * Returns 0, -EINVAL (NULL zr, or NULL states with npages > 0), -ERANGE
 * (index at or past the end, or the range runs past it).
 */
int zsram_page_states(struct zsram *zr, uint64_t index, uint64_t npages, uint8_t *states);

/*
 * The store's pool, for statistics (zs_pool_stats, zs_pool_stats_dump,
 * zs_class_stats, zs_get_total_pages) and inspection; NULL for a NULL
 * store. It lives as long as the store. Its handles belong to the store:
 * callers must not free them through it (zs_free, zs_free_deferred), write
 * or allocate through it, nor destroy it. zs_free_deferred_flush (finish
 * the store's queued frees now), zs_compact, zs_defrag and zs_pool_trim may
 * be called at any time, concurrently with the store's calls.
 */
struct zs_pool *zsram_pool(struct zsram *zr);

/* Space-separated names of the algorithms this build supports. */
const char *zsram_algorithms(void);

/*
 * Recompression (zram's recomp_algorithm and recompress, one secondary
 * algorithm). zsram_set_recomp_algorithm sets the secondary algorithm once:
 * 0, -EINVAL (unknown algorithm or level), -EBUSY (already set).
 *
 * zsram_recompress recompresses stored pages with the secondary algorithm:
 * with ZSRAM_RECOMP_HUGE only huge (incompressible) pages, else every
 * compressed or huge page whose stored size is at least 'threshold' bytes
 * (0: all). A page is replaced only when the new size falls in a smaller
 * size class (for a huge page: below zs_huge_class_size()); a page that does
 * not gain is marked and skipped by later runs until it is written again.
 * Pages recompressed already are skipped. Returns the pages replaced, or
 * -EINVAL (no secondary algorithm, bad mode), -ENOSPC/-ENOMEM when it could
 * not allocate before replacing any page.
 */
#define ZSRAM_RECOMP_HUGE (1u << 0)
int zsram_set_recomp_algorithm(struct zsram *zr, const char *algorithm, int level);
long zsram_recompress(struct zsram *zr, unsigned mode, size_t threshold);

#ifdef __cplusplus
}
#endif

#endif /* ZSRAM_H */
