/* SPDX-License-Identifier: MIT */
/*
 * compact.c: zs_compact and the background compaction policy.
 *
 * Per class, objects move from the emptiest zspage (src) into the fullest
 * (dst) until src is empty, then src is freed. Locks held while moving: the
 * class lock (every obj word of the class is written under it), and src's
 * zspage write lock, taken with a *try*: a zspage that readers hold is
 * skipped, never waited for. dst needs no zspage lock: objects are written
 * into its free places, which no reader can be looking at.
 *
 * Latency: the class lock is held for at most COMPACT_BATCH source zspages
 * and dropped early when another thread waits for it; emptied zspages are
 * freed after it is dropped (seed 001). One compaction runs per pool at a
 * time. The pool-wide migrate lock is taken (write) only when the pool uses
 * the ZS_POOL_FREE_POOL_LOCK variant of zs_free, which relies on it.
 *
 * Background policy (ZS_POOL_BG_COMPACT): a thread wakes every 100 ms and
 * compacts when at least compact_threshold pages could be freed. With
 * ZS_POOL_PSI_COMPACT it also wakes on a Linux PSI trigger on
 * /proc/pressure/memory (when the file exists), and then compacts and
 * returns cached pages whatever the threshold.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "internal.h"

#define COMPACT_BATCH 4 /* source zspages per class-lock hold */
#define BG_PERIOD_MS  100
/*
 * 100 ms stalled in a 1 s window; where the kernel refuses that window (an
 * unprivileged trigger's must be a multiple of 2 s, and some kernels refuse
 * it to root in a container too), 200 ms in 2 s.
 */
static const char *const psi_triggers[] = { "some 100000 1000000", "some 200000 2000000" };

unsigned long class_compactable_locked(struct size_class *class)
{
	unsigned long wasted;

	assert_held(&class->lock);
	if (class->huge)
		return 0;
	wasted = class->objs_allocated - class->objs_used;
	return wasted / class->objs_per_zspage * class->pages_per_zspage;
}

/* First zspage of the lowest (or highest) partial group. */
static struct zspage *pick_locked(struct size_class *class, bool emptiest)
{
	for (int i = 1; i < ZS_FULLNESS_FULL; i++) {
		int fg = emptiest ? i : ZS_FULLNESS_FULL - i;
		if (!list_empty(&class->fullness_list[fg]))
			return container_of(class->fullness_list[fg].next, struct zspage, list);
	}
	return NULL;
}

/*
 * Moves src's objects into dst until one is empty or the other full, or,
 * checked every MOVE_CHECK objects, another thread waits for the class lock
 * (a small class's zspage holds up to a thousand objects: the hold stays
 * short although a whole dst may fill in one batch).
 */
#define MOVE_CHECK 32
static void move_objects_locked(struct zs_pool *pool, struct size_class *class,
				struct zspage *dst, struct zspage *src)
{
	unsigned moved = 0;

	for (unsigned idx = 0; idx < src->bump && src->inuse; idx++) {
		unsigned long handle = zspage_obj_handle_locked(pool, class, src, idx);
		uint64_t old_obj, new_obj;
		unsigned page, off;

		if (!handle)
			continue;
		if (dst->inuse == class->objs_per_zspage)
			break;
		obj_location(class, idx, &page, &off);
		old_obj = obj_encode(src->pfn[page], class->index, idx);
		new_obj = zspage_obj_alloc_locked(pool, class, dst, handle);
		zspage_obj_copy(pool, class, dst, obj_idx(new_obj), src, idx);
		/* release inside: the copy is visible before the new location */
		handle_move_locked(&pool->handles, class, handle, new_obj);
		zspage_obj_free_locked(pool, class, src, old_obj, handle); /* its own header */
		if (++moved % MOVE_CHECK == 0 && zs_mutex_contended(&class->lock))
			break;
	}
}

/*
 * One batch on one class. Returns pages freed; *progress tells whether any
 * object moved (a batch that only met busy zspages makes none).
 */
static unsigned long compact_batch(struct zs_pool *pool, struct size_class *class, bool *progress)
{
	struct zspage *to_free[COMPACT_BATCH];
	struct list_node busy;
	unsigned nr_free = 0;
	struct zspage *dst;
	bool legacy = pool->flags & ZS_POOL_FREE_POOL_LOCK;

	*progress = false;
	list_init(&busy);
	if (legacy)
		pthread_rwlock_wrlock(&pool->migrate_lock);
	zs_mutex_lock(&class->lock);
	/* an empty spare zspage is all waste: free it first */
	if ((to_free[nr_free] = pool_take_spare_locked(pool, class))) {
		nr_free++;
		*progress = true;
		goto out;
	}
	if (!class_compactable_locked(class) || !(dst = pick_locked(class, false)))
		goto out;
	zspage_unlink_locked(class, dst);
	for (unsigned n = 0; n < COMPACT_BATCH; n++) {
		struct zspage *src = pick_locked(class, true);

		if (!src)
			break;
		zspage_unlink_locked(class, src);
		if (!zspage_try_write_lock(src)) {
			/* a reader holds it: skip, never wait */
			list_add(&busy, &src->list);
			continue;
		}
		move_objects_locked(pool, class, dst, src);
		zspage_write_unlock(src);
		*progress = true;
		if (src->inuse == 0) {
			/* unlinked: retire it straight away */
			zspage_link_locked(class, src);
			to_free[nr_free++] = pool_retire_locked(pool, class, src, false);
		} else {
			zspage_link_locked(class, src);
		}
		if (dst->inuse == class->objs_per_zspage || zs_mutex_contended(&class->lock))
			break;
	}
	zspage_link_locked(class, dst);
	while (!list_empty(&busy)) {
		struct zspage *z = container_of(busy.next, struct zspage, list);
		list_del(&z->list);
		zspage_link_locked(class, z);
	}
out:
	zs_mutex_unlock(&class->lock);
	if (legacy)
		pthread_rwlock_unlock(&pool->migrate_lock);
	for (unsigned i = 0; i < nr_free; i++)
		zspage_destroy(pool, to_free[i]); /* seed 001: outside the lock */
	return (unsigned long)nr_free * class->pages_per_zspage;
}

/*
 * Descriptor compaction, after the objects': the zspages that survive are
 * scattered over the slab's pages, each page holding a few, so their
 * memory would not shrink with the pool. Moves the descriptors of sparse
 * slab pages into dense ones (zspage_relocate_locked()), at most
 * RELOCATE_BATCH per class-lock hold; returns how many moved.
 */
#define RELOCATE_BATCH 64
/* zs_compact waits for RCU grace periods only after freeing this many pages */
#define COMPACT_WAIT_PAGES 64 /* x 48 bytes of descriptor at most: < one slab page */
static unsigned relocate_batch(struct zs_pool *pool, struct size_class *class, bool *done)
{
	struct zspage *old[RELOCATE_BATCH];
	bool legacy = pool->flags & ZS_POOL_FREE_POOL_LOCK;
	unsigned nr = 0, seen = 0;

	*done = true;
	if (legacy)
		pthread_rwlock_wrlock(&pool->migrate_lock);
	zs_mutex_lock(&class->lock);
	for (int fg = 0; fg < ZS_NR_FULLNESS && *done; fg++) {
		struct list_node *h = &class->fullness_list[fg], *n, *next;

		for (n = h->next; n != h; n = next) {
			struct zspage *z = container_of(n, struct zspage, list);

			next = n->next; /* a moved descriptor takes z's place */
			if ((old[nr] = zspage_relocate_locked(pool, class, z)))
				nr++;
			if (nr == RELOCATE_BATCH ||
			    (++seen % MOVE_CHECK == 0 && zs_mutex_contended(&class->lock))) {
				*done = false;
				break;
			}
		}
	}
	zs_mutex_unlock(&class->lock);
	if (legacy)
		pthread_rwlock_unlock(&pool->migrate_lock);
	for (unsigned i = 0; i < nr; i++)
		zs_rcu_free_zspage(old[i]);
	return nr;
}

static unsigned long relocate_descriptors(struct zs_pool *pool)
{
	unsigned long moved = 0;

	for (unsigned k = 0; k < pool->nr_classes && !load_relaxed(&pool->fork_pending); k++) {
		bool done = false;

		/* a batch that stopped early starts the class's walk again: the
		 * descriptors moved already are on dense pages and stay */
		while (!done && !load_relaxed(&pool->fork_pending)) {
			unsigned n = relocate_batch(pool, &pool->classes[k], &done);

			moved += n;
			if (!n && !done)
				break; /* contended and nothing moved: leave it */
		}
	}
	return moved;
}

ZS_EXPORT unsigned long zs_compact(struct zs_pool *pool)
{
	unsigned long freed = 0;

	/* one compaction at a time; a fork() waits on this lock too, and asks
	 * a running one to stop early (fork_pending) */
	if (!pool || pthread_mutex_trylock(&pool->compact_lock))
		return 0;
	for (unsigned k = pool->nr_classes; k-- > 0 && !load_relaxed(&pool->fork_pending);) {
		struct size_class *class = &pool->classes[k];
		bool progress = true;

		while (progress && !load_relaxed(&pool->fork_pending)) {
			freed += compact_batch(pool, class, &progress);
			race_window(ZS_RACE_COMPACT_BATCH, pool);
		}
	}
	/* the descriptors of the zspages freed above go back to the slab
	 * after a grace period. After a large compaction, wait for it, so
	 * that relocation sees which slab pages are sparse, and again after
	 * it, so that the pages it emptied are released before we return. A
	 * grace period costs 1-2 ms (liburcu-bp polls its readers), which a
	 * small compaction does not pay: under COMPACT_WAIT_PAGES freed pages
	 * the descriptors freed fill less than one slab page (48 bytes per
	 * page at most, for one-page zspages); their pages go back as the
	 * descriptors do, and relocation runs anyway, counting descriptors
	 * still waiting for their grace period as live. Never inside a
	 * read-side critical section (a caller of ours using liburcu-bp, or
	 * a race test), where no grace period can end. */
	bool wait = freed >= COMPACT_WAIT_PAGES && !zs_rcu_reading();

	if (wait)
		zs_rcu_barrier();
	if (relocate_descriptors(pool) && wait)
		zs_rcu_barrier();
	/* compaction is not a hot path: give the freed pages back now (the
	 * spares went above, batch by batch), with what else an idle pool
	 * would release after its decay period */
	pool_release_idle(pool);
	arena_trim(&pool->arena);
	if (freed) {
		fetch_add_relaxed(&pool->pages_compacted, freed);
		fetch_add_relaxed(&pool->compactions, 1);
	}
	pthread_mutex_unlock(&pool->compact_lock);
	return freed;
}

ZS_EXPORT unsigned long zs_compactable_pages(struct zs_pool *pool)
{
	unsigned long pages = 0;

	if (!pool)
		return 0;
	for (unsigned k = 0; k < pool->nr_classes; k++) {
		struct size_class *class = &pool->classes[k];
		zs_mutex_lock(&class->lock);
		pages += class_compactable_locked(class);
		zs_mutex_unlock(&class->lock);
	}
	return pages;
}

/* ------------------------------------------------------------------ */
/* Background compaction                                               */

struct bg_compactor {
	pthread_t thread;
	bool running; /* false in a fork child: the thread stayed in the parent.
			 Written before the thread starts, and by the fork handler */
	int stop_fd; /* eventfd: written once by bg_compactor_stop() */
	int psi_fd;  /* PSI trigger, or -1 */
};

static int psi_open(void)
{
	for (size_t i = 0; i < sizeof(psi_triggers) / sizeof(psi_triggers[0]); i++) {
		int fd = open("/proc/pressure/memory", O_RDWR | O_NONBLOCK | O_CLOEXEC);

		if (fd < 0)
			return -1; /* no PSI here */
		if (write(fd, psi_triggers[i], strlen(psi_triggers[i]) + 1) >= 0)
			return fd;
		close(fd); /* a refused trigger leaves the file unusable: reopen */
	}
	return -1;
}

bool bg_psi_active(struct zs_pool *pool)
{
	return pool->bg && pool->bg->psi_fd >= 0;
}

static void *bg_main(void *arg)
{
	struct zs_pool *pool = arg;
	struct bg_compactor *bg = pool->bg;
	struct pollfd fds[2] = { { .fd = bg->stop_fd, .events = POLLIN },
				 { .fd = bg->psi_fd, .events = POLLPRI } };
	nfds_t nfds = bg->psi_fd >= 0 ? 2 : 1;

	for (;;) {
		int n = poll(fds, nfds, (pool->flags & ZS_POOL_BG_COMPACT) ? BG_PERIOD_MS : -1);

		if (n < 0 && errno != EINTR)
			break;
		if (fds[0].revents)
			break;
		if (nfds == 2 && (fds[1].revents & POLLPRI)) {
			zs_compact(pool); /* under pressure: whatever the threshold */
			continue;
		}
		if (nfds == 2 && (fds[1].revents & (POLLERR | POLLHUP | POLLNVAL)))
			nfds = 1; /* the trigger went away; keep the timer */
		if ((pool->flags & ZS_POOL_BG_COMPACT) &&
		    zs_compactable_pages(pool) >= pool->compact_threshold)
			zs_compact(pool);
	}
	return NULL;
}

int bg_compactor_start(struct zs_pool *pool)
{
	struct bg_compactor *bg = fault(ZS_FAULT_ALLOC) ? NULL : calloc(1, sizeof(*bg));

	if (!bg)
		return -ENOMEM;
	bg->stop_fd = eventfd(0, EFD_CLOEXEC);
	bg->psi_fd = (pool->flags & ZS_POOL_PSI_COMPACT) ? psi_open() : -1;
	if (bg->stop_fd < 0)
		goto fail;
	if (!(pool->flags & ZS_POOL_BG_COMPACT) && bg->psi_fd < 0) {
		/* PSI asked for but not available, and no timer: nothing to run */
		close(bg->stop_fd);
		free(bg);
		return 0;
	}
	pool->bg = bg;
	bg->running = true;
	if (pthread_create(&bg->thread, NULL, bg_main, pool)) {
		pool->bg = NULL;
		goto fail;
	}
	return 0;
fail:
	if (bg->stop_fd >= 0)
		close(bg->stop_fd);
	if (bg->psi_fd >= 0)
		close(bg->psi_fd);
	free(bg);
	return -ENOMEM;
}

void bg_compactor_fork_child(struct zs_pool *pool)
{
	if (pool->bg)
		pool->bg->running = false; /* the child has only the forking thread */
}

void bg_compactor_stop(struct zs_pool *pool)
{
	struct bg_compactor *bg = pool->bg;
	uint64_t one = 1;

	if (!bg)
		return;
	if (bg->running) {
		/* an eventfd write of 1 to a fresh counter cannot fail */
		ssize_t r = write(bg->stop_fd, &one, sizeof(one));
		(void)r;
		pthread_join(bg->thread, NULL);
	}
	close(bg->stop_fd);
	if (bg->psi_fd >= 0)
		close(bg->psi_fd);
	free(bg);
	pool->bg = NULL;
}
