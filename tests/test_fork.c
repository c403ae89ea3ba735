/* SPDX-License-Identifier: MIT */
/*
 * fork() while every helper thread of a pool is busy: the drainer frees
 * bursts of deferred handles, the background compactor and a zs_defrag
 * loop move objects, the arena worker releases and prefaults pages. Each
 * child, with a deadline (alarm) that turns a hang into a failure:
 *
 *   - flushes: every handle queued before the fork is freed (drained >=
 *     queued; a drain batch that was in flight in the parent's drainer at
 *     fork() used to be lost: thousands short);
 *   - reads back the forking thread's anchor objects (moved around by
 *     compaction and migration in the parent);
 *   - fragments a class of its own and compacts: zs_compact must free
 *     pages (a compaction running in the parent at fork() used to leave
 *     the child's pool "compacting" forever, so it returned 0);
 *   - trims, defragments, frees deferred and destroys the pool (a lock held
 *     by a parent thread at fork() used to hang the child here);
 *   - finds every page either pool counts in a linked zspage: a second pool
 *     decays all the time (decay_ms = 1), and a zspage that a decay, a
 *     trim or a free had unlinked but not yet freed at fork() used to stay
 *     counted, and lost, in the child.
 *
 *   test_fork [--forks N] [--threads N]
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <sched.h>
#include <unistd.h>

#include "zsmalloc.h"
#include "common.h"

#if ZS_TEST_TSAN
/* The child starts an arena worker of its own, which TSan refuses after a
 * multi-threaded fork unless told otherwise; and the fork handler holds
 * every class lock of the pool at once, more than the 64 locks per thread
 * TSan's deadlock detector can track (lock order is checked by the other
 * TSan runs). TSAN_OPTIONS from the environment come on top of these. */
const char *__tsan_default_options(void);
const char *__tsan_default_options(void)
{
	return "die_after_fork=0:detect_deadlocks=0";
}
#endif

enum { ANCHORS = 2000, BURST = 3000, CHILD_OBJS = 4000, CHILD_SIZE = 300 };

static struct zs_pool *pool;
static struct zs_pool *decaying; /* decay_ms = 1: the arena worker releases all the time */
static int stop; /* atomic: __atomic builtins */
static unsigned long anchors[ANCHORS];

static size_t anchor_len(int i)
{
	return 40 + (size_t)i * 7 % 900;
}

static void die(const char *what)
{
	fprintf(stderr, "test_fork: %s\n", what);
	exit(1);
}

/* Bursts of allocations, then all of them freed through the drainer, half
 * in a scattered order so that compaction finds holes meanwhile. */
static void *churn(void *arg)
{
	uint64_t seed = (uintptr_t)arg * 977 + 1;
	static __thread unsigned long h[BURST];
	char buf[2048];

	memset(buf, 0x5a, sizeof(buf));
	while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
		int n = 0;

		for (; n < BURST; n++) {
			h[n] = zs_malloc_write(pool, buf, 32 + rng_below(&seed, 2000));
			if (!h[n])
				die("zs_malloc_write failed in a worker");
		}
		for (int i = 0; i < n; i += 2)
			zs_free_deferred(pool, h[i]);
		for (int i = 1; i < n; i += 2)
			zs_free_deferred(pool, h[i]);
	}
	return NULL;
}

/* Builds zspages, frees them (spares, cached pages) and lets the pool go
 * idle until its worker has decayed something: the decay runs at forks. */
static void *decay_loop(void *arg)
{
	static unsigned long h[200];
	char buf[3000];

	(void)arg;
	memset(buf, 0x11, sizeof(buf));
	while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
		struct zs_pool_stats st;
		unsigned long decayed;

		for (int i = 0; i < 200; i++)
			if (!(h[i] = zs_malloc_write(decaying, buf, 100 + (size_t)i * 13)))
				die("zs_malloc_write failed in the decay loop");
		for (int i = 0; i < 200; i++)
			zs_free(decaying, h[i]);
		zs_pool_stats(decaying, &st);
		decayed = st.pages_decayed;
		for (int spin = 0; spin < 100000 && st.pages_decayed == decayed &&
				   !__atomic_load_n(&stop, __ATOMIC_RELAXED);
		     spin++) {
			sched_yield();
			zs_pool_stats(decaying, &st);
		}
	}
	return NULL;
}

/* Every page the pool counts is in a linked zspage: none was half freed
 * (unlinked, its pages not back) when the fork happened. */
static int pages_consistent(struct zs_pool *p, const char *name)
{
	struct zs_pool_stats st;
	unsigned long sum = 0;

	zs_pool_stats(p, &st);
	for (unsigned i = 0; i < zs_class_count(p); i++) {
		struct zs_class_stats cs;

		if (zs_class_stats(p, i, &cs) == 0)
			sum += cs.pages_used;
	}
	if (sum != st.pages_allocated) {
		fprintf(stderr, "child: pool %s counts %lu pages, its zspages hold %lu\n", name,
			st.pages_allocated, sum);
		return 0;
	}
	return 1;
}

static void *defrag_loop(void *arg)
{
	(void)arg;
	while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
		zs_defrag(pool);
		zs_pool_trim(pool);
	}
	return NULL;
}

/* 0 when every anchor reads back intact, else 3. */
static int read_anchors(void)
{
	char copy[1024];

	for (int i = 0; i < ANCHORS; i++) {
		size_t len = anchor_len(i);
		void *p = zs_obj_read_begin(pool, anchors[i], len, copy);

		if (!p || !pattern_check(p, len, (uint64_t)i)) {
			fprintf(stderr, "child: anchor %d damaged\n", i);
			return 3;
		}
		zs_obj_read_end(pool, anchors[i], len, p);
	}
	return 0;
}

static int child_checks(void)
{
	struct zs_pool_stats st;
	static unsigned long own[CHILD_OBJS];
	char buf[1024];

	alarm(20); /* a hang is a failure, not a stuck test */

	if (!pages_consistent(pool, "fork") || !pages_consistent(decaying, "decay"))
		return 6;

	if (ZS_TEST_TSAN) {
		/* TSan cannot start a thread in the child of a multi-threaded
		 * fork ("dup thread"), and freeing pages here would start an
		 * arena worker: under TSan the run checks the parent's side of
		 * the fork handlers and the anchors, the other builds the rest */
		return read_anchors();
	}
	zs_free_deferred_flush(pool);
	zs_pool_stats(pool, &st);
	if (st.deferred_drained < st.deferred_queued) {
		fprintf(stderr, "child: %lu of %lu queued handles never freed\n",
			st.deferred_queued - st.deferred_drained, st.deferred_queued);
		return 2;
	}

	if (read_anchors())
		return 3;

	memset(buf, 0x33, sizeof(buf));
	for (int i = 0; i < CHILD_OBJS; i++)
		if (!(own[i] = zs_malloc_write(pool, buf, CHILD_SIZE)))
			return 4;
	for (int i = 0; i < CHILD_OBJS; i += 2)
		zs_free(pool, own[i]);
	if (zs_compact(pool) == 0) {
		fprintf(stderr, "child: zs_compact freed nothing\n");
		return 5;
	}
	for (int i = 1; i < CHILD_OBJS; i += 2)
		zs_free_deferred(pool, own[i]); /* no drainer here: synchronous */
	zs_free_deferred_flush(pool);
	zs_defrag(pool);
	zs_pool_trim(pool);
	for (int i = 0; i < ANCHORS; i++)
		zs_free(pool, anchors[i]);
	zs_destroy_pool(pool);
	return 0;
}

int main(int argc, char **argv)
{
	int forks = ZS_TEST_SANITIZED ? 10 : 30, threads = 2;
	struct zs_pool_config cfg = {
		.flags = ZS_POOL_BG_COMPACT,
		.compact_threshold = 8,
		.deferred_buffer_size = 256,
	};
	pthread_t tids[8], defrag, decay;
	struct zs_pool_config dcfg = { .decay_ms = 1 };
	char buf[1024];

	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--forks"))
			forks = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--threads"))
			threads = atoi(argv[i + 1]);
	}
	if (threads < 1 || threads > 8 || forks < 1)
		die("usage: test_fork [--forks N] [--threads 1..8]");

	pool = zs_create_pool_ex("fork", &cfg);
	if (!pool)
		die("zs_create_pool_ex failed");
	for (int i = 0; i < ANCHORS; i++) {
		pattern_fill(buf, anchor_len(i), (uint64_t)i);
		if (!(anchors[i] = zs_malloc_write(pool, buf, anchor_len(i))))
			die("anchor allocation failed");
	}
	for (int t = 0; t < threads; t++)
		if (pthread_create(&tids[t], NULL, churn, (void *)(uintptr_t)t))
			die("pthread_create");
	if (pthread_create(&defrag, NULL, defrag_loop, NULL))
		die("pthread_create");
	if (!(decaying = zs_create_pool_ex("decay", &dcfg)) ||
	    pthread_create(&decay, NULL, decay_loop, NULL))
		die("decaying pool");

	int failed = 0;
	for (int f = 0; f < forks && !failed; f++) {
		/* let the helpers get busy between forks */
		struct zs_pool_stats st;
		unsigned long queued0;

		zs_pool_stats(pool, &st);
		queued0 = st.deferred_queued;
		do
			zs_pool_stats(pool, &st);
		while (st.deferred_queued < queued0 + BURST / 2);

		pid_t pid = fork();
		int status;

		if (pid < 0)
			die("fork");
		if (pid == 0)
			_exit(child_checks());
		if (waitpid(pid, &status, 0) != pid)
			die("waitpid");
		if (!WIFEXITED(status) || WEXITSTATUS(status)) {
			if (WIFSIGNALED(status))
				fprintf(stderr, "fork %d: child killed by signal %d%s\n", f,
					WTERMSIG(status),
					WTERMSIG(status) == SIGALRM ? " (hung)" : "");
			else
				fprintf(stderr, "fork %d: child failed (%d)\n", f,
					WEXITSTATUS(status));
			failed = 1;
		}
	}

	__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
	for (int t = 0; t < threads; t++)
		pthread_join(tids[t], NULL);
	pthread_join(defrag, NULL);
	pthread_join(decay, NULL);
	zs_destroy_pool(decaying);
	zs_free_deferred_flush(pool);
	for (int i = 0; i < ANCHORS; i++)
		zs_free(pool, anchors[i]);
	zs_destroy_pool(pool);
	printf("%d forks: %s\n", forks, failed ? "FAILED" : "ok");
	return failed;
}
