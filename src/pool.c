/* SPDX-License-Identifier: MIT */
/*
 * pool.c: pool create/destroy, zs_malloc, zs_free, object read/write.
 *
 * Lock order and RCU rules: see internal.h. The hot paths:
 *
 *   zs_malloc   class lock (handle slot + object + header), nothing else
 *               unless a new zspage is needed (arena lock, outside the
 *               class lock).
 *   zs_free     no pool-wide lock (seed 000): read obj locklessly, lock the
 *               class named by obj's class bits, re-validate under it. An
 *               emptied zspage is unlinked under the class lock and its pages
 *               released after the lock is dropped (seed 001).
 *   read/write  no pool-wide lock either: find the zspage under RCU, take
 *               its read lock, confirm obj did not move, retry if it did
 *               (seeds 003, 004).
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#ifdef ZS_RACE_HOOKS
void (*zs_race_hook)(enum zs_race_point point, struct zs_pool *pool);
/* exported: libzsram's fault points and the tests' zsram builds reach it */
ZS_EXPORT bool (*zs_fault_hook)(enum zs_fault_point point);
#endif

#define ZS_KNOWN_FLAGS                                                                             \
	(ZS_POOL_RETURN_ERRORS | ZS_POOL_HUGEPAGES | ZS_POOL_BG_COMPACT | ZS_POOL_PSI_COMPACT |    \
	 ZS_POOL_FREE_POOL_LOCK | ZS_POOL_NO_SPARE)

void zs_assert_fail(const char *expr, const char *file, int line)
{
	fprintf(stderr, "zsmalloc: assertion failed: %s (%s:%d)\n", expr, file, line);
	abort();
}

void pool_report_invalid(struct zs_pool *pool, const char *op, unsigned long handle)
{
	if (pool->flags & ZS_POOL_RETURN_ERRORS) {
		fetch_add_relaxed(&pool->invalid_handles, 1);
		return;
	}
	/* the one place this library prints: like glibc's double-free check */
	fprintf(stderr,
		"zsmalloc: pool '%s': %s: invalid handle 0x%lx "
		"(never allocated, already freed, stale or forged)\n",
		pool->name, op, handle);
	abort();
}

/*
 * A zspage is built with no lock held (zs_malloc drops the class lock);
 * a fork() in the middle would leave the child a zspage that is in no
 * list, its pages and a handle slot with it. The fork handler closes the
 * gate and waits for the builds in progress; a build that finds the gate
 * closed waits (yielding: forks are rare) until it reopens. The counter
 * is fetch_add'ed before the gate is read, and the handler stores the gate
 * before reading the counter, both seq_cst: one of the two sees the other.
 */
void pool_build_begin(struct zs_pool *pool)
{
	for (;;) {
		__atomic_fetch_add(&pool->building, 1, __ATOMIC_SEQ_CST);
		if (!__atomic_load_n(&pool->build_gate, __ATOMIC_SEQ_CST))
			return;
		pool_build_end(pool);
		while (__atomic_load_n(&pool->build_gate, __ATOMIC_ACQUIRE))
			sched_yield();
	}
}

void pool_build_end(struct zs_pool *pool)
{
	/* release: the built zspage is linked before the handler sees 0 */
	fetch_sub_release(&pool->building, 1);
}

bool pool_reserve_pages(struct zs_pool *pool, unsigned n)
{
	unsigned long now = fetch_add_relaxed(&pool->pages_allocated, n) + n;
	unsigned long max;

	if (pool->max_pages && now > pool->max_pages) {
		fetch_sub_relaxed(&pool->pages_allocated, n);
		return false;
	}
	max = load_relaxed(&pool->pages_max);
	while (now > max && !__atomic_compare_exchange_n(&pool->pages_max, &max, now, 1,
							  __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
	return true;
}

void pool_unreserve_pages(struct zs_pool *pool, unsigned n)
{
	fetch_sub_relaxed(&pool->pages_allocated, n);
}

/*
 * The deferred-free buffers stay within bounds: each buffer holds at most
 * ZS_DEFERRED_MAX_BUFFER handles, a pool keeps at most
 * ZS_DEFERRED_MAX_SPARES spares, and the spares together at most
 * ZS_DEFERRED_MAX_ENTRIES handles (16 bytes each: 64 MiB).
 */
static bool deferred_config_ok(const struct zs_pool_config *cfg)
{
	unsigned long size = cfg->deferred_buffer_size ? cfg->deferred_buffer_size : 1024;
	unsigned long spares = cfg->deferred_spares == ZS_DEFERRED_NO_SPARES ? 0
			       : cfg->deferred_spares;

	return size <= ZS_DEFERRED_MAX_BUFFER && spares <= ZS_DEFERRED_MAX_SPARES &&
	       size * spares <= ZS_DEFERRED_MAX_ENTRIES;
}

/* Address space to reserve: twice the RAM, or the limit plus slack. */
static size_t reserve_pages_for(const struct zs_pool_config *cfg)
{
	long phys = sysconf(_SC_PHYS_PAGES);
	size_t pages = phys > 0 ? (size_t)phys * 2 : (size_t)1 << 24;

	if (cfg->max_pages > ZS_MAX_PFN) /* more than the arena can address */
		pages = ZS_MAX_PFN + 1;
	else if (cfg->max_pages)
		pages = cfg->max_pages + cfg->max_pages / 8 + 4 * ZS_CHUNK_PAGES;
	if (pages > ZS_MAX_PFN + 1)
		pages = ZS_MAX_PFN + 1;
	return pages;
}

static void pool_mutexes_destroy(struct zs_pool *pool)
{
	pthread_mutex_destroy(&pool->setup_lock);
	pthread_mutex_destroy(&pool->defrag_lock);
	pthread_mutex_destroy(&pool->compact_lock);
}

/* The arena's decay (its worker, after decay_ms without allocation or free). */
static bool pool_decay(void *ctx)
{
	return pool_release_idle(ctx);
}

ZS_EXPORT struct zs_pool *zs_create_pool_ex(const char *name, const struct zs_pool_config *config)
{
	struct zs_pool_config cfg = { 0 };
	struct zs_pool *pool;
	size_t reserve;
	int err;

	if (config)
		cfg = *config;
	if (cfg.chain_size == 0)
		cfg.chain_size = ZS_DEFAULT_CHAIN;
	if (cfg.chain_size > ZS_MAX_CHAIN || (cfg.flags & ~ZS_KNOWN_FLAGS) ||
	    !deferred_config_ok(&cfg)) {
		errno = EINVAL;
		return NULL;
	}
	pool = fault(ZS_FAULT_ALLOC) ? NULL : aligned_alloc(64, (sizeof(*pool) + 63) / 64 * 64);
	if (!pool) {
		errno = ENOMEM;
		return NULL;
	}
	memset(pool, 0, sizeof(*pool));
	snprintf(pool->name, sizeof(pool->name), "%s", name ? name : "zsmalloc");
	pool->flags = cfg.flags;
	pool->chain_size = cfg.chain_size;
	pool->max_pages = cfg.max_pages;
	pool->compact_threshold = cfg.compact_threshold ? cfg.compact_threshold : 256;
	pool->config = cfg;

	reserve = reserve_pages_for(&cfg);
	err = class_table_init(pool);
	if (!err)
		err = arena_init(&pool->arena, reserve, cfg.flags & ZS_POOL_HUGEPAGES,
				 cfg.decay_ms == ZS_DECAY_NEVER ? 0
				 : cfg.decay_ms		? cfg.decay_ms
							: ZS_DECAY_DEFAULT_MS);
	/* enough slots for every page to hold the smallest objects */
	if (!err)
		err = handle_table_init(&pool->handles,
					reserve * (ZS_PAGE_SIZE / ZS_MIN_ALLOC_SIZE));
	/* a zspage has a page at least: as many descriptors as pages */
	if (!err)
		err = slab_init(&pool->slab, reserve);
	if (!err && pthread_rwlock_init(&pool->migrate_lock, NULL))
		err = -ENOMEM;
	pthread_mutex_init(&pool->compact_lock, NULL);
	pthread_mutex_init(&pool->defrag_lock, NULL);
	pthread_mutex_init(&pool->setup_lock, NULL);
	if (!err && (cfg.flags & (ZS_POOL_BG_COMPACT | ZS_POOL_PSI_COMPACT)))
		err = bg_compactor_start(pool);
	if (err) {
		pool_mutexes_destroy(pool);
		slab_destroy(&pool->slab);
		handle_table_destroy(&pool->handles);
		arena_destroy(&pool->arena);
		class_table_destroy(pool);
		free(pool);
		errno = -err;
		return NULL;
	}
	arena_set_decay(&pool->arena, pool_decay, pool);
	fork_register_pool(pool);
	return pool;
}

ZS_EXPORT struct zs_pool *zs_create_pool(const char *name)
{
	return zs_create_pool_ex(name, NULL);
}

ZS_EXPORT void zs_destroy_pool(struct zs_pool *pool)
{
	if (!pool)
		return;
	fork_unregister_pool(pool); /* no fork() handler touches it from now on */
	arena_decay_stop(&pool->arena); /* nor the arena's decay */
	bg_compactor_stop(pool);
	deferred_destroy(pool); /* flushes queued frees first */
	for (unsigned k = 0; k < pool->nr_classes; k++) {
		struct size_class *class = &pool->classes[k];

		zs_mutex_lock(&class->lock);
		for (int fg = 0; fg < ZS_NR_FULLNESS; fg++) {
			while (!list_empty(&class->fullness_list[fg])) {
				struct zspage *z = container_of(class->fullness_list[fg].next,
								struct zspage, list);
				/* no reader can exist (see the concurrency table), and
				 * the arena and the slab go away whole: just unlink */
				zspage_unlink_locked(class, z);
			}
		}
		zs_mutex_unlock(&class->lock);
	}
	/* descriptors of zspages freed earlier are still queued for RCU */
	zs_rcu_barrier();
	pthread_rwlock_destroy(&pool->migrate_lock);
	pool_mutexes_destroy(pool);
	handle_table_destroy(&pool->handles);
	slab_destroy(&pool->slab);
	arena_destroy(&pool->arena);
	class_table_destroy(pool);
	free(pool);
}

/* zs_malloc, and with src the copy of zs_malloc_write (under the class lock). */
static unsigned long pool_malloc(struct zs_pool *pool, size_t size, const void *src)
{
	struct size_class *class;
	struct zspage *z;
	unsigned long handle;
	uint64_t obj;

	if (!pool || size == 0) {
		errno = EINVAL;
		return 0;
	}
	if (size > ZS_MAX_ALLOC_SIZE) {
		errno = E2BIG;
		return 0;
	}
	class = pool_class(pool, size + ZS_HANDLE_SIZE);

	zs_mutex_lock(&class->lock);
	handle = handle_alloc_locked(&pool->handles, class);
	if (!handle)
		goto nomem;
	z = zspage_find_locked(class);
	if (!z) {
		/* build the zspage outside the class lock; the slot is ours */
		zs_mutex_unlock(&class->lock);
		pool_build_begin(pool);
		z = zspage_create(pool, class);
		zs_mutex_lock(&class->lock);
		if (z) {
			zspage_link_locked(class, z);
			class->objs_allocated += class->objs_per_zspage;
		}
		pool_build_end(pool);
		if (!z) {
			handle_unalloc_locked(&pool->handles, class, handle);
			goto nomem;
		}
	}
	if (z->spare) {
		z->spare = false;
		fetch_sub_relaxed(&pool->spare_pages, class->pages_per_zspage);
	}
	obj = zspage_obj_alloc_locked(pool, class, z, handle);
	if (src)
		zspage_obj_write_locked(pool, class, z, obj_idx(obj), src, size);
	zspage_refile_locked(class, z);
	handle_publish_locked(&pool->handles, class, handle, obj);
	ZS_ASSERT_EXPENSIVE(zspage_is_valid_locked(pool, class, z));
	zs_mutex_unlock(&class->lock);
	return handle;

nomem:
	zs_mutex_unlock(&class->lock);
	errno = ENOMEM;
	return 0;
}

ZS_EXPORT unsigned long zs_malloc(struct zs_pool *pool, size_t size)
{
	return pool_malloc(pool, size, NULL);
}

ZS_EXPORT unsigned long zs_malloc_write(struct zs_pool *pool, const void *src, size_t size)
{
	if (!src && size) {
		errno = EINVAL;
		return 0;
	}
	return pool_malloc(pool, size, src);
}

/*
 * The free path misses on the page descriptor, the zspage and the object's
 * header; the last is reachable from obj alone, so start both misses
 * before the lock rather than one after the other under it. obj was read
 * without the lock and may be stale by then (compaction moved the object):
 * a prefetch of the old place only wastes a fetch -- prefetches never
 * fault, and every pfn lies in the arena's reservation.
 */
static inline void obj_prefetch(struct zs_pool *pool, struct size_class *class, uint64_t obj)
{
	unsigned page, off;

	obj_location(class, obj_idx(obj), &page, &off);
	__builtin_prefetch(&pool->arena.pdesc[obj_pfn(obj)], 0, 1);
	prefetch_write((char *)arena_page(&pool->arena, obj_pfn(obj)) + off);
}

struct zspage *pool_free_locked(struct zs_pool *pool, struct size_class *class,
				unsigned long handle, const char *op)
{
	struct zspage *z;
	uint64_t obj;

	(void)op;
	assert_held(&class->lock);
	/* authoritative now: every writer of this class's obj words holds
	 * the class lock (seed 000: migration rewrites only the pfn) */
	if (handle_lookup(&pool->handles, handle, &obj, NULL) || obj_class(obj) != class->index)
		return POOL_FREE_INVALID;
	z = pdesc_zspage(&pool->arena, obj_pfn(obj));
	ZS_ASSERT(z && !z->dead && z->class_idx == class->index);
	/* the slot word matched 16 bits of the generation; the object's header
	 * holds the whole handle (its line is fetched for the free-list link
	 * written there anyway, so the check costs no miss of its own) */
	if (!zspage_obj_free_locked(pool, class, z, obj, handle))
		return POOL_FREE_INVALID;
	handle_free_locked(&pool->handles, class, handle);
	if (zspage_refile_locked(class, z) != ZS_FULLNESS_EMPTY) {
		ZS_ASSERT_EXPENSIVE(zspage_is_valid_locked(pool, class, z));
		return NULL;
	}
	return pool_retire_locked(pool, class, z, true);
}

struct zspage *pool_retire_locked(struct zs_pool *pool, struct size_class *class,
				  struct zspage *z, bool keep_spare)
{
	unsigned long pages = class->pages_per_zspage;

	assert_held(&class->lock);
	ZS_ASSERT(z->inuse == 0 && !z->dead);
	/* z is linked in the EMPTY group now: is it the class's only one, and
	 * does the pool's budget allow another spare? */
	if (keep_spare && !(pool->flags & ZS_POOL_NO_SPARE) &&
	    class->nr_zspages[ZS_FULLNESS_EMPTY] == 1) {
		if (fetch_add_relaxed(&pool->spare_pages, pages) + pages <= POOL_SPARE_PAGES) {
			z->spare = true;
			return NULL;
		}
		fetch_sub_relaxed(&pool->spare_pages, pages);
	}
	if (z->spare) {
		z->spare = false;
		fetch_sub_relaxed(&pool->spare_pages, pages);
	}
	zspage_unlink_locked(class, z);
	z->dead = true;
	fetch_add_relaxed(&pool->dying, 1); /* until zspage_destroy() is done */
	class->objs_allocated -= class->objs_per_zspage;
	return z;
}

struct zspage *pool_take_spare_locked(struct zs_pool *pool, struct size_class *class)
{
	struct list_node *empty = &class->fullness_list[ZS_FULLNESS_EMPTY];

	assert_held(&class->lock);
	if (list_empty(empty))
		return NULL;
	return pool_retire_locked(pool, class, container_of(empty->next, struct zspage, list),
				  false);
}

/* Finishes a free after the class lock is dropped. */
static void free_finish(struct zs_pool *pool, struct zspage *z, unsigned long handle,
			const char *op)
{
	if (z == POOL_FREE_INVALID) {
		pool_report_invalid(pool, op, handle);
	} else if (z) {
		race_window(ZS_RACE_FREE_RELEASE, pool);
		zspage_destroy(pool, z); /* seed 001: outside the class lock */
	}
}

/*
 * The pre-seed-000 path, kept for side-by-side benchmarks: the pool-wide
 * migrate lock (read side) keeps obj and the page-to-zspage map stable
 * while the class is found through the zspage. Every free touches the
 * rwlock's shared cache line.
 */
static void free_pool_locked(struct zs_pool *pool, unsigned long handle)
{
	struct size_class *class;
	struct zspage *z;
	uint64_t obj;

	pthread_rwlock_rdlock(&pool->migrate_lock);
	if (handle_lookup(&pool->handles, handle, &obj, NULL) ||
	    !(z = pdesc_zspage(&pool->arena, obj_pfn(obj)))) {
		pthread_rwlock_unlock(&pool->migrate_lock);
		pool_report_invalid(pool, "zs_free", handle);
		return;
	}
	class = pool->size_class[z->class_idx];
	zs_mutex_lock(&class->lock);
	pthread_rwlock_unlock(&pool->migrate_lock);
	z = pool_free_locked(pool, class, handle, "zs_free");
	zs_mutex_unlock(&class->lock);
	free_finish(pool, z, handle, "zs_free");
}

ZS_EXPORT void zs_free(struct zs_pool *pool, unsigned long handle)
{
	struct size_class *class;
	struct zspage *z;
	uint64_t obj;

	if (!pool || !handle)
		return;
	if (pool->flags & ZS_POOL_FREE_POOL_LOCK) {
		free_pool_locked(pool, handle);
		return;
	}
	/* seed 000: the class index in obj never changes while the handle
	 * lives, so a lockless read is enough to pick the lock */
	if (handle_lookup(&pool->handles, handle, &obj, NULL)) {
		pool_report_invalid(pool, "zs_free", handle);
		return;
	}
	race_window(ZS_RACE_FREE_LOOKUP, pool);
	class = pool->size_class[obj_class(obj)];
	obj_prefetch(pool, class, obj);
	zs_mutex_lock(&class->lock);
	z = pool_free_locked(pool, class, handle, "zs_free");
	zs_mutex_unlock(&class->lock);
	free_finish(pool, z, handle, "zs_free");
}

struct free_item {
	unsigned long handle;
	unsigned class_idx;
};

static int cmp_free_item(const void *x, const void *y)
{
	const struct free_item *a = x, *b = y;
	if (a->class_idx != b->class_idx)
		return a->class_idx < b->class_idx ? -1 : 1;
	return (a->handle > b->handle) - (a->handle < b->handle);
}

void pool_free_batch(struct zs_pool *pool, unsigned long *handles, size_t n)
{
	enum { STEP = 1024 }; /* runs of one class get longer with the batch */
	struct free_item items[STEP];
	struct zspage *empty[STEP];
	unsigned long bad[STEP];

	for (size_t base = 0; base < n; base += STEP) {
		size_t m = n - base < STEP ? n - base : STEP, k = 0, nr_empty = 0, nr_bad = 0;

		for (size_t i = 0; i < m; i++) {
			unsigned long h = handles[base + i];
			uint64_t obj;

			if (!h)
				continue;
			if (handle_lookup(&pool->handles, h, &obj, NULL)) {
				bad[nr_bad++] = h;
				continue;
			}
			items[k].handle = h;
			items[k++].class_idx = obj_class(obj);
		}
		/* group by class: one lock hold per run of same-class handles */
		qsort(items, k, sizeof(items[0]), cmp_free_item);
		for (size_t i = 0; i < k;) {
			struct size_class *class = pool->size_class[items[i].class_idx];

			zs_mutex_lock(&class->lock);
			for (; i < k && pool->size_class[items[i].class_idx] == class; i++) {
				struct zspage *z =
					pool_free_locked(pool, class, items[i].handle, "zs_free_deferred");
				if (z == POOL_FREE_INVALID)
					bad[nr_bad++] = items[i].handle;
				else if (z)
					empty[nr_empty++] = z;
			}
			zs_mutex_unlock(&class->lock);
		}
		for (size_t i = 0; i < nr_empty; i++)
			zspage_destroy(pool, empty[i]);
		for (size_t i = 0; i < nr_bad; i++)
			pool_report_invalid(pool, "zs_free_deferred", bad[i]);
	}
}

/*
 * Finds the zspage of a live handle and read-locks it, so the object cannot
 * move until the matching unlock. Takes no pool-wide lock: the zspage is
 * found under RCU (its descriptor cannot be freed under us), locked, and
 * both obj and the page's zspage re-checked. Compaction and migration change
 * obj only while holding the write lock of the zspage the object leaves, so
 * once z is read-locked the object cannot leave z; but an unchanged obj
 * alone does not prove it is in z: between our lookup and our lock, z may
 * have died, its page gone to a new zspage of the class, and the object
 * been compacted back to the same page and index (the same obj word, ABA).
 * pdesc still naming z after the lock rules that out: a dead zspage is
 * unpublished from its pages before they can be reused. NULL if invalid.
 */
static struct zspage *obj_lock(struct zs_pool *pool, unsigned long handle, uint64_t *objp,
			       const char *op)
{
	for (;;) {
		struct zspage *z;
		uint64_t obj, *word, w;

		zs_rcu_read_lock();
		if (handle_lookup(&pool->handles, handle, &obj, &word)) {
			zs_rcu_read_unlock();
			pool_report_invalid(pool, op, handle);
			errno = EBADF;
			return NULL;
		}
		/* the whole slot word: same place, same generation (its low bits) */
		w = obj | SLOT_ALLOC |
		    ((((uint64_t)handle >> HANDLE_GEN_SHIFT) & ((1u << SLOT_GEN_BITS) - 1))
		     << SLOT_GEN_SHIFT);
		z = pdesc_zspage(&pool->arena, obj_pfn(obj));
		race_window(ZS_RACE_READ_LOOKUP, pool);
		if (z) {
			zspage_read_lock(z);
			/* acquire: pairs with handle_move_locked()'s release; after
			 * our lock acquire, a writer that moved the object has also
			 * published its new obj. The pdesc load (acquire, pairs with
			 * pdesc_set()) comes after it: a zspage that took the page
			 * was published before any object moved into it. */
			if (load_acquire(word) == w &&
			    pdesc_zspage(&pool->arena, obj_pfn(obj)) == z) {
				zs_rcu_read_unlock();
				*objp = obj;
				return z;
			}
			zspage_read_unlock(z);
		}
		zs_rcu_read_unlock();
		/* moved (or being migrated) meanwhile: look it up again */
	}
}

/* Unlocks the zspage that obj_lock() returned for this handle. */
static void obj_unlock(struct zs_pool *pool, uint64_t obj)
{
	/* obj cannot change while we hold the read lock, nor can pdesc */
	zspage_read_unlock(pdesc_zspage(&pool->arena, obj_pfn(obj)));
}

/*
 * Whether the object at start (in zspage z of class) carries exactly this
 * handle: the whole generation, of which the slot word holds 16 bits. Call
 * with z read-locked (or under the class lock).
 */
static inline bool obj_carries(const struct size_class *class, struct zspage *z,
			       const char *start, unsigned long handle)
{
	if (class->huge)
		return load_relaxed(&z->huge_handle) == handle;
	return obj_header_load(start) == (handle | OBJ_TAG_ALLOCATED);
}

/* A read-locked object of a live handle, and where its payload is. */
struct obj_view {
	struct zspage *z;
	uint64_t obj;
	unsigned page;  /* the zspage's page the payload starts on */
	char *p;        /* the payload's first byte */
	size_t first;   /* payload bytes on that page */
};

/*
 * Read-locks the zspage of a live handle (obj_lock) and locates its
 * payload. The slot word matched only the generation's low 16 bits: the
 * object's header (or the huge zspage's handle), which cannot change
 * while the zspage is read-locked and the handle live, holds the whole
 * handle. 0; -EBADF (reported) for a handle that is not live; -EINVAL
 * when mem_len exceeds the object. On error nothing stays locked.
 */
static inline __attribute__((always_inline)) int
obj_open(struct zs_pool *pool, unsigned long handle, size_t mem_len, const char *op,
		    struct obj_view *v)
{
	struct size_class *class;
	unsigned off;
	size_t hdr;
	char *start;

	v->z = obj_lock(pool, handle, &v->obj, op);
	if (!v->z)
		return -EBADF;
	class = pool->size_class[obj_class(v->obj)];
	obj_location(class, obj_idx(v->obj), &v->page, &off);
	start = (char *)arena_page(&pool->arena, obj_pfn(v->obj)) + off;
	if (!obj_carries(class, v->z, start, handle)) {
		obj_unlock(pool, v->obj);
		pool_report_invalid(pool, op, handle);
		return -EBADF;
	}
	if (mem_len > class_capacity(class)) {
		obj_unlock(pool, v->obj);
		return -EINVAL;
	}
	hdr = class->huge ? 0 : ZS_HANDLE_SIZE;
	v->p = start + hdr;
	v->first = ZS_PAGE_SIZE - off - hdr;
	return 0;
}

ZS_EXPORT void *zs_obj_read_begin(struct zs_pool *pool, unsigned long handle, size_t mem_len,
				  void *local_copy)
{
	struct obj_view v;
	int err;

	if (!pool || !local_copy) {
		errno = EINVAL;
		return NULL;
	}
	err = obj_open(pool, handle, mem_len, "zs_obj_read_begin", &v);
	if (err) {
		errno = -err;
		return NULL;
	}
	if (mem_len <= v.first || v.z->pfn[v.page + 1] == obj_pfn(v.obj) + 1)
		return v.p; /* in one page, or the two pages are adjacent */
	memcpy(local_copy, v.p, v.first);
	memcpy((char *)local_copy + v.first, arena_page(&pool->arena, v.z->pfn[v.page + 1]),
	       mem_len - v.first);
	return local_copy;
}

/*
 * zs_obj_read_end's check: obj (found locklessly) is where this very
 * handle lives. For a caller that holds the read lock -- the contract --
 * nothing here can change; for one that does not, the RCU read lock keeps
 * the zspage descriptor alive while it is looked at.
 */
static bool read_locked_by(struct zs_pool *pool, uint64_t obj, unsigned long handle)
{
	struct size_class *class = pool->size_class[obj_class(obj)];
	unsigned page, off;
	struct zspage *z;
	bool ok;

	zs_rcu_read_lock();
	z = pdesc_zspage(&pool->arena, obj_pfn(obj));
	obj_location(class, obj_idx(obj), &page, &off);
	ok = z && obj_carries(class, z, (char *)arena_page(&pool->arena, obj_pfn(obj)) + off,
			      handle);
	zs_rcu_read_unlock();
	return ok;
}

ZS_EXPORT void zs_obj_read_end(struct zs_pool *pool, unsigned long handle, size_t mem_len,
			       void *handle_mem)
{
	uint64_t obj;

	(void)mem_len;
	(void)handle_mem;
	if (!pool)
		return;
	if (handle_lookup(&pool->handles, handle, &obj, NULL) || !read_locked_by(pool, obj, handle)) {
		/* not live, or not this generation: unlocking would drop a
		 * reader's lock on someone else's zspage */
		pool_report_invalid(pool, "zs_obj_read_end", handle);
		return;
	}
	obj_unlock(pool, obj);
}

ZS_EXPORT int zs_obj_write(struct zs_pool *pool, unsigned long handle, const void *src,
			   size_t mem_len)
{
	struct obj_view v;
	size_t first;
	int err;

	if (!pool || (!src && mem_len))
		return -EINVAL;
	err = obj_open(pool, handle, mem_len, "zs_obj_write", &v);
	if (err)
		return err;
	first = v.first < mem_len ? v.first : mem_len;
	if (first) /* src may be NULL when there is nothing to copy */
		memcpy(v.p, src, first);
	if (mem_len > first)
		memcpy(arena_page(&pool->arena, v.z->pfn[v.page + 1]), (const char *)src + first,
		       mem_len - first);
	obj_unlock(pool, v.obj);
	return 0;
}

ZS_EXPORT size_t zs_huge_class_size(struct zs_pool *pool)
{
	return pool ? pool->huge_class_size : 0;
}

ZS_EXPORT unsigned long zs_get_total_pages(struct zs_pool *pool)
{
	return pool ? load_relaxed(&pool->pages_allocated) : 0;
}

ZS_EXPORT unsigned int zs_lookup_class_index(struct zs_pool *pool, unsigned int size)
{
	return pool ? pool_class(pool, size)->index : ZS_NO_CLASS;
}

/* Frees the class's spare zspage, if any, and with handles its handle
 * cache. No lock held. Returns whether there was a spare. */
static bool class_release_idle(struct zs_pool *pool, struct size_class *class, bool handles)
{
	struct zspage *z;

	zs_mutex_lock(&class->lock);
	z = pool_take_spare_locked(pool, class);
	/* cached slots may sit anywhere in the table: back to the global
	 * list, so that its free tail can shrink */
	if (handles)
		handle_cache_drain_locked(&pool->handles, class);
	zs_mutex_unlock(&class->lock);
	if (z)
		zspage_destroy(pool, z);
	return z != NULL;
}

bool pool_drop_spares(struct zs_pool *pool)
{
	bool freed = false;

	for (unsigned k = 0; k < pool->nr_classes && load_relaxed(&pool->spare_pages); k++)
		freed |= class_release_idle(pool, &pool->classes[k], false);
	return freed;
}

bool pool_release_idle(struct zs_pool *pool)
{
	bool more;

	for (unsigned k = 0; k < pool->nr_classes; k++)
		class_release_idle(pool, &pool->classes[k], true);
	handle_table_shrink(&pool->handles);
	slab_trim(&pool->slab);
	more = deferred_trim(pool);
	return more || load_relaxed(&pool->spare_pages) != 0;
}

ZS_EXPORT void zs_pool_trim(struct zs_pool *pool)
{
	if (!pool)
		return;
	pool_release_idle(pool);
	arena_trim(&pool->arena);
	/* a decay running meanwhile may have taken a spare before us: what
	 * it frees is freed when this returns */
	arena_decay_wait(&pool->arena);
}
