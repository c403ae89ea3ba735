// SPDX-License-Identifier: MIT
/*
 * zsbench-peer-{glibc,jemalloc,mimalloc}: one program per allocator, run by
 * zsbench (see bench/lib/peer.h). Linking jemalloc or mimalloc replaces
 * malloc for the whole process, which is why each peer is its own program.
 * Compaction for each: malloc_trim(0); a purge of all jemalloc arenas;
 * mi_collect(true).
 */
#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>

#include "peer.h"

#if defined(PEER_JEMALLOC)
#include <jemalloc/jemalloc.h>

static void trim(void)
{
	/* MALLCTL_ARENAS_ALL is 4096 */
	mallctl("arena.4096.purge", NULL, NULL, NULL, 0);
}

static void stats(char *buf, size_t len)
{
	uint64_t epoch = 1;
	size_t resident = 0, allocated = 0, sz = sizeof(size_t);

	mallctl("epoch", NULL, NULL, &epoch, sizeof(epoch));
	mallctl("stats.resident", &resident, &sz, NULL, 0);
	mallctl("stats.allocated", &allocated, &sz, NULL, 0);
	snprintf(buf, len, "\"allocator_resident\": %zu, \"allocator_allocated\": %zu", resident,
		 allocated);
}

#define PEER_KEY "jemalloc" /* its --stores name */

static const struct bench_allocator alloc = {
	.name = "jemalloc",
	.malloc = malloc,
	.free = free,
	.trim = trim,
	.stats = stats,
};
#elif defined(PEER_MIMALLOC)
#include <mimalloc.h>

static void trim(void)
{
	mi_collect(true);
}

static void stats(char *buf, size_t len)
{
	size_t elapsed, user, sys, rss, peak_rss, commit, peak_commit, faults;

	mi_process_info(&elapsed, &user, &sys, &rss, &peak_rss, &commit, &peak_commit, &faults);
	snprintf(buf, len, "\"allocator_rss\": %zu, \"allocator_committed\": %zu", rss, commit);
}

#define PEER_KEY "mimalloc"

static const struct bench_allocator alloc = {
	.name = "mimalloc",
	.malloc = mi_malloc,
	.free = mi_free,
	.trim = trim,
	.stats = stats,
};
#else
static void trim(void)
{
	malloc_trim(0);
}

static void stats(char *buf, size_t len)
{
	struct mallinfo2 mi = mallinfo2();

	snprintf(buf, len,
		 "\"allocator_in_use\": %zu, \"allocator_free\": %zu, \"allocator_mmapped\": %zu",
		 mi.uordblks, mi.fordblks, mi.hblkhd);
}

#define PEER_KEY "glibc"

static const struct bench_allocator alloc = {
	.name = "glibc malloc",
	.malloc = malloc,
	.free = free,
	.trim = trim,
	.stats = stats,
};
#endif

int main(int argc, char **argv)
{
	int r;

	bench_test_kill(PEER_KEY);
	r = bench_peer_main(argc, argv, &alloc);

	if (r == 2)
		fprintf(stderr, "%s: a helper of zsbench, not meant to be run by hand\n", argv[0]);
	return r;
}
