/* SPDX-License-Identifier: MIT */
/*
 * slab.c: the pool's own allocator for zspage descriptors, like the
 * kernel's kmem_cache for struct zspage.
 *
 * Why not malloc: descriptors are small (48..104 bytes), made and freed by
 * the ten thousand, and freed late -- after an RCU grace period, from
 * liburcu's call_rcu thread. In glibc's heap they end up spread over
 * fastbins and the chunks of several arenas, and when the pool empties
 * that memory stays resident: malloc_trim cannot return a page that one
 * live chunk of someone else's still sits on. Here every 4 KiB page holds
 * descriptors of one size only, a page whose descriptors are all free goes
 * back to the OS (MADV_DONTNEED) at once -- one empty page is kept as a
 * spare -- and zs_compact() can move descriptors out of sparse pages into
 * dense ones (slab_alloc_denser()), so the descriptor memory shrinks with
 * the pool.
 *
 * Memory: a range reserved at pool creation (PROT_NONE, no cost), made
 * accessible SLAB_COMMIT pages at a time as the slab grows; a page is
 * resident exactly while its bit in used_map is set (it holds a header:
 * in use, or the spare). Pages are taken lowest address first.
 *
 * Page layout: struct slab_page at offset 0, then objects of the cache's
 * size from SLAB_HDR on; a free object's first word links the page's free
 * list. An object's page is its address rounded down to 4 KiB.
 *
 * Lock: slab->lock, a leaf (internal.h's lock order): taken under a class
 * lock (zspage_create, relocation) or under none (the RCU callback, trim).
 * fork(): taken after liburcu has paused its callback thread (fork.c).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "internal.h"

#if defined(__SANITIZE_ADDRESS__)
#define ZS_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ZS_ASAN 1
#endif
#endif

#ifdef ZS_ASAN
void __asan_poison_memory_region(void const volatile *addr, size_t size);
void __asan_unpoison_memory_region(void const volatile *addr, size_t size);
/* a free object's body (all but its link word): a use after free is reported */
#define poison_body(p, size) __asan_poison_memory_region((char *)(p) + 8, (size) - 8)
#define unpoison_body(p, size) __asan_unpoison_memory_region((char *)(p) + 8, (size) - 8)
/* a page taken anew may have held objects of another size */
#define unpoison_page(p) __asan_unpoison_memory_region((p), ZS_PAGE_SIZE)
/* the range is unmapped: the next mapping there (another pool's arena)
 * must not inherit our marks */
#define unpoison_range(p, bytes) __asan_unpoison_memory_region((p), (bytes))
#else
#define unpoison_page(p) ((void)(p))
#define unpoison_range(p, bytes) ((void)(p), (void)(bytes))
#define poison_body(p, size) ((void)(p), (void)(size))
#define unpoison_body(p, size) ((void)(p), (void)(size))
#endif

#define SLAB_HDR    ((sizeof(struct slab_page) + 15) & ~(size_t)15)
#define SLAB_COMMIT 16 /* pages made accessible at a time */

static inline struct slab_page *page_of(const void *obj)
{
	return (struct slab_page *)((uintptr_t)obj & ~(uintptr_t)(ZS_PAGE_SIZE - 1));
}

static inline size_t page_index(const struct zs_slab *s, const struct slab_page *p)
{
	return (size_t)((const char *)p - s->base) >> ZS_PAGE_SHIFT;
}

size_t slab_object_size(unsigned nr_pages)
{
	/* descriptors of 2k-1 and 2k pages share a size */
	size_t bytes = offsetof(struct zspage, pfn) + (size_t)((nr_pages + 1) & ~1u) * sizeof(uint32_t);

	return (bytes + 7) & ~(size_t)7;
}

int slab_init(struct zs_slab *s, size_t max_objs)
{
	memset(s, 0, sizeof(*s));
	for (unsigned c = 0; c < SLAB_CACHES; c++) {
		struct slab_cache *cache = &s->caches[c];

		for (unsigned g = 0; g < SLAB_GROUPS; g++)
			list_init(&cache->partial[g]);
		cache->size = (unsigned)slab_object_size(2 * c + 2);
		cache->capacity = (unsigned)((ZS_PAGE_SIZE - SLAB_HDR) / cache->size);
	}
	/* enough for every descriptor on a page of its own, the worst case */
	s->nr_max = (max_objs + SLAB_COMMIT - 1) / SLAB_COMMIT * SLAB_COMMIT;
	s->map_words = (s->nr_max + 63) / 64;
	/* the map: reserved, and only the words of touched pages fault in */
	s->used_map = mmap(NULL, s->map_words * sizeof(uint64_t), PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (s->used_map == MAP_FAILED || fault(ZS_FAULT_MAP)) {
		if (s->used_map != MAP_FAILED)
			munmap(s->used_map, s->map_words * sizeof(uint64_t));
		s->used_map = NULL;
		return -ENOMEM;
	}
	s->base = vm_reserve(s->nr_max << ZS_PAGE_SHIFT, ZS_PAGE_SIZE);
	if (!s->base) {
		munmap(s->used_map, s->map_words * sizeof(uint64_t));
		s->used_map = NULL;
		return -ENOMEM;
	}
	pthread_mutex_init(&s->lock, NULL);
	return 0;
}

void slab_destroy(struct zs_slab *s)
{
	if (!s->base)
		return;
	/* the last slab_free ran in the call_rcu thread, ordered before us by
	 * the caller's zs_rcu_barrier(), which ThreadSanitizer cannot see:
	 * taking the lock once shows it that edge */
	pthread_mutex_lock(&s->lock);
	pthread_mutex_unlock(&s->lock);
	unpoison_range(s->base, s->nr_committed << ZS_PAGE_SHIFT);
	vm_unreserve(s->base, s->nr_max << ZS_PAGE_SHIFT);
	munmap(s->used_map, s->map_words * sizeof(uint64_t));
	pthread_mutex_destroy(&s->lock);
	s->base = NULL;
}

static inline unsigned group_of(const struct slab_cache *c, unsigned inuse)
{
	/* SLAB_GROUPS: full, on no list */
	return inuse >= c->capacity ? SLAB_GROUPS : inuse * SLAB_GROUPS / c->capacity;
}

/* Moves p to the list of its fill group after inuse changed. Lock held. */
static void refile_locked(struct zs_slab *s, struct slab_page *p)
{
	struct slab_cache *c = &s->caches[p->cache];
	unsigned g = group_of(c, p->inuse);

	if (g == p->group)
		return;
	if (p->group < SLAB_GROUPS)
		list_del(&p->link);
	if (g < SLAB_GROUPS)
		list_add(&c->partial[g], &p->link);
	p->group = (uint8_t)g;
}

/* A page for cache c: the spare, or the lowest free one. Lock held. */
static struct slab_page *page_new_locked(struct zs_slab *s, unsigned c)
{
	struct slab_page *p = s->spare;
	size_t idx, w;

	if (p) {
		s->spare = NULL;
	} else {
		for (w = s->hint; w < s->map_words && s->used_map[w] == ~0ull; w++)
			;
		s->hint = w;
		if (w == s->map_words)
			return NULL;
		idx = w * 64 + (size_t)__builtin_ctzll(~s->used_map[w]);
		if (idx >= s->nr_max)
			return NULL;
		if (idx >= s->nr_committed) {
			/* the reservation grows by SLAB_COMMIT pages; nr_committed
			 * is a multiple of it, and so is nr_max */
			if (vm_commit(s->base + (s->nr_committed << ZS_PAGE_SHIFT),
				      (size_t)SLAB_COMMIT << ZS_PAGE_SHIFT))
				return NULL;
			s->nr_committed += SLAB_COMMIT;
		}
		s->used_map[w] |= 1ull << (idx % 64);
		store_relaxed(&s->nr_pages, s->nr_pages + 1);
		p = (struct slab_page *)(s->base + (idx << ZS_PAGE_SHIFT));
	}
	unpoison_page(p);
	p->slab = s;
	p->free = NULL;
	p->inuse = 0;
	p->bump = 0;
	p->cache = (uint8_t)c;
	p->group = SLAB_GROUPS; /* on no list: refile_locked() files it */
	return p;
}

/* Gives page p (empty, on no list) back to the OS. Lock held. */
static void page_release_locked(struct zs_slab *s, struct slab_page *p)
{
	size_t idx = page_index(s, p);

	/* under the lock: once its bit is clear, another thread may take the
	 * page and write its header, which a later MADV_DONTNEED would zap */
	if (!fault(ZS_FAULT_MADVISE))
		madvise(p, ZS_PAGE_SIZE, MADV_DONTNEED);
	s->used_map[idx / 64] &= ~(1ull << (idx % 64));
	if (idx / 64 < s->hint)
		s->hint = idx / 64;
	store_relaxed(&s->nr_pages, s->nr_pages - 1);
}

/* p's last object was freed: keep it as the spare, or give it back. */
static void page_empty_locked(struct zs_slab *s, struct slab_page *p)
{
	if (p->group < SLAB_GROUPS)
		list_del(&p->link);
	p->group = SLAB_GROUPS;
	if (!s->spare)
		s->spare = p;
	else
		page_release_locked(s, p);
}

static void *obj_take_locked(struct zs_slab *s, struct slab_page *p)
{
	struct slab_cache *c = &s->caches[p->cache];
	char *obj;

	if (p->free) {
		obj = p->free;
		p->free = *(void **)obj;
	} else {
		ZS_ASSERT(p->bump < c->capacity);
		obj = (char *)p + SLAB_HDR + (size_t)p->bump++ * c->size;
	}
	p->inuse++;
	refile_locked(s, p);
	unpoison_body(obj, c->size);
	return obj;
}

void *slab_alloc(struct zs_slab *s, unsigned nr_pages)
{
	unsigned c = (nr_pages - 1) / 2;
	struct slab_cache *cache = &s->caches[c];
	struct slab_page *p = NULL;
	void *obj;

	ZS_ASSERT(nr_pages >= 1 && nr_pages <= ZS_MAX_CHAIN);
	pthread_mutex_lock(&s->lock);
	/* the fullest partial page: descriptors pack densely, and sparse
	 * pages empty out as their descriptors go */
	for (unsigned g = SLAB_GROUPS; g-- > 0 && !p;)
		if (!list_empty(&cache->partial[g]))
			p = container_of(cache->partial[g].next, struct slab_page, link);
	if (!p && !(p = page_new_locked(s, c))) {
		pthread_mutex_unlock(&s->lock);
		return NULL;
	}
	obj = obj_take_locked(s, p);
	pthread_mutex_unlock(&s->lock);
	return obj;
}

void *slab_alloc_denser(struct zs_slab *s, const void *obj)
{
	struct slab_page *src = page_of(obj), *dst = NULL;
	struct slab_cache *cache;
	void *nobj = NULL;

	pthread_mutex_lock(&s->lock);
	cache = &s->caches[src->cache];
	/* only out of pages at most half full, into the fullest partial page
	 * holding at least as many: every move raises the sum of the squares
	 * of the pages' counts, so moves settle, and a page empties */
	if (src->group >= SLAB_GROUPS / 2)
		goto out;
	for (unsigned g = SLAB_GROUPS; g-- > 0 && !dst;) {
		struct list_node *n;

		for (n = cache->partial[g].next; n != &cache->partial[g]; n = n->next) {
			struct slab_page *p = container_of(n, struct slab_page, link);

			if (p != src) {
				dst = p;
				break;
			}
		}
	}
	if (dst && dst->inuse >= src->inuse)
		nobj = obj_take_locked(s, dst);
out:
	pthread_mutex_unlock(&s->lock);
	return nobj;
}

void slab_free(void *obj)
{
	struct slab_page *p = page_of(obj);
	struct zs_slab *s = p->slab; /* immutable while obj is allocated */

	pthread_mutex_lock(&s->lock);
	ZS_ASSERT(p->inuse > 0);
	poison_body(obj, s->caches[p->cache].size);
	*(void **)obj = p->free;
	p->free = obj;
	if (--p->inuse == 0)
		page_empty_locked(s, p);
	else
		refile_locked(s, p);
	pthread_mutex_unlock(&s->lock);
}

void slab_trim(struct zs_slab *s)
{
	pthread_mutex_lock(&s->lock);
	if (s->spare) {
		page_release_locked(s, s->spare);
		s->spare = NULL;
	}
	pthread_mutex_unlock(&s->lock);
}

size_t slab_bytes(struct zs_slab *s)
{
	size_t map;

	pthread_mutex_lock(&s->lock);
	/* the map's words of the committed pages, in whole pages */
	map = ((s->nr_committed + 63) / 64 * sizeof(uint64_t) + ZS_PAGE_SIZE - 1) & ~(size_t)(ZS_PAGE_SIZE - 1);
	pthread_mutex_unlock(&s->lock);
	/* the pages holding descriptors, and the part of the map in use */
	return ((size_t)load_relaxed(&s->nr_pages) << ZS_PAGE_SHIFT) + map;
}

unsigned long slab_resident_pages(struct zs_slab *s)
{
	return load_relaxed(&s->nr_pages);
}

void slab_fork_lock(struct zs_slab *s)
{
	pthread_mutex_lock(&s->lock);
}

void slab_fork_release(struct zs_slab *s)
{
	pthread_mutex_unlock(&s->lock);
}
