/* SPDX-License-Identifier: MIT */
/*
 * migrate.c: page migration and arena defragmentation.
 *
 * Migration moves one in-use page of a zspage to another arena page and
 * rewrites the pfn field of every object that starts on it. It finds the
 * page's zspage without any lock that zs_free takes (seed 003): under RCU
 * from pdesc, then it takes that zspage's class lock and checks the zspage
 * is still alive and still owns the page. zs_free unlinks and marks a zspage
 * dead under the same class lock before it unpublishes and frees it, and
 * RCU keeps the descriptor readable meanwhile, so no "could not lock the
 * pages, free it later" path is needed.
 *
 * Locks while the page moves: (pool migrate lock, write, only for the
 * ZS_POOL_FREE_POOL_LOCK zs_free variant) -> class lock -> zspage write
 * trylock. Readers of the zspage make the trylock fail; the page is then
 * skipped (-EAGAIN), never waited for.
 *
 * zs_defrag() is the userspace reason for movable pages: it picks sparsely
 * used 2 MiB chunks whose pages fit into free pages of lower chunks, moves
 * them down, and the emptied chunks are unmapped whole. With
 * ZS_POOL_HUGEPAGES this is what gives huge-page-backed memory back.
 */
#include <string.h>

#include "internal.h"

#define DEFRAG_MAX_VICTIMS 64

/* Rewrites the obj word of every live object that starts on page i. */
static void rewrite_page_objs_locked(struct zs_pool *pool, struct size_class *class,
				     struct zspage *z, unsigned i, uint32_t new_pfn)
{
	/* objects whose first byte lies in [i * 4096, (i + 1) * 4096) */
	unsigned first = (unsigned)(((size_t)i * ZS_PAGE_SIZE + class->size - 1) / class->size);
	unsigned end = (unsigned)(((size_t)(i + 1) * ZS_PAGE_SIZE + class->size - 1) / class->size);

	if (end > z->bump)
		end = z->bump;
	for (unsigned idx = first; idx < end; idx++) {
		unsigned long handle = zspage_obj_handle_locked(pool, class, z, idx);

		if (handle)
			handle_move_locked(&pool->handles, class, handle,
					   obj_encode(new_pfn, class->index, idx));
	}
}

int migrate_page(struct zs_pool *pool, uint32_t pfn, size_t below)
{
	struct arena *a = &pool->arena;
	bool legacy = pool->flags & ZS_POOL_FREE_POOL_LOCK;
	struct size_class *class;
	struct zspage *z;
	uint32_t new_pfn;
	unsigned i;
	int err = -EAGAIN;

	zs_rcu_read_lock();
	z = pdesc_zspage(a, pfn);
	if (!z) {
		zs_rcu_read_unlock();
		return -EAGAIN; /* free, or in the middle of being freed */
	}
	race_window(ZS_RACE_MIGRATE_LOOKUP, pool);
	/* z cannot be freed while we are in the read-side section */
	class = pool->size_class[z->class_idx];
	/* The destination first: the arena lock (and a chunk's mprotect) is
	 * then taken under neither the class lock, which zs_free of the class
	 * waits for, nor the zspage write lock, which readers spin on. */
	err = arena_alloc_page_below(a, below, &new_pfn);
	if (err) {
		zs_rcu_read_unlock();
		return err;
	}
	err = -EAGAIN;
	if (legacy)
		pthread_rwlock_wrlock(&pool->migrate_lock);
	zs_mutex_lock(&class->lock);
	/* alive and still the owner of the page? (zs_free marks dead under
	 * this lock; an earlier migration may have moved the page) */
	if (z->dead || pdesc_zspage(a, pfn) != z) {
		zs_rcu_read_unlock();
		goto out;
	}
	zs_rcu_read_unlock(); /* linked, and we hold its class lock */
	for (i = 0; i < z->nr_pages && z->pfn[i] != pfn; i++)
		;
	ZS_ASSERT(i < z->nr_pages);
	if (!zspage_try_write_lock(z))
		goto out; /* readers hold it: skip */
	memcpy(arena_page(a, new_pfn), arena_page(a, pfn), ZS_PAGE_SIZE);
	pdesc_set(a, new_pfn, z);
	race_window(ZS_RACE_MIGRATE_COPY, pool);
	z->pfn[i] = new_pfn;
	rewrite_page_objs_locked(pool, class, z, i, new_pfn);
	pdesc_set(a, pfn, NULL);
	ZS_ASSERT_EXPENSIVE(zspage_is_valid_locked(pool, class, z));
	zspage_write_unlock(z);
	err = 0;
out:
	zs_mutex_unlock(&class->lock);
	if (legacy)
		pthread_rwlock_unlock(&pool->migrate_lock);
	if (!err) {
		arena_return_pages(a, 1, &pfn);
		fetch_add_relaxed(&pool->pages_migrated, 1);
	} else {
		arena_free_pages(a, 1, &new_pfn); /* not used: back to the cache */
	}
	return err;
}

ZS_EXPORT unsigned long zs_defrag(struct zs_pool *pool)
{
	size_t victims[DEFRAG_MAX_VICTIMS], nr;
	unsigned long moved = 0;
	struct arena *a;

	if (!pool)
		return 0;
	a = &pool->arena;
	/* one at a time; a fork() waits on this lock too, and asks a running
	 * one to stop early (fork_pending) */
	pthread_mutex_lock(&pool->defrag_lock);
	/* cached pages would keep victim chunks from emptying */
	arena_trim(a);
	nr = arena_defrag_victims(a, victims, DEFRAG_MAX_VICTIMS);
	for (size_t v = 0; v < nr; v++) {
		size_t c = victims[v];
		uint32_t first = (uint32_t)(c * ZS_CHUNK_PAGES);
		bool stuck = false;

		/* a fork() waiting: stop (victims left are undrained below) */
		stuck = load_relaxed(&pool->fork_pending);
		for (uint32_t p = first; p < first + ZS_CHUNK_PAGES && !stuck; p++) {
			/* racy peek; migrate_page() re-checks under the locks */
			if (!pdesc_zspage(a, p))
				continue;
			int err = migrate_page(pool, p, c);
			if (!err)
				moved++;
			else if (err == -ENOMEM)
				stuck = true; /* nothing free below: stop on this chunk */
		}
		arena_undrain(a, c); /* no-op if it was emptied and unmapped */
	}
	pthread_mutex_unlock(&pool->defrag_lock);
	return moved;
}
