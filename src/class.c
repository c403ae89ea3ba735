/* SPDX-License-Identifier: MIT */
/*
 * class.c: the size-class table and the class lock.
 *
 * Logical classes are 16 bytes apart from 32 to 4096 (255 of them). Each
 * gets the zspage length, 1..chain_size pages, that wastes the fewest bytes
 * at the zspage's tail (ties: the shortest). Neighbouring classes with the
 * same (pages, objects) shape are merged into the largest of them, which is
 * the one that stores its index in obj. A class with one object on one page
 * is "huge": its objects carry no header, the handle lives in the zspage.
 * With chain_size 8 this is the kernel's table and zs_huge_class_size() is
 * 3625, so callers that size their data to the kernel's classes (zram) see
 * the same behaviour here.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

/* Spins on a held class lock before sleeping (glibc's adaptive mutex: 100). */
#define ZS_MUTEX_SPINS 100

void zs_mutex_init(struct zs_mutex *l)
{
	memset(l, 0, sizeof(*l));
}

void zs_mutex_destroy(struct zs_mutex *l)
{
	ZS_ASSERT(load_relaxed(&l->state) == 0);
	(void)l;
}

void zs_mutex_lock_slow(struct zs_mutex *l)
{
	uint32_t c;

	fetch_add_relaxed(&l->waiters, 1);
	/* the holder is usually out within a few hundred cycles: spin on a
	 * plain load, and try when it reads free */
	for (unsigned i = 0; i < ZS_MUTEX_SPINS; i++) {
		c = load_relaxed(&l->state);
		/* acquire: pairs with zs_mutex_unlock()'s release exchange */
		if (c == 0 && cas_strong_acquire(&l->state, &c, 1))
			goto owned;
		cpu_relax();
	}
	/*
	 * Sleep. Marking the lock 2 makes its unlock wake a sleeper; the one
	 * that takes it by this exchange leaves it 2 (others may still
	 * sleep), which costs at most one wake too many. FUTEX_WAIT returns
	 * at once if the word is no longer 2 (EAGAIN), so a wake between the
	 * exchange and the sleep is not lost.
	 */
	/* acquire: pairs with zs_mutex_unlock()'s release exchange */
	while ((c = exchange_acquire(&l->state, 2)) != 0)
		syscall(SYS_futex, &l->state, FUTEX_WAIT_PRIVATE, 2, NULL, NULL, 0);
owned:
	fetch_sub_relaxed(&l->waiters, 1);
}

void zs_mutex_wake(struct zs_mutex *l)
{
	syscall(SYS_futex, &l->state, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

unsigned class_chain_size(unsigned size, unsigned max_chain)
{
	unsigned best = 1, min_waste = UINT_MAX;

	if ((size & (size - 1)) == 0)
		return 1; /* powers of two fill one page exactly */
	for (unsigned pages = 1; pages <= max_chain; pages++) {
		unsigned waste = (pages * ZS_PAGE_SIZE) % size;
		if (waste < min_waste) {
			min_waste = waste;
			best = pages;
		}
	}
	return best;
}

int class_table_init(struct zs_pool *pool)
{
	struct {
		unsigned size, pages, objs;
	} shape[ZS_SIZE_CLASSES];
	int canonical_of[ZS_SIZE_CLASSES];
	unsigned nr = 0, largest_normal = 0;
	int i, prev = -1;

	/* top-down, as merging folds a class into the larger one above it */
	for (i = ZS_SIZE_CLASSES - 1; i >= 0; i--) {
		unsigned size = ZS_MIN_ALLOC_SIZE + (unsigned)i * ZS_SIZE_CLASS_DELTA;

		if (size > ZS_MAX_ALLOC_SIZE)
			size = ZS_MAX_ALLOC_SIZE;
		shape[i].size = size;
		shape[i].pages = class_chain_size(size, pool->chain_size);
		shape[i].objs = shape[i].pages * ZS_PAGE_SIZE / size;
		if (!largest_normal && !(shape[i].pages == 1 && shape[i].objs == 1))
			largest_normal = size;
		if (prev >= 0 && shape[prev].pages == shape[i].pages &&
		    shape[prev].objs == shape[i].objs) {
			canonical_of[i] = prev;
			continue;
		}
		canonical_of[i] = i;
		prev = i;
		nr++;
	}

	pool->classes = fault(ZS_FAULT_ALLOC) ? NULL : aligned_alloc(64, nr * sizeof(struct size_class));
	if (!pool->classes)
		return -ENOMEM;
	memset(pool->classes, 0, nr * sizeof(struct size_class));
	pool->nr_classes = nr;

	/* canonical classes in ascending size; logical index -> canonical */
	unsigned k = 0;
	for (i = 0; i < ZS_SIZE_CLASSES; i++) {
		if (canonical_of[i] != i)
			continue;
		struct size_class *c = &pool->classes[k++];

		zs_mutex_init(&c->lock);
		for (int fg = 0; fg < ZS_NR_FULLNESS; fg++)
			list_init(&c->fullness_list[fg]);
		c->size = shape[i].size;
		c->pages_per_zspage = shape[i].pages;
		c->objs_per_zspage = shape[i].objs;
		c->index = (unsigned)i;
		c->huge = shape[i].pages == 1 && shape[i].objs == 1;
		for (int fg = ZS_NR_FULLNESS - 1, n = (int)c->objs_per_zspage; fg >= 0; fg--) {
			while (n > 0 && fullness_group((unsigned)n - 1, c->objs_per_zspage) >=
						(unsigned)fg)
				n--;
			c->fg_min[fg] = (uint16_t)n;
		}
		pool->size_class[i] = c;
	}
	for (i = 0; i < ZS_SIZE_CLASSES; i++)
		pool->size_class[i] = pool->size_class[canonical_of[i]];

	/*
	 * The header makes an object of size s occupy s + 8 bytes; an object
	 * is huge when that no longer fits the largest normal class. (The
	 * kernel defines it through classes with more than one page; for
	 * chain_size >= 2 that is the same class, and for chain_size 1 this
	 * keeps the meaning where the kernel's formula gives 0.)
	 */
	pool->huge_class_size = largest_normal ? largest_normal - (ZS_HANDLE_SIZE - 1)
					       : ZS_MAX_ALLOC_SIZE;
	return 0;
}

void class_table_destroy(struct zs_pool *pool)
{
	if (!pool->classes)
		return;
	for (unsigned k = 0; k < pool->nr_classes; k++)
		zs_mutex_destroy(&pool->classes[k].lock);
	free(pool->classes);
	pool->classes = NULL;
}
