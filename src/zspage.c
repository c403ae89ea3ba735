/* SPDX-License-Identifier: MIT */
/*
 * zspage.c: zspage build and free, the in-zspage free list, fullness
 * groups, object placement, and the slow path of the zspage lock.
 *
 * Object idx of a class of size S starts at byte idx * S of the zspage (its
 * pages taken in pfn[] order) and may straddle into the next page. A normal
 * object's first 8 bytes are its header: "handle | 1" while allocated, the
 * next free index shifted left by one while free (bit 0 tells them apart;
 * class sizes are multiples of 16, so a header never straddles). Objects at
 * or past 'bump' were never handed out and their memory is untouched, so a
 * new zspage costs no page faults until it is used.
 *
 * Every function here with a _locked suffix expects the class lock.
 */
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

unsigned fullness_group(unsigned inuse, unsigned objs_per_zspage)
{
	if (inuse == 0)
		return ZS_FULLNESS_EMPTY;
	if (inuse >= objs_per_zspage)
		return ZS_FULLNESS_FULL;
	/* 1..10: 0-9 %, 10-19 %, ..., 90-99 % used */
	return 100 * inuse / objs_per_zspage / 10 + 1;
}

struct zspage *zspage_create(struct zs_pool *pool, struct size_class *class)
{
	unsigned n = class->pages_per_zspage;
	struct zspage *z;

	/* at the page limit, spare zspages give their pages up first. This
	 * runs inside the build gate (pool_build_begin) with no lock held:
	 * pool_drop_spares takes class locks one at a time and
	 * zspage_destroy the arena lock and call_rcu, none of which fork's
	 * phase 1 holds while it waits for builds to finish */
	if (!pool_reserve_pages(pool, n) && !(pool_drop_spares(pool) && pool_reserve_pages(pool, n)))
		return NULL;
	z = slab_alloc(&pool->slab, n);
	if (!z)
		goto fail;
	memset(z, 0, slab_object_size(n));
	z->freeobj = OBJ_NONE;
	z->class_idx = (uint8_t)class->index;
	z->nr_pages = (uint8_t)n;
	z->fullness = ZS_FULLNESS_EMPTY;
	list_init(&z->list);
	if (arena_alloc_pages(&pool->arena, n, z->pfn))
		goto fail;
	/* release: a lockless reader that finds z through pdesc sees it whole */
	for (unsigned i = 0; i < n; i++)
		pdesc_set(&pool->arena, z->pfn[i], z);
	return z;
fail:
	if (z)
		slab_free(z);
	pool_unreserve_pages(pool, n);
	return NULL;
}

void zspage_destroy(struct zs_pool *pool, struct zspage *z)
{
	unsigned n = z->nr_pages;

	ZS_ASSERT(z->dead && z->inuse == 0);
	/*
	 * Unpublish first: once a page is back in the arena another zspage may
	 * take it and publish itself there. Lookups that found z already are
	 * safe: z's descriptor outlives them (RCU), and z->dead, set under the
	 * class lock, tells migration to skip it.
	 */
	for (unsigned i = 0; i < n; i++)
		pdesc_set(&pool->arena, z->pfn[i], NULL);
	arena_free_pages(&pool->arena, n, z->pfn);
	pool_unreserve_pages(pool, n);
	zs_rcu_free_zspage(z);
	/* release: the fork handler that sees the count drop (its acquire)
	 * sees the pages back in the arena and the accounting done */
	fetch_sub_release(&pool->dying, 1);
}

/* the first byte after struct zspage's lock word */
#define ZSPAGE_AFTER_LOCK (offsetof(struct zspage, lock) + sizeof(((struct zspage *)0)->lock))

struct zspage *zspage_relocate_locked(struct zs_pool *pool, struct size_class *class,
				      struct zspage *z)
{
	struct zspage *nz;

	assert_held(&class->lock);
	if (!zspage_try_write_lock(z))
		return NULL; /* readers hold it: skip, never wait */
	nz = slab_alloc_denser(&pool->slab, z);
	if (!nz) {
		zspage_write_unlock(z);
		return NULL;
	}
	/* Every field but the lock word is written under the class lock,
	 * which we hold: copy those. Not the lock word: readers that loaded
	 * it before our trylock may still compare-exchange it (and fail: it
	 * is WRLOCKED), an atomic access that a plain copy would race with
	 * (ThreadSanitizer reports it, 2 of 2 TSan stress runs of 27 s in the
	 * soak). nz starts write-locked, unpublished until pdesc_set(). */
	memcpy(nz, z, offsetof(struct zspage, lock));
	store_relaxed(&nz->lock, ZSPAGE_WRLOCKED);
	memcpy((char *)nz + ZSPAGE_AFTER_LOCK, (char *)z + ZSPAGE_AFTER_LOCK,
	       slab_object_size(z->nr_pages) - ZSPAGE_AFTER_LOCK);
	list_add(&z->list, &nz->list); /* in z's place */
	list_del(&z->list);
	/* release: a reader or migration that finds nz through pdesc sees it
	 * whole (pairs with pdesc_zspage()'s acquire) */
	for (unsigned i = 0; i < nz->nr_pages; i++)
		pdesc_set(&pool->arena, nz->pfn[i], nz);
	zspage_write_unlock(nz);
	/*
	 * A reader that found z before pdesc moved waits for z's lock; once it
	 * has it, its check of pdesc fails and it looks again (obj_lock()).
	 * Migration checks 'dead' under this class lock. z itself lives until
	 * an RCU grace period has passed (the caller's zs_rcu_free_zspage()).
	 */
	z->dead = true;
	zspage_write_unlock(z);
	return z;
}

void zspage_link_locked(struct size_class *class, struct zspage *z)
{
	unsigned fg = fullness_group(z->inuse, class->objs_per_zspage);

	assert_held(&class->lock);
	list_add(&class->fullness_list[fg], &z->list);
	z->fullness = (uint8_t)fg;
	class->nr_zspages[fg]++;
}

void zspage_unlink_locked(struct size_class *class, struct zspage *z)
{
	assert_held(&class->lock);
	list_del(&z->list);
	class->nr_zspages[z->fullness]--;
}

unsigned zspage_refile_locked(struct size_class *class, struct zspage *z)
{
	unsigned fg = class_fullness_from(class, z->inuse, z->fullness);

	ZS_ASSERT_INTERNAL(fg == fullness_group(z->inuse, class->objs_per_zspage));
	if (fg != z->fullness) {
		zspage_unlink_locked(class, z);
		zspage_link_locked(class, z);
	}
	return fg;
}

struct zspage *zspage_find_locked(struct size_class *class)
{
	assert_held(&class->lock);
	for (int fg = ZS_FULLNESS_FULL - 1; fg >= ZS_FULLNESS_EMPTY; fg--) {
		if (!list_empty(&class->fullness_list[fg]))
			return container_of(class->fullness_list[fg].next, struct zspage, list);
	}
	return NULL;
}

/* Address of object idx's first byte. Class lock or zspage lock held. */
static inline char *obj_addr(struct zs_pool *pool, struct size_class *class, struct zspage *z,
			     unsigned idx)
{
	unsigned page, off;

	obj_location(class, idx, &page, &off);
	return (char *)arena_page(&pool->arena, z->pfn[page]) + off;
}

static inline uint64_t header_load(const char *p)
{
	return obj_header_load(p);
}

static inline void header_store(char *p, uint64_t v)
{
	store_relaxed((uint64_t *)(void *)p, v); /* see obj_header_load() */
}

/*
 * Starts fetching every line of object idx for writing: the next
 * allocation from z will store it, and zs_malloc_write() copies the data in
 * under the class lock. Cold lines make those stores wait in the store
 * buffer, and the unlock's atomic waits for all of them to commit: 320-400
 * cycles an allocation by rdtsc, 160 with the lines prefetched (and the
 * copy itself 290-380 -> 180).
 */
static void obj_prefetch_write(struct zs_pool *pool, struct size_class *class, struct zspage *z,
			       unsigned idx)
{
	unsigned page, off;
	size_t first, end;
	const char *p;

	obj_location(class, idx, &page, &off);
	p = (const char *)arena_page(&pool->arena, z->pfn[page]);
	first = ZS_PAGE_SIZE - off;
	if (first > class->size)
		first = class->size;
	for (size_t o = off & ~(size_t)63; o < off + first; o += 64)
		prefetch_write(p + o);
	if (class->size > first) {
		p = (const char *)arena_page(&pool->arena, z->pfn[page + 1]);
		end = class->size - first;
		for (size_t o = 0; o < end; o += 64)
			prefetch_write(p + o);
	}
}

uint64_t zspage_obj_alloc_locked(struct zs_pool *pool, struct size_class *class,
				 struct zspage *z, unsigned long handle)
{
	unsigned idx, page, off;

	assert_held(&class->lock);
	ZS_ASSERT(z->inuse < class->objs_per_zspage);
	if (z->freeobj != OBJ_NONE) {
		idx = z->freeobj;
		z->freeobj = class->huge ? OBJ_NONE
					 : (uint16_t)(header_load(obj_addr(pool, class, z, idx)) >> 1);
		/* the next allocation reads that object's link and writes the
		 * object: start its misses now */
		if (z->freeobj != OBJ_NONE)
			obj_prefetch_write(pool, class, z, z->freeobj);
	} else {
		idx = z->bump++;
		if (z->bump < class->objs_per_zspage)
			obj_prefetch_write(pool, class, z, z->bump);
	}
	if (class->huge)
		store_relaxed(&z->huge_handle, handle);
	else
		header_store(obj_addr(pool, class, z, idx), handle | OBJ_TAG_ALLOCATED);
	z->inuse++;
	class->objs_used++;
	obj_location(class, idx, &page, &off);
	return obj_encode(z->pfn[page], class->index, idx);
}

bool zspage_obj_free_locked(struct zs_pool *pool, struct size_class *class, struct zspage *z,
			    uint64_t obj, unsigned long handle)
{
	unsigned idx = obj_idx(obj);
	char *hdr = class->huge ? NULL : obj_addr(pool, class, z, idx);

	assert_held(&class->lock);
	ZS_ASSERT(z->inuse > 0 && idx < z->bump);
	/* the whole handle, generation included (the slot word holds 16 bits) */
	if (class->huge ? z->huge_handle != handle
			: header_load(hdr) != (handle | OBJ_TAG_ALLOCATED))
		return false;
	if (class->huge)
		store_relaxed(&z->huge_handle, 0ul);
	else
		header_store(hdr, (uint64_t)z->freeobj << 1);
	z->freeobj = (uint16_t)idx;
	z->inuse--;
	class->objs_used--;
	return true;
}

unsigned long zspage_obj_handle_locked(struct zs_pool *pool, struct size_class *class,
				       struct zspage *z, unsigned idx)
{
	uint64_t h;

	if (idx >= z->bump)
		return 0;
	if (class->huge)
		return z->inuse ? z->huge_handle : 0;
	h = header_load(obj_addr(pool, class, z, idx));
	return (h & OBJ_TAG_ALLOCATED) ? (unsigned long)(h & ~OBJ_TAG_ALLOCATED) : 0;
}

/* Copies len payload bytes of object idx out (to buf) or in (from buf). */
static void obj_rw(struct zs_pool *pool, struct size_class *class, struct zspage *z,
		   unsigned idx, void *buf, size_t len, bool write)
{
	unsigned page, off;
	size_t hdr = class->huge ? 0 : ZS_HANDLE_SIZE, first;
	char *p;

	obj_location(class, idx, &page, &off);
	p = (char *)arena_page(&pool->arena, z->pfn[page]) + off + hdr;
	first = ZS_PAGE_SIZE - off - hdr;
	if (first > len)
		first = len;
	if (write)
		memcpy(p, buf, first);
	else
		memcpy(buf, p, first);
	if (len > first) {
		char *q = arena_page(&pool->arena, z->pfn[page + 1]);
		if (write)
			memcpy(q, (char *)buf + first, len - first);
		else
			memcpy((char *)buf + first, q, len - first);
	}
}

void zspage_obj_write_locked(struct zs_pool *pool, struct size_class *class, struct zspage *z,
			     unsigned idx, const void *src, size_t len)
{
	assert_held(&class->lock);
	obj_rw(pool, class, z, idx, (void *)src, len, true);
}

void zspage_obj_copy(struct zs_pool *pool, struct size_class *class, struct zspage *dz,
		     unsigned didx, struct zspage *sz, unsigned sidx)
{
	char buf[ZS_MAX_ALLOC_SIZE];
	size_t len = class_capacity(class);

	obj_rw(pool, class, sz, sidx, buf, len, false);
	obj_rw(pool, class, dz, didx, buf, len, true);
}

bool zspage_is_valid_locked(struct zs_pool *pool, struct size_class *class, struct zspage *z)
{
	unsigned nfree = 0, idx = z->freeobj;

	if (z->dead || z->class_idx != class->index || z->nr_pages != class->pages_per_zspage)
		return false;
	if (z->bump > class->objs_per_zspage || z->inuse > z->bump)
		return false;
	if (z->fullness != fullness_group(z->inuse, class->objs_per_zspage))
		return false;
	for (unsigned i = 0; i < z->nr_pages; i++)
		if (pdesc_zspage(&pool->arena, z->pfn[i]) != z)
			return false;
	while (idx != OBJ_NONE) {
		if (idx >= z->bump || ++nfree > z->bump)
			return false;
		if (class->huge)
			break;
		uint64_t h = header_load(obj_addr(pool, class, z, idx));
		if (h & OBJ_TAG_ALLOCATED)
			return false;
		idx = (unsigned)(h >> 1);
	}
	return z->inuse == z->bump - nfree;
}

void zspage_read_lock_slow(struct zspage *z, int old)
{
	unsigned spins = 0;

	for (;;) {
		/*
		 * A writer holds it. Writers never block while holding it, so
		 * spin with exponential backoff for a short while, then yield
		 * the CPU: in userspace the writer may have been preempted.
		 */
		while (old == ZSPAGE_WRLOCKED) {
			if (spins < 10) {
				for (unsigned i = 0; i < (1u << spins); i++)
					cpu_relax();
				spins++;
			} else {
				sched_yield();
			}
			old = load_relaxed(&z->lock);
		}
		/* acquire: pairs with zspage_write_unlock()'s release */
		if (cas_weak_acquire(&z->lock, &old, old + 1))
			return;
		/* failed: old holds the current value; no pause, retry */
	}
}
