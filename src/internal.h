/* SPDX-License-Identifier: MIT */
/*
 * libzsmalloc internals: the structs with their invariants and lock
 * annotations, and every cross-file function grouped by the file that
 * defines it, so this header doubles as a map of the library.
 *
 * Lock order (outermost first; never take an earlier lock while holding a
 * later one):
 *
 *   pool->migrate_lock (rwlock; written by compaction and migration around
 *                        obj rewrites, read only by the ZS_POOL_FREE_POOL_LOCK
 *                        variant of zs_free -- never on the default hot paths)
 *     -> size_class->lock (one per class: fullness lists, in-zspage free
 *                          lists, in-use counts, per-class handle cache)
 *       -> zspage lock (readers share it, writers only ever try it)
 *       -> handles.lock (global handle-slot free list; leaf)
 *       -> arena.lock (page bitmaps and the freed-page cache; leaf)
 *       -> slab.lock (zspage descriptor pages; leaf -- also taken with no
 *                     lock held, by liburcu's call_rcu thread)
 *
 * RCU (liburcu, "bp" flavour so that application threads need not
 * register): zspage descriptors are freed after a grace period, so a reader
 * or the migrator may go from a page frame number to its zspage (pdesc) and
 * take that zspage's lock without holding any lock zs_free takes.
 */
#ifndef ZS_INTERNAL_H
#define ZS_INTERNAL_H

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <urcu-bp.h>

#include "zsmalloc.h"
#include "atomics.h"
#include "debug.h"
#include "fault.h"

#define ZS_EXPORT __attribute__((visibility("default")))

/*
 * Starts fetching p's cache line for writing (in exclusive state), so that
 * stores to it commit without waiting for the line. An explicit prefetchw:
 * without -mprfchw, GCC compiles __builtin_prefetch(p, 1, ...) to a read
 * prefetch, which leaves the store to ask for ownership of the line after
 * all. Processors without the instruction execute it as a NOP.
 */
static inline void prefetch_write(const void *p)
{
#if defined(__x86_64__) || defined(__i386__)
	__asm__ volatile("prefetchw %0" : : "m"(*(const char *)p));
#else
	__builtin_prefetch(p, 1, 3);
#endif
}

/* ------------------------------------------------------------------ */
/* Geometry                                                            */

#define ZS_PAGE_SHIFT       12
#define ZS_CHUNK_SHIFT      21 /* 2 MiB arena chunks */
#define ZS_CHUNK_PAGES      (1u << (ZS_CHUNK_SHIFT - ZS_PAGE_SHIFT))
#define ZS_HANDLE_SIZE      ZS_OBJ_HEADER_SIZE /* object header: the handle, tagged */
#define ZS_MIN_ALLOC_SIZE   32
#define ZS_SIZE_CLASS_DELTA 16
#define ZS_SIZE_CLASSES     ((ZS_MAX_ALLOC_SIZE - ZS_MIN_ALLOC_SIZE + ZS_SIZE_CLASS_DELTA - 1) / \
			     ZS_SIZE_CLASS_DELTA + 1)
#define ZS_MAX_CHAIN        16
#define ZS_DEFAULT_CHAIN    8
#define ZS_MAX_OBJS_PER_ZSPAGE (ZS_MAX_CHAIN * ZS_PAGE_SIZE / ZS_MIN_ALLOC_SIZE)

#if ZS_PAGE_SIZE != (1 << ZS_PAGE_SHIFT)
#error "ZS_PAGE_SIZE and ZS_PAGE_SHIFT disagree"
#endif
#if ZS_SIZE_CLASSES != 255
#error "the class table must have the kernel's 255 logical classes"
#endif

/*
 * A handle value is (slot index << 33) | (generation << 1): a 31-bit slot
 * index, a 32-bit generation (never 0), and bit 0 always 0 so that an
 * object header can hold "handle | 1" and be told apart from a free
 * object's link word. The generation is bumped each time the handle is
 * freed: a stale handle (its slot freed, maybe reused) fails validation
 * unless the slot was reused a multiple of 2^32 - 1 times since.
 *
 * Handle slot word (one uint64_t per handle, in the handle table), live:
 *
 *   bit  0      ALLOC: 1
 *   bits 1..11  obj_idx   \
 *   bits 12..19 class_idx  } "obj": where the object is
 *   bits 20..47 pfn       /
 *   bits 48..63 the generation's low 16 bits
 *
 * and free:
 *
 *   bit  0      ALLOC: 0
 *   bits 1..31  next free slot index + 1 (0: end of the list)
 *   bits 32..63 the generation the slot's next handle gets
 *
 * The live word has room for 16 bits of the generation only: lockless
 * validation (handle_lookup) compares those, and the check that decides --
 * under the class lock (free) or the zspage read lock (read, write) --
 * compares the whole handle with the one the object carries (its header,
 * or the huge zspage's huge_handle).
 */
#define SLOT_ALLOC        1ull
#define OBJ_IDX_SHIFT     1
#define OBJ_IDX_BITS      11
#define OBJ_CLASS_SHIFT   (OBJ_IDX_SHIFT + OBJ_IDX_BITS)
#define OBJ_CLASS_BITS    8
#define OBJ_PFN_SHIFT     (OBJ_CLASS_SHIFT + OBJ_CLASS_BITS)
#define OBJ_PFN_BITS      28
#define SLOT_GEN_SHIFT    (OBJ_PFN_SHIFT + OBJ_PFN_BITS)
#define SLOT_GEN_BITS     16 /* of the generation, in a live slot word */
#define SLOT_OBJ_MASK     (((1ull << SLOT_GEN_SHIFT) - 1) & ~SLOT_ALLOC)
#define SLOT_LINK_SHIFT   1  /* free slot word: link, then the whole generation */
#define SLOT_FREE_GEN_SHIFT 32
#define HANDLE_GEN_SHIFT  1
#define HANDLE_GEN_BITS   32
#define HANDLE_GEN_MASK   ((1ull << HANDLE_GEN_BITS) - 1)
#define HANDLE_IDX_SHIFT  (HANDLE_GEN_SHIFT + HANDLE_GEN_BITS)
#define HANDLE_IDX_BITS   31
/* the free word's link holds index + 1 in 31 bits */
#define HANDLE_MAX_SLOTS  ((1ull << HANDLE_IDX_BITS) - 1)
#define ZS_MAX_PFN        ((1ull << OBJ_PFN_BITS) - 1)
#define OBJ_TAG_ALLOCATED 1ull /* object header: handle | 1 */
#define OBJ_NONE          0xffffu

#if SLOT_GEN_SHIFT + SLOT_GEN_BITS != 64
#error "slot word layout must fill 64 bits"
#endif
#if HANDLE_IDX_SHIFT + HANDLE_IDX_BITS != 64 || SLOT_FREE_GEN_SHIFT + HANDLE_GEN_BITS != 64 || \
	SLOT_LINK_SHIFT + HANDLE_IDX_BITS != SLOT_FREE_GEN_SHIFT
#error "handle and free slot word layouts must fill 64 bits"
#endif
#if (1 << OBJ_IDX_BITS) < ZS_MAX_OBJS_PER_ZSPAGE
#error "OBJ_IDX_BITS too small for the largest zspage"
#endif
#if (1 << OBJ_CLASS_BITS) < ZS_SIZE_CLASSES
#error "OBJ_CLASS_BITS too small for the class table"
#endif

static inline uint64_t obj_encode(uint32_t pfn, unsigned class_idx, unsigned obj_idx)
{
	return ((uint64_t)pfn << OBJ_PFN_SHIFT) | ((uint64_t)class_idx << OBJ_CLASS_SHIFT) |
	       ((uint64_t)obj_idx << OBJ_IDX_SHIFT);
}
static inline uint32_t obj_pfn(uint64_t obj)
{
	return (uint32_t)((obj >> OBJ_PFN_SHIFT) & ZS_MAX_PFN);
}
static inline unsigned obj_class(uint64_t obj)
{
	return (unsigned)(obj >> OBJ_CLASS_SHIFT) & ((1u << OBJ_CLASS_BITS) - 1);
}
static inline unsigned obj_idx(uint64_t obj)
{
	return (unsigned)(obj >> OBJ_IDX_SHIFT) & ((1u << OBJ_IDX_BITS) - 1);
}
static inline uint64_t obj_with_pfn(uint64_t obj, uint32_t pfn)
{
	return (obj & ~(ZS_MAX_PFN << OBJ_PFN_SHIFT)) | ((uint64_t)pfn << OBJ_PFN_SHIFT);
}

/* ------------------------------------------------------------------ */
/* Locks                                                               */

/*
 * Class lock: a futex mutex (Drepper, "Futexes Are Tricky", mutex 3) that
 * spins briefly, then sleeps -- a pure spinlock is wrong in userspace, where
 * the holder can be preempted. Taking and dropping it uncontended is one
 * inlined atomic each (glibc's adaptive mutex: two calls and its type
 * dispatch per pair, ~11 % of an alloc/free cycle's profile).
 *
 *   state  0: unlocked; 1: locked, nobody asleep; 2: locked, a thread may
 *          be asleep in FUTEX_WAIT (the unlock must wake one)
 *
 * A thread that finds it taken counts itself in 'waiters' until it owns
 * it; compaction reads that to drop the lock early. Debug builds record
 * the owner so that functions with a _locked suffix or __ prefix can
 * assert it. After fork() the child's thread owns what its parent's
 * forking thread held; zs_mutex_unlock() there may issue one useless wake.
 */
struct zs_mutex {
	uint32_t state;   /* acquire RMW to take, release exchange to drop */
	unsigned waiters; /* atomic, relaxed: a hint */
#if ZS_DEBUG >= 2
	pthread_t owner; /* atomic, relaxed: debug only */
	bool owned;      /* atomic, relaxed: debug only */
#endif
};

void zs_mutex_init(struct zs_mutex *l);
void zs_mutex_destroy(struct zs_mutex *l);
/* The contended paths (class.c): spin, then sleep on / wake the futex. */
void zs_mutex_lock_slow(struct zs_mutex *l);
void zs_mutex_wake(struct zs_mutex *l);

/* Debug builds: the calling thread now owns l (for assert_held). */
static inline void zs_mutex_note_owner(struct zs_mutex *l)
{
#if ZS_DEBUG >= 2
	store_relaxed(&l->owner, pthread_self());
	store_relaxed(&l->owned, true);
#endif
	(void)l;
}

static inline void zs_mutex_lock(struct zs_mutex *l)
{
	uint32_t c = 0;

	/* acquire: pairs with zs_mutex_unlock()'s release exchange */
	if (!__builtin_expect(cas_strong_acquire(&l->state, &c, 1), 1))
		zs_mutex_lock_slow(l);
	zs_mutex_note_owner(l);
}

/* Takes the lock if it is free, without waiting. */
static inline bool zs_mutex_trylock(struct zs_mutex *l)
{
	uint32_t c = 0;

	/* acquire: as in zs_mutex_lock() */
	if (!cas_strong_acquire(&l->state, &c, 1))
		return false;
	zs_mutex_note_owner(l);
	return true;
}

static inline void zs_mutex_unlock(struct zs_mutex *l)
{
#if ZS_DEBUG >= 2
	store_relaxed(&l->owned, false);
#endif
	/* release: pairs with the acquire RMW of the next owner */
	if (__builtin_expect(exchange_release(&l->state, 0) == 2, 0))
		zs_mutex_wake(l);
}

static inline bool zs_mutex_contended(struct zs_mutex *l)
{
	return load_relaxed(&l->waiters) != 0;
}

#if ZS_DEBUG >= 2
#define assert_held(l)                                                                             \
	ZS_ASSERT_INTERNAL(load_relaxed(&(l)->owned) &&                                            \
			   pthread_equal(load_relaxed(&(l)->owner), pthread_self()))
#else
#define assert_held(l) ((void)(l))
#endif

/* ------------------------------------------------------------------ */
/* Lists                                                               */

struct list_node {
	struct list_node *prev, *next;
};

static inline void list_init(struct list_node *h)
{
	h->prev = h->next = h;
}
static inline bool list_empty(const struct list_node *h)
{
	return h->next == h;
}
static inline void list_add(struct list_node *h, struct list_node *n)
{
	n->next = h->next;
	n->prev = h;
	h->next->prev = n;
	h->next = n;
}
static inline void list_del(struct list_node *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->prev = n->next = n;
}

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* ------------------------------------------------------------------ */
/* Structures                                                          */

/*
 * Fullness groups, as in the kernel: 0 = empty, 1..10 = 0-9 % .. 90-99 %
 * used, 11 = full. Allocation takes the fullest non-full zspage; compaction
 * moves objects from the emptiest into the fullest.
 */
enum {
	ZS_FULLNESS_EMPTY = 0,
	ZS_FULLNESS_FULL = 11,
	ZS_NR_FULLNESS = 12,
};

#define ZSPAGE_WRLOCKED (-1)

/*
 * A zspage: 1..16 pages holding objects of one class, objects numbered
 * 0..objs_per_zspage-1 at byte offset idx * class->size from the start of
 * page 0; an object may straddle two pages.
 *
 * Invariants (class lock held, zspage linked):
 *   inuse == bump - |free list|,   0 < inuse <= class->objs_per_zspage
 *   fullness == fullness_group(inuse, class->objs_per_zspage)
 *   for every i < nr_pages: arena.pdesc[pfn[i]] == this zspage
 *   dead == false
 * A zspage unlinked for freeing is 'dead'; its descriptor lives until an
 * RCU grace period has passed. Descriptors come from the pool's slab
 * (slab.c), slab_object_size(nr_pages) bytes each.
 */
struct zspage {
	union {
		struct list_node list; /* fullness list link. Synchronization: class lock */
		/* once dead: no one follows 'list' of an unlinked zspage, so
		 * call_rcu's link reuses its 16 bytes */
		struct rcu_head rcu;
	};
	int32_t lock;          /* zspage lock: reader count or ZSPAGE_WRLOCKED; atomic */
	uint16_t inuse;        /* live objects. Synchronization: class lock */
	uint16_t freeobj;      /* head of the in-zspage free list, OBJ_NONE if empty;
				  links live in the free objects. Sync: class lock */
	uint16_t bump;         /* objects [0, bump) were handed out at least once;
				  beyond that, memory is untouched. Sync: class lock */
	uint8_t class_idx;     /* immutable */
	uint8_t nr_pages;      /* immutable */
	uint8_t fullness;      /* Synchronization: class lock */
	bool dead;             /* unlinked for freeing. Synchronization: class lock */
	bool spare;            /* empty, kept for reuse. Synchronization: class lock */
	unsigned long huge_handle; /* huge class: handle of its only object. Written under
				      the class lock (store_relaxed); read under it, or
				      load_relaxed under the zspage read lock */
	/*
	 * Page frame numbers. Written only with the class lock and the zspage
	 * write lock held (migration); read with either the class lock or a
	 * zspage read lock held.
	 */
	uint32_t pfn[];
};

struct size_class {
	struct zs_mutex lock;
	struct list_node fullness_list[ZS_NR_FULLNESS]; /* Synchronization: class lock */
	unsigned long nr_zspages[ZS_NR_FULLNESS];       /* Synchronization: class lock */
	unsigned long objs_allocated;                   /* Synchronization: class lock */
	unsigned long objs_used;                        /* Synchronization: class lock */
	uint64_t handle_cache;   /* free handle slots cached for this class: head index + 1,
				    chained through the slot words. Sync: class lock */
	unsigned handle_cached;  /* Synchronization: class lock */
	unsigned size;           /* immutable: object size including the header */
	unsigned objs_per_zspage; /* immutable */
	unsigned pages_per_zspage; /* immutable */
	unsigned index;          /* immutable: index in the kernel's table, stored in obj */
	bool huge;               /* immutable: one object per page, no in-page header */
	/* immutable: fg_min[g] = the fewest objects in use of fullness group g
	 * or above, so re-filing after +-1 object needs no division */
	uint16_t fg_min[ZS_NR_FULLNESS];
} __attribute__((aligned(64)));

/*
 * Handle table: a reserved range of 8-byte slot words (layout above).
 * Slots [0, nr_committed) are mapped and stay mapped for the pool's life,
 * so a lockless reader can range-check and load any of them; pages of free
 * slots at or above bump may have been discarded (handle_table_shrink) and
 * read as zeros: not live.
 * Invariant: every slot below bump is live, in the global free list, in
 * exactly one class's handle cache, or held by a zs_malloc in progress.
 */
struct handle_table {
	uint64_t *slots;        /* immutable base of the reservation */
	size_t nr_max;          /* immutable: slots reserved */
	size_t nr_committed;    /* written under lock with store_release; validation
				   load_acquires it (pairs with the commit) */
	size_t bump;            /* slots handed out at least once. Sync: lock */
	uint64_t free_head;     /* global free list (index + 1). Sync: lock */
	size_t nr_free;         /* Synchronization: lock */
	uint64_t gen_seed;      /* randomises first generations; changed when the
				   table shrinks. Synchronization: lock */
	pthread_mutex_t lock;
};

/*
 * Arena chunk. Each of its 512 pages is exactly one of: in a zspage
 * (nr_used), free and returned to the OS (bit set in free_map), cached in
 * arena.cache (resident, not returned yet), or in transit (being returned
 * by a thread outside the arena lock).
 */
/* DRAINING: mapped, being emptied by zs_defrag(), no allocation from it. */
enum { CHUNK_UNMAPPED = 0, CHUNK_MAPPED, CHUNK_BUSY, CHUNK_DRAINING };
struct arena_chunk {
	uint64_t free_map[ZS_CHUNK_PAGES / 64]; /* Synchronization: arena lock */
	uint16_t nr_free;                       /* popcount(free_map). Sync: arena lock */
	uint16_t nr_used;                       /* Synchronization: arena lock */
	uint8_t state;                          /* Synchronization: arena lock */
};

/*
 * The cache of resident free pages (freed ones kept for reuse, fresh ones
 * faulted in ahead) holds 1/ARENA_CACHE_SHARE of the pages in use, between
 * ARENA_CACHE_MIN (512 KiB) and ARENA_CACHE_MAX (one chunk, 2 MiB): a large
 * growing pool then wakes the worker once per ~480 pages, not ~100.
 * Frees may pile up to ARENA_CACHE_SLACK pages above the capacity before
 * the cache is evicted back down to it: evicting at the capacity made a
 * burst of frees and the allocations after it (a store discarding and
 * rewriting a range) pay madvise and then a page fault for the same pages.
 */
#define ARENA_CACHE_MIN	  128
#define ARENA_CACHE_MAX	  ZS_CHUNK_PAGES
#define ARENA_CACHE_SHARE 64
#define ARENA_CACHE_SLACK ZS_CHUNK_PAGES
#define ARENA_CACHE_RING  (ARENA_CACHE_MAX + ARENA_CACHE_SLACK + 2 * ZS_MAX_CHAIN)
#define ARENA_PENDING_MAX 4096 /* evicted pages queued for the worker (16 MiB) */
/* a growing pool below this many ready pages (or half the refill's
 * target, if less) has the worker refill the cache */
#define ARENA_PREFAULT_LOW   32
/* The first refill after the pool's creation, a trim or a decay faults this
 * many pages in; each refill a growing pool asks for doubles it, up to the
 * cache's capacity. A fixed refill to the capacity cost a pool that is
 * trimmed often (or grows by a few pages) 128 page faults each time --
 * 40-180 us apiece in a VM -- for pages it never used. */
#define ARENA_PREFAULT_MIN   16
#define ARENA_PREFAULT_BATCH 64 /* pages per MADV_POPULATE_WRITE call */
/* the idle period is this many worker ticks: released after between
 * (TICKS - 1) / TICKS and 1 times decay_ms without allocation or free */
#define ARENA_DECAY_TICKS    4

struct arena {
	char *base;                 /* immutable: 2 MiB aligned reservation */
	size_t nr_chunks;           /* immutable: chunks reserved */
	struct zspage **pdesc;      /* per page: its zspage, RCU-published with
				       store_release, read with load_acquire; mapped
				       with the chunk, never unmapped */
	struct arena_chunk *chunks; /* Synchronization: lock */
	size_t hint;                /* no chunk below has free pages. Sync: lock */
	size_t top;                 /* chunks [0, top) were mapped at least once. Sync: lock */
	uint32_t cache[ARENA_CACHE_RING]; /* ring of freed resident pages. Sync: lock */
	unsigned cache_head, cache_nr;     /* Synchronization: lock */
	/*
	 * Pages evicted from the cache wait here for the worker thread, so
	 * that zs_free never makes the system call (and its TLB shootdown)
	 * itself; when the queue is full the freeing thread releases them.
	 * Synchronization: lock.
	 */
	uint32_t *pending;
	unsigned pending_nr;
	unsigned transit;               /* pages being released or prefaulted right now.
					   Synchronization: lock */
	bool prefault_wanted;           /* the pool grows: refill the cache with
					   prefaulted pages. Synchronization: lock */
	unsigned prefault_goal;         /* a refill's target (pages cached), before the
					   capacity's bound: doubled by each request for a
					   refill, from ARENA_PREFAULT_MIN / 2 after a trim.
					   Synchronization: lock */
	pthread_cond_t work;            /* worker waits for pending pages (CLOCK_MONOTONIC:
					   it also times the decay ticks) */
	pthread_cond_t idle;            /* arena_trim waits for transit == 0 */
	pthread_t worker;
	bool worker_started, worker_stop; /* Synchronization: lock */
	bool fork_pause;                /* a fork() is being prepared: the worker starts
					   no batch. Synchronization: lock */
	unsigned long pages_used;       /* Synchronization: lock; relaxed reads by stats */
	unsigned long chunks_mapped;    /* Synchronization: lock; relaxed reads by stats */
	unsigned long chunks_released;  /* Synchronization: lock; relaxed reads by stats */
	unsigned long pages_prefaulted; /* Synchronization: lock; relaxed reads by stats */
	unsigned long pages_decayed;    /* cached pages released after an idle period.
					   Synchronization: lock; relaxed reads by stats */
	/*
	 * Decay (arena.c): while 'decay_armed', the worker ticks every
	 * decay_ms / ARENA_DECAY_TICKS and counts ticks in 'epoch'; allocation
	 * and free (which hold the lock anyway) write 'last_active = epoch',
	 * a store to a line they write already. ARENA_DECAY_TICKS ticks with
	 * no activity release what is cached: decay_fn (the pool's spares,
	 * surplus deferred buffers, the handle table's tail), then the cache.
	 */
	unsigned decay_ms;              /* immutable; 0: never */
	uint64_t epoch, last_active;    /* Synchronization: lock */
	bool decay_armed;               /* something may be cached: tick. Sync: lock */
	bool decay_busy;                /* the worker runs decay_fn. Sync: lock */
	bool (*decay_fn)(void *ctx);    /* returns true if something is still held
					   that a later tick should release. Sync: lock */
	void *decay_ctx;                /* Synchronization: lock */
	bool hugepages;             /* immutable */
	pthread_mutex_t lock;
};

/*
 * The slab of zspage descriptors (slab.c). A slab page: this header, then
 * objects of its cache's size; free ones are linked through their first
 * word. Invariants (slab lock held): inuse == bump - |free|; a page is on
 * its cache's partial[group] list iff 0 < inuse < capacity, group ==
 * inuse * SLAB_GROUPS / capacity (SLAB_GROUPS when on no list); its bit
 * in used_map is set iff it is in use or the spare.
 */
#define SLAB_CACHES (ZS_MAX_CHAIN / 2) /* one object size per two chain lengths */
#define SLAB_GROUPS 4
struct zs_slab;
struct slab_page {
	struct list_node link; /* in partial[group]. Synchronization: slab lock */
	struct zs_slab *slab;  /* immutable while the page is in use */
	void *free;            /* Synchronization: slab lock */
	uint16_t inuse, bump;  /* Synchronization: slab lock */
	uint8_t cache, group;  /* Synchronization: slab lock */
};
struct slab_cache {
	struct list_node partial[SLAB_GROUPS]; /* by fill. Synchronization: slab lock */
	unsigned size;         /* immutable: bytes per object */
	unsigned capacity;     /* immutable: objects per page */
};
struct zs_slab {
	char *base;            /* immutable: reserved range of nr_max pages */
	size_t nr_max;         /* immutable */
	size_t nr_committed;   /* pages made accessible. Synchronization: lock */
	uint64_t *used_map;    /* pages in use or spare (resident). Sync: lock */
	size_t map_words;      /* immutable */
	size_t hint;           /* no clear bit in used_map below this word. Sync: lock */
	unsigned long nr_pages; /* resident pages. Sync: lock; relaxed reads (stats) */
	struct slab_page *spare; /* one empty page kept for reuse. Sync: lock */
	struct slab_cache caches[SLAB_CACHES];
	pthread_mutex_t lock;
};

struct bg_compactor;
struct deferred;

struct zs_pool {
	char name[64];              /* immutable */
	unsigned flags;             /* immutable */
	unsigned chain_size;        /* immutable */
	size_t max_pages;           /* immutable; 0 = no limit */
	size_t huge_class_size;     /* immutable */
	struct size_class *size_class[ZS_SIZE_CLASSES]; /* immutable: logical -> canonical */
	struct size_class *classes; /* immutable: canonical classes, ascending size */
	unsigned nr_classes;        /* immutable */
	struct arena arena;
	struct handle_table handles;
	struct zs_slab slab;        /* zspage descriptors */
	unsigned long pages_allocated; /* pages in zspages; atomic (reserve with RMW) */
	unsigned long pages_max;       /* atomic, relaxed: statistics */
	unsigned long pages_compacted; /* atomic, relaxed: statistics */
	unsigned long pages_migrated;  /* atomic, relaxed: statistics */
	unsigned long invalid_handles; /* atomic, relaxed: statistics */
	unsigned long compactions;     /* atomic, relaxed: statistics */
	unsigned long spare_pages;     /* pages of spare zspages; atomic (budget RMW) */
	unsigned long building;        /* zs_malloc calls building a zspage with no lock
					  held; see pool_build_begin() */
	bool build_gate;               /* set by the fork handler: no build starts */
	unsigned long dying;           /* zspages unlinked (dead) whose pages are not back in
					  the arena yet: fetch_add under their class lock,
					  fetch_sub_release when zspage_destroy() is done;
					  the fork handler waits for 0 (load_acquire) */
	pthread_mutex_t compact_lock;  /* held by zs_compact for its whole run (a second
					  one's trylock fails: it returns 0), and across
					  fork() */
	pthread_mutex_t defrag_lock;   /* held by zs_defrag for its run, and across fork() */
	pthread_mutex_t setup_lock;    /* deferred-free setup: creating pool->deferred,
					  setting the hook; and across fork() */
	bool fork_pending;             /* a fork() waits for compact_lock/defrag_lock: those
					  runs stop early. atomic, relaxed (a hint) */
	struct list_node fork_link;    /* in the registry of pools. Sync: fork.c's lock */
	pthread_rwlock_t migrate_lock; /* see the lock order above */
	size_t compact_threshold;      /* immutable */
	struct bg_compactor *bg;       /* immutable after create */
	struct deferred *deferred;     /* created lazily under setup_lock; store_release
					  publishes it, load_acquire reads it */
	zs_deferred_hook deferred_hook; /* Synchronization: setup_lock */
	void *deferred_hook_ctx;       /* Synchronization: setup_lock */
	struct zs_pool_config config;  /* immutable copy */
};

/* ------------------------------------------------------------------ */
/* Race windows (debug builds with -Drace_hooks=true): tests install a
 * hook that yields or blocks at these points to force interleavings. */

enum zs_race_point {
	ZS_RACE_FREE_LOOKUP,       /* zs_free: obj read locklessly, class not locked */
	ZS_RACE_FREE_RELEASE,      /* zs_free: zspage unlinked, class unlocked, pages held */
	ZS_RACE_READ_LOOKUP,       /* read/write: zspage found under RCU, not locked */
	ZS_RACE_MIGRATE_LOOKUP,    /* migration: zspage found under RCU, class not locked */
	ZS_RACE_MIGRATE_COPY,      /* migration: page copied, obj words not yet rewritten */
	ZS_RACE_COMPACT_BATCH,     /* compaction: between batches, no lock held */
	ZS_RACE_DEFERRED_HANDOFF,  /* deferred free: buffer being swapped */
	ZS_NR_RACE_POINTS
};

#ifdef ZS_RACE_HOOKS
extern void (*zs_race_hook)(enum zs_race_point point, struct zs_pool *pool);
#define race_window(point, pool)                                                                   \
	do {                                                                                       \
		void (*h_)(enum zs_race_point, struct zs_pool *) = load_acquire(&zs_race_hook);    \
		if (h_)                                                                            \
			h_((point), (pool));                                                       \
	} while (0)
#else
#define race_window(point, pool) ((void)(pool))
#endif

/* ------------------------------------------------------------------ */
/* fork.c: the registry of pools and the fork() handlers                */

/* Registers a new pool (and, once, the fork handlers); removes one. */
void fork_register_pool(struct zs_pool *pool);
void fork_unregister_pool(struct zs_pool *pool);

/* ------------------------------------------------------------------ */
/* arena.c: backing memory                                             */

int arena_init(struct arena *a, size_t reserve_pages, bool hugepages, unsigned decay_ms);
/*
 * Decay: after decay_ms without arena allocation or free, the worker calls
 * fn(ctx) with no arena lock held (it may free zspages), then gives every
 * cached page back. arena_decay_stop() unsets it and waits for a call in
 * progress (zs_destroy_pool, before it tears down what fn touches).
 */
void arena_set_decay(struct arena *a, bool (*fn)(void *ctx), void *ctx);
void arena_decay_stop(struct arena *a);
/* Something was cached outside the arena (a deferred buffer): tick. */
void arena_note_activity(struct arena *a);
void arena_destroy(struct arena *a);
/* Fills pfns[0..n) with pages, contiguous when it can. 0 or -ENOMEM. */
int arena_alloc_pages(struct arena *a, unsigned n, uint32_t *pfns);
/* One free page in a chunk below 'below_chunk', bypassing the cache (defrag). */
int arena_alloc_page_below(struct arena *a, size_t below_chunk, uint32_t *pfn);
/* Returns pages; they are cached resident or given back to the OS. */
void arena_free_pages(struct arena *a, unsigned n, const uint32_t *pfns);
/* Returns pages to the OS at once, bypassing the cache (migration). */
void arena_return_pages(struct arena *a, unsigned n, const uint32_t *pfns);
/* Gives every cached or queued page and every empty chunk back to the OS,
 * and waits for releases in progress: RSS reflects it when this returns. */
void arena_trim(struct arena *a);
/* Picks chunks worth emptying by migration, highest first, and marks them
 * DRAINING; arena_undrain() ends that for one that was not emptied. */
size_t arena_defrag_victims(struct arena *a, size_t *victims, size_t max);
void arena_undrain(struct arena *a, size_t chunk);
size_t arena_metadata_bytes(struct arena *a);
/* fork(): with the pool's class locks held, takes the arena lock once no
 * page is in transit; release drops it (child: the worker is gone). */
void arena_fork_lock(struct arena *a);
/* fork() phase 1: no decay starts, and the one in progress has finished. */
void arena_fork_quiesce(struct arena *a);
/* Waits for a decay release in progress, if any. */
void arena_decay_wait(struct arena *a);
void arena_fork_release(struct arena *a, bool child);
unsigned long arena_resident_pages(struct arena *a);
/* The cache's capacity now, and the resident free pages it holds (for tests). */
void arena_cache_state(struct arena *a, unsigned *capacity, unsigned *cached);
/* Tests: the refill's current target, and whether one is wanted. */
void arena_prefault_state(struct arena *a, unsigned *target, bool *wanted);

static inline void *arena_page(const struct arena *a, uint32_t pfn)
{
	return a->base + ((size_t)pfn << ZS_PAGE_SHIFT);
}
static inline size_t pfn_chunk(uint32_t pfn)
{
	return pfn >> (ZS_CHUNK_SHIFT - ZS_PAGE_SHIFT);
}
/* Call under rcu_read_lock(), or with the class lock of the zspage held. */
static inline struct zspage *pdesc_zspage(const struct arena *a, uint32_t pfn)
{
	return load_acquire(&a->pdesc[pfn]); /* pairs with pdesc_set()'s release */
}
static inline void pdesc_set(struct arena *a, uint32_t pfn, struct zspage *z)
{
	store_release(&a->pdesc[pfn], z); /* publishes z's initialised fields */
}

/* OS layer (arena.c), also used by the handle table. */
void *vm_reserve(size_t bytes, size_t align);
void vm_unreserve(void *addr, size_t bytes);
int vm_commit(void *addr, size_t bytes);

/* ------------------------------------------------------------------ */
/* slab.c: zspage descriptors                                          */

/* Reserves room for max_objs descriptors. 0 or -ENOMEM. */
int slab_init(struct zs_slab *s, size_t max_objs);
/* Unmaps everything: call once no descriptor is in use or queued for RCU. */
void slab_destroy(struct zs_slab *s);
/* Bytes of a descriptor of a zspage of nr_pages pages. */
size_t slab_object_size(unsigned nr_pages);
/* A descriptor for a zspage of nr_pages, uninitialised; NULL when no page
 * could be made accessible. Takes the slab lock (a leaf). */
void *slab_alloc(struct zs_slab *s, unsigned nr_pages);
/* A descriptor of obj's size on a page fuller than obj's, when obj's page
 * is at most half full (relocation, zs_compact); else NULL. */
void *slab_alloc_denser(struct zs_slab *s, const void *obj);
/* Frees a descriptor; an emptied page is kept as the spare or released.
 * Any thread, no lock held or a class lock. */
void slab_free(void *obj);
/* Releases the spare page. */
void slab_trim(struct zs_slab *s);
/* Resident bytes; resident pages holding descriptors (tests). */
size_t slab_bytes(struct zs_slab *s);
unsigned long slab_resident_pages(struct zs_slab *s);
/* fork(): after liburcu paused its call_rcu thread (fork.c). */
void slab_fork_lock(struct zs_slab *s);
void slab_fork_release(struct zs_slab *s);

/* ------------------------------------------------------------------ */
/* handle.c: handle slots, generation tags, validation                 */

int handle_table_init(struct handle_table *t, size_t max_slots);
void handle_table_destroy(struct handle_table *t);
/* Takes a free slot for 'class' (refilling its cache). 0 = out of slots. */
unsigned long handle_alloc_locked(struct handle_table *t, struct size_class *class);
/* Makes a handle taken by handle_alloc_locked() live, pointing at obj. */
void handle_publish_locked(struct handle_table *t, struct size_class *class,
			   unsigned long handle, uint64_t obj);
/* Points a live handle at a new obj (compaction, migration). */
void handle_move_locked(struct handle_table *t, struct size_class *class, unsigned long handle,
			uint64_t obj);
/* Frees a live handle (bumping its generation) into the class's cache. */
void handle_free_locked(struct handle_table *t, struct size_class *class, unsigned long handle);
/* Returns a slot taken by handle_alloc_locked() but never published. */
void handle_unalloc_locked(struct handle_table *t, struct size_class *class,
			   unsigned long handle);
/* Gives a class's cached slots back to the global list (destroy, trim). */
void handle_cache_drain_locked(struct handle_table *t, struct size_class *class);
size_t handle_table_bytes(struct handle_table *t);
/* Discards the pages of free slots above the highest slot in use; returns
 * the bytes given back. Takes the table lock: no class lock required. */
size_t handle_table_shrink(struct handle_table *t);

/*
 * Lockless validation: returns the handle's live obj in *obj, or -EBADF if
 * the handle is out of range, malformed, free, or of another generation
 * (its low 16 bits). *wordp (if non-NULL) receives the slot address. Safe
 * from any thread; authoritative only under the class lock named by obj's
 * class together with zspage_obj_is() (the whole generation).
 */
static inline int handle_lookup(struct handle_table *t, unsigned long handle, uint64_t *obj,
				uint64_t **wordp)
{
	uint64_t idx = handle >> HANDLE_IDX_SHIFT;
	uint64_t gen = (handle >> HANDLE_GEN_SHIFT) & ((1u << SLOT_GEN_BITS) - 1); /* low bits */
	uint64_t w;

	/* pairs with the store_release of nr_committed in handle.c */
	if ((handle & 1) || !((handle >> HANDLE_GEN_SHIFT) & HANDLE_GEN_MASK) ||
	    idx >= load_acquire(&t->nr_committed))
		return -EBADF;
	/* pairs with handle_publish/move_locked()'s release: obj's zspage is
	 * initialised and published before the handle points at it */
	w = load_acquire(&t->slots[idx]);
	if (!(w & SLOT_ALLOC) || (w >> SLOT_GEN_SHIFT) != gen)
		return -EBADF;
	*obj = w & SLOT_OBJ_MASK;
	if (wordp)
		*wordp = &t->slots[idx];
	return 0;
}

/* ------------------------------------------------------------------ */
/* class.c: size-class table                                           */

/* Fills pool->classes / size_class / huge_class_size for pool->chain_size. */
int class_table_init(struct zs_pool *pool);
void class_table_destroy(struct zs_pool *pool);
unsigned class_chain_size(unsigned size, unsigned max_chain);
static inline unsigned class_logical_index(size_t size)
{
	if (size <= ZS_MIN_ALLOC_SIZE)
		return 0;
	size_t idx = (size - ZS_MIN_ALLOC_SIZE + ZS_SIZE_CLASS_DELTA - 1) / ZS_SIZE_CLASS_DELTA;
	return idx < ZS_SIZE_CLASSES ? (unsigned)idx : ZS_SIZE_CLASSES - 1;
}
static inline struct size_class *pool_class(struct zs_pool *pool, size_t size)
{
	return pool->size_class[class_logical_index(size)];
}
/* Bytes of payload an object of this class holds. */
static inline size_t class_capacity(const struct size_class *c)
{
	return c->huge ? c->size : c->size - ZS_HANDLE_SIZE;
}

/* ------------------------------------------------------------------ */
/* zspage.c: zspages, in-zspage free list, fullness, zspage lock        */

unsigned fullness_group(unsigned inuse, unsigned objs_per_zspage);
/* The group of 'inuse' objects, stepping from a nearby group 'from'. */
static inline unsigned class_fullness_from(const struct size_class *c, unsigned inuse,
					   unsigned from)
{
	unsigned g = from;

	while (g + 1 < ZS_NR_FULLNESS && c->fg_min[g + 1] <= inuse)
		g++;
	while (g > 0 && c->fg_min[g] > inuse)
		g--;
	return g;
}
/* Allocates pages and a descriptor; publishes pdesc. No lock held. */
struct zspage *zspage_create(struct zs_pool *pool, struct size_class *class);
/* Frees a dead zspage's pages (now) and descriptor (after RCU). No lock held. */
void zspage_destroy(struct zs_pool *pool, struct zspage *z);
/*
 * Moves z's descriptor to a denser slab page (slab_alloc_denser()), when
 * z's page is sparse and no reader holds z: the new one takes z's place in
 * the fullness list and in pdesc. Returns the old descriptor, dead, for
 * zs_rcu_free_zspage() once the class lock is dropped; NULL if z stays.
 */
struct zspage *zspage_relocate_locked(struct zs_pool *pool, struct size_class *class,
				      struct zspage *z);
void zspage_link_locked(struct size_class *class, struct zspage *z);
void zspage_unlink_locked(struct size_class *class, struct zspage *z);
/* Re-files z by its in-use count; returns the new group. */
unsigned zspage_refile_locked(struct size_class *class, struct zspage *z);
/* Fullest non-full zspage, or NULL. */
struct zspage *zspage_find_locked(struct size_class *class);
/* Takes a free object of z for handle (writing its header); returns obj. */
uint64_t zspage_obj_alloc_locked(struct zs_pool *pool, struct size_class *class,
				 struct zspage *z, unsigned long handle);
/* Puts obj back on z's free list, if it carries exactly this handle (the
 * whole generation); false, and nothing changed, if it does not. */
bool zspage_obj_free_locked(struct zs_pool *pool, struct size_class *class, struct zspage *z,
			    uint64_t obj, unsigned long handle);
/* Handle stored for object idx of z, or 0 if that object is free. */
unsigned long zspage_obj_handle_locked(struct zs_pool *pool, struct size_class *class,
				       struct zspage *z, unsigned idx);
/*
 * Copies len payload bytes from src into object idx of z. The class lock
 * keeps compaction and migration -- which move objects and pages only under
 * it -- away, so a freshly allocated object needs no zspage lock.
 */
void zspage_obj_write_locked(struct zs_pool *pool, struct size_class *class, struct zspage *z,
			     unsigned idx, const void *src, size_t len);
/* Copies an object's capacity bytes between two locations (compaction). */
void zspage_obj_copy(struct zs_pool *pool, struct size_class *class, struct zspage *dz,
		     unsigned didx, struct zspage *sz, unsigned sidx);
bool zspage_is_valid_locked(struct zs_pool *pool, struct size_class *class, struct zspage *z);

/*
 * An object's 8-byte header: at a multiple of 16 from the zspage's start,
 * so aligned and never across a page. Written under the class lock;
 * relaxed atomics because a read or write of a stale handle checks it
 * under a zspage read lock while the slot's new owner may be freeing the
 * object (the caller's bug, to be reported -- not a data race of ours).
 */
static inline uint64_t obj_header_load(const void *p)
{
	return load_relaxed((const uint64_t *)p);
}

/*
 * Object location: page index in the zspage and offset in that page of
 * object idx's first byte.
 */
static inline void obj_location(const struct size_class *c, unsigned idx, unsigned *page,
				unsigned *off)
{
	size_t byte = (size_t)idx * c->size;
	*page = (unsigned)(byte >> ZS_PAGE_SHIFT);
	*off = (unsigned)(byte & (ZS_PAGE_SIZE - 1));
}

/*
 * zspage lock (seed 004). Readers share it and may be slow; writers
 * (compaction, migration) only ever try it and back off when readers hold
 * it. Readers wait for a writer -- who never blocks while holding it -- by
 * spinning with a bounded backoff, then yielding.
 */
void zspage_read_lock_slow(struct zspage *z, int old);
static inline void zspage_read_lock(struct zspage *z)
{
	int old = load_relaxed(&z->lock);

	/* acquire: pairs with zspage_write_unlock()'s release, so the reader
	 * sees the pfn[] and obj words the writer left */
	while (old != ZSPAGE_WRLOCKED) {
		if (cas_weak_acquire(&z->lock, &old, old + 1))
			return;
		/* the failed CAS loaded the current value into old: retry at once */
	}
	zspage_read_lock_slow(z, old);
}
static inline void zspage_read_unlock(struct zspage *z)
{
	/* release: the reader's accesses to the object happen before a writer
	 * that later takes the lock (pairs with zspage_try_write_lock) */
	fetch_sub_release(&z->lock, 1);
}
static inline bool zspage_try_write_lock(struct zspage *z)
{
	int old = 0;
	/* acquire: pairs with zspage_read_unlock()'s release */
	return cas_strong_acquire(&z->lock, &old, ZSPAGE_WRLOCKED);
}
static inline void zspage_write_unlock(struct zspage *z)
{
	store_release(&z->lock, 0); /* pairs with zspage_read_lock()'s acquire */
}

/* ------------------------------------------------------------------ */
/* pool.c: create/destroy, malloc/free, object access                  */

/* Reports an invalid handle: aborts, or counts it (RETURN_ERRORS). */
void pool_report_invalid(struct zs_pool *pool, const char *op, unsigned long handle);
/*
 * Frees a validated handle with the class lock held; returns a zspage that
 * became empty (unlinked, dead) for the caller to destroy after unlocking,
 * or NULL. Returns (struct zspage *)-1 after reporting an invalid handle.
 */
struct zspage *pool_free_locked(struct zs_pool *pool, struct size_class *class,
				unsigned long handle, const char *op);
#define POOL_FREE_INVALID ((struct zspage *)-1)
/*
 * Spare zspages: an emptied zspage may stay linked (group EMPTY) for reuse,
 * one per class, POOL_SPARE_PAGES per pool. Takes an emptied zspage: keeps
 * it as the spare and returns NULL, or unlinks it, marks it dead and
 * returns it for zspage_destroy() after the class lock is dropped.
 * 512 pages (2 MiB) leave every class of a chain-8 pool its spare where
 * objects of all sizes come and go (64 covered a dozen classes: the rest
 * built and tore down a zspage per alloc/free cycle); pool_drop_spares()
 * gives them up at max_pages, and the decay on idle.
 */
#define POOL_SPARE_PAGES 512
struct zspage *pool_retire_locked(struct zs_pool *pool, struct size_class *class,
				  struct zspage *z, bool keep_spare);
/* Unlinks the class's spare, if any, for destruction (NULL if none). */
struct zspage *pool_take_spare_locked(struct zs_pool *pool, struct size_class *class);
/*
 * Releases what an idle pool keeps for reuse: every class's spare zspage
 * (their pages go to the arena's cache), the class handle caches, the
 * handle table's free tail, and surplus deferred-free buffers. No lock
 * held; takes each class lock in turn. Returns true if something remains
 * that a later call could release (buffers still being drained, a spare
 * kept by a free meanwhile). The arena's decay calls it, and zs_compact()
 * and zs_pool_trim() before giving the arena's cache back.
 */
bool pool_release_idle(struct zs_pool *pool);
/*
 * Frees every spare zspage, for an allocation the page limit refuses:
 * spares are a cache and must not be why the pool runs out. No lock held.
 * Returns whether it freed any.
 */
bool pool_drop_spares(struct zs_pool *pool);
/* Frees n handles, grouping runs of one class under one lock hold. */
void pool_free_batch(struct zs_pool *pool, unsigned long *handles, size_t n);
/* Brackets a zspage build done with no lock held (fork.c waits for them). */
void pool_build_begin(struct zs_pool *pool);
void pool_build_end(struct zs_pool *pool);
/* Adds to / subtracts from pages_allocated; false if over max_pages. */
bool pool_reserve_pages(struct zs_pool *pool, unsigned n);
void pool_unreserve_pages(struct zs_pool *pool, unsigned n);

/* ------------------------------------------------------------------ */
/* compact.c: compaction and the background policy                     */

unsigned long class_compactable_locked(struct size_class *class);
int bg_compactor_start(struct zs_pool *pool);
/* Whether a PSI trigger on /proc/pressure/memory wakes the compactor. */
bool bg_psi_active(struct zs_pool *pool);
void bg_compactor_stop(struct zs_pool *pool);
/* fork() child: the compactor thread stayed in the parent. */
void bg_compactor_fork_child(struct zs_pool *pool);

/* ------------------------------------------------------------------ */
/* migrate.c: page migration and arena defragmentation                 */

/* Moves page pfn to a page below chunk 'below'. 0, -EAGAIN (busy, freed,
 * or moved meanwhile: skip it), -ENOMEM (no lower page). */
int migrate_page(struct zs_pool *pool, uint32_t pfn, size_t below);

/* ------------------------------------------------------------------ */
/* deferred.c: deferred free                                           */

void deferred_destroy(struct zs_pool *pool);
/* fork(): phase 1 (no setup, no drain pass), phase 2 (the queue lock),
 * then both released (child: no drainer from now on). */
void deferred_fork_quiesce(struct zs_pool *pool);
void deferred_fork_lock(struct zs_pool *pool);
void deferred_fork_release(struct zs_pool *pool, bool child);
void deferred_stats(struct zs_pool *pool, struct zs_pool_stats *st);
/* Frees the spare buffers above the preallocated number (no lock held);
 * true if grown buffers are still queued or in use. */
bool deferred_trim(struct zs_pool *pool);

/* ------------------------------------------------------------------ */
/* rcu.c: RCU wrappers (liburcu-bp) with ThreadSanitizer annotations    */

void zs_rcu_read_lock(void);
void zs_rcu_read_unlock(void);
/* Frees z after a grace period. */
void zs_rcu_free_zspage(struct zspage *z);
/* Waits for every zs_rcu_free_zspage() queued so far. Not inside a
 * read-side critical section (liburcu refuses, with a message). */
void zs_rcu_barrier(void);
/* Whether this thread is inside a read-side critical section. */
bool zs_rcu_reading(void);
/* liburcu's fork handlers, in the order it needs them (fork.c calls them). */
void zs_rcu_fork_prepare(void);
void zs_rcu_fork_parent(void);
void zs_rcu_fork_child(void);

#endif /* ZS_INTERNAL_H */
