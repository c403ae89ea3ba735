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
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

/* liburcu's call_rcu worker does not survive fork(); these keep a child
 * that goes on using the library working. */
static void register_fork_handlers(void)
{
	pthread_atfork(urcu_bp_call_rcu_before_fork, urcu_bp_call_rcu_after_fork_parent,
		       urcu_bp_call_rcu_after_fork_child);
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
	free(z);
}

void zs_rcu_free_zspage(struct zspage *z)
{
	pthread_once(&fork_once, register_fork_handlers);
	tsan_release(z); /* the callback thread's accesses come after ours */
	urcu_bp_call_rcu(&z->rcu, free_zspage_cb);
}

void zs_rcu_barrier(void)
{
	urcu_bp_barrier();
}
