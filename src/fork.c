/* SPDX-License-Identifier: MIT */
/*
 * fork.c: the registry of live pools and the fork() handlers.
 *
 * fork() copies memory but only the calling thread. Any lock another
 * thread holds at that moment stays held in the child, and any work a
 * helper thread has taken off a shared list (the drainer's batch, the
 * arena worker's pages in transit, a compaction between two zspages) is
 * lost to it. So, like malloc, the library quiesces every pool before
 * fork() and lets go after it, in both processes:
 *
 *   prepare, phase 1 (per pool): stop long runs -- the arena worker's
 *     decay finishes and no new one starts; set fork_pending (a
 *     running zs_compact or zs_defrag stops at its next batch), then take
 *     compact_lock, defrag_lock, setup_lock and the drainer's pass_lock,
 *     each held by its run from start to end: once all are ours, no
 *     compaction, defragmentation, deferred-state setup or drain pass is
 *     in progress; then close the build gate and wait for the zspages
 *     being built with no lock held (pool_build_begin()).
 *   prepare, phase 2 (per pool): the data locks, in the lock order of
 *     internal.h: deferred.lock, migrate_lock, every class lock, the handle
 *     table's lock, the arena lock (taken once no zspage is half freed and
 *     no page is in transit).
 *   parent: release all. child: release all, and note that the helper
 *     threads (drainer, arena worker, compactor) stayed in the parent --
 *     the child frees deferred handles synchronously, starts an arena
 *     worker of its own when it needs one, and compacts only on request.
 *
 * Phase 1 finishes for every pool before phase 2 starts on any, so a
 * drain pass's hook that calls into another pool never waits for a lock
 * held here. A call in flight in another thread finishes before fork()
 * unless it holds no pool lock: zs_free_deferred's fast path (its entry
 * is in the child or not, whole) and a read or write between taking the
 * zspage lock and dropping it (the child keeps that zspage read-locked:
 * compaction and migration skip it there). A zspage that a zs_free
 * emptied and unlinked is freed outside every lock: fork() waits for
 * those (pool->dying).
 *
 * Registration order matters (prepare handlers run last-registered
 * first, parent and child handlers first-registered first): liburcu's
 * handlers go in before the pools', so the pools are quiesced while RCU
 * works and let go after it works again. The slabs' locks go in before
 * liburcu's: they are taken last, once liburcu has paused its call_rcu
 * thread -- whose callbacks free descriptors and so take a slab lock; it
 * must not be waiting for one of ours while liburcu waits for it -- and
 * let go first. pools_lock, taken by the pools' prepare handler, is held
 * from before the slabs' prepare handler until after their release.
 */
#include <sched.h>

#include "internal.h"

static pthread_mutex_t pools_lock = PTHREAD_MUTEX_INITIALIZER;
static struct list_node pools = { &pools, &pools }; /* Synchronization: pools_lock */
static pthread_once_t handlers_once = PTHREAD_ONCE_INIT;

static void pool_quiesce(struct zs_pool *pool)
{
	/* first: the arena worker's decay takes the locks below */
	arena_fork_quiesce(&pool->arena);
	store_relaxed(&pool->fork_pending, true);
	pthread_mutex_lock(&pool->compact_lock);
	pthread_mutex_lock(&pool->defrag_lock);
	deferred_fork_quiesce(pool);
	/* no zspage being built with no lock held (pool_build_begin()):
	 * seq_cst store of the gate, then seq_cst reads of the count */
	__atomic_store_n(&pool->build_gate, true, __ATOMIC_SEQ_CST);
	while (__atomic_load_n(&pool->building, __ATOMIC_SEQ_CST))
		sched_yield();
}

static void pool_lock_all(struct zs_pool *pool)
{
	deferred_fork_lock(pool);
	pthread_rwlock_wrlock(&pool->migrate_lock);
	for (unsigned k = 0; k < pool->nr_classes; k++)
		zs_mutex_lock(&pool->classes[k].lock);
	pthread_mutex_lock(&pool->handles.lock);
	/* no zspage dies now (that takes a class lock); those that died just
	 * before -- a zs_free that emptied one and released its class lock --
	 * are finishing with the arena lock alone, which is not ours yet: a
	 * child must not inherit one half freed */
	while (load_acquire(&pool->dying)) /* pairs with zspage_destroy() */
		sched_yield();
	arena_fork_lock(&pool->arena);
}

static void pool_release(struct zs_pool *pool, bool child)
{
	arena_fork_release(&pool->arena, child);
	pthread_mutex_unlock(&pool->handles.lock);
	for (unsigned k = pool->nr_classes; k-- > 0;) {
		struct zs_mutex *l = &pool->classes[k].lock;

		zs_mutex_unlock(l);
		if (child)
			store_relaxed(&l->waiters, 0); /* they waited in the parent */
	}
	if (child) /* glibc's rwlock unlock checks the writer's thread id,
		      which the child's thread does not have */
		pthread_rwlock_init(&pool->migrate_lock, NULL);
	else
		pthread_rwlock_unlock(&pool->migrate_lock);
	deferred_fork_release(pool, child);
	if (child)
		bg_compactor_fork_child(pool);
	pthread_mutex_unlock(&pool->defrag_lock);
	pthread_mutex_unlock(&pool->compact_lock);
	store_relaxed(&pool->fork_pending, false);
	/* release: pairs with pool_build_begin()'s acquire wait */
	__atomic_store_n(&pool->build_gate, false, __ATOMIC_RELEASE);
}

static void fork_prepare(void)
{
	struct list_node *n;

	pthread_mutex_lock(&pools_lock);
	for (n = pools.next; n != &pools; n = n->next)
		pool_quiesce(container_of(n, struct zs_pool, fork_link));
	for (n = pools.next; n != &pools; n = n->next)
		pool_lock_all(container_of(n, struct zs_pool, fork_link));
}

static void fork_release(bool child)
{
	for (struct list_node *n = pools.next; n != &pools; n = n->next)
		pool_release(container_of(n, struct zs_pool, fork_link), child);
	pthread_mutex_unlock(&pools_lock);
}

static void fork_parent(void)
{
	fork_release(false);
}

static void fork_child(void)
{
	fork_release(true);
}

/* Phase 3, after liburcu's pause: every pool's slab lock (pools_lock held). */
static void slab_fork_prepare(void)
{
	for (struct list_node *n = pools.next; n != &pools; n = n->next)
		slab_fork_lock(&container_of(n, struct zs_pool, fork_link)->slab);
}

static void slab_fork_after(void)
{
	for (struct list_node *n = pools.next; n != &pools; n = n->next)
		slab_fork_release(&container_of(n, struct zs_pool, fork_link)->slab);
}

static void register_handlers(void)
{
	pthread_atfork(slab_fork_prepare, slab_fork_after, slab_fork_after);
	pthread_atfork(zs_rcu_fork_prepare, zs_rcu_fork_parent, zs_rcu_fork_child);
	pthread_atfork(fork_prepare, fork_parent, fork_child);
}

void fork_register_pool(struct zs_pool *pool)
{
	pthread_once(&handlers_once, register_handlers);
	pthread_mutex_lock(&pools_lock);
	list_add(&pools, &pool->fork_link);
	pthread_mutex_unlock(&pools_lock);
}

void fork_unregister_pool(struct zs_pool *pool)
{
	pthread_mutex_lock(&pools_lock);
	list_del(&pool->fork_link);
	pthread_mutex_unlock(&pools_lock);
}
