/* SPDX-License-Identifier: MIT */
/*
 * rcu.c: the RCU this library uses (liburcu, "bp" flavour).
 *
 * The bulletproof flavour registers reader threads on their first read-side
 * critical section, so applications need not call rcu_register_thread():
 * right for a library. zspage descriptors are freed through call_rcu(), so
 * a lookup that found one under zs_rcu_read_lock() may still lock it.
 *
 * ThreadSanitizer cannot see the grace period (liburcu is not instrumented
 * and uses membarrier), so in TSan builds each read-side unlock releases a
 * token that the reclaim callback acquires: exactly the happens-before edge
 * a grace period guarantees, from every reader that could still see the
 * object to the free().
 */
#include <pthread.h>
#include <stdlib.h>

#include "internal.h"

#if defined(__SANITIZE_THREAD__)
#define ZS_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define ZS_TSAN 1
#endif
#endif

#ifdef ZS_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define tsan_acquire(p) __tsan_acquire(p)
#define tsan_release(p) __tsan_release(p)
#else
#define tsan_acquire(p) ((void)(p))
#define tsan_release(p) ((void)(p))
#endif

static char grace_token; /* TSan's stand-in for "a grace period passed" */

/*
 * fork(): liburcu's call_rcu worker does not survive it, and the child's
 * registry of readers still lists the parent's threads (a reader inside a
 * critical section at fork() would hold up every grace period in the
 * child). call_rcu pauses its worker first -- it may be waiting for a
 * grace period, which needs the registry -- then urcu-bp takes the
 * registry; after fork() the registry comes back (pruned to this thread
 * in the child) before the worker does.
 */
void zs_rcu_fork_prepare(void)
{
	urcu_bp_call_rcu_before_fork();
	urcu_bp_before_fork();
}

void zs_rcu_fork_parent(void)
{
	urcu_bp_after_fork_parent();
	urcu_bp_call_rcu_after_fork_parent();
}

void zs_rcu_fork_child(void)
{
	urcu_bp_after_fork_child();
	urcu_bp_call_rcu_after_fork_child();
}

void zs_rcu_read_lock(void)
{
	urcu_bp_read_lock();
}

void zs_rcu_read_unlock(void)
{
	tsan_release(&grace_token);
	urcu_bp_read_unlock();
}

static void free_zspage_cb(struct rcu_head *head)
{
	struct zspage *z = container_of(head, struct zspage, rcu);

	tsan_acquire(&grace_token);
	tsan_acquire(z);
	slab_free(z);
}

void zs_rcu_free_zspage(struct zspage *z)
{
	tsan_release(z); /* the callback thread's accesses come after ours */
	urcu_bp_call_rcu(&z->rcu, free_zspage_cb);
}

void zs_rcu_barrier(void)
{
	urcu_bp_barrier();
}

bool zs_rcu_reading(void)
{
	return urcu_bp_read_ongoing() != 0;
}
