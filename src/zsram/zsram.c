/* SPDX-License-Identifier: MIT */
/*
 * zsram.c: the page store -- slots, read/write/discard, pread/pwrite,
 * mm_stat, compaction and recompression.
 *
 * A slot per 4 KiB page holds a handle (or a same-filled page's fill
 * pattern) and a flags word with the stored length, the page's kind and a
 * lock bit; 16 bytes, so a slot never straddles a cache line and its lock
 * costs no line of its own.
 *
 * Locking. One lock per slot (the SLOT_LOCK bit), nothing store-wide on the
 * read or write paths:
 *
 *   slot lock -> libzsmalloc's locks (taken inside its calls)
 *
 * A thread holds at most one slot lock, and libzsmalloc never waits for a
 * slot lock (no deferred-free hook is registered: the drain thread only
 * frees handles), so calls into the pool under a slot lock cannot deadlock,
 * zs_free_deferred_flush included (obj_alloc at mem_limit, under the lock
 * of a partial write or a recompression).
 *
 *   write    compress into the thread's scratch buffer, zs_malloc_write
 *            the new object -- all without the slot lock --
 *            then lock, swap the slot's (val, flags), unlock, and free the
 *            old object (see "free" below). Two writes of one page
 *            serialise on the swap; the page is never without valid
 *            contents, and a failed allocation (ENOSPC) leaves it untouched.
 *   read     lock, decompress from the object into the caller's buffer,
 *            unlock (as zram does): the handle cannot be freed meanwhile
 *            because every free first removes it from the slot under the
 *            same lock. Same-filled and empty pages are filled after
 *            unlocking, from the snapshot.
 *   partial  pwrite of part of a page: read-modify-write all under the slot
 *            lock, so concurrent partial writes of one page never lose an
 *            update.
 *   discard  lock, empty the slot, unlock, free the old object.
 *   free     the old object of a discard or an overwrite (write, partial
 *            write, recompression) is freed after the slot lock is dropped:
 *            no reader can reach it any more, since every reader takes that
 *            lock first. By default it goes to zs_free_deferred (the pool's
 *            drain thread frees it, off the caller's path); ZSRAM_SYNC_FREE
 *            makes it zs_free. Either way the statistics change with the
 *            slot, not with the free: compr_data_size and the rest never
 *            count an object that no slot holds. Pool memory (mem_used_total)
 *            lags by the queued frees; zsram_compact and a write refused at
 *            mem_limit finish them (zs_free_deferred_flush) first.
 *
 * Statistics are relaxed atomic counters in per-thread shards (one cache
 * line each), so writers on different threads do not share a line; mm_stat
 * adds the shards up. They are updated after the slot swap and are exact
 * whenever no write or discard is in flight.
 */
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "zsmalloc.h"
#include "atomics.h"
#include "codec.h"
#include "zsram_internal.h"
#include "../fault.h"

/*
 * Slot flags word:
 *   bits  0..12  stored length: 1..4096 for an object; 0 when empty or same-filled
 *   bit   16     LOCK
 *   bit   17     SAME: val is the 8-byte fill pattern
 *   bit   18     HUGE: stored raw, length 4096
 *   bit   19     INCOMPRESSIBLE: recompression could not shrink it
 *   bit   20     PRIO: compressed with the secondary (recompression) codec
 */
#define SLOT_LEN_MASK       0x1fffull
#define SLOT_LOCK           (1ull << 16)
#define SLOT_SAME           (1ull << 17)
#define SLOT_HUGE           (1ull << 18)
#define SLOT_INCOMPRESSIBLE (1ull << 19)
#define SLOT_PRIO           (1ull << 20)

#if ZSRAM_PAGE_SIZE > SLOT_LEN_MASK
#error "SLOT_LEN_MASK cannot hold a page's length"
#endif

/* Spins on a held slot lock before yielding the CPU. */
#define SLOT_SPINS 256
/* Statistics shards (a power of two); threads pick one round-robin. */
#define NR_SHARDS 32

/*
 * Invariants (flags without LOCK):
 *   empty:          flags == 0 and val == 0
 *   same-filled:    flags == SLOT_SAME, val = pattern
 *   compressed:     1 <= len < huge_size, no SAME/HUGE, val a live handle
 *   huge:           len == 4096, HUGE, not PRIO, val a live handle
 * INCOMPRESSIBLE and PRIO only on compressed or huge slots.
 */
struct zsram_slot {
	uint64_t val; /* Synchronization: slot lock */
	/*
	 * LOCK is taken with cas_weak_acquire and dropped with store_release;
	 * the other bits change only with the store that drops the lock, so
	 * the holder reads them from the value its CAS saw. Any thread may
	 * load the word (relaxed) as a hint.
	 */
	uint64_t flags;
} __attribute__((aligned(16)));

_Static_assert(sizeof(struct zsram_slot) == 16, "four slots per cache line, none straddling");

enum {
	ST_PAGES,        /* pages stored (same-filled included) */
	ST_COMPR,        /* sum of stored lengths */
	ST_SAME,         /* same-filled pages stored */
	ST_HUGE,         /* huge pages stored */
	ST_HUGE_SINCE,   /* huge pages stored since creation */
	ST_RECOMPRESSED, /* pages stored by the secondary codec now */
	ST_NR
};

struct stat_shard {
	int64_t v[ST_NR]; /* atomic, relaxed: statistics only */
} __attribute__((aligned(64)));

struct zsram {
	struct zs_pool *pool;     /* immutable */
	struct zsram_slot *slots; /* immutable; each slot: see struct zsram_slot */
	uint64_t nr_pages;        /* immutable */
	size_t slots_bytes;       /* immutable */
	size_t huge_size;         /* immutable: zs_huge_class_size() */
	uint64_t mem_limit;       /* immutable: bytes, whole pages; 0 = none */
	bool sync_free;           /* immutable: ZSRAM_SYNC_FREE */
	/*
	 * codec[0] is immutable. codec[1] (the secondary codec) is written
	 * once by zsram_set_recomp_algorithm before it publishes
	 * recomp_state = RECOMP_SET with store_release; zsram_recompress
	 * reads it after load_acquire of RECOMP_SET. A reader of a PRIO slot
	 * reads it under the slot lock: the recompressor's acquire, then its
	 * slot unlock (release), then the reader's lock (acquire) order it.
	 */
	struct codec codec[2];
	int recomp_state; /* RECOMP_*: cas to claim, store_release to publish */
	struct stat_shard stats[NR_SHARDS];
};

enum { RECOMP_NONE, RECOMP_SETTING, RECOMP_SET };

/* A slot's new contents, built before the slot is locked. */
struct slot_new {
	uint64_t val, flags;
};

void zsram_assert_fail(const char *expr, const char *file, int line)
{
	/* debug builds only: a bug in this library */
	fprintf(stderr, "zsram: assertion failed: %s (%s:%d)\n", expr, file, line);
	abort();
}

/* ------------------------------------------------------------------ */
/* Slot lock                                                           */

/* Takes s's lock; returns the flags word it holds (LOCK set). */
static uint64_t slot_lock(struct zsram_slot *s)
{
	uint64_t f = load_relaxed(&s->flags);
	unsigned spins = 0;

	for (;;) {
		if (!(f & SLOT_LOCK)) {
			/* acquire: pairs with slot_unlock()'s store_release, so
			 * val and the flags bits of the last holder are seen */
			if (cas_weak_acquire(&s->flags, &f, f | SLOT_LOCK))
				return f | SLOT_LOCK;
			continue; /* f holds the current value */
		}
		/* the holder may be preempted (or decompressing): spin briefly,
		 * then give the CPU away */
		if (spins < SLOT_SPINS) {
			spins++;
			cpu_relax();
		} else {
			sched_yield();
		}
		f = load_relaxed(&s->flags);
	}
}

/* Drops s's lock, storing flags (its contents) at the same time. */
static void slot_unlock(struct zsram_slot *s, uint64_t flags)
{
	ZSRAM_ASSERT_INTERNAL(load_relaxed(&s->flags) & SLOT_LOCK);
	/* release: pairs with slot_lock()'s acquire; publishes val too */
	store_release(&s->flags, flags & ~SLOT_LOCK);
}

static inline size_t slot_len(uint64_t f)
{
	return (size_t)(f & SLOT_LEN_MASK);
}

/* The slot holds an object (a handle in val). */
static inline bool slot_has_object(uint64_t f)
{
	return (f & SLOT_LEN_MASK) != 0;
}

static inline bool slot_is_empty(uint64_t f)
{
	return !(f & (SLOT_SAME | SLOT_LEN_MASK));
}

/* ------------------------------------------------------------------ */
/* Statistics                                                          */

static unsigned shard_next; /* atomic, relaxed: round-robin shard choice */
static __thread unsigned tls_shard; /* 1 + this thread's shard; 0: none yet */

static struct stat_shard *stat_shard(struct zsram *zr)
{
	unsigned i = tls_shard;

	if (!i)
		tls_shard = i = fetch_add_relaxed(&shard_next, 1) % NR_SHARDS + 1;
	return &zr->stats[i - 1];
}

/* Adds (sign +1) or removes (-1) a slot's contents to/from the deltas d. */
static void stats_delta(int64_t *d, uint64_t f, int sign)
{
	if (slot_is_empty(f))
		return;
	d[ST_PAGES] += sign;
	if (f & SLOT_SAME) {
		d[ST_SAME] += sign;
		return;
	}
	d[ST_COMPR] += sign * (int64_t)slot_len(f);
	if (f & SLOT_HUGE)
		d[ST_HUGE] += sign;
	if (f & SLOT_PRIO)
		d[ST_RECOMPRESSED] += sign;
}

static int64_t stats_sum(struct zsram *zr, int which)
{
	int64_t sum = 0;

	for (int i = 0; i < NR_SHARDS; i++)
		sum += load_relaxed(&zr->stats[i].v[which]);
	return sum;
}

/*
 * After a slot went from old_f to new_f (its lock dropped): counters, and
 * the old object freed -- queued for the drain thread, or at once with
 * ZSRAM_SYNC_FREE. The counters change first, so they never count an
 * object that no slot holds, whenever the free runs.
 */
static void slot_replaced(struct zsram *zr, uint64_t old_val, uint64_t old_f, uint64_t new_f)
{
	struct stat_shard *sh = stat_shard(zr);
	int64_t d[ST_NR] = {0};

	stats_delta(d, old_f, -1);
	stats_delta(d, new_f, +1);
	if (new_f & SLOT_HUGE)
		d[ST_HUGE_SINCE]++;
	/* an overwrite usually changes one counter: one atomic, not six */
	for (int i = 0; i < ST_NR; i++)
		if (d[i])
			fetch_add_relaxed(&sh->v[i], d[i]);
	if (slot_has_object(old_f)) {
		if (zr->sync_free)
			zs_free(zr->pool, (unsigned long)old_val);
		else
			zs_free_deferred(zr->pool, (unsigned long)old_val);
	}
}

/* ------------------------------------------------------------------ */
/* Pages                                                               */

static inline uint64_t load64(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v)); /* the caller's buffer may be unaligned */
	return v;
}

/* True when the page is one 8-byte pattern repeated; *fill gets it. */
static bool page_same_filled(const void *page, uint64_t *fill)
{
	const unsigned char *p = page;
	uint64_t v = load64(p);

	/* most pages differ at one end or the other: check the last word first */
	if (load64(p + ZSRAM_PAGE_SIZE - 8) != v)
		return false;
	for (size_t i = 8; i < ZSRAM_PAGE_SIZE - 8; i += 8)
		if (load64(p + i) != v)
			return false;
	*fill = v;
	return true;
}

static void page_fill(void *page, uint64_t v)
{
	unsigned char *p = page;

	if (v == (v & 0xff) * 0x0101010101010101ull) {
		memset(p, (int)(v & 0xff), ZSRAM_PAGE_SIZE);
		return;
	}
	for (size_t i = 0; i < ZSRAM_PAGE_SIZE; i += 8)
		memcpy(p + i, &v, 8);
}

/*
 * A new object holding len bytes of data (zs_malloc_write), with
 * mem_limit's meaning: when the pool is at its limit, first finish the
 * deferred frees of earlier discards and overwrites (every thread's, queued
 * before this call) and give back the pool's spare zspages (both count
 * against the limit), then try once more. The refusal is exact: libzsmalloc
 * reserves pages against max_pages with one atomic add. Returns a handle,
 * or 0 and *err = -ENOSPC (limit), -ENOMEM.
 */
static unsigned long obj_alloc(struct zsram *zr, const void *data, size_t len, int *err)
{
	unsigned long h = zs_malloc_write(zr->pool, data, len);

	if (h)
		return h;
	if (errno != ENOMEM || !zr->mem_limit) {
		*err = -ENOMEM;
		return 0;
	}
	zs_free_deferred_flush(zr->pool);
	zs_pool_trim(zr->pool);
	h = zs_malloc_write(zr->pool, data, len);
	if (!h)
		*err = errno == ENOMEM ? -ENOSPC : -ENOMEM;
	return h;
}

/*
 * Builds the slot contents for page without touching any slot: the fill
 * pattern of a same-filled page, else a new object holding the page
 * compressed (or raw when it does not compress below huge_size). t may be
 * NULL (fetched when needed); page must not be t->cbuf. 0 or -errno.
 */
static int page_store(struct zsram *zr, struct codec_tls *t, const void *page,
		      struct slot_new *nv)
{
	const void *data;
	unsigned long h;
	uint64_t fill;
	size_t len;
	int n, err;

	if (page_same_filled(page, &fill)) {
		nv->val = fill;
		nv->flags = SLOT_SAME;
		return 0;
	}
	if (!t && !(t = codec_tls_get()))
		return -ENOMEM;
	n = codec_compress(t, &zr->codec[0], page, t->cbuf, zr->huge_size - 1);
	if (n < 0)
		return n;
	if (n == 0) { /* >= huge_size: store it raw */
		data = page;
		len = ZSRAM_PAGE_SIZE;
		nv->flags = SLOT_HUGE | ZSRAM_PAGE_SIZE;
	} else {
		data = t->cbuf;
		len = (size_t)n;
		nv->flags = (uint64_t)n;
	}
	h = obj_alloc(zr, data, len, &err);
	if (!h)
		return err;
	nv->val = h;
	return 0;
}

/*
 * Decodes the page slot s holds into page. Call with s's lock held, f the
 * flags word slot_lock() returned. t is the thread's scratch state (for a
 * compressed page). 0, or -EIO (corrupt data), -ENOMEM.
 */
static int slot_decode_locked(struct zsram *zr, struct zsram_slot *s, uint64_t f, void *page,
			      struct codec_tls *t)
{
	unsigned long h = (unsigned long)s->val;
	size_t len = slot_len(f);
	const void *src;
	int err;

	ZSRAM_ASSERT_INTERNAL(load_relaxed(&s->flags) & SLOT_LOCK);
	if (f & SLOT_SAME) {
		page_fill(page, s->val);
		return 0;
	}
	if (!len) {
		memset(page, 0, ZSRAM_PAGE_SIZE);
		return 0;
	}
	if (f & SLOT_HUGE) {
		/* a huge object never straddles: page is only a formality */
		src = zs_obj_read_begin(zr->pool, h, ZSRAM_PAGE_SIZE, page);
		if (src != page)
			memcpy(page, src, ZSRAM_PAGE_SIZE);
		zs_obj_read_end(zr->pool, h, ZSRAM_PAGE_SIZE, (void *)src);
		return 0;
	}
	src = zs_obj_read_begin(zr->pool, h, len, t->copy);
	err = codec_decompress(t, &zr->codec[(f & SLOT_PRIO) ? 1 : 0], src, len, page);
	zs_obj_read_end(zr->pool, h, len, (void *)src);
	return err;
}

static int read_page(struct zsram *zr, uint64_t index, void *page)
{
	struct zsram_slot *s = &zr->slots[index];
	struct codec_tls *t = NULL;
	uint64_t f = slot_lock(s);
	int err;

	if (!slot_has_object(f)) {
		/* empty or same-filled: fill from the snapshot, unlocked */
		uint64_t v = s->val;

		slot_unlock(s, f);
		page_fill(page, (f & SLOT_SAME) ? v : 0);
		return 0;
	}
	if (!(f & SLOT_HUGE) && !(t = codec_tls_get())) {
		slot_unlock(s, f);
		return -ENOMEM;
	}
	err = slot_decode_locked(zr, s, f, page, t);
	slot_unlock(s, f);
	return err;
}

static int write_page(struct zsram *zr, uint64_t index, const void *page)
{
	struct zsram_slot *s = &zr->slots[index];
	struct slot_new nv;
	uint64_t f, old;
	int err;

	err = page_store(zr, NULL, page, &nv);
	if (err)
		return err;
	f = slot_lock(s);
	old = s->val;
	s->val = nv.val;
	slot_unlock(s, nv.flags);
	slot_replaced(zr, old, f, nv.flags);
	return 0;
}

/* Writes len bytes at off inside page 'index': read-modify-write under the slot lock. */
static int update_page(struct zsram *zr, uint64_t index, size_t off, const void *buf, size_t len)
{
	struct zsram_slot *s = &zr->slots[index];
	struct codec_tls *t = codec_tls_get();
	struct slot_new nv;
	uint64_t f, old;
	int err;

	if (!t)
		return -ENOMEM;
	f = slot_lock(s);
	err = slot_decode_locked(zr, s, f, t->page, t);
	if (!err) {
		memcpy(t->page + off, buf, len);
		err = page_store(zr, t, t->page, &nv);
	}
	if (err) {
		slot_unlock(s, f);
		return err;
	}
	old = s->val;
	s->val = nv.val;
	slot_unlock(s, nv.flags);
	slot_replaced(zr, old, f, nv.flags);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Public API                                                          */

#define ZSRAM_KNOWN_FLAGS (ZSRAM_BG_COMPACT | ZSRAM_HUGEPAGES | ZSRAM_NO_SPARE | ZSRAM_SYNC_FREE)

ZSRAM_EXPORT struct zsram *zsram_create(const struct zsram_config *config)
{
	struct zs_pool_config pc = {0};
	struct zsram *zr;
	uint64_t nr_pages;
	int err;

	if (!config || !config->disksize || config->disksize % ZSRAM_PAGE_SIZE ||
	    (config->flags & ~ZSRAM_KNOWN_FLAGS)) {
		errno = EINVAL;
		return NULL;
	}
	nr_pages = config->disksize / ZSRAM_PAGE_SIZE;
	if (nr_pages > SIZE_MAX / sizeof(struct zsram_slot)) {
		errno = EINVAL;
		return NULL;
	}
	zr = fault(ZS_FAULT_ALLOC) ? NULL : aligned_alloc(64, sizeof(*zr));
	if (!zr) {
		errno = ENOMEM;
		return NULL;
	}
	memset(zr, 0, sizeof(*zr));
	err = codec_init(&zr->codec[0], config->algorithm ? config->algorithm : "lz4",
			 config->level);
	if (err) {
		free(zr);
		errno = -err;
		return NULL;
	}
	zr->nr_pages = nr_pages;
	/* zram rounds the limit up to whole pages too */
	zr->mem_limit = (config->mem_limit + ZSRAM_PAGE_SIZE - 1) / ZSRAM_PAGE_SIZE *
			ZSRAM_PAGE_SIZE;
	if (config->mem_limit && !zr->mem_limit) /* rounded past UINT64_MAX */
		zr->mem_limit = UINT64_MAX / ZSRAM_PAGE_SIZE * ZSRAM_PAGE_SIZE;
	zr->sync_free = config->flags & ZSRAM_SYNC_FREE;
	if (config->pool) {
		/* field by field: max_pages is ours (mem_limit) */
		pc.chain_size = config->pool->chain_size;
		pc.flags = config->pool->flags;
		pc.compact_threshold = config->pool->compact_threshold;
		pc.deferred_buffer_size = config->pool->deferred_buffer_size;
		pc.deferred_spares = config->pool->deferred_spares;
	}
	pc.max_pages = (size_t)(zr->mem_limit / ZSRAM_PAGE_SIZE);
	if (config->flags & ZSRAM_BG_COMPACT)
		pc.flags |= ZS_POOL_BG_COMPACT;
	if (config->flags & ZSRAM_HUGEPAGES)
		pc.flags |= ZS_POOL_HUGEPAGES;
	if (config->flags & ZSRAM_NO_SPARE)
		pc.flags |= ZS_POOL_NO_SPARE;
	/* the pool before the slots: it validates pc (a bad chain_size or
	 * unknown flag is EINVAL), and a bad configuration is EINVAL even
	 * with a disk too large to map */
	zr->pool = zs_create_pool_ex("zsram", &pc);
	if (!zr->pool) {
		err = errno;
		free(zr);
		errno = err;
		return NULL;
	}
	zr->slots_bytes = (size_t)nr_pages * sizeof(struct zsram_slot);
	/* zero pages on demand: a large, mostly unused disk costs no memory */
	zr->slots = fault(ZS_FAULT_MAP) ? MAP_FAILED
					: mmap(NULL, zr->slots_bytes, PROT_READ | PROT_WRITE,
					       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (zr->slots == MAP_FAILED) {
		zs_destroy_pool(zr->pool);
		free(zr);
		errno = ENOMEM;
		return NULL;
	}
	zr->huge_size = zs_huge_class_size(zr->pool);
	return zr;
}

ZSRAM_EXPORT void zsram_destroy(struct zsram *zr)
{
	if (!zr)
		return;
	zs_destroy_pool(zr->pool); /* frees every object, queued ones included */
	munmap(zr->slots, zr->slots_bytes);
	free(zr);
}

ZSRAM_EXPORT int zsram_write_page(struct zsram *zr, uint64_t index, const void *page)
{
	if (!zr || !page)
		return -EINVAL;
	if (index >= zr->nr_pages)
		return -ERANGE;
	return write_page(zr, index, page);
}

ZSRAM_EXPORT int zsram_read_page(struct zsram *zr, uint64_t index, void *page)
{
	if (!zr || !page)
		return -EINVAL;
	if (index >= zr->nr_pages)
		return -ERANGE;
	return read_page(zr, index, page);
}

ZSRAM_EXPORT int zsram_discard(struct zsram *zr, uint64_t index, uint64_t npages)
{
	if (!zr)
		return -EINVAL;
	if (index >= zr->nr_pages || npages > zr->nr_pages - index)
		return -ERANGE;
	for (uint64_t i = index; i < index + npages; i++) {
		struct zsram_slot *s = &zr->slots[i];
		uint64_t f, old;

		/* a relaxed peek skips empty slots without taking their lock;
		 * a discard racing a write may go either way anyway */
		if (slot_is_empty(load_relaxed(&s->flags)))
			continue;
		f = slot_lock(s);
		old = s->val;
		s->val = 0;
		slot_unlock(s, 0);
		/* nobody can reach the handle now */
		slot_replaced(zr, old, f, 0);
	}
	return 0;
}

/*
 * Why the lock-free path never reports a hole over data. A slot's flags word
 * changes in two ways only: slot_lock()'s CAS, which adds LOCK and keeps
 * every other bit (the contents before the operation), and slot_unlock()'s
 * release store, which writes the contents after it. So a slot that holds
 * data before and after an operation (an overwrite, a partial write, a
 * failed write, a recompression) shows data bits throughout, and only a
 * discard's unlock (or the first write's, from empty) changes emptiness.
 * When a write's unlock happens before this call (the caller learnt that
 * the write returned), read coherence makes the load below return that
 * store or a later one in the word's modification order: a lock of the
 * same contents, or another operation's unlock. Neither is empty unless a
 * discard ran. The acquire pairs with slot_unlock()'s store_release, so the
 * state read here is no older than anything the unlocking thread did
 * before it (the caller may read the page next and expect no less).
 */
static uint8_t slot_state(struct zsram_slot *s)
{
	/* acquire: pairs with slot_unlock()'s store_release (see above) */
	uint64_t f = load_acquire(&s->flags), val;

	if (!(f & SLOT_SAME))
		return slot_is_empty(f) ? ZSRAM_PAGE_EMPTY : ZSRAM_PAGE_DATA;
	/* the pattern (val) may only be read under the lock; the lock may
	 * hand us a newer state, which is as good */
	f = slot_lock(s);
	val = s->val;
	slot_unlock(s, f);
	if (slot_is_empty(f))
		return ZSRAM_PAGE_EMPTY;
	if (f & SLOT_SAME)
		return val ? ZSRAM_PAGE_DATA : ZSRAM_PAGE_ZERO;
	return ZSRAM_PAGE_DATA;
}

ZSRAM_EXPORT int zsram_page_states(struct zsram *zr, uint64_t index, uint64_t npages,
				   uint8_t *states)
{
	if (!zr || (!states && npages))
		return -EINVAL;
	if (index >= zr->nr_pages || npages > zr->nr_pages - index)
		return -ERANGE;
	for (uint64_t i = 0; i < npages; i++)
		states[i] = slot_state(&zr->slots[index + i]);
	return 0;
}

/* The byte range [offset, offset + count) must lie inside the disk. */
static int range_check(struct zsram *zr, const void *buf, size_t count, uint64_t offset)
{
	uint64_t disksize;

	if (!zr || !buf || count > SSIZE_MAX)
		return -EINVAL;
	disksize = zr->nr_pages * ZSRAM_PAGE_SIZE;
	if (offset > disksize || count > disksize - offset)
		return -ERANGE;
	return 0;
}

ZSRAM_EXPORT ssize_t zsram_pwrite(struct zsram *zr, const void *buf, size_t count, uint64_t offset)
{
	const unsigned char *p = buf;
	size_t done = 0;
	int err = range_check(zr, buf, count, offset);

	if (err)
		return err;
	while (done < count) {
		uint64_t pos = offset + done, index = pos / ZSRAM_PAGE_SIZE;
		size_t off = (size_t)(pos % ZSRAM_PAGE_SIZE), n = ZSRAM_PAGE_SIZE - off;

		if (n > count - done)
			n = count - done;
		if (n == ZSRAM_PAGE_SIZE)
			err = write_page(zr, index, p + done);
		else
			err = update_page(zr, index, off, p + done, n);
		if (err)
			return done ? (ssize_t)done : err; /* a short write, like write(2) */
		done += n;
	}
	return (ssize_t)done;
}

ZSRAM_EXPORT ssize_t zsram_pread(struct zsram *zr, void *buf, size_t count, uint64_t offset)
{
	unsigned char *p = buf;
	size_t done = 0;
	int err = range_check(zr, buf, count, offset);

	if (err)
		return err;
	while (done < count) {
		uint64_t pos = offset + done, index = pos / ZSRAM_PAGE_SIZE;
		size_t off = (size_t)(pos % ZSRAM_PAGE_SIZE), n = ZSRAM_PAGE_SIZE - off;
		struct codec_tls *t;

		if (n > count - done)
			n = count - done;
		if (n == ZSRAM_PAGE_SIZE) {
			err = read_page(zr, index, p + done);
		} else if (!(t = codec_tls_get())) {
			err = -ENOMEM;
		} else {
			err = read_page(zr, index, t->page);
			if (!err)
				memcpy(p + done, t->page + off, n);
		}
		if (err)
			return done ? (ssize_t)done : err;
		done += n;
	}
	return (ssize_t)done;
}

ZSRAM_EXPORT unsigned long zsram_compact(struct zsram *zr)
{
	if (!zr)
		return 0;
	/* discarded and overwritten objects still queued would stay in their
	 * zspages */
	zs_free_deferred_flush(zr->pool);
	return zs_compact(zr->pool);
}

ZSRAM_EXPORT struct zs_pool *zsram_pool(struct zsram *zr)
{
	return zr ? zr->pool : NULL;
}

static uint64_t nonneg(int64_t v)
{
	return v > 0 ? (uint64_t)v : 0; /* shards may lag each other mid-update */
}

ZSRAM_EXPORT void zsram_mm_stat(struct zsram *zr, struct zsram_mm_stat *st)
{
	struct zs_pool_stats ps;
	unsigned long total;

	if (!st)
		return;
	memset(st, 0, sizeof(*st));
	if (!zr)
		return;
	total = zs_get_total_pages(zr->pool);
	zs_pool_stats(zr->pool, &ps);
	st->orig_data_size = nonneg(stats_sum(zr, ST_PAGES)) * ZSRAM_PAGE_SIZE;
	st->compr_data_size = nonneg(stats_sum(zr, ST_COMPR));
	st->mem_used_total = (uint64_t)total * ZSRAM_PAGE_SIZE;
	st->mem_limit = zr->mem_limit;
	/* the pool keeps the high-water mark of its page count, exactly */
	st->mem_used_max = (uint64_t)(ps.pages_max > total ? ps.pages_max : total) *
			   ZSRAM_PAGE_SIZE;
	st->same_pages = nonneg(stats_sum(zr, ST_SAME));
	st->pages_compacted = ps.pages_compacted;
	st->huge_pages = nonneg(stats_sum(zr, ST_HUGE));
	st->huge_pages_since = nonneg(stats_sum(zr, ST_HUGE_SINCE));
}

ZSRAM_EXPORT const char *zsram_algorithms(void)
{
	return codec_names();
}

/* ------------------------------------------------------------------ */
/* Recompression                                                       */

ZSRAM_EXPORT int zsram_set_recomp_algorithm(struct zsram *zr, const char *algorithm, int level)
{
	struct codec c;
	int expected = RECOMP_NONE, err;

	if (!zr || !algorithm)
		return -EINVAL;
	err = codec_init(&c, algorithm, level);
	if (err)
		return err;
	if (!cas_strong_acquire(&zr->recomp_state, &expected, RECOMP_SETTING))
		return -EBUSY;
	zr->codec[1] = c;
	/* release: pairs with zsram_recompress()'s load_acquire */
	store_release(&zr->recomp_state, RECOMP_SET);
	return 0;
}

static bool recomp_candidate(uint64_t f, unsigned mode, size_t threshold)
{
	if (!slot_has_object(f) || (f & (SLOT_PRIO | SLOT_INCOMPRESSIBLE)))
		return false;
	if ((mode & ZSRAM_RECOMP_HUGE) && !(f & SLOT_HUGE))
		return false;
	return slot_len(f) >= threshold;
}

/*
 * Recompresses the page in s with the secondary codec and swaps it in when
 * it lands in a smaller size class. Call with s's lock held (f from
 * slot_lock); returns with it dropped. 1 when replaced, 0 when not, or
 * -errno.
 */
static int recompress_locked(struct zsram *zr, struct codec_tls *t, struct zsram_slot *s,
			     uint64_t f)
{
	size_t old_len = slot_len(f), cap;
	uint64_t old = s->val, nf;
	unsigned long h;
	int n, err;

	ZSRAM_ASSERT_INTERNAL(load_relaxed(&s->flags) & SLOT_LOCK);
	err = slot_decode_locked(zr, s, f, t->page, t);
	if (err)
		goto fail;
	/* better only if smaller; a huge page must get below huge_size */
	cap = (f & SLOT_HUGE) ? zr->huge_size - 1 : old_len - 1;
	n = codec_compress(t, &zr->codec[1], t->page, t->cbuf, cap);
	if (n < 0) {
		err = n;
		goto fail;
	}
	/* compare the classes zs_malloc would use: the header counts (a
	 * payload 8 bytes smaller can land in the same class) */
	if (n == 0 || zs_lookup_class_index(zr->pool, (unsigned)n + ZS_OBJ_HEADER_SIZE) >=
			      zs_lookup_class_index(zr->pool,
						    (unsigned)old_len + ZS_OBJ_HEADER_SIZE)) {
		slot_unlock(s, f | SLOT_INCOMPRESSIBLE);
		return 0;
	}
	h = obj_alloc(zr, t->cbuf, (size_t)n, &err);
	if (!h)
		goto fail;
	nf = (uint64_t)n | SLOT_PRIO;
	s->val = h;
	slot_unlock(s, nf);
	/* not a new huge page: slot_replaced leaves huge_pages_since alone */
	slot_replaced(zr, old, f, nf);
	return 1;
fail:
	slot_unlock(s, f);
	return err;
}

ZSRAM_EXPORT long zsram_recompress(struct zsram *zr, unsigned mode, size_t threshold)
{
	struct codec_tls *t;
	long done = 0;

	if (!zr || (mode & ~ZSRAM_RECOMP_HUGE))
		return -EINVAL;
	/* acquire: pairs with zsram_set_recomp_algorithm()'s store_release */
	if (load_acquire(&zr->recomp_state) != RECOMP_SET)
		return -EINVAL;
	t = codec_tls_get();
	if (!t)
		return -ENOMEM;
	for (uint64_t i = 0; i < zr->nr_pages; i++) {
		struct zsram_slot *s = &zr->slots[i];
		uint64_t f;
		int r;

		/* a relaxed peek skips most slots without their lock */
		if (!recomp_candidate(load_relaxed(&s->flags), mode, threshold))
			continue;
		f = slot_lock(s);
		if (!recomp_candidate(f, mode, threshold)) {
			slot_unlock(s, f);
			continue;
		}
		r = recompress_locked(zr, t, s, f);
		if (r < 0)
			return done ? done : r;
		done += r;
	}
	return done;
}

/* ------------------------------------------------------------------ */
/* Checks (tests)                                                      */

static bool slot_valid(struct zsram *zr, uint64_t f, uint64_t val)
{
	size_t len = slot_len(f);

	f &= ~SLOT_LOCK;
	if (slot_is_empty(f))
		return f == 0 && val == 0;
	if (f & SLOT_SAME)
		return f == SLOT_SAME;
	if (!val)
		return false;
	if (f & SLOT_HUGE)
		return len == ZSRAM_PAGE_SIZE && !(f & SLOT_PRIO);
	return len >= 1 && len < zr->huge_size;
}

void zsram_recount(struct zsram *zr, struct zsram_recount *out)
{
	memset(out, 0, sizeof(*out));
	for (uint64_t i = 0; i < zr->nr_pages; i++) {
		struct zsram_slot *s = &zr->slots[i];
		uint64_t f = slot_lock(s), val = s->val;

		slot_unlock(s, f);
		out->bad_slots += !slot_valid(zr, f, val);
		if (slot_is_empty(f))
			continue;
		out->pages_stored++;
		if (f & SLOT_SAME) {
			out->same_pages++;
			continue;
		}
		out->compr_bytes += slot_len(f);
		out->huge_pages += !!(f & SLOT_HUGE);
		out->recompressed += !!(f & SLOT_PRIO);
	}
}

bool zsram_is_valid(struct zsram *zr)
{
	struct zsram_recount rc;

	zsram_recount(zr, &rc);
	return rc.bad_slots == 0 && (int64_t)rc.pages_stored == stats_sum(zr, ST_PAGES) &&
	       (int64_t)rc.compr_bytes == stats_sum(zr, ST_COMPR) &&
	       (int64_t)rc.same_pages == stats_sum(zr, ST_SAME) &&
	       (int64_t)rc.huge_pages == stats_sum(zr, ST_HUGE) &&
	       (int64_t)rc.recompressed == stats_sum(zr, ST_RECOMPRESSED) &&
	       stats_sum(zr, ST_HUGE_SINCE) >= (int64_t)rc.huge_pages;
}
