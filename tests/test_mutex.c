/* SPDX-License-Identifier: MIT */
/*
 * The class lock (struct zs_mutex, a futex mutex): mutual exclusion under
 * contention, the sleeping path and its wake-ups, trylock, the waiters hint
 * compaction reads, and a lock held across fork(). Run under
 * ThreadSanitizer too (suite stress): the counter below is a plain,
 * non-atomic word, so a lock that let two holders in, or that did not
 * order one holder's writes before the next one's reads, is a data race
 * TSan reports, besides a wrong sum.
 */
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "internal.h"
#include "common.h"

static struct zs_mutex lock;
static unsigned long counter; /* Synchronization: lock (plain on purpose) */
static unsigned long inside;  /* Synchronization: lock; holders at once, must stay 0/1 */

enum { THREADS = 4 };

struct worker_arg {
	unsigned long iters;
	unsigned hold_us; /* > 0: hold the lock this long now and then (sleepers) */
};

static void *hammer(void *p)
{
	const struct worker_arg *a = p;

	for (unsigned long i = 0; i < a->iters; i++) {
		zs_mutex_lock(&lock);
		assert_held(&lock);
		if (inside++ != 0)
			abort(); /* two holders */
		counter++;
		if (a->hold_us && i % 64 == 0)
			usleep(a->hold_us); /* makes the others sleep in FUTEX_WAIT */
		inside--;
		zs_mutex_unlock(&lock);
	}
	return NULL;
}

static void run_threads(unsigned long iters, unsigned hold_us)
{
	pthread_t t[THREADS];
	struct worker_arg a = { iters, hold_us };

	zs_mutex_init(&lock);
	counter = 0;
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, hammer, &a), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(counter, THREADS * iters);
	/* every waiter counted itself out once it owned the lock */
	assert_int_equal(load_relaxed(&lock.waiters), 0);
	assert_int_equal(load_relaxed(&lock.state), 0);
	zs_mutex_destroy(&lock);
}

/* Short critical sections: mostly the spinning path. */
static void test_exclusion_spin(void **state)
{
	(void)state;
	run_threads(ZS_TEST_SANITIZED ? 20000 : 200000, 0);
}

/* Holders that sleep inside: waiters go to FUTEX_WAIT and must be woken. */
static void test_exclusion_sleep(void **state)
{
	(void)state;
	run_threads(ZS_TEST_SANITIZED ? 2000 : 10000, 200);
}

static void test_trylock(void **state)
{
	(void)state;
	zs_mutex_init(&lock);
	assert_true(zs_mutex_trylock(&lock));
	assert_held(&lock);
	assert_false(zs_mutex_trylock(&lock));
	zs_mutex_unlock(&lock);
	assert_true(zs_mutex_trylock(&lock));
	zs_mutex_unlock(&lock);
	assert_int_equal(load_relaxed(&lock.state), 0);
	zs_mutex_destroy(&lock);
}

static int blocked_done; /* atomic */

static void *block_on_lock(void *p)
{
	(void)p;
	zs_mutex_lock(&lock);
	counter++;
	zs_mutex_unlock(&lock);
	store_release(&blocked_done, 1);
	return NULL;
}

/* Waits (bounded, 10 s) until cond() holds; returns whether it did. */
static bool wait_for(bool (*cond)(void))
{
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		if (cond())
			return true;
		usleep(1000); /* polling a condition, bounded */
		clock_gettime(CLOCK_MONOTONIC, &t1);
	} while (t1.tv_sec - t0.tv_sec < 10);
	return cond();
}

static bool is_contended(void)
{
	return zs_mutex_contended(&lock);
}

static bool is_asleep(void)
{
	return load_relaxed(&lock.state) == 2; /* the waiter marked it before sleeping */
}

static bool is_done(void)
{
	return load_acquire(&blocked_done) != 0;
}

/*
 * zs_mutex_contended() says a thread waits for the lock while it does (and
 * only then); that thread sleeps, and the unlock wakes it.
 */
static void test_contended_hint(void **state)
{
	pthread_t t;

	(void)state;
	zs_mutex_init(&lock);
	counter = 0;
	store_relaxed(&blocked_done, 0);
	zs_mutex_lock(&lock);
	assert_false(zs_mutex_contended(&lock));
	assert_int_equal(pthread_create(&t, NULL, block_on_lock, NULL), 0);
	assert_true(wait_for(is_contended));
	assert_true(wait_for(is_asleep)); /* past the spinning, in FUTEX_WAIT */
	assert_false(is_done());
	zs_mutex_unlock(&lock);
	assert_true(wait_for(is_done)); /* the unlock woke it */
	pthread_join(t, NULL);
	assert_false(zs_mutex_contended(&lock));
	assert_int_equal(counter, 1);
	assert_int_equal(load_relaxed(&lock.state), 0);
	zs_mutex_destroy(&lock);
}

/*
 * fork() with the lock held by the forking thread, as src/fork.c does for
 * every class lock: the child's only thread owns it and can drop it and
 * take it again, even when a parent thread was asleep on it (state 2).
 */
static void test_fork_held(void **state)
{
	pthread_t t;
	pid_t pid;
	int status;

	(void)state;
	if (ZS_TEST_TSAN)
		skip(); /* TSan does not follow a multi-threaded fork's child */
	zs_mutex_init(&lock);
	counter = 0;
	store_relaxed(&blocked_done, 0);
	zs_mutex_lock(&lock);
	assert_int_equal(pthread_create(&t, NULL, block_on_lock, NULL), 0);
	assert_true(wait_for(is_asleep));
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		zs_mutex_unlock(&lock);
		store_relaxed(&lock.waiters, 0); /* as fork.c: they waited in the parent */
		zs_mutex_lock(&lock);
		zs_mutex_unlock(&lock);
		_exit(load_relaxed(&lock.state) == 0 && !zs_mutex_contended(&lock) ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	zs_mutex_unlock(&lock);
	pthread_join(t, NULL);
	assert_int_equal(counter, 1);
	zs_mutex_destroy(&lock);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exclusion_spin),	cmocka_unit_test(test_exclusion_sleep),
		cmocka_unit_test(test_trylock),		cmocka_unit_test(test_contended_hint),
		cmocka_unit_test(test_fork_held),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
