/* SPDX-License-Identifier: MIT */
/*
 * libzsmalloc: a userspace zsmalloc.
 *
 * Objects of 1..4096 bytes are packed into size classes 16 bytes apart
 * inside multi-page "zspages"; objects may straddle page boundaries. Callers
 * hold *handles*, not pointers, so compaction and page migration can move
 * live objects and give whole pages back to the operating system.
 *
 * Error convention: calls that allocate return 0 and set errno; other calls
 * return 0 or a negative errno. A handle that is not live (never allocated,
 * freed already, forged, or stale) is reported on stderr with the pool's name
 * and aborts the process, like glibc's double-free check, unless the pool was
 * created with ZS_POOL_RETURN_ERRORS: then the call fails (-EBADF, or NULL
 * with errno EBADF), the event is counted in zs_pool_stats.invalid_handles,
 * and nothing else changes. Handles carry a 32-bit generation, bumped at
 * each free of their slot and checked against the object's header: a stale
 * handle is detected unless its slot has been freed and reused a multiple
 * of 2^32 - 1 times since (65,535 with the former 16 bits); a forged one
 * unless it guesses a live handle's slot and generation. A pool holds at
 * most 2^31 - 1 live handles.
 *
 * A NULL pool is never dereferenced: calls that return an error code or a
 * handle/pointer fail with EINVAL (-EINVAL, or 0/NULL with errno EINVAL);
 * calls that return void do nothing; zs_get_total_pages,
 * zs_huge_class_size, zs_class_count, zs_compact, zs_compactable_pages and
 * zs_defrag return 0, zs_lookup_class_index ZS_NO_CLASS. A NULL buffer
 * where bytes are to be read or written is EINVAL likewise.
 *
 * Concurrency. Every call may run concurrently with every other call on the
 * same pool, from any number of threads, with these exceptions:
 *
 *   call                         | may run concurrently with
 *   -----------------------------+-----------------------------------------
 *   zs_create_pool[_ex]          | everything (it touches no shared pool)
 *   zs_destroy_pool              | nothing on that pool: the caller makes
 *                                | sure no other call is in flight or follows
 *   zs_malloc[_write], zs_free,  | everything, including zs_compact and
 *   zs_free_deferred             | zs_defrag; on *different* handles
 *   zs_obj_read_begin/_end,      | everything; several readers of the same
 *   zs_obj_write                 | handle are fine; a write racing a read or
 *                                | free of the *same* handle is the caller's
 *                                | data race, as with memcpy on malloc memory
 *   zs_compact, zs_defrag        | everything; a second zs_compact on the
 *                                | same pool returns 0 at once
 *   statistics calls             | everything (figures are a snapshot)
 *
 * Between zs_obj_read_begin() and zs_obj_read_end() the object cannot move;
 * compaction and migration skip its zspage. Keep that window short-ish: it
 * delays compaction of that one zspage, nothing else.
 *
 * fork(): a child may go on using the parent's pools, whatever the
 * parent's threads were doing. The library's fork handlers (pthread_atfork)
 * quiesce every pool first, as malloc does: a running zs_compact or
 * zs_defrag stops at its next batch, the drain thread finishes its pass,
 * the arena's page releases finish, and every lock of the pool is taken;
 * fork() therefore waits for calls in progress in other threads to leave
 * their locked sections. The child gets a consistent pool: every handle
 * queued with zs_free_deferred before fork() is freed by the child's
 * flush, no lock is held, and compaction works. The background threads
 * (drainer, page releaser, compactor) stay in the parent: in the child,
 * deferred frees are synchronous, background compaction does not run, and
 * the arena starts a page releaser of its own when it needs one. Two
 * things in flight in another thread at fork() stay as they were in the
 * child: a zs_free_deferred that had not published its entry (the handle
 * is then not queued there), and a read or write between taking and
 * dropping its zspage lock (the child keeps that zspage pinned: compaction
 * and migration skip it). zsram's slot locks are not quiesced: a zsram
 * call in flight in another thread at fork() leaves its page locked in the
 * child. Under ThreadSanitizer, a program that forks with pools alive
 * needs TSAN_OPTIONS=detect_deadlocks=0: the handler holds one lock per
 * size class, more than TSan's detector tracks.
 */
#ifndef ZSMALLOC_H
#define ZSMALLOC_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ZS_PAGE_SIZE      4096
#define ZS_MAX_ALLOC_SIZE ZS_PAGE_SIZE
/* Bytes zs_malloc() adds to each object for its header (the handle) below
 * the huge class: zs_malloc(size) takes a place in the class that
 * zs_lookup_class_index(pool, size + ZS_OBJ_HEADER_SIZE) names. */
#define ZS_OBJ_HEADER_SIZE 8

/* Pool flags (struct zs_pool_config.flags). */
#define ZS_POOL_RETURN_ERRORS  (1u << 0) /* invalid handle: count + fail, don't abort */
#define ZS_POOL_HUGEPAGES      (1u << 1) /* back arena chunks with transparent huge pages */
#define ZS_POOL_BG_COMPACT     (1u << 2) /* compact in a background thread past a threshold */
#define ZS_POOL_PSI_COMPACT    (1u << 3) /* also compact on memory pressure (Linux PSI) */
#define ZS_POOL_FREE_POOL_LOCK (1u << 4) /* zs_free through the pool-wide lock (pre-seed-000
                                            path; kept for side-by-side benchmarks) */
#define ZS_POOL_NO_SPARE       (1u << 5) /* free every emptied zspage at once, as the kernel
                                            does, instead of keeping one spare per class */

struct zs_pool;

struct zs_pool_config {
	size_t   max_pages;   /* limit on backing pages; 0 = no limit */
	unsigned chain_size;  /* max pages per zspage, 1..16; 0 = default (8) */
	unsigned flags;       /* ZS_POOL_* */
	/* Background compaction: compact when at least this many pages could be
	 * freed; 0 = default (256 pages, 1 MiB). Only with ZS_POOL_BG_COMPACT. */
	size_t   compact_threshold;
	/* Deferred free: handles per per-thread buffer (0 = 1024) and number of
	 * spare buffers preallocated per pool (0 = 64, at least 4 per CPU; set
	 * ZS_DEFERRED_NO_SPARES for none, which makes every full buffer free
	 * synchronously). When a burst outruns the drain thread and no spare
	 * is left, the thread whose buffer filled allocates another, as long
	 * as all the pool's buffers together hold at most
	 * max(ZS_DEFERRED_GROW_MIN, ZS_DEFERRED_ENTRIES_PER_PAGE x the pool's
	 * pages when the drain thread last caught up) handles and never more
	 * than ZS_DEFERRED_MAX_ENTRIES (beyond that it frees synchronously,
	 * which is what lets the drain thread catch up under a sustained
	 * overload). Buffers above the preallocated number
	 * are freed when the pool has been idle for decay_ms, and by
	 * zs_pool_trim() and zs_compact(). */
	unsigned deferred_buffer_size;
	unsigned deferred_spares;
	/*
	 * Decay: after decay_ms milliseconds without an allocation or free
	 * that reaches the arena (a zspage built or freed), the arena's worker
	 * thread gives back what the pool keeps for reuse -- freed pages kept
	 * resident, pages prefaulted ahead of need, spare empty zspages,
	 * surplus deferred-free buffers, the free tail of the handle table --
	 * as zs_pool_trim() does. The worker times this in ticks of a quarter
	 * period, only while something may be kept (an idle, empty pool takes
	 * no wake-ups), so the release comes after between 3/4 and 1 period
	 * of idleness. 0 = ZS_DECAY_DEFAULT_MS; ZS_DECAY_NEVER keeps them
	 * until zs_pool_trim() or zs_compact().
	 */
	unsigned decay_ms;
};

#define ZS_DEFERRED_NO_SPARES (~0u)
#define ZS_DECAY_NEVER        (~0u)
#define ZS_DECAY_DEFAULT_MS   1000u
/* Bounds of the deferred-free settings (beyond them: EINVAL). Each queued
 * handle takes 16 bytes: the spares hold at most 64 MiB, and so do all the
 * pool's buffers, grown ones included. */
#define ZS_DEFERRED_MAX_BUFFER  65536u   /* handles per buffer */
#define ZS_DEFERRED_MAX_SPARES  4096u    /* spare buffers */
#define ZS_DEFERRED_MAX_ENTRIES (1u << 22) /* buffer size x spares; all buffers */
/* Growth of the deferred buffers under a burst: up to this many handles
 * in all (the default spares' 64 x 1024), or this many per page the pool
 * held before the burst: 256 bytes of buffer per 4 KiB page, 1/16 of the
 * pool. A burst freeing objects of 256 bytes or more of an otherwise idle
 * pool is thus absorbed whole. */
#define ZS_DEFERRED_GROW_MIN         65536u
#define ZS_DEFERRED_ENTRIES_PER_PAGE 16u
#define ZS_NO_CLASS (~0u) /* zs_lookup_class_index() of a NULL pool */

struct zs_pool_stats {
	unsigned long pages_compacted;  /* pages freed by compaction so far */
	/* more fields may follow */
	unsigned long pages_allocated;  /* pages in zspages now (= zs_get_total_pages) */
	unsigned long pages_max;        /* high-water mark of pages_allocated */
	unsigned long objs_allocated;   /* object places in all zspages */
	unsigned long objs_used;        /* live objects */
	unsigned long pages_migrated;   /* pages moved by migration so far */
	unsigned long pages_resident;   /* arena pages that may hold memory: in zspages,
	                                   or freed but not yet returned to the OS */
	unsigned long chunks_committed; /* 2 MiB arena chunks mapped now */
	unsigned long chunks_released;  /* chunks given back to the OS so far */
	unsigned long metadata_bytes;   /* descriptors, handle table, page table */
	unsigned long invalid_handles;  /* reported invalid handles (RETURN_ERRORS) */
	unsigned long compactions;      /* zs_compact runs that did work */
	unsigned long deferred_queued;  /* handles queued by zs_free_deferred */
	unsigned long deferred_drained; /* queued handles freed by the drain side */
	unsigned long deferred_sync;    /* zs_free_deferred calls that freed synchronously */
	unsigned long deferred_batches; /* drain batches: full buffers, or the waiting
	                                   part of a partly filled one, drained */
	unsigned long pages_spare;      /* pages in empty zspages kept for reuse (counted in
	                                   pages_allocated; zs_pool_trim/zs_compact free them) */
	unsigned long psi_trigger;      /* 1 when ZS_POOL_PSI_COMPACT got its memory-pressure
	                                   trigger (/proc/pressure/memory), else 0 */
	unsigned long pages_prefaulted; /* fresh pages the arena's worker faulted in ahead
	                                   of a growing pool, so far */
	unsigned long pages_decayed;    /* kept pages (cached, prefaulted, spare) given back
	                                   after decay_ms of idleness, so far */
	unsigned long deferred_bytes;   /* memory of the deferred-free buffers now */
};

/* Per-class figures; the columns of the kernel's debugfs "classes" file. */
#define ZS_NR_FULLNESS_COLUMNS 11 /* 10%, 20%, ... 90%, 99%, 100% */
struct zs_class_stats {
	unsigned int  index;            /* class index (as in obj) */
	unsigned int  size;             /* object size including the 8-byte header */
	unsigned long zspages[ZS_NR_FULLNESS_COLUMNS]; /* zspages per fullness column */
	unsigned long obj_allocated;
	unsigned long obj_used;
	unsigned long pages_used;
	unsigned int  pages_per_zspage;
	unsigned int  objs_per_zspage;
	unsigned long freeable;         /* pages compaction could free */
};

enum zs_stats_format { ZS_STATS_TEXT = 0, ZS_STATS_JSON = 1 };

/* Pools. NULL + errno (ENOMEM, EINVAL for a bad config: chain_size above
 * 16, an unknown flag, deferred settings out of bounds) on failure. */
struct zs_pool *zs_create_pool(const char *name);
struct zs_pool *zs_create_pool_ex(const char *name, const struct zs_pool_config *config);
/* Frees everything, live objects included. See the table above. */
void zs_destroy_pool(struct zs_pool *pool);

/*
 * Returns a handle (never 0), or 0 with errno EINVAL (size 0), E2BIG
 * (size > ZS_MAX_ALLOC_SIZE) or ENOMEM (no memory, or max_pages reached);
 * on failure nothing changed.
 */
unsigned long zs_malloc(struct zs_pool *pool, size_t size);
/*
 * zs_malloc() of size bytes, filled with the size bytes at src, in one
 * call: as zs_malloc() followed by zs_obj_write() of the whole object, but
 * the copy is made under the class lock the allocation holds anyway, before
 * the handle exists for anyone else, so it skips the write's lookup and
 * zspage lock (what zsram stores each page with). Errors as zs_malloc(),
 * and EINVAL for a NULL src.
 */
unsigned long zs_malloc_write(struct zs_pool *pool, const void *src, size_t size);
/* Frees a live handle; 0 (and a NULL pool) is ignored. Takes no pool-wide lock. */
void zs_free(struct zs_pool *pool, unsigned long handle);

/*
 * Queue a handle to be freed by the pool's drain thread; always succeeds.
 * The common call is a few plain stores and a release into a buffer only
 * the calling thread writes: no lock, no atomic read-modify-write. A
 * thread's first call on a pool (registration) and each call that fills a
 * buffer (handing it to the drainer for an empty one) take the pool's
 * deferred-free lock briefly; when no empty buffer is left it allocates
 * one within the bound of struct zs_pool_config, and past that bound, or
 * when no drain thread runs, the call frees synchronously, as zs_free does. Invalid
 * handles are reported when they are freed (at the latest). Handles queued
 * by a thread that goes idle or exits are freed within about 50 ms.
 */
void zs_free_deferred(struct zs_pool *pool, unsigned long handle);
/* Returns once every handle queued before the call, by any thread, is freed;
 * what the drain thread has not taken yet is freed in the calling thread. */
void zs_free_deferred_flush(struct zs_pool *pool);

/*
 * Work items for a layer above (a store freeing a slot's bookkeeping
 * together with its handle): zs_free_deferred_cookie() queues (handle,
 * cookie) through the same per-thread buffers; the drain side (the drain
 * thread, or a thread in zs_free_deferred_flush) frees handle (when
 * non-zero) and then calls the pool's hook with both. A synchronous
 * fallback calls the hook from the caller's thread. Set the hook before the
 * first deferred free of the pool (-EBUSY after); it runs with no pool lock
 * held and must not call zs_free_deferred_flush().
 */
typedef void (*zs_deferred_hook)(void *ctx, unsigned long handle, unsigned long cookie);
int zs_pool_set_deferred_hook(struct zs_pool *pool, zs_deferred_hook hook, void *ctx);
void zs_free_deferred_cookie(struct zs_pool *pool, unsigned long handle, unsigned long cookie);

/*
 * Returns a pointer to the object's first mem_len bytes, valid until
 * zs_obj_read_end(). local_copy must hold mem_len bytes; it is used (and
 * returned) only when the object straddles two non-adjacent pages. The object
 * cannot move meanwhile. NULL with errno EINVAL when mem_len exceeds the
 * object's capacity or for a NULL local_copy, EBADF for an invalid handle
 * (ZS_POOL_RETURN_ERRORS).
 */
void *zs_obj_read_begin(struct zs_pool *pool, unsigned long handle, size_t mem_len,
			void *local_copy);
void zs_obj_read_end(struct zs_pool *pool, unsigned long handle, size_t mem_len,
		     void *handle_mem);
/*
 * Copies mem_len bytes in. 0, or -EINVAL when mem_len exceeds what the object
 * holds (its size rounded up to its class) or for a NULL src, -EBADF for an
 * invalid handle.
 */
int zs_obj_write(struct zs_pool *pool, unsigned long handle, const void *src, size_t mem_len);

/* Objects of this size or more are stored one per page (the kernel's value). */
size_t zs_huge_class_size(struct zs_pool *pool);
/* Backing pages currently held in zspages. */
unsigned long zs_get_total_pages(struct zs_pool *pool);
/*
 * Index of the class whose places hold 'size' bytes, header included: the
 * function adds nothing, as the kernel's does. The class zs_malloc(size)
 * uses is that of size + ZS_OBJ_HEADER_SIZE (which maps to the huge class
 * from zs_huge_class_size() on, whose objects carry no header).
 */
unsigned int zs_lookup_class_index(struct zs_pool *pool, unsigned int size);

void zs_pool_stats(struct zs_pool *pool, struct zs_pool_stats *stats);
/*
 * Figures of the i-th distinct (merged) class, i in 0..zs_class_count()-1,
 * in ascending size; out->index is its index in the kernel's table. Returns
 * 0, -ENOENT when i is out of range, -EINVAL for a NULL out.
 */
int zs_class_stats(struct zs_pool *pool, unsigned int index, struct zs_class_stats *out);
unsigned int zs_class_count(struct zs_pool *pool);
/*
 * Writes the per-class table (kernel debugfs format, or JSON) into buf, like
 * snprintf: returns the length the whole text needs, excluding the NUL;
 * -EINVAL for an unknown format, or a NULL buf with a non-zero size.
 */
int zs_pool_stats_dump(struct zs_pool *pool, enum zs_stats_format format, char *buf,
		       size_t size);

/*
 * Moves objects from the emptiest zspages of each class into the fullest and
 * frees emptied zspages. Returns the pages freed (also added to
 * pages_compacted). Drops its locks between small batches and skips zspages
 * that readers hold. Only one runs per pool at a time (others return 0).
 * Then releases what zs_pool_trim() does, so that the pages freed, and the
 * pages cached for reuse, are out of RSS when it returns.
 */
unsigned long zs_compact(struct zs_pool *pool);
/* Pages compaction could free now. */
unsigned long zs_compactable_pages(struct zs_pool *pool);
/*
 * Migrates in-use pages out of sparsely used arena chunks into lower ones so
 * whole 2 MiB chunks go back to the OS. Returns the pages migrated.
 */
unsigned long zs_defrag(struct zs_pool *pool);
/*
 * Frees the spare empty zspages (one per class at most, 512 pages per pool
 * at most, kept so that alloc/free ping-pong does not build and tear down
 * zspages) and the deferred-free buffers above the preallocated spares,
 * gives back the handle table's pages above the highest handle in use, and
 * returns cached arena pages and empty chunks to the OS now: RSS reflects
 * it when the call returns. zs_compact() does the same after compacting;
 * an idle pool does it by itself after decay_ms (struct zs_pool_config).
 */
void zs_pool_trim(struct zs_pool *pool);

#ifdef __cplusplus
}
#endif

#endif /* ZSMALLOC_H */
