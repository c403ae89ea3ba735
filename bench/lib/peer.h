/* SPDX-License-Identifier: MIT */
/*
 * Measuring a store in a process of its own, so that its RSS is its own:
 *
 *  - bench_child_run() forks and runs a function in the child (zsram and
 *    zsmalloc pools: same binary, same allocator);
 *  - bench_peer_run() executes a peer helper, a small program linked with
 *    another allocator (glibc malloc, jemalloc, mimalloc: each replaces
 *    malloc for the whole process, so they cannot share one), which calls
 *    bench_peer_main().
 *
 * Protocol (same build on both sides): the helper inherits the memfd of the
 * pages (read-only mapping, so the pages are not in its RssAnon), the
 * progress memfd and the write end of a pipe, whose numbers and the run's
 * settings it gets as --name=value arguments; it runs bench_store_run() on
 * bench_mstore_ops and writes one struct bench_result to the pipe. Exit
 * status 127 without a result means the helper could not be executed.
 */
#ifndef BENCH_PEER_H
#define BENCH_PEER_H

#include <stdint.h>

#include "mstore.h"
#include "pageset.h"
#include "storerun.h"

/* Called about ten times a second while a child runs (progress bar); may be NULL. */
typedef void (*bench_wait_fn)(void *ctx);

/*
 * Runs fn in a forked child and copies its result into *res. Returns 0 when
 * a result came back (res->ok says whether the run itself succeeded), or a
 * negative errno with res->error set when the child died first.
 */
int bench_child_run(int (*fn)(void *ctx, struct bench_result *res), void *ctx,
		    struct bench_result *res, bench_wait_fn wait, void *wctx);

/*
 * For a signal handler of the parent: sends sig to the child that
 * bench_child_run() or bench_peer_run() is waiting for, if any, and waits
 * until it is gone, so that its own handler has cleaned up (kernel zram
 * devices) before the parent goes. Async-signal-safe (kill, waitpid).
 */
void bench_child_stop(int sig);

struct bench_peer_req {
	const char *helper; /* path of the helper executable */
	const struct bench_pages *pages;
	const char *codec;
	int level;
	unsigned threads;
	double free_fraction;
	uint64_t seed;
	size_t huge;     /* raw from this compressed size (zsram's); 0 = BENCH_HUGE_SIZE */
	int progress_fd; /* -1: none */
};

/* As bench_child_run, for a helper; -ENOENT when the helper is not there. */
int bench_peer_run(const struct bench_peer_req *req, struct bench_result *res, bench_wait_fn wait,
		   void *wctx);

/*
 * For tests only: when the environment's ZSBENCH_TEST_KILL equals key (a
 * store's --stores name), the calling process kills itself with SIGKILL,
 * so that a store whose process dies can be provoked at will. Each store's
 * process calls it before it stores a page; documented in zsbench(1).
 */
void bench_test_kill(const char *key);

/* The helper's main(): returns its exit status (2: bad arguments, not run by zsbench). */
int bench_peer_main(int argc, char **argv, const struct bench_allocator *alloc);

#endif /* BENCH_PEER_H */
